//! Builds each stage's configuration from the pipeline file, as a [`StageRun`] for the runner.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use linklab_pipeline::{Pipeline, StageKind, StagePlan};
use linklab_store::WorkDir;
use linklab_tokens::SecretKey;

use crate::args::EngineArg;
use crate::error::CliError;
use crate::logging::CliProgress;
use crate::programmes;
use crate::runner::StageRun;

/// `linklab synth`: writes the synthetic world and describes it.
pub fn synth(
    people: u64,
    seed: u64,
    out: &Path,
    noise: linklab_synth::NoiseLevel,
) -> Result<String, CliError> {
    let summary = linklab_synth::generate(&linklab_synth::SynthConfig {
        people,
        seed,
        out_dir: out.to_path_buf(),
        noise,
    })?;
    let took_part: Vec<String> = summary
        .programmes
        .iter()
        .map(|p| format!("{} in {}", p.participants, p.extract))
        .collect();
    let mut text = format!(
        "wrote a synthetic world of {} released prisoners ({} took part in the programmes: {}) and {} other people into {}",
        summary.people,
        summary.programmes.iter().map(|p| p.participants).sum::<u64>(),
        took_part.join(", "),
        summary.other_people,
        summary.out_dir.display()
    );
    for file in &summary.files {
        let _ = write!(text, "\n  {} ({} rows)", file.path, file.rows);
    }
    Ok(text)
}

/// For a demo pipeline (one with a `[synth]` section): makes the synthetic extracts and the keys
/// that are missing. A real pipeline has no `[synth]` section and never gets a key made for it.
pub fn prepare_demo(p: &Pipeline) -> Result<(), CliError> {
    let Some(synth) = &p.synth else { return Ok(()) };
    if p.extracts.iter().any(|e| !e.path.exists()) {
        tracing::info!(out_dir = %synth.out_dir.display(), people = synth.people, seed = synth.seed, "making the synthetic extracts");
        let noise = match synth.noise {
            linklab_pipeline::SynthNoise::Standard => linklab_synth::NoiseLevel::Standard,
            linklab_pipeline::SynthNoise::Heavy => linklab_synth::NoiseLevel::Heavy,
        };
        self::synth(synth.people, synth.seed, &synth.out_dir, noise)?;
    }
    for key in [&p.settings.key_file, &p.settings.project_key_file] {
        if !key.exists() {
            let fingerprint = linklab_tokens::keygen(key)?;
            tracing::warn!(
                key_file = %key.display(),
                fingerprint = %fingerprint,
                "DEMO ONLY: made a new key because this pipeline has a [synth] section; a real pipeline never auto-creates keys (use `linklab keygen` and share the linkage key out of band)"
            );
        }
    }
    Ok(())
}

fn fingerprint(path: &Path) -> Result<String, CliError> {
    Ok(SecretKey::from_file(path)?.fingerprint())
}

fn settings(p: &Pipeline, stage: &str) -> serde_json::Value {
    serde_json::to_value(p.stage_settings(stage)).expect("pipeline settings serialise")
}

/// Every stage of the pipeline, in order. An extract pseudonymised by partitions whose input,
/// settings and key are unchanged since every partition's success is merged (if needed) and
/// used; one whose partitions are stale or incomplete is pseudonymised again as one run, which
/// removes the partitions.
pub fn all(p: &Pipeline, human: bool) -> Result<Vec<StageRun<'_>>, CliError> {
    let mut stages = Vec::new();
    let work = WorkDir::new(&p.settings.work_dir);
    for stage in p.stages() {
        match stage.kind {
            StageKind::Pseudonymise => {
                let extract = stage.extract().expect("a pseudonymise stage names its extract");
                if partitions_current(p, extract, human)? {
                    tracing::info!(extract = %extract, "pseudonymised by partitions: using their merged output");
                    for line in merge_where_needed(p, [extract])? {
                        println!("{line}");
                    }
                } else {
                    if !linklab_pseudonymise::partial_manifest_paths(&work, extract)?.is_empty() {
                        tracing::warn!(extract = %extract, "its partitions are stale (input, settings or key changed) or incomplete: pseudonymising it again as one run");
                    }
                    stages.push(pseudonymise(p, extract, None, human)?);
                }
            }
            StageKind::Link => {
                // A demo pipeline knows its ground truth, so its linkage report shows precision
                // and recall.
                let truth = p.synth.as_ref().map(|s| s.out_dir.clone());
                stages.push(link(p, truth.as_deref(), EngineArg::Embedded, human)?);
            }
            StageKind::Evaluate => stages.push(evaluate(p, human)?),
            StageKind::Release => stages.push(release(p, human)),
        }
    }
    Ok(stages)
}

