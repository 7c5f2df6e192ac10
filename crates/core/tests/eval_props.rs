//! Properties of evaluation: deterministic, and independent of the order in
//! which facts list packages, versions, notices and notice entries.

use patchfleet_core::baseline::{Baseline, PatchAction, PatchFilter, PatchFilterKey, PatchRule};
use patchfleet_core::compliance::ComplianceLevel;
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::facts::{
    AptOrigin, AvailablePackage, FACTS_FORMAT, InstalledPackage, NodeFacts, NoticePackage, OsFacts,
    UpdateNotice,
};
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::report::{Report, ReportContext, render};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Pkg {
    installed: Option<u8>,
    versions: Vec<u8>,
    notice_of: Vec<Option<u8>>,
}

fn rpm_version(v: u8) -> String {
    format!("1.{}-{}.el9", v / 4, v % 4)
}

fn deb_version(v: u8) -> String {
    format!("1.{}-{}", v / 4, v % 4)
}

/// The same version written differently (a leading zero): equal to the
/// first spelling for both dpkg and rpm, but with other identity strings.
fn respelled(version: &str) -> String {
    version.replacen("1.", "1.0", 1)
}

fn facts(os: OperatingSystem, pkgs: &[Pkg], boot: i64) -> NodeFacts {
    let apt = os == OperatingSystem::Debian;
    let version = |v: u8| if apt { deb_version(v) } else { rpm_version(v) };
    let arch = if apt { "amd64" } else { "x86_64" };
    let kinds = ["security", "bugfix", "enhancement"];
    let severities = ["Critical", "Important", "Moderate", "Low"];
    let mut notices: Vec<UpdateNotice> = (0..6u8)
        .map(|n| UpdateNotice {
            id: format!("ADV-{n}"),
            kind: kinds[n as usize % 3].into(),
            severity: Some(severities[n as usize % 4].into()),
            title: None,
            issued: Some(format!("2025-0{}-01", 1 + n % 6)),
            updated: None,
            cves: vec![format!("CVE-2025-{n}")],
            bugzilla: vec![],
            reboot_suggested: false,
            repository: None,
            packages: vec![],
        })
        .collect();
    let mut installed = Vec::new();
    let mut available = Vec::new();
    for (i, p) in pkgs.iter().enumerate() {
        let name = format!("pkg{i}");
        if let Some(v) = p.installed {
            installed.push(InstalledPackage {
                name: name.clone(),
                arch: arch.into(),
                version: version(v),
                installed_time: Some(
                    jiff::Timestamp::from_second(boot - 1000 + i64::from(v)).unwrap(),
                ),
                source: None,
            });
        }
        for (k, &v) in p.versions.iter().enumerate() {
            available.push(AvailablePackage {
                name: name.clone(),
                arch: arch.into(),
                version: version(v),
                repository: Some(format!("repo{}", k % 2)),
                origins: if apt {
                    vec![AptOrigin {
                        archive: Some(
                            if v % 2 == 0 {
                                "bookworm-security"
                            } else {
                                "bookworm"
                            }
                            .into(),
                        ),
                        trusted: true,
                        ..AptOrigin::default()
                    }]
                } else {
                    vec![]
                },
                priority: apt.then(|| ["optional", "important"][v as usize % 2].to_string()),
                section: None,
                build_time: Some(
                    jiff::Timestamp::from_second(1_700_000_000 + i64::from(v) * 86_400).unwrap(),
                ),
                first_seen: None,
            });
            if v % 5 == 0 {
                let mut again = available.last().unwrap().clone();
                again.version = respelled(&again.version);
                again.repository = Some("mirror".into());
                available.push(again);
            }
            if let Some(Some(n)) = p.notice_of.get(k)
                && !apt
            {
                notices[*n as usize % 6].packages.push(NoticePackage {
                    name: name.clone(),
                    arch: arch.into(),
                    version: version(v),
                });
            }
        }
    }
    NodeFacts {
        format: FACTS_FORMAT.into(),
        os: OsFacts {
            operating_system: os,
            product: if apt {
                "Debian12"
            } else {
                "RedhatEnterpriseLinux9.4"
            }
            .into(),
            package_manager: None,
        },
        installed,
        available,
        notices: if apt { vec![] } else { notices },
        boot_time: Some(jiff::Timestamp::from_second(boot).unwrap()),
        reboot_state: None,
        running_kernel: None,
        reboot_required: Vec::new(),
    }
}

