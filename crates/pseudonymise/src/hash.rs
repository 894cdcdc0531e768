//! Standardising identifiers and computing tokens for a range of rows of a batch.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, Field};
use linklab_tokens::{
    COMPARE_TOKEN_BYTES, CompareToken, FieldHasher, InvalidReason, Missing, Standardiser, TokenHasher,
    Variant,
};

use crate::plan::{ComparePlan, Plan};
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

/// The Arrow type of a comparison column: `FixedSizeBinary(8)`, or a list of them (items never
/// null) for a set variant.
pub(crate) fn compare_data_type(variant: Variant) -> DataType {
    let token = DataType::FixedSizeBinary(COMPARE_TOKEN_BYTES as i32);
    if variant.is_set() {
        DataType::List(Arc::new(Field::new("item", token, false)))
    } else {
        token
    }
}

/// The standardisation rule and the keys of the run: the v1 token hasher and, for each compared
/// field, its comparison-token hasher; and a cache of comparison tokens per pool thread.
#[derive(Debug)]
pub(crate) struct Hashers {
    pub tokens: TokenHasher,
    pub compare: Vec<FieldHasher>,
    pub caches: Vec<Mutex<TokenCache>>,
}

impl Hashers {
    /// The hashers of `compare`'s fields, with an empty cache for each of rayon's threads.
    pub(crate) fn new(tokens: TokenHasher, compare: Vec<FieldHasher>, plan: &[ComparePlan]) -> Self {
        let caches = (0..rayon::current_num_threads())
            .map(|_| Mutex::new(TokenCache::new(plan)))
            .collect();
        Self {
            tokens,
            compare,
            caches,
        }
    }
}

/// Values a field's cache holds at most before it is emptied.
const CACHED_VALUES: usize = 1 << 15;

/// The comparison tokens of the values seen last, per compared field whose values repeat from
/// record to record (names, forenames, dates of birth, postcodes: not reference numbers, which
/// are nearly unique). A set variant costs a token per character, so a name seen before costs one
/// lookup instead of ten SipHash runs. The tokens are the same either way; the cache only
/// saves recomputing them, and is emptied when full so that its memory stays bounded.
pub(crate) struct TokenCache {
    /// Per compared field: the value's tokens in column order (a set's items in its place),
    /// and the number of items of its set.
    fields: Vec<Option<FieldCache>>,
}

/// A field's cached values: each value's tokens, and its set's number of items.
type FieldCache = HashMap<Box<str>, (Box<[CompareToken]>, u32)>;

impl TokenCache {
    fn new(plan: &[ComparePlan]) -> Self {
        Self {
            fields: plan
                .iter()
                .map(|c| c.values_repeat().then(HashMap::new))
                .collect(),
        }
    }
}

