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

mod component;
mod moves;
mod walker;
mod witness;

use std::collections::HashSet;

use component::components;

use moves::MoveIndex;

/// How many partners per dimension span the box of a neighbourhood LP.
pub(super) const LOCAL_PARTNERS: usize = 14;

/// Numerical tolerance of the LP solutions.
pub(super) const EPS: f64 = 1e-6;

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
pub(super) const QUICK_LP_VARS: usize = 1500;

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
        let cx = witness::Ctx {
            sys,
            comp: &comp,
            reqs,
            moves: &moves,
        };
        let result = witness::audit_component(&cx, insiders, mode)?;
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
