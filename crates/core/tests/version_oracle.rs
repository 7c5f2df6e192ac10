//! Our version order against the real tools: `dpkg` for Debian versions,
//! `rpm` 4.18 (through its embedded Lua) for RPM versions.
//!
//! Each run checks a table of hand-picked edge cases plus at least 10,000
//! generated pairs per family. The generator is seeded: the seed is printed
//! to stderr at the start, and `PATCHFLEET_ORACLE_SEED=<seed>` replays a run.
//! `PATCHFLEET_ORACLE_PAIRS=<n>` changes the number of generated pairs.
//!
//! The tools are required: when `dpkg` or `rpm` is missing the test fails and
//! says which package to install; it never skips.
//!
//! How the tools are asked:
//! - dpkg: one `dpkg --compare-versions -- A OP B` process per pair, where OP
//!   is the relation *we* computed (`lt`, `eq` or `gt`). The three relations
//!   exclude each other, so exit status 0 is dpkg confirming our verdict;
//!   only on a disagreement do we ask again to learn dpkg's verdict. Pairs
//!   are spread over one worker thread per core. Validity: one
//!   `dpkg --validate-version -- S` per generated string.
//! - rpm: a single `rpm --eval '%{lua: ...}'` process runs a Lua script that
//!   reads all pairs from a file and writes one line per pair. rpm 4.18's
//!   `rpm.vercmp(a, b)` parses both sides as `[E:]V[-R]` and calls
//!   `rpmverCmp` (a missing release sorts before any present one), so plain
//!   `rpmvercmp` is reached through `rpm.ver("0", "0", s)` objects: equal
//!   epochs and versions leave only `rpmvercmp` of the two release slots,
//!   which may hold any string, even an empty one. Full EVR strings are
//!   checked twice: `rpm.vercmp` against our `Evr::cmp_rpmver`, and `rpm.ver`
//!   objects rebuilt with the missing epoch as "0" and the missing release as
//!   "" against our total order `Ord for Evr`.

use patchfleet_core::version::deb::{self, DebVersion};
use patchfleet_core::version::rpm::{self, Evr};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

const DEFAULT_PAIRS: usize = 10_000;
const VALIDITY_STRINGS: usize = 5_000;
const MAX_REPORTED: usize = 20;

/// Goes to the real stderr even while the test harness captures output, so
/// the seed is visible in every run, passing or not.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let seed = match std::env::var("PATCHFLEET_ORACLE_SEED") {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("PATCHFLEET_ORACLE_SEED='{text}' is not a u64")),
            Err(_) => rand::rng().random(),
        };
        say(&format!(
            "version_oracle: seed {seed} (replay with PATCHFLEET_ORACLE_SEED={seed})"
        ));
        seed
    })
}

fn pair_count() -> usize {
    std::env::var("PATCHFLEET_ORACLE_PAIRS")
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(DEFAULT_PAIRS)
}

/// One RNG per test, all derived from the run's seed.
fn rng_for(stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed() ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn sign(o: Ordering) -> i32 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

fn fail_on(kind: &str, mismatches: &[String], total: usize) {
    if mismatches.is_empty() {
        return;
    }
    let seed = seed();
    let mut text = format!(
        "{kind}: {} of {total} disagree with the real tool (seed {seed}; replay with \
         PATCHFLEET_ORACLE_SEED={seed}):\n",
        mismatches.len()
    );
    for line in mismatches.iter().take(MAX_REPORTED) {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    panic!("{text}");
}

// ---------------------------------------------------------------------------
// The tools

fn require_tool(program: &str, args: &[&str], package: &str) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => panic!(
            "`{program} {}` failed ({}): {}\nThe version oracle needs a working {program}: \
             install the Debian package '{package}' (apt-get install {package}).",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run `{program}` ({e}).\nThe version oracle needs it: install the Debian \
             package '{package}' (apt-get install {package})."
        ),
    }
}

fn require_dpkg() {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let text = require_tool("dpkg", &["--version"], "dpkg");
        let first = text.lines().next().unwrap_or_default().to_string();
        say(&format!("version_oracle: {first}"));
        first
    });
}

