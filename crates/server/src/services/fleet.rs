//! Fleet compliance: computed by `core` once per distinct evaluation key
//! (inventory, baseline version, day, node state when it matters) and fanned
//! out to the nodes that share it (DESIGN decisions 1 and 2). A baseline
//! edit, a patch-group change or a new day re-computes without any re-scan.

use super::{Caller, Services, baselines};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Action;
use crate::compliance::{EvalKey, Summary, day_of, evaluate_scan, node_facts, state_key};
use crate::store::{
    ComplianceFilter, Evaluation, EvaluationKey, Node, NodeCompliance, NodeFilter, PatchCounts,
    SummaryGroupBy,
};
use jiff::Timestamp;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::os::{Family, OperatingSystem};
use patchfleet_protocol::NodeState;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Parsed inventories by content hash, least recently used evicted first.
/// A stored inventory never changes (its hash is its content; first-seen
/// dates are set when it is stored), so entries never go stale.
/// The last use of each entry (a counter) and the entries.
type Lru = (u64, HashMap<String, (Arc<NodeFacts>, u64)>);

pub struct InventoryCache {
    entries: Mutex<Lru>,
    capacity: usize,
}

impl Default for InventoryCache {
    fn default() -> Self {
        InventoryCache {
            entries: Mutex::new((0, HashMap::new())),
            capacity: 1024,
        }
    }
}

impl InventoryCache {
    pub fn get(&self, hash: &str) -> Option<Arc<NodeFacts>> {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (tick, map) = &mut *g;
        *tick += 1;
        let now = *tick;
        map.get_mut(hash).map(|(f, used)| {
            *used = now;
            f.clone()
        })
    }

    pub fn insert(&self, hash: &str, facts: Arc<NodeFacts>) {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (tick, map) = &mut *g;
        *tick += 1;
        let now = *tick;
        if map.len() >= self.capacity
            && !map.contains_key(hash)
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(hash.to_string(), (facts, now));
    }
}

/// What one re-computation did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recomputed {
    pub nodes: usize,
    pub evaluations_computed: usize,
    pub evaluations_reused: usize,
    pub changed: usize,
    /// Nodes whose evaluation failed (logged); the others went on.
    pub failed: usize,
}

/// Which baseline judges a node: its patch group's for its OS, else the
/// OS's default (spec §6.2). Read once per re-computation.
pub(crate) struct Resolver {
    groups: Vec<crate::store::PatchGroupRecord>,
    defaults: HashMap<String, Option<String>>,
}

impl Resolver {
    pub(crate) async fn load(svc: &Services) -> ApiResult<Resolver> {
        Ok(Resolver {
            groups: svc.store.list_patch_groups().await?,
            defaults: HashMap::new(),
        })
    }

    pub(crate) async fn baseline_for(
        &mut self,
        svc: &Services,
        os: OperatingSystem,
        patch_group: Option<&str>,
    ) -> ApiResult<Option<String>> {
        if let Some(g) = patch_group
            && let Some(r) = self
                .groups
                .iter()
                .find(|r| r.patch_group == g && r.operating_system == os.as_str())
        {
            return Ok(Some(r.baseline_id.clone()));
        }
        if let Some(d) = self.defaults.get(os.as_str()) {
            return Ok(d.clone());
        }
        let d = baselines::default_id(svc, os).await?;
        self.defaults.insert(os.as_str().to_string(), d.clone());
        Ok(d)
    }
}

