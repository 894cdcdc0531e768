//! The protection audit: the gate every release passes, and what `check-release` re-runs.
//!
//! This module knows nothing about how cells were chosen for suppression. It takes a system of
//! cells (each published exactly, published as an interval because of rounding, or hidden) and
//! additive constraints `total = Σ members`, and computes for every hidden cell the smallest and
//! largest value it can take by linear programming (`good_lp` with the pure-Rust `microlp` solver).
//!
//! Speed: only hidden cells (and, when published values are intervals, the published cells that
//! share a constraint with a hidden cell) are LP variables; exactly published cells are
//! constants. The system is split into connected components of variables, each solved
//! separately. In [`Mode::Decide`] every LP solution is kept as a *witness*: a feasible point of
//! the component, so any value a cell takes in it lies inside that cell's true interval. A cell
//! whose witnessed range already meets its requirement needs no LP of its own; the few that
//! remain get their own min and max. A witnessed range is an inner bound of the exact interval,
//! so this shortcut never passes a cell the exact audit would fail. When the true values are
//! known (our own release, not `check-release`), product moves of the tables (see `moves`) and
//! LPs over a cell's neighbourhood, other cells held at their true values, give further
//! witnesses before any LP over the whole component.

use std::collections::HashSet;

use good_lp::solvers::microlp::microlp;

use crate::moves::{Move, MoveIndex};
use good_lp::{Expression, ProblemVariables, ResolutionError, Solution, SolverModel, Variable, variable};

/// How many partners per dimension span the box of a neighbourhood LP.
const LOCAL_PARTNERS: usize = 14;

/// Numerical tolerance of the LP solutions.
const EPS: f64 = 1e-6;

/// What the attacker knows about a cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Known {
    /// Published exactly.
    Exact(f64),
    /// Published rounded: the true value lies in `[lo, hi]`.
    Interval(f64, f64),
    /// Suppressed.
    Hidden,
}

/// A cell of an audit system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LpCell {
    pub known: Known,
    /// The smallest value the cell can hold (0 for counts; 1 for suppressed counts that are
    /// known to be non-empty; `-inf` for sums that may be negative).
    pub lower: f64,
    /// Whether the cell is a whole number (intervals are then narrowed to integers).
    pub integer: bool,
}

/// Cells and additive constraints `cells[total] = Σ cells[members]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LpSystem {
    pub cells: Vec<LpCell>,
    pub constraints: Vec<(usize, Vec<usize>)>,
    /// The tables the constraints come from, as a hint for finding witnesses without LP (may be
    /// empty; the constraints alone define the system).
    pub grids: Vec<Grid>,
}

/// A table laid over system cells: `cells[flat]` is the system cell at a row-major position over
/// `extents` (each dimension's categories, then `Total` last).
#[derive(Debug, Clone, Default)]
pub(crate) struct Grid {
    pub extents: Vec<usize>,
    pub cells: Vec<usize>,
}

/// What a hidden cell needs for the release to be safe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Requirement {
    /// The audited interval must be at least this wide (integer width for counts): at least 1,
    /// or 0 for a cell that may be pinned (a count no file publishes that is not sensitive).
    pub min_width: f64,
    /// The largest value the cell can take must reach this (the threshold, for small counts).
    pub min_upper: Option<f64>,
    /// The true value, when known (our own release): a feasible starting witness, and needed
    /// for insider checks.
    pub true_value: Option<f64>,
}

/// How hard to work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Solve min and max of every hidden cell: exact intervals.
    Exact,
    /// Decide pass/fail with as few LPs as possible (witnesses); intervals may be inner bounds.
    Decide,
    /// As [`Mode::Decide`], except that in a component larger than [`QUICK_LP_VARS`] variables
    /// (where every LP is slow) a cell passes only when witnesses found without an LP over the
    /// whole component prove it safe, and is reported failing otherwise. Never passes a cell
    /// `Decide` would fail; may fail a cell `Decide` would pass (the suppression loop then adds
    /// a partner, which costs a published cell but never protection).
    Quick,
}

/// Components up to this many variables are solved as in [`Mode::Decide`] by [`Mode::Quick`].
const QUICK_LP_VARS: usize = 1500;

/// Why a hidden cell is not protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The interval holds a single value (less than one unit wide).
    Pinned,
    /// The cell can be shown to lie entirely below the threshold.
    BelowThreshold,
    /// The interval is narrower than the required protection.
    TooNarrow,
    /// Someone who knows the value of the given (hidden, single-person) cell can work this one
    /// out exactly.
    Insider(usize),
    /// The published values contradict the additive constraints (no feasible table).
    Inconsistent,
}