fn require_rpm() {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let text = require_tool("rpm", &["--version"], "rpm");
        let first = text.lines().next().unwrap_or_default().to_string();
        say(&format!("version_oracle: {first}"));
        if !first.contains(" 4.18") {
            say("version_oracle: warning: the rpm oracle was written against rpm 4.18");
        }
        first
    });
}

/// `dpkg --compare-versions -- a op b`: Some(true/false), or None when
/// dpkg refuses the arguments.
fn dpkg_relation(a: &str, op: &str, b: &str) -> Result<bool, String> {
    let out = Command::new("dpkg")
        .args(["--compare-versions", "--", a, op, b])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(format!(
            "dpkg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn dpkg_order(a: &str, b: &str) -> Result<Ordering, String> {
    if dpkg_relation(a, "lt", b)? {
        Ok(Ordering::Less)
    } else if dpkg_relation(a, "gt", b)? {
        Ok(Ordering::Greater)
    } else {
        Ok(Ordering::Equal)
    }
}

fn dpkg_accepts(s: &str) -> Result<bool, String> {
    let out = Command::new("dpkg")
        .args(["--validate-version", "--", s])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(true),
        // 1: rejected with a warning (e.g. bad character), 2: rejected.
        Some(1) | Some(2) => Ok(false),
        _ => Err(format!("dpkg failed ({})", out.status)),
    }
}

/// Runs `check` over `items` on one thread per core (each check spawns a
/// process, so the cores are what bounds the run time).
fn in_parallel<T: Sync>(items: &[T], check: impl Fn(&T) -> Option<String> + Sync) -> Vec<String> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let chunk = items.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().filter_map(&check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("oracle worker panicked"))
            .collect()
    })
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patchfleet-oracle-{tag}-{}-{}",
        std::process::id(),
        seed()
    ));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

const RPM_LUA: &str = r#"
local function cmp3(x, y)
  if x < y then return -1 elseif x == y then return 0 else return 1 end
end
local out = assert(io.open(OUT, "w"))
for line in io.lines(IN) do
  local kind, a, b = line:match("^(%a)\t([^\t]*)\t([^\t]*)$")
  if kind == "v" then
    out:write(cmp3(rpm.ver("0", "0", a), rpm.ver("0", "0", b)), "\n")
  elseif kind == "e" then
    local x, y = rpm.ver(a), rpm.ver(b)
    local nx = rpm.ver(x.e or "0", x.v, x.r or "")
    local ny = rpm.ver(y.e or "0", y.v, y.r or "")
    out:write(rpm.vercmp(a, b), " ", cmp3(nx, ny), "\n")
  else
    out:write("bad line\n")
  end
end
out:close()
"#;

#[derive(Clone, Copy, PartialEq)]
enum RpmKind {
    /// Plain `rpmvercmp` of two arbitrary strings.
    Plain,
    /// Two `[E:]V[-R]` strings.
    Evr,
}

