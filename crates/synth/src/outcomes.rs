//! What happens to people: covariates at release, selection into the programmes (the newer
//! ones' in `programmes`), and the reoffences, jobs and benefit claims behind every outcome,
//! without any programme and with each.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::pools;
use crate::programmes::{self, Design, Programme};
use crate::world::{
    Day, Outcomes, Person, Release, Spell, SpineInfo, WINDOW_DAYS, WorldParams, age_on, day, exp1, gamma,
    logistic,
};

/// Covariate and outcome draws of a spine person, shared by both potential outcomes.
struct Draws {
    u_reoffend: f64,
    first_offence: f64,
    extra_offences: usize,
    offence_gaps: [f64; 6],
    offence_types: [u8; 7],
    u_late_offence: f64,
    late_offence: f64,
    u_job: f64,
    job_start: f64,
    job_length: f64,
    u_second_job: f64,
    second_job_gap: f64,
    second_job_length: f64,
    sectors: [u8; 3],
    u_late_job: f64,
    late_job_start: f64,
    u_pre_job: f64,
    pre_job_gap: f64,
    pre_job_length: f64,
    u_benefit: f64,
    benefit_start: f64,
    benefit_length: f64,
    benefit_type: f64,
    u_pre_benefit: f64,
    pre_benefit_gap: f64,
    pre_benefit_length: f64,
    u_pip: f64,
    pip_start: f64,
    u_uc_working: f64,
    u_second_release: f64,
    second_release_gap: f64,
    second_sentence: f64,
}

impl Draws {
    fn new(rng: &mut ChaCha8Rng) -> Draws {
        let mut offence_gaps = [0.0; 6];
        for g in &mut offence_gaps {
            *g = exp1(rng);
        }
        let mut offence_types = [0u8; 7];
        for t in &mut offence_types {
            *t = rng.random_range(0..pools::OFFENCE_TYPES.len()) as u8;
        }
        let mut sectors = [0u8; 3];
        for s in &mut sectors {
            *s = rng.random_range(0..pools::SECTORS.len()) as u8;
        }
        Draws {
            u_reoffend: rng.random(),
            first_offence: rng.random(),
            extra_offences: (gamma(rng, 0.8) * 1.2) as usize,
            offence_gaps,
            offence_types,
            u_late_offence: rng.random(),
            late_offence: rng.random(),
            u_job: rng.random(),
            job_start: rng.random(),
            job_length: exp1(rng),
            u_second_job: rng.random(),
            second_job_gap: exp1(rng),
            second_job_length: exp1(rng),
            sectors,
            u_late_job: rng.random(),
            late_job_start: rng.random(),
            u_pre_job: rng.random(),
            pre_job_gap: exp1(rng),
            pre_job_length: exp1(rng),
            u_benefit: rng.random(),
            benefit_start: rng.random(),
            benefit_length: exp1(rng),
            benefit_type: rng.random(),
            u_pre_benefit: rng.random(),
            pre_benefit_gap: exp1(rng),
            pre_benefit_length: exp1(rng),
            u_pip: rng.random(),
            pip_start: rng.random(),
            u_uc_working: rng.random(),
            u_second_release: rng.random(),
            second_release_gap: rng.random(),
            second_sentence: rng.random(),
        }
    }
}

/// Linear predictors of the outcome models, from the first release's covariates.
struct Risk {
    reoffend: f64,
    job: f64,
    benefit: f64,
}

