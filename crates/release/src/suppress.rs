//! Primary and secondary suppression of a group of tables.
//!
//! Design (see the crate docs): a cheap structural pass over the lines of the tables, then an
//! LP-checked heuristic in the spirit of sdcTable's SIMPLEHEURISTIC: audit, and for every cell
//! that fails, suppress the cheapest published cell on one of its lines that can widen its
//! interval; repeat until the audit passes.

use std::collections::{HashSet, VecDeque};

use crate::audit::{self, CellAudit, Failure, Mode};
use crate::derive;
use crate::gate::{self, CellStatus, Layer};
use crate::model::Group;
use crate::{DisclosureRules, ReleaseError};

/// The outcome of protecting a group.
#[derive(Debug, Clone)]
pub(crate) struct Protection {
    pub status: Vec<CellStatus>,
    /// Per cell: why it is suppressed (empty when published).
    pub reasons: Vec<String>,
    /// Per cell: the audit of the count layer (hidden cells only).
    pub count_audit: Vec<Option<CellAudit>>,
    /// Per sum layer, per cell: the audit of the magnitude layer (hidden cells only).
    pub sum_audit: Vec<Vec<Option<CellAudit>>>,
    /// LP rounds the heuristic needed.
    pub rounds: usize,
}

struct State<'a> {
    group: &'a Group,
    rules: &'a DisclosureRules,
    status: Vec<CellStatus>,
    reasons: Vec<String>,
    /// Per constraint: how many of its cells are suppressed.
    hidden_in: Vec<u32>,
}

