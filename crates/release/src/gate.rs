//! The bridge between a group of tables and the audit: which values an attacker sees, which
//! bounds hold, and what each suppressed cell needs.

use crate::DisclosureRules;
use crate::audit::{Grid, Insider, Known, LpCell, LpSystem, Requirement};
use crate::model::Group;

/// Publication status of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Published (possibly rounded).
    Published,
    /// Suppressed by a primary rule (threshold, zero, dominance, p%).
    Primary,
    /// Suppressed to protect another cell.
    Secondary,
    /// A cell of the system that no released file publishes (a count the evaluation's figures
    /// pass through, such as the treated persons dropped by the caliper).
    Unpublished,
}

impl CellStatus {
    /// Whether the value is written as `[c]`.
    pub fn is_hidden(self) -> bool {
        self != CellStatus::Published
    }
}

/// The audit system of one layer (counts, or one magnitude column) of a group.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub sys: LpSystem,
    pub reqs: Vec<Requirement>,
    pub insiders: Vec<Insider>,
    /// The group cell of each system cell.
    pub cell_of: Vec<usize>,
}

/// Whether a count that no file publishes needs protection: it singles out fewer than the
/// threshold of persons (1 to threshold − 1). A zero that the figures imply (nobody dropped by
/// the caliper) singles out nobody: it may be worked out, as the evaluation's own rules allow.
pub(crate) fn sensitive_count(count: u64, rules: &DisclosureRules) -> bool {
    count > 0 && count < rules.threshold
}

/// The published text value of a sum (rounded to a whole number).
pub(crate) fn published_sum(total: f64) -> f64 {
    total.round()
}

/// The count layer as the attacker sees it, with our true values for witnesses and insiders.
pub(crate) fn count_layer(group: &Group, status: &[CellStatus], rules: &DisclosureRules) -> Layer {
    let half = rules.round_to as f64 / 2.0;
    let mut cells = Vec::with_capacity(group.cells.len());
    let mut reqs = Vec::with_capacity(group.cells.len());
    let mut insiders = Vec::new();
    for (id, cell) in group.cells.iter().enumerate() {
        let known = if group.is_structural(id) {
            Known::Exact(0.0)
        } else if status[id].is_hidden() {
            if cell.count == 1 {
                insiders.push(Insider { cell: id, value: 1.0 });
            }
            Known::Hidden
        } else {
            let v = rules.round(cell.count) as f64;
            if rules.round_to > 1 {
                Known::Interval(v - half, v + half)
            } else {
                Known::Exact(v)
            }
        };
        // A table publishes its zeros when they are not disclosive, so its suppressed cells are
        // non-empty; a cell no file publishes has no such bound.
        let lower = if status[id].is_hidden() && !group.is_unpublished(id) {
            rules.hidden_lower_bound()
        } else {
            0.0
        };
        cells.push(LpCell {
            known,
            lower,
            integer: true,
        });
        // A cell no file publishes may be pinned when it is not sensitive: that is the same as
        // publishing it.
        let required = !group.is_unpublished(id) || sensitive_count(cell.count, rules);
        reqs.push(Requirement {
            min_width: if required { 1.0 } else { 0.0 },
            min_upper: (required && cell.count < rules.threshold).then_some(rules.threshold as f64),
            true_value: Some(cell.count as f64),
        });
    }
    let constraints = group
        .constraints
        .iter()
        .map(|c| (c.total, c.members.clone()))
        .collect();
    let grids = group.tables.iter().map(|t| grid(t, |c| c)).collect();
    let sys = LpSystem {
        cells,
        constraints,
        grids,
    };
    let cell_of = (0..group.cells.len()).collect();
    Layer {
        sys,
        reqs,
        insiders,
        cell_of,
    }
}

/// The grid of a table, its cells numbered as `local` numbers them in a layer.
fn grid(table: &crate::model::GroupTable, local: impl Fn(usize) -> usize) -> Grid {
    Grid {
        extents: table.shape.extents(),
        cells: table.cell_ids.iter().map(|&c| local(c)).collect(),
    }
}

