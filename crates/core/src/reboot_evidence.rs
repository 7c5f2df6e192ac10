//! Whether a node needs a reboot, judged from its facts alone.
//!
//! Two observations are pure functions of the facts, so they live here and
//! the agent only adds what it reads from files and exit statuses (Debian's
//! `/var/run/reboot-required`, zypper's 102):
//!
//! * [`core_packages_updated`]: `needs-restarting -r` semantics — a core
//!   package (kernel, glibc, systemd, openssl, …) was installed after the
//!   last boot. dnf's plugin does exactly this comparison of install times
//!   with the boot time; we apply it to every RPM-family node (dnf, yum and
//!   zypper) without needing the plugin on the node.
//! * [`newer_kernel`]: a kernel package newer than the running kernel is
//!   installed (the running release compared with the releases the
//!   installed kernel packages carry).

use crate::facts::{InstalledPackage, NodeFacts, RebootEvidence, RebootSource};
use crate::os::Family;
use crate::version::{self, Scheme};
use std::cmp::Ordering;

/// The packages whose update needs a reboot to take effect: the list of
/// dnf's `needs-restarting -r`, plus the kernel packages of every RPM
/// distribution we manage and their SUSE names.
pub const CORE_PACKAGES: &[&str] = &[
    "kernel",
    "kernel-core",
    "kernel-rt",
    "kernel-rt-core",
    "kernel-uek",
    "kernel-default",
    "glibc",
    "linux-firmware",
    "systemd",
    "udev",
    "openssl-libs",
    "libopenssl3",
    "libopenssl1_1",
    "gnutls",
    "dbus",
    "dbus-broker",
    "dbus-daemon",
    "microcode_ctl",
    "ucode-intel",
    "zlib",
    "libz1",
];

/// Every reboot evidence the facts alone give (see the module doc).
pub fn observe(facts: &NodeFacts) -> Vec<RebootEvidence> {
    let mut out = Vec::new();
    if facts.os.operating_system.family() != Family::Apt {
        out.extend(core_packages_updated(facts));
    }
    out.extend(newer_kernel(facts));
    out
}

/// Core packages installed after the boot time (nothing when either is unknown).
pub fn core_packages_updated(facts: &NodeFacts) -> Option<RebootEvidence> {
    let boot = facts.boot_time?;
    let mut names: Vec<String> = facts
        .installed
        .iter()
        .filter(|p| CORE_PACKAGES.contains(&p.name.as_str()))
        .filter(|p| p.installed_time.is_some_and(|t| t > boot))
        .map(|p| format!("{}-{}.{}", p.name, p.version, p.arch))
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    names.dedup();
    Some(RebootEvidence {
        source: RebootSource::CorePackageUpdated,
        detail: format!(
            "core libraries or services were updated since the boot at {boot}: {}",
            names.join(", ")
        ),
        packages: names,
    })
}

/// The kernel release (`uname -r` form) an installed package carries, if
/// it is a kernel package.
///
/// * Debian/Ubuntu: `linux-image-6.1.0-26-amd64` → `6.1.0-26-amd64` (meta
///   packages such as `linux-image-amd64` carry none).
/// * RHEL family: `kernel`/`kernel-core` `5.14.0-362.8.1.el9_3` `x86_64` →
///   `5.14.0-362.8.1.el9_3.x86_64`.
/// * SUSE: `kernel-default` `5.14.21-150500.55.39.1` → `5.14.21-150500.55.39-default`.
pub fn kernel_release(family: Family, p: &InstalledPackage) -> Option<String> {
    match family {
        Family::Apt => {
            let rest = p.name.strip_prefix("linux-image-")?;
            let rest = rest.strip_prefix("unsigned-").unwrap_or(rest);
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| rest.to_string())
        }
        Family::Rpm => {
            let evr = p
                .version
                .split_once(':')
                .map_or(p.version.as_str(), |x| x.1);
            matches!(
                p.name.as_str(),
                "kernel" | "kernel-core" | "kernel-rt" | "kernel-rt-core" | "kernel-uek"
            )
            .then(|| format!("{evr}.{}", p.arch))
        }
        Family::Zypp => {
            let flavor = p.name.strip_prefix("kernel-")?;
            if !matches!(flavor, "default" | "azure" | "rt" | "64kb") {
                return None;
            }
            let evr = p
                .version
                .split_once(':')
                .map_or(p.version.as_str(), |x| x.1);
            // SUSE drops the rebuild counter, the last part of the release.
            let base = evr.rsplit_once('.').map_or(evr, |x| x.0);
            Some(format!("{base}-{flavor}"))
        }
        Family::Unsupported => None,
    }
}

/// A kernel package newer than the running kernel is installed.
pub fn newer_kernel(facts: &NodeFacts) -> Option<RebootEvidence> {
    let running = facts.running_kernel.as_deref()?;
    let family = facts.os.operating_system.family();
    let scheme = match family {
        Family::Apt => Scheme::Deb,
        Family::Rpm | Family::Zypp => Scheme::Rpm,
        Family::Unsupported => return None,
    };
    let newer = |a: &str, b: &str| {
        version::compare(scheme, &release_version(a), &release_version(b))
            .unwrap_or_else(|_| a.cmp(b))
    };
    let newest = facts
        .installed
        .iter()
        .filter_map(|p| kernel_release(family, p).map(|r| (r, p)))
        .max_by(|a, b| newer(&a.0, &b.0))?;
    if newest.0 == running || newer(&newest.0, running) != Ordering::Greater {
        return None;
    }
    Some(RebootEvidence {
        source: RebootSource::NewerKernel,
        packages: vec![newest.1.name.clone()],
        detail: format!(
            "running kernel {running}, newest installed kernel {}",
            newest.0
        ),
    })
}

