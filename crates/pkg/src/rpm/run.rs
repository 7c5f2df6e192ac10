//! The RPM scan (dnf and yum systems): a node's facts read from the rpm
//! database and from the repository metadata the package manager cached.
//!
//! [`scan_with`] reads, under an [`RpmRoot`] (`/` on a node, a test bed or
//! a mounted image elsewhere):
//!
//! * installed packages: `rpm [--root DIR] [--dbpath P] -qa --queryformat`
//!   [`RPM_QUERY_FORMAT`] through the [`Runner`] ([`parse_rpm_query`]: install
//!   times and source packages included; `gpg-pubkey` skipped);
//! * `etc/os-release` (else `usr/lib/os-release`): operating system and product;
//! * the enabled repositories: the `[main]` section and repository sections
//!   of the configuration file (`etc/dnf/dnf.conf`, `etc/yum.conf` or
//!   [`RpmRoot::config`]) and every `*.repo` file of its `reposdir`
//!   (dnf's default: `/etc/yum.repos.d`, `/etc/yum/repos.d`,
//!   `/etc/distro.repos.d`), each looked up inside the root first, as dnf
//!   does with `--installroot`; `enabled` defaults to on;
//! * for each enabled repository, the metadata in the cache directory
//!   (`cachedir`, default `/var/cache/dnf`, or yum's
//!   `/var/cache/yum/$basearch/$releasever`, always inside the root): dnf
//!   keeps `<cachedir>/<repoid>-<16 hex digits>/repodata/repomd.xml`, yum
//!   `<cachedir>/<repoid>/repomd.xml` with the files next to it. The newest
//!   `repomd.xml` wins when several directories match. `repomd.xml` →
//!   `primary` ([`parse_primary`]: available versions with build times,
//!   repository = the repository id) → `updateinfo` ([`parse_updateinfo`]:
//!   notices, `repository` set), decompressed with [`decompress`].
//!
//! A repository whose metadata is missing or broken becomes a warning
//! naming it ([`RpmScan::warnings`]); the scan goes on. Only the rpm query
//! and os-release are essential.
//!
//! A scan never changes the root: it only reads, and runs `dnf makecache`
//! (or `yum makecache`) only when [`RpmScanOptions::refresh`] asks — with
//! `--installroot` and `--config` for a root other than `/`, and with the
//! `generate_completion_cache` plugin disabled there (it ignores the
//! installroot and writes the host's `/var/cache/dnf/packages.db`).

use super::{
    DEFAULT_MAX_METADATA_SIZE, RPM_QUERY_FORMAT, RpmParseError, decompress, parse_primary,
    parse_repomd, parse_rpm_query, parse_updateinfo,
};
use crate::os_release::{OsRelease, OsReleaseError, UnsupportedOs};
use crate::runner::{CommandSpec, RunError, Runner};
use jiff::Timestamp;
use patchfleet_core::facts::{AvailablePackage, FACTS_FORMAT, NodeFacts, OsFacts, UpdateNotice};
use patchfleet_core::os::{OperatingSystem, PackageManager};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// An RPM system (dnf or yum) rooted at a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpmRoot {
    /// `/` on a node.
    pub dir: PathBuf,
    /// The dnf/yum configuration file, a path on this machine (passed as
    /// `--config`). `None`: the root's own (`etc/dnf/dnf.conf`, else
    /// `etc/yum.conf`), or the package manager's defaults without one.
    pub config: Option<PathBuf>,
    /// The rpm database inside the root (`rpm --dbpath`, relative to the
    /// root as rpm takes it). `None`: rpm's own default (right for `/`).
    pub dbpath: Option<PathBuf>,
    /// Extra environment of every rpm and dnf/yum command (test beds: `HOME`
    /// with an `.rpmmacros` naming `%_dbpath`).
    pub env: Vec<(OsString, OsString)>,
    /// Extra arguments of every dnf/yum command (`--releasever=9`, …).
    pub pm_args: Vec<OsString>,
}

impl RpmRoot {
    /// The running system.
    pub fn host() -> RpmRoot {
        RpmRoot {
            dir: PathBuf::from("/"),
            config: None,
            dbpath: None,
            env: Vec::new(),
            pm_args: Vec::new(),
        }
    }

