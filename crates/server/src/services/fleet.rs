//! Fleet compliance: computed by `core` once per distinct evaluation key
//! (inventory, baseline version, day, node state when it matters) and fanned
//! out to the nodes that share it (DESIGN decisions 1 and 2). A baseline
//! edit, a patch-group change or a new day re-computes without any re-scan.

use super::{Caller, Services, baselines};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Action;
use crate::compliance::{EvalKey, Summary, day_of, judge, render_report, summary_of};
use crate::store::{
    ComplianceFilter, Evaluation, EvaluationGroup, EvaluationKey, FanOut, Node, NodeFilter,
    PackedEvaluation, PatchCounts, SummaryGroupBy,
};
use jiff::Timestamp;
use patchfleet_core::baseline::Baseline;
use patchfleet_core::eval::CompiledBaseline;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::{Family, OperatingSystem};
use patchfleet_protocol::NodeState;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A stored inventory, parsed, and prepared for evaluation once per state
/// key (the node's state is part of the preparation; nodes with one key
/// share what a verdict reads of it).
pub struct CachedInventory {
    pub facts: NodeFacts,
    prepared: Mutex<HashMap<String, Arc<Inventory>>>,
}

impl CachedInventory {
    pub fn new(facts: NodeFacts) -> CachedInventory {
        CachedInventory {
            facts,
            prepared: Mutex::new(HashMap::new()),
        }
    }

    /// Prepared with `state` (whose key is `state_key`).
    pub fn prepared(
        &self,
        state_key: &str,
        state: &NodeState,
    ) -> Result<Arc<Inventory>, patchfleet_core::inventory::InventoryError> {
        if let Some(p) = self
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(state_key)
        {
            return Ok(p.clone());
        }
        let p = Arc::new(Inventory::prepare_with(
            &self.facts,
            state.boot_time,
            state.reboot_state.as_ref(),
        )?);
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(state_key.to_string(), p.clone());
        Ok(p)
    }
}

