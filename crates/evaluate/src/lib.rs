//! Stage 3: outcome measures, propensity matching, effects and survival curves.
//!
//! The question, as the Justice Data Lab puts it: did the people an organisation helped do
//! better after their index event (e.g. release) than similar people it did not help?
//!
//! # Analysis frame (`work_dir/evaluation/frame/`, Parquet)
//! One row per cohort person, ordered by `person_id`:
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `person_id` | Utf8 | the project-specific person id |
//! | `index_date` | Date32 | the index date |
//! | `treated` | Boolean | linked to any record of the treatment extract |
//! | each covariate | as in the cohort (Int64, Float64, Date32 or Utf8) | from the index record; a text covariate's rare levels merged into `Other` |
//! | each outcome | Int64 | rate (`event_within`, `spell_overlap`, `spell_at`): 0/1; spell days: days; event count: events; time to event: days to the first event, or the follow-up (or to `data_cutoff` or death) if none; null for a person left out of the outcome (`unknown = "exclude"`, `data_cutoff`, `deaths`) |
//! | `<outcome>_event` | Int64 | time-to-event outcomes only: 1 if the event happened in the window |
//! | `<outcome> sample` | Utf8 | only for an outcome that leaves someone out: `left out` or `counted` (the dimension of the `<outcome> sample` cells of `figures.json`, so the release stage can audit them) |
//! | `propensity` | Float64 | the fitted propensity score (null if no model was fitted) |
//! | `group` | Utf8 | `treated` or `comparison` in the matched sample, else null |
//! | `weight` | Float64 | matching weight in the matched sample (1 for treated), else null |
//!
//! Cohort: every record of the cohort extract with a `person_id` and an index date; a person's
//! index record is the one with the **earliest index date** (ties: the first in file order), and
//! covariates come from that record. With `treatment_date`, a treated person's index record is
//! chosen relative to their programme start instead (see [`BEFORE_START_DAYS`]). Records not linked to a person never count; they are
//! counted per extract in the summary (`evaluation/summary.json`).
//!
//! Cohort persons whose follow-up window ends after the run date (today, UTC; see
//! [`EvaluateConfig::today`]) are left out of the frame and counted
//! (`incomplete_follow_up` in the summary, and a warning naming `follow_up_days`): their
//! outcomes cannot be observed yet, and counting them as "no event" would give confident, false
//! effects.
//!
//! Outcomes use the window `(index, index + follow_up_days]` (see [`spell_days`] for the day
//! counting convention). `event_within`: 1 if an event falls in the window. `spell_overlap`: 1 if
//! any spell overlaps it. `spell_days`: days of the window covered by spells, overlaps merged.
//! `time_to_event`: days to the first event in the window, censored at `follow_up_days`.
//!
//! # Method
//! * Rare categories: a text covariate with more levels than persons / `threshold` is refused
//!   before anything is built from it (naming the covariate); then every level held by fewer than
//!   `threshold` persons is merged into one level `Other` (see [`design::merge_rare_levels`]), so
//!   no label held by fewer persons than the threshold reaches the model, the frame or the
//!   published files.
//! * Propensity score: logistic regression of `treated` on the covariates. Numeric covariates
//!   (dates as day numbers) are standardised; a missing value is set to the mean and flagged by
//!   a 0/1 missing indicator. Text covariates are one-hot coded, the most frequent level being
//!   the reference; a missing value is its own level `(missing)`. Every column but the
//!   intercept (0/1 columns too) is standardised, so the penalty weighs rare levels like common
//!   ones (see [`design::design_matrix`]). Fitted by Newton–Raphson
//!   (IRLS) with a ridge penalty of [`RIDGE`] on all coefficients but the intercept (so that
//!   separation cannot blow up), the normal equations solved by Cholesky factorisation.
//! * Matching: greedy nearest neighbour on the logit of the score, treated persons in descending
//!   score (ties by `person_id`), within `caliper × sqrt((var_treated + var_untreated) / 2)` of
//!   the logit. 1:1 without replacement by default; k:1 (`ratio`) and with replacement as
//!   options, with weights. Treated persons with no comparison within the caliper are dropped.
//! * Effects on the treated (see the crate README):
//!   paired differences for 1:1 without replacement (normal interval for rates, paired t for
//!   days); otherwise a weighted comparison mean with the Kish effective size (two-proportion
//!   z-test for rates, Welch's t for days). Time to event: Kaplan–Meier curves of both matched
//!   groups and a log-rank test.
//! * Disclosure control of the candidate outputs (`evaluation/publish/`): small group sizes,
//!   rates and means resting on fewer than `threshold` persons with or without the outcome, and
//!   Kaplan–Meier steps with fewer than `threshold` events or persons at risk are not published
//!   (see the crate README for the exact rules and the output columns).
#![forbid(unsafe_code)]

