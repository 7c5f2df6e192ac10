//! Any text given as node facts must be answered with an error or a
//! verdict, never a panic: facts come from agents on machines we do not
//! control. Whatever prepares is evaluated against the predefined baseline
//! of its OS (scan and install, with a list-heavy custom baseline too) and
//! rendered; the summary must agree with the patch list.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_core::baseline::{Baseline, PatchAction, predefined};
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, Operation, evaluate};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::report::{ReportContext, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let facts = match NodeFacts::from_json(text) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let inventory = match Inventory::prepare(&facts) {
        Ok(i) => i,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let Some(default) = predefined::default_for(facts.os.operating_system) else {
        return;
    };
    let mut listy = default.clone();
    listy.baseline_id = None;
    listy.name = Some("fuzz".into());
    listy.approved_patches = vec![
        "*a*".into(),
        "1*".into(),
        "lib?[a-m]*".into(),
        "CVE-2025-1".into(),
    ];
    listy.rejected_patches = vec!["*-[0-9]*".into(), "z*".into()];
    listy.rejected_patches_action = PatchAction::Block;
    for baseline in [default.clone(), listy] {
        check(&baseline, &inventory);
    }
});

fn check(baseline: &Baseline, inventory: &Inventory) {
    let compiled = CompiledBaseline::compile(baseline).expect("test baselines compile");
    for operation in [
        Operation::Scan,
        Operation::Install {
            override_list: None,
        },
    ] {
        let options = EvalOptions {
            operation,
            ..EvalOptions::scan_at(1_750_000_000)
        };
        let evaluation = evaluate(&compiled, inventory, &options);
        let report = render(&evaluation, inventory, &compiled, &ReportContext::default());
        let s = &report.instance_patch_state;
        let listed = s.installed_count
            + s.installed_other_count
            + s.installed_pending_reboot_count
            + s.installed_rejected_count
            + s.missing_count
            + s.failed_count;
        assert_eq!(listed as usize, report.patches.len());
        let _ = serde_json::to_string(&report).expect("reports serialize");
    }
}
