//! Version comparisons per second: ours against the C reference
//! implementations (librpm's `rpmvercmp`/`rpmverCmp`, libdpkg's
//! `dpkg_version_compare`) and against the `rpm-version` and `debversion`
//! crates, on the same 1,000 realistic pairs per family.
//! Run: `cargo bench -p patchfleet-benches --bench vercmp`.
//!
//! Each measured iteration compares all 1,000 pairs (throughput is reported
//! per pair). The C side is called through batch functions of
//! `benches/c/vercmp_shim.c`, one FFI call per batch, so the figures are
//! those of the C loops themselves. Before measuring, every implementation's
//! verdicts are checked against ours through a checksum.

// Calling the C reference implementations needs `unsafe` FFI; the
// workspace denies it everywhere else, and only this bench needs it.
#![allow(unsafe_code)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use patchfleet_core::version::deb::{self, DebVersion};
use patchfleet_core::version::rpm::{self, Evr};
use std::cmp::Ordering;
use std::hint::black_box;
use std::time::Duration;

const PAIRS: usize = 1_000;

/// Real-looking Debian/Ubuntu versions; pairs are drawn from variations of
/// these, the way upgrades differ (mostly late in the string).
const DEB_BASE: &[&str] = &[
    "2.36-9+deb12u4",
    "3.0.2-0ubuntu1.10",
    "1:2.30-4ubuntu0.1",
    "5.15.0-91.101",
    "1.2.13.dfsg-1",
    "2:8.2.3995-1ubuntu2.15",
    "0.9.8~rc1-2",
    "7.88.1-10+deb12u5",
    "2024a-0+deb12u1",
    "1.1.1f-1ubuntu2.20",
    "252.22-1~deb12u1",
    "3.34.1-1ubuntu0.1~20.04.1",
    "1:9.18.24-0ubuntu0.22.04.1",
    "2.9.14+dfsg-1.3~deb12u1",
    "1:8.4p1-5+deb11u3",
    "1.0.0~alpha3-2",
    "4.19.0-26",
    "1:1.2.13.dfsg-1ubuntu4",
    "10.2.1-6",
    "2.38.1-5+deb12u1",
    "5.2.15-2+b2",
    "1.46.6-1~deb12u1",
    "3.11.2-6+deb12u1",
    "0.23.22-1",
    "2.2.19-1ubuntu3.4",
    "1:4.13+dfsg1-1ubuntu1",
    "247.3-7+deb11u4",
    "1.20.1-2+deb12u1",
];

/// Real-looking RPM EVRs (RHEL, Amazon Linux, Fedora).
const RPM_BASE: &[&str] = &[
    "1:1.0.2k-24.amzn2.0.6",
    "5.14.0-362.8.1.el9_3",
    "2.17-326.el7_9.3",
    "3.0.7-24.el9",
    "1:1.8.0.392.b08-4.el8",
    "2:4.4.20-1.el8",
    "0.9.8~rc1-2.fc38",
    "1.0^git20230101-1.fc39",
    "4.18.0-513.11.1.el8_9",
    "1:1.1.1k-12.el8_9",
    "2.28-236.el8_9.12",
    "7.76.1-26.el9_3.3",
    "32:9.11.36-11.el8_9",
    "5.10.205-195.807.amzn2",
    "6.1.72-96.166.amzn2023",
    "3.6.8-56.el8_9.3",
    "1.11.0-10.el9",
    "1:1.1.1w-1.amzn2.0.1",
    "239-78.el8",
    "8.0p1-19.el8_9.2",
    "4.16.1.3-25.el8",
    "0.180-1.el8",
    "1.2.11-40.el9",
    "1:2.02-156.el8",
    "3.2.1-1.amzn2023.0.3",
    "1.46.5-3.el9",
];

