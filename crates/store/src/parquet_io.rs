use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::digests::{FileIdentity, note_sha256};

/// Rows per Parquet part file before a new part is started.
const ROWS_PER_PART: usize = 4_000_000;
/// Rows per row group.
const ROWS_PER_GROUP: usize = 256 * 1024;

/// Bytes written to a part between two requests to start writing it back to disk.
const WRITE_BACK_EVERY: u64 = 32 << 20;

/// A file that hashes the bytes written to it (a Parquet writer only appends), so that a part's
/// SHA-256 is known when it is closed, without reading it back. Every [`WRITE_BACK_EVERY`] bytes
/// it asks a thread of its own to sync what was written so far, so that the sync when the part
/// is closed has little left to wait for (the syncs change nothing in the file).
struct Hashed {
    file: File,
    sha: Sha256,
    written: u64,
    requested_at: u64,
    write_back: Option<(SyncSender<()>, JoinHandle<()>)>,
}

impl Hashed {
    fn new(file: File) -> Self {
        // Without a second handle the part is only synced when it is closed.
        let write_back = file.try_clone().ok().map(|handle| {
            let (tx, rx) = sync_channel::<()>(1);
            let thread = std::thread::spawn(move || {
                for () in rx {
                    // A failure here is seen again by the sync when the part is closed.
                    let _ = handle.sync_data();
                }
            });
            (tx, thread)
        });
        Self {
            file,
            sha: Sha256::new(),
            written: 0,
            requested_at: 0,
            write_back,
        }
    }

