//! Stage 2: the match-key cascade into a linked dataset with project-specific person ids.
//!
//! [`run`] reads every extract's pseudonymised Parquet (`work_dir/pseudonymised/<extract>/`:
//! `tok_<match key>` columns and the kept attributes), and writes `work_dir/linked/`:
//! `persons/`, one folder per extract, and `linkage-report.json` (a [`LinkageReport`]). The
//! folder is built under a staging name and swapped in at the end, so a failed run leaves the
//! previous good output. No token column survives into `linked/`.
//!
//! # 1. Persons from the spine
//! Spine records of the same person (released twice) become one person. For each match key k,
//! strongest first, each spine record's *anchor* is the first spine record (in input order) with
//! the same k-token. Then, key by key and record by record in input order, the cluster of each
//! record is merged with the cluster of its anchor, unless
//! - the merged cluster would hold more than `max_cluster_size` records (default 10), or
//! - a stronger key j (earlier in the cascade) separates them: both clusters hold j-tokens and
//!   no j-token is held by both. So if A~B and B~C by a weak key but A and C have different
//!   NI numbers, A, B and C never become one person.
//!
//! Persons are numbered in the order of their first spine record. Every spine record belongs to
//! exactly one person (a record with no token at all is a person on its own).
//!
//! # 2. The cascade for the other extracts
//! A person *has* a token if any of its spine records has it. For each record, the keys are
//! tried in order; at the first key k where the record's token is held by some person:
//! - held by exactly one person: the record is linked to it, `match_key = k`;
//! - held by several: the record is *ambiguous at k* and stays unlinked; weaker keys are not
//!   tried (falling through would link on weaker evidence than the evidence that was rejected).
//!
//! A record whose tokens no person has stays unlinked. Every input record appears exactly once
//! in `linked/<extract>/`, in input order (part files in name order, rows in file order), with
//! `person_id` and `match_key` null when unlinked. Spine records get their own person and
//! `match_key = "spine"`.
//!
//! # 3. Person ids
//! A spine record's *fingerprint* is SHA-256 of `"linklab/record-fingerprint/v1"` followed, for
//! each match key in cascade order, by `0x1F ‖ key name ‖ 0x1F ‖ (0x00 if its token is null,
//! else 0x01 ‖ the 32 token bytes)`. A person's id is the first 32 hex digits of
//! HMAC-SHA256(project key, `"linklab/person-id/v1"` ‖ 0x1F ‖ the smallest fingerprint of its
//! spine records). Hence: reruns on the same data give the same ids; a person whose spine
//! records are unchanged keeps its id when a refresh adds records; two project keys give
//! unrelated ids, so two projects' outputs cannot be joined. If several persons share their
//! smallest fingerprint (records with no token, or identical records split by the size limit),
//! the second and later in person order get `0x1F ‖ n` (n = 1, 2, … as 4 big-endian bytes)
//! appended to the message, which keeps ids unique.
//!
//! # 4. Memory
//! The run's memory is modelled as fixed per-record state (8 bytes per record of the other
//! extracts; per spine record 4 bytes per key, a 32-byte fingerprint, a person number and a
//! 32-byte person id) plus 96 MiB for Parquet reading and writing, plus the spine's hash tables
//! at about 116 bytes per (spine record, key) while they are built. When the tables do not fit
//! in what `memory_limit` leaves after the fixed part, both sides are split into P partitions
//! by the last two bytes of the token (tokens are uniformly random), spilled to
//! `work_dir/spill/` as fixed-size binary rows, and the partitions are processed one after
//! another, each spill file streamed in chunks. The outputs are identical to the in-memory
//! plan's, byte for byte. A limit below the fixed part cannot be kept: the run then uses the
//! most partitions (256) and warns.
//!
//! # 5. The plan in relational terms
//! ```sql
//! -- spine_tokens(key, token, record): one row per non-null spine token
//! -- anchors: SELECT key, token, MIN(record) AS anchor FROM spine_tokens GROUP BY key, token
//! -- persons: ordered union-find over anchors (section 1)
//! -- person_tokens: SELECT key, token,
//! --        CASE WHEN COUNT(DISTINCT person) = 1 THEN MIN(person) END AS person  -- NULL: ambiguous
//! --   FROM spine_tokens JOIN persons USING (record) GROUP BY key, token
//! -- hits: SELECT e.record, e.key, p.person FROM extract_tokens e
//! --   JOIN person_tokens p ON e.key = p.key AND e.token = p.token
//! -- decided: SELECT * FROM hits QUALIFY ROW_NUMBER() OVER (PARTITION BY record ORDER BY key) = 1
//! -- linked: SELECT person_id, key AS match_key, keep… FROM extract LEFT JOIN decided USING (record)
//! ```
//!
//! # 6. Quality against ground truth
//! With a truth folder (what `linklab synth` writes: `truth/records.csv`, header
//! `extract,record_id,person`), records are matched by their kept `record_id` column and the
//! report gives: for the spine clustering, pairwise precision and recall over pairs of spine
//! records; for each other extract, pairwise precision and recall over (record, spine record)
//! pairs — a pair is predicted when the record is linked to the spine record's person, and true
//! when both have the same true person — and per record: a linked record is correct when its
//! person has a spine record of the record's true person (precision = correct / linked,
//! recall = correct / records whose true person is on the spine). An extract that does not keep
//! `record_id` is noted in the report instead.
//!
//! # 7. Engines
//! With [`Engine::Spark`] the two relational steps of section 5 (`anchors`, and `person_tokens`
//! through `decided`) run as a Spark job over the pseudonymised Parquet; fingerprints, the
//! clustering, person ids, `linked/` and the report come from the same code as with the
//! default [`Engine::Embedded`], so the linked datasets are identical (the report's
//! `partitions` is 1: nothing is partitioned here). See the `spark` module for how it runs.
#![forbid(unsafe_code)]

