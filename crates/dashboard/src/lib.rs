//! `linklab dashboard RELEASE_DIR... --out DIR`: one self-contained page over many programmes'
//! releases, so that a commissioner can see what works.
//!
//! * **Only checked releases.** Every folder must be a release (a folder with a release
//!   manifest) that passes `check-release` with the checker's default rules (threshold 10, zeros
//!   disclosive); anything else is refused with an error naming the folder, as are two
//!   programmes with one name ([`load`]).
//! * **Only published figures.** The page shows the manifest's programme metadata (`programme`:
//!   `name`, `organisation`, `type`, `start`, `end`, `description`; the folder's name and
//!   "unspecified" when absent), the rows of `impact.csv` and the steps of `survival.csv`, and
//!   links to each release's own `report.html` by relative path. It copies no file.
//! * **Pooling** ([`meta`]): per programme type and outcome, a random-effects meta-analysis of
//!   the published estimates (DerSimonian–Laird and REML), computed from the published effect
//!   and CI alone. Programmes of type "unspecified" are not pooled.
//! * **Shared cohorts** ([`shared_cohorts`]): releases whose manifests give the same
//!   `programme.cohort` fingerprint were made from one cohort's data, so their figures could be
//!   differenced across them; the page names them in a notice and asks for a joint audit
//!   (`check-release DIR --with OTHER_DIR`), and [`build`] returns them for the command line to
//!   warn. A release without the fingerprint is of an unknown cohort and in no group.
//! * **One file** ([`render`]): `index.html` with its data, script and style inline, a
//!   Content-Security-Policy that allows only that script and style (by their SHA-256), no
//!   request of any kind; it opens from `file://`.
#![forbid(unsafe_code)]

mod error;
mod html;
pub mod meta;
mod overlap;
mod read;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub use error::DashboardError;
pub use overlap::{SharedCohort, shared_cohorts};
pub use read::{Effect, Programme, SurvivalStep, UNSPECIFIED, Verdict, read_release};

use crate::meta::{Pooled, Study, Tau2Method, random_effects, se_from_ci};

/// The page's file name inside the output folder.
pub const INDEX_NAME: &str = "index.html";

/// The pooled estimates of one programme type and outcome (measure).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PooledGroup {
    /// The programme type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The outcome.
    pub outcome: String,
    /// Its measure (`rate`, `mean_days`, `log_rank`).
    pub measure: String,
    /// The programmes pooled, in the order given.
    pub programmes: Vec<String>,
    /// DerSimonian–Laird.
    pub dl: Option<Pooled>,
    /// REML.
    pub reml: Option<Pooled>,
}

/// Reads and checks every release folder, in order. Refuses an empty list, a folder that is not
/// a release or fails `check-release`, and two programmes with the same name.
pub fn load(dirs: &[PathBuf]) -> Result<Vec<Programme>, DashboardError> {
    if dirs.is_empty() {
        return Err(DashboardError::NoReleases);
    }
    let mut programmes: Vec<Programme> = Vec::with_capacity(dirs.len());
    let mut given: Vec<&PathBuf> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let programme = read_release(dir)?;
        if let Some(i) = programmes.iter().position(|p| p.name == programme.name) {
            return Err(DashboardError::DuplicateName {
                name: programme.name,
                first: given[i].clone(),
                second: dir.clone(),
            });
        }
        programmes.push(programme);
        given.push(dir);
    }
    Ok(programmes)
}

