//! [`Backend`] for dnf and yum systems.

use super::install::{install, simulate};
use super::run::{RpmRoot, RpmScanOptions, scan_with};
use crate::backend::{Backend, ScanFailure, ScanRequest, Scanned};
use crate::install::{InstallError, InstallOptions, InstallReport, Simulation};
use crate::rpm::PrivateMacros;
use patchfleet_core::eval::InstallPlan;

pub struct Rpm {
    pub root: RpmRoot,
    /// Kept alive while the backend is: the root's commands use it.
    _macros: Option<PrivateMacros>,
}

impl Rpm {
    pub fn new(root: RpmRoot) -> Rpm {
        Rpm {
            root,
            _macros: None,
        }
    }

    /// Runs every command of `root` with `macros` as its rpm macros.
    pub fn with_macros(mut root: RpmRoot, macros: Option<PrivateMacros>) -> Rpm {
        if let Some(m) = &macros {
            root.env.push(m.env());
        }
        Rpm {
            root,
            _macros: macros,
        }
    }
}

impl Backend for Rpm {
    fn name(&self) -> &'static str {
        "dnf"
    }

    fn scan(&self, req: &ScanRequest) -> Result<Scanned, ScanFailure> {
        // rpm creates an empty database where there is none: refuse first,
        // so that a scan never writes into the root.
        if let Some(db) = &self.root.dbpath {
            let db = self.root.path(db);
            if !db.is_dir() {
                return Err(format!(
                    "{}: no rpm database: not the root of an installed system",
                    db.display()
                )
                .into());
            }
        }
        let opts = RpmScanOptions {
            refresh: req.refresh,
            refresh_timeout: req.refresh_timeout,
            boot_time: req.boot_time,
            runner: req.runner.clone(),
            ..RpmScanOptions::default()
        };
        let mut scan = scan_with(&self.root, &opts)?;
        scan.facts
            .reboot_required
            .extend(crate::reboot::flag_file(&self.root.dir));
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
