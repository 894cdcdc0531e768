//! Writing `linked/<extract>/` and `linked/persons/`, and the counts taken on the way.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, StringBuilder, UInt32Array,
};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef};
use linklab_store::{PartWriter, StoreError};
use rayon::prelude::*;

use crate::LinkError;
use crate::cluster::NONE;
use crate::identity::{PERSON_ID_HEX, PersonId};
use crate::input::{Columns, ExtractInput};
use crate::quality::{LinkQuality, RECORD_ID, SpineTruth, Truth};
use crate::report::{ProfileColumn, ProfileValue, rate};

/// How one record came out of the cascade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The index of the match key that decided it, [`NO_HIT`] or [`SPINE`].
    pub key: u8,
    /// The person, or [`NONE`] when ambiguous or not linked.
    pub person: u32,
}

/// No match key found the record.
pub(crate) const NO_HIT: u8 = u8::MAX;
/// The record is a spine record.
pub(crate) const SPINE: u8 = u8::MAX - 1;
/// The `match_key` value of spine records.
pub(crate) const SPINE_MATCH_KEY: &str = "spine";

impl Outcome {
    pub(crate) const UNDECIDED: Self = Self {
        key: NO_HIT,
        person: NONE,
    };

    pub(crate) fn linked_person(self) -> Option<u32> {
        (self.key != NO_HIT && self.person != NONE).then_some(self.person)
    }
}

/// The schema of `linked/<extract>/`: `person_id`, `match_key`, the method's `extra` columns
/// (none for the cascade), then the keep columns.
pub(crate) fn linked_schema(input: &ExtractInput, extra: &[FieldRef]) -> SchemaRef {
    let mut fields = vec![
        Arc::new(Field::new("person_id", DataType::Utf8, true)),
        Arc::new(Field::new("match_key", DataType::Utf8, true)),
    ];
    fields.extend(extra.iter().cloned());
    fields.extend(input.keep_fields());
    Arc::new(Schema::new(fields))
}

/// The schema of `linked/persons/`: `person_id`, `n_spine_records`, then the spine's keep columns.
pub(crate) fn persons_schema(spine: &ExtractInput) -> SchemaRef {
    let mut fields = vec![
        Arc::new(Field::new("person_id", DataType::Utf8, false)),
        Arc::new(Field::new("n_spine_records", DataType::Int64, false)),
    ];
    fields.extend(spine.keep_fields());
    Arc::new(Schema::new(fields))
}

/// Output tables written by background threads, so that encoding and compressing the output
/// overlaps with reading and linking the input.
pub(crate) struct Sinks {
    senders: Vec<(SyncSender<RecordBatch>, PathBuf)>,
}

impl Sinks {
    pub(crate) fn send(&self, table: usize, batch: RecordBatch) -> Result<(), LinkError> {
        let (sender, dir) = &self.senders[table];
        sender
            .send(batch)
            .map_err(|_| LinkError::WriterGone { dir: dir.clone() })
    }
}

/// Runs `body` with one writer thread per `(folder, schema)`; each writes `part-NNNNN.parquet`
/// files with [`PartWriter`]. A writer's error wins over the body's (which is then only the
/// consequence: the writer hung up).
pub(crate) fn with_writers<T>(
    tables: Vec<(PathBuf, SchemaRef)>,
    body: impl FnOnce(&Sinks) -> Result<T, LinkError>,
) -> Result<T, LinkError> {
    for (dir, _) in &tables {
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "cannot create folder",
            path: dir.clone(),
            source,
        })?;
    }
    std::thread::scope(|scope| {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for (dir, schema) in tables {
            let (tx, rx) = sync_channel::<RecordBatch>(2);
            senders.push((tx, dir.clone()));
            handles.push(scope.spawn(move || -> Result<(), LinkError> {
                let mut writer = PartWriter::new(&dir, schema);
                for batch in rx {
                    writer.write(&batch)?;
                }
                writer.finish()?;
                Ok(())
            }));
        }
        let sinks = Sinks { senders };
        let result = body(&sinks);
        drop(sinks);
        for handle in handles {
            handle.join().expect("an output writer thread panicked")?;
        }
        result
    })
}

/// The most distinct values a profiled column may have.
const MAX_CATEGORIES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    Value,
    AgeBand,
}