fn risk(r: Release, female: bool) -> Risk {
    let age = f64::from(r.age) - 33.0;
    let prior = f64::from(r.prior_offences) - 5.0;
    let sentence = f64::from(r.sentence_months).min(48.0) - 12.0;
    let sex = if female { 1.0 } else { 0.0 };
    let (g_reoffend, g_job) = match pools::OFFENCE_GROUPS[r.offence_group as usize].0 {
        "theft" => (0.35, -0.1),
        "drugs" => (0.2, -0.2),
        "fraud" => (-0.5, 0.5),
        "public_order" => (0.15, 0.0),
        "other" => (-0.1, 0.1),
        _ => (0.0, 0.0),
    };
    Risk {
        reoffend: -0.9 + 0.1 * prior - 0.02 * age - 0.01 * sentence - 0.3 * sex + g_reoffend,
        job: -0.9 - 0.05 * prior - 0.015 * age - 0.2 * sex + g_job,
        benefit: 0.2 + 0.02 * age + 0.03 * prior + 0.3 * sex,
    }
}

/// Outcome events of one potential world.
struct Events {
    offences: Vec<(Day, u8)>,
    jobs: Vec<Spell>,
    benefits: Vec<Spell>,
}

fn close(end: Day, extract_end: Day) -> Option<Day> {
    (end <= extract_end).then_some(end)
}

/// The reoffences after `release`: within the window by the risk (and the programme's design),
/// and now and then a late one after it.
fn offences(
    params: &WorldParams,
    draws: &Draws,
    release: Day,
    risk: &Risk,
    design: &Design,
    group_type: u8,
) -> Vec<(Day, u8)> {
    let extract_end = params.extract_end;
    let mut offences = Vec::new();
    let p_reoffend = (logistic(risk.reoffend) + design.reoffend).max(0.0);
    let offence_type = |k: usize| {
        if draws.offence_types[k].is_multiple_of(2) {
            group_type
        } else {
            draws.offence_types[k]
        }
    };
    if draws.u_reoffend < p_reoffend {
        let mut when = release + 1 + (364.0 * draws.first_offence.powf(1.4)) as Day;
        offences.push((when, offence_type(0)));
        for k in 0..(draws.extra_offences + design.extra_offences).min(6) {
            when += 1 + (90.0 * draws.offence_gaps[k]) as Day;
            if when > extract_end {
                break;
            }
            offences.push((when, offence_type(k + 1)));
        }
    } else if draws.u_late_offence < 0.15 {
        let when = release + WINDOW_DAYS + 1 + (500.0 * draws.late_offence) as Day;
        if when <= extract_end {
            offences.push((when, offence_type(0)));
        }
    }
    offences
}

