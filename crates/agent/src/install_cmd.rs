//! `patchfleet-agent install`: the baseline's install plan carried out on
//! the node by its package manager's backend, then the node scanned and
//! judged again.
//!
//! facts → `evaluate(Operation::Install)` → plan → `--dry-run`: the plan and
//! the package manager's simulation of it; otherwise `Backend::install` → facts
//! again → `evaluate(InstallOutcome::Baseline)` (a patch still missing is
//! `Failed`) → the report, each planned package's result and whether the
//! node needs a reboot.

use crate::baseline_arg::{self, BaselineArgs};
use crate::collect::{collect_on, open};
use crate::patch_states;
use crate::scan_cmd::OutputFormat;
use crate::{CollectArgs, emit};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use patchfleet_core::baseline::parse_install_override_list;
use patchfleet_core::eval::{
    CompiledBaseline, CompiledOverride, EvalOptions, InstallOutcome, InstallPlan, Operation,
    PendingRebootScope, PlannedInstall, RebootOption, evaluate, reboot_after,
};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::{Inventory, Version};
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::report::{ReportContext, render};
use patchfleet_pkg::install::{InstallOptions, InstallReport, PackageResult, Simulation};
use patchfleet_pkg::runner::{CommandSpec, Runner};
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Args)]
pub struct InstallArgs {
    #[command(flatten)]
    baseline: BaselineArgs,
    #[command(flatten)]
    collect: CollectArgs,
    /// Print the plan and the package manager's simulation of it; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// First finish what an interrupted package run left half-done
    /// (`dpkg --configure -a` on APT systems); without it such a node is
    /// reported, never repaired.
    #[arg(long)]
    repair: bool,
    /// Install exactly the packages of this InstallOverrideList (YAML, as
    /// AWS-RunPatchBaseline takes it) instead of the baseline's plan; the
    /// baseline still judges the report and its rejected list still applies.
    #[arg(long)]
    install_override_list: Option<std::path::PathBuf>,
    /// Evaluation instant (RFC 3339); default: now.
    #[arg(long)]
    at: Option<Timestamp>,
    #[arg(long, value_enum, default_value = "table")]
    output: OutputFormat,
    /// RebootIfNeeded: reboot when anything was installed or an earlier
    /// NoReboot install is still pending (Patch Manager's rule). NoReboot:
    /// never; what was installed stays InstalledPendingReboot until a reboot.
    #[arg(long, value_enum, default_value = "RebootIfNeeded")]
    reboot_option: RebootArg,
    /// The command that reboots, as program and arguments (default
    /// `systemctl reboot`). With a --root other than `/` nothing is rebooted
    /// unless this is given (test beds).
    #[arg(long)]
    reboot_command: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RebootArg {
    #[value(name = "RebootIfNeeded")]
    RebootIfNeeded,
    #[value(name = "NoReboot")]
    NoReboot,
}

pub fn run(args: &InstallArgs) -> Result<ExitCode> {
    let chosen = args.baseline.explicit()?;
    let start = Timestamp::now();
    let node = open(&args.collect)?;
    let opts = InstallOptions::default();
    if args.repair && !args.dry_run {
        match node.backend.repair(&opts).map_err(|e| anyhow!("{e}"))? {
            Some(out) => eprintln!("patchfleet-agent: repair: {}", out.trim()),
            None => bail!(
                "--repair: {} has nothing to repair with",
                node.backend.name()
            ),
        }
    }
    let facts = collect_on(&node, &args.collect)?;
    let os = facts.os.operating_system;
    let baseline = baseline_arg::or_default(chosen, os)?;
    let compiled = CompiledBaseline::compile(&baseline)?;
    let at = args.at.unwrap_or(start);
    let override_list = match &args.install_override_list {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let list = parse_install_override_list(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Some(CompiledOverride::new(&list))
        }
        None => None,
    };
    let plan = install_plan(&compiled, &facts, at, override_list.as_ref())?;
    let plan = plan.context("the evaluation made no install plan")?;

    if args.dry_run {
        let simulation = node
            .backend
            .simulate(&plan, &opts)
            .map_err(|e| anyhow!("{e}"))?;
        match args.output {
            OutputFormat::Json => emit(&format!(
                "{}\n",
                serde_json::to_string_pretty(&json!({
                    "DryRun": true,
                    "InstallPlan": plan,
                    "Simulation": simulation,
                }))?
            ))?,
            OutputFormat::Table => emit(&dry_run_table(&plan.packages, &simulation))?,
        }
        return Ok(ExitCode::SUCCESS);
    }

    let result = node
        .backend
        .install(&plan, &opts)
        .map_err(|e| anyhow!("{e}"))?;
    let end = Timestamp::now();
    let installed_now = installed_titles(&result, os)?;
    let reboot = match args.reboot_option {
        RebootArg::NoReboot => {
            // Spec §4.3 step 2: what this run installed waits for a reboot.
            if !installed_now.is_empty() {
                let mut state = facts.reboot_state.clone().unwrap_or_default();
                state.last_no_reboot_install_operation_time = Some(end);
                for title in installed_now {
                    if !state.pending_reboot.contains(&title) {
                        state.pending_reboot.push(title);
                    }
                }
                patch_states::write(&args.collect.root, &state)?;
            }
            false
        }
        RebootArg::RebootIfNeeded => {
            let before = Inventory::prepare(&facts).context("the scanned facts")?;
            reboot_after(
                RebootOption::RebootIfNeeded,
                true,
                !installed_now.is_empty(),
                &before,
            )
        }
    };
    let after = collect_on(&node, &args.collect).context("scanning again after the install")?;
    let at_after = args.at.unwrap_or(end);
    let evaluation_report = {
        let inventory = Inventory::prepare(&after).context("the facts after the install")?;
        let options = EvalOptions {
            at: at_after.as_second(),
            operation: Operation::Install {
                override_list: override_list.as_ref(),
            },
            outcome: if override_list.is_some() {
                InstallOutcome::Override(plan.packages.clone())
            } else {
                InstallOutcome::Baseline
            },
            // Before the reboot it decides, Patch Manager reports this run's
            // packages Installed, not pending (spec §4.3).
            pending_reboot_scope: if reboot {
                PendingRebootScope::PatchManagerOnly
            } else {
                PendingRebootScope::AnyInstallAfterBoot
            },
        };
        let evaluation = evaluate(&compiled, &inventory, &options);
        let context = ReportContext {
            operation: "Install".to_string(),
            operation_start: Some(args.at.unwrap_or(start)),
            operation_end: Some(at_after),
            install_override_list: args
                .install_override_list
                .as_ref()
                .map(|p| p.display().to_string()),
            reboot_option: Some(
                match args.reboot_option {
                    RebootArg::RebootIfNeeded => "RebootIfNeeded",
                    RebootArg::NoReboot => "NoReboot",
                }
                .to_string(),
            ),
            ..ReportContext::default()
        };
        render(&evaluation, &inventory, &compiled, &context)
    };
    match args.output {
        OutputFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "Report": evaluation_report,
                "Install": result,
                "RebootRequired": !result.reboot_required.is_empty(),
                "Reboot": reboot,
            }))?
        ))?,
        OutputFormat::Table => {
            let mut text =
                patchfleet_render::table(&evaluation_report, baseline.name_or_empty(), false);
            text.push_str(&install_table(&result));
            let _ = writeln!(text, "Reboot: {}", if reboot { "now" } else { "no" });
            emit(&text)?;
        }
    }
    // The report is out before the reboot, as Patch Manager uploads first.
    if reboot {
        run_reboot(args)?;
    }
    Ok(if result.all_installed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Titles (`name.arch:version`) of what this run actually changed.
fn installed_titles(result: &InstallReport, os: OperatingSystem) -> Result<Vec<String>> {
    let mut titles = Vec::new();
    for p in &result.packages {
        if p.result == PackageResult::Installed && p.previous.as_deref() != Some(p.version.as_str())
        {
            let version = Version::parse(os.family(), &p.version).map_err(|e| anyhow!("{e}"))?;
            titles.push(format!("{}.{}:{version}", p.name, p.arch));
        }
    }
    Ok(titles)
}

/// Reboots through the runner. A root other than `/` is only "rebooted"
/// with an explicit command (test beds); the node's own reboot is
/// `systemctl reboot`, an orderly shutdown.
fn run_reboot(args: &InstallArgs) -> Result<()> {
    let command = match (
        &args.reboot_command,
        crate::collect::is_host_root(&args.collect.root),
    ) {
        (Some(c), _) => c.clone(),
        (None, true) => "systemctl reboot".to_string(),
        (None, false) => {
            eprintln!(
                "patchfleet-agent: not rebooting: {} is not this system's root (give --reboot-command)",
                args.collect.root.display()
            );
            return Ok(());
        }
    };
    let mut words = command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| anyhow!("--reboot-command is empty"))?;
    Runner::default()
        .run_ok(&CommandSpec::new(program).args(words))
        .map_err(|e| anyhow!("reboot: {e}"))?;
    Ok(())
}

