//! The person-level analysis frame: cohort, treatment flag, covariates and outcome measures.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, StringArray};
use serde::Serialize;

use crate::columns::{self, NumType};
pub(crate) use crate::covariate::{CovValues, Covariate};
use crate::measures::{clip_spell, event_offset, merged_days};
use crate::{EvaluateConfig, EvaluateError, OutcomeKind, Unknown};

/// What an outcome measures, which decides its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// 0/1 per person: a rate.
    Rate,
    /// Days of the window: a mean.
    Days,
    /// Days to the first event (censored at the end of the window) and an event flag.
    TimeToEvent,
    /// A number of events per person: a mean (and per 100 persons).
    Count,
}

/// One outcome's values, one per frame row.
#[derive(Debug, Clone)]
pub(crate) struct OutcomeValues {
    pub name: String,
    pub measure: Measure,
    /// Rate: 0/1; days: days covered; time to event: days to the event or to censoring.
    pub value: Vec<u32>,
    /// Whether the person had any event or spell in the window (the time-to-event flag; the
    /// numerator of a rate; days > 0). Used by disclosure control.
    pub event: Vec<bool>,
    /// Whether the person counts for this outcome: false when `unknown = "exclude"` and the
    /// extract never holds them, or when the outcome's window runs past `data_cutoff` (window
    /// outcomes only). Such persons have value 0, no event, and a null in the frame.
    pub known: Vec<bool>,
    /// The outcome's follow-up in days (time to event: the restricted mean's horizon).
    pub follow_up: u32,
}

impl OutcomeValues {
    /// Whether every person counts (no exclusions), as before `unknown` and `data_cutoff`.
    pub fn all_known(&self) -> bool {
        self.known.iter().all(|k| *k)
    }
}

/// How many cohort persons an outcome left out or censored, and why.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OutcomePersons {
    /// Persons the extract never holds, left out (`unknown = "exclude"`).
    pub excluded_unknown: u64,
    /// Persons whose window runs past `data_cutoff`, left out (window outcomes).
    pub excluded_cutoff: u64,
    /// Persons censored at `data_cutoff` (time to event).
    pub censored_cutoff: u64,
    /// Persons who died before the end of the window, left out (window outcomes; `deaths`).
    pub excluded_death: u64,
    /// Persons censored at their death (time to event; `deaths`).
    pub censored_death: u64,
}

/// How the records of a linked extract were used.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RecordCounts {
    /// Records read.
    pub records: u64,
    /// Records not linked to any person (null `person_id`): they cannot count.
    pub unlinked: u64,
    /// Records of persons who are not in the cohort.
    pub not_in_cohort: u64,
    /// Records left out by the outcome's `where` filter.
    pub filtered_out: u64,
    /// Records with a missing or unparseable date, or a spell that ends before it starts.
    pub invalid: u64,
    /// Records of cohort persons that fall in (or overlap) the follow-up window.
    pub in_window: u64,
}

/// The analysis frame before matching.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub person_ids: Vec<String>,
    pub index: Vec<i32>,
    pub treated: Vec<bool>,
    pub covariates: Vec<Covariate>,
    pub outcomes: Vec<OutcomeValues>,
    pub cohort_counts: RecordCounts,
    pub treatment_counts: RecordCounts,
    pub outcome_counts: BTreeMap<String, RecordCounts>,
    /// Persons left out of or censored in each outcome, for outcomes that leave out or censor
    /// anyone.
    pub outcome_persons: BTreeMap<String, OutcomePersons>,
    /// Cohort persons left out because their follow-up window ends after the run date (their
    /// outcomes cannot have been observed yet).
    pub incomplete_follow_up: u64,
    /// Treated persons left out because no cohort record is an eligible index event for their
    /// programme start (`treatment_date`; see `programme`).
    pub treated_without_index: u64,
    /// How the deaths extract's records were used, when `deaths` is set.
    pub death_counts: Option<RecordCounts>,
}

#[derive(Debug, Clone)]
enum CovKind {
    Num(NumType),
    Text,
}

/// A cohort person's index record.
struct Candidate {
    index: i32,
    nums: Vec<Option<f64>>,
    texts: Vec<Option<String>>,
}

