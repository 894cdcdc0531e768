//! The evaluation's figures (`evaluation/figures.json`) in the joint system of the analysis
//! frame's tables (issue 12, "every published number is a cell of one system").

use std::path::{Path, PathBuf};

use linklab_store::NoProgress;

use super::release::{Rec, config, spec, write_source};
use crate::{DisclosureRules, run};

/// An analysis frame with `treated`, `group` (`-` = null) and `sex`: `n` persons per row.
fn frame(root: &Path, rows: &[(&'static str, &'static str, &'static str, u64)]) -> PathBuf {
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
    write_source(&dir, &["treated", "group", "sex"], &recs);
    dir
}

/// Writes `figures.json` beside the frame: (key, persons) pairs.
fn figures(frame: &Path, cells: &[(&[(&str, &str)], u64)]) {
    let cells: Vec<serde_json::Value> = cells
        .iter()
        .map(|(key, persons)| {
            let mut key: Vec<(&str, &str)> = key.to_vec();
            key.sort_unstable();
            serde_json::json!({"key": key, "persons": persons, "figures": []})
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

/// Figures that alone single out the dropped person (all treated and the matched treated): the
/// release is refused, though no table counts by `treated`. Before the figure cells were cells of
/// the system, this released.
#[test]
fn figures_that_alone_single_out_a_dropped_person_are_refused() {
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
    insta::assert_snapshot!(err, @"table by_sex is refused: the evaluation's published figures narrow the count group=Unknown, treated=true below the threshold, and no table cell is left to hide");
    assert!(!cfg.release_dir.exists());
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
}
