//! Programme timing (`treatment_date`): a treated person's index event relative to their
//! programme start.
//!
//! Rule: a person's programme start is the earliest `treatment_date` of their linked treatment
//! records. Their index record is the **first cohort record on or after the start**; if there is
//! none, the **last before it within [`BEFORE_START_DAYS`] days** (a programme that begins shortly
//! before release, in custody); if there is none either, the person has no eligible index event
//! and is left out of the analysis, and counted (`treated_without_index` in the summary). Ties
//! go to the first such record in file order. Persons without a start (untreated persons, or
//! treated persons whose records have no date) keep the earliest index date.

use std::collections::HashMap;

use arrow::array::Array;

use crate::{EvaluateConfig, EvaluateError, columns};

/// How many days before the programme start an index event may lie.
pub const BEFORE_START_DAYS: i32 = 90;

/// Each treated person's programme start (the earliest `treatment_date` of their records), when
/// `treatment_date` is set.
pub(crate) fn starts(cfg: &EvaluateConfig) -> Result<Option<HashMap<String, i32>>, EvaluateError> {
    let Some(column) = &cfg.treatment_date else {
        return Ok(None);
    };
    let table = cfg.treatment.as_str();
    let mut starts: HashMap<String, i32> = HashMap::new();
    for batch in columns::batches(&columns::linked_dir(&cfg.work_dir, table)?)? {
        let batch = batch?;
        let ids = columns::text(&batch, table, "person_id")?;
        let dates = columns::date(&batch, table, column, "the programme start (treatment_date)")?;
        for row in 0..batch.num_rows() {
            if ids.is_null(row) || dates.is_null(row) {
                continue;
            }
            let day = dates.value(row);
            starts
                .entry(ids.value(row).to_owned())
                .and_modify(|d| *d = (*d).min(day))
                .or_insert(day);
        }
    }
    Ok(Some(starts))
}

/// Whether a cohort record on `day` is a better index event than the one chosen so far
/// (`current`), for a person whose programme starts on `start` (see the module's rule).
pub(crate) fn better(start: Option<i32>, current: Option<i32>, day: i32) -> bool {
    match start {
        None => current.is_none_or(|c| day < c),
        Some(s) if day >= s => current.is_none_or(|c| c < s || day < c),
        Some(s) if day >= s - BEFORE_START_DAYS => current.is_none_or(|c| c < s && day > c),
        Some(_) => false,
    }
}
