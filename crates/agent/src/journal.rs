//! The agent's durable execution journal of Run Command invocations.
//!
//! The server delivers work at least once (it re-delivers until it has the
//! result), the agent may be restarted at any moment, and an Install may
//! reboot the node in its middle (spec §4.3, §5.2 step 4, §5.4). The journal
//! turns that into "each invocation runs exactly once and its result is
//! reported":
//!
//! * one JSON file per invocation, `<state_dir>/invocations/<id>.json`
//!   (0600: documents may carry parameters), replaced atomically (temporary
//!   file, fsync, rename, fsync of the directory) at every step, so after a
//!   crash or power loss it holds the last step completed, never half a
//!   record;
//! * [`Journal::begin`] is the de-duplication: an invocation id seen before
//!   is never run again; a finished one gives its stored result to report
//!   again (the first report may have been lost);
//! * [`Journal::unfinished`] at start-up lists what to resume and
//!   [`Journal::unreported`] what to report again;
//! * the reboot in the middle of an Install: [`Journal::record_reboot`]
//!   stores the boot id before the reboot, and after a restart
//!   [`Journal::reboot_state`] compares it with the running kernel's
//!   (`/proc/sys/kernel/random/boot_id`, new at every boot) to tell "the
//!   reboot happened, go on with [`Step::PostReboot`]" from "the agent
//!   restarted but the node did not reboot". Every requested reboot is
//!   counted; past `max_reboots` (default [`DEFAULT_MAX_REBOOTS`]) the
//!   request is refused with [`RebootLoop`] — Patch Manager's exit 3, "saw
//!   its reboot marker 5 times", with a configurable limit — so a node whose
//!   reboots never take, or never end the loop, stops rebooting;
//! * a record that cannot be read (a bad disk, a hand edit, a format from
//!   the future) must not stop the agent nor make it run an Install twice:
//!   it is moved aside to `<id>.json.corrupt` and replaced by a finished,
//!   unreported record whose result is a failure ([`RESPONSE_CORRUPT`]),
//!   so the error is reported for that invocation and a re-delivery gets
//!   that result instead of a second run.
//!
//! Every step change is appended to [`Record::transitions`] with its time
//! and boot id: the agent's own execution record, from which "ran exactly
//! once" can be checked.
//!
//! What resuming means is the caller's decision, by the step found (the
//! document step's choice is in `document_step`).
//!
//! Files that belong to an invocation but are not its record — the step's
//! output while it runs, the facts it leaves for the server — are its
//! *sidecars* ([`Sidecar`]), `<id>.<kind>` next to the record; they go
//! when the record is pruned.
//!
//! One agent process owns the journal; nothing here locks against a second
//! one.

use anyhow::{Context, Result, anyhow, bail};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The journal's directory under the agent's state directory.
pub const INVOCATIONS_DIR: &str = "invocations";
/// Where the kernel says which boot this is.
pub const DEFAULT_BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
/// Reboots one invocation may request (Patch Manager gives up after 5
/// markers; a patch run needs one, a post-reboot hook flow two).
pub const DEFAULT_MAX_REBOOTS: u32 = 3;
/// Response code of an invocation whose journal record was corrupt (the
/// code of Patch Manager's "corrupt local state file", spec §5.4).
pub const RESPONSE_CORRUPT: i32 = 152;
/// Response code of an invocation stopped by the reboot-loop guard (spec §5.4).
pub const RESPONSE_REBOOT_LOOP: i32 = 3;
/// The `format` member of every record.
pub const FORMAT: &str = "patchfleet.journal/1";
/// A record larger than this is corrupt: outputs are capped by the runner,
/// so only damage makes one this large, and reading it whole must not
/// exhaust the node's memory.
const MAX_RECORD_BYTES: u64 = 64 << 20;
/// Invocation ids are file names: a server bug (or an attacker who got a
/// node's work queue) must not be able to write outside the journal.
const MAX_ID_LEN: usize = 128;

/// A Run Command invocation as delivered by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// Unique per node and delivery target; the de-duplication key.
    pub invocation_id: String,
    pub command_id: String,
    /// The document and its parameters (opaque to the journal).
    pub document: serde_json::Value,
}

/// Where an invocation is (spec §5.6's flow, plus the reboot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Step {
    Received,
    PreInstallHooks,
    Installing,
    /// A reboot was asked for; `reboots` counts this invocation's requests
    /// so far (this one included), `boot_id_before` is the boot it was
    /// asked from.
    RebootRequested {
        reboots: u32,
        boot_id_before: String,
    },
    PostReboot,
    PostInstallHooks,
    Rescanning,
    OnExitHooks,
    Finished,
}

