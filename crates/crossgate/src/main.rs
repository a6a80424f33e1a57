use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    crossgate::cli::Cli::parse().run()
}
