//! Tests of the whole crate: the published attacks, data-driven protection cases, releases
//! written to a temporary folder, and property tests.

mod attacks;
mod figures;
mod props;
mod release;

use std::collections::HashSet;

use crate::audit::{self, CellAudit, Mode};
use crate::gate::{self, CellStatus};
use crate::model::{Group, Shape, TableData, counts_with_margins};
use crate::{DisclosureRules, protect_table};

/// The independent check (`linklab-check`) of a release, told the rules the release used.
pub(crate) fn independent_check(
    cfg: &crate::ReleaseConfig,
) -> Result<linklab_check::CheckReport, linklab_check::CheckError> {
    let opts = linklab_check::CheckOptions {
        threshold: cfg.rules.threshold,
        zeros_disclosive: cfg.rules.zeros_disclosive,
        round_to: Some(cfg.rules.round_to),
        ..linklab_check::CheckOptions::default()
    };
    linklab_check::check_release(&cfg.release_dir, &opts)
}

pub(crate) fn rules(threshold: u64, zeros_disclosive: bool) -> DisclosureRules {
    DisclosureRules {
        threshold,
        zeros_disclosive,
        ..DisclosureRules::default()
    }
}

/// A count table from its inner cells; dimension `d` has labels `<dim><i>`.
pub(crate) fn table(name: &str, dims: &[&str], sizes: &[usize], inner: &[u64]) -> TableData {
    let shape = Shape {
        dims: dims.iter().map(|d| (*d).to_owned()).collect(),
        labels: dims
            .iter()
            .zip(sizes)
            .map(|(d, &n)| (0..n).map(|i| format!("{d}{i}")).collect())
            .collect(),
    };
    let counts = counts_with_margins(&shape, inner);
    TableData {
        name: name.into(),
        shape,
        counts,
        sums: None,
    }
}

/// The group cell of table `t` at `idx` (`None` = Total).
pub(crate) fn cell(g: &Group, t: usize, idx: &[Option<usize>]) -> usize {
    let shape = &g.tables[t].shape;
    let idx: Vec<usize> = idx
        .iter()
        .enumerate()
        .map(|(d, i)| i.unwrap_or(shape.labels[d].len()))
        .collect();
    g.tables[t].cell_ids[shape.encode(&idx)]
}

/// Audits a given suppression pattern exactly (count layer), with true values known.
pub(crate) fn audit_pattern(g: &Group, rules: &DisclosureRules, hidden: &[usize]) -> Vec<Option<CellAudit>> {
    let hidden: HashSet<usize> = hidden.iter().copied().collect();
    let status: Vec<CellStatus> = (0..g.cells.len())
        .map(|c| {
            if hidden.contains(&c) {
                CellStatus::Secondary
            } else {
                CellStatus::Published
            }
        })
        .collect();
    let layer = gate::count_layer(g, &status, rules);
    audit::audit(&layer.sys, &layer.reqs, &layer.insiders, Mode::Exact, None).expect("the audit solves")
}

/// Renders a protected 2-D table as lines `a b c | total`, `[c]` for suppressed cells.
fn render(sizes: &[usize], counts: &[u64], rules: &DisclosureRules) -> String {
    let t = protect_table(sizes, counts, rules).expect("the table is protected");
    let mut out = String::new();
    for r in (0..sizes[0]).map(Some).chain([None]) {
        let mut line: Vec<String> = Vec::new();
        for c in (0..sizes[1]).map(Some).chain([None]) {
            let cell = t.cell(&[r, c]).expect("cell exists");
            if c.is_none() {
                line.push("|".into());
            }
            line.push(cell.published.map_or_else(|| "[c]".to_owned(), |v| v.to_string()));
        }
        out.push_str(&line.join(" "));
        out.push('\n');
    }
    out
}

/// Data-driven check: protects a 2-D table and compares the published grid.
fn check(rows: &[&[u64]], rules: &DisclosureRules, expected: &str) {
    let sizes = [rows.len(), rows[0].len()];
    let counts: Vec<u64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    let got = render(&sizes, &counts, rules);
    let want: String = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_owned() + "\n")
        .collect();
    assert_eq!(got, want, "published grid of {rows:?}");
}

#[test]
fn check_protects_small_tables_as_expected() {
    let r = rules(10, true);
    // Nothing sensitive: everything is published.
    check(
        &[&[20, 30], &[40, 50]],
        &r,
        "
        20 30 | 50
        40 50 | 90
        60 80 | 140
    ",
    );
    // One small cell: the cheapest rectangle (the least count newly hidden: 20 + 25 + 40
    // against 20 + 11 + 60) that lets it reach the threshold (3 can rise to
    // 3 + min(20, 25) = 23).
    check(
        &[&[3, 20, 30], &[25, 40, 35], &[11, 60, 70]],
        &r,
        "
        [c] [c] 30 | 53
        [c] [c] 35 | 100
        11 60 70 | 141
        39 120 135 | 294
    ",
    );
    // Zeros published when they are not disclosive; never chosen as partners.
    check(
        &[&[0, 20, 4], &[30, 40, 50]],
        &rules(10, false),
        "
        0 [c] [c] | 24
        30 [c] [c] | 120
        30 60 54 | 144
    ",
    );
}
