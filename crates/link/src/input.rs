//! The pseudonymised extracts the link stage reads.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use arrow::array::{Array, FixedSizeBinaryArray, RecordBatch};
use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use linklab_store::{PartSummary, WorkDir, list_parts};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Deserialize;

use crate::LinkError;

/// Rows per batch when an extract is read. Both the in-memory and the spilling plan read with
/// this size, so they hand the writer the same batches.
pub(crate) const BATCH_ROWS: usize = 64 * 1024;

/// An extract's batches, from [`ExtractInput::batches`].
pub(crate) type Batches = Box<dyn Iterator<Item = Result<RecordBatch, LinkError>>>;

/// Batches an extract's reader thread decodes ahead of its consumer: memory for two batches
/// beyond the one in use (a few MiB each at [`BATCH_ROWS`]).
const READ_AHEAD: usize = 2;

/// Columns `linked/` adds; a keep column may not use these names.
pub(crate) const RESERVED: [&str; 5] = [
    "person_id",
    "match_key",
    "n_spine_records",
    "match_probability",
    "match_pattern",
];

/// One pseudonymised extract: where it is and which columns hold what.
#[derive(Debug)]
pub(crate) struct ExtractInput {
    pub name: String,
    pub dir: PathBuf,
    pub rows: u64,
    /// The part files in name order, each with its row count.
    pub parts: Vec<(PathBuf, u64)>,
    pub schema: SchemaRef,
    /// For each match key in cascade order, the index of its `tok_` column, if the extract has it.
    pub key_cols: Vec<Option<usize>>,
    /// The indices of the keep columns (every column not named `tok_…` or `cmp_…`), in file
    /// order: no token reaches `linked/`.
    pub keep_cols: Vec<usize>,
    /// The linkage key fingerprint from the extract's manifest.
    pub key_fingerprint: String,
    /// For each match key in cascade order, its components as the manifest lists them
    /// (`soundex(surname)`); empty when the manifest does not list the key.
    pub key_components: Vec<Vec<String>>,
    /// Whether [`ExtractInput::batches`] decodes on a reader thread ahead of the caller. Off
    /// when opened; the cascade turns it on when it runs in memory (not when it spills: the
    /// reader thread's allocations cost the process memory that a tight `memory_limit` has
    /// not got), the probabilistic method when `memory_limit` leaves room for it.
    pub read_ahead: bool,
    /// For each match key, the records holding a token for it, once a read of the tokens has
    /// counted them (the cascade's read of the spine). When they are known, writing the extract
    /// to `linked/` decodes only its keep columns, so no column is decoded twice; the batches
    /// that `write_extract` hands its `outcomes` then hold only the keep columns.
    pub with_token: Option<Vec<u64>>,
}

/// Which columns of an extract a read decodes.
#[derive(Debug, Clone)]
pub(crate) enum Columns {
    /// Every column: a batch has the extract's schema.
    All,
    /// These columns (indices into the extract's schema, ascending) and no other: a batch's
    /// columns are these, in this order.
    Only(Vec<usize>),
}

impl Columns {
    /// `cols` (indices into the extract's schema), sorted and without repeats.
    pub(crate) fn only(cols: impl IntoIterator<Item = usize>) -> Self {
        let cols: BTreeSet<usize> = cols.into_iter().collect();
        Self::Only(cols.into_iter().collect())
    }

    /// Where column `index` of the extract's schema is in a batch of this read.
    pub(crate) fn position(&self, index: usize) -> usize {
        match self {
            Self::All => index,
            Self::Only(cols) => cols
                .binary_search(&index)
                .expect("a column read is one of the read's columns"),
        }
    }
}

