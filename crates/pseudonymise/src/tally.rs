//! Tallies gathered while streaming: the keep columns' types, the counts and rejects, and the
//! `max_reject_fraction` limit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use linklab_extract::RejectReason;

use crate::hash::{MISSING_SLOTS, compare_data_type};
use crate::plan::{ComparePlan, Plan};
use crate::rows::Rows;
use crate::types;
use crate::{ColumnType, PseudonymiseError, PseudonymiseManifest, REJECT_EXAMPLES, RejectSummary, RowCounts};

/// The type of each keep column and whether it was inferred.
#[derive(Debug, Clone)]
pub(crate) struct Types {
    pub(crate) types: Vec<(ColumnType, bool)>,
    pub(crate) sample_rows: usize,
}

impl Types {
    pub(crate) fn decide(plan: &Plan, sample: Option<&Rows>) -> Self {
        let types = plan
            .keep
            .iter()
            .map(|k| match (k.declared, sample) {
                _ if k.standardised_sex => (ColumnType::String, false),
                (Some(ty), _) => (ty, false),
                (None, Some(batch)) => (types::infer(batch.column(k.column)), true),
                (None, None) => (ColumnType::String, true),
            })
            .collect();
        Self {
            types,
            sample_rows: sample.map_or(0, Rows::len),
        }
    }

    pub(crate) fn schema(&self, plan: &Plan) -> SchemaRef {
        let mut fields: Vec<Field> = plan
            .keys
            .iter()
            .map(|k| Field::new(k.key.column_name(), DataType::FixedSizeBinary(32), true))
            .collect();
        for (name, variant) in plan.compare.iter().flat_map(ComparePlan::columns) {
            fields.push(Field::new(name, compare_data_type(variant), true));
        }
        for (keep, (ty, _)) in plan.keep.iter().zip(&self.types) {
            fields.push(Field::new(&keep.name, ty.data_type(), true));
        }
        Arc::new(Schema::new(fields))
    }
}

/// Counts gathered while streaming.
#[derive(Debug)]
pub(crate) struct Tally {
    pub(crate) read: u64,
    pub(crate) written: u64,
    pub(crate) rejects: BTreeMap<RejectReason, RejectSummary>,
    pub(crate) missing: Vec<[u64; MISSING_SLOTS]>,
    pub(crate) null_tokens: Vec<u64>,
    pub(crate) limit: RejectLimit,
}

/// How many rejects [`RejectLimit`] holds at most.
pub(crate) const PENDING_REJECTS: usize = 1 << 16;

/// Finds the reject at which `max_reject_fraction` was passed, for the error: the first reject
/// beyond `floor(max_fraction * read)` of the whole file. The allowance only grows as records
/// are read, so a reject within the allowance so far can never be that one and is dropped: only
/// the rejects beyond it are held (at most [`PENDING_REJECTS`]).
#[derive(Debug)]
pub(crate) struct RejectLimit {
    pub(crate) max_fraction: f64,
    /// Rejects dropped from the front: the front one is reject number `dropped + 1`.
    pub(crate) dropped: u64,
    /// The record and line of the rejects beyond the allowance so far, in file order.
    pub(crate) pending: std::collections::VecDeque<(u64, Option<u64>)>,
}

impl RejectLimit {
    pub(crate) fn allowed(&self, read: u64) -> u64 {
        // Float to integer: the allowance, rounded down, of a count well within f64's range.
        (self.max_fraction * read as f64).floor() as u64
    }

    pub(crate) fn note(&mut self, reject: &linklab_extract::Reject, read: u64) {
        // Past the cap the reject is not held; `passed_at` then finds nothing rather than a
        // wrong record.
        if self.pending.len() < PENDING_REJECTS {
            self.pending.push_back((reject.record, reject.line));
        }
        let allowed = self.allowed(read);
        while self.dropped < allowed && self.pending.pop_front().is_some() {
            self.dropped += 1;
        }
    }

    /// The record and line of the reject at which the limit was passed, once `read` records
    /// were read; `None` if the limit was not passed or the reject was not held.
    pub(crate) fn passed_at(&self, read: u64) -> Option<(u64, Option<u64>)> {
        let rank = self.allowed(read) + 1;
        let index = usize::try_from(rank.checked_sub(self.dropped + 1)?).ok()?;
        self.pending.get(index).copied()
    }
}

impl Tally {
    pub(crate) fn new(plan: &Plan, max_fraction: f64) -> Self {
        Self {
            read: 0,
            written: 0,
            rejects: RejectReason::ALL
                .into_iter()
                .map(|r| {
                    (
                        r,
                        RejectSummary {
                            count: 0,
                            first_records: Vec::new(),
                            first_lines: Vec::new(),
                        },
                    )
                })
                .collect(),
            missing: vec![[0; MISSING_SLOTS]; plan.idents.len()],
            null_tokens: vec![0; plan.keys.len()],
            limit: RejectLimit {
                max_fraction,
                dropped: 0,
                pending: std::collections::VecDeque::new(),
            },
        }
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.rejects.values().map(|r| r.count).sum()
    }

    pub(crate) fn note_batch(&mut self, batch: &Rows) {
        self.read += (batch.len() + batch.rejects().len()) as u64;
        for reject in batch.rejects() {
            self.limit.note(reject, self.read);
            let summary = self
                .rejects
                .get_mut(&reject.reason)
                .expect("every reason has an entry");
            summary.count += 1;
            if summary.first_records.len() < REJECT_EXAMPLES {
                summary.first_records.push(reject.record);
                summary.first_lines.extend(reject.line);
            }
        }
    }
}

/// Fails with [`PseudonymiseError::TooManyRejects`] if the share of rejected records is above
/// `max_fraction`.
pub(crate) fn check_reject_fraction(
    manifest: &PseudonymiseManifest,
    path: &Path,
    max_fraction: f64,
) -> Result<(), PseudonymiseError> {
    check_reject_fraction_at(manifest, path, max_fraction, None)
}

/// [`check_reject_fraction`], naming the record (and line) of the reject at which the limit was
/// passed when it is known.
pub(crate) fn check_reject_fraction_at(
    manifest: &PseudonymiseManifest,
    path: &Path,
    max_fraction: f64,
    passed_at: Option<(u64, Option<u64>)>,
) -> Result<(), PseudonymiseError> {
    let RowCounts { read, rejected, .. } = manifest.rows;
    let fraction = if read == 0 {
        0.0
    } else {
        rejected as f64 / read as f64
    };
    if fraction > max_fraction {
        let by_reason = RejectReason::ALL
            .iter()
            .filter_map(|reason| {
                let count = manifest.rejects.get(reason.as_str()).map_or(0, |r| r.count);
                (count > 0).then(|| format!("{reason}: {count}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let at = passed_at.map_or_else(String::new, |(record, line)| {
            let line = line.map_or_else(String::new, |l| format!(", line {l}"));
            format!("; the limit was passed at record {record}{line}")
        });
        return Err(PseudonymiseError::TooManyRejects {
            extract: manifest.extract.clone(),
            path: path.to_path_buf(),
            at,
            read,
            rejected,
            max_fraction,
            by_reason,
        });
    }
    Ok(())
}
