//! Stage 2: the match-key cascade into a linked dataset with project-specific person ids.
//!
//! [`run`] reads every extract's pseudonymised Parquet (`work_dir/pseudonymised/<extract>/`:
//! `tok_<match key>` columns and the kept attributes), and writes `work_dir/linked/`:
//! `persons/`, one folder per extract, and `linkage-report.json` (a [`LinkageReport`]). The
//! folder is built under a staging name and swapped in at the end, so a failed run leaves the
//! previous good output. No token column survives into `linked/`.
//!
//! With [`Method::Probabilistic`] the stage scores blocked pairs with a Fellegi–Sunter model over
//! per-field comparison tokens instead of sections 1 and 2 (the `probabilistic` module;
//! `docs/linkage.md`); person ids, `linked/` and the report are made as below.
//!
//! # 1. Persons from the spine
//! Spine records of the same person (released twice) become one person. For each match key k,
//! strongest first, each spine record's *anchor* is the first spine record (in input order) with
//! the same k-token. Then, key by key and record by record in input order, the cluster of each
//! record is merged with the cluster of its anchor, unless
//! - the merged cluster would hold more than `max_cluster_size` records (default 10), or
//! - a stronger key j (earlier in the cascade) separates them: both clusters hold j-tokens and
//!   no j-token is held by both. So if A~B and B~C by a weak key but A and C have different
//!   NI numbers, A, B and C never become one person.
//!
//! Persons are numbered in the order of their first spine record. Every spine record belongs to
//! exactly one person (a record with no token at all is a person on its own).
//!
//! # 2. The cascade for the other extracts
//! A person *has* a token if any of its spine records has it. For each record, the keys are
//! tried in order; at the first key k where the record's token is held by some person:
//! - held by exactly one person: the record is linked to it, `match_key = k`;
//! - held by several: the record is *ambiguous at k* and stays unlinked; weaker keys are not
//!   tried (falling through would link on weaker evidence than the evidence that was rejected).
//!
//! A record whose tokens no person has stays unlinked. Every input record appears exactly once
//! in `linked/<extract>/`, in input order (part files in name order, rows in file order), with
//! `person_id` and `match_key` null when unlinked. Spine records get their own person and
//! `match_key = "spine"`.
//!
//! # 3. Person ids
//! A spine record's *fingerprint* is SHA-256 of `"linklab/record-fingerprint/v1"` followed, for
//! each match key in cascade order, by `0x1F ‖ key name ‖ 0x1F ‖ (0x00 if its token is null,
//! else 0x01 ‖ the 32 token bytes)`. A person's id is the first 32 hex digits of
//! HMAC-SHA256(project key, `"linklab/person-id/v1"` ‖ 0x1F ‖ the smallest fingerprint of its
//! spine records). Hence: reruns on the same data give the same ids; a person whose spine
//! records are unchanged keeps its id when a refresh adds records; two project keys give
//! unrelated ids, so two projects' outputs cannot be joined. If several persons share their
//! smallest fingerprint (records with no token, or identical records split by the size limit),
//! the second and later in person order get `0x1F ‖ n` (n = 1, 2, … as 4 big-endian bytes)
//! appended to the message, which keeps ids unique.
//!
//! # 4. Memory
//! The run's memory is modelled as fixed per-record state (8 bytes per record of the other
//! extracts; per spine record 4 bytes per key, a 32-byte fingerprint, a person number and a
//! 32-byte person id) plus 96 MiB for Parquet reading and writing, plus the spine's hash tables
//! at about 116 bytes per (spine record, key) while they are built. When the tables do not fit
//! in what `memory_limit` leaves after the fixed part, both sides are split into P partitions
//! by the last two bytes of the token (tokens are uniformly random), spilled to
//! `work_dir/spill/` as fixed-size binary rows, and the partitions are processed one after
//! another, each spill file streamed in chunks. The outputs are identical to the in-memory
//! plan's, byte for byte. A limit below the fixed part cannot be kept: the run then uses the
//! most partitions (256) and warns.
//!
//! # 5. The plan in relational terms
//! ```sql
//! -- spine_tokens(key, token, record): one row per non-null spine token
//! -- anchors: SELECT key, token, MIN(record) AS anchor FROM spine_tokens GROUP BY key, token
//! -- persons: ordered union-find over anchors (section 1)
//! -- person_tokens: SELECT key, token,
//! --        CASE WHEN COUNT(DISTINCT person) = 1 THEN MIN(person) END AS person  -- NULL: ambiguous
//! --   FROM spine_tokens JOIN persons USING (record) GROUP BY key, token
//! -- hits: SELECT e.record, e.key, p.person FROM extract_tokens e
//! --   JOIN person_tokens p ON e.key = p.key AND e.token = p.token
//! -- decided: SELECT * FROM hits QUALIFY ROW_NUMBER() OVER (PARTITION BY record ORDER BY key) = 1
//! -- linked: SELECT person_id, key AS match_key, keep… FROM extract LEFT JOIN decided USING (record)
//! ```
//!
//! # 6. Quality against ground truth
//! With a truth folder (what `linklab synth` writes: `truth/records.csv`, header
//! `extract,record_id,person`), records are matched by their kept `record_id` column and the
//! report gives: for the spine clustering, pairwise precision and recall over pairs of spine
//! records; for each other extract, pairwise precision and recall over (record, spine record)
//! pairs — a pair is predicted when the record is linked to the spine record's person, and true
//! when both have the same true person — and per record: a linked record is correct when its
//! person has a spine record of the record's true person (precision = correct / linked,
//! recall = correct / records whose true person is on the spine). An extract that does not keep
//! `record_id` is noted in the report instead.
//!
//! # 7. Engines
//! With [`Engine::Spark`] the two relational steps of section 5 (`anchors`, and `person_tokens`
//! through `decided`) run as a Spark job over the pseudonymised Parquet; fingerprints, the
//! clustering, person ids, `linked/` and the report come from the same code as with the
//! default [`Engine::Embedded`], so the linked datasets are identical (the report's
//! `partitions` is 1: nothing is partitioned here). With [`Method::Probabilistic`] the job finds
//! the candidate pairs and their level patterns instead (`docs/linkage.md`, "Engines"). See the
//! `spark` module for how it runs.
#![forbid(unsafe_code)]

