//! The four programmes whose participant lists are extracts: who takes part in each (selection
//! on the first release's covariates, so a naive comparison is biased), when each starts, and
//! what each is designed to do to its participants' outcomes.
//!
//! The resettlement programme (`participants.csv`) is the original one: its selection and start
//! are drawn from the outcomes stream as before. The other three draw from a stream of their own
//! (`STREAM_PROGRAMMES`), among the spine persons outside the resettlement programme, so adding
//! them changes none of the original draws. A person takes part in at most one programme.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::extract::Extract;
use crate::pools;
use crate::world::{Day, Release, logistic};

/// A programme whose participant list is one of the extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Programme {
    /// `participants.csv`: the original programme, which works.
    Resettlement,
    /// `mentoring.csv`: no effect on any outcome.
    Mentoring,
    /// `education.csv`: a modest benefit, too few participants to tell.
    Education,
    /// `bootcamp.csv`: harms.
    BootCamp,
}

/// How a programme changes the draws behind a participant's outcomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Design {
    /// Change in the probability of a proven reoffence within the window (floored at 0).
    pub reoffend: f64,
    /// Further reoffences of a reoffender, after the first ones (at most 6 in all).
    pub extra_offences: usize,
    /// Change in the probability of any employment within the window (capped at 0.98).
    pub employed: f64,
    /// Days earlier (negative: later) that the first job starts.
    pub job_start_shift: i32,
    /// Change in the probability of an out-of-work benefit claim within the window.
    pub benefit_claim: f64,
    /// Factor on the length of the first out-of-work benefit claim.
    pub benefit_length: f64,
}

impl Design {
    /// No programme: every draw as it is.
    pub const NONE: Design = Design {
        reoffend: 0.0,
        extra_offences: 0,
        employed: 0.0,
        job_start_shift: 0,
        benefit_claim: 0.0,
        benefit_length: 1.0,
    };

    /// How the effect on each outcome (in the order of `OUTCOMES`) was built in.
    pub(crate) fn describe(&self) -> [String; 8] {
        if *self == Design::NONE {
            return std::array::from_fn(|_| {
                "none: the programme changes no draw, so the outcome with it is the outcome without it"
                    .to_owned()
            });
        }
        let shift = match self.job_start_shift {
            0 => String::new(),
            s if s > 0 => format!("; the first job also starts {s} days earlier"),
            s => format!("; the first job also starts {} days later", -s),
        };
        let extra = match self.extra_offences {
            0 => String::new(),
            n => format!("; a reoffender also commits {n} more reoffence(s) after the first ones"),
        };
        [
            format!(
                "reoffending probability {:+} (floored at 0) for the same draws",
                self.reoffend
            ),
            format!(
                "employment probability {:+} (capped at 0.98) for the same draws",
                self.employed
            ),
            format!("follows the employment effect{shift}"),
            format!(
                "claim probability {:+} and claim length x{}; a claim also ends when a job starts",
                self.benefit_claim, self.benefit_length
            ),
            format!(
                "follows the reoffending effect: the number of reoffences in the window (the JDL's frequency){extra}"
            ),
            "follows the employment effect: a job spell covers day 30 after the index date".to_owned(),
            "follows the employment effect: a job spell covers day 365 after the index date".to_owned(),
            "follows the reoffending effect: days to the first reoffence, 365 without one (restricted mean)"
                .to_owned(),
        ]
    }
}

impl Programme {
    /// All programmes, in the order of their extracts (and of `SpineInfo::with`).
    pub(crate) const ALL: [Programme; 4] = [
        Programme::Resettlement,
        Programme::Mentoring,
        Programme::Education,
        Programme::BootCamp,
    ];

    /// The programme's position in `ALL`.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The extract that lists its participants.
    pub(crate) fn extract(self) -> Extract {
        match self {
            Programme::Resettlement => Extract::Participants,
            Programme::Mentoring => Extract::Mentoring,
            Programme::Education => Extract::Education,
            Programme::BootCamp => Extract::BootCamp,
        }
    }

    /// What it is designed to do to its participants' outcomes.
    pub(crate) fn design(self) -> Design {
        match self {
            Programme::Resettlement => Design {
                reoffend: -0.06,
                extra_offences: 0,
                employed: 0.08,
                job_start_shift: 45,
                benefit_claim: -0.05,
                benefit_length: 0.75,
            },
            Programme::Mentoring => Design::NONE,
            Programme::Education => Design {
                reoffend: -0.04,
                extra_offences: 0,
                employed: 0.06,
                job_start_shift: 20,
                benefit_claim: -0.03,
                benefit_length: 0.9,
            },
            Programme::BootCamp => Design {
                reoffend: 0.09,
                extra_offences: 1,
                employed: -0.06,
                job_start_shift: -30,
                benefit_claim: 0.03,
                benefit_length: 1.15,
            },
        }
    }

