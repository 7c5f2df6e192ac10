//! Every validation rule, with a failing and a passing case, and the
//! warnings.

use patchfleet_core::baseline::{
    Baseline, Constraint, PatchFilter, PatchFilterKey, PatchRule, PatchSource, ShownValue, Tag,
    ValidationErrors, WarningKind, predefined,
};
use patchfleet_core::os::OperatingSystem;

use OperatingSystem as Os;
use PatchFilterKey as K;

fn filter(key: K, values: &[&str]) -> PatchFilter {
    PatchFilter::new(key, values.iter().copied())
}

/// A valid AL2 baseline with one rule; each test breaks one thing.
fn al2() -> Baseline {
    let mut b = Baseline::new("valid-baseline", Os::AmazonLinux2);
    b.approval_rules
        .patch_rules
        .push(PatchRule::new(vec![filter(K::Classification, &["Security"])]).approve_after_days(7));
    b
}

fn ubuntu() -> Baseline {
    let mut b = Baseline::new("valid-ubuntu", Os::Ubuntu);
    b.approval_rules
        .patch_rules
        .push(PatchRule::new(vec![filter(K::Priority, &["Required"])]));
    b
}

#[track_caller]
fn assert_valid(b: &Baseline) {
    if let Err(e) = b.validate() {
        panic!("expected valid, got: {e}");
    }
}

#[track_caller]
fn errors(b: &Baseline) -> ValidationErrors {
    b.validate().expect_err("expected validation errors")
}

/// Exactly one error, at `path`, breaking `constraint`.
#[track_caller]
fn assert_only(b: &Baseline, path: &str, constraint: Constraint) {
    let e = errors(b);
    assert_eq!(e.len(), 1, "{e}");
    assert_eq!(e.errors()[0].path, path, "{e}");
    assert_eq!(e.errors()[0].constraint, constraint, "{e}");
}

fn rule0(b: &mut Baseline) -> &mut PatchRule {
    &mut b.approval_rules.patch_rules[0]
}

const RULE0: &str = "approvalRules.patchRules.1.member";

#[test]
fn ssm_message_format() {
    let mut b = al2();
    rule0(&mut b).approve_after_days = Some(400);
    b.description = Some(String::new());
    let e = errors(&b);
    assert_eq!(
        e.to_string(),
        "2 validation errors detected: \
         Value '' at 'description' failed to satisfy constraint: Member must have length greater than or equal to 1; \
         Value '400' at 'approvalRules.patchRules.1.member.approveAfterDays' failed to satisfy constraint: Member must have value less than or equal to 360"
    );
    assert_eq!(
        e.at("approvalRules.patchRules.1.member.approveAfterDays")
            .unwrap()
            .value,
        ShownValue::Text("400".into())
    );
}

