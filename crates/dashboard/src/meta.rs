//! Random-effects meta-analysis of published estimates: DerSimonian–Laird and REML (Fisher
//! scoring) estimates of the between-programme variance τ², the pooled effect with its CI, I²,
//! H², Cochran's Q and a prediction interval.
//!
//! Only published figures go in: each programme's effect and its 95% CI, from which the standard
//! error is `(ci_high − ci_low) / (2 · 1.959964)` ([`se_from_ci`]). The pooled figures are
//! functions of published figures, so they disclose nothing new.
//!
//! The definitions are those of R metafor's `rma.uni` and `predict.rma` with `test = "z"`
//! (checked against its published dat.bcg example in `tests/pooling.rs`):
//! * weights `wᵢ = 1 / (vᵢ + τ²)`, `μ = Σwᵢyᵢ / Σwᵢ`, `se = √(1 / Σwᵢ)`, CI `μ ∓ z·se`;
//! * prediction interval `μ ∓ z·√(se² + τ²)` (where the true effect of a new programme of the
//!   same type would lie);
//! * `Q = Σ(yᵢ − μ_FE)² / vᵢ` with the fixed-effect weights;
//! * `I² = τ² / (τ² + s²)` and `H² = (τ² + s²) / s²`, with the typical sampling variance
//!   `s² = (k − 1) / (Σ1/vᵢ − Σ1/vᵢ² / Σ1/vᵢ)` (for DerSimonian–Laird, `I² = (Q − df) / Q`).

use serde::Serialize;

/// The 97.5% quantile of the standard normal distribution.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// How τ² is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Tau2Method {
    /// DerSimonian and Laird's (1986) method of moments, truncated at 0.
    DerSimonianLaird,
    /// Restricted maximum likelihood by Fisher scoring from the DerSimonian–Laird estimate,
    /// truncated at 0.
    Reml,
}

/// One published estimate: the effect and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Study {
    /// The effect (a difference).
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
}

/// The standard error behind a published 95% confidence interval (normal approximation; the
/// evaluation's t intervals have hundreds of degrees of freedom, where t and z agree to the
/// published precision).
pub fn se_from_ci(ci_low: f64, ci_high: f64) -> f64 {
    (ci_high - ci_low) / (2.0 * Z_975)
}

/// A pooled random-effects estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pooled {
    /// How τ² was estimated.
    pub method: Tau2Method,
    /// How many estimates were pooled.
    pub k: usize,
    /// The pooled effect μ.
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Lower end of the 95% CI of μ.
    pub ci_low: f64,
    /// Upper end of the 95% CI of μ.
    pub ci_high: f64,
    /// The between-programme variance τ².
    pub tau2: f64,
    /// I², in percent: the share of the total variability that is between programmes.
    pub i2_percent: f64,
    /// H²: total variability over sampling variability.
    pub h2: f64,
    /// Cochran's Q (with `k − 1` degrees of freedom).
    pub q: f64,
    /// Lower end of the 95% prediction interval.
    pub pi_low: f64,
    /// Upper end of the 95% prediction interval.
    pub pi_high: f64,
}

/// Σ over the studies of `f(wᵢ, yᵢ)` with `wᵢ = 1 / (vᵢ + τ²)`.
fn sum(studies: &[Study], tau2: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
    studies
        .iter()
        .map(|s| f(1.0 / (s.se * s.se + tau2), s.estimate))
        .sum()
}

fn weighted_mean(studies: &[Study], tau2: f64) -> f64 {
    sum(studies, tau2, |w, y| w * y) / sum(studies, tau2, |w, _| w)
}

fn q_statistic(studies: &[Study]) -> f64 {
    let mu = weighted_mean(studies, 0.0);
    sum(studies, 0.0, |w, y| w * (y - mu).powi(2))
}

fn tau2_dl(studies: &[Study]) -> f64 {
    let (sw, sw2) = (sum(studies, 0.0, |w, _| w), sum(studies, 0.0, |w, _| w * w));
    let df = (studies.len() - 1) as f64;
    ((q_statistic(studies) - df) / (sw - sw2 / sw)).max(0.0)
}

/// The restricted log-likelihood of τ² (up to a constant).
fn reml_log_likelihood(studies: &[Study], tau2: f64) -> f64 {
    let mu = weighted_mean(studies, tau2);
    let sw = sum(studies, tau2, |w, _| w);
    -0.5 * (sum(studies, tau2, |w, _| -w.ln()) + sw.ln() + sum(studies, tau2, |w, y| w * (y - mu).powi(2)))
}

