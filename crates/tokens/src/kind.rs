//! The kinds of identifier column the spec knows.

use std::fmt;
use std::str::FromStr;

use crate::TokenError;

/// What an identifier column holds. The kind chooses the standardisation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldKind {
    /// A surname (or any name): letters only, accents and punctuation dropped.
    Name,
    /// A forename: the first word only, then as [`FieldKind::Name`].
    Forename,
    /// A date of birth, output as `YYYYMMDD`.
    Dob,
    /// Sex, output as `M` or `F`.
    Sex,
    /// A UK national insurance number, output without its suffix letter.
    Nino,
    /// A UK postcode, output without spaces.
    Postcode,
    /// Any other reference number: ASCII letters and digits only.
    Id,
}

impl FieldKind {
    /// Every kind, in the spec's order.
    pub const ALL: [FieldKind; 7] = [
        FieldKind::Name,
        FieldKind::Forename,
        FieldKind::Dob,
        FieldKind::Sex,
        FieldKind::Nino,
        FieldKind::Postcode,
        FieldKind::Id,
    ];

    /// The kind's label as written in pipeline files (`"name"`, `"dob"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            FieldKind::Name => "name",
            FieldKind::Forename => "forename",
            FieldKind::Dob => "dob",
            FieldKind::Sex => "sex",
            FieldKind::Nino => "nino",
            FieldKind::Postcode => "postcode",
            FieldKind::Id => "id",
        }
    }

    /// The kind with this exact label, if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldKind {
    type Err = TokenError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| TokenError::UnknownKind {
            text: text.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        for kind in FieldKind::ALL {
            assert_eq!(FieldKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string().parse::<FieldKind>(), Ok(kind));
        }
        assert_eq!(FieldKind::parse("Name"), None);
        assert_eq!(
            "surname".parse::<FieldKind>().unwrap_err().to_string(),
            "unknown field kind `surname`: expected one of name, forename, dob, sex, nino, postcode, id"
        );
    }
}
