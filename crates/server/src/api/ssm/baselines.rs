//! Patch baselines, defaults and patch groups on `services::baselines`
//! (the documents are SSM-shaped already: the member names of the API are
//! the model's).

use super::error::{SsmError, not_found_as};
use super::model::constraints_message;
use super::paging::{Paging, with_token};
use super::{Ctx, SsmResult, input};
use crate::services::baselines::{self, BaselineView};
use crate::services::fleet::Resolver;
use patchfleet_core::baseline::predefined;
use patchfleet_core::os::OperatingSystem;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The members of CreatePatchBaseline/UpdatePatchBaseline that make up the
/// document (the others steer the request).
const DOCUMENT_MEMBERS: &[&str] = &[
    "Name",
    "OperatingSystem",
    "GlobalFilters",
    "ApprovalRules",
    "ApprovedPatches",
    "ApprovedPatchesComplianceLevel",
    "ApprovedPatchesEnableNonSecurity",
    "RejectedPatches",
    "RejectedPatchesAction",
    "Description",
    "Sources",
    "AvailableSecurityUpdatesComplianceStatus",
];

fn document_of(input: &Value, extra: &[&str]) -> Map<String, Value> {
    let mut doc = Map::new();
    if let Some(o) = input.as_object() {
        for m in DOCUMENT_MEMBERS.iter().chain(extra) {
            if let Some(v) = o.get(*m)
                && !v.is_null()
            {
                doc.insert((*m).to_string(), v.clone());
            }
        }
    }
    doc
}

/// The document checked by `core`, every violation in one AWS-worded
/// message.
fn check_document(doc: &Value) -> Result<(), SsmError> {
    baselines::document_errors(doc)
        .map(|_| ())
        .map_err(|errors| SsmError::validation(constraints_message(&errors)))
}

fn missing(id: &str) -> String {
    format!("Patch Baseline {id} does not exist.")
}

/// `not_found`: the code for an unknown baseline in this operation.
fn baseline_error<'a>(
    id: &'a str,
    not_found: &'static str,
) -> impl Fn(crate::api::error::ApiError) -> SsmError + 'a {
    not_found_as(not_found, move || missing(id))
}

