//! The Fellegi–Sunter model: u from random spine pairs, m trained by EM rule by rule on the
//! candidate pairs' level patterns, the prior the scores imply, and the term-frequency
//! adjustment of exact agreement.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use linklab_tokens::FieldKind;
use rayon::prelude::*;

use super::blocking::TRAINING_RULES;
use super::fields::{CmpData, CompareField, Level, MISSING_LEVEL, MISSING_TOKEN, compare};

/// Random spine pairs sampled for u (all pairs when there are fewer).
pub(crate) const U_PAIRS: u64 = 1_000_000;
/// The seed of the u sample.
const SEED: u64 = 0x6c69_6e6b_6c61_6221;
/// The most EM iterations.
pub(crate) const MAX_ITERATIONS: u32 = 100;
/// EM stops when no parameter moves by more than this.
const TOLERANCE: f64 = 1e-9;
/// The weight, in pairs, of the prior m of [`prior_m`] that EM's m is smoothed towards.
const PRIOR_PAIRS: f64 = 10.0;
/// Probabilities are kept within [FLOOR, 1 − FLOOR] so that every weight is finite.
const FLOOR: f64 = 1e-6;

/// A level pattern: 4 bits per field, field 0 lowest; [`MISSING_LEVEL`] for missing.
pub(crate) type Pattern = u64;

/// Candidate pairs by (the first blocking rule that found them, a bit per rule that found them
/// as [`super::blocking::Pair::rules`], level pattern).
pub(crate) type Counts = BTreeMap<(u8, u16, Pattern), u64>;

/// The level of field `f` in a pattern.
pub(crate) fn level_of(pattern: Pattern, f: usize) -> u8 {
    ((pattern >> (4 * f)) & 0xF) as u8
}

/// A seeded generator (SplitMix64): the same sample on every run and platform.
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (n ≥ 1).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The level pattern of a pair.
pub(crate) fn pattern(
    fields: &[CompareField],
    left: &CmpData,
    a: usize,
    right: &CmpData,
    b: usize,
) -> Pattern {
    fields.iter().enumerate().fold(0, |acc, (f, field)| {
        acc | (Pattern::from(compare(field, f, left, a, right, b)) << (4 * f))
    })
}

/// How many spine records hold each token within each group (see [`tf_bits`]); the default
/// hasher, as a pass-through one would hash a pair by its second half alone.
type TokenCounts = HashMap<(u64, u64), u32>;

/// What every model of a run shares: u, estimated on the spine, and the spine tokens'
/// frequencies for the term-frequency adjustment. Per spine record and field (record by record,
/// as the tokens are laid out) it holds −log2 of the share of the spine records holding a token
/// that hold this record's (0 when the record has none), so that one array serves every model:
/// a model adds its own log2 m of exact agreement at scoring time (8 bytes a field and spine
/// record once, not once per model).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Background {
    pub fields: Vec<CompareField>,
    /// Per field and level.
    pub u: Vec<Vec<f64>>,
    pub random_pairs: u64,
    /// Per spine record and field: −log2 u_tf.
    tf: Arc<Vec<f64>>,
}

impl Background {
    /// u from random spine pairs, and the spine's token frequencies.
    pub(crate) fn estimate(fields: &[CompareField], spine: &CmpData) -> Self {
        let (u, random_pairs) = estimate_u(fields, spine);
        Self {
            fields: fields.to_vec(),
            u,
            random_pairs,
            tf: Arc::new(tf_of(fields, spine, spine.records, 0..spine.records)),
        }
    }

    /// The spine's −log2 u_tf followed by those of the records of `data` after its first
    /// `spine` (the spine's own: the others are scored as if they were spine records after them,
    /// by the spine's token frequencies).
    pub(crate) fn extended_tf(&self, data: &CmpData, spine: usize) -> Arc<Vec<f64>> {
        let mut tf = Vec::with_capacity(data.records * self.fields.len());
        tf.extend_from_slice(&self.tf);
        tf.extend(tf_of(&self.fields, data, spine, spine..data.records));
        Arc::new(tf)
    }

