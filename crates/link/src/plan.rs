//! How a run is planned: the extracts opened and checked, the memory model, and the engine
//! with its partitions.

use linklab_tokens::{SecretKey, TokenHasher};
use rayon::prelude::*;
use tracing::{info, warn};

use crate::config::{BYTES_PER_SPINE_TOKEN, IO_RESERVE, MAX_PARTITIONS, validate};
use crate::input::ExtractInput;
use crate::quality::Truth;
use crate::spill::SpillDir;
use crate::{Engine, LinkConfig, LinkError, spark};

/// The memory a run needs besides the spine's hash tables: the per-record state (an outcome of
/// 8 bytes per record of the other extracts; per spine record, an anchor per key, a fingerprint,
/// a person number and, per person, an id) plus room for reading and writing Parquet.
fn fixed_memory(spine_rows: u64, other_rows: u64, keys: usize) -> u64 {
    let per_spine = 4 * keys as u64 + 32 + 4 + 4 + 32;
    other_rows
        .saturating_mul(8)
        .saturating_add(spine_rows.saturating_mul(per_spine))
        .saturating_add(IO_RESERVE)
}

/// The number of token partitions: 1 when the spine's hash tables fit in what `memory_limit`
/// leaves after [`fixed_memory`]. A limit that does not even cover that gets the most
/// partitions and a warning: the run goes on, but its peak memory will exceed the limit.
pub(crate) fn partitions_for(spine_rows: u64, other_rows: u64, keys: usize, memory_limit: u64) -> usize {
    let fixed = fixed_memory(spine_rows, other_rows, keys);
    let tables = spine_rows
        .saturating_mul(keys as u64)
        .saturating_mul(BYTES_PER_SPINE_TOKEN);
    let needed_minimum = fixed.saturating_add(tables / MAX_PARTITIONS);
    if memory_limit < needed_minimum {
        warn!(
            memory_limit_mib = memory_limit >> 20,
            needed_mib = needed_minimum.div_ceil(1 << 20),
            spine_rows,
            other_rows,
            "memory_limit is below what this run needs; using the most partitions, and raise `memory_limit` in [link]"
        );
        return MAX_PARTITIONS as usize;
    }
    let budget = memory_limit - fixed;
    if tables <= budget {
        1
    } else {
        tables.div_ceil(budget).clamp(2, MAX_PARTITIONS) as usize
    }
}

/// Checks that every extract was pseudonymised with the same linkage key; returns its fingerprint.
fn common_fingerprint(inputs: &[ExtractInput]) -> Result<String, LinkError> {
    let first = &inputs[0];
    for other in &inputs[1..] {
        if other.key_fingerprint != first.key_fingerprint {
            return Err(LinkError::KeyMismatch {
                first: first.name.clone(),
                first_fingerprint: first.key_fingerprint.clone(),
                other: other.name.clone(),
                other_fingerprint: other.key_fingerprint.clone(),
            });
        }
    }
    Ok(first.key_fingerprint.clone())
}

/// What [`run`] opens before it links: the project key's hasher and fingerprint, the extracts'
/// inputs and the fingerprint of the linkage key they share, the ground truth if any, and which
/// input is the spine (which holds records).
pub(crate) struct Opened {
    pub hasher: TokenHasher,
    pub project_fingerprint: String,
    pub inputs: Vec<ExtractInput>,
    pub linkage_fingerprint: String,
    pub truth: Option<Truth>,
    pub spine_index: usize,
}

/// Checks the configuration and opens what [`run`] links: see [`Opened`].
pub(crate) fn open(cfg: &LinkConfig) -> Result<Opened, LinkError> {
    validate(cfg)?;
    let (hasher, project_fingerprint) = {
        let key =
            SecretKey::from_file(&cfg.project_key_file).map_err(|source| LinkError::ProjectKey { source })?;
        (TokenHasher::new(&key), key.fingerprint())
    };
    // Opened side by side (each checks its parts' SHA-256); the first error in extract order
    // is the one reported.
    let inputs: Vec<ExtractInput> = cfg
        .extracts
        .par_iter()
        .map(|e| ExtractInput::open(&cfg.work_dir, e, &cfg.match_keys))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    let linkage_fingerprint = common_fingerprint(&inputs)?;
    if linkage_fingerprint == project_fingerprint {
        return Err(LinkError::Config {
            reason: format!(
                "the project key is the linkage key (fingerprint {project_fingerprint}); use a separate project key so that person ids cannot be joined across projects"
            ),
        });
    }
    let truth = cfg
        .truth_dir
        .as_deref()
        .map(|dir| Truth::load(dir, &cfg.extracts))
        .transpose()?;
    let spine_index = cfg
        .extracts
        .iter()
        .position(|e| *e == cfg.spine)
        .expect("validated: the spine is an extract");
    let spine = &inputs[spine_index];
    if spine.rows == 0 {
        return Err(LinkError::EmptySpine {
            extract: spine.name.clone(),
        });
    }
    Ok(Opened {
        hasher,
        project_fingerprint,
        inputs,
        linkage_fingerprint,
        truth,
        spine_index,
    })
}

/// How the cascade runs: the Spark job if that engine was chosen, how many partitions the
/// embedded engine splits its hash tables into (1 with Spark, which builds none here), and the
/// spill folder when there is more than one.
pub(crate) fn engine<'a>(
    cfg: &'a LinkConfig,
    inputs: &[ExtractInput],
    spine_index: usize,
) -> Result<(Option<spark::SparkJob<'a>>, usize, Option<SpillDir>), LinkError> {
    let keys = cfg.match_keys.len();
    let spine = &inputs[spine_index];
    let other_rows: u64 = inputs
        .iter()
        .filter(|e| e.name != cfg.spine)
        .map(|e| e.rows)
        .sum();
    // The Spark engine builds no hash tables here, so it never partitions.
    let job = match &cfg.engine {
        Engine::Embedded => None,
        Engine::Spark(settings) => Some(spark::SparkJob::cascade(
            settings,
            &cfg.work_dir,
            inputs,
            spine_index,
        )?),
    };
    let partitions = if job.is_some() {
        1
    } else {
        partitions_for(spine.rows, other_rows, keys, cfg.memory_limit)
    };
    info!(spine = %spine.name, spine_records = spine.rows, keys, partitions, spark = job.is_some(), "linking");
    let spill = if partitions > 1 {
        Some(SpillDir::create(&cfg.work_dir.spill())?)
    } else {
        None
    };
    Ok((job, partitions, spill))
}
