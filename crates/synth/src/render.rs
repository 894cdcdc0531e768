//! Rendering the rows of an extract: which records exist, in which order, and what each holds.

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::SynthError;
use crate::csv_out::{CsvSink, RowBuf, write_csv};
use crate::extract::Extract;
use crate::format::{Case, DateStyle, fmt_date, fmt_dob, iso, names, participant_nino, postcode, ymd};
use crate::noise::{self, Counts, NoiseLevel, NoiseParams, NoisyId};
use crate::pools;
use crate::truth::person_id;
use crate::world::{Day, Person, STREAM_NOISE, WorldParams, mix, rng_for};

/// One row to write: its sort key, its person and which of the person's events it is.
#[derive(Clone, Copy)]
struct RowRef {
    day: Day,
    tie: u64,
    person: u32,
    item: u16,
}

fn rows_of(w: &WorldParams, persons: &[Person], extract: Extract) -> Vec<RowRef> {
    let mut rows = Vec::new();
    let tag = extract as u64;
    let mut push = |day: Day, person: usize, item: usize| {
        rows.push(RowRef {
            day,
            tie: mix(&[w.seed, tag, person as u64, item as u64]),
            person: person as u32,
            item: item as u16,
        });
    };
    for (i, p) in persons.iter().enumerate() {
        match extract {
            Extract::Releases => {
                if let Some(s) = &p.spine {
                    for (k, r) in s.releases.iter().enumerate() {
                        push(r.date, i, k);
                    }
                }
            }
            Extract::Participants | Extract::Mentoring | Extract::Education | Extract::BootCamp => {
                if let Some(s) = p.spine.as_ref().filter(|s| s.programme == extract.programme()) {
                    push(s.programme_start, i, 0);
                }
            }
            Extract::Reoffences => {
                for (k, o) in p.offences.iter().enumerate() {
                    push(o.0, i, k);
                }
            }
            Extract::Employment => {
                for (k, s) in p.jobs.iter().enumerate() {
                    push(s.start, i, k);
                }
            }
            Extract::Benefits => {
                for (k, s) in p.benefits.iter().enumerate() {
                    push(s.start, i, k);
                }
            }
        }
    }
    rows.sort_unstable_by_key(|r| (r.day, r.tie, r.person, r.item));
    rows
}

fn header(extract: Extract) -> &'static [&'static str] {
    match extract {
        Extract::Releases => &[
            "record_id",
            "first_name",
            "last_name",
            "birth_date",
            "sex",
            "ni_number",
            "postcode",
            "release_date",
            "age_at_release",
            "prior_offences",
            "sentence_months",
            "offence_group",
        ],
        // Every programme keeps its list the same way.
        Extract::Participants | Extract::Mentoring | Extract::Education | Extract::BootCamp => &[
            "record_id",
            "Forename",
            "Surname",
            "DOB",
            "Gender",
            "NINO",
            "Postcode",
            "programme_start",
        ],
        Extract::Reoffences => &[
            "record_id",
            "forename",
            "surname",
            "date_of_birth",
            "sex",
            "nino",
            "offence_date",
            "offence_type",
        ],
        Extract::Employment => &[
            "record_id",
            "FORENAME",
            "SURNAME",
            "DOB",
            "SEX",
            "NINO",
            "start_date",
            "end_date",
            "employer_sector",
        ],
        Extract::Benefits => &[
            "record_id",
            "forename",
            "surname",
            "dob",
            "sex",
            "nino",
            "benefit_type",
            "start_date",
            "end_date",
        ],
    }
}

/// What rendering the rows of one extract needs.
#[derive(Clone, Copy)]
struct RenderCtx<'a> {
    w: &'a WorldParams,
    np: &'a NoiseParams,
    persons: &'a [Person],
    extract: Extract,
    path: &'a Path,
    truth_path: &'a Path,
}

