//! Blocking: which (record, spine record) pairs are scored.
//!
//! A rule gives each record zero or more *blocking keys* (a hash of some of its tokens); two
//! records are a candidate pair when they share a key of some rule and the spine holds at most
//! the rule's cap ([`BLOCK_CAP`]) records with that key. The rules are the match keys (their
//! `tok_` tokens), in cascade order, then the extra rules of [`rules`]. A pair is kept once,
//! under the first rule that found it, with a bit for each rule that found it.
//!
//! Each rule's keys over the spine are one sorted array of (key, spine record), 12 bytes per
//! key; a chunk of records is sorted the same way and merge-joined against it, so finding the
//! pairs of a chunk costs O(chunk keys · log) plus the pairs found, never records squared.

use linklab_tokens::{Component, FieldKind};
use rayon::prelude::*;

use super::fields::{CmpData, CompareField, MISSING_TOKEN, crossed_pair};
use super::prune::{Bound, Prune, Reach};

/// The most spine records one blocking key may have; larger blocks (a very common name, say)
/// are skipped for that rule.
pub(crate) const BLOCK_CAP: usize = 50;

/// One component of a blocking key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The token of match key k.
    Key(usize),
    /// A scalar comparison token: field, variant.
    Scalar(usize, usize),
    /// Each item of a field's `edit1` set (one key per item).
    Edit1(usize),
    /// The `cross` tokens of two name fields in either order (the smaller first): forename and
    /// surname, or the two written the other way round.
    EitherOrder([(usize, usize); 2]),
}

/// A blocking rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub name: String,
    pub parts: Vec<Part>,
    /// The most spine records one key of this rule may have.
    pub cap: usize,
    /// The passes it finds pairs for.
    pub used: Use,
}

/// A pass over the candidate pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Pass one: the pairs EM is fitted on.
    Fit,
    /// Pass two: the pairs that are scored and decided.
    Score,
}

/// The passes a rule finds pairs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Use {
    Both,
    /// Pass one only: wide blocks whose pairs EM needs (they hold most of the non-matches the
    /// model learns u-like evidence from) but that would cost most of pass two.
    Fit,
    /// Pass two only: the tight blocks that replace the [`Use::Fit`] rules there.
    Score,
}

impl Use {
    /// The name the linkage report gives it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Use::Both => "fit and score",
            Use::Fit => "fit",
            Use::Score => "score",
        }
    }
}

impl Rule {
    /// Whether the rule finds pairs for `pass`.
    pub(crate) fn in_pass(&self, pass: Pass) -> bool {
        matches!(
            (self.used, pass),
            (Use::Both, _) | (Use::Fit, Pass::Fit) | (Use::Score, Pass::Score)
        )
    }

    /// Per compared field, a bit per level that a pair of this rule can show: a field the rule
    /// joins on exactly shows only exact agreement, by an edit-1 item only exact or edit-1, by
    /// a soundex or a year only that level or a more specific one. A match key restricts its
    /// compared fields by its components (`key_components`, per key, as written): `surname`
    /// to exact agreement, `soundex(surname)` to soundex or a more specific level; a transform
    /// the field has no comparison variant for restricts nothing.
    pub(crate) fn allowed_levels(&self, fields: &[CompareField], key_components: &[Vec<String>]) -> Vec<u16> {
        let mut allowed: Vec<u16> = fields.iter().map(|f| (1 << f.levels().len()) - 1).collect();
        for part in &self.parts {
            match *part {
                Part::Key(k) => {
                    for component in key_components.get(k).into_iter().flatten() {
                        let Ok(component) = Component::parse(component) else {
                            continue;
                        };
                        let Some(f) = fields.iter().position(|f| f.name == component.field) else {
                            continue;
                        };
                        let variant = component.transform.name().unwrap_or("exact");
                        if let Some(v) = fields[f].scalar_index(variant) {
                            allowed[f] &= fields[f].levels_through(v);
                        }
                    }
                }
                Part::Edit1(f) => allowed[f] &= 0b11,
                Part::Scalar(f, v) => allowed[f] &= fields[f].levels_through(v),
                // Exact, within one edit of each other, or transposed.
                Part::EitherOrder(names) => {
                    for (f, _) in names {
                        allowed[f] &= 0b111;
                    }
                }
            }
        }
        allowed
    }
}

