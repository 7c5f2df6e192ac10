//! `patchfleet-agent run` with Run Command work: a real agent process on
//! the APT test bed, talking mutual TLS to the server's own TLS stack
//! (`patchfleet_server::{tls, serve}`) in front of a stand-in for the
//! `/agent/v1` routes the server is growing (work, facts, invocation
//! reports), which records every request in order.
//!
//! What the agent must do, per the channel contract: announce the
//! capabilities; acknowledge (`InProgress`) each invocation before running
//! it and run it once however often it is delivered; one at a time, in
//! arrival order; upload the facts of its last scan before the terminal
//! report; cancel queued and running invocations; never run one whose
//! acknowledgement the server refused; after a restart, send stored results
//! again and resume an invocation waiting for its reboot.

#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use common::{TempDir, build_apt_testbed};
use patchfleet_protocol::{
    CommandInvocation, FactsOffer, FactsOfferAck, Heartbeat, HeartbeatAck, InvocationReport,
    InvocationReportAck, WorkItem, WorkResponse,
};
use patchfleet_server::serve::serve;
use patchfleet_server::tls::Pki;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Hooks, boot_between_installs, debian, gone, steps, wait_for_lines, with_hooks};

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");
const NODE: &str = "mi-0123456789abcdef0";

/// What the stand-in server saw and will answer.
#[derive(Default)]
struct Fake {
    /// Work for the next poll.
    work: Vec<WorkItem>,
    /// Every request, in order: `heartbeat`, `offer HASH`, `put HASH`,
    /// `report ID STATUS`.
    events: Vec<String>,
    capabilities: Vec<String>,
    reports: Vec<(String, InvocationReport)>,
    /// Invocations the server no longer wants (`accepted: false`).
    unwanted: HashSet<String>,
    known_facts: HashSet<String>,
}

type Shared = Arc<Mutex<Fake>>;

fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/agent/v1/heartbeat",
            post(
                |State(s): State<Shared>, Json(h): Json<Heartbeat>| async move {
                    let mut f = s.lock().unwrap();
                    f.events.push("heartbeat".into());
                    f.capabilities = h.agent.capabilities;
                    Json(HeartbeatAck {
                        heartbeat_seconds: 5,
                        server_time: jiff::Timestamp::now(),
                    })
                },
            ),
        )
        .route(
            "/agent/v1/work",
            get(|State(s): State<Shared>| async move {
                // A short long poll: the agent comes back at once.
                for _ in 0..4 {
                    let items = std::mem::take(&mut s.lock().unwrap().work);
                    if !items.is_empty() {
                        return Json(WorkResponse { items });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Json(WorkResponse::default())
            }),
        )
        .route(
            "/agent/v1/facts/offer",
            post(
                |State(s): State<Shared>, Json(o): Json<FactsOffer>| async move {
                    let mut f = s.lock().unwrap();
                    f.events.push(format!("offer {}", o.content_hash));
                    Json(FactsOfferAck {
                        known: f.known_facts.contains(&o.content_hash),
                    })
                },
            ),
        )
        .route(
            "/agent/v1/facts/{hash}",
            put(
                |State(s): State<Shared>, UrlPath(hash): UrlPath<String>| async move {
                    let mut f = s.lock().unwrap();
                    f.events.push(format!("put {hash}"));
                    f.known_facts.insert(hash);
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/agent/v1/invocations/{id}",
            post(
                |State(s): State<Shared>,
                 UrlPath(id): UrlPath<String>,
                 Json(r): Json<InvocationReport>| async move {
                    let mut f = s.lock().unwrap();
                    f.events.push(format!("report {id} {}", r.status));
                    f.reports.push((id.clone(), r));
                    Json(InvocationReportAck {
                        accepted: !f.unwanted.contains(&id),
                    })
                },
            ),
        )
        .with_state(shared)
}

/// The agent process, killed on every way out (its log shown on failure).
struct Agent {
    child: Option<Child>,
    log: PathBuf,
}

impl Agent {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- agent log:\n{}", self.log());
        }
    }
}

struct Node {
    tmp: TempDir,
    root: PathBuf,
    port: u16,
    hooks: Hooks,
    boot_time: String,
}

impl Node {
    fn state(&self) -> PathBuf {
        self.tmp.0.join("state")
    }

    fn boot(&self, id: &str) {
        std::fs::write(self.tmp.0.join("boot_id"), format!("{id}\n")).unwrap();
    }

    fn start(&self, agent: &mut Agent) {
        agent.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&agent.log)
            .unwrap();
        let reboot = self.tmp.0.join("fake-reboot");
        agent.child = Some(
            Command::new(AGENT)
                .arg("run")
                .args(support::node_flags(
                    &self.state(),
                    &self.root,
                    &self.boot_time,
                    &self.tmp.0.join("boot_id"),
                ))
                .arg("--hooks-root")
                .arg(self.hooks.root())
                .arg("--reboot-command")
                .arg(&reboot)
                // A node that does not reboot is asked again after a
                // second; the guard allows five requests.
                .args(["--reboot-wait", "1", "--max-reboots", "5"])
                .env_remove("RUST_BACKTRACE")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    fn record(&self, id: &str) -> Value {
        support::record(&self.state(), id)
    }

    fn reboots(&self) -> String {
        std::fs::read_to_string(self.tmp.0.join("reboots")).unwrap_or_default()
    }
}

/// A registered node's state directory: key, certificate signed by the
/// server's CA, the CA, and the node record naming the server.
fn register(pki: &Pki, state: &Path, port: u16) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let cert = pki
        .sign_agent_csr(&csr, NODE, jiff::Timestamp::now())
        .unwrap();
    std::fs::create_dir_all(state).unwrap();
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let write = |name: &str, text: &str, mode: u32| {
        let p = state.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write("agent-key.pem", &key.serialize_pem(), 0o600);
    write("agent.pem", &cert, 0o644);
    write("ca.pem", pki.ca_pem(), 0o644);
    write(
        "node.json",
        &json!({"node_id": NODE, "server": format!("https://localhost:{port}"), "heartbeat_seconds": 5})
            .to_string(),
        0o644,
    );
}

fn item(inv: &CommandInvocation) -> WorkItem {
    WorkItem {
        id: inv.invocation_id.clone(),
        kind: "run-patch-baseline".into(),
        parameters: serde_json::to_value(inv).unwrap(),
    }
}

fn cancel(id: &str, of: &str) -> WorkItem {
    WorkItem {
        id: id.into(),
        kind: "cancel".into(),
        parameters: json!({ "invocation_id": of }),
    }
}

/// Waits (up to a minute) until `done` holds of what the server saw.
async fn until(shared: &Shared, agent: &Agent, what: &str, done: impl Fn(&Fake) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&shared.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; events: {:?}\n--- agent log:\n{}",
            shared.lock().unwrap().events,
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn position(f: &Fake, event: &str) -> Option<usize> {
    f.events.iter().position(|e| e == event)
}

fn terminal<'a>(f: &'a Fake, id: &str) -> Vec<&'a InvocationReport> {
    f.reports
        .iter()
        .filter(|(i, r)| i == id && r.status != "InProgress")
        .map(|(_, r)| r)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_run_once_in_order_and_are_reported_after_their_facts() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = TempDir::new("run-invocations");
    build_apt_testbed(&tmp.0);
    let root = tmp.0.join("root");
    for f in ["reboot-required", "reboot-required.pkgs"] {
        let _ = std::fs::remove_file(root.join("var/run").join(f));
    }
    let boot_time = boot_between_installs();
    let pki = Pki::load_or_create(&tmp.0.join("server"), &[]).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared: Shared = Arc::default();
    tokio::spawn(serve(
        listener,
        Some(pki.server_config().unwrap()),
        router(shared.clone()),
        std::future::pending(),
    ));
    let hooks = Hooks::new("run", tmp.0.join("hooks.log"));
    let pids = tmp.0.join("pids");
    hooks.add("pre-install.d", "slow", &support::hanging(&pids));
    let reboot = tmp.0.join("fake-reboot");
    std::fs::write(
        &reboot,
        format!(
            "#!/bin/sh\necho reboot >> {}\n",
            tmp.0.join("reboots").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&reboot, std::fs::Permissions::from_mode(0o755)).unwrap();
    let node = Node {
        root,
        port,
        hooks,
        boot_time,
        tmp,
    };
    register(&pki, &node.state(), node.port);
    node.boot("boot-A");
    let mut agent = Agent {
        child: None,
        log: node.tmp.0.join("agent.log"),
    };
    node.start(&mut agent);

    // The capabilities, then the start-up scan.
    until(&shared, &agent, "a heartbeat and a scan", |f| {
        !f.capabilities.is_empty() && f.events.iter().any(|e| e.starts_with("put "))
    })
    .await;
    assert_eq!(
        shared.lock().unwrap().capabilities,
        ["scan", "run-patch-baseline", "cancel"]
    );

    // A: delivered twice at once, run once; acknowledged before it runs,
    // its facts before its result.
    let a = debian(
        "inv-a",
        &[("Operation", "Install"), ("RebootOption", "NoReboot")],
    );
    shared.lock().unwrap().work = vec![item(&a), item(&a)];
    until(&shared, &agent, "A's result", |f| {
        !terminal(f, "inv-a").is_empty()
    })
    .await;
    {
        let f = shared.lock().unwrap();
        let r = terminal(&f, "inv-a");
        assert_eq!(r.len(), 1, "{:?}", f.events);
        assert_eq!((r[0].status.as_str(), r[0].response_code), ("Success", 0));
        assert!(
            r[0].stdout.contains("Installed pending reboot count: 2,"),
            "{}",
            r[0].stdout
        );
        let ack = position(&f, "report inv-a InProgress").unwrap();
        let done = position(&f, "report inv-a Success").unwrap();
        let upload = f.events[ack..done]
            .iter()
            .position(|e| e.starts_with("put "));
        assert!(
            upload.is_some(),
            "no facts between ack and result: {:?}",
            f.events
        );
    }
    assert_eq!(
        steps(&node.record("inv-a")),
        ["Received", "Installing", "Finished"]
    );
    assert_eq!(node.record("inv-a")["reported"], true);

    // B runs (its pre-install hook hangs), C waits behind it, D is no
    // longer wanted by the server: acknowledged, refused, never run.
    let b = with_hooks("inv-b", &[("Operation", "Install")]);
    let c = debian(
        "inv-c",
        &[("Operation", "Install"), ("RebootOption", "NoReboot")],
    );
    let d = debian("inv-d", &[("Operation", "Scan")]);
    {
        let mut f = shared.lock().unwrap();
        f.unwanted.insert("inv-d".into());
        f.work = vec![item(&b), item(&c), item(&d)];
    }
    let hook_pids = wait_for_lines(&pids, 2);
    until(&shared, &agent, "C and D acknowledged", |f| {
        position(f, "report inv-c InProgress").is_some()
            && position(f, "report inv-d InProgress").is_some()
    })
    .await;
    assert_eq!(
        steps(&node.record("inv-c")),
        ["Received"],
        "C started beside B"
    );
    // The refusal answers D's acknowledgement: journaled just after it.
    until(&shared, &agent, "D's refusal journaled", |_| {
        node.record("inv-d")["reported"] == true
    })
    .await;
    let rec_d = node.record("inv-d");
    assert_eq!(rec_d["result"]["status"], "Cancelled");
    assert_eq!(steps(&rec_d), ["Received", "Finished"], "D ran");

    // Cancelled while queued: never started (-1); while running: stopped
    // with its processes (137).
    shared.lock().unwrap().work = vec![cancel("cancel-1", "inv-c")];
    until(&shared, &agent, "C cancelled", |f| {
        !terminal(f, "inv-c").is_empty()
    })
    .await;
    shared.lock().unwrap().work = vec![cancel("cancel-2", "inv-b")];
    until(&shared, &agent, "B cancelled", |f| {
        !terminal(f, "inv-b").is_empty()
    })
    .await;
    {
        let f = shared.lock().unwrap();
        let c = terminal(&f, "inv-c");
        assert_eq!(
            (c[0].status.as_str(), c[0].response_code),
            ("Cancelled", -1)
        );
        let b = terminal(&f, "inv-b");
        assert_eq!(
            (b[0].status.as_str(), b[0].response_code),
            ("Cancelled", 137)
        );
        assert!(terminal(&f, "inv-d").is_empty(), "{:?}", f.events);
    }
    for pid in hook_pids {
        assert!(gone(pid), "process {pid} of B survived its cancel");
    }
    assert_eq!(steps(&node.record("inv-c")), ["Received", "Finished"]);

    // Parameters that do not read: a failure saying why, nothing run.
    shared.lock().unwrap().work = vec![WorkItem {
        id: "inv-x".into(),
        kind: "run-patch-baseline".into(),
        parameters: json!({"invocation_id": "inv-x", "command_id": "c", "document": 7}),
    }];
    until(&shared, &agent, "X's failure", |f| {
        !terminal(f, "inv-x").is_empty()
    })
    .await;
    {
        let f = shared.lock().unwrap();
        let x = terminal(&f, "inv-x");
        assert_eq!((x[0].status.as_str(), x[0].response_code), ("Failed", 1));
        assert!(x[0].stderr.contains("do not read"), "{}", x[0].stderr);
    }
    assert_eq!(steps(&node.record("inv-x")), ["Received", "Finished"]);

    // E: RebootIfNeeded with A's install still pending a reboot (E13):
    // the reboot is asked for, no result yet; the node does not reboot,
    // so it is asked for again.
    let e = debian("inv-e", &[("Operation", "Install")]);
    shared.lock().unwrap().work = vec![item(&e)];
    let deadline = Instant::now() + Duration::from_secs(60);
    while node.reboots().lines().count() < 2 {
        assert!(
            Instant::now() < deadline,
            "not asked twice:\n{}",
            agent.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(terminal(&shared.lock().unwrap(), "inv-e").is_empty());

    // The node reboots: the agent is killed, comes back on a new boot,
    // resumes E and reports it once; A delivered again gets its stored
    // result, not a second run.
    agent.kill();
    node.boot("boot-B");
    let node = Node {
        boot_time: "2099-01-01T00:00:00Z".into(),
        ..node
    };
    node.start(&mut agent);
    shared.lock().unwrap().work = vec![item(&a)];
    until(&shared, &agent, "E's result and A's again", |f| {
        !terminal(f, "inv-e").is_empty() && terminal(f, "inv-a").len() == 2
    })
    .await;
    {
        let f = shared.lock().unwrap();
        let e = terminal(&f, "inv-e");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].status.as_str(), e[0].response_code), ("Success", 0));
        assert_eq!(e[0].reboots as usize, node.reboots().lines().count());
        assert!(
            e[0].stdout.contains("The node booted again (boot boot-B)"),
            "{}",
            e[0].stdout
        );
        let a = terminal(&f, "inv-a");
        assert_eq!(a[0], a[1], "A's result changed");
    }
    let s = steps(&node.record("inv-e"));
    assert_eq!(s.iter().filter(|s| *s == "Installing").count(), 1, "{s:?}");
    assert!(
        s.ends_with(&["PostReboot".into(), "Rescanning".into(), "Finished".into()]),
        "{s:?}"
    );
    assert_eq!(
        steps(&node.record("inv-a")),
        ["Received", "Installing", "Finished"]
    );
    // Every file of the journal is private.
    for e in std::fs::read_dir(node.state().join("invocations")).unwrap() {
        let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
