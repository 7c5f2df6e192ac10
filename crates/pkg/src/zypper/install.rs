//! The zypper install: exactly the versions of an [`InstallPlan`], on a
//! [`ZypperRoot`], through the [`crate::runner::Runner`].
//!
//! [`install`] runs, in order:
//!
//! 1. **The lock.** libzypp's `run/zypp.pid` names its holder: while that
//!    process lives, wait up to [`InstallOptions::lock_wait`], then fail
//!    with [`InstallError::Locked`] naming its PID and command. zypper's own
//!    refusal (exit status 7, "System management is locked by the
//!    application with pid N (name)") gives the same error.
//! 2. **A simulation** ([`simulate`]): `zypper --xmlout install --dry-run
//!    --no-recommends name.arch=evr …` ([`parse_install`]). Planned packages
//!    that are not installed are never installed (the plan upgrades, it
//!    does not add software) and fail at once; planned versions zypper
//!    cannot find (`No provider of '…' found.`, exit status 104, which
//!    stops the whole command) are dropped and fail with zypper's message,
//!    and the rest is simulated again. A transaction that would remove a
//!    package is refused, and so is one that would install or upgrade a
//!    package matching the rejected list under BLOCK
//!    ([`InstallPlan::block_rejected`], matched as `patchfleet_core` does
//!    for the zypper family), dependencies included.
//! 3. **The real run**: `zypper --xmlout install --no-recommends
//!    name.arch=evr …`. By package, not `zypper patch`: a patch brings all
//!    of its packages, the plan names versions. So reboot-suggested
//!    ("interactive") patches cannot be skipped the way `zypper patch
//!    --non-interactive` skips them without `--with-interactive`: their
//!    packages are installed like any other and verified below.
//! 4. **Verification**: `rpm -qa` again; each planned package is
//!    [`PackageResult::Installed`] when exactly its version is installed,
//!    else [`PackageResult::Failed`] with zypper's error messages (those
//!    naming it first), or `still at X`.
//! 5. **Reboot evidence** ([`RebootSource::PackageManager`]): exit status
//!    102 (`ZYPPER_EXIT_INF_REBOOT_NEEDED`); libzypp's `run/reboot-needed`
//!    (written when a package its needreboot rules name was installed); and
//!    each reboot-suggested patch of the cached updateinfo whose planned
//!    package this run installed — zypper 1.14 exits 0 after installing
//!    such a package by name, so the patch flag is read, not the exit
//!    status. Plus the Debian-style flag file. Exit status 103
//!    (`ZYPPER_EXIT_INF_RESTART_NEEDED`: zypper updated itself) is reported
//!    in the messages.

use super::parse::{InstallOutput, parse_install};
use super::run::{
    LOCK_FILE, ZypperRoot, ZypperScanOptions, query_installed, read_repositories,
    reboot_needed_flag,
};
use crate::install::{
    InstallError, InstallOptions, InstallReport, PackageOutcome, PackageResult, SimStep, Simulation,
};
use crate::rpm::DEFAULT_MAX_METADATA_SIZE;
use crate::rpm::run::check_database;
use crate::runner::{CommandSpec, Exit};
use patchfleet_core::eval::{InstallPlan, PlannedInstall};
use patchfleet_core::facts::{InstalledPackage, RebootEvidence, RebootSource};
use patchfleet_core::os::Family;
use std::time::{Duration, Instant};

/// zypper's exit statuses this module acts on.
pub const EXIT_LOCKED: i32 = 7;
pub const EXIT_REBOOT_NEEDED: i32 = 102;
pub const EXIT_RESTART_NEEDED: i32 = 103;

/// `name.arch=evr` (`name=evr` without an arch): zypper's exact-version
/// capability.
fn target(p: &PlannedInstall) -> String {
    if p.arch.is_empty() {
        format!("{}={}", p.name, p.version)
    } else {
        format!("{}.{}={}", p.name, p.arch, p.version)
    }
}

/// `zypper … --xmlout install --dry-run --no-recommends TARGET…`.
pub fn simulate_command(root: &ZypperRoot, targets: &[String]) -> CommandSpec {
    root.zypper(["--xmlout", "install", "--dry-run", "--no-recommends"])
        .args(targets)
}

/// `zypper … --xmlout install --no-recommends TARGET…`.
pub fn install_command(root: &ZypperRoot, targets: &[String]) -> CommandSpec {
    root.zypper(["--xmlout", "install", "--no-recommends"])
        .args(targets)
}

/// Simulates installing `plan` (see the module documentation) and checks
/// the transaction against the plan's rules. Installs nothing.
pub fn simulate(
    root: &ZypperRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
) -> Result<Simulation, InstallError> {
    wait_for_lock(root, opts.lock_wait)?;
    let installed = installed_packages(root, opts)?;
    simulate_with(root, plan, opts, &installed)
}

