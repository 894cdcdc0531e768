//! HMAC-SHA256 tokens (spec v1, "Match keys").

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{MatchKey, SEPARATOR, SecretKey};

/// Computes tokens with one key. Build it once per key and share it by reference across threads
/// (it is `Send + Sync`).
///
/// It keeps the HMAC state keyed once: SHA-256 after absorbing `key ⊕ ipad` and after absorbing
/// `key ⊕ opad`. Each token clones that state, so for a message shorter than 56 bytes (every
/// token message in practice) a token costs exactly two SHA-256 compressions: one for the message
/// block of the inner hash, one for the outer hash's block, which holds the 32-byte inner digest
/// and its padding. (hmac 0.12 `HmacCore::new_from_slice` compresses the two padded key blocks;
/// `Clone` copies the two states and an empty buffer; finalising compresses one block each.)
pub struct TokenHasher {
    keyed: Hmac<Sha256>,
    fingerprint: String,
}

impl TokenHasher {
    /// A hasher for this key.
    pub fn new(key: &SecretKey) -> Self {
        Self {
            keyed: key.mac(),
            fingerprint: key.fingerprint(),
        }
    }

    /// The key's fingerprint ([`SecretKey::fingerprint`]).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// HMAC-SHA256(key, message). The link stage uses it with a project key to derive person ids.
    pub fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// The token of a match key: HMAC-SHA256(key, name ‖ 0x1F ‖ c1 ‖ 0x1F ‖ … ‖ 0x1F ‖ cn), where
    /// the components are the already standardised and transformed values, in key order.
    pub fn token(&self, key_name: &str, components: &[&str]) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(key_name.as_bytes());
        for component in components {
            mac.update(&[SEPARATOR]);
            mac.update(component.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// The token of `key` for one record, given the standardised value of each component's field
    /// (`standardised[i]` for `key.components[i]`, `None` where the value is missing). Applies
    /// the components' transforms without allocating. `None` if any value is missing.
    ///
    /// # Panics
    /// If `standardised` does not have one entry per component: that is a bug in the caller.
    pub fn match_key_token(&self, key: &MatchKey, standardised: &[Option<&str>]) -> Option<[u8; 32]> {
        assert_eq!(
            standardised.len(),
            key.components.len(),
            "one standardised value per component of match key `{}`",
            key.name
        );
        if standardised.iter().any(Option::is_none) {
            return None;
        }
        let mut mac = self.keyed.clone();
        mac.update(key.name.as_bytes());
        for (component, value) in key.components.iter().zip(standardised.iter().flatten()) {
            let mut buf = [0; 4];
            mac.update(&[SEPARATOR]);
            mac.update(component.transform.apply_bytes(value, &mut buf));
        }
        Some(mac.finalize().into_bytes().into())
    }
}

/// The keyed HMAC state is as secret as the key: whoever has it can make tokens. hmac 0.12 and
/// sha2 0.10 do not implement `Zeroize` for their states, and this crate forbids `unsafe`, so
/// the state cannot be wiped with volatile writes. As a best effort, dropping a hasher overwrites
/// the state in place with one keyed by zeros, and `black_box` keeps that store from being
/// optimised away. The short-lived per-token clones (on the stack) and the padded key block that
/// hmac builds while keying are not wiped.
impl Drop for TokenHasher {
    fn drop(&mut self) {
        self.keyed = Hmac::new_from_slice(&[0; 32]).expect("HMAC accepts keys of any length");
        std::hint::black_box(&self.keyed);
    }
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHasher")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hasher_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TokenHasher>();
    }

    #[test]
    fn match_key_token_applies_transforms() {
        let hasher = TokenHasher::new(&SecretKey::from_bytes((0..32).collect()));
        let key = MatchKey::parse("soundex_dob", &["soundex(surname)", "dob"], false).expect("valid key");
        assert_eq!(
            hasher.match_key_token(&key, &[Some("OBRIEN"), Some("19840229")]),
            Some(hasher.token("soundex_dob", &["O165", "19840229"]))
        );
        assert_eq!(hasher.match_key_token(&key, &[Some("OBRIEN"), None]), None);
        let key = MatchKey::parse("k", &["initial(forename)", "year(dob)"], true).expect("valid");
        assert_eq!(
            hasher.match_key_token(&key, &[Some("JOSE"), Some("19840229")]),
            Some(hasher.token("k", &["J", "1984"]))
        );
    }

    #[test]
    fn debug_shows_only_the_fingerprint() {
        let key = SecretKey::from_bytes((0..32).collect());
        assert_eq!(
            format!("{:?}", TokenHasher::new(&key)),
            "TokenHasher { fingerprint: \"9c78d894560d7caf\", .. }"
        );
        assert_eq!(
            format!("{key:?}"),
            "SecretKey { fingerprint: \"9c78d894560d7caf\", .. }"
        );
    }
}
