//! The `linklab` binary: everything lives in `linklab-cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    linklab_cli::main()
}
