//! The eight extracts that the synthetic departments and programmes hold.

use crate::programmes::Programme;

/// The eight extracts, in the order they are written (the three newer programmes' lists last, so
/// the streams and the record order of the first five never change).
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
    /// `mentoring.csv`, the mentoring programme's list.
    Mentoring,
    /// `education.csv`, the education programme's list.
    Education,
    /// `bootcamp.csv`, the boot camp's list.
    BootCamp,
}

impl Extract {
    /// All extracts in writing order.
    pub const ALL: [Extract; 8] = [
        Extract::Releases,
        Extract::Participants,
        Extract::Reoffences,
        Extract::Employment,
        Extract::Benefits,
        Extract::Mentoring,
        Extract::Education,
        Extract::BootCamp,
    ];

    /// The extract's name (its file stem and its name in `truth/records.csv`).
    pub fn name(self) -> &'static str {
        match self {
            Extract::Releases => "releases",
            Extract::Participants => "participants",
            Extract::Reoffences => "reoffences",
            Extract::Employment => "employment",
            Extract::Benefits => "benefits",
            Extract::Mentoring => "mentoring",
            Extract::Education => "education",
            Extract::BootCamp => "bootcamp",
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
            Extract::Mentoring => "MEN",
            Extract::Education => "EDU",
            Extract::BootCamp => "BCP",
        }
    }

    /// The programme whose participant list this is, if it is one.
    pub(crate) fn programme(self) -> Option<Programme> {
        match self {
            Extract::Participants => Some(Programme::Resettlement),
            Extract::Mentoring => Some(Programme::Mentoring),
            Extract::Education => Some(Programme::Education),
            Extract::BootCamp => Some(Programme::BootCamp),
            Extract::Releases | Extract::Reoffences | Extract::Employment | Extract::Benefits => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
