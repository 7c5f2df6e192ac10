//! Reading and writing baseline documents: the `aws ssm get-patch-baseline`
//! output, YAML, round trips, and where parse errors point.

use patchfleet_core::baseline::{
    Baseline, BaselineErrorKind, Format, PatchAction, PatchFilter, PatchFilterKey, PatchRule,
    PatchSource,
};
use patchfleet_core::compliance::ComplianceLevel;
use patchfleet_core::os::OperatingSystem;
use serde_json::Value;

const AWS_V2: &str = include_str!("fixtures/baselines/aws-get-patch-baseline.json");
const AWS_V1: &str = include_str!("fixtures/baselines/aws-get-patch-baseline-epoch.json");
const UBUNTU_YAML: &str = include_str!("fixtures/baselines/custom-ubuntu.yaml");

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn aws_cli_output_loads_unchanged() {
    let b = Baseline::from_json(AWS_V2).unwrap();
    assert_eq!(b.baseline_id.as_deref(), Some("pb-0c7e4a1b9d2f38e56"));
    assert_eq!(b.name.as_deref(), Some("AL2023-Production"));
    assert_eq!(b.operating_system, OperatingSystem::AmazonLinux2023);
    assert_eq!(b.rules().len(), 2);
    let r1 = &b.rules()[0];
    assert_eq!(r1.approve_after_days, Some(3));
    assert_eq!(r1.compliance_level, ComplianceLevel::Critical);
    assert_eq!(
        r1.patch_filter_group
            .filter(PatchFilterKey::Severity)
            .unwrap()
            .values,
        ["Critical", "Important"]
    );
    assert_eq!(
        b.rules()[1].approve_until_date.as_deref(),
        Some("2024-02-29")
    );
    assert_eq!(
        b.rules()[1].until_date(),
        Some(jiff::civil::date(2024, 2, 29))
    );
    assert_eq!(b.approved_patches_compliance_level, ComplianceLevel::High);
    assert_eq!(b.rejected_patches_action, PatchAction::Block);
    assert_eq!(b.patch_groups, ["Production", "web servers"]);
    assert_eq!(b.sources.len(), 1);
    assert_eq!(
        b.created_date.unwrap().to_string(),
        "2024-01-02T03:04:05.123Z"
    );
    assert_eq!(
        b.modified_date.unwrap().to_string(),
        "2024-03-04T05:06:07.89Z"
    );
    assert_eq!(b.validate(), Ok(()));
}

#[test]
fn awscli_v1_epoch_dates_load_to_the_same_baseline() {
    assert_eq!(
        Baseline::from_json(AWS_V1).unwrap(),
        Baseline::from_json(AWS_V2).unwrap()
    );
}

#[test]
fn json_round_trip_is_exact_for_api_output() {
    // The epoch form is what we write, so API-shaped input comes back
    // member for member.
    let b = Baseline::from_json(AWS_V1).unwrap();
    assert_eq!(json(&b.to_json_pretty()), json(AWS_V1));
    // The ISO form differs only in the two dates.
    let mut v2 = json(AWS_V2);
    v2["CreatedDate"] = json("1704164645.123");
    v2["ModifiedDate"] = json("1709528767.89");
    assert_eq!(
        json(&Baseline::from_json(AWS_V2).unwrap().to_json_pretty()),
        v2
    );
}

#[test]
fn yaml_round_trip() {
    let b = Baseline::from_yaml(UBUNTU_YAML).unwrap();
    assert_eq!(b.operating_system, OperatingSystem::Ubuntu);
    assert_eq!(b.tags.len(), 1);
    assert!(b.rules()[1].enable_non_security);
    assert_eq!(b.validate(), Ok(()));
    assert_eq!(Baseline::from_yaml(&b.to_yaml()).unwrap(), b);
    assert_eq!(Baseline::from_json(&b.to_json_pretty()).unwrap(), b);
    // YAML and JSON of the same baseline are the same model.
    let aws = Baseline::from_json(AWS_V2).unwrap();
    assert_eq!(Baseline::from_yaml(&aws.to_yaml()).unwrap(), aws);
    let yaml = aws.to_yaml();
    assert!(yaml.contains("CreatedDate: 1704164645.123"), "{yaml}");
}

#[test]
fn parse_and_auto_detection() {
    let from_json: Baseline = AWS_V2.parse().unwrap();
    let from_yaml: Baseline = from_json.to_yaml().parse().unwrap();
    assert_eq!(from_json, from_yaml);
    assert_eq!(
        Baseline::parse(UBUNTU_YAML, Format::Yaml).unwrap(),
        Baseline::from_yaml(UBUNTU_YAML).unwrap()
    );
    assert!(Baseline::parse(UBUNTU_YAML, Format::Json).is_err());
}

