//! Pairwise precision and recall of a clustering against `linklab synth`'s ground truth, with the
//! link crate's definitions (`linkage-report.json`'s `quality`), for a peer's output: a cluster
//! id for every record.
//!
//! * Spine clustering: over pairs of spine records; a pair is predicted when both records are in
//!   one cluster, true when both are one true person.
//! * An extract's links: over (record, spine record) pairs; predicted when the spine record is in
//!   the record's cluster, true when both are one true person.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Pair counts, and precision and recall from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pairs {
    /// Pairs put together that belong together.
    pub true_positive: u64,
    /// Pairs put together.
    pub predicted: u64,
    /// Pairs that belong together.
    pub truth: u64,
}

impl Pairs {
    pub fn precision(self) -> Option<f64> {
        (self.predicted > 0).then(|| self.true_positive as f64 / self.predicted as f64)
    }

    pub fn recall(self) -> Option<f64> {
        (self.truth > 0).then(|| self.true_positive as f64 / self.truth as f64)
    }

    /// The sum of several extracts' counts.
    pub fn pooled(all: impl IntoIterator<Item = Self>) -> Self {
        all.into_iter().fold(Self::default(), |a, b| Self {
            true_positive: a.true_positive + b.true_positive,
            predicted: a.predicted + b.predicted,
            truth: a.truth + b.truth,
        })
    }

    /// `P 99.85% R 97.09%`.
    pub fn text(self) -> String {
        let percent = |x: Option<f64>| x.map_or_else(|| "n/a".to_owned(), |x| format!("{:.2}%", 100.0 * x));
        format!("P {} R {}", percent(self.precision()), percent(self.recall()))
    }
}

/// The pairs within each group of a count table.
fn pair_sum<K>(counts: &HashMap<K, u64>) -> u64 {
    counts.values().map(|&n| n * n.saturating_sub(1) / 2).sum()
}

/// Spine records, each as (true person, cluster): how many of each cell, cluster and person.
struct Spine {
    cells: HashMap<(u64, u64), u64>,
    per_cluster: HashMap<u64, u64>,
    per_person: HashMap<u64, u64>,
}

impl Spine {
    fn new(spine: &[(u64, u64)]) -> Self {
        let mut s = Self {
            cells: HashMap::new(),
            per_cluster: HashMap::new(),
            per_person: HashMap::new(),
        };
        for &(person, cluster) in spine {
            *s.cells.entry((cluster, person)).or_default() += 1;
            *s.per_cluster.entry(cluster).or_default() += 1;
            *s.per_person.entry(person).or_default() += 1;
        }
        s
    }
}

/// Pairwise quality of the spine clustering; `spine` holds (true person, cluster) per record.
pub fn spine_pairs(spine: &[(u64, u64)]) -> Pairs {
    let s = Spine::new(spine);
    Pairs {
        true_positive: pair_sum(&s.cells),
        predicted: pair_sum(&s.per_cluster),
        truth: pair_sum(&s.per_person),
    }
}

/// Pairwise quality of one extract's links to the spine; both hold (true person, cluster).
pub fn link_pairs(spine: &[(u64, u64)], records: &[(u64, u64)]) -> Pairs {
    let s = Spine::new(spine);
    let count = |m: &HashMap<u64, u64>, k| m.get(&k).copied().unwrap_or(0);
    records
        .iter()
        .fold(Pairs::default(), |p, &(person, cluster)| Pairs {
            true_positive: p.true_positive + s.cells.get(&(cluster, person)).copied().unwrap_or(0),
            predicted: p.predicted + count(&s.per_cluster, cluster),
            truth: p.truth + count(&s.per_person, person),
        })
}

/// Numbers for strings, in order of first sight.
#[derive(Default)]
struct Numbering(HashMap<String, u64>);

impl Numbering {
    fn of(&mut self, s: &str) -> u64 {
        let next = self.0.len() as u64;
        *self.0.entry(s.to_owned()).or_insert(next)
    }
}

/// Reads a CSV of three columns (after its header) as (first, second) → third; the files read
/// here (synth's truth, a peer's clusters) have no quoted fields.
fn three_columns(path: &Path, mut row: impl FnMut(&str, &str, &str)) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    for (i, line) in BufReader::new(file).lines().enumerate().skip(1) {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut fields = line.trim_end_matches('\r').splitn(3, ',');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(a), Some(b), Some(c)) => row(a, b, c),
            _ => return Err(format!("{} line {}: expected 3 fields", path.display(), i + 1)),
        }
    }
    Ok(())
}

