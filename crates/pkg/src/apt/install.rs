//! The APT install: exactly the versions of an [`InstallPlan`], on an
//! [`AptRoot`], through the [`Runner`].
//!
//! [`install`] runs, in order:
//!
//! 1. **A simulation** ([`simulate`]): `apt-get -s install --only-upgrade
//!    --no-install-recommends name=version …` with `Debug::NoLocking=1` (a
//!    simulation changes nothing and must not wait on a lock). Its `Inst` /
//!    `Remv` lines say what the real run would do. A plan that would remove
//!    a package is refused, and so is one that would install or upgrade a
//!    package matching the baseline's rejected list when the plan says
//!    BLOCK ([`InstallPlan::block_rejected`]), with the matching of
//!    `patchfleet_core` ([`crate::install::check_steps`]). Planned packages apt cannot
//!    resolve (`Version '…' for '…' was not found`, `Unable to locate
//!    package …`) are dropped from the run and reported `Failed` with apt's
//!    message; the rest is simulated again.
//! 2. **The lock.** dpkg's `lock-frontend` (and `lock`) in the root's admin
//!    folder: a holder (found in `/proc/locks`) is waited for up to
//!    [`InstallOptions::lock_wait`], then the install fails naming the
//!    holder's PID and command ([`InstallError::Locked`]). apt's own
//!    `Could not get lock … held by process N (name)` gives the same error.
//! 3. **The real run**: `apt-get install -y --only-upgrade
//!    --no-install-recommends -o Dpkg::Options::=--force-confold -o
//!    Dpkg::Options::=--force-confdef name=version …` with
//!    `DEBIAN_FRONTEND=noninteractive` (the runner's), stdin `/dev/null`, a
//!    timeout that kills the process group.
//! 4. **Verification**: the dpkg status read again; each planned package is
//!    [`PackageResult::Installed`] when exactly its version is installed,
//!    else [`PackageResult::Failed`] with apt's error lines naming it, or
//!    `still at X`.
//! 5. **Reboot evidence**: `var/run/reboot-required(.pkgs)` (and `run/…`)
//!    in the root.

use super::parse_dpkg_status;
use super::run::AptRoot;
pub use crate::install::{
    InstallError, InstallOptions, InstallReport, PackageOutcome, PackageResult, SimAction, SimStep,
    Simulation,
};
use crate::runner::{CommandSpec, Exit};
use patchfleet_core::eval::{InstallPlan, PlannedInstall};
use patchfleet_core::os::Family;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `apt-get` with the root's `APT_CONFIG`.
fn apt_get(root: &AptRoot) -> CommandSpec {
    let mut spec = CommandSpec::new("apt-get");
    if let Some(conf) = &root.apt_config {
        spec = spec.env("APT_CONFIG", conf);
    }
    spec
}

fn targets(packages: &[&PlannedInstall]) -> Vec<String> {
    packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect()
}

/// Parses the `Inst`, `Remv` and `Conf` lines of `apt-get -s` output.
pub fn parse_simulation(text: &str) -> Vec<SimStep> {
    text.lines().filter_map(parse_sim_line).collect()
}