fn simulate_with(
    root: &ZypperRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
    installed: &[InstalledPackage],
) -> Result<Simulation, InstallError> {
    let mut unresolved = Vec::new();
    let mut remaining: Vec<&PlannedInstall> = Vec::new();
    for p in &plan.packages {
        if find(installed, p).next().is_none() {
            unresolved.push((
                p.name.clone(),
                "not installed: a plan only updates installed packages".to_string(),
            ));
        } else {
            remaining.push(p);
        }
    }
    loop {
        if remaining.is_empty() {
            return Ok(Simulation {
                command: String::new(),
                steps: Vec::new(),
                unresolved,
            });
        }
        let targets: Vec<String> = remaining.iter().map(|p| target(p)).collect();
        let spec = simulate_command(root, &targets).timeout(opts.simulate_timeout);
        let out = opts.runner.run(&spec)?;
        let parsed = parse_install(&out.command, &out.stdout.head).map_err(|e| {
            InstallError::Simulation {
                command: out.command.clone(),
                exit: out.exit.to_string(),
                messages: format!("{e}; stderr: {}", out.stderr.tail_text()),
            }
        })?;
        if out.exit == Exit::Code(EXIT_LOCKED) {
            return Err(locked(root, &parsed, &out.stderr.tail_text()));
        }
        if out.is_success() && parsed.summary {
            check_steps(plan, &parsed.steps)?;
            return Ok(Simulation {
                command: out.command,
                steps: parsed.steps,
                unresolved,
            });
        }
        let mut dropped = Vec::new();
        for e in parsed.errors() {
            for (p, t) in remaining.iter().zip(&targets) {
                if e.contains(&format!("'{t}'")) && !dropped.contains(&p.name) {
                    dropped.push(p.name.clone());
                    unresolved.push((p.name.clone(), e.to_string()));
                }
            }
        }
        if dropped.is_empty() {
            let errors: Vec<&str> = parsed.errors().collect();
            return Err(InstallError::Simulation {
                command: out.command.clone(),
                exit: out.exit.to_string(),
                messages: if errors.is_empty() {
                    out.stderr.tail_text()
                } else {
                    errors.join("; ")
                },
            });
        }
        remaining.retain(|p| !dropped.contains(&p.name));
    }
}

/// [`crate::install::check_steps`] with zypper's matching of rejected
/// entries (NEVRA forms).
fn check_steps(plan: &InstallPlan, steps: &[SimStep]) -> Result<(), InstallError> {
    crate::install::check_steps(Family::Zypp, plan, steps)
}

/// Installs `plan` on `root` (see the module documentation).
pub fn install(
    root: &ZypperRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let start = Instant::now();
    wait_for_lock(root, opts.lock_wait)?;
    let before = installed_packages(root, opts)?;
    let simulation = simulate_with(root, plan, opts, &before)?;
    let run: Vec<&PlannedInstall> = plan
        .packages
        .iter()
        .filter(|p| !simulation.unresolved.iter().any(|(n, _)| *n == p.name))
        .collect();

    let mut exit = None;
    let mut messages = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut reboot_required = Vec::new();
    if !run.is_empty() {
        wait_for_lock(root, opts.lock_wait)?;
        let targets: Vec<String> = run.iter().map(|p| target(p)).collect();
        let spec = install_command(root, &targets).timeout(opts.install_timeout);
        let out = opts.runner.run(&spec)?;
        // The run is done whatever the output says: a parse failure must
        // not hide it, so its messages fall back to stderr.
        match parse_install(&out.command, &out.stdout.head) {
            Ok(parsed) => {
                if out.exit == Exit::Code(EXIT_LOCKED) {
                    return Err(locked(root, &parsed, &out.stderr.tail_text()));
                }
                for m in parsed
                    .messages
                    .iter()
                    .filter(|m| m.kind == "error" || m.kind == "warning")
                {
                    messages.push(format!("{}: {}", m.kind, m.text));
                    if m.kind == "error" {
                        errors.push(m.text.clone());
                    }
                }
            }
            Err(e) => messages.push(format!("error: unreadable zypper output: {e}")),
        }
        let stderr = out.stderr.tail_text();
        if !out.is_success() && errors.is_empty() && !stderr.is_empty() {
            errors.push(stderr.clone());
            messages.push(format!("error: {stderr}"));
        }
        match out.exit {
            Exit::Code(EXIT_REBOOT_NEEDED) => reboot_required.push(RebootEvidence {
                source: RebootSource::PackageManager,
                packages: run.iter().map(|p| p.name.clone()).collect(),
                detail: format!(
                    "zypper exited with status {EXIT_REBOOT_NEEDED} \
                     (ZYPPER_EXIT_INF_REBOOT_NEEDED)"
                ),
            }),
            Exit::Code(EXIT_RESTART_NEEDED) => messages.push(format!(
                "warning: zypper exited with status {EXIT_RESTART_NEEDED} \
                 (ZYPPER_EXIT_INF_RESTART_NEEDED): the package manager was updated; \
                 run again for what is left"
            )),
            _ => {}
        }
        exit = Some(out.exit.to_string());
    }

    let after = installed_packages(root, opts)?;
    let packages: Vec<PackageOutcome> = plan
        .packages
        .iter()
        .map(|p| {
            let result = if let Some((_, reason)) =
                simulation.unresolved.iter().find(|(n, _)| *n == p.name)
            {
                PackageResult::Failed {
                    reason: reason.clone(),
                }
            } else if find(&after, p).any(|v| v == p.version) {
                PackageResult::Installed
            } else {
                PackageResult::Failed {
                    reason: failure_reason(p, &errors, find(&after, p).collect()),
                }
            };
            PackageOutcome {
                name: p.name.clone(),
                arch: p.arch.clone(),
                version: p.version.clone(),
                previous: newest(find(&before, p)),
                result,
            }
        })
        .collect();

    reboot_required.extend(suggested_reboots(root, &packages, &before));
    reboot_required.extend(reboot_needed_flag(root));
    reboot_required.extend(crate::reboot::flag_file(&root.dir));
    Ok(InstallReport {
        simulation,
        packages,
        reboot_required,
        exit,
        messages,
        elapsed: start.elapsed(),
    })
}

