//! The evaluation's figures (`evaluation/figures.json`) in the joint system of the analysis
//! frame's tables (issue 12, "every published number is a cell of one system").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use linklab_store::NoProgress;
use proptest::prelude::*;

use super::release::{Rec, config, spec, write_source};
use crate::{DisclosureRules, ReleaseConfig, ReleaseError, run};

/// An analysis frame with `treated`, `group` (`-` = null) and `sex`: `n` persons per row.
fn frame(root: &Path, rows: &[(&'static str, &'static str, &'static str, u64)]) -> PathBuf {
    frame_by(root, "sex", rows)
}

/// An analysis frame with `treated`, `group` (`-` = null) and a third column `third`.
fn frame_by(root: &Path, third: &str, rows: &[(&'static str, &'static str, &'static str, u64)]) -> PathBuf {
    let dir = root.join("work/evaluation/frame");
    let mut recs = Vec::new();
    for &(treated, group, sex, n) in rows {
        for _ in 0..n {
            recs.push(Rec {
                id: Some(format!("p{}", recs.len())),
                values: vec![Some(treated), (group != "-").then_some(group), Some(sex)],
                amount: None,
            });
        }
    }
    write_source(&dir, &["treated", "group", third], &recs);
    dir
}

/// Writes the evaluation's published files beside the frame (`publish/`): their paths.
fn publish(frame: &Path, files: &[(&str, &str)]) -> Vec<PathBuf> {
    let dir = frame.parent().unwrap().join("publish");
    std::fs::create_dir_all(&dir).unwrap();
    files
        .iter()
        .map(|(name, text)| {
            std::fs::write(dir.join(name), text).unwrap();
            dir.join(name)
        })
        .collect()
}

/// The audit trail's entry for a cell of the frame's figures.
fn audited_cell(cfg: &ReleaseConfig, cell: &serde_json::Value) -> serde_json::Value {
    let figures: serde_json::Value =
        linklab_store::read_json(&cfg.audit_dir.join("evaluation-frame.figures.audit.json")).unwrap();
    figures["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["cells"].as_array().unwrap())
        .find(|c| c["cell"] == *cell)
        .unwrap()
        .clone()
}

/// Asserts that an audited unpublished cell can be anything up to the threshold (10) or beyond.
fn assert_unknown_to_the_threshold(cell: &serde_json::Value) {
    assert_eq!(cell["status"], "unpublished", "{cell}");
    let hi: f64 = cell["interval"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap_or(f64::INFINITY);
    assert!(hi >= 10.0, "{cell}");
}

/// A figure cell: its (dimension, value) pairs, persons and places.
type Figure<'a> = (&'a [(&'a str, &'a str)], u64, &'a [&'a str]);

/// A figure cell being built.
type OwnedFigure<'a> = (Vec<(&'a str, &'a str)>, u64, Vec<String>);

/// Writes `figures.json` beside the frame: (key, persons) pairs, with no places (figures that
/// cannot be withheld).
fn figures(frame: &Path, cells: &[(&[(&str, &str)], u64)]) {
    let cells: Vec<Figure<'_>> = cells.iter().map(|&(k, n)| (k, n, &[][..])).collect();
    figures_at(frame, &cells);
}

/// Writes `figures.json` beside the frame: (key, persons, places) triples.
fn figures_at(frame: &Path, cells: &[Figure<'_>]) {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|(key, persons, places)| {
            let mut key: Vec<(&str, &str)> = key.to_vec();
            key.sort_unstable();
            serde_json::json!({"key": key, "persons": persons, "figures": [], "places": places})
        })
        .collect();
    let json = serde_json::json!({"format": "linklab-evaluation-figures-v1", "source": "evaluation", "cells": cells});
    std::fs::write(frame.parent().unwrap().join("figures.json"), json.to_string()).unwrap();
}

/// 50 matched treated (20 women), 100 untreated of whom 50 matched, and one treated woman the
/// caliper dropped.
const WORLD: &[(&str, &str, &str, u64)] = &[
    ("true", "treated", "F", 20),
    ("true", "treated", "M", 30),
    ("true", "-", "F", 1),
    ("false", "comparison", "F", 20),
    ("false", "comparison", "M", 30),
    ("false", "-", "F", 20),
    ("false", "-", "M", 30),
];

/// Figures that alone single out the dropped person (all treated and the matched treated): when
/// the figures do not say where they are printed, the release is refused, though no table
/// counts by `treated`; when they do, one is withheld. Before the figure cells were cells of
/// the system, this released.
#[test]
fn figures_that_alone_single_out_a_dropped_person_are_withheld_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let frame = frame(tmp.path(), WORLD);
    figures(
        &frame,
        &[(&[("treated", "true")], 51), (&[("group", "treated")], 50)],
    );
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("by_sex", &frame, &["sex"], None)],
    );
    let err = run(&cfg, &NoProgress).unwrap_err().to_string();
    insta::assert_snapshot!(err, @"table by_sex is refused: the evaluation's published figures narrow the count group=Unknown, treated=true below the threshold, no table cell is left to hide, and figures.json does not say where the figures are printed; run the evaluate stage again");
    assert!(!cfg.release_dir.exists());
    // When the evaluate stage says where they are printed, one of them is withheld instead.
    figures_at(
        &frame,
        &[
            (&[("treated", "true")], 51, &["report.html:eligible:treated"]),
            (&[("group", "treated")], 50, &["impact.csv:0:treated_persons"]),
        ],
    );
    run(&cfg, &NoProgress).unwrap();
    let trail: serde_json::Value =
        linklab_store::read_json(&cfg.audit_dir.join("release-audit.json")).unwrap();
    assert_eq!(trail["utility"]["figures_suppressed_or_coarsened"], 1, "{trail}");
}

