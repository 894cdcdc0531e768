//! Applying noise to one record's identifiers.

use chrono::Datelike;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::rates::{DOUBLE_BARRELLED_SHARE, Kind, NoiseLevel, SWAPPABLE_SHARE};
use super::report::Counts;
use crate::extract::Extract;
use crate::pools;
use crate::world::{NINO_FORBIDDEN, Person, WorldParams, date};

/// A date of birth as written, which may not exist on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dob {
    /// Year.
    pub y: i32,
    /// Month (may be 13 when invalid).
    pub m: u32,
    /// Day (may be 30 in February when invalid).
    pub d: u32,
}

/// The identifiers of one record after noise, before the extract's formatting.
#[derive(Debug, Clone)]
pub struct NoisyId {
    /// Forename (possibly a nickname, with a typo, or empty).
    pub forename: String,
    /// Surname.
    pub surname: String,
    /// Date of birth.
    pub dob: Dob,
    /// `Some(true)` female, `Some(false)` male, `None` missing.
    pub female: Option<bool>,
    /// NI number as `AB123456C` (or an invalid variant), `None` when missing.
    pub nino: Option<String>,
}

fn typo(name: &str, rng: &mut ChaCha8Rng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    // Positions of ASCII letters after the first character, so the change always survives
    // standardisation and the initial stays as typed (as in most real typing errors).
    let letters: Vec<usize> = (1..chars.len())
        .filter(|&i| chars[i].is_ascii_alphabetic())
        .collect();
    let op = rng.random_range(0..3);
    if letters.is_empty() || op == 2 {
        let i = if letters.is_empty() {
            0
        } else {
            letters[rng.random_range(0..letters.len())]
        };
        let c = chars[i];
        chars.insert(i, c);
    } else {
        let i = letters[rng.random_range(0..letters.len())];
        if op == 0 || letters.len() < 3 {
            let old = chars[i].to_ascii_lowercase();
            let mut new = old;
            while new == old {
                new = char::from(b'a' + rng.random_range(0..26u8));
            }
            chars[i] = if chars[i].is_ascii_uppercase() {
                new.to_ascii_uppercase()
            } else {
                new
            };
        } else {
            chars.remove(i);
        }
    }
    chars.into_iter().collect()
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// The noise level and the per-sex share of forenames that have a nickname (to turn a target
/// rate into a probability).
#[derive(Debug)]
pub struct NoiseParams {
    level: NoiseLevel,
    nick_share: [f64; 2],
}

impl NoiseParams {
    /// Computes the nickname shares of the forename pools.
    pub fn new(w: &WorldParams, level: NoiseLevel) -> NoiseParams {
        let share = |pool: &pools::Pool| {
            pool.names
                .iter()
                .enumerate()
                .filter(|(_, n)| !pools::nicknames(n).is_empty())
                .map(|(i, _)| pool.share(i))
                .sum::<f64>()
        };
        // Averaged over the birth cohorts (spread evenly enough for a rate target).
        let mean = |pools: &[pools::Pool]| pools.iter().map(share).sum::<f64>() / pools.len() as f64;
        NoiseParams {
            level,
            nick_share: [mean(&w.male), mean(&w.female)],
        }
    }

    /// The noise level.
    pub fn level(&self) -> NoiseLevel {
        self.level
    }

    fn target(&self, extract: Extract, kind: Kind) -> f64 {
        self.level.target(extract, kind)
    }

    fn heavy(&self) -> bool {
        self.level == NoiseLevel::Heavy
    }
}

/// One record's draws: the noise level, the extract, the record's random stream and the tally
/// of the kinds of noise applied.
struct Draws<'a> {
    np: &'a NoiseParams,
    extract: Extract,
    rng: &'a mut ChaCha8Rng,
    counts: &'a mut Counts,
}

impl Draws<'_> {
    fn target(&self, kind: Kind) -> f64 {
        self.np.target(self.extract, kind)
    }

    /// Draws whether the record gets `kind`, with probability `p`, and counts it when it does.
    fn hit_with(&mut self, kind: Kind, p: f64) -> bool {
        let hit = self.rng.random::<f64>() < p;
        if hit {
            self.counts.add(kind);
        }
        hit
    }

    /// Draws whether the record gets `kind` at its target rate, and counts it when it does.
    fn hit(&mut self, kind: Kind) -> bool {
        self.hit_with(kind, self.target(kind))
    }
}

