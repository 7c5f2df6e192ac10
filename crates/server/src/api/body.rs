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
    // Tracking the member path costs a third of parsing a large facts
    // document: only a body that fails is read again to name the member.
    let fast = match serde_json::from_slice(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let e = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => e,
        // Only what follows the value was wrong (trailing characters).
        Ok(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                format!("invalid JSON body: {fast}"),
            ));
        }
    };
    let path = e.path().to_string();
    let inner = e.into_inner();
    let message = format!("invalid JSON body: {inner}");
    // Not JSON at all (or cut short): no member to name; the path would be
    // `?` or wherever the parser gave up.
    let malformed = matches!(
        inner.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    );
    if malformed || path == "." || path == "?" || path.is_empty() {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            message,
        ))
    } else {
        Err(ApiError::invalid(&path, format!("{path}: {inner}")))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        rules: Vec<Rule>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        days: i64,
    }

    #[test]
    fn errors_name_the_member_or_say_it_is_not_json() {
        assert!(parse::<Body>(br#"{"rules": [{"days": 7}]}"#).is_ok());
        let e = parse::<Body>(br#"{"rules": [{"days": "7"}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].days"));
        assert!(
            e.message.starts_with("rules[0].days: invalid type"),
            "{}",
            e.message
        );
        let e = parse::<Body>(br#"{"rules": [{"day": 7}]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("rules[0].day"), "{}", e.message);
        for bad in [&b"{not json"[..], br#"{"rules": []} trailing"#, b""] {
            let e = parse::<Body>(bad).unwrap_err();
            assert_eq!(e.code, "InvalidRequest", "{}", e.message);
        }
    }
}
