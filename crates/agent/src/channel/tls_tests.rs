//! The agent's TLS clients against the server's real TLS stack (its PKI and
//! accept loop, `patchfleet_server::{tls, serve}`) on loopback. The router
//! is a stand-in with just enough routes to see who got through; the real
//! `/agent/v1` is tested end to end with the real server elsewhere.

use super::state::{NodeRecord, Registration, StateDir};
use super::*;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use patchfleet_server::serve::{Peer, serve};
use patchfleet_server::tls::Pki;

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "patchfleet-agent-tls-{tag}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn router() -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route(
            "/whoami",
            get(|Extension(peer): Extension<Peer>| async move {
                peer.identity
                    .map(|i| i.node_id)
                    .unwrap_or_else(|| "anonymous".into())
            }),
        )
        .route(
            "/agent/v1/register",
            post(|| async {
                (
                    axum::http::StatusCode::FORBIDDEN,
                    Json(ErrorBody {
                        code: "InvalidActivation".into(),
                        message: "no such activation".into(),
                        field: Some("activation_id".into()),
                    }),
                )
            }),
        )
}

/// Starts the server's TLS stack on loopback; returns its port.
async fn start(pki: &Pki) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = pki.server_config().unwrap();
    tokio::spawn(serve(
        listener,
        Some(config),
        router(),
        std::future::pending(),
    ));
    port
}

fn pin_of(pki: &Pki) -> [u8; 32] {
    pin::parse_fingerprint(&pki.ca_fingerprint()).unwrap()
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, String> {
    match client.get(url).send().await {
        Ok(r) => Ok(r.text().await.unwrap()),
        Err(e) => Err(error_chain(&e)),
    }
}

#[tokio::test]
async fn right_fingerprint_connects() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempdir("right");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let port = start(&pki).await;
    let client = pinned_client(pin_of(&pki)).unwrap();
    let body = get_text(&client, &format!("https://localhost:{port}/ping"))
        .await
        .unwrap();
    assert_eq!(body, "pong");
    // The server's error answers arrive as one line.
    let err = call::<RegisterProbe>(
        client
            .post(format!("https://localhost:{port}/agent/v1/register"))
            .json(&serde_json::json!({})),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the server answered 403: InvalidActivation: no such activation (field activation_id)"
    );
    assert!(matches!(err, CallError::Refused { status: 403, .. }));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[derive(Debug, serde::Deserialize)]
struct RegisterProbe {}

#[tokio::test]
async fn wrong_fingerprint_is_refused_with_the_reason() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempdir("wrong");
    let other_dir = tempdir("wrong-other");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let other = Pki::load_or_create(&other_dir, &[]).unwrap();
    let port = start(&pki).await;
    let client = pinned_client(pin_of(&other)).unwrap();
    let err = get_text(&client, &format!("https://localhost:{port}/ping"))
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!(
            "the server's CA fingerprint did not match --ca-fingerprint {}",
            other.ca_fingerprint()
        )),
        "{err}"
    );
    // The message lists what the server did present, its CA among them.
    assert!(err.contains(&pki.ca_fingerprint()), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other_dir).unwrap();
}

#[tokio::test]
async fn the_pinned_ca_still_checks_the_server_name() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempdir("name");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    // The certificate names localhost, 127.0.0.1 and ::1; 127.0.0.2 is the
    // same machine under a name the certificate does not have.
    let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.2:0").await else {
        panic!("127.0.0.2 is not bindable here");
    };
    let port2 = listener.local_addr().unwrap().port();
    tokio::spawn(serve(
        listener,
        Some(pki.server_config().unwrap()),
        router(),
        std::future::pending(),
    ));
    let client = pinned_client(pin_of(&pki)).unwrap();
    let err = get_text(&client, &format!("https://127.0.0.2:{port2}/ping"))
        .await
        .unwrap_err();
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for name"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn registered_client_presents_its_certificate() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempdir("mtls");
    let pki = Pki::load_or_create(&dir.join("server"), &[]).unwrap();
    let port = start(&pki).await;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let cert_pem = pki
        .sign_agent_csr(&csr, "mi-0123456789abcdef0", jiff::Timestamp::now())
        .unwrap();
    let state = StateDir::new(dir.join("agent"));
    state.create().unwrap();
    let reg = Registration {
        node: NodeRecord {
            node_id: "mi-0123456789abcdef0".into(),
            server: format!("https://localhost:{port}"),
            heartbeat_seconds: 60,
        },
        key_pem: key.serialize_pem(),
        cert_pem,
        ca_pem: pki.ca_pem().to_string(),
    };
    let client = mtls_client(&reg, &state).unwrap();
    let body = get_text(&client, &format!("https://localhost:{port}/whoami"))
        .await
        .unwrap();
    assert_eq!(body, "mi-0123456789abcdef0");
    std::fs::remove_dir_all(&dir).unwrap();
}