mod cluster;
mod error;
mod identity;
mod input;
mod output;
mod quality;
mod report;
mod spark;
mod spill;
mod tok;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{FixedSizeBinaryArray, RecordBatch};
use linklab_store::{Progress, StagingDir, TOOL_VERSION, WorkDir, write_json_atomic};
use linklab_tokens::{MAX_MATCH_KEYS, SPEC_VERSION, SecretKey, TokenHasher};
use rayon::prelude::*;
use tracing::{info, warn};

pub use error::LinkError;
pub use report::{
    ClusterSize, ExtractQuality, ExtractReport, KeyReport, LinkageReport, PairwiseQuality, ProfileColumn,
    ProfileValue, QualityReport, SpineKeyReport, SpineReport,
};
pub use spark::{DEFAULT_MASTER, Engine, PYTHON_ENV, SparkSettings, VENV_DIR, find_python};

use cluster::{NONE, Persons};
use input::{ExtractInput, token_at};
use output::{Outcome, SPINE, Tally, WriteContext, write_extract};
use quality::{RECORD_ID, SpineTruth, Truth};
use report::rate;
use spill::{SpillDir, SpillRow, SpillWriter, for_each_chunk, read_by_key};
use tok::{Tok, TokMap};

/// The default memory limit: 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 4 << 30;
/// The default largest number of spine records of one person.
pub const DEFAULT_MAX_CLUSTER_SIZE: usize = 10;
/// Estimated bytes per (spine record, key) of the spine's hash tables while they are built: a
/// hash table slot (36 bytes, at most 7/8 full, rounded up to a power of two: about 80) plus
/// the (token, record) row it is built from (36).
const BYTES_PER_SPINE_TOKEN: u64 = 116;
/// Room for Parquet reading and writing (a row group each way) and spill buffers.
const IO_RESERVE: u64 = 96 << 20;
/// The most partitions (and so open spill files) a run uses.
const MAX_PARTITIONS: u64 = 256;

/// What [`run`] links, and how.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Match key names in cascade order, strongest first (`tok_<name>` columns).
    pub match_keys: Vec<String>,
    /// The extract whose records define the persons.
    pub spine: String,
    /// Every extract to link, the spine included.
    pub extracts: Vec<String>,
    /// The pipeline's work folder.
    pub work_dir: WorkDir,
    /// The project key file (same format as a linkage key) person ids are derived with.
    pub project_key_file: PathBuf,
    /// Bytes the spine's hash tables may use before the work is partitioned and spilled.
    pub memory_limit: u64,
    /// The most spine records one person may have.
    pub max_cluster_size: usize,
    /// A folder written by `linklab synth` (holding `truth/records.csv`) to measure quality.
    pub truth_dir: Option<PathBuf>,
    /// Which engine runs the relational steps (default: [`Engine::Embedded`]).
    pub engine: Engine,
}