/// A table margin with balance counts of the untreated and the matched treated rebuilds the
/// dropped persons (all women − untreated women − matched treated women = 1): the table's cells
/// on that line are suppressed, and the attack from the published values learns nothing.
#[test]
fn a_table_margin_that_with_the_figures_rebuilds_a_dropped_person_is_suppressed() {
    let tmp = tempfile::tempdir().unwrap();
    let frame = frame(tmp.path(), WORLD);
    let published = [
        (&[("treated", "false"), ("sex", "F")][..], 40),
        (&[("treated", "false"), ("sex", "M")][..], 60),
        (&[("group", "treated"), ("sex", "F")][..], 20),
        (&[("group", "treated"), ("sex", "M")][..], 30),
    ];
    figures(&frame, &published);
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("by_sex", &frame, &["sex"], None)],
    );
    run(&cfg, &NoProgress).unwrap();
    let text = std::fs::read_to_string(cfg.release_dir.join("by_sex.csv")).unwrap();
    let value = |label: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(&format!("{label},")))
            .and_then(|l| l.rsplit(',').next().unwrap().parse().ok())
    };
    // The attack: women − untreated women − matched treated women.
    assert_eq!(value("F"), None, "{text}");
    // Nor by way of the men and the total.
    let men = value("M").zip(value("Total")).map(|(m, t)| t - m);
    assert_eq!(men, None, "{text}");
    let report = super::independent_check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
    // The audit trail counts what was given up.
    let trail: serde_json::Value =
        linklab_store::read_json(&cfg.audit_dir.join("release-audit.json")).unwrap();
    insta::assert_snapshot!(serde_json::to_string(&trail["utility"]).unwrap(), @r#"{"figure_cells_audited":4,"figures_suppressed_or_coarsened":0,"table_cells":3,"table_cells_suppressed":3,"unpublished_cells_audited":23}"#);
    // And every cell the figures pass through: the dropped woman is unpublished, and can be
    // anything from 0 to beyond the threshold.
    let dropped = audited_cell(
        &cfg,
        &serde_json::json!({"group": "Unknown", "sex": "F", "treated": "true"}),
    );
    assert_eq!(dropped["status"], "unpublished");
    assert_eq!(dropped["published"], "-");
    assert_unknown_to_the_threshold(&dropped);
}