mod cascade;
mod cluster;
mod config;
mod error;
mod identity;
mod input;
mod output;
mod plan;
mod probabilistic;
mod quality;
mod report;
mod report_build;
mod spark;
mod spill;
mod spine;
mod tok;

use std::collections::HashMap;

use linklab_store::{NoProgress, Progress, StagingDir, write_json_atomic};
use tracing::info;

use cascade::{batch_outcomes, link_partitioned};
pub use config::{DEFAULT_MAX_CLUSTER_SIZE, DEFAULT_MEMORY_LIMIT, LinkConfig, Method};
pub use error::LinkError;
use input::ExtractInput;
use output::{Outcome, SPINE, Tally, WriteContext, write_extract};
use plan::{Opened, engine, open};
pub use probabilistic::{
    BlockingRule, CompareField, ExtractCount, FieldModel, InputModel, LevelModel, MAX_FIELDS, ModelReport,
    ProbabilisticConfig, RuleCount, RuleLinks, SpineDedup, ThroughLinked, WeightBin, WeightHistogram,
};
pub use report::{
    ClusterSize, ExtractQuality, ExtractReport, KeyReport, LinkageReport, PairwiseQuality, ProfileColumn,
    ProfileValue, QualityReport, SpineKeyReport, SpineReport,
};
use report_build::{ReportExtras, build_report};
pub use spark::{DEFAULT_MASTER, Engine, PYTHON_ENV, SparkSettings, VENV_DIR, find_python};
use spine::{person_ids_of, spine_persons, spine_truth_of};

/// Links every extract to the persons of the spine and writes `work_dir/linked/`.
pub fn run(cfg: &LinkConfig, progress: &dyn Progress) -> Result<LinkageReport, LinkError> {
    let opened = open(cfg)?;
    match &cfg.method {
        Method::Cascade => cascade(cfg, opened, progress),
        Method::Probabilistic(p) => probabilistic::run(cfg, p, opened, progress),
    }
}

