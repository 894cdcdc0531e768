//! `linklab-bench`: measures every stage on generated data and writes `docs/benchmarks.md`.
//!
//! ```text
//! cargo run --release -p linklab-bench -- all            # full sizes (needs ~10 GB of disk)
//! cargo run --release -p linklab-bench -- all --quick    # small sizes, for a smoke run
//! cargo run --release -p linklab-bench -- table 40x25x20 [SEED]   # protect one table shape
//! cargo run --release -p linklab-bench -- coverage [--seeds 50] [--people 5000]   # docs/coverage.md
//! cargo run --release -p linklab-bench -- case dashboard /tmp/scratch   # one case: its JSON line
//! ```
//!
//! The `dashboard` case needs Debian's Chromium (`scripts/install-chromium.sh`).
//!
//! Each case runs in its own child process, so the peak resident memory it reports (VmHWM from
//! `/proc/self/status`) is that case's alone.
#![forbid(unsafe_code)]

mod attack;
mod cases;
mod counts;
mod coverage;
mod dashboard;
mod dashboard_data;
mod harness;
mod link_probabilistic;
mod pairwise;
mod quality;
mod stages;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "linklab") {
        // The quality case runs the real command line in a child process.
        return linklab_cli::main_from(std::env::args_os().skip(1));
    }
    if args.first().is_some_and(|a| a == "measured") {
        // The harness cases time the real command line in a child process and read its peak
        // resident set from the last line.
        let code = linklab_cli::main_from(std::env::args_os().skip(2));
        println!("PEAK_RSS_MIB={}", cases::peak_rss_mib());
        return code;
    }
    let code = match args.first().map(String::as_str) {
        Some("case") if args.len() >= 3 => cases::run_case(
            &args[1],
            &PathBuf::from(&args[2]),
            args.get(3).map(String::as_str),
        ),
        Some("prepare") if args.len() >= 3 => stages::prepare(
            &args[1],
            &PathBuf::from(&args[2]),
            args.get(3).map(String::as_str) == Some("quick"),
        ),
        Some("all") => all(args.iter().any(|a| a == "--quick"), &args),
        Some("table") if args.len() >= 2 => table(&args[1], args.get(2).map(String::as_str)),
        Some("coverage") => coverage::coverage(&args[1..]),
        _ => {
            eprintln!(
                "usage: linklab-bench all [--quick] [--out FILE] [--only CASE,...]\n       \
                 linklab-bench table DIMS [SEED]   (DIMS like 40x25x20)\n       \
                 linklab-bench coverage [--seeds N] [--people P] [--first S] [--out FILE]"
            );
            2
        }
    };
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// Protects one generated table of shape `dims` (like `40x25x20`) and prints the result line.
fn table(dims: &str, seed: Option<&str>) -> i32 {
    let sizes: Option<Vec<usize>> = dims.split('x').map(|s| s.parse().ok()).collect();
    let seed = seed.map_or(Some(1), |s| s.parse().ok());
    let (Some(sizes), Some(seed)) = (sizes, seed) else {
        eprintln!("table takes dimensions like 40x25x20 and an optional whole-number seed");
        return 2;
    };
    println!("{}", stages::protect(&sizes, seed));
    0
}

fn arg_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn all(quick: bool, args: &[String]) -> i32 {
    let out = PathBuf::from(arg_value(args, "--out").unwrap_or("docs/benchmarks.md"));
    let only: Option<Vec<&str>> = arg_value(args, "--only").map(|s| s.split(',').collect());
    let scratch = std::env::temp_dir().join(format!("linklab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let exe = std::env::current_exe().expect("own path");
    let scale = if quick { "quick" } else { "full" };
    let mut results = Vec::new();
    for case in cases::CASES {
        if only.as_ref().is_some_and(|o| !o.contains(&case.name)) {
            continue;
        }
        eprintln!("running {} ({scale})", case.name);
        let output = Command::new(&exe)
            .args(["case", case.name, &scratch.to_string_lossy(), scale])
            .output()
            .expect("the benchmark re-runs itself");
        if !output.status.success() {
            eprintln!(
                "{} failed:\n{}",
                case.name,
                String::from_utf8_lossy(&output.stderr)
            );
            return 1;
        }
        let line = String::from_utf8_lossy(&output.stdout);
        let value: Value =
            serde_json::from_str(line.lines().last().unwrap_or("{}")).expect("a case prints JSON");
        eprintln!("  {value}");
        results.push((case, value));
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let report = render(&results, quick);
    std::fs::write(&out, report).expect("write the report");
    eprintln!("wrote {}", out.display());
    0
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let sha = if cpuinfo.contains(" sha_ni") {
        ", SHA extensions"
    } else {
        ""
    };
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("{model}{sha}; {cores} cores; {mem} GiB memory")
}

fn render(results: &[(&cases::Case, Value)], quick: bool) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# Benchmarks\n");
    let _ = writeln!(
        text,
        "Written by `cargo run --release -p linklab-bench -- all{}` on {} ({}).\n",
        if quick { " --quick" } else { "" },
        chrono::Utc::now().format("%Y-%m-%d"),
        machine()
    );
    let _ = writeln!(
        text,
        "Each case runs in its own process; peak memory is that process's peak resident set (VmHWM).\n"
    );
    let _ = writeln!(
        text,
        "| case | what | result | target | peak memory |\n|---|---|---|---|---|"
    );
    for (case, value) in results {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} |",
            case.name,
            value["what"].as_str().unwrap_or(""),
            value["result"].as_str().unwrap_or(""),
            case.target,
            value["peak_rss_mib"]
                .as_u64()
                .map_or_else(String::new, |m| format!("{m} MiB")),
        );
    }
    let rate = |name: &str| {
        results
            .iter()
            .find(|(c, _)| c.name == name)
            .and_then(|(_, v)| v["records_per_second"].as_f64())
    };
    if let (Some(ours), Some(duckdb)) = (rate("link"), rate("link-duckdb")) {
        let _ = writeln!(
            text,
            "\nThe link stage ran the cascade at {:.2}× DuckDB's rate on the same files, in the same run.",
            ours / duckdb
        );
    }
    for (name, stage) in [
        (
            "harness-pseudonymise",
            "pseudonymise (the slower of its two extracts)",
        ),
        ("harness-link", "the cascade link"),
    ] {
        if let Some(ratio) = results
            .iter()
            .find(|(c, _)| c.name == name)
            .and_then(|(_, v)| v["ratio"].as_f64())
        {
            let _ = writeln!(
                text,
                "\nOn the harness's extracts, {stage} ran at {ratio:.2}× DuckDB's speed (DuckDB's best time over linklab's, 3 runs each in alternation, in the same run)."
            );
        }
    }
    if let Some((_, v)) = results.iter().find(|(c, _)| c.name == "link-probabilistic")
        && let (Some(ours), Some(splink)) = (
            v["records_per_second"].as_f64(),
            v["splink_records_per_second"].as_f64(),
        )
    {
        let _ = writeln!(
            text,
            "\nThe probabilistic link ran at {:.1}× Splink's rate on the same records (tokens against clear text), in the same run.",
            ours / splink
        );
    }
    for (case, value) in results {
        if let Some(notes) = value["notes"].as_str() {
            let _ = writeln!(text, "\n## {}\n\n{notes}", case.name);
        }
    }
    text
}