fn parse_sim_line(line: &str) -> Option<SimStep> {
    let (action, rest) = if let Some(r) = line.strip_prefix("Inst ") {
        (SimAction::Install, r)
    } else if let Some(r) = line.strip_prefix("Remv ") {
        (SimAction::Remove, r)
    } else if let Some(r) = line.strip_prefix("Conf ") {
        (SimAction::Configure, r)
    } else {
        return None;
    };
    let (full, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (name, mut arch) = match full.split_once(':') {
        Some((n, a)) => (n, Some(a.to_string())),
        None => (full, None),
    };
    let mut old = None;
    if let Some(r) = rest.strip_prefix('[')
        && let Some((o, r)) = r.split_once(']')
    {
        old = Some(o.to_string());
        rest = r.trim_start();
    }
    let (mut new, mut origin) = (None, None);
    if let Some(r) = rest.strip_prefix('(') {
        let inner = r.find(')').map_or(r, |i| &r[..i]);
        let mut inner = inner.trim();
        if let Some(i) = inner.rfind(" [")
            && inner.ends_with(']')
        {
            arch = arch.or_else(|| Some(inner[i + 2..inner.len() - 1].to_string()));
            inner = inner[..i].trim_end();
        }
        let (v, o) = inner.split_once(' ').unwrap_or((inner, ""));
        new = Some(v.to_string());
        origin = (!o.is_empty()).then(|| o.to_string());
    }
    Some(SimStep {
        action,
        name: name.to_string(),
        arch,
        old,
        new,
        origin,
    })
}

/// apt's `E:`/`W:` lines of an output.
fn messages(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .map(str::to_string)
        .collect()
}

/// The planned package an apt error names as unresolvable, if any.
fn unresolved_name<'a>(line: &str, names: &[&'a str]) -> Option<&'a str> {
    let quoted_pkg = |l: &str| -> Option<String> {
        // E: Version '9.9' for 'tb-hello' was not found
        let r = l.split(" for '").nth(1)?;
        Some(r.split('\'').next()?.to_string())
    };
    let named = if line.contains("was not found") {
        quoted_pkg(line)?
    } else {
        let r = line.strip_prefix("E: Unable to locate package ")?;
        r.split('=').next().unwrap_or(r).trim().to_string()
    };
    names.iter().copied().find(|n| *n == named)
}

