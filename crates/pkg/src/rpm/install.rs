//! The dnf/yum install: exactly the versions of an [`InstallPlan`], on an
//! [`RpmRoot`], through the [`Runner`](crate::runner::Runner).
//!
//! [`install`] runs, in order:
//!
//! 1. **A simulation** ([`simulate`]): `dnf -C --assumeno upgrade
//!    name-[epoch:]version-release.arch …` (yum when the root's os-release
//!    says so: [`package_manager`]), with the command of the scan and the
//!    refresh ([`pm_command`]: `--installroot`, the root's configuration,
//!    plugins that ignore the installroot disabled). `-C` keeps it on the
//!    metadata the plan was computed from and off the network; `--assumeno`
//!    makes dnf print the transaction and stop. Its table
//!    ([`parse_dnf_transaction`]) says what the real run would do. A plan
//!    that would remove a package (an obsoleted one included) is refused,
//!    and so is one that would install or upgrade a package matching the
//!    rejected list under BLOCK ([`crate::install::check_steps`]). Planned
//!    versions dnf cannot find (`No match for argument: …`, `Package …
//!    available, but not installed`) are dropped from the run and reported
//!    `Failed` with dnf's message.
//! 2. **The locks**: rpm's transaction lock (`<dbpath>/.rpm.lock`, a POSIX
//!    lock, holder from `/proc/locks`) and dnf's pid-file locks
//!    (`var/lib/dnf/rpmdb_lock.pid`, `<cachedir>/metadata_lock.pid` and
//!    `download_lock.pid`: held while the PID written in them lives) are
//!    waited for up to [`InstallOptions::lock_wait`], then the install fails
//!    naming the holder ([`InstallError::Locked`]). dnf itself would wait
//!    forever (rpm too): `exit_on_lock` makes it fail instead, with the same
//!    error, if another run takes a lock in between.
//! 3. **The real run**: `dnf -y upgrade <the same NEVRAs>`: `upgrade`
//!    never installs a package that is not installed (an install-only
//!    package, the kernel, is installed next to the running one), weak
//!    dependencies off, a timeout that kills the process group.
//! 4. **Verification**: `rpm -qa` again; each planned package is
//!    [`PackageResult::Installed`] when exactly its NEVRA is installed (dnf
//!    has been seen reporting success without upgrading), else `Failed` with
//!    dnf's lines naming it, or `still at X`.
//! 5. **Reboot evidence**: the root's `var/run/reboot-required` (scriptlets
//!    write it) and, with `needs-restarting -r` semantics, one
//!    [`RebootSource::CorePackageUpdated`] per core package
//!    ([`CORE_PACKAGES`]) this run installed.

use super::parse::{dnf_messages, dnf_no_match, parse_dnf_transaction, parse_rpm_query};
use super::run::{RpmRoot, cache_dir, package_manager, pm_command, pm_program, rpm_query_command};
pub use crate::install::{
    InstallError, InstallOptions, InstallReport, PackageOutcome, PackageResult, SimAction, SimStep,
    Simulation,
};
use crate::runner::{CommandSpec, Exit, Outcome};
use patchfleet_core::eval::{InstallPlan, PlannedInstall};
use patchfleet_core::facts::{InstalledPackage, RebootEvidence, RebootSource};
use patchfleet_core::os::{Family, PackageManager};
use patchfleet_core::reboot_evidence::CORE_PACKAGES;
use patchfleet_core::version::rpm::Evr;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Plugins never run on a root other than `/`: `generate_completion_cache`
/// writes the host's `/var/cache/dnf/packages.db`, `versionlock` reads the
/// host's lock list (and fails without one).
const PLUGINS_OFF: [&str; 2] = ["generate_completion_cache", "versionlock"];

/// What both runs pass: dnf (and yum) would otherwise wait forever on a
/// lock, and pull weak dependencies the plan did not ask for.
const COMMON_OPTS: [&str; 2] = [
    "--setopt=exit_on_lock=True",
    "--setopt=install_weak_deps=False",
];

