//! The CSV reader: RFC 4180 records through the `csv` crate, decoded field by field.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use encoding_rs::WINDOWS_1252;

use crate::batch::{Batch, Reject, RejectReason, TextColumn};
use crate::scan::{ScanProblem, Tracked};
use crate::{Encoding, ExtractError, ReadSummary, Tap};

/// The read buffer of the CSV parser.
const READ_BUFFER: usize = 1 << 20;
/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A byte range of a CSV file that starts and ends on record boundaries, with what is known of
/// the records and lines before it, so that a reader of the range numbers records and lines as a
/// reader of the whole file would. Found by scanning the file from its start with
/// [`crate::scan::CsvScanner`] (pseudonymise's partitions do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvRange {
    /// The first byte of the range: where a reader starts reading its first record (just after
    /// the line end of the record before), at least 1, so after the header.
    pub start: u64,
    /// One past the last byte of the range: a record boundary or the end of the file.
    pub end: u64,
    /// Data records (not the header) that end before `start`.
    pub records_before: u64,
    /// `\n` bytes before `start - 1` (the line count the `csv` crate reports is based on them).
    pub newlines_before_prev: u64,
    /// Whether the byte at `start - 1` is `\n`.
    pub after_newline: bool,
}

/// The bytes the parser reads: the whole file, or a range of it.
type Input = Box<dyn Read + Send>;

/// A file whose bytes are shown to a [`Tap`] as they are read.
struct Tee {
    inner: File,
    tap: Tap,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.tap)(&buf[..n]);
        }
        Ok(n)
    }
}

pub(crate) struct CsvSource {
    reader: csv::Reader<Tracked<Input>>,
    /// The configured names of the requested columns, for errors.
    names: Vec<String>,
    /// Set once the file has been read to the end.
    summary: ReadSummary,
    /// Windows-1252 only: records that are not ASCII, and those of them that are not UTF-8.
    non_ascii: u64,
    non_utf8: u64,
    record: ByteRecord,
    encoding: Encoding,
    header_len: usize,
    /// The header index of each requested column.
    indices: Vec<usize>,
    /// Data records read so far, rejects included.
    records_read: u64,
    /// Bytes per requested column in the previous batch, to size the next one.
    last_bytes: Vec<usize>,
    /// A range's place in the file: lines before it, and whether its first record's line needs
    /// one more (the parser reports the first record at the line of the line end the range
    /// starts on). Zero and `false` for the whole file, whose line count is then known at its end.
    line_offset: u64,
    first_extra: bool,
    range: bool,
}

fn builder(delimiter: u8) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(READ_BUFFER);
    builder
}

