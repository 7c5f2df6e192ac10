//! Run Command (spec ssm-api §3, patching-semantics §5): sending a patch
//! document to targets, the rollout under MaxConcurrency and MaxErrors,
//! delivery to agents (at least once), their reports, cancel, timeouts.
//!
//! Every decision is `core::command`'s; this module validates, resolves
//! targets and documents, and applies each rollout step inside
//! [`Store::with_rollout`](crate::store::Store::with_rollout), so a step is
//! one transaction and any replica may take the next one. The rollout loop
//! ([`rollout_loop`]) runs on the one replica holding its lease and looks at
//! a command again when an invocation changed or a deadline came: after a
//! crash or restart it simply continues from the stored states.

use super::{Caller, Services, baselines, fleet};
use crate::api::error::{ApiError, ApiResult};
use crate::auth::Action;
use crate::objects::ObjectsError;
use crate::store::{
    CommandFilter, CommandProgress, CommandRecord, CommandSpec, DispatchedNode, InvocationFilter,
    InvocationRecord, InvocationUpdate, NewCommand, Page, ResolvedTarget, RolloutChange,
    RolloutSlot, WorkItemRecord,
};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use patchfleet_core::baseline::{
    Baseline, parse_baseline_override, parse_install_override_list, select_override,
};
use patchfleet_core::command::output::{combined_output, standard_error, standard_output};
use patchfleet_core::command::rollout::{self, Deadlines, Rollout, Slot};
use patchfleet_core::command::{
    InvocationState, MaxConcurrency, MaxErrors, PatchDocument, StatusDetails, Target, TargetSet,
};
use patchfleet_core::os::OperatingSystem;
use patchfleet_protocol::{
    CAPABILITY_RUN_PATCH_BASELINE, CommandInvocation, InvocationReport, InvocationReportAck,
    OverridePatch,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// SendCommand's `TimeoutSeconds` bounds and default (the API's).
pub const MIN_TIMEOUT_SECONDS: i64 = 30;
pub const MAX_TIMEOUT_SECONDS: i64 = 2_592_000;
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 3_600;
/// A running command is looked at at least this often, whatever happens.
const SAFETY_WAKE: SignedDuration = SignedDuration::from_secs(30);
/// The step name output is stored under (the document's Linux step).
pub const PLUGIN_NAME: &str = "PatchLinux";
/// Largest InstallOverrideList or BaselineOverride document read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// The object key prefix of command output when the command names none.
const DEFAULT_OUTPUT_PREFIX: &str = "command-output";

/// A SendCommand request (native API; the SSM API maps onto it).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub document_name: String,
    #[serde(default)]
    pub instance_ids: Vec<String>,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub parameters: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub max_concurrency: Option<String>,
    #[serde(default)]
    pub max_errors: Option<String>,
    #[serde(default)]
    pub timeout_seconds: Option<i64>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub output_s3_bucket_name: Option<String>,
    #[serde(default)]
    pub output_s3_key_prefix: Option<String>,
    /// The InstallOverrideList document itself (YAML), instead of an
    /// `s3://` location in `parameters`: what `patchfleet command send
    /// --install-override-list FILE` sends.
    #[serde(default)]
    pub install_override_list: Option<String>,
    /// The BaselineOverride document itself (JSON), likewise.
    #[serde(default)]
    pub baseline_override: Option<String>,
}

/// A command as the API shows it (SSM's `Command` members, snake_case).
#[derive(Clone, Debug, Serialize)]
pub struct CommandView {
    pub command_id: String,
    pub document_name: String,
    pub comment: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    pub targets: Vec<Target>,
    pub instance_ids: Vec<String>,
    pub requested_date_time: Timestamp,
    pub expires_after: Timestamp,
    pub status: String,
    pub status_details: String,
    pub target_count: i64,
    pub completed_count: i64,
    pub error_count: i64,
    pub delivery_timed_out_count: i64,
    pub max_concurrency: String,
    pub max_errors: String,
    pub timeout_seconds: i64,
    pub output_s3_bucket_name: String,
    pub output_s3_key_prefix: String,
    pub requested_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// Invocations per status (the progress view).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub invocation_counts: BTreeMap<String, i64>,
}