    /// A background with a given u and no spine, for fitting simulated patterns.
    #[cfg(test)]
    pub(crate) fn from_u(fields: &[CompareField], u: Vec<Vec<f64>>) -> Self {
        Self {
            fields: fields.to_vec(),
            u,
            random_pairs: 0,
            tf: Arc::new(Vec::new()),
        }
    }
}

/// A fitted model: m, λ and the prior of one input's candidate pairs (or of all inputs' pooled),
/// over the shared [`Background`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    pub fields: Vec<CompareField>,
    /// Per field and level.
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
    /// The share of candidate pairs expected to match: the prior times every pair blocking
    /// chose them from, over the candidate pairs.
    pub lambda: f64,
    /// The probability that two records compared at random match ([`fit_prior`]). The prior
    /// of every score.
    pub prior: f64,
    pub iterations: u32,
    pub converged: bool,
    /// The (sampled) candidate pairs m and λ were fitted on.
    pub candidate_pairs: u64,
    /// Whether this is the model of every input's pairs pooled, taken by an input with fewer
    /// than [`MIN_FIT_PAIRS`] of its own.
    pub pooled: bool,
    /// Per field, the matches its m was trained on ([`train_m`]): the sum over the rules that
    /// trained it of their expected matches; `None` when no rule leaves the field free beside
    /// another (its m is then the joint fit's) and for a model given its m, except that an input
    /// whose own fit was rejected keeps its own fit's (they tell why).
    pub trained: Vec<Option<f64>>,
    /// Whether the input's own fit was rejected ([`Model::well_fitted`] failed): then m is the
    /// pooled model's, and λ and the prior the input's own, fitted with that m.
    pub own_fit_rejected: bool,
    /// Per field and level: log2(m/u).
    weights: Vec<Vec<f64>>,
    /// Per field: log2 of m of exact agreement, and the least weight exact agreement gets (the
    /// largest weight of the field's other levels, [`Level::Crossed`] aside).
    exact_bits: Vec<(f64, f64)>,
    /// The background's −log2 u_tf, per spine record and field.
    tf: Arc<Vec<f64>>,
}

/// Counts of each level per field, over pairs, into probabilities with add-one smoothing.
fn probabilities(counts: &[Vec<u64>]) -> Vec<Vec<f64>> {
    counts
        .iter()
        .map(|c| {
            let total: u64 = c.iter().sum();
            c.iter()
                .map(|&n| ((n as f64 + 1.0) / (total as f64 + c.len() as f64)).clamp(FLOOR, 1.0 - FLOOR))
                .collect()
        })
        .collect()
}

/// u: the level frequencies among random pairs of spine records (every pair when there are at
/// most [`U_PAIRS`], else that many drawn with a fixed seed).
pub(crate) fn estimate_u(fields: &[CompareField], spine: &CmpData) -> (Vec<Vec<f64>>, u64) {
    let n = spine.records as u64;
    let all = n * n.saturating_sub(1) / 2;
    // The pairs are drawn first, in order, and compared on the rayon pool: the counts are
    // sums, the same in any order.
    let pairs: Vec<(u32, u32)> = if all <= U_PAIRS {
        (0..spine.records as u32)
            .flat_map(|a| (0..a).map(move |b| (a, b)))
            .collect()
    } else {
        let mut rng = SplitMix::new(SEED);
        let mut pairs = Vec::with_capacity(U_PAIRS as usize);
        while pairs.len() < U_PAIRS as usize {
            let (a, b) = (rng.below(n), rng.below(n));
            if a != b {
                pairs.push((a as u32, b as u32));
            }
        }
        pairs
    };
    let empty = || -> Vec<Vec<u64>> { fields.iter().map(|f| vec![0; f.levels().len()]).collect() };
    let counts = pairs
        .par_chunks(4096)
        .fold(empty, |mut counts, part| {
            for &(a, b) in part {
                let p = pattern(fields, spine, a as usize, spine, b as usize);
                for (f, c) in counts.iter_mut().enumerate() {
                    let level = level_of(p, f);
                    if level != MISSING_LEVEL {
                        c[usize::from(level)] += 1;
                    }
                }
            }
            counts
        })
        .reduce(empty, |mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
            }
            a
        });
    (probabilities(&counts), pairs.len() as u64)
}

