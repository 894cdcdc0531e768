//! Generates a world and scores the demo's match-key cascade on it.
//!
//! `cargo run --release -p linklab-synth --example synth_check -- PEOPLE SEED DIR [--no-eval|--heavy]`

#[path = "../tests/support/cascade.rs"]
mod cascade;

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let people = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seed = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(42);
    let dir = args
        .get(3)
        .map_or_else(|| std::env::temp_dir().join("synth_check"), Into::into);
    let cfg = linklab_synth::SynthConfig {
        people,
        seed,
        out_dir: dir.clone(),
        noise: if args.iter().any(|a| a == "--heavy") {
            linklab_synth::NoiseLevel::Heavy
        } else {
            linklab_synth::NoiseLevel::Standard
        },
    };
    let start = Instant::now();
    match linklab_synth::generate(&cfg) {
        Ok(summary) => {
            println!("generated in {:.1?}", start.elapsed());
            println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    if args.get(4).is_some_and(|a| a == "--no-eval") {
        return;
    }
    let q = cascade::evaluate(&dir);
    println!(
        "spine records {} unreachable {} ({:.4}) links {} correct {} recall {:.4} precision {:.5}",
        q.spine_records,
        q.unreachable,
        q.unreachable as f64 / q.spine_records as f64,
        q.links,
        q.correct,
        q.recall(),
        q.precision()
    );
    for (extract, records, unreachable) in &q.by_extract {
        println!(
            "  {extract}: {records} records of spine persons, {unreachable} unreachable ({:.4})",
            *unreachable as f64 / *records as f64
        );
    }
    for (k, (links, wrong)) in q.by_key.iter().enumerate() {
        println!("  key {}: {links} links, {wrong} wrong", k + 1);
    }
}
