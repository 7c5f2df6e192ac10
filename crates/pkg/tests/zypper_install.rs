//! The zypper install against the real test bed of testbeds.md C (built by
//! `tests/testbed/make-rpm-repo.sh` and `tests/testbed/zypper/
//! make-zypper-root.sh` into a temp folder: the real zypper with `--root`,
//! tb-hello 1.0-1, tb-tool 1:2.0-1, tb-kernel 1.0-1 installed; tb-kernel
//! 1.1-1 is the package of the reboot-suggested patch TBSA-2023:0001 and is
//! listed in the root's `etc/zypp/needreboot`, as SLES lists its kernels).
//! Nothing outside the temp folder is changed: the host's zypper state is
//! compared before and after.
//!
//! Missing tools fail the test with the package to install; never skipped.

use patchfleet_core::eval::{InstallPlan, PlanSource, PlannedInstall};
use patchfleet_core::facts::RebootSource;
use patchfleet_core::os::OperatingSystem;
use patchfleet_pkg::backend::for_root;
use patchfleet_pkg::install::{InstallError, InstallOptions, PackageResult, SimAction};
use patchfleet_pkg::runner::{CommandSpec, Exit, Runner};
use patchfleet_pkg::zypper::{ZypperRoot, install, simulate};
mod common;

use common::{TempDir, build_zypper_testbed, zypper_host_state};
use std::time::{Duration, Instant};

fn testbed(tag: &str) -> (TempDir, ZypperRoot) {
    let tmp = TempDir::new(tag);
    let (root, build) = build_zypper_testbed(&tmp.0);
    eprintln!("test bed built in {build:?}");
    (tmp, root)
}

fn planned(name: &str, version: &str) -> PlannedInstall {
    PlannedInstall {
        name: name.into(),
        arch: "noarch".into(),
        version: version.into(),
        title: format!("{name}.noarch:{version}"),
        advisory: None,
    }
}

fn plan(packages: &[(&str, &str)], rejected: &[&str], block: bool) -> InstallPlan {
    InstallPlan {
        source: PlanSource::Baseline,
        packages: packages.iter().map(|(n, v)| planned(n, v)).collect(),
        rejected_patches: rejected.iter().map(|s| s.to_string()).collect(),
        block_rejected: block,
    }
}

