//! The candidate outputs `impact.csv`, `balance.csv` and `survival.csv`, with disclosure control
//! applied: the release stage publishes them as they are.
//!
//! Rules (threshold `t`, e.g. 10):
//! * a group size (`treated_persons`, `comparison_persons`) below `t` is written `[c]`;
//! * an outcome's values (group values, difference, CI and p-value) are all written `[c]` unless,
//!   in both matched groups, the persons with and the persons without the event each number at
//!   least `t`: a rate's 1s and 0s; for days, persons with days > 0 and with 0 days (a mean of
//!   few non-zero values, or one that shows nearly everyone had the outcome, is not published);
//!   for time to event, persons with and without the event;
//! * a balance line's values are all `[c]` unless, in each of the four groups (treated and
//!   untreated before matching, treated and comparison after), a 0/1 item has at least `t` 1s
//!   and `t` 0s, and a numeric item has at least `t` persons with a value; the levels of one
//!   covariate are published all or none (with one level hidden, its count would be the group
//!   size minus the published levels' counts);
//! * a Kaplan–Meier step is published only with at least `t` events and `t` persons at risk:
//!   consecutive event days are pooled until they hold `t` events, and the step is written on
//!   the day the pool completes, with the number at risk at the start of the pool; events left
//!   after the last full pool are merged into the last published step.
//!
//! * dropped by the caliper: when `0 < dropped < t`, the before-matching treated figures
//!   (`treated_mean_before`, and `smd_before`, from which it follows) are `[c]` on every balance
//!   line, and the report shows neither eligible count (treated nor untreated: the cohort total
//!   is a table margin). Otherwise `treated_mean_before × all treated − treated_mean × matched`
//!   rebuilds the dropped persons' covariates (issue 12, attack 1);
//! * no count is printed in prose unless it is safe: a sentence whose count is `[c]` is
//!   rephrased without the number, never "[c] people ...".
//!
//! What these rules protect by construction, and what they do not: every count a published
//! figure implies (a group size; a 0/1 balance mean × its group size; an outcome's events and
//! non-events per group; a Kaplan–Meier pool) is at least `t`, or hidden. They do NOT protect a
//! count that a release *table* suppresses by secondary suppression (to protect another cell):
//! balance.csv still implies it exactly. The release stage closes that: it adds these implied
//! counts (`figures.json`) to the joint protection of the `evaluation` source (see
//! `ARCHITECTURE.md`, "Disclosure model").
//!
//! Comparison group counts are of distinct persons.

use crate::csv::{quote, text_field, to_csv};
use crate::design::BalanceItem;
use crate::frame::{Frame, Measure, OutcomeValues};
use crate::matching::Matching;
use crate::stats::{self, Estimate, Subject};

/// The columns of `impact.csv` (a contract with the readers of a release, declared in `store`).
pub use linklab_store::IMPACT_COLUMNS;

/// The columns of `balance.csv`.
pub const BALANCE_COLUMNS: [&str; 8] = [
    "covariate",
    "level",
    "smd_before",
    "smd_after",
    "treated_mean",
    "comparison_mean",
    "treated_mean_before",
    "untreated_mean_before",
];

/// The columns of `survival.csv`.
pub const SURVIVAL_COLUMNS: [&str; 6] = ["outcome", "group", "day", "at_risk", "events", "survival"];

/// The text of a suppressed cell.
pub const SUPPRESSED: &str = "[c]";

/// The `measure` of an `impact.csv` row that carries no estimate, only its reason (in
/// `treated_value`).
pub(crate) const NO_ESTIMATE: &str = "no_estimate";

fn number(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        let text = format!("{value:.decimals$}");
        // "-0.0000" reads oddly; a zero has no sign.
        if text.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
            text.trim_start_matches('-').to_owned()
        } else {
            text
        }
    } else {
        String::new()
    }
}

/// A p-value: four decimals from 0.001 up, below that in scientific notation with three
/// significant digits (`1.23e-45`), so that a tiny p-value never reads as `0.0000`.
pub(crate) fn p_value(p: f64) -> String {
    if !p.is_finite() {
        String::new()
    } else if p >= 0.001 {
        number(p, 4)
    } else {
        format!("{p:.2e}")
    }
}

fn count(n: u64, threshold: u64) -> String {
    if n < threshold {
        SUPPRESSED.to_owned()
    } else {
        n.to_string()
    }
}