/// The audit of one hidden cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CellAudit {
    pub lo: f64,
    pub hi: f64,
    /// Whether both bounds come from their own LP (otherwise they are witnessed inner bounds).
    pub exact: bool,
    pub failure: Option<Failure>,
}

/// A cell whose value someone knows exactly: the single contributor of a cell of one person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Insider {
    pub cell: usize,
    pub value: f64,
}

/// A linear row `lo ≤ Σ coef · x ≤ hi` over the variables of a component.
#[derive(Debug, Clone)]
struct Row {
    terms: Vec<(usize, f64)>,
    lo: f64,
    hi: f64,
}

/// One connected component of the LP.
#[derive(Debug)]
struct Component {
    /// System cell of each variable.
    cells: Vec<usize>,
    bounds: Vec<(f64, f64)>,
    hidden: Vec<usize>,
    rows: Vec<Row>,
    /// LPs solved on this component (for the debug log).
    lps: std::cell::Cell<usize>,
}

enum Solved {
    Value(f64, Vec<f64>),
    Unbounded,
}

#[derive(Debug)]
enum LpError {
    Infeasible,
    Other(String),
}

impl Component {
    fn solve(
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

/// Applies product moves to the true table within one component.
struct MoveWalker<'a> {
    comp: &'a Component,
    /// Per system cell: the variable of the component, when it is a hidden cell of it.
    var_of: std::collections::HashMap<usize, usize>,
    /// Per variable: the rows it appears in, with its coefficient.
    rows_of: Vec<Vec<(usize, f64)>>,
    /// The true value of every variable.
    base: Vec<f64>,
}

impl<'a> MoveWalker<'a> {
    fn new(sys: &LpSystem, comp: &'a Component, reqs: &[Requirement]) -> Self {
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
    fn solve_local(
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
    #[allow(clippy::too_many_arguments)] // internal helper; the scratch buffers avoid allocation
    fn push(
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

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Splits the system into components of variables.
fn components(sys: &LpSystem) -> Vec<Component> {
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

fn width(lo: f64, hi: f64, integer: bool) -> f64 {
    if integer {
        (hi + EPS).floor() - (lo - EPS).ceil()
    } else {
        hi - lo
    }
}

fn meets(req: &Requirement, lo: f64, hi: f64, integer: bool) -> bool {
    let w = width(lo, hi, integer);
    w >= req.min_width - EPS && req.min_upper.is_none_or(|u| hi >= u - EPS)
}

fn classify(req: &Requirement, lo: f64, hi: f64, integer: bool) -> Option<Failure> {
    if req.min_upper.is_some_and(|u| hi < u - EPS) {
        return Some(Failure::BelowThreshold);
    }
    let w = width(lo, hi, integer);
    if req.min_width > 0.0 && w < 1.0 - EPS {
        Some(Failure::Pinned)
    } else if w < req.min_width - EPS {
        Some(Failure::TooNarrow)
    } else {
        None
    }
}

/// Audits every hidden cell of `sys`. `reqs` holds one requirement per cell (ignored for
/// published cells). `passed` (Decide mode only) holds the hidden-cell sets of components that
/// passed before; they are skipped, and components that pass are added.
pub(crate) fn audit(
    sys: &LpSystem,
    reqs: &[Requirement],
    insiders: &[Insider],
    mode: Mode,
    mut passed: Option<&mut HashSet<Vec<usize>>>,
) -> Result<Vec<Option<CellAudit>>, String> {
    let mut out: Vec<Option<CellAudit>> = vec![None; sys.cells.len()];
    let moves = MoveIndex::new(sys);
    for comp in components(sys) {
        let signature: Vec<usize> = comp.hidden.iter().map(|&l| comp.cells[l]).collect();
        if mode != Mode::Exact
            && let Some(p) = passed.as_deref()
            && p.contains(&signature)
        {
            for &c in &signature {
                out[c] = Some(CellAudit {
                    lo: f64::NAN,
                    hi: f64::NAN,
                    exact: false,
                    failure: None,
                });
            }
            continue;
        }
        let start = std::time::Instant::now();
        let result = audit_component(sys, &comp, reqs, insiders, mode, &moves)?;
        tracing::debug!(
            variables = comp.cells.len(),
            hidden = comp.hidden.len(),
            rows = comp.rows.len(),
            lps = comp.lps.get(),
            seconds = start.elapsed().as_secs_f64(),
            "audited a component"
        );
        let ok = result.iter().all(|(_, a)| a.failure.is_none());
        for (c, a) in result {
            out[c] = Some(a);
        }
        if ok && let Some(p) = passed.as_deref_mut() {
            p.insert(signature);
        }
    }
    Ok(out)
}

#[allow(
    clippy::too_many_lines,
    reason = "split by the engineer finishing work in release; allowed until that work lands"
)]
fn audit_component(
    sys: &LpSystem,
    comp: &Component,
    reqs: &[Requirement],
    insiders: &[Insider],
    mode: Mode,
    moves: &MoveIndex,
) -> Result<Vec<(usize, CellAudit)>, String> {
    let n = comp.cells.len();
    let integer = |l: usize| sys.cells[comp.cells[l]].integer;
    let req = |l: usize| &reqs[comp.cells[l]];
    let mut seen_lo = vec![f64::INFINITY; n];
    let mut seen_hi = vec![f64::NEG_INFINITY; n];
    let all_true = comp.hidden.iter().all(|&l| req(l).true_value.is_some());
    if all_true {
        for &l in &comp.hidden {
            let v = req(l).true_value.expect("checked above");
            seen_lo[l] = v;
            seen_hi[l] = v;
        }
    }
    let mut exact_lo: Vec<Option<f64>> = vec![None; n];
    let mut exact_hi: Vec<Option<f64>> = vec![None; n];
    let inconsistent = |comp: &Component| {
        comp.hidden
            .iter()
            .map(|&l| {
                (
                    comp.cells[l],
                    CellAudit {
                        lo: f64::NAN,
                        hi: f64::NAN,
                        exact: false,
                        failure: Some(Failure::Inconsistent),
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    let record = |point: &[f64], seen_lo: &mut [f64], seen_hi: &mut [f64]| {
        for &l in &comp.hidden {
            seen_lo[l] = seen_lo[l].min(point[l]);
            seen_hi[l] = seen_hi[l].max(point[l]);
        }
    };
    macro_rules! solve {
        ($obj:expr, $max:expr, $fixed:expr) => {
            match comp.solve($obj, $max, $fixed) {
                Ok(s) => s,
                Err(LpError::Infeasible) => return Ok(inconsistent(comp)),
                Err(LpError::Other(e)) => return Err(e),
            }
        };
    }
    let satisfied = |l: usize, seen_lo: &[f64], seen_hi: &[f64]| {
        seen_lo[l] <= seen_hi[l] && meets(req(l), seen_lo[l], seen_hi[l], integer(l))
    };
    // With the true table as a feasible point, product moves of the tables witness most cells
    // without an LP.
    let walker = (all_true && !moves.is_empty()).then(|| MoveWalker::new(sys, comp, reqs));
    let decide = mode != Mode::Exact;
    let proof_only = mode == Mode::Quick && walker.is_some() && comp.cells.len() > QUICK_LP_VARS;
    if decide && let Some(w) = &walker {
        let mut y = w.base.clone();
        let mut touched = Vec::new();
        for &l in &comp.hidden {
            let x = w.base[l];
            let r = req(l);
            let step = r.min_width.max(1.0).ceil();
            let up = r.min_upper.map_or(x + step, |u| u.max(x + step));
            for (dir, target) in [(1.0, up), (-1.0, x - step)] {
                if satisfied(l, &seen_lo, &seen_hi) {
                    break;
                }
                w.push(moves, l, dir, target, None, &mut y, &mut touched);
                for &v in &touched {
                    seen_lo[v] = seen_lo[v].min(y[v]);
                    seen_hi[v] = seen_hi[v].max(y[v]);
                    y[v] = w.base[v];
                }
                touched.clear();
            }
        }
    }
    // Cells the moves left open: an LP over their neighbourhood, every other variable held at
    // its true value. Its solutions are feasible points of the whole component.
    if decide && let Some(w) = &walker {
        for &l in &comp.hidden {
            for maximise in [true, false] {
                if satisfied(l, &seen_lo, &seen_hi) {
                    break;
                }
                if !maximise && req(l).min_upper.is_some_and(|u| seen_hi[l] < u - EPS) {
                    break;
                }
                match w.solve_local(moves, l, maximise) {
                    Ok(Some(point)) => {
                        for (v, y) in point {
                            seen_lo[v] = seen_lo[v].min(y);
                            seen_hi[v] = seen_hi[v].max(y);
                        }
                    }
                    Ok(None) | Err(LpError::Infeasible) => {}
                    Err(LpError::Other(e)) => return Err(e),
                }
            }
        }
        tracing::debug!(
            open = comp
                .hidden
                .iter()
                .filter(|&&l| !satisfied(l, &seen_lo, &seen_hi))
                .count(),
            "after local LPs"
        );
    }
    if decide && !proof_only {
        // Bulk witnesses: push the cells that need a high upper bound up, then the open cells
        // up and down, all together and with alternating signs.
        let needs_upper: Vec<(usize, f64)> = comp
            .hidden
            .iter()
            .filter(|&&l| req(l).min_upper.is_some() && !satisfied(l, &seen_lo, &seen_hi))
            .map(|&l| (l, 1.0))
            .collect();
        if !needs_upper.is_empty()
            && let Solved::Value(_, p) = solve!(&needs_upper, true, None)
        {
            record(&p, &mut seen_lo, &mut seen_hi);
        }
        for (alternate, maximise) in [(false, true), (false, false), (true, true), (true, false)] {
            let open: Vec<(usize, f64)> = comp
                .hidden
                .iter()
                .filter(|&&l| !satisfied(l, &seen_lo, &seen_hi))
                .enumerate()
                .map(|(k, &l)| (l, if alternate && k % 2 == 1 { -1.0 } else { 1.0 }))
                .collect();
            if open.len() > 1
                && let Solved::Value(_, p) = solve!(&open, maximise, None)
            {
                record(&p, &mut seen_lo, &mut seen_hi);
            }
        }
    }
    for &l in &comp.hidden {
        if decide && (proof_only || satisfied(l, &seen_lo, &seen_hi)) {
            continue;
        }
        match solve!(&[(l, 1.0)], true, None) {
            Solved::Value(v, p) => {
                exact_hi[l] = Some(v);
                record(&p, &mut seen_lo, &mut seen_hi);
            }
            Solved::Unbounded => {
                exact_hi[l] = Some(f64::INFINITY);
                seen_hi[l] = f64::INFINITY;
            }
        }
        if decide
            && (satisfied(l, &seen_lo, &seen_hi)
                || req(l)
                    .min_upper
                    .is_some_and(|u| exact_hi[l].is_some_and(|h| h < u - EPS)))
        {
            continue;
        }
        match solve!(&[(l, 1.0)], false, None) {
            Solved::Value(v, p) => {
                exact_lo[l] = Some(v);
                record(&p, &mut seen_lo, &mut seen_hi);
            }
            Solved::Unbounded => {
                exact_lo[l] = Some(f64::NEG_INFINITY);
                seen_lo[l] = f64::NEG_INFINITY;
            }
        }
    }
    let mut result: Vec<(usize, CellAudit)> = comp
        .hidden
        .iter()
        .map(|&l| {
            let lo = exact_lo[l].unwrap_or(seen_lo[l]);
            let hi = exact_hi[l].unwrap_or(seen_hi[l]);
            let failure = if satisfied(l, &seen_lo, &seen_hi) {
                None
            } else {
                classify(req(l), lo, hi, integer(l))
            };
            (
                comp.cells[l],
                CellAudit {
                    lo,
                    hi,
                    exact: exact_lo[l].is_some() && exact_hi[l].is_some(),
                    failure,
                },
            )
        })
        .collect();
    if all_true {
        insider_checks(
            sys,
            comp,
            reqs,
            insiders,
            &mut result,
            moves,
            walker.as_ref(),
            proof_only,
        )?;
    }
    Ok(result)
}

/// For every insider in the component: fix their cell at its value and check that no hidden
/// cell sharing a constraint with it becomes pinned.
#[allow(clippy::too_many_arguments)] // internal: the component's audit state, passed through
fn insider_checks(
    sys: &LpSystem,
    comp: &Component,
    reqs: &[Requirement],
    insiders: &[Insider],
    result: &mut [(usize, CellAudit)],
    moves: &MoveIndex,
    walker: Option<&MoveWalker>,
    proof_only: bool,
) -> Result<(), String> {
    for ins in insiders {
        let Some(u) = comp.cells.iter().position(|&c| c == ins.cell) else {
            continue;
        };
        // Cells sharing a line with the insider. Learning a cell that holds only the insider
        // (the total of their line when it equals their own value, or any part of their own
        // cell when they are the line's total) tells them nothing about anyone else.
        let true_of = |i: usize| reqs[comp.cells[i]].true_value;
        let mut neighbours: Vec<usize> = comp
            .rows
            .iter()
            .filter(|r| r.terms.iter().any(|&(i, _)| i == u))
            .flat_map(|r| {
                let u_is_total = r.terms.iter().any(|&(i, c)| i == u && c < 0.0);
                r.terms.iter().filter_map(move |&(i, c)| {
                    let only_insider = u_is_total || (c < 0.0 && true_of(i) == Some(ins.value));
                    (!only_insider).then_some(i)
                })
            })
            .filter(|&i| {
                i != u
                    && matches!(sys.cells[comp.cells[i]].known, Known::Hidden)
                    && reqs[comp.cells[i]].min_width > 0.0
            })
            .collect();
        neighbours.sort_unstable();
        neighbours.dedup();
        let mut seen_lo: Vec<f64> = comp
            .cells
            .iter()
            .map(|&c| reqs[c].true_value.unwrap_or(f64::INFINITY))
            .collect();
        let mut seen_hi: Vec<f64> = comp
            .cells
            .iter()
            .map(|&c| reqs[c].true_value.unwrap_or(f64::NEG_INFINITY))
            .collect();
        for s in neighbours {
            let cell = comp.cells[s];
            let slot = result
                .iter()
                .position(|(c, _)| *c == cell)
                .expect("neighbour is a hidden cell of the component");
            if result[slot].1.failure.is_some() {
                continue;
            }
            let integer = sys.cells[cell].integer;
            let ok = |lo: f64, hi: f64| width(lo, hi, integer) >= 1.0 - EPS;
            // Moves that leave the insider's cell alone keep it at its value.
            if let Some(w) = walker {
                let mut y = w.base.clone();
                let mut touched = Vec::new();
                let x = w.base[s];
                for (dir, target) in [(1.0, x + 1.0), (-1.0, x - 1.0)] {
                    if ok(seen_lo[s], seen_hi[s]) {
                        break;
                    }
                    w.push(moves, s, dir, target, Some(u), &mut y, &mut touched);
                    seen_lo[s] = seen_lo[s].min(y[s]);
                    seen_hi[s] = seen_hi[s].max(y[s]);
                    for &v in &touched {
                        y[v] = w.base[v];
                    }
                    touched.clear();
                }
            }
            for maximise in [true, false] {
                if proof_only || ok(seen_lo[s], seen_hi[s]) {
                    break;
                }
                match comp.solve(&[(s, 1.0)], maximise, Some((u, ins.value))) {
                    Ok(Solved::Value(_, p)) => {
                        for (i, v) in p.into_iter().enumerate() {
                            seen_lo[i] = seen_lo[i].min(v);
                            seen_hi[i] = seen_hi[i].max(v);
                        }
                    }
                    Ok(Solved::Unbounded) => {
                        if maximise {
                            seen_hi[s] = f64::INFINITY;
                        } else {
                            seen_lo[s] = f64::NEG_INFINITY;
                        }
                    }
                    Err(LpError::Infeasible) => break,
                    Err(LpError::Other(e)) => return Err(e),
                }
            }
            if !ok(seen_lo[s], seen_hi[s]) {
                result[slot].1.failure = Some(Failure::Insider(ins.cell));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden() -> LpCell {
        LpCell {
            known: Known::Hidden,
            lower: 0.0,
            integer: true,
        }
    }
    fn exact(v: f64) -> LpCell {
        LpCell {
            known: Known::Exact(v),
            lower: 0.0,
            integer: true,
        }
    }

    #[test]
    fn a_single_suppression_in_a_line_is_pinned() {
        // 5 + x + 20 = 30
        let sys = LpSystem {
            cells: vec![exact(5.0), hidden(), exact(20.0), exact(30.0)],
            constraints: vec![(3, vec![0, 1, 2])],
            grids: Vec::new(),
        };
        let req = Requirement {
            min_width: 1.0,
            min_upper: None,
            true_value: Some(5.0),
        };
        let out = audit(&sys, &[req; 4], &[], Mode::Exact, None).unwrap();
        let a = out[1].unwrap();
        assert_eq!(
            (a.lo.round(), a.hi.round(), a.failure),
            (5.0, 5.0, Some(Failure::Pinned))
        );
    }

    #[test]
    fn an_unconstrained_hidden_total_is_unbounded() {
        let sys = LpSystem {
            cells: vec![hidden(), hidden(), hidden()],
            constraints: vec![(2, vec![0, 1])],
            grids: Vec::new(),
        };
        let req = Requirement {
            min_width: 1.0,
            min_upper: Some(10.0),
            true_value: Some(3.0),
        };
        for mode in [Mode::Exact, Mode::Decide] {
            let out = audit(&sys, &[req; 3], &[], mode, None).unwrap();
            assert!(
                out.iter().all(|a| a.unwrap().failure.is_none()),
                "{mode:?}: {out:?}"
            );
        }
    }
}
