//! The `link-probabilistic` cases: the speed of `method = "probabilistic"` on a spine of
//! 1,000,000 records and an extract of 1,000,000 records from `linklab synth`, and Splink's on
//! the same records in clear text, in the same run; and `link-probabilistic-10m`, the same
//! spine and an extract of 10,000,000 records from a world of 10,000,000 people, linklab's side
//! alone. The input (the cut CSVs, their tokens from pseudonymise with comparison tokens, and
//! the truth of the records kept) is made by `prepare`, in a process of its own, so this
//! process's peak memory is the link stage's alone; Splink's is its own process's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use chrono::NaiveDate;
use linklab_pseudonymise::{Identifier, InputFormat, PseudonymiseConfig};
use linklab_store::{NoProgress, Progress, WorkDir};
use linklab_tokens::{FieldKind, MatchKey};
use serde_json::{Value, json};

use crate::pairwise::score_clusters;
use crate::quality::{THRESHOLD, run_splink};
use crate::stages::{cut, key_file};

/// The spine and the other extract, with their identifier columns (forename, surname, date of
/// birth, sex, NI number) as synth writes them.
const FILES: [(&str, [&str; 5]); 2] = [
    (
        "releases",
        ["first_name", "last_name", "birth_date", "sex", "ni_number"],
    ),
    ("benefits", ["forename", "surname", "dob", "sex", "nino"]),
];
/// The demo's match keys: the probabilistic method's first blocking rules.
const KEYS: [(&str, &[&str]); 4] = [
    ("nino", &["nino"]),
    ("name_dob_sex", &["forename", "surname", "dob", "sex"]),
    ("surname_dob_sex", &["surname", "dob", "sex"]),
    (
        "soundex_initial_dob",
        &["soundex(surname)", "initial(forename)", "dob"],
    ),
];
const FIELDS: [(&str, FieldKind); 5] = [
    ("forename", FieldKind::Forename),
    ("surname", FieldKind::Name),
    ("dob", FieldKind::Dob),
    ("sex", FieldKind::Sex),
    ("nino", FieldKind::Nino),
];

/// The case with 10,000,000 records in the other extract.
pub const TEN_MILLION: &str = "link-probabilistic-10m";

/// A case's size.
struct Size {
    /// People in the synthetic world.
    people: u64,
    /// Records kept of the spine and of the other extract (the first rows of each file).
    rows: [usize; 2],
    /// Whether Splink runs on the same records (at 1M + 10M it would take hours: at 1M + 1M it
    /// took 907–2,893 s).
    splink: bool,
}

fn size(case: &str, quick: bool) -> Size {
    match (case == TEN_MILLION, quick) {
        (false, false) => Size {
            people: 1_000_000,
            rows: [1_000_000, 1_000_000],
            splink: true,
        },
        (false, true) => Size {
            people: 50_000,
            rows: [50_000, 50_000],
            splink: true,
        },
        (true, false) => Size {
            people: 10_000_000,
            rows: [1_000_000, 10_000_000],
            splink: false,
        },
        (true, true) => Size {
            people: 100_000,
            rows: [20_000, 100_000],
            splink: false,
        },
    }
}

fn root(case: &str, scratch: &Path) -> PathBuf {
    scratch.join(case)
}

fn work(case: &str, scratch: &Path) -> WorkDir {
    WorkDir::new(root(case, scratch).join("work"))
}

/// Makes the input of `case` in `scratch` unless it is there already.
pub fn prepare(case: &str, scratch: &Path, quick: bool) {
    let Size { people, rows, .. } = size(case, quick);
    let root = |scratch| root(case, scratch);
    let done = root(scratch).join("prepared");
    if done.is_file() {
        return;
    }
    let _ = fs::remove_dir_all(root(scratch));
    let world = root(scratch).join("world");
    let clear = root(scratch).join("clear");
    fs::create_dir_all(&clear).expect("create the case folder");
    linklab_synth::generate(&linklab_synth::SynthConfig {
        people,
        seed: 7,
        out_dir: world.clone(),
        noise: linklab_synth::NoiseLevel::Standard,
    })
    .expect("synth writes its world");
    let linkage_key = key_file(&root(scratch), "linkage.key", 1);
    key_file(&root(scratch), "project.key", 2);
    for ((name, columns), rows) in FILES.into_iter().zip(rows) {
        let csv = clear.join(format!("{name}.csv"));
        assert!(
            cut(&world.join(format!("{name}.csv")), &csv, rows),
            "synth made too few {name} rows"
        );
        let cfg = PseudonymiseConfig {
            extract: name.into(),
            input: csv,
            format: InputFormat::CSV,
            identifiers: FIELDS
                .iter()
                .zip(columns)
                .map(|(&(field, kind), column)| Identifier {
                    name: field.into(),
                    column: column.into(),
                    kind,
                })
                .collect(),
            keep: vec!["record_id".into()],
            types: BTreeMap::new(),
            match_keys: KEYS
                .iter()
                .map(|&(key, fields)| MatchKey::parse(key, fields, false).expect("a valid match key"))
                .collect(),
            compare: FIELDS.iter().map(|(f, _)| (*f).to_owned()).collect(),
            key_file: linkage_key.clone(),
            work_dir: work(case, scratch),
            max_reject_fraction: 0.01,
            batch_rows: linklab_pseudonymise::DEFAULT_BATCH_ROWS,
            today: NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"),
            partition: None,
        };
        linklab_pseudonymise::run(&cfg, &NoProgress).expect("pseudonymise runs");
    }
    // Only the truth of the records kept is needed from the world now.
    for entry in fs::read_dir(&world).expect("the world").flatten() {
        if entry.path().extension().is_some_and(|e| e == "csv") {
            let _ = fs::remove_file(entry.path());
        }
    }
    keep_truth(&world.join("truth/records.csv"), rows);
    fs::write(done, "").expect("mark the input prepared");
}

