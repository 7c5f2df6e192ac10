//! Managed nodes: registration through an activation (the agent's key
//! signed into a client certificate), heartbeats, tags, deregistration,
//! and facts reports by content hash.

use super::{Caller, Services, fleet};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::{Action, sha256_hex};
use crate::ids;
use crate::store::{
    Audit, Heartbeat as StoreHeartbeat, NewInventory, NewNode, Node, NodeFilter, PingStatus,
    RegisterError,
};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use patchfleet_core::facts::NodeFacts;
use patchfleet_protocol::{
    AgentInfo, FactsOffer, FactsOfferAck, PROTOCOL_VERSION, RegisterRequest, RegisterResponse,
};
use serde::Serialize;
use serde_json::Value;

fn check_protocol(agent: &AgentInfo) -> ApiResult<()> {
    if agent.protocol != PROTOCOL_VERSION {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedProtocol",
            format!(
                "agent protocol {} is not spoken here; this server speaks {PROTOCOL_VERSION}",
                agent.protocol
            ),
        )
        .field("agent.protocol"));
    }
    Ok(())
}

/// `POST /agent/v1/register`: the activation is checked and counted
/// atomically, the CSR signed with the node id as its subject.
pub async fn register(svc: &Services, req: RegisterRequest) -> ApiResult<RegisterResponse> {
    check_protocol(&req.agent)?;
    let now = Timestamp::now();
    let node_id = ids::node_id();
    let certificate_pem = svc
        .pki
        .sign_agent_csr(&req.csr_pem, &node_id, now)
        .map_err(|e| ApiError::invalid("csr_pem", e.to_string()))?;
    let fingerprint = crate::tls::pem_fingerprint(&certificate_pem).map_err(ApiError::internal)?;
    let a = &req.agent;
    let new = NewNode {
        node_id: node_id.clone(),
        name: a.hostname.clone(),
        computer_name: a.hostname.clone(),
        ip_address: a.ip_address.clone().unwrap_or_default(),
        agent_version: a.agent_version.clone(),
        protocol: a.protocol.to_string(),
        capabilities: a.capabilities.clone(),
        platform_type: "Linux".into(),
        platform_name: a.platform.name.clone(),
        platform_version: a.platform.version.clone(),
        operating_system: a.platform.operating_system.clone(),
        product: a.platform.product.clone(),
        cert_fingerprint: fingerprint,
    };
    let audit = Audit::new(format!("node:{node_id}"), "RegisterNode")
        .at(now)
        .detail(serde_json::json!({"hostname": a.hostname, "activation_id": req.activation_id}));
    let denied = |code: &'static str, m: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, code, m.to_string()).field("activation_id")
    };
    let node = svc
        .store
        .register_node(
            &req.activation_id,
            &sha256_hex(&req.activation_code),
            &new,
            now,
            &audit,
        )
        .await
        .map_err(|e| match e {
            RegisterError::NotFound => denied("InvalidActivation", "no such activation"),
            RegisterError::InvalidCode => ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidActivation",
                "the activation code does not match",
            )
            .field("activation_code"),
            RegisterError::Expired => denied("ExpiredActivation", "the activation has expired"),
            RegisterError::LimitReached => denied(
                "ActivationLimitReached",
                "the activation's registration limit is reached",
            ),
            RegisterError::Store(e) => e.into(),
        })?;
    Ok(RegisterResponse {
        node_id: node.node_id,
        certificate_pem,
        ca_pem: svc.pki.ca_pem().to_string(),
        heartbeat_seconds: svc.config.heartbeat_seconds,
    })
}

/// The node a client certificate names, if it is still registered (a
/// deregistered node is refused at once, whatever its certificate says).
pub async fn authenticate_agent(svc: &Services, node_id: &str) -> ApiResult<()> {
    if svc.store.is_node_active(node_id).await? {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "node {node_id} is not registered (deregistered?)"
        )))
    }
}

pub async fn heartbeat(svc: &Services, node_id: &str, agent: &AgentInfo) -> ApiResult<()> {
    check_protocol(agent)?;
    let hb = StoreHeartbeat {
        agent_version: agent.agent_version.clone(),
        ip_address: agent.ip_address.clone().unwrap_or_default(),
        computer_name: agent.hostname.clone(),
        capabilities: agent.capabilities.clone(),
        platform_name: agent.platform.name.clone(),
        platform_version: agent.platform.version.clone(),
    };
    if !svc.store.heartbeat(node_id, &hb, Timestamp::now()).await? {
        return Err(ApiError::forbidden(format!(
            "node {node_id} is not registered"
        )));
    }
    Ok(())
}

