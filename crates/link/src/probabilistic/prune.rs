//! Skipping the pairs that cannot link (docs/linkage.md "Blocking").
//!
//! The last rule, the first two name fields agreeing exactly, is there for a record with a
//! wrong date and no reference number. At scale most of its pairs are namesakes: a common
//! name's block holds dozens of spine records, and agreement on it weighs too little to link
//! without the date or the reference number. Yet those pairs were most of the pairs scored.
//!
//! A pair that the rule finds first is one that no earlier rule found, and an earlier rule
//! whose every block was searched for the record ([`Found::Whole`]) tells which levels the
//! pair cannot show: not found by `dob_edit1+forename_soundex+surname_soundex` with both
//! names exact means the dates are neither equal nor one edit apart. The spine's index keeps
//! beside each key of the rule which of the record's other fields it holds and a 24-bit
//! fingerprint of its `year` token ([`Bound::aux`]), so a pair's bound is known without
//! reading the spine record: the prior, the fixed fields' exact weights (the block's token
//! frequency), and for each other field the best level the earlier rules leave (nothing where
//! either record lacks it; not `year` where the fingerprints differ). A pair whose bound is
//! more than [`UNREACHABLE_BITS`] below the least weight that could link or make a record
//! ambiguous ([`Prune::new`]) is not scored; a pair of the rule that is scored and weighs less
//! than that is dropped too ([`Prune::dropped`]), so that a Spark job's pairs, all found, are
//! decided alike. A dropped pair would have added at most 2^-11 of the best candidate's odds
//! to a record's alternatives, and a record with a candidate that can link keeps its decision.

use linklab_tokens::Component;

use super::blocking::{Found, Pair, Part, Pass, Rule};
use super::decide::AMBIGUITY_BITS;
use super::fields::{CmpData, CompareField, MISSING_TOKEN};
use super::model::Model;

/// A pair is not scored when it is at least this many bits below the least weight that could
/// link a record or make it ambiguous.
pub(crate) const UNREACHABLE_BITS: f64 = 10.0;

/// What bounds the weight of a pair found first by a rule that joins on exact tokens only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bound {
    /// The rule's number.
    pub rule: u8,
    /// The fields it joins on exactly.
    fixed: Vec<usize>,
    /// The other fields, in order; the first [`PRESENCE_BITS`] have a bit in [`Bound::aux`].
    free: Vec<usize>,
    /// Earlier rules whose parts, given the fixed fields, constrain one other field: (rule
    /// number, field, the levels a pair that the rule did not find cannot show, a bit each).
    evidence: Vec<(u8, usize, u16)>,
    /// A free field and its coarser variant whose level the earlier rules leave possible (the
    /// date's `year`): its tokens' fingerprints are compared before a pair is scored.
    coarse: Option<(usize, usize)>,
}

/// The free fields whose presence [`Bound::aux`] records.
const PRESENCE_BITS: usize = 8;
/// The bits of the coarse variant's fingerprint in [`Bound::aux`].
const FINGERPRINT: u32 = (1 << 24) - 1;

/// The fingerprint of a token (0 for a missing one).
fn fingerprint(token: u64) -> u32 {
    if token == MISSING_TOKEN {
        0
    } else {
        ((token as u32) & FINGERPRINT).max(1)
    }
}

impl Bound {
    /// The bounds of the rules of `rules` that join on exact tokens only (the last rule of
    /// [`super::blocking::rules`]), from the earlier rules of `pass`. `key_components` are the
    /// match keys' components, per key, as written.
    pub(crate) fn of_rules(
        rules: &[Rule],
        pass: Pass,
        fields: &[CompareField],
        key_components: &[Vec<String>],
    ) -> Vec<Bound> {
        (0_u8..)
            .zip(rules)
            .filter_map(|(i, rule)| {
                let fixed: Vec<usize> = rule
                    .parts
                    .iter()
                    .map(|part| match *part {
                        Part::Scalar(f, 0) => Some(f),
                        _ => None,
                    })
                    .collect::<Option<_>>()?;
                let evidence: Vec<(u8, usize, u16)> = (0_u8..)
                    .zip(&rules[..usize::from(i)])
                    .filter(|(_, earlier)| earlier.in_pass(pass))
                    .filter_map(|(j, earlier)| {
                        let (f, levels) = constrained(earlier, &fixed, fields, key_components)?;
                        Some((j, f, levels))
                    })
                    .collect();
                let free: Vec<usize> = (0..fields.len()).filter(|f| !fixed.contains(f)).collect();
                let coarse = coarse_variant(&free, &evidence, fields);
                (!fixed.is_empty()).then_some(Bound {
                    rule: i,
                    fixed,
                    free,
                    evidence,
                    coarse,
                })
            })
            .collect()
    }

