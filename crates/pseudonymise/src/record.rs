//! The manifest of a run: the input's and parts' summaries, checked against what was streamed.

use std::fs;
use std::path::Path;

use linklab_store::StoreError;
use linklab_tokens::{COMPARE_SPEC_VERSION, SPEC_VERSION};

use crate::hash::missing_label;
use crate::plan::{ComparePlan, Plan};
use crate::stream::Streamed;
use crate::{
    ColumnSummary, ComparisonSummary, InputFormat, InputSummary, PseudonymiseConfig, PseudonymiseError,
    PseudonymiseManifest, RowCounts,
};

/// The type label of token columns in manifests.
pub(crate) const TOKEN_TYPE: &str = "fixed_size_binary(32)";
/// The type labels of comparison-token columns in manifests: scalar and set variants.
pub(crate) const COMPARE_TYPE: &str = "fixed_size_binary(8)";
pub(crate) const COMPARE_SET_TYPE: &str = "list<fixed_size_binary(8)>";

pub(crate) fn input_summary(
    cfg: &PseudonymiseConfig,
    sha256: String,
    bytes: u64,
    lines: Option<u64>,
) -> InputSummary {
    let (delimiter, encoding) = match cfg.format {
        InputFormat::Csv { delimiter, encoding } => {
            let shown = if delimiter == b'\t' {
                "\\t".to_owned()
            } else {
                char::from(delimiter).to_string()
            };
            (Some(shown), Some(encoding.as_str().to_owned()))
        }
        InputFormat::Parquet => (None, None),
    };
    InputSummary {
        path: cfg.input.display().to_string(),
        format: cfg.format.name().to_owned(),
        delimiter,
        encoding,
        sha256,
        bytes,
        lines,
    }
}

/// Removes a file; a file that is not there is fine.
pub(crate) fn remove_if_present(path: &Path, action: &'static str) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Checks what was streamed and builds the manifest (without writing it).
pub(crate) fn build_manifest(
    cfg: &PseudonymiseConfig,
    plan: &Plan,
    streamed: Streamed,
    fingerprint: &str,
    (bytes, lines): (u64, Option<u64>),
) -> Result<PseudonymiseManifest, PseudonymiseError> {
    let Streamed {
        tally,
        types,
        parts,
        part_rows,
        sha256,
    } = streamed;
    let rejected = tally.rejected();
    if tally.read != tally.written + rejected || part_rows != tally.written {
        return Err(PseudonymiseError::Internal {
            extract: cfg.extract.clone(),
            reason: format!(
                "records do not add up: {} read, {} written ({} in the part files), {rejected} rejected",
                tally.read, tally.written, part_rows
            ),
        });
    }
    // The parts' SHA-256 were taken as they were written.
    let part_summaries = parts;
    if part_summaries.iter().map(|p| p.rows).sum::<u64>() != tally.written {
        return Err(PseudonymiseError::Internal {
            extract: cfg.extract.clone(),
            reason: "the part files do not hold the records written".into(),
        });
    }
    let mut match_keys = plan.key_summaries.clone();
    for (summary, nulls) in match_keys
        .iter_mut()
        .filter(|k| !k.skipped)
        .zip(&tally.null_tokens)
    {
        summary.null_tokens = *nulls;
    }
    let mut columns: Vec<ColumnSummary> = plan
        .keys
        .iter()
        .map(|k| ColumnSummary {
            name: k.key.column_name(),
            ty: TOKEN_TYPE.into(),
            origin: "token".into(),
        })
        .collect();
    for (name, variant) in plan.compare.iter().flat_map(ComparePlan::columns) {
        columns.push(ColumnSummary {
            name,
            ty: if variant.is_set() {
                COMPARE_SET_TYPE
            } else {
                COMPARE_TYPE
            }
            .into(),
            origin: "comparison".into(),
        });
    }
    for (keep, (ty, inferred)) in plan.keep.iter().zip(&types.types) {
        columns.push(ColumnSummary {
            name: keep.name.clone(),
            ty: ty.arrow_name().into(),
            origin: if keep.standardised_sex {
                "standardised"
            } else if *inferred {
                "inferred"
            } else {
                "declared"
            }
            .into(),
        });
    }
    let missing = cfg
        .identifiers
        .iter()
        .zip(&tally.missing)
        .map(|(ident, counts)| {
            let by_reason = counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(slot, n)| (missing_label(slot).to_owned(), *n))
                .collect();
            (ident.name.clone(), by_reason)
        })
        .collect();
    Ok(PseudonymiseManifest {
        extract: cfg.extract.clone(),
        input: input_summary(cfg, sha256, bytes, lines),
        rows: RowCounts {
            read: tally.read,
            written: tally.written,
            rejected,
        },
        rejects: tally
            .rejects
            .iter()
            .map(|(reason, r)| (reason.as_str().to_owned(), r.clone()))
            .collect(),
        missing,
        key_fingerprint: fingerprint.to_owned(),
        token_spec_version: SPEC_VERSION.into(),
        tool_version: linklab_store::TOOL_VERSION.into(),
        reference_date: cfg.today.format("%Y-%m-%d").to_string(),
        match_keys,
        comparison: (!plan.compare.is_empty()).then(|| ComparisonSummary {
            token_spec_version: COMPARE_SPEC_VERSION.into(),
            fields: plan.compare.iter().map(|c| c.field.clone()).collect(),
        }),
        columns,
        parts: part_summaries,
        partitions: None,
    })
}
