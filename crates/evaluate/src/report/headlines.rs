//! The headline sentences: each published result in the Justice Data Lab's words, with its
//! confidence interval, whether it is significant (and after Holm's adjustment for the number of
//! outcomes tested), what a non-significant result means, and the E-value of a significant one.

use std::fmt::Write as _;

use super::{ReportMeta, label};
use crate::csv::{Row, Table};
use crate::publish::{NO_ESTIMATE, SUPPRESSED};

fn period(meta: &ReportMeta) -> String {
    if let Some(day) = meta.day {
        return format!("on day {day} after {}", meta.index_event);
    }
    if meta.follow_up_days == 365 {
        format!("in the year after {}", meta.index_event)
    } else {
        format!("in the {} days after {}", meta.follow_up_days, meta.index_event)
    }
}

/// The first word of an outcome name that reads as something people *were* ("45 were employed
/// at 30 days"); any other name whose first word ends in "ed" reads as something they did ("24
/// reoffended"), and the rest as an outcome they had.
const STATES: [&str; 11] = [
    "employed",
    "unemployed",
    "housed",
    "convicted",
    "reconvicted",
    "recalled",
    "sanctioned",
    "imprisoned",
    "detained",
    "enrolled",
    "homeless",
];

/// What the people counted in a rate did, in words: "reoffended", "were employed at 30 days",
/// "had the outcome “housing”". On a given day (`spell_at`, whose sentence names the day) a
/// name that reads as a verb or a state gives its first word alone: "were employed" (on day 30
/// after release), not "were employed at 30 days on day 30 after release".
fn did(name: &str, on_a_day: bool) -> String {
    let first = name.split(' ').next().unwrap_or_default();
    let words = if on_a_day { first } else { name };
    if STATES.contains(&first) {
        format!("were {words}")
    } else if first.len() > 2 && first.ends_with("ed") {
        words.to_owned()
    } else {
        format!("had the outcome “{name}”")
    }
}

/// Whether a result is significant, in words, with its p-value and Holm-adjusted p-value
/// (`p_holm`, when published). A significant result gets its E-value (see [`e_values`]); a
/// non-significant one is *inconclusive*, with what that means.
fn verdict(row: &Row<'_>) -> String {
    let Some(p) = row.num("p_value") else {
        return String::new();
    };
    let holm = row.num("p_holm");
    let holm_text = holm
        .map(|h| format!("; Holm-adjusted p {}", format_p(h)))
        .unwrap_or_default();
    if p >= 0.05 {
        return format!(
            " This result is inconclusive (p {}{holm_text}): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.",
            format_p(p)
        );
    }
    let mut out = format!(
        " This difference is statistically significant (p {}{holm_text}).",
        format_p(p)
    );
    if holm.is_some_and(|h| h >= 0.05) {
        out.push_str(" It is not significant once the number of results tested is allowed for.");
    }
    if let Some((point, limit)) = e_values(row) {
        let _ = write!(
            out,
            " Its E-value is {point:.2} ({limit:.2} for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least {point:.2} each, beyond the characteristics matched on, to explain the difference away."
        );
    }
    out
}

/// The E-values of a row's estimate (point, and the confidence limit nearer to no difference;
/// see [`crate::adjust::e_values`]), from its two groups' risks: a rate's; for `log_rank`, the
/// risk of the event by the end of follow-up, `1 − survival` (its difference's interval is the
/// survival difference's, negated); for a mean (`mean_days`, `count_mean`, `count_per_100`,
/// `rmst`), the ratio of the group means taken as a risk ratio, an approximation. None for
/// `mean_days_if_event`, which is no effect, and when a value is not published.
pub(super) fn e_values(row: &Row<'_>) -> Option<(f64, f64)> {
    let (t, c, _, lo, hi) = estimate(row)?;
    let (t, c, lo, hi) = match row.get("measure") {
        "rate" | "mean_days" | "count_mean" | "count_per_100" | "rmst" => (t, c, lo, hi),
        "log_rank" => (1.0 - t, 1.0 - c, -hi, -lo),
        _ => return None,
    };
    crate::adjust::e_values(t, c, lo, hi)
}

/// The note on multiple outcomes, when more than one result was tested: how many tests the
/// Holm-adjusted p-values allow for.
pub(crate) fn multiple_outcomes_note(impact: &Table) -> Option<String> {
    let tests = impact
        .rows()
        .filter(|r| r.get("measure") != "count_per_100" && r.num("p_holm").is_some())
        .count();
    (tests > 1).then(|| {
        format!(
            "These results come from {tests} tests, one per outcome and measure, so one of them could fall below p = 0.05 by chance alone. The Holm-adjusted p-values, shown beside the raw ones, allow for the number of tests: a result whose adjusted p-value is below 0.05 is unlikely to be such a chance finding."
        )
    })
}

