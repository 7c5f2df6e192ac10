//! `patchfleet-agent run`: the long-running loop of a registered node.
//!
//! Heartbeats every `heartbeat_seconds`; a scan (facts offered by hash,
//! uploaded only when the server does not know them) at start and for each
//! `scan` work item; a long poll for work in between. `run-patch-baseline`
//! and `cancel` items go to the invocations (`invocations`), which run
//! beside this loop on the same thread. Completed scan and cancel ids are
//! kept in the state directory, so a restart never reruns an item the
//! server re-delivers (invocations are de-duplicated by their journal).
//! Failures to reach the server are retried with capped, jittered
//! exponential backoff; the loop ends only on SIGTERM/SIGINT (exit 0) or
//! when the server refuses the node's certificate (exit 3: the node was
//! deregistered; restarting would not help).

use crate::CollectArgs;
use crate::channel::backoff::Backoff;
use crate::channel::state::{DoneList, StateDir};
use crate::channel::{self, CallError};
use crate::collect::warn;
use crate::executor::{ExecArgs, Executor};
use crate::facts_file::ScanSummary;
use crate::invocations::Invocations;
use crate::register_cmd::DEFAULT_STATE_DIR;
use crate::server_link::{Failure, ServerLink};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use jiff::Timestamp;
use patchfleet_protocol::{
    CAPABILITY_CANCEL, CAPABILITY_RUN_PATCH_BASELINE, CAPABILITY_SCAN, Heartbeat, Platform,
    WorkItem,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The exit status when the server no longer accepts this node.
pub const EXIT_DEREGISTERED: u8 = 3;
/// The server's heartbeat interval is honoured within these bounds: a
/// misconfigured server must not make a fleet hammer it, nor go silent.
const MIN_HEARTBEAT: u32 = 5;
const MAX_HEARTBEAT: u32 = 3600;

#[derive(Args)]
pub struct RunArgs {
    /// Where `register` left the node's key, certificate and id.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub collect: CollectArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Seconds an Install waits for the reboot it asked for before it asks
    /// again (counted by the reboot-loop guard).
    #[arg(long, default_value_t = 600)]
    pub reboot_wait: u64,
    /// Run Scan documents only: an Install ends failed without touching the
    /// system (what `patchfleet dev` starts without --allow-install).
    #[arg(long)]
    pub scan_only: bool,
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let state = StateDir::new(&args.state_dir);
    let reg = state.registration()?;
    let client = channel::mtls_client(&reg, &state)?;
    let base = channel::base_url(&reg.node.server).map_err(|e| {
        anyhow!(
            "{}: {e}",
            state.path(crate::channel::state::NODE_FILE).display()
        )
    })?;
    let platform = channel::platform(&args.collect)?;
    let link = Rc::new(ServerLink::new(client, base));
    let executor = Executor::new(
        args.state_dir.clone(),
        args.collect.clone(),
        args.exec.clone(),
    )?;
    let (to_invocations, inbox) = mpsc::unbounded_channel();
    let mut agent = Agent {
        link: link.clone(),
        done: state.done(),
        state,
        collect: args.collect.clone(),
        heartbeat: heartbeat_interval(reg.node.heartbeat_seconds),
        platform,
        node_id: reg.node.node_id.clone(),
        unsent: None,
        to_invocations,
    };
    // One thread: the agent waits on one thing at a time; scans run on a
    // blocking thread that exists only while they do.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("starting the runtime: {e}"))?;
    crate::collect::info(&format!(
        "running as {} with {}",
        agent.node_id,
        link.base().as_str().trim_end_matches('/')
    ));
    let outcome = runtime.block_on(async {
        // Inside the runtime: it spawns the steps it runs.
        let invocations =
            Invocations::new(executor, link, inbox, Duration::from_secs(args.reboot_wait))?
                .scan_only(args.scan_only);
        Ok::<_, anyhow::Error>(tokio::select! {
            stop = agent.run() => stop,
            stop = invocations.run() => stop,
            signal = shutdown_signal() => Stop::Signal(signal),
        })
    });
    // A scan still running on its blocking thread is not waited for: its
    // children are in their own process groups and systemd stops them. A
    // running document step is stopped with its session; the journal
    // keeps the step it reached for the next start.
    runtime.shutdown_background();
    let outcome = outcome?;
    match outcome {
        Stop::Signal(name) => {
            crate::collect::info(&format!("{name}: stopping"));
            Ok(ExitCode::SUCCESS)
        }
        Stop::Deregistered(detail) => {
            eprintln!(
                "patchfleet-agent: the server no longer accepts node {} ({detail}): it was deregistered or its certificate revoked; register it again (patchfleet-agent register --force …)",
                reg.node.node_id
            );
            Ok(ExitCode::from(EXIT_DEREGISTERED))
        }
    }
}

pub enum Stop {
    Signal(&'static str),
    Deregistered(String),
}

pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(e), _) | (_, Err(e)) => {
            warn(&format!("cannot watch for SIGTERM/SIGINT: {e}"));
            std::future::pending().await
        }
    }
}

