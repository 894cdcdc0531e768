//! `[link]`: the spine, linked extracts, memory, the method and `[link.spark]`.

use std::path::PathBuf;

use super::{
    Checked, Checker, DEFAULT_MATCH_PROBABILITY, DEFAULT_MAX_CLUSTER_SIZE, DEFAULT_MEMORY_LIMIT,
    MIN_MEMORY_LIMIT, RawLink, listing,
};
use crate::model::{Extract, Link, LinkMethod, LinkSpark, Probabilistic};
use crate::size::parse_byte_size;

impl Checker<'_> {
    pub(super) fn link(&self, raw: RawLink, extracts: &[Extract]) -> Checked<Link> {
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
    pub(super) fn method(
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
    pub(super) fn spark(&self, mut spark: LinkSpark) -> Checked<LinkSpark> {
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
}
