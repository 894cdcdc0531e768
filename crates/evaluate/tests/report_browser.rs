//! `report.html` as a person sees it: the evaluation stage runs on small generated linked data,
//! and the page it writes is opened in headless Chromium (Debian's `chromium` package; install
//! it with `scripts/install-chromium.sh`), driven over the DevTools protocol by the harness in
//! `crates/browser-test`, which also reports every request the page makes.
//!
//! Set `LINKLAB_REPORT_PNG=/abs/path.png` to also write a 1200 px wide screenshot of a report on
//! a demo-size cohort (20 000 people), as kept in `docs/report.png`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use linklab_browser_test::{Browser, file_url, page_problems};
use linklab_evaluate::{EvaluateConfig, Outcome, OutcomeKind, run};
use linklab_store::{NoProgress, PartWriter, WorkDir};
use serde_json::{Value, json};

/// The headline sentence of a rate outcome starts like this, in the JDL's words (see
/// `report/headlines.rs`).
const HEADLINE_START: &str = "For every 100 people who took part, ";

// ---------------------------------------------------------------------------------------------
// A small generated world, written as linked tables.

/// Deterministic random numbers (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        // 53 random bits are exactly representable in an f64.
        #[allow(clippy::cast_precision_loss)]
        let bits = (self.next() >> 11) as f64;
        (bits + 0.5) / 9_007_199_254_740_992.0
    }

    fn gauss(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn below(&mut self, n: i32) -> i32 {
        i32::try_from(self.next() % u64::from(n.unsigned_abs())).expect("below n, which is an i32")
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn text_column(values: &[Option<String>]) -> ArrayRef {
    Arc::new(values.iter().map(Option::as_deref).collect::<StringArray>())
}

fn date_column(values: &[Option<i32>]) -> ArrayRef {
    Arc::new(values.iter().copied().collect::<Date32Array>())
}

fn int_column(values: &[i64]) -> ArrayRef {
    Arc::new(values.iter().copied().map(Some).collect::<Int64Array>())
}

fn write_table(work: &WorkDir, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let dir = work.linked_table(name);
    std::fs::create_dir_all(&dir).expect("create a linked table folder in the temp dir");
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect())
        .expect("columns of equal length");
    let mut writer = PartWriter::new(&dir, schema);
    writer.write(&batch).expect("write a linked table");
    writer.finish().expect("finish a linked table");
}

/// Writes the linked tables of `people` released prisoners: older people with fewer prior
/// offences take part more often (about one in four) and also do better anyway; taking part
/// lowers the odds of reoffending and adds days of employment.
fn write_world(work: &WorkDir, people: usize, seed: u64) {
    let mut rng = Rng(seed);
    let groups = ["violence", "theft", "drugs", "fraud"];
    let mut ids = Vec::new();
    let (mut release, mut age, mut sex, mut prior, mut group) = (vec![], vec![], vec![], vec![], vec![]);
    let mut participants = Vec::new();
    let (mut offender, mut offence) = (vec![], vec![]);
    let (mut worker, mut start, mut end) = (vec![], vec![], vec![]);
    for i in 0..people {
        let id = Some(format!("P{i:06}"));
        let z_age = rng.gauss();
        let z_prior = rng.gauss();
        let male = rng.unit() < 0.75;
        let g = groups[usize::try_from(rng.below(4)).expect("0..4")];
        let took_part =
            rng.unit() < sigmoid(-1.3 + 0.8 * z_age - 0.5 * z_prior + if g == "drugs" { 0.5 } else { 0.0 });
        let index = 18_500 + rng.below(700);
        ids.push(id.clone());
        release.push(Some(index));
        #[allow(clippy::cast_possible_truncation)] // a rounded age of a few tens of years
        age.push((32.0 + 9.0 * z_age).round() as i64);
        sex.push(Some(if male { "M" } else { "F" }.to_owned()));
        #[allow(clippy::cast_possible_truncation)] // a rounded small count
        prior.push((5.0 + 3.0 * z_prior).round().max(0.0) as i64);
        group.push(Some(g.to_owned()));
        if took_part {
            participants.push(id.clone());
        }
        let risk = sigmoid(-0.2 - 0.7 * z_age + 0.6 * z_prior - if took_part { 0.6 } else { 0.0 });
        if rng.unit() < risk {
            // Earlier reoffences are more likely: days to the first one shrink towards 0.
            #[allow(clippy::cast_possible_truncation)] // below 364
            let day = 1 + (364.0 * rng.unit().powf(1.6)).floor() as i32;
            offender.push(id.clone());
            offence.push(Some(index + day));
        }
        let days =
            60.0 + 90.0 * z_age - 20.0 * z_prior + 70.0 * rng.gauss() + if took_part { 35.0 } else { 0.0 };
        if days >= 1.0 {
            #[allow(clippy::cast_possible_truncation)] // clamped to the window
            let days = days.min(400.0) as i32;
            worker.push(id.clone());
            let first = index + 1 + rng.below(30);
            start.push(Some(first));
            end.push((days < 365).then_some(first + days));
        }
    }
    let keys = |ids: &[Option<String>]| text_column(&vec![Some("nino".to_owned()); ids.len()]);
    write_table(
        work,
        "releases",
        vec![
            ("person_id", text_column(&ids)),
            ("match_key", keys(&ids)),
            ("release_date", date_column(&release)),
            ("age_at_release", int_column(&age)),
            ("sex", text_column(&sex)),
            ("prior_offences", int_column(&prior)),
            ("offence_group", text_column(&group)),
        ],
    );
    write_table(
        work,
        "participants",
        vec![
            ("person_id", text_column(&participants)),
            ("match_key", keys(&participants)),
        ],
    );
    write_table(
        work,
        "reoffences",
        vec![
            ("person_id", text_column(&offender)),
            ("match_key", keys(&offender)),
            ("offence_date", date_column(&offence)),
        ],
    );
    write_table(
        work,
        "employment",
        vec![
            ("person_id", text_column(&worker)),
            ("match_key", keys(&worker)),
            ("start_date", date_column(&start)),
            ("end_date", date_column(&end)),
        ],
    );
}

fn outcome(name: &str, kind: OutcomeKind) -> Outcome {
    Outcome::new(name, kind)
}

/// Runs the evaluation stage on a generated world of `people` and returns the path of the
/// `report.html` it wrote.
fn generated_report(dir: &Path, people: usize) -> PathBuf {
    let work = WorkDir::new(dir.join("work"));
    write_world(&work, people, 6);
    let mut cfg = EvaluateConfig::new(work, "releases", "release_date", "participants");
    cfg.covariates = ["age_at_release", "sex", "prior_offences", "offence_group"]
        .map(str::to_owned)
        .to_vec();
    cfg.min_treated = 30;
    let s = str::to_owned;
    cfg.outcomes = vec![
        outcome(
            "reoffended",
            OutcomeKind::EventWithin {
                extract: s("reoffences"),
                date: s("offence_date"),
            },
        ),
        outcome(
            "employed",
            OutcomeKind::SpellOverlap {
                extract: s("employment"),
                start: s("start_date"),
                end: s("end_date"),
            },
        ),
        outcome(
            "days_employed",
            OutcomeKind::SpellDays {
                extract: s("employment"),
                start: s("start_date"),
                end: s("end_date"),
            },
        ),
        outcome(
            "days_to_reoffence",
            OutcomeKind::TimeToEvent {
                extract: s("reoffences"),
                date: s("offence_date"),
            },
        ),
    ];
    let summary = run(&cfg, &NoProgress).expect("the evaluation runs on generated data");
    assert!(
        summary.estimated,
        "the generated world is big enough for an estimate: {:?}",
        summary.no_estimate_reason
    );
    summary.publish_dir.join("report.html")
}

/// What the page shows, measured in the browser.
const PAGE_FACTS: &str = r"(() => {
  const box = e => e.getBoundingClientRect();
  const charts = [...document.querySelectorAll('main svg')].map(svg => {
    const frame = box(svg);
    const outside = [...svg.querySelectorAll('text')].filter(t => {
      const b = box(t);
      return b.left < frame.left - 1 || b.right > frame.right + 1 || b.top < frame.top - 1 || b.bottom > frame.bottom + 1;
    }).map(t => t.textContent);
    return { label: svg.getAttribute('aria-label'), width: frame.width, height: frame.height,
             marks: svg.querySelectorAll('rect, circle, path, line').length, outside };
  });
  return {
    title: document.title,
    outline: [...document.querySelectorAll('h1, h2, h3')].map(h => h.tagName.toLowerCase() + ': ' + h.innerText),
    headlines: [...document.querySelectorAll('p.headline')].map(p => p.innerText),
    charts,
    viewport: window.innerWidth,
    page_width: document.documentElement.scrollWidth,
  };
})()";

