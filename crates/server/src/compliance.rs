//! One node's compliance, computed with `core` (DESIGN decision 1) from
//! what the server stores: a content-addressed inventory, the node's own
//! state, a baseline version and a day.
//!
//! The result depends only on those four, so it is computed once per
//! distinct [`EvalKey`] and fanned out to every node that shares it
//! (decision 2). The node's state enters the key only when it can change a
//! verdict ([`state_key`]): most nodes installed nothing since they booted
//! and share the neutral key.
//!
//! A day's evaluation runs at the last second of that day (UTC): whatever
//! becomes approved during the day counts as approved for the whole day, so
//! compliance shows a patch as `Missing` up to a day before its approval
//! instant, never after it (a fresh version with a zero-day delay is
//! `Missing` at once). Installs never use this: the agent evaluates at the
//! exact instant it installs.

use crate::store::PatchCounts;
use jiff::{SignedDuration, Timestamp};
use patchfleet_core::baseline::Baseline;
use patchfleet_core::eval::{
    CompiledBaseline, EvalOptions, Evaluation, InstallOutcome, Operation, PendingRebootScope,
    evaluate,
};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::report::{Report, ReportContext, render};
use patchfleet_protocol::NodeState;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DAY: i64 = 86_400;

/// What one computed evaluation is shared by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvalKey {
    pub inventory_hash: String,
    pub baseline_id: String,
    pub baseline_version: i64,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub state_key: String,
}

/// The summary stored per node: SSM's status, severity and every count of
/// `InstancePatchState` (spec §4.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// `COMPLIANT` or `NON_COMPLIANT`.
    pub status: String,
    /// AWS's non-compliant severity (floored at INFORMATIONAL); `None` when
    /// compliant.
    pub overall_severity: Option<String>,
    pub counts: PatchCounts,
}

/// A computed evaluation: the summary and the report (patches with their
/// states and reasons), the latter as JSON for the store.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub summary: Summary,
    pub report: Report,
}

/// The day an instant falls on.
pub fn day_of(at: Timestamp) -> i64 {
    at.as_second().div_euclid(DAY)
}

/// 00:00 UTC of `day`.
pub fn day_start(day: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH + SignedDuration::from_secs(day * DAY)
}

/// 23:59:59 UTC of `day`: the instant a day's evaluation runs at.
pub fn day_end(day: i64) -> Timestamp {
    day_start(day) + SignedDuration::from_secs(DAY - 1)
}

/// `""` when the node's state cannot change a verdict (no `NoReboot` install
/// pending, nothing installed after the boot), else a hash of the state.
pub fn state_key(inventory: &NodeFacts, state: &NodeState) -> String {
    let pending = state
        .reboot_state
        .as_ref()
        .is_some_and(|r| !r.pending_reboot.is_empty());
    let installed_after_boot = match state.boot_time {
        Some(boot) => inventory
            .installed
            .iter()
            .any(|p| p.installed_time.is_some_and(|t| t > boot)),
        None => false,
    };
    if !pending && !installed_after_boot {
        return String::new();
    }
    let canonical = serde_json::to_vec(&(&state.boot_time, &state.reboot_state))
        .expect("node state serializes");
    hex::encode(&Sha256::digest(&canonical)[..12])
}

/// The node's facts: the stored inventory with the node's state put back.
pub fn node_facts(inventory: &NodeFacts, state: &NodeState) -> NodeFacts {
    NodeFacts {
        boot_time: state.boot_time,
        reboot_state: state.reboot_state.clone(),
        running_kernel: state.running_kernel.clone(),
        reboot_required: state.reboot_required.clone(),
        ..inventory.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("baseline {id}: {message}")]
    Baseline { id: String, message: String },
    #[error("inventory {hash}: {message}")]
    Inventory { hash: String, message: String },
}

/// Judges `facts` (a node's, see [`node_facts`]) against `baseline` as a
/// Scan on `day`.
pub fn evaluate_scan(
    facts: &NodeFacts,
    inventory_hash: &str,
    baseline: &Baseline,
    day: i64,
    patch_group: &str,
) -> Result<Evaluated, EvalError> {
    let compiled = CompiledBaseline::compile(baseline).map_err(|e| EvalError::Baseline {
        id: baseline.baseline_id.clone().unwrap_or_default(),
        message: e.to_string(),
    })?;
    let inventory = Inventory::prepare(facts).map_err(|e| EvalError::Inventory {
        hash: inventory_hash.to_string(),
        message: e.to_string(),
    })?;
    Ok(evaluate_prepared(&inventory, &compiled, day, patch_group))
}

