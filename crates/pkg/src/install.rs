//! What every backend's install has in common: the options, the
//! simulation of a plan, the per-package outcome, the report and the
//! errors. The agent reads these without knowing which package manager ran.

use crate::runner::{RunError, Runner};
use patchfleet_core::facts::RebootEvidence;
use serde::Serialize;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct InstallOptions {
    pub runner: Runner,
    /// Timeout of each simulation.
    pub simulate_timeout: Duration,
    /// Timeout of the real install (`apt-get`, `dnf`, `zypper`).
    pub install_timeout: Duration,
    /// How long a held package-manager lock (dpkg, rpm, zypp) is waited for
    /// before the install fails.
    pub lock_wait: Duration,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            runner: Runner::default(),
            simulate_timeout: Duration::from_secs(120),
            install_timeout: Duration::from_secs(1800),
            lock_wait: Duration::from_secs(60),
        }
    }
}

/// What an `Inst`/`Remv`/`Conf` line of a simulation says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SimAction {
    Install,
    Remove,
    Configure,
}

/// One step of a simulated transaction (apt: a line of `apt-get -s`,
/// `Inst name [old] (new origin [arch])`; dnf/zypper: a transaction member).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimStep {
    pub action: SimAction,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The installed version (`[old]`); `None` for a new install.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The version apt would install (`Inst`, `Conf`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    /// Where the version comes from: `Label:Version/Suite` (apt's words),
    /// the repository id (dnf, zypper).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// What the simulation of the plan says apt would do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Simulation {
    /// The command simulated (after dropping unresolvable packages).
    pub command: String,
    pub steps: Vec<SimStep>,
    /// Planned packages apt could not resolve, with its message.
    pub unresolved: Vec<(String, String)>,
}

/// The result for one planned package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result")]
pub enum PackageResult {
    /// Exactly the planned version is installed now.
    Installed,
    Failed {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageOutcome {
    pub name: String,
    pub arch: String,
    pub version: String,
    /// The installed version before the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    #[serde(flatten)]
    pub result: PackageResult,
}

#[derive(Clone, Debug, Serialize)]
pub struct InstallReport {
    pub simulation: Simulation,
    /// One per planned package, in the plan's order.
    pub packages: Vec<PackageOutcome>,
    /// What says the node needs a reboot after the run (flag files, the
    /// package manager's exit status); empty: nothing does.
    pub reboot_required: Vec<RebootEvidence>,
    /// The real run's exit (`None`: nothing to install, no run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<String>,
    /// The package manager's error and warning lines of the real run.
    pub messages: Vec<String>,
    #[serde(with = "duration_secs")]
    pub elapsed: Duration,
}

impl InstallReport {
    pub fn all_installed(&self) -> bool {
        self.packages
            .iter()
            .all(|p| p.result == PackageResult::Installed)
    }
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{path}: {message}")]
    Status { path: String, message: String },
    #[error("{0} is not supported by this agent yet")]
    Unsupported(String),
    #[error("the repair failed ({command}: {exit}): {messages}")]
    Repair {
        command: String,
        exit: String,
        messages: String,
    },
    #[error("the simulation failed ({command}: {exit}): {messages}")]
    Simulation {
        command: String,
        exit: String,
        messages: String,
    },
    #[error("refused: installing the plan would remove {package} ({version}); nothing was changed")]
    WouldRemove { package: String, version: String },
    #[error(
        "refused: installing the plan would install {package} {version}, which matches the rejected \
         patch '{entry}' (RejectedPatchesAction BLOCK); nothing was changed"
    )]
    Rejected {
        package: String,
        version: String,
        entry: String,
    },
    #[error("{path}: the package manager's lock is held by {holder}{waited}")]
    Locked {
        path: String,
        /// `process 1234 (apt-get)`, or what apt said.
        holder: String,
        waited: String,
    },
}
