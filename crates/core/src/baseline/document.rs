//! Reading and writing baseline documents (JSON and YAML) with errors that
//! point at the offending member: an operator fixing a 200-line baseline
//! needs the line, the column and the member path, not just "invalid type".

use super::model::Baseline;
use std::fmt;
use std::str::FromStr;

/// The text format of a baseline document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// JSON when the first significant character opens a JSON object or
    /// array, YAML otherwise. (A YAML flow mapping `{Name: x}` is thus read as
    /// JSON and fails; block-style YAML is what people write.)
    pub fn detect(text: &str) -> Format {
        match strip_bom(text).trim_start().chars().next() {
            Some('{' | '[') => Format::Json,
            _ => Format::Yaml,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong while reading a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BaselineErrorKind {
    /// Not well-formed JSON/YAML.
    Syntax,
    /// Well-formed, but a member is unknown, missing or of the wrong type.
    Shape,
    /// Nothing but whitespace.
    Empty,
    /// A `BaselineOverride` document that is not a JSON array, or a single
    /// baseline given as an array.
    WrongContainer,
}

/// Which kind of document was being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Baseline,
    BaselineOverride,
}

/// A baseline document that could not be read. `path` uses the document's
/// own member names (`ApprovalRules.PatchRules[0].ApproveAfterDays`, indexes
/// from 0); `line` and `column` count from 1.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct BaselineError {
    pub kind: BaselineErrorKind,
    pub document: DocumentKind,
    pub format: Format,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub path: Option<String>,
    pub message: String,
}

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.document {
            DocumentKind::Baseline => write!(f, "invalid {} baseline document", self.format)?,
            DocumentKind::BaselineOverride => f.write_str("invalid BaselineOverride document")?,
        }
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, " at line {l}, column {c}")?,
            (Some(l), None) => write!(f, " at line {l}")?,
            _ => {}
        }
        if let Some(path) = &self.path {
            write!(f, ", member `{path}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl BaselineError {
    pub(crate) fn new(kind: BaselineErrorKind, format: Format, message: impl Into<String>) -> Self {
        Self {
            kind,
            document: DocumentKind::Baseline,
            format,
            line: None,
            column: None,
            path: None,
            message: message.into(),
        }
    }

    pub(crate) fn from_json(text: &str, err: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match err.classify() {
            Category::Data => BaselineErrorKind::Shape,
            Category::Syntax | Category::Eof | Category::Io => BaselineErrorKind::Syntax,
        };
        let (line, column) = (err.line(), err.column());
        let mut message = err.to_string();
        let suffix = format!(" at line {line} column {column}");
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
        let located = line > 0;
        let path = if located {
            json_path_at(text, byte_offset(text, line, column))
        } else {
            None
        };
        Self {
            kind,
            document: DocumentKind::Baseline,
            format: Format::Json,
            line: located.then_some(line),
            column: located.then_some(column),
            path,
            message,
        }
    }

    pub(crate) fn in_document(mut self, document: DocumentKind) -> Self {
        self.document = document;
        self
    }

    pub(crate) fn from_yaml(err: &serde_yaml_ng::Error) -> Self {
        let mut message = err.to_string();
        let mut line = None;
        let mut column = None;
        // serde_yaml_ng reports a location even when it has none (1:1); only
        // trust it when the message itself carries it.
        if let Some(loc) = err.location() {
            let text = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(at) = message.find(&text) {
                message.replace_range(at..at + text.len(), "");
                line = Some(loc.line());
                column = Some(loc.column());
            }
        }
        let (path, message) = split_yaml_path(&message);
        let kind = if line.is_some() && is_libyaml_message(&message) {
            BaselineErrorKind::Syntax
        } else {
            BaselineErrorKind::Shape
        };
        Self {
            kind,
            document: DocumentKind::Baseline,
            format: Format::Yaml,
            line,
            column,
            path,
            message,
        }
    }
}

/// libyaml's scanner/parser messages are lower-case prose without serde's
/// "invalid type"/"unknown field"/… vocabulary.
fn is_libyaml_message(message: &str) -> bool {
    const SERDE: [&str; 9] = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "unknown field",
        "missing field",
        "duplicate field",
        "epoch timestamp",
        "expected",
    ];
    !SERDE.iter().any(|p| message.starts_with(p))
}

/// serde_yaml_ng prefixes messages with the member path (`Rules[1].Days: …`).
/// Paths are built from known member names and indexes only, so a prefix
/// with spaces is part of the message, not a path.
fn split_yaml_path(message: &str) -> (Option<String>, String) {
    if let Some((head, rest)) = message.split_once(": ") {
        let is_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '?'));
        if is_path {
            return (Some(head.to_string()), rest.to_string());
        }
    }
    (None, message.to_string())
}

/// serde_json counts lines from 1 and columns in bytes from the line start.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return (offset + column).min(text.len());
        }
        offset += l.len();
    }
    text.len()
}

