//! A covariate column of the analysis frame: what the frame builds, the design matrix reads and
//! the published figures describe.

use crate::columns::NumType;

/// The values of one covariate, one per frame row.
#[derive(Debug, Clone)]
pub(crate) enum CovValues {
    /// Numbers (dates as days since 1970-01-01), `None` when missing.
    Num { values: Vec<Option<f64>>, ty: NumType },
    /// Categories, `None` when missing.
    Text(Vec<Option<String>>),
}

/// A covariate column of the frame.
#[derive(Debug, Clone)]
pub(crate) struct Covariate {
    pub name: String,
    pub values: CovValues,
}
