//! Tests of the statistics and of the stage on small generated linked data.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use linklab_store::{NoProgress, WorkDir, read_parts};
use proptest::prelude::*;

use crate::csv::Table;
use crate::logit::{Matrix, cholesky_solve, fit_logistic};
use crate::matching::match_nearest;
use crate::stats::{Subject, kaplan_meier, log_rank};
use crate::tests_fixture::{dates, ints, strings, write_linked};
use crate::{
    EvaluateConfig, EvaluateError, Outcome, OutcomeKind, ReportMeta, render_report, run, spell_days,
};

// ---------------------------------------------------------------------------------------------
// Deterministic random numbers (SplitMix64), so tests need no extra crates.

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1_u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.uniform() * f64::from(n)) as u32
    }
}

/// A 0/1 frame value as a flag.
fn flag(v: f64) -> bool {
    v > 0.5
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

// ---------------------------------------------------------------------------------------------
// Linked tables in a temporary work_dir.

/// A simulated person with known potential outcomes.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    index: i32,
    age: i64,
    male: bool,
    prior: i64,
    group: &'static str,
    treated: bool,
    /// Days employed in the window (the true `days_employed`).
    days: u32,
    /// Days employed if taking part minus days employed if not, for this person.
    days_difference: f64,
    /// The reoffence day offset, if any.
    reoffence: Option<u32>,
    /// p1 − p0 of reoffending for this person.
    risk_difference: f64,
}

/// A world where treatment (about one in five) is confounded by age, sex and prior offences: older, male persons
/// with fewer priors take part more; they are also employed more and reoffend less.
/// Taking part adds `days_effect` days of employment and changes the log-odds of reoffending by
/// `log_odds_effect`.
fn simulate(seed: u64, n: usize, days_effect: f64, log_odds_effect: f64) -> Vec<Person> {
    let mut rng = Rng(seed);
    let groups = ["violence", "theft", "drugs", "fraud"];
    (0..n)
        .map(|i| {
            let z_age = rng.normal();
            let male = rng.uniform() < 0.7;
            let z_prior = rng.normal();
            let group = groups[rng.below(4) as usize];
            let group_shift = if group == "drugs" { 0.4 } else { 0.0 };
            let treated = rng.uniform()
                < logistic(
                    -2.0 + 0.9 * z_age + 0.6 * f64::from(u8::from(male)) - 0.4 * z_prior + group_shift,
                );
            // About a third are never employed in the window (days clamp at 0).
            let y0 =
                50.0 + 80.0 * z_age + 25.0 * f64::from(u8::from(male)) - 15.0 * z_prior + 40.0 * rng.normal();
            let clamp = |y: f64| y.round().clamp(0.0, 365.0);
            let y = y0 + if treated { days_effect } else { 0.0 };
            let eta0 = -0.4 - 0.8 * z_age + 0.5 * z_prior;
            let (p0, p1) = (logistic(eta0), logistic(eta0 + log_odds_effect));
            let p = if treated { p1 } else { p0 };
            let reoffence = (rng.uniform() < p).then(|| 1 + rng.below(365));
            Person {
                id: format!("P{i:05}"),
                index: 18_000 + rng.below(700) as i32,
                age: (30.0 + 8.0 * z_age).round() as i64,
                male,
                prior: (4.0 + 2.0 * z_prior).round().max(0.0) as i64,
                group,
                treated,
                days: clamp(y) as u32,
                days_difference: clamp(y0 + days_effect) - clamp(y0),
                reoffence,
                risk_difference: p1 - p0,
            }
        })
        .collect()
}

/// The `match_key` column of linked rows: `nino` where a row is linked, null where not.
fn nino_key(ids: &[Option<String>]) -> ArrayRef {
    strings(
        &ids.iter()
            .map(|i| i.as_ref().map(|_| "nino".to_owned()))
            .collect::<Vec<_>>(),
    )
}

/// Writes the employment extract: two overlapping spells per person employed for part of the
/// window, an open spell for one employed throughout, and an unlinked row.
fn write_employment(work: &WorkDir, persons: &[Person]) {
    let (mut e_id, mut e_start, mut e_end) = (vec![], vec![], vec![]);
    for p in persons {
        if p.days >= 365 {
            e_id.push(Some(p.id.clone()));
            e_start.push(Some(p.index - 20));
            e_end.push(None);
        } else if p.days > 0 {
            let last = p.index + p.days as i32;
            let cut = p.index + 1 + (p.days as i32 * 3) / 5;
            e_id.push(Some(p.id.clone()));
            e_start.push(Some(p.index + 1));
            e_end.push(Some(cut));
            e_id.push(Some(p.id.clone()));
            e_start.push(Some((cut - 10).max(p.index + 1)));
            e_end.push(Some(last));
        }
    }
    e_id.push(None);
    e_start.push(Some(18_000));
    e_end.push(None);
    write_linked(
        work,
        "employment",
        vec![
            ("person_id", strings(&e_id)),
            ("start_date", dates(&e_start)),
            ("end_date", dates(&e_end)),
        ],
    );
}

/// Writes the linked extracts of a simulated world: releases (with a later second release for
/// some and unlinked rows), participants, reoffences (plus events outside the window),
/// employment (two overlapping spells per employed person, or an open spell) and benefits
/// (a counted and a filtered-out type).
fn write_world(work: &WorkDir, persons: &[Person], seed: u64) {
    let mut rng = Rng(seed ^ 0xABCD);
    let (mut r_id, mut r_date, mut r_age, mut r_sex, mut r_prior, mut r_group) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut r_record = vec![];
    for p in persons {
        r_record.push(Some(format!("R{:06}", r_record.len())));
        r_id.push(Some(p.id.clone()));
        r_date.push(Some(p.index));
        r_age.push(Some(p.age));
        r_sex.push(Some(if p.male { "M" } else { "F" }.to_owned()));
        r_prior.push(Some(p.prior));
        r_group.push(Some(p.group.to_owned()));
        if rng.uniform() < 0.1 {
            // A later release of the same person: not the index event.
            r_id.push(Some(p.id.clone()));
            r_date.push(Some(p.index + 400));
            r_age.push(Some(p.age + 1));
            r_sex.push(Some("X".to_owned()));
            r_prior.push(Some(p.prior + 1));
            r_group.push(Some("other".to_owned()));
            r_record.push(Some(format!("R{:06}", r_record.len())));
        }
    }
    for _ in 0..5 {
        r_id.push(None);
        r_date.push(Some(18_100));
        r_age.push(Some(40));
        r_sex.push(Some("M".to_owned()));
        r_prior.push(Some(3));
        r_group.push(Some("theft".to_owned()));
        r_record.push(Some(format!("R{:06}", r_record.len())));
    }
    write_linked(
        work,
        "releases",
        vec![
            ("person_id", strings(&r_id)),
            ("match_key", nino_key(&r_id)),
            ("release_date", dates(&r_date)),
            ("age_at_release", ints(&r_age)),
            ("sex", strings(&r_sex)),
            ("prior_offences", ints(&r_prior)),
            ("offence_group", strings(&r_group)),
            ("record_id", strings(&r_record)),
        ],
    );

    let mut part: Vec<Option<String>> = persons
        .iter()
        .filter(|p| p.treated)
        .map(|p| Some(p.id.clone()))
        .collect();
    part.push(None);
    part.push(Some("NOT-IN-COHORT".to_owned()));
    write_linked(
        work,
        "participants",
        vec![("person_id", strings(&part)), ("match_key", nino_key(&part))],
    );

    let (mut o_id, mut o_date) = (vec![], vec![]);
    for p in persons {
        if let Some(day) = p.reoffence {
            o_id.push(Some(p.id.clone()));
            o_date.push(Some(p.index + day as i32));
            // A later offence in the window does not change the first.
            if day < 300 && rng.uniform() < 0.3 {
                o_id.push(Some(p.id.clone()));
                o_date.push(Some(p.index + day as i32 + 40));
            }
        } else if rng.uniform() < 0.2 {
            // Offences on the index day or after the window are not outcomes.
            o_id.push(Some(p.id.clone()));
            o_date.push(Some(
                p.index
                    + if rng.uniform() < 0.5 {
                        0
                    } else {
                        366 + rng.below(100) as i32
                    },
            ));
        }
    }
    o_id.push(None);
    o_date.push(Some(18_200));
    write_linked(
        work,
        "reoffences",
        vec![("person_id", strings(&o_id)), ("offence_date", dates(&o_date))],
    );

    write_employment(work, persons);

    let (mut b_id, mut b_start, mut b_end, mut b_type) = (vec![], vec![], vec![], vec![]);
    for p in persons {
        if rng.uniform() < 0.5 {
            b_id.push(Some(p.id.clone()));
            b_start.push(Some(p.index + 1 + rng.below(100) as i32));
            b_end.push(Some(p.index + 100 + rng.below(200) as i32));
            b_type.push(Some(
                if rng.uniform() < 0.5 {
                    "JSA"
                } else {
                    "UC_SEARCHING"
                }
                .to_owned(),
            ));
        }
        b_id.push(Some(p.id.clone()));
        b_start.push(Some(p.index + 1));
        b_end.push(None);
        b_type.push(Some("PIP".to_owned()));
    }
    write_linked(
        work,
        "benefits",
        vec![
            ("person_id", strings(&b_id)),
            ("start_date", dates(&b_start)),
            ("end_date", dates(&b_end)),
            ("benefit_type", strings(&b_type)),
        ],
    );
}

