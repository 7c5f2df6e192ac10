//! Facts collection: the root's os-release names its package-manager
//! family, whose backend scans the root (APT: `patchfleet_pkg::apt`; dnf and
//! yum: `patchfleet_pkg::rpm::run`; zypper: not yet). Warnings (an unreadable index, a
//! failed refresh, packages dpkg left half-done) go to standard error; the
//! facts are the result.

use crate::CollectArgs;
use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::os::Family;
use patchfleet_pkg::OsRelease;
use patchfleet_pkg::apt::{AptRoot, ScanOptions, boot_time_from_proc_stat, scan_with};
use patchfleet_pkg::rpm::run::{self as rpm, RpmRoot, RpmScanOptions};
use std::path::{Path, PathBuf};

/// Scans the root named by `args`, reports its warnings on standard error,
/// and adds what the node remembers of earlier installs.
pub fn collect(args: &CollectArgs) -> Result<NodeFacts> {
    let mut facts = scan_root(args)?;
    facts.reboot_state = crate::patch_states::read(&args.root)?;
    Ok(facts)
}

fn scan_root(args: &CollectArgs) -> Result<NodeFacts> {
    let root = args.root.as_path();
    let is_host = is_host_root(root);
    let os_release = os_release_path(root)?;
    let text = std::fs::read_to_string(&os_release)
        .with_context(|| format!("reading {}", os_release.display()))?;
    let label = os_release.display().to_string();
    let (os, product) = OsRelease::parse(&label, &text)
        .map_err(|e| anyhow!("{e}"))?
        .detect()
        .map_err(|e| anyhow!("{label}: {e}"))?;
    let boot_time = match args.boot_time {
        Some(t) => Some(t),
        None if is_host => host_boot_time(),
        None => None,
    };
    match os.family() {
        Family::Apt => {
            let apt_root = if is_host {
                AptRoot::host()
            } else {
                AptRoot::at(root)
            };
            let opts = ScanOptions {
                refresh: args.refresh,
                boot_time,
                ..ScanOptions::default()
            };
            let scan = scan_with(&apt_root, &opts).map_err(|e| anyhow!("{e}"))?;
            for w in &scan.warnings {
                warn(w);
            }
            for p in &scan.interrupted {
                warn(&format!(
                    "{}: {}{} is half-done ({}, {}): `dpkg --configure -a` repairs it",
                    apt_root.status_path().display(),
                    p.name,
                    p.arch
                        .as_deref()
                        .map(|a| format!(":{a}"))
                        .unwrap_or_default(),
                    p.abbrev,
                    p.status
                ));
            }
            Ok(scan.facts)
        }
        Family::Rpm => {
            let rpm_root = if is_host {
                RpmRoot::host()
            } else {
                RpmRoot::at(root)
            };
            // rpm creates an empty database where there is none: refuse
            // first, so that a scan never writes into the root.
            if let Some(db) = &rpm_root.dbpath {
                let db = rpm_root.path(db);
                if !db.is_dir() {
                    bail!(
                        "{}: no rpm database: not the root of an installed {product} system",
                        db.display()
                    );
                }
            }
            let opts = RpmScanOptions {
                refresh: args.refresh,
                boot_time,
                ..RpmScanOptions::default()
            };
            let scan = rpm::scan_with(&rpm_root, &opts).map_err(|e| anyhow!("{e}"))?;
            for w in &scan.warnings {
                warn(w);
            }
            Ok(scan.facts)
        }
        family => {
            let family = match family {
                Family::Zypp => "a zypper",
                _ => "an unsupported",
            };
            bail!(
                "{label}: {product} is {family} system: not supported yet by this agent (it scans APT and dnf/yum systems)"
            )
        }
    }
}

/// `etc/os-release`, else `usr/lib/os-release` (os-release(5)), under `root`.
fn os_release_path(root: &Path) -> Result<PathBuf> {
    if !root.is_dir() {
        bail!("{}: not a directory", root.display());
    }
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

fn warn(message: &str) {
    eprintln!("patchfleet-agent: warning: {message}");
}
