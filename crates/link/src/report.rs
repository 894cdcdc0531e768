//! The linkage report (`linked/linkage-report.json`) and its human summary.

use std::fmt::Write as _;

use serde::Serialize;

/// Everything the link stage measured, written to `linked/linkage-report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkageReport {
    /// The linklab version that linked.
    pub tool_version: String,
    /// The token spec version of the tokens linked.
    pub token_spec_version: String,
    /// Fingerprint of the project key the person ids are derived with.
    pub project_key_fingerprint: String,
    /// Fingerprint of the linkage key, from the pseudonymisation manifests (all equal).
    pub linkage_key_fingerprint: String,
    /// The spine extract.
    pub spine: String,
    /// The match keys, strongest first.
    pub match_keys: Vec<String>,
    /// The largest number of spine records one person may have.
    pub max_cluster_size: usize,
    /// Token partitions processed one after another (1: everything fitted in memory).
    pub partitions: usize,
    /// How the spine's records became persons.
    pub spine_clustering: SpineReport,
    /// One entry per extract, in configuration order (the spine included).
    pub extracts: Vec<ExtractReport>,
    /// Link quality against ground truth, when a truth folder was given.
    pub quality: Option<QualityReport>,
    /// The fitted model, with `method = "probabilistic"` (absent for the cascade).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::ModelReport>,
}

/// The spine clustering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpineReport {
    /// Spine records read.
    pub records: u64,
    /// Persons formed.
    pub persons: u64,
    /// Spine records without a token for any match key (each is a person on its own that
    /// nothing can link to).
    pub records_without_tokens: u64,
    /// What each match key did, in cascade order.
    pub by_key: Vec<SpineKeyReport>,
    /// How many persons have each number of spine records.
    pub cluster_sizes: Vec<ClusterSize>,
}

/// What one match key did on the spine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpineKeyReport {
    /// The match key.
    pub key: String,
    /// Spine records with a token for it.
    pub records_with_token: u64,
    /// Cluster merges it made.
    pub merges: u64,
    /// Merges refused because a stronger key separates the two clusters.
    pub refused_by_stronger_key: u64,
    /// Merges refused because the cluster would exceed the size limit.
    pub refused_by_size: u64,
    /// Distinct tokens held by spine records of more than one person: a record of another
    /// extract with such a token is ambiguous at this key.
    pub ambiguous_tokens: u64,
}

/// One bar of the cluster size histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSize {
    /// Spine records per person.
    pub size: u32,
    /// Persons with that many.
    pub persons: u64,
}

/// The outcome of linking one extract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractReport {
    /// The extract.
    pub name: String,
    /// `spine` for the spine (its records are the persons), `linked` for the others.
    pub role: String,
    /// Records read (and written).
    pub records: u64,
    /// Records given a person.
    pub linked: u64,
    /// Records left unlinked because their token at the first key that matched was held by
    /// several persons.
    pub ambiguous: u64,
    /// Records without a person (ambiguous ones included).
    pub unlinked: u64,
    /// `linked / records`.
    pub linked_rate: f64,
    /// `ambiguous / records`.
    pub ambiguous_rate: f64,
    /// `unlinked / records`.
    pub unlinked_rate: f64,
    /// Match keys the extract has no token column for.
    pub missing_keys: Vec<String>,
    /// Outcomes by match key, in cascade order.
    pub by_key: Vec<KeyReport>,
    /// Linked and unlinked records by the values of kept attributes that look categorical.
    pub unlinked_profile: Vec<ProfileColumn>,
}

/// Outcomes at one match key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyReport {
    /// The match key.
    pub key: String,
    /// Records with a token for it.
    pub records_with_token: u64,
    /// Records linked at this key.
    pub linked: u64,
    /// Records stopped here as ambiguous.
    pub ambiguous: u64,
    /// `linked / records` of the extract.
    pub linked_rate: f64,
    /// `ambiguous / records` of the extract.
    pub ambiguous_rate: f64,
}

/// Unlinked records by one kept attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileColumn {
    /// The keep column.
    pub column: String,
    /// `value` for a text column, `age band` for an integer column named like `age…`.
    pub grouping: String,
    /// One entry per value (or band), in order; `(missing)` for nulls.
    pub values: Vec<ProfileValue>,
}

/// Records with one value of a profiled attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileValue {
    /// The value or band.
    pub value: String,
    /// Records with it.
    pub records: u64,
    /// Of those, unlinked.
    pub unlinked: u64,
    /// `unlinked / records`.
    pub unlinked_rate: f64,
}

/// Link quality against the synthetic ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Pairwise quality of the spine clustering, over pairs of spine records.
    pub spine_clustering: Option<PairwiseQuality>,
    /// Quality of the links of each non-spine extract.
    pub extracts: Vec<ExtractQuality>,
    /// What could not be measured, and why.
    pub notes: Vec<String>,
}

