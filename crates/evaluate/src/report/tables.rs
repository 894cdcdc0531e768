//! The report's tables, in words: readable headers and outcome names, p-values as "< 0.001",
//! intervals as "low to high", and the E-value of each significant estimate. The numbers are
//! those of the published CSV files; nothing is added but what follows from them.

use std::fmt::Write as _;

use super::headlines::{e_values, format_p};
use super::{esc, label};
use crate::csv::{Row, Table};
use crate::publish::{BALANCE_COLUMNS, NO_ESTIMATE, SUPPRESSED};

/// A table with a caption, headers and rows of text.
fn html_table(caption: &str, header: &[&str], rows: &[Vec<String>]) -> String {
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
        for field in row {
            let _ = write!(out, "<td>{}</td>", esc(field));
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

/// An impact row in words.
fn impact_row(row: &Row<'_>) -> Vec<String> {
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
    vec![
        label(row.get("outcome")),
        measure(row.get("measure")).to_owned(),
        get("treated_persons"),
        get("comparison_persons"),
        get("treated_value"),
        get("comparison_value"),
        get("difference"),
        ci,
        p_cell(row.get("p_value")),
        p_cell(row.get("p_holm")),
        e_value,
    ]
}

/// The impact estimates.
pub(super) fn impact_table(impact: &Table) -> String {
    let rows: Vec<Vec<String>> = impact.rows().map(|r| impact_row(&r)).collect();
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
    let rows: Vec<Vec<String>> = balance
        .rows()
        .map(|r| {
            let mut row = vec![label(r.get("covariate")), r.get("level").to_owned()];
            row.extend(columns.iter().map(|c| r.get(c).to_owned()));
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
    let rows: Vec<Vec<String>> = survival
        .rows()
        .map(|r| {
            let group = match r.get("group") {
                "treated" => "took part",
                "comparison" => "comparison",
                other => other,
            };
            vec![
                label(r.get("outcome")),
                group.to_owned(),
                r.get("day").to_owned(),
                r.get("at_risk").to_owned(),
                r.get("events").to_owned(),
                r.get("survival").to_owned(),
            ]
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
