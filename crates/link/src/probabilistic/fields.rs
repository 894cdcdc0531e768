//! Comparison fields: which token columns each kind has, its comparison levels, and the
//! per-record token data held in flat arrays.
//!
//! Each compared field f of kind k has the columns `cmp_<f>_<variant>` (token spec v2): scalar
//! variants are `FixedSizeBinary(8)`, `edit1` is a sorted `List<FixedSizeBinary(8)>`. A token
//! is held as the `u64` of its 8 bytes (little-endian); [`MISSING_TOKEN`] stands for null, and a
//! real token that happens to be 0 is read as 1 (one chance in 2⁶⁴, and it only merges two
//! values' tokens).

use arrow::array::{Array, AsArray, FixedSizeBinaryArray, ListArray, RecordBatch};
use arrow::datatypes::DataType;
use linklab_tokens::FieldKind;

use crate::LinkError;
use crate::input::ExtractInput;

/// A null token.
pub(crate) const MISSING_TOKEN: u64 = 0;
/// The level of a comparison where either value is missing.
pub(crate) const MISSING_LEVEL: u8 = 15;

/// One comparison level of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Exact,
    Edit1,
    Soundex,
    Initial,
    Swap,
    Year,
    District,
    Crossed,
    Disagree,
}

impl Level {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Level::Exact => "exact",
            Level::Edit1 => "edit1",
            Level::Soundex => "soundex",
            Level::Initial => "initial",
            Level::Swap => "swap",
            Level::Year => "year",
            Level::District => "district",
            Level::Crossed => "crossed",
            Level::Disagree => "disagree",
        }
    }

    /// The letter of the level in `match_pattern`.
    pub(crate) fn code(self) -> char {
        match self {
            Level::Exact => 'E',
            Level::Edit1 => '1',
            Level::Soundex => 'P',
            Level::Initial => 'I',
            Level::Swap => 'S',
            Level::Year => 'Y',
            Level::District => 'D',
            Level::Crossed => 'T',
            Level::Disagree => 'X',
        }
    }
}

/// The scalar variants of a kind, `exact` first, each after the first with the level its
/// agreement gives; whether the kind has an `edit1` set; and whether it has a `cross` token
/// (token spec v3: its agreement with another name field's is the [`Level::Crossed`] level).
fn variants(kind: FieldKind) -> (&'static [(&'static str, Level)], bool, bool) {
    match kind {
        FieldKind::Name | FieldKind::Forename => (
            &[
                ("exact", Level::Exact),
                ("soundex", Level::Soundex),
                ("initial", Level::Initial),
            ],
            true,
            true,
        ),
        FieldKind::Dob => (
            &[
                ("exact", Level::Exact),
                ("swap", Level::Swap),
                ("year", Level::Year),
            ],
            true,
            false,
        ),
        FieldKind::Sex => (&[("exact", Level::Exact)], false, false),
        FieldKind::Nino | FieldKind::Id => (&[("exact", Level::Exact)], true, false),
        FieldKind::Postcode => (
            &[("exact", Level::Exact), ("district", Level::District)],
            true,
            false,
        ),
    }
}

/// One field that is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareField {
    /// The identifier's name (`surname`): the columns are `cmp_<name>_<variant>`.
    pub name: String,
    /// Its kind, which chooses the variants and levels.
    pub kind: FieldKind,
}

impl CompareField {
    /// The scalar variant names, `exact` first (not `cross`: see [`Self::has_cross`]).
    pub(crate) fn scalar_variants(&self) -> impl Iterator<Item = &'static str> {
        variants(self.kind).0.iter().map(|(name, _)| *name)
    }

    /// The scalar tokens held per record, `cross` included.
    pub(crate) fn scalars(&self) -> usize {
        variants(self.kind).0.len() + usize::from(self.has_cross())
    }

    pub(crate) fn has_edit1(&self) -> bool {
        variants(self.kind).1
    }

    /// Whether the kind has a `cross` token (a name), held after its other scalar tokens.
    pub(crate) fn has_cross(&self) -> bool {
        variants(self.kind).2
    }

    /// The index of the `cross` token among the field's scalar tokens.
    pub(crate) fn cross_slot(&self) -> usize {
        variants(self.kind).0.len()
    }

    /// The levels, most specific first; the missing level is not among them.
    pub(crate) fn levels(&self) -> Vec<Level> {
        let (scalars, edit1, cross) = variants(self.kind);
        let mut levels = vec![Level::Exact];
        if edit1 {
            levels.push(Level::Edit1);
        }
        if cross {
            levels.push(Level::Crossed);
        }
        levels.extend(scalars[1..].iter().map(|(_, level)| *level));
        levels.push(Level::Disagree);
        levels
    }

    /// The level that agreement on scalar variant `v` gives (the index in [`Self::levels`]).
    pub(crate) fn scalar_level(&self, v: usize) -> usize {
        if v == 0 {
            0
        } else {
            v + usize::from(self.has_edit1()) + usize::from(self.has_cross())
        }
    }

    /// A bit for each level that a pair agreeing on scalar variant `v` can show: the variant's
    /// own and the more specific ones.
    pub(crate) fn levels_through(&self, v: usize) -> u16 {
        (1 << (self.scalar_level(v) + 1)) - 1
    }

    /// A bit for each level that means a pair agrees on scalar variant `v`: exact agreement and
    /// the variant's own level.
    pub(crate) fn levels_agreeing_on(&self, v: usize) -> u16 {
        1 | (1 << self.scalar_level(v))
    }

    /// The index of a scalar variant, if the kind has it.
    pub(crate) fn scalar_index(&self, variant: &str) -> Option<usize> {
        variants(self.kind)
            .0
            .iter()
            .position(|(name, _)| *name == variant)
    }
}

