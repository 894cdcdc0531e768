use std::path::PathBuf;

/// Why the dashboard cannot be built. Every variant names the folder or file; none carries a
/// published value beyond a programme's name, which its release already publishes.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// No release folder was given.
    #[error("the dashboard needs at least one release folder")]
    NoReleases,
    /// The path is not a release folder (not a folder, or no readable release manifest).
    #[error("{dir} is not a release folder: {reason}")]
    NotARelease {
        /// The folder given.
        dir: PathBuf,
        /// Why (the checker's words).
        reason: String,
    },
    /// The folder fails `check-release`: the dashboard shows only releases that pass it.
    #[error(
        "the release folder {dir} fails check-release in {problems} place(s), so the dashboard will not show it; the first: {first}"
    )]
    CheckFailed {
        /// The folder.
        dir: PathBuf,
        /// How many problems the checker found.
        problems: usize,
        /// The first problem (file, cell and rule).
        first: String,
    },
    /// A release passes the check but lacks a file the dashboard reads, or the file is not in
    /// the form the evaluation writes.
    #[error("the release folder {dir} cannot be shown: {file}: {reason}")]
    Unreadable {
        /// The folder.
        dir: PathBuf,
        /// The file inside it.
        file: String,
        /// What is wrong (a row and column, never a value).
        reason: String,
    },
    /// Two folders hold programmes with the same name.
    #[error(
        "two release folders hold a programme named {name:?}: {first} and {second}; each programme must have its own name"
    )]
    DuplicateName {
        /// The shared name (published in both manifests).
        name: String,
        /// The first folder.
        first: PathBuf,
        /// The second folder.
        second: PathBuf,
    },
    /// The output folder is a release folder: a page written into it would be a file its
    /// manifest does not list, and the release would fail `check-release`.
    #[error(
        "{out} is a release folder: writing {page} into it would add a file its manifest does not list; choose another --out folder"
    )]
    OutIsRelease {
        /// The output folder.
        out: PathBuf,
        /// The page's file name.
        page: &'static str,
    },
    /// The checker itself failed (an I/O error, a solver failure).
    #[error("cannot check the release folder {dir}: {source}")]
    Check {
        /// The folder.
        dir: PathBuf,
        /// The checker's error.
        #[source]
        source: linklab_check::CheckError,
    },
    /// The page cannot be written.
    #[error(transparent)]
    Store(#[from] linklab_store::StoreError),
}
