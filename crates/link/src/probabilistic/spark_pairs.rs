//! The Spark engine for `method = "probabilistic"`: the candidate pairs and their level patterns
//! come from a Spark job (`spark/probabilistic.py`) instead of the spine's blocking index.
//!
//! The job gets the blocking rules ([`super::blocking::rules`]) and the comparison columns of each
//! field, and writes, for the i-th extract, `work_dir/spark/pairs/extract=<i>/` (none when it has
//! no pairs): a row per candidate pair (`record`, `spine`, `rule`, `pattern`) sorted by (record,
//! spine) and `rules` (a bit per rule that found the pair, of the job's first 16) — the pairs
//! [`super::blocking::SpineIndex::pairs`] finds, each under its first rule, with the pattern
//! [`super::model::pattern`] gives. [`PairReader`] streams them back in record order, chunk by
//! chunk, and checks every row (numbers in range, strictly increasing, a valid level per field),
//! so no more than one chunk's pairs are held. The blocking keys differ in form only: linklab
//! hashes a rule's tokens into one key, the job joins on the tokens themselves (so a shared key
//! is the same tokens, up to hash collisions here and the match keys' first 8 bytes that the
//! index keeps).

use std::ops::Range;
use std::path::PathBuf;

use arrow::array::{Array, Int64Array, RecordBatch};
use linklab_store::{Progress, StoreError, WorkDir};

use super::blocking::{Pair, Part, Pass, Rule, Sample, TRAINING_RULES, rule_bit};
use super::fields::{CompareField, MISSING_LEVEL};
use super::model::{Pattern, level_of};
use crate::LinkError;
use crate::input::ExtractInput;
use crate::spark::{Script, SparkJob, SparkSettings, int_columns, output_batches};

/// The job script.
const SCRIPT: Script = Script {
    name: "probabilistic.py",
    text: include_str!("../../spark/probabilistic.py"),
};
/// The columns of the job's output.
const COLUMNS: [&str; 5] = ["record", "spine", "rule", "pattern", "rules"];

/// The job's output, once it has run.
pub(crate) struct SparkPairs<'a> {
    job: SparkJob<'a>,
    spine_rows: u64,
    /// The numbers, among all the rules, of the rules the job was given, in its order.
    rules: Vec<u8>,
    /// Per compared field, its number of levels (the missing level aside).
    levels: Vec<u8>,
}

/// A rule as the job file lists it.
fn rule_json(rule: &Rule) -> serde_json::Value {
    let parts: Vec<serde_json::Value> = rule
        .parts
        .iter()
        .map(|part| match *part {
            Part::Key(k) => serde_json::json!({ "key": k }),
            Part::Scalar(f, v) => serde_json::json!({ "scalar": [f, v] }),
            Part::Edit1(f) => serde_json::json!({ "edit1": f }),
            Part::EitherOrder([(f, v), (g, w)]) => serde_json::json!({ "either_order": [[f, v], [g, w]] }),
        })
        .collect();
    serde_json::json!({ "name": rule.name, "cap": rule.cap, "parts": parts })
}

/// A field's comparison columns as the job file lists them: the scalar ones, exact first, the
/// edit-1 set's (null when the kind has none) and the `cross` one's (null when the kind has
/// none; an extract of token spec v2 lacks it, and the job reads it as null).
fn field_json(field: &CompareField) -> serde_json::Value {
    let scalars: Vec<String> = field
        .scalar_variants()
        .map(|v| format!("cmp_{}_{v}", field.name))
        .collect();
    let edit1 = field.has_edit1().then(|| format!("cmp_{}_edit1", field.name));
    let cross = field.has_cross().then(|| format!("cmp_{}_cross", field.name));
    serde_json::json!({ "scalars": scalars, "edit1": edit1, "cross": cross })
}

impl<'a> SparkPairs<'a> {
    /// Runs the job over every extract (the spine against itself) with the rules of `rules`
    /// (all of them, numbered in order) that `pass` uses.
    pub(crate) fn run(
        settings: &'a SparkSettings,
        work_dir: &WorkDir,
        (inputs, spine_index): (&[ExtractInput], usize),
        fields: &[CompareField],
        (rules, pass): (&[Rule], Pass),
        progress: &dyn Progress,
    ) -> Result<Self, LinkError> {
        let used: Vec<(u8, &Rule)> = (0_u8..).zip(rules).filter(|(_, r)| r.in_pass(pass)).collect();
        let job = SparkJob::prepare(settings, work_dir, SCRIPT, inputs, spine_index, |dir| {
            serde_json::json!({
                "fields": fields.iter().map(field_json).collect::<Vec<_>>(),
                "crossed": super::fields::crossed_pair(fields).map(|pair| pair.map(|(f, _)| f)),
                "rules": used.iter().map(|(_, r)| rule_json(r)).collect::<Vec<_>>(),
                "pairs_dir": dir.join("pairs"),
            })
        })?;
        job.launch("pairs", progress)?;
        Ok(Self {
            job,
            spine_rows: inputs[spine_index].rows,
            rules: used.iter().map(|(i, _)| *i).collect(),
            levels: fields.iter().map(|f| f.levels().len() as u8).collect(),
        })
    }

