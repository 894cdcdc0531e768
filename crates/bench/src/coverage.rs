//! `linklab-bench coverage`: over many seeds of the synthetic world, how often each outcome's
//! 95% confidence interval covers the true effect, written to `docs/coverage.md`.
//!
//! Each seed runs the demo pipeline (`pipelines/demo.toml` with the Justice Data Lab's measures
//! added: the number of reoffences, employed at day 30 and day 365) end to end with `linklab
//! run` in a child process, then reads `evaluation/publish/impact.csv` and the world's
//! `truth/effects.json`. The true effect is the world's ATT (the mean over all treated persons
//! of the outcome with the programme minus without, `att`), measured as the evaluate stage
//! measures it; the survival difference of `log_rank` is compared with minus the ATT on
//! `reoffended` (survival is the share without the event). A seed whose release stage refuses
//! still counts: its evaluation is written before the release runs.
//!
//! The estimate is of the effect on the *matched* treated persons (those the caliper kept), so
//! the table also gives coverage of that: the mean of `<outcome>_with − <outcome>_without`
//! (`truth/persons.csv`) over the true persons of the frame's matched treated (a frame person
//! is the true person of their first release record, by `truth/records.csv`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use arrow::array::{Array, StringArray};
use arrow::record_batch::RecordBatch;
use linklab_store::read_parts;

/// The outcomes added to the demo pipeline, as in `docs/pipeline.md`.
const JDL_OUTCOMES: &str = r#"
[[evaluate.outcome]]
name = "reoffences"
kind = "event_count"
extract = "reoffences"
date = "offence_date"

[[evaluate.outcome]]
name = "employed_at_30_days"
kind = "spell_at"
extract = "employment"
start = "start_date"
end = "end_date"
day = 30

[[evaluate.outcome]]
name = "employed_at_365_days"
kind = "spell_at"
extract = "employment"
start = "start_date"
end = "end_date"
day = 365
"#;

/// The impact rows checked: (outcome, measure) -> (the truth's outcome, the factor on its ATT).
const ROWS: [(&str, &str, &str, f64); 10] = [
    ("reoffended", "rate", "reoffended", 1.0),
    ("employed", "rate", "employed", 1.0),
    ("days_employed", "mean_days", "days_employed", 1.0),
    ("days_on_benefit", "mean_days", "days_on_benefit", 1.0),
    ("days_to_reoffence", "log_rank", "reoffended", -1.0),
    ("days_to_reoffence", "rmst", "days_to_reoffence", 1.0),
    ("reoffences", "count_mean", "reoffences", 1.0),
    ("reoffences", "count_per_100", "reoffences", 100.0),
    ("employed_at_30_days", "rate", "employed_at_30_days", 1.0),
    ("employed_at_365_days", "rate", "employed_at_365_days", 1.0),
];

/// What one row gave over the seeds.
#[derive(Debug, Default)]
struct Tally {
    seeds: u32,
    covered: u32,
    /// Sums of the estimate minus the truth, of the truth, of the interval's width.
    bias: f64,
    truth: f64,
    width: f64,
    /// The same against the true effect on the matched treated persons.
    covered_matched: u32,
    bias_matched: f64,
}

/// A string column of a batch, by name.
fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch.column_by_name(name)?.as_any().downcast_ref::<StringArray>()
}

