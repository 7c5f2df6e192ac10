//! Run Command end to end: a real server, real `patchfleet-agent run`
//! processes on APT test beds (`crates/pkg/tests/testbed/apt/build.sh`),
//! commands sent to `/api/v1/commands` over HTTPS, and each outcome read
//! three ways: the server's invocations, the agents' own journals
//! (`<state>/invocations/<id>.json`) and the beds' dpkg databases.
//!
//! * Rate control: a Scan then an Install over five nodes with
//!   MaxConcurrency 2 never have more than two invocations in flight (from
//!   the server's dispatch and end times and from the journals), and the
//!   Install, whose runs last, has two at once; the compliance is current
//!   when the command ends, without a scan of its own; the output is cut
//!   as SSM cuts it and whole from the object store. With MaxErrors 0
//!   and one install failing for real (its package file gone from that
//!   node's repository) the rollout stops: the nodes not started are
//!   `Terminated`, never delivered, their beds untouched. NoReboot leaves
//!   the installs `InstalledPendingReboot` until a "reboot" and a Scan
//!   command.
//! * Reboots and timeouts: RebootIfNeeded through a simulated reboot (the
//!   agent killed, a new boot id and boot time, a fresh run directory, the
//!   agent started again) ends in one Success with the reboot counted; an
//!   agent killed in the middle of its step leaves the invocation to the
//!   server's expiry (`DeliveryTimedOut`); a step that overruns
//!   StepTimeoutSeconds is stopped and reported `ExecutionTimedOut` by its
//!   agent.
//! * The server killed (SIGKILL) mid-rollout and started again on its data
//!   directory: the rollout completes, and every node's journal shows its
//!   invocation run exactly once.
//! * An InstallOverrideList installs exactly its package; a cancel ends the
//!   invocations not yet delivered at once and stops the running one; hooks
//!   run in order and a failing one aborts the run.
//!
//! The server runs in-process (`server::start`), except in the SIGKILL test,
//! which runs the `patchfleet` binary next to the agent's. Hooks live under
//! cargo's target directory: the agent runs hooks only from directories
//! nobody but root can write.

#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use common::{TempDir, build_apt_testbed};
use jiff::Timestamp;
use patchfleet_server::config::Config;
use patchfleet_server::server::{Running, start};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::fleet::{Agents, Api, expect, register, states};
use support::{Hooks, boot_between_installs, count, gone, steps, wait_for_lines};

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");
/// The packages of the APT test bed.
const PACKAGES: [&str; 3] = ["tb-hello", "tb-kernel", "tb-tool"];
/// The tag every test node gets from its activation.
const TAG: &str = "tag:Environment";
const TAG_VALUE: &str = "e2e";

/// How to reach a server as its administrator.
struct Access {
    url: String,
    ca_fingerprint: String,
    ca_pem: String,
    key_id: String,
    secret: String,
}

impl Access {
    fn of(running: &Running) -> Access {
        let key = running.bootstrap_key.clone().unwrap();
        Access {
            url: running.url(),
            ca_fingerprint: running.ca_fingerprint.clone(),
            ca_pem: running.ca_pem.clone(),
            key_id: key.access_key_id,
            secret: key.secret_access_key,
        }
    }

    fn api(&self) -> Api {
        Api::new(self.url.clone(), &self.ca_pem, &self.key_id, &self.secret)
    }
}

async fn start_server(dir: &Path) -> Running {
    start(Config {
        data_dir: dir.join("server"),
        listen: "127.0.0.1:0".parse().unwrap(),
        // The agent's floor.
        heartbeat_seconds: 5,
        ..Config::default()
    })
    .await
    .unwrap()
}

/// One managed node: an APT test bed (`dir/root`, its repository in
/// `dir/repo`), the agent's state directory, boot and hook directories.
struct Node {
    name: String,
    id: String,
    dir: PathBuf,
    hooks: Hooks,
    boot_time: String,
    /// The node's flags beyond these (its reboot command).
    extra: Vec<OsString>,
}

impl Node {
    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// The flags of its `patchfleet-agent run`.
    fn args(&self) -> Vec<OsString> {
        let mut args = support::node_flags(
            &self.state(),
            &self.root(),
            &self.boot_time,
            &self.dir.join("boot_id"),
        );
        args.extend(["--hooks-root".into(), self.hooks.root().into()]);
        args.extend(self.extra.iter().cloned());
        args
    }

    fn boot(&self, id: &str) {
        std::fs::write(self.dir.join("boot_id"), format!("{id}\n")).unwrap();
    }

    /// A reboot as the agent sees one: a new boot id and boot time, and
    /// `/run` empty again (the reboot flag of the bed's packages gone).
    fn reboot(&mut self, boot_id: &str) {
        self.boot(boot_id);
        self.boot_time = boot_between_installs();
        for f in ["reboot-required", "reboot-required.pkgs"] {
            let _ = std::fs::remove_file(self.root().join("var/run").join(f));
        }
    }

    fn versions(&self) -> BTreeMap<String, String> {
        PACKAGES
            .iter()
            .map(|p| (p.to_string(), support::installed_version(&self.root(), p)))
            .collect()
    }

