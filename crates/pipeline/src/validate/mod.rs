//! From TOML text to a checked [`Pipeline`]: the raw file as serde reads it, then every rule
//! that needs more than one key to check.

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path, PathBuf};

use serde::Deserialize;

use crate::model::{
    ColumnType, Disclosure, Encoding, Evaluate, Extract, Format, Identifier, LinkSpark, MatchKeySpec,
    Programme, Settings, Synth, Table,
};
use crate::{Pipeline, PipelineError};

mod evaluate;
mod extracts;
mod link;
mod tables;

/// The default `link.memory_limit`: 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = 4 << 30;
/// The smallest `link.memory_limit` the link stage can honour (its Parquet buffers alone take
/// 96 MiB).
pub const MIN_MEMORY_LIMIT: u64 = 128 << 20;
/// The lowest `disclosure.threshold` accepted without `allow_low_threshold = true`.
pub const MIN_THRESHOLD: u64 = 5;
/// The default `link.match_probability` of the probabilistic method.
pub const DEFAULT_MATCH_PROBABILITY: f64 = 0.95;

/// The default `link.max_cluster_size`.
pub const DEFAULT_MAX_CLUSTER_SIZE: u64 = 10;
/// The default `extract.max_reject_fraction`.
pub const DEFAULT_MAX_REJECT_FRACTION: f64 = 0.01;

/// Table sources that are not extracts, so no extract may take these names.
const RESERVED_SOURCES: [&str; 2] = ["persons", "evaluation"];
/// Names of the files the evaluate and release stages publish themselves (`impact.csv`,
/// `report.html`, `release-manifest.json`, …): no table may take them.
const RESERVED_TABLE_NAMES: [&str; 7] = [
    "impact",
    "balance",
    "survival",
    "report",
    "summary",
    "release_manifest",
    "release_audit",
];
/// Columns the evaluation frame adds to the cohort's kept columns.
const EVALUATION_COLUMNS: [&str; 2] = ["treated", "group"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    pipeline: Settings,
    synth: Option<Synth>,
    #[serde(default)]
    match_key: Vec<MatchKeySpec>,
    #[serde(default)]
    extract: Vec<RawExtract>,
    link: RawLink,
    #[serde(default)]
    disclosure: Disclosure,
    #[serde(default)]
    table: Vec<Table>,
    evaluate: Option<Evaluate>,
    #[serde(default)]
    programme: Vec<Programme>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    name: String,
    path: PathBuf,
    format: Option<Format>,
    #[serde(default)]
    encoding: Encoding,
    delimiter: Option<String>,
    identifiers: BTreeMap<String, Identifier>,
    #[serde(default)]
    keep: Vec<String>,
    #[serde(default)]
    types: BTreeMap<String, ColumnType>,
    max_reject_fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    spine: String,
    memory_limit: Option<toml::Value>,
    max_cluster_size: Option<u64>,
    extracts: Option<Vec<String>>,
    spark: Option<LinkSpark>,
    method: Option<String>,
    compare: Option<Vec<String>>,
    match_probability: Option<f64>,
}

/// Parses and checks a pipeline file's text; `path` is the file, for messages and for resolving
/// relative paths.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Pipeline, PipelineError> {
    let raw: RawFile = toml::from_str(text).map_err(|error| {
        let (line, column) = match error.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        // Only the rule: toml's snippet and serde's quoted values would print the file.
        PipelineError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            detail: crate::syntax::rule(error.message()),
        }
    })?;
    Checker {
        file: path,
        base: path.parent().unwrap_or(Path::new("")),
    }
    .check(raw)
}

/// The 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Joins a relative path to `base` and removes `.` and `..` parts without touching the file
/// system (the files may not exist yet). A `..` that would climb above the root is dropped;
/// one that would climb above the start of a relative path is kept.
pub fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    let joined = base.join(path);
    let mut parts: Vec<PathPart<'_>> = Vec::new();
    for part in joined.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir => match parts.last() {
                Some(PathPart::Normal(_)) => {
                    parts.pop();
                }
                Some(PathPart::RootDir | PathPart::Prefix(_)) => {}
                _ => parts.push(part),
            },
            other => parts.push(other),
        }
    }
    parts.iter().collect()
}

