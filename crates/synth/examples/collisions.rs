//! Counts the (forename, surname, date of birth, sex) combinations shared by different people.
//!
//! `cargo run --release -p linklab-synth --example collisions -- PEOPLE [SEED]`

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let people = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let seed = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(42);
    let cfg = linklab_synth::SynthConfig {
        people,
        seed,
        ..linklab_synth::SynthConfig::new(std::env::temp_dir())
    };
    let c = linklab_synth::collisions(&cfg);
    println!(
        "people {} (spine {people}): {} shared combinations, {} people share theirs ({:.4}%)",
        c.persons,
        c.shared_combinations,
        c.persons_sharing,
        100.0 * c.persons_sharing as f64 / c.persons as f64
    );
}
