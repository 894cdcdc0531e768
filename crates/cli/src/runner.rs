//! Runs stages under the work_dir lock, and skips a stage whose inputs, settings and key
//! fingerprints are unchanged since its last success.
//!
//! For each finished stage the runner keeps `work_dir/state/<stage>.json` with a fingerprint of
//! what went in (SHA-256 of every input file, the stage's settings, key fingerprints, the tool
//! version) and a digest of what came out. A stage is skipped only if both still match.

use std::fs;
use std::path::{Path, PathBuf};

use linklab_store::{StoreError, WorkDir, read_json, sha256_file, sha256_written_file, write_json_atomic};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::CliError;

/// One stage, ready to run.
pub struct StageRun<'a> {
    /// The state name of its stage of the stage graph ([`linklab_pipeline::StagePlan::state_name`]),
    /// such as `pseudonymise-releases`: the state file's name.
    pub name: String,
    /// Files or folders whose content the stage reads.
    pub inputs: Vec<PathBuf>,
    /// The stage's settings, as they affect its output.
    pub settings: serde_json::Value,
    /// Fingerprints of the keys the stage uses.
    pub key_fingerprints: Vec<String>,
    /// Files or folders the stage writes.
    pub outputs: Vec<PathBuf>,
    /// Does the work.
    pub exec: Box<dyn FnOnce() -> Result<(), CliError> + 'a>,
}

impl std::fmt::Debug for StageRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageRun")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the runner remembers of a stage's last success.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct StageState {
    stage: String,
    fingerprint: String,
    outputs_digest: String,
    finished_at: String,
    tool_version: String,
}

/// Whether a stage ran or was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The stage did its work.
    Ran,
    /// Nothing changed since its last success.
    Skipped,
}

/// Runs `stage` unless its last success had the same fingerprint and its outputs are intact.
pub fn run_stage(work: &WorkDir, stage: StageRun<'_>) -> Result<Outcome, CliError> {
    let state_path = work.state().join(format!("{}.json", stage.name));
    let fingerprint = fingerprint(&stage, &digest_paths(&stage.inputs, sha256_file)?);
    if unchanged(work, &stage, &fingerprint) {
        tracing::info!(stage = %stage.name, "skipped: inputs, settings and keys are unchanged since its last success");
        return Ok(Outcome::Skipped);
    }
    // A failed or changed stage starts clean: forget its last success before touching anything.
    match fs::remove_file(&state_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StoreError::Io {
                action: "cannot remove",
                path: state_path,
                source: e,
            }
            .into());
        }
    }
    tracing::info!(stage = %stage.name, "running");
    let outputs = stage.outputs.clone();
    (stage.exec)()?;
    let record = StageState {
        stage: stage.name.clone(),
        fingerprint,
        // What the stage has just written: its part files' hashes, taken as they were written,
        // need not be read back.
        outputs_digest: digest_paths(&outputs, sha256_written_file)?,
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tool_version: linklab_store::TOOL_VERSION.to_owned(),
    };
    write_json_atomic(&state_path, &record)?;
    tracing::info!(stage = %stage.name, "finished");
    Ok(Outcome::Ran)
}

/// Whether `stage`'s last success had this fingerprint and left the outputs that are there now.
fn unchanged(work: &WorkDir, stage: &StageRun<'_>, fingerprint: &str) -> bool {
    let state_path = work.state().join(format!("{}.json", stage.name));
    read_json::<StageState>(&state_path).is_ok_and(|previous| {
        previous.fingerprint == fingerprint
            && digest_paths(&stage.outputs, sha256_file).ok().as_ref() == Some(&previous.outputs_digest)
    })
}

/// Whether every stage of `stages`, which read the same inputs (the partitions of one extract),
/// would be skipped: its last success had the same inputs, settings and keys, and its outputs
/// are intact. The inputs are digested once.
pub fn all_unchanged(work: &WorkDir, stages: &[StageRun<'_>]) -> Result<bool, CliError> {
    let Some(first) = stages.first() else {
        return Ok(false);
    };
    let inputs = digest_paths(&first.inputs, sha256_file)?;
    Ok(stages
        .iter()
        .all(|stage| stage.inputs == first.inputs && unchanged(work, stage, &fingerprint(stage, &inputs))))
}

fn fingerprint(stage: &StageRun<'_>, inputs_digest: &str) -> String {
    let record = serde_json::json!({
        "stage": stage.name,
        "tool_version": linklab_store::TOOL_VERSION,
        "settings": stage.settings,
        "inputs": inputs_digest,
        "keys": stage.key_fingerprints,
    });
    hex::encode(Sha256::digest(record.to_string().as_bytes()))
}

/// A digest of the content of files and folders (folders: every file below, by relative path,
/// hidden staging files excluded). A missing path has its own digest, so it never matches one
/// that exists. `sha256` hashes one file.
fn digest_paths(
    paths: &[PathBuf],
    sha256: fn(&Path) -> Result<String, StoreError>,
) -> Result<String, CliError> {
    let mut listed = Vec::with_capacity(paths.len());
    for path in paths {
        let mut files = Vec::new();
        collect_files(path, path, &mut files)?;
        listed.push(files);
    }
    // The files are hashed side by side, then fed to the digest in order.
    let shas: Vec<Vec<String>> = listed
        .par_iter()
        .map(|files| files.par_iter().map(|(_, file)| sha256(file)).collect())
        .collect::<Result<_, _>>()?;
    let mut hasher = Sha256::new();
    for ((path, files), shas) in paths.iter().zip(&listed).zip(shas) {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        if !path.exists() {
            hasher.update(b"<missing>");
        }
        for ((rel, _), sha) in files.iter().zip(shas) {
            hasher.update(rel.as_bytes());
            hasher.update([0x1f]);
            hasher.update(sha.as_bytes());
            hasher.update([0x1e]);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(root: &Path, path: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), CliError> {
    if path.is_file() {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        out.push((rel, path.to_path_buf()));
    } else if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .map_err(|source| StoreError::Io {
                action: "cannot list",
                path: path.to_path_buf(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        for entry in entries {
            collect_files(root, &entry, out)?;
        }
    }
    Ok(())
}