impl LinkConfig {
    /// A configuration with the default memory limit and cluster size, and no truth.
    pub fn new(
        match_keys: Vec<String>,
        spine: impl Into<String>,
        extracts: Vec<String>,
        work_dir: WorkDir,
        project_key_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            match_keys,
            spine: spine.into(),
            extracts,
            work_dir,
            project_key_file: project_key_file.into(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            max_cluster_size: DEFAULT_MAX_CLUSTER_SIZE,
            truth_dir: None,
            engine: Engine::Embedded,
        }
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn validate(cfg: &LinkConfig) -> Result<(), LinkError> {
    let fail = |reason: String| Err(LinkError::Config { reason });
    if cfg.match_keys.is_empty() {
        return fail("no match keys are configured".into());
    }
    if cfg.match_keys.len() > MAX_MATCH_KEYS {
        return fail(format!(
            "{} match keys are configured; at most {MAX_MATCH_KEYS} are supported",
            cfg.match_keys.len()
        ));
    }
    for (i, key) in cfg.match_keys.iter().enumerate() {
        if !valid_name(key) {
            return fail(format!(
                "match key `{key}` is not a valid name: it must match [a-z][a-z0-9_]*"
            ));
        }
        if cfg.match_keys[..i].contains(key) {
            return fail(format!("match key `{key}` is listed twice"));
        }
    }
    for (i, extract) in cfg.extracts.iter().enumerate() {
        if !valid_name(extract) {
            return fail(format!(
                "extract `{extract}` is not a valid name: it must match [a-z][a-z0-9_]*"
            ));
        }
        if extract == "persons" {
            return fail("an extract may not be called `persons`: linked/persons/ holds the persons".into());
        }
        if cfg.extracts[..i].contains(extract) {
            return fail(format!("extract `{extract}` is listed twice"));
        }
    }
    if cfg.extracts.len() > usize::from(u16::MAX) {
        return fail(format!(
            "{} extracts are configured; at most {} are supported",
            cfg.extracts.len(),
            u16::MAX
        ));
    }
    if !cfg.extracts.contains(&cfg.spine) {
        return fail(format!(
            "the spine `{}` is not one of the extracts to link",
            cfg.spine
        ));
    }
    if cfg.max_cluster_size == 0 {
        return fail("max_cluster_size must be at least 1".into());
    }
    Ok(())
}

/// The memory a run needs besides the spine's hash tables: the per-record state (an outcome of
/// 8 bytes per record of the other extracts; per spine record, an anchor per key, a fingerprint,
/// a person number and, per person, an id) plus room for reading and writing Parquet.
fn fixed_memory(spine_rows: u64, other_rows: u64, keys: usize) -> u64 {
    let per_spine = 4 * keys as u64 + 32 + 4 + 4 + 32;
    other_rows
        .saturating_mul(8)
        .saturating_add(spine_rows.saturating_mul(per_spine))
        .saturating_add(IO_RESERVE)
}

/// The number of token partitions: 1 when the spine's hash tables fit in what `memory_limit`
/// leaves after [`fixed_memory`]. A limit that does not even cover that gets the most
/// partitions and a warning: the run goes on, but its peak memory will exceed the limit.
fn partitions_for(spine_rows: u64, other_rows: u64, keys: usize, memory_limit: u64) -> usize {
    let fixed = fixed_memory(spine_rows, other_rows, keys);
    let tables = spine_rows
        .saturating_mul(keys as u64)
        .saturating_mul(BYTES_PER_SPINE_TOKEN);
    let needed_minimum = fixed.saturating_add(tables / MAX_PARTITIONS);
    if memory_limit < needed_minimum {
        warn!(
            memory_limit_mib = memory_limit >> 20,
            needed_mib = needed_minimum.div_ceil(1 << 20),
            spine_rows,
            other_rows,
            "memory_limit is below what this run needs; using the most partitions, and raise `memory_limit` in [link]"
        );
        return MAX_PARTITIONS as usize;
    }
    let budget = memory_limit - fixed;
    if tables <= budget {
        1
    } else {
        tables.div_ceil(budget).clamp(2, MAX_PARTITIONS) as usize
    }
}

/// What reading the spine's tokens produced.
struct SpinePass {
    /// `anchors[k][r]`: the first spine record with record r's k-token ([`NONE`] if null).
    anchors: Vec<Vec<u32>>,
    /// Each spine record's fingerprint.
    fingerprints: Vec<[u8; 32]>,
    /// In memory: per key, token → anchor. Empty when spilling.
    maps: Vec<TokMap<u32>>,
    /// When spilling: the spine's partition files.
    files: Vec<PathBuf>,
    records: usize,
    without_tokens: u64,
}

/// Token → smallest record index, over `(token, record)` rows.
///
/// ```sql
/// SELECT token, MIN(record) AS anchor FROM rows GROUP BY token
/// ```
fn anchor_map(rows: &[(Tok, u32)]) -> TokMap<u32> {
    let mut map = TokMap::with_capacity_and_hasher(rows.len(), std::hash::BuildHasherDefault::default());
    for &(tok, r) in rows {
        let anchor = map.entry(tok).or_insert(r);
        *anchor = (*anchor).min(r);
    }
    map
}

/// Turns token → anchor into token → person ([`NONE`] when the token is ambiguous).
fn into_person_map(map: &mut TokMap<u32>, ambiguous: &[bool], person_of: &[u32]) {
    for v in map.values_mut() {
        *v = if ambiguous[*v as usize] {
            NONE
        } else {
            person_of[*v as usize]
        };
    }
}

/// Reads the spine's tokens: fingerprints always; anchors too when `anchors_here` (the Spark
/// engine computes them otherwise).
fn read_spine(
    spine: &ExtractInput,
    key_names: &[String],
    spill: Option<(&Path, usize)>,
    anchors_here: bool,
    progress: &dyn Progress,
) -> Result<SpinePass, LinkError> {
    let keys = key_names.len();
    let expected = spine.rows as usize;
    let mut writer = spill
        .map(|(dir, partitions)| SpillWriter::create(dir, "spine", partitions))
        .transpose()?;
    let mut anchors: Vec<Vec<u32>> = vec![Vec::new(); keys];
    let mut maps: Vec<TokMap<u32>> = Vec::new();
    if writer.is_none() && anchors_here {
        anchors = vec![Vec::with_capacity(expected); keys];
        maps = (0..keys)
            .map(|_| TokMap::with_capacity_and_hasher(expected, std::hash::BuildHasherDefault::default()))
            .collect();
    }
    let mut fingerprints = Vec::with_capacity(expected);
    let mut without_tokens = 0;
    let mut start = 0_usize;
    progress.start(&format!("link: reading spine {}", spine.name), Some(spine.rows));
    for batch in spine.batches()? {
        let batch = batch?;
        let rows = batch.num_rows();
        let cols = spine.token_columns(&batch);
        let fps: Vec<([u8; 32], bool)> = (0..rows)
            .into_par_iter()
            .with_min_len(1024)
            .map(|i| {
                let tokens: Vec<Option<&[u8]>> = cols.iter().map(|c| token_at(*c, i)).collect();
                (
                    identity::record_fingerprint(key_names, &tokens),
                    tokens.iter().all(Option::is_none),
                )
            })
            .collect();
        without_tokens += fps.iter().filter(|(_, none)| *none).count() as u64;
        fingerprints.extend(fps.into_iter().map(|(fp, _)| fp));
        if let Some(writer) = &mut writer {
            // spine_tokens: one row per non-null token, spilled to its partition.
            for i in 0..rows {
                for (k, col) in cols.iter().enumerate() {
                    if let Some(t) = token_at(*col, i) {
                        let row = SpillRow {
                            extract: 0,
                            key: k as u8,
                            tok: Tok::from_slice(t),
                            record: (start + i) as u32,
                        };
                        writer.push(&row)?;
                    }
                }
            }
        } else if anchors_here {
            // anchors: the first record seen with a token is its smallest record index.
            maps.par_iter_mut()
                .zip(anchors.par_iter_mut())
                .zip(cols.par_iter())
                .for_each(|((map, anchor), col)| {
                    for i in 0..rows {
                        anchor.push(match token_at(*col, i) {
                            Some(t) => *map.entry(Tok::from_slice(t)).or_insert((start + i) as u32),
                            None => NONE,
                        });
                    }
                });
        }
        start += rows;
        progress.advance(rows as u64);
    }
    progress.finish();
    let mut files = Vec::new();
    if let Some(writer) = writer {
        files = writer.finish()?;
        anchors = vec![vec![NONE; start]; keys];
        for path in &files {
            let by_key = read_by_key(path, keys)?;
            anchors
                .par_iter_mut()
                .zip(by_key.par_iter())
                .for_each(|(anchor, rows)| {
                    let map = anchor_map(rows);
                    for (tok, r) in rows {
                        anchor[*r as usize] = map[tok];
                    }
                });
        }
    }
    Ok(SpinePass {
        anchors,
        fingerprints,
        maps,
        files,
        records: start,
        without_tokens,
    })
}

/// The outcome of each row of a batch, probing the in-memory person maps key by key.
///
/// ```sql
/// -- for each record, the first key (in cascade order) whose token some person holds
/// SELECT record, key, person FROM hits QUALIFY ROW_NUMBER() OVER (PARTITION BY record ORDER BY key) = 1
/// ```
fn batch_outcomes(cols: &[Option<&FixedSizeBinaryArray>], maps: &[TokMap<u32>], rows: usize) -> Vec<Outcome> {
    (0..rows)
        .into_par_iter()
        .with_min_len(4096)
        .map(|i| {
            for (k, (col, map)) in cols.iter().zip(maps).enumerate() {
                if let Some(t) = token_at(*col, i)
                    && let Some(&person) = map.get(&Tok::from_slice(t))
                {
                    return Outcome { key: k as u8, person };
                }
            }
            Outcome::UNDECIDED
        })
        .collect()
}

/// The partitioned cascade: spills every non-spine extract's tokens, then for each partition
/// builds the spine's person maps and probes the extracts' tokens, keeping per record the hit
/// at the strongest key. Returns each extract's outcomes.
#[allow(clippy::too_many_arguments)] // Internal: the pieces of state the partitioned plan shares.
fn link_partitioned(
    extracts: &[&ExtractInput],
    pass: &SpinePass,
    ambiguous: &[Vec<bool>],
    person_of: &[u32],
    dir: &Path,
    partitions: usize,
    progress: &dyn Progress,
) -> Result<Vec<Vec<Outcome>>, LinkError> {
    let keys = pass.anchors.len();
    let mut writer = SpillWriter::create(dir, "extracts", partitions)?;
    let mut states = Vec::with_capacity(extracts.len());
    for (e, input) in extracts.iter().enumerate() {
        progress.start(&format!("link: spilling {}", input.name), Some(input.rows));
        let mut start = 0_usize;
        for batch in input.batches()? {
            let batch: RecordBatch = batch?;
            let cols = input.token_columns(&batch);
            for i in 0..batch.num_rows() {
                for (k, col) in cols.iter().enumerate() {
                    if let Some(t) = token_at(*col, i) {
                        let row = SpillRow {
                            extract: e as u16,
                            key: k as u8,
                            tok: Tok::from_slice(t),
                            record: (start + i) as u32,
                        };
                        writer.push(&row)?;
                    }
                }
            }
            start += batch.num_rows();
            progress.advance(batch.num_rows() as u64);
        }
        progress.finish();
        states.push(vec![Outcome::UNDECIDED; start]);
    }
    let files = writer.finish()?;
    progress.start("link: joining partitions", Some(partitions as u64));
    for (spine_file, extract_file) in pass.files.iter().zip(&files) {
        // person_tokens for this partition.
        let by_key = read_by_key(spine_file, keys)?;
        let maps: Vec<TokMap<u32>> = by_key
            .par_iter()
            .enumerate()
            .map(|(k, rows)| {
                let mut map = anchor_map(rows);
                into_person_map(&mut map, &ambiguous[k], person_of);
                map
            })
            .collect();
        drop(by_key);
        // hits, keeping the strongest key per record: probed in parallel, applied in order.
        for_each_chunk(extract_file, |rows| {
            let hits: Vec<Option<u32>> = rows
                .par_iter()
                .with_min_len(4096)
                .map(|row| maps[usize::from(row.key)].get(&row.tok).copied())
                .collect();
            for (row, hit) in rows.iter().zip(hits) {
                if let Some(person) = hit {
                    let state = &mut states[usize::from(row.extract)][row.record as usize];
                    if row.key < state.key {
                        *state = Outcome { key: row.key, person };
                    }
                }
            }
        })?;
        progress.advance(1);
    }
    progress.finish();
    Ok(states)
}

/// Checks that every extract was pseudonymised with the same linkage key; returns its fingerprint.
fn common_fingerprint(inputs: &[ExtractInput]) -> Result<String, LinkError> {
    let first = &inputs[0];
    for other in &inputs[1..] {
        if other.key_fingerprint != first.key_fingerprint {
            return Err(LinkError::KeyMismatch {
                first: first.name.clone(),
                first_fingerprint: first.key_fingerprint.clone(),
                other: other.name.clone(),
                other_fingerprint: other.key_fingerprint.clone(),
            });
        }
    }
    Ok(first.key_fingerprint.clone())
}

/// What [`run`] opens before it links: the project key's hasher and fingerprint, the extracts'
/// inputs and the fingerprint of the linkage key they share, the ground truth if any, and which
/// input is the spine (which holds records).
struct Opened {
    hasher: TokenHasher,
    project_fingerprint: String,
    inputs: Vec<ExtractInput>,
    linkage_fingerprint: String,
    truth: Option<Truth>,
    spine_index: usize,
}

/// Checks the configuration and opens what [`run`] links: see [`Opened`].
fn open(cfg: &LinkConfig) -> Result<Opened, LinkError> {
    validate(cfg)?;
    let (hasher, project_fingerprint) = {
        let key =
            SecretKey::from_file(&cfg.project_key_file).map_err(|source| LinkError::ProjectKey { source })?;
        (TokenHasher::new(&key), key.fingerprint())
    };
    let inputs: Vec<ExtractInput> = cfg
        .extracts
        .iter()
        .map(|e| ExtractInput::open(&cfg.work_dir, e, &cfg.match_keys))
        .collect::<Result<_, _>>()?;
    let linkage_fingerprint = common_fingerprint(&inputs)?;
    if linkage_fingerprint == project_fingerprint {
        return Err(LinkError::Config {
            reason: format!(
                "the project key is the linkage key (fingerprint {project_fingerprint}); use a separate project key so that person ids cannot be joined across projects"
            ),
        });
    }
    let truth = cfg
        .truth_dir
        .as_deref()
        .map(|dir| Truth::load(dir, &cfg.extracts))
        .transpose()?;
    let spine_index = cfg
        .extracts
        .iter()
        .position(|e| *e == cfg.spine)
        .expect("validated: the spine is an extract");
    let spine = &inputs[spine_index];
    if spine.rows == 0 {
        return Err(LinkError::EmptySpine {
            extract: spine.name.clone(),
        });
    }
    Ok(Opened {
        hasher,
        project_fingerprint,
        inputs,
        linkage_fingerprint,
        truth,
        spine_index,
    })
}

/// Person ids from each person's smallest record fingerprint; the fingerprints are not needed
/// after this and are dropped.
fn person_ids_of(hasher: &TokenHasher, pass: &mut SpinePass, persons: &Persons) -> Vec<identity::PersonId> {
    let mut smallest: Vec<[u8; 32]> = persons
        .first
        .iter()
        .map(|&r| pass.fingerprints[r as usize])
        .collect();
    for (fp, &p) in pass.fingerprints.iter().zip(&persons.person_of) {
        let s = &mut smallest[p as usize];
        if fp < s {
            *s = *fp;
        }
    }
    pass.fingerprints = Vec::new();
    identity::person_ids(hasher, &smallest)
}

/// How the cascade runs: the Spark job if that engine was chosen, how many partitions the
/// embedded engine splits its hash tables into (1 with Spark, which builds none here), and the
/// spill folder when there is more than one.
fn engine<'a>(
    cfg: &'a LinkConfig,
    inputs: &[ExtractInput],
    spine_index: usize,
) -> Result<(Option<spark::SparkJob<'a>>, usize, Option<SpillDir>), LinkError> {
    let keys = cfg.match_keys.len();
    let spine = &inputs[spine_index];
    let other_rows: u64 = inputs
        .iter()
        .filter(|e| e.name != cfg.spine)
        .map(|e| e.rows)
        .sum();
    // The Spark engine builds no hash tables here, so it never partitions.
    let job = match &cfg.engine {
        Engine::Embedded => None,
        Engine::Spark(settings) => Some(spark::SparkJob::prepare(
            settings,
            &cfg.work_dir,
            inputs,
            spine_index,
        )?),
    };
    let partitions = if job.is_some() {
        1
    } else {
        partitions_for(spine.rows, other_rows, keys, cfg.memory_limit)
    };
    info!(spine = %spine.name, spine_records = spine.rows, keys, partitions, spark = job.is_some(), "linking");
    let spill = if partitions > 1 {
        Some(SpillDir::create(&cfg.work_dir.spill())?)
    } else {
        None
    };
    Ok((job, partitions, spill))
}

/// The ground truth of the spine's persons, when the spine's records all carry their record ids;
/// otherwise a note saying why there is none.
fn spine_truth_of(
    spine: &ExtractInput,
    spine_tally: &Tally,
    records: usize,
    persons: &Persons,
    notes: &mut Vec<String>,
) -> Option<SpineTruth> {
    if spine_tally.spine_truth.len() == records {
        Some(SpineTruth::new(
            &spine_tally.spine_truth,
            &persons.person_of,
            persons.first.len(),
        ))
    } else {
        notes.push(no_record_id_note(spine));
        None
    }
}

/// Step 1: the spine's records clustered into persons, with, for each match key, which anchors
/// are ambiguous (shared by several persons).
fn spine_persons(
    cfg: &LinkConfig,
    spine: &ExtractInput,
    job: Option<&spark::SparkJob<'_>>,
    spill: Option<(&Path, usize)>,
    progress: &dyn Progress,
) -> Result<(SpinePass, Persons, Vec<Vec<bool>>), LinkError> {
    let mut pass = read_spine(spine, &cfg.match_keys, spill, job.is_none(), progress)?;
    if let Some(job) = job {
        pass.anchors = job.anchors(spine, cfg.match_keys.len(), progress)?;
    }
    let persons: Persons = cluster::cluster(&pass.anchors, pass.records, cfg.max_cluster_size);
    let ambiguous: Vec<Vec<bool>> = pass
        .anchors
        .par_iter()
        .map(|a| cluster::ambiguous_anchors(a, &persons.person_of))
        .collect();
    Ok((pass, persons, ambiguous))
}

/// Links every extract to the persons of the spine and writes `work_dir/linked/`.
pub fn run(cfg: &LinkConfig, progress: &dyn Progress) -> Result<LinkageReport, LinkError> {
    let Opened {
        hasher,
        project_fingerprint,
        inputs,
        linkage_fingerprint,
        truth,
        spine_index,
    } = open(cfg)?;
    let spine = &inputs[spine_index];
    let (job, partitions, spill) = engine(cfg, &inputs, spine_index)?;

    // 1. Persons from the spine.
    let (mut pass, persons, ambiguous) = spine_persons(
        cfg,
        spine,
        job.as_ref(),
        spill.as_ref().map(|s| (s.path(), partitions)),
        progress,
    )?;

    // 3. Person ids from each person's smallest record fingerprint.
    let person_ids = person_ids_of(&hasher, &mut pass, &persons);

    // 2, with Spark: every other record's outcome, decided before anything is written.
    let decided = job
        .as_ref()
        .map(|job| {
            job.decide(
                &inputs,
                spine_index,
                &persons.person_of,
                persons.first.len(),
                progress,
            )
        })
        .transpose()?;

    // 4. Outputs, staged.
    let staging = StagingDir::new(&cfg.work_dir.linked())?;
    let mut ctx = WriteContext {
        key_names: &cfg.match_keys,
        person_ids: &person_ids,
        first_record: &persons.first,
        person_size: &persons.size,
        truth: truth.as_ref(),
        spine_truth: None,
    };
    let person_of = &persons.person_of;
    let spine_tally = write_extract(spine, staging.path(), true, &ctx, progress, |batch, start| {
        Ok(person_of[start..start + batch.num_rows()]
            .iter()
            .map(|&person| Outcome { key: SPINE, person })
            .collect())
    })?;
    let mut notes = Vec::new();
    let spine_truth = truth
        .as_ref()
        .and_then(|_| spine_truth_of(spine, &spine_tally, pass.records, &persons, &mut notes));
    ctx.spine_truth = spine_truth.as_ref();

    // 2. The cascade for every other extract.
    let others: Vec<&ExtractInput> = inputs.iter().filter(|e| e.name != cfg.spine).collect();
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    let stored = match (decided, &spill) {
        (Some(states), _) => Some(states),
        (None, Some(spill)) => Some(link_partitioned(
            &others,
            &pass,
            &ambiguous,
            person_of,
            spill.path(),
            partitions,
            progress,
        )?),
        (None, None) => None,
    };
    if let Some(states) = stored {
        for (input, state) in others.iter().zip(&states) {
            let tally = write_extract(input, staging.path(), false, &ctx, progress, |batch, start| {
                Ok(state[start..start + batch.num_rows()].to_vec())
            })?;
            tallies.insert(input.name.clone(), tally);
        }
    } else {
        let mut maps = std::mem::take(&mut pass.maps);
        maps.par_iter_mut()
            .zip(&ambiguous)
            .for_each(|(map, amb)| into_person_map(map, amb, person_of));
        for input in &others {
            let tally = write_extract(input, staging.path(), false, &ctx, progress, |batch, _| {
                Ok(batch_outcomes(
                    &input.token_columns(batch),
                    &maps,
                    batch.num_rows(),
                ))
            })?;
            tallies.insert(input.name.clone(), tally);
        }
    }
    drop(spill);

    let report = build_report(
        cfg,
        &inputs,
        &persons,
        &ambiguous,
        &pass,
        &spine_tally,
        tallies,
        ReportExtras {
            project_fingerprint,
            linkage_fingerprint,
            partitions,
            spine_truth: spine_truth.as_ref(),
            notes,
            truth: truth.is_some(),
        },
    );
    write_json_atomic(&staging.path().join("linkage-report.json"), &report)?;
    staging.commit()?;
    if let Some(job) = job {
        job.clean();
    }
    info!(persons = persons.first.len(), extracts = inputs.len(), "linked");
    Ok(report)
}

fn no_record_id_note(input: &ExtractInput) -> String {
    let present = input
        .keep_cols
        .iter()
        .any(|&i| input.schema.field(i).name() == RECORD_ID);
    if present {
        format!(
            "extract `{}` keeps `{RECORD_ID}` with a type that cannot hold record ids; its quality is not measured",
            input.name
        )
    } else {
        format!(
            "extract `{}` does not keep a `{RECORD_ID}` column; its quality is not measured",
            input.name
        )
    }
}

struct ReportExtras<'a> {
    project_fingerprint: String,
    linkage_fingerprint: String,
    partitions: usize,
    spine_truth: Option<&'a SpineTruth>,
    notes: Vec<String>,
    truth: bool,
}

