//! Key files: reading, making, and fingerprinting linkage keys.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The fewest key bytes the spec accepts.
const MIN_KEY_BYTES: usize = 32;
/// The most key bytes the spec accepts.
const MAX_KEY_BYTES: usize = 64;
/// The number of random bytes [`keygen`] makes.
const KEYGEN_BYTES: usize = 32;
/// How much of a key file is read at most: the longest key plus room for trailing whitespace.
/// A longer file is refused as too long without reading the rest.
const MAX_FILE_BYTES: u64 = 1024;
/// The message whose HMAC is a key's fingerprint.
const FINGERPRINT_MESSAGE: &[u8] = b"linklab/key-fingerprint/v1";

/// Errors reading or making a key file. They name the file and the rule broken, never the
/// file's content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be opened, read or written.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The path is not a regular file (a folder, a FIFO, a device).
    #[error("key file {} is not a regular file: a key file must be a plain file of hexadecimal digits", path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// On Unix, the file's permissions let its group or others read it.
    #[error(
        "key file {} can be accessed by its group or others (mode {mode:04o}); a key file must be readable by its owner only: run chmod 600 on it",
        path.display()
    )]
    LoosePermissions {
        /// The key file.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The content is not hexadecimal text (after trailing whitespace is removed).
    #[error(
        "key file {} is not valid: a key file must hold only hexadecimal digits, optionally followed by whitespace",
        path.display()
    )]
    NotHex {
        /// The key file.
        path: PathBuf,
    },
    /// The content has an odd number of hexadecimal digits.
    #[error(
        "key file {} is not valid: it holds an odd number of hexadecimal digits, so not a whole number of bytes",
        path.display()
    )]
    OddLength {
        /// The key file.
        path: PathBuf,
    },
    /// The key is shorter than 32 bytes.
    #[error(
        "key file {} holds a key that is too short: a key must have at least {MIN_KEY_BYTES} bytes (64 hexadecimal digits)",
        path.display()
    )]
    TooShort {
        /// The key file.
        path: PathBuf,
    },
    /// The key is longer than 64 bytes.
    #[error(
        "key file {} holds too much: a key must have at most {MAX_KEY_BYTES} bytes (128 hexadecimal digits)",
        path.display()
    )]
    TooLong {
        /// The key file.
        path: PathBuf,
    },
    /// [`keygen`] was asked to write over an existing file.
    #[error("key file {} already exists; keygen never overwrites a key", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The operating system could not supply random bytes.
    #[error("cannot get random bytes from the operating system for key file {}: {reason}", path.display())]
    Random {
        /// The key file that was to be written.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
}

/// A secret key for HMAC-SHA256. Its bytes are wiped from memory when it is dropped, it cannot be
/// cloned, and its `Debug` output shows only its fingerprint.
pub struct SecretKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretKey {
    /// Reads a key file: 64 to 128 hexadecimal digits (32 to 64 bytes), optionally followed by
    /// whitespace. On Unix the file must not be accessible by group or others.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let io_error = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        // A FIFO, a device or a folder is refused before it is opened: opening a FIFO for
        // reading blocks until something writes to it, which would hang the stage while it
        // holds the work_dir lock. The opened file is checked again below.
        let not_regular = || KeyError::NotAFile {
            path: path.to_owned(),
        };
        if !std::fs::metadata(path).map_err(io_error)?.is_file() {
            return Err(not_regular());
        }
        let file = File::open(path).map_err(io_error)?;
        if !file.metadata().map_err(io_error)?.is_file() {
            return Err(not_regular());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The permissions of the file actually opened, so a swap after a check cannot fool it.
            let mode = file.metadata().map_err(io_error)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::LoosePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        // Sized up front so that reading never reallocates and leaves a copy of the text behind.
        let mut text = Zeroizing::new(Vec::with_capacity(MAX_FILE_BYTES as usize + 1));
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(io_error)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(KeyError::TooLong {
                path: path.to_owned(),
            });
        }
        Self::from_hex_text(&text, path)
    }

    /// Decodes a key file's content by the spec's rules.
    fn from_hex_text(text: &[u8], path: &Path) -> Result<Self, KeyError> {
        let end = text
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |last| last + 1);
        let digits = &text[..end];
        let path = path.to_owned();
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(KeyError::NotHex { path });
        }
        if !digits.len().is_multiple_of(2) {
            return Err(KeyError::OddLength { path });
        }
        match digits.len() / 2 {
            n if n < MIN_KEY_BYTES => return Err(KeyError::TooShort { path }),
            n if n > MAX_KEY_BYTES => return Err(KeyError::TooLong { path }),
            _ => {}
        }
        let mut bytes = Zeroizing::new(vec![0; digits.len() / 2]);
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| KeyError::NotHex { path: path.clone() })?;
        Ok(Self { bytes })
    }

    /// A key made of these bytes, with no length check: for tests and derived keys. Keys from
    /// users must come through [`SecretKey::from_file`].
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The first 16 hexadecimal digits of HMAC-SHA256(key, `"linklab/key-fingerprint/v1"`):
    /// the only thing about a key that may be printed or written down.
    pub fn fingerprint(&self) -> String {
        let mut mac = self.mac();
        mac.update(FINGERPRINT_MESSAGE);
        hex::encode(&mac.finalize().into_bytes()[..8])
    }

    /// A signature of a document: HMAC-SHA256(key, `domain` ‖ 0x00 ‖ `message`) as lowercase
    /// hex. The domain (e.g. `"linklab/release-manifest/v1"`) keeps signatures apart from tokens
    /// and fingerprints made with the same key.
    pub fn sign(&self, domain: &str, message: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// An HMAC-SHA256 keyed with this key.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        Hmac::new_from_slice(&self.bytes).expect("HMAC accepts keys of any length")
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Writes a new key file: 32 random bytes from the operating system as 64 hexadecimal digits and
/// a newline. The file is created with mode 0600 (on Unix) and an existing file is never
/// overwritten. Returns the new key's fingerprint.
pub fn keygen(path: impl AsRef<Path>) -> Result<String, KeyError> {
    let path = path.as_ref();
    let mut bytes = Zeroizing::new(vec![0; KEYGEN_BYTES]);
    getrandom::fill(&mut bytes).map_err(|error| KeyError::Random {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    let mut text = Zeroizing::new(vec![0; 2 * KEYGEN_BYTES + 1]);
    hex::encode_to_slice(&bytes[..], &mut text[..2 * KEYGEN_BYTES])
        .expect("the buffer holds two digits per byte");
    text[2 * KEYGEN_BYTES] = b'\n';

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The mode is set when the file is created, so the key is never readable by others.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            KeyError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyError::Io {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    if let Err(source) = file.write_all(&text).and_then(|()| file.sync_all()) {
        drop(file);
        // Best effort: do not leave a partial key behind. The write error is the one reported.
        let _ = std::fs::remove_file(path);
        return Err(KeyError::Io {
            path: path.to_owned(),
            source,
        });
    }
    Ok(SecretKey { bytes }.fingerprint())
}
