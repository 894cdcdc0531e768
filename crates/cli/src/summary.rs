//! The summary `run` ends with: where it wrote what, the headline results and the report.
//!
//! The headline results are read back from the released `impact.csv`, so they are exactly what
//! passed disclosure control (suppressed cells stay `[c]`), and a rerun that skips every stage
//! shows them too.

use std::path::Path;

use linklab_pipeline::Pipeline;
use linklab_store::WorkDir;

/// The evaluation's published results in the release folder.
const IMPACT: &str = "impact.csv";
/// The report in the release folder.
const REPORT: &str = "report.html";
/// A suppressed cell of a released file.
const SUPPRESSED: &str = linklab_evaluate::SUPPRESSED;

/// Prints where the run wrote what, then the headline results and the path of the report.
pub fn print_run_summary(p: &Pipeline) {
    let work = WorkDir::new(&p.settings.work_dir);
    let release_dir = &p.settings.release_dir;
    println!();
    println!("secure area (work_dir): {}", work.root().display());
    println!(
        "  pseudonymised extracts: {}",
        work.root().join("pseudonymised").display()
    );
    println!("  linked data and linkage report: {}", work.linked().display());
    if p.evaluate.is_some() {
        println!("  analysis frame: {}", work.evaluation().display());
    }
    println!("  disclosure audit trail: {}", work.release_audit().display());
    println!(
        "release folder (the only output meant to leave): {}",
        release_dir.display()
    );
    let dirs = crate::programmes::programmes(p);
    if dirs.is_empty() {
        return;
    }
    let several = crate::programmes::several(p);
    for d in &dirs {
        let impact = d.release.join(IMPACT);
        if impact.is_file() {
            println!();
            let name = d.meta.map_or(d.extract, |m| m.name.as_str());
            let whose = if several {
                format!("{name}: ")
            } else {
                String::new()
            };
            println!(
                "{whose}headline results (participants against their matched comparison group, as released):"
            );
            match headlines(&impact) {
                Some(lines) => lines.iter().for_each(|line| println!("  {line}")),
                None => println!("  cannot read {}", impact.display()),
            }
        }
        let report = d.release.join(REPORT);
        if report.is_file() {
            println!("  report: {}", report.display());
        }
    }
    let index = crate::programmes::index_page(release_dir);
    if several && index.is_file() {
        println!();
        println!("dashboard of the {} programmes: {}", dirs.len(), index.display());
    }
}

/// One line per released result of `impact.csv`, or `None` if it cannot be read.
fn headlines(impact: &Path) -> Option<Vec<String>> {
    let mut reader = csv::Reader::from_path(impact).ok()?;
    let header = reader.headers().ok()?.clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    // Every column of `impact.csv` but the group sizes, in order: outcome, measure, the two
    // values, the difference, the interval and the p-value.
    let shown: Vec<&str> = linklab_evaluate::IMPACT_COLUMNS
        .into_iter()
        .filter(|c| !c.ends_with("_persons"))
        .collect();
    let columns: Vec<Option<usize>> = shown.iter().map(|c| column(c)).collect();
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().ok()?;
    let rows: Vec<Row<'_>> = records
        .iter()
        .map(|record| {
            let field = |i: usize| columns[i].and_then(|c| record.get(c)).unwrap_or("");
            Row {
                outcome: field(0),
                measure: field(1),
                treated: field(2),
                comparison: field(3),
                difference: field(4),
                ci: (field(5), field(6)),
                p_value: field(7),
            }
        })
        .collect();
    // A time-to-event outcome reads as its log-rank line only (the report also gives its
    // restricted mean and conditional mean days).
    let time_to_event: Vec<&str> = rows
        .iter()
        .filter(|r| r.measure == "log_rank")
        .map(|r| r.outcome)
        .collect();
    let lines = rows
        .iter()
        .filter(|r| {
            let extra = ["mean_days", "rmst", "mean_days_if_event"].contains(&r.measure)
                && time_to_event.contains(&r.outcome);
            // An event count reads as its per-100 line.
            !extra && r.measure != "count_mean"
        })
        .map(Row::line)
        .collect();
    Some(lines)
}

/// One row of `impact.csv`, as text.
#[derive(Debug)]
struct Row<'a> {
    outcome: &'a str,
    measure: &'a str,
    treated: &'a str,
    comparison: &'a str,
    difference: &'a str,
    ci: (&'a str, &'a str),
    p_value: &'a str,
}

