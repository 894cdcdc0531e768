//! The stage cases: pseudonymise on a CSV from `linklab synth`, link on generated token files,
//! and the same link cascade as SQL in DuckDB. Their input data is made by `prepare`, in a
//! process of its own, so the measured process's peak memory is the stage's alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, FixedSizeBinaryBuilder, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use linklab_pseudonymise::{Identifier, InputFormat, PseudonymiseConfig};
use linklab_store::{NoProgress, PartWriter, WorkDir};
use linklab_tokens::{FieldKind, MatchKey, SecretKey, TokenHasher};
use rayon::prelude::*;
use serde_json::json;

/// The memory limit of the `link-spill` case: below what the in-memory plan's hash tables need
/// (the in-memory run peaks at about 430 MiB at full size), so the run
/// partitions.
pub fn spill_limit(quick: bool) -> u64 {
    if quick { 128 << 20 } else { 320 << 20 }
}

/// The match keys of the link cases, in cascade order.
const LINK_KEYS: [&str; 3] = ["nino", "name_dob_sex", "soundex_initial_dob"];
/// Rows per generated batch.
const BATCH: usize = 64 * 1024;

fn sizes(quick: bool) -> (usize, usize, usize) {
    // (pseudonymise CSV rows, spine persons, extract records)
    if quick {
        (200_000, 100_000, 1_000_000)
    } else {
        (5_000_000, 1_000_000, 10_000_000)
    }
}

/// Makes a case's input in `scratch` unless it is there already. Returns the exit code.
pub fn prepare(case: &str, scratch: &Path, quick: bool) -> i32 {
    match case {
        "pseudonymise" => prepare_csv(scratch, quick),
        "link" => prepare_tokens(scratch, quick),
        "link-probabilistic" | crate::link_probabilistic::TEN_MILLION => {
            crate::link_probabilistic::prepare(case, scratch, quick);
        }
        "harness" => crate::harness::prepare(scratch, quick, false),
        "harness-link" => crate::harness::prepare(scratch, quick, true),
        _ => {
            eprintln!("nothing to prepare for {case}");
            return 2;
        }
    }
    0
}

/// Runs `prepare` for `case` in a child process.
pub(crate) fn prepared(case: &str, scratch: &Path, quick: bool) {
    let status = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "prepare",
            case,
            &scratch.to_string_lossy(),
            if quick { "quick" } else { "full" },
        ])
        .status()
        .expect("the benchmark re-runs itself");
    assert!(status.success(), "preparing the input of {case} failed");
}

pub(crate) fn key_file(dir: &Path, name: &str, seed: u8) -> PathBuf {
    let path = dir.join(name);
    let hex = (0..32u8).fold(String::new(), |mut hex, i| {
        let _ = write!(hex, "{:02x}", i.wrapping_mul(7) ^ seed);
        hex
    });
    fs::write(&path, hex + "\n").expect("write a key");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod a key");
    path
}

fn csv_path(scratch: &Path) -> PathBuf {
    scratch.join("pseudonymise").join("releases.csv")
}

/// The identifiers of synth's `releases.csv`: forename, surname, date of birth and sex, and the
/// NI number when `nino`.
pub(crate) fn releases_identifiers(nino: bool) -> Vec<Identifier> {
    let mut identifiers = vec![
        Identifier::new("forename", "first_name", FieldKind::Forename),
        Identifier::new("surname", "last_name", FieldKind::Name),
        Identifier::new("dob", "birth_date", FieldKind::Dob),
        Identifier::new("sex", "sex", FieldKind::Sex),
    ];
    if nino {
        identifiers.push(Identifier::new("nino", "ni_number", FieldKind::Nino));
    }
    identifiers
}

