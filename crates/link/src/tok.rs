//! Tokens as hash-map keys, and token partitions.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A 32-byte token. Tokens are HMAC outputs, uniformly random to anyone without the key, so
/// their first 8 bytes are already a good hash: hashing them again would only cost time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Tok(pub [u8; 32]);

impl Tok {
    /// The token of a 32-byte slice.
    pub(crate) fn from_slice(bytes: &[u8]) -> Self {
        Self(
            bytes
                .try_into()
                .expect("token columns are checked to be FixedSizeBinary(32)"),
        )
    }

    /// The partition (of `n`) this token belongs to, from its last two bytes. The hash uses the
    /// first eight bytes, so the tokens of one partition still spread over the whole table.
    pub(crate) fn partition(&self, n: usize) -> usize {
        let tail = (usize::from(self.0[30]) << 8) | usize::from(self.0[31]);
        (tail * n) >> 16
    }
}

impl Hash for Tok {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes")));
    }
}

/// A hasher that passes through the `u64` a [`Tok`] writes.
#[derive(Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `Tok` is hashed; mix it properly anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A hash map keyed by tokens.
pub(crate) type TokMap<V> = HashMap<Tok, V, BuildHasherDefault<PassThrough>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_range_evenly() {
        let mut t = Tok([0; 32]);
        assert_eq!(t.partition(7), 0);
        t.0[30] = 0xff;
        t.0[31] = 0xff;
        assert_eq!(t.partition(7), 6);
        assert_eq!(t.partition(1), 0);
        t.0[30] = 0x80;
        t.0[31] = 0;
        assert_eq!(t.partition(2), 1);
    }
}
