//! End-to-end releases from Parquet sources.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use linklab_store::{NoProgress, PartWriter};

use super::independent_check as check;
use crate::{DisclosureRules, MANIFEST_NAME, ReleaseConfig, ReleaseError, TableSpec, run};

/// A person record: id (None = unlinked) and text columns.
pub(crate) struct Rec<'a> {
    pub id: Option<String>,
    pub values: Vec<Option<&'a str>>,
    pub amount: Option<i64>,
}

/// Writes records as one Parquet part file with columns `person_id`, `match_key`, `cols`, `amount`.
pub(crate) fn write_source(dir: &Path, cols: &[&str], recs: &[Rec]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut fields = vec![
        Field::new("person_id", DataType::Utf8, true),
        Field::new("match_key", DataType::Utf8, true),
    ];
    fields.extend(cols.iter().map(|c| Field::new(*c, DataType::Utf8, true)));
    fields.push(Field::new("amount", DataType::Int64, true));
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = vec![
        Arc::new(recs.iter().map(|r| r.id.clone()).collect::<StringArray>()),
        Arc::new(
            recs.iter()
                .map(|r| r.id.as_ref().map(|_| "nino"))
                .collect::<StringArray>(),
        ),
    ];
    for k in 0..cols.len() {
        arrays.push(Arc::new(
            recs.iter().map(|r| r.values[k]).collect::<StringArray>(),
        ));
    }
    arrays.push(Arc::new(recs.iter().map(|r| r.amount).collect::<Int64Array>()));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).unwrap();
    let mut w = PartWriter::new(dir, schema);
    w.write(&batch).unwrap();
    w.finish().unwrap();
}

/// `n` persons per combination of labels, ids numbered from `start`.
pub(crate) fn persons<'a>(cells: &[(Vec<&'a str>, u64)], start: u64) -> Vec<Rec<'a>> {
    let mut out = Vec::new();
    let mut id = start;
    for (labels, n) in cells {
        for _ in 0..*n {
            id += 1;
            out.push(Rec {
                id: Some(format!("p{id}")),
                values: labels.iter().map(|l| Some(*l)).collect(),
                amount: Some((id % 7 * 10) as i64),
            });
        }
    }
    out
}

pub(crate) fn config(root: &Path, rules: DisclosureRules, tables: Vec<TableSpec>) -> ReleaseConfig {
    ReleaseConfig {
        pipeline_name: "demo".into(),
        rules,
        tables,
        extra_files: Vec::new(),
        release_dir: root.join("release"),
        audit_dir: root.join("work/release-audit"),
        signing_key: None,
        programme: None,
    }
}

pub(crate) fn spec(name: &str, source: &Path, by: &[&str], sum: Option<&str>) -> TableSpec {
    TableSpec {
        name: name.into(),
        source: source.to_path_buf(),
        by: by.iter().map(|s| (*s).to_owned()).collect(),
        sum: sum.map(str::to_owned),
    }
}

fn demo_source(root: &Path) -> PathBuf {
    let src = root.join("work/linked/releases");
    let mut recs = persons(
        &[
            (vec!["theft", "F"], 3),
            (vec!["theft", "M"], 25),
            (vec!["violence", "F"], 12),
            (vec!["violence", "M"], 40),
            (vec!["fraud", "F"], 15),
            (vec!["fraud", "M"], 11),
        ],
        0,
    );
    // A second record of person p1 (counted once, in its first cell) and an unlinked record.
    recs.push(Rec {
        id: Some("p1".into()),
        values: vec![Some("fraud"), Some("M")],
        amount: Some(5),
    });
    recs.push(Rec {
        id: None,
        values: vec![Some("theft"), Some("F")],
        amount: Some(5),
    });
    recs.push(Rec {
        id: Some("p999".into()),
        values: vec![Some("theft"), None],
        amount: Some(1),
    });
    write_source(&src, &["offence_group", "sex"], &recs);
    src
}

fn normalise_manifest(text: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["created_at"] = "[time]".into();
    v["tool_version"] = "[version]".into();
    serde_json::to_string_pretty(&v).unwrap()
}