/// The result reported to the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvocationResult {
    /// Run Command's status: `Success`, `Failed`, `TimedOut`, …
    pub status: String,
    /// The document's exit code (spec §5.4).
    pub response_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One step change, as it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub at: Timestamp,
    pub step: Step,
    /// The boot it happened in (`None` when the boot id could not be read).
    pub boot_id: Option<String>,
}

/// The journal's record of one invocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Always [`FORMAT`]; another value is a record this agent cannot read.
    pub format: String,
    pub invocation_id: String,
    pub command_id: String,
    pub document: serde_json::Value,
    pub received_at: Timestamp,
    pub step: Step,
    /// Reboots requested so far (also after the step moved on).
    pub reboots: u32,
    /// The exit code the step has decided before it ends (an Install's,
    /// kept across its reboot and the hooks that follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Set exactly once, with [`Step::Finished`].
    pub result: Option<InvocationResult>,
    /// The server acknowledged the result.
    pub reported: bool,
    /// Every step, oldest first (the first is [`Step::Received`]).
    pub transitions: Vec<Transition>,
}

impl Record {
    /// The invocation has a result.
    pub fn is_finished(&self) -> bool {
        self.step == Step::Finished
    }
}

/// What [`Journal::begin`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// First delivery: recorded as [`Step::Received`]; run it.
    New(Record),
    /// Seen before: never run it again. Finished → report its stored
    /// result (again); unfinished → it is running or will be resumed.
    AlreadyKnown(Record),
}

/// Whether the reboot an invocation asked for has happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebootState {
    /// The invocation is not waiting for a reboot.
    NotRequested,
    /// Same boot as when the reboot was asked for: it has not happened
    /// (the agent restarted, or the reboot command failed).
    Pending,
    /// The node booted since: go on with [`Step::PostReboot`].
    Completed,
}

/// The reboot-loop guard refused another reboot (spec §5.4, exit 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebootLoop {
    pub invocation_id: String,
    /// Reboots requested, the refused one included.
    pub reboots: u32,
    pub max_reboots: u32,
}

impl RebootLoop {
    /// The failure to finish the invocation with.
    pub fn result(&self) -> InvocationResult {
        InvocationResult {
            status: "Failed".into(),
            response_code: RESPONSE_REBOOT_LOOP,
            stdout: String::new(),
            stderr: self.to_string(),
        }
    }
}

impl fmt::Display for RebootLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invocation {}: reboot {} refused: at most {} reboots per invocation (reboot loop)",
            self.invocation_id, self.reboots, self.max_reboots
        )
    }
}

impl std::error::Error for RebootLoop {}

/// A write takes milliseconds: a temporary this old was left by one that
/// was interrupted.
pub const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(600);

/// The journal in `<state_dir>/invocations`.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
    boot_id_path: PathBuf,
    max_reboots: u32,
}

