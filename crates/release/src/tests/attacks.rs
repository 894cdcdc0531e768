//! The published attacks on primary-only suppression (anchors.md), each caught by the audit
//! when fed a bad pattern, and defeated by the suppression.

use super::{audit_pattern, cell, rules, table};
use crate::audit::Failure;
use crate::gate::CellStatus;
use crate::model::Group;
use crate::suppress::{protect, protect_from};

/// Asserts that the final protection of `g` leaves every suppressed cell of the count layer
/// with an exact interval at least one wide.
fn assert_protected(g: &Group, rules: &crate::DisclosureRules, extra: &[usize]) -> Vec<CellStatus> {
    let p = protect_from(g, rules, true, extra).expect("protection converges");
    for (c, a) in p.count_audit.iter().enumerate() {
        if let Some(a) = a {
            assert!(
                a.exact && a.failure.is_none(),
                "cell {} not protected: {a:?}",
                g.cells[c].name
            );
            assert!(a.hi - a.lo >= 1.0, "cell {} pinned: {a:?}", g.cells[c].name);
        }
    }
    p.status
}

#[test]
fn attack_1_single_suppression_in_a_line_is_recovered_from_the_margin() {
    let g = Group::build(vec![table("t", &["a", "b"], &[2, 3], &[20, 3, 30, 25, 40, 35])]);
    let r = rules(10, true);
    let small = cell(&g, 0, &[Some(0), Some(1)]);
    // Primary suppression alone: 20 + x + 30 = 53 gives x = 3.
    let audit = audit_pattern(&g, &r, &[small]);
    let a = audit[small].expect("audited");
    assert_eq!(
        (a.lo.round(), a.hi.round(), a.failure),
        (3.0, 3.0, Some(Failure::BelowThreshold))
    );
    // With the suppression: the cell can take values up to the threshold and beyond.
    let status = assert_protected(&g, &r, &[]);
    assert!(status.iter().filter(|s| s.is_hidden()).count() >= 4);
}

/// Two 2×2 rectangles joined by one cell: every row and column holds at least two suppressed
/// cells, yet the joining cell is the difference of published sums.
#[test]
fn attack_2_two_suppressions_per_line_still_leak() {
    let inner = [
        12, 15, 30, 40, //
        14, 13, 11, 50, //
        30, 40, 16, 17, //
        45, 35, 18, 19,
    ];
    let g = Group::build(vec![table("t", &["a", "b"], &[4, 4], &inner)]);
    let r = rules(10, true);
    let at = |i: usize, j: usize| cell(&g, 0, &[Some(i), Some(j)]);
    let pattern = [
        at(0, 0),
        at(0, 1),
        at(1, 0),
        at(1, 1),
        at(1, 2),
        at(2, 2),
        at(2, 3),
        at(3, 2),
        at(3, 3),
    ];
    // Every line with a suppressed cell has at least two.
    for c in &g.constraints {
        let k = std::iter::once(c.total)
            .chain(c.members.iter().copied())
            .filter(|x| pattern.contains(x))
            .count();
        assert!(k == 0 || k >= 2);
    }
    let audit = audit_pattern(&g, &r, &pattern);
    let bridge = audit[at(1, 2)].expect("audited");
    assert_eq!(
        (bridge.lo.round(), bridge.hi.round(), bridge.failure),
        (11.0, 11.0, Some(Failure::Pinned))
    );
    // The rectangles themselves are fine.
    assert_eq!(audit[at(0, 0)].expect("audited").failure, None);
    // Fed the same pattern, the suppression widens it until nothing is pinned.
    let status = assert_protected(&g, &r, &pattern);
    assert!(status[at(1, 2)].is_hidden());
}

