//! The programmes a pipeline evaluates, and where each one's evaluation and release go.
//!
//! One treatment extract is evaluated in `work_dir/evaluation/` and released in `release_dir`
//! itself, as in the first version. With several (`treatment = ["a", "b"]`), each is evaluated in
//! `work_dir/evaluation/<extract>/`, audited in `work_dir/release-audit/<extract>/` and released
//! in `release_dir/<extract>/`, and the release stage writes `release_dir/index.html` over them.

use std::path::{Path, PathBuf};

use linklab_pipeline::{Pipeline, Programme};
use linklab_store::WorkDir;
use sha2::{Digest, Sha256};

/// One programme's folders.
#[derive(Debug, Clone)]
pub struct ProgrammeDirs<'p> {
    /// The treatment extract.
    pub extract: &'p str,
    /// Its `[[programme]]`, if the pipeline describes it.
    pub meta: Option<&'p Programme>,
    /// Its evaluation (the analysis frame, `figures.json`, `publish/`).
    pub evaluation: PathBuf,
    /// Its release folder.
    pub release: PathBuf,
    /// Its audit trail.
    pub audit: PathBuf,
}

/// Every programme of the pipeline, in `treatment` order; none without `[evaluate]`.
pub fn programmes(p: &Pipeline) -> Vec<ProgrammeDirs<'_>> {
    let Some(evaluate) = &p.evaluate else {
        return Vec::new();
    };
    let work = WorkDir::new(&p.settings.work_dir);
    let several = evaluate.treatment.is_several();
    evaluate
        .treatment
        .extracts()
        .iter()
        .map(|extract| {
            let inside = |dir: PathBuf| if several { dir.join(extract) } else { dir };
            ProgrammeDirs {
                extract,
                meta: p.programmes.iter().find(|m| m.extract == *extract),
                evaluation: inside(work.evaluation()),
                release: inside(p.settings.release_dir.clone()),
                audit: inside(work.release_audit()),
            }
        })
        .collect()
}

/// Whether the release folder holds one folder per programme and the dashboard over them.
pub fn several(p: &Pipeline) -> bool {
    p.evaluate.as_ref().is_some_and(|e| e.treatment.is_several())
}

/// The manifest's description of a programme: its `[[programme]]` and the cohort's
/// fingerprint.
pub fn release_meta(dirs: &ProgrammeDirs<'_>, cohort: Option<&String>) -> linklab_release::ProgrammeMeta {
    let meta = dirs.meta;
    let text = |field: fn(&Programme) -> Option<&String>| meta.and_then(field).cloned();
    linklab_release::ProgrammeMeta {
        extract: dirs.extract.to_owned(),
        name: meta.map(|m| m.name.clone()),
        organisation: text(|m| m.organisation.as_ref()),
        kind: text(|m| m.kind.as_ref()),
        start: text(|m| m.start.as_ref()),
        end: text(|m| m.end.as_ref()),
        description: text(|m| m.description.as_ref()),
        cohort: cohort.cloned(),
    }
}

/// Domain label of the cohort fingerprint.
const COHORT_DOMAIN: &[u8] = b"linklab cohort source v1\0";

/// An opaque fingerprint of the cohort's source: SHA-256 of a domain label and the SHA-256 of
/// the cohort's input file (as its pseudonymise manifest records it), so releases made from one
/// cohort file, by any pipeline, carry the same value and the file's own digest is not
/// published. `None` if the manifest cannot be read.
pub fn cohort_fingerprint(work: &WorkDir, cohort: &str) -> Option<String> {
    let manifest: linklab_pseudonymise::PseudonymiseManifest =
        linklab_store::read_json(&work.pseudonymised_manifest(cohort)).ok()?;
    let mut hasher = Sha256::new();
    hasher.update(COHORT_DOMAIN);
    hasher.update(manifest.input.sha256.as_bytes());
    Some(hex::encode(hasher.finalize()))
}

