//! Typed access to the columns of linked tables.

use arrow::array::{ArrayRef, AsArray, Date32Array, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use std::path::{Path, PathBuf};

use linklab_store::{StoreError, WorkDir, read_parts};

use crate::EvaluateError;

/// Rows per batch when reading linked tables.
const BATCH_ROWS: usize = 64 * 1024;

/// The folder `linked/<table>/`, which must exist.
pub(crate) fn linked_dir(work_dir: &WorkDir, table: &str) -> Result<PathBuf, EvaluateError> {
    let dir = work_dir.linked_table(table);
    if !dir.is_dir() {
        return Err(EvaluateError::MissingTable {
            table: table.to_owned(),
            path: dir,
        });
    }
    Ok(dir)
}

/// The batches of a linked table's folder.
pub(crate) fn batches(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>>, EvaluateError> {
    Ok(read_parts(dir, BATCH_ROWS)?)
}

fn column<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a ArrayRef, EvaluateError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| EvaluateError::MissingColumn {
            table: table.to_owned(),
            column: name.to_owned(),
        })
}

fn type_error(
    table: &str,
    name: &str,
    found: &DataType,
    role: &'static str,
    expected: &'static str,
) -> EvaluateError {
    EvaluateError::ColumnType {
        table: table.to_owned(),
        column: name.to_owned(),
        found: found.to_string(),
        role,
        expected,
    }
}

/// Whether a column of this type is read as categorical text.
pub(crate) fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

/// How a numeric covariate is written back into the analysis frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumType {
    Int,
    Float,
    Date,
}

/// The numeric kind of a column type, or `None` if it is not numeric.
pub(crate) fn num_type(dt: &DataType) -> Option<NumType> {
    match dt {
        dt if dt.is_integer() => Some(NumType::Int),
        dt if dt.is_floating() => Some(NumType::Float),
        DataType::Boolean | DataType::Decimal128(..) | DataType::Decimal256(..) => Some(NumType::Float),
        DataType::Date32 | DataType::Date64 => Some(NumType::Date),
        _ => None,
    }
}

/// The column as text (any type that casts to text; other values become null).
pub(crate) fn text(batch: &RecordBatch, table: &str, name: &str) -> Result<StringArray, EvaluateError> {
    let col = column(batch, table, name)?;
    if col.data_type() == &DataType::Utf8 {
        return Ok(col.as_string::<i32>().clone());
    }
    let cast = cast(col, &DataType::Utf8).map_err(EvaluateError::arrow(table))?;
    Ok(cast.as_string::<i32>().clone())
}

/// The column as dates (days since 1970-01-01). Text is parsed as ISO dates; text that does not
/// parse becomes null and is counted as a missing date by the caller.
pub(crate) fn date(
    batch: &RecordBatch,
    table: &str,
    name: &str,
    role: &'static str,
) -> Result<Date32Array, EvaluateError> {
    let col = column(batch, table, name)?;
    match col.data_type() {
        DataType::Date32 => Ok(col.as_primitive::<arrow::datatypes::Date32Type>().clone()),
        DataType::Date64
        | DataType::Timestamp(..)
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View => {
            let cast = cast(col, &DataType::Date32).map_err(EvaluateError::arrow(table))?;
            Ok(cast.as_primitive::<arrow::datatypes::Date32Type>().clone())
        }
        other => Err(type_error(
            table,
            name,
            other,
            role,
            "a date (Date32, or ISO text)",
        )),
    }
}

/// The column as numbers (dates as days since 1970-01-01, booleans as 0/1).
pub(crate) fn number(batch: &RecordBatch, table: &str, name: &str) -> Result<Float64Array, EvaluateError> {
    let col = column(batch, table, name)?;
    let dt = col.data_type();
    let values: Float64Array = match num_type(dt) {
        Some(NumType::Date) => {
            let days = date(batch, table, name, "a covariate")?;
            days.iter().map(|d| d.map(f64::from)).collect()
        }
        Some(_) => cast(col, &DataType::Float64)
            .map_err(EvaluateError::arrow(table))?
            .as_primitive()
            .clone(),
        None => {
            return Err(type_error(
                table,
                name,
                dt,
                "a numeric covariate",
                "a number or a date",
            ));
        }
    };
    Ok(values)
}

/// The type of a column in a batch's schema.
pub(crate) fn data_type(batch: &RecordBatch, table: &str, name: &str) -> Result<DataType, EvaluateError> {
    Ok(column(batch, table, name)?.data_type().clone())
}
