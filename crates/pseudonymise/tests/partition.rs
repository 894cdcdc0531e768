//! Partitioned runs: the union of the partitions' outputs is the single run's output, row for
//! row, and the merged manifest accounts for the records as the single run's does.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use common::{Fixture, render_rows};
use linklab_pseudonymise::{
    Encoding, InputFormat, PseudonymiseConfig, PseudonymiseError, PseudonymiseManifest, merge_partitions,
    needs_merge,
};
use linklab_store::{NoProgress, WorkDir};
use proptest::prelude::*;

const HEADER: &str = "first_name,last_name,birth_date,sex,ni_number,release_date,offence_group,notes\n";

/// A CSV extract with quoted fields that hold line breaks, commas and quotes, CRLF and LF line
/// ends, blank lines, ragged rows and a Windows-1252 byte.
fn awkward_csv(rows: usize) -> Vec<u8> {
    let mut csv = HEADER.to_owned();
    for i in 0..rows {
        let end = if i % 3 == 0 { "\r\n" } else { "\n" };
        match i % 11 {
            0 => {
                let _ = write!(
                    csv,
                    "\"Ann\",\"Lee, \"\"the\"\"\nyounger\",1980-01-{:02},F,AB{i:06},2024-02-01,{i},\"a\r\nb,\nc\"{end}",
                    1 + i % 28
                );
            }
            4 => {
                let _ = write!(csv, "Bob,Ray,1975-05-05,M{end}");
            }
            7 => {
                let _ = write!(csv, "\n\"Cy\",Fox,19900101,M,,2023-12-31,{i},\"\"\"\"{end}");
            }
            _ => {
                let _ = write!(csv, "Dee,Kim{i},1960-03-03,F,CD{i:06},,{i},x\"y{end}");
            }
        }
    }
    let mut bytes = csv.into_bytes();
    // A Windows-1252 é in the middle, and a last record without a line end.
    bytes.extend_from_slice(b"Zo\xe9,Lee,1980-01-01,F,,,1,\n");
    bytes.extend_from_slice(b"Eve,Ash,1999-09-09,F,EF123456,2024-01-01,9,\"end\"");
    bytes
}

fn config(fx: &Fixture, input: &str, work: &str) -> PseudonymiseConfig {
    let mut cfg = fx.config(input);
    cfg.work_dir = WorkDir::new(fx.path(work));
    cfg.batch_rows = 16;
    cfg
}

fn run(cfg: &PseudonymiseConfig) -> Result<PseudonymiseManifest, PseudonymiseError> {
    linklab_pseudonymise::run(cfg, &NoProgress)
}

/// Runs partitions `which` of `n` into `work`.
fn run_partitions(cfg: &PseudonymiseConfig, n: u32, which: impl IntoIterator<Item = u32>) {
    for i in which {
        let mut part = cfg.clone();
        part.partition = Some((i, n));
        run(&part).unwrap_or_else(|e| panic!("partition {i}/{n}: {e}"));
    }
}

/// The manifest without what differs between a single and a merged run (the part files, and
/// the physical line count, which only a single run records).
fn comparable(m: &PseudonymiseManifest) -> PseudonymiseManifest {
    let mut input = m.input.clone();
    input.lines = None;
    PseudonymiseManifest {
        input,
        parts: Vec::new(),
        partitions: None,
        ..m.clone()
    }
}

/// Checks that every N in `ns` reproduces the single run on `cfg`'s input.
fn check_union(fx: &Fixture, cfg: &PseudonymiseConfig, ns: impl IntoIterator<Item = u32>) {
    let single = run(cfg).expect("single run");
    let single_rows = render_rows(&cfg.work_dir.pseudonymised("releases"));
    assert_eq!(single_rows.len() as u64, single.rows.written);
    for n in ns {
        let mut p = cfg.clone();
        p.work_dir = WorkDir::new(fx.path(&format!("work-{n}")));
        run_partitions(&p, n, 1..=n);
        assert!(needs_merge(&p.work_dir, "releases").unwrap());
        let merged = merge_partitions(&p.work_dir, "releases", cfg.max_reject_fraction)
            .unwrap_or_else(|e| panic!("merge of {n}: {e}"));
        assert!(!needs_merge(&p.work_dir, "releases").unwrap());
        assert_eq!(merged.partitions, Some(n));
        assert_eq!(comparable(&merged), comparable(&single), "N = {n}");
        let on_disk: PseudonymiseManifest =
            linklab_store::read_json(&p.work_dir.pseudonymised_manifest("releases")).unwrap();
        assert_eq!(on_disk, merged);
        let rows = render_rows(&p.work_dir.pseudonymised("releases"));
        assert_eq!(rows, single_rows, "N = {n}");
    }
}

