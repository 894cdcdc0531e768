//! The additive structure of tables: shapes, cells with margins, and the cells shared by tables
//! built from the same source.

use std::collections::HashMap;

/// The label of a margin.
pub const TOTAL: &str = "Total";
/// The label of a missing (null) dimension value.
pub const UNKNOWN: &str = "Unknown";

/// The dimensions of one table: names and the categories of each (without `Total`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    pub dims: Vec<String>,
    pub labels: Vec<Vec<String>>,
}

impl Shape {
    /// Sizes of each dimension including the `Total` position (the last index).
    pub fn extents(&self) -> Vec<usize> {
        self.labels.iter().map(|l| l.len() + 1).collect()
    }

    pub fn n_cells(&self) -> usize {
        self.extents().iter().product()
    }

    /// Per-dimension index of a flat cell (row-major, first dimension slowest); an index equal
    /// to the number of categories is `Total`.
    pub fn decode(&self, mut flat: usize) -> Vec<usize> {
        let ext = self.extents();
        let mut idx = vec![0; ext.len()];
        for d in (0..ext.len()).rev() {
            idx[d] = flat % ext[d];
            flat /= ext[d];
        }
        idx
    }

    pub fn encode(&self, idx: &[usize]) -> usize {
        let ext = self.extents();
        idx.iter().zip(&ext).fold(0, |acc, (&i, &e)| acc * e + i)
    }

    pub fn is_total(&self, d: usize, i: usize) -> bool {
        i == self.labels[d].len()
    }

    pub fn label(&self, d: usize, i: usize) -> &str {
        if self.is_total(d, i) {
            TOTAL
        } else {
            &self.labels[d][i]
        }
    }

    /// The cell's identity shared across tables: the (dimension, label) pairs that are not
    /// `Total`, sorted by dimension name.
    pub fn key(&self, idx: &[usize]) -> CellKey {
        let mut key: CellKey = idx
            .iter()
            .enumerate()
            .filter(|&(d, &i)| !self.is_total(d, i))
            .map(|(d, &i)| (self.dims[d].clone(), self.labels[d][i].clone()))
            .collect();
        key.sort();
        key
    }

    /// Every additive constraint, as (total cell, member cells) in flat indices: for every cell
    /// and every dimension where the cell is `Total`, the cell equals the sum over that
    /// dimension's categories.
    pub fn constraints(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out = Vec::new();
        for flat in 0..self.n_cells() {
            let idx = self.decode(flat);
            for d in 0..idx.len() {
                if self.is_total(d, idx[d]) && !self.labels[d].is_empty() {
                    let members = (0..self.labels[d].len())
                        .map(|i| {
                            let mut m = idx.clone();
                            m[d] = i;
                            self.encode(&m)
                        })
                        .collect();
                    out.push((flat, members));
                }
            }
        }
        out
    }

