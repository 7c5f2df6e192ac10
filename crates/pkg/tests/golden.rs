//! Golden files: realistic os-release, dpkg status, Release and Packages
//! texts (some copied from a real Debian 12 host, the rest written after
//! real ones) and what the parsers make of them.
//!
//! The `.json` files next to the inputs are the expected parser output;
//! rewrite them with `PATCHFLEET_BLESS=1 cargo test -p patchfleet-pkg --test golden`
//! after a deliberate change, and review the diff.

mod common;

use patchfleet_core::os::OperatingSystem as O;
use patchfleet_pkg::OsRelease;
use patchfleet_pkg::apt::{self, IndexSource, Release};
use std::path::{Path, PathBuf};

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(rel)
}

fn read(rel: &str) -> String {
    let path = golden(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `value` as pretty JSON with `<rel>.json` (or writes it when blessing).
fn check_json(rel: &str, value: &impl serde::Serialize) {
    let got = serde_json::to_string_pretty(value).unwrap() + "\n";
    common::check_golden_json(&golden(&format!("{rel}.json")), &got);
}

/// The OS and product of an os-release file, or the error message.
type Detected = Result<(O, &'static str), &'static str>;

#[test]
fn os_release_files() {
    let cases: &[(&str, Detected)] = &[
        ("amzn-2", Ok((O::AmazonLinux2, "AmazonLinux2"))),
        ("amzn-2023", Ok((O::AmazonLinux2023, "AmazonLinux2023"))),
        (
            "rhel-8.8",
            Ok((O::RedhatEnterpriseLinux, "RedhatEnterpriseLinux8.8")),
        ),
        ("centos-7", Ok((O::Centos, "CentOS7"))),
        ("centos-stream-9", Ok((O::Centos, "CentOSStream9"))),
        ("rocky-9.3", Ok((O::RockyLinux, "RockyLinux9.3"))),
        ("almalinux-9.3", Ok((O::AlmaLinux, "AlmaLinux9.3"))),
        ("ol-8.7", Ok((O::OracleLinux, "OracleLinux8.7"))),
        ("ubuntu-22.04", Ok((O::Ubuntu, "Ubuntu22.04"))),
        ("debian-12", Ok((O::Debian, "Debian12"))),
        ("raspbian-11", Ok((O::Raspbian, "Raspbian11"))),
        ("sles-15.5", Ok((O::Suse, "Suse15.5"))),
        ("opensuse-leap-15.5", Ok((O::Suse, "Suse15.5"))),
        (
            "fedora-39",
            Err(
                "unsupported operating system: ID=\"fedora\" VERSION_ID=\"39\": this distribution is not supported",
            ),
        ),
        (
            "debian-trixie-sid",
            Err(
                "unsupported operating system: ID=\"debian\" VERSION_ID=\"(none)\": VERSION_ID is missing or not a release number (a testing or rolling release?)",
            ),
        ),
    ];
    let mut files: Vec<String> = std::fs::read_dir(golden("os-release"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed, "every golden os-release file has a case");
    for (file, want) in cases {
        let os = OsRelease::parse(file, &read(&format!("os-release/{file}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let got = os.detect().map_err(|e| e.to_string());
        let want = want
            .map(|(o, p)| (o, p.to_string()))
            .map_err(str::to_string);
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn dpkg_status_sample() {
    let text = read("apt/dpkg-status-sample");
    let status = apt::parse_dpkg_status("dpkg-status-sample", &text).unwrap();
    let installed: Vec<String> = status
        .installed
        .iter()
        .map(|p| format!("{}:{}={}", p.name, p.arch, p.version))
        .collect();
    assert_eq!(
        installed,
        [
            "adduser:all=3.134",
            "libc6:amd64=2.36-9+deb12u7",
            "libc6:i386=2.36-9+deb12u7",
            "bash:amd64=5.2.15-2+b7",
            "openssl:amd64=3.0.13-1~deb12u1",
            "libssl3:amd64=3.0.13-1~deb12u1",
            "tzdata:all=2024a-0+deb12u1",
            "man-db:amd64=2.11.2-2",
        ]
    );
    let bash = &status.installed[3];
    assert_eq!(bash.source.as_deref(), Some("bash"), "version stripped");
    assert_eq!(status.installed[1].source.as_deref(), Some("glibc"));
    assert!(status.installed.iter().all(|p| p.installed_time.is_none()));
    let interrupted: Vec<(&str, &str)> = status
        .interrupted
        .iter()
        .map(|p| (p.name.as_str(), p.abbrev.as_str()))
        .collect();
    assert_eq!(
        interrupted,
        [
            ("nginx-common", "iF"),
            ("linux-image-6.1.0-17-amd64", "iHR")
        ]
    );
    assert_eq!(status.not_installed, 1);
    check_json("apt/dpkg-status-sample", &status);
}

#[test]
fn dpkg_status_from_host() {
    let text = read("apt/dpkg-status-host");
    let status = apt::parse_dpkg_status("dpkg-status-host", &text).unwrap();
    assert_eq!(status.installed.len(), 8);
    assert!(status.interrupted.is_empty());
    check_json("apt/dpkg-status-host", &status);
}

#[test]
fn debian_security_inrelease() {
    let text = read("apt/debian-bookworm-security_InRelease");
    let release = Release::parse("InRelease", &text).unwrap();
    // The classification pitfall: the Suite says oldstable, the Label and
    // Codename say security, the Origin is the main archive's.
    assert_eq!(release.origin.as_deref(), Some("Debian"));
    assert_eq!(release.label.as_deref(), Some("Debian-Security"));
    assert_eq!(release.suite.as_deref(), Some("oldstable-security"));
    assert_eq!(release.codename.as_deref(), Some("bookworm-security"));
    assert_eq!(release.version.as_deref(), Some("12"));
    assert!(release.clearsigned);
    assert!(release.components.iter().any(|c| c == "updates/main"));
    assert!(release.architectures.iter().any(|a| a == "amd64"));
    check_json("apt/debian-bookworm-security_InRelease", &release);

    let packages = read("apt/debian-bookworm-security_main_amd64_Packages");
    let source = IndexSource {
        component: Some("updates/main"),
        site: Some("deb.debian.org"),
        repository: Some("deb.debian.org_debian-security_dists_bookworm-security_updates_main"),
        trusted: true,
    };
    let available = apt::available_packages("Packages", &packages, &release, &source).unwrap();
    assert_eq!(available.len(), 12);
    assert!(available.iter().all(|p| p.origins.len() == 1));
    check_json(
        "apt/debian-bookworm-security_main_amd64_Packages",
        &available,
    );
}

#[test]
fn ubuntu_security_release() {
    let text = read("apt/ubuntu-jammy-security_Release");
    let release = Release::parse("Release", &text).unwrap();
    assert_eq!(release.suite.as_deref(), Some("jammy-security"));
    assert_eq!(release.codename.as_deref(), Some("jammy"));
    assert_eq!(release.label.as_deref(), Some("Ubuntu"));
    assert_eq!(
        release.components,
        ["main", "restricted", "universe", "multiverse"]
    );
    assert!(!release.clearsigned);
    check_json("apt/ubuntu-jammy-security_Release", &release);

    let packages = read("apt/ubuntu-jammy-security_main_amd64_Packages");
    let source = IndexSource {
        component: Some("main"),
        site: Some("security.ubuntu.com"),
        repository: None,
        trusted: true,
    };
    let available = apt::available_packages("Packages", &packages, &release, &source).unwrap();
    let kernel = available
        .iter()
        .find(|p| p.name == "linux-image-5.15.0-107-generic")
        .unwrap();
    assert_eq!(kernel.section.as_deref(), Some("kernel"));
    assert_eq!(kernel.origins[0].archive.as_deref(), Some("jammy-security"));
    assert_eq!(
        kernel.origins[0].site.as_deref(),
        Some("security.ubuntu.com")
    );
    check_json("apt/ubuntu-jammy-security_main_amd64_Packages", &available);
}
