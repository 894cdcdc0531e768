//! Whether the lines of a group pin a suppressed cell, and with which published cells.
//!
//! A hidden cell `s` is pinned by the equalities alone when some combination of the lines (each
//! `total − Σ members = 0`), with every published cell moved to the right-hand side, leaves
//! `s` alone: `s = Σ λ_c · value_c` over published cells. Hiding a cell that such a derivation
//! does not use cannot widen `s`'s interval, so secondary suppression of a pinned cell picks its
//! partner among the cells a derivation uses (see `suppress.rs`). Found by Gauss–Jordan
//! elimination over the lines that reach `s` through hidden cells (lines elsewhere cannot
//! cancel a hidden cell of `s`'s component).

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::model::Group;

/// Coefficients closer to zero than this are zero (the lines have coefficients ±1).
const EPS: f64 = 1e-9;
/// The largest elimination (lines × hidden cells) tried; beyond it no derivation is looked for.
const MAX_ENTRIES: usize = 4_000_000;

/// The published cells (not empty by construction) that one derivation of the exact value of
/// `s` from the lines uses, when the lines pin it whatever the other hidden cells are; `None`
/// when they do not (or the system is too large to tell).
pub(crate) fn derivation(group: &Group, hidden: impl Fn(usize) -> bool, s: usize) -> Option<Vec<usize>> {
    let unknown = |c: usize| hidden(c) && !group.is_structural(c);
    // The hidden cells and the lines reachable from `s` through hidden cells.
    let mut column: BTreeMap<usize, usize> = BTreeMap::from([(s, 0)]);
    let mut rows: Vec<usize> = Vec::new();
    let mut row_seen = vec![false; group.constraints.len()];
    let mut queue = VecDeque::from([s]);
    while let Some(c) = queue.pop_front() {
        for &ci in &group.cell_constraints[c] {
            if std::mem::replace(&mut row_seen[ci], true) {
                continue;
            }
            rows.push(ci);
            let line = &group.constraints[ci];
            for x in std::iter::once(line.total).chain(line.members.iter().copied()) {
                if unknown(x) && !column.contains_key(&x) {
                    column.insert(x, column.len());
                    queue.push_back(x);
                }
            }
        }
    }
    let (m, k) = (rows.len(), column.len());
    if m * (k + m) > MAX_ENTRIES {
        return None;
    }
    // Each row: its coefficients over the hidden cells, and the combination of lines it is.
    let mut a: Vec<Vec<f64>> = rows
        .iter()
        .map(|&ci| {
            let mut row = vec![0.0; k];
            let line = &group.constraints[ci];
            if let Some(&j) = column.get(&line.total) {
                row[j] += 1.0;
            }
            for &x in &line.members {
                if let Some(&j) = column.get(&x) {
                    row[j] -= 1.0;
                }
            }
            row
        })
        .collect();
    // The published cells of a line never enter the elimination, so only the combination of
    // lines is tracked.
    let mut comb: Vec<Vec<f64>> = (0..m)
        .map(|i| {
            let mut e = vec![0.0; m];
            e[i] = 1.0;
            e
        })
        .collect();
    let pivots = gauss_jordan(&mut a, &mut comb, k);
    // Reduce e_s by the pivot rows: it is in their span exactly when nothing is left.
    let mut target = vec![0.0_f64; k];
    target[0] = 1.0;
    let mut y = vec![0.0_f64; m];
    for &(r, j) in &pivots {
        let f = target[j];
        if f.abs() > EPS {
            for (t, v) in target.iter_mut().zip(&a[r]) {
                *t -= f * v;
            }
            for (yi, v) in y.iter_mut().zip(&comb[r]) {
                *yi += f * v;
            }
        }
    }
    if target.iter().any(|t| t.abs() > EPS) {
        return None;
    }
    // The published cells with a non-zero coefficient in the combination of lines.
    let mut weight: BTreeMap<usize, f64> = BTreeMap::new();
    for (&ci, &yi) in rows.iter().zip(&y) {
        if yi.abs() <= EPS {
            continue;
        }
        let line = &group.constraints[ci];
        *weight.entry(line.total).or_default() += yi;
        for &x in &line.members {
            *weight.entry(x).or_default() -= yi;
        }
    }
    Some(
        weight
            .into_iter()
            .filter(|&(c, w)| w.abs() > EPS && !unknown(c) && !group.is_structural(c))
            .map(|(c, _)| c)
            .collect(),
    )
}

/// Hiding, one at a time, the cheapest cell allowed by `allowed` that a derivation of `s` uses
/// (one that frees `s` at once first), until the lines no longer pin `s`: the first cell hidden and the total `cost`, or `None` when
/// such cells cannot free it.
pub(crate) fn freeing(
    group: &Group,
    hidden: impl Fn(usize) -> bool,
    s: usize,
    allowed: impl Fn(usize) -> bool,
    cost: impl Fn(usize) -> usize,
) -> Option<(usize, usize)> {
    /// Cells hidden before a way is given up.
    const MAX_STEPS: usize = 32;
    /// Candidates tried, per step, for one that frees `s` at once.
    const MAX_TRIED: usize = 8;
    let mut extra: HashSet<usize> = HashSet::new();
    let mut first = None;
    let mut total = 0;
    for _ in 0..MAX_STEPS {
        let Some(used) = derivation(group, |c| hidden(c) || extra.contains(&c), s) else {
            return first.map(|f| (f, total));
        };
        let mut candidates: Vec<usize> = used.into_iter().filter(|&c| allowed(c)).collect();
        candidates.sort_by_key(|&c| (cost(c), group.cells[c].n_totals, group.cells[c].count, c));
        // The cheapest that frees `s` at once, among the few cheapest; else the cheapest.
        let frees = |p: usize| derivation(group, |c| c == p || hidden(c) || extra.contains(&c), s).is_none();
        let p = candidates
            .iter()
            .take(MAX_TRIED)
            .copied()
            .find(|&p| frees(p))
            .or_else(|| candidates.first().copied())?;
        extra.insert(p);
        total += cost(p);
        first.get_or_insert(p);
    }
    None
}

/// Reduces `a` (its first `k` columns) to reduced row echelon form, applying the same row
/// operations to `comb`; the (row, column) of every pivot.
fn gauss_jordan(a: &mut [Vec<f64>], comb: &mut [Vec<f64>], k: usize) -> Vec<(usize, usize)> {
    let m = a.len();
    let mut pivots = Vec::new();
    let mut next = 0;
    for j in 0..k {
        if next == m {
            break;
        }
        let Some(p) = (next..m)
            .filter(|&r| a[r][j].abs() > EPS)
            .max_by(|&x, &y| a[x][j].abs().total_cmp(&a[y][j].abs()))
        else {
            continue;
        };
        a.swap(next, p);
        comb.swap(next, p);
        let f = a[next][j];
        a[next].iter_mut().for_each(|v| *v /= f);
        comb[next].iter_mut().for_each(|v| *v /= f);
        let (pivot_row, pivot_comb) = (a[next].clone(), comb[next].clone());
        for r in 0..m {
            let g = a[r][j];
            if r == next || g.abs() <= EPS {
                continue;
            }
            for (v, p) in a[r].iter_mut().zip(&pivot_row) {
                *v -= g * p;
            }
            for (v, p) in comb[r].iter_mut().zip(&pivot_comb) {
                *v -= g * p;
            }
        }
        pivots.push((next, j));
        next += 1;
    }
    pivots
}