/// The match-key cascade (sections 1 to 5).
fn cascade(
    cfg: &LinkConfig,
    mut opened: Opened,
    progress: &dyn Progress,
) -> Result<LinkageReport, LinkError> {
    let (job, partitions, spill) = engine(cfg, &opened.inputs, opened.spine_index)?;
    // In memory, the extracts are decoded ahead on reader threads; a spilling run reads them on
    // the thread that uses them, within its `memory_limit`.
    for input in &mut opened.inputs {
        input.read_ahead = spill.is_none();
    }
    // 1. Persons from the spine.
    let (mut pass, persons, ambiguous) = spine_persons(
        cfg,
        &opened.inputs[opened.spine_index],
        job.as_ref(),
        spill.as_ref().map(|s| (s.path(), partitions)),
        progress,
    )?;
    // The spine's tokens are counted: writing it decodes only its keep columns.
    opened.inputs[opened.spine_index].with_token = Some(pass.with_token.clone());
    let (inputs, spine_index, truth) = (&opened.inputs, opened.spine_index, &opened.truth);
    let spine = &inputs[spine_index];

    // 3. Person ids from each person's smallest record fingerprint.
    let person_ids = person_ids_of(&opened.hasher, &mut pass, &persons);

    // 2, with Spark: every other record's outcome, decided before anything is written.
    let decided = job
        .as_ref()
        .map(|job| {
            job.decide(
                inputs,
                spine_index,
                &persons.person_of,
                persons.first.len(),
                progress,
            )
        })
        .transpose()?;

    // 4. Outputs, staged.
    let staging = StagingDir::new(&cfg.work_dir.linked())?;
    let mut ctx = WriteContext {
        key_names: &cfg.match_keys,
        person_ids: &person_ids,
        first_record: &persons.first,
        person_size: &persons.size,
        truth: truth.as_ref(),
        spine_truth: None,
        extra_fields: &[],
    };
    let person_of = &persons.person_of;
    let write_spine =
        |ctx: &WriteContext<'_>| write_spine_records(spine, person_of, staging.path(), ctx, progress);

    // 2. The cascade for every other extract: in memory, by the spine's anchor maps.
    let others: Vec<&ExtractInput> = inputs.iter().filter(|e| e.name != cfg.spine).collect();
    let in_memory = decided.is_none() && spill.is_none();
    let maps = std::mem::take(&mut pass.maps);
    let spine_people = (ambiguous.as_slice(), person_of.as_slice());
    let write_others = |ctx: &WriteContext<'_>, progress: &dyn Progress| {
        write_in_memory(&others, &maps, spine_people, staging.path(), ctx, progress)
    };

    let mut notes = Vec::new();
    let mut spine_truth = None;
    let (spine_tally, tallies) = if in_memory && truth.is_none() {
        // Without ground truth, writing the other extracts needs nothing that writing the spine
        // gives: both are written side by side, on both cores (the spine's progress is shown).
        std::thread::scope(|scope| {
            let others = std::thread::Builder::new()
                .name("link-write-extracts".into())
                .spawn_scoped(scope, || write_others(&ctx, &NoProgress))
                .map_err(|source| LinkError::WriterThread { source })?;
            let spine_tally = write_spine(&ctx);
            let tallies = others.join().expect("writing the extracts panicked");
            Ok::<_, LinkError>((spine_tally?, tallies?))
        })?
    } else {
        let spine_tally = write_spine(&ctx)?;
        spine_truth = truth
            .as_ref()
            .and_then(|_| spine_truth_of(spine, &spine_tally, pass.records, &persons, &mut notes));
        ctx.spine_truth = spine_truth.as_ref();
        let tallies = match (decided, &spill) {
            (Some(states), _) => write_stored(&others, &states, staging.path(), &ctx, progress)?,
            (None, Some(spill)) => {
                let states = link_partitioned(
                    &others,
                    &pass,
                    &ambiguous,
                    person_of,
                    spill.path(),
                    partitions,
                    progress,
                )?;
                write_stored(&others, &states, staging.path(), &ctx, progress)?
            }
            (None, None) => write_others(&ctx, progress)?,
        };
        (spine_tally, tallies)
    };
    drop(spill);

    let report = build_report(
        cfg,
        inputs,
        &persons,
        &ambiguous,
        &pass,
        &spine_tally,
        tallies,
        ReportExtras {
            project_fingerprint: opened.project_fingerprint,
            linkage_fingerprint: opened.linkage_fingerprint,
            partitions,
            spine_truth: spine_truth.as_ref(),
            notes,
            truth: truth.is_some(),
        },
    );
    write_json_atomic(&staging.path().join("linkage-report.json"), &report)?;
    staging.commit()?;
    if let Some(job) = job {
        job.clean();
    }
    info!(persons = persons.first.len(), extracts = inputs.len(), "linked");
    Ok(report)
}

/// Writes each of `others` with the outcomes decided before (`states`, one per extract).
fn write_stored(
    others: &[&ExtractInput],
    states: &[Vec<Outcome>],
    linked_dir: &std::path::Path,
    ctx: &WriteContext<'_>,
    progress: &dyn Progress,
) -> Result<HashMap<String, Tally>, LinkError> {
    let mut tallies = HashMap::new();
    for (input, state) in others.iter().zip(states) {
        let tally = write_extract(input, linked_dir, false, ctx, progress, |batch, start| {
            Ok((state[start..start + batch.num_rows()].to_vec(), Vec::new()))
        })?;
        tallies.insert(input.name.clone(), tally);
    }
    Ok(tallies)
}

/// Writes the spine, each record's outcome its person.
fn write_spine_records(
    spine: &ExtractInput,
    person_of: &[u32],
    linked_dir: &std::path::Path,
    ctx: &WriteContext<'_>,
    progress: &dyn Progress,
) -> Result<Tally, LinkError> {
    write_extract(spine, linked_dir, true, ctx, progress, |batch, start| {
        Ok((
            person_of[start..start + batch.num_rows()]
                .iter()
                .map(|&person| Outcome { key: SPINE, person })
                .collect(),
            Vec::new(),
        ))
    })
}

/// Writes each of `others`, its records' outcomes found in the spine's in-memory anchor maps.
fn write_in_memory(
    others: &[&ExtractInput],
    anchors: &[tok::TokMap<u32>],
    spine_persons: (&[Vec<bool>], &[u32]),
    linked_dir: &std::path::Path,
    ctx: &WriteContext<'_>,
    progress: &dyn Progress,
) -> Result<HashMap<String, Tally>, LinkError> {
    let mut tallies = HashMap::new();
    for input in others {
        let tally = write_extract(input, linked_dir, false, ctx, progress, |batch, _| {
            Ok((
                batch_outcomes(
                    &input.token_columns(batch),
                    anchors,
                    spine_persons,
                    batch.num_rows(),
                ),
                Vec::new(),
            ))
        })?;
        tallies.insert(input.name.clone(), tally);
    }
    Ok(tallies)
}
