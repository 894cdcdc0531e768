//! The `linklab` command line: argument types, dispatch, the stage runner, logging and exit
//! codes. The binary's `main` calls [`main`].
#![forbid(unsafe_code)]

mod args;
mod commands;
mod error;
mod exit;
mod logging;
mod programmes;
mod runner;
mod stages;
mod summary;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command, EXIT_CODES};
pub use error::CliError;
pub use exit::Exit;

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] with the given arguments (the first is the program name), for tools that embed
/// the command line, such as the benchmark.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    install_panic_hook();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are successes; a wrong command line is a usage error (exit 1).
            let code = if e.use_stderr() {
                Exit::BadInput
            } else {
                Exit::Success
            };
            let _ = e.print();
            return code.into();
        }
    };
    let human = logging::init(cli.log_format, cli.quiet, cli.verbose);
    match std::panic::catch_unwind(|| commands::dispatch(cli, human)) {
        Ok(Ok(())) => Exit::Success.into(),
        Ok(Err(error)) => {
            let message = error.chain();
            if human {
                eprintln!("error: {message}");
            } else {
                tracing::error!(exit_code = error.exit() as u8, "{message}");
            }
            error.exit().into()
        }
        Err(_) => Exit::Internal.into(),
    }
}

/// A panic reports where it happened, never its message: a message could carry a value.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map_or_else(|| "an unknown place".to_owned(), ToString::to_string);
        eprintln!(
            "internal error: linklab stopped at {place}; this is a bug, please report it (the panic message is withheld because it could contain data)"
        );
    }));
}