/// Applies the extract's noise to a person's identifiers, counting each kind applied.
/// `first_release` marks a person's first row in `releases.csv`, which keeps the birth surname.
pub fn noisy_id(
    w: &WorldParams,
    np: &NoiseParams,
    p: &Person,
    extract: Extract,
    first_release: bool,
    rng: &mut ChaCha8Rng,
    counts: &mut Counts,
) -> NoisyId {
    let mut d = Draws {
        np,
        extract,
        rng,
        counts,
    };
    // The order of the draws is part of the output: the standard level's draws must never change.
    let (forename, surname) = noisy_names(w, p, first_release, &mut d);
    let dob = noisy_dob(p, &mut d);
    let mut female = Some(p.female);
    if d.hit(Kind::SexError) {
        female = if d.rng.random::<bool>() {
            None
        } else {
            Some(!p.female)
        };
    }
    let nino = if d.hit(Kind::NinoMissing) {
        None
    } else if d.hit_with(
        Kind::NinoInvalid,
        d.target(Kind::NinoInvalid) / (1.0 - d.target(Kind::NinoMissing)),
    ) {
        Some(invalid_nino(&p.nino, d.rng))
    } else {
        Some(String::from_utf8_lossy(&p.nino).into_owned())
    };
    NoisyId {
        forename,
        surname,
        dob,
        female,
        nino,
    }
}

/// The surname a record starts from: the birth surname, the other one (a surname change), or in
/// the heavy world a double-barrelled surname, whole or one of its parts.
fn base_surname(w: &WorldParams, p: &Person, first_release: bool, d: &mut Draws) -> String {
    let names = &w.surnames.names;
    if !first_release
        && d.rng.random::<f64>() < d.np.level.surname_change(p.female)
        && p.alt_surname != p.surname
    {
        d.counts.add(Kind::SurnameChange);
        return names[p.alt_surname as usize].clone();
    }
    let first = &names[p.surname as usize];
    match p.second_barrel {
        Some(second) if d.np.heavy() => {
            let second = &names[second as usize];
            let p_part = d.target(Kind::SurnamePart) / DOUBLE_BARRELLED_SHARE;
            if d.hit_with(Kind::SurnamePart, p_part) {
                if d.rng.random::<bool>() { first } else { second }.clone()
            } else {
                format!("{first}-{second}")
            }
        }
        _ => first.clone(),
    }
}

/// Forename and surname after noise.
fn noisy_names(w: &WorldParams, p: &Person, first_release: bool, d: &mut Draws) -> (String, String) {
    let base_forename = w.forename(p);
    let mut forename = base_forename.to_owned();
    let nicks = pools::nicknames(base_forename);
    let p_nick = d.target(Kind::Nickname) / d.np.nick_share[usize::from(p.female)];
    if !nicks.is_empty() && d.hit_with(Kind::Nickname, p_nick) {
        nicks[d.rng.random_range(0..nicks.len())].clone_into(&mut forename);
    }
    let mut surname = base_surname(w, p, first_release, d);
    if d.hit(Kind::ForenameTypo) {
        forename = typo(&forename, d.rng);
    }
    if d.hit(Kind::SurnameTypo) {
        surname = typo(&surname, d.rng);
    }
    if d.hit(Kind::MiddleName) {
        let pool = w.forename_pool(p.female, p.dob);
        let middle = &pool.names[pool.pick(d.rng.random()) as usize];
        forename = format!("{forename} {middle}");
    }
    if d.hit(Kind::NameMissing) {
        if d.rng.random::<bool>() {
            forename.clear();
        } else {
            surname.clear();
        }
    }
    if d.np.heavy() && d.hit(Kind::NamesTransposed) {
        std::mem::swap(&mut forename, &mut surname);
    }
    (forename, surname)
}

/// The date of birth after noise; its kinds of noise exclude each other.
fn noisy_dob(p: &Person, d: &mut Draws) -> Dob {
    let born = date(p.dob);
    let mut dob = Dob {
        y: born.year(),
        m: born.month(),
        d: born.day(),
    };
    // A swap is only possible for some dates, so its probability is rescaled to meet the target
    // over all records.
    let swappable = dob.d <= 12 && dob.d != dob.m;
    let u_swap: f64 = d.rng.random();
    let u_dob: f64 = d.rng.random();
    let t_typo = d.target(Kind::DobTypo);
    let t_invalid = d.target(Kind::DobInvalid);
    let t_placeholder = d.target(Kind::DobPlaceholder);
    let kind = if swappable && u_swap < d.target(Kind::DobSwap) / SWAPPABLE_SHARE {
        std::mem::swap(&mut dob.d, &mut dob.m);
        Kind::DobSwap
    } else if u_dob < t_typo {
        dob = dob_typo(dob, d.rng);
        Kind::DobTypo
    } else if u_dob < t_typo + t_invalid {
        dob = if d.rng.random::<bool>() {
            Dob {
                y: dob.y,
                m: 2,
                d: d.rng.random_range(30..=31),
            }
        } else {
            Dob {
                y: dob.y,
                m: [4, 6, 9, 11][d.rng.random_range(0..4)],
                d: 31,
            }
        };
        Kind::DobInvalid
    } else if u_dob < t_typo + t_invalid + t_placeholder {
        dob = Dob { y: 1900, m: 1, d: 1 };
        Kind::DobPlaceholder
    } else {
        return dob;
    };
    d.counts.add(kind);
    dob
}

