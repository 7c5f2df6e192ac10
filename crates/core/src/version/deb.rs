//! Debian versions: `[epoch:]upstream[-revision]`, parsed and ordered the way
//! dpkg 1.21 does it (`parseversion` and `verrevcmp` in libdpkg).
//!
//! Acceptance follows `dpkg --validate-version` to the letter, including its
//! odd corners: blanks around the version are ignored, and because dpkg reads
//! the epoch with `strtol`, an epoch may carry a sign or leading line breaks
//! (`+1:2.0` and `-0:2.0` are valid, `-1:2.0` is not). Strings that dpkg
//! rejects only with a warning (`1.0_1`, `a1.0`) are rejected here too:
//! `--validate-version` rejects them, and `apt` would not install them.

use super::{Subject, VersionError, common_prefix, describe_byte};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// dpkg keeps epochs in an `int` and rejects anything above `INT_MAX`.
pub const MAX_EPOCH: u32 = i32::MAX as u32;

/// A valid Debian version.
///
/// Equality is dpkg's: `1.0`, `0:1.0` and `1.00` are the same version, and
/// [`Hash`] agrees with that, so a `DebVersion` can key a map.
#[derive(Clone, Debug)]
pub struct DebVersion {
    epoch: u32,
    upstream: Box<str>,
    revision: Box<str>,
}

impl DebVersion {
    /// Parses with dpkg's rules; accepts exactly what `dpkg --validate-version`
    /// accepts (see the module documentation).
    pub fn parse(s: &str) -> Result<DebVersion, VersionError> {
        let parts = Parts::parse(s)?;
        Ok(DebVersion {
            epoch: parts.epoch,
            upstream: parts.upstream.into(),
            revision: parts.revision.into(),
        })
    }

    /// Builds a version from its parts, checked as if they were parsed:
    /// the result prints as a string that parses back to the same parts.
    pub fn new(epoch: u32, upstream: &str, revision: &str) -> Result<DebVersion, VersionError> {
        let version = DebVersion {
            epoch,
            upstream: upstream.into(),
            revision: revision.into(),
        };
        let shown = version.to_string();
        let parts = Parts::parse(&shown)?;
        if (parts.epoch, parts.upstream, parts.revision) != (epoch, upstream, revision) {
            return Err(VersionError::new(
                Subject::DebVersion,
                &shown,
                "the parts do not read back: the upstream version may contain '-' only \
                 when there is a revision, and the revision may not contain '-'",
            ));
        }
        Ok(version)
    }

    /// The epoch; 0 when the version has none.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision; empty when the version has none.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            epoch: self.epoch,
            upstream: &self.upstream,
            revision: &self.revision,
        }
    }
}

impl PartialEq for DebVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebVersion {}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

impl Hash for DebVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.epoch);
        hash_part(self.upstream.as_bytes(), state);
        hash_part(self.revision.as_bytes(), state);
    }
}

/// Feeds `s` in a form that is equal exactly when [`verrevcmp`] says equal:
/// leading zeros of every digit run dropped (an all-zero run kept as one
/// `0`), and a final all-zero run dropped, since `1.0` equals `1.` for dpkg
/// while `1.0a` and `1.a` differ.
fn hash_part<H: Hasher>(s: &[u8], state: &mut H) {
    let mut rest = s;
    while !rest.is_empty() {
        let non_digits = rest.iter().take_while(|c| !c.is_ascii_digit()).count();
        let (text, tail) = rest.split_at(non_digits);
        // Equal versions must make the same calls (not every hasher is a
        // byte stream), so empty runs write nothing.
        if !text.is_empty() {
            state.write(text);
        }
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        let (run, tail) = tail.split_at(digits);
        let zeros = run.iter().take_while(|&&c| c == b'0').count();
        let (_, significant) = run.split_at(zeros);
        if !significant.is_empty() {
            state.write(significant);
        } else if !run.is_empty() && !tail.is_empty() {
            state.write(b"0");
        }
        rest = tail;
    }
    // Separates the upstream part from the revision.
    state.write_u8(0xff);
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An upstream part containing ':' needs its epoch written out, even
        // 0, or the first ':' would be read as the end of an epoch.
        if self.epoch != 0 || self.upstream.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl FromStr for DebVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DebVersion::parse(s)
    }
}

impl Serialize for DebVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DebVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(deserializer)?;
        DebVersion::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A parsed version borrowing from its input: what [`compare_str`] uses so
