//! Run Command on a registered node: the invocations the server delivers
//! (`run-patch-baseline` work items) and their cancels, run one at a time
//! in arrival order through the [`Executor`], reported until the server
//! has each result.
//!
//! * Delivery is at least once. Every delivery goes through the journal
//!   (`Journal::begin`): a new invocation is journaled, acknowledged at once
//!   (the `InProgress` report) and queued; one seen before is never run
//!   again — its stored result is sent again, or its acknowledgement when it
//!   has none yet.
//! * An invocation starts only after the server accepted its
//!   acknowledgement: one it cancelled or let expire never runs.
//! * Its step runs as a spawned task, so the run loop heartbeats and polls
//!   meanwhile. An Install that asked for a reboot waits for it, holding the
//!   queue; when the node has not rebooted after `reboot_wait`, its step runs
//!   again, which asks again (counted by the reboot-loop guard).
//! * The result goes after the facts of the step's last scan (offered by
//!   hash, uploaded when unknown), so the server's compliance is current
//!   when the invocation ends; it is sent again, with backoff, until the
//!   server answers. `accepted: false` (the server no longer wants it)
//!   stops the invocation wherever it is; it is then marked reported
//!   without a report.
//! * At start: results not yet acknowledged are sent again, unfinished
//!   invocations are resumed oldest first (the step decides how, from its
//!   journal step), and old records are pruned.

use crate::channel::CallError;
use crate::channel::backoff::Backoff;
use crate::collect::{info, warn};
use crate::executor::{Ended, Executor};
use crate::facts_file;
use crate::invocation_report::{self, Outcome, RESPONSE_NOT_STARTED};
use crate::journal::{Begin, Invocation, Sidecar};
use crate::run_cmd::Stop;
use crate::server_link::{Failure, ServerLink};
use patchfleet_core::command::PatchOperation;
use patchfleet_protocol::{CAPABILITY_CANCEL, CancelInvocation, CommandInvocation, WorkItem};
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Reported records kept for de-duplication (with their results, sent
/// again when the server re-delivers); the server stops re-delivering once
/// it has a result, so this covers any realistic backlog.
pub const JOURNAL_KEEP: usize = 1000;

/// The step running now.
struct Running {
    id: String,
    cancel: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<Ended>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The agent stops: the step's future is dropped with the runtime,
        // which kills its session (executor::StepChild).
        self.task.abort();
    }
}

pub struct Invocations {
    executor: Executor,
    link: Rc<ServerLink>,
    inbox: mpsc::UnboundedReceiver<WorkItem>,
    /// Journaled, not started, in arrival order.
    queue: VecDeque<String>,
    /// Those whose acknowledgement the server accepted.
    acked: HashSet<String>,
    running: Option<Running>,
    /// An Install waiting for the reboot it asked for, since when.
    awaiting_reboot: Option<(String, Instant)>,
    reboot_wait: Duration,
    /// Finished, result not yet acknowledged, oldest first.
    unsent: VecDeque<String>,
    /// The server does not want these any more: marked reported when they end.
    unwanted: HashSet<String>,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// Refuse Install documents (`run --scan-only`).
    scan_only: bool,
}

impl Invocations {
    /// Reads the journal: results to send again, invocations to resume.
    pub fn new(
        executor: Executor,
        link: Rc<ServerLink>,
        inbox: mpsc::UnboundedReceiver<WorkItem>,
        reboot_wait: Duration,
    ) -> anyhow::Result<Invocations> {
        let journal = executor.journal();
        if let Err(e) = journal.prune(JOURNAL_KEEP) {
            warn(&format!("journal: {e:#}"));
        }
        let unsent: VecDeque<String> = journal
            .unreported()?
            .into_iter()
            .map(|r| r.invocation_id)
            .collect();
        let queue: VecDeque<String> = journal
            .unfinished()?
            .into_iter()
            .map(|r| r.invocation_id)
            .collect();
        if !queue.is_empty() {
            info(&format!(
                "resuming {} invocation(s): {}",
                queue.len(),
                Vec::from(queue.clone()).join(", ")
            ));
        }
        Ok(Invocations {
            executor,
            link,
            inbox,
            queue,
            acked: HashSet::new(),
            running: None,
            awaiting_reboot: None,
            reboot_wait,
            unsent,
            unwanted: HashSet::new(),
            backoff: Backoff::default(),
            retry_at: None,
            scan_only: false,
        })
    }

    /// Installs are refused: each ends failed, saying why, without running.
    pub fn scan_only(mut self, yes: bool) -> Invocations {
        self.scan_only = yes;
        self
    }

