//! `evaluation/figures.json`: the person counts that the published figures imply, as cells of
//! the `evaluation` source (issue 12, "every published number is a cell of one system").
//!
//! Each cell is keyed by sorted (dimension, value) pairs, the way the release stage keys the
//! cells of tables `from = "evaluation"`: `treated` (`true`/`false`), `group` (`treated`/
//! `comparison`), a text covariate (its label after rare levels are merged; a missing value is
//! `Unknown`), a rate outcome (`0`/`1`, over the outcome's own matched sample, with
//! `<outcome> sample` = `counted` when the outcome leaves someone out), and `<outcome> sample` =
//! `left out` for the matched persons an outcome leaves out (`unknown = "exclude"`,
//! `data_cutoff`, `deaths`), implied by its own group sizes beside the whole groups' (the frame's
//! column `<outcome> sample` holds both values, see `output::in_sample`). A cell
//! is listed only when a figure that implies it is published (not `[c]`): the eligible group
//! sizes and the persons dropped by the caliper in the report, the matched group sizes of
//! `impact.csv`, the before-matching (treated/untreated) and after-matching (treated/comparison)
//! proportions of each published balance level times its group size, and a published rate's
//! events and non-events per matched group.
//!
//! Each cell also lists its *places* (see [`place`]): where every value that implies it is
//! printed, and `report.html` marks those values (`data-figure`, see `report`).
//!
//! The file stays in `work_dir`. The release stage reads it: every cell listed here is a known
//! cell of the `evaluation` source's system, audited jointly with the tables of the frame and
//! with the cells the figures pass through (such as the treated persons dropped by the caliper);
//! a cell listed here is chosen for secondary suppression only when no table cell is left, and
//! when one must be hidden the release writes `[c]` at all its places and audits again (see
//! `ARCHITECTURE.md`, "Disclosure model").

use std::collections::BTreeMap;

use serde::Serialize;

use crate::csv::Table;
use crate::design::MISSING;
use crate::frame::{CovValues, Frame, Measure};
use crate::matching::Matching;
use crate::publish::matched_rows;

/// The format name of `figures.json`.
pub(crate) const FIGURES_FORMAT: &str = "linklab-evaluation-figures-v1";

/// The label of a missing value in tables of the release stage.
const UNKNOWN: &str = "Unknown";

/// One implied count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FigureCell {
    /// Sorted (dimension, value) pairs.
    pub key: Vec<(String, String)>,
    /// Distinct persons.
    pub persons: u64,
    /// The published figures that imply it, e.g. `balance.csv sex=F treated_mean_before`.
    pub figures: Vec<String>,
    /// Where every value that implies it is printed (see [`place`]): the release stage writes
    /// `[c]` there when it must withhold the cell.
    pub places: Vec<String>,
}

/// A place where a figure is printed: `<file>:<row>:<column>`, the 0-based data row of a
/// published CSV, or `report.html:<what>:<value>` for a count the report alone prints. In
/// `report.html` every element that prints a value of a place carries `data-figure="<places>"`
/// (see `report`), so the release stage can write `[c]` in it.
pub(crate) fn place(file: &str, row: impl std::fmt::Display, column: &str) -> String {
    format!("{file}:{row}:{column}")
}

/// The columns of an `impact.csv` row that hold its values (after the outcome, its measure and
/// the group sizes).
pub(crate) fn impact_value_columns() -> &'static [&'static str] {
    &linklab_store::IMPACT_COLUMNS[4..]
}

/// The places of every value of an `impact.csv` row.
pub(crate) fn value_places(row: usize) -> Vec<String> {
    impact_value_columns()
        .iter()
        .map(|c| place("impact.csv", row, c))
        .collect()
}

/// The columns of an `impact.csv` row that are built on a group's persons (its value, and the
/// difference, interval and p-values that compare it).
pub(crate) fn impact_values(group_value: &str) -> [&str; 6] {
    [
        group_value,
        "difference",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
    ]
}

