//! The checker's own reading of `release-manifest.json`: only the fields it needs, and the
//! signature check. It shares no code with the release stage's manifest module.

use std::path::Path;

use serde::Deserialize;

use crate::{CheckError, CheckOptions, CheckReport, Rules};

/// The manifest's name inside a release folder.
pub const MANIFEST_NAME: &str = "release-manifest.json";
const FORMAT: &str = "linklab-release-manifest-v1";

#[derive(Debug, Deserialize)]
pub(crate) struct ClaimedRules {
    pub threshold: u64,
    pub zeros_disclosive: bool,
    pub round_to: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Table,
    Extra,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Listed {
    pub name: String,
    pub kind: Kind,
    pub sha256: String,
    #[serde(default)]
    pub by: Option<Vec<String>>,
    #[serde(default)]
    pub sum: Option<String>,
    #[serde(default)]
    pub joint_group: Option<String>,
    #[serde(default)]
    pub sum_nonnegative: Option<bool>,
    #[serde(default)]
    pub sum_integer: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Manifest {
    pub format: String,
    pub rules: ClaimedRules,
    pub files: Vec<Listed>,
    #[serde(default)]
    pub signed_with: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
}

/// Reads the manifest; an unreadable or foreign manifest is an error (nothing can be checked).
pub(crate) fn read(dir: &Path) -> Result<(Manifest, serde_json::Value), CheckError> {
    let path = dir.join(MANIFEST_NAME);
    let meta = std::fs::symlink_metadata(&path)
        .map_err(|e| CheckError::unreadable(&path, format!("no release manifest: {}", e.kind())))?;
    if !meta.is_file() {
        return Err(CheckError::unreadable(
            &path,
            "the manifest is not a regular file",
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| CheckError::unreadable(&path, e.to_string()))?;
    // serde's messages can quote the offending value: only its place and category are given.
    let place = |e: &serde_json::Error| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "a field is missing or has the wrong type",
            _ => "not valid JSON",
        };
        format!(
            "not a release manifest: {what} at line {}, column {}",
            e.line(),
            e.column()
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CheckError::unreadable(&path, place(&e)))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| CheckError::unreadable(&path, place(&e)))?;
    if manifest.format != FORMAT {
        return Err(CheckError::unreadable(
            &path,
            format!("the format is not {FORMAT}"),
        ));
    }
    Ok((manifest, value))
}

/// The rules the checker applies: its own, made stricter (never weaker) by the manifest's
/// claims; a manifest claiming weaker rules than the checker's is a problem.
pub(crate) fn rules(manifest: &Manifest, opts: &CheckOptions, file: &str, report: &mut CheckReport) -> Rules {
    let claimed = &manifest.rules;
    if claimed.threshold < opts.threshold {
        report.push(
            file,
            "-",
            format!(
                "the manifest claims threshold {}, weaker than the checker's {}",
                claimed.threshold, opts.threshold
            ),
        );
    }
    if opts.zeros_disclosive && !claimed.zeros_disclosive {
        report.push(
            file,
            "-",
            "the manifest claims zeros are not disclosive; the checker treats them as disclosive",
        );
    }
    if let Some(r) = opts.round_to
        && r != claimed.round_to
    {
        report.push(
            file,
            "-",
            format!(
                "the manifest claims rounding to base {}, the checker was told base {r}",
                claimed.round_to
            ),
        );
    }
    Rules {
        threshold: opts.threshold.max(claimed.threshold).max(1),
        zeros_disclosive: opts.zeros_disclosive || claimed.zeros_disclosive,
        round_to: opts.round_to.unwrap_or(claimed.round_to).max(1),
    }
}

/// Verifies the manifest's signature with `--key`, or notes that it was not verified.
pub(crate) fn verify_signature(
    manifest: &Manifest,
    value: &serde_json::Value,
    key: Option<&Path>,
    file: &str,
    report: &mut CheckReport,
) -> Result<(), CheckError> {
    let Some(key) = key else {
        report.note(format!(
            "{file}: the manifest's signature is unverified (give the project key with --key to verify it)"
        ));
        return Ok(());
    };
    let key = linklab_tokens::SecretKey::from_file(key)?;
    let Some(signature) = &manifest.signature else {
        report.push(file, "-", "the manifest is not signed");
        return Ok(());
    };
    let bytes = linklab_store::signing_bytes(value, "signature");
    let expected = key.sign(linklab_store::RELEASE_MANIFEST_SIGNATURE_DOMAIN, &bytes);
    if *signature == expected {
        report.note(format!("{file}: the manifest's signature is verified"));
    } else {
        let signer = manifest.signed_with.as_deref().map_or_else(String::new, |f| {
            format!(" (the manifest names the key of fingerprint {f})")
        });
        report.push(
            file,
            "-",
            format!(
                "the manifest's signature does not match the key given with --key{signer}: the manifest was changed after the release stage wrote it, or signed with another key"
            ),
        );
    }
    Ok(())
}
