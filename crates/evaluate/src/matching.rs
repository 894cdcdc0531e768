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

/// Matches treated rows to untreated rows on `lp` (the logit of the score).
///
/// Treated persons are taken in descending score, ties by person id. Without replacement the
/// matching runs in `ratio` rounds: in each round every still-matched treated person (in that
/// order) takes its nearest unused untreated person within `width`; a treated person with no
/// comparison in the first round is dropped by the caliper. With replacement each treated person
/// takes its `ratio` nearest untreated persons within `width`, who may be reused. Distance ties
/// go to the lower score, then the lower person id.
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
    let mut order: Vec<usize> = (0..n).filter(|&i| treated[i]).collect();
    order.sort_by(|&a, &b| lp[b].total_cmp(&lp[a]).then_with(|| ids[a].cmp(&ids[b])));

    let mut picks: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
    let ratio = ratio.max(1);
    if replacement {
        for (slot, &t) in order.iter().enumerate() {
            let pos = control_lp.partition_point(|&v| v < lp[t]);
            let (mut left, mut right) = (pos, pos);
            while picks[slot].len() < ratio {
                let dl = (left > 0).then(|| lp[t] - control_lp[left - 1]);
                let dr = (right < controls.len()).then(|| control_lp[right] - lp[t]);
                let take_left = match (dl, dr) {
                    (Some(l), Some(r)) => l <= r,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                let (distance, position) = if take_left {
                    left -= 1;
                    (dl.unwrap_or(f64::INFINITY), left)
                } else {
                    right += 1;
                    (dr.unwrap_or(f64::INFINITY), right - 1)
                };
                if distance > width {
                    break;
                }
                picks[slot].push(controls[position]);
            }
        }
    } else {
        let mut available: BTreeSet<usize> = (0..controls.len()).collect();
        let mut active: Vec<bool> = vec![true; order.len()];
        for _round in 0..ratio {
            for (slot, &t) in order.iter().enumerate() {
                if !active[slot] {
                    continue;
                }
                let pos = control_lp.partition_point(|&v| v < lp[t]);
                let left = available.range(..pos).next_back().copied();
                let right = available.range(pos..).next().copied();
                let best = match (left, right) {
                    (Some(l), Some(r)) => Some(if lp[t] - control_lp[l] <= control_lp[r] - lp[t] {
                        l
                    } else {
                        r
                    }),
                    (l, r) => l.or(r),
                };
                match best.filter(|&p| (control_lp[p] - lp[t]).abs() <= width) {
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
