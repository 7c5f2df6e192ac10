//! `patchfleet server` (the control plane) and `patchfleet dev` (a server
//! with a temporary data directory, plus this machine registered and scanned
//! by a local scan-only agent).

use anyhow::{Context, Result, anyhow};
use clap::Args;
use patchfleet_server::config::Config;
use patchfleet_server::server::{self, Running};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ServerArgs {
    /// TOML configuration file (see docs/operations.md).
    #[arg(long, env = "PATCHFLEET_CONFIG_FILE")]
    config: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address and port to listen on (default 0.0.0.0:8443).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// `postgres://…` for PostgreSQL; default: SQLite in the data directory.
    #[arg(long)]
    database: Option<String>,
    /// Serve plain HTTP (only behind a TLS-terminating proxy, or for tests).
    #[arg(long)]
    insecure_http: bool,
    /// A DNS name or IP address agents use to reach the server (for the
    /// certificate); repeatable.
    #[arg(long = "server-name")]
    server_names: Vec<String>,
}

pub fn config_of(args: &ServerArgs) -> Result<Config> {
    let mut c = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| anyhow!("{e}"))?,
        None => Config::default(),
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    c.apply_env(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| anyhow!("{e}"))?;
    if let Some(d) = &args.data_dir {
        c.data_dir = d.clone();
    }
    if let Some(l) = args.listen {
        c.listen = l;
    }
    if let Some(db) = &args.database {
        c.database = Some(db.clone());
    }
    if args.insecure_http {
        c.insecure_http = true;
    }
    c.server_names.extend(args.server_names.iter().cloned());
    Ok(c)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn announce(r: &Running) {
    println!("Patchfleet server listening on {}", r.url());
    println!("CA fingerprint: {}", r.ca_fingerprint);
    if let Some(k) = &r.bootstrap_key {
        println!("Bootstrap admin API key (shown once, store it now):");
        println!("  access key id:     {}", k.access_key_id);
        println!("  secret access key: {}", k.secret_access_key);
    }
}

pub fn run_server(args: &ServerArgs) -> Result<ExitCode> {
    let config = config_of(args)?;
    if config.insecure_http {
        eprintln!("patchfleet: warning: --insecure-http: serving plain HTTP, no TLS");
    }
    runtime()?.block_on(async {
        let running = server::start(config).await?;
        announce(&running);
        running.run_until(stop_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Args)]
pub struct DevArgs {
    /// Keep the server's data here (default: a temporary directory,
    /// removed at exit).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The agent to register (default: `patchfleet-agent` next to this binary).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// The root the local agent scans (default `/`; a test bed otherwise).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Let the local agent install updates when sent an Install command
    /// (it is scan-only by default: an Install ends failed, nothing
    /// changed).
    #[arg(long)]
    allow_install: bool,
    /// Start, scan, print, and stop instead of serving until interrupted.
    #[arg(long)]
    once: bool,
}

pub fn run_dev(args: &DevArgs) -> Result<ExitCode> {
    let (data_dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => {
            let d = std::env::temp_dir().join(format!("patchfleet-dev-{}", std::process::id()));
            (d, true)
        }
    };
    let config = Config {
        data_dir: data_dir.clone(),
        listen: args.listen,
        heartbeat_seconds: 10,
        ..Config::default()
    };
    let agent = match &args.agent {
        Some(a) => a.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("patchfleet-agent"))
            .ok_or_else(|| anyhow!("cannot find patchfleet-agent; pass --agent"))?,
    };
    let result = runtime()?.block_on(async {
        let running = server::start(config).await?;
        announce(&running);
        let key = running
            .bootstrap_key
            .clone()
            .ok_or_else(|| anyhow!("{}: not a fresh data directory", data_dir.display()))?;
        let summary =
            crate::dev::register_and_scan(&running, &key, &agent, &args.root, !args.allow_install)
                .await;
        match summary {
            Ok(text) => print!("{text}"),
            Err(e) => eprintln!("patchfleet dev: {e:#}"),
        }
        if args.once {
            running.shutdown().await;
        } else {
            println!("Serving until interrupted (Ctrl-C).");
            running.run_until(stop_signal()).await;
        }
        crate::dev::stop_agent();
        Ok::<_, anyhow::Error>(ExitCode::SUCCESS)
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}
