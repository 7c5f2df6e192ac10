//! Data-driven evaluation tests: every file in `tests/cases/` is one case —
//! a baseline, node facts, an instant and the expected report, written as
//! YAML for readability. The expected report is compared as a subset: every
//! field a case names must match; fields it does not name are not checked.
//!
//! The cases are the worked examples of spec §10, one case per row of the
//! state tables of §3.5, and the §8 pitfalls the engine addresses.

use patchfleet_core::baseline::{Baseline, parse_install_override_list, predefined};
use patchfleet_core::eval::{
    CompiledBaseline, CompiledOverride, EvalOptions, InstallOutcome, Operation, PendingRebootScope,
    PlannedInstall, evaluate,
};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::report::{ReportContext, render};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    predefined: Option<String>,
    #[serde(default)]
    baseline: Option<Value>,
    facts: Value,
    at: jiff::Timestamp,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    install_override_list: Option<String>,
    /// After an install: `baseline`, or the override targets as titles.
    #[serde(default)]
    outcome: Option<Value>,
    #[serde(default)]
    pending_reboot_scope: Option<PendingRebootScope>,
    expect: Value,
    /// Further runs of the same case at other instants or with edits.
    #[serde(default)]
    variants: Vec<Variant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Variant {
    name: String,
    #[serde(default)]
    at: Option<jiff::Timestamp>,
    /// JSON merge patch applied to the baseline.
    #[serde(default)]
    baseline_patch: Option<Value>,
    /// JSON merge patch applied to the facts.
    #[serde(default)]
    facts_patch: Option<Value>,
    expect: Value,
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Every field of `want` must equal the one in `got`; `patches` is keyed by
/// KBId in cases, a list in reports.
fn check_subset(path: &str, got: &Value, want: &Value, errors: &mut Vec<String>) {
    match want {
        Value::Object(w) => {
            for (k, wv) in w {
                let p = format!("{path}.{k}");
                match got.get(k) {
                    Some(gv) => check_subset(&p, gv, wv, errors),
                    None if wv.is_null() => {}
                    None => errors.push(format!("{p}: missing, expected {wv}")),
                }
            }
        }
        _ if got != want => errors.push(format!("{path}: got {got}, expected {want}")),
        _ => {}
    }
}

fn run(
    case: &Case,
    baseline_json: &Value,
    facts_json: &Value,
    at: jiff::Timestamp,
    expect: &Value,
) -> Vec<String> {
    let baseline = match &case.predefined {
        Some(name) => predefined::by_id_or_name(name)
            .unwrap_or_else(|| panic!("no predefined baseline {name}"))
            .clone(),
        None => Baseline::from_json(&baseline_json.to_string()).expect("case baseline parses"),
    };
    let compiled = CompiledBaseline::compile(&baseline).expect("case baseline compiles");
    let facts: NodeFacts = serde_json::from_value(facts_json.clone()).expect("case facts parse");
    let inventory = Inventory::prepare(&facts).expect("case facts prepare");
    let override_list = case.install_override_list.as_deref().map(|yaml| {
        CompiledOverride::new(&parse_install_override_list(yaml).expect("override list parses"))
    });
    let operation = match case.operation.as_deref() {
        None | Some("Scan") => Operation::Scan,
        Some("Install") => Operation::Install {
            override_list: override_list.as_ref(),
        },
        Some(other) => panic!("unknown operation {other}"),
    };
    let outcome = match &case.outcome {
        None => InstallOutcome::None,
        Some(Value::String(s)) if s == "baseline" => InstallOutcome::Baseline,
        Some(Value::Array(targets)) => InstallOutcome::Override(
            targets
                .iter()
                .map(|t| {
                    let (name, arch, version) = (
                        t["name"].as_str().unwrap(),
                        t["arch"].as_str().unwrap(),
                        t["version"].as_str().unwrap(),
                    );
                    PlannedInstall {
                        name: name.into(),
                        arch: arch.into(),
                        version: version.into(),
                        title: String::new(),
                        advisory: None,
                    }
                })
                .collect(),
        ),
        Some(other) => panic!("unknown outcome {other}"),
    };
    let options = EvalOptions {
        at: at.as_second(),
        operation,
        outcome,
        pending_reboot_scope: case.pending_reboot_scope.unwrap_or_default(),
    };
    let evaluation = evaluate(&compiled, &inventory, &options);
    let context = ReportContext {
        include_not_applicable: true,
        ..ReportContext::default()
    };
    let report = render(&evaluation, &inventory, &compiled, &context);
    let mut got = serde_json::to_value(&report).unwrap();
    // Key patches by KBId so that cases can name them.
    for list in ["Patches", "NotApplicable"] {
        let keyed: serde_json::Map<String, Value> = got
            .get(list)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|p| (p["KBId"].as_str().unwrap().to_string(), p.clone()))
                    .collect()
            })
            .unwrap_or_default();
        got[list] = Value::Object(keyed);
    }
    if let Some(plan) = got.get_mut("InstallPlan") {
        let titles: Vec<Value> = plan["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["title"].clone())
            .collect();
        plan["titles"] = Value::Array(titles);
    }
    let mut errors = Vec::new();
    let mut expect = expect.clone();
    let partial = expect
        .as_object_mut()
        .and_then(|m| m.remove("PatchesPartial"))
        .is_some();
    check_subset("", &got, &expect, &mut errors);
    // A case that lists patches lists all of them, unless it says otherwise.
    if let Some(Value::Object(want)) = expect.get("Patches")
        && !partial
    {
        for k in got["Patches"].as_object().unwrap().keys() {
            if !want.contains_key(k) {
                errors.push(format!(
                    ".Patches.{k}: reported but not expected: {}",
                    got["Patches"][k]
                ));
            }
        }
    }
    if !errors.is_empty() {
        errors.push(format!(
            "full report: {}",
            serde_json::to_string_pretty(&got).unwrap()
        ));
    }
    errors
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn evaluation_cases() {
    let files = case_files();
    assert!(
        files.len() >= 25,
        "expected the full case set, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut runs = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let case: Case =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let baseline = case.baseline.clone().unwrap_or(Value::Null);
        let errors = run(&case, &baseline, &case.facts, case.at, &case.expect);
        runs += 1;
        if !errors.is_empty() {
            failures.push(format!(
                "{} — {}:\n  {}",
                file.display(),
                case.name,
                errors.join("\n  ")
            ));
        }
        for variant in &case.variants {
            let mut b = baseline.clone();
            if let Some(p) = &variant.baseline_patch {
                merge(&mut b, p);
            }
            let mut f = case.facts.clone();
            if let Some(p) = &variant.facts_patch {
                merge(&mut f, p);
            }
            let errors = run(
                &case,
                &b,
                &f,
                variant.at.unwrap_or(case.at),
                &variant.expect,
            );
            runs += 1;
            if !errors.is_empty() {
                failures.push(format!(
                    "{} — {} / {}:\n  {}",
                    file.display(),
                    case.name,
                    variant.name,
                    errors.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{runs} evaluation runs from {} case files passed",
        files.len()
    );
}