    /// A reader of the pairs of `input`, the job's extract number `i` (`self_join` when it is
    /// the spine).
    pub(crate) fn reader(
        &self,
        input: &ExtractInput,
        i: usize,
        self_join: bool,
    ) -> Result<PairReader<'_>, LinkError> {
        let all = self.job.dir().join("pairs");
        let dir = all.join(format!("extract={i}"));
        let batches: Box<dyn Iterator<Item = _>> = if dir.is_dir() {
            Box::new(output_batches(&dir)?)
        } else if all.join("_SUCCESS").is_file() {
            // Spark writes no folder for an extract without pairs.
            Box::new(std::iter::empty())
        } else {
            return Err(LinkError::SparkOutput {
                path: all,
                reason: "the job did not finish writing it".into(),
            });
        };
        Ok(PairReader {
            batches,
            dir,
            columns: Vec::new(),
            row: 0,
            last: None,
            rows: input.rows,
            self_join,
            of: self,
        })
    }

    /// Removes `work_dir/spark/` after a successful run.
    pub(crate) fn clean(self) {
        self.job.clean();
    }
}

/// One extract's pairs, read in record order.
pub(crate) struct PairReader<'a> {
    dir: PathBuf,
    batches: Box<dyn Iterator<Item = Result<RecordBatch, StoreError>> + 'a>,
    /// The current batch's columns ([`COLUMNS`]) and the next row of it.
    columns: Vec<Int64Array>,
    row: usize,
    last: Option<(u32, u32)>,
    rows: u64,
    self_join: bool,
    of: &'a SparkPairs<'a>,
}

impl PairReader<'_> {
    fn bad(&self, reason: impl Into<String>) -> LinkError {
        LinkError::SparkOutput {
            path: self.dir.clone(),
            reason: reason.into(),
        }
    }

    /// The record number of the next row, loading the next batch when this one is done;
    /// `None` at the end.
    fn peek(&mut self) -> Result<Option<i64>, LinkError> {
        while self.columns.first().is_none_or(|c| self.row >= c.len()) {
            let Some(batch) = self.batches.next() else {
                return Ok(None);
            };
            self.columns = int_columns(&self.dir, &batch?, &COLUMNS)?;
            self.row = 0;
        }
        let record = &self.columns[0];
        Ok(record
            .is_valid(self.row)
            .then(|| record.value(self.row))
            .or(Some(-1)))
    }

    /// The next row as a pair and its pattern, checked.
    fn take(&mut self, start: u32) -> Result<(Pair, Pattern), LinkError> {
        let i = self.row;
        self.row += 1;
        let value =
            |c: usize| -> Option<i64> { self.columns[c].is_valid(i).then(|| self.columns[c].value(i)) };
        let (record, spine, rule, pattern, rules) = (value(0), value(1), value(2), value(3), value(4));
        let record = record
            .and_then(|r| u32::try_from(r).ok())
            .filter(|&r| u64::from(r) < self.rows && r >= start)
            .ok_or_else(|| self.bad("a record number is missing, out of range or out of order"))?;
        let spine = spine
            .and_then(|r| u32::try_from(r).ok())
            .filter(|&r| u64::from(r) < self.of.spine_rows && (!self.self_join || r < record))
            .ok_or_else(|| self.bad(format!("record {record} has a pair with no valid spine record")))?;
        if self.last.is_some_and(|last| last >= (record, spine)) {
            return Err(self.bad(format!("the pairs of record {record} are not sorted or repeat")));
        }
        self.last = Some((record, spine));
        let local = rule
            .and_then(|r| usize::try_from(r).ok())
            .filter(|&r| r < self.of.rules.len())
            .ok_or_else(|| self.bad(format!("record {record} has a pair with no valid rule")))?;
        let rule = self.of.rules[local];
        let found = rules
            .and_then(|r| u16::try_from(r).ok())
            .filter(|&bits| valid_rules(bits, local, self.of.rules.len()))
            .ok_or_else(|| self.bad(format!("record {record} has a pair with no valid rules")))?;
        let rules = (0..self.of.rules.len().min(usize::from(TRAINING_RULES)))
            .filter(|&b| found >> b & 1 == 1)
            .fold(0, |acc, b| acc | rule_bit(self.of.rules[b]));
        #[allow(
            clippy::cast_sign_loss,
            reason = "the job writes the pattern's 64 bits as a long"
        )]
        let pattern = pattern
            .map(|p| p as u64)
            .filter(|&p| valid_pattern(p, &self.of.levels))
            .ok_or_else(|| self.bad(format!("record {record} has a pair with no valid pattern")))?;
        Ok((
            Pair {
                left: record,
                right: spine,
                rule,
                rules,
            },
            pattern,
        ))
    }

    /// Appends the pairs of the records `range` (numbers in the extract) that are in `sample`,
    /// with their patterns. Chunks come in record order.
    pub(crate) fn next_chunk(
        &mut self,
        range: Range<u32>,
        sample: Sample,
        pairs: &mut Vec<Pair>,
        patterns: &mut Vec<Pattern>,
    ) -> Result<(), LinkError> {
        while let Some(record) = self.peek()? {
            if record >= i64::from(range.end) {
                break;
            }
            let (pair, pattern) = self.take(range.start)?;
            if sample.holds(pair.left) {
                pairs.push(pair);
                patterns.push(pattern);
            }
        }
        Ok(())
    }

    /// Checks that every row was read.
    pub(crate) fn finish(mut self) -> Result<(), LinkError> {
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(self.bad("it has pairs of records beyond the extract's")),
        }
    }
}

