//! Ages and dates of birth: the age structure of people released from custody, the seasonality
//! of births in England and Wales, and the 1 January recorded when a date of birth is unknown
//! (`docs/synth.md` gives the sources and the parameters).

use chrono::{Datelike, Months, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::world::{Day, date, gamma};

/// Age in whole years: `AGE_MIN + AGE_SCALE x Gamma(AGE_SHAPE)`, capped at `AGE_MAX`. Its mode is
/// 27.8 years and its mean 34.8, with about 4% over 60.
pub const AGE_MIN: f64 = 18.0;
/// See [`AGE_MIN`].
pub const AGE_SHAPE: f64 = 2.4;
/// See [`AGE_MIN`].
pub const AGE_SCALE: f64 = 7.0;
/// See [`AGE_MIN`].
pub const AGE_MAX: f64 = 69.0;

/// Relative frequency of a birth on a day of each month (January first), as in England and
/// Wales: most births in late summer and September, fewest in winter.
pub const BIRTH_MONTH_WEIGHTS: [f64; 12] = [
    0.96, 0.97, 0.99, 0.98, 1.0, 0.99, 1.03, 1.02, 1.06, 1.03, 0.99, 0.97,
];
/// Relative frequency of a birth on 25 and 26 December and 1 January (fewer planned deliveries).
pub const HOLIDAY_WEIGHT: f64 = 0.75;
/// Share of people whose recorded (and so true, for the linkage) date of birth is 1 January of
/// their year of birth: the date recorded when only the year is known.
pub const JANUARY_FIRST_SHARE: f64 = 0.003;

/// A whole age in years.
pub fn age(rng: &mut ChaCha8Rng) -> u32 {
    (AGE_MIN + gamma(rng, AGE_SHAPE) * AGE_SCALE).min(AGE_MAX) as u32
}

/// The relative frequency of births on a day.
fn weight(d: NaiveDate) -> f64 {
    match (d.month(), d.day()) {
        (12, 25 | 26) | (1, 1) => HOLIDAY_WEIGHT,
        (m, _) => BIRTH_MONTH_WEIGHTS[m as usize - 1],
    }
}

/// A date of birth for someone who is `age` on `anchor`: a day of the year of dates that give
/// that age, drawn by the seasonality of births, or now and then its 1 January.
pub fn date_of_birth(rng: &mut ChaCha8Rng, anchor: Day, age: u32) -> Day {
    let anchor_date = date(anchor);
    let upper = anchor_date
        .checked_sub_months(Months::new(12 * age))
        .expect("ages are far inside chrono's range")
        .num_days_from_ce();
    let lower = anchor_date
        .checked_sub_months(Months::new(12 * (age + 1)))
        .expect("ages are far inside chrono's range")
        .num_days_from_ce()
        + 1;
    if rng.random::<f64>() < JANUARY_FIRST_SHARE {
        // The range is one year long, so it holds exactly one 1 January.
        let first = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).map(|d| d.num_days_from_ce());
        let year = date(lower).year();
        if let Some(d) = [first(year), first(year + 1)]
            .into_iter()
            .flatten()
            .find(|d| (lower..=upper).contains(d))
        {
            return d;
        }
    }
    let max = BIRTH_MONTH_WEIGHTS.iter().copied().fold(HOLIDAY_WEIGHT, f64::max);
    let mut d = rng.random_range(lower..=upper);
    // Rejection sampling; after a few tries the last draw stands (a negligible distortion).
    for _ in 0..16 {
        if rng.random::<f64>() * max < weight(date(d)) {
            break;
        }
        d = rng.random_range(lower..=upper);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{age_on, day, rng_for};

    #[test]
    fn dates_of_birth_give_the_age_and_follow_the_seasons() {
        let mut rng = rng_for(3, 77, 0, 0);
        let anchor = day((2023, 5, 17));
        let mut by_month = [0u32; 12];
        let mut january_first = 0;
        let n = 60_000;
        for i in 0..n {
            let a = 18 + i % 40;
            let dob = date_of_birth(&mut rng, anchor, a);
            assert_eq!(age_on(dob, anchor), a);
            let d = date(dob);
            by_month[d.month0() as usize] += 1;
            january_first += u32::from(d.month() == 1 && d.day() == 1);
        }
        let per_day = |m: usize, days: f64| f64::from(by_month[m]) / days;
        assert!(
            per_day(8, 30.0) > per_day(1, 28.25) * 1.05,
            "September over February: {by_month:?}"
        );
        let expected = JANUARY_FIRST_SHARE * f64::from(n);
        assert!(f64::from(january_first) > expected * 0.7, "{january_first}");
        assert!(
            f64::from(january_first) < expected * 1.3 + f64::from(n) / 365.0,
            "{january_first}"
        );
    }

    #[test]
    fn ages_peak_in_the_late_twenties() {
        let mut rng = rng_for(4, 78, 0, 0);
        let mut counts = [0u32; 70];
        for _ in 0..50_000 {
            counts[age(&mut rng) as usize] += 1;
        }
        let mode = (0..70).max_by_key(|&a| counts[a]).expect("ages");
        assert!((25..=30).contains(&mode), "{mode}");
        assert!(counts[..18].iter().all(|&c| c == 0));
        let over_60: u32 = counts[61..].iter().sum();
        assert!(f64::from(over_60) / 50_000.0 < 0.06, "{over_60}");
    }
}
