use std::path::{Path, PathBuf};

/// The layout of a pipeline's `work_dir` (see `pipeline-v1.md`).
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// Wraps the `work_dir` folder.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `pseudonymised/<extract>/`: the extract's Parquet part files.
    pub fn pseudonymised(&self, extract: &str) -> PathBuf {
        self.root.join("pseudonymised").join(extract)
    }

    /// `pseudonymised/<extract>.manifest.json`.
    pub fn pseudonymised_manifest(&self, extract: &str) -> PathBuf {
        self.root
            .join("pseudonymised")
            .join(format!("{extract}.manifest.json"))
    }

    /// `linked/`: persons, one folder per extract, and the linkage report.
    pub fn linked(&self) -> PathBuf {
        self.root.join("linked")
    }

    /// `linked/<name>/`, where name is `persons` or an extract.
    pub fn linked_table(&self, name: &str) -> PathBuf {
        self.linked().join(name)
    }

    /// `linked/linkage-report.json`.
    pub fn linkage_report(&self) -> PathBuf {
        self.linked().join("linkage-report.json")
    }

    /// `evaluation/`: the analysis frame and the evaluation's candidate outputs.
    pub fn evaluation(&self) -> PathBuf {
        self.root.join("evaluation")
    }

    /// `release-audit/`: the audit trail of the release stage (never released).
    pub fn release_audit(&self) -> PathBuf {
        self.root.join("release-audit")
    }

    /// `spill/`: scratch space for stages that partition their work.
    pub fn spill(&self) -> PathBuf {
        self.root.join("spill")
    }

    /// `state/`: the runner's record of finished stages.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// `linklab.lock`: held while a run uses this folder.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("linklab.lock")
    }
}
