//! The probabilistic run: read, block, fit, decide, write.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use linklab_store::{Progress, StagingDir, write_json_atomic};
use tracing::{info, warn};

use super::ProbabilisticConfig;
use super::blocking::{self, Pass, Rule, Sample, SpineIndex};
use super::decide::{self, Contested, Decision};
use super::fields::{CmpColumns, CmpData, CompareField};
use super::model::{
    BINS, Background, Counts, Model, Pattern, count_weight, fit_per_input, level_of, pattern,
};
use super::prune::{Bound, Prune};
use super::report::{self, ExtractCount, ModelReport, RuleCount, RuleLinks, SpineDedup, ThroughLinked};
use super::spark_pairs::SparkPairs;
use crate::cluster::Persons;
use crate::config::IO_RESERVE;
use crate::input::{BATCH_ROWS, ExtractInput};
use crate::output::{Outcome, SPINE, Tally, WriteContext, write_extract};
use crate::plan::Opened;
use crate::report_build::{ReportExtras, build_report};
use crate::spine::{SpinePass, person_ids_of, read_spine, spine_truth_of};
use crate::{Engine, LinkConfig, LinkError, LinkageReport};

/// The fewest records a chunk holds, whatever the memory limit.
const MIN_CHUNK: usize = 16;
/// Memory per record of a chunk: its comparison tokens and candidate pairs.
const BYTES_PER_CHUNK_RECORD: u64 = 16 << 10;
/// Memory the extracts' reader threads take when they decode ahead
/// ([`ExtractInput::read_ahead`]): the batches in flight and the threads' own allocations (at
/// 1M + 10M records, 130-170 MiB more at peak than without).
const READ_AHEAD_BYTES: u64 = 256 << 20;
/// The most blocking rules (their number is stored in a byte, beside two markers).
const MAX_RULES: usize = 250;
/// About how many records' candidate pairs EM is fitted on: a larger run counts the level
/// patterns of one record in `ceil(records / EM_RECORDS)` (pass one), chosen by a hash of the
/// record's number, so that pass one costs a fraction of pass two. Every pair is still scored
/// in pass two.
const EM_RECORDS: u64 = 500_000;

/// Bytes held for `spine`'s records: their tokens, and their exact-agreement weights (8 bytes a
/// field).
fn held(spine: &CmpData, fields: usize) -> u64 {
    (spine.bytes() + spine.records * fields * 8) as u64
}

/// Records per chunk: what `memory_limit` leaves after the fixed part, at
/// [`BYTES_PER_CHUNK_RECORD`] each, between [`MIN_CHUNK`] and a batch.
fn chunk_records(memory_limit: u64, fixed: u64) -> usize {
    let Some(budget) = memory_limit.checked_sub(fixed) else {
        warn!(
            memory_limit_mib = memory_limit >> 20,
            needed_mib = fixed.div_ceil(1 << 20),
            "memory_limit is below what the spine's tokens need; using the smallest chunks, and raise `memory_limit` in [link]"
        );
        return MIN_CHUNK;
    };
    usize::try_from(budget / BYTES_PER_CHUNK_RECORD)
        .unwrap_or(usize::MAX)
        .clamp(MIN_CHUNK, BATCH_ROWS)
}

/// Turns on decoding ahead on reader threads ([`ExtractInput::read_ahead`]) for every input
/// when `memory_limit` leaves room for it beside what the run holds (`held`) and the largest
/// chunks; otherwise the memory goes to chunks. The outputs are the same either way. Returns
/// the bytes it takes.
fn read_ahead_if_room(memory_limit: u64, held: u64, inputs: &mut [ExtractInput]) -> u64 {
    if memory_limit < held + READ_AHEAD_BYTES + BATCH_ROWS as u64 * BYTES_PER_CHUNK_RECORD {
        return 0;
    }
    for input in inputs {
        input.read_ahead = true;
    }
    READ_AHEAD_BYTES
}

/// Reads a whole extract's comparison tokens.
fn load(
    input: &ExtractInput,
    cols: &CmpColumns,
    fields: &[CompareField],
    keys: usize,
) -> Result<CmpData, LinkError> {
    let mut data = CmpData::new(fields, keys);
    for batch in input.batches()? {
        data.push_batch(&batch?, cols);
    }
    Ok(data)
}