/// The frame rows of the matched treated persons and of the distinct matched comparison persons.
pub(crate) fn matched_rows(matching: &Matching) -> (Vec<usize>, Vec<usize>) {
    let treated: Vec<usize> = matching.sets.iter().map(|(t, _)| *t).collect();
    let mut comparison: Vec<usize> = matching
        .sets
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    comparison.sort_unstable();
    comparison.dedup();
    (treated, comparison)
}

/// Whether an outcome's values may be published: in each group the persons with and without
/// the event (1s and 0s; days > 0 and = 0) each number at least `threshold`.
fn outcome_safe(outcome: &OutcomeValues, groups: [&[usize]; 2], threshold: u64) -> bool {
    groups.iter().all(|rows| {
        let events = rows.iter().filter(|&&i| outcome.event[i]).count() as u64;
        let others = rows.len() as u64 - events;
        events >= threshold && others >= threshold
    })
}

/// One row of `impact.csv`. `estimate` is `None` when the outcome is not safe to publish (all
/// six values `[c]`; the estimate is then not even computed, so degenerate data that is also
/// small never reaches a statistics routine). A safe estimate that is degenerate (see
/// [`Estimate::degenerate`]) becomes a `no_estimate` row with the reason in `treated_value`.
fn estimate_row(
    name: &str,
    measure: &str,
    sizes: &[String; 2],
    estimate: Option<&Estimate>,
    decimals: usize,
) -> Vec<String> {
    let degenerate = estimate.and_then(Estimate::degenerate);
    let mut row = vec![
        text_field(name),
        quote(if degenerate.is_some() {
            NO_ESTIMATE
        } else {
            measure
        }),
        sizes[0].clone(),
        sizes[1].clone(),
    ];
    match (estimate, degenerate) {
        (None, _) => row.extend(std::iter::repeat_n(SUPPRESSED.to_owned(), 6)),
        (Some(_), Some(reason)) => {
            row.push(quote(&format!("{measure}: {reason}")));
            row.extend(std::iter::repeat_n(String::new(), 5));
        }
        (Some(e), None) => row.extend([
            number(e.treated, decimals),
            number(e.comparison, decimals),
            number(e.difference, decimals),
            number(e.ci_low, decimals),
            number(e.ci_high, decimals),
            p_value(e.p_value),
        ]),
    }
    row
}

/// The survival subjects of a group: days to event or censoring, with matching weights.
fn subjects(outcome: &OutcomeValues, rows: &[usize], weight: &[f64]) -> Vec<Subject> {
    rows.iter()
        .map(|&i| Subject {
            time: outcome.value[i],
            event: outcome.event[i],
            weight: weight[i],
        })
        .collect()
}

/// Whether fewer than `threshold` persons (but some) of a matched group are left out of an
/// outcome: the whole group's size minus the outcome's would show them, so the outcome's sizes
/// are `[c]` (and its values, see `impact_csv`).
pub(crate) fn few_left_out(whole: [usize; 2], outcome: [usize; 2], threshold: u64) -> bool {
    (0..2).any(|g| {
        let left_out = (whole[g] - outcome[g]) as u64;
        left_out > 0 && left_out < threshold
    })
}

/// The group-size cells of an outcome's rows: its matched sample's sizes, written `[c]` below
/// the threshold, and also when a few persons of a matched group are left out of the outcome
/// (see [`few_left_out`]).
pub(crate) fn size_cells(whole: [usize; 2], outcome: [usize; 2], threshold: u64) -> [String; 2] {
    [0, 1].map(|g| {
        let left_out = (whole[g] - outcome[g]) as u64;
        if left_out > 0 && left_out < threshold {
            SUPPRESSED.to_owned()
        } else {
            count(outcome[g] as u64, threshold)
        }
    })
}

