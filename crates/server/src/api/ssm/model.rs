//! The botocore service model of SSM (`ssm-api-subset.json` beside this
//! file: botocore's own `service-2.json`, trimmed to the operations of our
//! subset; Apache-2.0, provenance in its `_source` member) and the input
//! validation it drives.
//!
//! botocore checks only `required`, types and `min` before sending; `max`,
//! `enum` and `pattern` are the server's job (spec §1.4). Validation here is
//! generic over the model, so every operation gets the same checks and AWS's
//! wording (`1 validation error detected: Value 'x' at 'baselineId' failed
//! to satisfy constraint: …`), and a handler only ever sees input of the
//! right shape. A member of the wrong JSON type is a `SerializationException`
//! (what AWS JSON services answer); members the model does not know are
//! ignored, as AWS does, so a client with a newer model still works.

use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

const MODEL_JSON: &str = include_str!("ssm-api-subset.json");

#[derive(Debug)]
pub enum Shape {
    Structure {
        members: Vec<(String, String)>,
        required: Vec<String>,
    },
    List {
        member: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    Map {
        key: String,
        value: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        min: Option<i64>,
        max: Option<i64>,
        enumeration: Option<Vec<String>>,
        pattern: Option<Pattern>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    Timestamp,
    Blob,
}

/// A model pattern, as the model states it (for messages) and compiled.
#[derive(Debug)]
pub struct Pattern {
    pub text: String,
    check: Check,
}

#[derive(Debug)]
enum Check {
    Regex(Regex),
    /// `^(?!\s*$).+`: not blank, one line (the `regex` crate has no
    /// look-ahead, and this is the only look-ahead our operations meet).
    NotBlankLine,
    /// A look-ahead pattern of an operation we do not serve: never checked.
    Unsupported,
}

impl Pattern {
    fn new(text: &str) -> Pattern {
        let check = if text == r"^(?!\s*$).+" {
            Check::NotBlankLine
        } else {
            // Java's `\w` is ASCII; the regex crate's is Unicode. Every
            // pattern is a full match (spec §1.4).
            let ascii = text.replace(r"\w", "[0-9A-Za-z_]");
            match Regex::new(&format!("^(?:{ascii})$")) {
                Ok(r) => Check::Regex(r),
                Err(_) => Check::Unsupported,
            }
        };
        Pattern {
            text: text.to_string(),
            check,
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match &self.check {
            Check::Regex(r) => r.is_match(s),
            Check::NotBlankLine => !s.trim().is_empty() && !s.contains(['\n', '\r']),
            Check::Unsupported => true,
        }
    }

    pub fn is_supported(&self) -> bool {
        !matches!(self.check, Check::Unsupported)
    }
}

pub struct Operation {
    pub input: Option<String>,
    pub output: Option<String>,
}

pub struct Model {
    pub shapes: HashMap<String, Shape>,
    pub operations: HashMap<String, Operation>,
}

fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k)
        .and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

fn target(v: &Value, k: &str) -> String {
    v[k]["shape"].as_str().unwrap_or_default().to_string()
}

impl Model {
    fn parse(text: &str) -> Model {
        // The file is compiled in and checked by the tests: a defect here
        // is a build defect, not an input error.
        let m: Value = serde_json::from_str(text).expect("the embedded SSM model is JSON");
        let mut shapes = HashMap::new();
        for (name, s) in m["shapes"].as_object().expect("model shapes") {
            let shape = match s["type"].as_str().unwrap_or_default() {
                "structure" => Shape::Structure {
                    members: s["members"]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| {
                                    (
                                        k.clone(),
                                        v["shape"].as_str().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    required: s["required"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                "list" => Shape::List {
                    member: target(s, "member"),
                    min: int(s, "min"),
                    max: int(s, "max"),
                },
                "map" => Shape::Map {
                    key: target(s, "key"),
                    value: target(s, "value"),
                    min: int(s, "min"),
                    max: int(s, "max"),
                },
                "string" => Shape::String {
                    min: int(s, "min"),
                    max: int(s, "max"),
                    enumeration: s["enum"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    }),
                    pattern: s["pattern"].as_str().map(Pattern::new),
                },
                "integer" | "long" => Shape::Integer {
                    min: int(s, "min"),
                    max: int(s, "max"),
                },
                "boolean" => Shape::Boolean,
                "timestamp" => Shape::Timestamp,
                _ => Shape::Blob,
            };
            shapes.insert(name.clone(), shape);
        }
        let operations = m["operations"]
            .as_object()
            .expect("model operations")
            .iter()
            .map(|(name, op)| {
                (
                    name.clone(),
                    Operation {
                        input: op["input"]["shape"].as_str().map(str::to_string),
                        output: op["output"]["shape"].as_str().map(str::to_string),
                    },
                )
            })
            .collect();
        Model { shapes, operations }
    }
}

pub fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::parse(MODEL_JSON))
}

/// What is wrong with an input.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A member of the wrong JSON type: `SerializationException`.
    Type(String),
    /// Constraint violations, AWS-worded: `ValidationException`.
    Constraints(Vec<String>),
}

impl Invalid {
    /// `1 validation error detected: …`, several joined with `; `.
    pub fn message(&self) -> String {
        match self {
            Invalid::Type(m) => m.clone(),
            Invalid::Constraints(v) => constraints_message(v),
        }
    }
}

pub fn constraints_message(v: &[String]) -> String {
    let n = v.len();
    format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        v.join("; ")
    )
}

/// Values that the client's model does not validate but AWS's own guides
/// send, accepted besides the enum (spec §2.5: `Type=NotEqual`).
fn enum_aliases(shape: &str) -> &'static [&'static str] {
    match shape {
        "ComplianceQueryOperatorType" => {
            &["Equal", "NotEqual", "BeginWith", "LessThan", "GreaterThan"]
        }
        _ => &[],
    }
}

