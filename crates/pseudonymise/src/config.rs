//! The stage's configuration: plain data the caller builds from the pipeline file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use linklab_store::WorkDir;
use linklab_tokens::{FieldKind, MatchKey};

use crate::{ColumnType, InputFormat};

/// A declared identifier of an extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    /// The field name match keys refer to (`surname`).
    pub name: String,
    /// The extract's column that holds it (`last_name`).
    pub column: String,
    /// Its kind, which chooses the standardisation rule.
    pub kind: FieldKind,
}

impl Identifier {
    /// The identifier `name`, held in `column`, of kind `kind`.
    pub fn new(name: &str, column: &str, kind: FieldKind) -> Self {
        Self {
            name: name.to_owned(),
            column: column.to_owned(),
            kind,
        }
    }
}

/// Everything one run of the stage needs. Plain data: the caller builds it from the pipeline file.
#[derive(Debug, Clone)]
pub struct PseudonymiseConfig {
    /// The extract's name, `[a-z][a-z0-9_]*`.
    pub extract: String,
    /// The extract file.
    pub input: PathBuf,
    /// CSV (delimiter, encoding) or Parquet.
    pub format: InputFormat,
    /// The declared identifiers.
    pub identifiers: Vec<Identifier>,
    /// Columns passed through to the output (typed).
    pub keep: Vec<String>,
    /// Declared types of keep columns; the others are inferred.
    pub types: BTreeMap<String, ColumnType>,
    /// The pipeline's match keys, in order. Keys that use a field this extract does not declare
    /// are skipped (and listed as skipped in the manifest).
    pub match_keys: Vec<MatchKey>,
    /// The identifiers that get comparison tokens (token spec v2), in column order: the
    /// pipeline's `[link] compare` for a probabilistic pipeline, empty for the cascade (the
    /// output is then exactly what it was before v2).
    pub compare: Vec<String>,
    /// The linkage key file (token spec v1).
    pub key_file: PathBuf,
    /// The pipeline's `work_dir`.
    pub work_dir: WorkDir,
    /// The largest share of rejected records (0 to 1) that still lets the stage succeed.
    pub max_reject_fraction: f64,
    /// Records per batch ([`DEFAULT_BATCH_ROWS`] normally).
    pub batch_rows: usize,
    /// The last date of birth accepted as valid (normally today's date).
    pub today: NaiveDate,
    /// `(i, n)`: process only partition `i` of `n` (1-based) of the extract, writing its own
    /// part files and a partial manifest (see the crate documentation); `None` for the whole
    /// extract.
    pub partition: Option<(u32, u32)>,
}
