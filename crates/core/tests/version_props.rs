//! Properties of the version orders that no table of examples can pin down:
//! they are total orders (so sorting and binary search are sound), equality
//! and hashing agree with them, parsing never panics, and printing a parsed
//! version gives a string that parses back to an equal one.

use patchfleet_core::version::deb::{self, DebVersion};
use patchfleet_core::version::rpm::{self, Evr, Nevra};
use patchfleet_core::version::{Scheme, compare, validate};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// Strings from a few characters, so that pairs are often equal or close;
/// version-like strings; and anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[01a~^.:+-]{0,8}",
        4 => "[0-9]{0,3}:?[0-9]{1,3}[0-9a-zA-Z.+~^_:-]{0,14}",
        1 => "[0-9a-zA-Z.+~^_:é \t\n-]{0,20}",
        1 => any::<String>(),
    ]
}

/// Strings that are mostly valid Debian versions.
fn deb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "([0-9]:)?[0-9][0-9a~.+]{0,6}(-[0-9a~.+]{1,4})?",
        1 => "[0-9]{1,2}:?[0-9]{1,2}[0-9a-zA-Z.+~:-]{0,10}",
        1 => text(),
    ]
}

/// Strings that are mostly valid RPM EVRs.
fn rpm_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "([0-9]:)?[0-9a~^._]{1,7}(-[0-9a~^._]{1,4})?",
        1 => "[0-9]{0,2}:?[0-9a-zA-Z.+~^_%]{1,10}(-[0-9a-zA-Z.+~^_]{1,6})?",
        1 => text(),
    ]
}

fn hash_of<T: Hash>(x: &T) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

/// Antisymmetry and, through a sort, transitivity: after sorting, every
/// earlier element must be `<=` every later one.
fn check_total_order<T: std::fmt::Debug>(items: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    for a in items.iter() {
        assert_eq!(cmp(a, a), Ordering::Equal, "not reflexive: {a:?}");
        for b in items.iter() {
            assert_eq!(
                cmp(a, b),
                cmp(b, a).reverse(),
                "not antisymmetric: {a:?} {b:?}"
            );
        }
    }
    items.sort_by(&cmp);
    for (i, a) in items.iter().enumerate() {
        for b in items.iter().skip(i + 1) {
            assert_ne!(
                cmp(a, b),
                Ordering::Greater,
                "not transitive: {a:?} > {b:?}"
            );
        }
    }
}

