//! The settings of the evaluation stage: `[evaluate]` and its outcomes.

use std::collections::BTreeMap;

use linklab_store::WorkDir;

use crate::{EvaluateError, output};

/// How an outcome is measured over the follow-up window `(index, index + follow_up_days]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeKind {
    /// 1 if an event (a record's `date`) falls in the window, else 0.
    EventWithin {
        /// The linked extract.
        extract: String,
        /// The event date column.
        date: String,
    },
    /// 1 if any spell `[start, end]` overlaps the window (an empty end: still open), else 0.
    SpellOverlap {
        /// The linked extract.
        extract: String,
        /// The spell start column.
        start: String,
        /// The spell end column.
        end: String,
    },
    /// Days of the window covered by spells, overlaps merged.
    SpellDays {
        /// The linked extract.
        extract: String,
        /// The spell start column.
        start: String,
        /// The spell end column.
        end: String,
    },
    /// Days to the first event in the window (Kaplan–Meier), censored at `follow_up_days`.
    TimeToEvent {
        /// The linked extract.
        extract: String,
        /// The event date column.
        date: String,
    },
    /// The number of events in the window (the JDL's frequency).
    EventCount {
        /// The linked extract.
        extract: String,
        /// The event date column.
        date: String,
    },
    /// 1 if a spell `[start, end]` covers day `day` after the index date (an empty end: still
    /// open), else 0.
    SpellAt {
        /// The linked extract.
        extract: String,
        /// The spell start column.
        start: String,
        /// The spell end column.
        end: String,
        /// The day after the index date, `1 ..= follow-up`.
        day: u32,
    },
}

impl OutcomeKind {
    /// The linked extract the outcome is measured from.
    pub fn extract(&self) -> &str {
        match self {
            Self::EventWithin { extract, .. }
            | Self::SpellOverlap { extract, .. }
            | Self::SpellDays { extract, .. }
            | Self::TimeToEvent { extract, .. }
            | Self::EventCount { extract, .. }
            | Self::SpellAt { extract, .. } => extract,
        }
    }
}

/// An outcome of `[[evaluate.outcome]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The outcome's name: its frame column and its label in the outputs.
    pub name: String,
    /// What is measured.
    pub kind: OutcomeKind,
    /// `where`: only records whose column (as text) is one of the listed values count.
    pub filter: BTreeMap<String, Vec<String>>,
    /// The outcome's own follow-up in days; `None`: [`EvaluateConfig::follow_up_days`].
    pub follow_up_days: Option<u32>,
    /// What a person the extract never holds counts as.
    pub unknown: Unknown,
}

impl Outcome {
    /// An outcome with no filter, the evaluation's follow-up and `unknown = "zero"`.
    pub fn new(name: &str, kind: OutcomeKind) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            filter: BTreeMap::new(),
            follow_up_days: None,
            unknown: Unknown::Zero,
        }
    }
}

/// What a person the outcome's extract never holds (no linked record at all, whatever the
/// dates and the `where` filter) counts as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unknown {
    /// No event, no spell, zero days.
    #[default]
    Zero,
    /// Left out of this outcome, and counted.
    Exclude,
}

/// `[evaluate] deaths` and `deaths_date`: a linked extract of deaths and its date column. A
/// person's date of death is the earliest date of their linked records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deaths {
    /// The linked extract.
    pub extract: String,
    /// The date of death column.
    pub date: String,
}

/// The settings of the evaluation stage (`[evaluate]` of the pipeline file).
#[derive(Debug, Clone)]
pub struct EvaluateConfig {
    /// The cohort (spine) extract: each person's index event comes from it.
    pub cohort: String,
    /// The cohort's index date column.
    pub index_date: String,
    /// The extract whose linked persons are the treated group.
    pub treatment: String,
    /// Cohort columns used as covariates (text columns are categorical).
    pub covariates: Vec<String>,
    /// Length of the follow-up window in days (365).
    pub follow_up_days: u32,
    /// The minimum number of matched treated persons for an estimate (60).
    pub min_treated: usize,
    /// The caliper in standard deviations of the logit of the propensity score (0.2).
    pub caliper: f64,
    /// Comparisons per treated person, k for k:1 matching (1).
    pub ratio: usize,
    /// Whether comparison persons may be matched more than once (false).
    pub replacement: bool,
    /// The outcomes.
    pub outcomes: Vec<Outcome>,
    /// Disclosure threshold for the candidate outputs (10).
    pub threshold: u64,
    /// The run date as days since 1970-01-01; `None` (the default) is today's date (UTC).
    /// Cohort persons whose follow-up window ends after it are left out and counted.
    pub today: Option<i32>,
    /// `data_cutoff` as days since 1970-01-01: the last day the extracts cover. A person whose
    /// window of an outcome runs past it is left out of that outcome (window outcomes) or
    /// censored at it (time to event), and counted.
    pub data_cutoff: Option<i32>,
    /// `treatment_date`: the treatment extract's column holding each record's programme start;
    /// a treated person's index event is then chosen relative to it (see [`crate::BEFORE_START_DAYS`]).
    pub treatment_date: Option<String>,
    /// `deaths`: a person who dies during an outcome's window is left out of that outcome
    /// (window outcomes) or censored at death (time to event), and counted, as with
    /// `data_cutoff`.
    pub deaths: Option<Deaths>,
    /// The pipeline's `work_dir`.
    pub work_dir: WorkDir,
    /// Where the evaluation is written: `work_dir/evaluation/`, or with several programmes
    /// `work_dir/evaluation/<treatment extract>/`.
    pub out_dir: std::path::PathBuf,
}

