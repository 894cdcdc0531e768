//! `[[extract]]` and `[[match_key]]`: names, paths, identifiers, kept columns and match keys.

use std::collections::BTreeMap;

use linklab_tokens::{Component, FieldKind, MAX_MATCH_KEYS, MatchKey};

use super::{
    Checked, Checker, DEFAULT_MAX_REJECT_FRACTION, RESERVED_SOURCES, RawExtract, is_snake_name, listing,
    same_column,
};
use crate::model::{Extract, Format, MatchKeySpec};

impl Checker<'_> {
    pub(super) fn extracts(&self, raw: Vec<RawExtract>) -> Checked<Vec<Extract>> {
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

    pub(super) fn extract(&self, raw: RawExtract) -> Checked<Extract> {
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
    pub(super) fn identifier_kinds(
        &self,
        extracts: &[Extract],
    ) -> Checked<BTreeMap<String, (FieldKind, String)>> {
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

    pub(super) fn match_keys(
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
    pub(super) fn extracts_are_linkable(&self, extracts: &[Extract], specs: &[MatchKeySpec]) -> Checked<()> {
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
}
