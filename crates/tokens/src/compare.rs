//! Comparison tokens (token spec v2, `docs/token-spec-v2.md`, and v3, `docs/token-spec-v3.md`):
//! short keyed tokens of one field's standard form and of variants of it, so that a linker can
//! compare records field by field (exact, phonetic, initial, within one edit, day and month
//! swapped, forename and surname transposed, ...) without clear text.
//!
//! - subkey = HMAC-SHA256(linkage key, `"linklab-compare-subkey-v2"`), so comparison tokens never
//!   equal match-key tokens or any other use of the linkage key;
//! - token(field, variant, value) = SipHash-2-4 under the subkey's first 16 bytes of
//!   `"linklab-compare-v2"` ‖ 0x1F ‖ field ‖ 0x1F ‖ variant ‖ 0x1F ‖ value, as 8 little-endian
//!   bytes (SipHash for speed: a tenth of a truncated HMAC's time per short message);
//! - v3 adds the `cross` variant of name fields, whose message names the fixed field
//!   [`CROSS_FIELD`] instead of the field, so that a forename's token equals a surname's when
//!   their standard forms are equal.

use std::fmt;
use std::hash::Hasher;

use hmac::Mac;
use siphasher::sip::SipHasher24;
use zeroize::Zeroizing;

use crate::matchkey::soundex;
use crate::{FieldKind, SEPARATOR, SecretKey};

/// The version label of the comparison-token spec, written into manifests next to the compare
/// list.
pub const COMPARE_SPEC_VERSION: &str = "v3";

/// The bytes of one comparison token.
pub const COMPARE_TOKEN_BYTES: usize = 8;

/// One comparison token.
pub type CompareToken = [u8; COMPARE_TOKEN_BYTES];

/// The message that derives the comparison subkey from the linkage key.
pub const COMPARE_SUBKEY_MESSAGE: &str = "linklab-compare-subkey-v2";

/// The domain label every comparison token's message starts with.
pub const COMPARE_DOMAIN: &str = "linklab-compare-v2";

/// The field every name field's [`Variant::Cross`] token is made under (token spec v3).
pub const CROSS_FIELD: &str = "names";

/// A form of a field's standard value that gets its own comparison token (and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// The standard form itself.
    Exact,
    /// American Soundex of a name (token spec v1's `soundex`).
    Soundex,
    /// The first character.
    Initial,
    /// A set: the value and every string made by deleting one of its characters.
    Edit1,
    /// A date of birth with day and month in a fixed order: `YYYY`, then the smaller of `MM` and
    /// `DD`, then the larger.
    Swap,
    /// The first four characters of a date of birth.
    Year,
    /// A postcode's outward code (all but its last three characters).
    District,
    /// A name's standard form under the field [`CROSS_FIELD`], shared by every name field (token
    /// spec v3): a forename and a surname written the other way round share these tokens.
    Cross,
}

