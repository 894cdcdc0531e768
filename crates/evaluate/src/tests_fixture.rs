//! What the tests share: linked tables written into a temporary `work_dir`, and the arrays
//! they are built from.

use std::fs;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use linklab_store::{PartWriter, WorkDir};

use crate::EvaluateConfig;

/// The settings of a cohort of `releases` by `release_date`, treated by `participants`, with every
/// other setting at its default, in a `work_dir` at `dir`.
pub(crate) fn bare_config(dir: &std::path::Path) -> EvaluateConfig {
    EvaluateConfig::new(WorkDir::new(dir), "releases", "release_date", "participants")
}

/// Writes the linked table `name` (as the link stage would) with these columns.
pub(crate) fn write_linked(work: &WorkDir, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let dir = work.linked_table(name);
    fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = PartWriter::new(&dir, schema);
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
}

/// A text column.
pub(crate) fn strings(values: &[Option<String>]) -> ArrayRef {
    Arc::new(values.iter().map(Option::as_deref).collect::<StringArray>())
}

/// A text column without nulls.
pub(crate) fn ids(values: &[&str]) -> ArrayRef {
    Arc::new(values.iter().map(|v| Some(*v)).collect::<StringArray>())
}

/// A date column (days since 1970-01-01).
pub(crate) fn dates(values: &[Option<i32>]) -> ArrayRef {
    Arc::new(values.iter().copied().collect::<Date32Array>())
}

/// A whole-number column.
pub(crate) fn ints(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(values.iter().copied().collect::<Int64Array>())
}
