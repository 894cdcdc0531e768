//! The five extracts that the synthetic departments hold.

/// The five extracts, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Extract {
    /// `releases.csv`, the spine.
    Releases,
    /// `participants.csv`, the programme's list.
    Participants,
    /// `reoffences.csv`, proven reoffences.
    Reoffences,
    /// `employment.csv`, employment spells (Windows-1252).
    Employment,
    /// `benefits.csv`, benefit spells.
    Benefits,
}

impl Extract {
    /// All extracts in writing order.
    pub const ALL: [Extract; 5] = [
        Extract::Releases,
        Extract::Participants,
        Extract::Reoffences,
        Extract::Employment,
        Extract::Benefits,
    ];

    /// The extract's name (its file stem and its name in `truth/records.csv`).
    pub fn name(self) -> &'static str {
        match self {
            Extract::Releases => "releases",
            Extract::Participants => "participants",
            Extract::Reoffences => "reoffences",
            Extract::Employment => "employment",
            Extract::Benefits => "benefits",
        }
    }

    /// The prefix of the extract's record ids.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Extract::Releases => "REL",
            Extract::Participants => "PAR",
            Extract::Reoffences => "OFF",
            Extract::Employment => "EMP",
            Extract::Benefits => "BEN",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
