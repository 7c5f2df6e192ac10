//! The dnf/yum install (in progress).

use super::run::RpmRoot;
use crate::install::{InstallError, InstallOptions, InstallReport, Simulation};
use patchfleet_core::eval::InstallPlan;

pub fn simulate(
    _root: &RpmRoot,
    _plan: &InstallPlan,
    _opts: &InstallOptions,
) -> Result<Simulation, InstallError> {
    Err(InstallError::Unsupported(
        "install on dnf/yum systems".into(),
    ))
}

pub fn install(
    _root: &RpmRoot,
    _plan: &InstallPlan,
    _opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    Err(InstallError::Unsupported(
        "install on dnf/yum systems".into(),
    ))
}
