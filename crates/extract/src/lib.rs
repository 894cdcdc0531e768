//! Streaming CSV and Parquet extract readers with column mapping and reject accounting.
//!
//! An [`ExtractReader`] opens a department extract, checks that every column the caller asks for
//! is in its header, and then yields [`Batch`]es of at most `batch_rows` records. Each batch holds
//! only the requested columns, as text ([`TextColumn`]: one string buffer and the end offset of
//! each value), the number of each record, and the records that were rejected while the batch was
//! read. Memory is bounded by the batch size whatever the size of the file.
//!
//! # Numbering
//! - The *record number* of a row is its 1-based number among the data records of the file: the
//!   header is not counted, so the first record after the header is record 1. Rejected records are
//!   counted, so record numbers are stable whatever is rejected.
//! - For CSV, the *line number* is the 1-based physical line on which the record starts (the
//!   header is normally line 1). A quoted field may span lines, so line numbers can jump.
//!   Line numbers are those the `csv` crate reports: it does not count skipped blank lines, and
//!   after CRLF line ends its count runs one short, so treat them as a guide and the record number
//!   as exact. Parquet input has no line numbers.
//!
//! # Rejects
//! A CSV record that is structurally broken is not yielded: it is counted as a [`Reject`] with its
//! record number, line number and a [`RejectReason`], never its content, and reading goes on.
//! A record is broken when its field count differs from the header's (`wrong_field_count`) or when
//! any of its fields, requested or not, is not valid UTF-8 in a UTF-8 extract (`invalid_utf8`).
//! Windows-1252 maps every byte to a character, so a Windows-1252 extract has no encoding rejects.
//!
//! # Limits and open quotes
//! The bytes the CSV parser reads pass through [`scan::Tracked`], which runs the parser's state
//! machine over them. A field over [`MAX_FIELD_BYTES`] (1 MiB) or a record over
//! [`MAX_RECORD_BYTES`] (16 MiB) stops the read with an error naming line and column, so a
//! runaway quote or a 2 GB field is never allocated whole. A quote still open at the end of the
//! file is an error naming the line it opened on ([`ExtractError::UnclosedQuote`]): the parser
//! would read the rest of the file as one field and its records would silently vanish. Once the
//! file is read, [`ExtractReader::summary`] gives its physical line count. A Parquet file's row
//! counts are checked: the footer against its row groups and column chunks when it is opened,
//! and the rows read against the rows declared at the end ([`ExtractError::RowCount`]).
//!
//! # Values
//! CSV values are taken as they are (no trimming). Header names are matched after trimming
//! whitespace. A UTF-8 byte-order mark at the start of the file is skipped. Parquet values are
//! rendered as text: strings as they are, dates as `YYYY-MM-DD`, integers and floats in Rust's
//! shortest round-trip form, booleans as `true`/`false`. A Parquet null is read as an empty
//! string, so a reader does not tell null and empty apart.
//!
//! # Privacy
//! Errors name the file, the line or record, the column (a configured name) and the reason. They
//! never quote a value, and they never quote the header either: a file without a header row would
//! otherwise put its first record into an error message.
#![forbid(unsafe_code)]

mod batch;
mod csv_source;
mod error;
mod parquet_source;
pub mod scan;

use std::fmt;
use std::path::{Path, PathBuf};

pub use batch::{Batch, Reject, RejectReason, TextColumn};
pub use error::ExtractError;
pub use scan::{MAX_FIELD_BYTES, MAX_RECORD_BYTES};

pub use csv_source::CsvRange;
use csv_source::CsvSource;
use parquet_source::ParquetSource;

/// Sees the bytes of a CSV extract as the reader reads them from the file: every byte once, in
/// order, the header included ([`ExtractReader::open_tapped`]).
pub type Tap = Box<dyn FnMut(&[u8]) + Send>;

/// The default number of records per batch.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// The character encoding of a CSV extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// UTF-8 (a leading byte-order mark is accepted).
    #[default]
    Utf8,
    /// Windows-1252 (the usual "ANSI" code page of Western European Windows systems).
    Windows1252,
}

