use std::path::PathBuf;

use linklab_store::StoreError;

/// Errors of the evaluation stage. Each names the table, column or file it concerns and never a
/// cell value.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The configuration is inconsistent (an input error, exit code 1).
    #[error("invalid evaluation settings: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A linked table the evaluation needs does not exist.
    #[error("linked table {table} not found at {path}; run the link stage first")]
    MissingTable {
        /// The extract (or `persons`).
        table: String,
        /// The folder that was expected.
        path: PathBuf,
    },
    /// A column the evaluation needs is not in a linked table.
    #[error("column {column} not found in linked table {table}")]
    MissingColumn {
        /// The extract.
        table: String,
        /// The column.
        column: String,
    },
    /// A column has a type the evaluation cannot use for its role.
    #[error("column {column} of linked table {table} has type {found}; {role} needs {expected}")]
    ColumnType {
        /// The extract.
        table: String,
        /// The column.
        column: String,
        /// The Arrow type found.
        found: String,
        /// What the column is used for.
        role: &'static str,
        /// The types accepted.
        expected: &'static str,
    },
    /// A text covariate has more levels than persons / threshold.
    #[error(
        "covariate {column} of linked table {table} has more than {limit} categories (persons divided by the disclosure threshold); group its values into at most {limit} categories, or leave it out"
    )]
    TooManyLevels {
        /// The cohort extract.
        table: String,
        /// The covariate.
        column: String,
        /// The most categories allowed.
        limit: usize,
    },
    /// An Arrow operation on a batch failed.
    #[error("cannot process linked table {table}: {source}")]
    Arrow {
        /// The table being read or written.
        table: String,
        /// What arrow reported.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// Reading or writing files failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EvaluateError {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn arrow(table: &str) -> impl FnOnce(arrow::error::ArrowError) -> Self + '_ {
        move |source| Self::Arrow {
            table: table.to_owned(),
            source,
        }
    }
}
