//! zypper `--xmlout` parsers against real zypper output (zypper 1.14.42,
//! libzypp 17.25.7): `tests/testbed/zypper/capture.sh` builds the rpm test
//! bed (`tests/testbed/make-rpm-repo.sh`) and a zypper root over it
//! (`tests/testbed/zypper/make-zypper-root.sh`), and captures
//! `list-patches --all`, `search -s` and three `install --dry-run` runs
//! (an upgrade, a version that does not exist, a held lock).
//! Its output, captured once, is in `tests/golden/zypper/` with the
//! expected parser output as JSON (`info-patch.txt` is kept for reference:
//! the packages of a patch, which `list-patches` does not name). The live
//! test runs the script again and expects the same facts.
//!
//! Rewrite the `.json` files with
//! `PATCHFLEET_BLESS=1 cargo test -p patchfleet-pkg --test zypper_golden`
//! after a deliberate change, and review the diff.

mod common;

use common::TempDir;
use patchfleet_core::facts::{AvailablePackage, UpdateNotice};
use patchfleet_pkg::install::SimAction;
use patchfleet_pkg::zypper::{self, InstallOutput, ZypperParseError};
use std::path::{Path, PathBuf};
use std::process::Command;

fn golden(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/zypper")
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

fn patches(input: &str, xml: &[u8]) -> Vec<UpdateNotice> {
    zypper::parse_list_patches(input, xml).unwrap_or_else(|e| panic!("{e}"))
}

fn search(input: &str, xml: &[u8]) -> Vec<AvailablePackage> {
    zypper::parse_search(input, xml).unwrap_or_else(|e| panic!("{e}"))
}

/// What the test bed's notices and versions must read as, golden or live.
fn check_testbed(notices: &[UpdateNotice], available: &[AvailablePackage]) {
    let ids: Vec<&str> = notices.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["TBSA-2023:0001", "TBBA-2023:0002"]);
    let sa = &notices[0];
    assert_eq!(sa.kind, "security");
    assert_eq!(sa.severity.as_deref(), Some("important"));
    assert_eq!(
        sa.title.as_deref(),
        Some("Important: tb-kernel security update")
    );
    assert!(sa.reboot_suggested);
    assert_eq!(sa.cves, ["CVE-2023-0001"]);
    assert_eq!(sa.bugzilla, ["1001"]);
    assert_eq!(sa.updated.as_deref(), Some("2023-11-15T12:30:00Z"));
    assert_eq!(sa.issued, None);
    assert_eq!(sa.repository.as_deref(), Some("tb"));
    assert!(sa.packages.is_empty(), "list-patches names no packages");
    let ba = &notices[1];
    assert_eq!(ba.kind, "bugfix");
    assert_eq!(ba.severity, None);
    assert!(!ba.reboot_suggested);
    assert!(ba.cves.is_empty());
    assert_eq!(ba.bugzilla, ["1002"]);

    let mut got: Vec<(&str, &str, &str)> = available
        .iter()
        .map(|p| {
            assert_eq!(p.repository.as_deref(), Some("tb"));
            (p.name.as_str(), p.arch.as_str(), p.version.as_str())
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("tb-hello", "noarch", "1.0-1"),
            ("tb-hello", "noarch", "1.1-1"),
            ("tb-kernel", "noarch", "1.0-1"),
            ("tb-kernel", "noarch", "1.1-1"),
            ("tb-tool", "noarch", "1:2.0-1"),
            ("tb-tool", "noarch", "1:2.1-1"),
        ]
    );
}

fn install_output(input: &str, xml: &[u8]) -> InstallOutput {
    zypper::parse_install(input, xml).unwrap_or_else(|e| panic!("{e}"))
}

