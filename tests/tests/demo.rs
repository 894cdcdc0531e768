//! The demo pipeline end to end on a small synthetic world: every stage runs, a rerun skips
//! them all, the release passes `check-release`, and no identifier leaks into logs or outputs.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use linklab_tests::{linklab, log_messages, text};

/// `pipelines/demo.toml`, pointed at `dir` and shrunk to `people`.
fn demo_pipeline(dir: &Path, people: u32) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/demo.toml");
    let text = fs::read_to_string(demo).unwrap();
    let text = text
        .replace("../target/linklab/demo/", "./")
        .replace("people = 20000", &format!("people = {people}"));
    assert!(
        text.contains(&format!("people = {people}")),
        "demo.toml still has a [synth] section"
    );
    let path = dir.join("demo.toml");
    fs::write(&path, text).unwrap();
    path
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

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
    let release = dir.path().join("release");
    for file in [
        "releases_by_offence_and_sex.csv",
        "release-manifest.json",
        "impact.csv",
        "report.html",
    ] {
        assert!(release.join(file).is_file(), "{file} is released");
    }

    let second = linklab(dir.path(), &["run", pipeline_arg]);
    let (stdout2, stderr2) = text(&second);
    assert!(
        second.status.success(),
        "second run failed:\n{stdout2}\n{stderr2}"
    );
    assert!(!stdout2.contains(": done"), "nothing reruns:\n{stdout2}");
    assert!(stdout2.contains("link: skipped"));

    let check = linklab(dir.path(), &["check-release", release.to_str().unwrap()]);
    assert!(check.status.success(), "check-release: {:?}", text(&check));

    // No identifier value in logs, messages or any file the stages wrote (the synthetic
    // extracts themselves excepted). Parquet is compressed, so the scan covers the text files:
    // manifests, reports, released CSVs and HTML.
    let secrets = identifier_values(&dir.path().join("extracts"));
    assert!(secrets.len() > 100);
    let mut haystacks = vec![stdout, stderr, stdout2, stderr2];
    haystacks.extend(log_messages(&haystacks[1].clone()));
    for file in files_under(&dir.path().join("work"))
        .into_iter()
        .chain(files_under(&release))
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
    let out = linklab(dir.path(), &["run", pipeline.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    let release = dir.path().join("release");
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
