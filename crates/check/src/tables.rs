//! Release tables: every cell a variable, every margin a relation.

use std::path::Path;

use crate::manifest::Listed;
use crate::system::{CellKey, Kind, System};
use crate::{CheckReport, Rules};

/// The margin label.
pub(crate) const TOTAL: &str = "Total";
/// A suppressed value.
pub(crate) const SUPPRESSED: &str = "[c]";

/// Everything a file reader adds to.
pub(crate) struct Ctx<'a> {
    pub rules: &'a Rules,
    pub report: &'a mut CheckReport,
    pub sys: &'a mut System,
    /// The source of the folder's evaluation frame, where the evaluation's files count (see
    /// `extras::frame_source`).
    pub frame: &'a str,
}

impl Ctx<'_> {
    /// Checks a published count against the rules; returns its interval (rounding).
    pub fn published_count(&mut self, v: u64, file: &str, cell: &str) -> (f64, f64) {
        let r = self.rules;
        if v > 0 && v < r.threshold {
            self.report.push(
                file,
                cell,
                format!("published count is below the threshold {}", r.threshold),
            );
        }
        if v == 0 && r.zeros_disclosive {
            self.report.push(
                file,
                cell,
                "a zero count is published although zeros are disclosive",
            );
        }
        if r.round_to > 1 && !v.is_multiple_of(r.round_to) {
            self.report.push(
                file,
                cell,
                format!("published count is not rounded to base {}", r.round_to),
            );
        }
        self.rounded(v)
    }

    /// The interval of true counts a published count stands for under the rounding base.
    pub fn rounded(&self, v: u64) -> (f64, f64) {
        let r = self.rules;
        let h = if r.round_to > 1 {
            r.round_to as f64 / 2.0
        } else {
            0.0
        };
        (v as f64 - h, v as f64 + h)
    }

    /// Checks that a label is not an unguarded spreadsheet formula.
    pub fn label(&mut self, label: &str, file: &str, cell: &str) {
        if linklab_store::is_formula_like(label) {
            self.report.push(
                file,
                cell,
                "a label starts with a character a spreadsheet reads as a formula (= + - @ tab CR) and is not guarded",
            );
        }
    }
}

/// One table row: labels, persons and the sum (`None` = `[c]`).
struct Line {
    labels: Vec<String>,
    persons: Option<u64>,
    sum: Option<f64>,
}

