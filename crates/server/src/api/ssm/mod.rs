//! The SSM-compatible API: `POST /` with `X-Amz-Target: AmazonSSM.<Op>`
//! (awsJson1.1), authenticated with SigV4 against the API keys, so that the
//! AWS CLI, boto3 and other SDKs work unchanged (DESIGN decision 6; wire
//! format in spec §1).
//!
//! Each request, in order: a request id; the body read (bounded); SigV4
//! verified on the raw bytes; the operation looked up; the caller's role
//! checked; the body parsed and validated against the botocore model
//! (`model`); then one match arm calls the operation, which calls the
//! services (the rules live there, shared with `/api/v1`). Every answer,
//! success or error, carries `x-amzn-RequestId` and `Date`; errors are
//! `{"__type", "message"}` with the code botocore maps to its exception
//! classes (`error`).
//!
//! Adding an operation (every one of the model is listed in [`OPERATIONS`]
//! with its role; those not served answer `UnknownOperationException`):
//! write `async fn op(ctx: &Ctx<'_>, input: Value) -> SsmResult` calling
//! the service, and add its arm to [`dispatch`].

pub mod activations;
pub mod baselines;
pub mod commands;
pub mod compliance;
pub mod error;
pub mod model;
pub mod nodes;
pub mod paging;
pub mod patches;

use crate::auth::Action;
use crate::services::{Caller, Services, keys};
use crate::sigv4;
use crate::store::StoreError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use error::SsmError;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub type SsmResult = Result<Value, SsmError>;

pub const TARGET_PREFIX: &str = "AmazonSSM.";
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Every operation of the model, with the action a caller's role must
/// allow. Whether it is served is decided by [`dispatch`] alone.
pub const OPERATIONS: &[(&str, Action)] = &[
    ("CreateActivation", Action::ManageActivations),
    ("DescribeActivations", Action::ReadFleet),
    ("DeleteActivation", Action::ManageActivations),
    ("DescribeInstanceInformation", Action::ReadFleet),
    ("DeregisterManagedInstance", Action::ManageNodes),
    ("AddTagsToResource", Action::ManageNodes),
    ("RemoveTagsFromResource", Action::ManageNodes),
    ("ListTagsForResource", Action::ReadFleet),
    ("CreatePatchBaseline", Action::ManageBaselines),
    ("UpdatePatchBaseline", Action::ManageBaselines),
    ("GetPatchBaseline", Action::ReadFleet),
    ("DeletePatchBaseline", Action::ManageBaselines),
    ("DescribePatchBaselines", Action::ReadFleet),
    ("RegisterDefaultPatchBaseline", Action::ManageBaselines),
    ("GetDefaultPatchBaseline", Action::ReadFleet),
    (
        "RegisterPatchBaselineForPatchGroup",
        Action::ManageBaselines,
    ),
    (
        "DeregisterPatchBaselineForPatchGroup",
        Action::ManageBaselines,
    ),
    ("GetPatchBaselineForPatchGroup", Action::ReadFleet),
    ("DescribePatchGroups", Action::ReadFleet),
    ("DescribePatchGroupState", Action::ReadFleet),
    (
        "DescribeEffectivePatchesForPatchBaseline",
        Action::ReadFleet,
    ),
    ("DescribeAvailablePatches", Action::ReadFleet),
    ("DescribePatchProperties", Action::ReadFleet),
    ("GetDeployablePatchSnapshotForInstance", Action::ReadFleet),
    ("DescribeInstancePatchStates", Action::ReadFleet),
    (
        "DescribeInstancePatchStatesForPatchGroup",
        Action::ReadFleet,
    ),
    ("DescribeInstancePatches", Action::ReadFleet),
    ("ListComplianceSummaries", Action::ReadFleet),
    ("ListResourceComplianceSummaries", Action::ReadFleet),
    ("ListComplianceItems", Action::ReadFleet),
    ("PutComplianceItems", Action::ManageNodes),
    ("SendCommand", Action::SendCommands),
    ("ListCommands", Action::ReadFleet),
    ("ListCommandInvocations", Action::ReadFleet),
    ("GetCommandInvocation", Action::ReadFleet),
    ("CancelCommand", Action::SendCommands),
    ("CreateMaintenanceWindow", Action::SendCommands),
    ("UpdateMaintenanceWindow", Action::SendCommands),
    ("DeleteMaintenanceWindow", Action::SendCommands),
    ("DescribeMaintenanceWindows", Action::ReadFleet),
    ("GetMaintenanceWindow", Action::ReadFleet),
    ("RegisterTargetWithMaintenanceWindow", Action::SendCommands),
    ("RegisterTaskWithMaintenanceWindow", Action::SendCommands),
    ("DescribeMaintenanceWindowTargets", Action::ReadFleet),
    ("DescribeMaintenanceWindowTasks", Action::ReadFleet),
    ("DescribeMaintenanceWindowExecutions", Action::ReadFleet),
    ("DescribeMaintenanceWindowExecutionTasks", Action::ReadFleet),
    ("CreateAssociation", Action::SendCommands),
    ("DescribeAssociation", Action::ReadFleet),
    ("ListAssociations", Action::ReadFleet),
    ("UpdateAssociation", Action::SendCommands),
    ("DeleteAssociation", Action::SendCommands),
    ("StartAssociationsOnce", Action::SendCommands),
    ("DescribeAssociationExecutions", Action::ReadFleet),
    ("DescribeAssociationExecutionTargets", Action::ReadFleet),
    ("DescribeDocument", Action::ReadFleet),
    ("ListDocuments", Action::ReadFleet),
];