/// An invocation as the API shows it (GetCommandInvocation's members).
#[derive(Clone, Debug, Serialize)]
pub struct InvocationView {
    pub command_id: String,
    pub node_id: String,
    pub instance_name: String,
    pub document_name: String,
    pub plugin_name: &'static str,
    pub status: String,
    pub status_details: String,
    pub requested_date_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatched_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_start_date_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_end_date_time: Option<Timestamp>,
    pub response_code: i64,
    /// At most 24,000 characters, as GetCommandInvocation.
    pub standard_output_content: String,
    /// At most 8,000 characters.
    pub standard_error_content: String,
    /// stdout and stderr in at most 2,500 characters, as
    /// ListCommandInvocations' `CommandPlugin.Output`.
    pub output: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub standard_output_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub standard_error_url: String,
    pub deliveries: i64,
    pub reboots: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_version: Option<i64>,
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn objects_error(field: &str, e: ObjectsError) -> ApiError {
    match e {
        ObjectsError::Io(m) | ObjectsError::Config(m) => ApiError::internal(m),
        e => bad_request("InvalidParameters", format!("{field}: {e}")).field(field),
    }
}

/// An override document (`parameter`): inline text, or the `s3://`
/// location the document parameter names (read from the server's object
/// store), checked by `parse`; `None` when neither is given.
async fn override_document(
    svc: &Services,
    parameter: &str,
    inline: Option<&str>,
    location: Option<&str>,
    parse: impl FnOnce(&str) -> Result<serde_json::Value, String>,
) -> ApiResult<Option<serde_json::Value>> {
    let invalid = |m: String| bad_request("InvalidParameters", m).field(parameter);
    let text = match (inline, location) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "{parameter}: give the document or its location, not both"
            )));
        }
        (Some(text), None) => text.to_string(),
        (None, Some(url)) if url.starts_with("s3://") => {
            let key = svc
                .objects
                .key_of_url(url)
                .map_err(|e| objects_error(parameter, e))?;
            let bytes = svc
                .objects
                .get(&key, MAX_DOCUMENT_BYTES)
                .await
                .map_err(|e| objects_error(parameter, e))?;
            String::from_utf8(bytes)
                .map_err(|_| invalid(format!("{parameter}: {url} is not UTF-8 text")))?
        }
        (None, Some(url)) => {
            return Err(invalid(format!(
                "{parameter} {url:?}: this server reads documents from its object store \
                 (s3://{}/KEY); put the document there, or send it inline",
                svc.objects.bucket()
            )));
        }
        (None, None) => return Ok(None),
    };
    parse(&text).map(Some).map_err(invalid)
}

