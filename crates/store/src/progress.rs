/// Progress of a long piece of work, reported by stages and shown by the command line
/// (a bar on a terminal, nothing otherwise).
pub trait Progress: Sync {
    /// Starts a phase with a known (or unknown, `None`) amount of work.
    fn start(&self, phase: &str, total: Option<u64>);
    /// Records `n` more units done in the current phase.
    fn advance(&self, n: u64);
    /// Ends the current phase.
    fn finish(&self);
}

/// Progress that goes nowhere (tests, libraries).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _phase: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
