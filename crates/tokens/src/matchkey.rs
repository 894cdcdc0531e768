//! Match keys: named, ordered lists of components, and the transforms a component may apply.

use std::borrow::Cow;
use std::fmt;

use crate::{FieldKind, TokenError};

/// A match key whose components carry fewer estimated bits than this is weak: with the key, its
/// tokens can be reversed by hashing every possible value (2^20 is about a million tries).
pub const WEAK_KEY_BITS: f64 = 20.0;

/// A function of a standardised value that a match-key component may apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    /// The standardised value itself (`surname`).
    Identity,
    /// The first character (`initial(forename)`).
    Initial,
    /// The first four characters (`year(dob)`).
    Year,
    /// American Soundex of an A-Z value (`soundex(surname)`).
    Soundex,
}

impl Transform {
    /// The transforms that are written as `name(field)`.
    const NAMED: [Transform; 3] = [Transform::Initial, Transform::Year, Transform::Soundex];

    /// The name used in `name(field)`; `None` for [`Transform::Identity`], which is written as
    /// the bare field.
    pub const fn name(self) -> Option<&'static str> {
        match self {
            Transform::Identity => None,
            Transform::Initial => Some("initial"),
            Transform::Year => Some("year"),
            Transform::Soundex => Some("soundex"),
        }
    }

    /// The transform applied to a standardised value.
    ///
    /// `initial` and `year` count characters, not bytes (standard values are ASCII anyway); a
    /// value shorter than four characters is its own `year`. `soundex` is defined for A-Z
    /// values; other characters are ignored, so a value without letters gives an empty code
    /// (match-key checks refuse soundex on kinds whose values are not letters).
    pub fn apply(self, standardised: &str) -> Cow<'_, str> {
        match self {
            Transform::Identity => Cow::Borrowed(standardised),
            Transform::Initial => Cow::Borrowed(prefix(standardised, 1)),
            Transform::Year => Cow::Borrowed(prefix(standardised, 4)),
            Transform::Soundex => {
                let mut code = [0; 4];
                let len = soundex(standardised, &mut code);
                Cow::Owned(code[..len].iter().copied().map(char::from).collect())
            }
        }
    }

    /// Like [`Self::apply`], writing a soundex code into `buf` instead of allocating.
    pub(crate) fn apply_bytes<'a>(self, standardised: &'a str, buf: &'a mut [u8; 4]) -> &'a [u8] {
        match self {
            Transform::Soundex => {
                let len = soundex(standardised, buf);
                &buf[..len]
            }
            other => match other.apply(standardised) {
                Cow::Borrowed(s) => s.as_bytes(),
                Cow::Owned(_) => unreachable!("only soundex allocates"),
            },
        }
    }
}

/// The first `n` characters of `s` (all of it if shorter).
fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// American Soundex as the spec defines it, written into `out`. Returns 4, or 0 when `s` has no
/// letter A-Z. Characters outside A-Z are ignored.
pub(crate) fn soundex(s: &str, out: &mut [u8; 4]) -> usize {
    /// A vowel separates equal codes; H and W do not.
    const VOWEL: u8 = 0;
    const H_OR_W: u8 = 1;
    fn code(letter: u8) -> u8 {
        match letter {
            b'B' | b'F' | b'P' | b'V' => b'1',
            b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
            b'D' | b'T' => b'3',
            b'L' => b'4',
            b'M' | b'N' => b'5',
            b'R' => b'6',
            b'H' | b'W' => H_OR_W,
            _ => VOWEL, // A E I O U Y
        }
    }
    let mut letters = s.bytes().filter(u8::is_ascii_uppercase);
    let Some(first) = letters.next() else {
        return 0;
    };
    *out = [first, b'0', b'0', b'0'];
    let mut len = 1;
    // The code of the last letter that counts, or VOWEL after a vowel. The first letter counts.
    let mut previous = code(first);
    for letter in letters {
        match code(letter) {
            H_OR_W => {}
            VOWEL => previous = VOWEL,
            digit => {
                if digit != previous {
                    out[len] = digit;
                    len += 1;
                    if len == 4 {
                        break;
                    }
                }
                previous = digit;
            }
        }
    }
    4
}

/// One part of a match key: a declared identifier field, possibly transformed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Component {
    /// The identifier field's name, as declared for the extract (`surname`).
    pub field: String,
    /// What is applied to its standardised value.
    pub transform: Transform,
}

