//! The `PatchLinux` step of `AWS-RunPatchBaseline` and
//! `AWS-RunPatchBaselineWithHooks` (patching-semantics §5): the hidden
//! `run-document` command, which the executor starts in a child process for
//! one journaled invocation. Its standard output is the step's output; its
//! exit status the step's exit code (§5.4), or [`EXIT_REBOOTING`] after it
//! asked for the reboot.
//!
//! The flow, each step journaled before it starts:
//!
//! * Scan: collect the facts, judge them with the invocation's baseline,
//!   print the report and SSM's summary lines, leave the facts for the
//!   server.
//! * Install: collect and plan (`patch_install`); with hooks (§5.6) and
//!   nothing to install nor a reboot due, straight to the end; pre-install
//!   hooks; the install (the node scanned and judged again, the facts left
//!   for the server); post-install hooks; with a reboot decided, the reboot
//!   requested in the journal (boot id, the reboot-loop guard) and run.
//!   After the node booted again: post-reboot hooks, a scan, its facts for
//!   the server. Last, the on-exit hooks — also after a failure.
//! * A failing hook stops the flow with its stage named; the on-exit hooks
//!   run next and the invocation fails.
//!
//! Hooks run only for the hooks document, each stage when its parameter
//! names `Patchfleet-LocalHooks`; `post-reboot.d` goes with the post-install
//! parameter (the part of "after the install" that follows the reboot).
//!
//! Resuming, by the step the journal holds (the agent restarted, the node
//! rebooted): a step that may have changed the node is never repeated.
//!
//! | step found | what happens |
//! |---|---|
//! | `Received` | the flow from the start: nothing of it ran |
//! | `RebootRequested`, another boot | after the reboot (above) |
//! | `RebootRequested`, the same boot | the reboot is asked for again (counted by the reboot-loop guard) |
//! | `Rescanning` | the scan again (it only reads), then the end |
//! | `Installing` | failed: the package manager may have been stopped mid-transaction; the node is scanned so the server sees what it has |
//! | `PreInstallHooks`, `PostInstallHooks`, `PostReboot` | failed: a hook may have half run |
//! | `OnExitHooks` | failed, without running the on-exit hooks again |

use crate::CollectArgs;
use crate::collect::{Node, collect_on, open};
use crate::executor::{EXIT_REBOOTING, ExecArgs};
use crate::hooks::{HookContext, HookError, HookRunner, Stage, StageOutcome};
use crate::invocation_report::{Outcome, invocation_of};
use crate::journal::{Journal, RebootLoop, RebootState, Record, Sidecar, Step};
use crate::patch_install::{self, InstallRequest, RebootPlan, install_table, prepare};
use crate::step_output::StepOutput;
use anyhow::{Result, anyhow, bail};
use clap::Args;
use jiff::Timestamp;
use patchfleet_core::baseline::{InstallOverrideList, OverrideEntry};
use patchfleet_core::command::{Hooks, PatchOperation};
use patchfleet_core::eval::RebootOption;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::report::{Report, ReportContext};
use patchfleet_pkg::install::InstallOptions;
use patchfleet_protocol::CommandInvocation;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args)]
pub struct DocumentStepArgs {
    /// The agent's state directory (the journal).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The journaled invocation to run or resume.
    #[arg(long)]
    pub invocation: String,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// The agent that started the step: the step dies with it.
    #[arg(long)]
    pub parent_pid: Option<u32>,
    /// Only the on-exit hooks (after the executor stopped the step).
    #[arg(long)]
    pub on_exit_only: bool,
}

