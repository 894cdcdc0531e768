//! The spec's standardisation examples and edge cases, as one table.

use chrono::NaiveDate;
use linklab_tokens::{FieldKind, InvalidReason, Missing, Standardiser};

/// The date the table treats as today.
const TODAY: (i32, u32, u32) = (2026, 11, 25);

/// Standardises `input` as `kind` and compares with `expected`: the standard form, or
/// `"missing:<label>"`.
fn check(kind: FieldKind, input: &str, expected: &str) {
    let st = Standardiser::new(NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).expect("a date"));
    let got = match st.standardise(kind, input) {
        Ok(value) => value.into_owned(),
        Err(missing) => format!("missing:{missing}"),
    };
    assert_eq!(got, expected, "{kind} {input:?}");
}

#[test]
fn spec_examples() {
    use FieldKind::*;
    for (kind, input, expected) in [
        (Name, "  José-María ", "JOSEMARIA"),
        (Name, "O'Brien", "OBRIEN"),
        (Name, "Straße", "STRASSE"),
        (Forename, "mary ann", "MARY"),
        (Dob, "29/02/1984", "19840229"),
        (Dob, "1983-02-29", "missing:no_such_date"),
        (Sex, "f", "F"),
        (Nino, "ab 12 34 56 c", "AB123456"),
        (Nino, "TN123456A", "missing:forbidden_nino_prefix"),
        (Postcode, "sw1a 1aa", "SW1A1AA"),
        (Id, "12/345678a", "12345678A"),
    ] {
        check(kind, input, expected);
    }
}

#[test]
fn empty_values_of_every_kind() {
    for kind in FieldKind::ALL {
        for input in ["", " ", "\t\n", "\u{a0}", "\u{3000} \u{2003}"] {
            check(kind, input, "missing:empty");
        }
    }
}

#[test]
fn names() {
    use FieldKind::*;
    for (kind, input, expected) in [
        (Name, "OBRIEN", "OBRIEN"),
        (Name, "van der Berg", "VANDERBERG"),
        (Name, "Søren", "SREN"), // ø has no decomposition: it is not a letter A-Z
        (Name, "Zoë Ünal", "ZOEUNAL"),
        (Name, "Ａｎｎ", "ANN"), // fullwidth letters decompose to ASCII under NFKD
        (Name, "ﬁnn", "FINN"),   // the ligature decomposes to f, i
        (Name, "Jo\u{301}se", "JOSE"), // a combining accent typed separately
        (Name, "Łukasz", "UKASZ"), // Ł has no decomposition either
        (Name, "ıvan", "IVAN"),  // dotless i uppercases to I
        (Name, "Mc-Donald 2nd", "MCDONALDND"),
        (Name, "---", "missing:no_letters"),
        (Name, "123", "missing:no_letters"),
        (Name, "\u{301}", "missing:no_letters"),
        (Name, "Иван", "missing:no_letters"),
        (Forename, "  Mary-Ann Jo", "MARYANN"),
        (Forename, "José\tMaría", "JOSE"),
        (Forename, "MARY", "MARY"),
        (Forename, "mary\u{0b}ann", "MARY"),
        (Forename, "- Mary", "missing:no_letters"),
        (Forename, "straße x", "STRASSE"),
    ] {
        check(kind, input, expected);
    }
}

#[test]
fn dates_of_birth() {
    use FieldKind::Dob;
    for (input, expected) in [
        ("1984-02-29", "19840229"),
        ("19840229", "19840229"),
        ("01/12/1950", "19501201"),
        ("1900-01-01", "19000101"),
        ("2026-11-25", "20261125"), // today
        ("2000-02-29", "20000229"), // divisible by 400
        ("2026-11-26", "missing:date_out_of_range"),
        ("2030-01-01", "missing:date_out_of_range"),
        ("1899-12-31", "missing:date_out_of_range"),
        ("00010101", "missing:date_out_of_range"),
        ("1900-02-29", "missing:no_such_date"), // divisible by 100, not 400
        ("20200230", "missing:no_such_date"),
        ("1984-13-01", "missing:no_such_date"),
        ("1984-00-10", "missing:no_such_date"),
        ("31/04/1984", "missing:no_such_date"),
        ("00/01/1984", "missing:no_such_date"),
        ("1984-2-29", "missing:bad_date_format"),
        ("1/2/1984", "missing:bad_date_format"),
        ("1984/02/29", "missing:bad_date_format"),
        ("29-02-1984", "missing:bad_date_format"),
        ("29.02.1984", "missing:bad_date_format"),
        (" 1984-02-29", "missing:bad_date_format"), // exactly the three layouts: no trimming
        ("1984-02-29 ", "missing:bad_date_format"),
        ("1984-02-29T00:00", "missing:bad_date_format"),
        ("198402290", "missing:bad_date_format"),
        ("+1984022", "missing:bad_date_format"),
        ("１９８４０２２９", "missing:bad_date_format"), // fullwidth digits are not digits here
        ("unknown", "missing:bad_date_format"),
    ] {
        check(Dob, input, expected);
    }
}