/// A peer's clusters (`source_dataset,unique_id,cluster_id`) scored against synth's truth
/// (`truth/records.csv`: `extract,record_id,person`): the spine clustering, then each other
/// extract's links in the order given.
pub fn score_clusters(
    truth: &Path,
    clusters: &Path,
    spine: &str,
    others: &[&str],
) -> Result<(Pairs, Vec<Pairs>), String> {
    let mut people = Numbering::default();
    let mut person_of: HashMap<(String, String), u64> = HashMap::new();
    let wanted = |e: &str| e == spine || others.contains(&e);
    three_columns(truth, |extract, record, person| {
        if wanted(extract) {
            person_of.insert((extract.to_owned(), record.to_owned()), people.of(person));
        }
    })?;
    let mut ids = Numbering::default();
    let mut by_extract: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    let mut unknown = 0u64;
    three_columns(clusters, |extract, record, cluster| {
        match person_of.get(&(extract.to_owned(), record.to_owned())) {
            Some(&person) => by_extract
                .entry(extract.to_owned())
                .or_default()
                .push((person, ids.of(cluster))),
            None => unknown += 1,
        }
    })?;
    if unknown > 0 {
        return Err(format!("{unknown} clustered records are not in the truth file"));
    }
    let empty = Vec::new();
    let spine_records = by_extract.get(spine).unwrap_or(&empty);
    let links = others
        .iter()
        .map(|e| link_pairs(spine_records, by_extract.get(*e).unwrap_or(&empty)))
        .collect();
    Ok((spine_pairs(spine_records), links))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(spine: &[(u64, u64)], records: &[(u64, u64)], expected: [(u64, u64, u64); 2]) {
        let got =
            [spine_pairs(spine), link_pairs(spine, records)].map(|p| (p.true_positive, p.predicted, p.truth));
        assert_eq!(got, expected);
    }

    #[test]
    fn pairs_are_counted_as_the_link_report_counts_them() {
        // Spine: clusters {a, b, c} and {d}; true persons {a, b} (7) and {c, d} (8).
        let spine = [(7, 0), (7, 0), (8, 0), (8, 1)];
        // A record of person 7 in cluster 0: 3 predicted pairs, 2 of them true, 2 true in all.
        check(&spine, &[(7, 0)], [(1, 3, 2), (2, 3, 2)]);
        // A record of person 8 left alone (a cluster of its own): 2 true pairs missed.
        check(&spine, &[(8, 5)], [(1, 3, 2), (0, 0, 2)]);
        // A record of a person with no spine record, put into cluster 1: 1 false pair.
        check(&spine, &[(9, 1)], [(1, 3, 2), (0, 1, 0)]);
        // Everyone apart: nothing predicted.
        check(&[(7, 0), (7, 1)], &[(7, 2)], [(0, 0, 1), (0, 0, 2)]);
    }

    #[test]
    fn precision_and_recall_and_pooling() {
        let a = Pairs {
            true_positive: 3,
            predicted: 4,
            truth: 6,
        };
        let b = Pairs {
            true_positive: 1,
            predicted: 1,
            truth: 2,
        };
        assert_eq!(a.text(), "P 75.00% R 50.00%");
        assert_eq!(Pairs::pooled([a, b]).text(), "P 80.00% R 50.00%");
        assert_eq!(Pairs::default().text(), "P n/a R n/a");
    }

    #[test]
    fn clusters_are_scored_against_the_truth_file() {
        let dir = std::env::temp_dir().join(format!("linklab-bench-pairwise-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let truth = dir.join("records.csv");
        std::fs::write(
            &truth,
            "extract,record_id,person\ns,1,P1\ns,2,P1\ns,3,P2\ne,10,P1\ne,11,P2\nx,99,P1\n",
        )
        .expect("write the truth");
        let clusters = dir.join("clusters.csv");
        std::fs::write(
            &clusters,
            "source_dataset,unique_id,cluster_id\ns,1,c1\ns,2,c2\ns,3,c3\ne,10,c1\ne,11,c3\n",
        )
        .expect("write the clusters");
        let (spine, links) = score_clusters(&truth, &clusters, "s", &["e"]).expect("scored");
        assert_eq!((spine.true_positive, spine.predicted, spine.truth), (0, 0, 1));
        assert_eq!(
            (links[0].true_positive, links[0].predicted, links[0].truth),
            (2, 2, 3)
        );
        std::fs::write(&clusters, "source_dataset,unique_id,cluster_id\ns,4,c1\n").expect("write");
        assert!(score_clusters(&truth, &clusters, "s", &["e"]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
