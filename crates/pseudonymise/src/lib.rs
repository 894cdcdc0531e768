//! Stage 1: standardise identifiers and replace them with keyed tokens.
//!
//! [`run`] reads one extract (CSV or Parquet) in batches, standardises each declared identifier by
//! its kind (token spec v1), computes the HMAC token of every match key whose fields the extract
//! declares, and writes Parquet part files holding only the `tok_<key>` columns
//! (`FixedSizeBinary(32)`, null where a component is missing) and the `keep` columns, typed.
//! Then it writes `<extract>.manifest.json`, which accounts for every record.
//!
//! With a non-empty `compare` list (a probabilistic pipeline) it also writes, after the `tok_`
//! columns, the comparison tokens of token spec v2 (`docs/token-spec-v2.md`): for each compared
//! field and each variant of its kind, a column `cmp_<field>_<variant>`, `FixedSizeBinary(8)` or
//! (for `edit1`) a list of them, null where the field is missing. The manifest then has a
//! `comparison` section (spec version and fields). With an empty list the output and the manifest
//! are exactly what they were before v2.
//!
//! # Guarantees
//! - Weak match keys are refused before anything is read.
//! - No identifier leaves the stage through `keep`: a keep column whose name (trimmed, as the
//!   reader matches headers) or whose resolved file column is a declared identifier's is refused,
//!   except a `sex` identifier, which is written only as its standardised value (`M`, `F` or
//!   null), never as the text in the file.
//! - The output folder `work_dir/pseudonymised/<extract>/` is built under a staging name and
//!   swapped in only when the run succeeds; a failed run leaves the previous output as it was.
//!   The old manifest is removed just before the swap and the new one is written last, so a
//!   folder with a manifest is always complete.
//! - Records read = written + rejected, checked before anything is committed. If the share of
//!   rejected records is above `max_reject_fraction`, the stage fails and writes nothing.
//! - No identifier value (nor any raw cell) appears in an error, a log line, the manifest or a
//!   panic message raised by this crate. If a worker panics, the panic's message is dropped and
//!   the error says only which records were being processed ([`row_context`]). The default panic
//!   hook of the process still prints panic messages: the binary should install a hook that does
//!   not print payloads.
//!
//! # Partitioned runs
//! With `partition = Some((i, n))`, [`run`] handles only slice `i` of `n` of the extract, so
//! that `n` processes (on any hosts that share `work_dir`) can split one extract. The slices are
//! disjoint, deterministic and together cover every record; the union of the `n` outputs, read
//! in part-name order, equals a single run's output row for row.
//! - CSV: partition `i` owns the records whose first byte lies in
//!   `[d + (size - d)(i - 1)/n, d + (size - d)i/n)`, where `d` is the first byte after the
//!   header and a record's first byte is where the parser starts reading it (just after the line
//!   end of the record before). To find true record boundaries the file is scanned from its
//!   start with the parser's own state machine (RFC 4180: a line break ends a record only
//!   outside quotes; a quote opens a quoted field only at the start of a field; `""` inside
//!   quotes is a literal quote; `\r`, `\n` and `\r\n` end records; blank lines are skipped),
//!   so a quoted field holding line breaks, delimiters or quotes is never split, whatever the
//!   byte offsets. The scan counts records and lines on the way, so record and line numbers in
//!   rejects and errors are global, the same as a single run's. The scan runs from the start of
//!   the file to the end of the slice: it is a byte loop with no parsing, several times faster
//!   than reading the records.
//! - Parquet: partition `i` owns row groups `[g(i - 1)/n, gi/n)` of the `g` row groups, with
//!   rows numbered globally. (The reader still decodes the row groups before the slice and
//!   drops their rows.)
//! - The keep columns' types are inferred by every partition from the same rows a single run
//!   uses (the first batch of the file that holds rows), so all partitions agree.
//! - Partition `i` writes `pseudonymised/<extract>/part-pIIIIofNNNN-KKKKK.parquet`, names that
//!   sort in global order and never collide with another partition's, built in a staging
//!   folder of its own. On success it removes the extract's merged manifest, its own previous
//!   parts and partial manifest (and the parts of an earlier single run), moves its new parts
//!   in, and writes `pseudonymised/<extract>.manifest.part-IIII-of-NNNN.json` last ([`PartialManifest`]:
//!   the manifest's fields, with the whole input's SHA-256, plus the slice it read).
//!   `max_reject_fraction` is not applied to one partition, only to the merged total.
//! - [`merge_partitions`] is the final step: it checks that all `n` partial manifests are
//!   present, agree on `n`, the input (SHA-256, format), the key fingerprint, the spec and tool
//!   versions and the columns, that their slices tile the input exactly, and that every part
//!   file they list is there unchanged and no other is; then it applies `max_reject_fraction`
//!   to the totals and writes `<extract>.manifest.json` (counts summed, rejects merged, parts in
//!   global order, `partitions = n`). A missing, duplicated or overlapping partition is an
//!   error naming the extract and the partitions. [`needs_merge`] tells whether it must run.
//!   A later single run removes the partial manifests.
//!
//! # Keep column types
//! A keep column is `int` (Int64), `float` (Float64), `date` (Date32) or `string`. Unless `types`
//! declares it, the type is inferred from the first batch that holds rows (up to `batch_rows`
//! rows): `date` if every non-blank value is a date written `YYYY-MM-DD`, `DD/MM/YYYY` or
//! `YYYYMMDD`, else `int` if every one is an integer without leading zeros, else `float`, else
//! `string`. A later value that does not fit stops the stage with an error naming the column
//! and record and suggesting `types = { <column> = "string" }`. Blank values are null (for
//! `string`, only empty values are; others are kept as they are).
//!
//! # Speed
//! A reader thread parses batches, the rayon pool standardises and hashes the rows of each batch
//! in chunks, and a writer thread encodes the Parquet parts, so the three overlap. The input's
//! SHA-256 is computed on another thread: for a CSV read whole, from the very bytes the reader
//! reads (a tap on the reader), so the file is read once and the manifest's digest is that of
//! the bytes pseudonymised; other inputs are read again for it. Each part's SHA-256 is taken
//! from the bytes as they are written. Both are noted with the file's identity
//! ([`linklab_store::note_sha256`]) so that the command's runner need not read them again. Standard forms are written into buffers reused from row
//! to row, so no row allocates.
#![forbid(unsafe_code)]

