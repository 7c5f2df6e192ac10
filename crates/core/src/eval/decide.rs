//! The approval decision for one candidate record (spec §3.3):
//!
//! ```text
//! APPROVED(p) = NOT rejected(p)
//!               AND ( list_ok(p) OR (global_ok(p) AND ∃ rule: rule_ok(rule, p)) )
//! ```
//! with the compliance level the highest of all approving sources, and, when
//! not approved, the closest miss as the [`Blocker`] that explains it.

use super::compile::{BoundGroup, CompiledBaseline, Delay};
use super::pattern::{Components, Identity, Trigrams};
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
    /// Per attribute class: (global filters pass, bit i = rule i's filters pass).
    classes: Vec<(bool, u16)>,
    /// Per notice: listed by id, CVE or Bugzilla id in the approved list.
    notice_listed: Vec<bool>,
    /// Per list (approved, rejected), for the current package: prepared yet,
    /// the candidate entries, and an entry matching the package's name (or
    /// name.arch), which matches every version without building any
    /// identity string.
    prepared: [bool; 2],
    candidates: [Vec<u16>; 2],
    group_hit: [Option<u16>; 2],
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
            classes: {
                let global = BoundGroup::bind(&baseline.global, inv);
                let rules: Vec<BoundGroup> = baseline
                    .rules
                    .iter()
                    .map(|r| BoundGroup::bind(&r.group, inv))
                    .collect();
                inv.attr_classes
                    .iter()
                    .map(|attrs| {
                        let mask = rules
                            .iter()
                            .enumerate()
                            .filter(|(_, g)| g.matches(attrs))
                            .fold(0u16, |m, (i, _)| m | 1 << i.min(15));
                        (global.matches(attrs), mask)
                    })
                    .collect()
            },
            notice_listed,
            prepared: [false, false],
            candidates: [Vec::new(), Vec::new()],
            group_hit: [None, None],
            scratch: Vec::new(),
            identity: Identity::default(),
            diagnostics: Vec::new(),
        }
    }

    /// Narrows the list entries to those that may match this package.
    pub fn enter_group(&mut self, _group: &Group) {
        self.prepared = [false, false];
    }

    /// Narrows one list (0 approved, 1 rejected) to the entries that may
    /// match some version of this package, and resolves the entries that
    /// match its versionless forms. Done on the first need in a package:
    /// most packages never need the approved list (no security version) and
    /// many never need the rejected one.
    fn prepare_list(&mut self, which: usize, group: &Group) {
        self.prepared[which] = true;
        let set = if which == 0 {
            &self.baseline.approved
        } else {
            &self.baseline.rejected
        };
        // Most packages start with a byte no entry starts with: then only
        // the `always` entries are candidates and the name is not read.
        let (name, arch) = if set.leads(group.leads) {
            (group.name_lc(), group.arch_lc())
        } else {
            ("", "")
        };
        let candidates = &mut self.candidates[which];
        set.candidates(name, arch, &group.trigrams_all, candidates);
        self.group_hit[which] = None;
        self.scratch.clear();
        self.scratch.extend_from_slice(candidates);
        set.retain_possible(&mut self.scratch, &group.trigrams);
        if !self.scratch.is_empty() {
            self.identity.build_versionless(&group.name, &group.arch);
            self.group_hit[which] = set.first_match(&self.scratch, &self.identity);
        }
    }

    /// The first entry of the approved or rejected list matching this
    /// version. `trigrams` (prepared with the inventory) rule most entries
    /// out before any identity string is built.
    fn list_match(
        &mut self,
        rejected: bool,
        group: &Group,
        version: &Version,
        raw: &str,
        trigrams: Option<&Trigrams>,
        lead: u8,
    ) -> Option<u16> {
        let set = if rejected {
            &self.baseline.rejected
        } else {
            &self.baseline.approved
        };
        if set.is_empty() {
            return None;
        }
        let which = usize::from(rejected);
        if !self.prepared[which] {
            self.prepare_list(which, group);
        }
        let (group_hit, base) = (self.group_hit[which], &self.candidates[which]);
        if group_hit.is_some() {
            return group_hit;
        }
        let possible = |i: u16| trigrams.is_none_or(|t| set.get(i).may_match(t));
        self.scratch.clear();
        self.scratch
            .extend(base.iter().copied().filter(|&i| possible(i)));
        // Versions may start with a letter on RPM: then entries led by that
        // letter may match the version-led forms.
        if !lead.is_ascii_digit() {
            for &i in set.bucket(lead) {
                if possible(i) && !self.scratch.contains(&i) {
                    self.scratch.push(i);
                }
            }
        }
        if self.scratch.is_empty() {
            return None;
        }
        let components = Components::of(&group.name, &group.arch, version, raw);
        self.identity.build_maximal(self.inv.family, &components);
        set.retain_literal(&mut self.scratch, &self.identity);
        if self.scratch.is_empty() {
            return None;
        }
        self.identity.build(self.inv.family, &components);
        set.first_match(&self.scratch, &self.identity)
    }

    /// The rejected entry the installed version matches, if any.
    pub fn installed_rejected(&mut self, group: &Group, installed: &Installed) -> Option<u16> {
        self.list_match(
            true,
            group,
            &installed.version,
            &installed.raw_version,
            Some(&installed.trigrams),
            installed.lead,
        )
    }

    pub fn decide(&mut self, r: &Record) -> Decision {
        let inv = self.inv;
        let group = &inv.groups[r.group as usize];
        let available = &inv.available[r.available as usize];
        let (version, raw) = (&available.version, available.raw_version.as_str());
        let trigrams = Some(&available.trigrams);
        let secure = r.secure || self.zypp;
        let baseline = self.baseline;

        // The list cannot approve a non-security record unless the baseline
        // allows it; then it is not even matched (most records are such:
        // installed versions, notice-less packages). `list_gated` recovers
        // the explanation for the one record a verdict reports.
        let list_can_approve = secure || baseline.approved_non_security;
        let listed_entry = if list_can_approve {
            self.list_match(false, group, version, raw, trigrams, available.lead)
                .or_else(|| {
                    r.notice
                        .filter(|&n| self.notice_listed[n as usize])
                        .map(|_| u16::MAX)
                })
        } else {
            None
        };
        let list_ok = listed_entry.is_some();

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

        let mut blocker = None;
        let (global_ok, rule_mask) = self.classes[r.class as usize];
        if global_ok && rule_mask != 0 {
            for (i, rule) in baseline.rules.iter().enumerate() {
                if rule_mask & (1 << i.min(15)) == 0 {
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
            // Rejection wins over every approval; checked last because only
            // an approval can be overturned by it.
            if let Some(entry) =
                self.list_match(true, group, version, raw, trigrams, available.lead)
            {
                return Decision::Rejected { entry };
            }
            return Decision::Approved(approval);
        }
        Decision::NotApproved(blocker.unwrap_or(
            if global_ok || baseline.global.filters.is_empty() {
                Blocker::NoRuleMatches
            } else {
                Blocker::GlobalFilters
            },
        ))
    }

    /// For the record that explains a package's `InstalledOther`: when no
    /// rule came close, whether the approved list would have approved it but
    /// for ApprovedPatchesEnableNonSecurity (spec §8 #4).
    pub fn refine(&mut self, r: &Record, blocker: Blocker) -> Blocker {
        let weak = matches!(blocker, Blocker::NoRuleMatches | Blocker::GlobalFilters);
        if !weak || r.secure || self.zypp || self.baseline.approved_non_security {
            return blocker;
        }
        let inv = self.inv;
        let group = &inv.groups[r.group as usize];
        let available = &inv.available[r.available as usize];
        let listed = self.list_match(
            false,
            group,
            &available.version,
            &available.raw_version,
            Some(&available.trigrams),
            available.lead,
        );
        if listed.is_some() {
            Blocker::NonSecurity { rule: None }
        } else {
            blocker
        }
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
