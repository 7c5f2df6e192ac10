//! Activations (SSM's CreateActivation): an id and a code that let up to
//! `registration_limit` nodes register until `expiration_date`. The code is
//! shown once and stored hashed.

use super::{Caller, Services};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::{Action, sha256_hex};
use crate::ids;
use crate::store::Activation;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateActivation {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default_instance_name: Option<String>,
    #[serde(default)]
    pub iam_role: String,
    /// 1 to 1,000; default 1 (SSM's).
    #[serde(default)]
    pub registration_limit: Option<i64>,
    /// Default: 24 hours from now; at most 30 days (SSM's).
    #[serde(default)]
    pub expiration_date: Option<Timestamp>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CreatedActivation {
    pub activation_id: String,
    pub activation_code: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActivationView {
    pub activation_id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_instance_name: Option<String>,
    pub iam_role: String,
    pub registration_limit: i64,
    pub registrations_count: i64,
    pub expiration_date: Timestamp,
    pub expired: bool,
    pub created_date: Timestamp,
    pub tags: Value,
}

impl ActivationView {
    pub fn of(a: Activation, now: Timestamp) -> ActivationView {
        ActivationView {
            expired: a.expiration_date <= now,
            activation_id: a.activation_id,
            description: a.description,
            default_instance_name: a.default_instance_name,
            iam_role: a.iam_role,
            registration_limit: a.registration_limit,
            registrations_count: a.registrations_count,
            expiration_date: a.expiration_date,
            created_date: a.created_date,
            tags: a.tags,
        }
    }
}

pub async fn create(
    svc: &Services,
    caller: &Caller,
    req: CreateActivation,
) -> ApiResult<CreatedActivation> {
    caller.require(Action::ManageActivations)?;
    let now = Timestamp::now();
    let limit = req.registration_limit.unwrap_or(1);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "registration_limit",
            format!("registration_limit: {limit} is outside 1..1000"),
        ));
    }
    let expiration = req
        .expiration_date
        .unwrap_or(now + SignedDuration::from_hours(24));
    if expiration <= now {
        return Err(ApiError::invalid(
            "expiration_date",
            format!("expiration_date: {expiration} is not in the future"),
        ));
    }
    if expiration > now + SignedDuration::from_hours(24 * 30) {
        return Err(ApiError::invalid(
            "expiration_date",
            "expiration_date: at most 30 days from now",
        ));
    }
    if req.description.len() > 256 {
        return Err(ApiError::invalid(
            "description",
            "description: at most 256 characters",
        ));
    }
    for (k, v) in &req.tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(ApiError::invalid(
                "tags",
                format!("tags: key '{k}' must be 1-128 characters, its value at most 256"),
            ));
        }
    }
    let code = ids::secret(20);
    let activation = Activation {
        activation_id: ids::activation_id(),
        code_sha256: sha256_hex(&code),
        description: req.description,
        default_instance_name: req.default_instance_name,
        iam_role: req.iam_role,
        registration_limit: limit,
        registrations_count: 0,
        expiration_date: expiration,
        created_date: now,
        tags: serde_json::to_value(&req.tags).map_err(ApiError::internal)?,
    };
    let audit = caller.audit("CreateActivation").detail(serde_json::json!({
        "registration_limit": limit,
        "expiration_date": expiration,
    }));
    svc.store.create_activation(&activation, &audit).await?;
    Ok(CreatedActivation {
        activation_id: activation.activation_id,
        activation_code: code,
    })
}

pub async fn list(svc: &Services, caller: &Caller) -> ApiResult<Vec<ActivationView>> {
    caller.require(Action::ReadFleet)?;
    let now = Timestamp::now();
    Ok(svc
        .store
        .list_activations()
        .await?
        .into_iter()
        .map(|a| ActivationView::of(a, now))
        .collect())
}

pub async fn delete(svc: &Services, caller: &Caller, activation_id: &str) -> ApiResult<()> {
    caller.require(Action::ManageActivations)?;
    let audit = caller.audit("DeleteActivation").object(activation_id);
    svc.store.delete_activation(activation_id, &audit).await?;
    Ok(())
}
