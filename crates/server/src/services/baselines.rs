//! Baselines: custom ones versioned (every update an immutable version,
//! revert, diff), predefined ones read-only, a default per operating
//! system, and patch groups (one baseline per OS per group). Documents are
//! SSM-shaped JSON and pass `core`'s validation before anything is stored.

use super::{Caller, Services};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Action;
use crate::diff::{Change, diff};
use crate::store::{BaselineRecord, PatchGroupRecord, StoreError};
use axum::http::StatusCode;
use jiff::Timestamp;
use patchfleet_core::baseline::{Baseline, predefined};
use patchfleet_core::os::OperatingSystem;
use serde::Serialize;
use serde_json::Value;

/// A baseline as the API shows it: the document with its id, and where it
/// stands.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineView {
    pub baseline_id: String,
    pub name: String,
    pub operating_system: String,
    pub predefined: bool,
    /// Versions of custom baselines; predefined ones have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    pub default_for_os: bool,
    pub patch_groups: Vec<String>,
    pub document: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
}

fn os_str(os: OperatingSystem) -> String {
    os.as_str().to_string()
}

/// Reads and validates an SSM-shaped document; every error names its member.
pub fn parse_document(doc: &Value) -> ApiResult<Baseline> {
    document_errors(doc).map_err(|all| ApiError::invalid("document", all.join("; ")))
}

/// [`parse_document`] with each violated constraint on its own, in SSM's
/// words (the SSM-compatible API counts them: `2 validation errors
/// detected: …`).
pub fn document_errors(doc: &Value) -> Result<Baseline, Vec<String>> {
    let baseline = Baseline::from_json(&doc.to_string()).map_err(|e| vec![e.to_string()])?;
    if let Err(errors) = baseline.validate() {
        return Err(errors.iter().map(|e| e.to_string()).collect());
    }
    Ok(baseline)
}

/// The stored form: the document without server-kept members.
fn stored_document(b: &Baseline) -> ApiResult<Value> {
    let mut b = b.clone();
    b.baseline_id = None;
    b.patch_groups.clear();
    b.created_date = None;
    b.modified_date = None;
    // Tags are kept beside the versions (they can change without one).
    b.tags.clear();
    serde_json::to_value(&b).map_err(ApiError::internal)
}

async fn defaults(svc: &Services) -> ApiResult<Vec<(String, String)>> {
    Ok(svc.store.default_baselines().await?)
}

/// The baseline that is the default for `os`: the registered one, else the
/// predefined one.
pub async fn default_id(svc: &Services, os: OperatingSystem) -> ApiResult<Option<String>> {
    let os_s = os_str(os);
    if let Some((_, id)) = defaults(svc).await?.into_iter().find(|(o, _)| *o == os_s) {
        return Ok(Some(id));
    }
    Ok(predefined::default_for(os).and_then(|b| b.baseline_id.clone()))
}

async fn view_of(
    svc: &Services,
    baseline: Baseline,
    record: Option<&BaselineRecord>,
    version: Option<i64>,
) -> ApiResult<BaselineView> {
    let id = baseline.baseline_id.clone().unwrap_or_default();
    let groups: Vec<String> = svc
        .store
        .list_patch_groups()
        .await?
        .into_iter()
        .filter(|g| g.baseline_id == id)
        .map(|g| g.patch_group)
        .collect();
    let default_for_os = default_id(svc, baseline.operating_system).await?.as_deref() == Some(&id);
    let mut shown = baseline.clone();
    shown.patch_groups = groups.clone();
    Ok(BaselineView {
        baseline_id: id,
        name: baseline.name.clone().unwrap_or_default(),
        operating_system: os_str(baseline.operating_system),
        predefined: record.is_none(),
        version,
        current_version: record.map(|r| r.current_version),
        default_for_os,
        patch_groups: groups,
        document: serde_json::to_value(&shown).map_err(ApiError::internal)?,
        updated_at: record.map(|r| r.updated_at),
    })
}