impl EvaluateConfig {
    /// Settings with the documented defaults and no covariates or outcomes.
    pub fn new(work_dir: WorkDir, cohort: &str, index_date: &str, treatment: &str) -> Self {
        Self {
            cohort: cohort.to_owned(),
            index_date: index_date.to_owned(),
            treatment: treatment.to_owned(),
            covariates: Vec::new(),
            follow_up_days: 365,
            min_treated: 60,
            caliper: 0.2,
            ratio: 1,
            replacement: false,
            outcomes: Vec::new(),
            threshold: 10,
            today: None,
            data_cutoff: None,
            treatment_date: None,
            deaths: None,
            out_dir: work_dir.evaluation(),
            work_dir,
        }
    }

    /// An outcome's follow-up: its own, else [`EvaluateConfig::follow_up_days`].
    pub fn outcome_follow_up(&self, outcome: &Outcome) -> u32 {
        outcome.follow_up_days.unwrap_or(self.follow_up_days)
    }

    /// Outcomes measured over another window than `follow_up_days`, by name: their own
    /// follow-up, and for `spell_at` the day read (for the report's wording).
    pub(crate) fn outcome_windows(&self) -> BTreeMap<String, (u32, Option<u32>)> {
        self.outcomes
            .iter()
            .filter_map(|o| {
                let day = match o.kind {
                    OutcomeKind::SpellAt { day, .. } => Some(day),
                    _ => None,
                };
                let follow_up = self.outcome_follow_up(o);
                (follow_up != self.follow_up_days || day.is_some())
                    .then(|| (o.name.clone(), (follow_up, day)))
            })
            .collect()
    }

    /// The longest follow-up of any outcome (and at least `follow_up_days`).
    pub fn longest_follow_up(&self) -> u32 {
        self.outcomes
            .iter()
            .map(|o| self.outcome_follow_up(o))
            .fold(self.follow_up_days, u32::max)
    }

    pub(crate) fn validate(&self) -> Result<(), EvaluateError> {
        if self.follow_up_days == 0 {
            return Err(EvaluateError::config("follow_up_days must be at least 1"));
        }
        if self.ratio == 0 {
            return Err(EvaluateError::config("ratio must be at least 1"));
        }
        if !(self.caliper.is_finite() && self.caliper > 0.0) {
            return Err(EvaluateError::config(
                "caliper must be a positive number of standard deviations",
            ));
        }
        if let Some(deaths) = &self.deaths
            && deaths.extract == self.cohort
        {
            return Err(EvaluateError::config(
                "the deaths extract must differ from the cohort extract",
            ));
        }
        if self.cohort == self.treatment {
            return Err(EvaluateError::config(
                "the treatment extract must differ from the cohort extract",
            ));
        }
        let names = output::column_names(
            &self.covariates,
            &self
                .outcomes
                .iter()
                .map(|o| (o.name.clone(), matches!(o.kind, OutcomeKind::TimeToEvent { .. })))
                .collect::<Vec<_>>(),
        );
        for outcome in &self.outcomes {
            let follow_up = self.outcome_follow_up(outcome);
            if follow_up == 0 {
                return Err(EvaluateError::config(format!(
                    "the follow_up_days of outcome {} must be at least 1",
                    outcome.name
                )));
            }
            if let OutcomeKind::SpellAt { day, .. } = outcome.kind
                && !(1..=follow_up).contains(&day)
            {
                return Err(EvaluateError::config(format!(
                    "the day of outcome {} must be from 1 to its follow-up of {follow_up} days",
                    outcome.name
                )));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in &names {
            if name.is_empty() {
                return Err(EvaluateError::config("a covariate or outcome name is empty"));
            }
            if !seen.insert(name) {
                return Err(EvaluateError::config(format!(
                    "the frame column {name} would appear twice; rename the covariate or outcome"
                )));
            }
        }
        Ok(())
    }
}
