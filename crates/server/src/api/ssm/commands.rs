//! SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation
//! and CancelCommand on `services::commands` (spec ssm-api §3): the same
//! validation, rollout and truncations as `/api/v1/commands`, in SSM's
//! shapes.

use super::error::{SsmError, not_found_as};
use super::paging::{Paging, epoch, with_token};
use super::{Ctx, SsmResult, input};
use crate::services::commands::{self, CommandView, InvocationView, PLUGIN_NAME, SendRequest};
use crate::store::{CommandFilter, InvocationFilter};
use jiff::Timestamp;
use patchfleet_core::command::Target;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Our documents have one version: the ones SSM accepts for it.
fn check_document_version(v: Option<&str>) -> Result<(), SsmError> {
    match v {
        None | Some("$DEFAULT" | "$LATEST" | "1") => Ok(()),
        Some(v) => Err(SsmError::client(
            "InvalidDocumentVersion",
            format!("The document version {v} is not valid; the document has version 1."),
        )),
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SendCommandRequest {
    instance_ids: Vec<String>,
    targets: Vec<Target>,
    document_name: String,
    document_version: Option<String>,
    timeout_seconds: Option<i64>,
    comment: Option<String>,
    parameters: HashMap<String, Vec<String>>,
    output_s3_bucket_name: Option<String>,
    output_s3_key_prefix: Option<String>,
    max_concurrency: Option<String>,
    max_errors: Option<String>,
    service_role_arn: Option<String>,
    notification_config: Option<Value>,
    cloud_watch_output_config: Option<Value>,
}

pub async fn send(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: SendCommandRequest = input(v)?;
    check_document_version(r.document_version.as_deref())?;
    // No SNS or CloudWatch here: accepting them would promise what never
    // happens.
    if r.notification_config.is_some() || r.service_role_arn.is_some() {
        return Err(SsmError::client(
            "InvalidNotificationConfig",
            "Patchfleet sends no notifications; omit NotificationConfig and ServiceRoleArn.",
        ));
    }
    if r.cloud_watch_output_config
        .as_ref()
        .and_then(|c| c["CloudWatchOutputEnabled"].as_bool())
        .unwrap_or(false)
    {
        return Err(SsmError::client(
            "InvalidParameters",
            "Patchfleet keeps command output in its own object store; CloudWatch output is not available.",
        ));
    }
    let req = SendRequest {
        document_name: r.document_name,
        instance_ids: r.instance_ids,
        targets: r.targets,
        parameters: r.parameters,
        max_concurrency: r.max_concurrency,
        max_errors: r.max_errors,
        timeout_seconds: r.timeout_seconds,
        comment: r.comment,
        output_s3_bucket_name: r.output_s3_bucket_name,
        output_s3_key_prefix: r.output_s3_key_prefix,
        ..SendRequest::default()
    };
    let c = commands::send(ctx.svc, ctx.caller, req)
        .await
        .map_err(|e| SsmError::from_api(e, "InvalidInstanceId"))?;
    Ok(json!({ "Command": command_json(&c) }))
}

fn command_json(c: &CommandView) -> Value {
    let targets: Vec<Value> = c
        .targets
        .iter()
        .map(|t| json!({"Key": t.key, "Values": t.values}))
        .collect();
    json!({
        "CommandId": c.command_id,
        "DocumentName": c.document_name,
        "DocumentVersion": "$DEFAULT",
        "Comment": c.comment,
        "ExpiresAfter": epoch(c.expires_after),
        "Parameters": c.parameters,
        "InstanceIds": c.instance_ids,
        "Targets": targets,
        "RequestedDateTime": epoch(c.requested_date_time),
        "Status": c.status,
        "StatusDetails": c.status_details,
        "OutputS3Region": "",
        "OutputS3BucketName": c.output_s3_bucket_name,
        "OutputS3KeyPrefix": c.output_s3_key_prefix,
        "MaxConcurrency": c.max_concurrency,
        "MaxErrors": c.max_errors,
        "TargetCount": c.target_count,
        "CompletedCount": c.completed_count,
        "ErrorCount": c.error_count,
        "DeliveryTimedOutCount": c.delivery_timed_out_count,
        "ServiceRole": "",
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
        "TimeoutSeconds": c.timeout_seconds,
    })
}

#[derive(Deserialize, Default)]
struct Filter {
    key: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListRequest {
    command_id: Option<String>,
    instance_id: Option<String>,
    filters: Vec<Filter>,
    details: bool,
}

/// ListCommands' and ListCommandInvocations' filters (spec §2.6); the model
/// already checked the keys.
fn command_filter(r: &ListRequest) -> Result<(CommandFilter, Option<bool>), SsmError> {
    let mut f = CommandFilter {
        command_id: r.command_id.clone(),
        node_id: r.instance_id.clone(),
        ..CommandFilter::default()
    };
    // ExecutionStage: Executing (not ended) or Complete.
    let mut finished = None;
    let time = |v: &str| -> Result<Timestamp, SsmError> {
        v.parse().map_err(|_| {
            SsmError::client(
                "InvalidFilterValue",
                format!("{v} is not a date and time (ISO 8601, e.g. 2026-12-01T00:00:00Z)."),
            )
        })
    };
    for filter in &r.filters {
        match filter.key.as_str() {
            "InvokedAfter" => f.requested_after = Some(time(&filter.value)?),
            "InvokedBefore" => f.requested_before = Some(time(&filter.value)?),
            "Status" => f.status = Some(filter.value.clone()),
            "DocumentName" => f.document_name = Some(filter.value.clone()),
            "ExecutionStage" => {
                finished = Some(match filter.value.as_str() {
                    "Executing" => false,
                    "Complete" => true,
                    v => {
                        return Err(SsmError::client(
                            "InvalidFilterValue",
                            format!("ExecutionStage {v}: expected Executing or Complete."),
                        ));
                    }
                })
            }
            k => {
                return Err(SsmError::client(
                    "InvalidFilterKey",
                    format!("The filter key {k} is not valid."),
                ));
            }
        }
    }
    Ok((f, finished))
}

pub async fn list_commands(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: ListRequest = input(v)?;
    // Newest first: the key sorts that way ascending.
    let all = matching_commands(ctx, &r).await?;
    if let (Some(id), true) = (&r.command_id, all.is_empty()) {
        return Err(SsmError::client(
            "InvalidCommandId",
            format!("Command {id} does not exist."),
        ));
    }
    let (page, next) = paging.page(ctx, all, |c| {
        format!(
            "{:020}.{}",
            i64::MAX - c.requested_date_time.as_millisecond(),
            c.command_id
        )
    });
    let out = json!({"Commands": page.iter().map(command_json).collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

fn invocation_json(i: &InvocationView, comment: &str, details: bool) -> Value {
    let mut v = json!({
        "CommandId": i.command_id,
        "InstanceId": i.node_id,
        "InstanceName": i.instance_name,
        "Comment": comment,
        "DocumentName": i.document_name,
        "DocumentVersion": "$DEFAULT",
        "RequestedDateTime": epoch(i.requested_date_time),
        "Status": i.status,
        "StatusDetails": i.status_details,
        "TraceOutput": "",
        "StandardOutputUrl": i.standard_output_url,
        "StandardErrorUrl": i.standard_error_url,
        "CommandPlugins": [],
        "ServiceRole": "",
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
    });
    if details {
        let mut plugin = json!({
            "Name": i.plugin_name,
            "Status": plugin_status(&i.status),
            "StatusDetails": i.status_details,
            "ResponseCode": i.response_code,
            "Output": i.output,
            "StandardOutputUrl": i.standard_output_url,
            "StandardErrorUrl": i.standard_error_url,
            "OutputS3Region": "",
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
        });
        if let Some(t) = i.execution_start_date_time {
            plugin["ResponseStartDateTime"] = epoch(t);
        }
        if let Some(t) = i.execution_end_date_time {
            plugin["ResponseFinishDateTime"] = epoch(t);
        }
        v["CommandPlugins"] = json!([plugin]);
    }
    v
}

/// `CommandPluginStatus` has no `Delayed` or `Cancelling`.
fn plugin_status(invocation_status: &str) -> &str {
    match invocation_status {
        "Delayed" => "Pending",
        "Cancelling" => "InProgress",
        s => s,
    }
}

/// Every command the request's filters match, newest first.
async fn matching_commands(ctx: &Ctx<'_>, r: &ListRequest) -> Result<Vec<CommandView>, SsmError> {
    let (filter, finished) = command_filter(r)?;
    let mut all = Vec::new();
    let mut next = None;
    loop {
        let page = commands::list(ctx.svc, ctx.caller, &filter, next.as_deref(), 1000)
            .await
            .map_err(|e| SsmError::from_api(e, "InvalidCommandId"))?;
        all.extend(
            page.items
                .into_iter()
                .filter(|c| finished.is_none_or(|done| c.finished_at.is_some() == done)),
        );
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    Ok(all)
}

pub async fn list_invocations(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let paging = Paging::read(ctx, &v, 50)?;
    let r: ListRequest = input(v)?;
    let mut comments: HashMap<String, String> = HashMap::new();
    let mut all = Vec::new();
    // Every matching command's invocations, commands newest first.
    for c in matching_commands(ctx, &r).await? {
        comments.insert(c.command_id.clone(), c.comment.clone());
        let mut after = None;
        loop {
            let inv = commands::invocations(
                ctx.svc,
                ctx.caller,
                &InvocationFilter {
                    command_id: Some(c.command_id.clone()),
                    node_id: r.instance_id.clone(),
                    status: None,
                },
                after.as_deref(),
                1000,
            )
            .await
            .map_err(|e| SsmError::from_api(e, "InvalidCommandId"))?;
            all.extend(inv.items.into_iter().map(|i| (c.requested_date_time, i)));
            match inv.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
    }
    if let (Some(id), true) = (&r.command_id, comments.is_empty()) {
        return Err(SsmError::client(
            "InvalidCommandId",
            format!("Command {id} does not exist."),
        ));
    }
    let (page, next) = paging.page(ctx, all, |(at, i)| {
        format!(
            "{:020}.{}.{}",
            i64::MAX - at.as_millisecond(),
            i.command_id,
            i.node_id
        )
    });
    let out = json!({"CommandInvocations": page
        .iter()
        .map(|(_, i)| invocation_json(i, comments.get(&i.command_id).map_or("", |c| c), r.details))
        .collect::<Vec<_>>()});
    Ok(with_token(out, next))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct GetInvocationRequest {
    command_id: String,
    instance_id: String,
    plugin_name: Option<String>,
}

/// `PT0.091S`: the elapsed time as GetCommandInvocation writes it.
fn elapsed(start: Timestamp, end: Timestamp) -> String {
    let ms = (end.as_millisecond() - start.as_millisecond()).max(0);
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

pub async fn get_invocation(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: GetInvocationRequest = input(v)?;
    if let Some(p) = r.plugin_name.as_deref()
        && p != PLUGIN_NAME
    {
        return Err(SsmError::client(
            "InvalidPluginName",
            format!(
                "The plugin name {p} is not valid; the step that runs on Linux is {PLUGIN_NAME}."
            ),
        ));
    }
    let c = commands::get(ctx.svc, ctx.caller, &r.command_id)
        .await
        .map_err(not_found_as("InvalidCommandId", || {
            format!("Command {} does not exist.", r.command_id)
        }))?;
    let i = commands::invocation(ctx.svc, ctx.caller, &r.command_id, &r.instance_id)
        .await
        .map_err(not_found_as("InvocationDoesNotExist", || {
            format!(
                "The command {} did not run on {}.",
                r.command_id, r.instance_id
            )
        }))?;
    let iso = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
    Ok(json!({
        "CommandId": i.command_id,
        "InstanceId": i.node_id,
        "Comment": c.comment,
        "DocumentName": i.document_name,
        "DocumentVersion": "$DEFAULT",
        "PluginName": i.plugin_name,
        "ResponseCode": i.response_code,
        "ExecutionStartDateTime": iso(i.execution_start_date_time),
        "ExecutionElapsedTime": match (i.execution_start_date_time, i.execution_end_date_time) {
            (Some(s), Some(e)) => elapsed(s, e),
            _ => String::new(),
        },
        "ExecutionEndDateTime": iso(i.execution_end_date_time),
        "Status": i.status,
        "StatusDetails": i.status_details,
        "StandardOutputContent": i.standard_output_content,
        "StandardOutputUrl": i.standard_output_url,
        "StandardErrorContent": i.standard_error_content,
        "StandardErrorUrl": i.standard_error_url,
        "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": false},
    }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CancelRequest {
    command_id: String,
    instance_ids: Vec<String>,
}

pub async fn cancel(ctx: &Ctx<'_>, v: Value) -> SsmResult {
    let r: CancelRequest = input(v)?;
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = r.instance_ids.iter().find(|i| !seen.insert(*i)) {
        return Err(SsmError::client(
            "DuplicateInstanceId",
            format!("The instance id {d} is given more than once."),
        ));
    }
    commands::cancel(ctx.svc, ctx.caller, &r.command_id, &r.instance_ids)
        .await
        .map_err(not_found_as("InvalidCommandId", || {
            format!("Command {} does not exist.", r.command_id)
        }))?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    #[test]
    fn elapsed_times_as_ssm_writes_them() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            super::elapsed(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:00:00.091Z")),
            "PT0.091S"
        );
        assert_eq!(
            super::elapsed(t("2026-01-01T00:00:00Z"), t("2026-01-01T00:01:02.5Z")),
            "PT62.500S"
        );
    }
}
