//! The page: HTML with its data (JSON), script and style inline, and a Content-Security-Policy
//! that allows exactly that script and that style by their SHA-256 hashes and nothing else: no
//! request leaves the page, not even to another file.

use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::overlap::listed;
use crate::{PooledGroup, Programme, SharedCohort};

/// The page's script: builds the table, filters, forest plots, pooled table and survival charts
/// from the JSON data block.
const SCRIPT: &str = include_str!("page.js");
/// The page's style.
const STYLE: &str = include_str!("page.css");

/// One outcome (measure) column of the dashboard.
#[derive(Debug, Serialize)]
struct Outcome<'a> {
    key: String,
    #[serde(rename = "outcome")]
    name: &'a str,
    measure: &'a str,
    /// What a difference is shown in.
    unit: &'static str,
    /// The factor from the published difference to the shown one.
    scale: f64,
}

#[derive(Debug, Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    programme: &'a Programme,
    report: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Data<'a> {
    programmes: Vec<Row<'a>>,
    outcomes: Vec<Outcome<'a>>,
    pooled: &'a [PooledGroup],
}

fn unit(measure: &str) -> (&'static str, f64) {
    match measure {
        "rate" | "log_rank" => ("percentage points", 100.0),
        "mean_days" => ("days", 1.0),
        _ => ("", 1.0),
    }
}

/// Every outcome (measure) with an estimate somewhere, in the order first seen.
fn outcomes(programmes: &[Programme]) -> Vec<Outcome<'_>> {
    let mut out: Vec<Outcome<'_>> = Vec::new();
    for e in programmes.iter().flat_map(|p| &p.effects) {
        let key = format!("{}|{}", e.outcome, e.measure);
        if !out.iter().any(|o| o.key == key) {
            let (unit, scale) = unit(&e.measure);
            out.push(Outcome {
                key,
                name: &e.outcome,
                measure: &e.measure,
                unit,
                scale,
            });
        }
    }
    out
}

/// Base64 (RFC 4648, with padding), for the CSP's hash sources.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A CSP hash source for an inline script or style.
fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())))
}

/// JSON that can sit inside a `<script>` element: no `<`, `>` or `&` (so never `</script>`),
/// and no line or paragraph separators.
fn script_json(value: &impl Serialize) -> String {
    let json = serde_json::to_string(value).expect("the dashboard data serialises");
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Text for HTML element content (never used in an attribute value).
fn text(content: &str) -> String {
    content
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The notice naming the programmes whose releases share one cohort (nothing when none do).
/// It names programmes only, never folders or the cohort's fingerprint.
pub(crate) fn shared_cohort_notice(groups: &[SharedCohort]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let mut html = String::from(
        "<section id=\"shared-cohorts\" class=\"warning\" role=\"note\" aria-labelledby=\"h-shared\">\
<h2 id=\"h-shared\">Releases that share a cohort</h2>\
<p>These programmes' releases were made from the same cohort data, so figures could be differenced \
across them: one release's published figures subtracted from another's can reveal a group that \
neither shows, although each passes <code>check-release</code> on its own.</p><ul>",
    );
    for group in groups {
        let names: Vec<String> = group.programmes.iter().map(|n| text(n)).collect();
        let _ = write!(html, "<li>{}</li>", listed(&names));
    }
    html.push_str(
        "</ul><p>Audit each pair jointly before they are published together: \
<code>linklab check-release DIR --with OTHER_DIR</code>.</p></section>\n",
    );
    html
}

/// The whole page.
pub(crate) fn page(
    programmes: &[Programme],
    links: &[Option<String>],
    pooled: &[PooledGroup],
    shared: &[SharedCohort],
) -> String {
    let data = Data {
        programmes: programmes
            .iter()
            .zip(links)
            .map(|(programme, report)| Row {
                programme,
                report: report.as_deref(),
            })
            .collect(),
        outcomes: outcomes(programmes),
        pooled,
    };
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(SCRIPT),
        csp_hash(STYLE)
    );
    let types: std::collections::BTreeSet<&str> = programmes.iter().map(|p| p.kind.as_str()).collect();
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
<title>Programme evidence dashboard</title><style>{STYLE}</style></head><body>\
<header><h1>Programme evidence dashboard</h1>\
<p>{n} programme{s} of {t} type{ts}, each from a release that passes <code>check-release</code>. \
Every figure is one the releases published; the pooled estimates are computed from those figures alone.</p></header>\
<main>",
        n = programmes.len(),
        s = if programmes.len() == 1 { "" } else { "s" },
        t = types.len(),
        ts = if types.len() == 1 { "" } else { "s" },
    );
    html.push_str(&shared_cohort_notice(shared));
    html.push_str(BODY);
    let _ = writeln!(
        html,
        "</main><script type=\"application/json\" id=\"data\">{}</script><script>{SCRIPT}</script></body></html>",
        script_json(&data)
    );
    html
}

/// The page's fixed parts; the script fills them.
const BODY: &str = r#"<noscript><p>This dashboard needs JavaScript to draw its table and charts.</p></noscript>
<section aria-labelledby="h-filters" class="controls"><h2 id="h-filters">Find programmes</h2>
<label>Search <input id="search" type="search" placeholder="name, organisation, type"></label>
<label>Outcome <select id="outcome"><option value="all">All outcomes</option></select></label>
<label>Type <select id="type"><option value="all">All types</option></select></label>
<label>Result <select id="result"><option value="all">Any result</option><option value="significant">Significant</option><option value="inconclusive">Inconclusive</option><option value="not_published">Not published</option></select></label>
<p id="count" role="status"></p></section>
<section aria-labelledby="h-table"><h2 id="h-table">Programmes</h2>
<p class="note">An effect is the difference between participants and their matched comparison group, with its 95% confidence interval; it is <b>significant</b> when the interval excludes zero, <b>inconclusive</b> otherwise. Tick programmes to compare their survival curves below.</p>
<div class="scroll"><table id="programmes"><thead></thead><tbody></tbody></table></div></section>
<section aria-labelledby="h-forest"><h2 id="h-forest">Effects by outcome</h2><div id="forest"></div></section>
<section aria-labelledby="h-pooled"><h2 id="h-pooled">Pooled by programme type</h2>
<p class="note">A random-effects meta-analysis of the published estimates of each type's programmes (two or more), by REML and by DerSimonian–Laird, with I² (the share of the variation that is between programmes, not chance) and a 95% prediction interval for a new programme of the type. Each programme's standard error is read from its published 95% CI.</p>
<div class="scroll" id="pooled"></div></section>
<section aria-labelledby="h-survival"><h2 id="h-survival">Survival curves</h2><div id="survival"></div></section>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn text_leaves_no_markup() {
        for (input, expected) in [
            ("North Mentors", "North Mentors"),
            ("A & B <b>", "A &amp; B &lt;b&gt;"),
            ("&lt;", "&amp;lt;"),
        ] {
            assert_eq!(text(input), expected, "{input:?}");
        }
    }

    #[test]
    fn data_never_closes_its_script_element() {
        let text =
            script_json(&serde_json::json!({ "name": "</script><script>alert(1)</script> & \u{2028}" }));
        assert!(
            !text.contains('<') && !text.contains('>') && !text.contains('&'),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(back["name"], "</script><script>alert(1)</script> & \u{2028}");
    }
}
