//! The dnf/yum install against the real dnf test bed (testbeds.md B, the
//! root of `rpm_scan.rs`: `testbed/make-rpm-repo.sh` and
//! `testbed/rpm/make-dnf-root.sh`), plus the install-only `kernel` from
//! `testbed/rpm/make-kernel-repo.sh` where a test needs it. Real dnf with
//! `--installroot`; everything in a temp folder. The host's rpm database,
//! dnf cache and reboot flags are checked untouched.
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::Timestamp;
use patchfleet_core::baseline::Baseline;
use patchfleet_core::eval::{
    CompiledBaseline, EvalOptions, InstallOutcome, InstallPlan, Operation, PendingRebootScope,
    PlanSource, PlannedInstall, evaluate,
};
use patchfleet_core::facts::RebootSource;
use patchfleet_core::inventory::Inventory;
use patchfleet_pkg::install::{InstallError, InstallOptions, PackageResult, SimAction};
use patchfleet_pkg::rpm::install::{install, simulate};
use patchfleet_pkg::rpm::{RpmRoot, parse_rpm_query, rpm_query_command, scan};
use patchfleet_pkg::runner::{DEFAULT_PATH, RunError, Runner};
mod common;

use common::{
    TempDir, add_kernel_repo, build_dnf_testbed, host_rpm_snapshot, snapshot_tree, tree_changes,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// The test bed in a fresh temp folder, with `kernel` 5.14.0-1 installed
/// when `kernel`.
fn testbed(tag: &str, kernel: bool) -> (TempDir, RpmRoot) {
    let tmp = TempDir::new(tag);
    let (root, took) = build_dnf_testbed(&tmp.0, "rhel");
    if kernel {
        add_kernel_repo(&tmp.0, &root);
    }
    eprintln!("{tag}: test bed built in {took:?}");
    (tmp, root)
}

/// Every installed package as `name-[epoch:]version-release.arch`.
fn rpm_qa(root: &RpmRoot) -> BTreeSet<String> {
    let out = Runner::default()
        .run_ok(&rpm_query_command(root))
        .unwrap_or_else(|e| panic!("{e}"));
    parse_rpm_query(&out.command, &out.stdout_text())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|p| format!("{}-{}.{}", p.name, p.version, p.arch))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
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

fn plan_of(packages: Vec<PlannedInstall>) -> InstallPlan {
    InstallPlan {
        source: PlanSource::InstallOverrideList,
        packages,
        rejected_patches: Vec::new(),
        block_rejected: false,
    }
}

/// The host's reboot flags and the package-manager entries of `/run`: other
/// programs change `/run`, so only the names that could be ours are kept.
fn host_run() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in ["/run", "/run/lock", "/var/run"] {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if ["dnf", "rpm", "yum", "reboot", "zypp"]
                .iter()
                .any(|k| n.contains(k))
            {
                out.insert(format!("{d}/{n}"));
            }
        }
    }
    out
}

/// Fails if the host's rpm database, dnf cache or `/run` changed since
/// `before` was taken.
struct HostGuard {
    rpm: Vec<common::TreeSnapshot>,
    run: BTreeSet<String>,
}

impl HostGuard {
    fn new() -> HostGuard {
        HostGuard {
            rpm: host_rpm_snapshot(),
            run: host_run(),
        }
    }

    fn check(self) {
        assert!(
            host_rpm_snapshot() == self.rpm,
            "the host's /var/cache/dnf or /var/lib/rpm changed"
        );
        assert_eq!(host_run(), self.run, "the host's /run changed");
    }
}

