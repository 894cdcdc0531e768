//! The JDL's measures, `unknown` and `data_cutoff` on a hand-checkable world of five persons.
//!
//! Index dates (days since 1970): A, B, C, D on day 1000, E on day 995; follow-up 10 days.
//! Reoffences: A 1001, 1003, 1003, 1011; B 1000 (the index day), 1010; C 990 (before); E 1005;
//! D none. Employment spells: A 1003–1005, B 1006–(open), C 995–1004, E 1000–1000; D none.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use linklab_store::WorkDir;

use crate::frame::{OutcomePersons, build};
use crate::matching::Matching;
use crate::publish::size_cells;
use crate::tests_fixture::{dates, ids, write_linked};
use crate::{EvaluateConfig, Outcome, OutcomeKind, Unknown};

pub(crate) fn world(work: &WorkDir) {
    write_linked(
        work,
        "releases",
        vec![
            ("person_id", ids(&["A", "B", "C", "D", "E"])),
            (
                "release_date",
                dates(&[Some(1000), Some(1000), Some(1000), Some(1000), Some(995)]),
            ),
        ],
    );
    write_linked(work, "participants", vec![("person_id", ids(&["A", "E"]))]);
    let offences = [
        ("A", 1001),
        ("A", 1003),
        ("A", 1003),
        ("A", 1011),
        ("B", 1000),
        ("B", 1010),
        ("C", 990),
        ("E", 1005),
    ];
    write_linked(
        work,
        "reoffences",
        vec![
            ("person_id", ids(&offences.map(|(p, _)| p))),
            ("offence_date", dates(&offences.map(|(_, d)| Some(d)))),
        ],
    );
    let spells = [
        ("A", 1003, Some(1005)),
        ("B", 1006, None),
        ("C", 995, Some(1004)),
        ("E", 1000, Some(1000)),
    ];
    write_linked(
        work,
        "employment",
        vec![
            ("person_id", ids(&spells.map(|(p, _, _)| p))),
            ("start_date", dates(&spells.map(|(_, s, _)| Some(s)))),
            ("end_date", dates(&spells.map(|(_, _, e)| e))),
        ],
    );
}

/// The settings the tests over [`world`] share: a 10-day window read on day 2000, threshold 1,
/// [`outcomes`], and `data_cutoff`.
pub(crate) fn world_config(work: WorkDir, data_cutoff: Option<i32>) -> EvaluateConfig {
    let mut cfg = EvaluateConfig::new(work, "releases", "release_date", "participants");
    cfg.follow_up_days = 10;
    cfg.today = Some(2000);
    cfg.threshold = 1;
    cfg.data_cutoff = data_cutoff;
    cfg.outcomes = outcomes();
    cfg
}

pub(crate) fn outcomes() -> Vec<Outcome> {
    let s = str::to_owned;
    let events = |kind: fn(String, String) -> OutcomeKind| kind(s("reoffences"), s("offence_date"));
    let count = |extract, date| OutcomeKind::EventCount { extract, date };
    let mut count3 = Outcome::new("count3", events(count));
    count3.follow_up_days = Some(3);
    let mut employed = Outcome::new(
        "employed_day5",
        OutcomeKind::SpellAt {
            extract: s("employment"),
            start: s("start_date"),
            end: s("end_date"),
            day: 5,
        },
    );
    employed.unknown = Unknown::Exclude;
    let mut reoffended = Outcome::new(
        "reoffended",
        events(|extract, date| OutcomeKind::EventWithin { extract, date }),
    );
    reoffended.unknown = Unknown::Exclude;
    vec![
        Outcome::new("count", events(count)),
        count3,
        employed,
        Outcome::new(
            "time",
            events(|extract, date| OutcomeKind::TimeToEvent { extract, date }),
        ),
        reoffended,
    ]
}

/// Per outcome, per person A..E: `Some((value, event))`, or `None` when left out.
pub(crate) type Expected<'a> = [(&'a str, [Option<(u32, bool)>; 5]); 5];

