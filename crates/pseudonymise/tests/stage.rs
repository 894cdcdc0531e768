//! End-to-end tests of the pseudonymise stage on small generated extracts.

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use common::{Fixture, render_rows, schema_of, tok};
use linklab_extract::ExtractError;
use linklab_pseudonymise::{ColumnType, Encoding, InputFormat, PseudonymiseConfig, PseudonymiseError};
use linklab_store::WorkDir;
use linklab_tokens::MatchKey;
use proptest::prelude::*;

const HEADER: &str = "first_name,last_name,birth_date,sex,ni_number,release_date,offence_group,notes\n";

/// Runs the demo configuration (changed by `change`) on `csv` and compares the output rows.
fn check(csv: &str, change: impl FnOnce(&mut PseudonymiseConfig), expected: &[String]) {
    let fx = Fixture::new();
    fx.write("releases.csv", csv.as_bytes());
    let mut cfg = fx.config("releases.csv");
    change(&mut cfg);
    let manifest = fx.run(&cfg).unwrap_or_else(|e| panic!("run failed: {e}"));
    assert_eq!(fx.output("releases"), expected, "input:\n{csv}");
    assert_eq!(manifest.rows.read, manifest.rows.written + manifest.rows.rejected);
}

/// The demo tokens of one person, rendered like [`render_rows`] output (without keep columns).
fn tokens(forename: &str, surname: &str, soundex: &str, dob: &str, sex: &str, nino: Option<&str>) -> String {
    let nino = nino.map_or("null".to_owned(), |n| tok("nino", &[n]));
    let initial = &forename[..1];
    format!(
        "tok_nino={nino} tok_name_dob_sex={} tok_soundex_initial_dob={}",
        tok("name_dob_sex", &[forename, surname, dob, sex]),
        tok("soundex_initial_dob", &[soundex, initial, dob])
    )
}

#[test]
fn tiny_round_trip_matches_the_token_hasher() {
    let csv = format!(
        "{HEADER}José,O'Brien,29/02/1984,f,ab 12 34 56 c,2024-01-31,violence,ZQXNOTES\n\
         mary ann,Smith,1990-05-06,M,,20230101,theft,\n"
    );
    check(
        &csv,
        |_| {},
        &[
            format!(
                "{} release_date=2024-01-31 sex=F offence_group=violence",
                tokens("JOSE", "OBRIEN", "O165", "19840229", "F", Some("AB123456"))
            ),
            format!(
                "{} release_date=2023-01-01 sex=M offence_group=theft",
                tokens("MARY", "SMITH", "S530", "19900506", "M", None)
            ),
        ],
    );
    // The spec's test vector comes out of the whole stage.
    assert!(tok("nino", &["AB123456"]).starts_with("36f92f7f"));
}

/// A kept sex identifier leaves the stage as `M`, `F` or null, never as the text in the file,
/// whatever the name it is kept under resolves to.
#[test]
fn a_kept_sex_passes_only_as_its_standardised_value() {
    let csv = format!(
        "{HEADER}Ann,Lee,1980-01-01, Female ,,,a,\n\
         Bob,Lee,1980-01-01,1,,,a,\n\
         Cat,Lee,1980-01-01,ZQXCANARY QQ123456C,,,a,\n\
         Dan,Lee,1980-01-01,,,,a,\n"
    );
    for keep in ["sex", " sex", "sex "] {
        let fx = Fixture::new();
        fx.write("releases.csv", csv.as_bytes());
        let mut cfg = fx.config("releases.csv");
        cfg.keep = vec![keep.into()];
        let manifest = fx.run(&cfg).unwrap_or_else(|e| panic!("run failed: {e}"));
        let sexes: Vec<String> = fx
            .output("releases")
            .iter()
            .map(|row| row[row.rfind(&format!("{keep}=")).unwrap()..].to_owned())
            .collect();
        let expected: Vec<String> = ["F", "M", "null", "null"]
            .iter()
            .map(|v| format!("{keep}={v}"))
            .collect();
        assert_eq!(sexes, expected, "keep {keep:?}");
        let column = manifest.columns.iter().find(|c| c.name == keep).unwrap();
        assert_eq!(
            (column.ty.as_str(), column.origin.as_str()),
            ("string", "standardised")
        );
        assert_eq!(manifest.missing["sex"]["bad_sex"], 1);
        // No byte of the free text anywhere in the work folder.
        for entry in walk(&fx.path("work")) {
            let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).to_ascii_uppercase();
            assert!(!text.contains("ZQXCANARY"), "{}", entry.display());
        }
    }
}

