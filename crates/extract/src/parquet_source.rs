//! The Parquet reader: the requested columns only, rendered as text.

use std::fmt::{Display, Write as _};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, OffsetSizeTrait};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use chrono::NaiveDate;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use crate::ExtractError;
use crate::batch::{Batch, TextColumn};

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;
const MILLIS_PER_DAY: i64 = 86_400_000;

pub(crate) struct ParquetSource {
    reader: ParquetRecordBatchReader,
    /// The requested names, for errors.
    names: Vec<String>,
    /// For each requested column, its index in the projected batches.
    positions: Vec<usize>,
    /// For each requested column, its index in the file's schema.
    indices: Vec<usize>,
    header_len: usize,
    records_read: u64,
    /// The rows the footer declares (checked for consistency when the file was opened).
    declared_rows: u64,
}

/// Row counts of a Parquet footer that disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CountMismatch {
    /// The row group at fault, or `None` for the file as a whole.
    pub row_group: Option<usize>,
    /// The rows declared.
    pub declared: u64,
    /// The rows (or values) found.
    pub found: u64,
}

/// Checks the row counts a Parquet footer declares against each other: the file's row count is
/// the sum of its row groups', and every non-repeated column chunk that is read holds one value
/// per row of its group (`groups`: each group's declared rows and its chunks' value counts). The
/// reader trusts a group's row count, so a false one would silently drop or invent rows. Returns
/// the total rows.
pub(crate) fn check_declared(file_rows: i64, groups: &[(i64, Vec<i64>)]) -> Result<u64, CountMismatch> {
    let count = |n: i64| u64::try_from(n).unwrap_or(u64::MAX);
    let mut total: u64 = 0;
    for (index, (rows, chunks)) in groups.iter().enumerate() {
        if let Some(&values) = chunks.iter().find(|&&values| values != *rows) {
            return Err(CountMismatch {
                row_group: Some(index),
                declared: count(*rows),
                found: count(values),
            });
        }
        total = total.saturating_add(count(*rows));
    }
    if count(file_rows) != total {
        return Err(CountMismatch {
            row_group: None,
            declared: count(file_rows),
            found: total,
        });
    }
    Ok(total)
}

fn supported(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Date32
        | DataType::Date64
        | DataType::Float32
        | DataType::Float64
        | DataType::Boolean => true,
        t if t.is_integer() => true,
        DataType::Dictionary(_, values) => !matches!(**values, DataType::Dictionary(..)) && supported(values),
        _ => false,
    }
}

