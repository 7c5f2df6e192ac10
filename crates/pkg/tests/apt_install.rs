//! The APT install against the real test bed of testbeds.md A0/A1 (built by
//! `tests/testbed/apt/build.sh` into a temp folder: real apt-get and dpkg
//! with the root's `APT_CONFIG`, `dpkg --root`, maintainer scripts writing
//! under `$DPKG_ROOT` only). Nothing outside the temp folder is changed:
//! the host's own packages and reboot flag are checked untouched.
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::Timestamp;
use patchfleet_core::baseline::predefined;
use patchfleet_core::eval::{
    CompiledBaseline, EvalOptions, InstallOutcome, InstallPlan, Operation, PendingRebootScope,
    PlanSource, PlannedInstall, evaluate,
};
use patchfleet_core::inventory::Inventory;
use patchfleet_pkg::apt::{
    AptRoot, InstallError, InstallOptions, PackageResult, install, scan, simulate,
};
mod common;

use common::{TempDir, build_apt_testbed};
use std::path::Path;
use std::time::{Duration, Instant};

/// Builds the test bed in a fresh temp folder; its root is `<dir>/root`.
fn testbed(tag: &str) -> (TempDir, AptRoot) {
    let tmp = TempDir::new(tag);
    build_apt_testbed(&tmp.0);
    let root = AptRoot::at(tmp.0.join("root"));
    assert!(root.apt_config.is_some());
    // The v1 install of the build set the root's reboot flag: "reboot".
    for f in ["reboot-required", "reboot-required.pkgs"] {
        let _ = std::fs::remove_file(root.dir.join("var/run").join(f));
    }
    (tmp, root)
}

/// The install plan of the Debian default baseline for the root.
fn default_plan(root: &AptRoot) -> InstallPlan {
    let facts = scan(root).unwrap_or_else(|e| panic!("{e}"));
    let baseline = predefined::by_name("AWS-DebianDefaultPatchBaseline").unwrap();
    let compiled = CompiledBaseline::compile(baseline).unwrap();
    let inv = Inventory::prepare(&facts).unwrap_or_else(|e| panic!("{e}"));
    let ev = evaluate(
        &compiled,
        &inv,
        &EvalOptions {
            at: Timestamp::now().as_second() + 2,
            operation: Operation::Install {
                override_list: None,
            },
            outcome: InstallOutcome::None,
            pending_reboot_scope: PendingRebootScope::default(),
        },
    );
    ev.plan.expect("an Install evaluation has a plan")
}

