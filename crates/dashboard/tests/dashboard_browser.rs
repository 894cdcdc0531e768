//! The dashboard as a person uses it: six generated release folders (three programme types),
//! the page `linklab dashboard` writes over them, opened in headless Chromium (Debian's
//! `chromium` package; install it with `scripts/install-chromium.sh`). Through DevTools the test
//! checks there is no request but the page, types in the search box, uses a filter and a sort,
//! ticks programmes for their survival curves, and checks the visible rows and the forest plot
//! change as they should.
//!
//! The DevTools harness (`Browser`, `page_problems`, `file_url`) is the one of
//! `crates/evaluate/tests/report_browser.rs`: Chromium driven over `--remote-debugging-pipe`, its
//! `Network` domain reporting every request the page makes, `file://` loads and requests the
//! Content-Security-Policy blocks included.
//!
//! Set `LINKLAB_DASHBOARD_PNG=/abs/path.png` to also write a 1200 px wide screenshot, as kept in
//! `docs/dashboard.png`.

mod common;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest one browser session may take before it is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Headless Chromium over the DevTools protocol.

/// A running headless Chromium. Dropping it kills its whole process group.
struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Result<Value, String>>,
    next_id: u64,
    deadline: Instant,
    /// Events received so far, in order.
    events: Vec<Value>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the dashboard browser test needs Debian's chromium package; \
             run `scripts/install-chromium.sh` (as root) and try again"
        );
        let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
        let log = profile.path().with_extension("log");
        let stderr = std::fs::File::create(&log).expect("a browser log file");
        let mut child = Command::new("sh")
            .arg("-c")
            // The pipe protocol reads fd 3 and writes fd 4: they become our stdin and stdout, and
            // the browser's own stdout goes to its log.
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >&2"#)
            .arg(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own process group, so that a timeout kills the renderers and helpers too.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        let input = child.stdin.take().expect("stdin was piped");
        let output = child.stdout.take().expect("stdout was piped");
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            loop {
                let mut message = Vec::new();
                let sent = match reader.read_until(0, &mut message) {
                    Ok(0) => Err("the browser closed its DevTools pipe".to_owned()),
                    Ok(_) => {
                        if message.last() == Some(&0) {
                            message.pop();
                        }
                        serde_json::from_slice(&message).map_err(|e| format!("bad DevTools message: {e}"))
                    }
                    Err(e) => Err(format!("cannot read the DevTools pipe: {e}")),
                };
                let stop = sent.is_err();
                if tx.send(sent).is_err() || stop {
                    break;
                }
            }
        });
        Self {
            child,
            input,
            messages,
            next_id: 0,
            deadline: Instant::now() + BROWSER_TIMEOUT,
            events: Vec::new(),
            log,
            _profile: profile,
        }
    }

    /// Fails the test with the reason and the end of the browser's log.
    fn fail(&self, reason: &str) -> ! {
        let mut log = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut log);
        }
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "headless chromium: {reason}\n--- end of its log ---\n{}",
            tail.join("\n")
        );
    }

    fn receive(&mut self) -> Value {
        let left = self.deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(Ok(message)) => message,
            Ok(Err(e)) => self.fail(&e),
            Err(RecvTimeoutError::Timeout) => self.fail(&format!(
                "no answer within {} s; killed",
                BROWSER_TIMEOUT.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => self.fail("the DevTools pipe reader stopped"),
        }
    }

    /// Sends a command (to a page when `session` is given) and returns its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method });
        message["params"] = params;
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("a JSON value serialises");
        bytes.push(0);
        if let Err(e) = self.input.write_all(&bytes).and_then(|()| self.input.flush()) {
            self.fail(&format!("cannot send {method}: {e}"));
        }
        loop {
            let message = self.receive();
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    self.fail(&format!("{method} failed: {error}"));
                }
                return message["result"].clone();
            }
            self.events.push(message);
        }
    }

    /// Waits for the event `method` of a page session and returns its parameters.
    fn wait_for(&mut self, session: &str, method: &str) -> Value {
        if let Some(event) = self
            .events
            .iter()
            .find(|e| e["method"] == json!(method) && e["sessionId"] == json!(session))
        {
            return event["params"].clone();
        }
        loop {
            let message = self.receive();
            self.events.push(message.clone());
            if message["method"] == json!(method) && message["sessionId"] == json!(session) {
                return message["params"].clone();
            }
        }
    }

    /// Opens `url` in a new page of `width` × `height` CSS pixels (`mobile`: a phone viewport)
    /// and waits for its load event. Returns the page's session id.
    fn open(&mut self, url: &str, width: u32, height: u32, mobile: bool) -> String {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        let session = attached["sessionId"]
            .as_str()
            .unwrap_or_else(|| self.fail("Target.attachToTarget gave no session"))
            .to_owned();
        let s = Some(session.as_str());
        for domain in ["Network", "Page", "Runtime", "Log"] {
            self.call(s, &format!("{domain}.enable"), json!({}));
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
        let navigated = self.call(s, "Page.navigate", json!({ "url": url }));
        if let Some(error) = navigated.get("errorText") {
            self.fail(&format!("cannot open {url}: {error}"));
        }
        self.wait_for(&session, "Page.loadEventFired");
        session
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn evaluate(&mut self, session: &str, expression: &str) -> Value {
        let result = self.call(
            Some(session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            self.fail(&format!("the page script failed: {exception}"));
        }
        result["result"]["value"].clone()
    }

    /// A PNG screenshot of the whole page.
    fn screenshot(&mut self, session: &str) -> Vec<u8> {
        let shot = self.call(
            Some(session),
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let data = shot["data"]
            .as_str()
            .unwrap_or_else(|| self.fail("Page.captureScreenshot gave no data"));
        base64_decode(data).unwrap_or_else(|| self.fail("Page.captureScreenshot gave bad base64"))
    }

    /// The events of one page session.
    fn page_events(&self, session: &str) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e["sessionId"] == json!(session))
            .cloned()
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Kill the whole process group (the browser and every helper it started); `Child::kill`
        // would reach only the browser process itself.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0_u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..chunk.len().saturating_sub(1)]);
    }
    Some(out)
}

/// What is wrong with the requests and console of a page that should load only `own_url`:
/// any request to another URL, any failed or blocked request, any HTTP error status, any
/// console error and any uncaught exception, each named by URL or text.
fn page_problems(events: &[Value], own_url: &str) -> Vec<String> {
    let mut urls = std::collections::HashMap::new();
    let mut problems = Vec::new();
    let mut loaded_own = false;
    for event in events {
        let p = &event["params"];
        match event["method"].as_str().unwrap_or_default() {
            "Network.requestWillBeSent" => {
                let url = p["request"]["url"].as_str().unwrap_or_default().to_owned();
                if url != own_url {
                    problems.push(format!("request to something other than the page: {url}"));
                }
                urls.insert(p["requestId"].to_string(), url);
            }
            "Network.loadingFailed" => {
                let url = urls.get(&p["requestId"].to_string()).cloned().unwrap_or_default();
                let reason = match (p["errorText"].as_str(), p["blockedReason"].as_str()) {
                    (_, Some(blocked)) => format!("blocked ({blocked})"),
                    (Some(error), None) if !error.is_empty() => error.to_owned(),
                    _ => "failed".to_owned(),
                };
                problems.push(format!("failed request {url}: {reason}"));
            }
            "Network.responseReceived" => {
                let status = p["response"]["status"].as_u64().unwrap_or(0);
                if status >= 400 {
                    problems.push(format!("HTTP {status} for {}", p["response"]["url"]));
                }
            }
            "Network.loadingFinished" => {
                loaded_own |= urls.get(&p["requestId"].to_string()).map(String::as_str) == Some(own_url);
            }
            "Log.entryAdded" if p["entry"]["level"] == json!("error") => {
                problems.push(format!("console error: {}", p["entry"]["text"]));
            }
            "Runtime.exceptionThrown" => {
                problems.push(format!("uncaught exception: {}", p["exceptionDetails"]));
            }
            _ => {}
        }
    }
    if !loaded_own {
        problems.push(format!("the page itself was never loaded: {own_url}"));
    }
    problems
}

fn file_url(path: &Path) -> String {
    let path = path.canonicalize().expect("the page file exists");
    let mut url = "file://".to_owned();
    for c in path.to_str().expect("temp paths are UTF-8").chars() {
        if c.is_ascii_alphanumeric() || "/-_.~".contains(c) {
            url.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(url, "%{b:02X}");
            }
        }
    }
    url
}

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

#[test]
fn base64_decodes_known_values() {
    for (text, bytes) in [
        ("", &b""[..]),
        ("Zg==", b"f"),
        ("Zm9v", b"foo"),
        ("iVBORw0KGgo=", b"\x89PNG\r\n\x1a\n"),
    ] {
        assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
    }
}