pub fn heartbeat_interval(seconds: u32) -> Duration {
    Duration::from_secs(seconds.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT).into())
}

struct Agent {
    link: Rc<ServerLink>,
    state: StateDir,
    done: DoneList,
    collect: CollectArgs,
    heartbeat: Duration,
    platform: Platform,
    node_id: String,
    /// A scan not yet accepted by the server: offered again as it is
    /// instead of scanning again after a network failure.
    unsent: Option<(ScanSummary, Timestamp)>,
    /// Where `run-patch-baseline` and `cancel` items go.
    to_invocations: mpsc::UnboundedSender<WorkItem>,
}

impl Agent {
    async fn run(&mut self) -> Stop {
        let mut scan_needed = true;
        let mut pending: VecDeque<WorkItem> = VecDeque::new();
        let mut next_heartbeat = Instant::now();
        let mut backoff = Backoff::default();
        loop {
            match self
                .step(&mut scan_needed, &mut pending, &mut next_heartbeat)
                .await
            {
                Ok(()) => backoff.reset(),
                Err(Failure::Call(CallError::Refused { status, detail })) => {
                    return Stop::Deregistered(format!("{status}: {detail}"));
                }
                Err(Failure::Call(e)) => {
                    let delay = backoff.next_random();
                    warn(&format!("{e}; retrying in {:.1}s", delay.as_secs_f64()));
                    tokio::time::sleep(delay).await;
                }
                Err(Failure::Local(e)) => warn(&format!("{e:#}")),
            }
        }
    }

