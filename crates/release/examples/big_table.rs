//! Times `protect_table` on a large generated count table.
//!
//! Usage: `cargo run --release -p linklab-release --example big_table -- 40x25x20 [seed]`
//!
//! Counts are drawn deterministically from the seed, shaped like administrative tables: about
//! a quarter of the inner cells are below the threshold 10 (many of them zero or one).

use std::time::Instant;

use linklab_release::{CellStatus, DisclosureRules, protect_table};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let dims = args.next().unwrap_or_else(|| "10x10x10".to_owned());
    let seed: u64 = args
        .next()
        .map_or(1, |s| s.parse().expect("seed is a whole number"));
    let sizes: Vec<usize> = dims
        .split('x')
        .map(|s| s.parse().expect("dimensions look like 40x25x20"))
        .collect();
    let counts = linklab_release::benchmark_counts(&sizes, seed);
    let n = counts.len();
    let small = counts.iter().filter(|&&c| c < 10).count();
    let rules = DisclosureRules::default();
    let start = Instant::now();
    let table = protect_table(&sizes, &counts, &rules).expect("the table can be protected");
    let elapsed = start.elapsed();
    let primary = table
        .cells
        .iter()
        .filter(|c| c.status == CellStatus::Primary)
        .count();
    let secondary = table
        .cells
        .iter()
        .filter(|c| c.status == CellStatus::Secondary)
        .count();
    eprintln!(
        "{dims} seed {seed}: {n} inner cells ({small} below 10), {} cells with margins; \
         primary {primary}, secondary {secondary}, rounds {}; {:.3} s",
        table.cells.len(),
        table.rounds,
        elapsed.as_secs_f64()
    );
}