impl CsvSource {
    pub(crate) fn open(
        path: &Path,
        delimiter: u8,
        encoding: Encoding,
        columns: &[String],
        tap: Option<Tap>,
    ) -> Result<Self, ExtractError> {
        let file = File::open(path).map_err(|source| ExtractError::Open {
            path: path.into(),
            source,
        })?;
        let input: Input = match tap {
            Some(tap) => Box::new(Tee { inner: file, tap }),
            None => Box::new(file),
        };
        let mut reader = builder(delimiter).from_reader(Tracked::new(input, delimiter));
        let mut header = ByteRecord::new();
        let found = reader
            .read_byte_record(&mut header)
            .map_err(|e| read_error(path, 0, e, reader.get_ref().problem(), &[]))?;
        if !found {
            return Err(ExtractError::Empty { path: path.into() });
        }
        let mut names = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            // csv-core skips a byte-order mark itself; this is belt and braces.
            let field = if i == 0 {
                field.strip_prefix(BOM).unwrap_or(field)
            } else {
                field
            };
            let name = match encoding {
                Encoding::Utf8 => std::str::from_utf8(field)
                    .map_err(|_| ExtractError::HeaderEncoding {
                        path: path.into(),
                        encoding: encoding.as_str(),
                    })?
                    .to_owned(),
                Encoding::Windows1252 => WINDOWS_1252.decode_without_bom_handling(field).0.into_owned(),
            };
            names.push(name);
        }
        let indices = match_columns(path, &names, columns, delimiter)?;
        Ok(Self {
            reader,
            names: columns.to_vec(),
            summary: ReadSummary::default(),
            non_ascii: 0,
            non_utf8: 0,
            record: ByteRecord::new(),
            encoding,
            header_len: names.len(),
            indices,
            records_read: 0,
            last_bytes: vec![0; columns.len()],
            line_offset: 0,
            first_extra: false,
            range: false,
        })
    }

    /// This source, its header already read, reading only the records of `range` instead of the
    /// rest of the file, numbered as in a read of the whole file.
    pub(crate) fn into_range(
        mut self,
        path: &Path,
        delimiter: u8,
        range: &CsvRange,
    ) -> Result<Self, ExtractError> {
        let open_error = |source| ExtractError::Open {
            path: path.into(),
            source,
        };
        // Start one byte early, on the line end before the range: the parser skips it as a blank
        // line, and does not take bytes at the range's start for a byte-order mark.
        let input: Input = if range.start < range.end {
            let from = range.start - 1;
            let mut file = File::open(path).map_err(open_error)?;
            file.seek(SeekFrom::Start(from)).map_err(open_error)?;
            Box::new(file.take(range.end - from))
        } else {
            Box::new(io::empty())
        };
        self.reader = builder(delimiter).from_reader(Tracked::new(input, delimiter));
        self.records_read = range.records_before;
        self.line_offset = range.newlines_before_prev;
        self.first_extra = range.after_newline;
        self.range = true;
        Ok(self)
    }

    pub(crate) fn source_columns(&self) -> &[usize] {
        &self.indices
    }

    pub(crate) fn summary(&self) -> ReadSummary {
        self.summary.clone()
    }

    pub(crate) fn header_len(&self) -> usize {
        self.header_len
    }

    pub(crate) fn next_batch(
        &mut self,
        path: &Path,
        batch_rows: usize,
    ) -> Result<Option<Batch>, ExtractError> {
        let mut columns: Vec<TextColumn> = self
            .last_bytes
            .iter()
            .map(|&bytes| TextColumn::with_capacity(batch_rows, bytes + bytes / 8))
            .collect();
        let mut records = Vec::with_capacity(batch_rows);
        let mut lines = Vec::with_capacity(batch_rows);
        let mut rejects = Vec::new();
        while records.len() + rejects.len() < batch_rows {
            let found = self.reader.read_byte_record(&mut self.record).map_err(|e| {
                let named: Vec<(usize, &str)> = self
                    .indices
                    .iter()
                    .copied()
                    .zip(self.names.iter().map(String::as_str))
                    .collect();
                let problem = self
                    .reader
                    .get_ref()
                    .problem()
                    .map(|p| p.shifted(self.line_offset));
                read_error(path, self.records_read, e, problem, &named)
            })?;
            if !found {
                let tracked = self.reader.get_ref();
                // A range ends on a record boundary, so a quote still open at its end is one
                // that the end of the file does not close either.
                if let Some(line) = tracked.unclosed_quote() {
                    return Err(ExtractError::UnclosedQuote {
                        path: path.into(),
                        line: line + self.line_offset,
                    });
                }
                if let Some(lines) = tracked.lines().filter(|_| !self.range) {
                    self.summary.set(lines, self.non_ascii > 0 && self.non_utf8 == 0);
                }
                break;
            }
            self.records_read += 1;
            let record = self.records_read;
            let extra = u64::from(std::mem::take(&mut self.first_extra));
            let line = self
                .record
                .position()
                .map(|p| p.line() + self.line_offset + extra);
            // UTF-8 is checked once over the record's bytes: the fields are valid exactly when
            // the whole is and every field starts on a character boundary.
            let text = match self.encoding {
                Encoding::Utf8 => std::str::from_utf8(self.record.as_slice()).ok().filter(|text| {
                    (0..self.record.len()).all(|i| {
                        self.record
                            .range(i)
                            .is_some_and(|r| text.is_char_boundary(r.start))
                    })
                }),
                Encoding::Windows1252 => {
                    let bytes = self.record.as_slice();
                    if self.non_utf8 == 0 && !bytes.is_ascii() {
                        self.non_ascii += 1;
                        self.non_utf8 += u64::from(std::str::from_utf8(bytes).is_err());
                    }
                    None
                }
            };
            let reason = if self.record.len() != self.header_len {
                Some(RejectReason::WrongFieldCount)
            } else if self.encoding == Encoding::Utf8 && text.is_none() {
                Some(RejectReason::InvalidUtf8)
            } else {
                None
            };
            if let Some(reason) = reason {
                rejects.push(Reject { record, line, reason });
                continue;
            }
            for (column, &index) in columns.iter_mut().zip(&self.indices) {
                match (text, self.record.range(index)) {
                    (Some(text), Some(range)) => column.push(&text[range]),
                    // Windows-1252: every byte is a character, so decoding cannot fail.
                    _ => column.push_with(|buf| {
                        buf.push_str(&WINDOWS_1252.decode_without_bom_handling(&self.record[index]).0);
                    }),
                }
            }
            records.push(record);
            lines.push(line.unwrap_or(0));
        }
        if records.is_empty() && rejects.is_empty() {
            return Ok(None);
        }
        for (bytes, column) in self.last_bytes.iter_mut().zip(&columns) {
            *bytes = column.data().len();
        }
        Ok(Some(Batch {
            columns,
            records,
            lines: Some(lines),
            rejects,
        }))
    }
}

