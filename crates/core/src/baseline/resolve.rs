//! Which baseline a node is evaluated against (spec §6.2, §7): the
//! override for its OS, else the baseline its patch group registered for
//! its OS, else the default baseline of its OS.
//!
//! [`PatchRegistry`] is plain data — the account-level default-baseline and
//! patch-group tables — so the server can load it from its store, apply a
//! change, and persist the result; resolution never looks anything up.

use super::model::Baseline;
use super::patch_group::{PatchGroupNameError, validate_patch_group_name};
use super::predefined;
use crate::os::OperatingSystem;
use std::collections::BTreeMap;

/// The two tag keys that name a node's patch group (case-sensitive).
pub const PATCH_GROUP_TAG_KEYS: [&str; 2] = ["Patch Group", "PatchGroup"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchRegistry {
    defaults: BTreeMap<OperatingSystem, String>,
    groups: BTreeMap<(String, OperatingSystem), String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// SSM's `AlreadyExistsException`.
    #[error(
        "patch group '{group}' already has baseline {existing} registered for {os}; deregister it first"
    )]
    AlreadyExists {
        group: String,
        os: OperatingSystem,
        existing: String,
    },
    #[error("baseline {baseline_id} is not registered for patch group '{group}'")]
    NotRegistered { group: String, baseline_id: String },
    #[error("the baseline has no BaselineId; store it before registering it")]
    MissingBaselineId,
    #[error(transparent)]
    InvalidPatchGroup(#[from] PatchGroupNameError),
}

/// Where the chosen baseline came from (spec §6.2 steps 1, 3 and 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResolutionSource {
    Override,
    PatchGroup,
    Default,
}

/// The baseline chosen for a node, and the patch group it reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// `""` for an override entry without `BaselineId`.
    pub baseline_id: String,
    /// The node's patch-group tag value, `""` when it has none; reported
    /// even when the group has no baseline for the node's OS (E18).
    pub patch_group: String,
    pub source: ResolutionSource,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolutionError {
    /// A node belongs to at most one patch group; two tags that disagree are
    /// a configuration error on the node, not something to guess about.
    #[error(
        "the node has both a 'Patch Group' tag ('{patch_group_with_space}') and a 'PatchGroup' tag ('{patch_group}') with different values; keep one"
    )]
    ConflictingPatchGroupTags {
        patch_group_with_space: String,
        patch_group: String,
    },
    #[error("the override baseline is for {override_os}, but the node runs {node_os}")]
    OverrideForOtherOs {
        override_os: OperatingSystem,
        node_os: OperatingSystem,
    },
    #[error("no default baseline is registered for {0}")]
    NoDefaultBaseline(OperatingSystem),
}

impl Default for PatchRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl PatchRegistry {
    /// Defaults are the predefined baselines; no patch groups.
    pub fn new() -> Self {
        let defaults = predefined::all()
            .iter()
            .filter_map(|b| Some((b.operating_system, b.baseline_id.clone()?)))
            .collect();
        Self {
            defaults,
            groups: BTreeMap::new(),
        }
    }