fn outcome(name: &str, kind: OutcomeKind) -> Outcome {
    Outcome::new(name, kind)
}

fn config(work: &WorkDir) -> EvaluateConfig {
    let mut cfg = EvaluateConfig::new(work.clone(), "releases", "release_date", "participants");
    cfg.covariates = ["age_at_release", "sex", "prior_offences", "offence_group"]
        .map(str::to_owned)
        .to_vec();
    let s = str::to_owned;
    let mut benefit = outcome(
        "days_on_benefit",
        OutcomeKind::SpellDays {
            extract: s("benefits"),
            start: s("start_date"),
            end: s("end_date"),
        },
    );
    benefit
        .filter
        .insert(s("benefit_type"), vec![s("JSA"), s("ESA"), s("UC_SEARCHING")]);
    cfg.outcomes = vec![
        outcome(
            "reoffended",
            OutcomeKind::EventWithin {
                extract: s("reoffences"),
                date: s("offence_date"),
            },
        ),
        outcome(
            "employed",
            OutcomeKind::SpellOverlap {
                extract: s("employment"),
                start: s("start_date"),
                end: s("end_date"),
            },
        ),
        outcome(
            "days_employed",
            OutcomeKind::SpellDays {
                extract: s("employment"),
                start: s("start_date"),
                end: s("end_date"),
            },
        ),
        benefit,
        outcome(
            "days_to_reoffence",
            OutcomeKind::TimeToEvent {
                extract: s("reoffences"),
                date: s("offence_date"),
            },
        ),
    ];
    cfg
}

/// The report's settings for a test: a 365-day follow-up after release, 1:1 matching within
/// 0.2 SD, a converged model, the threshold and the published cells `[treated, untreated,
/// dropped]`.
pub(crate) fn report_meta(threshold: u64, [treated, untreated, dropped]: [&str; 3]) -> ReportMeta {
    ReportMeta {
        title: "t".to_owned(),
        index_event: "release".to_owned(),
        follow_up_days: 365,
        threshold,
        caliper: 0.2,
        ratio: 1,
        replacement: false,
        treated_eligible: treated.to_owned(),
        untreated_eligible: untreated.to_owned(),
        dropped_by_caliper: dropped.to_owned(),
        model_converged: true,
        outcome_windows: std::collections::BTreeMap::new(),
        day: None,
        overlap: None,
        data_cutoff: None,
        deaths: false,
        programme_start_days_before: None,
    }
}

fn read_publish(work: &WorkDir, name: &str) -> String {
    fs::read_to_string(work.evaluation().join("publish").join(name)).unwrap()
}

/// The frame as rows of (`person_id`, group, column values by name).
fn read_frame(work: &WorkDir) -> Vec<(String, Option<String>, HashMap<String, f64>)> {
    let mut rows = Vec::new();
    for batch in read_parts(&work.evaluation().join("frame"), 1024).unwrap() {
        let batch = batch.unwrap();
        let ids = batch
            .column_by_name("person_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let group = batch.column_by_name("group").unwrap().as_string::<i32>().clone();
        for i in 0..batch.num_rows() {
            let mut values = HashMap::new();
            for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
                if let Some(a) = col.as_any().downcast_ref::<arrow::array::BooleanArray>() {
                    values.insert(field.name().clone(), f64::from(u8::from(a.value(i))));
                } else if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
                    if a.is_valid(i) {
                        values.insert(field.name().clone(), a.value(i) as f64);
                    }
                } else if let Some(a) = col.as_any().downcast_ref::<Float64Array>()
                    && a.is_valid(i)
                {
                    values.insert(field.name().clone(), a.value(i));
                }
            }
            rows.push((
                ids.value(i).to_owned(),
                group.is_valid(i).then(|| group.value(i).to_owned()),
                values,
            ));
        }
    }
    rows
}

fn impact_row<'a>(table: &'a Table, outcome: &str, measure: &str) -> crate::csv::Row<'a> {
    table
        .rows()
        .find(|r| r.get("outcome") == outcome && r.get("measure") == measure)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// spell_days: the day-counting convention.

/// Data-driven check: `(index, follow_up, spells, expected days)`.
/// `(index, follow_up, spells, expected days)`.
type SpellCase<'a> = (i32, u32, &'a [(i32, Option<i32>)], u32);

fn check(cases: &[SpellCase<'_>]) {
    for (index, follow_up, spells, expected) in cases {
        assert_eq!(
            spell_days(*index, *follow_up, spells),
            *expected,
            "index {index}, F {follow_up}, spells {spells:?}"
        );
    }
}

#[test]
fn spell_days_merges_overlaps_and_clips_to_the_window() {
    check(&[
        // Window (100, 110] = days 101..=110.
        (100, 10, &[], 0),
        (100, 10, &[(101, Some(101))], 1),
        (100, 10, &[(100, Some(100))], 0), // the index day is not in the window
        (100, 10, &[(90, Some(100))], 0),  // ends on the index day
        (100, 10, &[(90, Some(101))], 1),  // starts before, ends on the first day
        (100, 10, &[(110, Some(200))], 1), // starts on the last day
        (100, 10, &[(111, Some(200))], 0), // starts after the window
        (100, 10, &[(105, None)], 6),      // open: runs to the end, 105..=110
        (100, 10, &[(50, None)], 10),      // open and started before: the whole window
        (100, 10, &[(101, Some(105)), (104, Some(108))], 8), // overlap counted once: 101..=108
        (100, 10, &[(101, Some(103)), (104, Some(106))], 6), // adjacent spells: 101..=106
        (100, 10, &[(101, Some(102)), (105, Some(106))], 4), // a gap
        (100, 10, &[(102, Some(104)), (102, Some(104))], 3), // duplicates
        (100, 10, &[(101, Some(110)), (103, Some(104))], 10), // nested
        (100, 10, &[(108, Some(103))], 0), // ends before it starts: ignored
        (100, 10, &[(103, None), (101, Some(102))], 10),
        (100, 365, &[(101, Some(465))], 365),
    ]);
}

proptest! {
    #[test]
    fn spell_days_lies_within_the_window(
        index in -1000_i32..1000,
        follow_up in 0_u32..800,
        spells in proptest::collection::vec((-2000_i32..3000, proptest::option::of(-2000_i32..3000)), 0..8),
    ) {
        let days = spell_days(index, follow_up, &spells);
        prop_assert!(days <= follow_up);
        // Adding a spell never reduces the days covered.
        let mut more = spells.clone();
        more.push((index + 1, Some(index + 1)));
        prop_assert!(spell_days(index, follow_up, &more) >= days);
    }
}

// ---------------------------------------------------------------------------------------------
// Linear algebra and the logistic regression.

#[test]
fn cholesky_solves_a_known_system() {
    // A = [[4, 2], [2, 3]], x = [1, -1] → b = [2, -1].
    let x = cholesky_solve(&[4.0, 2.0, 2.0, 3.0], 2, &[2.0, -1.0]).unwrap();
    assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] + 1.0).abs() < 1e-12, "{x:?}");
    assert!(
        cholesky_solve(&[1.0, 2.0, 2.0, 1.0], 2, &[1.0, 1.0]).is_none(),
        "not positive definite"
    );
}

#[test]
fn logistic_regression_recovers_known_coefficients() {
    let truth = [-0.5, 1.0, -0.7, 0.4];
    let mut rng = Rng(7);
    let rows = 20_000;
    let mut data = Vec::with_capacity(rows * 4);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row = [
            1.0,
            rng.normal(),
            rng.normal(),
            f64::from(u8::from(rng.uniform() < 0.3)),
        ];
        let eta: f64 = row.iter().zip(truth).map(|(a, b)| a * b).sum();
        y.push(rng.uniform() < logistic(eta));
        data.extend(row);
    }
    let fit = fit_logistic(&Matrix { rows, cols: 4, data }, &y, 1e-6);
    assert!(fit.converged && fit.iterations < 15, "{fit:?}");
    for (got, want) in fit.coef.iter().zip(truth) {
        assert!(
            (got - want).abs() < 0.08,
            "coefficients {:?} vs {truth:?}",
            fit.coef
        );
    }
}

#[test]
fn ridge_keeps_a_separated_fit_finite() {
    // x perfectly separates y: the unpenalised MLE does not exist.
    let rows = 40;
    let data: Vec<f64> = (0..rows).flat_map(|i| [1.0, i as f64 - 19.5]).collect();
    let y: Vec<bool> = (0..rows).map(|i| i >= 20).collect();
    let fit = fit_logistic(&Matrix { rows, cols: 2, data }, &y, 1.0);
    assert!(fit.coef.iter().all(|c| c.is_finite()), "{fit:?}");
    assert!(fit.coef[1] > 0.5 && fit.coef[1] < 50.0, "{fit:?}");
}

// ---------------------------------------------------------------------------------------------
// Matching.

