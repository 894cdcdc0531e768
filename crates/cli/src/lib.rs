//! Command line: argument types, dispatch, logging and exit codes.
#![forbid(unsafe_code)]