/// Pairwise precision and recall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairwiseQuality {
    /// Pairs put together that belong together.
    pub true_positive_pairs: u64,
    /// Pairs put together.
    pub predicted_pairs: u64,
    /// Pairs that belong together.
    pub true_pairs: u64,
    /// `true_positive_pairs / predicted_pairs` (none without predicted pairs).
    pub precision: Option<f64>,
    /// `true_positive_pairs / true_pairs` (none without true pairs).
    pub recall: Option<f64>,
}

impl PairwiseQuality {
    pub(crate) fn new(true_positive_pairs: u64, predicted_pairs: u64, true_pairs: u64) -> Self {
        Self {
            true_positive_pairs,
            predicted_pairs,
            true_pairs,
            precision: ratio(true_positive_pairs, predicted_pairs),
            recall: ratio(true_positive_pairs, true_pairs),
        }
    }
}

/// Link quality of one extract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractQuality {
    /// The extract.
    pub extract: String,
    /// Records whose `record_id` the truth file knows.
    pub records_in_truth: u64,
    /// Records whose `record_id` the truth file does not know (left out of the measures).
    pub records_not_in_truth: u64,
    /// Records whose true person has a record on the spine.
    pub linkable: u64,
    /// Records (known to the truth file) that were linked.
    pub linked: u64,
    /// Linked records whose person has a spine record of the record's true person.
    pub correct: u64,
    /// `correct / linked`.
    pub record_precision: Option<f64>,
    /// `correct / linkable`.
    pub record_recall: Option<f64>,
    /// Over (record, spine record) pairs: predicted when the record is linked to the spine
    /// record's person, true when both have the same true person.
    pub pairwise: PairwiseQuality,
}

pub(crate) fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

pub(crate) fn rate(numerator: u64, denominator: u64) -> f64 {
    ratio(numerator, denominator).unwrap_or(0.0)
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn optional_percent(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| format!("{:.2}%", 100.0 * x))
}

impl LinkageReport {
    /// A few lines for a person reading a terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let s = &self.spine_clustering;
        let sizes: Vec<String> = s
            .cluster_sizes
            .iter()
            .map(|c| format!("{}×{}", c.persons, c.size))
            .collect();
        let _ = writeln!(
            out,
            "spine `{}`: {} records → {} persons (persons×records: {})",
            self.spine,
            s.records,
            s.persons,
            sizes.join(", ")
        );
        if let Some(m) = &self.model {
            let models: Vec<String> = m
                .models
                .iter()
                .map(|x| {
                    format!(
                        "{} λ {:.4}, prior {:.3e} ({} iterations){}{}{}",
                        x.extract,
                        x.lambda,
                        x.prior,
                        x.iterations,
                        if x.converged { "" } else { " (not converged)" },
                        if x.pooled { " (pooled)" } else { "" },
                        if x.own_fit_rejected {
                            " (own fit rejected: m pooled)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "model: fitted on {} candidate pairs, {} pairs scored, linked at match probability ≥ {}; spine merges {}; per extract: {}",
                m.candidate_pairs,
                m.scored_pairs,
                m.match_probability,
                m.spine.merges,
                models.join("; ")
            );
        }
        for e in self.extracts.iter().filter(|e| e.role != "spine") {
            let by_rule = self
                .model
                .as_ref()
                .and_then(|m| m.linked_by_rule.iter().find(|r| r.extract == e.name));
            let keys: Vec<String> = match by_rule {
                Some(r) => r
                    .rules
                    .iter()
                    .map(|k| format!("{} {}", k.rule, k.linked))
                    .collect(),
                None => e
                    .by_key
                    .iter()
                    .map(|k| format!("{} {}", k.key, k.linked))
                    .collect(),
            };
            let _ = writeln!(
                out,
                "`{}`: {} records, {} linked ({}), {} ambiguous ({}), {} unlinked ({}); linked by {}",
                e.name,
                e.records,
                e.linked,
                percent(e.linked_rate),
                e.ambiguous,
                percent(e.ambiguous_rate),
                e.unlinked,
                percent(e.unlinked_rate),
                keys.join(", ")
            );
        }
        if let Some(q) = &self.quality {
            if let Some(p) = &q.spine_clustering {
                let _ = writeln!(
                    out,
                    "quality: spine clustering pairwise precision {}, recall {}",
                    optional_percent(p.precision),
                    optional_percent(p.recall)
                );
            }
            for e in &q.extracts {
                let _ = writeln!(
                    out,
                    "quality: `{}` links pairwise precision {}, recall {}",
                    e.extract,
                    optional_percent(e.pairwise.precision),
                    optional_percent(e.pairwise.recall)
                );
            }
            for note in &q.notes {
                let _ = writeln!(out, "quality: {note}");
            }
        }
        let _ = write!(
            out,
            "project key {}, linkage key {}",
            self.project_key_fingerprint, self.linkage_key_fingerprint
        );
        out
    }
}