/// Whether a cell is sensitive in a magnitude layer (needs the p% protection width).
pub(crate) fn sum_sensitive(rules: &DisclosureRules, stats: &crate::model::SumStats) -> Option<&'static str> {
    let top_n: f64 = stats.top.iter().take(rules.dominance_n).map(|v| v.abs()).sum();
    if stats.abs_total > 0.0 && top_n > rules.dominance_k * stats.abs_total {
        return Some("dominance");
    }
    let x1 = stats.top.first().map_or(0.0, |v| v.abs());
    let x2 = stats.top.get(1).map_or(0.0, |v| v.abs());
    if x1 > 0.0 && stats.abs_total - x1 - x2 < rules.p_percent * x1 {
        return Some("p_percent");
    }
    None
}

/// One magnitude layer as the attacker sees it.
pub(crate) fn sum_layer(
    group: &Group,
    layer: usize,
    status: &[CellStatus],
    rules: &DisclosureRules,
) -> Layer {
    let info = &group.sum_layers[layer];
    let mut local = vec![usize::MAX; group.cells.len()];
    let mut cell_of = Vec::new();
    let mut cells = Vec::new();
    let mut reqs = Vec::new();
    let mut insiders = Vec::new();
    for (id, cell) in group.cells.iter().enumerate() {
        let Some(cell_stats) = &cell.sums[layer] else {
            continue;
        };
        local[id] = cell_of.len();
        cell_of.push(id);
        let known = if status[id].is_hidden() {
            if cell.count == 1 {
                insiders.push(Insider {
                    cell: local[id],
                    value: cell_stats.total,
                });
            }
            Known::Hidden
        } else {
            let v = published_sum(cell_stats.total);
            if info.integer {
                Known::Exact(v)
            } else {
                Known::Interval(v - 0.5, v + 0.5)
            }
        };
        let lower = if info.nonnegative { 0.0 } else { f64::NEG_INFINITY };
        cells.push(LpCell {
            known,
            lower,
            integer: info.integer,
        });
        let sensitive = cell.count < rules.threshold || sum_sensitive(rules, cell_stats).is_some();
        let x1 = cell_stats.top.first().map_or(0.0, |v| v.abs());
        reqs.push(Requirement {
            min_width: if sensitive {
                (rules.p_percent * x1).max(1.0)
            } else {
                1.0
            },
            min_upper: None,
            true_value: Some(cell_stats.total),
        });
    }
    let constraints = group
        .constraints
        .iter()
        .filter(|c| c.sum_layers.contains(&layer))
        .map(|c| (local[c.total], c.members.iter().map(|&m| local[m]).collect()))
        .collect();
    let grids = group
        .tables
        .iter()
        .filter(|t| t.sum_layer == Some(layer))
        .map(|t| grid(t, |c| local[c]))
        .collect();
    let sys = LpSystem {
        cells,
        constraints,
        grids,
    };
    Layer {
        sys,
        reqs,
        insiders,
        cell_of,
    }
}

/// Primary suppression: the reason each cell is sensitive, if it is.
pub(crate) fn primary(group: &Group, rules: &DisclosureRules) -> Vec<Option<String>> {
    group
        .cells
        .iter()
        .enumerate()
        .map(|(id, cell)| {
            if group.is_unpublished(id) {
                return None;
            }
            if cell.count == 0 {
                return rules.zeros_disclosive.then(|| "zero count".to_owned());
            }
            if cell.count < rules.threshold {
                return Some(format!("count below threshold {}", rules.threshold));
            }
            for (layer, stats) in cell.sums.iter().enumerate() {
                if let Some(stats) = stats
                    && let Some(rule) = sum_sensitive(rules, stats)
                {
                    let column = &group.sum_layers[layer].column;
                    return Some(match rule {
                        "dominance" => format!(
                            "dominance ({}, {}) on {column}",
                            rules.dominance_n, rules.dominance_k
                        ),
                        _ => format!("p% rule ({}) on {column}", rules.p_percent),
                    });
                }
            }
            None
        })
        .collect()
}
