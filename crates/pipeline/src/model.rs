//! The typed sections of a pipeline file, after validation.
//!
//! Every type here is `Serialize`, so a stage's settings can be hashed to decide whether it can
//! be skipped. Paths are already resolved against the pipeline file's folder.

use std::collections::BTreeMap;
use std::path::PathBuf;

use linklab_release::DisclosureRules;
use linklab_tokens::FieldKind;
use serde::{Deserialize, Serialize};

/// `[pipeline]`: the pipeline's name and where its files live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The pipeline's name, `[a-z0-9][a-z0-9_-]*`.
    pub name: String,
    /// The secure working area: tokens, linked data, the audit trail.
    pub work_dir: PathBuf,
    /// The only folder meant to leave the environment.
    pub release_dir: PathBuf,
    /// The shared linkage key (token spec v1).
    pub key_file: PathBuf,
    /// The key for project-specific person ids.
    pub project_key_file: PathBuf,
}

/// `[synth]`: synthetic extracts that `run` makes first if they are missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Synth {
    /// How many people the synthetic world holds (at least 1).
    pub people: u64,
    /// The random seed.
    pub seed: u64,
    /// Where the extracts (and `truth/`) are written.
    pub out_dir: PathBuf,
    /// The identifier noise of the synthetic extracts (`linklab synth --noise`).
    #[serde(default, skip_serializing_if = "SynthNoise::is_standard")]
    pub noise: SynthNoise,
}

/// `[synth] noise`: `"standard"` (the default) or `"heavy"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthNoise {
    /// The demo's noise.
    #[default]
    Standard,
    /// A harder world (see `linklab synth --help`).
    Heavy,
}

impl SynthNoise {
    /// Whether this is the default level.
    pub fn is_standard(&self) -> bool {
        *self == SynthNoise::Standard
    }

    /// The level's name, as written in a pipeline and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SynthNoise::Standard => "standard",
            SynthNoise::Heavy => "heavy",
        }
    }
}

/// One `[[match_key]]`, as written. [`crate::Pipeline::match_keys`] gives the parsed form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchKeySpec {
    /// The key's name, `[a-z][a-z0-9_]*`.
    pub name: String,
    /// The components, such as `"soundex(surname)"`, each naming a declared identifier.
    pub fields: Vec<String>,
    /// Accept the key even though its estimated entropy is low.
    #[serde(default)]
    pub allow_weak: bool,
}

/// The file format of an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma- (or [`Extract::delimiter`]-) separated text.
    Csv,
    /// Apache Parquet.
    Parquet,
}

/// The text encoding of a CSV extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Encoding {
    /// UTF-8 (the default).
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// Windows code page 1252.
    #[serde(rename = "windows-1252")]
    Windows1252,
}

/// The type a kept column is read as (declared once, in the stage that parses it).
pub use linklab_pseudonymise::ColumnType;

/// One identifier of an extract: the column that holds it and its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    /// The column of the extract.
    pub column: String,
    /// What the column holds; chooses the standardisation rule.
    #[serde(with = "field_kind")]
    pub kind: FieldKind,
}

/// One `[[extract]]`: a department's file and how to read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extract {
    /// The extract's name, `[a-z][a-z0-9_]*` (not `persons` or `evaluation`).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// Its format: as written, or from the path's extension.
    pub format: Format,
    /// The encoding of a CSV file.
    pub encoding: Encoding,
    /// The CSV delimiter: one ASCII character, not a quote or a line break.
    pub delimiter: char,
    /// The identifiers, by the name match keys use (`surname`), in name order.
    ///
    /// An extract need not declare every field of every match key: where it lacks one, its
    /// tokens for that key are null, so the key cannot link its records. It must declare all
    /// fields of at least one key.
    pub identifiers: BTreeMap<String, Identifier>,
    /// The attribute columns that pass through; all other columns are dropped.
    pub keep: Vec<String>,
    /// Types for some kept columns; the others are read as text.
    pub types: BTreeMap<String, ColumnType>,
    /// The largest fraction of rows that may be rejected before the stage fails, in [0, 1].
    pub max_reject_fraction: f64,
}

impl Extract {
    /// The identifier declared under this name.
    pub fn identifier(&self, name: &str) -> Option<&Identifier> {
        self.identifiers.get(name)
    }

