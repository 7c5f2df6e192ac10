//! Starting a server: the data directory, the PKI and server key, the
//! store (migrated), the bootstrap admin key, the listener, and the
//! background work. One code path for `patchfleet server`, `patchfleet dev`
//! and the tests.

use crate::api;
use crate::auth::ServerKey;
use crate::config::Config;
use crate::services::{Inner, Services, fleet, keys};
use crate::store::Store;
use crate::tls::{Pki, ProvidedFiles};
use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub ca_fingerprint: String,
    pub ca_pem: String,
    /// The admin key created at this (first) start; `None` afterwards.
    pub bootstrap_key: Option<keys::NewKey>,
    pub services: Services,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// The URL agents and clients use.
    pub fn url(&self) -> String {
        let scheme = if self.services.config.insecure_http {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, waits for the requests in flight.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.services.store.close().await;
    }

    /// Serves until `signal` completes.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Prepares everything and starts serving on `config.listen`.
pub async fn start(config: Config) -> Result<Running> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    create_private_dir(&config.data_dir)?;
    let provided = match (&config.tls.cert, &config.tls.key, &config.tls.ca) {
        (Some(cert), Some(key), Some(ca)) => Some(ProvidedFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
            ca_key: config.tls.ca_key.clone(),
        }),
        (None, None, None) => None,
        _ => {
            return Err(anyhow!(
                "[tls]: give cert, key and ca together (or none: the server makes its own CA)"
            ));
        }
    };
    let pki = Pki::load_with(&config.data_dir, &config.server_names, provided.as_ref())
        .map_err(|e| anyhow!("{e}"))?;
    let key = ServerKey::load_or_create(&config.data_dir).map_err(|e| anyhow!("{e}"))?;
    let url = config.database_url();
    let store = Store::open(&url)
        .await
        .map_err(|e| anyhow!("opening the database {}: {e}", redact(&url)))?;
    let tls = if config.insecure_http {
        None
    } else {
        Some(pki.server_config().map_err(|e| anyhow!("{e}"))?)
    };
    let objects = crate::objects::Objects::open(&config.objects, &config.data_dir)
        .map_err(|e| anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let ca_fingerprint = pki.ca_fingerprint();
    let ca_pem = pki.ca_pem().to_string();
    let services = Services(Arc::new(Inner {
        store,
        key,
        pki,
        config,
        wake: Default::default(),
        inventories: Default::default(),
        objects,
        rollouts: Default::default(),
        specs: crate::services::Memo::new(4096),
        baseline_versions: crate::services::Memo::new(1024),
        seen_versions: Default::default(),
    }));
    let bootstrap_key = keys::bootstrap(&services)
        .await
        .map_err(|e| anyhow!("creating the bootstrap admin key: {}", e.message))?;
    let router = api::router(services.clone());
    let (stop, mut stopped) = watch::channel(false);
    let bg = services.clone();
    let mut bg_stop = stop.subscribe();
    let listener_task = (services.store.backend() == crate::store::Backend::Postgres)
        .then(|| tokio::spawn(crate::services::wake::listen(url.clone(), services.clone())));
    let task = tokio::spawn(async move {
        let rollouts = tokio::spawn(crate::services::commands::rollout_loop(bg.clone()));
        let daily = tokio::spawn(async move {
            tokio::select! {
                () = new_day_loop(bg) => {}
                _ = bg_stop.changed() => {}
            }
        });
        crate::serve::serve(listener, tls, router, async move {
            let _ = stopped.changed().await;
        })
        .await;
        daily.abort();
        rollouts.abort();
        if let Some(l) = listener_task {
            l.abort();
        }
    });
    Ok(Running {
        addr,
        ca_fingerprint,
        ca_pem,
        bootstrap_key,
        services,
        stop,
        task,
    })
}

/// Approval delays count in days: when the UTC day changes, every node is
/// re-evaluated (on PostgreSQL, by the one replica holding the lease).
async fn new_day_loop(svc: Services) {
    let holder = svc.config.replica_id();
    let mut last_day = crate::compliance::day_of(Timestamp::now());
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let now = Timestamp::now();
        let day = crate::compliance::day_of(now);
        if day == last_day {
            continue;
        }
        let lease = format!("new-day-{day}");
        match svc
            .store
            .try_acquire_lease(&lease, &holder, Duration::from_secs(3600), now)
            .await
        {
            Ok(true) => {
                if let Err(e) = fleet::recompute(&svc, None, now).await {
                    tracing::error!("re-evaluating the fleet for day {day}: {}", e.message);
                    continue;
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!("lease {lease}: {e}");
                continue;
            }
        }
        last_day = day;
    }
}

fn create_private_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://pf:s3cret@db:5432/pf"),
            "postgres://pf:***@db:5432/pf"
        );
        assert_eq!(super::redact("sqlite:///x.db"), "sqlite:///x.db");
    }
}
