//! Name, nickname, postcode and category pools.
//!
//! Every value here can be encoded in Windows-1252 (checked by a test), because the employment
//! extract is written in that encoding. The name lists are data files beside this module, one name
//! a line, in rough order of frequency: a pool's weight for the name at rank `r` is
//! `1 / (r + offset)`, which gives the long-tailed skew of real name frequencies without letting
//! any single name dominate.

mod categories;
mod nicknames;
mod pool;

use std::sync::LazyLock;

pub use categories::{
    BENEFIT_TYPES, OFFENCE_GROUPS, OFFENCE_TYPES, POSTCODE_AREAS, POSTCODE_INWARD_LETTERS, SECTORS,
    is_out_of_work,
};
pub use nicknames::nicknames;
pub use pool::Pool;

/// The non-empty lines of a name list.
fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

static MALE_FORENAMES: LazyLock<Vec<&str>> = LazyLock::new(|| lines(include_str!("male_forenames.txt")));
static FEMALE_FORENAMES: LazyLock<Vec<&str>> = LazyLock::new(|| lines(include_str!("female_forenames.txt")));
static SURNAMES: LazyLock<Vec<&str>> = LazyLock::new(|| lines(include_str!("surnames.txt")));

/// Male forenames, most frequent first (`male_forenames.txt`).
pub fn male_forenames() -> &'static [&'static str] {
    &MALE_FORENAMES
}

/// Female forenames, most frequent first (`female_forenames.txt`).
pub fn female_forenames() -> &'static [&'static str] {
    &FEMALE_FORENAMES
}

/// Common surnames, most frequent first (`surnames.txt`). They carry `CURATED_SURNAME_SHARE` of
/// the population; the rest is spread evenly over the built place-name surnames
/// (`SURNAME_STEMS` x `SURNAME_ENDS`).
pub fn surnames() -> &'static [&'static str] {
    &SURNAMES
}

/// Share of people whose surname is drawn from `surnames()` (the rest get a place-name surname).
pub const CURATED_SURNAME_SHARE: f64 = 0.55;

/// First halves of built English place-name surnames.
pub const SURNAME_STEMS: &[&str] = &[
    "Ash", "Black", "Brad", "Brook", "Cald", "Chester", "Craw", "Dun", "East", "Elm", "Fair", "Fern",
    "Green", "Hart", "Hay", "High", "Holm", "Kings", "Lang", "Lind", "Mars", "Mid", "Mill", "Nor", "Oak",
    "Pen", "Rad", "Red", "Rock", "Round", "Stan", "Stock", "Thorn", "Wake", "Wal", "West", "Whit", "Brom",
    "Cran", "Gold",
];

/// Second halves of built English place-name surnames.
pub const SURNAME_ENDS: &[&str] = &[
    "ford", "ley", "wood", "field", "by", "ton", "well", "worth", "ham", "more", "dale", "hurst", "combe",
    "stead", "bridge", "den", "ridge", "brook", "hill", "gate", "wick", "thorpe", "land", "shaw", "croft",
];

/// The surname pool: curated common surnames plus built place-name surnames.
pub fn surname_pool() -> Pool {
    let mut names: Vec<String> = surnames().iter().map(|s| (*s).to_owned()).collect();
    let offset = 30.0;
    let curated_total: f64 = (0..surnames().len()).map(|r| 1.0 / (r as f64 + offset)).sum();
    let mut weights: Vec<f64> = (0..surnames().len())
        .map(|r| CURATED_SURNAME_SHARE / (r as f64 + offset) / curated_total)
        .collect();
    let built = SURNAME_STEMS.len() * SURNAME_ENDS.len();
    for stem in SURNAME_STEMS {
        for end in SURNAME_ENDS {
            names.push(format!("{stem}{end}"));
            weights.push((1.0 - CURATED_SURNAME_SHARE) / built as f64);
        }
    }
    Pool::weighted(names, &weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_names() -> impl Iterator<Item = &'static str> {
        male_forenames()
            .iter()
            .chain(female_forenames())
            .chain(surnames())
            .chain(SURNAME_STEMS)
            .chain(SURNAME_ENDS)
            .copied()
            .chain(nicknames::NICKNAMES.iter().flat_map(|(_, n)| n.iter().copied()))
    }

    #[test]
    fn every_name_encodes_in_windows_1252() {
        for name in all_names() {
            let (_, _, unmappable) = encoding_rs::WINDOWS_1252.encode(name);
            assert!(!unmappable, "{name}");
            let (_, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&name.to_uppercase());
            assert!(!unmappable, "{name} in upper case");
        }
    }

    #[test]
    fn pools_are_large_and_distinct() {
        let distinct = |names: &[&str]| names.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct(male_forenames()) >= 200);
        assert!(distinct(female_forenames()) >= 200);
        assert!(distinct(surnames()) >= 390);
        assert_eq!(surname_pool().names.len(), surnames().len() + 1000);
        for (name, _) in nicknames::NICKNAMES {
            assert!(
                male_forenames().contains(name) || female_forenames().contains(name),
                "{name}"
            );
        }
    }

    #[test]
    fn pools_carry_accents_and_apostrophes() {
        for name in ["José", "Zoë", "Siân", "Renée"] {
            assert!(male_forenames().contains(&name) || female_forenames().contains(&name));
        }
        for name in ["O'Brien", "D'Souza", "Ní Bhriain", "McDonald"] {
            assert!(surnames().contains(&name));
        }
    }

    #[test]
    fn pool_shares_follow_the_ranks() {
        let pool = Pool::ranked(&["a", "b", "c"], 1.0);
        let total = 1.0 + 0.5 + 1.0 / 3.0;
        assert!((pool.share(0) - 1.0 / total).abs() < 1e-12);
        assert!((pool.share(2) - 1.0 / 3.0 / total).abs() < 1e-12);
        assert_eq!(pool.pick(0.0), 0);
        assert_eq!(pool.pick(0.999_999), 2);
        let surnames = surname_pool();
        let sum: f64 = (0..surnames.names.len()).map(|i| surnames.share(i)).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert!(surnames.share(0) < 0.02, "the commonest surname stays realistic");
    }
}