/// The prior m of a field with these levels: 0.85 exact, 0.05 disagree, 0.10 spread over the
/// levels between, except that [`Level::Crossed`] (two names transposed, rare) takes 0.01 of
/// its own and the whole is scaled back to one, so that adding it moves the other levels' prior
/// by 1% only.
fn prior_m(levels: &[Level]) -> Vec<f64> {
    let between = levels
        .len()
        .saturating_sub(2 + usize::from(levels.contains(&Level::Crossed)));
    let m: Vec<f64> = levels
        .iter()
        .map(|&level| match level {
            Level::Exact => 0.85,
            Level::Disagree if levels.len() == 2 => 0.15,
            Level::Disagree => 0.05,
            Level::Crossed => 0.01,
            _ => 0.10 / between as f64,
        })
        .collect();
    let total: f64 = m.iter().sum();
    m.iter().map(|m| m / total).collect()
}

/// The EM fit of m and λ over pattern counts, u held fixed. A rule shows only some levels of
/// the fields it joins on (`allowed[rule][field]`, a bit per level: an edit-1 rule never shows
/// disagreement): within its pairs both m and u of such a field are taken conditional on those
/// levels, and the M-step adds to the levels it could not show their expected share (EM for a
/// truncated distribution). Starts from the prior m of
/// [`prior_m`] and λ = 0.5; each M-step smooths m towards the prior m with the weight of
/// [`PRIOR_PAIRS`] pairs (a Dirichlet prior: it keeps a level that no candidate pair shows from
/// m = 0, and is negligible once there are many pairs); runs until no parameter moves by more
/// than 1e-9 or [`MAX_ITERATIONS`]. Missing levels take no part (their weight is 0).
///
/// With `fixed_m`, m is held at it and only λ is fitted.
pub(crate) fn fit_m(
    fields: &[CompareField],
    u: &[Vec<f64>],
    patterns: &Counts,
    allowed: &[Vec<u16>],
    fixed_m: Option<&[Vec<f64>]>,
) -> (Vec<Vec<f64>>, f64, u32, bool) {
    let priors: Vec<Vec<f64>> = fields.iter().map(|f| prior_m(&f.levels())).collect();
    let mut m = fixed_m.map_or_else(|| priors.clone(), <[_]>::to_vec);
    let mut lambda = 0.5;
    let total: f64 = patterns.values().map(|&c| c as f64).sum();
    if total == 0.0 {
        return (m, lambda, 0, true);
    }
    for iteration in 1..=MAX_ITERATIONS {
        let mut match_mass = 0.0;
        let mut level_mass: Vec<Vec<f64>> = m.iter().map(|l| vec![0.0; l.len()]).collect();
        for (&(rule, _, p), &count) in patterns {
            let allowed = &allowed[usize::from(rule)];
            let within = |probabilities: &[f64], f: usize| -> f64 {
                (0..probabilities.len())
                    .filter(|&k| allowed[f] >> k & 1 == 1)
                    .map(|k| probabilities[k])
                    .sum()
            };
            let (mut pm, mut pu) = (lambda, 1.0 - lambda);
            for f in 0..fields.len() {
                let level = level_of(p, f);
                if level != MISSING_LEVEL {
                    pm *= m[f][usize::from(level)] / within(&m[f], f);
                    pu *= u[f][usize::from(level)] / within(&u[f], f);
                }
            }
            let posterior = pm / (pm + pu);
            let mass = posterior * count as f64;
            match_mass += mass;
            if fixed_m.is_some() {
                continue;
            }
            for (f, levels) in level_mass.iter_mut().enumerate() {
                let level = level_of(p, f);
                if level == MISSING_LEVEL {
                    continue;
                }
                levels[usize::from(level)] += mass;
                // The levels the rule could not show: their expected share of this mass.
                let shown = within(&m[f], f);
                for (k, x) in levels.iter_mut().enumerate() {
                    if allowed[f] >> k & 1 == 0 {
                        *x += mass * m[f][k] / shown;
                    }
                }
            }
        }
        let mut moved: f64 = 0.0;
        let new_lambda = (match_mass / total).clamp(FLOOR, 1.0 - FLOOR);
        moved = moved.max((new_lambda - lambda).abs());
        lambda = new_lambda;
        if fixed_m.is_none() {
            for ((old, mass), prior) in m.iter_mut().zip(&level_mass).zip(&priors) {
                let sum: f64 = mass.iter().sum::<f64>() + PRIOR_PAIRS;
                for ((o, x), p) in old.iter_mut().zip(mass).zip(prior) {
                    let new = ((x + PRIOR_PAIRS * p) / sum).clamp(FLOOR, 1.0 - FLOOR);
                    moved = moved.max((new - *o).abs());
                    *o = new;
                }
            }
        }
        if moved <= TOLERANCE {
            return (m, lambda, iteration, true);
        }
    }
    (m, lambda, MAX_ITERATIONS, false)
}

