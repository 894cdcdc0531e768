//! The true people's types (identities: names, dates of birth, NI numbers, postcodes) and the
//! shared machinery of the world (dates, random streams); `people` builds one person and
//! `outcomes` adds what happens to them.
//!
//! Every person is generated from their own random stream, derived from (seed, person index), so
//! the world does not depend on the order or the number of threads that build it.

use chrono::{Datelike, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp1, Gamma};

use crate::noise::NoiseLevel;
use crate::pools::{self, Pool};
use crate::programmes::Programme;

/// First possible (first) release date: 2021-01-01.
pub const RELEASE_START: (i32, u32, u32) = (2021, 1, 1);
/// Last possible first release date: 2024-06-30 (its 365-day window ends on 2025-06-30).
pub const RELEASE_END: (i32, u32, u32) = (2024, 6, 30);
/// The date the extracts were taken: no event lies after it, and spells still running are open.
pub const EXTRACT_END: (i32, u32, u32) = (2025, 6, 30);
/// Length of the follow-up window after the index date, in days.
pub const WINDOW_DAYS: i32 = 365;

/// Random-stream tags, so different uses of one person never share a stream.
pub const STREAM_IDENTITY: u64 = 1;
/// Stream for covariates and outcome draws.
pub const STREAM_OUTCOMES: u64 = 2;
/// Stream for what only the heavy world draws about a person (a double-barrelled surname).
pub const STREAM_HEAVY: u64 = 3;
/// Stream for joining the mentoring, education and boot camp programmes (and their starts).
pub const STREAM_PROGRAMMES: u64 = 4;
/// Base of the per-file noise streams (plus the file's number).
pub const STREAM_NOISE: u64 = 16;

/// Days since 0001-01-01 (chrono's day number from the common era).
pub type Day = i32;

/// A date triple as a day number.
pub fn day(ymd: (i32, u32, u32)) -> Day {
    NaiveDate::from_ymd_opt(ymd.0, ymd.1, ymd.2)
        .expect("constant dates are valid")
        .num_days_from_ce()
}

/// The date of a day number.
pub fn date(d: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(d).expect("day numbers stay within chrono's range")
}