fn versions(root: &AptRoot) -> Vec<(String, String)> {
    let facts = scan(root).unwrap_or_else(|e| panic!("{e}"));
    let mut v: Vec<(String, String)> = facts
        .installed
        .into_iter()
        .map(|p| (p.name, p.version))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn host_flag() -> bool {
    Path::new("/var/run/reboot-required").exists() || Path::new("/run/reboot-required").exists()
}

fn host_status() -> Vec<u8> {
    std::fs::read("/var/lib/dpkg/status").unwrap_or_default()
}

#[test]
fn installs_the_default_baseline_plan() {
    let (_tmp, root) = testbed("apt-install");
    let host_flag_before = host_flag();
    let host_status_before = host_status();

    let plan = default_plan(&root);
    let planned: Vec<(&str, &str)> = plan
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(
        planned,
        [("tb-hello", "1.1-1"), ("tb-kernel", "1.1-1")],
        "{plan:#?}"
    );

    let report =
        install(&root, &plan, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("installed in {:?}", report.elapsed);
    assert_eq!(report.exit.as_deref(), Some("exit status 0"));
    assert!(report.all_installed(), "{report:#?}");
    assert_eq!(report.packages.len(), 2);
    for p in &report.packages {
        assert_eq!(p.result, PackageResult::Installed, "{p:?}");
        assert_eq!(p.previous.as_deref(), Some("1.0-1"));
    }
    assert_eq!(report.simulation.steps.len(), 4, "{:#?}", report.simulation);
    assert!(report.simulation.unresolved.is_empty());

    // Exactly those versions, and nothing else.
    assert_eq!(
        versions(&root),
        pairs(&[
            ("tb-hello", "1.1-1"),
            ("tb-kernel", "1.1-1"),
            ("tb-tool", "2.0-1")
        ])
    );

    // The reboot flag of tb-kernel's postinst: in the root, never the host's.
    assert_eq!(
        report.reboot_required.len(),
        1,
        "{:?}",
        report.reboot_required
    );
    assert_eq!(report.reboot_required[0].packages, ["tb-kernel"]);
    assert!(root.dir.join("var/run/reboot-required").is_file());
    assert_eq!(
        host_flag(),
        host_flag_before,
        "the host's reboot flag changed"
    );
    assert!(
        host_status() == host_status_before,
        "the host's dpkg status changed"
    );

    // A second run: nothing left to do, still Installed.
    let again = install(&root, &plan, &InstallOptions::default()).unwrap();
    assert!(again.all_installed(), "{again:#?}");
}

#[test]
fn a_version_that_does_not_exist_fails_with_apts_reason() {
    let (_tmp, root) = testbed("apt-install-missing");
    let mut plan = default_plan(&root);
    let kernel = plan
        .packages
        .iter_mut()
        .find(|p| p.name == "tb-kernel")
        .unwrap();
    kernel.version = "9.9-9".to_string();

    let report =
        install(&root, &plan, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let by_name = |n: &str| report.packages.iter().find(|p| p.name == n).unwrap();
    assert_eq!(by_name("tb-hello").result, PackageResult::Installed);
    match &by_name("tb-kernel").result {
        PackageResult::Failed { reason } => {
            assert!(
                reason.contains("9.9-9") && reason.contains("was not found"),
                "{reason}"
            );
        }
        r => panic!("tb-kernel: {r:?}"),
    }
    assert!(!report.all_installed());
    assert_eq!(
        versions(&root),
        pairs(&[
            ("tb-hello", "1.1-1"),
            ("tb-kernel", "1.0-1"),
            ("tb-tool", "2.0-1")
        ])
    );
    // tb-kernel's postinst did not run.
    assert!(report.reboot_required.is_empty());

    // A plan of nothing but unknown versions: no run at all.
    let plan = InstallPlan {
        source: PlanSource::Baseline,
        packages: vec![PlannedInstall {
            name: "tb-tool".into(),
            arch: "all".into(),
            version: "7.0-1".into(),
            title: "tb-tool.all:7.0-1".into(),
            advisory: None,
        }],
        rejected_patches: Vec::new(),
        block_rejected: false,
    };
    let report = install(&root, &plan, &InstallOptions::default()).unwrap();
    assert_eq!(report.exit, None);
    assert!(
        matches!(&report.packages[0].result, PackageResult::Failed { reason } if reason.contains("7.0-1")),
        "{report:#?}"
    );
}

#[test]
fn block_refuses_a_rejected_package_before_anything_changes() {
    let (_tmp, root) = testbed("apt-install-block");
    let mut plan = default_plan(&root);
    plan.rejected_patches = vec!["tb-kernel".to_string()];
    plan.block_rejected = true;
    let status = std::fs::read(root.status_path()).unwrap();

    let e = simulate(&root, &plan, &InstallOptions::default()).unwrap_err();
    assert!(matches!(e, InstallError::Rejected { .. }), "{e}");
    let e = install(&root, &plan, &InstallOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("tb-kernel") && msg.contains("BLOCK"), "{msg}");
    assert!(
        std::fs::read(root.status_path()).unwrap() == status,
        "the dpkg status changed"
    );
    assert!(!root.dir.join("var/run/reboot-required").exists());

    // ALLOW_AS_DEPENDENCY (no block): the same plan installs.
    plan.block_rejected = false;
    assert!(
        install(&root, &plan, &InstallOptions::default())
            .unwrap()
            .all_installed()
    );
}

#[test]
fn a_held_dpkg_lock_names_its_holder() {
    let (_tmp, root) = testbed("apt-install-lock");
    let plan = default_plan(&root);
    let lock = root.dir.join("var/lib/dpkg/lock-frontend");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&lock)
        .unwrap();
    // A process holding dpkg's (fcntl) lock, as apt and dpkg take it.
    let script = format!(
        "import fcntl,sys,time\nf=open({:?},'r+')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nprint('locked',flush=True)\ntime.sleep(60)\n",
        lock.display().to_string()
    );
    let mut holder = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed to hold a lock (Debian package python3)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let status = std::fs::read(root.status_path()).unwrap();

    let opts = InstallOptions {
        lock_wait: Duration::from_millis(600),
        ..InstallOptions::default()
    };
    let start = Instant::now();
    let result = install(&root, &plan, &opts);
    let took = start.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    let e = result.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, InstallError::Locked { .. }), "{msg}");
    assert!(
        msg.contains(&format!("process {}", holder.id())) && msg.contains("python3"),
        "{msg}"
    );
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(std::fs::read(root.status_path()).unwrap() == status);

    // Free again: the install goes through.
    assert!(install(&root, &plan, &opts).unwrap().all_installed());
}

/// A hanging apt-get (the real one simulates; the real run hangs with a
/// child) is killed with its whole process group at the install timeout.
#[test]
fn a_hanging_apt_get_times_out_and_its_process_group_is_killed() {
    let (tmp, root) = testbed("apt-hang");
    let plan = default_plan(&root);
    let opts = InstallOptions {
        runner: common::hanging_tool(&tmp.0, "apt-get", "-s "),
        install_timeout: Duration::from_secs(2),
        ..InstallOptions::default()
    };
    let before = versions(&root);
    let start = Instant::now();
    let e = install(&root, &plan, &opts).unwrap_err();
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
    assert_eq!(versions(&root), before);
}
