//! The approval decision for one candidate record (spec §3.3):
//!
//! ```text
//! APPROVED(p) = NOT rejected(p)
//!               AND ( list_ok(p) OR (global_ok(p) AND ∃ rule: rule_ok(rule, p)) )
//! ```
//! with the compliance level the highest of all approving sources, and, when
//! not approved, the closest miss as the [`Blocker`] that explains it.

use super::compile::{BoundGroup, CompiledBaseline, Delay};
use super::pattern::{Components, Identity};
use crate::compliance::ComplianceLevel;
use crate::inventory::{Group, Installed, Inventory, Record, Version};
use crate::os::Family;
use serde::Serialize;

/// The sources that approved a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub level: ComplianceLevel,
    /// Bit i set: approval rule i (0-based) approved it.
    pub rules: u16,
    /// The approved list approved it: the entry, or `u16::MAX` when the
    /// notice's id, CVE or Bugzilla id was listed.
    pub list_entry: Option<u16>,
}

/// Why a record is not approved, the most specific miss first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Blocker {
    /// Matches a rejected-list entry: rejection wins over every approval.
    Rejected { entry: u16 },
    /// A rule matched but its delay has not passed; approved from `at`
    /// (epoch seconds) on.
    PendingApproval { rule: u8, at: i64 },
    /// A rule matched, but the release is after its ApproveUntilDate.
    AfterApproveUntilDate { rule: u8 },
    /// Approved by the list or a rule only if non-security updates were enabled.
    NonSecurity { rule: Option<u8> },
    /// The baseline's global filters exclude it.
    GlobalFilters,
    /// No rule's filters match it.
    NoRuleMatches,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved(Approval),
    Rejected { entry: u16 },
    NotApproved(Blocker),
}

pub(super) struct Decider<'a> {
    baseline: &'a CompiledBaseline,
    inv: &'a Inventory,
    at: i64,
    zypp: bool,
    global: BoundGroup,
    rules: Vec<BoundGroup>,
    /// Per notice: listed by id, CVE or Bugzilla id in the approved list.
    notice_listed: Vec<bool>,
    approved_candidates: Vec<u16>,
    rejected_candidates: Vec<u16>,
    scratch: Vec<u16>,
    identity: Identity,
    diagnostics: Vec<String>,
}

impl<'a> Decider<'a> {
    pub fn new(baseline: &'a CompiledBaseline, inv: &'a Inventory, at: i64) -> Self {
        let notice_listed = if baseline.approved_ids.is_empty() {
            vec![false; inv.notices.len()]
        } else {
            inv.notices
                .iter()
                .map(|n| {
                    baseline.approved_ids.contains(&n.id)
                        || n.cves.iter().any(|c| baseline.approved_ids.contains(c))
                        || n.bugzilla.iter().any(|b| baseline.approved_ids.contains(b))
                })
                .collect()
        };
        Decider {
            baseline,
            inv,
            at,
            zypp: inv.family == Family::Zypp,
            global: BoundGroup::bind(&baseline.global, inv),
            rules: baseline
                .rules
                .iter()
                .map(|r| BoundGroup::bind(&r.group, inv))
                .collect(),
            notice_listed,
            approved_candidates: Vec::new(),
            rejected_candidates: Vec::new(),
            scratch: Vec::new(),
            identity: Identity::default(),
            diagnostics: Vec::new(),
        }
    }

    /// Narrows the list entries to those that may match this package.
    pub fn enter_group(&mut self, group: &Group) {
        self.baseline
            .approved
            .candidates(&group.name_lc, &mut self.approved_candidates);
        self.baseline
            .rejected
            .candidates(&group.name_lc, &mut self.rejected_candidates);
    }

    fn build_identity(&mut self, group: &Group, version: &Version, raw: &str) {
        let components = Components::of(&group.name, &group.arch, version, raw);
        self.identity.build(self.inv.family, &components);
    }

