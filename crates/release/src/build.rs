//! Counting distinct persons from Parquet part files into tables with margins.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};

use crate::model::{Shape, SumLayer, SumStats, TOTAL, TableData, UNKNOWN, counts_with_margins};
use crate::{ReleaseError, TableSpec};

/// One column's categories, in order of first appearance.
#[derive(Debug, Default)]
struct Dictionary {
    codes: HashMap<String, u32>,
    labels: Vec<String>,
}

impl Dictionary {
    fn code(&mut self, label: &str) -> u32 {
        if let Some(&c) = self.codes.get(label) {
            return c;
        }
        let c = self.labels.len() as u32;
        self.codes.insert(label.to_owned(), c);
        self.labels.push(label.to_owned());
        c
    }
}

/// Sorts labels: numerically when every label is a number, otherwise as text; `Unknown` last.
fn sorted_labels(labels: &[String]) -> Vec<String> {
    let mut out: Vec<String> = labels.iter().filter(|l| *l != UNKNOWN).cloned().collect();
    if out.iter().all(|l| l.parse::<f64>().is_ok_and(f64::is_finite)) {
        out.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        out.sort();
    }
    if labels.iter().any(|l| l == UNKNOWN) {
        out.push(UNKNOWN.to_owned());
    }
    out
}

/// Reads a source once and builds every table declared on it.
///
/// A person (non-null `person_id`) is counted once, in the cell of their first record in input
/// order (part files in name order, rows in file order); records whose `person_id` is null
/// (unlinked) are not counted. A null dimension value is labelled `Unknown`; a null magnitude
/// value contributes 0.
/// The most cells (margins included) a released table may have: protecting and auditing a
/// table grows faster than its cells, and a table this large publishes little that is not
/// suppressed.
pub const MAX_TABLE_CELLS: usize = 100_000;

