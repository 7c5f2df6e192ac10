//! `patchfleet-agent install` against the real APT test bed of testbeds.md
//! A0/A1 (built by `crates/pkg/tests/testbed/apt/build.sh` into a temp
//! folder: real apt-get and dpkg with the root's `APT_CONFIG`, `dpkg
//! --root`; nothing outside the folder is changed).
//!
//! Missing tools fail the test with the package to install; never skipped.

use jiff::{SignedDuration, Timestamp};
#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use common::{TempDir, build_apt_testbed};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{installed_version, states};

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");

/// Builds the APT test bed in a fresh temp folder; its root is `<dir>/root`,
/// with the build's reboot flag removed (the node "rebooted").
fn testbed(tag: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(tag);
    build_apt_testbed(&tmp.0);
    let root = tmp.0.join("root");
    for f in ["reboot-required", "reboot-required.pkgs"] {
        let _ = std::fs::remove_file(root.join("var/run").join(f));
    }
    (tmp, root)
}

fn agent(args: &[&str]) -> Output {
    Command::new(AGENT)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("{AGENT}: {e}"))
}

fn json_ok(args: &[&str]) -> Value {
    let out = agent(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "patchfleet-agent {args:?}: {:?}\n{stderr}",
        out.status
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

/// `name → result` of the install results.
fn results(install: &Value) -> BTreeMap<String, String> {
    install["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_text(root: &Path) -> String {
    std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap()
}

fn install_args<'a>(root: &'a str, boot: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "install",
        "--root",
        root,
        "--predefined",
        "AWS-DebianDefaultPatchBaseline",
        "--output",
        "json",
        "--boot-time",
        boot,
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn dry_run_changes_nothing() {
    let (_tmp, root) = testbed("install-dry");
    let r = root.to_str().unwrap();
    let status = status_text(&root);
    let boot = Timestamp::now().to_string();
    let out = json_ok(&install_args(r, &boot, &["--dry-run"]));
    assert_eq!(out["DryRun"], true);
    let planned: Vec<&str> = out["InstallPlan"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["tb-hello", "tb-kernel"], "{out:#}");
    let installs: Vec<&str> = out["Simulation"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "Install")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(installs, ["tb-hello", "tb-kernel"], "{out:#}");
    assert_eq!(
        status_text(&root),
        status,
        "--dry-run changed the dpkg status"
    );
    assert!(!root.join("var/run/reboot-required").exists());

    // The table form says the same, and changes nothing either.
    let out = agent(&["install", "--root", r, "--dry-run"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("tb-kernel 1.1-1"), "{text}");
    assert!(text.contains("nothing changed"), "{text}");
    assert_eq!(status_text(&root), status);
}

#[test]
fn install_then_report() {
    // Boot time after the install instant: the new versions are Installed.
    let (_tmp, root) = testbed("install-run");
    let r = root.to_str().unwrap();
    let boot = (Timestamp::now() + SignedDuration::from_hours(1)).to_string();
    let out = json_ok(&install_args(r, &boot, &[]));
    assert_eq!(
        results(&out["Install"]),
        BTreeMap::from([
            ("tb-hello".to_string(), "Installed".to_string()),
            ("tb-kernel".to_string(), "Installed".to_string()),
        ]),
        "{out:#}"
    );
    let st = states(&out["Report"]);
    assert_eq!(st["tb-hello"], "Installed", "{st:?}");
    assert_eq!(st["tb-kernel"], "Installed", "{st:?}");
    assert_eq!(st["tb-tool"], "InstalledOther", "{st:?}");
    assert_eq!(out["Report"]["InstancePatchState"]["Operation"], "Install");
    assert_eq!(out["Report"]["InstancePatchState"]["FailedCount"], 0);
    assert_eq!(out["RebootRequired"], true);
    assert_eq!(
        out["Install"]["reboot_required"][0]["packages"][0],
        "tb-kernel"
    );
    assert_eq!(installed_version(&root, "tb-hello"), "1.1-1");
    assert_eq!(installed_version(&root, "tb-kernel"), "1.1-1");
    assert_eq!(installed_version(&root, "tb-tool"), "2.0-1");

    // RebootIfNeeded installed something: a reboot is decided, but this
    // root is not the system's and no --reboot-command was given.
    assert_eq!(out["Reboot"], true);
    assert_eq!(
        out["Report"]["InstancePatchState"]["RebootOption"],
        "RebootIfNeeded"
    );
}

/// Worked example E12: NoReboot leaves what it installed pending (and says
/// so in the node's state file) until the node has booted again.
#[test]
fn no_reboot_then_reboot_and_scan() {
    let (_tmp, root) = testbed("install-pending");
    let r = root.to_str().unwrap();
    let boot = (Timestamp::now() - SignedDuration::from_hours(1)).to_string();
    let out = json_ok(&install_args(r, &boot, &["--reboot-option", "NoReboot"]));
    let st = states(&out["Report"]);
    assert_eq!(st["tb-hello"], "InstalledPendingReboot", "{st:?}");
    assert_eq!(st["tb-kernel"], "InstalledPendingReboot", "{st:?}");
    assert_eq!(
        results(&out["Install"])["tb-kernel"],
        "Installed",
        "{out:#}"
    );
    assert_eq!(out["Reboot"], false);
    let state = root.join("var/lib/patchfleet/patch-states.json");
    let text = std::fs::read_to_string(&state).expect("the state file is written");
    assert!(text.contains("\"tb-kernel.all:1.1-1\""), "{text}");
    assert!(text.contains("\"tb-hello.all:1.1-1\""), "{text}");
    assert!(
        out["Report"]["InstancePatchState"]
            .get("LastNoRebootInstallOperationTime")
            .is_some(),
        "{out:#}"
    );

    // A scan before the reboot still says pending, even in
    // patch-manager-only terms: the state file remembers.
    let scan = |boot: &str| {
        json_ok(&[
            "scan",
            "--root",
            r,
            "--predefined",
            "AWS-DebianDefaultPatchBaseline",
            "--output",
            "json",
            "--boot-time",
            boot,
        ])
    };
    let st = states(&scan(&boot));
    assert_eq!(st["tb-kernel"], "InstalledPendingReboot", "{st:?}");
    // After a reboot the next scan reports them Installed (compliant).
    let rebooted = (Timestamp::now() + SignedDuration::from_hours(1)).to_string();
    let after = scan(&rebooted);
    let st = states(&after);
    assert_eq!(st["tb-kernel"], "Installed", "{st:?}");
    assert_eq!(st["tb-hello"], "Installed", "{st:?}");
    assert_eq!(after["Compliance"]["Status"], "COMPLIANT", "{after:#}");
}

/// RebootIfNeeded reboots through the given command, after the report.
#[test]
fn reboot_if_needed_runs_the_reboot_command() {
    let (tmp, root) = testbed("install-reboot");
    let r = root.to_str().unwrap();
    let marker = tmp.0.join("rebooted");
    let command = format!("touch {}", marker.display());
    let boot = (Timestamp::now() - SignedDuration::from_hours(1)).to_string();
    let out = json_ok(&install_args(r, &boot, &["--reboot-command", &command]));
    assert_eq!(out["Reboot"], true);
    assert!(marker.exists(), "the reboot command did not run");
    // Reported before the reboot: this run's packages are Installed.
    let st = states(&out["Report"]);
    assert_eq!(st["tb-kernel"], "Installed", "{st:?}");
    assert!(!root.join("var/lib/patchfleet/patch-states.json").exists());
}

/// A dpkg run cut short leaves tb-kernel half-configured (`iF`): dpkg
/// chroots into the root to run the postinst and finds no `/bin/sh` there
/// (testbeds.md A1). The scan reports it and changes nothing; only
/// `install --repair` finishes it (`dpkg --configure -a`), then installs.
#[test]
fn an_interrupted_dpkg_run_is_reported_and_repaired_only_on_request() {
    let (tmp, root) = testbed("repair");
    let r = root.to_str().unwrap();
    let deb = tmp.0.join("repo/pool/main/tb-kernel_1.1-1_all.deb");
    let out = Command::new("dpkg")
        .args([
            &format!("--root={r}"),
            &format!("--admindir={r}/var/lib/dpkg"),
            &format!("--log={r}/var/log/dpkg.log"),
            "-i",
            deb.to_str().unwrap(),
        ])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the postinst should not have run");
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(
        status.contains("Package: tb-kernel\nStatus: install ok half-configured"),
        "{status}"
    );

    // Reported, not repaired: the scan leaves the status file as it was.
    let out = agent(&["facts", "--root", r]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tb-kernel:all is half-done (iF, install ok half-configured)")
            && stderr.contains("dpkg --configure -a"),
        "{stderr}"
    );
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = facts["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"tb-kernel"), "{names:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap(),
        status
    );

    // --repair configures it (its postinst raises the reboot flag), then
    // the install goes on.
    let out = json_ok(&[
        "install",
        "--root",
        r,
        "--predefined",
        "AWS-DebianDefaultPatchBaseline",
        "--repair",
        "--reboot-option",
        "NoReboot",
        "--output",
        "json",
    ]);
    assert_eq!(installed_version(&root, "tb-kernel"), "1.1-1");
    assert_eq!(installed_version(&root, "tb-hello"), "1.1-1");
    assert!(root.join("var/run/reboot-required").is_file());
    assert_eq!(
        out["Report"]["InstancePatchState"]["FailedCount"], 0,
        "{out:#}"
    );
}

/// `install` on a dnf root (testbeds.md B) and a zypper root (C) through
/// the same command: the backends differ, the report does not. The agent is
/// given no `HOME`: it finds the root's rpm database through its own
/// private macros.
#[test]
fn install_on_dnf_and_zypper_roots() {
    let tmp = TempDir::new("rpm-install");
    let (dnf_root, _) = common::build_dnf_testbed(&tmp.0.join("dnf"), "rhel");
    let (zypper_root, _) = common::build_zypper_testbed(&tmp.0.join("zypper"));
    for (root, baseline) in [
        (&dnf_root.dir, "AWS-RedHatDefaultPatchBaseline"),
        (&zypper_root.dir, "AWS-SuseDefaultPatchBaseline"),
    ] {
        let r = root.to_str().unwrap();
        let args = |extra: &[&'static str]| {
            let mut a = vec![
                "install",
                "--root",
                r,
                "--predefined",
                baseline,
                "--boot-time",
                "2020-01-01T00:00:00Z",
                "--output",
                "json",
            ];
            a.extend_from_slice(extra);
            a
        };
        let dry = json_ok(&args(&["--dry-run"]));
        let planned: Vec<&str> = dry["InstallPlan"]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(planned.contains(&"tb-kernel"), "{r}: {dry:#}");
        assert!(
            !dry["Simulation"]["steps"].as_array().unwrap().is_empty(),
            "{r}: {dry:#}"
        );

        let out = json_ok(&args(&["--reboot-option", "NoReboot"]));
        let results: BTreeMap<String, String> = out["Install"]["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["result"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(results.len(), planned.len(), "{r}: {out:#}");
        assert!(results.values().all(|v| v == "Installed"), "{r}: {out:#}");
        let st = states(&out["Report"]);
        // NoReboot: what this run installed waits for a reboot.
        assert_eq!(st["tb-kernel"], "InstalledPendingReboot", "{r}: {st:?}");
        assert_eq!(out["Report"]["InstancePatchState"]["FailedCount"], 0);
        assert_eq!(out["Reboot"], false);
    }
}

/// The zero-day path: `--install-override-list` installs exactly the listed
/// package (tb-tool's non-security update, which the baseline would not
/// install) and nothing the baseline would have installed.
#[test]
fn an_install_override_list_installs_exactly_its_packages() {
    let (tmp, root) = testbed("override");
    let r = root.to_str().unwrap();
    let list = tmp.0.join("override.yaml");
    std::fs::write(
        &list,
        "patches:\n  - id: 'tb-tool'\n    title: 'tb-tool*'\n",
    )
    .unwrap();
    let out = json_ok(&[
        "install",
        "--root",
        r,
        "--predefined",
        "AWS-DebianDefaultPatchBaseline",
        "--install-override-list",
        list.to_str().unwrap(),
        "--reboot-option",
        "NoReboot",
        "--output",
        "json",
    ]);
    let installed: Vec<&str> = out["Install"]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(installed, ["tb-tool"], "{out:#}");
    assert_eq!(installed_version(&root, "tb-tool"), "2.1-1");
    assert_eq!(installed_version(&root, "tb-hello"), "1.0-1");
    assert_eq!(installed_version(&root, "tb-kernel"), "1.0-1");
    let state = &out["Report"]["InstancePatchState"];
    assert_eq!(
        state["InstallOverrideList"],
        list.to_str().unwrap(),
        "{state:#}"
    );
    // The baseline still judges: its security updates are still missing.
    let st = states(&out["Report"]);
    assert_eq!(st["tb-hello"], "Missing", "{st:?}");

    let bad = tmp.0.join("bad.yaml");
    std::fs::write(&bad, "patches: 7\n").unwrap();
    let out = agent(&[
        "install",
        "--root",
        r,
        "--install-override-list",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert_eq!(installed_version(&root, "tb-hello"), "1.0-1");
}
