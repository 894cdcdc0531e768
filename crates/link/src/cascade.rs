//! Step 2: the cascade for every other extract, in memory or by partitions.

use std::path::Path;

use arrow::array::{FixedSizeBinaryArray, RecordBatch};
use linklab_store::Progress;
use rayon::prelude::*;

use crate::LinkError;
use crate::input::{ExtractInput, token_at};
use crate::output::Outcome;
use crate::spill::{SpillRow, SpillWriter, for_each_chunk, read_by_key};
use crate::spine::{SpinePass, anchor_map, into_person_map};
use crate::tok::{Tok, TokMap};

/// The outcome of each row of a batch, probing the spine's in-memory anchor maps key by key
/// (token → anchor, the first spine record with the token). The person of a hit is its
/// anchor's, or [`NONE`](crate::cluster::NONE) when the anchor's token is ambiguous: looked up
/// for the hits alone, rather than for every token of the maps beforehand.
///
/// ```sql
/// -- for each record, the first key (in cascade order) whose token some person holds
/// SELECT record, key, person FROM hits QUALIFY ROW_NUMBER() OVER (PARTITION BY record ORDER BY key) = 1
/// ```
pub(crate) fn batch_outcomes(
    cols: &[Option<&FixedSizeBinaryArray>],
    anchors: &[TokMap<u32>],
    (ambiguous, person_of): (&[Vec<bool>], &[u32]),
    rows: usize,
) -> Vec<Outcome> {
    (0..rows)
        .into_par_iter()
        .with_min_len(4096)
        .map(|i| {
            for (k, (col, map)) in cols.iter().zip(anchors).enumerate() {
                if let Some(t) = token_at(*col, i)
                    && let Some(&anchor) = map.get(&Tok::from_slice(t))
                {
                    let person = if ambiguous[k][anchor as usize] {
                        crate::cluster::NONE
                    } else {
                        person_of[anchor as usize]
                    };
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
pub(crate) fn link_partitioned(
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
