//! `[link] method = "probabilistic"`: a Fellegi–Sunter model over per-field comparison tokens
//! (token spec v2), documented in `docs/linkage.md`.
//!
//! 1. The spine's comparison tokens are read into flat arrays ([`fields::CmpData`]), and its
//!    blocking keys for pass one's rules indexed ([`blocking`]).
//! 2. Pass one streams every extract (the spine against itself) in chunks: each chunk's
//!    candidate pairs are found by the blocking rules used for fitting (the wide ones) and their
//!    level patterns counted per extract (for a run of more than 500,000 records, those of a
//!    hashed sample of the records only).
//! 3. The models are fitted: u from random spine pairs, shared; per extract (the spine's pairs
//!    with itself for the spine), m by EM rule by rule over its pattern counts, and the prior
//!    its scores imply ([`model`]).
//! 4. Pass two indexes the spine for the rules used for scoring (the tight ones) and streams
//!    again, skipping the last rule's pairs that cannot link ([`prune`]): each
//!    record is decided from its pairs scored by its extract's model, and the
//!    spine's strong pairs are clustered into persons; the linked records that will join the
//!    second round are kept as they are decided; then the persons that a record matches on
//!    complementary fields (one on a NINO, the other on a new surname) are merged ([`decide`]).
//! 5. A second round scores the records left without a person again, against the spine's
//!    records and the linked records of every extract that tell something the spine does not
//!    (a NINO it lacks, a new surname), as records of their persons, and the records whose
//!    two best persons were merged are decided again ([`run`]).
//! 6. `linked/` is written as by the cascade, with `match_probability` and `match_pattern`,
//!    and the report gains the model; `linkage-report.html` shows it ([`report`]).
//!
//! Memory: what stays is the spine's tokens and blocking keys, and 24 bytes per record of the
//! other extracts (its decision); a chunk's pairs are at most [`blocking::BLOCK_CAP`] per
//! blocking key of its records. The chunk size comes from `memory_limit` (and, when it leaves
//! room, the extracts are decoded ahead on reader threads), and the outputs do not depend on
//! it: the pattern counts are sums and every decision is per record.

mod blocking;
mod decide;
mod fields;
mod model;
mod prune;
mod report;
mod run;
mod spark_pairs;

pub use fields::CompareField;
pub use report::{
    BlockingRule, ExtractCount, FieldModel, InputModel, LevelModel, ModelReport, RuleCount, RuleLinks,
    SpineDedup, ThroughLinked, WeightBin, WeightHistogram,
};
pub(crate) use run::run;

/// The most fields one model compares (a level pattern keeps 4 bits per field in 64).
pub const MAX_FIELDS: usize = 16;

/// The settings of `method = "probabilistic"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilisticConfig {
    /// The fields compared, each with its kind.
    pub compare: Vec<CompareField>,
    /// A record links when its best person's match probability is at least this, in (0, 1).
    pub match_probability: f64,
}

#[cfg(test)]
mod tests;