/// The blocking rules: each match key, then, from the compared fields,
/// - each `nino`/`id` field's `edit1` set (one typo in the reference number);
/// - for EM only ([`Use::Fit`]), each `dob` field's `edit1` set with each name field's `soundex`
///   (a typo in the date and a spelling variant of the name, or a changed name); for scoring
///   ([`Use::Score`]) in their place, the date's `swap` form (the date or its day and month
///   swapped) with each name's `soundex`, and its `edit1` set with every name's `soundex`
///   together (with one name field the `edit1` rule serves both passes);
/// - the first two name fields in either order with the date's `swap` form (forename and
///   surname written the other way round);
/// - each `postcode` field exactly with the `dob` year (a changed name);
/// - last, the first two name fields agreeing exactly (a wrong date and no reference number):
///   in pass two its blocks are skipped where its pairs cannot link ([`Bound`]).
pub(crate) fn rules(match_keys: &[String], fields: &[CompareField]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = match_keys
        .iter()
        .enumerate()
        .map(|(k, name)| Rule {
            name: name.clone(),
            parts: vec![Part::Key(k)],
            cap: BLOCK_CAP,
            used: Use::Both,
        })
        .collect();
    let of_kind = |kinds: &[FieldKind]| -> Vec<usize> {
        (0..fields.len())
            .filter(|&f| kinds.contains(&fields[f].kind))
            .collect()
    };
    let names = of_kind(&[FieldKind::Forename, FieldKind::Name]);
    let dobs = of_kind(&[FieldKind::Dob]);
    for f in of_kind(&[FieldKind::Nino, FieldKind::Id]) {
        rules.push(Rule {
            name: format!("{}_edit1", fields[f].name),
            parts: vec![Part::Edit1(f)],
            cap: BLOCK_CAP,
            used: Use::Both,
        });
    }
    let soundex = |n: usize| {
        let v = fields[n]
            .scalar_index("soundex")
            .expect("name kinds have soundex");
        Part::Scalar(n, v)
    };
    for &d in &dobs {
        // With one name field, its wide rule is the tight one too.
        let wide = if names.len() > 1 { Use::Fit } else { Use::Both };
        for &n in &names {
            rules.push(Rule {
                name: format!("{}_edit1+{}_soundex", fields[d].name, fields[n].name),
                parts: vec![Part::Edit1(d), soundex(n)],
                cap: BLOCK_CAP,
                used: wide,
            });
        }
        let swap = fields[d].scalar_index("swap").expect("dob has swap");
        for &n in &names {
            rules.push(Rule {
                name: format!("{}_swap+{}_soundex", fields[d].name, fields[n].name),
                parts: vec![Part::Scalar(d, swap), soundex(n)],
                cap: BLOCK_CAP,
                used: Use::Score,
            });
        }
        if wide == Use::Fit {
            let name = std::iter::once(format!("{}_edit1", fields[d].name))
                .chain(names.iter().map(|&n| format!("{}_soundex", fields[n].name)))
                .collect::<Vec<_>>()
                .join("+");
            rules.push(Rule {
                name,
                parts: std::iter::once(Part::Edit1(d))
                    .chain(names.iter().map(|&n| soundex(n)))
                    .collect(),
                cap: BLOCK_CAP,
                used: Use::Score,
            });
        }
    }
    if let (Some(names), Some(&d)) = (crossed_pair(fields), dobs.first()) {
        let swap = fields[d].scalar_index("swap").expect("dob has swap");
        let [(a, _), (b, _)] = names;
        rules.push(Rule {
            name: format!(
                "{}+{}_either_order+{}_swap",
                fields[a].name, fields[b].name, fields[d].name
            ),
            parts: vec![Part::EitherOrder(names), Part::Scalar(d, swap)],
            cap: BLOCK_CAP,
            used: Use::Both,
        });
    }
    for p in of_kind(&[FieldKind::Postcode]) {
        for &d in &dobs {
            let year = fields[d].scalar_index("year").expect("dob has year");
            rules.push(Rule {
                name: format!("{}_exact+{}_year", fields[p].name, fields[d].name),
                parts: vec![Part::Scalar(p, 0), Part::Scalar(d, year)],
                cap: BLOCK_CAP,
                used: Use::Both,
            });
        }
    }
    // Last: its blocks may be skipped where its pairs cannot link ([`Bound`]), and a skipped
    // pair must not be one that a later rule finds.
    if let [a, b, ..] = names[..] {
        rules.push(Rule {
            name: format!("{}_exact+{}_exact", fields[a].name, fields[b].name),
            parts: vec![Part::Scalar(a, 0), Part::Scalar(b, 0)],
            cap: BLOCK_CAP,
            used: Use::Both,
        });
    }
    rules
}

