//! Releases that share a cohort: which programmes the dashboard groups by their manifests'
//! `programme.cohort` fingerprints, the page's notice and the command line's warning.

mod common;

use std::path::{Path, PathBuf};

use common::{six, write_release};
use linklab_dashboard::{build, load, render, shared_cohorts};

/// Loads the six generated programmes with the given cohort fingerprints (`None`: no field) and
/// checks the groups of programme names that share one, and their folders.
fn check(cohorts: [Option<&str>; 6], expected: &[&[&str]]) {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs: Vec<PathBuf> = six()
        .into_iter()
        .zip(cohorts)
        .map(|(mut spec, cohort)| {
            spec.meta.as_mut().expect("metadata").cohort = cohort.map(str::to_owned);
            write_release(tmp.path(), &spec)
        })
        .collect();
    let programmes = load(&dirs).expect("six checked releases");
    let groups = shared_cohorts(&programmes);
    let names: Vec<Vec<&str>> = groups
        .iter()
        .map(|g| g.programmes.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(names, expected, "{cohorts:?}");
    for g in &groups {
        let folders: Vec<&Path> = g
            .programmes
            .iter()
            .map(|n| {
                programmes
                    .iter()
                    .find(|p| &p.name == n)
                    .expect("a member")
                    .dir
                    .as_path()
            })
            .collect();
        assert_eq!(g.dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>(), folders);
    }
    let page = render(&programmes, tmp.path());
    assert_eq!(
        page.contains("id=\"shared-cohorts\""),
        !expected.is_empty(),
        "the page has a notice exactly when programmes share a cohort: {cohorts:?}"
    );
}

const NORTH: &str = "North Mentors";
const SECOND: &str = "Second Chance";
const OPEN: &str = "Open Door";
const LEARNING: &str = "Learning Inside";
const FRESH: &str = "Fresh Start College";
const WORK: &str = "Work Ready";

#[test]
fn programmes_are_grouped_by_their_cohort_fingerprint() {
    let (a, b) = (Some("9f2c41e07b3d"), Some("51ab07d3c8e2"));
    check([None; 6], &[]);
    check(
        [Some("1"), Some("2"), Some("3"), Some("4"), Some("5"), Some("6")],
        &[],
    );
    // The fixture's: two runs of two programmes each, two programmes of an unknown cohort.
    check([a, b, None, a, None, b], &[&[NORTH, LEARNING], &[SECOND, WORK]]);
    check([a; 6], &[&[NORTH, SECOND, OPEN, LEARNING, FRESH, WORK]]);
    // Groups come in the order of their first programme; a lone fingerprint makes no group.
    check([b, a, a, None, b, Some("x")], &[&[NORTH, FRESH], &[SECOND, OPEN]]);
    // Blank is unknown, not a shared cohort; surrounding spaces are not part of it.
    check([Some(""), Some("  "), None, None, None, None], &[]);
    check(
        [Some(" c1"), None, None, Some("c1 "), None, None],
        &[&[NORTH, LEARNING]],
    );
    // Fingerprints are compared exactly otherwise.
    check([Some("C1"), None, None, Some("c1"), None, None], &[]);
}

/// The text between `open` and the next `close` after it, both included.
fn section<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap_or_else(|| panic!("no {open:?}"));
    let end = start
        + text[start..]
            .find(close)
            .unwrap_or_else(|| panic!("no {close:?}"))
        + close.len();
    &text[start..end]
}

#[test]
fn the_notice_and_the_warning_name_the_programmes_and_the_joint_audit() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let mut specs = six();
    // A third member of the first run, with a name that needs escaping on the page.
    let mut third = specs[2].clone();
    third.folder = "hope-and-co".to_owned();
    let meta = third.meta.as_mut().expect("metadata");
    meta.name = "Hope & <Co>".to_owned();
    meta.cohort = Some("9f2c41e07b3d".to_owned());
    specs.push(third);
    let releases = tmp.path().join("releases");
    let dirs: Vec<PathBuf> = specs.iter().map(|s| write_release(&releases, s)).collect();
    let built = build(&dirs, &tmp.path().join("dashboard")).expect("the dashboard is written");
    assert_eq!(built.programmes, 7);
    let page = std::fs::read_to_string(&built.page).expect("the page");
    insta::assert_snapshot!(
        "notice",
        section(&page, "<section id=\"shared-cohorts\"", "</section>")
    );
    let root = releases
        .canonicalize()
        .expect("the releases folder")
        .display()
        .to_string();
    let warnings: Vec<String> = built
        .shared_cohorts
        .iter()
        .map(|g| format!("warning: {g}").replace(&root, "RELEASES"))
        .collect();
    insta::assert_snapshot!("warnings", warnings.join("\n"));
}
