//! Token spec v2 and v3: the test vectors, read from `docs/token-spec-v2.md` and
//! `docs/token-spec-v3.md` themselves (made by the
//! independent script `tests/reference/compare_vectors.py`) and recomputed both by the spec's
//! formula written out with plain HMAC and SipHash and by the crate; and the law of `edit1` sets (section 4)
//! against plain edit-distance functions.

use std::collections::BTreeSet;

use std::hash::Hasher;

use hmac::{Hmac, Mac};
use linklab_tokens::{CompareHasher, CompareToken, FieldKind, SecretKey, Variant};
use proptest::prelude::*;
use sha2::Sha256;
use siphasher::sip::SipHasher24;

const SPEC: &str = include_str!("../../../docs/token-spec-v2.md");
const SPEC_V3: &str = include_str!("../../../docs/token-spec-v3.md");

/// The spec's test key: bytes 0x00 to 0x1f.
fn spec_key() -> SecretKey {
    SecretKey::from_bytes((0_u8..32).collect())
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The spec's formulas, written out with a plain HMAC.
fn subkey() -> [u8; 32] {
    hmac(&(0_u8..32).collect::<Vec<_>>(), b"linklab-compare-subkey-v2")
}

fn formula_token(field: &str, variant: &str, value: &str) -> String {
    // v3: every name field's `cross` token is made under the one field `names`.
    let field = if variant == "cross" { "names" } else { field };
    let message = [
        b"linklab-compare-v2" as &[u8],
        field.as_bytes(),
        variant.as_bytes(),
        value.as_bytes(),
    ]
    .join(&0x1F);
    let key: [u8; 16] = subkey()[..16].try_into().expect("16 bytes");
    let mut sip = SipHasher24::new_with_key(&key);
    sip.write(&message);
    hex::encode(sip.finish().to_le_bytes())
}

/// The text between backticks of each backticked item in a cell, in order.
fn ticked(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// One vector row: field, kind, value, variant, hashed strings, tokens.
struct Row<'a> {
    field: &'a str,
    kind: FieldKind,
    value: &'a str,
    variant: &'a str,
    hashed: Vec<&'a str>,
    tokens: Vec<&'a str>,
}

/// The vector rows of one spec's table.
fn rows(spec: &'static str) -> Vec<Row<'static>> {
    let start = spec
        .find("<!-- vectors:start -->")
        .expect("the vectors' start marker");
    let end = spec
        .find("<!-- vectors:end -->")
        .expect("the vectors' end marker");
    spec[start..end]
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 6, "{line}");
            Row {
                field: ticked(cells[0])[0],
                kind: FieldKind::parse(cells[1]).expect("a kind"),
                value: ticked(cells[2])[0],
                variant: ticked(cells[3])[0],
                hashed: ticked(cells[4]),
                tokens: ticked(cells[5]),
            }
        })
        .collect()
}

#[test]
fn the_subkey_vector() {
    let line = SPEC
        .lines()
        .find(|l| l.starts_with("Subkey: "))
        .expect("the subkey line");
    assert_eq!(ticked(line), [hex::encode(subkey())]);
}

#[test]
fn the_token_vectors() {
    let (v2, v3) = (rows(SPEC), rows(SPEC_V3));
    assert!(v2.len() >= 20, "{} rows", v2.len());
    assert!(
        v3.iter().any(|row| row.variant == "cross"),
        "v3 has cross vectors"
    );
    let rows = v2.into_iter().chain(v3);
    let hasher = CompareHasher::new(&spec_key());
    let mut out: Vec<CompareToken> = Vec::new();
    for row in rows {
        let what = format!("{} {} {}", row.field, row.value, row.variant);
        // The hashed strings give the tokens by the spec's formula.
        let by_formula: Vec<String> = row
            .hashed
            .iter()
            .map(|h| formula_token(row.field, row.variant, h))
            .collect();
        assert_eq!(by_formula, row.tokens, "{what}");
        // The crate derives the same strings' tokens from the standard value.
        let field = hasher.field(row.field, row.kind);
        let slot = field
            .variants()
            .iter()
            .position(|v| v.as_str() == row.variant)
            .unwrap_or_else(|| panic!("{what}: not a variant of its kind"));
        field.tokens_into(slot, row.value, &mut out);
        assert_eq!(
            out.iter().map(hex::encode).collect::<Vec<_>>(),
            row.tokens,
            "{what}"
        );
        // And an edit1 set is the value and its one-deletion strings.
        if row.variant == "edit1" {
            let chars: Vec<char> = row.value.chars().collect();
            let mut expected: BTreeSet<String> = (0..chars.len())
                .map(|i| {
                    chars
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, c)| *c)
                        .collect()
                })
                .collect();
            expected.insert(row.value.to_owned());
            assert_eq!(
                row.hashed
                    .iter()
                    .map(|h| (*h).to_owned())
                    .collect::<BTreeSet<_>>(),
                expected,
                "{what}"
            );
        }
    }
}