/// The baseline `id` (predefined: by id, name or ARN) at `version` (default
/// the current one), as core reads it.
pub async fn load(
    svc: &Services,
    id: &str,
    version: Option<i64>,
) -> ApiResult<(Baseline, Option<BaselineRecord>, Option<i64>)> {
    if let Some(b) = predefined::by_id_or_name(id) {
        if version.is_some() {
            return Err(ApiError::invalid(
                "version",
                "predefined baselines have no versions",
            ));
        }
        return Ok((b.clone(), None, None));
    }
    let id = predefined::strip_arn(id);
    let record = svc.store.get_baseline(id).await?;
    if record.deleted {
        return Err(ApiError::not_found(format!("baseline {id} was deleted")));
    }
    let v = svc.store.get_baseline_version(id, version).await?;
    let mut baseline = Baseline::from_json(&v.document.to_string())
        .map_err(|e| ApiError::internal(format!("stored baseline {id} v{}: {e}", v.version)))?;
    baseline.baseline_id = Some(id.to_string());
    baseline.created_date = Some(record.created_at);
    baseline.modified_date = Some(v.created_at);
    Ok((baseline, Some(record), Some(v.version)))
}

pub async fn get(
    svc: &Services,
    caller: &Caller,
    id: &str,
    version: Option<i64>,
) -> ApiResult<BaselineView> {
    caller.require(Action::ReadFleet)?;
    let (b, record, v) = load(svc, id, version).await?;
    view_of(svc, b, record.as_ref(), v).await
}

pub async fn list(
    svc: &Services,
    caller: &Caller,
    os: Option<OperatingSystem>,
) -> ApiResult<Vec<BaselineView>> {
    caller.require(Action::ReadFleet)?;
    let mut out = Vec::new();
    for b in predefined::all() {
        if os.is_none_or(|o| o == b.operating_system) {
            out.push(view_of(svc, b.clone(), None, None).await?);
        }
    }
    let os_filter = os.map(os_str);
    for r in svc.store.list_baselines(os_filter.as_deref()).await? {
        let (b, record, v) = load(svc, &r.baseline_id, None).await?;
        out.push(view_of(svc, b, record.as_ref(), v).await?);
    }
    Ok(out)
}

/// How long a `ClientToken` makes a create idempotent (SSM's retries and
/// a client's own).
const CLIENT_TOKEN_HOURS: i64 = 24;

/// Creates a baseline from `doc`. Its `Tags` become the baseline's tags.
/// With `client_token`, a repeat of the same request (by the same key,
/// within 24 hours) answers the baseline the first one created instead of
/// another; the same token with a different document is refused. Tokens
/// live in the audit entry of the create, so every replica sees them.
pub async fn create(
    svc: &Services,
    caller: &Caller,
    doc: &Value,
    client_token: Option<&str>,
) -> ApiResult<BaselineView> {
    caller.require(Action::ManageBaselines)?;
    let request_sha256 = crate::auth::sha256_hex(&doc.to_string());
    if let Some(token) = client_token
        && let Some(id) = created_with_token(svc, caller, token, &request_sha256).await?
    {
        return get(svc, caller, &id, None).await;
    }
    let baseline = parse_document(doc)?;
    if baseline.baseline_id.is_some() {
        return Err(ApiError::invalid(
            "BaselineId",
            "BaselineId is assigned by the server; leave it out",
        ));
    }
    let name = baseline.name.clone().unwrap_or_default();
    if predefined::is_reserved_name(&name) {
        return Err(ApiError::invalid(
            "Name",
            format!(
                "Name '{name}': names starting with AWS- are reserved for predefined baselines"
            ),
        ));
    }
    let mut tags: Vec<(String, String)> = Vec::new();
    for t in &baseline.tags {
        super::nodes::check_tag(&t.key, &t.value)?;
        tags.retain(|(k, _)| *k != t.key);
        tags.push((t.key.clone(), t.value.clone()));
    }
    let stored = stored_document(&baseline)?;
    let mut detail = serde_json::json!({"name": name});
    if let Some(token) = client_token {
        detail["client_token"] = Value::String(token.to_string());
        detail["request_sha256"] = Value::String(request_sha256);
    }
    let audit = caller.audit("CreatePatchBaseline").detail(detail);
    let record = svc
        .store
        .create_baseline(
            &name,
            &os_str(baseline.operating_system),
            &stored,
            &tags,
            Timestamp::now(),
            &audit,
        )
        .await?;
    get(svc, caller, &record.baseline_id, None).await
}

