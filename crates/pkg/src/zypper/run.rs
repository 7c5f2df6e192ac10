//! The zypper scan (SLES, openSUSE): a node's facts read from the rpm
//! database and from the repository metadata libzypp already cached.
//!
//! [`scan_with`] reads, under a [`ZypperRoot`] (`/` on a node, a test bed
//! or a mounted image elsewhere):
//!
//! * `etc/os-release` (else `usr/lib/os-release`): a SUSE system, or
//!   [`ZypperScanError::NotZypper`];
//! * installed packages: `rpm --root DIR --dbpath P -qa --queryformat`
//!   through the [`Runner`], exactly as the dnf scan does
//!   ([`crate::rpm::rpm_query_command`], [`crate::rpm::parse_rpm_query`]:
//!   install times and source packages); refused, before rpm runs, where
//!   the root has no database (rpm would create one);
//! * the enabled repositories of `etc/zypp/repos.d/*.repo` (one section per
//!   alias; `enabled` defaults to on, as libzypp's does);
//! * for each, libzypp's raw metadata cache
//!   `var/cache/zypp/raw/<alias>/repodata/repomd.xml` → primary (available
//!   versions, repository = the alias) → updateinfo (the patches, with
//!   their packages). libzypp keeps the rpm-md files as the repository
//!   served them, so the dnf scan's readers apply unchanged
//!   ([`crate::rpm::run`]). The categories stay zypper's (`security`,
//!   `recommended`, `optional`, `feature`; a dnf-made repository's `bugfix`
//!   is folded into `recommended` by `patchfleet_core`), severity as the
//!   updateinfo writes it, `reboot_suggested` from the patch's restart flag;
//! * reboot evidence: Debian-style flag files ([`crate::reboot::flag_file`])
//!   and libzypp's own `run/reboot-needed` ([`reboot_needed_flag`]).
//!
//! Why not `zypper --xmlout list-patches`: it does not name a patch's
//! packages, and any zypper command takes the lock (`run/zypp.pid`) and may
//! rebuild the solv cache, i.e. writes into the root. Its parser stays for
//! cross-checks ([`super::parse_list_patches`]).
//!
//! A repository whose metadata is missing or broken becomes a warning
//! naming it; the scan goes on. A scan never changes the root; `zypper
//! refresh` runs only when [`ZypperScanOptions::refresh`] asks.

use crate::rpm::run::{
    CachedRepo, check_database, is_true, parse_ini, read_cached_repo, read_os, read_text,
    rpm_query_command,
};
use crate::rpm::{DEFAULT_MAX_METADATA_SIZE, RepoInfo, RpmParseError, RpmRoot, parse_rpm_query};
use crate::runner::{CommandSpec, RunError, Runner};
use jiff::Timestamp;
use patchfleet_core::facts::{
    AvailablePackage, FACTS_FORMAT, InstalledPackage, NodeFacts, OsFacts, RebootEvidence,
    RebootSource, UpdateNotice,
};
use patchfleet_core::os::{OperatingSystem, PackageManager};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where libzypp keeps the repository definitions, inside the root.
pub const REPOS_DIR: &str = "etc/zypp/repos.d";
/// libzypp's raw metadata cache (one folder per alias), inside the root.
pub const RAW_CACHE_DIR: &str = "var/cache/zypp/raw";
/// libzypp's lock: the PID of the process holding it (empty or stale: free).
pub const LOCK_FILE: &str = "run/zypp.pid";

/// A zypper system rooted at a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZypperRoot {
    /// `/` on a node.
    pub dir: PathBuf,
    /// The rpm database inside the root (`rpm --dbpath`). `None`: rpm's
    /// own default (right for `/`).
    pub dbpath: Option<PathBuf>,
    /// Extra environment of every rpm and zypper command (test beds: `HOME`
    /// with an `.rpmmacros` naming `%_dbpath /var/lib/rpm`, since libzypp's
    /// librpm reads the macros of this machine).
    pub env: Vec<(OsString, OsString)>,
}

