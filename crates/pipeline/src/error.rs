//! The error type of this crate.

use std::path::PathBuf;

/// Why a pipeline file could not be loaded.
///
/// Every variant names the pipeline file. Messages quote configuration (key paths, extract names,
/// column names), never data: a pipeline file holds no identifier values.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read.
    #[error("cannot read pipeline file {}: {source}", path.display())]
    Read {
        /// The pipeline file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown, missing or of the wrong type.
    ///
    /// The message gives the line and column and the rule broken, never a snippet of the file
    /// nor a value found in it (a key file or a CSV passed by mistake would be printed).
    #[error(
        "invalid pipeline file {}: {}{detail}",
        path.display(),
        match (line, column) {
            (Some(line), Some(column)) => format!("line {line}, column {column}: "),
            _ => String::new(),
        }
    )]
    Syntax {
        /// The pipeline file.
        path: PathBuf,
        /// The 1-based line of the error, when toml knows it.
        line: Option<usize>,
        /// The 1-based column of the error, when toml knows it.
        column: Option<usize>,
        /// The rule broken (toml's message without its snippet and without any value found).
        detail: String,
    },
    /// The file parses but a value breaks a rule: a bad name, a reference to something that is
    /// not declared, a column that no extract keeps, a number out of range.
    #[error("invalid pipeline file {}: `{key}`: {expected}", path.display())]
    Invalid {
        /// The pipeline file.
        path: PathBuf,
        /// The key path of the offending value, such as `extract "benefits".identifiers.dob.kind`
        /// or `match_key "nino".fields[0]`. Entries of `[[...]]` arrays are named by their
        /// `name`, or by their 0-based index (`extract[2].name`) when the name itself is at fault.
        key: String,
        /// What was expected instead.
        expected: String,
    },
}
