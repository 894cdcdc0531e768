//! Synthetic department extracts with ground truth.
//!
//! [`generate`] builds a world of released prisoners (the spine) and other people, and writes what
//! five departments would hold about them as CSV, with realistic identifier noise, plus the truth
//! (who every record really is, the true programme effects and the realised noise) under `truth/`.
//! The same seed and size always give byte-identical files: every person and every record draws
//! from its own `ChaCha8` stream derived from (seed, person, record), whatever the thread count.
#![forbid(unsafe_code)]

mod noise;
mod pools;
mod world;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::Datelike;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use tracing::info;

use noise::{Counts, Dob, Extract, NoiseParams, NoisyId};
use world::{Day, OUTCOMES, Person, STREAM_NOISE, WINDOW_DAYS, WorldParams, date, mix, rng_for};

/// What to generate and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    /// Number of released prisoners (spine persons). About 30% as many other people are added.
    pub people: u64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Folder for the extracts; the truth goes into its `truth/` subfolder.
    pub out_dir: PathBuf,
}

impl SynthConfig {
    /// Default size (20,000 people) and seed (42), writing into `out_dir`.
    pub fn new(out_dir: impl Into<PathBuf>) -> SynthConfig {
        SynthConfig {
            people: 20_000,
            seed: 42,
            out_dir: out_dir.into(),
        }
    }
}

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
    /// Persons who took part in the programme.
    pub treated: u64,
    /// The seed.
    pub seed: u64,
    /// Files written, in writing order.
    pub files: Vec<WrittenFile>,
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
    /// Serialising a JSON truth file failed.
    #[error("cannot serialise {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// CSV rows being built in memory: fields are appended to `line`, and each finished row is
/// encoded into `bytes`.
struct RowBuf {
    path: PathBuf,
    line: String,
    bytes: Vec<u8>,
    windows_1252: bool,
    /// Data rows before this buffer's first row (for error messages).
    offset: u64,
    rows: u64,
}

impl RowBuf {
    fn new(path: &Path, windows_1252: bool, offset: u64) -> RowBuf {
        RowBuf {
            path: path.to_path_buf(),
            line: String::with_capacity(256),
            bytes: Vec::new(),
            windows_1252,
            offset,
            rows: 0,
        }
    }

    /// Appends a field, quoted only when it holds a comma, a quote or a line break.
    fn field(&mut self, value: &str) {
        if !self.line.is_empty() {
            self.line.push(',');
        }
        if value.contains([',', '"', '\n', '\r']) {
            self.line.push('"');
            self.line.push_str(&value.replace('"', "\"\""));
            self.line.push('"');
        } else {
            self.line.push_str(value);
        }
    }

    /// Appends a field that never needs quoting (numbers, dates, codes).
    fn plain(&mut self, value: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        if !self.line.is_empty() {
            self.line.push(',');
        }
        self.line
            .write_fmt(value)
            .expect("writing to a String cannot fail");
    }

    fn finish_line(&mut self) -> Result<(), SynthError> {
        self.line.push('\n');
        self.rows += 1;
        if self.windows_1252 {
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&self.line);
            if unmappable {
                return Err(SynthError::Unencodable {
                    path: self.path.clone(),
                    row: self.offset + self.rows,
                });
            }
            self.bytes.extend_from_slice(&bytes);
        } else {
            self.bytes.extend_from_slice(self.line.as_bytes());
        }
        self.line.clear();
        Ok(())
    }
}

/// A CSV file written to a temporary name in its folder and renamed into place when finished.
struct CsvOut {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    buf: RowBuf,
    rows: u64,
    guard: TmpGuard,
}

/// Removes an unfinished temporary file when a write fails part-way.
struct TmpGuard {
    tmp: Option<PathBuf>,
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // Best effort: the write has already failed and its error is what the caller sees.
            let _ = fs::remove_file(tmp);
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Renames a finished temporary file into place.
fn commit(tmp: &Path, path: &Path) -> Result<(), SynthError> {
    fs::rename(tmp, path).map_err(io_err(path))
}

impl CsvOut {
    fn create(path: PathBuf, header: &[&str], windows_1252: bool) -> Result<CsvOut, SynthError> {
        let tmp = tmp_path(&path);
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let mut csv = CsvOut {
            buf: RowBuf::new(&path, windows_1252, 0),
            path,
            guard: TmpGuard {
                tmp: Some(tmp.clone()),
            },
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            rows: 0,
        };
        for h in header {
            csv.buf.field(h);
        }
        csv.buf.finish_line()?;
        csv.buf.rows = 0;
        csv.flush_buf()?;
        Ok(csv)
    }