impl State<'_> {
    /// Whether `c` may be suppressed to protect another cell: a published non-empty cell that no
    /// other file publishes, or with `figures`, a known figure the release can write `[c]`.
    fn eligible(&self, c: usize, figures: bool) -> bool {
        self.status[c] == CellStatus::Published
            && self.group.cells[c].count > 0
            && (!self.group.is_known(c) || (figures && self.group.is_hideable(c)))
    }

    /// Whether a hidden cell needs protection: every suppressed cell of a table but one empty by
    /// construction, and a cell no file publishes when it is sensitive.
    fn needs_protection(&self, c: usize) -> bool {
        !self.group.is_structural(c)
            && (!self.group.is_unpublished(c) || gate::sensitive_count(self.group.cells[c].count, self.rules))
    }

    /// Count needed from a partner so that `s` can be widened enough.
    fn need(&self, s: usize, failure: Option<Failure>) -> u64 {
        let count = self.group.cells[s].count;
        match failure {
            Some(Failure::BelowThreshold) | None if count < self.rules.threshold => {
                (self.rules.threshold - count).max(1)
            }
            _ => 1,
        }
    }

    /// The cheapest eligible cell among `candidates`: inner cells before margins (fewest
    /// `Total`s first); then cells whose count meets `need`; then cells that open the fewest
    /// lines without a suppression (so patterns close into cycles instead of spreading); then
    /// the smallest count that meets `need`, else the largest.
    fn cheapest(&self, candidates: impl Iterator<Item = usize>, need: u64, figures: bool) -> Option<usize> {
        candidates
            .filter(|&c| self.eligible(c, figures))
            .min_by_key(|&c| {
                let cell = &self.group.cells[c];
                let meets = cell.count >= need;
                let opens = self.group.cell_constraints[c]
                    .iter()
                    .filter(|&&ci| self.hidden_in[ci] == 0)
                    .count();
                (
                    cell.n_totals,
                    !meets,
                    opens,
                    if meets { cell.count } else { u64::MAX - cell.count },
                    c,
                )
            })
    }

    fn constraint_cells(&self, ci: usize) -> impl Iterator<Item = usize> + '_ {
        let c = &self.group.constraints[ci];
        std::iter::once(c.total).chain(c.members.iter().copied())
    }

    /// A partner for `s`, on the line `line` when given, else on its own lines, then ever
    /// further out: a table cell when there is one anywhere, else a figure the release can
    /// write `[c]` (see [`State::eligible`]).
    /// A cell no file publishes that the figures pin gets a figure that frees it (see
    /// [`State::pinned_partner`]).
    fn partner(&self, s: usize, need: u64, line: Option<usize>) -> Option<usize> {
        if let Some(p) = self.pinned_partner(s) {
            return Some(p);
        }
        [false, true].into_iter().find_map(|figures| {
            line.and_then(|ci| self.cheapest(self.constraint_cells(ci), need, figures))
                .or_else(|| self.partner_in_rings(s, need, figures))
        })
    }

    /// A partner for a cell `s` no file publishes that the lines pin, when withholding figures
    /// can free it: only hiding a cell some derivation of `s` uses can widen it (any other cell
    /// only spreads the suppression), and the figures are what single it out. The figures
    /// (not also a table's cells) are hidden one at a time, the one of a derivation printed in
    /// the fewest places first, until `s` is free; the first is the partner. `None` when
    /// figures alone cannot free it: then the usual search.
    fn pinned_partner(&self, s: usize) -> Option<usize> {
        if !self.group.is_unpublished(s) {
            return None;
        }
        // A figure a table also publishes is the table's to hide.
        let shown = self.group.rendered_cells();
        let figure = |c: usize| self.group.is_known(c) && !shown[c] && self.eligible(c, true);
        let hidden = |c: usize| self.status[c].is_hidden();
        derive::freeing(self.group, hidden, s, figure, |c| self.group.hide_cost(c)).map(|(p, _)| p)
    }

    fn partner_in_rings(&self, s: usize, need: u64, figures: bool) -> Option<usize> {
        let mut seen_cells = HashSet::from([s]);
        let mut frontier = vec![s];
        while !frontier.is_empty() {
            let mut ring = Vec::new();
            for &c in &frontier {
                for &ci in &self.group.cell_constraints[c] {
                    for x in self.constraint_cells(ci) {
                        if seen_cells.insert(x) {
                            ring.push(x);
                        }
                    }
                }
            }
            if let Some(p) = self.cheapest(ring.iter().copied(), need, figures) {
                return Some(p);
            }
            frontier = ring;
        }
        None
    }

    /// The refusal when no published cell is left to protect `s`.
    fn no_partner(&self, s: usize) -> ReleaseError {
        let without_places =
            (0..self.group.cells.len()).any(|c| self.group.is_known(c) && !self.group.is_hideable(c));
        let reason = if self.group.is_unpublished(s) && without_places {
            format!(
                "the evaluation's published figures narrow the count {} below the threshold, no table cell is left to hide, and figures.json does not say where the figures are printed; run the evaluate stage again",
                self.group.cells[s].name
            )
        } else if self.group.is_unpublished(s) {
            format!(
                "the evaluation's published figures narrow the count {} below the threshold, and no table cell is left to hide",
                self.group.cells[s].name
            )
        } else if without_places {
            "no published cell is left to protect a suppressed cell, and figures.json does not say where the figures are printed, so none can be withheld; run the evaluate stage again".into()
        } else {
            "no published cell is left to protect a suppressed cell".into()
        };
        ReleaseError::Refused {
            table: self.group.table_names(),
            reason,
        }
    }

    fn suppress(&mut self, p: usize, protects: usize) {
        for &ci in &self.group.cell_constraints[p] {
            self.hidden_in[ci] += 1;
        }
        self.status[p] = CellStatus::Secondary;
        self.reasons[p] = format!("secondary: protects {}", self.group.cells[protects].name);
    }

    /// The structural pass: every line with a suppressed cell gets at least two; a line with two
    /// where one holds a single person (who knows their own value) gets a third; a line whose
    /// suppressed cells cannot reach the threshold together gets a larger partner.
    fn structural(&mut self) -> Result<(), ReleaseError> {
        let n = self.group.constraints.len();
        let mut queue: VecDeque<usize> = (0..n).collect();
        let mut queued = vec![true; n];
        let lb = u64::from(!self.rules.zeros_disclosive);
        while let Some(ci) = queue.pop_front() {
            queued[ci] = false;
            let hidden: Vec<usize> = self
                .constraint_cells(ci)
                .filter(|&c| self.status[c].is_hidden())
                .collect();
            let total = self.group.constraints[ci].total;
            let cells = &self.group.cells;
            let fix = match hidden.len() {
                0 => None,
                1 => self
                    .needs_protection(hidden[0])
                    .then(|| (hidden[0], self.need(hidden[0], None))),
                // A single person who knows their own cell could subtract it, unless the other
                // cell holds only them (their line's total equal to their cell, or a part of
                // their cell when they are the total).
                2 if hidden.iter().any(|&c| cells[c].count == 1) => {
                    let (u, s) = if cells[hidden[0]].count == 1 {
                        (hidden[0], hidden[1])
                    } else {
                        (hidden[1], hidden[0])
                    };
                    let only_insider = u == total || (s == total && cells[s].count == cells[u].count);
                    (!only_insider && self.needs_protection(s)).then_some((s, 1))
                }
                k if !self.status[total].is_hidden() => {
                    let slack = hidden
                        .iter()
                        .map(|&c| cells[c].count)
                        .sum::<u64>()
                        .saturating_sub(lb * (k as u64 - 1));
                    hidden
                        .iter()
                        .find(|&&c| {
                            cells[c].count < self.rules.threshold
                                && slack < self.rules.threshold
                                && self.needs_protection(c)
                        })
                        .map(|&s| (s, self.rules.threshold - slack + lb))
                }
                _ => None,
            };
            let Some((s, need)) = fix else { continue };
            let Some(p) = self.partner(s, need, Some(ci)) else {
                return Err(self.no_partner(s));
            };
            self.suppress(p, s);
            for &cj in self.group.cell_constraints[p].iter().chain([&ci]) {
                if !queued[cj] {
                    queued[cj] = true;
                    queue.push_back(cj);
                }
            }
        }
        Ok(())
    }

    /// The hypercube pass (after Repsilber's hypercube method, run once before the structural
    /// pass): every primary count of a single-table group gets a whole product move (a
    /// rectangle in two dimensions, a box in three; see the `moves` module) of hidden cells
    /// through it, along which the table can shift far enough to lift the cell to the
    /// threshold. The corners that must shrink need the room for it; the cheapest box is
    /// chosen (fewest new margin cells, then the smallest total count newly hidden), from the
    /// few best partners per dimension. Such a box is exactly what the audit's move witnesses
    /// find, so most cells are then proven safe without an LP. This pass only adds
    /// suppressions; the audit still decides.
    fn hypercubes(&mut self) {
        /// Partners tried per dimension.
        const PARTNERS: usize = 6;
        if self.group.tables.len() != 1 || !self.group.sum_layers.is_empty() {
            return;
        }
        let table = &self.group.tables[0];
        let shape = &table.shape;
        let ext = shape.extents();
        let dims = ext.len();
        let lb = u64::from(!self.rules.zeros_disclosive);
        let mut primaries: Vec<usize> = (0..table.cell_ids.len())
            .filter(|&f| self.status[table.cell_ids[f]] == CellStatus::Primary)
            .collect();
        primaries.sort_by_key(|&f| (self.group.cells[table.cell_ids[f]].count, f));
        let mut corner = vec![0_usize; dims];
        for flat in primaries {
            let x = shape.decode(flat);
            let cell = table.cell_ids[flat];
            let room = self.need(cell, None) + lb;
            // Per dimension: candidate partners, each with whether it keeps the sign (Total).
            let partners: Vec<Vec<usize>> = (0..dims)
                .map(|d| {
                    let mut line: Vec<usize> = (0..ext[d]).filter(|&p| p != x[d]).collect();
                    let neighbour = |p: usize| {
                        let mut y = x.clone();
                        y[d] = p;
                        table.cell_ids[shape.encode(&y)]
                    };
                    line.sort_by_key(|&p| {
                        let c = neighbour(p);
                        let count = self.group.cells[c].count;
                        (
                            shape.is_total(d, p),
                            !self.status[c].is_hidden(),
                            count < room,
                            count,
                            p,
                        )
                    });
                    line.truncate(PARTNERS);
                    line
                })
                .collect();
            if partners.iter().any(Vec::is_empty) {
                continue;
            }
            let mut best: Option<((usize, u64), Vec<usize>)> = None;
            let mut choice = vec![0_usize; dims];
            'boxes: loop {
                let mut cost = (0_usize, 0_u64);
                let mut feasible = true;
                for mask in 0..(1_usize << dims) {
                    let mut negative = false;
                    for d in 0..dims {
                        let p = partners[d][choice[d]];
                        if mask >> d & 1 == 1 {
                            corner[d] = p;
                            negative ^= !shape.is_total(d, p) && !shape.is_total(d, x[d]);
                        } else {
                            corner[d] = x[d];
                        }
                    }
                    let c = table.cell_ids[shape.encode(&corner)];
                    let count = self.group.cells[c].count;
                    if (negative && count < room) || (!self.status[c].is_hidden() && self.group.is_known(c)) {
                        feasible = false;
                        break;
                    }
                    if !self.status[c].is_hidden() {
                        cost.0 += self.group.cells[c].n_totals;
                        cost.1 += count;
                    }
                }
                if feasible && best.as_ref().is_none_or(|(b, _)| cost < *b) {
                    best = Some((
                        cost,
                        choice.iter().enumerate().map(|(d, &i)| partners[d][i]).collect(),
                    ));
                }
                // The next combination of partners.
                for d in 0..dims {
                    choice[d] += 1;
                    if choice[d] < partners[d].len() {
                        continue 'boxes;
                    }
                    choice[d] = 0;
                }
                break;
            }
            let Some((_, chosen)) = best else { continue };
            for mask in 1..(1_usize << dims) {
                for d in 0..dims {
                    corner[d] = if mask >> d & 1 == 1 { chosen[d] } else { x[d] };
                }
                let c = table.cell_ids[shape.encode(&corner)];
                if !self.status[c].is_hidden() {
                    self.suppress(c, cell);
                }
            }
        }
    }

    fn layers(&self) -> Vec<Layer> {
        let mut layers = vec![gate::count_layer(self.group, &self.status, self.rules)];
        for l in 0..self.group.sum_layers.len() {
            layers.push(gate::sum_layer(self.group, l, &self.status, self.rules));
        }
        layers
    }
}

