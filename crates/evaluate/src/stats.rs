//! Effect estimates with confidence intervals and tests, Kaplan–Meier curves and the log-rank
//! test.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

use crate::matching::Matching;

/// An estimate for one outcome. Values that cannot be computed are NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Estimate {
    pub treated: f64,
    pub comparison: f64,
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
}

impl Estimate {
    /// The estimate on a scale `factor` times larger (per 100 persons: 100); the p-value stays.
    pub(crate) fn scaled(self, factor: f64) -> Estimate {
        Estimate {
            treated: self.treated * factor,
            comparison: self.comparison * factor,
            difference: self.difference * factor,
            ci_low: self.ci_low * factor,
            ci_high: self.ci_high * factor,
            p_value: self.p_value,
        }
    }

    /// Why this estimate cannot be published as an effect, when it cannot: a group value or the
    /// difference is not a number (an empty group), or the confidence interval has no width or
    /// is not a number (too few persons, or an outcome that does not vary), or no test could be
    /// made. The reasons name no count.
    pub(crate) fn degenerate(&self) -> Option<&'static str> {
        if !(self.treated.is_finite() && self.comparison.is_finite() && self.difference.is_finite()) {
            Some("a group value cannot be computed")
        } else if !(self.ci_low.is_finite() && self.ci_high.is_finite() && self.ci_high > self.ci_low) {
            Some("the outcome does not vary enough within the matched sample to give a confidence interval")
        } else if !self.p_value.is_finite() {
            Some("no test of the difference can be made")
        } else {
            None
        }
    }
}

fn normal() -> Normal {
    Normal::standard()
}

/// Two-sided p-value and 97.5% quantile of the reference distribution: the standard normal when
/// `df` is `None`, Student's t with `df` degrees of freedom otherwise.
///
/// The p-value is `2 · sf(|stat|)` from the survival function, never `2 · (1 − cdf)`: the
/// subtraction cancels to 0 once the tail falls below about 1e-16, while the survival function
/// keeps its relative precision down to the smallest normal numbers (about 1e-300).
///
/// statrs panics on arguments outside a distribution's domain (a NaN statistic reaches
/// `beta_reg` through `StudentsT::cdf`), so every argument is checked here first: an argument
/// that is not a finite number (or an infinite statistic's p-value) gives NaN, never a panic.
pub(crate) fn reference(stat: f64, df: Option<f64>) -> (f64, f64) {
    let p = |sf: &dyn Fn(f64) -> f64| {
        if stat.is_nan() {
            f64::NAN
        } else if stat.is_infinite() {
            0.0
        } else {
            (2.0 * sf(stat.abs())).clamp(0.0, 1.0)
        }
    };
    match df {
        Some(df) if df.is_finite() && df > 0.0 => match StudentsT::new(0.0, 1.0, df) {
            Ok(t) => (p(&|x| t.sf(x)), t.inverse_cdf(0.975)),
            Err(_) => (f64::NAN, f64::NAN),
        },
        Some(_) => (f64::NAN, f64::NAN),
        None => {
            let z = normal();
            (p(&|x| z.sf(x)), z.inverse_cdf(0.975))
        }
    }
}

/// The estimate from the group values, the standard error of the difference for the CI and the
/// one for the test (they differ only for the pooled two-proportion test).
fn finish(treated: f64, comparison: f64, se: f64, test_se: f64, df: Option<f64>) -> Estimate {
    let difference = treated - comparison;
    let (p_value, q) = reference(difference / test_se, df);
    let p_value = if test_se == 0.0 {
        if difference == 0.0 { 1.0 } else { 0.0 }
    } else {
        p_value
    };
    independent(treated, comparison, se, q, p_value)
}

fn mean_var(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        f64::NAN
    };
    (mean, var)
}

