//! The APT scan against a real test bed (testbeds.md A0/A1): tiny debs, a
//! `dists/` repository made by apt-ftparchive, an `APT_CONFIG` root in a temp
//! folder with v1 of three packages installed by the real apt-get and dpkg
//! (`--root`, `--force-script-chrootless`; the maintainer scripts write
//! under `$DPKG_ROOT` only). Nothing outside the temp folder is touched.
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::Timestamp;
use patchfleet_core::baseline::predefined;
use patchfleet_core::compliance::PatchState;
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::facts::{AptOrigin, NodeFacts};
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::version::deb;
use patchfleet_pkg::apt::{AptRoot, ScanOptions, scan, scan_with};
mod common;

use common::{TempDir, build_apt_testbed, snapshot};
use patchfleet_pkg::runner::{CommandSpec, Runner};
use std::collections::BTreeMap;
use std::time::Duration;

fn origins_of<'a>(facts: &'a NodeFacts, name: &str, version: &str) -> &'a [AptOrigin] {
    &facts
        .available
        .iter()
        .find(|a| a.name == name && a.version == version)
        .unwrap_or_else(|| panic!("{name} {version} is not available: {:#?}", facts.available))
        .origins
}

#[test]
fn scan_of_the_apt_testbed() {
    let tmp = TempDir::new("apt-scan");
    let build = build_apt_testbed(&tmp.0);
    let root = AptRoot::at(tmp.0.join("root"));
    assert!(root.apt_config.is_some());

    let status_before = std::fs::read(root.status_path()).unwrap();
    let root_before = snapshot(&root.dir);
    // The node "rebooted" after the v1 install (else every package would be
    // InstalledPendingReboot: installed after boot; checked further down).
    let boot = Timestamp::from_second(Timestamp::now().as_second() + 1).unwrap();
    let opts = ScanOptions {
        boot_time: Some(boot),
        ..ScanOptions::default()
    };
    let scanned = scan_with(&root, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read(root.status_path()).unwrap(),
        status_before,
        "the scan changed the dpkg status"
    );
    assert!(
        snapshot(&root.dir) == root_before,
        "the scan changed a file of the root"
    );
    eprintln!(
        "test bed built in {build:?}; scanned in {:?}",
        scanned.elapsed
    );
    assert!(scanned.warnings.is_empty(), "{:?}", scanned.warnings);
    assert!(scanned.interrupted.is_empty());
    assert_eq!(scanned.indexes.len(), 3, "{:#?}", scanned.indexes);
    let facts = &scanned.facts;

    // OS and boot time.
    assert_eq!(facts.os.operating_system, OperatingSystem::Debian);
    assert_eq!(facts.os.product, "Debian12");
    assert_eq!(facts.boot_time, Some(boot));

    // Installed: v1 of the three, each with an install time of this run.
    let mut installed: Vec<(&str, &str)> = facts
        .installed
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    installed.sort();
    assert_eq!(
        installed,
        [
            ("tb-hello", "1.0-1"),
            ("tb-kernel", "1.0-1"),
            ("tb-tool", "2.0-1")
        ]
    );
    let now = Timestamp::now();
    for p in &facts.installed {
        assert_eq!(p.arch, "all");
        let t = p
            .installed_time
            .unwrap_or_else(|| panic!("{}: no install time", p.name));
        let age = now.duration_since(t);
        assert!(
            age >= jiff::SignedDuration::ZERO && age < jiff::SignedDuration::from_secs(600),
            "{}: install time {t}",
            p.name
        );
    }

    // Available: six versions, each with its suite's origin.
    assert_eq!(facts.available.len(), 6, "{:#?}", facts.available);
    let one = |name, version| {
        let o = origins_of(facts, name, version);
        assert_eq!(o.len(), 1, "{name} {version}: {o:#?}");
        let o = &o[0];
        assert_eq!(o.origin.as_deref(), Some("TestBed"));
        assert_eq!(o.component.as_deref(), Some("main"));
        assert_eq!(o.site, None, "file: repositories have no site");
        assert!(o.trusted);
        (
            o.codename.clone().unwrap(),
            o.label.clone().unwrap(),
            o.archive.clone().unwrap(),
        )
    };
    let sec = (
        "testbed-security".to_string(),
        "TestBed-Security".to_string(),
        "stable-security".to_string(),
    );
    let base = ("testbed".into(), "TestBed".into(), "stable".into());
    let upd = (
        "testbed-updates".into(),
        "TestBed".into(),
        "stable-updates".into(),
    );
    assert_eq!(one("tb-hello", "1.1-1"), sec);
    assert_eq!(one("tb-kernel", "1.1-1"), sec);
    assert_eq!(one("tb-tool", "2.1-1"), upd);
    assert_eq!(one("tb-hello", "1.0-1"), base);
    assert_eq!(one("tb-tool", "2.0-1"), base);
    assert_eq!(one("tb-kernel", "1.0-1"), base);
    let hello = facts
        .available
        .iter()
        .find(|a| a.name == "tb-hello" && a.version == "1.1-1")
        .unwrap();
    assert_eq!(hello.priority.as_deref(), Some("optional"));
    assert_eq!(hello.section.as_deref(), Some("misc"));
    assert!(
        hello
            .repository
            .as_deref()
            .is_some_and(|r| r.ends_with("/repo testbed-security/main")),
        "{:?}",
        hello.repository
    );

    // The facts round-trip through the format `patchfleet eval` reads.
    let back = NodeFacts::from_json(&facts.to_json_pretty()).unwrap();
    assert_eq!(&back, facts);

    // Evaluation with the predefined Debian baseline.
    let baseline = predefined::by_name("AWS-DebianDefaultPatchBaseline").unwrap();
    let compiled = CompiledBaseline::compile(baseline).unwrap();
    let judge = |facts: &NodeFacts| {
        let inv = Inventory::prepare(facts).unwrap_or_else(|e| panic!("{e}"));
        let ev = evaluate(&compiled, &inv, &EvalOptions::scan_at(now.as_second() + 2));
        let states: BTreeMap<String, PatchState> = ev
            .verdicts
            .iter()
            .map(|v| (inv.groups[v.group as usize].name.clone(), v.state))
            .collect();
        (states, ev)
    };
    let (states, ev) = judge(facts);
    let want = |tool| {
        BTreeMap::from([
            ("tb-hello".to_string(), PatchState::Missing),
            ("tb-kernel".to_string(), PatchState::Missing),
            ("tb-tool".to_string(), tool),
        ])
    };
    assert_eq!(
        states,
        want(PatchState::InstalledOther),
        "{:#?}",
        ev.diagnostics
    );
    // Booted before the installs: the install times make tb-tool pending a reboot.
    let mut before = facts.clone();
    before.boot_time = Some(Timestamp::from_second(1_700_000_000).unwrap());
    assert_eq!(judge(&before).0, want(PatchState::InstalledPendingReboot));
    assert_eq!(ev.counts.missing, 2);
    assert_eq!(ev.counts.security_non_compliant, 2);

    // `scan` (default options) gives the same facts without a boot time.
    let plain = scan(&root).unwrap();
    assert_eq!(plain.installed, facts.installed);
    assert_eq!(plain.available, facts.available);
    assert_eq!(plain.boot_time, None);

    // A refresh runs apt-get update on the root's APT_CONFIG only.
    let refreshed = scan_with(
        &root,
        &ScanOptions {
            refresh: true,
            boot_time: Some(boot),
            ..ScanOptions::default()
        },
    )
    .unwrap();
    assert!(refreshed.warnings.is_empty(), "{:?}", refreshed.warnings);
    assert_eq!(refreshed.facts.available, facts.available);
    assert_eq!(
        std::fs::read(root.status_path()).unwrap(),
        status_before,
        "a refresh changed the dpkg status"
    );
}