/// Whole years of age on `on` for someone born on `dob`.
pub fn age_on(dob: Day, on: Day) -> u32 {
    let (b, o) = (date(dob), date(on));
    let mut years = o.year() - b.year();
    if (o.month(), o.day()) < (b.month(), b.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// A random generator for one (stream, person, item), independent of every other.
pub fn rng_for(seed: u64, stream: u64, person: u64, item: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&stream.to_le_bytes());
    key[16..24].copy_from_slice(&person.to_le_bytes());
    key[24..].copy_from_slice(&item.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A 64-bit mix of a few numbers (splitmix64 finaliser), for tie-breaks in sort orders.
pub fn mix(values: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for v in values {
        let mut z = h ^ v.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// One spell of employment or benefit. `end` is `None` while the spell is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spell {
    /// First day.
    pub start: Day,
    /// Last day, inclusive; `None` when still open at the extract date.
    pub end: Option<Day>,
    /// Sector index (employment) or benefit type index (benefits).
    pub kind: u8,
}

/// One release from custody, with the covariates recorded at that release.
#[derive(Debug, Clone, Copy)]
pub struct Release {
    /// Release date.
    pub date: Day,
    /// Whole years of age on the release date.
    pub age: u8,
    /// Proven offences before this custody.
    pub prior_offences: u8,
    /// Sentence length in months.
    pub sentence_months: u8,
    /// Index into `pools::OFFENCE_GROUPS`.
    pub offence_group: u8,
}

/// Outcome values in the order of `OUTCOMES`: flags (0 or 1), counts and days, all whole
/// numbers, kept small because every spine person holds five sets of them.
pub type Outcomes = [u16; 8];

/// Names of the outcomes, in the order of `Outcomes`: the demo's four, then the Justice Data
/// Lab's measures (the number of reoffences in the window, employed on day 30 and on day 365)
/// and the restricted mean days to the first reoffence (at most 365).
pub const OUTCOMES: [&str; 8] = [
    "reoffended",
    "employed",
    "days_employed",
    "days_on_benefit",
    "reoffences",
    "employed_at_30_days",
    "employed_at_365_days",
    "days_to_reoffence",
];

/// What only spine persons have.
#[derive(Debug, Clone)]
pub struct SpineInfo {
    /// The releases (the first is the index release); one or two.
    pub releases: Vec<Release>,
    /// The programme the person took part in, if any.
    pub programme: Option<Programme>,
    /// Its start (meaningful with a programme).
    pub programme_start: Day,
    /// Outcomes without any programme.
    pub y0: Outcomes,
    /// Outcomes with each programme, in the order of `Programme::ALL`.
    pub with: [Outcomes; 4],
}

impl SpineInfo {
    /// Whether the person took part in `programme`.
    pub fn took_part(&self, programme: Programme) -> bool {
        self.programme == Some(programme)
    }

    /// The outcomes that happened: with the person's programme, or without any.
    pub fn observed(&self) -> &Outcomes {
        self.programme.map_or(&self.y0, |p| &self.with[p.index()])
    }
}

/// A true person.
#[derive(Debug, Clone)]
pub struct Person {
    /// Female (otherwise male).
    pub female: bool,
    /// Index into the sex's forename pool.
    pub forename: u16,
    /// Index into the surname pool.
    pub surname: u16,
    /// A second surname (e.g. a married name) that some later records carry.
    pub alt_surname: u16,
    /// The second part of a double-barrelled surname (`surname-second`); heavy noise only.
    pub second_barrel: Option<u16>,
    /// Date of birth.
    pub dob: Day,
    /// National Insurance number, 9 ASCII bytes such as `AB123456C`.
    pub nino: [u8; 9],
    /// Postcode as (area index, district, sector digit, two inward letters).
    pub postcode: (u8, u8, u8, u8, u8),
    /// Spine information, for released prisoners only.
    pub spine: Option<Box<SpineInfo>>,
    /// Proven offences: (date, index into `pools::OFFENCE_TYPES`).
    pub offences: Vec<(Day, u8)>,
    /// Employment spells.
    pub jobs: Vec<Spell>,
    /// Benefit spells.
    pub benefits: Vec<Spell>,
}

/// Everything shared by the generation of all persons.
#[derive(Debug)]
pub struct WorldParams {
    /// The seed.
    pub seed: u64,
    /// Number of spine persons.
    pub people: u64,
    /// The noise level (the heavy world also gives some people double-barrelled surnames).
    pub level: NoiseLevel,
    /// Male forenames, one pool per birth cohort (`pools::COHORTS`) over the same names.
    pub male: Vec<Pool>,
    /// Female forenames, likewise.
    pub female: Vec<Pool>,
    /// Surnames.
    pub surnames: Pool,
    nino_prefixes: Vec<[u8; 2]>,
    nino_offset: u64,
    pub(crate) release_start: Day,
    pub(crate) release_end: Day,
    pub(crate) extract_end: Day,
}

const NINO_FIRST: &[u8] = b"ABCEGHJKLMNOPRSTWXYZ";
const NINO_SECOND: &[u8] = b"ABCEGHJKLMNPRSTWXYZ";
/// Prefixes the NINO rule forbids.
pub const NINO_FORBIDDEN: [&[u8; 2]; 7] = [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"];
/// Multiplier of the NINO bijection: coprime with the number of NINOs (373 x 10^6), and large,
/// so that neighbouring persons get unrelated numbers.
const NINO_MULTIPLIER: u64 = 1_779_033_703;

impl WorldParams {
    /// Pools and constants for a seed and spine size.
    pub fn new(seed: u64, people: u64, level: NoiseLevel) -> WorldParams {
        let mut nino_prefixes = Vec::new();
        for &a in NINO_FIRST {
            for &b in NINO_SECOND {
                if !NINO_FORBIDDEN.contains(&&[a, b]) {
                    nino_prefixes.push([a, b]);
                }
            }
        }
        let space = nino_prefixes.len() as u64 * 1_000_000;
        WorldParams {
            seed,
            people,
            level,
            male: pools::forename_pools(pools::male_forenames(), mix),
            female: pools::forename_pools(pools::female_forenames(), mix),
            surnames: pools::surname_pool(),
            nino_prefixes,
            nino_offset: mix(&[seed, 0x4E49_4E4F]) % space,
            release_start: day(RELEASE_START),
            release_end: day(RELEASE_END),
            extract_end: day(EXTRACT_END),
        }
    }

    /// Number of "other" people (not in the spine): 30% of the spine.
    pub fn others(&self) -> u64 {
        self.people * 3 / 10
    }

    /// The extract date as a day number.
    pub fn extract_end(&self) -> Day {
        self.extract_end
    }

    /// The forename of a person.
    pub fn forename(&self, p: &Person) -> &str {
        &self.forename_pool(p.female, p.dob).names[p.forename as usize]
    }

    /// The forename pool of a sex and a birth cohort.
    pub fn forename_pool(&self, female: bool, dob: Day) -> &Pool {
        let pools = if female { &self.female } else { &self.male };
        &pools[pools::cohort(date(dob).year())]
    }

    /// A NINO that no other person has: a bijection of the person index.
    pub(crate) fn nino(&self, index: u64, suffix: u8) -> [u8; 9] {
        let space = self.nino_prefixes.len() as u64 * 1_000_000;
        let v = (index % space * NINO_MULTIPLIER + self.nino_offset) % space;
        let prefix = self.nino_prefixes[(v / 1_000_000) as usize];
        let digits = v % 1_000_000;
        let mut out = [0u8; 9];
        out[..2].copy_from_slice(&prefix);
        let mut rest = digits;
        for i in (2..8).rev() {
            out[i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out[8] = b'A' + suffix;
        out
    }
}

pub(crate) fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    rng.sample(Gamma::new(shape, 1.0).expect("shape parameters are positive constants"))
}

pub(crate) fn exp1(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(Exp1)
}

pub(crate) fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nino_multiplier_is_coprime_with_the_space() {
        let w = WorldParams::new(0, 1, NoiseLevel::Standard);
        let space = w.nino_prefixes.len() as u64 * 1_000_000;
        let (mut a, mut b) = (NINO_MULTIPLIER, space);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        assert_eq!(a, 1, "the NINO map must be a bijection");
        assert_eq!(w.nino_prefixes.len(), 373);
    }

    #[test]
    fn ninos_are_distinct_and_valid() {
        let w = WorldParams::new(7, 1000, NoiseLevel::Standard);
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            let n = w.nino(i, 2);
            assert!(!NINO_FORBIDDEN.contains(&&[n[0], n[1]]));
            assert!(NINO_FIRST.contains(&n[0]) && NINO_SECOND.contains(&n[1]));
            assert!(n[2..8].iter().all(u8::is_ascii_digit));
            assert!(seen.insert(n[..8].to_vec()));
        }
    }

    #[test]
    fn age_on_counts_whole_years() {
        let dob = day((1984, 2, 29));
        assert_eq!(age_on(dob, day((2024, 2, 28))), 39);
        assert_eq!(age_on(dob, day((2024, 2, 29))), 40);
        assert_eq!(age_on(dob, day((2023, 3, 1))), 39);
    }
}
