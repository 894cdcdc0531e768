//! Helpers for the end-to-end tests in `tests/`: they run the real `linklab` binary.
//!
//! Each test file is its own crate and uses only some of these helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `linklab` binary that Cargo built for this very test run (never a stale one).
pub fn linklab_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_linklab"))
}

/// The repository's top folder.
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs `linklab` with `args` in `dir`, with JSON logs (stderr is not a terminal here).
pub fn linklab(dir: &Path, args: &[&str]) -> Output {
    Command::new(linklab_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("LINKLAB_LOG")
        .output()
        .expect("the linklab binary runs")
}

/// The text of stdout and stderr, for messages and leak checks.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every message field of the JSON log lines on stderr.
pub fn log_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .collect()
}

/// `pipelines/demo.toml`, written into `dir` with its paths pointed at `dir` and its synthetic
/// world shrunk to `people`.
pub fn demo_pipeline(dir: &Path, people: u32) -> PathBuf {
    let demo = repo_root().join("pipelines/demo.toml");
    let text = fs::read_to_string(demo).expect("pipelines/demo.toml is readable");
    let text = text
        .replace("../target/linklab/demo/", "./")
        .replace("people = 20000", &format!("people = {people}"));
    assert!(
        text.contains(&format!("people = {people}")),
        "demo.toml still has a [synth] section"
    );
    fs::create_dir_all(dir).expect("the test folder can be made");
    let path = dir.join("demo.toml");
    fs::write(&path, text).expect("the pipeline can be written");
    path
}

/// The demo's programme extracts, in `treatment` order (the first is the original programme).
pub const PROGRAMMES: [&str; 4] = ["participants", "mentoring", "education", "bootcamp"];

/// Turns a demo pipeline written by [`demo_pipeline`] into one that evaluates only the first
/// programme, as the first version did: one release in `release_dir` itself.
pub fn single_programme(pipeline: &Path) {
    let text = fs::read_to_string(pipeline).expect("the pipeline is readable");
    let several = "treatment = [\"participants\", \"mentoring\", \"education\", \"bootcamp\"]";
    assert!(text.contains(several), "the demo evaluates four programmes");
    let text = text
        .replace(several, "treatment = \"participants\"")
        .split("\n\n")
        .filter(|block| !block.starts_with("[[programme]]") || block.contains("extract = \"participants\""))
        .collect::<Vec<_>>()
        .join("\n\n");
    fs::write(pipeline, text).expect("the pipeline can be written");
}

/// Every file below `dir`, as paths relative to it, sorted (none if `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("a folder of the test can be listed") {
            let path = entry.expect("a folder entry can be read").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("below the root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// The demo's stages as commands, in order: the name of the runner's state file each writes
/// (`work/state/<name>.json`) and the arguments after `linklab`, the pipeline file going second.
pub const STAGES: [(&str, &[&str]); 4] = [
    (
        "pseudonymise-releases",
        &["pseudonymise", "--extract", "releases"],
    ),
    ("link", &["link"]),
    ("evaluate", &["evaluate"]),
    ("release", &["release"]),
];

/// The full arguments of a stage of [`STAGES`] on `pipeline`.
pub fn stage_command<'a>(pipeline: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec![args[0], pipeline.to_str().expect("test paths are UTF-8")];
    full.extend(&args[1..]);
    full
}

/// Every output file below `root` (its work and release folders) with its bytes, as paths
/// relative to `root`; the runner's state files and the lock are left out.
pub fn outputs(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for folder in ["work", "release"] {
        let dir = root.join(folder);
        for file in files_under(&dir) {
            if !file.starts_with("state") && file.extension().is_none_or(|e| e != "lock") {
                let bytes = fs::read(dir.join(&file)).expect("an output can be read");
                out.push((Path::new(folder).join(&file), bytes));
            }
        }
    }
    out
}

/// [`outputs`] with the wall-clock `created_at` lines of JSON manifests left out (a rerun that
/// writes the same outputs again stamps a new time), and with them the release manifest's
/// `signature`, which covers that time, and the pseudonymise manifests' `reference_date` (the
/// day of the run), and `root` named `<root>` in JSON files, so that runs in different folders
/// and on different days compare equal.
pub fn normalised_outputs(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    outputs(root)
        .into_iter()
        .map(|(file, bytes)| {
            if file.extension().is_some_and(|e| e == "json") {
                let json = String::from_utf8(bytes).expect("outputs and test paths are UTF-8");
                let json = without_timestamps(
                    &json.replace(root.to_str().expect("outputs and test paths are UTF-8"), "<root>"),
                );
                (file, json.into_bytes())
            } else {
                (file, bytes)
            }
        })
        .collect()
}

fn without_timestamps(json: &str) -> String {
    json.lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("\"created_at\"")
                && !l.starts_with("\"signature\"")
                && !l.starts_with("\"reference_date\"")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
