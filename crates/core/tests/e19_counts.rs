//! Spec §10 E19: one scan yields 3 Installed, 40 InstalledOther, 1
//! InstalledRejected (BLOCK), 2 Missing (one Security/CRITICAL, one
//! Bugfix/LOW) and 500 NotApplicable; every summary count follows.

use patchfleet_core::baseline::{Baseline, PatchAction, PatchFilter, PatchFilterKey, PatchRule};
use patchfleet_core::compliance::{ComplianceLevel, ComplianceStatus};
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::facts::{
    AvailablePackage, FACTS_FORMAT, InstalledPackage, NodeFacts, NoticePackage, OsFacts,
    UpdateNotice,
};
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::OperatingSystem;

fn installed(name: &str, version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        arch: "x86_64".into(),
        version: version.into(),
        installed_time: None,
        source: None,
    }
}

fn available(name: &str, version: &str) -> AvailablePackage {
    AvailablePackage {
        name: name.into(),
        arch: "x86_64".into(),
        version: version.into(),
        repository: Some("baseos".into()),
        origins: vec![],
        priority: None,
        section: None,
        build_time: None,
        first_seen: None,
    }
}

fn notice(id: &str, kind: &str, severity: &str, packages: &[(&str, &str)]) -> UpdateNotice {
    UpdateNotice {
        id: id.into(),
        kind: kind.into(),
        severity: Some(severity.into()),
        title: None,
        issued: Some("2025-01-01".into()),
        updated: None,
        cves: vec![format!("CVE-2025-{id}")],
        bugzilla: vec![],
        reboot_suggested: false,
        repository: None,
        packages: packages
            .iter()
            .map(|(n, v)| NoticePackage {
                name: (*n).into(),
                arch: "x86_64".into(),
                version: (*v).into(),
            })
            .collect(),
    }
}

#[test]
fn e19_counting_example() {
    let mut facts = NodeFacts {
        format: FACTS_FORMAT.into(),
        os: OsFacts {
            operating_system: OperatingSystem::RedhatEnterpriseLinux,
            product: "RedhatEnterpriseLinux9.4".into(),
            package_manager: None,
        },
        installed: vec![],
        available: vec![],
        notices: vec![],
        boot_time: None,
        reboot_state: None,
        running_kernel: None,
        reboot_required: Vec::new(),
    };
    // 3 Installed: the installed version is an approved bugfix.
    for i in 0..3 {
        let name = format!("current{i}");
        facts.installed.push(installed(&name, "1.0-1.el9"));
        facts.available.push(available(&name, "1.0-1.el9"));
        facts.notices.push(notice(
            &format!("1{i}"),
            "bugfix",
            "Low",
            &[(&name, "1.0-1.el9")],
        ));
    }
    // 40 InstalledOther: updates without notices.
    for i in 0..40 {
        let name = format!("other{i}");
        facts.installed.push(installed(&name, "1.0-1.el9"));
        facts.available.push(available(&name, "1.1-1.el9"));
    }
    // 1 InstalledRejected.
    facts.installed.push(installed("telnet", "0.17-76.el9"));
    // 2 Missing.
    facts.installed.push(installed("openssl", "3.0.7-1.el9"));
    facts.available.push(available("openssl", "3.0.7-2.el9"));
    facts.notices.push(notice(
        "20",
        "security",
        "Critical",
        &[("openssl", "3.0.7-2.el9")],
    ));
    facts.installed.push(installed("tzdata", "2024a-1.el9"));
    facts.available.push(available("tzdata", "2025a-1.el9"));
    facts
        .notices
        .push(notice("21", "bugfix", "Low", &[("tzdata", "2025a-1.el9")]));
    // 500 NotApplicable: approved bugfixes of packages that are not installed.
    let mut absent = Vec::new();
    for i in 0..500 {
        let name = format!("absent{i:03}");
        facts.available.push(available(&name, "2.0-1.el9"));
        absent.push(name);
    }
    let absent_refs: Vec<(&str, &str)> = absent.iter().map(|n| (n.as_str(), "2.0-1.el9")).collect();
    facts
        .notices
        .push(notice("30", "bugfix", "Low", &absent_refs));

    let mut baseline = Baseline::new("e19", OperatingSystem::RedhatEnterpriseLinux);
    baseline.approval_rules.patch_rules = vec![
        PatchRule::new(vec![PatchFilter::new(
            PatchFilterKey::Classification,
            ["Security"],
        )])
        .approve_after_days(0)
        .compliance_level(ComplianceLevel::Critical),
        PatchRule::new(vec![PatchFilter::new(
            PatchFilterKey::Classification,
            ["Bugfix"],
        )])
        .approve_after_days(0)
        .compliance_level(ComplianceLevel::Low),
    ];
    baseline.rejected_patches = vec!["telnet".into()];
    baseline.rejected_patches_action = PatchAction::Block;

    let compiled = CompiledBaseline::compile(&baseline).unwrap();
    let inventory = Inventory::prepare(&facts).unwrap();
    let e = evaluate(&compiled, &inventory, &EvalOptions::scan_at(1_740_000_000));
    let c = e.counts;
    assert_eq!(
        (
            c.installed,
            c.installed_other,
            c.installed_rejected,
            c.missing,
            c.failed
        ),
        (3, 40, 1, 2, 0)
    );
    assert_eq!((c.installed_pending_reboot, c.not_applicable), (0, 500));
    assert_eq!(
        (
            c.critical_non_compliant,
            c.security_non_compliant,
            c.other_non_compliant
        ),
        (1, 1, 2)
    );
    assert_eq!(e.status, ComplianceStatus::NonCompliant);
    assert_eq!(e.overall_severity, Some(ComplianceLevel::Critical));
    assert_eq!(
        e.verdicts.len(),
        46,
        "NotApplicable is counted, never listed"
    );
}