    /// Whether the extract keeps this column.
    pub fn keeps(&self, column: &str) -> bool {
        self.keep.iter().any(|kept| kept == column)
    }

    /// The delimiter as a byte (it is ASCII, checked when the file was loaded).
    pub fn delimiter_byte(&self) -> u8 {
        u8::try_from(self.delimiter).expect("the delimiter was checked to be ASCII")
    }
}

/// `[link]`: how extracts are linked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// The extract whose persons every other extract is linked to.
    pub spine: String,
    /// The memory the link stage may use, in bytes (default 4 GiB).
    pub memory_limit: u64,
    /// The most records of the spine one person may gather (default 10).
    pub max_cluster_size: u64,
    /// The extracts that are linked, spine included, in file order (default: all).
    pub extracts: Vec<String>,
    /// `[link.spark]`: how `linklab link --engine spark` launches its Spark job. Left out of the
    /// stage's settings digest: both engines give the same linked datasets.
    #[serde(skip_serializing)]
    pub spark: Option<LinkSpark>,
    /// How records are matched (default: the match-key cascade). Left out of the settings digest
    /// when it is the cascade, so a first-version pipeline keeps its digest.
    #[serde(skip_serializing_if = "LinkMethod::is_cascade")]
    pub method: LinkMethod,
}

/// `[link] method`: how the link stage decides that two records are the same person.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// The match-key cascade: a record links when every field of some match key agrees.
    Cascade,
    /// A Fellegi–Sunter model over per-field comparison tokens (token spec v2).
    Probabilistic(Probabilistic),
}

impl LinkMethod {
    /// Whether this is the match-key cascade.
    pub fn is_cascade(&self) -> bool {
        matches!(self, LinkMethod::Cascade)
    }

    /// The identifier names that get comparison tokens: none for the cascade.
    pub fn compare(&self) -> &[String] {
        match self {
            LinkMethod::Cascade => &[],
            LinkMethod::Probabilistic(probabilistic) => &probabilistic.compare,
        }
    }
}

/// The settings of `method = "probabilistic"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probabilistic {
    /// The identifier names compared field by field, in the order the file lists them (default:
    /// every identifier that every linked extract declares, sorted by name). Each is declared by
    /// every linked extract.
    pub compare: Vec<String>,
    /// A record links to a person when the model's match probability is at least this, in (0, 1)
    /// (default 0.95).
    pub match_probability: f64,
}

/// `[link.spark]`: the Spark job of `linklab link --engine spark`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpark {
    /// The Spark master, as `spark-submit --master` takes it (default `"local[2]"`).
    #[serde(default = "default_spark_master")]
    pub master: String,
    /// Spark settings, as `spark-submit --conf key=value` takes them.
    #[serde(default)]
    pub conf: BTreeMap<String, String>,
    /// A Python interpreter that has `pyspark` (default: `LINKLAB_SPARK_PYTHON`, else the
    /// nearest `.venv-spark/`, else `python3`).
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// `spark-submit` to launch the job with (default: run the job with `python` directly).
    #[serde(default)]
    pub spark_submit: Option<PathBuf>,
}

impl Default for LinkSpark {
    fn default() -> Self {
        Self {
            master: default_spark_master(),
            conf: BTreeMap::new(),
            python: None,
            spark_submit: None,
        }
    }
}

fn default_spark_master() -> String {
    "local[2]".to_owned()
}

/// `[disclosure]`: the rules for published statistics, as the file has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Disclosure {
    /// A count of persons below this is suppressed (at least 1; default 10).
    pub threshold: u64,
    /// A zero count is suppressed too (default true).
    pub zeros_disclosive: bool,
    /// Published counts are rounded to a multiple of this (at least 1; default 1).
    pub round_to: u64,
    /// The (n, k) dominance rule's n: the largest contributors considered (default 2).
    pub dominance_n: u64,
    /// The (n, k) dominance rule's k: the share of the total they may not reach, in (0, 1]
    /// (default 0.9).
    pub dominance_k: f64,
    /// The p% rule's p, as a fraction in [0, 1] (default 0.10).
    pub p_percent: f64,
    /// Whether a `threshold` below 5 is accepted (default false): a deliberate, agreed choice.
    pub allow_low_threshold: bool,
}