/// A syntactically valid id (the model's pattern) that can name nothing
/// here: neither `pb-` and 17 hex digits, an ARN, nor a predefined name.
fn check_id_form(id: &str) -> Result<(), SsmError> {
    let plain = predefined::strip_arn(id);
    if crate::ids::is_baseline_id(plain) || predefined::by_id_or_name(id).is_some() {
        Ok(())
    } else {
        Err(SsmError::client(
            "InvalidResourceId",
            format!(
                "{id} is not a valid patch baseline ID: expected pb- and 17 hexadecimal digits, or an ARN."
            ),
        ))
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IdRequest {
    baseline_id: String,
    patch_group: String,
    operating_system: Option<String>,
    client_token: Option<String>,
    replace: Option<bool>,
}

pub async fn create(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let doc = Value::Object(document_of(&v, &["Tags"]));
    let r: IdRequest = input(v)?;
    check_document(&doc)?;
    let created = baselines::create(ctx.svc, ctx.caller, &doc, r.client_token.as_deref())
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    Ok(json!({"BaselineId": created.baseline_id}))
}

/// GetPatchBaseline's members of a baseline view.
fn baseline_json(view: &BaselineView, with_groups: bool) -> Value {
    let mut doc = view.document.clone();
    if let Some(o) = doc.as_object_mut() {
        o.remove("Tags");
        o.insert("BaselineId".into(), json!(view.baseline_id));
        if with_groups {
            o.insert("PatchGroups".into(), json!(view.patch_groups));
        } else {
            o.remove("PatchGroups");
        }
    }
    doc
}

pub async fn get(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    check_id_form(&r.baseline_id)?;
    let view = baselines::get(ctx.svc, ctx.caller, &r.baseline_id, None)
        .await
        .map_err(baseline_error(&r.baseline_id, "DoesNotExistException"))?;
    Ok(baseline_json(&view, true))
}

pub async fn update(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let given = document_of(&v, &[]);
    let r: IdRequest = input(v)?;
    check_id_form(&r.baseline_id)?;
    let current = baselines::get(ctx.svc, ctx.caller, &r.baseline_id, None)
        .await
        .map_err(baseline_error(&r.baseline_id, "DoesNotExistException"))?;
    if current.predefined {
        return Err(SsmError::client(
            "InvalidResourceId",
            format!(
                "{} is a predefined baseline and cannot be changed; create a custom one.",
                r.baseline_id
            ),
        ));
    }
    let replace = r.replace.unwrap_or(false);
    let mut doc = if replace {
        // Replace: what is not given is reset to its default.
        let mut d = Map::new();
        d.insert(
            "OperatingSystem".into(),
            current.document["OperatingSystem"].clone(),
        );
        d
    } else {
        let mut d = current.document.as_object().cloned().unwrap_or_default();
        for m in [
            "BaselineId",
            "PatchGroups",
            "CreatedDate",
            "ModifiedDate",
            "Tags",
        ] {
            d.remove(m);
        }
        d
    };
    if replace && !given.contains_key("Name") {
        return Err(SsmError::validation(
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null (Replace=true needs every member CreatePatchBaseline requires)",
        ));
    }
    for (k, val) in given {
        if k == "OperatingSystem" && val != current.document["OperatingSystem"] {
            return Err(SsmError::validation(format!(
                "1 validation error detected: OperatingSystem cannot change ({} to {}); create a new baseline",
                current.operating_system,
                val.as_str().unwrap_or_default()
            )));
        }
        doc.insert(k, val);
    }
    let doc = Value::Object(doc);
    check_document(&doc)?;
    let view = baselines::update(
        ctx.svc,
        ctx.caller,
        &current.baseline_id,
        &doc,
        current.current_version,
    )
    .await
    .map_err(baseline_error(&r.baseline_id, "DoesNotExistException"))?;
    Ok(baseline_json(&view, false))
}

pub async fn delete(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    check_id_form(&r.baseline_id)?;
    match baselines::delete(ctx.svc, ctx.caller, &r.baseline_id).await {
        Ok(()) => {}
        // No "not found" error is modelled: deleting what is not there
        // succeeds (spec §1.7).
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {}
        Err(e) => return Err(SsmError::from_api(e, "DoesNotExistException")),
    }
    Ok(json!({"BaselineId": r.baseline_id}))
}

fn identity(view: &BaselineView) -> Value {
    let mut v = json!({
        "BaselineId": view.baseline_id,
        "BaselineName": view.name,
        "OperatingSystem": view.operating_system,
        "DefaultBaseline": view.default_for_os,
    });
    if let Some(d) = view.document["Description"].as_str() {
        v["BaselineDescription"] = json!(d);
    }
    v
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct OrchestratorFilter {
    key: Option<String>,
    values: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListRequest {
    filters: Vec<OrchestratorFilter>,
}

fn parse_os(s: &str) -> Result<OperatingSystem, SsmError> {
    s.parse()
        .map_err(|_| SsmError::invalid_filter(format!("{s} is not an operating system")))
}

pub async fn describe(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 100)?;
    let r: ListRequest = input(v)?;
    let mut os_filter = None;
    for f in &r.filters {
        match f.key.as_deref() {
            Some("NAME_PREFIX" | "OWNER") => {}
            Some("OPERATING_SYSTEM") => {
                for v in &f.values {
                    parse_os(v)?;
                }
                if let [one] = f.values.as_slice() {
                    os_filter = Some(parse_os(one)?);
                }
            }
            other => {
                return Err(SsmError::invalid_filter(format!(
                    "The filter key {} is not valid for DescribePatchBaselines: use NAME_PREFIX, OWNER or OPERATING_SYSTEM.",
                    other.unwrap_or("(none)")
                )));
            }
        }
    }
    let mut all = baselines::list(ctx.svc, ctx.caller, os_filter)
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    all.retain(|b| {
        r.filters.iter().all(|f| {
            f.values.is_empty()
                || f.values.iter().any(|v| match f.key.as_deref() {
                    Some("NAME_PREFIX") => b.name.starts_with(v.as_str()),
                    Some("OWNER") => match v.as_str() {
                        "AWS" => b.predefined,
                        "Self" => !b.predefined,
                        "All" => true,
                        _ => false,
                    },
                    Some("OPERATING_SYSTEM") => b.operating_system == *v,
                    _ => false,
                })
        })
    });
    all.sort_by(|a, b| a.baseline_id.cmp(&b.baseline_id));
    let (page, next) = paging.page(ctx, all, |b| b.baseline_id.clone());
    let out = json!({"BaselineIdentities": page.iter().map(identity).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

pub async fn register_default(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    check_id_form(&r.baseline_id)?;
    let view = baselines::set_default(ctx.svc, ctx.caller, &r.baseline_id)
        .await
        .map_err(baseline_error(&r.baseline_id, "DoesNotExistException"))?;
    Ok(json!({"BaselineId": view.baseline_id}))
}

fn os_of(r: &IdRequest) -> Result<OperatingSystem, SsmError> {
    // SSM's default operating system is Windows.
    r.operating_system
        .as_deref()
        .unwrap_or("WINDOWS")
        .parse()
        .map_err(|_| SsmError::validation("unknown operating system"))
}

pub async fn get_default(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    let os = os_of(&r)?;
    ctx.caller
        .require(crate::auth::Action::ReadFleet)
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    let id = baselines::default_id(ctx.svc, os)
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?
        .ok_or_else(|| {
            SsmError::client(
                "DoesNotExistException",
                format!(
                    "There is no default patch baseline for {}: Patchfleet evaluates Linux nodes only.",
                    os.as_str()
                ),
            )
        })?;
    Ok(json!({"BaselineId": id, "OperatingSystem": os.as_str()}))
}

pub async fn register_patch_group(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    check_id_form(&r.baseline_id)?;
    let rec = baselines::register_patch_group(ctx.svc, ctx.caller, &r.patch_group, &r.baseline_id)
        .await
        .map_err(baseline_error(&r.baseline_id, "DoesNotExistException"))?;
    Ok(json!({"BaselineId": rec.baseline_id, "PatchGroup": rec.patch_group}))
}

pub async fn deregister_patch_group(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    check_id_form(&r.baseline_id)?;
    baselines::deregister_patch_group(ctx.svc, ctx.caller, &r.patch_group, &r.baseline_id)
        .await
        .map_err(not_found_as("InvalidResourceId", || {
            format!(
                "Patch Baseline {} is not registered for patch group {}.",
                r.baseline_id, r.patch_group
            )
        }))?;
    Ok(json!({"BaselineId": r.baseline_id, "PatchGroup": r.patch_group}))
}

pub async fn get_for_patch_group(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: IdRequest = input(v)?;
    let os = os_of(&r)?;
    ctx.caller
        .require(crate::auth::Action::ReadFleet)
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    // The group's baseline for the OS, else the OS's default: the rule
    // nodes are judged by.
    let resolver = Resolver::load(ctx.svc)
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    let id = resolver.baseline_for(os, Some(&r.patch_group));
    let mut out = json!({"PatchGroup": r.patch_group, "OperatingSystem": os.as_str()});
    if let Some(id) = id {
        out["BaselineId"] = json!(id);
    }
    Ok(out)
}

pub async fn describe_patch_groups(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 100)?;
    let r: ListRequest = input(v)?;
    for f in &r.filters {
        match f.key.as_deref() {
            Some("NAME_PREFIX") => {}
            Some("OPERATING_SYSTEM") => {
                for v in &f.values {
                    parse_os(v)?;
                }
            }
            other => {
                return Err(SsmError::invalid_filter(format!(
                    "The filter key {} is not valid for DescribePatchGroups: use NAME_PREFIX or OPERATING_SYSTEM.",
                    other.unwrap_or("(none)")
                )));
            }
        }
    }
    let groups = baselines::patch_groups(ctx.svc, ctx.caller)
        .await
        .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
    let mut mappings = Vec::new();
    for g in groups {
        let keep = r.filters.iter().all(|f| {
            f.values.is_empty()
                || f.values.iter().any(|v| match f.key.as_deref() {
                    Some("NAME_PREFIX") => g.patch_group.starts_with(v.as_str()),
                    Some("OPERATING_SYSTEM") => g.operating_system == *v,
                    _ => false,
                })
        });
        if keep {
            mappings.push(g);
        }
    }
    // (patch group, OS) is unique; NUL cannot occur in either.
    let key = |g: &crate::store::PatchGroupRecord| {
        format!("{}\u{0}{}", g.patch_group, g.operating_system)
    };
    let (page, next) = paging.page(ctx, mappings, key);
    let mut items = Vec::with_capacity(page.len());
    for g in page {
        let view = baselines::get(ctx.svc, ctx.caller, &g.baseline_id, None)
            .await
            .map_err(|e| SsmError::from_api(e, "DoesNotExistException"))?;
        items.push(json!({"PatchGroup": g.patch_group, "BaselineIdentity": identity(&view)}));
    }
    let out = json!({"Mappings": items});
    Ok(with_token(out, next))
}