#[derive(Debug)]
struct ProfileCol {
    index: usize,
    name: String,
    grouping: Grouping,
    /// value → (records, unlinked); `None` once the column has too many values to be categorical.
    values: Option<BTreeMap<String, (u64, u64)>>,
}

impl ProfileCol {
    /// Counts a batch's values of this column.
    fn add(&mut self, column: &ArrayRef, outcomes: &[Outcome]) -> Result<(), LinkError> {
        let Some(values) = &mut self.values else {
            return Ok(());
        };
        let fail = |source| LinkError::Arrow {
            what: "the unlinked profile",
            source,
        };
        let unlinked = outcomes.iter().map(|o| o.linked_person().is_none());
        let categorical = match self.grouping {
            Grouping::Value => {
                let text = cast(column, &DataType::Utf8).map_err(fail)?;
                let text = text.as_string::<i32>();
                merge_counts(values, text.iter().map(|v| v.unwrap_or(MISSING)).zip(unlinked))
            }
            Grouping::AgeBand => {
                let ages = cast(column, &DataType::Int64).map_err(fail)?;
                let ages = ages.as_primitive::<Int64Type>();
                merge_counts(
                    values,
                    ages.iter().map(|v| v.map_or(MISSING, age_band)).zip(unlinked),
                )
            }
        };
        if !categorical || values.len() > MAX_CATEGORIES {
            self.values = None;
        }
        Ok(())
    }
}

/// Adds a batch's `(value, unlinked)` rows to a column's counts. They are counted first in a
/// short list (a column with more than [`MAX_CATEGORIES`] values in one batch is not
/// categorical: false, and nothing is added), then added to the column's counts.
fn merge_counts<'a>(
    values: &mut BTreeMap<String, (u64, u64)>,
    rows: impl Iterator<Item = (&'a str, bool)>,
) -> bool {
    let mut seen: Vec<(&str, u64, u64)> = Vec::with_capacity(MAX_CATEGORIES);
    for (value, unlinked) in rows {
        if !tally_value(&mut seen, value, unlinked) {
            return false;
        }
    }
    for (value, records, unlinked) in seen {
        let entry = match values.get_mut(value) {
            Some(entry) => entry,
            None => values.entry(value.to_owned()).or_insert((0, 0)),
        };
        entry.0 += records;
        entry.1 += unlinked;
    }
    true
}

/// Adds one record with `value` to a batch's short list of counts; false once the list would
/// hold more than [`MAX_CATEGORIES`] values.
fn tally_value<'a>(seen: &mut Vec<(&'a str, u64, u64)>, value: &'a str, unlinked: bool) -> bool {
    if let Some(entry) = seen.iter_mut().find(|(v, _, _)| *v == value) {
        entry.1 += 1;
        entry.2 += u64::from(unlinked);
        return true;
    }
    if seen.len() == MAX_CATEGORIES {
        return false;
    }
    seen.push((value, 1, u64::from(unlinked)));
    true
}

/// Counts of records and unlinked records by the values of categorical-looking keep columns.
#[derive(Debug)]
pub(crate) struct Profile {
    cols: Vec<ProfileCol>,
}

fn looks_like_an_id(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "id" || name.ends_with("_id") || name.starts_with("id_") || name.ends_with("number")
}

fn age_band(age: i64) -> &'static str {
    match age {
        i64::MIN..=17 => "under 18",
        18..=20 => "18-20",
        21..=24 => "21-24",
        25..=29 => "25-29",
        30..=39 => "30-39",
        40..=49 => "40-49",
        50..=59 => "50-59",
        _ => "60 and over",
    }
}

const MISSING: &str = "(missing)";

