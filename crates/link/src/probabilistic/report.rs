//! The fitted model in `linkage-report.json`, and `linkage-report.html`.

use std::fmt::Write as _;

use serde::Serialize;

use super::blocking::Rule;
use super::decide::{BridgeMerges, SpineMerges};
use super::model::{LOWEST, Model};

/// What `method = "probabilistic"` fitted and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// The link threshold on the match probability.
    pub match_probability: f64,
    /// Random spine pairs u was estimated from (one u for every model).
    pub random_pairs: u64,
    /// Candidate pairs m and λ were fitted on (spine pairs and every extract's, by the rules used
    /// for fitting, of the records pass one sampled).
    pub candidate_pairs: u64,
    /// Candidate pairs scored (by the rules used for scoring, of every record).
    pub scored_pairs: u64,
    /// The blocking rules, in order, with the pairs each found first.
    pub blocking: Vec<BlockingRule>,
    /// One model per extract, in the pipeline's order: the spine's (deduplication) and each
    /// other extract's (its links to the spine).
    pub models: Vec<InputModel>,
    /// How the spine was deduplicated.
    pub spine: SpineDedup,
    /// The match weights of every extract's candidate pairs.
    pub histograms: Vec<WeightHistogram>,
    /// Per extract other than the spine: records linked and ambiguous under each blocking rule
    /// (the rule that found the best pair).
    pub linked_by_rule: Vec<RuleLinks>,
    /// The second round: records left unlinked, scored again against the spine and the linked
    /// records of every other extract.
    pub through_linked: ThroughLinked,
}

/// The second round of decisions (docs/linkage.md "Decisions").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThroughLinked {
    /// Linked records that joined their person's spine records (linked with probability at
    /// least 0.999, and not agreeing exactly with their best spine record on every field).
    pub linked_records_added: u64,
    /// Whether more could have joined than twice the spine's records (the first joined).
    pub limited_to_spine_size: bool,
    /// Records scored again: those with no person above the threshold in the first round and a
    /// candidate pair with a joined record.
    pub records_scored: u64,
    /// Records decided again because their two best persons of the first round were merged
    /// into one by a bridge (see `SpineDedup`); counted in `records_scored` too.
    pub records_decided_again: u64,
    /// Candidate pairs scored in the round.
    pub pairs_scored: u64,
    /// Per extract other than the spine, the records linked in this round.
    pub linked: Vec<ExtractCount>,
}

/// A count of one extract's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtractCount {
    /// The extract.
    pub extract: String,
    /// Its records counted.
    pub records: u64,
}

/// The model one extract's pairs are scored with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputModel {
    /// The extract.
    pub extract: String,
    /// Whether it had too few candidate pairs of its own and takes the model fitted on every
    /// extract's pairs pooled (then the figures below are the pooled model's).
    pub pooled: bool,
    /// Whether its own fit was rejected, because its matches agreed exactly less often than at
    /// another level on some field or some field's m was trained on fewer than 200 matches:
    /// then m is the pooled model's, and λ and the prior its own, fitted with that m.
    pub own_fit_rejected: bool,
    /// The (sampled) candidate pairs m and λ were fitted on.
    pub fitted_pairs: u64,
    /// The share of those pairs expected to be matches: the prior times the pairs blocking
    /// chose them from, over the candidate pairs.
    pub lambda: f64,
    /// The probability that two records compared at random match: the prior of every match
    /// probability, the one the scores imply (the expected matches among the candidate pairs,
    /// over every pair; docs/linkage.md, "Model").
    pub prior: f64,
    /// Iterations run to find the prior.
    pub iterations: u32,
    /// Whether the prior converged before the iteration limit.
    pub converged: bool,
    /// m and u per field and level.
    pub fields: Vec<FieldModel>,
}

/// One extract's links by blocking rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleLinks {
    /// The extract.
    pub extract: String,
    /// Every rule, in order.
    pub rules: Vec<RuleCount>,
}

/// Records linked and ambiguous under one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    /// The rule.
    pub rule: String,
    /// Records linked by a pair it found.
    pub linked: u64,
    /// Records left ambiguous at a pair it found.
    pub ambiguous: u64,
}

/// One blocking rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockingRule {
    /// Its name (a match key, or the tokens it joins on).
    pub rule: String,
    /// The most spine records one of its blocks may have.
    pub block_cap: usize,
    /// The passes it finds pairs for: `fit` (EM only), `score` (the decisions only) or `fit and
    /// score`.
    pub used_for: &'static str,
    /// Candidate pairs it found first.
    pub pairs: u64,
}

/// The blocking rules with the pairs each found first among those scored.
pub(crate) fn blocking(rules: &[Rule], scored: &[u64]) -> Vec<BlockingRule> {
    rules
        .iter()
        .zip(scored)
        .map(|(rule, &pairs)| BlockingRule {
            rule: rule.name.clone(),
            block_cap: rule.cap,
            used_for: rule.used.name(),
            pairs,
        })
        .collect()
}

