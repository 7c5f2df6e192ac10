//! What the HTTP API tests share: a real server on loopback (SQLite or a
//! PostgreSQL database of its own), a client trusting only its CA, API
//! keys, and agents' keys, CSRs and mTLS clients.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use patchfleet_server::config::Config;
use patchfleet_server::server::{Running, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

pub mod pg;
pub use pg::{create_pg_database, drop_pg_database};
/// The test servers' `max_body_bytes`.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

/// A server on loopback and a client that trusts only its CA.
pub struct Env {
    pub running: Option<Running>,
    pub url: String,
    pub ca_pem: String,
    pub http: reqwest::Client,
    pub admin: Key,
    pub dir: PathBuf,
    /// (admin URL, database) of the PostgreSQL database to drop.
    pub pg: Option<(String, String)>,
}

pub fn suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Env {
    pub async fn start(backend: Backend) -> Env {
        Env::start_with(backend, |_| {}).await
    }

    /// [`Env::start`] with the configuration adjusted by `adjust`.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Env {
        let dir = std::env::temp_dir().join(format!("patchfleet-api-{}", suffix()));
        let (database, pg) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let (admin_url, name, url) = create_pg_database("pf_api").await;
                (Some(url), Some((admin_url, name)))
            }
        };
        let mut config = Config {
            data_dir: dir.join("data"),
            listen: "127.0.0.1:0".parse().unwrap(),
            database,
            max_body_bytes: MAX_BODY,
            heartbeat_seconds: 5,
            // Re-delivery within a test's patience.
            command_resend_seconds: 1,
            ..Config::default()
        };
        adjust(&mut config);
        let running = start(config).await.unwrap();
        let key = running
            .bootstrap_key
            .clone()
            .expect("a first start has a bootstrap key");
        assert_eq!(key.role.as_str(), "admin");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(running.ca_pem.as_bytes()).unwrap()])
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Env {
            url: running.url(),
            ca_pem: running.ca_pem.clone(),
            running: Some(running),
            http,
            admin: Key {
                id: key.access_key_id,
                secret: key.secret_access_key,
            },
            dir,
            pg,
        }
    }

    pub async fn finish(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        if let Some((admin_url, name)) = self.pg.take() {
            drop_pg_database(&admin_url, &name).await;
        }
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&Key>,
    ) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, format!("{}{path}", self.url));
        match key {
            Some(k) => rb.bearer_auth(format!("{}:{}", k.id, k.secret)),
            None => rb,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&Key>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.request(method.clone(), path, key);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        send(rb)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn get(&self, path: &str, key: &Key) -> Value {
        let (status, v) = self.call(Method::GET, path, Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, key: &Key, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn put(&self, path: &str, key: &Key, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }

    /// Every audit entry, oldest first.
    pub async fn audit(&self) -> Vec<Value> {
        let v = self.get("/api/v1/audit?limit=1000", &self.admin).await;
        assert!(v["next"].is_null(), "more than 1000 audit entries");
        let mut items = v["items"].as_array().unwrap().clone();
        items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        items
    }

    pub async fn items(&self, path: &str) -> Vec<Value> {
        self.get(path, &self.admin).await["items"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no items"))
            .clone()
    }

    /// What a refused request must leave as it was.
    pub async fn snapshot(&self) -> Value {
        json!({
            "audit": self.audit().await,
            "keys": self.items("/api/v1/api-keys").await,
            "activations": self.items("/api/v1/activations").await,
            "baselines": self.items("/api/v1/baselines").await,
            "patch_groups": self.items("/api/v1/patch-groups").await,
            "nodes": self.items("/api/v1/nodes").await,
        })
    }

    pub async fn new_key(&self, name: &str, role: &str) -> Key {
        let (status, v) = self
            .post(
                "/api/v1/api-keys",
                &self.admin,
                json!({"name": name, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["role"], role);
        Key {
            id: v["access_key_id"].as_str().unwrap().to_string(),
            secret: v["secret_access_key"].as_str().unwrap().to_string(),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn send(rb: reqwest::RequestBuilder) -> Result<(StatusCode, Value), reqwest::Error> {
    let resp = rb.send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{status}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Ok((status, v))
}

/// `{code, message, field}` with the status.
#[track_caller]
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["code"], code, "{}", got.1);
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

pub fn message(v: &(StatusCode, Value)) -> &str {
    v.1["message"].as_str().unwrap_or_default()
}

/// A custom Debian baseline: the predefined default's rule, optionally
/// approving non-security updates too.
pub fn debian_doc(name: &str, non_security: bool) -> Value {
    json!({
        "Name": name,
        "OperatingSystem": "DEBIAN",
        "Description": "test baseline",
        "ApprovalRules": {"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [{
                "Key": "PRIORITY",
                "Values": ["Required", "Important", "Standard", "Optional", "Extra"]
            }]},
            "ComplianceLevel": "UNSPECIFIED",
            "EnableNonSecurity": non_security
        }]}
    })
}

/// An agent's key and CSR, as the agent makes them.
pub fn agent_csr() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test-node");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key.serialize_pem(), csr)
}

pub fn agent_info() -> Value {
    json!({
        "protocol": patchfleet_protocol::PROTOCOL_VERSION,
        "agent_version": "0.0.0-test",
        "capabilities": ["scan"],
        "hostname": "test-node",
        "platform": {
            "operating_system": "DEBIAN",
            "product": "Debian12",
            "name": "Debian GNU/Linux",
            "version": "12"
        }
    })
}

pub fn register_body(activation_id: &str, code: &str, csr: &str) -> Value {
    json!({
        "activation_id": activation_id,
        "activation_code": code,
        "csr_pem": csr,
        "agent": agent_info(),
    })
}

/// A client presenting `cert_pem` with `key_pem`, trusting the server's CA.
pub fn agent_client(env: &Env, cert_pem: &str, key_pem: &str) -> reqwest::Client {
    let identity =
        reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(env.ca_pem.as_bytes()).unwrap()])
        .identity(identity)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Each test is an `async fn(&Env)`; this makes one `#[tokio::test]` per
/// backend for each.
#[macro_export]
macro_rules! api_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = $crate::support::Env::start($crate::support::Backend::Sqlite).await;
                    super::$name(&env).await;
                    env.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = $crate::support::Env::start($crate::support::Backend::Postgres).await;
                    super::$name(&env).await;
                    env.finish().await;
                }
            )*
        }
    };
}
