//! The accept loop: TLS (tokio-rustls) in front of hyper's HTTP/1 + HTTP/2
//! server running the axum router. `axum::serve` speaks plain TCP only,
//! and handlers need the verified client certificate: each request carries
//! a [`Peer`] extension with the remote address and the identity from the
//! client certificate (agents present one; people and scripts do not and
//! authenticate with API keys).
//!
//! One task per connection, so a client that stalls in its handshake or
//! its headers holds only its own task, each bounded by a timeout; the loop
//! itself only accepts.

use crate::tls::{PeerIdentity, client_cert_identity};
use axum::Router;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A TLS handshake must complete within this; a client that opens a
/// connection and sends nothing is dropped after it.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers (HTTP/1) must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// At shutdown, in-flight requests get this long to finish. Agents' long
/// polls are told to end at once (HTTP/2 GOAWAY, HTTP/1 close after the
/// response), so only real work is waited for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Who sent a request: inserted into every request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    /// From the client certificate, verified against the CA during the
    /// handshake; `None` without one (and always over plain HTTP).
    pub identity: Option<PeerIdentity>,
}

/// Serves `router` on `listener` until `shutdown` completes, then waits
/// (at most [`SHUTDOWN_GRACE`]) for the requests in flight. `tls: None`
/// serves plain HTTP (only for an explicit `--insecure-http`).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_grace(listener, tls, router, shutdown, SHUTDOWN_GRACE).await
}

/// [`serve`] with a chosen shutdown grace period.
pub async fn serve_with_grace(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(60)));
    let builder = Arc::new(builder);
    // Handshakes in progress at shutdown are abandoned, not waited for:
    // they hold a watcher, and a silent client would delay the exit by the
    // handshake timeout.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: pause instead of spinning; the
                    // condition usually clears as connections close.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let router = router.clone();
        let acceptor = acceptor.clone();
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let peer = Peer {
                        addr,
                        identity: None,
                    };
                    serve_connection(stream, peer, router, &builder, watcher).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let outcome = tokio::select! {
                        outcome = handshake => outcome,
                        _ = stopping.wait_for(|s| *s) => return,
                    };
                    let tls_stream = match outcome {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {addr}: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(
                                "TLS handshake with {addr}: no completion within {}s",
                                HANDSHAKE_TIMEOUT.as_secs()
                            );
                            return;
                        }
                    };
                    let identity = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|leaf| client_cert_identity(leaf));
                    let peer = Peer { addr, identity };
                    serve_connection(tls_stream, peer, router, &builder, watcher).await;
                }
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown: requests still running after {}s, abandoned", grace.as_secs());
        }
    }
}

async fn serve_connection<I>(
    io: I,
    peer: Peer,
    router: Router,
    builder: &Builder<TokioExecutor>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = peer.addr;
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        router.clone().oneshot(req)
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!("connection with {addr}: {e}");
    }
}
