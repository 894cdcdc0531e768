//! Identifier noise: what each extract gets wrong about a person, and how often.
//!
//! Rates are per record of a file. Each kind has a target rate; the declared range written to
//! `truth/noise.json` is `[0.5, 1.6]` times the target (surname changes, which depend on the
//! share of women in a file, have a wider hand-set range).

mod apply;
mod rates;
mod report;

pub use apply::{Dob, NoiseParams, NoisyId, extra_spaces, noisy_id, wants_extra_spaces};
pub use rates::{DOUBLE_BARRELLED_SHARE, NoiseLevel};
pub use report::{Counts, report};
