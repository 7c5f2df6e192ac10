//! `MaxConcurrency` and `MaxErrors` of SendCommand (spec ssm-api §3.1, §3.3):
//! parsed with the model's exact patterns and turned into counts once the
//! number of targets is known.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The model caps both strings at 7 characters; checking it first also keeps
/// every absolute value inside `u32`.
const MAX_LEN: usize = 7;

/// A `MaxConcurrency` or `MaxErrors` value that the SSM pattern refuses.
/// The message names the field and the value, as an API error must.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {value:?}: {reason}")]
pub struct RateError {
    /// `MaxConcurrency` or `MaxErrors`.
    pub field: &'static str,
    /// The text as given.
    pub value: String,
    /// What the field accepts.
    pub reason: &'static str,
}

impl RateError {
    /// The AWS error code a server answers with.
    pub fn code(&self) -> &'static str {
        "ValidationException"
    }
}

/// An absolute count or a percentage of the targets, as both fields allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Amount {
    Count(u32),
    Percent(u8),
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Count(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Reads `digits` or `digits%` with no sign, space or leading zero (a lone
/// `0` only when `zero_ok`), as both patterns demand; the range of the
/// percentage is checked here and the lower bound of the count by the caller.
fn parse_amount(s: &str, zero_ok: bool) -> Option<Amount> {
    if s.is_empty() || s.len() > MAX_LEN {
        return None;
    }
    let (digits, percent) = match s.strip_suffix('%') {
        Some(d) => (d, true),
        None => (s, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `[0-9]%` allows `0%` for MaxErrors; everywhere else a leading zero
    // is refused, as `05` would not match `[1-9][0-9]*`.
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    if n == 0 && !zero_ok {
        return None;
    }
    if percent {
        u8::try_from(n)
            .ok()
            .filter(|p| *p <= 100)
            .map(Amount::Percent)
    } else {
        Some(Amount::Count(n))
    }
}

/// `n · p / 100` without overflow, rounded up or down.
fn share(n: usize, percent: u8, round_up: bool) -> usize {
    let n = n as u128;
    let p = u128::from(percent);
    let v = if round_up {
        (n * p).div_ceil(100)
    } else {
        n * p / 100
    };
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// `MaxConcurrency`: how many invocations may be in flight at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MaxConcurrency(Amount);

impl MaxConcurrency {
    /// An absolute limit (≥ 1); `None` for 0 or more than 7 digits.
    pub fn count(k: u32) -> Option<Self> {
        Self::from_str(&k.to_string()).ok()
    }

    /// A percentage of the targets (1–100).
    pub fn percent(p: u8) -> Option<Self> {
        Self::from_str(&format!("{p}%")).ok()
    }

    /// The limit for `targets` resolved nodes: `min(k, N)` or
    /// `max(1, ceil(N·p/100))`. Never 0, so a rollout always makes progress.
    pub fn for_targets(self, targets: usize) -> usize {
        match self.0 {
            Amount::Count(k) => usize::try_from(k).unwrap_or(usize::MAX).min(targets),
            Amount::Percent(p) => share(targets, p, true).max(1),
        }
        .max(1)
    }
}

impl Default for MaxConcurrency {
    /// The SendCommand default, `50`.
    fn default() -> Self {
        Self(Amount::Count(50))
    }
}

impl FromStr for MaxConcurrency {
    type Err = RateError;
    fn from_str(s: &str) -> Result<Self, RateError> {
        parse_amount(s, false).map(Self).ok_or_else(|| RateError {
            field: "MaxConcurrency",
            value: s.to_owned(),
            reason: "must be a number ≥ 1 or a percentage 1%–100%",
        })
    }
}

impl fmt::Display for MaxConcurrency {
    /// The text it was parsed from (the patterns admit one spelling per value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for MaxConcurrency {
    type Error = RateError;
    fn try_from(s: String) -> Result<Self, RateError> {
        s.parse()
    }
}

impl From<MaxConcurrency> for String {
    fn from(v: MaxConcurrency) -> String {
        v.to_string()
    }
}

/// `MaxErrors`: how many errors a command tolerates before it stops
/// starting invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MaxErrors(Amount);

impl MaxErrors {
    /// An absolute allowance (0 stops at the first error).
    pub fn count(e: u32) -> Option<Self> {
        Self::from_str(&e.to_string()).ok()
    }

    /// A percentage of the targets (0–100).
    pub fn percent(p: u8) -> Option<Self> {
        Self::from_str(&format!("{p}%")).ok()
    }

    /// The allowance for `targets` resolved nodes: `e` or `floor(N·p/100)`.
    /// The command stops when ErrorCount becomes *greater* than this.
    pub fn limit_for(self, targets: usize) -> usize {
        match self.0 {
            Amount::Count(e) => usize::try_from(e).unwrap_or(usize::MAX),
            Amount::Percent(p) => share(targets, p, false),
        }
    }
}

impl Default for MaxErrors {
    /// The SendCommand default, `0`.
    fn default() -> Self {
        Self(Amount::Count(0))
    }
}

impl FromStr for MaxErrors {
    type Err = RateError;
    fn from_str(s: &str) -> Result<Self, RateError> {
        parse_amount(s, true).map(Self).ok_or_else(|| RateError {
            field: "MaxErrors",
            value: s.to_owned(),
            reason: "must be a number ≥ 0 or a percentage 0%–100%",
        })
    }
}

impl fmt::Display for MaxErrors {
    /// The text it was parsed from.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<String> for MaxErrors {
    type Error = RateError;
    fn try_from(s: String) -> Result<Self, RateError> {
        s.parse()
    }
}

impl From<MaxErrors> for String {
    fn from(v: MaxErrors) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_pattern() {
        let ok = [
            "1", "9", "10", "50", "9999999", "1%", "9%", "10%", "99%", "100%",
        ];
        for s in ok {
            let v: MaxConcurrency = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(v.to_string(), s);
        }
        let bad = [
            "", "0", "00", "01", "0%", "05%", "101%", "1000%", "-1", "+1", " 1", "1 ", "1.5", "%",
            "10000000", "1e3", "５", "50%%", "١",
        ];
        for s in bad {
            assert!(s.parse::<MaxConcurrency>().is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn errors_pattern() {
        let ok = [
            "0", "1", "10", "9999999", "0%", "1%", "9%", "10%", "99%", "100%",
        ];
        for s in ok {
            let v: MaxErrors = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(v.to_string(), s);
        }
        let bad = [
            "", "00", "01", "00%", "05%", "101%", "-0", "1.0", "10000000", "x",
        ];
        for s in bad {
            assert!(s.parse::<MaxErrors>().is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn messages_name_field_and_value() {
        assert_eq!(
            "0".parse::<MaxConcurrency>().unwrap_err().to_string(),
            r#"MaxConcurrency "0": must be a number ≥ 1 or a percentage 1%–100%"#
        );
        assert_eq!(
            "101%".parse::<MaxErrors>().unwrap_err().to_string(),
            r#"MaxErrors "101%": must be a number ≥ 0 or a percentage 0%–100%"#
        );
    }

    #[test]
    fn defaults_and_serde() {
        assert_eq!(MaxConcurrency::default().to_string(), "50");
        assert_eq!(MaxErrors::default().to_string(), "0");
        let v: MaxConcurrency = serde_json::from_str("\"25%\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"25%\"");
        assert!(serde_json::from_str::<MaxErrors>("\"-1\"").is_err());
        assert_eq!(MaxConcurrency::count(0), None);
        assert_eq!(MaxErrors::count(0), Some(MaxErrors::default()));
        assert_eq!(MaxErrors::percent(101), None);
        assert_eq!(MaxConcurrency::count(10_000_000), None);
    }

    /// (value, targets, in-flight limit)
    #[test]
    fn concurrency_for_targets() {
        let table = [
            ("50", 0, 1),
            ("50", 5, 5),
            ("50", 500, 50),
            ("2", 5, 2),
            ("1%", 1, 1),
            ("1%", 150, 2),
            ("10%", 50, 5),
            ("10%", 51, 6),
            ("100%", 7, 7),
            ("33%", 10, 4),
            ("9999999", usize::MAX, 9_999_999),
            ("100%", usize::MAX, usize::MAX),
        ];
        for (v, n, want) in table {
            let c: MaxConcurrency = v.parse().unwrap();
            assert_eq!(c.for_targets(n), want, "{v} of {n}");
        }
    }

    /// (value, targets, tolerated errors)
    #[test]
    fn errors_for_targets() {
        let table = [
            ("0", 50, 0),
            ("10%", 50, 5), // the documented anchor: the sixth error stops it
            ("10%", 59, 5),
            ("10%", 9, 0),
            ("0%", 100, 0),
            ("100%", 7, 7),
            ("3", 1, 3),
            ("50%", usize::MAX, usize::MAX / 2),
        ];
        for (v, n, want) in table {
            let e: MaxErrors = v.parse().unwrap();
            assert_eq!(e.limit_for(n), want, "{v} of {n}");
        }
    }
}