pub(crate) fn build_tables(
    source: &Path,
    specs: &[&TableSpec],
    keep_top: usize,
) -> Result<Vec<TableData>, ReleaseError> {
    let mut dims: Vec<String> = Vec::new();
    let mut sums: Vec<String> = Vec::new();
    for s in specs {
        for d in &s.by {
            if !dims.contains(d) {
                dims.push(d.clone());
            }
        }
        if let Some(c) = &s.sum
            && !sums.contains(c)
        {
            sums.push(c.clone());
        }
    }
    let first_table = specs.first().map_or_else(String::new, |s| s.name.clone());
    let column_error = |column: &str, reason: &str| ReleaseError::Column {
        table: specs
            .iter()
            .find(|s| s.by.iter().any(|d| d == column) || s.sum.as_deref() == Some(column))
            .map_or_else(|| first_table.clone(), |s| s.name.clone()),
        path: source.to_path_buf(),
        column: column.to_owned(),
        reason: reason.to_owned(),
    };
    let mut dicts: Vec<Dictionary> = dims.iter().map(|_| Dictionary::default()).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut person_codes: Vec<u32> = Vec::new();
    let mut person_sums: Vec<f64> = Vec::new();
    let mut nonneg = vec![true; sums.len()];
    let mut integer = vec![true; sums.len()];
    for batch in linklab_store::read_parts(source, 64 * 1024)? {
        let batch = batch?;
        let schema = batch.schema();
        let column = |name: &str| -> Result<arrow::array::ArrayRef, ReleaseError> {
            let (i, _) = schema
                .column_with_name(name)
                .ok_or_else(|| column_error(name, "no such column"))?;
            Ok(batch.column(i).clone())
        };
        let pid = cast(&column("person_id")?, &DataType::Utf8)
            .map_err(|_| column_error("person_id", "cannot be read as text"))?;
        let pid = pid.as_string::<i32>();
        let mut dim_cols = Vec::with_capacity(dims.len());
        for d in &dims {
            let col = column(d)?;
            if matches!(
                col.data_type(),
                DataType::Binary | DataType::FixedSizeBinary(_) | DataType::LargeBinary
            ) {
                return Err(column_error(d, "binary columns cannot be tabulated"));
            }
            dim_cols
                .push(cast(&col, &DataType::Utf8).map_err(|_| column_error(d, "cannot be read as text"))?);
        }
        let mut sum_cols = Vec::with_capacity(sums.len());
        for c in &sums {
            let col = column(c)?;
            if !col.data_type().is_numeric() && col.data_type() != &DataType::Boolean {
                return Err(column_error(c, "a sum column must be numeric"));
            }
            sum_cols.push(
                cast(&col, &DataType::Float64).map_err(|_| column_error(c, "cannot be read as a number"))?,
            );
        }
        for row in 0..batch.num_rows() {
            if pid.is_null(row) {
                continue;
            }
            let person = pid.value(row);
            if seen.contains(person) {
                continue;
            }
            seen.insert(person.to_owned());
            for (k, col) in dim_cols.iter().enumerate() {
                let col = col.as_string::<i32>();
                let label = if col.is_null(row) { UNKNOWN } else { col.value(row) };
                if label == TOTAL {
                    let table = specs
                        .iter()
                        .find(|s| s.by.contains(&dims[k]))
                        .map_or_else(|| first_table.clone(), |s| s.name.clone());
                    return Err(ReleaseError::ReservedLabel {
                        table,
                        path: source.to_path_buf(),
                        column: dims[k].clone(),
                    });
                }
                person_codes.push(dicts[k].code(label));
            }
            for (k, col) in sum_cols.iter().enumerate() {
                let col = col.as_primitive::<Float64Type>();
                let v = if col.is_null(row) { 0.0 } else { col.value(row) };
                if !v.is_finite() {
                    return Err(column_error(
                        &sums[k],
                        "holds a value that is not a finite number",
                    ));
                }
                nonneg[k] &= v >= 0.0;
                integer[k] &= v.fract() == 0.0;
                person_sums.push(v);
            }
        }
    }
    let n_persons = seen.len();
    drop(seen);
    for spec in specs {
        let cells = spec.by.iter().try_fold(1_usize, |cells, d| {
            let k = dims
                .iter()
                .position(|x| x == d)
                .expect("every by column is a dimension");
            // Each value, and the margin labelled Total.
            cells.checked_mul(dicts[k].labels.len() + 1)
        });
        if cells.is_none_or(|cells| cells > MAX_TABLE_CELLS) {
            return Err(ReleaseError::Refused {
                table: spec.name.clone(),
                reason: format!(
                    "it would have {} cells with its margins, more than the {MAX_TABLE_CELLS} a table may have; group by fewer or coarser columns",
                    cells.map_or_else(|| "too many".to_owned(), |c| c.to_string())
                ),
            });
        }
    }
    // Per column: the sorted position of each dictionary code.
    let sorted: Vec<Vec<String>> = dicts.iter().map(|d| sorted_labels(&d.labels)).collect();
    let position: Vec<Vec<usize>> = dicts
        .iter()
        .zip(&sorted)
        .map(|(d, s)| {
            d.labels
                .iter()
                .map(|l| s.iter().position(|x| x == l).expect("every label is sorted"))
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let cols: Vec<usize> = spec
            .by
            .iter()
            .map(|d| dims.iter().position(|x| x == d).expect("dims collected above"))
            .collect();
        let shape = Shape {
            dims: spec.by.clone(),
            labels: cols.iter().map(|&k| sorted[k].clone()).collect(),
        };
        let sizes: Vec<usize> = shape.labels.iter().map(Vec::len).collect();
        let n_inner: usize = sizes.iter().product();
        let mut inner = vec![0u64; n_inner];
        let sum_k = spec
            .sum
            .as_ref()
            .map(|c| sums.iter().position(|x| x == c).expect("sums collected above"));
        let mut inner_stats = if sum_k.is_some() {
            vec![SumStats::default(); n_inner]
        } else {
            Vec::new()
        };
        for p in 0..n_persons {
            let codes = &person_codes[p * dims.len()..(p + 1) * dims.len()];
            let flat = cols
                .iter()
                .zip(&sizes)
                .fold(0, |acc, (&k, &size)| acc * size + position[k][codes[k] as usize]);
            inner[flat] += 1;
            if let Some(k) = sum_k {
                inner_stats[flat].add(person_sums[p * sums.len() + k], keep_top);
            }
        }
        let counts = counts_with_margins(&shape, &inner);
        let sums_data = sum_k.map(|k| {
            let stats = stats_with_margins(&shape, &inner_stats, keep_top);
            (
                SumLayer {
                    column: sums[k].clone(),
                    nonnegative: nonneg[k],
                    integer: integer[k],
                },
                stats,
            )
        });
        out.push(TableData {
            name: spec.name.clone(),
            shape,
            counts,
            sums: sums_data,
        });
    }
    Ok(out)
}

/// Magnitude statistics of every cell (margins included) from the inner cells.
pub(crate) fn stats_with_margins(shape: &Shape, inner: &[SumStats], keep: usize) -> Vec<SumStats> {
    let mut out = vec![SumStats::default(); shape.n_cells()];
    for (i, s) in inner.iter().enumerate() {
        if !(s.top.is_empty() && s.total == 0.0) {
            crate::model::for_each_cell_of_inner(shape, i, |cell| out[cell].merge(s, keep));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_numerically_with_unknown_last() {
        let l: Vec<String> = ["10", "9", "Unknown", "100"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(sorted_labels(&l), vec!["9", "10", "100", "Unknown"]);
        let l: Vec<String> = ["b", "Unknown", "a"].iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(sorted_labels(&l), vec!["a", "b", "Unknown"]);
    }
}
