//! Reading release folders: only those that pass `check-release`, and only their published
//! files (the manifest's programme metadata and cohort fingerprint, `impact.csv`,
//! `survival.csv`, `report.html`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use linklab_store::IMPACT_COLUMNS;
use serde::Serialize;

use crate::DashboardError;

/// A released value that the CSV writers marked as suppressed.
const SUPPRESSED: &str = "[c]";
/// What a missing metadata field reads as.
pub const UNSPECIFIED: &str = "unspecified";

/// Whether a published estimate's 95% CI excludes zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The CI excludes zero.
    Significant,
    /// The CI includes zero.
    Inconclusive,
    /// No estimate was published (suppressed, or no estimate could be made).
    NotPublished,
}

/// One row of a release's `impact.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    /// The outcome's name.
    pub outcome: String,
    /// `rate`, `mean_days` or `log_rank` (for a row without an estimate, the measure named in
    /// its reason, or `no_estimate`).
    pub measure: String,
    /// Significant, inconclusive or not published.
    pub result: Verdict,
    /// The participants' value.
    pub treated_value: Option<f64>,
    /// The comparison group's value.
    pub comparison_value: Option<f64>,
    /// The difference (participants − comparison).
    pub difference: Option<f64>,
    /// Lower end of its 95% CI.
    pub ci_low: Option<f64>,
    /// Upper end of its 95% CI.
    pub ci_high: Option<f64>,
    /// The p-value.
    pub p_value: Option<f64>,
}

/// One published Kaplan–Meier step of `survival.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurvivalStep {
    /// The time-to-event outcome.
    pub outcome: String,
    /// `treated` or `comparison`.
    pub group: String,
    /// Days since the index date.
    pub day: u32,
    /// Persons at risk at the start of the step.
    pub at_risk: Option<u64>,
    /// The survival after the step.
    pub survival: f64,
}

/// One programme, as its release publishes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Programme {
    /// The release folder (canonical path; not shown on the page).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The programme's name (the manifest's, or the folder's name).
    pub name: String,
    /// Who runs it.
    pub organisation: String,
    /// Its type ("education", "mentoring", ...), the pooling group.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it started.
    pub start: String,
    /// When it ended.
    pub end: String,
    /// One line about it.
    pub description: String,
    /// The manifest's `programme.cohort`: an opaque fingerprint of the cohort source the release
    /// was made from (equal values: the same cohort data), or `None` when absent (unknown). Not
    /// shown on the page; [`crate::shared_cohorts`] groups programmes by it.
    #[serde(skip)]
    pub cohort: Option<String>,
    /// Matched participants (`None` when suppressed or absent).
    pub people: Option<u64>,
    /// Matched comparison persons.
    pub comparison_people: Option<u64>,
    /// Whether the release holds a `report.html`.
    pub has_report: bool,
    /// Every row of `impact.csv`, in order.
    pub effects: Vec<Effect>,
    /// Every step of `survival.csv`, in order.
    pub survival: Vec<SurvivalStep>,
}

/// Reads one release folder: it must be a release (a folder with a release manifest) that
/// passes `check-release` with the checker's default rules, and hold an `impact.csv`.
pub fn read_release(dir: &Path) -> Result<Programme, DashboardError> {
    let not_release = |reason: &str| DashboardError::NotARelease {
        dir: dir.to_path_buf(),
        reason: reason.to_owned(),
    };
    if !dir.is_dir() {
        return Err(not_release("not a folder"));
    }
    if !dir.join(linklab_check::MANIFEST_NAME).is_file() {
        return Err(not_release(&format!(
            "it has no {}",
            linklab_check::MANIFEST_NAME
        )));
    }
    match linklab_check::check_release(dir, &linklab_check::CheckOptions::default()) {
        Err(linklab_check::CheckError::Unreadable { reason, .. }) => return Err(not_release(&reason)),
        Err(source) => {
            return Err(DashboardError::Check {
                dir: dir.to_path_buf(),
                source,
            });
        }
        Ok(report) if !report.is_ok() => {
            return Err(DashboardError::CheckFailed {
                dir: dir.to_path_buf(),
                problems: report.problems.len(),
                first: report.problems[0].to_string(),
            });
        }
        Ok(_) => {}
    }
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let unreadable = |file: &str, reason: String| DashboardError::Unreadable {
        dir: dir.to_path_buf(),
        file: file.to_owned(),
        reason,
    };
    let manifest_path = dir.join(linklab_check::MANIFEST_NAME);
    let manifest: serde_json::Value = std::fs::read(&manifest_path)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| format!("line {}, column {}", e.line(), e.column()))
        })
        .map_err(|reason| unreadable(linklab_check::MANIFEST_NAME, reason))?;
    let meta = &manifest["programme"];
    let field = |name: &str| {
        meta[name]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let folder_name = canonical.file_name().map_or_else(
        || canonical.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if !dir.join("impact.csv").is_file() {
        return Err(unreadable(
            "impact.csv",
            "missing: not the release of an evaluated programme".to_owned(),
        ));
    }
    // `p_holm` feeds no figure of the page, and releases made before it was added lack it.
    let needed: Vec<&str> = IMPACT_COLUMNS.into_iter().filter(|c| *c != "p_holm").collect();
    let impact = read_csv(&dir.join("impact.csv"), &needed).map_err(|r| unreadable("impact.csv", r))?;
    let survival = if dir.join("survival.csv").is_file() {
        read_survival(&dir.join("survival.csv")).map_err(|r| unreadable("survival.csv", r))?
    } else {
        Vec::new()
    };
    Ok(Programme {
        name: field("name").unwrap_or(folder_name),
        organisation: field("organisation").unwrap_or_else(|| UNSPECIFIED.to_owned()),
        kind: field("type").unwrap_or_else(|| UNSPECIFIED.to_owned()),
        start: field("start").unwrap_or_else(|| UNSPECIFIED.to_owned()),
        end: field("end").unwrap_or_else(|| UNSPECIFIED.to_owned()),
        description: field("description").unwrap_or_default(),
        cohort: field("cohort"),
        people: count(&impact, "treated_persons"),
        comparison_people: count(&impact, "comparison_persons"),
        has_report: dir.join("report.html").is_file(),
        effects: effects(&impact),
        survival,
        dir: canonical,
    })
}

/// A CSV file's rows as maps from column name to field; the error names the row or column.
fn read_csv(path: &Path, needed: &[&str]) -> Result<Vec<HashMap<String, String>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|_| "cannot be read as CSV".to_owned())?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|_| "cannot be read as CSV".to_owned())?
        .iter()
        .map(str::to_owned)
        .collect();
    if let Some(missing) = needed.iter().find(|c| !header.iter().any(|h| h == *c)) {
        return Err(format!("has no column {missing}"));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|_| format!("row {}: cannot be read as CSV", i + 2))?;
        rows.push(
            header
                .iter()
                .cloned()
                .zip(record.iter().map(str::to_owned))
                .collect(),
        );
    }
    Ok(rows)
}

