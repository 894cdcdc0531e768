//! The pipeline file: parsing, validation and the stage graph.
#![forbid(unsafe_code)]