/// Streams an extract in chunks: `f(data, range, base)` for each chunk, where `range` indexes
/// `data` and record `r` of it is record `base + r` of the extract.
fn stream(
    input: &ExtractInput,
    cols: &CmpColumns,
    fields: &[CompareField],
    keys: usize,
    chunk: usize,
    mut f: impl FnMut(&CmpData, Range<usize>, u32) -> Result<(), LinkError>,
) -> Result<(), LinkError> {
    let mut base = 0_u32;
    for batch in input.batches()? {
        let mut data = CmpData::new(fields, keys);
        data.push_batch(&batch?, cols);
        for start in (0..data.records).step_by(chunk) {
            f(&data, start..(start + chunk).min(data.records), base)?;
        }
        base += data.records as u32;
    }
    Ok(())
}

/// Where the candidate pairs come from.
enum Source<'a> {
    /// Found here, by the spine's blocking index (the embedded engine).
    Index(SpineIndex),
    /// Read back from the Spark job that found them, with their level patterns.
    Spark(SparkPairs<'a>),
}

impl<'a> Source<'a> {
    /// The engine's source of the pairs of `pass`: the spine's index, or the pairs of a Spark
    /// job run now.
    fn new(
        cfg: &'a LinkConfig,
        inputs: (&[ExtractInput], usize),
        spine: &CmpData,
        rules: (&[Rule], Pass, &[Bound]),
        fields: &[CompareField],
        progress: &dyn Progress,
    ) -> Result<Self, LinkError> {
        Ok(match &cfg.engine {
            Engine::Embedded => Source::Index(SpineIndex::new(rules.0, rules.1, spine, rules.2)),
            Engine::Spark(spark) => Source::Spark(SparkPairs::run(
                spark,
                &cfg.work_dir,
                inputs,
                fields,
                (rules.0, rules.1),
                progress,
            )?),
        })
    }

    /// Frees what it holds (a Spark job's files).
    fn clean(self) {
        if let Source::Spark(spark) = self {
            spark.clean();
        }
    }

    /// Bytes held here for the whole run.
    fn bytes(&self) -> usize {
        match self {
            Source::Index(index) => index.bytes(),
            Source::Spark(_) => 0,
        }
    }
}

/// The inputs of a run with the data that stays in memory.
struct Sides<'a> {
    fields: &'a [CompareField],
    keys: usize,
    chunk: usize,
    spine: &'a CmpData,
    rules: &'a [Rule],
    /// The bounds that let pass two skip pairs that cannot link.
    bounds: &'a [Bound],
    cols: &'a [CmpColumns],
    max_cluster_size: usize,
}

impl Sides<'_> {
    /// Every candidate pair of the records of input `i` (the spine against itself) in one in
    /// `every` of the records (see [`Sample`]), chunk by chunk, sorted by record: `f(data, base,
    /// pairs, patterns)`, where record `r` of the extract is record `r - base` of `data` and
    /// `patterns` are the pairs' level patterns when the source gives them.
    fn for_each_pairs(
        &self,
        source: &Source<'_>,
        input: &ExtractInput,
        (i, every): (usize, u64),
        (is_spine, prune): (bool, Option<&Prune<'_>>),
        mut f: impl FnMut(&CmpData, u32, &[blocking::Pair], Option<&[Pattern]>),
    ) -> Result<(), LinkError> {
        let sample = Sample {
            input: i as u64,
            every,
        };
        let mut reader = match source {
            Source::Index(_) => None,
            Source::Spark(spark) => Some(spark.reader(input, i, is_spine)?),
        };
        let (mut pairs, mut patterns) = (Vec::new(), Vec::new());
        let mut chunk = |data: &CmpData, range: Range<usize>, base: u32| -> Result<(), LinkError> {
            if let Some(reader) = &mut reader {
                let records = base + range.start as u32..base + range.end as u32;
                pairs.clear();
                patterns.clear();
                reader.next_chunk(records, sample, &mut pairs, &mut patterns)?;
                f(data, base, &pairs, Some(&patterns));
            } else if let Source::Index(index) = source {
                pairs = index.pairs(data, range, base, is_spine, sample, prune);
                f(data, base, &pairs, None);
            }
            Ok(())
        };
        if is_spine {
            for start in (0..self.spine.records).step_by(self.chunk) {
                chunk(self.spine, start..(start + self.chunk).min(self.spine.records), 0)?;
            }
        } else {
            stream(
                input,
                &self.cols[i],
                self.fields,
                self.keys,
                self.chunk,
                &mut chunk,
            )?;
        }
        reader.map_or(Ok(()), super::spark_pairs::PairReader::finish)
    }
}