#[test]
fn broken_index_is_a_warning_and_missing_status_an_error() {
    let tmp = TempDir::new("apt-scan-broken");
    let root = tmp.0.join("root");
    let lists = root.join("var/lib/apt/lists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=ubuntu\nVERSION_ID=\"22.04\"\n",
    )
    .unwrap();
    let root = AptRoot::at(&root);
    let e = scan(&root).unwrap_err().to_string();
    assert!(e.contains("var/lib/dpkg/status"), "{e}");

    std::fs::write(
        root.status_path(),
        "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
         Package: b\nStatus: install ok half-configured\nArchitecture: amd64\nVersion: 2\n",
    )
    .unwrap();
    let good = "mirror.example_ubuntu_dists_jammy-security";
    std::fs::write(
        lists.join(format!("{good}_InRelease")),
        "Origin: Ubuntu\nLabel: Ubuntu\nSuite: jammy-security\nCodename: jammy\n",
    )
    .unwrap();
    std::fs::write(
        lists.join(format!("{good}_main_binary-amd64_Packages")),
        "Package: a\nVersion: 2\nArchitecture: amd64\n",
    )
    .unwrap();
    std::fs::write(
        lists.join(format!("{good}_universe_binary-amd64_Packages")),
        "Package: broken\nArchitecture: amd64\n",
    )
    .unwrap();
    std::fs::write(
        lists.join("orphan.example_dists_x_main_binary-amd64_Packages"),
        "",
    )
    .unwrap();
    let s = scan_with(&root, &ScanOptions::default()).unwrap();
    assert_eq!(s.facts.os.product, "Ubuntu22.04");
    assert_eq!(s.facts.installed.len(), 1);
    assert_eq!(s.interrupted.len(), 1);
    assert_eq!(s.interrupted[0].abbrev, "iF");
    assert_eq!(s.facts.available.len(), 1);
    let o = &s.facts.available[0].origins[0];
    assert_eq!(o.site.as_deref(), Some("mirror.example"));
    assert_eq!(o.archive.as_deref(), Some("jammy-security"));
    assert_eq!(s.warnings.len(), 2, "{:#?}", s.warnings);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("universe_binary-amd64_Packages")),
        "{:#?}",
        s.warnings
    );
    assert!(
        s.warnings.iter().any(|w| w.contains("orphan.example")),
        "{:#?}",
        s.warnings
    );
}

