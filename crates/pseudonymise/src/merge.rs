//! The final step of a partitioned run: checking the partitions' outputs and writing the
//! extract's manifest.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use linklab_store::{StoreError, WorkDir, read_json, sha256_file, write_json_atomic};
use rayon::prelude::*;
use tracing::info;

use crate::partition::{self, parse_partial_manifest_name};
use crate::tally::check_reject_fraction;
use crate::{
    MatchKeySummary, PartialManifest, PseudonymiseError, PseudonymiseManifest, REJECT_EXAMPLES,
    RejectSummary, RowCounts,
};

/// A partial manifest's path and the `(index, count)` its name gives.
type Found = (PathBuf, (u32, u32));

/// The partial manifests of `extract` in `work_dir`, with the `(index, count)` their names
/// give, in name order. None if the folder does not exist.
pub fn partial_manifest_paths(work_dir: &WorkDir, extract: &str) -> Result<Vec<Found>, StoreError> {
    let dir = work_dir.root().join("pseudonymised");
    let listing = match fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                action: "cannot list",
                path: dir,
                source,
            });
        }
    };
    let mut found = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|source| StoreError::Io {
            action: "cannot list",
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(numbers) = parse_partial_manifest_name(extract, &name) {
            found.push((entry.path(), numbers));
        }
    }
    found.sort();
    Ok(found)
}

pub(crate) use partial_manifest_paths as partial_manifests;

