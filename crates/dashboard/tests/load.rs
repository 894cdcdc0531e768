//! Which folders the dashboard accepts, what it reads from them, and what it writes.

mod common;

use std::path::{Path, PathBuf};

use common::{Spec, six, write_release};
use linklab_dashboard::{DashboardError, INDEX_NAME, Verdict, load, pool, render, write_dashboard};
use sha2::{Digest, Sha256};

fn releases(parent: &Path, specs: &[Spec]) -> Vec<PathBuf> {
    specs.iter().map(|s| write_release(parent, s)).collect()
}

/// The error of loading `dirs`, as the command line prints it.
fn refused(dirs: &[PathBuf]) -> (DashboardError, String) {
    let err = load(dirs).expect_err("the dashboard refuses this input");
    let text = err.to_string();
    (err, text)
}

#[test]
fn generated_releases_load_with_their_metadata_and_effects() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs = releases(tmp.path(), &six());
    let programmes = load(&dirs).expect("six checked releases");
    let names: Vec<&str> = programmes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "North Mentors",
            "Second Chance",
            "Open Door",
            "Learning Inside",
            "Fresh Start College",
            "Work Ready"
        ]
    );
    let first = &programmes[0];
    assert_eq!(
        (
            first.organisation.as_str(),
            first.kind.as_str(),
            first.start.as_str(),
            first.end.as_str()
        ),
        ("North Mentors Trust", "mentoring", "2022-04-01", "2024-03-31")
    );
    assert_eq!(
        (first.people, first.comparison_people, first.has_report),
        (Some(820), Some(820), true)
    );
    let verdicts: Vec<(&str, Verdict)> = first
        .effects
        .iter()
        .map(|e| (e.outcome.as_str(), e.result))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("reoffended", Verdict::Significant),
            ("employed", Verdict::Inconclusive)
        ]
    );
    assert!(first.survival.len() >= 4, "{:?}", first.survival);
}

#[test]
fn without_programme_metadata_the_folder_name_and_unspecified_are_shown() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let mut spec = six().remove(0);
    spec.meta = None;
    let dir = write_release(tmp.path(), &spec);
    let p = load(&[dir]).expect("a checked release").remove(0);
    assert_eq!(
        [
            p.name.as_str(),
            p.organisation.as_str(),
            p.kind.as_str(),
            p.start.as_str(),
            p.end.as_str()
        ],
        [
            "north-mentors",
            "unspecified",
            "unspecified",
            "unspecified",
            "unspecified"
        ]
    );
}

#[test]
fn a_folder_that_fails_check_release_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let mut dirs = releases(tmp.path(), &six()[..2]);
    // A published group of 6 people breaks the threshold of 10.
    let mut small = six().remove(2);
    small.people = 6;
    dirs.push(write_release(tmp.path(), &small));
    let (err, text) = refused(&dirs);
    assert!(matches!(err, DashboardError::CheckFailed { .. }), "{err:?}");
    assert!(
        text.contains(&dirs[2].display().to_string()) && text.contains("fails check-release"),
        "{text}"
    );

    // A file the manifest does not list.
    let other = write_release(tmp.path(), &six().remove(3));
    std::fs::write(other.join("notes.txt"), "x").expect("write an extra file");
    let (err, text) = refused(std::slice::from_ref(&other));
    assert!(matches!(err, DashboardError::CheckFailed { .. }), "{err:?}");
    assert!(
        text.contains(&other.display().to_string()) && text.contains("notes.txt"),
        "{text}"
    );
}

#[test]
fn a_folder_that_is_not_a_release_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let good = write_release(tmp.path(), &six().remove(0));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("create a folder");
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).expect("create a folder");
    std::fs::write(
        foreign.join("release-manifest.json"),
        "{\"format\": \"something else\"}",
    )
    .expect("write");
    let file = good.join("impact.csv");
    for (bad, needle) in [
        (empty.clone(), "has no release-manifest.json"),
        (foreign.clone(), "not a release manifest"),
        (file.clone(), "not a folder"),
        (tmp.path().join("missing"), "not a folder"),
    ] {
        let (err, text) = refused(&[good.clone(), bad.clone()]);
        assert!(matches!(err, DashboardError::NotARelease { .. }), "{err:?}");
        assert!(
            text.starts_with(&format!("{} is not a release folder", bad.display())) && text.contains(needle),
            "{text}"
        );
    }
    assert!(matches!(load(&[]), Err(DashboardError::NoReleases)));
}

#[test]
fn two_programmes_with_one_name_are_refused_naming_both_folders() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let mut specs = six();
    specs[4].meta.as_mut().expect("metadata").name = "North Mentors".to_owned();
    let dirs = releases(tmp.path(), &specs);
    let (err, text) = refused(&dirs);
    assert!(matches!(err, DashboardError::DuplicateName { .. }), "{err:?}");
    assert!(
        text.contains("\"North Mentors\"")
            && text.contains(&dirs[0].display().to_string())
            && text.contains(&dirs[4].display().to_string()),
        "{text}"
    );
}

#[test]
fn pooling_groups_each_type_and_outcome_with_two_or_more_programmes() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let programmes = load(&releases(tmp.path(), &six())).expect("six checked releases");
    let groups: Vec<String> = pool(&programmes)
        .iter()
        .map(|g| {
            format!(
                "{} / {} / {}: {}",
                g.kind,
                g.outcome,
                g.measure,
                g.programmes.join(", ")
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            "education / employed / rate: Learning Inside, Fresh Start College",
            "education / reoffended / rate: Learning Inside, Fresh Start College",
            "mentoring / employed / rate: North Mentors, Second Chance, Open Door",
            "mentoring / reoffended / rate: North Mentors, Second Chance, Open Door",
        ]
    );
}

