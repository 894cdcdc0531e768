//! The audit trail of a release (`work_dir/release-audit/`): every cell of every table with its
//! true value, status, reason and audited interval, and a pass/fail/review status per table. It
//! never leaves the secure environment.

use std::collections::BTreeMap;

use linklab_store::StoreError;
use serde::Serialize;

use crate::audit::CellAudit;
use crate::gate::CellStatus;
use crate::model::Group;
use crate::suppress::Protection;
use crate::{DisclosureRules, ReleaseError};

/// The audit status of a table, as output checkers (ACRO) use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// Protected and nothing needs a human's attention.
    Pass,
    /// Not protected: refused.
    Fail,
    /// Protected, but a human checker should look (reasons given).
    Review,
}

/// What the release of one table did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    /// The table.
    pub name: String,
    /// Cells including margins.
    pub cells: usize,
    /// Cells suppressed by a primary rule.
    pub primary: usize,
    /// Cells suppressed to protect others.
    pub secondary: usize,
    /// Pass or review.
    pub status: AuditStatus,
    /// Why review.
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
struct AuditCell {
    cell: BTreeMap<String, String>,
    persons: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
    status: CellStatus,
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    published: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum_interval: Option<[String; 2]>,
}

#[derive(Debug, Serialize)]
struct TableAudit<'a> {
    table: &'a str,
    status: AuditStatus,
    reasons: &'a [String],
    jointly_protected_with: Vec<&'a str>,
    rules: &'a DisclosureRules,
    cells: Vec<AuditCell>,
}

/// A bound for the audit trail, rounded to 2 decimals.
fn fmt_bound(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Adding 0.0 turns −0 into 0; `{}` prints whole floats without a fraction.
    let r = (x * 100.0).round() / 100.0 + 0.0;
    format!("{r}")
}

fn interval(a: Option<&CellAudit>) -> Option<[String; 2]> {
    a.map(|a| [fmt_bound(a.lo), fmt_bound(a.hi)])
}

/// The reasons a table needs a human's look (or, for rounding, only a note).
fn review_reasons(group: &Group, t: usize, prot: &Protection, rules: &DisclosureRules) -> Vec<String> {
    let table = &group.tables[t];
    let inner: Vec<usize> = table
        .cell_ids
        .iter()
        .copied()
        .filter(|&id| group.cells[id].n_totals == 0)
        .collect();
    let inner_hidden = inner.iter().filter(|&&id| prot.status[id].is_hidden()).count();
    let mut reasons = Vec::new();
    if !inner.is_empty() && inner_hidden * 2 > inner.len() {
        reasons.push(format!(
            "{inner_hidden} of {} inner cells are suppressed: check the table is still useful",
            inner.len()
        ));
    }
    if table.sum_layer.is_some_and(|l| !group.sum_layers[l].nonnegative) {
        reasons.push("the sum column has negative values: suppressed sums have no lower bound".into());
    }
    if rules.round_to > 1 {
        reasons.push(format!(
            "counts are rounded to base {}: published margins add up only approximately",
            rules.round_to
        ));
    }
    reasons
}

/// Every cell of table `t` of a protected group as the audit trail shows it. A cell of the
/// evaluation's figures is `published` with its count (the figures print it), a cell no file
/// publishes as `-`.
fn audit_cells(group: &Group, t: usize, prot: &Protection, rules: &DisclosureRules) -> Vec<AuditCell> {
    let table = &group.tables[t];
    let mut cells = Vec::with_capacity(table.cell_ids.len());
    for (flat, &id) in table.cell_ids.iter().enumerate() {
        let idx = table.shape.decode(flat);
        let c = &group.cells[id];
        let status = prot.status[id];
        cells.push(AuditCell {
            cell: idx
                .iter()
                .enumerate()
                .map(|(d, &i)| (table.shape.dims[d].clone(), table.shape.label(d, i).to_owned()))
                .collect(),
            persons: c.count,
            sum: table.sum_layer.and_then(|l| c.sums[l].as_ref().map(|s| s.total)),
            status,
            reason: prot.reasons[id].clone(),
            published: if status == CellStatus::Unpublished {
                "-".into()
            } else if status.is_hidden() {
                "[c]".into()
            } else {
                rules.round(c.count).to_string()
            },
            interval: interval(prot.count_audit[id].as_ref()),
            sum_interval: table
                .sum_layer
                .and_then(|l| interval(prot.sum_audit[l][id].as_ref())),
        });
    }
    cells
}

/// The audit trail of the evaluation's figures audited with a group (JSON bytes): every cell of
/// the unrendered tables that carry them, `None` when the group has none.
pub(crate) fn figures_trail(
    group: &Group,
    source: &str,
    prot: &Protection,
    rules: &DisclosureRules,
) -> Result<Option<Vec<u8>>, ReleaseError> {
    #[derive(Serialize)]
    struct FiguresAudit<'a> {
        source: &'a str,
        tables: Vec<FigureTable<'a>>,
    }
    #[derive(Serialize)]
    struct FigureTable<'a> {
        table: &'a str,
        cells: Vec<AuditCell>,
    }
    let tables: Vec<FigureTable> = (0..group.tables.len())
        .filter(|&t| !group.tables[t].rendered)
        .map(|t| FigureTable {
            table: &group.tables[t].name,
            cells: audit_cells(group, t, prot, rules),
        })
        .collect();
    if tables.is_empty() {
        return Ok(None);
    }
    let mut json = serde_json::to_vec_pretty(&FiguresAudit { source, tables }).map_err(|e| {
        StoreError::io("cannot render", "figures.audit.json")(std::io::Error::other(e.to_string()))
    })?;
    json.push(b'\n');
    Ok(Some(json))
}

/// The audit trail of table `t` of a protected group (JSON bytes) and its summary.
pub(crate) fn table_trail(
    group: &Group,
    t: usize,
    prot: &Protection,
    rules: &DisclosureRules,
) -> Result<(Vec<u8>, TableSummary), ReleaseError> {
    let table = &group.tables[t];
    let cells = audit_cells(group, t, prot, rules);
    let count = |s: CellStatus| cells.iter().filter(|c| c.status == s).count();
    let (primary, secondary) = (count(CellStatus::Primary), count(CellStatus::Secondary));
    let reasons = review_reasons(group, t, prot, rules);
    let status = if reasons.iter().any(|r| !r.starts_with("counts are rounded")) {
        AuditStatus::Review
    } else {
        AuditStatus::Pass
    };
    let audit = TableAudit {
        table: &table.name,
        status,
        reasons: &reasons,
        jointly_protected_with: group
            .tables
            .iter()
            .filter(|o| o.rendered && o.name != table.name)
            .map(|o| o.name.as_str())
            .collect(),
        rules,
        cells,
    };
    let mut json = serde_json::to_vec_pretty(&audit).map_err(|e| {
        StoreError::io("cannot render", format!("{}.audit.json", table.name))(std::io::Error::other(
            e.to_string(),
        ))
    })?;
    json.push(b'\n');
    let summary = TableSummary {
        name: table.name.clone(),
        cells: table.cell_ids.len(),
        primary,
        secondary,
        status,
        reasons,
    };
    Ok((json, summary))
}
