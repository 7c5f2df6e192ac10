//! The predefined baselines: valid data, stable ids, the rule encodings of
//! spec §6.1, and the lookups.

use patchfleet_core::baseline::{Baseline, PatchAction, PatchFilter, PatchFilterKey, predefined};
use patchfleet_core::compliance::ComplianceLevel;
use patchfleet_core::os::{Family, OperatingSystem};

use OperatingSystem as Os;
use PatchFilterKey as K;

/// Changing an id breaks every installation that registered it: these are
/// pinned on purpose.
const IDS: &[(&str, Os, &str)] = &[
    (
        "AWS-AmazonLinuxDefaultPatchBaseline",
        Os::AmazonLinux,
        "pb-d833d87d8f155b4e3",
    ),
    (
        "AWS-AmazonLinux2DefaultPatchBaseline",
        Os::AmazonLinux2,
        "pb-5151d2f02945a612d",
    ),
    (
        "AWS-AmazonLinux2022DefaultPatchBaseline",
        Os::AmazonLinux2022,
        "pb-69efbe80f35abaac9",
    ),
    (
        "AWS-AmazonLinux2023DefaultPatchBaseline",
        Os::AmazonLinux2023,
        "pb-a07d482287968ab7b",
    ),
    (
        "AWS-RedHatDefaultPatchBaseline",
        Os::RedhatEnterpriseLinux,
        "pb-d5ca5b8f1de4f2635",
    ),
    (
        "AWS-RockyLinuxDefaultPatchBaseline",
        Os::RockyLinux,
        "pb-110d348ebbb658c8f",
    ),
    (
        "AWS-AlmaLinuxDefaultPatchBaseline",
        Os::AlmaLinux,
        "pb-c443bb9f0001180dd",
    ),
    (
        "AWS-OracleLinuxDefaultPatchBaseline",
        Os::OracleLinux,
        "pb-dd4cda00147e3b976",
    ),
    (
        "AWS-CentOSDefaultPatchBaseline",
        Os::Centos,
        "pb-61c2f79a91cd26db0",
    ),
    (
        "AWS-SuseDefaultPatchBaseline",
        Os::Suse,
        "pb-8393e7f7d436197f4",
    ),
    (
        "AWS-UbuntuDefaultPatchBaseline",
        Os::Ubuntu,
        "pb-fbf2e4310777262db",
    ),
    (
        "AWS-DebianDefaultPatchBaseline",
        Os::Debian,
        "pb-75b114c507d400ec2",
    ),
    (
        "AWS-DefaultRaspbianPatchBaseline",
        Os::Raspbian,
        "pb-1ba2fb3fbd5b7a978",
    ),
];

fn filters(b: &Baseline, rule: usize) -> &[PatchFilter] {
    &b.rules()[rule].patch_filter_group.patch_filters
}

fn f(key: K, values: &[&str]) -> PatchFilter {
    PatchFilter::new(key, values.iter().copied())
}

#[test]
fn all_are_valid_and_pinned() {
    let all = predefined::all();
    assert_eq!(all.len(), IDS.len());
    for (b, (name, os, id)) in all.iter().zip(IDS) {
        assert_eq!(b.name.as_deref(), Some(*name));
        assert_eq!(b.operating_system, *os, "{name}");
        assert_eq!(b.baseline_id.as_deref(), Some(*id), "{name}");
        assert_eq!(b.validate(), Ok(()), "{name}");
        let hex = &id[3..];
        assert!(
            hex.len() == 17 && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{id}"
        );
        // Common settings of every predefined baseline (spec §6.1).
        assert!(b.approved_patches.is_empty() && b.rejected_patches.is_empty());
        assert_eq!(b.rejected_patches_action, PatchAction::AllowAsDependency);
        assert!(b.sources.is_empty());
        assert!(b.description.is_some());
        for rule in b.rules() {
            assert_eq!(
                rule.compliance_level,
                ComplianceLevel::Unspecified,
                "{name}"
            );
        }
    }
    // One per Linux OS, none for the others.
    for os in Os::ALL {
        let n = all.iter().filter(|b| b.operating_system == os).count();
        let expected = usize::from(os.family() != Family::Unsupported);
        assert_eq!(n, expected, "{os}");
    }
}

#[test]
fn parsed_once() {
    assert!(std::ptr::eq(predefined::all(), predefined::all()));
}

