//! Name, nickname, postcode and category pools.
//!
//! Every value here can be encoded in Windows-1252 (checked by a test), because the employment
//! extract is written in that encoding. The name lists are data files beside this module, one name
//! a line, in rough order of frequency. Surnames follow a Zipf–Mandelbrot law fitted to England
//! and Wales; forenames a harmonic law within each birth cohort, each cohort with its own ranking
//! (`docs/synth.md` gives the sources and the parameters).

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

/// Common surnames, most frequent first (`surnames.txt`); [`surname_pool`] adds the long tail.
pub fn surnames() -> &'static [&'static str] {
    &SURNAMES
}

/// First halves of built English place-name surnames (the long tail of the surname pool).
pub const SURNAME_STEMS: &[&str] = &[
    "Ash", "Black", "Brad", "Brook", "Cald", "Chester", "Craw", "Dun", "East", "Elm", "Fair", "Fern",
    "Green", "Hart", "Hay", "High", "Holm", "Kings", "Lang", "Lind", "Mars", "Mid", "Mill", "Nor", "Oak",
    "Pen", "Rad", "Red", "Rock", "Round", "Stan", "Stock", "Thorn", "Wake", "Wal", "West", "Whit", "Brom",
    "Cran", "Gold", "Ald", "Alder", "Apple", "Arn", "Bar", "Beck", "Bel", "Birch", "Bland", "Bram", "Brent",
    "Brough", "Bur", "Cam", "Cap", "Car", "Chad", "Church", "Clay", "Clif", "Cold", "Cole", "Cort", "Cot",
    "Dal", "Dean", "Der", "Dray", "Ed", "Ever", "Far", "Fox", "Gar", "Glen", "Hal", "Ham", "Hather", "Hen",
    "Hol", "Horn", "Hunt", "Ick", "Ket", "Kirk", "Lam", "Lea", "Lock", "Long", "Mal", "Maple", "Mor", "Ne",
    "Old", "Over", "Pad", "Pick", "Rother", "Rye", "Sal", "Sand", "Shel",
];

/// Second halves of built English place-name surnames.
pub const SURNAME_ENDS: &[&str] = &[
    "ford", "ley", "wood", "field", "by", "ton", "well", "worth", "ham", "more", "dale", "hurst", "combe",
    "stead", "bridge", "den", "ridge", "brook", "hill", "gate", "wick", "thorpe", "land", "shaw", "croft",
    "bury", "cliffe", "cott", "burn", "holme", "ington", "stow", "mere", "marsh", "hay", "bourne", "lake",
    "lock", "don", "ney", "thwaite", "ock", "side", "wald",
];

/// Surname frequencies follow a Zipf–Mandelbrot law: the surname at rank `r` (1-based) has weight
/// `(r + SURNAME_ZIPF_OFFSET) ^ -SURNAME_ZIPF_EXPONENT`. Fitted to the shares of the leading
/// surnames of England and Wales (`docs/synth.md`): Smith about 1.3%, the top ten about 6%.
pub const SURNAME_ZIPF_EXPONENT: f64 = 0.62;
/// See [`SURNAME_ZIPF_EXPONENT`].
pub const SURNAME_ZIPF_OFFSET: f64 = 0.25;

/// The surname pool: the curated common surnames (`surnames.txt`, most frequent first), then the
/// built place-name surnames (`SURNAME_STEMS` x `SURNAME_ENDS`, skipping any already present) as
/// the long tail, all weighted by one Zipf–Mandelbrot law of their rank.
pub fn surname_pool() -> Pool {
    let mut names: Vec<String> = surnames().iter().map(|s| (*s).to_owned()).collect();
    let mut seen: std::collections::HashSet<String> = names.iter().cloned().collect();
    for stem in SURNAME_STEMS {
        for end in SURNAME_ENDS {
            let name = format!("{stem}{end}");
            if seen.insert(name.clone()) {
                names.push(name);
            }
        }
    }
    let weights: Vec<f64> = (1..=names.len())
        .map(|r| (r as f64 + SURNAME_ZIPF_OFFSET).powf(-SURNAME_ZIPF_EXPONENT))
        .collect();
    Pool::weighted(names, &weights)
}

/// Forename frequencies within a birth cohort: the forename at rank `r` (0-based) has weight
/// `1 / (r + FORENAME_OFFSET)`, which puts the commonest name of a cohort near 3% (ONS baby
/// names: `docs/synth.md`).
pub const FORENAME_OFFSET: f64 = 12.0;

/// Birth cohorts with their own forename ranking: born before 1970, in the 1970s, 1980s, 1990s,
/// and from 2000.
pub const COHORTS: usize = 5;

/// The birth cohort of a year of birth.
pub fn cohort(year: i32) -> usize {
    match year {
        ..1970 => 0,
        1970..1980 => 1,
        1980..1990 => 2,
        1990..2000 => 3,
        _ => 4,
    }
}

/// How far (in ranks, either way) a forename's rank moves from its place in the list from one
/// cohort to the next, so that each cohort has its own leading names.
const COHORT_RANK_JITTER: u64 = 30;

/// One forename pool per cohort over the same names (so an index means the same name in every
/// cohort): the names are ranked by their place in the list plus a fixed jitter of the cohort.
pub fn forename_pools(names: &[&str], mix: impl Fn(&[u64]) -> u64) -> Vec<Pool> {
    (0..COHORTS)
        .map(|c| {
            let mut order: Vec<(i64, usize)> = (0..names.len())
                .map(|r| {
                    let jitter = (mix(&[0xF0F0, c as u64, r as u64]) % (2 * COHORT_RANK_JITTER + 1)) as i64
                        - COHORT_RANK_JITTER as i64;
                    (r as i64 + jitter, r)
                })
                .collect();
            order.sort_unstable();
            let mut weights = vec![0.0; names.len()];
            for (rank, (_, r)) in order.into_iter().enumerate() {
                weights[r] = 1.0 / (rank as f64 + FORENAME_OFFSET);
            }
            Pool::weighted(names.iter().map(|s| (*s).to_owned()).collect(), &weights)
        })
        .collect()
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
        assert!(surname_pool().names.len() >= 4500);
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
        // Smith's share and the top ten's, as in England and Wales (docs/synth.md).
        assert!(
            (0.011..=0.0145).contains(&surnames.share(0)),
            "{}",
            surnames.share(0)
        );
        let top10: f64 = (0..10).map(|i| surnames.share(i)).sum();
        assert!((0.05..=0.075).contains(&top10), "{top10}");
        let distinct = surnames
            .names
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        assert_eq!(distinct, surnames.names.len(), "no surname is listed twice");
    }

    #[test]
    fn each_cohort_has_its_own_leading_forenames_near_three_percent() {
        let mix = |v: &[u64]| {
            v.iter().fold(17u64, |h, x| {
                h.wrapping_mul(31).wrapping_add(*x).rotate_left(7) ^ 0x9E37
            })
        };
        for names in [male_forenames(), female_forenames()] {
            let pools = forename_pools(names, mix);
            assert_eq!(pools.len(), COHORTS);
            let leader =
                |pool: &Pool| (0..names.len()).max_by(|&a, &b| pool.share(a).total_cmp(&pool.share(b)));
            let leaders: std::collections::HashSet<Option<usize>> = pools.iter().map(leader).collect();
            assert!(leaders.len() >= 2, "cohorts differ in their leading names");
            for pool in &pools {
                let top = (0..names.len()).map(|i| pool.share(i)).fold(0.0, f64::max);
                assert!((0.02..=0.035).contains(&top), "{top}");
            }
        }
    }
}
