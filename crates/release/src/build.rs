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

/// The label of the level that rare levels are merged into.
pub const OTHER: &str = "Other";

/// Sorts labels: numerically when every label is a number, otherwise as text; then `Other`,
/// then `Unknown`.
fn sorted_labels(labels: &[String]) -> Vec<String> {
    let mut out: Vec<String> = labels
        .iter()
        .filter(|l| *l != UNKNOWN && *l != OTHER)
        .cloned()
        .collect();
    if out.iter().all(|l| l.parse::<f64>().is_ok_and(f64::is_finite)) {
        out.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            x.total_cmp(&y).then_with(|| a.cmp(b))
        });
    } else {
        out.sort();
    }
    for last in [OTHER, UNKNOWN] {
        if labels.iter().any(|l| l == last) {
            out.push(last.to_owned());
        }
    }
    out
}

/// Merges the rare levels of one column: a level held by fewer than `threshold` persons
/// (`Unknown` excepted) becomes `Other`. Returns the merged labels and, per dictionary code, the
/// code of its merged label.
fn merge_rare(dict: &Dictionary, persons_per_code: &[u64], threshold: u64) -> (Vec<String>, Vec<usize>) {
    let mut labels: Vec<String> = Vec::new();
    let mut map = Vec::with_capacity(dict.labels.len());
    for (code, label) in dict.labels.iter().enumerate() {
        let merged = if persons_per_code[code] < threshold && label != UNKNOWN {
            OTHER
        } else {
            label.as_str()
        };
        let at = labels.iter().position(|l| l == merged).unwrap_or_else(|| {
            labels.push(merged.to_owned());
            labels.len() - 1
        });
        map.push(at);
    }
    (labels, map)
}

/// The most levels a dimension may have: persons / threshold (at least 1), so that on average
/// every level could hold a publishable count.
fn max_levels(persons: usize, threshold: u64) -> usize {
    (persons as u64 / threshold.max(1)).max(1) as usize
}

/// The most cells (margins included) a released table may have: protecting and auditing a
/// table grows faster than its cells, and a table this large publishes little that is not
/// suppressed.
pub const MAX_TABLE_CELLS: usize = 100_000;