/// Pass one: the candidate pairs of one record in `every` by (first rule, the rules that found
/// them, level pattern), per input.
fn count_patterns(
    (sides, source): (&Sides<'_>, &Source<'_>),
    inputs: &[ExtractInput],
    spine_index: usize,
    every: u64,
    progress: &dyn Progress,
) -> Result<Vec<Counts>, LinkError> {
    let mut by_input = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        progress.start(
            &format!("link: pass one, counting patterns of {}", input.name),
            None,
        );
        let mut patterns = Counts::new();
        sides.for_each_pairs(
            source,
            input,
            (i, every),
            (i == spine_index, None),
            |data, base, pairs, given| {
                if let Some(given) = given {
                    for (pair, &p) in pairs.iter().zip(given) {
                        *patterns.entry((pair.rule, pair.rules, p)).or_insert(0) += 1;
                    }
                    return;
                }
                let found = blocking::count_by_spine(pairs, |pair| {
                    let p = pattern(
                        sides.fields,
                        data,
                        (pair.left - base) as usize,
                        sides.spine,
                        pair.right as usize,
                    );
                    (pair.rule, pair.rules, p)
                });
                for (key, n) in found {
                    *patterns.entry(key).or_insert(0) += n;
                }
            },
        )?;
        progress.finish();
        by_input.push(patterns);
    }
    Ok(by_input)
}

/// Pass one (on a sample of the records of a large run) and the fit: u from the spine, shared;
/// per input, m by EM rule by rule on its pattern counts, and its prior from them and the pairs
/// blocking chose its candidates from (the spine's n(n − 1)/2 pairs, or an extract's rows × n,
/// of the sample).
/// Also the number of candidate pairs fitted on, over all inputs.
fn fit_models(
    sides: &Sides<'_>,
    source: &Source<'_>,
    inputs: &[ExtractInput],
    spine_index: usize,
    other_rows: u64,
    progress: &dyn Progress,
) -> Result<(Background, Vec<Model>, u64), LinkError> {
    let (spine, fields) = (sides.spine, sides.fields);
    let every = (spine.records as u64 + other_rows).div_ceil(EM_RECORDS).max(1);
    let patterns = count_patterns((sides, source), inputs, spine_index, every, progress)?;
    let fitted_on = patterns.iter().flat_map(|counts| counts.values()).sum();
    let spine_rows = spine.records as f64;
    let per_input: Vec<(Counts, f64)> = patterns
        .into_iter()
        .zip(inputs)
        .enumerate()
        .map(|(i, (counts, input))| {
            let left = if i == spine_index {
                (spine_rows - 1.0) / 2.0
            } else {
                input.rows as f64
            };
            (counts, left * spine_rows / every as f64)
        })
        .collect();
    let key_components = &inputs[spine_index].key_components;
    let allowed: Vec<Vec<u16>> = sides
        .rules
        .iter()
        .map(|r| r.allowed_levels(fields, key_components))
        .collect();
    progress.start("link: estimating u", None);
    let background = Background::estimate(fields, spine);
    progress.finish();
    progress.start("link: fitting the models by EM", None);
    let models = fit_per_input(&background, &per_input, &allowed);
    progress.finish();
    Ok((background, models, fitted_on))
}

/// The columns `match_probability` and `match_pattern`.
fn extra_fields() -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new("match_probability", DataType::Float64, true)),
        Arc::new(Field::new("match_pattern", DataType::Utf8, true)),
    ]
}

fn extra_columns(model: &Model, decisions: &[Decision]) -> Vec<ArrayRef> {
    let probabilities: Float64Array = decisions
        .iter()
        .map(|d| (!d.probability.is_nan()).then_some(d.probability))
        .collect();
    let patterns: StringArray = decisions
        .iter()
        .map(|d| (!d.probability.is_nan()).then(|| model.pattern_code(d.pattern)))
        .collect();
    vec![Arc::new(probabilities), Arc::new(patterns)]
}

/// The blocking rules of the match keys and compared fields, at most [`MAX_RULES`].
fn blocking_rules(cfg: &LinkConfig, fields: &[CompareField]) -> Result<Vec<Rule>, LinkError> {
    let rules = blocking::rules(&cfg.match_keys, fields);
    if rules.len() > MAX_RULES {
        return Err(LinkError::Config {
            reason: format!(
                "{} blocking rules; at most {MAX_RULES} are supported",
                rules.len()
            ),
        });
    }
    Ok(rules)
}

/// The spine's comparison tokens.
fn read_spine_tokens(
    spine: &ExtractInput,
    cols: &CmpColumns,
    (fields, keys): (&[CompareField], usize),
    progress: &dyn Progress,
) -> Result<CmpData, LinkError> {
    progress.start(&format!("link: reading spine {}", spine.name), None);
    let data = load(spine, cols, fields, keys)?;
    progress.finish();
    Ok(data)
}