    /// The file and the digest of its bytes, once the write-back thread has finished.
    fn finish(self) -> (File, Sha256) {
        if let Some((tx, thread)) = self.write_back {
            drop(tx);
            let _ = thread.join();
        }
        (self.file, self.sha)
    }
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.sha.update(&buf[..n]);
        self.written += n as u64;
        if self.written - self.requested_at >= WRITE_BACK_EVERY {
            self.requested_at = self.written;
            if let Some((tx, _)) = &self.write_back {
                // A request still pending covers this one.
                let _ = tx.try_send(());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes a stream of batches as numbered part files `part-00000.parquet`, … in a folder
/// (normally a [`crate::StagingDir`]), zstd-compressed (but for [`Self::plain`] columns); with
/// [`Self::side_by_side`], each batch's columns are encoded side by side on rayon's pool.
pub struct PartWriter {
    dir: PathBuf,
    prefix: String,
    schema: SchemaRef,
    current: Option<OpenPart>,
    parts: Vec<PathBuf>,
    summaries: Vec<PartSummary>,
    rows: u64,
    without_statistics: Vec<String>,
    plain: Vec<String>,
    side_by_side: bool,
}

impl std::fmt::Debug for PartWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartWriter")
            .field("dir", &self.dir)
            .field("parts", &self.parts)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl PartWriter {
    /// A writer of parts named `part-NNNNN.parquet` into `dir`.
    pub fn new(dir: &Path, schema: SchemaRef) -> Self {
        Self::with_prefix(dir, "part", schema)
    }

    /// A writer of parts named `<prefix>-NNNNN.parquet` into `dir` (partitioned stages use a
    /// prefix per partition so that parts of different processes never collide).
    pub fn with_prefix(dir: &Path, prefix: &str, schema: SchemaRef) -> Self {
        Self {
            dir: dir.to_path_buf(),
            prefix: prefix.to_owned(),
            schema,
            current: None,
            parts: Vec::new(),
            summaries: Vec::new(),
            rows: 0,
            without_statistics: Vec::new(),
            plain: Vec::new(),
            side_by_side: false,
        }
    }

    /// Writes no min/max statistics for the leaves of the columns `names` (tokens, whose order
    /// means nothing, so the statistics would only cost the comparisons that make them).
    #[must_use]
    pub fn without_statistics(mut self, names: &[String]) -> Self {
        self.without_statistics = names.to_vec();
        self
    }

    /// Writes the leaves of the columns `names` as they are: no dictionary, no compression and
    /// no statistics. For values that are uniformly random and seldom repeat (match-key tokens,
    /// comparison tokens of reference numbers), on which each of the three only costs time:
    /// zstd finds nothing to remove from random bytes, and a dictionary fills up and falls back.
    #[must_use]
    pub fn plain(mut self, names: &[String]) -> Self {
        self.plain = names.to_vec();
        self
    }

    /// With `on`, each batch's columns are encoded side by side on rayon's pool (the same
    /// bytes): for wide rows, such as comparison tokens, whose encoding would otherwise set the
    /// wall clock. Not by default: where the stage's own work fills the pool, as the cascade
    /// link's does, encoding there made the stage slower (docs/benchmarks.md). The thread that
    /// writes must then not be one that the pool's jobs wait for.
    #[must_use]
    pub fn side_by_side(mut self, on: bool) -> Self {
        self.side_by_side = on;
        self
    }

    /// zstd level 1, and no dictionary for fixed-size binary columns: tokens are uniformly
    /// random, so a dictionary never pays and only costs the time to build and drop it. (The
    /// items of a list of tokens keep theirs: each comparison token set repeats the tokens of
    /// common values.) No statistics for the columns of [`Self::without_statistics`], and none of
    /// the three for those of [`Self::plain`].
    fn props(&self) -> WriterProperties {
        let mut builder = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(1).expect("1 is a valid zstd level"),
            ))
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP));
        for field in self.schema.fields() {
            if matches!(field.data_type(), DataType::FixedSizeBinary(_)) {
                builder =
                    builder.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
            }
        }
        if !self.without_statistics.is_empty() || !self.plain.is_empty() {
            // A schema that does not convert is refused by the writer itself.
            if let Ok(parquet_schema) = ArrowSchemaConverter::new().convert(&self.schema) {
                for column in parquet_schema.columns() {
                    let (path, name) = (column.path().clone(), &column.path().parts()[0]);
                    if self.without_statistics.contains(name) || self.plain.contains(name) {
                        builder =
                            builder.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
                    }
                    if self.plain.contains(name) {
                        builder = builder
                            .set_column_dictionary_enabled(path.clone(), false)
                            .set_column_compression(path, Compression::UNCOMPRESSED);
                    }
                }
            }
        }
        builder.build()
    }

    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        if self
            .current
            .as_ref()
            .is_some_and(|part| part.rows >= ROWS_PER_PART)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            let path = self
                .dir
                .join(format!("{}-{:05}.parquet", self.prefix, self.parts.len()));
            let file = Hashed::new(File::create(&path).map_err(StoreError::io("cannot create", &path))?);
            let part = OpenPart::create(&path, file, &self.schema, self.props(), self.side_by_side).map_err(
                |source| StoreError::Parquet {
                    path: path.clone(),
                    source,
                },
            )?;
            self.parts.push(path);
            self.current = Some(part);
        }
        let part = self.current.as_mut().expect("a part is open");
        part.write(&self.schema, batch)
            .map_err(|source| StoreError::Parquet {
                path: part.path.clone(),
                source,
            })?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), StoreError> {
        if let Some(part) = self.current.take() {
            let (path, rows) = (part.path.clone(), part.rows);
            let (file, sha) = part
                .close()
                .map_err(|source| StoreError::Parquet {
                    path: path.clone(),
                    source,
                })?
                .finish();
            file.sync_all().map_err(StoreError::io("cannot sync", &path))?;
            let sha256 = hex::encode(sha.finalize());
            // The digest is of the bytes written, so the runner need not read the part back.
            if let Some(identity) = file.metadata().ok().as_ref().and_then(FileIdentity::of) {
                note_sha256(identity, &sha256);
            }
            self.summaries.push(PartSummary {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                rows: rows as u64,
                sha256,
            });
        }
        Ok(())
    }

    /// Closes the last part and returns the parts written and the row count. A stream with no
    /// rows still gets one (empty) part, so readers always find the schema.
    pub fn finish(self) -> Result<(Vec<PathBuf>, u64), StoreError> {
        let (parts, summaries) = self.finish_with_summaries()?;
        Ok((parts, summaries.iter().map(|s| s.rows).sum()))
    }

    /// [`Self::finish`], with each part's [`PartSummary`] (its SHA-256 taken as it was
    /// written, the same as [`PartSummary::of`] gives for the file).
    pub fn finish_with_summaries(mut self) -> Result<(Vec<PathBuf>, Vec<PartSummary>), StoreError> {
        if self.parts.is_empty() {
            self.write(&RecordBatch::new_empty(Arc::clone(&self.schema)))?;
        }
        self.close_current()?;
        Ok((
            std::mem::take(&mut self.parts),
            std::mem::take(&mut self.summaries),
        ))
    }
}

