//! States laid over the baseline's verdict: pending reboots (spec §4.3) and
//! install failures (spec §3.6 step 4, §3.7).

use super::{InstallOutcome, PatchVerdict};
use crate::compliance::PatchState;
use crate::inventory::{Inventory, Version};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Which installs leave a package `InstalledPendingReboot` until the next
/// boot (spec §4.3 step 5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PendingRebootScope {
    /// Only what a `NoReboot` install recorded in the node's reboot state.
    PatchManagerOnly,
    /// Also any package installed after the last boot, by anyone (the
    /// current Patch Manager documentation).
    #[default]
    AnyInstallAfterBoot,
}

pub(super) fn pending_reboot(
    inv: &Inventory,
    verdicts: &mut [PatchVerdict],
    scope: PendingRebootScope,
) {
    // Step 3: a NoReboot install after the last boot keeps its packages pending.
    let recorded_pending = inv.no_reboot_install_pending();
    for v in verdicts.iter_mut() {
        if !matches!(v.state, PatchState::Installed | PatchState::InstalledOther) {
            continue;
        }
        let group = &inv.groups[v.group as usize];
        let Some(i) = group.installed else { continue };
        let installed = &inv.installed[i as usize];
        let after_boot = scope == PendingRebootScope::AnyInstallAfterBoot
            && matches!((installed.installed_time, inv.boot_time), (Some(t), Some(boot)) if t > boot);
        let recorded = recorded_pending
            && inv
                .pending_reboot_titles
                .contains(&inv.title(group, &installed.version));
        if after_boot || recorded {
            v.state = PatchState::InstalledPendingReboot;
        }
    }
}

pub(super) fn install_outcome(
    inv: &Inventory,
    verdicts: &mut [PatchVerdict],
    outcome: &InstallOutcome,
) {
    match outcome {
        InstallOutcome::None => {}
        InstallOutcome::Baseline => {
            for v in verdicts
                .iter_mut()
                .filter(|v| v.state == PatchState::Missing)
            {
                v.state = PatchState::Failed;
            }
        }
        InstallOutcome::Override(targets) => {
            for t in targets {
                let Some(v) = verdicts.iter_mut().find(|v| {
                    let g = &inv.groups[v.group as usize];
                    g.name == t.name && g.arch == t.arch
                }) else {
                    continue;
                };
                let group = &inv.groups[v.group as usize];
                let installed = group.installed.map(|i| &inv.installed[i as usize].version);
                let target = Version::parse(inv.family, &t.version).ok();
                let reached = match (installed, target) {
                    (Some(have), Some(want)) => have.compare(&want) != Ordering::Less,
                    _ => false,
                };
                if !reached {
                    v.state = PatchState::Failed;
                }
            }
        }
    }
}