/// Re-computes the compliance of `node_ids` (every node with facts when
/// `None`) at `now`.
pub async fn recompute(
    svc: &Services,
    node_ids: Option<&[String]>,
    now: Timestamp,
) -> ApiResult<Recomputed> {
    let day = day_of(now);
    let nodes = svc
        .store
        .nodes_to_evaluate(node_ids.unwrap_or_default())
        .await?;
    let mut resolver = Resolver::load(svc).await?;
    let mut inventories: HashMap<String, Arc<NodeFacts>> = HashMap::new();
    let mut baselines_loaded: HashMap<String, (patchfleet_core::baseline::Baseline, i64)> =
        HashMap::new();
    let mut computed: HashMap<EvalKey, Summary> = HashMap::new();
    let mut out = Recomputed::default();
    let mut records: Vec<NodeCompliance> = Vec::new();
    for node in nodes {
        let hash = node.inventory_hash.clone();
        let Ok(os) = node.operating_system.parse::<OperatingSystem>() else {
            continue;
        };
        let Some(baseline_id) = resolver
            .baseline_for(svc, os, node.patch_group.as_deref())
            .await?
        else {
            continue;
        };
        if !baselines_loaded.contains_key(&baseline_id) {
            let (b, _, v) = baselines::load(svc, &baseline_id, None).await?;
            baselines_loaded.insert(baseline_id.clone(), (b, v.unwrap_or(0)));
        }
        let (baseline, version) = &baselines_loaded[&baseline_id];
        if !inventories.contains_key(&hash) {
            inventories.insert(hash.clone(), cached_inventory(svc, &hash).await?);
        }
        let inventory = &inventories[&hash];
        let state: NodeState = node
            .node_state
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let key = EvalKey {
            inventory_hash: hash.clone(),
            baseline_id: baseline_id.clone(),
            baseline_version: *version,
            day,
            state_key: state_key(inventory, &state),
        };
        let store_key = EvaluationKey {
            inventory_hash: key.inventory_hash.clone(),
            baseline_id: key.baseline_id.clone(),
            baseline_version: key.baseline_version,
            eval_day: key.day,
            state_key: key.state_key.clone(),
        };
        let summary = match computed.get(&key) {
            Some(s) => {
                out.evaluations_reused += 1;
                s.clone()
            }
            None => {
                let summary = match svc.store.get_evaluation(&store_key).await? {
                    Some(e) => {
                        out.evaluations_reused += 1;
                        serde_json::from_value(e.summary).map_err(ApiError::internal)?
                    }
                    None => {
                        let facts = node_facts(inventory, &state);
                        let evaluated = match evaluate_scan(
                            &facts,
                            &hash,
                            baseline,
                            day,
                            node.patch_group.as_deref().unwrap_or(""),
                        ) {
                            Ok(e) => e,
                            // One bad inventory must not stop the fleet's re-computation.
                            Err(e) => {
                                tracing::error!("{}: {e}", node.node_id);
                                out.failed += 1;
                                continue;
                            }
                        };
                        out.evaluations_computed += 1;
                        svc.store
                            .put_evaluation(&Evaluation {
                                key: store_key.clone(),
                                summary: serde_json::to_value(&evaluated.summary)
                                    .map_err(ApiError::internal)?,
                                patches_json: serde_json::to_vec(&evaluated.report)
                                    .map_err(ApiError::internal)?,
                                created_at: now,
                            })
                            .await?;
                        evaluated.summary
                    }
                };
                computed.insert(key.clone(), summary.clone());
                summary
            }
        };
        let record = NodeCompliance {
            node_id: node.node_id.clone(),
            baseline_id: baseline_id.clone(),
            baseline_version: *version,
            patch_group: node.patch_group.clone(),
            operating_system: node.operating_system.clone(),
            key: store_key,
            evaluated_at: now,
            compliance_status: summary.status.clone(),
            overall_severity: summary
                .overall_severity
                .clone()
                .unwrap_or_else(|| "UNSPECIFIED".into()),
            counts: summary.counts,
            operation: "Scan".into(),
            operation_start: node.scanned_at,
            operation_end: node.scanned_at,
        };
        records.push(record);
        if records.len() >= 1000 {
            write_records(svc, &mut records, &mut out).await?;
        }
    }
    write_records(svc, &mut records, &mut out).await?;
    Ok(out)
}

/// The nodes' summaries, in bulk; a node deregistered meanwhile has
/// nothing to record.
async fn write_records(
    svc: &Services,
    records: &mut Vec<NodeCompliance>,
    out: &mut Recomputed,
) -> ApiResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    for changed in svc
        .store
        .put_node_compliances(records)
        .await?
        .into_iter()
        .flatten()
    {
        out.changed += usize::from(changed);
        out.nodes += 1;
    }
    records.clear();
    Ok(())
}

pub(crate) async fn nodes_with_facts(
    svc: &Services,
    node_ids: Option<&[String]>,
) -> ApiResult<Vec<Node>> {
    let filter = NodeFilter {
        node_ids: node_ids.map(<[String]>::to_vec).unwrap_or_default(),
        ..NodeFilter::default()
    };
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = svc
            .store
            .list_nodes(&filter, after.as_deref(), 1000)
            .await?;
        out.extend(
            page.items
                .into_iter()
                .filter(|n| n.inventory_hash.is_some()),
        );
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    Ok(out)
}

/// [`load_inventory`] through the replica's cache.
pub(crate) async fn cached_inventory(svc: &Services, hash: &str) -> ApiResult<Arc<NodeFacts>> {
    if let Some(f) = svc.inventories.get(hash) {
        return Ok(f);
    }
    let f = Arc::new(load_inventory(svc, hash).await?);
    svc.inventories.insert(hash, f.clone());
    Ok(f)
}

/// A stored inventory as facts; on APT, with the fleet's first-seen dates
/// (approval delays count from them).
pub(crate) async fn load_inventory(svc: &Services, hash: &str) -> ApiResult<NodeFacts> {
    let inv = svc.store.get_inventory(hash).await?;
    let text = String::from_utf8(inv.facts_json).map_err(ApiError::internal)?;
    let mut facts = NodeFacts::from_json(&text).map_err(ApiError::internal)?;
    if facts.os.operating_system.family() == Family::Apt {
        let seen = svc.store.inventory_first_seen(hash).await?;
        for a in &mut facts.available {
            let k = crate::store::PackageVersion {
                name: a.name.clone(),
                arch: a.arch.clone(),
                version: a.version.clone(),
            };
            if a.first_seen.is_none() {
                a.first_seen = seen.get(&k).copied();
            }
        }
    }
    Ok(facts)
}

