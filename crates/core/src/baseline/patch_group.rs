//! Patch group names and the character class SSM uses for them and for tag
//! keys and values: `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`.

use std::fmt;

pub const PATCH_GROUP_MAX_CHARS: usize = 256;

/// The pattern as SSM states it, for messages.
pub const TAG_LIKE_PATTERN: &str = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$";

/// One character of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, without a regex engine.
///
/// `\p{N}` is exactly `char::is_numeric`. `\p{Z}` is listed by hand (it is
/// short and stable). `\p{L}` is approximated by `char::is_alphabetic`,
/// which also admits the few combining marks and symbols that carry the
/// Unicode `Alphabetic` property (e.g. Devanagari vowel signs, circled
/// letters): harmless for a group or tag name, and no table to maintain.
pub fn is_tag_like_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || is_separator(c) || "_.:/=+-@".contains(c)
}

/// Unicode general category Z (Zs, Zl, Zp).
fn is_separator(c: char) -> bool {
    matches!(
        c,
        '\u{0020}' | '\u{00A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// Why a patch group name is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchGroupNameError {
    #[error("patch group name must not be empty")]
    Empty,
    #[error(
        "patch group name '{name}' is {chars} characters long; at most {PATCH_GROUP_MAX_CHARS} are allowed"
    )]
    TooLong { name: String, chars: usize },
    #[error(
        "patch group name '{name}' contains {found}, which is not allowed (letters, digits, spaces and _.:/=+-@ only)"
    )]
    InvalidChar { name: String, found: DisplayChar },
}

/// A character shown so that a tab or a control character is visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayChar(pub char);

impl fmt::Display for DisplayChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_control() || self.0.is_whitespace() {
            write!(f, "{:?} (U+{:04X})", self.0, self.0 as u32)
        } else {
            write!(f, "'{}'", self.0)
        }
    }
}

/// `PatchGroup`: 1–256 characters of [`TAG_LIKE_PATTERN`]. Lengths count
/// Unicode scalar values.
pub fn validate_patch_group_name(name: &str) -> Result<(), PatchGroupNameError> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err(PatchGroupNameError::Empty);
    }
    if chars > PATCH_GROUP_MAX_CHARS {
        return Err(PatchGroupNameError::TooLong {
            name: name.to_string(),
            chars,
        });
    }
    if let Some(c) = name.chars().find(|c| !is_tag_like_char(*c)) {
        return Err(PatchGroupNameError::InvalidChar {
            name: name.to_string(),
            found: DisplayChar(c),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_class() {
        for ok in [
            "DEV",
            "web servers",
            "prod:eu-west-1/a=b+c@d_e.f",
            "Grüße",
            "日本",
            "٣",
            "a\u{3000}b",
        ] {
            assert_eq!(validate_patch_group_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_patch_group_name(&"x".repeat(256)), Ok(()));
    }

    #[test]
    fn rejects_the_rest() {
        assert_eq!(
            validate_patch_group_name(""),
            Err(PatchGroupNameError::Empty)
        );
        assert!(matches!(
            validate_patch_group_name(&"x".repeat(257)),
            Err(PatchGroupNameError::TooLong { chars: 257, .. })
        ));
        for bad in ["a*b", "a,b", "a\tb", "a#", "a!", "a'b", "(x)"] {
            assert!(
                matches!(
                    validate_patch_group_name(bad),
                    Err(PatchGroupNameError::InvalidChar { .. })
                ),
                "{bad}"
            );
        }
        let msg = validate_patch_group_name("a\tb").unwrap_err().to_string();
        assert!(msg.contains("U+0009"), "{msg}");
    }
}
