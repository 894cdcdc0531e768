use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::{FileIdentity, StoreError, drafts, note_sha256};

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `path` atomically: `fill` writes into a temporary file (a draft) in the same folder,
/// which is flushed, synced and renamed over `path` only if `fill` succeeds. Drafts that killed
/// processes of this host left in the folder are removed first.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(StoreError::io("cannot create folder", dir))?;
    drafts::sweep_dead(dir, "tmp");
    let tmp = tempfile::Builder::new()
        .prefix(&drafts::prefix("tmp"))
        .tempfile_in(dir)
        .map_err(StoreError::io("cannot create a temporary file in", dir))?;
    let (tmp_file, tmp_path) = tmp.into_parts();
    let mut writer = BufWriter::new(tmp_file);
    fill(&mut writer).map_err(StoreError::io("cannot write", path))?;
    let written = writer.into_inner().map_err(|e| StoreError::Io {
        action: "cannot write",
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    written.sync_all().map_err(StoreError::io("cannot sync", path))?;
    tmp_path.persist(path).map_err(|e| StoreError::Io {
        action: "cannot rename into",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes `value` as pretty JSON (with a final newline) to `path`, atomically.
pub fn write_json_atomic<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), StoreError> {
    let text = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, |w| {
        w.write_all(&text)?;
        w.write_all(b"\n")
    })
}

/// The bytes a signed JSON document is signed over: the document without its `field` (the
/// signature itself), as compact JSON. Writer and checker both parse or build a
/// `serde_json::Value` first, so the bytes do not depend on how the file was laid out.
pub fn signing_bytes(doc: &serde_json::Value, field: &str) -> Vec<u8> {
    let mut doc = doc.clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove(field);
    }
    serde_json::to_vec(&doc).expect("a JSON value serialises")
}

/// Reads a JSON file into `T`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(StoreError::io("cannot read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// The SHA-256 of a file's bytes, as lowercase hex. If the file kept its identity while it was
/// read, the digest is noted ([`note_sha256`]): a stage that checks its inputs' digests spares the
/// stage runner a second read of them.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut file = File::open(path).map_err(StoreError::io("cannot open", path))?;
    let before = file.metadata().ok().as_ref().and_then(FileIdentity::of);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(StoreError::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let sha = hex::encode(hasher.finalize());
    if let Some(identity) = before.filter(|before| FileIdentity::of_path(path) == Some(*before)) {
        note_sha256(identity, &sha);
    }
    Ok(sha)
}

/// A folder built under a staging name and swapped into place by [`StagingDir::commit`].
///
/// If the process dies before `commit`, only the staging folder is left; the next run removes it
/// and starts clean. The final folder is either the old complete one or the new complete one.
#[derive(Debug)]
pub struct StagingDir {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagingDir {
    /// Creates a fresh, empty staging folder next to `target`, named for this host and process
    /// (`.<target>.staging-<host>-<pid>`), so two runs never write into one. Staging folders of
    /// processes of this host that are gone are removed.
    pub fn new(target: &Path) -> Result<Self, StoreError> {
        // A run killed inside `commit`, between its two renames, left the previous folder
        // under the `old` name and none under the target's: put it back first.
        let old = Self::sibling(target, "old");
        if !target.exists() && old.is_dir() {
            fs::rename(&old, target).map_err(StoreError::io("cannot move back", &old))?;
        }
        Self::remove_stale_staging(target)?;
        let host = crate::lock::this_host();
        let staging = Self::sibling(target, &format!("staging-{host}-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .map_err(StoreError::io("cannot remove stale staging folder", &staging))?;
        }
        fs::create_dir_all(&staging).map_err(StoreError::io("cannot create folder", &staging))?;
        Ok(Self {
            staging,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Removes the staging folders beside `target` left by processes of this host that are gone
    /// (and the unnamed one of older versions).
    fn remove_stale_staging(target: &Path) -> Result<(), StoreError> {
        let dir = parent_of(target);
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        let prefix = Self::sibling(target, "staging")
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let host = crate::lock::this_host();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = match name.strip_prefix(&prefix) {
                Some("") => true,
                Some(rest) => rest
                    .strip_prefix('-')
                    .and_then(|rest| rest.rsplit_once('-'))
                    .is_some_and(|(h, pid)| {
                        !host.is_empty()
                            && h == host
                            && pid.parse().is_ok_and(|pid| !crate::lock::process_alive(pid))
                    }),
                None => false,
            };
            if stale {
                let path = entry.path();
                fs::remove_dir_all(&path)
                    .map_err(StoreError::io("cannot remove stale staging folder", &path))?;
            }
        }
        Ok(())
    }

    fn sibling(target: &Path, what: &str) -> PathBuf {
        let name = target
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        parent_of(target).join(format!(".{name}.{what}"))
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Replaces the target folder by the staging folder. Before anything moves, the target must
    /// be a folder whose files can be removed (a read-only one fails here, leaving it as it was);
    /// a previous folder that cannot be removed after the swap is left under the `old` name with
    /// a warning, and removed by the next commit.
    pub fn commit(mut self) -> Result<PathBuf, StoreError> {
        let old = Self::sibling(&self.target, "old");
        if old.exists() {
            remove_tree(&old)?;
        }
        if self.target.exists() {
            check_writable(&self.target)?;
            fs::rename(&self.target, &old).map_err(StoreError::io("cannot move aside", &self.target))?;
        }
        fs::rename(&self.staging, &self.target)
            .map_err(StoreError::io("cannot rename into", &self.target))?;
        if old.exists()
            && let Err(e) = remove_tree(&old)
        {
            tracing::warn!(folder = %old.display(), error = %e, "the previous folder could not be removed; the next run removes it");
        }
        if let Ok(dir) = File::open(parent_of(&self.target)) {
            // Make the renames durable; a failure here only weakens durability, not atomicity.
            let _ = dir.sync_all();
        }
        self.committed = true;
        Ok(self.target.clone())
    }
}

/// Fails unless a file can be created and removed in `dir`: the folder is about to be moved
/// aside and removed, which a read-only folder would stop half-way.
fn check_writable(dir: &Path) -> Result<(), StoreError> {
    let probe = tempfile::Builder::new()
        .prefix(".linklab-probe-")
        .tempfile_in(dir)
        .map_err(StoreError::io(
            "cannot write into (it must be writable to be replaced)",
            dir,
        ))?;
    probe.close().map_err(StoreError::io(
        "cannot remove files in (it must be writable to be replaced)",
        dir,
    ))
}

/// Removes a folder tree; a folder of it that is read-only is made writable first (the tree is
/// one this process or an earlier run moved aside, and is being removed whole).
fn remove_tree(dir: &Path) -> Result<(), StoreError> {
    if fs::remove_dir_all(dir).is_ok() {
        return Ok(());
    }
    make_writable(dir);
    fs::remove_dir_all(dir).map_err(StoreError::io("cannot remove", dir))
}

fn make_writable(dir: &Path) {
    if let Ok(meta) = fs::symlink_metadata(dir)
        && meta.is_dir()
    {
        let mut perms = meta.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        let _ = fs::set_permissions(dir, perms);
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                make_writable(&entry.path());
            }
        }
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_previous_file_intact_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_json_atomic(&path, &serde_json::json!({"n": 1})).unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        let back: serde_json::Value = read_json(&path).unwrap();
        assert_eq!(back["n"], 1);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file is left"
        );
    }

    #[test]
    fn staging_dir_replaces_target_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("linked");
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("old.txt"), "old").unwrap();
        {
            let staging = StagingDir::new(&target).unwrap();
            fs::write(staging.path().join("new.txt"), "new").unwrap();
            // dropped without commit: the target is untouched and the staging folder is gone
        }
        assert!(target.join("old.txt").exists());
        let staging = StagingDir::new(&target).unwrap();
        fs::write(staging.path().join("new.txt"), "new").unwrap();
        staging.commit().unwrap();
        assert!(target.join("new.txt").exists());
        assert!(!target.join("old.txt").exists());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("linked")]);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn each_run_stages_under_its_own_name_and_stale_staging_of_dead_runs_goes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("release");
        let host = crate::lock::this_host();
        // Left by a dead process of this host, by an older version, and by a process elsewhere.
        for name in [
            format!(".release.staging-{host}-4294967290"),
            ".release.staging".to_owned(),
            ".release.staging-another-node-12".to_owned(),
        ] {
            fs::create_dir_all(dir.path().join(name)).unwrap();
        }
        let staging = StagingDir::new(&target).unwrap();
        let own = format!(".release.staging-{host}-{}", std::process::id());
        assert_eq!(staging.path(), dir.path().join(&own));
        assert_eq!(
            names(dir.path()),
            [".release.staging-another-node-12".to_owned(), own]
        );
    }

    #[test]
    fn an_old_folder_left_behind_is_removed_by_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("release");
        fs::create_dir_all(&target).unwrap();
        let old = dir.path().join(".release.old");
        fs::create_dir_all(old.join("sub")).unwrap();
        fs::write(old.join("sub/file"), "x").unwrap();
        let staging = StagingDir::new(&target).unwrap();
        fs::write(staging.path().join("new.txt"), "new").unwrap();
        staging.commit().unwrap();
        assert_eq!(names(dir.path()), ["release"]);
        assert!(target.join("new.txt").exists());
    }

    #[test]
    fn sha256_of_known_bytes_is_noted_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        fs::write(&path, "abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(crate::noted_sha256(&path), None);
        assert_eq!(sha256_file(&path).unwrap(), abc);
        assert_eq!(crate::noted_sha256(&path).as_deref(), Some(abc));
        fs::write(&path, "abcd").unwrap();
        assert_eq!(crate::noted_sha256(&path), None);
    }
}
