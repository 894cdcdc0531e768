//! The manifest written next to the stage's output: `pseudonymised/<extract>.manifest.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use linklab_store::PartSummary;

/// What one run of the stage read and wrote. It holds counts, names and hashes, never a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PseudonymiseManifest {
    /// The extract's name.
    pub extract: String,
    /// The input file.
    pub input: InputSummary,
    /// Records read, written and rejected (`read = written + rejected`).
    pub rows: RowCounts,
    /// Rejected records per reason (`wrong_field_count`, `invalid_utf8`).
    pub rejects: BTreeMap<String, RejectSummary>,
    /// Missing identifier values among the written records: identifier name → reason label
    /// (`empty` or an invalid reason such as `bad_nino`) → count. Every declared identifier has an
    /// entry, empty if nothing was missing.
    pub missing: BTreeMap<String, BTreeMap<String, u64>>,
    /// The fingerprint of the linkage key (token spec v1).
    pub key_fingerprint: String,
    /// The token spec version.
    pub token_spec_version: String,
    /// The linklab version.
    pub tool_version: String,
    /// The last date of birth accepted as valid (the run's "today"), `YYYY-MM-DD`.
    pub reference_date: String,
    /// Every configured match key, in order, with whether it was built or skipped.
    pub match_keys: Vec<MatchKeySummary>,
    /// The comparison tokens (token spec v2), present only when the run wrote any (a
    /// probabilistic pipeline); a cascade pipeline's manifest has no such section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ComparisonSummary>,
    /// The output columns, in order.
    pub columns: Vec<ColumnSummary>,
    /// The Parquet part files, in order.
    pub parts: Vec<PartSummary>,
    /// For a manifest merged from a partitioned run: the number of partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
}

/// The manifest one partition of a partitioned run writes,
/// `pseudonymised/<extract>.manifest.part-IIII-of-NNNN.json`: the fields of a manifest (its
/// counts and parts are the partition's own; `input` describes the whole file) and a
/// `partition` section saying which slice was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialManifest {
    /// The partition's own manifest.
    #[serde(flatten)]
    pub manifest: PseudonymiseManifest,
    /// Which slice of the input it read.
    pub partition: PartitionSummary,
}

/// Which slice of the input a partition read, as recorded in its partial manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSummary {
    /// This partition's number, 1-based.
    pub index: u32,
    /// The number of partitions.
    pub count: u32,
    /// `bytes` (CSV: byte offsets into the file) or `row_groups` (Parquet).
    pub unit: String,
    /// Where the partitioned domain starts: the first byte after the CSV header, or row group 0.
    pub domain_start: u64,
    /// Where it ends: the file's size in bytes, or the number of row groups.
    pub domain_end: u64,
    /// The first byte (or row group) of this partition's slice, moved forward to a record
    /// boundary.
    pub start: u64,
    /// One past its last byte (or row group), likewise.
    pub end: u64,
    /// The global number of the slice's first record (the number it would have if the slice
    /// held one).
    pub first_record: u64,
}

/// The input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputSummary {
    /// The file's path as configured.
    pub path: String,
    /// `csv` or `parquet`.
    pub format: String,
    /// The CSV delimiter (CSV only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// The CSV encoding (CSV only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The file's physical lines (`\n` bytes, plus one for a last line without a line end),
    /// header included: CSV read by a single run only. With `rows.read`, it shows whether
    /// records span lines (quoted line breaks) or blank lines were skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
}

/// Record counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Data records read (the header is not a record).
    pub read: u64,
    /// Records written to the output.
    pub written: u64,
    /// Records rejected.
    pub rejected: u64,
}

/// The rejects of one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectSummary {
    /// How many records were rejected for this reason.
    pub count: u64,
    /// The record numbers of the first rejects (at most [`crate::REJECT_EXAMPLES`]).
    pub first_records: Vec<u64>,
    /// The lines on which those records start (CSV only; same order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_lines: Vec<u64>,
}

/// A configured match key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchKeySummary {
    /// The key's name.
    pub name: String,
    /// Its components as written (`soundex(surname)`).
    pub components: Vec<String>,
    /// The token column (`tok_<name>`), or `None` if the key was skipped.
    pub column: Option<String>,
    /// Whether the key was skipped because the extract does not declare all its fields.
    pub skipped: bool,
    /// The fields the extract does not declare (empty unless skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undeclared_fields: Vec<String>,
    /// Written records whose token is null because a component was missing.
    pub null_tokens: u64,
}

/// The comparison tokens a run wrote (token spec v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComparisonSummary {
    /// The comparison-token spec version (`v2`).
    pub token_spec_version: String,
    /// The compared fields, in column order (the pipeline's `[link] compare`).
    pub fields: Vec<String>,
}

/// An output column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// The column's name.
    pub name: String,
    /// Its type: `fixed_size_binary(32)`, `fixed_size_binary(8)`, `list<fixed_size_binary(8)>`,
    /// `int64`, `float64`, `date32` or `string`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Where the type came from: `token`, `comparison` (token spec v2), `inferred`, `declared` or
    /// `standardised` (a kept sex).
    pub origin: String,
}
