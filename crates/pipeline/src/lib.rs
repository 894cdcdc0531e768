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
//! [`Pipeline::stages`] gives the stage graph a runner or scheduler follows, and
//! [`Pipeline::stage_settings`] the part of the file each stage depends on, to be hashed.
//! [`render_slurm`] turns the graph into a Slurm submission script.
#![forbid(unsafe_code)]

mod error;
mod model;
mod size;
mod slurm;
mod syntax;
mod validate;

use std::path::{Path, PathBuf};

use linklab_tokens::{FieldKind, MatchKey};
use serde::Serialize;

pub use error::PipelineError;
pub use model::{
    ColumnType, Disclosure, Encoding, Evaluate, Extract, Format, Identifier, Link, LinkSpark, MatchKeySpec,
    Outcome, OutcomeKind, Settings, StageKind, StagePlan, Synth, Table,
};
pub use size::parse_byte_size;
pub use slurm::{SlurmOptions, render_slurm, stage_arguments};
pub use validate::{
    DEFAULT_MAX_CLUSTER_SIZE, DEFAULT_MAX_REJECT_FRACTION, DEFAULT_MEMORY_LIMIT, resolve_path,
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
}

/// The settings one stage depends on, to be hashed (as JSON) when deciding whether the stage can
/// be skipped. Input files and the key fingerprint are hashed separately.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "stage", rename_all = "lowercase")]
pub enum StageSettings<'a> {
    /// `pseudonymise:<extract>`: the extract's section and every match key.
    Pseudonymise {
        /// The extract.
        extract: &'a Extract,
        /// The match keys whose tokens it writes.
        match_keys: &'a [MatchKeySpec],
    },
    /// `link`: the link section and the cascade.
    Link {
        /// `[link]`.
        link: &'a Link,
        /// The cascade.
        match_keys: &'a [MatchKeySpec],
    },
    /// `evaluate`: the evaluate section.
    Evaluate {
        /// `[evaluate]`.
        evaluate: &'a Evaluate,
    },
    /// `release`: the disclosure rules and the tables.
    Release {
        /// `[disclosure]`.
        disclosure: &'a Disclosure,
        /// `[[table]]`.
        tables: &'a [Table],
    },
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

    /// The stage graph, in an order that runs every stage after those it depends on: one
    /// `pseudonymise:<extract>` per extract, `link`, `evaluate` (if there is an `[evaluate]`
    /// section) and `release`.
    pub fn stages(&self) -> Vec<StagePlan> {
        let mut stages: Vec<StagePlan> = self
            .extracts
            .iter()
            .map(|extract| StagePlan {
                name: format!("pseudonymise:{}", extract.name),
                kind: StageKind::Pseudonymise,
                inputs: vec![extract.path.clone(), self.settings.key_file.clone()],
                outputs: vec![
                    self.pseudonymised_dir(&extract.name),
                    self.pseudonymised_manifest(&extract.name),
                ],
                depends_on: Vec::new(),
                partitionable: true,
            })
            .collect();
        let mut link_inputs = Vec::new();
        let mut link_depends = Vec::new();
        for extract in self.linked_extracts() {
            link_inputs.push(self.pseudonymised_dir(&extract.name));
            link_inputs.push(self.pseudonymised_manifest(&extract.name));
            link_depends.push(format!("pseudonymise:{}", extract.name));
        }
        link_inputs.push(self.settings.project_key_file.clone());
        stages.push(StagePlan {
            name: "link".to_owned(),
            kind: StageKind::Link,
            inputs: link_inputs,
            outputs: vec![self.linked_dir()],
            depends_on: link_depends,
            partitionable: false,
        });
        let mut release_inputs = vec![self.linked_dir()];
        let mut release_depends = vec!["link".to_owned()];
        if self.evaluate.is_some() {
            stages.push(StagePlan {
                name: "evaluate".to_owned(),
                kind: StageKind::Evaluate,
                inputs: vec![self.linked_dir()],
                outputs: vec![self.evaluation_dir()],
                depends_on: vec!["link".to_owned()],
                partitionable: false,
            });
            release_inputs.push(self.evaluation_dir());
            release_depends.push("evaluate".to_owned());
        }
        stages.push(StagePlan {
            name: "release".to_owned(),
            kind: StageKind::Release,
            inputs: release_inputs,
            outputs: vec![self.settings.release_dir.clone()],
            depends_on: release_depends,
            partitionable: false,
        });
        stages
    }

    /// The settings the stage with this name (as in [`Pipeline::stages`]) depends on; `None`
    /// for a name that is not a stage.
    pub fn stage_settings(&self, stage: &str) -> Option<StageSettings<'_>> {
        match stage {
            "link" => Some(StageSettings::Link {
                link: &self.link,
                match_keys: &self.match_key_specs,
            }),
            "evaluate" => self
                .evaluate
                .as_ref()
                .map(|evaluate| StageSettings::Evaluate { evaluate }),
            "release" => Some(StageSettings::Release {
                disclosure: &self.disclosure,
                tables: &self.tables,
            }),
            other => {
                let name = other.strip_prefix("pseudonymise:")?;
                Some(StageSettings::Pseudonymise {
                    extract: self.extract(name)?,
                    match_keys: &self.match_key_specs,
                })
            }
        }
    }
}
