//! Standardisation of raw identifier values (spec v1, "Field kinds and standardisation").
//!
//! Every kind has an ASCII fast path, taken when the raw value is pure ASCII. The fast path must
//! give exactly what the general (Unicode) path gives; the tests at the bottom of this file check
//! that on generated input. Results borrow from the raw value when they can, so a value that is
//! already standard costs no allocation.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::FieldKind;

/// Why a value is missing. A missing value never stops a stage: it makes the tokens that need it
/// null and is counted per column and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Missing {
    /// Null, empty, or only whitespace.
    Empty,
    /// Present but not valid for its kind.
    Invalid(InvalidReason),
}

impl Missing {
    /// A stable snake-case label: `"empty"` or the [`InvalidReason`] label. Manifests use it as
    /// the key of their data-quality counts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Missing::Empty => "empty",
            Missing::Invalid(reason) => reason.as_str(),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a present value is not valid for its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidReason {
    /// A name or forename with no letter A-Z left after standardisation (`"---"`).
    NoLetters,
    /// A date of birth in none of the three accepted layouts.
    BadDateFormat,
    /// A date of birth in an accepted layout that is not on the calendar (`1983-02-29`).
    NoSuchDate,
    /// A date of birth before 1900-01-01 or after today.
    DateOutOfRange,
    /// A sex that is not one of `M`, `MALE`, `1`, `F`, `FEMALE`, `2`.
    BadSex,
    /// A national insurance number that does not match the spec's pattern.
    BadNino,
    /// A national insurance number that matches the pattern but starts with a prefix that is
    /// never issued (BG, GB, KN, NK, NT, TN, ZZ).
    ForbiddenNinoPrefix,
    /// A postcode that does not match the spec's pattern.
    BadPostcode,
    /// An id with no ASCII letter or digit.
    NoAlphanumerics,
}

impl InvalidReason {
    /// Every reason, in declaration order.
    pub const ALL: [InvalidReason; 9] = [
        InvalidReason::NoLetters,
        InvalidReason::BadDateFormat,
        InvalidReason::NoSuchDate,
        InvalidReason::DateOutOfRange,
        InvalidReason::BadSex,
        InvalidReason::BadNino,
        InvalidReason::ForbiddenNinoPrefix,
        InvalidReason::BadPostcode,
        InvalidReason::NoAlphanumerics,
    ];

    /// A stable snake-case label, used as a key in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            InvalidReason::NoLetters => "no_letters",
            InvalidReason::BadDateFormat => "bad_date_format",
            InvalidReason::NoSuchDate => "no_such_date",
            InvalidReason::DateOutOfRange => "date_out_of_range",
            InvalidReason::BadSex => "bad_sex",
            InvalidReason::BadNino => "bad_nino",
            InvalidReason::ForbiddenNinoPrefix => "forbidden_nino_prefix",
            InvalidReason::BadPostcode => "bad_postcode",
            InvalidReason::NoAlphanumerics => "no_alphanumerics",
        }
    }
}

impl fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The earliest date of birth the spec accepts.
const FIRST_DOB: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("1900-01-01 is a date");

/// National insurance prefixes that match the pattern but are never issued.
const FORBIDDEN_NINO_PREFIXES: [[u8; 2]; 7] = [*b"BG", *b"GB", *b"KN", *b"NK", *b"NT", *b"TN", *b"ZZ"];

/// Applies the spec's standardisation rules. It holds "today", the last date of birth accepted,
/// so that a run (and a test) sees one fixed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standardiser {
    today: NaiveDate,
}

impl Standardiser {
    /// A standardiser that accepts dates of birth up to and including `today`.
    pub const fn new(today: NaiveDate) -> Self {
        Self { today }
    }

    /// A standardiser for today's date on the local clock.
    pub fn today() -> Self {
        Self::new(chrono::Local::now().date_naive())
    }

    /// The last date of birth this standardiser accepts.
    pub const fn reference_date(&self) -> NaiveDate {
        self.today
    }

