//! `check-release`: an independent disclosure audit of a release folder, from its published
//! files alone.
//!
//! The checker shares no code with the release stage's protection or audit: it reads only what
//! leaves the secure environment, as an attacker or an output checker would, and trusts nothing
//! the folder says about itself.
//!
//! * **Rules from its own flags.** The threshold (default 10), whether zeros are disclosive
//!   (default yes) and the rounding base come from [`CheckOptions`]; a manifest that claims
//!   weaker rules is a problem, a stricter claim makes the check stricter. Every published count
//!   is checked against them (a published 3 fails whatever the manifest says).
//! * **Every file accounted for.** Every file in the folder must be listed in the manifest and
//!   be one the checker can audit: release tables, `impact.csv`, `balance.csv`, `survival.csv`,
//!   and the `report.html`/`index.html` documents (checked to be HTML; their figures are those of
//!   the CSVs). Unlisted or unknown files, folders and symbolic links fail; a manifest file name
//!   that is not a plain name inside the folder (`../x`, `/etc/x`, `a/b`) fails and is never
//!   opened. Checksums are compared.
//! * **Formula guard.** A label that a spreadsheet would run as a formula (starting `=`, `+`,
//!   `-`, `@`, tab or CR, without the `'` guard) fails.
//! * **One linear system over everything published** ([`system`]): every table cell is a
//!   variable (the same (dimension, value) pairs in another table of the same source, in this
//!   release or the `--with` one, are the same variable), every `Total` margin a relation; the
//!   group sizes of `impact.csv` (read last: the largest is the group's size unless the system
//!   already shows the group is larger, and an outcome's own, smaller sample is a part of its
//!   group, see `extras::add_impact`), the 0/1 means of `balance.csv` (mean × group size is a count,
//!   within the mean's rounding), the persons at risk and events of `survival.csv`, and the counts
//!   printed in `report.html` prose (the group sizes before matching, the treated persons the
//!   caliper left out; any other number before "people" is checked against the threshold) join
//!   the same system, as cells of the folder's evaluation frame (the source its tables of the
//!   evaluation name, `evaluation/frame` or `<programme>/frame`: `extras::frame_source`; two
//!   programmes audited jointly stay two evaluations). The evaluation's arms are related (`extras::add_arms`): all treated = the
//!   matched treated + those the caliper dropped, all untreated = the comparison group + the
//!   unmatched, and a cell = its treated + its untreated part, so a dropped count worked out by
//!   subtraction (1 to threshold − 1 persons) fails. Every relation whose cells are all published is checked (a total that does not
//!   add up fails, rounding intervals allowed). Then, per connected component, linear
//!   programming gives the smallest and largest value of every cell that is not published: a
//!   suppressed count fails when its interval holds a single whole number, or (zeros
//!   disclosive) lies strictly inside (0, threshold); a count that is printed nowhere but can be
//!   derived fails when it is shown to be below the threshold; a suppressed sum fails when its
//!   interval is narrower than 1.
//! * **Signature.** With a key ([`CheckOptions::key`]) the manifest's HMAC-SHA256 under the
//!   project key is verified; without one, the report notes that it is unverified.
//!
//! The attacker is the LP relaxation (whole numbers are used only to round its bounds), which is
//! what output checkers (sdcTable, tau-Argus audits) use. Weighted comparison means are not
//! counts and are left out.
#![forbid(unsafe_code)]

mod error;
mod extras;
mod folder;
mod manifest;
mod prose;
mod report;
mod system;
mod tables;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use error::CheckError;
pub use manifest::MANIFEST_NAME;
pub use report::{CheckReport, Problem};

use crate::manifest::Kind;
use crate::system::System;
use crate::tables::Ctx;

