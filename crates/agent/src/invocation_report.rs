//! What the agent tells the server about an invocation, from its journal
//! record: the acknowledgement (`InProgress`) and the result, with SSM's
//! statuses (ssm-api §3.4) and exit codes (patching-semantics §5.4).

use crate::journal::{InvocationResult, Record, Step};
use patchfleet_core::command::{InvocationState, StatusDetails};
use patchfleet_protocol::{CommandInvocation, InvocationReport};

/// The exit code of a step stopped before it ended (execution timeout,
/// cancel): 128 + SIGKILL, as the SSM Agent reports it on Linux.
pub const RESPONSE_STOPPED: i32 = 137;
/// The exit code of an invocation that never started (ssm-api §3.6).
pub const RESPONSE_NOT_STARTED: i32 = -1;

/// The outcomes the agent reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failed,
    ExecutionTimedOut,
    Cancelled,
}

impl Outcome {
    fn state(self) -> InvocationState {
        match self {
            Outcome::Success => InvocationState::SUCCESS,
            Outcome::Failed => InvocationState::FAILED,
            Outcome::ExecutionTimedOut => InvocationState::EXECUTION_TIMED_OUT,
            Outcome::Cancelled => InvocationState::CANCELLED,
        }
    }

    /// Success for exit code 0, else Failed.
    pub fn of_exit_code(code: i32) -> Outcome {
        if code == 0 {
            Outcome::Success
        } else {
            Outcome::Failed
        }
    }

    /// The journal's result with this outcome.
    pub fn result(self, response_code: i32, stdout: String, stderr: String) -> InvocationResult {
        InvocationResult {
            status: self.state().status.as_str().to_string(),
            response_code,
            stdout,
            stderr,
        }
    }
}

/// StatusDetails of a stored status: the agent's only timeout is the
/// execution timeout.
fn details(status: &str) -> String {
    match status {
        "TimedOut" => StatusDetails::ExecutionTimedOut.as_str().to_string(),
        other => other.to_string(),
    }
}

/// The acknowledgement: received and journaled, running or about to.
pub fn in_progress(rec: &Record) -> InvocationReport {
    InvocationReport {
        status: InvocationState::IN_PROGRESS.status.as_str().to_string(),
        details: StatusDetails::InProgress.as_str().to_string(),
        response_code: RESPONSE_NOT_STARTED,
        started_at: Some(rec.received_at),
        ended_at: None,
        stdout: String::new(),
        stderr: String::new(),
        reboots: rec.reboots,
    }
}

/// The result of a finished record; `None` while it runs.
pub fn terminal(rec: &Record) -> Option<InvocationReport> {
    let result = rec.result.as_ref()?;
    let ended_at = rec
        .transitions
        .iter()
        .rev()
        .find(|t| t.step == Step::Finished)
        .map(|t| t.at);
    Some(InvocationReport {
        status: result.status.clone(),
        details: details(&result.status),
        response_code: result.response_code,
        started_at: Some(rec.received_at),
        ended_at,
        stdout: result.stdout.clone(),
        stderr: result.stderr.clone(),
        reboots: rec.reboots,
    })
}

/// The invocation a record holds, or why it does not read.
pub fn invocation_of(rec: &Record) -> Result<CommandInvocation, String> {
    let inv: CommandInvocation = serde_json::from_value(rec.document.clone())
        .map_err(|e| format!("the invocation's parameters do not read: {e}"))?;
    if inv.invocation_id != rec.invocation_id {
        return Err(format!(
            "the parameters are those of invocation {:?}, not {:?}",
            inv.invocation_id, rec.invocation_id
        ));
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchfleet_core::command::InvocationStatus;

    #[test]
    fn statuses_are_ssm_spellings() {
        for (outcome, status, details) in [
            (Outcome::Success, "Success", "Success"),
            (Outcome::Failed, "Failed", "Failed"),
            (Outcome::ExecutionTimedOut, "TimedOut", "ExecutionTimedOut"),
            (Outcome::Cancelled, "Cancelled", "Cancelled"),
        ] {
            let r = outcome.result(0, String::new(), String::new());
            assert_eq!(r.status, status);
            assert_eq!(super::details(&r.status), details);
            // Both parse as the core enums the server stores.
            assert!(status.parse::<InvocationStatus>().is_ok());
            assert!(details.parse::<StatusDetails>().is_ok());
        }
        assert_eq!(Outcome::of_exit_code(0), Outcome::Success);
        assert_eq!(Outcome::of_exit_code(2), Outcome::Failed);
    }
}
