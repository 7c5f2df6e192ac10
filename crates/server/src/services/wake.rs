//! Wakes an agent's long poll on this replica when work is queued for it.
//! An optimisation only: a poll also re-reads the store every second, so
//! work queued on another replica is delivered without this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Wake {
    nodes: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Wake {
    pub fn handle(&self, node_id: &str) -> Arc<Notify> {
        let mut m = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(node_id.to_string()).or_default().clone()
    }

    pub fn wake(&self, node_id: &str) {
        self.handle(node_id).notify_waiters();
    }
}