/// zypper's errors naming the package (its name in quotes or followed by a
/// version separator), else all of them, else what is installed now.
fn failure_reason(p: &PlannedInstall, errors: &[String], now: Vec<&str>) -> String {
    let own: Vec<&str> = errors
        .iter()
        .filter(|e| e.contains(&p.name))
        .map(String::as_str)
        .collect();
    if !own.is_empty() {
        own.join("; ")
    } else if !errors.is_empty() {
        errors.join("; ")
    } else if let Some(v) = newest(now.into_iter()) {
        format!("still at {v}")
    } else {
        "not installed".to_string()
    }
}

/// One evidence per reboot-suggested patch (cached updateinfo) listing a
/// version this run installed: the patch's flag, which a package install
/// does not turn into zypper's exit status 102.
fn suggested_reboots(
    root: &ZypperRoot,
    outcomes: &[PackageOutcome],
    before: &[InstalledPackage],
) -> Vec<RebootEvidence> {
    let changed: Vec<&PackageOutcome> = outcomes
        .iter()
        .filter(|o| o.result == PackageResult::Installed)
        .filter(|o| {
            !before
                .iter()
                .any(|b| b.name == o.name && b.arch == o.arch && b.version == o.version)
        })
        .collect();
    if changed.is_empty() {
        return Vec::new();
    }
    let mut ignored = Vec::new();
    let (_, notices, _) = read_repositories(root, DEFAULT_MAX_METADATA_SIZE, &mut ignored);
    let mut out: Vec<RebootEvidence> = Vec::new();
    for n in notices.iter().filter(|n| n.reboot_suggested) {
        let mut packages: Vec<String> = changed
            .iter()
            .filter(|o| {
                n.packages.iter().any(|np| {
                    np.name == o.name
                        && np.version == o.version
                        && (np.arch == o.arch || o.arch.is_empty())
                })
            })
            .map(|o| o.name.clone())
            .collect();
        packages.dedup();
        if packages.is_empty() || out.iter().any(|e| e.detail.contains(&n.id)) {
            continue;
        }
        out.push(RebootEvidence {
            source: RebootSource::PackageManager,
            detail: format!(
                "patch {} suggests a reboot (restart flag) and this run installed its {}",
                n.id,
                packages.join(", ")
            ),
            packages,
        });
    }
    out
}

/// The installed versions of the plan's package (its arch, or any when the
/// plan names none; several for multiversion packages such as kernels).
fn find<'a>(
    installed: &'a [InstalledPackage],
    p: &'a PlannedInstall,
) -> impl Iterator<Item = &'a str> + 'a {
    installed
        .iter()
        .filter(move |i| i.name == p.name && (p.arch.is_empty() || i.arch == p.arch))
        .map(|i| i.version.as_str())
}

fn newest<'a>(versions: impl Iterator<Item = &'a str>) -> Option<String> {
    versions
        .max_by(|a, b| {
            patchfleet_core::version::rpm::compare_str(a, b).unwrap_or_else(|_| a.cmp(b))
        })
        .map(str::to_string)
}

