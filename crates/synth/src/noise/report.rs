//! Realised noise counts and the report written to `truth/noise.json`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rates::{KINDS, Kind, NoiseLevel};
use crate::extract::Extract;

/// Realised noise counts of one extract.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Rows written.
    pub rows: u64,
    /// Count per kind, in the order of `Kind::ALL`.
    pub counts: [u64; KINDS],
}

impl Counts {
    pub(crate) fn add(&mut self, kind: Kind) {
        self.counts[kind as usize] += 1;
    }

    /// Adds another part's counts to these.
    pub fn merge(&mut self, other: &Counts) {
        self.rows += other.rows;
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }
}

/// The declared ranges and realised counts, as written to `truth/noise.json`.
#[derive(Debug, Serialize)]
pub struct NoiseReport {
    /// How to read this file.
    pub description: &'static str,
    /// The noise level, when it is not the standard one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<&'static str>,
    /// Per extract, per kind: the declared [low, high] range of the realised rate.
    pub declared: BTreeMap<&'static str, BTreeMap<&'static str, [f64; 2]>>,
    /// Per extract: rows and realised counts and rates per kind.
    pub realised: BTreeMap<&'static str, RealisedNoise>,
}

/// Realised noise of one extract.
#[derive(Debug, Serialize)]
pub struct RealisedNoise {
    /// Rows in the extract.
    pub rows: u64,
    /// Records with each kind of noise.
    pub counts: BTreeMap<&'static str, u64>,
    /// `counts / rows`.
    pub rates: BTreeMap<&'static str, f64>,
}

/// Builds the noise report from the realised counts of each extract.
pub fn report(level: NoiseLevel, counts: &[(Extract, Counts)]) -> NoiseReport {
    let mut declared_map = BTreeMap::new();
    let mut realised = BTreeMap::new();
    for (extract, c) in counts {
        let mut d = BTreeMap::new();
        let mut n = BTreeMap::new();
        let mut r = BTreeMap::new();
        for &kind in level.kinds() {
            d.insert(kind.name(), level.declared(*extract, kind));
            let count = c.counts[kind as usize];
            n.insert(kind.name(), count);
            r.insert(
                kind.name(),
                if c.rows == 0 {
                    0.0
                } else {
                    count as f64 / c.rows as f64
                },
            );
        }
        declared_map.insert(extract.name(), d);
        realised.insert(
            extract.name(),
            RealisedNoise {
                rows: c.rows,
                counts: n,
                rates: r,
            },
        );
    }
    NoiseReport {
        description: "rates are per record of the extract; a record may carry several kinds",
        level: (level != NoiseLevel::Standard).then_some(level.name()),
        declared: declared_map,
        realised,
    }
}
