//! An [`Evaluation`] rendered in SSM's shapes: the `InstancePatchState`
//! summary and one `PatchComplianceData` per reported patch, plus
//! Patchfleet's own fields (target version, compliance level, reason).

use crate::compliance::{ComplianceLevel, PatchState};
use crate::eval::{Blocker, CompiledBaseline, Evaluation, InstallPlan, PatchVerdict, Reason};
use crate::inventory::{DateSource, Inventory, Record};
use jiff::Timestamp;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// What the caller knows about the operation that the facts do not say.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    pub instance_id: String,
    pub patch_group: String,
    pub snapshot_id: Option<String>,
    pub operation: String,
    pub operation_start: Option<Timestamp>,
    pub operation_end: Option<Timestamp>,
    pub reboot_option: Option<String>,
    pub install_override_list: Option<String>,
    /// Also list the `NotApplicable` packages (Patch Manager only counts them).
    pub include_not_applicable: bool,
}

/// Exactly the members of SSM's `InstancePatchState`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct InstancePatchState {
    pub instance_id: String,
    pub patch_group: String,
    pub baseline_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_override_list: Option<String>,
    pub owner_information: String,
    pub installed_count: u32,
    pub installed_other_count: u32,
    pub installed_pending_reboot_count: u32,
    pub installed_rejected_count: u32,
    pub missing_count: u32,
    pub failed_count: u32,
    pub unreported_not_applicable_count: u32,
    pub not_applicable_count: u32,
    pub available_security_update_count: u32,
    pub operation_start_time: Option<Timestamp>,
    pub operation_end_time: Option<Timestamp>,
    pub operation: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_no_reboot_install_operation_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reboot_option: Option<String>,
    pub critical_non_compliant_count: u32,
    pub security_non_compliant_count: u32,
    pub other_non_compliant_count: u32,
}

/// SSM's `PatchComplianceData`, then Patchfleet's fields.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PatchRecord {
    pub title: String,
    #[serde(rename = "KBId")]
    pub kb_id: String,
    pub classification: String,
    /// The vendor's severity (notice severity; APT: the package priority).
    pub severity: String,
    pub state: PatchState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_time: Option<Timestamp>,
    #[serde(rename = "CVEIds", skip_serializing_if = "String::is_empty")]
    pub cve_ids: String,
    pub compliance_level: ComplianceLevel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory_id: Option<String>,
    /// When the reported candidate was released, and from which field (spec §8 #2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_date_source: Option<DateSource>,
    /// Spec §8 #1: a newer version that a delay rule will approve at this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_approval_until: Option<Timestamp>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ComplianceSummary {
    pub status: String,
    /// The true highest level among non-compliant patches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overall_severity: Option<ComplianceLevel>,
    /// AWS's value: floored at INFORMATIONAL, absent when compliant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub non_compliant_severity: Option<ComplianceLevel>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    pub instance_patch_state: InstancePatchState,
    pub compliance: ComplianceSummary,
    pub patches: Vec<PatchRecord>,
    /// Only when asked for (`ReportContext::include_not_applicable`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<PatchRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_plan: Option<InstallPlan>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
}

fn ts(secs: Option<i64>) -> Option<Timestamp> {
    secs.and_then(|s| Timestamp::from_second(s).ok())
}