/// Keeps the lines of synth's `records.csv` of the records cut: the first `rows` of each file
/// in [`FILES`] (synth numbers a file's records from 1 in its row order, after a
/// three-letter prefix). The link stage then loads the truth of 11M records, not of 44M.
fn keep_truth(path: &Path, rows: [usize; 2]) {
    let kept = path.with_extension("kept");
    let mut sink = BufWriter::new(fs::File::create(&kept).expect("create the truth kept"));
    for (i, line) in BufReader::new(fs::File::open(path).expect("the truth"))
        .lines()
        .enumerate()
    {
        let line = line.expect("read the truth");
        let mut fields = line.split(',');
        let (extract, record) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let number = record.get(3..).and_then(|n| n.parse::<usize>().ok());
        let keep = i == 0
            || FILES
                .iter()
                .zip(rows)
                .any(|((name, _), rows)| extract == *name && number.is_some_and(|n| n <= rows));
        if keep {
            writeln!(sink, "{line}").expect("write the truth kept");
        }
    }
    sink.flush().expect("flush the truth kept");
    fs::rename(kept, path).expect("replace the truth");
}

/// A [`Progress`] that times the run's phases, to say where the time goes.
struct PhaseTimes {
    start: Instant,
    /// Each phase: its name, and the seconds from the start when it began and ended.
    phases: Mutex<Vec<(String, f64, f64)>>,
}

impl PhaseTimes {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            phases: Mutex::new(Vec::new()),
        }
    }

    /// Each phase's seconds, and the time between phases (in the phase that follows), as text.
    fn text(&self) -> String {
        let phases = self.phases.lock().expect("not poisoned");
        let mut last = 0.0;
        let mut parts = Vec::new();
        for (name, from, to) in phases.iter() {
            if from - last >= 0.05 {
                parts.push(format!("(between) {:.1} s", from - last));
            }
            parts.push(format!(
                "{} {:.1} s",
                name.trim_start_matches("link: "),
                to - from
            ));
            last = *to;
        }
        let total = self.start.elapsed().as_secs_f64();
        if total - last >= 0.05 {
            parts.push(format!("(after) {:.1} s", total - last));
        }
        parts.join("; ")
    }
}

impl Progress for PhaseTimes {
    fn start(&self, phase: &str, _total: Option<u64>) {
        let now = self.start.elapsed().as_secs_f64();
        self.phases
            .lock()
            .expect("not poisoned")
            .push((phase.to_owned(), now, now));
    }

    fn advance(&self, _n: u64) {}

    fn finish(&self) {
        let now = self.start.elapsed().as_secs_f64();
        if let Some(last) = self.phases.lock().expect("not poisoned").last_mut() {
            last.2 = now;
        }
    }
}

/// `P x R y` of the report's spine clustering and its link figures for `extract`.
fn report_quality(report: &linklab_link::LinkageReport, extract: &str) -> String {
    let text = |p: Option<&linklab_link::PairwiseQuality>| {
        p.map_or_else(
            || "n/a".to_owned(),
            |p| {
                crate::pairwise::Pairs {
                    true_positive: p.true_positive_pairs,
                    predicted: p.predicted_pairs,
                    truth: p.true_pairs,
                }
                .text()
            },
        )
    };
    let quality = report.quality.as_ref();
    format!(
        "spine {}, `{extract}` links {}",
        text(quality.and_then(|q| q.spine_clustering.as_ref())),
        text(
            quality
                .and_then(|q| q.extracts.iter().find(|e| e.extract == extract))
                .map(|e| &e.pairwise)
        ),
    )
}

