//! Managed nodes: DescribeInstanceInformation, DeregisterManagedInstance,
//! and the tag operations (nodes and baselines) on `services::nodes` and
//! `services::baselines`.

use super::activations::{TagPair, tag_list, tag_map};
use super::error::{SsmError, not_found_as};
use super::paging::{Paging, epoch};
use super::{Ctx, SsmResult, input};
use crate::services::nodes::{self, ListNodes, NodeView};
use crate::services::{activations, baselines};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

const PING: &[&str] = &["Online", "ConnectionLost", "Inactive"];
const PLATFORMS: &[&str] = &["Windows", "Linux", "MacOS"];
const RESOURCE_TYPES: &[&str] = &["EC2Instance", "ManagedInstance"];
const ASSOCIATION: &[&str] = &["Success", "Pending", "Failed"];
const SOURCE_TYPE: &str = "AWS::SSM::ManagedInstance";

#[derive(Deserialize, Default)]
#[serde(default)]
struct LegacyFilter {
    key: String,
    #[serde(rename = "valueSet")]
    value_set: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StringFilter {
    key: String,
    values: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DescribeRequest {
    instance_information_filter_list: Option<Vec<LegacyFilter>>,
    filters: Option<Vec<StringFilter>>,
}

/// One filter, checked: (key, values).
fn check_filters(filters: &[(String, Vec<String>)]) -> Result<(), SsmError> {
    let is_tag = |k: &str| k == "tag-key" || k.starts_with("tag:");
    let tags = filters.iter().filter(|(k, _)| is_tag(k)).count();
    if tags > 0 && tags < filters.len() {
        return Err(SsmError::client(
            "InvalidFilterKey",
            "Tag filters can't be combined with other filter types.",
        ));
    }
    for (k, values) in filters {
        let allowed: Option<&[&str]> = match k.as_str() {
            "PingStatus" => Some(PING),
            "PlatformTypes" => Some(PLATFORMS),
            "ResourceType" => Some(RESOURCE_TYPES),
            "AssociationStatus" => Some(ASSOCIATION),
            "InstanceIds" | "AgentVersion" | "ActivationIds" | "IamRole" | "SourceIds"
            | "SourceTypes" | "tag-key" => None,
            t if t.starts_with("tag:") && t.len() > 4 => None,
            other => {
                return Err(SsmError::client(
                    "InvalidFilterKey",
                    format!("The filter key {other} is not valid."),
                ));
            }
        };
        if let Some(allowed) = allowed
            && let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str()))
        {
            return Err(SsmError::client(
                "InvalidInstanceInformationFilterValue",
                format!(
                    "The filter value {bad} is not valid for {k}; expected one of [{}]",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn matches(n: &NodeView, iam_role: &str, filters: &[(String, Vec<String>)]) -> bool {
    filters.iter().all(|(k, values)| {
        let any = |field: &str| values.iter().any(|v| v == field);
        match k.as_str() {
            "InstanceIds" | "SourceIds" => any(&n.node_id),
            "AgentVersion" => any(&n.agent_version),
            "PingStatus" => any(n.ping_status),
            "PlatformTypes" => any(&n.platform_type),
            "ActivationIds" => any(&n.activation_id),
            "IamRole" => any(iam_role),
            "ResourceType" => any("ManagedInstance"),
            "SourceTypes" => any(SOURCE_TYPE),
            // No associations yet: no node has an association status.
            "AssociationStatus" => false,
            "tag-key" => n.tags.keys().any(|t| any(t)),
            t => t
                .strip_prefix("tag:")
                .and_then(|key| n.tags.get(key))
                .is_some_and(|v| any(v)),
        }
    })
}

fn information(n: &NodeView, iam_role: Option<&String>) -> Value {
    let mut v = json!({
        "InstanceId": n.node_id,
        "PingStatus": n.ping_status,
        "LastPingDateTime": epoch(n.last_ping),
        "AgentVersion": n.agent_version,
        "PlatformType": n.platform_type,
        "PlatformName": n.platform_name,
        "PlatformVersion": n.platform_version,
        "ActivationId": n.activation_id,
        "RegistrationDate": epoch(n.registration_date),
        "ResourceType": "ManagedInstance",
        "Name": n.name,
        "IPAddress": n.ip_address,
        "ComputerName": n.computer_name,
        "SourceId": n.node_id,
        "SourceType": SOURCE_TYPE,
    });
    if let Some(r) = iam_role {
        v["IamRole"] = json!(r);
    }
    v
}

pub async fn describe_instance_information(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 10)?;
    let r: DescribeRequest = input(v)?;
    let filters: Vec<(String, Vec<String>)> = match (r.instance_information_filter_list, r.filters)
    {
        (Some(_), Some(_)) => {
            return Err(SsmError::validation(
                "InstanceInformationFilterList and Filters cannot be used together.",
            ));
        }
        (Some(l), None) => l.into_iter().map(|f| (f.key, f.value_set)).collect(),
        (None, Some(f)) => f.into_iter().map(|f| (f.key, f.values)).collect(),
        (None, None) => Vec::new(),
    };
    check_filters(&filters)?;
    // Named nodes must exist (spec §2.2).
    for (k, ids) in &filters {
        if k != "InstanceIds" {
            continue;
        }
        let (found, _) = nodes::list(
            ctx.svc,
            ctx.caller,
            ListNodes {
                node_ids: ids.clone(),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| SsmError::from_api(e, "InvalidInstanceId"))?;
        if let Some(missing) = ids
            .iter()
            .find(|id| !found.iter().any(|n| &n.node_id == *id))
        {
            return Err(SsmError::client(
                "InvalidInstanceId",
                format!("Instance Id {missing} is not valid: it names no registered managed node."),
            ));
        }
    }
    let roles: HashMap<String, String> = activations::list(ctx.svc, ctx.caller)
        .await
        .map_err(|e| SsmError::from_api(e, "InvalidInstanceId"))?
        .into_iter()
        .map(|a| (a.activation_id, a.iam_role))
        .collect();
    // Walk the nodes in id order from the token on, until a page is full
    // and one more match shows that another page follows.
    let prefilter: Vec<String> = filters
        .iter()
        .find(|(k, _)| k == "InstanceIds")
        .map(|(_, ids)| ids.clone())
        .unwrap_or_default();
    let mut page: Vec<NodeView> = Vec::new();
    let mut more = false;
    let mut after = paging.after.clone();
    'scan: loop {
        let (batch, next) = nodes::list(
            ctx.svc,
            ctx.caller,
            ListNodes {
                node_ids: prefilter.clone(),
                next: after.clone(),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| SsmError::from_api(e, "InvalidInstanceId"))?;
        for n in batch {
            let role = roles.get(&n.activation_id).map_or("", String::as_str);
            if matches(&n, role, &filters) {
                if page.len() == paging.limit {
                    more = true;
                    break 'scan;
                }
                page.push(n);
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let list: Vec<Value> = page
        .iter()
        .map(|n| information(n, roles.get(&n.activation_id)))
        .collect();
    let mut out = json!({"InstanceInformationList": list});
    if more && let Some(last) = page.last() {
        out["NextToken"] = json!(paging.token(ctx, &last.node_id));
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DeregisterRequest {
    instance_id: String,
}

pub async fn deregister(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: DeregisterRequest = input(v)?;
    nodes::deregister(ctx.svc, ctx.caller, &r.instance_id)
        .await
        .map_err(not_found_as("InvalidInstanceId", || {
            format!("Instance Id {} is not valid.", r.instance_id)
        }))?;
    Ok(json!({}))
}

/// The tagged resource kinds this server has.
enum Resource {
    Node(String),
    Baseline(String),
}

fn resource(resource_type: &str, id: &str) -> Result<Resource, SsmError> {
    match resource_type {
        "ManagedInstance" => {
            if !crate::ids::is_node_id(id) {
                return Err(SsmError::client(
                    "InvalidResourceId",
                    format!(
                        "The resource ID {id} is not valid for ManagedInstance: expected mi- and 17 hex digits."
                    ),
                ));
            }
            Ok(Resource::Node(id.to_string()))
        }
        "PatchBaseline" => Ok(Resource::Baseline(id.to_string())),
        other => Err(SsmError::client(
            "InvalidResourceType",
            format!(
                "The resource type {other} is not supported here; tag ManagedInstance or PatchBaseline resources."
            ),
        )),
    }
}

/// At most this many tags on one resource (spec §2.10).
const MAX_TAGS: usize = 50;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct TagRequest {
    resource_type: String,
    resource_id: String,
    tags: Vec<TagPair>,
    tag_keys: Vec<String>,
}

fn not_found(id: &str) -> impl Fn(crate::api::error::ApiError) -> SsmError + '_ {
    not_found_as("InvalidResourceId", move || {
        format!("The resource ID {id} is not valid. Verify the ID and try again.")
    })
}

async fn current_tags(ctx: &Ctx<'_>, r: &Resource) -> Result<Vec<(String, String)>, SsmError> {
    match r {
        Resource::Node(id) => Ok(nodes::get(ctx.svc, ctx.caller, id)
            .await
            .map_err(not_found(id))?
            .tags
            .into_iter()
            .collect()),
        Resource::Baseline(id) => baselines::tags(ctx.svc, ctx.caller, id)
            .await
            .map_err(not_found(id)),
    }
}

pub async fn add_tags(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: TagRequest = input(v)?;
    let res = resource(&r.resource_type, &r.resource_id)?;
    let add: Vec<(String, String)> = tag_map(r.tags)?.into_iter().collect();
    let current = current_tags(ctx, &res).await?;
    let after = current
        .iter()
        .map(|(k, _)| k)
        .chain(add.iter().map(|(k, _)| k))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if after > MAX_TAGS {
        return Err(SsmError::client(
            "TooManyTagsError",
            format!("A resource can have at most {MAX_TAGS} tags; this would give it {after}."),
        ));
    }
    match &res {
        Resource::Node(id) => {
            nodes::tag(ctx.svc, ctx.caller, id, &add, &[])
                .await
                .map_err(not_found(id))?;
        }
        Resource::Baseline(id) => {
            baselines::tag(ctx.svc, ctx.caller, id, &add, &[])
                .await
                .map_err(not_found(id))?;
        }
    }
    Ok(json!({}))
}

pub async fn remove_tags(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: TagRequest = input(v)?;
    let res = resource(&r.resource_type, &r.resource_id)?;
    match &res {
        Resource::Node(id) => {
            nodes::tag(ctx.svc, ctx.caller, id, &[], &r.tag_keys)
                .await
                .map_err(not_found(id))?;
        }
        Resource::Baseline(id) => {
            baselines::tag(ctx.svc, ctx.caller, id, &[], &r.tag_keys)
                .await
                .map_err(not_found(id))?;
        }
    }
    Ok(json!({}))
}

pub async fn list_tags(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: TagRequest = input(v)?;
    let res = resource(&r.resource_type, &r.resource_id)?;
    let tags = current_tags(ctx, &res).await?;
    Ok(json!({"TagList": tag_list(tags.iter().map(|(k, v)| (k, v)))}))
}
