//! Runs an invocation's document step (`document_step`, the hidden
//! `run-document` command) in a child process of the agent, and ends it.
//!
//! * The child leads a session of its own (`session`), so the execution
//!   timeout (`StepTimeoutSeconds`) and a cancel stop it with everything
//!   it started: the tools and hooks the runner put in process groups of
//!   their own, the reboot command.
//! * Its output goes to the invocation's sidecar files (`step_output`),
//!   which outlive this process and the node's reboot.
//! * The child journals the steps it makes and finishes the invocation
//!   itself, or leaves it at `RebootRequested` (exit [`EXIT_REBOOTING`])
//!   until the node has booted again. The executor finishes what the child
//!   could not: a timeout (`TimedOut`/`ExecutionTimedOut`), a cancel, a
//!   child that died without a result.
//! * After a timeout or a cancel the on-exit hooks still run (a child of
//!   their own, `--on-exit-only`), unless the step was in them: a drained
//!   node is put back into service also when its patching was stopped.
//!
//! The future [`Executor::run_step`] returns is `Send`, so the run loop can
//! spawn it and keep heartbeating; dropped (the agent stops), it kills the
//! step's session and leaves the journal at the step reached, for the next
//! start to resume.

use crate::CollectArgs;
use crate::hooks::DEFAULT_HOOK_TIMEOUT;
use crate::invocation_report::{Outcome, RESPONSE_STOPPED, invocation_of};
use crate::journal::{DEFAULT_BOOT_ID_PATH, DEFAULT_MAX_REBOOTS, Journal, Record, Step};
use crate::session;
use crate::step_output::StepOutput;
use anyhow::{Context, Result, anyhow};
use clap::Args;
use patchfleet_core::command::PatchOperation;
use std::future::Future;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The document step's exit status after it asked for the reboot (SSM
/// Agent's "success, reboot requested", spec §5.4): the invocation goes on
/// after the node has booted again.
pub const EXIT_REBOOTING: i32 = 194;
/// Between SIGTERM and SIGKILL when a step is stopped.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The on-exit hooks after a stop: the hook timeout and room to start.
const ON_EXIT_LIMIT: Duration = DEFAULT_HOOK_TIMEOUT.saturating_add(Duration::from_secs(30));

/// How invocations run on this node (flags of `run`, passed on to each
/// document step).
#[derive(Args, Clone, Debug)]
pub struct ExecArgs {
    /// The hook directories of AWS-RunPatchBaselineWithHooks
    /// (`pre-install.d`, `post-install.d`, `post-reboot.d`, `on-exit.d`);
    /// only root's, not group- or world-writable, entries run.
    #[arg(long, default_value = crate::hooks::DEFAULT_HOOKS_ROOT)]
    pub hooks_root: PathBuf,
    /// The file that names the running boot; the reboot an Install asked
    /// for has happened once it names another.
    #[arg(long, default_value = DEFAULT_BOOT_ID_PATH)]
    pub boot_id_file: PathBuf,
    /// The command that reboots the node, as program and arguments (default
    /// `systemctl reboot`; with a --root other than `/` nothing is rebooted
    /// unless this is given).
    #[arg(long)]
    pub reboot_command: Option<String>,
    /// Reboots one invocation may ask for; one more fails it with exit
    /// code 3 (a reboot loop).
    #[arg(long, default_value_t = DEFAULT_MAX_REBOOTS)]
    pub max_reboots: u32,
}

/// What the executor passes to every step.
#[derive(Debug)]
struct Settings {
    state_dir: PathBuf,
    collect: CollectArgs,
    exec: ExecArgs,
}

/// How a step run ended.
#[derive(Debug)]
pub enum Ended {
    /// The invocation has its result.
    Finished(Record),
    /// It asked for a reboot; it goes on after the node booted again.
    AwaitingReboot(Record),
}

#[derive(Clone, Debug)]
pub struct Executor {
    journal: Journal,
    settings: Arc<Settings>,
}

/// Why the executor stopped a running step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    TimedOut(u32),
    Cancelled,
}

