//! `CreatedDate` / `ModifiedDate`: the API sends epoch seconds, awscli v2
//! prints ISO-8601, and a baseline file copied from either must load.
//!
//! We keep the instant to the millisecond (the API's precision) so that a
//! value written back as an epoch number parses to the same instant again:
//! a decimal with at most three fraction digits survives the trip through
//! `f64` for every year jiff supports, which finer precision would not.

use jiff::Timestamp;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use std::fmt;

/// Largest epoch magnitude we try to convert; beyond it `* 1000` would
/// overflow `i64` and jiff rejects the instant anyway.
const MAX_EPOCH_SECONDS: f64 = 1.0e15;

/// Drops sub-millisecond digits (see the module comment). Truncates toward
/// zero, which keeps every instant inside jiff's range.
pub(crate) fn to_millis(ts: Timestamp) -> Timestamp {
    let nanos = ts.subsec_nanosecond() / 1_000_000 * 1_000_000;
    Timestamp::new(ts.as_second(), nanos).unwrap_or(ts)
}

/// `millis` since the epoch, through `Timestamp::new` (whose range is the
/// full `Timestamp` range; `from_millisecond`'s is narrower).
fn from_millis<E: de::Error>(millis: i64, shown: impl fmt::Display) -> Result<Timestamp, E> {
    let nanos = i32::try_from(millis % 1000).unwrap_or(0) * 1_000_000;
    Timestamp::new(millis / 1000, nanos)
        .map_err(|e| E::custom(format!("epoch timestamp {shown} is out of range ({e})")))
}

fn from_epoch_f64<E: de::Error>(seconds: f64) -> Result<Timestamp, E> {
    if !seconds.is_finite() || seconds.abs() > MAX_EPOCH_SECONDS {
        return Err(E::custom(format!(
            "epoch timestamp {seconds} is out of range"
        )));
    }
    from_millis((seconds * 1000.0).round() as i64, seconds)
}

fn from_epoch_i64<E: de::Error>(seconds: i64) -> Result<Timestamp, E> {
    Timestamp::from_second(seconds)
        .map_err(|e| E::custom(format!("epoch timestamp {seconds} is out of range ({e})")))
}

struct TimestampVisitor;

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("epoch seconds (a number) or an ISO-8601 timestamp with an offset")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        from_epoch_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        let v = i64::try_from(v)
            .map_err(|_| E::custom(format!("epoch timestamp {v} is out of range")))?;
        from_epoch_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        from_epoch_f64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        // A number sent as a string (some tools quote everything) is still
        // epoch seconds; anything else must be ISO-8601.
        if let Ok(n) = v.trim().parse::<f64>() {
            return from_epoch_f64(n);
        }
        v.trim().parse::<Timestamp>().map(to_millis).map_err(|e| {
            E::invalid_value(
                de::Unexpected::Str(v),
                &format!("an ISO-8601 timestamp with an offset ({e})").as_str(),
            )
        })
    }
}

/// `#[serde(with = "...")]` for `Option<Timestamp>` members.
pub(crate) mod option {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(ts) => serialize_epoch(*ts, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        struct OptionVisitor;
        impl<'de> Visitor<'de> for OptionVisitor {
            type Value = Option<Timestamp>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                TimestampVisitor.expecting(f)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                d.deserialize_any(TimestampVisitor).map(Some)
            }
        }
        d.deserialize_option(OptionVisitor)
    }
}

/// Epoch seconds as the API sends them: an integer when the instant has no
/// fraction, else a number with (up to) three fraction digits.
fn serialize_epoch<S: Serializer>(ts: Timestamp, s: S) -> Result<S::Ok, S::Error> {
    let seconds = ts.as_second();
    // Same sign as `seconds` (or `seconds` is 0).
    let millis = ts.subsec_nanosecond() / 1_000_000;
    if millis == 0 {
        return s.serialize_i64(seconds);
    }
    // Going through the decimal text gives the `f64` nearest to
    // `secs.mmm`, which serialisers print back as exactly `secs.mmm`.
    let sign = if seconds < 0 || millis < 0 { "-" } else { "" };
    let text = format!(
        "{sign}{}.{:03}",
        seconds.unsigned_abs(),
        millis.unsigned_abs()
    );
    let value: f64 = text
        .parse()
        .map_err(|_| serde::ser::Error::custom("unrepresentable timestamp"))?;
    s.serialize_f64(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(with = "option", default)]
        t: Option<Timestamp>,
    }

    fn load(json: &str) -> Option<Timestamp> {
        serde_json::from_str::<Holder>(json).unwrap().t
    }

    #[test]
    fn epoch_and_iso_agree() {
        let iso = load(r#"{"t": "2024-01-02T03:04:05.123000+00:00"}"#);
        let epoch = load(r#"{"t": 1704164645.123}"#);
        assert_eq!(iso, epoch);
        assert_eq!(
            iso.unwrap().to_string(),
            "2024-01-02T03:04:05.123Z",
            "kept to the millisecond"
        );
        assert_eq!(
            load(r#"{"t": 1704164645}"#).unwrap().as_second(),
            1704164645
        );
        assert_eq!(load(r#"{"t": null}"#), None);
    }

    #[test]
    fn serialises_as_epoch_seconds() {
        let h = Holder {
            t: load(r#"{"t": "2024-01-02T03:04:05.120999999Z"}"#),
        };
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"t":1704164645.12}"#);
        let whole = Holder {
            t: load(r#"{"t": 1704164645}"#),
        };
        assert_eq!(
            serde_json::to_string(&whole).unwrap(),
            r#"{"t":1704164645}"#
        );
        let before_1970 = Holder {
            t: load(r#"{"t": -1.5}"#),
        };
        assert_eq!(
            serde_json::to_string(&before_1970).unwrap(),
            r#"{"t":-1.5}"#
        );
    }

    #[test]
    fn iso_at_the_extremes_round_trips() {
        for iso in [
            "9999-12-30T22:00:00.999999999Z",
            "-009999-01-02T01:59:59.5Z",
        ] {
            let h: Holder = serde_json::from_str(&format!(r#"{{"t": "{iso}"}}"#)).unwrap();
            let text = serde_json::to_string(&h).unwrap();
            assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), h, "{text}");
        }
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            r#"{"t": "yesterday"}"#,
            r#"{"t": 1e300}"#,
            r#"{"t": 18446744073709551615}"#,
            r#"{"t": "2024-01-02T03:04:05"}"#,
            r#"{"t": true}"#,
        ] {
            assert!(serde_json::from_str::<Holder>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn epoch_round_trips_at_the_extremes() {
        let extremes = [
            Timestamp::MIN,
            Timestamp::MAX,
            Timestamp::new(Timestamp::MIN.as_second(), 1_000_000).unwrap(),
            Timestamp::new(0, -1_000_000).unwrap(),
            Timestamp::new(0, 1_000_000).unwrap(),
            Timestamp::new(-5, -250_000_000).unwrap(),
        ];
        for ts in extremes {
            let h = Holder {
                t: Some(to_millis(ts)),
            };
            let text = serde_json::to_string(&h).unwrap();
            assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), h, "{text}");
        }
    }
}
