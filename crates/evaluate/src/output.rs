//! Writes the analysis frame as Parquet.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use linklab_store::PartWriter;

use crate::EvaluateError;
use crate::columns::NumType;
use crate::frame::{CovValues, Frame, Measure};
use crate::matching::Matching;

/// Rows per written batch.
const ROWS_PER_BATCH: usize = 64 * 1024;

/// The value of `<outcome> sample` for a person an outcome leaves out, and for one it counts
/// (see [`in_sample`]; both name cells of `evaluation/figures.json`).
pub(crate) const LEFT_OUT: &str = "left out";
pub(crate) const COUNTED: &str = "counted";

/// The frame's column name that says whether an outcome counts a person.
pub(crate) fn sample_column(outcome: &str) -> String {
    format!("{outcome} sample")
}

/// Whether each person counts for an outcome that leaves someone out: a matched person when
/// they are in the outcome's own matched sample ([`Matching::restricted`]: a comparison whose
/// treated person is left out is left out too), anyone else when the outcome knows them.
pub(crate) fn in_sample(known: &[bool], matching: Option<&Matching>) -> Vec<bool> {
    let Some(m) = matching else {
        return known.to_vec();
    };
    let own = m.restricted(known);
    (0..known.len())
        .map(|i| {
            if m.weight[i] > 0.0 {
                own.weight[i] > 0.0
            } else {
                known[i]
            }
        })
        .collect()
}

/// The frame's possible column names, in order (see the crate docs; `<outcome> sample` is
/// written only for an outcome that leaves someone out).
pub(crate) fn column_names(covariates: &[String], outcomes: &[(String, bool)]) -> Vec<String> {
    let mut names: Vec<String> = ["person_id", "index_date", "treated"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    names.extend(covariates.iter().cloned());
    for (name, time_to_event) in outcomes {
        names.push(name.clone());
        if *time_to_event {
            names.push(format!("{name}_event"));
        }
        names.push(sample_column(name));
    }
    names.extend(["propensity", "group", "weight"].iter().map(|s| (*s).to_owned()));
    names
}

/// The rows `range` of a covariate as an Arrow column of its type.
fn covariate_array(values: &CovValues, range: std::ops::Range<usize>) -> ArrayRef {
    match values {
        CovValues::Num {
            values,
            ty: NumType::Int,
        } => Arc::new(
            values[range]
                .iter()
                .map(|v| v.map(|x| x as i64))
                .collect::<Int64Array>(),
        ),
        CovValues::Num {
            values,
            ty: NumType::Float,
        } => Arc::new(values[range].iter().copied().collect::<Float64Array>()),
        CovValues::Num {
            values,
            ty: NumType::Date,
        } => Arc::new(
            values[range]
                .iter()
                .map(|v| v.map(|x| x as i32))
                .collect::<Date32Array>(),
        ),
        CovValues::Text(values) => Arc::new(
            values[range]
                .iter()
                .map(Option::as_deref)
                .collect::<StringArray>(),
        ),
    }
}

/// Writes the frame into `dir` as Parquet parts. `propensity` is `None` when no model was fitted.
pub(crate) fn write_frame(
    dir: &Path,
    frame: &Frame,
    propensity: Option<&[f64]>,
    matching: Option<&Matching>,
) -> Result<u64, EvaluateError> {
    let mut fields = vec![
        Field::new("person_id", DataType::Utf8, false),
        Field::new("index_date", DataType::Date32, false),
        Field::new("treated", DataType::Boolean, false),
    ];
    for cov in &frame.covariates {
        let dt = match &cov.values {
            CovValues::Num { ty: NumType::Int, .. } => DataType::Int64,
            CovValues::Num {
                ty: NumType::Float, ..
            } => DataType::Float64,
            CovValues::Num {
                ty: NumType::Date, ..
            } => DataType::Date32,
            CovValues::Text(_) => DataType::Utf8,
        };
        fields.push(Field::new(&cov.name, dt, true));
    }
    for outcome in &frame.outcomes {
        // Null for a person left out of the outcome (`unknown`, `data_cutoff`).
        let nullable = !outcome.all_known();
        fields.push(Field::new(&outcome.name, DataType::Int64, nullable));
        if outcome.measure == Measure::TimeToEvent {
            fields.push(Field::new(
                format!("{}_event", outcome.name),
                DataType::Int64,
                nullable,
            ));
        }
        if nullable {
            fields.push(Field::new(sample_column(&outcome.name), DataType::Utf8, false));
        }
    }
    fields.push(Field::new("propensity", DataType::Float64, true));
    fields.push(Field::new("group", DataType::Utf8, true));
    fields.push(Field::new("weight", DataType::Float64, true));
    let schema = Arc::new(Schema::new(fields));

    let n = frame.person_ids.len();
    let treated_rows: std::collections::HashSet<usize> = matching
        .map(|m| m.sets.iter().map(|(t, _)| *t).collect())
        .unwrap_or_default();
    let samples: Vec<Option<Vec<bool>>> = frame
        .outcomes
        .iter()
        .map(|o| (!o.all_known()).then(|| in_sample(&o.known, matching)))
        .collect();
    let mut writer = PartWriter::new(dir, Arc::clone(&schema));
    let mut start = 0;
    while start < n {
        let end = (start + ROWS_PER_BATCH).min(n);
        let range = start..end;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                frame.person_ids[range.clone()].iter(),
            )),
            Arc::new(Date32Array::from_iter_values(
                frame.index[range.clone()].iter().copied(),
            )),
            Arc::new(BooleanArray::from(frame.treated[range.clone()].to_vec())),
        ];
        for cov in &frame.covariates {
            columns.push(covariate_array(&cov.values, range.clone()));
        }
        for (outcome, sample) in frame.outcomes.iter().zip(&samples) {
            let known = &outcome.known[range.clone()];
            columns.push(Arc::new(
                outcome.value[range.clone()]
                    .iter()
                    .zip(known)
                    .map(|(&v, &k)| k.then_some(i64::from(v)))
                    .collect::<Int64Array>(),
            ));
            if outcome.measure == Measure::TimeToEvent {
                columns.push(Arc::new(
                    outcome.event[range.clone()]
                        .iter()
                        .zip(known)
                        .map(|(&e, &k)| k.then_some(i64::from(e)))
                        .collect::<Int64Array>(),
                ));
            }
            if let Some(sample) = sample {
                columns.push(Arc::new(StringArray::from_iter_values(
                    sample[range.clone()]
                        .iter()
                        .map(|&k| if k { COUNTED } else { LEFT_OUT }),
                )));
            }
        }
        columns.push(Arc::new(
            range
                .clone()
                .map(|i| propensity.map(|p| p[i]))
                .collect::<Float64Array>(),
        ));
        let group = |i: usize| -> Option<&'static str> {
            let m = matching?;
            if treated_rows.contains(&i) {
                Some("treated")
            } else if m.weight[i] > 0.0 {
                Some("comparison")
            } else {
                None
            }
        };
        columns.push(Arc::new(range.clone().map(group).collect::<StringArray>()));
        columns.push(Arc::new(
            range
                .clone()
                .map(|i| matching.and_then(|m| (m.weight[i] > 0.0).then_some(m.weight[i])))
                .collect::<Float64Array>(),
        ));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns)
            .map_err(EvaluateError::arrow("evaluation frame"))?;
        writer.write(&batch)?;
        start = end;
    }
    let (_, rows) = writer.finish()?;
    Ok(rows)
}
