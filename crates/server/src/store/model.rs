//! The records the store reads and writes. Timestamps are `jiff::Timestamp`
//! here and epoch milliseconds in SQL; JSON members are `serde_json::Value`
//! here and TEXT in SQL.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who changed what: written in the same transaction as the change.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub at: Timestamp,
    /// An access key id, `node:mi-…`, or `system`.
    pub actor: String,
    /// `CreateBaseline`, `RegisterNode`, …
    pub action: String,
    /// The ids of the objects the change touched. The store adds the ids it
    /// generates (a new baseline's id, …).
    pub objects: Vec<String>,
    pub detail: Value,
}

impl Audit {
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Audit {
        Audit {
            at: Timestamp::now(),
            actor: actor.into(),
            action: action.into(),
            objects: Vec::new(),
            detail: Value::Object(Default::default()),
        }
    }

    pub fn at(mut self, at: Timestamp) -> Audit {
        self.at = at;
        self
    }

    pub fn object(mut self, id: impl Into<String>) -> Audit {
        self.objects.push(id.into());
        self
    }

    pub fn detail(mut self, detail: Value) -> Audit {
        self.detail = detail;
        self
    }
}

/// One row of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Time-ordered: the keyset of the log's pages.
    pub id: String,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub objects: Vec<String>,
    pub detail: Value,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object: Option<String>,
    pub since: Option<Timestamp>,
    /// Exclusive.
    pub until: Option<Timestamp>,
}

/// A page of results; `next` is the cursor of the following page, `None` on
/// the last one.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub access_key_id: String,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the secret: bearer tokens are looked up by it.
    pub secret_sha256: String,
    /// The secret sealed with the server key (SigV4 needs the secret itself);
    /// opaque to the store.
    pub secret_sealed: Vec<u8>,
    pub created_at: Timestamp,
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    pub activation_id: String,
    pub code_sha256: String,
    pub description: String,
    pub default_instance_name: Option<String>,
    pub iam_role: String,
    pub registration_limit: i64,
    pub registrations_count: i64,
    pub expiration_date: Timestamp,
    pub created_date: Timestamp,
    /// A JSON object of tag key → value, given to every node it registers.
    pub tags: Value,
}

/// What a node sends to register.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNode {
    /// `mi-` + 17 hex; see [`crate::store::new_node_id`].
    pub node_id: String,
    pub name: String,
    pub computer_name: String,
    pub ip_address: String,
    pub agent_version: String,
    pub protocol: String,
    pub capabilities: Vec<String>,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub operating_system: String,
    pub product: String,
    pub cert_fingerprint: String,
}

/// Registered nodes with facts that share everything a verdict reads
/// but the baseline: the inventory, the OS (which picks the baseline with
/// the patch group) and the state key. Computed once, fanned out in SQL.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluationGroup {
    pub inventory_hash: String,
    pub operating_system: String,
    pub patch_group: Option<String>,
    pub state_key: String,
    /// The state of one of its nodes: they all share the part a verdict
    /// reads (that is what the state key hashes).
    pub node_state: Option<serde_json::Value>,
    pub nodes: i64,
}

/// One evaluation's summary for every node of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct FanOut {
    pub group: EvaluationGroup,
    pub baseline_id: String,
    pub baseline_version: i64,
    pub eval_day: i64,
    pub evaluated_at: Timestamp,
    pub compliance_status: String,
    pub overall_severity: String,
    pub counts: PatchCounts,
}

/// An evaluation group as its timeline and the nodes' memberships name it
/// (`patch_group` is `""` for none).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub inventory_hash: String,
    pub operating_system: String,
    pub patch_group: String,
    pub state_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub node_id: String,
    pub activation_id: String,
    pub name: String,
    pub computer_name: String,
    pub ip_address: String,
    pub agent_version: String,
    pub protocol: String,
    pub capabilities: Vec<String>,
    pub platform_type: String,
    pub platform_name: String,
    pub platform_version: String,
    pub operating_system: String,
    pub product: String,
    pub registration_date: Timestamp,
    pub last_ping: Timestamp,
    pub cert_fingerprint: String,
    pub deregistered_at: Option<Timestamp>,
    /// From the `Patch Group` tag, else `PatchGroup`.
    pub patch_group: Option<String>,
    pub inventory_hash: Option<String>,
    pub node_state: Option<Value>,
    pub scanned_at: Option<Timestamp>,
    /// Sorted by key.
    pub tags: Vec<(String, String)>,
}

/// The agent-side fields a heartbeat refreshes.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    pub agent_version: String,
    pub ip_address: String,
    pub computer_name: String,
    pub capabilities: Vec<String>,
    pub platform_name: String,
    pub platform_version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingStatus {
    /// `last_ping` at or after the cutoff.
    Online,
    ConnectionLost,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFilter {
    /// Empty: any node.
    pub node_ids: Vec<String>,
    /// Every pair must match (AND).
    pub tags: Vec<(String, String)>,
    pub patch_group: Option<String>,
    pub operating_system: Option<String>,
    /// With the cutoff instant: a node is online when its last ping is at or
    /// after it.
    pub ping_status: Option<(PingStatus, Timestamp)>,
}

/// One available (name, arch, version).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageVersion {
    #[serde(rename = "n")]
    pub name: String,
    #[serde(rename = "a")]
    pub arch: String,
    #[serde(rename = "v")]
    pub version: String,
}