#[test]
fn release_writes_tables_and_manifest_and_passes_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let src = demo_source(tmp.path());
    let extra = tmp.path().join("work/evaluation/impact.csv");
    std::fs::create_dir_all(extra.parent().unwrap()).unwrap();
    std::fs::write(
        &extra,
        "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\nreoffended,rate,40,40,0.3000,0.3800,-0.0800,-0.2000,0.0400,0.1900\n",
    )
    .unwrap();
    let mut cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![
            spec(
                "releases_by_offence_and_sex",
                &src,
                &["offence_group", "sex"],
                None,
            ),
            spec("days_by_sex", &src, &["sex"], Some("amount")),
        ],
    );
    cfg.extra_files.push(extra);
    let summary = run(&cfg, &NoProgress).unwrap();
    assert_eq!(
        summary.files,
        vec!["releases_by_offence_and_sex.csv", "days_by_sex.csv", "impact.csv"]
    );
    let csv = std::fs::read_to_string(cfg.release_dir.join("releases_by_offence_and_sex.csv")).unwrap();
    insta::assert_snapshot!("offence_by_sex_csv", csv);
    let sums = std::fs::read_to_string(cfg.release_dir.join("days_by_sex.csv")).unwrap();
    insta::assert_snapshot!("days_by_sex_csv", sums);
    let manifest = std::fs::read_to_string(cfg.release_dir.join(MANIFEST_NAME)).unwrap();
    insta::assert_snapshot!("manifest", normalise_manifest(&manifest));
    // Nothing about primary or secondary status leaves: only the files listed.
    let mut names: Vec<String> = std::fs::read_dir(&cfg.release_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "days_by_sex.csv",
            "impact.csv",
            "release-manifest.json",
            "releases_by_offence_and_sex.csv"
        ]
    );
    assert!(!manifest.contains("primary") && !manifest.contains("secondary"));
    let report = check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
    // The audit trail holds the true values and statuses.
    let audit: serde_json::Value =
        linklab_store::read_json(&cfg.audit_dir.join("releases_by_offence_and_sex.audit.json")).unwrap();
    assert_eq!(
        audit["status"], "review",
        "most inner cells are suppressed: a human should look"
    );
    assert!(
        audit["cells"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == "secondary")
    );
}

#[test]
fn tampered_releases_fail_the_check_with_named_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let src = demo_source(tmp.path());
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("offence", &src, &["offence_group", "sex"], None)],
    );
    run(&cfg, &NoProgress).unwrap();
    let path = cfg.release_dir.join("offence.csv");
    let csv = std::fs::read_to_string(&path).unwrap();
    // Reveal the small cell, and drop a file in that bypassed the gate.
    let tampered = csv.replacen("theft,F,[c]", "theft,F,3", 1);
    assert_ne!(tampered, csv);
    std::fs::write(&path, tampered).unwrap();
    std::fs::write(cfg.release_dir.join("extra-table.csv"), "a,persons\nx,4\n").unwrap();
    let report = check(&cfg).unwrap();
    assert!(!report.is_ok());
    insta::assert_snapshot!("check_problems", report.to_string());
    // The next release refuses to run over the unlisted file.
    let err = run(&cfg, &NoProgress).unwrap_err();
    assert!(matches!(err, ReleaseError::Unlisted { .. }));
    insta::assert_snapshot!(
        "unlisted_error",
        err.to_string()
            .replace(&tmp.path().display().to_string(), "[tmp]")
    );
}

#[test]
fn rerun_removes_files_no_longer_produced() {
    let tmp = tempfile::tempdir().unwrap();
    let src = demo_source(tmp.path());
    let mut cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![
            spec("a", &src, &["offence_group"], None),
            spec("b", &src, &["sex"], None),
        ],
    );
    run(&cfg, &NoProgress).unwrap();
    assert!(cfg.release_dir.join("b.csv").exists());
    cfg.tables.pop();
    run(&cfg, &NoProgress).unwrap();
    assert!(!cfg.release_dir.join("b.csv").exists());
    assert!(check(&cfg).unwrap().is_ok());
}

#[test]
fn reserved_total_label_is_refused_without_echoing_values() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_source(&src, &["region"], &persons(&[(vec!["Total"], 12)], 0));
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("t", &src, &["region"], None)],
    );
    let err = run(&cfg, &NoProgress).unwrap_err();
    insta::assert_snapshot!(err.to_string().replace(&tmp.path().display().to_string(), "[tmp]"), @"table t: column region of [tmp]/src holds the reserved margin label Total in a data row");
    assert!(!cfg.release_dir.exists());
}