/// What an operation gets: the services, the authenticated caller, its
/// own name, and the request's host (for URLs it hands out).
pub struct Ctx<'a> {
    pub svc: &'a Services,
    pub caller: &'a Caller,
    pub op: &'static str,
    /// `https://<host>` as the client reached us.
    pub base_url: String,
    pub now: Timestamp,
}

/// The one match: an operation name to its implementation.
async fn dispatch(ctx: &Ctx<'_>, input: Value) -> SsmResult {
    match ctx.op {
        "CreateActivation" => activations::create(ctx, input).await,
        "DescribeActivations" => activations::describe(ctx, input).await,
        "DeleteActivation" => activations::delete(ctx, input).await,
        "DescribeInstanceInformation" => nodes::describe_instance_information(ctx, input).await,
        "DeregisterManagedInstance" => nodes::deregister(ctx, input).await,
        "AddTagsToResource" => nodes::add_tags(ctx, input).await,
        "RemoveTagsFromResource" => nodes::remove_tags(ctx, input).await,
        "ListTagsForResource" => nodes::list_tags(ctx, input).await,
        "CreatePatchBaseline" => baselines::create(ctx, input).await,
        "UpdatePatchBaseline" => baselines::update(ctx, input).await,
        "GetPatchBaseline" => baselines::get(ctx, input).await,
        "DeletePatchBaseline" => baselines::delete(ctx, input).await,
        "DescribePatchBaselines" => baselines::describe(ctx, input).await,
        "RegisterDefaultPatchBaseline" => baselines::register_default(ctx, input).await,
        "GetDefaultPatchBaseline" => baselines::get_default(ctx, input).await,
        "RegisterPatchBaselineForPatchGroup" => baselines::register_patch_group(ctx, input).await,
        "DeregisterPatchBaselineForPatchGroup" => {
            baselines::deregister_patch_group(ctx, input).await
        }
        "GetPatchBaselineForPatchGroup" => baselines::get_for_patch_group(ctx, input).await,
        "DescribePatchGroups" => baselines::describe_patch_groups(ctx, input).await,
        "DescribePatchGroupState" => compliance::patch_group_state(ctx, input).await,
        "DescribeEffectivePatchesForPatchBaseline" => patches::effective_patches(ctx, input).await,
        "DescribeAvailablePatches" => patches::available_patches(ctx, input).await,
        "DescribePatchProperties" => patches::patch_properties(ctx, input).await,
        "GetDeployablePatchSnapshotForInstance" => patches::deployable_snapshot(ctx, input).await,
        "DescribeInstancePatchStates" => compliance::instance_patch_states(ctx, input).await,
        "DescribeInstancePatchStatesForPatchGroup" => {
            compliance::instance_patch_states_for_group(ctx, input).await
        }
        "DescribeInstancePatches" => compliance::instance_patches(ctx, input).await,
        "ListComplianceSummaries" => compliance::list_summaries(ctx, input).await,
        "ListResourceComplianceSummaries" => compliance::list_resource_summaries(ctx, input).await,
        "ListComplianceItems" => compliance::list_items(ctx, input).await,
        "SendCommand" => commands::send(ctx, input).await,
        "ListCommands" => commands::list_commands(ctx, input).await,
        "ListCommandInvocations" => commands::list_invocations(ctx, input).await,
        "GetCommandInvocation" => commands::get_invocation(ctx, input).await,
        "CancelCommand" => commands::cancel(ctx, input).await,
        // Maintenance windows, associations and documents are not served yet.
        other => Err(SsmError::unsupported_operation(other)),
    }
}

