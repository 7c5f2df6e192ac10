//! What-if: which nodes' compliance, and which of their patches, would
//! change if a baseline document were saved — computed with the same engine
//! on the stored inventories, nothing written.
//!
//! The document replaces the baseline it names (`BaselineId`, or the
//! `baseline_id` given) for every node that baseline judges; without one it
//! is previewed as the new default of its operating system, judging the
//! nodes no patch group assigns elsewhere.

use super::fleet::{Resolver, load_inventory, nodes_with_facts};
use super::{Caller, Services, baselines};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Action;
use crate::compliance::{day_of, evaluate_scan, node_facts};
use jiff::Timestamp;
use patchfleet_core::baseline::Baseline;
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::report::Report;
use patchfleet_protocol::NodeState;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Serialize)]
pub struct PatchChange {
    pub title: String,
    pub before: String,
    pub after: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeChange {
    pub node_id: String,
    pub status_before: String,
    pub status_after: String,
    pub missing_before: i64,
    pub missing_after: i64,
    pub patches: Vec<PatchChange>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Preview {
    /// The baseline the document replaces, or `None`: a new default.
    pub replaces: Option<String>,
    pub operating_system: String,
    pub nodes_judged: usize,
    pub nodes_changed: usize,
    pub changes: Vec<NodeChange>,
}

fn states(report: &Report) -> BTreeMap<String, String> {
    report
        .patches
        .iter()
        .map(|p| {
            // The title carries the version; the package is the stable key.
            let key = p.title.split(':').next().unwrap_or(&p.title).to_string();
            (key, p.state.as_str().to_string())
        })
        .collect()
}

pub async fn preview(
    svc: &Services,
    caller: &Caller,
    doc: &Value,
    baseline_id: Option<&str>,
) -> ApiResult<Preview> {
    caller.require(Action::ReadFleet)?;
    let candidate: Baseline = baselines::parse_document(doc)?;
    let os: OperatingSystem = candidate.operating_system;
    let replaces = baseline_id
        .map(str::to_string)
        .or_else(|| candidate.baseline_id.clone());
    if let Some(id) = &replaces {
        let (current, _, _) = baselines::load(svc, id, None).await?;
        if current.operating_system != os {
            return Err(ApiError::invalid(
                "OperatingSystem",
                format!("{id} is a {} baseline", current.operating_system.as_str()),
            ));
        }
    }
    let now = Timestamp::now();
    let day = day_of(now);
    let resolver = Resolver::load(svc).await?;
    let default_now = baselines::default_id(svc, os).await?;
    let mut inventories: HashMap<String, NodeFacts> = HashMap::new();
    let mut current: HashMap<String, Baseline> = HashMap::new();
    let mut out = Preview {
        replaces: replaces.clone(),
        operating_system: os.as_str().to_string(),
        nodes_judged: 0,
        nodes_changed: 0,
        changes: Vec::new(),
    };
    for node in nodes_with_facts(svc, None).await? {
        if node.operating_system != os.as_str() {
            continue;
        }
        let Some(judge) = resolver.baseline_for(os, node.patch_group.as_deref()) else {
            continue;
        };
        let affected = match &replaces {
            Some(id) => &judge == id,
            // A new default judges the nodes the current default judges.
            None => Some(&judge) == default_now.as_ref(),
        };
        if !affected {
            continue;
        }
        let Some(hash) = node.inventory_hash.clone() else {
            continue;
        };
        if !inventories.contains_key(&hash) {
            inventories.insert(hash.clone(), load_inventory(svc, &hash).await?);
        }
        if !current.contains_key(&judge) {
            let (b, _, _) = baselines::load(svc, &judge, None).await?;
            current.insert(judge.clone(), b);
        }
        let state: NodeState = node
            .node_state
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let facts = node_facts(&inventories[&hash], &state);
        let group = node.patch_group.as_deref().unwrap_or("");
        let before = evaluate_scan(&facts, &hash, &current[&judge], day, group)
            .map_err(ApiError::internal)?;
        let after =
            evaluate_scan(&facts, &hash, &candidate, day, group).map_err(ApiError::internal)?;
        out.nodes_judged += 1;
        let (b, a) = (states(&before.report), states(&after.report));
        let mut patches: Vec<PatchChange> = Vec::new();
        for (title, s_after) in &a {
            let s_before = b.get(title).cloned().unwrap_or_else(|| "-".into());
            if &s_before != s_after {
                patches.push(PatchChange {
                    title: title.clone(),
                    before: s_before,
                    after: s_after.clone(),
                });
            }
        }
        if patches.is_empty() && before.summary == after.summary {
            continue;
        }
        out.nodes_changed += 1;
        out.changes.push(NodeChange {
            node_id: node.node_id.clone(),
            status_before: before.summary.status,
            status_after: after.summary.status,
            missing_before: before.summary.counts.missing,
            missing_after: after.summary.counts.missing,
            patches,
        });
    }
    Ok(out)
}
