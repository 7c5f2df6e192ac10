//! Which nodes a command runs on (spec ssm-api §3.1, §3.2): `Target`
//! lists as the API sends them, the AWS CLI shorthand, and the matcher the
//! server runs over its registered nodes when the command starts.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::BuildHasher;

/// At most this many `Target` entries per command (the model's limit).
pub const MAX_TARGETS: usize = 5;
/// At most this many values per entry (the model's limit; the Run Command
/// guide says 5 for tags, the API accepts 50).
pub const MAX_VALUES: usize = 50;
/// At most this many ids in SendCommand's `InstanceIds`.
pub const MAX_INSTANCE_IDS: usize = 50;
/// The model's length limit of `Target.Key`.
const MAX_KEY_LEN: usize = 163;
/// AWS tag keys are at most 128 characters.
const MAX_TAG_KEY_LEN: usize = 128;

/// A target list (or instance id list) that cannot be used; the message
/// names the entry and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The list is malformed: too long, an empty entry, a bad key or value.
    #[error("{0}")]
    Invalid(String),
    /// A target kind Patchfleet does not offer (resource groups).
    #[error("{0}")]
    Unsupported(String),
}

impl TargetError {
    /// The AWS error code a server answers with.
    pub fn code(&self) -> &'static str {
        match self {
            TargetError::Invalid(_) => "ValidationException",
            TargetError::Unsupported(_) => "InvalidTarget",
        }
    }
}

fn invalid(msg: impl Into<String>) -> TargetError {
    TargetError::Invalid(msg.into())
}

/// One `Target {Key, Values}` exactly as the API carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Target {
    /// `InstanceIds`, `tag:<TagKey>` or `tag-key`.
    pub key: String,
    /// ORed values of this entry.
    #[serde(default)]
    pub values: Vec<String>,
}

/// Whether `id` is a managed-node id: `mi-` and 17 hex digits (hybrid
/// nodes, ours) or `i-` and 8 to 17 hex digits (EC2).
pub fn is_node_id(id: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if let Some(rest) = id.strip_prefix("mi-") {
        rest.len() == 17 && hex(rest)
    } else if let Some(rest) = id.strip_prefix("i-") {
        (8..=17).contains(&rest.len()) && hex(rest)
    } else {
        false
    }
}

/// One validated entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selector {
    /// Every registered node (`InstanceIds` with `*`).
    AllNodes,
    /// These node ids.
    NodeIds(Vec<String>),
    /// Nodes whose tag `key` has one of `values`.
    Tag {
        /// The tag key (after `tag:`).
        key: String,
        /// The accepted tag values.
        values: Vec<String>,
    },
    /// Nodes having any of these tag keys.
    TagKey(Vec<String>),
}

impl Selector {
    /// Whether a node matches this entry (values are ORed).
    pub fn matches<S: BuildHasher>(
        &self,
        node_id: &str,
        tags: &HashMap<String, String, S>,
    ) -> bool {
        match self {
            Selector::AllNodes => true,
            Selector::NodeIds(ids) => ids.iter().any(|id| id == node_id),
            Selector::Tag { key, values } => tags
                .get(key.as_str())
                .is_some_and(|v| values.iter().any(|want| want == v)),
            Selector::TagKey(keys) => keys.iter().any(|k| tags.contains_key(k.as_str())),
        }
    }
}

/// A validated target list: what a command stores and matches nodes with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSet {
    /// The entries, ANDed.
    pub selectors: Vec<Selector>,
}

impl TargetSet {
    /// Validates SendCommand's `Targets` (spec §3.2): 1–5 entries of 1–50
    /// values; keys `InstanceIds` (any case; `*` means every node),
    /// `tag:<TagKey>` and `tag-key`; resource groups are refused.
    pub fn from_targets(targets: &[Target]) -> Result<Self, TargetError> {
        if targets.is_empty() {
            return Err(invalid("Targets: at least one target is required"));
        }
        if targets.len() > MAX_TARGETS {
            return Err(invalid(format!(
                "Targets: {} entries given, at most {MAX_TARGETS} are allowed",
                targets.len()
            )));
        }
        let selectors = targets
            .iter()
            .enumerate()
            .map(|(i, t)| selector(i, t))
            .collect::<Result<_, _>>()?;
        Ok(Self { selectors })
    }

