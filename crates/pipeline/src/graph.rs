//! The stage graph: the one list of stages, with their names, inputs, outputs and order, that
//! `plan`, the Slurm script and the runner of `run` all follow.
//!
//! A stage's name is `pseudonymise:<extract>`, `link`, `evaluate` or `release` (what `plan`
//! prints); the runner keeps its record of a stage in `work_dir/state/<state name>.json`, whose
//! name is the stage's with `:` written `-` (`pseudonymise-<extract>`), so that it is a plain
//! file name on every file system.

use std::path::PathBuf;

use serde::Serialize;

use crate::{Disclosure, Evaluate, Extract, Link, MatchKeySpec, Pipeline, Programme, Table};

/// What a pseudonymise stage's name starts with; the extract's name follows.
const PSEUDONYMISE_PREFIX: &str = "pseudonymise:";

/// The name of the pseudonymise stage of `extract`: `pseudonymise:<extract>`.
pub fn pseudonymise_stage_name(extract: &str) -> String {
    format!("{PSEUDONYMISE_PREFIX}{extract}")
}

/// The kinds of stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    /// Stage 1, one per extract: identifiers to tokens.
    Pseudonymise,
    /// Stage 2: the match-key cascade.
    Link,
    /// Stage 3: outcomes and the impact evaluation.
    Evaluate,
    /// Stage 4: disclosure-safe tables into `release_dir`.
    Release,
}

/// One stage of the pipeline: what it reads and writes, and what must run first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagePlan {
    /// `pseudonymise:<extract>`, `link`, `evaluate` or `release`.
    pub name: String,
    /// The kind of stage.
    pub kind: StageKind,
    /// Files and folders it reads.
    pub inputs: Vec<PathBuf>,
    /// Files and folders it writes.
    pub outputs: Vec<PathBuf>,
    /// The names of the stages whose outputs it reads.
    pub depends_on: Vec<String>,
    /// Whether a scheduler may split it with `--partition I/N`.
    pub partitionable: bool,
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
        /// The comparison tokens it writes (token spec v2): present only for an extract that a
        /// probabilistic link stage compares, so a cascade pipeline's settings are unchanged.
        #[serde(skip_serializing_if = "Option::is_none")]
        comparison: Option<ComparisonSettings<'a>>,
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
        /// `[[programme]]`: copied into the release manifests (absent when there is none, so a
        /// pipeline without programmes keeps its settings).
        #[serde(skip_serializing_if = "<[Programme]>::is_empty")]
        programmes: &'a [Programme],
    },
}

/// The comparison tokens a pseudonymise stage writes: the spec version and the compared fields.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonSettings<'a> {
    /// The comparison-token spec version (`v2`).
    pub token_spec_version: &'static str,
    /// `[link] compare`, in order.
    pub compare: &'a [String],
}

impl StagePlan {
    /// The extract a pseudonymise stage reads; `None` for the other stages.
    pub fn extract(&self) -> Option<&str> {
        match self.kind {
            StageKind::Pseudonymise => self.name.strip_prefix(PSEUDONYMISE_PREFIX),
            StageKind::Link | StageKind::Evaluate | StageKind::Release => None,
        }
    }

    /// The name of the runner's state file of this stage (`work_dir/state/<name>.json`): the
    /// stage's name with `:` written `-`, e.g. `pseudonymise-releases`.
    pub fn state_name(&self) -> String {
        self.name.replace(':', "-")
    }

    /// The state name of partition `index` of `count` of this stage, e.g.
    /// `pseudonymise-releases-part-0001-of-0004`: a partition is a stage of its own to the runner.
    pub fn partition_state_name(&self, index: u32, count: u32) -> String {
        format!("{}-part-{index:04}-of-{count:04}", self.state_name())
    }
}

impl Pipeline {
    /// The stage graph, in an order that runs every stage after those it depends on: one
    /// `pseudonymise:<extract>` per extract, `link`, `evaluate` (if there is an `[evaluate]`
    /// section) and `release`.
    pub fn stages(&self) -> Vec<StagePlan> {
        let mut stages: Vec<StagePlan> = self
            .extracts
            .iter()
            .map(|extract| StagePlan {
                name: pseudonymise_stage_name(&extract.name),
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
            link_depends.push(pseudonymise_stage_name(&extract.name));
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
                programmes: &self.programmes,
            }),
            other => {
                let name = other.strip_prefix(PSEUDONYMISE_PREFIX)?;
                let compare = self.compare_fields(name);
                Some(StageSettings::Pseudonymise {
                    extract: self.extract(name)?,
                    match_keys: &self.match_key_specs,
                    comparison: (!compare.is_empty()).then_some(ComparisonSettings {
                        token_spec_version: linklab_tokens::COMPARE_SPEC_VERSION,
                        compare,
                    }),
                })
            }
        }
    }

    /// The fields whose comparison tokens (token spec v2) the pseudonymise stage of `extract`
    /// writes: `[link] compare` if the link stage compares the extract by the probabilistic
    /// method, else none.
    pub fn compare_fields(&self, extract: &str) -> &[String] {
        if self.link.extracts.iter().any(|e| e == extract) {
            self.link.method.compare()
        } else {
            &[]
        }
    }

    /// The stage with this name (as in [`Pipeline::stages`]).
    pub fn stage(&self, name: &str) -> Option<StagePlan> {
        self.stages().into_iter().find(|stage| stage.name == name)
    }

    /// The pseudonymise stage of the extract with this name.
    pub fn pseudonymise_stage(&self, extract: &str) -> Option<StagePlan> {
        self.stage(&pseudonymise_stage_name(extract))
    }
}