/// The most iterations of [`fit_prior`].
const MAX_PRIOR_ITERATIONS: u32 = 1_000;

/// The prior, π: the probability that two records compared at random match, as the fixed point
/// of π = Σ over the candidate pairs of P(match | pattern; π) / `all_pairs`, where P(match |
/// pattern; π) = π·m / (π·m + (1 − π)·u) is the probability a pair is scored with (with m and u
/// of its pattern, fields independent, before the term-frequency adjustment) and pairs blocking
/// did not choose are taken for non-matches. So the prior is the one the scores themselves
/// imply: the expected matches among the candidate pairs, over every pair. It starts from every
/// candidate pair a match and falls to the largest fixed point; it stops when π moves by less
/// than 1e-12 of itself, or after [`MAX_PRIOR_ITERATIONS`]. Returns π, the iterations and
/// whether it converged.
///
/// EM's λ, the share of matches among the candidate pairs, gave this prior before; but with the
/// share of matches so different from rule to rule one λ cannot fit it (see [`train_m`]), and a
/// prior it gave at 1,000,000 spine records was 33 times the true one.
fn fit_prior(
    fields: &[CompareField],
    (m, u): (&[Vec<f64>], &[Vec<f64>]),
    patterns: &Counts,
    all_pairs: f64,
) -> (f64, u32, bool) {
    // Per pattern: m and u of its levels, and its pairs.
    let mut by_pattern: BTreeMap<Pattern, u64> = BTreeMap::new();
    for (&(_, _, p), &n) in patterns {
        *by_pattern.entry(p).or_insert(0) += n;
    }
    let terms: Vec<(f64, f64, f64)> = by_pattern
        .into_iter()
        .map(|(p, n)| {
            let (mut pm, mut pu) = (1.0, 1.0);
            for f in 0..fields.len() {
                let level = level_of(p, f);
                if level != MISSING_LEVEL {
                    pm *= m[f][usize::from(level)];
                    pu *= u[f][usize::from(level)];
                }
            }
            (pm, pu, n as f64)
        })
        .collect();
    let clamp = |x: f64| x.clamp(FLOOR * FLOOR, 1.0 - FLOOR);
    let mut prior = clamp(terms.iter().map(|t| t.2).sum::<f64>() / all_pairs);
    for iteration in 1..=MAX_PRIOR_ITERATIONS {
        let matches: f64 = terms
            .iter()
            .map(|&(pm, pu, n)| n * prior * pm / (prior * pm + (1.0 - prior) * pu))
            .sum();
        let next = clamp(matches / all_pairs);
        let moved = (next - prior).abs();
        prior = next;
        if moved <= 1e-12 * prior {
            return (prior, iteration, true);
        }
    }
    (prior, MAX_PRIOR_ITERATIONS, false)
}

/// The fewest matches, summed over the rules that trained it, that a field's m may be trained on
/// for an input to keep its own model (see [`Model::well_fitted`]).
pub(crate) const MIN_TRAINING_MATCHES: f64 = 200.0;