    /// Runs until the server refuses the node.
    pub async fn run(mut self) -> Stop {
        loop {
            if let Err(stop) = self.catch_up().await {
                return stop;
            }
            let wake = self.next_wake();
            tokio::select! {
                item = self.inbox.recv() => match item {
                    Some(item) => {
                        if let Err(stop) = self.receive(item).await {
                            return stop;
                        }
                    }
                    // The run loop is gone: so is the agent.
                    None => std::future::pending::<()>().await,
                },
                ended = wait_running(&mut self.running) => self.step_ended(ended),
                () = sleep_until(wake) => {}
            }
        }
    }

    /// The next instant something is due without a message: a retry, the
    /// end of a reboot wait.
    fn next_wake(&self) -> Option<Instant> {
        let reboot = self
            .awaiting_reboot
            .as_ref()
            .map(|(_, t)| *t + self.reboot_wait);
        [self.retry_at, reboot].into_iter().flatten().min()
    }

    /// Sends what is due and starts the next step when idle. A call that
    /// fails leaves the rest for the retry.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        if let Some((id, since)) = &self.awaiting_reboot
            && now >= *since + self.reboot_wait
        {
            info(&format!(
                "invocation {id}: the node has not rebooted within {} s; running its step again",
                self.reboot_wait.as_secs()
            ));
            self.queue.push_front(id.clone());
            self.awaiting_reboot = None;
        }
        if self.retry_at.is_some_and(|t| now < t) {
            return Ok(());
        }
        self.retry_at = None;
        match self.send_due().await {
            Ok(()) => {
                self.backoff.reset();
                Ok(())
            }
            Err(Failure::Call(CallError::Refused { status, detail })) => {
                Err(Stop::Deregistered(format!("{status}: {detail}")))
            }
            Err(Failure::Call(e)) => {
                let delay = self.backoff.next_random();
                warn(&format!(
                    "invocations: {e}; retrying in {:.1}s",
                    delay.as_secs_f64()
                ));
                self.retry_at = Some(Instant::now() + delay);
                Ok(())
            }
            Err(Failure::Local(e)) => {
                warn(&format!("invocations: {e:#}"));
                Ok(())
            }
        }
    }

    async fn send_due(&mut self) -> Result<(), Failure> {
        while let Some(id) = self.unsent.front().cloned() {
            self.send_result(&id).await?;
            self.unsent.pop_front();
        }
        if self.running.is_none() && self.awaiting_reboot.is_none() {
            while let Some(id) = self.queue.front().cloned() {
                if !self.acked.contains(&id) {
                    self.acknowledge(&id).await?;
                }
                // Refused, it left the queue.
                if self.queue.front() == Some(&id) {
                    self.queue.pop_front();
                    self.acked.remove(&id);
                    self.start(id);
                    break;
                }
            }
        }
        Ok(())
    }

    /// Sends the `InProgress` report of `id`: accepted → it may run;
    /// refused → it never runs.
    async fn acknowledge(&mut self, id: &str) -> Result<(), Failure> {
        let Some(rec) = self.executor.journal().get(id).map_err(Failure::Local)? else {
            return Ok(());
        };
        let ack = self
            .link
            .report(id, &invocation_report::in_progress(&rec))
            .await?;
        if !ack.accepted {
            self.unwanted_now(id);
        } else if self.queue.iter().any(|q| q == id) {
            self.acked.insert(id.to_string());
        }
        Ok(())
    }

    /// The server no longer wants `id`: stopped wherever it is, never reported.
    fn unwanted_now(&mut self, id: &str) {
        info(&format!(
            "invocation {id}: the server no longer wants it (cancelled, expired or the node deregistered)"
        ));
        self.unwanted.insert(id.to_string());
        if !self.cancel(id, "the server no longer wants this invocation") {
            self.mark_reported(id);
        }
    }

    fn start(&mut self, id: String) {
        info(&format!("invocation {id}: running"));
        let (tx, rx) = oneshot::channel::<()>();
        let executor = self.executor.clone();
        let step_id = id.clone();
        let task = tokio::spawn(async move {
            executor
                .run_step(&step_id, async {
                    // A dropped sender is no cancel: the invocation runs on.
                    if rx.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                })
                .await
        });
        self.running = Some(Running {
            id,
            cancel: Some(tx),
            task,
        });
    }

    fn step_ended(&mut self, ended: Result<anyhow::Result<Ended>, tokio::task::JoinError>) {
        let Some(running) = self.running.take() else {
            return;
        };
        let id = running.id.clone();
        match ended {
            Ok(Ok(Ended::Finished(rec))) => {
                let status = rec.result.as_ref().map_or("?", |r| r.status.as_str());
                info(&format!("invocation {id}: {status}"));
                self.finished(&id);
            }
            Ok(Ok(Ended::AwaitingReboot(rec))) => {
                info(&format!(
                    "invocation {id}: waiting for the node to reboot (reboot {})",
                    rec.reboots
                ));
                self.awaiting_reboot = Some((id, Instant::now()));
            }
            Ok(Err(e)) => self.failed_to_run(&id, &format!("{e:#}")),
            Err(e) => self.failed_to_run(&id, &format!("the step's task failed: {e}")),
        }
    }

    /// The executor could not run `id` (the journal or the state directory
    /// failed): finished as failed if the journal still takes it, else
    /// left for the next start.
    fn failed_to_run(&mut self, id: &str, problem: &str) {
        warn(&format!("invocation {id}: {problem}"));
        let result = Outcome::Failed.result(1, String::new(), problem.to_string());
        match self.executor.journal().finish(id, result) {
            Ok(_) => self.finished(id),
            Err(e) => warn(&format!("invocation {id}: {e:#}")),
        }
    }

    /// `id` has its result: report it, unless the server said it does
    /// not want it.
    fn finished(&mut self, id: &str) {
        if self.unwanted.remove(id) {
            self.mark_reported(id);
        } else if !self.unsent.iter().any(|u| u == id) {
            self.unsent.push_back(id.to_string());
        }
    }

    fn mark_reported(&mut self, id: &str) {
        if let Err(e) = self.executor.journal().mark_reported(id) {
            warn(&format!("invocation {id}: {e:#}"));
        }
        self.remove_facts(id);
    }

    fn remove_facts(&self, id: &str) {
        for kind in [Sidecar::Facts, Sidecar::ScanSummary] {
            if let Ok(p) = self.executor.journal().sidecar(id, kind) {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// The facts of the step's last scan, then the result.
    async fn send_result(&mut self, id: &str) -> Result<(), Failure> {
        let journal = self.executor.journal();
        let rec = journal.get(id).map_err(Failure::Local)?;
        let Some(report) = rec.as_ref().and_then(invocation_report::terminal) else {
            return Ok(());
        };
        let summary_path = journal
            .sidecar(id, Sidecar::ScanSummary)
            .map_err(Failure::Local)?;
        let facts_path = journal
            .sidecar(id, Sidecar::Facts)
            .map_err(Failure::Local)?;
        match facts_file::read_summary(&summary_path) {
            Ok(Some(scan)) => {
                match self
                    .link
                    .offer_facts(&scan.summary, scan.scanned_at, &facts_path)
                    .await
                {
                    Ok(()) => {}
                    Err(Failure::Local(e)) => warn(&format!("invocation {id}: {e:#}")),
                    Err(e) => return Err(e),
                }
            }
            Ok(None) => {}
            Err(e) => warn(&format!("invocation {id}: {e:#}")),
        }
        self.remove_facts(id);
        let ack = self.link.report(id, &report).await?;
        if !ack.accepted {
            info(&format!(
                "invocation {id}: the server no longer wants its result"
            ));
        }
        self.mark_reported(id);
        if let Err(e) = self.executor.journal().prune(JOURNAL_KEEP) {
            warn(&format!("journal: {e:#}"));
        }
        Ok(())
    }

    async fn receive(&mut self, item: WorkItem) -> Result<(), Stop> {
        let result = if item.kind == CAPABILITY_CANCEL {
            self.receive_cancel(&item);
            Ok(())
        } else {
            self.receive_invocation(item).await
        };
        match result {
            Err(Failure::Call(CallError::Refused { status, detail })) => {
                Err(Stop::Deregistered(format!("{status}: {detail}")))
            }
            // The acknowledgement is sent again before the invocation starts.
            Err(Failure::Call(e)) => {
                warn(&format!("invocations: {e}"));
                Ok(())
            }
            Err(Failure::Local(e)) => {
                warn(&format!("invocations: {e:#}"));
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    async fn receive_invocation(&mut self, item: WorkItem) -> Result<(), Failure> {
        let parsed = serde_json::from_value::<CommandInvocation>(item.parameters.clone());
        let command_id = match &parsed {
            Ok(inv) => inv.command_id.clone(),
            Err(_) => item.parameters["command_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        let inv = Invocation {
            invocation_id: item.id.clone(),
            command_id,
            document: item.parameters,
        };
        let id = item.id;
        match self
            .executor
            .journal()
            .begin(&inv)
            .map_err(Failure::Local)?
        {
            Begin::New(rec) => {
                info(&format!("invocation {id}: received"));
                let refusal = match invocation_report::invocation_of(&rec) {
                    Err(problem) => Some(problem),
                    Ok(inv)
                        if self.scan_only && inv.document.operation == PatchOperation::Install =>
                    {
                        Some(
                            "this agent runs Scan only (patchfleet-agent run --scan-only): \
                             Install refused, nothing was changed"
                                .to_string(),
                        )
                    }
                    Ok(_) => None,
                };
                if let Some(problem) = refusal {
                    // Never runs; the failure says why.
                    let result = Outcome::Failed.result(1, String::new(), problem);
                    self.executor
                        .journal()
                        .finish(&id, result)
                        .map_err(Failure::Local)?;
                    self.finished(&id);
                    return Ok(());
                }
                self.queue.push_back(id.clone());
                self.acknowledge(&id).await
            }
            Begin::AlreadyKnown(rec) if rec.is_finished() => {
                // The server has not seen the result: send it again.
                self.finished(&id);
                Ok(())
            }
            // Queued, running or waiting for its reboot: only the
            // acknowledgement may have been lost.
            Begin::AlreadyKnown(_) => self.acknowledge(&id).await,
        }
    }

    fn receive_cancel(&mut self, item: &WorkItem) {
        let id = match serde_json::from_value::<CancelInvocation>(item.parameters.clone()) {
            Ok(c) => c.invocation_id,
            Err(e) => {
                warn(&format!("work {}: not a cancel: {e}", item.id));
                return;
            }
        };
        info(&format!("invocation {id}: cancel requested"));
        if self.cancel(&id, "the invocation was cancelled") {
            return;
        }
        let journal = self.executor.journal();
        match journal.get(&id) {
            // Its result stands (the server gets it, if it has not).
            Ok(Some(rec)) if rec.is_finished() => {}
            Ok(Some(_)) => {
                // Journaled but in none of the lists: finish it here.
                self.cancel_idle(&id, "the invocation was cancelled");
            }
            // Never received: journaled as cancelled, so a late delivery
            // never runs; the server knows, nothing to report.
            Ok(None) => {
                let inv = Invocation {
                    invocation_id: id.clone(),
                    command_id: String::new(),
                    document: serde_json::Value::Null,
                };
                let result = journal.begin(&inv).and_then(|_| {
                    journal.finish(
                        &id,
                        Outcome::Cancelled.result(
                            RESPONSE_NOT_STARTED,
                            String::new(),
                            "cancelled before it was received".into(),
                        ),
                    )
                });
                match result {
                    Ok(_) => self.mark_reported(&id),
                    Err(e) => warn(&format!("invocation {id}: {e:#}")),
                }
            }
            Err(e) => warn(&format!("invocation {id}: {e:#}")),
        }
    }

    /// Stops `id` if it is running, queued or waiting for its reboot;
    /// `false` when it is none of these.
    fn cancel(&mut self, id: &str, why: &str) -> bool {
        if let Some(running) = self.running.as_mut().filter(|r| r.id == id) {
            // The step ends as Cancelled; step_ended reports it.
            if let Some(tx) = running.cancel.take() {
                let _ = tx.send(());
            }
            return true;
        }
        if let Some(pos) = self.queue.iter().position(|q| q == id) {
            self.queue.remove(pos);
            self.acked.remove(id);
            self.cancel_idle(id, &format!("{why} before it started"));
            return true;
        }
        if self.awaiting_reboot.as_ref().is_some_and(|(a, _)| a == id) {
            self.awaiting_reboot = None;
            self.cancel_idle(id, &format!("{why} while it waited for the node to reboot"));
            return true;
        }
        false
    }

    fn cancel_idle(&mut self, id: &str, why: &str) {
        let started = self
            .executor
            .journal()
            .get(id)
            .ok()
            .flatten()
            .is_some_and(|r| r.transitions.len() > 1);
        let code = if started {
            invocation_report::RESPONSE_STOPPED
        } else {
            RESPONSE_NOT_STARTED
        };
        match self.executor.cancel_idle(id, why, code) {
            Ok(_) => self.finished(id),
            Err(e) => warn(&format!("invocation {id}: {e:#}")),
        }
    }
}

async fn wait_running(
    running: &mut Option<Running>,
) -> Result<anyhow::Result<Ended>, tokio::task::JoinError> {
    match running {
        Some(r) => (&mut r.task).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