#[allow(clippy::too_many_arguments)] // Internal: gathers every count of the run into the report.
fn build_report(
    cfg: &LinkConfig,
    inputs: &[ExtractInput],
    persons: &Persons,
    ambiguous: &[Vec<bool>],
    pass: &SpinePass,
    spine_tally: &Tally,
    mut tallies: HashMap<String, Tally>,
    mut extras: ReportExtras<'_>,
) -> LinkageReport {
    let spine_clustering = SpineReport {
        records: pass.records as u64,
        persons: persons.first.len() as u64,
        records_without_tokens: pass.without_tokens,
        by_key: cfg
            .match_keys
            .iter()
            .enumerate()
            .map(|(k, key)| SpineKeyReport {
                key: key.clone(),
                records_with_token: spine_tally.with_token[k],
                merges: persons.merges[k],
                refused_by_stronger_key: persons.refused_guard[k],
                refused_by_size: persons.refused_size[k],
                ambiguous_tokens: ambiguous[k].iter().filter(|&&a| a).count() as u64,
            })
            .collect(),
        cluster_sizes: persons
            .size_histogram()
            .into_iter()
            .map(|(size, persons)| ClusterSize { size, persons })
            .collect(),
    };
    let mut extracts = Vec::new();
    let mut qualities = Vec::new();
    for input in inputs {
        let is_spine = input.name == cfg.spine;
        let tally = if is_spine {
            None
        } else {
            tallies.remove(&input.name)
        };
        let t = tally.as_ref().unwrap_or(spine_tally);
        let records = t.records;
        let linked = if is_spine {
            records
        } else {
            t.linked_by_key.iter().sum()
        };
        let ambiguous: u64 = t.ambiguous_by_key.iter().sum();
        let unlinked = records - linked;
        extracts.push(ExtractReport {
            name: input.name.clone(),
            role: if is_spine { "spine" } else { "linked" }.into(),
            records,
            linked,
            ambiguous,
            unlinked,
            linked_rate: rate(linked, records),
            ambiguous_rate: rate(ambiguous, records),
            unlinked_rate: rate(unlinked, records),
            missing_keys: cfg
                .match_keys
                .iter()
                .zip(&input.key_cols)
                .filter(|(_, col)| col.is_none())
                .map(|(key, _)| key.clone())
                .collect(),
            by_key: cfg
                .match_keys
                .iter()
                .enumerate()
                .map(|(k, key)| KeyReport {
                    key: key.clone(),
                    records_with_token: t.with_token[k],
                    linked: t.linked_by_key[k],
                    ambiguous: t.ambiguous_by_key[k],
                    linked_rate: rate(t.linked_by_key[k], records),
                    ambiguous_rate: rate(t.ambiguous_by_key[k], records),
                })
                .collect(),
            unlinked_profile: t.profile.clone(),
        });
        if let Some(tally) = tally {
            match tally.quality {
                Some(q) => qualities.push(q.finish(&input.name)),
                None if extras.truth && extras.spine_truth.is_some() => {
                    extras.notes.push(no_record_id_note(input));
                }
                None => {}
            }
        }
    }
    let quality = extras.truth.then(|| QualityReport {
        spine_clustering: extras.spine_truth.map(|s| s.pairwise.clone()),
        extracts: qualities,
        notes: extras.notes,
    });
    LinkageReport {
        tool_version: TOOL_VERSION.to_owned(),
        token_spec_version: SPEC_VERSION.to_owned(),
        project_key_fingerprint: extras.project_fingerprint,
        linkage_key_fingerprint: extras.linkage_fingerprint,
        spine: cfg.spine.clone(),
        match_keys: cfg.match_keys.clone(),
        max_cluster_size: cfg.max_cluster_size,
        partitions: extras.partitions,
        spine_clustering,
        extracts,
        quality,
    }
}