/// The release folders of the programmes, for the dashboard.
pub fn release_dirs(dirs: &[ProgrammeDirs<'_>]) -> Vec<PathBuf> {
    dirs.iter().map(|d| d.release.clone()).collect()
}

/// Writes the dashboard over release folders (`linklab dashboard`, and the release stage with
/// several programmes) and warns once for each group of releases that share a cohort. Returns
/// the page's path.
pub fn dashboard(releases: &[PathBuf], out: &Path) -> Result<PathBuf, crate::CliError> {
    let built = linklab_dashboard::build(releases, out)?;
    for group in &built.shared_cohorts {
        tracing::warn!("{group}");
    }
    Ok(built.page)
}

/// The dashboard page of a release folder with several programmes.
pub fn index_page(release_dir: &Path) -> PathBuf {
    release_dir.join(linklab_dashboard::INDEX_NAME)
}

/// Refuses a release folder that holds a single-programme release (from an earlier run with
/// one treatment extract): the programmes' folders and the dashboard would sit beside a release
/// that no longer matches the pipeline.
pub fn refuse_flat_release(release_dir: &Path) -> Result<(), crate::CliError> {
    if release_dir.join(linklab_release::MANIFEST_NAME).exists() {
        return Err(crate::CliError::Usage(format!(
            "{} holds the release of a single programme, but the pipeline now evaluates several, each released in a folder of its own there: move that release away or choose another release_dir",
            release_dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use linklab_pipeline::Pipeline;

    use super::{programmes, release_meta, several};

    const PIPELINE: &str = r#"
[pipeline]
name = "t"
work_dir = "/w"
release_dir = "/r"
key_file = "/k/linkage.key"
project_key_file = "/k/project.key"

[[match_key]]
name = "nino"
fields = ["nino"]

[[extract]]
name = "people"
path = "people.csv"
identifiers = { nino = { column = "ni", kind = "nino" } }
keep = ["released"]

[[extract]]
name = "mentoring"
path = "mentoring.csv"
identifiers = { nino = { column = "ni", kind = "nino" } }

[[extract]]
name = "courses"
path = "courses.csv"
identifiers = { nino = { column = "ni", kind = "nino" } }

[link]
spine = "people"

[evaluate]
cohort = "people"
index_date = "released"
treatment = TREATMENT
covariates = []

[[evaluate.outcome]]
name = "x"
kind = "event_within"
extract = "people"
date = "released"

[[programme]]
extract = "courses"
name = "Courses"
type = "education"
"#;

    /// Each programme's (extract, evaluation, release, audit folder, name in the manifest).
    fn check(treatment: &str, expected: &[[&str; 5]]) {
        let text = PIPELINE.replace("TREATMENT", treatment);
        let p = Pipeline::parse(&text, Path::new("/p/t.toml")).expect("valid");
        let dirs = programmes(&p);
        let got: Vec<[String; 5]> = dirs
            .iter()
            .map(|d| {
                let meta = release_meta(d, None);
                [
                    d.extract.to_owned(),
                    d.evaluation.display().to_string(),
                    d.release.display().to_string(),
                    d.audit.display().to_string(),
                    meta.name.unwrap_or_default(),
                ]
            })
            .collect();
        let expected: Vec<[String; 5]> = expected.iter().map(|row| row.map(str::to_owned)).collect();
        assert_eq!(got, expected, "{treatment}");
        assert_eq!(several(&p), expected.len() > 1, "{treatment}");
    }

    #[test]
    fn one_programme_keeps_the_first_layout_and_several_get_a_folder_each() {
        check(
            r#""courses""#,
            &[["courses", "/w/evaluation", "/r", "/w/release-audit", "Courses"]],
        );
        check(
            r#"["courses"]"#,
            &[["courses", "/w/evaluation", "/r", "/w/release-audit", "Courses"]],
        );
        check(
            r#"["mentoring", "courses"]"#,
            &[
                [
                    "mentoring",
                    "/w/evaluation/mentoring",
                    "/r/mentoring",
                    "/w/release-audit/mentoring",
                    "",
                ],
                [
                    "courses",
                    "/w/evaluation/courses",
                    "/r/courses",
                    "/w/release-audit/courses",
                    "Courses",
                ],
            ],
        );
    }
}
