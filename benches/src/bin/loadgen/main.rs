//! Load generator and scale benchmarks of the server (not tests).
//!
//! `loadgen agent`: starts a server in a child process (`loadgen serve`,
//! SQLite in a temporary data directory, or `--database postgres://…`),
//! registers simulated nodes over `/agent/v1/register` (ECDSA P-256 key and
//! CSR, as the agent does), then drives (a) facts offers of a known hash
//! over mTLS, each node with its own certificate, and (b) full uploads of
//! distinct 1,500-installed-package facts (offer, then a gzip'd `PUT
//! /agent/v1/facts/{hash}`), and reports the server's CPU time per
//! operation apart from the generator's.
//!
//! `loadgen command`: SendCommand to thousands of simulated agents, each
//! with its own certificate and long poll (see `command.rs`).
//!
//! `loadgen recompute`: populates the store directly (nodes, distinct
//! inventories, nodes spread over them), then times the fleet
//! re-computation after a baseline edit (a new default baseline: every node
//! re-evaluated) and the fleet compliance summary.

mod child;
mod command;

use anyhow::{Result, anyhow, bail};
use clap::{Parser, Subcommand};
use jiff::Timestamp;
use patchfleet_core::facts::NodeFacts;
use patchfleet_protocol::{
    AgentInfo, FactsOffer, FactsOfferAck, PROTOCOL_VERSION, Platform, RegisterRequest,
    RegisterResponse,
};
use patchfleet_server::config::Config;
use patchfleet_server::services::{Caller, Services, activations, fleet};
use patchfleet_server::store::{Audit, NewInventory, NewNode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Agent traffic over HTTPS against an in-process server.
    Agent {
        /// `postgres://…`; default: SQLite in a temporary directory.
        #[arg(long)]
        database: Option<String>,
        /// Simulated nodes.
        #[arg(long, default_value_t = 200)]
        nodes: usize,
        /// Requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds of known-hash offers.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Full uploads of distinct facts.
        #[arg(long, default_value_t = 1000)]
        uploads: usize,
    },
    /// SendCommand to many simulated agents (the server in a child process).
    Command {
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        /// The command's MaxConcurrency (a count or a percentage).
        #[arg(long, default_value = "100%")]
        max_concurrency: String,
        /// Registrations in flight.
        #[arg(long, default_value_t = 16)]
        register_concurrency: usize,
    },
    /// (Internal: the server child of `command`.)
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        database: Option<String>,
    },
    /// Fleet re-computation and summary at scale, store populated directly.
    Recompute {
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 100_000)]
        nodes: usize,
        #[arg(long, default_value_t = 500)]
        inventories: usize,
        /// Tasks populating the store.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match args.cmd {
            Cmd::Agent {
                database,
                nodes,
                concurrency,
                seconds,
                uploads,
            } => agent(database, nodes, concurrency, seconds, uploads).await,
            Cmd::Recompute {
                database,
                nodes,
                inventories,
                concurrency,
            } => recompute(database, nodes, inventories, concurrency).await,
            Cmd::Command {
                database,
                nodes,
                max_concurrency,
                register_concurrency,
            } => command::run(database, nodes, max_concurrency, register_concurrency).await,
            Cmd::Serve { database } => child::serve(database).await,
        }
    })
}

async fn start(database: Option<String>) -> Result<(patchfleet_server::server::Running, TempDir)> {
    let dir = TempDir::new()?;
    let config = Config {
        data_dir: dir.0.clone(),
        listen: "127.0.0.1:0".parse()?,
        database,
        heartbeat_seconds: 60,
        ..Config::default()
    };
    let running = patchfleet_server::server::start(config).await?;
    Ok((running, dir))
}

/// Removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let p = std::env::temp_dir().join(format!(
            "patchfleet-loadgen-{}-{}",
            std::process::id(),
            Timestamp::now().as_millisecond()
        ));
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Activations for `n` registrations (the API allows 1,000 each).
async fn activations_for(svc: &Services, n: usize) -> Result<Vec<activations::CreatedActivation>> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let limit = left.min(1000);
        let a = activations::create(
            svc,
            &Caller::system(),
            activations::CreateActivation {
                description: "loadgen".into(),
                registration_limit: Some(limit as i64),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow!("creating an activation: {}", e.message))?;
        out.push(a);
        left -= limit;
    }
    Ok(out)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(ca_pem: &str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes())?)?;
    Ok(roots)
}

