//! Runs stages under the work_dir lock, and skips a stage whose inputs, settings and key
//! fingerprints are unchanged since its last success.
//!
//! For each finished stage the runner keeps `work_dir/state/<stage>.json` with a fingerprint of
//! what went in (SHA-256 of every input file, the stage's settings, key fingerprints, the tool
//! version) and a digest of what came out. A stage is skipped only if both still match.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use linklab_store::{FileIdentity, StoreError, WorkDir, read_json, sha256_file, write_json_atomic};
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
///
/// # Hashing each file once
/// The fingerprint holds the SHA-256 of every input file. The inputs are hashed before the stage
/// only to compare with a last success: if the stage has none (a first run, or the last one
/// failed or changed), a file is hashed before the stage only if its modification time is too
/// recent to show a later write ([`RACY`]); the others are noted by identity (device, inode,
/// size, modification time) and hashed after the stage, or their digest is taken from the stage,
/// which notes the digest of the bytes it read ([`linklab_store::note_sha256`]). If such a
/// file's identity or a folder's list of files changed while the stage ran, no success is
/// recorded (the stage runs again next time), since the digest could then describe other bytes
/// than the stage read. The outputs are digested after the stage as before, with the digests the
/// stage took of the files as it wrote them ([`linklab_store::noted_sha256`]): a noted digest is
/// used only while the file still has the identity it was noted with, and a wrong one could only
/// make the next run's check fail, never pass.
pub fn run_stage(work: &WorkDir, stage: StageRun<'_>) -> Result<Outcome, CliError> {
    let state_path = work.state().join(format!("{}.json", stage.name));
    let previous = read_json::<StageState>(&state_path).ok();
    let listed = list_paths(&stage.inputs)?;
    let mut shas: Vec<Vec<Option<String>>> = listed.iter().map(|l| vec![None; l.files.len()]).collect();
    if let Some(previous) = &previous {
        hash_where(&listed, &mut shas, |_| true)?;
        let fingerprint = fingerprint(&stage, &combine(&stage.inputs, &listed, &shas));
        if previous.fingerprint == fingerprint
            && digest_paths(&stage.outputs, false).ok().as_ref() == Some(&previous.outputs_digest)
        {
            tracing::info!(stage = %stage.name, "skipped: inputs, settings and keys are unchanged since its last success");
            return Ok(Outcome::Skipped);
        }
    } else {
        let now = SystemTime::now();
        hash_where(&listed, &mut shas, |file| {
            file.identity.is_none_or(|id| racy(id, now))
        })?;
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
    (stage.exec)()?;
    let StageRun {
        name,
        inputs,
        settings,
        key_fingerprints,
        outputs,
        ..
    } = stage;
    // The inputs not hashed before the stage must be the files they were then.
    let deferred = shas.iter().flatten().any(Option::is_none);
    if deferred && !same_files(&listed, &list_paths(&inputs)?) {
        tracing::warn!(stage = %name, "an input changed while the stage ran: its success is not recorded, so it runs again next time");
        return Ok(Outcome::Ran);
    }
    for (listing, shas) in listed.iter().zip(&mut shas) {
        for (file, sha) in listing.files.iter().zip(shas.iter_mut()) {
            if sha.is_none() {
                *sha = linklab_store::noted_sha256(&file.path);
            }
        }
    }
    hash_where(&listed, &mut shas, |_| true)?;
    let record = StageState {
        fingerprint: fingerprint_of(
            &name,
            &settings,
            &key_fingerprints,
            &combine(&inputs, &listed, &shas),
        ),
        stage: name.clone(),
        outputs_digest: digest_paths(&outputs, true)?,
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tool_version: linklab_store::TOOL_VERSION.to_owned(),
    };
    write_json_atomic(&state_path, &record)?;
    tracing::info!(stage = %name, "finished");
    Ok(Outcome::Ran)
}

/// How recent a modification time may hide a write made after the file was looked at: a file
/// modified less than this before the stage starts is hashed before it. (Timestamps are coarse:
/// a write in the same tick as the last one may leave the modification time as it was; two
/// seconds also covers file systems that keep times to the second or two.)
pub const RACY: Duration = Duration::from_secs(2);

/// Whether a write to the file after `now` could leave its identity unchanged.
fn racy(identity: FileIdentity, now: SystemTime) -> bool {
    now.duration_since(identity.modified())
        .map_or(true, |age| age < RACY)
}

/// Whether `stage`'s last success had this fingerprint and left the outputs that are there now.
fn unchanged(work: &WorkDir, stage: &StageRun<'_>, fingerprint: &str) -> bool {
    let state_path = work.state().join(format!("{}.json", stage.name));
    read_json::<StageState>(&state_path).is_ok_and(|previous| {
        previous.fingerprint == fingerprint
            && digest_paths(&stage.outputs, false).ok().as_ref() == Some(&previous.outputs_digest)
    })
}

/// Whether every stage of `stages`, which read the same inputs (the partitions of one extract),
/// would be skipped: its last success had the same inputs, settings and keys, and its outputs
/// are intact. The inputs are digested once.
pub fn all_unchanged(work: &WorkDir, stages: &[StageRun<'_>]) -> Result<bool, CliError> {
    let Some(first) = stages.first() else {
        return Ok(false);
    };
    let inputs = digest_paths(&first.inputs, false)?;
    Ok(stages
        .iter()
        .all(|stage| stage.inputs == first.inputs && unchanged(work, stage, &fingerprint(stage, &inputs))))
}

fn fingerprint(stage: &StageRun<'_>, inputs_digest: &str) -> String {
    fingerprint_of(
        &stage.name,
        &stage.settings,
        &stage.key_fingerprints,
        inputs_digest,
    )
}

fn fingerprint_of(name: &str, settings: &serde_json::Value, keys: &[String], inputs_digest: &str) -> String {
    let record = serde_json::json!({
        "stage": name,
        "tool_version": linklab_store::TOOL_VERSION,
        "settings": settings,
        "inputs": inputs_digest,
        "keys": keys,
    });
    hex::encode(Sha256::digest(record.to_string().as_bytes()))
}

/// A file below one of a stage's paths: its path relative to that path, where it is, and its
/// identity when it was listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    rel: String,
    path: PathBuf,
    identity: Option<FileIdentity>,
}

/// What is at one of a stage's paths: whether it exists, and its files (the file itself, or
/// every file below the folder, hidden staging files excluded), by relative path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listing {
    exists: bool,
    files: Vec<Listed>,
}

