//! Threaded streaming: a reader thread parses batches, the rayon pool standardises and hashes
//! them, and a writer thread encodes the Parquet parts. A worker's panic is reported by record
//! numbers only.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use arrow::array::{ArrayRef, FixedSizeBinaryArray, ListArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use linklab_extract::ExtractError;
use linklab_store::{PartSummary, PartWriter, Progress, StoreError, note_sha256, sha256_file};
use linklab_tokens::{COMPARE_TOKEN_BYTES, FieldKind, Standardiser};
use rayon::prelude::*;

use crate::hash::{CompareColumn, Hashed, Hashers, compare_data_type, compare_variants, hash_rows};
use crate::plan::{ComparePlan, KeepPlan, Plan};
use crate::rows::Rows;
use crate::run::InputSha;
use crate::tally::{Tally, Types};
use crate::types;
use crate::{ColumnType, PseudonymiseConfig, PseudonymiseError};

/// Batches waiting between the reader, the hashing and the writer.
pub(crate) const QUEUE: usize = 2;

/// Where in an extract a piece of work was, for errors about it: the file and record numbers,
/// never a value.
pub fn row_context(path: &Path, first_record: u64, last_record: u64) -> String {
    if first_record == last_record {
        format!("record {first_record} of {}", path.display())
    } else {
        format!("records {first_record} to {last_record} of {}", path.display())
    }
}

/// Runs `work` and turns a panic into [`PseudonymiseError::WorkerPanic`] naming the records; the
/// panic's own message, which could hold a value, is dropped.
pub(crate) fn guarded<T>(
    path: &Path,
    records: &[u64],
    work: impl FnOnce() -> T,
) -> Result<T, PseudonymiseError> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|_| PseudonymiseError::WorkerPanic {
        context: row_context(
            path,
            records.first().copied().unwrap_or(0),
            records.last().copied().unwrap_or(0),
        ),
    })
}

/// What streaming produced.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) tally: Tally,
    pub(crate) types: Types,
    /// The part files written, with their row counts and SHA-256 taken as they were written.
    pub(crate) parts: Vec<PartSummary>,
    pub(crate) part_rows: u64,
    pub(crate) sha256: String,
}

/// Hashes and converts one batch into an output record batch.
pub(crate) struct Converter<'a> {
    pub(crate) cfg: &'a PseudonymiseConfig,
    pub(crate) plan: &'a Plan,
    pub(crate) types: &'a Types,
    pub(crate) schema: SchemaRef,
    pub(crate) standardiser: Standardiser,
    pub(crate) hashers: &'a Hashers,
}

