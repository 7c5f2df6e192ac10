//! `patchfleet-agent register`: the node makes its key (it never leaves
//! the node), sends a CSR with the activation to the server it reaches
//! through the pinned CA, and keeps the certificate, the CA and its node id.

use crate::CollectArgs;
use crate::channel::state::{self, NodeRecord, Registration, StateDir};
use crate::channel::{self, CallError, pin};
use anyhow::{Result, anyhow, bail};
use clap::Args;
use patchfleet_protocol::{RegisterRequest, RegisterResponse};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::process::ExitCode;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/patchfleet/agent";

#[derive(Args)]
pub struct RegisterArgs {
    /// The server's URL (https://host:port).
    #[arg(long)]
    pub server: String,
    #[arg(long)]
    pub activation_id: String,
    /// The activation's secret code (or PATCHFLEET_ACTIVATION_CODE, which
    /// keeps it out of the process list).
    #[arg(long, env = "PATCHFLEET_ACTIVATION_CODE", hide_env_values = true)]
    pub activation_code: String,
    /// The SHA-256 fingerprint of the server's CA (`sha256:…`, as the
    /// server prints it): the only certificate this registration trusts.
    #[arg(long)]
    pub ca_fingerprint: String,
    /// Where the node's key, certificate and id are kept.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// Register again even if the state directory says this node is
    /// registered (a new key, certificate and node id).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub collect: CollectArgs,
}

pub fn run(args: &RegisterArgs) -> Result<ExitCode> {
    let pin = pin::parse_fingerprint(&args.ca_fingerprint).map_err(|e| anyhow!(e))?;
    let base = channel::base_url(&args.server)?;
    let state = StateDir::new(&args.state_dir);
    if let Some(node) = state.node()?
        && !args.force
    {
        bail!(
            "already registered as {} with {} ({}); add --force to register again",
            node.node_id,
            node.server,
            state.path(state::NODE_FILE).display()
        );
    }
    let platform = channel::platform(&args.collect)?;
    let hostname = channel::hostname(&args.collect);
    state.create()?;

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| anyhow!("generating the node's key: {e}"))?;
    // The server ignores the subject (it names the node itself); the host
    // name only helps someone reading the request in transit logs.
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname.clone());
    let csr_pem = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| anyhow!("making the certificate signing request: {e}"))?;
    let key_pem = key.serialize_pem();
    state.write(state::KEY_FILE, key_pem.as_bytes(), 0o600)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("starting the runtime: {e}"))?;
    let response = runtime.block_on(async {
        let ip = channel::local_ip_towards(&base).await;
        let request = RegisterRequest {
            activation_id: args.activation_id.clone(),
            activation_code: args.activation_code.clone(),
            csr_pem,
            agent: channel::agent_info(platform, hostname, ip),
        };
        let client = channel::pinned_client(pin)?;
        let url = channel::endpoint(&base, "/agent/v1/register");
        match channel::call::<RegisterResponse>(client.post(&url).json(&request)).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(anyhow!("{url}: the server answered with an empty body")),
            Err(CallError::Network(m)) => Err(anyhow!("{url}: {m}")),
            Err(e) => Err(anyhow!("registration refused: {e}")),
        }
    })?;
    check_response(&response, &pin)?;
    state.save_registration(&Registration {
        node: NodeRecord {
            node_id: response.node_id.clone(),
            server: base.as_str().trim_end_matches('/').to_string(),
            heartbeat_seconds: response.heartbeat_seconds,
        },
        key_pem,
        cert_pem: response.certificate_pem,
        ca_pem: response.ca_pem,
    })?;
    crate::emit(&format!("{}\n", response.node_id))?;
    Ok(ExitCode::SUCCESS)
}

/// The CA the server hands over becomes the node's only trust anchor: it
/// must be the one the operator pinned, not merely one the server chose.
fn check_response(r: &RegisterResponse, pin: &[u8; 32]) -> Result<()> {
    let ca = CertificateDer::from_pem_slice(r.ca_pem.as_bytes())
        .map_err(|e| anyhow!("the server's answer: ca_pem: {e}"))?;
    if pin::find_pinned(pin, [&ca]).is_none() {
        bail!(
            "the server's answer: ca_pem has fingerprint {}, not the --ca-fingerprint given",
            pin::fingerprint(&ca)
        );
    }
    CertificateDer::from_pem_slice(r.certificate_pem.as_bytes())
        .map_err(|e| anyhow!("the server's answer: certificate_pem: {e}"))?;
    if r.node_id.is_empty()
        || !r
            .node_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        bail!(
            "the server's answer: node_id {:?} is not a node id",
            r.node_id
        );
    }
    Ok(())
}