/// `name-[epoch:]version-release.arch`: the one form dnf and yum read as
/// exactly one package version.
fn target(p: &PlannedInstall) -> String {
    format!("{}-{}.{}", p.name, p.version, p.arch)
}

fn base_command(root: &RpmRoot, pm: PackageManager, first: &[&str]) -> CommandSpec {
    pm_command(root, pm, first, &PLUGINS_OFF).args(COMMON_OPTS)
}

fn detect(root: &RpmRoot) -> Result<PackageManager, InstallError> {
    package_manager(root).map_err(|e| InstallError::Status {
        path: root.dir.display().to_string(),
        message: e.to_string(),
    })
}

/// Simulates installing `plan` (see the module documentation) and checks
/// the result against the plan's rules. Never changes the root's packages.
pub fn simulate(
    root: &RpmRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
) -> Result<Simulation, InstallError> {
    let pm = detect(root)?;
    let installed = installed(root, opts)?;
    simulate_with(root, pm, plan, opts, &installed)
}

fn simulate_with(
    root: &RpmRoot,
    pm: PackageManager,
    plan: &InstallPlan,
    opts: &InstallOptions,
    installed: &[InstalledPackage],
) -> Result<Simulation, InstallError> {
    if plan.packages.is_empty() {
        return Ok(Simulation::default());
    }
    let spec = base_command(root, pm, &["-C", "--assumeno"])
        .arg("upgrade")
        .args(plan.packages.iter().map(target))
        .timeout(opts.simulate_timeout);
    let out = opts.runner.run(&spec)?;
    let text = format!("{}\n{}", out.stdout_text(), out.stderr.text());
    let messages = dnf_messages(&text);
    if let Some(locked) = locked_error(root, &text) {
        return Err(locked);
    }

    let missing = dnf_no_match(&text);
    let mut unresolved = Vec::new();
    for p in &plan.packages {
        let t = target(p);
        if missing.contains(&t.as_str()) {
            unresolved.push((p.name.clone(), own_messages(&messages, p).join("; ")));
        }
    }
    let mut steps = parse_dnf_transaction(&out.stdout_text());
    for s in steps.iter_mut().filter(|s| s.action == SimAction::Install) {
        // The newest installed: an install-only package has several.
        s.old = installed
            .iter()
            .filter(|i| i.name == s.name && Some(i.arch.as_str()) == s.arch.as_deref())
            .max_by_key(|i| Evr::parse(&i.version).ok())
            .map(|i| i.version.clone());
    }

    // `--assumeno` ends with status 1 whether or not there was something to
    // do; only dnf's `Error:` lines say it failed. With every planned version
    // unresolvable dnf says `No packages marked for upgrade`: not a failure
    // of the simulation, each package fails on its own.
    let errors: Vec<&String> = messages.iter().filter(|m| m.starts_with("Error")).collect();
    let all_unresolved = unresolved.len() == plan.packages.len();
    let exit_ok = matches!(out.exit, Exit::Code(0 | 1));
    if (!errors.is_empty() && !all_unresolved) || !exit_ok {
        return Err(InstallError::Simulation {
            command: out.command.clone(),
            exit: out.exit.to_string(),
            messages: if errors.is_empty() {
                out.stderr.tail_text()
            } else {
                messages.join("; ")
            },
        });
    }
    crate::install::check_steps(Family::Rpm, plan, &steps)?;
    Ok(Simulation {
        command: out.command,
        steps,
        unresolved,
    })
}

/// dnf's lines about `p`: naming its NEVRA, or `Package <name> …`.
fn own_messages<'a>(messages: &'a [String], p: &PlannedInstall) -> Vec<&'a str> {
    let t = target(p);
    let pkg = format!("Package {} ", p.name);
    let pkgs = format!("Package(s) {} ", p.name);
    messages
        .iter()
        .filter(|m| m.contains(&t) || m.starts_with(&pkg) || m.starts_with(&pkgs))
        .map(String::as_str)
        .collect()
}

