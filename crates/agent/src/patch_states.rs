//! The node's memory between operations (Patch Manager's patch-states file,
//! spec §4.3): when the last `NoReboot` install ended and which packages it
//! left pending a reboot. Read into the facts before every evaluation,
//! written after an install with `NoReboot`.

use anyhow::{Context, Result, anyhow};
use patchfleet_core::facts::RebootState;
use std::path::{Path, PathBuf};

/// Where the state lives under a root.
pub fn path(root: &Path) -> PathBuf {
    root.join("var/lib/patchfleet/patch-states.json")
}

/// The recorded state; none when the file does not exist. A file that does
/// not read is an error naming it: guessing would misreport reboots.
pub fn read(root: &Path) -> Result<Option<RebootState>> {
    let file = path(root);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        anyhow!(
            "{}: {e} (remove it after a reboot and a scan)",
            file.display()
        )
    })
}

/// Writes the state atomically (a new file renamed over the old one).
pub fn write(root: &Path, state: &RebootState) -> Result<()> {
    let file = path(root);
    let dir = file.parent().expect("the state file has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = file.with_extension("json.new");
    let text = serde_json::to_string_pretty(state)? + "\n";
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}
