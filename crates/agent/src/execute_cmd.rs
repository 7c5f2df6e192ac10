//! `patchfleet-agent execute` (hidden): one invocation run by the same
//! executor and journal as under `run`, without a server — the invocation
//! from a file, its report on standard output. SIGTERM or SIGINT cancels
//! it. Running it again with the same invocation resumes it (after a
//! reboot) or prints its stored result; it never runs twice. For tests and
//! diagnosis: the state directory must be given, and must not be the one a
//! running `run` owns.

use crate::executor::{Ended, ExecArgs, Executor};
use crate::invocation_report::{in_progress, terminal};
use crate::journal::{Begin, Invocation, Sidecar};
use crate::{CollectArgs, emit};
use anyhow::{Context, Result, anyhow};
use clap::Args;
use patchfleet_protocol::CommandInvocation;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ExecuteArgs {
    /// The invocation (the `parameters` of a `run-patch-baseline` work item, JSON).
    #[arg(long)]
    pub invocation: PathBuf,
    /// The journal's state directory.
    #[arg(long)]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

pub fn run(args: &ExecuteArgs) -> Result<ExitCode> {
    let path = &args.invocation;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let inv: CommandInvocation =
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let executor = Executor::new(
        args.state_dir.clone(),
        args.collect.clone(),
        args.exec.clone(),
    )?;
    let journal = executor.journal().clone();
    let id = inv.invocation_id.clone();
    let entry = Invocation {
        invocation_id: id.clone(),
        command_id: inv.command_id.clone(),
        document: serde_json::to_value(&inv)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("starting the runtime: {e}"))?;
    let ended = match journal.begin(&entry)? {
        Begin::AlreadyKnown(rec) if rec.is_finished() => Ended::Finished(rec),
        // New, or interrupted (by a reboot, a stop): run or resume.
        _ => runtime.block_on(executor.run_step(&id, async {
            crate::run_cmd::shutdown_signal().await;
        }))?,
    };
    let report = match &ended {
        Ended::Finished(rec) => {
            // No server to take the facts or acknowledge the result.
            for kind in [Sidecar::Facts, Sidecar::ScanSummary] {
                let _ = std::fs::remove_file(journal.sidecar(&id, kind)?);
            }
            journal.mark_reported(&id)?;
            terminal(rec).ok_or_else(|| anyhow!("invocation {id}: finished without a result"))?
        }
        Ended::AwaitingReboot(rec) => {
            crate::collect::info(&format!(
                "invocation {id}: waiting for the node to reboot; run this again after it has"
            ));
            in_progress(rec)
        }
    };
    emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    Ok(ExitCode::SUCCESS)
}
