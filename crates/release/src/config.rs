use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ReleaseError;
use crate::manifest::ProgrammeMeta;

/// The disclosure rules of a release (`[disclosure]` in the pipeline file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisclosureRules {
    /// A published count of persons below this is suppressed (primary suppression).
    pub threshold: u64,
    /// Whether a zero count is suppressed too. When `false`, zeros are published and every
    /// suppressed cell is known to hold at least one person (the audit uses that bound).
    pub zeros_disclosive: bool,
    /// Published counts are rounded to the nearest multiple of this (1 = no rounding; 5 with
    /// threshold 10 is the ONS 10-5 rule). Must divide `threshold`.
    pub round_to: u64,
    /// (n,k) dominance for magnitude tables: a cell whose `n` largest contributions exceed
    /// `k` × the cell total is suppressed.
    pub dominance_n: usize,
    /// See `dominance_n`; a fraction in (0, 1].
    pub dominance_k: f64,
    /// p% rule for magnitude tables, as a fraction: a cell is suppressed when
    /// total − largest − second largest < `p_percent` × largest.
    pub p_percent: f64,
}

impl Default for DisclosureRules {
    fn default() -> Self {
        Self {
            threshold: 10,
            zeros_disclosive: true,
            round_to: 1,
            dominance_n: 2,
            dominance_k: 0.9,
            p_percent: 0.10,
        }
    }
}

impl DisclosureRules {
    /// Checks that the rules make sense together.
    pub fn validate(&self) -> Result<(), ReleaseError> {
        if self.threshold == 0 {
            return Err(ReleaseError::config("threshold must be at least 1"));
        }
        if self.round_to == 0 {
            return Err(ReleaseError::config("round_to must be at least 1"));
        }
        if self.round_to > 1 && !self.threshold.is_multiple_of(self.round_to) {
            return Err(ReleaseError::config(
                "threshold must be a multiple of round_to, so that a rounded count is never below the threshold",
            ));
        }
        if self.dominance_n == 0 {
            return Err(ReleaseError::config("dominance_n must be at least 1"));
        }
        if !(self.dominance_k > 0.0 && self.dominance_k <= 1.0) {
            return Err(ReleaseError::config("dominance_k must be in (0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.p_percent) {
            return Err(ReleaseError::config("p_percent must be a fraction in [0, 1]"));
        }
        Ok(())
    }

    /// The lower bound every suppressed count is known to respect.
    pub(crate) fn hidden_lower_bound(&self) -> f64 {
        if self.zeros_disclosive { 0.0 } else { 1.0 }
    }

    /// A count as published (before suppression): rounded to the nearest multiple of
    /// `round_to`, halves upwards.
    pub(crate) fn round(&self, count: u64) -> u64 {
        if self.round_to <= 1 {
            return count;
        }
        let r = self.round_to;
        (count + r / 2) / r * r
    }
}

/// One declared table (`[[table]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// The table name; the released file is `<name>.csv`.
    pub name: String,
    /// The folder of Parquet part files to count from (resolved by the caller).
    pub source: PathBuf,
    /// The dimensions, in order.
    pub by: Vec<String>,
    /// An optional magnitude column, summed per cell (one value per person).
    pub sum: Option<String>,
}

/// Everything the release stage needs.
#[derive(Debug, Clone)]
pub struct ReleaseConfig {
    /// The pipeline name, written into the manifest.
    pub pipeline_name: String,
    /// The disclosure rules.
    pub rules: DisclosureRules,
    /// The tables to build.
    pub tables: Vec<TableSpec>,
    /// Files the evaluate stage prepared; published verbatim and listed in the manifest.
    pub extra_files: Vec<PathBuf>,
    /// The folder that leaves the secure environment.
    pub release_dir: PathBuf,
    /// The audit trail folder (`work_dir/release-audit/`).
    pub audit_dir: PathBuf,
    /// The project key file that signs the manifest (`None`: the manifest is not signed).
    pub signing_key: Option<PathBuf>,
    /// The programme the release evaluates, copied into the manifest.
    pub programme: Option<ProgrammeMeta>,
}

/// The name of the manifest inside a release folder.
pub const MANIFEST_NAME: &str = "release-manifest.json";

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl ReleaseConfig {
    /// Checks the rules and the table declarations; returns the released file names.
    pub(crate) fn validate(&self) -> Result<Vec<String>, ReleaseError> {
        self.rules.validate()?;
        let mut names = HashSet::new();
        let mut files = Vec::new();
        for t in &self.tables {
            if !valid_name(&t.name) {
                return Err(ReleaseError::config(format!(
                    "table name {:?} must match [a-z][a-z0-9_]*",
                    t.name
                )));
            }
            if t.by.is_empty() {
                return Err(ReleaseError::config(format!(
                    "table {}: by must name at least one column",
                    t.name
                )));
            }
            let mut seen = HashSet::new();
            for c in &t.by {
                if !seen.insert(c) {
                    return Err(ReleaseError::config(format!(
                        "table {}: column {c} appears twice in by",
                        t.name
                    )));
                }
                if c == "persons" || Some(c) == t.sum.as_ref() {
                    return Err(ReleaseError::config(format!(
                        "table {}: column {c} cannot be a dimension (it is the persons or sum column)",
                        t.name
                    )));
                }
            }
            if t.sum.as_deref() == Some("persons") {
                return Err(ReleaseError::config(format!(
                    "table {}: the sum column cannot be called persons",
                    t.name
                )));
            }
            let file = format!("{}.csv", t.name);
            if !names.insert(file.clone()) {
                return Err(ReleaseError::config(format!(
                    "table {} is declared twice",
                    t.name
                )));
            }
            files.push(file);
        }
        for f in &self.extra_files {
            let Some(name) = f.file_name().and_then(|n| n.to_str()) else {
                return Err(ReleaseError::config(format!(
                    "extra file {} has no usable file name",
                    f.display()
                )));
            };
            if name == MANIFEST_NAME || name.starts_with('.') || !names.insert(name.to_owned()) {
                return Err(ReleaseError::config(format!(
                    "extra file {} collides with another released file name",
                    f.display()
                )));
            }
            files.push(name.to_owned());
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ons_rounding_rounds_halves_up() {
        let r = DisclosureRules {
            round_to: 5,
            ..DisclosureRules::default()
        };
        let got: Vec<u64> = [0, 2, 3, 10, 12, 13, 17, 18]
            .iter()
            .map(|&c| r.round(c))
            .collect();
        assert_eq!(got, vec![0, 0, 5, 10, 10, 15, 15, 20]);
    }

    #[test]
    fn threshold_must_be_a_multiple_of_round_to() {
        let r = DisclosureRules {
            round_to: 3,
            ..DisclosureRules::default()
        };
        insta::assert_snapshot!(r.validate().unwrap_err().to_string(), @"invalid release configuration: threshold must be a multiple of round_to, so that a rounded count is never below the threshold");
    }
}
