//! The zypper scan against a real test bed (testbeds.md C): the rpm-md
//! repository of `testbed/make-rpm-repo.sh` (two notices: TBSA-2023:0001
//! security/Important for tb-kernel, reboot suggested; TBBA-2023:0002 bugfix
//! for tb-tool) added to a SLES 15 SP5 root by the real zypper
//! (`testbed/zypper/make-zypper-root.sh`: `zypper --root`, refresh, v1
//! installed). Everything lives in a temp folder; the host's zypper state
//! (`/run/zypp.pid`, `/var/log/zypper.log`, `/var/lib/rpm`,
//! `/var/cache/zypp`, `/etc/zypp/repos.d`) is compared before and after.
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::Timestamp;
use patchfleet_core::baseline::{Baseline, predefined};
use patchfleet_core::compliance::PatchState;
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::facts::{NodeFacts, RebootSource};
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::{OperatingSystem, PackageManager};
use patchfleet_core::release_date::parse_notice_date;
use patchfleet_pkg::backend::{ScanRequest, for_root};
use patchfleet_pkg::zypper::{self, ZypperRoot, ZypperScanError, ZypperScanOptions, scan_with};
mod common;

use common::{TempDir, build_zypper_testbed, snapshot_tree, tree_changes, zypper_host_state};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

