use std::path::PathBuf;

use linklab_store::StoreError;
use linklab_tokens::KeyError;

/// Errors of the link stage. They name the extract, file, column or line concerned and never
/// quote a token, an identifier or a record value.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The link settings are inconsistent (no match keys, a spine that is not an extract, …).
    #[error("invalid link configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing through the storage layer failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The project key file could not be used.
    #[error("project key: {source}")]
    ProjectKey {
        /// What the key reader reported (it names the file and the rule, never the key).
        #[source]
        source: KeyError,
    },
    /// An extract has no pseudonymised part files.
    #[error("extract `{extract}` has no pseudonymised Parquet part files in {}; run `linklab pseudonymise` for it first", dir.display())]
    NoInput {
        /// The extract.
        extract: String,
        /// The folder searched.
        dir: PathBuf,
    },
    /// The probabilistic method compares a field the extract has no comparison tokens for.
    #[error(
        "extract `{extract}` has no column `{column}`, which `[link] method = \"probabilistic\"` compares; pseudonymise it again with the field in `compare`"
    )]
    MissingComparisonColumn {
        /// The extract.
        extract: String,
        /// The missing column.
        column: String,
    },
    /// A column of a pseudonymised extract has the wrong type.
    #[error("extract `{extract}`: column `{column}` in {} has type {found}, expected {expected}", path.display())]
    ColumnType {
        /// The extract.
        extract: String,
        /// The part file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The type found.
        found: String,
        /// The type expected.
        expected: &'static str,
    },
    /// The part files of one extract do not share one schema.
    #[error("extract `{extract}`: the part files in {} do not all have the same columns", dir.display())]
    SchemaMismatch {
        /// The extract.
        extract: String,
        /// Its folder.
        dir: PathBuf,
    },
    /// A keep column has the name of a column the link stage adds.
    #[error(
        "extract `{extract}` keeps a column named `{column}`, which linked/ reserves for its own use; rename it in the pipeline file"
    )]
    ReservedColumn {
        /// The extract.
        extract: String,
        /// The column.
        column: String,
    },
    /// A part file of a pseudonymised extract is not the one its manifest lists.
    #[error("extract `{extract}`: part file {}: {reason}", path.display())]
    Part {
        /// The extract.
        extract: String,
        /// The part file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The spine has no records, so there are no persons to link to.
    #[error(
        "the spine extract `{extract}` has no records, so no person can be linked; check that its pseudonymise run read the intended file"
    )]
    EmptySpine {
        /// The spine extract.
        extract: String,
    },
    /// A pseudonymisation manifest is missing or unusable.
    #[error("manifest {}: {reason}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two extracts were pseudonymised with different linkage keys.
    #[error(
        "extract `{first}` was pseudonymised with the key of fingerprint {first_fingerprint} but extract `{other}` with {other_fingerprint}; every extract must be pseudonymised with the same linkage key"
    )]
    KeyMismatch {
        /// The first extract.
        first: String,
        /// Its key fingerprint.
        first_fingerprint: String,
        /// The extract that differs.
        other: String,
        /// Its key fingerprint.
        other_fingerprint: String,
    },
    /// An extract has more records than a 32-bit record index holds.
    #[error("extract `{extract}` has {rows} records, more than the {max} one link run can index")]
    TooManyRecords {
        /// The extract.
        extract: String,
        /// Its record count.
        rows: u64,
        /// The most supported.
        max: u64,
    },
    /// A spill file could not be written or read.
    #[error("spill file {}: {source}", path.display())]
    Spill {
        /// The spill file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The ground-truth file could not be read.
    #[error("truth file {}: line {line}: {reason}", path.display())]
    Truth {
        /// The truth file.
        path: PathBuf,
        /// The 1-based line number (0 when the file itself is at fault).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Arrow refused to build an output batch (a bug or an unsupported column type).
    #[error("cannot build {what}: {source}")]
    Arrow {
        /// What was being built.
        what: &'static str,
        /// What arrow reported.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// The thread writing an output table stopped unexpectedly.
    #[error("the writer of {} stopped unexpectedly", dir.display())]
    WriterGone {
        /// The output folder.
        dir: PathBuf,
    },
    /// The thread reading an extract could not be started.
    #[error("cannot start a thread to read an extract: {source}")]
    ReaderThread {
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The thread writing the other extracts beside the spine could not be started.
    #[error("cannot start a thread to write the extracts: {source}")]
    WriterThread {
        /// What the operating system reported.
        #[source]
        source: std::io::Error,
    },
    /// The Spark job could not be started.
    #[error(
        "cannot start the spark job with {}: {source}; run scripts/spark-venv.sh, or name a Python that has pyspark with `python` in [link.spark] or LINKLAB_SPARK_PYTHON", program.display()
    )]
    SparkLaunch {
        /// The program that was started (python or spark-submit).
        program: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The Spark job failed.
    #[error("the spark job failed in its `{phase}` stage ({status}); the end of its log {}:\n{tail}", log.display())]
    SparkJob {
        /// `anchors` or `decide`.
        phase: &'static str,
        /// How the process ended.
        status: String,
        /// The job's log file.
        log: PathBuf,
        /// The last lines of the log (lines that may hold a token are withheld).
        tail: String,
    },
    /// The Spark job's output is not what the plan promises.
    #[error("spark output {}: {reason}", path.display())]
    SparkOutput {
        /// The output folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
