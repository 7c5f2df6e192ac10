//! RPM versions: `rpmvercmp` exactly as librpm 4.18 has it, the
//! `[epoch:]version[-release]` triple ([`Evr`]) and full package names
//! ([`Nevra`]) in both the `name-version-release.arch` form of `rpm -q` and
//! the `name.arch:epoch:version-release` title form of Patch Manager.
//!
//! librpm accepts almost any string as a version; we are stricter where a
//! lax string would become ambiguous once printed: no white space or
//! control characters, `:` only after a numeric epoch, `-` only between
//! version and release, and no empty parts. These are also the rules of
//! `rpmbuild`, so no real package is refused.

use super::{Subject, VersionError, common_prefix};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// What `rpmvercmp` skips between segments: everything except ASCII
/// letters, digits, `~` and `^` (librpm's `risalnum` is ASCII-only, so
/// UTF-8 bytes are separators too).
#[inline(always)]
fn is_separator(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && c != b'~' && c != b'^'
}

/// librpm's `rpmvercmp`: compares a version or a release string.
///
/// Segments are maximal runs of digits or of ASCII letters; anything else
/// separates them and is otherwise ignored (`1.0` equals `1_0`). Numbers
/// compare by value at any length, letters by bytes, and a number is newer
/// than letters. `~` sorts before anything, even the end of the string
/// (`1.0~rc1` < `1.0`); `^` sorts after the end of the string but before
/// anything else (`1.0` < `1.0^git1` < `1.0.1`). When one string runs out of
/// segments, the one with segments left is newer.
///
/// Allocates nothing; any string is accepted. One deliberate difference: a
/// NUL byte, which ends a C string, is an ordinary separator here.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    rpmvercmp_bytes(a.as_bytes(), b.as_bytes())
}

fn rpmvercmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    // Both strings tokenize identically through their common prefix; restart
    // at the beginning of the letter/digit run it ends in.
    let mut start = common_prefix(a, b);
    while start > 0 && a.get(start - 1).is_some_and(u8::is_ascii_alphanumeric) {
        start -= 1;
    }
    let (mut i, mut j) = (start, start);
    loop {
        while a.get(i).is_some_and(|&c| is_separator(c)) {
            i += 1;
        }
        while b.get(j).is_some_and(|&c| is_separator(c)) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        // Tilde sorts before everything else, even the end.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // Caret: like tilde, except that the end of the string sorts first.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let Some(first) = ca else { break };
        if cb.is_none() {
            break;
        }

        let sa = a.get(i..).unwrap_or_default();
        let sb = b.get(j..).unwrap_or_default();
        if first.is_ascii_digit() {
            let la = sa.iter().take_while(|c| c.is_ascii_digit()).count();
            let lb = sb.iter().take_while(|c| c.is_ascii_digit()).count();
            // A number against letters: the number is newer.
            if lb == 0 {
                return Ordering::Greater;
            }
            let za = sa.iter().take(la).take_while(|&&c| c == b'0').count();
            let zb = sb.iter().take(lb).take_while(|&&c| c == b'0').count();
            let (na, nb) = (la - za, lb - zb);
            if na != nb {
                return na.cmp(&nb);
            }
            let numbers = sa.get(za..la).cmp(&sb.get(zb..lb));
            if numbers != Ordering::Equal {
                return numbers;
            }
            i += la;
            j += lb;
        } else {
            let la = sa.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let lb = sb.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            if lb == 0 {
                return Ordering::Less;
            }
            let words = sa.get(..la).cmp(&sb.get(..lb));
            if words != Ordering::Equal {
                return words;
            }
            i += la;
            j += lb;
        }
    }
    // All segments agreed; whichever string has anything left is newer
    // (what is left can only be separators... or more segments).
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, _) => Ordering::Greater,
    }
}

/// Feeds `s` as the token sequence `rpmvercmp` compares: equal token
/// sequences are exactly the strings it calls equal.
fn hash_part<H: Hasher>(s: &[u8], state: &mut H) {
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'~' || c == b'^' {
            state.write_u8(c);
            rest = tail;
        } else if c.is_ascii_digit() {
            let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            let (run, tail) = rest.split_at(len);
            let zeros = run.iter().take_while(|&&c| c == b'0').count();
            state.write_u8(1);
            state.write(run.get(zeros..).unwrap_or_default());
            rest = tail;
        } else if c.is_ascii_alphabetic() {
            let len = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let (run, tail) = rest.split_at(len);
            state.write_u8(2);
            state.write(run);
            rest = tail;
        } else {
            rest = tail;
        }
    }
    state.write_u8(0xff);
}

