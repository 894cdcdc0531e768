//! Link quality against the ground truth `linklab synth` writes (`truth/records.csv`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int32Type, Int64Type, UInt32Type, UInt64Type};

use crate::LinkError;
use crate::cluster::NONE;
use crate::input::ExtractInput;
use crate::report::{ExtractQuality, PairwiseQuality, ratio};

/// The column that ties a record to the truth file.
pub(crate) const RECORD_ID: &str = "record_id";

/// The note of the linkage report for an extract whose quality cannot be measured: it keeps no
/// usable record id.
pub(crate) fn no_record_id_note(input: &ExtractInput) -> String {
    let present = input
        .keep_cols
        .iter()
        .any(|&i| input.schema.field(i).name() == RECORD_ID);
    if present {
        format!(
            "extract `{}` keeps `{RECORD_ID}` with a type that cannot hold record ids; its quality is not measured",
            input.name
        )
    } else {
        format!(
            "extract `{}` does not keep a `{RECORD_ID}` column; its quality is not measured",
            input.name
        )
    }
}

/// Whether a `record_id` column of this type can be matched to the truth file.
pub(crate) fn supports(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Int64
            | DataType::Int32
            | DataType::UInt64
            | DataType::UInt32
    )
}

/// The truth file: each record's true person, as a small number.
#[derive(Debug)]
pub(crate) struct Truth {
    /// extract → record id → true person number.
    by_extract: HashMap<String, HashMap<String, u32>>,
}

/// Finds the truth file: `<dir>/truth/records.csv`, or `<dir>/records.csv` if `dir` is the truth
/// folder itself.
pub(crate) fn truth_file(dir: &Path) -> PathBuf {
    let nested = dir.join("truth").join("records.csv");
    if nested.is_file() {
        nested
    } else {
        dir.join("records.csv")
    }
}

/// Splits one CSV line (RFC 4180 quoting, no line breaks inside fields).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl Truth {
    /// Reads the rows of the truth file that belong to `extracts`.
    pub(crate) fn load(dir: &Path, extracts: &[String]) -> Result<Self, LinkError> {
        let path = truth_file(dir);
        let error = |line: u64, reason: String| LinkError::Truth {
            path: path.clone(),
            line,
            reason,
        };
        let file = File::open(&path).map_err(|e| error(0, format!("cannot open: {e}")))?;
        let mut lines = BufReader::new(file).lines();
        let header = match lines.next() {
            Some(line) => split_csv(
                line.map_err(|e| error(1, format!("cannot read: {e}")))?
                    .trim_end_matches('\r'),
            ),
            None => return Err(error(1, "the file is empty".into())),
        };
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| error(1, format!("the header has no `{name}` column")))
        };
        let (e_col, r_col, p_col) = (column("extract")?, column(RECORD_ID)?, column("person")?);
        let width = header.len();
        let mut by_extract: HashMap<String, HashMap<String, u32>> =
            extracts.iter().map(|e| (e.clone(), HashMap::new())).collect();
        let mut people: HashMap<String, u32> = HashMap::new();
        for (i, line) in lines.enumerate() {
            let number = i as u64 + 2;
            let line = line.map_err(|e| error(number, format!("cannot read: {e}")))?;
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let mut fields = split_csv(line);
            if fields.len() != width {
                return Err(error(
                    number,
                    format!("expected {width} fields, found {}", fields.len()),
                ));
            }
            let Some(records) = by_extract.get_mut(fields[e_col].as_str()) else {
                continue;
            };
            let next = people.len() as u32;
            let person = *people.entry(std::mem::take(&mut fields[p_col])).or_insert(next);
            records.insert(std::mem::take(&mut fields[r_col]), person);
        }
        Ok(Self { by_extract })
    }

    /// The true person of each row of a `record_id` column (`NONE` where the truth file does not
    /// know the record), or `None` if the column's type cannot hold record ids.
    pub(crate) fn people_of(&self, extract: &str, column: &ArrayRef) -> Option<Vec<u32>> {
        let empty = HashMap::new();
        let records = self.by_extract.get(extract).unwrap_or(&empty);
        let find = |id: &str| records.get(id).copied().unwrap_or(NONE);
        let n = column.len();
        let mut buf = String::new();
        let mut by_number = |valid: bool, value: &dyn std::fmt::Display| {
            if !valid {
                return NONE;
            }
            buf.clear();
            let _ = write!(buf, "{value}");
            find(&buf)
        };
        Some(match column.data_type() {
            DataType::Utf8 => {
                let a = column.as_string::<i32>();
                (0..n)
                    .map(|i| if a.is_valid(i) { find(a.value(i)) } else { NONE })
                    .collect()
            }
            DataType::LargeUtf8 => {
                let a = column.as_string::<i64>();
                (0..n)
                    .map(|i| if a.is_valid(i) { find(a.value(i)) } else { NONE })
                    .collect()
            }
            DataType::Int64 => {
                let a = column.as_primitive::<Int64Type>();
                (0..n).map(|i| by_number(a.is_valid(i), &a.value(i))).collect()
            }
            DataType::Int32 => {
                let a = column.as_primitive::<Int32Type>();
                (0..n).map(|i| by_number(a.is_valid(i), &a.value(i))).collect()
            }
            DataType::UInt64 => {
                let a = column.as_primitive::<UInt64Type>();
                (0..n).map(|i| by_number(a.is_valid(i), &a.value(i))).collect()
            }
            DataType::UInt32 => {
                let a = column.as_primitive::<UInt32Type>();
                (0..n).map(|i| by_number(a.is_valid(i), &a.value(i))).collect()
            }
            _ => return None,
        })
    }
}