/// The checker's own rules and inputs (the command line's flags).
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// A published count of persons below this fails (`--threshold`, default 10).
    pub threshold: u64,
    /// Whether a published zero fails and a suppressed cell may be empty (default `true`).
    pub zeros_disclosive: bool,
    /// The rounding base published counts must follow (`--round-to`); `None` takes the
    /// manifest's.
    pub round_to: Option<u64>,
    /// The project key file that verifies the manifest's signature (`--key`).
    pub key: Option<PathBuf>,
    /// Another release audited jointly with this one (`--with`).
    pub with: Option<PathBuf>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            threshold: 10,
            zeros_disclosive: true,
            round_to: None,
            key: None,
            with: None,
        }
    }
}

/// The rules the audit applies (the checker's, made stricter by the manifests' claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rules {
    pub threshold: u64,
    pub zeros_disclosive: bool,
    pub round_to: u64,
}

/// Audits a release folder (and the `--with` one jointly). The report lists every problem; an
/// `Err` means a folder cannot be checked at all (no readable manifest, an unreadable key).
pub fn check_release(dir: &Path, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport::default();
    let mut folders = vec![(dir.to_path_buf(), String::new())];
    if let Some(other) = &opts.with {
        folders.push((other.clone(), format!("{}/", other.display())));
    }
    let mut manifests = Vec::new();
    let mut rules: Option<Rules> = None;
    for (d, label) in &folders {
        if !d.is_dir() {
            return Err(CheckError::unreadable(d, "not a folder"));
        }
        let (m, value) = manifest::read(d)?;
        let file = format!("{label}{MANIFEST_NAME}");
        let r = manifest::rules(&m, opts, &file, &mut report);
        rules = Some(rules.map_or(r, |p| Rules {
            threshold: p.threshold.max(r.threshold),
            zeros_disclosive: p.zeros_disclosive || r.zeros_disclosive,
            round_to: p.round_to.max(r.round_to),
        }));
        manifest::verify_signature(&m, &value, opts.key.as_deref(), &file, &mut report)?;
        folder::check_entries(d, &m, label, &mut report)?;
        manifests.push(m);
    }
    let rules = rules.expect("at least one folder");
    let mut sys = System::default();
    // `impact.csv` is read last: whether a count is its group's size depends on what the other
    // files show of the group (see `extras::add_impact`).
    let mut impacts = Vec::new();
    let frames: Vec<&str> = manifests
        .iter()
        .map(|m| extras::frame_source(m.files.iter().filter_map(|f| f.joint_group.as_deref())))
        .collect();
    for (((d, label), m), frame) in folders.iter().zip(&manifests).zip(&frames) {
        let mut seen = HashSet::new();
        for f in &m.files {
            if !folder::usable(d, f, label, &mut seen, &mut report)? {
                continue;
            }
            let path = d.join(&f.name);
            let file = format!("{label}{}", f.name);
            let mut ctx = Ctx {
                rules: &rules,
                report: &mut report,
                sys: &mut sys,
                frame,
            };
            match (f.kind, f.name.as_str()) {
                (Kind::Table, _) => {
                    let source = f.joint_group.clone().unwrap_or_else(|| file.clone());
                    tables::add_table(&path, &file, f, &source, &mut ctx);
                }
                (Kind::Extra, "impact.csv") => impacts.push((path, file, *frame)),
                (Kind::Extra, "balance.csv") => extras::add_balance(&path, &file, &mut ctx),
                (Kind::Extra, "survival.csv") => extras::add_survival(&path, &file, &mut ctx),
                (Kind::Extra, "report.html") => {
                    folder::check_document(&path, &file, ctx.report);
                    prose::add_report(&path, &file, &mut ctx);
                }
                (Kind::Extra, _) => folder::check_document(&path, &file, &mut report),
            }
        }
    }
    for (path, file, frame) in &impacts {
        let mut ctx = Ctx {
            rules: &rules,
            report: &mut report,
            sys: &mut sys,
            frame,
        };
        extras::add_impact(path, file, &mut ctx)?;
    }
    let mut frames = frames;
    frames.sort_unstable();
    frames.dedup();
    for frame in frames {
        extras::add_arms(&mut Ctx {
            rules: &rules,
            report: &mut report,
            sys: &mut sys,
            frame,
        });
    }
    sys.attack(&rules, &mut report)?;
    Ok(report)
}