    /// The standard form of `raw` as a value of `kind`, or why it is missing.
    ///
    /// The result borrows from `raw` when the standard form is a slice of it.
    pub fn standardise<'a>(&self, kind: FieldKind, raw: &'a str) -> Result<Cow<'a, str>, Missing> {
        self.standardise_with(kind, raw, raw.is_ascii())
    }

    /// [`Self::standardise`] without an allocation: a standard form that is not a slice of `raw`
    /// is written into `buf` (cleared first), which the caller reuses from value to value.
    pub fn standardise_in<'a>(
        &self,
        kind: FieldKind,
        raw: &'a str,
        buf: &'a mut String,
    ) -> Result<&'a str, Missing> {
        buf.clear();
        let out = self.standardise_to(kind, raw, raw.is_ascii(), buf)?;
        let buf: &'a String = buf;
        Ok(match out {
            Std::Slice(s) => s,
            Std::Buf => buf.as_str(),
        })
    }

    /// [`Self::standardise`], taking the ASCII fast path only when `fast` is set. `fast` must be
    /// false unless `raw` is pure ASCII.
    fn standardise_with(self, kind: FieldKind, raw: &str, fast: bool) -> Result<Cow<'_, str>, Missing> {
        let mut buf = String::new();
        Ok(match self.standardise_to(kind, raw, fast, &mut buf)? {
            Std::Slice(s) => Cow::Borrowed(s),
            Std::Buf => Cow::Owned(buf),
        })
    }

    /// The standard form of `raw`: a slice of it, or written into `buf` (empty on entry).
    fn standardise_to<'a>(
        self,
        kind: FieldKind,
        raw: &'a str,
        fast: bool,
        buf: &mut String,
    ) -> Result<Std<'a>, Missing> {
        debug_assert!(!fast || raw.is_ascii(), "the fast path needs ASCII input");
        if raw.trim().is_empty() {
            return Err(Missing::Empty);
        }
        let invalid = Missing::Invalid;
        match kind {
            FieldKind::Name => name(raw, fast, buf),
            FieldKind::Forename => {
                let word = raw
                    .split(char::is_whitespace)
                    .find(|word| !word.is_empty())
                    .expect("a value that is not blank has a word");
                name(word, fast, buf)
            }
            FieldKind::Dob => self.dob(raw, buf).map_err(invalid),
            FieldKind::Sex => sex(raw, fast).map_err(invalid),
            FieldKind::Nino => nino(raw, fast, buf).map_err(invalid),
            FieldKind::Postcode => postcode(raw, fast, buf).map_err(invalid),
            FieldKind::Id => {
                let out = if fast {
                    keep_ascii_upper(raw, u8::is_ascii_alphanumeric, buf)
                } else {
                    buf.extend(
                        raw.chars()
                            .flat_map(char::to_uppercase)
                            .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
                    );
                    Std::Buf
                };
                non_empty(out, buf, InvalidReason::NoAlphanumerics)
            }
        }
    }

    /// `dob`: exactly `YYYY-MM-DD`, `DD/MM/YYYY` or `YYYYMMDD` (ASCII digits), a real calendar
    /// date from 1900-01-01 to today inclusive, output as `YYYYMMDD`. The value is not trimmed.
    fn dob<'a>(self, raw: &'a str, buf: &mut String) -> Result<Std<'a>, InvalidReason> {
        let b = raw.as_bytes();
        // The output digits, in YYYYMMDD order.
        let digits: [u8; 8] = match b.len() {
            8 => b.try_into().expect("the length is 8"),
            10 if b[4] == b'-' && b[7] == b'-' => [b[0], b[1], b[2], b[3], b[5], b[6], b[8], b[9]],
            10 if b[2] == b'/' && b[5] == b'/' => [b[6], b[7], b[8], b[9], b[3], b[4], b[0], b[1]],
            _ => return Err(InvalidReason::BadDateFormat),
        };
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(InvalidReason::BadDateFormat);
        }
        let number = |range: std::ops::Range<usize>| {
            digits[range]
                .iter()
                .fold(0_u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        let year = i32::try_from(number(0..4)).expect("four digits fit in an i32");
        let date =
            NaiveDate::from_ymd_opt(year, number(4..6), number(6..8)).ok_or(InvalidReason::NoSuchDate)?;
        if date < FIRST_DOB || date > self.today {
            return Err(InvalidReason::DateOutOfRange);
        }
        if b.len() == 8 {
            Ok(Std::Slice(raw))
        } else {
            Ok(push_ascii(buf, &digits))
        }
    }
}