/// Reads a source once and builds every table declared on it.
///
/// A person (non-null `person_id`) is counted once, in the cell of their first record in input
/// order (part files in name order, rows in file order); records whose `person_id` is null
/// (unlinked) are not counted. A null dimension value is labelled `Unknown`; a null magnitude
/// value contributes 0.
///
/// Rare categories: a dimension with more distinct values than persons / `threshold` is refused
/// (it would publish rare labels, and its table would be mostly suppressed cells); otherwise the
/// levels held by fewer than `threshold` persons are merged into one level labelled `Other`
/// (a literal `Other` value falls in the same level) before anything is counted.
pub(crate) fn build_tables(
    source: &Path,
    specs: &[&TableSpec],
    keep_top: usize,
    threshold: u64,
) -> Result<Vec<TableData>, ReleaseError> {
    let named = Named { source, specs };
    let persons = Persons::read(&named)?;
    let levels = Levels::of(&persons, &named, threshold)?;
    for spec in specs {
        let cells = spec.by.iter().try_fold(1_usize, |cells, d| {
            // Each (merged) level, and the margin labelled Total.
            cells.checked_mul(levels.sorted[persons.dim(d)].len() + 1)
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
    Ok(specs
        .iter()
        .map(|spec| count_table(spec, &persons, &levels, keep_top))
        .collect())
}

/// The source and tables being built, to name them in errors.
struct Named<'a> {
    source: &'a Path,
    specs: &'a [&'a TableSpec],
}

impl Named<'_> {
    /// The first table that uses `column`.
    fn table_of(&self, column: &str) -> String {
        self.specs
            .iter()
            .find(|s| s.by.iter().any(|d| d == column) || s.sum.as_deref() == Some(column))
            .or(self.specs.first())
            .map_or_else(String::new, |s| s.name.clone())
    }

    fn column_error(&self, column: &str, reason: &str) -> ReleaseError {
        ReleaseError::Column {
            table: self.table_of(column),
            path: self.source.to_path_buf(),
            column: column.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Every distinct person of a source: per dimension a dictionary code, per sum column a value
/// (from their first record).
struct Persons {
    dims: Vec<String>,
    sums: Vec<String>,
    dicts: Vec<Dictionary>,
    /// `dims.len()` codes per person.
    codes: Vec<u32>,
    /// `sums.len()` values per person.
    values: Vec<f64>,
    nonneg: Vec<bool>,
    integer: Vec<bool>,
    count: usize,
}

impl Persons {
    fn read(named: &Named) -> Result<Self, ReleaseError> {
        let mut dims: Vec<String> = Vec::new();
        let mut sums: Vec<String> = Vec::new();
        for s in named.specs {
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
        let mut persons = Persons {
            dicts: dims.iter().map(|_| Dictionary::default()).collect(),
            nonneg: vec![true; sums.len()],
            integer: vec![true; sums.len()],
            dims,
            sums,
            codes: Vec::new(),
            values: Vec::new(),
            count: 0,
        };
        let mut seen: HashSet<String> = HashSet::new();
        for batch in linklab_store::read_parts(named.source, 64 * 1024)? {
            persons.add_batch(&batch?, named, &mut seen)?;
        }
        persons.count = seen.len();
        Ok(persons)
    }

    fn dim(&self, d: &str) -> usize {
        self.dims
            .iter()
            .position(|x| x == d)
            .expect("every by column is a dimension")
    }

    /// The columns of a batch, read as text (dimensions) and numbers (sums).
    fn columns(
        &self,
        batch: &arrow::record_batch::RecordBatch,
        named: &Named,
    ) -> Result<
        (
            arrow::array::ArrayRef,
            Vec<arrow::array::ArrayRef>,
            Vec<arrow::array::ArrayRef>,
        ),
        ReleaseError,
    > {
        let schema = batch.schema();
        let column = |name: &str| -> Result<arrow::array::ArrayRef, ReleaseError> {
            let (i, _) = schema
                .column_with_name(name)
                .ok_or_else(|| named.column_error(name, "no such column"))?;
            Ok(batch.column(i).clone())
        };
        let pid = cast(&column("person_id")?, &DataType::Utf8)
            .map_err(|_| named.column_error("person_id", "cannot be read as text"))?;
        let mut dim_cols = Vec::with_capacity(self.dims.len());
        for d in &self.dims {
            let col = column(d)?;
            if matches!(
                col.data_type(),
                DataType::Binary | DataType::FixedSizeBinary(_) | DataType::LargeBinary
            ) {
                return Err(named.column_error(d, "binary columns cannot be tabulated"));
            }
            dim_cols.push(
                cast(&col, &DataType::Utf8).map_err(|_| named.column_error(d, "cannot be read as text"))?,
            );
        }
        let mut sum_cols = Vec::with_capacity(self.sums.len());
        for c in &self.sums {
            let col = column(c)?;
            if !col.data_type().is_numeric() && col.data_type() != &DataType::Boolean {
                return Err(named.column_error(c, "a sum column must be numeric"));
            }
            sum_cols.push(
                cast(&col, &DataType::Float64)
                    .map_err(|_| named.column_error(c, "cannot be read as a number"))?,
            );
        }
        Ok((pid, dim_cols, sum_cols))
    }

    /// Adds the persons of a batch not seen before.
    fn add_batch(
        &mut self,
        batch: &arrow::record_batch::RecordBatch,
        named: &Named,
        seen: &mut HashSet<String>,
    ) -> Result<(), ReleaseError> {
        let (pid, dim_cols, sum_cols) = self.columns(batch, named)?;
        let pid = pid.as_string::<i32>();
        for row in 0..batch.num_rows() {
            if pid.is_null(row) || seen.contains(pid.value(row)) {
                continue;
            }
            seen.insert(pid.value(row).to_owned());
            for (k, col) in dim_cols.iter().enumerate() {
                let col = col.as_string::<i32>();
                let label = if col.is_null(row) { UNKNOWN } else { col.value(row) };
                if label == TOTAL {
                    return Err(ReleaseError::ReservedLabel {
                        table: named.table_of(&self.dims[k]),
                        path: named.source.to_path_buf(),
                        column: self.dims[k].clone(),
                    });
                }
                self.codes.push(self.dicts[k].code(label));
            }
            for (k, col) in sum_cols.iter().enumerate() {
                let col = col.as_primitive::<Float64Type>();
                let v = if col.is_null(row) { 0.0 } else { col.value(row) };
                if !v.is_finite() {
                    return Err(
                        named.column_error(&self.sums[k], "holds a value that is not a finite number")
                    );
                }
                self.nonneg[k] &= v >= 0.0;
                self.integer[k] &= v.fract() == 0.0;
                self.values.push(v);
            }
        }
        Ok(())
    }
}

/// Per dimension: the sorted labels after rare levels are merged, and the sorted position of
/// each dictionary code.
struct Levels {
    sorted: Vec<Vec<String>>,
    position: Vec<Vec<usize>>,
}

impl Levels {
    /// Refuses a dimension with too many levels, and merges the rare ones.
    fn of(persons: &Persons, named: &Named, threshold: u64) -> Result<Self, ReleaseError> {
        let n_dims = persons.dims.len();
        let mut persons_per_code: Vec<Vec<u64>> =
            persons.dicts.iter().map(|d| vec![0; d.labels.len()]).collect();
        for p in 0..persons.count {
            for (k, counts) in persons_per_code.iter_mut().enumerate() {
                counts[persons.codes[p * n_dims + k] as usize] += 1;
            }
        }
        let n_persons = persons.count;
        let limit = max_levels(n_persons, threshold);
        for (k, d) in persons.dicts.iter().enumerate() {
            if d.labels.len() > limit {
                return Err(named.column_error(
                    &persons.dims[k],
                    &format!(
                        "has {} distinct values among {n_persons} persons, more than persons / threshold ({limit}): a dimension with that many levels would publish rare labels; tabulate a coarser column",
                        d.labels.len()
                    ),
                ));
            }
        }
        let mut levels = Levels {
            sorted: Vec::with_capacity(n_dims),
            position: Vec::with_capacity(n_dims),
        };
        for (d, counts) in persons.dicts.iter().zip(&persons_per_code) {
            let (merged, map) = merge_rare(d, counts, threshold);
            let s = sorted_labels(&merged);
            levels.position.push(
                map.iter()
                    .map(|&m| {
                        s.iter()
                            .position(|x| *x == merged[m])
                            .expect("every label is sorted")
                    })
                    .collect(),
            );
            levels.sorted.push(s);
        }
        Ok(levels)
    }
}

/// Counts one table (and its sums) from the persons.
fn count_table(spec: &TableSpec, persons: &Persons, levels: &Levels, keep_top: usize) -> TableData {
    let n_dims = persons.dims.len();
    let cols: Vec<usize> = spec.by.iter().map(|d| persons.dim(d)).collect();
    let shape = Shape {
        dims: spec.by.clone(),
        labels: cols.iter().map(|&k| levels.sorted[k].clone()).collect(),
    };
    let sizes: Vec<usize> = shape.labels.iter().map(Vec::len).collect();
    let n_inner: usize = sizes.iter().product();
    let mut inner = vec![0u64; n_inner];
    let sum_k = spec.sum.as_ref().map(|c| {
        persons
            .sums
            .iter()
            .position(|x| x == c)
            .expect("sums collected above")
    });
    let mut inner_stats = if sum_k.is_some() {
        vec![SumStats::default(); n_inner]
    } else {
        Vec::new()
    };
    for p in 0..persons.count {
        let codes = &persons.codes[p * n_dims..(p + 1) * n_dims];
        let flat = cols.iter().zip(&sizes).fold(0, |acc, (&k, &size)| {
            acc * size + levels.position[k][codes[k] as usize]
        });
        inner[flat] += 1;
        if let Some(k) = sum_k {
            inner_stats[flat].add(persons.values[p * persons.sums.len() + k], keep_top);
        }
    }
    let counts = counts_with_margins(&shape, &inner);
    let sums = sum_k.map(|k| {
        let stats = stats_with_margins(&shape, &inner_stats, keep_top);
        (
            SumLayer {
                column: persons.sums[k].clone(),
                nonnegative: persons.nonneg[k],
                integer: persons.integer[k],
            },
            stats,
        )
    });
    TableData {
        name: spec.name.clone(),
        shape,
        counts,
        sums,
    }
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
        let l: Vec<String> = ["7", "Unknown", "Other", "3"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(sorted_labels(&l), vec!["3", "7", "Other", "Unknown"]);
    }

    fn check_merge(levels: &[(&str, u64)], threshold: u64, expected: &[&str]) {
        let mut dict = Dictionary::default();
        let counts: Vec<u64> = levels
            .iter()
            .map(|&(l, n)| {
                dict.code(l);
                n
            })
            .collect();
        let (merged, map) = merge_rare(&dict, &counts, threshold);
        let got: Vec<&str> = map.iter().map(|&m| merged[m].as_str()).collect();
        assert_eq!(got, expected, "levels {levels:?}");
    }

    #[test]
    fn rare_levels_merge_into_other() {
        check_merge(
            &[("a", 12), ("b", 3), ("c", 9), ("d", 10)],
            10,
            &["a", "Other", "Other", "d"],
        );
        check_merge(&[("Unknown", 2), ("b", 30)], 10, &["Unknown", "b"]);
        check_merge(&[("Other", 20), ("x", 1)], 10, &["Other", "Other"]);
        check_merge(&[("a", 1)], 1, &["a"]);
    }

    #[test]
    fn a_dimension_may_have_at_most_persons_over_threshold_levels() {
        assert_eq!(max_levels(1500, 10), 150);
        assert_eq!(max_levels(5, 10), 1);
        assert_eq!(max_levels(0, 10), 1);
    }
}