pub fn render(
    eval: &Evaluation,
    inv: &Inventory,
    baseline: &CompiledBaseline,
    ctx: &ReportContext,
) -> Report {
    let c = &eval.counts;
    let state = InstancePatchState {
        instance_id: ctx.instance_id.clone(),
        patch_group: ctx.patch_group.clone(),
        baseline_id: baseline.id.clone(),
        snapshot_id: ctx.snapshot_id.clone(),
        install_override_list: ctx.install_override_list.clone(),
        owner_information: String::new(),
        installed_count: c.installed,
        installed_other_count: c.installed_other,
        installed_pending_reboot_count: c.installed_pending_reboot,
        installed_rejected_count: c.installed_rejected,
        missing_count: c.missing,
        failed_count: c.failed,
        unreported_not_applicable_count: 0,
        not_applicable_count: c.not_applicable,
        available_security_update_count: 0,
        operation_start_time: ctx.operation_start,
        operation_end_time: ctx.operation_end,
        operation: ctx.operation.clone(),
        last_no_reboot_install_operation_time: ts(inv.last_no_reboot_install),
        reboot_option: ctx.reboot_option.clone(),
        critical_non_compliant_count: c.critical_non_compliant,
        security_non_compliant_count: c.security_non_compliant,
        other_non_compliant_count: c.other_non_compliant,
    };
    let mut diagnostics = inv.diagnostics.clone();
    diagnostics.extend(eval.diagnostics.iter().cloned());
    Report {
        instance_patch_state: state,
        compliance: ComplianceSummary {
            status: eval.status.as_str().to_string(),
            overall_severity: eval.overall_severity,
            non_compliant_severity: eval.non_compliant_severity(),
        },
        patches: eval
            .verdicts
            .iter()
            .map(|v| patch_record(v, inv, baseline))
            .collect(),
        not_applicable: if ctx.include_not_applicable {
            eval.not_applicable
                .iter()
                .map(|v| patch_record(v, inv, baseline))
                .collect()
        } else {
            Vec::new()
        },
        install_plan: eval.plan.clone(),
        diagnostics,
    }
}

fn patch_record(v: &PatchVerdict, inv: &Inventory, baseline: &CompiledBaseline) -> PatchRecord {
    let group = &inv.groups[v.group as usize];
    let installed = group.installed.map(|i| &inv.installed[i as usize]);
    let target = v.target.map(|t| &inv.records[t as usize]);
    let target_version = target.map(|r| &inv.available[r.available as usize].version);
    let shows_target = matches!(v.state, PatchState::Missing | PatchState::Failed);
    let title = match (shows_target, target_version, installed) {
        (true, Some(t), _) => inv.title(group, t),
        (_, _, Some(i)) => inv.title(group, &i.version),
        (_, Some(t), None) => inv.title(group, t),
        (_, None, None) => format!("{}.{}", group.name, group.arch),
    };
    // SSM omits classification and severity of InstalledOther and rejected items.
    let attributed = target.filter(|_| {
        !matches!(
            v.baseline_state,
            PatchState::InstalledOther | PatchState::InstalledRejected
        )
    });
    let (classification, severity, advisory) = match attributed {
        Some(r) => attributes(inv, r),
        None => (String::new(), String::new(), None),
    };
    let cve_ids = if shows_target {
        cves_up_to_target(inv, v)
    } else {
        String::new()
    };
    let pending_approval_until = match v.reason {
        Reason::NotApproved {
            blocker: Some(Blocker::PendingApproval { at, .. }),
            ..
        } => ts(Some(at)),
        _ => None,
    };
    let dated = target.or(match v.reason {
        Reason::NotApproved {
            record: Some(r), ..
        } => Some(&inv.records[r as usize]),
        _ => None,
    });
    PatchRecord {
        title,
        kb_id: format!("{}.{}", group.name, group.arch),
        classification,
        severity,
        state: v.state,
        installed_time: if shows_target {
            None
        } else {
            installed.and_then(|i| ts(i.installed_time))
        },
        cve_ids,
        compliance_level: v.level,
        installed_version: installed.map(|i| i.version.to_string()),
        target_version: target_version.map(|t| t.to_string()),
        advisory_id: advisory,
        release_date: dated.and_then(|r| ts(r.release_time)),
        release_date_source: dated.map(|r| r.date_source),
        pending_approval_until,
        reason: explain(v, inv, baseline),
    }
}

fn attributes(inv: &Inventory, r: &Record) -> (String, String, Option<String>) {
    match r.notice {
        Some(n) => {
            let notice = &inv.notices[n as usize];
            (
                notice.classification_text.clone(),
                notice.severity_text.clone().unwrap_or_default(),
                Some(notice.id.clone()),
            )
        }
        None => {
            let available = &inv.available[r.available as usize];
            let classification = if inv.family == crate::os::Family::Apt && r.secure {
                "Security".to_string()
            } else {
                String::new()
            };
            (
                classification,
                available.priority_text.clone().unwrap_or_default(),
                None,
            )
        }
    }
}