/// 15 = 10 + 3 + x + x: when zeros are published, a suppressed cell is known to be at least 1,
/// so two suppressed cells summing to 2 are both 1.
#[test]
fn attack_3_bounds_pin_cells_known_to_be_non_empty() {
    let g = Group::build(vec![table("t", &["a"], &[4], &[10, 3, 1, 1])]);
    let published_zeros = rules(3, false);
    let (x, y) = (cell(&g, 0, &[Some(2)]), cell(&g, 0, &[Some(3)]));
    let audit = audit_pattern(&g, &published_zeros, &[x, y]);
    let a = audit[x].expect("audited");
    assert_eq!(
        (a.lo.round(), a.hi.round(), a.failure),
        (1.0, 1.0, Some(Failure::BelowThreshold))
    );
    // When zeros are suppressed too, an outsider only learns x in [0, 2]; the two singletons
    // can still subtract themselves (attack 4).
    let audit = audit_pattern(&g, &rules(2, true), &[x, y]);
    let a = audit[x].expect("audited");
    assert_eq!(
        (a.lo.round(), a.hi.round(), a.failure),
        (0.0, 2.0, Some(Failure::Insider(y)))
    );
    // The suppression adds the 3: x + y + z = 5 with each at least 1.
    let status = assert_protected(&g, &published_zeros, &[]);
    assert!(status[cell(&g, 0, &[Some(1)])].is_hidden());
}

/// Two singletons in one line: each knows their own cell holds 1 and subtracts it.
#[test]
fn attack_4_two_singletons_each_subtract_themselves() {
    let g = Group::build(vec![table("t", &["a", "b"], &[2, 3], &[1, 1, 40, 20, 30, 40])]);
    let r = rules(2, true);
    let at = |i: usize, j: usize| cell(&g, 0, &[Some(i), Some(j)]);
    // A rectangle: no line with a single suppression, and the outsider's intervals are [0, 2].
    let pattern = [at(0, 0), at(0, 1), at(1, 0), at(1, 1)];
    let audit = audit_pattern(&g, &r, &pattern);
    let a = audit[at(0, 1)].expect("audited");
    assert_eq!((a.lo.round(), a.hi.round()), (0.0, 2.0));
    assert_eq!(a.failure, Some(Failure::Insider(at(0, 0))));
    let status = assert_protected(&g, &r, &pattern);
    assert!(
        status[at(0, 2)].is_hidden(),
        "a third cell joins the singletons' row"
    );
}

/// A×B and A×C from the same source share the A margin and the grand total.
#[test]
fn attack_5_tables_sharing_a_margin_are_protected_jointly() {
    let ab = table("ab", &["a", "b"], &[2, 2], &[3, 30, 40, 50]);
    // The same persons by a and c: a0 = 33, a1 = 90 persons.
    let ac = table("ac", &["a", "c"], &[2, 2], &[13, 20, 45, 45]);
    let g = Group::build(vec![ab.clone(), ac.clone()]);
    let r = rules(10, true);
    let ab_at = |i: Option<usize>, j: Option<usize>| cell(&g, 0, &[i, j]);
    // Alone, table ab is safe with this pattern: x, x + 30, x + 40 and x + 120 are all free.
    let alone = Group::build(vec![ab]);
    let pattern_alone: Vec<usize> = [[Some(0), Some(0)], [Some(0), None], [None, Some(0)], [None, None]]
        .iter()
        .map(|i| cell(&alone, 0, i))
        .collect();
    assert!(
        audit_pattern(&alone, &r, &pattern_alone)
            .iter()
            .flatten()
            .all(|a| a.failure.is_none())
    );
    // Table ac publishes the a0 margin (33) and the grand total: jointly, x = 33 − 30.
    let joint_pattern = [ab_at(Some(0), Some(0)), ab_at(None, Some(0))];
    let audit = audit_pattern(&g, &r, &joint_pattern);
    let x = audit[ab_at(Some(0), Some(0))].expect("audited");
    assert_eq!(
        (x.lo.round(), x.hi.round(), x.failure),
        (3.0, 3.0, Some(Failure::BelowThreshold))
    );
    // Joint protection: the shared cells have one status, and the joint audit passes.
    let p = protect(&g, &r, true).expect("protected");
    assert!(p.count_audit.iter().flatten().all(|a| a.failure.is_none()));
    assert_eq!(
        cell(&g, 0, &[Some(0), None]),
        cell(&g, 1, &[Some(0), None]),
        "the a0 margin is one cell"
    );
    assert_eq!(
        cell(&g, 0, &[None, None]),
        cell(&g, 1, &[None, None]),
        "the grand total is one cell"
    );
}
