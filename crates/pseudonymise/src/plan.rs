//! Planning: what the configuration resolves to before anything is read, and the second guard
//! that identifiers leave the stage only as tokens.

use linklab_tokens::{FieldKind, MatchKey, Variant};

use crate::{ColumnType, MAX_PARTITIONS, MatchKeySummary, PseudonymiseConfig, PseudonymiseError};

/// An identifier to standardise: the batch column that holds it, and its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentPlan {
    pub column: usize,
    pub kind: FieldKind,
}

/// A match key to compute: for each component, the index of its identifier.
#[derive(Debug, Clone)]
pub(crate) struct KeyPlan {
    pub key: MatchKey,
    pub fields: Vec<usize>,
}

/// A compared field (token spec v2): its identifier's index and its name and kind.
#[derive(Debug, Clone)]
pub(crate) struct ComparePlan {
    pub ident: usize,
    pub field: String,
    pub kind: FieldKind,
}

impl ComparePlan {
    /// Whether the field's values repeat from record to record (names, dates of birth,
    /// postcodes), unlike reference numbers (NI numbers, ids), which are nearly unique.
    pub(crate) fn values_repeat(&self) -> bool {
        !matches!(self.kind, FieldKind::Nino | FieldKind::Id)
    }

    /// The field's comparison columns, in order: name and variant.
    pub(crate) fn columns(&self) -> impl Iterator<Item = (String, Variant)> + '_ {
        Variant::of_kind(self.kind)
            .iter()
            .map(|&variant| (variant.column_name(&self.field), variant))
    }
}

/// A keep column: its name and batch column, and the type declared for it.
#[derive(Debug, Clone)]
pub(crate) struct KeepPlan {
    pub(crate) name: String,
    pub(crate) column: usize,
    pub(crate) declared: Option<ColumnType>,
    /// Whether the column is the extract's `sex` identifier, which leaves the stage only as its
    /// standardised value (`M`, `F` or null). Set by [`resolve_keep`] once the reader has
    /// matched the columns against the file.
    pub(crate) standardised_sex: bool,
}

/// What the configuration resolves to before anything is read.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The columns the reader yields, each once.
    pub(crate) columns: Vec<String>,
    pub(crate) idents: Vec<IdentPlan>,
    pub(crate) keys: Vec<KeyPlan>,
    pub(crate) key_summaries: Vec<MatchKeySummary>,
    /// The compared fields (token spec v2), in the configured order.
    pub(crate) compare: Vec<ComparePlan>,
    pub(crate) keep: Vec<KeepPlan>,
}

/// `[a-z][a-z0-9_]*`
pub(crate) fn is_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Checks the run's own settings: the extract's name, the partition, `max_reject_fraction` and
/// `batch_rows`.
fn check_settings(cfg: &PseudonymiseConfig) -> Result<(), PseudonymiseError> {
    let bad = |reason: String| PseudonymiseError::Config {
        extract: cfg.extract.clone(),
        reason,
    };
    if !is_name(&cfg.extract) {
        return Err(bad("the extract name must match [a-z][a-z0-9_]*".into()));
    }
    if let Some((index, count)) = cfg.partition
        && !(1..=count).contains(&index)
    {
        return Err(bad(format!(
            "partition {index}/{count} does not exist: the partition number must be between 1 and the number of partitions"
        )));
    }
    if cfg.partition.is_some_and(|(_, count)| count > MAX_PARTITIONS) {
        return Err(bad(format!("at most {MAX_PARTITIONS} partitions are supported")));
    }
    if !(0.0..=1.0).contains(&cfg.max_reject_fraction) {
        return Err(bad(format!(
            "max_reject_fraction must be between 0 and 1, not {}",
            cfg.max_reject_fraction
        )));
    }
    if cfg.batch_rows == 0 {
        return Err(bad("batch_rows must be at least 1".into()));
    }
    Ok(())
}

