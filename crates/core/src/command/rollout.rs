//! The rollout of one command over its targets (spec ssm-api §3.3–§3.5):
//! which invocations to start, which to give up on, and what the command as a
//! whole reports.
//!
//! Everything is a function of the invocations' current states, so the server
//! keeps no rollout state of its own beyond one `dispatched` flag per
//! invocation: after every change (an agent report, a cancel, the clock
//! passing a deadline) it calls [`plan`], applies the result in the same
//! transaction, and a second call with the applied states asks for nothing
//! more. Two replicas computing the same plan therefore agree.

use super::rate::{MaxConcurrency, MaxErrors};
use super::status::{CommandStatus, InvocationState, StatusDetails};
use serde::{Deserialize, Serialize};

/// What the rollout needs to know about one invocation. The slice handed to
/// [`plan`] is ordered by node id: that is the dispatch order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The state the API reports.
    pub state: InvocationState,
    /// The server has handed it to the node's work queue. An invocation stays
    /// `Pending` until the agent acknowledges it, so the state alone cannot
    /// tell "queued for the node" from "waiting for a concurrency slot".
    pub dispatched: bool,
    /// When it reached a terminal state (epoch seconds), if known: decides
    /// which error crossed the MaxErrors limit and so whether a failed
    /// command reports `Failed` or `ExecutionTimedOut`.
    pub ended_at: Option<i64>,
}

impl Slot {
    /// A fresh invocation of a new command.
    pub const NEW: Slot = Slot {
        state: InvocationState::PENDING,
        dispatched: false,
        ended_at: None,
    };

    /// It holds a MaxConcurrency slot: handed out (or already seen by the
    /// agent) and not ended.
    pub fn occupies_slot(&self) -> bool {
        !self.state.is_terminal() && (self.dispatched || !self.state.is_pending())
    }

    /// It could still be started: never handed out and still `Pending`.
    fn startable(&self) -> bool {
        !self.dispatched && self.state.is_pending()
    }
}

/// The input of [`plan`]: one command's invocations and limits.
#[derive(Clone, Copy, Debug)]
pub struct Rollout<'a> {
    /// Every invocation, ordered by node id.
    pub invocations: &'a [Slot],
    /// `MaxConcurrency` as sent.
    pub max_concurrency: MaxConcurrency,
    /// `MaxErrors` as sent.
    pub max_errors: MaxErrors,
    /// CancelCommand was issued for the whole command.
    pub cancelled: bool,
}

/// A change of one invocation's state that a plan, a cancel or an expiry
/// asks the server to record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Position in the rollout's invocations.
    pub index: usize,
    /// The new state.
    pub state: InvocationState,
}

/// The command-level counters of spec §3.4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Counters {
    /// Resolved targets (one invocation each).
    pub target_count: usize,
    /// Invocations in a "completed" state (see `InvocationState::is_completed`).
    pub completed_count: usize,
    /// `Failed` + `ExecutionTimedOut`.
    pub error_count: usize,
    /// `DeliveryTimedOut`.
    pub delivery_timed_out_count: usize,
}

/// The command's aggregate `Status` and `StatusDetails`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandState {
    /// `Command.Status`.
    #[serde(rename = "Status")]
    pub status: CommandStatus,
    /// `Command.StatusDetails`.
    #[serde(rename = "StatusDetails")]
    pub details: StatusDetails,
}

impl CommandState {
    const fn new(status: CommandStatus, details: StatusDetails) -> Self {
        Self { status, details }
    }

    /// Whether the command has ended (nothing will change it any more).
    pub fn is_terminal(self) -> bool {
        !matches!(
            self.status,
            CommandStatus::Pending | CommandStatus::InProgress | CommandStatus::Cancelling
        )
    }
}

/// What the server does next, and what the command reports once it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Invocations to hand to their nodes now (set `dispatched`; they stay
    /// `Pending` until the agent acknowledges), in dispatch order.
    pub dispatch: Vec<usize>,
    /// State changes to record: never-started invocations `Terminated` after
    /// the error limit was exceeded, or the effect of a whole-command cancel.
    pub updates: Vec<Update>,
    /// The aggregate after the updates are applied.
    pub command: CommandState,
    /// The counters after the updates are applied.
    pub counters: Counters,
}

impl Plan {
    /// Nothing to do: the fixpoint a second call reaches.
    pub fn is_idle(&self) -> bool {
        self.dispatch.is_empty() && self.updates.is_empty()
    }

    /// Applies the plan to an in-memory copy of the invocations (what the
    /// server writes to its store). Indices out of range are ignored.
    pub fn apply_to(&self, slots: &mut [Slot]) {
        for &i in &self.dispatch {
            if let Some(s) = slots.get_mut(i) {
                s.dispatched = true;
            }
        }
        apply_updates(slots, &self.updates);
    }
}

/// Records state changes in an in-memory copy of the invocations. Indices
/// out of range are ignored.
pub fn apply_updates(slots: &mut [Slot], updates: &[Update]) {
    for u in updates {
        if let Some(s) = slots.get_mut(u.index) {
            s.state = u.state;
        }
    }
}