fn mix(h: u64, v: u64) -> u64 {
    let x = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

/// Which records take part in a pass: one in `every`, chosen by a hash of the record's number
/// salted by its input (all when `every` is 1). The choice depends on neither the chunk size
/// nor the order records are met in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    pub input: u64,
    pub every: u64,
}

impl Sample {
    /// Every record.
    pub(crate) const ALL: Self = Self { input: 0, every: 1 };

    /// Whether record `record` (its number in its extract) is in the sample.
    pub(crate) fn holds(self, record: u32) -> bool {
        if self.every <= 1 {
            return true;
        }
        // The SplitMix64 finaliser of the salted record number.
        let mut z = mix(0x7361_6d70_6c65_2121 ^ self.input, u64::from(record));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).is_multiple_of(self.every)
    }
}

/// Appends `(key, base + r)` for every blocking key of rule `rule` (number `index`) of each
/// record `r` in `range` of `data` that is in `sample`.
#[allow(
    clippy::too_many_arguments,
    reason = "internal: the rule, the records and the output array"
)]
fn keys_of(
    rule: &Rule,
    index: usize,
    data: &CmpData,
    range: std::ops::Range<usize>,
    base: u32,
    sample: Sample,
    out: &mut Vec<(u64, u32)>,
) {
    'records: for r in range {
        if !sample.holds(base + r as u32) {
            continue;
        }
        let mut h = mix(0x006c_696e_6b6c_6162, index as u64);
        let mut set: &[u64] = &[];
        for part in &rule.parts {
            let v = match *part {
                Part::Key(k) => data.keys[k][r],
                Part::Scalar(f, v) => data.scalar(f, r, v),
                Part::EitherOrder([first, second]) => {
                    let one = data.scalar(first.0, r, first.1);
                    let other = data.scalar(second.0, r, second.1);
                    if one == MISSING_TOKEN || other == MISSING_TOKEN {
                        continue 'records;
                    }
                    h = mix(h, one.min(other));
                    one.max(other)
                }
                Part::Edit1(f) => {
                    set = data.edit1(f, r);
                    if set.is_empty() {
                        continue 'records;
                    }
                    continue;
                }
            };
            if v == MISSING_TOKEN {
                continue 'records;
            }
            h = mix(h, v);
        }
        let record = base + (r as u32);
        if rule.parts.iter().any(|p| matches!(p, Part::Edit1(_))) {
            out.extend(set.iter().map(|&item| (mix(h, item), record)));
        } else {
            out.push((h, record));
        }
    }
}