/// The model of one field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldModel {
    /// The field.
    pub field: String,
    /// Its kind.
    pub kind: String,
    /// The matches its m was trained on: the expected matches of the blocking rules that leave it
    /// free, summed (docs/linkage.md, "Model"); null when no rule does (its m is then the joint
    /// fit's). For an extract whose own fit was rejected, those of its own fit.
    pub trained_matches: Option<f64>,
    /// Its levels, most specific first (a missing value weighs 0 and is not listed).
    pub levels: Vec<LevelModel>,
}

/// One comparison level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelModel {
    /// The level (`exact`, `edit1`, …, `disagree`).
    pub level: String,
    /// Its letter in `match_pattern`.
    pub code: String,
    /// P(level | match).
    pub m: f64,
    /// P(level | non-match).
    pub u: f64,
    /// log2(m / u), in bits.
    pub weight: f64,
}

/// The spine's deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpineDedup {
    /// Spine pairs at or above the threshold.
    pub pairs_above_threshold: u64,
    /// Merges made.
    pub merges: u64,
    /// Merges refused because two of the records would have a probability below one half.
    pub refused_by_guard: u64,
    /// Merges refused by `max_cluster_size`.
    pub refused_by_size: u64,
    /// Bridges: pairs of persons that a record of another extract matches, each with a
    /// probability of at least 0.999 as its only candidate.
    pub bridged_pairs: u64,
    /// Merges made through bridges.
    pub bridge_merges: u64,
    /// Bridges refused because two of the records have a Bayes factor below one.
    pub bridges_refused_by_guard: u64,
    /// Bridges refused by `max_cluster_size`.
    pub bridges_refused_by_size: u64,
}

impl From<(SpineMerges, BridgeMerges)> for SpineDedup {
    fn from((s, b): (SpineMerges, BridgeMerges)) -> Self {
        Self {
            pairs_above_threshold: s.pairs_above_threshold,
            merges: s.merges,
            refused_by_guard: s.refused_by_guard,
            refused_by_size: s.refused_by_size,
            bridged_pairs: b.bridged_pairs,
            bridge_merges: b.merges,
            bridges_refused_by_guard: b.refused_by_guard,
            bridges_refused_by_size: b.refused_by_size,
        }
    }
}

/// The match weights of one extract's candidate pairs, in bins one bit wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightHistogram {
    /// The extract.
    pub extract: String,
    /// Bins in weight order; empty bins are left out.
    pub bins: Vec<WeightBin>,
}

/// One bin: weights in `[from, from + 1)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightBin {
    /// The lower edge, in bits (the first and last bins also hold everything beyond them).
    pub from: i32,
    /// Candidate pairs in the bin.
    pub pairs: u64,
}

/// The histogram of the bin counts.
pub(crate) fn histogram(extract: &str, counts: &[u64]) -> WeightHistogram {
    WeightHistogram {
        extract: extract.to_owned(),
        bins: counts
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, n)| *n > 0)
            .map(|(i, pairs)| WeightBin {
                from: LOWEST + i as i32,
                pairs,
            })
            .collect(),
    }
}

/// One extract's model as reported.
pub(crate) fn input_model(extract: &str, model: &Model) -> InputModel {
    InputModel {
        extract: extract.to_owned(),
        pooled: model.pooled,
        own_fit_rejected: model.own_fit_rejected,
        fitted_pairs: model.candidate_pairs,
        lambda: model.lambda,
        prior: model.prior,
        iterations: model.iterations,
        converged: model.converged,
        fields: field_models(model),
    }
}