/// The baseline of the first test: security and bugfix notices approved at
/// once, `kernel-5.14.0-2` (no notice) on the approved list, `tb-tool`
/// rejected (ALLOW_AS_DEPENDENCY).
fn subset_baseline() -> Baseline {
    Baseline::from_yaml(
        "Name: tb-subset\n\
         OperatingSystem: REDHAT_ENTERPRISE_LINUX\n\
         ApprovalRules:\n  PatchRules:\n\
         \x20   - PatchFilterGroup:\n        PatchFilters:\n\
         \x20         - {Key: CLASSIFICATION, Values: [Security, Bugfix]}\n\
         \x20     ApproveAfterDays: 0\n\
         ApprovedPatches: [kernel-5.14.0-2.noarch]\n\
         ApprovedPatchesEnableNonSecurity: true\n\
         RejectedPatches: [tb-tool]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn plan_for(root: &RpmRoot, baseline: &Baseline) -> InstallPlan {
    let facts = scan(root).unwrap_or_else(|e| panic!("{e}"));
    let compiled = CompiledBaseline::compile(baseline).unwrap_or_else(|e| panic!("{e}"));
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

#[test]
fn installs_exactly_the_approved_subset() {
    let host = HostGuard::new();
    let (_tmp, root) = testbed("rpm-install", true);
    let before = rpm_qa(&root);
    assert_eq!(
        before,
        set(&[
            "kernel-5.14.0-1.noarch",
            "tb-hello-1.0-1.noarch",
            "tb-kernel-1.0-1.noarch",
            "tb-kmod-1.0-1.noarch",
            "tb-tool-1:2.0-1.noarch",
        ])
    );
    let plan = plan_for(&root, &subset_baseline());
    let mut planned: Vec<(&str, &str)> = plan
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    planned.sort();
    assert_eq!(
        planned,
        [("kernel", "5.14.0-2"), ("tb-kernel", "1.1-1")],
        "{plan:#?}"
    );

    let sim = simulate(&root, &plan, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rpm_qa(&root), before, "the simulation changed packages");
    let mut steps: Vec<(SimAction, &str, Option<&str>, Option<&str>)> = sim
        .steps
        .iter()
        .map(|s| {
            (
                s.action,
                s.name.as_str(),
                s.old.as_deref(),
                s.new.as_deref(),
            )
        })
        .collect();
    steps.sort_by_key(|s| s.1);
    assert_eq!(
        steps,
        Vec::from([
            (
                SimAction::Install,
                "kernel",
                Some("5.14.0-1"),
                Some("5.14.0-2")
            ),
            (
                SimAction::Install,
                "tb-kernel",
                Some("1.0-1"),
                Some("1.1-1")
            ),
        ]),
        "{sim:#?}"
    );
    assert!(
        sim.command.starts_with("dnf -C --assumeno"),
        "{}",
        sim.command
    );

    let t = Instant::now();
    let report =
        install(&root, &plan, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("installed in {:?}", t.elapsed());
    assert_eq!(report.exit.as_deref(), Some("exit status 0"));
    assert!(report.all_installed(), "{report:#?}");
    assert_eq!(report.packages.len(), 2);
    let prev: Vec<(&str, Option<&str>)> = report
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.previous.as_deref()))
        .collect();
    assert!(prev.contains(&("tb-kernel", Some("1.0-1"))), "{prev:?}");
    assert!(prev.contains(&("kernel", Some("5.14.0-1"))), "{prev:?}");

    // Exactly those NEVRAs: tb-kernel upgraded, the new kernel next to the
    // old one; rejected tb-tool, unplanned tb-hello and tb-kmod untouched.
    assert_eq!(
        rpm_qa(&root),
        set(&[
            "kernel-5.14.0-1.noarch",
            "kernel-5.14.0-2.noarch",
            "tb-hello-1.0-1.noarch",
            "tb-kernel-1.1-1.noarch",
            "tb-kmod-1.0-1.noarch",
            "tb-tool-1:2.0-1.noarch",
        ])
    );

    // The kernel's %post flag (in the root) and the core package.
    let sources: Vec<RebootSource> = report.reboot_required.iter().map(|r| r.source).collect();
    assert_eq!(
        sources,
        [
            RebootSource::RebootRequiredFile,
            RebootSource::CorePackageUpdated
        ],
        "{:#?}",
        report.reboot_required
    );
    assert_eq!(report.reboot_required[0].packages, ["kernel"]);
    assert_eq!(
        report.reboot_required[1].packages,
        ["kernel-5.14.0-2.noarch"]
    );
    assert!(root.dir.join("var/run/reboot-required").is_file());

    // Again: nothing left to do, still Installed, and no core package
    // changed by this run.
    let again = install(&root, &plan, &InstallOptions::default()).unwrap();
    assert!(again.all_installed(), "{again:#?}");
    assert!(
        again
            .reboot_required
            .iter()
            .all(|r| r.source != RebootSource::CorePackageUpdated),
        "{:#?}",
        again.reboot_required
    );
    host.check();
}

#[test]
fn a_version_that_does_not_exist_fails_with_dnfs_reason() {
    let host = HostGuard::new();
    let (_tmp, root) = testbed("rpm-install-missing", false);
    let plan = plan_of(vec![
        planned("tb-hello", "9.9-1"),
        planned("tb-tool", "1:2.1-1"),
        // Available, but not installed: upgrade never installs it.
        planned("tb-absent", "1.0-1"),
    ]);
    let report =
        install(&root, &plan, &InstallOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let result = |n: &str| {
        report
            .packages
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .result
            .clone()
    };
    assert_eq!(result("tb-tool"), PackageResult::Installed, "{report:#?}");
    for (name, nevra) in [
        ("tb-hello", "tb-hello-9.9-1.noarch"),
        ("tb-absent", "tb-absent-1.0-1.noarch"),
    ] {
        match result(name) {
            PackageResult::Failed { reason } => assert_eq!(
                reason,
                format!("No match for argument: {nevra}"),
                "{report:#?}"
            ),
            r => panic!("{name}: {r:?}"),
        }
    }
    assert_eq!(report.simulation.unresolved.len(), 2);
    assert_eq!(
        rpm_qa(&root),
        set(&[
            "tb-hello-1.0-1.noarch",
            "tb-kernel-1.0-1.noarch",
            "tb-tool-1:2.1-1.noarch",
        ])
    );
    assert!(report.reboot_required.is_empty(), "{report:#?}");

    // Nothing but unknown versions: no real run at all.
    let report = install(
        &root,
        &plan_of(vec![planned("tb-kernel", "7.0-1")]),
        &InstallOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.exit, None, "{report:#?}");
    assert!(
        matches!(&report.packages[0].result, PackageResult::Failed { reason } if reason.contains("tb-kernel-7.0-1.noarch")),
        "{report:#?}"
    );

    // A version older than the installed one: dnf does nothing and says
    // so with status 0; the verification catches it.
    let report = install(
        &root,
        &plan_of(vec![planned("tb-tool", "1:2.0-1")]),
        &InstallOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.packages[0].result,
        PackageResult::Failed {
            reason: "still at 1:2.1-1".into()
        },
        "{report:#?}"
    );
    host.check();
}

#[test]
fn block_refuses_a_rejected_package_before_anything_changes() {
    let host = HostGuard::new();
    let (_tmp, root) = testbed("rpm-install-block", true);
    let db = root.dir.join("var/lib/rpm");
    let db_before = snapshot_tree(&db);
    let before = rpm_qa(&root);

    // tb-kmod 1.1-1 requires the new kernel: dnf pulls it in as a
    // dependency, and the kernel is rejected.
    let mut plan = plan_of(vec![
        planned("tb-hello", "1.1-1"),
        planned("tb-kmod", "1.1-1"),
    ]);
    plan.rejected_patches = vec!["kernel-5.14.0-2.noarch".to_string()];
    plan.block_rejected = true;
    let e = simulate(&root, &plan, &InstallOptions::default()).unwrap_err();
    assert!(matches!(e, InstallError::Rejected { .. }), "{e}");
    let e = install(&root, &plan, &InstallOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("install kernel 5.14.0-2")
            && msg.contains("'kernel-5.14.0-2.noarch'")
            && msg.contains("BLOCK"),
        "{msg}"
    );

    // A planned package itself, by a version glob.
    let mut direct = plan_of(vec![
        planned("tb-hello", "1.1-1"),
        planned("tb-kernel", "1.1-1"),
    ]);
    direct.rejected_patches = vec!["tb-kernel-1.1-*".to_string()];
    direct.block_rejected = true;
    let e = install(&root, &direct, &InstallOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("tb-kernel 1.1-1") && msg.contains("'tb-kernel-1.1-*'"),
        "{msg}"
    );
    assert_eq!(rpm_qa(&root), before);
    let changed = tree_changes(&db_before, &snapshot_tree(&db));
    assert!(changed.is_empty(), "the rpm database changed: {changed:?}");
    assert!(!root.dir.join("var/run/reboot-required").exists());

    // ALLOW_AS_DEPENDENCY (no block): the dependency comes along.
    plan.block_rejected = false;
    let report = install(&root, &plan, &InstallOptions::default()).unwrap();
    assert!(report.all_installed(), "{report:#?}");
    assert!(rpm_qa(&root).contains("kernel-5.14.0-2.noarch"));
    host.check();
}

/// A child process holding a POSIX (fcntl) write lock on `path`, as rpm
/// takes its transaction lock (flock would be a different kind of lock).
fn hold_lock(path: &Path) -> std::process::Child {
    let script = format!(
        "import fcntl,time\nf=open({:?},'a')\nfcntl.lockf(f,fcntl.LOCK_EX|fcntl.LOCK_NB)\nprint('locked',flush=True)\ntime.sleep(60)\n",
        path.display().to_string()
    );
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed to hold a lock (Debian package python3)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    child
}

#[test]
fn held_locks_name_their_holder_after_a_bounded_wait() {
    let host = HostGuard::new();
    let (_tmp, root) = testbed("rpm-install-lock", false);
    let plan = plan_of(vec![planned("tb-hello", "1.1-1")]);
    let before = rpm_qa(&root);
    let opts = InstallOptions {
        lock_wait: Duration::from_secs(1),
        ..InstallOptions::default()
    };
    let locked = |what: &str, holder: u32| {
        let start = Instant::now();
        let result = install(&root, &plan, &opts);
        let took = start.elapsed();
        let e = result.unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, InstallError::Locked { .. }), "{what}: {msg}");
        assert!(
            msg.contains(&format!("process {holder} (")) && msg.contains(what),
            "{what}: {msg}"
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(15),
            "{what}: {took:?}"
        );
        assert_eq!(rpm_qa(&root), before, "{what}");
    };

    // rpm's transaction lock.
    let lock = root.dir.join("var/lib/rpm/.rpm.lock");
    let mut holder = hold_lock(&lock);
    locked(".rpm.lock", holder.id());
    let _ = holder.kill();
    let _ = holder.wait();

    // dnf's rpmdb lock: a pid file naming a live process.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pidfile = root.dir.join("var/lib/dnf/rpmdb_lock.pid");
    std::fs::write(&pidfile, sleeper.id().to_string()).unwrap();
    locked("rpmdb_lock.pid", sleeper.id());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    // The holder is gone: a stale pid file, as dnf treats it, is no lock.
    let report = install(&root, &plan, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.all_installed(), "{report:#?}");
    host.check();
}