/// Links every extract by the probabilistic method and writes `work_dir/linked/`.
pub(crate) fn run(
    cfg: &LinkConfig,
    settings: &ProbabilisticConfig,
    mut opened: Opened,
    progress: &dyn Progress,
) -> Result<LinkageReport, LinkError> {
    let (inputs, spine_index, truth) = (&opened.inputs, opened.spine_index, &opened.truth);
    let fields = &settings.compare;
    let keys = cfg.match_keys.len();
    let rules = blocking_rules(cfg, fields)?;
    let cols = inputs
        .iter()
        .map(|input| CmpColumns::find(input, fields))
        .collect::<Result<Vec<_>, _>>()?;
    let spine = read_spine_tokens(&inputs[spine_index], &cols[spine_index], (fields, keys), progress)?;
    let other_rows: u64 = inputs
        .iter()
        .filter(|e| e.name != cfg.spine)
        .map(|e| e.rows)
        .sum();
    // The spine's tokens and exact-agreement weights; beside them, the decisions and the I/O
    // reserve.
    let mut beside_spine = other_rows * std::mem::size_of::<Decision>() as u64 + IO_RESERVE;
    beside_spine += read_ahead_if_room(
        cfg.memory_limit,
        held(&spine, fields.len()) + beside_spine,
        &mut opened.inputs,
    );
    let inputs = &opened.inputs;
    let fixed = held(&spine, fields.len()) + beside_spine;
    let bounds = Bound::of_rules(&rules, Pass::Score, fields, &inputs[spine_index].key_components);
    let mut sides = Sides {
        fields,
        keys,
        chunk: 0,
        spine: &spine,
        rules: &rules,
        bounds: &bounds,
        cols: &cols,
        max_cluster_size: cfg.max_cluster_size,
    };
    // A pass's source of pairs, and the chunk size the memory left by its index allows.
    let open = |pass: Pass, beside: u64| {
        progress.start("link: indexing the spine's blocking keys", None);
        let source = Source::new(
            cfg,
            (inputs, spine_index),
            &spine,
            (&rules, pass, &bounds),
            fields,
            progress,
        )?;
        progress.finish();
        let chunk = chunk_records(cfg.memory_limit, fixed + beside + source.bytes() as u64);
        info!(spine_records = spine.records, chunk, "linking probabilistically");
        Ok::<_, LinkError>((source, chunk))
    };

    // Pass one and the fit: a model per input.
    let (source, chunk) = open(Pass::Fit, 0)?;
    sides.chunk = chunk;
    let (background, models, fitted_on) =
        fit_models(&sides, &source, inputs, spine_index, other_rows, progress)?;
    source.clean();
    let threshold = settings.match_probability;

    // Pass two: decisions, the spine's persons, histograms, the pairs each rule found.
    // Beside pass two's chunks, the linked records that will join the second round.
    let (source, chunk) = open(Pass::Score, (JOIN_PER_SPINE_RECORD * spine.bytes()) as u64)?;
    sides.chunk = chunk;
    let (persons, merges, mut decisions, contested, histograms, by_rule, joining) =
        decide_all(&sides, &source, inputs, spine_index, &models, threshold, progress)?;
    source.clean();
    let (persons, bridged, redo) = bridge(&sides, &models[spine_index], &persons, &contested, &mut decisions);

    // The second round, over the spine's records and the linked records that join them.
    let round = SecondRound {
        fields,
        keys,
        memory: (cfg.memory_limit, beside_spine),
        cols: &cols,
        rules: &rules,
        bounds: &bounds,
        threshold,
    };
    let through_linked = round.run(
        spine,
        (&background, &models, &persons),
        inputs,
        (&mut decisions, &redo),
        joining,
        progress,
    )?;

    let outputs = Outputs {
        hasher: &opened.hasher,
        truth: truth.as_ref(),
        rule_names: rules.iter().map(|r| r.name.clone()).collect(),
        persons: &persons,
        decisions: &decisions,
        models: &models,
    };
    let (staging, mut report, links_by_rule) = write_linked(
        cfg,
        inputs,
        spine_index,
        &outputs,
        progress,
        (opened.project_fingerprint, opened.linkage_fingerprint),
    )?;
    let model_report = ModelReport {
        match_probability: threshold,
        random_pairs: background.random_pairs,
        candidate_pairs: fitted_on,
        scored_pairs: by_rule.iter().sum(),
        blocking: report::blocking(&rules, &by_rule),
        models: models
            .iter()
            .zip(inputs)
            .map(|(model, input)| report::input_model(&input.name, model))
            .collect(),
        spine: SpineDedup::from((merges, bridged)),
        histograms: histograms
            .iter()
            .map(|(i, bins)| report::histogram(&inputs[*i].name, bins))
            .collect(),
        linked_by_rule: links_by_rule,
        through_linked,
    };
    write_html(&staging, &model_report, &cfg.spine)?;
    report.model = Some(model_report);
    write_json_atomic(&staging.path().join("linkage-report.json"), &report)?;
    staging.commit()?;
    info!(persons = persons.first.len(), extracts = inputs.len(), "linked");
    Ok(report)
}