/// Checks the frame of the five persons: each outcome's values (`label` names the case) and
/// who each outcome left out or censored.
pub(crate) fn check_frame(
    frame: &crate::frame::Frame,
    expected: &Expected<'_>,
    persons: &BTreeMap<String, OutcomePersons>,
    label: &str,
) {
    assert_eq!(frame.person_ids, ["A", "B", "C", "D", "E"]);
    for (outcome, (name, want)) in frame.outcomes.iter().zip(expected) {
        assert_eq!(outcome.name, *name);
        let got: Vec<Option<(u32, bool)>> = (0..5)
            .map(|i| outcome.known[i].then(|| (outcome.value[i], outcome.event[i])))
            .collect();
        assert_eq!(got, want, "{name} with {label}");
    }
    assert_eq!(&frame.outcome_persons, persons, "{label}");
}

fn check(data_cutoff: Option<i32>, expected: &Expected<'_>, persons: &[(&str, OutcomePersons)]) {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    world(&work);
    let cfg = world_config(work, data_cutoff);
    let frame = build(&cfg).unwrap();
    let want = persons
        .iter()
        .map(|(n, p)| ((*n).to_owned(), p.clone()))
        .collect();
    check_frame(&frame, expected, &want, &format!("data_cutoff {data_cutoff:?}"));
}

#[test]
fn new_measures_match_hand_computed_values() {
    let v = |value: u32| Some((value, value > 0));
    let left_out = |excluded_unknown, excluded_cutoff, censored_cutoff| OutcomePersons {
        excluded_unknown,
        excluded_cutoff,
        censored_cutoff,
        ..OutcomePersons::default()
    };
    check(
        None,
        &[
            // A: 1001, 1003, 1003 (1011 is past day 10); B: 1010 (1000 is the index day).
            ("count", [v(3), v(1), v(0), v(0), v(1)]),
            // Three days: A's three; E's 1005 is day 10.
            ("count3", [v(3), v(0), v(0), v(0), v(0)]),
            // Day 5 is 1005 (E: 1000): A's spell ends on it, B's starts after, C's before.
            ("employed_day5", [v(1), v(0), v(0), None, v(1)]),
            (
                "time",
                [
                    Some((1, true)),
                    Some((10, true)),
                    Some((10, false)),
                    Some((10, false)),
                    Some((10, true)),
                ],
            ),
            // C is held (an offence before the index date): 0, not left out.
            ("reoffended", [v(1), v(1), v(0), None, v(1)]),
        ],
        &[
            ("employed_day5", left_out(1, 0, 0)),
            ("reoffended", left_out(1, 0, 0)),
        ],
    );
    // Cut-off on day 1008: the 10-day windows of A–D run past it (E's ends on 1005); day 5
    // (1005) and the 3-day windows do not; time to event is censored on day 8.
    check(
        Some(1008),
        &[
            ("count", [None, None, None, None, v(1)]),
            ("count3", [v(3), v(0), v(0), v(0), v(0)]),
            ("employed_day5", [v(1), v(0), v(0), None, v(1)]),
            (
                "time",
                [
                    Some((1, true)),
                    Some((8, false)),
                    Some((8, false)),
                    Some((8, false)),
                    Some((10, true)),
                ],
            ),
            ("reoffended", [None, None, None, None, v(1)]),
        ],
        &[
            ("count", left_out(0, 4, 0)),
            ("employed_day5", left_out(1, 0, 0)),
            ("time", left_out(0, 0, 3)),
            ("reoffended", left_out(1, 3, 0)),
        ],
    );
}

#[test]
fn a_data_cutoff_before_every_index_date_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    world(&work);
    let mut cfg = EvaluateConfig::new(work, "releases", "release_date", "participants");
    cfg.today = Some(2000);
    cfg.data_cutoff = Some(995);
    cfg.outcomes = outcomes();
    let error = crate::run(&cfg, &linklab_store::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("data_cutoff falls on or before every index date"),
        "{error}"
    );
}

