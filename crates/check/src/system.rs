//! The attacker's linear system over everything published, and the LP that pins or narrows.
//!
//! Variables are person counts (and magnitude sums) identified by their source, their layer and
//! their (dimension, value) pairs, so the same cell in two files is one variable. A variable is
//! *published* (an exact value, or an interval when counts are rounded), *suppressed* (written
//! `[c]` somewhere) or *derived* (never printed, but tied to the others by a relation, such as a
//! group's count of women behind a mean in `balance.csv`). Relations are linear rows
//! `lo ≤ Σ coef·x ≤ hi`.

use std::collections::HashMap;

use good_lp::solvers::microlp::microlp;
use good_lp::{Expression, ProblemVariables, ResolutionError, Solution, SolverModel, Variable, variable};

use crate::{CheckError, CheckReport, Rules};

/// A relation with its constants folded in: terms, bounds, and the index of its [`Row`].
type Reduced = (Vec<(usize, f64)>, f64, f64, usize);
/// A relation of one component's LP: terms over local variables, and bounds.
type LpRow = (Vec<(usize, f64)>, f64, f64);

/// The root of `x` in a union-find forest (with path halving).
fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Tolerance for LP bounds.
const EPS: f64 = 1e-6;

/// A cell's (dimension, value) pairs, sorted, margins left out.
pub(crate) type CellKey = Vec<(String, String)>;

/// What a variable counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Persons: whole, at least 0.
    Count,
    /// A magnitude sum, bounded below by 0 when every contribution is.
    Sum { nonnegative: bool },
}

#[derive(Debug)]
pub(crate) struct Var {
    /// Where it was first seen: file and cell.
    pub file: String,
    pub cell: String,
    pub kind: Kind,
    /// The published interval, if it was published anywhere.
    pub shown: Option<(f64, f64)>,
    /// Whether it was written `[c]` somewhere.
    pub hidden: bool,
    /// Whether a derived value of 0 is safe (a count no file prints that singles out nobody
    /// when it is empty, such as the treated persons dropped by the caliper).
    pub zero_ok: bool,
}

#[derive(Debug)]
struct Row {
    terms: Vec<(usize, f64)>,
    lo: f64,
    hi: f64,
    file: String,
    cell: String,
}

/// The whole system.
#[derive(Debug, Default)]
pub(crate) struct System {
    pub vars: Vec<Var>,
    index: HashMap<(String, String, CellKey), usize>,
    rows: Vec<Row>,
}

/// The text of a bound in a message: whole numbers without a fraction, `inf` when unbounded.
fn bound(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let r = (x * 100.0).round() / 100.0 + 0.0;
    format!("{r}")
}

impl System {
    /// The variable of a cell, made on first use.
    pub fn var(
        &mut self,
        source: &str,
        layer: &str,
        key: CellKey,
        kind: Kind,
        file: &str,
        cell: &str,
    ) -> usize {
        let n = self.vars.len();
        *self
            .index
            .entry((source.to_owned(), layer.to_owned(), key))
            .or_insert_with(|| {
                self.vars.push(Var {
                    file: file.to_owned(),
                    cell: cell.to_owned(),
                    kind,
                    shown: None,
                    hidden: false,
                    zero_ok: false,
                });
                n
            })
    }

    /// Records a published value (an interval when rounded); a second, different value of the
    /// same cell is a problem.
    pub fn publish(&mut self, id: usize, lo: f64, hi: f64, file: &str, cell: &str, report: &mut CheckReport) {
        let v = &mut self.vars[id];
        match v.shown {
            None => v.shown = Some((lo, hi)),
            Some((a, b)) if (a - lo).abs() > EPS || (b - hi).abs() > EPS => report.push(
                file,
                cell,
                format!("differs from the same cell published in {} ({})", v.file, v.cell),
            ),
            Some(_) => {}
        }
    }

