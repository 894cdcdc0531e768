//! The `dashboard` case (issue 16: "500 programmes render and filter in under a second in
//! Chromium"): 500 generated release folders that pass `check-release`
//! ([`crate::dashboard_data`]), the page `linklab dashboard` writes over them
//! (`linklab_dashboard::build`), opened in headless Chromium over DevTools (the
//! `linklab-browser-test` harness, Debian's `chromium`).
//!
//! What is timed, inside the page with `performance.now()`, each up to the first frame after the
//! work (a `requestAnimationFrame` callback, then a task after it, so style, layout and paint of
//! that frame are in):
//! * **first render**: from the start of navigation (the page's time origin) to the first frame
//!   after `DOMContentLoaded`, by which time the page's inline script has parsed its data and
//!   drawn the full table, the forest plots and the pooled table. Measured by a script DevTools
//!   adds to the new document (`Page.addScriptToEvaluateOnNewDocument`), not by the page.
//! * **search**, **clear search**, **type filter**, **all types** and **sort**: from just before
//!   the event is dispatched (an `input` event on the search box, a `change` on the type select,
//!   a click on the "People" column's button) to the first frame after the page redrew.
//!
//! Every run uses a fresh browser; every measure is checked against what the page must show
//! (the rows, the first row after the sort, one forest-plot mark per programme and outcome), and
//! the page may make no request but itself. The figures are the median of the runs.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use linklab_browser_test::{Browser, file_url, page_problems};
use serde_json::{Value, json};

use crate::dashboard_data::{Generated, write_releases};

/// Set by the script DevTools adds to the page: the times of `DOMContentLoaded` and of the first
/// frame after it, in ms since navigation started.
const FIRST_FRAME: &str = r"document.addEventListener('DOMContentLoaded', () => {
  const scripted = performance.now();
  requestAnimationFrame(() => setTimeout(() => {
    window.__linklabBench = { scripted: scripted, painted: performance.now() };
  }, 0));
});";

/// An interaction, timed from just before it to the first frame after it, with what the page
/// then shows.
fn timed(action: &str) -> String {
    format!(
        r"new Promise(resolve => {{
  const t0 = performance.now();
  ({action})();
  requestAnimationFrame(() => setTimeout(() => {{
    const first = document.querySelector('#programmes tbody tr');
    resolve({{
      ms: performance.now() - t0,
      rows: document.querySelectorAll('#programmes tbody tr').length,
      first: first ? first.dataset.name : null,
      marks: document.querySelectorAll('svg.forest g.study').length,
    }});
  }}, 0));
}})"
    )
}

fn set_value(id: &str, value: &str, event: &str) -> String {
    format!(
        "() => {{ const e = document.getElementById({id:?}); e.value = {value:?}; e.dispatchEvent(new Event({event:?})); }}"
    )
}

/// One interaction: its name, the action, and the rows the page must then show (how many, and
/// the first one's name when it matters).
struct Step {
    name: &'static str,
    action: String,
    rows: usize,
    first: Option<String>,
}

/// The estimates per programme (every one published, so one forest-plot mark each).
const ESTIMATES: usize = 7;

fn steps(generated: &[Generated]) -> Vec<Step> {
    let count = |kind: &str| generated.iter().filter(|g| g.kind == kind).count();
    let all = generated.len();
    // Ascending by people; ties keep the order the folders were given.
    let smallest = generated
        .iter()
        .enumerate()
        .min_by_key(|(i, g)| (g.people, *i))
        .map(|(_, g)| g.name.clone());
    vec![
        Step {
            name: "search",
            action: set_value("search", "mentoring", "input"),
            rows: count("mentoring"),
            first: None,
        },
        Step {
            name: "clear search",
            action: set_value("search", "", "input"),
            rows: all,
            first: None,
        },
        Step {
            name: "type filter",
            action: set_value("type", "education", "change"),
            rows: count("education"),
            first: None,
        },
        Step {
            name: "all types",
            action: set_value("type", "all", "change"),
            rows: all,
            first: None,
        },
        Step {
            name: "sort",
            action: "() => document.querySelector('button[data-sort=people]').click()".to_owned(),
            rows: all,
            first: smallest,
        },
    ]
}

