//! Wakes agents' long polls when work is queued for them, on every replica.
//!
//! Each replica keeps one [`Notify`] per node that has a poll open here. On
//! SQLite there is one process: waking it is enough. On PostgreSQL the
//! replica that queues work also sends `NOTIFY patchfleet_work, '<node>'`
//! after its transaction commits, and every replica listens
//! ([`listen`]) and wakes its own poll for that node. A notification lost
//! while a replica's listening connection was down is covered by waking
//! every poll of that replica when it reconnects, and by each poll's slow
//! re-read of the store ([`FALLBACK_REREAD`]).

use crate::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The PostgreSQL channel work notifications travel on (node ids,
/// comma-separated).
pub const CHANNEL: &str = "patchfleet_work";
/// The channel of rollout notifications (a command id): an invocation of
/// that command changed on some replica.
pub const ROLLOUT_CHANNEL: &str = "patchfleet_rollout";
/// NOTIFY payloads stay under PostgreSQL's 8,000-byte limit.
const PAYLOAD_BYTES: usize = 7_000;

/// A poll re-reads the store this often even when nothing woke it: the
/// safety net under notifications (and what delivers re-sends, which no
/// notification announces).
pub const FALLBACK_REREAD: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Wake {
    nodes: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wake {
    pub fn handle(&self, node_id: &str) -> Arc<Notify> {
        let mut m = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(node_id.to_string()).or_default().clone()
    }

    /// Wakes the node's poll on this replica, if one is open.
    pub fn wake(&self, node_id: &str) {
        let m = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get(node_id) {
            n.notify_waiters();
        }
    }

    /// Wakes every poll of this replica (after notifications may have been
    /// missed) and forgets the nodes with no poll open.
    pub fn wake_all(&self) {
        let mut m = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, n| {
            n.notify_waiters();
            Arc::strong_count(n) > 1
        });
    }

    /// Forgets the node's entry when no poll holds it any more (called as
    /// a poll ends), so the map holds the nodes polling, not every node
    /// that ever did.
    pub fn release(&self, node_id: &str, handle: Arc<Notify>) {
        let mut m = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        drop(handle);
        if m.get(node_id).is_some_and(|n| Arc::strong_count(n) == 1) {
            m.remove(node_id);
        }
    }
}

/// Tells every replica that `node_id` has work: this one at once, the
/// others through the database.
pub async fn work_queued(store: &Store, wake: &Wake, node_id: &str) {
    work_queued_many(store, wake, &[node_id.to_string()]).await;
}

/// [`work_queued`] for many nodes: a rollout step can dispatch thousands;
/// they travel in as few notifications as fit.
pub async fn work_queued_many(store: &Store, wake: &Wake, node_ids: &[String]) {
    for n in node_ids {
        wake.wake(n);
    }
    let mut payload = String::new();
    for (i, n) in node_ids.iter().enumerate() {
        if !payload.is_empty() {
            payload.push(',');
        }
        payload.push_str(n);
        if payload.len() >= PAYLOAD_BYTES || i + 1 == node_ids.len() {
            if let Err(e) = store.notify(CHANNEL, &payload).await {
                // Not fatal: the other replicas' polls re-read the store.
                tracing::warn!("notifying the other replicas of work: {e}");
            }
            payload.clear();
        }
    }
}

/// Listens for work notifications of the other replicas (PostgreSQL) and
/// wakes this replica's polls; runs until the task is aborted.
pub async fn listen(database_url: String, svc: super::Services) {
    use sqlx::postgres::PgListener;
    let wake = &svc.wake;
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut listener = match PgListener::connect(&database_url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("work notifications: connecting: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if let Err(e) = listener.listen_all([CHANNEL, ROLLOUT_CHANNEL]).await {
            tracing::warn!("work notifications: LISTEN: {e}");
            tokio::time::sleep(backoff).await;
            continue;
        }
        backoff = Duration::from_millis(250);
        // Whatever was sent while this replica was not listening.
        wake.wake_all();
        svc.rollouts.mark_all();
        // Until the connection is lost (`Ok(None)` or an error): then
        // reconnect, and wake everyone.
        while let Ok(Some(n)) = listener.try_recv().await {
            match n.channel() {
                ROLLOUT_CHANNEL => svc.rollouts.mark(n.payload()),
                _ => n.payload().split(',').for_each(|id| wake.wake(id)),
            }
        }
    }
}