/// Decides the next step of a rollout from its current states.
///
/// Dispatch follows the documented ramp: one invocation, then — once every
/// dispatched one has left `Pending` — the next wave, doubling (1, 2, 4, …)
/// until a wave reaches MaxConcurrency; from then on one start per slot that
/// frees up. At no point are more than MaxConcurrency invocations occupying
/// a slot (see [`Slot::occupies_slot`]). Waves are positions among the
/// dispatched invocations, which works because dispatch always takes the
/// lowest startable index, so the dispatched set is in dispatch order.
///
/// When ErrorCount exceeds the MaxErrors limit nothing more starts and every
/// never-started invocation becomes `Terminated`; those in flight run on.
/// A whole-command cancel starts nothing and applies [`cancel`] to all.
pub fn plan(rollout: &Rollout<'_>) -> Plan {
    let slots = rollout.invocations;
    let n = slots.len();
    let concurrency = rollout.max_concurrency.for_targets(n);
    let error_limit = rollout.max_errors.limit_for(n);
    let errors = slots.iter().filter(|s| s.state.counts_as_error()).count();

    let mut dispatch = Vec::new();
    let updates = if rollout.cancelled {
        cancel(slots, |_| true)
    } else if errors > error_limit {
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.startable())
            .map(|(index, _)| Update {
                index,
                state: InvocationState::TERMINATED,
            })
            .collect()
    } else {
        let budget = dispatch_budget(slots, concurrency);
        dispatch.extend(
            slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.startable())
                .map(|(i, _)| i)
                .take(budget),
        );
        Vec::new()
    };

    let mut after = slots.to_vec();
    apply_updates(&mut after, &updates);
    for &i in &dispatch {
        if let Some(s) = after.get_mut(i) {
            s.dispatched = true;
        }
    }
    Plan {
        dispatch,
        updates,
        command: aggregate(&after, error_limit, rollout.cancelled),
        counters: counters(&after),
    }
}

/// Whether an agent's report can change what [`plan`] decides. A report
/// that ends an invocation can (a slot frees, a counter moves). One that
/// does not (acknowledged, or `Delayed`) can only by being the last
/// dispatched invocation to leave `Pending`, which is what starts the ramp's
/// next wave: while another still awaits its acknowledgement, slots,
/// counters and the command's state are what they were (the first wave is
/// a single invocation, so the command has left `Pending` by then). A
/// cancelled command has no dispatched `Pending` invocation left to
/// acknowledge. `awaiting_ack` is whether any dispatched invocation is
/// still `Pending` after the report.
pub fn report_moves_rollout(ends_invocation: bool, awaiting_ack: bool) -> bool {
    ends_invocation || !awaiting_ack
}

/// How many more invocations may start now under the ramp and the
/// concurrency limit.
fn dispatch_budget(slots: &[Slot], concurrency: usize) -> usize {
    let dispatched = slots.iter().filter(|s| s.dispatched).count();
    let awaiting_ack = slots.iter().any(|s| s.dispatched && s.state.is_pending());
    let occupied = slots.iter().filter(|s| s.occupies_slot()).count();
    let free = concurrency.saturating_sub(occupied);

    // Walk the waves 1, 2, 4, … (capped at the concurrency) to the one the
    // next dispatch belongs to.
    let mut wave_start = 0usize;
    let mut wave = 1usize;
    loop {
        let size = wave.min(concurrency);
        let wave_end = wave_start.saturating_add(size);
        if dispatched < wave_end {
            // A wave starts only once the previous one has been acknowledged;
            // a wave already begun (held back by `free`) may be completed.
            if dispatched == wave_start && awaiting_ack {
                return 0;
            }
            if size >= concurrency {
                // The ramp has reached MaxConcurrency: one start per free
                // slot from here on, with no wave boundary to stop at (a
                // stop there would make the next call start more).
                return free;
            }
            return (wave_end - dispatched).min(free);
        }
        if size >= concurrency {
            return free;
        }
        wave_start = wave_end;
        wave = wave.saturating_mul(2);
    }
}

/// The command-level counters of a set of invocations.
pub fn counters(slots: &[Slot]) -> Counters {
    let count = |f: fn(InvocationState) -> bool| slots.iter().filter(|s| f(s.state)).count();
    Counters {
        target_count: slots.len(),
        completed_count: count(InvocationState::is_completed),
        error_count: count(InvocationState::counts_as_error),
        delivery_timed_out_count: count(|s| s.details == StatusDetails::DeliveryTimedOut),
    }
}

