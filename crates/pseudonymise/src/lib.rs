//! Stage 1: standardise identifiers and replace them with keyed tokens.
//!
//! [`run`] reads one extract (CSV or Parquet) in batches, standardises each declared identifier by
//! its kind (token spec v1), computes the HMAC token of every match key whose fields the extract
//! declares, and writes Parquet part files holding only the `tok_<key>` columns
//! (`FixedSizeBinary(32)`, null where a component is missing) and the `keep` columns, typed.
//! Then it writes `<extract>.manifest.json`, which accounts for every record.
//!
//! # Guarantees
//! - Weak match keys are refused before anything is read.
//! - No identifier leaves the stage through `keep`: a keep column whose name (trimmed, as the
//!   reader matches headers) or whose resolved file column is a declared identifier's is refused,
//!   except a `sex` identifier, which is written only as its standardised value (`M`, `F` or
//!   null), never as the text in the file.
//! - The output folder `work_dir/pseudonymised/<extract>/` is built under a staging name and
//!   swapped in only when the run succeeds; a failed run leaves the previous output as it was.
//!   The old manifest is removed just before the swap and the new one is written last, so a
//!   folder with a manifest is always complete.
//! - Records read = written + rejected, checked before anything is committed. If the share of
//!   rejected records is above `max_reject_fraction`, the stage fails and writes nothing.
//! - No identifier value (nor any raw cell) appears in an error, a log line, the manifest or a
//!   panic message raised by this crate. If a worker panics, the panic's message is dropped and
//!   the error says only which records were being processed ([`row_context`]). The default panic
//!   hook of the process still prints panic messages: the binary should install a hook that does
//!   not print payloads.
//!
//! # Partitioned runs
//! With `partition = Some((i, n))`, [`run`] handles only slice `i` of `n` of the extract, so
//! that `n` processes (on any hosts that share `work_dir`) can split one extract. The slices are
//! disjoint, deterministic and together cover every record; the union of the `n` outputs, read
//! in part-name order, equals a single run's output row for row.
//! - CSV: partition `i` owns the records whose first byte lies in
//!   `[d + (size - d)(i - 1)/n, d + (size - d)i/n)`, where `d` is the first byte after the
//!   header and a record's first byte is where the parser starts reading it (just after the line
//!   end of the record before). To find true record boundaries the file is scanned from its
//!   start with the parser's own state machine (RFC 4180: a line break ends a record only
//!   outside quotes; a quote opens a quoted field only at the start of a field; `""` inside
//!   quotes is a literal quote; `\r`, `\n` and `\r\n` end records; blank lines are skipped),
//!   so a quoted field holding line breaks, delimiters or quotes is never split, whatever the
//!   byte offsets. The scan counts records and lines on the way, so record and line numbers in
//!   rejects and errors are global, the same as a single run's. The scan runs from the start of
//!   the file to the end of the slice: it is a byte loop with no parsing, several times faster
//!   than reading the records.
//! - Parquet: partition `i` owns row groups `[g(i - 1)/n, gi/n)` of the `g` row groups, with
//!   rows numbered globally. (The reader still decodes the row groups before the slice and
//!   drops their rows.)
//! - The keep columns' types are inferred by every partition from the same rows a single run
//!   uses (the first batch of the file that holds rows), so all partitions agree.
//! - Partition `i` writes `pseudonymised/<extract>/part-pIIIIofNNNN-KKKKK.parquet`, names that
//!   sort in global order and never collide with another partition's, built in a staging
//!   folder of its own. On success it removes the extract's merged manifest, its own previous
//!   parts and partial manifest (and the parts of an earlier single run), moves its new parts
//!   in, and writes `pseudonymised/<extract>.manifest.part-IIII-of-NNNN.json` last ([`PartialManifest`]:
//!   the manifest's fields, with the whole input's SHA-256, plus the slice it read).
//!   `max_reject_fraction` is not applied to one partition, only to the merged total.
//! - [`merge_partitions`] is the final step: it checks that all `n` partial manifests are
//!   present, agree on `n`, the input (SHA-256, format), the key fingerprint, the spec and tool
//!   versions and the columns, that their slices tile the input exactly, and that every part
//!   file they list is there unchanged and no other is; then it applies `max_reject_fraction`
//!   to the totals and writes `<extract>.manifest.json` (counts summed, rejects merged, parts in
//!   global order, `partitions = n`). A missing, duplicated or overlapping partition is an
//!   error naming the extract and the partitions. [`needs_merge`] tells whether it must run.
//!   A later single run removes the partial manifests.
//!
//! # Keep column types
//! A keep column is `int` (Int64), `float` (Float64), `date` (Date32) or `string`. Unless `types`
//! declares it, the type is inferred from the first batch that holds rows (up to `batch_rows`
//! rows): `date` if every non-blank value is a date written `YYYY-MM-DD`, `DD/MM/YYYY` or
//! `YYYYMMDD`, else `int` if every one is an integer without leading zeros, else `float`, else
//! `string`. A later value that does not fit stops the stage with an error naming the column
//! and record and suggesting `types = { <column> = "string" }`. Blank values are null (for
//! `string`, only empty values are; others are kept as they are).
//!
//! # Speed
//! A reader thread parses batches, the rayon pool standardises and hashes the rows of each batch
//! in chunks, and a writer thread encodes the Parquet parts, so the three overlap. The input's
//! SHA-256 is computed on another thread while the file is read.
#![forbid(unsafe_code)]