    /// What the index keeps beside spine record `y`'s key: a bit for each of the first
    /// [`PRESENCE_BITS`] free fields it holds (from bit 24), and the fingerprint of its coarse
    /// variant's token.
    pub(crate) fn aux(&self, spine: &CmpData, y: usize) -> u32 {
        let present = (0_u32..)
            .zip(self.free.iter().take(PRESENCE_BITS))
            .filter(|&(_, &f)| spine.scalar(f, y, 0) != MISSING_TOKEN)
            .fold(0, |bits, (j, _)| bits | (1 << (24 + j)));
        let coarse = self.coarse.map_or(0, |(f, v)| fingerprint(spine.scalar(f, y, v)));
        present | coarse
    }
}

/// The first free field with a coarser scalar variant whose level the evidence (all of it)
/// leaves possible, and that variant (the date's `year` beside the rules on its `edit1` set
/// and `swap` form).
fn coarse_variant(
    free: &[usize],
    evidence: &[(u8, usize, u16)],
    fields: &[CompareField],
) -> Option<(usize, usize)> {
    free.iter().find_map(|&f| {
        let ruled_out = evidence.iter().filter(|e| e.1 == f).fold(0, |bits, e| bits | e.2);
        let variants = fields[f].scalar_variants().count();
        (1..variants)
            .rev()
            .find(|&v| ruled_out & (1 << fields[f].scalar_level(v)) == 0)
            .map(|v| (f, v))
    })
}

/// The one field other than `fixed` that `rule` joins on, with the levels a pair agreeing
/// exactly on `fixed` cannot show if `rule` did not find it (a bit each); `None` when the rule
/// joins on no other field or on two, or on something the levels do not tell.
fn constrained(
    rule: &Rule,
    fixed: &[usize],
    fields: &[CompareField],
    key_components: &[Vec<String>],
) -> Option<(usize, u16)> {
    // Each part gives the levels that, shown by a pair, mean the pair agrees on its token.
    let mut found: Option<(usize, u16)> = None;
    let mut add = |f: usize, levels: u16| -> Option<()> {
        if fixed.contains(&f) {
            // Exact agreement on a field agrees on each of its tokens.
            return Some(());
        }
        match &mut found {
            None => found = Some((f, levels)),
            // Every part on the field must hold: a level rules the pair out only if it
            // means each of them holds.
            Some((g, have)) if *g == f => *have &= levels,
            Some(_) => return None,
        }
        Some(())
    };
    for part in &rule.parts {
        match *part {
            Part::Scalar(f, v) => add(f, fields[f].levels_agreeing_on(v))?,
            // Exact, or one edit apart: they share an item.
            Part::Edit1(f) => add(f, 0b11)?,
            Part::EitherOrder([(a, _), (b, _)]) => {
                if !(fixed.contains(&a) && fixed.contains(&b)) {
                    return None;
                }
            }
            Part::Key(k) => {
                for component in key_components.get(k)? {
                    let component = Component::parse(component).ok()?;
                    let f = fields.iter().position(|f| f.name == component.field)?;
                    let variant = component.transform.name().unwrap_or("exact");
                    // Exact agreement agrees on every transform; a comparison variant's own
                    // level agrees on it.
                    let levels = fields[f]
                        .scalar_index(variant)
                        .map_or(1, |v| fields[f].levels_agreeing_on(v));
                    add(f, levels)?;
                }
            }
        }
    }
    found
}

/// What bounds the pairs of one record ([`Prune::reach`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach {
    /// Per free field with a presence bit, the best weight left when both records hold it (0
    /// when the record lacks it).
    free: [f64; PRESENCE_BITS],
    /// The prior, and the best weights (or nothing) of the free fields without a presence bit.
    rest: f64,
    /// The coarse field's place among the free fields, the record's fingerprint of it, and the
    /// best weight left when the fingerprints differ.
    coarse: Option<(usize, u32, f64)>,
}

/// The bounds of one pass over one input's records: its model and the least weight that
/// matters.
pub(crate) struct Prune<'a> {
    model: &'a Model,
    bounds: &'a [Bound],
    /// A pair of a bounded rule weighing less than this is not a candidate.
    floor: f64,
    /// Per field, the most that exact agreement weighs over the spine's tokens.
    best_exact: Vec<f64>,
    /// Per field, its number of levels (not counted again for each record).
    levels: Vec<usize>,
}

