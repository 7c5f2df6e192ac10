//! Run Command invocations on real test-bed roots, without a server: the
//! hidden `patchfleet-agent execute` runs one invocation through the same
//! executor, journal and document step as `run` (the step in a child of its
//! own session, its output and result in the journal), and prints the report
//! `run` would send. Running it again with the same invocation is a
//! re-delivery after a restart: it resumes an unfinished invocation or
//! prints the stored result, and never runs one twice — asserted from the
//! journal's own execution record (`<state>/invocations/<id>.json`).
//!
//! The APT bed is testbeds.md A1 (`crates/pkg/tests/testbed/apt/build.sh`),
//! the dnf bed B. Hooks live under cargo's target directory: a hook is run
//! only from directories nobody but root can write, all the way up.

#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use common::{TempDir, build_apt_testbed};
use patchfleet_protocol::{CommandInvocation, OverridePatch};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{
    Hooks, boot_between_installs, boots, count, debian, gone, invocation, steps, wait_for_lines,
    with_hooks,
};

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");
/// After every install of the tests: nothing is pending a reboot.
const NEW_BOOT: &str = "2099-01-01T00:00:00Z";

/// A test bed root, the agent's state directory and the boot-id file.
struct Bed {
    tmp: TempDir,
    root: PathBuf,
    /// Between the bed's own installs and the test's: what the test
    /// installs is pending a reboot until the boot time moves on.
    boot_time: String,
    extra: Vec<String>,
}

impl Bed {
    fn apt(tag: &str) -> Bed {
        let tmp = TempDir::new(tag);
        build_apt_testbed(&tmp.0);
        let root = tmp.0.join("root");
        // The build's own install raised the flag: the node "rebooted".
        for f in ["reboot-required", "reboot-required.pkgs"] {
            let _ = std::fs::remove_file(root.join("var/run").join(f));
        }
        Bed::with_root(tmp, root)
    }

    fn with_root(tmp: TempDir, root: PathBuf) -> Bed {
        let bed = Bed {
            tmp,
            root,
            boot_time: boot_between_installs(),
            extra: Vec::new(),
        };
        bed.boot("boot-A");
        bed
    }

    fn state(&self) -> PathBuf {
        self.tmp.0.join("state")
    }

    fn boot(&self, id: &str) {
        std::fs::write(self.tmp.0.join("boot_id"), format!("{id}\n")).unwrap();
    }

    /// Writes `inv` where `execute` reads it.
    fn invocation(&self, inv: &CommandInvocation) -> PathBuf {
        let path = self.tmp.0.join(format!("{}.json", inv.invocation_id));
        std::fs::write(&path, serde_json::to_vec_pretty(inv).unwrap()).unwrap();
        path
    }

    fn command(&self, inv: &Path) -> Command {
        let mut c = Command::new(AGENT);
        c.arg("execute")
            .arg("--invocation")
            .arg(inv)
            .args(support::node_flags(
                &self.state(),
                &self.root,
                &self.boot_time,
                &self.tmp.0.join("boot_id"),
            ))
            .args(&self.extra)
            .env_remove("RUST_BACKTRACE");
        c
    }

    /// `execute`: its report.
    fn execute(&self, inv: &CommandInvocation) -> Value {
        let path = self.invocation(inv);
        report(&self.command(&path).output().unwrap())
    }

