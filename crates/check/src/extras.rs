//! The evaluation's published files: `impact.csv` (group sizes), `balance.csv` (a 0/1 item's
//! mean × a group size is a count), `survival.csv` (persons at risk and events per step).
//!
//! Their figures are cells of the evaluation frame's source (`evaluation/frame`, or
//! `<programme>/frame` with several programmes, where the folder's release tables
//! `from = "evaluation"` count; see [`frame_source`]), so a table by `[group, sex]` and a mean in `balance.csv`
//! speak about the same variables: `group=treated` is a matched treated person,
//! `group=comparison` a matched comparison person, `treated=true|false` any cohort person.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::path::Path;

use crate::CheckError;
use crate::system::{CellKey, Kind};
use crate::tables::{Ctx, SUPPRESSED};

/// The source name of the evaluation frame, as the release stage writes it into `joint_group`
/// for a single evaluation (with several programmes, each is `<programme>/frame`).
const EVALUATION: &str = "evaluation/frame";
/// The last component of an evaluation frame's source name.
const FRAME: &str = "frame";
/// The first component of a linked extract's source name (`linked/<extract>`).
const LINKED: &str = "linked";

/// The source of a folder's evaluation files: the frame its tables of the evaluation count
/// (`joint_group` `evaluation/frame`, or `<programme>/frame` with several programmes), else
/// `evaluation/frame`. So a table by `group` counts the same persons as `impact.csv` beside it,
/// and the evaluations of two programmes audited jointly (`--with`) stay apart.
pub(crate) fn frame_source<'a>(joint_groups: impl IntoIterator<Item = &'a str>) -> &'a str {
    joint_groups
        .into_iter()
        .find(|g| {
            g.rsplit_once('/')
                .is_some_and(|(dir, name)| name == FRAME && dir != LINKED)
        })
        .unwrap_or(EVALUATION)
}
/// The level of a missing value in `balance.csv`, and its label in release tables.
const BALANCE_MISSING: &str = "(missing)";
const UNKNOWN: &str = "Unknown";

/// A CSV file's columns by name, and its rows of fields.
type Csv = (HashMap<String, usize>, Vec<Vec<String>>);

/// A CSV file as a header and rows of fields; `None` (with a problem) when unreadable or when a
/// needed column is missing.
fn read(path: &Path, file: &str, needed: &[&str], ctx: &mut Ctx) -> Option<Csv> {
    let Ok(mut reader) = csv::ReaderBuilder::new().has_headers(true).from_path(path) else {
        ctx.report.push(file, "-", "cannot be read as CSV");
        return None;
    };
    let Ok(header) = reader.headers() else {
        ctx.report.push(file, "-", "cannot be read as CSV");
        return None;
    };
    let columns: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_owned(), i))
        .collect();
    if let Some(missing) = needed.iter().find(|c| !columns.contains_key(**c)) {
        ctx.report.push(file, "-", format!("has no column {missing}"));
        return None;
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let Ok(rec) = rec else {
            ctx.report
                .push(file, &format!("row {}", i + 2), "cannot be read as CSV");
            return None;
        };
        rows.push(rec.iter().map(str::to_owned).collect());
    }
    Some((columns, rows))
}

pub(crate) fn key(pairs: &[(&str, &str)]) -> CellKey {
    let mut k: CellKey = pairs.iter().map(|&(d, l)| (d.to_owned(), l.to_owned())).collect();
    k.sort();
    k
}

/// The variable of a count of persons of the evaluation frame, first seen at `file`, `cell`.
fn persons(ctx: &mut Ctx, pairs: &[(&str, &str)], file: &str, cell: &str) -> usize {
    ctx.sys
        .var(ctx.frame, "persons", key(pairs), Kind::Count, file, cell)
}

/// A published count field: its variable gets the value (checked against the rules) or is
/// marked suppressed. Text that is neither (a blank, a reason) leaves the variable alone.
fn count_field(ctx: &mut Ctx, id: usize, text: &str, file: &str, cell: &str) {
    if text == SUPPRESSED {
        ctx.sys.hide(id);
    } else if let Ok(v) = text.parse::<u64>() {
        let (lo, hi) = ctx.published_count(v, file, cell);
        ctx.sys.publish(id, lo, hi, file, cell, ctx.report);
    } else if !text.is_empty() {
        ctx.report
            .push(file, cell, "a count is neither a whole number nor [c]");
    }
}

