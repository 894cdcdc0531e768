//! From TOML text to a checked [`Pipeline`]: the raw file as serde reads it, then every rule
//! that needs more than one key to check.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component as PathPart, Path, PathBuf};

use linklab_tokens::{Component, FieldKind, MAX_MATCH_KEYS, MatchKey};
use serde::Deserialize;

use crate::model::{
    ColumnType, Disclosure, Encoding, Evaluate, Extract, Format, Identifier, Link, LinkMethod, LinkSpark,
    MatchKeySpec, Probabilistic, Settings, Synth, Table,
};
use crate::size::parse_byte_size;
use crate::{Pipeline, PipelineError};

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
        };
        if let Some(evaluate) = &pipeline.evaluate {
            self.evaluate(&pipeline, evaluate)?;
        }
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

    fn extracts(&self, raw: Vec<RawExtract>) -> Checked<Vec<Extract>> {
        if raw.is_empty() {
            return Err(self.invalid("extract", "expected at least one [[extract]]"));
        }
        for (index, extract) in raw.iter().enumerate() {
            if !is_snake_name(&extract.name) {
                return Err(self.invalid(
                    format!("extract[{index}].name"),
                    format!(
                        "expected a name matching [a-z][a-z0-9_]*, found `{}`",
                        extract.name
                    ),
                ));
            }
            if RESERVED_SOURCES.contains(&extract.name.as_str()) {
                return Err(self.invalid(
                    format!("extract[{index}].name"),
                    format!(
                        "expected a name other than `{}`, which tables use for a source that is not an extract",
                        extract.name
                    ),
                ));
            }
        }
        self.unique(raw.iter().map(|e| e.name.as_str()), "extract name", |i| {
            format!("extract[{i}].name")
        })?;
        raw.into_iter().map(|extract| self.extract(extract)).collect()
    }

    fn extract(&self, raw: RawExtract) -> Checked<Extract> {
        let at = |key: &str| format!("extract \"{}\".{key}", raw.name);
        let path = self.path(&at("path"), &raw.path)?;
        let format = match raw.format {
            Some(format) => format,
            None => match path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("csv") => Format::Csv,
                Some("parquet") => Format::Parquet,
                _ => {
                    return Err(self.invalid(
                        at("format"),
                        format!(
                            "expected format = \"csv\" or \"parquet\", since the path `{}` does not end in .csv or .parquet",
                            raw.path.display()
                        ),
                    ));
                }
            },
        };
        let delimiter = match raw.delimiter.as_deref() {
            None => ',',
            Some(text) => {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\n' | '\r') => c,
                    _ => {
                        return Err(self.invalid(
                            at("delimiter"),
                            format!(
                                "expected a single ASCII character other than a quote or a line break, found {text:?}"
                            ),
                        ));
                    }
                }
            }
        };
        if raw.identifiers.is_empty() {
            return Err(self.invalid(at("identifiers"), "expected at least one identifier"));
        }
        for (name, identifier) in &raw.identifiers {
            if !is_snake_name(name) {
                return Err(self.invalid(
                    at(&format!("identifiers.{name}")),
                    "expected an identifier name matching [a-z][a-z0-9_]*, as match key components name them",
                ));
            }
            if identifier.column.is_empty() {
                return Err(self.invalid(
                    at(&format!("identifiers.{name}.column")),
                    "expected a column name, found an empty string",
                ));
            }
        }
        for (index, column) in raw.keep.iter().enumerate() {
            if column.trim().is_empty() {
                return Err(self.invalid(
                    at(&format!("keep[{index}]")),
                    "expected a column name, found an empty string",
                ));
            }
            // Keeping an identifier column would carry its values past pseudonymisation. Sex
            // is the exception: it is a usual attribute of analysis and table margins, and
            // pseudonymise passes it only as its standardised value. Columns are compared as the
            // extract reader resolves them against the header: after trimming whitespace.
            if let Some((name, identifier)) = raw.identifiers.iter().find(|(_, identifier)| {
                same_column(&identifier.column, column) && identifier.kind != FieldKind::Sex
            }) {
                return Err(self.invalid(
                    at(&format!("keep[{index}]")),
                    format!(
                        "expected an attribute column, but `{column}` holds the {} identifier `{name}`, whose values must never pass through un-tokenised (only sex identifiers may be kept)",
                        identifier.kind
                    ),
                ));
            }
        }
        self.unique(raw.keep.iter().map(|column| column.trim()), "column", |i| {
            at(&format!("keep[{i}]"))
        })?;
        if let Some(column) = raw.types.keys().find(|column| !raw.keep.contains(column)) {
            return Err(self.invalid(
                at(&format!("types.{column}")),
                format!(
                    "expected a column listed in keep ({})",
                    listing(raw.keep.iter().map(String::as_str))
                ),
            ));
        }
        let max_reject_fraction = raw.max_reject_fraction.unwrap_or(DEFAULT_MAX_REJECT_FRACTION);
        if !(0.0..=1.0).contains(&max_reject_fraction) {
            return Err(self.invalid(
                at("max_reject_fraction"),
                format!("expected a fraction between 0 and 1, found {max_reject_fraction}"),
            ));
        }
        Ok(Extract {
            name: raw.name,
            path,
            format,
            encoding: raw.encoding,
            delimiter,
            identifiers: raw.identifiers,
            keep: raw.keep,
            types: raw.types,
            max_reject_fraction,
        })
    }

    /// The kind of every identifier name; a name must have the same kind in every extract.
    fn identifier_kinds(&self, extracts: &[Extract]) -> Checked<BTreeMap<String, (FieldKind, String)>> {
        let mut kinds: BTreeMap<String, (FieldKind, String)> = BTreeMap::new();
        for extract in extracts {
            for (name, identifier) in &extract.identifiers {
                match kinds.get(name) {
                    Some((kind, first)) if *kind != identifier.kind => {
                        return Err(self.invalid(
                            format!("extract \"{}\".identifiers.{name}.kind", extract.name),
                            format!(
                                "expected \"{kind}\", the kind extract \"{first}\" gives identifier `{name}`: an identifier name has one kind in every extract"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        kinds.insert(name.clone(), (identifier.kind, extract.name.clone()));
                    }
                }
            }
        }
        Ok(kinds)
    }

    fn match_keys(
        &self,
        specs: &[MatchKeySpec],
        kinds: &BTreeMap<String, (FieldKind, String)>,
    ) -> Checked<()> {
        if specs.is_empty() {
            return Err(self.invalid("match_key", "expected at least one [[match_key]]"));
        }
        if specs.len() > MAX_MATCH_KEYS {
            return Err(self.invalid(
                "match_key",
                format!(
                    "expected at most {MAX_MATCH_KEYS} [[match_key]] sections, found {}",
                    specs.len()
                ),
            ));
        }
        self.unique(specs.iter().map(|k| k.name.as_str()), "match key name", |i| {
            format!("match_key[{i}].name")
        })?;
        for (index, spec) in specs.iter().enumerate() {
            let at = |key: &str| format!("match_key \"{}\".{key}", spec.name);
            let mut components = Vec::with_capacity(spec.fields.len());
            for (position, text) in spec.fields.iter().enumerate() {
                let component = Component::parse(text).map_err(|error| {
                    self.invalid(
                        at(&format!("fields[{position}]")),
                        format!("expected `field` or `transform(field)`: {error}"),
                    )
                })?;
                if !kinds.contains_key(&component.field) {
                    return Err(self.invalid(
                        at(&format!("fields[{position}]")),
                        format!(
                            "expected an identifier some extract declares ({}), found `{}`",
                            listing(kinds.keys().map(String::as_str)),
                            component.field
                        ),
                    ));
                }
                components.push(component);
            }
            let key = MatchKey::new(spec.name.clone(), components, spec.allow_weak).map_err(|error| {
                let key = if spec.fields.is_empty() {
                    at("fields")
                } else {
                    format!("match_key[{index}].name")
                };
                self.invalid(key, format!("expected a valid match key: {error}"))
            })?;
            key.check_strength(&|field: &str| kinds.get(field).map(|(kind, _)| *kind))
                .map_err(|error| {
                    self.invalid(at("fields"), format!("expected a strong match key: {error}"))
                })?;
        }
        Ok(())
    }

    /// Every extract must declare all fields of at least one match key, or none of its records
    /// could ever link.
    fn extracts_are_linkable(&self, extracts: &[Extract], specs: &[MatchKeySpec]) -> Checked<()> {
        let declares_all = |extract: &Extract, spec: &MatchKeySpec| {
            spec.fields
                .iter()
                .all(|text| Component::parse(text).is_ok_and(|c| extract.identifiers.contains_key(&c.field)))
        };
        for extract in extracts {
            if !specs.iter().any(|spec| declares_all(extract, spec)) {
                let keys: Vec<String> = specs
                    .iter()
                    .map(|spec| format!("{} = [{}]", spec.name, spec.fields.join(", ")))
                    .collect();
                return Err(self.invalid(
                    format!("extract \"{}\".identifiers", extract.name),
                    format!(
                        "expected every field of at least one match key ({}), or none of its records could link",
                        keys.join("; ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn link(&self, raw: RawLink, extracts: &[Extract]) -> Checked<Link> {
        let names = || listing(extracts.iter().map(|e| e.name.as_str()));
        if !extracts.iter().any(|e| e.name == raw.spine) {
            return Err(self.invalid(
                "link.spine",
                format!(
                    "expected the name of an extract ({}), found `{}`",
                    names(),
                    raw.spine
                ),
            ));
        }
        let linked: Vec<String> = match raw.extracts {
            None => extracts.iter().map(|e| e.name.clone()).collect(),
            Some(list) => {
                for (index, name) in list.iter().enumerate() {
                    if !extracts.iter().any(|e| e.name == *name) {
                        return Err(self.invalid(
                            format!("link.extracts[{index}]"),
                            format!("expected the name of an extract ({}), found `{name}`", names()),
                        ));
                    }
                }
                self.unique(list.iter().map(String::as_str), "extract name", |i| {
                    format!("link.extracts[{i}]")
                })?;
                if !list.contains(&raw.spine) {
                    return Err(self.invalid(
                        "link.extracts",
                        format!("expected a list that includes the spine `{}`", raw.spine),
                    ));
                }
                // File order, so the result does not depend on how the list was written.
                extracts
                    .iter()
                    .filter(|e| list.contains(&e.name))
                    .map(|e| e.name.clone())
                    .collect()
            }
        };
        let memory_limit = match raw.memory_limit {
            None => DEFAULT_MEMORY_LIMIT,
            Some(value) => {
                let bytes = match &value {
                    toml::Value::Integer(n) => u64::try_from(*n).ok(),
                    toml::Value::String(text) => parse_byte_size(text),
                    _ => None,
                };
                match bytes {
                    Some(bytes) if bytes >= MIN_MEMORY_LIMIT => bytes,
                    Some(bytes) if bytes > 0 => {
                        return Err(self.invalid(
                            "link.memory_limit",
                            format!(
                                "expected at least {} MiB, which link needs for reading and writing Parquet alone; found {value}",
                                MIN_MEMORY_LIMIT >> 20
                            ),
                        ));
                    }
                    _ => {
                        return Err(self.invalid(
                            "link.memory_limit",
                            format!(
                                "expected a positive number of bytes or a size such as \"512MiB\", \"4GiB\" or \"200MB\", found {value}"
                            ),
                        ));
                    }
                }
            }
        };
        let max_cluster_size = raw.max_cluster_size.unwrap_or(DEFAULT_MAX_CLUSTER_SIZE);
        if max_cluster_size == 0 {
            return Err(self.invalid("link.max_cluster_size", "expected at least 1"));
        }
        let spark = raw.spark.map(|spark| self.spark(spark)).transpose()?;
        let linked_extracts: Vec<&Extract> = extracts.iter().filter(|e| linked.contains(&e.name)).collect();
        let method = self.method(
            raw.method.as_deref(),
            raw.compare,
            raw.match_probability,
            &linked_extracts,
        )?;
        Ok(Link {
            spine: raw.spine,
            memory_limit,
            max_cluster_size,
            extracts: linked,
            spark,
            method,
        })
    }

    /// `[link] method`, `compare` and `match_probability`: the last two only with the
    /// probabilistic method; every compared field declared by every linked extract.
    fn method(
        &self,
        method: Option<&str>,
        compare: Option<Vec<String>>,
        match_probability: Option<f64>,
        linked: &[&Extract],
    ) -> Checked<LinkMethod> {
        match method.unwrap_or("cascade") {
            "cascade" => {
                if compare.is_some() {
                    return Err(
                        self.invalid("link.compare", "expected no `compare` with method = \"cascade\"")
                    );
                }
                if match_probability.is_some() {
                    return Err(self.invalid(
                        "link.match_probability",
                        "expected no `match_probability` with method = \"cascade\"",
                    ));
                }
                return Ok(LinkMethod::Cascade);
            }
            "probabilistic" => {}
            other => {
                let shown =
                    if other.len() <= 20 && other.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        format!(", found `{other}`")
                    } else {
                        String::new()
                    };
                return Err(self.invalid(
                    "link.method",
                    format!("expected \"cascade\" or \"probabilistic\"{shown}"),
                ));
            }
        }
        let match_probability = match_probability.unwrap_or(DEFAULT_MATCH_PROBABILITY);
        if !(match_probability > 0.0 && match_probability < 1.0) {
            return Err(self.invalid(
                "link.match_probability",
                format!("expected a probability strictly between 0 and 1, found {match_probability}"),
            ));
        }
        let declared_by_all = |field: &str| linked.iter().all(|e| e.identifiers.contains_key(field));
        let compare = match compare {
            None => {
                let fields: Vec<String> = linked
                    .first()
                    .map(|e| {
                        e.identifiers
                            .keys()
                            .filter(|f| declared_by_all(f))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                if fields.is_empty() {
                    return Err(self.invalid(
                        "link.compare",
                        "expected at least one identifier that every linked extract declares, so that records can be compared",
                    ));
                }
                fields
            }
            Some(list) => {
                if list.is_empty() {
                    return Err(self.invalid("link.compare", "expected at least one identifier name"));
                }
                for (index, field) in list.iter().enumerate() {
                    if let Some(missing) = linked.iter().find(|e| !e.identifiers.contains_key(field)) {
                        return Err(self.invalid(
                            format!("link.compare[{index}]"),
                            format!(
                                "expected an identifier that every linked extract declares, but extract `{}` does not declare `{field}`",
                                missing.name
                            ),
                        ));
                    }
                }
                self.unique(list.iter().map(String::as_str), "compared field", |i| {
                    format!("link.compare[{i}]")
                })?;
                list
            }
        };
        Ok(LinkMethod::Probabilistic(Probabilistic {
            compare,
            match_probability,
        }))
    }

    /// `[link.spark]`: a master, conf keys that look like Spark's, and program paths resolved
    /// against the pipeline file's folder (bare names are left for PATH).
    fn spark(&self, mut spark: LinkSpark) -> Checked<LinkSpark> {
        if spark.master.trim().is_empty() {
            return Err(self.invalid(
                "link.spark.master",
                "expected a Spark master such as \"local[2]\", \"yarn\" or \"spark://host:7077\"",
            ));
        }
        for key in spark.conf.keys() {
            if !key.starts_with("spark.") || key.contains(char::is_whitespace) || key.contains('=') {
                return Err(self.invalid(
                    format!("link.spark.conf.{key}"),
                    "expected a Spark setting name such as \"spark.driver.memory\"",
                ));
            }
        }
        // A bare program name is looked up on PATH; a path is relative to the pipeline file.
        let program = |key: &str, path: &PathBuf| -> Checked<PathBuf> {
            if path.components().count() == 1 && path.is_relative() {
                self.path(key, path).map(|_| path.clone())
            } else {
                self.path(key, path)
            }
        };
        if let Some(python) = &spark.python {
            spark.python = Some(program("link.spark.python", python)?);
        }
        if let Some(submit) = &spark.spark_submit {
            spark.spark_submit = Some(program("link.spark.spark_submit", submit)?);
        }
        Ok(spark)
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

    fn evaluate(&self, pipeline: &Pipeline, evaluate: &Evaluate) -> Checked<()> {
        let cohort = self.linked_extract(pipeline, "evaluate.cohort", &evaluate.cohort)?;
        self.kept(cohort, "evaluate.index_date", &evaluate.index_date)?;
        self.linked_extract(pipeline, "evaluate.treatment", &evaluate.treatment)?;
        for (index, covariate) in evaluate.covariates.iter().enumerate() {
            self.kept(cohort, format!("evaluate.covariates[{index}]"), covariate)?;
        }
        self.unique(evaluate.covariates.iter().map(String::as_str), "covariate", |i| {
            format!("evaluate.covariates[{i}]")
        })?;
        for (key, value) in [
            ("evaluate.follow_up_days", evaluate.follow_up_days),
            ("evaluate.ratio", evaluate.ratio),
        ] {
            if value == 0 {
                return Err(self.invalid(key, "expected at least 1"));
            }
        }
        if evaluate.min_treated == 0 {
            return Err(self.invalid("evaluate.min_treated", "expected at least 1"));
        }
        if !(evaluate.caliper > 0.0 && evaluate.caliper.is_finite()) {
            return Err(self.invalid(
                "evaluate.caliper",
                format!(
                    "expected a positive number of standard deviations, found {}",
                    evaluate.caliper
                ),
            ));
        }
        if evaluate.outcomes.is_empty() {
            return Err(self.invalid("evaluate.outcome", "expected at least one [[evaluate.outcome]]"));
        }
        for (index, outcome) in evaluate.outcomes.iter().enumerate() {
            let name_key = format!("evaluate.outcome[{index}].name");
            if !is_snake_name(&outcome.name) {
                return Err(self.invalid(
                    name_key,
                    format!(
                        "expected a name matching [a-z][a-z0-9_]*, found `{}`",
                        outcome.name
                    ),
                ));
            }
            if cohort.keeps(&outcome.name) || EVALUATION_COLUMNS.contains(&outcome.name.as_str()) {
                return Err(self.invalid(
                    name_key,
                    format!(
                        "expected a name that is not already a column of the evaluation frame (the cohort's kept columns, treated, group), found `{}`",
                        outcome.name
                    ),
                ));
            }
        }
        self.unique(
            evaluate.outcomes.iter().map(|o| o.name.as_str()),
            "outcome name",
            |i| format!("evaluate.outcome[{i}].name"),
        )?;
        for outcome in &evaluate.outcomes {
            let at = |key: &str| format!("evaluate.outcome \"{}\".{key}", outcome.name);
            let extract = self.linked_extract(pipeline, &at("extract"), &outcome.extract)?;
            let event = outcome.kind.is_event();
            let kind = outcome.kind.as_str();
            let reads = if event { "date" } else { "start and end" };
            for (key, value, wanted) in [
                ("date", &outcome.date, event),
                ("start", &outcome.start, !event),
                ("end", &outcome.end, !event),
            ] {
                match (value, wanted) {
                    (Some(column), true) => self.kept(extract, at(key), column)?,
                    (None, true) => {
                        return Err(self.invalid(
                            at(key),
                            format!("expected a column name: an outcome of kind {kind} reads {reads}"),
                        ));
                    }
                    (Some(_), false) => {
                        return Err(self.invalid(
                            at(key),
                            format!("expected no {key} for an outcome of kind {kind}, which reads {reads}"),
                        ));
                    }
                    (None, false) => {}
                }
            }
            for (column, values) in &outcome.filter {
                self.kept(extract, at(&format!("where.{column}")), column)?;
                if values.is_empty() {
                    return Err(self.invalid(at(&format!("where.{column}")), "expected at least one value"));
                }
            }
        }
        Ok(())
    }

    fn tables(&self, pipeline: &Pipeline) -> Checked<()> {
        for (index, table) in pipeline.tables.iter().enumerate() {
            if !is_snake_name(&table.name) {
                return Err(self.invalid(
                    format!("table[{index}].name"),
                    format!("expected a name matching [a-z][a-z0-9_]*, found `{}`", table.name),
                ));
            }
        }
        for (index, table) in pipeline.tables.iter().enumerate() {
            if RESERVED_TABLE_NAMES.contains(&table.name.as_str()) {
                return Err(self.invalid(
                    format!("table[{index}].name"),
                    format!(
                        "expected a name other than the release's own outputs ({}), found `{}`",
                        listing(RESERVED_TABLE_NAMES),
                        table.name
                    ),
                ));
            }
        }
        self.unique(
            pipeline.tables.iter().map(|t| t.name.as_str()),
            "table name",
            |i| format!("table[{i}].name"),
        )?;
        for table in &pipeline.tables {
            let at = |key: &str| format!("table \"{}\".{key}", table.name);
            let (source, columns): (String, BTreeSet<&str>) = match table.from.as_str() {
                "persons" => {
                    let spine = pipeline.spine();
                    (
                        format!(
                            "a column of persons, which has the columns the spine \"{}\" keeps",
                            spine.name
                        ),
                        spine.keep.iter().map(String::as_str).collect(),
                    )
                }
                "evaluation" => {
                    let Some(evaluate) = &pipeline.evaluate else {
                        return Err(self.invalid(
                            at("from"),
                            "expected a linked extract or \"persons\": \"evaluation\" needs an [evaluate] section",
                        ));
                    };
                    let cohort = pipeline
                        .extract(&evaluate.cohort)
                        .expect("the evaluate section was checked before the tables");
                    let columns = cohort
                        .keep
                        .iter()
                        .map(String::as_str)
                        .chain(EVALUATION_COLUMNS)
                        .chain(evaluate.outcomes.iter().map(|o| o.name.as_str()))
                        .collect();
                    ("a column of the evaluation frame".to_owned(), columns)
                }
                name => {
                    if pipeline.extract(name).is_none() {
                        return Err(self.invalid(
                            at("from"),
                            format!(
                                "expected a linked extract ({}), \"persons\" or \"evaluation\", found `{name}`",
                                listing(pipeline.link.extracts.iter().map(String::as_str))
                            ),
                        ));
                    }
                    let extract = self.linked_extract(pipeline, &at("from"), name)?;
                    (
                        format!("a column that extract \"{}\" keeps", extract.name),
                        extract.keep.iter().map(String::as_str).collect(),
                    )
                }
            };
            let missing = |key: String, column: &str| {
                self.invalid(
                    key,
                    format!(
                        "expected {source} ({}), found `{column}`",
                        listing(columns.iter().copied())
                    ),
                )
            };
            if table.by.is_empty() {
                return Err(self.invalid(at("by"), "expected at least one column to group by"));
            }
            for (index, column) in table.by.iter().enumerate() {
                if !columns.contains(column.as_str()) {
                    return Err(missing(at(&format!("by[{index}]")), column));
                }
            }
            self.unique(table.by.iter().map(String::as_str), "column", |i| {
                at(&format!("by[{i}]"))
            })?;
            if let Some(sum) = &table.sum {
                if !columns.contains(sum.as_str()) {
                    return Err(missing(at("sum"), sum));
                }
                if table.by.contains(sum) {
                    return Err(
                        self.invalid(at("sum"), format!("expected a column not in by, found `{sum}`"))
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Pipeline;

    const EXAMPLE: &str = include_str!("../tests/fixtures/contract-example.toml");

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