impl Component {
    /// Parses `field` or `transform(field)`, where the transform is `initial`, `year` or
    /// `soundex` and the field matches `[a-z][a-z0-9_]*`. No spaces are allowed.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let bad = |reason| TokenError::BadComponent {
            text: text.to_owned(),
            reason,
        };
        let (transform, field) = match text.split_once('(') {
            None => (Transform::Identity, text),
            Some((name, rest)) => {
                let field = rest
                    .strip_suffix(')')
                    .ok_or_else(|| bad("expected `field` or `transform(field)`"))?;
                let transform = Transform::NAMED
                    .into_iter()
                    .find(|t| t.name() == Some(name))
                    .ok_or_else(|| bad("unknown transform: expected initial, year or soundex"))?;
                (transform, field)
            }
        };
        if !is_identifier(field) {
            return Err(bad("the field name must match [a-z][a-z0-9_]*"));
        }
        Ok(Self {
            field: field.to_owned(),
            transform,
        })
    }

    /// The component's transform applied to the field's standardised value.
    pub fn apply<'a>(&self, standardised: &'a str) -> Cow<'a, str> {
        self.transform.apply(standardised)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transform.name() {
            None => f.write_str(&self.field),
            Some(name) => write!(f, "{name}({})", self.field),
        }
    }
}

/// `[a-z][a-z0-9_]*`
fn is_identifier(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The estimated entropy, in bits, of a transform of a field of this kind across a population:
/// roughly log2 of the number of values an attacker would have to try, weighted by how common
/// they are. These are deliberately round figures for a UK population.
///
/// | kind | identity | `initial` | `year` (first 4) | `soundex` |
/// |---|---|---|---|---|
/// | name | 14 | 4.5 | 11 | 10 |
/// | forename | 11 | 4.5 | 9 | 8 |
/// | dob | 15.2 (about 100 years of days) | 1 (the century digit) | 7 (about 120 years) | 0 |
/// | sex | 1 | 1 | 1 | 0 |
/// | nino | 28.5 (373 prefixes × 10^6) | 4.3 (20 first letters) | 15.2 (prefix and 2 digits) | 0 |
/// | postcode | 20.7 (about 1.7 million postcodes) | 4.5 (area letter) | 11.5 (about 3,000 districts) | 0 |
/// | id | 30 | 3.3 (mostly a digit) | 13.3 (four digits) | 0 |
///
/// Soundex is defined only for names; elsewhere it is given 0 bits (match-key checks refuse it).
pub fn estimated_bits(kind: FieldKind, transform: Transform) -> f64 {
    // One row per kind: identity, initial, year, soundex (as in the table above).
    let [identity, initial, year, soundex] = match kind {
        FieldKind::Name => [14.0, 4.5, 11.0, 10.0],
        FieldKind::Forename => [11.0, 4.5, 9.0, 8.0],
        FieldKind::Dob => [15.2, 1.0, 7.0, 0.0],
        FieldKind::Sex => [1.0, 1.0, 1.0, 0.0],
        FieldKind::Nino => [28.5, 4.3, 15.2, 0.0],
        FieldKind::Postcode => [20.7, 4.5, 11.5, 0.0],
        FieldKind::Id => [30.0, 3.3, 13.3, 0.0],
    };
    match transform {
        Transform::Identity => identity,
        Transform::Initial => initial,
        Transform::Year => year,
        Transform::Soundex => soundex,
    }
}

/// A named, ordered list of components. Its tokens go in the column [`MatchKey::column_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchKey {
    /// The key's name, `[a-z][a-z0-9_]*`; it is the first part of every token message.
    pub name: String,
    /// The components, in message order.
    pub components: Vec<Component>,
    /// Accept the key even if [`MatchKey::check_strength`] finds it weak.
    pub allow_weak: bool,
}

impl MatchKey {
    /// A match key, after checking its name and that it has at least one component.
    pub fn new(
        name: impl Into<String>,
        components: Vec<Component>,
        allow_weak: bool,
    ) -> Result<Self, TokenError> {
        let name = name.into();
        if !is_identifier(&name) {
            return Err(TokenError::BadKeyName { name });
        }
        if components.is_empty() {
            return Err(TokenError::NoComponents { key: name });
        }
        Ok(Self {
            name,
            components,
            allow_weak,
        })
    }

