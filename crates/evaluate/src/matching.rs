//! Greedy nearest-neighbour matching on the logit of the propensity score, within a caliper.

use std::collections::BTreeSet;

/// The result of matching.
#[derive(Debug, Clone)]
pub(crate) struct Matching {
    /// Each matched treated row with its matched comparison rows (1 ..= ratio of them).
    pub sets: Vec<(usize, Vec<usize>)>,
    /// Per frame row: 1 for a matched treated person; for a comparison person the sum over the
    /// sets it belongs to of `1 / (comparisons in the set)`; 0 for everyone else.
    pub weight: Vec<f64>,
    /// Treated persons with no comparison within the caliper.
    pub dropped_by_caliper: usize,
    /// The caliper on the logit scale (caliper × pooled SD of the logit).
    pub width: f64,
}

impl Matching {
    /// Whether each comparison person is used exactly once with weight 1 (1:1 matching without
    /// replacement), so that the sets are independent pairs.
    pub fn is_paired(&self) -> bool {
        self.sets.iter().all(|(_, c)| c.len() == 1) && {
            let mut seen = BTreeSet::new();
            self.sets.iter().all(|(_, c)| seen.insert(c[0]))
        }
    }
}

impl Matching {
    /// The matched sample of one outcome: the sets whose treated person counts for it (`known`),
    /// with only the comparisons that count, sets left with no comparison dropped and the
    /// comparison weights recomputed. The matching itself when everyone in it counts.
    pub fn restricted(&self, known: &[bool]) -> std::borrow::Cow<'_, Matching> {
        let counts = |(t, c): &(usize, Vec<usize>)| known[*t] && c.iter().all(|&i| known[i]);
        if self.sets.iter().all(counts) {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut weight = vec![0.0; self.weight.len()];
        let mut sets = Vec::new();
        for (t, c) in &self.sets {
            let kept: Vec<usize> = c.iter().copied().filter(|&i| known[i]).collect();
            if !known[*t] || kept.is_empty() {
                continue;
            }
            weight[*t] = 1.0;
            for &i in &kept {
                weight[i] += 1.0 / kept.len() as f64;
            }
            sets.push((*t, kept));
        }
        std::borrow::Cow::Owned(Matching {
            sets,
            weight,
            dropped_by_caliper: self.dropped_by_caliper,
            width: self.width,
        })
    }
}

fn variance(values: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    let n = values.clone().count();
    if n < 2 {
        return None;
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    Some(values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64)
}

/// The caliper width on the logit scale: `caliper × sqrt((var_treated + var_untreated) / 2)`.
pub(crate) fn caliper_width(lp: &[f64], treated: &[bool], caliper: f64) -> f64 {
    let t = variance(lp.iter().zip(treated).filter(|(_, t)| **t).map(|(v, _)| *v)).unwrap_or(0.0);
    let c = variance(lp.iter().zip(treated).filter(|(_, t)| !**t).map(|(v, _)| *v)).unwrap_or(0.0);
    caliper * f64::midpoint(t, c).sqrt()
}

/// Distances to a treated person's logit that differ by at most `TIE_TOLERANCE × max(1, |logit|)`
/// are equal: the subtraction of two logits of that size is only exact to a few units of
/// rounding, so bitwise comparison would break a tie by rounding noise.
pub(crate) const TIE_TOLERANCE: f64 = 1e-12;

/// The comparison persons still available, as positions in the sorted order.
trait Pool {
    /// The largest available position below `pos`.
    fn below(&self, pos: usize) -> Option<usize>;
    /// The smallest available position at or above `pos` (and below the end).
    fn from(&self, pos: usize) -> Option<usize>;
}

/// Without replacement: the positions not yet used by anyone.
impl Pool for BTreeSet<usize> {
    fn below(&self, pos: usize) -> Option<usize> {
        self.range(..pos).next_back().copied()
    }
    fn from(&self, pos: usize) -> Option<usize> {
        self.range(pos..).next().copied()
    }
}

/// With replacement: every position but those this treated person already took.
struct AllBut<'a> {
    len: usize,
    taken: &'a [usize],
}

impl Pool for AllBut<'_> {
    fn below(&self, pos: usize) -> Option<usize> {
        (0..pos.min(self.len)).rev().find(|p| !self.taken.contains(p))
    }
    fn from(&self, pos: usize) -> Option<usize> {
        (pos..self.len).find(|p| !self.taken.contains(p))
    }
}

