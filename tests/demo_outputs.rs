//! The demo's outputs are byte-identical from version to version unless a change means them to
//! differ: the demo runs at 3,000 people with two fixed keys, and the SHA-256 of every output
//! (manifests without their `created_at`, `signature` and `reference_date` lines, the test folder
//! named `<root>`) is compared with the stored snapshot. A restructuring must leave the snapshot
//! untouched.

mod support;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};
use support::{demo_pipeline, files_under, linklab, normalised_outputs, text};

/// Writes a fixed key of 32 bytes (`byte` repeated) to `path`, readable by its owner only.
fn fixed_key(path: &Path, byte: u8) {
    fs::write(path, format!("{}\n", hex::encode([byte; 32]))).expect("a key can be written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("a key can be made private");
    }
}

#[test]
fn demo_outputs_are_byte_identical_to_the_stored_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let pipeline = demo_pipeline(root, 3000);
    fixed_key(&root.join("linkage.key"), 0x5a);
    fixed_key(&root.join("project.key"), 0xa5);
    let out = linklab(root, &["run", pipeline.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "the demo fails:\n{stdout}\n{stderr}");

    let mut listing = String::new();
    let extracts = root.join("extracts");
    for file in files_under(&extracts) {
        let bytes = fs::read(extracts.join(&file)).unwrap();
        writeln!(
            listing,
            "{}  extracts/{}",
            hex::encode(Sha256::digest(&bytes)),
            file.display()
        )
        .unwrap();
    }
    for (file, bytes) in normalised_outputs(root) {
        writeln!(
            listing,
            "{}  {}",
            hex::encode(Sha256::digest(&bytes)),
            file.display()
        )
        .unwrap();
    }
    insta::assert_snapshot!(listing);
}
