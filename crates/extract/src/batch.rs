//! Batches of records, their text columns, and rejects.

use std::fmt;

/// One column of a batch as text: all values back to back in one string, and the end offset of
/// each value. A value is never allocated on its own.
///
/// Its `Debug` output shows only its length, never its values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    data: String,
    ends: Vec<usize>,
}

impl fmt::Debug for TextColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextColumn")
            .field("len", &self.ends.len())
            .finish_non_exhaustive()
    }
}

impl TextColumn {
    /// An empty column with room for `values` values of `bytes` bytes in total.
    pub fn with_capacity(values: usize, bytes: usize) -> Self {
        Self {
            data: String::with_capacity(bytes),
            ends: Vec::with_capacity(values),
        }
    }

    /// Appends a value.
    pub fn push(&mut self, value: &str) {
        self.data.push_str(value);
        self.ends.push(self.data.len());
    }

    /// Appends a value written by `write` into the column's buffer (no separate allocation).
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.data);
        self.ends.push(self.data.len());
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value at `index`.
    ///
    /// # Panics
    /// If `index` is out of range (the message holds the index, never a value).
    pub fn get(&self, index: usize) -> &str {
        let end = self.ends[index];
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        // Offsets are always taken after whole strings were pushed, so they are char boundaries;
        // `get` (rather than indexing) keeps any value out of a panic message regardless.
        self.data
            .get(start..end)
            .expect("value offsets are char boundaries")
    }

    /// The values in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// All values back to back.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The end offset (in bytes, into [`TextColumn::data`]) of each value; value `i` starts where
    /// value `i - 1` ends, and value 0 at offset 0.
    pub fn ends(&self) -> &[usize] {
        &self.ends
    }

    /// The buffer and the end offsets, for building a columnar array without copying.
    pub fn into_parts(self) -> (String, Vec<usize>) {
        (self.data, self.ends)
    }
}

/// Why a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The record has more or fewer fields than the header.
    WrongFieldCount,
    /// A field holds bytes that are not valid UTF-8 in an extract declared as UTF-8.
    InvalidUtf8,
}

impl RejectReason {
    /// Every reason.
    pub const ALL: [RejectReason; 2] = [RejectReason::WrongFieldCount, RejectReason::InvalidUtf8];

    /// A stable snake-case label used in manifests: `wrong_field_count`, `invalid_utf8`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::WrongFieldCount => "wrong_field_count",
            RejectReason::InvalidUtf8 => "invalid_utf8",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that was not yielded, by number and reason (never by content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reject {
    /// The 1-based record number (the header is not counted).
    pub record: u64,
    /// The 1-based line on which the record starts (CSV only).
    pub line: Option<u64>,
    /// Why it was rejected.
    pub reason: RejectReason,
}

/// A batch of records: the requested columns as text, the number of each record, and the records
/// rejected while the batch was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub(crate) columns: Vec<TextColumn>,
    pub(crate) records: Vec<u64>,
    pub(crate) lines: Option<Vec<u64>>,
    pub(crate) rejects: Vec<Reject>,
}

impl Batch {
    /// The number of records yielded (rejects not included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch yields no record (it may still report rejects).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The requested columns, in the order they were requested.
    pub fn columns(&self) -> &[TextColumn] {
        &self.columns
    }

    /// The `index`-th requested column.
    pub fn column(&self, index: usize) -> &TextColumn {
        &self.columns[index]
    }

    /// Takes the columns out of the batch.
    pub fn into_columns(self) -> Vec<TextColumn> {
        self.columns
    }

    /// The 1-based record number of each row.
    pub fn records(&self) -> &[u64] {
        &self.records
    }

    /// The 1-based line on which each row starts (CSV only).
    pub fn lines(&self) -> Option<&[u64]> {
        self.lines.as_deref()
    }

    /// The line on which row `index` starts (CSV only).
    pub fn line(&self, index: usize) -> Option<u64> {
        self.lines.as_ref().map(|lines| lines[index])
    }

    /// The records rejected while this batch was read, in file order.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_column_keeps_values_apart() {
        let mut col = TextColumn::default();
        for v in ["a", "", "José", "x,y"] {
            col.push(v);
        }
        assert_eq!(col.iter().collect::<Vec<_>>(), ["a", "", "José", "x,y"]);
        assert_eq!(col.ends(), [1, 1, 6, 9]);
        assert_eq!(col.data(), "aJoséx,y");
        assert_eq!(format!("{col:?}"), "TextColumn { len: 4, .. }");
    }
}