/// Answers of rpm for each pair: one number for plain pairs, two (rpmverCmp,
/// normalized total order) for EVR pairs.
fn rpm_answers(pairs: &[(RpmKind, String, String)]) -> Vec<Vec<i32>> {
    let dir = temp_dir("rpm");
    let (input, output, script) = (dir.join("pairs"), dir.join("answers"), dir.join("cmp.lua"));
    let mut text = String::new();
    for (kind, a, b) in pairs {
        assert!(
            !a.contains(['\t', '\n']) && !b.contains(['\t', '\n']),
            "generator bug: {a:?} {b:?}"
        );
        text.push(if *kind == RpmKind::Plain { 'v' } else { 'e' });
        text.push('\t');
        text.push_str(a);
        text.push('\t');
        text.push_str(b);
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write the pairs");
    std::fs::write(&script, RPM_LUA).expect("write the Lua script");
    let lua = format!(
        "%{{lua: IN='{}'; OUT='{}'; dofile('{}')}}",
        input.display(),
        output.display(),
        script.display()
    );
    let out = Command::new("rpm")
        .args(["--eval", &lua])
        .stdin(Stdio::null())
        .output()
        .expect("run rpm --eval");
    assert!(
        out.status.success(),
        "rpm --eval failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers = std::fs::read_to_string(&output).unwrap_or_else(|e| {
        panic!(
            "rpm wrote no answers ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    let answers: Vec<Vec<i32>> = answers
        .lines()
        .map(|line| {
            line.split(' ')
                .map(|n| {
                    n.parse::<i32>()
                        .unwrap_or_else(|_| panic!("rpm answered {line:?}"))
                        .signum()
                })
                .collect()
        })
        .collect();
    assert_eq!(
        answers.len(),
        pairs.len(),
        "rpm answered a different number of pairs"
    );
    answers
}

// ---------------------------------------------------------------------------
// Generators

/// Picks from weighted choices.
fn weighted<'a, T>(rng: &mut StdRng, choices: &'a [(u32, T)]) -> &'a T {
    let total: u32 = choices.iter().map(|(w, _)| w).sum();
    let mut n = rng.random_range(0..total);
    for (w, item) in choices {
        if n < *w {
            return item;
        }
        n -= w;
    }
    &choices[choices.len() - 1].1
}

fn digits(rng: &mut StdRng) -> String {
    match rng.random_range(0..20) {
        0 => "0".into(),
        1 => "00".into(),
        2 => format!("0{}", rng.random_range(0..100)),
        3 => (0..rng.random_range(19..32))
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect(),
        4 => "18446744073709551616".into(),
        5..=9 => rng.random_range(0..10).to_string(),
        10..=14 => rng.random_range(0..100).to_string(),
        _ => rng.random_range(0..100_000).to_string(),
    }
}

const WORDS: &[&str] = &[
    "a", "b", "z", "A", "Z", "rc", "beta", "alpha", "dfsg", "ubuntu", "deb", "git", "el", "amzn",
    "fc", "k", "p", "svn", "pre", "B",
];

#[derive(Clone, Copy)]
enum Tok {
    Digits,
    Word,
    Lit(&'static str),
}

/// A Debian upstream version: starts with a digit, then tokens biased towards
/// the characters whose order is subtle.
fn deb_upstream(rng: &mut StdRng, colon: bool, hyphen: bool) -> String {
    let mut s = digits(rng);
    let tokens: &[(u32, Tok)] = &[
        (6, Tok::Digits),
        (4, Tok::Word),
        (6, Tok::Lit(".")),
        (3, Tok::Lit("+")),
        (3, Tok::Lit("~")),
        (1, Tok::Lit("~~")),
        (2, Tok::Lit(":")),
        (2, Tok::Lit("-")),
    ];
    for _ in 0..rng.random_range(0..8) {
        match *weighted(rng, tokens) {
            Tok::Digits => s.push_str(&digits(rng)),
            Tok::Word => s.push_str(WORDS.choose(rng).unwrap()),
            Tok::Lit(":") if !colon => s.push('.'),
            Tok::Lit("-") if !hyphen => s.push('+'),
            Tok::Lit(t) => s.push_str(t),
        }
    }
    s
}

fn deb_revision(rng: &mut StdRng) -> String {
    let tokens: &[(u32, Tok)] = &[
        (6, Tok::Digits),
        (4, Tok::Word),
        (4, Tok::Lit(".")),
        (3, Tok::Lit("+")),
        (3, Tok::Lit("~")),
    ];
    let mut s = String::new();
    for _ in 0..rng.random_range(1..6) {
        match *weighted(rng, tokens) {
            Tok::Digits => s.push_str(&digits(rng)),
            Tok::Word => s.push_str(WORDS.choose(rng).unwrap()),
            Tok::Lit(t) => s.push_str(t),
        }
    }
    s
}

fn deb_version(rng: &mut StdRng) -> String {
    let epoch = match rng.random_range(0..20) {
        0..=12 => None,
        13 => Some("0".to_string()),
        14 => Some("00".to_string()),
        15 => Some("2147483647".to_string()),
        _ => Some(rng.random_range(1..12).to_string()),
    };
    let revision = rng.random_bool(0.7).then(|| deb_revision(rng));
    let upstream = deb_upstream(rng, epoch.is_some(), revision.is_some());
    let mut s = String::new();
    if let Some(e) = epoch {
        s.push_str(&e);
        s.push(':');
    }
    s.push_str(&upstream);
    if let Some(r) = revision {
        s.push('-');
        s.push_str(&r);
    }
    s
}

/// Changes `s` a little, so that the pair shares a long prefix and the
/// comparison goes deep. Positions are byte offsets on ASCII text.
fn mutate(rng: &mut StdRng, s: &str, extra: &[&str]) -> String {
    let mut s = s.to_string();
    for _ in 0..rng.random_range(1..3) {
        let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
        let at = *boundaries.choose(rng).unwrap();
        // Bias towards the end, where versions usually differ.
        let late = *boundaries[boundaries.len() / 2..].choose(rng).unwrap();
        let piece = match rng.random_range(0..4) {
            0 => digits(rng),
            1 => WORDS.choose(rng).unwrap().to_string(),
            _ => extra.choose(rng).unwrap().to_string(),
        };
        match rng.random_range(0..8) {
            0 => s.insert_str(at, &piece),
            1 => s.insert_str(late, &piece),
            2 => s.push_str(&piece),
            3 => {
                s.truncate(late);
                s.push_str(&piece);
            }
            4 => {
                // Delete one character.
                if let Some(c) = s[late..].chars().next() {
                    s.replace_range(late..late + c.len_utf8(), "");
                }
            }
            5 => {
                // A leading zero in front of a digit run.
                let runs: Vec<usize> = (0..s.len())
                    .filter(|&i| {
                        s.as_bytes()[i].is_ascii_digit()
                            && (i == 0 || !s.as_bytes()[i - 1].is_ascii_digit())
                    })
                    .collect();
                if let Some(&i) = runs.choose(rng) {
                    s.insert(i, '0');
                }
            }
            6 => {
                // Bump a digit.
                let ds: Vec<usize> = (0..s.len())
                    .filter(|&i| s.as_bytes()[i].is_ascii_digit())
                    .collect();
                if let Some(&i) = ds.choose(rng) {
                    let d = (s.as_bytes()[i] - b'0' + 1) % 10;
                    s.replace_range(i..i + 1, &d.to_string());
                }
            }
            _ => {
                if let Some(c) = s[late..].chars().next() {
                    s.replace_range(late..late + c.len_utf8(), &piece);
                }
            }
        }
    }
    s
}

const DEB_EXTRA: &[&str] = &[
    "~", "~~", "+", ".", "-", ":", "0", "a", ".0", "-1", "-0", "~rc1", "+b1",
];

fn deb_pair(rng: &mut StdRng) -> (String, String) {
    let a = deb_version(rng);
    let b = match rng.random_range(0..10) {
        0..=2 => deb_version(rng),
        3 => {
            // Same string with an epoch added or removed.
            match a.split_once(':') {
                Some((_, rest)) if rng.random_bool(0.5) => rest.to_string(),
                _ => format!("{}:{a}", rng.random_range(0..3)),
            }
        }
        _ => {
            let mut b = mutate(rng, &a, DEB_EXTRA);
            for _ in 0..20 {
                if DebVersion::parse(&b).is_ok() {
                    break;
                }
                b = mutate(rng, &a, DEB_EXTRA);
            }
            b
        }
    };
    if DebVersion::parse(&b).is_ok() {
        (a, b)
    } else {
        let c = deb_version(rng);
        (a, c)
    }
}

const DEB_DIRT: &[&str] = &[
    " ",
    "\t",
    "\n",
    "\r",
    "\x0b",
    "_",
    "=",
    "@",
    "é",
    ":",
    "::",
    "-",
    "--",
    "+",
    "~",
    ".",
    "0",
    "a",
    "/",
    "!",
    "1:",
    "-1:",
    "+1:",
    "-0:",
    "2147483648:",
    "99999999999999999999:",
    "1a:",
    " 1",
];

fn deb_candidate(rng: &mut StdRng) -> String {
    let base = deb_version(rng);
    match rng.random_range(0..10) {
        0 => format!("{}{base}", DEB_DIRT.choose(rng).unwrap()),
        1 => format!("{base}{}", DEB_DIRT.choose(rng).unwrap()),
        2 => String::new() + DEB_DIRT.choose(rng).unwrap(),
        3 => {
            let dirt = DEB_DIRT.choose(rng).unwrap();
            format!(
                "{dirt}{}",
                base.rsplit_once(':').map_or(base.as_str(), |(_, r)| r)
            )
        }
        _ => mutate(rng, &base, DEB_DIRT),
    }
}

const RPM_EXTRA: &[&str] = &[
    "~", "~~", "^", "^^", ".", "_", "+", "-", ":", "%", "é", "0", "a", "A", ".0", "~rc1", "^git1",
    ".el9", "_3", "",
];

fn rpm_plain(rng: &mut StdRng) -> String {
    let tokens: &[(u32, Tok)] = &[
        (7, Tok::Digits),
        (5, Tok::Word),
        (5, Tok::Lit(".")),
        (1, Tok::Lit("_")),
        (1, Tok::Lit("+")),
        (1, Tok::Lit("-")),
        (1, Tok::Lit(":")),
        (1, Tok::Lit("é")),
        (3, Tok::Lit("~")),
        (1, Tok::Lit("~~")),
        (3, Tok::Lit("^")),
        (1, Tok::Lit("^^")),
    ];
    let mut s = String::new();
    for _ in 0..rng.random_range(0..9) {
        match *weighted(rng, tokens) {
            Tok::Digits => s.push_str(&digits(rng)),
            Tok::Word => s.push_str(WORDS.choose(rng).unwrap()),
            Tok::Lit(t) => s.push_str(t),
        }
    }
    s
}

fn rpm_plain_pair(rng: &mut StdRng) -> (String, String) {
    let a = rpm_plain(rng);
    let b = match rng.random_range(0..10) {
        0..=2 => rpm_plain(rng),
        _ => mutate(rng, &a, RPM_EXTRA),
    };
    (a, b)
}

/// A version or release for an EVR: no ':', no '-', not empty.
fn rpm_component(rng: &mut StdRng) -> String {
    loop {
        let s: String = rpm_plain(rng).replace([':', '-'], ".");
        if !s.is_empty() {
            return s;
        }
    }
}

fn rpm_evr(rng: &mut StdRng, release: bool) -> String {
    let mut s = String::new();
    match rng.random_range(0..12) {
        0..=6 => {}
        7 => s.push_str("0:"),
        8 => s.push_str("007:"),
        9 => s.push_str("4294967295:"),
        _ => s.push_str(&format!("{}:", rng.random_range(1..12))),
    }
    s.push_str(&rpm_component(rng));
    if release {
        s.push('-');
        s.push_str(&rpm_component(rng));
    }
    s
}

fn rpm_evr_pair(rng: &mut StdRng) -> (String, String) {
    let release_a = rng.random_bool(0.8);
    let a = rpm_evr(rng, release_a);
    let b = match rng.random_range(0..10) {
        0..=2 => {
            let release = rng.random_bool(0.8);
            rpm_evr(rng, release)
        }
        3 => {
            // Same version, release added or removed.
            match a.rsplit_once('-') {
                Some((v, _)) => v.to_string(),
                None => format!("{a}-{}", rpm_component(rng)),
            }
        }
        _ => {
            let mut b = mutate(rng, &a, RPM_EXTRA);
            for _ in 0..20 {
                if Evr::parse(&b).is_ok() {
                    break;
                }
                b = mutate(rng, &a, RPM_EXTRA);
            }
            b
        }
    };
    if Evr::parse(&b).is_ok() {
        (a, b)
    } else {
        let release = rng.random_bool(0.8);
        let c = rpm_evr(rng, release);
        (a, c)
    }
}

// ---------------------------------------------------------------------------
// Hand-picked cases

const DEB_EDGE_PAIRS: &[(&str, &str)] = &[
    ("1.0", "1.0"),
    ("1.0", "0:1.0"),
    ("1:1.0", "1.0"),
    ("1:0.1", "0:9.9"),
    ("2147483647:1", "2147483646:9"),
    ("00:1.0", "0:1.0"),
    ("1.0~", "1.0"),
    ("1.0~~", "1.0~"),
    ("1.0~~a", "1.0~~"),
    ("1.0~~~", "1.0~~"),
    ("1.0~rc1", "1.0~beta2"),
    ("1.0~", "1.0-1"),
    ("1.0-1~", "1.0-1"),
    ("1~", "1"),
    ("1-~", "1"),
    ("1-~", "1-0"),
    ("1.0", "1.0-0"),
    ("1.0-0", "1.0-00"),
    ("1.0", "1.0.0"),
    ("1.0", "1.00"),
    ("1.0", "1."),
    ("0.0", "0"),
    ("0", "0:0-0"),
    ("1.0a", "1.0+"),
    ("1.0a", "1.0."),
    ("1.0+", "1.0."),
    ("1.0+", "1.0~"),
    ("1.0+~", "1.0+"),
    ("1.0a", "1.0A"),
    ("1.0Z", "1.0a"),
    ("1.0a", "1.a"),
    ("1a", "1b"),
    ("1a.", "1a"),
    ("1.0-a", "1.0-+"),
    ("1.0-1", "1.0-a"),
    ("1.0+dfsg-1", "1.0-1"),
    ("1.0-1+b1", "1.0-1"),
    ("1.0-1ubuntu1", "1.0-1"),
    ("1.0-beta-1", "1.0-1"),
    ("1.0-beta-1", "1.0-beta-2"),
    ("1:2:3", "1:2:4"),
    ("1:2:3", "1:2.3"),
    ("1:2:3-1", "1:2:3"),
    ("007", "7"),
    ("1.007", "1.7"),
    ("1.10", "1.9"),
    ("1.9a", "1.10"),
    ("9", "10"),
    ("1.99999999999999999999", "1.100000000000000000000"),
    ("1.18446744073709551616", "1.18446744073709551615"),
    ("1.000000000000000000000001", "1.1"),
    ("2.36-9+deb12u4", "2.36-9+deb12u3"),
    ("3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.9"),
    ("1:2024a-0+deb12u1", "2024a-0+deb12u1"),
    ("1.2.3~rc1+dfsg-1~bpo12+1", "1.2.3~rc1+dfsg-1"),
    (" 1.0", "1.0 "),
    ("\t1.0", "1.0"),
    ("+1:1.0", "1:1.0"),
    ("-0:1.0", "1.0"),
    ("\n1:1.0", "1:1.0"),
    ("\x0b2:1.0", "1:1.0"),
];

const DEB_EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "1.0",
    " 1.0",
    "1.0 ",
    "1 0",
    "\t1.0\t",
    "a1",
    "1a",
    "1_0",
    "1.0-",
    "1.0-1-",
    "-1",
    "1:",
    ":1",
    "0:1",
    "-0:1",
    "-1:1",
    "+1:1",
    "+-1:1",
    "--1:1",
    "2147483647:1",
    "2147483648:1",
    "00000000002147483647:1",
    "99999999999999999999:1",
    "-99999999999999999999:1",
    "1a:1",
    "\n1:1",
    "\r\n1:1",
    "\x0b1:1",
    "\x0c1:1",
    "1:a",
    "1::1",
    "1:1:1",
    "1.0-a:b",
    "1.0-a_b",
    "1.0-a+b~c.d",
    "1.0é",
    "1.0-é",
    "1.0\n",
    "1\n:1",
    " +1:1",
    "1:1 ",
    "1: 1",
    "1.0-1 ",
    "~1",
    "1~",
    "1-~",
    "0:",
    "1.0-0",
    "1:-1",
    "1:1-",
    "1.0=1",
    "0x1:1",
    " \n1:1",
    "1:\n1",
];

const RPM_EDGE_PLAIN: &[(&str, &str)] = &[
    ("1.0", "1.0"),
    ("1.0", "1_0"),
    ("1.0", "1..0"),
    ("1.0", "1.0."),
    ("1.0", "1.0.0"),
    ("1.0", "1"),
    ("1.0a", "1.0"),
    ("1.0a", "1.0.1"),
    ("1.0a", "1.0+"),
    ("1a", "1.a"),
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0~rc2"),
    ("1.0~~", "1.0~"),
    ("1.0~", "1.0~a"),
    ("1.0~", "1.0"),
    ("~", ""),
    ("~~", ""),
    ("1.0^", "1.0"),
    ("1.0^git1", "1.0"),
    ("1.0^git1", "1.0.1"),
    ("1.0^git1", "1.0a"),
    ("1.0^git1", "1.0~rc1"),
    ("1.0^^", "1.0^"),
    ("1.0^~", "1.0^"),
    ("1.0~^", "1.0~"),
    ("1.0.", "1.0^"),
    ("1.0.", "1.0~"),
    ("^", ""),
    ("", "."),
    ("", "a"),
    ("", "1"),
    ("", ""),
    ("010", "10"),
    ("0010", "9"),
    ("10", "9"),
    ("a", "1"),
    ("a", "b"),
    ("A", "a"),
    ("abc", "abcd"),
    ("1.a", "1.1"),
    ("1.a1", "1.a.1"),
    ("1.0-1", "1.0.1"),
    ("1:2", "1.2"),
    ("1%2", "1.2"),
    ("1é2", "1.2"),
    ("é", ""),
    ("99999999999999999999999", "99999999999999999999998"),
    ("18446744073709551616", "18446744073709551615"),
    ("000000000000000000000001", "1"),
    ("5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3"),
    ("1.0.2k", "1.0.2j"),
    ("el9_3", "el9.3"),
    ("fc38", "fc39"),
    ("1.0a1", "1.0.a.1"),
    ("1.0rc1", "1.0"),
    ("2.0", "2.0-"),
];

const RPM_EDGE_EVR: &[(&str, &str)] = &[
    ("1.0", "1.0-1"),
    ("1.0-1", "1.0-2"),
    ("1:1.0", "2.0"),
    ("0:1.0", "1.0"),
    ("1.0", "1.0-."),
    ("1.0", "1.0-~1"),
    ("1.0-~1", "1.0-1"),
    ("1.0", "1.0-^1"),
    ("1.0-1", "1.0-1."),
    ("2:0.1", "10:0.1"),
    ("007:1.0", "7:1.0"),
    ("4294967295:1", "4294967294:2"),
    ("1:1.0.2k-24.amzn2.0.6", "1:1.0.2k-24.amzn2.0.5"),
    ("5.14.0-362.8.1.el9_3", "5.14.0-362.13.1.el9_3"),
    ("1.0~rc1-1", "1.0-0"),
    ("1.0^git1-1", "1.0-1"),
    ("1.0-1.el9", "1.0-1.el9_1"),
    ("0:1-1", "1-1"),
    ("1.0-1", "1.0_1-1"),
    ("3.0.7-24.el9", "1:3.0.7-24.el9"),
    ("2.17-326.el7_9", "2.17-326.el7_9.3"),
];

// ---------------------------------------------------------------------------
// The tests

#[test]
fn debian_order_agrees_with_dpkg() {
    require_dpkg();
    let mut rng = rng_for(1);
    let mut pairs: Vec<(String, String)> = DEB_EDGE_PAIRS
        .iter()
        .flat_map(|&(a, b)| {
            [
                (a.to_string(), b.to_string()),
                (b.to_string(), a.to_string()),
            ]
        })
        .collect();
    let edge = pairs.len();
    pairs.extend((0..pair_count()).map(|_| deb_pair(&mut rng)));
    for (a, b) in &pairs {
        assert!(
            DebVersion::parse(a).is_ok() && DebVersion::parse(b).is_ok(),
            "not valid for us: {a:?} {b:?}"
        );
    }
    let started = Instant::now();
    let mismatches = in_parallel(&pairs, |(a, b)| {
        let ours = deb::compare_str(a, b).expect("validated above");
        let parsed = DebVersion::parse(a)
            .unwrap()
            .cmp(&DebVersion::parse(b).unwrap());
        if parsed != ours {
            return Some(format!(
                "{a:?} vs {b:?}: compare_str {ours:?}, Ord {parsed:?}"
            ));
        }
        let op = match ours {
            Ordering::Less => "lt",
            Ordering::Equal => "eq",
            Ordering::Greater => "gt",
        };
        match dpkg_relation(a, op, b) {
            Ok(true) => None,
            Ok(false) => {
                let theirs = dpkg_order(a, b);
                Some(format!("{a:?} vs {b:?}: ours {ours:?}, dpkg {theirs:?}"))
            }
            Err(e) => Some(format!("{a:?} vs {b:?}: ours {ours:?}, {e}")),
        }
    });
    say(&format!(
        "version_oracle: dpkg --compare-versions: {} pairs ({edge} hand-picked) in {:.1?}",
        pairs.len(),
        started.elapsed()
    ));
    fail_on("dpkg --compare-versions", &mismatches, pairs.len());
}

#[test]
fn debian_validity_agrees_with_dpkg() {
    require_dpkg();
    let mut rng = rng_for(2);
    let mut strings: Vec<String> = DEB_EDGE_STRINGS.iter().map(|s| s.to_string()).collect();
    let edge = strings.len();
    strings.extend((0..VALIDITY_STRINGS).map(|_| deb_candidate(&mut rng)));
    let started = Instant::now();
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let mismatches = in_parallel(&strings, |s| {
        let ours = DebVersion::parse(s);
        if ours.is_ok() {
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if ours.is_ok() != deb::validate(s).is_ok() {
            return Some(format!("{s:?}: parse and validate disagree"));
        }
        match dpkg_accepts(s) {
            Ok(theirs) if theirs == ours.is_ok() => None,
            Ok(theirs) => Some(format!(
                "{s:?}: ours {}, dpkg --validate-version {}",
                match &ours {
                    Ok(_) => "valid".to_string(),
                    Err(e) => format!("invalid ({})", e.problem()),
                },
                if theirs { "valid" } else { "invalid" }
            )),
            Err(e) => Some(format!("{s:?}: {e}")),
        }
    });
    say(&format!(
        "version_oracle: dpkg --validate-version: {} strings ({edge} hand-picked, {} valid) in {:.1?}",
        strings.len(),
        accepted.into_inner(),
        started.elapsed()
    ));
    fail_on("dpkg --validate-version", &mismatches, strings.len());
}

#[test]
fn rpm_order_agrees_with_rpm() {
    require_rpm();
    let mut rng = rng_for(3);
    let mut pairs: Vec<(RpmKind, String, String)> = Vec::new();
    for &(a, b) in RPM_EDGE_PLAIN {
        pairs.push((RpmKind::Plain, a.into(), b.into()));
        pairs.push((RpmKind::Plain, b.into(), a.into()));
    }
    for &(a, b) in RPM_EDGE_EVR {
        pairs.push((RpmKind::Evr, a.into(), b.into()));
        pairs.push((RpmKind::Evr, b.into(), a.into()));
    }
    let edge = pairs.len();
    let n = pair_count();
    for _ in 0..n {
        let (a, b) = rpm_plain_pair(&mut rng);
        pairs.push((RpmKind::Plain, a, b));
    }
    for _ in 0..n {
        let (a, b) = rpm_evr_pair(&mut rng);
        pairs.push((RpmKind::Evr, a, b));
    }
    let started = Instant::now();
    let answers = rpm_answers(&pairs);
    let elapsed = started.elapsed();
    let mut mismatches = Vec::new();
    for ((kind, a, b), theirs) in pairs.iter().zip(&answers) {
        match kind {
            RpmKind::Plain => {
                let ours = sign(rpm::rpmvercmp(a, b));
                if theirs.as_slice() != [ours] {
                    mismatches.push(format!(
                        "rpmvercmp({a:?}, {b:?}): ours {ours}, rpm {theirs:?}"
                    ));
                }
            }
            RpmKind::Evr => {
                let (x, y) = match (Evr::parse(a), Evr::parse(b)) {
                    (Ok(x), Ok(y)) => (x, y),
                    (x, y) => {
                        mismatches.push(format!("{a:?} vs {b:?}: we refuse {x:?} {y:?}"));
                        continue;
                    }
                };
                let rpmver = sign(x.cmp_rpmver(&y));
                let total = sign(x.cmp(&y));
                let via_str = rpm::compare_str(a, b).map(sign);
                if theirs.as_slice() != [rpmver, total] || via_str != Ok(total) {
                    mismatches.push(format!(
                        "{a:?} vs {b:?}: ours (rpmverCmp {rpmver}, total {total}, compare_str \
                         {via_str:?}), rpm (rpm.vercmp, rpm.ver objects) {theirs:?}"
                    ));
                }
            }
        }
    }
    say(&format!(
        "version_oracle: rpm --eval (Lua): {} pairs ({edge} hand-picked; {n} plain + {n} EVR \
         generated) in {elapsed:.1?}",
        pairs.len()
    ));
    fail_on("rpm", &mismatches, pairs.len());
}