/// The fields after `record_id` of a row of a programme's participant list (`extract`).
fn render_participant(
    csv: &mut RowBuf,
    person: &Person,
    id: &NoisyId,
    level: NoiseLevel,
    extract: Extract,
    rng: &mut ChaCha8Rng,
    counts: &mut Counts,
) {
    let spine = person.spine.as_ref().expect("participants are spine persons");
    let (forename, surname) = names(id, level, extract, Case::Mixed, rng, counts);
    csv.field(&forename);
    csv.field(&surname);
    csv.plain(format_args!("{}", fmt_dob(DateStyle::DayMonthYear, id.dob)));
    let gender = match (id.female, rng.random_range(0..4)) {
        (None, _) => "",
        (Some(true), 0) => "f",
        (Some(true), _) => "Female",
        (Some(false), 0) => "m",
        (Some(false), _) => "Male",
    };
    csv.plain(format_args!("{gender}"));
    let nino = id
        .nino
        .as_deref()
        .map(|n| participant_nino(n, rng))
        .unwrap_or_default();
    csv.field(&nino);
    csv.field(&postcode(person, Some(rng)));
    let (y, m, d) = ymd(spine.programme_start);
    csv.plain(format_args!("{}", fmt_date(DateStyle::DayMonthYear, y, m, d)));
}

/// Renders rows `chunk` of an extract (the first being data row `start + 1`) with their lines of
/// `truth/records.csv` and the noise they carry.
fn render_chunk(
    ctx: &RenderCtx<'_>,
    start: usize,
    chunk: &[RowRef],
) -> Result<(RowBuf, RowBuf, Counts), SynthError> {
    let RenderCtx {
        w,
        np,
        persons,
        extract,
        path,
        truth_path,
    } = *ctx;
    let mut csv = RowBuf::new(path, extract == Extract::Employment, start as u64);
    let mut truth = RowBuf::new(truth_path, false, 0);
    let mut counts = Counts::default();
    let stream = STREAM_NOISE + extract as u64;
    for (local, row) in chunk.iter().enumerate() {
        let row_number = start + local;
        let person = &persons[row.person as usize];
        let item = row.item as usize;
        let mut rng = rng_for(w.seed, stream, u64::from(row.person), item as u64);
        let first_release = extract == Extract::Releases && item == 0;
        let id = noise::noisy_id(w, np, person, extract, first_release, &mut rng, &mut counts);
        let record_id = format!("{}{:07}", extract.id_prefix(), row_number + 1);
        csv.field(&record_id);
        let nino = id.nino.clone().unwrap_or_default();
        let mf = |female: Option<bool>| match female {
            Some(true) => "F",
            Some(false) => "M",
            None => "",
        };
        match extract {
            Extract::Releases => {
                let spine = person
                    .spine
                    .as_ref()
                    .expect("releases rows come from spine persons");
                let release = &spine.releases[item];
                let (forename, surname) = names(&id, np.level(), extract, Case::AsIs, &mut rng, &mut counts);
                csv.field(&forename);
                csv.field(&surname);
                csv.plain(format_args!("{}", fmt_dob(DateStyle::Iso, id.dob)));
                csv.plain(format_args!("{}", mf(id.female)));
                csv.field(&nino);
                csv.field(&postcode(person, None));
                csv.plain(format_args!("{}", iso(release.date)));
                csv.plain(format_args!("{}", release.age));
                csv.plain(format_args!("{}", release.prior_offences));
                csv.plain(format_args!("{}", release.sentence_months));
                csv.plain(format_args!(
                    "{}",
                    pools::OFFENCE_GROUPS[release.offence_group as usize].0
                ));
            }
            Extract::Participants | Extract::Mentoring | Extract::Education | Extract::BootCamp => {
                render_participant(&mut csv, person, &id, np.level(), extract, &mut rng, &mut counts);
            }
            Extract::Reoffences => {
                let (when, kind) = person.offences[item];
                let (forename, surname) = names(&id, np.level(), extract, Case::Upper, &mut rng, &mut counts);
                csv.field(&forename);
                csv.field(&surname);
                csv.plain(format_args!("{}", fmt_dob(DateStyle::Compact, id.dob)));
                let sex = match id.female {
                    Some(true) => "2",
                    Some(false) => "1",
                    None => "",
                };
                csv.plain(format_args!("{sex}"));
                csv.field(&nino);
                csv.plain(format_args!("{}", iso(when)));
                csv.plain(format_args!("{}", pools::OFFENCE_TYPES[kind as usize]));
            }
            Extract::Employment => {
                let spell = person.jobs[item];
                let (forename, surname) = names(&id, np.level(), extract, Case::AsIs, &mut rng, &mut counts);
                csv.field(&forename);
                csv.field(&surname);
                csv.plain(format_args!("{}", fmt_dob(DateStyle::Iso, id.dob)));
                csv.plain(format_args!("{}", mf(id.female)));
                // Some employers report the NINO without its suffix letter.
                let nino = if nino.len() == 9 && rng.random_range(0..8) == 0 {
                    nino[..8].to_owned()
                } else {
                    nino
                };
                csv.field(&nino);
                csv.plain(format_args!("{}", iso(spell.start)));
                csv.plain(format_args!("{}", spell.end.map(iso).unwrap_or_default()));
                csv.plain(format_args!("{}", pools::SECTORS[spell.kind as usize]));
            }
            Extract::Benefits => {
                let spell = person.benefits[item];
                let (forename, surname) = names(&id, np.level(), extract, Case::Upper, &mut rng, &mut counts);
                csv.field(&forename);
                csv.field(&surname);
                csv.plain(format_args!("{}", fmt_dob(DateStyle::Iso, id.dob)));
                csv.plain(format_args!("{}", mf(id.female)));
                csv.field(&nino);
                csv.plain(format_args!("{}", pools::BENEFIT_TYPES[spell.kind as usize]));
                csv.plain(format_args!("{}", iso(spell.start)));
                csv.plain(format_args!("{}", spell.end.map(iso).unwrap_or_default()));
            }
        }
        csv.finish_line()?;
        truth.plain(format_args!("{}", extract.name()));
        truth.plain(format_args!("{record_id}"));
        truth.plain(format_args!("{}", person_id(row.person as usize)));
        truth.finish_line()?;
    }
    Ok((csv, truth, counts))
}