impl ZypperRoot {
    pub fn host() -> ZypperRoot {
        ZypperRoot {
            dir: PathBuf::from("/"),
            dbpath: None,
            env: Vec::new(),
        }
    }

    /// A root in `dir`, its rpm database found as [`RpmRoot::at`] does.
    pub fn at(dir: impl Into<PathBuf>) -> ZypperRoot {
        let rpm = RpmRoot::at(dir);
        ZypperRoot {
            dir: rpm.dir,
            dbpath: rpm.dbpath,
            env: Vec::new(),
        }
    }

    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// `rel` (absolute or not) inside the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        self.dir.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// The same root as the rpm side sees it (`rpm -qa`, os-release).
    pub fn rpm(&self) -> RpmRoot {
        let mut r = if self.is_host() {
            RpmRoot::host()
        } else {
            RpmRoot::at(&self.dir)
        };
        r.dbpath = self.dbpath.clone();
        r.env = self.env.clone();
        r
    }

    /// `zypper --root DIR --non-interactive --no-color`, plus `args`.
    ///
    /// `--root` always: without it zypper takes the host's `/run/zypp.pid`
    /// even for `--help`. libzypp does not move its log with `--root`, so
    /// a root other than `/` gets `ZYPP_LOGFILE` inside it (else the
    /// host's `/var/log/zypper.log` grows), and `ZYPP_CONF` when the root
    /// has its own `etc/zypp/zypp.conf` (else the host's is read).
    pub fn zypper<I, S>(&self, args: I) -> CommandSpec
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut spec = CommandSpec::new("zypper")
            .arg("--root")
            .arg(&self.dir)
            .args(["--non-interactive", "--no-color"])
            .args(args);
        if !self.is_host() {
            spec = spec.env("ZYPP_LOGFILE", self.path("var/log/zypper.log"));
            let conf = self.path("etc/zypp/zypp.conf");
            if conf.is_file() {
                spec = spec.env("ZYPP_CONF", conf);
            }
        }
        for (k, v) in &self.env {
            spec = spec.env(k, v);
        }
        spec
    }
}

#[derive(Clone, Debug)]
pub struct ZypperScanOptions {
    /// Run `zypper refresh` first (never by default).
    pub refresh: bool,
    pub refresh_timeout: Duration,
    /// Timeout of `rpm -qa`.
    pub query_timeout: Duration,
    /// The node's boot time (read by the caller; tests inject it).
    pub boot_time: Option<Timestamp>,
    /// Cap of one decompressed metadata file.
    pub max_metadata_size: u64,
    pub runner: Runner,
}

impl Default for ZypperScanOptions {
    fn default() -> Self {
        ZypperScanOptions {
            refresh: false,
            refresh_timeout: Duration::from_secs(300),
            query_timeout: Duration::from_secs(120),
            boot_time: None,
            max_metadata_size: DEFAULT_MAX_METADATA_SIZE,
            runner: Runner::default(),
        }
    }
}