    /// No defaults, no patch groups.
    pub fn empty() -> Self {
        Self {
            defaults: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// `RegisterDefaultPatchBaseline`: the OS is the baseline's. Returns the
    /// id of the default it replaces.
    pub fn register_default(
        &mut self,
        baseline: &Baseline,
    ) -> Result<Option<String>, RegistryError> {
        let id = baseline
            .baseline_id
            .as_deref()
            .ok_or(RegistryError::MissingBaselineId)?;
        Ok(self.defaults.insert(
            baseline.operating_system,
            predefined::strip_arn(id).to_string(),
        ))
    }

    pub fn default_baseline(&self, os: OperatingSystem) -> Option<&str> {
        self.defaults.get(&os).map(String::as_str)
    }

    /// `RegisterPatchBaselineForPatchGroup`: one baseline per (group, OS).
    pub fn register_patch_group(
        &mut self,
        group: &str,
        baseline: &Baseline,
    ) -> Result<(), RegistryError> {
        validate_patch_group_name(group)?;
        let id = baseline
            .baseline_id
            .as_deref()
            .ok_or(RegistryError::MissingBaselineId)?;
        let key = (group.to_string(), baseline.operating_system);
        if let Some(existing) = self.groups.get(&key) {
            return Err(RegistryError::AlreadyExists {
                group: group.to_string(),
                os: baseline.operating_system,
                existing: existing.clone(),
            });
        }
        self.groups
            .insert(key, predefined::strip_arn(id).to_string());
        Ok(())
    }

    /// `DeregisterPatchBaselineForPatchGroup(BaselineId, PatchGroup)`.
    /// Returns the OS the registration was for.
    pub fn deregister_patch_group(
        &mut self,
        group: &str,
        baseline_id: &str,
    ) -> Result<OperatingSystem, RegistryError> {
        let id = predefined::strip_arn(baseline_id);
        let found = self
            .groups
            .iter()
            .find(|((g, _), b)| g == group && b.as_str() == id)
            .map(|((_, os), _)| *os);
        match found {
            Some(os) => {
                self.groups.remove(&(group.to_string(), os));
                Ok(os)
            }
            None => Err(RegistryError::NotRegistered {
                group: group.to_string(),
                baseline_id: baseline_id.to_string(),
            }),
        }
    }

    /// `GetPatchBaselineForPatchGroup`.
    pub fn baseline_for_patch_group(&self, group: &str, os: OperatingSystem) -> Option<&str> {
        self.groups
            .get(&(group.to_string(), os))
            .map(String::as_str)
    }

    /// The patch groups a baseline is registered for (`GetPatchBaseline`'s
    /// `PatchGroups`), sorted.
    pub fn patch_groups_of(&self, baseline_id: &str) -> Vec<&str> {
        let id = predefined::strip_arn(baseline_id);
        self.groups
            .iter()
            .filter(|(_, b)| b.as_str() == id)
            .map(|((g, _), _)| g.as_str())
            .collect()
    }

    /// Every registration, as (group, OS, baseline id), sorted by group then OS.
    pub fn patch_groups(&self) -> impl Iterator<Item = (&str, OperatingSystem, &str)> {
        self.groups
            .iter()
            .map(|((g, os), b)| (g.as_str(), *os, b.as_str()))
    }

    /// Whether `baseline_id` is a registered default or registered to a
    /// patch group (SSM refuses to delete it: `ResourceInUseException`).
    pub fn is_in_use(&self, baseline_id: &str) -> bool {
        let id = predefined::strip_arn(baseline_id);
        self.defaults.values().any(|b| b == id) || self.groups.values().any(|b| b == id)
    }

    /// The baseline for a node running `node_os` with tags `node_tags`;
    /// `override_baseline` is the `BaselineOverride` entry already selected
    /// for the node's OS, if the operation has one.
    pub fn resolve<I, K, V>(
        &self,
        node_os: OperatingSystem,
        node_tags: I,
        override_baseline: Option<&Baseline>,
    ) -> Result<Resolution, ResolutionError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let patch_group = patch_group_from_tags(node_tags)?.unwrap_or_default();
        if let Some(b) = override_baseline {
            if b.operating_system != node_os {
                return Err(ResolutionError::OverrideForOtherOs {
                    override_os: b.operating_system,
                    node_os,
                });
            }
            return Ok(Resolution {
                baseline_id: b.baseline_id.clone().unwrap_or_default(),
                patch_group,
                source: ResolutionSource::Override,
            });
        }
        if let Some(id) = self.baseline_for_patch_group(&patch_group, node_os) {
            return Ok(Resolution {
                baseline_id: id.to_string(),
                patch_group,
                source: ResolutionSource::PatchGroup,
            });
        }
        match self.default_baseline(node_os) {
            Some(id) => Ok(Resolution {
                baseline_id: id.to_string(),
                patch_group,
                source: ResolutionSource::Default,
            }),
            None => Err(ResolutionError::NoDefaultBaseline(node_os)),
        }
    }
}

/// The node's patch group from its tags: the value of `Patch Group` or
/// `PatchGroup` (exact, case-sensitive keys). Both present with the same
/// value is fine; with different values it is an error.
pub fn patch_group_from_tags<I, K, V>(tags: I) -> Result<Option<String>, ResolutionError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut with_space: Option<String> = None;
    let mut without: Option<String> = None;
    for (k, v) in tags {
        match k.as_ref() {
            "Patch Group" => with_space = Some(v.as_ref().to_string()),
            "PatchGroup" => without = Some(v.as_ref().to_string()),
            _ => {}
        }
    }
    match (with_space, without) {
        (Some(a), Some(b)) if a != b => Err(ResolutionError::ConflictingPatchGroupTags {
            patch_group_with_space: a,
            patch_group: b,
        }),
        (a, b) => Ok(a.or(b)),
    }
}