impl ExtractInput {
    /// Opens `pseudonymised/<name>/` through its manifest, and checks the parts and columns.
    pub(crate) fn open(work_dir: &WorkDir, name: &str, match_keys: &[String]) -> Result<Self, LinkError> {
        let dir = work_dir.pseudonymised(name);
        if !dir.is_dir() {
            return Err(LinkError::NoInput {
                extract: name.to_owned(),
                dir,
            });
        }
        let manifest = PseudonymisedManifest::read(work_dir, name)?;
        let parts = listed_parts(name, &dir, &manifest.parts)?;
        let mut schema: Option<SchemaRef> = None;
        let mut rows = 0_u64;
        let mut part_rows = Vec::with_capacity(parts.len());
        for (path, listed) in parts.iter().zip(&manifest.parts) {
            let file = File::open(path).map_err(|source| linklab_store::StoreError::Io {
                action: "cannot open",
                path: path.clone(),
                source,
            })?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| {
                linklab_store::StoreError::Parquet {
                    path: path.clone(),
                    source,
                }
            })?;
            let n = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
            if n != listed.rows {
                return Err(part_error(
                    name,
                    path,
                    format!("it holds {n} rows, but the manifest lists {}", listed.rows),
                ));
            }
            rows += n;
            part_rows.push((path.clone(), n));
            match &schema {
                None => schema = Some(builder.schema().clone()),
                Some(first) if !same_columns(first, builder.schema()) => {
                    return Err(LinkError::SchemaMismatch {
                        extract: name.to_owned(),
                        dir,
                    });
                }
                Some(_) => {}
            }
        }
        let schema = schema.expect("at least one part was read");
        if rows >= u64::from(u32::MAX) {
            return Err(LinkError::TooManyRecords {
                extract: name.to_owned(),
                rows,
                max: u64::from(u32::MAX) - 1,
            });
        }
        let mut key_cols = Vec::with_capacity(match_keys.len());
        for key in match_keys {
            let column = format!("tok_{key}");
            let index = schema.index_of(&column).ok();
            if let Some(i) = index {
                let found = schema.field(i).data_type();
                if *found != DataType::FixedSizeBinary(32) {
                    return Err(LinkError::ColumnType {
                        extract: name.to_owned(),
                        path: parts[0].clone(),
                        column,
                        found: found.to_string(),
                        expected: "FixedSizeBinary(32)",
                    });
                }
            }
            key_cols.push(index);
        }
        let keep_cols: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| {
                let name = schema.field(i).name();
                !name.starts_with("tok_") && !name.starts_with("cmp_")
            })
            .collect();
        for &i in &keep_cols {
            let column = schema.field(i).name();
            if RESERVED.contains(&column.as_str()) {
                return Err(LinkError::ReservedColumn {
                    extract: name.to_owned(),
                    column: column.clone(),
                });
            }
        }
        let key_components = match_keys
            .iter()
            .map(|key| {
                manifest
                    .match_keys
                    .iter()
                    .find(|listed| listed.name == *key)
                    .map(|listed| listed.components.clone())
                    .unwrap_or_default()
            })
            .collect();
        let key_fingerprint = manifest.key_fingerprint;
        Ok(Self {
            name: name.to_owned(),
            dir,
            rows,
            parts: part_rows,
            schema,
            key_cols,
            keep_cols,
            key_fingerprint,
            key_components,
            read_ahead: false,
            with_token: None,
        })
    }

    /// The keep columns' fields, in order.
    pub(crate) fn keep_fields(&self) -> Vec<FieldRef> {
        self.keep_cols
            .iter()
            .map(|&i| self.schema.fields()[i].clone())
            .collect()
    }

    /// The extract's batches, in input order, each checked against the first part's columns.
    ///
    /// The parts are opened here (so a part that cannot be opened fails here). With
    /// [`ExtractInput::read_ahead`], they are decoded on a reader thread of their own, at most
    /// [`READ_AHEAD`] batches ahead of the caller: decoding the next batch overlaps with the
    /// caller's work on this one. The batches are the same, in the same order, either way.
    /// Dropping the iterator stops the reader thread at its next batch.
    pub(crate) fn batches(&self) -> Result<Batches, LinkError> {
        self.batches_of(&Columns::All)
    }

    /// [`ExtractInput::batches`] with only the columns `columns` decoded. The batches have the
    /// same rows as those of every column.
    pub(crate) fn batches_of(&self, columns: &Columns) -> Result<Batches, LinkError> {
        let schema = match columns {
            Columns::All => Arc::clone(&self.schema),
            Columns::Only(cols) => {
                Arc::new(self.schema.project(cols).map_err(|source| LinkError::Arrow {
                    what: "the columns of a read",
                    source,
                })?)
            }
        };
        let inner = read_parts(&self.parts, columns)?;
        let (name, dir) = (self.name.clone(), self.dir.clone());
        let checked = inner.map(move |batch| {
            let batch = batch?;
            if same_columns(&schema, &batch.schema()) {
                Ok(batch)
            } else {
                Err(LinkError::SchemaMismatch {
                    extract: name.clone(),
                    dir: dir.clone(),
                })
            }
        });
        if !self.read_ahead {
            return Ok(Box::new(checked));
        }
        let (tx, rx) = sync_channel(READ_AHEAD);
        std::thread::Builder::new()
            .name(format!("link-read-{}", self.name))
            .spawn(move || {
                for batch in checked {
                    let failed = batch.is_err();
                    // The receiver is gone: the caller stopped reading.
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|source| LinkError::ReaderThread { source })?;
        Ok(Box::new(rx.into_iter()))
    }

    /// The token columns of a batch, one per match key (`None` where the extract lacks the key).
    pub(crate) fn token_columns<'a>(&self, batch: &'a RecordBatch) -> Vec<Option<&'a FixedSizeBinaryArray>> {
        self.token_columns_of(batch, &Columns::All)
    }

    /// The columns a read of the tokens alone decodes.
    pub(crate) fn token_cols(&self) -> Columns {
        Columns::only(self.key_cols.iter().flatten().copied())
    }

    /// [`ExtractInput::token_columns`] of a batch of a read of `columns` (which holds them).
    pub(crate) fn token_columns_of<'a>(
        &self,
        batch: &'a RecordBatch,
        columns: &Columns,
    ) -> Vec<Option<&'a FixedSizeBinaryArray>> {
        self.key_cols
            .iter()
            .map(|col| {
                col.map(|i| {
                    batch
                        .column(columns.position(i))
                        .as_any()
                        .downcast_ref::<FixedSizeBinaryArray>()
                        .expect("the column type was checked when the extract was opened")
                })
            })
            .collect()
    }
}

