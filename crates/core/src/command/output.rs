//! The truncation of step output the way SSM answers it (spec ssm-api §3.6):
//! `StandardOutputContent` and `StandardErrorContent` capped at 24,000 and
//! 8,000 characters, and the 2,500-character combined `Output` of
//! ListCommandInvocations. Our agent may send full streams; the server cuts
//! them here so that clients see what they would see from AWS.
//!
//! Lengths are counted in characters (Unicode scalar values), never bytes,
//! so a cut never splits a character and a multi-byte language gets as many
//! characters as English does.

use std::borrow::Cow;

/// `StandardOutputContent` holds at most this many characters.
pub const STDOUT_CAP: usize = 24_000;
/// `StandardErrorContent` holds at most this many characters.
pub const STDERR_CAP: usize = 8_000;
/// `CommandPlugin.Output` holds at most this many characters.
pub const OUTPUT_CAP: usize = 2_500;
/// Ends a stream capture that was cut (inside its cap).
pub const STREAM_TRUNCATED: &str = "--output truncated--";
/// Separates stdout from stderr in the combined `Output`.
pub const ERROR_HEADER: &str = "\n----------ERROR-------\n";
/// Follows stdout in the combined `Output` when stdout was cut.
pub const OUTPUT_TRUNCATED: &str = "\n---Output truncated---";
/// Follows stderr in the combined `Output` when stderr was cut.
pub const ERROR_TRUNCATED: &str = "\n---Error truncated----";

/// Output bytes as JSON-safe text: invalid UTF-8 sequences become U+FFFD.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A stream capped at `cap` characters: when longer, its head with
/// [`STREAM_TRUNCATED`] appended, the whole still `cap` characters long.
pub fn cap_stream(s: &str, cap: usize) -> Cow<'_, str> {
    if chars(s) <= cap {
        return Cow::Borrowed(s);
    }
    let keep = cap.saturating_sub(chars(STREAM_TRUNCATED));
    let mut out = String::with_capacity(s.len().min(cap * 4) + STREAM_TRUNCATED.len());
    out.push_str(prefix(s, keep));
    // A cap shorter than the marker gets as much of the marker as fits.
    out.push_str(prefix(STREAM_TRUNCATED, cap));
    Cow::Owned(out)
}

/// `StandardOutputContent`: stdout capped at [`STDOUT_CAP`].
pub fn standard_output(stdout: &str) -> Cow<'_, str> {
    cap_stream(stdout, STDOUT_CAP)
}

/// `StandardErrorContent`: stderr capped at [`STDERR_CAP`].
pub fn standard_error(stderr: &str) -> Cow<'_, str> {
    cap_stream(stderr, STDERR_CAP)
}

/// The combined `Output` of one step: `stdout`, then (only when stderr is
/// not empty) [`ERROR_HEADER`] and `stderr`, cut to [`OUTPUT_CAP`] the way
/// the SSM Agent does — stdout alone when stderr is short, stderr alone when
/// stdout is short, both to half the room when both are long, each cut
/// followed by its marker.
pub fn combined_output(stdout: &str, stderr: &str) -> String {
    combine(stdout, stderr, OUTPUT_CAP)
}

