//! `patchfleet baseline …`: `validate` checks a file offline; the other
//! verbs work on the server's baselines (`verbs`).

use crate::input::{parse_baseline, read_text};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Check a baseline file (JSON or YAML, SSM field names), offline; exit
    /// status 1 when invalid.
    Validate {
        /// The baseline file, or - for standard input.
        file: PathBuf,
    },
    #[command(flatten)]
    Server(crate::verbs::BaselineClientCommand),
}

pub fn run(cmd: &BaselineCommand, client: &crate::client::ClientArgs) -> Result<ExitCode> {
    match cmd {
        BaselineCommand::Server(c) => crate::verbs::baseline(c, client),
        BaselineCommand::Validate { file } => {
            let baseline = match parse_baseline(file, &read_text(file)?) {
                Ok(b) => b,
                Err(e) => {
                    println!("invalid: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            for warning in baseline.warnings() {
                println!("warning: {warning}");
            }
            match baseline.validate() {
                Ok(()) => {
                    println!(
                        "valid: {} ({})",
                        baseline.name_or_empty(),
                        baseline.operating_system
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    println!("invalid: {}: {errors}", file.display());
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