#[test]
fn yum_systems_run_yum() {
    let host = HostGuard::new();
    let (tmp, root) = testbed("rpm-install-yum", false);
    // Amazon Linux 2: yum. Debian has no yum; on RHEL 8+ it is dnf.
    std::fs::write(
        root.dir.join("etc/os-release"),
        "NAME=\"Amazon Linux\"\nID=\"amzn\"\nVERSION_ID=\"2\"\n",
    )
    .unwrap();
    let plan = plan_of(vec![
        planned("tb-hello", "1.1-1"),
        planned("tb-tool", "1:2.1-1"),
    ]);
    // Without a yum on PATH the install cannot run: it is yum it calls.
    let e = install(&root, &plan, &InstallOptions::default()).unwrap_err();
    assert!(
        matches!(&e, InstallError::Run(RunError::NotFound { program, .. }) if program == "yum"),
        "{e}"
    );

    let bin = tmp.0.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/dnf", bin.join("yum")).unwrap();
    let opts = InstallOptions {
        runner: Runner {
            path: format!("{}:{DEFAULT_PATH}", bin.display()),
            ..Runner::default()
        },
        ..InstallOptions::default()
    };
    let report = install(&root, &plan, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.simulation.command.starts_with("yum "),
        "{}",
        report.simulation.command
    );
    assert!(report.all_installed(), "{report:#?}");
    assert_eq!(
        rpm_qa(&root),
        set(&[
            "tb-hello-1.1-1.noarch",
            "tb-kernel-1.0-1.noarch",
            "tb-tool-1:2.1-1.noarch",
        ])
    );
    host.check();
}

#[test]
fn a_hanging_dnf_times_out_and_its_process_group_is_killed() {
    let host = HostGuard::new();
    let (tmp, root) = testbed("rpm-install-hang", false);
    // The simulation is the real dnf; the real run hangs, with a child.
    let runner = common::hanging_tool(&tmp.0, "dnf", "--assumeno");
    let opts = InstallOptions {
        runner,
        install_timeout: Duration::from_secs(2),
        ..InstallOptions::default()
    };
    let before = rpm_qa(&root);
    let start = Instant::now();
    let e = install(&root, &plan_of(vec![planned("tb-hello", "1.1-1")]), &opts).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&e, InstallError::Run(RunError::TimedOut { timeout, .. }) if *timeout == Duration::from_secs(2)),
        "{e}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    common::assert_hanging_tool_killed(&tmp.0);
    assert_eq!(rpm_qa(&root), before);
    host.check();
}
