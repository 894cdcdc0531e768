//! The dashboard as a person uses it: six generated release folders (three programme types),
//! the page `linklab dashboard` writes over them, opened in headless Chromium (Debian's
//! `chromium` package; install it with `scripts/install-chromium.sh`). Through DevTools the test
//! checks there is no request but the page, types in the search box, uses a filter and a sort,
//! ticks programmes for their survival curves, and checks the visible rows and the forest plot
//! change as they should, and that the notice of releases that share a cohort is on screen.
//!
//! The DevTools harness (`Browser`, `page_problems`, `file_url`) is `crates/browser-test`, shared
//! with the report's browser test: Chromium driven over `--remote-debugging-pipe`, its `Network`
//! domain reporting every request the page makes, `file://` loads and requests the
//! Content-Security-Policy blocks included.
//!
//! Set `LINKLAB_DASHBOARD_PNG=/abs/path.png` to also write a 1200 px wide screenshot, as kept in
//! `docs/dashboard.png`.

mod common;

use std::path::PathBuf;

use linklab_browser_test::{Browser, file_url, page_problems};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The dashboard.

/// What the page shows, measured in the browser: the visible table rows (by programme name, in
/// order), the programme names of each forest plot (by outcome), the pooled rows of each forest
/// plot, the survival charts, the count line and whether the page fits its viewport.
const FACTS: &str = r"(() => {
  const rows = [...document.querySelectorAll('#programmes tbody tr')].map(r => r.dataset.name);
  const forests = {};
  for (const svg of document.querySelectorAll('svg.forest')) {
    forests[svg.dataset.outcome] = {
      studies: [...svg.querySelectorAll('g.study')].map(g => g.dataset.name),
      pooled: [...svg.querySelectorAll('g.pooled')].map(g => g.dataset.type),
    };
  }
  return {
    rows,
    forests,
    columns: [...document.querySelectorAll('#programmes thead th')].map(th => th.innerText.trim()),
    sorted: [...document.querySelectorAll('#programmes thead th[aria-sort]')].map(th => th.innerText.trim() + ' ' + th.getAttribute('aria-sort')),
    survival: [...document.querySelectorAll('#survival .chart')].map(c => c.dataset.name + ': ' + c.querySelectorAll('path.curve').length + ' curves'),
    pooled_rows: [...document.querySelectorAll('#pooled tbody tr')].map(r => r.innerText.split('\t').slice(0, 3).join(' | ')),
    count: document.getElementById('count').innerText,
    shared: [...document.querySelectorAll('#shared-cohorts li')].map(li => li.innerText),
    shared_visible: (() => {
      const n = document.getElementById('shared-cohorts');
      if (!n) return false;
      const r = n.getBoundingClientRect();
      return r.height > 0 && r.top < window.innerHeight && getComputedStyle(n).visibility === 'visible';
    })(),
    fits: document.documentElement.scrollWidth <= window.innerWidth,
    csp: document.querySelector('meta[http-equiv=Content-Security-Policy]').content,
  };
})()";

fn facts(browser: &mut Browser, session: &str) -> Value {
    browser.evaluate(session, FACTS)
}