#[test]
fn name_is_required_except_in_an_override() {
    let mut b = al2();
    b.name = None;
    assert_only(&b, "name", Constraint::NotNull);
    assert_eq!(
        errors(&b).to_string(),
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
    assert_eq!(b.validate_override(), Ok(()));
}

#[test]
fn name_length_and_pattern() {
    let mut b = al2();
    for ok in ["abc", "My-Baseline_1.0", &"n".repeat(128)] {
        b.name = Some(ok.to_string());
        assert_valid(&b);
    }
    b.name = Some("ab".into());
    assert_only(&b, "name", Constraint::MinLength(3));
    b.name = Some("n".repeat(129));
    assert_only(&b, "name", Constraint::MaxLength(128));
    b.name = Some("bad name!".into());
    assert_only(&b, "name", Constraint::Pattern(r"^[a-zA-Z0-9_\-.]{3,128}$"));
    b.name = Some("Grüße-baseline".into());
    assert_only(&b, "name", Constraint::Pattern(r"^[a-zA-Z0-9_\-.]{3,128}$"));
}

#[test]
fn baseline_id_pattern() {
    let mut b = al2();
    for ok in [
        "pb-0123456789abcdef0",
        "arn:aws:ssm:us-east-1:123456789012:patchbaseline/pb-0123456789abcdef0",
    ] {
        b.baseline_id = Some(ok.into());
        assert_valid(&b);
    }
    b.baseline_id = Some("pb-123".into());
    assert_only(&b, "baselineId", Constraint::MinLength(20));
    b.baseline_id = Some("pb-0123456789abcdef0 x".into());
    assert_only(
        &b,
        "baselineId",
        Constraint::Pattern(r"^[a-zA-Z0-9_\-:/]{20,128}$"),
    );
}

#[test]
fn description_length() {
    let mut b = al2();
    b.description = Some("d".repeat(1024));
    assert_valid(&b);
    b.description = Some("d".repeat(1025));
    assert_only(&b, "description", Constraint::MaxLength(1024));
    b.description = Some(String::new());
    assert_only(&b, "description", Constraint::MinLength(1));
}

#[test]
fn at_most_four_filters_per_group() {
    // Windows has six valid keys, so four distinct filters are possible
    // there: valid.
    let mut w = Baseline::new("windows", Os::Windows);
    w.approved_patches.push("KB123".into());
    w.global_filters.patch_filters = vec![
        filter(K::Product, &["*"]),
        filter(K::Classification, &["*"]),
        filter(K::MsrcSeverity, &["*"]),
        filter(K::PatchSet, &["OS"]),
    ];
    assert_valid(&w);
    w.global_filters
        .patch_filters
        .push(filter(K::PatchId, &["x"]));
    let e = errors(&w);
    let count = e.at("globalFilters.patchFilters").expect("count error");
    assert_eq!(count.constraint, Constraint::MaxLength(4));
    assert_eq!(
        count.value,
        ShownValue::Text("[PRODUCT, CLASSIFICATION, MSRC_SEVERITY, PATCH_SET, PATCH_ID]".into())
    );
}

#[test]
fn filter_value_counts_and_lengths() {
    let mut b = al2();
    let twenty: Vec<String> = (0..20).map(|i| format!("Product{i}")).collect();
    b.global_filters.patch_filters = vec![PatchFilter::new(K::Product, twenty.clone())];
    assert_valid(&b);

    let mut too_many = twenty.clone();
    too_many.push("one-more".into());
    b.global_filters.patch_filters = vec![PatchFilter::new(K::Product, too_many)];
    assert_only(
        &b,
        "globalFilters.patchFilters.1.member.values",
        Constraint::MaxLength(20),
    );

    b.global_filters.patch_filters = vec![filter(K::Product, &[])];
    assert_only(
        &b,
        "globalFilters.patchFilters.1.member.values",
        Constraint::MinLength(1),
    );

    b.global_filters.patch_filters = vec![PatchFilter::new(K::Product, ["p".repeat(64)])];
    assert_valid(&b);
    b.global_filters.patch_filters = vec![PatchFilter::new(K::Product, ["ok", &"p".repeat(65)])];
    assert_only(
        &b,
        "globalFilters.patchFilters.1.member.values.2.member",
        Constraint::MaxLength(64),
    );
    b.global_filters.patch_filters = vec![filter(K::Product, &[""])];
    assert_only(
        &b,
        "globalFilters.patchFilters.1.member.values.1.member",
        Constraint::MinLength(1),
    );
}

#[test]
fn duplicate_keys_in_one_group() {
    let mut b = al2();
    rule0(&mut b)
        .patch_filter_group
        .patch_filters
        .push(filter(K::Severity, &["Critical"]));
    assert_valid(&b);
    rule0(&mut b)
        .patch_filter_group
        .patch_filters
        .push(filter(K::Classification, &["Bugfix"]));
    assert_only(
        &b,
        "approvalRules.patchRules.1.member.patchFilterGroup.patchFilters.3.member.key",
        Constraint::DuplicateKey(K::Classification),
    );
    // The same key in different groups is fine.
    let mut b = al2();
    b.global_filters
        .patch_filters
        .push(filter(K::Classification, &["Security"]));
    assert_valid(&b);
}

#[test]
fn keys_valid_per_operating_system() {
    let mut b = al2();
    for key in [K::Product, K::Classification, K::Severity] {
        b.global_filters.patch_filters = vec![filter(key, &["*"])];
        assert_valid(&b);
    }
    for key in [
        K::Priority,
        K::Section,
        K::Arch,
        K::Name,
        K::CveId,
        K::MsrcSeverity,
    ] {
        b.global_filters.patch_filters = vec![filter(key, &["*"])];
        let e = errors(&b);
        assert_eq!(e.len(), 1, "{e}");
        let err = e.at("globalFilters.patchFilters.1.member.key").unwrap();
        assert!(
            matches!(
                err.constraint,
                Constraint::KeyNotValidForOs {
                    os: Os::AmazonLinux2,
                    ..
                }
            ),
            "{e}"
        );
    }
    assert!(
        errors(&b).to_string().ends_with(
            "Member must be a patch filter key valid for AMAZON_LINUX_2 baselines: [PRODUCT, CLASSIFICATION, SEVERITY]"
        ),
        "{}",
        errors(&b)
    );

    let mut u = ubuntu();
    for key in [K::Product, K::Priority, K::Section] {
        u.global_filters.patch_filters = vec![filter(key, &["*"])];
        assert_valid(&u);
    }
    u.global_filters.patch_filters = vec![filter(K::Classification, &["Security"])];
    assert!(
        errors(&u)
            .at("globalFilters.patchFilters.1.member.key")
            .is_some()
    );

    // Every DescribeAvailablePatches-only key is rejected on every Linux OS.
    for os in Os::ALL
        .into_iter()
        .filter(|os| !matches!(os, Os::Windows | Os::Macos))
    {
        for key in [
            K::Arch,
            K::AdvisoryId,
            K::BugzillaId,
            K::CveId,
            K::Epoch,
            K::Name,
            K::Release,
            K::Repository,
            K::Security,
            K::Version,
        ] {
            let mut b = Baseline::new("any-os", os);
            b.approved_patches.push("x".into());
            b.global_filters.patch_filters = vec![filter(key, &["*"])];
            assert!(b.validate().is_err(), "{os} {key}");
        }
    }
}

#[test]
fn values_valid_per_operating_system() {
    let cases: &[(Os, K, &str, bool)] = &[
        (Os::AmazonLinux2, K::Classification, "Security", true),
        (Os::AmazonLinux2, K::Classification, "security", true),
        (Os::AmazonLinux2, K::Classification, "*", true),
        (Os::AmazonLinux2, K::Classification, "Securty", false),
        (Os::AmazonLinux2, K::Severity, "Medium", true),
        (Os::AmazonLinux2, K::Severity, "None", true),
        (Os::AmazonLinux2, K::Severity, "Moderate", false),
        (Os::AmazonLinux2023, K::Severity, "Moderate", true),
        (Os::AmazonLinux2023, K::Severity, "Medium", true),
        (Os::RedhatEnterpriseLinux, K::Severity, "Moderate", true),
        (Os::RedhatEnterpriseLinux, K::Severity, "Medium", true),
        (Os::Centos, K::Severity, "moderate", true),
        (Os::OracleLinux, K::Severity, "Moderate", true),
        (Os::RockyLinux, K::Severity, "Urgent", false),
        (Os::Suse, K::Classification, "Yast", true),
        (Os::Suse, K::Classification, "Bugfix", false),
        (Os::Suse, K::Severity, "Moderate", true),
        (Os::Ubuntu, K::Priority, "Extra", true),
        (Os::Debian, K::Priority, "optional", true),
        (Os::Raspbian, K::Priority, "Urgent", false),
        (Os::Ubuntu, K::Section, "universe/net", true),
        (Os::Debian, K::Product, "Debian12", true),
        (Os::AmazonLinux2, K::Product, "anything at all", true),
    ];
    for &(os, key, value, ok) in cases {
        let mut b = Baseline::new("values", os);
        b.approved_patches.push("x".into());
        b.global_filters.patch_filters = vec![filter(key, &[value])];
        match (b.validate(), ok) {
            (Ok(()), true) => {}
            (Err(e), false) => {
                assert_eq!(e.len(), 1, "{e}");
                let err = e
                    .at("globalFilters.patchFilters.1.member.values.1.member")
                    .unwrap();
                assert!(
                    matches!(err.constraint, Constraint::ValueNotValidForKey { .. }),
                    "{e}"
                );
            }
            (got, _) => panic!("{os} {key}={value}: expected ok={ok}, got {got:?}"),
        }
    }
    let mut b = al2();
    b.global_filters.patch_filters = vec![filter(K::Classification, &["Securty"])];
    assert!(
        errors(&b).to_string().ends_with(
            "Value 'Securty' at 'globalFilters.patchFilters.1.member.values.1.member' failed to satisfy constraint: \
             Member must be * or one of the CLASSIFICATION values valid for AMAZON_LINUX_2 (any letter case): \
             [Security, Bugfix, Enhancement, Recommended, Newpackage]"
        ),
        "{}",
        errors(&b)
    );
}

#[test]
fn at_most_ten_rules() {
    let mut b = al2();
    let rule = b.rules()[0].clone();
    b.approval_rules.patch_rules = vec![rule.clone(); 10];
    assert_valid(&b);
    b.approval_rules.patch_rules.push(rule);
    assert_only(&b, "approvalRules.patchRules", Constraint::MaxLength(10));
}

#[test]
fn approve_after_days_range() {
    let mut b = al2();
    for ok in [0, 100, 360] {
        rule0(&mut b).approve_after_days = Some(ok);
        assert_valid(&b);
    }
    rule0(&mut b).approve_after_days = Some(361);
    assert_only(
        &b,
        "approvalRules.patchRules.1.member.approveAfterDays",
        Constraint::MaxValue(360),
    );
}

#[test]
fn approve_until_date_is_a_real_date() {
    let mut b = al2();
    rule0(&mut b).approve_after_days = None;
    let path = "approvalRules.patchRules.1.member.approveUntilDate";
    for ok in ["2024-02-29", "2025-11-16", "1999-12-31"] {
        rule0(&mut b).approve_until_date = Some(ok.into());
        assert_valid(&b);
    }
    for bad in [
        "2023-02-29",
        "2024-13-01",
        "2024-2-03",
        "16/11/2025",
        "tomorrow",
    ] {
        rule0(&mut b).approve_until_date = Some(bad.into());
        assert_only(&b, path, Constraint::CalendarDate);
    }
    rule0(&mut b).approve_until_date = Some(String::new());
    assert_only(&b, path, Constraint::MinLength(1));
    rule0(&mut b).approve_until_date = Some("2024-02-290".into());
    assert_only(&b, path, Constraint::MaxLength(10));
}

#[test]
fn exactly_one_approval_delay_outside_apt() {
    let mut b = al2();
    rule0(&mut b).approve_after_days = None;
    assert_only(
        &b,
        &format!("{RULE0}.approveAfterDays"),
        Constraint::ApprovalDelayMissing(Os::AmazonLinux2),
    );
    rule0(&mut b).approve_until_date = Some("2024-01-01".into());
    assert_valid(&b);
    rule0(&mut b).approve_after_days = Some(7);
    assert_only(
        &b,
        &format!("{RULE0}.approveUntilDate"),
        Constraint::ApprovalDelayTwice(Os::AmazonLinux2),
    );
    for os in [Os::Suse, Os::RedhatEnterpriseLinux, Os::AmazonLinux2023] {
        let mut b = al2();
        b.operating_system = os;
        rule0(&mut b).approve_after_days = None;
        assert!(b.validate().is_err(), "{os}");
    }
}

#[test]
fn apt_approval_delay_is_optional() {
    let mut u = ubuntu();
    assert_valid(&u);
    rule0(&mut u).approve_after_days = Some(7);
    assert_valid(&u);
    rule0(&mut u).approve_until_date = Some("2024-01-01".into());
    assert_valid(&u);
    for os in [Os::Debian, Os::Raspbian] {
        let mut b = ubuntu();
        b.operating_system = os;
        assert_valid(&b);
    }
    // The range still applies.
    rule0(&mut u).approve_after_days = Some(361);
    assert!(
        errors(&u)
            .at(&format!("{RULE0}.approveAfterDays"))
            .is_some()
    );
}

#[test]
fn approved_and_rejected_lists() {
    for (member, path) in [
        ("approved", "approvedPatches"),
        ("rejected", "rejectedPatches"),
    ] {
        let mut b = al2();
        fn pick<'a>(b: &'a mut Baseline, member: &str) -> &'a mut Vec<String> {
            if member == "approved" {
                &mut b.approved_patches
            } else {
                &mut b.rejected_patches
            }
        }
        *pick(&mut b, member) = (0..50).map(|i| format!("pkg{i}")).collect();
        b.approved_patches_enable_non_security = true;
        assert_valid(&b);
        pick(&mut b, member).push("pkg50".into());
        assert_only(&b, path, Constraint::MaxLength(50));

        *pick(&mut b, member) = vec!["p".repeat(100)];
        assert_valid(&b);
        *pick(&mut b, member) = vec!["ok".into(), "p".repeat(101)];
        assert_only(&b, &format!("{path}.2.member"), Constraint::MaxLength(100));
        *pick(&mut b, member) = vec![String::new()];
        assert_only(&b, &format!("{path}.1.member"), Constraint::MinLength(1));
    }
}

