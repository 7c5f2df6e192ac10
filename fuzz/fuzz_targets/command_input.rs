//! Everything a SendCommand caller controls — MaxConcurrency/MaxErrors,
//! targets (CLI shorthand and JSON), document parameters (JSON), output
//! text — must be answered with a value or an error, never a panic; and what
//! is accepted must survive its own echo unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_core::command::document::PatchDocument;
use patchfleet_core::command::output;
use patchfleet_core::command::rollout::{Plan, Rollout, Slot, plan};
use patchfleet_core::command::status::{InvocationState, StatusDetails};
use patchfleet_core::command::targets::{Target, TargetSet, parse_shorthand};
use patchfleet_core::command::{MaxConcurrency, MaxErrors};
use std::collections::HashMap;

const NODE: &str = "mi-0123456789abcdef0";

fn rates(text: &str) {
    if let Ok(c) = text.parse::<MaxConcurrency>() {
        assert_eq!(c.to_string(), text);
        for n in [0, 1, 7, 50, usize::MAX] {
            let k = c.for_targets(n);
            assert!(k >= 1 && k <= n.max(1));
        }
    }
    if let Ok(e) = text.parse::<MaxErrors>() {
        assert_eq!(e.to_string(), text);
        for n in [0, 1, 7, 50, usize::MAX] {
            let _ = e.limit_for(n);
        }
    }
}

fn targets(text: &str) {
    let tags: HashMap<String, String> = [("Environment".to_owned(), "Test".to_owned())].into();
    let args: Vec<&str> = text.split_whitespace().collect();
    if let Ok(list) = parse_shorthand(&args)
        && let Ok(set) = TargetSet::from_targets(&list)
    {
        let _ = set.matches(NODE, &tags);
    }
    if let Ok(list) = serde_json::from_str::<Vec<Target>>(text) {
        match TargetSet::from_targets(&list) {
            Ok(set) => {
                let _ = set.matches(NODE, &tags);
            }
            Err(e) => {
                let _ = (e.to_string(), e.code());
            }
        }
    }
}

fn parameters(text: &str) {
    let Ok(params) = serde_json::from_str::<HashMap<String, Vec<String>>>(text) else {
        return;
    };
    for name in ["AWS-RunPatchBaseline", "AWS-RunPatchBaselineWithHooks"] {
        match PatchDocument::from_parameters(name, &params) {
            Ok(doc) => {
                let echo: HashMap<String, Vec<String>> = doc.parameters().into_iter().collect();
                assert_eq!(
                    PatchDocument::from_parameters(name, &echo).as_ref(),
                    Ok(&doc)
                );
                let json = serde_json::to_string(&doc).unwrap();
                assert_eq!(serde_json::from_str::<PatchDocument>(&json).unwrap(), doc);
            }
            Err(e) => {
                let _ = (e.to_string(), e.code());
            }
        }
    }
}

fn outputs(data: &[u8]) {
    let text = output::text(data);
    let (out, err) = text.split_at(
        text.char_indices()
            .nth(text.chars().count() / 2)
            .map_or(text.len(), |(i, _)| i),
    );
    let combined = output::combine(out, err, 2_500);
    assert!(combined.chars().count() <= 2_500);
    assert!(output::cap_stream(&text, 100).chars().count() <= 100);
}

/// Bytes as invocation states; the plan must be stable and respect the
/// concurrency limit it was given.
fn rollout(data: &[u8]) {
    let details = [
        StatusDetails::Pending,
        StatusDetails::InProgress,
        StatusDetails::Delayed,
        StatusDetails::Success,
        StatusDetails::Failed,
        StatusDetails::ExecutionTimedOut,
        StatusDetails::DeliveryTimedOut,
        StatusDetails::Cancelled,
        StatusDetails::Cancelling,
        StatusDetails::Undeliverable,
        StatusDetails::Terminated,
        StatusDetails::InvalidPlatform,
        StatusDetails::AccessDenied,
    ];
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let mut slots: Vec<Slot> = rest
        .iter()
        .take(64)
        .map(|b| Slot {
            state: InvocationState::from_details(details[usize::from(b & 0x0f) % details.len()])
                .unwrap(),
            dispatched: b & 0x10 != 0,
            ended_at: Some(i64::from(b >> 5)),
        })
        .collect();
    let r = |slots: &[Slot]| -> Plan {
        plan(&Rollout {
            invocations: slots,
            max_concurrency: MaxConcurrency::count(u32::from(head & 0x07) + 1).unwrap(),
            max_errors: MaxErrors::count(u32::from(head >> 3 & 0x03)).unwrap(),
            cancelled: head & 0x80 != 0,
        })
    };
    let p = r(&slots);
    assert_eq!(p, r(&slots));
    p.apply_to(&mut slots);
    assert!(r(&slots).is_idle());
    let after = slots.iter().filter(|s| s.occupies_slot()).count();
    assert!(p.dispatch.is_empty() || after <= usize::from(head & 0x07) + 1);
}

fuzz_target!(|data: &[u8]| {
    outputs(data);
    rollout(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    rates(text);
    targets(text);
    parameters(text);
});
