//! The agent channel, `/agent/v1`: JSON over HTTPS, the agent
//! authenticated by its client certificate after registration.
//!
//! | request | body → answer |
//! |---|---|
//! | `POST /agent/v1/register` (no client certificate) | [`RegisterRequest`] → [`RegisterResponse`] |
//! | `POST /agent/v1/heartbeat` | [`Heartbeat`] → [`HeartbeatAck`] |
//! | `POST /agent/v1/facts/offer` | [`FactsOffer`] → [`FactsOfferAck`] |
//! | `PUT /agent/v1/facts/{hash}?scanned_at=RFC3339` | `NodeFacts` (the inventory whose content hash is `hash`; `scanned_at` the offer's) → 204 |
//! | `GET /agent/v1/work?wait=SECONDS` | → [`WorkResponse`] (long poll: at once when work is queued) |
//! | `POST /agent/v1/invocations/{invocation_id}` | [`InvocationReport`] → [`InvocationReportAck`] |
//!
//! Every request carries the agent's [`PROTOCOL_VERSION`]; a server answers
//! a version it does not speak with 400 and names the versions it does.
//! Errors are [`ErrorBody`]. The agent announces its capabilities (the
//! documents it can run); the server never sends work it did not announce.

use jiff::Timestamp;
use patchfleet_core::facts::{NodeFacts, RebootEvidence, RebootState};
use serde::{Deserialize, Serialize};

/// The protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// What an agent can run. Scanning (facts uploads on request).
pub const CAPABILITY_SCAN: &str = "scan";

/// Running `AWS-RunPatchBaseline` / `AWS-RunPatchBaselineWithHooks`
/// invocations (work items of this kind carry a [`CommandInvocation`]).
pub const CAPABILITY_RUN_PATCH_BASELINE: &str = "run-patch-baseline";

/// Cancelling an invocation it runs (work items of this kind carry a
/// [`CancelInvocation`]).
pub const CAPABILITY_CANCEL: &str = "cancel";

/// The platform as the node reports it (DescribeInstanceInformation's
/// PlatformType/Name/Version).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    /// SSM operating system (`UBUNTU`, `REDHAT_ENTERPRISE_LINUX`, …).
    pub operating_system: String,
    /// `PRODUCT` string (`Ubuntu22.04`).
    pub product: String,
    /// os-release NAME (`Ubuntu`).
    pub name: String,
    /// os-release VERSION_ID (`22.04`).
    pub version: String,
}

/// What an agent says about itself in every registration and heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    pub protocol: u32,
    pub agent_version: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    pub platform: Platform,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub activation_id: String,
    pub activation_code: String,
    /// PKCS#10 certificate signing request (PEM) for the key the agent made
    /// and keeps; the server signs it into the node's client certificate.
    pub csr_pem: String,
    pub agent: AgentInfo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    /// `mi-` followed by 17 hex digits.
    pub node_id: String,
    /// The node's client certificate (PEM), its common name the node id.
    pub certificate_pem: String,
    /// The server's CA (PEM), the one trust anchor of the agent from now on.
    pub ca_pem: String,
    pub heartbeat_seconds: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub agent: AgentInfo,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAck {
    pub heartbeat_seconds: u32,
    pub server_time: Timestamp,
}

/// What changes between scans of one inventory: the node's own state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_state: Option<RebootState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_kernel: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reboot_required: Vec<RebootEvidence>,
}

impl NodeState {
    /// The node's part of `facts`.
    pub fn of(facts: &NodeFacts) -> NodeState {
        NodeState {
            boot_time: facts.boot_time,
            reboot_state: facts.reboot_state.clone(),
            running_kernel: facts.running_kernel.clone(),
            reboot_required: facts.reboot_required.clone(),
        }
    }
}

/// A scan's result, by hash first (DESIGN decision 2): the body follows
/// only when the server does not know the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsOffer {
    /// `sha256:…` of the inventory's canonical form (`NodeFacts::content_hash`).
    pub content_hash: String,
    pub state: NodeState,
    pub scanned_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsOfferAck {
    /// The server has this inventory: the node now points at it, nothing
    /// more to send. `false`: `PUT /agent/v1/facts/{hash}` with the facts.
    pub known: bool,
}

/// One unit of work for a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkItem {
    /// Unique; the agent de-duplicates by it.
    pub id: String,
    /// A capability the agent announced (`scan`).
    pub kind: String,
    #[serde(default)]
    pub parameters: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkResponse {
    pub items: Vec<WorkItem>,
}

/// The parameters of a `run-patch-baseline` work item: one invocation of a
/// command on this node. Delivered at least once; the agent runs each
/// `invocation_id` at most once and reports its result until acknowledged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandInvocation {
    /// Unique per (command, node): the agent's de-duplication key.
    pub invocation_id: String,
    pub command_id: String,
    /// The validated document and its parameters.
    pub document: patchfleet_core::command::PatchDocument,
    /// The baseline to patch with: the node's (its patch group's or its
    /// OS's default) when the command was sent, or the `BaselineOverride`
    /// (GetDeployablePatchSnapshotForInstance's snapshot).
    pub baseline: patchfleet_core::baseline::Baseline,
    /// `InstallOverrideList`, resolved by the server: exactly these
    /// packages, instead of the baseline's choice (`None`: not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_override: Option<Vec<OverridePatch>>,
    /// The instant the command was sent (approval delays are counted
    /// against the instant the install runs, not this).
    pub requested_at: Timestamp,
}

/// One entry of an `InstallOverrideList` (spec §2.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverridePatch {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The parameters of a `cancel` work item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelInvocation {
    pub invocation_id: String,
}

/// An invocation's progress or result, from the agent. `InProgress` once
/// it starts (the server counts it as acknowledged); a terminal status
/// once, then again until the server acknowledges it (after a restart of
/// either side the same result is sent again, never a second run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationReport {
    /// `InProgress`, `Success`, `Failed`, `TimedOut` or `Cancelled`.
    pub status: String,
    /// SSM's StatusDetails (`InProgress`, `Success`, `Failed`,
    /// `ExecutionTimedOut`, `Cancelled`).
    pub details: String,
    /// The step's exit code (spec §5.4); `-1` while running.
    pub response_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// The step's whole stdout and stderr (the agent caps each at
    /// [`MAX_OUTPUT_BYTES`]; the server keeps SSM's truncations and the
    /// full text in its object store).
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    /// Reboots the agent made for this invocation.
    #[serde(default)]
    pub reboots: u32,
}

/// Output kept per stream by the agent.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationReportAck {
    /// `false`: the server no longer wants this invocation (cancelled,
    /// timed out, deregistered); the agent stops it and forgets it.
    pub accepted: bool,
}

/// Every error answer of the server, on both APIs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable (`NotFound`, `InvalidActivation`, `Conflict`, …).
    pub code: String,
    pub message: String,
    /// The request member at fault, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_members_are_refused() {
        let e = serde_json::from_str::<FactsOfferAck>(r#"{"known":true,"extra":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn node_state_round_trips() {
        let s = NodeState {
            running_kernel: Some("6.1.0-26-amd64".into()),
            ..NodeState::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#"{"running_kernel":"6.1.0-26-amd64"}"#);
        assert_eq!(serde_json::from_str::<NodeState>(&text).unwrap(), s);
    }
}