fn progress(human: bool) -> CliProgress {
    let _ = human;
    CliProgress::default()
}

/// The pseudonymise stage's settings for one extract of the pipeline.
fn pseudonymise_config(
    p: &Pipeline,
    e: &linklab_pipeline::Extract,
    work: &WorkDir,
    partition: Option<(u32, u32)>,
) -> Result<linklab_pseudonymise::PseudonymiseConfig, CliError> {
    use linklab_pipeline::{Encoding as E, Format};
    use linklab_pseudonymise::{Encoding, Identifier, InputFormat};
    let format = match e.format {
        Format::Csv => InputFormat::Csv {
            delimiter: e.delimiter_byte(),
            encoding: match e.encoding {
                E::Utf8 => Encoding::Utf8,
                E::Windows1252 => Encoding::Windows1252,
            },
        },
        Format::Parquet => InputFormat::Parquet,
    };
    let types = e.types.iter().map(|(column, t)| (column.clone(), *t)).collect();
    Ok(linklab_pseudonymise::PseudonymiseConfig {
        extract: e.name.clone(),
        input: e.path.clone(),
        format,
        identifiers: e
            .identifiers
            .iter()
            .map(|(name, id)| Identifier {
                name: name.clone(),
                column: id.column.clone(),
                kind: id.kind,
            })
            .collect(),
        keep: e.keep.clone(),
        types,
        match_keys: p.match_keys()?,
        compare: p.compare_fields(&e.name).to_vec(),
        key_file: p.settings.key_file.clone(),
        work_dir: work.clone(),
        max_reject_fraction: e.max_reject_fraction,
        batch_rows: linklab_pseudonymise::DEFAULT_BATCH_ROWS,
        today: chrono::Local::now().date_naive(),
        partition,
    })
}

/// The stage of this kind of the stage graph; for a pseudonymise stage, the first extract's.
fn graph_stage(p: &Pipeline, kind: StageKind) -> StagePlan {
    p.stages()
        .into_iter()
        .find(|stage| stage.kind == kind)
        .expect("the stage graph has every stage its pipeline declares")
}

/// The extract with this name and its stage of the stage graph.
pub fn pseudonymise_stage<'a>(
    p: &'a Pipeline,
    extract: &str,
) -> Result<(&'a linklab_pipeline::Extract, StagePlan), CliError> {
    p.extract(extract)
        .zip(p.pseudonymise_stage(extract))
        .ok_or_else(|| CliError::Usage(format!("no extract named {extract:?}")))
}

/// Stage 1 for one extract.
pub fn pseudonymise<'a>(
    p: &'a Pipeline,
    extract: &str,
    partition: Option<(u32, u32)>,
    human: bool,
) -> Result<StageRun<'a>, CliError> {
    let (e, stage) = pseudonymise_stage(p, extract)?;
    let work = WorkDir::new(&p.settings.work_dir);
    let config = pseudonymise_config(p, e, &work, partition)?;
    // A partition is a stage of its own: its own state file, and its partial manifest (which
    // lists its part files with their SHA-256) as its output.
    let (name, outputs) = match partition {
        None => (
            stage.state_name(),
            vec![work.pseudonymised(extract), work.pseudonymised_manifest(extract)],
        ),
        Some((i, n)) => (
            stage.partition_state_name(i, n),
            vec![linklab_pseudonymise::partial_manifest_path(&work, extract, i, n)],
        ),
    };
    Ok(StageRun {
        name,
        inputs: vec![e.path.clone()],
        settings: settings(p, &stage.name),
        key_fingerprints: vec![fingerprint(&p.settings.key_file)?],
        outputs,
        exec: Box::new(move || {
            let manifest = linklab_pseudonymise::run(&config, &progress(human))?;
            drop(manifest);
            Ok(())
        }),
    })
}