/// REML by Fisher scoring: the step is `(Σwᵢ²(yᵢ − μ)² − tr P) / tr(P²)`, where
/// `tr P = Σw − Σw²/Σw` and `tr(P²) = Σw² − 2Σw³/Σw + (Σw²/Σw)²`; a step that lowers the
/// restricted likelihood is halved (as metafor's `stepadj`), and τ² stays ≥ 0. Returns `None`
/// if it does not converge in 1000 steps.
fn tau2_reml(studies: &[Study], start: f64) -> Option<f64> {
    let mut tau2 = start;
    let mut ll = reml_log_likelihood(studies, tau2);
    for _ in 0..1000 {
        let sw = sum(studies, tau2, |w, _| w);
        let sw2 = sum(studies, tau2, |w, _| w * w);
        let sw3 = sum(studies, tau2, |w, _| w * w * w);
        let mu = weighted_mean(studies, tau2);
        let trace_p = sw - sw2 / sw;
        let trace_pp = sw2 - 2.0 * sw3 / sw + (sw2 / sw).powi(2);
        let score = sum(studies, tau2, |w, y| w * w * (y - mu).powi(2)) - trace_p;
        let mut step = score / trace_pp;
        let mut next = (tau2 + step).max(0.0);
        let mut next_ll = reml_log_likelihood(studies, next);
        while next_ll < ll && (next - tau2).abs() > f64::EPSILON * tau2.max(1.0) {
            step /= 2.0;
            next = (tau2 + step).max(0.0);
            next_ll = reml_log_likelihood(studies, next);
        }
        if !next.is_finite() {
            return None;
        }
        if (next - tau2).abs() <= 1e-13 * tau2.max(1.0) {
            return Some(next);
        }
        (tau2, ll) = (next, next_ll);
    }
    None
}

/// The random-effects pooled estimate of `studies`, or `None` when there are fewer than two, a
/// standard error is not a positive finite number, an estimate is not finite, or REML does not
/// converge.
pub fn random_effects(studies: &[Study], method: Tau2Method) -> Option<Pooled> {
    let usable = |s: &Study| s.estimate.is_finite() && s.se.is_finite() && s.se > 0.0;
    if studies.len() < 2 || !studies.iter().all(usable) {
        return None;
    }
    let dl = tau2_dl(studies);
    let tau2 = match method {
        Tau2Method::DerSimonianLaird => dl,
        Tau2Method::Reml => tau2_reml(studies, dl)?,
    };
    let k = studies.len();
    let estimate = weighted_mean(studies, tau2);
    let se = (1.0 / sum(studies, tau2, |w, _| w)).sqrt();
    let (fw, fw2) = (sum(studies, 0.0, |w, _| w), sum(studies, 0.0, |w, _| w * w));
    let s2 = (k - 1) as f64 / (fw - fw2 / fw);
    let pi_half = Z_975 * (se * se + tau2).sqrt();
    Some(Pooled {
        method,
        k,
        estimate,
        se,
        ci_low: estimate - Z_975 * se,
        ci_high: estimate + Z_975 * se,
        tau2,
        i2_percent: 100.0 * tau2 / (tau2 + s2),
        h2: (tau2 + s2) / s2,
        q: q_statistic(studies),
        pi_low: estimate - pi_half,
        pi_high: estimate + pi_half,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn studies(pairs: &[(f64, f64)]) -> Vec<Study> {
        pairs
            .iter()
            .map(|&(estimate, se)| Study { estimate, se })
            .collect()
    }

    #[test]
    fn fewer_than_two_or_unusable_estimates_are_not_pooled() {
        for input in [
            vec![],
            vec![(0.1, 0.05)],
            vec![(0.1, 0.05), (0.2, 0.0)],
            vec![(0.1, 0.05), (f64::NAN, 0.1)],
            vec![(0.1, 0.05), (0.2, f64::INFINITY)],
        ] {
            for method in [Tau2Method::DerSimonianLaird, Tau2Method::Reml] {
                assert_eq!(random_effects(&studies(&input), method), None, "{input:?}");
            }
        }
    }

    #[test]
    fn identical_estimates_have_no_heterogeneity() {
        let s = studies(&[(0.3, 0.1), (0.3, 0.2), (0.3, 0.05)]);
        for method in [Tau2Method::DerSimonianLaird, Tau2Method::Reml] {
            let p = random_effects(&s, method).expect("three usable estimates");
            assert!(p.tau2.abs() < 1e-12 && p.i2_percent.abs() < 1e-9, "{p:?}");
            assert!((p.estimate - 0.3).abs() < 1e-12, "{p:?}");
            assert!(
                (p.pi_low - p.ci_low).abs() < 1e-12,
                "with τ² = 0 the PI is the CI: {p:?}"
            );
        }
    }

    #[test]
    fn the_standard_error_comes_back_from_a_95_percent_ci() {
        let (estimate, se) = (-0.05, 0.0123);
        let (lo, hi) = (estimate - Z_975 * se, estimate + Z_975 * se);
        assert!((se_from_ci(lo, hi) - se).abs() < 1e-15);
    }
}
