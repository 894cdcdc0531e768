//! The command line, as clap types.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

/// The command line of the `linklab` binary. Its help text is [`ABOUT`] and [`LONG_ABOUT`], set
/// explicitly: clap would otherwise take this crate's description, which is about the code.
#[derive(Debug, Parser)]
#[command(
    name = "linklab",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format: on a terminal, progress bars and a summary; JSON lines otherwise (for
    /// schedulers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// Only warnings and errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail: the log lines on a terminal too (-v), and debug lines (-vv).
    #[arg(long, short, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// The first line of `linklab --help` and `linklab -h`: what linklab is and does.
pub const ABOUT: &str = "linklab links records about the same people held by different organisations \
without moving their names, dates of birth or ID numbers, and releases only statistics that \
cannot identify anyone";

/// The rest of the opening of `linklab --help`.
pub const LONG_ABOUT: &str = "linklab links records about the same people held by different \
organisations without moving their names, dates of birth or ID numbers, and releases only \
statistics that cannot identify anyone.

Each organisation pseudonymises its extract where it lives (keyed HMAC tokens); linklab links the \
tokens, evaluates a programme against a matched comparison group, and releases only tables and \
figures that pass small-cell suppression and an independent audit. Try it on synthetic data:
  linklab run pipelines/demo.toml";

/// The exit codes, shown under `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the input or the configuration is wrong (a clear message on stderr)
  2  an internal error (a bug: please report it)
  3  check-release found a released file that breaks the disclosure rules
  4  another run holds the lock on this work_dir (retry later)";

/// The subcommands (see `pipeline-v1.md`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a linkage key: 32 random bytes as hex, mode 0600; never overwrites.
    Keygen {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write synthetic department extracts (CSV) and their ground truth (DIR/truth/).
    Synth {
        /// How many released prisoners.
        #[arg(long, default_value_t = 20_000)]
        people: u64,
        /// Random seed; the same seed gives the same files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Identifier noise: `standard` (the demo's), or `heavy` (three times the typos,
        /// nicknames and date errors, plus transposed names, missing NI numbers, surname changes
        /// and double-barrelled surnames recorded in part; see docs/synth.md).
        #[arg(long, value_enum, default_value_t = NoiseArg::Standard)]
        noise: NoiseArg,
    },
    /// Stage 1: standardise one extract's identifiers and replace them with tokens.
    Pseudonymise {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Which `[[extract]]` to pseudonymise.
        #[arg(long)]
        extract: String,
        /// Handle only slice I of N (1-based), for fan-out under a scheduler: N processes, on
        /// any hosts sharing work_dir, each write their own part files and a partial manifest.
        /// Only that partition's lock is taken, not the work_dir's.
        #[arg(long, value_name = "I/N")]
        partition: Option<String>,
        /// Check that all N partitions are present and complete and write the extract's
        /// manifest (`link` and `run` do this themselves when it is needed).
        #[arg(long, conflicts_with = "partition")]
        merge_manifests: bool,
    },
    /// Stage 2: link the pseudonymised extracts, by the match-key cascade or probabilistically.
    Link {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Handle only slice I of N (not supported yet).
        #[arg(long, value_name = "I/N")]
        partition: Option<String>,
        /// Ground truth folder written by `linklab synth`: report precision and recall.
        #[arg(long, value_name = "DIR")]
        truth: Option<PathBuf>,
        /// Which engine runs the link stage's joins (the cascade's, or the probabilistic
        /// method's blocking and comparisons): this process, or a Spark job launched with the
        /// `[link.spark]` settings. Both give the same linked datasets.
        #[arg(long, value_enum, default_value_t = EngineArg::Embedded)]
        engine: EngineArg,
    },
    /// Stage 3: build the person-level analysis frame, the matched comparison and the effects.
    Evaluate {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Stage 4: build the declared tables, suppress, audit, then write under release_dir.
    Release {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Every stage in order, skipping those whose inputs, settings and key are unchanged.
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Print the stage graph with inputs, outputs and partitions.
    Plan {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// How many partitions each pseudonymise stage is fanned out to (slurm: array tasks;
        /// json: added to each stage as `partitions`). Default for slurm: 2.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=9999))]
        partitions: Option<u32>,
    },
    /// Audit a release folder independently, from its published files alone: every file
    /// listed, checked and known; every total checked; an LP attacker over every published
    /// figure; exits 3 if anything breaks the rules.
    CheckRelease {
        /// The release folder.
        dir: PathBuf,
        /// The smallest count of persons that may be published (the checker's own rule; a
        /// manifest claiming a lower one fails).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        threshold: u64,
        /// Zeros may be published (by default a published zero fails, and a manifest saying
        /// zeros are not disclosive fails).
        #[arg(long)]
        zeros_published: bool,
        /// The rounding base published counts must follow (default: the manifest's; a manifest
        /// claiming another base fails).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        round_to: Option<u64>,
        /// The project key file: verify the manifest's signature (without it the signature is
        /// reported as unverified).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Another release folder to audit jointly (successive releases can be differenced:
        /// cells of the same source with the same dimension values are the same cells).
        #[arg(long, value_name = "OTHER_DIR")]
        with: Option<PathBuf>,
    },
    /// Write one self-contained page, DIR/index.html, over many programmes' release folders:
    /// only folders that pass check-release; a searchable table, filters, forest plots,
    /// survival curves and pooled estimates per programme type, from published figures alone.
    Dashboard {
        /// The release folders (one programme each).
        #[arg(required = true, value_name = "RELEASE_DIR")]
        releases: Vec<PathBuf>,
        /// The folder to write index.html into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// On a terminal, progress bars and a summary (-v adds the log lines); JSON lines otherwise.
    Auto,
    /// Readable log lines.
    Text,
    /// JSON lines.
    Json,
}

/// The link stage's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// In this process (the default).
    Embedded,
    /// Anchors and per-record decisions as a Spark job (`[link.spark]`: master, conf, python,
    /// spark_submit); clustering, person ids and the output stay in this process.
    Spark,
}

/// How much identifier noise `synth` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NoiseArg {
    /// The demo's noise.
    Standard,
    /// A harder world.
    Heavy,
}

impl From<NoiseArg> for linklab_synth::NoiseLevel {
    fn from(arg: NoiseArg) -> Self {
        match arg {
            NoiseArg::Standard => linklab_synth::NoiseLevel::Standard,
            NoiseArg::Heavy => linklab_synth::NoiseLevel::Heavy,
        }
    }
}

/// How `plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A readable list.
    Text,
    /// The stage graph as JSON.
    Json,
    /// A bash script that submits every stage to Slurm with `sbatch` (job arrays for the
    /// partitioned stages, `--dependency=afterok` between stages).
    Slurm,
}

/// Parses `I/N` (1-based).
pub fn parse_partition(text: &str) -> Option<(u32, u32)> {
    let (i, n) = text.split_once('/')?;
    let (i, n) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (1..=n).contains(&i).then_some((i, n))
}