/// that comparing two strings allocates nothing.
#[derive(Clone, Copy, Debug)]
struct Parts<'a> {
    epoch: u32,
    upstream: &'a str,
    revision: &'a str,
}

/// `c_isblank`: what dpkg trims around a version.
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Characters of a plain version: letters, digits and `. + ~ : -`.
const PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        table[c] = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~' | b':' | b'-');
        c += 1;
    }
    table
};

impl<'a> Parts<'a> {
    /// Parses like dpkg: [`Parts::parse_plain`] for the everyday strings,
    /// [`Parts::parse_exact`] for everything else.
    #[inline]
    fn parse(input: &'a str) -> Result<Parts<'a>, VersionError> {
        match Parts::parse_plain(input) {
            Some(parts) => Ok(parts),
            None => Parts::parse_exact(input),
        }
    }

    /// One pass over a version made of plain characters with a small
    /// numeric epoch, the shape of every real version. It accepts only
    /// strings that [`Parts::parse_exact`] accepts, with the same parts, and
    /// leaves everything else (blanks, signs, errors) to it.
    #[inline]
    fn parse_plain(input: &'a str) -> Option<Parts<'a>> {
        let bytes = input.as_bytes();
        if !bytes.first()?.is_ascii_digit() {
            return None;
        }
        let (mut first_colon, mut last_colon, mut last_hyphen) = (None, None, None);
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                b':' => {
                    first_colon = first_colon.or(Some(i));
                    last_colon = Some(i);
                }
                b'-' => last_hyphen = Some(i),
                _ if !PLAIN[usize::from(c)] => return None,
                _ => {}
            }
        }
        let (epoch, rest_at) = match first_colon {
            None => (0, 0),
            Some(colon) => {
                let number = bytes.get(..colon)?;
                // Nine digits always fit below dpkg's maximum.
                if number.len() > 9 || !number.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let epoch = number
                    .iter()
                    .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                (epoch, colon + 1)
            }
        };
        let (upstream, revision) = match last_hyphen {
            Some(hyphen) if hyphen >= rest_at => {
                // No ':' in the revision, and the revision is not empty.
                if last_colon.is_some_and(|colon| colon > hyphen) {
                    return None;
                }
                (input.get(rest_at..hyphen)?, input.get(hyphen + 1..)?)
            }
            Some(_) => return None,
            None => (input.get(rest_at..)?, ""),
        };
        if !upstream.as_bytes().first()?.is_ascii_digit()
            || (last_hyphen.is_some() && revision.is_empty())
        {
            return None;
        }
        Some(Parts {
            epoch,
            upstream,
            revision,
        })
    }