    fn flush_buf(&mut self) -> Result<(), SynthError> {
        self.out.write_all(&self.buf.bytes).map_err(io_err(&self.tmp))?;
        self.buf.bytes.clear();
        Ok(())
    }

    fn plain(&mut self, value: std::fmt::Arguments<'_>) {
        self.buf.plain(value);
    }

    fn finish_line(&mut self) -> Result<(), SynthError> {
        self.buf.finish_line()?;
        self.rows += 1;
        if self.buf.bytes.len() >= 1 << 16 {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Appends rows built elsewhere.
    fn append(&mut self, rows: &RowBuf) -> Result<(), SynthError> {
        self.flush_buf()?;
        self.out.write_all(&rows.bytes).map_err(io_err(&self.tmp))?;
        self.rows += rows.rows;
        Ok(())
    }

    fn close(mut self) -> Result<u64, SynthError> {
        self.flush_buf()?;
        let file = self.out.into_inner().map_err(|e| SynthError::Io {
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err(&self.tmp))?;
        commit(&self.tmp, &self.path)?;
        self.guard.tmp = None;
        Ok(self.rows)
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), SynthError> {
    let tmp = tmp_path(path);
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    commit(&tmp, path)
}

fn ymd(d: Day) -> (i32, u32, u32) {
    let x = date(d);
    (x.year(), x.month(), x.day())
}

fn iso(d: Day) -> String {
    let (y, m, dd) = ymd(d);
    format!("{y:04}-{m:02}-{dd:02}")
}

/// How an extract writes dates of birth.
#[derive(Clone, Copy)]
enum DateStyle {
    Iso,
    DayMonthYear,
    Compact,
}

fn fmt_date(style: DateStyle, y: i32, m: u32, d: u32) -> String {
    match style {
        DateStyle::Iso => format!("{y:04}-{m:02}-{d:02}"),
        DateStyle::DayMonthYear => format!("{d:02}/{m:02}/{y:04}"),
        DateStyle::Compact => format!("{y:04}{m:02}{d:02}"),
    }
}

fn fmt_dob(style: DateStyle, dob: Dob) -> String {
    fmt_date(style, dob.y, dob.m, dob.d)
}

fn postcode(p: &Person, rng: Option<&mut ChaCha8Rng>) -> String {
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
enum Case {
    AsIs,
    Upper,
    /// Chosen per field: as typed, lower or upper case.
    Mixed,
}

fn cased(name: &str, case: Case, rng: &mut ChaCha8Rng) -> String {
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
fn names(
    id: &NoisyId,
    extract: Extract,
    case: Case,
    rng: &mut ChaCha8Rng,
    counts: &mut Counts,
) -> (String, String) {
    let mut forename = cased(&id.forename, case, rng);
    let mut surname = cased(&id.surname, case, rng);
    if noise::wants_extra_spaces(extract, rng, counts) {
        if rng.random::<bool>() {
            forename = noise::extra_spaces(&forename, rng);
        } else {
            surname = noise::extra_spaces(&surname, rng);
        }
    }
    (forename, surname)
}

fn participant_nino(nino: &str, rng: &mut ChaCha8Rng) -> String {
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
            Extract::Participants => {
                if let Some(s) = p.spine.as_ref().filter(|s| s.treated) {
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
        Extract::Participants => &[
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

fn person_id(index: usize) -> String {
    format!("P{:08}", index + 1)
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

/// The fields after `record_id` of a row of the participants extract.
fn render_participant(
    csv: &mut RowBuf,
    person: &Person,
    id: &NoisyId,
    rng: &mut ChaCha8Rng,
    counts: &mut Counts,
) {
    let spine = person.spine.as_ref().expect("participants are spine persons");
    let (forename, surname) = names(id, Extract::Participants, Case::Mixed, rng, counts);
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
                let (forename, surname) = names(&id, extract, Case::AsIs, &mut rng, &mut counts);
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
            Extract::Participants => render_participant(&mut csv, person, &id, &mut rng, &mut counts),
            Extract::Reoffences => {
                let (when, kind) = person.offences[item];
                let (forename, surname) = names(&id, extract, Case::Upper, &mut rng, &mut counts);
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
                let (forename, surname) = names(&id, extract, Case::AsIs, &mut rng, &mut counts);
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
                let (forename, surname) = names(&id, extract, Case::Upper, &mut rng, &mut counts);
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

/// Writes one extract and its lines of `truth/records.csv`.
fn write_extract(
    w: &WorldParams,
    np: &NoiseParams,
    persons: &[Person],
    extract: Extract,
    out_dir: &Path,
    truth: &mut CsvOut,
) -> Result<(u64, Counts), SynthError> {
    let path = out_dir.join(format!("{}.csv", extract.name()));
    let mut csv = CsvOut::create(path.clone(), header(extract), extract == Extract::Employment)?;
    let mut counts = Counts::default();
    let rows = rows_of(w, persons, extract);
    let ctx = RenderCtx {
        w,
        np,
        persons,
        extract,
        path: &path,
        truth_path: &truth.path.clone(),
    };
    // Rows are rendered in parallel, a batch at a time, and written in order: each record's noise
    // comes from its own stream, so the bytes do not depend on the number of threads.
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
    counts.rows = rows.len() as u64;
    let written = csv.close()?;
    Ok((written, counts))
}

fn write_persons(persons: &[Person], path: PathBuf) -> Result<u64, SynthError> {
    let mut csv = CsvOut::create(
        path,
        &[
            "person",
            "in_spine",
            "treated",
            "age_at_release",
            "sex",
            "prior_offences",
            "sentence_months",
            "offence_group",
            "first_release_date",
        ],
        false,
    )?;
    for (i, p) in persons.iter().enumerate() {
        csv.plain(format_args!("{}", person_id(i)));
        let sex = if p.female { "F" } else { "M" };
        match &p.spine {
            Some(s) => {
                let r = &s.releases[0];
                csv.plain(format_args!("true"));
                csv.plain(format_args!("{}", s.treated));
                csv.plain(format_args!("{}", r.age));
                csv.plain(format_args!("{sex}"));
                csv.plain(format_args!("{}", r.prior_offences));
                csv.plain(format_args!("{}", r.sentence_months));
                csv.plain(format_args!(
                    "{}",
                    pools::OFFENCE_GROUPS[r.offence_group as usize].0
                ));
                csv.plain(format_args!("{}", iso(r.date)));
            }
            None => {
                csv.plain(format_args!("false,false,,{sex},,,,"));
            }
        }
        csv.finish_line()?;
    }
    csv.close()
}

/// The true effect of the programme on one outcome.
#[derive(Debug, Serialize)]
struct Effect {
    /// Mean over treated persons of (outcome with programme - outcome without): the true ATT.
    att: f64,
    /// Mean outcome of treated persons with the programme (what is observed).
    treated_mean_with: f64,
    /// Mean outcome of treated persons had they not taken part (the counterfactual).
    treated_mean_without: f64,
    /// Mean outcome of untreated spine persons (what is observed).
    untreated_mean: f64,
    /// Observed treated mean minus untreated mean.
    naive_difference: f64,
    /// `naive_difference - att`: the selection bias of a naive comparison.
    naive_bias: f64,
    /// Mean over all spine persons of the individual effect (ATE).
    ate: f64,
    /// How the effect was built into the simulation.
    design: &'static str,
}

#[derive(Debug, Serialize)]
struct Effects {
    spine_persons: u64,
    treated_persons: u64,
    index_date: &'static str,
    window: Window,
    release_dates: [String; 2],
    extract_date: String,
    outcomes: std::collections::BTreeMap<&'static str, Effect>,
}

#[derive(Debug, Serialize)]
struct Window {
    description: &'static str,
    start_offset_days_exclusive: i32,
    end_offset_days_inclusive: i32,
}

fn effects(w: &WorldParams, persons: &[Person]) -> Effects {
    let mut n_t = 0u64;
    let mut n_c = 0u64;
    let mut sum_y1_t = [0.0; 4];
    let mut sum_y0_t = [0.0; 4];
    let mut sum_c = [0.0; 4];
    let mut sum_diff_all = [0.0; 4];
    for s in persons.iter().filter_map(|p| p.spine.as_ref()) {
        for k in 0..4 {
            sum_diff_all[k] += s.y1[k] - s.y0[k];
            if s.treated {
                sum_y1_t[k] += s.y1[k];
                sum_y0_t[k] += s.y0[k];
            } else {
                sum_c[k] += s.y0[k];
            }
        }
        if s.treated {
            n_t += 1;
        } else {
            n_c += 1;
        }
    }
    let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
    let designs = [
        "reoffending probability -0.06 (floored at 0) for the same draws",
        "employment probability +0.08 (capped at 0.98) for the same draws",
        "follows the employment effect; the first job also starts 45 days earlier",
        "claim probability -0.05 and claim length x0.75; a claim also ends when a job starts",
    ];
    let mut outcomes = std::collections::BTreeMap::new();
    for k in 0..4 {
        let with = mean(sum_y1_t[k], n_t);
        let without = mean(sum_y0_t[k], n_t);
        let untreated = mean(sum_c[k], n_c);
        let att = with - without;
        outcomes.insert(
            OUTCOMES[k],
            Effect {
                att,
                treated_mean_with: with,
                treated_mean_without: without,
                untreated_mean: untreated,
                naive_difference: with - untreated,
                naive_bias: with - untreated - att,
                ate: mean(sum_diff_all[k], n_t + n_c),
                design: designs[k],
            },
        );
    }
    Effects {
        spine_persons: w.people,
        treated_persons: n_t,
        index_date: "the person's first release_date in releases.csv",
        window: Window {
            description: "(index, index + 365 days]; spells are inclusive of both ends and an \
                          empty end_date means still open; days are counted with overlaps merged; \
                          days_on_benefit counts JSA, ESA and UC_SEARCHING only",
            start_offset_days_exclusive: 0,
            end_offset_days_inclusive: WINDOW_DAYS,
        },
        release_dates: [
            iso(world::day(world::RELEASE_START)),
            iso(world::day(world::RELEASE_END)),
        ],
        extract_date: iso(w.extract_end()),
        outcomes,
    }
}

/// Generates the extracts and the truth into `cfg.out_dir` (created if missing).
///
/// Files: `releases.csv`, `participants.csv`, `reoffences.csv`, `employment.csv` (Windows-1252),
/// `benefits.csv`, and `truth/records.csv`, `truth/persons.csv`, `truth/effects.json`,
/// `truth/noise.json`. Each is written under a temporary name and renamed when complete.
pub fn generate(cfg: &SynthConfig) -> Result<SynthSummary, SynthError> {
    if cfg.people == 0 || cfg.people > MAX_PEOPLE {
        return Err(SynthError::Config {
            reason: format!("people must be between 1 and {MAX_PEOPLE}"),
        });
    }
    let truth_dir = cfg.out_dir.join("truth");
    fs::create_dir_all(&truth_dir).map_err(io_err(&truth_dir))?;

    let w = WorldParams::new(cfg.seed, cfg.people);
    let total = cfg.people + w.others();
    let persons: Vec<Person> = (0..total).into_par_iter().map(|i| world::person(&w, i)).collect();
    info!(people = cfg.people, others = w.others(), "synthetic world built");

    let np = NoiseParams::new(&w);
    let mut files = Vec::new();
    let records_path = truth_dir.join("records.csv");
    let mut truth = CsvOut::create(records_path, &["extract", "record_id", "person"], false)?;
    let mut all_counts = Vec::new();
    for extract in Extract::ALL {
        let (rows, counts) = write_extract(&w, &np, &persons, extract, &cfg.out_dir, &mut truth)?;
        info!(extract = extract.name(), rows, "extract written");
        files.push(WrittenFile {
            path: format!("{}.csv", extract.name()),
            rows,
        });
        all_counts.push((extract, counts));
    }
    let rows = truth.close()?;
    files.push(WrittenFile {
        path: "truth/records.csv".to_owned(),
        rows,
    });
    let rows = write_persons(&persons, truth_dir.join("persons.csv"))?;
    files.push(WrittenFile {
        path: "truth/persons.csv".to_owned(),
        rows,
    });
    let eff = effects(&w, &persons);
    write_json(&truth_dir.join("effects.json"), &eff)?;
    files.push(WrittenFile {
        path: "truth/effects.json".to_owned(),
        rows: 0,
    });
    write_json(&truth_dir.join("noise.json"), &noise::report(&all_counts))?;
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
        seed: cfg.seed,
        files,
    })
}
