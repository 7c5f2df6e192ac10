//! Command and invocation statuses (spec ssm-api §3.4).
//!
//! `Status` is the coarse enum clients switch on; `StatusDetails` is the finer
//! state and the one rules are written against, so every decision here reads
//! the details and derives the status from them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A status string that is not one of the AWS spellings of its enum.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownStatus {
    /// Which enum was being parsed (`CommandStatus`, `StatusDetails`, …).
    pub kind: &'static str,
    /// The text as given.
    pub value: String,
}

/// Generates `ALL`, `as_str`, `Display` and `FromStr` for an enum whose
/// variant names are exactly the AWS strings, so the three cannot drift apart.
macro_rules! aws_enum {
    ($ty:ident, $kind:literal, [$($variant:ident),+ $(,)?]) => {
        impl $ty {
            /// Every value, in the order of the AWS model.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The exact AWS spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => stringify!($variant)),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownStatus { kind: $kind, value: s.to_owned() })
            }
        }
    };
}

/// `Command.Status`: what ListCommands reports for the command as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommandStatus {
    /// No invocation acknowledged yet.
    Pending,
    /// Some invocation is still open.
    InProgress,
    /// Ended with every invocation succeeded (or never able to run).
    Success,
    /// Ended after CancelCommand.
    Cancelled,
    /// Ended with errors (details say which kind).
    Failed,
    /// Ended by a timeout (execution or delivery).
    TimedOut,
    /// CancelCommand issued; waiting for agents to confirm.
    Cancelling,
}
aws_enum!(
    CommandStatus,
    "CommandStatus",
    [
        Pending, InProgress, Success, Cancelled, Failed, TimedOut, Cancelling
    ]
);

/// `CommandInvocationStatus`: the coarse status of one node's invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvocationStatus {
    /// Not yet acknowledged by the agent.
    Pending,
    /// Acknowledged and running.
    InProgress,
    /// A delivery attempt failed; will be retried.
    Delayed,
    /// Every step exited 0.
    Success,
    /// Cancelled, or never started (MaxErrors exceeded).
    Cancelled,
    /// Execution or delivery timed out.
    TimedOut,
    /// A step failed, or the node could never run it.
    Failed,
    /// Cancel requested; waiting for the agent.
    Cancelling,
}
aws_enum!(
    InvocationStatus,
    "CommandInvocationStatus",
    [
        Pending, InProgress, Delayed, Success, Cancelled, TimedOut, Failed, Cancelling
    ]
);

/// `StatusDetails`, as the space-less tokens clients compare against (the
/// documentation's "Delivery Timed Out" spelling is never emitted). The last
/// three occur only at command level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusDetails {
    /// Not yet sent to, or acknowledged by, the agent.
    Pending,
    /// Acknowledged and running.
    InProgress,
    /// A delivery attempt failed; will be retried.
    Delayed,
    /// Every step exited 0.
    Success,
    /// A step exited non-zero (counts against MaxErrors).
    Failed,
    /// The agent stopped a step at its timeout (counts against MaxErrors).
    ExecutionTimedOut,
    /// No terminal reply before the command expired.
    DeliveryTimedOut,
    /// Cancelled by CancelCommand.
    Cancelled,
    /// Cancel requested; waiting for the agent.
    Cancelling,
    /// The node can never receive it.
    Undeliverable,
    /// Never started: the command exceeded its MaxErrors limit.
    Terminated,
    /// The document does not support the node's platform.
    InvalidPlatform,
    /// The caller may not run commands on the node.
    AccessDenied,
    /// Command level: the targets matched no node.
    NoInstancesInTag,
    /// Command level: ran everywhere, some failed within the allowance.
    Incomplete,
    /// Command level: refused, too many pending invocations.
    RateExceeded,
}
aws_enum!(
    StatusDetails,
    "StatusDetails",
    [
        Pending,
        InProgress,
        Delayed,
        Success,
        Failed,
        ExecutionTimedOut,
        DeliveryTimedOut,
        Cancelled,
        Cancelling,
        Undeliverable,
        Terminated,
        InvalidPlatform,
        AccessDenied,
        NoInstancesInTag,
        Incomplete,
        RateExceeded,
    ]
);