fn source(name: &str) -> PatchSource {
    PatchSource {
        name: name.into(),
        products: vec!["AmazonLinux2".into()],
        configuration: "[main]\nname=mirror\nbaseurl=https://user:hunter2@mirror/\nenabled=1"
            .into(),
    }
}

#[test]
fn sources() {
    let mut b = al2();
    b.sources = (0..20).map(|i| source(&format!("mirror-{i}"))).collect();
    assert_valid(&b);
    b.sources.push(source("mirror-20"));
    assert_only(&b, "sources", Constraint::MaxLength(20));

    let pattern = Constraint::Pattern(r"^[a-zA-Z0-9_\-.]{3,50}$");
    for bad in ["ab", "bad name", &"n".repeat(51)] {
        b.sources = vec![source(bad)];
        assert_only(&b, "sources.1.member.name", pattern.clone());
    }
    b.sources = vec![source(&"n".repeat(50))];
    assert_valid(&b);

    let mut s = source("mirror");
    s.products = vec![];
    b.sources = vec![s.clone()];
    assert_only(&b, "sources.1.member.products", Constraint::MinLength(1));
    s.products = (0..21).map(|i| format!("p{i}")).collect();
    b.sources = vec![s.clone()];
    assert_only(&b, "sources.1.member.products", Constraint::MaxLength(20));
    s.products = vec!["*".into(), "p".repeat(129)];
    b.sources = vec![s.clone()];
    assert_only(
        &b,
        "sources.1.member.products.2.member",
        Constraint::MaxLength(128),
    );

    let mut s = source("mirror");
    s.configuration = "x".repeat(1024);
    b.sources = vec![s.clone()];
    assert_valid(&b);
    s.configuration = format!("secret-{}", "x".repeat(1024));
    b.sources = vec![s.clone()];
    assert_only(
        &b,
        "sources.1.member.configuration",
        Constraint::MaxLength(1024),
    );
    let shown = errors(&b).to_string();
    assert!(
        !shown.contains("secret"),
        "configuration must not be echoed: {shown}"
    );
    assert!(
        shown.contains("Value at 'sources.1.member.configuration'"),
        "{shown}"
    );
    s.configuration = String::new();
    b.sources = vec![s];
    assert_only(
        &b,
        "sources.1.member.configuration",
        Constraint::MinLength(1),
    );
}

