//! Synthetic department extracts with ground truth.
#![forbid(unsafe_code)]