/// What a scan found: the facts, and what did not fit in them.
#[derive(Clone, Debug)]
pub struct ZypperScan {
    pub facts: NodeFacts,
    /// Each names the repository or the file.
    pub warnings: Vec<String>,
    /// The enabled repositories whose metadata was read (`id` = alias).
    pub repositories: Vec<RepoInfo>,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ZypperScanError {
    /// os-release, the rpm database or the rpm query.
    #[error(transparent)]
    Rpm(#[from] crate::rpm::ScanError),
    #[error("{path}: {os} ({product}) is not a zypper system")]
    NotZypper {
        path: String,
        os: String,
        product: String,
    },
}

/// [`scan_with`] with the default options: the facts only.
pub fn scan(root: &ZypperRoot) -> Result<NodeFacts, ZypperScanError> {
    Ok(scan_with(root, &ZypperScanOptions::default())?.facts)
}

/// Scans the zypper system at `root` (see the module documentation).
pub fn scan_with(
    root: &ZypperRoot,
    opts: &ZypperScanOptions,
) -> Result<ZypperScan, ZypperScanError> {
    let start = Instant::now();
    let rpm = root.rpm();
    let (os_path, operating_system, product) = read_os(&rpm)?;
    if operating_system != OperatingSystem::Suse {
        return Err(ZypperScanError::NotZypper {
            path: os_path,
            os: operating_system.as_str().to_string(),
            product,
        });
    }
    let mut warnings = Vec::new();
    if opts.refresh
        && let Err(e) = refresh(root, opts)
    {
        warnings.push(format!(
            "zypper refresh failed, using the cached metadata: {e}"
        ));
    }
    check_database(&rpm)?;
    let installed = query_installed(&rpm, opts)?;
    let (available, notices, repositories) =
        read_repositories(root, opts.max_metadata_size, &mut warnings);
    let reboot_required = crate::reboot::flag_file(&root.dir)
        .into_iter()
        .chain(reboot_needed_flag(root))
        .collect();
    let facts = NodeFacts {
        format: FACTS_FORMAT.to_string(),
        os: OsFacts {
            operating_system,
            product,
            package_manager: Some(PackageManager::Zypper),
        },
        installed,
        available,
        notices,
        boot_time: opts.boot_time,
        reboot_state: None,
        running_kernel: None,
        reboot_required,
    };
    Ok(ZypperScan {
        facts,
        warnings,
        repositories,
        elapsed: start.elapsed(),
    })
}

/// `rpm -qa` of the root (see [`crate::rpm::rpm_query_command`]).
pub(crate) fn query_installed(
    rpm: &RpmRoot,
    opts: &ZypperScanOptions,
) -> Result<Vec<InstalledPackage>, crate::rpm::ScanError> {
    let spec = rpm_query_command(rpm).timeout(opts.query_timeout);
    let out = opts.runner.run_ok(&spec)?;
    if out.stdout.truncated() {
        return Err(RpmParseError {
            input: out.command,
            line: None,
            problem: "output larger than the runner's cap".to_string(),
        }
        .into());
    }
    Ok(parse_rpm_query(&out.command, &out.stdout_text())?)
}

/// The refresh command: `zypper --root R --non-interactive refresh`.
pub fn refresh_command(root: &ZypperRoot) -> CommandSpec {
    root.zypper(["refresh"])
}

/// `zypper refresh` on `root` through the runner.
pub fn refresh(root: &ZypperRoot, opts: &ZypperScanOptions) -> Result<(), RunError> {
    let spec = refresh_command(root).timeout(opts.refresh_timeout);
    opts.runner.run_ok(&spec).map(drop)
}

/// libzypp's flag `run/reboot-needed` (`var/run/…` on older layouts): it
/// writes it after installing a package its `needreboot` rules name
/// (`etc/zypp/needreboot`, `installhint(reboot-needed)`), and `zypper
/// needs-rebooting` reads nothing else.
pub fn reboot_needed_flag(root: &ZypperRoot) -> Option<RebootEvidence> {
    ["run/reboot-needed", "var/run/reboot-needed"]
        .iter()
        .map(|f| root.path(f))
        .find(|p| p.exists())
        .map(|p| RebootEvidence {
            source: RebootSource::PackageManager,
            packages: Vec::new(),
            detail: format!(
                "{} exists (libzypp: a package it marks needreboot was installed)",
                p.display()
            ),
        })
}

/// A repository as `repos.d` defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZypperRepo {
    pub alias: String,
    pub enabled: bool,
    pub defined_in: PathBuf,
}

/// The repositories of `etc/zypp/repos.d/*.repo` (files in name order; the
/// first definition of an alias wins, as in libzypp).
pub fn repositories(root: &ZypperRoot, warnings: &mut Vec<String>) -> Vec<ZypperRepo> {
    let dir = root.path(REPOS_DIR);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "repo") && p.is_file())
            .collect(),
        Err(e) => {
            warnings.push(format!("{}: {e}; no repositories", dir.display()));
            return Vec::new();
        }
    };
    files.sort();
    let mut repos: Vec<ZypperRepo> = Vec::new();
    for f in files {
        let text = match read_text(&f) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!("{e}; its repositories skipped"));
                continue;
            }
        };
        for s in parse_ini(&text) {
            if let Some(prev) = repos.iter().find(|r| r.alias == s.name) {
                warnings.push(format!(
                    "repository {} of {} is already defined in {}; ignored",
                    s.name,
                    f.display(),
                    prev.defined_in.display()
                ));
                continue;
            }
            repos.push(ZypperRepo {
                enabled: s.get("enabled").is_none_or(is_true),
                alias: s.name,
                defined_in: f.clone(),
            });
        }
    }
    repos
}