/// The direction of a difference as it is printed (one decimal): `Some(true)` more,
/// `Some(false)` less, `None` a difference that prints as zero.
fn direction(diff: f64) -> Option<bool> {
    (one(diff.abs()) != "0.0").then_some(diff > 0.0)
}

/// One decimal, without a sign on zero.
fn one(v: f64) -> String {
    let text = format!("{v:.1}");
    if text == "-0.0" { "0.0".to_owned() } else { text }
}

/// One decimal with an explicit sign (`+4.1`, `-22.5`, `0.0`).
fn signed(v: f64) -> String {
    let text = one(v);
    if text == "0.0" || text.starts_with('-') {
        text
    } else {
        format!("+{text}")
    }
}

/// The difference (took part minus did not) with its sign and the 95% CI of that same
/// difference, never flipped to match the wording: "(difference -9.2 percentage points, 95% CI
/// -22.5 to +4.1)". A sentence that says "less" and then gives an interval of the opposite
/// difference invites misreading.
fn difference_ci(d: f64, lo: f64, hi: f64, unit: &str) -> String {
    format!(
        "(difference {} {unit}, 95% CI {} to {})",
        signed(d),
        signed(lo),
        signed(hi)
    )
}

/// A row's group values, difference and 95% interval, when all are published.
fn estimate(row: &Row<'_>) -> Option<(f64, f64, f64, f64, f64)> {
    Some((
        row.num("treated_value")?,
        row.num("comparison_value")?,
        row.num("difference")?,
        row.num("ci_low")?,
        row.num("ci_high")?,
    ))
}

/// A rate in the JDL's words: "For every 100 people who took part, 24 reoffended in the year
/// after release, compared with 37 for every 100 similar people who did not take part".
fn sentence_rate(row: &Row<'_>, meta: &ReportMeta) -> Option<String> {
    let (t, c, d, lo, hi) = estimate(row)?;
    let name = label(row.get("outcome"));
    Some(format!(
        "For every 100 people who took part, {} {} {}, compared with {} for every 100 similar people who did not take part {}.{}",
        whole(t * 100.0),
        did(&name, meta.day.is_some()),
        period(meta),
        whole(c * 100.0),
        difference_ci(d * 100.0, lo * 100.0, hi * 100.0, "percentage points"),
        verdict(row),
    ))
}

/// A whole number, without a sign on zero.
fn whole(v: f64) -> String {
    let text = format!("{v:.0}");
    if text == "-0" { "0".to_owned() } else { text }
}

fn sentence_days(row: &Row<'_>, meta: &ReportMeta) -> Option<String> {
    let (t, c, d, lo, hi) = estimate(row)?;
    let name = label(row.get("outcome"));
    let what = match (direction(d), name.strip_prefix("days ")) {
        (Some(up), rest) => {
            let more = if up { "more" } else { "fewer" };
            match rest {
                Some(rest) => format!("{} {more} days {rest}", one(d.abs())),
                None => format!("{} {more} days of “{name}”", one(d.abs())),
            }
        }
        (None, Some(rest)) => format!("as many days {rest}"),
        (None, None) => format!("as many days of “{name}”"),
    };
    Some(format!(
        "People who took part had on average {what} {}: {} compared with {} days for similar people who did not take part {}.{}",
        period(meta),
        one(t),
        one(c),
        difference_ci(d, lo, hi, "days"),
        verdict(row),
    ))
}

/// The JDL's frequency: events per 100 people (`count_per_100`).
fn sentence_count(row: &Row<'_>, meta: &ReportMeta) -> Option<String> {
    let (t, c, d, lo, hi) = estimate(row)?;
    Some(format!(
        "For every 100 people who took part there were {} “{}” {}, compared with {} for every 100 similar people who did not take part {}.{}",
        one(t),
        label(row.get("outcome")),
        period(meta),
        one(c),
        difference_ci(d, lo, hi, "per 100 people"),
        verdict(row),
    ))
}

/// The restricted mean time to the event (`rmst`).
fn sentence_rmst(row: &Row<'_>, meta: &ReportMeta) -> Option<String> {
    let (t, c, d, lo, hi) = estimate(row)?;
    Some(format!(
        "“{}”: of the {} days after {}, people who took part spent on average {} days before the event (the restricted mean time to it), compared with {} days for similar people who did not take part {}.{}",
        label(row.get("outcome")),
        meta.follow_up_days,
        meta.index_event,
        one(t),
        one(c),
        difference_ci(d, lo, hi, "days"),
        verdict(row),
    ))
}