/// Decodes the part files in order, `columns` of each, in batches of [`BATCH_ROWS`] rows.
fn read_parts(
    parts: &[(PathBuf, u64)],
    columns: &Columns,
) -> Result<impl Iterator<Item = Result<RecordBatch, LinkError>> + Send + use<>, LinkError> {
    let mut readers = Vec::with_capacity(parts.len());
    for (path, _) in parts {
        let parquet = |source| linklab_store::StoreError::Parquet {
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(|source| linklab_store::StoreError::Io {
            action: "cannot open",
            path: path.clone(),
            source,
        })?;
        let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(parquet)?
            .with_batch_size(BATCH_ROWS);
        if let Columns::Only(cols) = columns {
            let mask = ProjectionMask::roots(builder.parquet_schema(), cols.iter().copied());
            builder = builder.with_projection(mask);
        }
        readers.push((path.clone(), builder.build().map_err(parquet)?));
    }
    Ok(readers.into_iter().flat_map(|(path, reader)| {
        reader.map(move |batch| {
            batch.map_err(|source| {
                LinkError::from(linklab_store::StoreError::Parquet {
                    path: path.clone(),
                    source: source.into(),
                })
            })
        })
    }))
}

/// The token of row `row` in a token column, if any.
pub(crate) fn token_at(column: Option<&FixedSizeBinaryArray>, row: usize) -> Option<&[u8]> {
    let column = column?;
    column.is_valid(row).then(|| column.value(row))
}

fn same_columns(a: &SchemaRef, b: &SchemaRef) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
}

/// What the link stage reads of a pseudonymisation manifest
/// (`pseudonymised/<extract>.manifest.json`): the linkage key's fingerprint, the part files and
/// the match keys' components.
#[derive(Debug, Deserialize)]
struct PseudonymisedManifest {
    /// The extract's name.
    extract: String,
    /// The fingerprint of the linkage key the tokens were made with.
    key_fingerprint: String,
    /// The part files, in order.
    parts: Vec<PartSummary>,
    /// The match keys (an older manifest may not list them).
    #[serde(default)]
    match_keys: Vec<ListedKey>,
}

/// A match key as a manifest lists it.
#[derive(Debug, Deserialize)]
struct ListedKey {
    name: String,
    /// As written: `soundex(surname)`.
    #[serde(default)]
    components: Vec<String>,
}

impl PseudonymisedManifest {
    fn read(work_dir: &WorkDir, name: &str) -> Result<Self, LinkError> {
        let path = work_dir.pseudonymised_manifest(name);
        let fail = |reason: &str| LinkError::Manifest {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        if !path.is_file() {
            return Err(fail(
                "it is missing; every pseudonymised extract has a manifest beside its folder",
            ));
        }
        let manifest: Self = linklab_store::read_json(&path)?;
        if manifest.extract != name {
            return Err(fail("it is the manifest of another extract"));
        }
        if manifest.key_fingerprint.is_empty() {
            return Err(fail("it has no key_fingerprint"));
        }
        if manifest.parts.is_empty() {
            return Err(fail("it lists no part files"));
        }
        Ok(manifest)
    }
}

/// The paths of the parts a manifest lists, after checking that each is a plain file name listed
/// once, that its bytes have the SHA-256 the manifest records, and that the folder holds no
/// other part file: link reads exactly what pseudonymise wrote, never a part added, copied or
/// made under another key.
fn listed_parts(extract: &str, dir: &Path, listed: &[PartSummary]) -> Result<Vec<PathBuf>, LinkError> {
    let mut names = BTreeSet::new();
    let mut paths = Vec::with_capacity(listed.len());
    for part in listed {
        let plain = Path::new(&part.name)
            .file_name()
            .is_some_and(|n| n == part.name.as_str())
            && !part.name.starts_with('.')
            && part.name.ends_with(".parquet");
        let path = dir.join(&part.name);
        if !plain || !names.insert(part.name.as_str()) {
            return Err(part_error(
                extract,
                &path,
                "the manifest lists it twice or under a name that is not a part file's".into(),
            ));
        }
        if !path.is_file() {
            return Err(part_error(
                extract,
                &path,
                "the manifest lists it, but it is missing".into(),
            ));
        }
        if linklab_store::sha256_file(&path)? != part.sha256 {
            return Err(part_error(
                extract,
                &path,
                "its SHA-256 differs from the manifest's: it was changed or replaced after pseudonymise"
                    .into(),
            ));
        }
        paths.push(path);
    }
    for found in list_parts(dir)? {
        let listed = found
            .file_name()
            .is_some_and(|n| names.contains(n.to_string_lossy().as_ref()));
        if !listed {
            return Err(part_error(
                extract,
                &found,
                "the manifest does not list it; only the parts pseudonymise wrote may be in the folder (remove it, or pseudonymise the extract again)".into(),
            ));
        }
    }
    Ok(paths)
}

fn part_error(extract: &str, path: &Path, reason: String) -> LinkError {
    LinkError::Part {
        extract: extract.to_owned(),
        path: path.to_path_buf(),
        reason,
    }
}