/// The fields' m and u as report rows.
fn field_models(model: &Model) -> Vec<FieldModel> {
    model
        .fields
        .iter()
        .enumerate()
        .map(|(f, field)| FieldModel {
            field: field.name.clone(),
            kind: field.kind.as_str().to_owned(),
            trained_matches: model.trained[f],
            levels: field
                .levels()
                .iter()
                .enumerate()
                .map(|(l, level)| LevelModel {
                    level: level.name().to_owned(),
                    code: level.code().to_string(),
                    m: model.m[f][l],
                    u: model.u[f][l],
                    weight: model.level_weight(f, l),
                })
                .collect(),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One extract's model: its λ, prior and EM run, and m and u per field and level.
fn model_html(out: &mut String, input: &InputModel, spine: &str) {
    let pairs = if input.pooled {
        "candidate pairs of every extract"
    } else if input.extract == spine {
        "candidate spine pairs"
    } else {
        "candidate pairs with the spine"
    };
    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<p>{}λ = {:.6} of the {} {pairs} the model was fitted on are expected to match; the prior that two records compared at random match is {:.3e}, the one the scores imply ({} iterations, {}). m was trained by EM rule by rule.</p>",
        escape(&input.extract),
        if input.pooled {
            "Too few candidate pairs of its own: the model of every extract's pairs pooled. "
        } else if input.own_fit_rejected {
            "Its own fit was rejected (its matches agreed exactly less often than at another level on some field, or some field was trained on fewer than 200 matches): m is the model of every extract's pairs pooled, λ and the prior its own, fitted with that m. "
        } else {
            ""
        },
        input.lambda,
        input.fitted_pairs,
        input.prior,
        input.iterations,
        if input.converged {
            "converged"
        } else {
            "not converged"
        },
    );
    for field in &input.fields {
        let _ = writeln!(
            out,
            "<h3>{} ({})</h3><p>{}</p><table><tr><th>level</th><th>code</th><th>m</th><th>u</th><th>weight (bits)</th></tr>",
            escape(&field.field),
            escape(&field.kind),
            field.trained_matches.map_or_else(
                || "m from the joint fit: no blocking rule leaves this field free.".to_owned(),
                |n| format!("m trained on {n:.0} expected matches, summed over the blocking rules that leave it free (a pair two rules found counts twice).")
            )
        );
        for level in &field.levels {
            let _ = writeln!(
                out,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{:.6}</td><td>{:.6}</td><td>{:+.2}</td></tr>",
                level.level, level.code, level.m, level.u, level.weight
            );
        }
        out.push_str("</table>\n");
        if field.levels.iter().any(|l| l.code == "T") {
            out.push_str(
                "<p>crossed (T): forename and surname written the other way round; it weighs what exact agreement weighs at the field's u, not log2(m/u).</p>\n",
            );
        }
    }
}

/// One extract's weight histogram, a bar per bin.
fn histogram_html(out: &mut String, h: &WeightHistogram) {
    let most = h.bins.iter().map(|b| b.pairs).max().unwrap_or(1).max(1);
    out.push_str(
        "<h3>Match weights of its candidate pairs</h3><table><tr><th>weight (bits)</th><th>pairs</th><th class=\"l\"></th></tr>\n",
    );
    for bin in &h.bins {
        let width = (bin.pairs * 300).div_ceil(most);
        let _ = writeln!(
            out,
            "<tr><td>[{}, {})</td><td>{}</td><td class=\"l\"><span class=\"bar\" style=\"width:{width}px\"></span></td></tr>",
            bin.from,
            bin.from + 1,
            bin.pairs
        );
    }
    out.push_str("</table>\n");
}

/// `linkage-report.html`: the blocking rules, then per extract its model's λ, prior, m and u
/// and its candidate pairs' weight histogram, as plain HTML with inline styles (no script).
pub(crate) fn html(model: &ModelReport, spine: &str) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Linkage model</title>\n\
         <style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;margin-bottom:1.5em}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}td.l{text-align:left}\
         .bar{background:#4a7ab5;height:0.8em;display:inline-block}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>Probabilistic linkage model</h1>\n<p>Spine <b>{}</b>. Threshold: match probability ≥ {}. EM was fitted on {} candidate pairs; {} candidate pairs were scored. u from {} random spine pairs, shared by every extract's model; m, λ and the prior are fitted per extract.</p>",
        escape(spine),
        model.match_probability,
        model.candidate_pairs,
        model.scored_pairs,
        model.random_pairs
    );
    out.push_str(
        "<h2>Blocking rules</h2><table><tr><th>rule</th><th>block cap</th><th>used for</th><th>pairs scored, found first</th></tr>\n",
    );
    for rule in &model.blocking {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&rule.rule),
            rule.block_cap,
            rule.used_for,
            rule.pairs
        );
    }
    out.push_str("</table>\n");
    let dedup = &model.spine;
    let _ = writeln!(
        out,
        "<h2>Spine</h2><p>{} pairs of spine records reached the threshold: {} merges, {} refused by the guard against chaining, {} by the cluster size. Records of other extracts bridged {} pairs of persons (each matching the record on fields the other does not): {} merges, {} refused because two of their records disagree, {} by the cluster size.</p>",
        dedup.pairs_above_threshold,
        dedup.merges,
        dedup.refused_by_guard,
        dedup.refused_by_size,
        dedup.bridged_pairs,
        dedup.bridge_merges,
        dedup.bridges_refused_by_guard,
        dedup.bridges_refused_by_size
    );
    let through = &model.through_linked;
    let _ = writeln!(
        out,
        "<h2>Second round</h2><p>{} records were scored again ({} of them because a bridge made their two best persons one) against the spine and {} linked records of the extracts{}; {} pairs were scored.</p><table><tr><th>extract</th><th>records linked in the second round</th></tr>",
        through.records_scored,
        through.records_decided_again,
        through.linked_records_added,
        if through.limited_to_spine_size {
            " (fewer than could join: at most twice the spine's records)"
        } else {
            ""
        },
        through.pairs_scored
    );
    for count in &through.linked {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td></tr>",
            escape(&count.extract),
            count.records
        );
    }
    out.push_str("</table>\n");
    for input in &model.models {
        model_html(&mut out, input, spine);
        if let Some(h) = model.histograms.iter().find(|h| h.extract == input.extract) {
            histogram_html(&mut out, h);
        }
    }
    out.push_str("</body></html>\n");
    out
}
