//! [`Backend`] for APT systems.

use super::install::{install, simulate};
use super::run::{AptRoot, ScanOptions, scan_with};
use crate::backend::{Backend, ScanFailure, ScanRequest, Scanned};
use crate::install::{InstallError, InstallOptions, InstallReport, Simulation};
use patchfleet_core::eval::InstallPlan;

pub struct Apt {
    pub root: AptRoot,
}

impl Apt {
    pub fn new(root: AptRoot) -> Apt {
        Apt { root }
    }
}

impl Backend for Apt {
    fn name(&self) -> &'static str {
        "apt"
    }

    fn scan(&self, req: &ScanRequest) -> Result<Scanned, ScanFailure> {
        let opts = ScanOptions {
            refresh: req.refresh,
            refresh_timeout: req.refresh_timeout,
            boot_time: req.boot_time,
            runner: req.runner.clone(),
            ..ScanOptions::default()
        };
        let mut scan = scan_with(&self.root, &opts)?;
        let status = self.root.status_path();
        for p in &scan.interrupted {
            scan.warnings.push(format!(
                "{}: {}{} is half-done ({}, {}): `dpkg --configure -a` repairs it \
                 (patchfleet-agent install --repair)",
                status.display(),
                p.name,
                p.arch
                    .as_deref()
                    .map(|a| format!(":{a}"))
                    .unwrap_or_default(),
                p.abbrev,
                p.status
            ));
        }
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

    fn repair(&self, opts: &InstallOptions) -> Result<Option<String>, InstallError> {
        super::install::configure_pending(&self.root, opts).map(Some)
    }
}
