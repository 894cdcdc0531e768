//! Stage 4: tables, small-cell suppression, the protection audit and check-release.
#![forbid(unsafe_code)]
