//! Reading the files the offline tools take: baselines (JSON or YAML, by
//! extension or content) and node facts.

use anyhow::{Context, Result, anyhow};
use patchfleet_core::baseline::{Baseline, predefined};
use patchfleet_core::facts::NodeFacts;
use std::path::Path;

pub fn read_text(path: &Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// YAML when the extension says so, or when the text does not start like JSON.
pub fn parse_baseline(path: &Path, text: &str) -> Result<Baseline> {
    let yaml = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => true,
        Some("json") => false,
        _ => !text.trim_start().starts_with('{'),
    };
    let parsed = if yaml {
        Baseline::from_yaml(text)
    } else {
        Baseline::from_json(text)
    };
    parsed.map_err(|e| anyhow!("{}: {e}", path.display()))
}

pub fn load_baseline(file: Option<&Path>, predefined_name: Option<&str>) -> Result<Baseline> {
    match (file, predefined_name) {
        (Some(path), None) => parse_baseline(path, &read_text(path)?),
        (None, Some(name)) => predefined::by_id_or_name(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = predefined::all()
                .iter()
                .map(|b| b.name_or_empty())
                .collect();
            anyhow!(
                "no predefined baseline '{name}' (known: {})",
                names.join(", ")
            )
        }),
        _ => Err(anyhow!(
            "give exactly one of --baseline FILE and --predefined NAME"
        )),
    }
}

pub fn load_facts(path: &Path) -> Result<NodeFacts> {
    NodeFacts::from_json(&read_text(path)?).map_err(|e| anyhow!("{}: {e}", path.display()))
}