    /// [`MatchKey::new`] with each component parsed by [`Component::parse`]
    /// (`["soundex(surname)", "dob"]`).
    pub fn parse(
        name: impl Into<String>,
        components: &[impl AsRef<str>],
        allow_weak: bool,
    ) -> Result<Self, TokenError> {
        let components = components
            .iter()
            .map(|text| Component::parse(text.as_ref()))
            .collect::<Result<_, _>>()?;
        Self::new(name, components, allow_weak)
    }

    /// The name of the token column: `tok_<name>`.
    pub fn column_name(&self) -> String {
        format!("tok_{}", self.name)
    }

    /// The estimated entropy of the key's components, given the kind of each declared field.
    ///
    /// Different fields are taken as independent, so their bits add up. Several components of
    /// the same field are all functions of one value, so together they count only as much as the
    /// strongest of them (`[dob, year(dob)]` is as weak as `dob`). The result is a rough guide,
    /// not a measurement.
    pub fn estimated_bits(&self, kinds: &impl Fn(&str) -> Option<FieldKind>) -> Result<f64, TokenError> {
        let mut per_field: Vec<(&str, f64)> = Vec::with_capacity(self.components.len());
        for component in &self.components {
            let kind = kinds(&component.field).ok_or_else(|| TokenError::UnknownField {
                key: self.name.clone(),
                field: component.field.clone(),
            })?;
            if component.transform == Transform::Soundex
                && !matches!(kind, FieldKind::Name | FieldKind::Forename)
            {
                return Err(TokenError::TransformNotApplicable {
                    key: self.name.clone(),
                    component: component.to_string(),
                    kind,
                });
            }
            let bits = estimated_bits(kind, component.transform);
            match per_field.iter_mut().find(|(field, _)| *field == component.field) {
                Some((_, best)) => *best = best.max(bits),
                None => per_field.push((&component.field, bits)),
            }
        }
        Ok(per_field.iter().map(|(_, bits)| bits).sum())
    }

