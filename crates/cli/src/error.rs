//! The command line's error: every library error, classified into an exit code.

use std::fmt::Write as _;

use crate::exit::Exit;

/// Anything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The pipeline file is wrong.
    #[error(transparent)]
    Pipeline(#[from] linklab_pipeline::PipelineError),
    /// A key file is wrong, or keygen could not write.
    #[error(transparent)]
    Key(#[from] linklab_tokens::KeyError),
    /// The storage layer failed (I/O, a lock held by another run).
    #[error(transparent)]
    Store(#[from] linklab_store::StoreError),
    /// Synthetic data could not be written.
    #[error(transparent)]
    Synth(#[from] linklab_synth::SynthError),
    /// The pseudonymise stage failed.
    #[error(transparent)]
    Pseudonymise(#[from] linklab_pseudonymise::PseudonymiseError),
    /// The link stage failed.
    #[error(transparent)]
    Link(#[from] linklab_link::LinkError),
    /// The evaluate stage failed.
    #[error(transparent)]
    Evaluate(#[from] linklab_evaluate::EvaluateError),
    /// The release stage failed.
    #[error(transparent)]
    Release(#[from] linklab_release::ReleaseError),
    /// A release folder cannot be checked at all.
    #[error(transparent)]
    Check(#[from] linklab_check::CheckError),
    /// The dashboard cannot be built (a folder that is not a release or fails the check).
    #[error(transparent)]
    Dashboard(#[from] linklab_dashboard::DashboardError),
    /// A command-line value is wrong.
    #[error("{0}")]
    Usage(String),
    /// `check-release` found problems.
    #[error("the release folder {dir} fails the disclosure audit in {problems} place(s); the first: {first}")]
    ReleaseRejected {
        /// The folder checked.
        dir: std::path::PathBuf,
        /// How many problems were found.
        problems: usize,
        /// The first problem (file, cell and rule; a cell is named by its labels, which are
        /// published already).
        first: String,
    },
}

impl CliError {
    /// The exit code for this error (see [`Exit`]).
    pub fn exit(&self) -> Exit {
        match self {
            Self::Store(
                linklab_store::StoreError::Locked { .. } | linklab_store::StoreError::LockUnreadable { .. },
            )
            | Self::Release(linklab_release::ReleaseError::Store(
                linklab_store::StoreError::Locked { .. } | linklab_store::StoreError::LockUnreadable { .. },
            )) => Exit::Locked,
            Self::Store(linklab_store::StoreError::Io { .. } | linklab_store::StoreError::Parquet { .. }) => {
                Exit::Internal
            }
            Self::ReleaseRejected { .. }
            | Self::Dashboard(linklab_dashboard::DashboardError::CheckFailed { .. }) => Exit::ReleaseRejected,
            _ => Exit::BadInput,
        }
    }

    /// The message with its chain of causes, one line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                let _ = write!(text, ": {cause_text}");
            }
            source = cause.source();
        }
        text
    }
}