impl From<&patchfleet_core::facts::AvailablePackage> for PackageVersion {
    fn from(a: &patchfleet_core::facts::AvailablePackage) -> PackageVersion {
        PackageVersion {
            name: a.name.clone(),
            arch: a.arch.clone(),
            version: a.version.clone(),
        }
    }
}

/// A distinct inventory to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInventory {
    pub content_hash: String,
    pub operating_system: String,
    pub product: String,
    /// The canonical facts JSON, uncompressed (the store compresses).
    pub facts_json: Vec<u8>,
    /// Its available versions whose first sighting may still be
    /// unrecorded (all of them, unless the caller knows better).
    pub available: Vec<PackageVersion>,
}

impl NewInventory {
    pub fn from_facts(facts: &patchfleet_core::facts::NodeFacts) -> NewInventory {
        let canonical = facts.canonical_inventory();
        let hash = patchfleet_core::facts::NodeFacts::hash_of_canonical(&canonical);
        let available = facts.available.iter().map(PackageVersion::from).collect();
        Self::from_canonical(facts, canonical, hash, available)
    }

    /// With the canonical form and its hash already made, and the available
    /// versions whose first sighting may still be unrecorded.
    pub fn from_canonical(
        facts: &patchfleet_core::facts::NodeFacts,
        canonical: Vec<u8>,
        content_hash: String,
        available: Vec<PackageVersion>,
    ) -> NewInventory {
        NewInventory {
            content_hash,
            operating_system: facts.os.operating_system.as_str().to_string(),
            product: facts.os.product.clone(),
            facts_json: canonical,
            available,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Inventory {
    pub content_hash: String,
    pub operating_system: String,
    pub product: String,
    /// Decompressed canonical facts JSON.
    pub facts_json: Vec<u8>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BaselineRecord {
    pub baseline_id: String,
    pub name: String,
    pub operating_system: String,
    pub current_version: i64,
    pub deleted: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BaselineVersion {
    pub baseline_id: String,
    pub version: i64,
    /// The SSM-shaped baseline document; opaque to the store.
    pub document: Value,
    pub created_at: Timestamp,
    pub actor: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PatchGroupRecord {
    pub patch_group: String,
    pub operating_system: String,
    pub baseline_id: String,
}

/// The cache key of one evaluation: the same inventory, baseline version,
/// day and node state give the same verdicts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EvaluationKey {
    pub inventory_hash: String,
    pub baseline_id: String,
    pub baseline_version: i64,
    pub eval_day: i64,
    pub state_key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub key: EvaluationKey,
    pub summary: Value,
    /// The per-patch records as JSON, decompressed; empty until someone
    /// read them (a verdict needs only the summary; the report is rendered
    /// on the first read and kept).
    pub patches_json: Vec<u8>,
    pub created_at: Timestamp,
}

/// An [`Evaluation`] in its stored form: packed where it was computed (a
/// worker thread), so the writer only binds bytes.
#[derive(Clone, Debug)]
pub struct PackedEvaluation {
    pub key: EvaluationKey,
    pub summary_json: String,
    pub patches_gz: Vec<u8>,
    pub created_at: Timestamp,
}

impl Evaluation {
    pub fn pack(&self) -> super::Result<PackedEvaluation> {
        Ok(PackedEvaluation {
            key: self.key.clone(),
            summary_json: super::to_json(&self.summary)?,
            patches_gz: if self.patches_json.is_empty() {
                Vec::new()
            } else {
                super::gzip(&self.patches_json)?
            },
            created_at: self.created_at,
        })
    }
}

/// The counts of SSM's InstancePatchState.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchCounts {
    pub installed: i64,
    pub installed_other: i64,
    pub installed_pending_reboot: i64,
    pub installed_rejected: i64,
    pub missing: i64,
    pub failed: i64,
    pub not_applicable: i64,
    pub unreported_not_applicable: i64,
    pub critical_non_compliant: i64,
    pub security_non_compliant: i64,
    pub other_non_compliant: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeCompliance {
    pub node_id: String,
    /// The same as `key.baseline_id` / `key.baseline_version` (stored once;
    /// reads fill both).
    pub baseline_id: String,
    pub baseline_version: i64,
    pub patch_group: Option<String>,
    pub operating_system: String,
    pub key: EvaluationKey,
    pub evaluated_at: Timestamp,
    /// `COMPLIANT` or `NON_COMPLIANT`.
    pub compliance_status: String,
    /// `CRITICAL`, `HIGH`, …, `UNSPECIFIED`.
    pub overall_severity: String,
    pub counts: PatchCounts,
    /// `Scan` or `Install`.
    pub operation: String,
    pub operation_start: Option<Timestamp>,
    pub operation_end: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    pub node_id: String,
    pub at: Timestamp,
    pub summary: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryGroupBy {
    PatchGroup,
    OperatingSystem,
}

/// One line of the fleet summary. `compliance_status` is `None` for the
/// registered nodes not evaluated yet (their severity is `None` too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The patch group or OS, when grouped (`None`: no patch group).
    pub group: Option<String>,
    pub compliance_status: Option<String>,
    pub overall_severity: Option<String>,
    pub nodes: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComplianceFilter {
    pub compliance_status: Option<String>,
    pub overall_severity: Option<String>,
    pub patch_group: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkItemRecord {
    pub id: String,
    pub node_id: String,
    pub kind: String,
    pub parameters: Value,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub result: Option<Value>,
}

// --- Run Command ----------------------------------------------------------

/// A target the command resolved to, with the invocation's first state
/// (`Pending`, or a terminal one decided at send time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedTarget {
    pub node_id: String,
    pub computer_name: String,
    pub status: String,
    pub status_details: String,
}

/// What SendCommand fixed: never changes once stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandSpec {
    pub command_id: String,
    pub document_name: String,
    pub document: Value,
    pub targets: Value,
    pub comment: String,
    pub timeout_seconds: i64,
    pub max_concurrency: String,
    pub max_errors: String,
    pub output_bucket: String,
    pub output_prefix: String,
    pub install_override: Option<Value>,
    pub baseline_override: Option<Value>,
    pub requested_by: String,
    pub requested_at: Timestamp,
    pub delivery_deadline: Timestamp,
    pub expires_after: Timestamp,
}

/// The rollout's state of a command: what each step rewrites.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommandProgress {
    pub status: String,
    pub status_details: String,
    pub completed_count: i64,
    pub error_count: i64,
    pub delivery_timed_out_count: i64,
    pub finished_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewCommand {
    pub spec: CommandSpec,
    pub progress: CommandProgress,
    /// In dispatch order.
    pub targets_resolved: Vec<ResolvedTarget>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandRecord {
    #[serde(flatten)]
    pub spec: CommandSpec,
    #[serde(flatten)]
    pub progress: CommandProgress,
    pub cancel_requested: bool,
    pub target_count: i64,
    pub wake_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InvocationRecord {
    pub command_id: String,
    pub node_id: String,
    pub invocation_id: String,
    pub position: i64,
    pub computer_name: String,
    pub status: String,
    pub status_details: String,
    pub dispatched: bool,
    pub dispatched_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    pub deliveries: i64,
    pub baseline_id: Option<String>,
    pub baseline_version: Option<i64>,
    pub acknowledged_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub response_code: i64,
    pub stdout: String,
    pub stderr: String,
    pub output: String,
    pub output_key: Option<String>,
    pub reboots: i64,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, Default)]
pub struct CommandFilter {
    pub command_id: Option<String>,
    pub node_id: Option<String>,
    pub status: Option<String>,
    pub document_name: Option<String>,
    pub requested_after: Option<Timestamp>,
    pub requested_before: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
pub struct InvocationFilter {
    pub command_id: Option<String>,
    pub node_id: Option<String>,
    pub status: Option<String>,
}

/// One invocation as a rollout step sees it, in dispatch order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutSlot {
    pub node_id: String,
    pub details: String,
    pub dispatched: bool,
    pub ended_at: Option<Timestamp>,
}

/// A node a step dispatches to, as the baseline pin needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchedNode {
    pub position: usize,
    pub operating_system: Option<String>,
    pub patch_group: Option<String>,
}

/// What a rollout step changes (positions index the invocations).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutChange {
    pub dispatch: Vec<usize>,
    /// (position, Status, StatusDetails)
    pub states: Vec<(usize, String, String)>,
    /// Invocations whose agent is told to stop (a `cancel` work item).
    pub cancel_work: Vec<usize>,
    /// (position, baseline id, version) judging a dispatched invocation.
    pub pins: Vec<(usize, String, i64)>,
    /// `finished_at` set: the command ended (at the step's instant unless
    /// it had ended before).
    pub progress: CommandProgress,
    pub wake_at: Timestamp,
    pub cancel_requested: bool,
}

/// What an agent's report changes in its invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationUpdate {
    pub status: String,
    pub status_details: String,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub response_code: i64,
    pub stdout: String,
    pub stderr: String,
    pub output: String,
    pub output_key: Option<String>,
    pub reboots: i64,
}

/// What [`super::Store::report_invocation`] did.
#[derive(Debug, Clone)]
pub struct Reported {
    pub command_id: String,
    /// What was written (`None`: nothing).
    pub update: Option<InvocationUpdate>,
}

/// What [`super::Store::pending_work`] found for a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingWork {
    pub invocations: bool,
    pub items: bool,
}

/// A registered node as targets see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetableNode {
    pub node_id: String,
    pub computer_name: String,
    pub tags: std::collections::HashMap<String, String>,
    /// What its agent announced.
    pub capabilities: Vec<String>,
}
