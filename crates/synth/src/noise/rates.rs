//! The kinds of identifier noise and their target rates per extract, for each noise level.
//!
//! `standard` is the demo's world; `heavy` triples the typos, nicknames and date-of-birth errors
//! and adds transposed names, more missing NI numbers, more surname changes and double-barrelled
//! surnames recorded in part (`docs/synth.md` lists every rate).

use crate::extract::Extract;

/// How much identifier noise the extracts carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoiseLevel {
    /// The demo's noise (its outputs are pinned by the demo's snapshot).
    #[default]
    Standard,
    /// A harder world: see the module documentation.
    Heavy,
}

impl NoiseLevel {
    /// The level's name (`standard`, `heavy`).
    pub fn name(self) -> &'static str {
        match self {
            NoiseLevel::Standard => "standard",
            NoiseLevel::Heavy => "heavy",
        }
    }

    /// The kinds this level applies and reports, in the order of the count arrays.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            NoiseLevel::Standard => &Kind::ALL[..STANDARD_KINDS],
            NoiseLevel::Heavy => &Kind::ALL,
        }
    }

    fn targets(self) -> &'static [[f64; KINDS]; 5] {
        match self {
            NoiseLevel::Standard => &STANDARD,
            NoiseLevel::Heavy => &HEAVY,
        }
    }

    /// Probability that a woman's (`female`) or a man's record outside a first release carries
    /// the person's other surname (e.g. a married name).
    pub(super) fn surname_change(self, female: bool) -> f64 {
        match (self, female) {
            (NoiseLevel::Standard, true) => 0.08,
            (NoiseLevel::Standard, false) => 0.006,
            (NoiseLevel::Heavy, true) => 0.24,
            (NoiseLevel::Heavy, false) => 0.018,
        }
    }

    /// The declared range of a kind's realised rate in an extract.
    pub fn declared(self, extract: Extract, kind: Kind) -> [f64; 2] {
        if kind == Kind::SurnameChange {
            return match (self, extract == Extract::Releases) {
                (NoiseLevel::Standard, true) => [0.0, 0.01],
                (NoiseLevel::Standard, false) => [0.002, 0.04],
                (NoiseLevel::Heavy, true) => [0.0, 0.03],
                (NoiseLevel::Heavy, false) => [0.006, 0.14],
            };
        }
        let t = self.target(extract, kind);
        [t * 0.5, t * 1.6]
    }

    /// The target rate of a kind in an extract (every programme's list has the rates of
    /// `participants.csv`).
    pub(super) fn target(self, extract: Extract, kind: Kind) -> f64 {
        let row = if extract.programme().is_some() {
            Extract::Participants
        } else {
            extract
        };
        self.targets()[row.index()][kind as usize]
    }
}

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
    /// Forename and surname transposed (heavy noise only).
    NamesTransposed,
    /// One part of a double-barrelled surname recorded alone (heavy noise only).
    SurnamePart,
}

/// Number of noise kinds.
pub const KINDS: usize = 16;
/// Number of kinds of the standard level (the first ones of `Kind::ALL`).
const STANDARD_KINDS: usize = 14;

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
        Kind::NamesTransposed,
        Kind::SurnamePart,
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
            Kind::NamesTransposed => "names_transposed",
            Kind::SurnamePart => "surname_part",
        }
    }
}

/// Standard target rates per extract, in the order of `Kind::ALL`.
const STANDARD: [[f64; KINDS]; 5] = [
    // releases: ft, st, nick, middle, change, missing, spaces, swap, typo, invalid, placeholder,
    // sex, nino missing, nino invalid, transposed, surname part
    [
        0.008, 0.008, 0.0, 0.0, 0.0, 0.001, 0.01, 0.002, 0.0015, 0.0005, 0.0005, 0.001, 0.33, 0.002, 0.0, 0.0,
    ],
    // participants
    [
        0.012, 0.012, 0.06, 0.03, 0.0, 0.002, 0.03, 0.004, 0.002, 0.001, 0.001, 0.003, 0.45, 0.003, 0.0, 0.0,
    ],
    // reoffences
    [
        0.01, 0.01, 0.02, 0.0, 0.0, 0.001, 0.01, 0.003, 0.002, 0.001, 0.001, 0.002, 0.4, 0.002, 0.0, 0.0,
    ],
    // employment
    [
        0.008, 0.008, 0.0, 0.01, 0.0, 0.001, 0.02, 0.003, 0.0015, 0.0005, 0.0005, 0.002, 0.03, 0.002, 0.0,
        0.0,
    ],
    // benefits
    [
        0.008, 0.008, 0.0, 0.02, 0.0, 0.001, 0.02, 0.003, 0.0015, 0.0005, 0.0005, 0.001, 0.01, 0.002, 0.0,
        0.0,
    ],
];

/// Heavy target rates: three times the standard typos, nicknames (with a few in every extract)
/// and date-of-birth errors, more missing NI numbers, and the two heavy-only kinds.
const HEAVY: [[f64; KINDS]; 5] = [
    // releases
    [
        0.024, 0.024, 0.005, 0.0, 0.0, 0.002, 0.02, 0.006, 0.0045, 0.0015, 0.0015, 0.002, 0.5, 0.004, 0.005,
        0.01,
    ],
    // participants
    [
        0.036, 0.036, 0.18, 0.06, 0.0, 0.004, 0.06, 0.012, 0.006, 0.003, 0.003, 0.006, 0.6, 0.006, 0.02, 0.02,
    ],
    // reoffences
    [
        0.03, 0.03, 0.06, 0.0, 0.0, 0.002, 0.02, 0.009, 0.006, 0.003, 0.003, 0.004, 0.55, 0.004, 0.01, 0.015,
    ],
    // employment
    [
        0.024, 0.024, 0.01, 0.02, 0.0, 0.002, 0.04, 0.009, 0.0045, 0.0015, 0.0015, 0.004, 0.1, 0.004, 0.01,
        0.015,
    ],
    // benefits
    [
        0.024, 0.024, 0.01, 0.04, 0.0, 0.002, 0.04, 0.009, 0.0045, 0.0015, 0.0015, 0.002, 0.05, 0.004, 0.01,
        0.015,
    ],
];

/// Share of people whose true surname is double-barrelled in the heavy world (none in the
/// standard one): `SurnamePart` targets are turned into probabilities with it.
pub const DOUBLE_BARRELLED_SHARE: f64 = 0.06;

/// Share of dates of birth whose day and month can be swapped (both <= 12 and different).
pub(super) const SWAPPABLE_SHARE: f64 = 132.0 / 365.25;