impl Row<'_> {
    fn line(&self) -> String {
        let name = self.outcome;
        if self.measure == "no_estimate" {
            // The reason is published in the treated value's place.
            return format!("{name}: no estimate: {}", self.treated);
        }
        if [self.treated, self.comparison, self.difference].contains(&SUPPRESSED) {
            return format!("{name}: not shown, the numbers are too small to publish safely");
        }
        let p = p_text(self.p_value);
        match self.measure {
            "rate" => format!(
                "{name}: {} against {}, a difference of {} percentage points (95% CI {} to {}){p}",
                percent(self.treated),
                percent(self.comparison),
                scaled(self.difference, 100.0),
                scaled(self.ci.0, 100.0),
                scaled(self.ci.1, 100.0),
            ),
            "mean_days" => format!(
                "{name}: {} against {} days on average, a difference of {} days (95% CI {} to {}){p}",
                scaled(self.treated, 1.0),
                scaled(self.comparison, 1.0),
                scaled(self.difference, 1.0),
                scaled(self.ci.0, 1.0),
                scaled(self.ci.1, 1.0),
            ),
            "count_per_100" => format!(
                "{name}: {} against {} per 100 people, a difference of {} (95% CI {} to {}){p}",
                scaled(self.treated, 1.0),
                scaled(self.comparison, 1.0),
                scaled(self.difference, 1.0),
                scaled(self.ci.0, 1.0),
                scaled(self.ci.1, 1.0),
            ),
            "log_rank" => format!(
                "{name}: {} against {} had the event within the follow-up (log-rank test){p}",
                event_percent(self.treated),
                event_percent(self.comparison),
            ),
            other => format!(
                "{name} ({other}): {} against {}{p}",
                self.treated, self.comparison
            ),
        }
    }
}

/// A released number times `factor`, with one decimal; other text as it is.
fn scaled(value: &str, factor: f64) -> String {
    value
        .parse::<f64>()
        .map_or_else(|_| value.to_owned(), |v| format!("{:.1}", v * factor))
}

/// A released proportion as a percentage.
fn percent(value: &str) -> String {
    format!("{}%", scaled(value, 100.0))
}

/// A released survival proportion as the percentage who had the event.
fn event_percent(value: &str) -> String {
    value
        .parse::<f64>()
        .map_or_else(|_| value.to_owned(), |v| format!("{:.1}%", (1.0 - v) * 100.0))
}

/// `, p = 0.012` or `, p < 0.001`; nothing when there is no p-value.
fn p_text(value: &str) -> String {
    match value.parse::<f64>() {
        Ok(p) if p < 0.001 => ", p < 0.001".to_owned(),
        Ok(p) => format!(", p = {p:.3}"),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::headlines;

    /// `rows` of `impact.csv` under its header read as `expected` headlines.
    fn check(rows: &str, expected: &[&str]) {
        let dir = tempfile::tempdir().expect("a scratch folder");
        let path = dir.path().join("impact.csv");
        let header = linklab_evaluate::IMPACT_COLUMNS.join(",");
        std::fs::write(&path, format!("{header}\n{rows}")).expect("write");
        assert_eq!(headlines(&path).expect("readable"), expected);
    }

    #[test]
    fn each_measure_reads_as_one_line() {
        check(
            "reoffended,rate,1200,1200,0.3125,0.3850,-0.0725,-0.1100,-0.0350,0.0002,0.0010\n\
                 days_employed,mean_days,1200,1200,120.25,101.5,18.75,9.5,28.0,0.0312,0.0624\n\
                 time_to_reoffence,log_rank,1200,1200,0.70,0.62,0.08,,,0.2,0.2\n\
                 time_to_reoffence,rmst,1200,1200,319.3,307.3,12.0,6.2,17.9,0.0001,0.0005\n\
                 time_to_reoffence,mean_days_if_event,1200,1200,190.2,180.1,10.1,1.2,19.0,0.03,\n\
                 reoffences,count_mean,1200,1200,0.8000,1.1000,-0.3000,-0.5000,-0.1000,0.0040,0.0120\n\
                 reoffences,count_per_100,1200,1200,80.00,110.00,-30.00,-50.00,-10.00,0.0040,0.0120\n",
            &[
                "reoffended: 31.2% against 38.5%, a difference of -7.2 percentage points (95% CI -11.0 to -3.5), p < 0.001",
                "days_employed: 120.2 against 101.5 days on average, a difference of 18.8 days (95% CI 9.5 to 28.0), p = 0.031",
                "time_to_reoffence: 30.0% against 38.0% had the event within the follow-up (log-rank test), p = 0.200",
                "reoffences: 80.0 against 110.0 per 100 people, a difference of -30.0 (95% CI -50.0 to -10.0), p = 0.004",
            ],
        );
    }

    #[test]
    fn suppressed_and_missing_estimates_say_so() {
        check(
            "reoffended,rate,[c],[c],[c],[c],[c],[c],[c],[c],[c]\n\
                 benefits,no_estimate,8,900,too few participants,,,,,,\n",
            &[
                "reoffended: not shown, the numbers are too small to publish safely",
                "benefits: no estimate: too few participants",
            ],
        );
    }
}