/// Whether `extract` was pseudonymised by `N` partitions, all present, each unchanged (input,
/// settings, key and outputs) since its last success.
fn partitions_current(p: &Pipeline, extract: &str, human: bool) -> Result<bool, CliError> {
    let work = WorkDir::new(&p.settings.work_dir);
    let found = linklab_pseudonymise::partial_manifest_paths(&work, extract)?;
    let Some(&(_, (_, count))) = found.first() else {
        return Ok(false);
    };
    let complete = found.len() == count as usize
        && found
            .iter()
            .enumerate()
            .all(|(i, (_, (index, n)))| *n == count && *index as usize == i + 1);
    if !complete {
        return Ok(false);
    }
    let partitions = (1..=count)
        .map(|i| pseudonymise(p, extract, Some((i, count)), human))
        .collect::<Result<Vec<_>, _>>()?;
    crate::runner::all_unchanged(&work, &partitions)
}

/// The final step of a partitioned pseudonymise run: checks the partitions of `extract` and
/// writes its manifest. Refuses partitions made with another key than the pipeline's.
pub fn merge_partitions(p: &Pipeline, extract: &str) -> Result<String, CliError> {
    let e = p
        .extract(extract)
        .ok_or_else(|| CliError::Usage(format!("no extract named {extract:?}")))?;
    let work = WorkDir::new(&p.settings.work_dir);
    let manifest = linklab_pseudonymise::merge_partitions(&work, extract, e.max_reject_fraction)?;
    let expected = fingerprint(&p.settings.key_file)?;
    // Where the input is at hand (not in a linkage environment that only links), the
    // partitions must have read it as it is now.
    let input_changed = e.path.is_file() && linklab_store::sha256_file(&e.path)? != manifest.input.sha256;
    if manifest.key_fingerprint != expected || input_changed {
        // The merged manifest must not stand: nothing downstream may read these tokens.
        let path = work.pseudonymised_manifest(extract);
        std::fs::remove_file(&path).map_err(|source| linklab_store::StoreError::Io {
            action: "cannot remove",
            path,
            source,
        })?;
        if input_changed {
            return Err(CliError::Usage(format!(
                "extract `{extract}`: its partitions read another version of {} than the one there now; rerun every partition, or pseudonymise it as one run",
                e.path.display()
            )));
        }
        return Err(CliError::Usage(format!(
            "extract `{extract}`: its partitions were pseudonymised with the key of fingerprint {}, not the pipeline's key ({expected}); rerun every partition",
            manifest.key_fingerprint
        )));
    }
    Ok(format!(
        "pseudonymise-{extract}: merged {} partitions ({} records read, {} written, {} rejected)",
        manifest.partitions.unwrap_or(0),
        manifest.rows.read,
        manifest.rows.written,
        manifest.rows.rejected
    ))
}

/// Merges the partitions of every extract in `extracts` that has partial manifests and no
/// manifest newer than them, before a stage reads them. Returns what it did, one line each.
pub fn merge_where_needed<'e>(
    p: &Pipeline,
    extracts: impl IntoIterator<Item = &'e str>,
) -> Result<Vec<String>, CliError> {
    let work = WorkDir::new(&p.settings.work_dir);
    let mut done = Vec::new();
    for extract in extracts {
        if linklab_pseudonymise::needs_merge(&work, extract)? {
            done.push(merge_partitions(p, extract)?);
        }
    }
    Ok(done)
}