    /// The journal's record of `id`.
    fn record(&self, id: &str) -> Value {
        let path = self.state().join("invocations").join(format!("{id}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn dpkg_status(&self) -> String {
        std::fs::read_to_string(self.root.join("var/lib/dpkg/status")).unwrap()
    }

    fn installed(&self, name: &str) -> String {
        support::installed_version(&self.root, name)
    }

    /// A script (program for `--reboot-command`) that appends a line to a
    /// marker file instead of rebooting.
    fn fake_reboot(&mut self) -> PathBuf {
        let marker = self.tmp.0.join("reboots");
        let script = self.tmp.0.join("fake-reboot");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho reboot >> {}\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.extra
            .extend(["--reboot-command".to_string(), script.display().to_string()]);
        marker
    }

    fn hooks(&mut self, hooks: &Hooks) {
        self.extra.extend([
            "--hooks-root".to_string(),
            hooks.root().display().to_string(),
        ]);
    }
}

fn report(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "execute: {:?}\n{stderr}", out.status);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

/// Status, details and exit code of a report.
fn outcome(r: &Value) -> (&str, &str, i64) {
    (
        r["status"].as_str().unwrap(),
        r["details"].as_str().unwrap(),
        r["response_code"].as_i64().unwrap(),
    )
}

fn stdout(r: &Value) -> &str {
    r["stdout"].as_str().unwrap()
}

fn stderr(r: &Value) -> &str {
    r["stderr"].as_str().unwrap()
}

#[test]
fn a_scan_reports_the_node_and_changes_nothing() {
    let bed = Bed::apt("rc-scan");
    let before = common::snapshot(&bed.root);
    let r = bed.execute(&debian("scan-1", &[("Operation", "Scan")]));
    assert_eq!(outcome(&r), ("Success", "Success", 0), "{r:#}");
    let out = stdout(&r);
    assert!(
        out.starts_with("AWS-RunPatchBaseline: Operation Scan, RebootOption RebootIfNeeded"),
        "{out}"
    );
    assert!(out.contains("│ Missing ┆ tb-hello.all:1.1-1"), "{out}");
    assert!(
        out.contains(
            "Installed count: 0, Installed other count: 1, Installed pending reboot count: 0, \
             Installed rejected count: 0, Missing count: 2, Not Applicable count: 0, Failed count: 0\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("Instance is Non-Compliant with severity of INFORMATIONAL\n"),
        "{out}"
    );
    assert!(r["started_at"].is_string() && r["ended_at"].is_string());
    assert_eq!(r["reboots"], 0);
    assert_eq!(
        common::snapshot(&bed.root),
        before,
        "a Scan changed the root"
    );
    let rec = bed.record("scan-1");
    assert_eq!(steps(&rec), ["Received", "Finished"]);
    assert_eq!(rec["reported"], true);
    // Only the record stays: output and facts sidecars are gone.
    let files: Vec<String> = std::fs::read_dir(bed.state().join("invocations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["scan-1.json"]);
}

/// NoReboot: exactly the approved versions, the pending reboot recorded in
/// the node's state file (spec §4.3); delivered again, the stored result,
/// nothing run.
#[test]
fn a_no_reboot_install_installs_exact_versions_once() {
    let bed = Bed::apt("rc-noreboot");
    let inv = debian(
        "inst-1",
        &[("Operation", "Install"), ("RebootOption", "NoReboot")],
    );
    let r = bed.execute(&inv);
    assert_eq!(outcome(&r), ("Success", "Success", 0), "{r:#}");
    assert_eq!(bed.installed("tb-hello"), "1.1-1");
    assert_eq!(bed.installed("tb-kernel"), "1.1-1");
    assert_eq!(bed.installed("tb-tool"), "2.0-1", "not approved: untouched");
    let out = stdout(&r);
    assert!(out.contains("tb-kernel 1.0-1 -> 1.1-1: Installed"), "{out}");
    assert!(out.contains("Installed pending reboot count: 2,"), "{out}");
    assert!(
        out.ends_with("Reboot is not permitted because RebootOption is NoReboot\n"),
        "{out}"
    );
    let state = std::fs::read_to_string(bed.root.join("var/lib/patchfleet/patch-states.json"))
        .expect("the state file");
    assert!(
        state.contains("\"tb-kernel.all:1.1-1\"") && state.contains("\"tb-hello.all:1.1-1\""),
        "{state}"
    );
    let rec = bed.record("inst-1");
    assert_eq!(steps(&rec), ["Received", "Installing", "Finished"]);

    // Re-delivered (a new process, as after a restart): the stored result.
    let status = bed.dpkg_status();
    let dpkg_log = std::fs::read_to_string(bed.root.join("var/log/dpkg.log")).unwrap();
    let again = bed.execute(&inv);
    assert_eq!(again, r);
    assert_eq!(bed.record("inst-1"), rec, "the journal changed");
    assert_eq!(bed.dpkg_status(), status);
    assert_eq!(
        std::fs::read_to_string(bed.root.join("var/log/dpkg.log")).unwrap(),
        dpkg_log,
        "dpkg ran again"
    );
}

/// The zero-day path: the server resolved an InstallOverrideList; exactly
/// its package is installed, the baseline still judges.
#[test]
fn an_install_override_list_installs_exactly_its_packages() {
    let bed = Bed::apt("rc-override");
    let mut inv = debian(
        "ovr-1",
        &[
            ("Operation", "Install"),
            ("RebootOption", "NoReboot"),
            ("InstallOverrideList", "https://example.invalid/list.yaml"),
        ],
    );
    inv.install_override = Some(vec![OverridePatch {
        id: "tb-tool".into(),
        title: Some("tb-tool*".into()),
    }]);
    let r = bed.execute(&inv);
    assert_eq!(r["status"], "Success", "{r:#}");
    assert_eq!(bed.installed("tb-tool"), "2.1-1");
    assert_eq!(bed.installed("tb-hello"), "1.0-1");
    assert_eq!(bed.installed("tb-kernel"), "1.0-1");
    assert!(stdout(&r).contains("Missing count: 2,"), "{}", stdout(&r));
}

/// RebootIfNeeded: the reboot is journaled (boot id) and asked for, no
/// result yet; an agent restart without a reboot asks again, never
/// installs again; after the boot changed, the post-reboot hooks, a scan
/// and one final Success. Hooks in order across the reboot.
#[test]
fn reboot_if_needed_resumes_once_after_the_reboot() {
    let mut bed = Bed::apt("rc-reboot");
    let hooks = Hooks::new("reboot", bed.tmp.0.join("hooks.log"));
    for stage in [
        "pre-install.d",
        "post-install.d",
        "post-reboot.d",
        "on-exit.d",
    ] {
        hooks.add(stage, &stage.replace(".d", ""), "true");
    }
    bed.hooks(&hooks);
    let marker = bed.fake_reboot();
    let inv = with_hooks("rb-1", &[("Operation", "Install")]);

    let r = bed.execute(&inv);
    assert_eq!(
        (&r["status"], &r["response_code"], &r["reboots"]),
        (&"InProgress".into(), &(-1).into(), &1.into()),
        "{r:#}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
    assert_eq!(hooks.log(), "pre-install\npost-install\n");
    assert_eq!(bed.installed("tb-kernel"), "1.1-1");
    let rec = bed.record("rb-1");
    assert_eq!(
        steps(&rec),
        [
            "Received",
            "PreInstallHooks",
            "Installing",
            "PostInstallHooks",
            "RebootRequested"
        ]
    );
    assert!(rec["result"].is_null());

    // The agent restarted, the node did not reboot: asked again.
    let dpkg_log = std::fs::read_to_string(bed.root.join("var/log/dpkg.log")).unwrap();
    let r = bed.execute(&inv);
    assert_eq!(
        (&r["status"], &r["reboots"]),
        (&"InProgress".into(), &2.into())
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "reboot\nreboot\n"
    );

    // The node rebooted.
    bed.boot("boot-B");
    bed.boot_time = NEW_BOOT.into();
    let r = bed.execute(&inv);
    assert_eq!(
        (
            &r["status"],
            &r["details"],
            &r["response_code"],
            &r["reboots"]
        ),
        (&"Success".into(), &"Success".into(), &0.into(), &2.into()),
        "{r:#}"
    );
    assert_eq!(
        hooks.log(),
        "pre-install\npost-install\npost-reboot\non-exit\n"
    );
    let out = stdout(&r);
    // The output before the reboot is kept, the scan after it follows.
    assert!(out.contains("tb-kernel 1.0-1 -> 1.1-1: Installed"), "{out}");
    assert!(out.contains("The node booted again (boot boot-B)"), "{out}");
    assert!(out.contains("Instance is Compliant\nOnExit hooks"), "{out}");
    let rec = bed.record("rb-1");
    let s = steps(&rec);
    assert_eq!(count(&s, "Installing"), 1, "{s:?}");
    assert_eq!(count(&s, "Finished"), 1, "{s:?}");
    assert_eq!(
        s[s.len() - 4..],
        ["PostReboot", "Rescanning", "OnExitHooks", "Finished"]
    );
    let b = boots(&rec);
    assert!(b[..b.len() - 4].iter().all(|b| b == "boot-A"), "{b:?}");
    assert!(b[b.len() - 4..].iter().all(|b| b == "boot-B"), "{b:?}");
    assert_eq!(
        std::fs::read_to_string(bed.root.join("var/log/dpkg.log")).unwrap(),
        dpkg_log,
        "installed again"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "reboot\nreboot\n"
    );
    // Delivered once more: the same result.
    assert_eq!(bed.execute(&inv), r);
}

/// Reboots that never take are bounded (spec §5.4, exit 3).
#[test]
fn the_reboot_loop_guard_fails_the_invocation() {
    let mut bed = Bed::apt("rc-loop");
    let marker = bed.fake_reboot();
    bed.extra.extend(["--max-reboots".into(), "1".into()]);
    let inv = debian("loop-1", &[("Operation", "Install")]);
    assert_eq!(bed.execute(&inv)["status"], "InProgress");
    let r = bed.execute(&inv);
    assert_eq!(outcome(&r), ("Failed", "Failed", 3), "{r:#}");
    assert!(
        stderr(&r).contains("at most 1 reboots per invocation (reboot loop)"),
        "{r:#}"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
}

/// Hooks run in byte order; the first failing one stops the run before
/// the install; the on-exit hooks still run.
#[test]
fn a_failing_hook_aborts_and_the_on_exit_hooks_still_run() {
    let mut bed = Bed::apt("rc-hookfail");
    let hooks = Hooks::new("fail", bed.tmp.0.join("hooks.log"));
    hooks.add("pre-install.d", "10-first", "echo first says hello");
    hooks.add("pre-install.d", "20-fails", "echo broken >&2; exit 7");
    hooks.add("pre-install.d", "30-never", "true");
    hooks.add("on-exit.d", "exit", "true");
    bed.hooks(&hooks);
    let status = bed.dpkg_status();
    let r = bed.execute(&with_hooks("hk-1", &[("Operation", "Install")]));
    assert_eq!(outcome(&r), ("Failed", "Failed", 1), "{r:#}");
    assert_eq!(hooks.log(), "10-first\n20-fails\nexit\n");
    assert_eq!(bed.dpkg_status(), status, "installed after a failed hook");
    assert!(stdout(&r).contains("    first says hello\n"), "{r:#}");
    assert!(stdout(&r).contains("  20-fails: exit 7"), "{r:#}");
    assert!(
        stderr(&r).contains("20-fails failed (exit status 7); the patch run stops here"),
        "{r:#}"
    );
    assert_eq!(
        steps(&bed.record("hk-1")),
        ["Received", "PreInstallHooks", "OnExitHooks", "Finished"]
    );

    // A hook anyone could change refuses its stage: nothing of it runs.
    let insecure = hooks.root().join("pre-install.d/10-first");
    std::fs::set_permissions(&insecure, std::fs::Permissions::from_mode(0o757)).unwrap();
    let r = bed.execute(&with_hooks("hk-2", &[("Operation", "Install")]));
    assert_eq!(r["status"], "Failed");
    assert!(
        stdout(&r).contains("PreInstall hooks refused, none run")
            && stdout(&r).contains("world-writable"),
        "{r:#}"
    );
    assert_eq!(hooks.log(), "10-first\n20-fails\nexit\nexit\n");
    assert_eq!(bed.dpkg_status(), status);
}

/// StepTimeoutSeconds stops the step with everything it started (here
/// the reboot command and its child, in a process group of their own) and
/// reports ExecutionTimedOut.
#[test]
fn the_execution_timeout_stops_the_whole_step() {
    let mut bed = Bed::apt("rc-timeout");
    let pids = bed.tmp.0.join("pids");
    let hang = bed.tmp.0.join("hanging-reboot");
    std::fs::write(&hang, format!("#!/bin/sh\n{}\n", support::hanging(&pids))).unwrap();
    std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
    bed.extra
        .extend(["--reboot-command".into(), hang.display().to_string()]);
    let start = Instant::now();
    let r = bed.execute(&debian(
        "to-1",
        &[("Operation", "Install"), ("StepTimeoutSeconds", "3")],
    ));
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(outcome(&r), ("TimedOut", "ExecutionTimedOut", 137), "{r:#}");
    assert!(stderr(&r).contains("StepTimeoutSeconds (3 s)"), "{r:#}");
    // What ran before the timeout is in the output.
    assert!(
        stdout(&r).contains("Reboot is required: rebooting"),
        "{r:#}"
    );
    for pid in wait_for_lines(&pids, 2) {
        assert!(gone(pid), "process {pid} of the step survived");
    }
    let s = steps(&bed.record("to-1"));
    assert_eq!(s, ["Received", "Installing", "RebootRequested", "Finished"]);
    // Finished: a later boot does not resume it.
    bed.boot("boot-B");
    assert_eq!(
        bed.execute(&debian(
            "to-1",
            &[("Operation", "Install"), ("StepTimeoutSeconds", "3")]
        ))["status"],
        "TimedOut"
    );
}

/// A bed whose pre-install hook hangs (its pids in the file returned)
/// and whose on-exit hook only logs.
fn hanging_pre_install(tag: &str) -> (Bed, Hooks, PathBuf) {
    let mut bed = Bed::apt(tag);
    let hooks = Hooks::new(tag, bed.tmp.0.join("hooks.log"));
    let pids = bed.tmp.0.join("pids");
    hooks.add("pre-install.d", "slow", &support::hanging(&pids));
    hooks.add("on-exit.d", "exit", "true");
    bed.hooks(&hooks);
    (bed, hooks, pids)
}

/// The same for a hook that hangs: the hooks document declares no
/// StepTimeoutSeconds (it runs 7,200 s), but the agent enforces whatever
/// timeout the delivered document carries. The on-exit hooks run after
/// the timeout.
#[test]
fn a_hanging_hook_times_out_and_the_on_exit_hooks_still_run() {
    let (bed, hooks, pids) = hanging_pre_install("rc-hooktimeout");
    let status = bed.dpkg_status();
    let mut inv = with_hooks("th-1", &[("Operation", "Install")]);
    inv.document.step_timeout_seconds = 3;
    let r = bed.execute(&inv);
    assert_eq!(outcome(&r), ("TimedOut", "ExecutionTimedOut", 137), "{r:#}");
    for pid in wait_for_lines(&pids, 2) {
        assert!(gone(pid), "process {pid} of the hook survived");
    }
    assert_eq!(hooks.log(), "slow\nexit\n");
    assert!(stdout(&r).contains("OnExit hooks"), "{r:#}");
    assert_eq!(bed.dpkg_status(), status);
    assert_eq!(
        steps(&bed.record("th-1")),
        ["Received", "PreInstallHooks", "OnExitHooks", "Finished"]
    );
}

/// A cancel (here SIGTERM to `execute`; under `run`, a `cancel` work
/// item) stops the running step the same way and reports Cancelled.
#[test]
fn a_cancel_stops_the_running_step() {
    let (bed, hooks, pids) = hanging_pre_install("rc-cancel");
    let status = bed.dpkg_status();
    let path = bed.invocation(&with_hooks("cx-1", &[("Operation", "Install")]));
    let child = bed
        .command(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let hook_pids = wait_for_lines(&pids, 2);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let r = report(&child.wait_with_output().unwrap());
    assert_eq!(outcome(&r), ("Cancelled", "Cancelled", 137), "{r:#}");
    for pid in hook_pids {
        assert!(gone(pid), "process {pid} of the step survived");
    }
    assert_eq!(hooks.log(), "slow\nexit\n");
    assert_eq!(bed.dpkg_status(), status);
}

/// The agent dies (SIGKILL) in the middle: its step dies with it and
/// installs nothing; at the next start the interrupted step is reported
/// as failed, never repeated — during hooks as during the install.
#[test]
fn an_interrupted_invocation_fails_and_is_never_repeated() {
    let mut bed = Bed::apt("rc-killed");
    let hooks = Hooks::new("killed", bed.tmp.0.join("hooks.log"));
    let agent_pid = bed.tmp.0.join("agent.pid");
    hooks.add(
        "pre-install.d",
        "kill-agent",
        &format!(
            "while [ ! -s {p} ]; do sleep 0.05; done; kill -KILL $(cat {p}); sleep 1",
            p = agent_pid.display()
        ),
    );
    hooks.add("on-exit.d", "exit", "true");
    bed.hooks(&hooks);
    let status = bed.dpkg_status();
    let inv = with_hooks("kl-1", &[("Operation", "Install")]);
    let path = bed.invocation(&inv);
    let mut child = bed.command(&path).stdout(Stdio::null()).spawn().unwrap();
    std::fs::write(&agent_pid, child.id().to_string()).unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&exit),
        Some(9),
        "{exit:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        bed.dpkg_status(),
        status,
        "the step went on without its agent"
    );
    assert_eq!(hooks.log(), "kill-agent\n");
    let rec = bed.record("kl-1");
    assert_eq!(steps(&rec), ["Received", "PreInstallHooks"]);

    std::fs::remove_file(&agent_pid).unwrap();
    let r = bed.execute(&inv);
    assert_eq!(outcome(&r), ("Failed", "Failed", 1), "{r:#}");
    assert!(
        stderr(&r).contains("the agent stopped while running hooks"),
        "{r:#}"
    );
    assert_eq!(hooks.log(), "kill-agent\nexit\n", "hooks ran again");
    assert_eq!(bed.dpkg_status(), status);

    // The same with the record left at Installing (the package manager may
    // have been stopped mid-transaction): failed, not installed again.
    let mut rec = bed.record("kl-1");
    rec["step"] = "Installing".into();
    rec["result"] = Value::Null;
    rec["reported"] = false.into();
    let inv2 = with_hooks("kl-2", &[("Operation", "Install")]);
    rec["invocation_id"] = "kl-2".into();
    rec["document"] = serde_json::to_value(&inv2).unwrap();
    std::fs::write(
        bed.state().join("invocations/kl-2.json"),
        serde_json::to_vec(&rec).unwrap(),
    )
    .unwrap();
    let r = bed.execute(&inv2);
    assert_eq!(r["status"], "Failed", "{r:#}");
    assert!(stderr(&r).contains("mid-transaction"), "{r:#}");
    assert!(
        stdout(&r).contains("Missing count: 2,"),
        "the node was scanned: {r:#}"
    );
    assert_eq!(bed.dpkg_status(), status);
}

/// A journal record that does not read is reported as a failure (exit
/// code 152) and never run, also when delivered again.
#[test]
fn a_corrupt_journal_record_is_reported_never_run() {
    let bed = Bed::apt("rc-corrupt");
    let dir = bed.state().join("invocations");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bad-1.json"), b"{\"format\": \"patchfleet.jour").unwrap();
    let status = bed.dpkg_status();
    let inv = debian("bad-1", &[("Operation", "Install")]);
    let r = bed.execute(&inv);
    assert_eq!(outcome(&r), ("Failed", "Failed", 152), "{r:#}");
    assert!(
        stderr(&r).contains("corrupt") && stderr(&r).contains("bad-1.json.corrupt"),
        "{r:#}"
    );
    assert!(dir.join("bad-1.json.corrupt").is_file());
    assert_eq!(bed.execute(&inv), r);
    assert_eq!(bed.dpkg_status(), status);
}

/// An invocation file that does not read is refused with its name.
#[test]
fn a_bad_invocation_file_is_an_error_naming_it() {
    let tmp = TempDir::new("rc-badfile");
    let path = tmp.0.join("inv.json");
    std::fs::write(&path, b"{\"invocation_id\": 7}").unwrap();
    let out = Command::new(AGENT)
        .arg("execute")
        .arg("--invocation")
        .arg(&path)
        .arg("--state-dir")
        .arg(tmp.0.join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&path.display().to_string()) && err.contains("invalid type"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The same on a dnf root (testbeds.md B): RHEL's default baseline
/// approves the security kernel and the bugfix tool, exactly those
/// versions are installed.
#[test]
fn a_dnf_install_installs_exact_versions() {
    let tmp = TempDir::new("rc-dnf");
    let (root, _) = common::build_dnf_testbed(&tmp.0.join("dnf"), "rhel");
    let mut bed = Bed::with_root(tmp, root.dir.clone());
    bed.boot_time = NEW_BOOT.into();
    let inv = invocation(
        "dnf-1",
        "AWS-RunPatchBaseline",
        &[("Operation", "Install"), ("RebootOption", "NoReboot")],
        "AWS-RedHatDefaultPatchBaseline",
    );
    let r = bed.execute(&inv);
    assert_eq!(outcome(&r), ("Success", "Success", 0), "{r:#}");
    let out = Command::new(AGENT)
        .args(["facts", "--root"])
        .arg(&bed.root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut versions: Vec<String> = facts["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        ["tb-hello 1.0-1", "tb-kernel 1.1-1", "tb-tool 1:2.1-1"],
        "{r:#}"
    );
    assert!(stdout(&r).contains("Instance is Compliant\n"), "{r:#}");
}