/// Builds the frame from `linked/`.
pub(crate) fn build(cfg: &EvaluateConfig) -> Result<Frame, EvaluateError> {
    let (person_ids, index, mut covariates, cohort_counts, (incomplete_follow_up, treated_without_index)) =
        read_cohort(cfg)?;
    crate::design::merge_rare_levels(&mut covariates, cfg.threshold, &cfg.cohort)?;
    let lookup: HashMap<&str, usize> = person_ids
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let (treated, treatment_counts) = read_treatment(cfg, &lookup, person_ids.len())?;
    let (died, death_counts) = match crate::deaths::read(cfg, &lookup, person_ids.len())? {
        Some((died, counts)) => (died, Some(counts)),
        None => (vec![None; person_ids.len()], None),
    };
    let mut outcomes = Vec::new();
    let mut outcome_counts = BTreeMap::new();
    let mut outcome_persons = BTreeMap::new();
    for outcome in &cfg.outcomes {
        let (values, counts, persons) = read_outcome(cfg, outcome, &lookup, (&index, &died))?;
        outcomes.push(values);
        outcome_counts.insert(outcome.name.clone(), counts);
        if persons != OutcomePersons::default() {
            outcome_persons.insert(outcome.name.clone(), persons);
        }
    }
    Ok(Frame {
        person_ids,
        index,
        treated,
        covariates,
        outcomes,
        cohort_counts,
        treatment_counts,
        outcome_counts,
        outcome_persons,
        incomplete_follow_up,
        treated_without_index,
        death_counts,
    })
}

/// Persons, index dates, covariates, record counts, and the persons left out: with incomplete
/// follow-up, and treated without an eligible index event.
type Cohort = (Vec<String>, Vec<i32>, Vec<Covariate>, RecordCounts, (u64, u64));

/// Today as days since 1970-01-01 (UTC).
pub(crate) fn today() -> i32 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i32::try_from(seconds / 86_400).unwrap_or(i32::MAX)
}

/// The cohort: each linked person's index record is the one with the earliest index date; ties
/// go to the first such record in file order. Records without an index date are not used.
/// Persons whose longest follow-up window (`follow_up_days`, or an outcome's own when longer)
/// ends after `cfg.today`
/// (the run date) are left out and counted: their outcomes are not observed yet, and counting
/// them as "no event" would give confident, false effects.
fn read_cohort(cfg: &EvaluateConfig) -> Result<Cohort, EvaluateError> {
    let table = cfg.cohort.as_str();
    let mut counts = RecordCounts::default();
    let mut kinds: Option<Vec<CovKind>> = None;
    let mut chosen: HashMap<String, Candidate> = HashMap::new();
    let starts = crate::programme::starts(cfg)?;
    let mut with_start: HashSet<String> = HashSet::new();
    let dir = columns::linked_dir(&cfg.work_dir, table)?;
    for batch in columns::batches(&dir)? {
        let batch = batch?;
        let kinds = if let Some(k) = &kinds {
            k.clone()
        } else {
            let mut k = Vec::new();
            for name in &cfg.covariates {
                let dt = columns::data_type(&batch, table, name)?;
                k.push(if columns::is_text(&dt) {
                    CovKind::Text
                } else if let Some(ty) = columns::num_type(&dt) {
                    CovKind::Num(ty)
                } else {
                    return Err(EvaluateError::ColumnType {
                        table: table.to_owned(),
                        column: name.clone(),
                        found: dt.to_string(),
                        role: "a covariate",
                        expected: "a number, a date or text",
                    });
                });
            }
            kinds = Some(k.clone());
            k
        };
        let ids = columns::text(&batch, table, "person_id")?;
        let dates = columns::date(&batch, table, &cfg.index_date, "the index date")?;
        let mut nums = Vec::new();
        let mut texts = Vec::new();
        for (name, kind) in cfg.covariates.iter().zip(&kinds) {
            match kind {
                CovKind::Num(_) => nums.push(columns::number(&batch, table, name)?),
                CovKind::Text => texts.push(columns::text(&batch, table, name)?),
            }
        }
        for row in 0..batch.num_rows() {
            counts.records += 1;
            if ids.is_null(row) {
                counts.unlinked += 1;
                continue;
            }
            if dates.is_null(row) {
                counts.invalid += 1;
                continue;
            }
            let day = dates.value(row);
            let id = ids.value(row);
            let start = starts.as_ref().and_then(|s| s.get(id).copied());
            if start.is_some() {
                with_start.insert(id.to_owned());
            }
            if !crate::programme::better(start, chosen.get(id).map(|c| c.index), day) {
                continue;
            }
            let candidate = Candidate {
                index: day,
                nums: nums
                    .iter()
                    .map(|a| a.is_valid(row).then(|| a.value(row)).filter(|v| v.is_finite()))
                    .collect(),
                texts: texts
                    .iter()
                    .map(|a| a.is_valid(row).then(|| a.value(row).to_owned()))
                    .collect(),
            };
            chosen.insert(id.to_owned(), candidate);
        }
    }
    let kinds = kinds.unwrap_or_default();
    let without_index = with_start.iter().filter(|id| !chosen.contains_key(*id)).count() as u64;
    let mut persons: Vec<(String, Candidate)> = chosen.into_iter().collect();
    persons.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let today = i64::from(cfg.today.unwrap_or_else(today));
    let before = persons.len();
    let longest = cfg.longest_follow_up();
    persons.retain(|(_, c)| i64::from(c.index) + i64::from(longest) <= today);
    let incomplete = (before - persons.len()) as u64;
    counts.in_window = persons.len() as u64;
    let index = persons.iter().map(|(_, c)| c.index).collect();
    let mut covariates = Vec::new();
    let (mut n, mut t) = (0, 0);
    for (name, kind) in cfg.covariates.iter().zip(&kinds) {
        let values = match kind {
            CovKind::Num(ty) => {
                n += 1;
                CovValues::Num {
                    values: persons.iter().map(|(_, c)| c.nums[n - 1]).collect(),
                    ty: *ty,
                }
            }
            CovKind::Text => {
                t += 1;
                CovValues::Text(persons.iter_mut().map(|(_, c)| c.texts[t - 1].take()).collect())
            }
        };
        covariates.push(Covariate {
            name: name.clone(),
            values,
        });
    }
    let ids = persons.into_iter().map(|(id, _)| id).collect();
    Ok((ids, index, covariates, counts, (incomplete, without_index)))
}

