//! The command line's messages and exit codes, as a scheduler or a user sees them.

mod support;

use std::fs;
use std::path::Path;

use support::{linklab, text};

fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("the process exited")
}

/// Replaces the scratch folder in messages so snapshots are stable.
fn redact(message: &str, dir: &Path) -> String {
    message.replace(&dir.display().to_string(), "[DIR]")
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = linklab(dir.path(), &["--help"]);
    assert_eq!(code(&out), 0);
    insta::assert_snapshot!(text(&out).0);
}

#[test]
fn wrong_command_line_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = linklab(dir.path(), &["pseudonymise"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).1.contains("PIPELINE"));
}

#[test]
fn synth_noise_is_standard_or_heavy() {
    let dir = tempfile::tempdir().unwrap();
    let synth = |noise: &str| {
        linklab(
            dir.path(),
            &["synth", "--people", "60", "--out", noise, "--noise", noise],
        )
    };
    for noise in ["standard", "heavy"] {
        let out = synth(noise);
        assert_eq!(code(&out), 0, "{:?}", text(&out));
        let report = fs::read_to_string(dir.path().join(noise).join("truth/noise.json")).unwrap();
        assert_eq!(
            report.contains("\"level\": \"heavy\""),
            noise == "heavy",
            "{noise}"
        );
    }
    let out = synth("extreme");
    assert_eq!(code(&out), 1);
    assert!(text(&out).1.contains("standard"), "the error lists the levels");
}

#[test]
fn keygen_writes_a_private_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = linklab(dir.path(), &["keygen", "--out", "k.key"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let key = dir.path().join("k.key");
    let content = fs::read_to_string(&key).unwrap();
    assert_eq!(content.len(), 65);
    assert!(content.ends_with('\n') && content.trim_end().chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (stdout, _) = text(&out);
    assert!(
        !stdout.contains(content.trim_end()),
        "the key itself is never printed"
    );

    let again = linklab(dir.path(), &["keygen", "--out", "k.key", "--log-format", "text"]);
    assert_eq!(code(&again), 1);
    assert_eq!(
        fs::read_to_string(&key).unwrap(),
        content,
        "the existing key is untouched"
    );
    insta::assert_snapshot!(redact(&text(&again).1, dir.path()));
}

/// A small valid pipeline: one extract, keys beside the pipeline file.
const MINIMAL: &str = include_str!("fixtures/minimal.toml");

#[test]
fn a_wrong_pipeline_file_names_file_key_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let bad = MINIMAL.replace("[link]", "[link]\nmemory = 5");
    fs::write(dir.path().join("p.toml"), bad).unwrap();
    let out = linklab(dir.path(), &["plan", "p.toml", "--log-format", "text"]);
    assert_eq!(code(&out), 1);
    insta::assert_snapshot!(redact(&text(&out).1, dir.path()));
}

#[test]
fn plan_prints_the_stage_graph_as_json() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), MINIMAL).unwrap();
    let out = linklab(dir.path(), &["plan", "p.toml", "--format", "json"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let plan: serde_json::Value = serde_json::from_str(&redact(&text(&out).0, dir.path())).unwrap();
    insta::assert_json_snapshot!(plan);
}

#[test]
fn a_held_lock_stops_a_second_run_with_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("p.toml"), MINIMAL).unwrap();
    fs::create_dir_all(dir.path().join("work")).unwrap();
    // A lock of another host is held whatever its process id.
    fs::write(
        dir.path().join("work/linklab.lock"),
        format!("host another-node\npid {}\nid test\n", std::process::id()),
    )
    .unwrap();
    let out = linklab(dir.path(), &["link", "p.toml", "--log-format", "text"]);
    assert_eq!(code(&out), 4, "{:?}", text(&out));
    let message = redact(&text(&out).1, dir.path()).replace(&std::process::id().to_string(), "[PID]");
    insta::assert_snapshot!(message);
}

#[test]
fn check_release_of_a_missing_folder_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = linklab(dir.path(), &["check-release", "nowhere", "--log-format", "text"]);
    assert_eq!(code(&out), 1, "{:?}", text(&out));
}

/// The manifest of `participants`: its columns, key fingerprint and partitions.
fn participants_manifest(root: &Path) -> (Vec<String>, String, Option<u64>) {
    let path = root.join("work/pseudonymised/participants.manifest.json");
    let json: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    let columns = json["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    (
        columns,
        json["key_fingerprint"].as_str().unwrap().to_owned(),
        json["partitions"].as_u64(),
    )
}

/// After partitioned runs, a changed setting (a `keep` column removed) or a rotated linkage key
/// makes `run` pseudonymise the extract again as one run; unchanged partitions are used as they are.
#[test]
fn run_pseudonymises_again_when_partitions_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pipeline = support::demo_pipeline(root, 400);
    let pipeline = pipeline.to_str().unwrap();
    let ok = |args: &[&str]| {
        let out = linklab(root, args);
        assert_eq!(code(&out), 0, "{args:?}: {:?}", text(&out));
    };
    let pseudonymise_by_partitions = || {
        for part in ["1/2", "2/2"] {
            ok(&[
                "pseudonymise",
                pipeline,
                "--extract",
                "participants",
                "--partition",
                part,
            ]);
        }
    };
    ok(&["synth", "--people", "400", "--seed", "3", "--out", "extracts"]);
    ok(&["keygen", "--out", "linkage.key"]);
    ok(&["keygen", "--out", "project.key"]);
    pseudonymise_by_partitions();
    ok(&["run", pipeline]);
    let (columns, first_key, partitions) = participants_manifest(root);
    assert_eq!(partitions, Some(2), "current partitions are merged and used");
    assert!(columns.iter().any(|c| c == "programme_start"));

    // A keep column removed: the partitions are stale.
    let text_before = fs::read_to_string(root.join("demo.toml")).unwrap();
    let edited = text_before.replace(
        r#"keep = ["record_id", "programme_start"]"#,
        r#"keep = ["record_id"]"#,
    );
    assert_ne!(edited, text_before);
    fs::write(root.join("demo.toml"), edited).unwrap();
    ok(&["run", pipeline]);
    let (columns, _, partitions) = participants_manifest(root);
    assert_eq!(partitions, None, "stale partitions are replaced by one run");
    assert!(!columns.iter().any(|c| c == "programme_start"), "{columns:?}");

    // Partitions again, then the linkage key rotated.
    fs::write(root.join("demo.toml"), &text_before).unwrap();
    pseudonymise_by_partitions();
    fs::remove_file(root.join("linkage.key")).unwrap();
    ok(&["keygen", "--out", "linkage.key"]);
    ok(&["run", pipeline]);
    let (_, key, partitions) = participants_manifest(root);
    assert_eq!(partitions, None);
    assert_ne!(key, first_key, "the tokens are made with the new key");
}

#[test]
fn dashboard_refuses_a_folder_that_is_not_a_release_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("not-a-release")).unwrap();
    let out = linklab(dir.path(), &["dashboard", "not-a-release", "--out", "dash"]);
    assert_eq!(code(&out), 1, "{:?}", text(&out));
    assert!(
        text(&out)
            .1
            .contains("not-a-release is not a release folder: it has no release-manifest.json"),
        "{:?}",
        text(&out)
    );
    assert!(!dir.path().join("dash").exists(), "nothing is written");
}
