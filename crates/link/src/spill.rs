//! Spill files: `(extract, key, token, record)` rows split by token partition, so that each
//! partition's hash tables fit in memory.
//!
//! A row is 39 bytes: extract number (u16 LE), key number (u8), the 32 token bytes, the record
//! index within its extract (u32 LE). One file per partition.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::LinkError;
use crate::tok::Tok;

const ROW_BYTES: usize = 2 + 1 + 32 + 4;

/// A folder of spill files removed when dropped.
#[derive(Debug)]
pub(crate) struct SpillDir {
    path: PathBuf,
}

impl SpillDir {
    /// Creates `<spill>/link-<pid>-<n>/` (n counts the runs of this process), clearing what an
    /// earlier process with the same id left there.
    pub(crate) fn create(spill_root: &Path) -> Result<Self, LinkError> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let path = spill_root.join(format!("link-{}-{run}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|source| LinkError::Spill {
                path: path.clone(),
                source,
            })?;
        }
        fs::create_dir_all(&path).map_err(|source| LinkError::Spill {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        // Scratch space only: a failure to remove it leaves disk used, never wrong output.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// One row of a spill file.
#[derive(Clone, Copy)]
pub(crate) struct SpillRow {
    pub extract: u16,
    pub key: u8,
    pub tok: Tok,
    pub record: u32,
}

/// Writers of one set of partition files.
pub(crate) struct SpillWriter {
    files: Vec<(BufWriter<File>, PathBuf)>,
}

impl SpillWriter {
    /// Creates `<dir>/<name>-<p>.bin` for each of `partitions` partitions.
    pub(crate) fn create(dir: &Path, name: &str, partitions: usize) -> Result<Self, LinkError> {
        let mut files = Vec::with_capacity(partitions);
        for p in 0..partitions {
            let path = dir.join(format!("{name}-{p:05}.bin"));
            let file = File::create(&path).map_err(|source| LinkError::Spill {
                path: path.clone(),
                source,
            })?;
            files.push((BufWriter::with_capacity(64 * 1024, file), path));
        }
        Ok(Self { files })
    }

    /// Appends a row to the file of its token's partition.
    pub(crate) fn push(&mut self, row: &SpillRow) -> Result<(), LinkError> {
        let p = row.tok.partition(self.files.len());
        let (writer, path) = &mut self.files[p];
        let mut bytes = [0_u8; ROW_BYTES];
        bytes[..2].copy_from_slice(&row.extract.to_le_bytes());
        bytes[2] = row.key;
        bytes[3..35].copy_from_slice(&row.tok.0);
        bytes[35..].copy_from_slice(&row.record.to_le_bytes());
        writer.write_all(&bytes).map_err(|source| LinkError::Spill {
            path: path.clone(),
            source,
        })
    }

    /// Flushes and closes the files, returning their paths in partition order.
    pub(crate) fn finish(self) -> Result<Vec<PathBuf>, LinkError> {
        self.files
            .into_iter()
            .map(|(mut writer, path)| {
                writer.flush().map_err(|source| LinkError::Spill {
                    path: path.clone(),
                    source,
                })?;
                Ok(path)
            })
            .collect()
    }
}

/// Rows decoded per chunk by [`for_each_chunk`]: 2.5 MB of file at a time.
const CHUNK_ROWS: usize = 64 * 1024;

fn decode(b: &[u8]) -> SpillRow {
    SpillRow {
        extract: u16::from_le_bytes([b[0], b[1]]),
        key: b[2],
        tok: Tok::from_slice(&b[3..35]),
        record: u32::from_le_bytes([b[35], b[36], b[37], b[38]]),
    }
}

/// Streams the rows of one partition file, in the order written, to `f` in chunks, so reading
/// a partition costs one chunk of memory whatever the file's size.
pub(crate) fn for_each_chunk(path: &Path, mut f: impl FnMut(&[SpillRow])) -> Result<(), LinkError> {
    let fail = |source| LinkError::Spill {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(fail)?;
    let mut bytes = vec![0_u8; CHUNK_ROWS * ROW_BYTES];
    let mut rows = Vec::with_capacity(CHUNK_ROWS);
    loop {
        let mut filled = 0;
        while filled < bytes.len() {
            match file.read(&mut bytes[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(e)),
            }
        }
        if filled % ROW_BYTES != 0 {
            return Err(fail(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the file ends inside a row",
            )));
        }
        rows.clear();
        rows.extend(bytes[..filled].chunks_exact(ROW_BYTES).map(decode));
        if !rows.is_empty() {
            f(&rows);
        }
        if filled < bytes.len() {
            return Ok(());
        }
    }
}

/// Reads one partition file's rows split by key into `(token, record)` lists, in the order
/// written.
pub(crate) fn read_by_key(path: &Path, keys: usize) -> Result<Vec<Vec<(Tok, u32)>>, LinkError> {
    let mut by_key = vec![Vec::new(); keys];
    for_each_chunk(path, |rows| {
        for row in rows {
            by_key[usize::from(row.key)].push((row.tok, row.record));
        }
    })?;
    Ok(by_key)
}
