//! The evaluation's figures as cells of the `evaluation` source's system (issue 12, "every
//! published number is a cell of one system").
//!
//! The evaluate stage writes `evaluation/figures.json` beside the analysis frame: the person
//! counts its published figures imply (group sizes, balance levels × arm, a rate's events and
//! non-events per matched group), keyed by (dimension, value) pairs of the frame. Here each
//! figure becomes a *known* cell of the frame's group of tables: the tables it needs are added to
//! the group unrendered (their dimensions, plus `treated` and `group`, so that the matched
//! treated are visibly a part of all treated), the cells no file publishes are unknowns of the
//! system, protected when they are sensitive (the treated persons the caliper dropped are one),
//! and the cells that are zero by construction (untreated persons in the matched treated group,
//! treated persons in the comparison group) are known zeros. Secondary suppression never picks a
//! known cell; the audit then sees every line that passes through a figure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::build::build_tables;
use crate::model::{CellKey, Group};
use crate::{DisclosureRules, ReleaseError, TableSpec};

/// The file the evaluate stage writes beside the frame.
const FIGURES_FILE: &str = "figures.json";
/// The analysis frame's folder inside `evaluation/`.
const FRAME_DIR: &str = "frame";

/// One cell of `evaluation/figures.json` (written by the evaluate stage).
#[derive(Debug, serde::Deserialize)]
struct FigureCell {
    key: Vec<(String, String)>,
    persons: u64,
}

#[derive(Debug, serde::Deserialize)]
struct FiguresFile {
    cells: Vec<FigureCell>,
}

/// The figures of one analysis frame.
#[derive(Debug)]
pub(crate) struct Figures {
    path: PathBuf,
    cells: BTreeMap<CellKey, u64>,
}

/// The analysis frame of an evaluation folder that holds figures: the frame folder of a
/// published file's folder or of its parent (`evaluation/publish/impact.csv`).
pub(crate) fn frame_of_extra(extra: &Path) -> Option<PathBuf> {
    let parent = extra.parent()?;
    [Some(parent), parent.parent()]
        .into_iter()
        .flatten()
        .find(|dir| dir.join(FIGURES_FILE).is_file() && dir.join(FRAME_DIR).is_dir())
        .map(|dir| dir.join(FRAME_DIR))
}

impl Figures {
    /// The figures beside a table source, when the source is an analysis frame that has them.
    pub fn beside(source: &Path) -> Result<Option<Self>, ReleaseError> {
        let path = match (source.file_name(), source.parent()) {
            (Some(name), Some(parent)) if name == FRAME_DIR => parent.join(FIGURES_FILE),
            _ => return Ok(None),
        };
        if !path.is_file() {
            return Ok(None);
        }
        let file: FiguresFile = linklab_store::read_json(&path)?;
        let cells = file.cells.into_iter().map(|f| (f.key, f.persons)).collect();
        Ok(Some(Figures { path, cells }))
    }

    /// The unrendered tables that carry every figure cell into the system: one per set of
    /// dimensions of a figure, with `treated` and `group` added when the figures use both.
    pub fn tables(&self, source: &Path) -> Vec<TableSpec> {
        let dims_of = |key: &CellKey| key.iter().map(|(d, _)| d.clone()).collect::<BTreeSet<String>>();
        let all: BTreeSet<String> = self.cells.keys().flat_map(dims_of).collect();
        let arms = ["treated", "group"].map(str::to_owned);
        let with_arms = arms.iter().all(|a| all.contains(a));
        let mut sets: BTreeSet<BTreeSet<String>> = BTreeSet::new();
        for key in self.cells.keys() {
            let mut dims = dims_of(key);
            if with_arms {
                dims.extend(arms.iter().cloned());
            }
            sets.insert(dims);
        }
        sets.into_iter()
            .map(|dims| {
                let by: Vec<String> = dims.into_iter().collect();
                TableSpec {
                    name: format!("figures by {}", by.join(", ")),
                    source: source.to_path_buf(),
                    by,
                    sum: None,
                }
            })
            .collect()
    }