/// The effect on the treated of the matched sample for outcome values `y` (one per frame row).
///
/// * 1:1 matching without replacement (independent pairs): the paired difference. Its variance
///   is the sample variance of the pair differences over the number of pairs; rates use the
///   normal distribution (the Wald interval of a difference of paired proportions, `McNemar`'s
///   setting), days use the paired t-test with `pairs − 1` degrees of freedom.
/// * Otherwise (k:1, or with replacement): the weighted comparison mean, where a comparison
///   person's weight is the sum over its matched sets of `1 / set size`. The comparison group's
///   size is its Kish effective size `n_eff = (Σw)² / Σw²`, its variance the weighted variance.
///   Rates: the two-proportion z-test (pooled proportion for the test, unpooled standard error
///   for the CI). Days: Welch's t with Welch–Satterthwaite degrees of freedom.
pub(crate) fn effect(matching: &Matching, y: &[f64], rate: bool) -> Estimate {
    let nan = Estimate {
        treated: f64::NAN,
        comparison: f64::NAN,
        difference: f64::NAN,
        ci_low: f64::NAN,
        ci_high: f64::NAN,
        p_value: f64::NAN,
    };
    if matching.sets.is_empty() {
        return nan;
    }
    if matching.is_paired() {
        let diffs: Vec<f64> = matching.sets.iter().map(|(t, c)| y[*t] - y[c[0]]).collect();
        let n = diffs.len() as f64;
        let treated = matching.sets.iter().map(|(t, _)| y[*t]).sum::<f64>() / n;
        let comparison = matching.sets.iter().map(|(_, c)| y[c[0]]).sum::<f64>() / n;
        let (_, var) = mean_var(&diffs);
        let se = (var / n).sqrt();
        let df = if rate { None } else { Some(n - 1.0) };
        return finish(treated, comparison, se, se, df);
    }
    let treated_values: Vec<f64> = matching.sets.iter().map(|(t, _)| y[*t]).collect();
    let (treated, var_t) = mean_var(&treated_values);
    let n_t = treated_values.len() as f64;
    let is_treated: std::collections::HashSet<usize> = matching.sets.iter().map(|(t, _)| *t).collect();
    let controls: Vec<(f64, f64)> = matching
        .weight
        .iter()
        .enumerate()
        .filter(|(i, w)| **w > 0.0 && !is_treated.contains(i))
        .map(|(i, w)| (*w, y[i]))
        .collect();
    let sw: f64 = controls.iter().map(|(w, _)| w).sum();
    let sw2: f64 = controls.iter().map(|(w, _)| w * w).sum();
    let comparison = controls.iter().map(|(w, v)| w * v).sum::<f64>() / sw;
    let n_eff = sw * sw / sw2;
    let denom = sw - sw2 / sw;
    let var_c = if denom > 0.0 {
        controls
            .iter()
            .map(|(w, v)| w * (v - comparison).powi(2))
            .sum::<f64>()
            / denom
    } else {
        f64::NAN
    };
    if rate {
        let se = (treated * (1.0 - treated) / n_t + comparison * (1.0 - comparison) / n_eff).sqrt();
        let pooled = (treated * n_t + comparison * n_eff) / (n_t + n_eff);
        let test_se = (pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_eff)).sqrt();
        finish(treated, comparison, se, test_se, None)
    } else {
        let (a, b) = (var_t / n_t, var_c / n_eff);
        let se = (a + b).sqrt();
        let df = (a + b).powi(2) / (a * a / (n_t - 1.0) + b * b / (n_eff - 1.0));
        let df = if df.is_finite() { df } else { n_t + n_eff - 2.0 };
        finish(treated, comparison, se, se, Some(df))
    }
}

/// A person in a survival analysis: days to the event or to censoring, and a weight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject {
    pub time: u32,
    pub event: bool,
    pub weight: f64,
}

/// A step of a Kaplan–Meier curve, on a day with at least one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KmStep {
    pub day: u32,
    /// Weighted number at risk just before the day.
    pub at_risk: f64,
    /// Weighted number of events on the day.
    pub events: f64,
    /// Persons at risk (unweighted).
    pub persons_at_risk: u64,
    /// Persons with the event on the day (unweighted).
    pub person_events: u64,
    /// The survival estimate after the day.
    pub survival: f64,
    /// Greenwood's sum `Σ d / (n (n − d))` up to and including the day.
    pub greenwood: f64,
}