    /// A root in `dir` (a test bed, a mounted image): its own configuration
    /// file ([`RpmRoot::config_file`]), and the database at `/var/lib/rpm`
    /// (or `/usr/lib/sysimage/rpm` when only that exists): rpm's default on
    /// this machine may be elsewhere (Debian's rpm: `~/.rpmdb`).
    pub fn at(dir: impl Into<PathBuf>) -> RpmRoot {
        let dir = dir.into();
        let sysimage = "/usr/lib/sysimage/rpm";
        let dbpath = if !dir.join("var/lib/rpm").exists() && dir.join(&sysimage[1..]).is_dir() {
            sysimage
        } else {
            "/var/lib/rpm"
        };
        RpmRoot {
            config: None,
            dbpath: Some(PathBuf::from(dbpath)),
            dir,
            env: Vec::new(),
            pm_args: Vec::new(),
        }
    }

    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// `rel` (absolute, as in a configuration file) inside the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        self.dir.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// The configuration file the scan and a refresh read, if any:
    /// [`RpmRoot::config`], else the root's `etc/dnf/dnf.conf` or
    /// `etc/yum.conf` (yum's first for yum).
    pub fn config_file(&self, pm: PackageManager) -> Option<PathBuf> {
        if let Some(c) = &self.config {
            return Some(c.clone());
        }
        let own: &[&str] = match pm {
            PackageManager::Yum => &["etc/yum.conf", "etc/dnf/dnf.conf"],
            _ => &["etc/dnf/dnf.conf", "etc/yum.conf"],
        };
        own.iter().map(|c| self.path(c)).find(|c| c.is_file())
    }
}

#[derive(Clone, Debug)]
pub struct RpmScanOptions {
    /// Run `dnf makecache` / `yum makecache` first (never by default).
    pub refresh: bool,
    /// Timeout of the refresh.
    pub refresh_timeout: Duration,
    /// Timeout of `rpm -qa`.
    pub query_timeout: Duration,
    /// The node's boot time (the caller reads `/proc/stat`:
    /// [`crate::apt::boot_time_from_proc_stat`]); tests inject it.
    pub boot_time: Option<Timestamp>,
    /// `None`: the operating system's default (yum for Amazon Linux 2 and
    /// RHEL-likes 7 and older, else dnf).
    pub package_manager: Option<PackageManager>,
    /// Cap of one decompressed metadata file.
    pub max_metadata_size: u64,
    pub runner: Runner,
}

impl Default for RpmScanOptions {
    fn default() -> Self {
        RpmScanOptions {
            refresh: false,
            refresh_timeout: Duration::from_secs(300),
            query_timeout: Duration::from_secs(120),
            boot_time: None,
            package_manager: None,
            max_metadata_size: DEFAULT_MAX_METADATA_SIZE,
            runner: Runner::default(),
        }
    }
}

/// What a scan found: the facts, and what did not fit in them.
#[derive(Clone, Debug)]
pub struct RpmScan {
    pub facts: NodeFacts,
    /// Repositories without usable metadata, a failed refresh, …: each
    /// names the repository or the file.
    pub warnings: Vec<String>,
    /// The enabled repositories whose metadata was read.
    pub repositories: Vec<RepoInfo>,
    pub elapsed: Duration,
}

