//! `report.html`: one self-contained page built only from the three published CSV files (and a
//! few settings), so that it discloses nothing they do not; the one addition is the overlap
//! chart of propensity scores, drawn from densities of bars that each hold at least the
//! threshold of persons (see [`overlap`]), never a count.

use std::fmt::Write as _;

mod charts;
mod headlines;
mod overlap;
mod tables;

use charts::{forest_chart, km_chart, love_plot};
use headlines::headline_rows;
#[cfg(test)]
pub(crate) use headlines::headlines;
use headlines::multiple_outcomes_note;
pub(crate) use overlap::overlap;
pub use overlap::{Bar, Overlap};

use crate::csv::Table;
use crate::figures::place;

/// The method note's sentence on the index event.
fn index_sentence(meta: &ReportMeta) -> String {
    let index = &meta.index_event;
    match meta.programme_start_days_before {
        None => format!("Each person’s index event is their earliest {index} in the cohort."),
        Some(days) => format!(
            "Each person’s index event is their earliest {index} in the cohort, except for people who took part: theirs is their first {index} on or after the start of the programme, or else their last in the {days} days before it."
        ),
    }
}

/// Settings and (already disclosure-controlled) sample counts shown in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMeta {
    /// The page title.
    pub title: String,
    /// The index event in words, e.g. "release".
    pub index_event: String,
    /// Length of the follow-up window in days.
    pub follow_up_days: u32,
    /// The disclosure threshold applied.
    pub threshold: u64,
    /// The caliper in SDs of the logit of the propensity score.
    pub caliper: f64,
    /// Comparisons per treated person.
    pub ratio: usize,
    /// Whether comparisons could be reused.
    pub replacement: bool,
    /// Treated persons in the cohort before matching (a published cell: a count or `[c]`).
    pub treated_eligible: String,
    /// Untreated persons in the cohort (a published cell).
    pub untreated_eligible: String,
    /// Treated persons dropped by the caliper (a published cell: a count, `0` or `[c]`).
    pub dropped_by_caliper: String,
    /// False when a propensity model was fitted but did not converge: the report then says that
    /// the scores are the last estimate and the results are to be read with caution.
    pub model_converged: bool,
    /// Outcomes measured over another window than `follow_up_days`, by name: their own
    /// follow-up, and for `spell_at` the day read.
    pub outcome_windows: std::collections::BTreeMap<String, (u32, Option<u32>)>,
    /// Set by [`ReportMeta::for_outcome`] for a `spell_at` outcome: the day it reads.
    pub day: Option<u32>,
    /// The propensity scores of both groups before matching, as densities of bars that each
    /// hold at least `threshold` persons; `None`: no overlap chart.
    pub overlap: Option<Overlap>,
    /// `data_cutoff` as days since 1970-01-01, for the method note.
    pub data_cutoff: Option<i32>,
    /// Whether deaths censor follow-up (`[evaluate] deaths`), for the method note.
    pub deaths: bool,
    /// With `[evaluate] treatment_date`, a treated person's index event follows their programme
    /// start, or lies at most this many days before it (for the method note); `None`: it does not.
    pub programme_start_days_before: Option<i32>,
}

impl ReportMeta {
    /// The settings as they apply to one outcome (its own follow-up and day).
    fn for_outcome(&self, name: &str) -> ReportMeta {
        let mut meta = self.clone();
        if let Some(&(follow_up, day)) = self.outcome_windows.get(name.strip_prefix('\'').unwrap_or(name)) {
            meta.follow_up_days = follow_up;
            meta.day = day;
        }
        meta
    }
}

const TREATED_COLOUR: &str = "#1d70b8";
const COMPARISON_COLOUR: &str = "#b35c00";

/// Escapes text for HTML and SVG content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An outcome name in words: underscores become spaces, and a leading `'` (the CSV formula
/// guard) is dropped.
fn label(name: &str) -> String {
    name.strip_prefix('\'').unwrap_or(name).replace('_', " ")
}