/// A small deterministic generator, so every run measures the same pairs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Changes one number of `s` (more often a late one), sometimes appending a
/// typical suffix: the shape of a real upgrade or backport.
fn vary(rng: &mut SplitMix, s: &str, suffixes: &[&str]) -> String {
    let bytes = s.as_bytes();
    let runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                runs.push((start, i));
            } else {
                i += 1;
            }
        }
        runs
    };
    let mut out = s.to_string();
    if !runs.is_empty() {
        // Late runs are likelier: take the max of two draws.
        let k = rng.below(runs.len()).max(rng.below(runs.len()));
        let (start, end) = runs[k];
        let old: u64 = s[start..end].parse().unwrap_or(0);
        let new = match rng.below(4) {
            0 => old + 1,
            1 => old.saturating_sub(1),
            2 => old * 10 + rng.below(10) as u64,
            _ => rng.below(200) as u64,
        };
        out.replace_range(start..end, &new.to_string());
    }
    if rng.below(5) == 0 {
        out.push_str(rng.pick(suffixes));
    }
    out
}

fn pairs(
    seed: u64,
    base: &[&str],
    suffixes: &[&str],
    valid: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(PAIRS);
    while out.len() < PAIRS {
        let first = rng.pick(base);
        let a = vary(&mut rng, first, suffixes);
        let b = match rng.below(20) {
            0..=1 => a.clone(),
            2..=4 => {
                let other = rng.pick(base);
                vary(&mut rng, other, suffixes)
            }
            _ => vary(&mut rng, &a, suffixes),
        };
        if valid(&a) && valid(&b) {
            out.push((a, b));
        }
    }
    out
}

fn deb_pairs() -> Vec<(String, String)> {
    pairs(
        0x0deb,
        DEB_BASE,
        &["~rc1", "+b1", ".1", "~deb12u1", "build1"],
        |s| DebVersion::parse(s).is_ok(),
    )
}

fn rpm_pairs() -> Vec<(String, String)> {
    pairs(
        0x0399,
        RPM_BASE,
        &[".1", "_1", ".0.1", "~rc1", "^git1"],
        |s| Evr::parse(s).is_ok(),
    )
}

/// The checksum of the C shim: `acc * 3 + sign + 1`, wrapping.
fn mix(acc: u64, o: Ordering) -> u64 {
    acc.wrapping_mul(3).wrapping_add(match o {
        Ordering::Less => 0,
        Ordering::Equal => 1,
        Ordering::Greater => 2,
    })
}

/// `[epoch:]V-R` without the epoch: what a plain `rpmvercmp` sees.
fn without_epoch(s: &str) -> &str {
    s.split_once(':').map_or(s, |(_, rest)| rest)
}

#[cfg(c_vercmp)]
mod c {
    //! The C reference implementations, through `benches/c/vercmp_shim.c`.

    use std::ffi::{CString, c_char, c_void};

    // build.rs compiles the shim into this package's library; naming the
    // library makes the linker see it.
    use patchfleet_benches as _;

    unsafe extern "C" {
        fn c_rpmvercmp_batch(a: *const *const c_char, b: *const *const c_char, n: usize) -> u64;
        fn c_rpmver_parse_batch(s: *const *const c_char, n: usize) -> *mut *mut c_void;
        fn c_rpmvercmp_evr_batch(a: *const *mut c_void, b: *const *mut c_void, n: usize) -> u64;
        fn c_dpkg_parse_batch(s: *const *const c_char, n: usize) -> *mut c_void;
        fn c_dpkg_compare_batch(a: *const c_void, b: *const c_void, n: usize) -> u64;
    }

    /// NUL-terminated copies of strings, kept alive with their pointers.
    pub struct CStrings {
        _owned: Vec<CString>,
        ptrs: Vec<*const c_char>,
    }

