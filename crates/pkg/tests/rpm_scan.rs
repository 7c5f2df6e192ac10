//! The RPM (dnf) scan against a real test bed (testbeds.md B): six tiny
//! reproducible rpms and an rpm-md repository with updateinfo made by
//! `testbed/make-rpm-repo.sh`, and a dnf installroot made by
//! `testbed/rpm/make-dnf-root.sh` (its own `etc/dnf/dnf.conf`, reposdir and
//! cachedir inside the root, `file://` baseurl, no plugins) in which the real
//! dnf ran `makecache` and installed v1 of the three packages. Everything
//! lives in a temp folder; the host's `/var/cache/dnf` and `/var/lib/rpm`
//! are compared before and after.
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::Timestamp;
use patchfleet_core::baseline::{Baseline, predefined};
use patchfleet_core::compliance::PatchState;
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::{OperatingSystem, PackageManager};
use patchfleet_pkg::rpm::{RpmRoot, RpmScanOptions, ScanError, scan_with};
mod common;

use common::{
    TempDir, build_dnf_testbed as build_testbed, host_rpm_snapshot as host_snapshot,
    snapshot_tree as snapshot, tree_changes as changes,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn security_baseline() -> Baseline {
    Baseline::from_yaml(
        "Name: tb-security-now\n\
         OperatingSystem: REDHAT_ENTERPRISE_LINUX\n\
         ApprovalRules:\n  PatchRules:\n\
         \x20   - PatchFilterGroup:\n        PatchFilters:\n\
         \x20         - {Key: CLASSIFICATION, Values: [Security]}\n\
         \x20     ApproveAfterDays: 0\n",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn states(
    baseline: &Baseline,
    facts: &NodeFacts,
    at: i64,
) -> (BTreeMap<String, PatchState>, Vec<String>) {
    let compiled = CompiledBaseline::compile(baseline).unwrap_or_else(|e| panic!("{e}"));
    let inv = Inventory::prepare(facts).unwrap_or_else(|e| panic!("{e}"));
    let ev = evaluate(&compiled, &inv, &EvalOptions::scan_at(at));
    let states = ev
        .verdicts
        .iter()
        .map(|v| (inv.groups[v.group as usize].name.clone(), v.state))
        .collect();
    (states, ev.diagnostics)
}

#[test]
fn scan_of_the_dnf_testbed() {
    let host_before = host_snapshot();
    let tmp = TempDir::new("rpm-scan");
    let (root, build) = build_testbed(&tmp.0, "rhel");
    assert_eq!(root.dbpath.as_deref(), Some(Path::new("/var/lib/rpm")));
    assert_eq!(
        root.config_file(PackageManager::Dnf),
        Some(root.dir.join("etc/dnf/dnf.conf"))
    );
    let root_before = snapshot(&root.dir);
    // The node "rebooted" after the v1 install (else the install times
    // would make packages pending a reboot).
    let boot = Timestamp::from_second(Timestamp::now().as_second() + 1).unwrap();
    let opts = RpmScanOptions {
        boot_time: Some(boot),
        ..RpmScanOptions::default()
    };
    let scanned = scan_with(&root, &opts).unwrap_or_else(|e| panic!("{e}"));
    let changed = changes(&root_before, &snapshot(&root.dir));
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
    let fetched = repo.fetched.expect("repomd.xml has an mtime");
    assert!(Timestamp::now().duration_since(fetched) < jiff::SignedDuration::from_secs(600));
    assert!(repo.cache_dir.starts_with(root.dir.join("var/cache/dnf")));
    let facts = &scanned.facts;

    // OS, package manager, boot time.
    assert_eq!(
        facts.os.operating_system,
        OperatingSystem::RedhatEnterpriseLinux
    );
    assert_eq!(facts.os.product, "RedhatEnterpriseLinux9.3");
    assert_eq!(facts.os.package_manager, Some(PackageManager::Dnf));
    assert_eq!(facts.boot_time, Some(boot));

    // Installed: v1 of the three (dnf install), with install times of this
    // run and their source packages.
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
        let t = p
            .installed_time
            .unwrap_or_else(|| panic!("{}: no install time", p.name));
        let age = now.duration_since(t);
        assert!(
            age >= jiff::SignedDuration::ZERO && age < jiff::SignedDuration::from_secs(600),
            "{}: install time {t}",
            p.name
        );
        assert_eq!(p.source.as_deref(), Some(p.name.as_str()));
    }

    // Available: the six versions of the repository, with build times.
    let sde = Timestamp::from_second(1_700_000_000).unwrap();
    let mut available: Vec<(&str, &str)> = facts
        .available
        .iter()
        .map(|a| (a.name.as_str(), a.version.as_str()))
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
    for a in &facts.available {
        assert_eq!(a.arch, "noarch");
        assert_eq!(a.repository.as_deref(), Some("tb"));
        assert_eq!(a.build_time, Some(sde), "{a:?}");
    }

    // Notices, with their repository.
    assert_eq!(facts.notices.len(), 2, "{:#?}", facts.notices);
    let sec = facts
        .notices
        .iter()
        .find(|n| n.id == "TBSA-2023:0001")
        .unwrap();
    assert_eq!(sec.kind, "security");
    assert_eq!(sec.severity.as_deref(), Some("Important"));
    assert_eq!(sec.cves, ["CVE-2023-0001"]);
    assert_eq!(sec.bugzilla, ["1001"]);
    assert!(sec.reboot_suggested);
    assert_eq!(sec.issued.as_deref(), Some("2023-11-14 00:00:00"));
    assert_eq!(sec.updated.as_deref(), Some("2023-11-15 12:30:00"));
    assert_eq!(sec.repository.as_deref(), Some("tb"));
    assert_eq!(sec.packages.len(), 1);
    assert_eq!(
        (
            sec.packages[0].name.as_str(),
            sec.packages[0].version.as_str()
        ),
        ("tb-kernel", "1.1-1")
    );
    let bug = facts
        .notices
        .iter()
        .find(|n| n.id == "TBBA-2023:0002")
        .unwrap();
    assert_eq!(bug.kind, "bugfix");
    assert_eq!(bug.bugzilla, ["1002"]);
    assert!(bug.cves.is_empty() && !bug.reboot_suggested);
    assert_eq!(bug.repository.as_deref(), Some("tb"));
    assert_eq!(bug.packages[0].version, "1:2.1-1");

    // The facts round-trip through the format `patchfleet eval` reads.
    let back = NodeFacts::from_json(&facts.to_json_pretty()).unwrap();
    assert_eq!(&back, facts);

    // Evaluation, long after the release (SOURCE_DATE_EPOCH) and the install.
    let at = now.as_second() + 2;
    let (s, diag) = states(&security_baseline(), facts, at);
    assert_eq!(
        s,
        BTreeMap::from([
            ("tb-hello".to_string(), PatchState::InstalledOther),
            ("tb-kernel".to_string(), PatchState::Missing),
            ("tb-tool".to_string(), PatchState::InstalledOther),
        ]),
        "{diag:#?}"
    );
    let rhel = predefined::by_name("AWS-RedHatDefaultPatchBaseline").unwrap();
    let (s, diag) = states(rhel, facts, at);
    assert_eq!(
        s,
        BTreeMap::from([
            ("tb-hello".to_string(), PatchState::InstalledOther),
            ("tb-kernel".to_string(), PatchState::Missing),
            ("tb-tool".to_string(), PatchState::Missing),
        ]),
        "{diag:#?}"
    );

    // A refresh runs `dnf makecache` in the root only, and reads the same.
    let t = Instant::now();
    let refreshed = scan_with(
        &root,
        &RpmScanOptions {
            refresh: true,
            boot_time: Some(boot),
            ..RpmScanOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("scan with refresh: {:?}", t.elapsed());
    assert!(refreshed.warnings.is_empty(), "{:#?}", refreshed.warnings);
    assert_eq!(refreshed.facts.available, facts.available);
    assert_eq!(refreshed.facts.notices, facts.notices);
    assert_eq!(refreshed.facts.installed, facts.installed);
    let db = root.dir.join("var/lib/rpm");
    let changed: Vec<_> = changes(&root_before, &snapshot(&root.dir))
        .into_iter()
        .filter(|p| p.starts_with(&db))
        .collect();
    assert!(
        changed.is_empty(),
        "the refresh changed the root's rpm database: {changed:#?}"
    );

    drop(tmp);
    assert!(
        host_snapshot() == host_before,
        "the host's /var/cache/dnf or /var/lib/rpm changed"
    );
}

#[test]
fn broken_repositories_are_warnings() {
    let host_before = host_snapshot();
    let tmp = TempDir::new("rpm-scan-broken");
    let (root, _) = build_testbed(&tmp.0, "al2023");
    let cache = root.dir.join("var/cache/dnf");
    let tb = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("tb-"))
        })
        .expect("dnf cached the tb repository");
    let copy = |id: &str| -> PathBuf {
        let to = cache.join(format!("{id}-0123456789abcdef/repodata"));
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(tb.join("repodata")).unwrap().flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };
    let find = |dir: &Path, suffix: &str| -> PathBuf {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap()
    };
    // badui: updateinfo garbage (its packages stay); badprimary: primary
    // truncated; broken: repomd is not XML; nocache: never cached.
    let ui = copy("badui");
    std::fs::write(find(&ui, "-updateinfo.xml.xz"), b"\xfd7zXZ\0garbage").unwrap();
    let pr = copy("badprimary");
    let primary = find(&pr, "-primary.xml.gz");
    let bytes = std::fs::read(&primary).unwrap();
    std::fs::write(&primary, &bytes[..bytes.len() / 2]).unwrap();
    let br = cache.join("broken-0123456789abcdef/repodata");
    std::fs::create_dir_all(&br).unwrap();
    std::fs::write(br.join("repomd.xml"), "<repomd><data").unwrap();
    let mut repos = String::new();
    for id in ["badui", "badprimary", "broken", "nocache"] {
        repos.push_str(&format!(
            "[{id}]\nname={id}\nbaseurl=file:///nonexistent/{id}\n\n"
        ));
    }
    std::fs::write(root.dir.join("etc/yum.repos.d/more.repo"), repos).unwrap();

    let s = scan_with(&root, &RpmScanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.facts.os.operating_system,
        OperatingSystem::AmazonLinux2023
    );
    assert_eq!(s.facts.os.product, "AmazonLinux2023");
    assert_eq!(s.facts.os.package_manager, Some(PackageManager::Dnf));
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
    assert_eq!(s.warnings.len(), 4, "{:#?}", s.warnings);
    for (id, what) in [
        ("badui", "notices skipped"),
        ("badprimary", "primary.xml.gz"),
        ("broken", "repomd.xml"),
        ("nocache", "no cached metadata"),
    ] {
        assert!(
            s.warnings
                .iter()
                .any(|w| w.starts_with(&format!("repository {id}: ")) && w.contains(what)),
            "{id}: {:#?}",
            s.warnings
        );
    }

    // A refresh that fails (the new repositories do not exist) is a warning;
    // the cached metadata is still read.
    let r = scan_with(
        &root,
        &RpmScanOptions {
            refresh: true,
            ..RpmScanOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        r.warnings[0].starts_with("dnf makecache failed"),
        "{:#?}",
        r.warnings
    );
    assert_eq!(r.facts.available.len(), 12);

    drop(tmp);
    assert!(
        host_snapshot() == host_before,
        "the host's /var/cache/dnf or /var/lib/rpm changed"
    );
}

#[test]
fn missing_os_release_and_non_rpm_systems_are_errors() {
    let tmp = TempDir::new("rpm-scan-os");
    let root = RpmRoot::at(&tmp.0);
    let e = scan_with(&root, &RpmScanOptions::default()).unwrap_err();
    assert!(
        matches!(&e, ScanError::Read { path, .. } if path.ends_with("usr/lib/os-release")),
        "{e}"
    );
    std::fs::create_dir_all(tmp.0.join("etc")).unwrap();
    std::fs::write(
        tmp.0.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    let e = scan_with(&root, &RpmScanOptions::default()).unwrap_err();
    assert!(matches!(e, ScanError::NotRpm { .. }), "{e}");
    assert!(e.to_string().contains("Debian12"), "{e}");

    // An RPM system without a database is refused, and none is created:
    // `rpm -q` would make an empty one, and a scan never changes the node.
    std::fs::write(
        tmp.0.join("etc/os-release"),
        "ID=\"rhel\"\nVERSION_ID=\"9.3\"\n",
    )
    .unwrap();
    let e = scan_with(&root, &RpmScanOptions::default()).unwrap_err();
    assert!(matches!(e, ScanError::NoDatabase { .. }), "{e}");
    assert!(
        !tmp.0.join("var/lib/rpm").exists(),
        "the scan created a database"
    );
}

/// yum's layout (Amazon Linux 2, RHEL 7): `cachedir` with `$basearch` and
/// `$releasever`, `<cachedir>/<repoid>/repomd.xml` with the metadata files
/// next to it; yum's `etc/yum.conf`. Made from the dnf test bed's cache.
#[test]
fn yum_cache_layout() {
    let tmp = TempDir::new("rpm-scan-yum");
    let (root, _) = build_testbed(&tmp.0, "rhel");
    std::fs::write(
        root.dir.join("etc/os-release"),
        "NAME=\"Amazon Linux\"\nID=\"amzn\"\nVERSION_ID=\"2\"\n",
    )
    .unwrap();
    std::fs::write(
        root.dir.join("etc/yum.conf"),
        "[main]\ncachedir=/var/cache/yum/$basearch/$releasever\nkeepcache=0\n\n\
         [amzn2-core]\nname=core\nbaseurl=file:///nonexistent\n",
    )
    .unwrap();
    let dnf_cache = root.dir.join("var/cache/dnf");
    let tb = std::fs::read_dir(&dnf_cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("tb-"))
        })
        .unwrap();
    // tb.repo (etc/yum.repos.d) and amzn2-core (yum.conf) both in yum's layout.
    for id in ["tb", "amzn2-core"] {
        let to = root.dir.join("var/cache/yum/x86_64/2").join(id);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(tb.join("repodata")).unwrap().flatten() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    std::fs::remove_dir_all(&dnf_cache).unwrap();

    let s = scan_with(&root, &RpmScanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.facts.os.product, "AmazonLinux2");
    assert_eq!(s.facts.os.package_manager, Some(PackageManager::Yum));
    assert!(s.warnings.is_empty(), "{:#?}", s.warnings);
    let ids: Vec<(&str, &Path)> = s
        .repositories
        .iter()
        .map(|r| (r.id.as_str(), r.defined_in.as_path()))
        .collect();
    assert_eq!(
        ids,
        [
            ("amzn2-core", root.dir.join("etc/yum.conf").as_path()),
            ("tb", root.dir.join("etc/yum.repos.d/tb.repo").as_path()),
        ]
    );
    assert_eq!(s.facts.available.len(), 12);
    assert_eq!(s.facts.notices.len(), 4);
    assert_eq!(s.facts.installed.len(), 3);

    // The package manager can be forced: dnf reads etc/dnf/dnf.conf (tb only,
    // and its cache is gone).
    let d = scan_with(
        &root,
        &RpmScanOptions {
            package_manager: Some(PackageManager::Dnf),
            ..RpmScanOptions::default()
        },
    )
    .unwrap();
    assert_eq!(d.facts.os.package_manager, Some(PackageManager::Dnf));
    assert_eq!(d.warnings.len(), 1, "{:#?}", d.warnings);
    assert!(d.warnings[0].starts_with("repository tb: no cached metadata"));
    assert!(d.facts.available.is_empty());
}