#[test]
fn defaults_follow_ssm() {
    let b = Baseline::from_json(r#"{"Name": "minimal"}"#).unwrap();
    assert_eq!(b.operating_system, OperatingSystem::Windows);
    assert_eq!(
        b.approved_patches_compliance_level,
        ComplianceLevel::Unspecified
    );
    assert!(!b.approved_patches_enable_non_security);
    assert_eq!(b.rejected_patches_action, PatchAction::AllowAsDependency);
    assert!(b.global_filters.patch_filters.is_empty());
    assert!(b.rules().is_empty());
    assert_eq!(b, Baseline::new("minimal", OperatingSystem::Windows));

    let rule = Baseline::from_json(
        r#"{"Name": "x", "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": []}}]}}"#,
    )
    .unwrap()
    .rules()[0]
        .clone();
    assert_eq!(rule, PatchRule::new(vec![]));
}

#[test]
fn output_has_no_nulls_and_keeps_absent_optionals_absent() {
    let b = Baseline::from_yaml("Name: minimal\nOperatingSystem: DEBIAN\n").unwrap();
    let out = json(&b.to_json_pretty());
    let obj = out.as_object().unwrap();
    assert!(obj.values().all(|v| !v.is_null()), "{out}");
    for absent in [
        "BaselineId",
        "Description",
        "CreatedDate",
        "ModifiedDate",
        "AvailableSecurityUpdatesComplianceStatus",
        "Tags",
    ] {
        assert!(!obj.contains_key(absent), "{absent} in {out}");
    }
    // Members SSM always returns are always written, like GetPatchBaseline.
    for present in [
        "OperatingSystem",
        "ApprovedPatches",
        "RejectedPatchesAction",
        "Sources",
    ] {
        assert!(obj.contains_key(present), "{present} missing in {out}");
    }
    let yaml = b.to_yaml();
    assert!(!yaml.contains("null"), "{yaml}");
}

#[test]
fn yaml_empty_members_mean_defaults() {
    let b = Baseline::from_yaml(
        "Name: x\nOperatingSystem: DEBIAN\nApprovedPatches:\nRejectedPatches: ~\nGlobalFilters:\nDescription:\n",
    )
    .unwrap();
    assert!(b.approved_patches.is_empty() && b.rejected_patches.is_empty());
    assert_eq!(b.description, None);
    let b = Baseline::from_json(r#"{"Name": "x", "OperatingSystem": null}"#).unwrap();
    assert_eq!(b.operating_system, OperatingSystem::Windows);
}

#[test]
fn unknown_member_is_named_with_line_column_and_path() {
    let text = r#"{
  "Name": "x",
  "ApprovalRules": {
    "PatchRules": [
      {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": 7},
      {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDay": 7}
    ]
  }
}"#;
    let e = Baseline::from_json(text).unwrap_err();
    assert_eq!(e.kind, BaselineErrorKind::Shape);
    assert_eq!(e.line, Some(6));
    assert_eq!(e.column, Some(66));
    assert_eq!(
        e.path.as_deref(),
        Some("ApprovalRules.PatchRules[1].ApproveAfterDay")
    );
    assert!(
        e.message.starts_with("unknown field `ApproveAfterDay`"),
        "{}",
        e.message
    );
    let shown = e.to_string();
    assert!(
        shown.starts_with(
            "invalid JSON baseline document at line 6, column 66, member `ApprovalRules.PatchRules[1].ApproveAfterDay`: unknown field"
        ),
        "{shown}"
    );

    let yaml = "Name: x\nApprovalRules:\n  PatchRules:\n    - PatchFilterGroup: {PatchFilters: []}\n      ApproveAfterDay: 7\n";
    let e = Baseline::from_yaml(yaml).unwrap_err();
    assert_eq!(e.kind, BaselineErrorKind::Shape);
    assert_eq!(e.line, Some(5));
    assert_eq!(e.path.as_deref(), Some("ApprovalRules.PatchRules[0]"));
    assert!(e.message.contains("unknown field `ApproveAfterDay`"), "{e}");
}

#[test]
fn wrong_types_and_missing_members_point_at_the_member() {
    let cases = [
        (
            r#"{"Name": "x", "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": "7"}]}}"#,
            "ApprovalRules.PatchRules[0].ApproveAfterDays",
            "invalid type",
        ),
        (
            r#"{"Name": "x", "ApprovalRules": {"PatchRules": [{"ApproveAfterDays": 7}]}}"#,
            "ApprovalRules.PatchRules[0]",
            "missing field `PatchFilterGroup`",
        ),
        (
            r#"{"Name": "x", "GlobalFilters": {"PatchFilters": [{"Key": "PRODUCT", "Values": ["a"]}, {"Key": "COLOUR", "Values": ["b"]}]}}"#,
            "GlobalFilters.PatchFilters[1].Key",
            "unknown variant `COLOUR`",
        ),
        (
            r#"{"Name": "x", "OperatingSystem": "UBUNTO"}"#,
            "OperatingSystem",
            "unknown variant `UBUNTO`",
        ),
        (
            r#"{"Name": "x", "GlobalFilters": [[]]}"#,
            "GlobalFilters",
            "expected a PatchFilterGroup object",
        ),
        (
            r#"{"Name": "x", "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": -1}]}}"#,
            "ApprovalRules.PatchRules[0].ApproveAfterDays",
            "invalid value",
        ),
        (
            r#"{"Name": "x", "CreatedDate": "last tuesday"}"#,
            "CreatedDate",
            "invalid value",
        ),
        (r#"{"Name": "x", "Name": "y"}"#, "Name", "duplicate field"),
    ];
    for (text, path, message) in cases {
        let e = Baseline::from_json(text).unwrap_err();
        assert_eq!(e.path.as_deref(), Some(path), "{text}: {e}");
        assert!(e.message.contains(message), "{text}: {e}");
        assert_eq!(e.line, Some(1), "{text}");
        assert!(e.column.is_some(), "{text}");
    }
}

#[test]
fn syntax_errors_and_wrong_containers() {
    let e = Baseline::from_json("{\n  \"Name\": \"x\",,\n}").unwrap_err();
    assert_eq!(e.kind, BaselineErrorKind::Syntax);
    assert_eq!(e.line, Some(2));

    let e = Baseline::from_yaml("Name: x\nDescription: a: b\n").unwrap_err();
    assert_eq!(e.kind, BaselineErrorKind::Syntax);
    assert!(e.line.is_some(), "{e}");

    let e = Baseline::from_json("[]").unwrap_err();
    assert_eq!(e.kind, BaselineErrorKind::WrongContainer);
    assert!(e.message.contains("BaselineOverride"), "{e}");

    let e = Baseline::from_yaml("- Name: x\n").unwrap_err();
    assert!(
        e.message.contains("expected a patch baseline object"),
        "{e}"
    );

    for empty in ["", "  \n", "\u{feff}"] {
        assert_eq!(
            Baseline::from_json(empty).unwrap_err().kind,
            BaselineErrorKind::Empty
        );
        assert_eq!(
            Baseline::from_yaml(empty).unwrap_err().kind,
            BaselineErrorKind::Empty
        );
    }
    // A byte-order mark in front of a good document is tolerated.
    assert!(Baseline::from_json(&format!("\u{feff}{AWS_V2}")).is_ok());
}

#[test]
fn builders_produce_what_the_parser_produces() {
    let mut built = Baseline::new("built", OperatingSystem::AmazonLinux2);
    built.approval_rules.patch_rules.push(
        PatchRule::new(vec![PatchFilter::new(
            PatchFilterKey::Classification,
            ["Security"],
        )])
        .approve_after_days(7)
        .compliance_level(ComplianceLevel::High),
    );
    let parsed = Baseline::from_yaml(
        "Name: built\nOperatingSystem: AMAZON_LINUX_2\nApprovalRules:\n  PatchRules:\n    - PatchFilterGroup:\n        PatchFilters:\n          - {Key: CLASSIFICATION, Values: [Security]}\n      ApproveAfterDays: 7\n      ComplianceLevel: HIGH\n",
    )
    .unwrap();
    assert_eq!(built, parsed);
    assert_eq!(built.validate(), Ok(()));
}

#[test]
fn source_configuration_is_redacted_in_debug() {
    let s = PatchSource {
        name: "mirror".into(),
        products: vec!["*".into()],
        configuration: "baseurl=https://user:secret@mirror/".into(),
    };
    let shown = format!("{s:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn awkward_strings_survive_both_formats() {
    // Strings that YAML would otherwise read as null, booleans, numbers,
    // dates, comments, anchors, … must come back as the same strings.
    let awkward = [
        "null",
        "~",
        "true",
        "Yes",
        "no",
        "123",
        "0o7",
        "0x1F",
        "1e3",
        ".inf",
        "-.NaN",
        "- x",
        "a: b",
        "#c",
        " lead",
        "trail ",
        "\t",
        "a\nb",
        "a\r\nb",
        "\u{85}",
        "\u{feff}x",
        "\u{0}",
        "\u{7f}",
        "\u{2028}",
        "'",
        "\"",
        "\\",
        "{",
        "[",
        "*a",
        "&a",
        "!t",
        "%x",
        "@x",
        "`x",
        "|",
        ">",
        "",
        " ",
        "\u{10FFFF}",
        "=",
        "<<",
        "?",
        ":",
        "---",
        "...",
        "2024-01-01",
        "1_000",
        "+1",
        "0.",
        "00",
        "0b1",
        "\u{a0}",
    ];
    for s in awkward {
        let mut b = Baseline::new(s, OperatingSystem::Ubuntu);
        b.description = Some(s.to_string());
        b.approved_patches.push(s.to_string());
        b.tags.push(patchfleet_core::baseline::Tag {
            key: s.into(),
            value: s.into(),
        });
        b.global_filters
            .patch_filters
            .push(PatchFilter::new(PatchFilterKey::Section, [s]));
        assert_eq!(Baseline::from_yaml(&b.to_yaml()).as_ref(), Ok(&b), "{s:?}");
        assert_eq!(
            Baseline::from_json(&b.to_json_pretty()).as_ref(),
            Ok(&b),
            "{s:?}"
        );
    }
}
