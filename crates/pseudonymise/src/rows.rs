//! A batch of records as the stage processes it, whichever reader produced it.

use linklab_extract::{Batch, Reject, TextColumn};

/// The requested columns of some records as text, their global record (and line) numbers, and
/// the records rejected while they were read.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub columns: Vec<TextColumn>,
    pub records: Vec<u64>,
    pub lines: Option<Vec<u64>>,
    pub rejects: Vec<Reject>,
}

impl Rows {
    pub(crate) fn from_batch(batch: Batch) -> Self {
        let records = batch.records().to_vec();
        let lines = batch.lines().map(<[u64]>::to_vec);
        let rejects = batch.rejects().to_vec();
        Self {
            columns: batch.into_columns(),
            records,
            lines,
            rejects,
        }
    }

    /// The records whose number lies in `first..end`, in order (record numbers rise within a
    /// batch, so they are a contiguous run).
    pub(crate) fn keep_records(self, first: u64, end: u64) -> Self {
        let from = self.records.partition_point(|&r| r < first);
        let to = self.records.partition_point(|&r| r < end);
        let rejects = self
            .rejects
            .into_iter()
            .filter(|r| (first..end).contains(&r.record))
            .collect();
        if from == 0 && to == self.records.len() {
            return Self { rejects, ..self };
        }
        let columns = self
            .columns
            .iter()
            .map(|c| {
                let mut out = TextColumn::with_capacity(to - from, 0);
                for i in from..to {
                    out.push(c.get(i));
                }
                out
            })
            .collect();
        Self {
            columns,
            records: self.records[from..to].to_vec(),
            lines: self.lines.map(|l| l[from..to].to_vec()),
            rejects,
        }
    }

    /// The number of records yielded (rejects not included).
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn column(&self, index: usize) -> &TextColumn {
        &self.columns[index]
    }

    pub(crate) fn records(&self) -> &[u64] {
        &self.records
    }

    pub(crate) fn line(&self, index: usize) -> Option<u64> {
        self.lines.as_ref().map(|lines| lines[index])
    }

    pub(crate) fn rejects(&self) -> &[Reject] {
        &self.rejects
    }
}
