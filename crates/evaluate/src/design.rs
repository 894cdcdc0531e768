//! The propensity model's design matrix and the covariate items whose balance is reported.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::EvaluateError;
use crate::covariate::{CovValues, Covariate};
use crate::logit::Matrix;

/// The label of the missing level of a categorical covariate and of a numeric covariate's
/// missing indicator.
pub(crate) const MISSING: &str = "(missing)";

/// The label of the level that holds a text covariate's rare levels.
pub(crate) const OTHER: &str = "Other";

/// Merges the rare levels of every text covariate, after refusing a covariate with too many.
///
/// A covariate of `n` persons may have at most `n / threshold` distinct levels (the missing
/// level counts as one): more, and it is refused before anything is built from it, naming the
/// covariate (a record id used as a covariate has one level per person, and would publish every
/// id as a label and build a dense persons × levels matrix). Then every level held by fewer than
/// `threshold` persons (the missing level too) becomes [`OTHER`]; while `Other` itself holds
/// fewer than `threshold` persons, the smallest remaining level (ties by name) joins it. So no
/// label held by fewer than `threshold` persons reaches the model, the frame, `balance.csv` or the
/// report (unless the whole cohort is smaller than the threshold). A literal `Other` level is
/// merged with the rare ones.
pub(crate) fn merge_rare_levels(
    covariates: &mut [Covariate],
    threshold: u64,
    table: &str,
) -> Result<(), EvaluateError> {
    let threshold = usize::try_from(threshold.max(1)).unwrap_or(usize::MAX);
    for cov in covariates {
        let CovValues::Text(values) = &mut cov.values else {
            continue;
        };
        let limit = values.len() / threshold;
        let mut counts: HashMap<Option<&str>, usize> = HashMap::new();
        for v in values.iter() {
            *counts.entry(v.as_deref()).or_default() += 1;
            if counts.len() > limit {
                return Err(EvaluateError::TooManyLevels {
                    table: table.to_owned(),
                    column: cov.name.clone(),
                    limit,
                });
            }
        }
        let mut levels: Vec<(Option<String>, usize)> = counts
            .into_iter()
            .map(|(k, n)| (k.map(str::to_owned), n))
            .collect();
        // Smallest first, ties by label (missing first).
        levels.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let mut other = 0;
        let mut merged: HashSet<Option<String>> = HashSet::new();
        for (label, n) in &levels {
            if *n < threshold || (other > 0 && other < threshold) || label.as_deref() == Some(OTHER) {
                other += n;
                merged.insert(label.clone());
            }
        }
        for v in values.iter_mut() {
            if merged.contains(v) {
                *v = Some(OTHER.to_owned());
            }
        }
    }
    Ok(())
}

/// Levels of a text covariate with their counts, most frequent first (ties by name); missing
/// values are the level [`MISSING`].
fn levels(values: &[Option<String>]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v.as_deref().unwrap_or(MISSING)).or_default() += 1;
    }
    let mut levels: Vec<(String, usize)> = counts.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    levels.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    levels
}

fn mean_sd(values: &[Option<f64>]) -> Option<(f64, f64)> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    let n = present.len() as f64;
    let mean = present.iter().sum::<f64>() / n;
    let var = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

/// A 0/1 column standardised to mean 0 and SD 1, like the numeric columns; `None` when it is
/// constant (it carries no information).
fn standardised_flag(flags: impl Iterator<Item = bool>) -> Option<Vec<f64>> {
    let values: Vec<Option<f64>> = flags.map(|f| Some(f64::from(u8::from(f)))).collect();
    let (mean, sd) = mean_sd(&values)?;
    (sd > 0.0).then(|| values.iter().flatten().map(|x| (x - mean) / sd).collect())
}

/// The design matrix: an intercept; each numeric covariate standardised (missing values set to
/// the mean, i.e. 0, plus a missing indicator when any value is missing; constant columns are
/// left out); each text covariate one-hot with its most frequent level as the reference.
///
/// Every column but the intercept is standardised (mean 0, SD 1), the 0/1 columns (levels and
/// missing indicators) too: the ridge penalty falls on the coefficients of these columns, and on
/// an unstandardised 0/1 column it would shrink a rare level (SD `sqrt(p(1 − p))`, small) far
/// harder than a common one, for the same effect on the score. Standardising is a change of
/// coordinates: without the penalty the fitted scores would be the same. The coefficients are on
/// the standardised scale; they are never published (only the scores are used), so they are not
/// transformed back.
pub(crate) fn design_matrix(covariates: &[Covariate], rows: usize) -> Matrix {
    let mut columns: Vec<Vec<f64>> = vec![vec![1.0; rows]];
    for cov in covariates {
        match &cov.values {
            CovValues::Num { values, .. } => {
                let Some((mean, sd)) = mean_sd(values) else {
                    continue;
                };
                if sd > 0.0 {
                    columns.push(
                        values
                            .iter()
                            .map(|v| v.map_or(0.0, |x| (x - mean) / sd))
                            .collect(),
                    );
                }
                columns.extend(standardised_flag(values.iter().map(Option::is_none)));
            }
            CovValues::Text(values) => {
                for (level, _) in levels(values).iter().skip(1) {
                    columns.extend(standardised_flag(
                        values.iter().map(|v| v.as_deref().unwrap_or(MISSING) == level),
                    ));
                }
            }
        }
    }
    let cols = columns.len();
    let mut data = vec![0.0; rows * cols];
    for (j, column) in columns.iter().enumerate() {
        for (i, v) in column.iter().enumerate() {
            data[i * cols + j] = *v;
        }
    }
    Matrix { rows, cols, data }
}

/// One line of the balance table: a numeric covariate's values, a numeric covariate's missing
/// indicator, or one level of a text covariate as 0/1.
#[derive(Debug, Clone)]
pub(crate) struct BalanceItem {
    pub covariate: String,
    /// Empty for a numeric covariate's values.
    pub level: String,
    /// Whether the values are 0/1 (a proportion).
    pub binary: bool,
    /// One per frame row; `None` when missing (only for numeric values).
    pub values: Vec<Option<f64>>,
}

/// The balance items of the covariates, in covariate order (levels in name order).
pub(crate) fn balance_items(covariates: &[Covariate]) -> Vec<BalanceItem> {
    let mut items = Vec::new();
    for cov in covariates {
        match &cov.values {
            CovValues::Num { values, .. } => {
                items.push(BalanceItem {
                    covariate: cov.name.clone(),
                    level: String::new(),
                    binary: false,
                    values: values.clone(),
                });
                if values.iter().any(Option::is_none) {
                    items.push(BalanceItem {
                        covariate: cov.name.clone(),
                        level: MISSING.to_owned(),
                        binary: true,
                        values: values
                            .iter()
                            .map(|v| Some(f64::from(u8::from(v.is_none()))))
                            .collect(),
                    });
                }
            }
            CovValues::Text(values) => {
                let mut names: Vec<String> = levels(values).into_iter().map(|(l, _)| l).collect();
                names.sort();
                for level in names {
                    items.push(BalanceItem {
                        covariate: cov.name.clone(),
                        values: values
                            .iter()
                            .map(|v| Some(f64::from(u8::from(v.as_deref().unwrap_or(MISSING) == level))))
                            .collect(),
                        level,
                        binary: true,
                    });
                }
            }
        }
    }
    items
}
