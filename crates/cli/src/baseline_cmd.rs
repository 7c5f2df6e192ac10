//! `patchfleet baseline …`: offline work on baseline files.

use crate::input::{parse_baseline, read_text};
use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Check a baseline file (JSON or YAML, SSM field names); exit status 1 when invalid.
    Validate {
        /// The baseline file, or - for standard input.
        file: PathBuf,
    },
}

pub fn run(cmd: &BaselineCommand) -> Result<ExitCode> {
    match cmd {
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
