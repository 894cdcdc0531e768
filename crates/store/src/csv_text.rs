//! Published CSV text: the one guard against spreadsheet formulas, and RFC 4180 quoting.
//!
//! Every CSV that leaves the secure environment (the release tables and the evaluation's
//! `impact.csv`, `balance.csv` and `survival.csv`) writes its labels through [`csv_label`], so a
//! label that a spreadsheet would run as a formula is neutralised the same way everywhere: it is
//! prefixed with `'`. Numbers are written as they are (a negative number is a number, not a
//! formula): guard labels, never numeric cells.

use std::borrow::Cow;

/// The first characters that make a spreadsheet read a cell as a formula (or, for tab and
/// carriage return, that hide one).
pub const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a label, as published, would be read as a formula by a spreadsheet.
pub fn is_formula_like(label: &str) -> bool {
    label.starts_with(FORMULA_STARTS)
}

/// A label with the formula guard applied: prefixed with `'` when it starts with one of
/// [`FORMULA_STARTS`], unchanged otherwise.
pub fn guard_label(label: &str) -> Cow<'_, str> {
    if is_formula_like(label) {
        Cow::Owned(format!("'{label}"))
    } else {
        Cow::Borrowed(label)
    }
}

/// Quotes a field when it holds a comma, a quote or a line break.
pub fn csv_quote(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A label field: guarded against formulas, then quoted when needed.
pub fn csv_label(value: &str) -> String {
    csv_quote(&guard_label(value))
}

/// Joins fields (already guarded and quoted) into CSV text with a header and `\n` line ends.
pub fn csv_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(label: &str, expected: &str) {
        assert_eq!(csv_label(label), expected, "label {label:?}");
    }

    #[test]
    fn formula_like_labels_are_neutralised_and_quoted() {
        check("theft", "theft");
        check("=1+1", "'=1+1");
        check("+44", "'+44");
        check("-x", "'-x");
        check("@SUM(A1)", "'@SUM(A1)");
        check("\tx", "'\tx");
        check("\rx", "\"'\rx\"");
        check("a,b", "\"a,b\"");
        check("say \"hi\"", "\"say \"\"hi\"\"\"");
        check("=a,b", "\"'=a,b\"");
        check("", "");
    }

    #[test]
    fn every_guarded_label_is_no_longer_formula_like() {
        for c in FORMULA_STARTS {
            let label = format!("{c}cmd");
            assert!(is_formula_like(&label));
            assert!(!is_formula_like(&guard_label(&label)));
        }
    }
}