type RepoData = (Vec<AvailablePackage>, Vec<UpdateNotice>, Vec<RepoInfo>);

/// Reads the raw cache of every enabled repository; problems become
/// warnings naming the repository.
pub(crate) fn read_repositories(
    root: &ZypperRoot,
    max: u64,
    warnings: &mut Vec<String>,
) -> RepoData {
    let mut repos = repositories(root, warnings);
    repos.retain(|r| r.enabled);
    repos.sort_by(|a, b| a.alias.cmp(&b.alias));
    let raw = root.path(RAW_CACHE_DIR);
    let (mut available, mut notices, mut infos) = (Vec::new(), Vec::new(), Vec::new());
    for repo in repos {
        let id = &repo.alias;
        // An alias is outside input: it must name one folder of the cache.
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            warnings.push(format!("repository {id}: not a usable alias; skipped"));
            continue;
        }
        let cache_dir = raw.join(id);
        let repomd = cache_dir.join("repodata/repomd.xml");
        let Ok(meta) = std::fs::metadata(&repomd) else {
            let why = if cache_dir.join("content").is_file() {
                "its cache holds SUSE tags metadata (content), which this scan does not read"
            } else {
                "no cached metadata (refresh to fetch it)"
            };
            warnings.push(format!(
                "repository {id}: {why} in {}; skipped",
                cache_dir.display()
            ));
            continue;
        };
        let CachedRepo {
            versions,
            notices: repo_notices,
            revision,
            notices_warning,
        } = match read_cached_repo(id, &cache_dir, &repomd, max) {
            Ok(c) => c,
            Err(e) => {
                warnings.push(format!("repository {id}: {e}; skipped"));
                continue;
            }
        };
        warnings.extend(notices_warning.map(|w| format!("repository {id}: {w}")));
        infos.push(RepoInfo {
            id: id.clone(),
            defined_in: repo.defined_in.clone(),
            cache_dir,
            repomd,
            revision,
            fetched: meta
                .modified()
                .ok()
                .and_then(|t| Timestamp::try_from(t).ok()),
            versions: versions.len(),
            notices: repo_notices.len(),
        });
        available.extend(versions);
        notices.extend(repo_notices);
    }
    (available, notices, infos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let mut root = ZypperRoot::at("/nonexistent/r");
        root.env.push(("HOME".into(), "/nonexistent/h".into()));
        let r = refresh_command(&root);
        assert_eq!(
            r.display(),
            "zypper --root /nonexistent/r --non-interactive --no-color refresh"
        );
        let env: Vec<String> = r
            .env
            .iter()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect();
        assert_eq!(
            env,
            [
                "ZYPP_LOGFILE=/nonexistent/r/var/log/zypper.log",
                "HOME=/nonexistent/h"
            ]
        );
        let q = rpm_query_command(&root.rpm()).display();
        assert!(
            q.starts_with("rpm --root /nonexistent/r --dbpath /var/lib/rpm -qa"),
            "{q}"
        );
        let h = ZypperRoot::host();
        assert!(refresh_command(&h).env.is_empty());
        assert!(
            refresh_command(&h)
                .display()
                .starts_with("zypper --root / ")
        );
    }
}
