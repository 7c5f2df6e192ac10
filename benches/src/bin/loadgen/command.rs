//! `loadgen command`: SendCommand to thousands of simulated agents.
//!
//! The server runs in a child process (`child.rs`), so its CPU time is read
//! apart from the generator's and each process keeps its own
//! file-descriptor budget (one socket per agent on each side). The
//! generator registers the agents over `/agent/v1/register`,
//! parks one long poll per agent (`GET /agent/v1/work?wait=60`, each with
//! its own client certificate), then sends one Scan command to every node
//! and measures, per agent, the time from the SendCommand request to the
//! invocation arriving; each agent then acknowledges (`InProgress`) and
//! reports `Success` at once, as a very fast node would.

use super::child::{ServerChild, api, cpu_of};
use super::{SimNode, percentile, register};
use anyhow::{Result, bail};
use patchfleet_core::facts::NodeFacts;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(
    database: Option<String>,
    n: usize,
    max_concurrency: String,
    register_concurrency: usize,
) -> Result<()> {
    let child = ServerChild::start(database.as_deref())?;
    let served = child.served.clone();
    let http = child.http()?;
    let pid = child.pid;
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
    let activations = child.activations(&http, n).await?;
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
    // The ramp as the server recorded it: when each wave was dispatched
    // (milliseconds after the command was requested) and how large it was.
    let requested: jiff::Timestamp = done["requested_date_time"]
        .as_str()
        .unwrap_or_default()
        .parse()?;
    let mut dispatched: Vec<i64> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(n) => format!("/api/v1/commands/{id}/invocations?limit=1000&next={n}"),
            None => format!("/api/v1/commands/{id}/invocations?limit=1000"),
        };
        let page = api(&http, &served, "GET", &path, None).await?;
        for i in page["items"].as_array().into_iter().flatten() {
            if let Some(t) = i["dispatched_at"].as_str() {
                let t: jiff::Timestamp = t.parse()?;
                dispatched.push(t.as_millisecond() - requested.as_millisecond());
            }
        }
        match page["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
    }
    dispatched.sort_unstable();
    let mut waves: Vec<(i64, usize)> = Vec::new();
    for t in dispatched {
        match waves.last_mut() {
            Some((at, n)) if t == *at => *n += 1,
            _ => waves.push((t, 1)),
        }
    }
    let shown: Vec<String> = waves
        .iter()
        .take(24)
        .map(|(at, n)| format!("{n}@{at}ms"))
        .collect();
    println!(
        "dispatch steps (nodes@time): {}{}",
        shown.join(" "),
        if waves.len() > 24 { " …" } else { "" }
    );
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
    child.stop();
    Ok(())
}
