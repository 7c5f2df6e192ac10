//! Rollout tests: a fake agent drives `plan` the way the server will.

use super::*;
use crate::command::status::StatusDetails as D;
use proptest::prelude::*;

fn limits(c: &str, e: &str) -> (MaxConcurrency, MaxErrors) {
    (c.parse().unwrap(), e.parse().unwrap())
}

fn rollout<'a>(slots: &'a [Slot], c: &str, e: &str, cancelled: bool) -> Rollout<'a> {
    let (max_concurrency, max_errors) = limits(c, e);
    Rollout {
        invocations: slots,
        max_concurrency,
        max_errors,
        cancelled,
    }
}

fn slot(details: D) -> Slot {
    Slot {
        state: InvocationState::from_details(details).unwrap(),
        dispatched: details != D::Pending,
        ended_at: None,
    }
}

/// One server step: plan, check it is stable, apply it.
fn step(slots: &mut [Slot], c: &str, e: &str, cancelled: bool) -> Plan {
    let p = plan(&rollout(slots, c, e, cancelled));
    assert_eq!(
        p,
        plan(&rollout(slots, c, e, cancelled)),
        "plan is deterministic"
    );
    for &i in &p.dispatch {
        assert!(!slots[i].dispatched, "index {i} dispatched twice");
    }
    p.apply_to(slots);
    let again = plan(&rollout(slots, c, e, cancelled));
    assert!(
        again.is_idle(),
        "second call after applying asks for more: {again:?}"
    );
    assert_eq!(again.command, p.command);
    p
}

fn occupied(slots: &[Slot]) -> usize {
    slots.iter().filter(|s| s.occupies_slot()).count()
}

/// The fake agent acknowledges everything handed to it.
fn ack_all(slots: &mut [Slot]) {
    for s in slots.iter_mut() {
        if s.dispatched && matches!(s.state.details, D::Pending | D::Delayed) {
            s.state = InvocationState::IN_PROGRESS;
        }
    }
}

/// The fake agent finishes everything it is running with `outcome`.
fn finish_all(slots: &mut [Slot], outcome: InvocationState) {
    for s in slots.iter_mut() {
        match s.state.details {
            D::InProgress => s.state = outcome,
            D::Cancelling => s.state = InvocationState::CANCELLED,
            _ => {}
        }
    }
}

/// (targets, MaxConcurrency, agent finishes each round, dispatch batch sizes)
#[test]
fn ramp_batches() {
    let table: &[(usize, &str, bool, &[usize])] = &[
        (20, "50", true, &[1, 2, 4, 8, 5]),
        (20, "50", false, &[1, 2, 4, 8, 5]),
        (20, "5", false, &[1, 2, 2]),
        (20, "4", false, &[1, 2, 1]),
        (10, "3", true, &[1, 2, 3, 3, 1]),
        (5, "2", true, &[1, 2, 2]),
        (3, "1", true, &[1, 1, 1]),
        (1, "100%", true, &[1]),
        (9, "50%", true, &[1, 2, 4, 2]),
        (0, "50", true, &[]),
    ];
    for &(n, c, finish, want) in table {
        let mut slots = vec![Slot::NEW; n];
        let mut batches = Vec::new();
        for _ in 0..(2 * n + 2) {
            let p = step(&mut slots, c, "0", false);
            if !p.dispatch.is_empty() {
                batches.push(p.dispatch.len());
            }
            // Dispatch order is index order.
            assert!(p.dispatch.windows(2).all(|w| w[0] < w[1]));
            let limit = c.parse::<MaxConcurrency>().unwrap().for_targets(n);
            assert!(occupied(&slots) <= limit, "{n} targets, {c}");
            ack_all(&mut slots);
            if finish {
                finish_all(&mut slots, InvocationState::SUCCESS);
            }
        }
        assert_eq!(
            batches, want,
            "{n} targets, MaxConcurrency {c}, finish {finish}"
        );
    }
}

/// The ramp waits for the whole previous wave to leave `Pending`.
#[test]
fn ramp_waits_for_acknowledgement() {
    let mut slots = vec![Slot::NEW; 10];
    assert_eq!(step(&mut slots, "50", "0", false).dispatch, [0]);
    assert_eq!(
        step(&mut slots, "50", "0", false).dispatch,
        Vec::<usize>::new()
    );
    slots[0].state = InvocationState::IN_PROGRESS;
    assert_eq!(step(&mut slots, "50", "0", false).dispatch, [1, 2]);
    slots[1].state = InvocationState::IN_PROGRESS;
    assert!(step(&mut slots, "50", "0", false).dispatch.is_empty());
    // A terminal reply also counts as having left Pending.
    slots[2].state = InvocationState::UNDELIVERABLE;
    assert_eq!(step(&mut slots, "50", "0", false).dispatch, [3, 4, 5, 6]);
}

