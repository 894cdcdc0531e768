//! Deaths (`[evaluate] deaths`) on the hand-checkable world of `tests_jdl` (A–D indexed on day
//! 1000, E on day 995; follow-up 10 days; its outcomes and records are described there).
//!
//! Deaths: A on 1004 (and again on 1009: the earliest counts), B on 1010 (the last day of the
//! window), C on 1000 (the index day), E on 1002; D has a record without a date. One record is
//! not linked and one is of a person outside the cohort.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use linklab_store::WorkDir;

use crate::frame::{OutcomePersons, RecordCounts, build};
use crate::tests_fixture::{dates, ints, write_linked};
use crate::tests_jdl::{Expected, check_frame, world, world_config};
use crate::{Deaths, EvaluateConfig};

fn deaths_table(work: &WorkDir) {
    let ids: ArrayRef = Arc::new(StringArray::from(vec![
        Some("A"),
        Some("A"),
        Some("B"),
        Some("C"),
        Some("D"),
        Some("E"),
        Some("Z"),
        None,
    ]));
    write_linked(
        work,
        "deaths",
        vec![
            ("person_id", ids),
            (
                "death_date",
                dates(&[
                    Some(1009),
                    Some(1004),
                    Some(1010),
                    Some(1000),
                    None,
                    Some(1002),
                    Some(1001),
                    Some(1001),
                ]),
            ),
        ],
    );
}

fn config(work: WorkDir, data_cutoff: Option<i32>) -> EvaluateConfig {
    let mut cfg = world_config(work, data_cutoff);
    cfg.deaths = Some(Deaths {
        extract: "deaths".to_owned(),
        date: "death_date".to_owned(),
    });
    cfg
}

/// Left out for an unknown person, at the cut-off and at death; censored at the cut-off and at
/// death.
fn persons([unknown, cutoff, death, censored_cutoff, censored_death]: [u64; 5]) -> OutcomePersons {
    OutcomePersons {
        excluded_unknown: unknown,
        excluded_cutoff: cutoff,
        censored_cutoff,
        excluded_death: death,
        censored_death,
    }
}

fn check(data_cutoff: Option<i32>, expected: &Expected<'_>, left_out: &[(&str, [u64; 5])]) {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    world(&work);
    deaths_table(&work);
    let frame = build(&config(work, data_cutoff)).unwrap();
    let want: BTreeMap<String, OutcomePersons> = left_out
        .iter()
        .map(|(n, p)| ((*n).to_owned(), persons(*p)))
        .collect();
    check_frame(
        &frame,
        expected,
        &want,
        &format!("deaths and data_cutoff {data_cutoff:?}"),
    );
    let records = RecordCounts {
        records: 8,
        unlinked: 1,
        not_in_cohort: 1,
        filtered_out: 0,
        invalid: 1,
        in_window: 5,
    };
    assert_eq!(frame.death_counts, Some(records));
}

#[test]
fn a_death_in_the_window_leaves_out_or_censors_like_the_cut_off() {
    let v = |value: u32| Some((value, value > 0));
    // A dies on day 4, B on day 10 (the window's last day: fully observed), C on day 0, E on
    // day 7.
    check(
        None,
        &[
            ("count", [None, v(1), None, v(0), None]),
            // Three days: A (day 4) and E (day 7) live through them; C does not.
            ("count3", [v(3), v(0), None, v(0), v(0)]),
            // Day 5: A dies before it; D is unknown; E's spell covers 1000.
            ("employed_day5", [None, v(0), None, None, v(1)]),
            // A's event on day 1 comes before the death; B's on day 10, the day of death,
            // counts; E is censored at death on day 7 (the offence on day 10 is after it).
            (
                "time",
                [
                    Some((1, true)),
                    Some((10, true)),
                    None,
                    Some((10, false)),
                    Some((7, false)),
                ],
            ),
            ("reoffended", [None, v(1), None, None, None]),
        ],
        &[
            ("count", [0, 0, 3, 0, 0]),
            ("count3", [0, 0, 1, 0, 0]),
            ("employed_day5", [1, 0, 2, 0, 0]),
            ("time", [0, 0, 1, 0, 1]),
            ("reoffended", [1, 0, 3, 0, 0]),
        ],
    );
    // With a cut-off on day 1008 as well: B and D lose the end of the window to the cut-off,
    // A, C and E to their deaths (E's cut-off, day 13, is after the death).
    check(
        Some(1008),
        &[
            ("count", [None, None, None, None, None]),
            ("count3", [v(3), v(0), None, v(0), v(0)]),
            ("employed_day5", [None, v(0), None, None, v(1)]),
            (
                "time",
                [
                    Some((1, true)),
                    Some((8, false)),
                    None,
                    Some((8, false)),
                    Some((7, false)),
                ],
            ),
            ("reoffended", [None, None, None, None, None]),
        ],
        &[
            ("count", [0, 2, 3, 0, 0]),
            ("count3", [0, 0, 1, 0, 0]),
            ("employed_day5", [1, 0, 2, 0, 0]),
            ("time", [0, 0, 1, 2, 1]),
            ("reoffended", [1, 1, 3, 0, 0]),
        ],
    );
}

#[test]
fn a_deaths_date_that_is_not_a_date_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let work = WorkDir::new(dir.path());
    world(&work);
    write_linked(
        &work,
        "deaths",
        vec![
            ("person_id", crate::tests_fixture::ids(&["A"])),
            ("death_date", ints(&[Some(1004)])),
        ],
    );
    let error = build(&config(work.clone(), None)).err().unwrap().to_string();
    assert!(
        error.contains("death_date") && error.contains("deaths_date"),
        "{error}"
    );
    let mut cfg = config(work, None);
    cfg.deaths = Some(Deaths {
        extract: "deaths".to_owned(),
        date: "died_on".to_owned(),
    });
    let error = build(&cfg).err().unwrap().to_string();
    assert_eq!(error, "column died_on not found in linked table deaths");
    cfg.deaths = Some(Deaths {
        extract: "releases".to_owned(),
        date: "release_date".to_owned(),
    });
    let error = crate::run(&cfg, &linklab_store::NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the deaths extract must differ from the cohort extract"),
        "{error}"
    );
}