#[test]
fn partitions_of_an_awkward_csv_add_up_to_the_single_run() {
    let fx = Fixture::new();
    fx.write("releases.csv", &awkward_csv(60));
    let cfg = config(&fx, "releases.csv", "work");
    check_union(&fx, &cfg, 1..=4);
    // The same file read as Windows-1252 has no encoding rejects.
    let mut latin = config(&fx, "releases.csv", "latin");
    latin.format = InputFormat::Csv {
        delimiter: b',',
        encoding: Encoding::Windows1252,
    };
    let fx2 = Fixture::new();
    fx2.write("releases.csv", &awkward_csv(25));
    let mut latin2 = config(&fx2, "releases.csv", "work");
    latin2.format = latin.format;
    check_union(&fx2, &latin2, [2, 3, 7]);
}

#[test]
fn partitions_with_comparison_tokens_add_up_to_the_single_run() {
    let fx = Fixture::new();
    fx.write("releases.csv", &awkward_csv(40));
    let mut cfg = config(&fx, "releases.csv", "work");
    cfg.compare = vec!["surname".into(), "dob".into(), "nino".into()];
    check_union(&fx, &cfg, [1, 3]);
}

#[test]
fn the_merged_manifest_lists_global_rejects() {
    let fx = Fixture::new();
    fx.write("releases.csv", &awkward_csv(30));
    let cfg = config(&fx, "releases.csv", "work");
    run_partitions(&cfg, 3, 1..=3);
    let merged = merge_partitions(&cfg.work_dir, "releases", 0.5).unwrap();
    let mut shown = serde_json::to_value(&merged).unwrap();
    for part in shown["parts"].as_array_mut().unwrap() {
        part["sha256"] = "[sha]".into();
    }
    shown["input"]["path"] = "[input]".into();
    shown["tool_version"] = "[version]".into();
    insta::assert_json_snapshot!(shown);
}

/// A merge error, with the temp folder hidden.
fn merge_error(fx: &Fixture, cfg: &PseudonymiseConfig) -> String {
    let err = merge_partitions(&cfg.work_dir, "releases", cfg.max_reject_fraction).unwrap_err();
    err.to_string()
        .replace(&fx.dir.path().display().to_string(), "[tmp]")
}

#[test]
fn incomplete_or_inconsistent_partitions_are_refused() {
    let fx = Fixture::new();
    fx.write("releases.csv", &awkward_csv(30));
    let mut errors = Vec::new();
    let pseudonymised = |cfg: &PseudonymiseConfig| cfg.work_dir.root().join("pseudonymised");

    let cfg = config(&fx, "releases.csv", "none");
    errors.push(format!("nothing to merge\n  {}", merge_error(&fx, &cfg)));

    let cfg = config(&fx, "releases.csv", "missing");
    run_partitions(&cfg, 4, [1, 3]);
    errors.push(format!(
        "partitions 2 and 4 missing\n  {}",
        merge_error(&fx, &cfg)
    ));
    assert!(!cfg.work_dir.pseudonymised_manifest("releases").exists());

    let cfg = config(&fx, "releases.csv", "duplicated");
    run_partitions(&cfg, 3, [1, 3]);
    let dir = pseudonymised(&cfg);
    std::fs::copy(
        dir.join("releases.manifest.part-0001-of-0003.json"),
        dir.join("releases.manifest.part-0002-of-0003.json"),
    )
    .unwrap();
    errors.push(format!("partition 1 copied as 2\n  {}", merge_error(&fx, &cfg)));

    let cfg = config(&fx, "releases.csv", "mixed");
    run_partitions(&cfg, 2, [1, 2]);
    run_partitions(&cfg, 3, [2]);
    errors.push(format!("partitions of 2 and of 3\n  {}", merge_error(&fx, &cfg)));

    let cfg = config(&fx, "releases.csv", "changed");
    run_partitions(&cfg, 2, [1]);
    fx.write("releases.csv", &awkward_csv(31));
    run_partitions(&cfg, 2, [2]);
    errors.push(format!(
        "input changed between partitions\n  {}",
        merge_error(&fx, &cfg)
    ));
    fx.write("releases.csv", &awkward_csv(30));

    let cfg = config(&fx, "releases.csv", "tampered");
    run_partitions(&cfg, 2, [1, 2]);
    let part = pseudonymised(&cfg).join("releases/part-p0002of0002-00000.parquet");
    std::fs::remove_file(&part).unwrap();
    errors.push(format!("a part file removed\n  {}", merge_error(&fx, &cfg)));

    let cfg = config(&fx, "releases.csv", "stale");
    run(&cfg).unwrap();
    run_partitions(&cfg, 2, [1, 2]);
    // A single run's parts are removed by the partitions; another run's parts are refused.
    std::fs::write(
        pseudonymised(&cfg).join("releases/part-p0001of0003-00000.parquet"),
        b"x",
    )
    .unwrap();
    errors.push(format!("a stray part file\n  {}", merge_error(&fx, &cfg)));

    let mut cfg = config(&fx, "releases.csv", "rejects");
    run_partitions(&cfg, 2, [1, 2]);
    cfg.max_reject_fraction = 0.0;
    errors.push(format!("too many rejects overall\n  {}", merge_error(&fx, &cfg)));

    let mut cfg = config(&fx, "releases.csv", "bad");
    cfg.partition = Some((3, 2));
    let err = run(&cfg).unwrap_err();
    errors.push(format!("partition 3 of 2\n  {err}"));
    insta::assert_snapshot!(errors.join("\n"));
}