/// One enabled repository the scan read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoInfo {
    pub id: String,
    /// Where it is defined.
    pub defined_in: PathBuf,
    /// Its cache directory.
    pub cache_dir: PathBuf,
    pub repomd: PathBuf,
    pub revision: Option<String>,
    /// When the package manager fetched it (the mtime of `repomd.xml`):
    /// how stale the facts may be.
    pub fetched: Option<Timestamp>,
    /// Binary package versions from `primary`.
    pub versions: usize,
    /// Notices from `updateinfo` (0 without one).
    pub notices: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] RpmParseError),
    #[error(transparent)]
    OsRelease(#[from] OsReleaseError),
    #[error("{path}: {source}")]
    UnsupportedOs {
        path: String,
        #[source]
        source: UnsupportedOs,
    },
    #[error("{path}: {os} ({product}) is not a dnf/yum system")]
    NotRpm {
        path: String,
        os: String,
        product: String,
    },
    #[error(transparent)]
    Run(#[from] RunError),
    /// rpm would create an empty database here: a scan never changes the node.
    #[error("{path}: no rpm database (rpmdb.sqlite, Packages or Packages.db)")]
    NoDatabase { path: String },
}

/// [`scan_with`] with the default options: the facts only.
pub fn scan(root: &RpmRoot) -> Result<NodeFacts, ScanError> {
    Ok(scan_with(root, &RpmScanOptions::default())?.facts)
}

/// Scans the dnf/yum system at `root` (see the module documentation).
pub fn scan_with(root: &RpmRoot, opts: &RpmScanOptions) -> Result<RpmScan, ScanError> {
    let start = Instant::now();
    let mut warnings = Vec::new();
    let (os_path, operating_system, product) = read_os(root)?;
    let pm = match opts.package_manager {
        Some(pm) => pm,
        None => default_package_manager(&os_path, operating_system, &product)?,
    };
    if opts.refresh
        && let Err(e) = refresh(root, pm, opts)
    {
        warnings.push(format!(
            "{} makecache failed, using the cached metadata: {e}",
            pm_program(pm)
        ));
    }

    check_database(root)?;
    let installed = query_installed(root, opts)?;
    let (available, notices, repositories) = read_repositories(root, pm, opts, &mut warnings);

    let facts = NodeFacts {
        format: FACTS_FORMAT.to_string(),
        os: OsFacts {
            operating_system,
            product,
            package_manager: Some(pm),
        },
        installed,
        available,
        notices,
        boot_time: opts.boot_time,
        reboot_state: None,
        running_kernel: None,
        reboot_required: Vec::new(),
    };
    Ok(RpmScan {
        facts,
        warnings,
        repositories,
        elapsed: start.elapsed(),
    })
}

/// dnf or yum, as the root's os-release says (yum: Amazon Linux 2 and
/// RHEL-likes 7 and older).
pub fn package_manager(root: &RpmRoot) -> Result<PackageManager, ScanError> {
    let (os_path, operating_system, product) = read_os(root)?;
    default_package_manager(&os_path, operating_system, &product)
}

fn default_package_manager(
    os_path: &str,
    operating_system: OperatingSystem,
    product: &str,
) -> Result<PackageManager, ScanError> {
    match operating_system.default_package_manager(product) {
        Some(pm @ (PackageManager::Dnf | PackageManager::Yum)) => Ok(pm),
        _ => Err(ScanError::NotRpm {
            path: os_path.to_string(),
            os: operating_system.as_str().to_string(),
            product: product.to_string(),
        }),
    }
}

pub(crate) fn pm_program(pm: PackageManager) -> &'static str {
    match pm {
        PackageManager::Yum => "yum",
        _ => "dnf",
    }
}

/// `rpm -q` on a root without a database creates one; refuse instead.
pub(crate) fn check_database(root: &RpmRoot) -> Result<(), ScanError> {
    let Some(db) = &root.dbpath else {
        // The host's own database, wherever rpm's configuration puts it.
        return Ok(());
    };
    let relative = db.strip_prefix("/").unwrap_or(db);
    let dir = if root.is_host() {
        db.clone()
    } else {
        root.dir.join(relative)
    };
    let found = ["rpmdb.sqlite", "Packages", "Packages.db"]
        .iter()
        .any(|f| dir.join(f).is_file());
    if found {
        Ok(())
    } else {
        Err(ScanError::NoDatabase {
            path: dir.display().to_string(),
        })
    }
}

/// The `rpm -qa` command of `root`.
pub fn rpm_query_command(root: &RpmRoot) -> CommandSpec {
    let mut spec = CommandSpec::new("rpm");
    if !root.is_host() {
        spec = spec.arg("--root").arg(&root.dir);
    }
    if let Some(db) = &root.dbpath {
        spec = spec.arg("--dbpath").arg(db);
    }
    spec = spec.args(["-qa", "--queryformat", RPM_QUERY_FORMAT]);
    for (k, v) in &root.env {
        spec = spec.env(k, v);
    }
    spec
}