/// The defaults are release's ([`DisclosureRules::default`]), declared there once; only
/// `allow_low_threshold` is the pipeline file's own.
impl Default for Disclosure {
    fn default() -> Self {
        let rules = DisclosureRules::default();
        Self {
            threshold: rules.threshold,
            zeros_disclosive: rules.zeros_disclosive,
            round_to: rules.round_to,
            dominance_n: rules.dominance_n as u64,
            dominance_k: rules.dominance_k,
            p_percent: rules.p_percent,
            allow_low_threshold: false,
        }
    }
}

impl Disclosure {
    /// The rules the release stage applies.
    pub fn rules(&self) -> DisclosureRules {
        DisclosureRules {
            threshold: self.threshold,
            zeros_disclosive: self.zeros_disclosive,
            round_to: self.round_to,
            dominance_n: usize::try_from(self.dominance_n).unwrap_or(DisclosureRules::default().dominance_n),
            dominance_k: self.dominance_k,
            p_percent: self.p_percent,
        }
    }
}

/// One `[[table]]`: a table of person counts to release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The table's name, `[a-z][a-z0-9_]*`; it is released as `<name>.csv`.
    pub name: String,
    /// A linked extract, `"persons"` or `"evaluation"`.
    pub from: String,
    /// The grouping columns; a `Total` margin is added for each.
    pub by: Vec<String>,
    /// An optional magnitude column, summed per cell (dominance rules apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
}

/// `[evaluate]`: the impact evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluate {
    /// The extract whose linked records form the cohort.
    pub cohort: String,
    /// The cohort's column holding each record's index date.
    pub index_date: String,
    /// The extract whose linked persons are treated, or a list of them: one programme each,
    /// evaluated against the same cohort and outcomes.
    pub treatment: Treatment,
    /// The cohort columns the propensity model uses.
    pub covariates: Vec<String>,
    /// Outcomes are measured over this many days after the index date (default 365).
    #[serde(default = "default_follow_up_days")]
    pub follow_up_days: u64,
    /// The fewest treated persons an evaluation needs (default 60).
    #[serde(default = "default_min_treated")]
    pub min_treated: u64,
    /// The matching caliper, in standard deviations of the logit of the propensity score
    /// (default 0.2).
    #[serde(default = "default_caliper")]
    pub caliper: f64,
    /// k for k:1 matching (default 1).
    #[serde(default = "default_ratio")]
    pub ratio: u64,
    /// Whether a comparison person may be matched more than once (default false).
    #[serde(default)]
    pub replacement: bool,
    /// The outcomes, `[[evaluate.outcome]]` (at least one).
    #[serde(rename = "outcome", default)]
    pub outcomes: Vec<Outcome>,
    /// `data_cutoff = "YYYY-MM-DD"`: the last day the extracts cover. A person whose window runs
    /// past it is left out of window outcomes and censored at it for time to event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_cutoff: Option<String>,
    /// `treatment_date = "<column>"`: the treatment extract's programme start column; a treated
    /// person's index event is chosen relative to their start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment_date: Option<String>,
    /// `deaths = "<extract>"`: a linked extract of deaths (with `deaths_date`). A person who dies
    /// during an outcome's window is left out of it, or censored at death for time to event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deaths: Option<String>,
    /// `deaths_date = "<column>"`: the deaths extract's date of death column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deaths_date: Option<String>,
}

/// `[evaluate] treatment`: one extract, or a list of extracts (one programme each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Treatment {
    /// `treatment = "participants"`: one programme, released in `release_dir` itself.
    One(String),
    /// `treatment = ["a", "b"]`: several programmes; with two or more, each is released under
    /// `release_dir/<extract>/`.
    Many(Vec<String>),
}

impl Treatment {
    /// The treatment extracts, in file order.
    pub fn extracts(&self) -> &[String] {
        match self {
            Treatment::One(extract) => std::slice::from_ref(extract),
            Treatment::Many(extracts) => extracts,
        }
    }

    /// Whether there are several programmes, each released in its own folder.
    pub fn is_several(&self) -> bool {
        self.extracts().len() > 1
    }
}

