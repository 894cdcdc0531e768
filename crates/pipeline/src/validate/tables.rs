//! `[[table]]`: names, sources and the columns they group by and sum.

use std::collections::BTreeSet;

use super::{Checked, Checker, EVALUATION_COLUMNS, RESERVED_TABLE_NAMES, is_snake_name, listing};
use crate::Pipeline;

impl Checker<'_> {
    pub(super) fn tables(&self, pipeline: &Pipeline) -> Checked<()> {
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
