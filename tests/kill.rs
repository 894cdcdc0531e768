//! Kill safety: `kill -9` of any stage at a random moment, then `linklab run`, gives the same
//! outputs as a run that was never interrupted, and a lock left by the killed process is cleared
//! with a message.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::Instant;

use support::{
    STAGES, demo_pipeline, files_under, linklab, linklab_bin, log_messages, normalised_outputs,
    single_programme, stage_command, text,
};

/// People in the synthetic world: enough that every stage runs for a while.
const PEOPLE: u32 = 2000;
/// Kill points per stage, as fractions of the stage's uninterrupted run time.
const POINTS: usize = 5;

/// Copies `from` into `to`, file by file (permissions included, so key files stay 0600).
fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(&file);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(from.join(&file), target).unwrap();
    }
}

/// Removes the outputs and state of stage `index` and of every later stage.
fn forget_from(root: &Path, index: usize) {
    let work = root.join("work");
    let _ = fs::remove_dir_all(root.join("release"));
    let mut gone: Vec<PathBuf> = vec![work.join("release-audit")];
    if index <= 2 {
        gone.push(work.join("evaluation"));
    }
    if index <= 1 {
        gone.push(work.join("linked"));
    }
    if index == 0 {
        gone.push(work.join("pseudonymised").join("releases"));
        gone.push(work.join("pseudonymised").join("releases.manifest.json"));
    }
    for path in gone {
        let _ = fs::remove_dir_all(&path);
        let _ = fs::remove_file(&path);
    }
    for (name, _) in &STAGES[index..] {
        let _ = fs::remove_file(work.join("state").join(format!("{name}.json")));
    }
}

/// A small deterministic generator for the kill moments (no clock, no OS randomness).
fn fractions(seed: u64) -> impl Iterator<Item = f64> {
    let mut x = seed;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1000) as f64 / 1000.0
    })
}

fn run_stage(root: &Path, pipeline: &Path, args: &[&str]) -> std::process::Child {
    Command::new(linklab_bin())
        .args(stage_command(pipeline, args))
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_stage_killed_at_any_moment_reruns_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let pipeline = demo_pipeline(&reference, PEOPLE);
    // One programme: each rerun after a kill releases it again, and the disclosure audit of
    // four programmes' releases would take most of the test's time without killing anything
    // new (each programme's release is written whole by the same code).
    single_programme(&pipeline);
    let first = linklab(&reference, &["run", pipeline.to_str().unwrap()]);
    assert!(
        first.status.success(),
        "the reference run failed: {:?}",
        text(&first)
    );
    let expected = normalised_outputs(&reference);
    assert!(expected.len() > 10, "the reference run wrote its outputs");

    // How long each stage takes on its own, so the kill moments fall inside it.
    let mut durations = Vec::new();
    for (index, (_, args)) in STAGES.iter().enumerate() {
        let scratch = dir.path().join(format!("timing-{index}"));
        copy_tree(&reference, &scratch);
        forget_from(&scratch, index);
        let start = Instant::now();
        let status = run_stage(&scratch, &scratch.join("demo.toml"), args)
            .wait()
            .unwrap();
        assert!(status.success(), "stage {index} runs on its own");
        durations.push(start.elapsed());
        fs::remove_dir_all(&scratch).unwrap();
    }

    let mut moments = fractions(0x9E37_79B9_7F4A_7C15);
    let mut stale_locks_seen = 0;
    for (index, (stage, args)) in STAGES.iter().enumerate() {
        for point in 0..POINTS {
            let fraction = moments.next().unwrap();
            let root = dir.path().join(format!("{stage}-{point}"));
            copy_tree(&reference, &root);
            forget_from(&root, index);
            let pipeline = root.join("demo.toml");

            let mut child = run_stage(&root, &pipeline, args);
            sleep(durations[index].mul_f64(fraction));
            let _ = child.kill(); // SIGKILL; the stage may already have finished
            child.wait().unwrap();
            let lock_left = root.join("work").join("linklab.lock").exists();

            let rerun = linklab(&root, &["run", pipeline.to_str().unwrap()]);
            let (stdout, stderr) = text(&rerun);
            let at = format!("{stage} killed after {:.0}% of its run", fraction * 100.0);
            assert!(
                rerun.status.success(),
                "{at}: the rerun failed:\n{stdout}\n{stderr}"
            );
            if lock_left {
                stale_locks_seen += 1;
                assert!(
                    log_messages(&stderr).iter().any(|m| m.contains("stale lock")),
                    "{at}: the killed run's lock is cleared with a message:\n{stderr}"
                );
            }
            let got = normalised_outputs(&root);
            let names = |o: &[(PathBuf, Vec<u8>)]| o.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
            assert_eq!(names(&got), names(&expected), "{at}: the same files");
            for ((path, bytes), (_, want)) in got.iter().zip(&expected) {
                assert!(
                    bytes == want,
                    "{at}: {} differs from the uninterrupted run",
                    path.display()
                );
            }
            fs::remove_dir_all(&root).unwrap();
        }
    }
    assert!(
        stale_locks_seen > 0,
        "at least one kill left a lock behind to be cleared"
    );
}
