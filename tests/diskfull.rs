//! A full disk and a read-only folder: every stage stops with an error that names the path and
//! the reason, and the previous good outputs stay exactly as they were.
//!
//! The test runs the demo pipeline inside a small tmpfs that it mounts itself (it needs root, as
//! `.ci/run` has), fills it, then remounts it read-only.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{STAGES, demo_pipeline, linklab, normalised_outputs, stage_command, text};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root for it (as .ci/run has): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(at.to_path_buf())
    }

    fn remount(&self, mode: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount {mode}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `root` until at most `leave` bytes are free.
fn fill(root: &Path, leave: u64) -> PathBuf {
    let filler = root.join("filler");
    let free = {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(root)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let take = usize::try_from(free.saturating_sub(leave)).unwrap();
    // tmpfs stores what is written, so zeros take real space.
    let _ = fs::write(&filler, vec![0_u8; take]);
    filler
}

fn rerun_stage(root: &Path, pipeline: &Path, state: &str, args: &[&str]) -> (bool, String) {
    let _ = fs::remove_file(root.join("work").join("state").join(format!("{state}.json")));
    let mut full = stage_command(pipeline, args);
    full.extend(["--log-format", "text"]);
    let out = linklab(root, &full);
    (out.status.success(), text(&out).1)
}

/// Reruns each stage in turn: each must fail with an error naming a path below `root` and the
/// file system's `reason`, and leave the outputs as `good`.
fn every_stage_fails_cleanly(root: &Path, pipeline: &Path, good: &[(PathBuf, Vec<u8>)], reason: &str) {
    for (state, args) in STAGES {
        let (ok, stderr) = rerun_stage(root, pipeline, state, args);
        assert!(!ok, "{state} cannot succeed ({reason}):\n{stderr}");
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default();
        assert!(
            error.contains(reason) && error.contains(root.to_str().unwrap()),
            "{state}: the error names the path and the reason:\n{stderr}"
        );
        assert!(
            normalised_outputs(root) == good,
            "{state}: the previous outputs are intact"
        );
    }
}

#[test]
fn a_full_disk_or_a_read_only_folder_stops_a_stage_and_keeps_the_previous_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let fs_root = dir.path().join("fs");
    let mount = Tmpfs::mount(&fs_root, "48m");
    let root = fs_root.join("demo");
    let pipeline = demo_pipeline(&root, 1000);
    let first = linklab(&root, &["run", pipeline.to_str().unwrap()]);
    assert!(first.status.success(), "the first run failed: {:?}", text(&first));
    let good = normalised_outputs(&root);
    assert!(good.len() > 10);

    // Disk full: each stage in turn, with a few kilobytes left, so it starts and then fails.
    let filler = fill(&fs_root, 16 * 1024);
    every_stage_fails_cleanly(&root, &pipeline, &good, "No space left on device");
    fs::remove_file(filler).unwrap();

    // Read-only: the same, with the reason the file system gives.
    mount.remount("ro");
    every_stage_fails_cleanly(&root, &pipeline, &good, "Read-only file system");

    // Writable again: the stages run and give the same outputs.
    mount.remount("rw");
    let again = linklab(&root, &["run", pipeline.to_str().unwrap()]);
    assert!(
        again.status.success(),
        "the run after the failures: {:?}",
        text(&again)
    );
    let names = |o: &[(PathBuf, Vec<u8>)]| o.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&normalised_outputs(&root)), names(&good));
}
