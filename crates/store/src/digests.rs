//! SHA-256 digests this process already took of files, so that a file is hashed once per run.
//!
//! A stage that hashes a file as it reads or writes it (the pseudonymise stage's input, read
//! whole; every Parquet part as it is written; every file hashed by [`crate::sha256_file`], such
//! as the link stage's inputs checked against their manifests) notes the digest with the file's
//! [`FileIdentity`] at that moment. The stage runner asks for it afterwards instead of reading
//! the file again: [`noted_sha256`] gives the digest only while the file still has that
//! identity (device, inode, size and modification time), so a file that was replaced or
//! written to since is hashed again. The notes live in memory, for this process only.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// What tells one version of a file from another without reading it: its device and inode, its
/// size and its modification time. Writing to a file changes its modification time; replacing
/// it changes its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified: SystemTime,
}

impl FileIdentity {
    /// The identity of the file these metadata describe; `None` where the platform gives no
    /// inode (nothing is noted there) or no modification time.
    pub fn of(meta: &Metadata) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self {
                device: meta.dev(),
                inode: meta.ino(),
                size: meta.len(),
                modified: meta.modified().ok()?,
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }

    /// The identity of the file at `path` now (`None` if it cannot be read).
    pub fn of_path(path: &Path) -> Option<Self> {
        Self::of(&std::fs::metadata(path).ok()?)
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's modification time.
    pub fn modified(&self) -> SystemTime {
        self.modified
    }
}

type Notes = HashMap<(u64, u64), (FileIdentity, String)>;

fn notes() -> &'static Mutex<Notes> {
    static NOTES: OnceLock<Mutex<Notes>> = OnceLock::new();
    NOTES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Notes that the file with this identity has this SHA-256 (lowercase hex): the caller hashed
/// exactly the bytes the file held while it had this identity.
pub fn note_sha256(identity: FileIdentity, sha256: &str) {
    let mut notes = notes().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    notes.insert((identity.device, identity.inode), (identity, sha256.to_owned()));
}

/// The SHA-256 noted for the file at `path`, if its identity now is the one it was noted with.
pub fn noted_sha256(path: &Path) -> Option<String> {
    let now = FileIdentity::of_path(path)?;
    let notes = notes().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    notes
        .get(&(now.device, now.inode))
        .filter(|(identity, _)| *identity == now)
        .map(|(_, sha)| sha.clone())
}

/// The SHA-256 (lowercase hex) of the bytes of `chunks`, in order, and their number.
pub fn sha256_chunks<B: AsRef<[u8]>>(chunks: impl IntoIterator<Item = B>) -> (String, u64) {
    use sha2::{Digest, Sha256};
    let mut sha = Sha256::new();
    let mut bytes = 0_u64;
    for chunk in chunks {
        let chunk = chunk.as_ref();
        sha.update(chunk);
        bytes += chunk.len() as u64;
    }
    (hex::encode(sha.finalize()), bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_note_holds_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(noted_sha256(&path), None);
        note_sha256(FileIdentity::of_path(&path).unwrap(), "x");
        assert_eq!(noted_sha256(&path).as_deref(), Some("x"));
        // A rename keeps the file, and so the note.
        let moved = dir.path().join("g");
        std::fs::rename(&path, &moved).unwrap();
        assert_eq!(noted_sha256(&moved).as_deref(), Some("x"));
        // Appending changes its size (and modification time).
        let mut file = std::fs::OpenOptions::new().append(true).open(&moved).unwrap();
        file.write_all(b"d").unwrap();
        drop(file);
        assert_eq!(noted_sha256(&moved), None);
        // Rewriting with the same size changes its modification time.
        note_sha256(FileIdentity::of_path(&moved).unwrap(), "y");
        let file = std::fs::File::options().write(true).open(&moved).unwrap();
        let later = FileIdentity::of_path(&moved).unwrap().modified() + std::time::Duration::from_secs(5);
        file.set_modified(later).unwrap();
        assert_eq!(noted_sha256(&moved), None);
        // A new file in its place is another inode.
        note_sha256(FileIdentity::of_path(&moved).unwrap(), "z");
        std::fs::remove_file(&moved).unwrap();
        std::fs::write(&moved, b"abcd").unwrap();
        assert_eq!(noted_sha256(&moved), None);
    }
}