/// The available comparison nearest to `x` within `width` (positions into `control_lp`, sorted
/// ascending and, within equal values, by person id): among the candidates whose distance
/// equals the smallest within the tie tolerance (and lies within `width`, with the same
/// tolerance), the lowest person id. Within a run of equal values only the first available position can have the lowest id,
/// so the walk visits one position per distinct value.
fn nearest(pool: &impl Pool, control_lp: &[f64], control_ids: &[&str], x: f64, width: f64) -> Option<usize> {
    let pos = control_lp.partition_point(|&v| v < x);
    let left = pool.below(pos).map(|p| x - control_lp[p]);
    let right = pool.from(pos).map(|p| control_lp[p] - x);
    let smallest = match (left, right) {
        (Some(l), Some(r)) => l.min(r),
        (l, r) => l.or(r)?,
    };
    // The caliper is a distance too: a distance within the tolerance of it is within it. A
    // distance or width that is not a number matches nobody.
    let tolerance = TIE_TOLERANCE * x.abs().max(1.0);
    if smallest.is_nan() || width.is_nan() || smallest > width + tolerance {
        return None;
    }
    let bound = (smallest + tolerance).min(width + tolerance);
    let low = control_lp.partition_point(|&v| v < x - bound);
    let high = control_lp.partition_point(|&v| v <= x + bound);
    let mut best: Option<usize> = None;
    let mut next = pool.from(low);
    while let Some(q) = next.filter(|&q| q < high) {
        if best.is_none_or(|b| control_ids[q] < control_ids[b]) {
            best = Some(q);
        }
        next = pool.from(control_lp.partition_point(|&v| v <= control_lp[q]));
    }
    best
}

/// Matches treated rows to untreated rows on `lp` (the logit of the score).
///
/// Treated persons are taken in descending score, ties by person id. Without replacement the
/// matching runs in `ratio` rounds: in each round every still-matched treated person (in that
/// order) takes its nearest unused untreated person within `width`; a treated person with no
/// comparison in the first round is dropped by the caliper. With replacement each treated person
/// takes its `ratio` nearest untreated persons within `width`, who may be reused. Distance ties
/// (equal within [`TIE_TOLERANCE`] × max(1, |logit|)) go to the lowest person id, whichever
/// side of the treated person's score they lie on.
pub(crate) fn match_nearest(
    lp: &[f64],
    treated: &[bool],
    ids: &[String],
    width: f64,
    ratio: usize,
    replacement: bool,
) -> Matching {
    let n = lp.len();
    let mut controls: Vec<usize> = (0..n).filter(|&i| !treated[i]).collect();
    controls.sort_by(|&a, &b| lp[a].total_cmp(&lp[b]).then_with(|| ids[a].cmp(&ids[b])));
    let control_lp: Vec<f64> = controls.iter().map(|&i| lp[i]).collect();
    let control_ids: Vec<&str> = controls.iter().map(|&i| ids[i].as_str()).collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| treated[i]).collect();
    order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]).then_with(|| ids[a].cmp(&ids[b])));

    let mut picks: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
    let ratio = ratio.max(1);
    if replacement {
        for (slot, &t) in order.iter().enumerate() {
            let mut taken: Vec<usize> = Vec::with_capacity(ratio);
            while taken.len() < ratio {
                let pool = AllBut {
                    len: controls.len(),
                    taken: &taken,
                };
                let Some(p) = nearest(&pool, &control_lp, &control_ids, lp[t], width) else {
                    break;
                };
                taken.push(p);
            }
            picks[slot] = taken.iter().map(|&p| controls[p]).collect();
        }
    } else {
        let mut available: BTreeSet<usize> = (0..controls.len()).collect();
        let mut active: Vec<bool> = vec![true; order.len()];
        for _round in 0..ratio {
            for (slot, &t) in order.iter().enumerate() {
                if !active[slot] {
                    continue;
                }
                match nearest(&available, &control_lp, &control_ids, lp[t], width) {
                    Some(p) => {
                        available.remove(&p);
                        picks[slot].push(controls[p]);
                    }
                    None => active[slot] = false,
                }
            }
        }
    }

    let mut weight = vec![0.0; n];
    let mut sets = Vec::new();
    let mut dropped = 0;
    for (slot, &t) in order.iter().enumerate() {
        let chosen = std::mem::take(&mut picks[slot]);
        if chosen.is_empty() {
            dropped += 1;
            continue;
        }
        weight[t] = 1.0;
        let share = 1.0 / chosen.len() as f64;
        for &c in &chosen {
            weight[c] += share;
        }
        sets.push((t, chosen));
    }
    Matching {
        sets,
        weight,
        dropped_by_caliper: dropped,
        width,
    }
}