/// Stage 2.
pub fn link<'a>(
    p: &'a Pipeline,
    truth: Option<&Path>,
    engine: EngineArg,
    human: bool,
) -> Result<StageRun<'a>, CliError> {
    let work = WorkDir::new(&p.settings.work_dir);
    let mut inputs: Vec<PathBuf> = Vec::new();
    for name in &p.link.extracts {
        inputs.push(work.pseudonymised(name));
        inputs.push(work.pseudonymised_manifest(name));
    }
    if let Some(truth) = truth {
        inputs.push(truth.to_path_buf());
    }
    let config = linklab_link::LinkConfig {
        match_keys: p.match_key_specs.iter().map(|k| k.name.clone()).collect(),
        spine: p.link.spine.clone(),
        extracts: p.link.extracts.clone(),
        work_dir: work.clone(),
        project_key_file: p.settings.project_key_file.clone(),
        memory_limit: p.link.memory_limit,
        max_cluster_size: usize::try_from(p.link.max_cluster_size).unwrap_or(usize::MAX),
        truth_dir: truth.map(Path::to_path_buf),
        engine: match engine {
            EngineArg::Embedded => linklab_link::Engine::Embedded,
            EngineArg::Spark => linklab_link::Engine::Spark(spark_settings(p)),
        },
        method: link_method(p),
    };
    Ok(StageRun {
        name: graph_stage(p, StageKind::Link).state_name(),
        inputs,
        settings: settings(p, &graph_stage(p, StageKind::Link).name),
        key_fingerprints: vec![fingerprint(&p.settings.project_key_file)?],
        outputs: vec![work.linked()],
        exec: Box::new(move || {
            let report = linklab_link::run(&config, &progress(human))?;
            println!("{}", report.summary());
            Ok(())
        }),
    })
}

/// `[link] method` for the link stage: the compared fields with the kinds the extracts declare
/// for them (the pipeline checked that every linked extract declares each).
fn link_method(p: &Pipeline) -> linklab_link::Method {
    match &p.link.method {
        linklab_pipeline::LinkMethod::Cascade => linklab_link::Method::Cascade,
        linklab_pipeline::LinkMethod::Probabilistic(settings) => {
            let compare = settings
                .compare
                .iter()
                .filter_map(|name| {
                    p.extracts
                        .iter()
                        .find_map(|e| e.identifier(name))
                        .map(|id| linklab_link::CompareField {
                            name: name.clone(),
                            kind: id.kind,
                        })
                })
                .collect();
            linklab_link::Method::Probabilistic(linklab_link::ProbabilisticConfig {
                compare,
                match_probability: settings.match_probability,
            })
        }
    }
}

/// The Spark job's settings from `[link.spark]` (defaults without it). The interpreter is
/// `python` there, else `LINKLAB_SPARK_PYTHON`, else the nearest `.venv-spark/` above the
/// pipeline file or the current folder, else `python3`.
fn spark_settings(p: &Pipeline) -> linklab_link::SparkSettings {
    let section = p.link.spark.clone().unwrap_or_default();
    let pipeline_dir = p.source.parent().unwrap_or_else(|| Path::new("."));
    let python = linklab_link::find_python(section.python.as_deref(), &[pipeline_dir, Path::new(".")]);
    linklab_link::SparkSettings {
        python,
        spark_submit: section.spark_submit,
        master: section.master,
        conf: section.conf,
    }
}

