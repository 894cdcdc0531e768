//! The demo pipeline end to end on a small synthetic world: every stage runs, a rerun skips
//! them all, the release passes `check-release`, and no identifier leaks into logs or outputs.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use support::{PROGRAMMES, demo_pipeline, files_under, linklab, log_messages, single_programme, text};

/// Surnames and NI numbers of the synthetic extract: none may appear anywhere downstream.
fn identifier_values(extracts: &Path) -> BTreeSet<String> {
    let csv = fs::read_to_string(extracts.join("releases.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (surname, nino) = (col("last_name"), col("ni_number"));
    lines
        .filter(|l| !l.contains('"'))
        .flat_map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            [fields[surname].to_owned(), fields[nino].to_owned()]
        })
        .filter(|v| v.len() >= 7)
        .collect()
}

/// The linkage quality targets of the link stage, measured against `linklab synth`'s truth on
/// its default noise: pairwise precision at least 99.5% and recall at least 97%, for the spine
/// clustering and for the links of every other extract pooled (a small extract on its own
/// varies by a point either way at this size; the benchmark reports each at 100,000 people).
fn assert_quality_targets(report: &Path) {
    let report: serde_json::Value = serde_json::from_str(&fs::read_to_string(report).unwrap()).unwrap();
    let quality = &report["quality"];
    let pairs = |q: &serde_json::Value, field: &str| {
        q["pairwise"]
            .get(field)
            .or(q.get(field))
            .and_then(serde_json::Value::as_u64)
            .unwrap()
    };
    // `slack`: how many binomial standard errors of the recall the check allows below the
    // target, for a measure with few true pairs at this size.
    let check_with = |what: &str, tp: u64, predicted: u64, truth: u64, slack: f64| {
        let (precision, recall) = (tp as f64 / predicted as f64, tp as f64 / truth as f64);
        let floor = 0.97 - slack * (0.97 * 0.03 / truth as f64).sqrt();
        assert!(
            precision >= 0.995 && recall >= floor,
            "{what}: precision {precision:.4}, recall {recall:.4} (floor {floor:.4})"
        );
    };
    let check = |what: &str, tp: u64, predicted: u64, truth: u64| check_with(what, tp, predicted, truth, 0.0);
    // The spine has only about a hundred true pairs at this size (people released twice), so
    // its recall, near 97% by design, varies by about 1.7 points from seed to seed: it is held to
    // the target less two standard errors (the benchmark measures it at 100,000 people).
    let spine = &quality["spine_clustering"];
    check_with(
        "spine clustering",
        pairs(spine, "true_positive_pairs"),
        pairs(spine, "predicted_pairs"),
        pairs(spine, "true_pairs"),
        2.0,
    );
    let extracts = quality["extracts"].as_array().unwrap();
    assert_eq!(extracts.len(), 7, "every linked extract is measured");
    let sum = |field: &str| extracts.iter().map(|e| pairs(e, field)).sum::<u64>();
    check(
        "links",
        sum("true_positive_pairs"),
        sum("predicted_pairs"),
        sum("true_pairs"),
    );
}

