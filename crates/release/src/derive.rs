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
    let (n_rows, n_cols) = (rows.len(), column.len());
    if n_rows * (n_cols + n_rows) > MAX_ENTRIES {
        return None;
    }
    // Each row: its coefficients over the hidden cells, and the combination of lines it is.
    let mut matrix: Vec<Vec<f64>> = rows
        .iter()
        .map(|&ci| {
            let mut row = vec![0.0; n_cols];
            let line = &group.constraints[ci];
            if let Some(&col) = column.get(&line.total) {
                row[col] += 1.0;
            }
            for &x in &line.members {
                if let Some(&col) = column.get(&x) {
                    row[col] -= 1.0;
                }
            }
            row
        })
        .collect();
    // The published cells of a line never enter the elimination, so only the combination of
    // lines is tracked.
    let mut comb: Vec<Vec<f64>> = (0..n_rows)
        .map(|i| {
            let mut unit = vec![0.0; n_rows];
            unit[i] = 1.0;
            unit
        })
        .collect();
    let pivots = gauss_jordan(&mut matrix, &mut comb, n_cols);
    // Reduce the unit vector of `s` by the pivot rows: it is in their span exactly when nothing
    // is left.
    let mut target = vec![0.0_f64; n_cols];
    target[0] = 1.0;
    let mut line_weights = vec![0.0_f64; n_rows];
    for &(row, col) in &pivots {
        let factor = target[col];
        if factor.abs() > EPS {
            for (t, v) in target.iter_mut().zip(&matrix[row]) {
                *t -= factor * v;
            }
            for (w, v) in line_weights.iter_mut().zip(&comb[row]) {
                *w += factor * v;
            }
        }
    }
    if target.iter().any(|t| t.abs() > EPS) {
        return None;
    }
    // The published cells with a non-zero coefficient in the combination of lines.
    let mut weight: BTreeMap<usize, f64> = BTreeMap::new();
    for (&ci, &yi) in rows.iter().zip(&line_weights) {
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
        let frees =
            |cand: usize| derivation(group, |c| c == cand || hidden(c) || extra.contains(&c), s).is_none();
        let chosen = candidates
            .iter()
            .take(MAX_TRIED)
            .copied()
            .find(|&cand| frees(cand))
            .or_else(|| candidates.first().copied())?;
        extra.insert(chosen);
        total += cost(chosen);
        first.get_or_insert(chosen);
    }
    None
}

/// Reduces `matrix` (its first `n_cols` columns) to reduced row echelon form, applying the same
/// row operations to `comb`; the (row, column) of every pivot.
fn gauss_jordan(matrix: &mut [Vec<f64>], comb: &mut [Vec<f64>], n_cols: usize) -> Vec<(usize, usize)> {
    let n_rows = matrix.len();
    let mut pivots = Vec::new();
    let mut next = 0;
    for col in 0..n_cols {
        if next == n_rows {
            break;
        }
        let Some(best) = (next..n_rows)
            .filter(|&r| matrix[r][col].abs() > EPS)
            .max_by(|&x, &y| matrix[x][col].abs().total_cmp(&matrix[y][col].abs()))
        else {
            continue;
        };
        matrix.swap(next, best);
        comb.swap(next, best);
        let scale = matrix[next][col];
        matrix[next].iter_mut().for_each(|v| *v /= scale);
        comb[next].iter_mut().for_each(|v| *v /= scale);
        let (pivot_row, pivot_comb) = (matrix[next].clone(), comb[next].clone());
        for row in 0..n_rows {
            let factor = matrix[row][col];
            if row == next || factor.abs() <= EPS {
                continue;
            }
            for (v, p) in matrix[row].iter_mut().zip(&pivot_row) {
                *v -= factor * p;
            }
            for (v, p) in comb[row].iter_mut().zip(&pivot_comb) {
                *v -= factor * p;
            }
        }
        pivots.push((next, col));
        next += 1;
    }
    pivots
}