/// The command's `Status`/`StatusDetails`, in the evaluation order of spec
/// §3.4 ("Command level"). `error_limit` is MaxErrors converted for the
/// number of targets.
pub fn aggregate(slots: &[Slot], error_limit: usize, cancelled: bool) -> CommandState {
    use CommandStatus as C;
    use StatusDetails as D;
    if slots.is_empty() {
        return CommandState::new(C::Failed, D::NoInstancesInTag);
    }
    if slots.iter().any(|s| !s.state.is_terminal()) {
        return if cancelled {
            CommandState::new(C::Cancelling, D::Cancelling)
        } else if slots.iter().all(|s| s.state.is_pending()) {
            CommandState::new(C::Pending, D::Pending)
        } else {
            CommandState::new(C::InProgress, D::InProgress)
        };
    }
    if cancelled {
        return CommandState::new(C::Cancelled, D::Cancelled);
    }
    let c = counters(slots);
    if c.error_count > error_limit {
        return match crossing_error(slots, error_limit) {
            Some(D::ExecutionTimedOut) => CommandState::new(C::TimedOut, D::ExecutionTimedOut),
            _ => CommandState::new(C::Failed, D::Failed),
        };
    }
    if c.delivery_timed_out_count > error_limit {
        return CommandState::new(C::TimedOut, D::DeliveryTimedOut);
    }
    let never_ran = |d: D| matches!(d, D::Undeliverable | D::InvalidPlatform | D::AccessDenied);
    if slots.iter().all(|s| never_ran(s.state.details)) {
        return CommandState::new(C::Failed, D::Failed);
    }
    if slots
        .iter()
        .all(|s| s.state.details == D::Success || never_ran(s.state.details))
    {
        return CommandState::new(C::Success, D::Success);
    }
    CommandState::new(C::Failed, D::Incomplete)
}

/// The details of the error that took ErrorCount past the limit: errors in
/// the order they ended (unknown times last, then by position).
fn crossing_error(slots: &[Slot], error_limit: usize) -> Option<StatusDetails> {
    let mut errors: Vec<(i64, usize, StatusDetails)> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.state.counts_as_error())
        .map(|(i, s)| (s.ended_at.unwrap_or(i64::MAX), i, s.state.details))
        .collect();
    errors.sort_unstable_by_key(|e| (e.0, e.1));
    errors.get(error_limit).map(|e| e.2)
}

/// The two instants a command's invocations are judged against (epoch
/// seconds), fixed when it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    /// `RequestedDateTime + TimeoutSeconds`: an invocation not acknowledged
    /// by then will not run ("if this time is reached and the command hasn't
    /// already started running, it won't run").
    pub delivery: i64,
    /// `ExpiresAfter`: every invocation still open ends then.
    pub expires_after: i64,
}

impl Deadlines {
    /// From SendCommand's `RequestedDateTime` and `TimeoutSeconds` and the
    /// document's execution timeout (`StepTimeoutSeconds`).
    pub fn new(requested: i64, timeout_seconds: i64, execution_timeout: i64) -> Self {
        Self {
            delivery: requested.saturating_add(timeout_seconds),
            expires_after: expires_after(requested, timeout_seconds, execution_timeout),
        }
    }
}

/// `ExpiresAfter = RequestedDateTime + TimeoutSeconds + executionTimeout`
/// (spec §3.5; 600 + 3600 gives the captured 4200 s).
pub fn expires_after(requested: i64, timeout_seconds: i64, execution_timeout: i64) -> i64 {
    requested
        .saturating_add(timeout_seconds)
        .saturating_add(execution_timeout)
}

/// The invocations that time out at `now`. From the delivery deadline on,
/// those never acknowledged (`Pending`, `Delayed`) become `DeliveryTimedOut`;
/// from `ExpiresAfter` on, so does every other open one, except that a
/// `Cancelling` one becomes `Cancelled` (the cancel was asked for; the agent
/// simply never confirmed it). Call it before [`plan`] so that nothing past
/// its delivery window is dispatched.
pub fn expire(slots: &[Slot], deadlines: Deadlines, now: i64) -> Vec<Update> {
    use StatusDetails as D;
    let delivery_over = now >= deadlines.delivery;
    let expired = now >= deadlines.expires_after;
    slots
        .iter()
        .enumerate()
        .filter_map(|(index, s)| {
            let state = match s.state.details {
                D::Pending | D::Delayed if delivery_over || expired => {
                    InvocationState::DELIVERY_TIMED_OUT
                }
                D::InProgress if expired => InvocationState::DELIVERY_TIMED_OUT,
                D::Cancelling if expired => InvocationState::CANCELLED,
                _ => return None,
            };
            Some(Update { index, state })
        })
        .collect()
}

/// CancelCommand for the invocations `selected` picks (all of them for a
/// whole-command cancel): those the agent has not acknowledged (`Pending`,
/// queued or not, and `Delayed`) are `Cancelled` at once — the server
/// withdraws queued work and ignores a late report for them; acknowledged
/// ones become `Cancelling` until the agent confirms (or ends on its own).
/// Terminal invocations are left alone, so cancelling twice changes nothing.
pub fn cancel(slots: &[Slot], selected: impl Fn(usize) -> bool) -> Vec<Update> {
    use StatusDetails as D;
    slots
        .iter()
        .enumerate()
        .filter(|(i, _)| selected(*i))
        .filter_map(|(index, s)| {
            let state = match s.state.details {
                D::Pending | D::Delayed => InvocationState::CANCELLED,
                D::InProgress => InvocationState::CANCELLING,
                _ => return None,
            };
            Some(Update { index, state })
        })
        .collect()
}

#[cfg(test)]
mod tests;