/// `linklab synth` with enough people for the wanted rows of `releases.csv`, cut to exactly them.
fn prepare_csv(scratch: &Path, quick: bool) {
    let (rows, _, _) = sizes(quick);
    let out = csv_path(scratch);
    if out.is_file() {
        return;
    }
    let synth_dir = scratch.join("pseudonymise-synth");
    // releases.csv has about 1.04 rows per person.
    let people = (rows as u64) * 100 / 103;
    linklab_synth::generate(&linklab_synth::SynthConfig {
        people,
        seed: 11,
        out_dir: synth_dir.clone(),
        noise: linklab_synth::NoiseLevel::Standard,
    })
    .expect("synth writes its files");
    fs::create_dir_all(out.parent().expect("a folder")).expect("create folder");
    let tmp = out.with_extension("tmp");
    assert!(
        cut(&synth_dir.join("releases.csv"), &tmp, rows),
        "synth made too few release rows"
    );
    fs::rename(&tmp, &out).expect("rename csv");
    let _ = fs::remove_dir_all(&synth_dir);
}

/// Copies the header and the first `rows` rows of CSV `from` to `to`; false if it has fewer.
pub(crate) fn cut(from: &Path, to: &Path, rows: usize) -> bool {
    let source = BufReader::new(fs::File::open(from).expect("a CSV to cut"));
    let mut sink = BufWriter::new(fs::File::create(to).expect("create a cut CSV"));
    let mut written = 0;
    for line in source.split(b'\n').take(rows + 1) {
        sink.write_all(&line.expect("read a CSV to cut"))
            .expect("write a cut CSV");
        sink.write_all(b"\n").expect("write a cut CSV");
        written += 1;
    }
    sink.flush().expect("flush a cut CSV");
    written == rows + 1
}