// The configuration the caller builds, and what it resolves to before anything is read.
mod config;
mod plan;
// Reading: batches of rows, and the partitions' byte ranges and row groups.
mod partition;
mod rows;
// Standardising and hashing identifiers into tokens.
mod hash;
// The keep columns' types, the counts and rejects, and the reject limit.
mod tally;
mod types;
// The reader, hashing and writer threads.
mod stream;
// Manifests: their types, building one from a run, and merging partitions'.
mod manifest;
mod merge;
mod record;
// The two run modes: a whole extract, or one partition of it.
mod run;
// Errors, which name files, records and rules, never values.
mod error;

#[cfg(test)]
mod tests;

pub use config::{Identifier, PseudonymiseConfig};
pub use error::PseudonymiseError;
pub use linklab_extract::{DEFAULT_BATCH_ROWS, Encoding, InputFormat};
pub use manifest::{
    ColumnSummary, ComparisonSummary, InputSummary, MatchKeySummary, PartSummary, PartialManifest,
    PartitionSummary, PseudonymiseManifest, RejectSummary, RowCounts,
};
pub use merge::{merge_partitions, needs_merge, partial_manifest_path, partial_manifest_paths};
pub use run::run;
pub use stream::row_context;
pub use types::ColumnType;

/// The largest number of partitions (part and manifest names hold four digits of it).
pub const MAX_PARTITIONS: u32 = 9999;

/// How many rejected record numbers per reason the manifest lists.
pub const REJECT_EXAMPLES: usize = 20;

/// The default `max_reject_fraction`: 1% of the records.
pub const DEFAULT_MAX_REJECT_FRACTION: f64 = 0.01;
