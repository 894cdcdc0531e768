//! Rough throughput check: `cargo run --release -p linklab-pseudonymise --example throughput -- ROWS`.
//! Generates a CSV with 5 identifiers and 3 keep columns in a temp folder, runs the stage on it
//! and prints the rows per second. The benchmark proper lives in the bench crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use chrono::NaiveDate;
use linklab_pseudonymise::{Identifier, InputFormat, PseudonymiseConfig, run};
use linklab_store::{NoProgress, WorkDir};
use linklab_tokens::{FieldKind, MatchKey};

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("extract.csv");
    let mut text =
        String::from("first_name,last_name,birth_date,sex,ni_number,release_date,offence_group,area\n");
    let names = [
        "Mary Ann", "José", "O'Brien", "smith", "Lee", "Nguyen", "Wójcik", "Patel",
    ];
    for i in 0..rows {
        let _ = writeln!(
            text,
            "{},{},{:02}/{:02}/{},{},AB{:06}C,2024-{:02}-{:02},{},{}",
            names[i % 8],
            names[(i / 8) % 8],
            1 + i % 28,
            1 + i % 12,
            1940 + i % 60,
            if i % 2 == 0 { "M" } else { "F" },
            i % 1_000_000,
            1 + i % 12,
            1 + i % 28,
            i % 17,
            i % 300
        );
    }
    std::fs::write(&input, text).expect("write input");
    let key = dir.path().join("key");
    std::fs::write(
        &key,
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
    )
    .expect("key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let ident = |name: &str, column: &str, kind| Identifier {
        name: name.into(),
        column: column.into(),
        kind,
    };
    let cfg = PseudonymiseConfig {
        extract: "bench".into(),
        input,
        format: InputFormat::CSV,
        identifiers: vec![
            ident("forename", "first_name", FieldKind::Forename),
            ident("surname", "last_name", FieldKind::Name),
            ident("dob", "birth_date", FieldKind::Dob),
            ident("sex", "sex", FieldKind::Sex),
            ident("nino", "ni_number", FieldKind::Nino),
        ],
        keep: vec!["release_date".into(), "offence_group".into(), "area".into()],
        types: BTreeMap::new(),
        match_keys: vec![
            MatchKey::parse("nino", &["nino"], false).expect("key"),
            MatchKey::parse("name_dob_sex", &["forename", "surname", "dob", "sex"], false).expect("key"),
            MatchKey::parse(
                "soundex_initial_dob",
                &["soundex(surname)", "initial(forename)", "dob"],
                false,
            )
            .expect("key"),
        ],
        key_file: key,
        work_dir: WorkDir::new(dir.path().join("work")),
        max_reject_fraction: 0.01,
        batch_rows: linklab_pseudonymise::DEFAULT_BATCH_ROWS,
        today: NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
        partition: None,
    };
    let start = Instant::now();
    let manifest = run(&cfg, &NoProgress).expect("run");
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{} rows in {seconds:.2} s: {:.0} rows/s ({} parts)",
        manifest.rows.written,
        manifest.rows.written as f64 / seconds,
        manifest.parts.len()
    );
}