/// Validates a SendCommand, resolves its targets and documents, stores the
/// command with one invocation per target, and takes the first rollout step.
pub async fn send(svc: &Services, caller: &Caller, req: SendRequest) -> ApiResult<CommandView> {
    caller.require(Action::SendCommands)?;
    let now = Timestamp::now();
    let document = PatchDocument::from_parameters(&req.document_name, &req.parameters)
        .map_err(|e| bad_request(e.code(), e.to_string()).field("parameters"))?;
    let targets = match (req.instance_ids.is_empty(), req.targets.is_empty()) {
        (false, true) => TargetSet::from_instance_ids(&req.instance_ids),
        (true, false) => TargetSet::from_targets(&req.targets),
        (false, false) => {
            return Err(bad_request(
                "ValidationException",
                "give either instance_ids or targets, not both",
            )
            .field("targets"));
        }
        (true, true) => {
            return Err(
                bad_request("ValidationException", "give instance_ids or targets").field("targets"),
            );
        }
    }
    .map_err(|e| bad_request(e.code(), e.to_string()).field("targets"))?;
    let max_concurrency: MaxConcurrency = match &req.max_concurrency {
        Some(v) => v
            .parse()
            .map_err(|e: patchfleet_core::command::RateError| {
                bad_request(e.code(), e.to_string()).field("max_concurrency")
            })?,
        None => MaxConcurrency::default(),
    };
    let max_errors: MaxErrors = match &req.max_errors {
        Some(v) => v
            .parse()
            .map_err(|e: patchfleet_core::command::RateError| {
                bad_request(e.code(), e.to_string()).field("max_errors")
            })?,
        None => MaxErrors::default(),
    };
    let timeout_seconds = req.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if !(MIN_TIMEOUT_SECONDS..=MAX_TIMEOUT_SECONDS).contains(&timeout_seconds) {
        return Err(bad_request(
            "ValidationException",
            format!(
                "timeout_seconds {timeout_seconds}: must be from {MIN_TIMEOUT_SECONDS} to {MAX_TIMEOUT_SECONDS}"
            ),
        )
        .field("timeout_seconds"));
    }
    let comment = req.comment.clone().unwrap_or_default();
    if comment.chars().count() > 100 {
        return Err(
            bad_request("ValidationException", "comment: at most 100 characters").field("comment"),
        );
    }
    let output_bucket = req.output_s3_bucket_name.clone().unwrap_or_default();
    if !output_bucket.is_empty() && output_bucket != svc.objects.bucket() {
        return Err(bad_request(
            "InvalidOutputFolder",
            format!(
                "output bucket {output_bucket:?} is not the server's object store (its bucket is {:?})",
                svc.objects.bucket()
            ),
        )
        .field("output_s3_bucket_name"));
    }
    let output_prefix = req.output_s3_key_prefix.clone().unwrap_or_default();
    if output_prefix.chars().count() > 500
        || (!output_prefix.is_empty() && crate::objects::check_key(&output_prefix).is_err())
    {
        return Err(bad_request(
            "InvalidOutputFolder",
            format!("output key prefix {output_prefix:?}: at most 500 characters of segments separated by '/'"),
        )
        .field("output_s3_key_prefix"));
    }
    let install_override = override_document(
        svc,
        "InstallOverrideList",
        req.install_override_list.as_deref(),
        document.install_override_list.as_deref(),
        |text| {
            let list = parse_install_override_list(text).map_err(|e| e.to_string())?;
            let patches: Vec<OverridePatch> = list
                .patches
                .into_iter()
                .map(|p| OverridePatch {
                    id: p.id,
                    title: p.title,
                })
                .collect();
            serde_json::to_value(patches).map_err(|e| e.to_string())
        },
    )
    .await?;
    let baseline_override = override_document(
        svc,
        "BaselineOverride",
        req.baseline_override.as_deref(),
        document.baseline_override.as_deref(),
        |text| {
            let entries = parse_baseline_override(text).map_err(|e| e.to_string())?;
            for b in &entries {
                b.validate_override()
                    .map_err(|e| format!("BaselineOverride: {e}"))?;
            }
            serde_json::to_value(entries).map_err(|e| e.to_string())
        },
    )
    .await?;
    if install_override.is_some() && baseline_override.is_some() {
        return Err(bad_request(
            "InvalidParameters",
            "BaselineOverride and InstallOverrideList cannot be used together",
        )
        .field("parameters"));
    }

    // Targets are resolved once, now: nodes matching later are not added.
    let nodes = svc.store.nodes_for_targeting().await?;
    let explicit: Vec<&String> = if req.instance_ids.is_empty() {
        Vec::new()
    } else {
        req.instance_ids.iter().collect()
    };
    if !explicit.is_empty() {
        let known: HashSet<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        let unknown: Vec<&str> = explicit
            .iter()
            .filter(|i| !known.contains(i.as_str()))
            .map(|i| i.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(bad_request(
                "InvalidInstanceId",
                format!("not registered managed nodes: {}", unknown.join(", ")),
            )
            .field("instance_ids"));
        }
    }
    let resolved: Vec<ResolvedTarget> = nodes
        .into_iter()
        .filter(|n| targets.matches(&n.node_id, &n.tags))
        .map(|n| {
            // Nothing is sent to an agent that did not announce it can run it.
            let state = if n
                .capabilities
                .iter()
                .any(|c| c == CAPABILITY_RUN_PATCH_BASELINE)
            {
                InvocationState::PENDING
            } else {
                InvocationState::UNDELIVERABLE
            };
            ResolvedTarget {
                node_id: n.node_id,
                computer_name: n.computer_name,
                status: state.status.as_str().to_string(),
                status_details: state.details.as_str().to_string(),
            }
        })
        .collect();
    let deadlines = Deadlines::new(
        now.as_second(),
        timeout_seconds,
        document.execution_timeout_seconds(),
    );
    let empty = resolved.is_empty();
    let command_id = uuid::Uuid::new_v4().to_string();
    let sent_targets: Vec<Target> = if req.instance_ids.is_empty() {
        req.targets.clone()
    } else {
        vec![Target {
            key: "InstanceIds".into(),
            values: req.instance_ids.clone(),
        }]
    };
    let spec = CommandSpec {
        command_id: command_id.clone(),
        document_name: document.name.as_str().to_string(),
        document: serde_json::to_value(&document).map_err(ApiError::internal)?,
        targets: serde_json::to_value(&sent_targets).map_err(ApiError::internal)?,
        comment,
        timeout_seconds,
        max_concurrency: max_concurrency.to_string(),
        max_errors: max_errors.to_string(),
        output_bucket,
        output_prefix,
        install_override,
        baseline_override,
        requested_by: caller.actor.clone(),
        requested_at: now,
        delivery_deadline: ts(deadlines.delivery)?,
        expires_after: ts(deadlines.expires_after)?,
    };
    // No target: the command ends at once (spec §3.2).
    let (status, details) = if empty {
        ("Failed", "NoInstancesInTag")
    } else {
        ("Pending", "Pending")
    };
    let audit = caller
        .audit("SendCommand")
        .object(&command_id)
        .detail(serde_json::json!({
            "document": spec.document_name,
            "parameters": document.parameters(),
            "targets": spec.targets,
            "target_count": resolved.len(),
            "max_concurrency": spec.max_concurrency,
            "max_errors": spec.max_errors,
        }));
    let new = NewCommand {
        spec,
        progress: CommandProgress {
            status: status.into(),
            status_details: details.into(),
            finished_at: empty.then_some(now),
            ..CommandProgress::default()
        },
        targets_resolved: resolved,
    };
    svc.store.create_command(&new, &audit).await?;
    if !empty {
        advance(svc, &command_id, Timestamp::now()).await?;
    }
    get(svc, caller, &command_id).await
}

fn ts(seconds: i64) -> ApiResult<Timestamp> {
    Timestamp::from_second(seconds).map_err(ApiError::internal)
}

fn parse_details(d: &str) -> InvocationState {
    d.parse::<StatusDetails>()
        .ok()
        .and_then(InvocationState::from_details)
        .unwrap_or(InvocationState::PENDING)
}