#[test]
fn a_spell_at_day_beyond_the_follow_up_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.follow_up_days = 10;
    cfg.outcomes = outcomes();
    let OutcomeKind::SpellAt { day, .. } = &mut cfg.outcomes[2].kind else {
        panic!("the third outcome reads a day");
    };
    *day = 11;
    let error = crate::run(&cfg, &linklab_store::NoProgress)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "invalid evaluation settings: the day of outcome employed_day5 must be from 1 to its follow-up of 10 days"
    );
}

#[test]
fn an_outcome_sample_keeps_the_sets_whose_members_count() {
    // Rows 0, 1 treated; 2, 3, 4 comparisons (2:1 with replacement: 3 is in both sets).
    let matching = Matching {
        sets: vec![(0, vec![2, 3]), (1, vec![3, 4])],
        weight: vec![1.0, 1.0, 0.5, 1.0, 0.5],
        dropped_by_caliper: 0,
        width: 1.0,
    };
    let all = matching.restricted(&[true; 5]);
    assert!(matches!(all, std::borrow::Cow::Borrowed(_)));
    // Person 3 left out: each set keeps its other comparison, with weight 1.
    let r = matching.restricted(&[true, true, true, false, true]);
    assert_eq!(r.sets, vec![(0, vec![2]), (1, vec![4])]);
    assert_eq!(r.weight, vec![1.0, 1.0, 1.0, 0.0, 1.0]);
    // Treated 1 left out: its set goes, and 4 with it.
    let r = matching.restricted(&[true, false, true, true, true]);
    assert_eq!(r.sets, vec![(0, vec![2, 3])]);
    assert_eq!(r.weight, vec![1.0, 0.0, 0.5, 0.5, 0.0]);
}

#[test]
fn an_outcome_sample_size_is_hidden_when_few_are_left_out() {
    for (whole, outcome, expected) in [
        ([50, 50], [50, 50], ["50", "50"]),
        ([50, 50], [45, 30], ["[c]", "30"]),
        ([50, 50], [40, 8], ["40", "[c]"]),
    ] {
        assert_eq!(
            size_cells(whole, outcome, 10),
            expected.map(str::to_owned),
            "{outcome:?}"
        );
    }
}

/// The `survival.csv` of 40 matched pairs (person `2k` treated, `2k + 1` its comparison, an
/// event on day 10 + k for every third pair, censored at 365 otherwise) when the time-to-event
/// outcome leaves out the treated persons of the first `left_out` pairs: its outcomes and the
/// number of rows.
fn survival_rows(left_out: usize) -> (Vec<String>, usize) {
    use crate::frame::{Frame, Measure, OutcomeValues, RecordCounts};
    let n = 80;
    let event: Vec<bool> = (0..n).map(|i| (i / 2) % 3 == 0).collect();
    let frame = Frame {
        person_ids: (0..n).map(|i| format!("p{i}")).collect(),
        index: vec![18_000; n],
        treated: (0..n).map(|i| i % 2 == 0).collect(),
        covariates: Vec::new(),
        outcomes: vec![OutcomeValues {
            name: "days_to_reoffence".to_owned(),
            measure: Measure::TimeToEvent,
            value: (0..n)
                .map(|i| if event[i] { 10 + (i / 2) as u32 } else { 365 })
                .collect(),
            event,
            known: (0..n).map(|i| i % 2 == 1 || i / 2 >= left_out).collect(),
            follow_up: 365,
        }],
        cohort_counts: RecordCounts::default(),
        treatment_counts: RecordCounts::default(),
        outcome_counts: BTreeMap::new(),
        outcome_persons: BTreeMap::new(),
        incomplete_follow_up: 0,
        treated_without_index: 0,
        death_counts: None,
    };
    let matching = Matching {
        sets: (0..n / 2).map(|k| (2 * k, vec![2 * k + 1])).collect(),
        weight: vec![1.0; n],
        dropped_by_caliper: 0,
        width: 0.2,
    };
    let csv = crate::publish::survival_csv(&frame, &matching, 10);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let mut outcomes: Vec<String> = rows
        .iter()
        .map(|r| r.split(',').next().unwrap_or_default().to_owned())
        .collect();
    outcomes.dedup();
    (outcomes, rows.len())
}

