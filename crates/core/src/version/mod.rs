//! Package versions and their order, exactly as the package managers decide
//! it: dpkg for the apt family, librpm for the rpm and zypp families.
//!
//! "Exactly" is the point of this module. A baseline approves or rejects a
//! version by comparing it with another one; if our order differs from the
//! node's package manager in a single corner case, we report a node as
//! compliant while `apt`/`dnf` would install something else. So the
//! comparisons are ports of the C functions (`verrevcmp`, `rpmvercmp`), and
//! `tests/version_oracle.rs` checks them against the real `dpkg` and `rpm`
//! binaries on generated and hand-picked pairs.
//!
//! The comparisons run in hot loops (every package of every node against
//! every approved version), so they work on bytes and never allocate;
//! [`compare`] parses both sides without allocating either.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

pub mod deb;
pub mod rpm;

pub use deb::{DebVersion, parse_name_version};
pub use rpm::{Evr, Nevra, rpmvercmp};

/// Which package manager's rules order a version string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// dpkg: `[epoch:]upstream[-revision]`.
    Deb,
    /// librpm: `[epoch:]version[-release]`.
    Rpm,
}

impl Scheme {
    pub const ALL: [Scheme; 2] = [Scheme::Deb, Scheme::Rpm];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Deb => "deb",
            Scheme::Rpm => "rpm",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The input named no version scheme we know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown version scheme '{}' (expected 'deb' or 'rpm')", Shown(.0))]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| UnknownScheme(s.to_string()))
    }
}

/// Compares two version strings under `scheme`'s rules.
///
/// Debian: dpkg's order (`dpkg --compare-versions`). RPM: the total order of
/// [`rpm::Evr`] (epoch, then version, then release, a missing release
/// sorting like an empty one). Both sides are validated; nothing is
/// allocated unless one of them is invalid.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Result<Ordering, VersionError> {
    match scheme {
        Scheme::Deb => deb::compare_str(a, b),
        Scheme::Rpm => rpm::compare_str(a, b),
    }
}

/// Checks that `s` is a version under `scheme`'s rules, without allocating
/// when it is.
pub fn validate(scheme: Scheme, s: &str) -> Result<(), VersionError> {
    match scheme {
        Scheme::Deb => deb::validate(s),
        Scheme::Rpm => rpm::validate(s),
    }
}

/// What kind of string failed to parse: it decides the first words of the
/// message, so that an operator can tell a bad baseline entry from a bad
/// package report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A Debian version (`[epoch:]upstream[-revision]`).
    DebVersion,
    /// A Debian `name[:arch]=version` string.
    DebPackage,
    /// An RPM `[epoch:]version[-release]` string.
    RpmVersion,
    /// An RPM `name-[epoch:]version-release.arch` string.
    Nevra,
    /// A Patch Manager package title `name.arch:epoch:version-release`.
    PackageTitle,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Subject::DebVersion => "Debian version",
            Subject::DebPackage => "Debian package version",
            Subject::RpmVersion => "RPM version",
            Subject::Nevra => "RPM package name",
            Subject::PackageTitle => "package title",
        })
    }
}

/// A string that is not a valid version (or package name with version).
/// The message always quotes the input and says what is wrong with it,
/// e.g. `invalid Debian version '1:': nothing after the epoch`.
///
/// Boxed, so that a `Result<Ordering, VersionError>` stays two words wide in
/// the comparison loops, and errors that embed it stay small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} '{}': {}", self.0.subject, Shown(&self.0.input), self.0.problem)]
pub struct VersionError(Box<Details>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    subject: Subject,
    input: String,
    problem: Cow<'static, str>,
}

impl VersionError {
    #[cold]
    pub(crate) fn new(
        subject: Subject,
        input: &str,
        problem: impl Into<Cow<'static, str>>,
    ) -> VersionError {
        VersionError(Box::new(Details {
            subject,
            input: input.to_string(),
            problem: problem.into(),
        }))
    }

    /// The same problem, reported against a larger input that contained
    /// the one that failed (e.g. the version part of `name=version`).
    pub(crate) fn within(self, subject: Subject, input: &str, part: &str) -> VersionError {
        VersionError::new(subject, input, format!("{part}: {}", self.0.problem))
    }

    pub fn subject(&self) -> Subject {
        self.0.subject
    }

