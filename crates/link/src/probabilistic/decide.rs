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
use super::fields::{CmpData, MISSING_LEVEL};
use super::model::{Model, Pattern, count_weight, level_of, probability};
use super::prune::Prune;
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

/// A record's candidate pair: weight, person, rule and pattern.
type Candidate = (f64, u32, u8, Pattern);

/// A record whose two best persons would each link it if they were its only candidate: its
/// decision depends on whether they are two persons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Contested {
    /// The record's number in its extract.
    pub record: u32,
    /// Its best and second-best persons.
    pub persons: (u32, u32),
    /// The second-best person's weight.
    pub weight: f64,
    /// Whether both would link it with a probability of at least [`BRIDGE_PROBABILITY`]: then
    /// the record is evidence that the two are one person.
    pub bridge: bool,
}

/// The least probability, each as its only candidate, with which a record's two best persons
/// must match it for the record to bridge them (see [`bridge_persons`]).
pub(crate) const BRIDGE_PROBABILITY: f64 = 0.999;

/// The least weight, in bits, that each of a bridge's two persons must take from fields on
/// which the record agrees with it better than with the other (see [`own_bits`]).
pub(crate) const BRIDGE_OWN_BITS: f64 = 3.0;

/// The weight that pattern `a` takes from the fields where its level weighs more than `b`'s
/// (a missing level weighs nothing): what the record shares with `a`'s person and not with
/// `b`'s. A record that agrees with two persons on the same fields (twins, and a record with
/// a forename's initial only) has none of it for one of them, and says nothing about whether
/// they are one person; a record that agrees with one on a NI number the other lacks and with
/// the other on a surname the first does not have has it for both.
fn own_bits(model: &Model, a: Pattern, b: Pattern) -> f64 {
    own_bits_of(model.fields.len(), |f, level| model.level_weight(f, level), a, b)
}

/// [`own_bits`] over `fields` fields whose level weights `level_weight(field, level)` gives.
pub(crate) fn own_bits_of(
    fields: usize,
    level_weight: impl Fn(usize, usize) -> f64,
    a: Pattern,
    b: Pattern,
) -> f64 {
    (0..fields)
        .map(|f| {
            let weight = |p: Pattern| {
                let level = level_of(p, f);
                if level == MISSING_LEVEL {
                    0.0
                } else {
                    level_weight(f, usize::from(level))
                }
            };
            (weight(a) - weight(b)).max(0.0)
        })
        .sum()
}

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