fn query_installed(
    root: &RpmRoot,
    opts: &RpmScanOptions,
) -> Result<Vec<patchfleet_core::facts::InstalledPackage>, ScanError> {
    let spec = rpm_query_command(root).timeout(opts.query_timeout);
    let out = opts.runner.run_ok(&spec)?;
    if out.stdout.truncated() {
        return Err(ScanError::Parse(RpmParseError {
            input: out.command,
            line: None,
            problem: "output larger than the runner's cap".to_string(),
        }));
    }
    Ok(parse_rpm_query(&out.command, &out.stdout_text())?)
}

/// The refresh command: `dnf makecache --refresh` (`yum makecache`), with
/// `--installroot` and `--config` for a root other than `/`.
pub fn refresh_command(root: &RpmRoot, pm: PackageManager) -> CommandSpec {
    let mut spec = pm_command(root, pm, &["-q"], &["generate_completion_cache"]).arg("makecache");
    if pm == PackageManager::Dnf {
        spec = spec.arg("--refresh");
    }
    spec
}

/// `dnf`/`yum` for `root`, before the subcommand: `first` (options), then
/// `--installroot` and, for dnf, `--disableplugin=<off>` for a root other
/// than `/` (plugins such as `generate_completion_cache` ignore the
/// installroot and write the host's files), `-c` with the root's
/// configuration file, [`RpmRoot::pm_args`], and [`RpmRoot::env`].
pub fn pm_command(root: &RpmRoot, pm: PackageManager, first: &[&str], off: &[&str]) -> CommandSpec {
    let mut spec = CommandSpec::new(pm_program(pm)).args(first);
    if !root.is_host() {
        spec = spec.arg(format!("--installroot={}", root.dir.display()));
        if pm == PackageManager::Dnf && !off.is_empty() {
            spec = spec.arg(format!("--disableplugin={}", off.join(",")));
        }
    }
    if let Some(conf) = root.config_file(pm) {
        spec = spec.arg("-c").arg(conf);
    }
    spec = spec.args(&root.pm_args);
    for (k, v) in &root.env {
        spec = spec.env(k, v);
    }
    spec
}

/// The package manager's cache directory in the root (`cachedir` of the
/// configuration file, else the default), as configured: yum's may hold
/// `$basearch`/`$releasever`.
pub(crate) fn cache_dir(root: &RpmRoot, pm: PackageManager) -> PathBuf {
    configuration(root, pm, &mut Vec::new()).0
}

/// `dnf makecache` / `yum makecache` on `root` through the runner.
pub fn refresh(root: &RpmRoot, pm: PackageManager, opts: &RpmScanOptions) -> Result<(), RunError> {
    let spec = refresh_command(root, pm).timeout(opts.refresh_timeout);
    opts.runner.run_ok(&spec).map(drop)
}

pub(crate) fn read_os(root: &RpmRoot) -> Result<(String, OperatingSystem, String), ScanError> {
    let mut path = root.path("etc/os-release");
    if !path.exists() {
        path = root.path("usr/lib/os-release");
    }
    let text = read_text(&path)?;
    let label = path.to_string_lossy().into_owned();
    let os = OsRelease::parse(&label, &text)?;
    let (operating_system, product) = os.detect().map_err(|source| ScanError::UnsupportedOs {
        path: label.clone(),
        source,
    })?;
    Ok((label, operating_system, product))
}

