use std::path::PathBuf;

/// Errors of the storage layer. Each names the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O operation on a path failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "cannot write".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file could not be read or written.
    #[error("invalid JSON in {path}: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("parquet error in {path}: {source}")]
    Parquet {
        /// The Parquet file.
        path: PathBuf,
        /// What the parquet crate reported.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Another run holds the lock of this `work_dir`.
    #[error(
        "another linklab run (pid {pid} on host {host}) is using {path}; wait for it to finish, or remove the lock file if that process is gone"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The process id written in the lock file.
        pid: u32,
        /// The host written in the lock file.
        host: String,
    },
    /// A lock file exists but does not name its owner (empty, garbled or unreadable): it is never
    /// taken to be stale.
    #[error(
        "the lock {path} does not name the run holding it; if no linklab run is using this folder, remove the lock file"
    )]
    LockUnreadable {
        /// The lock file.
        path: PathBuf,
    },
}

impl StoreError {
    /// Wraps an I/O error of `action` on `path` (for `map_err`).
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}
