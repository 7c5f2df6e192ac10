//! Request bodies: JSON read with the member path of any error, so a client
//! learns which member was wrong (`rules[0].approve_after_days: invalid
//! type: string "7", expected i64`). Unknown members are refused by the
//! types (`deny_unknown_fields`).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLarge",
                format!("the request body could not be read: {e}"),
            )
        })?;
        parse(&bytes).map(JsonBody)
    }
}

pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = format!("invalid JSON body: {inner}");
        // Not JSON at all (or cut short): no member to name; the path
        // would be `?` or wherever the parser gave up.
        let malformed = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        if malformed || path == "." || path == "?" || path.is_empty() {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
        } else {
            ApiError::invalid(&path, format!("{path}: {inner}"))
        }
    })
}
