//! Shared fixtures: a demo extract configuration, a key with the spec's test bytes, and a
//! reader of the stage's output.
#![allow(dead_code)] // Each test file uses a different part of this module.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use linklab_pseudonymise::{
    Identifier, InputFormat, PseudonymiseConfig, PseudonymiseError, PseudonymiseManifest,
};
use linklab_store::{NoProgress, WorkDir};
use linklab_tokens::{FieldKind, MatchKey, SecretKey, TokenHasher};

/// The spec's test key: bytes 0x00..0x1f.
pub const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        fixture.write_key(&format!("{KEY_HEX}\n"), 0o600);
        fixture
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write_key(&self, text: &str, mode: u32) {
        let path = self.path("linkage.key");
        std::fs::write(&path, text).expect("write key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod key");
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).expect("write input");
        path
    }

    /// The demo extract's configuration, reading `input`.
    pub fn config(&self, input: &str) -> PseudonymiseConfig {
        PseudonymiseConfig {
            extract: "releases".into(),
            input: self.path(input),
            format: InputFormat::CSV,
            identifiers: vec![
                Identifier::new("forename", "first_name", FieldKind::Forename),
                Identifier::new("surname", "last_name", FieldKind::Name),
                Identifier::new("dob", "birth_date", FieldKind::Dob),
                Identifier::new("sex", "sex", FieldKind::Sex),
                Identifier::new("nino", "ni_number", FieldKind::Nino),
            ],
            keep: vec!["release_date".into(), "sex".into(), "offence_group".into()],
            types: BTreeMap::new(),
            match_keys: demo_keys(),
            compare: Vec::new(),
            key_file: self.path("linkage.key"),
            work_dir: WorkDir::new(self.path("work")),
            max_reject_fraction: 0.5,
            batch_rows: 1000,
            today: NaiveDate::from_ymd_opt(2025, 1, 1).expect("a date"),
            partition: None,
        }
    }

    pub fn run(&self, cfg: &PseudonymiseConfig) -> Result<PseudonymiseManifest, PseudonymiseError> {
        assert!(
            cfg.work_dir.root().starts_with(self.dir.path()),
            "tests write only into their temp folder"
        );
        linklab_pseudonymise::run(cfg, &NoProgress)
    }

    /// An error's message with the temp folder replaced by `[tmp]`.
    pub fn message(&self, err: &PseudonymiseError) -> String {
        err.to_string()
            .replace(&self.dir.path().display().to_string(), "[tmp]")
    }

    /// The output rows, rendered by [`render_rows`].
    pub fn output(&self, extract: &str) -> Vec<String> {
        render_rows(&WorkDir::new(self.path("work")).pseudonymised(extract))
    }
}

pub fn demo_keys() -> Vec<MatchKey> {
    vec![
        MatchKey::parse("nino", &["nino"], false).expect("valid key"),
        MatchKey::parse("name_dob_sex", &["forename", "surname", "dob", "sex"], false).expect("valid key"),
        MatchKey::parse(
            "soundex_initial_dob",
            &["soundex(surname)", "initial(forename)", "dob"],
            false,
        )
        .expect("valid key"),
    ]
}

/// The token of `key` over `components` with the test key, as its first 8 hex digits.
pub fn tok(key: &str, components: &[&str]) -> String {
    let hasher = TokenHasher::new(&SecretKey::from_bytes((0..32).collect()));
    let token = hasher.token(key, components);
    hex4(&token)
}

/// Every row of every part file in `dir`: `column=value` pairs, tokens as their first 8 hex
/// digits, nulls as `null`.
pub fn render_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in linklab_store::read_parts(dir, 1024)
        .expect("parts")
        .map(|b| b.expect("batch"))
    {
        for row in 0..batch.num_rows() {
            let mut cells = Vec::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let value = if column.is_null(row) {
                    "null".to_owned()
                } else if *column.data_type() == DataType::FixedSizeBinary(32) {
                    hex4(column.as_fixed_size_binary().value(row))
                } else {
                    arrow::util::display::array_value_to_string(column, row).expect("displayable")
                };
                cells.push(format!("{}={value}", field.name()));
            }
            rows.push(cells.join(" "));
        }
    }
    rows
}

/// The schema of the output: `name: type` per column.
pub fn schema_of(dir: &Path) -> Vec<String> {
    let batch = linklab_store::read_parts(dir, 16)
        .expect("parts")
        .next()
        .expect("a batch")
        .expect("batch");
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect()
}

/// The first 4 bytes as lowercase hex.
fn hex4(bytes: &[u8]) -> String {
    bytes[..4].iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