fn client(tls: rustls::ClientConfig) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?)
}

struct SimNode {
    #[allow(dead_code)]
    node_id: String,
    client: reqwest::Client,
}

fn agent_info(facts: &NodeFacts, hostname: String) -> AgentInfo {
    AgentInfo {
        protocol: PROTOCOL_VERSION,
        agent_version: "loadgen".into(),
        capabilities: Vec::new(),
        hostname,
        ip_address: Some("127.0.0.1".into()),
        platform: Platform {
            operating_system: facts.os.operating_system.as_str().into(),
            product: facts.os.product.clone(),
            name: "Red Hat Enterprise Linux".into(),
            version: "9".into(),
        },
    }
}

/// Registers one simulated node over `/agent/v1/register` with the
/// activation `(id, code)`, announcing `capabilities`.
async fn register(
    url: &str,
    ca_pem: &str,
    (activation_id, activation_code): (&str, &str),
    hostname: String,
    facts: &NodeFacts,
    capabilities: &[&str],
) -> Result<SimNode> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname.clone());
    let csr_pem = params.serialize_request(&key)?.pem()?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    let mut agent = agent_info(facts, hostname);
    agent.capabilities = capabilities.iter().map(|c| c.to_string()).collect();
    let req = RegisterRequest {
        activation_id: activation_id.to_string(),
        activation_code: activation_code.to_string(),
        csr_pem,
        agent,
    };
    let resp = client(tls)?
        .post(format!("{url}/agent/v1/register"))
        .json(&req)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("register: {} {}", resp.status(), resp.text().await?);
    }
    let r: RegisterResponse = resp.json().await?;
    let chain = CertificateDer::pem_slice_iter(r.certificate_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(&r.ca_pem)?)
        .with_client_auth_cert(chain, key)?;
    Ok(SimNode {
        node_id: r.node_id,
        client: client(tls)?,
    })
}

async fn offer(url: &str, node: &SimNode, offer: &FactsOffer) -> Result<bool> {
    let resp = node
        .client
        .post(format!("{url}/agent/v1/facts/offer"))
        .json(offer)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("offer: {} {}", resp.status(), resp.text().await?);
    }
    Ok(resp.json::<FactsOfferAck>().await?.known)
}

/// A full report as the agent sends it: the offer of `upload.offer`'s hash
/// (unknown), then the gzip body.
async fn upload(url: &str, node: &SimNode, upload: &Upload) -> Result<()> {
    let hash = &upload.offer.content_hash;
    if offer(url, node, &upload.offer).await? {
        bail!("{hash}: expected an unknown hash");
    }
    let resp = node
        .client
        .put(format!("{url}/agent/v1/facts/{hash}"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(upload.gzip.clone())
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("upload: {} {}", resp.status(), resp.text().await?);
    }
    Ok(())
}

/// One report, prepared before the clock starts: the generator's own work
/// (serialising, hashing, compressing) is not the server's.
struct Upload {
    offer: FactsOffer,
    json_len: usize,
    gzip: Vec<u8>,
}

impl Upload {
    fn of(facts: &NodeFacts) -> Result<Upload> {
        use std::io::Write;
        let json = serde_json::to_vec(facts)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json)?;
        Ok(Upload {
            offer: FactsOffer {
                content_hash: facts.content_hash(),
                state: patchfleet_protocol::NodeState::of(facts),
                scanned_at: Timestamp::now(),
            },
            json_len: json.len(),
            gzip: gz.finish()?,
        })
    }
}