    /// The rejected string, unmodified.
    pub fn input(&self) -> &str {
        &self.0.input
    }

    /// What is wrong with it, e.g. `nothing after the epoch`.
    pub fn problem(&self) -> &str {
        &self.0.problem
    }
}

/// Quotes untrusted input in messages: escaped so that control characters
/// cannot forge log lines, and cut short so that a megabyte of garbage
/// does not become a megabyte of log.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 200;
        for (n, c) in self.0.chars().enumerate() {
            if n == MAX_CHARS {
                return f.write_str("…");
            }
            if c == '\'' {
                f.write_str("\\'")?;
            } else {
                fmt::Display::fmt(&c.escape_debug(), f)?;
            }
        }
        Ok(())
    }
}

/// A character as messages show it.
pub(crate) fn describe_byte(s: &str, at: usize) -> String {
    match s.get(at..).and_then(|rest| rest.chars().next()) {
        Some(c) => format!("'{}'", c.escape_debug()),
        None => "end of input".to_string(),
    }
}

/// Length of the common prefix of two byte strings.
#[inline]
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const W: usize = 8;
    let n = a.len().min(b.len());
    let mut i = 0;
    // Eight bytes at a time: version pairs share long prefixes
    // ("5.14.0-362.8.1.el9_3" vs "5.14.0-362.13.1.el9_3").
    while i + W <= n {
        let (Some(x), Some(y)) = (a.get(i..i + W), b.get(i..i + W)) else {
            break;
        };
        let (Ok(x), Ok(y)) = (<[u8; W]>::try_from(x), <[u8; W]>::try_from(y)) else {
            break;
        };
        let diff = u64::from_le_bytes(x) ^ u64::from_le_bytes(y);
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += W;
    }
    while i < n && a.get(i) == b.get(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_round_trip() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.as_str().parse::<Scheme>(), Ok(scheme));
            assert_eq!(scheme.to_string(), scheme.as_str());
            let json = serde_json::to_string(&scheme).unwrap();
            assert_eq!(json, format!("\"{scheme}\""));
            assert_eq!(serde_json::from_str::<Scheme>(&json).unwrap(), scheme);
        }
        let err = "dpkg".parse::<Scheme>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown version scheme 'dpkg' (expected 'deb' or 'rpm')"
        );
    }

    #[test]
    fn compare_dispatches_on_the_scheme() {
        // `1.0a` vs `1.0+`: dpkg sorts letters before other characters,
        // rpm treats `+` as a separator and a letter segment as more.
        assert_eq!(compare(Scheme::Deb, "1.0a", "1.0+"), Ok(Ordering::Less));
        assert_eq!(compare(Scheme::Rpm, "1.0a", "1.0+"), Ok(Ordering::Greater));
        assert_eq!(compare(Scheme::Deb, "1.0", "0:1.0"), Ok(Ordering::Equal));
        assert_eq!(compare(Scheme::Rpm, "1.0", "0:1.0"), Ok(Ordering::Equal));
        let err = compare(Scheme::Deb, "1.0", "1:").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid Debian version '1:': "),
            "{err}"
        );
        let err = compare(Scheme::Rpm, "x:1", "1").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid RPM version 'x:1': "),
            "{err}"
        );
        assert!(validate(Scheme::Deb, "1:2.3-4").is_ok());
        assert!(validate(Scheme::Rpm, "1:2.3-4").is_ok());
        assert!(validate(Scheme::Rpm, "").is_err());
    }

    #[test]
    fn messages_escape_and_shorten_the_input() {
        let err = VersionError::new(Subject::DebVersion, "a'b\nc", "bad");
        assert_eq!(err.to_string(), r"invalid Debian version 'a\'b\nc': bad");
        let long = "9".repeat(1000);
        let err = VersionError::new(Subject::RpmVersion, &long, "bad");
        assert!(err.to_string().len() < 300);
        assert_eq!(err.input(), long);
    }

    #[test]
    fn common_prefix_is_exact() {
        for (a, b, n) in [
            ("", "", 0),
            ("abc", "abd", 2),
            ("0123456789abcdef", "0123456789abcdeX", 15),
            ("0123456789", "0123456789", 10),
            ("01234567", "012345678", 8),
            ("x", "y", 0),
        ] {
            assert_eq!(common_prefix(a.as_bytes(), b.as_bytes()), n, "{a} {b}");
        }
    }
}