mod error;
mod hash;
mod manifest;
mod merge;
mod partition;
mod rows;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use arrow::array::{ArrayRef, FixedSizeBinaryArray};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use linklab_extract::{ExtractError, ExtractReader, RejectReason};
use linklab_store::{PartWriter, Progress, StagingDir, StoreError, WorkDir, sha256_file, write_json_atomic};
use linklab_tokens::{FieldKind, MatchKey, SPEC_VERSION, SecretKey, Standardiser, TokenHasher};
use rayon::prelude::*;
use tracing::{info, warn};

pub use error::PseudonymiseError;
pub use linklab_extract::{DEFAULT_BATCH_ROWS, Encoding, InputFormat};
pub use manifest::{
    ColumnSummary, InputSummary, MatchKeySummary, PartSummary, PartialManifest, PartitionSummary,
    PseudonymiseManifest, RejectSummary, RowCounts,
};
pub use merge::{merge_partitions, needs_merge, partial_manifest_path, partial_manifest_paths};
pub use types::ColumnType;

use hash::{Hashed, IdentPlan, KeyPlan, MISSING_SLOTS, hash_rows, missing_label};
use partition::CsvRangeReader;
use rows::Rows;

/// The largest number of partitions (part and manifest names hold four digits of it).
pub const MAX_PARTITIONS: u32 = 9999;

/// How many rejected record numbers per reason the manifest lists.
pub const REJECT_EXAMPLES: usize = 20;

/// The default `max_reject_fraction`: 1% of the records.
pub const DEFAULT_MAX_REJECT_FRACTION: f64 = 0.01;

/// Batches waiting between the reader, the hashing and the writer.
const QUEUE: usize = 2;

/// The type label of token columns in manifests.
const TOKEN_TYPE: &str = "fixed_size_binary(32)";

/// A declared identifier of an extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    /// The field name match keys refer to (`surname`).
    pub name: String,
    /// The extract's column that holds it (`last_name`).
    pub column: String,
    /// Its kind, which chooses the standardisation rule.
    pub kind: FieldKind,
}

/// Everything one run of the stage needs. Plain data: the caller builds it from the pipeline file.
#[derive(Debug, Clone)]
pub struct PseudonymiseConfig {
    /// The extract's name, `[a-z][a-z0-9_]*`.
    pub extract: String,
    /// The extract file.
    pub input: PathBuf,
    /// CSV (delimiter, encoding) or Parquet.
    pub format: InputFormat,
    /// The declared identifiers.
    pub identifiers: Vec<Identifier>,
    /// Columns passed through to the output (typed).
    pub keep: Vec<String>,
    /// Declared types of keep columns; the others are inferred.
    pub types: BTreeMap<String, ColumnType>,
    /// The pipeline's match keys, in order. Keys that use a field this extract does not declare
    /// are skipped (and listed as skipped in the manifest).
    pub match_keys: Vec<MatchKey>,
    /// The linkage key file (token spec v1).
    pub key_file: PathBuf,
    /// The pipeline's `work_dir`.
    pub work_dir: WorkDir,
    /// The largest share of rejected records (0 to 1) that still lets the stage succeed.
    pub max_reject_fraction: f64,
    /// Records per batch ([`DEFAULT_BATCH_ROWS`] normally).
    pub batch_rows: usize,
    /// The last date of birth accepted as valid (normally today's date).
    pub today: NaiveDate,
    /// `(i, n)`: process only partition `i` of `n` (1-based) of the extract, writing its own
    /// part files and a partial manifest (see the crate documentation); `None` for the whole
    /// extract.
    pub partition: Option<(u32, u32)>,
}

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
fn guarded<T>(path: &Path, records: &[u64], work: impl FnOnce() -> T) -> Result<T, PseudonymiseError> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|_| PseudonymiseError::WorkerPanic {
        context: row_context(
            path,
            records.first().copied().unwrap_or(0),
            records.last().copied().unwrap_or(0),
        ),
    })
}

/// A keep column: its name and batch column, and the type declared for it.
#[derive(Debug, Clone)]
struct KeepPlan {
    name: String,
    column: usize,
    declared: Option<ColumnType>,
    /// Whether the column is the extract's `sex` identifier, which leaves the stage only as its
    /// standardised value (`M`, `F` or null). Set by [`resolve_keep`] once the reader has
    /// matched the columns against the file.
    standardised_sex: bool,
}

/// What the configuration resolves to before anything is read.
#[derive(Debug)]
struct Plan {
    /// The columns the reader yields, each once.
    columns: Vec<String>,
    idents: Vec<IdentPlan>,
    keys: Vec<KeyPlan>,
    key_summaries: Vec<MatchKeySummary>,
    keep: Vec<KeepPlan>,
}