fn describe(dims: &[String], labels: &[&str]) -> String {
    dims.iter()
        .zip(labels)
        .map(|(d, l)| format!("{d}={l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the rows of a table file; `None` (with a problem) when it cannot be read as one.
fn read_lines(path: &Path, file: &str, listed: &Listed, by: &[String], ctx: &mut Ctx) -> Option<Vec<Line>> {
    let Ok(mut reader) = csv::ReaderBuilder::new().has_headers(true).from_path(path) else {
        ctx.report.push(file, "-", "cannot be read as CSV");
        return None;
    };
    let mut expected: Vec<String> = by
        .iter()
        .map(|d| linklab_store::guard_label(d).into_owned())
        .collect();
    expected.push("persons".into());
    if let Some(s) = &listed.sum {
        expected.push(linklab_store::guard_label(s).into_owned());
    }
    match reader.headers() {
        Ok(h) if h.iter().eq(expected.iter().map(String::as_str)) => {}
        _ => {
            ctx.report.push(
                file,
                "-",
                "the header does not match the manifest (by columns, persons, sum)",
            );
            return None;
        }
    }
    let mut lines = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let row = format!("row {}", i + 2);
        let Ok(rec) = rec else {
            ctx.report.push(file, &row, "cannot be read as CSV");
            return None;
        };
        if rec.len() != expected.len() {
            ctx.report.push(file, &row, "wrong number of fields");
            return None;
        }
        let labels: Vec<String> = rec.iter().take(by.len()).map(str::to_owned).collect();
        let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let cell = describe(by, &refs);
        for l in &labels {
            ctx.label(l, file, &row);
        }
        let persons = match &rec[by.len()] {
            SUPPRESSED => None,
            text => {
                let Ok(v) = text.parse::<u64>() else {
                    ctx.report
                        .push(file, &cell, "persons is neither a whole number nor [c]");
                    return None;
                };
                Some(v)
            }
        };
        let sum = if listed.sum.is_some() {
            match &rec[by.len() + 1] {
                SUPPRESSED => None,
                text => match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Some(v),
                    _ => {
                        ctx.report
                            .push(file, &cell, "the sum is neither a number nor [c]");
                        return None;
                    }
                },
            }
        } else {
            None
        };
        if listed.sum.is_some() && sum.is_none() != persons.is_none() {
            ctx.report
                .push(file, &cell, "persons and the sum are not suppressed together");
        }
        lines.push(Line { labels, persons, sum });
    }
    Some(lines)
}

/// Adds a release table to the system: its cells (the same (dimension, value) pairs in another
/// table of the same source are the same cell) and one relation per margin and dimension.
pub(crate) fn add_table(path: &Path, file: &str, listed: &Listed, source: &str, ctx: &mut Ctx) {
    let Some(by) = listed.by.clone().filter(|b| !b.is_empty()) else {
        ctx.report
            .push(file, "-", "a table without by columns in the manifest");
        return;
    };
    let Some(lines) = read_lines(path, file, listed, &by, ctx) else {
        return;
    };
    // The categories of each dimension, in order of appearance.
    let mut labels: Vec<Vec<String>> = vec![Vec::new(); by.len()];
    for line in &lines {
        for (d, l) in line.labels.iter().enumerate() {
            if l != TOTAL && !labels[d].contains(l) {
                labels[d].push(l.clone());
            }
        }
    }
    let sizes: Vec<usize> = labels.iter().map(|l| l.len() + 1).collect();
    let n: usize = sizes.iter().product();
    let encode = |idx: &[usize]| idx.iter().zip(&sizes).fold(0, |acc, (&i, &s)| acc * s + i);
    let mut ids: Vec<Option<(usize, Option<usize>)>> = vec![None; n];
    let layer = listed.sum.as_ref().map(|s| format!("sum:{s}"));
    let kind = Kind::Sum {
        nonnegative: listed.sum_nonnegative.unwrap_or(false),
    };
    let half = if listed.sum_integer.unwrap_or(false) {
        0.0
    } else {
        0.5
    };
    for line in &lines {
        let idx: Vec<usize> = line
            .labels
            .iter()
            .enumerate()
            .map(|(d, l)| labels[d].iter().position(|x| x == l).unwrap_or(labels[d].len()))
            .collect();
        let refs: Vec<&str> = line.labels.iter().map(String::as_str).collect();
        let cell = describe(&by, &refs);
        let flat = encode(&idx);
        if ids[flat].is_some() {
            ctx.report.push(file, &cell, "the cell appears twice");
            return;
        }
        let mut key: CellKey = by
            .iter()
            .zip(&line.labels)
            .filter(|(_, l)| *l != TOTAL)
            .map(|(d, l)| (d.clone(), l.clone()))
            .collect();
        key.sort();
        let count = ctx
            .sys
            .var(source, "persons", key.clone(), Kind::Count, file, &cell);
        match line.persons {
            Some(v) => {
                let (lo, hi) = ctx.published_count(v, file, &cell);
                ctx.sys.publish(count, lo, hi, file, &cell, ctx.report);
            }
            None => ctx.sys.hide(count),
        }
        let sum = layer.as_ref().map(|layer| {
            let id = ctx.sys.var(source, layer, key, kind, file, &cell);
            match line.sum {
                Some(v) => ctx.sys.publish(id, v - half, v + half, file, &cell, ctx.report),
                None => ctx.sys.hide(id),
            }
            id
        });
        ids[flat] = Some((count, sum));
    }
    if ids.iter().any(Option::is_none) {
        ctx.report.push(
            file,
            "-",
            "the table is not a complete cross-classification with Total margins",
        );
        return;
    }
    // Every margin along every dimension it totals: margin = Σ cells.
    for flat in 0..n {
        let mut idx = vec![0; sizes.len()];
        let mut rest = flat;
        for d in (0..sizes.len()).rev() {
            idx[d] = rest % sizes[d];
            rest /= sizes[d];
        }
        let (total, total_sum) = ids[flat].expect("checked above");
        let cell_labels: Vec<&str> = idx
            .iter()
            .enumerate()
            .map(|(d, &i)| labels[d].get(i).map_or(TOTAL, String::as_str))
            .collect();
        let cell = describe(&by, &cell_labels);
        for d in 0..sizes.len() {
            if idx[d] != labels[d].len() {
                continue;
            }
            let mut terms = vec![(total, 1.0)];
            let mut sum_terms = total_sum.map(|s| vec![(s, 1.0)]);
            for l in 0..labels[d].len() {
                let mut member = idx.clone();
                member[d] = l;
                let (c, s) = ids[encode(&member)].expect("checked above");
                terms.push((c, -1.0));
                if let (Some(st), Some(s)) = (sum_terms.as_mut(), s) {
                    st.push((s, -1.0));
                }
            }
            let what = format!("{cell} (margin over {})", by[d]);
            ctx.sys.relate(terms, 0.0, 0.0, file, &what);
            if let Some(st) = sum_terms {
                ctx.sys.relate(st, 0.0, 0.0, file, &what);
            }
        }
    }
}