/// `name`: NFKD, drop combining marks, full Unicode uppercase, keep only A-Z.
///
/// A value that is not blank but has no letter left (`"---"`, `"123"`) is invalid
/// ([`InvalidReason::NoLetters`]) rather than empty: the column held something, and the
/// data-quality counts should say so.
fn name<'a>(raw: &'a str, fast: bool, buf: &mut String) -> Result<Std<'a>, Missing> {
    let out = if fast {
        // ASCII is unchanged by NFKD, has no combining marks, and uppercases to ASCII.
        keep_ascii_upper(raw, u8::is_ascii_alphabetic, buf)
    } else {
        buf.extend(
            raw.nfkd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_uppercase)
                .filter(char::is_ascii_uppercase),
        );
        Std::Buf
    };
    non_empty(out, buf, InvalidReason::NoLetters)
}

/// `sex`: trim and uppercase; `M`, `MALE`, `1` are `M`; `F`, `FEMALE`, `2` are `F`.
fn sex(raw: &str, fast: bool) -> Result<Std<'static>, InvalidReason> {
    let trimmed = raw.trim();
    // For ASCII, comparing without regard to ASCII case is the same as uppercasing first.
    let upper = (!fast).then(|| trimmed.to_uppercase());
    let is_one_of = |words: [&str; 3]| {
        words.iter().any(|word| match &upper {
            Some(upper) => upper == word,
            None => trimmed.eq_ignore_ascii_case(word),
        })
    };
    if is_one_of(["M", "MALE", "1"]) {
        Ok(Std::Slice("M"))
    } else if is_one_of(["F", "FEMALE", "2"]) {
        Ok(Std::Slice("F"))
    } else {
        Err(InvalidReason::BadSex)
    }
}

/// `nino`: remove whitespace, uppercase, match
/// `^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]?$` without a forbidden prefix, output the
/// first 8 characters.
fn nino<'a>(raw: &'a str, fast: bool, buf: &mut String) -> Result<Std<'a>, InvalidReason> {
    let bad = InvalidReason::BadNino;
    let clean = Compact::<9>::of(raw, fast).ok_or(bad)?;
    let s = clean.as_bytes();
    let first_ok =
        |c: u8| matches!(c, b'A'..=b'C' | b'E' | b'G' | b'H' | b'J'..=b'P' | b'R'..=b'T' | b'W'..=b'Z');
    let second_ok = |c: u8| c != b'O' && first_ok(c);
    let shape_ok = matches!(s.len(), 8 | 9)
        && first_ok(s[0])
        && second_ok(s[1])
        && s[2..8].iter().all(u8::is_ascii_digit)
        && s.get(8).is_none_or(|c| matches!(c, b'A'..=b'D'));
    if !shape_ok {
        return Err(bad);
    }
    if FORBIDDEN_NINO_PREFIXES.contains(&[s[0], s[1]]) {
        return Err(InvalidReason::ForbiddenNinoPrefix);
    }
    let out = &s[..8];
    match raw.trim_start().get(..8) {
        Some(slice) if slice.as_bytes() == out => Ok(Std::Slice(slice)),
        _ => Ok(push_ascii(buf, out)),
    }
}

/// `postcode`: remove whitespace, uppercase, match `^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$`.
fn postcode<'a>(raw: &'a str, fast: bool, buf: &mut String) -> Result<Std<'a>, InvalidReason> {
    let bad = InvalidReason::BadPostcode;
    let clean = Compact::<7>::of(raw, fast).ok_or(bad)?;
    let value = clean.as_bytes();
    let letter = |c: &u8| c.is_ascii_uppercase();
    let digit = |c: &u8| c.is_ascii_digit();
    let either = |c: &u8| letter(c) || digit(c);
    if value.len() < 5 {
        return Err(bad);
    }
    // The inward part is always digit, letter, letter; the outward part is what comes before it.
    let (outward, inward) = value.split_at(value.len() - 3);
    let inward_ok = digit(&inward[0]) && letter(&inward[1]) && letter(&inward[2]);
    // `[A-Z]{1,2}[0-9][A-Z0-9]?` spelled out for each length it can have.
    let outward_ok = match outward {
        [a, b] => letter(a) && digit(b),
        [a, b, c] => letter(a) && ((letter(b) && digit(c)) || (digit(b) && either(c))),
        [a, b, c, d] => letter(a) && letter(b) && digit(c) && either(d),
        _ => false,
    };
    if !(inward_ok && outward_ok) {
        return Err(bad);
    }
    let trimmed = raw.trim();
    if trimmed.as_bytes() == value {
        Ok(Std::Slice(trimmed))
    } else {
        Ok(push_ascii(buf, value))
    }
}