/// A kept sex is text: a declared type other than string is refused.
#[test]
fn a_kept_sex_cannot_be_typed() {
    let fx = Fixture::new();
    fx.write("releases.csv", HEADER.as_bytes());
    let mut cfg = fx.config("releases.csv");
    cfg.types.insert("sex".into(), ColumnType::Int);
    let err = fx.run(&cfg).unwrap_err();
    insta::assert_snapshot!(fx.message(&err), @"extract `releases`: keep column `sex` is the sex identifier `sex`, which is kept as its standardised value (M, F or missing), so its type can only be string");
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn missing_components_make_null_tokens_and_are_counted() {
    let fx = Fixture::new();
    let csv = format!(
        "{HEADER}Ann,---,1983-02-29,X,TN123456A,,a,\n\
         Ann,Lee,2026-01-01,F,AB123456,,a,\n\
         ,Lee,1899-12-31,F,AB 123,,a,\n"
    );
    fx.write("releases.csv", csv.as_bytes());
    let manifest = fx.run(&fx.config("releases.csv")).unwrap();
    insta::assert_json_snapshot!(manifest.missing);
    let nulls: Vec<(String, u64)> = manifest
        .match_keys
        .iter()
        .map(|k| (k.name.clone(), k.null_tokens))
        .collect();
    assert_eq!(
        nulls,
        [
            ("nino".into(), 2),
            ("name_dob_sex".into(), 3),
            ("soundex_initial_dob".into(), 3)
        ]
    );
    let rows = fx.output("releases");
    assert_eq!(
        rows[1],
        format!(
            "tok_nino={} tok_name_dob_sex=null tok_soundex_initial_dob=null release_date=null sex=F offence_group=a",
            tok("nino", &["AB123456"])
        )
    );
}

#[test]
fn the_manifest_accounts_for_everything() {
    let fx = Fixture::new();
    let csv = format!(
        "{HEADER}Ann,Lee,1980-01-01,F,AB123456,2024-01-01,a,\nragged,row\nBob,Ray,1970-01-01,M,,2024-01-02,b,\n"
    );
    fx.write("releases.csv", csv.as_bytes());
    let mut cfg = fx.config("releases.csv");
    cfg.match_keys
        .push(MatchKey::parse("postcode_dob", &["postcode", "dob"], false).unwrap());
    cfg.types.insert("offence_group".into(), ColumnType::String);
    let manifest = fx.run(&cfg).unwrap();
    let mut json = serde_json::to_value(&manifest).unwrap();
    json["input"]["path"] = "[input]".into();
    json["tool_version"] = "[version]".into();
    for part in json["parts"].as_array_mut().unwrap() {
        part["sha256"] = "[sha256]".into();
    }
    insta::assert_json_snapshot!(json);
    // The manifest on disk is the one returned.
    let on_disk: linklab_pseudonymise::PseudonymiseManifest =
        linklab_store::read_json(&WorkDir::new(fx.path("work")).pseudonymised_manifest("releases")).unwrap();
    assert_eq!(on_disk, manifest);
    let part = WorkDir::new(fx.path("work"))
        .pseudonymised("releases")
        .join("part-00000.parquet");
    assert_eq!(
        manifest.parts[0].sha256,
        linklab_store::sha256_file(&part).unwrap()
    );
    assert_eq!(
        schema_of(&WorkDir::new(fx.path("work")).pseudonymised("releases")),
        [
            "tok_nino: FixedSizeBinary(32)",
            "tok_name_dob_sex: FixedSizeBinary(32)",
            "tok_soundex_initial_dob: FixedSizeBinary(32)",
            "release_date: Date32",
            "sex: Utf8",
            "offence_group: Utf8",
        ]
    );
}

#[test]
fn bom_and_windows_1252() {
    let expected = |forename: &str, soundex: &str, surname: &str| {
        vec![format!(
            "{} release_date=null sex=F offence_group=a",
            tokens(forename, surname, soundex, "19800101", "F", None)
        )]
    };
    // A UTF-8 byte-order mark before the header.
    check(
        &format!("\u{feff}{HEADER}Zoë,Brontë,1980-01-01,F,,,a,\n"),
        |_| {},
        &expected("ZOE", "B653", "BRONTE"),
    );
    // The same names in Windows-1252 give the same tokens.
    let fx = Fixture::new();
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"Zo\xeb,Bront\xeb,1980-01-01,F,,,a,\n");
    fx.write("releases.csv", &bytes);
    let mut cfg = fx.config("releases.csv");
    cfg.format = InputFormat::Csv {
        delimiter: b',',
        encoding: Encoding::Windows1252,
    };
    fx.run(&cfg).unwrap();
    assert_eq!(fx.output("releases"), expected("ZOE", "B653", "BRONTE"));
}

