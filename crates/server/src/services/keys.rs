//! API keys: created with a role, the secret shown once; the bootstrap
//! admin key at first start.

use super::{Caller, Services};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::{Action, Role, secret_matches, sha256_hex};
use crate::ids;
use crate::store::{ApiKey, StoreError};
use jiff::Timestamp;
use serde::Serialize;

/// A new key, the only time its secret is seen.
#[derive(Clone, Debug, Serialize)]
pub struct NewKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub name: String,
    pub role: Role,
}

pub async fn create(svc: &Services, caller: &Caller, name: &str, role: Role) -> ApiResult<NewKey> {
    caller.require(Action::ManageApiKeys)?;
    if name.trim().is_empty() || name.len() > 128 {
        return Err(ApiError::invalid("name", "name: 1 to 128 characters"));
    }
    let secret = ids::secret(40);
    let key = ApiKey {
        access_key_id: ids::access_key_id(),
        name: name.to_string(),
        role,
        secret_sha256: sha256_hex(&secret),
        secret_sealed: svc.key.seal(secret.as_bytes()),
        created_at: Timestamp::now(),
        disabled: false,
    };
    let audit = caller
        .audit("CreateApiKey")
        .detail(serde_json::json!({"name": name, "role": role.as_str()}));
    svc.store.create_api_key(&key, &audit).await?;
    Ok(NewKey {
        access_key_id: key.access_key_id,
        secret_access_key: secret,
        name: key.name,
        role,
    })
}

/// The first admin key, created when the store has none; `None` otherwise.
pub async fn bootstrap(svc: &Services) -> ApiResult<Option<NewKey>> {
    if !svc.store.list_api_keys().await?.is_empty() {
        return Ok(None);
    }
    create(svc, &Caller::system(), "bootstrap admin", Role::Admin)
        .await
        .map(Some)
}

/// The caller a bearer token `id:secret` names, or 401.
pub async fn authenticate(svc: &Services, access_key_id: &str, secret: &str) -> ApiResult<Caller> {
    let denied = || ApiError::unauthorized("unknown access key or wrong secret");
    let key = match svc.store.get_api_key(access_key_id).await {
        Ok(k) => k,
        Err(StoreError::NotFound(_)) => return Err(denied()),
        Err(e) => return Err(e.into()),
    };
    if key.disabled || !secret_matches(secret, &key.secret_sha256) {
        return Err(denied());
    }
    Ok(Caller {
        actor: key.access_key_id,
        role: key.role,
    })
}

/// The caller and secret of an enabled key, for protocols that recompute
/// with the secret (SigV4). `NotFound` for an unknown or disabled key: the
/// caller tells neither apart from a wrong signature's sender.
pub async fn secret_of_active(
    svc: &Services,
    access_key_id: &str,
) -> Result<(Caller, String), StoreError> {
    let key = svc.store.get_api_key(access_key_id).await?;
    if key.disabled {
        return Err(StoreError::NotFound(format!("API key {access_key_id}")));
    }
    let plain = svc
        .key
        .open(&key.secret_sealed)
        .map_err(|e| StoreError::Database(e.to_string()))?;
    let secret = String::from_utf8(plain).map_err(|e| StoreError::Database(e.to_string()))?;
    Ok((
        Caller {
            actor: key.access_key_id,
            role: key.role,
        },
        secret,
    ))
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyView {
    pub access_key_id: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
    pub disabled: bool,
}

pub async fn list(svc: &Services, caller: &Caller) -> ApiResult<Vec<KeyView>> {
    caller.require(Action::ManageApiKeys)?;
    Ok(svc
        .store
        .list_api_keys()
        .await?
        .into_iter()
        .map(|k| KeyView {
            access_key_id: k.access_key_id,
            name: k.name,
            role: k.role,
            created_at: k.created_at,
            disabled: k.disabled,
        })
        .collect())
}

pub async fn delete(svc: &Services, caller: &Caller, access_key_id: &str) -> ApiResult<()> {
    caller.require(Action::ManageApiKeys)?;
    if access_key_id == caller.actor {
        return Err(ApiError::invalid(
            "access_key_id",
            "a key cannot delete itself; use another admin key",
        ));
    }
    let audit = caller.audit("DeleteApiKey").object(access_key_id);
    svc.store.delete_api_key(access_key_id, &audit).await?;
    Ok(())
}
