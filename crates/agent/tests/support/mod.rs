//! What the agent's tests share (beyond the test beds of
//! `crates/pkg/tests/common`): installed versions, invocations as the server
//! sends them, the journal's execution record, hook directories a hook may
//! run from, and waiting for processes; `fleet`: agents under a real
//! server.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod fleet;

use patchfleet_core::baseline::predefined;
use patchfleet_core::command::PatchDocument;
use patchfleet_protocol::CommandInvocation;
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const DEBIAN: &str = "AWS-DebianDefaultPatchBaseline";

/// An invocation as the server sends it: the document validated from
/// SendCommand's parameters, the node's baseline resolved.
pub fn invocation(
    id: &str,
    document: &str,
    params: &[(&str, &str)],
    baseline: &str,
) -> CommandInvocation {
    let params: HashMap<String, Vec<String>> = params
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect();
    CommandInvocation {
        invocation_id: id.into(),
        command_id: format!("cmd-{id}"),
        document: PatchDocument::from_parameters(document, &params).unwrap(),
        baseline: predefined::by_id_or_name(baseline).unwrap().clone(),
        install_override: None,
        requested_at: jiff::Timestamp::now(),
    }
}

pub fn debian(id: &str, params: &[(&str, &str)]) -> CommandInvocation {
    invocation(id, "AWS-RunPatchBaseline", params, DEBIAN)
}

pub fn with_hooks(id: &str, params: &[(&str, &str)]) -> CommandInvocation {
    let mut all = vec![
        ("PreInstallHookDocName", "Patchfleet-LocalHooks"),
        ("PostInstallHookDocName", "Patchfleet-LocalHooks"),
        ("OnExitHookDocName", "Patchfleet-LocalHooks"),
    ];
    all.extend_from_slice(params);
    invocation(id, "AWS-RunPatchBaselineWithHooks", &all, DEBIAN)
}

/// The steps of a record's execution record (`RebootRequested` by name).
pub fn steps(rec: &Value) -> Vec<String> {
    rec["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| match &t["step"] {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.keys().next().unwrap().clone(),
            other => panic!("{other}"),
        })
        .collect()
}

pub fn boots(rec: &Value) -> Vec<String> {
    rec["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["boot_id"].as_str().unwrap().to_string())
        .collect()
}

pub fn count(steps: &[String], step: &str) -> usize {
    steps.iter().filter(|s| *s == step).count()
}

/// `name → State` of an SSM-shaped report's patches (titles
/// `name.arch:version`).
pub fn states(report: &Value) -> std::collections::BTreeMap<String, String> {
    report["Patches"]
        .as_array()
        .unwrap_or_else(|| panic!("no patches in {report}"))
        .iter()
        .map(|p| {
            let title = p["Title"].as_str().unwrap();
            let name = title.split('.').next().unwrap().to_string();
            (name, p["State"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Hook directories whose every ancestor is root's and not writable by
/// others (cargo's target directory, not `/tmp`), with each hook logging
/// its name to a file.
pub struct Hooks(PathBuf, PathBuf);

impl Hooks {
    pub fn new(tag: &str, log: PathBuf) -> Hooks {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "hooks-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        for d in [&dir, &dir.join("hooks")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Hooks(dir, log)
    }

    pub fn root(&self) -> PathBuf {
        self.0.join("hooks")
    }

    /// A hook `name` in `stage` (`pre-install.d`, …) that logs its name,
    /// then runs `body`.
    pub fn add(&self, stage: &str, name: &str, body: &str) {
        let d = self.root().join(stage);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = d.join(name);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho {name} >> {}\n{body}\n", self.1.display()),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the process is gone (or a zombie waiting for its reaper).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z'),
    }
}

/// Waits until `path` holds `lines` lines.
pub fn wait_for_lines(path: &Path, lines: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.len() >= lines {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got {lines} lines",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A boot time after every install made so far and before every install
/// made from now on, in whole seconds (install times are).
pub fn boot_between_installs() -> String {
    let now = jiff::Timestamp::now().as_second();
    let boot = jiff::Timestamp::from_second(now + 1).unwrap();
    while jiff::Timestamp::now().as_second() <= now + 1 {
        std::thread::sleep(Duration::from_millis(50));
    }
    boot.to_string()
}

/// The version dpkg records for `name` in the root's status file.
pub fn installed_version(root: &Path, name: &str) -> String {
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let para = status
        .split("\n\n")
        .find(|p| p.lines().any(|l| l == format!("Package: {name}")))
        .unwrap_or_else(|| panic!("{name} not in the status"));
    para.lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap()
        .to_string()
}

/// A journal record (`<state>/invocations/<id>.json`).
pub fn record(state: &Path, id: &str) -> Value {
    let path = state.join("invocations").join(format!("{id}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A shell body that writes its pid and its child's to `pids`, then
/// waits for the child (five minutes): a step that hangs with a tree.
pub fn hanging(pids: &Path) -> String {
    format!(
        "echo $$ > {p}; sleep 300 & echo $! >> {p}; wait",
        p = pids.display()
    )
}

/// The flags `execute` and `run` share: where the journal is, which root,
/// its boot time, and the boot-id file a test switches to "reboot".
pub fn node_flags(
    state: &Path,
    root: &Path,
    boot_time: &str,
    boot_id_file: &Path,
) -> Vec<std::ffi::OsString> {
    vec![
        "--state-dir".into(),
        state.into(),
        "--root".into(),
        root.into(),
        "--boot-time".into(),
        boot_time.into(),
        "--boot-id-file".into(),
        boot_id_file.into(),
    ]
}