/// The install plan of `facts` for an Install at `at`.
fn install_plan(
    compiled: &CompiledBaseline,
    facts: &NodeFacts,
    at: Timestamp,
    override_list: Option<&CompiledOverride>,
) -> Result<Option<InstallPlan>> {
    let inventory = Inventory::prepare(facts).context("the scanned facts")?;
    let options = EvalOptions {
        at: at.as_second(),
        operation: Operation::Install { override_list },
        outcome: InstallOutcome::None,
        pending_reboot_scope: PendingRebootScope::AnyInstallAfterBoot,
    };
    Ok(evaluate(compiled, &inventory, &options).plan)
}

fn dry_run_table(plan: &[PlannedInstall], sim: &Simulation) -> String {
    let mut s = String::new();
    if plan.is_empty() {
        s.push_str("Install plan: nothing to install\n");
        return s;
    }
    let _ = writeln!(s, "Install plan ({} packages):", plan.len());
    for p in plan {
        let _ = writeln!(
            s,
            "  {} {}{}",
            p.name,
            p.version,
            p.advisory
                .as_deref()
                .map(|a| format!(" ({a})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "Simulation (dry run, nothing changed):");
    for st in &sim.steps {
        let _ = writeln!(
            s,
            "  {:?} {} {} -> {} {}",
            st.action,
            st.name,
            st.old.as_deref().unwrap_or("(none)"),
            st.new.as_deref().unwrap_or("-"),
            st.origin.as_deref().unwrap_or("")
        );
    }
    for (name, reason) in &sim.unresolved {
        let _ = writeln!(s, "  cannot install {name}: {reason}");
    }
    s
}

fn install_table(r: &InstallReport) -> String {
    let mut s = String::from("\nInstall results:\n");
    if r.packages.is_empty() {
        s.push_str("  nothing to install\n");
    }
    for p in &r.packages {
        let result = match &p.result {
            PackageResult::Installed => "Installed".to_string(),
            PackageResult::Failed { reason } => format!("Failed: {reason}"),
        };
        let _ = writeln!(
            s,
            "  {} {} -> {}: {result}",
            p.name,
            p.previous.as_deref().unwrap_or("(none)"),
            p.version
        );
    }
    if r.reboot_required.is_empty() {
        s.push_str("Reboot required: no\n");
    }
    for e in &r.reboot_required {
        let packages = if e.packages.is_empty() {
            String::new()
        } else {
            format!("; {}", e.packages.join(", "))
        };
        let _ = writeln!(s, "Reboot required: yes ({}{packages})", e.detail);
    }
    s
}
