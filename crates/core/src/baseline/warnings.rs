//! Non-fatal findings: baselines that are valid but very likely do not do
//! what their author expects (spec §8, pitfalls 3, 4 and 9, and our APT
//! approval-delay extension).

use super::model::{Baseline, PatchFilter, PatchFilterKey};
use crate::os::Family;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WarningKind {
    /// `EnableNonSecurity=true` on a rule while the rule (or the global
    /// filters) require concrete `CLASSIFICATION`/`SEVERITY` values, which
    /// an update without an advisory never has (pitfall 3).
    NonSecurityBlockedByFilter,
    /// RPM `ApprovedPatches` with `ApprovedPatchesEnableNonSecurity=false`:
    /// entries for updates without an advisory silently approve nothing
    /// (pitfall 4).
    ApprovedPatchesSecurityOnly,
    /// `ApproveAfterDays`/`ApproveUntilDate` on an APT rule: ignored unless
    /// the node's facts carry first-seen dates (Patchfleet extension).
    AptApprovalDelay,
    /// `PRIORITY` lists `Extra` without `Optional`: `Extra` is evaluated as
    /// `Optional`, so the filter matches more than it says (pitfall 9).
    PriorityExtraIsOptional,
    /// A Windows or macOS baseline: valid in the SSM model (and what SSM
    /// makes when `OperatingSystem` is left out), stored and served, but no
    /// node Patchfleet manages is judged by it.
    JudgesNoNode,
}

/// One finding, at one member (same path style as validation errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaselineWarning {
    pub path: String,
    pub kind: WarningKind,
    pub message: String,
}

impl fmt::Display for BaselineWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}': {}", self.path, self.message)
    }
}

/// A concrete (non-`*`) `CLASSIFICATION` or `SEVERITY` filter.
fn needs_advisory(filters: &[PatchFilter]) -> Option<PatchFilterKey> {
    filters
        .iter()
        .find(|f| {
            matches!(
                f.key,
                PatchFilterKey::Classification | PatchFilterKey::Severity
            ) && !f.is_wildcard()
        })
        .map(|f| f.key)
}

impl Baseline {
    /// Findings worth showing to whoever wrote the baseline. Independent of
    /// [`validate`](Self::validate): an invalid baseline may have warnings too.
    pub fn warnings(&self) -> Vec<BaselineWarning> {
        let mut out = Vec::new();
        let os = self.operating_system;
        let family = os.family();
        let global_key = needs_advisory(&self.global_filters.patch_filters);
        if family == Family::Unsupported {
            out.push(BaselineWarning {
                path: "operatingSystem".into(),
                kind: WarningKind::JudgesNoNode,
                message: format!(
                    "a {os} baseline is stored, but Patchfleet manages Linux nodes: it judges no node \
                     (SSM makes a WINDOWS baseline when OperatingSystem is left out)"
                ),
            });
        }

        for (i, rule) in self.rules().iter().enumerate() {
            let at = format!("approvalRules.patchRules.{}.member", i + 1);
            let filters = &rule.patch_filter_group.patch_filters;

            if family == Family::Rpm && rule.enable_non_security {
                let culprit = needs_advisory(filters)
                    .map(|k| (k, "this rule"))
                    .or(global_key.map(|k| (k, "the global filters")));
                if let Some((key, place)) = culprit {
                    out.push(BaselineWarning {
                        path: format!("{at}.enableNonSecurity"),
                        kind: WarningKind::NonSecurityBlockedByFilter,
                        message: format!(
                            "EnableNonSecurity has no effect here: {place} filter {key} on concrete values, \
                             and an update without an advisory has no {key}, so non-security updates still \
                             never match; use {key}=[*] or drop the filter"
                        ),
                    });
                }
            }

            if family == Family::Apt {
                let delays = [
                    ("approveAfterDays", rule.approve_after_days.is_some()),
                    ("approveUntilDate", rule.approve_until_date.is_some()),
                ];
                for (member, present) in delays {
                    if present {
                        out.push(BaselineWarning {
                            path: format!("{at}.{member}"),
                            kind: WarningKind::AptApprovalDelay,
                            message: format!(
                                "{os} updates carry no release date, so {member} is ignored and approval is \
                                 immediate, unless the node reports first-seen dates for its updates \
                                 (Patchfleet extension), in which case the delay counts from the first-seen date"
                            ),
                        });
                    }
                }
            }
        }

        if family == Family::Apt {
            let groups = std::iter::once(("globalFilters".to_string(), &self.global_filters))
                .chain(self.rules().iter().enumerate().map(|(i, r)| {
                    (
                        format!("approvalRules.patchRules.{}.member.patchFilterGroup", i + 1),
                        &r.patch_filter_group,
                    )
                }));
            for (prefix, group) in groups {
                for (j, filter) in group.patch_filters.iter().enumerate() {
                    let has = |v: &str| filter.values.iter().any(|x| x.eq_ignore_ascii_case(v));
                    if filter.key == PatchFilterKey::Priority
                        && has("Extra")
                        && !has("Optional")
                        && !has("*")
                    {
                        out.push(BaselineWarning {
                            path: format!("{prefix}.patchFilters.{}.member.values", j + 1),
                            kind: WarningKind::PriorityExtraIsOptional,
                            message:
                                "priority Extra is deprecated in Debian policy and is evaluated as \
                                      Optional, so this filter also matches Optional packages"
                                    .to_string(),
                        });
                    }
                }
            }
        }

        if family == Family::Rpm
            && !self.approved_patches.is_empty()
            && !self.approved_patches_enable_non_security
        {
            out.push(BaselineWarning {
                path: "approvedPatchesEnableNonSecurity".to_string(),
                kind: WarningKind::ApprovedPatchesSecurityOnly,
                message: "ApprovedPatches entries only approve updates that come with an advisory while \
                          ApprovedPatchesEnableNonSecurity is false; set it to true to approve the listed \
                          packages whatever their origin"
                    .to_string(),
            });
        }
        out
    }
}