fn read_treatment(
    cfg: &EvaluateConfig,
    lookup: &HashMap<&str, usize>,
    n: usize,
) -> Result<(Vec<bool>, RecordCounts), EvaluateError> {
    let table = cfg.treatment.as_str();
    let mut treated = vec![false; n];
    let mut counts = RecordCounts::default();
    let dir = columns::linked_dir(&cfg.work_dir, table)?;
    for batch in columns::batches(&dir)? {
        let batch = batch?;
        let ids = columns::text(&batch, table, "person_id")?;
        for row in 0..batch.num_rows() {
            counts.records += 1;
            if ids.is_null(row) {
                counts.unlinked += 1;
            } else if let Some(&i) = lookup.get(ids.value(row)) {
                treated[i] = true;
                counts.in_window += 1;
            } else {
                counts.not_in_cohort += 1;
            }
        }
    }
    Ok((treated, counts))
}

/// The cohort person of a record, or `None` (counted as not linked, or not in the cohort).
pub(crate) fn person_of(
    ids: &StringArray,
    row: usize,
    lookup: &HashMap<&str, usize>,
    counts: &mut RecordCounts,
) -> Option<usize> {
    counts.records += 1;
    if ids.is_null(row) {
        counts.unlinked += 1;
        return None;
    }
    let person = lookup.get(ids.value(row)).copied();
    if person.is_none() {
        counts.not_in_cohort += 1;
    }
    person
}

/// Whether row `row` passes every `where` condition (a null never matches).
fn passes(filters: &[(StringArray, HashSet<&str>)], row: usize) -> bool {
    filters
        .iter()
        .all(|(col, allowed)| col.is_valid(row) && allowed.contains(col.value(row)))
}

/// What an outcome's extract holds about each cohort person, before measuring.
struct Held {
    /// Any linked record at all (whatever its dates or the `where` filter).
    any: Vec<bool>,
    /// Event offsets in the window: the first, and how many.
    first: Vec<Option<u32>>,
    count: Vec<u32>,
    /// Spells clipped to the window.
    spells: Vec<Vec<(u32, u32)>>,
}

fn read_outcome(
    cfg: &EvaluateConfig,
    outcome: &crate::Outcome,
    lookup: &HashMap<&str, usize>,
    (index, died): (&[i32], &[Option<i32>]),
) -> Result<(OutcomeValues, RecordCounts, OutcomePersons), EvaluateError> {
    let follow_up = cfg.outcome_follow_up(outcome);
    let table = outcome.kind.extract();
    let n = index.len();
    let mut counts = RecordCounts::default();
    let mut held = Held {
        any: vec![false; n],
        first: vec![None; n],
        count: vec![0; n],
        spells: vec![Vec::new(); n],
    };
    let dir = columns::linked_dir(&cfg.work_dir, table)?;
    for batch in columns::batches(&dir)? {
        let batch = batch?;
        let ids = columns::text(&batch, table, "person_id")?;
        let mut filters = Vec::new();
        for (column, allowed) in &outcome.filter {
            let col = columns::text(&batch, table, column)?;
            filters.push((col, allowed.iter().map(String::as_str).collect::<HashSet<&str>>()));
        }
        let dates = match &outcome.kind {
            OutcomeKind::EventWithin { date, .. }
            | OutcomeKind::TimeToEvent { date, .. }
            | OutcomeKind::EventCount { date, .. } => {
                (columns::date(&batch, table, date, "an event date")?, None)
            }
            OutcomeKind::SpellOverlap { start, end, .. }
            | OutcomeKind::SpellDays { start, end, .. }
            | OutcomeKind::SpellAt { start, end, .. } => (
                columns::date(&batch, table, start, "a spell start")?,
                Some(columns::date(&batch, table, end, "a spell end")?),
            ),
        };
        for row in 0..batch.num_rows() {
            let Some(person) = person_of(&ids, row, lookup, &mut counts) else {
                continue;
            };
            held.any[person] = true;
            if !passes(&filters, row) {
                counts.filtered_out += 1;
                continue;
            }
            let (starts, ends) = &dates;
            if starts.is_null(row) {
                counts.invalid += 1;
                continue;
            }
            let start = starts.value(row);
            match ends {
                None => {
                    if let Some(offset) = event_offset(index[person], follow_up, start) {
                        counts.in_window += 1;
                        held.first[person] = Some(held.first[person].map_or(offset, |f| f.min(offset)));
                        held.count[person] += 1;
                    }
                }
                Some(ends) => {
                    let end = ends.is_valid(row).then(|| ends.value(row));
                    if end.is_some_and(|e| e < start) {
                        counts.invalid += 1;
                        continue;
                    }
                    if let Some(clipped) = clip_spell(index[person], follow_up, start, end) {
                        counts.in_window += 1;
                        held.spells[person].push(clipped);
                    }
                }
            }
        }
    }
    let (values, persons) = measure(cfg, outcome, (index, died), &mut held);
    Ok((values, counts, persons))
}