    /// Marks the figure cells of the group as known, and the cells that are zero by
    /// construction as structural (the attacker knows them; a table that has one still writes
    /// it `[c]` under the zero rule). Two figure cells that differ only in `treated` also make
    /// their sum known. A figure whose count differs from the frame's, or that names a cell the
    /// frame does not have, is refused as stale.
    pub fn mark(&self, group: &mut Group) -> Result<(), ReleaseError> {
        let mut known = self.cells.clone();
        // `treated` splits every person in two: a cell known for both values is known without it
        // (e.g. the balance counts of women treated and untreated give all women).
        let treated = |v: &str| ("treated".to_owned(), v.to_owned());
        let sums: Vec<(CellKey, u64)> = known
            .iter()
            .filter(|(key, _)| key.contains(&treated("true")))
            .filter_map(|(key, &yes)| {
                let rest: CellKey = key.iter().filter(|p| **p != treated("true")).cloned().collect();
                let mut other = rest.clone();
                other.push(treated("false"));
                other.sort();
                known.get(&other).map(|&no| (rest, yes + no))
            })
            .collect();
        known.extend(sums);
        let index = group.key_index();
        group.known = vec![false; group.cells.len()];
        let names = group.table_names();
        let stale = || ReleaseError::Refused {
            table: names.clone(),
            reason: format!(
                "{} does not match the analysis frame beside it; run the evaluate stage again",
                self.path.display()
            ),
        };
        for (key, persons) in &known {
            let Some(&id) = index.get(key) else {
                return Err(stale());
            };
            if group.cells[id].count != *persons {
                return Err(stale());
            }
            group.known[id] = true;
        }
        group.structural = index
            .iter()
            .fold(vec![false; group.cells.len()], |mut out, (key, &id)| {
                out[id] = structural_zero(key) && group.cells[id].count == 0;
                out
            });
        Ok(())
    }
}

/// Whether a cell is empty by construction: the matched treated group holds treated persons
/// only, the comparison group untreated persons only.
fn structural_zero(key: &CellKey) -> bool {
    let value = |dim: &str| key.iter().find(|(d, _)| d == dim).map(|(_, v)| v.as_str());
    matches!(
        (value("treated"), value("group")),
        (Some("false"), Some("treated")) | (Some("true"), Some("comparison"))
    )
}

/// Builds the group of tables of one source: the declared tables, then (unrendered) the tables
/// the evaluation's figures beside it need, with the figure cells marked known.
pub(crate) fn build_group(
    source: &Path,
    specs: &[&TableSpec],
    rules: &DisclosureRules,
    keep_top: usize,
) -> Result<Group, ReleaseError> {
    let figures = Figures::beside(source)?;
    let extra = figures.as_ref().map(|f| f.tables(source)).unwrap_or_default();
    let all: Vec<&TableSpec> = specs.iter().copied().chain(&extra).collect();
    let data = build_tables(source, &all, keep_top, rules.threshold)?;
    let mut group = Group::build(data);
    for table in &mut group.tables[specs.len()..] {
        table.rendered = false;
    }
    if let Some(f) = &figures {
        f.mark(&mut group)?;
    }
    group.mark_unpublished();
    Ok(group)
}

/// The evaluation frame's dropped-by-caliper channel (issue 12, attack 1). In the analysis frame
/// (`treated`, and `group`: `treated`/`comparison` in the matched sample, else null), the treated
/// persons without a group are those the caliper dropped. When there are some but fewer than the
/// threshold, a table counting by `treated` publishes all treated persons, and all treated minus
/// the matched treated of `impact.csv` (the `group = treated` margin) singles them out, with
/// their values of the table's other dimensions. Evaluate withholds its own before-matching
/// figures in that case; here a table of the frame by `treated` is refused (by `group` is fine).
/// A source without both columns is not an analysis frame and passes.
pub(crate) fn refuse_few_dropped_by_treated(
    source: &Path,
    specs: &[&TableSpec],
    rules: &DisclosureRules,
    keep_top: usize,
) -> Result<(), ReleaseError> {
    let Some(by_treated) = specs.iter().find(|s| s.by.iter().any(|d| d == "treated")) else {
        return Ok(());
    };
    let probe = TableSpec {
        name: by_treated.name.clone(),
        source: source.to_path_buf(),
        by: vec!["treated".to_owned(), "group".to_owned()],
        sum: None,
    };
    let Ok(tables) = build_tables(source, &[&probe], keep_top, rules.threshold) else {
        return Ok(());
    };
    let shape = &tables[0].shape;
    let (Some(t), Some(u)) = (
        shape.labels[0].iter().position(|l| l == "true"),
        shape.labels[1].iter().position(|l| l == crate::UNKNOWN),
    ) else {
        return Ok(());
    };
    let dropped = tables[0].counts[shape.encode(&[t, u])];
    if dropped > 0 && dropped < rules.threshold {
        return Err(ReleaseError::Refused {
            table: by_treated.name.clone(),
            reason: format!(
                "it counts the analysis frame by treated while fewer than {} treated persons were dropped by the caliper: all treated minus the matched treated of impact.csv would single them out; count by group instead",
                rules.threshold
            ),
        });
    }
    Ok(())
}