/// MaxConcurrency 2 over 5 targets, the agent answering in every order the
/// index arithmetic below produces: never more than 2 in flight.
#[test]
fn concurrency_two_over_five() {
    for seed in 0..50usize {
        let mut slots = vec![Slot::NEW; 5];
        let mut max_seen = 0;
        for round in 0..40 {
            step(&mut slots, "2", "0", false);
            max_seen = max_seen.max(occupied(&slots));
            assert!(occupied(&slots) <= 2);
            // Move one invocation forward, chosen by seed and round.
            let k = (seed * 7 + round * 3) % 5;
            let s = &mut slots[k];
            s.state = match (s.dispatched, s.state.details) {
                (true, D::Pending) => InvocationState::IN_PROGRESS,
                (_, D::InProgress) => InvocationState::SUCCESS,
                _ => s.state,
            };
        }
        for _ in 0..10 {
            ack_all(&mut slots);
            finish_all(&mut slots, InvocationState::SUCCESS);
            step(&mut slots, "2", "0", false);
            assert!(occupied(&slots) <= 2);
        }
        assert_eq!(max_seen, 2, "seed {seed}");
        assert!(slots.iter().all(|s| s.state == InvocationState::SUCCESS));
        let p = plan(&rollout(&slots, "2", "0", false));
        assert_eq!(
            p.command,
            CommandState::new(CommandStatus::Success, D::Success)
        );
    }
}

/// Every invocation fails, one at a time: (targets, MaxErrors, errors before
/// the stop, final state).
#[test]
fn error_limit_anchors() {
    let table = [
        (
            50,
            "10%",
            6,
            CommandState::new(CommandStatus::Failed, D::Failed),
        ),
        (
            50,
            "0",
            1,
            CommandState::new(CommandStatus::Failed, D::Failed),
        ),
        (
            10,
            "3",
            4,
            CommandState::new(CommandStatus::Failed, D::Failed),
        ),
        (
            9,
            "10%",
            1,
            CommandState::new(CommandStatus::Failed, D::Failed),
        ),
        (
            4,
            "100%",
            4,
            CommandState::new(CommandStatus::Failed, D::Incomplete),
        ),
    ];
    for (n, e, stop_at, want) in table {
        let mut slots = vec![Slot::NEW; n];
        let mut started = 0;
        for t in 0..(3 * n as i64) {
            let p = step(&mut slots, "1", e, false);
            started += p.dispatch.len();
            ack_all(&mut slots);
            for s in slots.iter_mut() {
                if s.state.details == D::InProgress {
                    s.state = InvocationState::FAILED;
                    s.ended_at = Some(t);
                }
            }
        }
        assert_eq!(started, stop_at.min(n), "{n} targets, MaxErrors {e}");
        let p = plan(&rollout(&slots, "1", e, false));
        assert_eq!(p.command, want, "{n} targets, MaxErrors {e}");
        assert_eq!(p.counters.error_count, stop_at.min(n));
        assert_eq!(p.counters.completed_count, n);
        let terminated = slots
            .iter()
            .filter(|s| s.state == InvocationState::TERMINATED);
        assert_eq!(terminated.count(), n - stop_at.min(n));
    }
}

/// In-flight invocations run on after the limit is exceeded; only
/// never-started ones are terminated.
#[test]
fn exceeded_limit_spares_in_flight() {
    let mut slots = vec![Slot::NEW; 6];
    slots[0] = slot(D::Failed);
    slots[1] = slot(D::InProgress);
    slots[2] = Slot {
        dispatched: true,
        ..Slot::NEW
    };
    let p = step(&mut slots, "3", "0", false);
    assert!(p.dispatch.is_empty());
    let terminated: Vec<usize> = p.updates.iter().map(|u| u.index).collect();
    assert_eq!(terminated, [3, 4, 5]);
    assert!(
        p.updates
            .iter()
            .all(|u| u.state == InvocationState::TERMINATED)
    );
    assert_eq!(p.command.status, CommandStatus::InProgress);
}

