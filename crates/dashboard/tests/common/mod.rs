//! Small generated release folders, in the form the release stage writes them and passing
//! `check-release`: `impact.csv`, `survival.csv`, `report.html` and a manifest listing them
//! with their checksums and (optionally) the programme's metadata.

#![allow(dead_code, reason = "each test binary uses its own part of these helpers")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The 97.5% normal quantile, to write a CI from a standard error.
const Z: f64 = 1.959_964;

/// One generated programme.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The folder name.
    pub folder: String,
    /// The manifest's `programme` metadata; `None` writes no `programme` field.
    pub meta: Option<Meta>,
    /// Matched participants (the comparison group is as large).
    pub people: u64,
    /// The effect on reoffending (a difference of rates) and its standard error.
    pub reoffended: (f64, f64),
    /// The effect on employment (a difference of rates) and its standard error.
    pub employed: (f64, f64),
    /// The survival at the end of follow-up of participants and comparisons.
    pub survival: (f64, f64),
}

/// The manifest's `programme` metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    pub name: String,
    pub organisation: String,
    pub kind: String,
    pub start: String,
    pub end: String,
    pub description: String,
    /// The cohort source's fingerprint (`programme.cohort`); `None` writes no such field.
    pub cohort: Option<String>,
}

impl Spec {
    /// A programme of `kind` with its name and organisation derived from `folder`.
    pub fn new(
        folder: &str,
        name: &str,
        kind: &str,
        people: u64,
        reoffended: (f64, f64),
        employed: (f64, f64),
    ) -> Self {
        Self {
            folder: folder.to_owned(),
            meta: Some(Meta {
                name: name.to_owned(),
                organisation: format!("{name} Trust"),
                kind: kind.to_owned(),
                start: "2022-04-01".to_owned(),
                end: "2024-03-31".to_owned(),
                description: format!("{} for people leaving prison", capitalised(kind)),
                cohort: None,
            }),
            people,
            reoffended,
            employed,
            survival: (0.78 - reoffended.0 / 2.0, 0.78),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn rate_row(outcome: &str, people: u64, base: f64, (effect, se): (f64, f64)) -> String {
    let (lo, hi) = (effect - Z * se, effect + Z * se);
    let z = effect / se;
    let p = if z.abs() > 3.3 { 0.0005 } else { 0.2 };
    format!(
        "{outcome},rate,{people},{people},{:.4},{base:.4},{effect:.4},{lo:.4},{hi:.4},{p},{p}\n",
        base + effect
    )
}

/// Kaplan–Meier steps from survival 1 down to `end` in `steps` pooled steps of equal events.
fn survival_rows(group: &str, people: u64, end: f64, out: &mut String) {
    let steps = 6_u64;
    let total_events = ((1.0 - end) * people as f64).round() as u64;
    let per_step = (total_events / steps).max(10);
    let mut at_risk = people;
    let mut survival = 1.0;
    for i in 1..=steps {
        if at_risk < per_step + 10 {
            break;
        }
        survival *= 1.0 - per_step as f64 / at_risk as f64;
        let _ = writeln!(
            out,
            "days_to_reoffence,{group},{},{at_risk},{per_step},{survival:.4}",
            i * 60
        );
        at_risk -= per_step;
    }
}

impl Spec {
    /// The same programme, its release made from the cohort source `cohort`.
    pub fn cohort(mut self, cohort: &str) -> Self {
        self.meta.as_mut().expect("a programme with metadata").cohort = Some(cohort.to_owned());
        self
    }
}

/// Writes the release folder of `spec` under `parent` and returns its path.
pub fn write_release(parent: &Path, spec: &Spec) -> PathBuf {
    let dir = parent.join(&spec.folder);
    std::fs::create_dir_all(&dir).expect("create a release folder");
    let mut impact = String::from(
        "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value,p_holm\n",
    );
    impact.push_str(&rate_row("reoffended", spec.people, 0.27, spec.reoffended));
    impact.push_str(&rate_row("employed", spec.people, 0.32, spec.employed));
    let mut survival = String::from("outcome,group,day,at_risk,events,survival\n");
    survival_rows("treated", spec.people, spec.survival.0, &mut survival);
    survival_rows("comparison", spec.people, spec.survival.1, &mut survival);
    let report = "<!DOCTYPE html><html lang=\"en\"><head><title>report</title></head><body><p>The programme's report.</p></body></html>\n";
    let mut files = Vec::new();
    for (name, text) in [
        ("impact.csv", impact.as_str()),
        ("survival.csv", survival.as_str()),
        ("report.html", report),
    ] {
        std::fs::write(dir.join(name), text).expect("write a released file");
        files.push(
            serde_json::json!({ "name": name, "kind": "extra", "sha256": sha256_hex(text.as_bytes()) }),
        );
    }
    let mut manifest = serde_json::json!({
        "format": "linklab-release-manifest-v1",
        "pipeline": "generated",
        "tool_version": "0.1.0",
        "created_at": "2026-01-01T00:00:00Z",
        "rules": { "threshold": 10, "zeros_disclosive": true, "round_to": 1 },
        "additivity": "exact: published cells add up to the published margins",
        "files": files,
    });
    if let Some(m) = &spec.meta {
        manifest["programme"] = serde_json::json!({
            "name": m.name, "organisation": m.organisation, "type": m.kind,
            "start": m.start, "end": m.end, "description": m.description,
        });
        if let Some(cohort) = &m.cohort {
            manifest["programme"]["cohort"] = cohort.as_str().into();
        }
    }
    std::fs::write(
        dir.join("release-manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("the manifest serialises"),
    )
    .expect("write the manifest");
    dir
}

/// Six programmes of three types: two mentoring programmes that work, one that does not, two
/// education programmes, one employment support programme. North Mentors and Learning Inside
/// were evaluated in one run (one cohort), Second Chance and Work Ready in another; Open Door's
/// and Fresh Start College's manifests give no cohort.
pub fn six() -> Vec<Spec> {
    vec![
        Spec::new(
            "north-mentors",
            "North Mentors",
            "mentoring",
            820,
            (-0.06, 0.015),
            (0.03, 0.02),
        )
        .cohort("9f2c41e07b3d"),
        Spec::new(
            "second-chance",
            "Second Chance",
            "mentoring",
            410,
            (-0.04, 0.02),
            (0.01, 0.025),
        )
        .cohort("51ab07d3c8e2"),
        Spec::new(
            "open-door",
            "Open Door",
            "mentoring",
            150,
            (0.01, 0.04),
            (0.0, 0.05),
        ),
        Spec::new(
            "learning-inside",
            "Learning Inside",
            "education",
            1250,
            (-0.02, 0.012),
            (0.05, 0.013),
        )
        .cohort("9f2c41e07b3d"),
        Spec::new(
            "fresh-start-college",
            "Fresh Start College",
            "education",
            300,
            (-0.01, 0.03),
            (0.06, 0.03),
        ),
        Spec::new(
            "work-ready",
            "Work Ready",
            "employment support",
            640,
            (0.0, 0.02),
            (0.08, 0.02),
        )
        .cohort("51ab07d3c8e2"),
    ]
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Replaces a released file of `dir` with `text`, and its checksum in the manifest.
pub fn rewrite(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("rewrite a released file");
    let path = dir.join("release-manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read the manifest"))
            .expect("the manifest is JSON");
    for file in manifest["files"].as_array_mut().expect("files") {
        if file["name"] == name {
            file["sha256"] = sha256_hex(text.as_bytes()).into();
        }
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("serialises"))
        .expect("write the manifest");
}