pub fn run(args: &DocumentStepArgs) -> Result<ExitCode> {
    detach(args.parent_pid)?;
    let journal = Journal::open(&args.state_dir)?
        .with_boot_id_path(&args.exec.boot_id_file)
        .with_max_reboots(args.exec.max_reboots);
    let rec = journal
        .get(&args.invocation)?
        .ok_or_else(|| anyhow!("invocation {}: not in the journal", args.invocation))?;
    let inv = invocation_of(&rec).map_err(|e| anyhow!("invocation {}: {e}", args.invocation))?;
    let step = DocumentStep {
        args,
        journal,
        hooks: match inv.document.operation {
            PatchOperation::Install => inv.document.hooks.unwrap_or_default(),
            // Spec §5.6 (2): a Scan is done after the scan.
            PatchOperation::Scan => Hooks::default(),
        },
        inv,
    };
    let code = if args.on_exit_only {
        step.on_exit(0)
    } else {
        step.drive(&rec)
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// A session of its own (the executor stops the step by its session), and
/// death with the agent: a step nobody waits for must not go on changing
/// the node.
fn detach(parent: Option<u32>) -> Result<()> {
    nix::unistd::setsid().map_err(|e| anyhow!("setsid: {e}"))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| anyhow!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    if let Some(p) = parent {
        let now = nix::unistd::getppid().as_raw();
        if u32::try_from(now).ok() != Some(p) {
            bail!("the agent that started this step (pid {p}) is gone");
        }
    }
    Ok(())
}

/// How the flow ended.
enum Flow {
    /// Finish with this exit code; `on_exit`: run the on-exit hooks first.
    Finish { code: i32, on_exit: bool },
    /// The reboot was asked for: exit without a result.
    Reboot,
}

fn finish(code: i32) -> Flow {
    Flow::Finish {
        code,
        on_exit: true,
    }
}

struct DocumentStep<'a> {
    args: &'a DocumentStepArgs,
    journal: Journal,
    inv: CommandInvocation,
    /// The stages that run (none for a Scan or the hook-less document).
    hooks: Hooks,
}

impl DocumentStep<'_> {
    fn id(&self) -> &str {
        &self.inv.invocation_id
    }

    fn drive(&self, rec: &Record) -> i32 {
        let flow = match self.resume(rec) {
            Ok(flow) => flow,
            Err(e) => {
                eprintln!("patchfleet-agent: {e:#}");
                finish(1)
            }
        };
        match flow {
            Flow::Reboot => EXIT_REBOOTING,
            Flow::Finish { code, on_exit } => {
                let code = if on_exit { self.on_exit(code) } else { code };
                self.finish(code)
            }
        }
    }

    fn resume(&self, rec: &Record) -> Result<Flow> {
        let interrupted = |what: &str| {
            eprintln!(
                "patchfleet-agent: the agent stopped while {what} (step {:?}); a step that may have changed the node is never repeated",
                rec.step
            );
        };
        match &rec.step {
            Step::Received => self.start(),
            Step::RebootRequested { reboots, .. } => match self.journal.reboot_state(rec)? {
                RebootState::Completed => self.after_reboot(rec),
                _ => {
                    say(&format!(
                        "The node has not rebooted since reboot {reboots} of this invocation was asked for; asking again\n"
                    ));
                    self.reboot(rec.exit_code.unwrap_or(0))
                }
            },
            Step::Rescanning => self.rescan(rec.exit_code.unwrap_or(0)),
            Step::Installing => {
                interrupted(
                    "installing: the package manager may have been stopped mid-transaction",
                );
                // The server should see what the node has now.
                if let Err(e) = self.rescan(1) {
                    eprintln!("patchfleet-agent: {e:#}");
                }
                Ok(finish(1))
            }
            Step::PreInstallHooks | Step::PostInstallHooks | Step::PostReboot => {
                interrupted("running hooks");
                Ok(finish(1))
            }
            Step::OnExitHooks => {
                interrupted("running the on-exit hooks");
                Ok(Flow::Finish {
                    code: 1,
                    on_exit: false,
                })
            }
            Step::Finished => bail!("invocation {}: already finished", self.id()),
        }
    }

    fn start(&self) -> Result<Flow> {
        let doc = &self.inv.document;
        say(&format!(
            "{}: Operation {}, RebootOption {}, StepTimeoutSeconds {}\nCommand {}, invocation {}, baseline {} ({})\n",
            doc.name.as_str(),
            doc.operation.as_str(),
            patch_install::reboot_option_name(doc.reboot_option),
            doc.step_timeout_seconds,
            self.inv.command_id,
            self.id(),
            self.inv.baseline.name_or_empty(),
            self.inv.baseline.baseline_id.as_deref().unwrap_or("no id"),
        ));
        match doc.operation {
            PatchOperation::Scan => {
                let node = open(&self.args.collect)?;
                let facts = collect_on(&node, &self.args.collect)?;
                self.report_scan(&facts)?;
                Ok(finish(0))
            }
            PatchOperation::Install => self.install(),
        }
    }

    fn install(&self) -> Result<Flow> {
        let doc = &self.inv.document;
        let node = open(&self.args.collect)?;
        let list = self.inv.install_override.as_ref().map(|patches| {
            let list = InstallOverrideList {
                patches: patches
                    .iter()
                    .map(|p| OverrideEntry {
                        id: p.id.clone(),
                        title: p.title.clone(),
                    })
                    .collect(),
            };
            let label = doc
                .install_override_list
                .clone()
                .unwrap_or_else(|| "(resolved by the server)".into());
            (list, label)
        });
        let request = InstallRequest {
            baseline: &self.inv.baseline,
            override_list: list.as_ref().map(|(l, label)| (l, label.clone())),
            at: None,
            reboot_option: doc.reboot_option,
            snapshot_id: doc.snapshot_id.clone(),
        };
        let prepared = prepare(&node, &self.args.collect, &request)?;
        let plan = &prepared.plan;
        let mut text = format!("Install plan: {} package(s)\n", plan.packages.len());
        for p in &plan.packages {
            let _ = writeln!(text, "  {}", p.title);
        }
        say(&text);
        let reboot_due =
            doc.reboot_option == RebootOption::RebootIfNeeded && prepared.reboot_pending()?;
        if doc.hooks.is_some() && plan.packages.is_empty() && !reboot_due {
            // Spec §5.6 (2): nothing to do, no hooks but the last.
            say("Nothing to install and no reboot pending\n");
            self.report_scan(&prepared.facts)?;
            return Ok(finish(0));
        }
        if self.hooks.pre_install {
            self.journal.advance(self.id(), Step::PreInstallHooks)?;
            if !self.hook_stage(Stage::PreInstall) {
                self.store_facts(&prepared.facts)?;
                return Ok(finish(1));
            }
        }
        self.journal.advance(self.id(), Step::Installing)?;
        let opts = InstallOptions {
            // The step's own timeout bounds the install; the backend's must
            // not cut it shorter.
            install_timeout: Duration::from_secs(doc.step_timeout_seconds.into()),
            ..InstallOptions::default()
        };
        let installed = match prepared.install(&node, &self.args.collect, &opts) {
            Ok(installed) => installed,
            Err(failure) => {
                eprintln!("patchfleet-agent: the install failed: {failure}");
                if let Err(e) = self.rescan_facts(&node) {
                    eprintln!("patchfleet-agent: {e:#}");
                }
                return Ok(finish(failure.exit_code()));
            }
        };
        let mut text = install_table(&installed.result);
        text.push('\n');
        text.push_str(&patchfleet_render::table(
            &installed.report,
            self.inv.baseline.name_or_empty(),
            false,
        ));
        text.push_str(&ssm_summary(&installed.report));
        say(&text);
        self.store_facts(&installed.after)?;
        let code = installed.exit_code();
        self.journal.set_exit_code(self.id(), code)?;
        if self.hooks.post_install {
            self.journal.advance(self.id(), Step::PostInstallHooks)?;
            if !self.hook_stage(Stage::PostInstall) {
                return Ok(finish(1));
            }
        }
        if installed.reboot {
            return self.reboot(code);
        }
        say(match doc.reboot_option {
            RebootOption::NoReboot if !installed.result.packages.is_empty() => {
                "Reboot is not permitted because RebootOption is NoReboot\n"
            }
            _ => "Reboot is not required\n",
        });
        Ok(finish(code))
    }

    /// Records the reboot (boot id, guard), then runs the reboot command.
    fn reboot(&self, code: i32) -> Result<Flow> {
        let command = match patch_install::reboot_plan(
            self.args.exec.reboot_command.as_deref(),
            &self.args.collect.root,
        )? {
            RebootPlan::Run(command) => command,
            RebootPlan::Skip(why) => {
                say(&format!("Reboot is required, but {why}\n"));
                return Ok(finish(code));
            }
        };
        let boot = match self.journal.boot_id() {
            Ok(b) => b,
            Err(e) => {
                eprintln!(
                    "patchfleet-agent: not rebooting: {e:#} (without it the agent could not tell the reboot happened)"
                );
                return Ok(finish(1));
            }
        };
        let rec = match self.journal.record_reboot(self.id(), &boot) {
            Ok(rec) => rec,
            Err(e) => match e.downcast_ref::<RebootLoop>() {
                Some(guard) => {
                    let failure = guard.result();
                    eprintln!("patchfleet-agent: {}", failure.stderr);
                    return Ok(finish(failure.response_code));
                }
                None => return Err(e),
            },
        };
        say(&format!(
            "Reboot is required: rebooting (reboot {} of this invocation, from boot {boot})\n",
            rec.reboots
        ));
        match patch_install::run_reboot(&command) {
            Ok(()) => Ok(Flow::Reboot),
            Err(e) => {
                eprintln!("patchfleet-agent: {e:#}");
                Ok(finish(1))
            }
        }
    }

    fn after_reboot(&self, rec: &Record) -> Result<Flow> {
        self.journal.advance(self.id(), Step::PostReboot)?;
        let boot = self.journal.boot_id().unwrap_or_default();
        say(&format!(
            "The node booted again (boot {boot}) after reboot {} of this invocation; resuming\n",
            rec.reboots
        ));
        if self.hooks.post_install && !self.hook_stage(Stage::PostReboot) {
            return Ok(finish(1));
        }
        self.journal.advance(self.id(), Step::Rescanning)?;
        self.rescan(rec.exit_code.unwrap_or(0))
    }

    /// Scans, reports and finishes with `code` (the install's).
    fn rescan(&self, code: i32) -> Result<Flow> {
        let node = open(&self.args.collect)?;
        let facts = collect_on(&node, &self.args.collect)?;
        self.report_scan(&facts)?;
        Ok(finish(code))
    }

    fn rescan_facts(&self, node: &Node) -> Result<()> {
        let facts = collect_on(node, &self.args.collect)?;
        self.store_facts(&facts)
    }

    /// Judges `facts` for a Scan, prints the report, leaves the facts for
    /// the server.
    fn report_scan(&self, facts: &NodeFacts) -> Result<()> {
        let context = ReportContext {
            snapshot_id: self.inv.document.snapshot_id.clone(),
            ..ReportContext::default()
        };
        let report = crate::scan_cmd::judge(facts, &self.inv.baseline, Timestamp::now(), context)?;
        let mut text = patchfleet_render::table(&report, self.inv.baseline.name_or_empty(), false);
        text.push_str(&ssm_summary(&report));
        say(&text);
        self.store_facts(facts)
    }

    fn store_facts(&self, facts: &NodeFacts) -> Result<()> {
        crate::facts_file::store_with_summary(
            facts,
            &self.journal.sidecar(self.id(), Sidecar::Facts)?,
            &self.journal.sidecar(self.id(), Sidecar::ScanSummary)?,
        )
    }

    /// Runs one stage; `false` when it failed or was refused (said why).
    fn hook_stage(&self, stage: Stage) -> bool {
        let runner = HookRunner::new(&self.args.exec.hooks_root);
        let ctx = HookContext {
            command_id: self.inv.command_id.clone(),
            invocation_id: self.id().to_string(),
            operation: self.inv.document.operation.as_str().to_string(),
            reboot_option: self.inv.document.reboot_option,
        };
        let result = runner.run_stage(stage, &ctx);
        say(&hook_text(stage, &runner, &result));
        match result {
            Ok(outcome) if outcome.is_success() => true,
            Ok(outcome) => {
                if let Some(f) = &outcome.failed {
                    eprintln!(
                        "patchfleet-agent: {stage} hook {} failed ({}); the patch run stops here",
                        f.path.display(),
                        f.reason
                    );
                }
                false
            }
            Err(e) => {
                eprintln!("patchfleet-agent: {e}; the patch run stops here");
                false
            }
        }
    }

    /// The on-exit hooks when enabled; `code`, or 1 when they fail.
    fn on_exit(&self, code: i32) -> i32 {
        if !self.hooks.on_exit {
            return code;
        }
        if let Err(e) = self.journal.advance(self.id(), Step::OnExitHooks) {
            eprintln!("patchfleet-agent: {e:#}");
        }
        if self.hook_stage(Stage::OnExit) || code != 0 {
            code
        } else {
            1
        }
    }

    /// Stores the result with the output so far; the exit code to exit with.
    fn finish(&self, code: i32) -> i32 {
        let result = StepOutput::of(&self.journal, self.id()).and_then(|o| o.read());
        let (stdout, stderr) = match result {
            Ok(streams) => streams,
            Err(e) => (String::new(), format!("patchfleet-agent: {e:#}")),
        };
        if let Err(e) = self.journal.finish(
            self.id(),
            Outcome::of_exit_code(code).result(code, stdout, stderr),
        ) {
            eprintln!("patchfleet-agent: {e:#}");
        }
        code
    }
}