/// m trained rule by rule, as Splink trains it: for each of the first [`TRAINING_RULES`] rules
/// that leaves at least two fields free (a field it does not join on: every level can show),
/// EM over every pair the rule found (not only those no earlier rule found) with a λ of its own,
/// over its free fields only, u held fixed. A rule's pairs are selected by agreement on its own
/// fields, so they tell nothing about those fields' m; and the share of matches differs from
/// rule to rule (most pairs sharing a reference number match; few sharing only a date of birth
/// and a forename's soundex do), which one λ over every rule's pairs cannot fit: at 10,000,000
/// records against a spine of 1,000,000 that joint fit took pairs agreeing on surname, date of
/// birth and sex by chance for matches, with m of a disagreeing NI number 0.39.
///
/// A rule's fit whose matches do not agree exactly on each free field at least as often as at
/// any other level (postcodes aside) is dropped. A field's m is the mean of its rules' fits,
/// each weighed by its expected matches (λ × its informative pairs) times the odds λ / (1 − λ):
/// a rule whose pairs nearly all match (a shared reference number) outweighs one where matches
/// are a minority (pairs sharing a forename and surname, where a date of birth that disagrees is
/// too often a namesake's for the rule's EM to tell; with a weight of expected matches alone, m
/// of a disagreeing date came out 0.16 at 100,000 people with heavy noise). A field no rule trains
/// takes the joint fit's m ([`fit_m`] over every rule's pairs, each field truncated to the
/// levels its rule can show). Returns m and, per field, the matches it was trained on (see
/// [`Model::trained`]).
fn train_m(
    fields: &[CompareField],
    u: &[Vec<f64>],
    patterns: &Counts,
    allowed: &[Vec<u16>],
) -> (Vec<Vec<f64>>, Vec<Option<f64>>) {
    let full: Vec<u16> = fields.iter().map(|f| (1 << f.levels().len()) - 1).collect();
    let mut sums: Vec<Vec<f64>> = full.iter().map(|_| Vec::new()).collect();
    let mut trained: Vec<Option<f64>> = vec![None; fields.len()];
    for (r, allowed) in allowed.iter().enumerate().take(usize::from(TRAINING_RULES)) {
        let free: Vec<usize> = (0..fields.len())
            .filter(|&f| allowed[f] & full[f] == full[f])
            .collect();
        if free.len() < 2 {
            continue;
        }
        // Every pair the rule found, its non-free fields read as missing (they take no part).
        let mut projected = Counts::new();
        for (&(_, bits, p), &n) in patterns {
            if bits >> r & 1 == 0 {
                continue;
            }
            let q = (0..fields.len()).fold(0, |q, f| {
                let level = if free.contains(&f) {
                    level_of(p, f)
                } else {
                    MISSING_LEVEL
                };
                q | (Pattern::from(level) << (4 * f))
            });
            if free.iter().any(|&f| level_of(q, f) != MISSING_LEVEL) {
                *projected.entry((0, 1, q)).or_insert(0) += n;
            }
        }
        for &f in &free {
            trained[f].get_or_insert(0.0);
        }
        if projected.is_empty() {
            continue;
        }
        let (m, lambda, _, _) = fit_m(fields, u, &projected, std::slice::from_ref(&full), None);
        if !free.iter().all(|&f| exact_is_likeliest(&fields[f], &m[f])) {
            continue;
        }
        let matches = lambda * projected.values().sum::<u64>() as f64;
        let weight = matches * lambda / (1.0 - lambda);
        for &f in &free {
            if sums[f].is_empty() {
                sums[f] = vec![0.0; m[f].len() + 1];
            }
            for (sum, m) in sums[f].iter_mut().zip(&m[f]) {
                *sum += weight * m;
            }
            sums[f][m[f].len()] += weight;
            *trained[f].get_or_insert(0.0) += matches;
        }
    }
    let trained_m: Vec<Option<Vec<f64>>> = sums
        .iter()
        .map(|sums| match sums.split_last() {
            Some((&weight, sums)) if weight > 0.0 => Some(sums.iter().map(|sum| sum / weight).collect()),
            _ => None,
        })
        .collect();
    // The joint fit only for the fields no rule trained.
    let joint = trained_m
        .iter()
        .any(Option::is_none)
        .then(|| fit_m(fields, u, patterns, allowed, None).0);
    let m = trained_m
        .into_iter()
        .enumerate()
        .map(|(f, m)| {
            m.unwrap_or_else(|| joint.as_ref().expect("fitted when a field was not trained")[f].clone())
        })
        .collect();
    (m, trained)
}