/// `[a-z][a-z0-9_]*`
fn is_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn plan(cfg: &PseudonymiseConfig) -> Result<Plan, PseudonymiseError> {
    let bad = |reason: String| PseudonymiseError::Config {
        extract: cfg.extract.clone(),
        reason,
    };
    if !is_name(&cfg.extract) {
        return Err(bad("the extract name must match [a-z][a-z0-9_]*".into()));
    }
    if let Some((index, count)) = cfg.partition
        && !(1..=count).contains(&index)
    {
        return Err(bad(format!(
            "partition {index}/{count} does not exist: the partition number must be between 1 and the number of partitions"
        )));
    }
    if cfg.partition.is_some_and(|(_, count)| count > MAX_PARTITIONS) {
        return Err(bad(format!("at most {MAX_PARTITIONS} partitions are supported")));
    }
    if !(0.0..=1.0).contains(&cfg.max_reject_fraction) {
        return Err(bad(format!(
            "max_reject_fraction must be between 0 and 1, not {}",
            cfg.max_reject_fraction
        )));
    }
    if cfg.batch_rows == 0 {
        return Err(bad("batch_rows must be at least 1".into()));
    }
    let mut columns: Vec<String> = Vec::new();
    let mut column_index = |name: &str| {
        if let Some(i) = columns.iter().position(|c| c == name) {
            i
        } else {
            columns.push(name.to_owned());
            columns.len() - 1
        }
    };

    let mut idents = Vec::with_capacity(cfg.identifiers.len());
    for (i, ident) in cfg.identifiers.iter().enumerate() {
        if cfg.identifiers[..i].iter().any(|other| other.name == ident.name) {
            return Err(bad(format!("identifier `{}` is declared twice", ident.name)));
        }
        idents.push(IdentPlan {
            column: column_index(&ident.column),
            kind: ident.kind,
        });
    }
    let kind_of = |field: &str| cfg.identifiers.iter().find(|i| i.name == field).map(|i| i.kind);

    let mut keys = Vec::new();
    let mut key_summaries = Vec::with_capacity(cfg.match_keys.len());
    for (k, key) in cfg.match_keys.iter().enumerate() {
        if cfg.match_keys[..k].iter().any(|other| other.name == key.name) {
            return Err(bad(format!("match key `{}` is declared twice", key.name)));
        }
        let mut undeclared: Vec<String> = Vec::new();
        for component in &key.components {
            if kind_of(&component.field).is_none() && !undeclared.contains(&component.field) {
                undeclared.push(component.field.clone());
            }
        }
        let skipped = !undeclared.is_empty();
        if !skipped {
            key.check_strength(&kind_of)
                .map_err(|source| PseudonymiseError::MatchKey {
                    extract: cfg.extract.clone(),
                    source,
                })?;
            let fields = key
                .components
                .iter()
                .map(|c| {
                    cfg.identifiers
                        .iter()
                        .position(|i| i.name == c.field)
                        .expect("the field is declared")
                })
                .collect();
            keys.push(KeyPlan {
                key: key.clone(),
                fields,
            });
        }
        key_summaries.push(MatchKeySummary {
            name: key.name.clone(),
            components: key.components.iter().map(ToString::to_string).collect(),
            column: (!skipped).then(|| key.column_name()),
            skipped,
            undeclared_fields: undeclared,
            null_tokens: 0,
        });
    }
    if keys.is_empty() {
        return Err(bad(
            "none of the match keys can be built from the identifiers this extract declares, so its records could never be linked".into(),
        ));
    }

    let mut keep = Vec::with_capacity(cfg.keep.len());
    for (i, name) in cfg.keep.iter().enumerate() {
        if cfg.keep[..i].contains(name) {
            return Err(bad(format!("column `{name}` is listed twice in keep")));
        }
        // The same comparison the reader makes: header names are matched after trimming.
        // [`resolve_keep`] checks again against the columns the reader actually resolved.
        if let Some(ident) = cfg
            .identifiers
            .iter()
            .find(|id| id.column.trim() == name.trim() && id.kind != FieldKind::Sex)
        {
            return Err(bad(format!(
                "column `{name}` holds identifier `{}` (kind {}), so it cannot be kept: kept columns leave the stage as they are, and identifiers may leave only as tokens",
                ident.name, ident.kind
            )));
        }
        if keys.iter().any(|k| k.key.column_name() == *name) {
            return Err(bad(format!(
                "keep column `{name}` has the name of a token column"
            )));
        }
        keep.push(KeepPlan {
            name: name.clone(),
            column: column_index(name),
            declared: cfg.types.get(name).copied(),
            standardised_sex: false,
        });
    }
    if let Some(name) = cfg.types.keys().find(|t| !cfg.keep.contains(*t)) {
        return Err(bad(format!(
            "types declares column `{name}`, which is not in keep"
        )));
    }
    Ok(Plan {
        columns,
        idents,
        keys,
        key_summaries,
        keep,
    })
}

/// The second guard of the rule that identifiers leave the stage only as tokens, on the columns
/// as the reader resolved them against the file (`sources`: the file column of each reader
/// column): a keep column read from the same file column as a declared identifier is refused,
/// unless the identifier is a `sex`, which is then written only as its standardised value.
fn resolve_keep(
    cfg: &PseudonymiseConfig,
    plan: &mut Plan,
    sources: &[usize],
) -> Result<(), PseudonymiseError> {
    let bad = |reason: String| PseudonymiseError::Config {
        extract: cfg.extract.clone(),
        reason,
    };
    for keep in &mut plan.keep {
        let source = sources[keep.column];
        let held = plan
            .idents
            .iter()
            .zip(&cfg.identifiers)
            .filter(|(ident, _)| sources[ident.column] == source)
            .map(|(_, declared)| declared);
        for ident in held {
            if ident.kind != FieldKind::Sex {
                return Err(bad(format!(
                    "keep column `{}` is read from the same column of the file as identifier `{}` (kind {}), so it cannot be kept: kept columns leave the stage as they are, and identifiers may leave only as tokens",
                    keep.name, ident.name, ident.kind
                )));
            }
            if keep.declared.is_some_and(|ty| ty != ColumnType::String) {
                return Err(bad(format!(
                    "keep column `{}` is the sex identifier `{}`, which is kept as its standardised value (M, F or missing), so its type can only be string",
                    keep.name, ident.name
                )));
            }
            keep.standardised_sex = true;
        }
    }
    Ok(())
}

/// The type of each keep column and whether it was inferred.
#[derive(Debug, Clone)]
struct Types {
    types: Vec<(ColumnType, bool)>,
    sample_rows: usize,
}

