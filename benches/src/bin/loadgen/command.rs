//! `loadgen command`: SendCommand to thousands of simulated agents.
//!
//! The server runs in a child process (`loadgen serve`), so its CPU time is
//! read apart from the generator's (`/proc/<pid>/stat`) and each process
//! keeps its own file-descriptor budget (one socket per agent on each
//! side). The generator registers the agents over `/agent/v1/register`,
//! parks one long poll per agent (`GET /agent/v1/work?wait=60`, each with
//! its own client certificate), then sends one Scan command to every node
//! and measures, per agent, the time from the SendCommand request to the
//! invocation arriving; each agent then acknowledges (`InProgress`) and
//! reports `Success` at once, as a very fast node would.

use super::{SimNode, percentile, register};
use anyhow::{Context, Result, anyhow, bail};
use patchfleet_core::facts::NodeFacts;
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What `loadgen serve` prints once it listens.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Served {
    pub url: String,
    pub ca_pem: String,
    pub bearer: String,
}

/// `loadgen serve`: a server on a temporary data directory until standard
/// input closes (the parent's end).
pub async fn serve(database: Option<String>) -> Result<()> {
    let (running, _dir) = super::start(database).await?;
    let key = running
        .bootstrap_key
        .clone()
        .ok_or_else(|| anyhow!("no bootstrap key"))?;
    let served = Served {
        url: running.url(),
        ca_pem: running.ca_pem.clone(),
        bearer: format!("{}:{}", key.access_key_id, key.secret_access_key),
    };
    println!("{}", serde_json::to_string(&served)?);
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await?;
    running.shutdown().await;
    Ok(())
}