    /// dpkg's `parseversion`, step by step; each error names the check of
    /// dpkg that fails, in dpkg's order.
    fn parse_exact(input: &'a str) -> Result<Parts<'a>, VersionError> {
        let err = |problem: &'static str| VersionError::new(Subject::DebVersion, input, problem);
        let bytes = input.as_bytes();
        if bytes.contains(&0) {
            // dpkg could not even be given such a string.
            return Err(err("contains a NUL character"));
        }
        let start = bytes.iter().take_while(|&&c| is_blank(c)).count();
        let body_len = bytes
            .iter()
            .skip(start)
            .take_while(|&&c| !is_blank(c))
            .count();
        if body_len == 0 {
            return Err(err("the version is empty"));
        }
        let end = start + body_len;
        if bytes.iter().skip(end).any(|&c| !is_blank(c)) {
            return Err(err("contains a space inside the version"));
        }
        // Blanks are ASCII, so these are character boundaries.
        let body = input.get(start..end).unwrap_or_default();

        let (epoch, rest) = match body.find(':') {
            None => (0, body),
            Some(colon) => {
                let (number, rest) = body.split_at(colon);
                let epoch = parse_epoch(number).map_err(err)?;
                let rest = rest.get(1..).unwrap_or_default();
                if rest.is_empty() {
                    return Err(err("nothing after the epoch"));
                }
                (epoch, rest)
            }
        };
        let (upstream, revision) = match rest.rfind('-') {
            None => (rest, ""),
            Some(hyphen) => {
                let (upstream, revision) = rest.split_at(hyphen);
                let revision = revision.get(1..).unwrap_or_default();
                if revision.is_empty() {
                    return Err(err("the revision after the last '-' is empty"));
                }
                (upstream, revision)
            }
        };
        match upstream.as_bytes().first() {
            None => return Err(err("the upstream version is empty")),
            Some(c) if !c.is_ascii_digit() => {
                return Err(err("the upstream version does not start with a digit"));
            }
            Some(_) => {}
        }
        let allowed_upstream = |c: u8| c.is_ascii_alphanumeric() || b".-+~:".contains(&c);
        if let Some(at) = upstream.bytes().position(|c| !allowed_upstream(c)) {
            return Err(VersionError::new(
                Subject::DebVersion,
                input,
                format!(
                    "invalid character {} in the upstream version (allowed: letters, digits and . + ~ - :)",
                    describe_byte(upstream, at)
                ),
            ));
        }
        let allowed_revision = |c: u8| c.is_ascii_alphanumeric() || b".+~".contains(&c);
        if let Some(at) = revision.bytes().position(|c| !allowed_revision(c)) {
            return Err(VersionError::new(
                Subject::DebVersion,
                input,
                format!(
                    "invalid character {} in the revision (allowed: letters, digits and . + ~)",
                    describe_byte(revision, at)
                ),
            ));
        }
        Ok(Parts {
            epoch,
            upstream,
            revision,
        })
    }

    /// `dpkg_version_compare`.
    #[inline]
    fn cmp(&self, other: &Parts<'_>) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream, other.upstream))
            .then_with(|| verrevcmp(self.revision, other.revision))
    }
}

/// The epoch as `strtol(s, &end, 10)` reads it when `end` must land on the
/// colon: optional white space (not blanks: those were trimmed or rejected
/// already), an optional sign, then digits only.
fn parse_epoch(s: &str) -> Result<u32, &'static str> {
    let bytes = s.as_bytes();
    let space = bytes
        .iter()
        .take_while(|&&c| matches!(c, b'\n' | b'\x0b' | b'\x0c' | b'\r'))
        .count();
    let rest = bytes.get(space..).unwrap_or_default();
    let (negative, digits) = match rest.split_first() {
        Some((b'-', digits)) => (true, digits),
        Some((b'+', digits)) => (false, digits),
        _ => (false, rest),
    };
    let count = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if count == 0 {
        return Err("the epoch before ':' is empty");
    }
    if count != digits.len() {
        return Err("the epoch before ':' is not a number");
    }
    let mut value: u64 = 0;
    for &d in digits {
        value = value.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    if negative && value != 0 {
        return Err("the epoch is negative");
    }
    u32::try_from(value)
        .ok()
        .filter(|&epoch| epoch <= MAX_EPOCH)
        .ok_or("the epoch is larger than 2147483647")
}

/// Checks `s` as [`DebVersion::parse`] does, without allocating when valid.
pub fn validate(s: &str) -> Result<(), VersionError> {
    Parts::parse(s).map(|_| ())
}

/// Compares two version strings with dpkg's order; both must be valid.
/// Allocates nothing unless one of them is invalid.
pub fn compare_str(a: &str, b: &str) -> Result<Ordering, VersionError> {
    if a == b {
        return validate(a).map(|()| Ordering::Equal);
    }
    let a = Parts::parse(a)?;
    let b = Parts::parse(b)?;
    Ok(a.cmp(&b))
}

/// dpkg's `order()`: the weight of a non-digit character. Letters sort
/// first (by ASCII), then everything else; `~` sorts before even the end
/// of the string. Bytes above 0x7f get their value, as they do in dpkg
/// where `char` is signed (`c + 256` of a negative `c`). NUL, which dpkg
/// never sees, weighs as an ordinary punctuation byte.
#[inline(always)]
fn order(c: u8) -> i32 {
    if c.is_ascii_alphabetic() {
        i32::from(c)
    } else if c == b'~' {
        -1
    } else if c >= 0x80 {
        i32::from(c)
    } else {
        i32::from(c) + 256
    }
}

/// Weight of the byte at `i`, where digits and the end of the string both
/// weigh 0 (that is how dpkg's loop sees them).
#[inline(always)]
fn weight_at(s: &[u8], i: usize) -> i32 {
    match s.get(i) {
        Some(&c) if !c.is_ascii_digit() => order(c),
        _ => 0,
    }
}

#[inline(always)]
fn is_digit_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// dpkg's `verrevcmp`: compares an upstream version or a revision.
///
/// The strings alternate between non-digit and digit runs. Non-digit runs
/// compare character by character with [`order`]; digit runs compare as
/// numbers of any length (leading zeros ignored, no overflow). Allocates
/// nothing. Any string is accepted; the order is total on all strings.
pub fn verrevcmp(a: &str, b: &str) -> Ordering {
    verrevcmp_bytes(a.as_bytes(), b.as_bytes())
}

fn verrevcmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    // The common prefix compares equal whatever it is; restart at the
    // beginning of the digit run it ends in (a number must be read whole).
    let mut start = common_prefix(a, b);
    while start > 0 && is_digit_at(a, start - 1) {
        start -= 1;
    }
    let (mut i, mut j) = (start, start);
    loop {
        // Non-digit run: both advance together while the weights agree.
        while (i < a.len() && !is_digit_at(a, i)) || (j < b.len() && !is_digit_at(b, j)) {
            let (wa, wb) = (weight_at(a, i), weight_at(b, j));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // Digit run: skip leading zeros, then longer number wins, then the
        // first differing digit.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let da = a.get(i..).unwrap_or_default();
        let db = b.get(j..).unwrap_or_default();
        let la = da.iter().take_while(|c| c.is_ascii_digit()).count();
        let lb = db.iter().take_while(|c| c.is_ascii_digit()).count();
        if la != lb {
            return la.cmp(&lb);
        }
        let numbers = da.get(..la).cmp(&db.get(..lb));
        if numbers != Ordering::Equal {
            return numbers;
        }
        i += la;
        j += lb;
        if i >= a.len() && j >= b.len() {
            return Ordering::Equal;
        }
    }
}

/// Parses `name=version` or `name:arch=version`, the form apt takes on its
/// command line and baselines use to pin a Debian package.
pub fn parse_name_version(s: &str) -> Result<(String, Option<String>, DebVersion), VersionError> {
    let err = |problem: String| VersionError::new(Subject::DebPackage, s, problem);
    let Some((spec, version)) = s.split_once('=') else {
        return Err(err("expected 'name=version' or 'name:arch=version'".into()));
    };
    let (name, arch) = match spec.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (spec, None),
    };
    check_package_name(name).map_err(|problem| err(format!("package name: {problem}")))?;
    if let Some(arch) = arch {
        check_arch(arch).map_err(|problem| err(format!("architecture: {problem}")))?;
    }
    let version =
        DebVersion::parse(version).map_err(|e| e.within(Subject::DebPackage, s, "version"))?;
    Ok((name.to_string(), arch.map(str::to_string), version))
}

