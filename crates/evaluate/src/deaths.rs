//! Deaths (`[evaluate] deaths`, `deaths_date`): each cohort person's date of death, which ends
//! their follow-up as `data_cutoff` does.
//!
//! Rule: a person's date of death is the earliest valid date of their linked records in the
//! deaths extract (a second record of one death, or a conflicting one, cannot extend their
//! follow-up). The date of death is the last day of follow-up observed: a person who dies before
//! the last day of an outcome's window is left out of that outcome (window outcomes; for
//! `spell_at`, when they die before its day), and for time to event is followed up to their
//! death and censored there (an event on the day of death counts). A person who died on or
//! before their index date is left out of every outcome. Records with a missing date, not
//! linked, or of persons outside the cohort are counted and not used.

use std::collections::HashMap;

use arrow::array::Array;

use crate::frame::{RecordCounts, person_of};
use crate::{EvaluateConfig, EvaluateError, columns};

/// Each cohort person's date of death (`None`: none known), and how the deaths extract's records
/// were used.
type Deaths = (Vec<Option<i32>>, RecordCounts);

/// The deaths, when `deaths` is set.
pub(crate) fn read(
    cfg: &EvaluateConfig,
    lookup: &HashMap<&str, usize>,
    n: usize,
) -> Result<Option<Deaths>, EvaluateError> {
    let Some(deaths) = &cfg.deaths else {
        return Ok(None);
    };
    let table = deaths.extract.as_str();
    let mut died: Vec<Option<i32>> = vec![None; n];
    let mut counts = RecordCounts::default();
    for batch in columns::batches(&columns::linked_dir(&cfg.work_dir, table)?)? {
        let batch = batch?;
        let ids = columns::text(&batch, table, "person_id")?;
        let dates = columns::date(&batch, table, &deaths.date, "the date of death (deaths_date)")?;
        for row in 0..batch.num_rows() {
            let Some(person) = person_of(&ids, row, lookup, &mut counts) else {
                continue;
            };
            if dates.is_null(row) {
                counts.invalid += 1;
                continue;
            }
            counts.in_window += 1;
            let day = dates.value(row);
            died[person] = Some(died[person].map_or(day, |d| d.min(day)));
        }
    }
    Ok(Some((died, counts)))
}
