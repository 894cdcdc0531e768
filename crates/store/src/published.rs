//! The columns of the evaluation's published files: a contract between the evaluation stage,
//! which writes them, and the readers of a release (the dashboard, the run's summary).

/// The columns of `impact.csv`, in order.
pub const IMPACT_COLUMNS: [&str; 11] = [
    "outcome",
    "measure",
    "treated_persons",
    "comparison_persons",
    "treated_value",
    "comparison_value",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
];
