//! The model's laws on simulated comparisons.

use linklab_tokens::FieldKind;

use super::fields::{CmpData, CompareField};
use super::model::{Background, Counts, MIN_FIT_PAIRS, Model, Pattern, SplitMix, fit_m, fit_per_input};

fn field(name: &str, kind: FieldKind) -> CompareField {
    CompareField {
        name: name.into(),
        kind,
    }
}

/// Draws a level from probabilities.
fn draw(rng: &mut SplitMix, probabilities: &[f64]) -> u8 {
    let x = rng.below(1 << 30) as f64 / f64::from(1 << 30);
    let mut sum = 0.0;
    for (l, p) in probabilities.iter().enumerate() {
        sum += p;
        if x < sum {
            return l as u8;
        }
    }
    (probabilities.len() - 1) as u8
}

/// Simulates `pairs` comparisons from known m, u and λ, keeps those whose first field's level is
/// in `shown` (a bit per level, as a blocking rule on that field would), fits, and checks that m
/// and the share of matches among the kept pairs are within `tolerance` of the truth.
fn check(m: &[Vec<f64>], u: &[Vec<f64>], lambda: f64, shown: u16, pairs: u32, tolerance: f64) {
    let fields = [
        field("nino", FieldKind::Nino),
        field("sex", FieldKind::Sex),
        field("dob", FieldKind::Dob),
    ];
    let (patterns, kept, matches) = simulate(m, u, lambda, (pairs, shown), 7);
    let lambda = f64::from(matches) / f64::from(kept);
    let (fitted, fitted_lambda, iterations, converged) =
        fit_m(&fields, u, &patterns, &[vec![shown, u16::MAX, u16::MAX]], None);
    assert!(converged, "EM converged ({iterations} iterations)");
    assert!(
        (fitted_lambda - lambda).abs() < tolerance,
        "λ {fitted_lambda} vs {lambda}"
    );
    for (f, (got, want)) in fitted.iter().zip(m).enumerate() {
        for (l, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < tolerance, "field {f} level {l}: m {g} vs {w}");
        }
    }
}

/// The u of the simulated fields (`nino`, `sex`, `dob`).
fn known_u() -> Vec<Vec<f64>> {
    vec![
        vec![0.001, 0.002, 0.997],
        vec![0.5, 0.5],
        vec![0.003, 0.01, 0.002, 0.05, 0.935],
    ]
}

#[test]
fn em_recovers_known_m_and_lambda() {
    let m = vec![
        vec![0.80, 0.15, 0.05],
        vec![0.95, 0.05],
        vec![0.70, 0.15, 0.05, 0.05, 0.05],
    ];
    let u = known_u();
    check(&m, &u, 0.3, u16::MAX, 50_000, 0.02);
    check(&m, &u, 0.05, u16::MAX, 100_000, 0.02);
}

#[test]
fn em_recovers_m_of_a_field_a_rule_truncates() {
    // A rule on the first field's edit-1 set never shows its disagreement: m is still recovered.
    let m = vec![
        vec![0.80, 0.15, 0.05],
        vec![0.95, 0.05],
        vec![0.70, 0.15, 0.05, 0.05, 0.05],
    ];
    let u = vec![
        vec![0.02, 0.08, 0.90],
        vec![0.5, 0.5],
        vec![0.003, 0.01, 0.002, 0.05, 0.935],
    ];
    check(&m, &u, 0.2, 0b011, 200_000, 0.02);
}

/// Simulates `pairs` comparisons from known m, u and λ, keeping those whose first field's level
/// is in `shown` (a bit per level): their counts, how many were kept and how many of those match.
fn simulate(
    m: &[Vec<f64>],
    u: &[Vec<f64>],
    lambda: f64,
    (pairs, shown): (u32, u16),
    seed: u64,
) -> (Counts, u32, u32) {
    let mut rng = SplitMix::new(seed);
    let mut patterns = Counts::new();
    let (mut kept, mut matches) = (0_u32, 0_u32);
    for _ in 0..pairs {
        let is_match = (rng.below(1_000_000) as f64) < lambda * 1e6;
        let source = if is_match { m } else { u };
        let p = source.iter().enumerate().fold(0, |acc, (f, probs)| {
            acc | (Pattern::from(draw(&mut rng, probs)) << (4 * f))
        });
        if shown >> (p & 0xF) & 1 == 1 {
            *patterns.entry((0, 1, p)).or_insert(0) += 1;
            kept += 1;
            matches += u32::from(is_match);
        }
    }
    (patterns, kept, matches)
}