/// What the published counts of one group's column of `impact.csv` say about its size.
#[derive(Debug, Clone, Copy)]
enum GroupSize {
    /// No count is published: every `[c]` is the group's size.
    Unpublished,
    /// The largest published count may be the group's size, and is taken to be.
    Largest(u64),
    /// The other published figures show the group is larger than every count: each is an
    /// outcome's own sample.
    Larger,
}

impl GroupSize {
    /// Whether a field of the column is an outcome's own sample (not the group's size).
    fn own_sample(self, text: &str) -> bool {
        match (self, text.parse::<u64>()) {
            (Self::Unpublished, _) => false,
            (Self::Largest(m), Ok(v)) => v < m,
            (Self::Larger, Ok(_)) => true,
            (_, Err(_)) => text == SUPPRESSED,
        }
    }
}

/// `impact.csv`: the matched group sizes of every outcome row. An outcome that counts everyone
/// publishes the whole matched group's size; one that leaves persons out (`unknown =
/// "exclude"`, `data_cutoff`, deaths) publishes the size of its own sample, a part of the group,
/// and `[c]` when few are left out. The checker reads it as an attacker would, from the
/// published files alone, and so after every other file (see `check_release`): per group, the
/// largest published count is the group's size unless what the system already holds shows the
/// group is larger (the smallest value its relations allow `persons{group}` — a table's `Total`,
/// the persons at risk on the first step of `survival.csv`, the prose — exceeds the count, beyond
/// its rounding); a smaller count, or `[c]` beside a published one, is the outcome's own sample
/// (`<outcome> sample = counted`, at most the group). When the group is shown to be larger,
/// every count and every `[c]` is an own sample; with no count published, every `[c]` is the
/// group's. Taking the largest count for the group's size whenever it may be keeps the
/// never-miss bias (a smaller-than-true group only narrows what the attacker derives from it),
/// and leaving it when the figures exclude it removes the false alarm of a release where every
/// outcome leaves someone out (a table publishing the true size was reported as differing).
pub(crate) fn add_impact(path: &Path, file: &str, ctx: &mut Ctx) -> Result<(), CheckError> {
    let Some((col, rows)) = read(
        path,
        file,
        &["outcome", "measure", "treated_persons", "comparison_persons"],
        ctx,
    ) else {
        return Ok(());
    };
    let columns = [
        ("treated_persons", "treated"),
        ("comparison_persons", "comparison"),
    ];
    let mut sizes = [GroupSize::Unpublished; 2];
    for (size, (column, group)) in sizes.iter_mut().zip(columns) {
        // The largest count, and the first row that publishes it.
        let Some((m, Reverse(i))) = rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| Some((row[col[column]].parse::<u64>().ok()?, Reverse(i))))
            .max()
        else {
            continue;
        };
        let whole = persons(
            ctx,
            &[("group", group)],
            file,
            &format!("row {}, {column}", i + 2),
        );
        let (_, m_hi) = ctx.rounded(m);
        let larger = ctx
            .sys
            .least(whole, ctx.rules)?
            .is_some_and(|least| (least - 1e-6).ceil() > m_hi);
        *size = if larger {
            GroupSize::Larger
        } else {
            GroupSize::Largest(m)
        };
    }
    for (i, row) in rows.iter().enumerate() {
        let at = format!("row {}", i + 2);
        let outcome = &row[col["outcome"]];
        ctx.label(outcome, file, &at);
        ctx.label(&row[col["measure"]], file, &at);
        for ((column, group), size) in columns.into_iter().zip(sizes) {
            let cell = format!("{at}, {column}");
            let text = &row[col[column]];
            let whole = persons(ctx, &[("group", group)], file, &cell);
            if !size.own_sample(text) {
                count_field(ctx, whole, text, file, &cell);
                continue;
            }
            let sample = format!("{outcome} sample");
            let id = persons(
                ctx,
                &[("group", group), (sample.as_str(), "counted")],
                file,
                &cell,
            );
            ctx.sys.relate(
                vec![(id, 1.0), (whole, -1.0)],
                f64::NEG_INFINITY,
                0.0,
                file,
                &cell,
            );
            count_field(ctx, id, text, file, &cell);
        }
    }
    Ok(())
}

