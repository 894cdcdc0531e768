//! The pooling against a published worked example: the BCG vaccine trials (Colditz et al.
//! 1994; R metafor's `dat.bcg`, 13 trials), log risk ratios, random-effects models.
//!
//! Two kinds of figures are asserted:
//! * **Published** (R metafor output, printed to 4 decimals; asserted to half a unit in the last
//!   printed place): `rma(yi, vi)` (REML) on `escalc(measure = "RR", ai = tpos, bi = tneg,
//!   ci = cpos, di = cneg, data = dat.bcg)`, as printed in
//!   <https://cttir.github.io/courses/course3_design_causal/labs/lab_week4_session2_slides.html>:
//!   τ² = 0.3132, τ = 0.5597, I² = 92.22%, H² = 12.86, Q(df = 12) = 152.2330,
//!   estimate −0.7145, se 0.1798, CI −1.0669 to −0.3622.
//!   Q = 152.233 and I² = 92.22% also appear in the R metafor column of
//!   <https://www.gradmeta.com/metovix-validation-report.html> (`rma(yi, vi, data = dat.bcg)`).
//! * **Reference script** (asserted to 1e-6): every DerSimonian–Laird and REML figure as
//!   printed to 12 decimals by `tests/reference/meta.py`, an independent pure-Python
//!   implementation (`python3 crates/dashboard/tests/reference/meta.py`).

use linklab_dashboard::meta::{Pooled, Study, Tau2Method, Z_975, random_effects, se_from_ci};
use proptest::prelude::*;

/// tpos, tneg, cpos, cneg per trial (`dat.bcg`).
const BCG: [(f64, f64, f64, f64); 13] = [
    (4.0, 119.0, 11.0, 128.0),
    (6.0, 300.0, 29.0, 274.0),
    (3.0, 228.0, 11.0, 209.0),
    (62.0, 13536.0, 248.0, 12619.0),
    (33.0, 5036.0, 47.0, 5761.0),
    (180.0, 1361.0, 372.0, 1079.0),
    (8.0, 2537.0, 10.0, 619.0),
    (505.0, 87886.0, 499.0, 87892.0),
    (29.0, 7470.0, 45.0, 7232.0),
    (17.0, 1699.0, 65.0, 1600.0),
    (186.0, 50448.0, 141.0, 27197.0),
    (5.0, 2493.0, 3.0, 2338.0),
    (27.0, 16886.0, 29.0, 17825.0),
];

/// The log risk ratio and its standard error (`escalc(measure = "RR")`).
fn bcg() -> Vec<Study> {
    BCG.iter()
        .map(|&(tpos, tneg, cpos, cneg)| {
            let (n1, n2) = (tpos + tneg, cpos + cneg);
            Study {
                estimate: ((tpos / n1) / (cpos / n2)).ln(),
                se: (1.0 / tpos - 1.0 / n1 + 1.0 / cpos - 1.0 / n2).sqrt(),
            }
        })
        .collect()
}