/// Fits a model per input on pairs simulated from each input's m (`(m, pairs)`), over one u,
/// and checks each input's fitted m against its own m within `tolerance`, or, for an input with
/// too few pairs, that it takes the pooled model.
fn check_per_input(inputs: &[(Vec<Vec<f64>>, u32)], u: &[Vec<f64>], tolerance: f64) {
    let fields = [
        field("nino", FieldKind::Nino),
        field("sex", FieldKind::Sex),
        field("dob", FieldKind::Dob),
    ];
    let background = Background::from_u(&fields, u.to_vec());
    let per_input: Vec<(Counts, f64)> = inputs
        .iter()
        .zip(1..)
        .map(|((m, pairs), seed)| (simulate(m, u, 0.3, (*pairs, u16::MAX), seed).0, 1e9))
        .collect();
    let all = [vec![u16::MAX; 3]];
    let models = fit_per_input(&background, &per_input, &all);
    for (i, (model, (m, pairs))) in models.iter().zip(inputs).enumerate() {
        if u64::from(*pairs) < MIN_FIT_PAIRS {
            assert!(model.pooled, "input {i} has too few pairs for its own model");
            continue;
        }
        assert!(!model.pooled, "input {i} has its own model");
        for (f, (got, want)) in model.m.iter().zip(m).enumerate() {
            for (l, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() < tolerance,
                    "input {i} field {f} level {l}: m {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn each_extract_gets_the_m_of_its_own_noise() {
    let u = known_u();
    // A clean extract, one with typos in the reference number and the date, and a small one.
    let clean = vec![
        vec![0.95, 0.04, 0.01],
        vec![0.98, 0.02],
        vec![0.90, 0.05, 0.02, 0.02, 0.01],
    ];
    let noisy = vec![
        vec![0.55, 0.35, 0.10],
        vec![0.90, 0.10],
        vec![0.50, 0.30, 0.05, 0.10, 0.05],
    ];
    check_per_input(
        &[(clean.clone(), 60_000), (noisy.clone(), 60_000), (clean, 500)],
        &u,
        0.02,
    );
    check_per_input(&[(noisy, 80_000)], &u, 0.02);
}

#[test]
fn a_fit_whose_matches_do_not_agree_exactly_takes_the_pooled_m_and_keeps_its_own_lambda() {
    let fields = [
        field("nino", FieldKind::Nino),
        field("sex", FieldKind::Sex),
        field("dob", FieldKind::Dob),
    ];
    let u = known_u();
    let clean = vec![
        vec![0.95, 0.04, 0.01],
        vec![0.98, 0.02],
        vec![0.90, 0.05, 0.02, 0.02, 0.01],
    ];
    let background = Background::from_u(&fields, u.clone());
    let all = [vec![u16::MAX; 3]];
    // An extract's pairs, a third of them matches; and a spine's: 200 matches among random
    // pairs and a cluster of 20,000 non-matches that agree on sex and on the date within one
    // edit, more often than u says (as blocking on a forename's soundex and the date's edit-1
    // items makes them).
    let extract = simulate(&clean, &u, 0.3, (200_000, u16::MAX), 1).0;
    let mut spine = simulate(&clean, &u, 0.01, (20_000, u16::MAX), 2).0;
    *spine.entry((0, 1, 2 | 1 << 8)).or_insert(0) += 20_000;
    // The simulated pairs are every pair compared: 200,000 of the extract's, 40,000 of the spine's.
    let own = Model::fit(&background, &spine, &all, 4e4, None);
    assert!(
        !own.exact_is_likeliest(),
        "the spine's own fit is degenerate: {:?}",
        own.m
    );
    let models = fit_per_input(&background, &[(extract, 2e5), (spine, 4e4)], &all);
    assert!(!models[0].own_fit_rejected && !models[0].pooled);
    let spine = &models[1];
    assert!(spine.own_fit_rejected && !spine.pooled);
    assert!(spine.exact_is_likeliest(), "{:?}", spine.m);
    // About 200 matches in 40,000 pairs.
    assert!((spine.lambda - 0.005).abs() < 0.002, "λ {}", spine.lambda);
}

proptest::proptest! {
    #[test]
    fn sorted_sets_intersect_exactly_when_they_share_an_item(
        a in proptest::collection::btree_set(0_u64..64, 0..12),
        b in proptest::collection::btree_set(0_u64..64, 0..12),
    ) {
        let (a, b): (Vec<u64>, Vec<u64>) = (a.into_iter().collect(), b.into_iter().collect());
        proptest::prop_assert_eq!(super::fields::intersect(&a, &b), a.iter().any(|x| b.contains(x)));
    }
}

/// The level letter of comparing two records of one field of `kind`.
fn check_level(kind: FieldKind, left: (&[u64], &[u64]), right: (&[u64], &[u64]), expected: char) {
    let f = field("f", kind);
    let fields = [f.clone()];
    let (a, b) = (
        CmpData::record(&fields, &[left]),
        CmpData::record(&fields, &[right]),
    );
    let level = super::fields::compare(&f, 0, &a, 0, &b, 0);
    let got = if level == super::fields::MISSING_LEVEL {
        '-'
    } else {
        f.levels()[usize::from(level)].code()
    };
    assert_eq!(got, expected, "{kind:?} {left:?} {right:?}");
}

#[test]
fn levels_are_tried_most_specific_first() {
    use FieldKind::{Dob, Name, Postcode, Sex};
    // Name: exact, soundex, initial, cross; then the edit-1 set. A lone name field is never
    // crossed.
    check_level(Name, (&[1, 2, 3, 7], &[10, 11]), (&[1, 2, 3, 7], &[10, 11]), 'E');
    check_level(Name, (&[1, 2, 3, 7], &[10, 11]), (&[4, 5, 3, 8], &[11, 12]), '1');
    check_level(Name, (&[1, 2, 3, 7], &[10, 11]), (&[4, 2, 3, 8], &[12]), 'P');
    check_level(Name, (&[1, 2, 3, 7], &[10, 11]), (&[4, 5, 3, 8], &[12]), 'I');
    check_level(Name, (&[1, 2, 3, 7], &[10, 11]), (&[4, 5, 6, 8], &[12]), 'X');
    check_level(Name, (&[0, 0, 0, 0], &[]), (&[4, 5, 6, 8], &[12]), '-');
    // Dob: exact, swap, year.
    check_level(Dob, (&[1, 2, 3], &[10]), (&[4, 2, 3], &[11]), 'S');
    check_level(Dob, (&[1, 2, 3], &[10]), (&[4, 5, 3], &[11]), 'Y');
    // Postcode: exact, district; sex: exact only.
    check_level(Postcode, (&[1, 2], &[10]), (&[4, 2], &[11]), 'D');
    check_level(Sex, (&[1], &[]), (&[2], &[]), 'X');
    check_level(Sex, (&[1], &[]), (&[0], &[]), '-');
}

/// The level letters of comparing two records' forename and surname, each record given as
/// (forename, surname) values.
fn check_names(left: (u64, u64), right: (u64, u64), expected: &str) {
    let fields = [
        field("forename", FieldKind::Forename),
        field("surname", FieldKind::Name),
    ];
    // A value's tokens: exact and cross differ (different fields), soundex and initial are
    // the value's, the edit-1 set is the value alone; a surname's exact token differs from a
    // forename's of the same value, its cross token does not.
    let tokens = |value: u64, f: u64| {
        (
            [value * 100 + f, value * 10, value * 10 + 1, value],
            [value * 1000],
        )
    };
    let record = |(forename, surname): (u64, u64)| {
        let (a, b) = (tokens(forename, 1), tokens(surname, 2));
        CmpData::record(&fields, &[(&a.0, &a.1), (&b.0, &b.1)])
    };
    let (a, b) = (record(left), record(right));
    let got: String = fields
        .iter()
        .enumerate()
        .map(|(f, field)| field.levels()[usize::from(super::fields::compare(field, f, &a, 0, &b, 0))].code())
        .collect();
    assert_eq!(got, expected, "{left:?} {right:?}");
}

#[test]
fn a_forename_and_surname_written_the_other_way_round_are_crossed() {
    check_names((1, 2), (1, 2), "EE");
    check_names((1, 2), (2, 1), "TT");
    check_names((1, 2), (1, 1), "EX");
    // Only a full transposition: one name equal to the other's other name is not.
    check_names((1, 2), (2, 3), "XX");
    check_names((1, 2), (3, 1), "XX");
    check_names((1, 2), (3, 4), "XX");
}

proptest::proptest! {
    #[test]
    fn the_directory_finds_the_first_entry_not_below_the_key_and_the_filter_every_block(
        keys in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..300),
        repeat in 0_usize..300,
        key in proptest::prelude::any::<u64>(),
        probe in 0_usize..300,
        cap in 0_usize..3,
    ) {
        let mut entries: Vec<(u64, u32, u32)> = keys.iter().map(|&k| (k, 0, 0)).collect();
        // Repeated keys, and a key that is there.
        entries.extend(keys.get(repeat).map(|&k| (k, 1, 0)));
        entries.sort_unstable();
        let key = keys.get(probe).copied().unwrap_or(key);
        let expected = entries.partition_point(|(k, _, _)| *k < key);
        let block: Vec<(u64, u32, u32)> = entries.iter().copied().filter(|e| e.0 == key).collect();
        let index = super::blocking::Keys::new(entries);
        proptest::prop_assert_eq!(index.lower_bound(key), expected);
        let expected = (block.len() <= cap).then_some(&block[..]);
        proptest::prop_assert_eq!(index.block(key, cap), expected);
    }

    #[test]
    fn pairs_placed_by_their_left_record_are_sorted(
        pairs in proptest::collection::vec((0_u32..40, 0_u32..6, 0_u8..4), 0..400),
    ) {
        let first = 1000;
        let pairs: Vec<super::blocking::Pair> = pairs
            .into_iter()
            .map(|(left, right, rule)| super::blocking::Pair {
                left: first + left,
                right,
                rule,
                rules: 1 << rule,
            })
            .collect();
        let mut expected = pairs.clone();
        expected.sort_unstable();
        // In parts, as the rules find them.
        let parts = pairs.chunks(7).map(<[_]>::to_vec).collect();
        proptest::prop_assert_eq!(super::blocking::sort_by_left(parts, first, 40), expected);
    }

    #[test]
    fn keys_sorted_by_radix_are_sorted(keys in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..20_000)) {
        let keys: Vec<(u64, u32)> = (0_u32..).zip(keys).map(|(r, k)| (k, r)).collect();
        let mut expected = keys.clone();
        expected.sort_unstable();
        let mut sorted = super::blocking::sort_by_key(keys);
        proptest::prop_assert!(sorted.windows(2).all(|w| w[0].0 <= w[1].0));
        // And the same keys.
        sorted.sort_unstable();
        proptest::prop_assert_eq!(&sorted, &expected);
    }
}

/// The share of records 0..n that `Sample { input, every }` holds.
fn check_sample(input: u64, every: u64, n: u32, low: f64, high: f64) {
    let sample = super::blocking::Sample { input, every };
    let held = (0..n).filter(|&r| sample.holds(r)).count() as f64 / f64::from(n);
    assert!((low..=high).contains(&held), "{input} {every}: {held}");
}

#[test]
fn a_sample_holds_about_one_record_in_every() {
    check_sample(0, 1, 1000, 1.0, 1.0);
    check_sample(0, 4, 100_000, 0.24, 0.26);
    check_sample(3, 22, 100_000, 0.040, 0.051);
    // Different inputs hold different records.
    let (a, b) = (
        super::blocking::Sample { input: 0, every: 4 },
        super::blocking::Sample { input: 1, every: 4 },
    );
    assert!((0..1000).any(|r| a.holds(r) != b.holds(r)));
}

/// The blocking rules made for `fields` and the match keys `a`, `b`: each one's name and the
/// passes it serves (`F` fit, `S` score, `FS` both).
fn check_rules(fields: &[(&str, FieldKind)], expected: &[(&str, &str)]) {
    use super::blocking::{Pass, rules};
    let fields: Vec<CompareField> = fields.iter().map(|&(n, k)| field(n, k)).collect();
    let rules = rules(&["a".to_owned(), "b".to_owned()], &fields);
    let found: Vec<(&str, String)> = rules
        .iter()
        .map(|r| {
            let passes = [(Pass::Fit, "F"), (Pass::Score, "S")]
                .iter()
                .filter(|(p, _)| r.in_pass(*p))
                .map(|(_, code)| *code)
                .collect();
            (r.name.as_str(), passes)
        })
        .collect();
    let expected: Vec<(&str, String)> = expected.iter().map(|&(n, p)| (n, p.to_owned())).collect();
    assert_eq!(found, expected);
}

#[test]
fn em_sees_the_wide_date_rules_and_the_decisions_the_tight_ones() {
    use FieldKind::{Dob, Forename, Name, Nino, Postcode, Sex};
    check_rules(
        &[
            ("forename", Forename),
            ("surname", Name),
            ("dob", Dob),
            ("sex", Sex),
            ("nino", Nino),
        ],
        &[
            ("a", "FS"),
            ("b", "FS"),
            ("nino_edit1", "FS"),
            ("dob_edit1+forename_soundex", "F"),
            ("dob_edit1+surname_soundex", "F"),
            ("dob_swap+forename_soundex", "S"),
            ("dob_swap+surname_soundex", "S"),
            ("dob_edit1+forename_soundex+surname_soundex", "S"),
            ("forename+surname_either_order+dob_swap", "FS"),
            ("forename_exact+surname_exact", "FS"),
        ],
    );
    // With one name field, its edit-1 date rule serves both passes.
    check_rules(
        &[("surname", Name), ("dob", Dob), ("postcode", Postcode)],
        &[
            ("a", "FS"),
            ("b", "FS"),
            ("dob_edit1+surname_soundex", "FS"),
            ("dob_swap+surname_soundex", "S"),
            ("postcode_exact+dob_year", "FS"),
        ],
    );
    // Without a name field there is no date rule.
    check_rules(&[("dob", Dob), ("sex", Sex)], &[("a", "FS"), ("b", "FS")]);
}

fn check_record(best: f64, others: &[f64], unmatched: f64, expected: f64) {
    let got = super::decide::record_probability(best, others.iter().copied(), unmatched);
    assert!(
        (got - expected).abs() < 1e-12,
        "weight {best} against {others:?}, unmatched {unmatched}: {got}, expected {expected}"
    );
}

#[test]
fn a_records_probability_weighs_its_candidates_against_each_other_and_the_spine() {
    use super::model::probability;
    // Alone, and with a person's chance of being off the spine at one: the pair's probability.
    check_record(0.0, &[], 1.0, 0.5);
    check_record(4.0, &[], 1.0, probability(4.0));
    // A second person as strong halves the odds against the first.
    check_record(4.0, &[4.0], 1.0, 16.0 / 33.0);
    check_record(
        4.0,
        &[0.0, -10.0],
        1.0,
        16.0 / (1.0 + 16.0 + 1.0 + 2f64.powi(-10)),
    );
    // When most records have a person on the spine, the same evidence counts for more.
    check_record(4.0, &[], 0.2, 16.0 / 16.2);
    // π = prior × persons, kept within [0, 1]; 5% of the records on the spine are taken to be
    // missed by blocking.
    let unmatched = super::decide::unmatched_odds;
    for (prior, persons, expected) in [(1e-5, 50_000, 0.525), (0.0, 50_000, 1.0), (1e-3, 50_000, 0.05)] {
        assert!(
            (unmatched(prior, persons) - expected).abs() < 1e-12,
            "prior {prior}, {persons} persons"
        );
    }
}

/// A level pattern from one level per field (field 0 first).
fn levels(of: &[u8]) -> super::model::Pattern {
    of.iter()
        .enumerate()
        .map(|(f, &level)| super::model::Pattern::from(level) << (4 * f))
        .sum()
}

fn check_own_bits(a: &[u8], b: &[u8], expected: (f64, f64)) {
    // NI number, surname, date of birth: exact, edit-1, disagree.
    let weights = [[18.0, 7.0, -3.0], [10.0, 6.0, -6.0], [13.0, 0.0, -13.0]];
    let own = |x: &[u8], y: &[u8]| {
        super::decide::own_bits_of(3, |f, level| weights[f][level], levels(x), levels(y))
    };
    assert_eq!((own(a, b), own(b, a)), expected, "{a:?} against {b:?}");
}

#[test]
fn a_bridge_needs_each_person_to_agree_with_the_record_where_the_other_does_not() {
    let missing = super::fields::MISSING_LEVEL;
    // A NI number shared with one and a new surname with the other: a bridge.
    check_own_bits(&[0, 2, 0], &[missing, 0, 0], (18.0, 16.0));
    // The same fields agree with both (twins, a forename's initial): no evidence either way.
    check_own_bits(&[missing, 0, 0], &[missing, 0, 0], (0.0, 0.0));
    // One is better everywhere: only it has weight of its own.
    check_own_bits(&[0, 0, 0], &[2, 1, 0], (25.0, 0.0));
}

#[test]
fn a_match_keys_components_restrict_the_levels_its_pairs_can_show() {
    use FieldKind::{Dob, Forename, Name, Nino, Sex};
    let fields: Vec<CompareField> = [
        ("forename", Forename),
        ("surname", Name),
        ("dob", Dob),
        ("sex", Sex),
        ("nino", Nino),
    ]
    .iter()
    .map(|&(n, k)| field(n, k))
    .collect();
    let rules = super::blocking::rules(&["a".to_owned(), "b".to_owned()], &fields);
    let check = |components: &[&str], expected: [u16; 5]| {
        let keys = vec![components.iter().map(|&c| c.to_owned()).collect(), Vec::new()];
        assert_eq!(
            rules[0].allowed_levels(&fields, &keys),
            expected,
            "{components:?}"
        );
    };
    // Forename and surname: E 1 T P I X; dob: E 1 S Y X; sex: E X; nino: E 1 X.
    check(&["nino"], [0b11_1111, 0b11_1111, 0b1_1111, 0b11, 0b001]);
    check(
        &["soundex(surname)", "initial(forename)", "dob"],
        [0b1_1111, 0b1111, 0b1, 0b11, 0b111],
    );
    check(&["year(dob)", "sex"], [0b11_1111, 0b11_1111, 0b1111, 0b01, 0b111]);
    // A transform the field has no variant for, a field not compared, or a component that
    // does not parse restricts nothing; nor does a key the manifest does not list.
    check(
        &["year(surname)", "postcode", "soundex("],
        [0b11_1111, 0b11_1111, 0b1_1111, 0b11, 0b111],
    );
    assert_eq!(
        rules[1].allowed_levels(&fields, &[]),
        vec![0b11_1111, 0b11_1111, 0b1_1111, 0b11, 0b111]
    );
}

/// Simulates `pairs` random pairs of `nino`, `sex`, `dob` and `surname` from `m` and `u`, a share
/// `lambda` of them matches, and counts those the three rules of [`training_allowed`] find,
/// each under its first rule with a bit per rule: the counts and the matches among them.
fn simulate_rules(m: &[Vec<f64>], u: &[Vec<f64>], lambda: f64, pairs: u32) -> (Counts, u32) {
    let mut rng = SplitMix::new(11);
    let mut counts = Counts::new();
    let mut matches = 0;
    for _ in 0..pairs {
        let is_match = (rng.below(1_000_000) as f64) < lambda * 1e6;
        let source = if is_match { m } else { u };
        let levels: Vec<u8> = source.iter().map(|probs| draw(&mut rng, probs)).collect();
        let found = [
            levels[0] == 0,
            levels[3] == 0 && levels[2] == 0 && levels[1] == 0,
            levels[2] <= 1,
        ];
        let bits = (0..3).filter(|&r| found[r]).fold(0_u16, |bits, r| bits | 1 << r);
        if bits != 0 {
            let p = levels
                .iter()
                .enumerate()
                .fold(0, |acc, (f, &l)| acc | (Pattern::from(l) << (4 * f)));
            *counts.entry((bits.trailing_zeros() as u8, bits, p)).or_insert(0) += 1;
            matches += u32::from(is_match);
        }
    }
    (counts, matches)
}

/// The levels each rule of [`simulate_rules`] can show: a match key on `nino`; one on
/// `surname`, `dob` and `sex`; the date within one edit.
fn training_allowed() -> Vec<Vec<u16>> {
    let all = u16::MAX;
    vec![
        vec![0b1, all, all, all],
        vec![all, 0b1, 0b1, 0b1],
        vec![all, all, 0b11, all],
    ]
}

#[test]
fn m_is_trained_rule_by_rule_and_the_prior_is_the_one_the_scores_imply() {
    let fields = [
        field("nino", FieldKind::Nino),
        field("sex", FieldKind::Sex),
        field("dob", FieldKind::Dob),
        field("surname", FieldKind::Name),
    ];
    let m = vec![
        vec![0.93, 0.02, 0.05],
        vec![0.98, 0.02],
        vec![0.90, 0.05, 0.02, 0.01, 0.02],
        vec![0.88, 0.05, 0.0, 0.02, 0.01, 0.04],
    ];
    // Common surnames and dates, so that many pairs agree on surname, date and sex by chance:
    // as many as the matches that do (as at 10,000,000 records against 1,000,000).
    let u = vec![
        vec![0.000_01, 0.000_1, 0.999_89],
        vec![0.5, 0.5],
        vec![0.02, 0.03, 0.001, 0.1, 0.849],
        vec![0.05, 0.01, 0.0, 0.02, 0.07, 0.85],
    ];
    let pairs = 1_000_000;
    let (counts, matches) = simulate_rules(&m, &u, 0.000_5, pairs);
    let background = Background::from_u(&fields, u.clone());
    let models = fit_per_input(&background, &[(counts, f64::from(pairs))], &training_allowed());
    let model = &models[0];
    assert!(!model.own_fit_rejected && !model.pooled);
    for (f, (got, want)) in model.m.iter().zip(&m).enumerate() {
        for (l, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 0.03, "field {f} level {l}: m {g} vs {w}");
        }
    }
    let truth = f64::from(matches) / f64::from(pairs);
    assert!(
        (model.prior / truth - 1.0).abs() < 0.1,
        "prior {} vs {truth}",
        model.prior
    );
}

