//! `check-release`: re-audits a release folder using only what it publishes.
//!
//! The checker trusts nothing but the folder: it verifies the manifest's checksums, that no
//! file is unlisted, that no published count breaks the threshold rules, and re-runs the LP
//! audit of [`crate::audit`] with the published cells as constants (or as intervals when counts
//! are rounded) and every `[c]` cell as a variable bounded below by 0 (by 1 when the manifest
//! says zeros are published, since a suppressed cell then cannot be empty).
//!
//! Checker-side rule: a suppressed cell is a problem when its interval holds a single whole
//! number (max − min < 1). An interval `[0, x]` with `x` below the threshold is accepted: the
//! attacker learns that the cell is small, which is what `[c]` says anyway. The checker cannot
//! know true values, so the release stage's stricter rules (threshold reach, singletons) are
//! only enforced there and recorded in the audit trail.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use crate::audit::{self, Failure, Known, LpCell, LpSystem, Mode, Requirement};
use crate::manifest::{FileKind, Manifest, ManifestFile};
use crate::model::{CellKey, Shape, TOTAL};
use crate::{MANIFEST_NAME, ReleaseError};

/// One problem found in a release folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The released file (table) concerned.
    pub table: String,
    /// The cell, e.g. `sex=F, region=Total`, or `-` for a whole file.
    pub cell: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.table, self.cell, self.reason)
    }
}

/// The result of [`check_release`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// Every problem found; empty when the release is safe to let out.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn push(&mut self, table: &str, cell: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            table: table.to_owned(),
            cell: cell.to_owned(),
            reason: reason.into(),
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            return writeln!(f, "release passes the check");
        }
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Hidden,
    Shown(f64),
}

struct ParsedTable<'a> {
    file: &'a ManifestFile,
    shape: Shape,
    /// Per flat cell: persons and (for magnitude tables) the sum.
    persons: Vec<Value>,
    sums: Vec<Value>,
}

fn parse_table<'a>(
    dir: &Path,
    file: &'a ManifestFile,
    manifest: &Manifest,
    report: &mut CheckReport,
) -> Option<ParsedTable<'a>> {
    let name = &file.name;
    let by = file.by.clone().unwrap_or_default();
    let path = dir.join(name);
    let Ok(mut reader) = csv::ReaderBuilder::new().has_headers(true).from_path(&path) else {
        report.push(name, "-", "cannot be read as CSV");
        return None;
    };
    let mut expected: Vec<String> = by.clone();
    expected.push("persons".into());
    if let Some(s) = &file.sum {
        expected.push(s.clone());
    }
    match reader.headers() {
        Ok(h) if h.iter().eq(expected.iter().map(String::as_str)) => {}
        _ => {
            report.push(
                name,
                "-",
                "header does not match the manifest (by columns, persons, sum)",
            );
            return None;
        }
    }
    let rules = &manifest.rules;
    let mut labels: Vec<Vec<String>> = vec![Vec::new(); by.len()];
    let mut rows: Vec<(Vec<String>, Value, Value)> = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let row = i + 2;
        let Ok(rec) = rec else {
            report.push(name, &format!("row {row}"), "cannot be read as CSV");
            return None;
        };
        if rec.len() != expected.len() {
            report.push(name, &format!("row {row}"), "wrong number of fields");
            return None;
        }
        let cell_labels: Vec<String> = rec.iter().take(by.len()).map(str::to_owned).collect();
        let cell_name = by
            .iter()
            .zip(&cell_labels)
            .map(|(d, l)| format!("{d}={l}"))
            .collect::<Vec<_>>()
            .join(", ");
        let persons = if &rec[by.len()] == "[c]" {
            Value::Hidden
        } else {
            let Ok(v) = rec[by.len()].parse::<u64>() else {
                report.push(name, &cell_name, "persons is neither a whole number nor [c]");
                return None;
            };
            if v > 0 && v < rules.threshold {
                report.push(
                    name,
                    &cell_name,
                    format!("published count is below the threshold {}", rules.threshold),
                );
            }
            if v == 0 && rules.zeros_disclosive {
                report.push(
                    name,
                    &cell_name,
                    "a zero count is published although zeros are disclosive",
                );
            }
            if rules.round_to > 1 && !v.is_multiple_of(rules.round_to) {
                report.push(
                    name,
                    &cell_name,
                    format!("published count is not rounded to base {}", rules.round_to),
                );
            }
            Value::Shown(v as f64)
        };
        let sum = if file.sum.is_some() {
            match &rec[by.len() + 1] {
                "[c]" => Value::Hidden,
                text => match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Value::Shown(v),
                    _ => {
                        report.push(name, &cell_name, "the sum is neither a number nor [c]");
                        return None;
                    }
                },
            }
        } else {
            Value::Hidden
        };
        if file.sum.is_some() && (persons == Value::Hidden) != (sum == Value::Hidden) {
            report.push(
                name,
                &cell_name,
                "persons and the sum are not suppressed together",
            );
        }
        for (d, l) in cell_labels.iter().enumerate() {
            if l != TOTAL && !labels[d].contains(l) {
                labels[d].push(l.clone());
            }
        }
        rows.push((cell_labels, persons, sum));
    }
    let shape = Shape { dims: by, labels };
    let n = shape.n_cells();
    let mut persons = vec![None; n];
    let mut sums = vec![Value::Hidden; n];
    for (cell_labels, p, s) in rows {
        let idx: Vec<usize> = cell_labels
            .iter()
            .enumerate()
            .map(|(d, l)| {
                if l == TOTAL {
                    shape.labels[d].len()
                } else {
                    shape.labels[d]
                        .iter()
                        .position(|x| x == l)
                        .expect("labels collected above")
                }
            })
            .collect();
        let flat = shape.encode(&idx);
        if persons[flat].is_some() {
            report.push(name, &shape.describe(&idx), "the cell appears twice");
            return None;
        }
        persons[flat] = Some(p);
        sums[flat] = s;
    }
    if persons.iter().any(Option::is_none) {
        report.push(
            name,
            "-",
            "the table is not a complete cross-classification with Total margins",
        );
        return None;
    }
    let persons = persons.into_iter().map(|p| p.expect("checked above")).collect();
    Some(ParsedTable {
        file,
        shape,
        persons,
        sums,
    })
}