    /// Validates SendCommand's `InstanceIds` (1–50 node ids) as the
    /// equivalent target list.
    pub fn from_instance_ids(ids: &[String]) -> Result<Self, TargetError> {
        if ids.is_empty() {
            return Err(invalid("InstanceIds: at least one node id is required"));
        }
        if ids.len() > MAX_INSTANCE_IDS {
            return Err(invalid(format!(
                "InstanceIds: {} ids given, at most {MAX_INSTANCE_IDS} are allowed",
                ids.len()
            )));
        }
        if let Some(bad) = ids.iter().find(|id| !is_node_id(id)) {
            return Err(invalid(format!(
                "InstanceIds: {bad:?} is not a node id (mi- and 17 hex digits, or i- and 8–17)"
            )));
        }
        Ok(Self {
            selectors: vec![Selector::NodeIds(ids.to_vec())],
        })
    }

    /// Whether a node matches every entry (AND of entries, OR of values).
    pub fn matches<S: BuildHasher>(
        &self,
        node_id: &str,
        tags: &HashMap<String, String, S>,
    ) -> bool {
        self.selectors.iter().all(|s| s.matches(node_id, tags))
    }
}

fn selector(index: usize, t: &Target) -> Result<Selector, TargetError> {
    let key = t.key.as_str();
    let place = format!("Targets[{index}] ({key:?})");
    if key.is_empty() || key.chars().count() > MAX_KEY_LEN {
        return Err(invalid(format!(
            "{place}: the key must be 1–{MAX_KEY_LEN} characters"
        )));
    }
    if key.starts_with("resource-groups:") {
        return Err(TargetError::Unsupported(format!(
            "{place}: resource groups are not supported by Patchfleet; target nodes by tag:<Key>, tag-key or InstanceIds"
        )));
    }
    if !key
        .chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=-@".contains(c))
    {
        return Err(invalid(format!(
            "{place}: the key has a character Targets do not allow"
        )));
    }
    if t.values.is_empty() {
        return Err(invalid(format!("{place}: at least one value is required")));
    }
    if t.values.len() > MAX_VALUES {
        return Err(invalid(format!(
            "{place}: {} values given, at most {MAX_VALUES} are allowed",
            t.values.len()
        )));
    }
    if key.eq_ignore_ascii_case("InstanceIds") {
        if t.values.iter().any(|v| v == "*") {
            return Ok(Selector::AllNodes);
        }
        if let Some(bad) = t.values.iter().find(|v| !is_node_id(v)) {
            return Err(invalid(format!(
                "{place}: {bad:?} is not a node id (mi- and 17 hex digits, or i- and 8–17, or *)"
            )));
        }
        return Ok(Selector::NodeIds(t.values.clone()));
    }
    if key == "tag-key" {
        if let Some(bad) = t.values.iter().find(|v| !valid_tag_key(v)) {
            return Err(invalid(format!(
                "{place}: {bad:?} is not a tag key (1–{MAX_TAG_KEY_LEN} characters)"
            )));
        }
        return Ok(Selector::TagKey(t.values.clone()));
    }
    if let Some(tag) = key.strip_prefix("tag:") {
        if !valid_tag_key(tag) {
            return Err(invalid(format!(
                "{place}: the tag key after \"tag:\" must be 1–{MAX_TAG_KEY_LEN} characters"
            )));
        }
        return Ok(Selector::Tag {
            key: tag.to_owned(),
            values: t.values.clone(),
        });
    }
    Err(invalid(format!(
        "{place}: unknown target key; use InstanceIds, tag:<Key> or tag-key"
    )))
}

fn valid_tag_key(k: &str) -> bool {
    !k.is_empty() && k.chars().count() <= MAX_TAG_KEY_LEN
}

/// Parses the AWS CLI shorthand, one target per argument:
/// `Key=tag:Environment,Values=Development,Test`. Values run to the next
/// `Key=`/`Values=` member; `\,` and `\\` escape a comma and a backslash.
/// The result still goes through [`TargetSet::from_targets`].
pub fn parse_shorthand<A: AsRef<str>>(args: &[A]) -> Result<Vec<Target>, TargetError> {
    args.iter()
        .enumerate()
        .map(|(i, a)| parse_one(i, a.as_ref()))
        .collect()
}

