//! The audit of one component: witnesses first (product moves, neighbourhood LPs, bulk LPs),
//! then an LP of its own for every cell they leave open, then the insiders.

use super::component::{Component, LpError, Solved};
use super::moves::MoveIndex;
use super::walker::MoveWalker;
use super::{
    CellAudit, EPS, Failure, Insider, Known, LpSystem, Mode, QUICK_LP_VARS, Requirement, classify, meets,
    width,
};

/// The component being audited, with what it is audited against.
pub(super) struct Ctx<'a> {
    pub sys: &'a LpSystem,
    pub comp: &'a Component,
    pub reqs: &'a [Requirement],
    pub moves: &'a MoveIndex<'a>,
}

/// What the witnesses of a component have shown so far, per variable: the range of values seen
/// in feasible points, and the bounds of an LP of the cell's own.
struct Seen<'a> {
    cx: &'a Ctx<'a>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    exact_lo: Vec<Option<f64>>,
    exact_hi: Vec<Option<f64>>,
}

impl<'a> Seen<'a> {
    /// Nothing seen yet, or (with every true value known) the true table.
    fn new(cx: &'a Ctx<'a>, all_true: bool) -> Self {
        let n = cx.comp.cells.len();
        let mut seen = Seen {
            cx,
            lo: vec![f64::INFINITY; n],
            hi: vec![f64::NEG_INFINITY; n],
            exact_lo: vec![None; n],
            exact_hi: vec![None; n],
        };
        if all_true {
            for &l in &cx.comp.hidden {
                let v = seen.req(l).true_value.expect("checked by the caller");
                seen.lo[l] = v;
                seen.hi[l] = v;
            }
        }
        seen
    }