fn dob_typo(dob: Dob, rng: &mut ChaCha8Rng) -> Dob {
    if rng.random::<bool>() {
        let max = days_in_month(dob.y, dob.m);
        let d = if dob.d == max { dob.d - 1 } else { dob.d + 1 };
        Dob { d, ..dob }
    } else {
        let y = if rng.random::<bool>() {
            dob.y + 1
        } else {
            dob.y - 1
        };
        let d = dob.d.min(days_in_month(y, dob.m));
        Dob { y, d, ..dob }
    }
}

fn invalid_nino(nino: &[u8; 9], rng: &mut ChaCha8Rng) -> String {
    let mut bytes = nino.to_vec();
    match rng.random_range(0..3) {
        0 => bytes[..2].copy_from_slice(NINO_FORBIDDEN[rng.random_range(0..NINO_FORBIDDEN.len())]),
        1 => bytes[0] = b"DFIQUV"[rng.random_range(0..6)],
        _ => {
            bytes.remove(rng.random_range(2..8));
        }
    }
    String::from_utf8(bytes).expect("NINO bytes are ASCII")
}

/// Adds extra spaces to a name (before, after, or doubling an inner space).
pub fn extra_spaces(name: &str, rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..3) {
        0 => format!(" {name}"),
        1 => format!("{name}  "),
        _ if name.contains(' ') => name.replacen(' ', "   ", 1),
        _ => format!("  {name} "),
    }
}

/// Whether this record gets extra spaces (the caller applies them to one name).
pub fn wants_extra_spaces(
    level: NoiseLevel,
    extract: Extract,
    rng: &mut ChaCha8Rng,
    counts: &mut Counts,
) -> bool {
    let hit = rng.random::<f64>() < level.target(extract, Kind::ExtraSpaces);
    if hit {
        counts.add(Kind::ExtraSpaces);
    }
    hit
}

#[cfg(test)]
fn dob_of(d: crate::world::Day) -> Dob {
    let x = date(d);
    Dob {
        y: x.year(),
        m: x.month(),
        d: x.day(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{day, rng_for};

    #[test]
    fn typos_change_the_letters_but_keep_the_initial() {
        let mut rng = rng_for(1, 99, 0, 0);
        for name in ["Smith", "O'Brien", "Lee", "Zoë", "Ní Bhriain", "Al"] {
            for _ in 0..50 {
                let t = typo(name, &mut rng);
                let letters = |s: &str| -> String {
                    s.chars()
                        .filter(char::is_ascii_alphabetic)
                        .collect::<String>()
                        .to_uppercase()
                };
                assert_ne!(letters(&t), letters(name), "{name} -> {t}");
                assert_eq!(t.chars().next(), name.chars().next(), "{name} -> {t}");
            }
        }
    }

    #[test]
    fn dob_typos_are_valid_dates_that_differ() {
        let mut rng = rng_for(1, 98, 0, 0);
        for d in [day((1984, 2, 29)), day((1990, 12, 31)), day((2000, 1, 1))] {
            let dob = dob_of(d);
            for _ in 0..20 {
                let t = dob_typo(dob, &mut rng);
                assert_ne!(t, dob);
                assert!(t.d >= 1 && t.d <= days_in_month(t.y, t.m), "{t:?}");
            }
        }
    }

    #[test]
    fn invalid_ninos_break_the_rule() {
        let mut rng = rng_for(1, 97, 0, 0);
        for _ in 0..100 {
            let bad = invalid_nino(b"AB123456C", &mut rng);
            let b = bad.as_bytes();
            let forbidden = NINO_FORBIDDEN.iter().any(|f| b[..2] == f[..]);
            let bad_letter = b"DFIQUV".contains(&b[0]);
            let short = bad.len() == 8;
            assert!(forbidden || bad_letter || short, "{bad}");
        }
    }
}