/// The (weighted) Kaplan–Meier estimate: `S(t) = Π_{t_j ≤ t} (1 − d_j / n_j)`, where a person
/// censored on day `t` is still at risk on day `t`.
pub(crate) fn kaplan_meier(subjects: &[Subject]) -> Vec<KmStep> {
    let mut sorted: Vec<Subject> = subjects.to_vec();
    sorted.sort_by_key(|s| s.time);
    let mut at_risk: f64 = sorted.iter().map(|s| s.weight).sum();
    let mut persons = sorted.len() as u64;
    let mut survival = 1.0;
    let mut greenwood = 0.0;
    let mut steps = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let day = sorted[i].time;
        let (mut events, mut person_events, mut leaving, mut persons_leaving) = (0.0, 0, 0.0, 0);
        while i < sorted.len() && sorted[i].time == day {
            if sorted[i].event {
                events += sorted[i].weight;
                person_events += 1;
            }
            leaving += sorted[i].weight;
            persons_leaving += 1;
            i += 1;
        }
        if person_events > 0 {
            survival *= 1.0 - events / at_risk;
            if at_risk > events {
                greenwood += events / (at_risk * (at_risk - events));
            }
            steps.push(KmStep {
                day,
                at_risk,
                events,
                persons_at_risk: persons,
                person_events,
                survival,
                greenwood,
            });
        }
        at_risk -= leaving;
        persons -= persons_leaving;
    }
    steps
}

/// The survival at the end of follow-up and its Greenwood variance.
pub(crate) fn survival_at_end(steps: &[KmStep]) -> (f64, f64) {
    steps.last().map_or((1.0, 0.0), |s| {
        (s.survival, s.survival * s.survival * s.greenwood)
    })
}

/// The log-rank test of two groups: `(chi-squared, p-value)` with one degree of freedom, from
/// `Σ (O₁ − E₁)² / Σ V` over the days with events, `E₁ = D n₁ / N` and
/// `V = n₁ n₂ D (N − D) / (N² (N − 1))` (weights enter as counts).
pub(crate) fn log_rank(a: &[Subject], b: &[Subject]) -> (f64, f64) {
    let mut days: Vec<u32> = a.iter().chain(b).filter(|s| s.event).map(|s| s.time).collect();
    days.sort_unstable();
    days.dedup();
    let at_risk = |group: &[Subject], day: u32| -> f64 {
        group.iter().filter(|s| s.time >= day).map(|s| s.weight).sum()
    };
    let events = |group: &[Subject], day: u32| -> f64 {
        group
            .iter()
            .filter(|s| s.time == day && s.event)
            .map(|s| s.weight)
            .sum()
    };
    let (mut o_minus_e, mut var) = (0.0, 0.0);
    for day in days {
        let (n1, n2) = (at_risk(a, day), at_risk(b, day));
        let (d1, d2) = (events(a, day), events(b, day));
        let (n, d) = (n1 + n2, d1 + d2);
        if n <= 0.0 {
            continue;
        }
        o_minus_e += d1 - d * n1 / n;
        if n > 1.0 {
            var += n1 * n2 * d * (n - d) / (n * n * (n - 1.0));
        }
    }
    if var <= 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let chi2 = o_minus_e * o_minus_e / var;
    if !chi2.is_finite() {
        return (f64::NAN, f64::NAN);
    }
    (chi2, chi_squared_1_p(chi2))
}

/// The upper tail probability of a chi-squared statistic with one degree of freedom, from the
/// survival function: `1 − cdf` would cancel to 0 below about 1e-16.
pub(crate) fn chi_squared_1_p(chi2: f64) -> f64 {
    if chi2.is_nan() || chi2 < 0.0 {
        return f64::NAN;
    }
    ChiSquared::new(1.0).map_or(f64::NAN, |c| c.sf(chi2))
}

