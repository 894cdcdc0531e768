//! How often true identities coincide: the (forename, surname, date of birth, sex) combinations
//! that two or more different people share. At scale these make a name-and-birth-date match
//! ambiguous, as in real data; `docs/synth.md` reports the counts at 20,000 and 2,000,000 people.

use rayon::prelude::*;
use serde::Serialize;

use crate::SynthConfig;
use crate::people::person;
use crate::world::WorldParams;

/// Shared identities in a synthetic world (all people: the spine and the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Collisions {
    /// People in the world.
    pub persons: u64,
    /// Distinct (forename, surname, date of birth, sex) combinations held by at least two people.
    pub shared_combinations: u64,
    /// People whose combination someone else also has.
    pub persons_sharing: u64,
}

/// Counts the shared true identities of the world that `cfg` describes (nothing is written).
pub fn collisions(cfg: &SynthConfig) -> Collisions {
    let w = WorldParams::new(cfg.seed, cfg.people, cfg.noise);
    let total = cfg.people + w.others();
    let mut keys: Vec<u128> = (0..total)
        .into_par_iter()
        .map(|i| {
            let p = person(&w, i);
            let barrel = p.second_barrel.map_or(0, |b| u128::from(b) + 1);
            u128::from(p.female)
                | u128::from(p.forename) << 1
                | u128::from(p.surname) << 17
                | barrel << 33
                | u128::from(p.dob.unsigned_abs()) << 50
        })
        .collect();
    keys.par_sort_unstable();
    let mut shared_combinations = 0;
    let mut persons_sharing = 0;
    for run in keys.chunk_by(|a, b| a == b).filter(|run| run.len() > 1) {
        shared_combinations += 1;
        persons_sharing += run.len() as u64;
    }
    Collisions {
        persons: total,
        shared_combinations,
        persons_sharing,
    }
}