/// [`combined_output`] for any capacity (the agent's constant changed
/// between versions; tests use small ones).
pub fn combine(stdout: &str, stderr: &str, capacity: usize) -> String {
    let out_len = chars(stdout);
    let err_len = chars(stderr);
    let header = if err_len > 0 { ERROR_HEADER } else { "" };
    let room = capacity.saturating_sub(chars(header));
    let half = room / 2;
    let out_mark = chars(OUTPUT_TRUNCATED);
    let err_mark = chars(ERROR_TRUNCATED);

    if out_len.saturating_add(err_len) <= room {
        return [stdout, header, stderr].concat();
    }
    if out_len > half && err_len > half {
        let each = room.saturating_sub(out_mark + err_mark) / 2;
        return [
            prefix(stdout, each),
            OUTPUT_TRUNCATED,
            header,
            prefix(stderr, each),
            ERROR_TRUNCATED,
        ]
        .concat();
    }
    // The agent tests `< half` here and then slices stdout to a negative
    // length when stdout is exactly half; `<=` keeps stdout whole instead.
    if out_len <= half {
        let keep = room.saturating_sub(err_mark).saturating_sub(out_len);
        return [stdout, header, prefix(stderr, keep), ERROR_TRUNCATED].concat();
    }
    let keep = room.saturating_sub(out_mark).saturating_sub(err_len);
    [prefix(stdout, keep), OUTPUT_TRUNCATED, header, stderr].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_caps() {
        let marker = STREAM_TRUNCATED.chars().count();
        // (input length in chars, char, cap, expected length, truncated)
        let table = [
            (0, 'a', 10, 0, false),
            (24_000, 'a', STDOUT_CAP, 24_000, false),
            (24_001, 'a', STDOUT_CAP, 24_000, true),
            (8_001, 'é', STDERR_CAP, 8_000, true),
            (9_000, '𝄞', STDERR_CAP, 8_000, true),
            (30, 'x', 5, 5, true),
        ];
        for (n, c, cap, want_len, truncated) in table {
            let s: String = std::iter::repeat_n(c, n).collect();
            let got = cap_stream(&s, cap);
            assert_eq!(got.chars().count(), want_len, "{n} × {c} cap {cap}");
            assert_eq!(got.ends_with(prefix(STREAM_TRUNCATED, cap)), truncated);
            if truncated && cap >= marker {
                assert!(got.starts_with(&s[..c.len_utf8() * (cap - marker)]));
            }
        }
        assert_eq!(standard_output("ok\n"), "ok\n");
        assert_eq!(standard_error("").len(), 0);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(text(b"ok \xff\xfe end"), "ok \u{fffd}\u{fffd} end");
        assert_eq!(text("é".as_bytes()), "é");
        assert_eq!(text(b"\xc3"), "\u{fffd}");
    }

    /// (stdout length, stderr length, capacity, expected output built from
    /// `o` (stdout chars) and `e` (stderr chars)).
    #[test]
    fn combined_table() {
        let h = ERROR_HEADER;
        let (ot, et) = (OUTPUT_TRUNCATED, ERROR_TRUNCATED);
        let o = |n: usize| "o".repeat(n);
        let e = |n: usize| "e".repeat(n);
        // Capacity 100 → room 76 after the 24-char header, half 38;
        // both markers are 23 chars.
        assert_eq!(h.chars().count(), 24);
        assert_eq!(ot.chars().count(), 23);
        assert_eq!(et.chars().count(), 23);
        let table: Vec<(usize, usize, usize, String)> = vec![
            (10, 0, 100, o(10)),
            (100, 0, 100, o(100)),
            (101, 0, 100, format!("{}{ot}", o(77))),
            (10, 5, 100, format!("{}{h}{}", o(10), e(5))),
            (40, 36, 100, format!("{}{h}{}", o(40), e(36))),
            (40, 37, 100, format!("{}{ot}{h}{}", o(16), e(37))),
            (40, 40, 100, format!("{}{ot}{h}{}{et}", o(15), e(15))),
            (10, 90, 100, format!("{}{h}{}{et}", o(10), e(43))),
            (38, 90, 100, format!("{}{h}{}{et}", o(38), e(15))),
            (90, 10, 100, format!("{}{ot}{h}{}", o(43), e(10))),
            (0, 200, 100, format!("{h}{}{et}", e(53))),
            (5000, 5000, 10, format!("{ot}{h}{et}")),
        ];
        for (no, ne, cap, want) in table {
            let got = combine(&o(no), &e(ne), cap);
            assert_eq!(got, want, "stdout {no}, stderr {ne}, capacity {cap}");
            if cap >= 100 {
                assert!(got.chars().count() <= cap);
            }
        }
    }

    #[test]
    fn combined_counts_characters() {
        let out = "ü".repeat(3_000);
        let got = combined_output(&out, "");
        assert_eq!(got.chars().count(), OUTPUT_CAP);
        assert!(got.ends_with(OUTPUT_TRUNCATED));
        let err = "日本".repeat(2_000);
        let got = combined_output(&out, &err);
        assert!(got.chars().count() <= OUTPUT_CAP);
        assert!(got.contains(ERROR_HEADER) && got.ends_with(ERROR_TRUNCATED));
    }
}