/// [`InstallError::Locked`] when dnf's or rpm's output says a lock stopped it.
fn locked_error(root: &RpmRoot, text: &str) -> Option<InstallError> {
    let (path, holder) = lock_message(text)?;
    Some(InstallError::Locked {
        path: path.unwrap_or_else(|| root.dir.display().to_string()),
        holder,
        waited: String::new(),
    })
}

/// dnf's `… already locked by 1234` (with `exit_on_lock`), yum's
/// `Existing lock … another copy is running as pid 1234`, rpm's `can't
/// create transaction lock on PATH (…)` when the lock was taken after our
/// wait (the holder then named from the lock itself).
/// `(the lock's path when named, its holder)`.
fn lock_message(text: &str) -> Option<(Option<String>, String)> {
    if let Some(rest) = text
        .lines()
        .find_map(|l| l.split_once("can't create transaction lock on "))
        .map(|(_, rest)| rest)
    {
        let path = rest.split(" (").next().unwrap_or(rest).trim();
        let holder = crate::lock::lock_holder(Path::new(path))
            .unwrap_or_else(|| format!("the holder of {path}"));
        return Some((Some(path.to_string()), holder));
    }
    let line = text.lines().find(|l| {
        l.contains("already locked by") || l.contains("another copy is running as pid")
    })?;
    let pid = line
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|w| !w.is_empty())?;
    Some((
        None,
        describe_pid(pid).unwrap_or_else(|| line.trim().to_string()),
    ))
}

/// `process 1234 (dnf)` while process 1234 lives.
fn describe_pid(pid: &str) -> Option<String> {
    let pid: u32 = pid.trim().parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("process {pid} ({})", comm.trim()))
}

/// Installs `plan` on `root` (see the module documentation).
pub fn install(
    root: &RpmRoot,
    plan: &InstallPlan,
    opts: &InstallOptions,
) -> Result<InstallReport, InstallError> {
    let start = Instant::now();
    let pm = detect(root)?;
    let before = installed(root, opts)?;
    let simulation = simulate_with(root, pm, plan, opts, &before)?;
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
    let mut messages = Vec::new();
    if !run.is_empty() {
        wait_for_locks(root, pm, opts.lock_wait)?;
        let spec = base_command(root, pm, &["-y"])
            .arg("upgrade")
            .args(run.iter().map(|p| target(p)))
            .timeout(opts.install_timeout);
        let out: Outcome = opts.runner.run(&spec)?;
        let text = format!("{}\n{}", out.stdout_text(), out.stderr.text());
        messages = dnf_messages(&text);
        if let Some(locked) = locked_error(root, &text) {
            return Err(locked);
        }
        if out.exit != Exit::Code(0) && messages.is_empty() {
            messages.push(format!("Error: {}", out.stderr.tail_text()));
        }
        exit = Some(out.exit.to_string());
    }

    let after = installed(root, opts)?;
    let packages = plan
        .packages
        .iter()
        .map(|p| {
            let result = if let Some((_, reason)) =
                simulation.unresolved.iter().find(|(n, _)| *n == p.name)
            {
                PackageResult::Failed {
                    reason: if reason.is_empty() {
                        format!("{} did not find {}", pm_program(pm), target(p))
                    } else {
                        reason.clone()
                    },
                }
            } else if has(&after, p) {
                PackageResult::Installed
            } else {
                let own = own_messages(&messages, p);
                PackageResult::Failed {
                    reason: if !own.is_empty() {
                        own.join("; ")
                    } else {
                        match versions_of(&after, p).as_slice() {
                            [] => "not installed".to_string(),
                            v => format!("still at {}", v.join(", ")),
                        }
                    },
                }
            };
            PackageOutcome {
                name: p.name.clone(),
                arch: p.arch.clone(),
                version: p.version.clone(),
                previous: versions_of(&before, p).last().cloned(),
                result,
            }
        })
        .collect();

    let mut reboot_required: Vec<RebootEvidence> =
        crate::reboot::flag_file(&root.dir).into_iter().collect();
    reboot_required.extend(core_packages_changed(&before, &after));
    Ok(InstallReport {
        simulation,
        packages,
        reboot_required,
        exit,
        messages,
        elapsed: start.elapsed(),
    })
}