#[test]
fn tags() {
    let tag = |k: &str, v: &str| Tag {
        key: k.into(),
        value: v.into(),
    };
    let pattern = Constraint::Pattern(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$");
    let mut b = al2();
    b.tags = vec![
        tag("team", "web servers"),
        tag("empty", ""),
        tag("Ünïcode 1", "a:b/c=d+e-f@g"),
    ];
    assert_valid(&b);
    b.tags = vec![tag("", "x")];
    assert_only(&b, "tags.1.member.key", Constraint::MinLength(1));
    b.tags = vec![tag(&"k".repeat(129), "x")];
    assert_only(&b, "tags.1.member.key", Constraint::MaxLength(128));
    b.tags = vec![tag("a*b", "x")];
    assert_only(&b, "tags.1.member.key", pattern.clone());
    b.tags = vec![tag("k", &"v".repeat(257))];
    assert_only(&b, "tags.1.member.value", Constraint::MaxLength(256));
    b.tags = vec![tag("k", "x!y")];
    assert_only(&b, "tags.1.member.value", pattern);
    b.tags = (0..1000).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert_valid(&b);
    b.tags.push(tag("k1000", "v"));
    assert_only(&b, "tags", Constraint::MaxLength(1000));
}

#[test]
fn patch_groups_member() {
    let mut b = al2();
    b.patch_groups = vec!["Production".into(), "web servers".into()];
    assert_valid(&b);
    b.patch_groups.push("bad*group".into());
    assert_only(
        &b,
        "patchGroups.3.member",
        Constraint::Pattern(r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"),
    );
}

#[test]
fn something_must_be_approved() {
    let mut b = al2();
    b.approval_rules.patch_rules.clear();
    assert_only(&b, "approvalRules", Constraint::NothingApproved);
    b.approved_patches.push("openssl".into());
    b.approved_patches_enable_non_security = true;
    assert_valid(&b);
}

#[test]
fn windows_and_macos_are_stored_with_a_warning() {
    // What `aws ssm create-patch-baseline --name N --approved-patches KB…`
    // makes: valid, judging no node Patchfleet manages.
    for os in [Os::Windows, Os::Macos] {
        let mut b = Baseline::new("other-os", os);
        b.approved_patches.push("KB5031356".into());
        assert_valid(&b);
        let w = b.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "operatingSystem");
        assert!(w[0].message.contains("judges no node"), "{}", w[0].message);
    }
    // Every Linux OS is judged, without that warning.
    for os in Os::ALL
        .into_iter()
        .filter(|os| !matches!(os, Os::Windows | Os::Macos))
    {
        let mut b = Baseline::new("linux-os", os);
        b.approved_patches.push("x".into());
        b.approved_patches_enable_non_security = true;
        assert_valid(&b);
        assert!(b.warnings().iter().all(|w| w.path != "operatingSystem"));
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = r#"{
        "Name": "x",
        "OperatingSystem": "AMAZON_LINUX_2",
        "GlobalFilters": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required"]}]},
        "ApprovalRules": {"PatchRules": [
            {"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]}},
            {"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": 400, "ApproveUntilDate": "2024-02-30"}
        ]}
    }"#;
    let e = Baseline::from_json(text).unwrap().validate().unwrap_err();
    let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "name",
            "globalFilters.patchFilters.1.member.key",
            "approvalRules.patchRules.1.member.approveAfterDays",
            "approvalRules.patchRules.2.member.approveAfterDays",
            "approvalRules.patchRules.2.member.approveUntilDate",
            "approvalRules.patchRules.2.member.approveUntilDate",
        ]
    );
    assert!(
        e.to_string().starts_with("6 validation errors detected: "),
        "{e}"
    );
}