/// The true persons (`truth/persons.csv` ids) of the matched treated persons of the frame: a
/// frame person is the true person of their first release record (`truth/records.csv`).
fn matched_true_persons(dir: &Path) -> Option<Vec<String>> {
    let records = fs::read_to_string(dir.join("extracts/truth/records.csv")).ok()?;
    let truth: HashMap<&str, &str> = records
        .lines()
        .filter_map(|l| l.strip_prefix("releases,"))
        .filter_map(|l| l.split_once(','))
        .collect();
    let mut first: HashMap<String, String> = HashMap::new();
    for batch in read_parts(&dir.join("work/linked/releases"), 8192).ok()? {
        let batch = batch.ok()?;
        let (Some(person), Some(record)) = (column(&batch, "person_id"), column(&batch, "record_id")) else {
            return None;
        };
        for i in 0..batch.num_rows() {
            if person.is_valid(i)
                && let Some(t) = truth.get(record.value(i))
            {
                first
                    .entry(person.value(i).to_owned())
                    .or_insert_with(|| (*t).to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for batch in read_parts(&dir.join("work/evaluation/frame"), 8192).ok()? {
        let batch = batch.ok()?;
        let (Some(person), Some(group)) = (column(&batch, "person_id"), column(&batch, "group")) else {
            return None;
        };
        for i in 0..batch.num_rows() {
            if group.is_valid(i) && group.value(i) == "treated" {
                out.extend(first.get(person.value(i)).cloned());
            }
        }
    }
    Some(out)
}

/// The true effect of each outcome on the persons `who`: the mean of `<outcome>_with −
/// <outcome>_without` in `truth/persons.csv`.
fn effects_on(dir: &Path, who: &[String]) -> HashMap<String, f64> {
    let text = fs::read_to_string(dir.join("extracts/truth/persons.csv")).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let wanted: HashSet<&str> = who.iter().map(String::as_str).collect();
    let mut sums: HashMap<String, f64> = HashMap::new();
    let mut n = 0.0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if !wanted.contains(f[0]) {
            continue;
        }
        n += 1.0;
        for (k, name) in header.iter().enumerate() {
            if let Some(outcome) = name.strip_suffix("_with") {
                let without = header.iter().position(|h| *h == format!("{outcome}_without"));
                let value = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                *sums.entry(outcome.to_owned()).or_default() += value(k) - without.map_or(0.0, value);
            }
        }
    }
    sums.into_iter().map(|(k, v)| (k, v / n)).collect()
}

/// The demo pipeline for one seed's world of `people`, in `dir`.
fn pipeline(dir: &Path, people: u64, seed: u64) -> PathBuf {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/demo.toml");
    let text = fs::read_to_string(demo)
        .expect("pipelines/demo.toml")
        .replace("../target/linklab/demo/", "./")
        .replace("people = 20000", &format!("people = {people}"))
        .replace("seed = 42", &format!("seed = {seed}"));
    assert!(
        text.contains(&format!("seed = {seed}")),
        "demo.toml has a [synth] seed"
    );
    let path = dir.join("demo.toml");
    fs::write(&path, format!("{text}{JDL_OUTCOMES}")).expect("write the pipeline");
    path
}

/// The published rows of `impact.csv`: (outcome, measure) -> (difference, low, high).
fn impact(path: &Path) -> BTreeMap<(String, String), (f64, f64, f64)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(o), Some(m), Some(d), Some(lo), Some(hi)) = (
        col("outcome"),
        col("measure"),
        col("difference"),
        col("ci_low"),
        col("ci_high"),
    ) else {
        return BTreeMap::new();
    };
    lines
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            Some((
                (f.get(o)?.to_string(), f.get(m)?.to_string()),
                (num(d)?, num(lo)?, num(hi)?),
            ))
        })
        .collect()
}

