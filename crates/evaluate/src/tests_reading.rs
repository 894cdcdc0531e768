//! Tests of how results are read: Holm's adjustment, E-values, the overlap chart's bars and the
//! report's JDL wording.

use crate::adjust::{e_value, e_values, holm};
use crate::csv::Table;
use crate::report::overlap;

fn check_holm(p: &[f64], expected: &[f64]) {
    let got = holm(p);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert!(
            (g.is_nan() && e.is_nan()) || (g - e).abs() < 1e-12,
            "holm({p:?}) = {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn holm_adjusts_step_down_and_keeps_the_order() {
    // Sorted 0.01, 0.02, 0.03, 0.5 over m = 4: 4·0.01, 3·0.02, max(0.06, 2·0.03), max(.., 0.5).
    check_holm(&[0.03, 0.01, 0.5, 0.02], &[0.06, 0.04, 0.5, 0.06]);
    // Monotone: a larger raw p never gets a smaller adjusted one; capped at 1.
    check_holm(&[0.04, 0.045], &[0.08, 0.08]);
    check_holm(&[0.6, 0.7], &[1.0, 1.0]);
    // One test is not adjusted; a NaN is no test and does not count in m.
    check_holm(&[0.03], &[0.03]);
    check_holm(&[0.01, f64::NAN, 0.04], &[0.02, f64::NAN, 0.04]);
    check_holm(&[], &[]);
}

fn check_e(rr: f64, expected: f64) {
    let got = e_value(rr);
    assert!(
        (got - expected).abs() < 5e-3,
        "E-value of RR {rr}: {got}, expected {expected}"
    );
}

#[test]
fn e_values_match_the_published_formula() {
    // VanderWeele and Ding (2017): E = RR + sqrt(RR (RR − 1)); their example RR 3.9 with lower
    // limit 1.8 gives 7.26 and 3.0.
    check_e(3.9, 7.26);
    check_e(1.8, 3.0);
    // RR < 1 takes 1/RR: RR 0.5 -> 2 + sqrt(2) = 3.414.
    check_e(0.5, 2.0 + 2.0_f64.sqrt());
    // No effect: 1.
    check_e(1.0, 1.0);
    assert!(e_value(0.0).is_nan() && e_value(f64::NAN).is_nan());
    // A risk difference through the risk ratio: 24 vs 37 per 100, difference -13 points with
    // interval -20 to -6. RR = 0.24/0.37 = 0.6486, 1/RR = 1.5417, E = 1.5417 +
    // sqrt(1.5417 × 0.5417) = 2.4556; the limit nearer no difference, -6 points:
    // RR = 0.31/0.37 = 0.8378, 1/RR = 1.1935, E = 1.1935 + sqrt(1.1935 × 0.1935) = 1.6741.
    let (point, limit) = e_values(0.24, 0.37, -0.20, -0.06).unwrap();
    assert!((point - 2.4556).abs() < 1e-3, "{point}");
    assert!((limit - 1.6741).abs() < 1e-3, "{limit}");
    // An interval that includes no difference: the limit's E-value is 1.
    assert_eq!(e_values(0.24, 0.37, -0.20, 0.01).map(|e| e.1), Some(1.0));
    // No ratio from a zero comparison.
    assert_eq!(e_values(0.1, 0.0, 0.05, 0.15), None);
}

#[test]
fn overlap_bars_each_hold_at_least_the_threshold() {
    // 200 treated spread over (0.05, 0.65), 800 untreated over (0.01, 0.41), and two extreme
    // treated persons alone at 0.97 and 0.99.
    let mut score = Vec::new();
    let mut treated = Vec::new();
    for i in 0..200 {
        score.push(0.05 + 0.6 * f64::from(i) / 200.0);
        treated.push(true);
    }
    for i in 0..800 {
        score.push(0.01 + 0.4 * f64::from(i) / 800.0);
        treated.push(false);
    }
    score.extend([0.97, 0.99]);
    treated.extend([true, true]);
    let threshold = 10;
    let o = overlap(Some(&score), &treated, threshold, false).expect("both groups are large enough");
    for (bars, scores) in [(&o.treated, true), (&o.untreated, false)] {
        let n = treated.iter().filter(|t| **t == scores).count() as f64;
        let mut total = 0.0;
        for bar in bars {
            let persons = bar.density * (bar.to - bar.from) * n;
            assert!(
                persons.round() >= threshold as f64,
                "a bar of {persons} persons: {bar:?}"
            );
            total += persons;
        }
        assert!((total - n).abs() < 1e-6, "the bars hold the whole group");
        assert!(bars.windows(2).all(|w| (w[0].to - w[1].from).abs() < 1e-12));
    }
    // The two extreme treated persons are pooled into the last treated bar, not drawn alone.
    assert!(o.treated.last().unwrap().from < 0.9);
    // A group below the threshold: no chart.
    assert_eq!(
        overlap(Some(&score[..205]), &treated[..205], threshold, false),
        None
    );
    // Withheld (a few treated persons dropped by the caliper): no chart.
    assert_eq!(overlap(Some(&score), &treated, threshold, true), None);
}

#[test]
fn headlines_read_like_the_jdl_with_holm_and_e_values() {
    let impact = "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value,p_holm\n\
reoffended,rate,400,400,0.2400,0.3700,-0.1300,-0.2000,-0.0600,0.0002,0.0008\n\
employed_at_30_days,rate,400,400,0.3300,0.3000,0.0300,-0.0300,0.0900,0.3300,0.6600\n\
days_employed,mean_days,400,400,88.00,72.00,16.00,4.50,27.50,0.0240,0.0720\n\
housing,rate,400,400,0.5500,0.4500,0.1000,0.0300,0.1700,1.20e-9,4.80e-9\n";
    let meta = crate::tests::report_meta(10, ["450", "5000", "50"]);
    let table = Table::parse(impact);
    let headlines = crate::report::headlines(&table, &meta).join("\n");
    insta::assert_snapshot!(headlines, @r"
        For every 100 people who took part, 24 reoffended in the year after release, compared with 37 for every 100 similar people who did not take part (difference -13.0 percentage points, 95% CI -20.0 to -6.0). This difference is statistically significant (p < 0.001; Holm-adjusted p < 0.001). Its E-value is 2.46 (1.67 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 2.46 each, beyond the characteristics matched on, to explain the difference away.
        For every 100 people who took part, 33 were employed at 30 days in the year after release, compared with 30 for every 100 similar people who did not take part (difference +3.0 percentage points, 95% CI -3.0 to +9.0). This result is inconclusive (p = 0.330; Holm-adjusted p = 0.660): the difference could be due to chance. It does not mean that the programme has no effect; more people would be needed to tell.
        People who took part had on average 16.0 more days employed in the year after release: 88.0 compared with 72.0 days for similar people who did not take part (difference +16.0 days, 95% CI +4.5 to +27.5). This difference is statistically significant (p = 0.024; Holm-adjusted p = 0.072). It is not significant once the number of results tested is allowed for. Its E-value is 1.74 (1.32 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 1.74 each, beyond the characteristics matched on, to explain the difference away.
        For every 100 people who took part, 55 had the outcome “housing” in the year after release, compared with 45 for every 100 similar people who did not take part (difference +10.0 percentage points, 95% CI +3.0 to +17.0). This difference is statistically significant (p < 0.001; Holm-adjusted p < 0.001). Its E-value is 1.74 (1.33 for the confidence limit nearer to no difference): an unmeasured characteristic would have to be linked to both taking part and the outcome by a risk ratio of at least 1.74 each, beyond the characteristics matched on, to explain the difference away.
        ");
    let html = crate::render_report(impact, "", "", &meta);
    for needle in [
        "These results come from 4 tests",
        // Each value marked with where it is printed, for the release stage (see `figures`).
        "<td data-figure=\"impact.csv:0:p_value\">&lt; 0.001</td>",
        "Holm-adjusted p-value",
        ">2.46 (1.67)</td>",
        "<p class=\"headline\" data-figure=\"impact.csv:1:treated_value impact.csv:1:comparison_value",
    ] {
        assert!(html.contains(needle), "the report has {needle}");
    }
}

#[test]
fn the_kaplan_meier_axis_runs_from_zero() {
    // Curves that stay above 85%: the axis still starts at 0%, so the gap is not magnified.
    let survival = "outcome,group,day,at_risk,events,survival\n\
reoffended,treated,100,400,20,0.95\nreoffended,treated,300,380,20,0.90\n\
reoffended,comparison,100,400,30,0.925\nreoffended,comparison,300,370,20,0.875\n";
    let meta = crate::tests::report_meta(10, ["450", "5000", "50"]);
    let html = crate::render_report("", "", survival, &meta);
    let start = html
        .find("<svg viewBox=\"0 0 640 290\"")
        .expect("a Kaplan–Meier chart");
    let chart = &html[start..start + html[start..].find("</svg>").unwrap()];
    let ticks: Vec<&str> = chart
        .split("class=\"axis\">")
        .skip(1)
        .filter_map(|t| t.split_once('<').map(|(text, _)| text))
        .filter(|t| t.ends_with('%'))
        .collect();
    assert_eq!(ticks, ["0%", "25%", "50%", "75%", "100%"]);
    // 0% sits on the time axis (y = 250) and 100% at the top (y = 20).
    assert!(
        chart.contains("y=\"254.0\" text-anchor=\"end\" class=\"axis\">0%"),
        "{chart}"
    );
    assert!(
        chart.contains("y=\"24.0\" text-anchor=\"end\" class=\"axis\">100%"),
        "{chart}"
    );
}

#[test]
fn the_method_note_states_the_data_cutoff_and_deaths() {
    let impact = "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\n\
reoffended,rate,400,400,0.2400,0.3700,-0.1300,-0.2000,-0.0600,0.0002\n";
    let mut meta = crate::tests::report_meta(10, ["450", "5000", "50"]);
    let html = crate::render_report(impact, "", "", &meta);
    assert!(
        !html.contains("cut-off") && !html.contains("died"),
        "neither is set"
    );
    // 2024-12-31 is day 20088.
    meta.data_cutoff = Some(20_088);
    meta.deaths = true;
    let html = crate::render_report(impact, "", "", &meta);
    for needle in [
        "The data cover events up to 31 December 2024 (the data cut-off).",
        "A person who died during their follow-up is left out",
    ] {
        assert!(html.contains(needle), "the report has {needle}");
    }
}