impl Journal {
    /// Opens (creating, 0700) the journal of `state_dir`, and removes the
    /// temporary files an interrupted write left: those older than
    /// [`STALE_TEMPORARY`], since the agent's other processes (a document
    /// step opens the journal too) may be writing at this very moment.
    pub fn open(state_dir: impl AsRef<Path>) -> Result<Journal> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = state_dir.as_ref().join(INVOCATIONS_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            // write_atomic's temporaries: `.<name>.tmp-<hex>`.
            let stale = || {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= STALE_TEMPORARY)
            };
            if name.starts_with('.') && name.contains(".tmp-") && stale() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Journal {
            dir,
            boot_id_path: PathBuf::from(DEFAULT_BOOT_ID_PATH),
            max_reboots: DEFAULT_MAX_REBOOTS,
        })
    }

    /// Reads the boot id from `path` instead (tests).
    pub fn with_boot_id_path(mut self, path: impl Into<PathBuf>) -> Journal {
        self.boot_id_path = path.into();
        self
    }

    /// Allows `max` reboots per invocation instead of [`DEFAULT_MAX_REBOOTS`].
    pub fn with_max_reboots(mut self, max: u32) -> Journal {
        self.max_reboots = max;
        self
    }

    /// The journal's directory.
    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The running boot's id.
    pub fn boot_id(&self) -> Result<String> {
        let text = std::fs::read_to_string(&self.boot_id_path)
            .with_context(|| format!("reading {}", self.boot_id_path.display()))?;
        let id = text.trim();
        if id.is_empty() {
            bail!("{}: empty", self.boot_id_path.display());
        }
        Ok(id.to_string())
    }

    /// Records a delivery. Only [`Begin::New`] may be run.
    pub fn begin(&self, inv: &Invocation) -> Result<Begin> {
        if let Some(rec) = self.load(&inv.invocation_id, Some(inv))? {
            return Ok(Begin::AlreadyKnown(rec));
        }
        let mut rec = Record {
            format: FORMAT.into(),
            invocation_id: inv.invocation_id.clone(),
            command_id: inv.command_id.clone(),
            document: inv.document.clone(),
            received_at: Timestamp::now(),
            step: Step::Received,
            reboots: 0,
            exit_code: None,
            result: None,
            reported: false,
            transitions: Vec::new(),
        };
        self.push(&mut rec, Step::Received);
        self.store(&rec)?;
        Ok(Begin::New(rec))
    }

    /// The record of `id`, if any (a corrupt one is handled as in the
    /// module documentation).
    pub fn get(&self, id: &str) -> Result<Option<Record>> {
        self.load(id, None)
    }

    /// Moves `id` to `step`. [`Step::RebootRequested`] and
    /// [`Step::Finished`] carry data: use [`Journal::record_reboot`] and
    /// [`Journal::finish`]. A finished invocation does not move.
    pub fn advance(&self, id: &str, step: Step) -> Result<Record> {
        match step {
            Step::RebootRequested { .. } => {
                bail!("invocation {id}: a reboot request goes through record_reboot")
            }
            Step::Finished => bail!("invocation {id}: finishing goes through finish"),
            _ => {}
        }
        let mut rec = self.unfinished_record(id)?;
        self.push(&mut rec, step);
        self.store(&rec)?;
        Ok(rec)
    }

    /// Keeps the exit code `id` has decided (see [`Record::exit_code`]).
    pub fn set_exit_code(&self, id: &str, code: i32) -> Result<Record> {
        let mut rec = self.unfinished_record(id)?;
        rec.exit_code = Some(code);
        self.store(&rec)?;
        Ok(rec)
    }

    /// The path of `id`'s sidecar `kind`.
    pub fn sidecar(&self, id: &str, kind: Sidecar) -> Result<PathBuf> {
        valid_id(id)?;
        Ok(self.dir.join(format!("{id}.{}", kind.extension())))
    }

    /// Records that `id` is about to reboot the node from boot `boot_id`
    /// (normally [`Journal::boot_id`]). Fails with [`RebootLoop`] (the
    /// count kept, the step unchanged) when this would be reboot number
    /// `max_reboots + 1`: then finish with [`RebootLoop::result`] and do
    /// not reboot.
    pub fn record_reboot(&self, id: &str, boot_id: &str) -> Result<Record> {
        let mut rec = self.unfinished_record(id)?;
        rec.reboots = rec.reboots.saturating_add(1);
        if rec.reboots > self.max_reboots {
            let reboots = rec.reboots;
            self.store(&rec)?;
            return Err(RebootLoop {
                invocation_id: id.to_string(),
                reboots,
                max_reboots: self.max_reboots,
            }
            .into());
        }
        let step = Step::RebootRequested {
            reboots: rec.reboots,
            boot_id_before: boot_id.to_string(),
        };
        self.push(&mut rec, step);
        self.store(&rec)?;
        Ok(rec)
    }

    /// Whether the reboot `rec` waits for has happened.
    pub fn reboot_state(&self, rec: &Record) -> Result<RebootState> {
        let Step::RebootRequested { boot_id_before, .. } = &rec.step else {
            return Ok(RebootState::NotRequested);
        };
        Ok(if self.boot_id()? == *boot_id_before {
            RebootState::Pending
        } else {
            RebootState::Completed
        })
    }

    /// Stores the result of `id` (once: a second result is an error and
    /// the first is kept).
    pub fn finish(&self, id: &str, result: InvocationResult) -> Result<Record> {
        let mut rec = self.unfinished_record(id)?;
        rec.result = Some(result);
        self.push(&mut rec, Step::Finished);
        self.store(&rec)?;
        Ok(rec)
    }

    /// The server has the result of `id`.
    pub fn mark_reported(&self, id: &str) -> Result<Record> {
        let mut rec = self
            .get(id)?
            .ok_or_else(|| anyhow!("invocation {id}: not in the journal"))?;
        if !rec.is_finished() {
            bail!("invocation {id}: not finished, nothing to report");
        }
        if !rec.reported {
            rec.reported = true;
            self.store(&rec)?;
        }
        Ok(rec)
    }

    /// Invocations to resume, oldest first.
    pub fn unfinished(&self) -> Result<Vec<Record>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|r| !r.is_finished())
            .collect())
    }

    /// Finished invocations whose result the server has not acknowledged,
    /// oldest first (records found corrupt among them).
    pub fn unreported(&self) -> Result<Vec<Record>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|r| r.is_finished() && !r.reported)
            .collect())
    }

    /// Deletes reported records but the `keep_newest` newest; returns how
    /// many went. Unfinished and unreported ones always stay. A pruned id
    /// delivered again would run again, so keep more than the server can
    /// still re-deliver (it stops once it has the result).
    pub fn prune(&self, keep_newest: usize) -> Result<usize> {
        let mut reported: Vec<Record> = self.all()?.into_iter().filter(|r| r.reported).collect();
        // Newest first.
        reported.reverse();
        let mut removed = 0;
        for rec in reported.iter().skip(keep_newest) {
            for kind in Sidecar::ALL {
                let path = self.sidecar(&rec.invocation_id, kind)?;
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", path.display()));
                    }
                    _ => {}
                }
            }
            let path = self.path(&rec.invocation_id)?;
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Every record, oldest first (by reception, then id).
    fn all(&self) -> Result<Vec<Record>> {
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?
        {
            let e = e.with_context(|| format!("reading {}", self.dir.display()))?;
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            // Not ours (a hand copy, `x.json` of an invalid id): ignored.
            if valid_id(id).is_ok() {
                ids.push(id.to_string());
            }
        }
        let mut recs = Vec::new();
        for id in ids {
            // One unreadable file (an I/O error, a failed quarantine) must
            // not keep the agent from resuming and reporting the others.
            match self.load(&id, None) {
                Ok(Some(r)) => recs.push(r),
                Ok(None) => {}
                Err(e) => crate::collect::warn(&format!("journal: {e:#}")),
            }
        }
        recs.sort_by(|a, b| {
            (a.received_at, &a.invocation_id).cmp(&(b.received_at, &b.invocation_id))
        });
        Ok(recs)
    }

    fn path(&self, id: &str) -> Result<PathBuf> {
        valid_id(id)?;
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// The record of `id`, which must exist and not be finished.
    fn unfinished_record(&self, id: &str) -> Result<Record> {
        let rec = self
            .get(id)?
            .ok_or_else(|| anyhow!("invocation {id}: not in the journal"))?;
        if rec.is_finished() {
            bail!("invocation {id}: already finished");
        }
        Ok(rec)
    }

    /// Reads the record of `id`; a corrupt one is quarantined and replaced
    /// (see the module documentation), `inv` giving its command id when known.
    fn load(&self, id: &str, inv: Option<&Invocation>) -> Result<Option<Record>> {
        let path = self.path(id)?;
        let bytes = match std::fs::File::open(&path) {
            Ok(f) => {
                let mut bytes = Vec::new();
                f.take(MAX_RECORD_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("reading {}", path.display()))?;
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!("reading {}: {e}", path.display())),
        };
        match parse(id, &bytes) {
            Ok(rec) => Ok(Some(rec)),
            Err(problem) => self.quarantine(id, &path, &problem, inv).map(Some),
        }
    }

    /// Moves a corrupt record aside and stores a failed result in its place.
    fn quarantine(
        &self,
        id: &str,
        path: &Path,
        problem: &str,
        inv: Option<&Invocation>,
    ) -> Result<Record> {
        // Earlier corrupt copies are evidence too: never overwritten.
        let mut aside = path.with_file_name(format!("{id}.json.corrupt"));
        let mut n = 1;
        while aside.exists() {
            aside = path.with_file_name(format!("{id}.json.corrupt.{n}"));
            n += 1;
        }
        std::fs::rename(path, &aside).with_context(|| {
            format!(
                "moving the corrupt {} aside to {}",
                path.display(),
                aside.display()
            )
        })?;
        sync_dir(&self.dir)?;
        let mut rec = Record {
            format: FORMAT.into(),
            invocation_id: id.to_string(),
            command_id: inv.map(|i| i.command_id.clone()).unwrap_or_default(),
            document: inv
                .map(|i| i.document.clone())
                .unwrap_or(serde_json::Value::Null),
            received_at: Timestamp::now(),
            step: Step::Finished,
            reboots: 0,
            exit_code: None,
            result: Some(InvocationResult {
                status: "Failed".into(),
                response_code: RESPONSE_CORRUPT,
                stdout: String::new(),
                stderr: format!(
                    "the agent's journal record of this invocation was corrupt ({problem}); \
                     moved to {}; the invocation is not run again",
                    aside.display()
                ),
            }),
            reported: false,
            transitions: Vec::new(),
        };
        self.push(&mut rec, Step::Finished);
        self.store(&rec)?;
        Ok(rec)
    }

    fn push(&self, rec: &mut Record, step: Step) {
        rec.transitions.push(Transition {
            at: Timestamp::now(),
            step: step.clone(),
            // Diagnostics only: an unreadable boot id must not stop a step.
            boot_id: self.boot_id().ok(),
        });
        rec.step = step;
    }

    fn store(&self, rec: &Record) -> Result<()> {
        let path = self.path(&rec.invocation_id)?;
        let json = serde_json::to_string_pretty(rec)? + "\n";
        crate::channel::state::write_atomic(&path, json.as_bytes(), 0o600)
    }
}

