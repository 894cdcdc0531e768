//! The report's tables, in words: readable headers and outcome names, p-values as "< 0.001",
//! intervals as "low to high", and the E-value of each significant estimate. The numbers are
//! those of the published CSV files; nothing is added but what follows from them.

use std::fmt::Write as _;

use super::headlines::{e_values, format_p};
use super::{esc, label, marker};
use crate::csv::{Row, Table};
use crate::figures::{impact_value_columns, place};
use crate::publish::{BALANCE_COLUMNS, NO_ESTIMATE, SUPPRESSED};

/// A table cell: its text, and the places of the figures it prints (see [`marked`]).
type Cell = (String, Vec<String>);

/// A table with a caption, headers and rows of cells.
fn html_table(caption: &str, header: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut out = format!(
        "<div class=\"scroll\"><table><caption>{}</caption><thead><tr>",
        esc(caption)
    );
    for h in header {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (field, places) in row {
            let _ = write!(out, "<td{}>{}</td>", marker(places), esc(field));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A measure of `impact.csv` in words.
fn measure(name: &str) -> &str {
    match name {
        "rate" => "share with the outcome (0 to 1)",
        "mean_days" => "mean days",
        "count_mean" => "events per person",
        "count_per_100" => "events per 100 persons",
        "log_rank" => "share without the event at the end (log-rank test)",
        "rmst" => "restricted mean days to the event",
        "mean_days_if_event" => "mean days to the event among those with it (conditional)",
        NO_ESTIMATE => "no estimate",
        other => other,
    }
}

/// A p-value cell in words: "< 0.001", "0.034", or the cell as published (`[c]`, empty).
fn p_cell(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(p) if p.is_finite() => format_p(p).trim_start_matches("= ").to_owned(),
        _ => cell.to_owned(),
    }
}

/// The cells of a row: each text with the places of the columns it prints.
fn cells(file: &str, i: usize, fields: Vec<(String, &[&str])>) -> Vec<Cell> {
    fields
        .into_iter()
        .map(|(text, columns)| (text, columns.iter().map(|c| place(file, i, c)).collect()))
        .collect()
}

/// An impact row in words, with the places of its values.
fn impact_row(i: usize, row: &Row<'_>) -> Vec<Cell> {
    let get = |c: &str| row.get(c).to_owned();
    let ci = match (row.get("ci_low"), row.get("ci_high")) {
        ("", "") => String::new(),
        (SUPPRESSED, _) | (_, SUPPRESSED) => SUPPRESSED.to_owned(),
        (lo, hi) => format!("{lo} to {hi}"),
    };
    let significant = row.num("p_value").is_some_and(|p| p < 0.05);
    let e_value = significant
        .then(|| e_values(row))
        .flatten()
        .map(|(point, limit)| format!("{point:.2} ({limit:.2})"))
        .unwrap_or_default();
    // The E-value is built on every value but the adjusted p-value.
    let values = &impact_value_columns()[..6];
    cells(
        "impact.csv",
        i,
        vec![
            (label(row.get("outcome")), &[]),
            (measure(row.get("measure")).to_owned(), &[]),
            (get("treated_persons"), &["treated_persons"]),
            (get("comparison_persons"), &["comparison_persons"]),
            (get("treated_value"), &["treated_value"]),
            (get("comparison_value"), &["comparison_value"]),
            (get("difference"), &["difference"]),
            (ci, &["ci_low", "ci_high"]),
            (p_cell(row.get("p_value")), &["p_value"]),
            (p_cell(row.get("p_holm")), &["p_holm"]),
            (e_value, values),
        ],
    )
}

/// The impact estimates.
pub(super) fn impact_table(impact: &Table) -> String {
    let rows: Vec<Vec<Cell>> = impact
        .rows()
        .enumerate()
        .map(|(i, r)| impact_row(i, &r))
        .collect();
    html_table(
        "Impact estimates",
        &[
            "Outcome",
            "Measure",
            "Persons who took part",
            "Comparison persons",
            "Took part",
            "Comparison",
            "Difference",
            "95% confidence interval",
            "p-value",
            "Holm-adjusted p-value",
            "E-value (confidence limit)",
        ],
        &rows,
    )
}

/// The balance of the characteristics.
pub(super) fn balance_table(balance: &Table) -> String {
    // Every column after the covariate and its level.
    let columns = &BALANCE_COLUMNS[2..];
    let rows: Vec<Vec<Cell>> = balance
        .rows()
        .enumerate()
        .map(|(i, r)| {
            let mut row = vec![
                (label(r.get("covariate")), Vec::new()),
                (r.get("level").to_owned(), Vec::new()),
            ];
            row.extend(
                columns
                    .iter()
                    .map(|c| (r.get(c).to_owned(), vec![place("balance.csv", i, c)])),
            );
            row
        })
        .collect();
    html_table(
        "Covariate balance",
        &[
            "Characteristic",
            "Level",
            "Standardised difference before matching",
            "Standardised difference after matching",
            "Mean, took part (matched)",
            "Mean, comparison (matched)",
            "Mean, took part (before matching)",
            "Mean, did not take part (before matching)",
        ],
        &rows,
    )
}

/// The published Kaplan–Meier steps.
pub(super) fn survival_table(survival: &Table) -> String {
    let rows: Vec<Vec<Cell>> = survival
        .rows()
        .enumerate()
        .map(|(i, r)| {
            let group = match r.get("group") {
                "treated" => "took part",
                "comparison" => "comparison",
                other => other,
            };
            cells(
                "survival.csv",
                i,
                vec![
                    (label(r.get("outcome")), &[]),
                    (group.to_owned(), &[]),
                    (r.get("day").to_owned(), &[]),
                    (r.get("at_risk").to_owned(), &["at_risk"]),
                    (r.get("events").to_owned(), &["events"]),
                    (r.get("survival").to_owned(), &["survival"]),
                ],
            )
        })
        .collect();
    html_table(
        "Kaplan–Meier steps",
        &[
            "Outcome",
            "Group",
            "Day",
            "At risk",
            "Events",
            "Share without the event",
        ],
        &rows,
    )
}
