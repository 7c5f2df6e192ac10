//! Facts collection: the root's os-release names the operating system,
//! whose package-manager backend (`patchfleet_pkg::backend`) scans the root.
//! The agent adds what the package manager does not know: the running
//! kernel, the reboot evidence the facts give (`core::reboot_evidence`),
//! and what the node remembers of earlier installs. Warnings (an unreadable
//! index, a failing repository, packages dpkg left half-done) go to
//! standard error; the facts are the result.

use crate::CollectArgs;
use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::reboot_evidence;
use patchfleet_pkg::OsRelease;
use patchfleet_pkg::apt::boot_time_from_proc_stat;
use patchfleet_pkg::backend::{self, Backend, ScanRequest};
use std::path::{Path, PathBuf};

/// A node's root, its operating system and its package manager.
pub struct Node {
    pub backend: Box<dyn Backend>,
    pub os: OperatingSystem,
    pub product: String,
    pub is_host: bool,
}

/// Detects the operating system of the root named by `args` and picks its
/// backend.
pub fn open(args: &CollectArgs) -> Result<Node> {
    let root = args.root.as_path();
    if !root.is_dir() {
        bail!("{}: not a directory", root.display());
    }
    let os_release = match &args.os_release {
        Some(path) => path.clone(),
        None => os_release_path(root)?,
    };
    let text = std::fs::read_to_string(&os_release)
        .with_context(|| format!("reading {}", os_release.display()))?;
    let label = os_release.display().to_string();
    let (os, product) = OsRelease::parse(&label, &text)
        .map_err(|e| anyhow!("{e}"))?
        .detect()
        .map_err(|e| anyhow!("{label}: {e}"))?;
    let backend = backend::for_root(root, os).map_err(|e| anyhow!("{label}: {product}: {e}"))?;
    Ok(Node {
        backend,
        os,
        product,
        is_host: is_host_root(root),
    })
}

/// Scans the root named by `args` (see the module documentation).
pub fn collect(args: &CollectArgs) -> Result<NodeFacts> {
    collect_on(&open(args)?, args)
}

pub fn collect_on(node: &Node, args: &CollectArgs) -> Result<NodeFacts> {
    let boot_time = match args.boot_time {
        Some(t) => Some(t),
        None if node.is_host => host_boot_time(),
        None => None,
    };
    let request = ScanRequest {
        refresh: args.refresh,
        boot_time,
        ..ScanRequest::default()
    };
    let scanned = node
        .backend
        .scan(&request)
        .map_err(|e| anyhow!("{}: {e}", args.root.display()))?;
    for w in &scanned.warnings {
        warn(w);
    }
    let mut facts = scanned.facts;
    // An injected os-release (an image, a test bed) names the system.
    facts.os.operating_system = node.os;
    facts.os.product = node.product.clone();
    facts.running_kernel = match &args.kernel_release {
        Some(k) => Some(k.clone()),
        None if node.is_host => host_kernel_release(),
        None => None,
    };
    facts
        .reboot_required
        .extend(reboot_evidence::observe(&facts));
    facts.reboot_state = crate::patch_states::read(&args.root)?;
    Ok(facts)
}

/// `etc/os-release`, else `usr/lib/os-release` (os-release(5)), under `root`.
pub fn os_release_path(root: &Path) -> Result<PathBuf> {
    let etc = root.join("etc/os-release");
    let lib = root.join("usr/lib/os-release");
    if etc.exists() {
        Ok(etc)
    } else if lib.exists() {
        Ok(lib)
    } else {
        bail!(
            "{}: no os-release ({} and {} are missing): not the root of a system Patchfleet can scan",
            root.display(),
            etc.display(),
            lib.display()
        )
    }
}

/// Whether `root` is this machine's own `/`.
pub fn is_host_root(root: &Path) -> bool {
    root.canonicalize().is_ok_and(|p| p == Path::new("/"))
}

fn host_boot_time() -> Option<Timestamp> {
    match std::fs::read_to_string("/proc/stat") {
        Ok(text) => {
            let t = boot_time_from_proc_stat(&text);
            if t.is_none() {
                warn("/proc/stat: no btime line; the boot time is unknown");
            }
            t
        }
        Err(e) => {
            warn(&format!("/proc/stat: {e}; the boot time is unknown"));
            None
        }
    }
}

/// `uname -r`, as the kernel publishes it.
fn host_kernel_release() -> Option<String> {
    match std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        Ok(text) => Some(text.trim().to_string()).filter(|s| !s.is_empty()),
        Err(e) => {
            warn(&format!(
                "/proc/sys/kernel/osrelease: {e}; the running kernel is unknown"
            ));
            None
        }
    }
}

pub fn warn(message: &str) {
    eprintln!("patchfleet-agent: warning: {message}");
}

pub fn info(message: &str) {
    eprintln!("patchfleet-agent: {message}");
}