#[test]
fn amazon_and_red_hat_like_rules() {
    for os in [
        Os::AmazonLinux,
        Os::AmazonLinux2,
        Os::AmazonLinux2022,
        Os::AmazonLinux2023,
        Os::RedhatEnterpriseLinux,
        Os::RockyLinux,
        Os::AlmaLinux,
    ] {
        let b = predefined::default_for(os).unwrap();
        assert_eq!(b.rules().len(), 2, "{os}");
        assert_eq!(
            filters(b, 0),
            [
                f(K::Classification, &["Security"]),
                f(K::Severity, &["Critical", "Important"])
            ],
            "{os}"
        );
        assert_eq!(filters(b, 1), [f(K::Classification, &["Bugfix"])], "{os}");
        for rule in b.rules() {
            assert_eq!(rule.approve_after_days, Some(7));
            assert!(!rule.enable_non_security);
        }
    }
    let al2 = predefined::default_for(Os::AmazonLinux2).unwrap();
    assert_eq!(
        al2.description.as_deref(),
        Some(
            "Baseline containing all Security and Bugfix updates approved for Amazon Linux 2 instances"
        )
    );
}

#[test]
fn oracle_severities() {
    let b = predefined::default_for(Os::OracleLinux).unwrap();
    assert_eq!(
        filters(b, 0),
        [
            f(K::Classification, &["Security"]),
            f(K::Severity, &["Important", "Moderate"])
        ]
    );
    assert_eq!(filters(b, 1), [f(K::Classification, &["Bugfix"])]);
}

#[test]
fn centos_approves_everything_after_seven_days() {
    let b = predefined::default_for(Os::Centos).unwrap();
    assert_eq!(b.rules().len(), 1);
    let rule = &b.rules()[0];
    assert!(rule.enable_non_security);
    assert_eq!(rule.approve_after_days, Some(7));
    // `*` also matches updates without an advisory, which CentOS's default
    // repositories are made of.
    assert_eq!(filters(b, 0), [f(K::Classification, &["*"])]);
    assert!(filters(b, 0)[0].is_wildcard());
}

#[test]
fn suse_security_critical_important() {
    let b = predefined::default_for(Os::Suse).unwrap();
    assert_eq!(b.rules().len(), 1);
    assert_eq!(
        filters(b, 0),
        [
            f(K::Classification, &["Security"]),
            f(K::Severity, &["Critical", "Important"])
        ]
    );
    assert_eq!(b.rules()[0].approve_after_days, Some(7));
}

#[test]
fn apt_baselines_approve_immediately() {
    for os in [Os::Ubuntu, Os::Debian, Os::Raspbian] {
        let b = predefined::default_for(os).unwrap();
        assert_eq!(
            b.global_filters.patch_filters,
            [f(K::Product, &["*"])],
            "{os}"
        );
        assert_eq!(b.rules().len(), 1);
        let rule = &b.rules()[0];
        assert_eq!(
            filters(b, 0),
            [f(
                K::Priority,
                &["Required", "Important", "Standard", "Optional", "Extra"]
            )]
        );
        assert!(!rule.enable_non_security, "security only");
        // No delay at all, so that approval stays immediate even for nodes
        // that report first-seen dates.
        assert_eq!(rule.approve_after_days, None, "{os}");
        assert_eq!(rule.approve_until_date, None, "{os}");
    }
    assert_eq!(
        predefined::default_for(Os::Ubuntu)
            .unwrap()
            .description
            .as_deref(),
        Some("Default Patch Baseline for Ubuntu Provided by AWS.")
    );
}

#[test]
fn lookups() {
    let ubuntu = predefined::by_name("AWS-UbuntuDefaultPatchBaseline").unwrap();
    assert_eq!(ubuntu.operating_system, Os::Ubuntu);
    assert!(std::ptr::eq(
        predefined::by_id_or_name("pb-fbf2e4310777262db").unwrap(),
        ubuntu
    ));
    assert!(std::ptr::eq(
        predefined::by_id_or_name("AWS-UbuntuDefaultPatchBaseline").unwrap(),
        ubuntu
    ));
    assert!(std::ptr::eq(
        predefined::by_id_or_name(
            "arn:aws:ssm:eu-west-1:123456789012:patchbaseline/pb-fbf2e4310777262db"
        )
        .unwrap(),
        ubuntu
    ));
    assert!(predefined::by_id_or_name("pb-0000000000000000x").is_none());
    assert!(predefined::by_id_or_name("aws-ubuntudefaultpatchbaseline").is_none());
    assert!(predefined::by_name("pb-fbf2e4310777262db").is_none());
    assert!(predefined::default_for(Os::Windows).is_none());
    assert!(predefined::default_for(Os::Macos).is_none());

    assert!(predefined::is_predefined("pb-5151d2f02945a612d"));
    assert!(predefined::is_predefined(
        "arn:aws-cn:ssm:cn-north-1:123456789012:patchbaseline/pb-5151d2f02945a612d"
    ));
    assert!(!predefined::is_predefined("pb-0123456789abcdef0"));
    assert!(!predefined::is_predefined(
        "AWS-AmazonLinux2DefaultPatchBaseline"
    ));
}

#[test]
fn data_files_are_canonical() {
    // The data is written in the exact form we serialise, so a diff of a
    // data file is a diff of the baseline.
    for b in predefined::all() {
        let again = Baseline::from_json(&b.to_json_pretty()).unwrap();
        assert_eq!(&again, b);
    }
}
