//! The two run modes: a whole extract, or one partition of it.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use linklab_extract::{ExtractError, ExtractReader, Tap};
use linklab_store::{FileIdentity, Progress, StagingDir, StoreError, sha256_chunks, write_json_atomic};
use linklab_tokens::{CompareHasher, SecretKey, TokenHasher};
use tracing::{info, warn};

use crate::hash::Hashers;
use crate::plan::{Plan, plan, resolve_keep};
use crate::record::{build_manifest, remove_if_present};
use crate::rows::Rows;
use crate::stream::{Job, Source, stream};
use crate::tally::{Types, check_reject_fraction_at};
use crate::{
    InputFormat, PartialManifest, PartitionSummary, PseudonymiseConfig, PseudonymiseError,
    PseudonymiseManifest, merge, partial_manifest_path, partition,
};

/// Runs stage 1 for one extract, or for one partition of it: see the crate documentation.
/// Returns the manifest it wrote (for a partition, the partial manifest without its
/// `partition` section).
pub fn run(
    cfg: &PseudonymiseConfig,
    progress: &dyn Progress,
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    let mut plan = plan(cfg)?;
    let hashers = {
        let key = SecretKey::from_file(&cfg.key_file)?;
        let compare = CompareHasher::new(&key);
        Hashers::new(
            TokenHasher::new(&key),
            plan.compare
                .iter()
                .map(|c| compare.field(&c.field, c.kind))
                .collect(),
            &plan.compare,
        )
    };
    let fingerprint = hashers.tokens.fingerprint().to_owned();
    for summary in plan.key_summaries.iter().filter(|k| k.skipped) {
        info!(extract = %cfg.extract, match_key = %summary.name, undeclared = ?summary.undeclared_fields, "match key skipped: the extract does not declare all its fields");
    }
    // A CSV read whole is hashed from the bytes the reader reads, on a thread of its own; any
    // other input is read again for its digest while the stage runs.
    let (tap, input_sha) = match (cfg.format, cfg.partition) {
        (InputFormat::Csv { .. }, None) => {
            let identity = FileIdentity::of_path(&cfg.input);
            let (tap, hashing) = sha256_tap();
            (Some(tap), InputSha::Tapped { hashing, identity })
        }
        _ => (None, InputSha::Reread),
    };
    let reader = ExtractReader::open_tapped(&cfg.input, cfg.format, &plan.columns, cfg.batch_rows, tap)?;
    resolve_keep(cfg, &mut plan, reader.source_columns())?;
    let bytes = fs::metadata(&cfg.input)
        .map_err(|source| ExtractError::Open {
            path: cfg.input.clone(),
            source,
        })?
        .len();
    let manifest = match cfg.partition {
        None => run_whole(
            cfg,
            &plan,
            (reader, input_sha),
            (&hashers, &fingerprint),
            bytes,
            progress,
        )?,
        Some((index, count)) => run_partition(
            cfg,
            &plan,
            reader,
            (&hashers, &fingerprint),
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
pub(crate) fn run_whole(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    (reader, input_sha): (ExtractReader, InputSha),
    (hashers, fingerprint): (&Hashers, &str),
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
        input_sha,
    };
    let streamed = stream(cfg, plan, job, hashers, staging.path(), progress);
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
pub(crate) fn run_partition(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    mut reader: ExtractReader,
    (hashers, fingerprint): (&Hashers, &str),
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
    let (source, partition, slice_rows) = partition_source(cfg, plan, index, count)?;
    let prefix = partition::part_prefix(index, count);
    let pseudonymised = cfg.work_dir.pseudonymised(&cfg.extract);
    let staging = StagingDir::new(&pseudonymised.with_file_name(format!("{}.{prefix}", cfg.extract)))?;
    progress.start("pseudonymise", None);
    let job = Job {
        source,
        types: Some(types),
        prefix: prefix.clone(),
        input_sha: InputSha::Reread,
    };
    let streamed = stream(cfg, plan, job, hashers, staging.path(), progress);
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

/// The input's SHA-256, as a run takes it.
pub(crate) enum InputSha {
    /// From the bytes the CSV reader reads, which its tap sends to this thread; with the file's
    /// identity before it was opened. The thread gives the digest and the number of bytes.
    Tapped {
        hashing: JoinHandle<(String, u64)>,
        identity: Option<FileIdentity>,
    },
    /// By reading the file again, on a thread of its own while the stage runs.
    Reread,
}

/// Chunks of the input waiting to be hashed (each one read of the CSV reader, up to 1 MiB).
const TAP_QUEUE: usize = 8;

/// A chunk of the input on its way to the hashing thread; once hashed (dropped), its buffer goes
/// back to the tap to carry a later chunk, so that the tap does not allocate one per read.
struct Chunk {
    bytes: Vec<u8>,
    spare: SyncSender<Vec<u8>>,
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // If the tap is gone or has enough buffers, this one is freed.
        let _ = self.spare.try_send(std::mem::take(&mut self.bytes));
    }
}

/// A tap that sends the bytes the reader reads to a new thread that hashes them.
fn sha256_tap() -> (Tap, JoinHandle<(String, u64)>) {
    let (tx, rx) = sync_channel::<Chunk>(TAP_QUEUE);
    let (spare, spares) = sync_channel::<Vec<u8>>(TAP_QUEUE + 2);
    let hashing = std::thread::spawn(move || sha256_chunks(rx));
    let tap: Tap = Box::new(move |bytes: &[u8]| {
        let mut buffer = spares.try_recv().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(bytes);
        // If the hashing thread is gone, the digest is missing and the run fails when it is
        // asked for.
        let _ = tx.send(Chunk {
            bytes: buffer,
            spare: spare.clone(),
        });
    });
    (tap, hashing)
}

/// The records of partition `index` of `count`, what the partial manifest says of its slice, and
/// the rows the slice must hold (Parquet: from the row groups' declared counts).
fn partition_source(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    index: u32,
    count: u32,
) -> Result<(Source, PartitionSummary, Option<u64>), PseudonymiseError> {
    let read_error = |source| ExtractError::Read {
        path: cfg.input.clone(),
        record: 0,
        source,
    };
    Ok(match cfg.format {
        InputFormat::Csv { delimiter, encoding } => {
            let slice = partition::csv_slice(&cfg.input, delimiter, index, count).map_err(read_error)?;
            let reader = ExtractReader::open_csv_range(
                &cfg.input,
                (delimiter, encoding),
                &plan.columns,
                &slice.range(),
                cfg.batch_rows,
            )?;
            let source = reader.map(|b| b.map(Rows::from_batch));
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
    })
}

/// The row count of each row group of a Parquet file.
pub(crate) fn parquet_group_rows(path: &Path) -> Result<Vec<u64>, ExtractError> {
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
