//! Decisions from the scored candidate pairs: each record's person, and the spine's persons.
//!
//! A record of another extract is compared with every spine record it shares a blocking key
//! with; a person's score is the best weight of its spine records. The record links to the best
//! person when that person's match probability is at least the threshold, unless the second
//! best person's weight is within [`AMBIGUITY_BITS`] of the best: then it is ambiguous and stays
//! unlinked (as in the cascade, weaker evidence is not allowed to break a tie).
//!
//! A record's match probability is the record-level posterior of [`record_probability`]: a
//! record has at most one person, so its candidates compete with each other and with the chance
//! that its person is not on the spine at all.
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

/// The share of the records whose person is on the spine that blocking is taken to miss (their
/// person is among no candidate): it keeps a record's probability below one when its person
/// may be elsewhere.
const OUTSIDE_BLOCKING: f64 = 0.05;

/// The chance that a record's person is on the spine but among none of its candidates, or not on
/// the spine at all, given an input's pair prior (matching pairs over all record × spine record
/// pairs) and the spine's number of persons: 1 − π·(1 − [`OUTSIDE_BLOCKING`]), where π = prior ×
/// persons estimates the share of the input's records whose person is on the spine (the matching
/// pairs are prior × rows × spine records, and such a record matches the records of one person:
/// spine records over persons of them).
pub(crate) fn unmatched_odds(prior: f64, persons: usize) -> f64 {
    let on_spine = (prior * persons as f64).clamp(0.0, 1.0);
    1.0 - on_spine * (1.0 - OUTSIDE_BLOCKING)
}

/// The record-level probability that a record's person is the candidate person of weight `best`,
/// against the other candidate persons' best weights `others` and `unmatched` (see
/// [`unmatched_odds`]): with a_k = 2^weight (the pair's prior odds times its Bayes factor), a_best
/// / (unmatched + Σ a_k). It is the pair's probability, 1 / (1 + 2^−weight), when `unmatched` is
/// one and there is no other candidate; it is lower with close competitors, and higher when
/// most of the input's records have a person on the spine.
pub(crate) fn record_probability(best: f64, others: impl Iterator<Item = f64>, unmatched: f64) -> f64 {
    let rest: f64 = others.map(|w| (w - best).exp2()).sum();
    1.0 / (1.0 + unmatched * (-best).exp2() + rest)
}

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

/// The best weight of each person of `scored` other than person `best` (sorts `scored` by
/// person).
fn other_persons(scored: &mut [(f64, u32, u8, Pattern)], best: u32) -> impl Iterator<Item = f64> + '_ {
    scored.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)));
    scored
        .chunk_by(|a, b| a.1 == b.1)
        .filter(move |group| group[0].1 != best)
        .map(|group| group[0].0)
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
    unmatched: f64,
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
            let mut scored: Vec<(f64, u32, u8, Pattern)> = group
                .iter()
                .zip(of_group)
                .map(|(pair, &(pattern, w))| (w, person_of[pair.right as usize], pair.rule, pattern))
                .collect();
            let pair_weights = scored.iter().map(|s| s.0).collect();
            let ((w, person, rule, pattern), second) = best_two(&scored).expect("a group is never empty");
            let p = record_probability(w, other_persons(&mut scored, person), unmatched);
            // Ambiguous: the best person would link if it were the only candidate, but another
            // is within AMBIGUITY_BITS of it (the record-level probability of the best is then
            // at most two thirds).
            let alone = record_probability(w, std::iter::empty(), unmatched);
            let outcome = if alone >= threshold && second >= w - AMBIGUITY_BITS {
                Outcome {
                    key: rule,
                    person: NONE,
                }
            } else if p < threshold {
                Outcome::UNDECIDED
            } else {
                Outcome { key: rule, person }
            };
            debug_assert!(outcome.key != NO_HIT || outcome.person == NONE);
            let decision = Decision {
                outcome,
                probability: p,
                pattern,
            };
            (left, decision, pair_weights)
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