/// What the three dry runs must read as, golden or live.
fn check_install_captures(dir: &Path) {
    let codes = String::from_utf8(read(&dir.join("exit-codes.txt"))).unwrap();
    assert_eq!(
        codes,
        "install-dry-run.xml 0\ninstall-missing.xml 104\ninstall-locked.xml 7\n"
    );
    let at = |f: &str| install_output(f, &read(&dir.join(f)));
    let ok = at("install-dry-run.xml");
    assert!(ok.summary);
    let steps: Vec<(SimAction, &str, Option<&str>, Option<&str>)> = ok
        .steps
        .iter()
        .map(|s| {
            (
                s.action,
                s.name.as_str(),
                s.old.as_deref(),
                s.new.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (SimAction::Install, "tb-hello", Some("1.0-1"), Some("1.1-1")),
            (
                SimAction::Install,
                "tb-kernel",
                Some("1.0-1"),
                Some("1.1-1")
            ),
        ]
    );
    assert!(ok.steps.iter().all(|s| s.arch.as_deref() == Some("noarch")));
    assert_eq!(ok.errors().count(), 0);
    let missing = at("install-missing.xml");
    assert!(!missing.summary && missing.steps.is_empty());
    assert_eq!(
        missing.errors().collect::<Vec<_>>(),
        ["No provider of 'tb-hello.noarch=9.9-9' found."]
    );
    let locked = at("install-locked.xml");
    assert!(!locked.summary);
    let errors: Vec<&str> = locked.errors().collect();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .starts_with("System management is locked by the application with pid 4242 (sleep)."),
        "{errors:?}"
    );
}

#[test]
fn golden_outputs() {
    let notices = patches("list-patches.xml", &read(&golden("list-patches.xml")));
    check_json("list-patches.xml", &notices);
    let available = search("search.xml", &read(&golden("search.xml")));
    check_json("search.xml", &available);
    check_testbed(&notices, &available);
    for f in [
        "install-dry-run.xml",
        "install-missing.xml",
        "install-locked.xml",
    ] {
        check_json(f, &install_output(f, &read(&golden(f))));
    }
    check_install_captures(&golden(""));
}

#[test]
fn live_capture_reads_as_the_goldens() {
    common::require_tools(&[
        ("zypper", "zypper"),
        ("rpm", "rpm"),
        ("rpmbuild", "rpm"),
        ("createrepo_c", "createrepo-c"),
        ("modifyrepo_c", "createrepo-c"),
        ("xz", "xz-utils"),
    ]);
    let dir = TempDir::new("zypper-capture");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testbed/zypper/capture.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(&dir.0)
        .env("TMPDIR", &dir.0)
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
    let lp = dir.0.join("list-patches.xml");
    let se = dir.0.join("search.xml");
    let notices = patches(&lp.display().to_string(), &read(&lp));
    let available = search(&se.display().to_string(), &read(&se));
    check_testbed(&notices, &available);
    // Same facts as the committed goldens (only the JSON is compared: the
    // XML may differ in whitespace between zypper builds).
    let golden_notices = patches("list-patches.xml", &read(&golden("list-patches.xml")));
    let golden_available = search("search.xml", &read(&golden("search.xml")));
    assert_eq!(notices, golden_notices);
    assert_eq!(available, golden_available);
    check_install_captures(&dir.0);
    for f in [
        "install-dry-run.xml",
        "install-missing.xml",
        "install-locked.xml",
    ] {
        assert_eq!(
            install_output(f, &read(&dir.0.join(f))),
            install_output(f, &read(&golden(f))),
            "{f}"
        );
    }
}

fn err_lp(xml: &str) -> ZypperParseError {
    zypper::parse_list_patches("lp.xml", xml.as_bytes()).unwrap_err()
}

fn err_se(xml: &str) -> ZypperParseError {
    zypper::parse_search("se.xml", xml.as_bytes()).unwrap_err()
}