/// The baseline an earlier create with this token made, if any.
async fn created_with_token(
    svc: &Services,
    caller: &Caller,
    token: &str,
    request_sha256: &str,
) -> ApiResult<Option<String>> {
    let filter = crate::store::AuditFilter {
        actor: Some(caller.actor.clone()),
        action: Some("CreatePatchBaseline".into()),
        since: Some(Timestamp::now() - jiff::SignedDuration::from_hours(CLIENT_TOKEN_HOURS)),
        ..Default::default()
    };
    let mut after: Option<String> = None;
    loop {
        let page = svc
            .store
            .list_audit(&filter, after.as_deref(), 1000)
            .await?;
        for e in &page.items {
            if e.detail["client_token"].as_str() != Some(token) {
                continue;
            }
            if e.detail["request_sha256"].as_str() != Some(request_sha256) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "IdempotentParameterMismatch",
                    format!(
                        "ClientToken {token} was used by an earlier CreatePatchBaseline with other parameters"
                    ),
                ));
            }
            return Ok(e.objects.first().cloned());
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(None),
        }
    }
}

/// A custom baseline's tags, by key (a predefined one has none).
pub async fn tags(svc: &Services, caller: &Caller, id: &str) -> ApiResult<Vec<(String, String)>> {
    caller.require(Action::ReadFleet)?;
    let (b, record, _) = load(svc, id, None).await?;
    if record.is_none() {
        return Ok(Vec::new());
    }
    Ok(svc
        .store
        .baseline_tags(b.baseline_id.as_deref().unwrap_or(id))
        .await?)
}

/// Adds or replaces `add`, removes `remove` on a custom baseline. Tags do
/// not judge nodes: nothing is re-computed.
pub async fn tag(
    svc: &Services,
    caller: &Caller,
    id: &str,
    add: &[(String, String)],
    remove: &[String],
) -> ApiResult<()> {
    caller.require(Action::ManageBaselines)?;
    for (k, v) in add {
        super::nodes::check_tag(k, v)?;
    }
    let (b, record, _) = load(svc, id, None).await?;
    if record.is_none() {
        return Err(read_only(id));
    }
    let id = b.baseline_id.unwrap_or_else(|| id.to_string());
    let action = if add.is_empty() {
        "RemoveTagsFromResource"
    } else {
        "AddTagsToResource"
    };
    let audit = caller.audit(action).object(&id);
    svc.store
        .change_baseline_tags(&id, add, remove, &audit)
        .await?;
    Ok(())
}

/// After a change of what judges nodes (a baseline version, a default, a
/// patch group), every node is re-evaluated from its stored facts: no
/// re-scan. The change itself is committed; a failure here is logged and
/// the next re-computation (a new day, a report) catches up.
async fn recompute_fleet(svc: &Services, why: &str) {
    if let Err(e) = super::fleet::recompute(svc, None, Timestamp::now()).await {
        tracing::error!("re-evaluating the fleet after {why}: {}", e.message);
    }
}

fn read_only(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "ReadOnly",
        format!("{id} is a predefined baseline and cannot be changed; copy it into a custom one"),
    )
}