/// The pooled estimates per programme type and outcome: every group of at least two programmes
/// of one (specified) type with a published estimate of the outcome, sorted by type, outcome and
/// measure.
pub fn pool(programmes: &[Programme]) -> Vec<PooledGroup> {
    // (type, outcome, measure) -> the programmes' names and estimates.
    type Key<'a> = (&'a str, &'a str, &'a str);
    let mut groups: BTreeMap<Key<'_>, Vec<(&str, Study)>> = BTreeMap::new();
    for p in programmes.iter().filter(|p| p.kind != UNSPECIFIED) {
        for e in &p.effects {
            if let (Some(estimate), Some(lo), Some(hi)) = (e.difference, e.ci_low, e.ci_high) {
                let study = Study {
                    estimate,
                    se: se_from_ci(lo, hi),
                };
                groups
                    .entry((p.kind.as_str(), e.outcome.as_str(), e.measure.as_str()))
                    .or_default()
                    .push((p.name.as_str(), study));
            }
        }
    }
    groups
        .into_iter()
        .filter(|(_, members)| members.len() >= 2)
        .map(|((kind, outcome, measure), members)| {
            let studies: Vec<Study> = members.iter().map(|(_, s)| *s).collect();
            PooledGroup {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
                measure: measure.to_owned(),
                programmes: members.iter().map(|(n, _)| (*n).to_owned()).collect(),
                dl: random_effects(&studies, Tau2Method::DerSimonianLaird),
                reml: random_effects(&studies, Tau2Method::Reml),
            }
        })
        .collect()
}

/// The page over `programmes`, to be written into the folder `page_dir` (links to each
/// release's `report.html` are relative to it).
pub fn render(programmes: &[Programme], page_dir: &Path) -> String {
    let base = absolute(page_dir);
    let links: Vec<Option<String>> = programmes
        .iter()
        .map(|p| {
            p.has_report
                .then(|| relative_href(&base, &p.dir.join("report.html")))
        })
        .collect();
    html::page(programmes, &links, &pool(programmes), &shared_cohorts(programmes))
}

/// What [`build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// The page's path (`out/index.html`).
    pub page: PathBuf,
    /// How many programmes it shows.
    pub programmes: usize,
    /// The groups of programmes whose releases share one cohort (the page's notice names them;
    /// the command line should warn, one line per group, with [`SharedCohort`]'s `Display`).
    pub shared_cohorts: Vec<SharedCohort>,
}

/// `linklab dashboard`: loads and checks `dirs`, and writes `out/index.html` (creating `out`).
/// Returns the page's path. Refuses an `out` that is itself a release folder (the release stage,
/// which lists the page in its manifest, uses [`load`] and [`render`] instead).
pub fn write_dashboard(dirs: &[PathBuf], out: &Path) -> Result<PathBuf, DashboardError> {
    build(dirs, out).map(|d| d.page)
}

/// [`write_dashboard`], also returning how many programmes the page shows and which of them
/// share a cohort.
pub fn build(dirs: &[PathBuf], out: &Path) -> Result<Dashboard, DashboardError> {
    if out.join(linklab_check::MANIFEST_NAME).exists() {
        return Err(DashboardError::OutIsRelease {
            out: out.to_path_buf(),
            page: INDEX_NAME,
        });
    }
    let programmes = load(dirs)?;
    std::fs::create_dir_all(out).map_err(|e| linklab_store::StoreError::Io {
        action: "cannot create folder",
        path: out.to_path_buf(),
        source: e,
    })?;
    let page = render(&programmes, out);
    let path = out.join(INDEX_NAME);
    linklab_store::write_atomic(&path, |w| std::io::Write::write_all(w, page.as_bytes()))?;
    Ok(Dashboard {
        page: path,
        programmes: programmes.len(),
        shared_cohorts: shared_cohorts(&programmes),
    })
}

/// The canonical form of a path, or (when it does not exist yet) the path made absolute.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .unwrap_or_else(|_| std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(path)))
}

/// The relative URL of `target` from a page in the folder `base` (both absolute), each segment
/// percent-encoded.
fn relative_href(base: &Path, target: &Path) -> String {
    let parts = |p: &Path| -> Vec<String> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let (from, to) = (parts(base), parts(target));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut segments: Vec<String> = vec!["..".to_owned(); from.len() - common];
    segments.extend(to[common..].iter().map(|s| percent_encode(s)));
    segments.join("/")
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_links_are_relative_to_the_page() {
        for (base, target, href) in [
            ("/r", "/r/report.html", "report.html"),
            ("/r", "/r/a/report.html", "a/report.html"),
            ("/out", "/r/a/report.html", "../r/a/report.html"),
            ("/x/y/out", "/x/p q#1/report.html", "../../p%20q%231/report.html"),
        ] {
            assert_eq!(
                relative_href(Path::new(base), Path::new(target)),
                href,
                "{base} -> {target}"
            );
        }
    }
}