fn solver_error(group: &Group) -> impl FnOnce(String) -> ReleaseError + '_ {
    move |reason| ReleaseError::Solver {
        context: group.table_names(),
        reason,
    }
}

/// Protects a group: primary suppression, then secondary suppression until the audit passes.
/// With `exact_audit`, the final audit computes exact intervals of every suppressed cell.
pub(crate) fn protect(
    group: &Group,
    rules: &DisclosureRules,
    exact_audit: bool,
) -> Result<Protection, ReleaseError> {
    protect_from(group, rules, exact_audit, &[])
}

/// [`protect`], starting from extra suppressed cells (`extra`, marked secondary) on top of the
/// primary suppressions.
pub(crate) fn protect_from(
    group: &Group,
    rules: &DisclosureRules,
    exact_audit: bool,
    extra: &[usize],
) -> Result<Protection, ReleaseError> {
    let mut st = State::new(group, rules);
    for &c in extra {
        if !st.status[c].is_hidden() {
            st.suppress(c, c);
            st.reasons[c] = "secondary: given".into();
        }
    }
    st.hypercubes();
    let (rounds, last_audits) = st.rounds()?;
    // Without `exact_audit`, the round that passed audited exactly the final pattern (components
    // skipped there had passed an earlier round unchanged): its audit is the final one.
    let mut layer_audits = if exact_audit {
        st.final_audit()?
    } else {
        last_audits
    };
    let count_audit = layer_audits.remove(0);
    Ok(Protection {
        status: st.status,
        reasons: st.reasons,
        count_audit,
        sum_audit: layer_audits,
        rounds,
    })
}

