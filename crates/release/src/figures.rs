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
//! treated persons in the comparison group) are known zeros. Secondary suppression picks a known
//! cell only when no table cell is left; the audit sees every line that passes through a figure.
//! A known cell stays known while any of its places (where `figures.json` says it is printed)
//! is still printed ([`FigureCells::apply`]); the release stage withholds places to hide one.

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
    /// Where the figures that imply it are printed (see [`crate::rewrite`]); a cell without
    /// places cannot be hidden, only refused.
    #[serde(default)]
    places: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct FiguresFile {
    cells: Vec<FigureCell>,
}

/// The figures of one analysis frame.
#[derive(Debug)]
pub(crate) struct Figures {
    path: PathBuf,
    cells: BTreeMap<CellKey, (u64, Vec<String>)>,
}

/// The figure cells of a group: where each is printed, and the cells known as the sum of two.
#[derive(Debug, Default)]
pub(crate) struct FigureCells {
    /// Per figure cell of the group, its places.
    places: BTreeMap<usize, Vec<String>>,
    /// Cells known because both parts (treated and untreated) are: (sum, part, part).
    sums: Vec<(usize, usize, usize)>,
}

impl FigureCells {
    /// Marks the cells still printed (some place of theirs is not in `hidden`) as known, and
    /// as hideable when they have places; then the cells no file publishes.
    pub fn apply(&self, group: &mut Group, hidden: &BTreeSet<String>) {
        let n = group.cells.len();
        group.known = vec![false; n];
        group.hideable = vec![0; n];
        for (&id, places) in &self.places {
            group.known[id] = places.is_empty() || places.iter().any(|p| !hidden.contains(p));
            group.hideable[id] = places.len();
        }
        for &(sum, a, b) in &self.sums {
            group.known[sum] |= group.known[a] && group.known[b];
            if group.hideable[sum] == 0 && group.hideable[a] > 0 && group.hideable[b] > 0 {
                group.hideable[sum] = group.hideable[a] + group.hideable[b];
            }
        }
        group.mark_unpublished();
    }

    /// The places to hide so that `cell` is no longer known: its own, or both parts' of a sum.
    pub fn places_of(&self, cell: usize) -> Vec<String> {
        if let Some(places) = self.places.get(&cell) {
            return places.clone();
        }
        self.sums
            .iter()
            .filter(|s| s.0 == cell)
            .flat_map(|&(_, a, b)| [a, b])
            .filter_map(|c| self.places.get(&c))
            .flatten()
            .cloned()
            .collect()
    }

    /// Takes out of `hidden` every place whose figure cells a rendered table publishes all the
    /// same (`published`): withholding it would hide nothing, and a value a table prints should
    /// not read `[c]` elsewhere.
    pub fn restore_published(&self, published: impl Fn(usize) -> bool, hidden: &mut BTreeSet<String>) {
        hidden.retain(|place| {
            !self
                .places
                .iter()
                .filter(|(_, places)| places.contains(place))
                .all(|(&c, _)| published(c))
        });
    }

    /// How many figure cells are no longer printed once `hidden` is.
    pub fn withheld(&self, hidden: &BTreeSet<String>) -> usize {
        self.places
            .values()
            .filter(|p| !p.is_empty() && p.iter().all(|x| hidden.contains(x)))
            .count()
    }
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
        let cells = file
            .cells
            .into_iter()
            .map(|f| (f.key, (f.persons, f.places)))
            .collect();
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

