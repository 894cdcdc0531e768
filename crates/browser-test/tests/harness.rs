//! The harness's own check, in headless Chromium: a page that asks for anything but itself is
//! caught, by URL and reason.

use linklab_browser_test::{Browser, file_url, page_problems};

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
        "request to something other than the page: http://example.invalid/pixel.png".to_owned(),
        "failed request http://example.invalid/pixel.png: blocked (csp)".to_owned(),
        format!("request to something other than the page: {missing}"),
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
            .any(|p| p.starts_with("the page itself was never loaded")),
        "a page that never loaded is a problem"
    );
}