/// Simulates installing `plan` (see the module documentation) and checks
/// the result against the plan's rules. Never changes the root.
pub fn simulate(
    root: &AptRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
) -> Result<Simulation, InstallError> {
    let mut remaining: Vec<&PlannedInstall> = plan.packages.iter().collect();
    let mut unresolved = Vec::new();
    loop {
        if remaining.is_empty() {
            return Ok(Simulation {
                command: String::new(),
                steps: Vec::new(),
                unresolved,
            });
        }
        let spec = apt_get(root)
            .args([
                "-s",
                "-q",
                "-o",
                "Debug::NoLocking=1",
                "install",
                "--only-upgrade",
                "--no-install-recommends",
            ])
            .args(targets(&remaining))
            .timeout(opts.simulate_timeout);
        let out = opts.runner.run(&spec)?;
        let text = format!("{}\n{}", out.stdout_text(), out.stderr.text());
        if out.is_success() {
            let steps = parse_simulation(&out.stdout_text());
            crate::install::check_steps(Family::Apt, plan, &steps)?;
            return Ok(Simulation {
                command: out.command,
                steps,
                unresolved,
            });
        }
        let names: Vec<&str> = remaining.iter().map(|p| p.name.as_str()).collect();
        let errors = messages(&text);
        let mut dropped = Vec::new();
        for line in &errors {
            if let Some(n) = unresolved_name(line, &names)
                && !dropped.contains(&n)
            {
                dropped.push(n);
                unresolved.push((n.to_string(), line.trim_start_matches("E: ").to_string()));
            }
        }
        if dropped.is_empty() {
            let errs: Vec<&String> = errors.iter().filter(|l| l.starts_with("E: ")).collect();
            return Err(InstallError::Simulation {
                command: out.command.clone(),
                exit: out.exit.to_string(),
                messages: if errs.is_empty() {
                    out.stderr.tail_text()
                } else {
                    errs.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            });
        }
        remaining.retain(|p| !dropped.contains(&p.name.as_str()));
    }
}

/// Installs `plan` on `root` (see the module documentation).
pub fn install(
    root: &AptRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let start = Instant::now();
    let before = installed_versions(root)?;
    let simulation = simulate(root, plan, opts)?;
    let failed: BTreeSet<&str> = simulation
        .unresolved
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let run: Vec<&PlannedInstall> = plan
        .packages
        .iter()
        .filter(|p| !failed.contains(p.name.as_str()))
        .collect();

    let mut exit = None;
    let mut messages_of_run = Vec::new();
    if !run.is_empty() {
        wait_for_lock(root, opts.lock_wait)?;
        let spec = apt_get(root)
            .args([
                "-q",
                "-y",
                "-o",
                "Dpkg::Use-Pty=0",
                "-o",
                "Dpkg::Options::=--force-confold",
                "-o",
                "Dpkg::Options::=--force-confdef",
                "install",
                "--only-upgrade",
                "--no-install-recommends",
            ])
            .args(targets(&run))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .timeout(opts.install_timeout);
        let out = opts.runner.run(&spec)?;
        let text = format!("{}\n{}", out.stdout_text(), out.stderr.text());
        messages_of_run = messages(&text);
        if let Some(holder) = lock_holder_message(&text) {
            return Err(InstallError::Locked {
                path: admin_dir(root).join("lock-frontend").display().to_string(),
                holder,
                waited: String::new(),
            });
        }
        exit = Some(out.exit.to_string());
        if out.exit != Exit::Code(0) && messages_of_run.is_empty() {
            messages_of_run.push(format!("E: {}", out.stderr.tail_text()));
        }
    }

    let after = installed_versions(root)?;
    let packages = plan
        .packages
        .iter()
        .map(|p| {
            let now = find(&after, p);
            let result = if let Some((_, reason)) =
                simulation.unresolved.iter().find(|(n, _)| *n == p.name)
            {
                PackageResult::Failed {
                    reason: reason.clone(),
                }
            } else if now == Some(p.version.as_str()) {
                PackageResult::Installed
            } else {
                let own: Vec<&str> = messages_of_run
                    .iter()
                    .filter(|m| m.starts_with("E: ") && m.contains(p.name.as_str()))
                    .map(|m| m.trim_start_matches("E: "))
                    .collect();
                PackageResult::Failed {
                    reason: if own.is_empty() {
                        match now {
                            Some(v) => format!("still at {v}"),
                            None => "not installed".to_string(),
                        }
                    } else {
                        own.join("; ")
                    },
                }
            };
            PackageOutcome {
                name: p.name.clone(),
                arch: p.arch.clone(),
                version: p.version.clone(),
                previous: find(&before, p).map(str::to_string),
                result,
            }
        })
        .collect();
    Ok(InstallReport {
        simulation,
        packages,
        reboot_required: crate::reboot::flag_file(&root.dir).into_iter().collect(),
        exit,
        messages: messages_of_run,
        elapsed: start.elapsed(),
    })
}

type Versions = Vec<(String, String, String)>;

fn installed_versions(root: &AptRoot) -> Result<Versions, InstallError> {
    let path = root.status_path();
    let label = path.display().to_string();
    let text = std::fs::read(&path).map_err(|e| InstallError::Status {
        path: label.clone(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8_lossy(&text);
    let status = parse_dpkg_status(&label, &text).map_err(|e| InstallError::Status {
        path: label.clone(),
        message: e.to_string(),
    })?;
    Ok(status
        .installed
        .into_iter()
        .map(|p| (p.name, p.arch, p.version))
        .collect())
}

fn find<'a>(versions: &'a Versions, p: &PlannedInstall) -> Option<&'a str> {
    let same_name = || versions.iter().filter(|(n, _, _)| *n == p.name);
    same_name()
        .find(|(_, a, _)| *a == p.arch)
        .or_else(|| same_name().next())
        .map(|(_, _, v)| v.as_str())
}

/// `dpkg --configure -a` on `root` (after waiting for its lock): finishes
/// the packages an interrupted run left half-done, keeping existing
/// configuration files. Returns dpkg's output. Only on request: a repair
/// runs maintainer scripts.
pub fn configure_pending(root: &AptRoot, opts: &InstallOptions) -> Result<String, InstallError> {
    wait_for_lock(root, opts.lock_wait)?;
    let mut spec = CommandSpec::new("dpkg");
    if root.dir != std::path::Path::new("/") {
        let dir = root.dir.display();
        spec = spec.args([
            format!("--root={dir}"),
            format!("--admindir={dir}/var/lib/dpkg"),
            format!("--log={dir}/var/log/dpkg.log"),
            // The test beds' rule (testbeds.md A1): scripts run on the host
            // with DPKG_ROOT set, as the root's apt.conf has apt run them.
            "--force-script-chrootless".to_string(),
        ]);
    }
    let spec = spec
        .args([
            "--force-confold",
            "--force-confdef",
            "--configure",
            "--pending",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .timeout(opts.install_timeout);
    let out = opts.runner.run(&spec)?;
    if !out.is_success() {
        return Err(InstallError::Repair {
            command: out.command.clone(),
            exit: out.exit.to_string(),
            messages: out.stderr.tail_text(),
        });
    }
    Ok(format!("{}{}", out.stdout_text(), out.stderr.text()))
}

/// dpkg's admin folder of the root.
fn admin_dir(root: &AptRoot) -> PathBuf {
    root.dir.join("var/lib/dpkg")
}

/// `… held by process 1234 (apt-get)` in apt's output.
fn lock_holder_message(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("Could not get lock"))?;
    Some(match line.split_once("held by ") {
        Some((_, h)) => h.trim().to_string(),
        None => line.trim_start_matches("E: ").to_string(),
    })
}

/// Waits up to `wait` for dpkg's locks of `root` to be free.
fn wait_for_lock(root: &AptRoot, wait: Duration) -> Result<(), InstallError> {
    let dir = admin_dir(root);
    let (front, back) = (dir.join("lock-frontend"), dir.join("lock"));
    crate::lock::wait_while_held(&[&front, &back], wait).map_err(|(path, holder)| {
        InstallError::Locked {
            path,
            holder,
            waited: format!(" (waited {wait:?})"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_lines() {
        let text = "Reading package lists...\n\
            Inst tb-hello [1.0-1] (1.1-1 TestBed-Security:1.0/stable-security [all])\n\
            Inst libx:amd64 (2.0 Debian:12.5/stable, Debian:12.5/stable [amd64]) []\n\
            Remv old-thing [0.9]\n\
            Conf tb-hello (1.1-1 TestBed-Security:1.0/stable-security [all])\n";
        let s = parse_simulation(text);
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[0],
            SimStep {
                action: SimAction::Install,
                name: "tb-hello".into(),
                arch: Some("all".into()),
                old: Some("1.0-1".into()),
                new: Some("1.1-1".into()),
                origin: Some("TestBed-Security:1.0/stable-security".into()),
            }
        );
        assert_eq!(s[1].name, "libx");
        assert_eq!(s[1].arch.as_deref(), Some("amd64"));
        assert_eq!(s[1].old, None);
        assert_eq!(s[1].new.as_deref(), Some("2.0"));
        assert_eq!(s[2].action, SimAction::Remove);
        assert_eq!(s[2].old.as_deref(), Some("0.9"));
        assert_eq!(s[3].action, SimAction::Configure);
    }

    #[test]
    fn unresolved_messages() {
        let names = ["tb-hello", "tb-kernel"];
        assert_eq!(
            unresolved_name("E: Version '9.9-9' for 'tb-hello' was not found", &names),
            Some("tb-hello")
        );
        assert_eq!(
            unresolved_name("E: Unable to locate package tb-kernel", &names),
            Some("tb-kernel")
        );
        assert_eq!(
            unresolved_name("E: Unable to locate package zz", &names),
            None
        );
        assert_eq!(
            lock_holder_message(
                "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 42 (apt-get)\n"
            )
            .as_deref(),
            Some("process 42 (apt-get)")
        );
    }
}