/// (invocation details, MaxErrors limit, cancelled, expected aggregate)
#[test]
fn aggregate_table() {
    use CommandStatus as C;
    let table: &[(&[D], usize, bool, C, D)] = &[
        (&[], 0, false, C::Failed, D::NoInstancesInTag),
        (&[], 0, true, C::Failed, D::NoInstancesInTag),
        (&[D::Pending, D::Pending], 0, false, C::Pending, D::Pending),
        (
            &[D::InProgress, D::Pending],
            0,
            false,
            C::InProgress,
            D::InProgress,
        ),
        (&[D::Delayed], 0, false, C::InProgress, D::InProgress),
        (
            &[D::Success, D::Pending],
            0,
            false,
            C::InProgress,
            D::InProgress,
        ),
        (
            &[D::Cancelling, D::Success],
            0,
            true,
            C::Cancelling,
            D::Cancelling,
        ),
        (
            &[D::Cancelled, D::Success],
            0,
            true,
            C::Cancelled,
            D::Cancelled,
        ),
        (
            &[D::Cancelled, D::Success],
            0,
            false,
            C::Failed,
            D::Incomplete,
        ),
        (&[D::Success, D::Success], 0, false, C::Success, D::Success),
        (
            &[
                D::Undeliverable,
                D::Undeliverable,
                D::Undeliverable,
                D::Undeliverable,
                D::Success,
            ],
            0,
            false,
            C::Success,
            D::Success,
        ),
        (
            &[D::InvalidPlatform, D::AccessDenied, D::Success],
            0,
            false,
            C::Success,
            D::Success,
        ),
        (
            &[D::Undeliverable, D::InvalidPlatform, D::AccessDenied],
            0,
            false,
            C::Failed,
            D::Failed,
        ),
        (&[D::Success, D::Failed], 1, false, C::Failed, D::Incomplete),
        (&[D::Success, D::Failed], 0, false, C::Failed, D::Failed),
        (
            &[D::Success, D::ExecutionTimedOut],
            0,
            false,
            C::TimedOut,
            D::ExecutionTimedOut,
        ),
        (
            &[D::Success, D::DeliveryTimedOut],
            0,
            false,
            C::TimedOut,
            D::DeliveryTimedOut,
        ),
        (
            &[D::Success, D::DeliveryTimedOut],
            1,
            false,
            C::Failed,
            D::Incomplete,
        ),
        (
            &[D::Failed, D::Terminated, D::Terminated],
            0,
            false,
            C::Failed,
            D::Failed,
        ),
        (
            &[D::DeliveryTimedOut, D::Undeliverable],
            0,
            false,
            C::TimedOut,
            D::DeliveryTimedOut,
        ),
    ];
    for &(details, limit, cancelled, status, want) in table {
        let slots: Vec<Slot> = details.iter().map(|d| slot(*d)).collect();
        let got = aggregate(&slots, limit, cancelled);
        assert_eq!(
            got,
            CommandState::new(status, want),
            "{details:?} limit {limit}"
        );
        assert_eq!(
            got.is_terminal(),
            slots.iter().all(|s| s.state.is_terminal())
        );
    }
}

/// The error that crossed the limit decides Failed vs ExecutionTimedOut.
#[test]
fn crossing_error_by_end_time() {
    let at = |d: D, t: Option<i64>| Slot {
        ended_at: t,
        ..slot(d)
    };
    let table = [
        (Some(5), Some(9), 0, D::ExecutionTimedOut),
        (Some(9), Some(5), 0, D::Failed),
        (Some(9), Some(5), 1, D::ExecutionTimedOut),
        (None, Some(5), 0, D::Failed),
        (None, None, 0, D::ExecutionTimedOut), // by position
    ];
    for (timed_out_at, failed_at, limit, want) in table {
        let slots = [
            at(D::ExecutionTimedOut, timed_out_at),
            at(D::Failed, failed_at),
            at(D::Failed, None),
        ];
        assert_eq!(aggregate(&slots, limit, false).details, want);
    }
}

#[test]
fn counters_follow_the_model() {
    let slots: Vec<Slot> = [
        D::Success,
        D::Failed,
        D::ExecutionTimedOut,
        D::DeliveryTimedOut,
        D::Cancelled,
        D::Terminated,
        D::Undeliverable,
        D::InvalidPlatform,
        D::AccessDenied,
        D::InProgress,
        D::Pending,
    ]
    .into_iter()
    .map(slot)
    .collect();
    let c = counters(&slots);
    assert_eq!(
        c,
        Counters {
            target_count: 11,
            completed_count: 7,
            error_count: 2,
            delivery_timed_out_count: 1,
        }
    );
    assert_eq!(
        serde_json::to_string(&c).unwrap(),
        r#"{"TargetCount":11,"CompletedCount":7,"ErrorCount":2,"DeliveryTimedOutCount":1}"#
    );
}

