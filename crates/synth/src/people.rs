//! Building one person of the world: an identity from its own random stream (so relatives can
//! look it up), then the person's life from the outcomes stream.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::births;
use crate::noise::{DOUBLE_BARRELLED_SHARE, NoiseLevel};
use crate::outcomes::{other_person, spine_person};
use crate::pools;
use crate::world::{
    Day, Person, STREAM_HEAVY, STREAM_IDENTITY, STREAM_OUTCOMES, STREAM_PROGRAMMES, WorldParams, day, rng_for,
};

/// Identity of one person, from the identity stream only (so relatives can look it up).
struct Identity {
    female: bool,
    forename: u16,
    surname: u16,
    alt_surname: u16,
    second_barrel: Option<u16>,
    dob: Day,
    postcode: (u8, u8, u8, u8, u8),
    nino_suffix: u8,
    /// For spine persons: first release date and age.
    release: Option<(Day, u8)>,
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
    let u_forename: f64 = rng.random();
    let surname = w.surnames.pick(rng.random());
    let alt_surname = w.surnames.pick(rng.random());
    let postcode = postcode(&mut rng);
    let nino_suffix = rng.random_range(0..4u8);
    let age = births::age(&mut rng);
    let (anchor, release) = if spine {
        let r = rng.random_range(w.release_start..=w.release_end);
        (r, Some((r, age as u8)))
    } else {
        (day((2023, 1, 1)), None)
    };
    let dob = births::date_of_birth(&mut rng, anchor, age);
    // The forename is drawn from the ranking of the person's birth cohort.
    let forename = w.forename_pool(female, dob).pick(u_forename);
    Identity {
        female,
        forename,
        surname,
        alt_surname,
        second_barrel: second_barrel(w, index, surname),
        dob,
        postcode,
        nino_suffix,
        release,
    }
}

/// In the heavy world, the second part of a double-barrelled surname for
/// `DOUBLE_BARRELLED_SHARE` of people, from a stream of its own (so the standard world's draws
/// are untouched).
fn second_barrel(w: &WorldParams, index: u64, surname: u16) -> Option<u16> {
    if w.level != NoiseLevel::Heavy {
        return None;
    }
    let mut rng = rng_for(w.seed, STREAM_HEAVY, index, 0);
    if rng.random::<f64>() >= DOUBLE_BARRELLED_SHARE {
        return None;
    }
    let second = w.surnames.pick(rng.random());
    (second != surname).then_some(second)
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
        second_barrel: id.second_barrel,
        dob: id.dob,
        nino: w.nino(index, id.nino_suffix),
        postcode: id.postcode,
        spine: None,
        offences: Vec::new(),
        jobs: Vec::new(),
        benefits: Vec::new(),
    };
    match id.release {
        Some((release, age)) => {
            let mut programme_rng = rng_for(w.seed, STREAM_PROGRAMMES, index, 0);
            spine_person(w, &mut rng, &mut programme_rng, &mut p, release, age);
        }
        None => other_person(w, &mut rng, &mut p),
    }
    p
}