/// One rollout step (pure): what `core` decides for the stored states at
/// `now`, with `cancel` applied first (`Some(None)`: the whole command,
/// `Some(Some(nodes))`: those nodes). Returns the change and the nodes to
/// wake (dispatched, or told to cancel).
fn step(
    command: &CommandRecord,
    stored: &[RolloutSlot],
    now: Timestamp,
    cancel: Option<Option<&[String]>>,
) -> (RolloutChange, Vec<String>) {
    let now_s = now.as_second();
    let before: Vec<Slot> = stored
        .iter()
        .map(|s| Slot {
            state: parse_details(&s.details),
            dispatched: s.dispatched,
            ended_at: s.ended_at.map(|t| t.as_second()),
        })
        .collect();
    let mut slots = before.clone();
    let deadlines = Deadlines {
        delivery: command.spec.delivery_deadline.as_second(),
        expires_after: command.spec.expires_after.as_second(),
    };
    let expired = rollout::expire(&slots, deadlines, now_s);
    rollout::apply_updates(&mut slots, &expired);
    let whole_cancel = command.cancel_requested || matches!(cancel, Some(None));
    if let Some(Some(nodes)) = cancel {
        let picked = rollout::cancel(&slots, |i| nodes.contains(&stored[i].node_id));
        rollout::apply_updates(&mut slots, &picked);
    }
    let max_concurrency: MaxConcurrency = command.spec.max_concurrency.parse().unwrap_or_default();
    let max_errors: MaxErrors = command.spec.max_errors.parse().unwrap_or_default();
    let plan = rollout::plan(&Rollout {
        invocations: &slots,
        max_concurrency,
        max_errors,
        cancelled: whole_cancel,
    });
    plan.apply_to(&mut slots);
    let mut change = RolloutChange {
        dispatch: plan.dispatch.clone(),
        progress: CommandProgress {
            status: plan.command.status.as_str().to_string(),
            status_details: plan.command.details.as_str().to_string(),
            completed_count: plan.counters.completed_count as i64,
            error_count: plan.counters.error_count as i64,
            delivery_timed_out_count: plan.counters.delivery_timed_out_count as i64,
            finished_at: plan
                .command
                .is_terminal()
                .then(|| command.progress.finished_at.unwrap_or(now)),
        },
        cancel_requested: whole_cancel,
        ..RolloutChange::default()
    };
    let mut wake = Vec::new();
    for (i, (old, new)) in before.iter().zip(&slots).enumerate() {
        if old.state != new.state {
            change.states.push((
                i,
                new.state.status.as_str().to_string(),
                new.state.details.as_str().to_string(),
            ));
            if new.state.details == StatusDetails::Cancelling {
                change.cancel_work.push(i);
                wake.push(stored[i].node_id.clone());
            }
        }
    }
    wake.extend(plan.dispatch.iter().map(|&i| stored[i].node_id.clone()));
    let mut next = now + SAFETY_WAKE;
    for deadline in [command.spec.delivery_deadline, command.spec.expires_after] {
        if deadline > now && deadline < next {
            next = deadline;
        }
    }
    change.wake_at = next;
    (change, wake)
}

/// Each dispatched invocation pinned to the baseline version that judges
/// its node now (none under a BaselineOverride: the override judges).
fn pins(
    resolver: &fleet::Resolver,
    command: &CommandRecord,
    nodes: &[DispatchedNode],
) -> Vec<(usize, String, i64)> {
    if command.spec.baseline_override.is_some() {
        return Vec::new();
    }
    nodes
        .iter()
        .filter_map(|n| {
            let os: OperatingSystem = n.operating_system.as_deref()?.parse().ok()?;
            let (id, version) = resolver.baseline_version_for(os, n.patch_group.as_deref())?;
            Some((n.position, id, version))
        })
        .collect()
}

/// Takes the command's next rollout step; wakes the nodes it dispatched to.
pub async fn advance(svc: &Services, command_id: &str, now: Timestamp) -> ApiResult<()> {
    let resolver = fleet::Resolver::load(svc).await?;
    let mut wake = Vec::new();
    svc.store
        .with_rollout(
            command_id,
            now,
            None,
            |command, slots| {
                let (change, w) = step(command, slots, now, None);
                wake = w;
                Some(change)
            },
            |command, nodes| pins(&resolver, command, nodes),
        )
        .await?;
    super::wake::work_queued_many(&svc.store, &svc.wake, &wake).await;
    Ok(())
}

/// CancelCommand: the whole command (`node_ids` empty) or those nodes'
/// invocations. Undelivered ones end `Cancelled` at once; running ones are
/// `Cancelling` until their agent confirms. A finished command is left as
/// it is.
pub async fn cancel(
    svc: &Services,
    caller: &Caller,
    command_id: &str,
    node_ids: &[String],
) -> ApiResult<CommandView> {
    caller.require(Action::SendCommands)?;
    let now = Timestamp::now();
    let audit = caller
        .audit("CancelCommand")
        .object(command_id)
        .detail(serde_json::json!({"node_ids": node_ids}));
    let resolver = fleet::Resolver::load(svc).await?;
    let mut wake = Vec::new();
    let found = svc
        .store
        .with_rollout(
            command_id,
            now,
            Some(&audit),
            |command, slots| {
                if command.progress.finished_at.is_some() {
                    return None;
                }
                let selection = (!node_ids.is_empty()).then_some(node_ids);
                let (change, w) = step(command, slots, now, Some(selection));
                wake = w;
                Some(change)
            },
            |command, nodes| pins(&resolver, command, nodes),
        )
        .await?;
    if found.is_none() {
        return Err(not_found_command(command_id));
    }
    super::wake::work_queued_many(&svc.store, &svc.wake, &wake).await;
    get(svc, caller, command_id).await
}

fn not_found_command(command_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "InvalidCommandId",
        format!("command {command_id} does not exist"),
    )
}

/// Deliveries before this instant were not acknowledged in time: send again.
pub fn resend_before(svc: &Services, now: Timestamp) -> Timestamp {
    now - SignedDuration::from_secs(svc.config.command_resend_seconds.min(86_400) as i64)
}

