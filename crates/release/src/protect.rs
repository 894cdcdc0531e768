//! Protection of an in-memory count table (used by benchmarks and tests).

use crate::model::{Group, Shape, TableData, counts_with_margins};
use crate::suppress::protect;
use crate::{CellStatus, DisclosureRules, ReleaseError};

/// One cell of a protected table.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedCell {
    /// Per dimension the category index, or `None` for `Total`.
    pub index: Vec<Option<usize>>,
    /// The true count.
    pub count: u64,
    /// Published or why suppressed.
    pub status: CellStatus,
    /// The published (rounded) count, `None` when suppressed.
    pub published: Option<u64>,
}

/// A protected table: every cell, margins included, in row-major order over the dimension
/// sizes + 1 (the last position of each dimension is `Total`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedTable {
    /// Category counts of each dimension.
    pub sizes: Vec<usize>,
    /// Every cell.
    pub cells: Vec<ProtectedCell>,
    /// Rounds of the secondary suppression loop.
    pub rounds: usize,
}

impl ProtectedTable {
    /// The cell at a per-dimension index (`None` = `Total`).
    pub fn cell(&self, index: &[Option<usize>]) -> Option<&ProtectedCell> {
        if index.len() != self.sizes.len() {
            return None;
        }
        let mut flat = 0;
        for (i, &size) in index.iter().zip(&self.sizes) {
            let i = i.unwrap_or(size);
            if i > size {
                return None;
            }
            flat = flat * (size + 1) + i;
        }
        self.cells.get(flat)
    }
}

/// Suppresses and audits one in-memory count table: `sizes` are the category counts of each
/// dimension and `counts` the inner cells in row-major order (first dimension slowest).
/// Margins are computed here. The audit decides pass/fail with witnesses (see the crate docs),
/// without computing exact intervals for every cell.
pub fn protect_table(
    sizes: &[usize],
    counts: &[u64],
    rules: &DisclosureRules,
) -> Result<ProtectedTable, ReleaseError> {
    rules.validate()?;
    let n: usize = sizes.iter().product();
    if sizes.is_empty() || counts.len() != n {
        return Err(ReleaseError::config(format!(
            "protect_table needs at least one dimension and {n} inner counts, got {}",
            counts.len()
        )));
    }
    let shape = Shape {
        dims: (0..sizes.len()).map(|d| format!("d{d}")).collect(),
        labels: sizes
            .iter()
            .map(|&s| (0..s).map(|i| i.to_string()).collect())
            .collect(),
    };
    let all = counts_with_margins(&shape, counts);
    let group = Group::build(vec![TableData {
        name: "table".into(),
        shape: shape.clone(),
        counts: all,
        sums: None,
    }]);
    let prot = protect(&group, rules, false)?;
    let table = &group.tables[0];
    let cells = table
        .cell_ids
        .iter()
        .enumerate()
        .map(|(flat, &id)| {
            let idx = shape.decode(flat);
            let status = prot.status[id];
            let count = group.cells[id].count;
            ProtectedCell {
                index: idx
                    .iter()
                    .enumerate()
                    .map(|(d, &i)| (!shape.is_total(d, i)).then_some(i))
                    .collect(),
                count,
                status,
                published: (!status.is_hidden()).then(|| rules.round(count)),
            }
        })
        .collect();
    Ok(ProtectedTable {
        sizes: sizes.to_vec(),
        cells,
        rounds: prot.rounds,
    })
}
