//! [`Backend`] for zypper systems (SLES, openSUSE).

use super::install::{install, simulate};
use super::run::{ZypperRoot, ZypperScanOptions, scan_with};
use crate::backend::{Backend, ScanFailure, ScanRequest, Scanned};
use crate::install::{InstallError, InstallOptions, InstallReport, Simulation};
use crate::rpm::PrivateMacros;
use patchfleet_core::eval::InstallPlan;

pub struct Zypper {
    pub root: ZypperRoot,
    /// Kept alive while the backend is: the root's commands use it.
    _macros: Option<PrivateMacros>,
}

impl Zypper {
    pub fn new(root: ZypperRoot) -> Zypper {
        Zypper {
            root,
            _macros: None,
        }
    }

    /// Runs every command of `root` with `macros` as its rpm macros.
    pub fn with_macros(mut root: ZypperRoot, macros: Option<PrivateMacros>) -> Zypper {
        if let Some(m) = &macros {
            root.env.push(m.env());
        }
        Zypper {
            root,
            _macros: macros,
        }
    }
}

impl Backend for Zypper {
    fn name(&self) -> &'static str {
        "zypper"
    }

    fn scan(&self, req: &ScanRequest) -> Result<Scanned, ScanFailure> {
        let opts = ZypperScanOptions {
            refresh: req.refresh,
            refresh_timeout: req.refresh_timeout,
            boot_time: req.boot_time,
            runner: req.runner.clone(),
            ..ZypperScanOptions::default()
        };
        let scan = scan_with(&self.root, &opts)?;
        Ok(Scanned {
            facts: scan.facts,
            warnings: scan.warnings,
        })
    }

    fn simulate(
        &self,
        plan: &InstallPlan,
        opts: &InstallOptions,
    ) -> Result<Simulation, InstallError> {
        simulate(&self.root, plan, opts)
    }

    fn install(
        &self,
        plan: &InstallPlan,
        opts: &InstallOptions,
    ) -> Result<InstallReport, InstallError> {
        install(&self.root, plan, opts)
    }
}