/// This machine, read only: well-formed facts (structure, not counts).
#[test]
fn read_only_scan_of_this_host() {
    let status = std::fs::read(AptRoot::host().status_path()).unwrap();
    let s = scan_with(&AptRoot::host(), &ScanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read(AptRoot::host().status_path()).unwrap(),
        status
    );
    eprintln!(
        "host: {} installed, {} available from {} indexes in {:?}; warnings {:?}",
        s.facts.installed.len(),
        s.facts.available.len(),
        s.indexes.len(),
        s.elapsed,
        s.warnings
    );
    assert!(s.warnings.is_empty(), "{:#?}", s.warnings);
    assert!(!s.facts.installed.is_empty());
    let with_time = s
        .facts
        .installed
        .iter()
        .filter(|p| p.installed_time.is_some())
        .count();
    assert!(
        with_time * 10 >= s.facts.installed.len() * 9,
        "{with_time} with an install time"
    );
    for a in &s.facts.available {
        assert!(!a.origins.is_empty() && a.repository.is_some(), "{a:?}");
    }
    let back = NodeFacts::from_json(&s.facts.to_json_pretty()).unwrap();
    assert_eq!(back, s.facts);
    Inventory::prepare(&s.facts).unwrap_or_else(|e| panic!("{e}"));

    // Oracle: what apt itself calls upgradable (every source has the default
    // pin here, so apt's candidate is the highest version).
    let mut ours = std::collections::BTreeSet::new();
    for p in &s.facts.installed {
        let newer = s.facts.available.iter().any(|a| {
            a.name == p.name
                && a.arch == p.arch
                && deb::compare_str(&a.version, &p.version) == Ok(std::cmp::Ordering::Greater)
        });
        if newer {
            ours.insert(format!("{}:{}", p.name, p.arch));
        }
    }
    let out = Runner::default()
        .run_ok(
            &CommandSpec::new("apt")
                .args(["list", "--upgradable"])
                .timeout(Duration::from_secs(120)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let theirs: std::collections::BTreeSet<String> = out
        .stdout_text()
        .lines()
        .filter(|l| l.contains("[upgradable from"))
        .map(|l| {
            let name = l.split('/').next().unwrap();
            let arch = l.split_ascii_whitespace().nth(2).unwrap();
            format!("{name}:{arch}")
        })
        .collect();
    assert_eq!(ours, theirs);
}
