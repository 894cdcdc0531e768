//! Product moves applied to the true table within one component: feasible points found without
//! an LP over the whole component.

use std::collections::HashSet;

use super::component::{Component, LpError, Row, Solved};
use super::moves::{Move, MoveIndex};
use super::{EPS, Known, LOCAL_PARTNERS, LpSystem, Requirement};

/// Applies product moves to the true table within one component.
pub(super) struct MoveWalker<'a> {
    comp: &'a Component,
    /// Per system cell: the variable of the component, when it is a hidden cell of it.
    var_of: std::collections::HashMap<usize, usize>,
    /// Per variable: the rows it appears in, with its coefficient.
    rows_of: Vec<Vec<(usize, f64)>>,
    /// The true value of every variable.
    pub(super) base: Vec<f64>,
}

impl<'a> MoveWalker<'a> {
    pub(super) fn new(sys: &LpSystem, comp: &'a Component, reqs: &[Requirement]) -> Self {
        let var_of = comp.hidden.iter().map(|&l| (comp.cells[l], l)).collect();
        let mut rows_of = vec![Vec::new(); comp.cells.len()];
        for (r, row) in comp.rows.iter().enumerate() {
            for &(i, c) in &row.terms {
                rows_of[i].push((r, c));
            }
        }
        let base = comp
            .cells
            .iter()
            .map(|&c| match sys.cells[c].known {
                Known::Exact(v) => v,
                _ => reqs[c].true_value.unwrap_or(f64::NAN),
            })
            .collect();
        Self {
            comp,
            var_of,
            rows_of,
            base,
        }
    }

    fn var(&self, c: usize) -> Option<usize> {
        self.var_of.get(&c).copied()
    }

    /// Maximises (or minimises) variable `l` over its neighbourhood (the hidden cells of the box
    /// spanned by its best [`LOCAL_PARTNERS`] partners per dimension), every other variable held at its true
    /// value. Returns the variables of the neighbourhood and their values in the solution
    /// (`None` when unbounded), a feasible point of the whole component.
    pub(super) fn solve_local(
        &self,
        moves: &MoveIndex,
        l: usize,
        maximise: bool,
    ) -> Result<Option<Vec<(usize, f64)>>, LpError> {
        let comp = self.comp;
        let base = &self.base;
        let order = moves.neighbourhood(
            comp.cells[l],
            |c| self.var(c),
            |c| self.var(c).map_or(0.0, |v| base[v] - comp.bounds[v].0),
            LOCAL_PARTNERS,
        );
        if order.len() < 2 {
            return Ok(None);
        }
        let sub_of: std::collections::HashMap<usize, usize> =
            order.iter().enumerate().map(|(k, &v)| (v, k)).collect();
        let mut rows_seen = HashSet::new();
        let mut rows = Vec::new();
        for &v in &order {
            for &(r, _) in &self.rows_of[v] {
                if !rows_seen.insert(r) {
                    continue;
                }
                let row = &comp.rows[r];
                let mut terms = Vec::new();
                let mut fixed = 0.0;
                for &(i, c) in &row.terms {
                    match sub_of.get(&i) {
                        Some(&k) => terms.push((k, c)),
                        None => fixed += c * self.base[i],
                    }
                }
                rows.push(Row {
                    terms,
                    lo: row.lo - fixed,
                    hi: row.hi - fixed,
                });
            }
        }
        let sub = Component {
            cells: order.iter().map(|&v| comp.cells[v]).collect(),
            bounds: order.iter().map(|&v| comp.bounds[v]).collect(),
            hidden: (0..order.len()).collect(),
            rows,
            lps: std::cell::Cell::new(0),
        };
        comp.lps.set(comp.lps.get() + 1);
        match sub.solve(&[(0, 1.0)], maximise, None)? {
            Solved::Value(_, point) => Ok(Some(order.into_iter().zip(point).collect())),
            Solved::Unbounded => Ok(None),
        }
    }

    /// Whether `mv` keeps every row of the component.
    fn keeps_rows(&self, mv: &Move) -> bool {
        let mut sums: Vec<(usize, f64)> = Vec::new();
        for &(v, sign) in mv {
            for &(r, coef) in &self.rows_of[v] {
                match sums.iter_mut().find(|(q, _)| *q == r) {
                    Some((_, acc)) => *acc += coef * sign,
                    None => sums.push((r, coef * sign)),
                }
            }
        }
        sums.iter().all(|&(_, acc)| acc.abs() <= EPS)
    }

    /// Moves the feasible point `y` (the true table on entry) along product moves through
    /// variable `l`, in direction `dir`, until `y[l]` reaches `target` or no move has room left,
    /// never touching variable `exclude`. Every intermediate point stays feasible: each move is
    /// checked against every row and taken only as far as every touched cell's bounds allow.
    /// The variables changed are added to `touched`.
    #[allow(
        clippy::too_many_arguments,
        reason = "internal helper; the scratch buffers avoid allocation"
    )]
    pub(super) fn push(
        &self,
        moves: &MoveIndex,
        l: usize,
        dir: f64,
        target: f64,
        exclude: Option<usize>,
        y: &mut [f64],
        touched: &mut Vec<usize>,
    ) {
        let comp = self.comp;
        let base = &self.base;
        // Rooms change as the point moves: a few passes reach further.
        for _ in 0..3 {
            let before = y[l];
            moves.for_each(
                comp.cells[l],
                |c| self.var(c).filter(|&v| Some(v) != exclude),
                |c| self.var(c).map_or(0.0, |v| base[v] - comp.bounds[v].0),
                |mv| {
                    let mut t = (target - y[l]) * dir;
                    if t <= EPS {
                        return true;
                    }
                    for &(v, sign) in mv {
                        let (lo, hi) = comp.bounds[v];
                        let room = if sign * dir > 0.0 { hi - y[v] } else { y[v] - lo };
                        t = t.min(room);
                    }
                    if t > EPS && self.keeps_rows(mv) {
                        for &(v, sign) in mv {
                            touched.push(v);
                            y[v] += sign * dir * t;
                        }
                    }
                    (target - y[l]) * dir <= EPS
                },
            );
            if (target - y[l]) * dir <= EPS || (y[l] - before).abs() <= EPS {
                break;
            }
        }
        touched.sort_unstable();
        touched.dedup();
    }
}
