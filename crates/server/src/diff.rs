//! What changed between two versions of a document (baselines): one entry
//! per changed leaf, with its JSON path, so `baseline diff A B` reads like a
//! review ("ApprovalRules.PatchRules[0].ApproveAfterDays: 7 → 3").

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// The changes from `a` to `b`, in path order. Members that exist on one
/// side only have `before` or `after` alone. Lists are compared by index
/// (baseline lists are short and ordered by the operator).
pub fn diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", Some(a), Some(b), &mut out);
    out
}

fn walk(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Change>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&p, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path: path.to_string(),
            before: a.cloned(),
            after: b.cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_with_paths() {
        let a = json!({"Name": "x", "ApprovalRules": {"PatchRules": [{"ApproveAfterDays": 7}]},
                       "RejectedPatches": ["a"]});
        let b = json!({"Name": "x", "ApprovalRules": {"PatchRules": [{"ApproveAfterDays": 3}]},
                       "RejectedPatches": ["a", "b"], "Description": "d"});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "ApprovalRules.PatchRules[0].ApproveAfterDays",
                "Description",
                "RejectedPatches[1]"
            ]
        );
        assert_eq!(d[0].before, Some(json!(7)));
        assert_eq!(d[0].after, Some(json!(3)));
        assert_eq!(d[1].before, None);
        assert!(diff(&a, &a).is_empty());
    }
}