/// A borrowed, validated `[epoch:]version[-release]`: what [`compare_str`]
/// uses so that comparing two strings allocates nothing.
#[derive(Clone, Copy, Debug)]
struct EvrRef<'a> {
    epoch: Option<u32>,
    version: &'a str,
    /// Empty when absent (an empty release after `-` is refused).
    release: &'a str,
}

impl<'a> EvrRef<'a> {
    /// [`EvrRef::parse_plain`] for the everyday strings,
    /// [`EvrRef::parse_exact`] for everything else.
    #[inline]
    fn parse(input: &'a str, subject: Subject) -> Result<EvrRef<'a>, VersionError> {
        match EvrRef::parse_plain(input) {
            Some(parts) => Ok(parts),
            None => EvrRef::parse_exact(input, subject),
        }
    }

    /// One pass over printable ASCII with at most one ':' after a small
    /// epoch and at most one '-'. It accepts only strings that
    /// [`EvrRef::parse_exact`] accepts, with the same parts, and leaves
    /// everything else (and every error) to it.
    #[inline]
    fn parse_plain(input: &'a str) -> Option<EvrRef<'a>> {
        let bytes = input.as_bytes();
        let (mut colon, mut hyphen) = (None, None);
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                b':' if colon.is_none() => colon = Some(i),
                b'-' if hyphen.is_none() => hyphen = Some(i),
                b':' | b'-' => return None,
                0x21..=0x7e => {}
                _ => return None,
            }
        }
        let (epoch, rest_at) = match colon {
            None => (None, 0),
            Some(colon) => {
                let number = bytes.get(..colon)?;
                // Nine digits always fit in a u32.
                if number.is_empty() || number.len() > 9 || !number.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let epoch = number
                    .iter()
                    .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                (Some(epoch), colon + 1)
            }
        };
        let (version, release) = match hyphen {
            None => (input.get(rest_at..)?, ""),
            Some(hyphen) if hyphen > rest_at => {
                (input.get(rest_at..hyphen)?, input.get(hyphen + 1..)?)
            }
            Some(_) => return None,
        };
        if version.is_empty() || (hyphen.is_some() && release.is_empty()) {
            return None;
        }
        Some(EvrRef {
            epoch,
            version,
            release,
        })
    }

    /// The careful parse, with a message for every problem.
    fn parse_exact(input: &'a str, subject: Subject) -> Result<EvrRef<'a>, VersionError> {
        let err = |problem: Cow<'static, str>| VersionError::new(subject, input, problem);
        if input.is_empty() {
            return Err(err("the version is empty".into()));
        }
        check_characters(input).map_err(&err)?;
        let (epoch, rest) = match input.split_once(':') {
            None => (None, input),
            Some((number, rest)) => {
                let epoch = parse_epoch(number).map_err(|p| err(p.into()))?;
                if rest.contains(':') {
                    return Err(err(
                        "more than one ':' (only the epoch ends with ':')".into()
                    ));
                }
                if rest.is_empty() {
                    return Err(err("nothing after the epoch".into()));
                }
                (Some(epoch), rest)
            }
        };
        let (version, release) = match rest.rsplit_once('-') {
            None => (rest, ""),
            Some((version, release)) => {
                if release.is_empty() {
                    return Err(err("the release after the '-' is empty".into()));
                }
                if version.is_empty() {
                    return Err(err("the version before the '-' is empty".into()));
                }
                if version.contains('-') {
                    return Err(err(
                        "more than one '-' (neither the version nor the release may contain '-')"
                            .into(),
                    ));
                }
                (version, release)
            }
        };
        Ok(EvrRef {
            epoch,
            version,
            release,
        })
    }

    /// The total order of [`Evr`].
    #[inline]
    fn cmp(&self, other: &EvrRef<'_>) -> Ordering {
        self.epoch
            .unwrap_or(0)
            .cmp(&other.epoch.unwrap_or(0))
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(|| rpmvercmp(self.release, other.release))
    }

    /// librpm's `rpmverCmp`, see [`Evr::cmp_rpmver`].
    fn cmp_rpmver(&self, other: &EvrRef<'_>) -> Ordering {
        self.epoch
            .unwrap_or(0)
            .cmp(&other.epoch.unwrap_or(0))
            .then_with(|| rpmvercmp(self.version, other.version))
            .then_with(
                || match (self.release.is_empty(), other.release.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => rpmvercmp(self.release, other.release),
                },
            )
    }
}

/// White space and control characters would make a printed version
/// ambiguous (and `rpm` never prints them in one).
fn check_characters(s: &str) -> Result<(), Cow<'static, str>> {
    match s
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        Some((_, c)) => Err(format!(
            "contains white space or a control character ('{}')",
            c.escape_debug()
        )
        .into()),
        None => Ok(()),
    }
}