impl Profile {
    /// Text columns (not named like an id) are profiled by value while they have at most 20
    /// distinct values; integer columns named `age…` by age band.
    pub(crate) fn new(input: &ExtractInput, columns: &Columns) -> Self {
        let mut cols = Vec::new();
        for &index in &input.keep_cols {
            let field = input.schema.field(index);
            let name = field.name();
            if looks_like_an_id(name) {
                continue;
            }
            let grouping = match field.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Grouping::Value,
                DataType::Dictionary(_, value) if value.is_string() => Grouping::Value,
                t if t.is_integer() && name.to_ascii_lowercase().starts_with("age") => Grouping::AgeBand,
                _ => continue,
            };
            cols.push(ProfileCol {
                index: columns.position(index),
                name: name.clone(),
                grouping,
                values: Some(BTreeMap::new()),
            });
        }
        Self { cols }
    }

    /// Counts a batch's records, column by column side by side.
    fn add(&mut self, batch: &RecordBatch, outcomes: &[Outcome]) -> Result<(), LinkError> {
        self.cols
            .par_iter_mut()
            .try_for_each(|col| col.add(batch.column(col.index), outcomes))
    }

    pub(crate) fn finish(self) -> Vec<ProfileColumn> {
        self.cols
            .into_iter()
            .filter_map(|col| {
                let values = col.values?;
                let mut values: Vec<ProfileValue> = values
                    .into_iter()
                    .map(|(value, (records, unlinked))| ProfileValue {
                        value,
                        records,
                        unlinked,
                        unlinked_rate: rate(unlinked, records),
                    })
                    .collect();
                if col.grouping == Grouping::AgeBand {
                    let order = [
                        "under 18",
                        "18-20",
                        "21-24",
                        "25-29",
                        "30-39",
                        "40-49",
                        "50-59",
                        "60 and over",
                        MISSING,
                    ];
                    values.sort_by_key(|v| order.iter().position(|o| *o == v.value));
                }
                Some(ProfileColumn {
                    column: col.name,
                    grouping: match col.grouping {
                        Grouping::Value => "value".into(),
                        Grouping::AgeBand => "age band".into(),
                    },
                    values,
                })
            })
            .collect()
    }
}

/// What writing one extract counted.
#[derive(Debug)]
pub(crate) struct Tally {
    pub records: u64,
    pub with_token: Vec<u64>,
    pub linked_by_key: Vec<u64>,
    pub ambiguous_by_key: Vec<u64>,
    pub profile: Vec<ProfileColumn>,
    /// For the spine: the true person of each record (when truth is measured).
    pub spine_truth: Vec<u32>,
    pub quality: Option<LinkQuality>,
}

/// What [`write_extract`] needs to know beyond the extract.
pub(crate) struct WriteContext<'a> {
    pub key_names: &'a [String],
    pub person_ids: &'a [crate::identity::PersonId],
    /// The first spine record of each person (only used when writing the spine).
    pub first_record: &'a [u32],
    /// The number of spine records of each person.
    pub person_size: &'a [u32],
    pub truth: Option<&'a Truth>,
    /// Present when writing a non-spine extract with truth.
    pub spine_truth: Option<&'a SpineTruth>,
    /// Columns the method adds after `match_key` (none for the cascade).
    pub extra_fields: &'a [FieldRef],
}

/// A `person_id` column (null where `None`): the ids' bytes copied into one buffer and checked as
/// UTF-8 once, rather than id by id.
fn id_array<'a>(
    ids: impl ExactSizeIterator<Item = Option<&'a PersonId>>,
    what: &'static str,
) -> Result<StringArray, LinkError> {
    let rows = ids.len();
    let mut values = Vec::with_capacity(rows * PERSON_ID_HEX);
    let mut lengths = Vec::with_capacity(rows);
    let mut valid = Vec::with_capacity(rows);
    for id in ids {
        if let Some(id) = id {
            values.extend_from_slice(id.as_bytes());
        }
        lengths.push(id.map_or(0, |_| PERSON_ID_HEX));
        valid.push(id.is_some());
    }
    // As a builder makes it: no null buffer when every id is there.
    let nulls = valid.contains(&false).then(|| NullBuffer::from(valid));
    StringArray::try_new(
        OffsetBuffer::from_lengths(lengths),
        Buffer::from_vec(values),
        nulls,
    )
    .map_err(|source| LinkError::Arrow { what, source })
}

/// The rows of `linked/persons/` in a batch of the spine: one for each person whose first record
/// it holds (the batch starting at spine record `start`).
fn persons_batch(
    batch: &RecordBatch,
    outcome: &[Outcome],
    start: usize,
    (input, columns): (&ExtractInput, &Columns),
    ctx: &WriteContext<'_>,
    person_schema: &SchemaRef,
) -> Result<RecordBatch, LinkError> {
    let firsts: Vec<u32> = outcome
        .iter()
        .enumerate()
        .filter(|(i, o)| ctx.first_record[o.person as usize] as usize == start + i)
        .map(|(i, _)| i as u32)
        .collect();
    let take = UInt32Array::from(firsts);
    let persons: Vec<u32> = take
        .values()
        .iter()
        .map(|&i| outcome[i as usize].person)
        .collect();
    let mut out: Vec<ArrayRef> = vec![
        Arc::new(id_array(
            persons.iter().map(|&p| Some(&ctx.person_ids[p as usize])),
            "a persons batch",
        )?),
        Arc::new(Int64Array::from_iter_values(
            persons.iter().map(|&p| i64::from(ctx.person_size[p as usize])),
        )),
    ];
    for &i in &input.keep_cols {
        out.push(
            arrow::compute::take(batch.column(columns.position(i)), &take, None).map_err(|source| {
                LinkError::Arrow {
                    what: "a persons batch",
                    source,
                }
            })?,
        );
    }
    RecordBatch::try_new(Arc::clone(person_schema), out).map_err(|source| LinkError::Arrow {
        what: "a persons batch",
        source,
    })
}

