//! `NextToken`s (spec §1.5): opaque to clients, sealed with the server key
//! (AES-256-GCM, a fresh nonce each time), so a token never repeats, cannot
//! be forged or moved to another operation or filter set, and every replica
//! sharing the key can continue a listing another one started. A token
//! holds the sort key of the last item returned; the next page starts
//! after it, so items added or removed meanwhile never make a page repeat
//! or skip one that was already there.

use super::error::SsmError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How long a token is accepted.
const TOKEN_SECONDS: i64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Token {
    /// The operation.
    o: String,
    /// A hash of the request without its paging members.
    f: String,
    /// The sort key of the last item returned.
    k: String,
    /// Issued at (epoch seconds).
    t: i64,
}

/// Where a listing stands: the request's paging members, checked.
pub struct Paging {
    op: &'static str,
    filter_hash: String,
    /// Items after this key (`None`: from the start).
    pub after: Option<String>,
    pub limit: usize,
}

fn filter_hash(input: &Value) -> String {
    let mut v = input.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("NextToken");
        o.remove("MaxResults");
    }
    // serde_json's maps are ordered by key: the text is canonical.
    hex::encode(&Sha256::digest(v.to_string().as_bytes())[..12])
}

impl Paging {
    /// Reads `NextToken` and `MaxResults` (`default` when absent; the model
    /// already checked the range).
    pub fn read(ctx: &super::Ctx<'_>, input: &Value, default: usize) -> Result<Paging, SsmError> {
        let hash = filter_hash(input);
        let limit = input
            .get("MaxResults")
            .and_then(Value::as_u64)
            .map_or(default, |n| n as usize)
            .max(1);
        let after = match input.get("NextToken").and_then(Value::as_str) {
            None | Some("") => None,
            Some(t) => Some(open(ctx, t, &hash)?),
        };
        Ok(Paging {
            op: ctx.op,
            filter_hash: hash,
            after,
            limit,
        })
    }

    /// The token continuing after `key`.
    pub fn token(&self, ctx: &super::Ctx<'_>, key: &str) -> String {
        let t = Token {
            o: self.op.to_string(),
            f: self.filter_hash.clone(),
            k: key.to_string(),
            t: ctx.now.as_second(),
        };
        let json = serde_json::to_vec(&t).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(ctx.svc.key.seal(&json))
    }

    /// One page of `items` (sorted by `key`, ascending): the items after the
    /// token's key, at most `limit`, and the token of the next page when
    /// more follow.
    pub fn page<T>(
        &self,
        ctx: &super::Ctx<'_>,
        items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let mut rest: Vec<T> = match &self.after {
            Some(after) => items.into_iter().filter(|i| key(i) > *after).collect(),
            None => items,
        };
        if rest.len() > self.limit {
            rest.truncate(self.limit);
            let next = rest.last().map(|i| self.token(ctx, &key(i)));
            (rest, next)
        } else {
            (rest, None)
        }
    }
}

fn open(ctx: &super::Ctx<'_>, token: &str, hash: &str) -> Result<String, SsmError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| SsmError::invalid_next_token())?;
    let plain = ctx
        .svc
        .key
        .open(&bytes)
        .map_err(|_| SsmError::invalid_next_token())?;
    let t: Token = serde_json::from_slice(&plain).map_err(|_| SsmError::invalid_next_token())?;
    if t.o != ctx.op || t.f != hash || ctx.now.as_second() - t.t > TOKEN_SECONDS {
        return Err(SsmError::invalid_next_token());
    }
    Ok(t.k)
}

/// A timestamp as SSM sends it: epoch seconds with milliseconds.
pub fn epoch(t: jiff::Timestamp) -> Value {
    let millis = t.as_millisecond();
    if millis % 1000 == 0 {
        Value::from(millis / 1000)
    } else {
        serde_json::Number::from_f64(millis as f64 / 1000.0).map_or(Value::Null, Value::Number)
    }
}

/// `out` with `NextToken` when another page follows.
pub fn with_token(mut out: Value, next: Option<String>) -> Value {
    if let Some(n) = next {
        out["NextToken"] = Value::String(n);
    }
    out
}