/// A value with its whitespace removed and uppercased, held on the stack, for the kinds whose
/// valid values are short ASCII strings.
struct Compact<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Compact<N> {
    /// `raw` without whitespace and uppercased, or `None` if that is longer than `N` or not ASCII
    /// (no such value can match an ASCII pattern of at most `N` characters).
    fn of(raw: &str, fast: bool) -> Option<Self> {
        let mut out = Self { buf: [0; N], len: 0 };
        if fast {
            // `char::is_whitespace`, not `u8::is_ascii_whitespace`: the latter leaves out U+000B.
            for b in raw.bytes().filter(|b| !char::from(*b).is_whitespace()) {
                out.push(b.to_ascii_uppercase())?;
            }
        } else {
            for c in raw
                .chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_uppercase)
            {
                out.push(u8::try_from(c).ok().filter(u8::is_ascii)?)?;
            }
        }
        Some(out)
    }

    fn push(&mut self, b: u8) -> Option<()> {
        *self.buf.get_mut(self.len)? = b;
        self.len += 1;
        Some(())
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// For ASCII `raw`: the bytes that satisfy `keep`, uppercased. A slice of `raw` when the kept
/// bytes are one run that is already uppercase, else written into `buf`.
fn keep_ascii_upper<'a>(raw: &'a str, keep: fn(&u8) -> bool, buf: &mut String) -> Std<'a> {
    let bytes = raw.as_bytes();
    let Some(first) = bytes.iter().position(keep) else {
        return Std::Slice("");
    };
    let last = bytes
        .iter()
        .rposition(keep)
        .expect("a first kept byte implies a last one");
    let run = &raw[first..=last];
    if run.bytes().all(|b| keep(&b) && !b.is_ascii_lowercase()) {
        Std::Slice(run)
    } else {
        buf.extend(
            run.bytes()
                .filter(keep)
                .map(|b| char::from(b.to_ascii_uppercase())),
        );
        Std::Buf
    }
}

fn non_empty<'a>(out: Std<'a>, buf: &str, reason: InvalidReason) -> Result<Std<'a>, Missing> {
    let empty = match out {
        Std::Slice(s) => s.is_empty(),
        Std::Buf => buf.is_empty(),
    };
    if empty {
        Err(Missing::Invalid(reason))
    } else {
        Ok(out)
    }
}

/// Where a standard form is: a slice of the raw value (or a constant), or the caller's buffer.
#[derive(Debug, Clone, Copy)]
enum Std<'a> {
    Slice(&'a str),
    Buf,
}