/// The batch of `linked/<extract>/` for a batch of the extract, counting its links and
/// ambiguous records by key in `tally`.
fn linked_batch(
    batch: &RecordBatch,
    outcome: &[Outcome],
    extra: Vec<ArrayRef>,
    (input, columns): (&ExtractInput, &Columns),
    ctx: &WriteContext<'_>,
    schema: &SchemaRef,
    tally: &mut Tally,
) -> Result<RecordBatch, LinkError> {
    let ids = id_array(
        outcome
            .iter()
            .map(|o| o.linked_person().map(|p| &ctx.person_ids[p as usize])),
        "a linked batch",
    )?;
    let mut match_keys = StringBuilder::with_capacity(outcome.len(), outcome.len() * 8);
    for o in outcome {
        if o.linked_person().is_some() {
            if o.key == SPINE {
                match_keys.append_value(SPINE_MATCH_KEY);
            } else {
                match_keys.append_value(&ctx.key_names[o.key as usize]);
                tally.linked_by_key[o.key as usize] += 1;
            }
        } else {
            match_keys.append_null();
            if o.key != NO_HIT && o.key != SPINE {
                tally.ambiguous_by_key[o.key as usize] += 1;
            }
        }
    }
    let mut out: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(match_keys.finish())];
    out.extend(extra);
    out.extend(
        input
            .keep_cols
            .iter()
            .map(|&i| Arc::clone(batch.column(columns.position(i)))),
    );
    RecordBatch::try_new(Arc::clone(schema), out).map_err(|source| LinkError::Arrow {
        what: "a linked batch",
        source,
    })
}

