//! The `InstallOverrideList` document (spec §2.4, §3.7): a YAML list of
//! packages to install regardless of the baseline.
//!
//! ```yaml
//! patches:
//!   - id: 'curl.x86_64'
//!   - id: 'dhcp*'
//!     title: '*12:4.2.5-*'
//! ```
//!
//! Only reading and checking the document lives here; matching entries
//! against packages is the evaluator's job.

use serde_yaml_ng::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallOverrideList {
    pub patches: Vec<OverrideEntry>,
}

/// One entry: `id` is a `name.arch` pattern, `title` an optional version
/// pattern; both may contain wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverrideEntry {
    pub id: String,
    pub title: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstallOverrideError {
    #[error("InstallOverrideList is not valid YAML{}: {message}", location(*.line, *.column))]
    Syntax {
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("InstallOverrideList is empty; expected a mapping with a 'patches' list")]
    Empty,
    #[error("InstallOverrideList must be a mapping with a 'patches' list, found {found}")]
    NotAMapping { found: &'static str },
    #[error("InstallOverrideList has no 'patches' list")]
    MissingPatches,
    #[error("InstallOverrideList 'patches' must be a list of entries, found {found}")]
    PatchesNotAList { found: &'static str },
    #[error("InstallOverrideList patches[{index}] must be a mapping with an 'id', found {found}")]
    EntryNotAMapping { index: usize, found: &'static str },
    #[error("InstallOverrideList patches[{index}] has no 'id'")]
    MissingId { index: usize },
    #[error(
        "InstallOverrideList patches[{index}].{field} must be a string, found {found} (quote the value)"
    )]
    NotAString {
        index: usize,
        field: &'static str,
        found: &'static str,
    },
    #[error("InstallOverrideList patches[{index}].{field} must not be empty")]
    EmptyField { index: usize, field: &'static str },
    #[error(
        "InstallOverrideList patches[{index}].{field} '{value}' contains whitespace; package patterns never do"
    )]
    Whitespace {
        index: usize,
        field: &'static str,
        value: String,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Reads an `InstallOverrideList`. Unknown members, at the top and in the
/// entries, are ignored (as the agent does); a `title` of `null` counts as
/// absent. JSON is YAML, so a JSON document is read too.
pub fn parse_install_override_list(
    text: &str,
) -> Result<InstallOverrideList, InstallOverrideError> {
    if text.trim().is_empty() {
        return Err(InstallOverrideError::Empty);
    }
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let loc = e.location();
        let mut message = e.to_string();
        if let Some(l) = &loc {
            let at = format!(" at line {} column {}", l.line(), l.column());
            message = message.replacen(&at, "", 1);
        }
        InstallOverrideError::Syntax {
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message,
        }
    })?;
    let map = match &doc {
        Value::Mapping(m) => m,
        Value::Null => return Err(InstallOverrideError::Empty),
        other => return Err(InstallOverrideError::NotAMapping { found: kind(other) }),
    };
    let patches = match map.get("patches") {
        None => return Err(InstallOverrideError::MissingPatches),
        Some(Value::Sequence(s)) => s,
        // `patches:` with nothing after it: an empty list.
        Some(Value::Null) => return Ok(InstallOverrideList::default()),
        Some(other) => return Err(InstallOverrideError::PatchesNotAList { found: kind(other) }),
    };
    let mut out = Vec::with_capacity(patches.len());
    for (index, entry) in patches.iter().enumerate() {
        let Value::Mapping(entry) = entry else {
            return Err(InstallOverrideError::EntryNotAMapping {
                index,
                found: kind(entry),
            });
        };
        let id = match entry.get("id") {
            None | Some(Value::Null) => return Err(InstallOverrideError::MissingId { index }),
            Some(v) => pattern(index, "id", v)?,
        };
        let title = match entry.get("title") {
            None | Some(Value::Null) => None,
            Some(v) => Some(pattern(index, "title", v)?),
        };
        out.push(OverrideEntry { id, title });
    }
    Ok(InstallOverrideList { patches: out })
}

/// A string member that holds a package pattern. Numbers are refused rather
/// than converted: `title: 2.10` would silently become `2.1`.
fn pattern(index: usize, field: &'static str, v: &Value) -> Result<String, InstallOverrideError> {
    let Value::String(s) = v else {
        return Err(InstallOverrideError::NotAString {
            index,
            field,
            found: kind(v),
        });
    };
    if s.is_empty() {
        return Err(InstallOverrideError::EmptyField { index, field });
    }
    if s.chars().any(char::is_whitespace) {
        return Err(InstallOverrideError::Whitespace {
            index,
            field,
            value: s.clone(),
        });
    }
    Ok(s.clone())
}