/// The CI of the difference of two survival probabilities from their Greenwood variances
/// (treated as independent).
pub(crate) fn survival_difference(treated: (f64, f64), comparison: (f64, f64), p_value: f64) -> Estimate {
    let q = normal().inverse_cdf(0.975);
    let se = (treated.1 + comparison.1).sqrt();
    independent(treated.0, comparison.0, se, q, p_value)
}

/// The estimate of a difference of two independent values with standard error `se`: its CI is
/// the difference ± `q` · `se`.
fn independent(treated: f64, comparison: f64, se: f64, q: f64, p_value: f64) -> Estimate {
    let difference = treated - comparison;
    Estimate {
        treated,
        comparison,
        difference,
        ci_low: difference - q * se,
        ci_high: difference + q * se,
        p_value,
    }
}

/// The restricted mean time to the event up to day `tau`, `∫₀^τ S(t) dt` under the (weighted)
/// Kaplan–Meier curve `steps`, and its variance
/// `Σ_{t_j ≤ τ} A_j² d_j / (n_j (n_j − d_j))` with `A_j = ∫_{t_j}^τ S(t) dt` (Klein and
/// Moeschberger, 4.5; a day on which everyone at risk has the event adds nothing, its `A_j` being
/// 0). Without censoring before `tau` it is the mean of `min(T, tau)`.
pub(crate) fn rmst(steps: &[KmStep], tau: u32) -> (f64, f64) {
    let steps: Vec<&KmStep> = steps.iter().filter(|s| s.day <= tau).collect();
    // The area from each step's day to tau, from the last step back.
    let mut after = vec![0.0; steps.len()];
    let mut area = 0.0;
    let mut end = f64::from(tau);
    for (j, step) in steps.iter().enumerate().rev() {
        area += step.survival * (end - f64::from(step.day));
        after[j] = area;
        end = f64::from(step.day);
    }
    let total = area + end;
    let variance = steps
        .iter()
        .zip(&after)
        .filter(|(s, _)| s.at_risk > s.events)
        .map(|(s, a)| a * a * s.events / (s.at_risk * (s.at_risk - s.events)))
        .sum();
    (total, variance)
}

/// The difference of two independent estimates `(value, variance)` with its normal 95% CI and
/// two-sided p-value.
pub(crate) fn normal_difference(treated: (f64, f64), comparison: (f64, f64)) -> Estimate {
    let difference = treated.0 - comparison.0;
    let se = (treated.1 + comparison.1).sqrt();
    let (p_value, q) = reference(difference / se, None);
    independent(treated.0, comparison.0, se, q, p_value)
}

/// Welch's comparison of two weighted groups of `(weight, value)`: weighted means, the weighted
/// sample variances over Kish effective sizes, Welch–Satterthwaite degrees of freedom.
pub(crate) fn weighted_welch(treated: &[(f64, f64)], comparison: &[(f64, f64)]) -> Estimate {
    let group = |values: &[(f64, f64)]| {
        let sw: f64 = values.iter().map(|(w, _)| w).sum();
        let sw2: f64 = values.iter().map(|(w, _)| w * w).sum();
        let mean = values.iter().map(|(w, v)| w * v).sum::<f64>() / sw;
        let denom = sw - sw2 / sw;
        let var = if denom > 0.0 {
            values.iter().map(|(w, v)| w * (v - mean).powi(2)).sum::<f64>() / denom
        } else {
            f64::NAN
        };
        (mean, var / (sw * sw / sw2), sw * sw / sw2)
    };
    let ((t, a, n_t), (c, b, n_c)) = (group(treated), group(comparison));
    let df = (a + b).powi(2) / (a * a / (n_t - 1.0) + b * b / (n_c - 1.0));
    finish(t, c, (a + b).sqrt(), (a + b).sqrt(), Some(df))
}
