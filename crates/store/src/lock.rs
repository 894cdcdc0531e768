use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// How many times a lock that changes hands under us is looked at again before giving up.
const ATTEMPTS: usize = 20;

/// An exclusive lock on a folder (a `work_dir`, a `release_dir`), held for the life of the value.
///
/// The lock file names its owner: host, process id and a random id of this lock. It is written
/// whole under a temporary name and hard-linked into place, which fails if a lock is already
/// there, so no reader ever sees a lock without its owner. A lock is stale only when it names
/// this host and a process that is gone (a killed run): it is then cleared with a warning and
/// taken over. A lock of another host, or one that cannot be read, is never taken to be stale:
/// the user is asked to remove it. Dropping the value removes the lock file only if it still holds
/// this lock's content.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    content: String,
}

/// The owner a lock file names.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    host: String,
    pid: u32,
}

impl Lock {
    /// Takes the lock at `path`, or fails with [`StoreError::Locked`] if a live process (or a
    /// process on another host) holds it, or [`StoreError::LockUnreadable`] if the lock file does
    /// not name its owner.
    pub fn acquire(path: &Path) -> Result<Self, StoreError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(StoreError::io("cannot create folder", dir))?;
        let host = this_host();
        for _ in 0..ATTEMPTS {
            if let Some(content) = publish(dir, path, &host)? {
                return Ok(Self {
                    path: path.to_path_buf(),
                    content,
                });
            }
            let seen = match fs::read_to_string(path) {
                Ok(text) => text,
                // Released between our attempt and this read: try again.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(_) => {
                    return Err(StoreError::LockUnreadable {
                        path: path.to_path_buf(),
                    });
                }
            };
            let Some(owner) = parse(&seen) else {
                return Err(StoreError::LockUnreadable {
                    path: path.to_path_buf(),
                });
            };
            if host.is_empty() || owner.host != host || process_alive(owner.pid) {
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                    pid: owner.pid,
                    host: owner.host,
                });
            }
            clear_stale(path, &seen)?;
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
        // Only our own lock: a lock cleared as stale and taken by another run is theirs.
        if fs::read_to_string(&self.path).is_ok_and(|text| text == self.content) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes a lock naming this process under a temporary name and hard-links it to `path`.
/// Returns the lock's content, or `None` if a lock is already there.
fn publish(dir: &Path, path: &Path, host: &str) -> Result<Option<String>, StoreError> {
    let tmp = tempfile::Builder::new()
        .prefix(".linklab-lock-")
        .tempfile_in(dir)
        .map_err(StoreError::io("cannot create a temporary file in", dir))?;
    // The temporary name is random and unique in the folder: it tells two locks of one process apart.
    let id = tmp
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let content = format!("host {host}\npid {}\nid {id}\n", std::process::id());
    let mut file = tmp.as_file();
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(StoreError::io("cannot write", tmp.path()))?;
    match fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(Some(content)),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(StoreError::io("cannot create lock", path)(e)),
    }
}

/// The owner named by a lock file's text, or `None` if the text does not name one.
fn parse(text: &str) -> Option<Owner> {
    let mut host = None;
    let mut pid = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("host", h)) => host = Some(h.to_owned()),
            Some(("pid", p)) => pid = p.parse().ok(),
            _ => {}
        }
    }
    Some(Owner {
        host: host?,
        pid: pid?,
    })
}

