//! `[evaluate]`: the cohort, treatment, covariates, matching settings and outcomes.

use super::{Checked, Checker, EVALUATION_COLUMNS, is_snake_name};
use crate::Pipeline;
use crate::model::Evaluate;

impl Checker<'_> {
    pub(super) fn evaluate(&self, pipeline: &Pipeline, evaluate: &Evaluate) -> Checked<()> {
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
}