/// The error of a failed CSV read after `record` records: a field or record over the size
/// limits if the [`crate::scan::Tracked`] reader failed it (`named`: the header index and
/// configured name of each requested column), else an I/O error. A parser message is never
/// passed on, as it could quote data.
pub(crate) fn read_error(
    path: &Path,
    record: u64,
    error: csv::Error,
    problem: Option<ScanProblem>,
    named: &[(usize, &str)],
) -> ExtractError {
    match problem {
        Some(ScanProblem::FieldTooLarge { line, column }) => {
            return ExtractError::FieldTooLarge {
                path: path.into(),
                line,
                column,
                name: named
                    .iter()
                    .find(|(index, _)| index + 1 == column)
                    .map(|(_, name)| format!(" (`{name}`)"))
                    .unwrap_or_default(),
            };
        }
        Some(ScanProblem::RecordTooLarge { line }) => {
            return ExtractError::RecordTooLarge {
                path: path.into(),
                line,
            };
        }
        None => {}
    }
    let source = match error.into_kind() {
        csv::ErrorKind::Io(e) => e,
        // With byte records and flexible field counts only I/O can fail; keep any other kind
        // generic so that no parser message (which could quote data) leaks through.
        _ => io::Error::other("the CSV parser failed"),
    };
    ExtractError::Read {
        path: path.into(),
        record,
        source,
    }
}

/// The header index of each requested column, or an error naming what is missing.
fn match_columns(
    path: &Path,
    header: &[String],
    requested: &[String],
    delimiter: u8,
) -> Result<Vec<usize>, ExtractError> {
    let mut indices = Vec::with_capacity(requested.len());
    let mut missing = Vec::new();
    let mut near = Vec::new();
    for name in requested {
        let wanted = name.trim();
        let mut found = header
            .iter()
            .enumerate()
            .filter(|(_, h)| h.trim() == wanted)
            .map(|(i, _)| i);
        match (found.next(), found.count()) {
            (Some(index), 0) => indices.push(index),
            (Some(_), more) => {
                return Err(ExtractError::DuplicateColumn {
                    path: PathBuf::from(path),
                    column: name.clone(),
                    count: more + 1,
                });
            }
            (None, _) => {
                if header.iter().any(|h| h.trim().eq_ignore_ascii_case(wanted)) {
                    near.push(format!("`{name}`"));
                }
                missing.push(name.clone());
            }
        }
    }
    if missing.is_empty() {
        return Ok(indices);
    }
    let mut hint = String::new();
    if let [only] = header {
        let other = [b',', b';', b'\t', b'|']
            .into_iter()
            .find(|&d| d != delimiter && only.contains(char::from(d)));
        if let Some(d) = other {
            let shown = if d == b'\t' {
                "\\t".to_owned()
            } else {
                char::from(d).to_string()
            };
            let declared = if delimiter == b'\t' {
                "\\t".to_owned()
            } else {
                char::from(delimiter).to_string()
            };
            hint = format!(
                ", and that one column looks delimited by `{shown}` rather than the declared `{declared}`"
            );
        }
    }
    if !near.is_empty() {
        let _ = write!(
            hint,
            "; {} match{} a header column if case is ignored",
            near.join(", "),
            if near.len() == 1 { "es" } else { "" }
        );
    }
    Err(ExtractError::MissingColumns {
        path: path.into(),
        missing,
        header_len: header.len(),
        hint,
    })
}
