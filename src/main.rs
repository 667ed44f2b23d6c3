use std::process::ExitCode;

use clap::Parser;
use deflect::cli::{run, Cli};

fn main() -> ExitCode {
    run(Cli::parse())
}