/// The true composition of the persons formed on the spine.
#[derive(Debug)]
pub(crate) struct SpineTruth {
    /// (person, true person) → spine records.
    cells: HashMap<(u32, u32), u64>,
    /// Spine records known to the truth file, per person.
    known_per_person: Vec<u64>,
    /// Spine records per true person.
    per_true_person: HashMap<u32, u64>,
    /// Pairwise quality of the clustering.
    pub pairwise: PairwiseQuality,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

impl SpineTruth {
    /// `truth[r]` is the true person of spine record r (`NONE` if unknown).
    pub(crate) fn new(truth: &[u32], person_of: &[u32], persons: usize) -> Self {
        let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
        let mut known_per_person = vec![0; persons];
        let mut per_true_person: HashMap<u32, u64> = HashMap::new();
        for (&t, &p) in truth.iter().zip(person_of) {
            if t == NONE {
                continue;
            }
            *cells.entry((p, t)).or_insert(0) += 1;
            known_per_person[p as usize] += 1;
            *per_true_person.entry(t).or_insert(0) += 1;
        }
        let pairwise = PairwiseQuality::new(
            cells.values().map(|&n| pairs(n)).sum(),
            known_per_person.iter().map(|&n| pairs(n)).sum(),
            per_true_person.values().map(|&n| pairs(n)).sum(),
        );
        Self {
            cells,
            known_per_person,
            per_true_person,
            pairwise,
        }
    }
}

/// Counts towards one extract's [`ExtractQuality`].
#[derive(Debug, Default)]
pub(crate) struct LinkQuality {
    in_truth: u64,
    not_in_truth: u64,
    linkable: u64,
    linked: u64,
    correct: u64,
    tp: u64,
    predicted: u64,
    true_pairs: u64,
}

impl LinkQuality {
    /// Adds one record: its true person (`NONE` if unknown) and its person (`None` if unlinked).
    pub(crate) fn add(&mut self, truth: u32, person: Option<u32>, spine: &SpineTruth) {
        if truth == NONE {
            self.not_in_truth += 1;
            return;
        }
        self.in_truth += 1;
        let on_spine = spine.per_true_person.get(&truth).copied().unwrap_or(0);
        if on_spine > 0 {
            self.linkable += 1;
            self.true_pairs += on_spine;
        }
        if let Some(p) = person {
            self.linked += 1;
            self.predicted += spine.known_per_person[p as usize];
            let same = spine.cells.get(&(p, truth)).copied().unwrap_or(0);
            self.tp += same;
            if same > 0 {
                self.correct += 1;
            }
        }
    }

    pub(crate) fn finish(self, extract: &str) -> ExtractQuality {
        ExtractQuality {
            extract: extract.to_owned(),
            records_in_truth: self.in_truth,
            records_not_in_truth: self.not_in_truth,
            linkable: self.linkable,
            linked: self.linked,
            correct: self.correct,
            record_precision: ratio(self.correct, self.linked),
            record_recall: ratio(self.correct, self.linkable),
            pairwise: PairwiseQuality::new(self.tp, self.predicted, self.true_pairs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_csv("a,\"b,c\",\"d\"\"e\""), vec!["a", "b,c", "d\"e"]);
        assert_eq!(split_csv(""), vec![""]);
    }

    #[test]
    fn spine_pairs_are_counted() {
        // Persons: {0,1,2} and {3}; truth: {0,1}, {2,3}.
        let q = SpineTruth::new(&[7, 7, 8, 8], &[0, 0, 0, 1], 2);
        assert_eq!(
            (
                q.pairwise.true_positive_pairs,
                q.pairwise.predicted_pairs,
                q.pairwise.true_pairs
            ),
            (1, 3, 2)
        );
    }
}
