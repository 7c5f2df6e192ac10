//! The parsers against this machine's real dpkg and APT files, read only.
//!
//! The dpkg status file must exist (the suite runs on Debian: dpkg is also
//! the version oracle); APT lists are parsed when present (`apt-get update`
//! creates them; container images often ship without).

use patchfleet_pkg::apt::{self, Release};
use std::collections::BTreeSet;
use std::process::Command;

const STATUS: &str = "/var/lib/dpkg/status";
const LISTS: &str = "/var/lib/apt/lists";

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn real_dpkg_status_matches_dpkg_query() {
    let bytes = std::fs::read(STATUS).expect("the dpkg status file");
    let text = String::from_utf8_lossy(&bytes);
    let status = apt::parse_dpkg_status(STATUS, &text).unwrap_or_else(|e| panic!("{e}"));

    let query = run(
        "dpkg-query",
        &[
            "-W",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Architecture}\t${Version}\n",
        ],
    );
    let mut ii = 0;
    let mut want = BTreeSet::new();
    let mut want_interrupted = BTreeSet::new();
    for line in query.lines() {
        let mut cols = line.split('\t');
        let (abbrev, name, arch, version) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap(),
        );
        let b = abbrev.as_bytes();
        if abbrev.starts_with("ii") {
            ii += 1;
        }
        // Our "installed": state i, t or W, no reinstreq flag (see DpkgStatus).
        if matches!(b.get(1), Some(b'i' | b't' | b'W')) && b.get(2) != Some(&b'R') {
            want.insert(format!("{name}:{arch}={version}"));
        } else if matches!(b.get(1), Some(b'H' | b'U' | b'F')) || b.get(2) == Some(&b'R') {
            want_interrupted.insert(format!("{name}:{arch}"));
        }
    }
    let got: BTreeSet<String> = status
        .installed
        .iter()
        .map(|p| format!("{}:{}={}", p.name, p.arch, p.version))
        .collect();
    assert_eq!(got.len(), status.installed.len(), "no duplicates");
    assert_eq!(got, want);
    let got_interrupted: BTreeSet<String> = status
        .interrupted
        .iter()
        .map(|p| format!("{}:{}", p.name, p.arch.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(got_interrupted, want_interrupted);
    // On a host with nothing held or pending this is exactly the `ii` count.
    let held_or_pending = query
        .lines()
        .filter(|l| !l.starts_with("ii") && matches!(l.as_bytes().get(1), Some(b'i' | b't' | b'W')))
        .count();
    assert_eq!(status.installed.len(), ii + held_or_pending);
    eprintln!(
        "{STATUS}: {} installed ({ii} ii), {} interrupted, {} not installed",
        status.installed.len(),
        status.interrupted.len(),
        status.not_installed
    );
}

#[test]
fn real_apt_lists_parse() {
    let dir = std::fs::read_dir(LISTS)
        .unwrap_or_else(|e| panic!("{LISTS}: {e} (run apt-get update; scripts/test does)"));
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let (mut releases, mut indexes) = (0, 0);
    for name in &names {
        let path = format!("{LISTS}/{name}");
        if name.ends_with("_InRelease") || name.ends_with("_Release") {
            let text = std::fs::read_to_string(&path).unwrap();
            let release = Release::parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                release.suite.is_some() || release.codename.is_some(),
                "{path}"
            );
            assert_eq!(release.clearsigned, name.ends_with("_InRelease"), "{path}");
            releases += 1;
        } else if name.contains("_Packages") {
            // apt-helper reads every compression apt writes (lz4, gz, xz, …).
            let text = run("/usr/lib/apt/apt-helper", &["cat-file", &path]);
            let entries = apt::parse_packages(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            let stanzas = text.lines().filter(|l| l.starts_with("Package:")).count();
            assert_eq!(entries.len(), stanzas, "{path}");
            eprintln!("{path}: {} versions", entries.len());
            indexes += 1;
        }
    }
    assert!(
        releases > 0 && indexes > 0,
        "{LISTS} holds no Release or Packages file: run apt-get update (scripts/test does)"
    );
    eprintln!("{LISTS}: {releases} Release files, {indexes} Packages indexes parsed");
}