/// Sizes only: the keys are standard forms of identifiers.
impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field(
                "values",
                &self.fields.iter().flatten().map(HashMap::len).sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

/// The items an `edit1` set is expected to hold, to size its column's buffer.
const SET_ITEMS_GUESS: usize = 10;

/// The variant of every comparison column, in column order.
pub(crate) fn compare_variants(compare: &[ComparePlan]) -> Vec<Variant> {
    compare
        .iter()
        .flat_map(|c| Variant::of_kind(c.kind).iter().copied())
        .collect()
}

/// One comparison column of a range of rows.
#[derive(Debug, Default)]
pub(crate) struct CompareColumn {
    /// The tokens, 8 bytes each: one per row for a scalar variant (zeros where null), the items
    /// of every row in turn for a set.
    pub bytes: Vec<u8>,
    /// Set variants only: the number of items of each row (0 where null).
    pub items: Vec<u32>,
    /// Whether each row's value is present.
    pub valid: Vec<bool>,
}

/// The tokens and missing counts of a range of rows.
#[derive(Debug)]
pub(crate) struct Hashed {
    /// Per match key, 32 bytes per row (zeros where the token is null).
    pub tokens: Vec<Vec<u8>>,
    /// Per match key, whether each row's token is present.
    pub valid: Vec<Vec<bool>>,
    /// Per comparison column, in column order.
    pub compare: Vec<CompareColumn>,
    /// Per identifier, missing values per slot.
    pub missing: Vec<[u64; MISSING_SLOTS]>,
}

impl CompareColumn {
    fn with_capacity(variant: Variant, rows: usize) -> Self {
        let set = variant.is_set();
        Self {
            bytes: Vec::with_capacity(rows * COMPARE_TOKEN_BYTES * if set { SET_ITEMS_GUESS } else { 1 }),
            items: Vec::with_capacity(if set { rows } else { 0 }),
            valid: Vec::with_capacity(rows),
        }
    }
}

impl Hashed {
    /// Empty buffers for `rows` rows: `keys` match keys, comparison columns of these variants,
    /// `idents` identifiers.
    pub(crate) fn with_capacity(keys: usize, compare: &[Variant], idents: usize, rows: usize) -> Self {
        Self {
            tokens: (0..keys).map(|_| Vec::with_capacity(rows * 32)).collect(),
            valid: (0..keys).map(|_| Vec::with_capacity(rows)).collect(),
            compare: compare
                .iter()
                .map(|&variant| CompareColumn::with_capacity(variant, rows))
                .collect(),
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
        for (mine, theirs) in self.compare.iter_mut().zip(other.compare) {
            mine.bytes.extend_from_slice(&theirs.bytes);
            mine.items.extend_from_slice(&theirs.items);
            mine.valid.extend_from_slice(&theirs.valid);
        }
        for (mine, theirs) in self.missing.iter_mut().zip(other.missing) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
    }
}

/// Standardises every identifier of rows `rows` of `batch` and computes every match key's token
/// and every compared field's comparison tokens.
pub(crate) fn hash_rows(
    batch: &Rows,
    rows: Range<usize>,
    plan: &Plan,
    standardiser: Standardiser,
    hashers: &Hashers,
) -> Hashed {
    let (idents, keys, hasher) = (&plan.idents, &plan.keys, &hashers.tokens);
    let variants = compare_variants(&plan.compare);
    let mut out = Hashed::with_capacity(keys.len(), &variants, idents.len(), rows.len());
    let mut scratch = (Vec::with_capacity(32), Vec::with_capacity(32));
    // This thread's cache (a task never waits on another while it holds it; if it is taken
    // anyway, a fresh one serves this range).
    let slot = rayon::current_thread_index().unwrap_or(0) % hashers.caches.len().max(1);
    let mut fresh = None;
    let mut held = hashers.caches.get(slot).and_then(|c| c.try_lock().ok());
    let cache: &mut TokenCache = match &mut held {
        Some(guard) => guard,
        None => fresh.insert(TokenCache::new(&plan.compare)),
    };
    let columns: Vec<_> = idents.iter().map(|i| (batch.column(i.column), i.kind)).collect();
    // One buffer per identifier for standard forms that are not slices of the raw value, and
    // the row's values, kept from row to row: no allocation per row.
    let mut bufs: Vec<String> = vec![String::new(); idents.len()];
    let mut spare: Vec<Option<&str>> = Vec::with_capacity(idents.len());
    for row in rows {
        let mut values = recycle(spare);
        for (i, ((column, kind), buf)) in columns.iter().zip(bufs.iter_mut()).enumerate() {
            match standardiser.standardise_in(*kind, column.get(row), buf) {
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
                    *part = values[field];
                }
                hasher.match_key_token(&plan.key, &parts[..plan.fields.len()])
            } else {
                let parts: Vec<Option<&str>> = plan.fields.iter().map(|&f| values[f]).collect();
                hasher.match_key_token(&plan.key, &parts)
            };
            out.tokens[k].extend_from_slice(&token.unwrap_or([0; 32]));
            out.valid[k].push(token.is_some());
        }
        compare_row(
            (&plan.compare, &hashers.compare),
            &values,
            &mut out.compare,
            cache,
            &mut scratch,
        );
        spare = recycle(values);
    }
    out
}

/// An empty vector with `values`' allocation, for values of another lifetime (collecting into
/// the same layout reuses the allocation).
fn recycle<'b>(mut values: Vec<Option<&str>>) -> Vec<Option<&'b str>> {
    values.clear();
    values.into_iter().map(|_| None).collect()
}

/// Appends one row's comparison tokens to `columns`, from `cache` for a value seen before.
fn compare_row(
    (compare, hashers): (&[ComparePlan], &[FieldHasher]),
    values: &[Option<&str>],
    columns: &mut [CompareColumn],
    cache: &mut TokenCache,
    (all, set): &mut (Vec<CompareToken>, Vec<CompareToken>),
) {
    let mut columns = columns.iter_mut();
    for ((field, hasher), cached) in compare.iter().zip(hashers).zip(&mut cache.fields) {
        let variants = hasher.variants();
        let Some(value) = values[field.ident] else {
            for variant in variants {
                let column = columns.next().expect("one column per compared field and variant");
                column.valid.push(false);
                if variant.is_set() {
                    column.items.push(0);
                } else {
                    column.bytes.extend_from_slice(&[0; COMPARE_TOKEN_BYTES]);
                }
            }
            continue;
        };
        let hit = cached.as_ref().and_then(|c| c.get(value));
        let (tokens, items) = if let Some((tokens, items)) = hit {
            (&tokens[..], *items)
        } else {
            all.clear();
            let mut items = 0;
            for (slot, variant) in variants.iter().enumerate() {
                if variant.is_set() {
                    hasher.tokens_into(slot, value, set);
                    all.extend_from_slice(set);
                    items = u32::try_from(set.len()).expect("a value's set is small");
                } else {
                    all.push(hasher.scalar(slot, value));
                }
            }
            if let Some(c) = cached {
                if c.len() >= CACHED_VALUES {
                    c.clear();
                }
                c.insert(value.into(), (all.as_slice().into(), items));
            }
            (&all[..], items)
        };
        let mut at = 0;
        for variant in variants {
            let column = columns.next().expect("one column per compared field and variant");
            column.valid.push(true);
            let take = if variant.is_set() {
                column.items.push(items);
                items as usize
            } else {
                1
            };
            column
                .bytes
                .extend_from_slice(tokens[at..at + take].as_flattened());
            at += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linklab_tokens::FieldKind;

    /// A value's tokens are the same whether computed or taken from the cache, and the same as
    /// the field hasher's own.
    #[test]
    fn cached_tokens_are_the_computed_ones() {
        let key = linklab_tokens::SecretKey::from_bytes((0..32).collect());
        let hasher = linklab_tokens::CompareHasher::new(&key);
        let plan = [
            ComparePlan {
                ident: 0,
                field: "surname".into(),
                kind: FieldKind::Name,
            },
            ComparePlan {
                ident: 1,
                field: "nino".into(),
                kind: FieldKind::Nino,
            },
        ];
        let fields: Vec<FieldHasher> = plan.iter().map(|c| hasher.field(&c.field, c.kind)).collect();
        let variants = compare_variants(&plan);
        let rows = [
            [Some("SMITH"), Some("AB123456")],
            [None, Some("CD654321")],
            [Some("SMITH"), None],
            [Some("ANNA"), Some("AB123456")],
            [Some("SMITH"), Some("AB123456")],
        ];
        let columns = |cache: &mut TokenCache, fresh_each_row: bool| {
            let mut columns: Vec<CompareColumn> = variants
                .iter()
                .map(|&v| CompareColumn::with_capacity(v, rows.len()))
                .collect();
            let mut scratch = (Vec::new(), Vec::new());
            for row in &rows {
                if fresh_each_row {
                    *cache = TokenCache::new(&plan);
                }
                compare_row((&plan, &fields), row, &mut columns, cache, &mut scratch);
            }
            columns
        };
        let mut cache = TokenCache::new(&plan);
        let cached = columns(&mut cache, false);
        assert_eq!(
            cache.fields[0].as_ref().map(HashMap::len),
            Some(2),
            "SMITH and ANNA"
        );
        assert!(cache.fields[1].is_none(), "NI numbers are not cached");
        let computed = columns(&mut cache, true);
        let mut set = Vec::new();
        for (c, (column, computed)) in cached.iter().zip(&computed).enumerate() {
            assert_eq!(
                (&column.bytes, &column.items, &column.valid),
                (&computed.bytes, &computed.items, &computed.valid)
            );
            // Column c is variant c of the surname, then of the NI number.
            let names = fields[0].variants().len();
            let (field, slot, value) = if c < names {
                (&fields[0], c, "SMITH")
            } else {
                (&fields[1], c - names, "AB123456")
            };
            field.tokens_into(slot, value, &mut set);
            assert_eq!(
                &column.bytes[..set.len() * COMPARE_TOKEN_BYTES],
                set.as_flattened(),
                "column {c}"
            );
        }
    }

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
