//! The ground truth beside the extracts: who every person is (`truth/persons.csv`), the true
//! effects of the resettlement programme (`truth/effects.json`) and of every programme
//! (`truth/programmes.json`).

use std::path::Path;

use serde::Serialize;

use crate::SynthError;
use crate::csv_out::write_csv;
use crate::format::iso;
use crate::pools;
use crate::programmes::{About, Programme};
use crate::world::{self, OUTCOMES, Person, WINDOW_DAYS, WorldParams};

pub(crate) fn person_id(index: usize) -> String {
    format!("P{:08}", index + 1)
}

/// Writes `truth/persons.csv`: every person's id, spine membership, resettlement programme
/// membership (`treated`) and first-release covariates, and for a spine person both potential
/// outcomes of every outcome without any programme and with the resettlement programme
/// (`<outcome>_without`, `<outcome>_with`), so that its effect can be checked over any subset,
/// such as the matched treated persons.
pub(crate) fn write_persons(persons: &[Person], path: &Path) -> Result<u64, SynthError> {
    let mut header: Vec<String> = [
        "person",
        "in_spine",
        "treated",
        "age_at_release",
        "sex",
        "prior_offences",
        "sentence_months",
        "offence_group",
        "first_release_date",
    ]
    .map(str::to_owned)
    .to_vec();
    for name in OUTCOMES {
        header.extend([format!("{name}_without"), format!("{name}_with")]);
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let ((), rows) = write_csv(path, &header, false, |csv| {
        for (i, p) in persons.iter().enumerate() {
            csv.plain(format_args!("{}", person_id(i)));
            let sex = if p.female { "F" } else { "M" };
            if let Some(s) = &p.spine {
                let r = &s.releases[0];
                csv.plain(format_args!("true"));
                csv.plain(format_args!("{}", s.took_part(Programme::Resettlement)));
                csv.plain(format_args!("{}", r.age));
                csv.plain(format_args!("{sex}"));
                csv.plain(format_args!("{}", r.prior_offences));
                csv.plain(format_args!("{}", r.sentence_months));
                csv.plain(format_args!(
                    "{}",
                    pools::OFFENCE_GROUPS[r.offence_group as usize].0
                ));
                csv.plain(format_args!("{}", iso(r.date)));
                let with = &s.with[Programme::Resettlement.index()];
                for (without, with) in s.y0.iter().zip(with) {
                    csv.plain(format_args!("{without}"));
                    csv.plain(format_args!("{with}"));
                }
            } else {
                csv.plain(format_args!("false,false,,{sex},,,,"));
                for _ in 0..2 * OUTCOMES.len() {
                    csv.plain(format_args!(""));
                }
            }
            csv.finish_line()?;
        }
        Ok(())
    })?;
    Ok(rows)
}

/// The true effect of a programme on one outcome.
#[derive(Debug, Serialize)]
struct Effect {
    /// Mean over treated persons of (outcome with programme - outcome without): the true ATT.
    att: f64,
    /// Mean outcome of treated persons with the programme (what is observed).
    treated_mean_with: f64,
    /// Mean outcome of treated persons had they not taken part (the counterfactual).
    treated_mean_without: f64,
    /// Mean outcome of the other spine persons (what is observed: members of another programme
    /// count with that programme's effect).
    untreated_mean: f64,
    /// Observed treated mean minus untreated mean.
    naive_difference: f64,
    /// `naive_difference - att`: the selection bias of a naive comparison.
    naive_bias: f64,
    /// Mean over all spine persons of the individual effect (ATE).
    ate: f64,
    /// How the effect was built into the simulation.
    design: String,
}

type OutcomeEffects = std::collections::BTreeMap<&'static str, Effect>;

/// One programme of `truth/programmes.json`: what it is, how many true persons took part, and
/// its true effects, computed as `truth/effects.json`'s.
#[derive(Debug, Serialize)]
pub(crate) struct ProgrammeTruth {
    #[serde(flatten)]
    about: About,
    pub(crate) participants: u64,
    outcomes: OutcomeEffects,
}

#[derive(Debug, Serialize)]
pub(crate) struct Effects {
    spine_persons: u64,
    pub(crate) treated_persons: u64,
    index_date: &'static str,
    window: Window,
    release_dates: [String; 2],
    extract_date: String,
    outcomes: std::collections::BTreeMap<&'static str, Effect>,
}

#[derive(Debug, Serialize)]
struct Window {
    description: &'static str,
    start_offset_days_exclusive: i32,
    end_offset_days_inclusive: i32,
}

/// The participants of `programme` and its true effects on every outcome: the treated are its
/// participants, the untreated every other spine person.
fn programme_effects(persons: &[Person], programme: Programme) -> (u64, OutcomeEffects) {
    let mut n_t = 0u64;
    let mut n_c = 0u64;
    let k_all = OUTCOMES.len();
    let mut sum_y1_t = vec![0.0; k_all];
    let mut sum_y0_t = vec![0.0; k_all];
    let mut sum_c = vec![0.0; k_all];
    let mut sum_diff_all = vec![0.0; k_all];
    for s in persons.iter().filter_map(|p| p.spine.as_ref()) {
        let with = &s.with[programme.index()];
        let treated = s.took_part(programme);
        for k in 0..k_all {
            let (y1, y0) = (f64::from(with[k]), f64::from(s.y0[k]));
            sum_diff_all[k] += y1 - y0;
            if treated {
                sum_y1_t[k] += y1;
                sum_y0_t[k] += y0;
            } else {
                sum_c[k] += f64::from(s.observed()[k]);
            }
        }
        if treated {
            n_t += 1;
        } else {
            n_c += 1;
        }
    }
    let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
    let mut outcomes = OutcomeEffects::new();
    for (k, design) in programme.design().describe().into_iter().enumerate() {
        let with = mean(sum_y1_t[k], n_t);
        let without = mean(sum_y0_t[k], n_t);
        let untreated = mean(sum_c[k], n_c);
        let att = with - without;
        outcomes.insert(
            OUTCOMES[k],
            Effect {
                att,
                treated_mean_with: with,
                treated_mean_without: without,
                untreated_mean: untreated,
                naive_difference: with - untreated,
                naive_bias: with - untreated - att,
                ate: mean(sum_diff_all[k], n_t + n_c),
                design,
            },
        );
    }
    (n_t, outcomes)
}

/// Every programme's description, participants and true effects (`truth/programmes.json`).
pub(crate) fn programmes(persons: &[Person]) -> Vec<ProgrammeTruth> {
    Programme::ALL
        .iter()
        .map(|&programme| {
            let (participants, outcomes) = programme_effects(persons, programme);
            ProgrammeTruth {
                about: programme.about(),
                participants,
                outcomes,
            }
        })
        .collect()
}

/// The resettlement programme's true effects (`truth/effects.json`).
pub(crate) fn effects(w: &WorldParams, persons: &[Person]) -> Effects {
    let (n_t, outcomes) = programme_effects(persons, Programme::Resettlement);
    Effects {
        spine_persons: w.people,
        treated_persons: n_t,
        index_date: "the person's first release_date in releases.csv",
        window: Window {
            description: "(index, index + 365 days]; spells are inclusive of both ends and an \
                          empty end_date means still open; days are counted with overlaps merged; \
                          days_on_benefit counts JSA, ESA and UC_SEARCHING only",
            start_offset_days_exclusive: 0,
            end_offset_days_inclusive: WINDOW_DAYS,
        },
        release_dates: [
            iso(world::day(world::RELEASE_START)),
            iso(world::day(world::RELEASE_END)),
        ],
        extract_date: iso(w.extract_end()),
        outcomes,
    }
}
