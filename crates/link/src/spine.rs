//! Step 1: the spine's tokens read, its records clustered into persons, and their ids.

use std::path::{Path, PathBuf};

use arrow::array::Array;
use linklab_store::Progress;
use linklab_tokens::TokenHasher;
use rayon::prelude::*;

use crate::cluster::{self, NONE, Persons};
use crate::input::{ExtractInput, token_at};
use crate::output::Tally;
use crate::quality::{SpineTruth, no_record_id_note};
use crate::spill::{SpillRow, SpillWriter, read_by_key};
use crate::tok::{Tok, TokMap};
use crate::{LinkConfig, LinkError, identity, spark};

/// What reading the spine's tokens produced.
pub(crate) struct SpinePass {
    /// `anchors[k][r]`: the first spine record with record r's k-token ([`NONE`] if null).
    pub anchors: Vec<Vec<u32>>,
    /// Each spine record's fingerprint.
    pub fingerprints: Vec<[u8; 32]>,
    /// In memory: per key, token → anchor. Empty when spilling.
    pub maps: Vec<TokMap<u32>>,
    /// When spilling: the spine's partition files.
    pub files: Vec<PathBuf>,
    pub records: usize,
    pub without_tokens: u64,
    /// For each key, the spine records holding a token for it.
    pub with_token: Vec<u64>,
}

/// Token → smallest record index, over `(token, record)` rows.
///
/// ```sql
/// SELECT token, MIN(record) AS anchor FROM rows GROUP BY token
/// ```
pub(crate) fn anchor_map(rows: &[(Tok, u32)]) -> TokMap<u32> {
    let mut map = TokMap::with_capacity_and_hasher(rows.len(), std::hash::BuildHasherDefault::default());
    for &(tok, r) in rows {
        let anchor = map.entry(tok).or_insert(r);
        *anchor = (*anchor).min(r);
    }
    map
}

/// Turns token → anchor into token → person ([`NONE`] when the token is ambiguous).
pub(crate) fn into_person_map(map: &mut TokMap<u32>, ambiguous: &[bool], person_of: &[u32]) {
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
pub(crate) fn read_spine(
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
    let mut with_token = vec![0; keys];
    let mut start = 0_usize;
    progress.start(&format!("link: reading spine {}", spine.name), Some(spine.rows));
    // Only the token columns: the keep columns are decoded when `linked/` is written.
    let columns = spine.token_cols();
    for batch in spine.batches_of(&columns)? {
        let batch = batch?;
        let rows = batch.num_rows();
        let cols = spine.token_columns_of(&batch, &columns);
        for (count, col) in with_token.iter_mut().zip(&cols) {
            *count += col.map_or(0, |c| (c.len() - c.null_count()) as u64);
        }
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
        with_token,
    })
}

/// Person ids from each person's smallest record fingerprint; the fingerprints are not needed
/// after this and are dropped.
pub(crate) fn person_ids_of(
    hasher: &TokenHasher,
    pass: &mut SpinePass,
    persons: &Persons,
) -> Vec<identity::PersonId> {
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

/// The ground truth of the spine's persons, when the spine's records all carry their record ids;
/// otherwise a note saying why there is none.
pub(crate) fn spine_truth_of(
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
pub(crate) fn spine_persons(
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
