//! The one interface the agent drives every package manager through.
//!
//! [`for_root`] picks the backend from the root's operating system: apt for
//! Debian, Ubuntu and Raspbian; dnf or yum (one module, [`crate::rpm`]) for
//! the RHEL family and Amazon Linux; zypper for SUSE. Each backend scans
//! into [`NodeFacts`], simulates an [`InstallPlan`], installs it with exact
//! versions and verifies the result, all through the [`crate::runner`].

use crate::install::{InstallError, InstallOptions, InstallReport, Simulation};
use crate::runner::Runner;
use jiff::Timestamp;
use patchfleet_core::eval::InstallPlan;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::os::{Family, OperatingSystem};
use std::path::Path;
use std::time::Duration;

/// How to scan.
#[derive(Clone, Debug)]
pub struct ScanRequest {
    /// Refresh the repository metadata first (never by default: a scan
    /// only reads).
    pub refresh: bool,
    /// Timeout of the refresh.
    pub refresh_timeout: Duration,
    /// The node's boot time; the caller reads `/proc/stat` or injects it.
    pub boot_time: Option<Timestamp>,
    pub runner: Runner,
}

impl Default for ScanRequest {
    fn default() -> Self {
        ScanRequest {
            refresh: false,
            refresh_timeout: Duration::from_secs(300),
            boot_time: None,
            runner: Runner::default(),
        }
    }
}

/// A scan's facts and what did not fit in them (an unreadable index, a
/// failing repository by name, packages dpkg left half-done).
#[derive(Clone, Debug)]
pub struct Scanned {
    pub facts: NodeFacts,
    pub warnings: Vec<String>,
}

/// A scan that produced no facts; the message names what and where.
pub type ScanFailure = Box<dyn std::error::Error + Send + Sync>;

pub trait Backend {
    /// The package manager, as messages name it (`apt`, `dnf`, `zypper`).
    fn name(&self) -> &'static str;

    /// The node's facts. Never changes the node unless `req.refresh`.
    fn scan(&self, req: &ScanRequest) -> Result<Scanned, ScanFailure>;

    /// What installing `plan` would do; changes nothing.
    fn simulate(
        &self,
        plan: &InstallPlan,
        opts: &InstallOptions,
    ) -> Result<Simulation, InstallError>;

    /// Installs exactly the plan's versions and verifies each one.
    fn install(
        &self,
        plan: &InstallPlan,
        opts: &InstallOptions,
    ) -> Result<InstallReport, InstallError>;

    /// Finishes what an interrupted run left half-done (dpkg's
    /// `--configure -a`); `Ok(None)` when this package manager has no such
    /// repair. Runs only when an operator asks.
    fn repair(&self, _opts: &InstallOptions) -> Result<Option<String>, InstallError> {
        Ok(None)
    }
}

/// The backend for the system at `dir` (`/` on a node) running `os`.
pub fn for_root(dir: &Path, os: OperatingSystem) -> Result<Box<dyn Backend>, OpenError> {
    use crate::rpm::PrivateMacros;
    let host = dir.canonicalize().is_ok_and(|p| p == Path::new("/"));
    // Another root's rpm database is found through private macros (see
    // `rpm::macros`); the node's own through the node's.
    let macros = |dbpath: &Option<std::path::PathBuf>| match dbpath {
        Some(db) if !host => PrivateMacros::new(db)
            .map(Some)
            .map_err(|e| OpenError::Macros(e.to_string())),
        _ => Ok(None),
    };
    match os.family() {
        Family::Apt => Ok(Box::new(crate::apt::Apt::new(if host {
            crate::apt::AptRoot::host()
        } else {
            crate::apt::AptRoot::at(dir)
        }))),
        Family::Rpm => {
            let root = if host {
                crate::rpm::RpmRoot::host()
            } else {
                crate::rpm::RpmRoot::at(dir)
            };
            let macros = macros(&root.dbpath)?;
            Ok(Box::new(crate::rpm::Rpm::with_macros(root, macros)))
        }
        Family::Zypp => {
            let root = if host {
                crate::zypper::ZypperRoot::host()
            } else {
                crate::zypper::ZypperRoot::at(dir)
            };
            let macros = macros(&root.dbpath)?;
            Ok(Box::new(crate::zypper::Zypper::with_macros(root, macros)))
        }
        Family::Unsupported => Err(OpenError::Unsupported(os)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{} systems are not supported by this agent", .0.as_str())]
    Unsupported(OperatingSystem),
    #[error("writing the private rpm macros: {0}")]
    Macros(String),
}
