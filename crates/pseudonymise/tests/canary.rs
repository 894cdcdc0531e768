//! The canary test: identifier values planted in good rows, malformed rows and rows that trigger
//! errors must not appear in any log line, error message, manifest or output file.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{Fixture, render_rows};
use linklab_pseudonymise::PseudonymiseConfig;

/// Raw canaries and their standard forms.
const CANARIES: &[&str] = &[
    "ZQXCANARYONE",
    "Zqxcanarytwo",
    "ZQXCANARYTWO",
    "JZ 98 76 54 C",
    "JZ987654",
    "17/07/1931",
    "19310717",
    "ZQXCANARYNOTES",
    "ZQXCANARYRAGGED",
    "ZQXCANARYLATIN",
    "ZQXCANARYHEADER",
];

const HEADER: &str = "first_name,last_name,birth_date,sex,ni_number,release_date,offence_group,notes\n";

fn good_row() -> String {
    "Zqxcanarytwo,ZQXCANARYONE,17/07/1931,F,JZ 98 76 54 C,2024-01-01,1,ZQXCANARYNOTES\n".to_owned()
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push((
                path.display().to_string(),
                std::fs::read(&path).expect("read output"),
            ));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[test]
fn no_canary_escapes() {
    let fx = Fixture::new();
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);
    let mut texts: Vec<String> = Vec::new();
    let mut successes = 0;

    let mut scenario = |name: &str, bytes: Vec<u8>, change: &dyn Fn(&mut PseudonymiseConfig)| {
        let file = format!("{name}.csv");
        fx.write(&file, &bytes);
        let mut cfg = fx.config(&file);
        cfg.extract = name.to_owned();
        change(&mut cfg);
        match tracing::dispatcher::with_default(&dispatch, || fx.run(&cfg)) {
            Ok(manifest) => {
                successes += 1;
                texts.push(format!("{manifest:?}"));
                texts.push(serde_json::to_string(&manifest).expect("json"));
                texts.extend(render_rows(&cfg.work_dir.pseudonymised(name)));
            }
            Err(err) => {
                texts.push(err.to_string());
                texts.push(format!("{err:?}"));
                let mut source = std::error::Error::source(&err);
                while let Some(s) = source {
                    texts.push(s.to_string());
                    source = s.source();
                }
            }
        }
    };

    // Good rows, with malformed rows mixed in (under the reject threshold).
    let mut mixed = format!("{HEADER}{}{}", good_row(), good_row()).into_bytes();
    mixed.extend_from_slice(b"Zqxcanarytwo,ZQXCANARYRAGGED,17/07/1931\n");
    mixed.extend_from_slice(b"Zqxcanarytwo,ZQXCANARYLATIN\xe9,17/07/1931,F,JZ 98 76 54 C,2024-01-01,1,x\n");
    mixed.extend_from_slice(good_row().repeat(6).as_bytes());
    scenario("good", mixed.clone(), &|_| {});
    // Canaries in identifier fields where they are invalid for the kind (a nino as a date of
    // birth, a date as a nino). The kept `sex` column holds a plain value.
    scenario(
        "invalid",
        format!("{HEADER}ZQXCANARYONE,Zqxcanarytwo,JZ 98 76 54 C,F,17/07/1931,2024-01-01,1,x\n").into_bytes(),
        &|_| {},
    );
    // Too many rejects.
    scenario("rejects", mixed.clone(), &|cfg| cfg.max_reject_fraction = 0.0);
    // A late value that does not fit its type, next to canaries.
    let mut late = format!("{HEADER}{}", good_row()).into_bytes();
    late.extend_from_slice(
        b"Zqxcanarytwo,ZQXCANARYONE,17/07/1931,F,JZ 98 76 54 C,2024-01-01,ZQXCANARYONE,x\n",
    );
    scenario("late", late, &|cfg| cfg.batch_rows = 1);
    // No header: the first record is taken as the header and the columns are missing.
    scenario(
        "headerless",
        good_row()
            .replace("ZQXCANARYNOTES", "ZQXCANARYHEADER")
            .repeat(3)
            .into_bytes(),
        &|_| {},
    );
    // The wrong delimiter.
    scenario("delimiter", mixed.clone(), &|cfg| {
        cfg.format = linklab_pseudonymise::InputFormat::Csv {
            delimiter: b';',
            encoding: linklab_pseudonymise::Encoding::Utf8,
        };
    });
    // A duplicated column name in the header.
    scenario(
        "duplicate",
        format!("{}{}", HEADER.replace("notes", "sex"), good_row()).into_bytes(),
        &|_| {},
    );
    // A key with loose permissions.
    fx.write_key(&format!("{}\n", common::KEY_HEX), 0o644);
    scenario("key", mixed, &|_| {});
    fx.write_key(&format!("{}\n", common::KEY_HEX), 0o600);
    assert_eq!(successes, 2, "the good and invalid scenarios succeed: {texts:#?}");

    let mut files = Vec::new();
    files_under(fx.dir.path().join("work").as_path(), &mut files);
    assert!(
        files.iter().any(|(name, _)| name.ends_with(".parquet")),
        "outputs were written"
    );
    let logs = logs.0.lock().expect("not poisoned").clone();
    assert!(contains(&logs, "pseudonymised extract"), "the summary was logged");
    for canary in CANARIES {
        assert!(!contains(&logs, canary), "canary {canary} in the logs");
        for text in &texts {
            assert!(!contains(text.as_bytes(), canary), "canary {canary} in {text}");
        }
        for (name, bytes) in &files {
            assert!(!contains(bytes, canary), "canary {canary} in {name}");
        }
    }
}
