//! CreateActivation, DescribeActivations, DeleteActivation on
//! `services::activations`.

use super::error::{SsmError, not_found_as};
use super::paging::{Paging, epoch, with_token};
use super::{Ctx, SsmResult, input};
use crate::services::activations::{self, ActivationView, CreateActivation};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Tags as a map; a key given twice is refused (AWS's `InvalidParameters`
/// would be a guess, so the validation code names the member).
pub(super) fn tag_map(tags: Vec<TagPair>) -> Result<BTreeMap<String, String>, SsmError> {
    let mut out = BTreeMap::new();
    for t in tags {
        if out.insert(t.key.clone(), t.value).is_some() {
            return Err(SsmError::validation(format!(
                "1 validation error detected: tag key '{}' is given more than once",
                t.key
            )));
        }
    }
    Ok(out)
}

#[derive(Deserialize, Default, Clone)]
#[serde(rename_all = "PascalCase", default)]
pub(super) struct TagPair {
    pub key: String,
    pub value: String,
}

pub(super) fn tag_list<'a>(tags: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Array(
        tags.into_iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect(),
    )
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateRequest {
    description: Option<String>,
    default_instance_name: Option<String>,
    iam_role: String,
    registration_limit: Option<i64>,
    expiration_date: Option<Value>,
    tags: Vec<TagPair>,
}

pub async fn create(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: CreateRequest = input(v)?;
    let req = CreateActivation {
        description: r.description.unwrap_or_default(),
        default_instance_name: r.default_instance_name,
        iam_role: r.iam_role,
        registration_limit: r.registration_limit,
        expiration_date: r
            .expiration_date
            .as_ref()
            .and_then(super::model::parse_timestamp),
        tags: tag_map(r.tags)?,
    };
    let created = activations::create(ctx.svc, ctx.caller, req)
        .await
        .map_err(|e| SsmError::from_api(e, "InvalidParameters"))
        .map_err(|mut e| {
            // The service's rules on the limit and the date are parameter
            // errors of this operation.
            if e.code == "ValidationException" {
                e.code = "InvalidParameters";
            }
            e
        })?;
    Ok(json!({"ActivationId": created.activation_id, "ActivationCode": created.activation_code}))
}

fn view_json(a: &ActivationView) -> Value {
    let tags: BTreeMap<String, String> = a
        .tags
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut v = json!({
        "ActivationId": a.activation_id,
        "Description": a.description,
        "IamRole": a.iam_role,
        "RegistrationLimit": a.registration_limit,
        "RegistrationsCount": a.registrations_count,
        "ExpirationDate": epoch(a.expiration_date),
        "Expired": a.expired,
        "CreatedDate": epoch(a.created_date),
        "Tags": tag_list(&tags),
    });
    if let Some(n) = &a.default_instance_name {
        v["DefaultInstanceName"] = json!(n);
    }
    v
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Filter {
    filter_key: Option<String>,
    filter_values: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DescribeRequest {
    filters: Vec<Filter>,
}

pub async fn describe(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: DescribeRequest = input(v)?;
    for f in &r.filters {
        if f.filter_key.is_none() {
            return Err(SsmError::invalid_filter("A filter needs a FilterKey"));
        }
    }
    let mut all = activations::list(ctx.svc, ctx.caller)
        .await
        .map_err(|e| SsmError::from_api(e, "InvalidActivationId"))?;
    all.retain(|a| {
        r.filters.iter().all(|f| {
            let field = match f.filter_key.as_deref() {
                Some("ActivationIds") => a.activation_id.as_str(),
                Some("DefaultInstanceName") => a.default_instance_name.as_deref().unwrap_or(""),
                Some("IamRole") => a.iam_role.as_str(),
                _ => return false,
            };
            f.filter_values.is_empty() || f.filter_values.iter().any(|x| x == field)
        })
    });
    all.sort_by(|a, b| a.activation_id.cmp(&b.activation_id));
    let (page, next) = paging.page(ctx, all, |a| a.activation_id.clone());
    let out = json!({"ActivationList": page.iter().map(view_json).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DeleteRequest {
    activation_id: String,
}

pub async fn delete(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: DeleteRequest = input(v)?;
    activations::delete(ctx.svc, ctx.caller, &r.activation_id)
        .await
        .map_err(not_found_as("InvalidActivationId", || {
            format!("Activation ID {} is not valid.", r.activation_id)
        }))?;
    Ok(json!({}))
}