/// Where one extract holds each compared field's columns.
#[derive(Debug, Clone)]
pub(crate) struct CmpColumns {
    /// Per field: the scalar columns (the `cross` column last, `None` in an extract of token
    /// spec v2, which has none), then the `edit1` column if the kind has one.
    fields: Vec<(Vec<Option<usize>>, Option<usize>)>,
    /// Per match key: its `tok_` column (if the extract has it).
    keys: Vec<Option<usize>>,
}

/// The index of `column` in the extract, checked to hold `expected` (named `label` in errors).
fn column_index(
    input: &ExtractInput,
    column: String,
    expected: &DataType,
    label: &'static str,
) -> Result<usize, LinkError> {
    let index = input
        .schema
        .index_of(&column)
        .map_err(|_| LinkError::MissingComparisonColumn {
            extract: input.name.clone(),
            column: column.clone(),
        })?;
    let found = input.schema.field(index).data_type();
    // A list's item field may carry any name or nullability: only the item type matters.
    let matches = match (found, expected) {
        (DataType::List(item), DataType::List(want)) => item.data_type() == want.data_type(),
        _ => found == expected,
    };
    if !matches {
        return Err(LinkError::ColumnType {
            extract: input.name.clone(),
            path: input.parts[0].0.clone(),
            column,
            found: found.to_string(),
            expected: label,
        });
    }
    Ok(index)
}