/// The state of one invocation: the pair the API reports. Built from the
/// details so that the two always agree with the table of spec §3.4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InvocationState {
    /// `Status`.
    #[serde(rename = "Status")]
    pub status: InvocationStatus,
    /// `StatusDetails`.
    #[serde(rename = "StatusDetails")]
    pub details: StatusDetails,
}

impl InvocationState {
    /// Not yet sent to, or not yet acknowledged by, the agent.
    pub const PENDING: Self = Self::known(StatusDetails::Pending);
    /// Acknowledged by the agent and running.
    pub const IN_PROGRESS: Self = Self::known(StatusDetails::InProgress);
    /// A delivery attempt failed; it will be retried.
    pub const DELAYED: Self = Self::known(StatusDetails::Delayed);
    /// Every step exited 0.
    pub const SUCCESS: Self = Self::known(StatusDetails::Success);
    /// A step exited non-zero.
    pub const FAILED: Self = Self::known(StatusDetails::Failed);
    /// The agent stopped a step at its execution timeout.
    pub const EXECUTION_TIMED_OUT: Self = Self::known(StatusDetails::ExecutionTimedOut);
    /// The command expired before the agent reported an end.
    pub const DELIVERY_TIMED_OUT: Self = Self::known(StatusDetails::DeliveryTimedOut);
    /// Cancelled before delivery, or the agent confirmed the cancel.
    pub const CANCELLED: Self = Self::known(StatusDetails::Cancelled);
    /// Cancel requested of a delivered invocation; waiting for the agent.
    pub const CANCELLING: Self = Self::known(StatusDetails::Cancelling);
    /// The node cannot ever receive it (gone, deregistered).
    pub const UNDELIVERABLE: Self = Self::known(StatusDetails::Undeliverable);
    /// Never started because the command exceeded its MaxErrors limit.
    pub const TERMINATED: Self = Self::known(StatusDetails::Terminated);
    /// The document does not support the node's platform.
    pub const INVALID_PLATFORM: Self = Self::known(StatusDetails::InvalidPlatform);
    /// The caller may not run commands on this node.
    pub const ACCESS_DENIED: Self = Self::known(StatusDetails::AccessDenied);

    /// The status spec §3.4 pairs with each invocation-level detail
    /// (`Undeliverable`/`InvalidPlatform`/`AccessDenied` → `Failed` and
    /// `Terminated` → `Cancelled` are our choices there).
    const fn status_of(details: StatusDetails) -> Option<InvocationStatus> {
        use InvocationStatus as S;
        use StatusDetails as D;
        Some(match details {
            D::Pending => S::Pending,
            D::InProgress => S::InProgress,
            D::Delayed => S::Delayed,
            D::Success => S::Success,
            D::Failed | D::Undeliverable | D::InvalidPlatform | D::AccessDenied => S::Failed,
            D::ExecutionTimedOut | D::DeliveryTimedOut => S::TimedOut,
            D::Cancelled | D::Terminated => S::Cancelled,
            D::Cancelling => S::Cancelling,
            D::NoInstancesInTag | D::Incomplete | D::RateExceeded => return None,
        })
    }

    const fn known(details: StatusDetails) -> Self {
        match Self::status_of(details) {
            Some(status) => Self { status, details },
            // Only reached for command-level details, which the constants
            // above never name; keeps `const` without a panic path.
            None => Self {
                status: InvocationStatus::Failed,
                details,
            },
        }
    }

    /// The state for an invocation-level detail; `None` for the details that
    /// exist only at command level (`NoInstancesInTag`, `Incomplete`,
    /// `RateExceeded`).
    pub fn from_details(details: StatusDetails) -> Option<Self> {
        Self::status_of(details).map(|status| Self { status, details })
    }

    /// No further change will come from the agent or the service.
    pub fn is_terminal(self) -> bool {
        use StatusDetails as D;
        matches!(
            self.details,
            D::Success
                | D::Failed
                | D::ExecutionTimedOut
                | D::DeliveryTimedOut
                | D::Cancelled
                | D::Undeliverable
                | D::Terminated
                | D::InvalidPlatform
                | D::AccessDenied
        )
    }

    /// Counts against MaxErrors (`Command.ErrorCount`): a run that failed or
    /// overran, not one that never reached the node.
    pub fn counts_as_error(self) -> bool {
        matches!(
            self.details,
            StatusDetails::Failed | StatusDetails::ExecutionTimedOut
        )
    }