/// One `[[programme]]`: what the dashboard shows about a treatment extract's programme. It is
/// copied into the programme's release manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// The treatment extract it describes.
    pub extract: String,
    /// The programme's name (unique in the pipeline).
    pub name: String,
    /// Who runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// Its type ("education", "employment support", "mentoring", ...): the dashboard pools
    /// programmes of one type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// When it started, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// When it ended, `YYYY-MM-DD` (absent while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// One line about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_follow_up_days() -> u64 {
    365
}
fn default_min_treated() -> u64 {
    60
}
fn default_caliper() -> f64 {
    0.2
}
fn default_ratio() -> u64 {
    1
}

/// How an outcome is measured from its extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// 1 if an event (`date`) falls within the follow-up, else 0.
    EventWithin,
    /// 1 if a spell (`start`..`end`) overlaps the follow-up, else 0.
    SpellOverlap,
    /// The days of the follow-up covered by spells (`start`..`end`).
    SpellDays,
    /// The days from the index date to the first event (`date`), censored at the follow-up.
    TimeToEvent,
    /// The number of events (`date`) within the follow-up.
    EventCount,
    /// 1 if a spell (`start`..`end`) covers day `day` after the index date, else 0.
    SpellAt,
}

impl OutcomeKind {
    /// The kind's label as written in pipeline files (`"spell_days"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::EventWithin => "event_within",
            OutcomeKind::SpellOverlap => "spell_overlap",
            OutcomeKind::SpellDays => "spell_days",
            OutcomeKind::TimeToEvent => "time_to_event",
            OutcomeKind::EventCount => "event_count",
            OutcomeKind::SpellAt => "spell_at",
        }
    }

    /// Whether the outcome reads events (`date`) rather than spells (`start`, `end`).
    pub fn is_event(self) -> bool {
        matches!(
            self,
            OutcomeKind::EventWithin | OutcomeKind::TimeToEvent | OutcomeKind::EventCount
        )
    }
}

/// A `YYYY-MM-DD` date as days since 1970-01-01, or `None` when it is not one.
pub fn parse_day(text: &str) -> Option<i32> {
    if text.len() != 10 {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((date - epoch).num_days()).ok()
}

/// `unknown` of an outcome: what a person the outcome's extract never holds counts as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unknown {
    /// No record is no event, no spell, zero days (the default).
    #[default]
    Zero,
    /// The person is left out of this outcome (and counted).
    Exclude,
}

/// One `[[evaluate.outcome]]`.
///
/// Event kinds have `date` set and no `start`/`end`; spell kinds have `start` and `end` set and
/// no `date` (checked when the file is loaded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// The outcome's name, `[a-z][a-z0-9_]*`; it becomes a column of the evaluation frame.
    pub name: String,
    /// How it is measured.
    pub kind: OutcomeKind,
    /// The linked extract it is measured from.
    pub extract: String,
    /// The event date column (event kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The spell start column (spell kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The spell end column (spell kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Only records whose column holds one of the listed values count (`where` in the file).
    #[serde(rename = "where", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, Vec<String>>,
    /// `spell_at`: the day after the index date a spell must cover (1 ..= the follow-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u64>,
    /// This outcome's follow-up in days, overriding `[evaluate] follow_up_days`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_days: Option<u64>,
    /// What a person the extract never holds counts as (default `"zero"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<Unknown>,
}

impl Outcome {
    /// The outcome's follow-up: its own `follow_up_days`, else `[evaluate] follow_up_days`.
    pub fn follow_up(&self, evaluate: &Evaluate) -> u64 {
        self.follow_up_days.unwrap_or(evaluate.follow_up_days)
    }
}

/// Serde for [`FieldKind`] as its label (`"dob"`), since the tokens crate has no serde.
mod field_kind {
    use linklab_tokens::FieldKind;
    use serde::{Deserialize, Deserializer, Serializer};

    const LABELS: &[&str] = &["name", "forename", "dob", "sex", "nino", "postcode", "id"];

    // serde's `with` calls this with a reference, whatever the type's size.
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub fn serialize<S: Serializer>(kind: &FieldKind, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<FieldKind, D::Error> {
        let text = String::deserialize(deserializer)?;
        FieldKind::parse(&text).ok_or_else(|| serde::de::Error::unknown_variant(&text, LABELS))
    }
}