/// The pseudonymise case; with `compare`, also comparison tokens (token spec v2) for the five
/// identifiers.
pub fn pseudonymise(scratch: &Path, quick: bool, compare: bool) -> serde_json::Value {
    prepared("pseudonymise", scratch, quick);
    let input = csv_path(scratch);
    let dir = input.parent().expect("a folder").to_path_buf();
    let bytes = fs::metadata(&input).expect("csv size").len();
    let key = |name: &str, fields: &[&str]| MatchKey::parse(name, fields, false).expect("a valid match key");
    let cfg = PseudonymiseConfig {
        extract: "releases".into(),
        input,
        format: InputFormat::CSV,
        identifiers: releases_identifiers(true),
        keep: vec![
            "release_date".into(),
            "age_at_release".into(),
            "offence_group".into(),
        ],
        types: BTreeMap::new(),
        match_keys: vec![
            key("nino", &["nino"]),
            key("name_dob_sex", &["forename", "surname", "dob", "sex"]),
            key(
                "soundex_initial_dob",
                &["soundex(surname)", "initial(forename)", "dob"],
            ),
        ],
        compare: if compare {
            ["surname", "forename", "dob", "sex", "nino"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        },
        key_file: key_file(&dir, "linkage.key", 1),
        work_dir: WorkDir::new(dir.join("work")),
        max_reject_fraction: 0.01,
        batch_rows: linklab_pseudonymise::DEFAULT_BATCH_ROWS,
        today: NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"),
        partition: None,
    };
    let start = Instant::now();
    let manifest = linklab_pseudonymise::run(&cfg, &NoProgress).expect("pseudonymise runs");
    let secs = start.elapsed().as_secs_f64();
    let rows = manifest.rows.written;
    let _ = fs::remove_dir_all(dir.join("work"));
    json!({
        "what": format!(
            "`releases.csv` from `linklab synth`, {rows} rows ({:.0} MB), 5 identifiers, 3 match keys, \
             {}3 kept columns, CSV to Parquet",
            bytes as f64 / 1e6,
            if compare { "comparison tokens of all 5 (17 columns, 4 of them `edit1` sets), " } else { "" }
        ),
        "result": format!(
            "{:.2} M rows/s, {:.0} MB/s ({secs:.1} s)",
            rows as f64 / secs / 1e6,
            bytes as f64 / secs / 1e6
        ),
        "rows_per_second": rows as f64 / secs,
    })
}

fn link_work(scratch: &Path) -> WorkDir {
    WorkDir::new(scratch.join("link").join("work"))
}

/// The token a person holds for key `k`: an HMAC of (k, person), so it is uniformly random.
fn person_token(hasher: &TokenHasher, k: usize, person: u64) -> [u8; 32] {
    let mut message = [0u8; 9];
    message[0] = k as u8;
    message[1..].copy_from_slice(&person.to_le_bytes());
    hasher.hmac(&message)
}

/// A token nobody on the spine holds (a typo, or a person who is not on the spine).
fn stray_token(hasher: &TokenHasher, record: u64) -> [u8; 32] {
    let mut message = [0xFFu8; 9];
    message[1..].copy_from_slice(&record.to_le_bytes());
    hasher.hmac(&message)
}

/// A cheap deterministic hash of a record number, for the noise decisions.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes one pseudonymised extract of `records` rows; `tokens(record)` gives its 3 tokens.
fn write_extract(
    work: &WorkDir,
    name: &str,
    records: u64,
    tokens: &(dyn Fn(u64) -> [Option<[u8; 32]>; 3] + Sync),
) {
    let dir = work.pseudonymised(name);
    fs::create_dir_all(&dir).expect("create extract folder");
    let mut fields: Vec<Field> = LINK_KEYS
        .iter()
        .map(|k| Field::new(format!("tok_{k}"), DataType::FixedSizeBinary(32), true))
        .collect();
    fields.push(Field::new("record_id", DataType::Int64, false));
    let schema = Arc::new(Schema::new(fields));
    let mut writer = PartWriter::new(&dir, Arc::clone(&schema));
    let mut start = 0;
    while start < records {
        let end = (start + BATCH as u64).min(records);
        let rows: Vec<[Option<[u8; 32]>; 3]> = (start..end).into_par_iter().map(tokens).collect();
        let mut columns: Vec<ArrayRef> = (0..3)
            .map(|k| {
                let mut b = FixedSizeBinaryBuilder::with_capacity(rows.len(), 32);
                for row in &rows {
                    match &row[k] {
                        Some(t) => b.append_value(t).expect("32 bytes"),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            })
            .collect();
        columns.push(Arc::new(Int64Array::from_iter_values(
            (start..end).map(|r| r as i64),
        )));
        writer
            .write(&RecordBatch::try_new(Arc::clone(&schema), columns).expect("a valid batch"))
            .expect("write a batch");
        start = end;
    }
    let (parts, _) = writer.finish().expect("finish the parts");
    let parts: Vec<linklab_store::PartSummary> = parts
        .iter()
        .map(|p| linklab_store::PartSummary::of(p).expect("a part file"))
        .collect();
    linklab_store::write_json_atomic(
        &work.pseudonymised_manifest(name),
        &json!({ "extract": name, "key_fingerprint": "bench", "rows": { "written": records }, "parts": parts }),
    )
    .expect("write the manifest");
}

/// A spine of persons (5% of them released twice) and an extract of events, as token files.
///
/// Each event belongs to a spine person, or (1 in 11) to nobody on the spine. Of the events of
/// spine persons, 15% lack the NI number token and 10% have a typo in the name, so the cascade
/// links through all three keys.
fn prepare_tokens(scratch: &Path, quick: bool) {
    let (_, persons, events) = sizes(quick);
    let work = link_work(scratch);
    let done = scratch.join("link").join("prepared");
    if done.is_file() {
        return;
    }
    let _ = fs::remove_dir_all(scratch.join("link"));
    fs::create_dir_all(work.root()).expect("create the work folder");
    key_file(&scratch.join("link"), "project.key", 2);
    let hasher = TokenHasher::new(&SecretKey::from_bytes((100u8..132).collect()));
    let persons = persons as u64;
    let twice = persons / 20;
    // Spine records: persons 0..P in order, then the repeat releases of persons 0, 20, 40, ...
    write_extract(&work, "spine", persons + twice, &|r| {
        let (person, repeat) = if r < persons {
            (r, false)
        } else {
            ((r - persons) * 20, true)
        };
        let nino = (!repeat || mix(r).is_multiple_of(2)).then(|| person_token(&hasher, 0, person));
        [
            nino,
            Some(person_token(&hasher, 1, person)),
            Some(person_token(&hasher, 2, person)),
        ]
    });
    let events = events as u64;
    write_extract(&work, "events", events, &|r| {
        let h = mix(r ^ 0x5eed);
        let who = h % (persons + persons / 10);
        if who >= persons {
            return [
                Some(stray_token(&hasher, r)),
                Some(stray_token(&hasher, r + (1 << 40))),
                Some(stray_token(&hasher, r + (2 << 40))),
            ];
        }
        let roll = (h >> 32) % 100;
        [
            (roll >= 15).then(|| person_token(&hasher, 0, who)),
            Some(if roll % 10 == 3 {
                stray_token(&hasher, r)
            } else {
                person_token(&hasher, 1, who)
            }),
            Some(person_token(&hasher, 2, who)),
        ]
    });
    fs::write(done, "").expect("mark the input prepared");
}

pub fn link(scratch: &Path, quick: bool, limit: Option<u64>) -> serde_json::Value {
    prepared("link", scratch, quick);
    let (_, persons, events) = sizes(quick);
    let mut cfg = linklab_link::LinkConfig::new(
        LINK_KEYS.iter().map(|k| (*k).to_owned()).collect(),
        "spine",
        vec!["spine".into(), "events".into()],
        link_work(scratch),
        scratch.join("link").join("project.key"),
    );
    if let Some(limit) = limit {
        cfg.memory_limit = limit;
    }
    let start = Instant::now();
    let report = linklab_link::run(&cfg, &NoProgress).expect("link runs");
    let secs = start.elapsed().as_secs_f64();
    let records = persons + persons / 20 + events;
    let linked: u64 = report
        .extracts
        .iter()
        .filter(|e| e.name == "events")
        .map(|e| e.linked)
        .sum();
    json!({
        "what": format!(
            "spine of {persons} persons ({} records) and an extract of {events} records, 3 match keys, \
             Parquet in and out{}",
            persons + persons / 20,
            limit.map_or_else(
                || ", default memory_limit (in memory)".to_owned(),
                |l| format!(", memory_limit = {} MiB (partitioned and spilled)", l >> 20)
            )
        ),
        "result": format!(
            "{:.2} M records/s ({secs:.1} s; {linked} of {events} extract records linked)",
            records as f64 / secs / 1e6
        ),
        "records_per_second": records as f64 / secs,
        "partitions": report.partitions,
        "memory_limit_mib": limit.map(|l| l >> 20),
    })
}

/// The cascade of the link stage, as SQL: one join per match key on one token column, the
/// first key that finds the token decides, an ambiguous token stops the cascade.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, time
import duckdb
work, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
keys = ["nino", "name_dob_sex", "soundex_initial_dob"]
start = time.time()
con.execute(f"CREATE TABLE spine AS SELECT record_id AS person, * EXCLUDE (record_id) FROM read_parquet('{work}/pseudonymised/spine/*.parquet')")
for k in keys:
    con.execute(f"""CREATE TABLE p_{k} AS SELECT tok_{k} AS tok,
        CASE WHEN COUNT(DISTINCT person) = 1 THEN MIN(person) END AS person
        FROM spine WHERE tok_{k} IS NOT NULL GROUP BY tok_{k}""")
joins = " ".join(f"LEFT JOIN p_{k} ON e.tok_{k} = p_{k}.tok" for k in keys)
person = "CASE " + " ".join(f"WHEN p_{k}.tok IS NOT NULL THEN p_{k}.person" for k in keys) + " END"
key = "CASE " + " ".join(f"WHEN p_{k}.tok IS NOT NULL AND p_{k}.person IS NOT NULL THEN '{k}'" for k in keys) + " END"
con.execute(f"""COPY (SELECT e.record_id, CAST({person} AS VARCHAR) AS person_id, {key} AS match_key
    FROM read_parquet('{work}/pseudonymised/events/*.parquet') e {joins})
    TO '{work}/duckdb-linked.parquet' (FORMAT parquet, COMPRESSION zstd)""")
linked = con.execute(f"SELECT COUNT(person_id) FROM read_parquet('{work}/duckdb-linked.parquet')").fetchone()[0]
seconds = time.time() - start
peak = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) // 1024
print(json.dumps({"seconds": seconds, "linked": linked, "peak_rss_mib": peak, "version": duckdb.__version__}))
"#;

pub fn link_duckdb(scratch: &Path, quick: bool) -> serde_json::Value {
    prepared("link", scratch, quick);
    let (_, persons, events) = sizes(quick);
    let records = persons + persons / 20 + events;
    let python = std::env::var("LINKLAB_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = scratch.join("link").join("cascade.py");
    fs::write(&script, DUCKDB_SCRIPT).expect("write the script");
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let output = Command::new(&python)
        .arg(&script)
        .arg(link_work(scratch).root())
        .arg(threads.to_string())
        .output();
    let what = format!(
        "the same files and cascade as `link`, as SQL in DuckDB ({threads} threads; spine records \
         are persons, without clustering)"
    );
    let parsed = output.ok().filter(|o| o.status.success()).and_then(|o| {
        serde_json::from_slice::<serde_json::Value>(String::from_utf8_lossy(&o.stdout).trim().as_bytes()).ok()
    });
    let Some(result) = parsed else {
        return json!({
            "what": what,
            "result": format!("not run: `{python}` cannot import duckdb (set LINKLAB_BENCH_PYTHON to a Python with `pip install duckdb`)"),
        });
    };
    let secs = result["seconds"].as_f64().unwrap_or(f64::NAN);
    json!({
        "what": format!("{what}, DuckDB {}", result["version"].as_str().unwrap_or("?")),
        "result": format!(
            "{:.2} M records/s ({secs:.1} s; {} of {events} extract records linked)",
            records as f64 / secs / 1e6,
            result["linked"]
        ),
        "records_per_second": records as f64 / secs,
        "peak_rss_mib": result["peak_rss_mib"],
    })
}

/// Small-cell protection of one 3-dimensional count table: primary and secondary suppression
/// and the audit, on counts where about 30% of the inner cells are below the threshold.
pub fn release(quick: bool) -> serde_json::Value {
    let sizes: &[usize] = if quick { &[10, 10, 10] } else { &[40, 25, 20] };
    protect(sizes, 1)
}

/// Small-cell protection of one generated count table of the given shape (`linklab-bench table
/// 40x25x20 [SEED]` runs it on its own).
pub fn protect(sizes: &[usize], seed: u64) -> serde_json::Value {
    let counts = crate::counts::table_counts(sizes, seed);
    let rules = linklab_release::DisclosureRules::default();
    let start = Instant::now();
    let table = linklab_release::protect_table(sizes, &counts, &rules).expect("the table is protected");
    let secs = start.elapsed().as_secs_f64();
    let count =
        |status: linklab_release::CellStatus| table.cells.iter().filter(|c| c.status == status).count();
    let small = counts.iter().filter(|&&c| c < rules.threshold).count();
    let primary = count(linklab_release::CellStatus::Primary);
    let secondary = count(linklab_release::CellStatus::Secondary);
    json!({
        "what": format!(
            "a {} table ({} inner cells, {small} below the threshold {}), margins for every \
             combination of dimensions, secondary suppression and the audit",
            sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join("×"),
            counts.len(),
            rules.threshold
        ),
        "result": format!(
            "{secs:.2} s ({primary} primary, {secondary} secondary suppressions; {} rounds); utility: {} of {} cells with margins suppressed ({:.1}%), no figures to coarsen",
            table.rounds,
            primary + secondary,
            table.cells.len(),
            100.0 * (primary + secondary) as f64 / table.cells.len() as f64
        ),
        "seconds": secs,
    })
}
