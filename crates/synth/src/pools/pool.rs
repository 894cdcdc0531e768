//! The weighted pool that names are drawn from.

/// A weighted pool of names with a cumulative table for fast draws.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The names.
    pub names: Vec<String>,
    cumulative: Vec<f64>,
}

impl Pool {
    /// A pool over `names` where the name at rank `r` has weight `1 / (r + offset)`.
    #[cfg(test)]
    pub fn ranked(names: &[&str], offset: f64) -> Pool {
        let weights: Vec<f64> = (0..names.len()).map(|r| 1.0 / (r as f64 + offset)).collect();
        Pool::weighted(names.iter().map(|s| (*s).to_owned()).collect(), &weights)
    }

    /// A pool with explicit weights (normalised here).
    pub fn weighted(names: Vec<String>, weights: &[f64]) -> Pool {
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Pool { names, cumulative }
    }

    /// The index of the name for a uniform draw `u` in [0, 1).
    pub fn pick(&self, u: f64) -> u16 {
        let i = self.cumulative.partition_point(|&c| c <= u);
        i.min(self.names.len() - 1) as u16
    }

    /// The probability of the name at `index`.
    pub fn share(&self, index: usize) -> f64 {
        let prev = if index == 0 {
            0.0
        } else {
            self.cumulative[index - 1]
        };
        self.cumulative[index] - prev
    }
}