    impl CStrings {
        pub fn new<'a>(items: impl Iterator<Item = &'a str>) -> CStrings {
            let owned: Vec<CString> = items
                .map(|s| CString::new(s).expect("no NUL in bench strings"))
                .collect();
            let ptrs = owned.iter().map(|s| s.as_ptr()).collect();
            CStrings {
                _owned: owned,
                ptrs,
            }
        }
    }

    pub fn rpmvercmp_batch(a: &CStrings, b: &CStrings) -> u64 {
        assert_eq!(a.ptrs.len(), b.ptrs.len());
        // SAFETY: both arrays hold `len` pointers to live NUL-terminated
        // strings (owned by the CStrings), which rpmvercmp only reads.
        unsafe { c_rpmvercmp_batch(a.ptrs.as_ptr(), b.ptrs.as_ptr(), a.ptrs.len()) }
    }

    /// `rpmver` handles from `rpmverParse` (leaked: this is a benchmark).
    pub struct RpmVers {
        ptr: *mut *mut c_void,
        len: usize,
    }

    pub fn rpmver_parse(s: &CStrings) -> RpmVers {
        // SAFETY: `s` holds `len` live NUL-terminated strings.
        let ptr = unsafe { c_rpmver_parse_batch(s.ptrs.as_ptr(), s.ptrs.len()) };
        assert!(!ptr.is_null(), "rpmverParse refused a bench string");
        RpmVers {
            ptr,
            len: s.ptrs.len(),
        }
    }

    pub fn rpmvercmp_evr_batch(a: &RpmVers, b: &RpmVers) -> u64 {
        assert_eq!(a.len, b.len);
        // SAFETY: both arrays hold `len` valid rpmver handles, never freed.
        unsafe { c_rpmvercmp_evr_batch(a.ptr, b.ptr, a.len) }
    }

    /// An array of libdpkg `struct dpkg_version` (leaked: a benchmark).
    pub struct DpkgVersions {
        ptr: *mut c_void,
        len: usize,
    }

    pub fn dpkg_parse(s: &CStrings) -> DpkgVersions {
        // SAFETY: `s` holds `len` live NUL-terminated strings.
        let ptr = unsafe { c_dpkg_parse_batch(s.ptrs.as_ptr(), s.ptrs.len()) };
        assert!(
            !ptr.is_null(),
            "libdpkg's parseversion refused a bench string"
        );
        DpkgVersions {
            ptr,
            len: s.ptrs.len(),
        }
    }

    pub fn dpkg_compare_batch(a: &DpkgVersions, b: &DpkgVersions) -> u64 {
        assert_eq!(a.len, b.len);
        // SAFETY: both point to `len` parsed `struct dpkg_version`, never freed.
        unsafe { c_dpkg_compare_batch(a.ptr, b.ptr, a.len) }
    }
}

fn rpm_benches(c: &mut Criterion) {
    let pairs = rpm_pairs();
    let vr: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (without_epoch(a), without_epoch(b)))
        .collect();

    // rpmvercmp on "V-R" strings.
    let ours_plain = vr
        .iter()
        .fold(0, |acc, (a, b)| mix(acc, rpm::rpmvercmp(a, b)));
    let crate_plain: Vec<(rpm_version::Evr, rpm_version::Evr)> = vr
        .iter()
        .map(|&(a, b)| {
            (
                rpm_version::Evr::new("0", a, ""),
                rpm_version::Evr::new("0", b, ""),
            )
        })
        .collect();
    let crate_plain_sum = crate_plain.iter().fold(0, |acc, (a, b)| mix(acc, a.cmp(b)));
    report_agreement("rpm-version (plain)", ours_plain, crate_plain_sum);

    // Pre-parsed EVRs.
    let ours_evr: Vec<(Evr, Evr)> = pairs
        .iter()
        .map(|(a, b)| (Evr::parse(a).unwrap(), Evr::parse(b).unwrap()))
        .collect();
    let ours_evr_sum = ours_evr.iter().fold(0, |acc, (a, b)| mix(acc, a.cmp(b)));
    let ours_rpmver_sum = ours_evr
        .iter()
        .fold(0, |acc, (a, b)| mix(acc, a.cmp_rpmver(b)));
    assert_eq!(
        ours_evr_sum, ours_rpmver_sum,
        "the corpus has releases on both sides"
    );
    let crate_evr: Vec<(rpm_version::Evr, rpm_version::Evr)> = pairs
        .iter()
        .map(|(a, b)| (rpm_version::Evr::parse(a), rpm_version::Evr::parse(b)))
        .collect();
    let crate_evr_sum = crate_evr.iter().fold(0, |acc, (a, b)| mix(acc, a.cmp(b)));
    report_agreement("rpm-version (EVR)", ours_evr_sum, crate_evr_sum);

    let mut group = c.benchmark_group("rpmvercmp");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours", |b| {
        b.iter(|| {
            black_box(&vr)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, rpm::rpmvercmp(a, b)))
        })
    });
    #[cfg(c_vercmp)]
    {
        let a = c::CStrings::new(vr.iter().map(|p| p.0));
        let b = c::CStrings::new(vr.iter().map(|p| p.1));
        assert_eq!(
            c::rpmvercmp_batch(&a, &b),
            ours_plain,
            "librpm disagrees with us"
        );
        group.bench_function("librpm", |bench| {
            bench.iter(|| c::rpmvercmp_batch(black_box(&a), black_box(&b)))
        });
    }
    group.bench_function("rpm-version crate", |b| {
        b.iter(|| {
            black_box(&crate_plain)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, a.cmp(b)))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("rpm EVR pre-parsed");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours Evr::cmp", |b| {
        b.iter(|| {
            black_box(&ours_evr)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, a.cmp(b)))
        })
    });
    #[cfg(c_vercmp)]
    {
        let a = c::rpmver_parse(&c::CStrings::new(pairs.iter().map(|p| p.0.as_str())));
        let b = c::rpmver_parse(&c::CStrings::new(pairs.iter().map(|p| p.1.as_str())));
        assert_eq!(
            c::rpmvercmp_evr_batch(&a, &b),
            ours_rpmver_sum,
            "librpm disagrees with us"
        );
        group.bench_function("librpm rpmverCmp", |bench| {
            bench.iter(|| c::rpmvercmp_evr_batch(black_box(&a), black_box(&b)))
        });
    }
    group.bench_function("rpm-version crate", |b| {
        b.iter(|| {
            black_box(&crate_evr)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, a.cmp(b)))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("rpm EVR strings");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours rpm::compare_str (validate + compare)", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, rpm::compare_str(a, b).unwrap()))
        })
    });
    group.bench_function("rpm-version rpm_evr_compare", |b| {
        b.iter(|| {
            black_box(&pairs).iter().fold(0, |acc, (a, b)| {
                mix(acc, rpm_version::rpm_evr_compare(a, b))
            })
        })
    });
    group.finish();
}

