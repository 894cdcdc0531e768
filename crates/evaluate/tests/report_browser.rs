//! `report.html` as a person sees it: the evaluation stage runs on small generated linked data,
//! and the page it writes is opened in headless Chromium (Debian's `chromium` package; install
//! it with `scripts/install-chromium.sh`).
//!
//! Chromium is driven through the DevTools protocol over `--remote-debugging-pipe` (JSON
//! messages ending in a NUL byte on file descriptors 3 and 4). Its `Network` domain reports every
//! request the page makes, including `file://` loads and requests the page's
//! Content-Security-Policy blocks, which a net log does not show; the net log also holds the
//! browser's own background traffic, which is no part of the page.
//!
//! Set `LINKLAB_REPORT_PNG=/abs/path.png` to also write a 1200 px wide screenshot of a report on
//! a demo-size cohort (20 000 people), as kept in `docs/report.png`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use linklab_evaluate::{EvaluateConfig, Outcome, OutcomeKind, run};
use linklab_store::{NoProgress, PartWriter, WorkDir};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest one browser session may take before it is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);
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
            "{CHROMIUM} is missing: the report browser test needs Debian's chromium package; \
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
                    problems.push(format!("request to something other than the report: {url}"));
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
        problems.push(format!("the report itself was never loaded: {own_url}"));
    }
    problems
}

fn file_url(path: &Path) -> String {
    let path = path.canonicalize().expect("the report file exists");
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

#[test]
fn the_check_names_blocked_failed_and_outside_requests() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:\"></head>\
<body><p>bad</p><img src=\"http://example.invalid/pixel.png\"><img src=\"missing.png\"></body></html>",
    )
    .expect("write the page");
    let url = file_url(&page);
    let mut browser = Browser::launch();
    let session = browser.open(&url, 800, 600, false);
    // A round trip after the load event, so that every event of the load has arrived.
    browser.evaluate(&session, "1");
    let problems = page_problems(&browser.page_events(&session), &url);
    let missing = url.replace("bad.html", "missing.png");
    for needle in [
        "request to something other than the report: http://example.invalid/pixel.png".to_owned(),
        "failed request http://example.invalid/pixel.png: blocked (csp)".to_owned(),
        format!("request to something other than the report: {missing}"),
        format!("failed request {missing}: blocked (csp)"),
    ] {
        assert!(
            problems.contains(&needle),
            "the check reports {needle:?}; it reported {problems:#?}"
        );
    }
    assert!(
        page_problems(&[], &url)
            .iter()
            .any(|p| p.starts_with("the report itself was never loaded")),
        "a page that never loaded is a problem"
    );
}

#[test]
fn base64_decodes_known_values() {
    for (text, bytes) in [
        ("", &b""[..]),
        ("Zg==", b"f"),
        ("Zm8=", b"fo"),
        ("Zm9v", b"foo"),
        ("iVBORw0KGgo=", b"\x89PNG\r\n\x1a\n"),
    ] {
        assert_eq!(base64_decode(text).as_deref(), Some(bytes), "{text}");
    }
    assert_eq!(base64_decode("Zm9v!"), None);
}
