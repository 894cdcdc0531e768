//! Decisions from the scored candidate pairs: each record's person, and the spine's persons.
//!
//! A record of another extract is compared with every spine record it shares a blocking key
//! with; a person's score is the best weight of its spine records. The record links to the best
//! person when that person's match probability is at least the threshold, unless the second
//! best person's weight is within [`AMBIGUITY_BITS`] of the best: then it is ambiguous and stays
//! unlinked (as in the cascade, weaker evidence is not allowed to break a tie).
//!
//! The spine is deduplicated by the same scores: the spine pairs at or above the threshold are
//! taken strongest first (ties by record numbers) and their clusters merged, unless the merged
//! cluster would exceed `max_cluster_size`, or some record of one cluster, compared with some
//! record of the other, has a match probability below one half (the guard against chaining:
//! A~B and B~C do not make A and C one person when A and C disagree).

use rayon::prelude::*;

use super::blocking::{Pair, map_by_spine};
use super::fields::CmpData;
use super::model::{Model, Pattern, count_weight, probability};
use crate::cluster::{self, NONE, Persons, UnionFind};
use crate::output::{NO_HIT, Outcome};

/// A record is ambiguous when its second-best person's weight is within this many bits of the
/// best person's.
pub(crate) const AMBIGUITY_BITS: f64 = 1.0;

/// What was decided for one record: its outcome and the best pair's probability and pattern
/// (`NaN` and 0 when it had no candidate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    pub outcome: Outcome,
    pub probability: f64,
    pub pattern: Pattern,
}

impl Decision {
    pub(crate) const NONE: Self = Self {
        outcome: Outcome::UNDECIDED,
        probability: f64::NAN,
        pattern: 0,
    };
}

/// A pair's level pattern and match weight.
type Scored = (Pattern, f64);

/// The best person of one record: (weight, person, rule, pattern) of the best and the weight of
/// the second best person.
fn best_two(scored: &[(f64, u32, u8, Pattern)]) -> Option<((f64, u32, u8, Pattern), f64)> {
    let mut best: Option<(f64, u32, u8, Pattern)> = None;
    for &s in scored {
        if best.is_none_or(|b| match s.0.total_cmp(&b.0) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => (s.1, s.2) < (b.1, b.2),
            std::cmp::Ordering::Less => false,
        }) {
            best = Some(s);
        }
    }
    let best = best?;
    let second = scored
        .iter()
        .filter(|s| s.1 != best.1)
        .map(|s| s.0)
        .fold(f64::NEG_INFINITY, f64::max);
    Some((best, second))
}

/// Decides the records of a chunk from their candidate pairs (sorted by record), writing into
/// `out` (indexed by record number) and counting every pair's weight into the bins `weights`.
#[allow(
    clippy::too_many_arguments,
    reason = "internal: the model, the chunk, the spine and the outputs it fills"
)]
pub(crate) fn decide_chunk(
    model: &Model,
    threshold: f64,
    data: &CmpData,
    base: u32,
    spine: &CmpData,
    person_of: &[u32],
    pairs: &[Pair],
    out: &mut [Decision],
    weights: &mut [u64],
) {
    let computed = map_by_spine(pairs, |pair| {
        model.score(data, (pair.left - base) as usize, spine, pair.right as usize)
    });
    let groups: Vec<(&[Pair], &[Scored])> = pairs
        .chunk_by(|a, b| a.left == b.left)
        .scan(0, |start, group| {
            let of_group = &computed[*start..*start + group.len()];
            *start += group.len();
            Some((group, of_group))
        })
        .collect();
    let decided: Vec<(u32, Decision, Vec<f64>)> = groups
        .par_iter()
        .with_min_len(256)
        .map(|&(group, of_group)| {
            let left = group[0].left;
            let scored: Vec<(f64, u32, u8, Pattern)> = group
                .iter()
                .zip(of_group)
                .map(|(pair, &(pattern, w))| (w, person_of[pair.right as usize], pair.rule, pattern))
                .collect();
            let ((w, person, rule, pattern), second) = best_two(&scored).expect("a group is never empty");
            let p = probability(w);
            let outcome = if p < threshold {
                Outcome::UNDECIDED
            } else if second >= w - AMBIGUITY_BITS {
                Outcome {
                    key: rule,
                    person: NONE,
                }
            } else {
                Outcome { key: rule, person }
            };
            debug_assert!(outcome.key != NO_HIT || outcome.person == NONE);
            let decision = Decision {
                outcome,
                probability: p,
                pattern,
            };
            (left, decision, scored.into_iter().map(|s| s.0).collect())
        })
        .collect();
    for (left, decision, pair_weights) in decided {
        out[left as usize] = decision;
        for w in pair_weights {
            count_weight(weights, w);
        }
    }
}

/// What deduplicating the spine counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpineMerges {
    pub pairs_above_threshold: u64,
    pub merges: u64,
    pub refused_by_guard: u64,
    pub refused_by_size: u64,
}

/// The spine's persons from its pairs at or above the threshold, `(weight, left, right)`.
pub(crate) fn spine_persons(
    model: &Model,
    spine: &CmpData,
    mut strong: Vec<(f64, u32, u32)>,
    max_cluster_size: usize,
    keys: usize,
) -> (Persons, SpineMerges) {
    strong.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let n = spine.records;
    let mut uf = UnionFind::new(n);
    let mut counts = SpineMerges {
        pairs_above_threshold: strong.len() as u64,
        ..SpineMerges::default()
    };
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for &(_, a, b) in &strong {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            continue;
        }
        if (uf.size[ra as usize] + uf.size[rb as usize]) as usize > max_cluster_size {
            counts.refused_by_size += 1;
            continue;
        }
        uf.members(ra, &mut left);
        uf.members(rb, &mut right);
        let chained = left.iter().any(|&x| {
            right
                .iter()
                .any(|&y| probability(model.score(spine, x as usize, spine, y as usize).1) < 0.5)
        });
        if chained {
            counts.refused_by_guard += 1;
            continue;
        }
        uf.union(ra, rb);
        counts.merges += 1;
    }
    let persons = cluster::number_persons(&mut uf, n, vec![0; keys], vec![0; keys], vec![0; keys]);
    (persons, counts)
}