impl Types {
    fn decide(plan: &Plan, sample: Option<&Rows>) -> Self {
        let types = plan
            .keep
            .iter()
            .map(|k| match (k.declared, sample) {
                _ if k.standardised_sex => (ColumnType::String, false),
                (Some(ty), _) => (ty, false),
                (None, Some(batch)) => (types::infer(batch.column(k.column)), true),
                (None, None) => (ColumnType::String, true),
            })
            .collect();
        Self {
            types,
            sample_rows: sample.map_or(0, Rows::len),
        }
    }

    fn schema(&self, plan: &Plan) -> SchemaRef {
        let mut fields: Vec<Field> = plan
            .keys
            .iter()
            .map(|k| Field::new(k.key.column_name(), DataType::FixedSizeBinary(32), true))
            .collect();
        for (keep, (ty, _)) in plan.keep.iter().zip(&self.types) {
            fields.push(Field::new(&keep.name, ty.data_type(), true));
        }
        Arc::new(Schema::new(fields))
    }
}

/// Counts gathered while streaming.
#[derive(Debug)]
struct Tally {
    read: u64,
    written: u64,
    rejects: BTreeMap<RejectReason, RejectSummary>,
    missing: Vec<[u64; MISSING_SLOTS]>,
    null_tokens: Vec<u64>,
    limit: RejectLimit,
}

/// How many rejects [`RejectLimit`] holds at most.
const PENDING_REJECTS: usize = 1 << 16;

/// Finds the reject at which `max_reject_fraction` was passed, for the error: the first reject
/// beyond `floor(max_fraction * read)` of the whole file. The allowance only grows as records
/// are read, so a reject within the allowance so far can never be that one and is dropped: only
/// the rejects beyond it are held (at most [`PENDING_REJECTS`]).
#[derive(Debug)]
struct RejectLimit {
    max_fraction: f64,
    /// Rejects dropped from the front: the front one is reject number `dropped + 1`.
    dropped: u64,
    /// The record and line of the rejects beyond the allowance so far, in file order.
    pending: std::collections::VecDeque<(u64, Option<u64>)>,
}

impl RejectLimit {
    fn allowed(&self, read: u64) -> u64 {
        // Float to integer: the allowance, rounded down, of a count well within f64's range.
        (self.max_fraction * read as f64).floor() as u64
    }

    fn note(&mut self, reject: &linklab_extract::Reject, read: u64) {
        // Past the cap the reject is not held; `passed_at` then finds nothing rather than a
        // wrong record.
        if self.pending.len() < PENDING_REJECTS {
            self.pending.push_back((reject.record, reject.line));
        }
        let allowed = self.allowed(read);
        while self.dropped < allowed && self.pending.pop_front().is_some() {
            self.dropped += 1;
        }
    }

    /// The record and line of the reject at which the limit was passed, once `read` records
    /// were read; `None` if the limit was not passed or the reject was not held.
    fn passed_at(&self, read: u64) -> Option<(u64, Option<u64>)> {
        let rank = self.allowed(read) + 1;
        let index = usize::try_from(rank.checked_sub(self.dropped + 1)?).ok()?;
        self.pending.get(index).copied()
    }
}

impl Tally {
    fn new(plan: &Plan, max_fraction: f64) -> Self {
        Self {
            read: 0,
            written: 0,
            rejects: RejectReason::ALL
                .into_iter()
                .map(|r| {
                    (
                        r,
                        RejectSummary {
                            count: 0,
                            first_records: Vec::new(),
                            first_lines: Vec::new(),
                        },
                    )
                })
                .collect(),
            missing: vec![[0; MISSING_SLOTS]; plan.idents.len()],
            null_tokens: vec![0; plan.keys.len()],
            limit: RejectLimit {
                max_fraction,
                dropped: 0,
                pending: std::collections::VecDeque::new(),
            },
        }
    }

    fn rejected(&self) -> u64 {
        self.rejects.values().map(|r| r.count).sum()
    }

    fn note_batch(&mut self, batch: &Rows) {
        self.read += (batch.len() + batch.rejects().len()) as u64;
        for reject in batch.rejects() {
            self.limit.note(reject, self.read);
            let summary = self
                .rejects
                .get_mut(&reject.reason)
                .expect("every reason has an entry");
            summary.count += 1;
            if summary.first_records.len() < REJECT_EXAMPLES {
                summary.first_records.push(reject.record);
                summary.first_lines.extend(reject.line);
            }
        }
    }
}

/// What streaming produced.
#[derive(Debug)]
struct Streamed {
    tally: Tally,
    types: Types,
    parts: Vec<PathBuf>,
    part_rows: u64,
    sha256: String,
}

/// Hashes and converts one batch into an output record batch.
struct Converter<'a> {
    cfg: &'a PseudonymiseConfig,
    plan: &'a Plan,
    types: &'a Types,
    schema: SchemaRef,
    standardiser: Standardiser,
    hasher: &'a TokenHasher,
}

