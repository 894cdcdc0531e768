//! SHA-256s of files that this process has just taken, kept for the next reader of the same
//! unchanged file, so that a file is not read and hashed twice in one run.
//!
//! A command digests a stage's inputs for its skip-if-unchanged state and the stage then checks
//! the same files against their manifest; the command digests a stage's outputs right after the
//! stage wrote them (and knew their SHA-256 as it wrote). Each hash is kept once and handed out
//! once, to the next reader of the file, and only while the file is the same (device, inode,
//! length, modification and status-change times, from the open file).
//!
//! File times come from a clock with a granularity of a few milliseconds: a file can change
//! without its times moving only within that granularity of its last change. So
//! - the hash of a file that was read is kept only if the file had last changed at least
//!   [`SETTLED`] before the read began (any later change moves its times), and any reader may
//!   take it ([`crate::sha256_file`]);
//! - the hash of a file written here is taken only by [`crate::sha256_written_file`], which the
//!   command uses for the digest of a stage's outputs: should the file have changed unseen since
//!   it was written, that digest would differ from the file's and the stage would run again,
//!   which is safe; no check of a stage's inputs takes it.
//!
//! Elsewhere than on Unix nothing is kept.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long before a read a file must have last changed for its hash to be kept.
const SETTLED: Duration = Duration::from_secs(2);

/// What identifies a file's content without reading it: (device, inode, length, modification
/// time, status-change time), seconds and nanoseconds.
type FileId = (u64, u64, u64, i64, i64, i64, i64);

/// How a kept hash was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// By reading a file that had settled.
    Read,
    /// By writing the file.
    Written,
}

/// The hashes kept, by file.
static KNOWN: Mutex<Option<HashMap<FileId, (String, Taken)>>> = Mutex::new(None);

/// The identity of a file's content, from its metadata.
#[cfg(unix)]
fn file_id(meta: &Metadata) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    Some((
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ))
}

/// Nothing is kept elsewhere than on Unix.
#[cfg(not(unix))]
fn file_id(_meta: &Metadata) -> Option<FileId> {
    None
}

/// The time of the file's last change (content or status).
#[cfg(unix)]
fn last_change(meta: &Metadata) -> Option<SystemTime> {
    use std::os::unix::fs::MetadataExt;
    let at = |secs: i64, nanos: i64| {
        let secs = u64::try_from(secs).ok()?;
        let nanos = u32::try_from(nanos).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    };
    Some(at(meta.mtime(), meta.mtime_nsec())?.max(at(meta.ctime(), meta.ctime_nsec())?))
}

/// Nothing is kept elsewhere than on Unix.
#[cfg(not(unix))]
fn last_change(_meta: &Metadata) -> Option<SystemTime> {
    None
}

/// Takes (and forgets) the hash kept for the open `file`, if it is unchanged since and was taken
/// in one of the ways `accept`ed.
pub(crate) fn take(file: &File, accept: &[Taken]) -> Option<String> {
    let id = file_id(&file.metadata().ok()?)?;
    let mut known = KNOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = known.as_mut()?;
    let (_, taken) = known.get(&id)?;
    if !accept.contains(taken) {
        return None;
    }
    known.remove(&id).map(|(sha256, _)| sha256)
}

/// Keeps a hash for the next reader of the file.
fn keep(id: FileId, sha256: String, taken: Taken) {
    let mut known = KNOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    known.get_or_insert_with(HashMap::new).insert(id, (sha256, taken));
}

/// Keeps the hash of `file`, read from `before` (its metadata when the read began) at
/// `started`, if the file has not changed while it was read and had settled before.
pub(crate) fn keep_read(file: &File, before: &Metadata, started: SystemTime, sha256: &str) {
    let (Some(id), Some(changed)) = (file_id(before), last_change(before)) else {
        return;
    };
    let settled = changed
        .checked_add(SETTLED)
        .is_some_and(|settled| settled <= started);
    let unchanged = file.metadata().ok().as_ref().and_then(file_id) == Some(id);
    if settled && unchanged {
        keep(id, sha256.to_owned(), Taken::Read);
    }
}

/// Keeps the hash of a file this process has just written and synced, for its first reader.
pub(crate) fn keep_written(file: &File, sha256: &str) {
    if let Some(id) = file.metadata().ok().as_ref().and_then(file_id) {
        keep(id, sha256.to_owned(), Taken::Written);
    }
}
