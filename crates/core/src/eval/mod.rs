//! Evaluation: a prepared inventory judged against a compiled baseline at
//! an instant (spec §3–4). Pure and deterministic: the same inputs give the
//! same [`Evaluation`], whatever the order the facts listed things in.
//!
//! The result is compact (indices into the inventory, enums, no strings) so
//! that a server can evaluate many inventories quickly and render only what
//! it shows; [`crate::report`] turns it into SSM-shaped records.

mod compile;
mod decide;
mod overlay;
pub mod pattern;
mod plan;
mod reboot;

pub use compile::{CompileError, CompiledBaseline};
pub use decide::{Approval, Blocker, Decision};
pub use overlay::PendingRebootScope;
pub use plan::{CompiledOverride, InstallPlan, PlanSource, PlannedInstall};
pub use reboot::{RebootOption, reboot_after};

use crate::compliance::{ComplianceLevel, ComplianceStatus, PatchState};
use crate::inventory::{Group, Inventory};
use decide::Decider;
use serde::Serialize;
use std::cmp::Ordering;

/// What the operation is; Install adds an install plan to the result.
#[derive(Debug, Clone, Copy, Default)]
pub enum Operation<'a> {
    #[default]
    Scan,
    Install {
        /// Spec §3.7: install these instead of the baseline's targets.
        override_list: Option<&'a CompiledOverride>,
    },
}

/// After an Install ran, the re-scan reports what did not get installed.
#[derive(Debug, Clone, Default)]
pub enum InstallOutcome {
    /// Not a report after an install.
    #[default]
    None,
    /// A baseline install ran: every patch still `Missing` becomes `Failed`.
    Baseline,
    /// An override install ran: those of its targets not reached are
    /// `Failed`; other patches keep their baseline state (spec §3.7).
    Override(Vec<PlannedInstall>),
}

#[derive(Debug, Clone)]
pub struct EvalOptions<'a> {
    /// The evaluation instant, epoch seconds.
    pub at: i64,
    pub operation: Operation<'a>,
    pub outcome: InstallOutcome,
    pub pending_reboot_scope: PendingRebootScope,
}

impl EvalOptions<'_> {
    pub fn scan_at(at: i64) -> Self {
        EvalOptions {
            at,
            operation: Operation::Scan,
            outcome: InstallOutcome::None,
            pending_reboot_scope: PendingRebootScope::default(),
        }
    }
}

/// Why a package has its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The target version was approved by these sources.
    Approved(Approval),
    /// No approved version exists; `blocker` says why for the newest version
    /// above the installed one (`None` when there is no newer version).
    NotApproved {
        record: Option<u32>,
        blocker: Option<Blocker>,
    },
    /// The installed version matches this rejected-list entry (BLOCK).
    Rejected { entry: u16 },
}

/// The verdict for one installed `name.arch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchVerdict {
    pub group: u32,
    pub state: PatchState,
    /// The state from the baseline alone, before pending-reboot and
    /// install-failure overlays.
    pub baseline_state: PatchState,
    /// The record of the target version `H` (spec §3.4), if any.
    pub target: Option<u32>,
    pub level: ComplianceLevel,
    pub reason: Reason,
}

/// Every count of `InstancePatchState` that evaluation decides (spec §4.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PatchCounts {
    pub installed: u32,
    pub installed_other: u32,
    pub installed_pending_reboot: u32,
    pub installed_rejected: u32,
    pub missing: u32,
    pub failed: u32,
    pub not_applicable: u32,
    pub critical_non_compliant: u32,
    pub security_non_compliant: u32,
    pub other_non_compliant: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// One per installed `name.arch`, in name order.
    pub verdicts: Vec<PatchVerdict>,
    /// Packages not installed that have an approved version: counted in
    /// `NotApplicableCount`; Patch Manager never lists them on Linux, but they
    /// are kept here for those who want to see them (spec §8 #19).
    pub not_applicable: Vec<PatchVerdict>,
    pub counts: PatchCounts,
    pub status: ComplianceStatus,
    /// Highest compliance level among non-compliant patches (may be
    /// UNSPECIFIED); `None` when compliant.
    pub overall_severity: Option<ComplianceLevel>,
    pub plan: Option<InstallPlan>,
    pub diagnostics: Vec<String>,
}

impl Evaluation {
    /// AWS's summary floors the severity at INFORMATIONAL (spec §4.2).
    pub fn non_compliant_severity(&self) -> Option<ComplianceLevel> {
        self.overall_severity
            .map(|l| l.max(ComplianceLevel::Informational))
    }
}