#[test]
fn errors_name_input_and_line() {
    let e = err_lp("Loading repository data...\nNo updates found.\n");
    assert_eq!(e.input, "lp.xml");
    assert_eq!(e.line, Some(1));
    assert!(e.problem.contains("--xmlout"), "{e}");

    let e = err_lp(
        "<?xml version='1.0'?>\n<stream>\n<message type=\"error\">Repository 'tb' is invalid.</message>\n</stream>\n",
    );
    assert_eq!(
        e.to_string(),
        "lp.xml: line 3: zypper reported an error: Repository 'tb' is invalid."
    );

    let e = err_lp("<stream>\n<message type=\"info\">x</message>\n</stream>\n");
    assert!(e.problem.contains("no <update-status>"), "{e}");

    let e = err_lp(
        "<stream>\n<update-status><update-list>\n<update kind=\"patch\" category=\"security\"/>\n</update-list></update-status></stream>",
    );
    assert_eq!(e.line, Some(3));
    assert!(e.problem.contains("no name attribute"), "{e}");

    let e = err_lp(
        "<stream>\n<update-status><update-list>\n<update kind=\"patch\" name=\"P\" category=\"x\"><issue-date time_t=\"soon\"/></update>\n</update-list></update-status></stream>",
    );
    assert_eq!(e.line, Some(3));

    let e = err_lp("<stream>\n<update-status>\n<update-list>\n");
    assert!(e.problem.contains("not closed"), "{e}");
    assert!(e.line.is_some());

    let e = err_lp("<updates/>");
    assert!(e.problem.contains("expected <stream>"), "{e}");

    let e = err_lp("<stream><update-status/></stream>\n<stream/>");
    assert!(e.problem.contains("after the </stream>"), "{e}");

    let e = err_se(
        "<stream>\n<search-result><solvable-list>\n\n<solvable kind=\"package\" name=\"a\" arch=\"x86_64\" edition=\"1:\" repository=\"r\"/>\n</solvable-list></search-result></stream>",
    );
    assert_eq!(e.line, Some(4));
    assert!(e.problem.starts_with("a: edition '1:'"), "{e}");

    let e = err_se(
        "<stream>\n<search-result><solvable-list>\n<solvable kind=\"package\" name=\"a\" arch=\"x86_64\" repository=\"r\"/>\n</solvable-list></search-result></stream>",
    );
    assert_eq!(
        e.to_string(),
        "se.xml: line 3: <solvable> has no edition attribute"
    );

    let e = zypper::parse_search("bad.xml", b"<stream>\n\xff</stream>").unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.problem.contains("UTF-8"), "{e}");
}

#[test]
fn search_filters_and_edge_cases() {
    // No match: zypper writes only a message (exit code 104).
    let none = "<stream><message type=\"info\">No matching items found.</message></stream>";
    assert!(search("se.xml", none.as_bytes()).is_empty());
    let xml = "<?xml version='1.0'?>\n<stream>\n<search-result version=\"0.0\"><solvable-list>\n\
        <solvable status=\"installed\" name=\"local\" kind=\"package\" edition=\"1-1\" arch=\"x86_64\" repository=\"@System\"/>\n\
        <solvable status=\"not-installed\" name=\"a\" kind=\"srcpackage\" edition=\"1-1\" arch=\"noarch\" repository=\"r\"/>\n\
        <solvable status=\"not-installed\" name=\"a\" kind=\"package\" edition=\"1-1\" arch=\"src\" repository=\"r\"/>\n\
        <solvable status=\"not-installed\" name=\"p\" kind=\"pattern\" edition=\"1-1\" arch=\"noarch\" repository=\"r\"/>\n\
        <solvable status=\"not-installed\" name=\"a\" kind=\"package\" edition=\"1-1\" arch=\"x86_64\" repository=\"r\"/>\n\
        <solvable status=\"not-installed\" name=\"a\" kind=\"package\" edition=\"1-1\" arch=\"x86_64\" repository=\"r\"/>\n\
        <solvable status=\"not-installed\" name=\"a\" kind=\"package\" edition=\"1-1\" arch=\"x86_64\" repository=\"r2\"/>\n\
        </solvable-list></search-result>\n</stream>\n";
    let got = search("se.xml", xml.as_bytes());
    let got: Vec<(&str, &str)> = got
        .iter()
        .map(|p| (p.name.as_str(), p.repository.as_deref().unwrap()))
        .collect();
    assert_eq!(got, [("a", "r"), ("a", "r2")]);
}

