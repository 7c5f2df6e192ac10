//! `patchfleet-agent scan`: the node's facts judged against a baseline, as
//! `patchfleet eval` would judge them (same engine, same report).

use crate::collect::collect;
use crate::{CollectArgs, emit};
use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use patchfleet_core::baseline::{Baseline, predefined};
use patchfleet_core::eval::{
    CompiledBaseline, EvalOptions, InstallOutcome, Operation, PendingRebootScope, evaluate,
};
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::report::{ReportContext, render};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct ScanArgs {
    /// Baseline file (JSON or YAML with SSM field names).
    #[arg(long, conflicts_with = "predefined")]
    baseline: Option<PathBuf>,
    /// A predefined baseline by name or id, e.g. AWS-DebianDefaultPatchBaseline.
    /// Default (neither flag): the predefined default of the node's operating system.
    #[arg(long)]
    predefined: Option<String>,
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
    let chosen = explicit_baseline(args)?;
    let facts = collect(&args.collect)?;
    let baseline = match chosen {
        Some(b) => b,
        None => default_baseline(facts.os.operating_system)?,
    };
    let compiled = CompiledBaseline::compile(&baseline)?;
    let inventory = Inventory::prepare(&facts).context("the scanned facts")?;
    let at = args.at.unwrap_or_else(Timestamp::now);
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
        ..ReportContext::default()
    };
    let report = render(&evaluation, &inventory, &compiled, &context);
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

/// The baseline of `--baseline` or `--predefined`, if either is given.
fn explicit_baseline(args: &ScanArgs) -> Result<Option<Baseline>> {
    if let Some(path) = &args.baseline {
        return load_baseline_file(path).map(Some);
    }
    if let Some(name) = &args.predefined {
        return predefined::by_id_or_name(name)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = predefined::all()
                    .iter()
                    .map(|b| b.name_or_empty())
                    .collect();
                anyhow!(
                    "no predefined baseline '{name}' (known: {})",
                    names.join(", ")
                )
            });
    }
    Ok(None)
}

/// The predefined default baseline of the node's operating system.
fn default_baseline(os: OperatingSystem) -> Result<Baseline> {
    predefined::default_for(os).cloned().ok_or_else(|| {
        anyhow!(
            "no predefined baseline for {}: give --baseline FILE",
            os.as_str()
        )
    })
}

/// YAML when the extension says so, or when the text does not start like JSON.
fn load_baseline_file(path: &Path) -> Result<Baseline> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let yaml = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => true,
        Some("json") => false,
        _ => !text.trim_start().starts_with('{'),
    };
    let parsed = if yaml {
        Baseline::from_yaml(&text)
    } else {
        Baseline::from_json(&text)
    };
    parsed.map_err(|e| anyhow!("{}: {e}", path.display()))
}
