//! Synthetic department extracts with ground truth.
//!
//! [`generate`] builds a world of released prisoners (the spine) and other people, and writes what
//! four departments and four programmes would hold about them as CSV, with realistic identifier
//! noise, plus the truth (who every record really is, the true programme effects and the realised
//! noise) under `truth/`. The four programmes ([`PROGRAMMES`], each a participant list) are built
//! to show four verdicts: one works, one has no effect, one is too small to tell, one harms.
//! The same seed and size always give byte-identical files: every person and every record draws
//! from its own `ChaCha8` stream derived from (seed, person, record), whatever the thread count.
#![forbid(unsafe_code)]

//
// The modules, in the order the data flows:
// - `pools`: the name lists (data files), nicknames, postcodes and categories;
// - `births`: ages and dates of birth;
// - `world`: the true people (identities, dates, random streams) and `outcomes`, what happens
//   to them with and without each programme (`programmes`: who joins which, and its design);
// - `extract`, `noise`: the eight extracts and the identifier noise each one carries;
// - `format`, `render`: how each department writes its rows;
// - `csv_out`: CSV files written atomically through `linklab_store`;
// - `truth`: the ground truth files;
// - `collisions`: a diagnostic of how often true identities coincide.

mod births;
mod collisions;
mod csv_out;
mod extract;
mod format;
mod noise;
mod outcomes;
mod people;
mod pools;
mod programmes;
mod render;
mod truth;
mod world;

use std::io;
use std::path::PathBuf;

use linklab_store::{StoreError, write_json_atomic};
use rayon::prelude::*;
use serde::Serialize;
use tracing::info;

pub use collisions::{Collisions, collisions};
use csv_out::write_csv;
use extract::Extract;
pub use noise::NoiseLevel;
use noise::NoiseParams;
use world::{Person, WorldParams};

/// What to generate and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Number of released prisoners (spine persons). About 30% as many other people are added.
    pub people: u64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Folder for the extracts; the truth goes into its `truth/` subfolder.
    pub out_dir: PathBuf,
    /// How much identifier noise the extracts carry.
    pub noise: NoiseLevel,
}

impl SynthConfig {
    /// Default size (20,000 people), seed (42) and noise (standard), writing into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> SynthConfig {
        SynthConfig {
            people: 20_000,
            seed: 42,
            out_dir: out_dir.into(),
            noise: NoiseLevel::Standard,
        }
    }
}

/// The file stems of the four programmes' participant lists (`<stem>.csv`), in the order of
/// `truth/programmes.json` and [`SynthSummary::programmes`]: the original resettlement programme
/// (works), mentoring (no effect), a small education programme (too small to tell) and a boot
/// camp (harms). A person takes part in at most one.
pub const PROGRAMMES: [&str; 4] = ["participants", "mentoring", "education", "bootcamp"];

/// Largest supported number of spine persons.
pub const MAX_PEOPLE: u64 = 100_000_000;

/// One file written by [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenFile {
    /// Path relative to the output folder, with `/` separators (e.g. `truth/records.csv`).
    pub path: String,
    /// Data rows (CSV files, header excluded); 0 for JSON files.
    pub rows: u64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynthSummary {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Spine persons.
    pub people: u64,
    /// Other people (not in the spine).
    pub other_people: u64,
    /// Persons who took part in the original programme (`participants.csv`).
    pub treated: u64,
    /// Every programme's participants, in the order of [`PROGRAMMES`].
    pub programmes: Vec<ProgrammeCount>,
    /// The seed.
    pub seed: u64,
    /// Files written, in writing order.
    pub files: Vec<WrittenFile>,
}

/// How many true persons took part in one programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgrammeCount {
    /// The file stem of its participant list (one of [`PROGRAMMES`]).
    pub extract: String,
    /// True persons who took part.
    pub participants: u64,
}

/// Errors of [`generate`].
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The configuration cannot be generated.
    #[error("invalid synth config: {reason}")]
    Config {
        /// Why.
        reason: String,
    },
    /// Writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A row holds a character that Windows-1252 cannot encode (a bug in the name pools).
    #[error("row {row} of {} cannot be encoded as windows-1252", path.display())]
    Unencodable {
        /// The file.
        path: PathBuf,
        /// Data row number (1-based, header excluded).
        row: u64,
    },
    /// Creating, writing or renaming a file into place failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Generates the extracts and the truth into `cfg.out_dir` (created if missing).
///
/// Files: `releases.csv`, `participants.csv`, `reoffences.csv`, `employment.csv` (Windows-1252),
/// `benefits.csv`, `mentoring.csv`, `education.csv`, `bootcamp.csv`, and `truth/records.csv`,
/// `truth/persons.csv`, `truth/effects.json`, `truth/programmes.json`, `truth/noise.json`. Each
/// is written under a temporary name and renamed when complete.
pub fn generate(cfg: &SynthConfig) -> Result<SynthSummary, SynthError> {
    if cfg.people == 0 || cfg.people > MAX_PEOPLE {
        return Err(SynthError::Config {
            reason: format!("people must be between 1 and {MAX_PEOPLE}"),
        });
    }
    let truth_dir = cfg.out_dir.join("truth");

    let w = WorldParams::new(cfg.seed, cfg.people, cfg.noise);
    let total = cfg.people + w.others();
    let persons: Vec<Person> = (0..total)
        .into_par_iter()
        .map(|i| people::person(&w, i))
        .collect();
    info!(people = cfg.people, others = w.others(), "synthetic world built");

    let np = NoiseParams::new(&w, cfg.noise);
    let mut files = Vec::new();
    let records_header = ["extract", "record_id", "person"];
    let (all_counts, rows) = write_csv(&truth_dir.join("records.csv"), &records_header, false, |truth| {
        let mut all_counts = Vec::new();
        for extract in Extract::ALL {
            let (rows, counts) = render::write_extract(&w, &np, &persons, extract, &cfg.out_dir, truth)?;
            info!(extract = extract.name(), rows, "extract written");
            files.push(WrittenFile {
                path: format!("{}.csv", extract.name()),
                rows,
            });
            all_counts.push((extract, counts));
        }
        Ok(all_counts)
    })?;
    files.push(WrittenFile {
        path: "truth/records.csv".to_owned(),
        rows,
    });
    let rows = truth::write_persons(&persons, &truth_dir.join("persons.csv"))?;
    files.push(WrittenFile {
        path: "truth/persons.csv".to_owned(),
        rows,
    });
    let eff = truth::effects(&w, &persons);
    write_json_atomic(&truth_dir.join("effects.json"), &eff)?;
    files.push(WrittenFile {
        path: "truth/effects.json".to_owned(),
        rows: 0,
    });
    let programmes = truth::programmes(&persons);
    write_json_atomic(&truth_dir.join("programmes.json"), &programmes)?;
    files.push(WrittenFile {
        path: "truth/programmes.json".to_owned(),
        rows: 0,
    });
    write_json_atomic(
        &truth_dir.join("noise.json"),
        &noise::report(cfg.noise, &all_counts),
    )?;
    files.push(WrittenFile {
        path: "truth/noise.json".to_owned(),
        rows: 0,
    });
    info!(files = files.len(), "synthetic extracts written");
    Ok(SynthSummary {
        out_dir: cfg.out_dir.clone(),
        people: cfg.people,
        other_people: w.others(),
        treated: eff.treated_persons,
        programmes: PROGRAMMES
            .iter()
            .zip(&programmes)
            .map(|(extract, p)| ProgrammeCount {
                extract: (*extract).to_owned(),
                participants: p.participants,
            })
            .collect(),
        seed: cfg.seed,
        files,
    })
}
