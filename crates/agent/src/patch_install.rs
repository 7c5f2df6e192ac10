//! An Install, as both `patchfleet-agent install` and the
//! `AWS-RunPatchBaseline` document carry it out: the facts judged for an
//! Install ([`prepare`]: the plan), the plan installed by the node's
//! backend ([`Prepared::install`]: patch states, reboot decision, the node
//! scanned and judged again), and the reboot itself ([`reboot_plan`],
//! [`run_reboot`]).
//!
//! Hooks, the journal and the output format are the callers' business; the
//! steps in between are the same for both, so both report the same.

use crate::CollectArgs;
use crate::collect::{Node, collect_on};
use crate::patch_states;
use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use patchfleet_core::baseline::{Baseline, InstallOverrideList};
use patchfleet_core::eval::{
    CompiledBaseline, CompiledOverride, EvalOptions, InstallOutcome, InstallPlan, Operation,
    PendingRebootScope, RebootOption, evaluate, reboot_after,
};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::{Inventory, Version};
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::report::{Report, ReportContext, render};
use patchfleet_pkg::install::{InstallError, InstallOptions, InstallReport, PackageResult};
use patchfleet_pkg::runner::{CommandSpec, Runner};
use std::fmt::Write as _;
use std::path::Path;

/// Exit code of an Install whose plan the package manager refused before
/// changing anything (a removal, or a BLOCKed rejected dependency): Patch
/// Manager's "dependency-check failure" (spec §5.4).
pub const EXIT_DEPENDENCY_CHECK: i32 = 2;

/// What an Install is asked to do.
pub struct InstallRequest<'a> {
    pub baseline: &'a Baseline,
    /// Exactly these packages instead of the baseline's plan (the baseline
    /// still judges the report), and how the report names the list.
    pub override_list: Option<(&'a InstallOverrideList, String)>,
    /// The evaluation instant; `None`: now (at each evaluation).
    pub at: Option<Timestamp>,
    pub reboot_option: RebootOption,
    pub snapshot_id: Option<String>,
}

/// The facts before the install and the plan made from them.
pub struct Prepared<'a> {
    request: &'a InstallRequest<'a>,
    compiled: CompiledBaseline,
    override_list: Option<CompiledOverride>,
    pub facts: NodeFacts,
    pub plan: InstallPlan,
    pub start: Timestamp,
}

/// What an install did.
pub struct Installed {
    pub result: InstallReport,
    /// The node judged again after the install (operation `Install`).
    pub report: Report,
    /// `core`'s reboot decision (spec §4.3).
    pub reboot: bool,
    /// The facts after the install, as the report judged them.
    pub after: NodeFacts,
}

impl Installed {
    /// The step's exit code: 0 when every planned package was installed,
    /// 1 when some failed (spec §5.4).
    pub fn exit_code(&self) -> i32 {
        if self.result.all_installed() { 0 } else { 1 }
    }
}

/// Collects the facts of `node` and makes the install plan.
pub fn prepare<'a>(
    node: &Node,
    collect: &CollectArgs,
    request: &'a InstallRequest<'a>,
) -> Result<Prepared<'a>> {
    let start = Timestamp::now();
    let facts = collect_on(node, collect)?;
    let compiled = CompiledBaseline::compile(request.baseline)?;
    let override_list = request
        .override_list
        .as_ref()
        .map(|(list, _)| CompiledOverride::new(list));
    let inventory = Inventory::prepare(&facts).context("the scanned facts")?;
    let options = EvalOptions {
        at: request.at.unwrap_or(start).as_second(),
        operation: Operation::Install {
            override_list: override_list.as_ref(),
        },
        outcome: InstallOutcome::None,
        pending_reboot_scope: PendingRebootScope::AnyInstallAfterBoot,
    };
    let plan = evaluate(&compiled, &inventory, &options)
        .plan
        .context("the evaluation made no install plan")?;
    Ok(Prepared {
        request,
        compiled,
        override_list,
        facts,
        plan,
        start,
    })
}

