use std::path::PathBuf;

use linklab_store::StoreError;

/// Errors of the release stage. None of them carries a cell value or an identifier: they name
/// the table, the file, the column and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// A disclosure rule or a table declaration is invalid.
    #[error("invalid release configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A table's source folder lacks a column the table needs, or the column has a type the
    /// release stage cannot tabulate.
    #[error("table {table}: column {column} of {path}: {reason}")]
    Column {
        /// The declared table.
        table: String,
        /// The source folder.
        path: PathBuf,
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// A by-column holds the reserved margin label `Total`, which would make the released table
    /// ambiguous.
    #[error("table {table}: column {column} of {path} holds the reserved margin label Total in a data row")]
    ReservedLabel {
        /// The declared table.
        table: String,
        /// The source folder.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// Secondary suppression did not reach a pattern that passes the audit: nothing is released.
    #[error("table {table} is refused: {reason}")]
    Refused {
        /// The table (or the tables protected jointly with it).
        table: String,
        /// Why.
        reason: String,
    },
    /// The release folder holds a file the previous release manifest does not list: something
    /// wrote there without passing the gate.
    #[error(
        "{path} is not listed in the previous release manifest: it did not pass the disclosure gate; remove it (after checking how it got there) and rerun"
    )]
    Unlisted {
        /// The file.
        path: PathBuf,
    },
    /// The linear programming solver failed on an audit problem.
    #[error("audit solver failed on {context}: {reason}")]
    Solver {
        /// Which table or group of tables.
        context: String,
        /// What the solver reported.
        reason: String,
    },
    /// A release folder cannot be checked (no manifest, unreadable manifest).
    #[error("cannot check {path}: {reason}")]
    Check {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The project key that signs the manifest cannot be read.
    #[error(transparent)]
    Key(#[from] linklab_tokens::KeyError),
    /// Reading or writing a file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ReleaseError {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }
}