/// Stage 3.
pub fn evaluate(p: &Pipeline, human: bool) -> Result<StageRun<'_>, CliError> {
    use linklab_evaluate::{EvaluateConfig, Outcome, OutcomeKind, Unknown};
    use linklab_pipeline::OutcomeKind as K;
    let Some(ev) = &p.evaluate else {
        return Err(CliError::Usage(format!(
            "{} has no [evaluate] section",
            p.source.display()
        )));
    };
    let work = WorkDir::new(&p.settings.work_dir);
    let mut config = EvaluateConfig::new(work.clone(), &ev.cohort, &ev.index_date, "");
    config.covariates.clone_from(&ev.covariates);
    config.follow_up_days = u32::try_from(ev.follow_up_days).unwrap_or(u32::MAX);
    config.min_treated = usize::try_from(ev.min_treated).unwrap_or(usize::MAX);
    config.caliper = ev.caliper;
    config.ratio = usize::try_from(ev.ratio).unwrap_or(1);
    config.replacement = ev.replacement;
    config.threshold = p.disclosure.threshold;
    config.data_cutoff = ev.data_cutoff.as_deref().and_then(linklab_pipeline::parse_day);
    config.treatment_date.clone_from(&ev.treatment_date);
    config.deaths = ev
        .deaths
        .clone()
        .zip(ev.deaths_date.clone())
        .map(|(extract, date)| linklab_evaluate::Deaths { extract, date });
    config.outcomes = ev
        .outcomes
        .iter()
        .map(|o| {
            let extract = o.extract.clone();
            let date = o.date.clone().unwrap_or_default();
            let (start, end) = (
                o.start.clone().unwrap_or_default(),
                o.end.clone().unwrap_or_default(),
            );
            let kind = match o.kind {
                K::EventWithin => OutcomeKind::EventWithin { extract, date },
                K::SpellOverlap => OutcomeKind::SpellOverlap { extract, start, end },
                K::SpellDays => OutcomeKind::SpellDays { extract, start, end },
                K::TimeToEvent => OutcomeKind::TimeToEvent { extract, date },
                K::EventCount => OutcomeKind::EventCount { extract, date },
                K::SpellAt => OutcomeKind::SpellAt {
                    extract,
                    start,
                    end,
                    day: o.day.map_or(1, |d| u32::try_from(d).unwrap_or(u32::MAX)),
                },
            };
            Outcome {
                name: o.name.clone(),
                kind,
                filter: o.filter.clone(),
                follow_up_days: o.follow_up_days.map(|d| u32::try_from(d).unwrap_or(u32::MAX)),
                unknown: match o.unknown.unwrap_or_default() {
                    linklab_pipeline::Unknown::Zero => Unknown::Zero,
                    linklab_pipeline::Unknown::Exclude => Unknown::Exclude,
                },
            }
        })
        .collect();
    let several = programmes::several(p);
    let runs: Vec<(String, PathBuf)> = programmes::programmes(p)
        .into_iter()
        .map(|d| (d.extract.to_owned(), d.evaluation))
        .collect();
    Ok(StageRun {
        name: graph_stage(p, StageKind::Evaluate).state_name(),
        inputs: vec![work.linked()],
        settings: settings(p, &graph_stage(p, StageKind::Evaluate).name),
        key_fingerprints: Vec::new(),
        outputs: vec![work.evaluation()],
        exec: Box::new(move || {
            // Each programme against the same cohort and outcomes, one after another (each
            // evaluation uses every core).
            for (extract, out_dir) in &runs {
                // With several programmes, every log line says whose evaluation it is about.
                let _span = several.then(|| tracing::info_span!("programme", extract = %extract).entered());
                let mut config = config.clone();
                config.treatment.clone_from(extract);
                config.out_dir.clone_from(out_dir);
                let summary = linklab_evaluate::run(&config, &progress(human))?;
                if let Some(reason) = &summary.no_estimate_reason {
                    let who = if several {
                        format!(" {extract}")
                    } else {
                        String::new()
                    };
                    println!("evaluate{who}: no estimate: {reason}");
                }
            }
            Ok(())
        }),
    })
}

