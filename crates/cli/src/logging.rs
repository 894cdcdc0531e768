//! Logs and progress: human text and progress bars on a terminal, JSON lines otherwise.

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
pub fn init(format: LogFormat, quiet: bool) -> bool {
    let human = match format {
        LogFormat::Auto => std::io::stderr().is_terminal(),
        LogFormat::Text => true,
        LogFormat::Json => false,
    };
    let default = if quiet { "warn" } else { "info" };
    let filter = EnvFilter::try_from_env("LINKLAB_LOG").unwrap_or_else(|_| EnvFilter::new(default));
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
