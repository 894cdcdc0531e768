//! Outcome measures of one person over the follow-up window.
//!
//! Day-counting convention: dates are whole days (days since 1970-01-01). The follow-up window
//! of a person with index date `i` and `F` follow-up days is `(i, i + F]`, that is the days
//! `i + 1 ..= i + F`; the index day itself is not part of it. A spell `[s, e]` covers the days
//! `s ..= e` (both ends included); a spell with no end is still open and runs to the end of the
//! window. An event on day `d` is in the window when `i < d <= i + F`.

/// The day offset of an event relative to the index date when it falls in the window, i.e.
/// `1 ..= follow_up` days after the index.
pub(crate) fn event_offset(index: i32, follow_up: u32, date: i32) -> Option<u32> {
    let offset = i64::from(date) - i64::from(index);
    (offset >= 1 && offset <= i64::from(follow_up)).then_some(offset as u32)
}

/// The part of the spell `[start, end]` (open when `end` is `None`) inside the window, as day
/// offsets `lo ..= hi` with `1 <= lo <= hi <= follow_up`, or `None` when they do not overlap.
pub(crate) fn clip_spell(index: i32, follow_up: u32, start: i32, end: Option<i32>) -> Option<(u32, u32)> {
    let first = i64::from(index) + 1;
    let last = i64::from(index) + i64::from(follow_up);
    let lo = i64::from(start).max(first);
    let hi = end.map_or(last, |e| i64::from(e).min(last));
    (follow_up > 0 && lo <= hi).then(|| ((lo - i64::from(index)) as u32, (hi - i64::from(index)) as u32))
}

/// The number of days of the window covered by the clipped spells `lo ..= hi`, counting days
/// covered by overlapping spells once. Sorts `spells` in place.
pub(crate) fn merged_days(spells: &mut [(u32, u32)]) -> u32 {
    spells.sort_unstable();
    let mut total = 0_u32;
    let mut current: Option<(u32, u32)> = None;
    for &(lo, hi) in spells.iter() {
        match current {
            Some((clo, chi)) if lo <= chi.saturating_add(1) => current = Some((clo, chi.max(hi))),
            Some((clo, chi)) => {
                total += chi - clo + 1;
                current = Some((lo, hi));
            }
            None => current = Some((lo, hi)),
        }
    }
    if let Some((clo, chi)) = current {
        total += chi - clo + 1;
    }
    total
}

/// Days of the window `(index, index + follow_up]` covered by the spells `[start, end]`
/// (`end` `None` = still open), overlaps merged. Spells that end before they start are ignored.
pub fn spell_days(index: i32, follow_up: u32, spells: &[(i32, Option<i32>)]) -> u32 {
    let mut clipped: Vec<(u32, u32)> = spells
        .iter()
        .filter(|(s, e)| e.is_none_or(|e| e >= *s))
        .filter_map(|&(s, e)| clip_spell(index, follow_up, s, e))
        .collect();
    merged_days(&mut clipped)
}