/// [`evaluate_scan`] on an inventory already prepared (with the node's
/// state) and a baseline already compiled: what a re-computation shares.
pub fn evaluate_prepared(
    inventory: &Inventory,
    compiled: &CompiledBaseline,
    day: i64,
    patch_group: &str,
) -> Evaluated {
    let evaluation = judge(inventory, compiled, day);
    let report = render_report(&evaluation, inventory, compiled, patch_group);
    Evaluated {
        summary: summary_of(&evaluation),
        report,
    }
}

/// The Scan verdicts of the day (the summary comes from them alone; the
/// report, titles and reasons, is rendered only when someone reads it).
pub fn judge(inventory: &Inventory, compiled: &CompiledBaseline, day: i64) -> Evaluation {
    evaluate(
        compiled,
        inventory,
        &EvalOptions {
            at: day_end(day).as_second(),
            operation: Operation::Scan,
            outcome: InstallOutcome::None,
            pending_reboot_scope: PendingRebootScope::default(),
        },
    )
}

/// SSM's `InstancePatchState` and every patch of `evaluation`.
pub fn render_report(
    evaluation: &Evaluation,
    inventory: &Inventory,
    compiled: &CompiledBaseline,
    patch_group: &str,
) -> Report {
    render(
        evaluation,
        inventory,
        compiled,
        &ReportContext {
            patch_group: patch_group.to_string(),
            operation: "Scan".to_string(),
            ..ReportContext::default()
        },
    )
}

/// The summary the fleet is queried by: status, severity, every count of
/// SSM's `InstancePatchState` (the same the report shows).
pub fn summary_of(e: &Evaluation) -> Summary {
    let c = &e.counts;
    Summary {
        status: e.status.as_str().to_string(),
        overall_severity: e.non_compliant_severity().map(|l| l.as_str().to_string()),
        counts: PatchCounts {
            installed: c.installed.into(),
            installed_other: c.installed_other.into(),
            installed_pending_reboot: c.installed_pending_reboot.into(),
            installed_rejected: c.installed_rejected.into(),
            missing: c.missing.into(),
            failed: c.failed.into(),
            not_applicable: c.not_applicable.into(),
            unreported_not_applicable: 0,
            critical_non_compliant: c.critical_non_compliant.into(),
            security_non_compliant: c.security_non_compliant.into(),
            other_non_compliant: c.other_non_compliant.into(),
        },
    }
}