/// The rows of `impact.csv` for an estimated evaluation. Each outcome is estimated on its own
/// matched sample (see [`Matching::restricted`]): everyone when nobody is left out of it.
pub(crate) fn impact_csv(frame: &Frame, matching: &Matching, threshold: u64) -> String {
    let (all_treated, all_comparison) = matched_rows(matching);
    let mut rows = Vec::new();
    // The tests of the Holm family (see [`holm_column`]), by row.
    let mut tests: Vec<Family> = Vec::new();
    for outcome in &frame.outcomes {
        let matching = matching.restricted(&outcome.known);
        let matching = matching.as_ref();
        let (treated, comparison) = matched_rows(matching);
        let sizes = size_cells(
            [all_treated.len(), all_comparison.len()],
            [treated.len(), comparison.len()],
            threshold,
        );
        let values: Vec<f64> = outcome.value.iter().map(|&v| f64::from(v)).collect();
        // With a few persons left out, even the values stay hidden: a rate's decimals can give
        // away its denominator, and so the number left out.
        let few_left_out = few_left_out(
            [all_treated.len(), all_comparison.len()],
            [treated.len(), comparison.len()],
            threshold,
        );
        let safe = !few_left_out && outcome_safe(outcome, [&treated, &comparison], threshold);
        let name = &outcome.name;
        match outcome.measure {
            Measure::Rate => {
                let e = safe.then(|| stats::effect(matching, &values, true));
                rows.push(estimate_row(name, "rate", &sizes, e.as_ref(), 4));
                tests.push(test(e.as_ref()));
            }
            Measure::Days => {
                let e = safe.then(|| stats::effect(matching, &values, false));
                rows.push(estimate_row(name, "mean_days", &sizes, e.as_ref(), 2));
                tests.push(test(e.as_ref()));
            }
            Measure::Count => {
                let e = safe.then(|| stats::effect(matching, &values, false));
                rows.push(estimate_row(name, "count_mean", &sizes, e.as_ref(), 4));
                let per_100 = e.map(|e| e.scaled(100.0));
                rows.push(estimate_row(name, "count_per_100", &sizes, per_100.as_ref(), 2));
                // One test: the per-100 row repeats the mean's, and takes its adjusted p-value.
                tests.extend([test(e.as_ref()), Family::Previous]);
            }
            Measure::TimeToEvent => {
                let e = safe.then(|| {
                    let treated_subjects = subjects(outcome, &treated, &matching.weight);
                    let comparison_subjects = subjects(outcome, &comparison, &matching.weight);
                    let (_, p_value) = stats::log_rank(&treated_subjects, &comparison_subjects);
                    stats::survival_difference(
                        stats::survival_at_end(&stats::kaplan_meier(&treated_subjects)),
                        stats::survival_at_end(&stats::kaplan_meier(&comparison_subjects)),
                        p_value,
                    )
                });
                rows.push(estimate_row(name, "log_rank", &sizes, e.as_ref(), 4));
                tests.push(test(e.as_ref()));
                let tau = outcome.follow_up;
                let e = safe.then(|| {
                    let km = |rows: &[usize]| {
                        stats::rmst(
                            &stats::kaplan_meier(&subjects(outcome, rows, &matching.weight)),
                            tau,
                        )
                    };
                    stats::normal_difference(km(&treated), km(&comparison))
                });
                rows.push(estimate_row(name, "rmst", &sizes, e.as_ref(), 2));
                tests.push(test(e.as_ref()));
                let e = safe.then(|| {
                    let with_event = |rows: &[usize]| -> Vec<(f64, f64)> {
                        rows.iter()
                            .filter(|&&i| outcome.event[i])
                            .map(|&i| (matching.weight[i], f64::from(outcome.value[i])))
                            .collect()
                    };
                    stats::weighted_welch(&with_event(&treated), &with_event(&comparison))
                });
                rows.push(estimate_row(name, "mean_days_if_event", &sizes, e.as_ref(), 2));
                // Conditional on the event: a description, not a test of the programme's effect.
                tests.push(Family::Untested);
            }
        }
    }
    for (row, holm) in rows.iter_mut().zip(holm_column(&tests)) {
        // A row whose p-value is hidden has its adjusted one hidden too.
        let hidden = row.get(9).is_some_and(|p| p == SUPPRESSED);
        row.push(if hidden { SUPPRESSED.to_owned() } else { holm });
    }
    to_csv(&IMPACT_COLUMNS, &rows)
}

/// A row of `impact.csv` in the Holm family.
#[derive(Debug, Clone, Copy)]
enum Family {
    /// A published test with its p-value.
    Test(f64),
    /// No test: `[c]`, degenerate, or not a test of the programme.
    Untested,
    /// The same test as the row before (`count_per_100` after `count_mean`).
    Previous,
}

/// The family member of an estimate: a test when it is published (not `[c]`, not degenerate).
fn test(estimate: Option<&Estimate>) -> Family {
    estimate
        .filter(|e| e.degenerate().is_none())
        .map_or(Family::Untested, |e| Family::Test(e.p_value))
}