/// The text between `open` and the next `close` after it.
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap_or_else(|| panic!("no {open:?}")) + open.len();
    let end = start
        + text[start..]
            .find(close)
            .unwrap_or_else(|| panic!("no {close:?}"));
    &text[start..end]
}

fn b64_sha256(text: &str) -> String {
    // Base64 of the digest, written out independently of the crate's encoder.
    let digest = Sha256::digest(text.as_bytes());
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bits: Vec<u8> = digest
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let mut out: String = bits
        .chunks(6)
        .map(|c| {
            let mut v = 0;
            for (i, bit) in c.iter().enumerate() {
                v |= usize::from(*bit) << (5 - i);
            }
            char::from(alphabet[v])
        })
        .collect();
    out.push('=');
    out
}

#[test]
fn the_page_is_one_file_whose_policy_allows_only_its_own_script_and_style() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs = releases(&tmp.path().join("releases"), &six());
    let out = tmp.path().join("out");
    let page_path = write_dashboard(&dirs, &out).expect("the dashboard is written");
    assert_eq!(page_path, out.join(INDEX_NAME));
    let entries: Vec<String> = std::fs::read_dir(&out)
        .expect("the output folder")
        .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, [INDEX_NAME], "nothing but the page is written");
    let page = std::fs::read_to_string(&page_path).expect("the page");
    let csp = between(
        &page,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"",
        "\"",
    );
    let style = between(&page, "<style>", "</style>");
    let script = between(&page, "<script>", "</script>");
    assert_eq!(
        csp,
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; form-action 'none'",
            b64_sha256(script),
            b64_sha256(style)
        )
    );
    assert_eq!(
        page.matches("<script").count(),
        2,
        "the data block and the script"
    );
    // The SVG namespace is a name, not an address the page loads.
    let without_namespace = page.replace("\"http://www.w3.org/2000/svg\"", "");
    for outside in [
        "http:",
        "https:",
        "src=",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
    ] {
        assert!(
            !without_namespace.contains(outside),
            "the page refers to nothing outside itself: {outside}"
        );
    }
    let data: serde_json::Value = serde_json::from_str(between(
        &page,
        "<script type=\"application/json\" id=\"data\">",
        "</script>",
    ))
    .expect("the data block is JSON");
    let links: Vec<&str> = data["programmes"]
        .as_array()
        .expect("programmes")
        .iter()
        .map(|p| p["report"].as_str().expect("a report link"))
        .collect();
    assert_eq!(links[0], "../releases/north-mentors/report.html");
    assert_eq!(links.len(), 6);
}

#[test]
fn render_links_reports_from_the_folder_the_page_goes_to() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs = releases(tmp.path(), &six()[..2]);
    let programmes = load(&dirs).expect("checked releases");
    let page = render(&programmes, tmp.path());
    assert!(
        page.contains("\"report\":\"north-mentors/report.html\""),
        "links from the release_dir"
    );
}

#[test]
fn suppressed_and_missing_estimates_are_not_published_and_carry_no_figure() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dir = write_release(tmp.path(), &six().remove(0));
    common::rewrite(
        &dir,
        "impact.csv",
        "outcome,measure,treated_persons,comparison_persons,treated_value,comparison_value,difference,ci_low,ci_high,p_value\n\
         reoffended,rate,820,820,[c],[c],[c],[c],[c],[c]\n\
         employed,no_estimate,820,820,\"rate: the comparison group has no variation\",,,,,\n\
         '=cmd,rate,820,820,0.5000,0.4000,0.1000,0.0500,0.1500,0.0001\n\
         days_to_reoffence,log_rank,820,820,0.8000,0.8100,-0.0100,-0.0500,0.0300,0.6\n",
    );
    let p = load(&[dir]).expect("the release passes the check").remove(0);
    let rows: Vec<String> = p
        .effects
        .iter()
        .map(|e| {
            format!(
                "{} {} {:?} {:?} {:?}",
                e.outcome, e.measure, e.result, e.difference, e.treated_value
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "reoffended rate NotPublished None None",
            "employed rate NotPublished None None",
            "=cmd rate Significant Some(0.1) Some(0.5)",
            "days_to_reoffence log_rank Inconclusive Some(-0.01) Some(0.8)",
        ]
    );
}

#[test]
fn the_page_is_never_written_into_a_release_folder() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let dirs = releases(tmp.path(), &six()[..2]);
    let err = write_dashboard(&dirs, &dirs[0]).expect_err("the output folder is a release");
    assert!(matches!(err, DashboardError::OutIsRelease { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{} is a release folder", dirs[0].display())),
        "{err}"
    );
    assert!(!dirs[0].join(INDEX_NAME).exists());
    assert!(load(&dirs).is_ok(), "the releases still pass the check");
}

#[test]
fn a_survival_curve_the_release_withheld_is_left_out_not_refused() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let spec = six().remove(0);
    let dir = write_release(tmp.path(), &spec);
    let shown = load(std::slice::from_ref(&dir))
        .expect("a checked release")
        .remove(0);
    let comparison = shown.survival.iter().filter(|s| s.group == "comparison").count();
    // The release withholds the treated curve whole: each step's day stays, its counts and
    // survival are written `[c]`.
    let text = std::fs::read_to_string(dir.join("survival.csv")).expect("survival.csv");
    let withheld: String = text
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            if fields[1] == "treated" {
                format!("{},treated,{},[c],[c],[c]", fields[0], fields[2])
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect();
    common::rewrite(&dir, "survival.csv", &withheld);
    let p = load(&[dir])
        .expect("a release with a withheld curve is shown")
        .remove(0);
    assert!(
        p.survival.iter().all(|s| s.group == "comparison"),
        "{:?}",
        p.survival
    );
    assert_eq!(p.survival.len(), comparison);
}