/// Whether matches agree exactly on `field` at least as often as at any other level (`m` its
/// m), as in any linkage data; always for a postcode (people move).
fn exact_is_likeliest(field: &CompareField, m: &[f64]) -> bool {
    field.kind == FieldKind::Postcode || m[1..].iter().all(|&x| x <= m[0])
}

impl Model {
    /// Fits the model on the candidate pairs' patterns, over the background's u: m trained rule
    /// by rule ([`train_m`]), then the prior with that m ([`fit_prior`]). `all_pairs` is
    /// the number of pairs blocking chose those candidates from. With `fixed_m`, m is held at
    /// it and only the prior is found.
    pub(crate) fn fit(
        background: &Background,
        patterns: &Counts,
        allowed: &[Vec<u16>],
        all_pairs: f64,
        fixed_m: Option<&[Vec<f64>]>,
    ) -> Self {
        let u = &background.u;
        let fields = &background.fields;
        let (m, trained) = match fixed_m {
            Some(m) => (m.to_vec(), vec![None; fields.len()]),
            None => train_m(fields, u, patterns, allowed),
        };
        let candidate_pairs: u64 = patterns.values().sum();
        let (prior, iterations, converged) = fit_prior(fields, (&m, u), patterns, all_pairs.max(1.0));
        let lambda = (prior * all_pairs.max(1.0) / (candidate_pairs.max(1) as f64)).min(1.0);
        let mut weights: Vec<Vec<f64>> = m
            .iter()
            .zip(u)
            .map(|(m, u)| m.iter().zip(u).map(|(m, u)| (m / u).log2()).collect())
            .collect();
        let crossed: Vec<Option<usize>> = background
            .fields
            .iter()
            .map(|field| field.levels().iter().position(|&l| l == Level::Crossed))
            .collect();
        let exact_bits = m
            .iter()
            .zip(&weights)
            .zip(&crossed)
            .map(|((m, w), crossed)| {
                let others = (1..w.len()).filter(|&l| Some(l) != *crossed).map(|l| w[l]);
                (m[0].log2(), others.fold(f64::NEG_INFINITY, f64::max))
            })
            .collect();
        // A forename and surname written the other way round are two names that agree: each
        // weighs what exact agreement weighs at the field's u. Its own log2(m/u) would not do:
        // a non-match is as often transposed as a match, so the level's rarity among random
        // pairs (its u) is no evidence, and the two names' weights would count it twice.
        for (weights, crossed) in weights.iter_mut().zip(&crossed) {
            if let Some(level) = *crossed {
                weights[level] = weights[0];
            }
        }
        Self {
            weights,
            exact_bits,
            tf: Arc::clone(&background.tf),
            fields: background.fields.clone(),
            m,
            u: u.clone(),
            lambda,
            prior,
            iterations,
            converged,
            candidate_pairs,
            pooled: false,
            own_fit_rejected: false,
            trained,
        }
    }

    /// Whether an input may keep this fit: its matches agree exactly most often
    /// ([`Self::exact_is_likeliest`]), and every field that a rule trains was trained on at least
    /// [`MIN_TRAINING_MATCHES`] matches (a spine with few records of one person, among many
    /// records, has too few to train on).
    pub(crate) fn well_fitted(&self) -> bool {
        self.exact_is_likeliest()
            && self
                .trained
                .iter()
                .flatten()
                .all(|&matches| matches >= MIN_TRAINING_MATCHES)
    }

    /// Whether matches agree exactly on every field at least as often as at any other level, as
    /// in any linkage data (postcodes aside: people move). EM on a sample where matches are rare
    /// can fit a cluster of non-matches instead: a spine of 2,000,000 records, sampled one in 18,
    /// gave "matches" that agreed on the date of birth within one edit and disagreed on every
    /// name.
    pub(crate) fn exact_is_likeliest(&self) -> bool {
        self.fields
            .iter()
            .zip(&self.m)
            .all(|(field, m)| exact_is_likeliest(field, m))
    }

