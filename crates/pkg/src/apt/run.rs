//! The APT scan: a node's facts read from the files apt and dpkg keep.
//!
//! [`scan`] / [`scan_with`] read, under an [`AptRoot`] (`/` on a node, a
//! test-bed or a mounted image elsewhere):
//!
//! * `var/lib/dpkg/status` ([`parse_dpkg_status`]): installed packages, and
//!   the ones a dpkg run left half-done (reported apart, [`Scan::interrupted`]);
//! * install times: the mtime of `var/lib/dpkg/info/<name>:<arch>.list` or
//!   `<name>.list` (dpkg rewrites it on every unpack of the package);
//! * `etc/os-release` (else `usr/lib/os-release`): operating system and product;
//! * `var/lib/apt/lists`: every `*_Packages` index with the `*_Release` /
//!   `*_InRelease` of its suite. The list file names are apt's
//!   `URItoFileName`: the URI without scheme, `_` escaped as `%5f` and `/`
//!   turned into `_`, so `deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages`
//!   is site `deb.debian.org`, suite `bookworm`, component `main`; a `file:`
//!   repository's names start with `_` (its path) and it has no site. Flat
//!   repositories (`<prefix>_Packages` next to `<prefix>_Release`) have no
//!   component. Compressed lists (`Acquire::GzipIndexes`, `.gz`, `.xz`,
//!   `.zst`, `.bz2`) are decompressed in process; `.lz4` through
//!   `apt-helper cat-file` and the [`Runner`].
//!
//! **Trust.** apt moves a list into `lists/` only after the Release verified
//! against a trusted key or the source is `[trusted=yes]`; so by default
//! every index found there is trusted ([`TrustPolicy::AptAccepted`]). A
//! caller that wants more can require a signature ([`TrustPolicy::SignedOnly`]:
//! an `InRelease` or a `Release.gpg` next to the `Release`, plus sites it
//! names as trusted).
//!
//! A scan never changes the root: it only reads, and runs `apt-get update`
//! (with the root's `APT_CONFIG`) only when [`ScanOptions::refresh`] asks. An
//! index that cannot be read or parsed is reported in [`Scan::warnings`] and
//! the rest of the scan goes on; only the dpkg status and os-release are
//! essential.

use super::{AptParseError, InterruptedPackage};
use super::{IndexSource, Release, available_packages, merge_available, parse_dpkg_status};
use crate::os_release::{OsRelease, OsReleaseError, UnsupportedOs};
use crate::runner::{CommandSpec, RunError, Runner};
use jiff::Timestamp;
use patchfleet_core::facts::{FACTS_FORMAT, NodeFacts, OsFacts};
use patchfleet_core::os::PackageManager;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An APT/dpkg system rooted at a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AptRoot {
    /// `/` on a node.
    pub dir: PathBuf,
    /// `APT_CONFIG` for the apt commands run on this root (`None`: apt's own
    /// default, right for `/`).
    pub apt_config: Option<PathBuf>,
}

impl AptRoot {
    /// The running system.
    pub fn host() -> AptRoot {
        AptRoot {
            dir: PathBuf::from("/"),
            apt_config: None,
        }
    }

    /// A root in `dir`; its `apt.conf` (as the test beds write it) becomes
    /// the `APT_CONFIG` when it exists.
    pub fn at(dir: impl Into<PathBuf>) -> AptRoot {
        let dir = dir.into();
        let conf = dir.join("apt.conf");
        AptRoot {
            apt_config: conf.is_file().then_some(conf),
            dir,
        }
    }

    pub fn status_path(&self) -> PathBuf {
        self.dir.join("var/lib/dpkg/status")
    }

    pub fn info_dir(&self) -> PathBuf {
        self.dir.join("var/lib/dpkg/info")
    }

    pub fn lists_dir(&self) -> PathBuf {
        self.dir.join("var/lib/apt/lists")
    }
}