/// The places of the values built on a whole arm: for a matched group, its size and values in
/// every `impact.csv` row, its balance means and the standardised differences after matching,
/// and its Kaplan–Meier steps; for an arm before matching, its size in the report, its balance
/// means and the standardised differences before matching. A mean of a withheld group would
/// give its size back, so all go together.
fn arm_places(dim: &str, value: &str, impact: &Table, balance: &Table, survival: &Table) -> Vec<String> {
    let mut out = Vec::new();
    let (size, group_value, mean, smd) = match (dim, value) {
        ("treated", "true") => (None, None, "treated_mean_before", "smd_before"),
        ("treated", _) => (None, None, "untreated_mean_before", "smd_before"),
        (_, "treated") => (
            Some("treated_persons"),
            Some("treated_value"),
            "treated_mean",
            "smd_after",
        ),
        _ => (
            Some("comparison_persons"),
            Some("comparison_value"),
            "comparison_mean",
            "smd_after",
        ),
    };
    if dim == "treated" {
        out.push(place("report.html", "eligible", value));
    }
    for (i, _) in impact.rows().enumerate() {
        out.extend(size.map(|c| place("impact.csv", i, c)));
        if let Some(v) = group_value {
            out.extend(impact_values(v).iter().map(|c| place("impact.csv", i, c)));
        }
    }
    for (i, _) in balance.rows().enumerate() {
        out.extend([mean, smd].iter().map(|c| place("balance.csv", i, c)));
    }
    for (i, row) in survival.rows().enumerate() {
        if dim == "group" && row.get("group") == value {
            out.extend(
                ["at_risk", "events", "survival"]
                    .iter()
                    .map(|c| place("survival.csv", i, c)),
            );
        }
    }
    out
}

/// The whole file.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figures {
    pub format: &'static str,
    pub source: &'static str,
    pub cells: Vec<FigureCell>,
}

/// The arms of the evaluation: the dimension and value naming each, and its persons.
/// An arm: the dimension and value naming it, and its persons.
type Arm = ((&'static str, &'static str), Vec<usize>);

fn arms(frame: &Frame, matching: &Matching) -> [Arm; 4] {
    let (treated, comparison) = matched_rows(matching);
    let n = frame.treated.len();
    [
        (
            ("treated", "true"),
            (0..n).filter(|&i| frame.treated[i]).collect(),
        ),
        (
            ("treated", "false"),
            (0..n).filter(|&i| !frame.treated[i]).collect(),
        ),
        (("group", "treated"), treated),
        (("group", "comparison"), comparison),
    ]
}

/// What the evaluation publishes: its three CSV texts, whether the report prints the arms'
/// sizes before matching, and the treated persons dropped by the caliper when it prints how
/// many.
pub(crate) struct Published<'a> {
    pub impact: &'a str,
    pub balance: &'a str,
    pub survival: &'a str,
    pub eligible: bool,
    pub dropped: Option<u64>,
}

impl<'a> Published<'a> {
    /// What the report publishes beside the three files: the arms' sizes before matching when
    /// both are printed, and the dropped persons when their count is.
    pub fn new(impact: &'a str, balance: &'a str, survival: &'a str, meta: &crate::ReportMeta) -> Self {
        let printed = |cell: &str| cell != crate::publish::SUPPRESSED;
        Published {
            impact,
            balance,
            survival,
            eligible: printed(&meta.treated_eligible) && printed(&meta.untreated_eligible),
            dropped: meta.dropped_by_caliper.parse().ok(),
        }
    }
}

/// The figure cells found so far, by key.
#[derive(Default)]
struct Cells(BTreeMap<Vec<(String, String)>, FigureCell>);

impl Cells {
    /// Adds a figure implying the cell `key` of `persons`, printed at `places`.
    fn add(&mut self, key: Vec<(&str, &str)>, persons: usize, figure: String, places: Vec<String>) {
        let mut key: Vec<(String, String)> = key
            .into_iter()
            .map(|(d, v)| (d.to_owned(), v.to_owned()))
            .collect();
        key.sort();
        let cell = self.0.entry(key.clone()).or_insert_with(|| FigureCell {
            key,
            persons: persons as u64,
            figures: Vec::new(),
            places: Vec::new(),
        });
        cell.figures.push(figure);
        for p in places {
            if !cell.places.contains(&p) {
                cell.places.push(p);
            }
        }
    }
}