/// Transitivity over a triple, in every direction.
fn check_triple<T: std::fmt::Debug>(a: &T, b: &T, c: &T, cmp: impl Fn(&T, &T) -> Ordering) {
    let (ab, bc, ac) = (cmp(a, b), cmp(b, c), cmp(a, c));
    if ab != Ordering::Greater && bc != Ordering::Greater {
        assert_ne!(ac, Ordering::Greater, "{a:?} <= {b:?} <= {c:?} but a > c");
    }
    if ab == Ordering::Equal && bc == Ordering::Equal {
        assert_eq!(ac, Ordering::Equal, "{a:?} == {b:?} == {c:?} but a != c");
    }
    if ab == Ordering::Less && bc != Ordering::Greater {
        assert_eq!(ac, Ordering::Less, "{a:?} < {b:?} <= {c:?} but not a < c");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn verrevcmp_is_a_total_order(mut items in prop::collection::vec(text(), 1..12)) {
        check_total_order(&mut items, |a, b| deb::verrevcmp(a, b));
    }

    #[test]
    fn rpmvercmp_is_a_total_order(mut items in prop::collection::vec(text(), 1..12)) {
        check_total_order(&mut items, |a, b| rpm::rpmvercmp(a, b));
    }

    #[test]
    fn raw_comparisons_are_transitive(a in text(), b in text(), c in text()) {
        check_triple(&a, &b, &c, |x, y| deb::verrevcmp(x, y));
        check_triple(&a, &b, &c, |x, y| rpm::rpmvercmp(x, y));
    }

    #[test]
    fn deb_versions_are_totally_ordered(items in prop::collection::vec(deb_text(), 1..14)) {
        let mut parsed: Vec<DebVersion> =
            items.iter().filter_map(|s| DebVersion::parse(s).ok()).collect();
        for a in &parsed {
            for b in &parsed {
                // Eq, Ord and Hash agree, and so does the string fast path.
                prop_assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
                prop_assert_eq!(a.partial_cmp(b), Some(a.cmp(b)));
                if a == b {
                    prop_assert_eq!(hash_of(a), hash_of(b), "{} == {}", a, b);
                }
                prop_assert_eq!(deb::compare_str(&a.to_string(), &b.to_string()), Ok(a.cmp(b)));
            }
        }
        check_total_order(&mut parsed, |a, b| a.cmp(b));
    }

    #[test]
    fn evrs_are_totally_ordered(items in prop::collection::vec(rpm_text(), 1..14)) {
        let mut parsed: Vec<Evr> = items.iter().filter_map(|s| Evr::parse(s).ok()).collect();
        for a in &parsed {
            for b in &parsed {
                prop_assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
                prop_assert_eq!(a.partial_cmp(b), Some(a.cmp(b)));
                if a == b {
                    prop_assert_eq!(hash_of(a), hash_of(b), "{} == {}", a, b);
                }
                prop_assert_eq!(rpm::compare_str(&a.to_string(), &b.to_string()), Ok(a.cmp(b)));
            }
        }
        check_total_order(&mut parsed.clone(), |a, b| a.cmp(b));
        check_total_order(&mut parsed, |a, b| a.cmp_rpmver(b));
    }

    #[test]
    fn equal_strings_hash_alike(s in deb_text(), zeros in 1usize..3, sep in "[._+]") {
        // Variants that the orders call equal: extra leading zeros, and for
        // rpm a different separator.
        let padded: String = {
            let mut out = String::new();
            let mut prev_digit = false;
            for c in s.chars() {
                if c.is_ascii_digit() && !prev_digit {
                    out.push_str(&"0".repeat(zeros));
                }
                prev_digit = c.is_ascii_digit();
                out.push(c);
            }
            out
        };
        // dpkg: a final zero after a non-digit changes nothing (`1.` = `1.0`).
        let zero_tail = format!("{s}0");
        let ends_in_digit = s.ends_with(|c: char| c.is_ascii_digit());
        let variants = if ends_in_digit { vec![&padded] } else { vec![&padded, &zero_tail] };
        for variant in variants {
            if let (Ok(a), Ok(b)) = (DebVersion::parse(&s), DebVersion::parse(variant)) {
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
        }
        // rpm: separators only separate (`1.0` = `1_0` = `1.0.`).
        let swapped = padded.replace('.', &sep);
        let sep_tail = format!("{s}{sep}");
        for variant in [&swapped, &sep_tail] {
            if let (Ok(a), Ok(b)) = (Evr::parse(&s), Evr::parse(variant)) {
                prop_assert_eq!(&a, &b);
                prop_assert_eq!(hash_of(&a), hash_of(&b));
            }
        }
    }

    #[test]
    fn parsing_never_panics_and_errors_name_the_input(s in text()) {
        for result in [
            DebVersion::parse(&s).map(|_| ()),
            deb::validate(&s),
            deb::parse_name_version(&s).map(|_| ()),
            Evr::parse(&s).map(|_| ()),
            rpm::validate(&s),
            Nevra::parse(&s).map(|_| ()),
            Nevra::parse_title(&s).map(|_| ()),
            compare(Scheme::Deb, &s, "1.0").map(|_| ()),
            compare(Scheme::Rpm, "1.0", &s).map(|_| ()),
            validate(Scheme::Deb, &s),
            validate(Scheme::Rpm, &s),
        ] {
            if let Err(e) = result {
                prop_assert_eq!(e.input(), s.as_str());
                prop_assert!(!e.problem().is_empty());
                prop_assert!(e.to_string().starts_with("invalid "));
            }
        }
        prop_assert_eq!(DebVersion::parse(&s).is_ok(), deb::validate(&s).is_ok());
        prop_assert_eq!(Evr::parse(&s).is_ok(), rpm::validate(&s).is_ok());
    }

    #[test]
    fn deb_display_round_trips(s in deb_text()) {
        if let Ok(a) = DebVersion::parse(&s) {
            let shown = a.to_string();
            let b = DebVersion::parse(&shown).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&a, &b);
            prop_assert_eq!((a.epoch(), a.upstream(), a.revision()), (b.epoch(), b.upstream(), b.revision()));
            let c = DebVersion::new(a.epoch(), a.upstream(), a.revision())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&a, &c);
            let json = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<DebVersion>(&json).unwrap(), a);
        }
    }

    #[test]
    fn evr_display_round_trips(s in rpm_text()) {
        if let Ok(a) = Evr::parse(&s) {
            let shown = a.to_string();
            let b = Evr::parse(&shown).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&a, &b);
            prop_assert_eq!((a.epoch(), a.version(), a.release()), (b.epoch(), b.version(), b.release()));
            let c = Evr::new(a.epoch(), a.version(), a.release())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&a, &c);
            let json = serde_json::to_string(&a).unwrap();
            prop_assert_eq!(serde_json::from_str::<Evr>(&json).unwrap(), a);
        }
    }

    #[test]
    fn nevra_forms_round_trip(
        name in "[a-z][a-z0-9.+_-]{0,10}",
        evr in rpm_text(),
        arch in "(x86_64|noarch|aarch64|i686)",
    ) {
        let Ok(evr) = Evr::parse(&evr) else { return Ok(()) };
        if evr.release().is_empty() {
            return Ok(());
        }
        let nevra = Nevra {
            name,
            epoch: evr.epoch(),
            version: evr.version().to_string(),
            release: evr.release().to_string(),
            arch,
        };
        let again = Nevra::parse(&nevra.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &nevra);
        let titled = Nevra::parse_title(&nevra.title()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&titled.name, &nevra.name);
        prop_assert_eq!(&titled.arch, &nevra.arch);
        prop_assert_eq!(titled.evr(), nevra.evr());
    }
}