pub(crate) fn read_text(path: &Path) -> Result<String, ScanError> {
    let bytes = std::fs::read(path).map_err(|source| ScanError::Read {
        path: path.to_string_lossy().into_owned(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

// ---------------------------------------------------------------------------
// Configuration

/// One section of an INI file (dnf.conf, *.repo).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IniSection {
    pub name: String,
    /// Keys lower-cased; continuation lines joined with `\n`.
    pub entries: Vec<(String, String)>,
}

impl IniSection {
    /// The last value of `key` (dnf: a later line wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads dnf's INI dialect: `[section]`, `key=value` (spaces around `=`
/// allowed), `#`/`;` comments, indented continuation lines. Lines before
/// the first section and lines without `=` are ignored, as dnf does.
pub fn parse_ini(text: &str) -> Vec<IniSection> {
    let mut out: Vec<IniSection> = Vec::new();
    let mut last_key: Option<usize> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            if let Some(end) = trimmed.find(']') {
                out.push(IniSection {
                    name: trimmed[1..end].trim().to_string(),
                    entries: Vec::new(),
                });
            }
            last_key = None;
            continue;
        }
        let Some(section) = out.last_mut() else {
            continue;
        };
        if line.starts_with([' ', '\t'])
            && let Some(i) = last_key
        {
            let v = &mut section.entries[i].1;
            v.push('\n');
            v.push_str(trimmed);
            continue;
        }
        if let Some((k, v)) = trimmed.split_once('=') {
            section
                .entries
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            last_key = Some(section.entries.len() - 1);
        }
    }
    out
}

/// dnf's boolean values.
pub(crate) fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "yes" | "true" | "on"
    )
}

/// A repository as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoConfig {
    pub id: String,
    pub enabled: bool,
    pub defined_in: PathBuf,
}

/// Adds the repository sections of one file (the first definition wins).
fn add_repos(
    sections: Vec<IniSection>,
    file: &Path,
    repos: &mut Vec<RepoConfig>,
    warnings: &mut Vec<String>,
) {
    for s in sections {
        if s.name == "main" {
            continue;
        }
        if let Some(prev) = repos.iter().find(|r| r.id == s.name) {
            warnings.push(format!(
                "repository {} of {} is already defined in {}; ignored",
                s.name,
                file.display(),
                prev.defined_in.display()
            ));
            continue;
        }
        repos.push(RepoConfig {
            enabled: s.get("enabled").is_none_or(is_true),
            id: s.name,
            defined_in: file.to_path_buf(),
        });
    }
}

/// The cache directory and the repositories of `root`'s configuration.
fn configuration(
    root: &RpmRoot,
    pm: PackageManager,
    warnings: &mut Vec<String>,
) -> (PathBuf, Vec<RepoConfig>) {
    let mut main = IniSection::default();
    let mut repos: Vec<RepoConfig> = Vec::new();
    if let Some(conf) = root.config_file(pm) {
        match read_text(&conf) {
            Ok(text) => {
                let sections = parse_ini(&text);
                if let Some(m) = sections.iter().find(|s| s.name == "main") {
                    main = m.clone();
                }
                add_repos(sections, &conf, &mut repos, warnings);
            }
            Err(e) => warnings.push(format!("{e}; using the defaults")),
        }
    }
    let cachedir = main.get("cachedir").map(str::to_string).unwrap_or_else(|| {
        match pm {
            PackageManager::Yum => "/var/cache/yum/$basearch/$releasever",
            _ => "/var/cache/dnf",
        }
        .to_string()
    });
    let reposdirs: Vec<String> = match main.get("reposdir") {
        Some(v) => v
            .split([',', ' ', '\n', '\t'])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => [
            "/etc/yum.repos.d",
            "/etc/yum/repos.d",
            "/etc/distro.repos.d",
        ]
        .map(str::to_string)
        .to_vec(),
    };
    for d in reposdirs {
        // dnf --installroot: inside the root first, else as written.
        let inside = root.path(&d);
        let dir = if inside.is_dir() {
            inside
        } else if !root.is_host() && Path::new(&d).is_dir() {
            PathBuf::from(&d)
        } else {
            continue;
        };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "repo") && p.is_file())
                .collect(),
            Err(e) => {
                warnings.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        files.sort();
        for f in files {
            match read_text(&f) {
                Ok(text) => add_repos(parse_ini(&text), &f, &mut repos, warnings),
                Err(e) => warnings.push(format!("{e}; its repositories skipped")),
            }
        }
    }
    (root.path(&cachedir), repos)
}

// ---------------------------------------------------------------------------
// Cached metadata