#[test]
fn a_rerun_partition_replaces_only_its_own_parts() {
    let fx = Fixture::new();
    fx.write("releases.csv", &awkward_csv(40));
    let cfg = config(&fx, "releases.csv", "work");
    run_partitions(&cfg, 3, 1..=3);
    let first = merge_partitions(&cfg.work_dir, "releases", 0.5).unwrap();
    run_partitions(&cfg, 3, [2]);
    // The merged manifest went with the old parts of partition 2.
    assert!(!cfg.work_dir.pseudonymised_manifest("releases").exists());
    assert!(needs_merge(&cfg.work_dir, "releases").unwrap());
    let second = merge_partitions(&cfg.work_dir, "releases", 0.5).unwrap();
    assert_eq!(comparable(&first), comparable(&second));
    let names = |m: &PseudonymiseManifest| m.parts.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&first), names(&second));
    // A single run afterwards removes the partial manifests.
    run(&cfg).unwrap();
    assert!(!needs_merge(&cfg.work_dir, "releases").unwrap());
    assert!(
        linklab_pseudonymise::partial_manifest_paths(&cfg.work_dir, "releases")
            .unwrap()
            .is_empty()
    );
}

fn write_parquet(path: &Path, rows: usize, group_rows: usize) {
    let n = |i: usize| i64::try_from(i).unwrap();
    let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
        Arc::new(StringArray::from((0..rows).map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("first_name", text(&|i| format!("Ann{}", i % 5))),
        ("last_name", text(&|i| format!("Lee{i}"))),
        ("birth_date", text(&|i| format!("1980-01-{:02}", 1 + i % 28))),
        ("sex", text(&|i| if i % 2 == 0 { "F".into() } else { "M".into() })),
        ("ni_number", text(&|i| format!("AB{i:06}"))),
        (
            "release_date",
            text(&|i| {
                if i < 3 {
                    "2024-01-01".into()
                } else {
                    format!("x{i}")
                }
            }),
        ),
        (
            "offence_group",
            Arc::new(Int64Array::from_iter_values((0..rows).map(n))),
        ),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(props))
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn parquet_partitions_by_row_group() {
    let fx = Fixture::new();
    write_parquet(&fx.path("releases.parquet"), 50, 7);
    let mut cfg = config(&fx, "releases.parquet", "work");
    cfg.format = InputFormat::Parquet;
    cfg.batch_rows = 5;
    // `release_date` is text: the first batch (5 rows) holds dates and text alike, so every
    // partition must take the type from the file's first rows, not from its own.
    check_union(&fx, &cfg, [1, 2, 3, 4, 9]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn any_number_of_partitions_adds_up(rows in 0_usize..40, n in 1_u32..9, batch_rows in 1_usize..20) {
        let fx = Fixture::new();
        fx.write("releases.csv", &awkward_csv(rows));
        let mut cfg = config(&fx, "releases.csv", "work");
        cfg.batch_rows = batch_rows;
        cfg.max_reject_fraction = 1.0;
        check_union(&fx, &cfg, [n]);
    }
}