/// Writes `linkage-report.html` into the staging folder.
fn write_html(staging: &StagingDir, model: &ModelReport, spine: &str) -> Result<(), LinkError> {
    let path = staging.path().join("linkage-report.html");
    std::fs::write(&path, report::html(model, spine)).map_err(|source| linklab_store::StoreError::Io {
        action: "cannot write",
        path,
        source,
    })?;
    Ok(())
}

/// What [`write_linked`] writes.
struct Outputs<'a> {
    hasher: &'a linklab_tokens::TokenHasher,
    truth: Option<&'a crate::quality::Truth>,
    rule_names: Vec<String>,
    persons: &'a crate::cluster::Persons,
    decisions: &'a HashMap<usize, Vec<Decision>>,
    models: &'a [Model],
}

/// Writes `linked/` under a staging folder (not yet committed) and gathers the report.
fn write_linked(
    cfg: &LinkConfig,
    inputs: &[ExtractInput],
    spine_index: usize,
    o: &Outputs<'_>,
    progress: &dyn Progress,
    (project_fingerprint, linkage_fingerprint): (String, String),
) -> Result<(StagingDir, LinkageReport, Vec<RuleLinks>), LinkError> {
    let (persons, decisions, truth) = (o.persons, o.decisions, o.truth);
    let keys = cfg.match_keys.len();
    let spine_input = &inputs[spine_index];
    // Fingerprints and person ids, as the cascade makes them.
    let mut pass: SpinePass = read_spine(spine_input, &cfg.match_keys, None, false, progress)?;
    let person_ids = person_ids_of(o.hasher, &mut pass, persons);

    let staging = StagingDir::new(&cfg.work_dir.linked())?;
    let extra = extra_fields();
    let mut ctx = WriteContext {
        key_names: &o.rule_names,
        person_ids: &person_ids,
        first_record: &persons.first,
        person_size: &persons.size,
        truth,
        spine_truth: None,
        extra_fields: &extra,
    };
    let none = vec![Decision::NONE; BATCH_ROWS];
    let person_of = &persons.person_of;
    let spine_tally = write_extract(
        spine_input,
        staging.path(),
        true,
        &ctx,
        progress,
        |batch, start| {
            let rows = batch.num_rows();
            Ok((
                person_of[start..start + rows]
                    .iter()
                    .map(|&person| Outcome { key: SPINE, person })
                    .collect(),
                extra_columns(&o.models[spine_index], &none[..rows]),
            ))
        },
    )?;
    let mut notes = Vec::new();
    let spine_truth = truth
        .as_ref()
        .and_then(|_| spine_truth_of(spine_input, &spine_tally, pass.records, persons, &mut notes));
    ctx.spine_truth = spine_truth.as_ref();
    let mut tallies: HashMap<String, Tally> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        let Some(state) = decisions.get(&i) else { continue };
        let tally = write_extract(input, staging.path(), false, &ctx, progress, |batch, start| {
            let part = &state[start..start + batch.num_rows()];
            Ok((
                part.iter().map(|d| d.outcome).collect(),
                extra_columns(&o.models[i], part),
            ))
        })?;
        tallies.insert(input.name.clone(), tally);
    }
    let by_rule: Vec<RuleLinks> = inputs
        .iter()
        .filter_map(|input| {
            let tally = tallies.get(&input.name)?;
            Some(RuleLinks {
                extract: input.name.clone(),
                rules: o
                    .rule_names
                    .iter()
                    .enumerate()
                    .map(|(k, rule)| RuleCount {
                        rule: rule.clone(),
                        linked: tally.linked_by_key[k],
                        ambiguous: tally.ambiguous_by_key[k],
                    })
                    .collect(),
            })
        })
        .collect();
    let report = build_report(
        cfg,
        inputs,
        persons,
        &vec![Vec::new(); keys],
        &pass,
        &spine_tally,
        tallies,
        ReportExtras {
            project_fingerprint,
            linkage_fingerprint,
            partitions: 1,
            spine_truth: spine_truth.as_ref(),
            notes,
            truth: truth.is_some(),
        },
    );
    Ok((staging, report, by_rule))
}

