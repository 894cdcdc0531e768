//! Standardising identifiers and computing tokens for a range of rows of a batch.

use std::borrow::Cow;
use std::ops::Range;

use linklab_tokens::{FieldKind, InvalidReason, MatchKey, Missing, Standardiser, TokenHasher};

use crate::rows::Rows;

/// Counters per identifier: slot 0 is `empty`, then one per [`InvalidReason`].
pub(crate) const MISSING_SLOTS: usize = 1 + InvalidReason::ALL.len();

/// Match keys with at most this many components are hashed without an allocation per row.
const INLINE_COMPONENTS: usize = 8;

pub(crate) fn missing_slot(missing: Missing) -> usize {
    match missing {
        Missing::Empty => 0,
        Missing::Invalid(reason) => {
            1 + InvalidReason::ALL
                .iter()
                .position(|r| *r == reason)
                .expect("ALL lists every reason")
        }
    }
}

pub(crate) fn missing_label(slot: usize) -> &'static str {
    match slot {
        0 => Missing::Empty.as_str(),
        n => InvalidReason::ALL[n - 1].as_str(),
    }
}

/// An identifier to standardise: the batch column that holds it, and its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentPlan {
    pub column: usize,
    pub kind: FieldKind,
}

/// A match key to compute: for each component, the index of its identifier.
#[derive(Debug, Clone)]
pub(crate) struct KeyPlan {
    pub key: MatchKey,
    pub fields: Vec<usize>,
}

/// The tokens and missing counts of a range of rows.
#[derive(Debug)]
pub(crate) struct Hashed {
    /// Per match key, 32 bytes per row (zeros where the token is null).
    pub tokens: Vec<Vec<u8>>,
    /// Per match key, whether each row's token is present.
    pub valid: Vec<Vec<bool>>,
    /// Per identifier, missing values per slot.
    pub missing: Vec<[u64; MISSING_SLOTS]>,
}

impl Hashed {
    pub(crate) fn with_capacity(keys: usize, idents: usize, rows: usize) -> Self {
        Self {
            tokens: (0..keys).map(|_| Vec::with_capacity(rows * 32)).collect(),
            valid: (0..keys).map(|_| Vec::with_capacity(rows)).collect(),
            missing: vec![[0; MISSING_SLOTS]; idents],
        }
    }

    /// Appends `other`'s rows after this one's and adds its counts.
    pub(crate) fn append(&mut self, other: Hashed) {
        for (mine, theirs) in self.tokens.iter_mut().zip(other.tokens) {
            mine.extend_from_slice(&theirs);
        }
        for (mine, theirs) in self.valid.iter_mut().zip(other.valid) {
            mine.extend_from_slice(&theirs);
        }
        for (mine, theirs) in self.missing.iter_mut().zip(other.missing) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }
}

/// Standardises every identifier of rows `rows` of `batch` and computes every match key's token.
pub(crate) fn hash_rows(
    batch: &Rows,
    rows: Range<usize>,
    idents: &[IdentPlan],
    keys: &[KeyPlan],
    standardiser: Standardiser,
    hasher: &TokenHasher,
) -> Hashed {
    let mut out = Hashed::with_capacity(keys.len(), idents.len(), rows.len());
    let columns: Vec<_> = idents.iter().map(|i| (batch.column(i.column), i.kind)).collect();
    let mut values: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(idents.len());
    for row in rows {
        values.clear();
        for (i, (column, kind)) in columns.iter().enumerate() {
            match standardiser.standardise(*kind, column.get(row)) {
                Ok(value) => values.push(Some(value)),
                Err(missing) => {
                    out.missing[i][missing_slot(missing)] += 1;
                    values.push(None);
                }
            }
        }
        for (k, plan) in keys.iter().enumerate() {
            let token = if plan.fields.len() <= INLINE_COMPONENTS {
                let mut parts: [Option<&str>; INLINE_COMPONENTS] = [None; INLINE_COMPONENTS];
                for (part, &field) in parts.iter_mut().zip(&plan.fields) {
                    *part = values[field].as_deref();
                }
                hasher.match_key_token(&plan.key, &parts[..plan.fields.len()])
            } else {
                let parts: Vec<Option<&str>> = plan.fields.iter().map(|&f| values[f].as_deref()).collect();
                hasher.match_key_token(&plan.key, &parts)
            };
            out.tokens[k].extend_from_slice(&token.unwrap_or([0; 32]));
            out.valid[k].push(token.is_some());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_labels_round_trip() {
        assert_eq!(missing_label(missing_slot(Missing::Empty)), "empty");
        for reason in InvalidReason::ALL {
            assert_eq!(
                missing_label(missing_slot(Missing::Invalid(reason))),
                reason.as_str()
            );
        }
    }
}