    /// Counts in `Command.CompletedCount`, whose definition in the model
    /// lists exactly these seven details (so `InvalidPlatform` and
    /// `AccessDenied` are terminal without being "completed").
    pub fn is_completed(self) -> bool {
        use StatusDetails as D;
        matches!(
            self.details,
            D::Success
                | D::Failed
                | D::ExecutionTimedOut
                | D::DeliveryTimedOut
                | D::Cancelled
                | D::Terminated
                | D::Undeliverable
        )
    }

    /// The agent has it and it has not ended: it occupies a MaxConcurrency
    /// slot whatever the server's own bookkeeping says. (An invocation the
    /// server queued but the agent has not acknowledged is still `Pending`;
    /// the rollout tracks that with its own `dispatched` flag.)
    pub fn in_flight(self) -> bool {
        matches!(
            self.details,
            StatusDetails::InProgress | StatusDetails::Delayed | StatusDetails::Cancelling
        )
    }

    /// Still waiting to be acknowledged (`Pending`): the ramp does not grow
    /// while a dispatched invocation is in this state.
    pub fn is_pending(self) -> bool {
        self.details == StatusDetails::Pending
    }
}

impl Default for InvocationState {
    fn default() -> Self {
        Self::PENDING
    }
}

impl fmt::Display for InvocationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.status, self.details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_serde_agree() {
        for d in StatusDetails::ALL {
            assert_eq!(d.as_str().parse::<StatusDetails>(), Ok(*d));
            let json = serde_json::to_string(d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
            assert_eq!(serde_json::from_str::<StatusDetails>(&json).unwrap(), *d);
        }
        for s in CommandStatus::ALL {
            assert_eq!(s.as_str().parse::<CommandStatus>(), Ok(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        for s in InvocationStatus::ALL {
            assert_eq!(s.as_str().parse::<InvocationStatus>(), Ok(*s));
        }
        assert_eq!(StatusDetails::ALL.len(), 16);
        assert_eq!(CommandStatus::ALL.len(), 7);
        assert_eq!(InvocationStatus::ALL.len(), 8);
        // The documentation's spaced spelling and other cases are refused.
        for bad in ["Delivery Timed Out", "inprogress", "", "Incomplete "] {
            assert!(bad.parse::<StatusDetails>().is_err(), "{bad}");
        }
        let err = "Done".parse::<CommandStatus>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown CommandStatus "Done""#);
    }

    /// Spec §3.4's invocation table, one row per detail:
    /// (details, status, terminal, error, completed, in flight).
    #[test]
    fn invocation_table() {
        use InvocationStatus as S;
        use StatusDetails as D;
        let table = [
            (D::Pending, S::Pending, false, false, false, false),
            (D::InProgress, S::InProgress, false, false, false, true),
            (D::Delayed, S::Delayed, false, false, false, true),
            (D::Success, S::Success, true, false, true, false),
            (D::Failed, S::Failed, true, true, true, false),
            (D::ExecutionTimedOut, S::TimedOut, true, true, true, false),
            (D::DeliveryTimedOut, S::TimedOut, true, false, true, false),
            (D::Cancelled, S::Cancelled, true, false, true, false),
            (D::Cancelling, S::Cancelling, false, false, false, true),
            (D::Undeliverable, S::Failed, true, false, true, false),
            (D::Terminated, S::Cancelled, true, false, true, false),
            (D::InvalidPlatform, S::Failed, true, false, false, false),
            (D::AccessDenied, S::Failed, true, false, false, false),
        ];
        for (details, status, terminal, error, completed, in_flight) in table {
            let st = InvocationState::from_details(details).unwrap();
            assert_eq!(st.status, status, "{details}");
            assert_eq!(st.is_terminal(), terminal, "{details}");
            assert_eq!(st.counts_as_error(), error, "{details}");
            assert_eq!(st.is_completed(), completed, "{details}");
            assert_eq!(st.in_flight(), in_flight, "{details}");
        }
        for details in [D::NoInstancesInTag, D::Incomplete, D::RateExceeded] {
            assert_eq!(InvocationState::from_details(details), None);
        }
        assert_eq!(
            InvocationState::TERMINATED.to_string(),
            "Cancelled/Terminated"
        );
        assert_eq!(
            serde_json::to_string(&InvocationState::DELIVERY_TIMED_OUT).unwrap(),
            r#"{"Status":"TimedOut","StatusDetails":"DeliveryTimedOut"}"#
        );
    }
}
