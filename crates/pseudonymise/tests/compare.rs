//! Comparison tokens (token spec v2): the columns a probabilistic pipeline's compare list adds,
//! their values against the token crate, and a cascade pipeline's output without them.

mod common;

use arrow::array::{Array, AsArray};
use chrono::NaiveDate;
use common::{Fixture, render_rows, schema_of};
use linklab_store::WorkDir;
use linklab_tokens::{CompareHasher, FieldKind, SecretKey, Standardiser};

const CSV: &str = "first_name,last_name,birth_date,sex,ni_number,release_date,offence_group\n\
    Mary Ann,O'Brien,29/02/1984,f,AB 12 34 56 C,2024-01-02,theft\n\
    José,Smyth,1984-11-02,M,,2024-02-03,fraud\n\
    ,---,1983-02-29,x,TN123456A,2024-03-04,theft\n\
    Anna,Smith,19840211,2,AB123457,2024-04-05,theft\n";

const COMPARE: [&str; 5] = ["surname", "dob", "forename", "sex", "nino"];

/// The expected tokens of one cell: `None` where null, else the hex tokens (one for a scalar).
fn expected(field: &str, kind: FieldKind, variant: usize, raw: &str) -> Option<Vec<String>> {
    let standardiser = Standardiser::new(NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"));
    let value = standardiser.standardise(kind, raw).ok()?;
    let hasher = CompareHasher::new(&SecretKey::from_bytes((0..32).collect())).field(field, kind);
    let mut out = Vec::new();
    hasher.tokens_into(variant, &value, &mut out);
    Some(out.iter().map(hex::encode).collect())
}

#[test]
fn compared_fields_get_their_variants_columns() {
    let fx = Fixture::new();
    fx.write("in.csv", CSV.as_bytes());
    let mut cfg = fx.config("in.csv");
    cfg.compare = COMPARE.iter().map(|&f| f.to_owned()).collect();
    let manifest = fx.run(&cfg).expect("the stage runs");
    assert_eq!(manifest.rows.read, 4);
    assert_eq!(manifest.rows.written, 4);
    let dir = WorkDir::new(fx.path("work")).pseudonymised("releases");
    insta::assert_snapshot!(schema_of(&dir).join("\n"));
    let comparison = manifest.comparison.as_ref().expect("a comparison section");
    assert_eq!(comparison.token_spec_version, "v3");
    assert_eq!(comparison.fields, COMPARE);
    let columns: Vec<String> = manifest
        .columns
        .iter()
        .filter(|c| c.origin == "comparison")
        .map(|c| format!("{} {}", c.name, c.ty))
        .collect();
    insta::assert_snapshot!(columns.join("\n"));

    // Every cell against the token crate, from the raw values.
    let raw: Vec<Vec<&str>> = CSV.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let kinds = [
        ("surname", 1, FieldKind::Name),
        ("dob", 2, FieldKind::Dob),
        ("forename", 0, FieldKind::Forename),
        ("sex", 3, FieldKind::Sex),
        ("nino", 4, FieldKind::Nino),
    ];
    let batch = linklab_store::read_parts(&dir, 16)
        .expect("parts")
        .next()
        .expect("a batch")
        .expect("batch");
    for (field, raw_column, kind) in kinds {
        for (slot, variant) in linklab_tokens::Variant::of_kind(kind).iter().enumerate() {
            let name = variant.column_name(field);
            let column = batch.column_by_name(&name).expect("the column");
            for (row, values) in raw.iter().enumerate() {
                let got = (!column.is_null(row)).then(|| {
                    if variant.is_set() {
                        let items = column.as_list::<i32>().value(row);
                        let items = items.as_fixed_size_binary();
                        (0..items.len()).map(|i| hex::encode(items.value(i))).collect()
                    } else {
                        vec![hex::encode(column.as_fixed_size_binary().value(row))]
                    }
                });
                assert_eq!(
                    got,
                    expected(field, kind, slot, values[raw_column]),
                    "{name} row {row}"
                );
            }
        }
    }
    // The missing values are the v1 ones: row 3 has no forename, surname, dob or sex, and an
    // unissued nino; row 2 no nino.
    assert_eq!(
        batch
            .column_by_name("cmp_nino_edit1")
            .expect("column")
            .null_count(),
        2
    );
    assert_eq!(
        batch
            .column_by_name("cmp_surname_exact")
            .expect("column")
            .null_count(),
        1
    );
}

#[test]
fn a_cascade_pipeline_writes_no_comparison_token() {
    let fx = Fixture::new();
    fx.write("in.csv", CSV.as_bytes());
    let cfg = fx.config("in.csv");
    let manifest = fx.run(&cfg).expect("the stage runs");
    assert_eq!(manifest.comparison, None);
    let text = std::fs::read_to_string(WorkDir::new(fx.path("work")).pseudonymised_manifest("releases"))
        .expect("manifest");
    assert!(!text.contains("comparison"), "{text}");
    let dir = WorkDir::new(fx.path("work")).pseudonymised("releases");
    assert!(schema_of(&dir).iter().all(|c| !c.starts_with("cmp_")));
    assert_eq!(render_rows(&dir).len(), 4);
}

#[test]
fn a_bad_compare_list_is_refused() {
    let fx = Fixture::new();
    fx.write("in.csv", CSV.as_bytes());
    let check = |compare: &[&str], expected: &str| {
        let mut cfg = fx.config("in.csv");
        cfg.compare = compare.iter().map(|&f| f.to_owned()).collect();
        let err = fx.run(&cfg).expect_err("refused");
        assert_eq!(fx.message(&err), expected);
    };
    check(
        &["surname", "postcode"],
        "extract `releases`: compared field `postcode` is not an identifier this extract declares",
    );
    check(
        &["surname", "surname"],
        "extract `releases`: compared field `surname` is listed twice",
    );
}
