//! Run Command on a real server over HTTPS, its agents simulated at the
//! protocol level (each registered with its own key and client certificate,
//! polling `/agent/v1/work` and reporting on `/agent/v1/invocations`), so
//! every rollout rule is exercised step by step: the ramp and
//! MaxConcurrency, MaxErrors stopping the rollout, cancel before and after
//! delivery, re-delivery until acknowledged, refusals, output truncation,
//! undeliverable nodes, bad input writing nothing, and a server restart in
//! the middle of a rollout. The agents running real package managers are
//! in `crates/agent/tests/commands.rs`.
//!
//! Every test runs on SQLite and on PostgreSQL.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

/// A registered node whose agent this test plays.
struct SimAgent {
    node_id: String,
    client: reqwest::Client,
    url: String,
}

impl SimAgent {
    async fn register(env: &Env, tag: &str, capabilities: &[&str]) -> SimAgent {
        let (status, act) = env
            .post(
                "/api/v1/activations",
                &env.admin,
                json!({"registration_limit": 1, "tags": {"Environment": tag}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{act}");
        let (key_pem, csr) = agent_csr();
        let mut body = register_body(
            act["activation_id"].as_str().unwrap(),
            act["activation_code"].as_str().unwrap(),
            &csr,
        );
        body["agent"]["capabilities"] = json!(capabilities);
        let (status, reg) = env
            .call(Method::POST, "/agent/v1/register", None, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{reg}");
        SimAgent {
            node_id: reg["node_id"].as_str().unwrap().to_string(),
            client: agent_client(env, reg["certificate_pem"].as_str().unwrap(), &key_pem),
            url: env.url.clone(),
        }
    }

    /// The work a poll returns now.
    async fn poll(&self) -> Vec<Value> {
        let v: Value = self
            .client
            .get(format!("{}/agent/v1/work?wait=0", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["items"].as_array().unwrap().clone()
    }

    async fn report(&self, invocation_id: &str, details: &str, code: i32, stdout: &str) -> bool {
        let status = match details {
            "ExecutionTimedOut" => "TimedOut",
            d => d,
        };
        let resp = self
            .client
            .post(format!("{}/agent/v1/invocations/{invocation_id}", self.url))
            .json(&json!({
                "status": status, "details": details, "response_code": code,
                "stdout": stdout, "stderr": "",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json::<Value>().await.unwrap()["accepted"]
            .as_bool()
            .unwrap()
    }
}

const RUN: &[&str] = &["scan", "run-patch-baseline", "cancel"];

async fn fleet(env: &Env, n: usize, tag: &str) -> Vec<SimAgent> {
    let mut agents = Vec::new();
    for _ in 0..n {
        agents.push(SimAgent::register(env, tag, RUN).await);
    }
    agents.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    agents
}

async fn send(env: &Env, body: Value) -> Value {
    let (status, v) = env.post("/api/v1/commands", &env.admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn command(env: &Env, id: &str) -> Value {
    env.get(&format!("/api/v1/commands/{id}"), &env.admin).await
}

async fn invocations(env: &Env, id: &str) -> Vec<Value> {
    env.items(&format!("/api/v1/commands/{id}/invocations"))
        .await
}

/// Waits (the rollout loop runs every 250 ms) until `done` holds.
async fn until(env: &Env, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let c = command(env, id).await;
        if done(&c) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: never happened: {}", command(env, id).await);
}

fn install(tag: &str, concurrency: &str, errors: &str) -> Value {
    json!({
        "document_name": "AWS-RunPatchBaseline",
        "targets": [{"Key": "tag:Environment", "Values": [tag]}],
        "parameters": {"Operation": ["Install"], "RebootOption": ["NoReboot"]},
        "max_concurrency": concurrency,
        "max_errors": errors,
    })
}

async fn rollout_ramps_up_to_max_concurrency(env: &Env) {
    let agents = fleet(env, 5, "ramp").await;
    let c = send(env, install("ramp", "2", "1")).await;
    let id = c["command_id"].as_str().unwrap().to_string();
    assert_eq!(c["target_count"], 5);
    assert_eq!(c["parameters"]["RebootOption"], json!(["NoReboot"]));
    // The ramp starts with one invocation, until the agent acknowledges it.
    let dispatched = |inv: &[Value]| {
        inv.iter()
            .filter(|i| i["dispatched_at"].is_string())
            .count()
    };
    assert_eq!(dispatched(&invocations(env, &id).await), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(dispatched(&invocations(env, &id).await), 1);
    // Work is delivered in node-id order, never more than two at once.
    let mut got: Vec<Vec<String>> = Vec::new();
    let mut most_in_flight = 0;
    loop {
        let mut round = Vec::new();
        for a in &agents {
            for item in a.poll().await {
                assert_eq!(item["kind"], "run-patch-baseline");
                let inv = item["id"].as_str().unwrap().to_string();
                assert_eq!(item["parameters"]["invocation_id"], inv.as_str());
                assert_eq!(item["parameters"]["document"]["operation"], "Install");
                assert_eq!(item["parameters"]["baseline"]["OperatingSystem"], "DEBIAN");
                assert!(a.report(&inv, "InProgress", -1, "").await);
                round.push((a, inv));
            }
        }
        let running = invocations(env, &id)
            .await
            .iter()
            .filter(|i| i["status"] == "InProgress")
            .count();
        most_in_flight = most_in_flight.max(running);
        if round.is_empty() {
            let c = command(env, &id).await;
            if c["status"] == "Success" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        got.push(round.iter().map(|(a, _)| a.node_id.clone()).collect());
        for (a, inv) in round {
            assert!(a.report(&inv, "Success", 0, "Installed count: 1").await);
        }
    }
    assert!(most_in_flight <= 2, "{most_in_flight} in flight");
    assert_eq!(got.concat().len(), 5, "each node ran it once: {got:?}");
    // Dispatched in node-id order (invocations are listed in that order).
    let dispatched_at: Vec<jiff::Timestamp> = invocations(env, &id)
        .await
        .iter()
        .map(|i| i["dispatched_at"].as_str().unwrap().parse().unwrap())
        .collect();
    let listed: Vec<String> = invocations(env, &id)
        .await
        .iter()
        .map(|i| i["node_id"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = agents.iter().map(|a| a.node_id.clone()).collect();
    assert_eq!(listed, want);
    assert!(
        dispatched_at.windows(2).all(|w| w[0] <= w[1]),
        "{dispatched_at:?}"
    );
    let c = command(env, &id).await;
    assert_eq!(c["status_details"], "Success");
    assert_eq!(c["completed_count"], 5);
    assert_eq!(c["error_count"], 0);
    for i in invocations(env, &id).await {
        assert_eq!(i["status"], "Success", "{i}");
        assert_eq!(i["response_code"], 0);
        assert!(i["execution_start_date_time"].is_string(), "{i}");
        assert!(i["execution_end_date_time"].is_string(), "{i}");
    }
}

async fn max_errors_stops_the_rollout(env: &Env) {
    let agents = fleet(env, 4, "errors").await;
    let c = send(env, install("errors", "1", "0")).await;
    let id = c["command_id"].as_str().unwrap().to_string();
    let items = agents[0].poll().await;
    assert_eq!(items.len(), 1);
    let inv = items[0]["id"].as_str().unwrap();
    assert!(agents[0].report(inv, "InProgress", -1, "").await);
    assert!(agents[0].report(inv, "Failed", 1, "dpkg failed").await);
    let c = until(env, &id, "the command fails", |c| c["status"] == "Failed").await;
    assert_eq!(c["status_details"], "Failed");
    assert_eq!(c["error_count"], 1);
    assert_eq!(c["completed_count"], 4);
    // The others never started: Terminated, and never delivered.
    let inv = invocations(env, &id).await;
    for i in &inv[1..] {
        assert_eq!(i["status_details"], "Terminated", "{i}");
        assert_eq!(i["status"], "Cancelled", "{i}");
        assert_eq!(i["deliveries"], 0, "{i}");
        assert_eq!(i["response_code"], -1, "{i}");
    }
    for a in &agents[1..] {
        assert!(a.poll().await.is_empty());
    }
}

async fn cancel_before_and_after_delivery(env: &Env) {
    let agents = fleet(env, 3, "cancel").await;
    let c = send(env, install("cancel", "1", "0")).await;
    let id = c["command_id"].as_str().unwrap().to_string();
    let items = agents[0].poll().await;
    let inv = items[0]["id"].as_str().unwrap().to_string();
    assert!(agents[0].report(&inv, "InProgress", -1, "").await);
    let (status, c) = env
        .post(
            &format!("/api/v1/commands/{id}/cancel"),
            &env.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["status"], "Cancelling");
    let inv_states: Vec<String> = invocations(env, &id)
        .await
        .iter()
        .map(|i| i["status_details"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(inv_states, ["Cancelling", "Cancelled", "Cancelled"]);
    // The running agent is told to stop; the others get nothing.
    let items = agents[0].poll().await;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["kind"], "cancel");
    assert_eq!(items[0]["parameters"]["invocation_id"], inv.as_str());
    assert!(agents[1].poll().await.is_empty());
    assert!(agents[0].report(&inv, "Cancelled", -1, "").await);
    let c = until(env, &id, "cancelled", |c| c["status"] == "Cancelled").await;
    assert_eq!(c["status_details"], "Cancelled");
    // Cancelling a finished command changes nothing.
    let (status, again) = env
        .post(
            &format!("/api/v1/commands/{id}/cancel"),
            &env.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "Cancelled");
    let cancels = env
        .audit()
        .await
        .into_iter()
        .filter(|e| e["action"] == "CancelCommand")
        .count();
    assert_eq!(cancels, 1, "a no-op cancel is not a change");
}

async fn redelivered_until_acknowledged(env: &Env) {
    let agents = fleet(env, 1, "resend").await;
    let a = &agents[0];
    let c = send(env, install("resend", "1", "0")).await;
    let id = c["command_id"].as_str().unwrap().to_string();
    let first = a.poll().await;
    assert_eq!(first.len(), 1);
    // Not acknowledged: nothing until the resend interval (1 s here)…
    assert!(a.poll().await.is_empty());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // …then the same invocation, with the same baseline version.
    let second = a.poll().await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["id"], first[0]["id"]);
    assert_eq!(second[0]["parameters"], first[0]["parameters"]);
    let inv = first[0]["id"].as_str().unwrap();
    assert!(a.report(inv, "InProgress", -1, "").await);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(a.poll().await.is_empty(), "acknowledged: never sent again");
    // A result sent twice (its answer lost) is recorded once.
    let long = "x".repeat(30_000);
    assert!(a.report(inv, "Success", 0, &long).await);
    assert!(a.report(inv, "Success", 0, &long).await);
    // A different late result does not replace the first.
    assert!(a.report(inv, "Failed", 1, "").await);
    let i = env
        .get(
            &format!("/api/v1/commands/{id}/invocations/{}", a.node_id),
            &env.admin,
        )
        .await;
    assert_eq!(i["status"], "Success");
    assert_eq!(i["deliveries"], 2);
    // SSM's truncations; the whole text in the object store.
    let out = i["standard_output_content"].as_str().unwrap();
    assert_eq!(out.chars().count(), 24_000);
    assert!(out.ends_with("--output truncated--"));
    assert!(i["output"].as_str().unwrap().chars().count() <= 2_500);
    assert!(
        i["standard_output_url"]
            .as_str()
            .unwrap()
            .starts_with("s3://patchfleet/command-output/"),
        "{i}"
    );
    let full = env
        .request(
            Method::GET,
            &format!("/api/v1/commands/{id}/invocations/{}/output", a.node_id),
            Some(&env.admin),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(full, long);
}

async fn refusals_and_undeliverable_nodes(env: &Env) {
    let runner = SimAgent::register(env, "mixed", RUN).await;
    // An agent that announced only scanning is never sent a command.
    let scanner = SimAgent::register(env, "mixed", &["scan"]).await;
    let c = send(env, install("mixed", "10", "0")).await;
    let id = c["command_id"].as_str().unwrap().to_string();
    assert!(scanner.poll().await.is_empty());
    let items = runner.poll().await;
    assert_eq!(items.len(), 1);
    let inv = items[0]["id"].as_str().unwrap().to_string();
    // Cancelled before the agent acknowledged: its InProgress is refused.
    let (status, _) = env
        .post(
            &format!("/api/v1/commands/{id}/cancel"),
            &env.admin,
            json!({"node_ids": [runner.node_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!runner.report(&inv, "InProgress", -1, "").await);
    let c = until(env, &id, "the command ends", |c| {
        c["finished_at"].is_string()
    })
    .await;
    let states: Vec<(String, String)> = invocations(env, &id)
        .await
        .iter()
        .map(|i| {
            (
                i["node_id"].as_str().unwrap().to_string(),
                i["status_details"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        states.contains(&(scanner.node_id.clone(), "Undeliverable".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(runner.node_id.clone(), "Cancelled".into())),
        "{states:?}"
    );
    assert_eq!(c["status"], "Failed", "{c}");
    assert_eq!(c["status_details"], "Incomplete", "{c}");
    // Someone else's invocation: not found for this node.
    let resp = scanner
        .client
        .post(format!("{}/agent/v1/invocations/{inv}", env.url))
        .json(&json!({"status": "Success", "details": "Success", "response_code": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A status that does not go with its details.
    let resp = runner
        .client
        .post(format!("{}/agent/v1/invocations/{inv}", env.url))
        .json(&json!({"status": "Failed", "details": "Success", "response_code": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

async fn bad_commands_write_nothing(env: &Env) {
    let agent = SimAgent::register(env, "bad", RUN).await;
    let before = env.audit().await.len();
    let bad = [
        (
            json!({"document_name": "AWS-RunShellScript", "instance_ids": [agent.node_id],
                "parameters": {"commands": ["id"]}}),
            "InvalidDocument",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "parameters": {"Operation": ["Reboot"]}}),
            "InvalidParameters",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "parameters": {"Operation": ["Scan"]}, "max_concurrency": "0"}),
            "ValidationException",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "targets": [{"Key": "tag:Environment", "Values": ["bad"]}],
                "parameters": {"Operation": ["Scan"]}}),
            "ValidationException",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": ["mi-00000000000000000"],
                "parameters": {"Operation": ["Scan"]}}),
            "InvalidInstanceId",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "parameters": {"Operation": ["Scan"]}, "timeout_seconds": 5}),
            "ValidationException",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "parameters": {"Operation": ["Install"],
                               "InstallOverrideList": ["s3://patchfleet/none.yaml"]}}),
            "InvalidParameters",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "parameters": {"Operation": ["Install"]},
                "install_override_list": "patches: [{id: 'a b'}]"}),
            "InvalidParameters",
        ),
        (
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                "parameters": {"Operation": ["Scan"]}, "unknown": 1}),
            "ValidationError",
        ),
    ];
    for (body, code) in bad {
        let got = env.post("/api/v1/commands", &env.admin, body.clone()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, code);
        assert!(!message(&got).is_empty(), "{body}");
    }
    assert!(env.items("/api/v1/commands").await.is_empty());
    assert_eq!(env.audit().await.len(), before, "refusals are not changes");
    // An auditor may read commands but not send them.
    let auditor = env.new_key("reader", "auditor").await;
    let got = env
        .post(
            "/api/v1/commands",
            &auditor,
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                   "parameters": {"Operation": ["Scan"]}}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    // Targets matching nothing: the command ends at once.
    let c = send(
        env,
        json!({"document_name": "RunPatchBaseline",
               "targets": [{"Key": "tag:Environment", "Values": ["nowhere"]}],
               "parameters": {"Operation": ["Scan"]}}),
    )
    .await;
    assert_eq!(c["status"], "Failed");
    assert_eq!(c["status_details"], "NoInstancesInTag");
    assert_eq!(c["target_count"], 0);
    assert_eq!(c["document_name"], "AWS-RunPatchBaseline");
    let got = env
        .call(
            Method::GET,
            "/api/v1/commands/00000000-0000-0000-0000-000000000000",
            Some(&env.admin),
            None,
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "InvalidCommandId");
}

async fn install_override_list_from_the_object_store(env: &Env) {
    let agent = SimAgent::register(env, "override", RUN).await;
    let dir = env.dir.join("data/objects/lists");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("zero-day.yaml"),
        "patches:\n  - id: 'openssl.amd64'\n    title: '3.0.*'\n  - id: 'libssl3'\n",
    )
    .unwrap();
    let c = send(
        env,
        json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
               "parameters": {"Operation": ["Install"],
                              "InstallOverrideList": ["s3://patchfleet/lists/zero-day.yaml"]}}),
    )
    .await;
    assert_eq!(
        c["parameters"]["InstallOverrideList"],
        json!(["s3://patchfleet/lists/zero-day.yaml"])
    );
    let items = agent.poll().await;
    assert_eq!(
        items[0]["parameters"]["install_override"],
        json!([{"id": "openssl.amd64", "title": "3.0.*"}, {"id": "libssl3"}])
    );
    // A bucket that is not the server's.
    let got = env
        .post(
            "/api/v1/commands",
            &env.admin,
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [agent.node_id],
                   "parameters": {"Operation": ["Install"],
                                  "InstallOverrideList": ["s3://elsewhere/x.yaml"]}}),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidParameters");
    assert!(message(&got).contains("elsewhere"), "{}", got.1);
}

/// Polls arriving together share one delivery write (group commit): each
/// still gets its own node's invocation, once.
async fn concurrent_polls_each_take_their_own(env: &Env) {
    let agents = fleet(env, 12, "together").await;
    let c = send(env, install("together", "100%", "0")).await;
    let id = c["command_id"].as_str().unwrap().to_string();
    let mut ran: Vec<String> = Vec::new();
    for _ in 0..100 {
        let mut polls = tokio::task::JoinSet::new();
        for (n, a) in agents.iter().enumerate() {
            let a = SimAgent {
                node_id: a.node_id.clone(),
                client: a.client.clone(),
                url: a.url.clone(),
            };
            polls.spawn(async move { (n, a.poll().await) });
        }
        while let Some(answer) = polls.join_next().await {
            let (n, items) = answer.unwrap();
            let a = &agents[n];
            for item in items {
                let inv = item["id"].as_str().unwrap().to_string();
                assert_eq!(inv, format!("{id}.{}", a.node_id), "another node's work");
                assert!(a.report(&inv, "Success", 0, "").await);
                ran.push(a.node_id.clone());
            }
        }
        if ran.len() == agents.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ran.sort();
    let want: Vec<String> = agents.iter().map(|a| a.node_id.clone()).collect();
    assert_eq!(ran, want, "each node got its invocation exactly once");
    let c = until(env, &id, "success", |c| c["status"] == "Success").await;
    assert_eq!(c["completed_count"], 12);
    for i in invocations(env, &id).await {
        assert_eq!(i["deliveries"], 1, "{i}");
    }
}

api_tests!(
    concurrent_polls_each_take_their_own,
    rollout_ramps_up_to_max_concurrency,
    max_errors_stops_the_rollout,
    cancel_before_and_after_delivery,
    redelivered_until_acknowledged,
    refusals_and_undeliverable_nodes,
    bad_commands_write_nothing,
    install_override_list_from_the_object_store,
);