/// The root's full `rpm -qa` (NEVRA, sorted), straight from rpm.
fn rpm_qa(root: &ZypperRoot) -> Vec<String> {
    let mut spec = CommandSpec::new("rpm")
        .arg("--root")
        .arg(&root.dir)
        .args(["--dbpath", "/var/lib/rpm", "-qa", "--queryformat"])
        .arg("%{NAME}-%{EPOCHNUM}:%{VERSION}-%{RELEASE}.%{ARCH}\n");
    for (k, v) in &root.env {
        spec = spec.env(k, v);
    }
    let out = Runner::default()
        .run_ok(&spec)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut v: Vec<String> = out.stdout_text().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const V1: [&str; 3] = [
    "tb-hello-0:1.0-1.noarch",
    "tb-kernel-0:1.0-1.noarch",
    "tb-tool-1:2.0-1.noarch",
];

#[test]
fn installs_an_approved_subset_and_the_reboot_suggested_kernel() {
    let host_before = zypper_host_state();
    let (_tmp, root) = testbed("zypper-install");
    assert_eq!(rpm_qa(&root), strings(&V1));

    // tb-tool's update is rejected (not planned); under BLOCK nothing may
    // pull it in either.
    let p = plan(
        &[("tb-kernel", "1.1-1"), ("tb-hello", "1.1-1")],
        &["tb-tool"],
        true,
    );
    let report = install(&root, &p, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("installed in {:?}: {report:#?}", report.elapsed);
    // What zypper 1.14.42 does: a package install (not `zypper patch`)
    // exits 0, even for the package of a reboot-suggested patch; 102 comes
    // only from `zypper patch` (checked below).
    assert_eq!(report.exit.as_deref(), Some("exit status 0"));
    assert!(report.all_installed(), "{report:#?}");
    for o in &report.packages {
        assert_eq!(o.previous.as_deref(), Some("1.0-1"), "{o:?}");
    }
    let steps: Vec<(SimAction, &str, Option<&str>)> = report
        .simulation
        .steps
        .iter()
        .map(|s| (s.action, s.name.as_str(), s.new.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [
            (SimAction::Install, "tb-hello", Some("1.1-1")),
            (SimAction::Install, "tb-kernel", Some("1.1-1")),
        ]
    );
    assert!(report.simulation.unresolved.is_empty());

    // Exactly those versions, and nothing else; the kernel of the
    // reboot-suggested ("interactive") patch really is installed.
    assert_eq!(
        rpm_qa(&root),
        strings(&[
            "tb-hello-0:1.1-1.noarch",
            "tb-kernel-0:1.1-1.noarch",
            "tb-tool-1:2.0-1.noarch",
        ])
    );

    // Reboot evidence: the patch's restart flag and libzypp's
    // run/reboot-needed (tb-kernel is in etc/zypp/needreboot).
    let ev = &report.reboot_required;
    assert_eq!(ev.len(), 2, "{ev:#?}");
    assert!(ev.iter().all(|e| e.source == RebootSource::PackageManager));
    assert!(ev[0].detail.contains("TBSA-2023:0001"), "{ev:#?}");
    assert_eq!(ev[0].packages, ["tb-kernel"]);
    assert!(ev[1].detail.contains("run/reboot-needed"), "{ev:#?}");
    // zypper agrees: needs-rebooting exits 102.
    let nr = Runner::default()
        .run(&root.zypper(["needs-rebooting"]))
        .unwrap();
    assert_eq!(nr.exit, Exit::Code(102), "{}", nr.stdout_text());

    // A second run: nothing to do, still Installed, no new evidence from
    // the patch (this run installed nothing).
    let again = install(&root, &p, &InstallOptions::default()).unwrap();
    assert!(again.all_installed(), "{again:#?}");
    assert!(
        again
            .reboot_required
            .iter()
            .all(|e| !e.detail.contains("TBSA")),
        "{:#?}",
        again.reboot_required
    );
    assert_eq!(rpm_qa(&root).len(), 3);

    assert!(
        zypper_host_state() == host_before,
        "the host's zypper state changed"
    );
}

/// The field report: `zypper patch --non-interactive` skips a
/// reboot-suggested patch unless `--with-interactive`; with it, zypper
/// exits 102. (Why the install goes by package: see the module docs of
/// `zypper::install`.)
#[test]
fn zypper_patch_skips_reboot_suggested_patches_without_with_interactive() {
    let (_tmp, root) = testbed("zypper-patch");
    let r = Runner::default();
    let skipped = r
        .run(&root.zypper(["patch", "--category", "security"]))
        .unwrap();
    // Skipped silently: exit status 0, nothing said on stderr.
    assert_eq!(skipped.exit, Exit::Code(0), "{}", skipped.stdout_text());
    assert!(
        rpm_qa(&root).contains(&"tb-kernel-0:1.0-1.noarch".to_string()),
        "zypper patch without --with-interactive installed the kernel"
    );
    let done = r
        .run(&root.zypper(["patch", "--with-interactive", "--category", "security"]))
        .unwrap();
    assert_eq!(done.exit, Exit::Code(102), "{}", done.stdout_text());
    assert!(rpm_qa(&root).contains(&"tb-kernel-0:1.1-1.noarch".to_string()));
}

#[test]
fn a_version_that_does_not_exist_fails_with_zyppers_reason() {
    let (_tmp, root) = testbed("zypper-install-missing");
    let p = plan(
        &[
            ("tb-hello", "9.9-9"),
            ("tb-tool", "1:2.1-1"),
            ("tb-nosuch", "1.0-1"),
        ],
        &[],
        false,
    );
    let report = install(&root, &p, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let results: Vec<(&str, &PackageResult)> = report
        .packages
        .iter()
        .map(|o| (o.name.as_str(), &o.result))
        .collect();
    assert_eq!(
        results[1],
        ("tb-tool", &PackageResult::Installed),
        "{report:#?}"
    );
    match results[0].1 {
        PackageResult::Failed { reason } => assert_eq!(
            reason, "No provider of 'tb-hello.noarch=9.9-9' found.",
            "{report:#?}"
        ),
        r => panic!("tb-hello: {r:?}"),
    }
    match results[2].1 {
        PackageResult::Failed { reason } => {
            assert!(reason.starts_with("not installed"), "{reason}")
        }
        r => panic!("tb-nosuch: {r:?}"),
    }
    assert_eq!(report.simulation.unresolved.len(), 2);
    assert_eq!(
        rpm_qa(&root),
        strings(&[
            "tb-hello-0:1.0-1.noarch",
            "tb-kernel-0:1.0-1.noarch",
            "tb-tool-1:2.1-1.noarch",
        ])
    );
}

#[test]
fn a_held_zypp_lock_is_waited_for_then_named() {
    let (_tmp, root) = testbed("zypper-install-lock");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    std::fs::write(root.dir.join("run/zypp.pid"), format!("{pid}\n")).unwrap();
    let opts = InstallOptions {
        lock_wait: Duration::from_secs(1),
        ..InstallOptions::default()
    };
    let p = plan(&[("tb-hello", "1.1-1")], &[], false);
    let t = Instant::now();
    let e = install(&root, &p, &opts).unwrap_err();
    let waited = t.elapsed();
    let s = simulate(&root, &p, &opts).unwrap_err();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    for e in [&e, &s] {
        match e {
            InstallError::Locked { path, holder, .. } => {
                assert!(path.ends_with("run/zypp.pid"), "{e}");
                assert_eq!(holder, &format!("process {pid} (sleep)"), "{e}");
            }
            _ => panic!("not Locked: {e}"),
        }
    }
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert_eq!(rpm_qa(&root), strings(&V1));

    // The holder is gone (its PID stays in the file, as libzypp leaves it):
    // the install goes ahead.
    let report = install(&root, &p, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.all_installed(), "{report:#?}");
}

#[test]
fn block_refuses_rejected_packages() {
    let (_tmp, root) = testbed("zypper-install-block");
    let p = plan(
        &[("tb-hello", "1.1-1"), ("tb-tool", "1:2.1-1")],
        &["tb-tool"],
        true,
    );
    let backend = for_root(&root.dir, OperatingSystem::Suse).unwrap();
    assert_eq!(backend.name(), "zypper");
    // Through the backend the agent uses, with the test bed's HOME (zypper's
    // librpm reads its macros): the root as the agent would find it.
    let mut with_home = patchfleet_pkg::zypper::Zypper::new(root.clone());
    with_home.root.env = root.env.clone();
    for e in [
        patchfleet_pkg::backend::Backend::install(&with_home, &p, &InstallOptions::default())
            .unwrap_err(),
        install(&root, &p, &InstallOptions::default()).unwrap_err(),
    ] {
        match &e {
            InstallError::Rejected {
                package,
                version,
                entry,
            } => {
                assert_eq!(
                    (package.as_str(), version.as_str(), entry.as_str()),
                    ("tb-tool", "1:2.1-1", "tb-tool")
                );
            }
            _ => panic!("not Rejected: {e}"),
        }
    }
    assert_eq!(
        rpm_qa(&root),
        strings(&V1),
        "a refused plan changed the root"
    );

    // ALLOW_AS_DEPENDENCY: the same plan goes through.
    let allowed = plan(
        &[("tb-hello", "1.1-1"), ("tb-tool", "1:2.1-1")],
        &["tb-tool"],
        false,
    );
    let sim = backend
        .simulate(&allowed, &InstallOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sim.steps.len(), 2, "{sim:#?}");
    assert_eq!(rpm_qa(&root), strings(&V1), "a simulation changed the root");
}

/// A hanging zypper (the real one runs the dry run; the real run hangs with
/// a child) is killed with its whole process group at the install timeout.
#[test]
fn a_hanging_zypper_times_out_and_its_process_group_is_killed() {
    let (tmp, root) = testbed("zypper-hang");
    let opts = InstallOptions {
        runner: common::hanging_tool(&tmp.0, "zypper", "--dry-run"),
        install_timeout: Duration::from_secs(2),
        ..InstallOptions::default()
    };
    let start = Instant::now();
    let e = install(&root, &plan(&[("tb-hello", "1.1-1")], &[], false), &opts).unwrap_err();
    assert!(
        matches!(
            &e,
            InstallError::Run(patchfleet_pkg::runner::RunError::TimedOut { .. })
        ),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    common::assert_hanging_tool_killed(&tmp.0);
    assert_eq!(rpm_qa(&root), strings(&V1));
}