/// The member path at `offset` in a JSON text whose prefix up to `offset`
/// serde_json has already accepted. Walks the prefix with a tiny scanner,
/// keeping the open objects (with their current key) and arrays (with their
/// current index).
fn json_path_at(text: &str, offset: usize) -> Option<String> {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array { index: usize, seen_value: bool },
    }
    let bytes = &text.as_bytes()[..offset.min(text.len())];
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => {
                if let Some(Frame::Array { seen_value, .. }) = stack.last_mut() {
                    *seen_value = true;
                }
                stack.push(Frame::Object {
                    key: None,
                    want_key: true,
                });
            }
            b'[' => {
                if let Some(Frame::Array { seen_value, .. }) = stack.last_mut() {
                    *seen_value = true;
                }
                stack.push(Frame::Array {
                    index: 0,
                    seen_value: false,
                });
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index, seen_value }) => {
                    *index += 1;
                    *seen_value = false;
                }
                Some(Frame::Object { key, want_key }) => {
                    *key = None;
                    *want_key = true;
                }
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(bytes.len());
                match stack.last_mut() {
                    Some(Frame::Object { key, want_key }) if *want_key => {
                        *key = Some(String::from_utf8_lossy(&bytes[start..end]).into_owned());
                    }
                    Some(Frame::Array { seen_value, .. }) => *seen_value = true,
                    _ => {}
                }
                i = j;
            }
            b if b.is_ascii_whitespace() => {}
            _ => {
                if let Some(Frame::Array { seen_value, .. }) = stack.last_mut() {
                    *seen_value = true;
                }
            }
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => break,
            Frame::Array { index, seen_value } => {
                if !*seen_value {
                    break;
                }
                path.push_str(&format!("[{index}]"));
            }
        }
    }
    (!path.is_empty()).then_some(path)
}

pub(crate) fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// The first significant character, for container checks.
pub(crate) fn first_char(text: &str) -> Option<char> {
    strip_bom(text).trim_start().chars().next()
}

impl Baseline {
    pub fn from_json(text: &str) -> Result<Baseline, BaselineError> {
        let text = strip_bom(text);
        match first_char(text) {
            None => {
                return Err(BaselineError::new(
                    BaselineErrorKind::Empty,
                    Format::Json,
                    "the document is empty",
                ));
            }
            Some('[') => {
                return Err(BaselineError::new(
                    BaselineErrorKind::WrongContainer,
                    Format::Json,
                    "expected one baseline (a JSON object) but found an array; \
                     a list of baselines is a BaselineOverride document",
                ));
            }
            _ => {}
        }
        serde_json::from_str(text).map_err(|e| BaselineError::from_json(text, &e))
    }

    pub fn from_yaml(text: &str) -> Result<Baseline, BaselineError> {
        let text = strip_bom(text);
        if text.trim().is_empty() {
            return Err(BaselineError::new(
                BaselineErrorKind::Empty,
                Format::Yaml,
                "the document is empty",
            ));
        }
        serde_yaml_ng::from_str(text).map_err(|e| BaselineError::from_yaml(&e))
    }

    pub fn parse(text: &str, format: Format) -> Result<Baseline, BaselineError> {
        match format {
            Format::Json => Self::from_json(text),
            Format::Yaml => Self::from_yaml(text),
        }
    }

    /// The `GetPatchBaseline` shape, indented. Timestamps are written as
    /// epoch seconds, as on the wire.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a baseline always serialises to JSON")
    }

    /// Same member names as the JSON form.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).expect("a baseline always serialises to YAML")
    }
}

/// Reads JSON or YAML, chosen by [`Format::detect`].
impl FromStr for Baseline {
    type Err = BaselineError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text, Format::detect(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_follows_objects_and_arrays() {
        let text = r#"{"A": [{"B": 1}, {"C": {"D": [1, 2, "x"]}}]}"#;
        let at = |needle: &str| text.find(needle).unwrap() + needle.len();
        assert_eq!(
            json_path_at(text, at(r#""x""#)).as_deref(),
            Some("A[1].C.D[2]")
        );
        assert_eq!(json_path_at(text, at(r#""B""#)).as_deref(), Some("A[0].B"));
        assert_eq!(
            json_path_at(text, at(r#"{"B": 1}"#)).as_deref(),
            Some("A[0]")
        );
        assert_eq!(json_path_at(text, 1), None);
        assert_eq!(json_path_at(r#"{"A\"B": "#, 9).as_deref(), Some(r#"A\"B"#));
    }

    #[test]
    fn yaml_path_prefix_is_split_off() {
        assert_eq!(
            split_yaml_path("ApprovalRules.PatchRules[1]: unknown field `X`"),
            (
                Some("ApprovalRules.PatchRules[1]".to_string()),
                "unknown field `X`".to_string()
            )
        );
        assert_eq!(
            split_yaml_path("invalid type: string \"3\", expected u32"),
            (None, "invalid type: string \"3\", expected u32".to_string())
        );
    }

    #[test]
    fn format_detection() {
        assert_eq!(Format::detect("  {\"Name\": 1}"), Format::Json);
        assert_eq!(Format::detect("\u{feff}[]"), Format::Json);
        assert_eq!(Format::detect("Name: x"), Format::Yaml);
        assert_eq!(Format::detect(""), Format::Yaml);
    }
}
