//! The `harness-pseudonymise` and `harness-link` cases: the side-by-side harness of
//! `../shared/bench/` (beside the repository; `LINKLAB_BENCH_HARNESS` names another folder),
//! run as its README says. Its `gen_data.py` writes two 1M-row extracts, `A.csv` and `B.csv`
//! (6 identifiers, 60% of B's rows people of A, 30% of those written messily), and its
//! `pseudo.toml` links them by a 3-key cascade. linklab runs as the command line
//! (`linklab pseudonymise pseudo.toml --extract a`, `linklab link pseudo.toml`) in a child
//! process; the peers are the harness's `peer_duckdb.py pseudo … --mode hmac` (HMAC-SHA256 from
//! two `sha256()` calls) and `duck_cascade.py`. Each side runs three times in alternation and the
//! best time of each is compared. linklab's time is the child process's wall clock; DuckDB's is
//! the time the peer script reports (its query alone, without starting Python and importing
//! DuckDB), so the ratio errs in DuckDB's favour.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::quality::python;
use crate::stages::key_file;

/// Runs of each side; the best is compared.
const ROUNDS: usize = 3;

/// Runs a peer script and prints its peak resident set (`ru_maxrss`, KiB) as the last line.
const MEASURE_PY: &str = r#"
import os, resource, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
print(f"PEAK_RSS_KIB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")
"#;

/// The harness's folder.
fn harness_dir() -> PathBuf {
    std::env::var_os("LINKLAB_BENCH_HARNESS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/bench"),
        PathBuf::from,
    )
}

fn rows(quick: bool) -> usize {
    if quick { 50_000 } else { 1_000_000 }
}

fn root(scratch: &Path) -> PathBuf {
    scratch.join("harness")
}

/// Generates the extracts with the harness's own script and lays out the folder its README
/// describes: `pseudo.toml`, `A.csv`, `B.csv` and `keys/`. With `link`, also pseudonymises both
/// extracts (the input of `harness-link`).
pub fn prepare(scratch: &Path, quick: bool, link: bool) {
    let root = root(scratch);
    let generated = root.join("generated");
    if !generated.is_file() {
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("keys")).expect("create the harness folder");
        let harness = harness_dir();
        let status = Command::new(python())
            .arg(harness.join("gen_data.py"))
            .args(["--n", &rows(quick).to_string(), "--out"])
            .arg(&root)
            .status()
            .expect("Python starts");
        assert!(
            status.success(),
            "gen_data.py failed: set LINKLAB_BENCH_HARNESS to the harness folder and \
             LINKLAB_BENCH_PYTHON to a Python with numpy, pyarrow and duckdb (scripts/bench.sh)"
        );
        fs::copy(harness.join("pseudo.toml"), root.join("pseudo.toml")).expect("copy pseudo.toml");
        key_file(&root.join("keys"), "linkage.key", 3);
        key_file(&root.join("keys"), "project.key", 4);
        fs::write(&generated, "").expect("mark the data generated");
    }
    let pseudonymised = root.join("pseudonymised");
    if link && !pseudonymised.is_file() {
        for extract in ["a", "b"] {
            linklab(&root, &["pseudonymise", "pseudo.toml", "--extract", extract]);
        }
        fs::write(&pseudonymised, "").expect("mark the extracts pseudonymised");
    }
}

/// Runs `linklab ARGS` (this binary's copy of the command line) in `dir` in a child process:
/// its wall-clock seconds and peak resident set in MiB.
fn linklab(dir: &Path, args: &[&str]) -> (f64, u64) {
    let start = Instant::now();
    let output = Command::new(std::env::current_exe().expect("own path"))
        .args(["measured", "linklab", "--quiet"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the benchmark re-runs itself");
    let secs = start.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "linklab {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("skipped"),
        "linklab {} skipped its stage as unchanged, so nothing was measured",
        args.join(" ")
    );
    let peak = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("PEAK_RSS_MIB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (secs, peak)
}

/// Runs a harness script with `args` in `dir`: its output and its peak resident set in MiB.
fn peer(dir: &Path, script: &str, args: &[&str]) -> Result<(String, u64), String> {
    let wrapper = dir.join("measure.py");
    fs::write(&wrapper, MEASURE_PY).map_err(|e| format!("cannot write measure.py: {e}"))?;
    let python = python();
    let output = Command::new(&python)
        .arg(&wrapper)
        .arg(harness_dir().join(script))
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("`{python}` did not start: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "{script} failed ({last}); run scripts/bench.sh, which installs DuckDB"
        ));
    }
    let peak = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KIB="))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Ok((stdout, peak / 1024))
}