/// The attribute that marks an element printing the figures of `places` (see
/// [`crate::figures::place`]): the release stage writes `[c]` as its content when it withholds
/// one of them. Empty when there are none.
fn marker(places: &[String]) -> String {
    if places.is_empty() {
        String::new()
    } else {
        format!(" data-figure=\"{}\"", esc(&places.join(" ")))
    }
}

/// `html` inside a `<tag>` marked with `places`.
fn marked(tag: &str, places: &[String], html: &str) -> String {
    format!("<{tag}{}>{html}</{tag}>", marker(places))
}

/// A count of the report's own prose, marked with its place (`report.html:<what>:<value>`).
fn prose_count(what: &str, value: &str, count: &str) -> String {
    marked(
        "span",
        &[crate::figures::place("report.html", what, value)],
        &esc(count),
    )
}

/// Whether a published cell is a count that may be printed in a sentence.
fn printable(cell: &str) -> bool {
    !cell.is_empty() && cell.bytes().all(|b| b.is_ascii_digit())
}

/// The method note's sentence on the groups, as HTML: their sizes only when both are safe to
/// print (never "[c] people" inside a sentence), each marked as a figure.
fn groups_sentence(meta: &ReportMeta) -> String {
    if printable(&meta.treated_eligible) && printable(&meta.untreated_eligible) {
        format!(
            "People who took part ({} in the cohort) were compared with people who did not ({}).",
            prose_count("eligible", "true", &meta.treated_eligible),
            prose_count("eligible", "false", &meta.untreated_eligible)
        )
    } else {
        "People who took part were compared with people who did not (the sizes of the groups before matching are not shown, to protect confidentiality).".to_owned()
    }
}

/// The method note's sentence on the treated persons left out by the caliper, as HTML (a
/// count marked as a figure).
fn dropped_sentence(meta: &ReportMeta) -> String {
    match meta.dropped_by_caliper.as_str() {
        "0" => "every person who took part had a close enough match.".to_owned(),
        n if printable(n) => format!(
            "{} people who took part had no close enough match and were left out.",
            prose_count("dropped", "true", n)
        ),
        _ => "people who took part with no close enough match were left out (how many is not shown, to protect confidentiality).".to_owned(),
    }
}

