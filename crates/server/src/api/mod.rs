//! The HTTP surface: `/health` (the one unauthenticated endpoint),
//! `/api/v1` (people and scripts, API keys), `/agent/v1` (agents, their
//! client certificates) and `/` (the SSM-compatible API: SigV4 with the
//! API keys). Handlers are thin: extract, call a service, render.

pub mod agent;
pub mod body;
pub mod commands;
pub mod error;
pub mod fleet;
pub mod openapi;
pub mod ssm;
pub mod v1;

use crate::auth::parse_bearer;
use crate::services::{Caller, Services, keys};
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use error::ApiError;

/// The whole router.
pub fn router(svc: Services) -> Router {
    let limit = svc.config.max_body_bytes;
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .nest("/api/v1", v1::router().layer(DefaultBodyLimit::max(limit)))
        .nest("/agent/v1", agent::router(&svc))
        // The SSM-compatible API reads (and bounds) its body itself: SigV4
        // is verified on the raw bytes.
        .route("/", axum::routing::any(ssm::handle))
        .with_state(svc)
}

impl FromRequestParts<Services> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Services) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing Authorization: Bearer <access key id>:<secret access key>",
                )
            })?;
        let (id, secret) = parse_bearer(header).ok_or_else(|| {
            ApiError::unauthorized(
                "malformed Authorization header; expected Bearer <access key id>:<secret access key>",
            )
        })?;
        keys::authenticate(svc, id, secret).await
    }
}