    /// The prior weight, log2(prior / (1 − prior)).
    pub(crate) fn prior_weight(&self) -> f64 {
        (self.prior / (1.0 - self.prior)).log2()
    }

    /// The weight log2(m/u) of level `level` of field `f`.
    pub(crate) fn level_weight(&self, f: usize, level: usize) -> f64 {
        self.weights[f][level]
    }

    /// A pair's pattern and match weight: the prior plus, per field, log2(m/u) of its level (0
    /// when missing). For exact agreement, u is the frequency of the agreed token among the
    /// spine records that hold one instead of the field's u (the term-frequency adjustment: a
    /// rare value weighs more, a common one less), but exact agreement never weighs less than
    /// the field's other levels do (a common surname agreeing exactly is not weaker evidence
    /// than the same surname with a typo). `spine` is the spine the model was fitted on and `b`
    /// one of its records.
    pub(crate) fn score(&self, left: &CmpData, a: usize, spine: &CmpData, b: usize) -> (Pattern, f64) {
        let p = pattern(&self.fields, left, a, spine, b);
        let mut w = self.prior_weight();
        for (f, weights) in self.weights.iter().enumerate() {
            let level = level_of(p, f);
            if level == MISSING_LEVEL {
                continue;
            }
            if level == 0 {
                w += self.exact_weight(f, b);
            } else {
                w += weights[usize::from(level)];
            }
        }
        (p, w)
    }

    /// The weight of exact agreement on field `f` with spine record `b`'s token (see
    /// [`Self::score`]).
    pub(crate) fn exact_weight(&self, f: usize, b: usize) -> f64 {
        let (m_bits, least) = self.exact_bits[f];
        (m_bits + self.tf[b * self.fields.len() + f]).max(least)
    }

    /// The same model over other records' −log2 u_tf (see [`Background::extended_tf`]).
    pub(crate) fn with_tf(&self, tf: Arc<Vec<f64>>) -> Self {
        Self { tf, ..self.clone() }
    }

    /// The pattern as letters, one per field (`E1PISYDX`, `-` for missing).
    pub(crate) fn pattern_code(&self, p: Pattern) -> String {
        self.fields
            .iter()
            .enumerate()
            .map(|(f, field)| {
                let level = level_of(p, f);
                if level == MISSING_LEVEL {
                    '-'
                } else {
                    field.levels()[usize::from(level)].code()
                }
            })
            .collect()
    }
}

/// Per record of `of` and field (record by record), −log2 u_tf of its token by the spine's
/// frequencies (see [`tf_bits`]); a forename's frequency is taken among the spine records of the
/// record's sex, when sex is compared (names are given by sex, so agreeing on both is rarer at
/// random than the product of the two shares). The spine is the first `spine` records of `data`,
/// and the records scored are `of`.
fn tf_of(fields: &[CompareField], data: &CmpData, spine: usize, of: Range<usize>) -> Vec<f64> {
    let sex = fields.iter().position(|field| field.kind == FieldKind::Sex);
    let by_field: Vec<Vec<f64>> = fields
        .par_iter()
        .enumerate()
        .map(|(f, field)| {
            let within = sex.filter(|_| field.kind == FieldKind::Forename);
            tf_bits(data, spine, (f, within), of.clone())
        })
        .collect();
    (0..of.len())
        .flat_map(|r| by_field.iter().map(move |bits| bits[r]))
        .collect()
}