    /// Candidates for one version: the group's, plus the version-led ones
    /// when the version starts with a letter.
    fn version_candidates(&mut self, rejected: bool, version: &Version) -> bool {
        let base = if rejected {
            &self.rejected_candidates
        } else {
            &self.approved_candidates
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(base);
        let first = match version {
            Version::Rpm(evr) => evr.version().as_bytes().first().copied(),
            Version::Deb(v) => v.upstream().as_bytes().first().copied(),
        };
        if let Some(first) = first {
            let set = if rejected {
                &self.baseline.rejected
            } else {
                &self.baseline.approved
            };
            set.add_version_candidates(first.to_ascii_lowercase(), &mut self.scratch);
        }
        !self.scratch.is_empty()
    }

    fn list_match(
        &mut self,
        rejected: bool,
        group: &Group,
        version: &Version,
        raw: &str,
    ) -> Option<u16> {
        let set = if rejected {
            &self.baseline.rejected
        } else {
            &self.baseline.approved
        };
        if set.is_empty() || !self.version_candidates(rejected, version) {
            return None;
        }
        self.build_identity(group, version, raw);
        set.first_match(&self.scratch, &self.identity)
    }

    /// The rejected entry the installed version matches, if any.
    pub fn installed_rejected(&mut self, group: &Group, installed: &Installed) -> Option<u16> {
        self.list_match(true, group, &installed.version, &installed.raw_version)
    }

    pub fn decide(&mut self, _index: u32, r: &Record) -> Decision {
        let inv = self.inv;
        let group = &inv.groups[r.group as usize];
        let available = &inv.available[r.available as usize];
        let (version, raw) = (&available.version, available.raw_version.as_str());
        if let Some(entry) = self.list_match(true, group, version, raw) {
            return Decision::Rejected { entry };
        }
        let secure = r.secure || self.zypp;
        let baseline = self.baseline;

        let listed_entry = self.list_match(false, group, version, raw).or_else(|| {
            r.notice
                .filter(|&n| self.notice_listed[n as usize])
                .map(|_| u16::MAX)
        });
        let list_ok = listed_entry.is_some() && (secure || baseline.approved_non_security);

        let mut approval = Approval {
            level: ComplianceLevel::Unspecified,
            rules: 0,
            list_entry: None,
        };
        let mut approved = false;
        if list_ok {
            approved = true;
            approval.level = baseline.approved_level;
            approval.list_entry = listed_entry;
        }

        let mut blocker = if listed_entry.is_some() && !list_ok {
            Some(Blocker::NonSecurity { rule: None })
        } else {
            None
        };
        let global_ok = self.global.matches(r);
        if global_ok {
            for (i, (rule, bound)) in baseline.rules.iter().zip(&self.rules).enumerate() {
                if !bound.matches(r) {
                    continue;
                }
                let i8 = i as u8;
                if !(secure || rule.non_security) {
                    blocker = stronger(blocker, Blocker::NonSecurity { rule: Some(i8) });
                    continue;
                }
                match time_check(rule.delay, r.release_time, self.at) {
                    Ok(()) => {
                        approved = true;
                        approval.rules |= 1 << i.min(15);
                        approval.level = approval.level.max(rule.level);
                    }
                    Err(TimeMiss::Pending(at)) => {
                        blocker = stronger(blocker, Blocker::PendingApproval { rule: i8, at })
                    }
                    Err(TimeMiss::AfterUntil) => {
                        blocker = stronger(blocker, Blocker::AfterApproveUntilDate { rule: i8 })
                    }
                }
            }
        }
        if approved {
            return Decision::Approved(approval);
        }
        Decision::NotApproved(blocker.unwrap_or(if global_ok || baseline.global.filters.is_empty() {
            Blocker::NoRuleMatches
        } else {
            Blocker::GlobalFilters
        }))
    }

    pub fn take_diagnostics(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diagnostics)
    }
}

enum TimeMiss {
    /// Approved from this instant on.
    Pending(i64),
    AfterUntil,
}

/// Spec §1.3: `R < now − N days`; `R < D + 1 day`; a future-dated release
/// is never approved by a delay rule. Without a release time (APT without
/// first-seen data) delays do not apply.
fn time_check(delay: Delay, release: Option<i64>, now: i64) -> Result<(), TimeMiss> {
    let Some(r) = release else {
        return Ok(());
    };
    match delay {
        Delay::None => Ok(()),
        Delay::AfterSeconds(secs) => {
            let threshold = r.saturating_add(secs);
            if threshold < now {
                Ok(())
            } else {
                Err(TimeMiss::Pending(threshold.saturating_add(1)))
            }
        }
        Delay::Before(cutoff) => {
            if r < cutoff {
                Ok(())
            } else {
                Err(TimeMiss::AfterUntil)
            }
        }
    }
}

fn rank(b: &Blocker) -> u8 {
    match b {
        Blocker::NoRuleMatches | Blocker::GlobalFilters => 0,
        Blocker::NonSecurity { .. } => 1,
        Blocker::AfterApproveUntilDate { .. } => 2,
        Blocker::PendingApproval { .. } => 3,
        Blocker::Rejected { .. } => 4,
    }
}

fn stronger(current: Option<Blocker>, new: Blocker) -> Option<Blocker> {
    match current {
        Some(c) if rank(&c) > rank(&new) => Some(c),
        Some(Blocker::PendingApproval { at, rule }) => match new {
            Blocker::PendingApproval { at: new_at, .. } if new_at < at => Some(new),
            _ => Some(Blocker::PendingApproval { at, rule }),
        },
        _ => Some(new),
    }
}
