//! Attacks on hand-made release folders: each builds a folder as the release stage would (or as
//! an attacker left it, checksums recomputed), runs the checker and expects what it reports.

use std::fs;
use std::path::{Path, PathBuf};

use linklab_check::{CheckOptions, CheckReport, check_release};
use sha2::{Digest, Sha256};

/// A file of a hand-made release: name, kind, `by` columns (tables), content.
struct File<'a> {
    name: &'a str,
    kind: &'a str,
    by: &'a [&'a str],
    text: &'a str,
}

fn table<'a>(name: &'a str, by: &'a [&'a str], text: &'a str) -> File<'a> {
    File {
        name,
        kind: "table",
        by,
        text,
    }
}

fn extra<'a>(name: &'a str, text: &'a str) -> File<'a> {
    File {
        name,
        kind: "extra",
        by: &[],
        text,
    }
}

/// Writes a release folder with a manifest listing `files` (with their real checksums), under
/// `threshold`, zeros disclosive, no rounding; every table in one source group.
fn release(dir: &Path, threshold: u64, files: &[File]) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let mut listed = Vec::new();
    for f in files {
        fs::write(dir.join(f.name), f.text).unwrap();
        let mut entry = serde_json::json!({
            "name": f.name,
            "kind": f.kind,
            "sha256": hex::encode(Sha256::digest(f.text.as_bytes())),
        });
        if f.kind == "table" {
            entry["by"] = serde_json::json!(f.by);
            entry["joint_group"] = "linked/releases".into();
        }
        listed.push(entry);
    }
    let manifest = serde_json::json!({
        "format": "linklab-release-manifest-v1",
        "pipeline": "demo",
        "tool_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00Z",
        "rules": {"threshold": threshold, "zeros_disclosive": true, "round_to": 1,
                  "dominance_n": 2, "dominance_k": 0.9, "p_percent": 0.1},
        "additivity": "exact",
        "files": listed,
    });
    fs::write(
        dir.join("release-manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// A release (threshold 10) whose tables count the evaluation frame `frame` (`evaluation/frame`,
/// or `<programme>/frame` with several programmes), as the evaluation's files beside them do.
fn frame_release(dir: &Path, frame: &str, files: &[File]) -> PathBuf {
    let dir = release(dir, 10, files);
    let path = dir.join("release-manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["kind"] == "table" {
            f["joint_group"] = frame.into();
        }
    }
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    dir
}

fn check_with(dir: &Path, opts: &CheckOptions) -> String {
    let report: CheckReport = check_release(dir, opts).unwrap();
    report
        .to_string()
        .replace(&dir.parent().unwrap().display().to_string(), "[tmp]")
}

fn check(dir: &Path) -> String {
    check_with(dir, &CheckOptions::default())
}

#[test]
fn a_cell_left_alone_in_its_line_is_worked_out_by_subtraction_1d() {
    let tmp = tempfile::tempdir().unwrap();
    // Released with x and y suppressed; then y was published and the checksums recomputed.
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[table(
            "t.csv",
            &["sex"],
            "sex,persons\nF,[c]\nM,25\nU,30\nTotal,58\n",
        )],
    );
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn a_cell_left_alone_in_its_line_is_worked_out_by_subtraction_2d() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "a,b,persons\nx,p,[c]\nx,q,[c]\nx,Total,40\ny,p,[c]\ny,q,30\ny,Total,50\nTotal,p,[c]\nTotal,q,[c]\nTotal,Total,90\n";
    // Safe as released: four cells in a rectangle.
    let safe = "a,b,persons\nx,p,[c]\nx,q,[c]\nx,Total,40\ny,p,[c]\ny,q,[c]\ny,Total,50\nTotal,p,40\nTotal,q,50\nTotal,Total,90\n";
    let dir = release(&tmp.path().join("safe"), 10, &[table("t.csv", &["a", "b"], safe)]);
    insta::assert_snapshot!("rectangle_is_safe", check(&dir));
    let dir = release(&tmp.path().join("r"), 10, &[table("t.csv", &["a", "b"], text)]);
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn the_checker_takes_its_threshold_from_its_flags_not_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = release(
        &tmp.path().join("r"),
        1,
        &[table("t.csv", &["sex"], "sex,persons\nF,3\nM,25\nTotal,28\n")],
    );
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn unknown_and_unlisted_files_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = "surname,nino\nSmith,QQ000000A\n";
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[
            table("t.csv", &["sex"], "sex,persons\nF,20\nM,25\nTotal,45\n"),
            extra("extract.csv", raw),
            extra("report.html", raw),
        ],
    );
    fs::write(dir.join("raw.csv"), raw).unwrap();
    fs::create_dir(dir.join("more")).unwrap();
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn file_names_stay_inside_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("x"), "secret\n").unwrap();
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[table("t.csv", &["sex"], "sex,persons\nF,20\nM,25\nTotal,45\n")],
    );
    let path = dir.join("release-manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    for name in ["../x", "/etc/hostname", "sub/t.csv"] {
        m["files"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": name, "kind": "extra", "sha256": "00"}));
    }
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("x"), dir.join("impact.csv")).unwrap();
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn every_total_is_checked_even_when_nothing_is_suppressed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[table("t.csv", &["sex"], "sex,persons\nF,20\nM,25\nTotal,46\n")],
    );
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn rounded_totals_are_checked_within_their_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    // Rounded to 5: 10 + 15 + 15 = 40 is within rounding of 45, 10 + 15 + 15 vs 60 is not.
    let ok = "s,persons\nA,10\nB,15\nC,15\nTotal,45\n";
    let bad = "s,persons\nA,10\nB,15\nC,15\nTotal,60\n";
    let opts = CheckOptions {
        round_to: Some(5),
        ..CheckOptions::default()
    };
    for (name, text) in [("ok", ok), ("bad", bad)] {
        let dir = release(&tmp.path().join(name), 10, &[table("t.csv", &["s"], text)]);
        let path = dir.join("release-manifest.json");
        let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        m["rules"]["round_to"] = 5.into();
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        insta::assert_snapshot!(format!("rounded_{name}"), check_with(&dir, &opts));
    }
}