/// A new version from `doc`. `expected_version`: refuse (409) when the
/// baseline moved on since the caller read it.
pub async fn update(
    svc: &Services,
    caller: &Caller,
    id: &str,
    doc: &Value,
    expected_version: Option<i64>,
) -> ApiResult<BaselineView> {
    caller.require(Action::ManageBaselines)?;
    if predefined::is_predefined(id) {
        return Err(read_only(id));
    }
    let (current, record, _) = load(svc, id, None).await?;
    let record = record.ok_or_else(|| read_only(id))?;
    let mut baseline = parse_document(doc)?;
    if baseline
        .baseline_id
        .as_deref()
        .is_some_and(|b| b != record.baseline_id)
    {
        return Err(ApiError::invalid(
            "BaselineId",
            "BaselineId does not match the path",
        ));
    }
    if baseline.operating_system != current.operating_system {
        return Err(ApiError::invalid(
            "OperatingSystem",
            format!(
                "OperatingSystem cannot change ({} → {}); create a new baseline",
                current.operating_system.as_str(),
                baseline.operating_system.as_str()
            ),
        ));
    }
    baseline.baseline_id = None;
    let name = baseline.name.clone().unwrap_or_default();
    let stored = stored_document(&baseline)?;
    let expected = expected_version.unwrap_or(record.current_version);
    let audit = caller
        .audit("UpdatePatchBaseline")
        .object(&record.baseline_id)
        .detail(serde_json::json!({"from_version": expected}));
    svc.store
        .update_baseline(
            &record.baseline_id,
            expected,
            &name,
            &stored,
            Timestamp::now(),
            &audit,
        )
        .await?;
    recompute_fleet(svc, "a baseline update").await;
    get(svc, caller, &record.baseline_id, None).await
}

/// A new version equal to version `to` (history is never rewritten).
pub async fn revert(svc: &Services, caller: &Caller, id: &str, to: i64) -> ApiResult<BaselineView> {
    caller.require(Action::ManageBaselines)?;
    let old = svc.store.get_baseline_version(id, Some(to)).await?;
    update(svc, caller, id, &old.document, None).await
}

pub async fn delete(svc: &Services, caller: &Caller, id: &str) -> ApiResult<()> {
    caller.require(Action::ManageBaselines)?;
    // By id, ARN or name, as `load` finds them.
    if predefined::by_id_or_name(id).is_some()
        || predefined::is_predefined(predefined::strip_arn(id))
    {
        return Err(read_only(id));
    }
    let in_use: Vec<String> = svc
        .store
        .list_patch_groups()
        .await?
        .into_iter()
        .filter(|g| g.baseline_id == id)
        .map(|g| g.patch_group)
        .collect();
    let is_default = defaults(svc).await?.iter().any(|(_, b)| b == id);
    if !in_use.is_empty() || is_default {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ResourceInUse",
            format!(
                "baseline {id} is in use ({}); deregister it first",
                if is_default {
                    "the default baseline of its operating system".to_string()
                } else {
                    format!("patch groups {}", in_use.join(", "))
                }
            ),
        ));
    }
    let audit = caller.audit("DeletePatchBaseline").object(id);
    svc.store
        .delete_baseline(id, Timestamp::now(), &audit)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct VersionView {
    pub version: i64,
    pub created_at: Timestamp,
    pub actor: String,
    pub name: String,
}

pub async fn versions(svc: &Services, caller: &Caller, id: &str) -> ApiResult<Vec<VersionView>> {
    caller.require(Action::ReadFleet)?;
    if predefined::is_predefined(id) {
        return Ok(Vec::new());
    }
    Ok(svc
        .store
        .list_baseline_versions(id)
        .await?
        .into_iter()
        .map(|v| VersionView {
            version: v.version,
            created_at: v.created_at,
            actor: v.actor,
            name: v.document["Name"].as_str().unwrap_or_default().to_string(),
        })
        .collect())
}

