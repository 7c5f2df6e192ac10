//! The per-operation documents: `BaselineOverride` (spec §3.8) and
//! `InstallOverrideList` (spec §2.4, §3.7).

use patchfleet_core::baseline::{
    BaselineErrorKind, DocumentKind, InstallOverrideError, OverrideEntry, OverrideError,
    parse_baseline_override, parse_install_override_list, select_override,
};
use patchfleet_core::os::OperatingSystem;

const OVERRIDE: &str = include_str!("fixtures/baselines/baseline-override.json");
const INSTALL_OVERRIDE: &str = include_str!("fixtures/baselines/install-override.yaml");

#[test]
fn override_document_parses_and_selects_by_os() {
    let entries = parse_baseline_override(OVERRIDE).unwrap();
    assert_eq!(entries.len(), 2);
    let al2 = select_override(&entries, OperatingSystem::AmazonLinux2).unwrap();
    assert_eq!(al2.rules()[0].approve_after_days, Some(0));
    assert_eq!(al2.name, None);
    assert_eq!(al2.validate_override(), Ok(()));
    // Without a name it is not a storable baseline.
    assert!(al2.validate().is_err());
    let ubuntu = select_override(&entries, OperatingSystem::Ubuntu).unwrap();
    assert_eq!(ubuntu.validate_override(), Ok(()));
}

#[test]
fn override_selection_errors() {
    let entries = parse_baseline_override(OVERRIDE).unwrap();
    assert_eq!(
        select_override(&entries, OperatingSystem::Debian),
        Err(OverrideError::NoEntryForOs(OperatingSystem::Debian))
    );
    let doubled = [entries.clone(), entries].concat();
    let err = select_override(&doubled, OperatingSystem::Ubuntu).unwrap_err();
    assert_eq!(
        err,
        OverrideError::SeveralEntriesForOs {
            os: OperatingSystem::Ubuntu,
            indexes: vec![1, 3],
        }
    );
    assert_eq!(
        err.to_string(),
        "the BaselineOverride document has 2 baselines for UBUNTU (entries 1, 3); exactly one is allowed"
    );
    assert_eq!(
        select_override(&[], OperatingSystem::Ubuntu),
        Err(OverrideError::NoEntryForOs(OperatingSystem::Ubuntu))
    );
}

#[test]
fn override_document_must_be_an_array() {
    let single = r#"{"OperatingSystem": "UBUNTU"}"#;
    let e = parse_baseline_override(single).unwrap_err();
    assert_eq!(e.kind, BaselineErrorKind::WrongContainer);
    assert_eq!(e.document, DocumentKind::BaselineOverride);
    assert_eq!(
        e.to_string(),
        "invalid BaselineOverride document: expected a JSON array of baselines, found a single object"
    );
    assert_eq!(
        parse_baseline_override("OperatingSystem: UBUNTU")
            .unwrap_err()
            .kind,
        BaselineErrorKind::WrongContainer
    );
    assert_eq!(
        parse_baseline_override(" ").unwrap_err().kind,
        BaselineErrorKind::Empty
    );
    assert_eq!(parse_baseline_override("[]").unwrap(), vec![]);
}

#[test]
fn override_errors_point_into_the_array() {
    let text = "[\n  {\"OperatingSystem\": \"UBUNTU\"},\n  {\"OperatingSystem\": \"DEBIAN\", \"Colour\": 1}\n]";
    let e = parse_baseline_override(text).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("[1].Colour"));
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("unknown field `Colour`"), "{e}");
}

#[test]
fn install_override_list_parses() {
    let list = parse_install_override_list(INSTALL_OVERRIDE).unwrap();
    assert_eq!(
        list.patches,
        [
            OverrideEntry {
                id: "curl.x86_64".into(),
                title: None
            },
            OverrideEntry {
                id: "dhcp*".into(),
                title: Some("*12:4.2.5-*".into())
            },
            OverrideEntry {
                id: "openssl-libs.x86_64".into(),
                title: Some("openssl-libs.x86_64:1:3.0.8-1.amzn2023.0.12".into())
            },
        ]
    );
    // JSON is YAML.
    let json = r#"{"patches": [{"id": "curl.x86_64", "title": null}]}"#;
    assert_eq!(parse_install_override_list(json).unwrap().patches.len(), 1);
    // An empty list installs nothing but is not an error.
    assert!(
        parse_install_override_list("patches: []")
            .unwrap()
            .patches
            .is_empty()
    );
    assert!(
        parse_install_override_list("patches:")
            .unwrap()
            .patches
            .is_empty()
    );
    // Extra top-level members are ignored too.
    assert_eq!(
        parse_install_override_list("version: 1\npatches:\n  - id: vim\n")
            .unwrap()
            .patches
            .len(),
        1
    );
}

#[test]
fn install_override_list_errors() {
    use InstallOverrideError as E;
    let cases: Vec<(&str, E)> = vec![
        ("", E::Empty),
        ("# only a comment\n", E::Empty),
        ("- id: curl\n", E::NotAMapping { found: "a list" }),
        ("curl", E::NotAMapping { found: "a string" }),
        ("packages: []", E::MissingPatches),
        ("patches: curl", E::PatchesNotAList { found: "a string" }),
        (
            "patches: {id: curl}",
            E::PatchesNotAList { found: "a mapping" },
        ),
        (
            "patches:\n  - curl.x86_64\n",
            E::EntryNotAMapping {
                index: 0,
                found: "a string",
            },
        ),
        (
            "patches:\n  - id: a\n  - title: '1.0'\n",
            E::MissingId { index: 1 },
        ),
        ("patches:\n  - id:\n", E::MissingId { index: 0 }),
        (
            "patches:\n  - id: ''\n",
            E::EmptyField {
                index: 0,
                field: "id",
            },
        ),
        (
            "patches:\n  - id: a\n    title: 2.10\n",
            E::NotAString {
                index: 0,
                field: "title",
                found: "a number",
            },
        ),
        (
            "patches:\n  - id: [a]\n",
            E::NotAString {
                index: 0,
                field: "id",
                found: "a list",
            },
        ),
        (
            "patches:\n  - id: 'curl x86_64'\n",
            E::Whitespace {
                index: 0,
                field: "id",
                value: "curl x86_64".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_install_override_list(text), Err(expected), "{text:?}");
    }
    let e = parse_install_override_list("patches:\n  - id: 'x\n").unwrap_err();
    assert!(matches!(e, E::Syntax { line: Some(_), .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("InstallOverrideList is not valid YAML at line"),
        "{e}"
    );
    let msg = parse_install_override_list("patches:\n  - id: a\n    title: 2.10\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "InstallOverrideList patches[0].title must be a string, found a number (quote the value)"
    );
}