/// Judges `inv` against `baseline` at `opts.at`.
pub fn evaluate(
    baseline: &CompiledBaseline,
    inv: &Inventory,
    opts: &EvalOptions<'_>,
) -> Evaluation {
    let mut decider = Decider::new(baseline, inv, opts.at);
    let mut diagnostics = Vec::new();
    if baseline.os != inv.os {
        diagnostics.push(format!(
            "baseline '{}' is for {} but the node runs {}",
            baseline.name, baseline.os, inv.os
        ));
    }
    let keep_older = inv.package_manager.considers_older_approved_versions();
    let mut verdicts = Vec::with_capacity(inv.groups.len() / 2);
    let mut not_applicable = Vec::new();

    for (g, group) in inv.groups.iter().enumerate() {
        let g = g as u32;
        decider.enter_group(group);
        let Judged {
            best,
            explain,
            newer_exists,
        } = judge(&mut decider, inv, group, keep_older);
        let Some(inst) = group.installed else {
            if let Some((idx, approval)) = best {
                not_applicable.push(PatchVerdict {
                    group: g,
                    state: PatchState::NotApplicable,
                    baseline_state: PatchState::NotApplicable,
                    target: Some(idx),
                    level: approval.level,
                    reason: Reason::Approved(approval),
                });
            }
            continue;
        };
        let verdict = match best {
            Some((idx, approval)) => {
                let state = if inv.records[idx as usize].vs_installed == Ordering::Greater {
                    PatchState::Missing
                } else {
                    PatchState::Installed
                };
                PatchVerdict {
                    group: g,
                    state,
                    baseline_state: state,
                    target: Some(idx),
                    level: approval.level,
                    reason: Reason::Approved(approval),
                }
            }
            None => match baseline
                .block
                .then(|| decider.installed_rejected(group, &inv.installed[inst as usize]))
                .flatten()
            {
                Some(entry) => PatchVerdict {
                    group: g,
                    state: PatchState::InstalledRejected,
                    baseline_state: PatchState::InstalledRejected,
                    target: None,
                    level: ComplianceLevel::Unspecified,
                    reason: Reason::Rejected { entry },
                },
                _ => PatchVerdict {
                    group: g,
                    state: PatchState::InstalledOther,
                    baseline_state: PatchState::InstalledOther,
                    target: None,
                    level: ComplianceLevel::Unspecified,
                    reason: Reason::NotApproved {
                        record: explain.map(|(i, _)| i),
                        blocker: explain
                            .filter(|_| newer_exists)
                            .map(|(i, b)| decider.refine(&inv.records[i as usize], b)),
                    },
                },
            },
        };
        verdicts.push(verdict);
    }
    diagnostics.extend(decider.take_diagnostics());

    overlay::pending_reboot(inv, &mut verdicts, opts.pending_reboot_scope);
    overlay::install_outcome(inv, &mut verdicts, &opts.outcome);

    let plan = match opts.operation {
        Operation::Scan => None,
        Operation::Install { override_list } => Some(match override_list {
            None => plan::from_verdicts(baseline, inv, &verdicts),
            Some(list) => plan::from_override(baseline, inv, list),
        }),
    };

    let counts = count(inv, &verdicts, not_applicable.len() as u32);
    let overall_severity = verdicts
        .iter()
        .filter(|v| v.state.is_non_compliant())
        .map(|v| v.level)
        .max();
    Evaluation {
        verdicts,
        not_applicable,
        counts,
        status: if overall_severity.is_some() {
            ComplianceStatus::NonCompliant
        } else {
            ComplianceStatus::Compliant
        },
        overall_severity,
        plan,
        diagnostics,
    }
}

/// What the records of one package came to.
struct Judged {
    /// The target: the newest approved record (highest level among equals).
    best: Option<(u32, Approval)>,
    /// The newest record above the installed version that is not approved.
    explain: Option<(u32, Blocker)>,
    newer_exists: bool,
}

/// Walks a package's records newest first, stopping at the version floor
/// (below the installed version, unless yum keeps older approved versions)
/// or below the target once it is found (spec §3.4).
fn judge(decider: &mut Decider<'_>, inv: &Inventory, group: &Group, keep_older: bool) -> Judged {
    let installed = group.installed.is_some();
    let mut judged = Judged {
        best: None,
        explain: None,
        newer_exists: false,
    };
    for (offset, r) in inv.group_records(group).iter().enumerate() {
        let idx = group.records.start + offset as u32;
        if installed && !keep_older && r.vs_installed == Ordering::Less {
            break;
        }
        if let Some((b, _)) = judged.best
            && inv.records[b as usize].rank != r.rank
        {
            break;
        }
        let newer = r.vs_installed == Ordering::Greater;
        judged.newer_exists |= newer;
        let blocker = match decider.decide(r) {
            Decision::Approved(approval) => {
                if judged.best.is_none_or(|(_, a)| approval.level > a.level) {
                    judged.best = Some((idx, approval));
                }
                if !installed {
                    // Not installed: one approved version makes it NotApplicable.
                    break;
                }
                continue;
            }
            Decision::Rejected { entry } => Blocker::Rejected { entry },
            Decision::NotApproved(blocker) => blocker,
        };
        if judged.explain.is_none() && newer {
            judged.explain = Some((idx, blocker));
        }
    }
    judged
}

/// Whether a verdict's reported classification is `Security`.
pub fn is_security(inv: &Inventory, verdict: &PatchVerdict) -> bool {
    if verdict.state == PatchState::InstalledRejected {
        return false;
    }
    let Some(t) = verdict.target else {
        return false;
    };
    let r = &inv.records[t as usize];
    match r.notice {
        Some(n) => inv.notices[n as usize].classification_text == "Security",
        None => inv.family == crate::os::Family::Apt && r.secure,
    }
}

fn count(inv: &Inventory, verdicts: &[PatchVerdict], not_applicable: u32) -> PatchCounts {
    let mut c = PatchCounts {
        not_applicable,
        ..PatchCounts::default()
    };
    for v in verdicts {
        match v.state {
            PatchState::Installed => c.installed += 1,
            PatchState::InstalledOther => c.installed_other += 1,
            PatchState::InstalledPendingReboot => c.installed_pending_reboot += 1,
            PatchState::InstalledRejected => c.installed_rejected += 1,
            PatchState::Missing => c.missing += 1,
            PatchState::Failed => c.failed += 1,
            PatchState::NotApplicable => c.not_applicable += 1,
        }
        if v.state.is_non_compliant() {
            let critical = v.level == ComplianceLevel::Critical;
            let security = is_security(inv, v);
            c.critical_non_compliant += u32::from(critical);
            c.security_non_compliant += u32::from(security);
            c.other_non_compliant += u32::from(!critical && !security);
        }
    }
    c
}