#[test]
fn a_survival_curve_is_not_published_when_a_few_are_left_out_of_its_outcome() {
    // Nobody left out, or at least the threshold (10): the curve is published.
    for left_out in [0, 10, 12] {
        let (outcomes, rows) = survival_rows(left_out);
        assert_eq!(outcomes, ["days_to_reoffence"], "{left_out} left out");
        assert!(rows > 0);
    }
    // 1 to 9 left out: its first at-risk would be the hidden sample size.
    for left_out in [1, 3, 9] {
        assert_eq!(survival_rows(left_out), (Vec::new(), 0), "{left_out} left out");
    }
}

fn subjects(data: &[(u32, bool)]) -> Vec<crate::stats::Subject> {
    data.iter()
        .map(|&(time, event)| crate::stats::Subject {
            time,
            event,
            weight: 1.0,
        })
        .collect()
}

#[test]
fn restricted_mean_time_matches_a_hand_computed_example() {
    use crate::stats::{kaplan_meier, normal_difference, rmst};
    let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-9, "{got} != {want}");
    // Day 2: 1 of 4 → S = 3/4; day 3 censored; day 5: 2 of 2 → S = 0. Area to day 6:
    // 2 × 1 + 3 × 3/4 + 1 × 0 = 4.25. Variance: A(2) = 2.25, 2.25² × 1 / (4 × 3); day 5
    // adds nothing (A = 0).
    let (a, var_a) = rmst(
        &kaplan_meier(&subjects(&[(2, true), (3, false), (5, true), (5, true)])),
        6,
    );
    close(a, 4.25);
    close(var_a, 2.25 * 2.25 / 12.0);
    // Without censoring before tau it is the mean of min(T, tau): (1 + 6 + 6) / 3.
    let (b, var_b) = rmst(&kaplan_meier(&subjects(&[(1, true), (6, false), (6, false)])), 6);
    close(b, 13.0 / 3.0);
    close(var_b, (10.0_f64 / 3.0).powi(2) / 6.0);
    let e = normal_difference((a, var_a), (b, var_b));
    close(e.difference, 4.25 - 13.0 / 3.0);
    let half = 1.959_963_984_540_054 * (var_a + var_b).sqrt();
    close(e.ci_high - e.difference, half);
    close(e.difference - e.ci_low, half);
}

#[test]
fn weighted_welch_with_unit_weights_is_welch() {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    // a = 1, 2, 3: mean 2, variance 1; b = 2, 4, 6, 8: mean 5, variance 20/3. SE² = 1/3 + 5/3;
    // Welch–Satterthwaite df = 2² / ((1/3)²/2 + (5/3)²/3) = 216/53.
    let unit = |v: &[f64]| v.iter().map(|&x| (1.0, x)).collect::<Vec<_>>();
    let e = crate::stats::weighted_welch(&unit(&[1.0, 2.0, 3.0]), &unit(&[2.0, 4.0, 6.0, 8.0]));
    let q = StudentsT::new(0.0, 1.0, 216.0 / 53.0).unwrap().inverse_cdf(0.975);
    assert!((e.difference + 3.0).abs() < 1e-12);
    assert!(
        (e.ci_high - e.difference - q * 2.0_f64.sqrt()).abs() < 1e-9,
        "{e:?}"
    );
    // Weight 2 on one value is that value twice in the mean.
    let e = crate::stats::weighted_welch(&[(2.0, 1.0), (1.0, 4.0)], &unit(&[0.0, 1.0]));
    assert!((e.treated - 2.0).abs() < 1e-12);
}