/// `keys` sorted by key (the records of one key in any order). The keys are hashes, so a pass
/// that scatters them by their top bits leaves buckets of a few keys each to sort: several
/// times faster than comparison sorting, which was a seventh of a run's time.
pub(crate) fn sort_by_key(mut keys: Vec<(u64, u32)>) -> Vec<(u64, u32)> {
    const SMALL: usize = 1 << 12;
    if keys.len() < SMALL {
        keys.sort_unstable_by_key(|k| k.0);
        return keys;
    }
    // About four keys a bucket.
    let bits = (usize::BITS - keys.len().leading_zeros() - 2).min(24);
    let starts = bucket_starts(keys.iter().map(|k| k.0), bits);
    let bucket = |k: &(u64, u32)| (k.0 >> (64 - bits)) as usize;
    place_and_sort(vec![keys], &starts, bucket, |b| b.sort_unstable_by_key(|k| k.0))
}

/// The pairs of `parts`, whose left records are among the `n` from `first`, sorted: placed by
/// their left record (a chunk's pairs are a few per record), then each record's sorted. Each
/// part is freed once placed.
pub(crate) fn sort_by_left(parts: Vec<Vec<Pair>>, first: u32, n: usize) -> Vec<Pair> {
    let record = |pair: &Pair| (pair.left - first) as usize;
    let starts = starts_of(n, parts.iter().flatten().map(record));
    place_and_sort(parts, &starts, record, <[Pair]>::sort_unstable)
}

/// The items of `parts` placed by their bucket (`bucket` of an item, whose counts made `starts`),
/// then each bucket's items sorted by `sort`. Each part is freed once placed.
fn place_and_sort<T: Copy + Default>(
    parts: Vec<Vec<T>>,
    starts: &[u32],
    bucket: impl Fn(&T) -> usize,
    sort: impl Fn(&mut [T]),
) -> Vec<T> {
    let mut next = starts.to_vec();
    let mut sorted = vec![T::default(); starts.last().map_or(0, |&n| n as usize)];
    for part in parts {
        for item in part {
            let slot = &mut next[bucket(&item)];
            sorted[*slot as usize] = item;
            *slot += 1;
        }
    }
    for b in starts.windows(2) {
        sort(&mut sorted[b[0] as usize..b[1] as usize]);
    }
    sorted
}

/// Where each bucket of keys sharing their top `bits` bits starts among the keys sorted, and
/// after the last bucket their number: the prefix sums of the buckets' counts.
fn bucket_starts(keys: impl Iterator<Item = u64>, bits: u32) -> Vec<u32> {
    starts_of(1 << bits, keys.map(|key| (key >> (64 - bits)) as usize))
}

