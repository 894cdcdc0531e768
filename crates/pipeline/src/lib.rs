//! The pipeline file: parsing, validation and the stage graph.
//!
//! A pipeline file (`pipeline-v1.md`) declares the keys, the department extracts and their
//! identifiers, the match-key cascade, the evaluation and the tables to release. [`Pipeline::load`]
//! reads one into typed sections and checks everything that can be checked without the data:
//! unknown keys, names, references between sections, columns that tables and the evaluation
//! need. Each failure is a [`PipelineError`] naming the file, the key and what was expected.
//!
//! All relative paths in the file are relative to the folder that holds it; they are stored
//! resolved (joined and lexically normalised; the files need not exist yet).
//!
//! [`Pipeline::stages`] gives the stage graph that `plan`, the Slurm script and the runner follow
//! (module `graph`, with the stage names and the runner's state names), and
//! [`Pipeline::stage_settings`] the part of the file each stage depends on, to be hashed.
//! [`render_slurm`] turns the graph into a Slurm submission script.
#![forbid(unsafe_code)]

mod error;
mod graph;
mod model;
mod size;
mod slurm;
mod syntax;
mod validate;

use std::path::{Path, PathBuf};

use linklab_tokens::{FieldKind, MatchKey};
use serde::Serialize;

pub use error::PipelineError;
pub use graph::{ComparisonSettings, StageKind, StagePlan, StageSettings, pseudonymise_stage_name};
pub use model::{
    ColumnType, Disclosure, Encoding, Evaluate, Extract, Format, Identifier, Link, LinkMethod, LinkSpark,
    MatchKeySpec, Outcome, OutcomeKind, Probabilistic, Programme, Settings, Synth, SynthNoise, Table,
    Treatment, Unknown, parse_day,
};
pub use size::parse_byte_size;
pub use slurm::{SlurmOptions, render_slurm, stage_arguments};
pub use validate::{
    DEFAULT_MATCH_PROBABILITY, DEFAULT_MAX_CLUSTER_SIZE, DEFAULT_MAX_REJECT_FRACTION, DEFAULT_MEMORY_LIMIT,
    resolve_path,
};

/// A loaded and checked pipeline file.
///
/// Serializing it gives every setting (without [`Pipeline::source`]); the field names follow the
/// file's keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    /// The file it was loaded from.
    #[serde(skip)]
    pub source: PathBuf,
    /// `[pipeline]`.
    #[serde(rename = "pipeline")]
    pub settings: Settings,
    /// `[synth]`, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synth: Option<Synth>,
    /// `[[match_key]]`, in cascade order (at least one).
    #[serde(rename = "match_key")]
    pub match_key_specs: Vec<MatchKeySpec>,
    /// `[[extract]]`, in file order (at least one).
    #[serde(rename = "extract")]
    pub extracts: Vec<Extract>,
    /// `[link]`.
    pub link: Link,
    /// `[disclosure]`, defaults filled in.
    pub disclosure: Disclosure,
    /// `[[table]]`, in file order.
    #[serde(rename = "table")]
    pub tables: Vec<Table>,
    /// `[evaluate]`, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<Evaluate>,
    /// `[[programme]]`, in file order: metadata of the treatment extracts' programmes.
    #[serde(rename = "programme", skip_serializing_if = "Vec::is_empty")]
    pub programmes: Vec<Programme>,
}

impl Pipeline {
    /// Reads and checks a pipeline file. A relative `path` is first made absolute against the
    /// current folder, so the paths inside are absolute too.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        let read_error = |source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        };
        let absolute = std::path::absolute(path).map_err(read_error)?;
        let text = std::fs::read_to_string(&absolute).map_err(read_error)?;
        Self::parse(&text, &resolve_path(Path::new(""), &absolute))
    }

    /// Parses and checks a pipeline file's text. `path` names the file in errors, and relative
    /// paths inside are resolved against its folder.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PipelineError> {
        validate::parse(text, path)
    }

    /// The extract with this name.
    pub fn extract(&self, name: &str) -> Option<&Extract> {
        self.extracts.iter().find(|extract| extract.name == name)
    }

    /// The spine extract (`link.spine`).
    pub fn spine(&self) -> &Extract {
        self.extract(&self.link.spine)
            .expect("link.spine was checked to name an extract")
    }

    /// The extracts that are linked (`link.extracts`), in file order.
    pub fn linked_extracts(&self) -> impl Iterator<Item = &Extract> {
        self.extracts
            .iter()
            .filter(|extract| self.link.extracts.contains(&extract.name))
    }

    /// The match keys with their components parsed, in cascade order.
    ///
    /// An extract that lacks some of a key's fields gets null tokens for that key.
    pub fn match_keys(&self) -> Result<Vec<MatchKey>, PipelineError> {
        self.match_key_specs
            .iter()
            .map(|spec| {
                MatchKey::parse(spec.name.clone(), &spec.fields, spec.allow_weak).map_err(|error| {
                    PipelineError::Invalid {
                        path: self.source.clone(),
                        key: format!("match_key \"{}\".fields", spec.name),
                        expected: format!("expected a valid match key: {error}"),
                    }
                })
            })
            .collect()
    }

    /// The kind of the identifier with this name (the same in every extract that declares it).
    pub fn identifier_kind(&self, name: &str) -> Option<FieldKind> {
        self.extracts
            .iter()
            .find_map(|extract| extract.identifier(name))
            .map(|identifier| identifier.kind)
    }

    /// `work_dir/pseudonymised/<extract>`: the extract's token part files.
    pub fn pseudonymised_dir(&self, extract: &str) -> PathBuf {
        self.settings.work_dir.join("pseudonymised").join(extract)
    }

    /// `work_dir/pseudonymised/<extract>.manifest.json`.
    pub fn pseudonymised_manifest(&self, extract: &str) -> PathBuf {
        self.settings
            .work_dir
            .join("pseudonymised")
            .join(format!("{extract}.manifest.json"))
    }

    /// `work_dir/linked`.
    pub fn linked_dir(&self) -> PathBuf {
        self.settings.work_dir.join("linked")
    }

    /// `work_dir/evaluation`.
    pub fn evaluation_dir(&self) -> PathBuf {
        self.settings.work_dir.join("evaluation")
    }
}