/// The caliper dropped one treated person; the report prints both eligible group sizes
/// (51 treated, 100 untreated), `impact.csv` the matched sizes (50 and 50) and the employment
/// rates, and a table of the frame counts by group × employed. All treated − matched treated
/// singles out the dropped person, and with the table's grand total so does the grand total −
/// all untreated − matched treated: no table cell can break that, only a figure. The release
/// goes ahead: both eligible sizes are written `[c]` (a figure on the relation, before any
/// table cell), the table is published whole, and the independent LP attacker cannot derive
/// the dropped count. It used to suppress every table cell and then be refused. The rates stay:
/// protection may pick them as partners, but the table prints their counts all the same.
#[test]
fn a_person_dropped_by_the_caliper_is_protected_by_withholding_the_eligible_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    // The world of the tests above, with women employed and men not.
    let world: World = WORLD
        .iter()
        .map(|&(t, g, sex, n)| (t, g, if sex == "F" { "yes" } else { "no" }, n))
        .collect();
    let frame = frame_by(tmp.path(), "employed", &world);
    let impact = "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value\nemployed,rate,50,50,0.4000,0.4000\n";
    let report = "<!DOCTYPE html><p><span data-figure=\"report.html:eligible:true\">51</span> treated and <span data-figure=\"report.html:eligible:false\">100</span> untreated persons were eligible</p>";
    let extra_files = publish(&frame, &[("impact.csv", impact), ("report.html", report)]);
    let values = |column: &str| ["impact.csv:0:".to_owned() + column];
    let (treated, comparison) = (values("treated_value"), values("comparison_value"));
    let (treated, comparison) = (
        treated.each_ref().map(String::as_str),
        comparison.each_ref().map(String::as_str),
    );
    figures_at(
        &frame,
        &[
            (&[("treated", "true")], 51, &["report.html:eligible:true"]),
            (&[("treated", "false")], 100, &["report.html:eligible:false"]),
            (
                &[("group", "treated")],
                50,
                &["impact.csv:0:treated_persons", "impact.csv:0:treated_value"],
            ),
            (
                &[("group", "comparison")],
                50,
                &["impact.csv:0:comparison_persons", "impact.csv:0:comparison_value"],
            ),
            (&[("group", "treated"), ("employed", "yes")], 20, &treated),
            (&[("group", "treated"), ("employed", "no")], 30, &treated),
            (&[("group", "comparison"), ("employed", "yes")], 20, &comparison),
            (&[("group", "comparison"), ("employed", "no")], 30, &comparison),
        ],
    );
    let cfg = ReleaseConfig {
        extra_files,
        ..config(
            tmp.path(),
            DisclosureRules::default(),
            vec![spec("employment_by_group", &frame, &["group", "employed"], None)],
        )
    };
    run(&cfg, &NoProgress).unwrap();
    let read = |name: &str| std::fs::read_to_string(cfg.release_dir.join(name)).unwrap();
    insta::assert_snapshot!(read("report.html"), @r#"<!DOCTYPE html><p><span data-figure="report.html:eligible:true">[c]</span> treated and <span data-figure="report.html:eligible:false">[c]</span> untreated persons were eligible</p>"#);
    assert_eq!(read("impact.csv"), impact);
    insta::assert_snapshot!(read("employment_by_group.csv"), @r"
    group,employed,persons
    comparison,no,30
    comparison,yes,20
    comparison,Total,50
    treated,no,30
    treated,yes,20
    treated,Total,50
    Unknown,no,30
    Unknown,yes,21
    Unknown,Total,51
    Total,no,90
    Total,yes,61
    Total,Total,151
    ");
    let report = super::independent_check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
    // The dropped person is an unknown the published values leave anywhere from 0 to beyond
    // the threshold.
    let dropped = audited_cell(&cfg, &serde_json::json!({"group": "Unknown", "treated": "true"}));
    assert_unknown_to_the_threshold(&dropped);
}

/// The evaluation (threshold 5) published a balance level of 7 matched treated women; the
/// release's threshold is 10. The release goes ahead (it used to be refused): the level's
/// figures are written `[c]` wherever they are printed (`balance.csv`, the report's table and
/// chart), and so are the men's (the group size minus them would give the women back), while
/// the comparison group's means stay (their standardised differences go with the treated
/// means); the audit trail counts both cells; `check-release` passes.
#[test]
fn a_figure_below_the_release_threshold_is_withheld_wherever_it_is_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let frame = frame(
        tmp.path(),
        &[
            ("true", "treated", "F", 7),
            ("true", "treated", "M", 43),
            ("false", "comparison", "F", 20),
            ("false", "comparison", "M", 30),
            ("false", "-", "F", 20),
            ("false", "-", "M", 30),
        ],
    );
    let files = [
        (
            "impact.csv",
            "outcome,measure,treated_persons,comparison_persons\nreoffended,rate,50,50\n",
        ),
        (
            "balance.csv",
            "covariate,level,smd_after,treated_mean,comparison_mean,treated_mean_before,untreated_mean_before\nsex,F,-0.5,0.1400,0.4000,[c],[c]\nsex,M,0.5,0.8600,0.6000,[c],[c]\n",
        ),
        (
            "report.html",
            "<!DOCTYPE html><p>Women <span data-figure=\"balance.csv:0:treated_mean\">14%</span> and <span data-figure=\"balance.csv:0:comparison_mean\">40%</span></p>\
<svg><g data-figure=\"balance.csv:0:smd_after\"><circle r=\"-0.5\"/></g></svg>",
        ),
    ];
    let extra_files = publish(&frame, &files);
    let treated = |row: usize| -> Vec<String> {
        ["treated_mean", "smd_after"]
            .iter()
            .map(|c| format!("balance.csv:{row}:{c}"))
            .collect()
    };
    let (women, men) = (treated(0), treated(1));
    let (women, men): (Vec<&str>, Vec<&str>) = (
        women.iter().map(String::as_str).collect(),
        men.iter().map(String::as_str).collect(),
    );
    figures_at(
        &frame,
        &[
            (&[("group", "treated")], 50, &["impact.csv:0:treated_persons"]),
            (
                &[("group", "comparison")],
                50,
                &["impact.csv:0:comparison_persons"],
            ),
            (&[("group", "treated"), ("sex", "F")], 7, &women),
            (&[("group", "treated"), ("sex", "M")], 43, &men),
            (
                &[("group", "comparison"), ("sex", "F")],
                20,
                &["balance.csv:0:comparison_mean", "balance.csv:0:smd_after"],
            ),
            (
                &[("group", "comparison"), ("sex", "M")],
                30,
                &["balance.csv:1:comparison_mean", "balance.csv:1:smd_after"],
            ),
        ],
    );
    let cfg = ReleaseConfig {
        extra_files,
        ..config(
            tmp.path(),
            DisclosureRules::default(),
            vec![spec("by_group", &frame, &["group"], None)],
        )
    };
    run(&cfg, &NoProgress).unwrap();
    let read = |name: &str| std::fs::read_to_string(cfg.release_dir.join(name)).unwrap();
    insta::assert_snapshot!(read("balance.csv"), @r"
    covariate,level,smd_after,treated_mean,comparison_mean,treated_mean_before,untreated_mean_before
    sex,F,[c],[c],0.4000,[c],[c]
    sex,M,[c],[c],0.6000,[c],[c]
    ");
    insta::assert_snapshot!(read("report.html"), @r#"<!DOCTYPE html><p>Women <span data-figure="balance.csv:0:treated_mean">[c]</span> and <span data-figure="balance.csv:0:comparison_mean">40%</span></p><svg><g data-figure="balance.csv:0:smd_after">[c]</g></svg>"#);
    assert_eq!(read("impact.csv"), files[0].1);
    let trail: serde_json::Value =
        linklab_store::read_json(&cfg.audit_dir.join("release-audit.json")).unwrap();
    assert_eq!(trail["utility"]["figures_suppressed_or_coarsened"], 2, "{trail}");
    let report = super::independent_check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
    // The manifest hashes the bytes written.
    let manifest: serde_json::Value =
        linklab_store::read_json(&cfg.release_dir.join(crate::MANIFEST_NAME)).unwrap();
    let listed = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "balance.csv")
        .unwrap();
    assert_eq!(
        listed["sha256"],
        linklab_store::sha256_file(&cfg.release_dir.join("balance.csv")).unwrap()
    );
}

/// The persons of one (treated, group, sex) combination of a random world.
type World = Vec<(&'static str, &'static str, &'static str, u64)>;

/// Random small evaluation worlds: matched groups of 10 to 39 per sex, 0 to 2 treated persons
/// per sex dropped by the caliper, 0 to 39 unmatched untreated per sex.
fn worlds() -> impl Strategy<Value = World> {
    (
        prop::collection::vec(10u64..40, 4),
        prop::collection::vec(0u64..3, 2),
        prop::collection::vec(0u64..40, 2),
    )
        .prop_map(|(matched, dropped, unmatched)| {
            vec![
                ("true", "treated", "F", matched[0]),
                ("true", "treated", "M", matched[1]),
                ("true", "-", "F", dropped[0]),
                ("true", "-", "M", dropped[1]),
                ("false", "comparison", "F", matched[2]),
                ("false", "comparison", "M", matched[3]),
                ("false", "-", "F", unmatched[0]),
                ("false", "-", "M", unmatched[1]),
            ]
        })
}

/// The persons of `world` whose values match every given (dimension, value) pair.
fn persons_of(world: &World, pairs: &[(&str, &str)]) -> u64 {
    world
        .iter()
        .filter(|(t, g, s, _)| {
            pairs.iter().all(|&(d, v)| match d {
                "treated" => *t == v,
                "group" => *g == v,
                _ => *s == v,
            })
        })
        .map(|r| r.3)
        .sum()
}

/// Publishes the evaluation's files for `world` as evaluate would: `impact.csv` (the matched
/// group sizes) and `balance.csv` (the share of women and men in each arm, to 4 decimals: with
/// these group sizes, exact counts), and `figures.json` with the counts they imply. With
/// `before`, the before-matching arms (all treated, all untreated) too.
fn publish_figures(frame: &Path, world: &World, before: bool) -> Vec<PathBuf> {
    let publish = frame.parent().unwrap().join("publish");
    std::fs::create_dir_all(&publish).unwrap();
    let arms: Vec<(&str, &str, &str)> = [
        ("group", "treated", "treated_mean"),
        ("treated", "true", "treated_mean_before"),
        ("treated", "false", "untreated_mean_before"),
    ]
    .into_iter()
    .filter(|a| before || a.0 == "group")
    .collect();
    let mut cells: Vec<OwnedFigure<'_>> = Vec::new();
    let mut balance =
        String::from("covariate,level,treated_mean,treated_mean_before,untreated_mean_before\n");
    for (r, sex) in ["F", "M"].into_iter().enumerate() {
        let mut row = vec![String::new(); 3];
        for &(dim, value, column) in &arms {
            let n = persons_of(world, &[(dim, value)]);
            let c = persons_of(world, &[(dim, value), ("sex", sex)]);
            let slot = ["treated_mean", "treated_mean_before", "untreated_mean_before"]
                .iter()
                .position(|x| *x == column)
                .unwrap();
            row[slot] = format!("{:.4}", c as f64 / n as f64);
            cells.push((
                vec![(dim, value), ("sex", sex)],
                c,
                vec![format!("balance.csv:{r}:{column}")],
            ));
        }
        writeln!(balance, "sex,{sex},{}", row.join(",")).unwrap();
    }
    let (treated, comparison) = (
        persons_of(world, &[("group", "treated")]),
        persons_of(world, &[("group", "comparison")]),
    );
    // A group's size, and every mean over it (a mean of a withheld group is withheld too).
    let treated_places = std::iter::once("impact.csv:0:treated_persons".to_owned())
        .chain((0..2).map(|r| format!("balance.csv:{r}:treated_mean")));
    cells.push((vec![("group", "treated")], treated, treated_places.collect()));
    cells.push((
        vec![("group", "comparison")],
        comparison,
        vec!["impact.csv:0:comparison_persons".to_owned()],
    ));
    // Before matching, the report prints the arms' sizes beside their means.
    for &(dim, value, column) in arms.iter().filter(|a| a.0 == "treated") {
        let places = std::iter::once(format!("report.html:eligible:{value}"))
            .chain((0..2).map(|r| format!("balance.csv:{r}:{column}")));
        cells.push((
            vec![(dim, value)],
            persons_of(world, &[(dim, value)]),
            places.collect(),
        ));
    }
    let impact = format!(
        "outcome,measure,treated_persons,comparison_persons\nreoffended,rate,{treated},{comparison}\n"
    );
    let places: Vec<Vec<&str>> = cells
        .iter()
        .map(|(_, _, p)| p.iter().map(String::as_str).collect())
        .collect();
    let refs: Vec<Figure<'_>> = cells
        .iter()
        .zip(&places)
        .map(|((k, n, _), p)| (k.as_slice(), *n, p.as_slice()))
        .collect();
    figures_at(frame, &refs);
    let files = [("impact.csv", impact), ("balance.csv", balance)];
    files
        .into_iter()
        .map(|(name, text)| {
            let path = publish.join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random small evaluation worlds, tables of the frame and published figures that say where
    /// they are printed: the release goes ahead, withholding figures where it must, and the
    /// independent LP attacker over everything in the release folder (tables, `impact.csv`,
    /// `balance.csv`, the evaluation's arms) pins no cell and narrows none below the threshold.
    /// A refusal is allowed only for the documented reason that nothing is left to hide, with
    /// nothing written.
    #[test]
    fn releases_with_figures_are_safe_and_checkable(world in worlds(), mask in 0u8..16, before: bool) {
        let tmp = tempfile::tempdir().unwrap();
        let frame = frame(tmp.path(), &world);
        let extra_files = publish_figures(&frame, &world, before);
        let sets: [&[&str]; 4] = [&["sex"], &["group", "sex"], &["group"], &["treated", "group"]];
        let tables = sets
            .iter()
            .enumerate()
            .filter(|&(k, _)| mask >> k & 1 == 1)
            .map(|(k, by)| spec(&format!("t{k}"), &frame, by, None))
            .collect();
        let cfg = ReleaseConfig {
            extra_files,
            ..config(tmp.path(), DisclosureRules::default(), tables)
        };
        match run(&cfg, &NoProgress) {
            Ok(_) => {
                let report = super::independent_check(&cfg).unwrap();
                prop_assert!(report.is_ok(), "{report}");
            }
            Err(e) => {
                let documented = matches!(&e, ReleaseError::Refused { reason, .. } if reason.contains("no table cell is left to hide"));
                prop_assert!(documented, "{e}");
                prop_assert!(!cfg.release_dir.exists());
            }
        }
    }
}