/// Where each of `buckets` buckets starts when items are placed by the bucket each is in
/// (`of`, an item's bucket), and after the last bucket their number.
fn starts_of(buckets: usize, of: impl Iterator<Item = usize>) -> Vec<u32> {
    let mut starts = vec![0_u32; buckets + 1];
    for b in of {
        starts[b + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    starts
}

/// One rule's keys over the spine, sorted, with a directory by their top bits: the keys are
/// hashes, so the directory finds a key's place with two reads and a scan of a few entries.
/// (A merge-join that galloped along the array from the last key found took a third of a run
/// where the chunk's keys were sparse among the spine's.) Most keys of a large extract's
/// records are on no spine record, so a filter of 4 to 8 bits a key (one bit per value of
/// their top bits) answers most of them with one read of an array a fraction of the keys' size.
pub(crate) struct Keys {
    entries: Vec<Entry>,
    /// `dir[b]` is the first entry whose key's top bits are at least `b`.
    dir: Vec<u32>,
    shift: u32,
    /// A bit per value of the keys' top `64 - filter_shift` bits, set where a key has them.
    filter: Vec<u64>,
    filter_shift: u32,
}

impl Keys {
    /// The directory over sorted `entries`, 4 to 8 entries a bucket, and the filter: together
    /// 1 to 2 bytes an entry.
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        let bits = (usize::BITS - entries.len().leading_zeros())
            .saturating_sub(3)
            .clamp(1, 28);
        let dir = bucket_starts(entries.iter().map(|e| e.0), bits);
        let filter_bits = (usize::BITS - entries.len().leading_zeros() + 2).clamp(6, 32);
        let filter_shift = 64 - filter_bits;
        let mut filter = vec![0_u64; 1 << (filter_bits - 6)];
        for e in &entries {
            let b = e.0 >> filter_shift;
            filter[(b >> 6) as usize] |= 1 << (b & 63);
        }
        Self {
            entries,
            dir,
            shift: 64 - bits,
            filter,
            filter_shift,
        }
    }

    /// Whether no entry has `key` (false when one may: one in 5 to 8 of the keys that are not
    /// there shares its bit with one that is).
    fn surely_absent(&self, key: u64) -> bool {
        let b = key >> self.filter_shift;
        self.filter[(b >> 6) as usize] & (1 << (b & 63)) == 0
    }

    /// The first index whose key is at least `key`.
    pub(crate) fn lower_bound(&self, key: u64) -> usize {
        let b = (key >> self.shift) as usize;
        let (low, high) = (self.dir[b] as usize, self.dir[b + 1] as usize);
        low + self.entries[low..high].partition_point(|(k, _, _)| *k < key)
    }

    /// The entries of `key`, or `None` when there are more than `cap`.
    pub(crate) fn block(&self, key: u64, cap: usize) -> Option<&[Entry]> {
        if self.surely_absent(key) {
            return Some(&[]);
        }
        let start = self.lower_bound(key);
        let len = self.entries[start..]
            .iter()
            .take(cap + 1)
            .take_while(|(k, _, _)| *k == key)
            .count();
        (len <= cap).then(|| &self.entries[start..start + len])
    }

    fn bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>() + self.dir.len() * 4 + self.filter.len() * 8
    }
}

/// The spine's blocking keys for one pass, one sorted array per rule of the pass.
pub(crate) struct SpineIndex {
    /// The pass's rules with their numbers among all the rules.
    rules: Vec<(u8, Rule)>,
    by_rule: Vec<Keys>,
}

/// A spine record's blocking key: the key, the record, and for a bounded rule what its pairs'
/// bound needs of the record ([`Bound::aux`]; 0 for other rules).
pub(crate) type Entry = (u64, u32, u32);

/// A candidate pair: a record of the chunk (its index in the extract), a spine record, the
/// first rule that found it, and a bit per rule that found it among the first [`TRAINING_RULES`]
/// (pass one's training sees each rule's pairs whole, not only those no earlier rule found).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pair {
    pub left: u32,
    pub right: u32,
    pub rule: u8,
    pub rules: u16,
}

/// The rules whose pairs can train a model by themselves: those numbered below this have a bit
/// in [`Pair::rules`].
pub(crate) const TRAINING_RULES: u8 = 16;

/// The bit of rule `rule` in [`Pair::rules`] (none for a rule after the first
/// [`TRAINING_RULES`]).
pub(crate) fn rule_bit(rule: u8) -> u16 {
    if rule < TRAINING_RULES { 1 << rule } else { 0 }
}

/// `f` of every pair, in the pairs' order, computed in the order of their spine records (on
/// the rayon pool): a chunk's pairs then read the spine's arrays front to back instead of at
/// random, which made scoring several times faster (the spine's tokens do not fit in a cache).
/// The values do not depend on the order they are computed in.
pub(crate) fn map_by_spine<T: Send + Copy + Default>(
    pairs: &[Pair],
    f: impl Fn(&Pair) -> T + Sync,
) -> Vec<T> {
    let mut order: Vec<(u32, u32)> = (0_u32..).zip(pairs).map(|(i, pair)| (pair.right, i)).collect();
    order.par_sort_unstable();
    let values: Vec<T> = order
        .par_iter()
        .with_min_len(4096)
        .map(|&(_, i)| f(&pairs[i as usize]))
        .collect();
    let mut out = vec![T::default(); pairs.len()];
    for (&(_, i), value) in order.iter().zip(values) {
        out[i as usize] = value;
    }
    out
}

