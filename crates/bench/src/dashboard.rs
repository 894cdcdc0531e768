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
//! * **scroll to the forest plots**: the page draws its forest plots with
//!   `content-visibility: auto`, so that a plot off screen is built but not laid out or painted
//!   until it nears the viewport; this step scrolls the first one into view and times two frames
//!   (the plot is drawn in the frame after the one that finds it in view), the cost that the
//!   first render leaves out.
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

/// An interaction, timed from just before it to the end of the `frames`-th frame after it, with
/// what the page then shows.
fn timed(action: &str, frames: u32) -> String {
    format!(
        r"new Promise(resolve => {{
  const after = (n, f) => requestAnimationFrame(() => n > 1 ? after(n - 1, f) : setTimeout(f, 0));
  const t0 = performance.now();
  ({action})();
  const script = performance.now() - t0;
  after({frames}, () => {{
    const first = document.querySelector('#programmes tbody tr');
    resolve({{
      ms: performance.now() - t0,
      script: script,
      rows: document.querySelectorAll('#programmes tbody tr').length,
      first: first ? first.dataset.name : null,
      marks: document.querySelectorAll('svg.forest g.study').length,
    }});
  }});
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
    /// The frames to wait for: 1, or 2 where the work is drawn a frame later (content that
    /// `content-visibility: auto` skipped is drawn in the frame after it comes into view).
    frames: u32,
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
            frames: 1,
            action: set_value("search", "mentoring", "input"),
            rows: count("mentoring"),
            first: None,
        },
        Step {
            name: "clear search",
            frames: 1,
            action: set_value("search", "", "input"),
            rows: all,
            first: None,
        },
        Step {
            name: "type filter",
            frames: 1,
            action: set_value("type", "education", "change"),
            rows: count("education"),
            first: None,
        },
        Step {
            name: "all types",
            frames: 1,
            action: set_value("type", "all", "change"),
            rows: all,
            first: None,
        },
        Step {
            name: "sort",
            frames: 1,
            action: "() => document.querySelector('button[data-sort=people]').click()".to_owned(),
            rows: all,
            first: smallest.clone(),
        },
        Step {
            name: "scroll to the forest plots",
            frames: 2,
            action: "() => document.querySelector('.forest-block').scrollIntoView()".to_owned(),
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

/// Runs `step` in the page and checks what it shows; returns the time in ms its event handler
/// took and the time to the first frame after it.
fn run_step(browser: &mut Browser, session: &str, step: &Step) -> (f64, f64) {
    let answer = browser.call(
        Some(session),
        "Runtime.evaluate",
        json!({ "expression": timed(&step.action, step.frames), "awaitPromise": true, "returnByValue": true }),
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
    (
        v["script"].as_f64().expect("a time"),
        v["ms"].as_f64().expect("a time"),
    )
}

/// The times of one run in a fresh browser: first render (DOMContentLoaded, first frame), then
/// each step in order (its event handler, first frame).
fn run(url: &str, programmes: usize, steps: &[Step]) -> (String, Vec<(f64, f64)>) {
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
    let mut times = vec![(scripted, painted)];
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
    // Per measure: the script's times and the times to the first frame, over the runs.
    let mut columns: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); steps.len() + 1];
    for _ in 0..runs {
        let (v, times) = run(&url, count, &steps);
        version = v;
        for ((script, frame), (s, f)) in columns.iter_mut().zip(times) {
            script.push(s);
            frame.push(f);
        }
    }
    let load_after = load_average();
    let _ = std::fs::remove_dir_all(&root);
    let mut names = vec!["first render"];
    names.extend(steps.iter().map(|s| s.name));
    let mut notes = format!(
        "Written by `linklab-bench case dashboard` on {} ({}; load average {load_before} before the runs, \
         {load_after} after, on 2 cores shared with other builds), {version} headless, 1200 × 900. \
         The page over {count} generated programmes (8 types, {} groups of programmes sharing a cohort, \
         7 published estimates and survival curves each) is {page_mb:.1} MB; `linklab_dashboard::build` \
         (check-release of every folder, reading, pooling, the page) took {build_secs:.1} s. \
         Times in ms, inside the page, over {runs} runs, each in a fresh browser. *Script*: until the page's \
         script is done (first render: `DOMContentLoaded`, after parsing the page and drawing everything; \
         otherwise the event's handler); *to frame*: until the first frame after it (style, layout, paint).\n\n\
         | measure | script, median | to frame, median | to frame, min | to frame, max |\n|---|---|---|---|---|\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        crate::machine(),
        built.shared_cohorts.len(),
    );
    let mut medians = Vec::new();
    for (name, (script, frame)) in names.iter().zip(&mut columns) {
        let (s, f) = (median(script), median(frame));
        let (lo, hi) = (frame[0], frame[frame.len() - 1]);
        let _ = writeln!(notes, "| {name} | {s:.0} | {f:.0} | {lo:.0} | {hi:.0} |");
        medians.push(f);
    }
    let slowest_step = medians[1..].iter().copied().fold(0.0, f64::max);
    json!({
        "what": format!(
            "{count} generated programmes' release folders (each passing check-release), the page `linklab dashboard` writes, \
             in headless Chromium: first render (table, forest plots, pooled table) and the redraw after a search, a type filter \
             and a sort; median of {runs} runs"
        ),
        "result": format!(
            "first render {:.0} ms; search {:.0} ms, clear search {:.0} ms, type filter {:.0} ms, all types {:.0} ms, sort {:.0} ms, scroll to the forest plots {:.0} ms",
            medians[0], medians[1], medians[2], medians[3], medians[4], medians[5], medians[6]
        ),
        "first_render_ms": medians[0],
        "slowest_redraw_ms": slowest_step,
        "notes": notes.trim_end(),
    })
}
