//! `patchfleet-agent scan`: the node's facts judged against a baseline, as
//! `patchfleet eval` would judge them (same engine, same report).

use crate::baseline_arg::{self, BaselineArgs};
use crate::collect::collect;
use crate::{CollectArgs, emit};
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use patchfleet_core::baseline::Baseline;
use patchfleet_core::eval::{
    CompiledBaseline, EvalOptions, InstallOutcome, Operation, PendingRebootScope, evaluate,
};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::report::{Report, ReportContext, render};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct ScanArgs {
    #[command(flatten)]
    baseline: BaselineArgs,
    #[command(flatten)]
    collect: CollectArgs,
    /// Evaluation instant (RFC 3339); default: now.
    #[arg(long)]
    at: Option<Timestamp>,
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Table output: also list InstalledOther packages.
    #[arg(long)]
    all: bool,
}

pub fn run(args: &ScanArgs) -> Result<ExitCode> {
    // A baseline named on the command line is checked before the scan.
    let chosen = args.baseline.explicit()?;
    let facts = collect(&args.collect)?;
    let baseline = baseline_arg::or_default(chosen, facts.os.operating_system)?;
    let at = args.at.unwrap_or_else(Timestamp::now);
    let report = judge(&facts, &baseline, at, ReportContext::default())?;
    match args.output {
        OutputFormat::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?,
        OutputFormat::Table => emit(&patchfleet_render::table(
            &report,
            baseline.name_or_empty(),
            args.all,
        ))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `facts` judged against `baseline` for a Scan at `at`; `context` names
/// what the report does not know (node, snapshot).
pub fn judge(
    facts: &NodeFacts,
    baseline: &Baseline,
    at: Timestamp,
    context: ReportContext,
) -> Result<Report> {
    let compiled = CompiledBaseline::compile(baseline)?;
    let inventory = Inventory::prepare(facts).context("the scanned facts")?;
    let options = EvalOptions {
        at: at.as_second(),
        operation: Operation::Scan,
        outcome: InstallOutcome::None,
        pending_reboot_scope: PendingRebootScope::AnyInstallAfterBoot,
    };
    let evaluation = evaluate(&compiled, &inventory, &options);
    let context = ReportContext {
        operation: "Scan".to_string(),
        operation_start: Some(at),
        operation_end: Some(at),
        ..context
    };
    Ok(render(&evaluation, &inventory, &compiled, &context))
}