/// `path` as the file system resolves it: its longest existing ancestor canonicalised (symlinks
/// followed), with the rest appended. The path itself need not exist.
pub fn resolve_existing(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut current = path;
    loop {
        if let Ok(real) = current.canonicalize() {
            return rest.iter().rev().fold(real, |acc, part| acc.join(part));
        }
        match (current.parent(), current.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                current = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Whether two configured column names resolve to the same column of an extract: the reader
/// matches names against the header after trimming whitespace (and exactly otherwise).
fn same_column(a: &str, b: &str) -> bool {
    a.trim() == b.trim()
}

/// `[a-z][a-z0-9_]*`
fn is_snake_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `[a-z0-9][a-z0-9_-]*`
fn is_pipeline_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Names listed for a message: `a, b, c`.
fn listing<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// The first name that occurs twice, with the index of both occurrences.
fn first_duplicate<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(&'a str, usize, usize)> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, name) in names.into_iter().enumerate() {
        if let Some(&first) = seen.get(name) {
            return Some((name, first, index));
        }
        seen.insert(name, index);
    }
    None
}

struct Checker<'a> {
    file: &'a Path,
    base: &'a Path,
}

type Checked<T> = Result<T, PipelineError>;

impl Checker<'_> {
    fn invalid(&self, key: impl Into<String>, expected: impl Into<String>) -> PipelineError {
        PipelineError::Invalid {
            path: self.file.to_path_buf(),
            key: key.into(),
            expected: expected.into(),
        }
    }

    fn path(&self, key: &str, path: &Path) -> Checked<PathBuf> {
        if path.as_os_str().is_empty() {
            return Err(self.invalid(key, "expected a path, found an empty string"));
        }
        // A line break in a path would end a comment or a command in a generated job script.
        if path.to_string_lossy().chars().any(char::is_control) {
            return Err(self.invalid(
                key,
                "expected a path without control characters (line breaks, tabs, NUL)",
            ));
        }
        Ok(resolve_path(self.base, path))
    }

    /// Checks a list of names for duplicates, reporting the second at `key(index)`.
    fn unique<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
        what: &str,
        key: impl Fn(usize) -> String,
    ) -> Checked<()> {
        match first_duplicate(names) {
            Some((name, first, second)) => Err(self.invalid(
                key(second),
                format!("expected a unique {what}, but `{name}` is also at index {first}"),
            )),
            None => Ok(()),
        }
    }

    fn check(&self, raw: RawFile) -> Checked<Pipeline> {
        let settings = self.settings(raw.pipeline)?;
        let synth = raw.synth.map(|synth| self.synth(synth)).transpose()?;
        let extracts = self.extracts(raw.extract)?;
        let kinds = self.identifier_kinds(&extracts)?;
        self.match_keys(&raw.match_key, &kinds)?;
        self.extracts_are_linkable(&extracts, &raw.match_key)?;
        let link = self.link(raw.link, &extracts)?;
        self.disclosure(&raw.disclosure)?;
        let pipeline = Pipeline {
            source: self.file.to_path_buf(),
            settings,
            synth,
            match_key_specs: raw.match_key,
            extracts,
            link,
            disclosure: raw.disclosure,
            tables: raw.table,
            evaluate: raw.evaluate,
            programmes: raw.programme,
        };
        if let Some(evaluate) = &pipeline.evaluate {
            self.evaluate(&pipeline, evaluate)?;
        }
        self.programmes(&pipeline)?;
        self.tables(&pipeline)?;
        Ok(pipeline)
    }

    fn settings(&self, mut settings: Settings) -> Checked<Settings> {
        if !is_pipeline_name(&settings.name) {
            return Err(self.invalid(
                "pipeline.name",
                format!(
                    "expected a name matching [a-z0-9][a-z0-9_-]*, found `{}`",
                    settings.name
                ),
            ));
        }
        settings.work_dir = self.path("pipeline.work_dir", &settings.work_dir)?;
        settings.release_dir = self.path("pipeline.release_dir", &settings.release_dir)?;
        settings.key_file = self.path("pipeline.key_file", &settings.key_file)?;
        settings.project_key_file = self.path("pipeline.project_key_file", &settings.project_key_file)?;
        // Compared as written and as the file system resolves them, so a symlink cannot join them.
        let release = resolve_existing(&settings.release_dir);
        let work = resolve_existing(&settings.work_dir);
        if settings.release_dir.starts_with(&settings.work_dir)
            || settings.work_dir.starts_with(&settings.release_dir)
            || release.starts_with(&work)
            || work.starts_with(&release)
        {
            return Err(self.invalid(
                "pipeline.release_dir",
                "expected a folder that neither holds nor lies inside work_dir: the release folder leaves the secure area, work_dir must not",
            ));
        }
        if resolve_existing(&settings.key_file) == resolve_existing(&settings.project_key_file) {
            return Err(self.invalid(
                "pipeline.project_key_file",
                "expected a key file other than key_file: a separate project key keeps person ids from being joined across projects",
            ));
        }
        Ok(settings)
    }

    fn synth(&self, mut synth: Synth) -> Checked<Synth> {
        if synth.people == 0 {
            return Err(self.invalid("synth.people", "expected at least 1 person"));
        }
        synth.out_dir = self.path("synth.out_dir", &synth.out_dir)?;
        Ok(synth)
    }

    fn disclosure(&self, rules: &Disclosure) -> Checked<()> {
        if rules.threshold < 1 {
            return Err(self.invalid("disclosure.threshold", "expected a threshold of at least 1"));
        }
        if rules.threshold < MIN_THRESHOLD && !rules.allow_low_threshold {
            return Err(self.invalid(
                "disclosure.threshold",
                format!(
                    "expected a threshold of at least {MIN_THRESHOLD}, found {}; set allow_low_threshold = true in [disclosure] if a lower one was agreed",
                    rules.threshold
                ),
            ));
        }
        if rules.round_to < 1 {
            return Err(self.invalid("disclosure.round_to", "expected a rounding base of at least 1"));
        }
        if rules.dominance_n < 1 {
            return Err(self.invalid("disclosure.dominance_n", "expected at least 1"));
        }
        if !(rules.dominance_k > 0.0 && rules.dominance_k <= 1.0) {
            return Err(self.invalid(
                "disclosure.dominance_k",
                format!(
                    "expected a fraction above 0 and at most 1, found {}",
                    rules.dominance_k
                ),
            ));
        }
        if !(0.0..=1.0).contains(&rules.p_percent) {
            return Err(self.invalid(
                "disclosure.p_percent",
                format!("expected a fraction between 0 and 1, found {}", rules.p_percent),
            ));
        }
        Ok(())
    }

    /// The linked extract named at `key`.
    fn linked_extract<'p>(&self, pipeline: &'p Pipeline, key: &str, name: &str) -> Checked<&'p Extract> {
        let extract = pipeline.extract(name).ok_or_else(|| {
            self.invalid(
                key,
                format!(
                    "expected the name of an extract ({}), found `{name}`",
                    listing(pipeline.extracts.iter().map(|e| e.name.as_str()))
                ),
            )
        })?;
        if !pipeline.link.extracts.contains(&extract.name) {
            return Err(self.invalid(
                key,
                format!("expected a linked extract, but link.extracts leaves out `{name}`"),
            ));
        }
        Ok(extract)
    }

    /// Checks that `extract` keeps `column`.
    fn kept(&self, extract: &Extract, key: impl Into<String>, column: &str) -> Checked<()> {
        if extract.keeps(column) {
            return Ok(());
        }
        Err(self.invalid(
            key,
            format!(
                "expected a column that extract \"{}\" keeps ({}), found `{column}`",
                extract.name,
                listing(extract.keep.iter().map(String::as_str))
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Pipeline;

    const EXAMPLE: &str = include_str!("../../tests/fixtures/contract-example.toml");

    fn with_spark(section: &str) -> Result<Pipeline, String> {
        Pipeline::parse(
            &format!("{EXAMPLE}\n[link.spark]\n{section}\n"),
            Path::new("/p/pipeline.toml"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn link_spark_parses_with_defaults_and_stays_out_of_the_settings_digest() {
        let plain = Pipeline::parse(EXAMPLE, Path::new("/p/pipeline.toml")).unwrap();
        assert!(plain.link.spark.is_none());
        let p = with_spark("").unwrap();
        let spark = p.link.spark.clone().unwrap();
        assert_eq!(spark.master, "local[2]");
        assert!(spark.conf.is_empty() && spark.python.is_none() && spark.spark_submit.is_none());
        let p = with_spark(
            "master = \"yarn\"\npython = \"venv/bin/python\"\nspark_submit = \"spark-submit\"\nconf = { \"spark.executor.memory\" = \"8g\" }",
        )
        .unwrap();
        let spark = p.link.spark.clone().unwrap();
        assert_eq!(spark.master, "yarn");
        assert_eq!(spark.python.as_deref(), Some(Path::new("/p/venv/bin/python")));
        assert_eq!(spark.spark_submit.as_deref(), Some(Path::new("spark-submit")));
        assert_eq!(spark.conf["spark.executor.memory"], "8g");
        let digest = |p: &Pipeline| toml::to_string(&p.stage_settings("link").unwrap()).unwrap();
        assert_eq!(digest(&p), digest(&plain));
    }

    #[test]
    fn link_spark_rejects_what_spark_would_not_take() {
        for (section, key) in [
            ("master = \" \"", "link.spark.master"),
            (
                "conf = { \"driver.memory\" = \"4g\" }",
                "link.spark.conf.driver.memory",
            ),
            ("python = \"\"", "link.spark.python"),
            ("mastr = \"yarn\"", "mastr"),
        ] {
            let err = with_spark(section).unwrap_err();
            assert!(err.contains(key), "{section}: {err}");
        }
    }
}
