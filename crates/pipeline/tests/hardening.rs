//! Limits and hardening rules of the pipeline file: paths a job script could not carry, folders
//! and keys that are the same under another name, and sizes the stages cannot honour.

use std::fmt::Write as _;
use std::path::Path;

use linklab_pipeline::Pipeline;

const EXAMPLE: &str = include_str!("fixtures/contract-example.toml");

/// `EXAMPLE` with `from` (which must occur once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(EXAMPLE.matches(from).count(), 1, "`{from}` must occur once");
    EXAMPLE.replacen(from, to, 1)
}

/// Parses `text` as `dir/pipeline.toml`: `None` if it is valid, else the message with `dir`
/// written `[DIR]`.
fn parse_in(dir: &Path, text: &str) -> Option<String> {
    Pipeline::parse(text, &dir.join("pipeline.toml"))
        .err()
        .map(|e| e.to_string().replace(&dir.display().to_string(), "[DIR]"))
}

/// Each case: a name and the pipeline text; the error message is snapshotted (a case that
/// parses fails the test).
fn check_err(name: &str, text: &str) {
    let message = parse_in(Path::new("/proj"), text).unwrap_or_else(|| panic!("case {name} must fail"));
    insta::assert_snapshot!(name, message);
}

#[test]
fn control_characters_in_any_path_are_refused() {
    for (name, from, to) in [
        (
            "newline_in_work_dir",
            r#"work_dir = "../target/linklab/demo/work""#,
            r#"work_dir = "work\ntouch /tmp/pwned""#,
        ),
        (
            "carriage_return_in_release_dir",
            r#"release_dir = "../target/linklab/demo/release""#,
            r#"release_dir = "release\r""#,
        ),
        (
            "nul_in_key_file",
            r#"key_file = "../target/linklab/demo/linkage.key""#,
            r#"key_file = "linkage\u0000.key""#,
        ),
        (
            "tab_in_extract_path",
            r#"path = "../target/linklab/demo/extracts/releases.csv""#,
            r#"path = "releases\t.csv""#,
        ),
        (
            "newline_in_synth_out_dir",
            r#"out_dir = "../target/linklab/demo/extracts""#,
            r#"out_dir = "extracts\n""#,
        ),
    ] {
        check_err(name, &edit(from, to));
    }
}

#[test]
fn too_many_match_keys_are_refused_before_anything_runs() {
    let mut keys = String::new();
    for i in 0..=linklab_tokens::MAX_MATCH_KEYS {
        let _ = write!(keys, "[[match_key]]\nname = \"k{i}\"\nfields = [\"nino\"]\n\n");
    }
    let text = edit(
        "[[match_key]]                # tried in this order",
        &format!("{keys}[[match_key]]"),
    );
    check_err("too_many_match_keys", &text);
    // The limit itself is accepted.
    let mut keys = String::new();
    for i in 0..linklab_tokens::MAX_MATCH_KEYS - 3 {
        let _ = write!(keys, "[[match_key]]\nname = \"k{i}\"\nfields = [\"nino\"]\n\n");
    }
    let text = edit(
        "[[match_key]]                # tried in this order",
        &format!("{keys}[[match_key]]"),
    );
    assert_eq!(parse_in(Path::new("/proj"), &text), None);
}

#[test]
fn a_memory_limit_too_small_to_honour_is_refused() {
    check_err(
        "memory_limit_too_small",
        &edit(
            "spine = \"releases\"",
            "spine = \"releases\"\nmemory_limit = \"64MiB\"",
        ),
    );
    let text = edit(
        "spine = \"releases\"",
        "spine = \"releases\"\nmemory_limit = \"128MiB\"",
    );
    assert_eq!(parse_in(Path::new("/proj"), &text), None);
}

#[test]
fn a_threshold_below_five_needs_an_explicit_allowance() {
    check_err("threshold_below_five", &edit("threshold = 10", "threshold = 3"));
    let allowed = edit("threshold = 10", "threshold = 3\nallow_low_threshold = true");
    assert_eq!(parse_in(Path::new("/proj"), &allowed), None);
    assert_eq!(
        parse_in(Path::new("/proj"), &edit("threshold = 10", "threshold = 5")),
        None
    );
}

#[test]
fn a_table_may_not_take_the_name_of_an_evaluation_output() {
    for name in [
        "impact",
        "balance",
        "survival",
        "report",
        "summary",
        "release_manifest",
    ] {
        let text = edit(
            "name = \"releases_by_offence_and_sex\"",
            &format!("name = \"{name}\""),
        );
        let message = parse_in(Path::new("/proj"), &text).unwrap_or_else(|| panic!("{name} must be refused"));
        assert!(message.contains("table[0].name"), "{name}: {message}");
    }
    check_err(
        "table_named_impact",
        &edit("name = \"releases_by_offence_and_sex\"", "name = \"impact\""),
    );
}

#[test]
fn one_key_file_for_linkage_and_project_is_refused() {
    let text = edit(
        r#"project_key_file = "../target/linklab/demo/project.key""#,
        r#"project_key_file = "../target/linklab/demo/./linkage.key""#,
    );
    check_err("same_key_file", &text);
}

#[cfg(unix)]
#[test]
fn paths_are_compared_as_the_file_system_resolves_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("secure/work")).unwrap();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    std::fs::write(root.join("keys/linkage.key"), "x").unwrap();
    // `out` leads into work_dir: a release folder under it lies inside work_dir.
    std::os::unix::fs::symlink(root.join("secure/work"), root.join("out")).unwrap();
    // `alias.key` is the linkage key under another name.
    std::os::unix::fs::symlink(root.join("keys/linkage.key"), root.join("keys/alias.key")).unwrap();
    let settings = |work: &str, release: &str, key: &str, project: &str| {
        format!(
            "[pipeline]\nname = \"t\"\nwork_dir = \"{work}\"\nrelease_dir = \"{release}\"\nkey_file = \"{key}\"\nproject_key_file = \"{project}\"\n"
        )
    };
    let body = EXAMPLE.split_once("[synth]").unwrap().1;
    let text = |head: String| format!("{head}\n[synth]{body}");
    let fine = settings("secure/work", "release", "keys/linkage.key", "keys/project.key");
    assert_eq!(parse_in(root, &text(fine)), None);
    let through_link = settings(
        "secure/work",
        "out/release",
        "keys/linkage.key",
        "keys/project.key",
    );
    let message = parse_in(root, &text(through_link)).expect("a release folder inside work_dir by a symlink");
    insta::assert_snapshot!("release_dir_inside_work_dir_by_symlink", message);
    let same_key = settings("secure/work", "release", "keys/linkage.key", "keys/alias.key");
    let message = parse_in(root, &text(same_key)).expect("one key under two names");
    assert!(message.contains("pipeline.project_key_file"), "{message}");
}