/// Opens `url` in a new 1200 × 900 page with [`FIRST_FRAME`] added to it, and waits for that
/// frame. Returns the session and the two times.
fn open(browser: &mut Browser, url: &str) -> (String, f64, f64) {
    let target = browser.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
    let attached = browser.call(
        None,
        "Target.attachToTarget",
        json!({ "targetId": target["targetId"], "flatten": true }),
    );
    let session = attached["sessionId"].as_str().expect("a session").to_owned();
    let s = Some(session.as_str());
    for domain in ["Network", "Page", "Runtime", "Log"] {
        browser.call(s, &format!("{domain}.enable"), json!({}));
    }
    browser.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    browser.call(
        s,
        "Page.addScriptToEvaluateOnNewDocument",
        json!({ "source": FIRST_FRAME }),
    );
    browser.call(s, "Page.navigate", json!({ "url": url }));
    let probe = format!("location.href === {url:?} && window.__linklabBench || null");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let times = browser.evaluate(&session, &probe);
        if let (Some(scripted), Some(painted)) = (times["scripted"].as_f64(), times["painted"].as_f64()) {
            return (session, scripted, painted);
        }
        if Instant::now() > deadline {
            browser.fail("the page did not draw within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `step` in the page and checks what it shows; returns its time in ms.
fn run_step(browser: &mut Browser, session: &str, step: &Step) -> f64 {
    let answer = browser.call(
        Some(session),
        "Runtime.evaluate",
        json!({ "expression": timed(&step.action), "awaitPromise": true, "returnByValue": true }),
    );
    if let Some(e) = answer.get("exceptionDetails") {
        browser.fail(&format!("{}: the page script failed: {e}", step.name));
    }
    let v = &answer["result"]["value"];
    let rows = v["rows"].as_u64().unwrap_or(0) as usize;
    let marks = v["marks"].as_u64().unwrap_or(0) as usize;
    if rows != step.rows || marks != rows * ESTIMATES {
        browser.fail(&format!(
            "{}: {rows} rows and {marks} forest-plot marks, not {} and {}",
            step.name,
            step.rows,
            step.rows * ESTIMATES
        ));
    }
    if let Some(first) = &step.first
        && v["first"].as_str() != Some(first.as_str())
    {
        browser.fail(&format!(
            "{}: the first row is {}, not {first}",
            step.name, v["first"]
        ));
    }
    v["ms"].as_f64().expect("a time")
}

/// The times of one run in a fresh browser: first render (DOMContentLoaded, first frame), then
/// each step in order.
fn run(url: &str, programmes: usize, steps: &[Step]) -> (String, Vec<f64>) {
    let mut browser = Browser::launch();
    let version = browser.call(None, "Browser.getVersion", json!({}))["product"]
        .as_str()
        .unwrap_or("Chromium")
        .to_owned();
    let (session, scripted, painted) = open(&mut browser, url);
    let shown = browser.evaluate(
        &session,
        "[document.querySelectorAll('#programmes tbody tr').length, document.querySelectorAll('svg.forest g.study').length]",
    );
    if shown != json!([programmes, programmes * ESTIMATES]) {
        browser.fail(&format!("first render: rows and forest-plot marks {shown}"));
    }
    let mut times = vec![scripted, painted];
    for step in steps {
        times.push(run_step(&mut browser, &session, step));
    }
    let problems = page_problems(&browser.page_events(&session), url);
    if !problems.is_empty() {
        browser.fail(&format!("the page made a request or an error: {problems:?}"));
    }
    (version, times)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        f64::midpoint(values[n / 2 - 1], values[n / 2])
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The case: `quick` uses 100 programmes and 3 runs, otherwise 500 and 7.
pub fn case(scratch: &Path, quick: bool) -> Value {
    let (count, runs) = if quick { (100, 3) } else { (500, 7) };
    let root = scratch.join("dashboard");
    let _ = std::fs::remove_dir_all(&root);
    let generated = write_releases(&root.join("releases"), count, 16);
    let dirs: Vec<_> = generated.iter().map(|g| g.dir.clone()).collect();
    let start = Instant::now();
    let built = linklab_dashboard::build(&dirs, &root.join("page")).expect("the dashboard is written");
    let build_secs = start.elapsed().as_secs_f64();
    let page_mb = std::fs::metadata(&built.page).map_or(0.0, |m| m.len() as f64 / 1e6);
    let url = file_url(&built.page);
    let steps = steps(&generated);
    let load_before = load_average();
    let mut version = String::new();
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); steps.len() + 2];
    for _ in 0..runs {
        let (v, times) = run(&url, count, &steps);
        version = v;
        for (column, t) in columns.iter_mut().zip(times) {
            column.push(t);
        }
    }
    let load_after = load_average();
    let _ = std::fs::remove_dir_all(&root);
    let mut names = vec!["script done (DOMContentLoaded)", "first render"];
    names.extend(steps.iter().map(|s| s.name));
    let medians: Vec<f64> = columns.iter_mut().map(|c| median(c)).collect();
    let mut notes = format!(
        "Written by `linklab-bench case dashboard` on {} ({}; load average {load_before} before the runs, \
         {load_after} after, on 2 cores shared with other builds), {version} headless, 1200 × 900. \
         The page over {count} generated programmes (8 types, {} groups of programmes sharing a cohort, \
         7 published estimates and survival curves each) is {page_mb:.1} MB; `linklab_dashboard::build` \
         (check-release of every folder, reading, pooling, the page) took {build_secs:.1} s. \
         Times in ms, inside the page, up to the first frame after the work; median, min and max of {runs} runs, \
         each in a fresh browser:\n\n| measure | median | min | max |\n|---|---|---|---|\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        crate::machine(),
        built.shared_cohorts.len(),
    );
    for ((name, column), m) in names.iter().zip(&columns).zip(&medians) {
        let (lo, hi) = (column[0], column[column.len() - 1]);
        let _ = writeln!(notes, "| {name} | {m:.0} | {lo:.0} | {hi:.0} |");
    }
    let slowest_step = medians[2..].iter().copied().fold(0.0, f64::max);
    json!({
        "what": format!(
            "{count} generated programmes' release folders (each passing check-release), the page `linklab dashboard` writes, \
             in headless Chromium: first render (table, forest plots, pooled table) and the redraw after a search, a type filter \
             and a sort; median of {runs} runs"
        ),
        "result": format!(
            "first render {:.0} ms; search {:.0} ms, clear search {:.0} ms, type filter {:.0} ms, all types {:.0} ms, sort {:.0} ms",
            medians[1], medians[2], medians[3], medians[4], medians[5], medians[6]
        ),
        "first_render_ms": medians[1],
        "slowest_redraw_ms": slowest_step,
        "notes": notes.trim_end(),
    })
}
