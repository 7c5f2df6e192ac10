//! `patchfleet`: offline tools today (eval, vercmp, baseline validate); the
//! server and the client verbs join as they are built. Each subcommand lives
//! in its own module; this file only parses the command line and dispatches.

mod baseline_cmd;
mod eval_cmd;
mod input;
mod vercmp_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "patchfleet",
    version,
    about = "Patch and vulnerability management for Linux fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a node's facts against a baseline, offline.
    Eval(eval_cmd::EvalArgs),
    /// Compare two package versions the way dpkg or rpm does.
    Vercmp(vercmp_cmd::VercmpArgs),
    /// Work with baseline files.
    #[command(subcommand)]
    Baseline(baseline_cmd::BaselineCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Vercmp(args) => vercmp_cmd::run(&args),
        Command::Baseline(cmd) => baseline_cmd::run(&cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("patchfleet: {err:#}");
            ExitCode::from(2)
        }
    }
}
