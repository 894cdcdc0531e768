//! `[evaluate]`: the cohort, treatment, covariates, matching settings and outcomes.

use super::{Checked, Checker, EVALUATION_COLUMNS, is_snake_name, listing};
use crate::Pipeline;
use crate::model::{Evaluate, Outcome, OutcomeKind, Treatment};

impl Checker<'_> {
    pub(super) fn evaluate(&self, pipeline: &Pipeline, evaluate: &Evaluate) -> Checked<()> {
        let cohort = self.linked_extract(pipeline, "evaluate.cohort", &evaluate.cohort)?;
        self.kept(cohort, "evaluate.index_date", &evaluate.index_date)?;
        self.treatments(pipeline, evaluate)?;
        self.deaths(pipeline, evaluate)?;
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
        if let Some(cutoff) = &evaluate.data_cutoff
            && crate::model::parse_day(cutoff).is_none()
        {
            return Err(self.invalid(
                "evaluate.data_cutoff",
                "expected a date written YYYY-MM-DD, such as \"2024-03-31\"",
            ));
        }
        for outcome in &evaluate.outcomes {
            self.outcome(pipeline, evaluate, outcome)?;
        }
        Ok(())
    }

    /// `deaths` and `deaths_date`: both or neither; a linked extract other than the cohort, and
    /// a column it keeps.
    /// `treatment`: one linked extract or a non-empty list of distinct ones, none the cohort,
    /// each keeping `treatment_date` if it is set.
    fn treatments(&self, pipeline: &Pipeline, evaluate: &Evaluate) -> Checked<()> {
        let several = matches!(evaluate.treatment, Treatment::Many(_));
        let key = |index: usize| {
            if several {
                format!("evaluate.treatment[{index}]")
            } else {
                "evaluate.treatment".to_owned()
            }
        };
        let extracts = evaluate.treatment.extracts();
        if extracts.is_empty() {
            return Err(self.invalid("evaluate.treatment", "expected at least one treatment extract"));
        }
        self.unique(extracts.iter().map(String::as_str), "treatment extract", key)?;
        for (index, name) in extracts.iter().enumerate() {
            let treatment = self.linked_extract(pipeline, &key(index), name)?;
            if *name == evaluate.cohort {
                return Err(self.invalid(
                    key(index),
                    format!("expected an extract other than the cohort, found `{name}`"),
                ));
            }
            if let Some(column) = &evaluate.treatment_date {
                self.kept(treatment, "evaluate.treatment_date", column)?;
            }
        }
        Ok(())
    }

    /// `[[programme]]`: each describes one treatment extract, at most one per extract, with a
    /// unique, printable name and dates written `YYYY-MM-DD` (the end not before the start).
    pub(super) fn programmes(&self, pipeline: &Pipeline) -> Checked<()> {
        let programmes = &pipeline.programmes;
        if programmes.is_empty() {
            return Ok(());
        }
        let Some(evaluate) = &pipeline.evaluate else {
            return Err(self.invalid(
                "programme[0]",
                "expected an [evaluate] section: a [[programme]] describes a treatment extract",
            ));
        };
        let treatments = evaluate.treatment.extracts();
        for (index, programme) in programmes.iter().enumerate() {
            if !treatments.contains(&programme.extract) {
                return Err(self.invalid(
                    format!("programme[{index}].extract"),
                    format!(
                        "expected a treatment extract ({}), found `{}`",
                        listing(treatments.iter().map(String::as_str)),
                        programme.extract
                    ),
                ));
            }
            let texts = [
                ("name", Some(&programme.name)),
                ("organisation", programme.organisation.as_ref()),
                ("type", programme.kind.as_ref()),
                ("description", programme.description.as_ref()),
            ];
            for (field, text) in texts {
                if text.is_some_and(|t| t.trim().is_empty() || t.chars().any(char::is_control)) {
                    return Err(self.invalid(
                        format!("programme[{index}].{field}"),
                        "expected one line of text, not empty and without control characters",
                    ));
                }
            }
            for (field, date) in [("start", &programme.start), ("end", &programme.end)] {
                if date
                    .as_deref()
                    .is_some_and(|d| crate::model::parse_day(d).is_none())
                {
                    return Err(self.invalid(
                        format!("programme[{index}].{field}"),
                        "expected a date written YYYY-MM-DD, such as \"2023-04-01\"",
                    ));
                }
            }
            if let (Some(start), Some(end)) = (&programme.start, &programme.end)
                && crate::model::parse_day(end) < crate::model::parse_day(start)
            {
                return Err(self.invalid(
                    format!("programme[{index}].end"),
                    format!("expected a date on or after the start ({start}), found {end}"),
                ));
            }
        }
        self.unique(
            programmes.iter().map(|p| p.extract.as_str()),
            "programme extract",
            |i| format!("programme[{i}].extract"),
        )?;
        self.unique(programmes.iter().map(|p| p.name.trim()), "programme name", |i| {
            format!("programme[{i}].name")
        })
    }

    fn deaths(&self, pipeline: &Pipeline, evaluate: &Evaluate) -> Checked<()> {
        match (&evaluate.deaths, &evaluate.deaths_date) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(self.invalid(
                "evaluate.deaths_date",
                "expected the deaths extract's date of death column: deaths is set",
            )),
            (None, Some(_)) => Err(self.invalid(
                "evaluate.deaths",
                "expected the name of the deaths extract: deaths_date is set",
            )),
            (Some(name), Some(column)) => {
                if *name == evaluate.cohort {
                    return Err(self.invalid(
                        "evaluate.deaths",
                        format!("expected an extract other than the cohort, found `{name}`"),
                    ));
                }
                let extract = self.linked_extract(pipeline, "evaluate.deaths", name)?;
                self.kept(extract, "evaluate.deaths_date", column)
            }
        }
    }

    /// One `[[evaluate.outcome]]`: its extract, the columns its kind reads, `where`, and its
    /// window (`follow_up_days`, `day`).
    fn outcome(&self, pipeline: &Pipeline, evaluate: &Evaluate, outcome: &Outcome) -> Checked<()> {
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
        self.window(evaluate, outcome)
    }

    /// `follow_up_days` of an outcome (at least 1) and `day` (`spell_at` only, within the
    /// follow-up).
    fn window(&self, evaluate: &Evaluate, outcome: &Outcome) -> Checked<()> {
        let at = |key: &str| format!("evaluate.outcome \"{}\".{key}", outcome.name);
        if outcome.follow_up_days == Some(0) {
            return Err(self.invalid(at("follow_up_days"), "expected at least 1"));
        }
        let follow_up = outcome.follow_up(evaluate);
        match (outcome.kind, outcome.day) {
            (OutcomeKind::SpellAt, None) => Err(self.invalid(
                at("day"),
                "expected a day after the index date: an outcome of kind spell_at reads whether a spell covers that day",
            )),
            (OutcomeKind::SpellAt, Some(day)) if day == 0 || day > follow_up => Err(self.invalid(
                at("day"),
                format!("expected a day from 1 to the outcome's follow-up of {follow_up} days, found {day}"),
            )),
            (OutcomeKind::SpellAt, Some(_)) | (_, None) => Ok(()),
            (kind, Some(_)) => Err(self.invalid(
                at("day"),
                format!("expected no day for an outcome of kind {}: only spell_at reads one", kind.as_str()),
            )),
        }
    }
}
