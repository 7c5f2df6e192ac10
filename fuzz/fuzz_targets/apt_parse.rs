//! Any text given to the os-release, deb822, dpkg status, Release and
//! Packages parsers must be answered with a value or an error naming a line
//! of the input, never a panic: these files come from machines we do not
//! control. Parsers that accept the text must agree with each other.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_pkg::OsRelease;
use patchfleet_pkg::apt::{self, IndexSource, Paragraphs, Release};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let in_range = |line: usize| (1..=lines + 1).contains(&line);

    match OsRelease::parse("os-release", &text) {
        Ok(os) => {
            if let Ok((_, product)) = os.detect() {
                assert!(!product.is_empty());
            }
        }
        Err(e) => assert!(in_range(e.line), "{e}"),
    }

    let mut paragraphs = 0;
    for p in Paragraphs::new("deb822", &text) {
        match p {
            Ok(p) => {
                paragraphs += 1;
                assert!(in_range(p.line));
                assert!(
                    p.fields
                        .iter()
                        .all(|f| !f.name.is_empty() && in_range(f.line))
                );
            }
            Err(e) => assert!(in_range(e.line), "{e}"),
        }
    }

    match apt::parse_dpkg_status("status", &text) {
        Ok(s) => assert!(s.installed.len() + s.interrupted.len() + s.not_installed <= paragraphs),
        Err(e) => assert!(in_range(e.line), "{e}"),
    }

    let release = match Release::parse("InRelease", &text) {
        Ok(r) => r,
        Err(e) => {
            assert!(in_range(e.line), "{e}");
            Release::default()
        }
    };
    let source = IndexSource {
        component: Some("main"),
        trusted: true,
        ..IndexSource::default()
    };
    match apt::available_packages("Packages", &text, &release, &source) {
        Ok(all) => {
            assert!(all.len() <= paragraphs);
            let n = all.len();
            assert!(apt::merge_available(all).len() <= n);
        }
        Err(e) => assert!(in_range(e.line), "{e}"),
    }
});
