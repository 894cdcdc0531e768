//! Made-up release folders for the `dashboard` case: one per programme, in the form the release
//! stage writes them (the evaluation's `impact.csv` with the demo's seven estimates, `survival.csv`,
//! `report.html`, and a manifest listing them with their checksums, the programme's metadata and
//! its cohort fingerprint). Every figure is drawn from a seeded generator; no real data. Each
//! folder passes `check-release` (the dashboard refuses any that does not).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::json;

/// The programme types, as the dashboard's type filter offers them.
pub const TYPES: [&str; 8] = [
    "education",
    "employment support",
    "mentoring",
    "housing",
    "substance misuse",
    "family support",
    "arts",
    "restorative justice",
];

const FIRST: [&str; 25] = [
    "North",
    "South",
    "East",
    "West",
    "Bright",
    "Open",
    "Second",
    "Fresh",
    "New",
    "Bridge",
    "Harbour",
    "Keystone",
    "Lantern",
    "Meadow",
    "Pathway",
    "Riverside",
    "Summit",
    "Compass",
    "Anchor",
    "Beacon",
    "Cedar",
    "Horizon",
    "Oak",
    "Willow",
    "Granite",
];
const SECOND: [&str; 20] = [
    "Futures",
    "Start",
    "Steps",
    "Routes",
    "Chances",
    "Horizons",
    "Links",
    "Works",
    "Circle",
    "Voices",
    "Roots",
    "Ground",
    "Light",
    "Foundations",
    "Journeys",
    "Doors",
    "Skills",
    "Hands",
    "Minds",
    "Ways",
];
const ORGANISATIONS: [&str; 12] = [
    "Trust",
    "Foundation",
    "Partnership",
    "Charity",
    "Community Interest Company",
    "College",
    "Housing Association",
    "Council",
    "Network",
    "Alliance",
    "Project",
    "Society",
];
const REGIONS: [&str; 9] = [
    "the North East",
    "the North West",
    "Yorkshire",
    "the Midlands",
    "the East",
    "London",
    "the South East",
    "the South West",
    "Wales",
];

/// Programmes evaluated in one run share its cohort.
const PER_RUN: usize = 8;

/// One generated programme, as much as the benchmark needs to know what the page should show.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The release folder.
    pub dir: PathBuf,
    /// The programme's name.
    pub name: String,
    /// Its type.
    pub kind: &'static str,
    /// Matched participants.
    pub people: u64,
}

/// One published estimate, as a row of `impact.csv` gives it.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    treated: f64,
    comparison: f64,
    difference: f64,
    ci_low: f64,
    ci_high: f64,
    p: f64,
}

/// The two-sided normal p-value of `z` (Abramowitz and Stegun 7.1.26, error < 1.5e-7).
fn p_value(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    (poly * (-x * x).exp()).clamp(0.0, 1.0)
}

fn estimate(rng: &mut impl Rng, base: f64, mean: f64, spread: f64, se: f64) -> Estimate {
    let effect = Normal::new(mean, spread).expect("a valid normal").sample(rng);
    let z = 1.959_964;
    Estimate {
        treated: base + effect,
        comparison: base,
        difference: effect,
        ci_low: effect - z * se,
        ci_high: effect + z * se,
        p: p_value(effect / se),
    }
}

fn impact_row(out: &mut String, outcome: &str, measure: &str, people: u64, e: Estimate, digits: usize) {
    let _ = writeln!(
        out,
        "{outcome},{measure},{people},{people},{:.digits$},{:.digits$},{:.digits$},{:.digits$},{:.digits$},{:.4},{:.4}",
        e.treated,
        e.comparison,
        e.difference,
        e.ci_low,
        e.ci_high,
        e.p,
        (e.p * 7.0).min(1.0)
    );
}

/// `impact.csv` with the demo's seven estimates, and the reoffending rates behind the survival
/// curves (treated, comparison).
fn impact(rng: &mut impl Rng, n: u64) -> (String, (f64, f64)) {
    let mut text = linklab_store::IMPACT_COLUMNS.join(",");
    text.push('\n');
    let nf = n as f64;
    let rate_se = |p: f64| (2.0 * p * (1.0 - p) / nf).sqrt();
    let reoffended = estimate(rng, 0.28, -0.01, 0.03, rate_se(0.28));
    impact_row(&mut text, "reoffended", "rate", n, reoffended, 4);
    let employed = estimate(rng, 0.30, 0.02, 0.03, rate_se(0.30));
    impact_row(&mut text, "employed", "rate", n, employed, 4);
    let days_se = |sd: f64| sd * (2.0 / nf).sqrt();
    let days_employed = estimate(rng, 50.0, 5.0, 10.0, days_se(90.0));
    impact_row(&mut text, "days_employed", "mean_days", n, days_employed, 2);
    let days_on_benefit = estimate(rng, 85.0, -5.0, 10.0, days_se(100.0));
    impact_row(&mut text, "days_on_benefit", "mean_days", n, days_on_benefit, 2);
    // The share without a reoffence at the end of follow-up: one minus the rate.
    let log_rank = Estimate {
        treated: 1.0 - reoffended.treated,
        comparison: 1.0 - reoffended.comparison,
        difference: -reoffended.difference,
        ci_low: -reoffended.ci_high,
        ci_high: -reoffended.ci_low,
        p: reoffended.p,
    };
    impact_row(&mut text, "days_to_reoffence", "log_rank", n, log_rank, 4);
    let rmst = estimate(rng, 300.0, 5.0, 8.0, days_se(60.0));
    impact_row(&mut text, "days_to_reoffence", "rmst", n, rmst, 2);
    let if_event = estimate(rng, 150.0, 0.0, 10.0, days_se(100.0));
    impact_row(
        &mut text,
        "days_to_reoffence",
        "mean_days_if_event",
        n,
        if_event,
        2,
    );
    (text, (reoffended.treated, reoffended.comparison))
}

