//! Reading the estimates: Holm's adjustment of p-values for the number of outcomes tested, and
//! the E-value of an estimate (`VanderWeele` and Ding, 2017).

/// Holm's step-down adjustment of `p` (one p-value per test, in any order): with the p-values
/// sorted ascending, `p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1) p₍ⱼ₎)`, returned in the order of
/// `p`. A p-value that is not a number stays NaN and does not count as a test.
pub(crate) fn holm(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let m = order.len();
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 0.0_f64;
    for (j, &i) in order.iter().enumerate() {
        running = running.max(((m - j) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The E-value of a risk ratio: `RR + sqrt(RR × (RR − 1))` for `RR ≥ 1`, and of `1 / RR` for
/// `RR < 1` (`VanderWeele` and Ding, 2017, Annals of Internal Medicine 167:268): the minimum
/// strength of association, on the risk-ratio scale, that an unmeasured confounder would need
/// with both the treatment and the outcome, over and above the measured covariates, to explain
/// the estimate away. NaN for a ratio that is not a positive number.
pub(crate) fn e_value(rr: f64) -> f64 {
    if !(rr.is_finite() && rr > 0.0) {
        return f64::NAN;
    }
    let rr = if rr < 1.0 { 1.0 / rr } else { rr };
    rr + (rr * (rr - 1.0)).sqrt()
}

/// The E-values of a difference `treated − comparison` of two risks (or means) with its 95%
/// interval `(low, high)`: the point estimate's, from the risk ratio `treated / comparison`,
/// and the confidence limit's nearer to no effect, from the ratio `(comparison + limit) /
/// comparison` (1 when the interval includes no difference). `None` when a ratio cannot be
/// formed (a zero or negative comparison value, or a limit that makes the ratio non-positive).
pub(crate) fn e_values(treated: f64, comparison: f64, low: f64, high: f64) -> Option<(f64, f64)> {
    if !(comparison > 0.0 && treated > 0.0) {
        return None;
    }
    let point = e_value(treated / comparison);
    let limit = if low > 0.0 {
        low
    } else if high < 0.0 {
        high
    } else {
        return point.is_finite().then_some((point, 1.0));
    };
    let ratio = (comparison + limit) / comparison;
    let ci = e_value(ratio);
    (point.is_finite() && ci.is_finite()).then_some((point, ci))
}