#[test]
fn whole_command_cancel() {
    let mut slots = vec![Slot::NEW; 8];
    step(&mut slots, "50", "0", false);
    ack_all(&mut slots);
    step(&mut slots, "50", "0", false); // 0 in progress, 1 and 2 queued
    slots[1].state = InvocationState::IN_PROGRESS;
    let p = step(&mut slots, "50", "0", true);
    assert!(p.dispatch.is_empty());
    let got: Vec<(usize, D)> = p
        .updates
        .iter()
        .map(|u| (u.index, u.state.details))
        .collect();
    let mut want = vec![(0, D::Cancelling), (1, D::Cancelling), (2, D::Cancelled)];
    want.extend((3..8).map(|i| (i, D::Cancelled)));
    assert_eq!(got, want);
    assert_eq!(
        p.command,
        CommandState::new(CommandStatus::Cancelling, D::Cancelling)
    );
    // The agent confirms one cancel; the other finished first.
    slots[0].state = InvocationState::CANCELLED;
    slots[1].state = InvocationState::SUCCESS;
    let p = step(&mut slots, "50", "0", true);
    assert_eq!(
        p.command,
        CommandState::new(CommandStatus::Cancelled, D::Cancelled)
    );
}

/// (state, cancel result)
#[test]
fn cancel_table() {
    let table = [
        (D::Pending, Some(D::Cancelled)),
        (D::Delayed, Some(D::Cancelled)),
        (D::InProgress, Some(D::Cancelling)),
        (D::Cancelling, None),
        (D::Success, None),
        (D::Failed, None),
        (D::Terminated, None),
    ];
    for (from, to) in table {
        let slots = [slot(from), Slot::NEW];
        let got = cancel(&slots, |i| i == 0);
        assert_eq!(got.first().map(|u| u.state.details), to, "{from}");
        assert!(got.iter().all(|u| u.index == 0));
    }
}

#[test]
fn expiry() {
    assert_eq!(expires_after(1_000, 600, 3_600), 5_200);
    assert_eq!(expires_after(i64::MAX - 5, 600, 3_600), i64::MAX);
    let d = Deadlines::new(0, 600, 3_600);
    assert_eq!(
        d,
        Deadlines {
            delivery: 600,
            expires_after: 4_200
        }
    );
    // (state, at 599, at 600, at 4200)
    let table = [
        (
            D::Pending,
            None,
            Some(D::DeliveryTimedOut),
            Some(D::DeliveryTimedOut),
        ),
        (
            D::Delayed,
            None,
            Some(D::DeliveryTimedOut),
            Some(D::DeliveryTimedOut),
        ),
        (D::InProgress, None, None, Some(D::DeliveryTimedOut)),
        (D::Cancelling, None, None, Some(D::Cancelled)),
        (D::Success, None, None, None),
        (D::Failed, None, None, None),
    ];
    for (from, t599, t600, t4200) in table {
        let slots = [slot(from)];
        for (now, want) in [(599, t599), (600, t600), (4_200, t4200)] {
            let got = expire(&slots, d, now);
            assert_eq!(
                got.first().map(|u| u.state.details),
                want,
                "{from} at {now}"
            );
        }
    }
}

#[derive(Clone, Debug)]
enum Event {
    Ack(usize),
    Delay(usize),
    Finish(usize, InvocationState),
    Undeliverable(usize),
}

fn event() -> impl Strategy<Value = Event> {
    let outcome = prop_oneof![
        Just(InvocationState::SUCCESS),
        Just(InvocationState::FAILED),
        Just(InvocationState::EXECUTION_TIMED_OUT),
        Just(InvocationState::INVALID_PLATFORM),
    ];
    prop_oneof![
        6 => any::<usize>().prop_map(Event::Ack),
        1 => any::<usize>().prop_map(Event::Delay),
        6 => (any::<usize>(), outcome).prop_map(|(i, o)| Event::Finish(i, o)),
        1 => any::<usize>().prop_map(Event::Undeliverable),
    ]
}