    /// Checks the key against the declared fields: every component names a known field, soundex
    /// is applied only to name and forename fields, and unless `allow_weak` is set, the key's
    /// estimated entropy ([`MatchKey::estimated_bits`]) is at least [`WEAK_KEY_BITS`].
    ///
    /// A weak key is refused because anyone holding the linkage key could reverse its tokens by
    /// trying every possible value: `dob` alone has only about 37,000 values.
    pub fn check_strength(&self, kinds: &impl Fn(&str) -> Option<FieldKind>) -> Result<(), TokenError> {
        let bits = self.estimated_bits(kinds)?;
        if bits < WEAK_KEY_BITS && !self.allow_weak {
            return Err(TokenError::WeakKey {
                key: self.name.clone(),
                bits,
                threshold: WEAK_KEY_BITS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soundex_matches_the_spec_values() {
        for (name, code) in [
            ("ROBERT", "R163"),
            ("RUPERT", "R163"),
            ("RUBIN", "R150"),
            ("ASHCRAFT", "A261"),
            ("TYMCZAK", "T522"),
            ("PFISTER", "P236"),
            ("HONEYMAN", "H555"),
            ("LEE", "L000"),
            // More cases: the token vector's surname, H/W between equal codes, vowels between
            // them, first-letter codes, and cutting to four.
            ("OBRIEN", "O165"),
            ("A", "A000"),
            ("ASHWORTH", "A263"),
            ("BOOTH", "B300"),
            ("SCHMIDT", "S530"),
            ("JACKSON", "J250"),
            ("WASHINGTON", "W252"),
            ("GUTIERREZ", "G362"),
            ("CAPPS", "C120"),
            ("CAPPAPS", "C112"),
            ("HW", "H000"),
            ("BWB", "B000"),
            ("BYB", "B100"),
            ("", ""),
            ("19840229", ""),
        ] {
            assert_eq!(Transform::Soundex.apply(name), code, "{name}");
            let mut buf = [0; 4];
            assert_eq!(
                Transform::Soundex.apply_bytes(name, &mut buf),
                code.as_bytes(),
                "{name}"
            );
        }
    }

    #[test]
    fn prefixes_count_characters() {
        assert_eq!(Transform::Initial.apply("JOSE"), "J");
        assert_eq!(Transform::Year.apply("19840229"), "1984");
        assert_eq!(Transform::Year.apply("ABC"), "ABC");
        assert_eq!(Transform::Identity.apply("ABC"), "ABC");
        assert_eq!(Transform::Initial.apply("ÉA"), "É");
        assert_eq!(Transform::Initial.apply(""), "");
    }

    #[test]
    fn components_parse_and_print_back() {
        for text in [
            "surname",
            "soundex(surname)",
            "initial(forename)",
            "year(dob)",
            "id_2",
        ] {
            let component = Component::parse(text).expect("valid component");
            assert_eq!(component.to_string(), text);
        }
        assert_eq!(
            Component::parse("soundex(surname)").expect("valid"),
            Component {
                field: "surname".into(),
                transform: Transform::Soundex
            }
        );
    }

    #[test]
    fn component_errors_name_the_text() {
        let errors: Vec<String> = [
            "metaphone(surname)",
            "soundex(surname",
            "soundex()",
            "identity(surname)",
            "Surname",
            "soundex( surname )",
            "",
            "year(dob))",
        ]
        .iter()
        .map(|text| Component::parse(text).unwrap_err().to_string())
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
    }

    #[test]
    fn key_names_and_components_are_checked() {
        let dob = vec![Component::parse("dob").expect("valid")];
        assert!(MatchKey::new("soundex_dob2", dob.clone(), false).is_ok());
        let errors: Vec<String> = [
            MatchKey::new("Nino", dob.clone(), false),
            MatchKey::new("2nd", dob.clone(), false),
            MatchKey::new("", dob, false),
            MatchKey::new("empty", Vec::new(), false),
        ]
        .into_iter()
        .map(|result| result.unwrap_err().to_string())
        .collect();
        insta::assert_snapshot!(errors.join("\n"));
        let key = MatchKey::parse("name_dob_sex", &["forename", "surname"], false).expect("valid key");
        assert_eq!(key.column_name(), "tok_name_dob_sex");
    }

    fn demo_kinds(field: &str) -> Option<FieldKind> {
        match field {
            "forename" => Some(FieldKind::Forename),
            "surname" => Some(FieldKind::Name),
            "dob" => Some(FieldKind::Dob),
            "sex" => Some(FieldKind::Sex),
            "nino" => Some(FieldKind::Nino),
            "postcode" => Some(FieldKind::Postcode),
            _ => None,
        }
    }

    fn strength(fields: &[&str], allow_weak: bool) -> Result<(), TokenError> {
        MatchKey::parse("k", fields, allow_weak)
            .expect("valid key")
            .check_strength(&demo_kinds)
    }

    #[test]
    fn demo_keys_are_strong() {
        for fields in [
            &["nino"][..],
            &["forename", "surname", "dob", "sex"],
            &["soundex(surname)", "initial(forename)", "dob"],
            &["surname", "dob"],
        ] {
            assert_eq!(strength(fields, false), Ok(()), "{fields:?}");
        }
    }

    #[test]
    fn low_entropy_keys_are_weak_unless_allowed() {
        for fields in [
            &["dob"][..],
            &["sex", "year(dob)"],
            &["dob", "dob"],
            &["dob", "year(dob)", "initial(dob)"],
            &["surname"],
            &["soundex(surname)", "sex"],
            &["initial(forename)", "initial(surname)", "year(dob)"],
        ] {
            assert!(
                matches!(strength(fields, false), Err(TokenError::WeakKey { .. })),
                "{fields:?}"
            );
            assert_eq!(strength(fields, true), Ok(()), "{fields:?}");
        }
        insta::assert_snapshot!(strength(&["dob"], false).unwrap_err().to_string());
    }

    #[test]
    fn unknown_fields_and_misapplied_soundex_are_refused() {
        let errors = [
            strength(&["surname", "birth_date"], true),
            strength(&["soundex(dob)", "nino"], true),
        ]
        .map(|result| result.unwrap_err().to_string());
        insta::assert_snapshot!(errors.join("\n"));
    }

    #[test]
    fn every_kind_and_transform_has_bits() {
        for kind in FieldKind::ALL {
            let identity = estimated_bits(kind, Transform::Identity);
            for transform in Transform::NAMED {
                let bits = estimated_bits(kind, transform);
                assert!(
                    (0.0..=identity).contains(&bits),
                    "{kind} {transform:?}: a function of a value carries no more than the value"
                );
            }
        }
    }
}