/// The `p_holm` cells of `impact.csv`, one per row: Holm's adjustment over the family of every
/// published test (`rate`, `mean_days`, `count_mean`, `log_rank`, `rmst`; `count_per_100`
/// takes its `count_mean` row's, the row before it; `mean_days_if_event` compares people
/// selected by the outcome, so it is no test of the programme and is left empty, like a row
/// whose p-value is `[c]` or empty).
fn holm_column(tests: &[Family]) -> Vec<String> {
    let p: Vec<f64> = tests
        .iter()
        .map(|t| match t {
            Family::Test(p) => *p,
            Family::Untested | Family::Previous => f64::NAN,
        })
        .collect();
    let adjusted = crate::adjust::holm(&p);
    let mut cells: Vec<String> = Vec::with_capacity(tests.len());
    for (i, test) in tests.iter().enumerate() {
        let cell = match test {
            Family::Test(_) => p_value(adjusted[i]),
            Family::Previous => cells.last().cloned().unwrap_or_default(),
            Family::Untested => String::new(),
        };
        cells.push(cell);
    }
    cells
}

/// `impact.csv` when there is no estimate: one row per outcome with measure `no_estimate`, the
/// group sizes, and the reason in `treated_value`.
pub(crate) fn no_estimate_csv(frame: &Frame, sizes: (u64, u64), reason: &str, threshold: u64) -> String {
    let rows: Vec<Vec<String>> = frame
        .outcomes
        .iter()
        .map(|o| {
            let mut row = vec![
                text_field(&o.name),
                NO_ESTIMATE.to_owned(),
                count(sizes.0, threshold),
                count(sizes.1, threshold),
            ];
            row.push(quote(reason));
            row.extend(std::iter::repeat_n(String::new(), 6));
            row
        })
        .collect();
    to_csv(&IMPACT_COLUMNS, &rows)
}

/// Mean and sample variance of the present values of `rows`, with weights; and the number of
/// persons with a value, the number with value 1 (for 0/1 items).
struct GroupStats {
    mean: f64,
    var: f64,
    persons: u64,
    ones: u64,
}

fn group_stats(values: &[Option<f64>], rows: &[usize], weight: Option<&[f64]>) -> GroupStats {
    let (mut sw, mut swx, mut persons, mut ones) = (0.0, 0.0, 0, 0);
    for &i in rows {
        if let Some(v) = values[i] {
            let w = weight.map_or(1.0, |w| w[i]);
            sw += w;
            swx += w * v;
            persons += 1;
            ones += u64::from(v > 0.5);
        }
    }
    let mean = swx / sw;
    let (mut ss, mut sw2) = (0.0, 0.0);
    for &i in rows {
        if let Some(v) = values[i] {
            let w = weight.map_or(1.0, |w| w[i]);
            ss += w * (v - mean).powi(2);
            sw2 += w * w;
        }
    }
    let denom = sw - sw2 / sw;
    GroupStats {
        mean,
        var: if denom > 0.0 { ss / denom } else { f64::NAN },
        persons,
        ones,
    }
}