fn parse_epoch(number: &str) -> Result<u32, &'static str> {
    if number.is_empty() {
        return Err("nothing before the ':' (expected a numeric epoch)");
    }
    if !number.bytes().all(|c| c.is_ascii_digit()) {
        return Err("the epoch before ':' is not a number");
    }
    let digits = number.trim_start_matches('0');
    if digits.len() > 10 {
        return Err("the epoch is larger than 4294967295");
    }
    let mut value: u64 = 0;
    for d in digits.bytes() {
        value = value * 10 + u64::from(d - b'0');
    }
    u32::try_from(value).map_err(|_| "the epoch is larger than 4294967295")
}

/// Checks `s` as [`Evr::parse`] does, without allocating when valid.
pub fn validate(s: &str) -> Result<(), VersionError> {
    EvrRef::parse(s, Subject::RpmVersion).map(|_| ())
}

/// Compares two `[epoch:]version[-release]` strings with the total order of
/// [`Evr`]; both must be valid. Allocates nothing unless one is invalid.
pub fn compare_str(a: &str, b: &str) -> Result<Ordering, VersionError> {
    if a == b {
        return validate(a).map(|()| Ordering::Equal);
    }
    let a = EvrRef::parse(a, Subject::RpmVersion)?;
    let b = EvrRef::parse(b, Subject::RpmVersion)?;
    Ok(a.cmp(&b))
}

/// An RPM `[epoch:]version[-release]`.
///
/// # Order
/// A total order: epoch (a missing epoch counts as 0), then [`rpmvercmp`] of
/// the versions, then [`rpmvercmp`] of the releases, a missing release
/// sorting like an empty string. Equality is that order's (`1.0` equals
/// `0:1.0` and `1_0`), and [`Hash`] agrees with it.
///
/// librpm has two other rules. `rpmverCmp` (rpm 4.18, also `rpm.vercmp` in
/// Lua) sorts a missing release *before* any present one; ours differs from
/// it only when exactly one side has a release and that release is no newer
/// than the empty string for `rpmvercmp`, i.e. it is made of separators only
/// (`1.0` vs `1.0-.`) or starts with `~` (`1.0` vs `1.0-~1`).
/// [`Evr::cmp_rpmver`] gives that order. Dependency matching
/// (`rpmdsCompare`, `rpmverOverlap`) instead ignores the release when either
/// side lacks one, so `1.0` "matches" both `1.0-1` and `1.0-2`; that is a
/// match relation, not an order, and is not what baselines need.
#[derive(Clone, Debug)]
pub struct Evr {
    epoch: Option<u32>,
    version: Box<str>,
    release: Box<str>,
}

impl Evr {
    /// Parses `[epoch:]version[-release]` (see the module documentation for
    /// what is refused).
    pub fn parse(s: &str) -> Result<Evr, VersionError> {
        EvrRef::parse(s, Subject::RpmVersion).map(Evr::from_ref)
    }

    /// Builds an EVR from its parts; `release` is empty when there is none.
    /// The parts are checked as if they were parsed.
    pub fn new(epoch: Option<u32>, version: &str, release: &str) -> Result<Evr, VersionError> {
        let evr = Evr {
            epoch,
            version: version.into(),
            release: release.into(),
        };
        let shown = evr.to_string();
        let parts = EvrRef::parse(&shown, Subject::RpmVersion)?;
        if (parts.epoch, parts.version, parts.release) != (epoch, version, release) {
            return Err(VersionError::new(
                Subject::RpmVersion,
                &shown,
                "the parts do not read back: the version may not be empty, and \
                 neither the version nor the release may contain ':' or '-'",
            ));
        }
        Ok(evr)
    }

