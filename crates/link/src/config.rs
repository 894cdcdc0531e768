//! What [`crate::run`] links and how: [`LinkConfig`], its defaults and its validation.

use std::path::PathBuf;

use linklab_store::WorkDir;
use linklab_tokens::MAX_MATCH_KEYS;

use crate::{Engine, LinkError, ProbabilisticConfig};

/// The default memory limit: 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 4 << 30;
/// The default largest number of spine records of one person.
pub const DEFAULT_MAX_CLUSTER_SIZE: usize = 10;
/// Estimated bytes per (spine record, key) of the spine's hash tables while they are built: a
/// hash table slot (36 bytes, at most 7/8 full, rounded up to a power of two: about 80) plus
/// the (token, record) row it is built from (36).
pub(crate) const BYTES_PER_SPINE_TOKEN: u64 = 116;
/// Room for Parquet reading and writing (a row group each way) and spill buffers.
pub(crate) const IO_RESERVE: u64 = 96 << 20;
/// The most partitions (and so open spill files) a run uses.
pub(crate) const MAX_PARTITIONS: u64 = 256;

/// What [`run`] links, and how.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Match key names in cascade order, strongest first (`tok_<name>` columns).
    pub match_keys: Vec<String>,
    /// The extract whose records define the persons.
    pub spine: String,
    /// Every extract to link, the spine included.
    pub extracts: Vec<String>,
    /// The pipeline's work folder.
    pub work_dir: WorkDir,
    /// The project key file (same format as a linkage key) person ids are derived with.
    pub project_key_file: PathBuf,
    /// Bytes the spine's hash tables may use before the work is partitioned and spilled.
    pub memory_limit: u64,
    /// The most spine records one person may have.
    pub max_cluster_size: usize,
    /// A folder written by `linklab synth` (holding `truth/records.csv`) to measure quality.
    pub truth_dir: Option<PathBuf>,
    /// Which engine runs the relational steps (default: [`Engine::Embedded`]).
    pub engine: Engine,
    /// How records are matched (default: [`Method::Cascade`]).
    pub method: Method,
}

/// How the link stage decides that two records are the same person.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// The match-key cascade.
    Cascade,
    /// A Fellegi–Sunter model over per-field comparison tokens.
    Probabilistic(ProbabilisticConfig),
}

impl LinkConfig {
    /// A configuration with the default memory limit and cluster size, and no truth.
    pub fn new(
        match_keys: Vec<String>,
        spine: impl Into<String>,
        extracts: Vec<String>,
        work_dir: WorkDir,
        project_key_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            match_keys,
            spine: spine.into(),
            extracts,
            work_dir,
            project_key_file: project_key_file.into(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_cluster_size: DEFAULT_MAX_CLUSTER_SIZE,
            truth_dir: None,
            engine: Engine::Embedded,
            method: Method::Cascade,
        }
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn validate(cfg: &LinkConfig) -> Result<(), LinkError> {
    let fail = |reason: String| Err(LinkError::Config { reason });
    if cfg.match_keys.is_empty() {
        return fail("no match keys are configured".into());
    }
    if cfg.match_keys.len() > MAX_MATCH_KEYS {
        return fail(format!(
            "{} match keys are configured; at most {MAX_MATCH_KEYS} are supported",
            cfg.match_keys.len()
        ));
    }
    for (i, key) in cfg.match_keys.iter().enumerate() {
        if !valid_name(key) {
            return fail(format!(
                "match key `{key}` is not a valid name: it must match [a-z][a-z0-9_]*"
            ));
        }
        if cfg.match_keys[..i].contains(key) {
            return fail(format!("match key `{key}` is listed twice"));
        }
    }
    for (i, extract) in cfg.extracts.iter().enumerate() {
        if !valid_name(extract) {
            return fail(format!(
                "extract `{extract}` is not a valid name: it must match [a-z][a-z0-9_]*"
            ));
        }
        if extract == "persons" {
            return fail("an extract may not be called `persons`: linked/persons/ holds the persons".into());
        }
        if cfg.extracts[..i].contains(extract) {
            return fail(format!("extract `{extract}` is listed twice"));
        }
    }
    if cfg.extracts.len() > usize::from(u16::MAX) {
        return fail(format!(
            "{} extracts are configured; at most {} are supported",
            cfg.extracts.len(),
            u16::MAX
        ));
    }
    if !cfg.extracts.contains(&cfg.spine) {
        return fail(format!(
            "the spine `{}` is not one of the extracts to link",
            cfg.spine
        ));
    }
    if let Method::Probabilistic(p) = &cfg.method {
        validate_probabilistic(p)?;
    }
    if cfg.max_cluster_size == 0 {
        return fail("max_cluster_size must be at least 1".into());
    }
    Ok(())
}

fn validate_probabilistic(p: &ProbabilisticConfig) -> Result<(), LinkError> {
    let fail = |reason: String| Err(LinkError::Config { reason });
    if !(p.match_probability > 0.0 && p.match_probability < 1.0) {
        return fail("match_probability must be between 0 and 1, both excluded".into());
    }
    if p.compare.is_empty() {
        return fail("the probabilistic method compares no field: list some in `compare`".into());
    }
    if p.compare.len() > crate::probabilistic::MAX_FIELDS {
        return fail(format!(
            "{} fields are compared; at most {} are supported",
            p.compare.len(),
            crate::probabilistic::MAX_FIELDS
        ));
    }
    for (i, field) in p.compare.iter().enumerate() {
        if !valid_name(&field.name) {
            return fail(format!(
                "compared field `{}` is not a valid name: it must match [a-z][a-z0-9_]*",
                field.name
            ));
        }
        if p.compare[..i].iter().any(|f| f.name == field.name) {
            return fail(format!("compared field `{}` is listed twice", field.name));
        }
    }
    Ok(())
}