#[test]
fn rounding_follows_the_10_5_rule_and_passes_the_check() {
    let tmp = tempfile::tempdir().unwrap();
    let src = demo_source(tmp.path());
    let rules = DisclosureRules {
        round_to: 5,
        ..DisclosureRules::default()
    };
    let cfg = config(
        tmp.path(),
        rules,
        vec![spec("offence", &src, &["offence_group", "sex"], None)],
    );
    run(&cfg, &NoProgress).unwrap();
    let csv = std::fs::read_to_string(cfg.release_dir.join("offence.csv")).unwrap();
    insta::assert_snapshot!("offence_rounded_csv", csv);
    let report = check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn a_table_by_treated_hides_all_treated_when_a_few_treated_persons_were_dropped_by_the_caliper() {
    let tmp = tempfile::tempdir().unwrap();
    let frame = tmp.path().join("work/evaluation/frame");
    let cols = ["treated", "group", "reoffended"];
    let mut recs = persons(
        &[
            (vec!["true", "treated", "1"], 30),
            (vec!["true", "treated", "0"], 30),
            (vec!["false", "comparison", "1"], 25),
            (vec!["false", "comparison", "0"], 35),
        ],
        0,
    );
    let untreated = persons(
        &[(vec!["false", "x", "1"], 40), (vec!["false", "x", "0"], 40)],
        1000,
    );
    recs.extend(untreated.into_iter().map(|r| Rec {
        values: vec![r.values[0], None, r.values[2]],
        ..r
    }));
    // One treated person dropped by the caliper: treated, no group.
    let dropped = persons(&[(vec!["true", "x", "1"], 1)], 2000);
    let with_dropped: Vec<Rec> = recs
        .iter()
        .map(|r| Rec {
            id: r.id.clone(),
            values: r.values.clone(),
            amount: r.amount,
        })
        .chain(dropped.into_iter().map(|r| Rec {
            values: vec![r.values[0], None, r.values[2]],
            ..r
        }))
        .collect();
    write_source(&frame, &cols, &with_dropped);
    let by_treated = spec("by_treated", &frame, &["treated", "reoffended"], None);
    let by_group = spec("by_group", &frame, &["group", "reoffended"], None);
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![by_group.clone(), by_treated],
    );
    // The release goes ahead (it used to be refused): all treated minus the matched treated
    // would single out the dropped person, so the all-treated cells are hidden, and the attacker
    // cannot work them out from the untreated and the total either.
    run(&cfg, &NoProgress).unwrap();
    let read = |name: &str| std::fs::read_to_string(cfg.release_dir.join(name)).unwrap();
    let value = |text: &str, row: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(&format!("{row},")))?;
        line.rsplit(',').next().unwrap().parse().ok()
    };
    let (treated_csv, group_csv) = (read("by_treated.csv"), read("by_group.csv"));
    let matched = value(&group_csv, "treated,Total");
    let all_treated = value(&treated_csv, "true,Total").or_else(|| {
        value(&treated_csv, "Total,Total")
            .zip(value(&treated_csv, "false,Total"))
            .map(|(t, f)| t - f)
    });
    assert!(
        all_treated.is_none() || matched.is_none(),
        "{treated_csv}{group_csv}"
    );
    let report = super::independent_check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
    // By group alone is fine, and so is by treated when nobody was dropped.
    let cfg = config(tmp.path(), DisclosureRules::default(), vec![by_group]);
    run(&cfg, &NoProgress).unwrap();
    let frame2 = tmp.path().join("work/evaluation2/frame");
    write_source(&frame2, &cols, &recs);
    let cfg = config(
        &tmp.path().join("second"),
        DisclosureRules::default(),
        vec![spec("by_treated", &frame2, &["treated", "reoffended"], None)],
    );
    run(&cfg, &NoProgress).unwrap();
}

