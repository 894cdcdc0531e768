//! The release manifest (`release-manifest.json`): the only description of a release folder
//! that `check-release` trusts.

use serde::{Deserialize, Serialize};

use crate::DisclosureRules;

/// The manifest format name.
pub const MANIFEST_FORMAT: &str = "linklab-release-manifest-v1";

/// What a released file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A protected table written by the release stage.
    Table,
    /// A file prepared by the evaluate stage, published verbatim.
    Extra,
}

/// One released file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// The file name inside the release folder.
    pub name: String,
    /// Table or extra file.
    pub kind: FileKind,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// Tables: the dimension columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Vec<String>>,
    /// Tables: the magnitude column, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    /// Tables: tables with the same group were built from the same source and were protected
    /// jointly; cells with the same (dimension, value) pairs are the same cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joint_group: Option<String>,
    /// Magnitude tables: whether every contribution is ≥ 0 (sums are then bounded below by 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_nonnegative: Option<bool>,
    /// Magnitude tables: whether every contribution is a whole number (sums are then
    /// published exactly; otherwise they are rounded to whole units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum_integer: Option<bool>,
}

/// The programme a release evaluates, as `[[programme]]` describes it (the dashboard shows
/// it). Every field but `extract` is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgrammeMeta {
    /// The treatment extract.
    pub extract: String,
    /// The programme's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Who runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// Its type ("education", "mentoring", ...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When it started, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// When it ended, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// One line about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An opaque fingerprint of the cohort's source data: releases with the same value share
    /// their cohort, so their figures could be differenced (audit them jointly with
    /// `check-release --with`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<String>,
}

/// `release-manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The pipeline name.
    pub pipeline: String,
    /// The linklab version that wrote the release.
    pub tool_version: String,
    /// When the release was written (UTC, RFC 3339).
    pub created_at: String,
    /// The rules applied.
    pub rules: DisclosureRules,
    /// Whether published tables add up exactly, or only approximately (rounding).
    pub additivity: String,
    /// The programme the release evaluates, if the pipeline describes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programme: Option<ProgrammeMeta>,
    /// Every released file.
    pub files: Vec<ManifestFile>,
    /// The fingerprint of the project key that signed the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_with: Option<String>,
    /// HMAC-SHA256 under the project key of the manifest without this field
    /// (`linklab_store::signing_bytes`, domain `RELEASE_MANIFEST_SIGNATURE_DOMAIN`), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Manifest {
    /// Signs the manifest with the project key: records the key's fingerprint, then the HMAC of
    /// everything else.
    pub(crate) fn sign(&mut self, key: &linklab_tokens::SecretKey) {
        self.signature = None;
        self.signed_with = Some(key.fingerprint());
        let doc = serde_json::to_value(&*self).expect("the manifest serialises");
        let bytes = linklab_store::signing_bytes(&doc, "signature");
        self.signature = Some(key.sign(linklab_store::RELEASE_MANIFEST_SIGNATURE_DOMAIN, &bytes));
    }
}

/// The current UTC time as RFC 3339 (seconds).
pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
