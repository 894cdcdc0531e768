//! The `frequency-attack` case (`docs/privacy.md`): how many records' values a holder of
//! per-field comparison tokens recovers without the key, by ranking tokens by frequency and
//! matching the ranks to a public frequency list of the same population.
//!
//! The holder sees world A's pseudonymised `releases` extract (comparison tokens for surname,
//! forename, dob and sex). As the public list (a census-style name count) it gets world B: the
//! same synthetic population model with another seed, in clear. It pairs the `r`-th most frequent
//! token with the `r`-th most frequent value of the list. We, holding the key, score the guesses:
//! a record is recovered when the value guessed for its token is its true standard value.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use arrow::array::{Array, AsArray};
use chrono::NaiveDate;
use linklab_extract::{ExtractReader, InputFormat};
use linklab_pseudonymise::PseudonymiseConfig;
use linklab_store::{NoProgress, WorkDir};
use linklab_tokens::{CompareHasher, FieldKind, SecretKey, Standardiser, Transform, Variant};
use serde_json::json;

/// The attacked columns: field, file column, kind, variant.
const ATTACKED: [(&str, &str, FieldKind, Variant); 8] = [
    ("surname", "last_name", FieldKind::Name, Variant::Exact),
    ("surname", "last_name", FieldKind::Name, Variant::Soundex),
    ("surname", "last_name", FieldKind::Name, Variant::Initial),
    ("forename", "first_name", FieldKind::Forename, Variant::Exact),
    ("forename", "first_name", FieldKind::Forename, Variant::Initial),
    ("dob", "birth_date", FieldKind::Dob, Variant::Exact),
    ("dob", "birth_date", FieldKind::Dob, Variant::Year),
    ("sex", "sex", FieldKind::Sex, Variant::Exact),
];

/// The run's "today" (dates of birth after it are missing).
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date")
}

/// The public list: each value of `column` (standardised as `kind`, then derived by `variant`)
/// with its count in a CSV, most frequent first.
fn clear_counts(csv: &Path, column: &str, kind: FieldKind, variant: Variant) -> Vec<(String, u64)> {
    let standardiser = Standardiser::new(today());
    let reader = ExtractReader::open(csv, InputFormat::CSV, &[column.to_owned()], 65_536)
        .expect("the public list's CSV");
    let mut counts: HashMap<String, u64> = HashMap::new();
    for batch in reader {
        let batch = batch.expect("a batch");
        for raw in batch.columns()[0].iter() {
            if let Ok(value) = standardiser.standardise(kind, raw) {
                *counts.entry(derived(variant, &value)).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

/// The string a variant hashes for a standard value (token spec v2, section 4), for the variants
/// this case attacks.
fn derived(variant: Variant, value: &str) -> String {
    match variant {
        Variant::Year => Transform::Year.apply(value).into_owned(),
        Variant::Soundex => Transform::Soundex.apply(value).into_owned(),
        Variant::Initial => Transform::Initial.apply(value).into_owned(),
        _ => value.to_owned(),
    }
}

/// Pseudonymises world A's `releases.csv` with comparison tokens and returns each attacked
/// column's token counts.
fn token_counts(csv: &Path, work: &Path, key_file: &Path) -> Vec<HashMap<[u8; 8], u64>> {
    let cfg = PseudonymiseConfig {
        extract: "releases".into(),
        input: csv.to_path_buf(),
        format: InputFormat::CSV,
        identifiers: crate::stages::releases_identifiers(false),
        keep: Vec::new(),
        types: BTreeMap::new(),
        match_keys: vec![
            linklab_tokens::MatchKey::parse("name_dob_sex", &["forename", "surname", "dob", "sex"], false)
                .expect("a valid key"),
        ],
        compare: vec!["surname".into(), "forename".into(), "dob".into(), "sex".into()],
        key_file: key_file.to_path_buf(),
        work_dir: WorkDir::new(work),
        max_reject_fraction: 0.05,
        batch_rows: linklab_pseudonymise::DEFAULT_BATCH_ROWS,
        today: today(),
        partition: None,
    };
    linklab_pseudonymise::run(&cfg, &NoProgress).expect("pseudonymise runs");
    let mut counts = vec![HashMap::new(); ATTACKED.len()];
    for batch in linklab_store::read_parts(&cfg.work_dir.pseudonymised("releases"), 65_536).expect("parts") {
        let batch = batch.expect("a batch");
        for ((field, _, _, variant), counts) in ATTACKED.iter().zip(&mut counts) {
            let column = batch
                .column_by_name(&variant.column_name(field))
                .expect("the comparison column");
            let tokens = column.as_fixed_size_binary();
            for row in (0..tokens.len()).filter(|&r| tokens.is_valid(r)) {
                let token: [u8; 8] = tokens.value(row).try_into().expect("8 bytes");
                *counts.entry(token).or_default() += 1;
            }
        }
    }
    counts
}

/// Runs the attack on `people` people and returns the case's JSON line.
pub fn frequency_attack(scratch: &Path, quick: bool) -> serde_json::Value {
    let people = if quick { 20_000 } else { 100_000 };
    let dir = scratch.join("frequency-attack");
    let _ = fs::remove_dir_all(&dir);
    let world = |name: &str, seed: u64| {
        let out_dir = dir.join(name);
        linklab_synth::generate(&linklab_synth::SynthConfig {
            people,
            seed,
            out_dir: out_dir.clone(),
            noise: linklab_synth::NoiseLevel::Standard,
        })
        .expect("synth writes its files");
        out_dir.join("releases.csv")
    };
    let (attacked, public) = (world("a", 42), world("b", 4242));
    let key_file = crate::stages::key_file(&dir, "linkage.key", 3);
    let counts = token_counts(&attacked, &dir.join("work"), &key_file);
    let hasher = CompareHasher::new(&SecretKey::from_file(&key_file).expect("the key"));
    let mut results = Vec::new();
    for ((field, column, kind, variant), tokens) in ATTACKED.iter().zip(counts) {
        let list = clear_counts(&public, column, *kind, *variant);
        let mut ranked: Vec<([u8; 8], u64)> = tokens.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let total: u64 = ranked.iter().map(|(_, n)| n).sum();
        let mut recovered = 0;
        let mut top10 = 0;
        for (rank, ((token, n), (guess, _))) in ranked.iter().zip(&list).enumerate() {
            if hasher.token(field, *variant, guess) == *token {
                recovered += n;
                top10 += u64::from(rank < 10);
            }
        }
        results.push(json!({
            "column": variant.column_name(field),
            "records": total,
            "distinct_tokens": ranked.len(),
            "recovered_records": recovered,
            "recovered_share": recovered as f64 / total.max(1) as f64,
            "top10_correct": top10,
        }));
    }
    let _ = fs::remove_dir_all(&dir);
    let shown: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "`{}` {:.1}% of records ({} of the top 10 tokens)",
                r["column"].as_str().unwrap_or_default(),
                r["recovered_share"].as_f64().unwrap_or_default() * 100.0,
                r["top10_correct"]
            )
        })
        .collect();
    json!({
        "what": format!(
            "frequency-rank attack without the key: `releases.csv` of a {people}-person synth world \
             (seed 42) pseudonymised with comparison tokens; tokens ranked by frequency, matched to \
             the ranks of a clear public list (a second world, seed 4242)"
        ),
        "result": shown.join("; "),
        "columns": results,
    })
}