    /// A readable name of a cell, e.g. `sex=F, region=Total`.
    pub fn describe(&self, idx: &[usize]) -> String {
        idx.iter()
            .enumerate()
            .map(|(d, &i)| format!("{}={}", self.dims[d], self.label(d, i)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A cell's identity within a source: sorted (dimension, label) pairs without margins.
pub(crate) type CellKey = Vec<(String, String)>;

/// Per-person contributions of a magnitude cell, summarised.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SumStats {
    /// The cell total.
    pub total: f64,
    /// The sum of absolute contributions (the base of the dominance and p% rules).
    pub abs_total: f64,
    /// The largest contributions by absolute value, descending (at most `keep` of them).
    pub top: Vec<f64>,
}

impl SumStats {
    pub fn add(&mut self, v: f64, keep: usize) {
        self.total += v;
        self.abs_total += v.abs();
        push_top(&mut self.top, v, keep);
    }

    pub fn merge(&mut self, other: &SumStats, keep: usize) {
        self.total += other.total;
        self.abs_total += other.abs_total;
        for &v in &other.top {
            push_top(&mut self.top, v, keep);
        }
    }
}

fn push_top(top: &mut Vec<f64>, v: f64, keep: usize) {
    let pos = top.iter().position(|t| v.abs() > t.abs()).unwrap_or(top.len());
    if pos < keep {
        top.insert(pos, v);
        top.truncate(keep);
    }
}

/// One table of a group: its shape and, per flat cell, the id of the group cell.
#[derive(Debug, Clone)]
pub(crate) struct GroupTable {
    pub name: String,
    pub shape: Shape,
    pub cell_ids: Vec<usize>,
    /// The sum layer of a magnitude table.
    pub sum_layer: Option<usize>,
    /// Whether the table is written to the release folder; a table that is not only carries the
    /// cells and lines of the evaluation's figures into the system.
    pub rendered: bool,
}

/// A cell of a group (shared by every table of the group that has it).
#[derive(Debug, Clone)]
pub(crate) struct GroupCell {
    pub count: u64,
    /// How many dimensions of the cell are `Total` (in the table that first declared it).
    pub n_totals: usize,
    /// Per sum layer: the contributions, when a magnitude table of that layer has this cell.
    pub sums: Vec<Option<SumStats>>,
    /// A readable name (from the first table that has the cell).
    pub name: String,
}

/// An additive constraint `total = sum(members)` of a group, with the layers it holds in.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub total: usize,
    pub members: Vec<usize>,
    /// Sum layers whose tables declare this constraint (the count layer has every constraint).
    pub sum_layers: Vec<usize>,
}

/// Tables protected jointly: those built from the same source. Cells with the same set of
/// (dimension, value) pairs are one cell.
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    pub cells: Vec<GroupCell>,
    pub constraints: Vec<Constraint>,
    /// For each cell, the constraints it appears in (as total or member).
    pub cell_constraints: Vec<Vec<usize>>,
    pub tables: Vec<GroupTable>,
    /// Per sum layer: the column, and whether every contribution is non-negative and whole.
    pub sum_layers: Vec<SumLayer>,
    /// Cells another released file already publishes (the counts behind the evaluation's
    /// figures): never chosen for secondary suppression. Empty when there are none.
    pub known: Vec<bool>,
    /// Per known cell whose figures the release stage can write `[c]` instead (the evaluate
    /// stage said where each is printed): how many places print it (0: it cannot be hidden).
    /// Secondary suppression picks one only when no table cell is left, or when it is the cheapest
    /// way to stop the figures pinning a cell no file publishes. Empty when there are none.
    pub hideable: Vec<usize>,
    /// Cells an attacker knows to be zero by construction (a person in the matched treated
    /// group is treated): exact zeros to the audit, never sensitive (a table that has one writes
    /// it `[c]` under the zero rule all the same). Empty when there are none.
    pub structural: Vec<bool>,
    /// Cells that no rendered table and no other file publishes (set by
    /// [`Group::mark_unpublished`]): unknowns of the system, protected only when sensitive.
    pub unpublished: Vec<bool>,
}

/// A magnitude column of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SumLayer {
    pub column: String,
    pub nonnegative: bool,
    pub integer: bool,
}

/// One table's values before they are merged into a group.
#[derive(Debug, Clone)]
pub(crate) struct TableData {
    pub name: String,
    pub shape: Shape,
    /// Per flat cell (margins included): distinct persons.
    pub counts: Vec<u64>,
    /// For a magnitude table: the column (with its properties) and per-cell contributions.
    pub sums: Option<(SumLayer, Vec<SumStats>)>,
}

