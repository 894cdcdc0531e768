//! The quality cases: one `linklab synth` world linked three ways — `linklab run` of the demo
//! pipeline with `method = "cascade"` and with `method = "probabilistic"` (keyed tokens), and
//! Splink on the same world's clear-text CSVs — each scored pairwise against synth's truth.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::pairwise::{Pairs, score_clusters};

/// The demo's spine and the other extracts, in the order its linkage report lists them.
pub const SPINE: &str = "releases";
pub const OTHERS: [&str; 4] = ["participants", "reoffences", "employment", "benefits"];
/// The threshold of both probabilistic linkers (linklab's default `match_probability`).
pub const THRESHOLD: f64 = 0.95;

/// One linker's figures: the spine clustering, each other extract's links, and its time.
struct Scores {
    method: String,
    spine: Pairs,
    links: Vec<Pairs>,
    seconds: f64,
}

/// The demo pipeline as the template, writing into the current folder: `people` people, the
/// given noise and link method, its work and release folders under `./<method>/`, the
/// synthetic world in `./extracts` (shared by both methods).
fn pipeline_text(template: &str, people: u64, heavy: bool, method: &str) -> String {
    let replace = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "pipelines/demo.toml no longer has `{from}`");
        text.replace(from, to)
    };
    let mut text = replace(template.to_owned(), "../target/linklab/demo/", "./");
    text = replace(text, "\"./work\"", &format!("\"./{method}/work\""));
    text = replace(text, "\"./release\"", &format!("\"./{method}/release\""));
    text = replace(text, "people = 20000", &format!("people = {people}"));
    text = replace(
        text,
        "method = \"probabilistic\"",
        &format!("method = \"{method}\""),
    );
    if heavy {
        text = replace(text, "[synth]\n", "[synth]\nnoise = \"heavy\"\n");
    }
    text
}

/// The quality figures of a linkage report (`linkage-report.json`), as pair counts.
fn report_scores(report: &Value, method: &str, seconds: f64) -> Scores {
    let pairs = |v: &Value| Pairs {
        true_positive: v["true_positive_pairs"].as_u64().unwrap_or(0),
        predicted: v["predicted_pairs"].as_u64().unwrap_or(0),
        truth: v["true_pairs"].as_u64().unwrap_or(0),
    };
    let quality = &report["quality"];
    let extracts = quality["extracts"].as_array().cloned().unwrap_or_default();
    let links = OTHERS
        .iter()
        .map(|name| {
            extracts
                .iter()
                .find(|e| e["extract"] == *name)
                .map_or_else(Pairs::default, |e| pairs(&e["pairwise"]))
        })
        .collect();
    Scores {
        method: format!("linklab `{method}`"),
        spine: pairs(&quality["spine_clustering"]),
        links,
        seconds,
    }
}

/// `linklab run` of the pipeline for `method` in `dir`; its quality and time.
fn run_linklab(dir: &Path, template: &str, people: u64, heavy: bool, method: &str) -> Scores {
    let pipeline = dir.join(format!("{method}.toml"));
    fs::write(&pipeline, pipeline_text(template, people, heavy, method)).expect("write the pipeline");
    let start = Instant::now();
    let status = Command::new(std::env::current_exe().expect("own path"))
        .args(["linklab", "run", "--quiet", "--log-format", "json"])
        .arg(&pipeline)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the benchmark runs linklab");
    assert!(status.success(), "`linklab run` with method {method} failed");
    let seconds = start.elapsed().as_secs_f64();
    let report: Value = serde_json::from_str(
        &fs::read_to_string(dir.join(method).join("work/linked/linkage-report.json"))
            .expect("the linkage report"),
    )
    .expect("the linkage report is JSON");
    report_scores(&report, method, seconds)
}