impl ParquetSource {
    pub(crate) fn open(path: &Path, columns: &[String], batch_rows: usize) -> Result<Self, ExtractError> {
        let file = File::open(path).map_err(|source| ExtractError::Open {
            path: path.into(),
            source,
        })?;
        let parquet_error = |source| ExtractError::Parquet {
            path: path.into(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
        let schema = builder.schema().clone();
        let mut indices = Vec::with_capacity(columns.len());
        let mut missing = Vec::new();
        for name in columns {
            let mut found = schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name() == name);
            match (found.next(), found.count()) {
                (Some((index, field)), 0) => {
                    if !supported(field.data_type()) {
                        return Err(ExtractError::UnsupportedType {
                            path: path.into(),
                            column: name.clone(),
                            data_type: field.data_type().to_string(),
                        });
                    }
                    indices.push(index);
                }
                (Some(_), more) => {
                    return Err(ExtractError::DuplicateColumn {
                        path: path.into(),
                        column: name.clone(),
                        count: more + 1,
                    });
                }
                (None, _) => missing.push(name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(ExtractError::MissingColumns {
                path: path.into(),
                missing,
                header_len: schema.fields().len(),
                hint: String::new(),
            });
        }
        // Projected batches hold the chosen root columns in schema order, each once.
        let mut roots = indices.clone();
        roots.sort_unstable();
        roots.dedup();
        let positions = indices
            .iter()
            .map(|i| roots.binary_search(i).expect("every index is among the roots"))
            .collect();
        let metadata = builder.metadata();
        let schema_descr = builder.parquet_schema();
        let groups: Vec<(i64, Vec<i64>)> = metadata
            .row_groups()
            .iter()
            .map(|group| {
                let chunks = group
                    .columns()
                    .iter()
                    .enumerate()
                    .filter(|(leaf, chunk)| {
                        chunk.column_descr().max_rep_level() == 0
                            && roots.contains(&schema_descr.get_column_root_idx(*leaf))
                    })
                    .map(|(_, chunk)| chunk.num_values())
                    .collect();
                (group.num_rows(), chunks)
            })
            .collect();
        let declared_rows =
            check_declared(metadata.file_metadata().num_rows(), &groups).map_err(|mismatch| {
                ExtractError::RowCount {
                    path: path.into(),
                    row_group: mismatch.row_group,
                    declared: mismatch.declared,
                    found: mismatch.found,
                }
            })?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(batch_rows)
            .build()
            .map_err(parquet_error)?;
        Ok(Self {
            reader,
            names: columns.to_vec(),
            positions,
            indices,
            header_len: schema.fields().len(),
            records_read: 0,
            declared_rows,
        })
    }

    pub(crate) fn source_columns(&self) -> &[usize] {
        &self.indices
    }

    pub(crate) fn header_len(&self) -> usize {
        self.header_len
    }

    pub(crate) fn next_batch(&mut self, path: &Path) -> Result<Option<Batch>, ExtractError> {
        let batch = loop {
            match self.reader.next() {
                // Every row the footer declares must have been read: none silently dropped.
                None if self.records_read != self.declared_rows => {
                    return Err(ExtractError::RowCount {
                        path: path.into(),
                        row_group: None,
                        declared: self.declared_rows,
                        found: self.records_read,
                    });
                }
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ExtractError::Parquet {
                        path: path.into(),
                        source: e.into(),
                    });
                }
                Some(Ok(batch)) if batch.num_rows() == 0 => {}
                Some(Ok(batch)) => break batch,
            }
        };
        let rows = batch.num_rows();
        let mut columns = Vec::with_capacity(self.positions.len());
        for (name, &position) in self.names.iter().zip(&self.positions) {
            let array = batch.column(position);
            let mut column = TextColumn::with_capacity(rows, array.get_buffer_memory_size());
            render(array, &mut column).ok_or_else(|| ExtractError::Convert {
                path: path.into(),
                column: name.clone(),
            })?;
            columns.push(column);
        }
        let first = self.records_read + 1;
        self.records_read += rows as u64;
        let records = (first..=self.records_read).collect();
        Ok(Some(Batch {
            columns,
            records,
            lines: None,
            rejects: Vec::new(),
        }))
    }
}

/// Appends every value of `array` to `out` as text (a null as an empty string). `None` if the
/// array is not of a type it can render.
fn render(array: &ArrayRef, out: &mut TextColumn) -> Option<()> {
    match array.data_type() {
        DataType::Utf8 => strings::<i32>(array, out),
        DataType::LargeUtf8 => strings::<i64>(array, out),
        DataType::Utf8View => {
            let a = array.as_string_view_opt()?;
            for i in 0..a.len() {
                out.push(if a.is_null(i) { "" } else { a.value(i) });
            }
            Some(())
        }
        DataType::Date32 => {
            let a = array.as_primitive_opt::<arrow::datatypes::Date32Type>()?;
            dates(a.len(), |i| a.is_null(i), |i| i64::from(a.value(i)), out);
            Some(())
        }
        DataType::Date64 => {
            let a = array.as_primitive_opt::<arrow::datatypes::Date64Type>()?;
            dates(
                a.len(),
                |i| a.is_null(i),
                |i| a.value(i).div_euclid(MILLIS_PER_DAY),
                out,
            );
            Some(())
        }
        DataType::Int8 => numbers::<Int8Type>(array, out),
        DataType::Int16 => numbers::<Int16Type>(array, out),
        DataType::Int32 => numbers::<Int32Type>(array, out),
        DataType::Int64 => numbers::<Int64Type>(array, out),
        DataType::UInt8 => numbers::<UInt8Type>(array, out),
        DataType::UInt16 => numbers::<UInt16Type>(array, out),
        DataType::UInt32 => numbers::<UInt32Type>(array, out),
        DataType::UInt64 => numbers::<UInt64Type>(array, out),
        DataType::Float32 => numbers::<Float32Type>(array, out),
        DataType::Float64 => numbers::<Float64Type>(array, out),
        DataType::Boolean => {
            let a = array.as_boolean_opt()?;
            for i in 0..a.len() {
                out.push(match (a.is_null(i), a.value(i)) {
                    (true, _) => "",
                    (false, true) => "true",
                    (false, false) => "false",
                });
            }
            Some(())
        }
        DataType::Dictionary(_, values) => {
            // Casting a dictionary to its value type cannot fail on values, and its error
            // (which is dropped here anyway) would not be shown.
            let plain = arrow::compute::cast(array, values).ok()?;
            render(&plain, out)
        }
        _ => None,
    }
}

fn strings<O: OffsetSizeTrait>(array: &ArrayRef, out: &mut TextColumn) -> Option<()> {
    let a = array.as_string_opt::<O>()?;
    for i in 0..a.len() {
        out.push(if a.is_null(i) { "" } else { a.value(i) });
    }
    Some(())
}

fn numbers<T: ArrowPrimitiveType>(array: &ArrayRef, out: &mut TextColumn) -> Option<()>
where
    T::Native: Display,
{
    let a = array.as_primitive_opt::<T>()?;
    for i in 0..a.len() {
        if a.is_null(i) {
            out.push("");
        } else {
            let value = a.value(i);
            out.push_with(|buf| {
                let _ = write!(buf, "{value}");
            });
        }
    }
    Some(())
}

/// Dates as `YYYY-MM-DD`, from days since 1970-01-01. A day outside chrono's range is rendered
/// as an empty value rather than failing the whole extract.
fn dates(len: usize, is_null: impl Fn(usize) -> bool, days: impl Fn(usize) -> i64, out: &mut TextColumn) {
    for i in 0..len {
        let date = if is_null(i) {
            None
        } else {
            i32::try_from(days(i))
                .ok()
                .and_then(|d| d.checked_add(EPOCH_DAYS_FROM_CE))
                .and_then(NaiveDate::from_num_days_from_ce_opt)
        };
        match date {
            Some(date) => out.push_with(|buf| {
                let _ = write!(buf, "{}", date.format("%Y-%m-%d"));
            }),
            None => out.push(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CountMismatch, check_declared};

    fn check(file_rows: i64, groups: &[(i64, &[i64])], expected: Result<u64, CountMismatch>) {
        let groups: Vec<(i64, Vec<i64>)> = groups.iter().map(|(r, c)| (*r, c.to_vec())).collect();
        assert_eq!(
            check_declared(file_rows, &groups),
            expected,
            "{file_rows} {groups:?}"
        );
    }

    #[test]
    fn declared_row_counts_must_agree() {
        check(0, &[], Ok(0));
        check(7, &[(3, &[3, 3]), (4, &[4])], Ok(7));
        // A group that declares fewer rows than its chunks hold values.
        check(
            7,
            &[(3, &[3, 3]), (1, &[4, 4])],
            Err(CountMismatch {
                row_group: Some(1),
                declared: 1,
                found: 4,
            }),
        );
        // The file's count is not the sum of its groups'.
        check(
            9,
            &[(3, &[3]), (4, &[4])],
            Err(CountMismatch {
                row_group: None,
                declared: 9,
                found: 7,
            }),
        );
    }
}