    async fn step(
        &mut self,
        scan_needed: &mut bool,
        pending: &mut VecDeque<WorkItem>,
        next_heartbeat: &mut Instant,
    ) -> Result<(), Failure> {
        if Instant::now() >= *next_heartbeat {
            self.send_heartbeat().await?;
            *next_heartbeat = Instant::now() + self.heartbeat;
        }
        if *scan_needed {
            match self.scan_and_offer().await {
                Ok(()) => *scan_needed = false,
                // A failed collection is reported, not retried in a loop;
                // the server asks again when it needs facts.
                Err(Failure::Local(e)) => {
                    *scan_needed = false;
                    return Err(Failure::Local(e));
                }
                Err(e) => return Err(e),
            }
        }
        while let Some(item) = pending.front().cloned() {
            if item.kind == CAPABILITY_SCAN {
                let result = self.scan_and_offer().await;
                if let Err(Failure::Call(e)) = result {
                    return Err(Failure::Call(e));
                }
                // One scan answers every scan item queued with it.
                let scans: Vec<String> = pending
                    .iter()
                    .filter(|w| w.kind == CAPABILITY_SCAN)
                    .map(|w| w.id.clone())
                    .collect();
                pending.retain(|w| w.kind != CAPABILITY_SCAN);
                for id in &scans {
                    self.done.insert(id);
                }
                self.save_done();
                if let Err(Failure::Local(e)) = result {
                    return Err(Failure::Local(
                        e.context(format!("work {}", scans.join(", "))),
                    ));
                }
            } else {
                warn(&format!(
                    "work {}: kind {:?} is not one this agent announced; skipped",
                    item.id, item.kind
                ));
                pending.pop_front();
                self.done.insert(&item.id);
                self.save_done();
            }
        }
        let until_heartbeat = next_heartbeat.saturating_duration_since(Instant::now());
        let wait = until_heartbeat
            .as_secs()
            .clamp(1, channel::LONG_POLL_SECONDS);
        let work = self.link.work(wait).await?;
        for item in work.items {
            match item.kind.as_str() {
                // The journal de-duplicates them (a finished one's result
                // is sent again).
                CAPABILITY_RUN_PATCH_BASELINE => self.hand_over(item),
                CAPABILITY_CANCEL if !self.done.contains(&item.id) => {
                    let id = item.id.clone();
                    self.hand_over(item);
                    self.done.insert(&id);
                    self.save_done();
                }
                CAPABILITY_CANCEL => {}
                _ if !self.done.contains(&item.id) && !pending.iter().any(|w| w.id == item.id) => {
                    pending.push_back(item);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn hand_over(&self, item: WorkItem) {
        if let Err(e) = self.to_invocations.send(item) {
            warn(&format!("work {}: the invocations have stopped", e.0.id));
        }
    }

    fn save_done(&self) {
        if let Err(e) = self.state.save_done(&self.done) {
            warn(&format!(
                "{e:#} (completed work may run again after a restart)"
            ));
        }
    }

    async fn send_heartbeat(&mut self) -> Result<(), Failure> {
        // Re-read: an OS upgrade changes the platform without a restart.
        match channel::platform(&self.collect) {
            Ok(p) => self.platform = p,
            Err(e) => warn(&format!("{e:#}; reporting the platform read earlier")),
        }
        let ip = channel::local_ip_towards(self.link.base()).await;
        let body = Heartbeat {
            agent: channel::agent_info(self.platform.clone(), channel::hostname(&self.collect), ip),
        };
        if let Some(ack) = self.link.heartbeat(&body).await? {
            self.heartbeat = heartbeat_interval(ack.heartbeat_seconds);
        }
        Ok(())
    }

    async fn scan_and_offer(&mut self) -> Result<(), Failure> {
        let (summary, scanned_at) = match self.unsent.take() {
            Some(unsent) => unsent,
            None => {
                let args = self.collect.clone();
                let out = self.state.path(FACTS_FILE);
                let summary = tokio::task::spawn_blocking(move || scan_in_child(&args, &out))
                    .await
                    .map_err(|e| Failure::Local(anyhow!("the scan stopped: {e}")))?
                    .map_err(|e| Failure::Local(e.context("scan")))?;
                (summary, Timestamp::now())
            }
        };
        let result = self
            .link
            .offer_facts(&summary, scanned_at, &self.state.path(FACTS_FILE))
            .await;
        if result.is_err() {
            self.unsent = Some((summary, scanned_at));
        }
        result
    }
}

/// The file the scanning child leaves the facts in (state directory).
pub const FACTS_FILE: &str = "facts.json.gz";

/// Arguments of the hidden `collect-for-server` command: what `run` starts
/// for each scan.
#[derive(Args)]
pub struct CollectForServerArgs {
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Where to write the facts (gzip JSON, replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

/// The scan, in the child: facts to `--out`, the summary to stdout.
pub fn collect_for_server(args: &CollectForServerArgs) -> Result<ExitCode> {
    let facts = crate::collect::collect(&args.collect)?;
    let summary = crate::facts_file::store(&facts, &args.out)?;
    crate::emit(&format!("{}\n", serde_json::to_string(&summary)?))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the scan in a child process (this same binary): a scan reads every
/// repository index and peaks at tens to hundreds of MB, which the
/// allocator would keep in the long-running agent; in a child it goes back
/// to the system at exit, and a scan that crashes takes only itself down.
/// `/proc/self/exe` still names this binary after a package upgrade
/// replaced the file.
fn scan_in_child(args: &CollectArgs, out: &std::path::Path) -> Result<ScanSummary> {
    let mut command = std::process::Command::new("/proc/self/exe");
    command
        .arg("collect-for-server")
        .args(collect_argv(args))
        .arg("--out")
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    let output = command
        .output()
        .map_err(|e| anyhow!("starting the scan (/proc/self/exe collect-for-server): {e}"))?;
    if !output.status.success() {
        // The child already said why on standard error (the journal).
        bail!("the scan failed ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).map_err(|e| anyhow!("the scan's summary: {e}"))
}

/// `args` as the command line that parses back to them.
pub fn collect_argv(args: &CollectArgs) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec!["--root".into(), args.root.clone().into()];
    if args.refresh {
        v.push("--refresh".into());
    }
    if let Some(t) = args.boot_time {
        v.push("--boot-time".into());
        v.push(t.to_string().into());
    }
    if let Some(k) = &args.kernel_release {
        v.push("--kernel-release".into());
        v.push(k.into());
    }
    if let Some(p) = &args.os_release {
        v.push("--os-release".into());
        v.push(p.clone().into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_interval_is_bounded() {
        assert_eq!(heartbeat_interval(0), Duration::from_secs(5));
        assert_eq!(heartbeat_interval(60), Duration::from_secs(60));
        assert_eq!(heartbeat_interval(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn collect_arguments_round_trip_through_the_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Probe {
            #[command(flatten)]
            collect: CollectArgs,
        }
        let args = CollectArgs {
            root: "/srv/image root".into(),
            refresh: true,
            boot_time: Some("2026-01-02T03:04:05Z".parse().unwrap()),
            kernel_release: Some("6.1.0-26-amd64".into()),
            os_release: Some("/tmp/os-release".into()),
        };
        let argv = std::iter::once("probe".into()).chain(collect_argv(&args));
        let back = Probe::try_parse_from(argv).unwrap().collect;
        assert_eq!(back.root, args.root);
        assert!(back.refresh);
        assert_eq!(back.boot_time, args.boot_time);
        assert_eq!(back.kernel_release, args.kernel_release);
        assert_eq!(back.os_release, args.os_release);
        let bare = CollectArgs {
            root: "/".into(),
            refresh: false,
            boot_time: None,
            kernel_release: None,
            os_release: None,
        };
        assert_eq!(collect_argv(&bare), ["--root", "/"]);
    }
}