/// Rows rendered per parallel task.
const CHUNK: usize = 8192;

/// Writes one extract and appends its lines to `truth/records.csv`.
pub(crate) fn write_extract(
    w: &WorldParams,
    np: &NoiseParams,
    persons: &[Person],
    extract: Extract,
    out_dir: &Path,
    truth: &mut CsvSink<'_>,
) -> Result<(u64, Counts), SynthError> {
    let path = out_dir.join(format!("{}.csv", extract.name()));
    let truth_path = truth.path().to_path_buf();
    let rows = rows_of(w, persons, extract);
    let ctx = RenderCtx {
        w,
        np,
        persons,
        extract,
        path: &path,
        truth_path: &truth_path,
    };
    let (mut counts, written) = write_csv(&path, header(extract), extract == Extract::Employment, |csv| {
        let mut counts = Counts::default();
        // Rows are rendered in parallel, a batch at a time, and written in order: each record's
        // noise comes from its own stream, so the bytes do not depend on the number of threads.
        for (b, batch) in rows.chunks(CHUNK * 32).enumerate() {
            let parts: Vec<Result<(RowBuf, RowBuf, Counts), SynthError>> = batch
                .par_chunks(CHUNK)
                .enumerate()
                .map(|(c, chunk)| {
                    let start = b * CHUNK * 32 + c * CHUNK;
                    render_chunk(&ctx, start, chunk)
                })
                .collect();
            for part in parts {
                let (rendered, truth_rows, part_counts) = part?;
                csv.append(&rendered)?;
                truth.append(&truth_rows)?;
                counts.merge(&part_counts);
            }
        }
        Ok(counts)
    })?;
    counts.rows = rows.len() as u64;
    Ok((written, counts))
}
