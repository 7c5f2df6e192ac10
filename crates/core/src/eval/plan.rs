//! The install plan: exact versions for the agent to install (spec §3.6,
//! §3.7). Dependency resolution, and BLOCK's refusal of plans that would
//! pull in a rejected package, happen on the node with the package manager;
//! the plan carries the rejected list for that.

use super::pattern::{Components, Identity, Pattern};
use super::{CompiledBaseline, PatchVerdict};
use crate::baseline::InstallOverrideList;
use crate::compliance::PatchState;
use crate::inventory::Inventory;
use serde::Serialize;
use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedInstall {
    pub name: String,
    pub arch: String,
    /// Exactly this version, as the repository writes it.
    pub version: String,
    /// `name.arch:version` (APT) or `name.arch:epoch:version-release` (RPM).
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PlanSource {
    Baseline,
    InstallOverrideList,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallPlan {
    pub source: PlanSource,
    pub packages: Vec<PlannedInstall>,
    pub rejected_patches: Vec<String>,
    /// With BLOCK the agent must refuse any plan step that installs or
    /// upgrades a package matching `rejected_patches`.
    pub block_rejected: bool,
}

/// An install override list ready to match (spec §2.4).
#[derive(Debug, Clone)]
pub struct CompiledOverride {
    entries: Vec<(Pattern, Option<Pattern>)>,
}

impl CompiledOverride {
    pub fn new(list: &InstallOverrideList) -> CompiledOverride {
        CompiledOverride {
            entries: list
                .patches
                .iter()
                .map(|e| (Pattern::new(&e.id), e.title.as_deref().map(Pattern::new)))
                .collect(),
        }
    }

    fn matches(&self, identity: &Identity) -> bool {
        self.entries.iter().any(|(id, title)| {
            id.matches(identity) && title.as_ref().is_none_or(|t| t.matches(identity))
        })
    }
}

fn planned(inv: &Inventory, record: u32) -> PlannedInstall {
    let r = &inv.records[record as usize];
    let group = &inv.groups[r.group as usize];
    let available = &inv.available[r.available as usize];
    PlannedInstall {
        name: group.name.clone(),
        arch: group.arch.clone(),
        version: available.raw_version.clone(),
        title: inv.title(group, &available.version),
        advisory: r.notice.map(|n| inv.notices[n as usize].id.clone()),
    }
}

fn plan(
    baseline: &CompiledBaseline,
    source: PlanSource,
    packages: Vec<PlannedInstall>,
) -> InstallPlan {
    InstallPlan {
        source,
        packages,
        rejected_patches: baseline.rejected_entries.clone(),
        block_rejected: baseline.block,
    }
}

/// Every installed package whose approved target is newer than what is installed.
pub(super) fn from_verdicts(
    baseline: &CompiledBaseline,
    inv: &Inventory,
    verdicts: &[PatchVerdict],
) -> InstallPlan {
    let packages = verdicts
        .iter()
        .filter(|v| v.baseline_state == PatchState::Missing)
        .filter_map(|v| v.target)
        .map(|t| planned(inv, t))
        .collect();
    plan(baseline, PlanSource::Baseline, packages)
}

/// The highest available version matching an override entry, for every
/// installed package, approved by the baseline or not (spec §3.7).
pub(super) fn from_override(
    baseline: &CompiledBaseline,
    inv: &Inventory,
    list: &CompiledOverride,
) -> InstallPlan {
    let mut identity = Identity::default();
    let mut packages = Vec::new();
    for group in &inv.groups {
        if group.installed.is_none() {
            continue;
        }
        for (offset, r) in inv.group_records(group).iter().enumerate() {
            if r.vs_installed != Ordering::Greater {
                break;
            }
            let available = &inv.available[r.available as usize];
            let components = Components::of(
                &group.name,
                &group.arch,
                &available.version,
                &available.raw_version,
            );
            identity.build(inv.family, &components);
            if list.matches(&identity) {
                packages.push(planned(inv, group.records.start + offset as u32));
                break;
            }
        }
    }
    plan(baseline, PlanSource::InstallOverrideList, packages)
}
