//! The agent's state directory (default `/var/lib/patchfleet/agent`):
//!
//! | file | holds |
//! |---|---|
//! | `agent-key.pem` | the node's private key (0600; made here, never sent) |
//! | `agent.pem` | the node's client certificate, signed by the server's CA |
//! | `ca.pem` | the server's CA: the one trust anchor after registration |
//! | `node.json` | node id, server URL, heartbeat interval; written last, so its presence means "registered" |
//! | `work-done.json` | ids of completed work items (the newest [`DONE_KEEP`]) |
//! | `facts.json.gz` | the last scan's facts, uploaded when the server asks for them (0600) |
//!
//! Every file is replaced atomically (temporary file, fsync, rename, fsync
//! of the directory): a crash or power loss leaves the old content or the
//! new, never a truncated key or a half list.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "agent-key.pem";
pub const CERT_FILE: &str = "agent.pem";
pub const CA_FILE: &str = "ca.pem";
pub const NODE_FILE: &str = "node.json";
pub const DONE_FILE: &str = "work-done.json";
/// Completed work ids remembered: the server re-delivers an item only
/// until it sees its result, so a few hundred cover any realistic backlog.
pub const DONE_KEEP: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    pub node_id: String,
    /// The server's base URL, as given at registration.
    pub server: String,
    pub heartbeat_seconds: u32,
}

/// What `run` needs, read from the state directory.
#[derive(Clone, Debug)]
pub struct Registration {
    pub node: NodeRecord,
    pub key_pem: String,
    pub cert_pem: String,
    pub ca_pem: String,
}

pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (0700: it holds the node's key).
    pub fn create(&self) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let meta = std::fs::metadata(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", self.dir.display()))?;
        }
        Ok(())
    }

    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        write_atomic(&self.path(name), bytes, mode)
    }

    fn read(&self, name: &str) -> Result<String> {
        let path = self.path(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The node record, `None` when the node is not registered.
    pub fn node(&self) -> Result<Option<NodeRecord>> {
        let path = self.path(NODE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// Stores a registration; `node.json` last, so an interrupted
    /// registration leaves the node unregistered rather than half.
    pub fn save_registration(&self, reg: &Registration) -> Result<()> {
        self.write(CERT_FILE, reg.cert_pem.as_bytes(), 0o644)?;
        self.write(CA_FILE, reg.ca_pem.as_bytes(), 0o644)?;
        let json = serde_json::to_string_pretty(&reg.node)? + "\n";
        self.write(NODE_FILE, json.as_bytes(), 0o644)
    }

    pub fn registration(&self) -> Result<Registration> {
        let Some(node) = self.node()? else {
            bail!(
                "not registered: {} is missing (run `patchfleet-agent register` first)",
                self.path(NODE_FILE).display()
            );
        };
        Ok(Registration {
            node,
            key_pem: self.read(KEY_FILE)?,
            cert_pem: self.read(CERT_FILE)?,
            ca_pem: self.read(CA_FILE)?,
        })
    }

    /// Completed work ids, oldest first. A damaged file is reported and
    /// treated as empty: rerunning a scan is harmless, refusing to start is not.
    pub fn done(&self) -> DoneList {
        let path = self.path(DONE_FILE);
        let ids = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<VecDeque<String>>(&text).unwrap_or_else(|e| {
                crate::collect::warn(&format!(
                    "{}: {e}; starting with an empty list",
                    path.display()
                ));
                VecDeque::new()
            }),
            Err(_) => VecDeque::new(),
        };
        DoneList { ids }
    }

    pub fn save_done(&self, done: &DoneList) -> Result<()> {
        let json = serde_json::to_string(&done.ids)?;
        self.write(DONE_FILE, json.as_bytes(), 0o644)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DoneList {
    ids: VecDeque<String>,
}

impl DoneList {
    pub fn contains(&self, id: &str) -> bool {
        self.ids.iter().any(|d| d == id)
    }

    pub fn insert(&mut self, id: &str) {
        if !self.contains(id) {
            self.ids.push_back(id.to_string());
            while self.ids.len() > DONE_KEEP {
                self.ids.pop_front();
            }
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Replaces `path` with `bytes` atomically (see the module documentation);
/// the temporary file is created with `mode`, so a key is never readable by
/// others, not even for a moment.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file name", path.display()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{:08x}", rand::random::<u32>()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("writing {}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "patchfleet-agent-state-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let d = tempdir("atomic");
        let p = d.join("agent-key.pem");
        write_atomic(&p, b"old", 0o600).unwrap();
        write_atomic(&p, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(names(&d), ["agent-key.pem"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_content_and_cleans_up() {
        let d = tempdir("failed");
        let p = d.join("node.json");
        write_atomic(&p, b"old", 0o644).unwrap();
        // A directory where the file should go: the rename fails.
        let blocked = d.join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"").unwrap();
        let e = write_atomic(&blocked, b"new", 0o644)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("writing {}", blocked.display())),
            "{e}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(names(&d), ["blocked", "node.json"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn registration_round_trips_and_node_json_marks_it() {
        let d = tempdir("reg");
        let state = StateDir::new(d.join("agent"));
        state.create().unwrap();
        assert_eq!(
            std::fs::metadata(state.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(state.node().unwrap().is_none());
        let e = state.registration().unwrap_err().to_string();
        assert!(
            e.starts_with("not registered: ") && e.contains("node.json"),
            "{e}"
        );
        state.write(KEY_FILE, b"KEY", 0o600).unwrap();
        let reg = Registration {
            node: NodeRecord {
                node_id: "mi-0123456789abcdef0".into(),
                server: "https://pf.example:8443".into(),
                heartbeat_seconds: 60,
            },
            key_pem: "KEY".into(),
            cert_pem: "CERT".into(),
            ca_pem: "CA".into(),
        };
        state.save_registration(&reg).unwrap();
        let back = state.registration().unwrap();
        assert_eq!(back.node, reg.node);
        assert_eq!(
            (
                back.key_pem.as_str(),
                back.cert_pem.as_str(),
                back.ca_pem.as_str()
            ),
            ("KEY", "CERT", "CA")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn done_list_persists_dedups_and_is_bounded() {
        let d = tempdir("done");
        let state = StateDir::new(&d);
        let mut done = state.done();
        assert_eq!(done.len(), 0);
        done.insert("w-1");
        done.insert("w-1");
        done.insert("w-2");
        state.save_done(&done).unwrap();
        let back = state.done();
        assert!(back.contains("w-1") && back.contains("w-2") && back.len() == 2);
        let mut big = DoneList::default();
        for i in 0..DONE_KEEP + 5 {
            big.insert(&format!("w-{i}"));
        }
        assert_eq!(big.len(), DONE_KEEP);
        assert!(!big.contains("w-0") && big.contains(&format!("w-{}", DONE_KEEP + 4)));
        // A damaged list is an empty one, not a refusal to run.
        std::fs::write(state.path(DONE_FILE), b"{garbage").unwrap();
        assert_eq!(state.done().len(), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
