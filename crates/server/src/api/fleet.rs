//! `/api/v1` for the fleet: nodes, their tags and patches, compliance.

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::v1::items;
use crate::auth::Action;
use crate::services::{Caller, Services, fleet, nodes};
use crate::store::ComplianceFilter;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/nodes", get(list_nodes))
        .route("/nodes/{id}", get(get_node))
        .route("/nodes/{id}/patches", get(node_patches))
        .route("/nodes/{id}/timeline", get(node_timeline))
        .route("/nodes/{id}/tags", post(tag_node))
        .route("/nodes/{id}/deregister", post(deregister_node))
        .route("/compliance/summary", get(summary))
        .route("/compliance/nodes", get(compliance_nodes))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NodeQuery {
    /// Comma-separated node ids.
    #[serde(default)]
    ids: Option<String>,
    /// `Key=Value`, comma-separated, all must match.
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    patch_group: Option<String>,
    #[serde(default)]
    operating_system: Option<String>,
    #[serde(default)]
    ping_status: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

fn split(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn parse_tags(s: Option<String>) -> ApiResult<Vec<(String, String)>> {
    split(s)
        .into_iter()
        .map(|t| {
            t.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    ApiError::invalid("tags", format!("tag filter '{t}': expected Key=Value"))
                })
        })
        .collect()
}

async fn list_nodes(
    State(svc): State<Services>,
    caller: Caller,
    Query(q): Query<NodeQuery>,
) -> ApiResult<Json<Value>> {
    let (items, next) = nodes::list(
        &svc,
        &caller,
        nodes::ListNodes {
            node_ids: split(q.ids),
            tags: parse_tags(q.tags)?,
            patch_group: q.patch_group,
            operating_system: q.operating_system,
            ping_status: q.ping_status,
            next: q.next,
            limit: q.limit,
        },
    )
    .await?;
    Ok(Json(json!({"items": items, "next": next})))
}

async fn get_node(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let node = nodes::get(&svc, &caller, &id).await?;
    let compliance = match fleet::node_compliance(&svc, &caller, &id, false).await {
        Ok(c) => Some(c),
        Err(e) if e.status == StatusCode::NOT_FOUND => None,
        Err(e) => return Err(e),
    };
    let mut v = serde_json::to_value(node).map_err(ApiError::internal)?;
    v["compliance"] = serde_json::to_value(compliance).map_err(ApiError::internal)?;
    Ok(Json(v))
}

async fn node_patches(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<fleet::NodeComplianceView>> {
    nodes::get(&svc, &caller, &id).await?;
    Ok(Json(
        fleet::node_compliance(&svc, &caller, &id, true).await?,
    ))
}

async fn node_timeline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Action::ReadFleet)?;
    let entries: Vec<Value> = svc
        .store
        .compliance_timeline(&id)
        .await?
        .into_iter()
        .map(|e| json!({"at": e.at, "summary": e.summary}))
        .collect();
    Ok(items(entries))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagRequest {
    #[serde(default)]
    add: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

async fn tag_node(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<TagRequest>,
) -> ApiResult<Json<nodes::NodeView>> {
    let add: Vec<(String, String)> = req.add.into_iter().collect();
    Ok(Json(
        nodes::tag(&svc, &caller, &id, &add, &req.remove).await?,
    ))
}

async fn deregister_node(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    nodes::deregister(&svc, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SummaryQuery {
    #[serde(default)]
    group_by: Option<String>,
}

async fn summary(
    State(svc): State<Services>,
    caller: Caller,
    Query(q): Query<SummaryQuery>,
) -> ApiResult<Json<Value>> {
    Ok(items(
        fleet::summary(&svc, &caller, q.group_by.as_deref()).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComplianceQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    patch_group: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn compliance_nodes(
    State(svc): State<Services>,
    caller: Caller,
    Query(q): Query<ComplianceQuery>,
) -> ApiResult<Json<Value>> {
    if let Some(s) = &q.status
        && s != "COMPLIANT"
        && s != "NON_COMPLIANT"
    {
        return Err(ApiError::invalid(
            "status",
            format!("status '{s}': expected COMPLIANT or NON_COMPLIANT"),
        ));
    }
    let (items, next) = fleet::list(
        &svc,
        &caller,
        ComplianceFilter {
            compliance_status: q.status,
            overall_severity: q.severity.map(|s| s.to_uppercase()),
            patch_group: q.patch_group,
        },
        q.next.as_deref(),
        q.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(json!({"items": items, "next": next})))
}