/// Inventories by content hash, least recently used evicted first. A
/// stored inventory never changes (its hash is its content; first-seen
/// dates are set when it is stored), so entries never go stale.
/// The last use of each entry (a counter) and the entries.
type Lru = (u64, HashMap<String, (Arc<CachedInventory>, u64)>);

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
    pub fn get(&self, hash: &str) -> Option<Arc<CachedInventory>> {
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (tick, map) = &mut *g;
        *tick += 1;
        let now = *tick;
        map.get_mut(hash).map(|(f, used)| {
            *used = now;
            f.clone()
        })
    }

    pub fn insert(&self, hash: &str, inventory: Arc<CachedInventory>) {
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
        map.insert(hash.to_string(), (inventory, now));
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

/// Which baseline judges a node of each OS and patch group (its patch
/// group's, else its OS's registered default, else the predefined default),
/// with each custom baseline's current version: read once, then answered
/// without the store (a re-computation or a rollout step asks for many
/// nodes).
pub(crate) struct Resolver {
    groups: Vec<crate::store::PatchGroupRecord>,
    /// Registered defaults by OS.
    defaults: HashMap<String, String>,
    /// Current versions of the custom baselines named above.
    versions: HashMap<String, i64>,
}

impl Resolver {
    pub(crate) async fn load(svc: &Services) -> ApiResult<Resolver> {
        let groups = svc.store.list_patch_groups().await?;
        let defaults: HashMap<String, String> =
            svc.store.default_baselines().await?.into_iter().collect();
        let mut versions = HashMap::new();
        for id in groups
            .iter()
            .map(|g| &g.baseline_id)
            .chain(defaults.values())
        {
            if versions.contains_key(id)
                || patchfleet_core::baseline::predefined::by_id_or_name(id).is_some()
            {
                continue;
            }
            let r = svc.store.get_baseline(id).await?;
            versions.insert(id.clone(), r.current_version);
        }
        Ok(Resolver {
            groups,
            defaults,
            versions,
        })
    }

    pub(crate) fn baseline_for(
        &self,
        os: OperatingSystem,
        patch_group: Option<&str>,
    ) -> Option<String> {
        if let Some(g) = patch_group
            && let Some(r) = self
                .groups
                .iter()
                .find(|r| r.patch_group == g && r.operating_system == os.as_str())
        {
            return Some(r.baseline_id.clone());
        }
        if let Some(d) = self.defaults.get(os.as_str()) {
            return Some(d.clone());
        }
        patchfleet_core::baseline::predefined::default_for(os).and_then(|b| b.baseline_id.clone())
    }

    /// The baseline and its current version (0 for a predefined one).
    pub(crate) fn baseline_version_for(
        &self,
        os: OperatingSystem,
        patch_group: Option<&str>,
    ) -> Option<(String, i64)> {
        let id = self.baseline_for(os, patch_group)?;
        let version = self.versions.get(&id).copied().unwrap_or(0);
        Some((id, version))
    }
}

/// Re-computes the compliance of `node_ids` (every node with facts when
/// `None`) at `now`: one evaluation per distinct key, computed on every
/// core, then one row per evaluation group, which its nodes read.
pub async fn recompute(
    svc: &Services,
    node_ids: Option<&[String]>,
    now: Timestamp,
) -> ApiResult<Recomputed> {
    let day = day_of(now);
    let node_ids = node_ids.unwrap_or_default();
    let groups = svc.store.evaluation_groups(node_ids).await?;
    let resolver = Resolver::load(svc).await?;
    let mut baselines_loaded: HashMap<String, (Arc<Baseline>, i64)> = HashMap::new();
    let mut out = Recomputed::default();
    // Each group with its key; the keys not stored yet, computed below.
    let mut judged: Vec<(EvaluationGroup, String, EvalKey)> = Vec::new();
    let mut summaries: HashMap<EvalKey, Summary> = HashMap::new();
    let mut to_compute: Vec<(EvalKey, EvaluationGroup)> = Vec::new();
    for group in groups {
        let Ok(os) = group.operating_system.parse::<OperatingSystem>() else {
            continue;
        };
        let Some(baseline_id) = resolver.baseline_for(os, group.patch_group.as_deref()) else {
            continue;
        };
        if !baselines_loaded.contains_key(&baseline_id) {
            let (b, _, v) = baselines::load(svc, &baseline_id, None).await?;
            baselines_loaded.insert(baseline_id.clone(), (Arc::new(b), v.unwrap_or(0)));
        }
        let key = EvalKey {
            inventory_hash: group.inventory_hash.clone(),
            baseline_id: baseline_id.clone(),
            baseline_version: baselines_loaded[&baseline_id].1,
            day,
            state_key: group.state_key.clone(),
        };
        if !summaries.contains_key(&key) && !to_compute.iter().any(|(k, _)| *k == key) {
            match svc.store.get_evaluation_summary(&store_key(&key)).await? {
                Some(s) => {
                    summaries.insert(key.clone(), s);
                }
                None => to_compute.push((key.clone(), group.clone())),
            }
        }
        judged.push((group, baseline_id, key));
    }
    out.evaluations_reused = summaries.len();
    for (key, summary) in evaluate_all(svc, to_compute, &baselines_loaded, now, &mut out).await? {
        summaries.insert(key, summary);
    }
    let mut fans = Vec::with_capacity(judged.len());
    for (group, baseline_id, key) in judged {
        let Some(summary) = summaries.get(&key) else {
            out.failed += usize::try_from(group.nodes).unwrap_or(0);
            continue;
        };
        out.nodes += usize::try_from(group.nodes).unwrap_or(0);
        fans.push(FanOut {
            group,
            baseline_id,
            baseline_version: key.baseline_version,
            eval_day: day,
            evaluated_at: now,
            compliance_status: summary.status.clone(),
            overall_severity: summary
                .overall_severity
                .clone()
                .unwrap_or_else(|| "UNSPECIFIED".into()),
            counts: summary.counts,
        });
    }
    // Bounded transactions: a fleet-wide run does not hold the writer for
    // its whole length.
    for chunk in fans.chunks(256) {
        let changed = svc.store.put_group_compliances(chunk).await?;
        for (f, c) in chunk.iter().zip(changed) {
            if c {
                out.changed += usize::try_from(f.group.nodes).unwrap_or(0);
            }
        }
    }
    Ok(out)
}

fn store_key(k: &EvalKey) -> EvaluationKey {
    EvaluationKey {
        inventory_hash: k.inventory_hash.clone(),
        baseline_id: k.baseline_id.clone(),
        baseline_version: k.baseline_version,
        eval_day: k.day,
        state_key: k.state_key.clone(),
    }
}

/// Computes the evaluations on every core and stores each as it is done.
/// A failing one is logged and counted; the others go on.
async fn evaluate_all(
    svc: &Services,
    work: Vec<(EvalKey, EvaluationGroup)>,
    baselines: &HashMap<String, (Arc<Baseline>, i64)>,
    now: Timestamp,
    out: &mut Recomputed,
) -> ApiResult<Vec<(EvalKey, Summary)>> {
    let mut compiled: HashMap<String, Arc<CompiledBaseline>> = HashMap::new();
    let mut jobs = Vec::with_capacity(work.len());
    for (key, group) in work {
        let inventory = cached_inventory(svc, &key.inventory_hash).await?;
        if !compiled.contains_key(&key.baseline_id) {
            let b = &baselines[&key.baseline_id].0;
            let c = CompiledBaseline::compile(b)
                .map_err(|e| ApiError::internal(format!("baseline {}: {e}", key.baseline_id)))?;
            compiled.insert(key.baseline_id.clone(), Arc::new(c));
        }
        let baseline = compiled[&key.baseline_id].clone();
        jobs.push((key, group, inventory, baseline));
    }
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let queue = Arc::new(Mutex::new(jobs));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(workers * 4);
    for _ in 0..workers {
        let (queue, done_tx) = (queue.clone(), done_tx.clone());
        tokio::task::spawn_blocking(move || {
            loop {
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some((key, group, inventory, baseline)) = job else {
                    return;
                };
                let r = evaluate_one(key, &group, &inventory, &baseline, now);
                if done_tx.blocking_send(r).is_err() {
                    return;
                }
            }
        });
    }
    drop(done_tx);
    let mut results = Vec::new();
    let mut batch = Vec::new();
    while let Some(r) = done_rx.recv().await {
        match r {
            Ok((key, summary, packed)) => {
                out.evaluations_computed += 1;
                results.push((key, summary));
                batch.push(packed);
                if batch.len() >= 64 {
                    svc.store.put_evaluations(&batch).await?;
                    batch.clear();
                }
            }
            // One bad inventory must not stop the fleet's re-computation.
            Err(e) => tracing::error!("{e}"),
        }
    }
    svc.store.put_evaluations(&batch).await?;
    Ok(results)
}

fn evaluate_one(
    key: EvalKey,
    group: &EvaluationGroup,
    inventory: &CachedInventory,
    baseline: &CompiledBaseline,
    now: Timestamp,
) -> Result<(EvalKey, Summary, PackedEvaluation), String> {
    let state: NodeState = group
        .node_state
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let prepared = inventory
        .prepared(&key.state_key, &state)
        .map_err(|e| format!("inventory {}: {e}", key.inventory_hash))?;
    // The summary only: the report is rendered when someone reads it.
    let summary = summary_of(&judge(&prepared, baseline, key.day));
    let evaluation = Evaluation {
        key: store_key(&key),
        summary: serde_json::to_value(&summary).map_err(|e| e.to_string())?,
        patches_json: Vec::new(),
        created_at: now,
    };
    let packed = evaluation.pack().map_err(|e| e.to_string())?;
    Ok((key, summary, packed))
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
pub(crate) async fn cached_inventory(
    svc: &Services,
    hash: &str,
) -> ApiResult<Arc<CachedInventory>> {
    if let Some(f) = svc.inventories.get(hash) {
        return Ok(f);
    }
    let f = Arc::new(CachedInventory::new(load_inventory(svc, hash).await?));
    svc.inventories.insert(hash, f.clone());
    Ok(f)
}

/// A stored inventory as facts; on APT, with the fleet's first-seen dates
/// (approval delays count from them).
pub(crate) async fn load_inventory(svc: &Services, hash: &str) -> ApiResult<NodeFacts> {
    let inv = svc.store.get_inventory(hash).await?;
    let text = String::from_utf8(inv.facts_json).map_err(ApiError::internal)?;
    let facts = NodeFacts::from_json(&text).map_err(ApiError::internal)?;
    with_first_seen(svc, facts).await
}

/// A stored inventory's facts as a verdict reads them: for APT, with the
/// fleet's first sighting of each available version (approval delays).
pub(crate) async fn with_first_seen(svc: &Services, mut facts: NodeFacts) -> ApiResult<NodeFacts> {
    if facts.os.operating_system.family() == Family::Apt {
        let versions: Vec<crate::store::PackageVersion> =
            facts.available.iter().map(Into::into).collect();
        let seen = svc.store.first_seen(&versions).await?;
        for (a, k) in facts.available.iter_mut().zip(&versions) {
            if a.first_seen.is_none() {
                a.first_seen = seen.get(k).copied();
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
    /// When the facts judged were collected (the scan's time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<Timestamp>,
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
        let patches = if e.patches_json.is_empty() {
            rendered_report(svc, node_id, &c.key).await?
        } else {
            e.patches_json
        };
        let mut v: Value = serde_json::from_slice(&patches).map_err(ApiError::internal)?;
        if let Some(s) = v.get_mut("InstancePatchState") {
            s["InstanceId"] = Value::String(node_id.to_string());
            // An evaluation is shared across patch groups judged by one baseline.
            s["PatchGroup"] = Value::String(c.patch_group.clone().unwrap_or_default());
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
        scanned_at: c.operation_start,
        report,
    })
}

/// The report of a stored evaluation, rendered now (the verdicts again,
/// deterministic from the key) and kept for the next reader.
async fn rendered_report(svc: &Services, node_id: &str, key: &EvaluationKey) -> ApiResult<Vec<u8>> {
    let inventory = cached_inventory(svc, &key.inventory_hash).await?;
    let state: NodeState = svc
        .store
        .get_node(node_id)
        .await?
        .node_state
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let prepared = inventory
        .prepared(&key.state_key, &state)
        .map_err(|e| ApiError::internal(format!("inventory {}: {e}", key.inventory_hash)))?;
    let baseline = baselines::version_cached(svc, &key.baseline_id, key.baseline_version).await?;
    let compiled = CompiledBaseline::compile(&baseline)
        .map_err(|e| ApiError::internal(format!("baseline {}: {e}", key.baseline_id)))?;
    let evaluation = judge(&prepared, &compiled, key.eval_day);
    let report = render_report(&evaluation, &prepared, &compiled, "");
    let json = serde_json::to_vec(&report).map_err(ApiError::internal)?;
    svc.store.put_evaluation_report(key, &json).await?;
    Ok(json)
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
                scanned_at: c.operation_start,
                report: None,
            })
            .collect(),
        page.next,
    ))
}