/// Each person's value of an outcome from what its extract holds, with `unknown`,
/// `data_cutoff` and deaths (`died`: each person's date of death) applied.
fn measure(
    cfg: &EvaluateConfig,
    outcome: &crate::Outcome,
    (index, died): (&[i32], &[Option<i32>]),
    held: &mut Held,
) -> (OutcomeValues, OutcomePersons) {
    let follow_up = cfg.outcome_follow_up(outcome);
    let n = index.len();
    let mut persons = OutcomePersons::default();
    let (mut value, mut event, mut known) = (vec![0; n], vec![false; n], vec![true; n]);
    let measure = match outcome.kind {
        OutcomeKind::EventWithin { .. } | OutcomeKind::SpellOverlap { .. } | OutcomeKind::SpellAt { .. } => {
            Measure::Rate
        }
        OutcomeKind::SpellDays { .. } => Measure::Days,
        OutcomeKind::TimeToEvent { .. } => Measure::TimeToEvent,
        OutcomeKind::EventCount { .. } => Measure::Count,
    };
    for i in 0..n {
        if outcome.unknown == Unknown::Exclude && !held.any[i] {
            known[i] = false;
            persons.excluded_unknown += 1;
            continue;
        }
        // The last day of the window observed, as an offset from the index date: the whole
        // window, or up to the cut-off or the death, whichever comes first (a death on the
        // cut-off counts as the death).
        let offset = |day: Option<i32>| day.map(|d| i64::from(d) - i64::from(index[i]));
        let death = offset(died[i]);
        let observed = [offset(cfg.data_cutoff), death]
            .into_iter()
            .flatten()
            .fold(i64::from(follow_up), i64::min);
        let by_death = death == Some(observed);
        let needed = match outcome.kind {
            OutcomeKind::SpellAt { day, .. } => i64::from(day),
            OutcomeKind::TimeToEvent { .. } => 1,
            _ => i64::from(follow_up),
        };
        if observed < needed {
            known[i] = false;
            *if by_death {
                &mut persons.excluded_death
            } else {
                &mut persons.excluded_cutoff
            } += 1;
            continue;
        }
        let observed = u32::try_from(observed).unwrap_or(follow_up);
        (value[i], event[i]) = match outcome.kind {
            OutcomeKind::EventWithin { .. } => (u32::from(held.first[i].is_some()), held.first[i].is_some()),
            OutcomeKind::EventCount { .. } => (held.count[i], held.count[i] > 0),
            OutcomeKind::TimeToEvent { .. } => match held.first[i] {
                Some(first) if first <= observed => (first, true),
                _ => {
                    if observed < follow_up {
                        *if by_death {
                            &mut persons.censored_death
                        } else {
                            &mut persons.censored_cutoff
                        } += 1;
                    }
                    (observed, false)
                }
            },
            OutcomeKind::SpellOverlap { .. } => {
                let any = !held.spells[i].is_empty();
                (u32::from(any), any)
            }
            OutcomeKind::SpellAt { day, .. } => {
                let covers = held.spells[i].iter().any(|&(lo, hi)| lo <= day && day <= hi);
                (u32::from(covers), covers)
            }
            OutcomeKind::SpellDays { .. } => {
                let days = merged_days(&mut held.spells[i]);
                (days, days > 0)
            }
        };
    }
    (
        OutcomeValues {
            name: outcome.name.clone(),
            measure,
            value,
            event,
            known,
            follow_up,
        },
        persons,
    )
}