/// Each other extract's decisions, by input index.
type Decisions = HashMap<usize, Vec<Decision>>;

/// What pass two found: the spine's persons, how they were merged, each other extract's
/// decisions and contested records (by input index), every input's weight bins, the pairs
/// each rule found, and the linked records that join the second round.
type PassTwo = (
    crate::cluster::Persons,
    decide::SpineMerges,
    HashMap<usize, Vec<Decision>>,
    HashMap<usize, Vec<Contested>>,
    Vec<(usize, Vec<u64>)>,
    Vec<u64>,
    Joining,
);

/// Merges the spine's persons that records bridge ([`decide::bridge_persons`]), renumbers the
/// decisions' persons, and returns the new persons, the counts and, per extract, the contested
/// records whose two best persons are now one (sorted), to be decided again.
fn bridge(
    sides: &Sides<'_>,
    model: &Model,
    persons: &crate::cluster::Persons,
    contested: &HashMap<usize, Vec<Contested>>,
    decisions: &mut Decisions,
) -> (
    crate::cluster::Persons,
    decide::BridgeMerges,
    HashMap<usize, Vec<u32>>,
) {
    let mut order: Vec<usize> = contested.keys().copied().collect();
    order.sort_unstable();
    let all: Vec<Contested> = order.iter().flat_map(|i| contested[i].iter().copied()).collect();
    let (merged, counts) = decide::bridge_persons(model, sides.spine, persons, &all, sides.max_cluster_size);
    let now = |p: u32| merged.person_of[persons.first[p as usize] as usize];
    for state in decisions.values_mut() {
        for decision in state.iter_mut() {
            if decision.outcome.person != crate::cluster::NONE {
                decision.outcome.person = now(decision.outcome.person);
            }
        }
    }
    let redo = contested
        .iter()
        .map(|(&i, records)| {
            let mut again: Vec<u32> = records
                .iter()
                .filter(|c| now(c.persons.0) == now(c.persons.1))
                .map(|c| c.record)
                .collect();
            again.sort_unstable();
            (i, again)
        })
        .collect();
    (merged, counts, redo)
}

/// Pass two: the spine's strong pairs clustered into persons, then every other record decided.
fn decide_all(
    sides: &Sides<'_>,
    source: &Source<'_>,
    inputs: &[ExtractInput],
    spine_index: usize,
    models: &[Model],
    threshold: f64,
    progress: &dyn Progress,
) -> Result<PassTwo, LinkError> {
    let spine = sides.spine;
    let model = &models[spine_index];
    let keys = sides.keys;
    let mut histograms = Vec::new();
    let mut decisions: HashMap<usize, Vec<Decision>> = HashMap::new();
    let mut contested: HashMap<usize, Vec<Contested>> = HashMap::new();
    let mut strong = Vec::new();
    let mut by_rule = vec![0_u64; sides.rules.len()];
    let mut joining = Joining::new(sides.fields, keys, spine.records);
    for (i, input) in inputs.iter().enumerate() {
        let mut bins = vec![0_u64; BINS];
        if i == spine_index {
            progress.start(&format!("link: scoring {} with itself", input.name), None);
            sides.for_each_pairs(source, input, (i, 1), (true, None), |data, _, pairs, _| {
                let scores = blocking::map_by_spine(pairs, |pair| {
                    model.score(data, pair.left as usize, spine, pair.right as usize)
                });
                for (pair, (_, w)) in pairs.iter().zip(scores) {
                    by_rule[usize::from(pair.rule)] += 1;
                    count_weight(&mut bins, w);
                    if super::model::probability(w) >= threshold {
                        strong.push((w, pair.left, pair.right));
                    }
                }
            })?;
            progress.finish();
        } else {
            decisions.insert(i, vec![Decision::NONE; input.rows as usize]);
        }
        histograms.push((i, bins));
    }
    progress.start("link: clustering the spine", None);
    let (persons, merges) = decide::spine_persons(model, spine, strong, sides.max_cluster_size, keys);
    progress.finish();
    for (i, input) in inputs.iter().enumerate() {
        if i == spine_index {
            continue;
        }
        let out = decisions.get_mut(&i).expect("one per other extract");
        let contested = contested.entry(i).or_default();
        let bins = &mut histograms[i].1;
        progress.start(&format!("link: scoring {}", input.name), Some(input.rows));
        let unmatched = decide::unmatched_odds(models[i].prior, persons.first.len());
        let prune = Prune::new(&models[i], sides.bounds, (threshold, unmatched), spine.records);
        sides.for_each_pairs(
            source,
            input,
            (i, 1),
            (false, Some(&prune)),
            |data, base, pairs, _| {
                decide::decide_chunk(
                    &models[i],
                    threshold,
                    data,
                    base,
                    spine,
                    &persons.person_of,
                    pairs,
                    out,
                    bins,
                    unmatched,
                    contested,
                    (Some(&prune), &mut by_rule),
                );
                joining.take(i, (data, base), pairs, out);
            },
        )?;
        progress.finish();
    }
    Ok((
        persons, merges, decisions, contested, histograms, by_rule, joining,
    ))
}

