//! Helpers for the end-to-end tests in `tests/tests/`: they run the real `linklab` binary.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The path of the `linklab` binary of this build, built on first use if `cargo test` did not
/// build it already (as when only this package is tested).
pub fn linklab_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        // target/<profile>/deps/<test> -> target/<profile>/linklab
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("tests run from target/<profile>/deps");
        let bin = profile_dir.join(format!("linklab{}", std::env::consts::EXE_SUFFIX));
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "-p", "linklab", "--bin", "linklab"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building the linklab binary failed");
        }
        bin
    })
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