impl Group {
    /// Merges tables of one source into a group, sharing cells with equal keys.
    pub fn build(tables: Vec<TableData>) -> Self {
        let mut g = Group::default();
        let mut by_key: HashMap<CellKey, usize> = HashMap::new();
        let mut seen_constraints: HashMap<(usize, Vec<usize>), usize> = HashMap::new();
        for t in tables {
            let layer = t.sums.as_ref().map(|(col, _)| {
                if let Some(i) = g.sum_layers.iter().position(|c| c.column == col.column) {
                    g.sum_layers[i].nonnegative &= col.nonnegative;
                    g.sum_layers[i].integer &= col.integer;
                    i
                } else {
                    g.sum_layers.push(col.clone());
                    g.sum_layers.len() - 1
                }
            });
            let mut cell_ids = Vec::with_capacity(t.counts.len());
            for (flat, &count) in t.counts.iter().enumerate() {
                let idx = t.shape.decode(flat);
                let key = t.shape.key(&idx);
                let id = *by_key.entry(key).or_insert_with(|| {
                    g.cells.push(GroupCell {
                        count,
                        n_totals: idx
                            .iter()
                            .enumerate()
                            .filter(|&(d, &i)| t.shape.is_total(d, i))
                            .count(),
                        sums: Vec::new(),
                        name: t.shape.describe(&idx),
                    });
                    g.cells.len() - 1
                });
                debug_assert_eq!(
                    g.cells[id].count, count,
                    "tables of one source agree on shared cells"
                );
                if let (Some(layer), Some((_, stats))) = (layer, &t.sums) {
                    let cell = &mut g.cells[id];
                    if cell.sums.len() <= layer {
                        cell.sums.resize(layer + 1, None);
                    }
                    cell.sums[layer] = Some(stats[flat].clone());
                }
                cell_ids.push(id);
            }
            for (total, members) in t.shape.constraints() {
                let total = cell_ids[total];
                let mut members: Vec<usize> = members.into_iter().map(|m| cell_ids[m]).collect();
                members.sort_unstable();
                let ci = *seen_constraints
                    .entry((total, members.clone()))
                    .or_insert_with(|| {
                        g.constraints.push(Constraint {
                            total,
                            members,
                            sum_layers: Vec::new(),
                        });
                        g.constraints.len() - 1
                    });
                if let Some(layer) = layer
                    && !g.constraints[ci].sum_layers.contains(&layer)
                {
                    g.constraints[ci].sum_layers.push(layer);
                }
            }
            g.tables.push(GroupTable {
                name: t.name,
                shape: t.shape,
                cell_ids,
                sum_layer: layer,
                rendered: true,
            });
        }
        for c in &mut g.cells {
            c.sums.resize(g.sum_layers.len(), None);
        }
        g.cell_constraints = vec![Vec::new(); g.cells.len()];
        for (ci, c) in g.constraints.iter().enumerate() {
            g.cell_constraints[c.total].push(ci);
            for &m in &c.members {
                g.cell_constraints[m].push(ci);
            }
        }
        g
    }

    /// Whether another released file already publishes the cell.
    pub fn is_known(&self, cell: usize) -> bool {
        self.known.get(cell).copied().unwrap_or(false)
    }

    /// Whether the cell is a known figure that can be hidden.
    pub fn is_hideable(&self, cell: usize) -> bool {
        self.hide_cost(cell) > 0
    }

    /// How many places print a known figure (0 when it cannot be hidden).
    pub fn hide_cost(&self, cell: usize) -> usize {
        self.hideable.get(cell).copied().unwrap_or(0)
    }

    /// Whether the cell is known to be zero by construction.
    pub fn is_structural(&self, cell: usize) -> bool {
        self.structural.get(cell).copied().unwrap_or(false)
    }

    /// Whether no released file publishes the cell.
    pub fn is_unpublished(&self, cell: usize) -> bool {
        self.unpublished.get(cell).copied().unwrap_or(false)
    }

    /// Per cell: whether a rendered table has it.
    pub fn rendered_cells(&self) -> Vec<bool> {
        let mut shown = vec![false; self.cells.len()];
        for t in self.tables.iter().filter(|t| t.rendered) {
            for &c in &t.cell_ids {
                shown[c] = true;
            }
        }
        shown
    }