/// dnf's cache directory name: `<repoid>-<first 16 hex digits of a sha256>`;
/// yum's: `<repoid>`.
fn is_cache_dir_of(name: &str, id: &str) -> bool {
    if name == id {
        return true;
    }
    name.strip_prefix(id)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The newest `repomd.xml` of repository `id` under `cachedir` (which may
/// hold unexpanded `$basearch`/`$releasever`: then searched below the part
/// before them, three levels deep).
fn find_cache(cachedir: &Path, id: &str) -> Option<(PathBuf, PathBuf, SystemTime)> {
    let mut base = PathBuf::new();
    let mut depth = 1;
    for c in cachedir.components() {
        if c.as_os_str().to_string_lossy().contains('$') {
            depth = 3;
            break;
        }
        base.push(c);
    }
    let mut best: Option<(PathBuf, PathBuf, SystemTime)> = None;
    let mut stack = vec![(base, depth)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = e.path();
            let name = e.file_name();
            if is_cache_dir_of(&name.to_string_lossy(), id) {
                for repomd in [path.join("repodata/repomd.xml"), path.join("repomd.xml")] {
                    if let Ok(m) = std::fs::metadata(&repomd)
                        && m.is_file()
                    {
                        let t = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        if best.as_ref().is_none_or(|b| t > b.2) {
                            best = Some((path.clone(), repomd, t));
                        }
                        break;
                    }
                }
            } else if depth > 1 {
                stack.push((path, depth - 1));
            }
        }
    }
    best
}

/// The file a repomd `location` names, in dnf's layout (`<dir>/repodata/…`)
/// or yum's (the file name next to `repomd.xml`).
fn locate(cache_dir: &Path, location: &str) -> Option<PathBuf> {
    let rel = location.trim_start_matches('/');
    // Metadata is outside input: never leave the cache directory.
    if Path::new(rel)
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    let file = Path::new(rel).file_name()?;
    [
        cache_dir.join(rel),
        cache_dir.join("repodata").join(file),
        cache_dir.join(file),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

fn read_metadata(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let shown = path.to_string_lossy();
    let raw = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    decompress(&shown, &raw, max).map_err(|e| e.to_string())
}

/// What one repository's cached metadata gives.
pub(crate) struct CachedRepo {
    pub versions: Vec<AvailablePackage>,
    /// With `repository` set to the repository id.
    pub notices: Vec<UpdateNotice>,
    pub revision: Option<String>,
    /// An unreadable updateinfo: the packages are kept, the notices skipped.
    pub notices_warning: Option<String>,
}

/// Reads `repomd.xml` of repository `id` in `cache_dir` (dnf's, yum's or
/// libzypp's raw cache layout), then primary and updateinfo. `Err`: no
/// usable package list, in words naming the file.
pub(crate) fn read_cached_repo(
    id: &str,
    cache_dir: &Path,
    repomd_path: &Path,
    max: u64,
) -> Result<CachedRepo, String> {
    let repomd = read_metadata(repomd_path, max).and_then(|b| {
        parse_repomd(&repomd_path.to_string_lossy(), &b).map_err(|e| e.to_string())
    })?;
    let Some(primary) = repomd.get("primary") else {
        let why = if repomd.get("primary_db").is_some() {
            "only primary_db (sqlite) is listed, which this scan does not read"
        } else {
            "no primary metadata listed"
        };
        return Err(format!("{}: {why}", repomd_path.display()));
    };
    let versions = locate(cache_dir, &primary.location)
        .ok_or_else(|| {
            format!(
                "{} is not in the cache {}",
                primary.location,
                cache_dir.display()
            )
        })
        .and_then(|p| {
            let bytes = read_metadata(&p, max)?;
            parse_primary(&p.to_string_lossy(), &bytes, id).map_err(|e| e.to_string())
        })?;
    let mut notices = Vec::new();
    let mut notices_warning = None;
    if let Some(ui) = repomd.get("updateinfo") {
        match locate(cache_dir, &ui.location)
            .ok_or_else(|| {
                format!(
                    "{} is not in the cache {}",
                    ui.location,
                    cache_dir.display()
                )
            })
            .and_then(|p| {
                let bytes = read_metadata(&p, max)?;
                parse_updateinfo(&p.to_string_lossy(), &bytes).map_err(|e| e.to_string())
            }) {
            Ok(n) => notices = n,
            Err(e) => notices_warning = Some(format!("{e}; its notices skipped (packages kept)")),
        }
    }
    for n in &mut notices {
        n.repository = Some(id.to_string());
    }
    Ok(CachedRepo {
        versions,
        notices,
        revision: repomd.revision.clone(),
        notices_warning,
    })
}

type RepoData = (Vec<AvailablePackage>, Vec<UpdateNotice>, Vec<RepoInfo>);

/// Reads the cached metadata of every enabled repository; problems become
/// warnings naming the repository.
fn read_repositories(
    root: &RpmRoot,
    pm: PackageManager,
    opts: &RpmScanOptions,
    warnings: &mut Vec<String>,
) -> RepoData {
    let (cachedir, mut repos) = configuration(root, pm, warnings);
    repos.retain(|r| r.enabled);
    repos.sort_by(|a, b| a.id.cmp(&b.id));
    let mut available = Vec::new();
    let mut notices = Vec::new();
    let mut infos = Vec::new();
    for repo in repos {
        let id = &repo.id;
        let Some((cache_dir, repomd_path, mtime)) = find_cache(&cachedir, id) else {
            warnings.push(format!(
                "repository {id}: no cached metadata under {} (refresh to fetch it); skipped",
                cachedir.display()
            ));
            continue;
        };
        let cached = match read_cached_repo(id, &cache_dir, &repomd_path, opts.max_metadata_size) {
            Ok(c) => c,
            Err(e) => {
                warnings.push(format!("repository {id}: {e}; skipped"));
                continue;
            }
        };
        warnings.extend(
            cached
                .notices_warning
                .map(|w| format!("repository {id}: {w}")),
        );
        let (versions, repo_notices) = (cached.versions, cached.notices);
        infos.push(RepoInfo {
            id: id.clone(),
            defined_in: repo.defined_in.clone(),
            cache_dir,
            repomd: repomd_path,
            revision: cached.revision,
            fetched: Timestamp::try_from(mtime).ok(),
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
    fn ini() {
        let s = parse_ini(
            "junk\n[main]\ncachedir = /var/cache/x\n# c\n; c\n[tb]\nname=TB\nbaseurl=file:///a\n  file:///b\nenabled=0\nenabled = 1\nnoequals\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("cachedir"), Some("/var/cache/x"));
        assert_eq!(s[1].name, "tb");
        assert_eq!(s[1].get("baseurl"), Some("file:///a\nfile:///b"));
        assert_eq!(s[1].get("enabled"), Some("1"));
        assert!(is_true("True") && is_true("yes") && !is_true("0") && !is_true("off"));
    }

    #[test]
    fn cache_dir_names() {
        assert!(is_cache_dir_of("tb-0123456789abcdef", "tb"));
        assert!(is_cache_dir_of("tb", "tb"));
        // Another repository whose id starts with this one's.
        assert!(!is_cache_dir_of("tb-updates-0123456789abcdef", "tb"));
        assert!(is_cache_dir_of("tb-updates-0123456789abcdef", "tb-updates"));
        assert!(!is_cache_dir_of("tb-0123456789abcde", "tb"));
        assert!(!is_cache_dir_of("tb.solv", "tb"));
    }

    #[test]
    fn commands() {
        let mut root = RpmRoot::at("/nonexistent/r");
        root.pm_args.push("--releasever=9".into());
        let q = rpm_query_command(&root).display();
        assert!(
            q.starts_with("rpm --root /nonexistent/r --dbpath /var/lib/rpm -qa --queryformat"),
            "{q}"
        );
        let r = refresh_command(&root, PackageManager::Dnf).display();
        assert_eq!(
            r,
            "dnf -q --installroot=/nonexistent/r --disableplugin=generate_completion_cache \
             --releasever=9 makecache --refresh"
        );
        let h = RpmRoot::host();
        assert!(
            rpm_query_command(&h)
                .display()
                .starts_with("rpm -qa --queryformat")
        );
        assert_eq!(
            refresh_command(&h, PackageManager::Yum).display(),
            if Path::new("/etc/yum.conf").is_file() {
                "yum -q -c /etc/yum.conf makecache"
            } else if Path::new("/etc/dnf/dnf.conf").is_file() {
                "yum -q -c /etc/dnf/dnf.conf makecache"
            } else {
                "yum -q makecache"
            }
        );
    }
}