impl Converter<'_> {
    fn convert(&self, batch: &Rows, tally: &mut Tally) -> Result<RecordBatch, PseudonymiseError> {
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
                            hash_rows(
                                batch,
                                range,
                                &self.plan.idents,
                                &self.plan.keys,
                                self.standardiser,
                                self.hasher,
                            )
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
        let mut all = Hashed::with_capacity(self.plan.keys.len(), self.plan.idents.len(), rows);
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
        columns.extend(kept);
        tally.written += rows as u64;
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|_| self.internal("an output batch could not be assembled"))
    }

    fn keep_array(
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
    fn standardised_sex(&self, column: &linklab_extract::TextColumn) -> ArrayRef {
        let values: arrow::array::StringArray = column
            .iter()
            .map(|raw| self.standardiser.standardise(FieldKind::Sex, raw).ok())
            .collect();
        Arc::new(values)
    }

    fn internal(&self, reason: &str) -> PseudonymiseError {
        PseudonymiseError::Internal {
            extract: self.cfg.extract.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// Writes record batches from `rx` as part files `<prefix>-NNNNN.parquet` in `dir` until the
/// channel closes.
fn write_parts(
    dir: &Path,
    prefix: &str,
    schema: SchemaRef,
    rx: &Receiver<RecordBatch>,
) -> Result<(Vec<PathBuf>, u64), StoreError> {
    let mut writer = PartWriter::with_prefix(dir, prefix, schema);
    for batch in rx {
        writer.write(&batch)?;
    }
    writer.finish()
}

/// The records one run reads.
type Source = Box<dyn Iterator<Item = Result<Rows, ExtractError>> + Send>;

/// What one run streams: where its records come from, the keep columns' types if they were
/// decided beforehand (partitions decide them from the file's first rows), and the prefix of
/// its part files.
struct Job {
    source: Source,
    types: Option<Types>,
    prefix: String,
}

/// Reads, hashes and writes the job's records into `dir`.
fn stream(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    job: Job,
    hasher: &TokenHasher,
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
    } = job;
    let prefix = prefix.as_str();
    std::thread::scope(|s| {
        let sha = s.spawn(|| sha256_file(&cfg.input));
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
            let handle = s.spawn(move || write_parts(dir, prefix, writer_schema, &rx));
            let tx = &writer.insert((tx, handle)).0;
            let converter = Converter {
                cfg,
                plan,
                types: decided,
                schema,
                standardiser: Standardiser::new(cfg.today),
                hasher,
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
            Ok(write_parts(dir, prefix, types.schema(plan), &rx))
        };
        let sha = sha.join();
        result?;
        if !reader_ok {
            return Err(internal("the reader thread stopped unexpectedly"));
        }
        let (parts, part_rows) =
            written.map_err(|_| internal("the writer thread stopped unexpectedly"))??;
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

fn part_summary(path: &Path) -> Result<PartSummary, StoreError> {
    PartSummary::of(path)
}

fn input_summary(cfg: &PseudonymiseConfig, sha256: String, bytes: u64, lines: Option<u64>) -> InputSummary {
    let (delimiter, encoding) = match cfg.format {
        InputFormat::Csv { delimiter, encoding } => {
            let shown = if delimiter == b'\t' {
                "\\t".to_owned()
            } else {
                char::from(delimiter).to_string()
            };
            (Some(shown), Some(encoding.as_str().to_owned()))
        }
        InputFormat::Parquet => (None, None),
    };
    InputSummary {
        path: cfg.input.display().to_string(),
        format: cfg.format.name().to_owned(),
        delimiter,
        encoding,
        sha256,
        bytes,
        lines,
    }
}

/// Fails with [`PseudonymiseError::TooManyRejects`] if the share of rejected records is above
/// `max_fraction`.
fn check_reject_fraction(
    manifest: &PseudonymiseManifest,
    path: &Path,
    max_fraction: f64,
) -> Result<(), PseudonymiseError> {
    check_reject_fraction_at(manifest, path, max_fraction, None)
}

/// [`check_reject_fraction`], naming the record (and line) of the reject at which the limit was
/// passed when it is known.
fn check_reject_fraction_at(
    manifest: &PseudonymiseManifest,
    path: &Path,
    max_fraction: f64,
    passed_at: Option<(u64, Option<u64>)>,
) -> Result<(), PseudonymiseError> {
    let RowCounts { read, rejected, .. } = manifest.rows;
    let fraction = if read == 0 {
        0.0
    } else {
        rejected as f64 / read as f64
    };
    if fraction > max_fraction {
        let by_reason = RejectReason::ALL
            .iter()
            .filter_map(|reason| {
                let count = manifest.rejects.get(reason.as_str()).map_or(0, |r| r.count);
                (count > 0).then(|| format!("{reason}: {count}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let at = passed_at.map_or_else(String::new, |(record, line)| {
            let line = line.map_or_else(String::new, |l| format!(", line {l}"));
            format!("; the limit was passed at record {record}{line}")
        });
        return Err(PseudonymiseError::TooManyRejects {
            extract: manifest.extract.clone(),
            path: path.to_path_buf(),
            at,
            read,
            rejected,
            max_fraction,
            by_reason,
        });
    }
    Ok(())
}

/// Removes a file; a file that is not there is fine.
fn remove_if_present(path: &Path, action: &'static str) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Checks what was streamed and builds the manifest (without writing it).
fn build_manifest(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    streamed: Streamed,
    fingerprint: &str,
    (bytes, lines): (u64, Option<u64>),
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    let Streamed {
        tally,
        types,
        parts,
        part_rows,
        sha256,
    } = streamed;
    let rejected = tally.rejected();
    if tally.read != tally.written + rejected || part_rows != tally.written {
        return Err(PseudonymiseError::Internal {
            extract: cfg.extract.clone(),
            reason: format!(
                "records do not add up: {} read, {} written ({} in the part files), {rejected} rejected",
                tally.read, tally.written, part_rows
            ),
        });
    }
    let part_summaries = parts
        .par_iter()
        .map(|p| part_summary(p))
        .collect::<Result<Vec<_>, _>>()?;
    if part_summaries.iter().map(|p| p.rows).sum::<u64>() != tally.written {
        return Err(PseudonymiseError::Internal {
            extract: cfg.extract.clone(),
            reason: "the part files do not hold the records written".into(),
        });
    }
    let mut match_keys = plan.key_summaries.clone();
    for (summary, nulls) in match_keys
        .iter_mut()
        .filter(|k| !k.skipped)
        .zip(&tally.null_tokens)
    {
        summary.null_tokens = *nulls;
    }
    let mut columns: Vec<ColumnSummary> = plan
        .keys
        .iter()
        .map(|k| ColumnSummary {
            name: k.key.column_name(),
            ty: TOKEN_TYPE.into(),
            origin: "token".into(),
        })
        .collect();
    for (keep, (ty, inferred)) in plan.keep.iter().zip(&types.types) {
        columns.push(ColumnSummary {
            name: keep.name.clone(),
            ty: ty.arrow_name().into(),
            origin: if keep.standardised_sex {
                "standardised"
            } else if *inferred {
                "inferred"
            } else {
                "declared"
            }
            .into(),
        });
    }
    let missing = cfg
        .identifiers
        .iter()
        .zip(&tally.missing)
        .map(|(ident, counts)| {
            let by_reason = counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(slot, n)| (missing_label(slot).to_owned(), *n))
                .collect();
            (ident.name.clone(), by_reason)
        })
        .collect();
    Ok(PseudonymiseManifest {
        extract: cfg.extract.clone(),
        input: input_summary(cfg, sha256, bytes, lines),
        rows: RowCounts {
            read: tally.read,
            written: tally.written,
            rejected,
        },
        rejects: tally
            .rejects
            .iter()
            .map(|(reason, r)| (reason.as_str().to_owned(), r.clone()))
            .collect(),
        missing,
        key_fingerprint: fingerprint.to_owned(),
        token_spec_version: SPEC_VERSION.into(),
        tool_version: linklab_store::TOOL_VERSION.into(),
        reference_date: cfg.today.format("%Y-%m-%d").to_string(),
        match_keys,
        columns,
        parts: part_summaries,
        partitions: None,
    })
}

/// Runs stage 1 for one extract, or for one partition of it: see the crate documentation.
/// Returns the manifest it wrote (for a partition, the partial manifest without its
/// `partition` section).
pub fn run(
    cfg: &PseudonymiseConfig,
    progress: &dyn Progress,
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    let mut plan = plan(cfg)?;
    let hasher = {
        let key = SecretKey::from_file(&cfg.key_file)?;
        TokenHasher::new(&key)
    };
    let fingerprint = hasher.fingerprint().to_owned();
    for summary in plan.key_summaries.iter().filter(|k| k.skipped) {
        info!(extract = %cfg.extract, match_key = %summary.name, undeclared = ?summary.undeclared_fields, "match key skipped: the extract does not declare all its fields");
    }
    let reader = ExtractReader::open(&cfg.input, cfg.format, &plan.columns, cfg.batch_rows)?;
    resolve_keep(cfg, &mut plan, reader.source_columns())?;
    let bytes = fs::metadata(&cfg.input)
        .map_err(|source| ExtractError::Open {
            path: cfg.input.clone(),
            source,
        })?
        .len();
    let manifest = match cfg.partition {
        None => run_whole(cfg, &plan, reader, &hasher, &fingerprint, bytes, progress)?,
        Some((index, count)) => run_partition(
            cfg,
            &plan,
            reader,
            (&hasher, &fingerprint),
            bytes,
            (index, count),
            progress,
        )?,
    };
    let rejected = manifest.rows.rejected;
    info!(
        extract = %cfg.extract,
        partition = ?cfg.partition,
        rows_read = manifest.rows.read,
        rows_written = manifest.rows.written,
        rows_rejected = rejected,
        key_fingerprint = %fingerprint,
        parts = manifest.parts.len(),
        "pseudonymised extract"
    );
    for (reason, r) in manifest.rejects.iter().filter(|(_, r)| r.count > 0) {
        warn!(extract = %cfg.extract, reason = reason.as_str(), count = r.count, first_records = ?r.first_records, "records rejected");
    }
    let used: BTreeSet<&str> = plan
        .keys
        .iter()
        .flat_map(|k| k.key.components.iter().map(|c| c.field.as_str()))
        .collect();
    for ident in cfg.identifiers.iter().filter(|i| !used.contains(i.name.as_str())) {
        info!(extract = %cfg.extract, identifier = %ident.name, "identifier is declared but no match key uses it");
    }
    Ok(manifest)
}

/// The single-process run: the whole extract into a staged folder that replaces the old one.
fn run_whole(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    reader: ExtractReader,
    hasher: &TokenHasher,
    fingerprint: &str,
    bytes: u64,
    progress: &dyn Progress,
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    let target = cfg.work_dir.pseudonymised(&cfg.extract);
    let staging = StagingDir::new(&target)?;
    progress.start("pseudonymise", None);
    let summary = reader.summary();
    let job = Job {
        source: Box::new(reader.map(|b| b.map(Rows::from_batch))),
        types: None,
        prefix: "part".into(),
    };
    let streamed = stream(cfg, plan, job, hasher, staging.path(), progress);
    progress.finish();
    let streamed = streamed?;
    let passed_at = streamed.tally.limit.passed_at(streamed.tally.read);
    let manifest = build_manifest(cfg, plan, streamed, fingerprint, (bytes, summary.lines()))?;
    if summary.utf8_in_windows_1252() {
        // The file is named, never a value.
        warn!(extract = %cfg.extract, path = %cfg.input.display(), "the extract is declared windows-1252 but every record that is not ASCII is valid multi-byte UTF-8, so its names are probably mis-decoded: check the encoding declared for the extract");
    }
    check_reject_fraction_at(&manifest, &cfg.input, cfg.max_reject_fraction, passed_at)?;

    let manifest_path = cfg.work_dir.pseudonymised_manifest(&cfg.extract);
    remove_if_present(&manifest_path, "cannot remove the old manifest")?;
    // Partial manifests of an earlier partitioned run describe parts this run replaces.
    for (path, _) in merge::partial_manifests(&cfg.work_dir, &cfg.extract)? {
        remove_if_present(&path, "cannot remove an old partial manifest")?;
    }
    staging.commit()?;
    write_json_atomic(&manifest_path, &manifest)?;
    Ok(manifest)
}

/// One partition of a partitioned run: its slice of the extract into its own part files, then
/// its partial manifest.
fn run_partition(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    mut reader: ExtractReader,
    (hasher, fingerprint): (&TokenHasher, &str),
    bytes: u64,
    (index, count): (u32, u32),
    progress: &dyn Progress,
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    // Every partition infers the keep columns' types from the same rows a single run would: the
    // first batch of the file that holds rows.
    let mut sample = None;
    for batch in &mut reader {
        let batch = batch?;
        if !batch.is_empty() {
            sample = Some(Rows::from_batch(batch));
            break;
        }
    }
    let types = Types::decide(plan, sample.as_ref());
    drop((sample, reader));
    let read_error = |source| ExtractError::Read {
        path: cfg.input.clone(),
        record: 0,
        source,
    };
    // The rows the slice must hold (Parquet: from the row groups' declared counts).
    let (source, partition, slice_rows): (Source, PartitionSummary, Option<u64>) = match cfg.format {
        InputFormat::Csv { delimiter, encoding } => {
            let slice = partition::csv_slice(&cfg.input, delimiter, index, count).map_err(read_error)?;
            let source = CsvRangeReader::open(
                &cfg.input,
                delimiter,
                encoding,
                &plan.columns,
                &slice,
                cfg.batch_rows,
            )?;
            let summary = PartitionSummary {
                index,
                count,
                unit: "bytes".into(),
                domain_start: slice.data_start,
                domain_end: slice.size,
                start: slice.start.byte,
                end: slice.end.byte,
                first_record: slice.start.records_before + 1,
            };
            (Box::new(source), summary, None)
        }
        InputFormat::Parquet => {
            let group_rows = parquet_group_rows(&cfg.input)?;
            let (start, end, before, rows) = partition::row_group_slice(&group_rows, index, count);
            let (first, stop) = (before + 1, before + rows + 1);
            // The reader decodes the row groups before the slice too; their rows are dropped.
            let reader = ExtractReader::open(&cfg.input, cfg.format, &plan.columns, cfg.batch_rows)?;
            let source = reader
                .map(|b| b.map(Rows::from_batch))
                .take_while(move |b| {
                    b.as_ref()
                        .map_or(true, |r| r.records().first().is_none_or(|&f| f < stop))
                })
                .filter_map(move |b| match b {
                    Err(e) => Some(Err(e)),
                    Ok(r) => {
                        let r = r.keep_records(first, stop);
                        (!r.is_empty() || !r.rejects().is_empty()).then_some(Ok(r))
                    }
                });
            let summary = PartitionSummary {
                index,
                count,
                unit: "row_groups".into(),
                domain_start: 0,
                domain_end: group_rows.len() as u64,
                start,
                end,
                first_record: first,
            };
            (Box::new(source), summary, Some(rows))
        }
    };
    let prefix = partition::part_prefix(index, count);
    let pseudonymised = cfg.work_dir.pseudonymised(&cfg.extract);
    let staging = StagingDir::new(&pseudonymised.with_file_name(format!("{}.{prefix}", cfg.extract)))?;
    progress.start("pseudonymise", None);
    let job = Job {
        source,
        types: Some(types),
        prefix: prefix.clone(),
    };
    let streamed = stream(cfg, plan, job, hasher, staging.path(), progress);
    progress.finish();
    // The share of rejects is checked when the partitions are merged, on the whole extract.
    let manifest = build_manifest(cfg, plan, streamed?, fingerprint, (bytes, None))?;
    // Rows are counted as read: a row group whose rows are not all read (or more than it
    // declares) must not pass silently.
    if let Some(expected) = slice_rows
        && manifest.rows.read != expected
    {
        return Err(ExtractError::RowCount {
            path: cfg.input.clone(),
            row_group: None,
            declared: expected,
            found: manifest.rows.read,
        }
        .into());
    }

    // Nothing downstream may read a mix of old and new parts: the merged manifest goes first,
    // then this partition's own manifest and parts (and any left by a single run).
    remove_if_present(
        &cfg.work_dir.pseudonymised_manifest(&cfg.extract),
        "cannot remove the old manifest",
    )?;
    let partial_path = partial_manifest_path(&cfg.work_dir, &cfg.extract, index, count);
    remove_if_present(&partial_path, "cannot remove the old partial manifest")?;
    fs::create_dir_all(&pseudonymised).map_err(|source| StoreError::Io {
        action: "cannot create folder",
        path: pseudonymised.clone(),
        source,
    })?;
    let listing = fs::read_dir(&pseudonymised).map_err(|source| StoreError::Io {
        action: "cannot list",
        path: pseudonymised.clone(),
        source,
    })?;
    let own = format!("{prefix}-");
    for entry in listing {
        let entry = entry.map_err(|source| StoreError::Io {
            action: "cannot list",
            path: pseudonymised.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale =
            (name.starts_with(&own) && name.ends_with(".parquet")) || partition::is_single_run_part(&name);
        if stale {
            remove_if_present(&entry.path(), "cannot remove an old part file")?;
        }
    }
    for part in &manifest.parts {
        let from = staging.path().join(&part.name);
        let to = pseudonymised.join(&part.name);
        fs::rename(&from, &to).map_err(|source| StoreError::Io {
            action: "cannot move a part file into",
            path: to.clone(),
            source,
        })?;
    }
    if let Ok(dir) = File::open(&pseudonymised) {
        // Make the renames durable; a failure here only weakens durability, not atomicity.
        let _ = dir.sync_all();
    }
    drop(staging);
    write_json_atomic(
        &partial_path,
        &PartialManifest {
            manifest: manifest.clone(),
            partition,
        },
    )?;
    Ok(manifest)
}

/// The row count of each row group of a Parquet file.
fn parquet_group_rows(path: &Path) -> Result<Vec<u64>, ExtractError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = File::open(path).map_err(|source| ExtractError::Open {
        path: path.into(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|source| ExtractError::Parquet {
        path: path.into(),
        source,
    })?;
    Ok(reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "ZQXCANARYONE";

    fn config(keep: &[&str]) -> PseudonymiseConfig {
        let ident = |name: &str, column: &str, kind| Identifier {
            name: name.into(),
            column: column.into(),
            kind,
        };
        PseudonymiseConfig {
            extract: "people".into(),
            input: PathBuf::from("/data/people.csv"),
            format: InputFormat::CSV,
            identifiers: vec![
                ident("nino", "NINO", FieldKind::Nino),
                ident("sex", "Gender", FieldKind::Sex),
            ],
            keep: keep.iter().map(|&k| k.to_owned()).collect(),
            types: BTreeMap::new(),
            match_keys: vec![MatchKey::parse("nino", &["nino"], false).unwrap()],
            key_file: PathBuf::from("/keys/linkage.key"),
            work_dir: WorkDir::new("/work"),
            max_reject_fraction: 0.0,
            batch_rows: 10,
            today: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            partition: None,
        }
    }

    /// The second guard, on the columns as a reader resolved them: `sources` gives the file
    /// column of each reader column (`NINO`, `Gender`, then the keep columns).
    fn check_resolved(keep: &[&str], sources: &[usize], expected: Result<Vec<bool>, &str>) {
        let cfg = config(keep);
        let mut plan = plan(&cfg).expect("the first guard passes");
        let got = resolve_keep(&cfg, &mut plan, sources)
            .map(|()| plan.keep.iter().map(|k| k.standardised_sex).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "keep {keep:?}, sources {sources:?}"
        );
    }

    /// Records `1..=read` in batches of `batch`, the `rejected` ones rejected (on line record + 1):
    /// the record and line at which `max_fraction` was passed.
    fn check_limit(
        max_fraction: f64,
        read: u64,
        batch: u64,
        rejected: &[u64],
        expected: Option<(u64, Option<u64>)>,
    ) {
        let mut limit = RejectLimit {
            max_fraction,
            dropped: 0,
            pending: std::collections::VecDeque::new(),
        };
        let mut seen = 0;
        while seen < read {
            let end = (seen + batch).min(read);
            for &record in rejected.iter().filter(|&&r| r > seen && r <= end) {
                let reject = linklab_extract::Reject {
                    record,
                    line: Some(record + 1),
                    reason: RejectReason::WrongFieldCount,
                };
                limit.note(&reject, end);
            }
            seen = end;
        }
        assert_eq!(
            limit.passed_at(read),
            expected,
            "{max_fraction} {read} {batch} {rejected:?}"
        );
    }

    #[test]
    fn the_reject_that_passes_the_limit_is_found() {
        // 1% of 311 allows 3 rejects: the fourth passes the limit, whatever the batches.
        for batch in [1, 7, 150, 311] {
            check_limit(
                0.01,
                311,
                batch,
                &[5, 90, 150, 151, 152, 300],
                Some((151, Some(152))),
            );
            check_limit(0.01, 311, batch, &[5, 90, 150], None);
        }
        check_limit(0.0, 10, 3, &[4, 9], Some((4, Some(5))));
        check_limit(0.5, 10, 3, &[1, 2, 3, 4, 5, 6], Some((6, Some(7))));
    }

    #[test]
    fn a_keep_column_resolved_to_an_identifier_column_is_refused_or_standardised() {
        // Distinct file columns: kept as they are.
        check_resolved(&["town"], &[0, 1, 2], Ok(vec![false]));
        // A name the first guard does not see (say a reader that ignored case) that resolves to
        // the NINO column.
        check_resolved(
            &["nino"],
            &[0, 1, 0],
            Err(
                "extract `people`: keep column `nino` is read from the same column of the file as identifier `nino` (kind nino), so it cannot be kept: kept columns leave the stage as they are, and identifiers may leave only as tokens",
            ),
        );
        // The sex column, under any name that resolves to it, is standardised.
        check_resolved(&["Gender", "gender"], &[0, 1, 1], Ok(vec![true, true]));
    }

    #[test]
    fn a_panicking_worker_reports_records_not_values() {
        let path = Path::new("/data/extract.csv");
        let err = guarded(path, &[7, 8, 9], || -> u32 {
            std::panic::panic_any(format!("byte index 3 is not a char boundary of `{CANARY}`"))
        })
        .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(CANARY), "{shown}");
        assert_eq!(
            err.to_string(),
            "internal error: a worker stopped while pseudonymising records 7 to 9 of /data/extract.csv; no output was written; please report this"
        );
        assert_eq!(row_context(path, 4, 4), "record 4 of /data/extract.csv");
        assert_eq!(guarded(path, &[1], || 5).unwrap(), 5);
    }
}