impl Encoding {
    /// The label used in pipeline files and manifests: `"utf-8"` or `"windows-1252"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Windows1252 => "windows-1252",
        }
    }

    /// The encoding with this label (case-insensitive; `utf8`, `cp1252` and `latin1`-style
    /// aliases are not accepted, to keep pipeline files unambiguous).
    pub fn parse(label: &str) -> Option<Self> {
        [Encoding::Utf8, Encoding::Windows1252]
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(label))
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format of an extract file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputFormat {
    /// Delimited text with a header row (RFC 4180 quoting).
    Csv {
        /// The field delimiter, a single byte (normally `b','`).
        delimiter: u8,
        /// The character encoding.
        encoding: Encoding,
    },
    /// An Apache Parquet file.
    Parquet,
}

impl InputFormat {
    /// Comma-delimited UTF-8 CSV.
    pub const CSV: InputFormat = InputFormat::Csv {
        delimiter: b',',
        encoding: Encoding::Utf8,
    };

    /// The format suggested by a file's extension: `.parquet` is Parquet, `.csv` (and `.txt`,
    /// `.tsv`) comma-delimited UTF-8 CSV (tab-delimited for `.tsv`); `None` otherwise.
    pub fn from_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "parquet" => Some(InputFormat::Parquet),
            "csv" | "txt" => Some(InputFormat::CSV),
            "tsv" => Some(InputFormat::Csv {
                delimiter: b'\t',
                encoding: Encoding::Utf8,
            }),
            _ => None,
        }
    }

    /// `"csv"` or `"parquet"`.
    pub const fn name(self) -> &'static str {
        match self {
            InputFormat::Csv { .. } => "csv",
            InputFormat::Parquet => "parquet",
        }
    }
}

/// What is known about a CSV extract once it has been read to the end: a handle that stays
/// readable after the reader was consumed. Nothing is known about a Parquet extract.
#[derive(Debug, Clone, Default)]
pub struct ReadSummary(std::sync::Arc<std::sync::OnceLock<Facts>>);

/// See [`ReadSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facts {
    lines: u64,
    utf8_in_windows_1252: bool,
}

impl ReadSummary {
    /// The file's physical lines (`\n` bytes, plus one for a last line without a line end),
    /// once the whole file was read.
    pub fn lines(&self) -> Option<u64> {
        self.0.get().map(|f| f.lines)
    }

    /// Whether an extract declared Windows-1252 has records that are not ASCII and every one of
    /// them is valid UTF-8: the file is then almost certainly UTF-8, and its accented names were
    /// mis-decoded (`Ã©` for `é`). Known once the whole file was read.
    pub fn utf8_in_windows_1252(&self) -> bool {
        self.0.get().is_some_and(|f| f.utf8_in_windows_1252)
    }

    fn set(&self, lines: u64, utf8_in_windows_1252: bool) {
        let _ = self.0.set(Facts {
            lines,
            utf8_in_windows_1252,
        });
    }
}

/// Refuses a delimiter the CSV parser cannot use.
fn check_delimiter(delimiter: u8) -> Result<(), ExtractError> {
    if matches!(delimiter, b'"' | b'\n' | b'\r') || !delimiter.is_ascii() {
        return Err(ExtractError::Setting {
            reason: format!(
                "the delimiter must be a single ASCII character other than a quote or a line break, not byte 0x{delimiter:02x}"
            ),
        });
    }
    Ok(())
}

enum Source {
    Csv(CsvSource),
    Parquet(ParquetSource),
}

/// A streaming reader of one extract file that yields batches of the requested columns.
///
/// It is an [`Iterator`] of `Result<Batch, ExtractError>`; after an error it yields nothing more.
pub struct ExtractReader {
    path: PathBuf,
    columns: Vec<String>,
    source: Source,
    batch_rows: usize,
    finished: bool,
}

impl fmt::Debug for ExtractReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtractReader")
            .field("path", &self.path)
            .field("columns", &self.columns)
            .field("batch_rows", &self.batch_rows)
            .finish_non_exhaustive()
    }
}