pub(crate) fn plan(cfg: &PseudonymiseConfig) -> Result<Plan, PseudonymiseError> {
    let bad = |reason: String| PseudonymiseError::Config {
        extract: cfg.extract.clone(),
        reason,
    };
    check_settings(cfg)?;
    let mut columns: Vec<String> = Vec::new();
    let mut column_index = |name: &str| {
        if let Some(i) = columns.iter().position(|c| c == name) {
            i
        } else {
            columns.push(name.to_owned());
            columns.len() - 1
        }
    };

    let mut idents = Vec::with_capacity(cfg.identifiers.len());
    for (i, ident) in cfg.identifiers.iter().enumerate() {
        if cfg.identifiers[..i].iter().any(|other| other.name == ident.name) {
            return Err(bad(format!("identifier `{}` is declared twice", ident.name)));
        }
        idents.push(IdentPlan {
            column: column_index(&ident.column),
            kind: ident.kind,
        });
    }
    let kind_of = |field: &str| cfg.identifiers.iter().find(|i| i.name == field).map(|i| i.kind);

    let mut keys = Vec::new();
    let mut key_summaries = Vec::with_capacity(cfg.match_keys.len());
    for (k, key) in cfg.match_keys.iter().enumerate() {
        if cfg.match_keys[..k].iter().any(|other| other.name == key.name) {
            return Err(bad(format!("match key `{}` is declared twice", key.name)));
        }
        let mut undeclared: Vec<String> = Vec::new();
        for component in &key.components {
            if kind_of(&component.field).is_none() && !undeclared.contains(&component.field) {
                undeclared.push(component.field.clone());
            }
        }
        let skipped = !undeclared.is_empty();
        if !skipped {
            key.check_strength(&kind_of)
                .map_err(|source| PseudonymiseError::MatchKey {
                    extract: cfg.extract.clone(),
                    source,
                })?;
            let fields = key
                .components
                .iter()
                .map(|c| {
                    cfg.identifiers
                        .iter()
                        .position(|i| i.name == c.field)
                        .expect("the field is declared")
                })
                .collect();
            keys.push(KeyPlan {
                key: key.clone(),
                fields,
            });
        }
        key_summaries.push(MatchKeySummary {
            name: key.name.clone(),
            components: key.components.iter().map(ToString::to_string).collect(),
            column: (!skipped).then(|| key.column_name()),
            skipped,
            undeclared_fields: undeclared,
            null_tokens: 0,
        });
    }
    if keys.is_empty() {
        return Err(bad(
            "none of the match keys can be built from the identifiers this extract declares, so its records could never be linked".into(),
        ));
    }

    let compare = compare_plan(cfg)?;
    let mut keep = Vec::with_capacity(cfg.keep.len());
    for (i, name) in cfg.keep.iter().enumerate() {
        if cfg.keep[..i].contains(name) {
            return Err(bad(format!("column `{name}` is listed twice in keep")));
        }
        // The same comparison the reader makes: header names are matched after trimming.
        // [`resolve_keep`] checks again against the columns the reader actually resolved.
        if let Some(ident) = cfg
            .identifiers
            .iter()
            .find(|id| id.column.trim() == name.trim() && id.kind != FieldKind::Sex)
        {
            return Err(bad(format!(
                "column `{name}` holds identifier `{}` (kind {}), so it cannot be kept: kept columns leave the stage as they are, and identifiers may leave only as tokens",
                ident.name, ident.kind
            )));
        }
        if keys.iter().any(|k| k.key.column_name() == *name)
            || compare
                .iter()
                .flat_map(ComparePlan::columns)
                .any(|(column, _)| column == *name)
        {
            return Err(bad(format!(
                "keep column `{name}` has the name of a token column"
            )));
        }
        keep.push(KeepPlan {
            name: name.clone(),
            column: column_index(name),
            declared: cfg.types.get(name).copied(),
            standardised_sex: false,
        });
    }
    if let Some(name) = cfg.types.keys().find(|t| !cfg.keep.contains(*t)) {
        return Err(bad(format!(
            "types declares column `{name}`, which is not in keep"
        )));
    }
    Ok(Plan {
        columns,
        idents,
        keys,
        key_summaries,
        compare,
        keep,
    })
}

/// The compared fields: each a declared identifier, named once.
fn compare_plan(cfg: &PseudonymiseConfig) -> Result<Vec<ComparePlan>, PseudonymiseError> {
    let bad = |reason: String| PseudonymiseError::Config {
        extract: cfg.extract.clone(),
        reason,
    };
    let mut compare = Vec::with_capacity(cfg.compare.len());
    for (i, field) in cfg.compare.iter().enumerate() {
        if cfg.compare[..i].contains(field) {
            return Err(bad(format!("compared field `{field}` is listed twice")));
        }
        let ident = cfg
            .identifiers
            .iter()
            .position(|id| id.name == *field)
            .ok_or_else(|| {
                bad(format!(
                    "compared field `{field}` is not an identifier this extract declares"
                ))
            })?;
        compare.push(ComparePlan {
            ident,
            field: field.clone(),
            kind: cfg.identifiers[ident].kind,
        });
    }
    Ok(compare)
}

/// The second guard of the rule that identifiers leave the stage only as tokens, on the columns
/// as the reader resolved them against the file (`sources`: the file column of each reader
/// column): a keep column read from the same file column as a declared identifier is refused,
/// unless the identifier is a `sex`, which is then written only as its standardised value.
pub(crate) fn resolve_keep(
    cfg: &PseudonymiseConfig,
    plan: &mut Plan,
    sources: &[usize],
) -> Result<(), PseudonymiseError> {
    let bad = |reason: String| PseudonymiseError::Config {
        extract: cfg.extract.clone(),
        reason,
    };
    for keep in &mut plan.keep {
        let source = sources[keep.column];
        let held = plan
            .idents
            .iter()
            .zip(&cfg.identifiers)
            .filter(|(ident, _)| sources[ident.column] == source)
            .map(|(_, declared)| declared);
        for ident in held {
            if ident.kind != FieldKind::Sex {
                return Err(bad(format!(
                    "keep column `{}` is read from the same column of the file as identifier `{}` (kind {}), so it cannot be kept: kept columns leave the stage as they are, and identifiers may leave only as tokens",
                    keep.name, ident.name, ident.kind
                )));
            }
            if keep.declared.is_some_and(|ty| ty != ColumnType::String) {
                return Err(bad(format!(
                    "keep column `{}` is the sex identifier `{}`, which is kept as its standardised value (M, F or missing), so its type can only be string",
                    keep.name, ident.name
                )));
            }
            keep.standardised_sex = true;
        }
    }
    Ok(())
}