/// A record of forename, surname, dob, sex and nino drawn from small pools, so that a name's
/// block holds several spine records: tokens are small numbers, and two dates `d` and `d ^ 1`
/// share an edit-1 item (one edit apart).
fn pooled_record(fields: &[CompareField], rng: &mut SplitMix) -> CmpData {
    let name = |v: u64| vec![v, v / 3 + 1_000, v / 10 + 2_000, v + 5_000];
    let (forename, surname) = (name(1 + rng.below(20)), name(100 + rng.below(30)));
    let d = rng.below(400);
    let (dob, dob_set) = if rng.below(20) == 0 {
        (vec![0, 0, 0], vec![])
    } else {
        (
            vec![10_000 + d, 20_000 + d, 30_000 + d / 20],
            vec![40_000 + d, 50_000 + d / 2],
        )
    };
    let sex = vec![60_000 + rng.below(2)];
    let n = rng.below(5_000);
    let (nino, nino_set) = if rng.below(2) == 0 {
        (vec![0], vec![])
    } else {
        (vec![70_000 + n], vec![80_000 + n, 90_000 + n / 2])
    };
    CmpData::record(
        fields,
        &[
            (&forename, &[]),
            (&surname, &[]),
            (&dob, &dob_set),
            (&sex, &[]),
            (&nino, &nino_set),
        ],
    )
}