fn parse_one(index: usize, arg: &str) -> Result<Target, TargetError> {
    let place = format!("--targets argument {} ({arg:?})", index + 1);
    let mut key: Option<String> = None;
    let mut values: Option<Vec<String>> = None;
    // Which member the following comma-separated items belong to.
    let mut in_values = false;
    for item in split_unescaped(arg) {
        if let Some(k) = item.strip_prefix("Key=") {
            if key.is_some() {
                return Err(invalid(format!("{place}: Key given twice")));
            }
            key = Some(k.to_owned());
            in_values = false;
        } else if let Some(v) = item.strip_prefix("Values=") {
            if values.is_some() {
                return Err(invalid(format!("{place}: Values given twice")));
            }
            values = Some(vec![v.to_owned()]);
            in_values = true;
        } else if in_values {
            if let Some(vs) = values.as_mut() {
                vs.push(item);
            }
        } else {
            return Err(invalid(format!(
                "{place}: expected Key=<key>,Values=<value>[,<value>…], found {item:?}"
            )));
        }
    }
    match (key, values) {
        (Some(key), Some(values)) => Ok(Target { key, values }),
        (None, _) => Err(invalid(format!("{place}: Key= is missing"))),
        (_, None) => Err(invalid(format!("{place}: Values= is missing"))),
    }
}

