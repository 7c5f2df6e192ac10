//! Patch compliance in SSM's shapes, on `services::fleet` (per node: the
//! stored evaluation of its facts; per fleet: the summary aggregate):
//! DescribeInstancePatchStates(ForPatchGroup), DescribeInstancePatches,
//! DescribePatchGroupState and the three compliance listings.

use super::error::{SsmError, not_found_as};
use super::paging::{Paging, epoch, with_token};
use super::{Ctx, SsmResult, input};
use crate::services::fleet::{self, NodeComplianceView};
use crate::services::nodes;
use crate::store::ComplianceFilter;
use patchfleet_core::compliance::PatchState;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DOCUMENT: &str = "AWS-RunPatchBaseline";
const SEVERITIES: [&str; 6] = [
    "CRITICAL",
    "HIGH",
    "MEDIUM",
    "LOW",
    "INFORMATIONAL",
    "UNSPECIFIED",
];

fn fleet_err(e: crate::api::error::ApiError) -> SsmError {
    SsmError::from_api(e, "InvalidInstanceId")
}

/// SSM's `InstancePatchState` of a node's stored compliance.
fn patch_state(c: &NodeComplianceView) -> Value {
    let n = &c.counts;
    let mut v = json!({
        "InstanceId": c.node_id,
        "PatchGroup": c.patch_group.clone().unwrap_or_default(),
        "BaselineId": c.baseline_id,
        "InstalledCount": n.installed,
        "InstalledOtherCount": n.installed_other,
        "InstalledPendingRebootCount": n.installed_pending_reboot,
        "InstalledRejectedCount": n.installed_rejected,
        "MissingCount": n.missing,
        "FailedCount": n.failed,
        "UnreportedNotApplicableCount": n.unreported_not_applicable,
        "NotApplicableCount": n.not_applicable,
        "AvailableSecurityUpdateCount": 0,
        "Operation": "Scan",
        "CriticalNonCompliantCount": n.critical_non_compliant,
        "SecurityNonCompliantCount": n.security_non_compliant,
        "OtherNonCompliantCount": n.other_non_compliant,
    });
    let at = c.scanned_at.unwrap_or(c.evaluated_at);
    v["OperationStartTime"] = epoch(at);
    v["OperationEndTime"] = epoch(at);
    v
}

