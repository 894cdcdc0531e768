//! Stage 1: standardise identifiers and replace them with keyed tokens.
#![forbid(unsafe_code)]
