//! What the tests with a real server share: `patchfleet-agent run`
//! processes (killed, their logs shown on failure), the native API with an
//! admin key, registration, and reading compliance reports.

use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");

/// The agent processes: killed, and their logs shown when the test failed,
/// on every way out.
pub struct Agents {
    pub logs: PathBuf,
    pub children: Vec<(String, Child)>,
}

impl Agents {
    pub fn new(logs: PathBuf) -> Agents {
        std::fs::create_dir_all(&logs).unwrap();
        Agents {
            logs,
            children: Vec::new(),
        }
    }

    /// `patchfleet-agent run ARGS`. The logs are appended to, so a
    /// restarted agent's log follows its first life's.
    pub fn spawn_args(&mut self, name: &str, args: &[OsString]) {
        let log = |ext: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.logs.join(format!("{name}.{ext}")))
                .unwrap()
        };
        let child = Command::new(AGENT)
            .arg("run")
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(log("out"))
            .stderr(log("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("{AGENT}: {e}"));
        self.children.retain(|(n, _)| n != name);
        self.children.push((name.to_string(), child));
    }

    pub fn spawn(&mut self, name: &str, state: &Path, root: &Path, boot: &str) {
        let args: Vec<OsString> = vec![
            "--state-dir".into(),
            state.into(),
            "--root".into(),
            root.into(),
            "--boot-time".into(),
            boot.into(),
        ];
        self.spawn_args(name, &args);
    }

    pub fn child(&mut self, name: &str) -> &mut Child {
        &mut self.children.iter_mut().find(|(n, _)| n == name).unwrap().1
    }

    /// SIGKILL: the agent gets no chance to tidy up (a crash, a power cut).
    pub fn kill(&mut self, name: &str) {
        let child = self.child(name);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn stderr(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}.err"))).unwrap_or_default()
    }

    /// Every agent still running (none exited on its own).
    pub fn assert_running(&mut self, names: &[&str]) {
        for name in names {
            let status = self.child(name).try_wait().unwrap();
            assert!(
                status.is_none(),
                "agent {name} exited ({status:?}):\n{}",
                self.stderr(name)
            );
        }
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            for (name, _) in &self.children {
                eprintln!("--- agent {name} stderr:\n{}", self.stderr(name));
            }
        }
    }
}

/// The native API with an admin key, trusting only the server's CA.
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub auth: String,
}

impl Api {
    pub fn new(url: String, ca_pem: &str, access_key_id: &str, secret: &str) -> Api {
        Api {
            http: reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            url,
            auth: format!("Bearer {access_key_id}:{secret}"),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, v)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// A text answer (an invocation's whole output).
    pub async fn text(&self, path: &str) -> String {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header("authorization", &self.auth)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "GET {path}");
        resp.text().await.unwrap()
    }

    pub async fn items(&self, path: &str) -> Vec<Value> {
        self.get(path).await["items"].as_array().unwrap().clone()
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, v) = self.call(method.clone(), path, Some(body)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// The node's compliance report, once the server has one.
    pub async fn wait_for_patches(&self, node: &str, agents: &mut Agents, name: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, v) = self
                .call(
                    reqwest::Method::GET,
                    &format!("/api/v1/nodes/{node}/patches"),
                    None,
                )
                .await;
            if status == 200 {
                return v;
            }
            agents.assert_running(&[name]);
            assert!(
                Instant::now() < deadline,
                "{node} ({name}) has no compliance after 60 s: {status} {v}\n{}",
                agents.stderr(name)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `patchfleet-agent register` with the server at `url` whose CA has
/// `ca_fingerprint`: (exit status, stdout, stderr).
pub async fn register(
    url: &str,
    ca_fingerprint: &str,
    activation: &Value,
    state: &Path,
    root: &Path,
) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(AGENT)
        .args(["register", "--server", url, "--activation-id"])
        .arg(activation["activation_id"].as_str().unwrap())
        .args(["--ca-fingerprint", ca_fingerprint, "--state-dir"])
        .arg(state)
        .arg("--root")
        .arg(root)
        .env(
            "PATCHFLEET_ACTIVATION_CODE",
            activation["activation_code"].as_str().unwrap(),
        )
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(package → state)` of a node's compliance (`/api/v1/nodes/{id}/patches`).
pub fn states(view: &Value) -> BTreeMap<String, String> {
    super::states(&view["report"])
}

pub fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