/// Writes step output now: the executor may read the file at any moment.
fn say(text: &str) {
    if let Err(e) = crate::emit(text) {
        eprintln!("patchfleet-agent: {e:#}");
    }
}

/// SSM's counts line and compliance line (spec §5.3).
pub fn ssm_summary(report: &Report) -> String {
    let s = &report.instance_patch_state;
    let mut text = format!(
        "Installed count: {}, Installed other count: {}, Installed pending reboot count: {}, \
         Installed rejected count: {}, Missing count: {}, Not Applicable count: {}, Failed count: {}\n",
        s.installed_count,
        s.installed_other_count,
        s.installed_pending_reboot_count,
        s.installed_rejected_count,
        s.missing_count,
        s.not_applicable_count,
        s.failed_count
    );
    match report.compliance.non_compliant_severity {
        None => text.push_str("Instance is Compliant\n"),
        Some(level) => {
            let _ = writeln!(text, "Instance is Non-Compliant with severity of {level}");
        }
    }
    text
}

/// What a stage did, for the step's output.
fn hook_text(
    stage: Stage,
    runner: &HookRunner,
    result: &Result<StageOutcome, HookError>,
) -> String {
    let mut text = format!("{stage} hooks ({}):\n", runner.stage_dir(stage).display());
    match result {
        Err(e) => {
            let _ = writeln!(text, "  {e}");
        }
        Ok(o) => {
            if o.ran.is_empty() && o.skipped.is_empty() {
                text.push_str("  none\n");
            }
            for run in &o.ran {
                let name = run.path.file_name().unwrap_or_default().to_string_lossy();
                let exit = run
                    .exit_code
                    .map_or_else(|| "no exit status".to_string(), |c| format!("exit {c}"));
                let _ = writeln!(
                    text,
                    "  {name}: {exit} ({:.1} s)",
                    run.duration.as_secs_f64()
                );
                for line in run.stdout.lines().chain(run.stderr.lines()) {
                    let _ = writeln!(text, "    {line}");
                }
            }
            for s in &o.skipped {
                let _ = writeln!(text, "  skipped {}: {}", s.path.display(), s.reason);
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_lines_speak_ssm() {
        let facts = NodeFacts::from_json(
            r#"{"format": "patchfleet.facts/1",
                "os": {"operating_system": "DEBIAN", "product": "Debian12"}}"#,
        )
        .unwrap();
        let baseline =
            patchfleet_core::baseline::predefined::by_id_or_name("AWS-DebianDefaultPatchBaseline")
                .unwrap();
        let mut report =
            crate::scan_cmd::judge(&facts, baseline, Timestamp::now(), ReportContext::default())
                .unwrap();
        assert_eq!(
            ssm_summary(&report),
            "Installed count: 0, Installed other count: 0, Installed pending reboot count: 0, \
             Installed rejected count: 0, Missing count: 0, Not Applicable count: 0, Failed count: 0\n\
             Instance is Compliant\n"
        );
        report.instance_patch_state.missing_count = 2;
        report.compliance.non_compliant_severity =
            Some(patchfleet_core::compliance::ComplianceLevel::Critical);
        let text = ssm_summary(&report);
        assert!(text.contains("Missing count: 2,"), "{text}");
        assert!(
            text.ends_with("Instance is Non-Compliant with severity of CRITICAL\n"),
            "{text}"
        );
    }
}