/// The method note's sentences on incomplete follow-up: the data cut-off and deaths, when set.
fn follow_up_sentence(meta: &ReportMeta) -> String {
    let mut out = String::new();
    let cutoff = meta
        .data_cutoff
        .and_then(arrow::temporal_conversions::date32_to_datetime)
        .map(|d| d.format("%-d %B %Y").to_string());
    if let Some(day) = cutoff {
        let _ = write!(
            out,
            " The data cover events up to {day} (the data cut-off). A person whose follow-up runs past it is left out of the outcomes measured over the whole follow-up (or on a day after the cut-off), and is counted up to the cut-off and no further in the time to the first event; so each outcome is measured on its own number of people, shown in the table of impact estimates."
        );
    }
    if meta.deaths {
        out.push_str(" A person who died during their follow-up is left out of the outcomes measured over the whole follow-up (or on a day after their death), and is counted up to their death and no further in the time to the first event.");
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;line-height:1.5;color:#0b0c0c;margin:0;padding:1rem;background:#fff}\
main{max-width:60rem;margin:0 auto}h1{font-size:1.8rem;margin:.5rem 0 1rem}h2{font-size:1.3rem;margin-top:2rem;border-top:1px solid #b1b4b6;padding-top:1rem}\
.headline{font-size:1.15rem;border-left:5px solid #1d70b8;padding:.25rem 0 .25rem 1rem;margin:1rem 0}\
svg{width:100%;height:auto;max-width:40rem;display:block;margin:1rem 0;font-size:12px}svg text{fill:#0b0c0c}\
.axis{fill:#505a5f;font-size:11px}.legend{font-size:12px}.zero{stroke:#0b0c0c;stroke-width:1}.guide{stroke:#b1b4b6;stroke-dasharray:4 3}.grid{stroke:#e5e6e7;stroke-width:1}.whisker{stroke:#0b0c0c;stroke-width:1.5}\
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}caption{text-align:left;font-weight:600;padding:.25rem 0}\
th,td{border-bottom:1px solid #b1b4b6;padding:.3rem .6rem;text-align:left;white-space:nowrap}th{background:#f3f2f1}\
.note{color:#505a5f;font-size:.95rem}@media (max-width:40rem){body{padding:.5rem}h1{font-size:1.4rem}.headline{font-size:1rem}}";

/// A bar of the forest chart: outcome, difference, and its interval.
type ForestBar = (String, f64, f64, f64);

/// The chart sections: differences, Kaplan–Meier curves and the balance (love) plot. A chart's
/// axes follow every value it plots, so each is marked with all their places.
fn charts(impact: &Table, survival: &Table, balance: &Table, meta: &ReportMeta) -> String {
    let mut page = String::new();
    let collect = |measure: &str| -> (Vec<ForestBar>, Vec<String>) {
        impact
            .rows()
            .enumerate()
            .filter(|(_, r)| r.get("measure") == measure)
            .filter_map(|(i, r)| {
                let bar = (
                    r.get("outcome").to_owned(),
                    r.num("difference")?,
                    r.num("ci_low")?,
                    r.num("ci_high")?,
                );
                Some((bar, i))
            })
            .fold((Vec::new(), Vec::new()), |(mut bars, mut places), (bar, i)| {
                bars.push(bar);
                places.extend(["difference", "ci_low", "ci_high"].map(|c| place("impact.csv", i, c)));
                (bars, places)
            })
    };
    let (rates, rate_places) = collect("rate");
    let (days, day_places) = collect("mean_days");
    if !rates.is_empty() || !days.is_empty() {
        page.push_str("<section aria-labelledby=\"h-diff\"><h2 id=\"h-diff\">Differences with 95% confidence intervals</h2>");
        page.push_str("<p class=\"note\">Bars show the difference between people who took part and the matched comparison group; whiskers show the 95% confidence interval. A whisker that crosses the zero line means the difference could be due to chance.</p>");
        if !rates.is_empty() {
            let chart = forest_chart(&rates, "percentage points", 100.0);
            page.push_str(&marked("div", &rate_places, &chart));
        }
        if !days.is_empty() {
            let chart = forest_chart(&days, "days per person", 1.0);
            page.push_str(&marked("div", &day_places, &chart));
        }
        page.push_str("</section>");
    }

    let mut km_outcomes: Vec<&str> = survival.rows().map(|r| r.get("outcome")).collect();
    km_outcomes.dedup();
    if !km_outcomes.is_empty() {
        page.push_str(
            "<section aria-labelledby=\"h-km\"><h2 id=\"h-km\">Time to first event (Kaplan–Meier)</h2>",
        );
        for name in km_outcomes {
            let _ = write!(page, "<h3>{}</h3>", esc(&label(name)));
            let places: Vec<String> = survival
                .rows()
                .enumerate()
                .filter(|(_, r)| r.get("outcome") == name)
                .flat_map(|(i, _)| ["at_risk", "events", "survival"].map(|c| place("survival.csv", i, c)))
                .collect();
            let chart = km_chart(name, survival, meta.follow_up_days);
            page.push_str(&marked("div", &places, &chart));
        }
        let _ = write!(
            page,
            "<p class=\"note\">The share of each group without the event, by days since the index date. Steps are shown only where at least {} people were at risk and at least {} had the event (days are pooled until they are).</p></section>",
            meta.threshold, meta.threshold
        );
    }

    let love = love_plot(balance);
    if !love.is_empty() {
        page.push_str(
            "<section aria-labelledby=\"h-balance\"><h2 id=\"h-balance\">How similar the groups are</h2>",
        );
        page.push_str("<p class=\"note\">Standardised mean differences of each characteristic between people who took part and the others, before matching (hollow) and after matching (filled). Values between the dashed lines (−0.1 to 0.1) are usually taken as good balance.</p>");
        let places: Vec<String> = (0..balance.rows().count())
            .flat_map(|i| ["smd_before", "smd_after"].map(|c| place("balance.csv", i, c)))
            .collect();
        page.push_str(&marked("div", &places, &love));
        page.push_str("</section>");
    }
    page
}

/// Renders the report page from the contents of `impact.csv`, `balance.csv` and `survival.csv`
/// and the settings in `meta`. Every piece of text is escaped; the page makes no external
/// requests (no fonts, scripts, styles or images from elsewhere).
pub fn render_report(impact_csv: &str, balance_csv: &str, survival_csv: &str, meta: &ReportMeta) -> String {
    let impact = Table::parse(impact_csv);
    let balance = Table::parse(balance_csv);
    let survival = Table::parse(survival_csv);
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    page.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    let _ = write!(
        page,
        "<title>{}</title><style>{STYLE}</style></head><body><main>",
        esc(&meta.title)
    );
    let _ = write!(page, "<h1>{}</h1>", esc(&meta.title));
    page.push_str("<section aria-labelledby=\"h-results\"><h2 id=\"h-results\">Headline results</h2>");
    for (sentence, row) in headline_rows(&impact, meta) {
        // A sentence tells the values of its row, and nothing else that is withheld.
        let places: Vec<String> = row.map_or_else(Vec::new, crate::figures::value_places);
        let _ = write!(
            page,
            "<p class=\"headline\"{}>{}</p>",
            marker(&places),
            esc(&sentence)
        );
    }
    if let Some(note) = multiple_outcomes_note(&impact) {
        let _ = write!(page, "<p class=\"note\">{}</p>", esc(&note));
    }
    page.push_str("</section>");

    page.push_str(&charts(&impact, &survival, &balance, meta));
    page.push_str(&overlap::overlap_section(meta.overlap.as_ref(), meta.threshold));

    page.push_str("<section aria-labelledby=\"h-tables\"><h2 id=\"h-tables\">Tables</h2>");
    page.push_str(&tables::impact_table(&impact));
    page.push_str(&tables::balance_table(&balance));
    if !survival.is_empty() {
        let _ = write!(
            page,
            "<details><summary>Kaplan–Meier steps</summary>{}</details>",
            tables::survival_table(&survival)
        );
    }
    page.push_str("</section>");

    page.push_str("<section aria-labelledby=\"h-method\"><h2 id=\"h-method\">Method</h2><p class=\"note\">");
    let matching = format!(
        "{}:1 {} replacement",
        meta.ratio,
        if meta.replacement { "with" } else { "without" }
    );
    let _ = write!(
        page,
        "{index_sentence} {groups} \
A propensity score (the chance of taking part given the characteristics in the balance table) was estimated by logistic regression, and each person who took part was matched to the nearest person who did not on the logit of that score ({matching}, within {caliper} standard deviations); {dropped} \
Outcomes are measured over the {days} days after the index date.{follow_up} For 1:1 matching without replacement, confidence intervals and p-values use the paired differences within matched pairs (paired t-test for days, normal interval for rates); otherwise weighted comparison means with Welch’s t-test or a two-proportion z-test. Time to the first event is compared with Kaplan–Meier curves and the log-rank test. \
Holm’s method adjusts the p-values for the number of results tested. The E-value of a significant result (VanderWeele and Ding, 2017) is the smallest risk ratio by which an unmeasured characteristic would have to be linked to both taking part and the outcome to explain the result away; for a difference of rates it is computed from the ratio of the rates, and for a difference of means from the ratio of the means (an approximation). \
To protect confidentiality, counts below {threshold} and results built on fewer than {threshold} people with or without an outcome are shown as [c].{convergence}",
        index_sentence = esc(&index_sentence(meta)),
        groups = groups_sentence(meta),
        matching = esc(&matching),
        caliper = meta.caliper,
        dropped = dropped_sentence(meta),
        days = meta.follow_up_days,
        follow_up = esc(&follow_up_sentence(meta)),
        threshold = meta.threshold,
        convergence = if meta.model_converged {
            ""
        } else {
            " Caution: the fit of the propensity model did not converge (it stopped before its estimates settled). The scores are its last estimate, so the matches, and every result above, should be read with caution."
        },
    );
    page.push_str("</p></section></main></body></html>\n");
    page
}