/// A mean with its rounding: the interval of true values a printed mean stands for.
fn mean_interval(text: &str) -> Option<(f64, f64)> {
    let v: f64 = text.parse().ok().filter(|v: &f64| v.is_finite())?;
    let decimals = text.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let half = 0.5 * 10f64.powi(-decimals);
    Some((v - half, v + half))
}

/// `balance.csv`: every 0/1 item (a row with a level) ties a count to a group size:
/// `(m − δ)·N ≤ C ≤ (m + δ)·N` for a mean `m` printed to the precision `δ`.
pub(crate) fn add_balance(path: &Path, file: &str, ctx: &mut Ctx) {
    let means = [
        ("treated_mean", ("group", "treated")),
        ("treated_mean_before", ("treated", "true")),
        ("untreated_mean_before", ("treated", "false")),
    ];
    let Some((col, rows)) = read(
        path,
        file,
        &[
            "covariate",
            "level",
            "treated_mean",
            "treated_mean_before",
            "untreated_mean_before",
        ],
        ctx,
    ) else {
        return;
    };
    for (i, row) in rows.iter().enumerate() {
        let at = format!("row {}", i + 2);
        let (covariate, level) = (&row[col["covariate"]], &row[col["level"]]);
        ctx.label(covariate, file, &at);
        ctx.label(level, file, &at);
        if level.is_empty() {
            continue;
        }
        let level = if level == BALANCE_MISSING {
            UNKNOWN
        } else {
            level.as_str()
        };
        for (column, (dim, value)) in means {
            let Some((lo, hi)) = mean_interval(&row[col[column]]) else {
                continue;
            };
            let cell = format!("{dim}={value}, {covariate}={level} (from {column})");
            let n_cell = format!("{dim}={value} (from {column})");
            let c = ctx.sys.var(
                ctx.frame,
                "persons",
                key(&[(dim, value), (covariate, level)]),
                Kind::Count,
                file,
                &cell,
            );
            let n = ctx.sys.var(
                ctx.frame,
                "persons",
                key(&[(dim, value)]),
                Kind::Count,
                file,
                &n_cell,
            );
            ctx.sys
                .relate(vec![(c, 1.0), (n, -lo)], 0.0, f64::INFINITY, file, &cell);
            ctx.sys
                .relate(vec![(c, 1.0), (n, -hi)], f64::NEG_INFINITY, 0.0, file, &cell);
        }
    }
}

/// `survival.csv`: per outcome and group, the published persons at risk and events of each
/// step; at risk falls by at least the step's events, and the first step's at risk is at most
/// the group's size.
pub(crate) fn add_survival(path: &Path, file: &str, ctx: &mut Ctx) {
    let Some((col, rows)) = read(path, file, &["outcome", "group", "day", "at_risk", "events"], ctx) else {
        return;
    };
    let mut previous: HashMap<(String, String), (usize, usize)> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let at = format!("row {}", i + 2);
        let (outcome, group, day) = (&row[col["outcome"]], &row[col["group"]], &row[col["day"]]);
        ctx.label(outcome, file, &at);
        ctx.label(group, file, &at);
        let mut ids = [0; 2];
        for (k, figure) in ["at_risk", "events"].into_iter().enumerate() {
            let cell = format!("outcome={outcome}, group={group}, day={day}, {figure}");
            ids[k] = ctx.sys.var(
                ctx.frame,
                "survival",
                key(&[
                    ("outcome", outcome),
                    ("group", group),
                    ("day", day),
                    ("figure", figure),
                ]),
                Kind::Count,
                file,
                &cell,
            );
            count_field(ctx, ids[k], &row[col[figure]], file, &cell);
        }
        let [at_risk, events] = ids;
        ctx.sys.relate(
            vec![(at_risk, 1.0), (events, -1.0)],
            0.0,
            f64::INFINITY,
            file,
            &at,
        );
        if let Some((prev_at_risk, prev_events)) =
            previous.insert((outcome.clone(), group.clone()), (at_risk, events))
        {
            ctx.sys.relate(
                vec![(prev_at_risk, 1.0), (prev_events, -1.0), (at_risk, -1.0)],
                0.0,
                f64::INFINITY,
                file,
                &at,
            );
        } else {
            let size = format!("group={group} (from {at})");
            let n = ctx.sys.var(
                ctx.frame,
                "persons",
                key(&[("group", group)]),
                Kind::Count,
                file,
                &size,
            );
            ctx.sys
                .relate(vec![(n, 1.0), (at_risk, -1.0)], 0.0, f64::INFINITY, file, &at);
        }
    }
}

