//! The kinds of identifier noise and their target rates per extract.

use crate::extract::Extract;

/// The kinds of identifier noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A substituted, dropped or doubled letter in the forename.
    ForenameTypo,
    /// A substituted, dropped or doubled letter in the surname.
    SurnameTypo,
    /// A nickname instead of the forename (Bill for William).
    Nickname,
    /// A second forename after the first ("Mary Ann"); harmless after standardisation.
    MiddleName,
    /// A different surname (mostly women, e.g. a married name); never on a first release.
    SurnameChange,
    /// An empty forename or surname.
    NameMissing,
    /// Leading, trailing or doubled spaces in a name; harmless after standardisation.
    ExtraSpaces,
    /// Day and month swapped (only possible when both are 12 or less and differ).
    DobSwap,
    /// A valid but wrong date of birth (a day or a year off).
    DobTypo,
    /// A date of birth that does not exist (31/02/1980).
    DobInvalid,
    /// The placeholder date of birth 1900-01-01.
    DobPlaceholder,
    /// Sex flipped or missing.
    SexError,
    /// No NI number.
    NinoMissing,
    /// An NI number the NINO rule rejects (forbidden prefix, bad letter, a digit short).
    NinoInvalid,
}

/// Number of noise kinds.
pub const KINDS: usize = 14;

impl Kind {
    /// All kinds, in the order of the count arrays.
    pub const ALL: [Kind; KINDS] = [
        Kind::ForenameTypo,
        Kind::SurnameTypo,
        Kind::Nickname,
        Kind::MiddleName,
        Kind::SurnameChange,
        Kind::NameMissing,
        Kind::ExtraSpaces,
        Kind::DobSwap,
        Kind::DobTypo,
        Kind::DobInvalid,
        Kind::DobPlaceholder,
        Kind::SexError,
        Kind::NinoMissing,
        Kind::NinoInvalid,
    ];

    /// The kind's name in `truth/noise.json`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ForenameTypo => "forename_typo",
            Kind::SurnameTypo => "surname_typo",
            Kind::Nickname => "nickname",
            Kind::MiddleName => "middle_name",
            Kind::SurnameChange => "surname_change",
            Kind::NameMissing => "name_missing",
            Kind::ExtraSpaces => "extra_spaces",
            Kind::DobSwap => "dob_swap_day_month",
            Kind::DobTypo => "dob_typo",
            Kind::DobInvalid => "dob_invalid",
            Kind::DobPlaceholder => "dob_placeholder",
            Kind::SexError => "sex_error",
            Kind::NinoMissing => "nino_missing",
            Kind::NinoInvalid => "nino_invalid",
        }
    }
}

/// Target rates per extract, in the order of `Kind::ALL`.
const TARGETS: [[f64; KINDS]; 5] = [
    // releases: ft, st, nick, middle, change, missing, spaces, swap, typo, invalid, placeholder,
    // sex, nino missing, nino invalid
    [
        0.008, 0.008, 0.0, 0.0, 0.0, 0.001, 0.01, 0.002, 0.0015, 0.0005, 0.0005, 0.001, 0.33, 0.002,
    ],
    // participants
    [
        0.012, 0.012, 0.06, 0.03, 0.0, 0.002, 0.03, 0.004, 0.002, 0.001, 0.001, 0.003, 0.45, 0.003,
    ],
    // reoffences
    [
        0.01, 0.01, 0.02, 0.0, 0.0, 0.001, 0.01, 0.003, 0.002, 0.001, 0.001, 0.002, 0.4, 0.002,
    ],
    // employment
    [
        0.008, 0.008, 0.0, 0.01, 0.0, 0.001, 0.02, 0.003, 0.0015, 0.0005, 0.0005, 0.002, 0.03, 0.002,
    ],
    // benefits
    [
        0.008, 0.008, 0.0, 0.02, 0.0, 0.001, 0.02, 0.003, 0.0015, 0.0005, 0.0005, 0.001, 0.01, 0.002,
    ],
];

/// Probability that a woman's (man's) record outside a first release carries her other surname.
pub(super) const SURNAME_CHANGE_FEMALE: f64 = 0.08;
pub(super) const SURNAME_CHANGE_MALE: f64 = 0.006;
/// Declared realised range of surname changes in files other than `releases`.
const SURNAME_CHANGE_RANGE: [f64; 2] = [0.002, 0.04];
/// Declared realised range of surname changes in `releases` (second releases only).
const SURNAME_CHANGE_RANGE_RELEASES: [f64; 2] = [0.0, 0.01];
/// Share of dates of birth whose day and month can be swapped (both <= 12 and different).
pub(super) const SWAPPABLE_SHARE: f64 = 132.0 / 365.25;

/// The declared range of a kind's realised rate in an extract.
pub fn declared(extract: Extract, kind: Kind) -> [f64; 2] {
    if kind == Kind::SurnameChange {
        return if extract == Extract::Releases {
            SURNAME_CHANGE_RANGE_RELEASES
        } else {
            SURNAME_CHANGE_RANGE
        };
    }
    let t = TARGETS[extract.index()][kind as usize];
    [t * 0.5, t * 1.6]
}

pub(super) fn target(extract: Extract, kind: Kind) -> f64 {
    TARGETS[extract.index()][kind as usize]
}