#[test]
fn greedy_matching_is_nearest_within_caliper_without_replacement() {
    let lp = [2.0, 1.0, 0.0, 1.9, 1.2, 0.05, 5.0];
    let treated = [true, true, true, false, false, false, true];
    let ids: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
    let m = match_nearest(&lp, &treated, &ids, 0.3, 1, false);
    // Order: p6 (5.0, no control within 0.3), p0 (2.0 → p3), p1 (1.0 → p4), p2 (0.0 → p5).
    assert_eq!(m.sets, vec![(0, vec![3]), (1, vec![4]), (2, vec![5])]);
    assert_eq!(m.dropped_by_caliper, 1);
    assert!(m.is_paired());
    assert_eq!(m.weight, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);

    // With replacement and 2:1, p0 and p1 share the controls nearest to them.
    let m = match_nearest(&lp, &treated, &ids, 1.0, 2, true);
    // p1 (1.0): p4 (1.2) at 0.2, then p3 (1.9) at 0.9 before p5 (0.05) at 0.95. p2 (0.0): p5 only,
    // p4 (1.2) is beyond the caliper.
    assert_eq!(m.sets, vec![(0, vec![3, 4]), (1, vec![4, 3]), (2, vec![5])]);
    assert!(!m.is_paired());
    assert_eq!(m.weight, vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
}

#[test]
fn k_to_one_without_replacement_runs_in_rounds() {
    let lp = [1.0, 0.9, 1.05, 1.2, 0.0, 0.1];
    let treated = [true, false, false, false, true, false];
    let ids: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let m = match_nearest(&lp, &treated, &ids, 0.5, 2, false);
    // Round 1: p0 → p2 (0.05), p4 → p5 (0.1). Round 2: p0 → p1 (0.1); p4 has none left within 0.5.
    assert_eq!(m.sets, vec![(0, vec![2, 1]), (4, vec![5])]);
    assert_eq!(m.weight, vec![1.0, 0.5, 0.5, 0.0, 1.0, 1.0]);
}

// ---------------------------------------------------------------------------------------------
// Kaplan–Meier and log-rank against a hand-computed example.

fn subjects(data: &[(u32, bool)]) -> Vec<Subject> {
    data.iter()
        .map(|&(time, event)| Subject {
            time,
            event,
            weight: 1.0,
        })
        .collect()
}

#[test]
fn kaplan_meier_and_log_rank_match_a_hand_computed_example() {
    // A: events on days 2, 3, 5; censored on 3 and 8. B: events on 1, 3, 4; censored on 6.
    let a = subjects(&[(2, true), (3, true), (3, false), (5, true), (8, false)]);
    let b = subjects(&[(1, true), (3, true), (4, true), (6, false)]);
    let km: Vec<(u32, u64, u64, f64)> = kaplan_meier(&a)
        .iter()
        .map(|s| (s.day, s.persons_at_risk, s.person_events, s.survival))
        .collect();
    // S(2) = 4/5; S(3) = 4/5 · 3/4 (the censored on day 3 is still at risk); S(5) = 0.6 · 1/2.
    let want = [(2, 5, 1, 0.8), (3, 4, 1, 0.6), (5, 2, 1, 0.3)];
    assert_eq!(km.len(), want.len());
    for (got, want) in km.iter().zip(want) {
        assert_eq!((got.0, got.1, got.2), (want.0, want.1, want.2));
        assert!((got.3 - want.3).abs() < 1e-12, "{km:?}");
    }
    let km_b: Vec<f64> = kaplan_meier(&b).iter().map(|s| s.survival).collect();
    assert_eq!(km_b, vec![0.75, 0.5, 0.25]);
    // By hand: O − E = 3 − 3.490079… = −0.490079…, V = 1.361674…, χ² = 61009 / 345887.
    let (chi2, p) = log_rank(&a, &b);
    assert!((chi2 - 61_009.0 / 345_887.0).abs() < 1e-12, "{chi2}");
    assert!((p - 0.674_499_2).abs() < 1e-6, "{p}");
    // Greenwood at day 5: 1/(5·4) + 1/(4·3) + 1/(2·1).
    let last = kaplan_meier(&a)[2];
    assert!((last.greenwood - (1.0 / 20.0 + 1.0 / 12.0 + 0.5)).abs() < 1e-12);
}

#[test]
fn published_km_steps_pool_events_up_to_the_threshold() {
    // 30 persons, one event a day on days 1..=25, five censored at 30.
    let data: Vec<(u32, bool)> = (1..=25)
        .map(|d| (d, true))
        .chain((0..5).map(|_| (30, false)))
        .collect();
    let steps = kaplan_meier(&subjects(&data));
    let pooled = crate::publish::pooled_steps(&steps, 10);
    // Days 1..=10 (30 at risk); 11..=20 (20 at risk) and the 5 left over, merged into it so the
    // curve ends at the survival of the whole follow-up (5/30).
    let key = |p: &[(u32, u64, u64, f64)]| p.iter().map(|s| (s.0, s.1, s.2)).collect::<Vec<_>>();
    assert_eq!(key(&pooled), vec![(10, 30, 10), (25, 20, 15)]);
    assert!((pooled[0].3 - 20.0 / 30.0).abs() < 1e-12);
    assert!((pooled[1].3 - 5.0 / 30.0).abs() < 1e-12);
    // With a threshold of 15 the second pool starts with 15 at risk but days 16..=25 hold only
    // 10 events, so they are merged into the first pool.
    assert_eq!(key(&crate::publish::pooled_steps(&steps, 15)), vec![(25, 30, 25)]);
    assert!(crate::publish::pooled_steps(&steps, 31).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The whole stage on simulated, confounded data.

#[test]
fn matched_ci_covers_the_true_effect_where_the_naive_difference_is_biased() {
    // A 95% CI misses now and then by design; over five seeds at least four must cover the truth
    // (a correct method fails this about 3% of the time; the seeds are fixed, so the test is
    // deterministic). The naive difference must be biased on every seed.
    let seeds = [11_u64, 12, 13, 14, 15];
    let (mut days_covered, mut rate_covered) = (0, 0);
    let mut log = String::new();
    for seed in seeds {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::new(dir.path());
        let persons = simulate(seed, 2500, 30.0, -0.7);
        write_world(&work, &persons, seed);
        let summary = run(&config(&work), &NoProgress).unwrap();
        assert!(summary.estimated, "{summary:?}");
        assert!(summary.matched_treated >= 400, "{summary:?}");
        let impact = Table::parse(&read_publish(&work, "impact.csv"));
        let frame = read_frame(&work);

        // The true effects on the matched treated: their mean individual effects.
        let by_id: HashMap<&str, &Person> = persons.iter().map(|p| (p.id.as_str(), p)).collect();
        let matched: Vec<&Person> = frame
            .iter()
            .filter(|r| r.1.as_deref() == Some("treated"))
            .map(|r| by_id[r.0.as_str()])
            .collect();
        let true_mean =
            |f: fn(&Person) -> f64| matched.iter().map(|p| f(p)).sum::<f64>() / matched.len() as f64;

        // Days employed: 30 more days, less where the window's bounds cut the effect.
        let truth = true_mean(|p| p.days_difference);
        assert!(truth > 20.0 && truth <= 30.0, "{truth}");
        let row = impact_row(&impact, "days_employed", "mean_days");
        let (lo, hi) = (row.num("ci_low").unwrap(), row.num("ci_high").unwrap());
        days_covered += usize::from(lo <= truth && truth <= hi);
        let mean = |treated: bool, column: &str| {
            let v: Vec<f64> = frame
                .iter()
                .filter(|r| flag(r.2["treated"]) == treated)
                .map(|r| r.2[column])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let naive = mean(true, "days_employed") - mean(false, "days_employed");
        assert!(
            naive > hi && naive - truth > 15.0,
            "seed {seed}: naive {naive} vs CI {lo}..{hi}"
        );
        let _ = writeln!(
            log,
            "seed {seed}: days CI {lo}..{hi}, truth {truth}, naive {naive}"
        );

        // Reoffending: p1 − p0.
        let truth = true_mean(|p| p.risk_difference);
        let row = impact_row(&impact, "reoffended", "rate");
        let (lo, hi) = (row.num("ci_low").unwrap(), row.num("ci_high").unwrap());
        rate_covered += usize::from(lo <= truth && truth <= hi);
        let naive_rate = mean(true, "reoffended") - mean(false, "reoffended");
        assert!(
            naive_rate < lo,
            "seed {seed}: naive {naive_rate} vs CI {lo}..{hi}"
        );
        let _ = writeln!(
            log,
            "seed {seed}: rate CI {lo}..{hi}, truth {truth}, naive {naive_rate}"
        );

        // Balance improves: the confounders' SMDs shrink to below 0.1; no SMD after matching is
        // large (levels that are not confounders vary by chance, SE about 0.06 here).
        let balance = Table::parse(&read_publish(&work, "balance.csv"));
        for r in balance.rows() {
            let (before, after) = (r.num("smd_before").unwrap(), r.num("smd_after").unwrap());
            assert!(after.abs() < 0.2, "seed {seed}: {:?}", r.fields());
            if ["age_at_release", "prior_offences"].contains(&r.get("covariate")) || r.get("level") == "M" {
                assert!(
                    after.abs() < 0.1 && after.abs() < before.abs() / 2.0,
                    "seed {seed}: {:?}",
                    r.fields()
                );
            }
        }
        let age = balance
            .rows()
            .find(|r| r.get("covariate") == "age_at_release")
            .unwrap();
        assert!(age.num("smd_before").unwrap() > 0.5);
    }
    assert!(days_covered >= 4 && rate_covered >= 4, "{log}");
}

#[test]
fn frame_measures_each_person_by_the_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let persons = simulate(5, 300, 30.0, -0.7);
    write_world(&work, &persons, 5);
    let mut cfg = config(&work);
    cfg.min_treated = 10;
    let summary = run(&cfg, &NoProgress).unwrap();
    assert_eq!(summary.cohort_persons, 300);
    assert_eq!(summary.cohort_records.unlinked, 5);
    assert_eq!(summary.treatment_records.unlinked, 1);
    assert_eq!(summary.treatment_records.not_in_cohort, 1);
    assert_eq!(summary.outcome_records["reoffended"].unlinked, 1);
    assert_eq!(summary.outcome_records["days_employed"].unlinked, 1);
    assert!(summary.outcome_records["days_on_benefit"].filtered_out >= 300);
    let frame = read_frame(&work);
    let by_id: HashMap<&str, &Person> = persons.iter().map(|p| (p.id.as_str(), p)).collect();
    for (id, group, values) in &frame {
        let p = by_id[id.as_str()];
        assert_eq!(flag(values["treated"]), p.treated);
        assert_eq!(
            values["age_at_release"] as i64, p.age,
            "covariates come from the earliest release"
        );
        assert_eq!(values["days_employed"] as u32, p.days);
        assert_eq!(flag(values["employed"]), p.days > 0);
        assert_eq!(flag(values["reoffended"]), p.reoffence.is_some());
        assert_eq!(values["days_to_reoffence"] as u32, p.reoffence.unwrap_or(365));
        assert_eq!(flag(values["days_to_reoffence_event"]), p.reoffence.is_some());
        assert!(values["days_on_benefit"] <= 365.0);
        match group.as_deref() {
            Some("treated") => assert!(p.treated && (values["weight"] - 1.0).abs() < 1e-12),
            Some("comparison") => assert!(!p.treated && (values["weight"] - 1.0).abs() < 1e-12),
            _ => assert!(!values.contains_key("weight")),
        }
    }
}

#[test]
fn too_few_matched_treated_gives_no_estimate_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let persons = simulate(3, 120, 30.0, -0.7);
    write_world(&work, &persons, 3);
    let cfg = config(&work); // min_treated 60, but only about 40 take part
    let summary = run(&cfg, &NoProgress).unwrap();
    assert!(!summary.estimated);
    let impact = read_publish(&work, "impact.csv");
    let table = Table::parse(&impact);
    assert_eq!(table.header(), crate::IMPACT_COLUMNS);
    assert_eq!(table.rows().count(), cfg.outcomes.len());
    for row in table.rows() {
        assert_eq!(row.get("measure"), "no_estimate");
        assert_eq!(row.get("difference"), "");
    }
    insta::assert_snapshot!(impact);
    assert_eq!(
        read_publish(&work, "survival.csv"),
        "outcome,group,day,at_risk,events,survival\n"
    );
    let html = read_publish(&work, "report.html");
    assert!(
        html.contains("No effects were estimated: fewer than 60 treated persons were matched"),
        "{html}"
    );
}

#[test]
fn rates_with_few_events_or_non_events_are_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    // 80 treated and 80 untreated with identical covariates; reoffending: 5 treated and 30
    // untreated; everyone is employed except 3 untreated.
    let n = 160;
    let ids: Vec<Option<String>> = (0..n).map(|i| Some(format!("Q{i:04}"))).collect();
    let treated = |i: usize| i < 80;
    write_linked(
        &work,
        "releases",
        vec![
            ("person_id", strings(&ids)),
            ("release_date", dates(&vec![Some(18_000); n])),
            (
                "sex",
                strings(
                    &(0..n)
                        .map(|i| Some(if i % 2 == 0 { "M" } else { "F" }.to_owned()))
                        .collect::<Vec<_>>(),
                ),
            ),
        ],
    );
    write_linked(&work, "participants", vec![("person_id", strings(&ids[..80]))]);
    let reoffenders: Vec<Option<String>> = (0..5).chain(80..110).map(|i| ids[i].clone()).collect();
    write_linked(
        &work,
        "reoffences",
        vec![
            ("person_id", strings(&reoffenders)),
            ("offence_date", dates(&vec![Some(18_100); reoffenders.len()])),
        ],
    );
    let employed: Vec<Option<String>> = (0..n)
        .filter(|&i| treated(i) || i >= 83)
        .map(|i| ids[i].clone())
        .collect();
    write_linked(
        &work,
        "employment",
        vec![
            ("person_id", strings(&employed)),
            ("start_date", dates(&vec![Some(18_010); employed.len()])),
            ("end_date", dates(&vec![None; employed.len()])),
        ],
    );
    let mut cfg = EvaluateConfig::new(work.clone(), "releases", "release_date", "participants");
    cfg.covariates = vec!["sex".to_owned()];
    cfg.min_treated = 20;
    let s = str::to_owned;
    cfg.outcomes = vec![
        outcome(
            "reoffended",
            OutcomeKind::EventWithin {
                extract: s("reoffences"),
                date: s("offence_date"),
            },
        ),
        outcome(
            "employed",
            OutcomeKind::SpellOverlap {
                extract: s("employment"),
                start: s("start_date"),
                end: s("end_date"),
            },
        ),
        outcome(
            "days_employed",
            OutcomeKind::SpellDays {
                extract: s("employment"),
                start: s("start_date"),
                end: s("end_date"),
            },
        ),
    ];
    let summary = run(&cfg, &NoProgress).unwrap();
    assert_eq!(summary.matched_treated, 80);
    let impact = read_publish(&work, "impact.csv");
    insta::assert_snapshot!(impact, @r"
        outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value,p_holm
        reoffended,rate,80,80,[c],[c],[c],[c],[c],[c],[c]
        employed,rate,80,80,[c],[c],[c],[c],[c],[c],[c]
        days_employed,mean_days,80,80,[c],[c],[c],[c],[c],[c],[c]
        ");
    // With a threshold of 3 the reoffending rate is safe (5 and 75, 30 and 50), employment is
    // not (all 80 treated employed: 0 without).
    cfg.threshold = 3;
    run(&cfg, &NoProgress).unwrap();
    let table = Table::parse(&read_publish(&work, "impact.csv"));
    let row = impact_row(&table, "reoffended", "rate");
    assert_eq!(row.get("treated_value"), "0.0625");
    assert_eq!(row.get("comparison_value"), "0.3750");
    assert_eq!(impact_row(&table, "employed", "rate").get("difference"), "[c]");
    // Group sizes below the threshold are suppressed too (without the covariate: 160 persons
    // allow no more than one category at this threshold).
    cfg.threshold = 81;
    cfg.covariates.clear();
    run(&cfg, &NoProgress).unwrap();
    let table = Table::parse(&read_publish(&work, "impact.csv"));
    assert_eq!(
        impact_row(&table, "reoffended", "rate").get("treated_persons"),
        "[c]"
    );
}

#[test]
fn impact_csv_and_headlines_of_a_fixed_small_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let persons = simulate(21, 400, 30.0, -0.7);
    write_world(&work, &persons, 21);
    let mut cfg = config(&work);
    cfg.min_treated = 20;
    cfg.threshold = 5;
    run(&cfg, &NoProgress).unwrap();
    let impact = read_publish(&work, "impact.csv");
    insta::assert_snapshot!("impact_small", impact);
    let survival = read_publish(&work, "survival.csv");
    insta::assert_snapshot!("survival_small", survival);
    let meta = ReportMeta {
        title: "Impact evaluation".to_owned(),
        ..crate::tests::report_meta(5, ["100", "300", "[c]"])
    };
    let headlines = crate::report::headlines(&Table::parse(&impact), &meta).join("\n");
    insta::assert_snapshot!("headlines_small", headlines);
    let balance = read_publish(&work, "balance.csv");
    insta::assert_snapshot!("balance_small", balance);
}

#[test]
fn headline_sentence_reads_like_the_jdl() {
    let impact = "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\n\
employed,rate,400,400,0.3900,0.3090,0.0810,0.0500,0.1120,0.0001\n\
reoffended,rate,400,400,0.2500,0.3100,-0.0600,-0.1200,0.0000,0.0510\n\
days_employed,mean_days,400,400,88.00,72.00,16.00,4.50,27.50,0.0060\n\
days_on_benefit,mean_days,400,400,60.00,75.00,-15.00,-28.00,-2.00,0.0240\n\
housed,rate,400,400,0.5000,0.5000,0.0000,-0.0600,0.0600,1.0000\n\
days_in_custody,mean_days,400,400,50.00,50.02,-0.02,-9.00,9.00,0.9960\n";
    let meta = crate::tests::report_meta(10, ["450", "5000", "50"]);
    let headlines = crate::report::headlines(&Table::parse(impact), &meta).join("\n");
    // A positive, a negative and a null effect, for rates and days: the difference with its sign
    // and the CI of that same difference, never an interval flipped to match "less".
    insta::assert_snapshot!(headlines, @r"
        For every 100 people who took part, 39 were employed in the year after release, compared with 31 for every 100 similar people who did not take part (difference +8.1 percentage points, 95% CI +5.0 to +11.2). This difference is statistically significant (p < 0.001). Its E-value is 1.84 (1.60 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 1.84 each, beyond the characteristics matched on, to explain the difference away.
        For every 100 people who took part, 25 reoffended in the year after release, compared with 31 for every 100 similar people who did not take part (difference -6.0 percentage points, 95% CI -12.0 to 0.0). This result is inconclusive (p = 0.051): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.
        People who took part had on average 16.0 more days employed in the year after release: 88.0 compared with 72.0 days for similar people who did not take part (difference +16.0 days, 95% CI +4.5 to +27.5). This difference is statistically significant (p = 0.006). Its E-value is 1.74 (1.32 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 1.74 each, beyond the characteristics matched on, to explain the difference away.
        People who took part had on average 15.0 fewer days on benefit in the year after release: 60.0 compared with 75.0 days for similar people who did not take part (difference -15.0 days, 95% CI -28.0 to -2.0). This difference is statistically significant (p = 0.024). Its E-value is 1.81 (1.20 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 1.81 each, beyond the characteristics matched on, to explain the difference away.
        For every 100 people who took part, 50 were housed in the year after release, compared with 50 for every 100 similar people who did not take part (difference 0.0 percentage points, 95% CI -6.0 to +6.0). This result is inconclusive (p = 1.000): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.
        People who took part had on average as many days in custody in the year after release: 50.0 compared with 50.0 days for similar people who did not take part (difference 0.0 days, 95% CI -9.0 to +9.0). This result is inconclusive (p = 0.996): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.
        ");
}

#[test]
fn report_is_self_contained_and_escapes_everything() {
    let impact = "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\n\
\"<script>alert(1)</script>\",rate,100,100,0.5,0.4,0.1,0.01,0.19,0.03\n";
    let balance = "covariate,level,smd_before,smd_after,treated_mean,comparison_mean,treated_mean_before,untreated_mean_before\n\
sex,\"<img src=x onerror=alert(1)>\",0.3,0.01,0.5,0.49,0.5,0.35\n";
    let survival = "outcome,group,day,at_risk,events,survival\n\"a&b\",treated,10,100,10,0.9\n\"a&b\",comparison,12,100,12,0.88\n";
    let meta = ReportMeta {
        title: "Evaluation <of> \"things\"".to_owned(),
        ..crate::tests::report_meta(10, ["100", "900", "[c]"])
    };
    let html = render_report(impact, balance, survival, &meta);
    assert!(
        !html.contains("did not converge"),
        "a converged fit needs no caution"
    );
    let unconverged = ReportMeta {
        model_converged: false,
        ..meta.clone()
    };
    assert!(
        render_report(impact, balance, survival, &unconverged)
            .contains("Caution: the fit of the propensity model did not converge"),
        "a fit that did not converge is said in the report"
    );
    assert!(!html.contains("<script"), "script tags are escaped");
    assert!(!html.contains("<img"), "img tags are escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("a&amp;b"));
    assert!(html.contains("Evaluation &lt;of&gt; &quot;things&quot;"));
    for needle in ["http:", "https:", "src=\"", "href=", "@import", "url("] {
        assert!(!html.contains(needle), "no external request: {needle}");
    }
    assert!(html.contains("<meta name=\"viewport\""));
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "differences, Kaplan–Meier and love plot"
    );
}

#[test]
fn missing_inputs_are_reported_by_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let err = run(&config(&work), &NoProgress).unwrap_err();
    assert!(matches!(err, EvaluateError::MissingTable { .. }));
    let persons = simulate(1, 50, 30.0, -0.7);
    write_world(&work, &persons, 1);
    let mut cfg = config(&work);
    cfg.covariates.push("postcode".to_owned());
    let err = run(&cfg, &NoProgress).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"column postcode not found in linked table releases");
    let mut cfg = config(&work);
    cfg.covariates.push("days_employed".to_owned());
    let err = run(&cfg, &NoProgress).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"invalid evaluation settings: the frame column days_employed would appear twice; rename the covariate or outcome");
    let mut cfg = config(&work);
    cfg.index_date = "age_at_release".to_owned();
    let err = run(&cfg, &NoProgress).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"column age_at_release of linked table releases has type Int64; the index date needs a date (Date32, or ISO text)");
}

// ---------------------------------------------------------------------------------------------
// Degenerate data: never a panic.

/// A frame of `n` persons from small generated columns (see the proptest below).
fn small_frame(
    treated: &[bool],
    level: &[u8],
    age: &[Option<u8>],
    events: &[(bool, u8)],
) -> crate::frame::Frame {
    use crate::frame::{CovValues, Covariate, Frame, Measure, OutcomeValues};
    let n = treated.len();
    let outcome = |name: &str, measure: Measure| OutcomeValues {
        name: name.to_owned(),
        measure,
        value: events
            .iter()
            .map(|&(e, d)| match measure {
                Measure::Rate => u32::from(e),
                Measure::Days | Measure::Count => u32::from(d) * u32::from(e),
                Measure::TimeToEvent => {
                    if e {
                        u32::from(d) + 1
                    } else {
                        365
                    }
                }
            })
            .collect(),
        event: events.iter().map(|&(e, _)| e).collect(),
        known: vec![true; events.len()],
        follow_up: 365,
    };
    Frame {
        person_ids: (0..n).map(|i| format!("P{i:04}")).collect(),
        index: vec![18_000; n],
        treated: treated.to_vec(),
        covariates: vec![
            Covariate {
                name: "offence".to_owned(),
                values: CovValues::Text(level.iter().map(|l| (*l > 0).then(|| format!("g{l}"))).collect()),
            },
            Covariate {
                name: "age".to_owned(),
                values: CovValues::Num {
                    values: age.iter().map(|a| a.map(f64::from)).collect(),
                    ty: crate::columns::NumType::Int,
                },
            },
        ],
        outcomes: vec![
            outcome("reoffended", Measure::Rate),
            outcome("days_employed", Measure::Days),
            outcome("days_to_reoffence", Measure::TimeToEvent),
        ],
        cohort_counts: crate::RecordCounts::default(),
        treatment_counts: crate::RecordCounts::default(),
        outcome_counts: std::collections::BTreeMap::new(),
        outcome_persons: std::collections::BTreeMap::new(),
        incomplete_follow_up: 0,
        treated_without_index: 0,
        death_counts: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Random small frames (empty and one-sided groups, outcomes with no events or only events,
    /// constant and missing covariates, one level, tiny matched samples), any threshold,
    /// `min_treated` and matching settings: the analysis never panics, and every published
    /// count is at least the threshold.
    #[test]
    fn analysis_never_panics_on_degenerate_data(
        rows in proptest::collection::vec(
            (any::<bool>(), 0_u8..3, proptest::option::of(prop_oneof![Just(30_u8), 18_u8..60]), (any::<bool>(), 0_u8..4)),
            0..40,
        ),
        all_events in proptest::option::of(any::<bool>()),
        threshold in 1_u64..6,
        min_treated in 0_usize..4,
        ratio in 1_usize..3,
        replacement in any::<bool>(),
    ) {
        let treated: Vec<bool> = rows.iter().map(|r| r.0).collect();
        let level: Vec<u8> = rows.iter().map(|r| r.1).collect();
        let age: Vec<Option<u8>> = rows.iter().map(|r| r.2).collect();
        let events: Vec<(bool, u8)> = rows
            .iter()
            .map(|r| (all_events.unwrap_or(r.3.0), r.3.1))
            .collect();
        let frame = small_frame(&treated, &level, &age, &events);
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EvaluateConfig::new(WorkDir::new(dir.path()), "releases", "release_date", "participants");
        cfg.threshold = threshold;
        cfg.min_treated = min_treated;
        cfg.ratio = ratio;
        cfg.replacement = replacement;
        let a = crate::analyse(&cfg, &frame);
        let impact = Table::parse(&a.impact);
        for row in impact.rows() {
            for column in ["treated_persons", "comparison_persons"] {
                if let Some(v) = row.num(column) {
                    prop_assert!(v >= threshold as f64, "{column} {v} below {threshold}");
                }
            }
        }
        prop_assert!(a.html.contains("</html>"));
        // Every count a published figure implies is at least the threshold.
        for cell in &a.figures.cells {
            prop_assert!(cell.persons >= threshold, "{cell:?} below {threshold}");
        }
        places_are_printed(&a);
    }
}

/// Every place of `figures.json` names a value the published files hold: a row and column of
/// a CSV, or a count the report marks; and every figure cell has places.
fn places_are_printed(a: &crate::Analysis) {
    let files = [
        ("impact.csv", Table::parse(&a.impact)),
        ("balance.csv", Table::parse(&a.balance)),
        ("survival.csv", Table::parse(&a.survival)),
    ];
    for cell in &a.figures.cells {
        assert!(!cell.places.is_empty(), "{cell:?}");
        for place in &cell.places {
            let (file, rest) = place.split_once(':').unwrap();
            if file == "report.html" {
                assert!(
                    a.html.contains(place.as_str()),
                    "{place} is not marked in the report"
                );
                continue;
            }
            let (row, column) = rest.split_once(':').unwrap();
            let table = &files.iter().find(|(f, _)| *f == file).unwrap().1;
            let row = table.rows().nth(row.parse().unwrap()).unwrap();
            assert!(table.header().iter().any(|h| h == column), "{place}: {row:?}");
        }
    }
}

#[test]
fn an_outcome_without_events_gives_no_panic_and_no_estimate() {
    // 60 treated and 60 untreated, identical covariates; nobody has the outcome (a mistyped
    // `where` label has the same effect): the days outcome has no variance.
    let n = 120;
    let treated: Vec<bool> = (0..n).map(|i| i < 60).collect();
    let level = vec![1; n];
    let age: Vec<Option<u8>> = (0..n).map(|i| Some(20 + (i % 30) as u8)).collect();
    let none = vec![(false, 0); n];
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.min_treated = 10;
    let a = crate::analyse(&cfg, &small_frame(&treated, &level, &age, &none));
    insta::assert_snapshot!(a.impact, @r"
        outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value,p_holm
        reoffended,rate,60,60,[c],[c],[c],[c],[c],[c],[c]
        days_employed,mean_days,60,60,[c],[c],[c],[c],[c],[c],[c]
        days_to_reoffence,log_rank,60,60,[c],[c],[c],[c],[c],[c],[c]
        days_to_reoffence,rmst,60,60,[c],[c],[c],[c],[c],[c],[c]
        days_to_reoffence,mean_days_if_event,60,60,[c],[c],[c],[c],[c],[c],[c]
        ");
    // The outcome depends on age alone and every pair has the same age: enough persons with and
    // without it to publish, but the paired differences are all zero (no variance). Thirty more
    // young untreated persons make age matter to the score (with identical groups every score
    // is equal within the tie tolerance and ties go to the lowest person id, whatever the age).
    let m = n + 30;
    let treated: Vec<bool> = (0..m).map(|i| i < 60).collect();
    let level = vec![1; m];
    let age: Vec<Option<u8>> = (0..m)
        .map(|i| Some(20 + if i < n { i % 30 } else { i % 15 } as u8))
        .collect();
    let by_age: Vec<(bool, u8)> = age.iter().map(|a| (a.is_some_and(|a| a % 2 == 0), 3)).collect();
    let a = crate::analyse(&cfg, &small_frame(&treated, &level, &age, &by_age));
    insta::assert_snapshot!(a.impact, @r"
        outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value,p_holm
        reoffended,no_estimate,60,60,rate: the outcome does not vary enough within the matched sample to give a confidence interval,,,,,,
        days_employed,no_estimate,60,60,mean_days: the outcome does not vary enough within the matched sample to give a confidence interval,,,,,,
        days_to_reoffence,log_rank,60,60,0.5000,0.5000,0.0000,-0.1789,0.1789,1.0000,1.0000
        days_to_reoffence,rmst,60,60,184.50,184.50,0.00,-64.59,64.59,1.0000,1.0000
        days_to_reoffence,no_estimate,60,60,mean_days_if_event: the outcome does not vary enough within the matched sample to give a confidence interval,,,,,,
        ");
    let headlines = crate::report::headlines(
        &Table::parse(&a.impact),
        &crate::tests::report_meta(10, ["60", "60", "0"]),
    );
    insta::assert_snapshot!(headlines.join("\n"), @r"
        No effect could be estimated for “reoffended”: the outcome does not vary enough within the matched sample to give a confidence interval.
        No effect could be estimated for “days employed”: the outcome does not vary enough within the matched sample to give a confidence interval.
        “days to reoffence”: 50.0% of people who took part had the event within 365 days of release, compared with 50.0% of similar people who did not take part (the log-rank test compares the time to the first event). This result is inconclusive (p = 1.000; Holm-adjusted p = 1.000): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.
        “days to reoffence”: of the 365 days after release, people who took part spent on average 184.5 days before the event (the restricted mean time to it), compared with 184.5 days for similar people who did not take part (difference 0.0 days, 95% CI -64.6 to +64.6). This result is inconclusive (p = 1.000; Holm-adjusted p = 1.000): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.
        ");
}

#[test]
fn persons_whose_follow_up_ends_after_today_are_left_out_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let persons = simulate(8, 300, 30.0, -0.7);
    write_world(&work, &persons, 8);
    let mut cfg = config(&work);
    cfg.min_treated = 10;
    // "Today" falls inside the index dates' range plus the window: later windows are not over.
    let today = 18_000 + 365 + 350;
    cfg.today = Some(today);
    let summary = run(&cfg, &NoProgress).unwrap();
    let late = persons.iter().filter(|p| p.index + 365 > today).count() as u64;
    assert!(late > 50, "the test needs persons with open windows: {late}");
    assert_eq!(summary.incomplete_follow_up, late);
    assert_eq!(summary.cohort_persons, persons.len() as u64 - late);
    let frame = read_frame(&work);
    assert_eq!(frame.len() as u64, summary.cohort_persons);
    let kept: std::collections::HashSet<&str> = persons
        .iter()
        .filter(|p| p.index + 365 <= today)
        .map(|p| p.id.as_str())
        .collect();
    assert!(frame.iter().all(|(id, _, _)| kept.contains(id.as_str())));
    // With today's date (the default) every window of this world is long over.
    cfg.today = None;
    assert_eq!(run(&cfg, &NoProgress).unwrap().incomplete_follow_up, 0);
}

// ---------------------------------------------------------------------------------------------
// Rare categories.

/// Merges the rare levels of one text covariate (`None` = missing) with threshold 3 and compares
/// the values after, or the error message.
fn check_levels(input: &[Option<&str>], expected: Result<&[Option<&str>], &str>) {
    use crate::frame::{CovValues, Covariate};
    let mut covs = vec![Covariate {
        name: "offence".to_owned(),
        values: CovValues::Text(input.iter().map(|v| v.map(str::to_owned)).collect()),
    }];
    let got = crate::design::merge_rare_levels(&mut covs, 3, "releases").map(|()| match &covs[0].values {
        CovValues::Text(v) => v.clone(),
        CovValues::Num { .. } => unreachable!("a text covariate stays text"),
    });
    match (got, expected) {
        (Ok(got), Ok(want)) => {
            let want: Vec<Option<String>> = want.iter().map(|v| v.map(str::to_owned)).collect();
            assert_eq!(got, want, "{input:?}");
        }
        (Err(e), Err(want)) => assert_eq!(e.to_string(), want, "{input:?}"),
        (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn rare_levels_merge_into_other_and_too_many_levels_are_refused() {
    let (a, b, c, d) = (Some("a"), Some("b"), Some("c"), Some("d"));
    let other = Some("Other");
    // Nothing rare: unchanged.
    check_levels(&[a, a, a, b, b, b], Ok(&[a, a, a, b, b, b]));
    // Two rare levels (1 + 2 persons) make an Other of 3.
    check_levels(
        &[a, a, a, b, c, c, a, a, a],
        Ok(&[a, a, a, other, other, other, a, a, a]),
    );
    // One rare level alone is too small an Other: the smallest other level (ties by name) joins.
    check_levels(
        &[a, a, a, a, a, b, b, b, c, c, c, c, d],
        Ok(&[a, a, a, a, a, other, other, other, c, c, c, c, other]),
    );
    // A small missing level is rare too; a literal Other joins the merged level.
    check_levels(
        &[a, a, a, None, other, other, a, a, a],
        Ok(&[a, a, a, other, other, other, a, a, a]),
    );
    // A large missing level stays missing.
    check_levels(&[a, a, a, None, None, None], Ok(&[a, a, a, None, None, None]));
    // 7 persons allow 7 / 3 = 2 levels: three are refused before anything is built.
    check_levels(
        &[a, a, a, b, b, c, c],
        Err(
            "covariate offence of linked table releases has more than 2 categories (persons divided by the disclosure threshold); group its values into at most 2 categories, or leave it out",
        ),
    );
}

#[test]
fn a_record_id_covariate_is_refused_and_no_rare_label_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let persons = simulate(4, 300, 30.0, -0.7);
    write_world(&work, &persons, 4);
    let mut cfg = config(&work);
    cfg.min_treated = 10;
    cfg.covariates.push("record_id".to_owned());
    let err = run(&cfg, &NoProgress).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"covariate record_id of linked table releases has more than 30 categories (persons divided by the disclosure threshold); group its values into at most 30 categories, or leave it out");
    // A level held by fewer persons than the threshold never appears as a label.
    cfg.covariates.pop();
    cfg.threshold = 75;
    run(&cfg, &NoProgress).unwrap();
    let balance = Table::parse(&read_publish(&work, "balance.csv"));
    let frame = read_frame(&work);
    let levels: Vec<&str> = balance
        .rows()
        .filter(|r| r.get("covariate") == "offence_group")
        .map(|r| r.get("level"))
        .collect();
    insta::assert_snapshot!(levels.join(","), @r"Other,fraud,theft");
    let html = read_publish(&work, "report.html");
    for p in &persons {
        assert!(
            !balance.rows().any(|r| r.get("level") == p.id),
            "no id is a level"
        );
        assert!(!html.contains(&p.id), "no id in the report");
    }
    assert!(!frame.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Attacks on the published files (issue 12), run from the published texts only.

/// A world of 200 untreated and `treated_ages.len()` treated persons; `levels` gives each
/// treated person's level of the text covariate `offence` (untreated alternate g1, g2).
pub(crate) fn attack_frame(treated_ages: &[u8], treated_levels: &[u8]) -> crate::frame::Frame {
    let untreated = 200;
    let mut treated = vec![false; untreated];
    let mut level: Vec<u8> = (0..untreated).map(|i| 1 + (i % 2) as u8).collect();
    let mut age: Vec<Option<u8>> = (0..untreated).map(|i| Some(20 + (i % 41) as u8)).collect();
    treated.extend(std::iter::repeat_n(true, treated_ages.len()));
    level.extend_from_slice(treated_levels);
    age.extend(treated_ages.iter().map(|&a| Some(a)));
    let events: Vec<(bool, u8)> = (0..treated.len()).map(|i| (i % 3 == 0, 5)).collect();
    small_frame(&treated, &level, &age, &events)
}

/// The number after `prefix` in `text`, if `text` prints one there.
fn number_after(text: &str, prefix: &str) -> Option<f64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Attack 1: all treated = cohort total (a table margin) − untreated (the report); dropped =
/// all treated − matched treated (impact.csv); the dropped persons' mean age =
/// (treated_mean_before · all treated − treated_mean · matched) / dropped (balance.csv).
fn subtraction_attack(a: &crate::Analysis, cohort_total: f64) -> Option<f64> {
    let untreated = number_after(&a.html, "people who did not (")?;
    let all_treated = cohort_total - untreated;
    let impact = Table::parse(&a.impact);
    let matched = impact.rows().next()?.num("treated_persons")?;
    let balance = Table::parse(&a.balance);
    let age = balance
        .rows()
        .find(|r| r.get("covariate") == "age" && r.get("level").is_empty())?;
    let dropped = all_treated - matched;
    (dropped > 0.0).then_some(())?;
    Some((age.num("treated_mean_before")? * all_treated - age.num("treated_mean")? * matched) / dropped)
}

#[test]
fn a_treated_person_dropped_by_the_caliper_cannot_be_rebuilt_by_subtraction() {
    // 60 treated persons like the untreated ones, and one aged 99 whom no one matches.
    let mut ages: Vec<u8> = (0..60).map(|i| 20 + (i % 41) as u8).collect();
    ages.push(99);
    let levels: Vec<u8> = (0..61).map(|i| 1 + (i % 2) as u8).collect();
    let frame = attack_frame(&ages, &levels);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.min_treated = 10;
    let a = crate::analyse(&cfg, &frame);
    assert_eq!(a.dropped, 1, "the world drops exactly one treated person");
    assert_eq!(subtraction_attack(&a, frame.person_ids.len() as f64), None);
    let balance = Table::parse(&a.balance);
    for row in balance.rows() {
        assert_eq!(row.get("treated_mean_before"), "[c]");
        assert_eq!(row.get("smd_before"), "[c]");
    }
    assert!(!a.html.contains("[c] in the cohort") && !a.html.contains("[c] people"));
    assert!(a.html.contains("how many is not shown"));
    // With nobody dropped the before-matching figures are published.
    let frame = attack_frame(&ages[..60], &levels[..60]);
    let a = crate::analyse(&cfg, &frame);
    assert_eq!(a.dropped, 0);
    let balance = Table::parse(&a.balance);
    assert!(balance.rows().any(|r| r.num("treated_mean_before").is_some()));
    assert!(
        a.html
            .contains("every person who took part had a close enough match")
    );
}

#[test]
fn balance_means_times_group_sizes_never_recover_a_small_count() {
    // 3 of 60 treated persons are in group g2 (a cell a [group, treated] table suppresses);
    // 100 untreated are.
    let ages: Vec<u8> = (0..60).map(|i| 20 + (i % 41) as u8).collect();
    let levels: Vec<u8> = (0..60).map(|i| if i < 3 { 2 } else { 1 }).collect();
    let frame = attack_frame(&ages, &levels);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.min_treated = 10;
    let a = crate::analyse(&cfg, &frame);
    // The attacker knows every group size exactly (the worst case) and multiplies each published
    // treated mean of a group level (and its complement) by it.
    let sizes = [60.0, a.matched_treated as f64];
    let balance = Table::parse(&a.balance);
    for row in balance.rows().filter(|r| r.get("covariate") == "offence") {
        for (column, size) in ["treated_mean_before", "treated_mean"].iter().zip(sizes) {
            if let Some(mean) = row.num(column) {
                for count in [mean * size, (1.0 - mean) * size] {
                    assert!(
                        (count - 3.0).abs() > 0.5,
                        "{column} of {} recovers the count 3",
                        row.get("level")
                    );
                }
            }
        }
    }
}

#[test]
fn a_hidden_level_is_not_the_group_size_minus_the_published_levels() {
    // 200 untreated (4 in g3) and 60 treated (20 in each of g1, g2, g3): g3's untreated count
    // is 4, so its line is hidden; with g1 and g2 published it would be 200 × (1 − m1 − m2).
    let mut treated = vec![false; 200];
    treated.extend([true; 60]);
    let level: Vec<u8> = (0..260)
        .map(|i| match i {
            0..4 => 3,
            4..200 => 1 + (i % 2) as u8,
            _ => 1 + (i % 3) as u8,
        })
        .collect();
    let age: Vec<Option<u8>> = (0..260).map(|i| Some(20 + (i % 41) as u8)).collect();
    let events: Vec<(bool, u8)> = (0..260).map(|i| (i % 3 == 0, 5)).collect();
    let frame = small_frame(&treated, &level, &age, &events);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.min_treated = 10;
    let a = crate::analyse(&cfg, &frame);
    let balance = Table::parse(&a.balance);
    let published: f64 = balance
        .rows()
        .filter(|r| r.get("covariate") == "offence")
        .filter_map(|r| r.num("untreated_mean_before"))
        .sum();
    let recovered = 200.0 * (1.0 - published);
    assert!(
        (recovered - 4.0).abs() > 0.5,
        "the hidden count 4 is recovered: {}",
        a.balance
    );
    assert!(
        balance
            .rows()
            .filter(|r| r.get("covariate") == "offence")
            .all(|r| r.get("untreated_mean_before") == "[c]")
    );
}

#[test]
fn figures_list_the_counts_the_published_figures_imply() {
    let ages: Vec<u8> = (0..60).map(|i| 20 + (i % 41) as u8).collect();
    let levels: Vec<u8> = (0..60).map(|i| 1 + (i % 2) as u8).collect();
    let frame = attack_frame(&ages, &levels);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.min_treated = 10;
    let a = crate::analyse(&cfg, &frame);
    let lines: Vec<String> = a
        .figures
        .cells
        .iter()
        .map(|c| {
            let key: Vec<String> = c.key.iter().map(|(d, v)| format!("{d}={v}")).collect();
            format!("{} {} ({})", key.join(","), c.persons, c.figures.join("; "))
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"), @r"
        group=comparison 60 (group size group=comparison)
        group=comparison,offence=g1 30 (balance.csv offence=g1 comparison_mean)
        group=comparison,offence=g2 30 (balance.csv offence=g2 comparison_mean)
        group=comparison,reoffended=0 40 (impact.csv reoffended rate group=comparison)
        group=comparison,reoffended=1 20 (impact.csv reoffended rate group=comparison)
        group=treated 60 (group size group=treated)
        group=treated,offence=g1 30 (balance.csv offence=g1 treated_mean)
        group=treated,offence=g2 30 (balance.csv offence=g2 treated_mean)
        group=treated,reoffended=0 40 (impact.csv reoffended rate group=treated)
        group=treated,reoffended=1 20 (impact.csv reoffended rate group=treated)
        offence=g1,treated=false 100 (balance.csv offence=g1 untreated_mean_before)
        offence=g1,treated=true 30 (balance.csv offence=g1 treated_mean_before)
        offence=g2,treated=false 100 (balance.csv offence=g2 untreated_mean_before)
        offence=g2,treated=true 30 (balance.csv offence=g2 treated_mean_before)
        treated=false 200 (group size treated=false)
        treated=true 60 (group size treated=true)
    ");
    places_are_printed(&a);
    let places = |key: &str| -> String {
        let cell = a.figures.cells.iter().find(|c| {
            let k: Vec<String> = c.key.iter().map(|(d, v)| format!("{d}={v}")).collect();
            k.join(",") == key
        });
        cell.unwrap().places.join(" ")
    };
    insta::assert_snapshot!(places("group=treated,offence=g1"), @"balance.csv:0:treated_mean balance.csv:0:smd_after");
    insta::assert_snapshot!(places("group=treated,reoffended=1"), @"impact.csv:0:treated_value impact.csv:0:comparison_value impact.csv:0:difference impact.csv:0:ci_low impact.csv:0:ci_high impact.csv:0:p_value impact.csv:0:p_holm");
    insta::assert_snapshot!(places("treated=true"), @"report.html:eligible:true balance.csv:0:treated_mean_before balance.csv:0:smd_before balance.csv:1:treated_mean_before balance.csv:1:smd_before balance.csv:2:treated_mean_before balance.csv:2:smd_before");
}

// ---------------------------------------------------------------------------------------------
// Statistical fixes found by an independent re-computation (issue 15, item 5).

/// Relative agreement of a p-value with its reference; both must be positive.
fn check_p(case: &str, got: f64, want: f64) {
    assert!(got > 0.0, "{case}: p-value {got} is not positive");
    assert!(
        ((got - want) / want).abs() < 1e-6,
        "{case}: p-value {got:e}, reference {want:e}"
    );
}

#[test]
fn p_values_keep_their_precision_down_to_1e_300() {
    // Two-sided normal and t p-values, and the chi-squared (1 df) upper tail of the log-rank
    // test, from scipy 1.x:
    // python3 -c "from scipy.stats import norm,t,chi2; print([2*norm.sf(z) for z in (6,10,20,30,37)], [2*t.sf(s,d) for s,d in ((10,5),(40,200),(1e10,30),(1e15,20),(1e30,10))], [chi2.sf(x,1) for x in (50,400,1369)])"
    let normal = [
        (6.0, 1.973_175_290_075_389e-9),
        (10.0, 1.523_970_604_832_094e-23),
        (20.0, 5.507_248_237_212_311e-89),
        (30.0, 9.813_427_854_295_816e-198),
        (37.0, 1.145_114_244_504_785_3e-299),
    ];
    for (z, want) in normal {
        check_p(
            &format!("normal z = {z}"),
            crate::stats::reference(z, None).0,
            want,
        );
        check_p(
            &format!("normal z = -{z}"),
            crate::stats::reference(-z, None).0,
            want,
        );
    }
    let t = [
        (10.0, 5.0, 1.709_475_757_429_636_3e-4),
        (40.0, 200.0, 2.248_739_653_520_219_7e-97),
        (1e10, 30.0, 2.072_906_930_512_412_5e-279),
        (1e15, 20.0, 1.804_257_812_499_997_8e-288),
        (1e30, 10.0, 2.460_937_499_999_999e-296),
    ];
    for (stat, df, want) in t {
        check_p(
            &format!("t = {stat}, df = {df}"),
            crate::stats::reference(stat, Some(df)).0,
            want,
        );
    }
    let chi_squared = [
        (50.0, 1.537_459_794_428_033e-12),
        (400.0, 5.507_248_237_212_379e-89),
        (1369.0, 1.145_114_244_504_907_3e-299),
    ];
    for (x, want) in chi_squared {
        check_p(
            &format!("chi-squared = {x}"),
            crate::stats::chi_squared_1_p(x),
            want,
        );
    }
}

#[test]
fn a_tiny_p_value_prints_in_scientific_notation_never_as_zero() {
    for (p, want) in [
        (0.5, "0.5000"),
        (0.001, "0.0010"),
        (0.000_999, "9.99e-4"),
        (1.234e-45, "1.23e-45"),
        (1.145e-299, "1.15e-299"),
        (f64::NAN, ""),
    ] {
        assert_eq!(crate::publish::p_value(p), want, "p = {p:e}");
    }
}

#[test]
fn a_failed_step_halving_is_not_reported_as_converged() {
    // A ridge that is not a number makes the penalised log-likelihood NaN at every point, so no
    // step can be accepted and step halving runs out; with the intercept alone the Newton step
    // itself is finite.
    let rows = 20;
    let data = vec![1.0; rows];
    let y: Vec<bool> = (0..rows).map(|i| i % 3 == 0).collect();
    let fit = fit_logistic(&Matrix { rows, cols: 1, data }, &y, f64::NAN);
    assert!(!fit.converged, "{fit:?}");
    assert_eq!(fit.coef, vec![0.0], "the last accepted estimate is the start");
    // The same data with a real ridge converges.
    let data = vec![1.0; rows];
    assert!(fit_logistic(&Matrix { rows, cols: 1, data }, &y, 1.0).converged);
}

/// Matches one treated person (logit `x`) among `controls` (logit, person id), without and with
/// replacement, and checks the person id it takes.
fn check_tie(x: f64, controls: &[(f64, &str)], expected: Option<&str>) {
    let mut lp = vec![x];
    let mut ids = vec!["t".to_owned()];
    let mut treated = vec![true];
    for (v, id) in controls {
        lp.push(*v);
        ids.push((*id).to_owned());
        treated.push(false);
    }
    for replacement in [false, true] {
        let m = match_nearest(&lp, &treated, &ids, 1.0, 1, replacement);
        let got = m.sets.first().map(|(_, c)| ids[c[0]].as_str());
        assert_eq!(
            got, expected,
            "x = {x}, controls {controls:?}, replacement {replacement}"
        );
    }
}

#[test]
fn distance_ties_go_to_the_lowest_person_id() {
    // Equal scores on one side: the lowest id, wherever it sorts.
    check_tie(1.0, &[(0.5, "p2"), (0.5, "p1"), (0.5, "p3")], Some("p1"));
    check_tie(1.0, &[(1.5, "p2"), (1.5, "p1"), (1.5, "p3")], Some("p1"));
    // Equal distances on both sides: the lowest id, not the lower score.
    check_tie(1.0, &[(0.5, "b"), (1.5, "a")], Some("a"));
    check_tie(1.0, &[(0.5, "a"), (1.5, "b")], Some("a"));
    // Distances equal but for rounding (0.1 + 0.2 − 0.0 and 0.6 − (0.1 + 0.2) differ in the last
    // bit): a tie, so the lowest id.
    check_tie(0.1 + 0.2, &[(0.0, "a"), (0.6, "z")], Some("a"));
    check_tie(0.1 + 0.2, &[(0.0, "z"), (0.6, "a")], Some("a"));
    // A real difference, however small, is not a tie: the nearer one.
    check_tie(1.0, &[(0.5, "b"), (1.5 + 1e-9, "a")], Some("b"));
    check_tie(1.0, &[(0.5 - 1e-9, "a"), (1.5, "b")], Some("b"));
    // Nothing within the caliper (1.0).
    check_tie(1.0, &[(2.5, "a"), (-0.5, "b")], None);
}

#[test]
fn the_ridge_penalty_does_not_shrink_a_rare_level_hard() {
    // A rare level (40 of 2000 persons, 30 of them treated) and a common one (20% treated): the
    // unpenalised fit gives exactly those shares as scores. On the standardised 0/1 column the
    // ridge penalty barely moves them; on the raw column it pulled the rare level's score to
    // about 0.69.
    let n = 2000;
    let rare = 40;
    let treated: Vec<bool> = (0..n)
        .map(|i| if i < rare { i % 4 != 0 } else { i % 5 == 0 })
        .collect();
    let level: Vec<u8> = (0..n).map(|i| if i < rare { 2 } else { 1 }).collect();
    let age = vec![Some(30); n];
    let events: Vec<(bool, u8)> = (0..n).map(|i| (i % 2 == 0, 3)).collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::tests_fixture::bare_config(dir.path());
    let a = crate::analyse(&cfg, &small_frame(&treated, &level, &age, &events));
    let scores = a.propensity.expect("a fitted model");
    assert!(a.converged);
    for (rows, share) in [(0..rare, 0.75), (rare..n, 0.2)] {
        for i in rows {
            assert!(
                (scores[i] - share).abs() < 0.005,
                "row {i}: score {} against the share {share}",
                scores[i]
            );
        }
    }
}

#[test]
fn a_caliper_or_score_that_is_not_a_number_matches_nobody() {
    let ids: Vec<String> = (0..3).map(|i| format!("p{i}")).collect();
    let treated = [true, false, false];
    for (lp, width) in [([0.0, 0.1, 0.2], f64::NAN), ([f64::NAN, 0.1, 0.2], 1.0)] {
        for replacement in [false, true] {
            let m = match_nearest(&lp, &treated, &ids, width, 1, replacement);
            assert!(m.sets.is_empty(), "lp {lp:?}, width {width}: {:?}", m.sets);
        }
    }
}

#[test]
fn the_method_note_says_when_the_index_event_follows_the_programme_start() {
    let impact = "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\n";
    let check = |programme_start_days_before: Option<i32>, expected: bool| {
        let meta = ReportMeta {
            programme_start_days_before,
            ..crate::tests::report_meta(10, ["100", "900", "0"])
        };
        let html = render_report(impact, "", "", &meta);
        let says = html.contains("their first release on or after the start of the programme, or else their last in the 90 days before it");
        assert_eq!(says, expected, "{programme_start_days_before:?}");
        assert!(html.contains("Each person’s index event is their earliest release in the cohort"));
    };
    check(None, false);
    check(Some(90), true);
}
