//! The bad-input corpus: every way an attacker or a careless operator was seen to break linklab,
//! one case a file in `tests/corpus/*.toml`, each run through the real command line.
//!
//! A case starts from a small synthetic world (the demo pipeline as `demo.toml`, its extracts
//! under `extracts/` with canary identifiers planted in them, and both keys), edits or adds files,
//! runs its steps and checks each step's exit code. The last step's stderr (text logs) is an insta
//! snapshot named after the case. After every case, no canary identifier and no byte of a key may
//! appear in any output, log or error.
//!
//! A case file:
//!
//! ```toml
//! about = "what the case shows"
//! [[edit]]                 # a text replacement in a file of the world; `find` must occur
//! file = "demo.toml"
//! find = 'keep = ["record_id", "programme_start"]'
//! replace = 'keep = ["record_id", " Surname"]'
//! [[write]]                # a whole file, written before the steps
//! file = "extra.csv"
//! text = "a,b\n1,2\n"
//! [[step]]                 # `{pipeline}` is the world's `demo.toml`
//! args = ["run", "{pipeline}"]
//! exit = 1
//! ```
//!
//! `CORPUS_CASE=name cargo test -p linklab --test bad_input` runs one case.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use support::{demo_pipeline, files_under, linklab, text};

/// People in the corpus world: enough for every stage to run, small enough to be quick.
const PEOPLE: u32 = 1500;

/// The canary identifiers planted in the world's extracts, and any a case writes itself: none may
/// appear in an output, a log or an error (compared case-insensitively).
const CANARIES: [&str; 3] = ["ZQXCANARY", "QQ123456C", "CANARYFORENAME"];

/// The world every case copies: built once per test process.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a scratch folder");
            let root = dir.path();
            let pipeline = demo_pipeline(root, PEOPLE);
            let synth = linklab(
                root,
                &[
                    "synth",
                    "--people",
                    &PEOPLE.to_string(),
                    "--seed",
                    "7",
                    "--out",
                    "extracts",
                ],
            );
            assert!(synth.status.success(), "synth: {:?}", text(&synth));
            for key in ["linkage.key", "project.key"] {
                let out = linklab(root, &["keygen", "--out", key]);
                assert!(out.status.success(), "keygen: {:?}", text(&out));
            }
            plant_canaries(
                &root.join("extracts/releases.csv"),
                &[
                    ("last_name", "Zqxcanary"),
                    ("ni_number", "QQ123456C"),
                    ("first_name", "Canaryforename"),
                    // Free text in a kept identifier: only its standardised value may pass.
                    ("sex", "ZQXCANARY QQ123456C"),
                ],
            );
            plant_canaries(
                &root.join("extracts/participants.csv"),
                &[
                    ("Surname", "Zqxcanary"),
                    ("NINO", "QQ123456C"),
                    ("Forename", "Canaryforename"),
                ],
            );
            assert!(pipeline.exists());
            dir
        })
        .path()
}

/// Appends a copy of the first data row of a CSV extract with canary values in some columns.
fn plant_canaries(csv: &Path, columns: &[(&str, &str)]) {
    let text = fs::read_to_string(csv).expect("a synthetic extract is UTF-8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let first = lines.find(|l| !l.contains('"')).expect("a plain data row");
    let mut fields: Vec<String> = first.split(',').map(str::to_owned).collect();
    for &(column, canary) in columns {
        let at = header
            .iter()
            .position(|h| *h == column)
            .unwrap_or_else(|| panic!("{} has a column {column}", csv.display()));
        canary.clone_into(&mut fields[at]);
    }
    let mut text = text;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&fields.join(","));
    text.push('\n');
    fs::write(csv, text).expect("the extract can be rewritten");
}

fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(&file);
        fs::create_dir_all(target.parent().expect("a file has a folder")).expect("mkdir");
        fs::copy(from.join(&file), &target).expect("copy");
    }
}

/// Every case file, sorted by name, or the one `CORPUS_CASE` names.
fn cases() -> Vec<(String, PathBuf)> {
    let dir = support::repo_root().join("tests/corpus");
    let only = std::env::var("CORPUS_CASE").ok();
    let mut cases: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .expect("tests/corpus exists")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .filter(|(name, _)| only.as_ref().is_none_or(|o| o == name))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no corpus case matches {only:?}");
    cases
}

fn as_str<'a>(v: &'a toml::Value, key: &str, case: &str) -> &'a str {
    v.get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("case {case}: `{key}` is a string"))
}