#[test]
fn a_cell_the_evaluation_figures_publish_is_never_a_secondary_suppression() {
    let tmp = tempfile::tempdir().unwrap();
    let frame = tmp.path().join("work/evaluation/frame");
    let cells = [
        (vec!["F", "a", "true"], 3),
        (vec!["F", "b", "true"], 10),
        (vec!["F", "b", "false"], 10),
        (vec!["F", "c", "false"], 25),
        (vec!["M", "a", "false"], 30),
        (vec!["M", "b", "false"], 40),
        (vec!["M", "c", "false"], 35),
    ];
    write_source(&frame, &["sex", "region", "treated"], &persons(&cells, 0));
    let table = spec("by_sex_region", &frame, &["sex", "region"], None);
    let status_of = |cfg: &ReleaseConfig, sex: &str, region: &str| -> String {
        let text = std::fs::read_to_string(cfg.release_dir.join("by_sex_region.csv")).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{sex},{region},")))
            .unwrap()
            .to_owned();
        line.rsplit(',').next().unwrap().to_owned()
    };
    // Without figures, the small cell (F, a) is protected with its row neighbour (F, b).
    let cfg = config(tmp.path(), DisclosureRules::default(), vec![table.clone()]);
    run(&cfg, &NoProgress).unwrap();
    assert_eq!(status_of(&cfg, "F", "a"), "[c]");
    assert_eq!(status_of(&cfg, "F", "b"), "[c]", "the cheapest partner");
    // When the evaluation's figures publish (F, b) (balance mean × group size), hiding it
    // would protect nothing: another partner is chosen.
    let figures = serde_json::json!({
        "format": "linklab-evaluation-figures-v1",
        "source": "evaluation",
        "cells": [{"key": [["region", "b"], ["sex", "F"]], "persons": 20, "figures": ["balance.csv"]}],
    });
    std::fs::write(frame.parent().unwrap().join("figures.json"), figures.to_string()).unwrap();
    run(&cfg, &NoProgress).unwrap();
    assert_eq!(status_of(&cfg, "F", "a"), "[c]");
    assert_eq!(status_of(&cfg, "F", "b"), "20");
    // The same when the figures give (F, b) split by treated (balance means of both groups).
    let split = serde_json::json!({
        "format": "linklab-evaluation-figures-v1",
        "source": "evaluation",
        "cells": [
            {"key": [["region", "b"], ["sex", "F"], ["treated", "false"]], "persons": 10, "figures": []},
            {"key": [["region", "b"], ["sex", "F"], ["treated", "true"]], "persons": 10, "figures": []},
        ],
    });
    std::fs::write(frame.parent().unwrap().join("figures.json"), split.to_string()).unwrap();
    run(&cfg, &NoProgress).unwrap();
    assert_eq!(status_of(&cfg, "F", "b"), "20");
    // Figures that disagree with the frame are stale: refused.
    let stale = figures.to_string().replace("\"persons\":20", "\"persons\":21");
    std::fs::write(frame.parent().unwrap().join("figures.json"), stale).unwrap();
    let err = run(&cfg, &NoProgress).unwrap_err().to_string();
    assert!(err.contains("does not match the analysis frame"), "{err}");
}

#[test]
fn rare_levels_merge_into_other_and_formula_labels_are_guarded() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("work/linked/releases");
    let recs = persons(
        &[
            (vec!["=HYPERLINK(\"x\")"], 12),
            (vec!["theft"], 15),
            (vec!["-5"], 20),
            (vec!["rare one"], 3),
            (vec!["rare two"], 2),
        ],
        0,
    );
    write_source(&src, &["offence"], &recs);
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("offence", &src, &["offence"], None)],
    );
    run(&cfg, &NoProgress).unwrap();
    let csv = std::fs::read_to_string(cfg.release_dir.join("offence.csv")).unwrap();
    insta::assert_snapshot!(csv, @r#"
    offence,persons
    '-5,20
    "'=HYPERLINK(""x"")",[c]
    theft,15
    Other,[c]
    Total,52
    "#);
    assert!(!csv.contains("rare"));
    let report = check(&cfg).unwrap();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn a_dimension_with_more_levels_than_persons_over_threshold_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let cells: Vec<(Vec<&str>, u64)> = ["a", "b", "c", "d", "e"].iter().map(|l| (vec![*l], 8)).collect();
    write_source(&src, &["record"], &persons(&cells, 0));
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("by_record", &src, &["record"], None)],
    );
    let err = run(&cfg, &NoProgress).unwrap_err();
    insta::assert_snapshot!(err.to_string().replace(&tmp.path().display().to_string(), "[tmp]"), @"table by_record: column record of [tmp]/src: has 5 distinct values among 40 persons, more than persons / threshold (4): a dimension with that many levels would publish rare labels; tabulate a coarser column");
    assert!(!cfg.release_dir.exists());
}

/// A table whose dimensions each pass the level rule (every level held by at least `threshold`
/// persons) can still be too big: four dimensions of 20 levels make 21⁴ = 194,481 cells with
/// their margins, over `MAX_TABLE_CELLS`, and the table is refused before it is protected.
#[test]
fn a_table_over_the_cell_limit_is_refused_before_it_is_protected() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("work/linked/releases");
    let labels: Vec<String> = (0..20).map(|i| format!("v{i:02}")).collect();
    // 400 persons; person i holds level (i + k·7) mod 20 of dimension k, so each level of each
    // dimension is held by exactly 20 persons.
    let recs: Vec<Rec> = (0..400_usize)
        .map(|i| Rec {
            id: Some(format!("p{i}")),
            values: (0..4).map(|k| Some(labels[(i + k * 7) % 20].as_str())).collect(),
            amount: None,
        })
        .collect();
    write_source(&src, &["a", "b", "c", "d"], &recs);
    let cfg = config(
        tmp.path(),
        DisclosureRules::default(),
        vec![spec("four_way", &src, &["a", "b", "c", "d"], None)],
    );
    let err = run(&cfg, &NoProgress).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "194481 cells with its margins, more than the {}",
            crate::MAX_TABLE_CELLS
        )),
        "{err}"
    );
    assert!(!cfg.release_dir.exists());
}
