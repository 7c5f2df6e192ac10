//! RPM metadata parsers against real data: a repository built at test time
//! by `tests/testbed/make-rpm-repo.sh` (rpmbuild, createrepo_c,
//! modifyrepo_c, rpm with a throw-away database), and hand-written samples
//! after Amazon Linux 2023, RHEL 9 and CentOS Stream 9 metadata in
//! `tests/golden/rpm/` with their expected parser output as JSON.
//!
//! Rewrite the `.json` files with
//! `PATCHFLEET_BLESS=1 cargo test -p patchfleet-pkg --test rpm_golden`
//! after a deliberate change, and review the diff.

mod common;

use common::TempDir;

use jiff::Timestamp;
use patchfleet_core::facts::{AvailablePackage, InstalledPackage, NoticePackage, UpdateNotice};
use patchfleet_core::release_date::parse_notice_date;
use patchfleet_pkg::rpm::{self, RPM_QUERY_FORMAT};
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE_DATE_EPOCH: i64 = 1_700_000_000;

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/rpm")
        .join(rel)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `value` as pretty JSON with `<rel>.json` (or writes it when blessing).
fn check_json(rel: &str, value: &impl serde::Serialize) {
    let got = serde_json::to_string_pretty(value).unwrap() + "\n";
    common::check_golden_json(&golden(&format!("{rel}.json")), &got);
}

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

// ---------------------------------------------------------------------------
// The test bed

fn require_tools() {
    let missing: Vec<&str> = [
        ("rpm", "rpm"),
        ("rpmbuild", "rpm"),
        ("createrepo_c", "createrepo-c"),
        ("modifyrepo_c", "createrepo-c"),
        ("xz", "xz-utils"),
    ]
    .into_iter()
    .filter(|(tool, _)| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
    })
    .map(|(tool, package)| {
        eprintln!("{tool} not found");
        package
    })
    .collect();
    assert!(
        missing.is_empty(),
        "the rpm test bed needs tools that are not installed: \
         apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
}

fn build_testbed(dir: &Path) {
    require_tools();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/make-rpm-repo.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn available(name: &str, version: &str) -> AvailablePackage {
    AvailablePackage {
        name: name.to_string(),
        arch: "noarch".to_string(),
        version: version.to_string(),
        repository: Some("tb".to_string()),
        origins: Vec::new(),
        priority: None,
        section: None,
        build_time: Some(ts(SOURCE_DATE_EPOCH)),
        first_seen: None,
    }
}

fn notice_package(name: &str, version: &str) -> NoticePackage {
    NoticePackage {
        name: name.to_string(),
        arch: "noarch".to_string(),
        version: version.to_string(),
    }
}

/// Reads one metadata file named by repomd.xml, checking its sizes.
fn metadata(repo: &Path, repomd: &rpm::Repomd, kind: &str) -> Vec<u8> {
    let data = repomd
        .get(kind)
        .unwrap_or_else(|| panic!("repomd.xml has no {kind}"));
    let stored = read(&repo.join(&data.location));
    assert_eq!(Some(stored.len() as u64), data.size, "{kind} size");
    let cap = data.open_size.expect("open-size");
    let text = rpm::decompress(&data.location, &stored, cap).unwrap();
    assert_eq!(text.len() as u64, cap, "{kind} open-size");
    assert!(rpm::decompress(&data.location, &stored, cap - 1).is_err());
    text
}

#[test]
fn real_repository_built_by_createrepo_c() {
    let tmp = TempDir::new("rpm-golden");
    build_testbed(&tmp.0);
    let repo = tmp.0.join("repo");

    // repomd.xml
    let repomd_path = repo.join("repodata/repomd.xml");
    let repomd = rpm::parse_repomd("repomd.xml", &read(&repomd_path)).unwrap();
    assert_eq!(repomd.revision.as_deref(), Some("1700000000"));
    let kinds: Vec<&str> = repomd.data.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, ["primary", "filelists", "other", "updateinfo"]);
    for d in &repomd.data {
        assert!(d.location.starts_with("repodata/"), "{}", d.location);
        assert_eq!(d.timestamp, Some(SOURCE_DATE_EPOCH), "{}", d.kind);
        for sum in [&d.checksum, &d.open_checksum] {
            let sum = sum.as_ref().expect("checksum");
            assert_eq!((sum.kind.as_str(), sum.value.len()), ("sha256", 64));
        }
    }
    assert!(
        repomd
            .get("primary")
            .unwrap()
            .location
            .ends_with("-primary.xml.gz")
    );
    assert!(
        repomd
            .get("updateinfo")
            .unwrap()
            .location
            .ends_with("-updateinfo.xml.xz")
    );
    // createrepo_c's output is deterministic: it is also a golden file.
    assert_eq!(
        rpm::parse_repomd("testbed-repomd.xml", &read(&golden("testbed-repomd.xml"))).unwrap(),
        repomd,
        "tests/golden/rpm/testbed-repomd.xml no longer matches make-rpm-repo.sh's repository"
    );

    // primary.xml.gz
    let primary = metadata(&repo, &repomd, "primary");
    let mut packages = rpm::parse_primary("primary.xml", &primary, "tb").unwrap();
    packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    assert_eq!(
        packages,
        [
            available("tb-hello", "1.0-1"),
            available("tb-hello", "1.1-1"),
            available("tb-kernel", "1.0-1"),
            available("tb-kernel", "1.1-1"),
            available("tb-tool", "1:2.0-1"),
            available("tb-tool", "1:2.1-1"),
        ]
    );

    // updateinfo.xml.xz
    let updateinfo = metadata(&repo, &repomd, "updateinfo");
    let notices = rpm::parse_updateinfo("updateinfo.xml", &updateinfo).unwrap();
    assert_eq!(
        notices,
        [
            UpdateNotice {
                id: "TBSA-2023:0001".to_string(),
                kind: "security".to_string(),
                severity: Some("Important".to_string()),
                title: Some("Important: tb-kernel security update".to_string()),
                issued: Some("2023-11-14 00:00:00".to_string()),
                updated: Some("2023-11-15 12:30:00".to_string()),
                cves: vec!["CVE-2023-0001".to_string()],
                bugzilla: vec!["1001".to_string()],
                reboot_suggested: true,
                repository: None,
                packages: vec![notice_package("tb-kernel", "1.1-1")],
            },
            UpdateNotice {
                id: "TBBA-2023:0002".to_string(),
                kind: "bugfix".to_string(),
                severity: None,
                title: Some("tb-tool bug fix update".to_string()),
                issued: Some("2023-11-14 00:00:00".to_string()),
                updated: Some("2023-11-14 00:00:00".to_string()),
                cves: Vec::new(),
                bugzilla: vec!["1002".to_string()],
                reboot_suggested: false,
                repository: None,
                packages: vec![notice_package("tb-tool", "1:2.1-1")],
            },
        ]
    );
    for n in &notices {
        assert!(parse_notice_date(n.issued.as_deref().unwrap()).is_some());
        assert!(parse_notice_date(n.updated.as_deref().unwrap()).is_some());
    }

    // rpm -qa from the throw-away database.
    let query = Command::new("rpm")
        .arg("--root")
        .arg(tmp.0.join("root"))
        .args(["--dbpath", "/var/lib/rpm", "-qa", "--queryformat"])
        .arg(RPM_QUERY_FORMAT)
        .env("HOME", tmp.0.join("home"))
        .output()
        .expect("rpm -qa");
    assert!(
        query.status.success(),
        "rpm -qa: {}",
        String::from_utf8_lossy(&query.stderr)
    );
    let text = String::from_utf8(query.stdout).unwrap();
    let mut installed = rpm::parse_rpm_query("rpm -qa", &text).unwrap();
    installed.sort_by(|a, b| a.name.cmp(&b.name));
    let now = Timestamp::now();
    for p in &installed {
        // rpm 4.18 stamps SOURCE_DATE_EPOCH (plus a count); older, the clock.
        let t = p.installed_time.expect("install time");
        assert!(t >= ts(SOURCE_DATE_EPOCH) && t <= now, "{}: {t}", p.name);
    }
    let got: Vec<(&str, &str, &str, Option<&str>)> = installed
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.arch.as_str(),
                p.version.as_str(),
                p.source.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("tb-hello", "noarch", "1.0-1", Some("tb-hello")),
            ("tb-kernel", "noarch", "1.0-1", Some("tb-kernel")),
            ("tb-tool", "noarch", "1:2.0-1", Some("tb-tool")),
        ]
    );
}

