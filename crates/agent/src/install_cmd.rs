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
use crate::collect::open;
use crate::patch_install::{
    InstallRequest, RebootPlan, install_table, prepare, reboot_plan, run_reboot,
};
use crate::scan_cmd::OutputFormat;
use crate::{CollectArgs, emit};
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use jiff::Timestamp;
use patchfleet_core::baseline::parse_install_override_list;
use patchfleet_core::eval::{PlannedInstall, RebootOption};
use patchfleet_pkg::install::{InstallOptions, Simulation};
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
    let baseline = baseline_arg::or_default(chosen, node.os)?;
    let override_list = match &args.install_override_list {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let list = parse_install_override_list(&text)
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Some((list, path.display().to_string()))
        }
        None => None,
    };
    let request = InstallRequest {
        baseline: &baseline,
        override_list: override_list.as_ref().map(|(l, label)| (l, label.clone())),
        at: args.at,
        reboot_option: match args.reboot_option {
            RebootArg::RebootIfNeeded => RebootOption::RebootIfNeeded,
            RebootArg::NoReboot => RebootOption::NoReboot,
        },
        snapshot_id: None,
    };
    let prepared = prepare(&node, &args.collect, &request)?;
    let plan = &prepared.plan;

    if args.dry_run {
        let simulation = node
            .backend
            .simulate(plan, &opts)
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

    let installed = prepared
        .install(&node, &args.collect, &opts)
        .map_err(|e| anyhow!("{e}"))?;
    match args.output {
        OutputFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({
                "Report": installed.report,
                "Install": installed.result,
                "RebootRequired": !installed.result.reboot_required.is_empty(),
                "Reboot": installed.reboot,
            }))?
        ))?,
        OutputFormat::Table => {
            let mut text =
                patchfleet_render::table(&installed.report, baseline.name_or_empty(), false);
            text.push_str(&install_table(&installed.result));
            let _ = writeln!(
                text,
                "Reboot: {}",
                if installed.reboot { "now" } else { "no" }
            );
            emit(&text)?;
        }
    }
    // The report is out before the reboot, as Patch Manager uploads first.
    if installed.reboot {
        match reboot_plan(args.reboot_command.as_deref(), &args.collect.root)? {
            RebootPlan::Run(command) => run_reboot(&command)?,
            RebootPlan::Skip(why) => eprintln!("patchfleet-agent: {why}"),
        }
    }
    Ok(ExitCode::from(installed.exit_code() as u8))
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
