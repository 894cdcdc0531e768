//! The LP of one connected component of an audit system: its variables, bounds and rows, and
//! the split of a system into components.

use good_lp::solvers::microlp::microlp;
use good_lp::{Expression, ProblemVariables, ResolutionError, Solution, SolverModel, Variable, variable};

use super::{Known, LpSystem};

/// A linear row `lo ≤ Σ coef · x ≤ hi` over the variables of a component.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) terms: Vec<(usize, f64)>,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

/// One connected component of the LP.
#[derive(Debug)]
pub(super) struct Component {
    /// System cell of each variable.
    pub(super) cells: Vec<usize>,
    pub(super) bounds: Vec<(f64, f64)>,
    pub(super) hidden: Vec<usize>,
    pub(super) rows: Vec<Row>,
    /// LPs solved on this component (for the debug log).
    pub(super) lps: std::cell::Cell<usize>,
}

pub(super) enum Solved {
    Value(f64, Vec<f64>),
    Unbounded,
}

#[derive(Debug)]
pub(super) enum LpError {
    Infeasible,
    Other(String),
}

impl Component {
    pub(super) fn solve(
        &self,
        objective: &[(usize, f64)],
        maximise: bool,
        fixed: Option<(usize, f64)>,
    ) -> Result<Solved, LpError> {
        self.lps.set(self.lps.get() + 1);
        let mut pv = ProblemVariables::new();
        let xs: Vec<Variable> = self
            .bounds
            .iter()
            .enumerate()
            .map(|(i, &(lo, hi))| {
                let (lo, hi) = match fixed {
                    Some((f, v)) if f == i => (v, v),
                    _ => (lo, hi),
                };
                let mut def = variable();
                if lo.is_finite() {
                    def = def.min(lo);
                }
                if hi.is_finite() {
                    def = def.max(hi);
                }
                pv.add(def)
            })
            .collect();
        let obj: Expression = objective.iter().map(|&(i, c)| c * xs[i]).sum();
        let mut model = if maximise {
            pv.maximise(obj)
        } else {
            pv.minimise(obj)
        }
        .using(microlp);
        for row in &self.rows {
            let e: Expression = row.terms.iter().map(|&(i, c)| c * xs[i]).sum();
            if (row.hi - row.lo).abs() < f64::EPSILON * (1.0 + row.lo.abs()) {
                model.add_constraint(e.eq(row.lo));
            } else {
                if row.lo.is_finite() {
                    model.add_constraint(e.clone().geq(row.lo));
                }
                if row.hi.is_finite() {
                    model.add_constraint(e.leq(row.hi));
                }
            }
        }
        match model.solve() {
            Ok(sol) => {
                let point: Vec<f64> = xs.iter().map(|&x| sol.value(x)).collect();
                let value = objective.iter().map(|&(i, c)| c * point[i]).sum();
                Ok(Solved::Value(value, point))
            }
            Err(ResolutionError::Unbounded) => Ok(Solved::Unbounded),
            Err(ResolutionError::Infeasible) => Err(LpError::Infeasible),
            Err(e) => Err(LpError::Other(e.to_string())),
        }
    }
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Splits the system into components of variables.
pub(super) fn components(sys: &LpSystem) -> Vec<Component> {
    let n = sys.cells.len();
    let hidden = |c: usize| matches!(sys.cells[c].known, Known::Hidden);
    let mut is_var = vec![false; n];
    for (c, cell) in sys.cells.iter().enumerate() {
        is_var[c] = matches!(cell.known, Known::Hidden);
    }
    // Rounded published cells next to a hidden cell become variables within their intervals.
    for (t, members) in &sys.constraints {
        if hidden(*t) || members.iter().any(|&m| hidden(m)) {
            for &c in std::iter::once(t).chain(members) {
                if matches!(sys.cells[c].known, Known::Interval(..)) {
                    is_var[c] = true;
                }
            }
        }
    }
    let mut parent: Vec<usize> = (0..n).collect();
    let mut used = Vec::new();
    for (ci, (t, members)) in sys.constraints.iter().enumerate() {
        let mut first = None;
        for &c in std::iter::once(t).chain(members) {
            if is_var[c] {
                match first {
                    None => first = Some(c),
                    Some(f) => {
                        let (a, b) = (find(&mut parent, f), find(&mut parent, c));
                        if a != b {
                            parent[a] = b;
                        }
                    }
                }
            }
        }
        if first.is_some() {
            used.push(ci);
        }
    }
    let mut comp_of_root = vec![usize::MAX; n];
    let mut comps: Vec<Component> = Vec::new();
    let mut local = vec![usize::MAX; n];
    for c in 0..n {
        if !is_var[c] {
            continue;
        }
        let r = find(&mut parent, c);
        if comp_of_root[r] == usize::MAX {
            comp_of_root[r] = comps.len();
            comps.push(Component {
                cells: Vec::new(),
                bounds: Vec::new(),
                hidden: Vec::new(),
                rows: Vec::new(),
                lps: std::cell::Cell::new(0),
            });
        }
        let comp = &mut comps[comp_of_root[r]];
        local[c] = comp.cells.len();
        comp.cells.push(c);
        let cell = sys.cells[c];
        let bounds = match cell.known {
            Known::Hidden => {
                comp.hidden.push(local[c]);
                (cell.lower, f64::INFINITY)
            }
            Known::Interval(lo, hi) => (lo.max(cell.lower), hi),
            Known::Exact(v) => (v, v),
        };
        comp.bounds.push(bounds);
    }
    for ci in used {
        let (t, members) = &sys.constraints[ci];
        let mut terms = Vec::new();
        let (mut lo, mut hi) = (0.0, 0.0);
        let mut comp = usize::MAX;
        for (c, coef) in std::iter::once((*t, -1.0)).chain(members.iter().map(|&m| (m, 1.0))) {
            if is_var[c] {
                comp = comp_of_root[find(&mut parent, c)];
                terms.push((local[c], coef));
            } else {
                // Move the constant to the right-hand side: Σ vars = −Σ coef · value.
                let (a, b) = match sys.cells[c].known {
                    Known::Exact(v) => (v, v),
                    Known::Interval(l, h) => (l.max(sys.cells[c].lower), h),
                    Known::Hidden => unreachable!("hidden cells are variables"),
                };
                let (a, b) = if coef > 0.0 { (a, b) } else { (-b, -a) };
                lo -= b;
                hi -= a;
            }
        }
        comps[comp].rows.push(Row { terms, lo, hi });
    }
    comps.retain(|c| !c.hidden.is_empty());
    comps
}