/// Streams an extract into `linked/<extract>/` (and, for the spine, `linked/persons/`).
/// `outcomes(batch, first_row)` gives the outcome of each row of a batch and the columns of
/// [`WriteContext::extra_fields`] for those rows. When the extract's tokens were counted before
/// ([`ExtractInput::with_token`]), only its keep columns are decoded, and the batches hold only
/// those.
pub(crate) fn write_extract(
    input: &ExtractInput,
    linked_dir: &Path,
    is_spine: bool,
    ctx: &WriteContext<'_>,
    progress: &dyn linklab_store::Progress,
    mut outcomes: impl FnMut(&RecordBatch, usize) -> Result<(Vec<Outcome>, Vec<ArrayRef>), LinkError>,
) -> Result<Tally, LinkError> {
    let keys = ctx.key_names.len();
    let schema = linked_schema(input, ctx.extra_fields);
    let person_schema = persons_schema(input);
    let mut tables = vec![(linked_dir.join(&input.name), Arc::clone(&schema))];
    if is_spine {
        tables.push((linked_dir.join("persons"), Arc::clone(&person_schema)));
    }
    let record_id = input.keep_cols.iter().copied().find(|&i| {
        input.schema.field(i).name() == RECORD_ID
            && crate::quality::supports(input.schema.field(i).data_type())
    });
    let mut tally = Tally {
        records: 0,
        with_token: vec![0; keys],
        linked_by_key: vec![0; keys],
        ambiguous_by_key: vec![0; keys],
        profile: Vec::new(),
        spine_truth: Vec::new(),
        quality: (!is_spine && ctx.spine_truth.is_some() && record_id.is_some()).then(LinkQuality::default),
    };
    let columns = match &input.with_token {
        Some(with_token) => {
            tally.with_token.clone_from(with_token);
            Columns::only(input.keep_cols.iter().copied())
        }
        None => Columns::All,
    };
    let mut profile = Profile::new(input, &columns);
    progress.start(&format!("link: writing {}", input.name), Some(input.rows));
    with_writers(tables, |sinks| {
        let mut start = 0_usize;
        for batch in input.batches_of(&columns)? {
            let batch = batch?;
            let rows = batch.num_rows();
            let (outcome, extra) = outcomes(&batch, start)?;
            debug_assert_eq!(outcome.len(), rows, "one outcome per row");
            if input.with_token.is_none() {
                for (k, col) in input.token_columns(&batch).into_iter().enumerate() {
                    tally.with_token[k] += col.map_or(0, |c| (c.len() - c.null_count()) as u64);
                }
            }
            // The output batches are built on this thread, as the batches they come from were
            // read here: buffers that the writer threads free then return to this thread's
            // malloc arena. Built on the pool's threads, they left freed memory in more arenas
            // (glibc keeps up to its trim threshold, 64 MiB once a 32 MB buffer was freed, in
            // each), over a tight `memory_limit`. The profile's counts, which allocate next to
            // nothing, are counted on the pool beside the linked batch.
            let mut counted = Ok(());
            let linked = rayon::in_place_scope(|scope| {
                if !is_spine {
                    scope.spawn(|_| counted = profile.add(&batch, &outcome));
                }
                linked_batch(
                    &batch,
                    &outcome,
                    extra,
                    (input, &columns),
                    ctx,
                    &schema,
                    &mut tally,
                )
            });
            counted?;
            sinks.send(0, linked?)?;
            if is_spine {
                let persons = persons_batch(&batch, &outcome, start, (input, &columns), ctx, &person_schema)?;
                sinks.send(1, persons)?;
            }
            if let (Some(truth), Some(col)) = (ctx.truth, record_id)
                && let Some(people) = truth.people_of(&input.name, batch.column(columns.position(col)))
            {
                if is_spine {
                    tally.spine_truth.extend(people);
                } else if let (Some(q), Some(spine)) = (&mut tally.quality, ctx.spine_truth) {
                    for (t, o) in people.into_iter().zip(&outcome) {
                        q.add(t, o.linked_person(), spine);
                    }
                }
            }
            start += rows;
            tally.records += rows as u64;
            progress.advance(rows as u64);
        }
        Ok(())
    })?;
    progress.finish();
    if !is_spine {
        tally.profile = profile.finish();
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merges batches of `(value, unlinked)` rows into empty counts: whether the column stayed
    /// categorical after each batch, and the counts at the end.
    /// A column's counts: value, (records, unlinked).
    type Counts<'a> = &'a [(&'a str, (u64, u64))];

    fn check(batches: &[Vec<(&str, bool)>], expected: (&[bool], Counts<'_>)) {
        let mut values = BTreeMap::new();
        let kept: Vec<bool> = batches
            .iter()
            .map(|rows| merge_counts(&mut values, rows.iter().copied()))
            .collect();
        let counts: Vec<(&str, (u64, u64))> = values.iter().map(|(v, c)| (v.as_str(), *c)).collect();
        assert_eq!((kept.as_slice(), counts.as_slice()), expected);
    }

    #[test]
    fn a_batch_adds_its_counts() {
        check(
            &[vec![("x", true), ("y", false), ("x", false)], vec![("y", true)]],
            (&[true, true], &[("x", (2, 1)), ("y", (2, 1))]),
        );
    }

    #[test]
    fn a_batch_with_too_many_values_is_not_categorical() {
        let names: Vec<String> = (0..=MAX_CATEGORIES).map(|i| format!("v{i:02}")).collect();
        let many: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), false)).collect();
        check(
            &[vec![("x", true)], many[..MAX_CATEGORIES].to_vec(), many],
            (
                &[true, true, false],
                &[
                    ("v00", (1, 0)),
                    ("v01", (1, 0)),
                    ("v02", (1, 0)),
                    ("v03", (1, 0)),
                    ("v04", (1, 0)),
                    ("v05", (1, 0)),
                    ("v06", (1, 0)),
                    ("v07", (1, 0)),
                    ("v08", (1, 0)),
                    ("v09", (1, 0)),
                    ("v10", (1, 0)),
                    ("v11", (1, 0)),
                    ("v12", (1, 0)),
                    ("v13", (1, 0)),
                    ("v14", (1, 0)),
                    ("v15", (1, 0)),
                    ("v16", (1, 0)),
                    ("v17", (1, 0)),
                    ("v18", (1, 0)),
                    ("v19", (1, 0)),
                    ("x", (1, 1)),
                ],
            ),
        );
    }
}