#[test]
fn sexes() {
    use FieldKind::Sex;
    for (input, expected) in [
        ("M", "M"),
        ("m", "M"),
        (" Male ", "M"),
        ("MALE", "M"),
        ("1", "M"),
        ("F", "F"),
        ("female", "F"),
        ("\tFeMaLe\n", "F"),
        ("\u{0b}m\u{0c}", "M"),
        ("2", "F"),
        ("0", "missing:bad_sex"),
        ("9", "missing:bad_sex"),
        ("U", "missing:bad_sex"),
        ("X", "missing:bad_sex"),
        ("man", "missing:bad_sex"),
        ("fem ale", "missing:bad_sex"),
        ("M.", "missing:bad_sex"),
    ] {
        check(Sex, input, expected);
    }
}

#[test]
fn national_insurance_numbers() {
    use FieldKind::Nino;
    for (input, expected) in [
        ("AB123456C", "AB123456"),
        ("AB123456", "AB123456"),
        ("ab123456d", "AB123456"),
        (" A B 1 2 3 4 5 6 A ", "AB123456"),
        ("AB\u{a0}12\u{3000}34 56", "AB123456"), // all whitespace goes, not only spaces
        ("AB\u{0b}123456\tA\r\n", "AB123456"),   // vertical tab is whitespace too
        ("ZY999999A", "ZY999999"),
        ("CE000000", "CE000000"),
        ("AB123456E", "missing:bad_nino"), // the suffix is A-D
        ("AB12345", "missing:bad_nino"),
        ("AB1234567", "missing:bad_nino"),
        ("AB123456CC", "missing:bad_nino"),
        ("D1123456A", "missing:bad_nino"),
        ("DA123456A", "missing:bad_nino"), // D, F, I, Q, U, V never come first
        ("FA123456A", "missing:bad_nino"),
        ("IA123456A", "missing:bad_nino"),
        ("QA123456A", "missing:bad_nino"),
        ("UA123456A", "missing:bad_nino"),
        ("VA123456A", "missing:bad_nino"),
        ("AO123456A", "missing:bad_nino"), // nor second, with O
        ("AD123456A", "missing:bad_nino"),
        ("OA123456A", "OA123456"), // O may come first
        ("A1123456A", "missing:bad_nino"),
        ("AB12-34-56", "missing:bad_nino"),
        ("ÀB123456", "missing:bad_nino"),
        ("BG123456A", "missing:forbidden_nino_prefix"),
        ("GB123456A", "missing:forbidden_nino_prefix"),
        ("kn123456", "missing:forbidden_nino_prefix"),
        ("NK123456A", "missing:forbidden_nino_prefix"),
        ("NT123456A", "missing:forbidden_nino_prefix"),
        ("TN123456A", "missing:forbidden_nino_prefix"),
        ("ZZ123456A", "missing:forbidden_nino_prefix"),
        ("ZZ12345", "missing:bad_nino"), // the pattern fails before the prefix is looked at
    ] {
        check(Nino, input, expected);
    }
}

#[test]
fn postcodes() {
    use FieldKind::Postcode;
    for (input, expected) in [
        ("SW1A 1AA", "SW1A1AA"), // A9A 9AA with two letters
        ("M1 1AE", "M11AE"),     // A9 9AA
        ("B33 8TH", "B338TH"),   // A99 9AA
        ("CR2 6XH", "CR26XH"),   // AA9 9AA
        ("DN55 1PT", "DN551PT"), // AA99 9AA
        ("W1A 0AX", "W1A0AX"),   // A9A 9AA
        ("ec1a1bb", "EC1A1BB"),
        (" ec1a 1bb ", "EC1A1BB"),
        ("EC1A\u{0b}1BB", "EC1A1BB"),
        ("M11A", "missing:bad_postcode"),     // too short
        ("SW1A1AAA", "missing:bad_postcode"), // too long
        ("SW1A 1A", "missing:bad_postcode"),
        ("1W1A 1AA", "missing:bad_postcode"),
        ("SWA 1AA", "missing:bad_postcode"),
        ("SW1A 11A", "missing:bad_postcode"),
        ("SW1A A1A", "missing:bad_postcode"),
        ("ABC1 1AA", "missing:bad_postcode"),
        ("A1AA 1AA", "missing:bad_postcode"),
        ("SW1A-1AA", "missing:bad_postcode"),
        ("GIR 0AA", "missing:bad_postcode"), // a real postcode the pattern does not allow
    ] {
        check(Postcode, input, expected);
    }
}

#[test]
fn ids() {
    use FieldKind::Id;
    for (input, expected) in [
        ("12/345678a", "12345678A"),
        ("ABC-001", "ABC001"),
        (" x ", "X"),
        ("ß1", "SS1"), // full Unicode uppercasing happens before the ASCII filter
        ("é1", "1"),
        ("--/--", "missing:no_alphanumerics"),
        ("１２", "missing:no_alphanumerics"),
    ] {
        check(Id, input, expected);
    }
}

#[test]
fn missing_labels() {
    assert_eq!(Missing::Empty.as_str(), "empty");
    let labels: Vec<&str> = InvalidReason::ALL.iter().map(|r| r.as_str()).collect();
    insta::assert_snapshot!(labels.join("\n"));
}