/// A node's compliance, or `None` when it is not evaluated (yet).
async fn compliance_of(
    ctx: &Ctx<'_>,
    node_id: &str,
    with_patches: bool,
) -> Result<Option<NodeComplianceView>, SsmError> {
    match fleet::node_compliance(ctx.svc, ctx.caller, node_id, with_patches).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(fleet_err(e)),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StatesRequest {
    instance_ids: Vec<String>,
    patch_group: String,
    instance_id: String,
    filters: Vec<StateFilter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StateFilter {
    key: String,
    values: Vec<String>,
    #[serde(rename = "Type")]
    kind: String,
}

pub async fn instance_patch_states(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 100)?;
    let r: StatesRequest = input(v)?;
    let mut ids = r.instance_ids.clone();
    ids.sort();
    ids.dedup();
    let mut states = Vec::new();
    for id in ids {
        if let Some(c) = compliance_of(ctx, &id, false).await? {
            states.push(c);
        }
    }
    let (page, next) = paging.page(ctx, states, |c| c.node_id.clone());
    let out = json!({"InstancePatchStates": page.iter().map(patch_state).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

/// The counts a state filter may name.
fn count_of(c: &NodeComplianceView, key: &str) -> Option<i64> {
    let n = &c.counts;
    Some(match key {
        "InstalledCount" => n.installed,
        "InstalledOtherCount" => n.installed_other,
        "InstalledPendingRebootCount" => n.installed_pending_reboot,
        "InstalledRejectedCount" => n.installed_rejected,
        "MissingCount" => n.missing,
        "FailedCount" => n.failed,
        "UnreportedNotApplicableCount" => n.unreported_not_applicable,
        "NotApplicableCount" => n.not_applicable,
        "AvailableSecurityUpdateCount" => 0,
        _ => return None,
    })
}

/// Every node of `group` that has compliance, in id order from `after`.
async fn group_compliance(ctx: &Ctx<'_>, group: &str) -> Result<Vec<NodeComplianceView>, SsmError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (batch, next) = fleet::list(
            ctx.svc,
            ctx.caller,
            ComplianceFilter {
                patch_group: Some(group.to_string()),
                ..Default::default()
            },
            after.as_deref(),
            1000,
        )
        .await
        .map_err(fleet_err)?;
        out.extend(batch);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

pub async fn instance_patch_states_for_group(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 100)?;
    let r: StatesRequest = input(v)?;
    let mut filters = Vec::new();
    for f in &r.filters {
        let probe = NodeComplianceView {
            node_id: String::new(),
            baseline_id: String::new(),
            baseline_version: 0,
            patch_group: None,
            evaluated_at: ctx.now,
            compliance_status: String::new(),
            overall_severity: String::new(),
            counts: Default::default(),
            scanned_at: None,
            report: None,
        };
        if count_of(&probe, &f.key).is_none() {
            return Err(SsmError::invalid_filter(format!(
                "The filter key {} is not valid: use InstalledCount, InstalledOtherCount, InstalledPendingRebootCount, InstalledRejectedCount, MissingCount, FailedCount, UnreportedNotApplicableCount or NotApplicableCount.",
                f.key
            )));
        }
        let value: i64 = f
            .values
            .first()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                SsmError::invalid_filter(format!(
                    "The filter value of {} must be one integer.",
                    f.key
                ))
            })?;
        filters.push((f.key.clone(), f.kind.clone(), value));
    }
    let mut states = group_compliance(ctx, &r.patch_group).await?;
    states.retain(|c| {
        filters.iter().all(|(k, op, value)| {
            let n = count_of(c, k).unwrap_or(0);
            match op.as_str() {
                "Equal" => n == *value,
                "NotEqual" => n != *value,
                "LessThan" => n < *value,
                "GreaterThan" => n > *value,
                _ => false,
            }
        })
    });
    let (page, next) = paging.page(ctx, states, |c| c.node_id.clone());
    let out = json!({"InstancePatchStates": page.iter().map(patch_state).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

pub async fn patch_group_state(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: StatesRequest = input(v)?;
    let states = group_compliance(ctx, &r.patch_group).await?;
    let with = |f: &dyn Fn(&NodeComplianceView) -> i64| states.iter().filter(|c| f(c) > 0).count();
    Ok(json!({
        "Instances": states.len(),
        "InstancesWithInstalledPatches": with(&|c| c.counts.installed),
        "InstancesWithInstalledOtherPatches": with(&|c| c.counts.installed_other),
        "InstancesWithInstalledPendingRebootPatches": with(&|c| c.counts.installed_pending_reboot),
        "InstancesWithInstalledRejectedPatches": with(&|c| c.counts.installed_rejected),
        "InstancesWithMissingPatches": with(&|c| c.counts.missing),
        "InstancesWithFailedPatches": with(&|c| c.counts.failed),
        "InstancesWithNotApplicablePatches": with(&|c| c.counts.not_applicable),
        "InstancesWithUnreportedNotApplicablePatches": with(&|c| c.counts.unreported_not_applicable),
        "InstancesWithCriticalNonCompliantPatches": with(&|c| c.counts.critical_non_compliant),
        "InstancesWithSecurityNonCompliantPatches": with(&|c| c.counts.security_non_compliant),
        "InstancesWithOtherNonCompliantPatches": with(&|c| c.counts.other_non_compliant),
        "InstancesWithAvailableSecurityUpdates": 0,
    }))
}

/// The patches of a node's report (`core`'s `PatchComplianceData` records).
fn report_patches(c: &NodeComplianceView) -> Vec<Value> {
    c.report
        .as_ref()
        .and_then(|r| r["Patches"].as_array().cloned())
        .unwrap_or_default()
}

fn patch_state_of(p: &Value) -> Option<PatchState> {
    p["State"].as_str().and_then(|s| s.parse().ok())
}

/// `InstalledPendingReboot` ≡ `INSTALLED_PENDING_REBOOT` (spec §2.3).
fn loose(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

async fn existing_node(ctx: &Ctx<'_>, id: &str) -> Result<(), SsmError> {
    nodes::get(ctx.svc, ctx.caller, id)
        .await
        .map_err(not_found_as("InvalidInstanceId", || {
            format!("Instance Id {id} is not valid.")
        }))?;
    Ok(())
}

pub async fn instance_patches(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 100)?;
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Req {
        instance_id: String,
        filters: Vec<crate::api::ssm::compliance::OrchestratorFilter>,
    }
    let r: Req = input(v)?;
    for f in &r.filters {
        if !matches!(
            f.key.as_str(),
            "Classification" | "KBId" | "Severity" | "State"
        ) {
            return Err(SsmError::invalid_filter(format!(
                "The filter key {} is not valid: use Classification, KBId, Severity or State.",
                f.key
            )));
        }
    }
    existing_node(ctx, &r.instance_id).await?;
    let patches = match compliance_of(ctx, &r.instance_id, true).await? {
        Some(c) => report_patches(&c),
        None => Vec::new(),
    };
    let mut rows: Vec<(String, Value)> = Vec::new();
    for p in patches {
        let Some(state) = patch_state_of(&p) else {
            continue;
        };
        let keep = r.filters.iter().all(|f| {
            f.values.is_empty()
                || f.values.iter().any(|v| match f.key.as_str() {
                    "State" => loose(v) == loose(state.as_str()),
                    k => p[k].as_str() == Some(v.as_str()),
                })
        });
        if !keep {
            continue;
        }
        let mut item = json!({
            "Title": p["Title"],
            "KBId": p["KBId"],
            "Classification": p["Classification"],
            "Severity": p["Severity"],
            "State": state.api_enum(),
        });
        if let Some(t) = p
            .get("InstalledTime")
            .and_then(super::model::parse_timestamp)
        {
            item["InstalledTime"] = epoch(t);
        }
        if let Some(c) = p["CVEIds"].as_str() {
            item["CVEIds"] = json!(c);
        }
        // Title carries the version: (title, KB id) is unique per report.
        let key = format!(
            "{}\u{0}{}",
            p["Title"].as_str().unwrap_or(""),
            p["KBId"].as_str().unwrap_or("")
        );
        rows.push((key, item));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next) = paging.page(ctx, rows, |r| r.0.clone());
    let out = json!({"Patches": page.into_iter().map(|r| r.1).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct OrchestratorFilter {
    pub key: String,
    pub values: Vec<String>,
}

// --- Compliance listings (ComplianceStringFilter) ------------------------

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase", default)]
struct ComplianceFilterIn {
    key: Option<String>,
    values: Vec<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    BeginWith,
    LessThan,
    GreaterThan,
}

struct CFilter {
    key: String,
    values: Vec<String>,
    op: Op,
}

fn compile_filters(
    filters: &[ComplianceFilterIn],
    valid: impl Fn(&str) -> bool,
) -> Result<Vec<CFilter>, SsmError> {
    let mut out = Vec::new();
    for f in filters {
        let key = f.key.clone().unwrap_or_default();
        if !valid(&key) {
            return Err(SsmError::invalid_filter(format!(
                "The filter key {key} is not valid for this operation."
            )));
        }
        let op = match f.kind.as_deref().unwrap_or("EQUAL") {
            "EQUAL" | "Equal" => Op::Equal,
            "NOT_EQUAL" | "NotEqual" => Op::NotEqual,
            "BEGIN_WITH" | "BeginWith" => Op::BeginWith,
            "LESS_THAN" | "LessThan" => Op::LessThan,
            _ => Op::GreaterThan,
        };
        if matches!(op, Op::LessThan | Op::GreaterThan) && f.values.len() != 1 {
            return Err(SsmError::invalid_filter(format!(
                "{key}: LESS_THAN and GREATER_THAN take exactly one value."
            )));
        }
        out.push(CFilter {
            key,
            values: f.values.clone(),
            op,
        });
    }
    Ok(out)
}

/// Compares as times, then numbers, then text (spec §2.5).
fn order(have: &str, want: &str) -> std::cmp::Ordering {
    let time = |s: &str| {
        s.parse::<jiff::Timestamp>().ok().or_else(|| {
            s.parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        })
    };
    if let (Some(a), Some(b)) = (time(have), time(want)) {
        return a.cmp(&b);
    }
    if let (Ok(a), Ok(b)) = (have.parse::<f64>(), want.parse::<f64>()) {
        return a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal);
    }
    have.cmp(want)
}

impl CFilter {
    fn accepts(&self, attrs: &BTreeMap<String, String>) -> bool {
        let have = attrs.get(&self.key).map_or("", String::as_str);
        match self.op {
            Op::Equal => self.values.iter().any(|v| v == have),
            Op::NotEqual => self.values.iter().all(|v| v != have),
            Op::BeginWith => self.values.iter().any(|v| have.starts_with(v.as_str())),
            Op::LessThan => !have.is_empty() && order(have, &self.values[0]).is_lt(),
            Op::GreaterThan => !have.is_empty() && order(have, &self.values[0]).is_gt(),
        }
    }
}

fn iso(t: jiff::Timestamp) -> String {
    t.to_string()
}

/// A node's resource-level attributes, the keys of resource filters.
fn resource_attrs(
    c: &NodeComplianceView,
    node: Option<&nodes::NodeView>,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("ComplianceType".into(), "Patch".into());
    a.insert("Status".into(), c.compliance_status.clone());
    a.insert("OverallSeverity".into(), c.overall_severity.clone());
    a.insert("InstanceId".into(), c.node_id.clone());
    a.insert("ResourceId".into(), c.node_id.clone());
    a.insert("ResourceType".into(), "ManagedInstance".into());
    a.insert("ExecutionType".into(), "Command".into());
    a.insert(
        "ExecutionTime".into(),
        iso(c.scanned_at.unwrap_or(c.evaluated_at)),
    );
    a.insert(
        "PatchGroup".into(),
        c.patch_group.clone().unwrap_or_default(),
    );
    a.insert("PatchBaselineId".into(), c.baseline_id.clone());
    if let Some(n) = node {
        for (k, v) in [
            ("PlatformType", n.platform_type.clone()),
            ("PlatformName", n.platform_name.clone()),
            ("PlatformVersion", n.platform_version.clone()),
            ("AgentVersion", n.agent_version.clone()),
            ("ComputerName", n.computer_name.clone()),
            ("IPAddress", n.ip_address.clone()),
            ("InstanceId", n.node_id.clone()),
            ("ResourceType", "ManagedInstance".into()),
            ("PingStatus", n.ping_status.to_string()),
        ] {
            a.insert(format!("AWS:InstanceInformation.{k}"), v);
        }
    }
    a
}

const RESOURCE_KEYS: &[&str] = &[
    "ComplianceType",
    "Status",
    "OverallSeverity",
    "InstanceId",
    "ResourceId",
    "ResourceType",
    "ExecutionType",
    "ExecutionTime",
    "PatchGroup",
    "PatchBaselineId",
];
const INSTANCE_INFORMATION: &[&str] = &[
    "PlatformType",
    "PlatformName",
    "PlatformVersion",
    "AgentVersion",
    "ComputerName",
    "IPAddress",
    "InstanceId",
    "ResourceType",
    "PingStatus",
];

fn resource_key(k: &str) -> bool {
    RESOURCE_KEYS.contains(&k)
        || k.strip_prefix("AWS:InstanceInformation.")
            .is_some_and(|a| INSTANCE_INFORMATION.contains(&a))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ComplianceRequest {
    filters: Vec<ComplianceFilterIn>,
    resource_ids: Option<Vec<String>>,
    resource_types: Option<Vec<String>>,
}

/// Nodes with compliance that pass `filters`, in id order after `after`,
/// at most `limit` (+ whether more follow).
async fn resources(
    ctx: &Ctx<'_>,
    filters: &[CFilter],
    after: Option<String>,
    limit: usize,
) -> Result<(Vec<NodeComplianceView>, bool), SsmError> {
    let needs_node = filters.iter().any(|f| f.key.starts_with("AWS:"));
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let (batch, next) = fleet::list(
            ctx.svc,
            ctx.caller,
            ComplianceFilter::default(),
            cursor.as_deref(),
            1000,
        )
        .await
        .map_err(fleet_err)?;
        for c in batch {
            let node = if needs_node {
                Some(
                    nodes::get(ctx.svc, ctx.caller, &c.node_id)
                        .await
                        .map_err(fleet_err)?,
                )
            } else {
                None
            };
            let attrs = resource_attrs(&c, node.as_ref());
            if filters.iter().all(|f| f.accepts(&attrs)) {
                if out.len() == limit {
                    return Ok((out, true));
                }
                out.push(c);
            }
        }
        match next {
            Some(n) => cursor = Some(n),
            None => return Ok((out, false)),
        }
    }
}

fn severity_summary(counts: &BTreeMap<&str, i64>) -> Value {
    let n = |s: &str| counts.get(s).copied().unwrap_or(0);
    json!({
        "CriticalCount": n("CRITICAL"),
        "HighCount": n("HIGH"),
        "MediumCount": n("MEDIUM"),
        "LowCount": n("LOW"),
        "InformationalCount": n("INFORMATIONAL"),
        "UnspecifiedCount": n("UNSPECIFIED"),
    })
}

fn summary_item(
    compliant: i64,
    compliant_by: &BTreeMap<&str, i64>,
    non_compliant: i64,
    non_compliant_by: &BTreeMap<&str, i64>,
) -> Value {
    json!({
        "CompliantSummary": {"CompliantCount": compliant, "SeveritySummary": severity_summary(compliant_by)},
        "NonCompliantSummary": {"NonCompliantCount": non_compliant, "SeveritySummary": severity_summary(non_compliant_by)},
    })
}

fn severity_key(s: &str) -> &'static str {
    SEVERITIES
        .iter()
        .find(|x| x.eq_ignore_ascii_case(s))
        .copied()
        .unwrap_or("UNSPECIFIED")
}

pub async fn list_summaries(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: ComplianceRequest = input(v)?;
    let filters = compile_filters(&r.filters, resource_key)?;
    let mut compliant = 0;
    let mut non_compliant = 0;
    let mut compliant_by: BTreeMap<&str, i64> = BTreeMap::new();
    let mut non_compliant_by: BTreeMap<&str, i64> = BTreeMap::new();
    if filters.iter().all(|f| f.key == "ComplianceType") {
        // The fleet aggregate: one query however large the fleet.
        for row in fleet::summary(ctx.svc, ctx.caller, None)
            .await
            .map_err(fleet_err)?
        {
            compliant += row.compliant;
            non_compliant += row.non_compliant;
            *compliant_by.entry("UNSPECIFIED").or_default() += row.compliant;
            for (sev, n) in &row.by_severity {
                *non_compliant_by.entry(severity_key(sev)).or_default() += n;
            }
        }
    } else {
        let (all, _) = resources(ctx, &filters, None, usize::MAX).await?;
        for c in all {
            let sev = severity_key(&c.overall_severity);
            if c.compliance_status == "COMPLIANT" {
                compliant += 1;
                *compliant_by.entry(sev).or_default() += 1;
            } else {
                non_compliant += 1;
                *non_compliant_by.entry(sev).or_default() += 1;
            }
        }
    }
    let mut items = Vec::new();
    let patch_type = BTreeMap::from([("ComplianceType".to_string(), "Patch".to_string())]);
    if filters
        .iter()
        .filter(|f| f.key == "ComplianceType")
        .all(|f| f.accepts(&patch_type))
    {
        let mut item = summary_item(compliant, &compliant_by, non_compliant, &non_compliant_by);
        item["ComplianceType"] = json!("Patch");
        items.push(("Patch".to_string(), item));
    }
    let (page, next) = paging.page(ctx, items, |i| i.0.clone());
    let out = json!({"ComplianceSummaryItems": page.into_iter().map(|i| i.1).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

/// A node's patches as compliance items: (attributes, item JSON).
fn items_of(c: &NodeComplianceView) -> Vec<(BTreeMap<String, String>, Value)> {
    let time = c.scanned_at.unwrap_or(c.evaluated_at);
    let mut out = Vec::new();
    for p in report_patches(c) {
        let Some(state) = patch_state_of(&p) else {
            continue;
        };
        let status = if state.is_non_compliant() {
            "NON_COMPLIANT"
        } else {
            "COMPLIANT"
        };
        let severity = severity_key(p["ComplianceLevel"].as_str().unwrap_or("UNSPECIFIED"));
        let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
        let installed = p
            .get("InstalledTime")
            .and_then(super::model::parse_timestamp)
            .map(iso)
            .unwrap_or_default();
        let mut details = BTreeMap::new();
        details.insert("PatchState".to_string(), state.as_str().to_string());
        details.insert("PatchBaselineId".into(), c.baseline_id.clone());
        details.insert(
            "PatchGroup".into(),
            c.patch_group.clone().unwrap_or_default(),
        );
        details.insert("Classification".into(), text("Classification"));
        details.insert("PatchSeverity".into(), text("Severity"));
        details.insert("DocumentName".into(), DOCUMENT.into());
        details.insert("InstalledTime".into(), installed);
        if let Some(cves) = p["CVEIds"].as_str() {
            details.insert("CVEIds".into(), cves.to_string());
        }
        let mut attrs = details.clone();
        attrs.insert("ComplianceType".into(), "Patch".into());
        attrs.insert("Id".into(), text("KBId"));
        attrs.insert("Title".into(), text("Title"));
        attrs.insert("Status".into(), status.into());
        attrs.insert("Severity".into(), severity.into());
        attrs.insert("ExecutionType".into(), "Command".into());
        attrs.insert("ExecutionTime".into(), iso(time));
        attrs.insert("DocumentVersion".into(), String::new());
        attrs.insert("ExecutionId".into(), String::new());
        let item = json!({
            "ComplianceType": "Patch",
            "ResourceType": "ManagedInstance",
            "ResourceId": c.node_id,
            "Id": text("KBId"),
            "Title": text("Title"),
            "Status": status,
            "Severity": severity,
            "ExecutionSummary": {"ExecutionTime": epoch(time), "ExecutionType": "Command"},
            "Details": details,
        });
        out.push((attrs, item));
    }
    out
}

pub async fn list_resource_summaries(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: ComplianceRequest = input(v)?;
    let filters = compile_filters(&r.filters, resource_key)?;
    let (page, more) = resources(ctx, &filters, paging.after.clone(), paging.limit).await?;
    let mut items = Vec::with_capacity(page.len());
    for c in &page {
        let full = compliance_of(ctx, &c.node_id, true)
            .await?
            .unwrap_or_else(|| c.clone());
        let (mut ok, mut bad) = (0, 0);
        let (mut ok_by, mut bad_by): (BTreeMap<&str, i64>, BTreeMap<&str, i64>) =
            Default::default();
        for (attrs, _) in items_of(&full) {
            let sev = severity_key(&attrs["Severity"]);
            if attrs["Status"] == "COMPLIANT" {
                ok += 1;
                *ok_by.entry(sev).or_default() += 1;
            } else {
                bad += 1;
                *bad_by.entry(sev).or_default() += 1;
            }
        }
        let mut item = summary_item(ok, &ok_by, bad, &bad_by);
        item["ComplianceType"] = json!("Patch");
        item["ResourceType"] = json!("ManagedInstance");
        item["ResourceId"] = json!(c.node_id);
        item["Status"] = json!(c.compliance_status);
        item["OverallSeverity"] = json!(severity_key(&c.overall_severity));
        item["ExecutionSummary"] = json!({
            "ExecutionTime": epoch(c.scanned_at.unwrap_or(c.evaluated_at)),
            "ExecutionType": "Command",
        });
        items.push(item);
    }
    let mut out = json!({"ResourceComplianceSummaryItems": items});
    if more && let Some(last) = page.last() {
        out["NextToken"] = json!(paging.token(ctx, &last.node_id));
    }
    Ok(out)
}

const ITEM_KEYS: &[&str] = &[
    "ComplianceType",
    "Id",
    "Title",
    "Status",
    "Severity",
    "ExecutionId",
    "ExecutionType",
    "ExecutionTime",
    "DocumentName",
    "DocumentVersion",
    "Classification",
    "PatchBaselineId",
    "PatchSeverity",
    "PatchState",
    "PatchGroup",
    "InstalledTime",
];

pub async fn list_items(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: ComplianceRequest = input(v)?;
    let filters = compile_filters(&r.filters, |k| ITEM_KEYS.contains(&k))?;
    if let Some(types) = &r.resource_types
        && let Some(bad) = types.iter().find(|t| *t != "ManagedInstance")
    {
        return Err(SsmError::client(
            "InvalidResourceType",
            format!(
                "The resource type {bad} is not valid: compliance is kept for ManagedInstance resources."
            ),
        ));
    }
    let ids = match r.resource_ids.as_deref() {
        Some([one]) => one.clone(),
        _ => {
            return Err(SsmError::client(
                "InvalidResourceId",
                "ListComplianceItems takes exactly one managed node id in ResourceIds.",
            ));
        }
    };
    nodes::get(ctx.svc, ctx.caller, &ids)
        .await
        .map_err(not_found_as("InvalidResourceId", || {
            format!("The resource ID {ids} is not valid. Verify the ID and try again.")
        }))?;
    let items = match compliance_of(ctx, &ids, true).await? {
        Some(c) => items_of(&c),
        None => Vec::new(),
    };
    let mut rows: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(attrs, _)| filters.iter().all(|f| f.accepts(attrs)))
        .map(|(attrs, item)| (format!("{}\u{0}{}", attrs["Title"], attrs["Id"]), item))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, next) = paging.page(ctx, rows, |r| r.0.clone());
    let out = json!({"ComplianceItems": page.into_iter().map(|r| r.1).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}
