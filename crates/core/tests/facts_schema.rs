//! `docs/facts.schema.json` and the facts model must describe the same
//! format: every member a fully populated `NodeFacts` writes is declared in
//! the schema, and every member the schema declares is written.

use patchfleet_core::facts::{
    AptOrigin, AvailablePackage, FACTS_FORMAT, InstalledPackage, NodeFacts, NoticePackage, OsFacts,
    RebootEvidence, RebootSource, RebootState, UpdateNotice,
};
use patchfleet_core::os::{OperatingSystem, PackageManager};
use serde_json::Value;

fn full_facts() -> NodeFacts {
    let t = || Some(jiff::Timestamp::from_second(1_700_000_000).unwrap());
    let s = |v: &str| Some(v.to_string());
    NodeFacts {
        format: FACTS_FORMAT.into(),
        os: OsFacts {
            operating_system: OperatingSystem::Debian,
            product: "Debian12".into(),
            package_manager: Some(PackageManager::Apt),
        },
        installed: vec![InstalledPackage {
            name: "a".into(),
            arch: "amd64".into(),
            version: "1.0-1".into(),
            installed_time: t(),
            source: s("a-src"),
        }],
        available: vec![AvailablePackage {
            name: "a".into(),
            arch: "amd64".into(),
            version: "1.0-2".into(),
            repository: s("main"),
            origins: vec![AptOrigin {
                origin: s("Debian"),
                label: s("Debian-Security"),
                archive: s("oldstable-security"),
                codename: s("bookworm-security"),
                component: s("main"),
                site: s("deb.debian.org"),
                trusted: true,
            }],
            priority: s("optional"),
            section: s("libs"),
            build_time: t(),
            first_seen: t(),
        }],
        notices: vec![UpdateNotice {
            id: "N-1".into(),
            kind: "security".into(),
            severity: s("Important"),
            title: s("t"),
            issued: s("2025-01-01"),
            updated: s("2025-01-02"),
            cves: vec!["CVE-1".into()],
            bugzilla: vec!["1".into()],
            reboot_suggested: true,
            repository: s("main"),
            packages: vec![NoticePackage {
                name: "a".into(),
                arch: "amd64".into(),
                version: "1.0-2".into(),
            }],
        }],
        boot_time: t(),
        reboot_state: Some(RebootState {
            last_no_reboot_install_operation_time: t(),
            pending_reboot: vec!["a.amd64:1.0-1".into()],
        }),
        running_kernel: Some("6.1.0-26-amd64".into()),
        reboot_required: vec![RebootEvidence {
            source: RebootSource::RebootRequiredFile,
            packages: vec!["linux-image-6.1.0-27-amd64".into()],
            detail: "/var/run/reboot-required".into(),
        }],
    }
}

fn walk(path: &str, value: &Value, schema: &Value, errors: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            let Some(props) = props else {
                errors.push(format!("{path}: schema declares no properties"));
                return;
            };
            for (k, v) in map {
                match props.get(k) {
                    Some(sub) => walk(&format!("{path}.{k}"), v, sub, errors),
                    None => errors.push(format!(
                        "{path}.{k}: written by the model, missing from the schema"
                    )),
                }
            }
            for k in props.keys() {
                if !map.contains_key(k) {
                    errors.push(format!(
                        "{path}.{k}: declared by the schema, never written by the model"
                    ));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(&format!("{path}[]"), item, &schema["items"], errors);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_and_model_agree() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/facts.schema.json"
    ))
    .expect("docs/facts.schema.json exists");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let facts = serde_json::to_value(full_facts()).unwrap();
    let mut errors = Vec::new();
    walk("", &facts, &schema, &mut errors);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(schema["properties"]["format"]["const"], FACTS_FORMAT);
}

#[test]
fn facts_errors_say_what_and_where() {
    let err = NodeFacts::from_json(r#"{"format": "patchfleet.facts/1", "os": {"operating_system": "DEBIAN", "product": "Debian12"}, "instaled": []}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("instaled") && err.contains("line 1"), "{err}");
    let err = NodeFacts::from_json(r#"{"format": "patchfleet.facts/9", "os": {"operating_system": "DEBIAN", "product": "Debian12"}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("patchfleet.facts/9"), "{err}");
    let err = NodeFacts::from_json(
        r#"{"format": "patchfleet.facts/1", "os": {"operating_system": "DEBAIN", "product": "x"}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("DEBAIN"), "{err}");
}

#[test]
fn bad_versions_in_facts_name_the_entry() {
    let mut facts = full_facts();
    facts.available[0].version = "1.0-2 beta".into();
    let err = patchfleet_core::inventory::Inventory::prepare(&facts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("available[0]") && err.contains("a.amd64") && err.contains("1.0-2 beta"),
        "{err}"
    );
}
