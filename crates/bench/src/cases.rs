//! The benchmark cases. Each prints one JSON line: what was measured, the result, peak memory.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

/// A benchmark case and its target.
#[derive(Debug)]
pub struct Case {
    /// Name on the command line.
    pub name: &'static str,
    /// The target it is held to.
    pub target: &'static str,
}

/// Every case, in the order they run.
pub const CASES: &[Case] = &[
    Case {
        name: "tokens",
        target: ">= 6 M tokens/s per core",
    },
    Case {
        name: "synth",
        target: "1 M people < 60 s",
    },
    Case {
        name: "pseudonymise",
        target: ">= 1.5 M rows/s on 2 cores, peak < 1 GiB",
    },
    Case {
        name: "harness-pseudonymise",
        target: ">= 5× DuckDB's HMAC (issue 17)",
    },
    Case {
        name: "pseudonymise-compare",
        target: ">= 1 M rows/s on 2 cores",
    },
    Case {
        name: "frequency-attack",
        target: "(measured; see docs/privacy.md)",
    },
    Case {
        name: "quality",
        target: "probabilistic: Splink's recall at equal or better precision",
    },
    Case {
        name: "quality-heavy",
        target: "probabilistic: precision >= 99.9%, recall >= 99.5%; Splink's recall at equal or better precision",
    },
    Case {
        name: "link",
        target: ">= 1 M records/s on 2 cores",
    },
    Case {
        name: "link-spill",
        target: "peak memory within `memory_limit`",
    },
    Case {
        name: "link-duckdb",
        target: "(comparison)",
    },
    Case {
        name: "harness-link",
        target: ">= 1× DuckDB (issue 17)",
    },
    Case {
        name: "link-probabilistic",
        target: ">= 20× Splink's throughput, in less memory",
    },
    Case {
        name: "link-probabilistic-10m",
        target: ">= 500 k records/s on 2 cores within `memory_limit` (issue 14)",
    },
    Case {
        name: "release",
        target: "< 10 s on 2 cores",
    },
    Case {
        name: "dashboard",
        target: "500 programmes render and filter in < 1 s in Chromium (issue 16)",
    },
];

/// Runs one case in this process and prints its JSON line. Returns the exit code.
pub fn run_case(name: &str, scratch: &Path, scale: Option<&str>) -> i32 {
    let quick = scale == Some("quick");
    let mut result = match name {
        "tokens" => tokens(quick),
        "synth" => synth(scratch, quick),
        "pseudonymise" => crate::stages::pseudonymise(scratch, quick, false),
        "pseudonymise-compare" => crate::stages::pseudonymise(scratch, quick, true),
        "frequency-attack" => crate::attack::frequency_attack(scratch, quick),
        "quality" => crate::quality::quality(scratch, quick, false),
        "quality-heavy" => crate::quality::quality(scratch, quick, true),
        "link" => crate::stages::link(scratch, quick, None),
        "link-spill" => crate::stages::link(scratch, quick, Some(crate::stages::spill_limit(quick))),
        "link-duckdb" => crate::stages::link_duckdb(scratch, quick),
        "link-probabilistic" | crate::link_probabilistic::TEN_MILLION => {
            crate::link_probabilistic::case(name, scratch, quick)
        }
        "harness-pseudonymise" => crate::harness::pseudonymise(scratch, quick),
        "harness-link" => crate::harness::link(scratch, quick),
        "release" => crate::stages::release(quick),
        "dashboard" => crate::dashboard::case(scratch, quick),
        _ => {
            eprintln!("unknown case {name}");
            return 2;
        }
    };
    if result.get("peak_rss_mib").is_none() {
        result["peak_rss_mib"] = json!(peak_rss_mib());
    }
    println!("{result}");
    0
}

/// The peak resident set of this process, from `/proc/self/status`.
pub(crate) fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            })
        })
        .flatten()
        .map_or(0, |kb| kb / 1024)
}

fn tokens(quick: bool) -> serde_json::Value {
    let n: u64 = if quick { 2_000_000 } else { 30_000_000 };
    let key = linklab_tokens::SecretKey::from_bytes((0u8..32).collect());
    let hasher = linklab_tokens::TokenHasher::new(&key);
    let mut component = *b"AB000000";
    let mut acc = 0u8;
    let start = Instant::now();
    for i in 0..n {
        let digits = i % 1_000_000;
        let mut d = digits;
        for slot in component[2..].iter_mut().rev() {
            *slot = b'0' + (d % 10) as u8;
            d /= 10;
        }
        let text = std::str::from_utf8(&component).expect("ASCII");
        acc ^= hasher.token("nino", &[text])[0];
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = n as f64 / secs;
    json!({
        "what": format!("{n} `nino` tokens (HMAC-SHA256 of a 13-byte message), one thread"),
        "result": format!("{:.2} M tokens/s per core", rate / 1e6),
        "rate": rate,
        "checksum": acc,
    })
}

fn synth(scratch: &Path, quick: bool) -> serde_json::Value {
    let people = if quick { 50_000 } else { 1_000_000 };
    let out = scratch.join("synth");
    let start = Instant::now();
    let summary = linklab_synth::generate(&linklab_synth::SynthConfig {
        people,
        seed: 7,
        out_dir: out.clone(),
        noise: linklab_synth::NoiseLevel::Standard,
    })
    .expect("synth writes its files");
    let secs = start.elapsed().as_secs_f64();
    let rows: u64 = summary.files.iter().map(|f| f.rows).sum();
    let _ = std::fs::remove_dir_all(&out);
    json!({
        "what": format!("`linklab synth` of {people} people ({rows} rows in all files)"),
        "result": format!("{secs:.1} s"),
        "seconds": secs,
    })
}
