//! `/api/v1`: the native REST API. JSON in and out; lists are
//! `{"items": [...], "next": cursor?}`; errors `{code, message, field}`.

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use crate::auth::{Action, Role};
use crate::services::{Caller, Services, activations, baselines, keys};
use crate::store::AuditFilter;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use jiff::Timestamp;
use patchfleet_core::os::OperatingSystem;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub fn router() -> Router<Services> {
    Router::new()
        .route("/api-keys", get(list_keys).post(create_key))
        .route("/api-keys/{id}", axum::routing::delete(delete_key))
        .route(
            "/activations",
            get(list_activations).post(create_activation),
        )
        .route(
            "/activations/{id}",
            axum::routing::delete(delete_activation),
        )
        .route("/baselines", get(list_baselines).post(create_baseline))
        .route(
            "/baselines/{id}",
            get(get_baseline)
                .put(update_baseline)
                .delete(delete_baseline),
        )
        .route("/baselines/preview", post(preview_baseline))
        .route("/baselines/{id}/versions", get(baseline_versions))
        .route("/baselines/{id}/diff", get(baseline_diff))
        .route("/baselines/{id}/revert", post(revert_baseline))
        .route("/baselines/{id}/default", post(set_default_baseline))
        .route(
            "/baselines/{id}/tags",
            get(baseline_tags).post(tag_baseline),
        )
        .route(
            "/patch-groups",
            get(list_patch_groups).post(register_patch_group),
        )
        .route(
            "/patch-groups/{group}/{baseline}",
            axum::routing::delete(deregister_patch_group),
        )
        .route("/audit", get(audit))
        .route("/openapi.json", get(super::openapi::handler))
        .merge(super::fleet::router())
        .merge(super::commands::router())
}

pub fn items<T: Serialize>(items: Vec<T>) -> Json<Value> {
    Json(json!({ "items": items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyRequest {
    name: String,
    role: Role,
}

async fn create_key(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(req): JsonBody<NewKeyRequest>,
) -> ApiResult<(StatusCode, Json<keys::NewKey>)> {
    let k = keys::create(&svc, &caller, &req.name, req.role).await?;
    Ok((StatusCode::CREATED, Json(k)))
}

async fn list_keys(State(svc): State<Services>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(items(keys::list(&svc, &caller).await?))
}

async fn delete_key(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    keys::delete(&svc, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_activation(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(req): JsonBody<activations::CreateActivation>,
) -> ApiResult<(StatusCode, Json<activations::CreatedActivation>)> {
    Ok((
        StatusCode::CREATED,
        Json(activations::create(&svc, &caller, req).await?),
    ))
}

async fn list_activations(State(svc): State<Services>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(items(activations::list(&svc, &caller).await?))
}

async fn delete_activation(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    activations::delete(&svc, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineQuery {
    #[serde(default)]
    operating_system: Option<String>,
    #[serde(default)]
    version: Option<i64>,
}

fn parse_os(s: &str) -> ApiResult<OperatingSystem> {
    s.parse().map_err(|_| {
        ApiError::invalid(
            "operating_system",
            format!("unknown operating system '{s}'"),
        )
    })
}

async fn list_baselines(
    State(svc): State<Services>,
    caller: Caller,
    Query(q): Query<BaselineQuery>,
) -> ApiResult<Json<Value>> {
    let os = q.operating_system.as_deref().map(parse_os).transpose()?;
    Ok(items(baselines::list(&svc, &caller, os).await?))
}

async fn create_baseline(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(doc): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<baselines::BaselineView>)> {
    Ok((
        StatusCode::CREATED,
        Json(baselines::create(&svc, &caller, &doc, None).await?),
    ))
}

async fn get_baseline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<BaselineQuery>,
) -> ApiResult<Json<baselines::BaselineView>> {
    Ok(Json(baselines::get(&svc, &caller, &id, q.version).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateQuery {
    #[serde(default)]
    expected_version: Option<i64>,
}

async fn update_baseline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<UpdateQuery>,
    JsonBody(doc): JsonBody<Value>,
) -> ApiResult<Json<baselines::BaselineView>> {
    Ok(Json(
        baselines::update(&svc, &caller, &id, &doc, q.expected_version).await?,
    ))
}

async fn delete_baseline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    baselines::delete(&svc, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn baseline_versions(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(items(baselines::versions(&svc, &caller, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    document: Value,
    #[serde(default)]
    baseline_id: Option<String>,
}

async fn preview_baseline(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(req): JsonBody<PreviewRequest>,
) -> ApiResult<Json<crate::services::preview::Preview>> {
    Ok(Json(
        crate::services::preview::preview(&svc, &caller, &req.document, req.baseline_id.as_deref())
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: i64,
    to: i64,
}

async fn baseline_diff(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Value>> {
    Ok(items(
        baselines::diff_versions(&svc, &caller, &id, q.from, q.to).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevertRequest {
    to_version: i64,
}

async fn revert_baseline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<RevertRequest>,
) -> ApiResult<Json<baselines::BaselineView>> {
    Ok(Json(
        baselines::revert(&svc, &caller, &id, req.to_version).await?,
    ))
}

async fn set_default_baseline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<baselines::BaselineView>> {
    Ok(Json(baselines::set_default(&svc, &caller, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchGroupRequest {
    patch_group: String,
    baseline_id: String,
}

async fn register_patch_group(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(req): JsonBody<PatchGroupRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let r =
        baselines::register_patch_group(&svc, &caller, &req.patch_group, &req.baseline_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"patch_group": r.patch_group, "operating_system": r.operating_system,
                    "baseline_id": r.baseline_id}),
        ),
    ))
}

async fn list_patch_groups(State(svc): State<Services>, caller: Caller) -> ApiResult<Json<Value>> {
    let groups: Vec<Value> = baselines::patch_groups(&svc, &caller)
        .await?
        .into_iter()
        .map(|r| {
            json!({"patch_group": r.patch_group, "operating_system": r.operating_system,
                   "baseline_id": r.baseline_id})
        })
        .collect();
    Ok(items(groups))
}

async fn deregister_patch_group(
    State(svc): State<Services>,
    caller: Caller,
    Path((group, baseline)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    baselines::deregister_patch_group(&svc, &caller, &group, &baseline).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    since: Option<Timestamp>,
    #[serde(default)]
    until: Option<Timestamp>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn audit(
    State(svc): State<Services>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    caller.require(Action::ReadAudit)?;
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        object: q.object,
        since: q.since,
        until: q.until,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = svc
        .store
        .list_audit(&filter, q.next.as_deref(), limit)
        .await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineTagRequest {
    #[serde(default)]
    add: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

fn tags_json(tags: Vec<(String, String)>) -> Json<Value> {
    Json(json!({ "tags": tags.into_iter().collect::<std::collections::BTreeMap<_, _>>() }))
}

async fn baseline_tags(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(tags_json(baselines::tags(&svc, &caller, &id).await?))
}

/// Adds (or replaces) and removes a custom baseline's tags.
async fn tag_baseline(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<BaselineTagRequest>,
) -> ApiResult<Json<Value>> {
    let add: Vec<(String, String)> = req.add.into_iter().collect();
    baselines::tag(&svc, &caller, &id, &add, &req.remove).await?;
    Ok(tags_json(baselines::tags(&svc, &caller, &id).await?))
}