fn events(
    params: &WorldParams,
    draws: &Draws,
    first: Release,
    risk: &Risk,
    design: &Design,
    group_type: u8,
) -> Events {
    let release = first.date;
    let extract_end = params.extract_end;
    let offences = offences(params, draws, release, risk, design, group_type);

    let mut jobs = Vec::new();
    let prison_start = release - i32::from(first.sentence_months) * 15;
    if draws.u_pre_job < 0.45 {
        let end = prison_start - 1 - (60.0 * draws.pre_job_gap) as Day;
        let start = end - 30 - (400.0 * draws.pre_job_length) as Day;
        jobs.push(Spell {
            start,
            end: Some(end),
            kind: draws.sectors[2],
        });
    }
    let p_job = (logistic(risk.job) + design.employed).min(0.98);
    let mut job_start = None;
    if draws.u_job < p_job {
        let shift = design.job_start_shift;
        let start = release + 1 + ((300.0 * draws.job_start.powf(1.3)) as Day - shift).max(0);
        let end = start + 30 + (220.0 * draws.job_length) as Day;
        jobs.push(Spell {
            start,
            end: close(end, extract_end),
            kind: draws.sectors[0],
        });
        job_start = Some(start);
        if draws.u_second_job < 0.3 && end < extract_end {
            let start2 = end + 14 + (60.0 * draws.second_job_gap) as Day;
            if start2 <= extract_end {
                jobs.push(Spell {
                    start: start2,
                    end: close(
                        start2 + 30 + (250.0 * draws.second_job_length) as Day,
                        extract_end,
                    ),
                    kind: draws.sectors[1],
                });
            }
        }
    } else if draws.u_late_job < 0.25 {
        let start = release + WINDOW_DAYS + 1 + (400.0 * draws.late_job_start) as Day;
        if start <= extract_end {
            jobs.push(Spell {
                start,
                end: close(start + 30 + (200.0 * draws.job_length) as Day, extract_end),
                kind: draws.sectors[0],
            });
        }
    }

    let mut benefits = Vec::new();
    let out_of_work_type = |u: f64| -> u8 {
        if u < 0.15 {
            0
        } else if u < 0.4 {
            1
        } else {
            2
        }
    };
    if draws.u_pre_benefit < 0.3 {
        let end = prison_start - 1 - (90.0 * draws.pre_benefit_gap) as Day;
        let start = end - 20 - (300.0 * draws.pre_benefit_length) as Day;
        benefits.push(Spell {
            start,
            end: Some(end),
            kind: out_of_work_type(draws.benefit_type),
        });
    }
    let p_benefit = (logistic(risk.benefit) + design.benefit_claim).max(0.0);
    if draws.u_benefit < p_benefit {
        let start = release + 1 + (45.0 * draws.benefit_start) as Day;
        let factor = design.benefit_length;
        let mut end = start + 14 + (factor * 200.0 * draws.benefit_length) as Day;
        // A claim ends when a job starts.
        if let Some(js) = job_start
            && js > start
        {
            end = end.min(js - 1);
        }
        benefits.push(Spell {
            start,
            end: close(end, extract_end),
            kind: out_of_work_type(draws.benefit_type),
        });
    }
    // Benefits that are not out-of-work ones, so outcome code must filter by type.
    if draws.u_pip < 0.08 {
        let start = release - 200 + (500.0 * draws.pip_start) as Day;
        benefits.push(Spell {
            start,
            end: close(start + 700, extract_end),
            kind: if draws.u_pip < 0.065 { 3 } else { 4 },
        });
    }
    if let (Some(js), true) = (job_start, draws.u_uc_working < 0.3) {
        benefits.push(Spell {
            start: js + 28,
            end: close(js + 28 + 120, extract_end),
            kind: 5,
        });
    }
    Events {
        offences,
        jobs,
        benefits,
    }
}