// ---------------------------------------------------------------------------
// Hand-written samples

#[test]
fn amazon_linux_2023_updateinfo() {
    let xml = read(&golden("al2023-updateinfo.xml"));
    let notices = rpm::parse_updateinfo("al2023-updateinfo.xml", &xml).unwrap();
    check_json("al2023-updateinfo.xml", &notices);
    let first = &notices[0];
    assert_eq!(first.issued.as_deref(), Some("2025-03-01 00:00"));
    assert_eq!(
        parse_notice_date(first.issued.as_deref().unwrap()),
        Some(ts(1_740_787_200).as_second())
    );
    assert_eq!(first.packages.len(), 3, "the src package is skipped");
    assert!(notices[1].reboot_suggested);
}

#[test]
fn rhel_9_updateinfo_with_epoch_dates() {
    let xml = read(&golden("rhel9-updateinfo.xml"));
    let notices = rpm::parse_updateinfo("rhel9-updateinfo.xml", &xml).unwrap();
    check_json("rhel9-updateinfo.xml", &notices);
    assert_eq!(notices[0].issued.as_deref(), Some("1700000000"));
    assert_eq!(
        parse_notice_date(notices[0].updated.as_deref().unwrap()),
        Some(1_700_086_400)
    );
    assert_eq!(notices[0].cves, ["CVE-2023-3609"]);
    assert_eq!(notices[0].bugzilla, ["2225191"]);
}

#[test]
fn centos_stream_primary() {
    let xml = read(&golden("centos-primary.xml"));
    let packages = rpm::parse_primary("centos-primary.xml", &xml, "baseos").unwrap();
    check_json("centos-primary.xml", &packages);
    assert_eq!(packages.len(), 2, "the src package is skipped");
}

#[test]
fn rpm_query_sample() {
    let text = String::from_utf8(read(&golden("rpm-qa.txt"))).unwrap();
    let installed: Vec<InstalledPackage> = rpm::parse_rpm_query("rpm-qa.txt", &text).unwrap();
    check_json("rpm-qa.txt", &installed);
    assert!(installed.iter().all(|p| p.name != "gpg-pubkey"));
    assert_eq!(installed.len(), 5, "both kernels are kept");
}

#[test]
fn repomd_sample() {
    let repomd =
        rpm::parse_repomd("testbed-repomd.xml", &read(&golden("testbed-repomd.xml"))).unwrap();
    check_json("testbed-repomd.xml", &repomd);
}
