//! Helpers shared by the tests and the `synth_check` example.

pub mod cascade;
