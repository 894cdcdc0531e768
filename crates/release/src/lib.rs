//! Stage 4: tables, small-cell suppression, the protection audit and the signed release.
//!
//! Nothing leaves the secure environment except through this stage, so its output must be safe
//! and provably so to an output checker who does not trust this code: `check-release` (crate
//! `linklab-check`, which shares no code with this one) audits a release folder from the
//! published files alone.
//!
//! # Tables
//! Each declared table counts DISTINCT persons by its `by` columns. A person (non-null
//! `person_id`) is counted once, in the cell of their FIRST record in input order (part files
//! in name order, rows in file order); records with a null `person_id` (unlinked records) are
//! not counted. Dimension values are rendered as text; a null value is labelled `Unknown` (a
//! literal `Unknown` value falls in the same category); a literal `Total` value is refused
//! because it would be mistaken for a margin. Rare categories: a `by` column with more distinct
//! values than persons / `threshold` (at least 1) is refused, naming the table and column (a
//! table by a record id would publish every id, and its cells would all be suppressed);
//! otherwise the levels held by fewer than `threshold` persons are merged into one level labelled
//! [`OTHER`] before counting (a literal `Other` value falls in the same level; `Unknown` stays
//! its own level). Categories are sorted numerically when every
//! label is a number, as text otherwise, then `Other`, then `Unknown`; every combination of categories is a
//! cell (so empty combinations are zero cells). Margins labelled `Total` are added for every
//! dimension and every combination of dimensions, and rows are written in that order with
//! `Total` last. With `sum`, a magnitude column is added: the per-cell sum of each person's value
//! (from their first record; a null value counts as 0). Sums are published rounded to whole
//! units (exactly, when every value is whole).
//!
//! # Primary suppression
//! A count below `threshold` is suppressed, and a zero count too when `zeros_disclosive`. In a
//! magnitude table a cell is also suppressed when its `dominance_n` largest contributions exceed
//! `dominance_k` of the cell total, or when total − largest − second largest < `p_percent` ×
//! largest (contributions are taken by absolute value). Count and sum of a cell are always
//! suppressed together.
//!
//! # Secondary suppression
//! Design: an LP-checked heuristic in the spirit of sdcTable's SIMPLEHEURISTIC, preceded by a
//! cheap structural pass. The structural pass walks every line (additive constraint) of every
//! table until nothing changes: a line with exactly one suppressed cell gets a partner; a line
//! with exactly two where one holds a single person gets a third (that person knows their own
//! value and could subtract it); a line whose suppressed cells together cannot reach the
//! threshold gets a partner large enough. Then the audit runs; every failing cell gets a
//! partner on one of its lines (ever further out if its lines have none), and the loop repeats
//! until the audit passes. Partners are chosen at low cost: inner cells before margins (never a
//! `Total` when an inner cell works), then the smallest count that is large enough. We chose
//! this over Gaussian elimination (Statistics Norway's `GaussSuppression`) because the LP audit
//! is needed anyway as the gate, the heuristic reuses it directly, and it handles bounds,
//! rounding intervals and singletons, which elimination alone does not see.
//!
//! Tables from the same source are protected JOINTLY: a cell is identified by its set of
//! (dimension, value) pairs (margins dropped), so A×B and A×C share the A margin and the grand
//! total; the same cell is never published in one and suppressed in the other, and the audit
//! uses the constraints of every table of the group together. Tables from different sources
//! are independent (person ids are re-keyed per project, so releases cannot be joined person by
//! person; differencing successive releases is not covered: a rerun replaces the previous
//! release).
//!
//! The analysis frame (a source with `treated` and `group` columns) always has its arms in the
//! system: a table by both is added unrendered, so that when some but fewer than `threshold`
//! treated persons were dropped by the caliper (treated, no group), all treated minus the matched
//! treated cannot single them out (issue 12, attack 1): a table by `treated` gets its
//! all-treated cells suppressed.
//!
//! The evaluation's published figures are cells of the analysis frame's system (`figures`
//! module): the counts they imply (`evaluation/figures.json`, beside the frame) are *known*
//! cells, the tables they need are added to the group unrendered (with `treated` and `group`,
//! so that the matched treated are part of all treated), cells empty by construction are known
//! zeros, and every other cell no file publishes is an unpublished unknown, protected when it
//! holds 1 to `threshold` − 1 persons (the persons dropped by the caliper are one). Secondary
//! suppression picks a known cell only when no table cell is left. A known cell that must be
//! hidden (below the threshold, or that last partner) is *withheld*: every place where
//! `figures.json` says a value implying it is printed is written `[c]` (`rewrite` module: CSV
//! fields, and the marked elements of `report.html`), the cell becomes an unknown, and the group
//! is protected and audited again until no printed figure is hidden. The release is refused if a
//! figure without places would have to be hidden, if a place cannot be found, or if the figures
//! disagree with the frame. The frame of published evaluation files is audited even when no
//! table counts it.
//!
//! # The audit (the gate)
//! The audit ([`audit`] module) is independent of the suppression code. For every suppressed cell it computes min and max by linear
//! programming subject to the additive constraints, the published values and the bounds. A
//! suppressed count is bounded below by 0, or by 1 when `zeros_disclosive` is false: zeros are
//! then published, so a suppressed cell is known to be non-empty (secondary suppression never
//! picks a zero cell). Rounded counts are intervals `[v − round_to/2, v + round_to/2]`; the
//! published cells sharing a line with a suppressed cell become LP variables within their
//! intervals, and lines among published cells that touch those variables are kept with the
//! remaining cells as intervals (a deliberate, documented relaxation: a fully exact treatment
//! would make every cell a variable). A cell fails when:
//! - its interval holds a single whole number (pinned; for sums, narrower than one unit);
//! - it is a count below the threshold and its max is below the threshold (the attacker could
//!   prove the cell small *and* narrow it; we require every small suppressed cell to be able to
//!   reach the threshold);
//! - it is a sensitive magnitude cell whose interval is narrower than `p_percent` × its largest
//!   contribution;
//! - a singleton insider (the one person of a suppressed cell of count 1, who knows that cell's
//!   value) fixing their own cell could pin another suppressed cell of one of their lines.
//!
//! A failed audit means more suppression and a re-audit; if the heuristic cannot converge
//! within (number of cells + 2) rounds the whole group of tables is refused and nothing is
//! released. Speed: only suppressed cells (and rounded neighbours) are variables, the system is
//! split into connected components solved separately, components that passed are not solved
//! again, and LP solutions are kept as witnesses so most cells need no LP of their own. Before
//! any LP, *product moves* of the tables (a rectangle or box of suppressed cells with
//! alternating signs, or a cell with its suppressed margin; each checked against every
//! constraint of the group) are applied to the true table as far as the bounds allow: every
//! point reached is feasible, so it witnesses values of each cell it touches, and greedy
//! sequences of moves prove most cells safe without an LP. Cells left open get an LP over their
//! neighbourhood (the suppressed cells of the box spanned by their best partners), every other
//! cell held at its true value, whose solution is again a feasible point. Only a cell that no
//! witness proves safe gets an LP over its whole component. An insider check first looks for
//! moves that leave the insider's cell alone. In the rounds of the heuristic, a component of
//! more than 1,500 variables (where each LP takes seconds) skips the whole-component LPs and
//! counts an unproven cell as failing (so it gets a partner: more suppression, never less
//! protection); after three rounds without fewer failures the rounds audit with the full LPs
//! again. The final audit is the passing round's.
//!
//! Before all this, a single-table count group gets a *hypercube pass* (after Repsilber's
//! hypercube method): each primary cell, smallest first, gets the cheapest product move through
//! it whose shrinking corners have room to lift it to the threshold (fewest new margin cells,
//! then the least count newly hidden, from the six best partners per dimension), and every
//! corner is suppressed. That is exactly the witness the audit's moves find, so nearly every
//! cell is proven safe in the first round without an LP. The `release` case of `linklab-bench`
//! (`crates/bench`) times [`protect_table`] on a large generated table: in a release build a
//! 10×10×10 table takes about 0.14 s and a 40×25×20 table (20,000 inner cells, 6,023 of them
//! primary) about 2 s, each in one round.
//!
//! # Rounding
//! With `round_to` > 1 every published count (inner cells and margins) is rounded on its own to
//! the nearest multiple (halves up) after suppression; margins are not recomputed from rounded
//! cells, so additivity holds only approximately, as the manifest says. `threshold` must be a
//! multiple of `round_to`, so a published count is never below the threshold.
//!
//! # Outputs
//! `release_dir/<table>.csv` (header: by columns, `persons`, then the sum column; suppressed
//! values written `[c]`; labels through the formula guard every published CSV shares,
//! `linklab_store::csv_label`) and `release_dir/release-manifest.json`, written last and, when
//! the config names the project key, signed with it (`signed_with`, `signature`: HMAC-SHA256 of
//! the manifest without its signature, see `docs/pipeline.md`). A table's `joint_group` names its
//! source (`linked/releases`, `evaluation/frame`), so `check-release --with` can match the
//! tables of successive releases. Nothing about
//! primary or secondary status goes into `release_dir`; the audit trail (every cell with its
//! true value, status, reason and audited interval, and a pass/fail/review status per table)
//! goes to `audit_dir`. A release refuses to start when `release_dir` holds a file the previous
//! manifest does not list. After a crash mid-release, files written before the manifest are
//! unlisted and the next run stops on them: an operator clears the folder.
#![forbid(unsafe_code)]

mod audit;
mod build;
mod config;
mod derive;
mod error;
mod figures;
mod gate;
mod manifest;
mod model;
mod protect;
mod release;
mod rewrite;
mod suppress;
#[cfg(test)]
mod tests;
mod trail;

pub use build::{MAX_TABLE_CELLS, OTHER};
pub use config::{DisclosureRules, MANIFEST_NAME, ReleaseConfig, TableSpec};
pub use error::ReleaseError;
pub use gate::CellStatus;
pub use manifest::{FileKind, MANIFEST_FORMAT, Manifest, ManifestFile, ProgrammeMeta};
pub use model::{TOTAL, UNKNOWN};
pub use protect::{ProtectedCell, ProtectedTable, protect_table};
pub use release::{ReleaseSummary, release_lock_path, run};
pub use trail::{AuditStatus, TableSummary};