#[test]
fn semicolons_and_quotes() {
    let csv = "first_name;last_name;birth_date;sex;ni_number;release_date;offence_group\n\
               \"Lee; Ann\";\"Ray\nRay\";19800101;F;;;\"a;b\"\n";
    check(
        csv,
        |cfg| {
            cfg.format = InputFormat::Csv {
                delimiter: b';',
                encoding: Encoding::Utf8,
            }
        },
        &[format!(
            "{} release_date=null sex=F offence_group=a;b",
            tokens("LEE", "RAYRAY", "R600", "19800101", "F", None)
        )],
    );
}

#[test]
fn type_inference_and_overrides() {
    let csv = format!("{HEADER}A,B,1980-01-01,1,,31/01/2024,7,\nA,B,1980-01-01,2,,,-12,\n");
    check(
        &csv,
        |_| {},
        &[
            format!(
                "{} release_date=2024-01-31 sex=M offence_group=7",
                tokens("A", "B", "B000", "19800101", "M", None)
            ),
            format!(
                "{} release_date=null sex=F offence_group=-12",
                tokens("A", "B", "B000", "19800101", "F", None)
            ),
        ],
    );
    let fx = Fixture::new();
    fx.write("releases.csv", csv.as_bytes());
    fx.run(&fx.config("releases.csv")).unwrap();
    let dir = WorkDir::new(fx.path("work")).pseudonymised("releases");
    assert_eq!(
        schema_of(&dir)[3..],
        ["release_date: Date32", "sex: Utf8", "offence_group: Int64"]
    );
    let mut cfg = fx.config("releases.csv");
    cfg.types.insert("offence_group".into(), ColumnType::Float);
    cfg.types.insert("release_date".into(), ColumnType::String);
    let manifest = fx.run(&cfg).unwrap();
    assert_eq!(
        schema_of(&dir)[3..],
        ["release_date: Utf8", "sex: Utf8", "offence_group: Float64"]
    );
    let origins: Vec<String> = manifest
        .columns
        .iter()
        .map(|c| format!("{} {} {}", c.name, c.ty, c.origin))
        .collect();
    assert_eq!(
        origins[3..],
        [
            "release_date string declared",
            "sex string standardised",
            "offence_group float64 declared"
        ]
    );
}

#[test]
fn a_late_value_that_does_not_fit_stops_the_stage() {
    let fx = Fixture::new();
    let csv = format!(
        "{HEADER}A,B,1980-01-01,F,,2024-01-01,1,\nA,B,1980-01-01,F,,2024-01-02,2,\nA,B,1980-01-01,F,,2024-01-03,ZQXTHREE,\n"
    );
    fx.write("releases.csv", csv.as_bytes());
    let mut cfg = fx.config("releases.csv");
    cfg.batch_rows = 2;
    let err = fx.run(&cfg).unwrap_err();
    insta::assert_snapshot!(fx.message(&err));
    assert!(!WorkDir::new(fx.path("work")).pseudonymised("releases").exists());
    // A declared type that does not fit is reported as declared.
    cfg.types.insert("release_date".into(), ColumnType::Int);
    insta::assert_snapshot!("declared_type_mismatch", fx.message(&fx.run(&cfg).unwrap_err()));
    // The override the message suggests makes it pass.
    cfg.types.clear();
    cfg.types.insert("offence_group".into(), ColumnType::String);
    fx.run(&cfg).unwrap();
}

