//! `--baseline FILE | --predefined NAME`, shared by `scan` and `install`:
//! which baseline judges the node. A baseline named on the command line is
//! loaded before any scan, so a typo fails at once; without one, the
//! predefined default of the node's operating system is used.

use anyhow::{Context, Result, anyhow};
use clap::Args;
use patchfleet_core::baseline::{Baseline, predefined};
use patchfleet_core::os::OperatingSystem;
use std::path::PathBuf;

#[derive(Args)]
pub struct BaselineArgs {
    /// Baseline file (JSON or YAML with SSM field names).
    #[arg(long, conflicts_with = "predefined")]
    baseline: Option<PathBuf>,
    /// A predefined baseline by name or id, e.g. AWS-DebianDefaultPatchBaseline.
    /// Default (neither flag): the predefined default of the node's operating system.
    #[arg(long)]
    predefined: Option<String>,
}

impl BaselineArgs {
    /// The baseline the flags name, if any.
    pub fn explicit(&self) -> Result<Option<Baseline>> {
        if let Some(path) = &self.baseline {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            return text
                .parse::<Baseline>()
                .map(Some)
                .map_err(|e| anyhow!("{}: {e}", path.display()));
        }
        if let Some(name) = &self.predefined {
            return predefined::by_id_or_name(name)
                .cloned()
                .map(Some)
                .ok_or_else(|| {
                    let names: Vec<&str> = predefined::all()
                        .iter()
                        .map(|b| b.name_or_empty())
                        .collect();
                    anyhow!(
                        "no predefined baseline '{name}' (known: {})",
                        names.join(", ")
                    )
                });
        }
        Ok(None)
    }
}

/// `explicit`, or else the predefined default baseline of `os`.
pub fn or_default(explicit: Option<Baseline>, os: OperatingSystem) -> Result<Baseline> {
    match explicit {
        Some(b) => Ok(b),
        None => predefined::default_for(os).cloned().ok_or_else(|| {
            anyhow!(
                "no predefined baseline for {}: give --baseline FILE",
                os.as_str()
            )
        }),
    }
}