fn deb_benches(c: &mut Criterion) {
    let pairs = deb_pairs();
    let ours: Vec<(DebVersion, DebVersion)> = pairs
        .iter()
        .map(|(a, b)| (DebVersion::parse(a).unwrap(), DebVersion::parse(b).unwrap()))
        .collect();
    let ours_sum = ours.iter().fold(0, |acc, (a, b)| mix(acc, a.cmp(b)));
    let theirs: Vec<(debversion::Version, debversion::Version)> = pairs
        .iter()
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .collect();
    let theirs_sum = theirs.iter().fold(0, |acc, (a, b)| mix(acc, a.cmp(b)));
    report_agreement("debversion", ours_sum, theirs_sum);

    let mut group = c.benchmark_group("dpkg pre-parsed");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours DebVersion::cmp", |b| {
        b.iter(|| {
            black_box(&ours)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, a.cmp(b)))
        })
    });
    #[cfg(c_vercmp)]
    {
        let a = c::dpkg_parse(&c::CStrings::new(pairs.iter().map(|p| p.0.as_str())));
        let b = c::dpkg_parse(&c::CStrings::new(pairs.iter().map(|p| p.1.as_str())));
        assert_eq!(
            c::dpkg_compare_batch(&a, &b),
            ours_sum,
            "libdpkg disagrees with us"
        );
        group.bench_function("libdpkg dpkg_version_compare", |bench| {
            bench.iter(|| c::dpkg_compare_batch(black_box(&a), black_box(&b)))
        });
    }
    group.bench_function("debversion crate", |b| {
        b.iter(|| {
            black_box(&theirs)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, a.cmp(b)))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("dpkg strings");
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("ours deb::compare_str (validate + compare)", |b| {
        b.iter(|| {
            black_box(&pairs)
                .iter()
                .fold(0, |acc, (a, b)| mix(acc, deb::compare_str(a, b).unwrap()))
        })
    });
    group.bench_function("debversion parse + cmp", |b| {
        b.iter(|| {
            black_box(&pairs).iter().fold(0, |acc, (a, b)| {
                let a: debversion::Version = a.parse().unwrap();
                let b: debversion::Version = b.parse().unwrap();
                mix(acc, a.cmp(&b))
            })
        })
    });
    group.finish();
}

fn report_agreement(what: &str, ours: u64, theirs: u64) {
    if ours != theirs {
        eprintln!("note: {what} orders some of the bench pairs differently from us");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = rpm_benches, deb_benches
}
criterion_main!(benches);