fn baseline(classifications: &str) -> Baseline {
    Baseline::from_yaml(&format!(
        "Name: tb-{}\n\
         OperatingSystem: SUSE\n\
         ApprovalRules:\n  PatchRules:\n\
         \x20   - PatchFilterGroup:\n        PatchFilters:\n\
         \x20         - {{Key: CLASSIFICATION, Values: [{classifications}]}}\n\
         \x20     ApproveAfterDays: 0\n",
        classifications.to_lowercase()
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn states(baseline: &Baseline, facts: &NodeFacts, at: i64) -> BTreeMap<String, PatchState> {
    let compiled = CompiledBaseline::compile(baseline).unwrap_or_else(|e| panic!("{e}"));
    let inv = Inventory::prepare(facts).unwrap_or_else(|e| panic!("{e}"));
    let ev = evaluate(&compiled, &inv, &EvalOptions::scan_at(at));
    ev.verdicts
        .iter()
        .map(|v| (inv.groups[v.group as usize].name.clone(), v.state))
        .collect()
}

fn state(list: &[(&str, PatchState)]) -> BTreeMap<String, PatchState> {
    list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

/// `zypper --xmlout list-patches --all` on the root (after the read-only
/// checks: any zypper command writes its lock into the root).
fn list_patches(root: &ZypperRoot) -> Vec<patchfleet_core::facts::UpdateNotice> {
    let spec = root.zypper(zypper::LIST_PATCHES_ARGS);
    let out = patchfleet_pkg::runner::Runner::default()
        .run_ok(&spec)
        .unwrap_or_else(|e| panic!("{e}"));
    zypper::parse_list_patches(&out.command, &out.stdout.head).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn scan_of_the_zypper_testbed() {
    let host_before = zypper_host_state();
    let tmp = TempDir::new("zypper-scan");
    let (root, build) = build_zypper_testbed(&tmp.0);
    let root_before = snapshot_tree(&root.dir);
    let boot = Timestamp::from_second(Timestamp::now().as_second() + 1).unwrap();
    let opts = ZypperScanOptions {
        boot_time: Some(boot),
        ..ZypperScanOptions::default()
    };
    let scanned = scan_with(&root, &opts).unwrap_or_else(|e| panic!("{e}"));
    let changed = tree_changes(&root_before, &snapshot_tree(&root.dir));
    assert!(
        changed.is_empty(),
        "the scan changed files of the root: {changed:#?}"
    );
    eprintln!(
        "test bed built in {build:?}; scanned in {:?}",
        scanned.elapsed
    );
    assert!(scanned.warnings.is_empty(), "{:#?}", scanned.warnings);
    // The disabled repository `off` is not read.
    assert_eq!(scanned.repositories.len(), 1, "{:#?}", scanned.repositories);
    let repo = &scanned.repositories[0];
    assert_eq!(repo.id, "tb");
    assert_eq!(repo.revision.as_deref(), Some("1700000000"));
    assert_eq!((repo.versions, repo.notices), (6, 2));
    assert_eq!(repo.cache_dir, root.dir.join("var/cache/zypp/raw/tb"));
    assert_eq!(repo.defined_in, root.dir.join("etc/zypp/repos.d/tb.repo"));

    let facts = &scanned.facts;
    assert_eq!(facts.os.operating_system, OperatingSystem::Suse);
    assert_eq!(facts.os.product, "Suse15.5");
    assert_eq!(facts.os.package_manager, Some(PackageManager::Zypper));
    assert_eq!(facts.boot_time, Some(boot));
    assert!(
        facts.reboot_required.is_empty(),
        "{:?}",
        facts.reboot_required
    );

    // Installed: v1 of the three, by zypper during this run, with sources.
    let mut installed: Vec<(&str, &str, &str)> = facts
        .installed
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.arch.as_str()))
        .collect();
    installed.sort();
    assert_eq!(
        installed,
        [
            ("tb-hello", "1.0-1", "noarch"),
            ("tb-kernel", "1.0-1", "noarch"),
            ("tb-tool", "1:2.0-1", "noarch"),
        ]
    );
    let now = Timestamp::now();
    for p in &facts.installed {
        let t = p.installed_time.expect("an install time");
        assert!(now.duration_since(t) < jiff::SignedDuration::from_secs(600));
        assert_eq!(p.source.as_deref(), Some(p.name.as_str()));
    }

    // Available: the repository's six versions, repository = alias.
    let mut available: Vec<(&str, &str)> = facts
        .available
        .iter()
        .map(|a| {
            assert_eq!(a.repository.as_deref(), Some("tb"));
            (a.name.as_str(), a.version.as_str())
        })
        .collect();
    available.sort();
    assert_eq!(
        available,
        [
            ("tb-hello", "1.0-1"),
            ("tb-hello", "1.1-1"),
            ("tb-kernel", "1.0-1"),
            ("tb-kernel", "1.1-1"),
            ("tb-tool", "1:2.0-1"),
            ("tb-tool", "1:2.1-1"),
        ]
    );

    // The patches, with what list-patches cannot give: their packages and
    // the issued date.
    let ids: Vec<&str> = facts.notices.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["TBSA-2023:0001", "TBBA-2023:0002"]);
    let sec = &facts.notices[0];
    assert_eq!(sec.kind, "security");
    assert_eq!(sec.severity.as_deref(), Some("Important"));
    assert_eq!(
        sec.title.as_deref(),
        Some("Important: tb-kernel security update")
    );
    assert_eq!(sec.cves, ["CVE-2023-0001"]);
    assert_eq!(sec.bugzilla, ["1001"]);
    assert!(sec.reboot_suggested);
    assert_eq!(sec.issued.as_deref(), Some("2023-11-14 00:00:00"));
    assert_eq!(sec.updated.as_deref(), Some("2023-11-15 12:30:00"));
    assert_eq!(sec.repository.as_deref(), Some("tb"));
    let pk: Vec<(&str, &str, &str)> = sec
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.arch.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(pk, [("tb-kernel", "noarch", "1.1-1")]);
    let bug = &facts.notices[1];
    assert_eq!(bug.kind, "bugfix");
    assert_eq!(bug.severity, None);
    assert!(!bug.reboot_suggested && bug.cves.is_empty());
    assert_eq!(bug.bugzilla, ["1002"]);
    assert_eq!(bug.issued.as_deref(), Some("2023-11-14 00:00:00"));
    let pk: Vec<(&str, &str)> = bug
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(pk, [("tb-tool", "1:2.1-1")]);

    let back = NodeFacts::from_json(&facts.to_json_pretty()).unwrap();
    assert_eq!(&back, facts);

    // Classification: security vs recommended (bugfix folded into it).
    let at = now.as_second() + 2;
    assert_eq!(
        states(&baseline("Security"), facts, at),
        state(&[
            ("tb-hello", PatchState::InstalledOther),
            ("tb-kernel", PatchState::Missing),
            ("tb-tool", PatchState::InstalledOther),
        ])
    );
    assert_eq!(
        states(&baseline("Recommended"), facts, at),
        state(&[
            ("tb-hello", PatchState::InstalledOther),
            ("tb-kernel", PatchState::InstalledOther),
            ("tb-tool", PatchState::Missing),
        ])
    );
    let suse = predefined::by_name("AWS-SuseDefaultPatchBaseline").unwrap();
    assert_eq!(
        states(suse, facts, at),
        state(&[
            ("tb-hello", PatchState::InstalledOther),
            ("tb-kernel", PatchState::Missing),
            ("tb-tool", PatchState::InstalledOther),
        ])
    );

    // The same through the backend the agent picks for SUSE (without the
    // test bed's HOME: the rpm query names the database itself).
    let backend = for_root(&root.dir, OperatingSystem::Suse).unwrap();
    assert_eq!(backend.name(), "zypper");
    let b = backend
        .scan(&ScanRequest {
            boot_time: Some(boot),
            ..ScanRequest::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&b.facts, facts);

    // Cross-check with zypper's own view of the patches.
    let lp = list_patches(&root);
    assert_eq!(lp.len(), facts.notices.len());
    for z in &lp {
        let n = facts.notices.iter().find(|n| n.id == z.id).unwrap();
        assert_eq!(z.kind, n.kind, "{}", z.id);
        assert_eq!(
            z.severity,
            n.severity.as_ref().map(|s| s.to_lowercase()),
            "{}",
            z.id
        );
        assert_eq!(z.reboot_suggested, n.reboot_suggested, "{}", z.id);
        assert_eq!(z.cves, n.cves, "{}", z.id);
        assert_eq!(z.bugzilla, n.bugzilla, "{}", z.id);
        assert_eq!(z.title, n.title, "{}", z.id);
        // zypper's issue-date is the updated date.
        assert_eq!(
            parse_notice_date(z.updated.as_deref().unwrap()),
            parse_notice_date(n.updated.as_deref().unwrap()),
            "{}",
            z.id
        );
    }

    // libzypp's reboot flag (after a needreboot package) is evidence.
    std::fs::write(root.dir.join("run/reboot-needed"), "").unwrap();
    let flagged = scan_with(&root, &opts).unwrap();
    let ev = &flagged.facts.reboot_required;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].source, RebootSource::PackageManager);
    assert!(ev[0].detail.contains("run/reboot-needed"), "{ev:?}");
    std::fs::remove_file(root.dir.join("run/reboot-needed")).unwrap();

    // A refresh runs `zypper refresh` in the root only and reads the same.
    let t = Instant::now();
    let refreshed = scan_with(
        &root,
        &ZypperScanOptions {
            refresh: true,
            ..opts.clone()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("scan with refresh: {:?}", t.elapsed());
    assert!(refreshed.warnings.is_empty(), "{:#?}", refreshed.warnings);
    assert_eq!(&refreshed.facts, facts);

    drop(tmp);
    assert!(
        zypper_host_state() == host_before,
        "the host's zypper state (/run/zypp.pid, /var/log/zypper.log, /var/lib/rpm, \
         /var/cache/zypp, /etc/zypp/repos.d) changed"
    );
}

#[test]
fn broken_repositories_are_warnings() {
    let host_before = zypper_host_state();
    let tmp = TempDir::new("zypper-scan-broken");
    let (root, _) = build_zypper_testbed(&tmp.0);
    let raw = root.dir.join("var/cache/zypp/raw");
    let copy = |alias: &str| -> PathBuf {
        let to = raw.join(alias).join("repodata");
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(raw.join("tb/repodata"))
            .unwrap()
            .flatten()
        {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };
    let find = |dir: &std::path::Path, suffix: &str| -> PathBuf {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap()
    };
    // badui: updateinfo garbage (its packages stay); badprimary: primary
    // truncated; broken: repomd.xml is not XML; nocache: never refreshed;
    // tags: a SUSE tags (yast2) repository, whose cache has no repodata.
    let ui = copy("badui");
    std::fs::write(find(&ui, "-updateinfo.xml.xz"), b"\xfd7zXZ\0garbage").unwrap();
    let pr = copy("badprimary");
    let primary = find(&pr, "-primary.xml.gz");
    let bytes = std::fs::read(&primary).unwrap();
    std::fs::write(&primary, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::create_dir_all(raw.join("broken/repodata")).unwrap();
    std::fs::write(raw.join("broken/repodata/repomd.xml"), "<repomd><data").unwrap();
    std::fs::create_dir_all(raw.join("tags")).unwrap();
    std::fs::write(raw.join("tags/content"), "PRODUCT SLES\n").unwrap();
    let mut repos = String::new();
    for alias in ["badui", "badprimary", "broken", "nocache", "tags"] {
        repos.push_str(&format!(
            "[{alias}]\nenabled=1\nbaseurl=file:///nonexistent/{alias}\n\n"
        ));
    }
    std::fs::write(root.dir.join("etc/zypp/repos.d/more.repo"), repos).unwrap();

    let s = scan_with(&root, &ZypperScanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.facts.installed.len(), 3);
    let ids: Vec<&str> = s.repositories.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["badui", "tb"]);
    assert_eq!(s.facts.available.len(), 12);
    assert_eq!(s.facts.notices.len(), 2);
    assert!(
        s.facts
            .notices
            .iter()
            .all(|n| n.repository.as_deref() == Some("tb"))
    );
    assert_eq!(s.warnings.len(), 5, "{:#?}", s.warnings);
    for (alias, what) in [
        ("badui", "notices skipped"),
        ("badprimary", "primary.xml.gz"),
        ("broken", "repomd.xml"),
        ("nocache", "no cached metadata"),
        ("tags", "SUSE tags"),
    ] {
        assert!(
            s.warnings
                .iter()
                .any(|w| w.starts_with(&format!("repository {alias}: ")) && w.contains(what)),
            "{alias}: {:#?}",
            s.warnings
        );
    }

    // A refresh that fails (those repositories do not exist) is a warning;
    // the cached metadata is still read.
    let r = scan_with(
        &root,
        &ZypperScanOptions {
            refresh: true,
            ..ZypperScanOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.warnings[0].starts_with("zypper refresh failed"),
        "{:#?}",
        r.warnings
    );
    assert_eq!(r.facts.available.len(), 12);

    drop(tmp);
    assert!(
        zypper_host_state() == host_before,
        "the host's zypper state changed"
    );
}

#[test]
fn non_suse_systems_and_missing_databases_are_errors() {
    let tmp = TempDir::new("zypper-scan-os");
    std::fs::create_dir_all(tmp.0.join("etc")).unwrap();
    std::fs::write(
        tmp.0.join("etc/os-release"),
        "ID=\"rhel\"\nVERSION_ID=\"9.3\"\n",
    )
    .unwrap();
    let root = ZypperRoot::at(&tmp.0);
    let e = scan_with(&root, &ZypperScanOptions::default()).unwrap_err();
    assert!(matches!(e, ZypperScanError::NotZypper { .. }), "{e}");
    assert!(e.to_string().contains("RedhatEnterpriseLinux9.3"), "{e}");

    // A SUSE root without an rpm database: refused, and none created.
    std::fs::write(
        tmp.0.join("etc/os-release"),
        "ID=\"sles\"\nVERSION_ID=\"15.5\"\n",
    )
    .unwrap();
    let e = scan_with(&root, &ZypperScanOptions::default()).unwrap_err();
    assert!(e.to_string().contains("no rpm database"), "{e}");
    assert!(
        !tmp.0.join("var/lib/rpm").exists(),
        "the scan created a database"
    );
}