/// A part file being written: the same bytes as [`ArrowWriter`] writes with the same
/// properties, but each batch's columns may be encoded side by side on rayon's pool. An
/// [`ArrowWriter`] encodes them one after the other on the calling thread; a column's pages
/// depend only on the values given to its own writer, in order, so the file is the same.
struct OpenPart {
    path: PathBuf,
    file: SerializedFileWriter<Hashed>,
    factory: ArrowRowGroupWriterFactory,
    /// The column writers of the row group in progress (one per leaf), and its rows so far.
    group: Option<(Vec<ArrowColumnWriter>, usize)>,
    rows: usize,
    side_by_side: bool,
}

impl OpenPart {
    fn create(
        path: &Path,
        file: Hashed,
        schema: &SchemaRef,
        props: WriterProperties,
        side_by_side: bool,
    ) -> Result<Self, ParquetError> {
        // The Arrow writer makes the file's schema and key-value metadata, as it would for
        // itself; the row groups are written here.
        let (file, factory) =
            ArrowWriter::try_new(file, Arc::clone(schema), Some(props))?.into_serialized_writer()?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            factory,
            group: None,
            rows: 0,
            side_by_side,
        })
    }

    /// Writes `batch`, starting a new row group every [`ROWS_PER_GROUP`] rows, where
    /// [`ArrowWriter`] starts one.
    fn write(&mut self, schema: &SchemaRef, batch: &RecordBatch) -> Result<(), ParquetError> {
        let mut remaining = batch.clone();
        while remaining.num_rows() > 0 {
            let (writers, group_rows) = match &mut self.group {
                Some(group) => group,
                empty => empty.insert((
                    self.factory
                        .create_column_writers(self.file.flushed_row_groups().len())?,
                    0,
                )),
            };
            let take = remaining.num_rows().min(ROWS_PER_GROUP - *group_rows);
            let now = remaining.slice(0, take);
            remaining = remaining.slice(take, remaining.num_rows() - take);
            let leaves = schema
                .fields()
                .iter()
                .zip(now.columns())
                .map(|(field, column)| compute_leaves(field, column))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            let write = |(writer, leaf): (&mut ArrowColumnWriter, _)| writer.write(leaf);
            if self.side_by_side {
                writers.par_iter_mut().zip(&leaves).try_for_each(write)?;
            } else {
                writers.iter_mut().zip(&leaves).try_for_each(write)?;
            }
            *group_rows += take;
            self.rows += take;
            if *group_rows == ROWS_PER_GROUP {
                self.flush_group()?;
            }
        }
        Ok(())
    }

    /// Closes the row group in progress (each column's last page encoded, side by side if
    /// asked) and appends its column chunks to the file, in order.
    fn flush_group(&mut self) -> Result<(), ParquetError> {
        let Some((writers, _)) = self.group.take() else {
            return Ok(());
        };
        let chunks = if self.side_by_side {
            writers
                .into_par_iter()
                .map(ArrowColumnWriter::close)
                .collect::<Result<Vec<_>, _>>()?
        } else {
            writers
                .into_iter()
                .map(ArrowColumnWriter::close)
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut group = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        Ok(())
    }

    /// Flushes the last row group, writes the footer and gives the file back.
    fn close(mut self) -> Result<Hashed, ParquetError> {
        self.flush_group()?;
        self.file.into_inner()
    }
}

/// A Parquet part file as a stage's manifest lists it. A reader of the stage's output reads the
/// parts its manifest lists, and checks each against its row count and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartSummary {
    /// The file's name inside the output folder.
    pub name: String,
    /// Its rows.
    pub rows: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl PartSummary {
    /// The summary of the part file at `path`: its name, its row count (from the file's
    /// metadata) and its SHA-256.
    pub fn of(path: &Path) -> Result<Self, StoreError> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let file = File::open(path).map_err(StoreError::io("cannot open", path))?;
        let reader = SerializedFileReader::new(file).map_err(|source| StoreError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
        let rows = reader.metadata().file_metadata().num_rows();
        Ok(Self {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rows: u64::try_from(rows).unwrap_or(0),
            sha256: crate::sha256_file(path)?,
        })
    }
}