/// Facts of node `i`: one of a few images, one version varied so that every
/// `i` hashes differently.
fn facts_of(i: usize, images: &[NodeFacts]) -> NodeFacts {
    let mut f = images[i % images.len()].clone();
    f.installed[0].version = format!("1.0.{i}-1.el9");
    f
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn agent(
    database: Option<String>,
    n: usize,
    concurrency: usize,
    seconds: u64,
    uploads: usize,
) -> Result<()> {
    let backend = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    // The server in a child process: its CPU per operation is its own.
    let server = child::ServerChild::start(database.as_deref())?;
    let url = server.served.url.clone();
    let http = server.http()?;
    let images: Vec<NodeFacts> = (0..8).map(patchfleet_benches::rpm_node).collect();
    println!(
        "server pid {} at {url} ({backend}); {n} nodes, concurrency {concurrency}",
        server.pid
    );

    // Registration.
    let acts = server.activations(&http, n).await?;
    let started = Instant::now();
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let (id, code) = &acts[i / 1000];
        nodes.push(
            register(
                &url,
                &server.served.ca_pem,
                (id, code),
                format!("sim-{i}"),
                &images[0],
                &[],
            )
            .await?,
        );
    }
    let nodes = Arc::new(nodes);
    println!(
        "registered {n} nodes in {:.2?} ({:.0}/s, sequential)",
        started.elapsed(),
        n as f64 / started.elapsed().as_secs_f64()
    );

    // Each node reports a known inventory once (the state it then repeats).
    let base = facts_of(0, &images);
    upload(&url, &nodes[0], &Upload::of(&base)?).await?;
    let known = FactsOffer {
        content_hash: base.content_hash(),
        state: patchfleet_protocol::NodeState::of(&base),
        scanned_at: Timestamp::now(),
    };
    for node in nodes.iter() {
        if !offer(&url, node, &known).await? {
            bail!("the hash just uploaded is unknown");
        }
    }

    // (a) Check-ins with an unchanged hash.
    let cpu_before = server.cpu()?;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for w in 0..concurrency {
        let (nodes, stop, count, url, known) = (
            nodes.clone(),
            stop.clone(),
            count.clone(),
            url.clone(),
            known.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                offer(&url, &nodes[i % nodes.len()], &known).await?;
                lat.push(t.elapsed());
                count.fetch_add(1, Ordering::Relaxed);
                i += concurrency;
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed();
    lat.sort();
    let done = count.load(Ordering::Relaxed);
    let cpu = server.cpu()? - cpu_before;
    println!(
        "known-hash offers: {done} in {elapsed:.2?} = {:.0}/s (p50 {:.2?}, p99 {:.2?}); server CPU {:.0} µs each",
        done as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        cpu.as_micros() as f64 / done.max(1) as f64
    );

    // (b) Full uploads of distinct facts (bodies prepared beforehand).
    let bodies: Vec<Upload> = (1..=uploads)
        .map(|i| Upload::of(&facts_of(i, &images)))
        .collect::<Result<_>>()?;
    let bytes: usize = bodies.iter().map(|u| u.json_len).sum();
    let gz_bytes: usize = bodies.iter().map(|u| u.gzip.len()).sum();
    let bodies = Arc::new(std::sync::Mutex::new(bodies));
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = server.cpu()?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (nodes, bodies, next, url) = (nodes.clone(), bodies.clone(), next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(u) = bodies.lock().expect("lock").pop() else {
                    break;
                };
                let t = Instant::now();
                upload(&url, &nodes[i % nodes.len()], &u).await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed();
    let cpu = server.cpu()? - cpu_before;
    lat.sort();
    println!(
        "full uploads (offer + PUT, 1,500 installed, {:.0} KiB JSON each, {:.0} KiB gzip): {uploads} in {elapsed:.2?} = {:.0}/s (p50 {:.2?}, p99 {:.2?}); server CPU {:.2} ms each",
        bytes as f64 / uploads as f64 / 1024.0,
        gz_bytes as f64 / uploads as f64 / 1024.0,
        uploads as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        cpu.as_secs_f64() * 1000.0 / uploads as f64
    );
    server.stop();
    Ok(())
}

async fn recompute(
    database: Option<String>,
    n: usize,
    inventories: usize,
    concurrency: usize,
) -> Result<()> {
    let backend = if database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (running, _dir) = start(database).await?;
    let svc = running.services.clone();
    println!("{backend}: {n} nodes over {inventories} inventories");

    // Inventories.
    let started = Instant::now();
    let images: Vec<NodeFacts> = (0..8).map(patchfleet_benches::rpm_node).collect();
    let mut hashes = Vec::new();
    for i in 0..inventories {
        let f = facts_of(i, &images);
        let audit = Audit::new("system", "PutInventory");
        svc.store
            .put_inventory(&NewInventory::from_facts(&f), Timestamp::now(), &audit)
            .await?;
        let state = patchfleet_protocol::NodeState::of(&f);
        hashes.push((
            f.content_hash(),
            serde_json::to_value(&state)?,
            patchfleet_server::compliance::state_key(&f, &state),
        ));
    }
    println!(
        "stored {inventories} inventories in {:.2?}",
        started.elapsed()
    );

    // Nodes, registered and pointed at an inventory.
    let acts = activations_for(&svc, n).await?;
    let os = images[0].os.operating_system.as_str().to_string();
    let product = images[0].os.product.clone();
    let started = Instant::now();
    let hashes = Arc::new(hashes);
    let acts = Arc::new(acts);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (svc, hashes, acts, os, product) = (
            svc.clone(),
            hashes.clone(),
            acts.clone(),
            os.clone(),
            product.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                let act = &acts[i / 1000];
                let node_id = patchfleet_server::store::new_node_id();
                let new = NewNode {
                    node_id: node_id.clone(),
                    name: format!("sim-{i}"),
                    computer_name: format!("sim-{i}"),
                    ip_address: "127.0.0.1".into(),
                    agent_version: "loadgen".into(),
                    protocol: PROTOCOL_VERSION.to_string(),
                    capabilities: Vec::new(),
                    platform_type: "Linux".into(),
                    platform_name: "Red Hat Enterprise Linux".into(),
                    platform_version: "9".into(),
                    operating_system: os.clone(),
                    product: product.clone(),
                    cert_fingerprint: format!("fp-{i}"),
                };
                let now = Timestamp::now();
                svc.store
                    .register_node(
                        &act.activation_id,
                        &patchfleet_server::auth::sha256_hex(&act.activation_code),
                        &new,
                        now,
                        &Audit::new("system", "RegisterNode").at(now),
                    )
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                let (hash, state, state_key) = &hashes[i % hashes.len()];
                svc.store
                    .set_node_inventory(
                        &node_id,
                        hash,
                        state,
                        state_key,
                        now,
                        &Audit::new("system", "ReportInventory"),
                    )
                    .await?;
                i += concurrency;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!(
        "registered and pointed {n} nodes in {:.2?}",
        started.elapsed()
    );

    // First computation (every node's first summary).
    let started = Instant::now();
    let r = fleet::recompute(&svc, None, Timestamp::now())
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    println!("initial recompute: {:.2?} {r:?}", started.elapsed());

    // The edit: a new default baseline for the OS (every node re-evaluated).
    let mut doc = serde_json::to_value(patchfleet_benches::busy_baseline())?;
    if let Some(o) = doc.as_object_mut() {
        o.remove("BaselineId");
    }
    let created =
        patchfleet_server::services::baselines::create(&svc, &Caller::system(), &doc, None)
            .await
            .map_err(|e| anyhow!("creating a baseline: {} {:?}", e.message, e.field))?;
    svc.store
        .set_default_baseline(
            &os,
            &created.baseline_id,
            &Audit::new("system", "RegisterDefaultPatchBaseline"),
        )
        .await?;
    let started = Instant::now();
    let r = fleet::recompute(&svc, None, Timestamp::now())
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    println!(
        "recompute after a baseline edit: {:.2?} {r:?}",
        started.elapsed()
    );
    // Nothing changed since: the same work, every evaluation cached.
    let started = Instant::now();
    let r = fleet::recompute(&svc, None, Timestamp::now())
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    println!(
        "recompute, nothing changed: {:.2?} {r:?}",
        started.elapsed()
    );

    // Fleet summary.
    let mut times = Vec::new();
    let mut total = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let s = fleet::summary(&svc, &Caller::system(), None)
            .await
            .map_err(|e| anyhow!("{}", e.message))?;
        times.push(started.elapsed());
        total = s
            .iter()
            .map(|v| v.compliant + v.non_compliant + v.not_evaluated)
            .sum::<i64>();
    }
    times.sort();
    println!(
        "fleet summary of {total} nodes: median of 5 {:.2?} (min {:.2?}, max {:.2?})",
        times[2], times[0], times[4]
    );
    running.shutdown().await;
    Ok(())
}