pub fn case(name: &str, scratch: &Path, quick: bool) -> Value {
    let status = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "prepare",
            name,
            &scratch.to_string_lossy(),
            if quick { "quick" } else { "full" },
        ])
        .status()
        .expect("the benchmark re-runs itself");
    assert!(status.success(), "preparing the input of {name} failed");
    let Size { people, rows, splink } = size(name, quick);
    let root = |scratch| root(name, scratch);
    let records = rows[0] + rows[1];
    let names: Vec<String> = FILES.iter().map(|(n, _)| (*n).to_owned()).collect();
    let mut cfg = linklab_link::LinkConfig::new(
        KEYS.iter().map(|(k, _)| (*k).to_owned()).collect(),
        FILES[0].0,
        names,
        work(name, scratch),
        root(scratch).join("project.key"),
    );
    cfg.method = linklab_link::Method::Probabilistic(linklab_link::ProbabilisticConfig {
        compare: FIELDS
            .iter()
            .map(|&(name, kind)| linklab_link::CompareField {
                name: name.into(),
                kind,
            })
            .collect(),
        match_probability: THRESHOLD,
    });
    cfg.truth_dir = Some(root(scratch).join("world"));
    let start = Instant::now();
    let phases = PhaseTimes::new();
    let report = linklab_link::run(&cfg, &phases).expect("link runs");
    let secs = start.elapsed().as_secs_f64();
    eprintln!("phases: {}", phases.text());
    let peak = crate::cases::peak_rss_mib();
    let ours = records as f64 / secs;
    let mut result = format!(
        "linklab {:.0} k records/s ({secs:.1} s, peak {peak} MiB; {})",
        ours / 1e3,
        report_quality(&report, FILES[1].0)
    );
    // Splink takes many times longer: say what linklab did while it runs.
    eprintln!("{result}");
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let (splink_rate, peer) = if splink {
        let rate = splink_beside(&root(scratch), records, ours, &mut result);
        (
            rate,
            format!(
                "; Splink (DuckDB, {threads} threads) on the same records' clear-text CSVs, from \
                 standardised tables to clusters (threshold {THRESHOLD})"
            ),
        )
    } else {
        (
            Value::Null,
            "; linklab's side alone (Splink took 907–2,893 s for 1M + 1M)".to_owned(),
        )
    };
    json!({
        "what": format!(
            "`method = \"probabilistic\"`: a spine of {} `releases` records and {} `benefits` \
             records from `linklab synth` of {people} people (standard noise), 5 compared fields, \
             the demo's 4 match keys, Parquet tokens in and out, default memory_limit{peer}",
            rows[0], rows[1]
        ),
        "result": result,
        "records_per_second": ours,
        "splink_records_per_second": splink_rate,
        "peak_rss_mib": peak,
        "phases": phases.text(),
    })
}

/// Runs Splink on the case's clear-text CSVs in `root`, scores its clusters against the truth
/// and appends what it did to `result`; returns its records per second (null if it failed).
fn splink_beside(root: &Path, records: usize, ours: f64, result: &mut String) -> Value {
    let clusters = root.join("splink-clusters.csv");
    let extracts = [FILES[0].0, FILES[1].0];
    let peer = run_splink(&root.join("clear"), &extracts, &clusters).and_then(|r| {
        let scored = score_clusters(
            &root.join("world/truth/records.csv"),
            &clusters,
            FILES[0].0,
            &extracts[1..],
        )?;
        Ok((r, scored))
    });
    match peer {
        Ok((r, (spine, links))) => {
            let secs = r["seconds"].as_f64().unwrap_or(f64::NAN);
            let theirs = records as f64 / secs;
            let _ = write!(
                result,
                "; Splink {} {:.1} k records/s ({secs:.0} s: training {:.0} s, prediction and \
                 clustering {:.0} s; peak {} MiB; spine {}, `{}` links {}); linklab {:.0}× Splink's \
                 throughput",
                r["splink"].as_str().unwrap_or("?"),
                theirs / 1e3,
                r["train_seconds"].as_f64().unwrap_or(f64::NAN),
                r["predict_cluster_seconds"].as_f64().unwrap_or(f64::NAN),
                r["peak_rss_mib"],
                spine.text(),
                FILES[1].0,
                links[0].text(),
                ours / theirs
            );
            json!(theirs)
        }
        Err(why) => {
            let _ = write!(result, "; Splink not run: {why}");
            Value::Null
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_truth_kept_is_that_of_the_records_cut() {
        let dir = std::env::temp_dir().join(format!("linklab-keep-truth-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("records.csv");
        fs::write(
            &path,
            "extract,record_id,person\nreleases,REL0000001,P1\nreleases,REL0000002,P2\n\
             releases,REL0000003,P3\nparticipants,PAR0000001,P1\nbenefits,BEN0000001,P2\n\
             benefits,BEN0000009,P3\nbenefits,BEN10000000,P4\n",
        )
        .unwrap();
        keep_truth(&path, [2, 10_000_000]);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "extract,record_id,person\nreleases,REL0000001,P1\nreleases,REL0000002,P2\n\
             benefits,BEN0000001,P2\nbenefits,BEN0000009,P3\nbenefits,BEN10000000,P4\n"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