/// Kaplan–Meier steps of one group down to `1 − rate`, eight steps of equal events (at least 10
/// each), no one censored.
fn survival_rows(out: &mut String, group: &str, people: u64, rate: f64) {
    let per_step = ((rate.clamp(0.02, 0.9) * people as f64 / 8.0).round() as u64).max(10);
    let at_risk = std::iter::successors(Some(people), |n| n.checked_sub(per_step))
        .take_while(|n| *n >= per_step + 10)
        .take(8);
    let mut survival = 1.0;
    for (step, n) in at_risk.enumerate() {
        survival *= 1.0 - per_step as f64 / n as f64;
        let day = (step + 1) * 45;
        let _ = writeln!(
            out,
            "days_to_reoffence,{group},{day},{n},{per_step},{survival:.4}"
        );
    }
}

fn write_file(dir: &Path, name: &str, text: &str) -> serde_json::Value {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a released file");
    let sha256 = linklab_store::sha256_file(&path).expect("read back a released file");
    json!({ "name": name, "kind": "extra", "sha256": sha256 })
}

/// Writes `count` release folders under `parent` (seeded, so every run writes the same ones).
pub fn write_releases(parent: &Path, count: usize, seed: u64) -> Vec<Generated> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!(
            "{} {}{}",
            FIRST[i % FIRST.len()],
            SECOND[(i / FIRST.len()) % SECOND.len()],
            // Past 500 programmes the two word lists repeat; a number keeps names unique.
            if i < FIRST.len() * SECOND.len() {
                String::new()
            } else {
                format!(" {}", i / (FIRST.len() * SECOND.len()) + 1)
            }
        );
        let kind = TYPES[rng.random_range(0..TYPES.len())];
        // Log-uniform between 60 and 3000 matched participants.
        let people = (60.0 * 50.0_f64.powf(rng.random::<f64>())).round() as u64;
        let start_year = rng.random_range(2014..2023);
        let dir = parent.join(format!("programme-{i:04}"));
        std::fs::create_dir_all(&dir).expect("create a release folder");
        let (impact, (treated_rate, comparison_rate)) = impact(&mut rng, people);
        let mut survival = String::from("outcome,group,day,at_risk,events,survival\n");
        survival_rows(&mut survival, "treated", people, treated_rate);
        survival_rows(&mut survival, "comparison", people, comparison_rate);
        let report = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}</title></head>\
             <body><h1>{name}</h1><p>The programme's own report.</p></body></html>\n"
        );
        let files = vec![
            write_file(&dir, "impact.csv", &impact),
            write_file(&dir, "survival.csv", &survival),
            write_file(&dir, "report.html", &report),
        ];
        let region = REGIONS[rng.random_range(0..REGIONS.len())];
        let organisation = format!(
            "{} {}",
            FIRST[rng.random_range(0..FIRST.len())],
            ORGANISATIONS[rng.random_range(0..ORGANISATIONS.len())]
        );
        let manifest = json!({
            "format": linklab_release::MANIFEST_FORMAT,
            "pipeline": "bench-dashboard",
            "tool_version": env!("CARGO_PKG_VERSION"),
            "created_at": "2026-01-01T00:00:00Z",
            "rules": serde_json::to_value(linklab_release::DisclosureRules::default()).expect("rules serialise"),
            "additivity": "exact: published cells add up to the published margins",
            "files": files,
            "programme": {
                "extract": format!("participants_{i:04}"),
                "name": name,
                "organisation": organisation,
                "type": kind,
                "start": format!("{start_year}-04-01"),
                "end": format!("{}-03-31", start_year + rng.random_range(1..4)),
                "description": format!("A {kind} programme for people leaving prison in {region}"),
                "cohort": format!("{:016x}", ((i / PER_RUN) as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed),
            },
        });
        std::fs::write(
            dir.join(linklab_release::MANIFEST_NAME),
            serde_json::to_vec_pretty(&manifest).expect("the manifest serialises"),
        )
        .expect("write the manifest");
        out.push(Generated {
            dir,
            name,
            kind,
            people,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_p_value_matches_the_normal_distribution() {
        for (z, p) in [
            (0.0, 1.0),
            (1.959_964, 0.05),
            (-2.575_829, 0.01),
            (3.290_527, 0.001),
        ] {
            assert!((p_value(z) - p).abs() < 1e-6, "z = {z}: {}", p_value(z));
        }
    }

    #[test]
    fn generated_releases_pass_the_dashboards_checks() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let generated = write_releases(tmp.path(), 24, 3);
        let dirs: Vec<PathBuf> = generated.iter().map(|g| g.dir.clone()).collect();
        let programmes = linklab_dashboard::load(&dirs).expect("every generated folder passes check-release");
        assert_eq!(programmes.len(), 24);
        assert!(
            programmes
                .iter()
                .all(|p| p.effects.len() == 7 && p.survival.len() >= 8)
        );
        let groups = linklab_dashboard::shared_cohorts(&programmes);
        assert_eq!(
            groups.iter().map(|g| g.programmes.len()).collect::<Vec<_>>(),
            [PER_RUN; 3],
            "one cohort per run of {PER_RUN} programmes"
        );
    }
}