/// The listing of each path, with the files' identities.
fn list_paths(paths: &[PathBuf]) -> Result<Vec<Listing>, CliError> {
    paths
        .iter()
        .map(|path| {
            let mut files = Vec::new();
            collect_files(path, path, &mut files)?;
            Ok(Listing {
                exists: path.exists(),
                files: files
                    .into_iter()
                    .map(|(rel, path)| Listed {
                        identity: FileIdentity::of_path(&path),
                        rel,
                        path,
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Whether two listings hold the same files with the same identities (each known).
fn same_files(before: &[Listing], after: &[Listing]) -> bool {
    before == after && before.iter().flat_map(|l| &l.files).all(|f| f.identity.is_some())
}

/// Hashes, side by side, the listed files that have no digest yet and that `wanted` picks.
fn hash_where(
    listed: &[Listing],
    shas: &mut [Vec<Option<String>>],
    wanted: impl Fn(&Listed) -> bool + Sync,
) -> Result<(), CliError> {
    listed
        .par_iter()
        .zip(shas.par_iter_mut())
        .try_for_each(|(listing, shas)| {
            listing
                .files
                .par_iter()
                .zip(shas.par_iter_mut())
                .filter(|(file, sha)| sha.is_none() && wanted(file))
                .try_for_each(|(file, sha)| {
                    *sha = Some(sha256_file(&file.path)?);
                    Ok::<_, StoreError>(())
                })
        })?;
    Ok(())
}

/// The digest of listed files whose SHA-256 are all known, as [`digest_paths`] gives it.
fn combine(paths: &[PathBuf], listed: &[Listing], shas: &[Vec<Option<String>>]) -> String {
    let mut hasher = Sha256::new();
    for ((path, listing), shas) in paths.iter().zip(listed).zip(shas) {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        if !listing.exists {
            hasher.update(b"<missing>");
        }
        for (file, sha) in listing.files.iter().zip(shas) {
            hasher.update(file.rel.as_bytes());
            hasher.update([0x1f]);
            hasher.update(sha.as_deref().expect("every file was hashed").as_bytes());
            hasher.update([0x1e]);
        }
    }
    hex::encode(hasher.finalize())
}

/// A digest of the content of files and folders (folders: every file below, by relative path,
/// hidden staging files excluded). A missing path has its own digest, so it never matches one
/// that exists. With `noted`, a file's digest noted by this process while it had the identity it
/// has now is used instead of reading it (only after a stage, for the digests it leaves: never
/// to decide that one may be skipped).
fn digest_paths(paths: &[PathBuf], noted: bool) -> Result<String, CliError> {
    let listed = list_paths(paths)?;
    let mut shas: Vec<Vec<Option<String>>> = listed
        .iter()
        .map(|listing| {
            listing
                .files
                .iter()
                .map(|f| noted.then(|| linklab_store::noted_sha256(&f.path)).flatten())
                .collect()
        })
        .collect();
    hash_where(&listed, &mut shas, |_| true)?;
    Ok(combine(paths, &listed, &shas))
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A stage that reads `input` and writes `out`, doing `also` while it runs.
    fn stage<'a>(input: &Path, out: &Path, also: impl FnOnce() + 'a) -> StageRun<'a> {
        let (from, to) = (input.to_path_buf(), out.to_path_buf());
        StageRun {
            name: "copy".into(),
            inputs: vec![input.to_path_buf()],
            settings: serde_json::json!({}),
            key_fingerprints: Vec::new(),
            outputs: vec![out.to_path_buf()],
            exec: Box::new(move || {
                fs::copy(&from, &to).map_err(StoreError::io("cannot copy", &from))?;
                also();
                Ok(())
            }),
        }
    }

    /// Writes `bytes` to `path` with a modification time a minute ago.
    fn write_old(path: &Path, bytes: &[u8]) {
        fs::write(path, bytes).unwrap();
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn inputs_hashed_after_the_stage_make_a_rerun_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path().join("work"));
        let (input, out) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
        // Old enough to be hashed after the stage, and fresh (hashed before it).
        for old in [true, false] {
            let _ = fs::remove_dir_all(work.state());
            if old {
                write_old(&input, b"a,b\n1,2\n");
            } else {
                fs::write(&input, b"a,b\n1,2\n").unwrap();
            }
            assert_eq!(
                run_stage(&work, stage(&input, &out, || {})).unwrap(),
                Outcome::Ran
            );
            assert_eq!(
                run_stage(&work, stage(&input, &out, || {})).unwrap(),
                Outcome::Skipped
            );
            // A changed input runs the stage again.
            write_old(&input, b"a,b\n1,3\n");
            assert_eq!(
                run_stage(&work, stage(&input, &out, || {})).unwrap(),
                Outcome::Ran
            );
            assert_eq!(
                run_stage(&work, stage(&input, &out, || {})).unwrap(),
                Outcome::Skipped
            );
        }
    }

    #[test]
    fn an_input_that_changes_while_the_stage_runs_is_never_taken_as_read() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path().join("work"));
        let (input, out) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
        for old in [true, false] {
            let _ = fs::remove_dir_all(work.state());
            if old {
                write_old(&input, b"a,b\n1,2\n");
            } else {
                fs::write(&input, b"a,b\n1,2\n").unwrap();
            }
            // The stage copies the first version; the input then changes before it ends.
            let change = || fs::write(&input, b"a,b\n9,9\n").unwrap();
            assert_eq!(
                run_stage(&work, stage(&input, &out, change)).unwrap(),
                Outcome::Ran
            );
            // So the next run must not skip: its output is of the old version.
            assert_eq!(
                run_stage(&work, stage(&input, &out, || {})).unwrap(),
                Outcome::Ran
            );
            assert_eq!(fs::read(&out).unwrap(), b"a,b\n9,9\n");
            assert_eq!(
                run_stage(&work, stage(&input, &out, || {})).unwrap(),
                Outcome::Skipped
            );
        }
    }
}