    fn dpkg_status(&self) -> String {
        std::fs::read_to_string(self.root().join("var/lib/dpkg/status")).unwrap()
    }

    /// The journal's records of `command`'s invocations on this node.
    fn journal(&self, command: &str) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(self.state().join("invocations")) else {
            return Vec::new();
        };
        dir.map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| serde_json::from_slice::<Value>(&std::fs::read(&p).unwrap()).unwrap())
            .filter(|r| r["command_id"] == command)
            .collect()
    }

    /// The one journal record of `command` on this node.
    fn record(&self, command: &str) -> Value {
        let mut records = self.journal(command);
        assert_eq!(records.len(), 1, "{}: {records:#?}", self.name);
        records.pop().unwrap()
    }

    /// A script in the bed folder, to be the node's `--reboot-command`.
    fn reboot_command(dir: &Path, body: &str) -> Vec<OsString> {
        let script = dir.join("reboot-command");
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        vec!["--reboot-command".into(), script.into()]
    }
}

/// The time a journal record reached `step` (its first time).
fn step_at(rec: &Value, step: &str) -> Timestamp {
    rec["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["step"] == step)
        .unwrap_or_else(|| panic!("no {step} in {rec:#}"))["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn time(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

/// Processes a test leaves behind on purpose (the step of an agent it
/// killed), killed on every way out.
struct Reap(Vec<i32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Test-bed nodes registered with one server, their agents running.
struct Fleet {
    api: Api,
    agents: Agents,
    /// In node id order: the order a rollout dispatches in.
    nodes: Vec<Node>,
    started: Instant,
    /// From the start to every node's first scan.
    ready: Duration,
    _tmp: TempDir,
}

impl Fleet {
    /// Builds a bed per name, registers each through one activation (tag
    /// `Environment=e2e`), starts its agent with the flags `extra` gives
    /// for (name, bed folder), and waits for every node's first scan.
    async fn start(
        tmp: TempDir,
        server: &Access,
        names: &[&str],
        extra: impl Fn(&str, &Path) -> Vec<OsString>,
    ) -> Fleet {
        let started = Instant::now();
        let dirs: Vec<PathBuf> = names.iter().map(|n| tmp.0.join(n)).collect();
        {
            let dirs = dirs.clone();
            tokio::task::spawn_blocking(move || {
                std::thread::scope(|s| {
                    for d in &dirs {
                        s.spawn(move || build_apt_testbed(d));
                    }
                })
            })
            .await
            .unwrap();
        }
        // After the beds' own installs, before the test's: what a test
        // installs with NoReboot is pending a reboot.
        let boot_time = boot_between_installs();
        let api = server.api();
        let activation = api
            .post(
                "/api/v1/activations",
                json!({
                    "description": "commands test",
                    "registration_limit": names.len(),
                    "tags": {"Environment": TAG_VALUE},
                }),
            )
            .await;
        let mut agents = Agents::new(tmp.0.join("logs"));
        let mut nodes = Vec::new();
        for (name, dir) in names.iter().zip(dirs) {
            // The bed's own install raised the reboot flag: it "rebooted".
            for f in ["reboot-required", "reboot-required.pkgs"] {
                let _ = std::fs::remove_file(dir.join("root/var/run").join(f));
            }
            let (code, stdout, stderr) = register(
                &server.url,
                &server.ca_fingerprint,
                &activation,
                &dir.join("state"),
                &dir.join("root"),
            )
            .await;
            assert_eq!(code, Some(0), "register {name}: {stderr}");
            let node = Node {
                name: name.to_string(),
                id: stdout.trim().to_string(),
                hooks: Hooks::new(
                    &format!("{}-{name}", tmp.0.file_name().unwrap().to_string_lossy()),
                    dir.join("hooks.log"),
                ),
                extra: extra(name, &dir),
                dir,
                boot_time: boot_time.clone(),
            };
            node.boot("boot-A");
            agents.spawn_args(name, &node.args());
            nodes.push(node);
        }
        for n in &nodes {
            api.wait_for_patches(&n.id, &mut agents, &n.name).await;
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Fleet {
            api,
            agents,
            nodes,
            started,
            ready: started.elapsed(),
            _tmp: tmp,
        }
    }

    /// [`Fleet::start`] with a server of its own in this process.
    async fn in_process(
        tag: &str,
        names: &[&str],
        extra: impl Fn(&str, &Path) -> Vec<OsString>,
    ) -> (Fleet, Running) {
        let tmp = TempDir::new(tag);
        let running = start_server(&tmp.0).await;
        let fleet = Fleet::start(tmp, &Access::of(&running), names, extra).await;
        (fleet, running)
    }

    /// Stops the agents; the test's times go to standard error (seen with
    /// --nocapture).
    fn finish(self, test: &str) {
        eprintln!(
            "{test}: fleet ready {:.1}s, whole test {:.1}s",
            self.ready.as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        );
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    /// The node's compliance (`/api/v1/nodes/{id}/patches`).
    async fn patches(&self, name: &str) -> Value {
        let id = &self.node(name).id;
        self.api.get(&format!("/api/v1/nodes/{id}/patches")).await
    }

    /// An Install (NoReboot) of every node, `max_concurrency` at a time,
    /// each run lasting `seconds` longer: a pre-install hook `sleep`s.
    async fn slow_install(&self, seconds: u32, max_concurrency: &str) -> String {
        for n in &self.nodes {
            n.hooks
                .add("pre-install.d", "sleep", &format!("sleep {seconds}"));
        }
        self.send(json!({
            "document_name": "AWS-RunPatchBaselineWithHooks",
            "instance_ids": self.ids(),
            "parameters": install_with_hooks("NoReboot", &["PreInstall"]),
            "max_concurrency": max_concurrency,
        }))
        .await
    }

    /// The node reboots: its agent killed, a new boot with a fresh `/run`,
    /// the agent started again.
    fn reboot(&mut self, name: &str, boot_id: &str) {
        self.agents.kill(name);
        self.node_mut(name).reboot(boot_id);
        let args = self.node(name).args();
        self.agents.spawn_args(name, &args);
    }

    fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// SendCommand; returns the command id.
    async fn send(&self, body: Value) -> String {
        let c = self.api.post("/api/v1/commands", body).await;
        c["command_id"].as_str().unwrap().to_string()
    }

    async fn command(&self, id: &str) -> Value {
        self.api.get(&format!("/api/v1/commands/{id}")).await
    }

    /// The command once it has ended.
    async fn finished(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let c = self.command(id).await;
            if c.get("finished_at").is_some() {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "command {id} still runs after {within:?}: {c:#}\n{:#?}",
                self.invocations(id).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The command once it has ended, its (status, details, completed,
    /// errors, delivery timeouts) checked.
    async fn ended(
        &self,
        id: &str,
        within_secs: u64,
        expected: (&str, &str, i64, i64, i64),
    ) -> Value {
        let c = self.finished(id, Duration::from_secs(within_secs)).await;
        assert_eq!(command_outcome(&c), expected, "{c:#}");
        c
    }

    /// Invocations by node name.
    async fn invocations(&self, id: &str) -> BTreeMap<String, Value> {
        self.api
            .items(&format!("/api/v1/commands/{id}/invocations"))
            .await
            .into_iter()
            .map(|i| {
                let node = self.nodes.iter().find(|n| i["node_id"] == n.id.as_str());
                (node.unwrap().name.clone(), i)
            })
            .collect()
    }

    async fn invocation(&self, id: &str, node: &str) -> Value {
        let node_id = &self.node(node).id;
        self.api
            .get(&format!("/api/v1/commands/{id}/invocations/{node_id}"))
            .await
    }

    /// The invocation once `done` holds for it.
    async fn invocation_when(&self, id: &str, node: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let i = self.invocation(id, node).await;
            if done(&i) {
                return i;
            }
            assert!(Instant::now() < deadline, "{node}: {i:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Never more than `limit` of `command`'s invocations at once: the
    /// server's view (dispatched until ended) and the agents' (journaled
    /// until finished) each checked. Returns the most that ran at once on
    /// the agents.
    async fn assert_rate(&self, command: &str, limit: usize) -> usize {
        let invocations = self.invocations(command).await;
        let server: Vec<(Timestamp, Timestamp)> = invocations
            .values()
            .map(|i| {
                (
                    time(&i["dispatched_at"]),
                    time(&i["execution_end_date_time"]),
                )
            })
            .collect();
        let agents: Vec<(Timestamp, Timestamp)> = self
            .nodes
            .iter()
            .map(|n| {
                let rec = n.record(command);
                (step_at(&rec, "Received"), step_at(&rec, "Finished"))
            })
            .collect();
        for (whose, intervals) in [("server", &server), ("agents", &agents)] {
            assert!(
                max_in_flight(intervals) <= limit,
                "{whose}: more than {limit} at once: {intervals:#?}"
            );
        }
        max_in_flight(&agents)
    }
}

/// The most intervals open at one instant. One that ends when another
/// starts does not overlap it: the next invocation starts only after the
/// server has the previous one's result.
fn max_in_flight(intervals: &[(Timestamp, Timestamp)]) -> usize {
    let mut events: Vec<(Timestamp, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| {
            assert!(start <= end, "{start} after {end}");
            [(start, 1), (end, -1)]
        })
        .collect();
    // At equal instants the end (-1) sorts first.
    events.sort();
    let (mut open, mut most) = (0, 0);
    for (_, change) in events {
        open += change;
        most = most.max(open);
    }
    most as usize
}

fn install(reboot: &str) -> Value {
    json!({"Operation": ["Install"], "RebootOption": [reboot]})
}

/// An Install's parameters for `AWS-RunPatchBaselineWithHooks`, the hook
/// `stages` (`PreInstall`, `PostInstall`, `OnExit`) running the node's own
/// hook directories.
fn install_with_hooks(reboot: &str, stages: &[&str]) -> Value {
    let mut parameters = install(reboot);
    for stage in stages {
        parameters[format!("{stage}HookDocName")] = json!(["Patchfleet-LocalHooks"]);
    }
    parameters
}

/// Waits up to `within` for `done`; `what` says what never came.
async fn wait_until(what: impl Fn() -> String, within: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{}", what());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pids a hanging script (`support::hanging`) wrote to `path`, once
/// it wrote both (waiting without holding up the in-process server).
async fn hanging_pids(path: &Path) -> Vec<i32> {
    let written = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .count()
            >= 2
    };
    wait_until(
        || format!("{} never got its 2 pids", path.display()),
        Duration::from_secs(60),
        written,
    )
    .await;
    wait_for_lines(path, 2)
}

/// The APT bed's states after its security updates were installed:
/// pending a reboot, or not.
fn installed_states(pending_reboot: bool) -> BTreeMap<String, String> {
    let state = if pending_reboot {
        "InstalledPendingReboot"
    } else {
        "Installed"
    };
    expect(&[
        ("tb-hello", state),
        ("tb-kernel", state),
        ("tb-tool", "InstalledOther"),
    ])
}

fn by_tag() -> Value {
    json!([{"Key": TAG, "Values": [TAG_VALUE]}])
}

fn outcome(i: &Value) -> (&str, &str, i64) {
    (
        i["status"].as_str().unwrap(),
        i["status_details"].as_str().unwrap(),
        i["response_code"].as_i64().unwrap(),
    )
}

fn command_outcome(c: &Value) -> (&str, &str, i64, i64, i64) {
    (
        c["status"].as_str().unwrap(),
        c["status_details"].as_str().unwrap(),
        c["completed_count"].as_i64().unwrap(),
        c["error_count"].as_i64().unwrap(),
        c["delivery_timed_out_count"].as_i64().unwrap(),
    )
}

fn stdout(i: &Value) -> &str {
    i["standard_output_content"].as_str().unwrap()
}

fn stderr(i: &Value) -> &str {
    i["standard_error_content"].as_str().unwrap()
}

fn upgraded() -> BTreeMap<String, String> {
    expect(&[
        ("tb-hello", "1.1-1"),
        ("tb-kernel", "1.1-1"),
        ("tb-tool", "2.0-1"),
    ])
}

/// Five nodes: a Scan and Installs under MaxConcurrency 2, a rollout
/// stopped by MaxErrors 0, NoReboot's pending reboots resolved by a reboot
/// and a Scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_keep_their_limits() {
    let (mut fleet, running) =
        Fleet::in_process("cmd-rollout", &["n1", "n2", "n3", "n4", "n5"], |_, _| {
            Vec::new()
        })
        .await;

    // A Scan by tag, two nodes at a time.
    let scan = fleet
        .send(json!({
            "document_name": "AWS-RunPatchBaseline",
            "targets": by_tag(),
            "parameters": {"Operation": ["Scan"]},
            "max_concurrency": "2",
        }))
        .await;
    let c = fleet
        .ended(&scan, 120, ("Success", "Success", 5, 0, 0))
        .await;
    assert_eq!(c["target_count"], 5);
    for (name, i) in fleet.invocations(&scan).await {
        assert_eq!(outcome(&i), ("Success", "Success", 0), "{name}: {i:#}");
        assert!(stdout(&i).contains("Missing count: 2,"), "{name}: {i:#}");
    }
    fleet.assert_rate(&scan, 2).await;

    // MaxErrors 0: the first node's install fails for real (a package file
    // gone from its repository), so nothing more starts.
    let first = fleet.nodes[0].name.clone();
    let deb = fleet.nodes[0]
        .dir
        .join("repo/pool/main/tb-hello_1.1-1_all.deb");
    let hidden = fleet.nodes[0].dir.join("tb-hello_1.1-1_all.deb");
    std::fs::rename(&deb, &hidden).unwrap();
    let before: Vec<String> = fleet.nodes.iter().map(Node::dpkg_status).collect();
    let failing = fleet
        .send(json!({
            "document_name": "AWS-RunPatchBaseline",
            "instance_ids": fleet.ids(),
            "parameters": install("NoReboot"),
            "max_concurrency": "1",
            "max_errors": "0",
        }))
        .await;
    fleet
        .ended(&failing, 120, ("Failed", "Failed", 5, 1, 0))
        .await;
    let invocations = fleet.invocations(&failing).await;
    let i = &invocations[&first];
    assert_eq!(outcome(i), ("Failed", "Failed", 1), "{i:#}");
    assert!(
        stdout(i).contains("tb-hello 1.0-1 -> 1.1-1: Failed"),
        "{i:#}"
    );
    assert!(stdout(i).contains("File not found"), "{i:#}");
    for n in &fleet.nodes[1..] {
        let i = &invocations[&n.name];
        assert_eq!(outcome(i), ("Cancelled", "Terminated", -1), "{i:#}");
        assert_eq!(i["deliveries"], 0, "{i:#}");
        assert!(
            i.get("dispatched_at").is_none() && i.get("execution_start_date_time").is_none(),
            "{i:#}"
        );
        assert!(n.journal(&failing).is_empty(), "{} received it", n.name);
    }
    for (n, before) in fleet.nodes.iter().zip(&before) {
        assert_eq!(&n.dpkg_status(), before, "{} changed", n.name);
    }
    std::fs::rename(&hidden, &deb).unwrap();

    // Two at a time. Each run lasts a second longer (a pre-install hook),
    // so that the limit is reached, not only kept: a Scan of a test bed is
    // over before the server has started the next one.
    let inst = fleet.slow_install(1, "2").await;
    fleet
        .ended(&inst, 120, ("Success", "Success", 5, 0, 0))
        .await;
    assert_eq!(fleet.assert_rate(&inst, 2).await, 2, "never two at once");
    let invocations = fleet.invocations(&inst).await;
    for n in &fleet.nodes {
        assert_eq!(n.versions(), upgraded(), "{}", n.name);
        let v = fleet.patches(&n.name).await;
        assert_eq!(states(&v), installed_states(true), "{}", n.name);
        assert_eq!(v["compliance_status"], "NON_COMPLIANT");
        // The facts are the invocation's: scanned while it ran.
        let i = &invocations[&n.name];
        let node = fleet.api.get(&format!("/api/v1/nodes/{}", n.id)).await;
        let scanned = time(&node["scanned_at"]);
        assert!(
            time(&i["execution_start_date_time"]) <= scanned
                && scanned <= time(&i["execution_end_date_time"]),
            "{}: scanned at {scanned}, {i:#}",
            n.name
        );
        // The output as SSM keeps it: stdout and stderr together cut at
        // 2,500 characters; the whole stdout from the object store.
        let combined = i["output"].as_str().unwrap();
        assert!(
            combined.chars().count() <= 2500 && combined.ends_with("\n---Output truncated---"),
            "{combined}"
        );
        let whole = fleet
            .api
            .text(&format!(
                "/api/v1/commands/{inst}/invocations/{}/output?stream=stdout",
                n.id
            ))
            .await;
        assert!(
            whole.ends_with("Reboot is not permitted because RebootOption is NoReboot\n"),
            "{whole}"
        );
        assert_eq!(whole, stdout(i));
    }

    // The nodes "reboot"; a Scan then finds the installs done.
    let names: Vec<String> = fleet.nodes.iter().map(|n| n.name.clone()).collect();
    for name in &names {
        fleet.reboot(name, "boot-B");
    }
    let scan = fleet
        .api
        .post(
            "/api/v1/compliance/scan",
            json!({"targets": by_tag(), "max_concurrency": "2"}),
        )
        .await["command_id"]
        .as_str()
        .unwrap()
        .to_string();
    fleet
        .ended(&scan, 120, ("Success", "Success", 5, 0, 0))
        .await;
    fleet.assert_rate(&scan, 2).await;
    for (name, i) in fleet.invocations(&scan).await {
        assert!(
            stdout(&i).contains(
                "Installed count: 2, Installed other count: 1, Installed pending reboot count: 0,"
            ),
            "{name}: {i:#}"
        );
        let v = fleet.patches(&name).await;
        assert_eq!(states(&v), installed_states(false), "{name}");
        assert_eq!(v["compliance_status"], "COMPLIANT");
    }
    fleet
        .agents
        .assert_running(&names.iter().map(String::as_str).collect::<Vec<_>>());
    fleet.finish("rollouts");
    running.shutdown().await;
}

/// RebootIfNeeded through a simulated reboot; an agent killed in the middle
/// of its step; a step that overruns StepTimeoutSeconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboots_and_timeouts() {
    let (mut fleet, running) = Fleet::in_process(
        "cmd-reboot",
        &["reboot", "killed", "overrun"],
        |name, dir| match name {
            "reboot" => Node::reboot_command(
                dir,
                &format!("echo reboot >> {}", dir.join("reboots").display()),
            ),
            _ => Node::reboot_command(dir, &support::hanging(&dir.join("pids"))),
        },
    )
    .await;
    let (reboot, killed, overrun) = (
        fleet.node("reboot").id.clone(),
        fleet.node("killed").id.clone(),
        fleet.node("overrun").id.clone(),
    );
    let rebooting = fleet
        .send(json!({
            "document_name": "AWS-RunPatchBaseline",
            "instance_ids": [reboot],
            "parameters": install("RebootIfNeeded"),
        }))
        .await;
    // The shortest command there is: the delivery window's minimum (30 s)
    // plus a step of 10 s, ample for the install before the reboot command.
    let timing_out = fleet
        .send(json!({
            "document_name": "AWS-RunPatchBaseline",
            "instance_ids": [killed, overrun],
            "parameters": {
                "Operation": ["Install"],
                "RebootOption": ["RebootIfNeeded"],
                "StepTimeoutSeconds": ["10"],
            },
            "timeout_seconds": 30,
            "max_concurrency": "2",
            "max_errors": "1",
        }))
        .await;

    // "killed": its agent dies (SIGKILL) while the step is in its reboot
    // command. The step dies with the agent; what it started (the reboot
    // command, a process group of its own) is this test's to clean up.
    let leftovers = Reap(hanging_pids(&fleet.node("killed").dir.join("pids")).await);
    fleet.agents.kill("killed");

    // "reboot": the reboot is journaled and asked for, no result yet.
    let marker = fleet.node("reboot").dir.join("reboots");
    wait_until(
        || "no reboot asked for".into(),
        Duration::from_secs(60),
        || marker.exists(),
    )
    .await;
    let i = fleet.invocation(&rebooting, "reboot").await;
    assert_eq!(i["status"], "InProgress", "{i:#}");
    let rec = fleet.node("reboot").record(&rebooting);
    assert!(rec["result"].is_null(), "{rec:#}");
    assert_eq!(steps(&rec).last().unwrap(), "RebootRequested");
    // The node reboots: the agent is gone, a new boot comes with a fresh
    // /run, and the agent starts again.
    fleet.reboot("reboot", "boot-B");
    fleet
        .ended(&rebooting, 60, ("Success", "Success", 1, 0, 0))
        .await;
    let i = fleet.invocation(&rebooting, "reboot").await;
    assert_eq!(outcome(&i), ("Success", "Success", 0), "{i:#}");
    assert_eq!(i["reboots"], 1, "{i:#}");
    assert!(
        stdout(&i).contains("tb-kernel 1.0-1 -> 1.1-1: Installed")
            && stdout(&i).contains("The node booted again (boot boot-B)"),
        "{i:#}"
    );
    let node = fleet.node("reboot");
    assert_eq!(node.versions(), upgraded());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
    // Installed once, finished once, reported once.
    let rec = node.record(&rebooting);
    let s = steps(&rec);
    for (step, n) in [
        ("Received", 1),
        ("Installing", 1),
        ("RebootRequested", 1),
        ("PostReboot", 1),
        ("Finished", 1),
    ] {
        assert_eq!(count(&s, step), n, "{step}: {s:?}");
    }
    assert_eq!(rec["reported"], true);
    let reported = format!(
        "invocation {}: Success",
        rec["invocation_id"].as_str().unwrap()
    );
    assert_eq!(
        fleet.agents.stderr("reboot").matches(&reported).count(),
        1,
        "{}",
        fleet.agents.stderr("reboot")
    );
    let v = fleet.patches("reboot").await;
    assert_eq!(states(&v), installed_states(false));
    assert_eq!(v["compliance_status"], "COMPLIANT");

    // "overrun": stopped by its agent at StepTimeoutSeconds, with its whole
    // session. "killed": never reported; the server ends it when the
    // command expires (TimeoutSeconds + StepTimeoutSeconds).
    let c = fleet
        .ended(&timing_out, 90, ("Failed", "Incomplete", 2, 1, 1))
        .await;
    assert!(
        time(&c["finished_at"]) >= time(&c["expires_after"]),
        "{c:#}"
    );
    let invocations = fleet.invocations(&timing_out).await;
    let i = &invocations["overrun"];
    assert_eq!(outcome(i), ("TimedOut", "ExecutionTimedOut", 137), "{i:#}");
    assert!(stderr(i).contains("StepTimeoutSeconds (10 s)"), "{i:#}");
    for pid in hanging_pids(&fleet.node("overrun").dir.join("pids")).await {
        assert!(gone(pid), "process {pid} of the overrun step survived");
    }
    let rec = fleet.node("overrun").record(&timing_out);
    assert_eq!(steps(&rec).last().unwrap(), "Finished");
    assert_eq!(rec["result"]["status"], "TimedOut", "{rec:#}");
    let i = &invocations["killed"];
    assert_eq!(outcome(i), ("TimedOut", "DeliveryTimedOut", -1), "{i:#}");
    let rec = fleet.node("killed").record(&timing_out);
    assert!(rec["result"].is_null(), "{rec:#}");
    assert_eq!(steps(&rec).last().unwrap(), "RebootRequested");
    drop(leftovers);
    fleet.finish("reboots and timeouts");
    running.shutdown().await;
}

/// The `patchfleet` server as a process of its own, on SQLite in its data
/// directory, so that it can be killed (SIGKILL) and started again. It
/// listens on the same port at every start: the agents' node records name
/// it.
struct ServerProcess {
    dir: PathBuf,
    listen: String,
    child: Option<Child>,
    starts: u32,
}

impl ServerProcess {
    fn new(dir: &Path) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Heartbeats at the agents' floor; a delivery lost with the server
        // is sent again after 2 s.
        std::fs::write(
            dir.join("server.toml"),
            "heartbeat_seconds = 5\ncommand_resend_seconds = 2\n",
        )
        .unwrap();
        ServerProcess {
            dir: dir.to_path_buf(),
            listen: format!("127.0.0.1:{port}"),
            child: None,
            starts: 0,
        }
    }

    /// Starts it and waits until it serves. The first start prints the
    /// bootstrap admin key: that start's [`Access`] is returned.
    async fn start(&mut self) -> Option<Access> {
        let bin = Path::new(AGENT).with_file_name("patchfleet");
        assert!(
            bin.is_file(),
            "{} is missing: build it with `cargo build -p patchfleet-cli` \
             (scripts/test builds the whole workspace before testing)",
            bin.display()
        );
        self.starts += 1;
        let out = self.dir.join(format!("server-{}.out", self.starts));
        let file = |p: &Path| std::fs::File::create(p).unwrap();
        self.child = Some(
            Command::new(&bin)
                .args(["server", "--data-dir"])
                .arg(self.dir.join("data"))
                .args(["--listen", &self.listen, "--config"])
                .arg(self.dir.join("server.toml"))
                .env_remove("RUST_BACKTRACE")
                .stdin(Stdio::null())
                .stdout(file(&out))
                .stderr(file(&out.with_extension("err")))
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", bin.display())),
        );
        let last_line = if self.starts == 1 {
            "secret access key:"
        } else {
            "CA fingerprint:"
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if text.lines().any(|l| l.trim_start().starts_with(last_line)) {
                break text;
            }
            let status = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                status.is_none() && Instant::now() < deadline,
                "the server did not start ({status:?}):\n{text}\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let value = |prefix: &str| {
            text.lines()
                .find_map(|l| l.trim_start().strip_prefix(prefix))
                .map(|v| v.trim().to_string())
        };
        Some(Access {
            url: value("Patchfleet server listening on").unwrap(),
            ca_fingerprint: value("CA fingerprint:").unwrap(),
            ca_pem: std::fs::read_to_string(self.dir.join("data/ca.pem")).unwrap(),
            key_id: value("access key id:")?,
            secret: value("secret access key:")?,
        })
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn stderr(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                let p = self.dir.join(format!("server-{n}.err"));
                std::fs::read_to_string(p).unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- server stderr:\n{}", self.stderr());
        }
    }
}

/// The server killed with SIGKILL while an invocation runs, and started
/// again on its data directory: the rollout goes on where it was, and the
/// agents' journals show every invocation run exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_resumes_its_rollout() {
    let tmp = TempDir::new("cmd-crash");
    let mut server = ServerProcess::new(&tmp.0);
    let access = server.start().await.expect("the bootstrap key");
    let fleet = Fleet::start(tmp, &access, &["c1", "c2", "c3"], |_, _| Vec::new()).await;
    // Each run lasts long enough to kill the server in its middle.
    let cmd = fleet.slow_install(2, "1").await;
    let (first, second, third) = (&fleet.nodes[0], &fleet.nodes[1], &fleet.nodes[2]);
    fleet
        .invocation_when(&cmd, &second.name, |i| i["status"] == "InProgress")
        .await;
    server.kill();
    let killed_at = Timestamp::now();
    // The second node's step ends while the server is away.
    wait_until(
        || format!("{:#?}", second.journal(&cmd)),
        Duration::from_secs(30),
        || {
            second
                .journal(&cmd)
                .first()
                .is_some_and(|r| steps(r).last().unwrap() == "Finished")
        },
    )
    .await;
    assert!(server.start().await.is_none(), "a second bootstrap key");
    let restarted_at = Timestamp::now();
    fleet.ended(&cmd, 90, ("Success", "Success", 3, 0, 0)).await;

    let invocations = fleet.invocations(&cmd).await;
    for n in &fleet.nodes {
        // One record, each step once, the result acknowledged.
        let rec = n.record(&cmd);
        let s = steps(&rec);
        for step in ["Received", "PreInstallHooks", "Installing", "Finished"] {
            assert_eq!(count(&s, step), 1, "{}: {s:?}", n.name);
        }
        assert_eq!(rec["reported"], true, "{}", n.name);
        assert_eq!(n.hooks.log(), "sleep\n", "{}", n.name);
        let dpkg_log = std::fs::read_to_string(n.root().join("var/log/dpkg.log")).unwrap();
        assert_eq!(
            dpkg_log
                .lines()
                .filter(|l| l.ends_with(" status installed tb-hello:all 1.1-1"))
                .count(),
            1,
            "{}: {dpkg_log}",
            n.name
        );
        assert_eq!(n.versions(), upgraded(), "{}", n.name);
        let i = &invocations[&n.name];
        assert_eq!(outcome(i), ("Success", "Success", 0), "{i:#}");
        assert_eq!(
            time(&i["execution_end_date_time"]).as_millisecond(),
            step_at(&rec, "Finished").as_millisecond(),
            "{i:#}"
        );
    }
    let finished = step_at(&first.record(&cmd), "Finished");
    assert!(finished < killed_at, "{finished} {killed_at}");
    // The second result waited for the server...
    let finished = step_at(&second.record(&cmd), "Finished");
    assert!(
        killed_at < finished && finished < restarted_at,
        "{killed_at} {finished} {restarted_at}"
    );
    let log = fleet.agents.stderr(&second.name);
    assert!(
        log.contains("invocations: ") && log.contains("retrying in"),
        "{log}"
    );
    // ...and the third node was started by the restarted server.
    let i = &invocations[&third.name];
    assert!(time(&i["dispatched_at"]) > restarted_at, "{i:#}");
    fleet.finish("killed server");
}

/// A cancel while one invocation runs and two wait; hooks in order and a
/// failing one; an InstallOverrideList. The nodes' parts are given by
/// their dispatch order, known once they registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_hooks_and_override_lists() {
    let (fleet, running) =
        Fleet::in_process("cmd-misc", &["d1", "d2", "d3"], |_, _| Vec::new()).await;
    let (slow, hooked, listed) = (&fleet.nodes[0], &fleet.nodes[1], &fleet.nodes[2]);
    let before: Vec<String> = fleet.nodes.iter().map(Node::dpkg_status).collect();

    // Cancel: the first node hangs in its pre-install hook, one at a time
    // keeps the others waiting.
    let pids = slow.dir.join("pids");
    slow.hooks
        .add("pre-install.d", "hang", &support::hanging(&pids));
    slow.hooks.add("on-exit.d", "exit", "true");
    let cancelled = fleet
        .send(json!({
            "document_name": "AWS-RunPatchBaselineWithHooks",
            "instance_ids": fleet.ids(),
            "parameters": install_with_hooks("NoReboot", &["PreInstall", "OnExit"]),
            "max_concurrency": "1",
        }))
        .await;
    let hook = hanging_pids(&pids).await;
    let c = fleet
        .api
        .post(&format!("/api/v1/commands/{cancelled}/cancel"), json!({}))
        .await;
    // The waiting ones end at once; the running one when its agent has
    // stopped it.
    assert_eq!(c["status"], "Cancelling", "{c:#}");
    assert_eq!(
        c["invocation_counts"],
        json!({"Cancelled": 2, "Cancelling": 1}),
        "{c:#}"
    );
    fleet
        .ended(&cancelled, 60, ("Cancelled", "Cancelled", 3, 0, 0))
        .await;
    let invocations = fleet.invocations(&cancelled).await;
    let i = &invocations[&slow.name];
    assert_eq!(outcome(i), ("Cancelled", "Cancelled", 137), "{i:#}");
    for pid in hook {
        assert!(gone(pid), "process {pid} of the cancelled hook survived");
    }
    assert_eq!(slow.hooks.log(), "hang\nexit\n");
    for n in [hooked, listed] {
        let i = &invocations[&n.name];
        assert_eq!(outcome(i), ("Cancelled", "Cancelled", -1), "{i:#}");
        assert_eq!(i["deliveries"], 0, "{i:#}");
        assert!(i.get("dispatched_at").is_none(), "{i:#}");
        assert!(n.journal(&cancelled).is_empty(), "{} received it", n.name);
    }
    for (n, before) in fleet.nodes.iter().zip(&before) {
        assert_eq!(&n.dpkg_status(), before, "{} changed", n.name);
    }

    // Hooks in byte order; the first failing one stops the run before the
    // install, the on-exit hooks still run.
    hooked
        .hooks
        .add("pre-install.d", "10-first", "echo first says hello");
    hooked
        .hooks
        .add("pre-install.d", "20-fails", "echo broken >&2; exit 7");
    hooked.hooks.add("pre-install.d", "30-last", "true");
    hooked.hooks.add("post-install.d", "50-post", "true");
    hooked.hooks.add("on-exit.d", "90-exit", "true");
    let with_hooks = json!({
        "document_name": "AWS-RunPatchBaselineWithHooks",
        "instance_ids": [hooked.id],
        "parameters": install_with_hooks("NoReboot", &["PreInstall", "PostInstall", "OnExit"]),
    });
    // Meanwhile the last node installs exactly what its list names (the
    // baseline would have installed the other two).
    let listed_cmd = fleet
        .send(json!({
            "document_name": "AWS-RunPatchBaseline",
            "instance_ids": [listed.id],
            "parameters": install("NoReboot"),
            "install_override_list": "patches:\n  - id: tb-tool\n    title: tb-tool*\n",
        }))
        .await;
    let failing = fleet.send(with_hooks.clone()).await;
    fleet
        .ended(&failing, 60, ("Failed", "Failed", 1, 1, 0))
        .await;
    let i = fleet.invocation(&failing, &hooked.name).await;
    assert_eq!(outcome(&i), ("Failed", "Failed", 1), "{i:#}");
    assert!(
        stderr(&i).contains("20-fails failed (exit status 7); the patch run stops here"),
        "{i:#}"
    );
    assert!(stdout(&i).contains("first says hello"), "{i:#}");
    assert_eq!(hooked.hooks.log(), "10-first\n20-fails\n90-exit\n");
    assert_eq!(
        hooked.dpkg_status(),
        before[1],
        "installed after a failed hook"
    );
    std::fs::remove_file(hooked.hooks.root().join("pre-install.d/20-fails")).unwrap();
    let passing = fleet.send(with_hooks).await;
    fleet
        .ended(&passing, 60, ("Success", "Success", 1, 0, 0))
        .await;
    assert_eq!(
        hooked.hooks.log(),
        "10-first\n20-fails\n90-exit\n10-first\n30-last\n50-post\n90-exit\n"
    );
    assert_eq!(hooked.versions(), upgraded());

    fleet
        .ended(&listed_cmd, 60, ("Success", "Success", 1, 0, 0))
        .await;
    assert_eq!(
        listed.versions(),
        expect(&[
            ("tb-hello", "1.0-1"),
            ("tb-kernel", "1.0-1"),
            ("tb-tool", "2.1-1"),
        ])
    );
    let i = fleet.invocation(&listed_cmd, &listed.name).await;
    assert!(stdout(&i).contains("Missing count: 2,"), "{i:#}");
    fleet.finish("cancel, hooks, override list");
    running.shutdown().await;
}