impl CmpColumns {
    /// Finds and checks the comparison columns of `fields` in an extract.
    pub(crate) fn find(input: &ExtractInput, fields: &[CompareField]) -> Result<Self, LinkError> {
        let scalar = DataType::FixedSizeBinary(8);
        let set = DataType::List(std::sync::Arc::new(arrow::datatypes::Field::new(
            "item",
            scalar.clone(),
            false,
        )));
        let mut out = Vec::with_capacity(fields.len());
        for field in fields {
            let mut scalars = field
                .scalar_variants()
                .map(|v| {
                    column_index(
                        input,
                        format!("cmp_{}_{v}", field.name),
                        &scalar,
                        "FixedSizeBinary(8)",
                    )
                    .map(Some)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if field.has_cross() {
                // Token spec v2's extracts have no `cross` column: never transposed.
                let column = format!("cmp_{}_cross", field.name);
                let present = input.schema.index_of(&column).is_ok();
                scalars.push(if present {
                    Some(column_index(input, column, &scalar, "FixedSizeBinary(8)")?)
                } else {
                    None
                });
            }
            let edit1 = if field.has_edit1() {
                let column = format!("cmp_{}_edit1", field.name);
                Some(column_index(input, column, &set, "List<FixedSizeBinary(8)>")?)
            } else {
                None
            };
            out.push((scalars, edit1));
        }
        Ok(Self {
            fields: out,
            keys: input.key_cols.clone(),
        })
    }
}

/// The token of 8 bytes as a `u64`, never [`MISSING_TOKEN`].
fn token_u64(bytes: &[u8]) -> u64 {
    let v = u64::from_le_bytes(bytes[..8].try_into().expect("at least 8 bytes"));
    v.max(1)
}

/// An edit-1 item of 8 bytes as a `u64` that orders as its bytes do (big-endian), never
/// [`MISSING_TOKEN`]: the spec stores a set sorted by its items' bytes, so it needs no sorting
/// here. Items are compared only with items, so their numbers need not be those of
/// [`token_u64`].
fn item_u64(bytes: &[u8]) -> u64 {
    let v = u64::from_be_bytes(bytes[..8].try_into().expect("at least 8 bytes"));
    v.max(1)
}

/// Appends the edit-1 set in row `row` of `list` (whose items are `items`) to `out`, sorted
/// and without repeats (sorted here only if the writer did not sort it).
pub(crate) fn push_set(out: &mut Vec<u64>, (list, items): (&ListArray, &FixedSizeBinaryArray), row: usize) {
    let start = out.len();
    let offsets = list.value_offsets();
    let range = offsets[row] as usize..offsets[row + 1] as usize;
    out.extend(
        range
            .filter(|&j| items.is_valid(j))
            .map(|j| item_u64(items.value(j))),
    );
    if out[start..].windows(2).all(|w| w[0] < w[1]) {
        return;
    }
    out[start..].sort_unstable();
    let mut end = start;
    for j in start..out.len() {
        if end == start || out[j] != out[end - 1] {
            out[end] = out[j];
            end += 1;
        }
    }
    out.truncate(end);
}

/// The comparison tokens of a run of records, in flat arrays laid out record by record: a
/// pair reads its two records' tokens from a few adjacent cache lines each (the spine's tokens
/// do not fit in a cache, and a pair's spine record is anywhere in them).
#[derive(Debug, Default, Clone)]
pub(crate) struct CmpData {
    pub records: usize,
    /// Per record, every field's scalar tokens in field order (`stride` per record); field
    /// `f`'s start at `starts[f]` within a record's.
    scalars: Vec<u64>,
    stride: usize,
    starts: Vec<usize>,
    /// Offsets into `edit_items`: record `r`'s set of field `f` is
    /// `edit_offsets[r·F + f]..edit_offsets[r·F + f + 1]` (F fields); an empty range is missing
    /// (or a kind without sets).
    edit_offsets: Vec<u32>,
    edit_items: Vec<u64>,
    /// Per match key: the first 8 bytes of each record's token.
    pub keys: Vec<Vec<u64>>,
    /// The first two name fields, each with its `cross` slot: the pair that can be transposed.
    pub crossed: Option<[(usize, usize); 2]>,
}

impl CmpData {
    /// An empty set of records for `fields` and `keys` match keys.
    pub(crate) fn new(fields: &[CompareField], keys: usize) -> Self {
        let starts: Vec<usize> = fields
            .iter()
            .scan(0, |start, field| {
                let here = *start;
                *start += field.scalars();
                Some(here)
            })
            .collect();
        Self {
            records: 0,
            scalars: Vec::new(),
            stride: fields.iter().map(CompareField::scalars).sum(),
            starts,
            edit_offsets: vec![0],
            edit_items: Vec::new(),
            keys: vec![Vec::new(); keys],
            crossed: crossed_pair(fields),
        }
    }

    /// Appends the records of a batch.
    pub(crate) fn push_batch(&mut self, batch: &RecordBatch, cols: &CmpColumns) {
        type Set<'b> = (&'b ListArray, &'b FixedSizeBinaryArray);
        type Columns<'b> = (Vec<Option<&'b FixedSizeBinaryArray>>, Option<Set<'b>>);
        let fields: Vec<Columns<'_>> = cols
            .fields
            .iter()
            .map(|(scalars, edit1)| {
                (
                    scalars
                        .iter()
                        .map(|i| i.map(|i| batch.column(i).as_fixed_size_binary()))
                        .collect(),
                    edit1.map(|i| {
                        let list = batch.column(i).as_list::<i32>();
                        (list, list.values().as_fixed_size_binary())
                    }),
                )
            })
            .collect();
        let rows = batch.num_rows();
        self.scalars.reserve(rows * self.stride);
        self.edit_offsets.reserve(rows * fields.len());
        for row in 0..rows {
            for (arrays, edit1) in &fields {
                self.scalars.extend(arrays.iter().map(|a| match a {
                    Some(a) if a.is_valid(row) => token_u64(a.value(row)),
                    _ => MISSING_TOKEN,
                }));
                if let Some(set) = edit1.filter(|(list, _)| list.is_valid(row)) {
                    push_set(&mut self.edit_items, set, row);
                }
                self.edit_offsets
                    .push(u32::try_from(self.edit_items.len()).expect("fewer than 2³² edit tokens"));
            }
        }
        for (k, col) in cols.keys.iter().enumerate() {
            let out = &mut self.keys[k];
            match col {
                Some(i) => {
                    let a = batch.column(*i).as_fixed_size_binary();
                    out.extend((0..rows).map(|row| {
                        if a.is_valid(row) {
                            token_u64(a.value(row))
                        } else {
                            MISSING_TOKEN
                        }
                    }));
                }
                None => out.extend(std::iter::repeat_n(MISSING_TOKEN, rows)),
            }
        }
        self.records += rows;
    }

    /// Appends record `r` of `from` (of the same fields and keys).
    pub(crate) fn push_record(&mut self, from: &CmpData, r: usize) {
        self.scalars
            .extend_from_slice(&from.scalars[r * from.stride..(r + 1) * from.stride]);
        let fields = self.starts.len();
        for f in 0..fields {
            self.edit_items.extend_from_slice(from.edit1(f, r));
            self.edit_offsets
                .push(u32::try_from(self.edit_items.len()).expect("fewer than 2³² edit tokens"));
        }
        for (to, keys) in self.keys.iter_mut().zip(&from.keys) {
            to.push(keys[r]);
        }
        self.records += 1;
    }

    /// One record of `fields`: per field its scalar tokens ([`MISSING_TOKEN`] when missing; a
    /// name's `cross` token last) and edit-1 set.
    #[cfg(test)]
    pub(crate) fn record(fields: &[CompareField], tokens: &[(&[u64], &[u64])]) -> Self {
        let mut data = Self::new(fields, 0);
        for (scalars, set) in tokens {
            data.scalars.extend_from_slice(scalars);
            data.edit_items.extend_from_slice(set);
            data.edit_offsets
                .push(u32::try_from(data.edit_items.len()).expect("a small set"));
        }
        assert_eq!(data.scalars.len(), data.stride, "every field's scalar tokens");
        data.records = 1;
        data
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        (self.scalars.len() + self.edit_items.len() + self.keys.iter().map(Vec::len).sum::<usize>()) * 8
            + self.edit_offsets.len() * 4
    }

    /// Scalar variant `v` of field `f` of record `r`.
    pub(crate) fn scalar(&self, f: usize, r: usize, v: usize) -> u64 {
        self.scalars[r * self.stride + self.starts[f] + v]
    }

    /// The `edit1` set of field `f` of record `r` (empty when missing or the kind has none).
    pub(crate) fn edit1(&self, f: usize, r: usize) -> &[u64] {
        let i = r * self.starts.len() + f;
        &self.edit_items[self.edit_offsets[i] as usize..self.edit_offsets[i + 1] as usize]
    }
}

/// The first two name fields (with a `cross` token), each with its `cross` slot: the pair whose
/// transposition [`compare`] tells.
pub(crate) fn crossed_pair(fields: &[CompareField]) -> Option<[(usize, usize); 2]> {
    let mut names = (0..fields.len())
        .filter(|&f| fields[f].has_cross())
        .map(|f| (f, fields[f].cross_slot()));
    Some([names.next()?, names.next()?])
}

/// Whether two sorted sets share an item. The merge steps without a branch on which side is
/// smaller (the sets' items are hashes, so that branch is mispredicted half the time, and this
/// is the inner loop of computing level patterns).
pub(crate) fn intersect(a: &[u64], b: &[u64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (left, right) = (a[i], b[j]);
        if left == right {
            return true;
        }
        i += usize::from(left < right);
        j += usize::from(right < left);
    }
    false
}

/// Compares field `f` (described by `field`) of record `a` in `left` and record `b` in `right`:
/// the index of the first level that holds, in [`CompareField::levels`] order, or
/// [`MISSING_LEVEL`] when either exact token is missing. The first two name fields are both
/// [`Level::Crossed`] when each one's `cross` token equals the other record's token of the other
/// (forename and surname written the other way round).
#[allow(
    clippy::many_single_char_names,
    reason = "a and b are the two records, x and y their tokens, f the field's index"
)]
pub(crate) fn compare(
    field: &CompareField,
    f: usize,
    left: &CmpData,
    a: usize,
    right: &CmpData,
    b: usize,
) -> u8 {
    let width = field.scalars() - usize::from(field.has_cross());
    let (x, y) = (left.scalar(f, a, 0), right.scalar(f, b, 0));
    if x == MISSING_TOKEN || y == MISSING_TOKEN {
        return MISSING_LEVEL;
    }
    if x == y {
        return 0;
    }
    let mut level = 1;
    if field.has_edit1() {
        if intersect(left.edit1(f, a), right.edit1(f, b)) {
            return 1;
        }
        level += 1;
    }
    if field.has_cross() {
        if let Some([(p, v), (q, w)]) = left.crossed.filter(|pair| pair[0].0 == f || pair[1].0 == f) {
            let (x, y) = (left.scalar(p, a, v), left.scalar(q, a, w));
            if x != MISSING_TOKEN
                && y != MISSING_TOKEN
                && x == right.scalar(q, b, w)
                && y == right.scalar(p, b, v)
            {
                return level;
            }
        }
        level += 1;
    }
    for v in 1..width {
        let (x, y) = (left.scalar(f, a, v), right.scalar(f, b, v));
        if x != MISSING_TOKEN && x == y {
            return level;
        }
        level += 1;
    }
    level
}