/// A node's compliance: the summary and each patch with its state and reason.
#[derive(Clone, Debug, Serialize)]
pub struct NodeComplianceView {
    pub node_id: String,
    pub baseline_id: String,
    pub baseline_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_group: Option<String>,
    pub evaluated_at: Timestamp,
    pub compliance_status: String,
    pub overall_severity: String,
    pub counts: PatchCounts,
    /// SSM's `InstancePatchState` and `Patches`, as `core` renders them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Value>,
}

pub async fn node_compliance(
    svc: &Services,
    caller: &Caller,
    node_id: &str,
    with_patches: bool,
) -> ApiResult<NodeComplianceView> {
    caller.require(Action::ReadFleet)?;
    let c = svc.store.get_node_compliance(node_id).await?;
    let report = if with_patches {
        let e = svc.store.get_evaluation(&c.key).await?.ok_or_else(|| {
            ApiError::not_found(format!("the evaluation of {node_id} is being recomputed"))
        })?;
        let mut v: Value = serde_json::from_slice(&e.patches_json).map_err(ApiError::internal)?;
        if let Some(s) = v.get_mut("InstancePatchState") {
            s["InstanceId"] = Value::String(node_id.to_string());
            s["OperationStartTime"] = serde_json::to_value(c.operation_start).unwrap_or_default();
            s["OperationEndTime"] = serde_json::to_value(c.operation_end).unwrap_or_default();
        }
        Some(v)
    } else {
        None
    };
    Ok(NodeComplianceView {
        node_id: c.node_id,
        baseline_id: c.baseline_id,
        baseline_version: c.baseline_version,
        patch_group: c.patch_group,
        evaluated_at: c.evaluated_at,
        compliance_status: c.compliance_status,
        overall_severity: c.overall_severity,
        counts: c.counts,
        report,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct SummaryView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub compliant: i64,
    pub non_compliant: i64,
    pub not_evaluated: i64,
    /// Non-compliant nodes by overall severity.
    pub by_severity: std::collections::BTreeMap<String, i64>,
}

pub async fn summary(
    svc: &Services,
    caller: &Caller,
    group_by: Option<&str>,
) -> ApiResult<Vec<SummaryView>> {
    caller.require(Action::ReadFleet)?;
    let g = match group_by {
        None => None,
        Some("patch_group") => Some(SummaryGroupBy::PatchGroup),
        Some("operating_system") => Some(SummaryGroupBy::OperatingSystem),
        Some(other) => {
            return Err(ApiError::invalid(
                "group_by",
                format!("group_by '{other}': expected patch_group or operating_system"),
            ));
        }
    };
    let rows = svc.store.compliance_summary(g).await?;
    let mut out: Vec<SummaryView> = Vec::new();
    for r in rows {
        let i = match out.iter().position(|v| v.group == r.group) {
            Some(i) => i,
            None => {
                out.push(SummaryView {
                    group: r.group.clone(),
                    compliant: 0,
                    non_compliant: 0,
                    not_evaluated: 0,
                    by_severity: Default::default(),
                });
                out.len() - 1
            }
        };
        let v = &mut out[i];
        match r.compliance_status.as_deref() {
            Some("COMPLIANT") => v.compliant += r.nodes,
            Some(_) => {
                v.non_compliant += r.nodes;
                *v.by_severity
                    .entry(r.overall_severity.unwrap_or_else(|| "UNSPECIFIED".into()))
                    .or_default() += r.nodes;
            }
            None => v.not_evaluated += r.nodes,
        }
    }
    if out.is_empty() && g.is_none() {
        out.push(SummaryView {
            group: None,
            compliant: 0,
            non_compliant: 0,
            not_evaluated: 0,
            by_severity: Default::default(),
        });
    }
    Ok(out)
}

pub async fn list(
    svc: &Services,
    caller: &Caller,
    filter: ComplianceFilter,
    next: Option<&str>,
    limit: u32,
) -> ApiResult<(Vec<NodeComplianceView>, Option<String>)> {
    caller.require(Action::ReadFleet)?;
    let page = svc
        .store
        .list_node_compliance(&filter, next, limit.clamp(1, 1000))
        .await?;
    Ok((
        page.items
            .into_iter()
            .map(|c| NodeComplianceView {
                node_id: c.node_id,
                baseline_id: c.baseline_id,
                baseline_version: c.baseline_version,
                patch_group: c.patch_group,
                evaluated_at: c.evaluated_at,
                compliance_status: c.compliance_status,
                overall_severity: c.overall_severity,
                counts: c.counts,
                report: None,
            })
            .collect(),
        page.next,
    ))
}