#[test]
fn unguarded_formula_labels_fail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[table(
            "t.csv",
            &["offence"],
            "offence,persons\n=HYPERLINK(\"x\"),20\n'@guarded,25\n-5,30\nTotal,75\n",
        )],
    );
    insta::assert_snapshot!(check(&dir));
}

#[test]
fn a_signed_manifest_is_verified_and_a_tampered_one_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let key_path = tmp.path().join("project.key");
    linklab_tokens::keygen(&key_path).unwrap();
    let key = linklab_tokens::SecretKey::from_file(&key_path).unwrap();
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[table("t.csv", &["sex"], "sex,persons\nF,20\nM,25\nTotal,45\n")],
    );
    let path = dir.join("release-manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    m["signed_with"] = key.fingerprint().into();
    let sig = key.sign(
        linklab_store::RELEASE_MANIFEST_SIGNATURE_DOMAIN,
        &linklab_store::signing_bytes(&m, "signature"),
    );
    m["signature"] = sig.into();
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let opts = CheckOptions {
        key: Some(key_path.clone()),
        ..CheckOptions::default()
    };
    let fingerprint = key.fingerprint();
    let redact = |s: String| s.replace(&fingerprint, "[FP]");
    insta::assert_snapshot!("signed", redact(check_with(&dir, &opts)));
    // Tampered: a table's checksum replaced (as after editing the table), signature kept.
    m["files"][0]["sha256"] = "0".repeat(64).into();
    fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    insta::assert_snapshot!("tampered", redact(check_with(&dir, &opts)));
    // Without the key: unverified, reported as a note.
    insta::assert_snapshot!("unverified", redact(check(&dir)));
}

#[test]
fn two_releases_of_the_same_source_are_differenced() {
    let tmp = tempfile::tempdir().unwrap();
    // Each is safe alone: F + M = 40 in the first, F + U = 33 in the second.
    let a = release(
        &tmp.path().join("a"),
        10,
        &[table(
            "t.csv",
            &["sex"],
            "sex,persons\nF,[c]\nM,[c]\nU,30\nTotal,70\n",
        )],
    );
    let b = release(
        &tmp.path().join("b"),
        10,
        &[table(
            "s.csv",
            &["sex"],
            "sex,persons\nF,[c]\nM,37\nU,[c]\nTotal,70\n",
        )],
    );
    insta::assert_snapshot!("alone", format!("{}{}", check(&a), check(&b)));
    let opts = CheckOptions {
        with: Some(b.clone()),
        ..CheckOptions::default()
    };
    insta::assert_snapshot!("jointly", check_with(&a, &opts));
}

#[test]
fn a_mean_in_balance_csv_times_a_group_size_pins_a_suppressed_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let tab = "group,sex,persons\ncomparison,F,[c]\ncomparison,M,[c]\ncomparison,Total,60\ntreated,F,[c]\ntreated,M,[c]\ntreated,Total,30\nTotal,F,12\nTotal,M,78\nTotal,Total,90\n";
    let impact = "outcome,measure,treated_persons,comparison_persons\nreoffended,rate,30,60\n";
    let balance = "covariate,level,smd_before,smd_after,treated_mean,comparison_mean,treated_mean_before,untreated_mean_before\nsex,F,0.1,0.1,0.1000,0.15,[c],[c]\n";
    let safe = release(
        &tmp.path().join("safe"),
        10,
        &[
            table("t.csv", &["group", "sex"], tab),
            extra("impact.csv", impact),
        ],
    );
    insta::assert_snapshot!("without_balance", check(&safe));
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[
            table("t.csv", &["group", "sex"], tab),
            extra("impact.csv", impact),
            extra("balance.csv", balance),
        ],
    );
    // The tables' source must be the evaluation frame for the same cells to meet.
    let path = dir.join("release-manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    m["files"][0]["joint_group"] = "evaluation/frame".into();
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    insta::assert_snapshot!("with_balance", check(&dir));
}