fn fields(p: &Pooled) -> [(&'static str, f64); 10] {
    [
        ("estimate", p.estimate),
        ("se", p.se),
        ("ci_low", p.ci_low),
        ("ci_high", p.ci_high),
        ("tau2", p.tau2),
        ("i2_percent", p.i2_percent),
        ("h2", p.h2),
        ("q", p.q),
        ("pi_low", p.pi_low),
        ("pi_high", p.pi_high),
    ]
}

/// Asserts every named figure of `p` is within `tolerance` of `expected`.
fn check(p: &Pooled, expected: &[(&str, f64)], tolerance: f64) {
    let got = fields(p);
    for &(name, want) in expected {
        let value = got
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no figure {name}"))
            .1;
        assert!(
            (value - want).abs() <= tolerance,
            "{:?} {name}: {value} is not {want} (± {tolerance})",
            p.method
        );
    }
}

#[test]
fn reml_matches_the_published_metafor_output() {
    let p = random_effects(&bcg(), Tau2Method::Reml).expect("13 usable trials");
    assert_eq!(p.k, 13);
    check(
        &p,
        &[
            ("tau2", 0.3132),
            ("q", 152.2330),
            ("estimate", -0.7145),
            ("se", 0.1798),
            ("ci_low", -1.0669),
            ("ci_high", -0.3622),
        ],
        0.000_05,
    );
    // Printed to 2 decimals.
    check(&p, &[("i2_percent", 92.22), ("h2", 12.86)], 0.005);
    assert!(
        (p.tau2.sqrt() - 0.5597).abs() <= 0.000_05,
        "τ = {}",
        p.tau2.sqrt()
    );
}

#[test]
fn dl_and_reml_match_the_reference_script() {
    let studies = bcg();
    // Printed by tests/reference/meta.py.
    let dl = [
        ("estimate", -0.714_117_222_073),
        ("se", 0.178_742_089_535),
        ("ci_low", -1.064_445_280_084),
        ("ci_high", -0.363_789_164_062),
        ("tau2", 0.308_760_262_862),
        ("i2_percent", 92.117_346_854_562),
        ("h2", 12.686_084_006_864),
        ("q", 152.233_008_082_373),
        ("pi_low", -1.858_153_752_732),
        ("pi_high", 0.429_919_308_586),
    ];
    let reml = [
        ("estimate", -0.714_532_342_158),
        ("se", 0.179_781_516_105),
        ("ci_low", -1.066_897_638_810),
        ("ci_high", -0.362_167_045_506),
        ("tau2", 0.313_243_258_136),
        ("i2_percent", 92.221_384_521_269),
        ("h2", 12.855_758_235_309),
        ("q", 152.233_008_082_373),
        ("pi_low", -1.866_692_217_903),
        ("pi_high", 0.437_627_533_587),
    ];
    for (method, expected) in [(Tau2Method::DerSimonianLaird, dl), (Tau2Method::Reml, reml)] {
        let p = random_effects(&studies, method).expect("13 usable trials");
        check(&p, &expected, 1e-6);
    }
}

#[test]
fn a_published_ci_gives_back_the_standard_error_the_pooling_needs() {
    // The dashboard pools from (estimate, CI) alone: rounding the CI to 4 decimals, as
    // impact.csv does, moves the pooled REML estimate by far less than its printed precision.
    let exact = random_effects(&bcg(), Tau2Method::Reml).expect("13 usable trials");
    let round = |v: f64| (v * 1e4).round() / 1e4;
    let from_ci: Vec<Study> = bcg()
        .iter()
        .map(|s| {
            let (lo, hi) = (round(s.estimate - Z_975 * s.se), round(s.estimate + Z_975 * s.se));
            Study {
                estimate: round(s.estimate),
                se: se_from_ci(lo, hi),
            }
        })
        .collect();
    let published = random_effects(&from_ci, Tau2Method::Reml).expect("13 usable trials");
    assert!(
        (published.estimate - exact.estimate).abs() < 1e-4,
        "{published:?}"
    );
    assert!((published.tau2 - exact.tau2).abs() < 1e-3, "{published:?}");
}

proptest! {
    #[test]
    fn pooled_figures_keep_their_laws(
        raw in prop::collection::vec((-5.0_f64..5.0, 0.01_f64..3.0), 2..30)
    ) {
        let studies: Vec<Study> = raw.iter().map(|&(estimate, se)| Study { estimate, se }).collect();
        let (lo, hi) = studies.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), s| (l.min(s.estimate), h.max(s.estimate)));
        for method in [Tau2Method::DerSimonianLaird, Tau2Method::Reml] {
            let p = random_effects(&studies, method).expect("usable estimates");
            prop_assert!(p.tau2 >= 0.0);
            prop_assert!((0.0..100.0).contains(&p.i2_percent));
            prop_assert!(p.estimate >= lo - 1e-9 && p.estimate <= hi + 1e-9, "a weighted mean lies among the estimates");
            prop_assert!(p.pi_low <= p.ci_low + 1e-12 && p.pi_high >= p.ci_high - 1e-12, "the PI holds the CI");
            prop_assert!(p.q >= 0.0);
        }
    }
}