fn names(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Sets a `<select>` as a person would (its value, then a `change` event).
fn choose(browser: &mut Browser, session: &str, id: &str, value: &str) {
    let script = format!(
        "(() => {{ const s = document.getElementById({id:?}); s.value = {value:?}; \
         s.dispatchEvent(new Event('change')); return s.value; }})()"
    );
    assert_eq!(
        browser.evaluate(session, &script),
        json!(value),
        "{id} offers {value}"
    );
}

/// Clicks the element matching `selector`.
fn click(browser: &mut Browser, session: &str, selector: &str) {
    let script = format!(
        "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.click(); return true; }})()"
    );
    assert_eq!(
        browser.evaluate(session, &script),
        json!(true),
        "{selector} is on the page"
    );
}

/// Types `text` into the search box through DevTools' input events.
fn type_search(browser: &mut Browser, session: &str, text: &str) {
    browser.evaluate(
        session,
        "(() => { const s = document.getElementById('search'); s.focus(); s.select(); return true; })()",
    );
    if text.is_empty() {
        browser.call(
            Some(session),
            "Input.dispatchKeyEvent",
            json!({ "type": "keyDown", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8 }),
        );
        browser.call(
            Some(session),
            "Input.dispatchKeyEvent",
            json!({ "type": "keyUp", "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8 }),
        );
    } else {
        browser.call(Some(session), "Input.insertText", json!({ "text": text }));
    }
}

const EVERYONE: [&str; 6] = [
    "Fresh Start College",
    "Learning Inside",
    "North Mentors",
    "Open Door",
    "Second Chance",
    "Work Ready",
];

/// Search: every word must match (name, organisation, type, description, period).
fn search_redraws(browser: &mut Browser, s: &str) {
    type_search(browser, s, "mentoring");
    let found = facts(browser, s);
    let mentoring = ["North Mentors", "Open Door", "Second Chance"];
    assert_eq!(names(&found["rows"]), mentoring, "{found}");
    assert_eq!(
        names(&found["forests"][EMPLOYED]["studies"]),
        mentoring,
        "the forest plot follows the search"
    );
    assert_eq!(
        names(&found["forests"][EMPLOYED]["pooled"]),
        ["mentoring"],
        "{found}"
    );
    assert_eq!(found["count"], json!("3 of 6 programmes shown"));
    type_search(browser, s, "");
    assert_eq!(
        names(&facts(browser, s)["rows"]),
        EVERYONE,
        "clearing the search shows all again"
    );
}

/// Filters: one outcome, then significant results only, then one type.
fn filters_redraw(browser: &mut Browser, s: &str) {
    choose(browser, s, "outcome", REOFFENDED);
    let one = facts(browser, s);
    assert_eq!(
        one["forests"]
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec![REOFFENDED.to_owned()]),
        "only the chosen outcome's forest plot: {one}"
    );
    assert!(
        names(&one["columns"]).iter().any(|c| c.starts_with("reoffended"))
            && !names(&one["columns"]).iter().any(|c| c.starts_with("employed")),
        "only the chosen outcome's column: {one}"
    );
    choose(browser, s, "result", "significant");
    let significant = facts(browser, s);
    // Reoffending CIs that exclude zero: North Mentors (−6 ± 2.9), Second Chance (−4 ± 3.9),
    // Learning Inside (−2 ± 2.4 includes zero: not significant).
    assert_eq!(
        names(&significant["rows"]),
        ["North Mentors", "Second Chance"],
        "{significant}"
    );
    assert_eq!(
        names(&significant["forests"][REOFFENDED]["studies"]),
        ["North Mentors", "Second Chance"],
        "the forest plot follows the filter"
    );
    choose(browser, s, "result", "all");
    choose(browser, s, "type", "education");
    let education = facts(browser, s);
    assert_eq!(
        names(&education["rows"]),
        ["Fresh Start College", "Learning Inside"],
        "{education}"
    );
    assert_eq!(
        names(&education["forests"][REOFFENDED]["pooled"]),
        ["education"],
        "{education}"
    );
    choose(browser, s, "type", "all");
}

/// Sort by people, largest first (a second click reverses); tick programmes for their survival curves.
fn sort_and_ticks_redraw(browser: &mut Browser, s: &str) {
    // Sort by people, largest first (a second click reverses).
    click(browser, s, "button[data-sort=people]");
    click(browser, s, "button[data-sort=people]");
    let by_people = facts(browser, s);
    let largest_first = [
        "Learning Inside",
        "North Mentors",
        "Work Ready",
        "Second Chance",
        "Fresh Start College",
        "Open Door",
    ];
    assert_eq!(names(&by_people["rows"]), largest_first, "{by_people}");
    assert_eq!(names(&by_people["sorted"]), ["People descending"], "{by_people}");
    assert_eq!(
        names(&by_people["forests"][REOFFENDED]["studies"]),
        largest_first,
        "the forest plot lists programmes in the table's order"
    );

    // Survival curves of the ticked programmes, side by side.
    click(browser, s, "tr[data-name='North Mentors'] input[type=checkbox]");
    click(browser, s, "tr[data-name='Open Door'] input[type=checkbox]");
    let ticked = facts(browser, s);
    assert_eq!(
        names(&ticked["survival"]),
        ["North Mentors: 2 curves", "Open Door: 2 curves"],
        "{ticked}"
    );
    choose(browser, s, "outcome", "all");
}

const REOFFENDED: &str = "reoffended|rate";
const EMPLOYED: &str = "employed|rate";

#[test]
fn the_dashboard_searches_filters_sorts_and_redraws_its_forest_plots_in_chromium() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs: Vec<PathBuf> = common::six()
        .iter()
        .map(|s| common::write_release(&tmp.path().join("releases"), s))
        .collect();
    let page = linklab_dashboard::write_dashboard(&dirs, &tmp.path().join("dashboard"))
        .expect("the dashboard is written");
    let url = file_url(&page);
    let mut browser = Browser::launch();
    let s = browser.open(&url, 1200, 2400, false);

    let all = facts(&mut browser, &s);
    assert!(
        !browser.page_events(&s).is_empty(),
        "DevTools reports the page's events"
    );
    let problems = page_problems(&browser.page_events(&s), &url);
    assert!(
        problems.is_empty(),
        "the dashboard loads nothing but itself: {problems:#?}"
    );
    assert!(
        all["csp"]
            .as_str()
            .unwrap_or_default()
            .starts_with("default-src 'none'"),
        "{all}"
    );
    assert_eq!(names(&all["rows"]), EVERYONE, "sorted by name: {all}");
    assert_eq!(all["count"], json!("6 of 6 programmes shown"));
    assert_eq!(all["fits"], json!(true), "no sideways scrolling at 1200 px");
    assert_eq!(
        names(&all["shared"]),
        [
            "North Mentors and Learning Inside",
            "Second Chance and Work Ready"
        ],
        "the notice names the programmes that share a cohort: {all}"
    );
    assert_eq!(all["shared_visible"], json!(true), "in the first screen: {all}");
    assert_eq!(names(&all["forests"][REOFFENDED]["studies"]), EVERYONE, "{all}");
    assert_eq!(
        names(&all["forests"][REOFFENDED]["pooled"]),
        ["education", "mentoring"],
        "two types have two or more programmes: {all}"
    );
    assert_eq!(all["pooled_rows"].as_array().map(Vec::len), Some(4), "{all}");

    search_redraws(&mut browser, &s);
    filters_redraw(&mut browser, &s);
    sort_and_ticks_redraw(&mut browser, &s);
    let problems = page_problems(&browser.page_events(&s), &url);
    assert!(
        problems.is_empty(),
        "using the page makes no request and no error: {problems:#?}"
    );

    let png = browser.screenshot(&s);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "the screenshot is a PNG with something on it ({} bytes)",
        png.len()
    );
    if let Some(path) = std::env::var_os("LINKLAB_DASHBOARD_PNG").map(PathBuf::from) {
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

#[test]
fn a_phone_sees_the_whole_dashboard_without_sideways_scrolling() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs: Vec<PathBuf> = common::six()
        .iter()
        .map(|s| common::write_release(tmp.path(), s))
        .collect();
    let page = linklab_dashboard::write_dashboard(&dirs, tmp.path()).expect("the dashboard is written");
    let url = file_url(&page);
    let mut browser = Browser::launch();
    let s = browser.open(&url, 390, 844, true);
    let phone = facts(&mut browser, &s);
    assert_eq!(
        phone["fits"],
        json!(true),
        "the page fits 390 px (the table scrolls in its box): {phone}"
    );
    assert_eq!(names(&phone["rows"]).len(), 6, "{phone}");
    let problems = page_problems(&browser.page_events(&s), &url);
    assert!(problems.is_empty(), "{problems:#?}");
}