/// Re-audits a release folder on its own. The returned report lists every problem; an `Err`
/// means the folder cannot be checked at all (no readable manifest).
pub fn check_release(dir: &Path) -> Result<CheckReport, ReleaseError> {
    let manifest_path = dir.join(MANIFEST_NAME);
    let manifest: Manifest = linklab_store::read_json(&manifest_path).map_err(|e| ReleaseError::Check {
        path: manifest_path.clone(),
        reason: e.to_string(),
    })?;
    let mut report = CheckReport::default();
    let listed: HashSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    let entries = std::fs::read_dir(dir).map_err(ReleaseError::io("cannot list", dir))?;
    let mut unlisted = Vec::new();
    for entry in entries {
        let entry = entry.map_err(ReleaseError::io("cannot list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != MANIFEST_NAME && !listed.contains(name.as_str()) {
            unlisted.push(name);
        }
    }
    unlisted.sort();
    for name in unlisted {
        report.push(&name, "-", "file is not listed in the manifest");
    }
    let mut tables = Vec::new();
    for file in &manifest.files {
        let path = dir.join(&file.name);
        if !path.is_file() {
            report.push(&file.name, "-", "listed in the manifest but missing");
            continue;
        }
        let sha = linklab_store::sha256_file(&path)?;
        if sha != file.sha256 {
            report.push(&file.name, "-", "checksum does not match the manifest");
        }
        if file.kind == FileKind::Table
            && let Some(t) = parse_table(dir, file, &manifest, &mut report)
        {
            tables.push(t);
        }
    }
    let mut groups: BTreeMap<String, Vec<ParsedTable>> = BTreeMap::new();
    for t in tables {
        groups
            .entry(t.file.joint_group.clone().unwrap_or_else(|| t.file.name.clone()))
            .or_default()
            .push(t);
    }
    for tables in groups.values() {
        audit_group(tables, &manifest, &mut report)?;
    }
    Ok(report)
}

/// The audit of one group of jointly released tables, for the count layer and each sum column.
fn audit_group(
    tables: &[ParsedTable],
    manifest: &Manifest,
    report: &mut CheckReport,
) -> Result<(), ReleaseError> {
    let rules = &manifest.rules;
    let mut layers: Vec<Option<String>> = vec![None];
    for t in tables {
        if let Some(s) = &t.file.sum
            && !layers.contains(&Some(s.clone()))
        {
            layers.push(Some(s.clone()));
        }
    }
    for layer in layers {
        let mut ids: HashMap<CellKey, usize> = HashMap::new();
        let mut values: Vec<Value> = Vec::new();
        let mut names: Vec<(String, String)> = Vec::new();
        let mut constraints: HashSet<(usize, Vec<usize>)> = HashSet::new();
        let (mut lower, mut integer) = (0.0, true);
        for t in tables {
            if layer.is_some() && t.file.sum != layer {
                continue;
            }
            if layer.is_some() {
                if !t.file.sum_nonnegative.unwrap_or(false) {
                    lower = f64::NEG_INFINITY;
                }
                integer &= t.file.sum_integer.unwrap_or(false);
            }
            let mut cell_ids = Vec::with_capacity(t.shape.n_cells());
            for flat in 0..t.shape.n_cells() {
                let idx = t.shape.decode(flat);
                let v = if layer.is_some() {
                    t.sums[flat]
                } else {
                    t.persons[flat]
                };
                let id = *ids.entry(t.shape.key(&idx)).or_insert_with(|| {
                    values.push(v);
                    names.push((t.file.name.clone(), t.shape.describe(&idx)));
                    values.len() - 1
                });
                if values[id] != v {
                    report.push(
                        &t.file.name,
                        &t.shape.describe(&idx),
                        format!("differs from the same cell in {}", names[id].0),
                    );
                    values[id] = Value::Hidden;
                }
                cell_ids.push(id);
            }
            for (total, members) in t.shape.constraints() {
                let mut members: Vec<usize> = members.into_iter().map(|m| cell_ids[m]).collect();
                members.sort_unstable();
                constraints.insert((cell_ids[total], members));
            }
        }
        let half = if layer.is_some() {
            if integer { 0.0 } else { 0.5 }
        } else {
            rules.round_to as f64 / 2.0
        };
        let hidden_lower = if layer.is_some() {
            lower
        } else if rules.zeros_disclosive {
            0.0
        } else {
            1.0
        };
        let cells: Vec<LpCell> = values
            .iter()
            .map(|v| match *v {
                Value::Hidden => LpCell {
                    known: Known::Hidden,
                    lower: hidden_lower,
                    integer,
                },
                Value::Shown(x) if half > 0.0 => LpCell {
                    known: Known::Interval(x - half, x + half),
                    lower,
                    integer,
                },
                Value::Shown(x) => LpCell {
                    known: Known::Exact(x),
                    lower,
                    integer,
                },
            })
            .collect();
        let mut constraints: Vec<(usize, Vec<usize>)> = constraints.into_iter().collect();
        constraints.sort();
        let sys = LpSystem {
            cells,
            constraints,
            grids: Vec::new(),
        };
        let req = Requirement {
            min_width: 1.0,
            min_upper: None,
            true_value: None,
        };
        let reqs = vec![req; sys.cells.len()];
        // Decide mode: LP solutions witness feasible values, so only cells that no witness
        // shows to be free get their own min and max (and those are exact).
        let audits =
            audit::audit(&sys, &reqs, &[], Mode::Decide, None).map_err(|reason| ReleaseError::Solver {
                context: names.first().map_or_else(String::new, |n| n.0.clone()),
                reason,
            })?;
        let what = layer
            .as_ref()
            .map_or_else(|| "count".to_owned(), |s| format!("{s} sum"));
        for (id, a) in audits.iter().enumerate() {
            let Some(a) = a else { continue };
            let (table, cell) = &names[id];
            match a.failure {
                Some(Failure::Inconsistent) => {
                    report.push(
                        table,
                        cell,
                        format!("published {what}s contradict the table's margins"),
                    );
                }
                Some(_) => report.push(
                    table,
                    cell,
                    format!(
                        "suppressed {what} can be worked out from the published cells: it lies in [{}, {}]",
                        fmt_bound(a.lo),
                        fmt_bound(a.hi)
                    ),
                ),
                None => {}
            }
        }
    }
    Ok(())
}

/// A bound for a message, rounded to 2 decimals.
pub(crate) fn fmt_bound(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Adding 0.0 turns −0 into 0; `{}` prints whole floats without a fraction.
    let r = (x * 100.0).round() / 100.0 + 0.0;
    format!("{r}")
}