/// Checks the facts common to every width, and returns the page's outline and charts as text.
fn check_page(facts: &Value, width: u32) -> String {
    assert_eq!(
        facts["viewport"],
        json!(width),
        "the viewport is {width} px wide: {facts}"
    );
    let headlines: Vec<&str> = facts["headlines"]
        .as_array()
        .expect("headlines is a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        headlines
            .iter()
            .any(|h| h.starts_with(HEADLINE_START) && h.contains(" percentage points, 95% CI ")),
        "the page shows the headline sentence about the effect; it shows {headlines:#?}"
    );
    let charts = facts["charts"].as_array().expect("charts is a list");
    assert_eq!(
        charts.len(),
        5,
        "two difference charts, a Kaplan–Meier chart, a love plot and the overlap chart: {charts:#?}"
    );
    for chart in charts {
        let (w, h) = (
            chart["width"].as_f64().unwrap_or(0.0),
            chart["height"].as_f64().unwrap_or(0.0),
        );
        assert!(
            w >= 100.0 && h >= 50.0,
            "the chart is drawn at a visible size: {chart}"
        );
        assert!(
            chart["marks"].as_u64().unwrap_or(0) >= 3,
            "the chart has marks: {chart}"
        );
        assert_eq!(
            chart["outside"],
            json!([]),
            "no label of the chart is cut off: {chart}"
        );
    }
    let page_width = facts["page_width"].as_u64().unwrap_or(u64::MAX);
    assert!(
        page_width <= u64::from(width),
        "the page fits the {width} px viewport without scrolling sideways, but is {page_width} px wide"
    );
    let mut text = format!("title: {}\n", facts["title"].as_str().unwrap_or_default());
    for line in facts["outline"].as_array().expect("outline is a list") {
        let _ = writeln!(text, "{}", line.as_str().unwrap_or_default());
    }
    for headline in headlines {
        let _ = writeln!(text, "headline: {headline}");
    }
    for chart in charts {
        let _ = writeln!(text, "chart: {}", chart["label"].as_str().unwrap_or_default());
    }
    text
}

