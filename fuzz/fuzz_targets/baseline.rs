//! Any text given as a baseline document must be answered with a baseline
//! or an error, never a panic; and whatever loads must survive its own
//! JSON and YAML output unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_core::baseline::{Baseline, parse_baseline_override, parse_install_override_list};

fn check(parsed: Result<Baseline, patchfleet_core::baseline::BaselineError>) {
    let b = match parsed {
        Ok(b) => b,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if let Err(errors) = b.validate() {
        assert!(!errors.is_empty());
        let _ = errors.to_string();
    }
    let _ = b.validate_override();
    for w in b.warnings() {
        let _ = w.to_string();
    }

    let json = b.to_json_pretty();
    match Baseline::from_json(&json) {
        Ok(again) => assert_eq!(again, b, "JSON round trip changed the baseline:\n{json}"),
        Err(e) => panic!("our own JSON does not load: {e}\n{json}"),
    }
    let yaml = b.to_yaml();
    match Baseline::from_yaml(&yaml) {
        Ok(again) => assert_eq!(again, b, "YAML round trip changed the baseline:\n{yaml}"),
        Err(e) => panic!("our own YAML does not load: {e}\n{yaml}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(Baseline::from_json(text));
    check(Baseline::from_yaml(text));
    if let Ok(entries) = parse_baseline_override(text) {
        for b in &entries {
            let _ = b.validate_override();
        }
    }
    if let Err(e) = parse_install_override_list(text) {
        let _ = e.to_string();
    }
});