mod adjust;
mod columns;
mod config;
mod covariate;
mod csv;
mod deaths;
mod design;
mod error;
mod figures;
mod frame;
mod logit;
mod matching;
mod measures;
mod output;
mod programme;
mod publish;
mod report;
mod stats;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use linklab_store::{Progress, StagingDir, write_atomic, write_json_atomic};
use serde::Serialize;
use tracing::{info, warn};

pub use config::{Deaths, EvaluateConfig, Outcome, OutcomeKind, Unknown};
pub use error::EvaluateError;
pub use frame::{OutcomePersons, RecordCounts};
pub use measures::spell_days;
pub use programme::BEFORE_START_DAYS;
pub use publish::{BALANCE_COLUMNS, IMPACT_COLUMNS, SUPPRESSED, SURVIVAL_COLUMNS};
pub use report::{Bar, Overlap, ReportMeta, render_report};

/// The ridge penalty of the propensity model (on standardised covariates).
pub const RIDGE: f64 = 1.0;

/// What the evaluation did (also written to `evaluation/summary.json`, which stays in `work_dir`).
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationSummary {
    /// Persons in the cohort (rows of the frame).
    pub cohort_persons: u64,
    /// Cohort persons linked to the treatment extract.
    pub treated_persons: u64,
    /// Cohort persons not linked to it.
    pub untreated_persons: u64,
    /// Treated persons in the matched sample.
    pub matched_treated: u64,
    /// Distinct comparison persons in the matched sample.
    pub matched_comparison: u64,
    /// Treated persons with no comparison within the caliper.
    pub dropped_by_caliper: u64,
    /// The caliper on the logit scale.
    pub caliper_logit: Option<f64>,
    /// Newton steps of the propensity model, and whether it converged.
    pub model_iterations: usize,
    /// Whether the propensity model converged.
    pub model_converged: bool,
    /// Cohort persons left out because their `follow_up_days` window ends after the run date.
    pub incomplete_follow_up: u64,
    /// Persons left out of or censored in each outcome (`unknown = "exclude"`, `data_cutoff`,
    /// `deaths`), for the outcomes that leave out or censor anyone.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub outcome_persons: BTreeMap<String, OutcomePersons>,
    /// Treated persons left out because no cohort record is an eligible index event for their
    /// programme start (`treatment_date`).
    #[serde(skip_serializing_if = "is_zero")]
    pub treated_without_index: u64,
    /// How the deaths extract's records were used (`deaths`; `in_window`: records of cohort
    /// persons with a date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub death_records: Option<RecordCounts>,
    /// Whether effects were estimated.
    pub estimated: bool,
    /// Why not, when they were not.
    pub no_estimate_reason: Option<String>,
    /// How the cohort's records were used (`invalid`: no index date; `in_window`: persons).
    pub cohort_records: RecordCounts,
    /// How the treatment extract's records were used (`in_window`: records of cohort persons).
    pub treatment_records: RecordCounts,
    /// How each outcome's records were used, by outcome name.
    pub outcome_records: BTreeMap<String, RecordCounts>,
    /// The analysis frame's folder.
    pub frame_dir: PathBuf,
    /// The candidate outputs' folder.
    pub publish_dir: PathBuf,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn count_cell(n: u64, threshold: u64) -> String {
    if n < threshold {
        SUPPRESSED.to_owned()
    } else {
        n.to_string()
    }
}

/// The treated persons dropped by the caliper as a published cell: a zero is published (then
/// the before- and after-matching treated figures coincide anyway), else a count or `[c]`.
fn dropped_cell(dropped: u64, threshold: u64) -> String {
    if dropped == 0 {
        "0".to_owned()
    } else {
        count_cell(dropped, threshold)
    }
}

/// A readable name for the index event: the index date column without a `_date` suffix.
fn index_event(index_date: &str) -> String {
    index_date
        .strip_suffix("_date")
        .unwrap_or(index_date)
        .replace('_', " ")
}

/// Runs the evaluation stage: builds the frame, fits the propensity model, matches, estimates
/// and writes `work_dir/evaluation/` (`frame/`, `publish/`, `summary.json`) atomically.
pub fn run(cfg: &EvaluateConfig, progress: &dyn Progress) -> Result<EvaluationSummary, EvaluateError> {
    cfg.validate()?;
    progress.start("evaluate: analysis frame", None);
    let frame = frame::build(cfg)?;
    progress.finish();
    if frame.incomplete_follow_up > 0 {
        warn!(
            persons = frame.incomplete_follow_up,
            follow_up_days = cfg.follow_up_days,
            "cohort persons left out: their follow_up_days window ends after today, so their outcomes are not observed yet"
        );
    }
    if let Some(cutoff) = cfg.data_cutoff
        && !frame.index.is_empty()
        && frame.index.iter().all(|&index| index >= cutoff)
    {
        return Err(EvaluateError::config(
            "data_cutoff falls on or before every index date, so no follow-up is observed; set data_cutoff to the last day the extracts cover",
        ));
    }
    if frame.treated_without_index > 0 {
        warn!(
            persons = frame.treated_without_index,
            before_start_days = BEFORE_START_DAYS,
            "treated persons left out: no cohort record on or after their programme start (treatment_date), nor shortly before it"
        );
    }
    let n = frame.person_ids.len();
    let treated_persons = frame.treated.iter().filter(|t| **t).count();
    let untreated_persons = n - treated_persons;
    for (name, persons) in &frame.outcome_persons {
        info!(outcome = %name, excluded_unknown = persons.excluded_unknown, excluded_cutoff = persons.excluded_cutoff,
            censored_cutoff = persons.censored_cutoff, excluded_death = persons.excluded_death,
            censored_death = persons.censored_death, "outcome persons left out or censored");
    }
    for (name, counts) in &frame.outcome_counts {
        info!(outcome = %name, records = counts.records, unlinked = counts.unlinked, not_in_cohort = counts.not_in_cohort,
            filtered_out = counts.filtered_out, invalid = counts.invalid, in_window = counts.in_window, "outcome records");
    }
    info!(
        cohort_persons = n,
        treated = treated_persons,
        untreated = untreated_persons,
        "analysis frame built"
    );

    progress.start("evaluate: propensity model, matching and estimates", None);
    let a = analyse(cfg, &frame);
    progress.finish();
    if let Some(reason) = &a.reason {
        warn!(matched_treated = a.matched_treated, min_treated = cfg.min_treated, reason = %reason, "no effect estimate");
    } else {
        info!(
            matched_treated = a.matched_treated,
            matched_comparison = a.matched_comparison,
            dropped_by_caliper = a.dropped,
            "matched sample built"
        );
    }

    progress.start("evaluate: outputs", None);
    let target = cfg.out_dir.clone();
    let staging = StagingDir::new(&target)?;
    let frame_dir = staging.path().join("frame");
    let publish_dir = staging.path().join("publish");
    for dir in [&frame_dir, &publish_dir] {
        std::fs::create_dir_all(dir).map_err(|source| linklab_store::StoreError::Io {
            action: "cannot create folder",
            path: dir.clone(),
            source,
        })?;
    }
    output::write_frame(&frame_dir, &frame, a.propensity.as_deref(), a.matching.as_ref())?;
    for (name, text) in [
        ("impact.csv", &a.impact),
        ("balance.csv", &a.balance),
        ("survival.csv", &a.survival),
        ("report.html", &a.html),
    ] {
        write_atomic(&publish_dir.join(name), |w| w.write_all(text.as_bytes()))?;
    }
    let mut summary = EvaluationSummary {
        cohort_persons: n as u64,
        treated_persons: treated_persons as u64,
        untreated_persons: untreated_persons as u64,
        matched_treated: a.matched_treated,
        matched_comparison: a.matched_comparison,
        dropped_by_caliper: a.dropped,
        caliper_logit: a.matching.as_ref().map(|m| m.width),
        model_iterations: a.iterations,
        model_converged: a.converged,
        incomplete_follow_up: frame.incomplete_follow_up,
        outcome_persons: frame.outcome_persons.clone(),
        treated_without_index: frame.treated_without_index,
        death_records: frame.death_counts.clone(),
        estimated: a.reason.is_none(),
        no_estimate_reason: a.reason,
        cohort_records: frame.cohort_counts.clone(),
        treatment_records: frame.treatment_counts.clone(),
        outcome_records: frame.outcome_counts.clone(),
        frame_dir: target.join("frame"),
        publish_dir: target.join("publish"),
    };
    write_json_atomic(&staging.path().join("figures.json"), &a.figures)?;
    write_json_atomic(&staging.path().join("summary.json"), &summary)?;
    let committed = staging.commit()?;
    summary.frame_dir = committed.join("frame");
    summary.publish_dir = committed.join("publish");
    progress.finish();
    info!(estimated = summary.estimated, publish_dir = %summary.publish_dir.display(), "evaluation written");
    Ok(summary)
}

/// What [`analyse`] found and the texts it will publish.
pub(crate) struct Analysis {
    pub propensity: Option<Vec<f64>>,
    pub matching: Option<matching::Matching>,
    pub iterations: usize,
    pub converged: bool,
    /// Why no effect was estimated for any outcome, when none was.
    pub reason: Option<String>,
    pub matched_treated: u64,
    pub matched_comparison: u64,
    pub dropped: u64,
    pub impact: String,
    pub balance: String,
    pub survival: String,
    pub html: String,
    /// The person counts the published figures imply (`figures.json`, stays in `work_dir`).
    pub figures: figures::Figures,
}

/// Fits the propensity model, matches, estimates and renders the candidate outputs of a frame.
/// Never panics on degenerate data (empty or one-sided groups, outcomes without events,
/// constant covariates, tiny matched samples): what cannot be estimated becomes a `no_estimate`
/// row with its reason, and what is not safe to publish becomes `[c]`.
pub(crate) fn analyse(cfg: &EvaluateConfig, frame: &frame::Frame) -> Analysis {
    let n = frame.person_ids.len();
    let treated_persons = frame.treated.iter().filter(|t| **t).count();
    let untreated_persons = n - treated_persons;
    let mut reason = None;
    let (mut propensity, mut matching, mut iterations, mut converged) = (None, None, 0, false);
    if treated_persons == 0 || untreated_persons == 0 {
        // No count in prose: the reason names neither group's size.
        reason = Some(
            "the cohort has no treated persons or no untreated persons; both groups are needed".to_owned(),
        );
    } else {
        let x = design::design_matrix(&frame.covariates, n);
        let fit = logit::fit_logistic(&x, &frame.treated, RIDGE);
        iterations = fit.iterations;
        converged = fit.converged;
        if !fit.converged {
            warn!(
                iterations = fit.iterations,
                "the propensity model did not converge; using the last estimate"
            );
        }
        let lp = logit::linear_predictor(&x, &fit.coef);
        let width = matching::caliper_width(&lp, &frame.treated, cfg.caliper);
        let m = matching::match_nearest(
            &lp,
            &frame.treated,
            &frame.person_ids,
            width,
            cfg.ratio,
            cfg.replacement,
        );
        propensity = Some(lp.iter().map(|&e| logit::probability(e)).collect::<Vec<f64>>());
        if m.sets.is_empty() || m.sets.len() < cfg.min_treated {
            reason = Some(format!(
                "fewer than {} treated persons were matched to a comparison, the minimum for an estimate",
                cfg.min_treated.max(1)
            ));
        }
        matching = Some(m);
    }
    let (matched_treated, matched_comparison) = matching.as_ref().map_or((0, 0), |m| {
        let (t, c) = publish::matched_rows(m);
        (t.len() as u64, c.len() as u64)
    });
    let dropped = matching.as_ref().map_or(0, |m| m.dropped_by_caliper as u64);
    let empty = matching::Matching {
        sets: Vec::new(),
        weight: vec![0.0; n],
        dropped_by_caliper: 0,
        width: 0.0,
    };
    let m = matching.as_ref().unwrap_or(&empty);
    let impact = match &reason {
        Some(reason) => publish::no_estimate_csv(
            frame,
            (matched_treated, matched_comparison),
            reason,
            cfg.threshold,
        ),
        None => publish::impact_csv(frame, m, cfg.threshold),
    };
    // A few treated persons dropped by the caliper could be rebuilt by subtracting the matched
    // treated figures from the before-matching ones (publish.rs, rule 5): those are withheld.
    let few_dropped = dropped > 0 && dropped < cfg.threshold;
    let balance = publish::balance_csv(
        &design::balance_items(&frame.covariates),
        &frame.treated,
        m,
        cfg.threshold,
        few_dropped,
    );
    let survival = if reason.is_some() {
        csv::to_csv(&SURVIVAL_COLUMNS, &[])
    } else {
        publish::survival_csv(frame, m, cfg.threshold)
    };
    // The number dropped can be worked out from the eligible and matched treated counts, and the
    // eligible treated from the cohort total (a table margin) and the untreated count, so both
    // eligible counts are hidden when it is small. A zero is published: then the before- and
    // after-matching treated figures coincide anyway.
    let dropped_cell = dropped_cell(dropped, cfg.threshold);
    let eligible = |count: usize| {
        if few_dropped {
            SUPPRESSED.to_owned()
        } else {
            count_cell(count as u64, cfg.threshold)
        }
    };
    let meta = ReportMeta {
        title: "Impact evaluation".to_owned(),
        index_event: index_event(&cfg.index_date),
        follow_up_days: cfg.follow_up_days,
        threshold: cfg.threshold,
        caliper: cfg.caliper,
        ratio: cfg.ratio,
        replacement: cfg.replacement,
        treated_eligible: eligible(treated_persons),
        untreated_eligible: eligible(untreated_persons),
        dropped_by_caliper: dropped_cell,
        // No model at all (one group empty) is not a failed fit: the report says why instead.
        model_converged: converged || propensity.is_none(),
        outcome_windows: cfg.outcome_windows(),
        day: None,
        overlap: report::overlap(propensity.as_deref(), &frame.treated, cfg.threshold, few_dropped),
        data_cutoff: cfg.data_cutoff,
        deaths: cfg.deaths.is_some(),
        programme_start_days_before: cfg.treatment_date.as_ref().map(|_| BEFORE_START_DAYS),
    };
    let html = render_report(&impact, &balance, &survival, &meta);
    let published = figures::Published::new(&impact, &balance, &survival, &meta);
    let figures = figures::implied_counts(frame, m, &published);
    Analysis {
        propensity,
        matching,
        iterations,
        converged,
        reason,
        matched_treated,
        matched_comparison,
        dropped,
        impact,
        balance,
        survival,
        html,
        figures,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_deaths;
#[cfg(test)]
mod tests_fixture;
#[cfg(test)]
mod tests_jdl;
#[cfg(test)]
mod tests_lifelines;
#[cfg(test)]
mod tests_reading;