/// A node's timeline from the groups it joined (`memberships`, oldest
/// first) and each group's summary changes (`events`, oldest first): on
/// joining, the group's summary at that instant (or its first one, when
/// the group is evaluated just after); then the group's changes until the
/// next move. An entry equal in verdict (status, severity, counts) to the
/// one before is left out: the timeline lists changes.
pub fn node_timeline<K: Eq + std::hash::Hash>(
    memberships: &[(Timestamp, K)],
    events: &std::collections::HashMap<K, Vec<(Timestamp, serde_json::Value)>>,
) -> Vec<(Timestamp, serde_json::Value)> {
    let verdict = |v: &serde_json::Value| {
        (
            v.get("compliance_status").cloned(),
            v.get("overall_severity").cloned(),
            v.get("counts").cloned(),
        )
    };
    let mut out: Vec<(Timestamp, serde_json::Value)> = Vec::new();
    for (i, (joined, key)) in memberships.iter().enumerate() {
        let until = memberships.get(i + 1).map(|(t, _)| *t);
        let list = events.get(key).map(Vec::as_slice).unwrap_or_default();
        let current = list.iter().rposition(|(at, _)| at <= joined);
        let mut entries: Vec<(Timestamp, &serde_json::Value)> = Vec::new();
        if let Some(c) = current {
            entries.push((*joined, &list[c].1));
        }
        entries.extend(
            list.iter()
                .filter(|(at, _)| at > joined && until.is_none_or(|u| *at < u))
                .map(|(at, v)| (*at, v)),
        );
        for (at, v) in entries {
            if out
                .last()
                .is_none_or(|(_, last)| verdict(last) != verdict(v))
            {
                out.push((at, v.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchfleet_core::facts::RebootState;

    fn example() -> NodeFacts {
        let text = include_str!("../../../examples/facts/al2023-web-01.json");
        NodeFacts::from_json(text).unwrap()
    }

    fn summary(status: &str, missing: i64) -> serde_json::Value {
        serde_json::json!({"compliance_status": status, "overall_severity": "HIGH",
            "counts": {"missing": missing}})
    }

    #[test]
    fn a_node_timeline_follows_its_groups_and_lists_changes_only() {
        let t = |s: i64| Timestamp::UNIX_EPOCH + SignedDuration::from_secs(s);
        let events = std::collections::HashMap::from([
            // Group a: evaluated just after the node joins, then edited twice.
            (
                "a",
                vec![
                    (t(11), summary("NON_COMPLIANT", 3)),
                    (t(20), summary("NON_COMPLIANT", 2)),
                    (t(40), summary("COMPLIANT", 0)),
                ],
            ),
            // Group b: known before the node moves in; same verdict as a's at 20.
            (
                "b",
                vec![
                    (t(5), summary("NON_COMPLIANT", 2)),
                    (t(50), summary("NON_COMPLIANT", 1)),
                ],
            ),
        ]);
        let got = node_timeline(&[(t(10), "a"), (t(30), "b"), (t(60), "a")], &events);
        let at: Vec<i64> = got.iter().map(|(at, _)| at.as_second()).collect();
        // 11 and 20 from a; at 30 b's summary equals a's: left out; 50 from
        // b; a's change at 40 happened while the node was in b: left out;
        // back in a at 60: a's current summary (COMPLIANT).
        assert_eq!(at, vec![11, 20, 50, 60]);
        assert_eq!(got[3].1["compliance_status"], "COMPLIANT");
        assert!(node_timeline::<&str>(&[], &events).is_empty());
        assert!(node_timeline(&[(t(1), "none")], &events).is_empty());
    }

    #[test]
    fn days() {
        let t: Timestamp = "2025-11-12T13:14:15Z".parse().unwrap();
        let d = day_of(t);
        assert_eq!(day_start(d).to_string(), "2025-11-12T00:00:00Z");
        assert_eq!(day_of(day_start(d)), d);
        assert_eq!(day_end(d).to_string(), "2025-11-12T23:59:59Z");
        assert_eq!(day_of(day_end(d)), d);
    }

    #[test]
    fn the_state_key_is_neutral_unless_the_state_can_matter() {
        let facts = example();
        let latest = facts
            .installed
            .iter()
            .filter_map(|p| p.installed_time)
            .max()
            .unwrap();
        let mut state = NodeState {
            boot_time: Some(latest + SignedDuration::from_secs(60)),
            ..NodeState::default()
        };
        assert_eq!(state_key(&facts, &state), "");
        state.running_kernel = Some("6.1".into());
        assert_eq!(
            state_key(&facts, &state),
            "",
            "the kernel changes no verdict"
        );
        state.boot_time = Some(latest - SignedDuration::from_secs(60));
        let k1 = state_key(&facts, &state);
        assert_eq!(k1.len(), 24);
        state.boot_time = Some(latest + SignedDuration::from_secs(60));
        state.reboot_state = Some(RebootState {
            last_no_reboot_install_operation_time: Some(latest),
            pending_reboot: vec!["x.x86_64:1-1".into()],
        });
        let k2 = state_key(&facts, &state);
        assert!(!k2.is_empty() && k2 != k1);
    }

    #[test]
    fn scan_evaluation_matches_the_offline_engine() {
        let facts = example();
        let baseline = patchfleet_core::baseline::predefined::by_name(
            "AWS-AmazonLinux2023DefaultPatchBaseline",
        )
        .unwrap()
        .clone();
        let day = day_of("2025-11-12T00:00:00Z".parse().unwrap());
        let e = evaluate_scan(&facts, "sha256:x", &baseline, day, "web").unwrap();
        let s = &e.report.instance_patch_state;
        assert_eq!(e.summary.counts.missing, i64::from(s.missing_count));
        assert_eq!(s.patch_group, "web");
        assert_eq!(s.operation, "Scan");
        assert_eq!(e.summary.status, e.report.compliance.status);
        assert!(e.summary.counts.missing > 0, "{:?}", e.summary);
        assert_eq!(e.summary.status, "NON_COMPLIANT");
        // The summary a re-computation stores (from the verdicts alone)
        // says what the rendered report says, count for count.
        let counts = serde_json::json!({
            "installed": s.installed_count, "installed_other": s.installed_other_count,
            "installed_pending_reboot": s.installed_pending_reboot_count,
            "installed_rejected": s.installed_rejected_count, "missing": s.missing_count,
            "failed": s.failed_count, "not_applicable": s.not_applicable_count,
            "unreported_not_applicable": s.unreported_not_applicable_count,
            "critical_non_compliant": s.critical_non_compliant_count,
            "security_non_compliant": s.security_non_compliant_count,
            "other_non_compliant": s.other_non_compliant_count,
        });
        assert_eq!(serde_json::to_value(e.summary.counts).unwrap(), counts);
        assert_eq!(
            e.summary.overall_severity.as_deref(),
            e.report
                .compliance
                .non_compliant_severity
                .map(|l| l.as_str())
        );
    }
}