pub async fn diff_versions(
    svc: &Services,
    caller: &Caller,
    id: &str,
    from: i64,
    to: i64,
) -> ApiResult<Vec<Change>> {
    caller.require(Action::ReadFleet)?;
    let a = svc.store.get_baseline_version(id, Some(from)).await?;
    let b = svc.store.get_baseline_version(id, Some(to)).await?;
    Ok(diff(&a.document, &b.document))
}

pub async fn set_default(svc: &Services, caller: &Caller, id: &str) -> ApiResult<BaselineView> {
    caller.require(Action::ManageBaselines)?;
    let (b, _, _) = load(svc, id, None).await?;
    let id = b.baseline_id.clone().unwrap_or_default();
    let audit = caller
        .audit("RegisterDefaultPatchBaseline")
        .object(&id)
        .detail(serde_json::json!({"operating_system": b.operating_system.as_str()}));
    svc.store
        .set_default_baseline(b.operating_system.as_str(), &id, &audit)
        .await?;
    recompute_fleet(svc, "a default baseline change").await;
    get(svc, caller, &id, None).await
}

pub async fn register_patch_group(
    svc: &Services,
    caller: &Caller,
    group: &str,
    id: &str,
) -> ApiResult<PatchGroupRecord> {
    caller.require(Action::ManageBaselines)?;
    patchfleet_core::baseline::validate_patch_group_name(group)
        .map_err(|e| ApiError::invalid("patch_group", e.to_string()))?;
    let (b, _, _) = load(svc, id, None).await?;
    let record = PatchGroupRecord {
        patch_group: group.to_string(),
        operating_system: b.operating_system.as_str().to_string(),
        baseline_id: b.baseline_id.clone().unwrap_or_default(),
    };
    let audit = caller
        .audit("RegisterPatchBaselineForPatchGroup")
        .object(&record.baseline_id)
        .detail(serde_json::json!({"patch_group": group}));
    svc.store
        .register_patch_group(&record, &audit)
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists(m) => {
                ApiError::new(StatusCode::CONFLICT, "AlreadyExists", m).field("patch_group")
            }
            e => e.into(),
        })?;
    recompute_fleet(svc, "a patch group registration").await;
    Ok(record)
}

pub async fn deregister_patch_group(
    svc: &Services,
    caller: &Caller,
    group: &str,
    id: &str,
) -> ApiResult<()> {
    caller.require(Action::ManageBaselines)?;
    let (b, _, _) = load(svc, id, None).await?;
    let os = b.operating_system.as_str();
    let registered = svc.store.list_patch_groups().await?.into_iter().any(|g| {
        g.patch_group == group
            && g.operating_system == os
            && Some(&g.baseline_id) == b.baseline_id.as_ref()
    });
    if !registered {
        return Err(ApiError::not_found(format!(
            "baseline {id} is not registered for patch group '{group}'"
        )));
    }
    let audit = caller
        .audit("DeregisterPatchBaselineForPatchGroup")
        .object(id)
        .detail(serde_json::json!({"patch_group": group}));
    svc.store.deregister_patch_group(group, os, &audit).await?;
    recompute_fleet(svc, "a patch group deregistration").await;
    Ok(())
}

pub async fn patch_groups(svc: &Services, caller: &Caller) -> ApiResult<Vec<PatchGroupRecord>> {
    caller.require(Action::ReadFleet)?;
    Ok(svc.store.list_patch_groups().await?)
}

/// A saved baseline version (immutable), through this replica's memo;
/// version 0 is a predefined baseline.
pub(crate) async fn version_cached(
    svc: &Services,
    id: &str,
    version: i64,
) -> ApiResult<std::sync::Arc<Baseline>> {
    let key = (id.to_string(), version);
    if let Some(b) = svc.baseline_versions.get(&key) {
        return Ok(b);
    }
    let b = std::sync::Arc::new(load(svc, id, (version > 0).then_some(version)).await?.0);
    svc.baseline_versions.insert(key, b.clone());
    Ok(b)
}