/// The rows of `balance.csv`: per item, the standardised mean differences before matching
/// (all treated vs all untreated) and after (matched treated vs weighted matched comparisons),
/// both over the same denominator, the pooled SD before matching `sqrt((s²_t + s²_u) / 2)`.
pub(crate) fn balance_csv(
    items: &[BalanceItem],
    treated_flag: &[bool],
    matching: &Matching,
    threshold: u64,
    withhold_treated_before: bool,
) -> String {
    let all_treated: Vec<usize> = (0..treated_flag.len()).filter(|&i| treated_flag[i]).collect();
    let all_untreated: Vec<usize> = (0..treated_flag.len()).filter(|&i| !treated_flag[i]).collect();
    let (treated, comparison) = matched_rows(matching);
    let stats: Vec<[GroupStats; 4]> = items
        .iter()
        .map(|item| {
            [
                group_stats(&item.values, &all_treated, None),
                group_stats(&item.values, &all_untreated, None),
                group_stats(&item.values, &treated, None),
                group_stats(&item.values, &comparison, Some(&matching.weight)),
            ]
        })
        .collect();
    let mut safe: Vec<bool> = items
        .iter()
        .zip(&stats)
        .map(|(item, groups)| {
            groups.iter().all(|g| {
                if item.binary {
                    g.ones >= threshold && g.persons - g.ones >= threshold
                } else {
                    g.persons >= threshold
                }
            })
        })
        .collect();
    // The 0/1 items of one covariate (its levels) add up to the group size: with one level
    // hidden and the others published, the hidden level's count is the size minus theirs. So a
    // covariate's levels are published all or none.
    for (i, item) in items.iter().enumerate() {
        if item.binary && !safe[i] {
            for (j, other) in items.iter().enumerate() {
                if other.binary && other.covariate == item.covariate {
                    safe[j] = false;
                }
            }
        }
    }
    let mut rows = Vec::new();
    for ((item, [bt, bu, at, ac]), safe) in items.iter().zip(&stats).zip(safe) {
        let sd = f64::midpoint(bt.var, bu.var).sqrt();
        let smd = |a: f64, b: f64| {
            if sd > 0.0 {
                (a - b) / sd
            } else if (a - b).abs() < 1e-12 {
                0.0
            } else {
                f64::NAN
            }
        };
        let mut row = vec![text_field(&item.covariate), text_field(&item.level)];
        if safe {
            let before = |v: f64| {
                if withhold_treated_before {
                    SUPPRESSED.to_owned()
                } else {
                    number(v, 4)
                }
            };
            row.extend([
                before(smd(bt.mean, bu.mean)),
                number(smd(at.mean, ac.mean), 4),
                number(at.mean, 4),
                number(ac.mean, 4),
                before(bt.mean),
                number(bu.mean, 4),
            ]);
        } else {
            row.extend(std::iter::repeat_n(SUPPRESSED.to_owned(), 6));
        }
        rows.push(row);
    }
    to_csv(&BALANCE_COLUMNS, &rows)
}

/// Kaplan–Meier steps pooled so that each published step has at least `threshold` events and
/// persons at risk: `(day, persons at risk at the start of the pool, events in the pool,
/// survival after the day)`. Events left over after the last full pool (too few, or with too
/// few at risk) are merged into the last published step, so that the published curve ends at
/// the survival of the whole follow-up and no small count can be found by differencing it
/// with `impact.csv`.
pub(crate) fn pooled_steps(steps: &[stats::KmStep], threshold: u64) -> Vec<(u32, u64, u64, f64)> {
    let threshold = threshold.max(1);
    let mut out: Vec<(u32, u64, u64, f64)> = Vec::new();
    let mut pool: Option<(u64, u64)> = None;
    for step in steps {
        let (at_risk, events) = pool.get_or_insert((step.persons_at_risk, 0));
        *events += step.person_events;
        if *at_risk >= threshold && *events >= threshold {
            out.push((step.day, *at_risk, *events, step.survival));
            pool = None;
        }
    }
    if let (Some((_, pending)), Some(last_step), Some(last)) = (pool, steps.last(), out.last_mut()) {
        last.0 = last_step.day;
        last.2 += pending;
        last.3 = last_step.survival;
    }
    out
}

/// The rows of `survival.csv`: for each time-to-event outcome, the pooled Kaplan–Meier steps of
/// the matched treated (`treated`) and comparison (`comparison`) groups. An outcome that leaves
/// out a few persons of a matched group (see [`few_left_out`]) has no curve: its first step's
/// persons at risk is the outcome's sample size, which `impact.csv` hides for that reason, and
/// with a table's group total it would show how many were left out.
pub(crate) fn survival_csv(frame: &Frame, matching: &Matching, threshold: u64) -> String {
    let (all_treated, all_comparison) = matched_rows(matching);
    let mut rows = Vec::new();
    for outcome in frame
        .outcomes
        .iter()
        .filter(|o| o.measure == Measure::TimeToEvent)
    {
        let matching = matching.restricted(&outcome.known);
        let matching = matching.as_ref();
        let (treated, comparison) = matched_rows(matching);
        if few_left_out(
            [all_treated.len(), all_comparison.len()],
            [treated.len(), comparison.len()],
            threshold,
        ) {
            continue;
        }
        for (group, members) in [("treated", &treated), ("comparison", &comparison)] {
            let steps = stats::kaplan_meier(&subjects(outcome, members, &matching.weight));
            for (day, at_risk, events, survival) in pooled_steps(&steps, threshold) {
                rows.push(vec![
                    text_field(&outcome.name),
                    group.to_owned(),
                    day.to_string(),
                    at_risk.to_string(),
                    events.to_string(),
                    number(survival, 4),
                ]);
            }
        }
    }
    to_csv(&SURVIVAL_COLUMNS, &rows)
}
