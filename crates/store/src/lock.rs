use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// An exclusive lock on a `work_dir`, held for the life of the value.
///
/// The lock file holds the owner's process id. A lock whose process is gone (a killed run) is
/// stale: it is cleared with a warning and taken over.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Takes the lock at `path`, or fails with [`StoreError::Locked`] if a live process holds it.
    pub fn acquire(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(StoreError::io("cannot create folder", dir))?;
        }
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id()).map_err(StoreError::io("cannot write", path))?;
                    file.sync_all().map_err(StoreError::io("cannot sync", path))?;
                    return Ok(Self {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let text = fs::read_to_string(path).unwrap_or_default();
                    match text.trim().parse::<u32>() {
                        Ok(pid) if process_alive(pid) => {
                            return Err(StoreError::Locked {
                                path: path.to_path_buf(),
                                pid,
                            });
                        }
                        _ => {
                            tracing::warn!(lock = %path.display(), "clearing a stale lock left by a run that is no longer alive");
                            match fs::remove_file(path) {
                                Ok(()) => {}
                                Err(e) if e.kind() == ErrorKind::NotFound => {}
                                Err(e) => return Err(StoreError::io("cannot remove stale lock", path)(e)),
                            }
                        }
                    }
                }
                Err(e) => return Err(StoreError::io("cannot create lock", path)(e)),
            }
        }
        Err(StoreError::Io {
            action: "cannot take lock",
            path: path.to_path_buf(),
            source: std::io::Error::other("the lock kept changing hands"),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether a process with this id exists. On systems without `/proc` a lock is never
/// considered stale, so the user is asked to remove it.
fn process_alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if !proc_root.is_dir() {
        return true;
    }
    proc_root.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_while_first_is_held_and_succeeds_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linklab.lock");
        let first = Lock::acquire(&path).unwrap();
        let err = Lock::acquire(&path).unwrap_err();
        assert!(matches!(err, StoreError::Locked { pid, .. } if pid == std::process::id()));
        drop(first);
        assert!(!path.exists());
        let _again = Lock::acquire(&path).unwrap();
    }

    #[test]
    fn stale_lock_of_a_dead_process_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linklab.lock");
        // Process ids wrap well below this on Linux (pid_max is at most 2^22).
        fs::write(&path, "4294967290\n").unwrap();
        let lock = Lock::acquire(&path).unwrap();
        assert_eq!(
            fs::read_to_string(lock.path()).unwrap().trim(),
            std::process::id().to_string()
        );
    }
}
