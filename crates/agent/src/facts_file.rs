//! Facts kept for the server: a scan leaves the facts in a file (gzip JSON,
//! replaced atomically, 0600) and a [`ScanSummary`] to offer first; the file
//! is uploaded only when the server does not know the inventory (DESIGN
//! decision 2). The run loop's scans and the invocations' scans both go
//! this way.

use anyhow::{Context, Result, anyhow};
use jiff::Timestamp;
use patchfleet_core::facts::NodeFacts;
use patchfleet_protocol::NodeState;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What is offered before the facts themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSummary {
    pub content_hash: String,
    pub state: NodeState,
}

/// A scan an invocation made, with its time: uploaded before its result
/// is reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredScan {
    pub summary: ScanSummary,
    pub scanned_at: Timestamp,
}

/// Writes `facts` to `out` (gzip JSON) and returns what to offer.
pub fn store(facts: &NodeFacts, out: &Path) -> Result<ScanSummary> {
    let json = serde_json::to_vec(facts)?;
    let packed = gzip(&json).map_err(|e| anyhow!("compressing the facts: {e}"))?;
    crate::channel::state::write_atomic(out, &packed, 0o600)?;
    Ok(ScanSummary {
        content_hash: facts.content_hash(),
        state: NodeState::of(facts),
    })
}

/// [`store`], and the [`StoredScan`] next to it in `summary_out`.
pub fn store_with_summary(facts: &NodeFacts, out: &Path, summary_out: &Path) -> Result<()> {
    let stored = StoredScan {
        summary: store(facts, out)?,
        scanned_at: Timestamp::now(),
    };
    let json = serde_json::to_vec(&stored)?;
    crate::channel::state::write_atomic(summary_out, &json, 0o600)
}

/// The [`StoredScan`] in `path`, if there is one.
pub fn read_summary(path: &Path) -> Result<Option<StoredScan>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips() {
        let data = br#"{"packages":[]}"#.repeat(100);
        let packed = gzip(&data).unwrap();
        assert!(packed.len() < data.len());
        assert_eq!(gunzip(&packed).unwrap(), data);
    }

    #[test]
    fn a_summary_round_trips_and_a_bad_one_names_its_file() {
        let dir = std::env::temp_dir().join(format!(
            "patchfleet-facts-file-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let facts = NodeFacts::from_json(
            r#"{"format": "patchfleet.facts/1",
                "os": {"operating_system": "DEBIAN", "product": "Debian12"},
                "running_kernel": "6.1.0-26-amd64"}"#,
        )
        .unwrap();
        let (out, summary) = (dir.join("f.gz"), dir.join("f.scan"));
        assert_eq!(read_summary(&summary).unwrap(), None);
        store_with_summary(&facts, &out, &summary).unwrap();
        let back = read_summary(&summary).unwrap().unwrap();
        assert_eq!(back.summary.content_hash, facts.content_hash());
        assert_eq!(
            back.summary.state.running_kernel.as_deref(),
            Some("6.1.0-26-amd64")
        );
        let json = gunzip(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(
            NodeFacts::from_json(std::str::from_utf8(&json).unwrap()).unwrap(),
            facts
        );
        std::fs::write(&summary, b"{").unwrap();
        let e = read_summary(&summary).unwrap_err().to_string();
        assert!(e.starts_with(&summary.display().to_string()), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