/// Per layer, per group cell: its audit.
type LayerAudits = Vec<Vec<Option<CellAudit>>>;

impl<'a> State<'a> {
    /// Primary suppression of a group; the cells no file publishes start hidden.
    fn new(group: &'a Group, rules: &'a DisclosureRules) -> Self {
        let primary = gate::primary(group, rules);
        let status: Vec<CellStatus> = primary
            .iter()
            .enumerate()
            .map(|(c, p)| {
                if group.is_unpublished(c) {
                    CellStatus::Unpublished
                } else if p.is_some() {
                    CellStatus::Primary
                } else {
                    CellStatus::Published
                }
            })
            .collect();
        let hidden_in = group
            .constraints
            .iter()
            .map(|c| {
                std::iter::once(c.total)
                    .chain(c.members.iter().copied())
                    .filter(|&x| status[x].is_hidden())
                    .count() as u32
            })
            .collect();
        State {
            group,
            rules,
            status,
            reasons: primary.into_iter().map(Option::unwrap_or_default).collect(),
            hidden_in,
        }
    }

    /// One audit of every layer: the failing cells, and the audit of every cell.
    fn audit_round(
        &self,
        mode: Mode,
        passed: &mut [HashSet<Vec<usize>>],
    ) -> Result<(Vec<(usize, Failure)>, LayerAudits), ReleaseError> {
        let mut failures: Vec<(usize, Failure)> = Vec::new();
        let mut round_audits = Vec::with_capacity(passed.len());
        for (li, layer) in self.layers().iter().enumerate() {
            let audits = audit::audit(
                &layer.sys,
                &layer.reqs,
                &layer.insiders,
                mode,
                Some(&mut passed[li]),
            )
            .map_err(solver_error(self.group))?;
            let mut per_cell = vec![None; self.group.cells.len()];
            for (local, a) in audits.into_iter().enumerate() {
                if let Some(CellAudit { failure: Some(f), .. }) = a {
                    failures.push((layer.cell_of[local], f));
                }
                per_cell[layer.cell_of[local]] = a;
            }
            round_audits.push(per_cell);
        }
        Ok((failures, round_audits))
    }

