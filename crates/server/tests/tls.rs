//! The server's PKI and accept loop over real loopback TLS, with reqwest
//! (rustls) as the client: what agents, people and strangers each get.

use axum::routing::get;
use axum::{Extension, Router};
use patchfleet_server::serve::{Peer, serve};
use patchfleet_server::tls::{Pki, ProvidedFiles, TlsError, client_cert_identity, fingerprint};
use rcgen::{CertificateParams, KeyPair};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patchfleet-tls-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The handler shows what the accept loop says about the peer.
fn router() -> Router {
    Router::new().route(
        "/whoami",
        get(|Extension(peer): Extension<Peer>| async move {
            match peer.identity {
                Some(id) => format!("node {} {}", id.node_id, id.fingerprint),
                None => "anonymous".to_string(),
            }
        }),
    )
}

struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, tls.clone(), router(), async {
            let _ = rx.await;
        }));
        let scheme = if tls.is_some() { "https" } else { "http" };
        Server {
            url: format!("{scheme}://localhost:{port}"),
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

/// An agent's key and CSR, as the agent makes them.
fn agent_csr() -> (KeyPair, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "whatever-the-agent-says");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, csr)
}

fn client(ca_pem: &str, identity: Option<(&str, &KeyPair)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()]);
    if let Some((cert_pem, key)) = identity {
        let pem = format!("{cert_pem}{}", key.serialize_pem());
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn whoami(client: &reqwest::Client, server: &Server) -> Result<String, reqwest::Error> {
    client
        .get(format!("{}/whoami", server.url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[tokio::test]
async fn agent_with_client_certificate_is_identified() {
    init();
    let dir = tempdir("agent");
    let pki = Pki::load_or_create(&dir, &["patchfleet.example".into()]).unwrap();
    let (key, csr) = agent_csr();
    let cert_pem = pki
        .sign_agent_csr(&csr, "mi-0123456789abcdef0", jiff::Timestamp::now())
        .unwrap();
    let server = Server::start(Some(pki.server_config().unwrap())).await;
    let body = whoami(&client(pki.ca_pem(), Some((&cert_pem, &key))), &server)
        .await
        .unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    assert_eq!(
        body,
        format!("node mi-0123456789abcdef0 {}", fingerprint(&der))
    );
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn signed_certificate_is_client_auth_for_the_node_only() {
    init();
    let dir = tempdir("signed");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let (_key, csr) = agent_csr();
    let now = jiff::Timestamp::now();
    let pem = pki
        .sign_agent_csr(&csr, "mi-00000000000000001", now)
        .unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let id = client_cert_identity(&der).unwrap();
    assert_eq!(id.node_id, "mi-00000000000000001");
    assert!(id.fingerprint.starts_with("sha256:") && id.fingerprint.len() == 7 + 64);
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!cert.is_ca());
    let days = (cert.validity().not_after.timestamp() - now.as_second()) / 86_400;
    assert_eq!(days, 365);
    // Two certificates never share a serial.
    let again = pki
        .sign_agent_csr(&csr, "mi-00000000000000001", now)
        .unwrap();
    let der2 = rustls::pki_types::CertificateDer::from_pem_slice(again.as_bytes()).unwrap();
    let (_, cert2) = X509Certificate::from_der(&der2).unwrap();
    assert_ne!(cert.serial, cert2.serial);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_client_certificate_the_request_succeeds_anonymously() {
    init();
    let dir = tempdir("anon");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let server = Server::start(Some(pki.server_config().unwrap())).await;
    let body = whoami(&client(pki.ca_pem(), None), &server).await.unwrap();
    assert_eq!(body, "anonymous");
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    init();
    let dir = tempdir("ours");
    let other_dir = tempdir("theirs");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let other = Pki::load_or_create(&other_dir, &[]).unwrap();
    let (key, csr) = agent_csr();
    let foreign = other
        .sign_agent_csr(&csr, "mi-0000000000000dead", jiff::Timestamp::now())
        .unwrap();
    let server = Server::start(Some(pki.server_config().unwrap())).await;
    let err = whoami(&client(pki.ca_pem(), Some((&foreign, &key))), &server)
        .await
        .expect_err("a certificate from another CA must not get through");
    assert!(
        err.status().is_none(),
        "refused in the handshake, not by HTTP: {err:?}"
    );
    // The loop survives the failed handshake.
    let body = whoami(&client(pki.ca_pem(), None), &server).await.unwrap();
    assert_eq!(body, "anonymous");
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other_dir).unwrap();
}

#[tokio::test]
async fn client_not_trusting_our_ca_fails() {
    init();
    let dir = tempdir("untrusted");
    let other_dir = tempdir("untrusted-other");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let other = Pki::load_or_create(&other_dir, &[]).unwrap();
    let server = Server::start(Some(pki.server_config().unwrap())).await;
    let err = whoami(&client(other.ca_pem(), None), &server)
        .await
        .unwrap_err();
    let text = chain_text(&err);
    assert!(
        text.contains("UnknownIssuer") || text.contains("unknown issuer"),
        "{text}"
    );
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other_dir).unwrap();
}

#[tokio::test]
async fn a_silent_client_does_not_block_others() {
    init();
    let dir = tempdir("silent");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let server = Server::start(Some(pki.server_config().unwrap())).await;
    let addr = server
        .url
        .trim_start_matches("https://localhost:")
        .to_string();
    // Connected, never says a word.
    let _silent = tokio::net::TcpStream::connect(format!("127.0.0.1:{addr}"))
        .await
        .unwrap();
    // Garbage instead of a ClientHello.
    {
        use tokio::io::AsyncWriteExt;
        let mut junk = tokio::net::TcpStream::connect(format!("127.0.0.1:{addr}"))
            .await
            .unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    }
    let body = whoami(&client(pki.ca_pem(), None), &server).await.unwrap();
    assert_eq!(body, "anonymous");
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn plain_http_mode_serves_without_identity() {
    let server = Server::start(None).await;
    let body = reqwest::get(format!("{}/whoami", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "anonymous");
    server.stop().await;
}

#[test]
fn reload_keeps_the_ca_and_the_server_certificate() {
    init();
    let dir = tempdir("reload");
    let first = Pki::load_or_create(&dir, &["a.example".into()]).unwrap();
    let server_pem = std::fs::read_to_string(dir.join("server.pem")).unwrap();
    let second = Pki::load_or_create(&dir, &["a.example".into()]).unwrap();
    assert_eq!(first.ca_fingerprint(), second.ca_fingerprint());
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(
        server_pem,
        std::fs::read_to_string(dir.join("server.pem")).unwrap()
    );
    assert!(first.ca_fingerprint().starts_with("sha256:"));
    assert_eq!(
        first.ca_fingerprint(),
        fingerprint(first.ca_der()),
        "the fingerprint is that of the CA's DER"
    );
    // A new server name: the server certificate is renewed, the CA kept.
    let third = Pki::load_or_create(&dir, &["b.example".into()]).unwrap();
    assert_eq!(first.ca_fingerprint(), third.ca_fingerprint());
    assert_ne!(
        server_pem,
        std::fs::read_to_string(dir.join("server.pem")).unwrap()
    );
    let ca_text = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    let ca_der = rustls::pki_types::CertificateDer::from_pem_slice(ca_text.as_bytes()).unwrap();
    use x509_parser::prelude::*;
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    let cn = ca
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert!(cn.starts_with("Patchfleet CA "), "{cn}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_files_are_private_and_no_temporary_is_left() {
    init();
    let dir = tempdir("modes");
    Pki::load_or_create(&dir, &[]).unwrap();
    for name in ["ca-key.pem", "server-key.pem"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_lost_ca_key_is_an_error_naming_the_file() {
    init();
    let dir = tempdir("lost");
    Pki::load_or_create(&dir, &[]).unwrap();
    std::fs::remove_file(dir.join("ca-key.pem")).unwrap();
    let err = Pki::load_or_create(&dir, &[]).unwrap_err().to_string();
    assert!(
        err.contains("ca-key.pem") && err.contains("missing"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_ca_file_is_an_error_naming_the_file() {
    init();
    let dir = tempdir("corrupt");
    Pki::load_or_create(&dir, &[]).unwrap();
    std::fs::write(dir.join("ca.pem"), "hello").unwrap();
    let err = Pki::load_or_create(&dir, &[]).unwrap_err().to_string();
    assert!(
        err.contains("ca.pem") && err.contains("no certificate"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_csr_is_a_clear_error() {
    init();
    let dir = tempdir("garbage");
    let pki = Pki::load_or_create(&dir, &[]).unwrap();
    let now = jiff::Timestamp::now();
    let err = pki.sign_agent_csr("not a csr", "mi-1", now).unwrap_err();
    assert!(matches!(err, TlsError::Csr(_)));
    assert!(
        err.to_string().contains("not a PEM certificate request"),
        "{err}"
    );
    let broken = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    let err = pki
        .sign_agent_csr(broken, "mi-1", now)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("certificate signing request: not a valid PKCS#10"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn operator_files_replace_the_self_made_server_certificate() {
    init();
    // The "operator's" PKI: another data dir's CA and server certificate.
    let op_dir = tempdir("operator");
    Pki::load_or_create(&op_dir, &[]).unwrap();
    let dir = tempdir("provided");
    let files = ProvidedFiles {
        cert: op_dir.join("server.pem"),
        key: op_dir.join("server-key.pem"),
        ca: op_dir.join("ca.pem"),
        ca_key: None,
    };
    let pki = Pki::load_with(&dir, &[], Some(&files)).unwrap();
    let op_ca = std::fs::read_to_string(op_dir.join("ca.pem")).unwrap();
    assert_eq!(pki.ca_pem(), op_ca);
    // Agents are still signed (by the self-made CA) and recognised.
    let (key, csr) = agent_csr();
    let cert = pki
        .sign_agent_csr(&csr, "mi-0000000000000beef", jiff::Timestamp::now())
        .unwrap();
    let server = Server::start(Some(pki.server_config().unwrap())).await;
    let body = whoami(&client(&op_ca, Some((&cert, &key))), &server)
        .await
        .unwrap();
    assert!(body.starts_with("node mi-0000000000000beef "), "{body}");
    server.stop().await;
    // A missing provided file is named.
    let bad = ProvidedFiles {
        key: Path::new("/nonexistent/key.pem").into(),
        ..files
    };
    let err = Pki::load_with(&dir, &[], Some(&bad))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/nonexistent/key.pem: "), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&op_dir).unwrap();
}