#[test]
fn predefined_baselines_have_no_warnings() {
    for b in predefined::all() {
        assert_eq!(b.warnings(), vec![], "{}", b.name_or_empty());
    }
}

fn kinds(b: &Baseline) -> Vec<(String, WarningKind)> {
    b.warnings().into_iter().map(|w| (w.path, w.kind)).collect()
}

#[test]
fn warning_non_security_with_concrete_classification() {
    let mut b = al2();
    rule0(&mut b).enable_non_security = true;
    assert_eq!(
        kinds(&b),
        [(
            format!("{RULE0}.enableNonSecurity"),
            WarningKind::NonSecurityBlockedByFilter
        )]
    );
    assert!(b.warnings()[0].message.contains("CLASSIFICATION=[*]"));
    // `*` is what makes non-security updates reachable.
    rule0(&mut b).patch_filter_group.patch_filters = vec![filter(K::Classification, &["*"])];
    assert_eq!(kinds(&b), []);
    // Concrete global filters block them just as well.
    b.global_filters.patch_filters = vec![filter(K::Severity, &["Critical"])];
    assert_eq!(kinds(&b).len(), 1);
    assert!(b.warnings()[0].message.contains("the global filters"));
    // SUSE patches always carry metadata: no warning there.
    let mut s = al2();
    s.operating_system = Os::Suse;
    rule0(&mut s).enable_non_security = true;
    assert_eq!(kinds(&s), []);
}