/// The node's invocations to deliver now, as `run-patch-baseline` work
/// items carrying a [`CommandInvocation`], judged by the baseline version
/// pinned when they were dispatched (or the command's BaselineOverride), so
/// every delivery of one invocation sends the same. An invocation without a
/// baseline for the node fails here with the reason, and is not sent.
pub async fn deliveries(
    svc: &Services,
    node_id: &str,
    now: Timestamp,
) -> ApiResult<Vec<WorkItemRecord>> {
    let taken = svc
        .store
        .take_deliveries(node_id, now, resend_before(svc, now))
        .await?;
    let mut items = Vec::with_capacity(taken.len());
    for inv in taken {
        let spec = command_spec(svc, &inv.command_id).await?;
        match invocation_payload(svc, &spec, &inv).await? {
            Ok(payload) => items.push(WorkItemRecord {
                id: inv.invocation_id.clone(),
                node_id: node_id.to_string(),
                kind: CAPABILITY_RUN_PATCH_BASELINE.to_string(),
                parameters: serde_json::to_value(&payload).map_err(ApiError::internal)?,
                created_at: inv.dispatched_at.unwrap_or(now),
                delivered_at: Some(now),
                completed_at: None,
                result: None,
            }),
            Err(reason) => fail_undeliverable(svc, &inv, &reason, now).await?,
        }
    }
    Ok(items)
}

/// What SendCommand fixed for a command: immutable, so cached.
async fn command_spec(svc: &Services, command_id: &str) -> ApiResult<Arc<CommandSpec>> {
    if let Some(s) = svc.specs.get(&command_id.to_string()) {
        return Ok(s);
    }
    let spec = Arc::new(svc.store.get_command(command_id).await?.spec);
    svc.specs.insert(command_id.to_string(), spec.clone());
    Ok(spec)
}

/// What the agent receives for an invocation; `Err` names why the node
/// cannot run it (Patch Manager's exit code 163 when a BaselineOverride
/// has no baseline for the node's OS).
async fn invocation_payload(
    svc: &Services,
    spec: &CommandSpec,
    inv: &InvocationRecord,
) -> ApiResult<Result<CommandInvocation, (i64, String)>> {
    let document: PatchDocument =
        serde_json::from_value(spec.document.clone()).map_err(ApiError::internal)?;
    let baseline: Baseline = match (&spec.baseline_override, &inv.baseline_id) {
        (Some(entries), _) => {
            let node = svc.store.get_node(&inv.node_id).await?;
            let Ok(os) = node.operating_system.parse::<OperatingSystem>() else {
                return Ok(Err((
                    1,
                    format!(
                        "{} reported no operating system Patchfleet supports",
                        inv.node_id
                    ),
                )));
            };
            let entries: Vec<Baseline> =
                serde_json::from_value(entries.clone()).map_err(ApiError::internal)?;
            match select_override(&entries, os) {
                Ok(b) => b.clone(),
                Err(e) => return Ok(Err((163, e.to_string()))),
            }
        }
        (None, Some(id)) => {
            let version = inv.baseline_version.unwrap_or(0);
            baselines::version_cached(svc, id, version)
                .await?
                .as_ref()
                .clone()
        }
        (None, None) => {
            return Ok(Err((
                1,
                format!(
                    "no baseline applies to {}: no default for its operating system",
                    inv.node_id
                ),
            )));
        }
    };
    let install_override: Option<Vec<OverridePatch>> = spec
        .install_override
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(ApiError::internal)?;
    Ok(Ok(CommandInvocation {
        invocation_id: inv.invocation_id.clone(),
        command_id: spec.command_id.clone(),
        document,
        baseline,
        install_override,
        requested_at: spec.requested_at,
    }))
}

async fn fail_undeliverable(
    svc: &Services,
    inv: &InvocationRecord,
    (code, reason): &(i64, String),
    now: Timestamp,
) -> ApiResult<()> {
    let state = InvocationState::FAILED;
    let reported = svc
        .store
        .report_invocation(&inv.invocation_id, &inv.node_id, now, |_| {
            Some(InvocationUpdate {
                status: state.status.as_str().into(),
                status_details: state.details.as_str().into(),
                started_at: None,
                ended_at: Some(now),
                response_code: *code,
                stdout: String::new(),
                stderr: reason.clone(),
                output: combined_output("", reason),
                output_key: None,
                reboots: 0,
            })
        })
        .await?;
    rollout_changed(svc, &reported.command_id).await;
    Ok(())
}

/// An invocation of `command_id` changed: its rollout looks again (on this
/// replica at once, on the one holding the lease through the database).
async fn rollout_changed(svc: &Services, command_id: &str) {
    svc.rollouts.mark(command_id);
    if let Err(e) = svc
        .store
        .notify(super::wake::ROLLOUT_CHANNEL, command_id)
        .await
    {
        tracing::warn!("notifying the rollout of {command_id}: {e}");
    }
}

/// What the server does with an agent's report, given the invocation's
/// stored state (pure).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Record the reported state.
    Apply,
    /// Nothing to change (a repeat, or a later result than the first);
    /// the agent may forget it.
    Keep,
    /// The server no longer wants it run (cancelled or timed out before the
    /// agent took it): the agent must stop.
    Refuse,
}