/// The counts implied by the published `impact.csv`, `balance.csv` and report sizes, with the
/// places where each is printed.
pub(crate) fn implied_counts(frame: &Frame, matching: &Matching, published: &Published<'_>) -> Figures {
    let mut cells = Cells::default();
    let arms = arms(frame, matching);
    let impact = Table::parse(published.impact);
    let balance = Table::parse(published.balance);
    let survival = Table::parse(published.survival);
    let eligible_published = published.eligible;
    // The treated persons the caliper dropped, when the report prints how many.
    if let Some(dropped) = published.dropped.filter(|&d| d > 0) {
        cells.add(
            vec![("treated", "true"), ("group", UNKNOWN)],
            dropped as usize,
            "report.html dropped by the caliper".to_owned(),
            vec![place("report.html", "dropped", "true")],
        );
    }
    // Group sizes.
    for ((dim, value), rows) in &arms {
        let published = if *dim == "treated" {
            eligible_published
        } else {
            let column = if *value == "treated" {
                "treated_persons"
            } else {
                "comparison_persons"
            };
            impact.rows().any(|r| r.num(column).is_some())
        };
        if published {
            cells.add(
                vec![(dim, value)],
                rows.len(),
                format!("group size {dim}={value}"),
                arm_places(dim, value, &impact, &balance, &survival),
            );
        }
    }
    // Balance levels of text covariates: proportion × group size.
    let columns = [
        "treated_mean_before",
        "untreated_mean_before",
        "treated_mean",
        "comparison_mean",
    ];
    for cov in &frame.covariates {
        let CovValues::Text(values) = &cov.values else {
            continue;
        };
        for (i, row) in balance
            .rows()
            .enumerate()
            .filter(|(_, r)| r.get("covariate") == cov.name)
        {
            let level = row.get("level");
            let label = if level == MISSING { UNKNOWN } else { level };
            let wanted = (level != MISSING).then_some(level);
            for (((dim, value), rows), column) in arms.iter().zip(columns) {
                if row.num(column).is_none() {
                    continue;
                }
                let persons = rows.iter().filter(|&&r| values[r].as_deref() == wanted).count();
                let smd = if *dim == "treated" {
                    "smd_before"
                } else {
                    "smd_after"
                };
                cells.add(
                    vec![(dim, value), (&cov.name, label)],
                    persons,
                    format!("balance.csv {}={level} {column}", cov.name),
                    vec![place("balance.csv", i, column), place("balance.csv", i, smd)],
                );
            }
        }
    }
    left_out(frame, matching, &impact, &arms, &mut cells);
    rates(frame, matching, &impact, &mut cells);
    Figures {
        format: FIGURES_FORMAT,
        source: "evaluation",
        cells: cells.0.into_values().collect(),
    }
}

/// Outcomes that leave persons out: the matched persons not in the outcome's sample (the whole
/// group's size minus the outcome's, both published).
fn left_out(frame: &Frame, matching: &Matching, impact: &Table, arms: &[Arm; 4], cells: &mut Cells) {
    for outcome in frame.outcomes.iter().filter(|o| !o.all_known()) {
        let restricted = matching.restricted(&outcome.known);
        let (treated, comparison) = matched_rows(&restricted);
        let rows: Vec<_> = impact
            .rows()
            .enumerate()
            .filter(|(_, r)| r.get("outcome") == outcome.name)
            .collect();
        let dimension = crate::output::sample_column(&outcome.name);
        for (((dim, value), whole), (column, kept)) in arms.iter().skip(2).zip([
            ("treated_persons", treated.len()),
            ("comparison_persons", comparison.len()),
        ]) {
            if rows.iter().any(|(_, r)| r.num(column).is_some()) && whole.len() > kept {
                // The outcome's own size, and every value over its sample of the group.
                let group_value = if *value == "treated" {
                    "treated_value"
                } else {
                    "comparison_value"
                };
                let places = rows
                    .iter()
                    .flat_map(|&(i, _)| {
                        std::iter::once(column)
                            .chain(impact_values(group_value))
                            .map(move |c| place("impact.csv", i, c))
                    })
                    .collect();
                cells.add(
                    vec![(dim, value), (&dimension, crate::output::LEFT_OUT)],
                    whole.len() - kept,
                    format!("impact.csv {} {column}", outcome.name),
                    places,
                );
            }
        }
    }
}

/// Published rates: events and non-events per matched group of the outcome's sample.
fn rates(frame: &Frame, matching: &Matching, impact: &Table, cells: &mut Cells) {
    for outcome in frame.outcomes.iter().filter(|o| o.measure == Measure::Rate) {
        let Some(row) = impact.rows().position(|r| {
            r.get("outcome") == outcome.name && r.get("measure") == "rate" && r.num("difference").is_some()
        }) else {
            continue;
        };
        let restricted = matching.restricted(&outcome.known);
        let (treated, comparison) = matched_rows(&restricted);
        for ((dim, value), rows) in [
            (("group", "treated"), treated),
            (("group", "comparison"), comparison),
        ] {
            let events = rows.iter().filter(|&&i| outcome.event[i]).count();
            let sample = crate::output::sample_column(&outcome.name);
            for (flag, persons) in [("1", events), ("0", rows.len() - events)] {
                let mut key = vec![(dim, value), (outcome.name.as_str(), flag)];
                // Over the outcome's own sample, when it leaves someone out: the frame's
                // comparisons outside it still hold a value.
                if !outcome.all_known() {
                    key.push((&sample, crate::output::COUNTED));
                }
                // The rate of either group and everything that compares them.
                let places = value_places(row);
                cells.add(
                    key,
                    persons,
                    format!("impact.csv {} rate {dim}={value}", outcome.name),
                    places,
                );
            }
        }
    }
}
