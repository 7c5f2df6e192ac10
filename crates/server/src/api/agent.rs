//! `/agent/v1`: the agent channel (see `patchfleet_protocol`). An agent is
//! whoever presents a client certificate our CA signed for a node that is
//! still registered; registration itself is authenticated by the activation.

use super::body::{JsonBody, parse};
use super::error::{ApiError, ApiResult};
use crate::serve::Peer;
use crate::services::{Services, commands, nodes, work};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use jiff::Timestamp;
use patchfleet_core::facts::NodeFacts;
use patchfleet_protocol::{
    FactsOffer, FactsOfferAck, Heartbeat, HeartbeatAck, InvocationReport, InvocationReportAck,
    NodeState, RegisterRequest, RegisterResponse, WorkItem, WorkResponse,
};
use serde::Deserialize;
use std::io::Read;
use std::time::Duration;

pub fn router(svc: &Services) -> Router<Services> {
    let facts_limit = svc.config.max_facts_bytes;
    let body_limit = svc.config.max_body_bytes;
    Router::new()
        .route("/register", post(register))
        .route("/heartbeat", post(heartbeat))
        .route("/facts/offer", post(offer))
        .route("/work", get(work))
        .layer(DefaultBodyLimit::max(body_limit))
        .merge(
            // A result carries the step's whole stdout and stderr.
            Router::new()
                .route("/invocations/{invocation_id}", post(report_invocation))
                .layer(DefaultBodyLimit::max(
                    body_limit.max(4 * patchfleet_protocol::MAX_OUTPUT_BYTES),
                )),
        )
        .merge(
            Router::new()
                .route("/facts/{hash}", put(upload))
                .layer(DefaultBodyLimit::max(facts_limit)),
        )
}

/// A registered node, identified by its client certificate.
pub struct AgentNode(pub String);

impl FromRequestParts<Services> for AgentNode {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Services) -> Result<AgentNode, ApiError> {
        let node_id = parts
            .extensions
            .get::<Peer>()
            .and_then(|p| p.identity.as_ref())
            .map(|i| i.node_id.clone())
            .ok_or_else(|| {
                ApiError::unauthorized("the agent channel needs the node's client certificate")
            })?;
        nodes::authenticate_agent(svc, &node_id).await?;
        Ok(AgentNode(node_id))
    }
}

async fn register(
    State(svc): State<Services>,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> ApiResult<Json<RegisterResponse>> {
    Ok(Json(nodes::register(&svc, req).await?))
}

async fn heartbeat(
    State(svc): State<Services>,
    AgentNode(node): AgentNode,
    JsonBody(hb): JsonBody<Heartbeat>,
) -> ApiResult<Json<HeartbeatAck>> {
    nodes::heartbeat(&svc, &node, &hb.agent).await?;
    Ok(Json(HeartbeatAck {
        heartbeat_seconds: svc.config.heartbeat_seconds,
        server_time: Timestamp::now(),
    }))
}

async fn offer(
    State(svc): State<Services>,
    AgentNode(node): AgentNode,
    JsonBody(offer): JsonBody<FactsOffer>,
) -> ApiResult<Json<FactsOfferAck>> {
    Ok(Json(nodes::offer_facts(&svc, &node, &offer).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// When the agent scanned (the offer's `scanned_at`); agents that do
    /// not send it get the upload's time.
    #[serde(default)]
    scanned_at: Option<Timestamp>,
}

async fn upload(
    State(svc): State<Services>,
    AgentNode(node): AgentNode,
    Path(hash): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let bytes = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .take(svc.config.max_facts_bytes as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::invalid("body", format!("not gzip: {e}")))?;
        if out.len() > svc.config.max_facts_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLarge",
                format!("the facts exceed {} bytes", svc.config.max_facts_bytes),
            ));
        }
        out
    } else {
        body.to_vec()
    };
    let facts: NodeFacts = parse(&bytes)?;
    let offer = FactsOffer {
        content_hash: hash.clone(),
        state: NodeState::of(&facts),
        scanned_at: q.scanned_at.unwrap_or_else(Timestamp::now),
    };
    nodes::upload_facts(&svc, &node, &hash, facts, &offer).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkQuery {
    #[serde(default)]
    wait: Option<u64>,
}

/// Long poll: at once when work is queued for the node, else when some
/// arrives (on any replica), else empty after `wait` seconds (at most 60).
async fn work(
    State(svc): State<Services>,
    AgentNode(node): AgentNode,
    Query(q): Query<WorkQuery>,
) -> ApiResult<Json<WorkResponse>> {
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(60));
    let items = work::poll(&svc, &node, wait).await?;
    Ok(Json(WorkResponse {
        items: items
            .into_iter()
            .map(|w| WorkItem {
                id: w.id,
                kind: w.kind,
                parameters: w.parameters,
            })
            .collect(),
    }))
}

/// An invocation's progress or result (the first `InProgress` is the
/// acknowledgement); `accepted: false` tells the agent to stop it.
async fn report_invocation(
    State(svc): State<Services>,
    AgentNode(node): AgentNode,
    Path(invocation_id): Path<String>,
    JsonBody(report): JsonBody<InvocationReport>,
) -> ApiResult<Json<InvocationReportAck>> {
    Ok(Json(
        commands::report(&svc, &node, &invocation_id, &report).await?,
    ))
}
