use std::path::PathBuf;

/// Why a release folder cannot be checked at all (problems found in a folder that can be checked
/// are a [`crate::CheckReport`], not an error). No variant carries a published value.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The folder or its manifest cannot be read, or the manifest is not a release manifest.
    #[error("cannot check {path}: {reason}")]
    Unreadable {
        /// The folder or file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key given with `--key` cannot be read.
    #[error(transparent)]
    Key(#[from] linklab_tokens::KeyError),
    /// A file's checksum could not be computed.
    #[error(transparent)]
    Store(#[from] linklab_store::StoreError),
    /// The linear programming solver failed.
    #[error("the audit solver failed on {context}: {reason}")]
    Solver {
        /// Which file and cell.
        context: String,
        /// What the solver reported.
        reason: String,
    },
}

impl CheckError {
    pub(crate) fn unreadable(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Unreadable {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
