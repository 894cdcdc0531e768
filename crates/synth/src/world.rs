//! The true people: identities, covariates, treatment, and the events behind every outcome.
//!
//! Every person is generated from their own random stream, derived from (seed, person index), so
//! the world does not depend on the order or the number of threads that build it.

use chrono::{Datelike, Months, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp1, Gamma, StandardNormal};

use crate::pools::{self, Pool};

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

/// Outcome values in the order of `OUTCOMES`.
pub type Outcomes = [f64; 4];

/// Names of the outcomes, in the order of `Outcomes`.
pub const OUTCOMES: [&str; 4] = ["reoffended", "employed", "days_employed", "days_on_benefit"];

/// What only spine persons have.
#[derive(Debug, Clone)]
pub struct SpineInfo {
    /// The releases (the first is the index release); one or two.
    pub releases: Vec<Release>,
    /// Whether the person took part in the programme.
    pub treated: bool,
    /// Programme start (meaningful when treated).
    pub programme_start: Day,
    /// Outcomes without the programme.
    pub y0: Outcomes,
    /// Outcomes with the programme.
    pub y1: Outcomes,
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
    /// Male forenames.
    pub male: Pool,
    /// Female forenames.
    pub female: Pool,
    /// Surnames.
    pub surnames: Pool,
    nino_prefixes: Vec<[u8; 2]>,
    nino_offset: u64,
    release_start: Day,
    release_end: Day,
    extract_end: Day,
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
    pub fn new(seed: u64, people: u64) -> WorldParams {
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
            male: Pool::ranked(pools::MALE_FORENAMES, 8.0),
            female: Pool::ranked(pools::FEMALE_FORENAMES, 8.0),
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
        let pool = if p.female { &self.female } else { &self.male };
        &pool.names[p.forename as usize]
    }

