//! The agent's side of the `/agent/v1` channel (see `patchfleet_protocol`):
//! the HTTPS clients (pinned CA at registration, mutual TLS after), the
//! one-line rendering of failures, and what the agent says about itself.

pub mod backoff;
pub mod pin;
pub mod state;

use crate::CollectArgs;
use anyhow::{Context, Result, anyhow};
use patchfleet_pkg::OsRelease;
use patchfleet_protocol::{
    AgentInfo, CAPABILITY_CANCEL, CAPABILITY_RUN_PATCH_BASELINE, CAPABILITY_SCAN, ErrorBody,
    PROTOCOL_VERSION, Platform,
};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Per request; the long poll asks the server for at most
/// [`LONG_POLL_SECONDS`], so this leaves room for a slow answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
pub const LONG_POLL_SECONDS: u64 = 30;

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn user_agent() -> String {
    format!("patchfleet-agent/{}", env!("CARGO_PKG_VERSION"))
}

fn client_with(tls: rustls::ClientConfig) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(user_agent())
        // The agent talks to its server only; a proxy in the environment
        // of a root service is more likely a mistake than an intent.
        .no_proxy()
        .build()
        .map_err(|e| anyhow!("building the HTTPS client: {}", error_chain(&e)))
}

/// The registration client: trusts only the CA with fingerprint `pin`,
/// taken from the chain the server presents.
pub fn pinned_client(pin: [u8; 32]) -> Result<reqwest::Client> {
    let provider = provider();
    let verifier = Arc::new(pin::PinnedCaVerifier::new(pin, provider.clone()));
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    client_with(tls)
}

/// The client of a registered node: its certificate and key, and only the
/// stored CA as trust anchor.
pub fn mtls_client(reg: &state::Registration, state: &state::StateDir) -> Result<reqwest::Client> {
    let ca_path = state.path(state::CA_FILE);
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(reg.ca_pem.as_bytes())
        .map_err(|e| anyhow!("{}: {e}", ca_path.display()))?;
    roots
        .add(ca)
        .map_err(|e| anyhow!("{}: {e}", ca_path.display()))?;
    let cert_path = state.path(state::CERT_FILE);
    let chain = CertificateDer::pem_slice_iter(reg.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: {e}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{}: no certificate", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_slice(reg.key_pem.as_bytes())
        .map_err(|e| anyhow!("{}: {e}", state.path(state::KEY_FILE).display()))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            anyhow!(
                "{} and {}: {e}",
                cert_path.display(),
                state.path(state::KEY_FILE).display()
            )
        })?;
    client_with(tls)
}

/// An error and its causes on one line, repeated messages once (reqwest,
/// hyper and rustls each wrap the one below and often repeat it).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = rustls_text(err).unwrap_or_else(|| err.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// rustls shows a verifier's own error with `Debug`
/// (`Other(OtherError(PinMismatch { … }))`); the message is what a person
/// needs. The rustls error sits inside `io::Error`s (two, from hyper-rustls), whose
/// `source` skips it.
fn rustls_text(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur = err;
    let rustls_error = loop {
        if let Some(e) = cur.downcast_ref::<rustls::Error>() {
            break e;
        }
        cur = cur.downcast_ref::<std::io::Error>()?.get_ref()?;
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            Some(other.0.to_string())
        }
        e => Some(e.to_string()),
    }
}

/// A failed call to the server.
#[derive(Debug)]
pub enum CallError {
    /// 401 or 403: the server no longer accepts this node's certificate
    /// (deregistered), or refused the activation.
    Refused { status: u16, detail: String },
    /// Any other answer that is not a success.
    Server { status: u16, detail: String },
    /// No answer: connection, TLS, timeout, or an unreadable body.
    Network(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Refused { status, detail } | CallError::Server { status, detail } => {
                write!(f, "the server answered {status}: {detail}")
            }
            CallError::Network(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CallError {}

/// The server's [`ErrorBody`] on one line: `Code: message (field f)`; a
/// body that is not one is shown as text, shortened.
pub fn error_detail(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => match e.field {
            Some(field) => format!("{}: {} (field {field})", e.code, e.message),
            None => format!("{}: {}", e.code, e.message),
        },
        Err(_) => {
            let text: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
            if text.is_empty() {
                "no details".into()
            } else if text.chars().count() > 200 {
                format!("{}…", text.chars().take(200).collect::<String>())
            } else {
                text
            }
        }
    }
}

/// Sends `request`; a success is decoded as `T` (an empty body, 204, as
/// `None`).
pub async fn call<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<Option<T>, CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::Network(error_chain(&e)))?;
    let status = response.status();
    let url = response.url().path().to_string();
    let body = response.bytes().await.map_err(|e| {
        CallError::Network(format!("{url}: reading the answer: {}", error_chain(&e)))
    })?;
    if status.is_success() {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        return serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| CallError::Network(format!("{url}: unreadable answer: {e}")));
    }
    let detail = error_detail(&String::from_utf8_lossy(&body));
    let code = status.as_u16();
    Err(if code == 401 || code == 403 {
        CallError::Refused {
            status: code,
            detail,
        }
    } else {
        CallError::Server {
            status: code,
            detail,
        }
    })
}

