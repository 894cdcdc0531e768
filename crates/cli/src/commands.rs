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
        Command::Synth {
            people,
            seed,
            out,
            noise,
        } => {
            let summary = stages::synth(people, seed, &out, noise.into())?;
            println!("{summary}");
            Ok(())
        }
        Command::Pseudonymise {
            pipeline,
            extract,
            partition,
            merge_manifests,
        } => pseudonymise(&pipeline, &extract, partition.as_deref(), merge_manifests, human),
        Command::Link {
            pipeline,
            partition,
            truth,
            engine,
        } => {
            if partition.is_some() {
                return Err(CliError::Usage(
                    "the link stage does not support --partition yet".into(),
                ));
            }
            with_pipeline(&pipeline, |p, work| {
                // Partitioned extracts are merged (and checked) before anything links them.
                for line in stages::merge_where_needed(p, p.link.extracts.iter().map(String::as_str))? {
                    println!("{line}");
                }
                // With --truth the quality figures are always computed, so the stage runs.
                let stage = stages::link(p, truth.as_deref(), engine, human)?;
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
            // Current partitions are merged here; stale ones are pseudonymised again whole.
            for stage in stages::all(p, human)? {
                let name = stage.name.clone();
                report(&name, run_stage(work, stage)?);
            }
            crate::summary::print_run_summary(p);
            Ok(())
        }),
        Command::Plan {
            pipeline,
            format,
            partitions,
        } => plan(&pipeline, format, partitions),
        Command::CheckRelease {
            dir,
            threshold,
            zeros_published,
            round_to,
            key,
            with,
        } => stages::check_release(
            &dir,
            &linklab_check::CheckOptions {
                threshold,
                zeros_disclosive: !zeros_published,
                round_to,
                key,
                with,
            },
        ),
        Command::Dashboard { releases, out } => {
            let page = crate::programmes::dashboard(&releases, &out)?;
            println!(
                "wrote the dashboard of {} release(s) to {}",
                releases.len(),
                page.display()
            );
            Ok(())
        }
    }
}

/// `linklab pseudonymise`: one extract whole, one partition of it (holding only that partition's
/// lock, as partitions run side by side), or the merge of its partitions' manifests.
fn pseudonymise(
    pipeline: &Path,
    extract: &str,
    partition: Option<&str>,
    merge_manifests: bool,
    human: bool,
) -> Result<(), CliError> {
    let partition = partition.map(partition_arg).transpose()?;
    let check_extract = |p: &Pipeline| {
        if p.extract(extract).is_none() {
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
        Ok(())
    };
    if merge_manifests {
        return with_pipeline(pipeline, |p, _| {
            check_extract(p)?;
            println!("{}", stages::merge_partitions(p, extract)?);
            Ok(())
        });
    }
    let Some((i, n)) = partition else {
        return with_pipeline(pipeline, |p, work| {
            check_extract(p)?;
            let stage = stages::pseudonymise(p, extract, None, human)?;
            let name = stage.name.clone();
            report(&name, run_stage(work, stage)?);
            Ok(())
        });
    };
    // Partitions run side by side, possibly on other hosts: each holds only its own lock.
    let p = Pipeline::load(pipeline)?;
    check_extract(&p)?;
    let work = WorkDir::new(&p.settings.work_dir);
    let (_, stage) = stages::pseudonymise_stage(&p, extract)?;
    let lock = work
        .state()
        .join(format!("{}.lock", stage.partition_state_name(i, n)));
    let _lock = Lock::acquire(&lock)?;
    let stage = stages::pseudonymise(&p, extract, partition, human)?;
    let name = stage.name.clone();
    report(&name, run_stage(&work, stage)?);
    Ok(())
}

/// `linklab plan`: the stage graph as text or JSON, or a Slurm submission script.
fn plan(pipeline: &Path, format: PlanFormat, partitions: Option<u32>) -> Result<(), CliError> {
    let p = Pipeline::load(pipeline)?;
    let plan = p.stages();
    match format {
        PlanFormat::Json => {
            let mut json = serde_json::to_value(&plan).expect("the stage graph serialises");
            // With --partitions, each stage says how many slices this plan fans it out to.
            if let (Some(n), Some(stages)) = (partitions, json.as_array_mut()) {
                for (stage, value) in plan.iter().zip(stages) {
                    let count = if stage.partitionable { n } else { 1 };
                    value["partitions"] = count.into();
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("the stage graph serialises")
            );
        }
        PlanFormat::Slurm => {
            let bin = std::env::current_exe().map_err(|source| {
                CliError::Usage(format!(
                    "cannot find the path of the running linklab binary for the job scripts: {source}"
                ))
            })?;
            let options = linklab_pipeline::SlurmOptions {
                linklab_bin: std::fs::canonicalize(&bin).unwrap_or(bin),
                partitions: partitions.unwrap_or(2),
            };
            print!("{}", linklab_pipeline::render_slurm(&p, &options));
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