/// A release string made comparable as a version: only characters a
/// version may hold, so `5.14.0-362.el9.x86_64` and `6.1.0-26-amd64` compare
/// by their numbers.
fn release_version(release: &str) -> String {
    let cleaned: String = release
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '.'
            }
        })
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_digit()) {
        cleaned
    } else {
        format!("0.{cleaned}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FACTS_FORMAT, OsFacts};
    use crate::os::OperatingSystem;
    use jiff::Timestamp;

    fn pkg(name: &str, version: &str, arch: &str, t: Option<i64>) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            arch: arch.into(),
            version: version.into(),
            installed_time: t.map(|s| Timestamp::from_second(s).unwrap()),
            source: None,
        }
    }

    fn facts(os: OperatingSystem, installed: Vec<InstalledPackage>) -> NodeFacts {
        NodeFacts {
            format: FACTS_FORMAT.into(),
            os: OsFacts {
                operating_system: os,
                product: String::new(),
                package_manager: None,
            },
            installed,
            available: vec![],
            notices: vec![],
            boot_time: Some(Timestamp::from_second(1_000).unwrap()),
            reboot_state: None,
            running_kernel: None,
            reboot_required: vec![],
        }
    }

    #[test]
    fn core_package_after_boot_is_evidence_and_before_boot_is_not() {
        let f = facts(
            OperatingSystem::RedhatEnterpriseLinux,
            vec![
                pkg("glibc", "2.34-60.el9", "x86_64", Some(500)),
                pkg("kernel", "5.14.0-2", "noarch", Some(2_000)),
                pkg("tb-hello", "1.1-1", "noarch", Some(2_000)),
            ],
        );
        let ev = core_packages_updated(&f).unwrap();
        assert_eq!(ev.packages, vec!["kernel-5.14.0-2.noarch".to_string()]);
        assert_eq!(ev.source, RebootSource::CorePackageUpdated);
        let mut f = f;
        f.boot_time = Some(Timestamp::from_second(3_000).unwrap());
        assert_eq!(core_packages_updated(&f), None);
        f.boot_time = None;
        assert_eq!(core_packages_updated(&f), None);
    }

    #[test]
    fn apt_nodes_rely_on_the_flag_file_not_install_times() {
        let f = facts(
            OperatingSystem::Debian,
            vec![pkg("systemd", "252.30-1", "amd64", Some(2_000))],
        );
        assert!(observe(&f).is_empty());
    }

    #[test]
    fn kernel_releases_per_family() {
        let deb = pkg("linux-image-6.1.0-26-amd64", "6.1.112-1", "amd64", None);
        let meta = pkg("linux-image-amd64", "6.1.112-1", "amd64", None);
        assert_eq!(
            kernel_release(Family::Apt, &deb).as_deref(),
            Some("6.1.0-26-amd64")
        );
        assert_eq!(kernel_release(Family::Apt, &meta), None);
        let rhel = pkg("kernel-core", "5.14.0-362.8.1.el9_3", "x86_64", None);
        assert_eq!(
            kernel_release(Family::Rpm, &rhel).as_deref(),
            Some("5.14.0-362.8.1.el9_3.x86_64")
        );
        let suse = pkg("kernel-default", "5.14.21-150500.55.39.1", "x86_64", None);
        assert_eq!(
            kernel_release(Family::Zypp, &suse).as_deref(),
            Some("5.14.21-150500.55.39-default")
        );
    }

    #[test]
    fn newer_installed_kernel_than_running_is_evidence() {
        let mut f = facts(
            OperatingSystem::RedhatEnterpriseLinux,
            vec![
                pkg("kernel", "5.14.0-1", "noarch", None),
                pkg("kernel", "5.14.0-2", "noarch", None),
            ],
        );
        f.running_kernel = Some("5.14.0-1.noarch".into());
        let ev = newer_kernel(&f).unwrap();
        assert_eq!(ev.source, RebootSource::NewerKernel);
        assert!(ev.detail.contains("5.14.0-2.noarch"), "{}", ev.detail);
        f.running_kernel = Some("5.14.0-2.noarch".into());
        assert_eq!(newer_kernel(&f), None);
        // A container runs the host's (possibly newer) kernel: no evidence.
        f.running_kernel = Some("6.1.0-26-amd64".into());
        assert_eq!(newer_kernel(&f), None);
    }

    #[test]
    fn debian_kernel_abi_bump_is_newer() {
        let mut f = facts(
            OperatingSystem::Debian,
            vec![
                pkg("linux-image-6.1.0-26-amd64", "6.1.112-1", "amd64", None),
                pkg("linux-image-6.1.0-27-amd64", "6.1.115-1", "amd64", None),
            ],
        );
        f.running_kernel = Some("6.1.0-26-amd64".into());
        assert_eq!(
            newer_kernel(&f).unwrap().packages,
            vec!["linux-image-6.1.0-27-amd64".to_string()]
        );
    }
}