/// Whether `bits` (the job's `rules`: a bit per rule of the job's first [`TRAINING_RULES`]) can
/// be those of a pair whose first rule is the job's rule `first`, of `rules`: its bit set (when
/// it has one), none before it, and none beyond the job's rules.
fn valid_rules(bits: u16, first: usize, rules: usize) -> bool {
    let bit = |b: usize| b < usize::from(TRAINING_RULES) && bits >> b & 1 == 1;
    (first >= usize::from(TRAINING_RULES) || bit(first))
        && !(0..first).any(bit)
        && !(rules..usize::from(TRAINING_RULES)).any(bit)
}

/// Whether every field's level is one of its levels or missing, and no bits are set beyond.
fn valid_pattern(pattern: Pattern, levels: &[u8]) -> bool {
    let fields = levels.len();
    let beyond = if fields >= 16 { 0 } else { pattern >> (4 * fields) };
    beyond == 0
        && levels.iter().enumerate().all(|(f, &n)| {
            let level = level_of(pattern, f);
            level < n || level == MISSING_LEVEL
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_hold_a_level_of_each_field_or_missing() {
        let levels = [5, 2];
        for (pattern, expected) in [
            (0x00, true),
            (0x14, true),
            (0xF4, true),
            (0x1F, true),
            (0x05, false),
            (0x24, false),
            (0x100, false),
        ] {
            assert_eq!(valid_pattern(pattern, &levels), expected, "{pattern:#x}");
        }
        assert!(valid_pattern(u64::MAX, &[5; 16]), "every field missing");
        assert!(valid_pattern(0x1 << 60, &[2; 16]));
        assert!(!valid_pattern(0x2 << 60, &[2; 16]));
    }

    #[test]
    fn a_pairs_rules_hold_its_first_rule_and_none_before_or_beyond() {
        for (bits, first, rules, expected) in [
            (0b0001, 0, 4, true),
            (0b1011, 0, 4, true),
            (0b0100, 2, 4, true),
            (0b0110, 2, 4, false),
            (0b1000, 2, 4, false),
            (0b0000, 1, 4, false),
            (0b1_0001, 0, 4, false),
            (0b0000, 16, 20, true),
            (0b0001, 16, 20, false),
            (1 << 15, 15, 20, true),
        ] {
            assert_eq!(
                valid_rules(bits, first, rules),
                expected,
                "{bits:#b} first {first} of {rules}"
            );
        }
    }

    #[test]
    fn rules_and_fields_are_listed_for_the_job() {
        let rule = Rule {
            name: "dob_edit1+surname_soundex".into(),
            parts: vec![
                Part::Edit1(2),
                Part::Scalar(0, 1),
                Part::Key(1),
                Part::EitherOrder([(0, 3), (1, 3)]),
            ],
            cap: 50,
            used: crate::probabilistic::blocking::Use::Fit,
        };
        assert_eq!(
            rule_json(&rule).to_string(),
            r#"{"cap":50,"name":"dob_edit1+surname_soundex","parts":[{"edit1":2},{"scalar":[0,1]},{"key":1},{"either_order":[[0,3],[1,3]]}]}"#
        );
        let field = CompareField {
            name: "postcode".into(),
            kind: linklab_tokens::FieldKind::Postcode,
        };
        assert_eq!(
            field_json(&field).to_string(),
            r#"{"cross":null,"edit1":"cmp_postcode_edit1","scalars":["cmp_postcode_exact","cmp_postcode_district"]}"#
        );
        let field = CompareField {
            name: "surname".into(),
            kind: linklab_tokens::FieldKind::Name,
        };
        assert_eq!(
            field_json(&field).to_string(),
            r#"{"cross":"cmp_surname_cross","edit1":"cmp_surname_edit1","scalars":["cmp_surname_exact","cmp_surname_soundex","cmp_surname_initial"]}"#
        );
    }
}