/// Skipping the pairs whose bound is below the floor keeps exactly the pairs that scoring every
/// pair and dropping those below it keeps, at every floor (docs/linkage.md "Blocking").
#[test]
fn skipping_unreachable_pairs_keeps_what_dropping_them_after_scoring_keeps() {
    use super::blocking::{Pass, Sample, SpineIndex, rules};
    use super::prune::{Bound, Prune};
    use FieldKind::{Dob, Forename, Name, Nino, Sex};
    let fields = [
        field("forename", Forename),
        field("surname", Name),
        field("dob", Dob),
        field("sex", Sex),
        field("nino", Nino),
    ];
    let mut rng = SplitMix::new(7);
    let mut data = |n: usize| {
        let mut all = CmpData::new(&fields, 0);
        for _ in 0..n {
            all.push_record(&pooled_record(&fields, &mut rng), 0);
        }
        all
    };
    let (spine, chunk) = (data(2_000), data(1_000));
    let rules = rules(&[], &fields);
    let bounds = Bound::of_rules(&rules, Pass::Score, &fields, &[]);
    assert_eq!(bounds.len(), 1, "the names' exact rule is bounded");
    let index = SpineIndex::new(&rules, Pass::Score, &spine, &bounds);
    let every = index.pairs(&chunk, 0..chunk.records, 0, false, Sample::ALL, None);
    let mut counts = Counts::new();
    for pair in &every {
        let p = super::model::pattern(&fields, &chunk, pair.left as usize, &spine, pair.right as usize);
        *counts.entry((pair.rule, pair.rules, p)).or_insert(0) += 1;
    }
    let allowed: Vec<Vec<u16>> = rules.iter().map(|r| r.allowed_levels(&fields, &[])).collect();
    let model = Model::fit(
        &Background::estimate(&fields, &spine),
        &counts,
        &allowed,
        2e6,
        None,
    );
    let mut skipped_some = false;
    for threshold in [0.5, 0.95, 0.999_999, 1.0 - 1e-12] {
        let prune = Prune::new(&model, &bounds, (threshold, 1.0), spine.records);
        let kept = |pairs: &[super::blocking::Pair]| -> Vec<(u32, u32, u8)> {
            pairs
                .iter()
                .filter(|p| {
                    let (_, w) = model.score(&chunk, p.left as usize, &spine, p.right as usize);
                    !prune.dropped(p, w)
                })
                .map(|p| (p.left, p.right, p.rule))
                .collect()
        };
        let skipping = index.pairs(&chunk, 0..chunk.records, 0, false, Sample::ALL, Some(&prune));
        assert_eq!(kept(&skipping), kept(&every), "threshold {threshold}");
        skipped_some |= skipping.len() < every.len();
    }
    assert!(skipped_some, "some pair was skipped");
}