/// The best person of one record: (weight, person, rule, pattern) of the best, and the weight,
/// person and pattern of the second best person (person [`NONE`] when there is none).
fn best_two(scored: &[Candidate]) -> Option<(Candidate, (f64, u32, Pattern))> {
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
        .map(|s| (s.0, s.1, s.3))
        .fold((f64::NEG_INFINITY, NONE, 0), |a, b| match b.0.total_cmp(&a.0) {
            std::cmp::Ordering::Greater => b,
            std::cmp::Ordering::Equal if b.1 < a.1 => b,
            _ => a,
        });
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
    contested: &mut Vec<Contested>,
    (prune, by_rule): (Option<&Prune<'_>>, &mut [u64]),
) {
    let computed = map_by_spine(pairs, |pair| {
        model.score(data, (pair.left - base) as usize, spine, pair.right as usize)
    });
    // The pairs of a bounded rule that cannot link are not candidates (see [`Prune`]).
    let (kept, computed): (Vec<Pair>, Vec<Scored>) = pairs
        .iter()
        .zip(computed)
        .filter(|(pair, (_, w))| !prune.is_some_and(|p| p.dropped(pair, *w)))
        .map(|(pair, scored)| (*pair, scored))
        .unzip();
    let pairs = &kept[..];
    for pair in pairs {
        by_rule[usize::from(pair.rule)] += 1;
    }
    let groups: Vec<(&[Pair], &[Scored])> = pairs
        .chunk_by(|a, b| a.left == b.left)
        .scan(0, |start, group| {
            let of_group = &computed[*start..*start + group.len()];
            *start += group.len();
            Some((group, of_group))
        })
        .collect();
    let decided: Vec<(u32, Decision, Vec<f64>, Option<Contested>)> = groups
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
            let ((w, person, rule, pattern), (second, second_person, second_pattern)) =
                best_two(&scored).expect("a group is never empty");
            let p = record_probability(w, other_persons(&mut scored, person), unmatched);
            // Ambiguous: the best person would link if it were the only candidate, but another
            // is within AMBIGUITY_BITS of it (the record-level probability of the best is then
            // at most two thirds).
            let alone = record_probability(w, std::iter::empty(), unmatched);
            let second_alone = record_probability(second, std::iter::empty(), unmatched);
            let contest = (second_alone >= threshold).then_some(Contested {
                record: left,
                persons: (person, second_person),
                weight: second,
                bridge: second_alone >= BRIDGE_PROBABILITY
                    && own_bits(model, pattern, second_pattern) >= BRIDGE_OWN_BITS
                    && own_bits(model, second_pattern, pattern) >= BRIDGE_OWN_BITS,
            });
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
            (left, decision, pair_weights, contest)
        })
        .collect();
    for (left, decision, pair_weights, contest) in decided {
        out[left as usize] = decision;
        contested.extend(contest);
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

/// Merges the clusters of each pair of records in turn, unless the merged cluster would exceed
/// `max_cluster_size` or `refuses` some record of one with some record of the other. Returns
/// the merges, those refused by `refuses` and those refused by the size.
fn merge_in_order(
    uf: &mut UnionFind,
    pairs: impl Iterator<Item = (u32, u32)>,
    max_cluster_size: usize,
    refuses: impl Fn(u32, u32) -> bool,
) -> (u64, u64, u64) {
    let (mut merges, mut refused_by_guard, mut refused_by_size) = (0, 0, 0);
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (a, b) in pairs {
        let (ra, rb) = (uf.find(a), uf.find(b));
        if ra == rb {
            continue;
        }
        if (uf.size[ra as usize] + uf.size[rb as usize]) as usize > max_cluster_size {
            refused_by_size += 1;
            continue;
        }
        uf.members(ra, &mut left);
        uf.members(rb, &mut right);
        if left.iter().any(|&x| right.iter().any(|&y| refuses(x, y))) {
            refused_by_guard += 1;
            continue;
        }
        uf.union(ra, rb);
        merges += 1;
    }
    (merges, refused_by_guard, refused_by_size)
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
    (counts.merges, counts.refused_by_guard, counts.refused_by_size) = merge_in_order(
        &mut uf,
        strong.iter().map(|&(_, a, b)| (a, b)),
        max_cluster_size,
        |x, y| probability(model.score(spine, x as usize, spine, y as usize).1) < 0.5,
    );
    let persons = cluster::number_persons(&mut uf, n, vec![0; keys], vec![0; keys], vec![0; keys]);
    (persons, counts)
}

/// What merging the spine's persons through bridging records counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BridgeMerges {
    /// Distinct pairs of persons bridged by some record.
    pub bridged_pairs: u64,
    pub merges: u64,
    pub refused_by_guard: u64,
    pub refused_by_size: u64,
}

/// Merges the spine's persons that records of other extracts bridge: a record whose two best
/// persons would each link it with a probability of at least [`BRIDGE_PROBABILITY`] (as its
/// only candidate) is evidence that they are one person, say a record that agrees with one
/// spine record on a NI number and with another on a new surname. The bridged pairs are taken
/// strongest first (the weaker person's weight, ties by person numbers) and merged unless the
/// merged cluster would exceed `max_cluster_size` or some record of one, compared with some
/// record of the other by the spine's `model`, has a Bayes factor below one (its fields speak
/// against a match: a different NI number, a distant date of birth). Returns the new persons,
/// numbered as always by their first spine record.
pub(crate) fn bridge_persons(
    model: &Model,
    spine: &CmpData,
    persons: &Persons,
    contested: &[Contested],
    max_cluster_size: usize,
) -> (Persons, BridgeMerges) {
    let mut bridges: Vec<(f64, u32, u32)> = contested
        .iter()
        .filter(|c| c.bridge)
        .map(|c| {
            (
                c.weight,
                c.persons.0.min(c.persons.1),
                c.persons.0.max(c.persons.1),
            )
        })
        .collect();
    bridges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut seen = std::collections::HashSet::new();
    bridges.retain(|b| seen.insert((b.1, b.2)));
    let n = spine.records;
    let mut uf = UnionFind::new(n);
    for r in 0..n as u32 {
        let first = persons.first[persons.person_of[r as usize] as usize];
        let (ra, rb) = (uf.find(first), uf.find(r));
        if ra != rb {
            uf.union(ra, rb);
        }
    }
    let mut counts = BridgeMerges {
        bridged_pairs: bridges.len() as u64,
        ..BridgeMerges::default()
    };
    let prior = model.prior_weight();
    (counts.merges, counts.refused_by_guard, counts.refused_by_size) = merge_in_order(
        &mut uf,
        bridges
            .iter()
            .map(|&(_, a, b)| (persons.first[a as usize], persons.first[b as usize])),
        max_cluster_size,
        |x, y| model.score(spine, x as usize, spine, y as usize).1 - prior < 0.0,
    );
    let merged = cluster::number_persons(
        &mut uf,
        n,
        persons.merges.clone(),
        persons.refused_guard.clone(),
        persons.refused_size.clone(),
    );
    (merged, counts)
}