/// The hash first: a known inventory is only pointed at.
pub async fn offer_facts(
    svc: &Services,
    node_id: &str,
    offer: &FactsOffer,
) -> ApiResult<FactsOfferAck> {
    if !offer.content_hash.starts_with("sha256:") || offer.content_hash.len() != 71 {
        return Err(ApiError::invalid(
            "content_hash",
            "content_hash: expected sha256: and 64 hex digits",
        ));
    }
    // The usual check-in (the node's own inventory and state, judged
    // today) is one statement; anything else looks the inventory up first.
    if touch_if_unchanged(svc, node_id, &offer.content_hash, offer).await? {
        return Ok(FactsOfferAck { known: true });
    }
    if !svc.store.has_inventory(&offer.content_hash).await? {
        return Ok(FactsOfferAck { known: false });
    }
    point_at(svc, node_id, &offer.content_hash, offer, true).await?;
    Ok(FactsOfferAck { known: true })
}

/// Records a report of the node's current inventory and state, judged
/// today, as its newest scan: the verdict cannot have changed (baseline and
/// patch-group changes re-compute when they happen; a new day shows in
/// `eval_day`). `false`: something changed, the report needs judging.
async fn touch_if_unchanged(
    svc: &Services,
    node_id: &str,
    hash: &str,
    offer: &FactsOffer,
) -> ApiResult<bool> {
    let state = serde_json::to_value(&offer.state).map_err(ApiError::internal)?;
    Ok(svc
        .store
        .touch_unchanged_report(
            node_id,
            hash,
            &state,
            crate::compliance::day_of(Timestamp::now()),
            offer.scanned_at,
        )
        .await?)
}

/// The body after an unknown offer: stored once (its hash checked), then
/// pointed at like a known one.
pub async fn upload_facts(
    svc: &Services,
    node_id: &str,
    hash: &str,
    mut facts: NodeFacts,
    offer: &FactsOffer,
) -> ApiResult<()> {
    // The upload becomes the stored inventory in place (no copy of a
    // document that can hold 65,000 versions).
    facts.canonicalize();
    let canonical = facts.to_canonical_json();
    let actual = NodeFacts::hash_of_canonical(&canonical);
    if actual != hash {
        return Err(ApiError::invalid(
            "content_hash",
            format!("the facts hash to {actual}, not {hash}"),
        ));
    }
    let unrecorded = svc.seen_versions.unknown(&facts.available);
    let new = NewInventory::from_canonical(&facts, canonical, actual, unrecorded);
    // The inventory as a re-computation reads it, prepared with this node's
    // state: the check that it can be evaluated, and what the verdict below
    // reuses instead of reading it back.
    let inventory = fleet::CachedInventory::new(facts);
    let state_key = crate::compliance::state_key(&inventory.facts, &offer.state);
    inventory
        .prepared(&state_key, &offer.state)
        .map_err(|e| ApiError::invalid("facts", format!("the facts cannot be evaluated: {e}")))?;
    let audit = Audit::new(format!("node:{node_id}"), "PutInventory").object(hash);
    let stored = svc
        .store
        .put_inventory(&new, Timestamp::now(), &audit)
        .await?;
    svc.seen_versions.record(&new.available);
    // APT verdicts read the fleet's first sightings, known only now.
    if inventory.facts.os.operating_system.family() != patchfleet_core::os::Family::Apt {
        svc.inventories.insert(hash, std::sync::Arc::new(inventory));
    }
    // A stored-again inventory (another node uploaded it meanwhile) may be
    // this node's current one: checked like an offer.
    point_at(svc, node_id, hash, offer, stored).await
}

/// Points the node at the inventory `hash` with its state and judges it;
/// `checked`: the report is known not to be an unchanged one (a new
/// inventory, or [`touch_if_unchanged`] said so).
async fn point_at(
    svc: &Services,
    node_id: &str,
    hash: &str,
    offer: &FactsOffer,
    checked: bool,
) -> ApiResult<()> {
    if !checked && touch_if_unchanged(svc, node_id, hash, offer).await? {
        return Ok(());
    }
    let state = serde_json::to_value(&offer.state).map_err(ApiError::internal)?;
    let inventory = fleet::cached_inventory(svc, hash).await?;
    let state_key = crate::compliance::state_key(&inventory.facts, &offer.state);
    let audit = Audit::new(format!("node:{node_id}"), "ReportInventory").object(hash);
    svc.store
        .set_node_inventory(node_id, hash, &state, &state_key, offer.scanned_at, &audit)
        .await?;
    fleet::recompute(svc, Some(&[node_id.to_string()]), Timestamp::now()).await?;
    Ok(())
}

/// A node as the API shows it (DescribeInstanceInformation's fields).
#[derive(Clone, Debug, Serialize)]
pub struct NodeView {
    pub node_id: String,
    pub name: String,
    pub ping_status: &'static str,
    pub last_ping: Timestamp,
    pub agent_version: String,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub operating_system: String,
    pub product: String,
    pub computer_name: String,
    pub ip_address: String,
    pub activation_id: String,
    pub registration_date: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_group: Option<String>,
    pub tags: std::collections::BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
}