/// Per record `of` of `data`, −log2 u_tf of its token of field `f`, where u_tf is the share of
/// the spine records (the first `spine` of `data`) holding a token (of those in the record's
/// group: holding its token of field `within`, when it has one) that hold this one; 0 for a
/// record without the token.
fn tf_bits(data: &CmpData, spine: usize, (f, within): (usize, Option<usize>), of: Range<usize>) -> Vec<f64> {
    // Counts by (token, the record's token of field `within`) and by (token, MISSING_TOKEN) for
    // every record, and the records holding a token in each group.
    let group = |r: usize| within.map_or(MISSING_TOKEN, |g| data.scalar(g, r, 0));
    let mut counts = TokenCounts::default();
    let mut held: HashMap<u64, u64> = HashMap::new();
    for r in 0..spine {
        let t = data.scalar(f, r, 0);
        if t != MISSING_TOKEN {
            let g = group(r);
            let mut add = |g: u64| {
                *counts.entry((t, g)).or_insert(0) += 1;
                *held.entry(g).or_insert(0) += 1;
            };
            add(MISSING_TOKEN);
            if g != MISSING_TOKEN {
                add(g);
            }
        }
    }
    of.map(|r| {
        let t = data.scalar(f, r, 0);
        if t == MISSING_TOKEN {
            return 0.0;
        }
        let mut g = group(r);
        if !held.contains_key(&g) {
            g = MISSING_TOKEN;
        }
        let count = counts.get(&(t, g)).copied().unwrap_or(1).max(1);
        -(f64::from(count) / held.get(&g).copied().unwrap_or(1).max(1) as f64)
            .clamp(FLOOR, 1.0 - FLOOR)
            .log2()
    })
    .collect()
}

/// The fewest (sampled) candidate pairs an input's own model is fitted on.
pub(crate) const MIN_FIT_PAIRS: u64 = 1_000;

/// One model per input: m trained on the input's own candidate pairs' patterns
/// (`per_input[i].0`, the spine's with itself for the spine) and the prior from them and the
/// pairs blocking chose them from (`per_input[i].1`), all over the shared background's u.
///
/// The pooled model is fitted on the patterns of every input pooled, except those whose own fit
/// fails [`Model::well_fitted`], its prior from their pairs. An input with fewer than
/// [`MIN_FIT_PAIRS`] candidate pairs takes it. An input whose own fit fails takes its m (if the
/// pooled fit passes) and finds its own prior with that m.
pub(crate) fn fit_per_input(
    background: &Background,
    per_input: &[(Counts, f64)],
    allowed: &[Vec<u16>],
) -> Vec<Model> {
    let own: Vec<Option<Model>> = per_input
        .iter()
        .map(|(counts, all_pairs)| {
            (counts.values().sum::<u64>() >= MIN_FIT_PAIRS)
                .then(|| Model::fit(background, counts, allowed, *all_pairs, None))
        })
        .collect();
    let rejected = |i: usize| own[i].as_ref().is_some_and(|m| !m.well_fitted());
    let mut pooled: Option<Model> = None;
    let mut pooled_model = || {
        pooled
            .get_or_insert_with(|| {
                let kept = || (0..per_input.len()).filter(|&i| !rejected(i));
                let mut all = Counts::new();
                for i in kept() {
                    for (&key, &n) in &per_input[i].0 {
                        *all.entry(key).or_insert(0) += n;
                    }
                }
                let pairs = kept().map(|i| per_input[i].1).sum();
                Model {
                    pooled: true,
                    ..Model::fit(background, &all, allowed, pairs, None)
                }
            })
            .clone()
    };
    (0..per_input.len())
        .map(|i| {
            let Some(own) = &own[i] else {
                return pooled_model();
            };
            if !rejected(i) {
                return own.clone();
            }
            let pooled = pooled_model();
            if !pooled.well_fitted() {
                return own.clone();
            }
            let (counts, all_pairs) = &per_input[i];
            Model {
                own_fit_rejected: true,
                trained: own.trained.clone(),
                ..Model::fit(background, counts, allowed, *all_pairs, Some(&pooled.m))
            }
        })
        .collect()
}

/// The match probability of a weight.
pub(crate) fn probability(weight: f64) -> f64 {
    1.0 / (1.0 + (-weight).exp2())
}

/// The report's weight histogram: weights are binned within these edges.
pub(crate) const LOWEST: i32 = -40;
pub(crate) const HIGHEST: i32 = 60;

/// The number of bins.
pub(crate) const BINS: usize = (HIGHEST - LOWEST + 1) as usize;

/// Counts a weight into its bin.
pub(crate) fn count_weight(counts: &mut [u64], w: f64) {
    let bin = (w.floor() as i64).clamp(i64::from(LOWEST), i64::from(HIGHEST));
    counts[(bin - i64::from(LOWEST)) as usize] += 1;
}
