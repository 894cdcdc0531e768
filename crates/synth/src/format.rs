//! How the departments write identifiers: date styles, name case, postcodes and NI numbers.

use chrono::Datelike;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::extract::Extract;
use crate::noise::{self, Counts, Dob, NoiseLevel, NoisyId};
use crate::pools;
use crate::world::{Day, Person, date};

pub(crate) fn ymd(d: Day) -> (i32, u32, u32) {
    let x = date(d);
    (x.year(), x.month(), x.day())
}

pub(crate) fn iso(d: Day) -> String {
    let (y, m, dd) = ymd(d);
    format!("{y:04}-{m:02}-{dd:02}")
}

/// How an extract writes dates of birth.
#[derive(Clone, Copy)]
pub(crate) enum DateStyle {
    Iso,
    DayMonthYear,
    Compact,
}

pub(crate) fn fmt_date(style: DateStyle, y: i32, m: u32, d: u32) -> String {
    match style {
        DateStyle::Iso => format!("{y:04}-{m:02}-{d:02}"),
        DateStyle::DayMonthYear => format!("{d:02}/{m:02}/{y:04}"),
        DateStyle::Compact => format!("{y:04}{m:02}{d:02}"),
    }
}

pub(crate) fn fmt_dob(style: DateStyle, dob: Dob) -> String {
    fmt_date(style, dob.y, dob.m, dob.d)
}

pub(crate) fn postcode(p: &Person, rng: Option<&mut ChaCha8Rng>) -> String {
    let (area, district, sector, a, b) = p.postcode;
    let letters = pools::POSTCODE_INWARD_LETTERS;
    let code = format!(
        "{}{} {}{}{}",
        pools::POSTCODE_AREAS[area as usize],
        district,
        sector,
        char::from(letters[a as usize]),
        char::from(letters[b as usize])
    );
    match rng.map(|r| r.random_range(0..5)) {
        Some(0) => code.to_lowercase(),
        Some(1) => code.replace(' ', ""),
        _ => code,
    }
}

/// Case styles that departments use for names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    AsIs,
    Upper,
    /// Chosen per field: as typed, lower or upper case.
    Mixed,
}

pub(crate) fn cased(name: &str, case: Case, rng: &mut ChaCha8Rng) -> String {
    match case {
        Case::AsIs => name.to_owned(),
        Case::Upper => name.to_uppercase(),
        Case::Mixed => match rng.random_range(0..10) {
            0..5 => name.to_owned(),
            5..7 => name.to_lowercase(),
            _ => name.to_uppercase(),
        },
    }
}

/// Formats names (case, extra spaces) for an extract.
pub(crate) fn names(
    id: &NoisyId,
    level: NoiseLevel,
    extract: Extract,
    case: Case,
    rng: &mut ChaCha8Rng,
    counts: &mut Counts,
) -> (String, String) {
    let mut forename = cased(&id.forename, case, rng);
    let mut surname = cased(&id.surname, case, rng);
    if noise::wants_extra_spaces(level, extract, rng, counts) {
        if rng.random::<bool>() {
            forename = noise::extra_spaces(&forename, rng);
        } else {
            surname = noise::extra_spaces(&surname, rng);
        }
    }
    (forename, surname)
}

pub(crate) fn participant_nino(nino: &str, rng: &mut ChaCha8Rng) -> String {
    let spaced = || {
        let b = nino.as_bytes();
        if b.len() == 9 {
            format!(
                "{} {} {} {} {}",
                &nino[..2],
                &nino[2..4],
                &nino[4..6],
                &nino[6..8],
                &nino[8..]
            )
        } else {
            nino.to_owned()
        }
    };
    match rng.random_range(0..5) {
        0 | 1 => nino.to_owned(),
        2 => spaced(),
        3 => spaced().to_lowercase(),
        _ => nino.to_lowercase(),
    }
}