    /// Its description in `truth/programmes.json`.
    pub(crate) fn about(self) -> About {
        let (name, organisation, kind, designed) = match self {
            Programme::Resettlement => (
                "Harbourside resettlement service",
                "Harbourside Resettlement Trust",
                "resettlement",
                "works",
            ),
            Programme::Mentoring => (
                "Kestrel peer mentoring",
                "Kestrel Mentoring Network",
                "mentoring",
                "no effect",
            ),
            Programme::Education => (
                "Lantern learning in custody",
                "Lantern Learning CIC",
                "education",
                "too small to tell",
            ),
            Programme::BootCamp => (
                "Ironside boot camp",
                "Ironside Discipline Academy",
                "boot camp",
                "harms",
            ),
        };
        About {
            extract: self.extract().name(),
            name,
            organisation,
            kind,
            designed,
        }
    }

    /// Log-odds of joining (for the three new programmes), from the first release's covariates:
    /// mentoring favours older people with few priors (a low risk, so a naive comparison flatters
    /// it), education the young, the boot camp young men with many priors and violent or public
    /// order offences (a high risk, so a naive comparison overstates its harm).
    fn selection_logit(self, first: Release, female: bool) -> f64 {
        let age = f64::from(first.age) - 33.0;
        let prior = f64::from(first.prior_offences) - 5.0;
        let sex = if female { 1.0 } else { 0.0 };
        let group = pools::OFFENCE_GROUPS[first.offence_group as usize].0;
        match self {
            Programme::Resettlement => f64::NEG_INFINITY,
            Programme::Mentoring => {
                let g = match group {
                    "violence" | "fraud" => 0.3,
                    "theft" => -0.2,
                    "drugs" => -0.1,
                    _ => 0.0,
                };
                -2.58 + 0.03 * age - 0.06 * prior + 0.5 * sex + g
            }
            Programme::Education => {
                let g = match group {
                    "drugs" => 0.2,
                    "theft" => 0.1,
                    _ => 0.0,
                };
                -5.22 - 0.06 * age + 0.3 * sex + g
            }
            Programme::BootCamp => {
                let g = match group {
                    "violence" => 0.4,
                    "public_order" => 0.3,
                    "fraud" => -0.6,
                    _ => 0.0,
                };
                -3.24 - 0.06 * age + 0.08 * prior - 1.2 * sex + g
            }
        }
    }

    /// Days from the programme start to the first release, from the programme stream.
    pub(crate) fn lead_days(self, rng: &mut ChaCha8Rng) -> Day {
        match self {
            Programme::Resettlement => 7 + rng.random_range(0..110),
            Programme::Mentoring => 14 + rng.random_range(0..120),
            Programme::Education => 30 + rng.random_range(0..150),
            Programme::BootCamp => 7 + rng.random_range(0..50),
        }
    }
}

/// A programme as `truth/programmes.json` describes it.
#[derive(Debug, Serialize)]
pub(crate) struct About {
    /// The file stem of its participant list.
    pub extract: &'static str,
    /// Its name.
    pub name: &'static str,
    /// Who runs it.
    pub organisation: &'static str,
    /// Its type (the dashboard's pooling group).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// What it was built to show: "works", "no effect", "too small to tell" or "harms".
    pub designed: &'static str,
}

/// Which new programme, if any, a spine person outside the resettlement programme joins, and
/// its start, drawn from the person's programme stream.
pub(crate) fn join_new(first: Release, female: bool, rng: &mut ChaCha8Rng) -> Option<(Programme, Day)> {
    let u: f64 = rng.random();
    let mut cumulative = 0.0;
    for programme in &Programme::ALL[1..] {
        cumulative += logistic(programme.selection_logit(first, female));
        if u < cumulative {
            return Some((*programme, first.date - programme.lead_days(rng)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resettlement_design_reads_as_before() {
        let d = Programme::Resettlement.design().describe();
        let expected = [
            "reoffending probability -0.06 (floored at 0) for the same draws",
            "employment probability +0.08 (capped at 0.98) for the same draws",
            "follows the employment effect; the first job also starts 45 days earlier",
            "claim probability -0.05 and claim length x0.75; a claim also ends when a job starts",
            "follows the reoffending effect: the number of reoffences in the window (the JDL's frequency)",
            "follows the employment effect: a job spell covers day 30 after the index date",
            "follows the employment effect: a job spell covers day 365 after the index date",
            "follows the reoffending effect: days to the first reoffence, 365 without one (restricted mean)",
        ];
        assert_eq!(d, expected);
    }

    #[test]
    fn every_programme_has_its_own_extract_and_design() {
        let check = |p: Programme, extract: &str, designed: &str, harms: bool| {
            let about = p.about();
            assert_eq!((about.extract, about.designed), (extract, designed));
            assert_eq!(p.design().reoffend > 0.0, harms, "{extract}");
            assert_eq!(Programme::ALL[p.index()], p);
        };
        check(Programme::Resettlement, "participants", "works", false);
        check(Programme::Mentoring, "mentoring", "no effect", false);
        check(Programme::Education, "education", "too small to tell", false);
        check(Programme::BootCamp, "bootcamp", "harms", true);
        assert_eq!(Programme::Mentoring.design(), Design::NONE);
        assert_eq!(crate::PROGRAMMES, Programme::ALL.map(|p| p.extract().name()));
        assert!(Programme::BootCamp.design().describe()[2].ends_with("30 days later"));
    }
}
