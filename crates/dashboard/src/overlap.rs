//! Releases that share a cohort. Two releases made from the same cohort data can be differenced:
//! one programme's published figures subtracted from another's may reveal a group below the
//! threshold that neither release shows alone. Each release passes `check-release` on its own;
//! only a joint audit (`check-release DIR --with OTHER_DIR`) covers the pair. The dashboard
//! cannot run that audit for every pair, so it says which of its releases share a cohort.

use std::fmt;
use std::path::PathBuf;

use crate::Programme;

/// Programmes whose releases were made from one cohort source: their manifests'
/// `programme.cohort` fingerprints are equal. The fingerprint itself is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCohort {
    /// The programmes' names, in the order their folders were given.
    pub programmes: Vec<String>,
    /// Their release folders, in the same order.
    pub dirs: Vec<PathBuf>,
}

/// Every group of two or more programmes whose manifests give the same cohort fingerprint, in
/// the order of each group's first programme. A programme without one (an unknown cohort) is in
/// no group.
pub fn shared_cohorts(programmes: &[Programme]) -> Vec<SharedCohort> {
    let mut groups: Vec<(&str, SharedCohort)> = Vec::new();
    for p in programmes {
        let Some(cohort) = p.cohort.as_deref() else {
            continue;
        };
        let member = |g: &mut SharedCohort| {
            g.programmes.push(p.name.clone());
            g.dirs.push(p.dir.clone());
        };
        if let Some((_, group)) = groups.iter_mut().find(|(c, _)| *c == cohort) {
            member(group);
        } else {
            let mut group = SharedCohort {
                programmes: Vec::new(),
                dirs: Vec::new(),
            };
            member(&mut group);
            groups.push((cohort, group));
        }
    }
    groups
        .into_iter()
        .map(|(_, g)| g)
        .filter(|g| g.programmes.len() >= 2)
        .collect()
}

/// "A", "A and B", "A, B and C".
pub(crate) fn listed<T: AsRef<str>>(items: &[T]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

impl SharedCohort {
    /// The command that audits the group's first two releases jointly.
    pub fn audit_command(&self) -> String {
        match self.dirs.as_slice() {
            [first, second, ..] => format!(
                "linklab check-release {} --with {}",
                first.display(),
                second.display()
            ),
            _ => "linklab check-release DIR --with OTHER_DIR".to_owned(),
        }
    }
}

/// The command line's warning: the programmes, their folders, and the joint audit to run.
impl fmt::Display for SharedCohort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named: Vec<String> = self
            .programmes
            .iter()
            .zip(&self.dirs)
            .map(|(name, dir)| format!("{name:?} ({})", dir.display()))
            .collect();
        let (each, example) = if self.dirs.len() == 2 {
            ("them", "")
        } else {
            ("each pair", ", for example")
        };
        write!(
            f,
            "the releases of {} share one cohort, so figures could be differenced across them; \
             audit {each} jointly{example}: {}",
            listed(&named),
            self.audit_command()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::listed;

    #[test]
    fn names_are_listed_in_prose() {
        for (items, expected) in [
            (&[][..], ""),
            (&["A"][..], "A"),
            (&["A", "B"][..], "A and B"),
            (&["A", "B", "C"][..], "A, B and C"),
        ] {
            assert_eq!(listed(items), expected, "{items:?}");
        }
    }
}
