//! Any bytes given to the RPM metadata parsers (repomd.xml, primary.xml,
//! updateinfo.xml, `rpm -qa` output, compressed metadata, dnf's transaction
//! table and messages) must be answered with a value or an error naming a
//! line of the input, never a panic: repositories, rpm databases and the
//! package manager's output are outside input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_core::version::rpm as rpmver;
use patchfleet_pkg::rpm::{self, RpmParseError};

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_ok = |e: &RpmParseError| match e.line {
        Some(line) => (1..=lines).contains(&line),
        None => false,
    };

    match rpm::parse_repomd("repomd.xml", data) {
        Ok(r) => {
            for d in &r.data {
                assert!(!d.kind.is_empty() && !d.location.is_empty());
                assert!(!d.location.starts_with('/') && !d.location.contains(".."));
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }

    match rpm::parse_primary("primary.xml", data, "fuzz") {
        Ok(packages) => {
            for p in &packages {
                assert!(!p.name.is_empty() && !p.arch.is_empty() && p.arch != "src");
                rpmver::validate(&p.version).unwrap();
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }

    match rpm::parse_updateinfo("updateinfo.xml", data) {
        Ok(notices) => {
            for n in &notices {
                assert!(!n.id.is_empty() && !n.kind.is_empty());
                for p in &n.packages {
                    assert!(!p.name.is_empty() && p.arch != "src");
                    rpmver::validate(&p.version).unwrap();
                }
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }

    let text = String::from_utf8_lossy(data);
    match rpm::parse_rpm_query("rpm -qa", &text) {
        Ok(installed) => {
            assert!(installed.len() <= lines);
            for p in &installed {
                assert!(p.name != "gpg-pubkey");
                rpmver::validate(&p.version).unwrap();
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }

    let steps = rpm::parse_dnf_transaction(&text);
    assert!(steps.len() <= lines);
    for s in &steps {
        assert!(!s.name.is_empty() && !s.name.contains(char::is_whitespace));
        // An install names the new version, a removal the installed one.
        assert!(s.new.is_some() != s.old.is_some());
    }
    assert!(rpm::dnf_messages(&text).len() <= lines);
    for arg in rpm::dnf_no_match(&text) {
        assert!(!arg.is_empty() && text.contains(arg));
    }

    // Small cap: decompression bombs must stop at it.
    match rpm::decompress("metadata", data, 1 << 16) {
        Ok(out) => assert!(out.len() <= 1 << 16),
        Err(e) => assert!(e.line.is_none(), "{e}"),
    }
});