fn baseline(os: OperatingSystem, choice: u8) -> Baseline {
    let mut b = Baseline::new("prop", os);
    if os == OperatingSystem::Debian {
        b.approval_rules.patch_rules.push(
            PatchRule::new(vec![PatchFilter::new(
                PatchFilterKey::Priority,
                ["Optional"],
            )])
            .enable_non_security(choice.is_multiple_of(2)),
        );
    } else {
        b.approval_rules.patch_rules.push(
            PatchRule::new(vec![PatchFilter::new(
                PatchFilterKey::Classification,
                ["Security"],
            )])
            .approve_after_days(u32::from(choice % 3) * 30)
            .compliance_level(ComplianceLevel::High),
        );
        b.approval_rules.patch_rules.push(
            PatchRule::new(vec![PatchFilter::new(
                PatchFilterKey::Severity,
                ["Critical", "Low"],
            )])
            .approve_after_days(0)
            .compliance_level(ComplianceLevel::Critical)
            .enable_non_security(choice % 2 == 1),
        );
    }
    if choice.is_multiple_of(4) {
        b.approved_patches.push("pkg1*".into());
        b.approved_patches.push("*-1.0*".into());
        b.approved_patches_enable_non_security = true;
    }
    if choice % 5 < 2 {
        b.rejected_patches.push("pkg2".into());
        b.rejected_patches.push("*-1.3-*".into());
    }
    if choice.is_multiple_of(2) {
        b.rejected_patches_action = PatchAction::Block;
    }
    b
}

fn report(b: &Baseline, f: &NodeFacts, at: i64) -> Report {
    let compiled = CompiledBaseline::compile(b).unwrap();
    let inv = Inventory::prepare(f).unwrap();
    let eval = evaluate(&compiled, &inv, &EvalOptions::scan_at(at));
    let mut r = render(&eval, &inv, &compiled, &ReportContext::default());
    // Diagnostics name facts entries by position; everything else must not move.
    r.diagnostics.clear();
    r
}

fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut s = seed | 1;
    for i in (1..items.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        items.swap(i, (s % (i as u64 + 1)) as usize);
    }
}

fn pkg() -> impl Strategy<Value = Pkg> {
    (
        proptest::option::of(0u8..16),
        proptest::collection::vec(0u8..16, 0..5),
        proptest::collection::vec(proptest::option::of(0u8..6), 0..5),
    )
        .prop_map(|(installed, mut versions, notice_of)| {
            versions.sort();
            versions.dedup();
            Pkg {
                installed,
                versions,
                notice_of,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn evaluation_ignores_input_order(
        pkgs in proptest::collection::vec(pkg(), 1..12),
        apt in any::<bool>(),
        choice in 0u8..20,
        seed in any::<u64>(),
        day in 0i64..400,
    ) {
        let os = if apt { OperatingSystem::Debian } else { OperatingSystem::RedhatEnterpriseLinux };
        let b = baseline(os, choice);
        let at = 1_735_689_600 + day * 86_400;
        let f = facts(os, &pkgs, at - 3_600);
        let first = report(&b, &f, at);
        prop_assert_eq!(&first, &report(&b, &f, at), "not deterministic");

        let mut shuffled = f.clone();
        shuffle(&mut shuffled.installed, seed);
        shuffle(&mut shuffled.available, seed.rotate_left(7));
        shuffle(&mut shuffled.notices, seed.rotate_left(13));
        for (i, n) in shuffled.notices.iter_mut().enumerate() {
            shuffle(&mut n.packages, seed.wrapping_add(i as u64));
        }
        prop_assert_eq!(&first, &report(&b, &shuffled, at), "depends on input order");
    }

    #[test]
    fn counts_add_up(
        pkgs in proptest::collection::vec(pkg(), 1..12),
        apt in any::<bool>(),
        choice in 0u8..20,
    ) {
        let os = if apt { OperatingSystem::Debian } else { OperatingSystem::RedhatEnterpriseLinux };
        let r = report(&baseline(os, choice), &facts(os, &pkgs, 1_760_000_000), 1_760_003_600);
        let s = &r.instance_patch_state;
        let installed_groups = pkgs.iter().filter(|p| p.installed.is_some()).count() as u32;
        prop_assert_eq!(
            s.installed_count + s.installed_other_count + s.installed_pending_reboot_count
                + s.installed_rejected_count + s.missing_count + s.failed_count,
            installed_groups
        );
        prop_assert_eq!(r.patches.len() as u32, installed_groups);
        let non_compliant = s.installed_pending_reboot_count + s.installed_rejected_count
            + s.missing_count + s.failed_count;
        prop_assert_eq!(r.compliance.status == "NON_COMPLIANT", non_compliant > 0);
        prop_assert!(s.other_non_compliant_count <= non_compliant);
        prop_assert!(s.critical_non_compliant_count + s.security_non_compliant_count + s.other_non_compliant_count >= non_compliant);
    }
}
