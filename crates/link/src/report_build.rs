//! The [`LinkageReport`] gathered from every count of the run.

use std::collections::HashMap;

use linklab_store::TOOL_VERSION;
use linklab_tokens::SPEC_VERSION;

use crate::LinkConfig;
use crate::cluster::Persons;
use crate::input::ExtractInput;
use crate::output::Tally;
use crate::quality::{SpineTruth, no_record_id_note};
use crate::report::{
    ClusterSize, ExtractReport, KeyReport, LinkageReport, QualityReport, SpineKeyReport, SpineReport, rate,
};
use crate::spine::SpinePass;

pub(crate) struct ReportExtras<'a> {
    pub project_fingerprint: String,
    pub linkage_fingerprint: String,
    pub partitions: usize,
    pub spine_truth: Option<&'a SpineTruth>,
    pub notes: Vec<String>,
    pub truth: bool,
}

#[allow(clippy::too_many_arguments)] // Internal: gathers every count of the run into the report.
pub(crate) fn build_report(
    cfg: &LinkConfig,
    inputs: &[ExtractInput],
    persons: &Persons,
    ambiguous: &[Vec<bool>],
    pass: &SpinePass,
    spine_tally: &Tally,
    mut tallies: HashMap<String, Tally>,
    mut extras: ReportExtras<'_>,
) -> LinkageReport {
    let spine_clustering = SpineReport {
        records: pass.records as u64,
        persons: persons.first.len() as u64,
        records_without_tokens: pass.without_tokens,
        by_key: cfg
            .match_keys
            .iter()
            .enumerate()
            .map(|(k, key)| SpineKeyReport {
                key: key.clone(),
                records_with_token: spine_tally.with_token[k],
                merges: persons.merges[k],
                refused_by_stronger_key: persons.refused_guard[k],
                refused_by_size: persons.refused_size[k],
                ambiguous_tokens: ambiguous[k].iter().filter(|&&a| a).count() as u64,
            })
            .collect(),
        cluster_sizes: persons
            .size_histogram()
            .into_iter()
            .map(|(size, persons)| ClusterSize { size, persons })
            .collect(),
    };
    let mut extracts = Vec::new();
    let mut qualities = Vec::new();
    for input in inputs {
        let is_spine = input.name == cfg.spine;
        let tally = if is_spine {
            None
        } else {
            tallies.remove(&input.name)
        };
        let t = tally.as_ref().unwrap_or(spine_tally);
        let records = t.records;
        let linked = if is_spine {
            records
        } else {
            t.linked_by_key.iter().sum()
        };
        let ambiguous: u64 = t.ambiguous_by_key.iter().sum();
        let unlinked = records - linked;
        extracts.push(ExtractReport {
            name: input.name.clone(),
            role: if is_spine { "spine" } else { "linked" }.into(),
            records,
            linked,
            ambiguous,
            unlinked,
            linked_rate: rate(linked, records),
            ambiguous_rate: rate(ambiguous, records),
            unlinked_rate: rate(unlinked, records),
            missing_keys: cfg
                .match_keys
                .iter()
                .zip(&input.key_cols)
                .filter(|(_, col)| col.is_none())
                .map(|(key, _)| key.clone())
                .collect(),
            by_key: cfg
                .match_keys
                .iter()
                .enumerate()
                .map(|(k, key)| KeyReport {
                    key: key.clone(),
                    records_with_token: t.with_token[k],
                    linked: t.linked_by_key[k],
                    ambiguous: t.ambiguous_by_key[k],
                    linked_rate: rate(t.linked_by_key[k], records),
                    ambiguous_rate: rate(t.ambiguous_by_key[k], records),
                })
                .collect(),
            unlinked_profile: t.profile.clone(),
        });
        if let Some(tally) = tally {
            match tally.quality {
                Some(q) => qualities.push(q.finish(&input.name)),
                None if extras.truth && extras.spine_truth.is_some() => {
                    extras.notes.push(no_record_id_note(input));
                }
                None => {}
            }
        }
    }
    let quality = extras.truth.then(|| QualityReport {
        spine_clustering: extras.spine_truth.map(|s| s.pairwise.clone()),
        extracts: qualities,
        notes: extras.notes,
    });
    LinkageReport {
        tool_version: TOOL_VERSION.to_owned(),
        token_spec_version: SPEC_VERSION.to_owned(),
        project_key_fingerprint: extras.project_fingerprint,
        linkage_key_fingerprint: extras.linkage_fingerprint,
        spine: cfg.spine.clone(),
        match_keys: cfg.match_keys.clone(),
        max_cluster_size: cfg.max_cluster_size,
        partitions: extras.partitions,
        spine_clustering,
        extracts,
        quality,
        model: None,
    }
}