    /// Marks every cell that no rendered table has and that is neither known nor structural as
    /// unpublished.
    pub fn mark_unpublished(&mut self) {
        let shown = self.rendered_cells();
        self.unpublished = (0..self.cells.len())
            .map(|c| !shown[c] && !self.is_known(c) && !self.is_structural(c))
            .collect();
    }

    /// Every cell of the group by its key.
    pub fn key_index(&self) -> HashMap<CellKey, usize> {
        let mut index = HashMap::with_capacity(self.cells.len());
        for t in &self.tables {
            for (flat, &id) in t.cell_ids.iter().enumerate() {
                index.entry(t.shape.key(&t.shape.decode(flat))).or_insert(id);
            }
        }
        index
    }

    /// Names of the rendered tables of the group, joined (the evaluation's figures when the
    /// group has none).
    pub fn table_names(&self) -> String {
        let names: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| t.rendered)
            .map(|t| t.name.as_str())
            .collect();
        if names.is_empty() {
            "the evaluation's figures".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// Calls `add` with the flat index of every cell the inner cell `inner` counts towards: itself
/// and each of its margins (each dimension either kept or replaced by `Total`).
pub(crate) fn for_each_cell_of_inner(shape: &Shape, inner: usize, mut add: impl FnMut(usize)) {
    let sizes: Vec<usize> = shape.labels.iter().map(Vec::len).collect();
    let d = sizes.len();
    let mut idx = vec![0usize; d];
    let mut rest = inner;
    for k in (0..d).rev() {
        idx[k] = rest % sizes[k];
        rest /= sizes[k];
    }
    let mut target = vec![0usize; d];
    for mask in 0..(1usize << d) {
        for k in 0..d {
            target[k] = if mask >> k & 1 == 1 { sizes[k] } else { idx[k] };
        }
        add(shape.encode(&target));
    }
}

/// Counts (with every margin) of a table from its inner cells, in the shape's flat layout.
pub(crate) fn counts_with_margins(shape: &Shape, inner: &[u64]) -> Vec<u64> {
    let mut out = vec![0u64; shape.n_cells()];
    let n_inner: usize = shape.labels.iter().map(Vec::len).product();
    for (i, &v) in inner.iter().enumerate().take(n_inner) {
        if v != 0 {
            for_each_cell_of_inner(shape, i, |cell| out[cell] += v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sizes: &[usize]) -> Shape {
        Shape {
            dims: (0..sizes.len()).map(|d| format!("d{d}")).collect(),
            labels: sizes
                .iter()
                .map(|&n| (0..n).map(|i| format!("v{i}")).collect())
                .collect(),
        }
    }

    #[test]
    fn margins_add_up_and_constraints_cover_every_line() {
        let s = shape(&[2, 3]);
        let counts = counts_with_margins(&s, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(counts, vec![1, 2, 3, 6, 4, 5, 6, 15, 5, 7, 9, 21]);
        let cons = s.constraints();
        // 2 row totals + 3 column totals + the grand total in both directions.
        assert_eq!(cons.len(), 7);
        for (t, m) in cons {
            assert_eq!(counts[t], m.iter().map(|&i| counts[i]).sum::<u64>());
        }
    }

    #[test]
    fn tables_sharing_a_margin_share_cells() {
        let ab = shape(&[2, 2]);
        let mut ac = shape(&[2, 3]);
        ac.dims[1] = "c".into();
        let t1 = TableData {
            name: "ab".into(),
            counts: counts_with_margins(&ab, &[1, 2, 3, 4]),
            shape: ab,
            sums: None,
        };
        let t2 = TableData {
            name: "ac".into(),
            counts: counts_with_margins(&ac, &[1, 1, 1, 2, 2, 3]),
            shape: ac,
            sums: None,
        };
        let g = Group::build(vec![t1, t2]);
        // 9 cells of ab, plus the 6 inner and 3 column margins of ac; the d0 margin and the
        // grand total are shared.
        assert_eq!(g.cells.len(), 9 + 6 + 3);
        assert_eq!(g.tables[0].cell_ids[8], g.tables[1].cell_ids[11]);
    }
}
