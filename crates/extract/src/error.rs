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
    /// A Parquet column could not be rendered as text.
    #[error("cannot read column `{column}` of Parquet extract {} as text", path.display())]
    Convert {
        /// The extract file.
        path: PathBuf,
        /// The column.
        column: String,
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
