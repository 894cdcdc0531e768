//! The overlap chart: how the propensity scores of the people who took part and of those who
//! did not are spread, as binned densities that hide every count.
//!
//! Disclosure: each group's scores are counted in fine bins of a fixed grid (multiples of a
//! step of 0.005 to 0.1, at most [`MAX_BINS`] across the observed range), and consecutive fine
//! bins are pooled, left to right, until a bar holds at least `threshold` persons of its group;
//! persons left after the last full bar join it. So every bar rests on at least `threshold`
//! persons, and the chart shows only each bar's density (its share of the group per unit of
//! score), drawn as a height in whole pixels (of 110 for the highest bar), never a count. No chart is drawn
//! when a group has fewer than `threshold` persons, or when a few treated persons were dropped
//! by the caliper (then the size of all treated is withheld, see `publish.rs`, and the treated
//! bars' shares could give it away).

use std::fmt::Write as _;

use super::{COMPARISON_COLOUR, TREATED_COLOUR};

/// The most fine bins across the observed range of scores.
pub(crate) const MAX_BINS: usize = 50;

/// One bar: the scores `[from, to)` and the group's density over it (share per unit of score).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// The bar's lower edge (a multiple of the grid's step).
    pub from: f64,
    /// The bar's upper edge.
    pub to: f64,
    /// The share of the group in the bar divided by its width.
    pub density: f64,
}

/// The bars of both groups' propensity scores (before matching).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overlap {
    /// People who took part.
    pub treated: Vec<Bar>,
    /// People who did not.
    pub untreated: Vec<Bar>,
}

/// The grid step: the smallest of 0.005, 0.01, 0.02, 0.025, 0.05 and 0.1 that covers the range
/// `[lo, hi]` in at most [`MAX_BINS`] bins.
fn step(lo: f64, hi: f64) -> f64 {
    [0.005, 0.01, 0.02, 0.025, 0.05]
        .into_iter()
        .find(|s| ((hi / s).floor() - (lo / s).floor() + 1.0) <= MAX_BINS as f64)
        .unwrap_or(0.1)
}

/// A group's pooled bars over the fine bins `[edge0 + k·step, edge0 + (k+1)·step)`.
fn bars(scores: &[f64], edge0: f64, step: f64, bins: usize, threshold: u64) -> Option<Vec<Bar>> {
    let mut counts = vec![0u64; bins];
    for &s in scores {
        let k = (((s - edge0) / step).floor().max(0.0) as usize).min(bins - 1);
        counts[k] += 1;
    }
    let n = scores.len() as f64;
    let threshold = threshold.max(1);
    let mut out: Vec<(usize, usize, u64)> = Vec::new();
    let mut start = 0;
    let mut held = 0;
    for (k, &c) in counts.iter().enumerate() {
        held += c;
        if held >= threshold {
            out.push((start, k + 1, held));
            start = k + 1;
            held = 0;
        }
    }
    if held > 0 {
        let last = out.last_mut()?;
        last.1 = bins;
        last.2 += held;
    }
    let edge = |k: usize| edge0 + k as f64 * step;
    (!out.is_empty()).then(|| {
        out.into_iter()
            .map(|(a, b, c)| Bar {
                from: edge(a),
                to: edge(b),
                density: c as f64 / n / (edge(b) - edge(a)),
            })
            .collect()
    })
}

/// The overlap bars of the scores `score` by `treated`, or `None` when there are no scores, when
/// the chart is `withheld` (a few treated persons dropped by the caliper), when a group has
/// fewer than `threshold` persons, or when a score is not a number.
pub(crate) fn overlap(
    score: Option<&[f64]>,
    treated: &[bool],
    threshold: u64,
    withheld: bool,
) -> Option<Overlap> {
    let score = score.filter(|_| !withheld)?;
    if score.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let group = |t: bool| -> Vec<f64> {
        score
            .iter()
            .zip(treated)
            .filter(|(_, g)| **g == t)
            .map(|(s, _)| *s)
            .collect()
    };
    let (yes, no) = (group(true), group(false));
    if (yes.len() as u64) < threshold.max(1) || (no.len() as u64) < threshold.max(1) {
        return None;
    }
    let lo = score.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = score.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let step = step(lo, hi);
    let edge0 = (lo / step).floor() * step;
    let bins = (((hi - edge0) / step).floor() as usize + 1).max(1);
    Some(Overlap {
        treated: bars(&yes, edge0, step, bins, threshold)?,
        untreated: bars(&no, edge0, step, bins, threshold)?,
    })
}

/// The report's section on overlap, or nothing without bars.
pub(super) fn overlap_section(overlap: Option<&Overlap>, threshold: u64) -> String {
    let Some(chart) = overlap.map(overlap_chart).filter(|c| !c.is_empty()) else {
        return String::new();
    };
    format!(
        "<section aria-labelledby=\"h-overlap\"><h2 id=\"h-overlap\">Overlap of propensity scores</h2>\
<p class=\"note\">How the propensity scores (the estimated chance of taking part) are spread among people who took part (above the line) and people who did not (below it), before matching. Matching needs both groups at the same scores: where only one group has bars, its people had no similar counterparts. Bar heights are shares of each group per unit of score; each bar pools scores until it holds at least {threshold} people of its group.</p>{chart}</section>"
    )
}

/// The chart: the treated group's bars above the axis, the untreated group's below it (a
/// mirrored histogram), on the same density scale.
pub(super) fn overlap_chart(overlap: &Overlap) -> String {
    let all = || overlap.treated.iter().chain(&overlap.untreated);
    let lo = all().map(|b| b.from).fold(f64::INFINITY, f64::min);
    let hi = all().map(|b| b.to).fold(f64::NEG_INFINITY, f64::max);
    let top_density = all().map(|b| b.density).fold(0.0_f64, f64::max);
    if !(hi > lo && top_density > 0.0) {
        return String::new();
    }
    let (left, right, axis, half) = (50.0, 620.0, 140.0, 110.0);
    let x = |v: f64| left + (v - lo) / (hi - lo) * (right - left);
    let h = |d: f64| d / top_density * half;
    let mut svg = String::from(
        "<svg viewBox=\"0 0 640 300\" role=\"img\" aria-label=\"Propensity scores of people who took part (above the line) and people who did not (below it)\">",
    );
    for (bars, colour, above) in [
        (&overlap.treated, TREATED_COLOUR, true),
        (&overlap.untreated, COMPARISON_COLOUR, false),
    ] {
        for bar in bars {
            // Whole pixels (of 110 for the highest bar): the chart shows a shape, and a bar's
            // count cannot be read back exactly from its height and the group's size.
            let height = h(bar.density).round();
            let y = if above { axis - height } else { axis };
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y:.0}\" width=\"{:.1}\" height=\"{height:.0}\" fill=\"{colour}\" opacity=\"0.8\"/>",
                x(bar.from),
                x(bar.to) - x(bar.from)
            );
        }
    }
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{axis}\" x2=\"{right}\" y2=\"{axis}\" class=\"zero\"/>"
    );
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"18\" fill=\"{TREATED_COLOUR}\" class=\"legend\">took part</text><text x=\"{left}\" y=\"{:.1}\" fill=\"{COMPARISON_COLOUR}\" class=\"legend\">did not take part</text>",
        axis + half + 18.0
    );
    for v in [lo, f64::midpoint(lo, hi), hi] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"296\" text-anchor=\"middle\" class=\"axis\">{:.2}</text>",
            x(v),
            v
        );
    }
    svg.push_str("</svg>");
    svg
}
