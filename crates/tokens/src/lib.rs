//! Token spec v1: standardisation, match-key transforms, keys and HMAC tokens.
//!
//! This crate is the whole of the pseudonymisation contract (`docs/token-spec-v1.md`) and nothing
//! else: every site that links with us must turn the same person into byte-identical tokens, so
//! every rule here is part of a published standard. Changing a rule means a new spec version.
//!
//! The pieces, in the order a value flows through them:
//! - [`FieldKind`] says what an identifier column holds;
//! - [`Standardiser::standardise`] turns a raw cell into its standard form, or reports why it is
//!   [`Missing`];
//! - a [`MatchKey`] lists [`Component`]s, each a field with an optional [`Transform`]
//!   (`soundex(surname)`), and [`MatchKey::check_strength`] refuses keys that could be reversed by
//!   trying every value;
//! - a [`SecretKey`] is read from a key file (or made by [`keygen`]) and only ever shown by its
//!   [`SecretKey::fingerprint`];
//! - a [`TokenHasher`] turns a key name and its standardised components into a 32-byte
//!   HMAC-SHA256 token;
//! - a [`CompareHasher`] (token spec v2 and v3, `docs/token-spec-v2.md`, `docs/token-spec-v3.md`)
//!   turns a field's standardised value into 8-byte comparison tokens of its [`Variant`]s, keyed
//!   by a subkey of the same key.
//!
//! Privacy rule for this crate: no identifier value and no key byte ever appears in an error,
//! a log line or a panic message. Errors about configuration (a match key's text) may quote it.
#![forbid(unsafe_code)]

mod compare;
mod hasher;
mod key;
mod kind;
mod matchkey;
mod standardise;

pub use compare::{
    COMPARE_DOMAIN, COMPARE_SPEC_VERSION, COMPARE_SUBKEY_MESSAGE, COMPARE_TOKEN_BYTES, CROSS_FIELD,
    CompareHasher, CompareToken, FieldHasher, Variant,
};
pub use hasher::TokenHasher;
pub use key::{KeyError, SecretKey, keygen};
pub use kind::FieldKind;
pub use matchkey::{Component, MatchKey, Transform, WEAK_KEY_BITS, estimated_bits};
pub use standardise::{InvalidReason, Missing, Standardiser};

/// The version label of the token spec this crate implements. It is written into manifests so
/// that tokens made under different rules are never joined.
pub const SPEC_VERSION: &str = "v1";

/// The most match keys a pipeline may configure: the pipeline file's validation and the link
/// stage enforce the same limit.
pub const MAX_MATCH_KEYS: usize = 200;

/// The separator byte between the parts of a token message (ASCII unit separator).
pub const SEPARATOR: u8 = 0x1F;

/// Errors in match-key and field-kind configuration.
///
/// These quote configuration text (a match key's name or component), never data values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// A field kind that is not one of the seven the spec defines.
    #[error("unknown field kind `{text}`: expected one of name, forename, dob, sex, nino, postcode, id")]
    UnknownKind {
        /// The configuration text.
        text: String,
    },
    /// A component that is neither `field` nor `transform(field)` with a known transform.
    #[error("bad match key component `{text}`: {reason}")]
    BadComponent {
        /// The configuration text.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A match key name that does not match `[a-z][a-z0-9_]*`.
    #[error("bad match key name `{name}`: it must match [a-z][a-z0-9_]*")]
    BadKeyName {
        /// The configuration text.
        name: String,
    },
    /// A match key without components.
    #[error("match key `{key}` has no components")]
    NoComponents {
        /// The match key's name.
        key: String,
    },
    /// A component names a field that is not a declared identifier.
    #[error("match key `{key}` uses field `{field}`, which is not a declared identifier")]
    UnknownField {
        /// The match key's name.
        key: String,
        /// The field the component names.
        field: String,
    },
    /// A transform applied to a field kind it is not defined for (soundex of a date).
    #[error(
        "match key `{key}`: component `{component}` applies soundex to a field of kind {kind}, but soundex is defined only for name and forename fields"
    )]
    TransformNotApplicable {
        /// The match key's name.
        key: String,
        /// The component's text.
        component: String,
        /// The kind of the field it names.
        kind: FieldKind,
    },
    /// A match key whose estimated entropy is below [`WEAK_KEY_BITS`].
    #[error(
        "match key `{key}` is weak: its components carry an estimated {bits:.1} bits, below the threshold of {threshold} bits, so anyone holding the key could reverse its tokens by trying every possible value; set allow_weak = true on the match key to accept it"
    )]
    WeakKey {
        /// The match key's name.
        key: String,
        /// The estimated entropy of the key's components, in bits.
        bits: f64,
        /// The threshold it fell below.
        threshold: f64,
    },
}