/// The root's installed packages (`rpm -qa`).
fn installed(root: &RpmRoot, opts: &InstallOptions) -> Result<Vec<InstalledPackage>, InstallError> {
    // rpm creates an empty database where there is none.
    if let Some(db) = &root.dbpath {
        let dir = root.path(db);
        if !dir.is_dir() {
            return Err(InstallError::Status {
                path: dir.display().to_string(),
                message: "no rpm database: not the root of an installed system".to_string(),
            });
        }
    }
    let out = opts
        .runner
        .run_ok(&rpm_query_command(root).timeout(opts.simulate_timeout))?;
    if out.stdout.truncated() {
        return Err(InstallError::Status {
            path: out.command,
            message: "output larger than the runner's cap".to_string(),
        });
    }
    parse_rpm_query(&out.command, &out.stdout_text()).map_err(|e| InstallError::Status {
        path: out.command.clone(),
        message: e.to_string(),
    })
}

fn same_version(a: &str, b: &str) -> bool {
    match (Evr::parse(a), Evr::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether exactly `p`'s NEVRA is installed (next to others, for an
/// install-only package).
fn has(installed: &[InstalledPackage], p: &PlannedInstall) -> bool {
    installed
        .iter()
        .any(|i| i.name == p.name && i.arch == p.arch && same_version(&i.version, &p.version))
}

/// The installed versions of `p`'s name and arch (any arch when none has
/// its), oldest first.
fn versions_of(installed: &[InstalledPackage], p: &PlannedInstall) -> Vec<String> {
    let mut same: Vec<&InstalledPackage> = installed
        .iter()
        .filter(|i| i.name == p.name && i.arch == p.arch)
        .collect();
    if same.is_empty() {
        same = installed.iter().filter(|i| i.name == p.name).collect();
    }
    let mut v: Vec<(Option<Evr>, String)> = same
        .iter()
        .map(|i| (Evr::parse(&i.version).ok(), i.version.clone()))
        .collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

/// One evidence per core package (`needs-restarting -r`'s list) installed
/// by this run: in `after`, not in `before`.
fn core_packages_changed(
    before: &[InstalledPackage],
    after: &[InstalledPackage],
) -> Vec<RebootEvidence> {
    let key = |p: &InstalledPackage| (p.name.clone(), p.arch.clone(), p.version.clone());
    let old: BTreeSet<_> = before.iter().map(key).collect();
    let mut out: Vec<RebootEvidence> = after
        .iter()
        .filter(|p| CORE_PACKAGES.contains(&p.name.as_str()) && !old.contains(&key(p)))
        .map(|p| {
            let nevra = format!("{}-{}.{}", p.name, p.version, p.arch);
            RebootEvidence {
                source: RebootSource::CorePackageUpdated,
                detail: format!("the core package {nevra} was installed by this run"),
                packages: vec![nevra],
            }
        })
        .collect();
    out.sort_by(|a, b| a.packages.cmp(&b.packages));
    out
}

/// rpm's transaction lock files of `root`: `<dbpath>/.rpm.lock`; for the
/// host without a `dbpath`, both places rpm 4.x puts the database.
fn rpm_lock_files(root: &RpmRoot) -> Vec<PathBuf> {
    match &root.dbpath {
        Some(db) => vec![root.path(db).join(".rpm.lock")],
        None => ["var/lib/rpm", "usr/lib/sysimage/rpm"]
            .iter()
            .map(|d| root.path(d).join(".rpm.lock"))
            .collect(),
    }
}

/// dnf's pid-file locks of `root` (dnf/lock.py): the rpmdb lock in the
/// persistdir, the metadata and download locks in the cachedir, all inside
/// the installroot. yum's cachedir with `$basearch` is not expanded here:
/// those locks are left to `exit_on_lock`.
fn dnf_lock_files(root: &RpmRoot, pm: PackageManager) -> Vec<PathBuf> {
    let mut out = vec![root.path("var/lib/dnf/rpmdb_lock.pid")];
    let cache = cache_dir(root, pm);
    if !cache.to_string_lossy().contains('$') {
        out.push(cache.join("metadata_lock.pid"));
        out.push(cache.join("download_lock.pid"));
    }
    out
}

/// Waits up to `wait` for rpm's and dnf's locks of `root` to be free.
fn wait_for_locks(root: &RpmRoot, pm: PackageManager, wait: Duration) -> Result<(), InstallError> {
    let rpm = rpm_lock_files(root);
    let dnf = dnf_lock_files(root, pm);
    let until = Instant::now() + wait;
    loop {
        let held = rpm
            .iter()
            .find_map(|p| crate::lock::lock_holder(p).map(|h| (p, h)))
            .or_else(|| {
                dnf.iter()
                    .find_map(|p| crate::lock::pid_file_holder(p).map(|h| (p, h)))
            });
        let Some((path, holder)) = held else {
            return Ok(());
        };
        if Instant::now() >= until {
            return Err(InstallError::Locked {
                path: path.display().to_string(),
                holder,
                waited: format!(" (waited {wait:?})"),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(name: &str, version: &str) -> PlannedInstall {
        PlannedInstall {
            name: name.into(),
            arch: "noarch".into(),
            version: version.into(),
            title: String::new(),
            advisory: None,
        }
    }

    fn inst(name: &str, version: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            arch: "noarch".into(),
            version: version.into(),
            installed_time: None,
            source: None,
        }
    }

    #[test]
    fn targets_and_versions() {
        assert_eq!(
            target(&planned("tb-tool", "1:2.1-1")),
            "tb-tool-1:2.1-1.noarch"
        );
        let all = [
            inst("kernel", "5.14.0-2"),
            inst("kernel", "5.14.0-10"),
            inst("tb-tool", "1:2.0-1"),
        ];
        assert!(has(&all, &planned("kernel", "0:5.14.0-2")));
        assert!(!has(&all, &planned("kernel", "5.14.0-3")));
        assert_eq!(
            versions_of(&all, &planned("kernel", "5.14.0-3")),
            ["5.14.0-2", "5.14.0-10"]
        );
        let ev = core_packages_changed(&all[..1], &all);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].packages, ["kernel-5.14.0-10.noarch"]);
        assert_eq!(ev[0].source, RebootSource::CorePackageUpdated);
    }

    #[test]
    fn messages_of_a_package() {
        let m = vec![
            "No match for argument: tb-hello-9.9-1.noarch".to_string(),
            "Package tb-new available, but not installed.".to_string(),
            "Package tb-newer available, but not installed.".to_string(),
        ];
        assert_eq!(
            own_messages(&m, &planned("tb-hello", "9.9-1")),
            ["No match for argument: tb-hello-9.9-1.noarch"]
        );
        assert_eq!(
            own_messages(&m, &planned("tb-new", "1-1")),
            ["Package tb-new available, but not installed."]
        );
        let me = std::process::id().to_string();
        let (_, l) = lock_message(&format!("Error: RPMDB already locked by {me}\n")).unwrap();
        assert!(l.starts_with(&format!("process {me} (")), "{l}");
        assert_eq!(lock_message("Complete!\n"), None);
        let rpm = "error: can't create transaction lock on /nonexistent/.rpm.lock (Resource temporarily unavailable)\nError: Could not run transaction.\n";
        assert_eq!(
            lock_message(rpm),
            Some((
                Some("/nonexistent/.rpm.lock".to_string()),
                "the holder of /nonexistent/.rpm.lock".to_string()
            ))
        );
    }
}