/// Runs one seed and adds its rows to `tallies`. Returns whether its evaluation was read.
fn one_seed(dir: &Path, people: u64, seed: u64, tallies: &mut BTreeMap<usize, Tally>) -> bool {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("create the seed's folder");
    let pipeline = pipeline(dir, people, seed);
    // The release stage may refuse a world's tables; the evaluation is written before it.
    let _ = Command::new(std::env::current_exe().expect("own path"))
        .args(["linklab", "run", "--quiet"])
        .arg(&pipeline)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the benchmark runs linklab");
    let rows = impact(&dir.join("work/evaluation/publish/impact.csv"));
    let effects: serde_json::Value = fs::read(dir.join("extracts/truth/effects.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if rows.is_empty() || effects.is_null() {
        return false;
    }
    let matched = effects_on(dir, &matched_true_persons(dir).unwrap_or_default());
    for (k, (outcome, measure, truth_name, factor)) in ROWS.iter().enumerate() {
        let att = effects["outcomes"][truth_name]["att"].as_f64();
        let row = rows.get(&((*outcome).to_owned(), (*measure).to_owned()));
        if let (Some(att), Some(&(d, lo, hi))) = (att, row) {
            let truth = att * factor;
            let t = tallies.entry(k).or_default();
            t.seeds += 1;
            t.covered += u32::from(lo <= truth && truth <= hi);
            t.bias += d - truth;
            t.truth += truth;
            t.width += hi - lo;
            let truth = matched.get(*truth_name).copied().unwrap_or(f64::NAN) * factor;
            t.covered_matched += u32::from(lo <= truth && truth <= hi);
            t.bias_matched += d - truth;
        }
    }
    true
}

/// Runs the coverage study and writes its table to `out`. Arguments: `--seeds N` (50),
/// `--people P` (5000), `--first S` (1), `--out FILE` (`docs/coverage.md`).
pub fn coverage(args: &[String]) -> i32 {
    let value =
        |name: &str, default: u64| crate::arg_value(args, name).map_or(Some(default), |v| v.parse().ok());
    let (Some(seeds), Some(people), Some(first)) =
        (value("--seeds", 50), value("--people", 5000), value("--first", 1))
    else {
        eprintln!("coverage takes --seeds N, --people P and --first S as whole numbers");
        return 2;
    };
    let out = PathBuf::from(crate::arg_value(args, "--out").unwrap_or("docs/coverage.md"));
    let scratch = std::env::temp_dir().join(format!("linklab-coverage-{}", std::process::id()));
    let start = Instant::now();
    let mut tallies = BTreeMap::new();
    let mut read = 0;
    for seed in first..first + seeds {
        let ok = one_seed(&scratch.join("seed"), people, seed, &mut tallies);
        read += u32::from(ok);
        eprintln!(
            "seed {seed}: {} ({:.0} s so far)",
            if ok { "read" } else { "no evaluation" },
            start.elapsed().as_secs_f64()
        );
    }
    let _ = fs::remove_dir_all(&scratch);
    let text = render(
        &tallies,
        seeds,
        read,
        people,
        first,
        start.elapsed().as_secs_f64(),
    );
    fs::write(&out, &text).expect("write the coverage table");
    eprintln!("wrote {}", out.display());
    print!("{text}");
    0
}

/// The Markdown page.
fn render(
    tallies: &BTreeMap<usize, Tally>,
    seeds: u64,
    read: u32,
    people: u64,
    first: u64,
    secs: f64,
) -> String {
    let mut text = String::from("# Coverage of the confidence intervals\n\n");
    let _ = writeln!(
        text,
        "Written by `cargo run --release -p linklab-bench -- coverage --seeds {seeds} --people {people} --first {first}` \
         on {} ({:.0} minutes). Each seed is a synthetic world of {people} people (seeds {first} to {}), run end to end \
         through the demo pipeline (`pipelines/demo.toml`, probabilistic linkage) with the Justice Data Lab's measures \
         added; {read} of {seeds} seeds gave an evaluation. The truth is the world's ATT in `truth/effects.json`, \
         measured over `(first release, + 365 days]` as the evaluate stage measures it; `log_rank`'s survival difference \
         is compared with minus the ATT on `reoffended`. Target: every row covers in at least 93% of seeds.\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        secs / 60.0,
        first + seeds - 1
    );
    let _ = writeln!(
        text,
        "| outcome | measure | seeds | 95% CI covers the truth | mean truth | mean bias (estimate − truth) | mean CI width | covers the effect on the matched treated | mean bias against it |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (k, (outcome, measure, _, _)) in ROWS.iter().enumerate() {
        let Some(t) = tallies.get(&k).filter(|t| t.seeds > 0) else {
            let _ = writeln!(text, "| {outcome} | {measure} | 0 | – | – | – | – | – | – |");
            continue;
        };
        let n = f64::from(t.seeds);
        let _ = writeln!(
            text,
            "| {outcome} | {measure} | {} | {:.1}% | {:.4} | {:+.4} | {:.4} | {:.1}% | {:+.4} |",
            t.seeds,
            100.0 * f64::from(t.covered) / n,
            t.truth / n,
            t.bias / n,
            t.width / n,
            100.0 * f64::from(t.covered_matched) / n,
            t.bias_matched / n,
        );
    }
    text
}
