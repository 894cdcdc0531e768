//! Time to event censored at `data_cutoff` against lifelines, on the same data: the frame's
//! times and event flags, Kaplan–Meier steps, the log-rank test and the restricted mean time.
//! The fixture was computed once by `crates/evaluate/tests/reference/km_cutoff.py` (lifelines)
//! and is stored beside it, with the data it was computed on.

use serde_json::Value;

use crate::frame::build;
use crate::stats::{Subject, kaplan_meier, log_rank, rmst};
use crate::tests_fixture::{dates, ids, write_linked};
use crate::{EvaluateConfig, Outcome, OutcomeKind};
use linklab_store::WorkDir;

const FIXTURE: &str = include_str!("../tests/reference/km_cutoff.json");

fn close(got: f64, want: &Value, what: &str) {
    let want = want.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: {got} against lifelines' {want}"
    );
}

fn int(v: &Value) -> i32 {
    i32::try_from(v.as_i64().expect("a whole number")).expect("fits an i32")
}

#[test]
fn time_to_event_censored_at_the_cut_off_matches_lifelines() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let persons = fixture["persons"].as_array().expect("persons");
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    let id = |p: &Value| p["id"].as_str().unwrap().to_owned();
    let person_ids: Vec<String> = persons.iter().map(id).collect();
    let id_refs: Vec<&str> = person_ids.iter().map(String::as_str).collect();
    let index: Vec<Option<i32>> = persons.iter().map(|p| Some(int(&p["index"]))).collect();
    write_linked(
        &work,
        "releases",
        vec![("person_id", ids(&id_refs)), ("release_date", dates(&index))],
    );
    let treated: Vec<&str> = persons
        .iter()
        .zip(&id_refs)
        .filter(|(p, _)| p["treated"].as_bool() == Some(true))
        .map(|(_, id)| *id)
        .collect();
    write_linked(&work, "participants", vec![("person_id", ids(&treated))]);
    let (mut event_ids, mut event_days) = (Vec::new(), Vec::new());
    for (p, id) in persons.iter().zip(&id_refs) {
        for day in p["events"].as_array().expect("events") {
            event_ids.push(*id);
            event_days.push(Some(int(day)));
        }
    }
    write_linked(
        &work,
        "reoffences",
        vec![
            ("person_id", ids(&event_ids)),
            ("offence_date", dates(&event_days)),
        ],
    );
    let mut cfg = EvaluateConfig::new(work, "releases", "release_date", "participants");
    cfg.follow_up_days = u32::try_from(int(&fixture["follow_up_days"])).unwrap();
    cfg.data_cutoff = Some(int(&fixture["data_cutoff"]));
    cfg.today = Some(10_000);
    cfg.outcomes = vec![Outcome::new(
        "time",
        OutcomeKind::TimeToEvent {
            extract: "reoffences".to_owned(),
            date: "offence_date".to_owned(),
        },
    )];
    let frame = build(&cfg).unwrap();
    let expected = &fixture["expected"];
    let outcome = &frame.outcomes[0];
    assert_eq!(
        frame.outcome_persons["time"].censored_cutoff,
        expected["censored_at_cutoff"].as_u64().unwrap()
    );
    let group = |treated: bool| -> Vec<Subject> {
        (0..frame.person_ids.len())
            .filter(|&i| frame.treated[i] == treated && outcome.known[i])
            .map(|i| Subject {
                time: outcome.value[i],
                event: outcome.event[i],
                weight: 1.0,
            })
            .collect()
    };
    let (a, b) = (group(true), group(false));
    for (subjects, name) in [(&a, "treated"), (&b, "comparison")] {
        let want = &expected[name];
        assert_eq!(subjects.len() as u64, want["persons"].as_u64().unwrap(), "{name}");
        let steps = kaplan_meier(subjects);
        let want_steps = want["steps"].as_array().unwrap();
        assert_eq!(steps.len(), want_steps.len(), "{name}: Kaplan–Meier steps");
        for (step, w) in steps.iter().zip(want_steps) {
            assert_eq!(i64::from(step.day), w[0].as_i64().unwrap(), "{name}");
            close(
                step.survival,
                &w[1],
                &format!("{name} survival on day {}", step.day),
            );
        }
        close(
            rmst(&steps, cfg.follow_up_days).0,
            &want["rmst"],
            &format!("{name} rmst"),
        );
    }
    let (chi2, p) = log_rank(&a, &b);
    close(chi2, &expected["log_rank"]["chi2"], "log-rank chi-squared");
    close(p, &expected["log_rank"]["p"], "log-rank p-value");
}