    fn from_ref(parts: EvrRef<'_>) -> Evr {
        Evr {
            epoch: parts.epoch,
            version: parts.version.into(),
            release: parts.release.into(),
        }
    }

    fn as_ref(&self) -> EvrRef<'_> {
        EvrRef {
            epoch: self.epoch,
            version: &self.version,
            release: &self.release,
        }
    }

    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }

    pub fn epoch_or_zero(&self) -> u32 {
        self.epoch.unwrap_or(0)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The release; empty when there is none.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// librpm 4.18's `rpmverCmp` (what `rpm.vercmp` in rpm's Lua returns):
    /// like [`Ord`], except that a missing release sorts before every
    /// present release. Also a total order, but not the one [`Eq`] uses.
    pub fn cmp_rpmver(&self, other: &Evr) -> Ordering {
        self.as_ref().cmp_rpmver(&other.as_ref())
    }
}

impl PartialEq for Evr {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Evr {}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Evr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp(&other.as_ref())
    }
}

impl Hash for Evr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.epoch_or_zero());
        hash_part(self.version.as_bytes(), state);
        hash_part(self.release.as_bytes(), state);
    }
}

impl fmt::Display for Evr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(epoch) = self.epoch {
            write!(f, "{epoch}:")?;
        }
        f.write_str(&self.version)?;
        if !self.release.is_empty() {
            write!(f, "-{}", self.release)?;
        }
        Ok(())
    }
}

impl FromStr for Evr {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Evr::parse(s)
    }
}

impl Serialize for Evr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Evr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(deserializer)?;
        Evr::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A package: name, epoch, version, release and architecture.
///
/// Equality is structural (a missing epoch differs from epoch 0 here);
/// compare versions through [`Nevra::evr`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nevra {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    pub arch: String,
}

impl Nevra {
    /// Parses `name-[epoch:]version-release.arch` (what `rpm -q` prints,
    /// with the epoch yum puts there) or `epoch:name-version-release.arch`
    /// (dnf's form). The name may contain `-` and `.`; the architecture is
    /// after the last `.`, the release between the last `-` and that `.`.
    pub fn parse(s: &str) -> Result<Nevra, VersionError> {
        let err = |problem: Cow<'static, str>| VersionError::new(Subject::Nevra, s, problem);
        if s.is_empty() {
            return Err(err("empty".into()));
        }
        check_characters(s).map_err(&err)?;
        let (leading_epoch, rest) = match s.split_once(':') {
            Some((number, rest))
                if !number.is_empty() && number.bytes().all(|c| c.is_ascii_digit()) =>
            {
                (Some(parse_epoch(number).map_err(|p| err(p.into()))?), rest)
            }
            _ => (None, s),
        };
        let shape = "expected name-version-release.arch";
        let Some((nvr, arch)) = rest.rsplit_once('.') else {
            return Err(err(format!("{shape}: no '.' before an architecture").into()));
        };
        check_arch(arch).map_err(&err)?;
        let Some((nv, _release)) = nvr.rsplit_once('-') else {
            return Err(err(format!("{shape}: no '-' before a release").into()));
        };
        let Some((name, _)) = nv.rsplit_once('-') else {
            return Err(err(
                format!("{shape}: no '-' between name and version").into()
            ));
        };
        check_name(name).map_err(&err)?;
        let evr_text = nvr.get(name.len() + 1..).unwrap_or_default();
        let evr = EvrRef::parse(evr_text, Subject::Nevra)
            .map_err(|e| e.within(Subject::Nevra, s, "version-release"))?;
        let epoch = match (leading_epoch, evr.epoch) {
            (Some(_), Some(_)) => return Err(err("two epochs".into())),
            (leading, inner) => leading.or(inner),
        };
        Ok(Nevra {
            name: name.to_string(),
            epoch,
            version: evr.version.to_string(),
            release: evr.release.to_string(),
            arch: arch.to_string(),
        })
    }

