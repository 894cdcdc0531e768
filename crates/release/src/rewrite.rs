//! Writing `[c]` for the evaluation's figures that the release withholds.
//!
//! The evaluate stage says, in `figures.json`, where every figure cell is printed: *places*
//! named `<file>:<row>:<column>`, where `<row>` is the 0-based data row of a published CSV
//! (`impact.csv:0:treated_persons`) and a place in `report.html` alone names the count it
//! prints (`report.html:eligible:treated`). Each place lists every value that implies the cell
//! (a mean of its group, a rate whose events it counts, the difference, interval and p-values
//! built on them). In `report.html`, every element that prints a value of a place carries
//! `data-figure="<place> <place> …"`: the table cells, the headline sentences, the chart marks
//! and the counts in prose.
//!
//! Withholding a set of places: in a CSV, the field at each of its places becomes `[c]` (every
//! other byte is kept); in `report.html`, the content of every element whose `data-figure`
//! names a withheld place becomes `[c]`. A place that cannot be found (a stale or edited file)
//! refuses the release rather than leave the value printed.

use std::collections::BTreeSet;

/// The text of a withheld value.
const SUPPRESSED: &str = "[c]";
/// The attribute that marks a printed figure in `report.html`.
const MARKER: &str = "data-figure=\"";

/// `bytes` of the published file `name` with the places in `hidden` written `[c]`; a file
/// without any of them is returned as it is.
pub(crate) fn withhold(name: &str, bytes: Vec<u8>, hidden: &BTreeSet<String>) -> Result<Vec<u8>, String> {
    let prefix = format!("{name}:");
    let own: Vec<&str> = hidden.iter().filter_map(|p| p.strip_prefix(&prefix)).collect();
    let is_html = std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html"));
    if own.is_empty() && !is_html {
        return Ok(bytes);
    }
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())?;
    let out = if is_html {
        withhold_html(&text, hidden, &own)?
    } else {
        withhold_csv(&text, &own)?
    };
    Ok(out.into_bytes())
}

/// The records of CSV text as raw fields (quotes kept), split on commas and line ends outside
/// quotes; a blank line ends nothing and is dropped.
fn raw_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    for ch in text.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                field.push(ch);
            }
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            '\n' if !quoted => {
                if field.ends_with('\r') {
                    field.pop();
                }
                fields.push(std::mem::take(&mut field));
                if fields.len() > 1 || !fields[0].is_empty() {
                    records.push(std::mem::take(&mut fields));
                }
                fields.clear();
            }
            _ => field.push(ch),
        }
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push(fields);
    }
    records
}

/// The places of every Kaplan–Meier curve of `survival.csv` (an outcome and group) with a
/// published step count (persons at risk, events) below `threshold`: the evaluate stage pooled
/// its steps to its own threshold, which may be lower than the release's, and the steps are not
/// cells of the frame's system; so such a curve is withheld whole (its counts and survival, and
/// the report's chart of the outcome, marked with them). Returns the number of curves withheld.
pub(crate) fn small_survival_curves(text: &str, threshold: u64, hidden: &mut BTreeSet<String>) -> usize {
    let records = raw_records(text);
    let Some((header, rows)) = records.split_first() else {
        return 0;
    };
    let col = |name: &str| header.iter().position(|h| h.trim_matches('"') == name);
    let (Some(outcome), Some(group), Some(at_risk), Some(events)) =
        (col("outcome"), col("group"), col("at_risk"), col("events"))
    else {
        return 0;
    };
    let curve = |row: &[String]| (row.get(outcome).cloned(), row.get(group).cloned());
    let small: BTreeSet<_> = rows
        .iter()
        .filter(|row| {
            [at_risk, events].iter().any(|&c| {
                row.get(c)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|v| v < threshold)
            })
        })
        .map(|row| curve(row))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        if small.contains(&curve(row)) {
            hidden.extend(["at_risk", "events", "survival"].map(|c| format!("survival.csv:{i}:{c}")));
        }
    }
    small.len()
}

