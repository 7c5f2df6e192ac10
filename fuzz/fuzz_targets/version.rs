//! Arbitrary bytes → two strings → every version parser and comparison.
//!
//! Checks that nothing panics, that every error names its input, that
//! comparisons are antisymmetric and reflexive, that equal versions hash
//! alike, and that parsed versions print as strings that parse back equal.

#![no_main]

use libfuzzer_sys::fuzz_target;
use patchfleet_core::version::deb::{self, DebVersion};
use patchfleet_core::version::rpm::{self, Evr, Nevra};
use patchfleet_core::version::{Scheme, VersionError, compare, validate};
use std::cmp::Ordering;
use std::hash::{DefaultHasher, Hash, Hasher};

fuzz_target!(|data: &[u8]| {
    // Split at the first 0xff byte (never part of UTF-8), else in the middle.
    let (a, b) = match data.iter().position(|&c| c == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => data.split_at(data.len() / 2),
    };
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);
    check_pair(&a, &b);
});

fn check_pair(a: &str, b: &str) {
    check_raw(a, b, deb::verrevcmp);
    check_raw(a, b, rpm::rpmvercmp);
    for scheme in [Scheme::Deb, Scheme::Rpm] {
        match compare(scheme, a, b) {
            Ok(order) => {
                assert_eq!(
                    compare(scheme, b, a),
                    Ok(order.reverse()),
                    "{scheme} {a:?} {b:?}"
                );
                assert_eq!(compare(scheme, a, a), Ok(Ordering::Equal), "{scheme} {a:?}");
            }
            Err(e) => {
                assert!(e.input() == a || e.input() == b, "{e}");
                clean(&e);
            }
        }
    }

    let deb = (DebVersion::parse(a), DebVersion::parse(b));
    for (s, parsed) in [(a, &deb.0), (b, &deb.1)] {
        assert_eq!(parsed.is_ok(), validate(Scheme::Deb, s).is_ok(), "{s:?}");
        match parsed {
            Ok(v) => {
                let again = DebVersion::parse(&v.to_string()).expect("Display parses back");
                assert_eq!(&again, v);
                assert_eq!(hash(&again), hash(v));
            }
            Err(e) => named(e, s),
        }
    }
    if let (Ok(x), Ok(y)) = &deb {
        check_ord(x, y);
        assert_eq!(deb::compare_str(a, b), Ok(x.cmp(y)));
    }

    let evr = (Evr::parse(a), Evr::parse(b));
    for (s, parsed) in [(a, &evr.0), (b, &evr.1)] {
        assert_eq!(parsed.is_ok(), validate(Scheme::Rpm, s).is_ok(), "{s:?}");
        match parsed {
            Ok(v) => {
                let again = Evr::parse(&v.to_string()).expect("Display parses back");
                assert_eq!(&again, v);
                assert_eq!(hash(&again), hash(v));
            }
            Err(e) => named(e, s),
        }
    }
    if let (Ok(x), Ok(y)) = &evr {
        check_ord(x, y);
        assert_eq!(x.cmp_rpmver(y), y.cmp_rpmver(x).reverse());
        assert_eq!(rpm::compare_str(a, b), Ok(x.cmp(y)));
    }

    for s in [a, b] {
        match Nevra::parse(s) {
            Ok(n) => {
                assert_eq!(Nevra::parse(&n.to_string()).as_ref(), Ok(&n));
                let titled = Nevra::parse_title(&n.title()).expect("title parses back");
                assert_eq!(titled.evr(), n.evr());
            }
            Err(e) => named(&e, s),
        }
        if let Err(e) = Nevra::parse_title(s) {
            named(&e, s);
        }
        if let Err(e) = deb::parse_name_version(s) {
            named(&e, s);
        }
    }
}

fn check_raw(a: &str, b: &str, cmp: fn(&str, &str) -> Ordering) {
    assert_eq!(cmp(a, b), cmp(b, a).reverse(), "{a:?} {b:?}");
    assert_eq!(cmp(a, a), Ordering::Equal, "{a:?}");
}

fn check_ord<T: Ord + Hash + std::fmt::Debug>(x: &T, y: &T) {
    assert_eq!(x.cmp(y), y.cmp(x).reverse(), "{x:?} {y:?}");
    assert_eq!(x == y, x.cmp(y) == Ordering::Equal, "{x:?} {y:?}");
    if x == y {
        assert_eq!(hash(x), hash(y), "{x:?} {y:?}");
    }
}

fn hash<T: Hash>(x: &T) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

fn named(e: &VersionError, input: &str) {
    assert_eq!(e.input(), input);
    clean(e);
}

fn clean(e: &VersionError) {
    assert!(!e.problem().is_empty());
    let text = e.to_string();
    assert!(text.starts_with("invalid "), "{text}");
    assert!(!text.contains('\n'), "messages stay on one line: {text:?}");
}