#[test]
fn warning_approved_patches_security_only_on_rpm() {
    let mut b = al2();
    b.approved_patches.push("htop".into());
    assert_eq!(
        kinds(&b),
        [(
            "approvedPatchesEnableNonSecurity".to_string(),
            WarningKind::ApprovedPatchesSecurityOnly
        )]
    );
    b.approved_patches_enable_non_security = true;
    assert_eq!(kinds(&b), []);
    let mut u = ubuntu();
    u.approved_patches.push("htop".into());
    assert_eq!(kinds(&u), []);
}

#[test]
fn warning_apt_approval_delay() {
    let mut u = ubuntu();
    assert_eq!(kinds(&u), []);
    rule0(&mut u).approve_after_days = Some(7);
    rule0(&mut u).approve_until_date = Some("2024-01-01".into());
    assert_eq!(
        kinds(&u),
        [
            (
                format!("{RULE0}.approveAfterDays"),
                WarningKind::AptApprovalDelay
            ),
            (
                format!("{RULE0}.approveUntilDate"),
                WarningKind::AptApprovalDelay
            ),
        ]
    );
    assert!(u.warnings()[0].message.contains("first-seen"));
    // Not a warning elsewhere: the delay is how RPM rules work.
    assert_eq!(kinds(&al2()), []);
}

#[test]
fn warning_priority_extra() {
    let mut u = ubuntu();
    rule0(&mut u).patch_filter_group.patch_filters =
        vec![filter(K::Priority, &["Required", "Extra"])];
    assert_eq!(
        kinds(&u),
        [(
            format!("{RULE0}.patchFilterGroup.patchFilters.1.member.values"),
            WarningKind::PriorityExtraIsOptional
        )]
    );
    rule0(&mut u).patch_filter_group.patch_filters =
        vec![filter(K::Priority, &["Required", "Extra", "Optional"])];
    assert_eq!(kinds(&u), []);
    u.global_filters.patch_filters = vec![filter(K::Priority, &["extra"])];
    assert_eq!(
        kinds(&u),
        [(
            "globalFilters.patchFilters.1.member.values".to_string(),
            WarningKind::PriorityExtraIsOptional
        )]
    );
}