/// The number after `name=` (or after `name `) in `text`.
fn field(text: &str, name: &str) -> Option<f64> {
    let at = text.find(name)? + name.len();
    text[at..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// The best of each side over the rounds, and the peaks.
#[derive(Debug, Clone, Copy)]
struct Best {
    ours: f64,
    theirs: f64,
    our_peak: u64,
    their_peak: u64,
}

impl Best {
    fn new() -> Self {
        Self {
            ours: f64::INFINITY,
            theirs: f64::INFINITY,
            our_peak: 0,
            their_peak: 0,
        }
    }

    fn ours(&mut self, (secs, peak): (f64, u64)) {
        self.ours = self.ours.min(secs);
        self.our_peak = self.our_peak.max(peak);
    }

    fn theirs(&mut self, secs: f64, peak: u64) {
        self.theirs = self.theirs.min(secs);
        self.their_peak = self.their_peak.max(peak);
    }

    fn ratio(&self) -> f64 {
        self.theirs / self.ours
    }
}

/// `harness-pseudonymise`: each extract, CSV to Parquet, against DuckDB's HMAC.
pub fn pseudonymise(scratch: &Path, quick: bool) -> Value {
    crate::stages::prepared("harness", scratch, quick);
    let root = root(scratch);
    let n = rows(quick);
    let mut best = [Best::new(), Best::new()];
    for _ in 0..ROUNDS {
        for ((extract, kind), best) in [("a", "A"), ("b", "B")].into_iter().zip(&mut best) {
            // Without its outputs and state the command cannot skip the stage as unchanged.
            let _ = fs::remove_dir_all(root.join("work"));
            let _ = fs::remove_file(root.join("pseudonymised"));
            best.ours(linklab(
                &root,
                &["pseudonymise", "pseudo.toml", "--extract", extract],
            ));
            let csv = format!("{kind}.csv");
            let out = format!("duckdb-{kind}.parquet");
            let args = ["pseudo", kind, &csv, &out, "--mode", "hmac"];
            match peer(&root, "peer_duckdb.py", &args) {
                Ok((stdout, peak)) => {
                    best.theirs(field(&stdout, "secs=").unwrap_or(f64::NAN), peak);
                }
                Err(reason) => return not_run("pseudonymise", &reason),
            }
        }
    }
    let _ = fs::remove_dir_all(root.join("work"));
    let [a, b] = best;
    let rate = |secs: f64| n as f64 / secs / 1e6;
    json!({
        "what": format!(
            "the harness's `A.csv` and `B.csv` ({n} rows each, 6 identifiers, 3 match keys, 3 kept \
             columns), `linklab pseudonymise` (CSV to Parquet, wall clock of the command) against \
             the harness's DuckDB peer with real HMAC-SHA256 from `sha256()` (2 threads, the query's \
             own time); best of {ROUNDS} runs each, in alternation"
        ),
        "result": format!(
            "A: linklab {:.2} s ({:.2} M rows/s), DuckDB {:.2} s, {:.1}×; B: linklab {:.2} s \
             ({:.2} M rows/s), DuckDB {:.2} s, {:.1}×; DuckDB peak {} MiB",
            a.ours, rate(a.ours), a.theirs, a.ratio(),
            b.ours, rate(b.ours), b.theirs, b.ratio(),
            a.their_peak.max(b.their_peak),
        ),
        "ratio": a.ratio().min(b.ratio()),
        "rows_per_second": n as f64 / a.ours,
        "peak_rss_mib": a.our_peak.max(b.our_peak),
    })
}

/// `harness-link`: `linklab link` of the two pseudonymised extracts against the same cascade
/// in DuckDB SQL.
pub fn link(scratch: &Path, quick: bool) -> Value {
    crate::stages::prepared("harness-link", scratch, quick);
    let root = root(scratch);
    let n = rows(quick);
    let mut best = Best::new();
    let mut duck_rows = 0_u64;
    for _ in 0..ROUNDS {
        let _ = fs::remove_dir_all(root.join("work/linked"));
        best.ours(linklab(&root, &["link", "pseudo.toml"]));
        match peer(&root, "duck_cascade.py", &["work", "duck.parquet"]) {
            Ok((stdout, peak)) => {
                best.theirs(field(&stdout, " in ").unwrap_or(f64::NAN), peak);
                duck_rows = field(&stdout, "cascade: ").map_or(0, |r| r as u64);
            }
            Err(reason) => return not_run("link", &reason),
        }
    }
    let report: Value =
        linklab_store::read_json(&root.join("work/linked/linkage-report.json")).unwrap_or(Value::Null);
    let linked: u64 = report["extracts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["name"] == "b")
        .filter_map(|e| e["linked"].as_u64())
        .sum();
    json!({
        "what": format!(
            "`linklab link pseudo.toml` of the harness's pseudonymised extracts (spine `a`, {n} \
             records; `b`, {n} records; 3 match keys; wall clock of the command) against the \
             harness's `duck_cascade.py` (the same cascade as DuckDB SQL, 2 threads, spine records \
             as persons without clustering, one output); best of {ROUNDS} runs each, in alternation"
        ),
        "result": format!(
            "linklab {:.2} s ({linked} of {n} `b` records linked), DuckDB {:.2} s ({duck_rows} rows, \
             peak {} MiB); linklab {:.2}× DuckDB",
            best.ours, best.theirs, best.their_peak, best.ratio()
        ),
        "ratio": best.ratio(),
        "records_per_second": 2.0 * n as f64 / best.ours,
        "peak_rss_mib": best.our_peak,
    })
}

fn not_run(stage: &str, reason: &str) -> Value {
    json!({
        "what": format!("the harness's {stage} step, side by side with DuckDB"),
        "result": format!("not run: {reason}"),
    })
}