/// The sum over every pair of the counts `f` gives it, computed in the order of the pairs'
/// spine records on the rayon pool (as [`map_by_spine`]); a sum does not depend on the order.
pub(crate) fn count_by_spine<K: Ord + Send>(
    pairs: &[Pair],
    f: impl Fn(&Pair) -> K + Sync,
) -> std::collections::BTreeMap<K, u64> {
    use std::collections::BTreeMap;
    let mut order: Vec<(u32, u32)> = (0_u32..).zip(pairs).map(|(i, pair)| (pair.right, i)).collect();
    order.par_sort_unstable();
    order
        .par_iter()
        .with_min_len(4096)
        .fold(BTreeMap::new, |mut counts, &(_, i)| {
            *counts.entry(f(&pairs[i as usize])).or_insert(0) += 1;
            counts
        })
        .reduce(BTreeMap::new, |mut a, b| {
            for (key, n) in b {
                *a.entry(key).or_insert(0) += n;
            }
            a
        })
}

/// The records whose pairs [`SpineIndex::pairs`] finds.
struct Chunk<'a> {
    data: &'a CmpData,
    range: std::ops::Range<usize>,
    base: u32,
    self_join: bool,
    sample: Sample,
}

/// What one rule found for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// The record has no key of the rule (a token it joins on is missing), or is not sampled.
    Nothing,
    /// Every key of the record had a block of at most the rule's cap: the rule found every
    /// spine record that shares a key with it.
    Whole,
    /// Some key's block was over the cap and skipped.
    Capped,
}

impl SpineIndex {
    /// The index of the rules of `rules` (all of them, numbered in order) that `pass` uses; a
    /// rule with a bound among `bounds` keeps beside each key what the bound needs.
    pub(crate) fn new(rules: &[Rule], pass: Pass, spine: &CmpData, bounds: &[Bound]) -> Self {
        let rules: Vec<(u8, Rule)> = (0_u8..)
            .zip(rules)
            .filter(|(_, rule)| rule.in_pass(pass))
            .map(|(i, rule)| (i, rule.clone()))
            .collect();
        let by_rule = rules
            .par_iter()
            .map(|(i, rule)| {
                let mut keys = Vec::new();
                keys_of(
                    rule,
                    usize::from(*i),
                    spine,
                    0..spine.records,
                    0,
                    Sample::ALL,
                    &mut keys,
                );
                let bound = bounds.iter().find(|b| b.rule == *i);
                let mut keys: Vec<Entry> = keys
                    .into_iter()
                    .map(|(key, r)| (key, r, bound.map_or(0, |b| b.aux(spine, r as usize))))
                    .collect();
                keys.sort_unstable();
                Keys::new(keys)
            })
            .collect();
        Self { rules, by_rule }
    }

    /// Bytes the index holds.
    pub(crate) fn bytes(&self) -> usize {
        self.by_rule.iter().map(Keys::bytes).sum()
    }