impl ExtractReader {
    /// Opens `path`, reads its header (or Parquet schema) and checks that every name in `columns`
    /// is there. Batches then hold those columns, in the order given (a name may be repeated).
    pub fn open(
        path: &Path,
        format: InputFormat,
        columns: &[String],
        batch_rows: usize,
    ) -> Result<Self, ExtractError> {
        Self::open_tapped(path, format, columns, batch_rows, None)
    }

    /// [`Self::open`], showing a CSV file's bytes to `tap` as they are read (to hash them
    /// without a second read). Once the reader has yielded its last batch, `tap` has seen every
    /// byte of the file; a Parquet file is never shown to it.
    pub fn open_tapped(
        path: &Path,
        format: InputFormat,
        columns: &[String],
        batch_rows: usize,
        tap: Option<Tap>,
    ) -> Result<Self, ExtractError> {
        if batch_rows == 0 {
            return Err(ExtractError::Setting {
                reason: "batch_rows must be at least 1".into(),
            });
        }
        let source = match format {
            InputFormat::Csv { delimiter, encoding } => {
                check_delimiter(delimiter)?;
                Source::Csv(CsvSource::open(path, delimiter, encoding, columns, tap)?)
            }
            InputFormat::Parquet => Source::Parquet(ParquetSource::open(path, columns, batch_rows)?),
        };
        Ok(Self {
            path: path.to_path_buf(),
            columns: columns.to_vec(),
            source,
            batch_rows,
            finished: false,
        })
    }

    /// Opens a CSV file like [`Self::open`] (its header is read and checked), but yields only the
    /// records of `range`, a byte range that starts and ends on record boundaries. Record and line
    /// numbers, rejects and errors are those a reader of the whole file gives for these records.
    /// [`Self::summary`] stays unknown.
    pub fn open_csv_range(
        path: &Path,
        (delimiter, encoding): (u8, Encoding),
        columns: &[String],
        range: &CsvRange,
        batch_rows: usize,
    ) -> Result<Self, ExtractError> {
        if batch_rows == 0 {
            return Err(ExtractError::Setting {
                reason: "batch_rows must be at least 1".into(),
            });
        }
        check_delimiter(delimiter)?;
        let source =
            CsvSource::open(path, delimiter, encoding, columns, None)?.into_range(path, delimiter, range)?;
        Ok(Self {
            path: path.to_path_buf(),
            columns: columns.to_vec(),
            source: Source::Csv(source),
            batch_rows,
            finished: false,
        })
    }

    /// The extract file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The requested columns, in batch order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// For each requested column, in batch order, the 0-based index of the header (or Parquet
    /// schema) column it resolved to. Two requested names that resolve to the same index (say
    /// `Surname` and ` Surname`, as CSV header names are matched after trimming) read the same
    /// values.
    pub fn source_columns(&self) -> &[usize] {
        match &self.source {
            Source::Csv(s) => s.source_columns(),
            Source::Parquet(s) => s.source_columns(),
        }
    }

    /// A handle on what is known once a CSV extract has been read to the end (its physical
    /// line count, whether a Windows-1252 extract looks like UTF-8); never set for Parquet.
    pub fn summary(&self) -> ReadSummary {
        match &self.source {
            Source::Csv(s) => s.summary(),
            Source::Parquet(_) => ReadSummary::default(),
        }
    }

    /// The number of columns in the file's header (or Parquet schema).
    pub fn header_len(&self) -> usize {
        match &self.source {
            Source::Csv(s) => s.header_len(),
            Source::Parquet(s) => s.header_len(),
        }
    }

    /// The next batch, or `None` at the end of the file. A batch holds at most `batch_rows`
    /// records, counting both the rows it yields and the rejects it reports; a batch may hold
    /// only rejects. No batch is empty of both.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, ExtractError> {
        if self.finished {
            return Ok(None);
        }
        let result = match &mut self.source {
            Source::Csv(s) => s.next_batch(&self.path, self.batch_rows),
            Source::Parquet(s) => s.next_batch(&self.path),
        };
        match result {
            Ok(Some(batch)) => Ok(Some(batch)),
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Err(e) => {
                self.finished = true;
                Err(e)
            }
        }
    }
}

impl Iterator for ExtractReader {
    type Item = Result<Batch, ExtractError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}
