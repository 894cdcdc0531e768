//! The counts printed in the prose of `report.html`: the sizes of the groups before matching
//! ("People who took part (N in the cohort) were compared with people who did not (M).") and
//! the treated persons the caliper left out ("N people who took part had no close enough
//! match…", or "every person who took part had a close enough match": none). They join the
//! system as published cells of the evaluation frame; any other number printed before the word
//! "people" (not a rule's bound: "at least 10 people") is checked against the threshold on its
//! own.

use std::path::Path;

use crate::extras::key;
use crate::system::Kind;
use crate::tables::Ctx;

/// The sentence on the groups before matching, around its two counts.
const GROUPS: [&str; 3] = [
    "People who took part (",
    " in the cohort) were compared with people who did not (",
    ").",
];
/// The sentence on the persons left out by the caliper, after its count.
const DROPPED: &str = " people who took part had no close enough match and were left out.";
/// The sentence saying nobody was left out.
const NONE_DROPPED: &str = "every person who took part had a close enough match.";

/// Words before a number that make it a bound of a rule rather than a count.
const RULE_WORDS: [&str; 3] = ["at least ", "fewer than ", "below "];

/// The text of an HTML document with its tags removed: each tag becomes a space, but for
/// `<span …>` and `</span>`, which mark a figure inside a sentence and vanish.
fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut tag: Option<String> = None;
    for ch in html.chars() {
        match (&mut tag, ch) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                let name = name.trim_start_matches('/');
                let name = name.split(|c: char| c.is_whitespace()).next().unwrap_or_default();
                if !name.eq_ignore_ascii_case("span") {
                    out.push(' ');
                }
                tag = None;
            }
            (Some(name), _) => name.push(ch),
            (None, _) => out.push(ch),
        }
    }
    out
}

/// The whole number that ends just before byte `end` of `text`.
fn number_before(text: &str, end: usize) -> Option<(usize, u64)> {
    let start = text[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    (start < end).then(|| text[start..end].parse().ok().map(|v| (start, v)))?
}

/// The whole number that starts at byte `start` of `text`, and where it ends.
fn number_at(text: &str, start: usize) -> Option<(u64, usize)> {
    let len = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len() - start);
    (len > 0).then(|| text[start..start + len].parse().ok().map(|v| (v, start + len)))?
}

/// Publishes a prose count as the cell with these (dimension, value) pairs.
fn publish(ctx: &mut Ctx, pairs: &[(&str, &str)], v: u64, file: &str, what: &str) {
    let cell = format!("prose: {what}");
    let id = ctx
        .sys
        .var(ctx.frame, "persons", key(pairs), Kind::Count, file, &cell);
    if v > 0 {
        let (lo, hi) = ctx.published_count(v, file, &cell);
        ctx.sys.publish(id, lo, hi, file, &cell, ctx.report);
    } else {
        // "Nobody was left out" singles out nobody.
        ctx.sys.publish(id, 0.0, 0.0, file, &cell, ctx.report);
    }
}

/// Adds the counts printed in `report.html` to the system.
pub(crate) fn add_report(path: &Path, file: &str, ctx: &mut Ctx) {
    let Ok(html) = std::fs::read_to_string(path) else {
        ctx.report.push(file, "-", "cannot be read as UTF-8 text");
        return;
    };
    let text = text_of(&html);
    let mut counted: Vec<usize> = Vec::new();
    if let Some(at) = text.find(GROUPS[0]) {
        let start = at + GROUPS[0].len();
        if let Some((treated, end)) = number_at(&text, start)
            && text[end..].starts_with(GROUPS[1])
            && let Some((untreated, end2)) = number_at(&text, end + GROUPS[1].len())
            && text[end2..].starts_with(GROUPS[2])
        {
            publish(
                ctx,
                &[("treated", "true")],
                treated,
                file,
                "treated persons in the cohort",
            );
            publish(
                ctx,
                &[("treated", "false")],
                untreated,
                file,
                "untreated persons in the cohort",
            );
            counted.extend([start, end + GROUPS[1].len()]);
        }
    }
    let dropped = [("treated", "true"), ("group", "Unknown")];
    if let Some(at) = text.find(DROPPED)
        && let Some((start, n)) = number_before(&text, at)
    {
        publish(ctx, &dropped, n, file, "treated persons left out by the caliper");
        counted.push(start);
    } else if text.contains(NONE_DROPPED) {
        publish(ctx, &dropped, 0, file, "treated persons left out by the caliper");
    }
    // Any other count of people printed in a sentence (a bound such as "at least 10 people" or
    // "fewer than 10 people" states a rule, not a count).
    for (at, _) in text.match_indices(" people") {
        if let Some((start, n)) = number_before(&text, at)
            && !counted.contains(&start)
            && n > 0
            && !RULE_WORDS.iter().any(|w| text[..start].ends_with(w))
        {
            let cell = format!("prose: {n} people");
            ctx.published_count(n, file, &cell);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{number_at, number_before, text_of};

    #[test]
    fn numbers_are_found_around_sentences_in_html() {
        let text = text_of("<p>People who took part (51 in the cohort)</p>");
        assert_eq!(text, " People who took part (51 in the cohort) ");
        let marked = text_of(
            "<p>People who took part (<span data-figure=\"report.html:eligible:true\">51</span> in the cohort)</p>",
        );
        assert_eq!(marked, text);
        let at = text.find('(').unwrap() + 1;
        assert_eq!(number_at(&text, at), Some((51, at + 2)));
        assert_eq!(number_before("left 3 people", 6), Some((5, 3)));
        assert_eq!(number_before("no people", 2), None);
    }
}
