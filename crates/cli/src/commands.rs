//! What each subcommand does.

use std::path::Path;

use linklab_pipeline::Pipeline;
use linklab_store::{Lock, WorkDir};

use crate::args::{Cli, Command, PlanFormat, parse_partition};
use crate::error::CliError;
use crate::runner::{Outcome, run_stage};
use crate::stages;

/// Runs one parsed command line.
pub fn dispatch(cli: Cli, human: bool) -> Result<(), CliError> {
    match cli.command {
        Command::Keygen { out } => {
            let fingerprint = linklab_tokens::keygen(&out)?;
            println!(
                "wrote a new key to {} (fingerprint {fingerprint}); keep it secret",
                out.display()
            );
            Ok(())
        }
        Command::Synth { people, seed, out } => {
            let summary = stages::synth(people, seed, &out)?;
            println!("{summary}");
            Ok(())
        }
        Command::Pseudonymise {
            pipeline,
            extract,
            partition,
        } => {
            let partition = partition.as_deref().map(partition_arg).transpose()?;
            with_pipeline(&pipeline, |p, work| {
                if p.extract(&extract).is_none() {
                    return Err(CliError::Usage(format!(
                        "{} has no [[extract]] named {extract:?}; it declares: {}",
                        p.source.display(),
                        p.extracts
                            .iter()
                            .map(|e| e.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let stage = stages::pseudonymise(p, &extract, partition, human)?;
                let name = stage.name.clone();
                report(&name, run_stage(work, stage)?);
                Ok(())
            })
        }
        Command::Link {
            pipeline,
            partition,
            truth,
        } => {
            if partition.is_some() {
                return Err(CliError::Usage(
                    "the link stage does not support --partition yet".into(),
                ));
            }
            with_pipeline(&pipeline, |p, work| {
                // With --truth the quality figures are always computed, so the stage runs.
                let stage = stages::link(p, truth.as_deref(), human)?;
                report("link", run_stage(work, stage)?);
                Ok(())
            })
        }
        Command::Evaluate { pipeline } => with_pipeline(&pipeline, |p, work| {
            report("evaluate", run_stage(work, stages::evaluate(p, human)?)?);
            Ok(())
        }),
        Command::Release { pipeline } => with_pipeline(&pipeline, |p, work| {
            report("release", run_stage(work, stages::release(p, human))?);
            Ok(())
        }),
        Command::Run { pipeline } => with_pipeline(&pipeline, |p, work| {
            stages::prepare_demo(p)?;
            for stage in stages::all(p, human)? {
                let name = stage.name.clone();
                report(&name, run_stage(work, stage)?);
            }
            print_outputs(p);
            Ok(())
        }),
        Command::Plan { pipeline, format } => {
            let p = Pipeline::load(&pipeline)?;
            let plan = p.stages();
            match format {
                PlanFormat::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&plan).expect("the stage graph serialises")
                    );
                }
                PlanFormat::Text => {
                    for stage in &plan {
                        let fan = if stage.partitionable {
                            " (may be partitioned)"
                        } else {
                            ""
                        };
                        println!("{}{fan}", stage.name);
                        if !stage.depends_on.is_empty() {
                            println!("  after: {}", stage.depends_on.join(", "));
                        }
                        for input in &stage.inputs {
                            println!("  reads: {}", input.display());
                        }
                        for output in &stage.outputs {
                            println!("  writes: {}", output.display());
                        }
                    }
                }
            }
            Ok(())
        }
        Command::CheckRelease { dir } => stages::check_release(&dir),
    }
}

fn partition_arg(text: &str) -> Result<(u32, u32), CliError> {
    parse_partition(text).ok_or_else(|| {
        CliError::Usage(format!(
            "--partition takes I/N with 1 <= I <= N, e.g. 2/8 (got {text:?})"
        ))
    })
}

/// Loads the pipeline and holds the work_dir lock while `work` runs.
fn with_pipeline(
    path: &Path,
    work: impl FnOnce(&Pipeline, &WorkDir) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let pipeline = Pipeline::load(path)?;
    let work_dir = WorkDir::new(&pipeline.settings.work_dir);
    let _lock = Lock::acquire(&work_dir.lock_file())?;
    work(&pipeline, &work_dir)
}

fn report(stage: &str, outcome: Outcome) {
    match outcome {
        Outcome::Ran => println!("{stage}: done"),
        Outcome::Skipped => println!("{stage}: skipped (unchanged since its last success)"),
    }
}

fn print_outputs(p: &Pipeline) {
    let work = WorkDir::new(&p.settings.work_dir);
    println!();
    println!("secure area (work_dir): {}", work.root().display());
    println!(
        "  pseudonymised extracts: {}",
        work.root().join("pseudonymised").display()
    );
    println!("  linked data and linkage report: {}", work.linked().display());
    if p.evaluate.is_some() {
        println!("  analysis frame: {}", work.evaluation().display());
    }
    println!("  disclosure audit trail: {}", work.release_audit().display());
    println!(
        "release folder (the only output meant to leave): {}",
        p.settings.release_dir.display()
    );
}