/// Which indexes count as trusted (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustPolicy {
    /// Every list apt kept: apt refuses unsigned, untrusted repositories.
    #[default]
    AptAccepted,
    /// Only indexes whose Release is signed (`InRelease`, `Release.gpg`), and
    /// those of these sites (`file:` repositories: their path, as in
    /// [`ListName::site_or_path`]).
    SignedOnly { trusted_sites: BTreeSet<String> },
}

#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Run `apt-get update` first (never by default: a scan reads only).
    pub refresh: bool,
    /// Timeout of `apt-get update`.
    pub refresh_timeout: Duration,
    /// The node's boot time (the caller reads `/proc/stat`:
    /// [`boot_time_from_proc_stat`]); tests inject it.
    pub boot_time: Option<Timestamp>,
    pub trust: TrustPolicy,
    pub runner: Runner,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            refresh: false,
            refresh_timeout: Duration::from_secs(300),
            boot_time: None,
            trust: TrustPolicy::default(),
            runner: Runner::default(),
        }
    }
}

/// What a scan found: the facts, and what did not fit in them.
#[derive(Clone, Debug)]
pub struct Scan {
    pub facts: NodeFacts,
    /// Packages a dpkg run left half-done (`dpkg --configure -a` repairs).
    pub interrupted: Vec<InterruptedPackage>,
    /// Indexes that could not be read, a failed refresh, …: each names the file.
    pub warnings: Vec<String>,
    /// The indexes read.
    pub indexes: Vec<IndexInfo>,
    pub elapsed: Duration,
}

/// One `Packages` index the scan read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexInfo {
    pub packages: PathBuf,
    pub release: PathBuf,
    pub name: ListName,
    pub trusted: bool,
    pub versions: usize,
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
    Parse(#[from] AptParseError),
    #[error(transparent)]
    OsRelease(#[from] OsReleaseError),
    #[error("{path}: {source}")]
    UnsupportedOs {
        path: String,
        #[source]
        source: UnsupportedOs,
    },
    #[error(transparent)]
    Run(#[from] RunError),
}

/// [`scan_with`] with the default options: the facts only.
pub fn scan(root: &AptRoot) -> Result<NodeFacts, ScanError> {
    Ok(scan_with(root, &ScanOptions::default())?.facts)
}

/// Scans the APT system at `root` (see the module documentation).
pub fn scan_with(root: &AptRoot, opts: &ScanOptions) -> Result<Scan, ScanError> {
    let start = Instant::now();
    let mut warnings = Vec::new();
    if opts.refresh
        && let Err(e) = refresh(root, opts)
    {
        warnings.push(format!(
            "apt-get update failed, using the lists on disk: {e}"
        ));
    }

    let (operating_system, product) = read_os(root)?;

    let status_path = root.status_path();
    let status_text = read_text(&status_path)?;
    let status = parse_dpkg_status(&status_path.to_string_lossy(), &status_text)?;
    let mut installed = status.installed;
    let info = root.info_dir();
    for p in &mut installed {
        p.installed_time = install_time(&info, &p.name, &p.arch);
    }

    let (available, indexes) = read_lists(root, opts, &mut warnings);

    let facts = NodeFacts {
        format: FACTS_FORMAT.to_string(),
        os: OsFacts {
            operating_system,
            product,
            package_manager: Some(PackageManager::Apt),
        },
        installed,
        available,
        notices: Vec::new(),
        boot_time: opts.boot_time,
        reboot_state: None,
        running_kernel: None,
        reboot_required: Vec::new(),
    };
    Ok(Scan {
        facts,
        interrupted: status.interrupted,
        warnings,
        indexes,
        elapsed: start.elapsed(),
    })
}

/// `apt-get update` on `root` through the runner.
pub fn refresh(root: &AptRoot, opts: &ScanOptions) -> Result<(), RunError> {
    let mut spec = CommandSpec::new("apt-get")
        .args(["-q", "-o", "Dpkg::Use-Pty=0", "update"])
        .timeout(opts.refresh_timeout);
    if let Some(conf) = &root.apt_config {
        spec = spec.env("APT_CONFIG", conf);
    }
    opts.runner.run_ok(&spec).map(drop)
}

/// The boot time from `/proc/stat` (`btime <epoch seconds>`).
pub fn boot_time_from_proc_stat(text: &str) -> Option<Timestamp> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|s| Timestamp::from_second(s).ok())
}

