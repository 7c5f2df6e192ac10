//! What every client verb prints: the server's JSON, narrowed by a
//! JMESPath `--query` (as the AWS CLI does), as a table, JSON or YAML.

use anyhow::{Result, anyhow};
use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Applies `query` to `value` (JMESPath).
pub fn query(value: Value, query: Option<&str>) -> Result<Value> {
    let Some(q) = query else { return Ok(value) };
    let expr = jmespath::compile(q).map_err(|e| anyhow!("--query '{q}': {e}"))?;
    let data = jmespath::Variable::from_json(&value.to_string())
        .map_err(|e| anyhow!("--query: the answer is not JSON: {e}"))?;
    let result = expr
        .search(data)
        .map_err(|e| anyhow!("--query '{q}': {e}"))?;
    let text = serde_json::to_string(&*result)?;
    Ok(normalize_numbers(serde_json::from_str(&text)?))
}

/// jmespath returns every number as a float; print integral ones as
/// integers, as the AWS CLI does.
fn normalize_numbers(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(normalize_numbers).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, normalize_numbers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `value` in `format`, ending with a newline.
pub fn render(value: &Value, format: Format) -> Result<String> {
    Ok(match format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(value)?),
        Format::Yaml => serde_yaml_ng::to_string(value)?,
        Format::Table => table(value),
    })
}

/// A list answer (`{"items": [...]}`) or any array of objects becomes rows;
/// an object becomes key/value rows; a scalar is printed as is.
fn table(value: &Value) -> String {
    let rows = match value {
        Value::Object(o) if o.get("items").is_some_and(Value::is_array) => &o["items"],
        other => other,
    };
    match rows {
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut columns: Vec<String> = Vec::new();
            for item in items {
                for k in item.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            let mut t = new_table();
            t.set_header(columns.clone());
            for item in items {
                t.add_row(
                    columns
                        .iter()
                        .map(|c| cell(item.get(c).unwrap_or(&Value::Null))),
                );
            }
            format!("{t}\n")
        }
        Value::Array(items) if items.is_empty() => "(none)\n".to_string(),
        Value::Array(items) => items.iter().map(|v| format!("{}\n", cell(v))).collect(),
        Value::Object(o) => {
            let mut t = new_table();
            for (k, v) in o {
                t.add_row(vec![k.clone(), cell(v)]);
            }
            format!("{t}\n")
        }
        scalar => format!("{}\n", cell(scalar)),
    }
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(cell).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_like_the_aws_cli() {
        let v = json!({"items": [
            {"node_id": "mi-1", "ping_status": "Online", "missing": 3},
            {"node_id": "mi-2", "ping_status": "ConnectionLost", "missing": 0}
        ]});
        let q = query(
            v.clone(),
            Some("items[*].{InstanceId:node_id,ManagedBy:ping_status}"),
        )
        .unwrap();
        assert_eq!(
            q,
            json!([{"InstanceId": "mi-1", "ManagedBy": "Online"},
                   {"InstanceId": "mi-2", "ManagedBy": "ConnectionLost"}])
        );
        assert_eq!(
            query(v.clone(), Some("sum(items[].missing)")).unwrap(),
            json!(3)
        );
        let e = query(v, Some("items[?")).unwrap_err().to_string();
        assert!(e.starts_with("--query 'items[?':"), "{e}");
    }

    #[test]
    fn tables_json_and_yaml() {
        let v = json!({"items": [{"a": 1, "b": ["x", "y"]}, {"a": 2, "c": null}]});
        let t = render(&v, Format::Table).unwrap();
        assert!(t.contains("x, y"), "{t}");
        assert!(t.lines().next().unwrap().starts_with('┌'), "{t}");
        assert!(render(&json!({"items": []}), Format::Table).unwrap() == "(none)\n");
        let y = render(&json!({"a": 1}), Format::Yaml).unwrap();
        assert_eq!(y, "a: 1\n");
        let j = render(&json!({"a": 1}), Format::Json).unwrap();
        assert_eq!(j, "{\n  \"a\": 1\n}\n");
    }
}
