//! Logs and progress: progress bars and a summary on a terminal, JSON lines otherwise.
//!
//! On a terminal (`--log-format auto`) the view is the progress bars, warnings and the summary
//! the commands print on stdout; the info log lines appear only with `-v`. `--log-format text`
//! writes them as readable lines, and JSON lines (for schedulers) carry them by default.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use linklab_store::Progress;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::args::LogFormat;

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Sets up logging once for the process. Returns whether output is for a human.
pub fn init(format: LogFormat, quiet: bool, verbose: u8) -> bool {
    let terminal = std::io::stderr().is_terminal();
    let human = match format {
        LogFormat::Auto => terminal,
        LogFormat::Text => true,
        LogFormat::Json => false,
    };
    let level = default_level(format == LogFormat::Auto && terminal, quiet, verbose);
    let filter = EnvFilter::try_from_env("LINKLAB_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BarAwareStderr);
    let result = if human {
        builder
            .without_time()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
    // A second init (tests calling `run` twice) keeps the first subscriber.
    drop(result);
    if human {
        BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    }
    human
}

/// The log level unless `LINKLAB_LOG` sets a filter. The terminal view (`auto` on a terminal)
/// keeps to progress bars, warnings and the summary; every other view logs from `info` on.
fn default_level(terminal_view: bool, quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) if terminal_view => "warn",
        (false, 0 | 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    }
}

/// Writes log lines to stderr, pausing the progress bars while it does.
#[derive(Debug, Clone, Copy)]
struct BarAwareStderr;

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Progress shown as a bar on a terminal, or as start/finish log events otherwise.
#[derive(Debug, Default)]
pub struct CliProgress {
    bar: Mutex<Option<(ProgressBar, String)>>,
}

impl Progress for CliProgress {
    fn start(&self, phase: &str, total: Option<u64>) {
        self.finish();
        let bar = if let Some(bars) = BARS.get() {
            let bar = match total {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg:<28} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {eta})",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg:<28} {human_pos} ({per_sec})")
                        .expect("the template is valid"),
                ),
            };
            let bar = bars.add(bar);
            bar.set_message(phase.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            tracing::info!(phase, total, "started");
            ProgressBar::hidden()
        };
        *self.bar.lock().expect("progress lock is not poisoned") = Some((bar, phase.to_owned()));
    }

    fn advance(&self, n: u64) {
        if let Some((bar, _)) = self.bar.lock().expect("progress lock is not poisoned").as_ref() {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some((bar, phase)) = self.bar.lock().expect("progress lock is not poisoned").take() {
            if bar.is_hidden() {
                tracing::info!(phase = %phase, done = bar.position(), "finished");
            }
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::default_level;

    fn check(terminal_view: bool, quiet: bool, verbose: u8, expected: &str) {
        assert_eq!(
            default_level(terminal_view, quiet, verbose),
            expected,
            "terminal view {terminal_view}, quiet {quiet}, verbose {verbose}"
        );
    }

    #[test]
    fn the_terminal_view_logs_only_warnings_unless_asked() {
        check(true, false, 0, "warn");
        check(true, false, 1, "info");
        check(true, false, 2, "debug");
        check(true, true, 0, "warn");
    }

    #[test]
    fn text_and_json_logs_keep_the_info_lines() {
        check(false, false, 0, "info");
        check(false, false, 1, "info");
        check(false, false, 2, "debug");
        check(false, false, 3, "trace");
        check(false, true, 0, "warn");
    }
}