impl Executor {
    /// The executor of the journal in `state_dir`.
    pub fn new(state_dir: PathBuf, collect: CollectArgs, exec: ExecArgs) -> Result<Executor> {
        let journal = Journal::open(&state_dir)?.with_boot_id_path(&exec.boot_id_file);
        Ok(Executor {
            journal,
            settings: Arc::new(Settings {
                state_dir,
                collect,
                exec,
            }),
        })
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Runs (or resumes, by its journal step) the document step of `id` in
    /// a child and waits for it to end, for its execution timeout, or for
    /// `cancel`.
    pub async fn run_step(&self, id: &str, cancel: impl Future<Output = ()>) -> Result<Ended> {
        let rec = self
            .journal
            .get(id)?
            .ok_or_else(|| anyhow!("invocation {id}: not in the journal"))?;
        if rec.is_finished() {
            return Ok(Ended::Finished(rec));
        }
        let inv = match invocation_of(&rec) {
            Ok(inv) => inv,
            Err(problem) => {
                let result = Outcome::Failed.result(1, String::new(), problem);
                return self.journal.finish(id, result).map(Ended::Finished);
            }
        };
        let timeout_secs = inv.document.step_timeout_seconds;
        let output = StepOutput::of(&self.journal, id)?;
        let mut child = self.spawn(id, &output, false)?;
        let stop = tokio::select! {
            status = child.wait() => {
                let status = status.with_context(|| format!("waiting for the step of {id}"))?;
                child.reaped();
                // What the step left behind in its session goes with it.
                session::terminate(child.sid, STOP_GRACE).await;
                return self.after_exit(id, status, &output);
            }
            () = tokio::time::sleep(Duration::from_secs(timeout_secs.into())) => Stop::TimedOut(timeout_secs),
            () = cancel => Stop::Cancelled,
        };
        child.stop().await;
        let (outcome, note) = match stop {
            Stop::TimedOut(secs) => (
                Outcome::ExecutionTimedOut,
                format!(
                    "patchfleet-agent: the step did not end within StepTimeoutSeconds ({secs} s): stopped with every process it started"
                ),
            ),
            Stop::Cancelled => (
                Outcome::Cancelled,
                "patchfleet-agent: the invocation was cancelled: the step was stopped with every process it started".to_string(),
            ),
        };
        output.note(&note)?;
        // Not when the step was in them, nor when it finished (them
        // included) in the instant before it was stopped.
        let step = self.journal.get(id)?.map(|r| r.step);
        let hooks_on_exit = inv.document.operation == PatchOperation::Install
            && inv.document.hooks.is_some_and(|h| h.on_exit)
            && !matches!(step, None | Some(Step::OnExitHooks | Step::Finished));
        if hooks_on_exit {
            self.on_exit_after_stop(id, &output).await?;
        }
        let (stdout, stderr) = output.read()?;
        let ended = self.finish(id, outcome.result(RESPONSE_STOPPED, stdout, stderr))?;
        output.remove();
        Ok(ended)
    }

    /// Finishes `id` as cancelled before or between its step runs (queued,
    /// waiting for its reboot); its output so far is kept in the result.
    pub fn cancel_idle(&self, id: &str, why: &str, response_code: i32) -> Result<Record> {
        let output = StepOutput::of(&self.journal, id)?;
        output.note(&format!("patchfleet-agent: {why}"))?;
        let (stdout, stderr) = output.read()?;
        let rec = match self.finish(id, Outcome::Cancelled.result(response_code, stdout, stderr))? {
            Ended::Finished(rec) | Ended::AwaitingReboot(rec) => rec,
        };
        output.remove();
        Ok(rec)
    }

    /// The on-exit hooks, in a child of their own, bounded by the hook timeout.
    async fn on_exit_after_stop(&self, id: &str, output: &StepOutput) -> Result<()> {
        let mut child = self.spawn(id, output, true)?;
        let ended = tokio::time::timeout(ON_EXIT_LIMIT, child.wait()).await;
        child.stop().await;
        if ended.is_err() {
            output.note("patchfleet-agent: the on-exit hooks did not end in time: stopped")?;
        }
        Ok(())
    }

    /// What the journal says after the child exited by itself.
    fn after_exit(&self, id: &str, status: ExitStatus, output: &StepOutput) -> Result<Ended> {
        let rec = self
            .journal
            .get(id)?
            .ok_or_else(|| anyhow!("invocation {id}: gone from the journal"))?;
        if rec.is_finished() {
            output.remove();
            return Ok(Ended::Finished(rec));
        }
        if status.code() == Some(EXIT_REBOOTING) && matches!(rec.step, Step::RebootRequested { .. })
        {
            return Ok(Ended::AwaitingReboot(rec));
        }
        // A step that ends without a result crashed or was killed from
        // outside; it is not run again (it may have changed the node).
        let code = match status.code() {
            Some(c) if c != 0 && c != EXIT_REBOOTING => c,
            _ => 1,
        };
        output.note(&format!(
            "patchfleet-agent: the step ended without a result ({status}) at {:?}",
            rec.step
        ))?;
        let (stdout, stderr) = output.read()?;
        let ended = self.finish(id, Outcome::Failed.result(code, stdout, stderr))?;
        output.remove();
        Ok(ended)
    }

    /// Finishes `id`, unless the step finished it first (it may have, in
    /// the instant before it was stopped): then its own result stands.
    fn finish(&self, id: &str, result: crate::journal::InvocationResult) -> Result<Ended> {
        match self.journal.finish(id, result) {
            Ok(rec) => Ok(Ended::Finished(rec)),
            Err(e) => match self.journal.get(id)? {
                Some(rec) if rec.is_finished() => Ok(Ended::Finished(rec)),
                _ => Err(e),
            },
        }
    }

    /// Starts `patchfleet-agent run-document` for `id` (this same binary:
    /// `/proc/self/exe` still names it after an upgrade replaced the file).
    fn spawn(&self, id: &str, output: &StepOutput, on_exit_only: bool) -> Result<StepChild> {
        let s = &self.settings;
        let (stdout, stderr) = output.open()?;
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command
            .arg("run-document")
            .arg("--state-dir")
            .arg(&s.state_dir)
            .arg("--invocation")
            .arg(id)
            .args(crate::run_cmd::collect_argv(&s.collect))
            .arg("--hooks-root")
            .arg(&s.exec.hooks_root)
            .arg("--boot-id-file")
            .arg(&s.exec.boot_id_file)
            .arg("--max-reboots")
            .arg(s.exec.max_reboots.to_string())
            .arg("--parent-pid")
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(c) = &s.exec.reboot_command {
            command.arg("--reboot-command").arg(c);
        }
        if on_exit_only {
            command.arg("--on-exit-only");
        }
        let child = command
            .spawn()
            .map_err(|e| anyhow!("starting the step of {id} (/proc/self/exe run-document): {e}"))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the step of {id} exited before it was seen"))?;
        Ok(StepChild {
            child,
            // The child calls setsid first: its session id is its pid.
            sid: i32::try_from(pid).map_err(|_| anyhow!("process id {pid} out of range"))?,
            reaped: false,
        })
    }
}

/// A running step: its session is killed when this is dropped before the
/// step ended (the agent stops), so nothing of it outlives the agent.
struct StepChild {
    child: tokio::process::Child,
    sid: i32,
    reaped: bool,
}

impl StepChild {
    async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    fn reaped(&mut self) {
        self.reaped = true;
    }

    /// Stops the step's session (TERM, then KILL) and reaps the child.
    async fn stop(&mut self) {
        session::terminate(self.sid, STOP_GRACE).await;
        // The leader itself, whatever the listing saw.
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        self.reaped();
    }
}

impl Drop for StepChild {
    fn drop(&mut self) {
        if !self.reaped {
            // Not reaped yet, so the pid is still ours: covers the instant
            // before the child's setsid too.
            let _ = self.child.start_kill();
        }
        session::kill_now(self.sid);
    }
}
