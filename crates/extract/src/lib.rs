//! Streaming CSV and Parquet extract readers with column mapping and reject accounting.
#![forbid(unsafe_code)]
