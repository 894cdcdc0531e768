use std::fmt;

/// One problem found in a release folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The released file concerned (prefixed with its folder for the `--with` release).
    pub file: String,
    /// The cell, e.g. `sex=F, region=Total`, or `-` for a whole file.
    pub cell: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.cell, self.reason)
    }
}

/// The result of [`crate::check_release`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    /// Every problem found; empty when the release is safe to let out.
    pub problems: Vec<Problem>,
    /// What the checker did not or could not verify (an unverified signature, prose it does not
    /// re-audit); not problems.
    pub notes: Vec<String>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub(crate) fn push(&mut self, file: &str, cell: &str, reason: impl Into<String>) {
        let problem = Problem {
            file: file.to_owned(),
            cell: cell.to_owned(),
            reason: reason.into(),
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.is_empty() {
            writeln!(f, "release passes the check")?;
        }
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
