//! The report's charts, as inline SVG: the forest chart of differences, Kaplan–Meier curves and
//! the love plot of balance.

use std::fmt::Write as _;

use super::{COMPARISON_COLOUR, TREATED_COLOUR, esc, label};
use crate::csv::Table;

/// A number for an axis label.
fn tick(v: f64) -> String {
    let text = if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    };
    if text == "-0" { "0".to_owned() } else { text }
}

/// Horizontal bars of the differences with 95% CI whiskers.
pub(super) fn forest_chart(rows: &[(String, f64, f64, f64)], unit: &str, scale: f64) -> String {
    let (left, right, top, row_h) = (190.0, 620.0, 30.0, 34.0);
    let height = top + row_h * rows.len() as f64 + 30.0;
    let mut lo = 0.0_f64;
    let mut hi = 0.0_f64;
    for (_, d, a, b) in rows {
        lo = lo.min(*a * scale).min(*d * scale);
        hi = hi.max(*b * scale).max(*d * scale);
    }
    let pad = ((hi - lo) * 0.1).max(1e-6);
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |v: f64| left + (v - lo) / (hi - lo) * (right - left);
    let mut svg = format!(
        "<svg viewBox=\"0 0 640 {height:.0}\" role=\"img\" aria-label=\"Differences between the groups with 95% confidence intervals, {}\">",
        esc(unit)
    );
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"16\" class=\"axis\">Difference ({})</text>",
        esc(unit)
    );
    let zero = x(0.0);
    let _ = write!(
        svg,
        "<line x1=\"{zero:.1}\" y1=\"{top}\" x2=\"{zero:.1}\" y2=\"{:.1}\" class=\"zero\"/>",
        height - 30.0
    );
    for (i, (name, d, a, b)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let (xd, xa, xb) = (x(d * scale), x(a * scale), x(b * scale));
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 4.0,
            esc(&label(name))
        );
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{TREATED_COLOUR}\" opacity=\"0.75\"/>",
            zero.min(xd),
            y - 7.0,
            (xd - zero).abs()
        );
        let _ = write!(
            svg,
            "<line x1=\"{xa:.1}\" y1=\"{y:.1}\" x2=\"{xb:.1}\" y2=\"{y:.1}\" class=\"whisker\"/>"
        );
        for xe in [xa, xb] {
            let _ = write!(
                svg,
                "<line x1=\"{xe:.1}\" y1=\"{:.1}\" x2=\"{xe:.1}\" y2=\"{:.1}\" class=\"whisker\"/>",
                y - 6.0,
                y + 6.0
            );
        }
    }
    let base = height - 12.0;
    for v in [lo, 0.0, hi] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{base:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>",
            x(v),
            tick(v)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A group's curve: its name, colour and `(day, survival)` points.
type Curve<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// Kaplan–Meier step curves of both groups for one outcome. The survival axis always runs from
/// 0% to 100% (never cut at the lowest step, which would make a small difference look large).
pub(super) fn km_chart(name: &str, survival: &Table, follow_up: u32) -> String {
    let mut curves: Vec<Curve<'_>> = Vec::new();
    for (group, colour) in [("treated", TREATED_COLOUR), ("comparison", COMPARISON_COLOUR)] {
        let points = survival
            .rows()
            .filter(|r| r.get("outcome") == name && r.get("group") == group)
            .filter_map(|r| Some((r.num("day")?, r.num("survival")?)))
            .collect();
        curves.push((group, colour, points));
    }
    let (left, right, top, bottom) = (50.0, 620.0, 20.0, 250.0);
    let f = f64::from(follow_up.max(1));
    let x = |d: f64| left + d.clamp(0.0, f) / f * (right - left);
    let y = |s: f64| top + (1.0 - s.clamp(0.0, 1.0)) * (bottom - top);
    let mut svg = format!(
        "<svg viewBox=\"0 0 640 290\" role=\"img\" aria-label=\"Kaplan-Meier curves for {}\">",
        esc(&label(name))
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" class=\"zero\"/>"
    );
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" class=\"zero\"/>"
    );
    for s in [0.0, 0.25, 0.5, 0.75, 1.0] {
        if s > 0.0 {
            let _ = write!(
                svg,
                "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{right}\" y2=\"{:.1}\" class=\"grid\"/>",
                y(s),
                y(s)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" class=\"axis\">{:.0}%</text>",
            left - 6.0,
            y(s) + 4.0,
            s * 100.0
        );
    }
    for d in [0.0, f / 2.0, f] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>",
            x(d),
            bottom + 16.0,
            tick(d.round())
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"284\" text-anchor=\"middle\" class=\"axis\">days since the index date</text>",
        f64::midpoint(left, right)
    );
    for (i, (group, colour, points)) in curves.iter().enumerate() {
        let mut path = format!("M{:.1},{:.1}", x(0.0), y(1.0));
        let mut last = 1.0;
        for (d, s) in points {
            let _ = write!(path, " H{:.1} V{:.1}", x(*d), y(*s));
            last = *s;
        }
        let _ = write!(path, " H{:.1}", x(f));
        let dash = if i == 1 { " stroke-dasharray=\"6 3\"" } else { "" };
        let _ = write!(
            svg,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"{dash}/>"
        );
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\" class=\"legend\">{} ({:.0}% without the event at the last published step)</text>",
            left + 10.0,
            bottom - 30.0 + 16.0 * i as f64,
            if *group == "treated" {
                "took part"
            } else {
                "comparison, dashed"
            },
            last * 100.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The love plot: standardised mean differences before (hollow) and after (filled) matching.
pub(super) fn love_plot(balance: &Table) -> String {
    let rows: Vec<(String, Option<f64>, Option<f64>)> = balance
        .rows()
        .map(|r| {
            let level = r.get("level");
            let name = if level.is_empty() {
                r.get("covariate").to_owned()
            } else {
                format!("{}: {}", r.get("covariate"), level)
            };
            (name, r.num("smd_before"), r.num("smd_after"))
        })
        .filter(|(_, b, a)| b.is_some() || a.is_some())
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let extent = rows
        .iter()
        .flat_map(|(_, b, a)| [b.unwrap_or(0.0).abs(), a.unwrap_or(0.0).abs()])
        .fold(0.25_f64, f64::max)
        * 1.1;
    let (left, right, top, row_h) = (230.0, 620.0, 36.0, 22.0);
    let height = top + row_h * rows.len() as f64 + 26.0;
    let x = |v: f64| left + (v + extent) / (2.0 * extent) * (right - left);
    let mut svg = format!(
        "<svg viewBox=\"0 0 640 {height:.0}\" role=\"img\" aria-label=\"Standardised mean differences before and after matching\">"
    );
    let _ = write!(
        svg,
        "<circle cx=\"{left}\" cy=\"12\" r=\"5\" fill=\"none\" stroke=\"{COMPARISON_COLOUR}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"16\" class=\"legend\">before matching</text><circle cx=\"{:.1}\" cy=\"12\" r=\"5\" fill=\"{TREATED_COLOUR}\"/><text x=\"{:.1}\" y=\"16\" class=\"legend\">after matching</text>",
        left + 10.0,
        left + 150.0,
        left + 160.0
    );
    let bottom = top + row_h * rows.len() as f64;
    for v in [-0.1, 0.1] {
        let _ = write!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{top}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" class=\"guide\"/>",
            x(v),
            x(v)
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"{:.1}\" y1=\"{top}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" class=\"zero\"/>",
        x(0.0),
        x(0.0)
    );
    for (i, (name, before, after)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 4.0,
            esc(name)
        );
        if let Some(b) = before {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"none\" stroke=\"{COMPARISON_COLOUR}\" stroke-width=\"2\"/>",
                x(*b)
            );
        }
        if let Some(a) = after {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{TREATED_COLOUR}\"/>",
                x(*a)
            );
        }
    }
    for v in [-extent, -0.1, 0.1, extent] {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>",
            x(v),
            bottom + 18.0,
            tick((v * 100.0).round() / 100.0)
        );
    }
    svg.push_str("</svg>");
    svg
}