/// Every broken input gets a clear error or counted rejects, never a panic.
#[test]
fn malformed_inputs() {
    let fx = Fixture::new();
    let good = "Ann,Lee,1980-01-01,F,AB123456,,a,\n";
    let mut errors = Vec::new();
    let mut attempt = |name: &str, bytes: &[u8], change: &dyn Fn(&mut PseudonymiseConfig)| {
        fx.write("releases.csv", bytes);
        let mut cfg = fx.config("releases.csv");
        change(&mut cfg);
        let outcome = match fx.run(&cfg) {
            Ok(m) => format!(
                "ok: read {} written {} rejected {}",
                m.rows.read, m.rows.written, m.rows.rejected
            ),
            Err(e) => format!("error: {}", fx.message(&e)),
        };
        errors.push(format!("{name}\n  {outcome}"));
    };
    // The wrong delimiter: the header is one column, so the columns are missing (a missing-column
    // error rather than rejects: it is caught before any record is read).
    attempt(
        "semicolon file read as comma",
        HEADER.replace(',', ";").as_bytes(),
        &|_| {},
    );
    // Comma file read as semicolon.
    attempt(
        "comma file read as semicolon",
        format!("{HEADER}{good}").as_bytes(),
        &|cfg| {
            cfg.format = InputFormat::Csv {
                delimiter: b';',
                encoding: Encoding::Utf8,
            };
        },
    );
    attempt(
        "one ragged row of three",
        format!("{HEADER}{good}{good}Ann,Lee\n").as_bytes(),
        &|_| {},
    );
    attempt(
        "ragged rows above the threshold",
        format!("{HEADER}{good}a\nb\n").as_bytes(),
        &|_| {},
    );
    let mut latin = format!("{HEADER}{good}").into_bytes();
    latin.extend_from_slice(b"Zo\xeb,Lee,1980-01-01,F,,,a,\n");
    attempt("windows-1252 read as utf-8, threshold 0", &latin, &|cfg| {
        cfg.max_reject_fraction = 0.0;
    });
    attempt("empty file", b"", &|_| {});
    attempt("header only", HEADER.as_bytes(), &|_| {});
    attempt("missing column", b"first_name,last_name\nA,B\n", &|_| {});
    attempt("partitioned", HEADER.as_bytes(), &|cfg| {
        cfg.partition = Some((0, 2));
    });
    attempt("weak key", HEADER.as_bytes(), &|cfg| {
        cfg.match_keys
            .push(MatchKey::parse("dob", &["dob"], false).unwrap());
    });
    attempt("no usable key", HEADER.as_bytes(), &|cfg| {
        cfg.match_keys = vec![MatchKey::parse("pc", &["postcode"], false).unwrap()];
    });
    attempt("identifier kept", HEADER.as_bytes(), &|cfg| {
        cfg.keep.push("ni_number".into());
    });
    attempt(
        "identifier kept under a name with spaces",
        HEADER.as_bytes(),
        &|cfg| {
            cfg.keep.push(" ni_number ".into());
        },
    );
    attempt("bad threshold", HEADER.as_bytes(), &|cfg| {
        cfg.max_reject_fraction = f64::NAN;
    });
    attempt("types for an unkept column", HEADER.as_bytes(), &|cfg| {
        cfg.types.insert("notes".into(), ColumnType::String);
    });
    attempt("missing input", HEADER.as_bytes(), &|cfg| {
        cfg.input = cfg.input.with_file_name("nope.csv");
    });
    for (name, key, mode) in [
        ("key readable by others", format!("{}\n", common::KEY_HEX), 0o644),
        ("short key", "0011223344\n".to_owned(), 0o600),
        ("non-hex key", format!("{}zz\n", &common::KEY_HEX[..62]), 0o600),
    ] {
        fx.write_key(&key, mode);
        attempt(name, format!("{HEADER}{good}").as_bytes(), &|_| {});
    }
    fx.write_key(common::KEY_HEX, 0o600);
    insta::assert_snapshot!(errors.join("\n"));
}

#[test]
fn a_failed_run_leaves_the_previous_output_intact() {
    let fx = Fixture::new();
    fx.write(
        "releases.csv",
        format!("{HEADER}Ann,Lee,1980-01-01,F,AB123456,,a,\n").as_bytes(),
    );
    let cfg = fx.config("releases.csv");
    let first = fx.run(&cfg).unwrap();
    let before = fx.output("releases");
    fx.write("releases.csv", format!("{HEADER}a\nb\nc\n").as_bytes());
    assert!(matches!(
        fx.run(&cfg),
        Err(PseudonymiseError::TooManyRejects { .. })
    ));
    assert_eq!(fx.output("releases"), before);
    let work = WorkDir::new(fx.path("work"));
    let manifest: linklab_pseudonymise::PseudonymiseManifest =
        linklab_store::read_json(&work.pseudonymised_manifest("releases")).unwrap();
    assert_eq!(manifest, first);
    let mut names: Vec<String> = std::fs::read_dir(work.root().join("pseudonymised"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["releases", "releases.manifest.json"],
        "no staging folder is left"
    );
}

#[test]
fn header_only_gives_an_empty_typed_output() {
    let fx = Fixture::new();
    fx.write("releases.csv", HEADER.as_bytes());
    let mut cfg = fx.config("releases.csv");
    cfg.types.insert("release_date".into(), ColumnType::Date);
    let manifest = fx.run(&cfg).unwrap();
    assert_eq!(
        (manifest.rows.read, manifest.parts.len(), manifest.parts[0].rows),
        (0, 1, 0)
    );
    let dir = WorkDir::new(fx.path("work")).pseudonymised("releases");
    let file = std::fs::File::open(dir.join("part-00000.parquet")).unwrap();
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let fields: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        fields[3..],
        ["release_date: Date32", "sex: Utf8", "offence_group: Utf8"]
    );
}

