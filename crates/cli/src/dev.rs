//! `patchfleet dev`'s local agent: the real `patchfleet-agent` binary,
//! registered over HTTPS with a one-use activation, then run as a child
//! process that scans the machine (or a test-bed root) and reports.

use anyhow::{Context, Result, anyhow, bail};
use patchfleet_server::server::Running;
use patchfleet_server::services::activations::{self, CreateActivation};
use patchfleet_server::services::keys::NewKey;
use patchfleet_server::services::{Caller, fleet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static AGENT: Mutex<Option<Child>> = Mutex::new(None);

/// Stops the agent child, if one runs.
pub fn stop_agent() {
    let child = AGENT.lock().ok().and_then(|mut g| g.take());
    if let Some(mut c) = child {
        let _ = nix_term(c.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn nix_term(pid: u32) -> std::io::Result<()> {
    // SIGTERM lets the agent finish what it is sending.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}

pub async fn register_and_scan(
    running: &Running,
    key: &NewKey,
    agent: &Path,
    root: &Path,
    scan_only: bool,
) -> Result<String> {
    if !agent.is_file() {
        bail!(
            "{}: no agent binary (build it: cargo build -p patchfleet-agent)",
            agent.display()
        );
    }
    let svc = &running.services;
    let activation = activations::create(
        svc,
        &Caller::system(),
        CreateActivation {
            description: "patchfleet dev: this machine".into(),
            default_instance_name: Some("dev".into()),
            ..CreateActivation::default()
        },
    )
    .await
    .map_err(|e| anyhow!("creating the activation: {}", e.message))?;
    let state_dir = svc.config.data_dir.join("agent");
    let out = Command::new(agent)
        .args(["register", "--server", &running.url(), "--activation-id"])
        .arg(&activation.activation_id)
        .args(["--ca-fingerprint", &running.ca_fingerprint, "--state-dir"])
        .arg(&state_dir)
        .arg("--root")
        .arg(root)
        .env("PATCHFLEET_ACTIVATION_CODE", &activation.activation_code)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", agent.display()))?;
    if !out.status.success() {
        bail!(
            "registering the local agent failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let node_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let child = Command::new(agent)
        .args(["run", "--state-dir"])
        .arg(&state_dir)
        .arg("--root")
        .arg(root)
        .args(scan_only.then_some("--scan-only"))
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} run", agent.display()))?;
    if let Ok(mut g) = AGENT.lock() {
        *g = Some(child);
    }
    let caller = Caller {
        actor: key.access_key_id.clone(),
        role: key.role,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let view = loop {
        match fleet::node_compliance(svc, &caller, &node_id, false).await {
            Ok(v) => break v,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => bail!(
                "{node_id} reported no compliance within 2 minutes: {}",
                e.message
            ),
        }
    };
    let c = &view.counts;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nThis machine is {node_id}, judged by baseline {}:",
        view.baseline_id
    );
    let _ = writeln!(
        s,
        "  {} ({}): {} missing, {} failed, {} installed, {} installed other, {} pending reboot, {} rejected",
        view.compliance_status,
        view.overall_severity,
        c.missing,
        c.failed,
        c.installed,
        c.installed_other,
        c.installed_pending_reboot,
        c.installed_rejected
    );
    let ca_file = svc.config.data_dir.join("ca.pem");
    let _ = writeln!(s, "\nUse the CLI against it:");
    let _ = writeln!(s, "  export PATCHFLEET_SERVER={}", running.url());
    let _ = writeln!(s, "  export PATCHFLEET_CA_FILE={}", ca_file.display());
    let _ = writeln!(s, "  export PATCHFLEET_ACCESS_KEY_ID={}", key.access_key_id);
    let _ = writeln!(
        s,
        "  export PATCHFLEET_SECRET_ACCESS_KEY={}",
        key.secret_access_key
    );
    let _ = writeln!(s, "  patchfleet node patches {node_id}");
    Ok(s)
}
