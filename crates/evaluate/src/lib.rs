//! Stage 3: outcome measures, propensity matching, effects and survival curves.
#![forbid(unsafe_code)]