impl Prepared<'_> {
    /// An earlier `NoReboot` install left patches pending and the node has
    /// not booted since (spec §4.3).
    pub fn reboot_pending(&self) -> Result<bool> {
        let inventory = Inventory::prepare(&self.facts).context("the scanned facts")?;
        Ok(inventory.no_reboot_install_pending())
    }

    /// Installs the plan, records what `NoReboot` leaves pending, decides
    /// the reboot and judges the node again. Does not reboot.
    pub fn install(
        &self,
        node: &Node,
        collect: &CollectArgs,
        opts: &InstallOptions,
    ) -> Result<Installed, InstallFailure> {
        let result = node
            .backend
            .install(&self.plan, opts)
            .map_err(InstallFailure::Refused)?;
        self.after_install(node, collect, result)
            .map_err(InstallFailure::Other)
    }

    fn after_install(
        &self,
        node: &Node,
        collect: &CollectArgs,
        result: InstallReport,
    ) -> Result<Installed> {
        let end = Timestamp::now();
        let os = self.facts.os.operating_system;
        let installed_now = installed_titles(&result, os)?;
        let reboot = match self.request.reboot_option {
            RebootOption::NoReboot => {
                // Spec §4.3 step 2: what this run installed waits for a reboot.
                if !installed_now.is_empty() {
                    let mut state = self.facts.reboot_state.clone().unwrap_or_default();
                    state.last_no_reboot_install_operation_time = Some(end);
                    for title in installed_now {
                        if !state.pending_reboot.contains(&title) {
                            state.pending_reboot.push(title);
                        }
                    }
                    patch_states::write(&collect.root, &state)?;
                }
                false
            }
            RebootOption::RebootIfNeeded => {
                let before = Inventory::prepare(&self.facts).context("the scanned facts")?;
                reboot_after(
                    RebootOption::RebootIfNeeded,
                    true,
                    !installed_now.is_empty(),
                    &before,
                )
            }
        };
        let after = collect_on(node, collect).context("scanning again after the install")?;
        let at_after = self.request.at.unwrap_or(end);
        let inventory = Inventory::prepare(&after).context("the facts after the install")?;
        let options = EvalOptions {
            at: at_after.as_second(),
            operation: Operation::Install {
                override_list: self.override_list.as_ref(),
            },
            outcome: if self.override_list.is_some() {
                InstallOutcome::Override(self.plan.packages.clone())
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
        let evaluation = evaluate(&self.compiled, &inventory, &options);
        let context = ReportContext {
            operation: "Install".to_string(),
            operation_start: Some(self.request.at.unwrap_or(self.start)),
            operation_end: Some(at_after),
            snapshot_id: self.request.snapshot_id.clone(),
            install_override_list: self
                .request
                .override_list
                .as_ref()
                .map(|(_, label)| label.clone()),
            reboot_option: Some(reboot_option_name(self.request.reboot_option).to_string()),
            ..ReportContext::default()
        };
        let report = render(&evaluation, &inventory, &self.compiled, &context);
        Ok(Installed {
            result,
            report,
            reboot,
            after,
        })
    }
}

/// An install that did not get to a report.
#[derive(Debug)]
pub enum InstallFailure {
    /// The backend refused or could not run the plan.
    Refused(InstallError),
    /// Recording or judging the result failed after the install ran.
    Other(anyhow::Error),
}

impl InstallFailure {
    /// The step's exit code for it (spec §5.4).
    pub fn exit_code(&self) -> i32 {
        match self {
            InstallFailure::Refused(
                InstallError::WouldRemove { .. } | InstallError::Rejected { .. },
            ) => EXIT_DEPENDENCY_CHECK,
            _ => 1,
        }
    }
}

impl std::fmt::Display for InstallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallFailure::Refused(e) => write!(f, "{e}"),
            InstallFailure::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for InstallFailure {}

/// `RebootOption` as the document spells it.
pub fn reboot_option_name(o: RebootOption) -> &'static str {
    match o {
        RebootOption::RebootIfNeeded => "RebootIfNeeded",
        RebootOption::NoReboot => "NoReboot",
    }
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

/// How the node is rebooted, if it can be.
#[derive(Debug)]
pub enum RebootPlan {
    Run(CommandSpec),
    /// Not this system's root and no reboot command: nothing to reboot.
    Skip(String),
}

/// The reboot command: `command` (a program and its arguments, split at
/// white space, never a shell), else `systemctl reboot` (an orderly
/// shutdown) for this system's own root. A root other than `/` is only
/// "rebooted" with an explicit command (test beds).
pub fn reboot_plan(command: Option<&str>, root: &Path) -> Result<RebootPlan> {
    let command = match (command, crate::collect::is_host_root(root)) {
        (Some(c), _) => c,
        (None, true) => "systemctl reboot",
        (None, false) => {
            return Ok(RebootPlan::Skip(format!(
                "not rebooting: {} is not this system's root (give --reboot-command)",
                root.display()
            )));
        }
    };
    let mut words = command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| anyhow!("--reboot-command is empty"))?;
    Ok(RebootPlan::Run(CommandSpec::new(program).args(words)))
}

/// Runs the reboot command through the runner.
pub fn run_reboot(command: &CommandSpec) -> Result<()> {
    Runner::default()
        .run_ok(command)
        .map_err(|e| anyhow!("reboot: {e}"))?;
    Ok(())
}

/// Each planned package's result and the reboot evidence, as text.
pub fn install_table(r: &InstallReport) -> String {
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