/// The second round of decisions: a record with no person above the threshold is scored again,
/// by its extract's model, against the spine's records and, as further records of their persons,
/// the records of every other extract that the first round linked with a match probability of
/// at least [`JOIN_PROBABILITY`] and that do not agree exactly with their best spine record on
/// every field (they tell something the spine does not: a NINO the spine lacks, a surname taken
/// since), at most [`JOIN_PER_SPINE_RECORD`] per spine record, in the extracts' order. A record is scored
/// again only if it has a candidate pair with such a record. It links as in the first round;
/// one round, so a record linked here does not link others.
struct SecondRound<'a> {
    fields: &'a [CompareField],
    keys: usize,
    /// `memory_limit`, and the bytes held beside the spine's records and their index (the
    /// decisions and the I/O reserve).
    memory: (u64, u64),
    cols: &'a [CmpColumns],
    rules: &'a [Rule],
    bounds: &'a [Bound],
    threshold: f64,
}

/// At most this many linked records per spine record join the second round (the first in the
/// extracts' order): they are held beside the spine's tokens.
const JOIN_PER_SPINE_RECORD: usize = 2;

/// The least match probability of a linked record that joins its person's records in the
/// second round: a wrong link would bring its person's other records to the wrong person too,
/// so only links far above the threshold join.
const JOIN_PROBABILITY: f64 = 0.999;

/// The linked records that join the second round ([`SecondRound`]), taken as pass two decides
/// them, so that the round does not read the extracts again: before the round a record's
/// decision changes only in its person's number ([`bridge`] merges persons).
struct Joining {
    /// Their tokens, in the extracts' order and each extract's record order.
    data: CmpData,
    /// Each one's extract (input index) and record number.
    records: Vec<(usize, u32)>,
    /// At most this many join ([`JOIN_PER_SPINE_RECORD`] per spine record).
    cap: usize,
    /// Whether more could have joined.
    limited: bool,
    /// The number of compared fields.
    fields: usize,
}

impl Joining {
    fn new(fields: &[CompareField], keys: usize, spine_records: usize) -> Self {
        Self {
            data: CmpData::new(fields, keys),
            records: Vec::new(),
            cap: JOIN_PER_SPINE_RECORD * spine_records,
            limited: false,
            fields: fields.len(),
        }
    }

    /// Takes the records of extract `i` that a chunk decided (the left records of `pairs`,
    /// record `r` of the extract being record `r - base` of `data`) and `decisions` link with a
    /// match probability of at least [`JOIN_PROBABILITY`] though they do not agree exactly with
    /// their best spine record on every field.
    fn take(
        &mut self,
        i: usize,
        (data, base): (&CmpData, u32),
        pairs: &[blocking::Pair],
        decisions: &[Decision],
    ) {
        for group in pairs.chunk_by(|a, b| a.left == b.left) {
            let record = group[0].left;
            let decision = decisions[record as usize];
            let tells = (0..self.fields).any(|f| level_of(decision.pattern, f) != 0);
            if decision.outcome.linked_person().is_some() && tells && decision.probability >= JOIN_PROBABILITY
            {
                if self.records.len() == self.cap {
                    self.limited = true;
                } else {
                    self.data.push_record(data, (record - base) as usize);
                    self.records.push((i, record));
                }
            }
        }
    }
}