impl Variant {
    /// The variant's label, as it appears in token messages and column names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Variant::Exact => "exact",
            Variant::Soundex => "soundex",
            Variant::Initial => "initial",
            Variant::Edit1 => "edit1",
            Variant::Swap => "swap",
            Variant::Year => "year",
            Variant::District => "district",
            Variant::Cross => "cross",
        }
    }

    /// The field part of the variant's token message: [`CROSS_FIELD`] for [`Variant::Cross`],
    /// else `field` itself.
    pub const fn message_field(self, field: &str) -> &str {
        match self {
            Variant::Cross => CROSS_FIELD,
            _ => field,
        }
    }

    /// Whether the variant is a set of tokens (`List<FixedSizeBinary(8)>`) rather than one token
    /// (`FixedSizeBinary(8)`).
    pub const fn is_set(self) -> bool {
        matches!(self, Variant::Edit1)
    }

    /// The variants a field of this kind gets, in column order.
    pub const fn of_kind(kind: FieldKind) -> &'static [Variant] {
        match kind {
            FieldKind::Name | FieldKind::Forename => &[
                Variant::Exact,
                Variant::Soundex,
                Variant::Initial,
                Variant::Edit1,
                Variant::Cross,
            ],
            FieldKind::Dob => &[Variant::Exact, Variant::Edit1, Variant::Swap, Variant::Year],
            FieldKind::Sex => &[Variant::Exact],
            FieldKind::Nino | FieldKind::Id => &[Variant::Exact, Variant::Edit1],
            FieldKind::Postcode => &[Variant::Exact, Variant::Edit1, Variant::District],
        }
    }

    /// The Parquet column of this variant of `field`: `cmp_<field>_<variant>`.
    pub fn column_name(self, field: &str) -> String {
        format!("cmp_{field}_{}", self.as_str())
    }

    /// The derived form of a scalar variant, written into `buf` when it is not a slice of
    /// `value`. Defined on standard forms (ASCII); on a value too short for its kind's layout
    /// (never a standard form) it falls back to the value itself. [`Variant::Edit1`] gives the
    /// value, the first item of its set.
    fn derive<'a>(self, value: &'a [u8], buf: &'a mut [u8; 8]) -> &'a [u8] {
        match self {
            Variant::Exact | Variant::Edit1 | Variant::Cross => value,
            Variant::Soundex => {
                // Standard names are ASCII letters, so the conversion cannot fail.
                let len = std::str::from_utf8(value).map_or(0, |text| {
                    let mut code = [0; 4];
                    let len = soundex(text, &mut code);
                    buf[..4].copy_from_slice(&code);
                    len
                });
                &buf[..len]
            }
            Variant::Initial => &value[..value.len().min(1)],
            Variant::Year => &value[..value.len().min(4)],
            Variant::Swap => {
                if value.len() != 8 {
                    return value;
                }
                let (month, day) = (&value[4..6], &value[6..8]);
                let (low, high) = if month <= day { (month, day) } else { (day, month) };
                buf[..4].copy_from_slice(&value[..4]);
                buf[4..6].copy_from_slice(low);
                buf[6..8].copy_from_slice(high);
                &buf[..8]
            }
            Variant::District => {
                if value.len() > 3 {
                    &value[..value.len() - 3]
                } else {
                    value
                }
            }
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computes comparison tokens with the subkey of one linkage key. Build it once per key; it is
/// `Send + Sync`. [`CompareHasher::field`] gives the fast per-field hasher the stage uses.
pub struct CompareHasher {
    keyed: SipHasher24,
}

impl CompareHasher {
    /// The hasher of `key`'s comparison subkey.
    pub fn new(key: &SecretKey) -> Self {
        let mut mac = key.mac();
        mac.update(COMPARE_SUBKEY_MESSAGE.as_bytes());
        let subkey = Zeroizing::new(<[u8; 32]>::from(mac.finalize().into_bytes()));
        let mut sip_key = Zeroizing::new([0; 16]);
        sip_key.copy_from_slice(&subkey[..16]);
        Self {
            keyed: SipHasher24::new_with_key(&sip_key),
        }
    }

    /// The token of `value` (already the derived form) under `field` and `variant`, straight from
    /// the spec's formula. The stage uses [`FieldHasher`], which gives the same bytes faster.
    pub fn token(&self, field: &str, variant: Variant, value: &str) -> CompareToken {
        let mut sip = self.keyed;
        sip.write(COMPARE_DOMAIN.as_bytes());
        for part in [variant.message_field(field), variant.as_str(), value] {
            sip.write(&[SEPARATOR]);
            sip.write(part.as_bytes());
        }
        sip.finish().to_le_bytes()
    }

    /// A hasher of every variant of `field`, a field of kind `kind`, with each variant's message
    /// prefix (domain, field, variant and separators) absorbed once.
    pub fn field(&self, field: &str, kind: FieldKind) -> FieldHasher {
        let variants = Variant::of_kind(kind);
        let prefixed = variants
            .iter()
            .map(|variant| {
                let mut sip = self.keyed;
                for part in [COMPARE_DOMAIN, variant.message_field(field), variant.as_str()] {
                    sip.write(part.as_bytes());
                    sip.write(&[SEPARATOR]);
                }
                sip
            })
            .collect();
        FieldHasher { variants, prefixed }
    }
}

/// The comparison tokens of one field: one SipHash state per variant with the message prefix
/// already absorbed. A token copies a state, absorbs the value and finishes: a few SipHash
/// rounds and no allocation.
pub struct FieldHasher {
    variants: &'static [Variant],
    prefixed: Vec<SipHasher24>,
}

impl FieldHasher {
    /// The field's variants, in column order; `slot` arguments index this list.
    pub fn variants(&self) -> &'static [Variant] {
        self.variants
    }

    /// The token of `part_a ‖ part_b` under variant `slot`.
    fn hash(&self, slot: usize, part_a: &[u8], part_b: &[u8]) -> CompareToken {
        let mut sip = self.prefixed[slot];
        sip.write(part_a);
        sip.write(part_b);
        sip.finish().to_le_bytes()
    }

    /// The token of scalar variant `slot` of a standard value (for [`Variant::Edit1`], the token
    /// of the value itself).
    ///
    /// # Panics
    /// If `slot` is not an index of [`Self::variants`].
    pub fn scalar(&self, slot: usize, value: &str) -> CompareToken {
        let mut buf = [0; 8];
        let derived = self.variants[slot].derive(value.as_bytes(), &mut buf);
        self.hash(slot, derived, &[])
    }

    /// The tokens of variant `slot` of a standard value into `out` (cleared first): one token for
    /// a scalar variant; for [`Variant::Edit1`] the tokens of the value and of every string made
    /// by deleting one character, deduplicated and sorted ascending by bytes. Deleting any
    /// character of a run of equal characters gives the same string, so it is hashed once.
    /// `out` keeps its capacity, so a reused buffer makes no allocation.
    ///
    /// # Panics
    /// If `slot` is not an index of [`Self::variants`].
    pub fn tokens_into(&self, slot: usize, value: &str, out: &mut Vec<CompareToken>) {
        out.clear();
        if !self.variants[slot].is_set() {
            out.push(self.scalar(slot, value));
            return;
        }
        let bytes = value.as_bytes();
        out.push(self.hash(slot, bytes, &[]));
        let mut previous = None;
        for (at, ch) in value.char_indices() {
            if previous != Some(ch) {
                out.push(self.hash(slot, &bytes[..at], &bytes[at + ch.len_utf8()..]));
            }
            previous = Some(ch);
        }
        out.sort_unstable();
        out.dedup();
    }
}

/// The keyed states are as secret as the key; see `TokenHasher`'s `Drop` for what this does and
/// does not wipe.
impl Drop for CompareHasher {
    fn drop(&mut self) {
        self.keyed = SipHasher24::new_with_key(&[0; 16]);
        std::hint::black_box(&self.keyed);
    }
}

impl Drop for FieldHasher {
    fn drop(&mut self) {
        for state in &mut self.prefixed {
            *state = SipHasher24::new_with_key(&[0; 16]);
        }
        std::hint::black_box(&self.prefixed);
    }
}

impl fmt::Debug for CompareHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompareHasher").finish_non_exhaustive()
    }
}

