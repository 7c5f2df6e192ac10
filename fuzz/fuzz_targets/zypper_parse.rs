//! Any bytes given to the zypper `--xmlout` parsers (list-patches, search,
//! install) must be answered with a value or an error naming a line of the
//! input, never a panic: zypper's output carries repository data.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_core::version::rpm as rpmver;
use patchfleet_pkg::install::SimAction;
use patchfleet_pkg::zypper::{self, ZypperParseError};

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_ok = |e: &ZypperParseError| match e.line {
        Some(line) => (1..=lines).contains(&line),
        None => false,
    };

    match zypper::parse_list_patches("list-patches.xml", data) {
        Ok(notices) => {
            for n in &notices {
                assert!(!n.id.is_empty() && !n.kind.is_empty());
                assert!(n.packages.is_empty());
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }

    match zypper::parse_search("search.xml", data) {
        Ok(packages) => {
            for p in &packages {
                assert!(!p.name.is_empty() && !p.arch.is_empty());
                assert!(p.arch != "src" && p.arch != "nosrc");
                assert!(p.repository.as_deref() != Some(zypper::SYSTEM_REPOSITORY));
                rpmver::validate(&p.version).unwrap();
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }

    match zypper::parse_install("install.xml", data) {
        Ok(out) => {
            assert!(out.summary || out.steps.is_empty());
            for s in &out.steps {
                assert!(!s.name.is_empty());
                match s.action {
                    SimAction::Remove => assert!(s.old.is_some() && s.new.is_none()),
                    _ => assert!(s.new.is_some()),
                }
                for v in s.old.iter().chain(&s.new) {
                    rpmver::validate(v).unwrap();
                }
            }
        }
        Err(e) => assert!(line_ok(&e), "{e}"),
    }
});