fn verdict(stored: InvocationState, reported: InvocationState) -> Verdict {
    use StatusDetails as D;
    if !stored.is_terminal() {
        return match (stored.details, reported.details) {
            // A running cancel stays Cancelling until the agent ends it.
            (D::Cancelling, D::InProgress) => Verdict::Keep,
            (_, D::InProgress) if stored.details == D::InProgress => Verdict::Keep,
            _ => Verdict::Apply,
        };
    }
    if stored == reported {
        return Verdict::Keep;
    }
    match stored.details {
        // The server gave up waiting; the agent's result is the truth.
        D::DeliveryTimedOut if reported.is_terminal() => Verdict::Apply,
        // Ended before the agent acknowledged it: it must not run.
        D::Cancelled | D::Terminated | D::Undeliverable | D::DeliveryTimedOut => {
            if reported.details == D::InProgress {
                Verdict::Refuse
            } else {
                Verdict::Keep
            }
        }
        // The first result stands.
        _ => Verdict::Keep,
    }
}

/// An agent's report on one of its invocations (`POST
/// /agent/v1/invocations/{id}`).
pub async fn report(
    svc: &Services,
    node_id: &str,
    invocation_id: &str,
    r: &InvocationReport,
) -> ApiResult<InvocationReportAck> {
    let details: StatusDetails =
        r.details
            .parse()
            .map_err(|e: patchfleet_core::command::status::UnknownStatus| {
                ApiError::invalid("details", e.to_string())
            })?;
    let reported = InvocationState::from_details(details)
        .filter(|s| {
            matches!(
                s.details,
                StatusDetails::InProgress
                    | StatusDetails::Success
                    | StatusDetails::Failed
                    | StatusDetails::ExecutionTimedOut
                    | StatusDetails::Cancelled
            )
        })
        .ok_or_else(|| {
            ApiError::invalid(
                "details",
                format!("an agent reports InProgress, Success, Failed, ExecutionTimedOut or Cancelled, not {details}"),
            )
        })?;
    if reported.status.as_str() != r.status {
        return Err(ApiError::invalid(
            "status",
            format!(
                "status {:?} does not go with details {details} (expected {})",
                r.status, reported.status
            ),
        ));
    }
    let now = Timestamp::now();
    // The full streams go to the object store before the state changes, so
    // a recorded result always has its output.
    let output_key = if reported.is_terminal() && (!r.stdout.is_empty() || !r.stderr.is_empty()) {
        // "<command id>.<node id>": another node's id is not found below.
        let command_id = invocation_id
            .strip_suffix(node_id)
            .and_then(|c| c.strip_suffix('.'))
            .ok_or_else(|| ApiError::not_found(format!("invocation {invocation_id}")))?;
        let spec = match command_spec(svc, command_id).await {
            Ok(s) => s,
            Err(e) if e.status == StatusCode::NOT_FOUND => {
                return Err(ApiError::not_found(format!("invocation {invocation_id}")));
            }
            Err(e) => return Err(e),
        };
        let key = output_key(&spec, node_id);
        let mut ok = true;
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            if text.is_empty() {
                continue;
            }
            if let Err(e) = svc
                .objects
                .put(&format!("{key}/{stream}"), text.as_bytes().to_vec())
                .await
            {
                tracing::error!("storing the {stream} of {invocation_id}: {e}");
                ok = false;
            }
        }
        ok.then_some(key)
    } else {
        None
    };
    let mut refused = false;
    let stored = svc
        .store
        .report_invocation(invocation_id, node_id, now, |stored| {
            let current = parse_details(&stored.status_details);
            match verdict(current, reported) {
                Verdict::Keep => None,
                Verdict::Refuse => {
                    refused = true;
                    None
                }
                Verdict::Apply => {
                    let terminal = reported.is_terminal();
                    Some(InvocationUpdate {
                        status: reported.status.as_str().into(),
                        status_details: reported.details.as_str().into(),
                        started_at: r.started_at.or(stored.started_at).or(Some(now)),
                        ended_at: terminal.then(|| r.ended_at.unwrap_or(now)),
                        response_code: if terminal {
                            i64::from(r.response_code)
                        } else {
                            -1
                        },
                        stdout: standard_output(&r.stdout).into_owned(),
                        stderr: standard_error(&r.stderr).into_owned(),
                        output: combined_output(&r.stdout, &r.stderr),
                        output_key: output_key.clone(),
                        reboots: i64::from(r.reboots),
                    })
                }
            }
        })
        .await?;
    // An acknowledgement while others of the wave are still unacknowledged
    // leaves the rollout nothing to do: not waking it keeps a wave of
    // hundreds from making hundreds of idle steps. A repeat is judged the
    // same way (its first wake-up may have been lost with a replica). The
    // acknowledgements still awaited are read only when they can matter.
    let ends = reported.is_terminal();
    let awaiting = !ends && svc.store.awaiting_ack(&stored.command_id).await?;
    if rollout::report_moves_rollout(ends, awaiting) {
        rollout_changed(svc, &stored.command_id).await;
    }
    Ok(InvocationReportAck { accepted: !refused })
}

/// Where an invocation's full output lives in the object store.
fn output_key(spec: &CommandSpec, node_id: &str) -> String {
    let prefix = if spec.output_prefix.is_empty() {
        DEFAULT_OUTPUT_PREFIX
    } else {
        spec.output_prefix.trim_matches('/')
    };
    format!("{prefix}/{}/{node_id}/{PLUGIN_NAME}", spec.command_id)
}

// --- Reading ---------------------------------------------------------------