/// Reads the (validated) input into an operation's request type.
pub fn input<T: DeserializeOwned>(v: Value) -> Result<T, SsmError> {
    serde_json::from_value(v).map_err(|e| SsmError::serialization(e.to_string()))
}

/// A random UUID, as AWS's request ids are.
fn request_id() -> String {
    crate::ids::activation_id()
}

fn http_date(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn respond(request_id: &str, result: Result<Value, SsmError>) -> Response {
    let (status, body, error_type) = match result {
        Ok(v) => (StatusCode::OK, v, None),
        Err(e) => {
            let body = serde_json::json!({"__type": e.code, "message": e.message});
            (e.status, body, Some(e.code))
        }
    };
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(Timestamp::now())) {
        h.insert("date", v);
    }
    if let Some(code) = error_type
        && let Ok(v) = HeaderValue::from_str(code)
    {
        h.insert("x-amzn-errortype", v);
    }
    resp
}

/// `POST /` (any other method gets a JSON error too).
pub async fn handle(
    State(svc): State<Services>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = request_id();
    let result = serve(&svc, &method, &uri, &headers, body).await;
    match &result {
        Ok(_) => tracing::debug!(request_id = %id, "SSM request served"),
        Err(e) => tracing::debug!(request_id = %id, code = e.code, "SSM request refused"),
    }
    respond(&id, result)
}

async fn serve(
    svc: &Services,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> SsmResult {
    if method != Method::POST {
        return Err(SsmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            format!("{method} is not served here: the SSM-compatible API takes POST /"),
        ));
    }
    let limit = svc.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        SsmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SerializationException",
            format!("The request body is larger than {limit} bytes."),
        )
    })?;
    let now = Timestamp::now();
    let caller = authenticate(svc, uri, headers, &bytes, now).await?;
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some((op, action)) = target
        .strip_prefix(TARGET_PREFIX)
        .and_then(|name| OPERATIONS.iter().find(|(n, _)| *n == name))
        .copied()
    else {
        return Err(SsmError::unknown_operation(target));
    };
    if !caller.role.allows(action) {
        return Err(SsmError::access_denied(&caller, op));
    }
    let input: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        // botocore always sends `{}`; an empty body means the same.
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            SsmError::serialization(format!("The request body is not valid JSON: {e}"))
        })?
    };
    model::validate(op, &input).map_err(SsmError::from_invalid)?;
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| svc.config.listen.to_string());
    let scheme = if svc.config.insecure_http {
        "http"
    } else {
        "https"
    };
    let ctx = Ctx {
        svc,
        caller: &caller,
        op,
        base_url: format!("{scheme}://{host}"),
        now,
    };
    dispatch(&ctx, input).await
}

/// SigV4 against the API keys: the request as received (headers, path,
/// raw body) and the key's secret, opened with the server key.
async fn authenticate(
    svc: &Services,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Caller, SsmError> {
    let mut list: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        // A header that is not text cannot have been signed as text.
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        list.push((name.as_str().to_string(), v));
    }
    if !list.iter().any(|(n, _)| n == "host")
        && let Some(a) = uri.authority()
    {
        // HTTP/2 carries the host as :authority.
        list.push(("host".into(), a.to_string()));
    }
    let req = sigv4::Request {
        method: "POST",
        path: uri.path(),
        query: uri.query().unwrap_or_default(),
        headers: &list,
        body,
    };
    let skew = i64::from(svc.config.sigv4_clock_skew_seconds);
    let (auth, amz_date) = sigv4::precheck(&req, now, skew).map_err(SsmError::from_sig)?;
    if list.iter().any(|(n, _)| n == "x-amz-security-token") {
        // Temporary credentials are not issued here.
        return Err(SsmError::unrecognized_client());
    }
    let (caller, secret) = match keys::secret_of_active(svc, &auth.access_key_id).await {
        Ok(pair) => pair,
        Err(StoreError::NotFound(_)) => return Err(SsmError::unrecognized_client()),
        Err(e) => return Err(SsmError::internal(e)),
    };
    sigv4::verify(&req, &auth, &amz_date, &secret).map_err(SsmError::from_sig)?;
    Ok(caller)
}
