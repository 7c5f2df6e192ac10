//! The server under test in a child process (`loadgen serve`): its CPU
//! time read apart from the generator's (`/proc/<pid>/stat`), its own
//! file-descriptor budget, reached over HTTPS with the bootstrap key.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

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
pub fn cpu_of(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').context("/proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

pub async fn api(
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

/// A running `loadgen serve` child.
pub struct ServerChild {
    child: Child,
    pub pid: u32,
    pub served: Arc<Served>,
}

impl ServerChild {
    pub fn start(database: Option<&str>) -> Result<ServerChild> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .args(database.iter().flat_map(|d| ["--database", d]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the server child")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().context("child stdout")?)
            .read_line(&mut line)?;
        let served = Arc::new(serde_json::from_str(&line).context("the child's first line")?);
        Ok(ServerChild {
            pid: child.id(),
            child,
            served,
        })
    }

    /// A client of the API trusting the child's CA.
    pub fn http(&self) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(
                self.served.ca_pem.as_bytes(),
            )?])
            .timeout(Duration::from_secs(120))
            .build()?)
    }

    /// `(id, code)` of activations for `n` registrations (1,000 each).
    pub async fn activations(
        &self,
        http: &reqwest::Client,
        n: usize,
    ) -> Result<Arc<Vec<(String, String)>>> {
        let mut out = Vec::new();
        for chunk in 0..n.div_ceil(1000) {
            let limit = (n - chunk * 1000).min(1000);
            let a = api(
                http,
                &self.served,
                "POST",
                "/api/v1/activations",
                Some(json!({"registration_limit": limit, "description": "loadgen"})),
            )
            .await?;
            out.push((
                a["activation_id"].as_str().unwrap_or_default().to_string(),
                a["activation_code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ));
        }
        Ok(Arc::new(out))
    }

    /// The child's CPU time so far.
    pub fn cpu(&self) -> Result<Duration> {
        cpu_of(self.pid)
    }

    /// Closes its standard input: it shuts down.
    pub fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