/// A published label without the formula guard (`'=x` was published for the label `=x`).
fn label(text: &str) -> String {
    match text.strip_prefix('\'') {
        Some(rest) if linklab_store::is_formula_like(rest) => rest.to_owned(),
        _ => text.to_owned(),
    }
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

const MEASURES: [&str; 3] = ["rate", "mean_days", "log_rank"];

/// The rows of `impact.csv` as effects.
fn effects(rows: &[HashMap<String, String>]) -> Vec<Effect> {
    rows.iter()
        .map(|row| {
            let get = |c: &str| row.get(c).map_or("", String::as_str);
            let mut measure = label(get("measure"));
            if !MEASURES.contains(&measure.as_str()) {
                // A row without an estimate names its measure at the start of its reason.
                let reason = get("treated_value");
                measure = MEASURES
                    .iter()
                    .find(|m| reason.starts_with(&format!("{m}:")))
                    .map_or(measure, |m| (*m).to_owned());
            }
            let (difference, ci_low, ci_high) = (
                number(get("difference")),
                number(get("ci_low")),
                number(get("ci_high")),
            );
            let result = match (difference, ci_low, ci_high) {
                (Some(_), Some(lo), Some(hi)) if lo > 0.0 || hi < 0.0 => Verdict::Significant,
                (Some(_), Some(_), Some(_)) => Verdict::Inconclusive,
                _ => Verdict::NotPublished,
            };
            let published = result != Verdict::NotPublished;
            let keep = |v: Option<f64>| v.filter(|_| published);
            Effect {
                outcome: label(get("outcome")),
                measure,
                result,
                treated_value: keep(number(get("treated_value"))),
                comparison_value: keep(number(get("comparison_value"))),
                difference: keep(difference),
                ci_low: keep(ci_low),
                ci_high: keep(ci_high),
                p_value: keep(number(get("p_value"))),
            }
        })
        .collect()
}

/// A matched group size (the same on every row of `impact.csv`; `[c]` reads as `None`).
fn count(rows: &[HashMap<String, String>], column: &str) -> Option<u64> {
    rows.iter().find_map(|r| {
        r.get(column)
            .filter(|v| v.as_str() != SUPPRESSED)
            .and_then(|v| v.trim().parse().ok())
    })
}

fn read_survival(path: &Path) -> Result<Vec<SurvivalStep>, String> {
    let rows = read_csv(path, &["outcome", "group", "day", "at_risk", "survival"])?;
    let mut steps = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let get = |c: &str| row.get(c).map_or("", String::as_str);
        // A curve the release withheld is written `[c]`: it has no step to draw.
        if [get("day"), get("survival")]
            .iter()
            .any(|v| v.trim() == SUPPRESSED)
        {
            continue;
        }
        let (Ok(day), Some(survival)) = (get("day").trim().parse::<u32>(), number(get("survival"))) else {
            return Err(format!("row {}: day or survival is not a number", i + 2));
        };
        steps.push(SurvivalStep {
            outcome: label(get("outcome")),
            group: label(get("group")),
            day,
            at_risk: get("at_risk").trim().parse().ok(),
            survival,
        });
    }
    Ok(steps)
}