#[test]
fn list_patches_edge_cases() {
    // No repositories: an applet line instead of updates.
    let xml = "<stream><update-status version=\"0.6\"><update-list>\
        <appletinfo status=\"no-update-repositories\"/></update-list></update-status></stream>";
    assert!(patches("lp.xml", xml.as_bytes()).is_empty());
    // A locked patch, time_t only, entities, a duplicate CVE, a non-patch.
    let xml = "<stream><update-status><update-list>\
        <update kind=\"package\" name=\"x\" edition=\"1-1\" arch=\"noarch\"/>\
        </update-list><blocked-update-list>\
        <update kind=\"patch\" name=\"SUSE-2024-1\" category=\"recommended\" severity=\"moderate\" restart=\"false\">\
        <summary>a &amp; b</summary><issue-date time_t=\"1700000000\"/>\
        <issue-list><issue type=\"cve\" id=\"CVE-1\"/><issue type=\"cve\" id=\"CVE-1\"/></issue-list>\
        </update></blocked-update-list></update-status></stream>";
    let got = patches("lp.xml", xml.as_bytes());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "SUSE-2024-1");
    assert_eq!(got[0].kind, "recommended");
    assert_eq!(got[0].severity.as_deref(), Some("moderate"));
    assert_eq!(got[0].title.as_deref(), Some("a & b"));
    assert_eq!(got[0].updated.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert_eq!(got[0].cves, ["CVE-1"]);
    assert!(!got[0].reboot_suggested);
}

#[test]
fn install_edge_cases() {
    // A removal, a downgrade, a new dependency, a patch (not a package) and
    // a list that changes nothing.
    let xml = "<stream>\n<install-summary packages-to-change=\"3\">\n\
        <to-remove><solvable type=\"package\" name=\"old\" edition=\"2-1\" arch=\"x86_64\"/></to-remove>\n\
        <to-downgrade><solvable type=\"package\" name=\"d\" edition=\"1-1\" edition-old=\"2-1\" arch=\"x86_64\" repository=\"r\"/></to-downgrade>\n\
        <to-install><solvable type=\"package\" name=\"dep\" edition=\"1:3-1\" arch=\"noarch\"/>\
        <solvable type=\"patch\" name=\"SUSE-1\" edition=\"1\" arch=\"noarch\"/></to-install>\n\
        <not-to-upgrade><solvable type=\"package\" name=\"held\" edition=\"9-9\" arch=\"noarch\"/></not-to-upgrade>\n\
        </install-summary>\n<message type=\"info\">Nothing else.</message></stream>";
    let out = install_output("in.xml", xml.as_bytes());
    assert!(out.summary);
    let got: Vec<_> = out
        .steps
        .iter()
        .map(|s| {
            (
                s.action,
                s.name.as_str(),
                s.old.as_deref(),
                s.new.as_deref(),
                s.origin.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (SimAction::Remove, "old", Some("2-1"), None, None),
            (SimAction::Install, "d", Some("2-1"), Some("1-1"), Some("r")),
            (SimAction::Install, "dep", None, Some("1:3-1"), None),
        ]
    );
    assert_eq!(out.messages.len(), 1);
    let e = zypper::parse_install(
        "in.xml",
        b"<stream>\n<install-summary><to-install>\n<solvable type=\"package\" name=\"a\" edition=\"1:\"/>\n</to-install></install-summary></stream>",
    )
    .unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e.problem.starts_with("a: edition '1:'"), "{e}");
    let e = zypper::parse_install("in.xml", b"Loading repository data...\n").unwrap_err();
    assert!(e.problem.contains("--xmlout"), "{e}");
}

/// No input makes the parsers panic: every prefix of the goldens, and a
/// few byte flips.
#[test]
fn truncated_and_mangled_inputs_do_not_panic() {
    for name in [
        "list-patches.xml",
        "search.xml",
        "install-dry-run.xml",
        "install-missing.xml",
    ] {
        let bytes = read(&golden(name));
        for end in 0..bytes.len() {
            let _ = zypper::parse_list_patches(name, &bytes[..end]);
            let _ = zypper::parse_search(name, &bytes[..end]);
            let _ = zypper::parse_install(name, &bytes[..end]);
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] = b"<>&\"'/=x\xff"[i % 9];
            let _ = zypper::parse_list_patches(name, &b);
            let _ = zypper::parse_search(name, &b);
            let _ = zypper::parse_install(name, &b);
        }
    }
}