fn installed_packages(
    root: &ZypperRoot,
    opts: &InstallOptions,
) -> Result<Vec<InstalledPackage>, InstallError> {
    let rpm = root.rpm();
    let status = |e: crate::rpm::ScanError| InstallError::Status {
        path: rpm
            .path(
                rpm.dbpath
                    .as_deref()
                    .unwrap_or(std::path::Path::new("/var/lib/rpm")),
            )
            .display()
            .to_string(),
        message: e.to_string(),
    };
    check_database(&rpm).map_err(status)?;
    let scan_opts = ZypperScanOptions {
        runner: opts.runner.clone(),
        ..ZypperScanOptions::default()
    };
    query_installed(&rpm, &scan_opts).map_err(status)
}

/// Waits up to `wait` for libzypp's lock of `root` to be free.
fn wait_for_lock(root: &ZypperRoot, wait: Duration) -> Result<(), InstallError> {
    let path = root.path(LOCK_FILE);
    crate::lock::wait_while_pid_file_held(&path, wait).map_err(|holder| InstallError::Locked {
        path: path.display().to_string(),
        holder,
        waited: format!(" (waited {wait:?})"),
    })
}

/// zypper's exit status 7: the holder as its message names it (`process
/// 42 (zypper)`), else the message itself.
fn locked(root: &ZypperRoot, parsed: &InstallOutput, stderr: &str) -> InstallError {
    let message = parsed.errors().next().unwrap_or(stderr).to_string();
    InstallError::Locked {
        path: root.path(LOCK_FILE).display().to_string(),
        holder: lock_holder_message(&message).unwrap_or(message),
        waited: String::new(),
    }
}

/// `System management is locked by the application with pid 42 (zypper).`
/// → `process 42 (zypper)`.
fn lock_holder_message(text: &str) -> Option<String> {
    let rest = text.split_once("with pid ")?.1;
    let (pid, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let pid = pid.trim_end_matches('.');
    pid.parse::<u32>().ok()?;
    let comm = rest
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .map(|(c, _)| c);
    Some(match comm {
        Some(c) => format!("process {pid} ({c})"),
        None => format!("process {pid}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::SimAction;
    use patchfleet_core::eval::PlanSource;

    fn step(action: SimAction, name: &str, new: &str) -> SimStep {
        SimStep {
            action,
            name: name.into(),
            arch: Some("noarch".into()),
            old: Some("1.0-1".into()),
            new: Some(new.into()),
            origin: None,
        }
    }

    #[test]
    fn block_refuses_rejected_and_removals() {
        let mut plan = InstallPlan {
            source: PlanSource::Baseline,
            packages: Vec::new(),
            rejected_patches: vec!["tb-kernel".into(), "tb-tool-1:2.1-1.noarch".into()],
            block_rejected: true,
        };
        let e = check_steps(&plan, &[step(SimAction::Install, "tb-kernel", "1.1-1")]).unwrap_err();
        assert!(
            matches!(&e, InstallError::Rejected { entry, .. } if entry == "tb-kernel"),
            "{e}"
        );
        let e = check_steps(&plan, &[step(SimAction::Install, "tb-tool", "1:2.1-1")]).unwrap_err();
        assert!(matches!(e, InstallError::Rejected { .. }), "{e}");
        assert!(check_steps(&plan, &[step(SimAction::Install, "tb-tool", "1:2.2-1")]).is_ok());
        assert!(check_steps(&plan, &[step(SimAction::Install, "tb-hello", "1.1-1")]).is_ok());
        plan.block_rejected = false;
        assert!(check_steps(&plan, &[step(SimAction::Install, "tb-kernel", "1.1-1")]).is_ok());
        let e = check_steps(&plan, &[step(SimAction::Remove, "tb-tool", "")]).unwrap_err();
        assert!(matches!(e, InstallError::WouldRemove { .. }), "{e}");
    }

    #[test]
    fn lock_messages_and_targets() {
        assert_eq!(
            lock_holder_message(
                "System management is locked by the application with pid 9403 (sleep).\n\
                 Close this application before trying again."
            )
            .as_deref(),
            Some("process 9403 (sleep)")
        );
        assert_eq!(lock_holder_message("locked"), None);
        let p = PlannedInstall {
            name: "tb-tool".into(),
            arch: "noarch".into(),
            version: "1:2.1-1".into(),
            title: String::new(),
            advisory: None,
        };
        assert_eq!(target(&p), "tb-tool.noarch=1:2.1-1");
        let root = ZypperRoot::at("/nonexistent/r");
        assert_eq!(
            install_command(&root, &[target(&p)]).display(),
            "zypper --root /nonexistent/r --non-interactive --no-color --xmlout install \
             --no-recommends tb-tool.noarch=1:2.1-1"
        );
    }
}