#[test]
fn an_index_event_is_chosen_relative_to_the_programme_start() {
    use crate::programme::better;
    // (start, chosen so far, candidate day, better?)
    for (start, current, day, expected) in [
        (None, None, 5, true),
        (None, Some(5), 4, true),
        (None, Some(5), 5, false),
        (Some(100), None, 100, true),
        (Some(100), Some(120), 110, true),
        (Some(100), Some(110), 120, false),
        (Some(100), Some(50), 120, true),
        (Some(100), None, 10, true),
        (Some(100), None, 9, false),
        (Some(100), Some(20), 30, true),
        (Some(100), Some(30), 20, false),
        (Some(100), Some(110), 99, false),
    ] {
        assert_eq!(
            better(start, current, day),
            expected,
            "{start:?} {current:?} {day}"
        );
    }
}

#[test]
fn treated_persons_take_the_first_release_on_or_after_their_start() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    // P: 2005 (first on or after the start, 2000); Q: 1950 (last before it, within 90 days);
    // R: none eligible (1800 is 200 days before), left out; S: untreated, earliest; T: no start.
    let releases = [
        ("P", 1800),
        ("P", 1950),
        ("P", 2010),
        ("P", 2005),
        ("Q", 1920),
        ("Q", 1950),
        ("R", 1800),
        ("S", 1900),
        ("S", 1850),
        ("T", 1800),
        ("T", 1700),
    ];
    write_linked(
        &work,
        "releases",
        vec![
            ("person_id", ids(&releases.map(|(p, _)| p))),
            ("release_date", dates(&releases.map(|(_, d)| Some(d)))),
        ],
    );
    let starts = [
        ("P", Some(2000)),
        ("P", Some(2100)),
        ("Q", Some(2000)),
        ("R", Some(2000)),
        ("T", None),
    ];
    write_linked(
        &work,
        "participants",
        vec![
            ("person_id", ids(&starts.map(|(p, _)| p))),
            ("start_date", dates(&starts.map(|(_, d)| d))),
        ],
    );
    world_outcome_tables(&work);
    let mut cfg = EvaluateConfig::new(work, "releases", "release_date", "participants");
    cfg.today = Some(5000);
    cfg.treatment_date = Some("start_date".to_owned());
    cfg.outcomes = vec![Outcome::new(
        "count",
        OutcomeKind::EventCount {
            extract: "reoffences".to_owned(),
            date: "offence_date".to_owned(),
        },
    )];
    let frame = build(&cfg).unwrap();
    assert_eq!(frame.person_ids, ["P", "Q", "S", "T"]);
    assert_eq!(frame.index, [2005, 1950, 1850, 1700]);
    assert_eq!(frame.treated, [true, true, false, true]);
    assert_eq!(frame.treated_without_index, 1);
    // Without treatment_date everyone keeps their earliest release.
    cfg.treatment_date = None;
    let frame = build(&cfg).unwrap();
    assert_eq!(frame.index, [1800, 1920, 1800, 1850, 1700]);
    assert_eq!(frame.treated_without_index, 0);
    // A treatment_date column that is not a date is refused, naming it.
    write_linked(
        &cfg.work_dir,
        "participants",
        vec![
            ("person_id", ids(&["P"])),
            (
                "start_date",
                Arc::new(arrow::array::Int64Array::from(vec![2000])) as ArrayRef,
            ),
        ],
    );
    cfg.treatment_date = Some("start_date".to_owned());
    let error = build(&cfg).err().unwrap().to_string();
    assert!(
        error.contains("start_date") && error.contains("treatment_date"),
        "{error}"
    );
}

/// Empty outcome extracts, for tests about the cohort.
fn world_outcome_tables(work: &WorkDir) {
    write_linked(
        work,
        "reoffences",
        vec![("person_id", ids(&[])), ("offence_date", dates(&[]))],
    );
}

/// The cells of `figures.json` as `key persons`, e.g. `group=treated,reoffended sample=left out 15`.
fn cells(a: &crate::Analysis) -> Vec<String> {
    a.figures
        .cells
        .iter()
        .map(|c| {
            let key: Vec<String> = c.key.iter().map(|(d, v)| format!("{d}={v}")).collect();
            format!("{} {}", key.join(","), c.persons)
        })
        .collect()
}