fn lower_camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(shown).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "structure",
    }
}

struct Walker<'m> {
    model: &'m Model,
    errors: Vec<String>,
}

impl Walker<'_> {
    fn err(&mut self, value: Option<&Value>, path: &str, constraint: String) {
        let v = match value {
            None | Some(Value::Null) => "Value null".to_string(),
            Some(v) => format!("Value '{}'", shown(v)),
        };
        self.errors.push(format!(
            "{v} at '{path}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn length(&mut self, v: &Value, len: i64, path: &str, min: Option<i64>, max: Option<i64>) {
        if let Some(min) = min
            && len < min
        {
            self.err(
                Some(v),
                path,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
        if let Some(max) = max
            && len > max
        {
            self.err(
                Some(v),
                path,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    fn walk(&mut self, shape_name: &str, v: &Value, path: &str) -> Result<(), Invalid> {
        let Some(shape) = self.model.shapes.get(shape_name) else {
            return Ok(());
        };
        let wrong = || {
            Invalid::Type(format!(
                "Unexpected {} at '{}': expected {}",
                json_type(v),
                if path.is_empty() { "input" } else { path },
                match shape {
                    Shape::Structure { .. } => "a structure (JSON object)",
                    Shape::List { .. } => "a list",
                    Shape::Map { .. } => "a map (JSON object)",
                    Shape::String { .. } => "a string",
                    Shape::Integer { .. } => "an integer",
                    Shape::Boolean => "a boolean",
                    Shape::Timestamp => "a timestamp (epoch seconds)",
                    Shape::Blob => "base64 text",
                }
            ))
        };
        match shape {
            Shape::Structure { members, required } => {
                let obj = v.as_object().ok_or_else(wrong)?;
                for r in required {
                    if obj.get(r).is_none_or(Value::is_null) {
                        let p = join(path, &lower_camel(r));
                        self.err(None, &p, "Member must not be null".into());
                    }
                }
                for (name, target) in members {
                    if let Some(mv) = obj.get(name)
                        && !mv.is_null()
                    {
                        let p = join(path, &lower_camel(name));
                        self.walk(target, mv, &p)?;
                    }
                }
            }
            Shape::List { member, min, max } => {
                let a = v.as_array().ok_or_else(wrong)?;
                self.length(v, a.len() as i64, path, *min, *max);
                for (i, item) in a.iter().enumerate() {
                    let p = format!("{path}.{}.member", i + 1);
                    if item.is_null() {
                        self.err(None, &p, "Member must not be null".into());
                        continue;
                    }
                    self.walk(member, item, &p)?;
                }
            }
            Shape::Map {
                key,
                value,
                min,
                max,
            } => {
                let o = v.as_object().ok_or_else(wrong)?;
                self.length(v, o.len() as i64, path, *min, *max);
                for (k, item) in o {
                    let kp = format!("{path}.key");
                    self.walk(key, &Value::String(k.clone()), &kp)?;
                    let p = format!("{path}.{k}.member");
                    self.walk(value, item, &p)?;
                }
            }
            Shape::String {
                min,
                max,
                enumeration,
                pattern,
            } => {
                let s = v.as_str().ok_or_else(wrong)?;
                // Java counts UTF-16 code units.
                let len = s.encode_utf16().count() as i64;
                self.length(v, len, path, *min, *max);
                if let Some(values) = enumeration
                    && !values.iter().any(|e| e == s)
                    && !enum_aliases(shape_name).contains(&s)
                {
                    self.err(
                        Some(v),
                        path,
                        format!(
                            "Member must satisfy enum value set: [{}]",
                            values.join(", ")
                        ),
                    );
                }
                if let Some(p) = pattern
                    && !p.matches(s)
                {
                    self.err(
                        Some(v),
                        path,
                        format!("Member must satisfy regular expression pattern: {}", p.text),
                    );
                }
            }
            Shape::Integer { min, max } => {
                let n = v
                    .as_i64()
                    .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                    .ok_or_else(wrong)?;
                if let Some(min) = min
                    && n < *min
                {
                    self.err(
                        Some(v),
                        path,
                        format!("Member must have value greater than or equal to {min}"),
                    );
                }
                if let Some(max) = max
                    && n > *max
                {
                    self.err(
                        Some(v),
                        path,
                        format!("Member must have value less than or equal to {max}"),
                    );
                }
            }
            Shape::Boolean => {
                v.as_bool().ok_or_else(wrong)?;
            }
            Shape::Timestamp => {
                if parse_timestamp(v).is_none() {
                    return Err(wrong());
                }
            }
            Shape::Blob => {
                v.as_str().ok_or_else(wrong)?;
            }
        }
        Ok(())
    }
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    }
}

/// A timestamp member: epoch seconds (integer or fraction), or, defensively,
/// ISO-8601 text (spec §1.3).
pub fn parse_timestamp(v: &Value) -> Option<jiff::Timestamp> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite() || f.abs() > 1.0e12 {
                return None;
            }
            let millis = (f * 1000.0).round() as i64;
            jiff::Timestamp::from_millisecond(millis).ok()
        }
        Value::String(s) => s.parse::<jiff::Timestamp>().ok().or_else(|| {
            s.parse::<f64>()
                .ok()
                .and_then(|f| parse_timestamp(&serde_json::json!(f)))
        }),
        _ => None,
    }
}

/// Validates `input` against the operation's input shape.
pub fn validate(operation: &str, input: &Value) -> Result<(), Invalid> {
    let m = model();
    let Some(shape) = m.operations.get(operation).and_then(|o| o.input.as_deref()) else {
        return Ok(());
    };
    let mut w = Walker {
        model: m,
        errors: Vec::new(),
    };
    w.walk(shape, input, "")?;
    if w.errors.is_empty() {
        Ok(())
    } else {
        Err(Invalid::Constraints(w.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_pattern_of_our_operations_compiles() {
        // The one look-ahead pattern left is an output-only shape; the
        // other (registration metadata, alarm names) is hand-coded.
        let m = model();
        assert_eq!(m.operations.len(), 57);
        let mut unsupported: Vec<&str> = m
            .shapes
            .iter()
            .filter_map(|(n, s)| match s {
                Shape::String {
                    pattern: Some(p), ..
                } if !p.is_supported() => Some(n.as_str()),
                _ => None,
            })
            .collect();
        unsupported.sort();
        assert_eq!(unsupported, ["StringDateTime"]);
    }

    #[test]
    fn aws_worded_errors() {
        assert_eq!(
            validate(
                "GetPatchBaseline",
                &json!({"BaselineId": "pb-0123456789abcdef0"})
            ),
            Ok(())
        );
        let e = validate("GetPatchBaseline", &json!({})).unwrap_err();
        assert_eq!(
            e.message(),
            "1 validation error detected: Value null at 'baselineId' failed to satisfy constraint: Member must not be null"
        );
        let e = validate(
            "GetPatchBaseline",
            &json!({"BaselineId": "pb-bad id with spaces x"}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "1 validation error detected: Value 'pb-bad id with spaces x' at 'baselineId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-:/]{20,128}$"
        );
        let e = validate(
            "DescribePatchProperties",
            &json!({"OperatingSystem": "BEOS", "Property": "PRODUCT", "MaxResults": 51}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "2 validation errors detected: Value '51' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50; Value 'BEOS' at 'operatingSystem' failed to satisfy constraint: Member must satisfy enum value set: [WINDOWS, AMAZON_LINUX, AMAZON_LINUX_2, AMAZON_LINUX_2022, UBUNTU, REDHAT_ENTERPRISE_LINUX, SUSE, CENTOS, ORACLE_LINUX, DEBIAN, MACOS, RASPBIAN, ROCKY_LINUX, ALMA_LINUX, AMAZON_LINUX_2023]"
        );
        let e = validate(
            "CreatePatchBaseline",
            &json!({"Name": "ok-name", "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "PRODUCT", "Values": []}]}}]}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "1 validation error detected: Value '[]' at 'approvalRules.patchRules.1.member.patchFilterGroup.patchFilters.1.member.values' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        // Unknown members are ignored; wrong types are serialization errors.
        assert_eq!(
            validate("GetDefaultPatchBaseline", &json!({"Bogus": 1})),
            Ok(())
        );
        assert!(matches!(
            validate("GetPatchBaseline", &json!({"BaselineId": 7})),
            Err(Invalid::Type(_))
        ));
        assert!(matches!(
            validate("GetPatchBaseline", &json!([])),
            Err(Invalid::Type(_))
        ));
        // The look-ahead pattern of registration metadata, hand-coded.
        let meta = |v: &str| {
            validate(
                "CreateActivation",
                &json!({"IamRole": "r", "RegistrationMetadata": [{"Key": "k", "Value": v}]}),
            )
        };
        assert_eq!(meta("x"), Ok(()));
        assert!(meta("   ").is_err());
        // Compliance operator aliases from AWS's own guides.
        assert_eq!(
            validate(
                "ListComplianceSummaries",
                &json!({"Filters": [{"Key": "ComplianceType", "Values": ["Patch"], "Type": "NotEqual"}]})
            ),
            Ok(())
        );
        // Java's \w is ASCII.
        assert!(
            validate(
                "DescribeInstancePatches",
                &json!({"InstanceId": "mi-0123456789abcdéf0"})
            )
            .is_err()
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp(&json!(1893553445)),
            Some("2030-01-02T03:04:05Z".parse().unwrap())
        );
        assert_eq!(
            parse_timestamp(&json!(1893553445.5)).map(|t| t.subsec_millisecond()),
            Some(500)
        );
        assert!(parse_timestamp(&json!("2030-01-02T03:04:05Z")).is_some());
        assert!(parse_timestamp(&json!("tomorrow")).is_none());
        assert!(parse_timestamp(&json!(1e300)).is_none());
    }
}