#[test]
fn report_loads_in_chromium_with_no_other_requests_at_desktop_and_phone_width() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let screenshot_to = std::env::var_os("LINKLAB_REPORT_PNG").map(PathBuf::from);
    let people = if screenshot_to.is_some() { 20_000 } else { 1_500 };
    let report = generated_report(dir.path(), people);
    let url = file_url(&report);
    let mut browser = Browser::launch();

    let desktop = browser.open(&url, 1200, 2400, false);
    let facts = browser.evaluate(&desktop, PAGE_FACTS);
    let problems = page_problems(&browser.page_events(&desktop), &url);
    assert!(problems.is_empty(), "the report at 1200 px: {problems:#?}");
    let outline = check_page(&facts, 1200);
    let png = browser.screenshot(&desktop);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "the screenshot is a PNG with something on it ({} bytes)",
        png.len()
    );
    if let Some(path) = screenshot_to {
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    insta::assert_snapshot!("report_outline", outline);

    let phone = browser.open(&url, 390, 844, true);
    let facts = browser.evaluate(&phone, PAGE_FACTS);
    let problems = page_problems(&browser.page_events(&phone), &url);
    assert!(problems.is_empty(), "the report at 390 px: {problems:#?}");
    assert_eq!(
        check_page(&facts, 390),
        outline,
        "a phone shows the same headings, sentences and charts"
    );
}
