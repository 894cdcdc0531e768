//! Postcode pieces and the categories of the extracts' non-identifier columns.

/// Postcode areas used for synthetic (format-valid) postcodes.
pub const POSTCODE_AREAS: &[&str] = &[
    "B", "M", "L", "LS", "S", "E", "N", "NW", "SE", "SW", "W", "CF", "G", "EH", "BS", "NG", "LE", "CV", "WV",
    "BD", "HU", "ST", "PL", "NE", "SR", "DN", "PR", "BL", "OL", "WN", "ME", "SO", "PO", "BN", "RM", "IG",
    "CR", "EN",
];

/// Letters allowed in the inward part of a postcode.
pub const POSTCODE_INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// Offence groups of the release covariate `offence_group`, with their shares.
pub const OFFENCE_GROUPS: &[(&str, f64)] = &[
    ("violence", 0.28),
    ("theft", 0.25),
    ("drugs", 0.17),
    ("fraud", 0.07),
    ("public_order", 0.10),
    ("other", 0.13),
];

/// Offence types of `reoffences.csv`.
pub const OFFENCE_TYPES: &[&str] = &[
    "violence",
    "theft",
    "drugs",
    "fraud",
    "public_order",
    "criminal_damage",
    "motoring",
    "other",
];

/// Employer sectors of `employment.csv`.
pub const SECTORS: &[&str] = &[
    "construction",
    "retail",
    "hospitality",
    "manufacturing",
    "transport",
    "admin_support",
    "health_social",
    "agriculture",
    "other",
];

/// Benefit types of `benefits.csv`; the first three are out-of-work benefits.
pub const BENEFIT_TYPES: &[&str] = &["JSA", "ESA", "UC_SEARCHING", "PIP", "CARERS", "UC_WORKING"];

/// Whether a `BENEFIT_TYPES` index is an out-of-work benefit.
pub fn is_out_of_work(benefit: u8) -> bool {
    benefit < 3
}