fn view(c: CommandRecord, counts: BTreeMap<String, i64>) -> ApiResult<CommandView> {
    let (spec, progress) = (c.spec, c.progress);
    let document: PatchDocument =
        serde_json::from_value(spec.document).map_err(ApiError::internal)?;
    let targets: Vec<Target> = serde_json::from_value(spec.targets).map_err(ApiError::internal)?;
    let (instance_ids, targets) = match targets.as_slice() {
        [t] if t.key == "InstanceIds" && !t.values.iter().any(|v| v == "*") => {
            (t.values.clone(), Vec::new())
        }
        _ => (Vec::new(), targets),
    };
    Ok(CommandView {
        command_id: spec.command_id,
        document_name: spec.document_name,
        comment: spec.comment,
        parameters: document.parameters(),
        targets,
        instance_ids,
        requested_date_time: spec.requested_at,
        expires_after: spec.expires_after,
        status: progress.status,
        status_details: progress.status_details,
        target_count: c.target_count,
        completed_count: progress.completed_count,
        error_count: progress.error_count,
        delivery_timed_out_count: progress.delivery_timed_out_count,
        max_concurrency: spec.max_concurrency,
        max_errors: spec.max_errors,
        timeout_seconds: spec.timeout_seconds,
        output_s3_bucket_name: spec.output_bucket,
        output_s3_key_prefix: spec.output_prefix,
        requested_by: spec.requested_by,
        finished_at: progress.finished_at,
        invocation_counts: counts,
    })
}

pub async fn get(svc: &Services, caller: &Caller, command_id: &str) -> ApiResult<CommandView> {
    caller.require(Action::ReadFleet)?;
    let c = svc
        .store
        .get_command(command_id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => not_found_command(command_id),
            e => e.into(),
        })?;
    let counts = svc.store.invocation_counts(command_id).await?;
    view(c, counts)
}

pub async fn list(
    svc: &Services,
    caller: &Caller,
    filter: &CommandFilter,
    next: Option<&str>,
    limit: u32,
) -> ApiResult<Page<CommandView>> {
    caller.require(Action::ReadFleet)?;
    let page = svc.store.list_commands(filter, next, limit).await?;
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|c| view(c, BTreeMap::new()))
            .collect::<ApiResult<_>>()?,
        next: page.next,
    })
}

fn invocation_view(
    svc: &Services,
    i: InvocationRecord,
    document_name: &str,
    requested_at: Timestamp,
) -> InvocationView {
    let url = |stream: &str| {
        i.output_key
            .as_ref()
            .map(|k| svc.objects.url_of(&format!("{k}/{stream}")))
            .unwrap_or_default()
    };
    InvocationView {
        standard_output_url: url("stdout"),
        standard_error_url: url("stderr"),
        command_id: i.command_id,
        node_id: i.node_id,
        instance_name: i.computer_name,
        document_name: document_name.to_string(),
        plugin_name: PLUGIN_NAME,
        status: i.status,
        status_details: i.status_details,
        requested_date_time: requested_at,
        dispatched_at: i.dispatched_at,
        acknowledged_at: i.acknowledged_at,
        execution_start_date_time: i.started_at,
        execution_end_date_time: i.ended_at,
        response_code: i.response_code,
        standard_output_content: i.stdout,
        standard_error_content: i.stderr,
        output: i.output,
        deliveries: i.deliveries,
        reboots: i.reboots,
        baseline_id: i.baseline_id,
        baseline_version: i.baseline_version,
    }
}

pub async fn invocations(
    svc: &Services,
    caller: &Caller,
    filter: &InvocationFilter,
    next: Option<&str>,
    limit: u32,
) -> ApiResult<Page<InvocationView>> {
    caller.require(Action::ReadFleet)?;
    if let Some(id) = &filter.command_id {
        get(svc, caller, id).await?;
    }
    let page = svc.store.list_invocations(filter, next, limit).await?;
    let mut commands: HashMap<String, (String, Timestamp)> = HashMap::new();
    let mut items = Vec::with_capacity(page.items.len());
    for i in page.items {
        if !commands.contains_key(&i.command_id) {
            let c = svc.store.get_command(&i.command_id).await?;
            commands.insert(
                c.spec.command_id.clone(),
                (c.spec.document_name, c.spec.requested_at),
            );
        }
        let (doc, at) = commands[&i.command_id].clone();
        items.push(invocation_view(svc, i, &doc, at));
    }
    Ok(Page {
        items,
        next: page.next,
    })
}

pub async fn invocation(
    svc: &Services,
    caller: &Caller,
    command_id: &str,
    node_id: &str,
) -> ApiResult<InvocationView> {
    caller.require(Action::ReadFleet)?;
    let c = svc
        .store
        .get_command(command_id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(_) => not_found_command(command_id),
            e => e.into(),
        })?;
    let i = svc
        .store
        .get_invocation(command_id, node_id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound(m) => {
                ApiError::new(StatusCode::NOT_FOUND, "InvocationDoesNotExist", m)
            }
            e => e.into(),
        })?;
    Ok(invocation_view(
        svc,
        i,
        &c.spec.document_name,
        c.spec.requested_at,
    ))
}