/// The arms of the evaluation as the published files name them: all treated and the matched
/// treated (`group=treated`) are the same persons but for those the caliper dropped (`treated`
/// with no `group`); likewise all untreated and the matched comparison group. For every cell
/// the published files name with an arm, and its other (dimension, value) pairs `K`:
/// `(K) = (treated=true, K) + (treated=false, K)`, and
/// `(treated=true, K) = (group=treated, K) + (dropped, K)` (the untreated and the comparison
/// group the same way). The dropped cells are printed nowhere: one that can be worked out to
/// hold 1 to threshold − 1 persons fails (a zero singles out nobody). This is the caliper-drop
/// attack of issue 12: a table margin minus the untreated count of the report minus the matched
/// treated of `impact.csv`. Cells by both `treated` and `group` are tied to these: the matched
/// treated are treated, the comparison group untreated, and the two other pairs are empty.
pub(crate) fn add_arms(ctx: &mut Ctx) {
    const FILE: &str = "(the evaluation's arms)";
    let arms = [
        ("treated", "true"),
        ("treated", "false"),
        ("group", "treated"),
        ("group", "comparison"),
    ];
    let is_arm = |(d, _): &(String, String)| d == "treated" || d == "group";
    let existing: Vec<CellKey> = ctx.sys.keys(ctx.frame, "persons");
    let mut rests: Vec<CellKey> = existing
        .iter()
        .filter(|k| k.iter().any(is_arm))
        .map(|k| k.iter().filter(|p| !is_arm(p)).cloned().collect())
        .collect();
    rests.sort();
    rests.dedup();
    for rest in rests {
        let with = |pairs: &[(&str, &str)]| {
            let mut k = rest.clone();
            k.extend(pairs.iter().map(|&(d, v)| (d.to_owned(), v.to_owned())));
            k.sort();
            k
        };
        let name = |pairs: &[(&str, &str)]| {
            with(pairs)
                .iter()
                .map(|(d, v)| format!("{d}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut var = |pairs: &[(&str, &str)]| {
            ctx.sys
                .var(ctx.frame, "persons", with(pairs), Kind::Count, FILE, &name(pairs))
        };
        let all = var(&[]);
        let [yes, no, matched, comparison] = arms.map(|a| var(&[a]));
        let dropped = var(&[arms[0], ("group", UNKNOWN)]);
        let unmatched = var(&[arms[1], ("group", UNKNOWN)]);
        // A table by both `treated` and `group` names the matched groups again, and two cells
        // that are empty by construction (no untreated person is a matched treated one).
        let both: Vec<(usize, Option<usize>, String)> = [
            ([arms[0], arms[2]], Some(matched)),
            ([arms[1], arms[3]], Some(comparison)),
            ([arms[0], arms[3]], None),
            ([arms[1], arms[2]], None),
        ]
        .into_iter()
        .filter(|(pairs, _)| existing.binary_search(&with(pairs)).is_ok())
        .map(|(pairs, same)| (var(&pairs), same, name(&pairs)))
        .collect();
        for (total, parts) in [
            (all, [yes, no]),
            (yes, [matched, dropped]),
            (no, [comparison, unmatched]),
        ] {
            let cell = name(&[]);
            ctx.sys.relate(
                vec![(total, 1.0), (parts[0], -1.0), (parts[1], -1.0)],
                0.0,
                0.0,
                FILE,
                &cell,
            );
        }
        ctx.sys.zero_ok(dropped);
        ctx.sys.zero_ok(unmatched);
        for (cell, same, label) in both {
            let terms = if let Some(arm) = same {
                vec![(cell, 1.0), (arm, -1.0)]
            } else {
                ctx.sys.zero_ok(cell);
                vec![(cell, 1.0)]
            };
            ctx.sys.relate(terms, 0.0, 0.0, FILE, &label);
        }
    }
}
