//! The Slurm script of `linklab plan --format slurm`, run on a real single-node Slurm, gives the
//! same results as `linklab run`.
//!
//! Needs a Slurm that answers `sinfo` on this machine: `scripts/slurm-up.sh` (as root) starts a
//! single-node one from Debian's `slurm-wlm` and `munge`, and `.ci/run` calls it. Without one this
//! test fails, on purpose: it does not skip.

mod support;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::{demo_pipeline, files_under, linklab, text};

/// How many array tasks each pseudonymise stage is split into.
const PARTITIONS: &str = "2";
/// How long the whole pipeline may take on Slurm before the test gives up (a hang, not a
/// speed check: the work takes seconds).
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Fails the test unless a Slurm controller answers and has a usable node.
fn require_slurm() {
    let hint = "this test needs a running Slurm: start a single-node one with `sudo scripts/slurm-up.sh` \
                (stop it with scripts/slurm-down.sh)";
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%t"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run sinfo ({e}); {hint}"));
    let states = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && states
                .lines()
                .any(|s| matches!(s.trim(), "idle" | "mix" | "alloc" | "comp")),
        "no Slurm node is up (sinfo said {:?}, {:?}); {hint}",
        states.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Every job log the script's jobs wrote, for a failure message.
fn job_logs(work: &Path) -> String {
    let dir = work.join("slurm");
    let mut text = String::new();
    for file in files_under(&dir) {
        let body = fs::read_to_string(dir.join(&file)).unwrap_or_default();
        let _ = write!(text, "\n--- {} ---\n{body}", file.display());
    }
    text
}

/// `JobState` (and `Reason`) of a job, from `scontrol show job`.
fn job_state(id: &str) -> (String, String) {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", id])
        .output()
        .expect("scontrol runs");
    let line = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .unwrap_or("")
            .to_owned()
    };
    (field("JobState="), field("Reason="))
}