/// Stage 4: one release per programme (or one of the tables alone without `[evaluate]`), then
/// with several programmes the dashboard over them, `release_dir/index.html`.
pub fn release(p: &Pipeline, human: bool) -> StageRun<'_> {
    let work = WorkDir::new(&p.settings.work_dir);
    let mut inputs = vec![work.linked()];
    if p.evaluate.is_some() {
        inputs.push(work.evaluation());
    }
    StageRun {
        name: graph_stage(p, StageKind::Release).state_name(),
        inputs,
        settings: settings(p, &graph_stage(p, StageKind::Release).name),
        // The manifest is signed with the project key: a new key means a new signature. (A key
        // that cannot be read is reported when the stage runs.)
        key_fingerprints: fingerprint(&p.settings.project_key_file).into_iter().collect(),
        outputs: vec![p.settings.release_dir.clone()],
        // Built when the stage runs: the evaluation's files and the cohort's manifest exist then.
        exec: Box::new(move || {
            let dirs = programmes::programmes(p);
            let cohort = p
                .evaluate
                .as_ref()
                .and_then(|e| programmes::cohort_fingerprint(&work, &e.cohort));
            let mut configs: Vec<linklab_release::ReleaseConfig> = dirs
                .iter()
                .map(|d| {
                    let mut config =
                        release_config(p, Some(&d.evaluation), d.release.clone(), d.audit.clone());
                    config.programme = Some(programmes::release_meta(d, cohort.as_ref()));
                    config
                })
                .collect();
            if configs.is_empty() {
                let release_dir = p.settings.release_dir.clone();
                configs.push(release_config(p, None, release_dir, work.release_audit()));
            }
            // With several programmes, the whole release folder is this run's while it writes
            // (each programme's folder is locked again by its own release).
            let several = programmes::several(p);
            let _lock = if several {
                let lock = linklab_store::Lock::acquire(&linklab_release::release_lock_path(
                    &p.settings.release_dir,
                ))?;
                programmes::refuse_flat_release(&p.settings.release_dir)?;
                Some(lock)
            } else {
                None
            };
            for config in &configs {
                linklab_release::run(config, &progress(human))?;
                println!("release: wrote {}", config.release_dir.display());
            }
            if several {
                let folders = programmes::release_dirs(&dirs);
                let page = programmes::dashboard(&folders, &p.settings.release_dir)?;
                println!("release: wrote the dashboard {}", page.display());
            }
            Ok(())
        }),
    }
}

/// The release of one programme's evaluation (`evaluation`: its folder), or of the tables alone.
fn release_config(
    p: &Pipeline,
    evaluation: Option<&Path>,
    release_dir: PathBuf,
    audit_dir: PathBuf,
) -> linklab_release::ReleaseConfig {
    let work = WorkDir::new(&p.settings.work_dir);
    let tables = p
        .tables
        .iter()
        .filter_map(|t| {
            let source = match t.from.as_str() {
                "evaluation" => evaluation?.join("frame"),
                other => work.linked_table(other),
            };
            Some(linklab_release::TableSpec {
                name: t.name.clone(),
                source,
                by: t.by.clone(),
                sum: t.sum.clone(),
            })
        })
        .collect();
    let extra_files = evaluation.map_or_else(Vec::new, |dir| {
        ["impact.csv", "balance.csv", "survival.csv", "report.html"]
            .into_iter()
            .map(|name| dir.join("publish").join(name))
            .filter(|path| path.is_file())
            .collect()
    });
    linklab_release::ReleaseConfig {
        pipeline_name: p.settings.name.clone(),
        rules: p.disclosure.rules(),
        tables,
        extra_files,
        release_dir,
        audit_dir,
        signing_key: Some(p.settings.project_key_file.clone()),
        programme: None,
    }
}

/// `linklab check-release DIR`: the independent audit of `linklab-check`. Problems are
/// printed on stdout, one a line, then the command fails with exit code 3.
pub fn check_release(dir: &Path, opts: &linklab_check::CheckOptions) -> Result<(), CliError> {
    let report = linklab_check::check_release(dir, opts)?;
    if report.is_ok() {
        for note in &report.notes {
            println!("note: {note}");
        }
        println!(
            "{}: every released file passes the disclosure checks",
            dir.display()
        );
        Ok(())
    } else {
        print!("{report}");
        Err(CliError::ReleaseRejected {
            dir: dir.to_path_buf(),
            problems: report.problems.len(),
            first: report.problems[0].to_string(),
        })
    }
}