    /// The pairs that rule `k` of the index finds for `chunk`'s records, and what it found for
    /// each record (indexed from the start of the range). With a bound and each record's
    /// [`Reach`], the pairs that cannot link are skipped.
    fn rule_pairs(
        &self,
        k: usize,
        chunk: &Chunk<'_>,
        bounded: Option<(&Prune<'_>, &Bound, &[Reach])>,
    ) -> (Vec<Pair>, Vec<Found>) {
        let ((i, rule), spine) = (&self.rules[k], &self.by_rule[k]);
        let range = chunk.range.clone();
        let mut keys = Vec::new();
        keys_of(
            rule,
            usize::from(*i),
            chunk.data,
            range.clone(),
            chunk.base,
            chunk.sample,
            &mut keys,
        );
        let keys = sort_by_key(keys);
        let mut found = vec![Found::Nothing; range.len()];
        let mut pairs = Vec::new();
        for &(key, left) in &keys {
            let r = (left - chunk.base) as usize - range.start;
            let Some(block) = spine.block(key, rule.cap) else {
                found[r] = Found::Capped;
                continue;
            };
            if found[r] == Found::Nothing {
                found[r] = Found::Whole;
            }
            let Some(&(_, first, _)) = block.first() else {
                continue;
            };
            let fixed = bounded.map(|(prune, bound, _)| prune.fixed_weight(bound, first));
            for &(_, right, aux) in block {
                if chunk.self_join && right >= left {
                    continue;
                }
                if let (Some((prune, bound, reach)), Some(fixed)) = (bounded, fixed)
                    && prune.unreachable(bound, &reach[r], fixed, aux)
                {
                    continue;
                }
                pairs.push(Pair {
                    left,
                    right,
                    rule: *i,
                    rules: rule_bit(*i),
                });
            }
        }
        (pairs, found)
    }

    /// The candidate pairs of the records of `sample` among records `range` of `data` (numbered
    /// from `base` in their extract), sorted by (left, right), each under its first rule. With
    /// `self_join` (the data is the spine itself) only pairs with `right < left` are kept. With
    /// `prune`, the blocks of a bounded rule whose pairs cannot link are skipped ([`Bound`]).
    ///
    /// Each rule's pairs are found on the rayon pool (a merge-join of the chunk's sorted keys
    /// with the rule's spine array), the bounded rules' after the others (they need the others'
    /// [`Found`]); they are then sorted together, so the result does not depend on which thread
    /// found what.
    pub(crate) fn pairs(
        &self,
        data: &CmpData,
        range: std::ops::Range<usize>,
        base: u32,
        self_join: bool,
        sample: Sample,
        prune: Option<&Prune<'_>>,
    ) -> Vec<Pair> {
        let chunk = Chunk {
            data,
            range: range.clone(),
            base,
            self_join,
            sample,
        };
        let bound = |k: usize| prune.and_then(|p| p.bound(self.rules[k].0));
        let plain: Vec<usize> = (0..self.rules.len()).filter(|&k| bound(k).is_none()).collect();
        let mut by_rule: Vec<(u8, Vec<Pair>, Vec<Found>)> = plain
            .par_iter()
            .map(|&k| {
                let (pairs, found) = self.rule_pairs(k, &chunk, None);
                (self.rules[k].0, pairs, found)
            })
            .collect();
        if let Some(prune) = prune {
            for (k, bound) in (0..self.rules.len()).filter_map(|k| Some((k, bound(k)?))) {
                let found_by = |rule: u8, r: usize| {
                    by_rule
                        .iter()
                        .find(|(i, _, _)| *i == rule)
                        .map_or(Found::Nothing, |(_, _, found)| found[r])
                };
                let reach: Vec<Reach> = range
                    .clone()
                    .into_par_iter()
                    .map(|r| prune.reach(bound, data, r, |rule| found_by(rule, r - range.start)))
                    .collect();
                let (pairs, found) = self.rule_pairs(k, &chunk, Some((prune, bound, &reach)));
                by_rule.push((self.rules[k].0, pairs, found));
            }
        }
        let by_rule: Vec<Vec<Pair>> = by_rule.into_iter().map(|(_, pairs, _)| pairs).collect();
        let mut pairs = sort_by_left(by_rule, base + range.start as u32, range.len());
        pairs.dedup_by(|b, a| {
            let same = a.left == b.left && a.right == b.right;
            if same {
                a.rules |= b.rules;
            }
            same
        });
        pairs
    }
}
