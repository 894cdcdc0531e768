//! Exit codes, a documented contract for schedulers.

/// How a `linklab` command ended. The numbers are part of the contract (`pipeline-v1.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Success = 0,
    /// 1: the input or the configuration is wrong; stderr says what.
    BadInput = 1,
    /// 2: an internal error (a bug).
    Internal = 2,
    /// 3: `check-release` found a problem in a release folder.
    ReleaseRejected = 3,
    /// 4: another run holds the lock on the work_dir; retry later.
    Locked = 4,
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit as u8)
    }
}
