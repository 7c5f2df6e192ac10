//! `/api/v1/commands`: Run Command (send, list, show, invocations, output,
//! cancel) and `/api/v1/compliance/scan`, its short form for a Scan.

use super::body::JsonBody;
use super::error::ApiResult;
use crate::services::commands::{self, SendRequest};
use crate::services::{Caller, Services};
use crate::store::{CommandFilter, InvocationFilter};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use jiff::Timestamp;
use patchfleet_core::command::Target;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/commands", get(list).post(send))
        .route("/commands/{id}", get(show))
        .route("/commands/{id}/cancel", post(cancel))
        .route("/commands/{id}/invocations", get(invocations))
        .route("/commands/{id}/invocations/{node}", get(invocation))
        .route("/commands/{id}/invocations/{node}/output", get(output))
        .route("/compliance/scan", post(scan))
}

async fn send(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(req): JsonBody<SendRequest>,
) -> ApiResult<(StatusCode, Json<commands::CommandView>)> {
    Ok((
        StatusCode::CREATED,
        Json(commands::send(&svc, &caller, req).await?),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    node_id: Option<String>,
    #[serde(default)]
    document_name: Option<String>,
    #[serde(default)]
    requested_after: Option<Timestamp>,
    #[serde(default)]
    requested_before: Option<Timestamp>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list(
    State(svc): State<Services>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filter = CommandFilter {
        command_id: None,
        node_id: q.node_id,
        status: q.status,
        document_name: q.document_name,
        requested_after: q.requested_after,
        requested_before: q.requested_before,
    };
    let page = commands::list(
        &svc,
        &caller,
        &filter,
        q.next.as_deref(),
        q.limit.unwrap_or(50).clamp(1, 1000),
    )
    .await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}

async fn show(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<commands::CommandView>> {
    Ok(Json(commands::get(&svc, &caller, &id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    /// Empty: the whole command.
    #[serde(default)]
    node_ids: Vec<String>,
}

async fn cancel(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<CancelRequest>,
) -> ApiResult<Json<commands::CommandView>> {
    Ok(Json(
        commands::cancel(&svc, &caller, &id, &req.node_ids).await?,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InvocationsQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn invocations(
    State(svc): State<Services>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<InvocationsQuery>,
) -> ApiResult<Json<Value>> {
    let filter = InvocationFilter {
        command_id: Some(id),
        node_id: None,
        status: q.status,
    };
    let page = commands::invocations(
        &svc,
        &caller,
        &filter,
        q.next.as_deref(),
        q.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    Ok(Json(json!({"items": page.items, "next": page.next})))
}

async fn invocation(
    State(svc): State<Services>,
    caller: Caller,
    Path((id, node)): Path<(String, String)>,
) -> ApiResult<Json<commands::InvocationView>> {
    Ok(Json(commands::invocation(&svc, &caller, &id, &node).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OutputQuery {
    /// `stdout` (default) or `stderr`.
    #[serde(default)]
    stream: Option<String>,
}

async fn output(
    State(svc): State<Services>,
    caller: Caller,
    Path((id, node)): Path<(String, String)>,
    Query(q): Query<OutputQuery>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    let text = commands::output(
        &svc,
        &caller,
        &id,
        &node,
        q.stream.as_deref().unwrap_or("stdout"),
    )
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        text,
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    /// Node ids; with no targets either: every registered node.
    #[serde(default)]
    node_ids: Vec<String>,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    max_concurrency: Option<String>,
    #[serde(default)]
    max_errors: Option<String>,
}

/// A Scan command (`AWS-RunPatchBaseline`, `Operation=Scan`).
async fn scan(
    State(svc): State<Services>,
    caller: Caller,
    JsonBody(req): JsonBody<ScanRequest>,
) -> ApiResult<(StatusCode, Json<commands::CommandView>)> {
    let targets = if req.node_ids.is_empty() && req.targets.is_empty() {
        vec![Target {
            key: "InstanceIds".into(),
            values: vec!["*".into()],
        }]
    } else {
        req.targets
    };
    let send = SendRequest {
        document_name: "AWS-RunPatchBaseline".into(),
        instance_ids: req.node_ids,
        targets,
        parameters: HashMap::from([("Operation".to_string(), vec!["Scan".to_string()])]),
        max_concurrency: req.max_concurrency,
        max_errors: req.max_errors,
        comment: Some("compliance scan".into()),
        ..SendRequest::default()
    };
    Ok((
        StatusCode::CREATED,
        Json(commands::send(&svc, &caller, send).await?),
    ))
}
