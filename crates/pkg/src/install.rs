//! What every backend's install has in common: the options, the
//! simulation of a plan, the per-package outcome, the report and the
//! errors. The agent reads these without knowing which package manager ran.

use crate::runner::{RunError, Runner};
use patchfleet_core::eval::InstallPlan;
use patchfleet_core::eval::pattern::{Components, PatternSet};
use patchfleet_core::facts::RebootEvidence;
use patchfleet_core::os::Family;
use patchfleet_core::version::rpm::Evr;
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

/// Refuses a simulated transaction that removes a package, and under BLOCK
/// ([`InstallPlan::block_rejected`]) one that installs or upgrades a package
/// matching the plan's rejected list, dependencies included: the plan's
/// own filter saw only the planned packages.
pub fn check_steps(
    family: Family,
    plan: &InstallPlan,
    steps: &[SimStep],
) -> Result<(), InstallError> {
    if let Some(s) = steps.iter().find(|s| s.action == SimAction::Remove) {
        return Err(InstallError::WouldRemove {
            package: s.name.clone(),
            version: s.old.clone().or_else(|| s.new.clone()).unwrap_or_default(),
        });
    }
    if !plan.block_rejected || plan.rejected_patches.is_empty() {
        return Ok(());
    }
    let set = PatternSet::new(&plan.rejected_patches);
    for s in steps.iter().filter(|s| s.action == SimAction::Install) {
        let version = s.new.as_deref().unwrap_or("");
        // An unreadable RPM version still matches by name (the deb forms
        // are the name forms plus the raw version).
        let evr = match family {
            Family::Apt => None,
            _ => Evr::parse(version).ok(),
        };
        let c = Components {
            name: &s.name,
            arch: s.arch.as_deref().unwrap_or(""),
            evr: evr
                .as_ref()
                .map(|e| (e.epoch_or_zero(), e.version(), e.release())),
            deb_version: version,
        };
        if let Some(i) = set.find(family, &c) {
            return Err(InstallError::Rejected {
                package: s.name.clone(),
                version: version.to_string(),
                entry: plan.rejected_patches[i as usize].clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: SimAction, name: &str, new: &str) -> SimStep {
        SimStep {
            action,
            name: name.into(),
            arch: Some("noarch".into()),
            old: Some("1.0-1".into()),
            new: Some(new.into()),
            origin: None,
        }
    }

    fn plan(rejected: &[&str]) -> InstallPlan {
        InstallPlan {
            source: patchfleet_core::eval::PlanSource::Baseline,
            packages: Vec::new(),
            rejected_patches: rejected.iter().map(|s| s.to_string()).collect(),
            block_rejected: true,
        }
    }

    #[test]
    fn block_refuses_rejected_and_removals() {
        for family in [Family::Apt, Family::Rpm] {
            let mut plan = plan(&["tb-kernel"]);
            let e = check_steps(
                family,
                &plan,
                &[step(SimAction::Install, "tb-kernel", "1.1-1")],
            )
            .unwrap_err();
            assert!(e.to_string().contains("tb-kernel"), "{e}");
            assert!(
                check_steps(
                    family,
                    &plan,
                    &[step(SimAction::Install, "tb-hello", "1.1-1")]
                )
                .is_ok()
            );
            plan.block_rejected = false;
            assert!(
                check_steps(
                    family,
                    &plan,
                    &[step(SimAction::Install, "tb-kernel", "1.1-1")]
                )
                .is_ok()
            );
            let e = check_steps(
                family,
                &plan,
                &[step(SimAction::Remove, "tb-tool", "1.0-1")],
            )
            .unwrap_err();
            assert!(matches!(e, InstallError::WouldRemove { .. }), "{e}");
        }
    }

    #[test]
    fn rpm_rejected_forms() {
        // The RPM forms need the parsed version: `name-version-release.arch`,
        // `epoch:name-…`, a version glob.
        let rpm = |entries: &[&str], name: &str, new: &str| {
            check_steps(
                Family::Rpm,
                &plan(entries),
                &[step(SimAction::Install, name, new)],
            )
        };
        assert!(rpm(&["tb-tool-2.1-1.noarch"], "tb-tool", "1:2.1-1").is_err());
        assert!(rpm(&["1:tb-tool-2.1-1.noarch"], "tb-tool", "1:2.1-1").is_err());
        assert!(rpm(&["tb-tool-1:2.1-*"], "tb-tool", "1:2.1-1").is_err());
        assert!(rpm(&["tb-tool-2.0-1.noarch"], "tb-tool", "1:2.1-1").is_ok());
        assert!(rpm(&["kernel*"], "kernel", "5.14.0-2").is_err());
        assert!(rpm(&["kernel*"], "tb-kernel", "1.1-1").is_ok());
        // A version rpm cannot read still matches by name.
        assert!(rpm(&["tb-tool"], "tb-tool", "").is_err());
    }
}
