//! The output of a document step: its standard output and error go to two
//! sidecar files of the invocation (0600, appended), not to pipes, so they
//! survive the agent's restart and the node's reboot in the middle of an
//! Install, and a step never blocks on a full pipe. Whoever finishes the
//! invocation reads them, capped, into its result; then they go.

use crate::journal::{Journal, Sidecar};
use anyhow::{Context, Result};
use patchfleet_protocol::MAX_OUTPUT_BYTES;
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Ends a stream that was cut at [`MAX_OUTPUT_BYTES`].
pub const TRUNCATED: &str = "\n--output truncated--\n";

pub struct StepOutput {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl StepOutput {
    pub fn of(journal: &Journal, id: &str) -> Result<StepOutput> {
        Ok(StepOutput {
            stdout: journal.sidecar(id, Sidecar::Stdout)?,
            stderr: journal.sidecar(id, Sidecar::Stderr)?,
        })
    }

    /// Both files, opened for appending (created 0600).
    pub fn open(&self) -> Result<(File, File)> {
        Ok((append(&self.stdout)?, append(&self.stderr)?))
    }

    /// Appends a line of the agent's own to the error stream (why the
    /// step was stopped).
    pub fn note(&self, line: &str) -> Result<()> {
        append(&self.stderr)?
            .write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("writing {}", self.stderr.display()))
    }

    /// Both streams as text, each cut at [`MAX_OUTPUT_BYTES`].
    pub fn read(&self) -> Result<(String, String)> {
        Ok((
            read_capped(&self.stdout, MAX_OUTPUT_BYTES)?,
            read_capped(&self.stderr, MAX_OUTPUT_BYTES)?,
        ))
    }

    pub fn remove(&self) {
        for p in [&self.stdout, &self.stderr] {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn append(path: &PathBuf) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// The file's text (lossy UTF-8), at most `cap` bytes with [`TRUNCATED`]
/// included; a missing file is empty.
fn read_capped(path: &PathBuf, cap: usize) -> Result<String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() <= cap {
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    bytes.truncate(cap.saturating_sub(TRUNCATED.len()));
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    // A cut inside a character leaves a replacement character that may
    // be longer than the bytes it replaces.
    while text.len() + TRUNCATED.len() > cap {
        text.pop();
    }
    text.push_str(TRUNCATED);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_on_a_character_boundary() {
        let dir = std::env::temp_dir().join(format!(
            "patchfleet-step-output-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out");
        assert_eq!(read_capped(&p, 100).unwrap(), "");
        std::fs::write(&p, "é".repeat(200)).unwrap();
        let text = read_capped(&p, 101).unwrap();
        assert!(text.len() <= 101, "{}", text.len());
        assert!(
            text.ends_with(TRUNCATED) && text.starts_with("éé"),
            "{text}"
        );
        std::fs::write(&p, "short").unwrap();
        assert_eq!(read_capped(&p, 5).unwrap(), "short");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
