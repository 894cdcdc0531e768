//! Messages for pipeline files that are not valid TOML or do not fit the schema, which never
//! quote the file.
//!
//! toml's own message shows a snippet of the offending line, and serde's messages quote the value
//! they found (`invalid type: string "…"`). A file passed by mistake as a pipeline (a key file, a
//! header-less CSV of names) would have its content printed. Here only the rule is kept: the
//! snippet is dropped (the line and column are given instead), and every quoted segment of the
//! part of the message that describes what was *found* is removed. What was *expected* comes
//! from the schema and the grammar, so it stays. Two exceptions: a missing key is named (it comes
//! from the schema), and an unknown key is named when it is a near miss of a key the schema
//! expects there (`keeep` for `keep`, `memory` for `memory_limit`: within two edits, or a prefix
//! of it), since it is then almost certainly a misspelt setting rather than content.

/// The longest unknown key that is named in a message.
const MAX_KEY_SHOWN: usize = 40;

/// The rule a TOML or schema error broke, without any of the file's content: `message` is the
/// error's message without its snippet (`toml::de::Error::message`).
pub(crate) fn rule(message: &str) -> String {
    let message = message.trim();
    let expected_keys = expected_keys(message);
    let mut found = String::with_capacity(message.len());
    let mut expected = "";
    let mut rest = message;
    loop {
        let quote = rest.find(['`', '"']);
        let word = rest.find("expected");
        match (quote, word) {
            (_, Some(at)) if quote.is_none_or(|q| at < q) => {
                found.push_str(&rest[..at]);
                expected = &rest[at..];
                break;
            }
            (Some(start), _) => {
                let before = &rest[..start];
                let Some(len) = quoted_len(&rest[start..]) else {
                    // An unmatched quote: what follows cannot be told apart from content.
                    found.push_str(before);
                    break;
                };
                let segment = &rest[start + 1..start + len - 1];
                let shown = (before.ends_with("missing field ") && is_key(segment))
                    || (before.ends_with("unknown field ") && is_near_miss(segment, &expected_keys));
                if shown {
                    found.push_str(&rest[..start + len]);
                } else {
                    found.push_str(before.trim_end());
                }
                rest = &rest[start + len..];
            }
            (None, _) => {
                found.push_str(rest);
                break;
            }
        }
    }
    let found = one_line(&found);
    let expected = one_line(expected);
    match (found.trim_end_matches([',', ';', ' ']), expected.as_str()) {
        (found, "") => found.to_owned(),
        ("", expected) => expected.to_owned(),
        (found, expected) => format!("{found}, {expected}"),
    }
}

/// The length in bytes of the quoted segment `text` starts with, both quotes included (a
/// backslash escapes the next character in double quotes, as serde writes strings); `None` if
/// the quote is not closed.
fn quoted_len(text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    let (_, quote) = chars.next()?;
    while let Some((at, c)) = chars.next() {
        if c == '\\' && quote == '"' {
            chars.next();
        } else if c == quote {
            return Some(at + c.len_utf8());
        }
    }
    None
}

/// A multi-line message (a reason, then what was expected) on one line.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.join("; ")
}

/// The keys listed after the first `expected` of the message (the schema's names), which are
/// backquoted.
fn expected_keys(message: &str) -> Vec<&str> {
    let Some(at) = message.find(", expected ") else {
        return Vec::new();
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|key| is_key(key))
        .collect()
}

/// Whether an unknown key is a misspelling of one of `expected`: a key name within two edits of
/// one, or a prefix of one (or the other way round) of at least three characters.
fn is_near_miss(key: &str, expected: &[&str]) -> bool {
    is_key(key)
        && expected.iter().any(|e| {
            let prefix = key.len().min(e.len()) >= 3 && (e.starts_with(key) || key.starts_with(e));
            prefix || edits(key, e) <= 2
        })
}

/// The Levenshtein distance between two short ASCII names.
fn edits(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let next = (diagonal + usize::from(x != y))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// `[a-z][a-z0-9_]*`, not too long.
fn is_key(text: &str) -> bool {
    let mut bytes = text.bytes();
    text.len() <= MAX_KEY_SHOWN
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::rule;

    fn check(message: &str, expected: &str) {
        assert_eq!(rule(message), expected, "{message:?}");
    }

    #[test]
    fn found_values_are_dropped_and_expectations_kept() {
        check(
            "invalid type: string \"Zqxcanary\", expected u64",
            "invalid type: string, expected u64",
        );
        check(
            "invalid value: integer `-5`, expected u64",
            "invalid value: integer, expected u64",
        );
        check(
            "unknown variant `QQ123456C`, expected one of `name`, `dob`",
            "unknown variant, expected one of `name`, `dob`",
        );
        check(
            "unknown field `memory`, expected one of `spine`, `memory_limit`",
            "unknown field `memory`, expected one of `spine`, `memory_limit`",
        );
        check(
            "unknown field `Zqxcanary`, expected one of `spine`",
            "unknown field, expected one of `spine`",
        );
        check(
            "unknown field `zqxcanary`, expected one of `spine`, `synth`",
            "unknown field, expected one of `spine`, `synth`",
        );
        check(
            "unknown field `keeep`, expected one of `name`, `keep`",
            "unknown field `keeep`, expected one of `name`, `keep`",
        );
        check("duplicate key `qq123456c a`", "duplicate key");
        check("duplicate key `work_dir`", "duplicate key");
        check(
            "invalid type: string \"unclosed, expected u64",
            "invalid type: string",
        );
        check(
            "invalid type: string \"an \\\"expected\\\" QQ123456C\", expected u64",
            "invalid type: string, expected u64",
        );
        check(
            "invalid type: string \"x expected QQ123456C\", expected u64",
            "invalid type: string, expected u64",
        );
        check("missing field `key_file`", "missing field `key_file`");
        check("unclosed table, expected `]`\n", "unclosed table, expected `]`");
        check("invalid key\nexpected `.`, `=`", "invalid key, expected `.`, `=`");
    }
}