impl<'a> Prune<'a> {
    /// The bounds of `bounds` under `model` for records of an input whose pairs link at a
    /// record-level probability of `threshold` with `unmatched` ([`super::decide::unmatched_odds`]),
    /// over `spine_records` records of the model's spine.
    pub(crate) fn new(
        model: &'a Model,
        bounds: &'a [Bound],
        (threshold, unmatched): (f64, f64),
        spine_records: usize,
    ) -> Self {
        // A record's best candidate links alone at weight log2(unmatched · t / (1 − t)).
        let link = (unmatched * threshold / (1.0 - threshold)).log2();
        let best_exact = (0..model.fields.len())
            .map(|f| {
                (0..spine_records)
                    .map(|b| model.exact_weight(f, b))
                    .fold(f64::NEG_INFINITY, f64::max)
            })
            .collect();
        Self {
            model,
            bounds,
            floor: link - AMBIGUITY_BITS - UNREACHABLE_BITS,
            best_exact,
            levels: model.fields.iter().map(|f| f.levels().len()).collect(),
        }
    }

    /// The bound of rule `rule`, if it has one.
    pub(crate) fn bound(&self, rule: u8) -> Option<&Bound> {
        self.bounds.iter().find(|b| b.rule == rule)
    }

    /// What bounds the pairs of record `r` of `data` that `bound`'s rule finds first, from what
    /// the earlier rules found for it (`found(rule)`).
    pub(crate) fn reach(
        &self,
        bound: &Bound,
        data: &CmpData,
        r: usize,
        found: impl Fn(u8) -> Found,
    ) -> Reach {
        let model = self.model;
        let mut reach = Reach {
            free: [0.0; PRESENCE_BITS],
            rest: model.prior_weight(),
            coarse: None,
        };
        for (j, &f) in bound.free.iter().enumerate() {
            if data.scalar(f, r, 0) == MISSING_TOKEN {
                // The level is missing: it weighs nothing.
                continue;
            }
            let levels = self.levels[f];
            let mut possible: u16 = (1 << levels) - 1;
            for &(rule, g, ruled_out) in &bound.evidence {
                if g == f && found(rule) == Found::Whole {
                    possible &= !ruled_out;
                }
            }
            let best = |possible: u16| {
                (0..levels)
                    .filter(|l| possible & (1 << l) != 0)
                    .map(|l| {
                        if l == 0 {
                            self.best_exact[f]
                        } else {
                            model.level_weight(f, l)
                        }
                    })
                    .fold(f64::NEG_INFINITY, f64::max)
            };
            if j < PRESENCE_BITS {
                reach.free[j] = best(possible);
            } else {
                // No presence bit: the spine record may lack it.
                reach.rest += best(possible).max(0.0);
            }
            if let Some((c, v)) = bound.coarse
                && c == f
                && j < PRESENCE_BITS
            {
                let token = fingerprint(data.scalar(f, r, v));
                if token != 0 {
                    // Different tokens of the variant: neither its level nor exact agreement.
                    let other = possible & !model.fields[f].levels_agreeing_on(v);
                    reach.coarse = Some((j, token, best(other)));
                }
            }
        }
        reach
    }

    /// The weight of the fixed fields' exact agreement with spine record `right`'s tokens.
    pub(crate) fn fixed_weight(&self, bound: &Bound, right: u32) -> f64 {
        bound
            .fixed
            .iter()
            .map(|&f| self.model.exact_weight(f, right as usize))
            .sum()
    }

    /// Whether a pair of `bound`'s rule of a record of [`Reach`] `reach`, whose spine record's
    /// fixed fields weigh `fixed` and whose index entry keeps `aux`, cannot link.
    pub(crate) fn unreachable(&self, bound: &Bound, reach: &Reach, fixed: f64, aux: u32) -> bool {
        let mut most = reach.rest + fixed;
        for j in 0..bound.free.len().min(PRESENCE_BITS) {
            if aux & (1 << (24 + j)) == 0 {
                continue;
            }
            most += match reach.coarse {
                Some((c, token, other)) if c == j && aux & FINGERPRINT != token => other,
                _ => reach.free[j],
            };
        }
        most < self.floor
    }

    /// Whether a scored pair is dropped: found first by a bounded rule, and weighing less than
    /// the floor.
    pub(crate) fn dropped(&self, pair: &Pair, weight: f64) -> bool {
        weight < self.floor && self.bound(pair.rule).is_some()
    }
}