    /// A NINO that no other person has: a bijection of the person index.
    fn nino(&self, index: u64, suffix: u8) -> [u8; 9] {
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

/// Identity of one person, from the identity stream only (so relatives can look it up).
struct Identity {
    female: bool,
    forename: u16,
    surname: u16,
    alt_surname: u16,
    dob: Day,
    postcode: (u8, u8, u8, u8, u8),
    nino_suffix: u8,
    /// For spine persons: first release date and age.
    release: Option<(Day, u8)>,
}

fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    rng.sample(Gamma::new(shape, 1.0).expect("shape parameters are positive constants"))
}

fn exp1(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(Exp1)
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn postcode(rng: &mut ChaCha8Rng) -> (u8, u8, u8, u8, u8) {
    let letters = pools::POSTCODE_INWARD_LETTERS.len() as u8;
    (
        rng.random_range(0..pools::POSTCODE_AREAS.len()) as u8,
        rng.random_range(1..=20),
        rng.random_range(0..=9),
        rng.random_range(0..letters),
        rng.random_range(0..letters),
    )
}

fn identity(w: &WorldParams, index: u64) -> Identity {
    let mut rng = rng_for(w.seed, STREAM_IDENTITY, index, 0);
    let spine = index < w.people;
    let female = rng.random::<f64>() < if spine { 0.15 } else { 0.45 };
    let pool = if female { &w.female } else { &w.male };
    let forename = pool.pick(rng.random());
    let surname = w.surnames.pick(rng.random());
    let alt_surname = w.surnames.pick(rng.random());
    let postcode = postcode(&mut rng);
    let nino_suffix = rng.random_range(0..4u8);
    let age = (18.0 + gamma(&mut rng, 2.2) * 7.0).min(70.0) as u32;
    let (anchor, release) = if spine {
        let r = rng.random_range(w.release_start..=w.release_end);
        (r, Some((r, age as u8)))
    } else {
        (day((2023, 1, 1)), None)
    };
    let anchor_date = date(anchor);
    let upper = anchor_date
        .checked_sub_months(Months::new(12 * age))
        .expect("ages are far inside chrono's range")
        .num_days_from_ce();
    let lower = anchor_date
        .checked_sub_months(Months::new(12 * (age + 1)))
        .expect("ages are far inside chrono's range")
        .num_days_from_ce()
        + 1;
    let dob = rng.random_range(lower..=upper);
    Identity {
        female,
        forename,
        surname,
        alt_surname,
        dob,
        postcode,
        nino_suffix,
        release,
    }
}

/// Build person `index` (spine persons first, then others).
pub fn person(w: &WorldParams, index: u64) -> Person {
    let mut id = identity(w, index);
    let mut rng = rng_for(w.seed, STREAM_OUTCOMES, index, 0);
    if index >= w.people {
        // 3% of others are relatives of a spine person: same surname and address, and a tenth of
        // those are twins with the same date of birth. They make false matches possible.
        if rng.random::<f64>() < 0.03 && w.people > 0 {
            let relative = identity(w, rng.random_range(0..w.people));
            id.surname = relative.surname;
            id.postcode = relative.postcode;
            if rng.random::<f64>() < 0.1 {
                id.dob = relative.dob;
            }
        }
    }
    let mut p = Person {
        female: id.female,
        forename: id.forename,
        surname: id.surname,
        alt_surname: id.alt_surname,
        dob: id.dob,
        nino: w.nino(index, id.nino_suffix),
        postcode: id.postcode,
        spine: None,
        offences: Vec::new(),
        jobs: Vec::new(),
        benefits: Vec::new(),
    };
    match id.release {
        Some((release, age)) => spine_person(w, &mut rng, &mut p, release, age),
        None => other_person(w, &mut rng, &mut p),
    }
    p
}

/// Covariate and outcome draws of a spine person, shared by both potential outcomes.
struct Draws {
    u_reoffend: f64,
    first_offence: f64,
    extra_offences: usize,
    offence_gaps: [f64; 6],
    offence_types: [u8; 7],
    u_late_offence: f64,
    late_offence: f64,
    u_job: f64,
    job_start: f64,
    job_length: f64,
    u_second_job: f64,
    second_job_gap: f64,
    second_job_length: f64,
    sectors: [u8; 3],
    u_late_job: f64,
    late_job_start: f64,
    u_pre_job: f64,
    pre_job_gap: f64,
    pre_job_length: f64,
    u_benefit: f64,
    benefit_start: f64,
    benefit_length: f64,
    benefit_type: f64,
    u_pre_benefit: f64,
    pre_benefit_gap: f64,
    pre_benefit_length: f64,
    u_pip: f64,
    pip_start: f64,
    u_uc_working: f64,
    u_second_release: f64,
    second_release_gap: f64,
    second_sentence: f64,
}

impl Draws {
    fn new(rng: &mut ChaCha8Rng) -> Draws {
        let mut offence_gaps = [0.0; 6];
        for g in &mut offence_gaps {
            *g = exp1(rng);
        }
        let mut offence_types = [0u8; 7];
        for t in &mut offence_types {
            *t = rng.random_range(0..pools::OFFENCE_TYPES.len()) as u8;
        }
        let mut sectors = [0u8; 3];
        for s in &mut sectors {
            *s = rng.random_range(0..pools::SECTORS.len()) as u8;
        }
        Draws {
            u_reoffend: rng.random(),
            first_offence: rng.random(),
            extra_offences: (gamma(rng, 0.8) * 1.2) as usize,
            offence_gaps,
            offence_types,
            u_late_offence: rng.random(),
            late_offence: rng.random(),
            u_job: rng.random(),
            job_start: rng.random(),
            job_length: exp1(rng),
            u_second_job: rng.random(),
            second_job_gap: exp1(rng),
            second_job_length: exp1(rng),
            sectors,
            u_late_job: rng.random(),
            late_job_start: rng.random(),
            u_pre_job: rng.random(),
            pre_job_gap: exp1(rng),
            pre_job_length: exp1(rng),
            u_benefit: rng.random(),
            benefit_start: rng.random(),
            benefit_length: exp1(rng),
            benefit_type: rng.random(),
            u_pre_benefit: rng.random(),
            pre_benefit_gap: exp1(rng),
            pre_benefit_length: exp1(rng),
            u_pip: rng.random(),
            pip_start: rng.random(),
            u_uc_working: rng.random(),
            u_second_release: rng.random(),
            second_release_gap: rng.random(),
            second_sentence: rng.random(),
        }
    }
}

/// The programme's designed effects (the realised ATT is computed, not assumed).
pub mod design {
    /// Change in the probability of a proven reoffence within the window.
    pub const REOFFEND: f64 = -0.06;
    /// Change in the probability of any employment within the window.
    pub const EMPLOYED: f64 = 0.08;
    /// Days earlier that a treated person's first job starts.
    pub const JOB_START_SHIFT: i32 = 45;
    /// Factor on the length of the first out-of-work benefit claim.
    pub const BENEFIT_LENGTH: f64 = 0.75;
    /// Change in the probability of an out-of-work benefit claim within the window.
    pub const BENEFIT_CLAIM: f64 = -0.05;
}

/// Linear predictors of the outcome models, from the first release's covariates.
struct Risk {
    reoffend: f64,
    job: f64,
    benefit: f64,
}

fn risk(r: Release, female: bool) -> Risk {
    let age = f64::from(r.age) - 33.0;
    let prior = f64::from(r.prior_offences) - 5.0;
    let sentence = f64::from(r.sentence_months).min(48.0) - 12.0;
    let sex = if female { 1.0 } else { 0.0 };
    let (g_reoffend, g_job) = match pools::OFFENCE_GROUPS[r.offence_group as usize].0 {
        "theft" => (0.35, -0.1),
        "drugs" => (0.2, -0.2),
        "fraud" => (-0.5, 0.5),
        "public_order" => (0.15, 0.0),
        "other" => (-0.1, 0.1),
        _ => (0.0, 0.0),
    };
    Risk {
        reoffend: -0.9 + 0.1 * prior - 0.02 * age - 0.01 * sentence - 0.3 * sex + g_reoffend,
        job: -0.9 - 0.05 * prior - 0.015 * age - 0.2 * sex + g_job,
        benefit: 0.2 + 0.02 * age + 0.03 * prior + 0.3 * sex,
    }
}

/// Outcome events of one potential world.
struct Events {
    offences: Vec<(Day, u8)>,
    jobs: Vec<Spell>,
    benefits: Vec<Spell>,
}

fn close(end: Day, extract_end: Day) -> Option<Day> {
    (end <= extract_end).then_some(end)
}

/// The reoffences after `release`: within the window by the risk (and the programme's effect
/// for the treated, `treat` = 1), and now and then a late one after it.
fn offences(
    params: &WorldParams,
    draws: &Draws,
    release: Day,
    risk: &Risk,
    treat: f64,
    group_type: u8,
) -> Vec<(Day, u8)> {
    let extract_end = params.extract_end;
    let mut offences = Vec::new();
    let p_reoffend = (logistic(risk.reoffend) + treat * design::REOFFEND).max(0.0);
    let offence_type = |k: usize| {
        if draws.offence_types[k].is_multiple_of(2) {
            group_type
        } else {
            draws.offence_types[k]
        }
    };
    if draws.u_reoffend < p_reoffend {
        let mut when = release + 1 + (364.0 * draws.first_offence.powf(1.4)) as Day;
        offences.push((when, offence_type(0)));
        for k in 0..draws.extra_offences.min(6) {
            when += 1 + (90.0 * draws.offence_gaps[k]) as Day;
            if when > extract_end {
                break;
            }
            offences.push((when, offence_type(k + 1)));
        }
    } else if draws.u_late_offence < 0.15 {
        let when = release + WINDOW_DAYS + 1 + (500.0 * draws.late_offence) as Day;
        if when <= extract_end {
            offences.push((when, offence_type(0)));
        }
    }
    offences
}

fn events(
    params: &WorldParams,
    draws: &Draws,
    first: Release,
    risk: &Risk,
    treated: bool,
    group_type: u8,
) -> Events {
    let release = first.date;
    let extract_end = params.extract_end;
    let treat = if treated { 1.0 } else { 0.0 };
    let offences = offences(params, draws, release, risk, treat, group_type);

    let mut jobs = Vec::new();
    let prison_start = release - i32::from(first.sentence_months) * 15;
    if draws.u_pre_job < 0.45 {
        let end = prison_start - 1 - (60.0 * draws.pre_job_gap) as Day;
        let start = end - 30 - (400.0 * draws.pre_job_length) as Day;
        jobs.push(Spell {
            start,
            end: Some(end),
            kind: draws.sectors[2],
        });
    }
    let p_job = (logistic(risk.job) + treat * design::EMPLOYED).min(0.98);
    let mut job_start = None;
    if draws.u_job < p_job {
        let shift = if treated { design::JOB_START_SHIFT } else { 0 };
        let start = release + 1 + ((300.0 * draws.job_start.powf(1.3)) as Day - shift).max(0);
        let end = start + 30 + (220.0 * draws.job_length) as Day;
        jobs.push(Spell {
            start,
            end: close(end, extract_end),
            kind: draws.sectors[0],
        });
        job_start = Some(start);
        if draws.u_second_job < 0.3 && end < extract_end {
            let start2 = end + 14 + (60.0 * draws.second_job_gap) as Day;
            if start2 <= extract_end {
                jobs.push(Spell {
                    start: start2,
                    end: close(
                        start2 + 30 + (250.0 * draws.second_job_length) as Day,
                        extract_end,
                    ),
                    kind: draws.sectors[1],
                });
            }
        }
    } else if draws.u_late_job < 0.25 {
        let start = release + WINDOW_DAYS + 1 + (400.0 * draws.late_job_start) as Day;
        if start <= extract_end {
            jobs.push(Spell {
                start,
                end: close(start + 30 + (200.0 * draws.job_length) as Day, extract_end),
                kind: draws.sectors[0],
            });
        }
    }

    let mut benefits = Vec::new();
    let out_of_work_type = |u: f64| -> u8 {
        if u < 0.15 {
            0
        } else if u < 0.4 {
            1
        } else {
            2
        }
    };
    if draws.u_pre_benefit < 0.3 {
        let end = prison_start - 1 - (90.0 * draws.pre_benefit_gap) as Day;
        let start = end - 20 - (300.0 * draws.pre_benefit_length) as Day;
        benefits.push(Spell {
            start,
            end: Some(end),
            kind: out_of_work_type(draws.benefit_type),
        });
    }
    let p_benefit = (logistic(risk.benefit) + treat * design::BENEFIT_CLAIM).max(0.0);
    if draws.u_benefit < p_benefit {
        let start = release + 1 + (45.0 * draws.benefit_start) as Day;
        let factor = if treated { design::BENEFIT_LENGTH } else { 1.0 };
        let mut end = start + 14 + (factor * 200.0 * draws.benefit_length) as Day;
        // A claim ends when a job starts.
        if let Some(js) = job_start
            && js > start
        {
            end = end.min(js - 1);
        }
        benefits.push(Spell {
            start,
            end: close(end, extract_end),
            kind: out_of_work_type(draws.benefit_type),
        });
    }
    // Benefits that are not out-of-work ones, so outcome code must filter by type.
    if draws.u_pip < 0.08 {
        let start = release - 200 + (500.0 * draws.pip_start) as Day;
        benefits.push(Spell {
            start,
            end: close(start + 700, extract_end),
            kind: if draws.u_pip < 0.065 { 3 } else { 4 },
        });
    }
    if let (Some(js), true) = (job_start, draws.u_uc_working < 0.3) {
        benefits.push(Spell {
            start: js + 28,
            end: close(js + 28 + 120, extract_end),
            kind: 5,
        });
    }
    Events {
        offences,
        jobs,
        benefits,
    }
}

/// Days of the window (index, index + 365] covered by the spells, overlaps merged.
fn covered_days<'a>(index: Day, spells: impl Iterator<Item = &'a Spell>) -> i32 {
    let (lo, hi) = (index + 1, index + WINDOW_DAYS);
    let mut parts: Vec<(Day, Day)> = spells
        .map(|s| (s.start.max(lo), s.end.unwrap_or(Day::MAX).min(hi)))
        .filter(|(a, b)| a <= b)
        .collect();
    parts.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(Day, Day)> = None;
    for (a, b) in parts {
        match cur {
            Some((ca, cb)) if a <= cb + 1 => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca + 1;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((ca, cb)) = cur {
        total += cb - ca + 1;
    }
    total
}

/// The four outcome measures of a set of events, for index date `index`.
fn measure(index: Day, e: &Events) -> Outcomes {
    let in_window = |d: Day| d > index && d <= index + WINDOW_DAYS;
    let reoffended = e.offences.iter().any(|(d, _)| in_window(*d));
    let days_employed = covered_days(index, e.jobs.iter());
    let days_on_benefit = covered_days(index, e.benefits.iter().filter(|s| pools::is_out_of_work(s.kind)));
    [
        f64::from(u8::from(reoffended)),
        f64::from(u8::from(days_employed > 0)),
        f64::from(days_employed),
        f64::from(days_on_benefit),
    ]
}

fn pick_group(u: f64) -> u8 {
    let mut acc = 0.0;
    for (i, (_, share)) in pools::OFFENCE_GROUPS.iter().enumerate() {
        acc += share;
        if u < acc {
            return i as u8;
        }
    }
    (pools::OFFENCE_GROUPS.len() - 1) as u8
}

/// Offence type index of an offence group (groups are the first types, `other` maps to `other`).
fn group_type(group: u8) -> u8 {
    let name = pools::OFFENCE_GROUPS[group as usize].0;
    pools::OFFENCE_TYPES
        .iter()
        .position(|t| *t == name)
        .expect("every offence group is also an offence type") as u8
}

fn spine_person(w: &WorldParams, rng: &mut ChaCha8Rng, p: &mut Person, release: Day, age: u8) {
    let age_f = f64::from(age);
    let prior = (gamma(rng, 0.9) * (4.0 + 0.15 * (age_f - 18.0))).min(40.0) as u8;
    let group = pick_group(rng.random());
    let group_name = pools::OFFENCE_GROUPS[group as usize].0;
    let z: f64 = rng.sample(StandardNormal);
    let factor = match group_name {
        "violence" => 1.6,
        "drugs" => 1.3,
        _ => 1.0,
    };
    let sentence = (factor * (7.0f64.ln() + 0.9 * z).exp()).clamp(1.0, 120.0) as u8;
    let first = Release {
        date: release,
        age,
        prior_offences: prior,
        sentence_months: sentence,
        offence_group: group,
    };

    // Selection into the programme depends on the covariates, so a naive comparison is biased.
    let g_treat = match group_name {
        "violence" => -0.3,
        "theft" => 0.25,
        "drugs" => 0.5,
        "fraud" => 0.1,
        "public_order" => -0.1,
        _ => 0.0,
    };
    let treat_logit = -2.2 - 0.02 * (age_f - 33.0) - 0.1 * (f64::from(prior) - 5.0)
        + g_treat
        + if p.female { 0.3 } else { 0.0 };
    let treated = rng.random::<f64>() < logistic(treat_logit);
    let programme_start = release - 7 - rng.random_range(0..110);

    let draws = Draws::new(rng);
    let risk = risk(first, p.female);
    let gt = group_type(group);
    let e0 = events(w, &draws, first, &risk, false, gt);
    let e1 = events(w, &draws, first, &risk, true, gt);
    let y0 = measure(release, &e0);
    let y1 = measure(release, &e1);
    let actual = if treated { e1 } else { e0 };

    let mut releases = vec![first];
    // A few people reoffend, go back to custody and are released a second time.
    if let Some(&(first_offence, offence)) = actual.offences.first()
        && first_offence <= release + WINDOW_DAYS
        && draws.u_second_release < 0.14
    {
        let date2 = first_offence + 30 + (240.0 * draws.second_release_gap) as Day;
        if date2 <= w.extract_end {
            let group2 = pools::OFFENCE_GROUPS
                .iter()
                .position(|(g, _)| *g == pools::OFFENCE_TYPES[offence as usize])
                .unwrap_or(pools::OFFENCE_GROUPS.len() - 1) as u8;
            releases.push(Release {
                date: date2,
                age: age_on(p.dob, date2) as u8,
                prior_offences: prior.saturating_add(1).min(40),
                sentence_months: 1 + (draws.second_sentence * 11.0) as u8,
                offence_group: group2,
            });
        }
    }
    p.offences = actual.offences;
    p.jobs = actual.jobs;
    p.benefits = actual.benefits;
    p.spine = Some(Box::new(SpineInfo {
        releases,
        treated,
        programme_start,
        y0,
        y1,
    }));
}

fn other_person(w: &WorldParams, rng: &mut ChaCha8Rng, p: &mut Person) {
    let from = day((2018, 1, 1));
    let x = w.extract_end;
    if rng.random::<f64>() < 0.25 {
        let n = rng.random_range(1..=3);
        for _ in 0..n {
            let when = rng.random_range(w.release_start..=x);
            let kind = rng.random_range(0..pools::OFFENCE_TYPES.len()) as u8;
            p.offences.push((when, kind));
        }
        p.offences.sort_unstable();
    }
    if rng.random::<f64>() < 0.6 {
        let n = rng.random_range(1..=2);
        for _ in 0..n {
            let start = rng.random_range(from..=x - 30);
            let end = start + 30 + (300.0 * exp1(rng)) as Day;
            p.jobs.push(Spell {
                start,
                end: close(end, x),
                kind: rng.random_range(0..pools::SECTORS.len()) as u8,
            });
        }
    }
    if rng.random::<f64>() < 0.45 {
        let start = rng.random_range(from..=x - 30);
        let end = start + 30 + (250.0 * exp1(rng)) as Day;
        let u: f64 = rng.random();
        let kind = [0.1, 0.25, 0.6, 0.75, 0.8, 1.0]
            .iter()
            .position(|c| u < *c)
            .unwrap_or(5) as u8;
        p.benefits.push(Spell {
            start,
            end: close(end, x),
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spell(start: Day, end: Option<Day>) -> Spell {
        Spell { start, end, kind: 0 }
    }

    #[test]
    fn covered_days_merges_overlaps_and_clips_to_the_window() {
        let check = |spells: &[Spell], expected: i32| {
            assert_eq!(covered_days(0, spells.iter()), expected, "{spells:?}");
        };
        check(&[], 0);
        check(&[spell(-10, Some(0))], 0);
        check(&[spell(-10, Some(1))], 1);
        check(&[spell(1, None)], 365);
        check(&[spell(10, Some(19)), spell(15, Some(24))], 15);
        check(&[spell(10, Some(19)), spell(20, Some(29))], 20);
        check(&[spell(365, Some(400)), spell(366, None)], 1);
    }

    #[test]
    fn nino_multiplier_is_coprime_with_the_space() {
        let w = WorldParams::new(0, 1);
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
        let w = WorldParams::new(7, 1000);
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
