//! The folder itself: every file listed, every listed file a plain file inside the folder with
//! the checksum the manifest gives, and every file one the checker knows how to audit.

use std::collections::HashSet;
use std::path::{Component, Path};

use crate::manifest::{Kind, MANIFEST_NAME, Manifest};
use crate::{CheckError, CheckReport};

/// The evaluation files the checker audits, by name.
pub(crate) const EVALUATION_FILES: [&str; 3] = ["impact.csv", "balance.csv", "survival.csv"];
/// Documents published beside the figures: checked for form (HTML), their figures are the CSVs'.
pub(crate) const DOCUMENTS: [&str; 2] = ["report.html", "index.html"];

/// Whether a manifest file name is one plain name inside the folder (no folder part, no `..`,
/// not absolute, not hidden).
fn plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_)))
        && parts.next().is_none()
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.')
}

/// Files of the folder that the manifest does not list, symbolic links and folders.
pub(crate) fn check_entries(
    dir: &Path,
    manifest: &Manifest,
    label: &str,
    report: &mut CheckReport,
) -> Result<(), CheckError> {
    let listed: HashSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    let entries = std::fs::read_dir(dir).map_err(|e| CheckError::unreadable(dir, e.to_string()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CheckError::unreadable(dir, e.to_string()))?;
        let kind = entry
            .file_type()
            .map_err(|e| CheckError::unreadable(entry.path(), e.to_string()))?;
        names.push((entry.file_name().to_string_lossy().into_owned(), kind));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in names {
        let file = format!("{label}{name}");
        if kind.is_symlink() {
            report.push(
                &file,
                "-",
                "is a symbolic link: a release holds only regular files",
            );
        } else if kind.is_dir() {
            report.push(
                &file,
                "-",
                "is a folder: a release holds only the files its manifest lists",
            );
        } else if name != MANIFEST_NAME && !listed.contains(name.as_str()) {
            report.push(&file, "-", "is not listed in the manifest");
        }
    }
    Ok(())
}

/// Whether a listed file can be opened for its audit: a plain name, a regular file (not a
/// link), listed once, with the manifest's checksum, of a kind the checker knows.
pub(crate) fn usable(
    dir: &Path,
    f: &crate::manifest::Listed,
    label: &str,
    seen: &mut HashSet<String>,
    report: &mut CheckReport,
) -> Result<bool, CheckError> {
    let file = format!("{label}{}", f.name);
    if !plain_name(&f.name) || f.name == MANIFEST_NAME {
        report.push(
            &file,
            "-",
            "the manifest names a file outside the release folder (or not a plain file name)",
        );
        return Ok(false);
    }
    if !seen.insert(f.name.clone()) {
        report.push(&file, "-", "listed twice in the manifest");
        return Ok(false);
    }
    let path = dir.join(&f.name);
    match std::fs::symlink_metadata(&path) {
        Err(_) => {
            report.push(&file, "-", "listed in the manifest but missing");
            return Ok(false);
        }
        Ok(m) if !m.is_file() => {
            // Links and folders are reported by `check_entries`.
            return Ok(false);
        }
        Ok(_) => {}
    }
    if linklab_store::sha256_file(&path)? != f.sha256 {
        report.push(&file, "-", "checksum does not match the manifest");
    }
    let known = match f.kind {
        Kind::Table => Path::new(&f.name).extension().is_some_and(|e| e == "csv"),
        Kind::Extra => EVALUATION_FILES.contains(&f.name.as_str()) || DOCUMENTS.contains(&f.name.as_str()),
    };
    if !known {
        report.push(
            &file,
            "-",
            "is not a file the checker can audit (release tables, impact.csv, balance.csv, survival.csv, report.html, index.html)",
        );
        return Ok(false);
    }
    Ok(true)
}

/// A published document: it must be HTML (a raw extract renamed `report.html` is not).
pub(crate) fn check_document(path: &Path, file: &str, report: &mut CheckReport) {
    let head: Vec<u8> = std::fs::read(path)
        .map(|b| b.into_iter().take(512).collect())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&head);
    let text = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    if text.starts_with("<!doctype html") || text.starts_with("<html") {
        report.note(format!(
            "{file}: checked as an HTML document; its figures are audited through the CSV files"
        ));
    } else {
        report.push(file, "-", "is not an HTML document");
    }
}

#[cfg(test)]
mod tests {
    use super::plain_name;

    #[test]
    fn only_plain_names_stay_inside_the_folder() {
        for (name, ok) in [
            ("t.csv", true),
            ("impact.csv", true),
            ("../x", false),
            ("..", false),
            (".", false),
            ("/etc/passwd", false),
            ("a/b.csv", false),
            ("a\\b.csv", false),
            (".hidden", false),
            ("", false),
        ] {
            assert_eq!(plain_name(name), ok, "{name:?}");
        }
    }
}