/// CSV text with the fields at `places` (`<row>:<column>`) written `[c]`.
fn withhold_csv(text: &str, places: &[&str]) -> Result<String, String> {
    let mut records = raw_records(text);
    let header: Vec<String> = records
        .first()
        .map(|h| h.iter().map(|f| f.trim_matches('"').to_owned()).collect())
        .unwrap_or_default();
    for place in places {
        let missing = || {
            format!(
                "the evaluation's figures name a value it does not hold ({place}); run the evaluate stage again"
            )
        };
        let (row, column) = place.split_once(':').ok_or_else(missing)?;
        let row: usize = row.parse().map_err(|_| missing())?;
        let col = header.iter().position(|h| h == column).ok_or_else(missing)?;
        let field = records
            .get_mut(row + 1)
            .and_then(|r| r.get_mut(col))
            .ok_or_else(missing)?;
        SUPPRESSED.clone_into(field);
    }
    let mut out = String::with_capacity(text.len());
    for record in records {
        out.push_str(&record.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// The end of the element whose start tag ends at `from`: the byte where its closing tag
/// `</name>` starts, counting nested elements of the same name.
fn closing_tag(html: &str, name: &str, from: usize) -> Option<usize> {
    let open = format!("<{name}");
    let close = format!("</{name}>");
    let mut depth = 1;
    let mut at = from;
    loop {
        let next_close = html[at..].find(&close)? + at;
        let next_open = html[at..next_close]
            .match_indices(&open)
            .map(|(i, _)| i + at)
            .find(|&i| matches!(html.as_bytes().get(i + open.len()), Some(b' ' | b'>')));
        if let Some(i) = next_open {
            depth += 1;
            at = i + open.len();
        } else {
            depth -= 1;
            if depth == 0 {
                return Some(next_close);
            }
            at = next_close + close.len();
        }
    }
}

/// `report.html` with the content of every element marked with a withheld place written
/// `[c]`. Every place of the report's own (`own`) must be marked somewhere.
fn withhold_html(html: &str, hidden: &BTreeSet<String>, own: &[&str]) -> Result<String, String> {
    let mut out = String::with_capacity(html.len());
    let mut found: BTreeSet<&str> = BTreeSet::new();
    let mut at = 0;
    while let Some(i) = html[at..].find(MARKER).map(|i| i + at) {
        let broken = || "a figure marker is not inside a tag".to_owned();
        let tag_start = html[..i].rfind('<').ok_or_else(broken)?;
        let value_start = i + MARKER.len();
        let value_end = html[value_start..].find('"').ok_or_else(broken)? + value_start;
        let tag_end = html[value_end..].find('>').ok_or_else(broken)? + value_end + 1;
        let name: String = html[tag_start + 1..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let ids = &html[value_start..value_end];
        found.extend(ids.split(' ').filter_map(|id| id.strip_prefix("report.html:")));
        if !ids.split(' ').any(|id| hidden.contains(id)) {
            out.push_str(&html[at..tag_end]);
            at = tag_end;
            continue;
        }
        let end = closing_tag(html, &name, tag_end).ok_or_else(broken)?;
        out.push_str(&html[at..tag_end]);
        out.push_str(SUPPRESSED);
        at = end;
    }
    out.push_str(&html[at..]);
    if let Some(place) = own.iter().find(|p| !found.contains(*p)) {
        return Err(format!(
            "the evaluation's figures name a count it does not mark (report.html:{place}); run the evaluate stage again"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, text: &str, hidden: &[&str], expected: &str) {
        let hidden: BTreeSet<String> = hidden.iter().map(|&h| h.to_owned()).collect();
        let out = withhold(name, text.as_bytes().to_vec(), &hidden).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn csv_fields_at_withheld_places_become_c() {
        let csv = "outcome,measure,treated_persons\n\"a, b\",rate,12\nx,\"q\"\"\",30\n";
        check("impact.csv", csv, &[], csv);
        check("impact.csv", csv, &["balance.csv:0:treated_persons"], csv);
        check(
            "impact.csv",
            csv,
            &["impact.csv:1:treated_persons", "impact.csv:0:measure"],
            "outcome,measure,treated_persons\n\"a, b\",[c],12\nx,\"q\"\"\",[c]\n",
        );
    }

    #[test]
    fn a_survival_curve_with_a_step_below_the_threshold_is_withheld_whole() {
        let csv = "outcome,group,day,at_risk,events,survival\nr,treated,10,100,12,0.88\nr,treated,20,88,9,0.78\nr,comparison,10,100,20,0.8\n";
        let mut hidden = BTreeSet::new();
        assert_eq!(small_survival_curves(csv, 10, &mut hidden), 1);
        check(
            "survival.csv",
            csv,
            &hidden.iter().map(String::as_str).collect::<Vec<_>>(),
            "outcome,group,day,at_risk,events,survival\nr,treated,10,[c],[c],[c]\nr,treated,20,[c],[c],[c]\nr,comparison,10,100,20,0.8\n",
        );
        assert_eq!(small_survival_curves(csv, 5, &mut BTreeSet::new()), 0);
    }

    #[test]
    fn a_place_the_file_does_not_hold_is_an_error() {
        let hidden: BTreeSet<String> = ["impact.csv:5:treated_persons".to_owned()].into();
        let csv = b"outcome,treated_persons\nx,12\n".to_vec();
        assert!(withhold("impact.csv", csv, &hidden).is_err());
        let html = b"<p>People (<span data-figure=\"report.html:eligible:true\">51</span>)</p>".to_vec();
        let hidden: BTreeSet<String> = ["report.html:eligible:false".to_owned()].into();
        assert!(withhold("report.html", html, &hidden).is_err());
    }

    #[test]
    fn marked_elements_naming_a_withheld_place_read_c() {
        let html = "<p>People (<span data-figure=\"report.html:eligible:true\">51</span>) and (<span data-figure=\"report.html:eligible:false\">80</span>)</p>\
<svg><g data-figure=\"impact.csv:0:difference impact.csv:0:ci_low\"><g><line/></g><text>3%</text></g></svg>\
<td data-figure=\"balance.csv:1:treated_mean\">0.5000</td>";
        check("report.html", html, &[], html);
        check(
            "report.html",
            html,
            &["report.html:eligible:true", "impact.csv:0:ci_low"],
            "<p>People (<span data-figure=\"report.html:eligible:true\">[c]</span>) and (<span data-figure=\"report.html:eligible:false\">80</span>)</p>\
<svg><g data-figure=\"impact.csv:0:difference impact.csv:0:ci_low\">[c]</g></svg>\
<td data-figure=\"balance.csv:1:treated_mean\">0.5000</td>",
        );
    }
}
