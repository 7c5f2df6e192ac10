//! The `patchfleet-agent` binary against the real APT test bed of
//! testbeds.md A0/A1 (built by `crates/pkg/tests/testbed/apt/build.sh` into
//! a temp folder: real apt-get and dpkg, `--root`, nothing outside the
//! folder touched), and against roots it must refuse.
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::{SignedDuration, Timestamp};
use patchfleet_core::baseline::predefined;
use patchfleet_core::eval::{CompiledBaseline, EvalOptions, evaluate};
use patchfleet_core::facts::NodeFacts;
use patchfleet_core::inventory::Inventory;
use patchfleet_core::os::OperatingSystem;
use patchfleet_core::report::{ReportContext, render};
#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use common::{TempDir, build_apt_testbed, snapshot};
use patchfleet_pkg::runner::{CommandSpec, Runner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::states;

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");

/// Builds the APT test bed under `dir`; its root is `dir/root`.
fn build_testbed(dir: &Path) {
    build_apt_testbed(dir);
}

fn agent(args: &[&str]) -> Output {
    Command::new(AGENT)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("{AGENT}: {e}"))
}

fn ok(args: &[&str]) -> (String, String) {
    let out = agent(args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        out.status.success(),
        "patchfleet-agent {args:?}: {:?}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Exit status 2 and the message on standard error.
fn fails(args: &[&str]) -> String {
    let out = agent(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    assert!(stderr.starts_with("patchfleet-agent: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn facts_and_scan_of_the_apt_testbed() {
    let tmp = TempDir::new("testbed");
    build_testbed(&tmp.0);
    let root_dir = tmp.0.join("root");
    let root = root_dir.to_str().unwrap();
    let before = snapshot(&root_dir);

    // The node "rebooted" after the v1 install; evaluated a moment later.
    let boot = Timestamp::now() + SignedDuration::from_secs(1);
    let at = boot + SignedDuration::from_secs(60);
    let (boot_s, at_s) = (boot.to_string(), at.to_string());

    // facts: the format `patchfleet eval` reads.
    let (stdout, stderr) = ok(&["facts", "--root", root, "--boot-time", &boot_s]);
    assert!(stderr.is_empty(), "warnings: {stderr}");
    let facts = NodeFacts::from_json(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert_eq!(facts.os.operating_system, OperatingSystem::Debian);
    assert_eq!(facts.os.product, "Debian12");
    assert_eq!(facts.boot_time, Some(boot));
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
    assert_eq!(facts.available.len(), 6, "{:#?}", facts.available);
    // --hash: the inventory's content hash, the same whatever the boot time.
    let (hash, _) = ok(&["facts", "--root", root, "--hash"]);
    assert_eq!(hash.trim(), facts.content_hash());
    let (hash_later, _) = ok(&["facts", "--root", root, "--hash", "--boot-time", &at_s]);
    assert_eq!(hash, hash_later);

    // scan --output json: the verdicts, and exactly the report `patchfleet
    // eval --output json` renders from these facts (same engine, same context).
    let name = "AWS-DebianDefaultPatchBaseline";
    let (json, _) = ok(&[
        "scan",
        "--root",
        root,
        "--boot-time",
        &boot_s,
        "--predefined",
        name,
        "--output",
        "json",
        "--at",
        &at_s,
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        states(&report),
        BTreeMap::from([
            ("tb-hello".to_string(), "Missing".to_string()),
            ("tb-kernel".to_string(), "Missing".to_string()),
            ("tb-tool".to_string(), "InstalledOther".to_string()),
        ]),
        "{json}"
    );
    assert_eq!(report["Compliance"]["Status"], "NON_COMPLIANT");
    assert_eq!(report["InstancePatchState"]["Operation"], "Scan");
    assert_eq!(report["InstancePatchState"]["MissingCount"], 2);
    let compiled = CompiledBaseline::compile(predefined::by_name(name).unwrap()).unwrap();
    let inventory = Inventory::prepare(&facts).unwrap();
    let evaluation = evaluate(&compiled, &inventory, &EvalOptions::scan_at(at.as_second()));
    let context = ReportContext {
        operation: "Scan".to_string(),
        operation_start: Some(at),
        operation_end: Some(at),
        ..ReportContext::default()
    };
    let expected = render(&evaluation, &inventory, &compiled, &context);
    assert_eq!(
        json,
        format!("{}\n", serde_json::to_string_pretty(&expected).unwrap())
    );

    // Table output, with the node's default baseline (no --predefined).
    let (table, _) = ok(&[
        "scan",
        "--root",
        root,
        "--boot-time",
        &boot_s,
        "--at",
        &at_s,
    ]);
    assert!(
        table.starts_with("Baseline:   AWS-DebianDefaultPatchBaseline pb-"),
        "{table}"
    );
    assert!(table.contains("Compliance: NON_COMPLIANT"), "{table}");
    assert!(table.contains("tb-hello.all:1.1-1"), "{table}");
    assert!(table.contains("tb-kernel.all:1.1-1"), "{table}");
    assert!(!table.contains("tb-tool"), "{table}");
    assert!(
        table.contains("(1 InstalledOther packages not shown; --all shows them)"),
        "{table}"
    );
    let (all, _) = ok(&[
        "scan",
        "--root",
        root,
        "--boot-time",
        &boot_s,
        "--at",
        &at_s,
        "--all",
    ]);
    assert!(all.contains("tb-tool.all:2.0-1"), "{all}");

    // A baseline file that also approves non-security updates at once.
    let file = tmp.0.join("all-updates.yaml");
    std::fs::write(
        &file,
        "Name: all-updates\nOperatingSystem: DEBIAN\nApprovalRules:\n  PatchRules:\n    \
         - PatchFilterGroup:\n        PatchFilters:\n          \
         - {Key: PRIORITY, Values: [Required, Important, Standard, Optional, Extra]}\n      \
         ApproveAfterDays: 0\n      EnableNonSecurity: true\n",
    )
    .unwrap();
    let (json, _) = ok(&[
        "scan",
        "--root",
        root,
        "--boot-time",
        &boot_s,
        "--baseline",
        file.to_str().unwrap(),
        "--output",
        "json",
        "--at",
        &at_s,
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        states(&report).get("tb-tool").map(String::as_str),
        Some("Missing"),
        "{json}"
    );

    // Booted before the installs: they are pending a reboot.
    let early = (boot - SignedDuration::from_secs(3600)).to_string();
    let (json, _) = ok(&[
        "scan",
        "--root",
        root,
        "--boot-time",
        &early,
        "--output",
        "json",
        "--at",
        &at_s,
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        states(&report).get("tb-tool").map(String::as_str),
        Some("InstalledPendingReboot"),
        "{json}"
    );

    // Not one file of the root changed.
    assert!(
        snapshot(&root_dir) == before,
        "the agent changed a file of the test bed's root"
    );
}

#[test]
fn an_empty_root_is_refused_naming_the_missing_os_release() {
    let tmp = TempDir::new("empty");
    let root = tmp.0.to_str().unwrap();
    for cmd in ["facts", "scan"] {
        let stderr = fails(&[cmd, "--root", root]);
        assert!(stderr.contains("no os-release"), "{stderr}");
        assert!(
            stderr.contains(&format!("{root}/etc/os-release")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("{root}/usr/lib/os-release")),
            "{stderr}"
        );
    }
    let missing = tmp.0.join("nothing-here");
    let stderr = fails(&["facts", "--root", missing.to_str().unwrap()]);
    assert!(stderr.contains("not a directory"), "{stderr}");
}

#[test]
fn a_debian_root_without_dpkg_status_is_refused_naming_it() {
    let tmp = TempDir::new("nostatus");
    std::fs::create_dir_all(tmp.0.join("etc")).unwrap();
    std::fs::write(
        tmp.0.join("etc/os-release"),
        "ID=debian\nVERSION_ID=\"12\"\n",
    )
    .unwrap();
    let stderr = fails(&["facts", "--root", tmp.0.to_str().unwrap()]);
    assert!(stderr.contains("var/lib/dpkg/status"), "{stderr}");
}

#[test]
fn rpm_and_zypper_roots_without_a_database_and_unknown_systems_are_refused() {
    let tmp = TempDir::new("others");
    std::fs::create_dir_all(tmp.0.join("usr/lib")).unwrap();
    let os_release = tmp.0.join("usr/lib/os-release");
    let root = tmp.0.to_str().unwrap();

    // An RPM system without its database: refused, and nothing created
    // (rpm itself would create an empty database).
    std::fs::write(&os_release, "ID=rocky\nVERSION_ID=\"9.3\"\n").unwrap();
    let before = snapshot(&tmp.0);
    let stderr = fails(&["scan", "--root", root]);
    assert!(stderr.contains(&format!("{root}/var/lib/rpm")), "{stderr}");
    assert!(stderr.contains("no rpm database"), "{stderr}");
    assert!(snapshot(&tmp.0) == before, "the agent wrote into the root");
    assert!(!tmp.0.join("var").exists());

    // A SUSE root without its database: the same refusal.
    std::fs::write(&os_release, "ID=sles\nVERSION_ID=\"15.5\"\n").unwrap();
    let before = snapshot(&tmp.0);
    let stderr = fails(&["facts", "--root", root]);
    assert!(stderr.contains("no rpm database"), "{stderr}");
    assert!(snapshot(&tmp.0) == before, "the agent wrote into the root");

    std::fs::write(&os_release, "ID=plan9\nVERSION_ID=4\n").unwrap();
    let stderr = fails(&["facts", "--root", root]);
    assert!(stderr.contains("unsupported operating system"), "{stderr}");
    assert!(stderr.contains("plan9"), "{stderr}");
}

#[test]
fn an_unknown_baseline_fails_before_scanning() {
    let tmp = TempDir::new("nobaseline");
    let root = tmp.0.to_str().unwrap();
    let stderr = fails(&["scan", "--root", root, "--predefined", "AWS-NoSuchBaseline"]);
    assert!(
        stderr.contains("no predefined baseline 'AWS-NoSuchBaseline'"),
        "{stderr}"
    );
    let stderr = fails(&[
        "scan",
        "--root",
        root,
        "--baseline",
        tmp.0.join("absent.yaml").to_str().unwrap(),
    ]);
    assert!(stderr.contains("absent.yaml"), "{stderr}");
}

/// A read-only scan of this machine (Debian: dpkg is the suite's version
/// oracle) gives well-formed facts; structure only, no counts.
#[test]
fn facts_of_this_machine_are_well_formed() {
    let (stdout, _) = ok(&["facts"]);
    let facts = NodeFacts::from_json(&stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(!facts.installed.is_empty());
    assert!(facts.boot_time.is_some(), "/proc/stat gives the boot time");
    assert!(facts.boot_time.unwrap() < Timestamp::now());
    let uname = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(facts.running_kernel.as_deref(), Some(uname.trim()));
    for e in &facts.reboot_required {
        assert!(!e.detail.is_empty(), "{e:?}");
    }
}

/// The test hooks of a root: an injected os-release names the system, an
/// injected kernel release is the running kernel (a chroot cannot fake
/// either, testbeds.md D), and the reboot flag the build's tb-kernel
/// postinst raised is reported as evidence.
#[test]
fn injected_os_release_and_kernel_release() {
    let tmp = TempDir::new("hooks");
    build_testbed(&tmp.0);
    let root = tmp.0.join("root");
    let os_release = tmp.0.join("ubuntu-os-release");
    std::fs::write(&os_release, "ID=ubuntu\nVERSION_ID=\"22.04\"\n").unwrap();
    let (stdout, _) = ok(&[
        "facts",
        "--root",
        root.to_str().unwrap(),
        "--os-release",
        os_release.to_str().unwrap(),
        "--kernel-release",
        "5.15.0-91-generic",
    ]);
    let facts = NodeFacts::from_json(&stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(facts.os.operating_system, OperatingSystem::Ubuntu);
    assert_eq!(facts.os.product, "Ubuntu22.04");
    assert_eq!(facts.running_kernel.as_deref(), Some("5.15.0-91-generic"));
    assert_eq!(facts.reboot_required.len(), 1, "{stdout}");
    assert_eq!(facts.reboot_required[0].packages, ["tb-kernel"]);

    // Neither is part of the inventory: the content hash stays.
    let (plain, _) = ok(&["facts", "--root", root.to_str().unwrap(), "--hash"]);
    let (hooked, _) = ok(&[
        "facts",
        "--root",
        root.to_str().unwrap(),
        "--kernel-release",
        "6.1.0-1-amd64",
        "--hash",
    ]);
    assert_eq!(plain, hooked);
    assert!(plain.starts_with("sha256:"), "{plain}");

    let missing = tmp.0.join("absent-os-release");
    let stderr = fails(&[
        "facts",
        "--root",
        root.to_str().unwrap(),
        "--os-release",
        missing.to_str().unwrap(),
    ]);
    assert!(stderr.contains("absent-os-release"), "{stderr}");
}

const RPM_TOOLS: [(&str, &str); 5] = [
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("dnf", "dnf"),
];

/// The dnf test bed of testbeds.md B: a repository
/// (`crates/pkg/tests/testbed/make-rpm-repo.sh`) and an installroot over it
/// (`crates/pkg/tests/testbed/rpm/make-dnf-root.sh`, RHEL 9.3) with v1 of
/// tb-hello, tb-tool and tb-kernel installed by dnf.
fn build_dnf_testbed(dir: &Path) -> PathBuf {
    let path = patchfleet_pkg::runner::DEFAULT_PATH;
    for (tool, package) in RPM_TOOLS {
        let found = path.split(':').any(|d| Path::new(d).join(tool).is_file());
        assert!(
            found,
            "{tool} is missing: install the Debian package {package} to run this test"
        );
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg/tests/testbed");
    let run = |spec: CommandSpec| {
        Runner::default()
            .run_ok(&spec.timeout(Duration::from_secs(120)))
            .unwrap_or_else(|e| panic!("building the dnf test bed failed: {e}"))
    };
    let repo = dir.join("repo");
    run(CommandSpec::new("sh")
        .arg(scripts.join("make-rpm-repo.sh"))
        .arg(&repo));
    let out = dir.join("dnf");
    run(CommandSpec::new("sh")
        .arg(scripts.join("rpm/make-dnf-root.sh"))
        .arg(repo.join("repo"))
        .arg(&out));
    out.join("root")
}

#[test]
fn scan_of_the_dnf_testbed() {
    let tmp = TempDir::new("dnf");
    let root_dir = build_dnf_testbed(&tmp.0);
    let root = root_dir.to_str().unwrap();
    let boot = (Timestamp::now() + SignedDuration::from_secs(1)).to_string();
    let at = (Timestamp::now() + SignedDuration::from_secs(60)).to_string();

    let (stdout, _) = ok(&["facts", "--root", root, "--boot-time", &boot]);
    let facts = NodeFacts::from_json(&stdout).unwrap_or_else(|e| panic!("{e}\n{stdout}"));
    assert_eq!(facts.os.product, "RedhatEnterpriseLinux9.3");
    assert_eq!(facts.installed.len(), 3, "{stdout}");
    assert!(!facts.notices.is_empty(), "{stdout}");

    let (json, _) = ok(&[
        "scan",
        "--root",
        root,
        "--boot-time",
        &boot,
        "--output",
        "json",
        "--at",
        &at,
    ]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        states(&report),
        BTreeMap::from([
            ("tb-hello".to_string(), "InstalledOther".to_string()),
            ("tb-kernel".to_string(), "Missing".to_string()),
            ("tb-tool".to_string(), "Missing".to_string()),
        ]),
        "{json}"
    );
    let kernel = report["Patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["Title"].as_str().unwrap().starts_with("tb-kernel."))
        .unwrap();
    assert_eq!(kernel["Classification"], "Security");
    assert_eq!(kernel["CVEIds"], "CVE-2023-0001");
}