impl Converter<'_> {
    pub(crate) fn convert(&self, batch: &Rows, tally: &mut Tally) -> Result<RecordBatch, PseudonymiseError> {
        let rows = batch.len();
        let chunk = rows.div_ceil(rayon::current_num_threads() * 4).max(1024);
        let ranges: Vec<Range<usize>> = (0..rows)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(rows))
            .collect();
        let (hashed, kept) = rayon::join(
            || {
                ranges
                    .into_par_iter()
                    .map(|range| {
                        guarded(&self.cfg.input, &batch.records()[range.clone()], || {
                            hash_rows(batch, range, self.plan, self.standardiser, self.hashers)
                        })
                    })
                    .collect::<Result<Vec<Hashed>, _>>()
            },
            || {
                guarded(&self.cfg.input, batch.records(), || {
                    self.plan
                        .keep
                        .iter()
                        .zip(&self.types.types)
                        .map(|(keep, &(ty, inferred))| self.keep_array(batch, keep, ty, inferred))
                        .collect::<Result<Vec<ArrayRef>, _>>()
                })
            },
        );
        let kept = kept??;
        let variants = compare_variants(&self.plan.compare);
        let mut all = Hashed::with_capacity(self.plan.keys.len(), &variants, self.plan.idents.len(), rows);
        for part in hashed? {
            all.append(part);
        }
        for (total, counts) in tally.missing.iter_mut().zip(&all.missing) {
            for (t, c) in total.iter_mut().zip(counts) {
                *t += c;
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for ((tokens, valid), nulls) in all.tokens.into_iter().zip(all.valid).zip(&mut tally.null_tokens) {
            *nulls += valid.iter().filter(|v| !**v).count() as u64;
            let array = FixedSizeBinaryArray::try_new(32, Buffer::from_vec(tokens), types::nulls(valid))
                .map_err(|_| self.internal("a token column could not be built"))?;
            columns.push(Arc::new(array));
        }
        for (column, variant) in all.compare.into_iter().zip(variants) {
            columns.push(
                compare_array(column, variant.is_set())
                    .ok_or_else(|| self.internal("a comparison column could not be built"))?,
            );
        }
        columns.extend(kept);
        tally.written += rows as u64;
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|_| self.internal("an output batch could not be assembled"))
    }

    pub(crate) fn keep_array(
        &self,
        batch: &Rows,
        keep: &KeepPlan,
        ty: ColumnType,
        inferred: bool,
    ) -> Result<ArrayRef, PseudonymiseError> {
        if keep.standardised_sex {
            return Ok(self.standardised_sex(batch.column(keep.column)));
        }
        types::to_array(batch.column(keep.column), ty).map_err(|e| match e {
            types::ConvertError::Mismatch(row) => PseudonymiseError::TypeMismatch {
                extract: self.cfg.extract.clone(),
                path: self.cfg.input.clone(),
                column: keep.name.clone(),
                record: batch.records()[row],
                line: batch.line(row),
                ty,
                inferred,
                sample_rows: self.types.sample_rows,
            },
            types::ConvertError::TooLarge => PseudonymiseError::Config {
                extract: self.cfg.extract.clone(),
                reason: format!(
                    "column `{}` holds more than 2 GiB of text in one batch of {} rows; lower batch_rows",
                    keep.name, self.cfg.batch_rows
                ),
            },
        })
    }

    /// A kept sex identifier as its standardised value: `M`, `F`, or null for anything else, so
    /// that free text in the column never leaves the stage.
    pub(crate) fn standardised_sex(&self, column: &linklab_extract::TextColumn) -> ArrayRef {
        let values: arrow::array::StringArray = column
            .iter()
            .map(|raw| self.standardiser.standardise(FieldKind::Sex, raw).ok())
            .collect();
        Arc::new(values)
    }

    pub(crate) fn internal(&self, reason: &str) -> PseudonymiseError {
        PseudonymiseError::Internal {
            extract: self.cfg.extract.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// A comparison column as an Arrow array: `FixedSizeBinary(8)`, or for a set variant a list of
/// them; `None` if Arrow refuses the buffers (a bug).
fn compare_array(column: CompareColumn, set: bool) -> Option<ArrayRef> {
    let CompareColumn { bytes, items, valid } = column;
    let width = i32::try_from(COMPARE_TOKEN_BYTES).ok()?;
    if !set {
        let array =
            FixedSizeBinaryArray::try_new(width, Buffer::from_vec(bytes), types::nulls(valid)).ok()?;
        return Some(Arc::new(array));
    }
    let tokens = FixedSizeBinaryArray::try_new(width, Buffer::from_vec(bytes), None).ok()?;
    let DataType::List(item) = compare_data_type(linklab_tokens::Variant::Edit1) else {
        return None;
    };
    let mut offsets = Vec::with_capacity(items.len() + 1);
    let mut end = 0_i32;
    offsets.push(end);
    for n in items {
        end = end.checked_add(i32::try_from(n).ok()?)?;
        offsets.push(end);
    }
    let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
    let array = ListArray::try_new(item, offsets, Arc::new(tokens), types::nulls(valid)).ok()?;
    Some(Arc::new(array))
}

/// Writes record batches from `rx` as part files `<prefix>-NNNNN.parquet` in `dir` until the
/// channel closes. The comparison tokens get no min/max statistics.
pub(crate) fn write_parts(
    dir: &Path,
    prefix: &str,
    schema: SchemaRef,
    plan: &Plan,
    rx: &Receiver<RecordBatch>,
) -> Result<Vec<PartSummary>, StoreError> {
    let compared: Vec<String> = plan
        .compare
        .iter()
        .flat_map(ComparePlan::columns)
        .map(|(name, _)| name)
        .collect();
    // Match-key tokens and the comparison tokens of reference numbers are random and seldom
    // repeat: written as they are, without a dictionary or compression that would only cost
    // time (a name's or a date's tokens repeat, and keep both).
    let random: Vec<String> = plan
        .keys
        .iter()
        .map(|k| k.key.column_name())
        .chain(
            plan.compare
                .iter()
                .filter(|c| !c.values_repeat())
                .flat_map(ComparePlan::columns)
                .map(|(name, _)| name),
        )
        .collect();
    // Comparison tokens make rows wide enough for their encoding to set the wall clock, so
    // their columns are encoded side by side (this runs on a writer thread of its own).
    let mut writer = PartWriter::with_prefix(dir, prefix, schema)
        .without_statistics(&compared)
        .plain(&random)
        .side_by_side(!compared.is_empty());
    for batch in rx {
        writer.write(&batch)?;
    }
    Ok(writer.finish_with_summaries()?.1)
}

/// The records one run reads.
pub(crate) type Source = Box<dyn Iterator<Item = Result<Rows, ExtractError>> + Send>;

/// What one run streams: where its records come from, the keep columns' types if they were
/// decided beforehand (partitions decide them from the file's first rows), and the prefix of
/// its part files.
pub(crate) struct Job {
    pub(crate) source: Source,
    pub(crate) types: Option<Types>,
    pub(crate) prefix: String,
    pub(crate) input_sha: InputSha,
}

/// Reads, hashes and writes the job's records into `dir`.
pub(crate) fn stream(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    job: Job,
    hashers: &Hashers,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Streamed, PseudonymiseError> {
    let internal = |reason: &str| PseudonymiseError::Internal {
        extract: cfg.extract.clone(),
        reason: reason.into(),
    };
    let Job {
        source,
        types: preset,
        prefix,
        input_sha,
    } = job;
    let prefix = prefix.as_str();
    std::thread::scope(|s| {
        let sha = s.spawn(|| match input_sha {
            InputSha::Tapped { hashing, identity } => {
                let (sha, bytes) = hashing
                    .join()
                    .map_err(|_| internal("the hashing thread stopped unexpectedly"))?;
                match identity {
                    // Every byte of the file as it was opened was read and hashed.
                    Some(identity) if identity.size() == bytes => note_sha256(identity, &sha),
                    Some(_) => {
                        return Err(PseudonymiseError::Config {
                            extract: cfg.extract.clone(),
                            reason: format!(
                                "{} changed while it was read; run the stage again",
                                cfg.input.display()
                            ),
                        });
                    }
                    None => {}
                }
                Ok(sha)
            }
            InputSha::Reread => Ok(sha256_file(&cfg.input)?),
        });
        let (batch_tx, batch_rx) = sync_channel::<Result<Rows, ExtractError>>(QUEUE);
        let reader_thread = s.spawn(move || {
            for batch in source {
                let failed = batch.is_err();
                if batch_tx.send(batch).is_err() || failed {
                    break;
                }
            }
        });
        let mut tally = Tally::new(plan, cfg.max_reject_fraction);
        let mut writer = None;
        let mut types = None;
        let mut process = || -> Result<(), PseudonymiseError> {
            let receive = |tally: &mut Tally| -> Result<Option<Rows>, PseudonymiseError> {
                // Batches that hold only rejects are counted and skipped.
                for batch in &batch_rx {
                    let batch = batch?;
                    tally.note_batch(&batch);
                    progress.advance((batch.len() + batch.rejects().len()) as u64);
                    if !batch.is_empty() {
                        return Ok(Some(batch));
                    }
                }
                Ok(None)
            };
            let Some(first) = receive(&mut tally)? else {
                return Ok(());
            };
            // Unless decided already, the first batch with rows is the sample the keep columns'
            // types are inferred from.
            let decided: &Types = types.insert(
                preset
                    .clone()
                    .unwrap_or_else(|| Types::decide(plan, Some(&first))),
            );
            let schema = decided.schema(plan);
            let (tx, rx) = sync_channel::<RecordBatch>(QUEUE);
            let writer_schema = Arc::clone(&schema);
            let handle = s.spawn(move || write_parts(dir, prefix, writer_schema, plan, &rx));
            let tx = &writer.insert((tx, handle)).0;
            let converter = Converter {
                cfg,
                plan,
                types: decided,
                schema,
                standardiser: Standardiser::new(cfg.today),
                hashers,
            };
            let mut next = Some(first);
            while let Some(batch) = next {
                let record_batch = converter.convert(&batch, &mut tally)?;
                if tx.send(record_batch).is_err() {
                    // The writer failed; its error is reported when it is joined.
                    break;
                }
                next = receive(&mut tally)?;
            }
            Ok(())
        };
        let result = process();
        drop(batch_rx);
        let reader_ok = reader_thread.join().is_ok();
        let types = types.unwrap_or_else(|| preset.unwrap_or_else(|| Types::decide(plan, None)));
        let written = if let Some((tx, handle)) = writer {
            drop(tx);
            handle.join()
        } else {
            // No record was written: an empty part still records the schema.
            let (tx, rx) = sync_channel(0);
            drop(tx);
            Ok(write_parts(dir, prefix, types.schema(plan), plan, &rx))
        };
        let sha = sha.join();
        result?;
        if !reader_ok {
            return Err(internal("the reader thread stopped unexpectedly"));
        }
        let parts = written.map_err(|_| internal("the writer thread stopped unexpectedly"))??;
        let part_rows = parts.iter().map(|p| p.rows).sum();
        let sha256 = sha.map_err(|_| internal("the hashing thread stopped unexpectedly"))??;
        Ok(Streamed {
            tally,
            types,
            parts,
            part_rows,
            sha256,
        })
    })
}