    /// Parses Patch Manager's package title `name.arch:epoch:version-release`
    /// (also accepted without the epoch: `name.arch:version-release`).
    pub fn parse_title(s: &str) -> Result<Nevra, VersionError> {
        let err = |problem: Cow<'static, str>| VersionError::new(Subject::PackageTitle, s, problem);
        if s.is_empty() {
            return Err(err("empty".into()));
        }
        check_characters(s).map_err(&err)?;
        let shape = "expected name.arch:epoch:version-release";
        let Some((name_arch, evr_text)) = s.split_once(':') else {
            return Err(err(format!("{shape}: no ':' after the architecture").into()));
        };
        let Some((name, arch)) = name_arch.rsplit_once('.') else {
            return Err(err(format!(
                "{shape}: no '.' between name and architecture"
            )
            .into()));
        };
        check_name(name).map_err(&err)?;
        check_arch(arch).map_err(&err)?;
        let evr = EvrRef::parse(evr_text, Subject::PackageTitle)
            .map_err(|e| e.within(Subject::PackageTitle, s, "epoch:version-release"))?;
        if evr.release.is_empty() {
            return Err(err(format!("{shape}: no '-' before a release").into()));
        }
        Ok(Nevra {
            name: name.to_string(),
            epoch: evr.epoch,
            version: evr.version.to_string(),
            release: evr.release.to_string(),
            arch: arch.to_string(),
        })
    }

    pub fn evr(&self) -> Evr {
        Evr {
            epoch: self.epoch,
            version: self.version.as_str().into(),
            release: self.release.as_str().into(),
        }
    }

    /// Patch Manager's title form `name.arch:epoch:version-release`, with
    /// epoch 0 written out when there is none.
    pub fn title(&self) -> String {
        format!(
            "{}.{}:{}:{}-{}",
            self.name,
            self.arch,
            self.epoch.unwrap_or(0),
            self.version,
            self.release
        )
    }
}

fn check_name(name: &str) -> Result<(), Cow<'static, str>> {
    if name.is_empty() {
        return Err("the package name is empty".into());
    }
    if name.contains(':') {
        return Err("the package name contains ':'".into());
    }
    Ok(())
}

fn check_arch(arch: &str) -> Result<(), Cow<'static, str>> {
    if arch.is_empty() {
        return Err("the architecture after the last '.' is empty".into());
    }
    if arch.contains([':', '-']) {
        return Err("the architecture after the last '.' contains ':' or '-'".into());
    }
    Ok(())
}

impl fmt::Display for Nevra {
    /// `name-[epoch:]version-release.arch`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.name)?;
        if let Some(epoch) = self.epoch {
            write!(f, "{epoch}:")?;
        }
        write!(f, "{}-{}.{}", self.version, self.release, self.arch)
    }
}

