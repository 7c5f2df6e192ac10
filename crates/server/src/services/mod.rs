//! The rules of the control plane, shared by every API (native, agent,
//! SSM-compatible): handlers parse and render; services decide, and write
//! through the store with an audit entry naming the caller.

pub mod activations;
pub mod baselines;
pub mod commands;
pub mod fleet;
pub mod keys;
pub mod nodes;
pub mod preview;
pub mod wake;
pub mod work;

use crate::api::error::ApiError;
use crate::auth::{Action, Role, ServerKey};
use crate::config::Config;
use crate::store::{Audit, Store};
use crate::tls::Pki;
use std::sync::Arc;

/// Everything a request may need; cheap to clone.
#[derive(Clone)]
pub struct Services(pub Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub key: ServerKey,
    pub pki: Pki,
    pub config: Config,
    pub wake: wake::Wake,
    /// Parsed inventories by content hash (an inventory never changes):
    /// only a cache of this replica, nothing another one needs.
    pub inventories: fleet::InventoryCache,
    /// Full command output and `s3://` documents.
    pub objects: crate::objects::Objects,
    /// The commands whose rollout should look again (this replica's view).
    pub rollouts: commands::Rollouts,
    /// What SendCommand fixed, by command id (never changes).
    pub specs: Memo<String, crate::store::CommandSpec>,
    /// Saved baseline versions, by (id, version) (never change).
    pub baseline_versions: Memo<(String, i64), patchfleet_core::baseline::Baseline>,
    /// Package versions whose first sighting is recorded (never changes).
    pub seen_versions: SeenVersions,
}

/// The package versions this replica knows to have their first sighting
/// recorded, by a 64-bit SipHash of (name, arch, version) (at 2 million
/// versions, a new one collides with a known one about once in 10^13): an
/// upload writes
/// only the versions not among them — after a patch wave, a handful of
/// the thousands an inventory lists. Only ever a subset of the store's
/// (added after the write commits), so forgetting it loses nothing.
#[derive(Default)]
pub struct SeenVersions {
    set: std::sync::Mutex<std::collections::HashSet<u64>>,
}

impl SeenVersions {
    const CAPACITY: usize = 2_000_000;

    fn key(name: &str, arch: &str, version: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (name, arch, version).hash(&mut h);
        h.finish()
    }

    /// The versions `available` offers that are not known to be recorded.
    pub fn unknown(
        &self,
        available: &[patchfleet_core::facts::AvailablePackage],
    ) -> Vec<crate::store::PackageVersion> {
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        available
            .iter()
            .filter(|a| !set.contains(&Self::key(&a.name, &a.arch, &a.version)))
            .map(crate::store::PackageVersion::from)
            .collect()
    }

    pub fn record(&self, versions: &[crate::store::PackageVersion]) {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() + versions.len() > Self::CAPACITY {
            set.clear();
        }
        set.extend(
            versions
                .iter()
                .map(|v| Self::key(&v.name, &v.arch, &v.version)),
        );
    }
}

/// A bounded map of values that never change once written (so any replica
/// may keep its own copy): forgotten all at once when full.
pub struct Memo<K, V> {
    entries: std::sync::Mutex<std::collections::HashMap<K, Arc<V>>>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq, V> Memo<K, V> {
    pub fn new(capacity: usize) -> Memo<K, V> {
        Memo {
            entries: Default::default(),
            capacity,
        }
    }

    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub fn insert(&self, key: K, value: Arc<V>) {
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.capacity {
            m.clear();
        }
        m.insert(key, value);
    }
}

impl std::ops::Deref for Services {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Who is asking: an API key (people, scripts) with its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The access key id (the audit log's actor).
    pub actor: String,
    pub role: Role,
}

impl Caller {
    /// The server itself (bootstrap, background work).
    pub fn system() -> Caller {
        Caller {
            actor: "system".into(),
            role: Role::Admin,
        }
    }

    /// Fails with 403 naming the role and the action unless allowed.
    pub fn require(&self, action: Action) -> Result<(), ApiError> {
        if self.role.allows(action) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not {}",
                self.role.as_str(),
                action.describe()
            )))
        }
    }

    pub fn audit(&self, action: &str) -> Audit {
        Audit::new(self.actor.clone(), action)
    }
}
