//! `patchfleet eval`: judge a node's facts against a baseline, offline,
//! with the same engine the server and the agent use.

use crate::input::{load_baseline, load_facts, read_text};
use anyhow::{Context, Result, anyhow};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use patchfleet_core::baseline::{
    parse_baseline_override, parse_install_override_list, select_override,
};
use patchfleet_core::eval::{
    CompiledBaseline, CompiledOverride, EvalOptions, InstallOutcome, Operation, PendingRebootScope,
    evaluate,
};
use patchfleet_core::inventory::Inventory;
use patchfleet_core::report::{ReportContext, render};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OperationArg {
    Scan,
    Install,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Baseline file (JSON or YAML with SSM field names).
    #[arg(
        long,
        conflicts_with_all = ["predefined", "baseline_override"],
        required_unless_present_any = ["predefined", "baseline_override"]
    )]
    baseline: Option<PathBuf>,
    /// BaselineOverride document: a JSON array of baselines; the entry for
    /// the node's operating system is used.
    #[arg(long, conflicts_with_all = ["predefined", "install_override_list"])]
    baseline_override: Option<PathBuf>,
    /// A predefined baseline by name or id, e.g. AWS-UbuntuDefaultPatchBaseline.
    #[arg(long)]
    predefined: Option<String>,
    /// Node facts (JSON, docs/facts.schema.json), or - for standard input.
    #[arg(long)]
    facts: PathBuf,
    /// Evaluation instant (RFC 3339); default: now.
    #[arg(long)]
    at: Option<Timestamp>,
    /// Scan reports states; Install also prints the install plan.
    #[arg(long, value_enum, default_value = "scan")]
    operation: OperationArg,
    /// InstallOverrideList document (YAML `patches:` list); with --operation install.
    #[arg(long, requires = "operation")]
    install_override_list: Option<PathBuf>,
    /// Which installs count as pending a reboot.
    #[arg(long, value_enum, default_value = "any-install-after-boot")]
    pending_reboot_scope: ScopeArg,
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// Table output: also list InstalledOther packages.
    #[arg(long)]
    all: bool,
    /// Also list the NotApplicable packages (approved, not installed), which
    /// are otherwise only counted.
    #[arg(long)]
    not_applicable: bool,
    /// Node id shown in the summary.
    #[arg(long, default_value = "")]
    instance_id: String,
    /// Patch group shown in the summary.
    #[arg(long, default_value = "")]
    patch_group: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    PatchManagerOnly,
    AnyInstallAfterBoot,
}

pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    let facts = load_facts(&args.facts)?;
    let baseline = match &args.baseline_override {
        Some(path) => {
            let entries = parse_baseline_override(&read_text(path)?)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            select_override(&entries, facts.os.operating_system)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
                .clone()
        }
        None => load_baseline(args.baseline.as_deref(), args.predefined.as_deref())?,
    };
    let compiled = CompiledBaseline::compile(&baseline)?;
    let inventory =
        Inventory::prepare(&facts).with_context(|| format!("{}", args.facts.display()))?;
    let override_list = match &args.install_override_list {
        Some(path) => {
            let list = parse_install_override_list(&read_text(path)?)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Some(CompiledOverride::new(&list))
        }
        None => None,
    };
    let at = args.at.unwrap_or_else(Timestamp::now);
    let operation = match args.operation {
        OperationArg::Scan => Operation::Scan,
        OperationArg::Install => Operation::Install {
            override_list: override_list.as_ref(),
        },
    };
    let options = EvalOptions {
        at: at.as_second(),
        operation,
        outcome: InstallOutcome::None,
        pending_reboot_scope: match args.pending_reboot_scope {
            ScopeArg::PatchManagerOnly => PendingRebootScope::PatchManagerOnly,
            ScopeArg::AnyInstallAfterBoot => PendingRebootScope::AnyInstallAfterBoot,
        },
    };
    let evaluation = evaluate(&compiled, &inventory, &options);
    let context = ReportContext {
        instance_id: args.instance_id.clone(),
        patch_group: args.patch_group.clone(),
        operation: match args.operation {
            OperationArg::Scan => "Scan",
            OperationArg::Install => "Install",
        }
        .to_string(),
        operation_start: Some(at),
        operation_end: Some(at),
        install_override_list: args
            .install_override_list
            .as_ref()
            .map(|p| p.display().to_string()),
        include_not_applicable: args.not_applicable,
        ..ReportContext::default()
    };
    let report = render(&evaluation, &inventory, &compiled, &context);
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => print!(
            "{}",
            patchfleet_render::table(&report, baseline.name_or_empty(), args.all)
        ),
    }
    Ok(ExitCode::SUCCESS)
}