/// The Parquet part files of a folder, in name order.
pub fn list_parts(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut parts = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io("cannot list", dir))? {
        let path = entry.map_err(StoreError::io("cannot list", dir))?.path();
        let is_part = path.extension().is_some_and(|e| e == "parquet")
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if is_part {
            parts.push(path);
        }
    }
    parts.sort();
    Ok(parts)
}

/// Reads every batch of every part file of a folder, in order, with the given batch size.
pub fn read_parts(
    dir: &Path,
    batch_size: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>>, StoreError> {
    read_part_files(list_parts(dir)?, batch_size)
}

/// Reads every batch of the given part files, in the given order, with the given batch size.
pub fn read_part_files(
    parts: impl IntoIterator<Item = PathBuf>,
    batch_size: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>>, StoreError> {
    let mut readers = Vec::new();
    for path in parts {
        let file = File::open(&path).map_err(StoreError::io("cannot open", &path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(batch_size).build())
            .map_err(|source| StoreError::Parquet {
                path: path.clone(),
                source,
            })?;
        readers.push((path, reader));
    }
    Ok(readers.into_iter().flat_map(|(path, reader)| {
        reader.map(move |r| {
            r.map_err(|e| StoreError::Parquet {
                path: path.clone(),
                source: e.into(),
            })
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn parts_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let mut writer = PartWriter::new(dir.path(), Arc::clone(&schema));
        for start in [0_i64, 3] {
            let batch = RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from_iter_values(start..start + 3)),
                    Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
                ],
            )
            .unwrap();
            writer.write(&batch).unwrap();
        }
        let (parts, summaries) = writer.finish_with_summaries().unwrap();
        assert_eq!(summaries, vec![PartSummary::of(&parts[0]).unwrap()]);
        assert_eq!((parts.len(), summaries[0].rows), (1, 6));
        let batches: Vec<_> = read_parts(dir.path(), 4)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let values: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn columns_get_the_statistics_compression_and_dictionary_they_are_given() {
        use arrow::array::{FixedSizeBinaryArray, ListArray};
        use arrow::buffer::OffsetBuffer;
        use parquet::file::reader::{FileReader, SerializedFileReader};

        let dir = tempfile::tempdir().unwrap();
        let item = Arc::new(Field::new("item", DataType::FixedSizeBinary(8), false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("token", DataType::FixedSizeBinary(8), false),
            Field::new("set", DataType::List(Arc::clone(&item)), false),
            Field::new("random", DataType::FixedSizeBinary(8), false),
            Field::new("random_set", DataType::List(Arc::clone(&item)), false),
        ]));
        let tokens = || FixedSizeBinaryArray::try_from_iter([[1_u8; 8], [2; 8]].into_iter()).unwrap();
        let set = || {
            ListArray::new(
                Arc::clone(&item),
                OffsetBuffer::from_lengths([1, 1]),
                Arc::new(tokens()),
                None,
            )
        };
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(tokens()),
                Arc::new(set()),
                Arc::new(tokens()),
                Arc::new(set()),
            ],
        )
        .unwrap();
        let mut writer = PartWriter::new(dir.path(), Arc::clone(&schema))
            .without_statistics(&["token".to_owned(), "set".to_owned()])
            .plain(&["random".to_owned(), "random_set".to_owned()]);
        writer.write(&batch).unwrap();
        let (parts, _) = writer.finish().unwrap();
        let reader = SerializedFileReader::new(File::open(&parts[0]).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        // Per leaf: whether it has min/max statistics, its compression, whether it has a
        // dictionary page.
        let written: Vec<(String, bool, Compression, bool)> = group
            .columns()
            .iter()
            .map(|c| {
                (
                    c.column_path().string(),
                    c.statistics().is_some_and(|s| s.min_bytes_opt().is_some()),
                    c.compression(),
                    c.dictionary_page_offset().is_some(),
                )
            })
            .collect();
        let zstd = Compression::ZSTD(ZstdLevel::try_new(1).unwrap());
        assert_eq!(
            written,
            [
                ("n", true, zstd, true),
                ("token", false, zstd, false),
                ("set.list.item", false, zstd, true),
                ("random", false, Compression::UNCOMPRESSED, false),
                ("random_set.list.item", false, Compression::UNCOMPRESSED, false),
            ]
            .map(|(c, s, z, d)| (c.to_owned(), s, z, d))
        );
        let read: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(File::open(&parts[0]).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, [batch], "the same values whatever the settings");
    }

    #[test]
    fn parts_are_the_bytes_the_arrow_writer_writes() {
        use arrow::array::{FixedSizeBinaryArray, ListArray};
        use arrow::buffer::OffsetBuffer;

        let dir = tempfile::tempdir().unwrap();
        let item = Arc::new(Field::new("item", DataType::FixedSizeBinary(8), false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new("token", DataType::FixedSizeBinary(8), true),
            Field::new("set", DataType::List(Arc::clone(&item)), true),
        ]));
        // Batches of uneven sizes that cross row-group boundaries mid-batch.
        let mut start = 0_i64;
        let batches: Vec<RecordBatch> = [100_000_usize, 200_000, 1, 70_000, 250_000]
            .into_iter()
            .map(|rows| {
                let n: Vec<i64> = (start..start + rows as i64).collect();
                start += rows as i64;
                let token = |v: i64| v.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
                let lengths: Vec<usize> = n.iter().map(|v| (v % 4) as usize).collect();
                let items: Vec<u8> = n
                    .iter()
                    .zip(&lengths)
                    .flat_map(|(&v, &len)| (0..len as i64).flat_map(move |i| token(v * 4 + i)))
                    .collect();
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(Int64Array::from(n.clone())),
                        Arc::new(
                            n.iter()
                                .map(|v| (v % 7 != 0).then(|| format!("v{}", v % 1000)))
                                .collect::<StringArray>(),
                        ),
                        Arc::new(
                            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                                n.iter().map(|&v| (v % 5 != 0).then(|| token(v))),
                                8,
                            )
                            .unwrap(),
                        ),
                        Arc::new(ListArray::new(
                            Arc::clone(&item),
                            OffsetBuffer::from_lengths(lengths.iter().copied()),
                            Arc::new(FixedSizeBinaryArray::try_new(8, items.into(), None).unwrap()),
                            Some(n.iter().map(|v| v % 9 != 0).collect()),
                        )),
                    ],
                )
                .unwrap()
            })
            .collect();
        for side_by_side in [false, true] {
            let out = dir.path().join(side_by_side.to_string());
            fs::create_dir(&out).unwrap();
            let mut writer = PartWriter::new(&out, Arc::clone(&schema))
                .without_statistics(&["set".to_owned()])
                .side_by_side(side_by_side);
            let mut arrow =
                ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(writer.props())).unwrap();
            for batch in &batches {
                writer.write(batch).unwrap();
                arrow.write(batch).unwrap();
            }
            let (parts, _) = writer.finish().unwrap();
            let expected = arrow.into_inner().unwrap();
            assert_eq!(parts.len(), 1);
            assert!(
                fs::read(&parts[0]).unwrap() == expected,
                "the part's bytes differ from ArrowWriter's (side by side: {side_by_side})"
            );
            let reader =
                parquet::file::reader::SerializedFileReader::new(File::open(&parts[0]).unwrap()).unwrap();
            assert_eq!(
                parquet::file::reader::FileReader::metadata(&reader).num_row_groups(),
                3,
                "620001 rows in groups of 262144"
            );
        }
    }

    #[test]
    fn empty_stream_still_has_a_schema() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let (parts, rows) = PartWriter::new(dir.path(), Arc::clone(&schema)).finish().unwrap();
        assert_eq!((parts.len(), rows), (1, 0));
        assert_eq!(
            read_parts(dir.path(), 16)
                .unwrap()
                .map(|b| b.unwrap().num_rows())
                .sum::<usize>(),
            0
        );
    }
}