impl FromStr for Nevra {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Nevra::parse(s)
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
        fn plain_parse_is_a_shortcut(s in "[0-9:]{0,3}[0-9a-z.+~^:_ é-]{0,12}") {
            if let Some(plain) = EvrRef::parse_plain(&s) {
                let exact = EvrRef::parse_exact(&s, Subject::RpmVersion);
                prop_assert!(exact.is_ok(), "{:?}: {:?}", s, exact);
                let exact = exact.unwrap();
                prop_assert_eq!(
                    (plain.epoch, plain.version, plain.release),
                    (exact.epoch, exact.version, exact.release)
                );
            }
        }
    }

    fn e(s: &str) -> Evr {
        Evr::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn problem(s: &str) -> String {
        let err = Evr::parse(s).expect_err(s);
        let text = err.to_string();
        let quoted = format!("'{}'", s.escape_debug());
        assert!(
            text.starts_with("invalid RPM version ") && text.contains(&quoted),
            "message does not name the input: {text}"
        );
        assert_eq!(err.input(), s);
        err.problem().to_string()
    }

    #[test]
    fn rpmvercmp_cases() {
        use Ordering::*;
        for (a, b, expected) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1_0", Equal),
            ("1.0", "1..0", Equal),
            ("1.0", "1.0.", Equal),
            ("1.0", "1.0.0", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Greater),
            ("1.0a", "1.0.1", Less),
            ("1a", "1.a", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0^git1", "1.0a", Less),
            ("1.0^", "1.0~", Greater),
            ("010", "10", Equal),
            ("10", "9", Greater),
            ("a", "1", Less),
            ("abc", "abd", Less),
            ("B", "a", Less),
            ("", "~", Greater),
            ("", "^", Less),
            ("", ".", Equal),
            ("1é", "1", Equal),
            (
                "99999999999999999999999999",
                "99999999999999999999999998",
                Greater,
            ),
        ] {
            assert_eq!(rpmvercmp(a, b), expected, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn parses_evr() {
        let x = e("1:1.0.2k-24.amzn2.0.6");
        assert_eq!(
            (x.epoch(), x.version(), x.release()),
            (Some(1), "1.0.2k", "24.amzn2.0.6")
        );
        let x = e("5.14.0");
        assert_eq!((x.epoch(), x.version(), x.release()), (None, "5.14.0", ""));
        assert_eq!(x.epoch_or_zero(), 0);
        assert_eq!(e("007:1").epoch(), Some(7));
        assert_eq!(e("4294967295:1").epoch(), Some(u32::MAX));
        assert_eq!(e("1:1.0-2").to_string(), "1:1.0-2");
        assert_eq!(e("0:1.0-2").to_string(), "0:1.0-2");
        assert_eq!(e("1.0-2").to_string(), "1.0-2");
    }

    #[test]
    fn evr_errors_name_the_input() {
        assert_eq!(problem(""), "the version is empty");
        assert_eq!(problem("1:"), "nothing after the epoch");
        assert_eq!(
            problem(":1"),
            "nothing before the ':' (expected a numeric epoch)"
        );
        assert_eq!(problem("x:1"), "the epoch before ':' is not a number");
        assert_eq!(
            problem("4294967296:1"),
            "the epoch is larger than 4294967295"
        );
        assert_eq!(
            problem("99999999999999999999:1"),
            "the epoch is larger than 4294967295"
        );
        assert!(problem("1:2:3").starts_with("more than one ':'"));
        assert_eq!(problem("1.0-"), "the release after the '-' is empty");
        assert_eq!(problem("-1"), "the version before the '-' is empty");
        assert!(problem("1-2-3").starts_with("more than one '-'"));
        assert!(problem("1.0 -1").starts_with("contains white space"));
        assert!(problem("1.0\0").starts_with("contains white space or a control"));
        let err = Evr::parse("1:").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid RPM version '1:': nothing after the epoch"
        );
    }

    #[test]
    fn evr_order_and_rpmver_order() {
        use Ordering::*;
        for (a, b, ours, rpmver) in [
            ("1.0-1", "1.0-2", Less, Less),
            ("1:1.0", "2.0", Greater, Greater),
            ("0:1.0", "1.0", Equal, Equal),
            ("1.0", "1.0-1", Less, Less),
            ("1.0", "1.0-.", Equal, Less),
            ("1.0", "1.0-~1", Greater, Less),
            ("1.0-1", "1.0-1.", Equal, Equal),
            ("2:0.1", "10:0.1", Less, Less),
        ] {
            let (x, y) = (e(a), e(b));
            assert_eq!(x.cmp(&y), ours, "{a} vs {b}");
            assert_eq!(y.cmp(&x), ours.reverse(), "{b} vs {a}");
            assert_eq!(compare_str(a, b), Ok(ours), "{a} vs {b}");
            assert_eq!(x.cmp_rpmver(&y), rpmver, "rpmver {a} vs {b}");
            assert_eq!(y.cmp_rpmver(&x), rpmver.reverse(), "rpmver {b} vs {a}");
        }
    }

    #[test]
    fn hash_agrees_with_equality() {
        fn h(x: &Evr) -> u64 {
            let mut s = DefaultHasher::new();
            x.hash(&mut s);
            s.finish()
        }
        for (a, b) in [
            ("1.0", "0:1.0"),
            ("1.0", "1_0"),
            ("1a", "1.a"),
            ("1.010", "1.10"),
            ("1-1", "1-1."),
        ] {
            assert_eq!(e(a), e(b));
            assert_eq!(h(&e(a)), h(&e(b)), "{a} {b}");
        }
        assert_ne!(h(&e("1.0")), h(&e("10")));
    }

    #[test]
    fn new_checks_the_parts() {
        assert_eq!(
            Evr::new(Some(1), "2.0", "3").unwrap().to_string(),
            "1:2.0-3"
        );
        assert_eq!(Evr::new(None, "2.0", "").unwrap().to_string(), "2.0");
        assert!(Evr::new(None, "", "1").is_err());
        assert!(Evr::new(None, "1:2", "1").is_err());
        assert!(Evr::new(None, "1-2", "").is_err());
        assert!(Evr::new(None, "1", "2-3").is_err());
        assert!(Evr::new(None, "1", "a b").is_err());
    }

    #[test]
    fn nevra_forms() {
        let n = Nevra::parse("openssl-libs-1:1.0.2k-24.amzn2.0.6.x86_64").unwrap();
        assert_eq!(
            (
                n.name.as_str(),
                n.epoch,
                n.version.as_str(),
                n.release.as_str(),
                n.arch.as_str()
            ),
            ("openssl-libs", Some(1), "1.0.2k", "24.amzn2.0.6", "x86_64")
        );
        assert_eq!(n.title(), "openssl-libs.x86_64:1:1.0.2k-24.amzn2.0.6");
        assert_eq!(n.to_string(), "openssl-libs-1:1.0.2k-24.amzn2.0.6.x86_64");
        assert_eq!(Nevra::parse(&n.to_string()).unwrap(), n);
        assert_eq!(Nevra::parse_title(&n.title()).unwrap(), n);
        assert_eq!(n.evr(), e("1:1.0.2k-24.amzn2.0.6"));

        let m = Nevra::parse("1:openssl-libs-1.0.2k-24.amzn2.0.6.x86_64").unwrap();
        assert_eq!(m, n);
        let k = Nevra::parse("kernel-5.14.0-362.8.1.el9_3.x86_64").unwrap();
        assert_eq!((k.epoch, k.release.as_str()), (None, "362.8.1.el9_3"));
        assert_eq!(k.title(), "kernel.x86_64:0:5.14.0-362.8.1.el9_3");
        let p = Nevra::parse("python3.11-3.11.2-1.el9.noarch").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("python3.11", "3.11.2")
        );
        let t = Nevra::parse_title("python3.11.noarch:0:3.11.2-1.el9").unwrap();
        assert_eq!(
            (t.name.as_str(), t.arch.as_str(), t.epoch),
            ("python3.11", "noarch", Some(0))
        );
        let t = Nevra::parse_title("bash.x86_64:5.1.8-6.el9").unwrap();
        assert_eq!(t.epoch, None);
        assert_eq!(
            "bash-5.1.8-6.el9.x86_64".parse::<Nevra>().unwrap().name,
            "bash"
        );
    }

    #[test]
    fn nevra_errors_name_the_input() {
        for (bad, problem) in [
            ("", "empty"),
            (
                "bash-5.1.8-6",
                "the architecture after the last '.' contains",
            ),
            (
                "bash.x86_64",
                "expected name-version-release.arch: no '-' before",
            ),
            (
                "bash-5.1.8.x86_64",
                "expected name-version-release.arch: no '-' between",
            ),
            ("-5.1.8-6.x86_64", "the package name is empty"),
            (
                "bash-5.1.8-6.",
                "the architecture after the last '.' is empty",
            ),
            ("1:bash-2:5.1.8-6.x86_64", "two epochs"),
            (
                "bash-x:5.1.8-6.x86_64",
                "version-release: the epoch before ':' is not a number",
            ),
            (
                "bash-:5.1.8-6.x86_64",
                "version-release: nothing before the ':'",
            ),
            ("bash 5-1.x86_64", "contains white space"),
        ] {
            let err = Nevra::parse(bad).expect_err(bad);
            assert!(err.problem().starts_with(problem), "{bad}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid RPM package name '{bad}'")),
                "{err}"
            );
        }
        for (bad, problem) in [
            ("bash", "expected name.arch:epoch:version-release: no ':'"),
            (
                "bash:0:1-1",
                "expected name.arch:epoch:version-release: no '.'",
            ),
            (
                "bash.x86_64:0:1",
                "expected name.arch:epoch:version-release: no '-'",
            ),
            (
                "bash.x86_64:x:1-1",
                "epoch:version-release: the epoch before ':' is not a number",
            ),
            (
                "bash.x86_64:0:",
                "epoch:version-release: nothing after the epoch",
            ),
            (".x86_64:0:1-1", "the package name is empty"),
        ] {
            let err = Nevra::parse_title(bad).expect_err(bad);
            assert!(err.problem().starts_with(problem), "{bad}: {err}");
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid package title '{bad}'")),
                "{err}"
            );
        }
    }
}