/// The base URL without a trailing slash; only https (and http for a
/// server run with `--insecure-http`, never for registration).
pub fn base_url(server: &str) -> Result<reqwest::Url> {
    let trimmed = server.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed).map_err(|e| anyhow!("--server {server:?}: {e}"))?;
    if url.scheme() != "https" {
        return Err(anyhow!(
            "--server {server:?}: the agent speaks only https (the server's own CA is pinned)"
        ));
    }
    if url.host_str().is_none() {
        return Err(anyhow!("--server {server:?}: no host"));
    }
    Ok(url)
}

pub fn endpoint(base: &reqwest::Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// The node's platform from the root's os-release.
pub fn platform(args: &CollectArgs) -> Result<Platform> {
    let path = match &args.os_release {
        Some(p) => p.clone(),
        None => crate::collect::os_release_path(&args.root)?,
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let label = path.display().to_string();
    let release = OsRelease::parse(&label, &text).map_err(|e| anyhow!("{e}"))?;
    let (os, product) = release.detect().map_err(|e| anyhow!("{label}: {e}"))?;
    Ok(Platform {
        operating_system: os.as_str().to_string(),
        product,
        name: release.name.clone().unwrap_or_else(|| release.id.clone()),
        version: release.version_id.clone().unwrap_or_default(),
    })
}

/// The host name: the kernel's for this machine, the root's
/// `etc/hostname` for another root.
pub fn hostname(args: &CollectArgs) -> String {
    let path = if crate::collect::is_host_root(&args.root) {
        std::path::PathBuf::from("/proc/sys/kernel/hostname")
    } else {
        args.root.join("etc/hostname")
    };
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The address this node uses to reach the server (the source address the
/// kernel picks for it; a UDP "connect" sends nothing).
pub async fn local_ip_towards(server: &reqwest::Url) -> Option<String> {
    let host = server.host_str()?;
    let port = server.port_or_known_default()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let target = tokio::net::lookup_host((host, port)).await.ok()?.next()?;
    let bind = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = tokio::net::UdpSocket::bind(bind).await.ok()?;
    socket.connect(target).await.ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

pub fn agent_info(platform: Platform, hostname: String, ip: Option<String>) -> AgentInfo {
    AgentInfo {
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities: [
            CAPABILITY_SCAN,
            CAPABILITY_RUN_PATCH_BASELINE,
            CAPABILITY_CANCEL,
        ]
        .map(String::from)
        .to_vec(),
        hostname,
        ip_address: ip,
        platform,
    }
}

#[cfg(test)]
mod tls_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_one_line() {
        let body = r#"{"code":"InvalidActivation","message":"the activation expired","field":"activation_id"}"#;
        assert_eq!(
            error_detail(body),
            "InvalidActivation: the activation expired (field activation_id)"
        );
        assert_eq!(
            error_detail(r#"{"code":"NotFound","message":"no such node"}"#),
            "NotFound: no such node"
        );
        assert_eq!(
            error_detail("<html>\n bad\n gateway </html>"),
            "<html> bad gateway </html>"
        );
        assert_eq!(error_detail(""), "no details");
        assert!(error_detail(&"x".repeat(500)).ends_with('…'));
    }

    #[test]
    fn only_https_servers() {
        assert_eq!(
            endpoint(
                &base_url("https://pf.example:8443/").unwrap(),
                "/agent/v1/register"
            ),
            "https://pf.example:8443/agent/v1/register"
        );
        let e = base_url("http://pf.example").unwrap_err().to_string();
        assert!(e.contains("only https"), "{e}");
        assert!(base_url("pf.example").is_err());
    }
}