    /// Finds the figure cells in the group. Two figure cells that differ only in `treated` also make their sum known.
    /// A figure whose count differs from the frame's, or that names a cell the frame does not
    /// have, is refused as stale. [`FigureCells::apply`] then marks them known.
    pub fn mark(&self, group: &mut Group) -> Result<FigureCells, ReleaseError> {
        let index = group.key_index();
        let names = group.table_names();
        let stale = || ReleaseError::Refused {
            table: names.clone(),
            reason: format!(
                "{} does not match the analysis frame beside it; run the evaluate stage again",
                self.path.display()
            ),
        };
        let mut out = FigureCells::default();
        for (key, (persons, places)) in &self.cells {
            let Some(&id) = index.get(key) else {
                return Err(stale());
            };
            if group.cells[id].count != *persons {
                return Err(stale());
            }
            out.places.insert(id, places.clone());
        }
        // `treated` splits every person in two: a cell known for both values is known without it
        // (e.g. the balance counts of women treated and untreated give all women).
        let treated = |v: &str| ("treated".to_owned(), v.to_owned());
        for key in self.cells.keys().filter(|key| key.contains(&treated("true"))) {
            let rest: CellKey = key.iter().filter(|p| **p != treated("true")).cloned().collect();
            let mut other = rest.clone();
            other.push(treated("false"));
            other.sort();
            if let (Some(&sum), Some(&yes), Some(&no)) = (index.get(&rest), index.get(key), index.get(&other))
                && out.places.contains_key(&no)
            {
                out.sums.push((sum, yes, no));
            }
        }
        Ok(out)
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

/// The evaluation's arms (issue 12, attack 1): in an analysis frame (`treated`, and `group`:
/// `treated`/`comparison` in the matched sample, else null) the matched treated are part of all
/// treated, and the treated persons without a group are those the caliper dropped. A table by
/// `treated` publishes all treated, and all treated minus the matched treated (a table by
/// `group`, or `impact.csv`) singles out a few dropped persons. So the table by both is added to
/// the group of every analysis frame, unrendered: the dropped persons are an unknown of the
/// system, protected when there are 1 to `threshold` − 1 of them, and the cells empty by
/// construction are known zeros. A source without both columns is not an analysis frame.
fn arms_table(source: &Path, keep_top: usize, rules: &DisclosureRules) -> Option<TableSpec> {
    let arms = TableSpec {
        name: "the evaluation's arms".to_owned(),
        source: source.to_path_buf(),
        by: vec!["group".to_owned(), "treated".to_owned()],
        sum: None,
    };
    build_tables(source, &[&arms], keep_top, rules.threshold)
        .is_ok()
        .then_some(arms)
}

/// Builds the group of tables of one source: the declared tables, then (unrendered) the tables
/// the evaluation's figures beside it need and the arms of an analysis frame, with the figure
/// cells found and the cells empty by construction marked structural (the attacker knows them;
/// a table that has one still writes it `[c]` under the zero rule).
pub(crate) fn build_group(
    source: &Path,
    specs: &[&TableSpec],
    rules: &DisclosureRules,
    keep_top: usize,
) -> Result<(Group, FigureCells), ReleaseError> {
    let figures = Figures::beside(source)?;
    let mut extra = figures.as_ref().map(|f| f.tables(source)).unwrap_or_default();
    let by_arms = |t: &TableSpec| ["group", "treated"].iter().all(|d| t.by.iter().any(|b| b == d));
    if !extra.iter().any(by_arms)
        && let Some(arms) = arms_table(source, keep_top, rules)
    {
        extra.push(arms);
    }
    let all: Vec<&TableSpec> = specs.iter().copied().chain(&extra).collect();
    let data = build_tables(source, &all, keep_top, rules.threshold)?;
    let mut group = Group::build(data);
    for table in &mut group.tables[specs.len()..] {
        table.rendered = false;
    }
    let index = group.key_index();
    group.structural = index
        .iter()
        .fold(vec![false; group.cells.len()], |mut out, (key, &id)| {
            out[id] = structural_zero(key) && group.cells[id].count == 0;
            out
        });
    let cells = match &figures {
        Some(f) => f.mark(&mut group)?,
        None => FigureCells::default(),
    };
    cells.apply(&mut group, &BTreeSet::new());
    Ok((group, cells))
}