/// The JDL's mean days to the first event among those who had it (`mean_days_if_event`).
fn sentence_if_event(row: &Row<'_>) -> Option<String> {
    let (t, c) = (row.num("treated_value")?, row.num("comparison_value")?);
    Some(format!(
        "Among those who had the event “{}”, it came on average {} days after the index date for people who took part and {} days for similar people who did not. This is conditional: it compares only the people who had the event, who may differ between the groups, so it is not an effect of the programme.",
        label(row.get("outcome")),
        one(t),
        one(c),
    ))
}

/// A time-to-event outcome's share with the event by the end of follow-up and the log-rank test.
fn sentence_log_rank(row: &Row<'_>, meta: &ReportMeta) -> Option<String> {
    let (t, c) = (row.num("treated_value")?, row.num("comparison_value")?);
    let name = label(row.get("outcome"));
    let verdict = if row.num("p_value").is_some() {
        verdict(row)
    } else {
        " No test of the time to the first event could be made.".to_owned()
    };
    Some(format!(
        "“{name}”: {}% of people who took part had the event within {} days of {}, compared with {}% of similar people who did not take part (the log-rank test compares the time to the first event).{verdict}",
        one((1.0 - t) * 100.0),
        meta.follow_up_days,
        meta.index_event,
        one((1.0 - c) * 100.0),
    ))
}

/// A p-value with its relation sign: "= 0.034", or "< 0.001" for very small values.
pub(super) fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_owned()
    } else {
        format!("= {p:.3}")
    }
}

/// The headline sentences, in plain words, one per published result.
#[cfg(test)]
pub(crate) fn headlines(impact: &Table, meta: &ReportMeta) -> Vec<String> {
    headline_rows(impact, meta).into_iter().map(|(s, _)| s).collect()
}

/// The headline sentences, each with the `impact.csv` row whose values it tells (none for a
/// sentence on the whole evaluation).
pub(super) fn headline_rows(impact: &Table, meta: &ReportMeta) -> Vec<(String, Option<usize>)> {
    let mut out = Vec::new();
    let mut reasons: Vec<String> = Vec::new();
    let time_to_event: Vec<&str> = impact
        .rows()
        .filter(|r| {
            r.get("measure") == "log_rank"
                || (r.get("measure") == NO_ESTIMATE && r.get("treated_value").starts_with("log_rank: "))
        })
        .map(|r| r.get("outcome"))
        .collect();
    let mut explained: Vec<&str> = Vec::new();
    for (i, row) in impact.rows().enumerate() {
        let measure = row.get("measure");
        let name = label(row.get("outcome"));
        if measure == NO_ESTIMATE {
            let reason = row.get("treated_value");
            // A reason of one measure of one outcome ("rate: ..."), or of the whole evaluation.
            match reason.split_once(": ").filter(|(m, _)| {
                [
                    "rate",
                    "mean_days",
                    "log_rank",
                    "count_mean",
                    "count_per_100",
                    "rmst",
                    "mean_days_if_event",
                ]
                .contains(m)
            }) {
                Some((measure, why)) => {
                    let covered = ["mean_days", "rmst", "mean_days_if_event"].contains(&measure)
                        && time_to_event.contains(&row.get("outcome"));
                    if !covered && !explained.contains(&row.get("outcome")) {
                        explained.push(row.get("outcome"));
                        out.push((format!("No effect could be estimated for “{name}”: {why}."), None));
                    }
                }
                None => {
                    if !reasons.iter().any(|r| r == reason) {
                        reasons.push(reason.to_owned());
                    }
                }
            }
            continue;
        }
        if measure == "count_mean" || (measure == "mean_days" && time_to_event.contains(&row.get("outcome")))
        {
            continue;
        }
        let own = meta.for_outcome(row.get("outcome"));
        let meta = &own;
        let sentence = match measure {
            "rate" => sentence_rate(&row, meta),
            "mean_days" => sentence_days(&row, meta),
            "log_rank" => sentence_log_rank(&row, meta),
            "count_per_100" => sentence_count(&row, meta),
            "rmst" => sentence_rmst(&row, meta),
            "mean_days_if_event" => sentence_if_event(&row),
            _ => None,
        };
        let sentence = sentence.unwrap_or_else(|| {
            if row.get("difference") == SUPPRESSED {
                format!("The result for “{name}” is not shown: the numbers are too small to publish safely.")
            } else {
                format!("No result could be computed for “{name}”.")
            }
        });
        out.push((sentence, Some(i)));
    }
    for reason in reasons {
        out.push((format!("No effects were estimated: {reason}."), None));
    }
    out
}