    /// A partner for every failing cell (at most one per line per round).
    fn add_partners(&mut self, mut failures: Vec<(usize, Failure)>) -> Result<(), ReleaseError> {
        let group = self.group;
        failures.sort_unstable_by_key(|&(c, _)| c);
        failures.dedup_by_key(|&mut (c, _)| c);
        // A cell no file publishes that the figures pin is protected first: the cells it bounds
        // (its parts) are often narrowed only through it, and follow once it is free.
        let figures = (0..group.cells.len()).any(|c| group.is_hideable(c));
        let pinned = |c: usize| {
            figures
                && group.is_unpublished(c)
                && derive::derivation(group, |x| self.status[x].is_hidden(), c).is_some()
        };
        let (first, rest): (Vec<_>, Vec<_>) = failures.into_iter().partition(|&(c, _)| pinned(c));
        let failures = if first.is_empty() {
            rest
        } else {
            let tables = rest.into_iter().filter(|&(c, _)| !group.is_unpublished(c));
            first.into_iter().chain(tables).collect()
        };
        let mut touched: HashSet<usize> = HashSet::new();
        let mut added = 0;
        for (s, failure) in failures {
            if failure == Failure::Inconsistent {
                return Err(ReleaseError::Solver {
                    context: group.table_names(),
                    reason: "the audit found the table's own values infeasible".into(),
                });
            }
            if group.cell_constraints[s].iter().any(|ci| touched.contains(ci)) {
                continue;
            }
            let need = self.need(s, Some(failure));
            let Some(p) = self.partner(s, need, None) else {
                return Err(self.no_partner(s));
            };
            self.suppress(p, s);
            added += 1;
            touched.extend(group.cell_constraints[p].iter().copied());
            touched.extend(group.cell_constraints[s].iter().copied());
        }
        if added == 0 {
            return Err(ReleaseError::Refused {
                table: group.table_names(),
                reason: "secondary suppression made no progress".into(),
            });
        }
        Ok(())
    }

    /// Audits and adds partners until the audit passes: the rounds taken and the passing
    /// round's audits. Rounds audit in `Mode::Quick` (no LP over a whole large component); when
    /// that stops reducing the failing cells for a few rounds, the rest audit in `Mode::Decide`,
    /// which never reports a failure that an exact LP would not.
    fn rounds(&mut self) -> Result<(usize, LayerAudits), ReleaseError> {
        let group = self.group;
        let mut passed: Vec<HashSet<Vec<usize>>> = vec![HashSet::new(); 1 + group.sum_layers.len()];
        let max_rounds = group.cells.len() + 2;
        let mut round_mode = Mode::Quick;
        let mut best_failing = usize::MAX;
        let mut stalled = 0;
        for rounds in 1..=max_rounds {
            self.structural()?;
            let (failures, round_audits) = self.audit_round(round_mode, &mut passed)?;
            tracing::debug!(tables = %group.table_names(), round = rounds, failing = failures.len(), "suppression audit round");
            if failures.is_empty() {
                return Ok((rounds, round_audits));
            }
            if failures.len() < best_failing {
                best_failing = failures.len();
                stalled = 0;
            } else {
                stalled += 1;
                if stalled >= 3 && round_mode == Mode::Quick {
                    round_mode = Mode::Decide;
                    tracing::debug!(tables = %group.table_names(), round = rounds, "auditing exactly from now on");
                }
            }
            self.add_partners(failures)?;
        }
        Err(ReleaseError::Refused {
            table: group.table_names(),
            reason: format!("secondary suppression did not pass the audit within {max_rounds} rounds"),
        })
    }

    /// The exact audit of the final pattern.
    fn final_audit(&self) -> Result<LayerAudits, ReleaseError> {
        let mut out = Vec::new();
        for layer in self.layers() {
            let audits = audit::audit(&layer.sys, &layer.reqs, &layer.insiders, Mode::Exact, None)
                .map_err(solver_error(self.group))?;
            if let Some(a) = audits.iter().flatten().find(|a| a.failure.is_some()) {
                return Err(ReleaseError::Refused {
                    table: self.group.table_names(),
                    reason: format!("the final audit failed ({:?})", a.failure),
                });
            }
            let mut per_cell = vec![None; self.group.cells.len()];
            for (local, a) in audits.into_iter().enumerate() {
                per_cell[layer.cell_of[local]] = a;
            }
            out.push(per_cell);
        }
        Ok(out)
    }
}
