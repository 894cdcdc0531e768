use std::io;
use std::path::PathBuf;

/// Errors that stop the reading of an extract. They name the file, and where it helps the line
/// and the column (a configured name); they never quote a value or the header.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file could not be opened.
    #[error("cannot open extract {}: {source}", path.display())]
    Open {
        /// The extract file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// Reading failed part way through.
    #[error("cannot read extract {} after record {record}: {source}", path.display())]
    Read {
        /// The extract file.
        path: PathBuf,
        /// The last record read successfully (0 if none).
        record: u64,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The file has no header row (it is empty, or holds only blank lines).
    #[error("extract {} is empty: it has no header row", path.display())]
    Empty {
        /// The extract file.
        path: PathBuf,
    },
    /// The header row is not valid in the declared encoding.
    #[error(
        "the header row of extract {} is not valid {encoding}: check the encoding declared for the extract",
        path.display()
    )]
    HeaderEncoding {
        /// The extract file.
        path: PathBuf,
        /// The declared encoding.
        encoding: &'static str,
    },
    /// Requested columns are not in the header.
    #[error(
        "extract {} has no column named {} (its header has {header_len} column{}){hint}; check the column names in the pipeline file and the delimiter and encoding declared for the extract",
        path.display(),
        quoted_list(missing),
        if *header_len == 1 { "" } else { "s" }
    )]
    MissingColumns {
        /// The extract file.
        path: PathBuf,
        /// The requested names that are not in the header.
        missing: Vec<String>,
        /// The number of columns in the header.
        header_len: usize,
        /// A hint about the likely cause (empty if none), such as a delimiter the header seems to
        /// use. It never quotes the header.
        hint: String,
    },
    /// A requested column appears more than once in the header.
    #[error(
        "extract {} has {count} columns named `{column}` in its header, so the column is ambiguous; rename them in the extract",
        path.display()
    )]
    DuplicateColumn {
        /// The extract file.
        path: PathBuf,
        /// The requested name.
        column: String,
        /// How many header columns have that name.
        count: usize,
    },
    /// A requested Parquet column has a type that cannot be read as text.
    #[error(
        "column `{column}` of Parquet extract {} has type {data_type}, which cannot be read: identifier and keep columns must be strings, dates, integers, floats or booleans",
        path.display()
    )]
    UnsupportedType {
        /// The extract file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The column's Arrow type.
        data_type: String,
    },
    /// The Parquet file could not be read.
    #[error("cannot read Parquet extract {}: {source}", path.display())]
    Parquet {
        /// The extract file.
        path: PathBuf,
        /// What the parquet crate reported.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// The row counts of a Parquet file disagree: a row group's declared count with its column
    /// chunks, the file's with its row groups', or the rows read with the rows declared.
    #[error(
        "Parquet extract {}: {} declares {declared} rows but {found} were found; the file's metadata is inconsistent, so rows would be lost or invented: rewrite the file",
        path.display(),
        row_group.map_or_else(|| "the file".to_owned(), |g| format!("row group {g}"))
    )]
    RowCount {
        /// The extract file.
        path: PathBuf,
        /// The 0-based row group at fault, or `None` for the whole file.
        row_group: Option<usize>,
        /// The rows declared.
        declared: u64,
        /// The rows (or column values) found.
        found: u64,
    },
    /// A Parquet column could not be rendered as text.
    #[error("cannot read column `{column}` of Parquet extract {} as text", path.display())]
    Convert {
        /// The extract file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A quote opened in the file is never closed: the parser would read the rest of the file
    /// as one field and drop the records in it.
    #[error(
        "extract {}: the quote that opens a field on line {line} is never closed, so every line after it would be read as part of that one field; close or remove the quote in the extract",
        path.display()
    )]
    UnclosedQuote {
        /// The extract file.
        path: PathBuf,
        /// The physical line on which the quoted field starts.
        line: u64,
    },
    /// A field is longer than [`crate::MAX_FIELD_BYTES`].
    #[error(
        "extract {}, line {line}, column {column}{name}: a field is longer than {} bytes (1 MiB), the most one CSV field may hold; check the quoting and the delimiter of the extract",
        path.display(),
        crate::MAX_FIELD_BYTES
    )]
    FieldTooLarge {
        /// The extract file.
        path: PathBuf,
        /// The physical line on which the record starts.
        line: u64,
        /// The field's 1-based position in the record.
        column: usize,
        /// ` (`name`)` if the column is one the pipeline names, else empty (a header name is
        /// never shown).
        name: String,
    },
    /// A record is longer than [`crate::MAX_RECORD_BYTES`].
    #[error(
        "extract {}, line {line}: a record is longer than {} bytes (16 MiB), the most one CSV record may hold; check the quoting and the delimiter of the extract",
        path.display(),
        crate::MAX_RECORD_BYTES
    )]
    RecordTooLarge {
        /// The extract file.
        path: PathBuf,
        /// The physical line on which the record starts.
        line: u64,
    },
    /// A reader setting is not valid.
    #[error("invalid extract reader setting: {reason}")]
    Setting {
        /// What is wrong.
        reason: String,
    },
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
