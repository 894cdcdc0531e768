//! Stage 2: the match-key cascade into a linked dataset with project-specific person ids.
#![forbid(unsafe_code)]