/// Waits until job `id` has finished and returns its final state.
fn wait_for(id: &str, work: &Path) -> String {
    let start = Instant::now();
    loop {
        let (state, reason) = job_state(id);
        match state.as_str() {
            "PENDING" if reason == "DependencyNeverSatisfied" => {
                return format!("{state} ({reason})");
            }
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED" => {}
            "" => panic!(
                "Slurm no longer knows job {id} (scontrol show job gave nothing)\njob logs:{}",
                job_logs(work)
            ),
            _ => return state,
        }
        if start.elapsed() > GIVE_UP_AFTER {
            let _ = Command::new("scancel").arg(id).status();
            panic!(
                "job {id} had not finished after {GIVE_UP_AFTER:?} (state {state}, reason {reason})\n\
                 squeue:\n{}\njob logs:{}",
                String::from_utf8_lossy(
                    &Command::new("squeue")
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default()
                ),
                job_logs(work)
            );
        }
        sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_slurm_script_gives_the_same_results_as_run() {
    require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let by_run = demo_pipeline(&dir.path().join("run"), 2000);
    let by_slurm = demo_pipeline(&dir.path().join("slurm"), 2000);

    // Both copies use the same keys, so tokens and person ids can be compared too. The extracts
    // are made separately: by `run` in one copy and by the script's first job in the other.
    for key in ["linkage.key", "project.key"] {
        let path = dir.path().join("run").join(key);
        let out = linklab(dir.path(), &["keygen", "--out", path.to_str().unwrap()]);
        assert!(out.status.success(), "keygen: {:?}", text(&out));
        fs::copy(&path, dir.path().join("slurm").join(key)).unwrap();
    }

    let run = linklab(dir.path(), &["run", by_run.to_str().unwrap()]);
    assert!(run.status.success(), "linklab run failed: {:?}", text(&run));

    let plan = linklab(
        dir.path(),
        &[
            "plan",
            by_slurm.to_str().unwrap(),
            "--format",
            "slurm",
            "--partitions",
            PARTITIONS,
        ],
    );
    let (script, stderr) = text(&plan);
    assert!(plan.status.success(), "plan --format slurm failed: {stderr}");
    let script_path = dir.path().join("slurm").join("submit.sh");
    fs::write(&script_path, &script).unwrap();

    let submit = Command::new("bash")
        .arg(&script_path)
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    let (stdout, stderr) = text(&submit);
    assert!(submit.status.success(), "submitting failed:\n{stdout}\n{stderr}");
    let last_job = stdout.lines().last().unwrap_or("").trim().to_owned();
    assert!(
        !last_job.is_empty() && last_job.chars().all(|c| c.is_ascii_digit()),
        "the script prints the last job's id, not {stdout:?}"
    );

    let slurm_work = dir.path().join("slurm").join("work");
    let state = wait_for(&last_job, &slurm_work);
    assert_eq!(
        state,
        "COMPLETED",
        "the release job {last_job} ended {state}\njob logs:{}",
        job_logs(&slurm_work)
    );
    let logs = job_logs(&slurm_work);
    for task in ["pseudonymise-releases", "link", "release"] {
        assert!(
            logs.contains(&format!("--- {task}-")),
            "{task} wrote a job log:{logs}"
        );
    }
    // Array task logs are named <stage>-<array job>_<task>.out.
    assert!(
        logs.contains(&format!("_{PARTITIONS}.out ---")),
        "the pseudonymise stages ran as job arrays:{logs}"
    );

    // The released files: the same names, and the tables byte for byte.
    let (run_release, slurm_release) = (
        dir.path().join("run").join("release"),
        dir.path().join("slurm").join("release"),
    );
    let released = files_under(&run_release);
    assert_eq!(
        released,
        files_under(&slurm_release),
        "the same files are released"
    );
    let tables: Vec<&PathBuf> = released
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "csv"))
        .collect();
    assert!(tables.len() >= 3, "the demo releases its tables: {released:?}");
    for file in tables {
        assert!(
            fs::read(run_release.join(file)).unwrap() == fs::read(slurm_release.join(file)).unwrap(),
            "{} differs between `linklab run` and Slurm",
            file.display()
        );
    }

    // The linked data: the same Parquet files, byte for byte (so the same rows).
    let (run_linked, slurm_linked) = (
        dir.path().join("run").join("work").join("linked"),
        slurm_work.join("linked"),
    );
    let linked: Vec<PathBuf> = files_under(&run_linked)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!linked.is_empty(), "run wrote linked Parquet");
    let slurm_parquet: Vec<PathBuf> = files_under(&slurm_linked)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(linked, slurm_parquet, "the same linked Parquet files");
    for file in &linked {
        assert!(
            fs::read(run_linked.join(file)).unwrap() == fs::read(slurm_linked.join(file)).unwrap(),
            "linked/{} differs between `linklab run` and Slurm",
            file.display()
        );
    }
}

#[test]
fn plan_fans_out_the_pseudonymise_stages_only() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = demo_pipeline(dir.path(), 100);
    let pipeline = pipeline.to_str().unwrap();

    let json = linklab(
        dir.path(),
        &["plan", pipeline, "--format", "json", "--partitions", "3"],
    );
    assert!(json.status.success(), "{:?}", text(&json));
    let stages: serde_json::Value = serde_json::from_str(&text(&json).0).unwrap();
    let fan_out: Vec<(String, u64)> = stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["partitions"].as_u64().unwrap(),
            )
        })
        .collect();
    insta::assert_debug_snapshot!(fan_out);

    let script = linklab(dir.path(), &["plan", pipeline, "--format", "slurm"]);
    let (script, stderr) = text(&script);
    assert!(!script.is_empty(), "{stderr}");
    let bin = fs::canonicalize(support::linklab_bin()).unwrap();
    assert!(
        script.contains(&format!("\n        {} \"$@\"", bin.display())),
        "the jobs run this very binary"
    );
    assert_eq!(
        script.matches("--array=1-2 ").count(),
        8,
        "two partitions by default, one array per extract"
    );
    assert!(
        script.contains("--partition \"${SLURM_ARRAY_TASK_ID}/2\""),
        "each task takes its slice"
    );
    let out_of_range = linklab(
        dir.path(),
        &["plan", pipeline, "--format", "slurm", "--partitions", "0"],
    );
    assert_eq!(out_of_range.status.code(), Some(1), "{:?}", text(&out_of_range));
}