/// Spec §3.4 step 3: CVEs of every notice for a version above the installed
/// one and up to the target.
fn cves_up_to_target(inv: &Inventory, v: &PatchVerdict) -> String {
    let Some(t) = v.target else {
        return String::new();
    };
    let target_rank = inv.records[t as usize].rank;
    let group = &inv.groups[v.group as usize];
    let cves: BTreeSet<&str> = inv
        .group_records(group)
        .iter()
        .filter(|r| r.vs_installed == Ordering::Greater && r.rank >= target_rank)
        .filter_map(|r| r.notice)
        .flat_map(|n| inv.notices[n as usize].cves.iter().map(String::as_str))
        .collect();
    cves.into_iter().collect::<Vec<_>>().join(",")
}

fn rule_name(rule: u8) -> String {
    format!(
        "approval rule {} (ApprovalRules.PatchRules[{rule}])",
        rule + 1
    )
}

fn list_entry(entry: u16, entries: impl Fn(u16) -> String) -> String {
    if entry == u16::MAX {
        "its advisory, CVE or Bugzilla id".to_string()
    } else {
        format!("entry '{}'", entries(entry))
    }
}

fn explain(v: &PatchVerdict, inv: &Inventory, baseline: &CompiledBaseline) -> String {
    let approved_entry = |e: u16| baseline.approved.get(e).raw.clone();
    let rejected_entry = |e: u16| baseline.rejected.get(e).raw.clone();
    let base = match v.reason {
        Reason::Approved(a) => {
            let mut sources: Vec<String> = (0..16u8)
                .filter(|i| a.rules & (1 << i) != 0)
                .map(rule_name)
                .collect();
            if let Some(e) = a.list_entry {
                sources.push(format!("ApprovedPatches {}", list_entry(e, approved_entry)));
            }
            format!("approved by {}", sources.join(" and "))
        }
        Reason::Rejected { entry } => format!(
            "installed version matches RejectedPatches entry '{}' and the action is BLOCK",
            rejected_entry(entry)
        ),
        Reason::NotApproved { record, blocker } => {
            let what = record.map(|r| {
                let rec = &inv.records[r as usize];
                let version = &inv.available[rec.available as usize].version;
                match rec.notice {
                    Some(n) => format!("{version} ({})", inv.notices[n as usize].id),
                    None => version.to_string(),
                }
            });
            match (blocker, what) {
                (None, _) | (_, None) => {
                    "no newer version is offered and the installed version is not approved"
                        .to_string()
                }
                (Some(b), Some(what)) => format!(
                    "no approved version: {what} {}",
                    blocker_text(b, &rejected_entry)
                ),
            }
        }
    };
    match (v.baseline_state, v.state) {
        (from, PatchState::InstalledPendingReboot) => {
            format!("{base}; installed since the last boot, pending a reboot ({from} after it)")
        }
        (PatchState::Missing, PatchState::Failed) => {
            format!("{base}; the last install did not reach it")
        }
        (_, PatchState::Failed) => format!("{base}; the install override target was not reached"),
        _ => base,
    }
}

fn blocker_text(b: Blocker, rejected_entry: &impl Fn(u16) -> String) -> String {
    match b {
        Blocker::Rejected { entry } => {
            format!("matches RejectedPatches entry '{}'", rejected_entry(entry))
        }
        Blocker::PendingApproval { rule, at } => format!(
            "is approved by {} from {}",
            rule_name(rule),
            ts(Some(at)).map(|t| t.to_string()).unwrap_or_default()
        ),
        Blocker::AfterApproveUntilDate { rule } => {
            format!("was released after the ApproveUntilDate of {}", rule_name(rule))
        }
        Blocker::NonSecurity { rule: Some(rule) } => format!(
            "is not a security update and {} does not enable non-security updates",
            rule_name(rule)
        ),
        Blocker::NonSecurity { rule: None } => "is in ApprovedPatches but is not a security update and ApprovedPatchesEnableNonSecurity is false".to_string(),
        Blocker::GlobalFilters => "is excluded by the global filters".to_string(),
        Blocker::NoRuleMatches => "matches no approval rule's filters".to_string(),
    }
}