#[test]
fn persons_left_out_of_an_outcome_are_cells_of_the_figures_or_hidden() {
    let ages: Vec<u8> = (0..60).map(|i| 20 + (i % 41) as u8).collect();
    let levels: Vec<u8> = (0..60).map(|i| 1 + (i % 2) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::tests_fixture::bare_config(dir.path());
    cfg.min_treated = 10;
    // (treated persons left out of `reoffended`, the published sizes, the left-out cells)
    for (left_out, sizes, expected) in [
        (0, ["60", "60"], vec![]),
        (
            15,
            ["45", "45"],
            vec![
                "group=comparison,reoffended sample=left out 15",
                "group=treated,reoffended sample=left out 15",
            ],
        ),
        // Three left out: sizes and values hidden, and no cell of the rate listed.
        (3, ["[c]", "[c]"], vec![]),
    ] {
        let mut frame = crate::tests::attack_frame(&ages, &levels);
        let reoffended = &mut frame.outcomes[0];
        assert_eq!(reoffended.name, "reoffended");
        for known in &mut reoffended.known[200..200 + left_out] {
            *known = false;
        }
        let a = crate::analyse(&cfg, &frame);
        let impact = crate::csv::Table::parse(&a.impact);
        let row = impact
            .rows()
            .find(|r| r.get("outcome") == "reoffended" && r.get("measure") == "rate")
            .unwrap();
        assert_eq!(
            [row.get("treated_persons"), row.get("comparison_persons")],
            sizes,
            "{left_out}"
        );
        let cells = cells(&a);
        let left: Vec<&String> = cells.iter().filter(|c| c.contains(" sample=left out")).collect();
        assert_eq!(left, expected, "{left_out}");
        if sizes[0] == "[c]" {
            assert_eq!(row.get("difference"), "[c]");
            assert!(!cells.iter().any(|c| c.contains("reoffended=")), "{cells:?}");
        } else {
            // The rate's events and non-events are counted over the outcome's own sample (the
            // frame's `reoffended sample` = `counted`, when it leaves someone out).
            let sample = if left_out > 0 {
                ",reoffended sample=counted"
            } else {
                ""
            };
            let of = |flag: &str| -> u64 {
                let prefix = format!("group=treated,reoffended={flag}{sample} ");
                cells
                    .iter()
                    .find_map(|c| c.strip_prefix(&prefix)?.parse().ok())
                    .unwrap()
            };
            assert_eq!((of("0") + of("1")).to_string(), sizes[0]);
        }
    }
}

#[test]
fn headlines_read_each_outcome_over_its_own_window() {
    let impact = crate::csv::Table::parse(
        "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\n\
         employed_at_30,rate,60,60,0.5000,0.4000,0.1000,0.0100,0.1900,0.0300\n\
         reoffences,count_mean,60,60,0.8000,1.1000,-0.3000,-0.5000,-0.1000,0.0040\n\
         reoffences,count_per_100,60,60,80.00,110.00,-30.00,-50.00,-10.00,0.0040\n",
    );
    let meta = crate::ReportMeta {
        outcome_windows: [
            ("employed_at_30".to_owned(), (365, Some(30))),
            ("reoffences".to_owned(), (730, None)),
        ]
        .into(),
        ..crate::tests::report_meta(10, ["60", "60", "0"])
    };
    insta::assert_snapshot!(crate::report::headlines(&impact, &meta).join("\n"), @r"
        For every 100 people who took part, 50 were employed on day 30 after release, compared with 40 for every 100 similar people who did not take part (difference +10.0 percentage points, 95% CI +1.0 to +19.0). This difference is statistically significant (p = 0.030). Its E-value is 1.81 (1.19 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 1.81 each, beyond the characteristics matched on, to explain the difference away.
        For every 100 people who took part there were 80.0 “reoffences” in the 730 days after release, compared with 110.0 for every 100 similar people who did not take part (difference -30.0 per 100 people, 95% CI -50.0 to -10.0). This difference is statistically significant (p = 0.004). Its E-value is 2.09 (1.43 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 2.09 each, beyond the characteristics matched on, to explain the difference away.
        ");
}