pub fn ping_cutoff(svc: &Services, now: Timestamp) -> Timestamp {
    now - SignedDuration::from_secs(svc.config.connection_lost_after())
}

pub fn view(svc: &Services, n: Node, now: Timestamp) -> NodeView {
    NodeView {
        ping_status: if n.last_ping >= ping_cutoff(svc, now) {
            "Online"
        } else {
            "ConnectionLost"
        },
        node_id: n.node_id,
        name: n.name,
        last_ping: n.last_ping,
        agent_version: n.agent_version,
        platform_type: n.platform_type,
        platform_name: n.platform_name,
        platform_version: n.platform_version,
        operating_system: n.operating_system,
        product: n.product,
        computer_name: n.computer_name,
        ip_address: n.ip_address,
        activation_id: n.activation_id,
        registration_date: n.registration_date,
        patch_group: n.patch_group,
        tags: n.tags.into_iter().collect(),
        inventory_hash: n.inventory_hash,
        scanned_at: n.scanned_at,
        state: n.node_state,
    }
}

#[derive(Clone, Debug, Default)]
pub struct ListNodes {
    pub node_ids: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub patch_group: Option<String>,
    pub operating_system: Option<String>,
    pub ping_status: Option<String>,
    pub next: Option<String>,
    pub limit: Option<u32>,
}

pub async fn list(
    svc: &Services,
    caller: &Caller,
    q: ListNodes,
) -> ApiResult<(Vec<NodeView>, Option<String>)> {
    caller.require(Action::ReadFleet)?;
    let now = Timestamp::now();
    let ping = match q.ping_status.as_deref() {
        None => None,
        Some("Online") => Some((PingStatus::Online, ping_cutoff(svc, now))),
        Some("ConnectionLost") => Some((PingStatus::ConnectionLost, ping_cutoff(svc, now))),
        Some(other) => {
            return Err(ApiError::invalid(
                "ping_status",
                format!("ping_status '{other}': expected Online or ConnectionLost"),
            ));
        }
    };
    let filter = NodeFilter {
        node_ids: q.node_ids,
        tags: q.tags,
        patch_group: q.patch_group,
        operating_system: q.operating_system,
        ping_status: ping,
    };
    let page = svc
        .store
        .list_nodes(
            &filter,
            q.next.as_deref(),
            q.limit.unwrap_or(100).clamp(1, 1000),
        )
        .await?;
    Ok((
        page.items.into_iter().map(|n| view(svc, n, now)).collect(),
        page.next,
    ))
}

pub async fn get(svc: &Services, caller: &Caller, node_id: &str) -> ApiResult<NodeView> {
    caller.require(Action::ReadFleet)?;
    let n = svc.store.get_node(node_id).await?;
    if n.deregistered_at.is_some() {
        return Err(ApiError::not_found(format!(
            "node {node_id} is deregistered"
        )));
    }
    Ok(view(svc, n, Timestamp::now()))
}

/// SSM's tag rules: keys 1-128 characters not starting with `aws:`,
/// values at most 256.
pub(crate) fn check_tag(k: &str, v: &str) -> ApiResult<()> {
    if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
        return Err(ApiError::invalid(
            "tags",
            format!(
                "tag '{k}': keys are 1-128 characters not starting with aws:, values at most 256"
            ),
        ));
    }
    Ok(())
}

/// Adds or replaces `add`, removes `remove`; a patch-group change
/// re-computes the node's compliance at once.
pub async fn tag(
    svc: &Services,
    caller: &Caller,
    node_id: &str,
    add: &[(String, String)],
    remove: &[String],
) -> ApiResult<NodeView> {
    caller.require(Action::ManageNodes)?;
    for (k, v) in add {
        check_tag(k, v)?;
    }
    if !add.is_empty() {
        let audit = caller.audit("AddTagsToResource").object(node_id);
        svc.store.set_node_tags(node_id, add, &audit).await?;
    }
    if !remove.is_empty() {
        let audit = caller.audit("RemoveTagsFromResource").object(node_id);
        svc.store.remove_node_tags(node_id, remove, &audit).await?;
    }
    fleet::recompute(svc, Some(&[node_id.to_string()]), Timestamp::now()).await?;
    get(svc, caller, node_id).await
}

pub async fn deregister(svc: &Services, caller: &Caller, node_id: &str) -> ApiResult<()> {
    caller.require(Action::ManageNodes)?;
    let audit = caller.audit("DeregisterManagedInstance").object(node_id);
    svc.store
        .deregister_node(node_id, Timestamp::now(), &audit)
        .await?;
    Ok(())
}