/// The Python that runs the peer: `LINKLAB_BENCH_PYTHON` (scripts/bench.sh sets it) or `python3`.
pub fn python() -> String {
    std::env::var("LINKLAB_BENCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `peers/splink_link.py` on the clear-text `extracts` of `world`, writing its clusters to
/// `out`; its JSON line, or why it did not run.
pub fn run_splink(world: &Path, extracts: &[&str], out: &Path) -> Result<Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/splink_link.py");
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let python = python();
    let output = Command::new(&python)
        .arg(&script)
        .arg(world)
        .arg(out)
        .args([
            "--extracts",
            &extracts.join(","),
            "--threads",
            &threads.to_string(),
        ])
        .arg(format!("--threshold={THRESHOLD}"))
        .output()
        .map_err(|e| format!("`{python}` did not start: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!(
            "Splink failed ({last}); run scripts/bench.sh, which installs it"
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| format!("Splink's output: {e}"))
}

/// Splink on the world's clear-text extracts, scored against the truth.
fn splink_scores(dir: &Path, world: &Path) -> Result<(Scores, Value), String> {
    let mut all = vec![SPINE];
    all.extend(OTHERS);
    let clusters = dir.join("splink-clusters.csv");
    let result = run_splink(world, &all, &clusters)?;
    let (spine, links) = score_clusters(&world.join("truth/records.csv"), &clusters, SPINE, &OTHERS)?;
    let scores = Scores {
        method: format!("Splink {}", result["splink"].as_str().unwrap_or("?")),
        spine,
        links,
        seconds: result["seconds"].as_f64().unwrap_or(f64::NAN),
    };
    Ok((scores, result))
}

/// The notes' table: a row per spine clustering and extract, a column per linker.
fn table(all: &[Scores]) -> String {
    let mut text = String::from("| pairwise precision / recall |");
    for s in all {
        let _ = write!(text, " {} |", s.method);
    }
    text.push_str("\n|---|");
    text.push_str(&"---|".repeat(all.len()));
    let mut row = |name: &str, pick: &dyn Fn(&Scores) -> Pairs| {
        let _ = write!(text, "\n| {name} |");
        for s in all {
            let _ = write!(text, " {} |", pick(s).text());
        }
    };
    row("spine clustering", &|s| s.spine);
    for (i, name) in OTHERS.iter().enumerate() {
        row(&format!("`{name}` links"), &|s| s.links[i]);
    }
    row("all links, pooled", &|s| Pairs::pooled(s.links.iter().copied()));
    text
}

/// The `quality` and `quality-heavy` cases.
pub fn quality(scratch: &Path, quick: bool, heavy: bool) -> Value {
    let people: u64 = if quick { 20_000 } else { 100_000 };
    let noise = if heavy { "heavy" } else { "standard" };
    let dir = scratch.join(format!("quality-{noise}"));
    let _ = fs::remove_dir_all(&dir);
    let world: PathBuf = dir.join("extracts");
    linklab_synth::generate(&linklab_synth::SynthConfig {
        people,
        seed: 42,
        out_dir: world.clone(),
        noise: if heavy {
            linklab_synth::NoiseLevel::Heavy
        } else {
            linklab_synth::NoiseLevel::Standard
        },
    })
    .expect("synth writes its world");
    let template =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/demo.toml"))
            .expect("pipelines/demo.toml");
    let mut all = vec![
        run_linklab(&dir, &template, people, heavy, "cascade"),
        run_linklab(&dir, &template, people, heavy, "probabilistic"),
    ];
    let mut notes = String::new();
    match splink_scores(&dir, &world) {
        Ok((scores, result)) => {
            let _ = write!(
                notes,
                "Splink {} (DuckDB {}): {} records; training {:.0} s, prediction and clustering {:.0} s, \
                 peak memory {} MiB; ",
                result["splink"].as_str().unwrap_or("?"),
                result["duckdb"].as_str().unwrap_or("?"),
                result["records"],
                result["train_seconds"].as_f64().unwrap_or(f64::NAN),
                result["predict_cluster_seconds"].as_f64().unwrap_or(f64::NAN),
                result["peak_rss_mib"],
            );
            all.push(scores);
        }
        Err(why) => {
            let _ = write!(notes, "Splink not run: {why}; ");
        }
    }
    let _ = write!(
        notes,
        "`linklab run` (every stage, from CSV to release) {:.0} s with the cascade, {:.0} s \
         probabilistic.\n\n{}",
        all[0].seconds,
        all[1].seconds,
        table(&all)
    );
    let summary: Vec<String> = all
        .iter()
        .map(|s| {
            format!(
                "{}: spine {}, links {}",
                s.method,
                s.spine.text(),
                Pairs::pooled(s.links.iter().copied()).text()
            )
        })
        .collect();
    let _ = fs::remove_dir_all(&dir);
    json!({
        "what": format!(
            "`linklab synth` world of {people} people, {noise} noise, linked by `linklab run` of the \
             demo pipeline with the cascade and with the probabilistic method (tokens), and by Splink \
             on the clear-text CSVs (threshold {THRESHOLD}); pairwise quality against synth's truth \
             (per extract in the notes below)"
        ),
        "result": summary.join("; "),
        "notes": notes,
        // The work ran in child processes; this process's peak says nothing about it.
        "peak_rss_mib": null,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(heavy: bool, method: &str, expected: &[&str]) {
        let template =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/demo.toml"))
                .expect("pipelines/demo.toml");
        let text = pipeline_text(&template, 1234, heavy, method);
        for line in expected {
            assert!(text.lines().any(|l| l == *line), "no line `{line}` in\n{text}");
        }
        assert!(!text.contains("../target"));
    }

    #[test]
    fn the_demo_pipeline_is_the_template() {
        check(
            false,
            "cascade",
            &[
                "people = 1234",
                "method = \"cascade\"",
                "work_dir = \"./cascade/work\"",
                "release_dir = \"./cascade/release\"",
                "out_dir = \"./extracts\"",
            ],
        );
        check(
            true,
            "probabilistic",
            &["noise = \"heavy\"", "method = \"probabilistic\""],
        );
    }
}