fn read_os(root: &AptRoot) -> Result<(patchfleet_core::os::OperatingSystem, String), ScanError> {
    let mut path = root.dir.join("etc/os-release");
    if !path.exists() {
        path = root.dir.join("usr/lib/os-release");
    }
    let text = read_text(&path)?;
    let label = path.to_string_lossy();
    let os = OsRelease::parse(&label, &text)?;
    os.detect().map_err(|source| ScanError::UnsupportedOs {
        path: label.into_owned(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, ScanError> {
    let bytes = std::fs::read(path).map_err(|source| ScanError::Read {
        path: path.to_string_lossy().into_owned(),
        source,
    })?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The mtime of the package's file list, multi-arch name first.
fn install_time(info: &Path, name: &str, arch: &str) -> Option<Timestamp> {
    [format!("{name}:{arch}.list"), format!("{name}.list")]
        .iter()
        .find_map(|f| std::fs::metadata(info.join(f)).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| Timestamp::try_from(t).ok())
}

// ---------------------------------------------------------------------------
// List file names

/// What apt's list file name says about an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListName {
    /// The URI's host (`deb.debian.org`, `mirror:8080`); `None` for `file:`
    /// (and `cdrom:`) repositories, whose names start with `_`.
    pub site: Option<String>,
    /// The repository's base, unescaped: `deb.debian.org/debian`,
    /// `/srv/repo` for `file:/srv/repo`.
    pub base: String,
    /// `bookworm-security`; `None` for a flat repository.
    pub suite: Option<String>,
    /// `main`, `updates/main`; `None` for a flat repository.
    pub component: Option<String>,
}

impl ListName {
    /// The site, or the path of a local repository: the key of
    /// [`TrustPolicy::SignedOnly`]'s sites.
    pub fn site_or_path(&self) -> &str {
        self.site.as_deref().unwrap_or(&self.base)
    }

    /// A label for the index: `deb.debian.org/debian bookworm/main`.
    pub fn repository(&self) -> String {
        match (&self.suite, &self.component) {
            (Some(s), Some(c)) => format!("{} {s}/{c}", self.base),
            (Some(s), None) => format!("{} {s}", self.base),
            _ => format!("{} ./", self.base),
        }
    }
}

/// Undoes apt's escaping of one name part: `_` → `/`, `%xx` → byte.
pub fn unescape_list_part(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b'/'),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits a Packages list name (without compression suffix) given the name
/// of its Release file (without `_Release`/`_InRelease`): the Release's
/// prefix is `<base>_dists_<suite>` or, flat, `<base>`.
pub fn parse_list_name(packages: &str, release_prefix: &str) -> Option<ListName> {
    let rest = packages.strip_prefix(release_prefix)?.strip_prefix('_')?;
    let index = rest.strip_suffix("Packages")?;
    let (base_raw, suite, component) = match release_prefix.rfind("_dists_") {
        Some(i) => {
            let suite = unescape_list_part(&release_prefix[i + "_dists_".len()..]);
            // `<component>_binary-<arch>_` ; component may hold `_` (`/`).
            let comp = index
                .strip_suffix('_')
                .and_then(|s| s.rfind("_binary-").map(|j| &s[..j]))
                .filter(|c| !c.is_empty())
                .map(unescape_list_part);
            (&release_prefix[..i], Some(suite), comp)
        }
        None => (release_prefix, None, None),
    };
    let base = unescape_list_part(base_raw);
    let site = if base_raw.starts_with('_') || base_raw.is_empty() {
        None
    } else {
        Some(base.split('/').next().unwrap_or(&base).to_string())
    };
    Some(ListName {
        site,
        base,
        suite,
        component,
    })
}

/// Output cap of `apt-helper cat-file`.
const LIST_CAP: usize = 1 << 30;

const COMPRESSIONS: [&str; 5] = [".gz", ".xz", ".zst", ".bz2", ".lz4"];

fn strip_compression(name: &str) -> (&str, Option<&'static str>) {
    for c in COMPRESSIONS {
        if let Some(s) = name.strip_suffix(c) {
            return (s, Some(c));
        }
    }
    (name, None)
}

fn read_list(path: &Path, compression: Option<&str>, runner: &Runner) -> Result<String, String> {
    let shown = path.display();
    let raw = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let bytes = match compression {
        None => raw,
        Some(".gz") => decompress(flate2::read::MultiGzDecoder::new(&raw[..]), &shown)?,
        Some(".xz") => decompress(liblzma::read::XzDecoder::new(&raw[..]), &shown)?,
        Some(".bz2") => decompress(bzip2::read::MultiBzDecoder::new(&raw[..]), &shown)?,
        Some(".zst") => {
            let d =
                zstd::stream::read::Decoder::new(&raw[..]).map_err(|e| format!("{shown}: {e}"))?;
            decompress(d, &shown)?
        }
        Some(_) => {
            let spec = CommandSpec::new("/usr/lib/apt/apt-helper")
                .arg("cat-file")
                .arg(path)
                .timeout(Duration::from_secs(60));
            // Whole indexes are big (bookworm main: ~45 MB): a larger cap.
            let runner = Runner {
                output_cap: runner.output_cap.max(LIST_CAP),
                ..runner.clone()
            };
            let out = runner.run_ok(&spec).map_err(|e| e.to_string())?;
            if out.stdout.truncated() {
                return Err(format!(
                    "{shown}: decompressed index larger than the output cap"
                ));
            }
            out.stdout.head
        }
    };
    String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))
}

fn decompress(mut r: impl Read, shown: &impl std::fmt::Display) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(out)
}

/// Reads every index of the lists folder; problems become warnings.
fn read_lists(
    root: &AptRoot,
    opts: &ScanOptions,
    warnings: &mut Vec<String>,
) -> (
    Vec<patchfleet_core::facts::AvailablePackage>,
    Vec<IndexInfo>,
) {
    let dir = root.lists_dir();
    let names: BTreeSet<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                warnings.push(format!("{}: {e}", dir.display()));
            }
            return (Vec::new(), Vec::new());
        }
    };
    // Release prefixes, longest first (a suite's prefix may be a prefix of another's).
    let mut releases: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| {
            n.strip_suffix("_InRelease")
                .map(|p| (p, n.as_str()))
                .or_else(|| n.strip_suffix("_Release").map(|p| (p, n.as_str())))
        })
        .collect();
    releases.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(b.1)));

    let mut all = Vec::new();
    let mut infos = Vec::new();
    let mut parsed_releases: std::collections::HashMap<&str, Option<Release>> = Default::default();
    for name in &names {
        let (plain, compression) = strip_compression(name);
        if !plain.ends_with("_Packages") {
            continue;
        }
        // InRelease wins over Release when both exist (sorted: "_InRelease" < "_Release").
        let Some(&(prefix, release_file)) = releases.iter().find(|(p, _)| {
            plain.len() > p.len() && plain.starts_with(p) && plain.as_bytes()[p.len()] == b'_'
        }) else {
            warnings.push(format!(
                "{}: no Release file for this index; skipped",
                dir.join(name).display()
            ));
            continue;
        };
        let Some(list) = parse_list_name(plain, prefix) else {
            warnings.push(format!(
                "{}: unrecognised list file name; skipped",
                dir.join(name).display()
            ));
            continue;
        };
        let release_path = dir.join(release_file);
        let release = parsed_releases.entry(release_file).or_insert_with(|| {
            match read_text(&release_path)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    Release::parse(&release_path.to_string_lossy(), &t).map_err(|e| e.to_string())
                }) {
                Ok(r) => Some(r),
                Err(e) => {
                    warnings.push(format!("{e}; its indexes skipped"));
                    None
                }
            }
        });
        let Some(release) = release.as_ref() else {
            continue;
        };
        let signed = release.clearsigned
            || release_file.ends_with("_InRelease")
            || names.contains(&format!("{prefix}_Release.gpg"));
        let trusted = match &opts.trust {
            TrustPolicy::AptAccepted => true,
            TrustPolicy::SignedOnly { trusted_sites } => {
                signed || trusted_sites.contains(list.site_or_path())
            }
        };
        let path = dir.join(name);
        let text = match read_list(&path, compression, &opts.runner) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!("{e}; skipped"));
                continue;
            }
        };
        let repository = list.repository();
        let source = IndexSource {
            component: list.component.as_deref(),
            site: list.site.as_deref(),
            repository: Some(&repository),
            trusted,
        };
        match available_packages(&path.to_string_lossy(), &text, release, &source) {
            Ok(v) => {
                infos.push(IndexInfo {
                    packages: path,
                    release: release_path,
                    name: list.clone(),
                    trusted,
                    versions: v.len(),
                });
                all.extend(v);
            }
            Err(e) => warnings.push(format!("{e}; index skipped")),
        }
    }
    (merge_available(all), infos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_btime() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(
            boot_time_from_proc_stat(text),
            Some(Timestamp::from_second(1_700_000_000).unwrap())
        );
        assert_eq!(boot_time_from_proc_stat("cpu 1\n"), None);
        assert_eq!(boot_time_from_proc_stat("btime x\n"), None);
    }

    #[test]
    fn real_proc_stat_parses() {
        if let Ok(t) = std::fs::read_to_string("/proc/stat") {
            assert!(boot_time_from_proc_stat(&t).is_some());
        }
    }

    #[test]
    fn list_names() {
        let n = parse_list_name(
            "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
            "deb.debian.org_debian_dists_bookworm",
        )
        .unwrap();
        assert_eq!(n.site.as_deref(), Some("deb.debian.org"));
        assert_eq!(n.base, "deb.debian.org/debian");
        assert_eq!(n.suite.as_deref(), Some("bookworm"));
        assert_eq!(n.component.as_deref(), Some("main"));
        assert_eq!(n.repository(), "deb.debian.org/debian bookworm/main");

        let n = parse_list_name(
            "security.debian.org_debian-security_dists_bookworm-security_updates_main_binary-all_Packages",
            "security.debian.org_debian-security_dists_bookworm-security",
        )
        .unwrap();
        assert_eq!(n.component.as_deref(), Some("updates/main"));
        assert_eq!(n.suite.as_deref(), Some("bookworm-security"));

        // file: repository whose path holds an escaped `_`.
        let n = parse_list_name(
            "_tmp_my%5frepo_dists_testbed-security_main_binary-amd64_Packages",
            "_tmp_my%5frepo_dists_testbed-security",
        )
        .unwrap();
        assert_eq!(n.site, None);
        assert_eq!(n.base, "/tmp/my_repo");
        assert_eq!(n.site_or_path(), "/tmp/my_repo");

        // Flat repository.
        let n = parse_list_name("_srv_flat_._Packages", "_srv_flat_.").unwrap();
        assert_eq!((n.suite, n.component), (None, None));
        assert_eq!(n.base, "/srv/flat/.");

        assert_eq!(
            parse_list_name("a_dists_x_main_binary-amd64_Packages", "b"),
            None
        );
        assert_eq!(unescape_list_part("a%2"), "a%2");
        assert_eq!(unescape_list_part("a%zz_b"), "a%zz/b");
    }
}