/// dpkg's `pkg_name_is_illegal`.
fn check_package_name(name: &str) -> Result<(), String> {
    match name.as_bytes().first() {
        None => return Err("empty".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err("must start with a letter or digit".into());
        }
        Some(_) => {}
    }
    match name
        .bytes()
        .position(|c| !c.is_ascii_alphanumeric() && !b"-+._".contains(&c))
    {
        Some(at) => Err(format!(
            "character {} not allowed (only letters, digits and - + . _)",
            describe_byte(name, at)
        )),
        None => Ok(()),
    }
}

/// dpkg's `dpkg_arch_name_is_illegal`.
fn check_arch(arch: &str) -> Result<(), String> {
    match arch.as_bytes().first() {
        None => return Err("empty".into()),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err("must start with a letter or digit".into());
        }
        Some(_) => {}
    }
    match arch
        .bytes()
        .position(|c| !c.is_ascii_alphanumeric() && c != b'-')
    {
        Some(at) => Err(format!(
            "character {} not allowed (only letters, digits and -)",
            describe_byte(arch, at)
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::hash_map::DefaultHasher;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        /// The one-pass parser is only a shortcut: wherever it answers, the
        /// exact parser gives the same parts.
        #[test]
        fn plain_parse_is_a_shortcut(s in "[0-9:]{0,3}[0-9a-z.+~:_ -]{0,12}") {
            if let Some(plain) = Parts::parse_plain(&s) {
                let exact = Parts::parse_exact(&s);
                prop_assert!(exact.is_ok(), "{:?}: {:?}", s, exact);
                let exact = exact.unwrap();
                prop_assert_eq!(
                    (plain.epoch, plain.upstream, plain.revision),
                    (exact.epoch, exact.upstream, exact.revision)
                );
            }
        }
    }

    fn v(s: &str) -> DebVersion {
        DebVersion::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problem(s: &str) -> String {
        let err = DebVersion::parse(s).expect_err(s);
        let text = err.to_string();
        let quoted = format!("'{}'", s.escape_debug());
        assert!(
            text.starts_with("invalid Debian version ") && text.contains(&quoted),
            "message does not name the input: {text}"
        );
        assert_eq!(err.input(), s);
        err.problem().to_string()
    }

    #[test]
    fn parses_the_parts() {
        let x = v("1:2.30-4ubuntu0.1");
        assert_eq!(
            (x.epoch(), x.upstream(), x.revision()),
            (1, "2.30", "4ubuntu0.1")
        );
        let x = v("2.36-9+deb12u4");
        assert_eq!(
            (x.epoch(), x.upstream(), x.revision()),
            (0, "2.36", "9+deb12u4")
        );
        let x = v("1.0");
        assert_eq!((x.epoch(), x.upstream(), x.revision()), (0, "1.0", ""));
        // The last '-' starts the revision; earlier ones belong upstream.
        let x = v("1.0-beta-2");
        assert_eq!((x.upstream(), x.revision()), ("1.0-beta", "2"));
        // Later colons belong upstream.
        let x = v("1:2:3");
        assert_eq!((x.epoch(), x.upstream()), (1, "2:3"));
        // dpkg trims blanks and reads the epoch with strtol.
        let x = v(" \t1:1.0 ");
        assert_eq!((x.epoch(), x.upstream()), (1, "1.0"));
        assert_eq!(v("+1:1.0").epoch(), 1);
        assert_eq!(v("-0:1.0").epoch(), 0);
        assert_eq!(v("\n7:1.0").epoch(), 7);
        assert_eq!(v("0002147483647:1").epoch(), MAX_EPOCH);
    }

    #[test]
    fn errors_name_the_input_and_the_problem() {
        assert_eq!(problem(""), "the version is empty");
        assert_eq!(problem("  "), "the version is empty");
        assert_eq!(problem("1:"), "nothing after the epoch");
        assert_eq!(problem("1.0-"), "the revision after the last '-' is empty");
        assert_eq!(problem(":1.0"), "the epoch before ':' is empty");
        assert_eq!(problem("a:1.0"), "the epoch before ':' is empty");
        assert_eq!(problem("1a:1.0"), "the epoch before ':' is not a number");
        assert_eq!(problem("-1:1.0"), "the epoch is negative");
        assert_eq!(
            problem("2147483648:1"),
            "the epoch is larger than 2147483647"
        );
        assert_eq!(
            problem("99999999999999999999999:1"),
            "the epoch is larger than 2147483647"
        );
        assert_eq!(problem("1 .0"), "contains a space inside the version");
        assert_eq!(problem("1:-1"), "the upstream version is empty");
        assert_eq!(
            problem("a1.0"),
            "the upstream version does not start with a digit"
        );
        assert_eq!(
            problem("1::1"),
            "the upstream version does not start with a digit"
        );
        assert!(problem("1_0").starts_with("invalid character '_' in the upstream version"));
        assert!(problem("1.0é").starts_with("invalid character 'é' in the upstream version"));
        assert!(problem("1.0\n").starts_with("invalid character '\\n' in the upstream"));
        assert!(problem("1.0-a=b").starts_with("invalid character '=' in the revision"));
        assert!(problem("1.0-a_b").starts_with("invalid character '_' in the revision"));
        assert_eq!(problem("1.0\0"), "contains a NUL character");
        let err = DebVersion::parse("1:").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid Debian version '1:': nothing after the epoch"
        );
    }

    #[test]
    fn orders_like_dpkg() {
        use Ordering::*;
        for (a, b, expected) in [
            ("1.0", "1.0", Equal),
            ("1.0", "0:1.0", Equal),
            ("1.0", "1.00", Equal),
            ("1.0", "1.", Equal),
            ("1.0a", "1.a", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0~a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.", Less),
            ("1.0", "1.0.0", Less),
            ("1:0.1", "2.0", Greater),
            ("1.10", "1.9", Greater),
            ("1.0-1", "1.0-1~bpo1", Greater),
            (
                "99999999999999999999999999",
                "99999999999999999999999998",
                Greater,
            ),
            ("0000000000000000000000000001", "1", Equal),
        ] {
            assert_eq!(v(a).cmp(&v(b)), expected, "{a} vs {b}");
            assert_eq!(v(b).cmp(&v(a)), expected.reverse(), "{b} vs {a}");
            assert_eq!(compare_str(a, b), Ok(expected), "{a} vs {b}");
        }
    }

    #[test]
    fn hash_agrees_with_equality() {
        fn h(x: &DebVersion) -> u64 {
            let mut s = DefaultHasher::new();
            x.hash(&mut s);
            s.finish()
        }
        for (a, b) in [
            ("1.0", "0:1.0"),
            ("1.0", "1.00"),
            ("1.0", "1."),
            ("1.01a", "1.1a"),
            ("1.0a", "1.00a"),
            ("1.0-0", "1.0"),
            ("1.0-00", "1.0-"),
        ] {
            // "1.0-" is invalid; compare the strings through verrevcmp then.
            if let (Ok(x), Ok(y)) = (DebVersion::parse(a), DebVersion::parse(b)) {
                assert_eq!(x, y, "{a} {b}");
                assert_eq!(h(&x), h(&y), "{a} {b}");
            }
        }
        assert_ne!(h(&v("1.0a")), h(&v("1.a")));
        assert_ne!(h(&v("1.0-1")), h(&v("1.01")));
    }

    #[test]
    fn display_round_trips() {
        for s in ["1:2.0-1", "2.0", "0:1:2", "1.0-a-b", "+3:1.0", " 1.0"] {
            let x = v(s);
            let shown = x.to_string();
            let y = v(&shown);
            assert_eq!(x, y, "{s} -> {shown}");
            assert_eq!(
                (x.epoch(), x.upstream(), x.revision()),
                (y.epoch(), y.upstream(), y.revision())
            );
        }
        assert_eq!(v("0:1:2").to_string(), "0:1:2");
        assert_eq!(v("0:1.0").to_string(), "1.0");
        assert_eq!(v("+3:1.0-1").to_string(), "3:1.0-1");
    }

    #[test]
    fn new_checks_the_parts() {
        assert_eq!(
            DebVersion::new(1, "2.0", "3").unwrap().to_string(),
            "1:2.0-3"
        );
        assert!(DebVersion::new(MAX_EPOCH + 1, "2.0", "").is_err());
        assert!(DebVersion::new(0, "a", "").is_err());
        assert!(DebVersion::new(0, "1.0", "a-b").is_err());
        assert!(DebVersion::new(0, "1-0", "").is_err());
    }

    #[test]
    fn serde_uses_the_string_form() {
        let x = v("1:2.0-3");
        assert_eq!(serde_json::to_string(&x).unwrap(), "\"1:2.0-3\"");
        let y: DebVersion = serde_json::from_str("\"1:2.0-3\"").unwrap();
        assert_eq!(x, y);
        let err = serde_json::from_str::<DebVersion>("\"1:\"").unwrap_err();
        assert!(err.to_string().contains("'1:'"), "{err}");
    }

    #[test]
    fn name_version_forms() {
        let (name, arch, version) = parse_name_version("libc6=2.36-9+deb12u4").unwrap();
        assert_eq!(
            (name.as_str(), arch, version.to_string()),
            ("libc6", None, "2.36-9+deb12u4".into())
        );
        let (name, arch, version) = parse_name_version("libssl3:amd64=3.0.11-1~deb12u2").unwrap();
        assert_eq!(name, "libssl3");
        assert_eq!(arch.as_deref(), Some("amd64"));
        assert_eq!(version.upstream(), "3.0.11");
        let (_, _, version) = parse_name_version("tzdata=1:2024a-0+deb12u1").unwrap();
        assert_eq!(version.epoch(), 1);
        for (bad, problem) in [
            ("libc6", "expected 'name=version'"),
            ("=1.0", "package name: empty"),
            ("-x=1.0", "package name: must start"),
            ("li bc=1.0", "package name: character ' '"),
            ("libc6:=1.0", "architecture: empty"),
            ("libc6:am_d64=1.0", "architecture: character '_'"),
            ("libc6=", "version: the version is empty"),
            ("libc6=1:", "version: nothing after the epoch"),
        ] {
            let err = parse_name_version(bad).expect_err(bad);
            assert!(err.problem().starts_with(problem), "{bad}: {err}");
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
            assert_eq!(err.subject(), Subject::DebPackage);
        }
    }
}