    /// The keys of every variable of a source's layer.
    pub fn keys(&self, source: &str, layer: &str) -> Vec<CellKey> {
        let mut keys: Vec<CellKey> = self
            .index
            .keys()
            .filter(|(s, l, _)| s == source && l == layer)
            .map(|(_, _, k)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Records that a derived value of 0 of a variable singles out nobody.
    pub fn zero_ok(&mut self, id: usize) {
        self.vars[id].zero_ok = true;
    }

    /// Records that a cell is written `[c]`.
    pub fn hide(&mut self, id: usize) {
        self.vars[id].hidden = true;
    }

    /// Adds the relation `lo ≤ Σ coef·x ≤ hi`, named by the file and cell it comes from.
    pub fn relate(&mut self, terms: Vec<(usize, f64)>, lo: f64, hi: f64, file: &str, cell: &str) {
        self.rows.push(Row {
            terms,
            lo,
            hi,
            file: file.to_owned(),
            cell: cell.to_owned(),
        });
    }

    /// The bounds every value of a variable is known to respect (published interval, or 0 or 1
    /// below for a count).
    fn bounds(&self, id: usize, rules: &Rules) -> (f64, f64) {
        let v = &self.vars[id];
        let lower = match v.kind {
            // A suppressed count is non-empty when zeros are published (they would be shown).
            Kind::Count if v.hidden && !rules.zeros_disclosive => 1.0,
            Kind::Count | Kind::Sum { nonnegative: true } => 0.0,
            Kind::Sum { nonnegative: false } => f64::NEG_INFINITY,
        };
        match v.shown {
            Some((lo, hi)) => (lo.max(lower.min(hi)), hi),
            None => (lower, f64::INFINITY),
        }
    }

    /// Whether a variable is a constant of the system (published exactly).
    fn constant(&self, id: usize, rules: &Rules) -> Option<f64> {
        let (lo, hi) = self.bounds(id, rules);
        ((hi - lo).abs() < EPS).then_some(lo)
    }

    /// Every relation with the exactly published variables folded into its bounds, and the
    /// relations left with no variable (`(row, lo, hi)`, to be checked against 0).
    fn reduce(&self, rules: &Rules) -> (Vec<Reduced>, Vec<(usize, f64, f64)>) {
        let mut reduced = Vec::new();
        let mut constant = Vec::new();
        for (ri, row) in self.rows.iter().enumerate() {
            let (mut lo, mut hi) = (row.lo, row.hi);
            let mut terms = Vec::new();
            for &(id, c) in &row.terms {
                match self.constant(id, rules) {
                    Some(v) => {
                        lo -= c * v;
                        hi -= c * v;
                    }
                    None => terms.push((id, c)),
                }
            }
            if terms.is_empty() {
                constant.push((ri, lo, hi));
            } else {
                reduced.push((terms, lo, hi, ri));
            }
        }
        (reduced, constant)
    }

    /// The connected components of the reduced relations (relations that share a variable), as
    /// lists of indices into `reduced`, in a stable order.
    fn components(&self, reduced: &[Reduced]) -> Vec<Vec<usize>> {
        let mut parent: Vec<usize> = (0..self.vars.len()).collect();
        for r in reduced {
            for w in r.0.windows(2) {
                let (a, b) = (find(&mut parent, w[0].0), find(&mut parent, w[1].0));
                parent[a] = b;
            }
        }
        let mut components: HashMap<usize, Vec<usize>> = HashMap::new();
        for (k, r) in reduced.iter().enumerate() {
            let root = find(&mut parent, r.0[0].0);
            components.entry(root).or_default().push(k);
        }
        let mut roots: Vec<usize> = components.keys().copied().collect();
        roots.sort_unstable();
        roots
            .into_iter()
            .map(|root| components.remove(&root).unwrap_or_default())
            .collect()
    }

    /// One component's LP: its variables, their bounds, and its relations over local indices.
    fn component_lp(&self, rows: &[&Reduced], rules: &Rules) -> (Vec<usize>, Vec<(f64, f64)>, Vec<LpRow>) {
        let mut vars: Vec<usize> = rows.iter().flat_map(|r| r.0.iter().map(|t| t.0)).collect();
        vars.sort_unstable();
        vars.dedup();
        let local: HashMap<usize, usize> = vars.iter().enumerate().map(|(i, &v)| (v, i)).collect();
        let bounds: Vec<(f64, f64)> = vars.iter().map(|&v| self.bounds(v, rules)).collect();
        let lp_rows: Vec<LpRow> = rows
            .iter()
            .map(|r| (r.0.iter().map(|&(v, c)| (local[&v], c)).collect(), r.1, r.2))
            .collect();
        (vars, bounds, lp_rows)
    }

    /// The smallest value the system built so far allows a variable: its published value, else
    /// the LP minimum over the relations of its component, else its own lower bound. `None`
    /// when those relations contradict each other (the attack reports it).
    pub fn least(&self, id: usize, rules: &Rules) -> Result<Option<f64>, CheckError> {
        if let Some(v) = self.constant(id, rules) {
            return Ok(Some(v));
        }
        let (reduced, _) = self.reduce(rules);
        let Some(component) = self
            .components(&reduced)
            .into_iter()
            .find(|c| c.iter().any(|&k| reduced[k].0.iter().any(|t| t.0 == id)))
        else {
            return Ok(Some(self.bounds(id, rules).0));
        };
        let rows: Vec<&Reduced> = component.iter().map(|&k| &reduced[k]).collect();
        let (vars, bounds, lp_rows) = self.component_lp(&rows, rules);
        let Ok(i) = vars.binary_search(&id) else {
            return Ok(Some(self.bounds(id, rules).0));
        };
        let solved = solve_lp(&bounds, &lp_rows, Some((i, false))).map_err(|reason| CheckError::Solver {
            context: format!("{}: {}", self.vars[id].file, self.vars[id].cell),
            reason,
        })?;
        Ok(solved.map(|(value, _)| value))
    }

    /// Runs the attack: checks every relation whose cells are all constants, then solves every
    /// connected component of the rest for the smallest and largest value of each unpublished
    /// cell, and reports what an attacker could pin or narrow.
    pub fn attack(&self, rules: &Rules, report: &mut CheckReport) -> Result<(), CheckError> {
        for v in &self.vars {
            if v.hidden && v.shown.is_some() {
                report.push(
                    &v.file,
                    &v.cell,
                    "suppressed in one file but published in another",
                );
            }
        }
        let (reduced, constant) = self.reduce(rules);
        for (ri, lo, hi) in constant {
            let row = &self.rows[ri];
            if lo > EPS * (1.0 + row.lo.abs()) || hi < -EPS * (1.0 + row.hi.abs()) {
                report.push(
                    &row.file,
                    &row.cell,
                    "the published figures do not add up: a total differs from the sum of its cells",
                );
            }
        }
        for component in self.components(&reduced) {
            let rows: Vec<&Reduced> = component.iter().map(|&k| &reduced[k]).collect();
            self.attack_component(&rows, rules, report)?;
        }
        Ok(())
    }

    fn attack_component(
        &self,
        rows: &[&Reduced],
        rules: &Rules,
        report: &mut CheckReport,
    ) -> Result<(), CheckError> {
        let (vars, bounds, lp_rows) = self.component_lp(rows, rules);
        let first = &self.rows[rows[0].3];
        let solve = |objective: Option<(usize, bool)>| -> Result<Option<(f64, Vec<f64>)>, CheckError> {
            solve_lp(&bounds, &lp_rows, objective).map_err(|reason| CheckError::Solver {
                context: format!("{}: {}", first.file, first.cell),
                reason,
            })
        };
        // A first feasible point; none means the published figures contradict each other.
        let Some((_, point)) = solve(None)? else {
            report.push(
                &first.file,
                &first.cell,
                "the published figures contradict each other: no table agrees with all of them",
            );
            return Ok(());
        };
        let mut seen_lo = point.clone();
        let mut seen_hi = point;
        let t = rules.threshold as f64;
        for (i, &id) in vars.iter().enumerate() {
            let v = &self.vars[id];
            if v.shown.is_some() {
                continue;
            }
            let (lower, _) = bounds[i];
            let need = |lo: f64, hi: f64| match v.kind {
                Kind::Count => hi < (lo.ceil() + 1.0).max(t) - EPS,
                Kind::Sum { .. } => hi - lo < 1.0 - EPS,
            };
            let mut lo = seen_lo[i];
            if lo > lower + EPS {
                match solve(Some((i, false)))? {
                    Some((value, p)) => {
                        lo = value;
                        widen(&mut seen_lo, &mut seen_hi, &p);
                    }
                    None => lo = f64::NEG_INFINITY,
                }
            } else {
                lo = lower;
            }
            let mut hi = seen_hi[i];
            if need(lo, hi) {
                match solve(Some((i, true)))? {
                    Some((value, p)) => {
                        hi = value;
                        widen(&mut seen_lo, &mut seen_hi, &p);
                    }
                    None => hi = f64::INFINITY,
                }
            }
            if let Some(reason) = judge(v, lo, hi, rules) {
                report.push(&v.file, &v.cell, reason);
            }
        }
        Ok(())
    }
}

fn widen(seen_lo: &mut [f64], seen_hi: &mut [f64], point: &[f64]) {
    for (k, &x) in point.iter().enumerate() {
        seen_lo[k] = seen_lo[k].min(x);
        seen_hi[k] = seen_hi[k].max(x);
    }
}

/// What an attacker learns about an unpublished variable whose values lie in `[lo, hi]`.
fn judge(v: &Var, lo: f64, hi: f64, rules: &Rules) -> Option<String> {
    let what = if v.hidden { "suppressed" } else { "unpublished" };
    match v.kind {
        Kind::Sum { .. } => (v.hidden && hi - lo < 1.0 - EPS).then(|| {
            format!(
                "suppressed sum can be worked out from the published figures: it lies in [{}, {}]",
                bound(lo),
                bound(hi)
            )
        }),
        Kind::Count => {
            let (l, h) = ((lo - EPS).ceil(), (hi + EPS).floor());
            let t = rules.threshold as f64;
            // A count that is zero by construction, or that singles out nobody when empty
            // (nobody dropped by the caliper), tells nothing when it is worked out to be 0.
            if v.zero_ok && h < 1.0 {
                return None;
            }
            let pinned = l >= h;
            let small = h < t && (l >= 1.0 || (rules.zeros_disclosive && h < 1.0 && !v.zero_ok));
            let narrowed = rules.zeros_disclosive && l >= 1.0 && h < t;
            if (v.hidden && (pinned || narrowed)) || (!v.hidden && small) {
                Some(format!(
                    "{what} count can be worked out from the published figures: it lies in [{}, {}]{}",
                    bound(l),
                    bound(h),
                    if pinned {
                        ""
                    } else {
                        ", strictly between 0 and the threshold"
                    }
                ))
            } else {
                None
            }
        }
    }
}

/// Solves one LP over the component: `None` objective finds any feasible point. Returns the
/// objective's value and the point, or `None` when infeasible (no objective) or unbounded.
fn solve_lp(
    bounds: &[(f64, f64)],
    rows: &[LpRow],
    objective: Option<(usize, bool)>,
) -> Result<Option<(f64, Vec<f64>)>, String> {
    let mut pv = ProblemVariables::new();
    let xs: Vec<Variable> = bounds
        .iter()
        .map(|&(lo, hi)| {
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
    let (obj, maximise): (Expression, bool) = match objective {
        Some((i, max)) => (xs[i].into(), max),
        None => (Expression::from(0.0), false),
    };
    let mut model = if maximise {
        pv.maximise(obj)
    } else {
        pv.minimise(obj)
    }
    .using(microlp);
    for (terms, lo, hi) in rows {
        let e: Expression = terms.iter().map(|&(i, c)| c * xs[i]).sum();
        if (hi - lo).abs() < EPS {
            model.add_constraint(e.eq(*lo));
        } else {
            if lo.is_finite() {
                model.add_constraint(e.clone().geq(*lo));
            }
            if hi.is_finite() {
                model.add_constraint(e.leq(*hi));
            }
        }
    }
    match model.solve() {
        Ok(sol) => {
            let point: Vec<f64> = xs.iter().map(|&x| sol.value(x)).collect();
            let value = objective.map_or(0.0, |(i, _)| point[i]);
            Ok(Some((value, point)))
        }
        Err(ResolutionError::Unbounded | ResolutionError::Infeasible) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
