//! `patchfleet-agent register` as an operator runs it, against the server's
//! real TLS stack (PKI and accept loop) on loopback with a stand-in router
//! that refuses every activation: what reaches the operator when the
//! fingerprint is wrong, when the server refuses, and what is left on disk.
//! (Registration that succeeds is tested with the real server.)

use axum::routing::post;
use axum::{Json, Router};
use patchfleet_protocol::ErrorBody;
use patchfleet_server::serve::serve;
use patchfleet_server::tls::Pki;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "patchfleet-agent-register-{tag}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A server that refuses every activation, on its own thread and runtime.
fn start(pki_dir: &Path) -> (Pki, u16) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pki = Pki::load_or_create(pki_dir, &[]).unwrap();
    let config = pki.server_config().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let router = Router::new().route(
                "/agent/v1/register",
                post(|| async {
                    (
                        axum::http::StatusCode::FORBIDDEN,
                        Json(ErrorBody {
                            code: "InvalidActivation".into(),
                            message: "the activation expired".into(),
                            field: Some("activation_id".into()),
                        }),
                    )
                }),
            );
            serve(listener, Some(config), router, std::future::pending()).await;
        });
    });
    (pki, port)
}

fn register(port: u16, fingerprint: &str, state: &Path) -> (i32, String) {
    let out = Command::new(AGENT)
        .args([
            "register",
            "--server",
            &format!("https://localhost:{port}"),
            "--activation-id",
            "act-1",
            "--ca-fingerprint",
            fingerprint,
            "--state-dir",
        ])
        .arg(state)
        .env("PATCHFLEET_ACTIVATION_CODE", "secret")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_wrong_fingerprint_is_refused_and_said_so() {
    let dir = tempdir("wrong");
    let (pki, port) = start(&dir.join("server"));
    let other = Pki::load_or_create(&dir.join("other"), &[]).unwrap();
    let state = dir.join("agent");
    let (code, stderr) = register(port, &other.ca_fingerprint(), &state);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the server's CA fingerprint did not match --ca-fingerprint {}: the server presented ",
            other.ca_fingerprint()
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&pki.ca_fingerprint()), "{stderr}");
    assert!(!state.join("node.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_servers_refusal_is_one_line_and_the_key_stays_private() {
    let dir = tempdir("refused");
    let (pki, port) = start(&dir.join("server"));
    let state = dir.join("agent");
    let (code, stderr) = register(port, &pki.ca_fingerprint(), &state);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        stderr,
        "patchfleet-agent: registration refused: the server answered 403: InvalidActivation: the activation expired (field activation_id)\n"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("agent-key.pem")), 0o600);
    assert!(!state.join("node.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_fingerprint_is_refused_before_any_connection() {
    let dir = tempdir("malformed");
    let state = dir.join("agent");
    let (code, stderr) = register(9, "sha256:abcd", &state);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("4 hex digits; a SHA-256 fingerprint has 64"),
        "{stderr}"
    );
    assert!(!state.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