/// Issue 12, attack 1: the cohort total (a table margin of the evaluation frame) minus the
/// untreated count printed in `report.html` gives all treated; minus the matched treated of
/// `impact.csv`, the persons the caliper dropped. The checker knows the matched treated are a
/// part of all treated and reads the report's prose counts, so it finds the one dropped person;
/// and a small count printed in a sentence fails on its own.
#[test]
fn a_person_dropped_by_the_caliper_is_found_from_a_margin_the_report_and_impact() {
    let tmp = tempfile::tempdir().unwrap();
    let tab = "sex,persons\nF,71\nM,80\nTotal,151\n";
    let impact = "outcome,measure,treated_persons,comparison_persons\nreoffended,rate,50,50\n";
    let html = |sentence: &str| {
        format!(
            "<!DOCTYPE html><html><body><p>People who took part were compared with people who did not ({sentence}).</p></body></html>"
        )
    };
    let groups = "<!DOCTYPE html><html><body><p>People who took part (51 in the cohort) were compared with people who did not (100).</p></body></html>";
    let folder = |name: &str, report: &str| {
        let dir = release(
            &tmp.path().join(name),
            10,
            &[
                table("t.csv", &["sex"], tab),
                extra("impact.csv", impact),
                extra("report.html", report),
            ],
        );
        let path = dir.join("release-manifest.json");
        let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        m["files"][0]["joint_group"] = "evaluation/frame".into();
        fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        dir
    };
    // Without the prose counts, nothing is learnt.
    let safe = folder(
        "safe",
        &html("the sizes of the groups before matching are not shown"),
    );
    insta::assert_snapshot!(check(&safe), @r"
    release passes the check
    note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
    note: report.html: checked as an HTML document; its figures are audited through the CSV files
    ");
    // With the untreated count: 151 − 100 − 50 = 1 dropped person.
    let leaky = folder("groups", groups);
    insta::assert_snapshot!(check(&leaky), @r"
    (the evaluation's arms): group=Unknown, treated=true: unpublished count can be worked out from the published figures: it lies in [1, 1]
    note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
    note: report.html: checked as an HTML document; its figures are audited through the CSV files
    ");
    // A small count printed in a sentence.
    let told = folder(
        "told",
        "<!DOCTYPE html><html><body><p>3 people who took part had no close enough match and were left out.</p></body></html>",
    );
    insta::assert_snapshot!(check(&told), @r"
    report.html: prose: treated persons left out by the caliper: published count is below the threshold 10
    note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
    note: report.html: checked as an HTML document; its figures are audited through the CSV files
    ");
}

/// A table by `treated` and `group` of the evaluation frame: the treated in the comparison group
/// are none by construction, so the treated row's suppressed cells are the dropped person alone.
#[test]
fn cells_empty_by_construction_are_known_to_the_checker() {
    let tmp = tempfile::tempdir().unwrap();
    let tab = "treated,group,persons\n\
               false,comparison,50\nfalse,treated,[c]\nfalse,Unknown,[c]\nfalse,Total,80\n\
               true,comparison,[c]\ntrue,treated,50\ntrue,Unknown,[c]\ntrue,Total,51\n\
               Total,comparison,50\nTotal,treated,50\nTotal,Unknown,31\nTotal,Total,131\n";
    let dir = release(
        &tmp.path().join("r"),
        10,
        &[table("t.csv", &["treated", "group"], tab)],
    );
    let path = dir.join("release-manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    m["files"][0]["joint_group"] = "evaluation/frame".into();
    fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    let report = check(&dir);
    assert!(
        report.contains("t.csv: treated=true, group=Unknown: suppressed count can be worked out from the published figures: it lies in [1, 1]")
            && !report.contains("[0, 0]"),
        "{report}"
    );
}

/// An outcome that leaves persons out (`data_cutoff`, `unknown = "exclude"`) publishes the size
/// of its own sample, smaller than the matched group a table of the frame publishes: it is a
/// part of the group, not a second value of the group's size.
#[test]
fn an_outcome_sample_smaller_than_the_matched_group_is_not_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let tab = "group,persons\ncomparison,60\ntreated,60\nTotal,120\n";
    let impact = "outcome,measure,treated_persons,comparison_persons\n\
reoffended,rate,60,60\nemployed,rate,45,44\nemployed_at_365_days,rate,[c],[c]\n";
    let dir = frame_release(
        &tmp.path().join("r"),
        "evaluation/frame",
        &[table("t.csv", &["group"], tab), extra("impact.csv", impact)],
    );
    insta::assert_snapshot!(check(&dir), @r"
    release passes the check
    note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
    ");
}

/// When every outcome leaves someone out (a full follow-up year, a few deaths), no row of
/// `impact.csv` publishes the matched group's size: the rows that leave a few out are `[c]`,
/// the others publish their own, smaller sample. The group is larger than all of them, as the
/// first step of `survival.csv` (persons at risk) and a table's `Total` show, so every count is
/// an outcome's own sample and nothing contradicts (the false alarm of a 100,000-person world,
/// where this folder failed with "the published figures do not add up").
#[test]
fn an_impact_where_every_outcome_leaves_someone_out_is_not_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let tab = "group,employed,persons\n\
               comparison,0,30\ncomparison,1,34\ncomparison,Total,64\n\
               treated,0,40\ntreated,1,24\ntreated,Total,64\n\
               Total,0,70\nTotal,1,58\nTotal,Total,128\n";
    let impact = "outcome,measure,treated_persons,comparison_persons\n\
                  reoffended,rate,45,45\nemployed,rate,45,45\n\
                  employed_at_30_days,rate,[c],[c]\ndays_to_reoffence,log_rank,[c],[c]\n";
    let survival = "outcome,group,day,at_risk,events,survival\n\
                    days_to_reoffence,treated,1,61,12,0.8033\n\
                    days_to_reoffence,treated,9,49,10,0.6393\n\
                    days_to_reoffence,comparison,2,61,10,0.8361\n\
                    days_to_reoffence,comparison,7,51,11,0.6557\n";
    let folder =
        |name: &str, files: &[File]| frame_release(&tmp.path().join(name), "evaluation/frame", files);
    let folders = [
        // The persons at risk on the first day alone show the group is larger than 45.
        folder(
            "survival",
            &[extra("impact.csv", impact), extra("survival.csv", survival)],
        ),
        // With a table of the frame that publishes the group's size.
        folder(
            "table",
            &[
                table("t.csv", &["group", "employed"], tab),
                extra("impact.csv", impact),
                extra("survival.csv", survival),
            ],
        ),
    ];
    for dir in folders {
        insta::allow_duplicates! {
            insta::assert_snapshot!(check(&dir), @r"
            release passes the check
            note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
            ");
        }
    }
}

/// With several programmes, each release's tables of the evaluation name their frame
/// `<programme>/frame`: they count the same persons as the `impact.csv` beside them (the
/// caliper-drop attack goes through them as through `evaluation/frame`), and two programmes
/// audited jointly (`--with`, as the dashboard advises for a shared cohort) are two evaluations,
/// not one.
#[test]
fn a_programme_frame_counts_the_same_persons_as_its_evaluation_files() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = |name: &str, frame: &str, impact: &str| {
        frame_release(
            &tmp.path().join(name),
            frame,
            &[
                table(
                    "t.csv",
                    &["treated"],
                    "treated,persons\nfalse,100\ntrue,51\nTotal,151\n",
                ),
                extra("impact.csv", impact),
            ],
        )
    };
    // All treated (a table of the frame) − the matched treated (impact.csv): 51 − 50 = 1
    // dropped person, whatever the frame's name.
    let impact = "outcome,measure,treated_persons,comparison_persons\nreoffended,rate,50,50\n";
    for frame in ["evaluation/frame", "bootcamp/frame"] {
        let dir = folder(frame.split('/').next().unwrap(), frame, impact);
        insta::allow_duplicates! {
            insta::assert_snapshot!(check(&dir), @r"
            (the evaluation's arms): group=Unknown, treated=true: unpublished count can be worked out from the published figures: it lies in [1, 1]
            note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
            ");
        }
    }
    // Two programmes over one cohort, each safe alone (51 − 40 = 11 dropped, and 10): audited
    // jointly, their matched groups are not one group published twice.
    let impact =
        |n: u32| format!("outcome,measure,treated_persons,comparison_persons\nreoffended,rate,{n},{n}\n");
    let a = folder("a", "bootcamp/frame", &impact(40));
    let b = folder("b", "mentoring/frame", &impact(41));
    let opts = CheckOptions {
        with: Some(b.clone()),
        ..CheckOptions::default()
    };
    insta::assert_snapshot!(check_with(&a, &opts), @r"
    release passes the check
    note: release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
    note: [tmp]/b/release-manifest.json: the manifest's signature is unverified (give the project key with --key to verify it)
    ");
}