/// The partial manifest partition `index` of `count` of `extract` writes:
/// `pseudonymised/<extract>.manifest.part-IIII-of-NNNN.json`.
pub fn partial_manifest_path(work_dir: &WorkDir, extract: &str, index: u32, count: u32) -> PathBuf {
    work_dir
        .root()
        .join("pseudonymised")
        .join(partition::partial_manifest_name(extract, index, count))
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether `extract` has partial manifests and no manifest newer than all of them, so that
/// [`merge_partitions`] must run before its output is read.
pub fn needs_merge(work_dir: &WorkDir, extract: &str) -> Result<bool, StoreError> {
    let partials = partial_manifest_paths(work_dir, extract)?;
    if partials.is_empty() {
        return Ok(false);
    }
    let Some(merged) = modified(&work_dir.pseudonymised_manifest(extract)) else {
        return Ok(true);
    };
    Ok(partials
        .iter()
        .any(|(path, _)| modified(path).is_none_or(|m| m > merged)))
}

/// Checks that the `N` partitions of a partitioned run of `extract` are all present, agree with
/// each other, tile the input exactly and left the part files they list; then writes the
/// extract's `<extract>.manifest.json` (counts summed, parts in global order, rejects merged)
/// and returns it. The share of rejected records is checked against `max_reject_fraction` on
/// the whole extract, as a single run would.
pub fn merge_partitions(
    work_dir: &WorkDir,
    extract: &str,
    max_reject_fraction: f64,
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    let fail = |reason: String| PseudonymiseError::Partitions {
        extract: extract.to_owned(),
        reason,
    };
    let found = partial_manifest_paths(work_dir, extract)?;
    if found.is_empty() {
        return Err(fail(
            "there are no partial manifests: run `linklab pseudonymise` with --partition first".into(),
        ));
    }
    let counts: std::collections::BTreeSet<u32> = found.iter().map(|(_, (_, n))| *n).collect();
    if counts.len() > 1 {
        let shown: Vec<String> = counts.iter().map(ToString::to_string).collect();
        return Err(fail(format!(
            "partial manifests of runs with different numbers of partitions are present ({}); remove those of the old run and the part files they list, or rerun every partition",
            shown.join(", ")
        )));
    }
    let count = *counts.first().expect("there is at least one partial manifest");
    let mut partials: Vec<PartialManifest> = Vec::with_capacity(found.len());
    for (path, (index, n)) in &found {
        let partial: PartialManifest = read_json(path)?;
        let p = &partial.partition;
        if (p.index, p.count) != (*index, *n) || partial.manifest.extract != extract {
            return Err(fail(format!(
                "{} describes partition {}/{} of extract `{}`, not what its name says; it was copied or renamed",
                path.display(),
                p.index,
                p.count,
                partial.manifest.extract
            )));
        }
        partials.push(partial);
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !partials.iter().any(|p| p.partition.index == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        let shown = missing.join(", ");
        return Err(fail(if missing.len() == 1 {
            format!("partition {shown} of {count} is missing; run it with --partition {shown}/{count}")
        } else {
            format!("partitions {shown} of {count} are missing; run each with --partition I/{count}")
        }));
    }
    partials.sort_by_key(|p| p.partition.index);
    let first = &partials[0];
    for p in &partials[1..] {
        agree(first, p).map_err(|what| {
            fail(format!(
                "partitions 1 and {} of {count} disagree on {what}; rerun every partition with the same input, key and settings",
                p.partition.index
            ))
        })?;
    }
    // The slices tile the input: no gap, no overlap.
    let domain = (first.partition.domain_start, first.partition.domain_end);
    let mut next_start = domain.0;
    let mut next_record = 1;
    for p in &partials {
        let s = &p.partition;
        if s.start != next_start || s.end < s.start || s.first_record != next_record {
            let how = if s.start < next_start || s.first_record < next_record {
                "overlaps the partition before it (it was duplicated or run with other settings)"
            } else {
                "leaves a gap after the partition before it"
            };
            return Err(fail(format!("partition {} of {count} {how}", s.index)));
        }
        next_start = s.end;
        next_record = s.first_record + p.manifest.rows.read;
    }
    if next_start != domain.1 {
        return Err(fail(format!(
            "the partitions end at {} {} of {}, not at its end",
            next_start, first.partition.unit, domain.1
        )));
    }
    let merged = merged_manifest(&partials, count);
    check_parts(work_dir, extract, &partials).map_err(fail)?;
    check_reject_fraction(&merged, Path::new(&merged.input.path), max_reject_fraction)?;
    write_json_atomic(&work_dir.pseudonymised_manifest(extract), &merged)?;
    info!(
        extract,
        partitions = count,
        rows_read = merged.rows.read,
        rows_written = merged.rows.written,
        rows_rejected = merged.rows.rejected,
        "merged the partitions' manifests"
    );
    Ok(merged)
}

/// `Err(what)` if two partitions differ on anything but their own counts and parts.
fn agree(a: &PartialManifest, b: &PartialManifest) -> Result<(), &'static str> {
    let (x, y) = (&a.manifest, &b.manifest);
    let keys = |m: &PseudonymiseManifest| -> Vec<MatchKeySummary> {
        m.match_keys
            .iter()
            .map(|k| MatchKeySummary {
                null_tokens: 0,
                ..k.clone()
            })
            .collect()
    };
    let checks: [(bool, &'static str); 12] = [
        (a.partition.count == b.partition.count, "the number of partitions"),
        (x.input.sha256 == y.input.sha256, "the input's SHA-256"),
        (x.input == y.input, "the input file or its format"),
        (x.key_fingerprint == y.key_fingerprint, "the key fingerprint"),
        (
            x.token_spec_version == y.token_spec_version,
            "the token spec version",
        ),
        (x.tool_version == y.tool_version, "the tool version"),
        (x.reference_date == y.reference_date, "the reference date"),
        (keys(x) == keys(y), "the match keys"),
        (x.comparison == y.comparison, "the comparison tokens"),
        (x.columns == y.columns, "the output columns and their types"),
        (
            x.missing.keys().eq(y.missing.keys()) && x.rejects.keys().eq(y.rejects.keys()),
            "the identifiers",
        ),
        (
            a.partition.unit == b.partition.unit
                && (a.partition.domain_start, a.partition.domain_end)
                    == (b.partition.domain_start, b.partition.domain_end),
            "the partitioned range of the input",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(what),
        None => Ok(()),
    }
}

/// The extract's manifest: counts summed, rejects merged, parts in global order.
fn merged_manifest(partials: &[PartialManifest], count: u32) -> PseudonymiseManifest {
    let mut merged = partials[0].manifest.clone();
    merged.rows = RowCounts {
        read: 0,
        written: 0,
        rejected: 0,
    };
    merged.rejects = BTreeMap::new();
    merged.missing = merged
        .missing
        .keys()
        .map(|k| (k.clone(), BTreeMap::new()))
        .collect();
    for key in &mut merged.match_keys {
        key.null_tokens = 0;
    }
    merged.parts = Vec::new();
    merged.partitions = Some(count);
    for p in partials {
        let m = &p.manifest;
        merged.rows.read += m.rows.read;
        merged.rows.written += m.rows.written;
        merged.rows.rejected += m.rows.rejected;
        for (reason, r) in &m.rejects {
            let into = merged
                .rejects
                .entry(reason.clone())
                .or_insert_with(|| RejectSummary {
                    count: 0,
                    first_records: Vec::new(),
                    first_lines: Vec::new(),
                });
            into.count += r.count;
            into.first_records.extend(&r.first_records);
            into.first_lines.extend(&r.first_lines);
            into.first_records.truncate(REJECT_EXAMPLES);
            into.first_lines.truncate(REJECT_EXAMPLES);
        }
        for (ident, by_reason) in &m.missing {
            let into = merged.missing.entry(ident.clone()).or_default();
            for (label, n) in by_reason {
                *into.entry(label.clone()).or_default() += n;
            }
        }
        for (into, key) in merged.match_keys.iter_mut().zip(&m.match_keys) {
            into.null_tokens += key.null_tokens;
        }
        merged.parts.extend(m.parts.iter().cloned());
    }
    merged
}

/// Every part a partition lists is there with its recorded SHA-256, and the folder holds no
/// other part file.
fn check_parts(work_dir: &WorkDir, extract: &str, partials: &[PartialManifest]) -> Result<(), String> {
    let dir = work_dir.pseudonymised(extract);
    let listed: Vec<(u32, &crate::PartSummary)> = partials
        .iter()
        .flat_map(|p| p.manifest.parts.iter().map(move |part| (p.partition.index, part)))
        .collect();
    let count = partials[0].partition.count;
    listed.par_iter().try_for_each(|(index, part)| {
        let path = dir.join(&part.name);
        match sha256_file(&path) {
            Ok(sha) if sha == part.sha256 => Ok(()),
            Ok(_) => Err(format!(
                "part file {} of partition {index} of {count} has changed since the partition wrote it; rerun partition {index}",
                path.display()
            )),
            Err(_) => Err(format!(
                "part file {} of partition {index} of {count} is missing or unreadable; rerun partition {index}",
                path.display()
            )),
        }
    })?;
    let names: std::collections::BTreeSet<&str> = listed.iter().map(|(_, p)| p.name.as_str()).collect();
    let listing = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut extra = Vec::new();
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".parquet") && !name.starts_with('.') && !names.contains(name.as_str()) {
            extra.push(name);
        }
    }
    if !extra.is_empty() {
        extra.sort();
        return Err(format!(
            "{} holds part files that no partition of this run lists ({}); they are left from another run: remove them",
            dir.display(),
            extra.join(", ")
        ));
    }
    Ok(())
}