#[test]
fn the_column_order_of_each_kind() {
    let labels = |kind| {
        Variant::of_kind(kind)
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
    };
    let names = ["exact", "soundex", "initial", "edit1", "cross"];
    assert_eq!(labels(FieldKind::Name), names);
    assert_eq!(labels(FieldKind::Forename), names);
    assert_eq!(labels(FieldKind::Dob), ["exact", "edit1", "swap", "year"]);
    assert_eq!(labels(FieldKind::Sex), ["exact"]);
    assert_eq!(labels(FieldKind::Nino), ["exact", "edit1"]);
    assert_eq!(labels(FieldKind::Id), ["exact", "edit1"]);
    assert_eq!(labels(FieldKind::Postcode), ["exact", "edit1", "district"]);
    assert_eq!(Variant::Edit1.column_name("surname"), "cmp_surname_edit1");
}

/// Plain dynamic programming: the optimal string alignment distance.
fn osa(a: &[u8], b: &[u8]) -> usize {
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Plain dynamic programming: the Levenshtein distance.
fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            row.push(
                (previous[j + 1] + 1)
                    .min(row[j] + 1)
                    .min(previous[j] + usize::from(x != y)),
            );
        }
        previous = row;
    }
    previous[b.len()]
}

/// Plain dynamic programming: the length of a longest common subsequence.
fn lcs(a: &[u8], b: &[u8]) -> usize {
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            d[i][j] = if a[i - 1] == b[j - 1] {
                d[i - 1][j - 1] + 1
            } else {
                d[i - 1][j].max(d[i][j - 1])
            };
        }
    }
    d[a.len()][b.len()]
}

/// Whether the edit1 token sets of two values of a name field share an item.
fn share(a: &str, b: &str) -> bool {
    let hasher = CompareHasher::new(&spec_key());
    let field = hasher.field("surname", FieldKind::Name);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    field.tokens_into(3, a, &mut x);
    field.tokens_into(3, b, &mut y);
    assert!(x.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    x.iter().any(|t| y.binary_search(t).is_ok())
}

/// Checks laws 1 to 3 of the spec's section 4 for one pair.
fn check_laws(a: &str, b: &str) {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    let shared = share(a, b);
    let distance = osa(x, y);
    // Law 1, the exact law.
    assert_eq!(shared, lcs(x, y) + 1 >= x.len().max(y.len()), "{a} {b}");
    // Law 2.
    if distance <= 1 {
        assert!(shared, "{a} {b}");
    }
    // Law 3.
    if x.len() != y.len() {
        assert_eq!(shared, distance <= 1, "{a} {b}");
    }
    if shared {
        assert!(levenshtein(x, y) <= 2 && distance <= 2, "{a} {b}");
    }
}

#[test]
fn the_law_on_the_spec_s_examples() {
    let check = |a: &str, b: &str, shared: bool, distance: usize| {
        assert_eq!(share(a, b), shared, "{a} {b}");
        assert_eq!(osa(a.as_bytes(), b.as_bytes()), distance, "{a} {b}");
        check_laws(a, b);
    };
    check("SMITH", "SMYTH", true, 1);
    check("SMITH", "SMIHT", true, 1);
    check("SMITH", "SMITHE", true, 1);
    check("SMITH", "MITH", true, 1);
    check("ANNA", "ANA", true, 1);
    // Distance 2, and still sharing an item: a character moved, a shift by one.
    check("ABCD", "BCDA", true, 2);
    check("AB", "BC", true, 2);
    // Distance 2, not sharing.
    check("SMITH", "SMYTHE", false, 2);
    check("ABCD", "BADC", false, 2);
    check("A", "B", true, 1);
}

proptest! {
    /// A small alphabet makes near pairs (and runs of equal letters) common.
    #[test]
    fn edit1_sets_share_an_item_by_the_law(
        a in "[ABC]{1,7}",
        b in "[ABC]{1,7}",
    ) {
        check_laws(&a, &b);
    }

    /// Every one-edit neighbour of a value shares an item with it.
    #[test]
    fn every_single_edit_shares_an_item(
        a in "[A-Z]{2,12}",
        at in 0_usize..12,
        letter in "[A-Z]",
        edit in 0_u8..4,
    ) {
        let at = at % a.len();
        let mut b = a.clone();
        match edit {
            0 => b.insert_str(at, &letter),
            1 => { b.remove(at); }
            2 => b.replace_range(at..=at, &letter),
            _ => if at + 1 < a.len() {
                let (x, y) = (a.as_bytes()[at], a.as_bytes()[at + 1]);
                b.replace_range(at..at + 2, &format!("{}{}", char::from(y), char::from(x)));
            },
        }
        prop_assert!(osa(a.as_bytes(), b.as_bytes()) <= 1);
        if !b.is_empty() {
            prop_assert!(share(&a, &b));
        }
        check_laws(&a, &b);
    }
}
