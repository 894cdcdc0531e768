//! The spec's test vectors, and tokens checked against an independent HMAC computation.

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use linklab_tokens::{FieldKind, MatchKey, SecretKey, Standardiser, TokenHasher, Transform};
use proptest::prelude::*;
use sha2::Sha256;

/// The spec's test key: bytes 0x00 to 0x1f.
fn spec_key() -> SecretKey {
    SecretKey::from_bytes((0_u8..32).collect())
}

#[test]
fn fingerprint_vector() {
    assert_eq!(spec_key().fingerprint(), "9c78d894560d7caf");
    assert_eq!(TokenHasher::new(&spec_key()).fingerprint(), "9c78d894560d7caf");
}

#[test]
fn token_vectors() {
    let hasher = TokenHasher::new(&spec_key());
    let check = |name: &str, components: &[&str], expected: &str| {
        assert_eq!(hex::encode(hasher.token(name, components)), expected, "{name}");
    };
    check(
        "nino",
        &["AB123456"],
        "36f92f7f1f6d4dfb0f511335ff36a2af21d9507d629ff15139973eb7013d45ad",
    );
    check(
        "name_dob_sex",
        &["JOSE", "OBRIEN", "19840229", "F"],
        "4f01b2803af64e776bfb2235c410d36b520f4ab352110732b96ef9e4449c0c9c",
    );
    check(
        "soundex_dob",
        &["O165", "19840229"],
        "9f9df8304b1ec62c39651861bb45bae8966db93e26e855220382ecc7d871e585",
    );
}

/// The vectors again, from raw values through standardisation, transforms and match keys.
#[test]
fn token_vectors_from_raw_values() {
    let st = Standardiser::new(NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date"));
    let hasher = TokenHasher::new(&spec_key());
    let std = |kind, raw| st.standardise(kind, raw).expect("valid value");
    let forename = std(FieldKind::Forename, "José María");
    let surname = std(FieldKind::Name, "O'Brien");
    let dob = std(FieldKind::Dob, "29/02/1984");
    let sex = std(FieldKind::Sex, " f ");
    let nino = std(FieldKind::Nino, "ab 12 34 56 c");

    let key =
        MatchKey::parse("name_dob_sex", &["forename", "surname", "dob", "sex"], false).expect("valid key");
    let token = hasher.match_key_token(&key, &[Some(&forename), Some(&surname), Some(&dob), Some(&sex)]);
    assert_eq!(
        token.map(hex::encode).as_deref(),
        Some("4f01b2803af64e776bfb2235c410d36b520f4ab352110732b96ef9e4449c0c9c")
    );
    let key = MatchKey::parse("soundex_dob", &["soundex(surname)", "dob"], false).expect("valid");
    let token = hasher.match_key_token(&key, &[Some(&surname), Some(&dob)]);
    assert_eq!(
        token.map(hex::encode).as_deref(),
        Some("9f9df8304b1ec62c39651861bb45bae8966db93e26e855220382ecc7d871e585")
    );
    assert_eq!(
        hex::encode(hasher.token("nino", &[&nino])),
        "36f92f7f1f6d4dfb0f511335ff36a2af21d9507d629ff15139973eb7013d45ad"
    );
}

/// HMAC-SHA256 computed directly from a key and one concatenated message.
fn reference_token(key: &[u8], name: &str, components: &[&str]) -> [u8; 32] {
    let mut message = name.as_bytes().to_vec();
    for component in components {
        message.push(0x1F);
        message.extend_from_slice(component.as_bytes());
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(&message);
    mac.finalize().into_bytes().into()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tokens_equal_an_independent_hmac(
        key in proptest::collection::vec(any::<u8>(), 32..=64),
        forename in "[A-Za-zéñ' -]{1,12}",
        surname in "[A-Za-zöß' -]{1,16}",
        dob in "(19[0-9]{2}|20[01][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])",
        nino in "[ABCEGHJ-PRSTW-Z][ABCEGHJ-NPRSTW-Z] ?[0-9]{6} ?[A-D]?",
    ) {
        let st = Standardiser::new(NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date"));
        let hasher = TokenHasher::new(&SecretKey::from_bytes(key.clone()));
        let dob = st.standardise(FieldKind::Dob, &dob).expect("generated dates are valid");
        prop_assert_eq!(
            hasher.token("dob_only", &[&dob]),
            reference_token(&key, "dob_only", &[&dob])
        );
        if let Ok(nino) = st.standardise(FieldKind::Nino, &nino) {
            prop_assert_eq!(hasher.token("nino", &[&nino]), reference_token(&key, "nino", &[&nino]));
        }
        let (Ok(forename), Ok(surname)) = (
            st.standardise(FieldKind::Forename, &forename),
            st.standardise(FieldKind::Name, &surname),
        ) else {
            return Ok(());
        };
        let sdx = Transform::Soundex.apply(&surname);
        let parts = [forename.as_ref(), surname.as_ref(), dob.as_ref(), sdx.as_ref()];
        prop_assert_eq!(
            hasher.token("name_dob", &parts),
            reference_token(&key, "name_dob", &parts)
        );
        prop_assert_eq!(hasher.hmac(b"person/42"), {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
            mac.update(b"person/42");
            <[u8; 32]>::from(mac.finalize().into_bytes())
        });
    }
}
