//! Atomic writes, JSON manifests, the formula guard of published CSVs, locks, Parquet part files and the `work_dir` layout.
//!
//! Every file a stage leaves behind goes through this crate, so that a crash or a kill never
//! leaves a half-written file that looks whole: files are written under a temporary name in the
//! destination folder and renamed into place, and whole output folders are built under a staging
//! name and swapped in at the end.
#![forbid(unsafe_code)]

mod atomic;
mod csv_text;
mod drafts;
mod error;
mod known_sha;
mod layout;
mod lock;
mod parquet_io;
mod progress;
mod published;

pub use atomic::{
    StagingDir, read_json, sha256_file, sha256_written_file, signing_bytes, write_atomic, write_json_atomic,
};
pub use csv_text::{FORMULA_STARTS, csv_label, csv_quote, csv_text, guard_label, is_formula_like};
pub use error::StoreError;
pub use layout::WorkDir;
pub use lock::Lock;
pub use parquet_io::{PartSummary, PartWriter, list_parts, read_part_files, read_parts};
pub use progress::{NoProgress, Progress};
pub use published::IMPACT_COLUMNS;

/// The domain of the release manifest's signature (see `linklab_tokens::SecretKey::sign`): the
/// release stage signs, `check-release --key` verifies.
pub const RELEASE_MANIFEST_SIGNATURE_DOMAIN: &str = "linklab/release-manifest/v1";

/// The version of linklab, written into every manifest.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