/// Splits at commas not preceded by a backslash, removing the escapes.
fn split_unescaped(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ (',' | '\\')) => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            ',' => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    items.push(cur);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &str, values: &[&str]) -> Target {
        Target {
            key: key.to_owned(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    /// (targets, Ok(selectors) or Err(message fragment))
    type Validation = (Vec<Target>, Result<Vec<Selector>, &'static str>);
    /// (arguments, Ok(targets) or Err(message fragment))
    type Shorthand = (Vec<&'static str>, Result<Vec<Target>, &'static str>);

    const NODE: &str = "mi-0123456789abcdef0";

    #[test]
    fn node_ids() {
        let table = [
            ("mi-0123456789abcdef0", true),
            ("i-0123456789abcdef0", true),
            ("i-01234567", true),
            ("i-0123456", false),
            ("i-0123456789abcdef01", false),
            ("mi-0123456789abcdef", false),
            ("mi-0123456789ABCDEF0", false),
            ("mi-0123456789abcdeg0", false),
            ("MI-0123456789abcdef0", false),
            ("", false),
            ("i-", false),
        ];
        for (id, ok) in table {
            assert_eq!(is_node_id(id), ok, "{id}");
        }
    }

    /// (targets, Ok(selectors) or Err(message fragment))
    #[test]
    fn validation_table() {
        let many: Vec<&str> = vec!["v"; 51];
        let cases: Vec<Validation> = vec![
            (
                vec![t("InstanceIds", &[NODE])],
                Ok(vec![Selector::NodeIds(vec![NODE.into()])]),
            ),
            (vec![t("instanceids", &["*"])], Ok(vec![Selector::AllNodes])),
            (
                vec![t("InstanceIds", &[NODE, "*"])],
                Ok(vec![Selector::AllNodes]),
            ),
            (
                vec![
                    t("tag:Environment", &["Development", "Test"]),
                    t("tag-key", &["Team"]),
                ],
                Ok(vec![
                    Selector::Tag {
                        key: "Environment".into(),
                        values: vec!["Development".into(), "Test".into()],
                    },
                    Selector::TagKey(vec!["Team".into()]),
                ]),
            ),
            (vec![], Err("at least one target")),
            (
                vec![t("tag-key", &["a"]); 6],
                Err("6 entries given, at most 5"),
            ),
            (
                vec![t("tag:Env", &[])],
                Err(r#"Targets[0] ("tag:Env"): at least one value"#),
            ),
            (vec![t("tag:Env", &many)], Err("51 values given")),
            (vec![t("tag:", &["x"])], Err("tag key after")),
            (vec![t("tag-key", &[""])], Err(r#""" is not a tag key"#)),
            (
                vec![t("InstanceIds", &["i-xyz"])],
                Err(r#""i-xyz" is not a node id"#),
            ),
            (
                vec![t("resource-groups:Name", &["web"])],
                Err("resource groups are not supported"),
            ),
            (vec![t("Environment", &["x"])], Err("unknown target key")),
            (vec![t("", &["x"])], Err("key must be 1–163")),
            (
                vec![t("tag:a*b", &["x"])],
                Err("character Targets do not allow"),
            ),
            (vec![t(&"k".repeat(164), &["x"])], Err("key must be 1–163")),
        ];
        for (targets, want) in cases {
            let got = TargetSet::from_targets(&targets);
            match (got, want) {
                (Ok(set), Ok(sel)) => assert_eq!(set.selectors, sel),
                (Err(e), Err(frag)) => {
                    assert!(e.to_string().contains(frag), "{e} lacks {frag:?}")
                }
                (got, want) => panic!("{targets:?}: got {got:?}, want {want:?}"),
            }
        }
        let e = TargetSet::from_targets(&[t("resource-groups:Name", &["x"])]).unwrap_err();
        assert_eq!(e.code(), "InvalidTarget");
    }

    #[test]
    fn instance_id_lists() {
        assert!(TargetSet::from_instance_ids(&[NODE.to_owned()]).is_ok());
        assert!(TargetSet::from_instance_ids(&[]).is_err());
        assert!(TargetSet::from_instance_ids(&vec![NODE.to_owned(); 51]).is_err());
        let e = TargetSet::from_instance_ids(&["*".to_owned()]).unwrap_err();
        assert!(e.to_string().contains(r#""*" is not a node id"#));
    }

    /// (arguments, Ok(targets) or Err(message fragment))
    #[test]
    fn shorthand_table() {
        let cases: Vec<Shorthand> = vec![
            (
                vec!["Key=tag:Environment,Values=Development,Test"],
                Ok(vec![t("tag:Environment", &["Development", "Test"])]),
            ),
            (
                vec!["Key=instanceids,Values=*", "Key=tag-key,Values=Team"],
                Ok(vec![t("instanceids", &["*"]), t("tag-key", &["Team"])]),
            ),
            (
                vec!["Values=a,b,Key=tag:X"],
                Ok(vec![t("tag:X", &["a", "b"])]),
            ),
            (
                vec![r"Key=tag:X,Values=a\,b,c"],
                Ok(vec![t("tag:X", &["a,b", "c"])]),
            ),
            (vec!["Key=tag:X,Values="], Ok(vec![t("tag:X", &[""])])),
            (vec!["Key=tag:X,Values=a=b"], Ok(vec![t("tag:X", &["a=b"])])),
            (vec![], Ok(vec![])),
            (vec!["Key=tag:X"], Err("Values= is missing")),
            (vec!["Values=x"], Err("Key= is missing")),
            (vec!["tag:X=y"], Err("expected Key=<key>")),
            (vec!["Key=a,Key=b,Values=c"], Err("Key given twice")),
            (vec!["Key=a,Values=b,Values=c"], Err("Values given twice")),
            (vec!["key=a,values=b"], Err("expected Key=<key>")),
            (vec!["Key=a,Values=b", ""], Err("argument 2")),
        ];
        for (args, want) in cases {
            match (parse_shorthand(&args), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{args:?}"),
                (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{e} lacks {frag:?}"),
                (got, want) => panic!("{args:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// (targets, node id, tags, matches)
    #[test]
    fn matcher_table() {
        let other = "i-0123456789abcdef0";
        let tags = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let env_dev = [("Environment", "Development")];
        let cases = [
            (vec![t("InstanceIds", &["*"])], NODE, tags(&[]), true),
            (vec![t("InstanceIds", &[NODE])], NODE, tags(&[]), true),
            (vec![t("InstanceIds", &[NODE])], other, tags(&[]), false),
            (
                vec![t("tag:Environment", &["Test", "Development"])],
                NODE,
                tags(&env_dev),
                true,
            ),
            (
                vec![t("tag:Environment", &["Test"])],
                NODE,
                tags(&env_dev),
                false,
            ),
            (
                vec![t("tag:environment", &["Development"])],
                NODE,
                tags(&env_dev),
                false,
            ),
            (
                vec![t("tag:Environment", &["development"])],
                NODE,
                tags(&env_dev),
                false,
            ),
            (
                vec![t("tag-key", &["Team", "Environment"])],
                NODE,
                tags(&env_dev),
                true,
            ),
            (vec![t("tag-key", &["Team"])], NODE, tags(&env_dev), false),
            (
                vec![
                    t("tag:Environment", &["Development"]),
                    t("tag-key", &["Team"]),
                ],
                NODE,
                tags(&[("Environment", "Development"), ("Team", "")]),
                true,
            ),
            (
                vec![
                    t("tag:Environment", &["Development"]),
                    t("InstanceIds", &[other]),
                ],
                NODE,
                tags(&env_dev),
                false,
            ),
            (
                vec![t("tag:Team", &[""])],
                NODE,
                tags(&[("Team", "")]),
                true,
            ),
        ];
        for (targets, id, node_tags, want) in cases {
            let set = TargetSet::from_targets(&targets).unwrap();
            assert_eq!(
                set.matches(id, &node_tags),
                want,
                "{targets:?} vs {id} {node_tags:?}"
            );
        }
    }

    #[test]
    fn json_shape() {
        let v: Vec<Target> =
            serde_json::from_str(r#"[{"Key":"tag:Env","Values":["a","b"]}]"#).unwrap();
        assert_eq!(v, vec![t("tag:Env", &["a", "b"])]);
        assert!(serde_json::from_str::<Target>(r#"{"Key":"k","Value":["a"]}"#).is_err());
    }
}