impl fmt::Debug for FieldHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldHasher")
            .field("variants", &self.variants)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes((0..32).collect())
    }

    #[test]
    fn hashers_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CompareHasher>();
        assert_send_sync::<FieldHasher>();
    }

    #[test]
    fn derived_forms() {
        let check = |variant: Variant, value: &str, expected: &str| {
            let mut buf = [0; 8];
            assert_eq!(
                variant.derive(value.as_bytes(), &mut buf),
                expected.as_bytes(),
                "{variant} {value}"
            );
        };
        check(Variant::Exact, "OBRIEN", "OBRIEN");
        check(Variant::Soundex, "OBRIEN", "O165");
        check(Variant::Initial, "OBRIEN", "O");
        check(Variant::Year, "19840229", "1984");
        check(Variant::Swap, "19840229", "19840229");
        check(Variant::Swap, "19841102", "19840211");
        check(Variant::Swap, "19840211", "19840211");
        check(Variant::District, "SW1A1AA", "SW1A");
        check(Variant::District, "M11AE", "M1");
        check(Variant::District, "AB", "AB");
        check(Variant::Swap, "1984", "1984");
    }

    #[test]
    fn the_fast_path_gives_the_formula_s_bytes() {
        let hasher = CompareHasher::new(&key());
        let field = hasher.field("surname", FieldKind::Name);
        let mut out = Vec::new();
        field.tokens_into(0, "OBRIEN", &mut out);
        assert_eq!(out, [hasher.token("surname", Variant::Exact, "OBRIEN")]);
        field.tokens_into(1, "OBRIEN", &mut out);
        assert_eq!(out, [hasher.token("surname", Variant::Soundex, "O165")]);
        field.tokens_into(3, "ANNA", &mut out);
        let mut expected: Vec<_> = ["ANNA", "NNA", "ANA", "ANN"]
            .iter()
            .map(|v| hasher.token("surname", Variant::Edit1, v))
            .collect();
        expected.sort_unstable();
        assert_eq!(out, expected);
        field.tokens_into(4, "OBRIEN", &mut out);
        assert_eq!(out, [hasher.token("surname", Variant::Cross, "OBRIEN")]);
        // Every name field's cross token is the same for the same value.
        let forename = hasher.field("forename", FieldKind::Forename);
        assert_eq!(forename.scalar(4, "OBRIEN"), out[0]);
        assert_eq!(out, [hasher.token("names", Variant::Cross, "OBRIEN")]);
        assert_ne!(out, [hasher.token("surname", Variant::Exact, "OBRIEN")]);
    }

    #[test]
    fn comparison_tokens_differ_from_match_key_tokens() {
        let v1 = crate::TokenHasher::new(&key()).token("surname", &["OBRIEN"]);
        let v2 = CompareHasher::new(&key()).token("surname", Variant::Exact, "OBRIEN");
        assert_ne!(v1[..8], v2);
    }

    #[test]
    fn debug_shows_nothing_secret() {
        let hasher = CompareHasher::new(&key());
        assert_eq!(format!("{hasher:?}"), "CompareHasher { .. }");
        assert_eq!(
            format!("{:?}", hasher.field("sex", FieldKind::Sex)),
            "FieldHasher { variants: [Exact], .. }"
        );
    }
}