impl SecondRound<'_> {
    /// Adds to `spine` the linked records that join their persons' records; returns every
    /// record's person (the spine's records' own first), and whether the cap stopped more.
    fn join(
        spine: &mut CmpData,
        persons: &Persons,
        joining: &Joining,
        decisions: &Decisions,
    ) -> (Vec<u32>, bool) {
        let mut person_of = persons.person_of.clone();
        for (k, &(i, record)) in joining.records.iter().enumerate() {
            let person = decisions[&i][record as usize]
                .outcome
                .linked_person()
                .expect("a record linked in pass two stays linked until the second round");
            spine.push_record(&joining.data, k);
            person_of.push(person);
        }
        if joining.limited {
            warn!(
                joined = joining.records.len(),
                "more linked records could join the second round than twice the spine's records; the first were taken"
            );
        }
        (person_of, joining.limited)
    }

    /// Runs the round, updating `decisions`; the spine's tokens are taken, as the linked
    /// records that join are added after them (held beside the spine's, so at most tripling
    /// them). The records scored again are streamed in chunks, as in the first round.
    fn run(
        &self,
        mut spine: CmpData,
        (background, models, persons): (&Background, &[Model], &Persons),
        inputs: &[ExtractInput],
        (decisions, redo): (&mut Decisions, &HashMap<usize, Vec<u32>>),
        joining: Joining,
        progress: &dyn Progress,
    ) -> Result<ThroughLinked, LinkError> {
        let spine_records = spine.records;
        let (person_of, limited) = Self::join(&mut spine, persons, &joining, decisions);
        drop(joining);
        let mut order: Vec<usize> = decisions.keys().copied().collect();
        order.sort_unstable();
        let tf = background.extended_tf(&spine, spine_records);
        info!(
            spine_records,
            joined = spine.records - spine_records,
            "second round"
        );
        let index = SpineIndex::new(self.rules, Pass::Score, &spine, self.bounds);
        // Chunks as small as what the grown spine, its weights (beside the spine's own) and
        // its index leave.
        let (limit, beside) = self.memory;
        let here = held(&spine, self.fields.len())
            + (spine_records * self.fields.len() * 8 + person_of.len() * 4 + index.bytes()) as u64;
        let chunk = chunk_records(limit, beside + here);
        let mut through = ThroughLinked {
            linked_records_added: (spine.records - spine_records) as u64,
            limited_to_spine_size: limited,
            records_scored: 0,
            records_decided_again: 0,
            pairs_scored: 0,
            linked: Vec::new(),
        };
        let mut bins = vec![0_u64; BINS];
        for &i in &order {
            let model = models[i].with_tf(Arc::clone(&tf));
            let unmatched = decide::unmatched_odds(model.prior, persons.first.len());
            let prune = Prune::new(&model, self.bounds, (self.threshold, unmatched), spine.records);
            let state = decisions.get_mut(&i).expect("one per other extract");
            let again = redo.get(&i).map_or(&[][..], Vec::as_slice);
            let mut linked = 0;
            progress.start(
                &format!("link: second round, scoring {}", inputs[i].name),
                Some(inputs[i].rows),
            );
            stream(
                &inputs[i],
                &self.cols[i],
                self.fields,
                self.keys,
                chunk,
                |chunk, range, base| {
                    // The chunk's records without a person and those to decide again, gathered.
                    let mut data = CmpData::new(self.fields, self.keys);
                    let mut numbers = Vec::new();
                    for r in range {
                        let number = base as usize + r;
                        let redo = again.binary_search(&(number as u32)).is_ok();
                        if redo || state[number].outcome == Outcome::UNDECIDED {
                            data.push_record(chunk, r);
                            numbers.push((number, redo));
                        }
                    }
                    let mut pairs = index.pairs(
                        &data,
                        0..data.records,
                        0,
                        false,
                        blocking::Sample::ALL,
                        Some(&prune),
                    );
                    // Only the records to decide again and those with a pair with a joined record
                    // can change.
                    let scored: std::collections::HashSet<u32> = pairs
                        .iter()
                        .filter(|pair| pair.right as usize >= spine_records || numbers[pair.left as usize].1)
                        .map(|pair| pair.left)
                        .collect();
                    pairs.retain(|pair| scored.contains(&pair.left));
                    through.records_scored += scored.len() as u64;
                    through.records_decided_again += numbers.iter().filter(|n| n.1).count() as u64;
                    let mut out = vec![Decision::NONE; data.records];
                    let mut by_rule = vec![0; self.rules.len()];
                    decide::decide_chunk(
                        &model,
                        self.threshold,
                        &data,
                        0,
                        &spine,
                        &person_of,
                        &pairs,
                        &mut out,
                        &mut bins,
                        unmatched,
                        &mut Vec::new(),
                        (Some(&prune), &mut by_rule),
                    );
                    through.pairs_scored += by_rule.iter().sum::<u64>();
                    for (decision, &(number, redo)) in out.iter().zip(&numbers) {
                        let now = decision.outcome.linked_person().is_some();
                        if now && state[number].outcome.linked_person().is_none() {
                            linked += 1;
                        }
                        if now || redo {
                            state[number] = *decision;
                        }
                    }
                    Ok(())
                },
            )?;
            progress.finish();
            through.linked.push(ExtractCount {
                extract: inputs[i].name.clone(),
                records: linked,
            });
        }
        Ok(through)
    }
}
