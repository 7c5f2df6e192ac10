//! Reboot evidence a node's files give (the agent adds it to the facts;
//! what the facts alone give is `patchfleet_core::reboot_evidence`).

use patchfleet_core::facts::{RebootEvidence, RebootSource};
use std::path::Path;

/// Debian's and Ubuntu's flag, `var/run/reboot-required` (or
/// `run/reboot-required`) with the `.pkgs` list, under `dir`.
pub fn flag_file(dir: &Path) -> Option<RebootEvidence> {
    let mut found = None;
    let mut packages: Vec<String> = Vec::new();
    for base in ["var/run", "run"] {
        let flag = dir.join(base).join("reboot-required");
        if flag.exists() && found.is_none() {
            found = Some(flag.display().to_string());
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(base).join("reboot-required.pkgs")) {
            for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if !packages.iter().any(|p| p == l) {
                    packages.push(l.to_string());
                }
            }
        }
    }
    found.map(|path| RebootEvidence {
        source: RebootSource::RebootRequiredFile,
        detail: format!("{path} exists"),
        packages,
    })
}
