//! Unit tests of planning, the reject limit and the worker guard.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use linklab_extract::RejectReason;
use linklab_store::WorkDir;
use linklab_tokens::{FieldKind, MatchKey};

use super::*;
use crate::plan::{plan, resolve_keep};
use crate::stream::guarded;
use crate::tally::RejectLimit;

const CANARY: &str = "ZQXCANARYONE";

fn config(keep: &[&str]) -> PseudonymiseConfig {
    PseudonymiseConfig {
        extract: "people".into(),
        input: PathBuf::from("/data/people.csv"),
        format: InputFormat::CSV,
        identifiers: vec![
            Identifier::new("nino", "NINO", FieldKind::Nino),
            Identifier::new("sex", "Gender", FieldKind::Sex),
        ],
        keep: keep.iter().map(|&k| k.to_owned()).collect(),
        types: BTreeMap::new(),
        match_keys: vec![MatchKey::parse("nino", &["nino"], false).unwrap()],
        compare: Vec::new(),
        key_file: PathBuf::from("/keys/linkage.key"),
        work_dir: WorkDir::new("/work"),
        max_reject_fraction: 0.0,
        batch_rows: 10,
        today: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        partition: None,
    }
}

/// The second guard, on the columns as a reader resolved them: `sources` gives the file
/// column of each reader column (`NINO`, `Gender`, then the keep columns).
fn check_resolved(keep: &[&str], sources: &[usize], expected: Result<Vec<bool>, &str>) {
    let cfg = config(keep);
    let mut plan = plan(&cfg).expect("the first guard passes");
    let got = resolve_keep(&cfg, &mut plan, sources)
        .map(|()| plan.keep.iter().map(|k| k.standardised_sex).collect::<Vec<_>>())
        .map_err(|e| e.to_string());
    assert_eq!(
        got,
        expected.map_err(str::to_owned),
        "keep {keep:?}, sources {sources:?}"
    );
}

/// Records `1..=read` in batches of `batch`, the `rejected` ones rejected (on line record + 1):
/// the record and line at which `max_fraction` was passed.
fn check_limit(
    max_fraction: f64,
    read: u64,
    batch: u64,
    rejected: &[u64],
    expected: Option<(u64, Option<u64>)>,
) {
    let mut limit = RejectLimit {
        max_fraction,
        dropped: 0,
        pending: std::collections::VecDeque::new(),
    };
    let mut seen = 0;
    while seen < read {
        let end = (seen + batch).min(read);
        for &record in rejected.iter().filter(|&&r| r > seen && r <= end) {
            let reject = linklab_extract::Reject {
                record,
                line: Some(record + 1),
                reason: RejectReason::WrongFieldCount,
            };
            limit.note(&reject, end);
        }
        seen = end;
    }
    assert_eq!(
        limit.passed_at(read),
        expected,
        "{max_fraction} {read} {batch} {rejected:?}"
    );
}

#[test]
fn the_reject_that_passes_the_limit_is_found() {
    // 1% of 311 allows 3 rejects: the fourth passes the limit, whatever the batches.
    for batch in [1, 7, 150, 311] {
        check_limit(
            0.01,
            311,
            batch,
            &[5, 90, 150, 151, 152, 300],
            Some((151, Some(152))),
        );
        check_limit(0.01, 311, batch, &[5, 90, 150], None);
    }
    check_limit(0.0, 10, 3, &[4, 9], Some((4, Some(5))));
    check_limit(0.5, 10, 3, &[1, 2, 3, 4, 5, 6], Some((6, Some(7))));
}

#[test]
fn a_keep_column_resolved_to_an_identifier_column_is_refused_or_standardised() {
    // Distinct file columns: kept as they are.
    check_resolved(&["town"], &[0, 1, 2], Ok(vec![false]));
    // A name the first guard does not see (say a reader that ignored case) that resolves to
    // the NINO column.
    check_resolved(
        &["nino"],
        &[0, 1, 0],
        Err(
            "extract `people`: keep column `nino` is read from the same column of the file as identifier `nino` (kind nino), so it cannot be kept: kept columns leave the stage as they are, and identifiers may leave only as tokens",
        ),
    );
    // The sex column, under any name that resolves to it, is standardised.
    check_resolved(&["Gender", "gender"], &[0, 1, 1], Ok(vec![true, true]));
}

#[test]
fn a_panicking_worker_reports_records_not_values() {
    let path = Path::new("/data/extract.csv");
    let err = guarded(path, &[7, 8, 9], || -> u32 {
        std::panic::panic_any(format!("byte index 3 is not a char boundary of `{CANARY}`"))
    })
    .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(CANARY), "{shown}");
    assert_eq!(
        err.to_string(),
        "internal error: a worker stopped while pseudonymising records 7 to 9 of /data/extract.csv; no output was written; please report this"
    );
    assert_eq!(row_context(path, 4, 4), "record 4 of /data/extract.csv");
    assert_eq!(guarded(path, &[1], || 5).unwrap(), 5);
}