/// An edit-1 set as the spec stores it (sorted by its items' bytes, no repeats) is taken as it
/// is; one in another order or with repeats is sorted and its repeats dropped; either way the
/// items order as their bytes do.
#[test]
fn edit1_sets_are_read_sorted_and_without_repeats() {
    use arrow::array::{FixedSizeBinaryBuilder, ListBuilder};
    let item = |b: u8| [b, 0, 0, 0, 0, 0, 0, 1];
    let rows: [&[[u8; 8]]; 4] = [
        &[item(1), item(2), item(200)],
        &[item(200), item(1), item(2), item(1)],
        &[item(7)],
        &[],
    ];
    let mut builder = ListBuilder::new(FixedSizeBinaryBuilder::new(8));
    for row in rows {
        for bytes in row {
            builder.values().append_value(bytes).expect("8 bytes");
        }
        builder.append(true);
    }
    let list = builder.finish();
    let items = arrow::array::AsArray::as_fixed_size_binary(list.values().as_ref());
    let read: Vec<Vec<u64>> = (0..rows.len())
        .map(|row| {
            let mut out = vec![42];
            super::fields::push_set(&mut out, (&list, items), row);
            out.split_off(1)
        })
        .collect();
    let number = |b: u8| u64::from_be_bytes(item(b));
    let sorted = vec![number(1), number(2), number(200)];
    assert!(sorted.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(read, [sorted.clone(), sorted, vec![number(7)], vec![]]);
}