#[test]
fn demo_runs_end_to_end_then_skips_everything_and_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = demo_pipeline(dir.path(), 3000);
    let pipeline_arg = pipeline.to_str().unwrap();

    let first = linklab(dir.path(), &["run", pipeline_arg]);
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "first run failed:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("DEMO ONLY"),
        "auto-created keys are announced loudly"
    );
    for stage in [
        "pseudonymise-releases",
        "pseudonymise-employment",
        "link",
        "evaluate",
        "release",
    ] {
        assert!(
            stdout.contains(&format!("{stage}: done")),
            "{stage} ran:\n{stdout}"
        );
    }
    // Four programmes, each released in its own folder, and the dashboard over them.
    let release = dir.path().join("release");
    for programme in PROGRAMMES {
        for file in [
            "releases_by_offence_and_sex.csv",
            "release-manifest.json",
            "impact.csv",
            "report.html",
        ] {
            let path = release.join(programme).join(file);
            assert!(path.is_file(), "{programme}/{file} is released");
        }
        let manifest = fs::read_to_string(release.join(programme).join("release-manifest.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest["programme"]["extract"], programme);
        assert!(manifest["programme"]["name"].is_string() && manifest["programme"]["cohort"].is_string());
    }
    let index = release.join("index.html");
    assert!(index.is_file(), "the release writes the dashboard");
    assert!(
        stdout.contains(&format!("dashboard of the 4 programmes: {}", index.display())),
        "the closing summary names the dashboard:\n{stdout}"
    );
    assert!(
        stderr.contains("share one cohort"),
        "the shared cohort is warned about"
    );

    assert_quality_targets(&dir.path().join("work/linked/linkage-report.json"));

    let second = linklab(dir.path(), &["run", pipeline_arg]);
    let (stdout2, stderr2) = text(&second);
    assert!(
        second.status.success(),
        "second run failed:\n{stdout2}\n{stderr2}"
    );
    assert!(!stdout2.contains(": done"), "nothing reruns:\n{stdout2}");
    assert!(stdout2.contains("link: skipped"));

    for programme in PROGRAMMES {
        let folder = release.join(programme);
        let check = linklab(dir.path(), &["check-release", folder.to_str().unwrap()]);
        assert!(
            check.status.success(),
            "check-release {programme}: {:?}",
            text(&check)
        );
    }

    // No identifier value in logs, messages or any file the stages wrote (the synthetic
    // extracts themselves excepted). Parquet is compressed, so the scan covers the text files:
    // manifests, reports, released CSVs and HTML.
    let secrets = identifier_values(&dir.path().join("extracts"));
    assert!(secrets.len() > 100);
    let mut haystacks = vec![stdout, stderr, stdout2, stderr2];
    haystacks.extend(log_messages(&haystacks[1].clone()));
    let work = dir.path().join("work");
    for file in files_under(&work)
        .into_iter()
        .map(|f| work.join(f))
        .chain(files_under(&release).into_iter().map(|f| release.join(f)))
    {
        if file
            .extension()
            .is_some_and(|e| e == "json" || e == "csv" || e == "html")
        {
            haystacks.push(fs::read_to_string(&file).unwrap());
        }
    }
    for secret in &secrets {
        for hay in &haystacks {
            assert!(!hay.contains(secret.as_str()), "an identifier value leaked");
        }
    }
}

#[test]
fn tampering_with_a_release_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = demo_pipeline(dir.path(), 1500);
    single_programme(&pipeline);
    let out = linklab(dir.path(), &["run", pipeline.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let release = dir.path().join("release");
    assert!(
        !release.join("index.html").exists(),
        "one programme has no dashboard"
    );
    let rel = release.to_str().unwrap();
    // The release stage signed its manifest with the project key: it verifies.
    let check = linklab(dir.path(), &["check-release", rel, "--key", "project.key"]);
    assert!(check.status.success(), "{:?}", text(&check));
    assert!(
        text(&check).0.contains("signature is verified"),
        "{:?}",
        text(&check)
    );
    // A manifest edited afterwards (its threshold lowered to 1, as if to let a 3 through)
    // no longer verifies, and its weaker rule alone fails the check.
    let manifest_path = release.join("release-manifest.json");
    let manifest = fs::read_to_string(&manifest_path).unwrap();
    let edited = manifest.replacen("\"threshold\": 10", "\"threshold\": 1", 1);
    assert_ne!(edited, manifest);
    fs::write(&manifest_path, edited).unwrap();
    let check = linklab(dir.path(), &["check-release", rel, "--key", "project.key"]);
    assert_eq!(check.status.code(), Some(3), "{:?}", text(&check));
    assert!(
        text(&check).0.contains("signature does not match"),
        "{:?}",
        text(&check)
    );
    fs::write(&manifest_path, manifest).unwrap();

    let table = release.join("releases_by_offence_and_sex.csv");
    let original = fs::read_to_string(&table).unwrap();
    // A published count of 3 lies below the threshold of 10: a checker must refuse it.
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let row = lines.get_mut(1).expect("the table has a data row");
    let cut = row.rfind(',').unwrap();
    row.replace_range(cut + 1.., "3");
    fs::write(&table, lines.join("\n") + "\n").unwrap();
    let check = linklab(dir.path(), &["check-release", release.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(3), "{:?}", text(&check));

    // An extra file that bypassed the gate makes the next release refuse to write.
    fs::write(&table, original).unwrap();
    fs::write(release.join("sneaked.csv"), "a,b\n1,2\n").unwrap();
    let again = linklab(dir.path(), &["release", pipeline.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{:?}", text(&again));
}

/// The evaluation ran with the threshold of 10; the release then runs with 30 (issue 12: a
/// figure that cannot be protected). It used to be refused; now the release goes ahead with
/// those figures written `[c]` wherever they are printed (the CSV files, and the report's
/// tables, headlines and charts), counts them in the audit trail, and passes `check-release`
/// with the release's threshold. The evaluation's own files are left as they are.
#[test]
fn figures_the_release_cannot_protect_are_written_c_and_the_release_goes_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = demo_pipeline(dir.path(), 1500);
    single_programme(&pipeline);
    let out = linklab(dir.path(), &["run", pipeline.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let config = fs::read_to_string(&pipeline).unwrap();
    fs::write(&pipeline, config.replacen("threshold = 10", "threshold = 30", 1)).unwrap();
    let out = linklab(dir.path(), &["release", pipeline.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let hidden = |path: &Path| fs::read_to_string(path).unwrap().matches("[c]").count();
    let (publish, release) = (
        dir.path().join("work/evaluation/publish"),
        dir.path().join("release"),
    );
    for file in ["impact.csv", "balance.csv", "survival.csv", "report.html"] {
        assert!(
            hidden(&release.join(file)) > hidden(&publish.join(file)),
            "{file} withholds nothing"
        );
    }
    let report = fs::read_to_string(release.join("report.html")).unwrap();
    assert!(report.contains("\">[c]</p>"), "no headline is withheld");
    let trail = fs::read_to_string(dir.path().join("work/release-audit/release-audit.json")).unwrap();
    let trail: serde_json::Value = serde_json::from_str(&trail).unwrap();
    assert!(
        trail["utility"]["figures_suppressed_or_coarsened"]
            .as_u64()
            .unwrap()
            > 0,
        "{trail}"
    );
    let rel = release.to_str().unwrap();
    let check = linklab(dir.path(), &["check-release", rel, "--threshold", "30"]);
    assert!(check.status.success(), "{:?}", text(&check));
}