/// What the fake agent (or the server, for Undeliverable) does.
fn agent(slots: &mut [Slot], ev: &Event) {
    let n = slots.len();
    if n == 0 {
        return;
    }
    match *ev {
        Event::Ack(i) => {
            let s = &mut slots[i % n];
            if s.dispatched && matches!(s.state.details, D::Pending | D::Delayed) {
                s.state = InvocationState::IN_PROGRESS;
            }
        }
        Event::Delay(i) => {
            let s = &mut slots[i % n];
            if s.dispatched && s.state.details == D::Pending {
                s.state = InvocationState::DELAYED;
            }
        }
        Event::Finish(i, outcome) => {
            let s = &mut slots[i % n];
            match s.state.details {
                D::InProgress => s.state = outcome,
                D::Cancelling => s.state = InvocationState::CANCELLED,
                _ => {}
            }
        }
        Event::Undeliverable(i) => {
            let s = &mut slots[i % n];
            if s.dispatched && matches!(s.state.details, D::Pending | D::Delayed) {
                s.state = InvocationState::UNDELIVERABLE;
            }
        }
    }
}

fn concurrency() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..8).prop_map(|k| k.to_string()),
        (1u8..=100).prop_map(|p| format!("{p}%")),
    ]
}

fn max_errors() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..6).prop_map(|k| k.to_string()),
        (0u8..=100).prop_map(|p| format!("{p}%")),
    ]
}

proptest! {
    // Failures are reported with their minimal input; no file is written
    // into the source tree.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        cases: 512,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_agents_respect_the_limits(
        n in 0usize..30,
        c in concurrency(),
        e in max_errors(),
        events in proptest::collection::vec(event(), 0..300),
        cancel_at in proptest::option::weighted(0.3, 0..300usize),
    ) {
        let (mc, me) = limits(&c, &e);
        let cap = mc.for_targets(n);
        let error_limit = me.limit_for(n);
        let mut slots = vec![Slot::NEW; n];
        let mut cancelled = false;
        let mut exceeded = false;
        let check = |slots: &mut Vec<Slot>, cancelled: bool, exceeded: &mut bool| {
            let errors = slots.iter().filter(|s| s.state.counts_as_error()).count();
            *exceeded |= errors > error_limit;
            let p = plan(&rollout(slots, &c, &e, cancelled));
            for &i in &p.dispatch {
                prop_assert!(!slots[i].dispatched, "dispatched twice");
            }
            prop_assert!(!*exceeded || p.dispatch.is_empty(), "started after the error limit");
            prop_assert!(!cancelled || p.dispatch.is_empty(), "started after a cancel");
            p.apply_to(slots);
            prop_assert!(plan(&rollout(slots, &c, &e, cancelled)).is_idle(), "not idempotent");
            prop_assert!(occupied(slots) <= cap, "in flight {} > {cap}", occupied(slots));
            Ok(p)
        };
        for (k, ev) in events.iter().enumerate() {
            let before = slots.clone();
            let was = plan(&rollout(&slots, &c, &e, cancelled)).command;
            agent(&mut slots, ev);
            // A report the server does not wake the rollout for must leave
            // nothing for it to do.
            let changed = before != slots;
            let ends = before.iter().zip(&slots).any(|(b, a)| b.state != a.state && a.state.is_terminal());
            let awaiting = slots.iter().any(|s| s.dispatched && s.state.is_pending());
            if changed && !report_moves_rollout(ends, awaiting) {
                let p = plan(&rollout(&slots, &c, &e, cancelled));
                prop_assert!(p.is_idle(), "a quiet report moved the rollout: {p:?}");
                prop_assert_eq!(p.command, was);
            }
            // A cancel arriving with the report is the cancel's step.
            cancelled |= cancel_at == Some(k);
            check(&mut slots, cancelled, &mut exceeded)?;
        }
        // The agent now finishes everything it is given.
        let mut last = None;
        for _ in 0..(4 * n + 4) {
            ack_all(&mut slots);
            finish_all(&mut slots, InvocationState::SUCCESS);
            last = Some(check(&mut slots, cancelled, &mut exceeded)?);
        }
        prop_assert!(slots.iter().all(|s| s.state.is_terminal()), "open: {slots:?}");
        let last = last.unwrap();
        prop_assert!(last.command.is_terminal());
        prop_assert_eq!(last.counters.target_count, n);
        if cancelled && n > 0 {
            prop_assert_eq!(last.command.details, D::Cancelled);
        }
    }
}
