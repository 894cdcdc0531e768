use std::path::PathBuf;

use linklab_extract::ExtractError;
use linklab_store::StoreError;
use linklab_tokens::{KeyError, TokenError};

use crate::ColumnType;

/// Errors of the pseudonymise stage. They name the extract, the file, the record, the column and
/// the reason; they never quote a value.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymiseError {
    /// The stage's settings are not usable.
    #[error("extract `{extract}`: {reason}")]
    Config {
        /// The extract's name.
        extract: String,
        /// What is wrong.
        reason: String,
    },
    /// A match key is refused (weak, or a transform that does not apply).
    #[error("extract `{extract}`: {source}")]
    MatchKey {
        /// The extract's name.
        extract: String,
        /// Why the key is refused.
        #[source]
        source: TokenError,
    },
    /// The linkage key could not be loaded.
    #[error("cannot load the linkage key: {0}")]
    Key(#[from] KeyError),
    /// The extract could not be read.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// An output could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A keep column holds a value that does not fit its type.
    #[error(
        "column `{column}` of {}, record {record}{}: a value does not fit the type `{ty}` {}; declare the column as text with `types = {{ {column} = \"string\" }}` on extract `{extract}`",
        path.display(),
        line.map_or(String::new(), |l| format!(" (line {l})")),
        if *inferred { format!("inferred from the first {sample_rows} rows") } else { "declared in the pipeline file".to_owned() }
    )]
    TypeMismatch {
        /// The extract's name.
        extract: String,
        /// The extract file.
        path: PathBuf,
        /// The keep column.
        column: String,
        /// The record number of the value.
        record: u64,
        /// The line on which the record starts (CSV).
        line: Option<u64>,
        /// The column's type.
        ty: ColumnType,
        /// Whether the type was inferred (rather than declared in `types`).
        inferred: bool,
        /// The number of rows the type was inferred from.
        sample_rows: usize,
    },
    /// Too large a share of the records was rejected.
    #[error(
        "extract `{extract}` ({}): {rejected} of {read} records ({:.2}%) were rejected, more than the {:.2}% allowed ({by_reason}){at}; check the delimiter and encoding declared for the extract",
        path.display(),
        percent(*rejected, *read),
        max_fraction * 100.0
    )]
    TooManyRejects {
        /// The extract's name.
        extract: String,
        /// The extract file.
        path: PathBuf,
        /// Records read.
        read: u64,
        /// Records rejected.
        rejected: u64,
        /// The most that is allowed.
        max_fraction: f64,
        /// The counts per reason, e.g. `wrong_field_count: 12`.
        by_reason: String,
        /// `; the limit was passed at record R, line L` when known, else empty.
        at: String,
    },
    /// A worker thread panicked. The panic's own message is not carried, as it could hold a value.
    #[error(
        "internal error: a worker stopped while pseudonymising {context}; no output was written; please report this"
    )]
    WorkerPanic {
        /// Where: the file and the records (numbers only), from [`crate::row_context`].
        context: String,
    },
    /// The outputs of a partitioned run cannot be merged (a partition is missing, duplicated,
    /// disagrees with the others, or its part files changed).
    #[error("extract `{extract}`: the partitioned output cannot be merged: {reason}")]
    Partitions {
        /// The extract's name.
        extract: String,
        /// What is wrong, naming the partitions.
        reason: String,
    },
    /// An internal invariant failed.
    #[error("internal error in extract `{extract}`: {reason}; no output was written; please report this")]
    Internal {
        /// The extract's name.
        extract: String,
        /// What went wrong (never a value).
        reason: String,
    },
}

/// `part` as a percentage of `whole` (0 if `whole` is 0), for messages.
#[allow(clippy::cast_precision_loss)] // A percentage shown to two decimals.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}
