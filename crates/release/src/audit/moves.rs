//! Witnesses without LP: the product moves of a table.
//!
//! In a table with margins, changing the inner cells by a product `v₁ ⊗ … ⊗ v_d` of vectors that
//! each keep their own margin (`v(Total) = Σ v(categories)`) keeps every additive constraint of
//! that table. The smallest such vectors have two entries: `e_i − e_j` (two categories) or
//! `e_i + e_Total`. Their products touch 2^d cells (a rectangle in two dimensions, a box in
//! three). When every touched cell is hidden, a feasible point plus any multiple of the move
//! that keeps each touched cell within its bounds is again feasible, so it witnesses values of
//! each touched cell without solving an LP. Moves are checked against every constraint of the
//! system before use, so a move of one table that breaks a constraint of another table of the
//! group (a shared margin) is never used.

use super::{Grid, LpSystem};

/// Upper limit on the moves tried through one cell.
const MAX_MOVES_PER_CELL: usize = 4096;

/// Where each system cell sits in each grid.
#[derive(Debug)]
pub(crate) struct MoveIndex<'a> {
    grids: &'a [Grid],
    /// Per system cell: (grid, flat position) pairs.
    places: Vec<Vec<(usize, usize)>>,
}

/// One move: (variable, sign) pairs, the cell it was built for first with sign +1.
pub(crate) type Move = Vec<(usize, f64)>;

impl<'a> MoveIndex<'a> {
    pub fn new(sys: &'a LpSystem) -> Self {
        let mut places = vec![Vec::new(); sys.cells.len()];
        for (g, grid) in sys.grids.iter().enumerate() {
            for (flat, &c) in grid.cells.iter().enumerate() {
                places[c].push((g, flat));
            }
        }
        Self {
            grids: &sys.grids,
            places,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.grids.is_empty()
    }

    /// The variables of the box spanned through system cell `s` by its `k` partners with the
    /// most `room` in each dimension (every cell a combination of product moves through `s`
    /// can touch when they use those partners), `s` first.
    pub fn neighbourhood(
        &self,
        s: usize,
        var: impl Fn(usize) -> Option<usize>,
        room: impl Fn(usize) -> f64,
        k: usize,
    ) -> Vec<usize> {
        let mut out: Vec<usize> = var(s).into_iter().collect();
        for &(g, flat) in &self.places[s] {
            let grid = &self.grids[g];
            let ext = &grid.extents;
            let d = ext.len();
            let mut idx = vec![0; d];
            let mut rest = flat;
            for q in (0..d).rev() {
                idx[q] = rest % ext[q];
                rest /= ext[q];
            }
            let encode = |pos: &[usize]| pos.iter().zip(ext).fold(0, |acc, (&i, &e)| acc * e + i);
            let mut axes: Vec<Vec<usize>> = Vec::with_capacity(d);
            for q in 0..d {
                let mut pos = idx.clone();
                let mut opts: Vec<(usize, f64)> = (0..ext[q])
                    .filter(|&j| j != idx[q])
                    .filter_map(|j| {
                        pos[q] = j;
                        let c = grid.cells[encode(&pos)];
                        var(c).map(|_| (j, room(c)))
                    })
                    .collect();
                opts.sort_by(|a, b| b.1.total_cmp(&a.1));
                let mut span = vec![idx[q]];
                span.extend(opts.into_iter().take(k).map(|(j, _)| j));
                axes.push(span);
            }
            let mut choice = vec![0usize; d];
            let mut pos = vec![0usize; d];
            'cells: loop {
                for q in 0..d {
                    pos[q] = axes[q][choice[q]];
                }
                if let Some(v) = var(grid.cells[encode(&pos)]) {
                    out.push(v);
                }
                for q in (0..d).rev() {
                    choice[q] += 1;
                    if choice[q] < axes[q].len() {
                        continue 'cells;
                    }
                    choice[q] = 0;
                }
                break;
            }
        }
        let first = out.first().copied();
        out.sort_unstable();
        out.dedup();
        if let Some(f) = first
            && let Some(p) = out.iter().position(|&v| v == f)
        {
            out.swap(0, p);
        }
        out
    }

    /// Calls `f` with every product move through system cell `s` whose touched cells are all
    /// variables according to `var` (system cell → variable), partners with the most `room`
    /// first, until `f` returns true. Moves are not yet checked against the constraints.
    pub fn for_each(
        &self,
        s: usize,
        var: impl Fn(usize) -> Option<usize>,
        room: impl Fn(usize) -> f64,
        mut f: impl FnMut(&Move) -> bool,
    ) {
        let mut tried = 0;
        for &(g, flat) in &self.places[s] {
            let grid = &self.grids[g];
            let ext = &grid.extents;
            let d = ext.len();
            if d == 0 || d > 8 {
                continue;
            }
            let mut idx = vec![0; d];
            let mut rest = flat;
            for k in (0..d).rev() {
                idx[k] = rest % ext[k];
                rest /= ext[k];
            }
            let encode = |pos: &[usize]| pos.iter().zip(ext).fold(0, |acc, (&i, &e)| acc * e + i);
            // Per dimension: the partner positions and their sign.
            let mut options: Vec<Vec<(usize, f64)>> = Vec::with_capacity(d);
            for k in 0..d {
                let total = ext[k] - 1;
                let mut opts: Vec<(usize, f64, f64)> = Vec::new();
                let mut pos = idx.clone();
                for j in 0..ext[k] {
                    if j == idx[k] || (idx[k] == total && j == total) {
                        continue;
                    }
                    // From a category: another category (−) or the margin (+); from the
                    // margin: any category (+).
                    let sign = if idx[k] == total || j == total { 1.0 } else { -1.0 };
                    pos[k] = j;
                    let c = grid.cells[encode(&pos)];
                    if var(c).is_some() {
                        opts.push((j, sign, room(c)));
                    }
                }
                if opts.is_empty() {
                    break;
                }
                opts.sort_by(|a, b| b.2.total_cmp(&a.2));
                options.push(opts.into_iter().map(|(j, sign, _)| (j, sign)).collect());
            }
            if options.len() < d {
                continue;
            }
            let mut choice = vec![0usize; d];
            let mut corner = vec![0usize; d];
            let mut mv: Move = Vec::with_capacity(1 << d);
            'combos: loop {
                if tried >= MAX_MOVES_PER_CELL {
                    return;
                }
                tried += 1;
                mv.clear();
                let mut ok = true;
                for mask in 0..(1usize << d) {
                    let mut sign = 1.0;
                    for k in 0..d {
                        if mask >> k & 1 == 1 {
                            let (j, sg) = options[k][choice[k]];
                            corner[k] = j;
                            sign *= sg;
                        } else {
                            corner[k] = idx[k];
                        }
                    }
                    if let Some(v) = var(grid.cells[encode(&corner)]) {
                        mv.push((v, sign));
                    } else {
                        ok = false;
                        break;
                    }
                }
                if ok && f(&mv) {
                    return;
                }
                // Next combination (odometer, last dimension fastest).
                for k in (0..d).rev() {
                    choice[k] += 1;
                    if choice[k] < options[k].len() {
                        continue 'combos;
                    }
                    choice[k] = 0;
                }
                break;
            }
        }
    }
}
