//! Run Command, as pure functions (spec ssm-api §3, patching-semantics §5):
//! the statuses, MaxConcurrency/MaxErrors, the rollout over a command's
//! targets, the patch documents and their parameters, target selection and
//! the truncation of output. The server stores and schedules; every decision
//! about what a command does next is made here, from its inputs alone.

pub mod document;
pub mod output;
pub mod rate;
pub mod rollout;
pub mod status;
pub mod targets;

pub use document::{DocumentError, DocumentName, Hooks, PatchDocument, PatchOperation};
pub use rate::{MaxConcurrency, MaxErrors, RateError};
pub use rollout::{
    CommandState, Counters, Deadlines, Plan, Rollout, Slot, Update, aggregate, cancel, expire,
    expires_after, plan,
};
pub use status::{CommandStatus, InvocationState, InvocationStatus, StatusDetails};
pub use targets::{Target, TargetError, TargetSet};
