//! A small re-implementation of the token spec's standardisation and the demo's match-key cascade,
//! used to check that the synthetic noise is calibrated (the real one lives in linklab-tokens).

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Reads a CSV written by the generator (UTF-8 or Windows-1252) into header + rows.
pub fn read_csv(path: &Path, windows_1252: bool) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).expect("extract exists");
    let text = if windows_1252 {
        encoding_rs::WINDOWS_1252.decode(&bytes).0.into_owned()
    } else {
        String::from_utf8(bytes).expect("extract is UTF-8")
    };
    let mut lines = text.lines();
    let header = split(lines.next().expect("header"));
    let rows = lines.map(split).collect();
    (header, rows)
}

/// Splits one CSV line (quotes honoured).
pub fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "A",
        'ç' => "c",
        'Ç' => "C",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'È' | 'É' | 'Ê' | 'Ë' => "E",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' => "I",
        'ñ' => "n",
        'Ñ' => "N",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => "O",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' => "Y",
        'ß' => "SS",
        _ => return None,
    })
}

/// The spec's `name` rule for the characters the generator uses.
pub fn std_name(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars() {
        let folded = fold(c).map_or_else(|| c.to_string(), str::to_owned);
        for f in folded.chars() {
            let u = f.to_ascii_uppercase();
            if u.is_ascii_uppercase() {
                out.push(u);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The spec's `forename` rule.
pub fn std_forename(s: &str) -> Option<String> {
    s.split_whitespace().next().and_then(std_name)
}

fn valid_date(y: i32, m: u32, d: u32) -> bool {
    let dim = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return false,
    };
    (1900..=2026).contains(&y) && d >= 1 && d <= dim
}

/// The spec's `dob` rule (today taken as the end of 2026 for these tests).
pub fn std_dob(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let num = |part: &str| part.parse::<u32>().ok();
    let (year, month, day) = if bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-' {
        (num(&text[..4])?, num(&text[5..7])?, num(&text[8..])?)
    } else if bytes.len() == 10 && bytes[2] == b'/' && bytes[5] == b'/' {
        (num(&text[6..])?, num(&text[3..5])?, num(&text[..2])?)
    } else if bytes.len() == 8 && bytes.iter().all(u8::is_ascii_digit) {
        (num(&text[..4])?, num(&text[4..6])?, num(&text[6..])?)
    } else {
        return None;
    };
    valid_date(year as i32, month, day).then(|| format!("{year:04}{month:02}{day:02}"))
}

/// The spec's `sex` rule.
pub fn std_sex(s: &str) -> Option<&'static str> {
    match s.trim().to_uppercase().as_str() {
        "M" | "MALE" | "1" => Some("M"),
        "F" | "FEMALE" | "2" => Some("F"),
        _ => None,
    }
}

/// The spec's `nino` rule.
pub fn std_nino(s: &str) -> Option<String> {
    let v: String = s.split_whitespace().collect::<String>().to_uppercase();
    let b = v.as_bytes();
    let first = b"ABCEGHJKLMNOPRSTWXYZ";
    let second = b"ABCEGHJKLMNPRSTWXYZ";
    let ok = (b.len() == 8 || (b.len() == 9 && b"ABCD".contains(&b[8])))
        && first.contains(&b[0])
        && second.contains(&b[1])
        && b[2..8].iter().all(u8::is_ascii_digit)
        && !["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&&v[..2]);
    ok.then(|| v[..8].to_owned())
}

/// The spec's American Soundex of an A-Z string.
pub fn soundex(s: &str) -> String {
    let code = |c: u8| match c {
        b'B' | b'F' | b'P' | b'V' => b'1',
        b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
        b'D' | b'T' => b'3',
        b'L' => b'4',
        b'M' | b'N' => b'5',
        b'R' => b'6',
        b'H' | b'W' => b'h',
        _ => b'0',
    };
    let b = s.as_bytes();
    let mut out = vec![b[0]];
    let mut prev = code(b[0]);
    for &c in &b[1..] {
        let k = code(c);
        match k {
            b'h' => {}
            b'0' => prev = b'0',
            _ => {
                if k != prev {
                    out.push(k);
                }
                prev = k;
            }
        }
    }
    out.resize(4, b'0');
    out.truncate(4);
    String::from_utf8(out).expect("ASCII")
}

/// Column positions of the identifiers of an extract: forename, surname, dob, sex, nino.
pub fn identifier_columns(extract: &str) -> [usize; 5] {
    match extract {
        "releases" | "participants" | "reoffences" | "employment" | "benefits" => [1, 2, 3, 4, 5],
        other => panic!("unknown extract {other}"),
    }
}

/// The three match keys of a row (None when a component is missing).
pub fn keys(row: &[String], extract: &str) -> [Option<String>; 3] {
    let columns = identifier_columns(extract);
    let forename = std_forename(&row[columns[0]]);
    let surname = std_name(&row[columns[1]]);
    let dob = std_dob(&row[columns[2]]);
    let sex = std_sex(&row[columns[3]]);
    let nino = std_nino(&row[columns[4]]);
    let k2 = match (&forename, &surname, &dob, sex) {
        (Some(first), Some(last), Some(born), Some(sex)) => Some(format!("{first}|{last}|{born}|{sex}")),
        _ => None,
    };
    let k3 = match (&forename, &surname, &dob) {
        (Some(first), Some(last), Some(born)) => Some(format!("{}|{}|{born}", soundex(last), &first[..1])),
        _ => None,
    };
    [nino, k2, k3]
}

/// Linkage quality of the non-spine extracts against the spine.
#[derive(Debug, Default)]
pub struct Quality {
    /// Records of spine persons in the linked extracts.
    pub spine_records: u64,
    /// Records whose true person no key can reach.
    pub unreachable: u64,
    /// Links made.
    pub links: u64,
    /// Links to the true person.
    pub correct: u64,
    /// Per extract: (records of spine persons, unreachable ones).
    pub by_extract: Vec<(&'static str, u64, u64)>,
    /// Per match key: (links, wrong links).
    pub by_key: [(u64, u64); 3],
}

impl Quality {
    /// Correct links over records of spine persons.
    pub fn recall(&self) -> f64 {
        self.correct as f64 / self.spine_records as f64
    }
    /// Correct links over links.
    pub fn precision(&self) -> f64 {
        self.correct as f64 / self.links as f64
    }
}

/// Runs the cascade over the extracts in `dir`, scoring it with `truth/records.csv`.
pub fn evaluate(dir: &Path) -> Quality {
    let (_, truth_rows) = read_csv(&dir.join("truth/records.csv"), false);
    let truth: HashMap<(String, String), String> = truth_rows
        .into_iter()
        .map(|r| ((r[0].clone(), r[1].clone()), r[2].clone()))
        .collect();
    let (_, spine) = read_csv(&dir.join("releases.csv"), false);
    let mut index: [HashMap<String, HashSet<String>>; 3] = Default::default();
    let mut spine_persons = HashSet::new();
    for row in &spine {
        let person = truth[&("releases".to_owned(), row[0].clone())].clone();
        spine_persons.insert(person.clone());
        for (k, key) in keys(row, "releases").into_iter().enumerate() {
            if let Some(key) = key {
                index[k].entry(key).or_default().insert(person.clone());
            }
        }
    }
    let mut q = Quality::default();
    for extract in ["participants", "reoffences", "employment", "benefits"] {
        let (_, rows) = read_csv(&dir.join(format!("{extract}.csv")), extract == "employment");
        let (before_records, before_unreachable) = (q.spine_records, q.unreachable);
        for row in rows {
            let person = &truth[&(extract.to_owned(), row[0].clone())];
            let in_spine = spine_persons.contains(person);
            let ks = keys(&row, extract);
            if in_spine {
                q.spine_records += 1;
                let reachable = ks.iter().enumerate().any(|(k, key)| {
                    key.as_ref()
                        .and_then(|key| index[k].get(key))
                        .is_some_and(|c| c.contains(person))
                });
                if !reachable {
                    q.unreachable += 1;
                }
            }
            for (k, key) in ks.iter().enumerate() {
                let Some(cands) = key.as_ref().and_then(|key| index[k].get(key)) else {
                    continue;
                };
                if cands.len() == 1 {
                    q.links += 1;
                    q.by_key[k].0 += 1;
                    if cands.contains(person) {
                        q.correct += 1;
                    } else {
                        q.by_key[k].1 += 1;
                    }
                    break;
                }
            }
        }
        q.by_extract.push((
            extract,
            q.spine_records - before_records,
            q.unreachable - before_unreachable,
        ));
    }
    q
}
