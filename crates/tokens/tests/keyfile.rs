//! Key files: the rules for reading them, keygen, and the wording of every refusal.

use std::fs;
use std::path::{Path, PathBuf};

use linklab_tokens::{KeyError, SecretKey, keygen};

/// A temporary folder that key files are written into.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("a temporary folder"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// Writes a key file with mode 0600 (on Unix).
    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, content).expect("write a key file");
        set_mode(&path, 0o600);
        path
    }

    /// An error's message with the folder replaced by `<dir>`, for snapshots.
    fn message(&self, error: &KeyError) -> String {
        error
            .to_string()
            .replace(&self.0.path().display().to_string(), "<dir>")
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) {}

/// 64 hex digits of the spec's test key, bytes 0x00 to 0x1f.
const SPEC_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

#[test]
fn valid_key_files_are_read() {
    let dir = Dir::new();
    for (name, content) in [
        ("bare.key", SPEC_KEY_HEX.to_owned()),
        ("newline.key", format!("{SPEC_KEY_HEX}\n")),
        ("crlf.key", format!("{SPEC_KEY_HEX}\r\n")),
        ("spaces.key", format!("{SPEC_KEY_HEX} \t\n\n")),
        ("upper.key", SPEC_KEY_HEX.to_uppercase()),
    ] {
        let key = SecretKey::from_file(dir.write(name, &content)).expect(name);
        assert_eq!(key.fingerprint(), "9c78d894560d7caf", "{name}");
    }
    // 33 and 64 bytes are accepted too; they are different keys.
    for digits in [66, 128] {
        let content: String = "ab".repeat(digits / 2);
        let key = SecretKey::from_file(dir.write("long.key", &content)).expect("valid length");
        assert_ne!(key.fingerprint(), "9c78d894560d7caf");
    }
}

#[test]
fn bad_key_files_are_refused_without_showing_content() {
    let dir = Dir::new();
    let secret_looking = "5ec7e7";
    let cases = [
        ("short.key", format!("{}\n", &SPEC_KEY_HEX[..62])),
        ("odd.key", format!("{SPEC_KEY_HEX}a\n")),
        (
            "nonhex.key",
            format!("{}zz{secret_looking}\n", &SPEC_KEY_HEX[..56]),
        ),
        ("leading-space.key", format!(" {SPEC_KEY_HEX}\n")),
        (
            "inner-space.key",
            format!("{} {}\n", &SPEC_KEY_HEX[..32], &SPEC_KEY_HEX[32..]),
        ),
        ("0x.key", format!("0x{SPEC_KEY_HEX}\n")),
        ("toolong.key", format!("{}\n", "ab".repeat(65))),
        ("huge.key", "ab".repeat(2000)),
        ("empty.key", String::new()),
    ];
    let mut messages = Vec::new();
    for (name, content) in &cases {
        let error = SecretKey::from_file(dir.write(name, content)).expect_err(name);
        let message = dir.message(&error);
        assert!(!message.contains(secret_looking) && !message.contains("0001020304"));
        messages.push(message);
    }
    messages.push(dir.message(&SecretKey::from_file(dir.path("absent.key")).expect_err("absent")));
    insta::assert_snapshot!(messages.join("\n"));
}

#[cfg(unix)]
#[test]
fn key_files_others_can_read_are_refused() {
    let dir = Dir::new();
    let path = dir.write("loose.key", SPEC_KEY_HEX);
    let mut messages = Vec::new();
    for mode in [0o644, 0o640, 0o604, 0o601, 0o610] {
        set_mode(&path, mode);
        let error = SecretKey::from_file(&path).expect_err("loose permissions");
        assert!(matches!(error, KeyError::LoosePermissions { .. }));
        messages.push(dir.message(&error));
    }
    for mode in [0o400, 0o600, 0o700] {
        set_mode(&path, mode);
        assert!(SecretKey::from_file(&path).is_ok(), "mode {mode:o}");
    }
    insta::assert_snapshot!(messages.join("\n"));
}

#[test]
fn keygen_writes_a_private_key_once() {
    let dir = Dir::new();
    let path = dir.path("new.key");
    let fingerprint = keygen(&path).expect("a new key");
    let content = fs::read_to_string(&path).expect("the new key file");
    assert_eq!(content.len(), 65);
    assert!(
        content[..64]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(content.ends_with('\n'));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = SecretKey::from_file(&path).expect("keygen's output is a valid key file");
    assert_eq!(key.fingerprint(), fingerprint);
    assert_eq!(fingerprint.len(), 16);

    let error = keygen(&path).expect_err("an existing file");
    assert!(matches!(error, KeyError::Exists { .. }));
    assert_eq!(fs::read_to_string(&path).expect("still there"), content);
    let other = keygen(dir.path("other.key")).expect("a second key");
    assert_ne!(other, fingerprint, "two keys from the OS differ");
    let missing_dir = keygen(dir.path("no/such/dir/x.key")).expect_err("no folder");
    insta::assert_snapshot!(format!("{}\n{}", dir.message(&error), dir.message(&missing_dir)));
}

/// A key path that is not a plain file is refused at once: a FIFO would otherwise block the
/// read forever (while the stage holds the work_dir lock).
#[cfg(unix)]
#[test]
fn a_key_path_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = Dir::new();
    let fifo = dir.path("fifo.key");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    set_mode(&fifo, 0o600);
    let folder = dir.path("folder.key");
    fs::create_dir(&folder).expect("mkdir");
    let messages: Vec<String> = [fifo, folder, PathBuf::from("/dev/zero")]
        .iter()
        .map(|path| {
            let error = SecretKey::from_file(path).expect_err("not a regular file");
            assert!(matches!(error, KeyError::NotAFile { .. }), "{error}");
            dir.message(&error)
        })
        .collect();
    insta::assert_snapshot!(messages.join("\n"), @r"
    key file <dir>/fifo.key is not a regular file: a key file must be a plain file of hexadecimal digits
    key file <dir>/folder.key is not a regular file: a key file must be a plain file of hexadecimal digits
    key file /dev/zero is not a regular file: a key file must be a plain file of hexadecimal digits
    ");
}

#[test]
fn signatures_depend_on_key_domain_and_message() {
    let a = linklab_tokens::SecretKey::from_bytes(vec![1; 32]);
    let b = linklab_tokens::SecretKey::from_bytes(vec![2; 32]);
    let sig = a.sign("linklab/test/v1", b"message");
    assert_eq!(sig.len(), 64);
    assert_eq!(sig, a.sign("linklab/test/v1", b"message"));
    assert_ne!(sig, b.sign("linklab/test/v1", b"message"));
    assert_ne!(sig, a.sign("linklab/test/v2", b"message"));
    assert_ne!(sig, a.sign("linklab/test/v1", b"messagf"));
}
