//! `[synth] noise`: parsed, defaulted to standard, refused when unknown, and passed on to the
//! `linklab synth` of a Slurm script.

use std::path::{Path, PathBuf};

use linklab_pipeline::{Pipeline, SlurmOptions, SynthNoise, render_slurm};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/full.toml")
}

fn with_noise(line: &str) -> Result<Pipeline, linklab_pipeline::PipelineError> {
    let text = std::fs::read_to_string(fixture()).expect("the fixture is readable");
    let text = text.replacen("[synth]\n", &format!("[synth]\n{line}"), 1);
    Pipeline::parse(&text, &fixture())
}

#[test]
fn synth_noise_is_standard_unless_heavy() {
    let check = |line: &str, expected: SynthNoise| {
        let pipeline = with_noise(line).expect("a valid pipeline");
        let synth = pipeline.synth.as_ref().expect("the fixture has [synth]");
        assert_eq!(synth.noise, expected, "{line:?}");
        let script = render_slurm(
            &pipeline,
            &SlurmOptions {
                linklab_bin: PathBuf::from("/opt/linklab"),
                partitions: 1,
            },
        );
        assert_eq!(
            script.contains("--noise heavy"),
            expected == SynthNoise::Heavy,
            "{line:?}"
        );
    };
    check("", SynthNoise::Standard);
    check("noise = \"standard\"\n", SynthNoise::Standard);
    check("noise = \"heavy\"\n", SynthNoise::Heavy);
    let err = with_noise("noise = \"extreme\"\n").expect_err("an unknown level is refused");
    assert!(
        err.to_string().contains("expected `standard` or `heavy`"),
        "{err}"
    );
}