#[test]
fn parquet_input() {
    let fx = Fixture::new();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "first_name",
            Arc::new(StringArray::from(vec![Some("José"), None])),
        ),
        ("last_name", Arc::new(StringArray::from(vec!["O'Brien", "Smith"]))),
        ("birth_date", Arc::new(Date32Array::from(vec![5172, 7430]))),
        ("sex", Arc::new(StringArray::from(vec!["F", "M"]))),
        (
            "ni_number",
            Arc::new(StringArray::from(vec![Some("AB123456C"), None])),
        ),
        (
            "release_date",
            Arc::new(Date32Array::from(vec![Some(19_753), None])),
        ),
        ("offence_group", Arc::new(Int64Array::from(vec![3, 4]))),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let path = fx.path("releases.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let mut cfg = fx.config("releases.parquet");
    cfg.format = InputFormat::Parquet;
    let manifest = fx.run(&cfg).unwrap();
    assert_eq!(manifest.input.format, "parquet");
    let forename_missing = manifest.missing["forename"]["empty"];
    assert_eq!(forename_missing, 1);
    assert_eq!(
        fx.output("releases")[0],
        format!(
            "{} release_date=2024-01-31 sex=F offence_group=3",
            tokens("JOSE", "OBRIEN", "O165", "19840229", "F", Some("AB123456"))
        )
    );
    assert!(fx.output("releases")[1].starts_with("tok_nino=null tok_name_dob_sex=null"));
}

#[test]
fn many_batches_keep_their_order() {
    let mut csv = HEADER.to_owned();
    let mut expected = Vec::new();
    for i in 0..2500 {
        let _ = writeln!(csv, "Ann,Lee,1980-01-01,F,AB{i:06},,{i},");
        expected.push(format!(
            "tok_nino={} {} release_date=null sex=F offence_group={i}",
            tok("nino", &[&format!("AB{i:06}")]),
            tokens("ANN", "LEE", "L000", "19800101", "F", None)
                .split_once(' ')
                .unwrap()
                .1
        ));
    }
    check(&csv, |cfg| cfg.batch_rows = 700, &expected);
    let fx = Fixture::new();
    fx.write("releases.csv", csv.as_bytes());
    let dir = WorkDir::new(fx.path("work")).pseudonymised("releases");
    fx.run(&fx.config("releases.csv")).unwrap();
    assert_eq!(render_rows(&dir).len(), 2500);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Whatever the garbage after the header, every record is written or rejected.
    #[test]
    fn read_is_written_plus_rejected(
        body in proptest::collection::vec(prop_oneof![
            Just(","), Just("\""), Just("\n"), Just("\r\n"), Just("Ann"), Just("1980-01-01"), Just("AB123456"),
            Just("é"), Just(",,,,,,,\n"),
        ], 0..80),
        batch_rows in 1usize..6,
    ) {
        let fx = Fixture::new();
        fx.write("releases.csv", format!("{HEADER}{}", body.concat()).as_bytes());
        let mut cfg = fx.config("releases.csv");
        cfg.max_reject_fraction = 1.0;
        cfg.batch_rows = batch_rows;
        cfg.types.insert("release_date".into(), ColumnType::String);
        cfg.types.insert("offence_group".into(), ColumnType::String);
        cfg.types.insert("sex".into(), ColumnType::String);
        let manifest = match fx.run(&cfg) {
            // A quote left open at the end is an error rather than records silently lost.
            Err(PseudonymiseError::Extract(ExtractError::UnclosedQuote { .. })) => {
                prop_assert!(body.contains(&"\""));
                return Ok(());
            }
            other => other.unwrap(),
        };
        prop_assert_eq!(manifest.rows.read, manifest.rows.written + manifest.rows.rejected);
        prop_assert_eq!(manifest.parts.iter().map(|p| p.rows).sum::<u64>(), manifest.rows.written);
        prop_assert_eq!(fx.output("releases").len() as u64, manifest.rows.written);
    }
}
