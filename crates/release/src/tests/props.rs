//! Property tests over random tables, released to a temporary folder and checked.

use linklab_store::NoProgress;
use proptest::prelude::*;

use super::independent_check as check;
use super::release::{Rec, config, spec, write_source};
use crate::{DisclosureRules, MANIFEST_NAME, run};

const DIMS: [&str; 4] = ["a", "b", "c", "d"];
const LABELS: [&str; 4] = ["w", "x", "y", "z"];

/// Random tables: 2 to 4 dimensions of 2 or 3 categories, counts with many small cells.
fn tables() -> impl Strategy<Value = (Vec<usize>, Vec<u64>, usize)> {
    let sizes = prop_oneof![
        prop::collection::vec(2usize..=4, 2),
        prop::collection::vec(2usize..=3, 3),
        prop::collection::vec(2usize..=2, 4),
    ];
    (sizes, 0usize..3).prop_flat_map(|(sizes, rules)| {
        let n: usize = sizes.iter().product();
        let count = prop_oneof![3 => 0u64..10, 2 => 10u64..40];
        (Just(sizes), prop::collection::vec(count, n), Just(rules))
    })
}

fn rules_of(i: usize) -> DisclosureRules {
    match i {
        0 => DisclosureRules::default(),
        1 => DisclosureRules {
            threshold: 5,
            zeros_disclosive: false,
            ..DisclosureRules::default()
        },
        _ => DisclosureRules {
            round_to: 5,
            ..DisclosureRules::default()
        },
    }
}

/// Which subsets of the dimensions become tables (bit masks over the dimensions); the first
/// table is always the full cross-classification.
fn table_sets() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(1u8..16, 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random small worlds and table sets: the release is either refused (a dimension with more
    /// levels than persons / threshold) with nothing written, or the independent LP attacker
    /// over everything in the release folder pins no cell and narrows none below the threshold.
    #[test]
    fn releases_are_safe_and_checkable((sizes, counts, rules_i) in tables(), masks in table_sets()) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let d = sizes.len();
        let mut recs = Vec::new();
        let mut id = 0u64;
        for (flat, &n) in counts.iter().enumerate() {
            let mut rest = flat;
            let mut labels = vec![None; d];
            for k in (0..d).rev() {
                labels[k] = Some(LABELS[rest % sizes[k]]);
                rest /= sizes[k];
            }
            for _ in 0..n {
                id += 1;
                recs.push(Rec { id: Some(format!("p{id}")), values: labels.clone(), amount: Some(1) });
            }
        }
        write_source(&src, &DIMS[..d], &recs);
        let rules = rules_of(rules_i);
        let mut specs = vec![spec("t", &src, &DIMS[..d], None)];
        for (i, mask) in masks.iter().enumerate() {
            let by: Vec<&str> = (0..d).filter(|k| mask & (1 << k) != 0).map(|k| DIMS[k]).collect();
            if !by.is_empty() {
                specs.push(spec(&format!("u{i}"), &src, &by, None));
            }
        }
        let cfg = config(tmp.path(), rules.clone(), specs);
        let persons = id;
        match run(&cfg, &NoProgress) {
            Err(crate::ReleaseError::Column { reason, .. }) => {
                prop_assert!(reason.contains("more than persons / threshold"), "{reason}");
                prop_assert!(sizes.iter().any(|&s| s as u64 > (persons / rules.threshold).max(1)));
                prop_assert!(!cfg.release_dir.exists());
                return Ok(());
            }
            other => { other.unwrap(); }
        }

        // No published count strictly between 0 and the threshold.
        let csv_path = cfg.release_dir.join("t.csv");
        let csv = std::fs::read_to_string(&csv_path).unwrap();
        for line in csv.lines().skip(1) {
            let v = line.rsplit(',').next().unwrap();
            if let Ok(v) = v.parse::<u64>() {
                prop_assert!(v == 0 || v >= rules.threshold, "published {v}");
            }
        }
        // Every suppressed cell's audited interval is at least one wide.
        let audit: serde_json::Value = linklab_store::read_json(&cfg.audit_dir.join("t.audit.json")).unwrap();
        let cells = audit["cells"].as_array().unwrap();
        for c in cells {
            if let Some(iv) = c["interval"].as_array() {
                let lo: f64 = iv[0].as_str().unwrap().parse().unwrap();
                let hi: f64 = iv[1].as_str().unwrap().parse().unwrap_or(f64::INFINITY);
                prop_assert!(hi - lo >= 1.0, "interval {iv:?}");
            }
        }
        // The release passes the independent check: the LP attacker over every file in the
        // folder pins nothing and narrows nothing below the threshold.
        let report = check(&cfg).unwrap();
        prop_assert!(report.is_ok(), "{report}");

        // Revealing one primary suppressed cell fails the check, even with the checksum fixed.
        if let Some(row) = cells.iter().position(|c| c["status"] == "primary") {
            let value = cells[row]["persons"].as_u64().unwrap();
            let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
            let line = &mut lines[row + 1];
            prop_assert!(line.ends_with("[c]"));
            line.truncate(line.len() - 3);
            line.push_str(&value.to_string());
            std::fs::write(&csv_path, lines.join("\n") + "\n").unwrap();
            prop_assert!(!check(&cfg).unwrap().is_ok());
            let manifest_path = cfg.release_dir.join(MANIFEST_NAME);
            let mut manifest: serde_json::Value = linklab_store::read_json(&manifest_path).unwrap();
            manifest["files"][0]["sha256"] = linklab_store::sha256_file(&csv_path).unwrap().into();
            std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
            let report = check(&cfg).unwrap();
            prop_assert!(!report.is_ok());
        }
    }
}