/// The server child's CPU time so far (user + system).
fn cpu_of(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').context("/proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

async fn api(
    http: &reqwest::Client,
    s: &Served,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut rb = http
        .request(method.parse()?, format!("{}{path}", s.url))
        .bearer_auth(&s.bearer);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await?;
    let status = resp.status();
    let v: Value = resp.json().await?;
    if !status.is_success() {
        bail!("{method} {path}: {status} {v}");
    }
    Ok(v)
}

pub async fn run(
    database: Option<String>,
    n: usize,
    max_concurrency: String,
    register_concurrency: usize,
) -> Result<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("serve")
        .args(database.iter().flat_map(|d| ["--database", d.as_str()]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the server child")?;
    let pid = child.id();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
    let served: Arc<Served> =
        Arc::new(serde_json::from_str(&line).context("the child's first line")?);
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(served.ca_pem.as_bytes())?])
        .timeout(Duration::from_secs(120))
        .build()?;
    println!(
        "server pid {pid} at {} ({}); {n} agents",
        served.url,
        if database.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    // Registration, `register_concurrency` at a time.
    let facts: Arc<NodeFacts> = Arc::new(patchfleet_benches::rpm_node(0));
    let mut activations = Vec::new();
    for chunk in 0..n.div_ceil(1000) {
        let limit = (n - chunk * 1000).min(1000);
        let a = api(
            &http,
            &served,
            "POST",
            "/api/v1/activations",
            Some(json!({"registration_limit": limit, "description": "loadgen"})),
        )
        .await?;
        activations.push((
            a["activation_id"].as_str().unwrap_or_default().to_string(),
            a["activation_code"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    let activations = Arc::new(activations);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..register_concurrency {
        let (served, facts, activations, next) = (
            served.clone(),
            facts.clone(),
            activations.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(out);
                }
                let (id, code) = &activations[i / 1000];
                out.push(
                    register(
                        &served.url,
                        &served.ca_pem,
                        (id, code),
                        format!("sim-{i}"),
                        &facts,
                        &["scan", "run-patch-baseline", "cancel"],
                    )
                    .await?,
                );
            }
        }));
    }
    let mut agents: Vec<SimNode> = Vec::with_capacity(n);
    for t in tasks {
        agents.extend(t.await??);
    }
    println!(
        "registered {n} agents in {:.2?} ({:.0}/s, {register_concurrency} at a time)",
        started.elapsed(),
        n as f64 / started.elapsed().as_secs_f64()
    );

    // Every agent parks a long poll.
    let sent_at: Arc<tokio::sync::OnceCell<Instant>> = Arc::new(tokio::sync::OnceCell::new());
    let mut polls = Vec::with_capacity(n);
    for a in agents {
        let (served, sent_at) = (served.clone(), sent_at.clone());
        polls.push(tokio::spawn(async move {
            loop {
                let resp = a
                    .client
                    .get(format!("{}/agent/v1/work?wait=60", served.url))
                    .send()
                    .await?;
                let v: Value = resp.json().await?;
                let Some(item) = v["items"].as_array().and_then(|i| i.first()).cloned() else {
                    continue;
                };
                let got = sent_at.get().map(|t| t.elapsed()).unwrap_or_default();
                let id = item["id"].as_str().unwrap_or_default().to_string();
                for (status, code) in [("InProgress", -1), ("Success", 0)] {
                    let r = a
                        .client
                        .post(format!("{}/agent/v1/invocations/{id}", served.url))
                        .json(&json!({"status": status, "details": status, "response_code": code,
                                      "stdout": if code == 0 { "Instance is Compliant" } else { "" }}))
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        bail!("report {status}: {}", r.status());
                    }
                }
                return anyhow::Ok(got);
            }
        }));
    }
    // Let the polls reach the server.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cpu_before = cpu_of(pid)?;
    let t0 = Instant::now();
    let _ = sent_at.set(t0);
    let c = api(
        &http,
        &served,
        "POST",
        "/api/v1/commands",
        Some(json!({
            "document_name": "AWS-RunPatchBaseline",
            "targets": [{"Key": "InstanceIds", "Values": ["*"]}],
            "parameters": {"Operation": ["Scan"]},
            "max_concurrency": max_concurrency,
            "max_errors": "100%",
        })),
    )
    .await?;
    let send_took = t0.elapsed();
    let id = c["command_id"].as_str().unwrap_or_default().to_string();
    let mut delivered = Vec::with_capacity(n);
    for p in polls {
        delivered.push(p.await??);
    }
    let all_delivered = t0.elapsed();
    let done = loop {
        let c = api(
            &http,
            &served,
            "GET",
            &format!("/api/v1/commands/{id}"),
            None,
        )
        .await?;
        if c["finished_at"].is_string() {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let finished = t0.elapsed();
    let cpu = cpu_of(pid)? - cpu_before;
    // The first wave: the first MaxConcurrency nodes the rollout started.
    let mut in_order = delivered.clone();
    in_order.sort();
    let wave = c["target_count"].as_u64().unwrap_or(n as u64) as usize;
    let concurrency = match max_concurrency.strip_suffix('%') {
        Some(p) => (wave * p.parse::<usize>()?).div_ceil(100).max(1),
        None => max_concurrency.parse::<usize>()?.min(wave),
    };
    let first_wave = &in_order[..concurrency.min(in_order.len())];
    println!(
        "SendCommand answered in {send_took:.2?}; {} targets, MaxConcurrency {max_concurrency} ({concurrency})",
        c["target_count"]
    );
    println!(
        "time to first delivery, all {n}: p50 {:.2?}, p99 {:.2?}, max {:.2?} (last delivery {all_delivered:.2?})",
        percentile(&in_order, 0.5),
        percentile(&in_order, 0.99),
        in_order.last().copied().unwrap_or_default()
    );
    println!(
        "first wave ({} nodes): p50 {:.2?}, p99 {:.2?}",
        first_wave.len(),
        percentile(first_wave, 0.5),
        percentile(first_wave, 0.99)
    );
    println!(
        "command {} {} after {finished:.2?}; server CPU {cpu:.2?} = {:.0} µs per invocation",
        done["status"],
        done["status_details"],
        cpu.as_micros() as f64 / n as f64
    );
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}