/// Runs one case in its own copy of the world; returns everything it printed.
fn run_case(name: &str, path: &Path) -> String {
    let case: toml::Table = toml::from_str(&fs::read_to_string(path).expect("a case file"))
        .unwrap_or_else(|e| panic!("case {name} does not parse: {e}"));
    assert!(case.contains_key("about"), "case {name} says what it is `about`");
    let dir = tempfile::tempdir().expect("a scratch folder");
    let root = dir.path();
    copy_tree(template(), root);
    let empty = Vec::new();
    let list = |key: &str| case.get(key).and_then(toml::Value::as_array).unwrap_or(&empty);
    for edit in list("edit") {
        let file = root.join(as_str(edit, "file", name));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("case {name}: {e}"));
        let find = as_str(edit, "find", name);
        assert!(
            text.contains(find),
            "case {name}: {find:?} is not in {}",
            file.display()
        );
        fs::write(&file, text.replace(find, as_str(edit, "replace", name))).expect("write");
    }
    for write in list("write") {
        let file = root.join(as_str(write, "file", name));
        fs::create_dir_all(file.parent().expect("a folder")).expect("mkdir");
        fs::write(&file, as_str(write, "text", name)).expect("write");
    }
    let steps = list("step");
    assert!(!steps.is_empty(), "case {name} has a [[step]]");
    let pipeline = root.join("demo.toml");
    let mut printed = String::new();
    let mut last_stderr = String::new();
    for (i, step) in steps.iter().enumerate() {
        let mut args: Vec<String> = step
            .get("args")
            .and_then(toml::Value::as_array)
            .unwrap_or_else(|| panic!("case {name}: a step has `args`"))
            .iter()
            .map(|a| {
                a.as_str()
                    .expect("args are strings")
                    .replace("{pipeline}", pipeline.to_str().unwrap())
            })
            .collect();
        args.extend(["--log-format".into(), "text".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = linklab(root, &args);
        let (stdout, stderr) = text(&out);
        let expected = step.get("exit").and_then(toml::Value::as_integer).unwrap_or(0);
        assert_eq!(
            i64::from(out.status.code().unwrap_or(-1)),
            expected,
            "case {name}, step {}: {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            i + 1
        );
        printed.push_str(&stdout);
        printed.push_str(&stderr);
        last_stderr = stderr;
    }
    assert_no_canary(name, root, &printed);
    let redacted = last_stderr.replace(root.to_str().unwrap(), "[DIR]");
    insta::assert_snapshot!(name.to_owned(), redacted);
    printed
}

/// No canary and no key, in anything the case printed or any file under work/ and release/.
fn assert_no_canary(name: &str, root: &Path, printed: &str) {
    let mut needles: Vec<String> = CANARIES.iter().map(|c| c.to_ascii_lowercase()).collect();
    for key in ["linkage.key", "project.key"] {
        if let Ok(hex) = fs::read_to_string(root.join(key)) {
            needles.push(hex.trim().to_ascii_lowercase());
        }
    }
    let mut haystacks = vec![("output".to_owned(), printed.to_ascii_lowercase())];
    for folder in ["work", "release"] {
        for file in files_under(&root.join(folder)) {
            let text = readable(&root.join(folder).join(&file)).to_ascii_lowercase();
            haystacks.push((format!("{folder}/{}", file.display()), text));
        }
    }
    for (place, text) in &haystacks {
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "case {name}: a canary or key leaked into {place}"
            );
        }
    }
}

/// A file's text; a Parquet file's decoded rows (its bytes are compressed, so a plain search of
/// them would find nothing).
fn readable(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "parquet") {
        let file = fs::File::open(path).expect("an output can be opened");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::build)
            .unwrap_or_else(|e| panic!("{} is Parquet: {e}", path.display()));
        let batches: Vec<_> = reader.map(|b| b.expect("a batch decodes")).collect();
        arrow::util::pretty::pretty_format_batches(&batches)
            .expect("batches format")
            .to_string()
    } else {
        String::from_utf8_lossy(&fs::read(path).expect("an output can be read")).into_owned()
    }
}

#[test]
fn every_bad_input_gets_its_exit_code_and_message_and_leaks_nothing() {
    for (name, path) in cases() {
        run_case(&name, &path);
    }
}

/// The corpus world itself runs end to end: the canaries are in the extracts, so a leak check
/// that finds none means something.
#[test]
fn the_corpus_world_plants_its_canaries() {
    let releases = fs::read_to_string(template().join("extracts/releases.csv")).unwrap();
    for canary in ["Zqxcanary", "QQ123456C", "Canaryforename"] {
        assert!(releases.contains(canary));
    }
}