    fn req(&self, l: usize) -> &'a Requirement {
        &self.cx.reqs[self.cx.comp.cells[l]]
    }

    fn integer(&self, l: usize) -> bool {
        self.cx.sys.cells[self.cx.comp.cells[l]].integer
    }

    fn satisfied(&self, l: usize) -> bool {
        self.lo[l] <= self.hi[l] && meets(self.req(l), self.lo[l], self.hi[l], self.integer(l))
    }

    fn widen(&mut self, v: usize, y: f64) {
        self.lo[v] = self.lo[v].min(y);
        self.hi[v] = self.hi[v].max(y);
    }

    /// Records a feasible point of the whole component.
    fn record(&mut self, point: &[f64]) {
        for &l in &self.cx.comp.hidden {
            self.widen(l, point[l]);
        }
    }

    /// Product moves of the tables, from the true table.
    fn move_witnesses(&mut self, w: &MoveWalker) {
        let mut y = w.base.clone();
        let mut touched = Vec::new();
        for &l in &self.cx.comp.hidden {
            let x = w.base[l];
            let r = self.req(l);
            let step = r.min_width.max(1.0).ceil();
            let up = r.min_upper.map_or(x + step, |u| u.max(x + step));
            for (dir, target) in [(1.0, up), (-1.0, x - step)] {
                if self.satisfied(l) {
                    break;
                }
                w.push(self.cx.moves, l, dir, target, None, &mut y, &mut touched);
                for &v in &touched {
                    self.widen(v, y[v]);
                    y[v] = w.base[v];
                }
                touched.clear();
            }
        }
    }

    /// Cells the moves left open: an LP over their neighbourhood, every other variable held at
    /// its true value. Its solutions are feasible points of the whole component.
    fn local_witnesses(&mut self, w: &MoveWalker) -> Result<(), String> {
        for &l in &self.cx.comp.hidden {
            for maximise in [true, false] {
                if self.satisfied(l) {
                    break;
                }
                if !maximise && self.req(l).min_upper.is_some_and(|u| self.hi[l] < u - EPS) {
                    break;
                }
                match w.solve_local(self.cx.moves, l, maximise) {
                    Ok(Some(point)) => {
                        for (v, y) in point {
                            self.widen(v, y);
                        }
                    }
                    Ok(None) | Err(LpError::Infeasible) => {}
                    Err(LpError::Other(e)) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Bulk witnesses: push the cells that need a high upper bound up, then the open cells up
    /// and down, all together and with alternating signs.
    fn bulk_witnesses(&mut self) -> Result<(), LpError> {
        let comp = self.cx.comp;
        let needs_upper: Vec<(usize, f64)> = comp
            .hidden
            .iter()
            .filter(|&&l| self.req(l).min_upper.is_some() && !self.satisfied(l))
            .map(|&l| (l, 1.0))
            .collect();
        if !needs_upper.is_empty()
            && let Solved::Value(_, p) = comp.solve(&needs_upper, true, None)?
        {
            self.record(&p);
        }
        for (alternate, maximise) in [(false, true), (false, false), (true, true), (true, false)] {
            let open: Vec<(usize, f64)> = comp
                .hidden
                .iter()
                .filter(|&&l| !self.satisfied(l))
                .enumerate()
                .map(|(k, &l)| (l, if alternate && k % 2 == 1 { -1.0 } else { 1.0 }))
                .collect();
            if open.len() > 1
                && let Solved::Value(_, p) = comp.solve(&open, maximise, None)?
            {
                self.record(&p);
            }
        }
        Ok(())
    }

    /// An LP of its own (max, then min) for every cell the witnesses leave open (every cell,
    /// unless `decide`).
    fn own_lps(&mut self, decide: bool, proof_only: bool) -> Result<(), LpError> {
        let comp = self.cx.comp;
        for &l in &comp.hidden {
            if decide && (proof_only || self.satisfied(l)) {
                continue;
            }
            match comp.solve(&[(l, 1.0)], true, None)? {
                Solved::Value(v, p) => {
                    self.exact_hi[l] = Some(v);
                    self.record(&p);
                }
                Solved::Unbounded => {
                    self.exact_hi[l] = Some(f64::INFINITY);
                    self.hi[l] = f64::INFINITY;
                }
            }
            let below = self
                .req(l)
                .min_upper
                .is_some_and(|u| self.exact_hi[l].is_some_and(|h| h < u - EPS));
            if decide && (self.satisfied(l) || below) {
                continue;
            }
            match comp.solve(&[(l, 1.0)], false, None)? {
                Solved::Value(v, p) => {
                    self.exact_lo[l] = Some(v);
                    self.record(&p);
                }
                Solved::Unbounded => {
                    self.exact_lo[l] = Some(f64::NEG_INFINITY);
                    self.lo[l] = f64::NEG_INFINITY;
                }
            }
        }
        Ok(())
    }

    /// The audit of every hidden cell of the component.
    fn results(&self) -> Vec<(usize, CellAudit)> {
        let comp = self.cx.comp;
        comp.hidden
            .iter()
            .map(|&l| {
                let lo = self.exact_lo[l].unwrap_or(self.lo[l]);
                let hi = self.exact_hi[l].unwrap_or(self.hi[l]);
                let failure = if self.satisfied(l) {
                    None
                } else {
                    classify(self.req(l), lo, hi, self.integer(l))
                };
                (
                    comp.cells[l],
                    CellAudit {
                        lo,
                        hi,
                        exact: self.exact_lo[l].is_some() && self.exact_hi[l].is_some(),
                        failure,
                    },
                )
            })
            .collect()
    }
}

/// Every hidden cell of the component marked inconsistent (no feasible table).
fn inconsistent(comp: &Component) -> Vec<(usize, CellAudit)> {
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
        .collect()
}

/// Audits one component in `mode`.
pub(super) fn audit_component(
    cx: &Ctx,
    insiders: &[Insider],
    mode: Mode,
) -> Result<Vec<(usize, CellAudit)>, String> {
    let comp = cx.comp;
    let all_true = comp
        .hidden
        .iter()
        .all(|&l| cx.reqs[comp.cells[l]].true_value.is_some());
    let mut seen = Seen::new(cx, all_true);
    // With the true table as a feasible point, product moves of the tables witness most cells
    // without an LP.
    let walker = (all_true && !cx.moves.is_empty()).then(|| MoveWalker::new(cx.sys, comp, cx.reqs));
    let decide = mode != Mode::Exact;
    let proof_only = mode == Mode::Quick && walker.is_some() && comp.cells.len() > QUICK_LP_VARS;
    if decide && let Some(w) = &walker {
        seen.move_witnesses(w);
        seen.local_witnesses(w)?;
        tracing::debug!(
            open = comp.hidden.iter().filter(|&&l| !seen.satisfied(l)).count(),
            "after local LPs"
        );
    }
    let solved = if decide && !proof_only {
        seen.bulk_witnesses()
    } else {
        Ok(())
    }
    .and_then(|()| seen.own_lps(decide, proof_only));
    match solved {
        Ok(()) => {}
        Err(LpError::Infeasible) => return Ok(inconsistent(comp)),
        Err(LpError::Other(e)) => return Err(e),
    }
    let mut result = seen.results();
    if all_true {
        insider_checks(cx, insiders, &mut result, walker.as_ref(), proof_only)?;
    }
    Ok(result)
}

/// The hidden cells that share a line with insider variable `u` (value `value`) and need
/// protection. Learning a cell that holds only the insider (the total of their line when it
/// equals their own value, or any part of their own cell when they are the line's total) tells
/// them nothing about anyone else.
fn insider_neighbours(cx: &Ctx, u: usize, value: f64) -> Vec<usize> {
    let comp = cx.comp;
    let true_of = |i: usize| cx.reqs[comp.cells[i]].true_value;
    let mut neighbours: Vec<usize> = comp
        .rows
        .iter()
        .filter(|r| r.terms.iter().any(|&(i, _)| i == u))
        .flat_map(|r| {
            let u_is_total = r.terms.iter().any(|&(i, c)| i == u && c < 0.0);
            r.terms.iter().filter_map(move |&(i, c)| {
                let only_insider = u_is_total || (c < 0.0 && true_of(i) == Some(value));
                (!only_insider).then_some(i)
            })
        })
        .filter(|&i| {
            i != u
                && matches!(cx.sys.cells[comp.cells[i]].known, Known::Hidden)
                && cx.reqs[comp.cells[i]].min_width > 0.0
        })
        .collect();
    neighbours.sort_unstable();
    neighbours.dedup();
    neighbours
}

/// For every insider in the component: fix their cell at its value and check that no hidden
/// cell sharing a constraint with it becomes pinned.
fn insider_checks(
    cx: &Ctx,
    insiders: &[Insider],
    result: &mut [(usize, CellAudit)],
    walker: Option<&MoveWalker>,
    proof_only: bool,
) -> Result<(), String> {
    let comp = cx.comp;
    for ins in insiders {
        let Some(u) = comp.cells.iter().position(|&c| c == ins.cell) else {
            continue;
        };
        let true_values = comp.cells.iter().map(|&c| cx.reqs[c].true_value);
        let mut seen_lo: Vec<f64> = true_values.clone().map(|v| v.unwrap_or(f64::INFINITY)).collect();
        let mut seen_hi: Vec<f64> = true_values.map(|v| v.unwrap_or(f64::NEG_INFINITY)).collect();
        for s in insider_neighbours(cx, u, ins.value) {
            let cell = comp.cells[s];
            let slot = result
                .iter()
                .position(|(c, _)| *c == cell)
                .expect("neighbour is a hidden cell of the component");
            if result[slot].1.failure.is_some() {
                continue;
            }
            let integer = cx.sys.cells[cell].integer;
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
                    w.push(cx.moves, s, dir, target, Some(u), &mut y, &mut touched);
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
