//! Headless Chromium over the DevTools protocol, for the browser tests of the evaluation report
//! (`crates/evaluate/tests/report_browser.rs`) and the dashboard
//! (`crates/dashboard/tests/dashboard_browser.rs`). Tests only: a dev-dependency, never built into
//! linklab.
//!
//! Chromium (Debian's `chromium` package; install it with `scripts/install-chromium.sh`) is driven
//! over `--remote-debugging-pipe` (JSON messages ending in a NUL byte on file descriptors 3 and
//! 4). Its `Network` domain reports every request the page makes, including `file://` loads and
//! requests the page's Content-Security-Policy blocks, which a net log does not show; the net log
//! also holds the browser's own background traffic, which is no part of the page.

#![forbid(unsafe_code)]

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

/// A running headless Chromium. Dropping it kills its whole process group.
#[derive(Debug)]
pub struct Browser {
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
    /// Starts headless Chromium with a fresh profile; the session may last `BROWSER_TIMEOUT`.
    pub fn launch() -> Self {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: the browser tests need Debian's chromium package; \
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
    pub fn fail(&self, reason: &str) -> ! {
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
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
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
    pub fn wait_for(&mut self, session: &str, method: &str) -> Value {
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
    pub fn open(&mut self, url: &str, width: u32, height: u32, mobile: bool) -> String {
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
    pub fn evaluate(&mut self, session: &str, expression: &str) -> Value {
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
    pub fn screenshot(&mut self, session: &str) -> Vec<u8> {
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
    pub fn page_events(&self, session: &str) -> Vec<Value> {
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
pub fn page_problems(events: &[Value], own_url: &str) -> Vec<String> {
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

/// The `file://` URL of a file, percent-encoded.
pub fn file_url(path: &Path) -> String {
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

#[cfg(test)]
mod tests {
    use super::base64_decode;

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
}
