//! Dates of update notices, as repositories write them (spec §3.2).

use jiff::Timestamp;
use jiff::civil::DateTime;

/// Seconds since the epoch of a notice date. Accepts RFC 3339, epoch
/// seconds (some updateinfo files use them), and updateinfo's
/// `YYYY-MM-DD`, `YYYY-MM-DD HH`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS`,
/// each optionally followed by ` UTC`; all read as UTC. `None` when the text
/// is none of these: the caller decides what an unreadable date means.
pub fn parse_notice_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) && text.len() > 8 {
        return text.parse::<i64>().ok();
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts.as_second());
    }
    let text = text.strip_suffix("UTC").unwrap_or(text).trim_end();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, t.trim()),
        None => (text, ""),
    };
    let mut parts = [0i8; 3];
    if !time.is_empty() {
        let fields: Vec<&str> = time.split(':').collect();
        if fields.len() > 3 {
            return None;
        }
        for (slot, field) in parts.iter_mut().zip(&fields) {
            if field.is_empty() || field.len() > 2 || !field.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = field.parse().ok()?;
        }
    }
    let date: jiff::civil::Date = date.parse().ok()?;
    let dt = DateTime::new(
        date.year(),
        date.month(),
        date.day(),
        parts[0],
        parts[1],
        parts[2],
        0,
    )
    .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn every_documented_form() {
        let cases = [
            ("2025-03-01", "2025-03-01T00:00:00Z"),
            ("2025-03-01 07", "2025-03-01T07:00:00Z"),
            ("2025-03-01 07:08", "2025-03-01T07:08:00Z"),
            ("2025-03-01 07:08:09", "2025-03-01T07:08:09Z"),
            ("2025-03-01 07:08:09 UTC", "2025-03-01T07:08:09Z"),
            ("2025-03-01 UTC", "2025-03-01T00:00:00Z"),
            ("2025-03-01T07:08:09Z", "2025-03-01T07:08:09Z"),
            ("2025-03-01T07:08:09+02:00", "2025-03-01T05:08:09Z"),
            ("1740812889", "2025-03-01T07:08:09Z"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_notice_date(text), Some(ts(want)), "{text}");
        }
    }

    #[test]
    fn unreadable_dates_are_none() {
        for text in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-02-30",
            "2025-03-01 25",
            "2025-03-01 1:2:3:4",
            "2025-03-01 x",
        ] {
            assert_eq!(parse_notice_date(text), None, "{text}");
        }
    }
}