/// A file of an invocation next to its record. None ends in `.json`: the
/// journal would take it for a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sidecar {
    /// The document step's standard output while it runs.
    Stdout,
    /// Its standard error.
    Stderr,
    /// The facts of its last scan (gzip JSON), until uploaded.
    Facts,
    /// That scan's summary (`ScanSummary` and its time), until uploaded.
    ScanSummary,
}

impl Sidecar {
    pub const ALL: [Sidecar; 4] = [
        Sidecar::Stdout,
        Sidecar::Stderr,
        Sidecar::Facts,
        Sidecar::ScanSummary,
    ];

    fn extension(self) -> &'static str {
        match self {
            Sidecar::Stdout => "stdout",
            Sidecar::Stderr => "stderr",
            Sidecar::Facts => "facts.gz",
            Sidecar::ScanSummary => "scan",
        }
    }
}

/// Ids are file names: `[A-Za-z0-9._-]`, not starting with a dot, at most
/// [`MAX_ID_LEN`] bytes.
fn valid_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!(
            "invalid invocation id {id:?}: expected 1 to {MAX_ID_LEN} of [A-Za-z0-9._-], not starting with a dot"
        );
    }
    Ok(())
}

/// A record, or what is wrong with it.
fn parse(id: &str, bytes: &[u8]) -> std::result::Result<Record, String> {
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(format!("larger than {MAX_RECORD_BYTES} bytes"));
    }
    let rec: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if rec.format != FORMAT {
        return Err(format!("format {:?}, expected {FORMAT:?}", rec.format));
    }
    if rec.invocation_id != id {
        return Err(format!(
            "holds invocation {:?}, not {id:?}",
            rec.invocation_id
        ));
    }
    // The invariants the rest relies on.
    if rec.is_finished() != rec.result.is_some() {
        return Err("result and step disagree".into());
    }
    if rec.reported && !rec.is_finished() {
        return Err("reported but not finished".into());
    }
    Ok(rec)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct TestDir(PathBuf);

    impl TestDir {
        fn new(tag: &str) -> TestDir {
            let d = std::env::temp_dir().join(format!(
                "patchfleet-journal-{tag}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("boot_id"), "boot-A\n").unwrap();
            TestDir(d)
        }

        fn journal(&self) -> Journal {
            Journal::open(self.0.join("state"))
                .unwrap()
                .with_boot_id_path(self.0.join("boot_id"))
        }

        fn boot(&self, id: &str) {
            std::fs::write(self.0.join("boot_id"), format!("{id}\n")).unwrap();
        }

        fn files(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(self.0.join("state").join(INVOCATIONS_DIR))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn inv(id: &str) -> Invocation {
        Invocation {
            invocation_id: id.into(),
            command_id: format!("cmd-of-{id}"),
            document: json!({"name": "AWS-RunPatchBaseline", "parameters": {"Operation": ["Install"]}}),
        }
    }

    fn ok() -> InvocationResult {
        InvocationResult {
            status: "Success".into(),
            response_code: 0,
            stdout: "Instance is Compliant".into(),
            stderr: String::new(),
        }
    }

    /// The steps of the execution record.
    fn steps(rec: &Record) -> Vec<Step> {
        rec.transitions.iter().map(|t| t.step.clone()).collect()
    }

    /// What an agent does with a delivery: run only what is new (counted
    /// in `runs`); a known one gives its stored result, if any.
    fn deliver(j: &Journal, i: &Invocation, runs: &mut u32) -> Option<InvocationResult> {
        match j.begin(i).unwrap() {
            Begin::New(_) => {
                *runs += 1;
                j.advance(&i.invocation_id, Step::Installing).unwrap();
                j.finish(&i.invocation_id, ok()).unwrap();
                None
            }
            Begin::AlreadyKnown(r) => r.result,
        }
    }

    #[test]
    fn a_reboot_in_the_middle_resumes_once_after_restart() {
        let t = TestDir::new("restart");
        let id = "inv-0001";
        {
            let j = t.journal();
            assert!(matches!(j.begin(&inv(id)).unwrap(), Begin::New(_)));
            j.advance(id, Step::PreInstallHooks).unwrap();
            j.advance(id, Step::Installing).unwrap();
            let boot = j.boot_id().unwrap();
            assert_eq!(boot, "boot-A");
            let rec = j.record_reboot(id, &boot).unwrap();
            assert_eq!(rec.reboots, 1);
            // The agent dies here (the node reboots).
        }
        // Restarted, but the node did not reboot: still pending.
        let j = t.journal();
        let un = j.unfinished().unwrap();
        assert_eq!(un.len(), 1);
        assert_eq!(
            un[0].step,
            Step::RebootRequested {
                reboots: 1,
                boot_id_before: "boot-A".into()
            }
        );
        assert_eq!(j.reboot_state(&un[0]).unwrap(), RebootState::Pending);
        // The reboot happened.
        t.boot("boot-B");
        let j = t.journal();
        let rec = j.unfinished().unwrap().remove(0);
        assert_eq!(j.reboot_state(&rec).unwrap(), RebootState::Completed);
        j.advance(id, Step::PostReboot).unwrap();
        j.advance(id, Step::PostInstallHooks).unwrap();
        j.advance(id, Step::Rescanning).unwrap();
        let done = j.finish(id, ok()).unwrap();
        assert_eq!(j.reboot_state(&done).unwrap(), RebootState::NotRequested);
        assert!(j.unfinished().unwrap().is_empty());
        // Reported once: unreported until marked.
        assert_eq!(j.unreported().unwrap().len(), 1);
        j.mark_reported(id).unwrap();
        assert!(j.unreported().unwrap().is_empty());

        let rec = j.get(id).unwrap().unwrap();
        assert_eq!(
            steps(&rec),
            [
                Step::Received,
                Step::PreInstallHooks,
                Step::Installing,
                Step::RebootRequested {
                    reboots: 1,
                    boot_id_before: "boot-A".into()
                },
                Step::PostReboot,
                Step::PostInstallHooks,
                Step::Rescanning,
                Step::Finished,
            ]
        );
        // Which boot each step happened in.
        let boots: Vec<&str> = rec
            .transitions
            .iter()
            .map(|t| t.boot_id.as_deref().unwrap())
            .collect();
        assert_eq!(boots[..4], ["boot-A"; 4]);
        assert_eq!(boots[4..], ["boot-B"; 4]);
        assert_eq!(rec.result, Some(ok()));
        assert_eq!(t.files(), ["inv-0001.json"]);
    }

    #[test]
    fn a_duplicate_delivery_never_runs_twice() {
        let t = TestDir::new("dup");
        let j = t.journal();
        let i = inv("inv-dup");
        let mut runs = 0;
        assert_eq!(deliver(&j, &i, &mut runs), None);
        // Re-delivered before the report got through: the stored result.
        assert_eq!(deliver(&j, &i, &mut runs), Some(ok()));
        j.mark_reported("inv-dup").unwrap();
        // Re-delivered after the report (at-least-once): the same result again.
        assert_eq!(deliver(&j, &i, &mut runs), Some(ok()));
        // And after a restart.
        let j = t.journal();
        assert_eq!(deliver(&j, &i, &mut runs), Some(ok()));
        assert_eq!(runs, 1);
        let rec = j.get("inv-dup").unwrap().unwrap();
        assert!(rec.reported);
        let installs = steps(&rec)
            .iter()
            .filter(|s| **s == Step::Installing)
            .count();
        assert_eq!(installs, 1);
        assert_eq!(steps(&rec)[0], Step::Received);
        assert_eq!(steps(&rec).len(), 3);

        // A re-delivery while it runs is known but unfinished: not started again.
        let k = inv("inv-running");
        assert!(matches!(j.begin(&k).unwrap(), Begin::New(_)));
        match j.begin(&k).unwrap() {
            Begin::AlreadyKnown(r) => assert!(!r.is_finished() && r.result.is_none()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_exit_code_is_kept_across_steps() {
        let t = TestDir::new("code");
        let j = t.journal();
        j.begin(&inv("i1")).unwrap();
        j.advance("i1", Step::Installing).unwrap();
        assert_eq!(j.set_exit_code("i1", 1).unwrap().exit_code, Some(1));
        j.record_reboot("i1", "boot-A").unwrap();
        t.boot("boot-B");
        let rec = t.journal().advance("i1", Step::PostReboot).unwrap();
        assert_eq!(rec.exit_code, Some(1));
        // Not part of the execution record: no transition of its own.
        assert_eq!(rec.transitions.len(), 4);
        j.finish("i1", ok()).unwrap();
        assert!(j.set_exit_code("i1", 0).is_err(), "finished");
        // Records without it (written before it existed) still read.
        let text = std::fs::read_to_string(j.dir().join("i1.json")).unwrap();
        assert!(text.contains("\"exit_code\": 1"), "{text}");
        let old = text.replace("  \"exit_code\": 1,\n", "");
        std::fs::write(j.dir().join("i1.json"), old).unwrap();
        assert_eq!(j.get("i1").unwrap().unwrap().exit_code, None);
        assert!(j.sidecar("../x", Sidecar::Stdout).is_err());
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let t = TestDir::new("misuse");
        let j = t.journal();
        for bad in [
            "",
            "../etc/passwd",
            ".hidden",
            "a/b",
            "x y",
            "a".repeat(129).as_str(),
        ] {
            let e = j.begin(&inv(bad)).unwrap_err().to_string();
            assert!(e.starts_with("invalid invocation id"), "{e}");
        }
        assert!(j.advance("nope", Step::Installing).is_err());
        assert!(j.finish("nope", ok()).is_err());
        assert!(j.mark_reported("nope").is_err());
        j.begin(&inv("i1")).unwrap();
        assert!(j.mark_reported("i1").is_err(), "not finished");
        assert!(j.advance("i1", Step::Finished).is_err());
        assert!(
            j.advance(
                "i1",
                Step::RebootRequested {
                    reboots: 9,
                    boot_id_before: "x".into()
                }
            )
            .is_err()
        );
        j.finish("i1", ok()).unwrap();
        let other = InvocationResult {
            status: "Failed".into(),
            response_code: 1,
            ..ok()
        };
        let e = j.finish("i1", other).unwrap_err().to_string();
        assert!(e.contains("already finished"), "{e}");
        assert_eq!(j.get("i1").unwrap().unwrap().result, Some(ok()));
        assert!(j.advance("i1", Step::Rescanning).is_err());
        assert!(j.record_reboot("i1", "boot-A").is_err());
        // Marking twice is fine.
        j.mark_reported("i1").unwrap();
        j.mark_reported("i1").unwrap();
        // An unreadable boot id is an error for reboot_state, not for steps.
        std::fs::remove_file(t.0.join("boot_id")).unwrap();
        j.begin(&inv("i2")).unwrap();
        let rec = j.record_reboot("i2", "boot-A").unwrap();
        assert_eq!(rec.transitions.last().unwrap().boot_id, None);
        assert!(j.reboot_state(&rec).is_err());
    }

    #[test]
    fn the_reboot_guard_stops_a_loop() {
        let t = TestDir::new("guard");
        let j = t.journal().with_max_reboots(2);
        let id = "inv-loop";
        j.begin(&inv(id)).unwrap();
        j.advance(id, Step::Installing).unwrap();
        for (n, boot) in [(1, "boot-A"), (2, "boot-B")] {
            t.boot(boot);
            let rec = j.record_reboot(id, boot).unwrap();
            assert_eq!(rec.reboots, n);
            // The node reboots, the install asks again.
            t.boot(&format!("{boot}-next"));
            assert_eq!(j.reboot_state(&rec).unwrap(), RebootState::Completed);
            j.advance(id, Step::PostReboot).unwrap();
        }
        let e = j.record_reboot(id, "boot-C").unwrap_err();
        let lp = e.downcast_ref::<RebootLoop>().expect("a RebootLoop");
        assert_eq!(
            lp,
            &RebootLoop {
                invocation_id: id.into(),
                reboots: 3,
                max_reboots: 2
            }
        );
        // The count is kept, the step is not a reboot request.
        let rec = j.get(id).unwrap().unwrap();
        assert_eq!((rec.reboots, rec.step.clone()), (3, Step::PostReboot));
        let r = j.finish(id, lp.result()).unwrap().result.unwrap();
        assert_eq!(
            (r.status.as_str(), r.response_code),
            ("Failed", RESPONSE_REBOOT_LOOP)
        );
        assert!(r.stderr.contains("reboot loop"), "{}", r.stderr);

        // Reboots that never happen count the same (default limit 3).
        t.boot("same-boot");
        let j = t.journal();
        let id = "inv-stuck";
        j.begin(&inv(id)).unwrap();
        for _ in 0..DEFAULT_MAX_REBOOTS {
            let rec = j.record_reboot(id, "same-boot").unwrap();
            assert_eq!(j.reboot_state(&rec).unwrap(), RebootState::Pending);
        }
        assert!(j.record_reboot(id, "same-boot").is_err());
    }

    #[test]
    fn a_corrupt_record_is_moved_aside_and_reported_as_a_failure() {
        let t = TestDir::new("corrupt");
        let j = t.journal();
        j.begin(&inv("good")).unwrap();
        j.begin(&inv("bad")).unwrap();
        j.advance("bad", Step::Installing).unwrap();
        let path = j.dir().join("bad.json");
        std::fs::write(&path, b"{\"format\": \"patchfleet.jour").unwrap();
        // Found at start-up: not resumed, reported as a failure.
        let un = j.unfinished().unwrap();
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].invocation_id, "good");
        let rep = j.unreported().unwrap();
        assert_eq!(rep.len(), 1);
        let r = rep[0].result.as_ref().unwrap();
        assert_eq!(
            (r.status.as_str(), r.response_code),
            ("Failed", RESPONSE_CORRUPT)
        );
        assert!(
            r.stderr.contains("corrupt") && r.stderr.contains("bad.json.corrupt"),
            "{}",
            r.stderr
        );
        assert_eq!(
            std::fs::read(j.dir().join("bad.json.corrupt")).unwrap(),
            b"{\"format\": \"patchfleet.jour"
        );
        // A re-delivery gets that failure, never a second run.
        match j.begin(&inv("bad")).unwrap() {
            Begin::AlreadyKnown(r) => {
                assert_eq!(r.result.unwrap().response_code, RESPONSE_CORRUPT)
            }
            other => panic!("{other:?}"),
        }

        // Corrupt when the re-delivery arrives: the command id is known then.
        std::fs::write(j.dir().join("third.json"), b"\xff\xfe not json").unwrap();
        match j.begin(&inv("third")).unwrap() {
            Begin::AlreadyKnown(r) => {
                assert_eq!(r.command_id, "cmd-of-third");
                assert!(!r.reported);
                assert_eq!(r.result.unwrap().response_code, RESPONSE_CORRUPT);
            }
            other => panic!("{other:?}"),
        }
        // Well-formed JSON that breaks the invariants, or another invocation's.
        let mut rec = j.get("good").unwrap().unwrap();
        rec.reported = true;
        std::fs::write(j.dir().join("good.json"), serde_json::to_vec(&rec).unwrap()).unwrap();
        let r = j.get("good").unwrap().unwrap().result.unwrap();
        assert!(
            r.stderr.contains("reported but not finished"),
            "{}",
            r.stderr
        );
        std::fs::copy(j.dir().join("third.json"), j.dir().join("fourth.json")).unwrap();
        let r = j.get("fourth").unwrap().unwrap().result.unwrap();
        assert!(
            r.stderr.contains("holds invocation \"third\""),
            "{}",
            r.stderr
        );
        // A second corruption of the same id keeps the first copy.
        std::fs::write(j.dir().join("third.json"), b"[]").unwrap();
        j.get("third").unwrap();
        assert_eq!(
            t.files(),
            [
                "bad.json",
                "bad.json.corrupt",
                "fourth.json",
                "fourth.json.corrupt",
                "good.json",
                "good.json.corrupt",
                "third.json",
                "third.json.corrupt",
                "third.json.corrupt.1",
            ]
        );
    }

    #[test]
    fn prune_keeps_the_newest_reported_and_everything_pending() {
        let t = TestDir::new("prune");
        let j = t.journal();
        for n in 0..6 {
            let id = format!("i{n}");
            j.begin(&inv(&id)).unwrap();
            // Distinct reception times.
            std::thread::sleep(std::time::Duration::from_millis(2));
            if n < 4 {
                j.finish(&id, ok()).unwrap();
                j.mark_reported(&id).unwrap();
            }
        }
        j.finish("i4", ok()).unwrap(); // finished, not reported
        // i5: unfinished
        // Sidecars go with their record, and only with it.
        for id in ["i0", "i4"] {
            std::fs::write(j.sidecar(id, Sidecar::Stdout).unwrap(), b"out").unwrap();
            std::fs::write(j.sidecar(id, Sidecar::Facts).unwrap(), b"gz").unwrap();
        }
        assert_eq!(j.prune(2).unwrap(), 2);
        assert_eq!(
            t.files(),
            [
                "i2.json",
                "i3.json",
                "i4.facts.gz",
                "i4.json",
                "i4.stdout",
                "i5.json"
            ]
        );
        std::fs::remove_file(j.sidecar("i4", Sidecar::Stdout).unwrap()).unwrap();
        std::fs::remove_file(j.sidecar("i4", Sidecar::Facts).unwrap()).unwrap();
        assert_eq!(j.prune(2).unwrap(), 0);
        assert_eq!(j.prune(0).unwrap(), 2);
        assert_eq!(t.files(), ["i4.json", "i5.json"]);
        // A stale temporary from an interrupted write goes at the next open;
        // a fresh one is another process's write in progress and stays.
        let tmp = j.dir().join(".i5.json.tmp-0badf00d");
        std::fs::write(&tmp, b"half").unwrap();
        let _ = t.journal();
        assert!(tmp.exists(), "a write in progress was removed");
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - STALE_TEMPORARY)
            .unwrap();
        let j = t.journal();
        assert!(!tmp.exists());
        assert_eq!(j.unfinished().unwrap().len(), 1);
        assert_eq!(j.unreported().unwrap().len(), 1);
    }

    #[test]
    fn records_are_private_and_round_trip() {
        use std::os::unix::fs::PermissionsExt;
        let t = TestDir::new("files");
        let j = t.journal();
        let Begin::New(rec) = j.begin(&inv("i1")).unwrap() else {
            panic!("not new")
        };
        assert_eq!(j.get("i1").unwrap().unwrap(), rec);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&j.dir().join("i1.json")), 0o600);
        assert_eq!(mode(j.dir()), 0o700);
        assert_eq!(rec.format, FORMAT);
        assert_eq!(rec.document, inv("i1").document);
        assert!(j.get("never-seen").unwrap().is_none());
        // What is not a record file is ignored by the listings.
        std::fs::create_dir(j.dir().join("odd.json")).unwrap();
        std::fs::write(j.dir().join("notes.txt"), b"hello").unwrap();
        assert_eq!(j.unfinished().unwrap(), [rec]);
    }
}