/// Removes the lock at `path` if it still holds `seen` (a stale lock). Runs that find the same
/// stale lock at once take turns through an OS file lock on `<path>.break` (which the kernel
/// releases if a run dies), so only the first removes it and none removes a fresh lock. The
/// holder removes `<path>.break` before it lets go; a run that locked a `.break` file that was
/// removed meanwhile tries again with the new one.
fn clear_stale(path: &Path, seen: &str) -> Result<(), StoreError> {
    let mut breaker_name = path.as_os_str().to_owned();
    breaker_name.push(".break");
    let breaker_path = PathBuf::from(breaker_name);
    let breaker = loop {
        let file: File = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&breaker_path)
            .map_err(StoreError::io("cannot open", &breaker_path))?;
        file.lock()
            .map_err(StoreError::io("cannot lock", &breaker_path))?;
        if same_file(&file, &breaker_path) {
            break file;
        }
    };
    let result = if fs::read_to_string(path).is_ok_and(|now| now == seen) {
        tracing::warn!(lock = %path.display(), "clearing a stale lock left by a run that is no longer alive");
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("cannot remove stale lock", path)(e)),
        }
    } else {
        Ok(())
    };
    if cfg!(unix) {
        let _ = fs::remove_file(&breaker_path);
    }
    drop(breaker);
    result
}

/// Whether the open `file` is the file at `path` now.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inode numbers the `.break` file is never removed, so the open file is always it.
#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    true
}

/// This machine's host name, or an empty string if it cannot be told (then no lock is stale).
pub(crate) fn this_host() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// Whether a process with this id is running here (a zombie is not). On systems without `/proc`
/// a lock is never considered stale, so the user is asked to remove it.
pub(crate) fn process_alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if !proc_root.is_dir() {
        return true;
    }
    match fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => proc_root.join(pid.to_string()).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_of(host: &str, pid: u32) -> String {
        format!("host {host}\npid {pid}\nid test\n")
    }

    /// A process id that cannot be alive (pid_max is at most 2^22 on Linux).
    const DEAD: u32 = 4_294_967_290;

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
    fn the_lock_names_host_and_process_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linklab.lock");
        let lock = Lock::acquire(&path).unwrap();
        let owner = parse(&fs::read_to_string(lock.path()).unwrap()).unwrap();
        assert_eq!(
            owner,
            Owner {
                host: this_host(),
                pid: std::process::id()
            }
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["linklab.lock"]);
    }

    /// Each case: what the lock file holds beforehand, and whether it is taken over.
    fn check(existing: &str, taken: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linklab.lock");
        fs::write(&path, existing).unwrap();
        match Lock::acquire(&path) {
            Ok(lock) => {
                assert!(taken, "{existing:?} was taken over");
                let owner = parse(&fs::read_to_string(lock.path()).unwrap()).unwrap();
                assert_eq!(owner.pid, std::process::id());
            }
            Err(e) => {
                assert!(!taken, "{existing:?} was not taken over: {e}");
                assert_eq!(
                    fs::read_to_string(&path).unwrap(),
                    existing,
                    "a held lock is left alone"
                );
            }
        }
    }

    #[test]
    fn only_a_lock_of_a_dead_process_on_this_host_is_stale() {
        let host = this_host();
        check(&lock_of(&host, DEAD), true);
        check(&lock_of(&host, std::process::id()), false);
        check(&lock_of("another-node", DEAD), false);
        check("", false);
        check("\n", false);
        check("4294967290\n", false);
        check("host x\n", false);
        check("pid 12\n", false);
    }

    #[test]
    fn an_unreadable_lock_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linklab.lock");
        fs::write(&path, "").unwrap();
        let err = Lock::acquire(&path).unwrap_err();
        assert!(matches!(err, StoreError::LockUnreadable { .. }), "{err}");
        insta::assert_snapshot!(
            err.to_string()
                .replace(&dir.path().display().to_string(), "[DIR]")
        );
    }

    #[test]
    fn drop_leaves_a_lock_that_is_no_longer_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linklab.lock");
        let lock = Lock::acquire(&path).unwrap();
        let other = lock_of("another-node", 12);
        fs::write(&path, &other).unwrap();
        drop(lock);
        assert_eq!(fs::read_to_string(&path).unwrap(), other);
    }

    #[test]
    fn this_process_is_alive_and_a_huge_pid_is_not() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(DEAD));
    }
}