/// The whole stdout or stderr of an invocation, from the object store
/// (the stored truncation when the object store lost it).
pub async fn output(
    svc: &Services,
    caller: &Caller,
    command_id: &str,
    node_id: &str,
    stream: &str,
) -> ApiResult<String> {
    let v = invocation(svc, caller, command_id, node_id).await?;
    let truncated = match stream {
        "stdout" => v.standard_output_content,
        "stderr" => v.standard_error_content,
        _ => {
            return Err(ApiError::invalid(
                "stream",
                format!("stream {stream:?}: expected stdout or stderr"),
            ));
        }
    };
    let i = svc.store.get_invocation(command_id, node_id).await?;
    let Some(key) = i.output_key else {
        return Ok(truncated);
    };
    match svc
        .objects
        .get(
            &format!("{key}/{stream}"),
            patchfleet_protocol::MAX_OUTPUT_BYTES * 2,
        )
        .await
    {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            tracing::warn!("{command_id} {node_id} {stream}: {e}; answering the stored truncation");
            Ok(truncated)
        }
    }
}

// --- The rollout loop ------------------------------------------------------

/// The commands whose invocations changed since their rollout last looked,
/// as this replica heard (its own reports, and the others' through
/// notifications).
#[derive(Default)]
pub struct Rollouts {
    dirty: std::sync::Mutex<HashSet<String>>,
    /// Look at every running command (notifications may have been lost).
    all: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Rollouts {
    pub fn mark(&self, command_id: &str) {
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(command_id.to_string());
        self.notify.notify_one();
    }

    pub fn mark_all(&self) {
        self.all.store(true, std::sync::atomic::Ordering::Relaxed);
        self.notify.notify_one();
    }

    fn take(&self) -> (bool, HashSet<String>) {
        let all = self.all.swap(false, std::sync::atomic::Ordering::Relaxed);
        let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()));
        (all, dirty)
    }
}

/// Runs every command's rollout on the replica holding the lease: looks at
/// the commands whose invocations changed (batched: reports arriving
/// together make one step), those a deadline came for, and, when it takes
/// the lease (a start, or another replica gone), every running one. Runs
/// until aborted.
pub async fn rollout_loop(svc: Services) {
    const LEASE: &str = "command-rollout";
    const TTL: Duration = Duration::from_secs(15);
    const TICK: Duration = Duration::from_millis(250);
    /// Reports that arrive within this of each other make one step.
    const GATHER: Duration = Duration::from_millis(5);
    let holder = svc.config.replica_id();
    let mut held_until: Option<Timestamp> = None;
    loop {
        if tokio::time::timeout(TICK, svc.rollouts.notify.notified())
            .await
            .is_ok()
        {
            tokio::time::sleep(GATHER).await;
        }
        let now = Timestamp::now();
        // Renewed well before it lapses; not on every tick (a write).
        if held_until.is_none_or(|u| u - SignedDuration::from_secs(10) <= now) {
            match svc.store.try_acquire_lease(LEASE, &holder, TTL, now).await {
                Ok(true) => {
                    if held_until.is_none() {
                        svc.rollouts.mark_all();
                    }
                    held_until = Some(now + SignedDuration::from_secs(TTL.as_secs() as i64));
                }
                Ok(false) => {
                    held_until = None;
                    continue;
                }
                Err(e) => {
                    tracing::error!("lease {LEASE}: {e}");
                    held_until = None;
                    continue;
                }
            }
        }
        let (all, mut ids) = svc.rollouts.take();
        let due = if all {
            svc.store.active_commands().await
        } else {
            svc.store.commands_due(now).await
        };
        match due {
            Ok(d) => ids.extend(d),
            Err(e) => {
                tracing::error!("commands due: {e}");
                if all {
                    svc.rollouts.mark_all();
                }
                continue;
            }
        }
        for id in ids {
            if let Err(e) = advance(&svc, &id, Timestamp::now()).await {
                tracing::error!("command {id}: {}", e.message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_against_stored_states() {
        use InvocationState as S;
        // The acknowledgement, and a repeat of it.
        assert_eq!(verdict(S::PENDING, S::IN_PROGRESS), Verdict::Apply);
        assert_eq!(verdict(S::IN_PROGRESS, S::IN_PROGRESS), Verdict::Keep);
        // A result, a repeat of it, and a different second one.
        assert_eq!(verdict(S::IN_PROGRESS, S::SUCCESS), Verdict::Apply);
        assert_eq!(verdict(S::SUCCESS, S::SUCCESS), Verdict::Keep);
        assert_eq!(verdict(S::SUCCESS, S::FAILED), Verdict::Keep);
        // A result whose acknowledgement was lost.
        assert_eq!(verdict(S::PENDING, S::FAILED), Verdict::Apply);
        // Cancelling: running on until the agent ends it.
        assert_eq!(verdict(S::CANCELLING, S::IN_PROGRESS), Verdict::Keep);
        assert_eq!(verdict(S::CANCELLING, S::CANCELLED), Verdict::Apply);
        assert_eq!(verdict(S::CANCELLING, S::SUCCESS), Verdict::Apply);
        // Ended before the agent took it: it must not run.
        for ended in [
            S::CANCELLED,
            S::TERMINATED,
            S::UNDELIVERABLE,
            S::DELIVERY_TIMED_OUT,
        ] {
            assert_eq!(verdict(ended, S::IN_PROGRESS), Verdict::Refuse, "{ended}");
        }
        // The server timed it out, but it ran: the agent's result is true.
        assert_eq!(verdict(S::DELIVERY_TIMED_OUT, S::SUCCESS), Verdict::Apply);
        assert_eq!(verdict(S::CANCELLED, S::SUCCESS), Verdict::Keep);
    }
}