/// Days of the window (index, index + 365] covered by the spells, overlaps merged.
fn covered_days<'a>(index: Day, spells: impl Iterator<Item = &'a Spell>) -> i32 {
    let (lo, hi) = (index + 1, index + WINDOW_DAYS);
    let mut parts: Vec<(Day, Day)> = spells
        .map(|s| (s.start.max(lo), s.end.unwrap_or(Day::MAX).min(hi)))
        .filter(|(a, b)| a <= b)
        .collect();
    parts.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(Day, Day)> = None;
    for (a, b) in parts {
        match cur {
            Some((ca, cb)) if a <= cb + 1 => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca + 1;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((ca, cb)) = cur {
        total += cb - ca + 1;
    }
    total
}

/// Whether a spell covers day `d` (an empty end: still open).
fn covers(s: &Spell, d: Day) -> bool {
    s.start <= d && s.end.is_none_or(|e| d <= e)
}

/// The outcome measures of a set of events (in the order of `OUTCOMES`), for index date
/// `index`, by the conventions of the evaluate stage: the window `(index, index + 365]`, a
/// spell at day N covering `index + N`, days to the first event censored at 365.
fn measure(index: Day, e: &Events) -> Outcomes {
    let in_window = |d: Day| d > index && d <= index + WINDOW_DAYS;
    let reoffences = e.offences.iter().filter(|(d, _)| in_window(*d)).count();
    let first = e.offences.iter().map(|(d, _)| *d).filter(|d| in_window(*d)).min();
    let days_employed = covered_days(index, e.jobs.iter());
    let days_on_benefit = covered_days(index, e.benefits.iter().filter(|s| pools::is_out_of_work(s.kind)));
    let employed_at = |day: Day| u16::from(e.jobs.iter().any(|s| covers(s, index + day)));
    // Days are within the 365-day window and counts are at most 7: all fit in a u16.
    [
        u16::from(reoffences > 0),
        u16::from(days_employed > 0),
        days_employed as u16,
        days_on_benefit as u16,
        reoffences as u16,
        employed_at(30),
        employed_at(WINDOW_DAYS),
        first.map_or(WINDOW_DAYS, |d| d - index) as u16,
    ]
}

fn pick_group(u: f64) -> u8 {
    let mut acc = 0.0;
    for (i, (_, share)) in pools::OFFENCE_GROUPS.iter().enumerate() {
        acc += share;
        if u < acc {
            return i as u8;
        }
    }
    (pools::OFFENCE_GROUPS.len() - 1) as u8
}

/// Offence type index of an offence group (groups are the first types, `other` maps to `other`).
fn group_type(group: u8) -> u8 {
    let name = pools::OFFENCE_GROUPS[group as usize].0;
    pools::OFFENCE_TYPES
        .iter()
        .position(|t| *t == name)
        .expect("every offence group is also an offence type") as u8
}

/// The first reoffence within the window after `release`, if any.
fn first_in_window(e: &Events, release: Day) -> Option<(Day, u8)> {
    e.offences
        .first()
        .copied()
        .filter(|(d, _)| *d <= release + WINDOW_DAYS)
}

/// A second release, for a few people who reoffend within the window and go back to custody.
/// The reoffence must also happen without any programme: one that only a programme causes (the
/// boot camp's) never leads back to custody, so the programmes change the spine only where they
/// prevent a return.
fn second_release(
    w: &WorldParams,
    p: &Person,
    first: Release,
    draws: &Draws,
    actual: &Events,
    e0: &Events,
) -> Option<Release> {
    let release = first.date;
    let (first_offence, offence) = first_in_window(actual, release)?;
    first_in_window(e0, release)?;
    if draws.u_second_release >= 0.14 {
        return None;
    }
    let date2 = first_offence + 30 + (240.0 * draws.second_release_gap) as Day;
    if date2 > w.extract_end {
        return None;
    }
    let group2 = pools::OFFENCE_GROUPS
        .iter()
        .position(|(g, _)| *g == pools::OFFENCE_TYPES[offence as usize])
        .unwrap_or(pools::OFFENCE_GROUPS.len() - 1) as u8;
    Some(Release {
        date: date2,
        age: age_on(p.dob, date2) as u8,
        prior_offences: first.prior_offences.saturating_add(1).min(40),
        sentence_months: 1 + (draws.second_sentence * 11.0) as u8,
        offence_group: group2,
    })
}

/// Builds a spine person's covariates, programme and outcomes: the resettlement programme and
/// every outcome draw come from `rng` (the outcomes stream), the newer programmes from
/// `programme_rng` (the programmes stream).
pub(crate) fn spine_person(
    w: &WorldParams,
    rng: &mut ChaCha8Rng,
    programme_rng: &mut ChaCha8Rng,
    p: &mut Person,
    release: Day,
    age: u8,
) {
    let age_f = f64::from(age);
    let prior = (gamma(rng, 0.9) * (4.0 + 0.15 * (age_f - 18.0))).min(40.0) as u8;
    let group = pick_group(rng.random());
    let group_name = pools::OFFENCE_GROUPS[group as usize].0;
    let z: f64 = rng.sample(StandardNormal);
    let factor = match group_name {
        "violence" => 1.6,
        "drugs" => 1.3,
        _ => 1.0,
    };
    let sentence = (factor * (7.0f64.ln() + 0.9 * z).exp()).clamp(1.0, 120.0) as u8;
    let first = Release {
        date: release,
        age,
        prior_offences: prior,
        sentence_months: sentence,
        offence_group: group,
    };

    // Selection into the programme depends on the covariates, so a naive comparison is biased.
    let g_treat = match group_name {
        "violence" => -0.3,
        "theft" => 0.25,
        "drugs" => 0.5,
        "fraud" => 0.1,
        "public_order" => -0.1,
        _ => 0.0,
    };
    let treat_logit = -2.2 - 0.02 * (age_f - 33.0) - 0.1 * (f64::from(prior) - 5.0)
        + g_treat
        + if p.female { 0.3 } else { 0.0 };
    let treated = rng.random::<f64>() < logistic(treat_logit);
    let mut programme_start = release - Programme::Resettlement.lead_days(rng);
    let mut programme = treated.then_some(Programme::Resettlement);
    if !treated && let Some((joined, start)) = programmes::join_new(first, p.female, programme_rng) {
        programme = Some(joined);
        programme_start = start;
    }

    let draws = Draws::new(rng);
    let risk = risk(first, p.female);
    let gt = group_type(group);
    let e0 = events(w, &draws, first, &risk, &Design::NONE, gt);
    let y0 = measure(release, &e0);
    let mut with = [y0; 4];
    let mut actual = None;
    for prog in Programme::ALL {
        let e = events(w, &draws, first, &risk, &prog.design(), gt);
        with[prog.index()] = measure(release, &e);
        if programme == Some(prog) {
            actual = Some(e);
        }
    }
    let mut releases = vec![first];
    releases.extend(second_release(
        w,
        p,
        first,
        &draws,
        actual.as_ref().unwrap_or(&e0),
        &e0,
    ));
    let actual = actual.unwrap_or(e0);
    p.offences = actual.offences;
    p.jobs = actual.jobs;
    p.benefits = actual.benefits;
    p.spine = Some(Box::new(SpineInfo {
        releases,
        programme,
        programme_start,
        y0,
        with,
    }));
}

pub(crate) fn other_person(w: &WorldParams, rng: &mut ChaCha8Rng, p: &mut Person) {
    let from = day((2018, 1, 1));
    let x = w.extract_end;
    if rng.random::<f64>() < 0.25 {
        let n = rng.random_range(1..=3);
        for _ in 0..n {
            let when = rng.random_range(w.release_start..=x);
            let kind = rng.random_range(0..pools::OFFENCE_TYPES.len()) as u8;
            p.offences.push((when, kind));
        }
        p.offences.sort_unstable();
    }
    if rng.random::<f64>() < 0.6 {
        let n = rng.random_range(1..=2);
        for _ in 0..n {
            let start = rng.random_range(from..=x - 30);
            let end = start + 30 + (300.0 * exp1(rng)) as Day;
            p.jobs.push(Spell {
                start,
                end: close(end, x),
                kind: rng.random_range(0..pools::SECTORS.len()) as u8,
            });
        }
    }
    if rng.random::<f64>() < 0.45 {
        let start = rng.random_range(from..=x - 30);
        let end = start + 30 + (250.0 * exp1(rng)) as Day;
        let u: f64 = rng.random();
        let kind = [0.1, 0.25, 0.6, 0.75, 0.8, 1.0]
            .iter()
            .position(|c| u < *c)
            .unwrap_or(5) as u8;
        p.benefits.push(Spell {
            start,
            end: close(end, x),
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spell(start: Day, end: Option<Day>) -> Spell {
        Spell { start, end, kind: 0 }
    }

    #[test]
    fn covered_days_merges_overlaps_and_clips_to_the_window() {
        let check = |spells: &[Spell], expected: i32| {
            assert_eq!(covered_days(0, spells.iter()), expected, "{spells:?}");
        };
        check(&[], 0);
        check(&[spell(-10, Some(0))], 0);
        check(&[spell(-10, Some(1))], 1);
        check(&[spell(1, None)], 365);
        check(&[spell(10, Some(19)), spell(15, Some(24))], 15);
        check(&[spell(10, Some(19)), spell(20, Some(29))], 20);
        check(&[spell(365, Some(400)), spell(366, None)], 1);
    }
}