/// Writes ASCII `bytes` into `buf`.
fn push_ascii<'a>(buf: &mut String, bytes: &[u8]) -> Std<'a> {
    buf.extend(bytes.iter().copied().map(char::from));
    Std::Buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn standardiser() -> Standardiser {
        Standardiser::new(NaiveDate::from_ymd_opt(2026, 11, 25).expect("a real date"))
    }

    /// Strings near the valid values of every kind, mixed with noise, so that the properties
    /// exercise the success paths as well as the failures.
    fn near_valid() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ \t]{0,2}[a-zA-Z' -]{0,12}[ \t]{0,2}",
            "[a-zA-Zéèçñößøåæ\u{301}\u{308}ﬁ ıſ.-]{0,12}",
            "(19|20)[0-9]{2}-[0-1][0-9]-[0-3][0-9]",
            "[0-3][0-9]/[0-1][0-9]/(19|20)[0-9]{2}",
            "(19|20)[0-9]{2}[0-1][0-9][0-3][0-9]",
            "[mMfF12]|male|FEMALE|Female| m |x",
            "[A-Za-z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-Da-dE]?",
            "[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}",
            "[\u{0b}\u{85}\u{a0} ]{0,2}[A-Za-z0-9/. -]{0,10}",
            // Every ASCII whitespace character (VT included) inside otherwise valid values.
            "[A-Za-z]{2}[\t\n\u{0b}\u{0c}\r ]?[0-9]{6}[\t\n\u{0b}\u{0c}\r ]?[A-D]?",
            "[A-Za-z]{1,2}[0-9][A-Za-z0-9]?[\t\n\u{0b}\u{0c}\r ][0-9][A-Za-z]{2}",
            "[\t\n\u{0b}\u{0c}\r ]?(M|f|male|2)[\t\n\u{0b}\u{0c}\r ]?",
            "[a-z]{1,6}[\t\n\u{0b}\u{0c}\r ][a-z]{1,6}",
        ]
    }

    /// The characters each kind's output may use.
    fn alphabet_ok(kind: FieldKind, out: &str) -> bool {
        let b = out.as_bytes();
        match kind {
            FieldKind::Name | FieldKind::Forename => b.iter().all(u8::is_ascii_uppercase),
            FieldKind::Dob => b.len() == 8 && b.iter().all(u8::is_ascii_digit),
            FieldKind::Sex => out == "M" || out == "F",
            FieldKind::Nino => {
                b.len() == 8
                    && b[..2].iter().all(u8::is_ascii_uppercase)
                    && b[2..].iter().all(u8::is_ascii_digit)
            }
            FieldKind::Postcode | FieldKind::Id => {
                b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            }
        }
    }

    proptest! {
        #[test]
        fn standard_forms_are_fixed_points(raw in near_valid()) {
            let st = standardiser();
            for kind in FieldKind::ALL {
                if let Ok(once) = st.standardise(kind, &raw) {
                    prop_assert!(!once.is_empty());
                    prop_assert!(alphabet_ok(kind, &once), "{kind}: {once:?}");
                    let twice = st.standardise(kind, &once);
                    prop_assert_eq!(twice.as_deref(), Ok(once.as_ref()), "{}", kind);
                }
            }
        }

        #[test]
        fn a_reused_buffer_gives_what_standardise_gives(first in near_valid(), raw in near_valid()) {
            let st = standardiser();
            let mut buf = String::new();
            for kind in FieldKind::ALL {
                // The buffer holds the previous value's standard form, which must not leak in.
                let _ = st.standardise_in(kind, &first, &mut buf);
                let expected = st.standardise(kind, &raw).map(Cow::into_owned);
                let got = st.standardise_in(kind, &raw, &mut buf).map(str::to_owned);
                prop_assert_eq!(got, expected, "{}", kind);
            }
        }

        #[test]
        fn ascii_fast_path_matches_unicode_path(raw in near_valid()) {
            prop_assume!(raw.is_ascii());
            both_paths_agree(&raw)?;
        }

        #[test]
        fn all_ascii_bytes_take_identical_paths(raw in proptest::collection::vec(0_u8..128, 0..12)) {
            let raw = String::from_utf8(raw).expect("ASCII is UTF-8");
            both_paths_agree(&raw)?;
        }
    }

    /// The ASCII fast path and the Unicode path give the same result for every kind of field.
    fn both_paths_agree(raw: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let st = standardiser();
        for kind in FieldKind::ALL {
            prop_assert_eq!(
                st.standardise_with(kind, raw, true),
                st.standardise_with(kind, raw, false),
                "{}",
                kind
            );
        }
        Ok(())
    }

    #[test]
    fn labels_are_distinct_snake_case() {
        let mut labels: Vec<&str> = InvalidReason::ALL.iter().map(|r| r.as_str()).collect();
        labels.push(Missing::Empty.as_str());
        for label in &labels {
            assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        let count = labels.len();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), count);
        assert_eq!(Missing::Invalid(InvalidReason::BadNino).to_string(), "bad_nino");
    }

    #[test]
    fn standard_values_are_borrowed() {
        let st = standardiser();
        for (kind, raw, out) in [
            (FieldKind::Name, " OBRIEN ", "OBRIEN"),
            (FieldKind::Forename, "MARY ANN", "MARY"),
            (FieldKind::Dob, "19840229", "19840229"),
            (FieldKind::Nino, "AB123456C", "AB123456"),
            (FieldKind::Nino, " AB123456 C", "AB123456"),
            (FieldKind::Postcode, " SW1A1AA", "SW1A1AA"),
            (FieldKind::Id, "12345678A", "12345678A"),
        ] {
            let got = st.standardise(kind, raw);
            assert!(
                matches!(&got, Ok(Cow::Borrowed(s)) if *s == out),
                "{kind} {raw:?}: {got:?}"
            );
        }
    }
}
