//! Patch hooks: the node-local counterpart of `AWS-RunPatchBaselineWithHooks`
//! (spec §5.6).
//!
//! Patch Manager runs hook *documents* sent by the control plane. Patchfleet's
//! server never sends shell to a node, so the hooks are executables an
//! administrator put on the node, one directory per stage under a hooks root
//! (default [`DEFAULT_HOOKS_ROOT`]):
//!
//! | stage | directory | when (spec §5.6) |
//! |---|---|---|
//! | [`Stage::PreInstall`] | `pre-install.d` | before the install (step 3) |
//! | [`Stage::PostInstall`] | `post-install.d` | after the `NoReboot` install (step 5) |
//! | [`Stage::PostReboot`] | `post-reboot.d` | after the reboot the install asked for |
//! | [`Stage::OnExit`] | `on-exit.d` | always last, also after a failure (step 8) |
//!
//! The agent runs hooks as root, so a hook is trusted only when nobody but
//! root could have put it there or changed it (the checks of sudo and
//! OpenSSH): the stage directory, every directory from `/` down to it and to
//! the hooks root, and every hook must be owned by uid 0 and writable by
//! neither group nor others. One violation refuses the whole stage — no hook
//! of it runs — with an error naming the path and the problem: running the
//! trustworthy half of a stage is worse than running none, since hooks of
//! one stage usually depend on each other (drain, then stop, …).
//!
//! Which entries run follows `run-parts` (Debian's default): names matching
//! `^[A-Za-z0-9_-]+$` only (so `*.dpkg-old`, `*.rpmsave`, `README.md`,
//! editor backups never run), regular executable files only, in byte order
//! of their names. Everything else is listed in
//! [`StageOutcome::skipped`] with the reason.
//!
//! Symbolic links: a link in a stage directory is followed only when its
//! target passes the same checks as a hook (root-owned, not group- or
//! world-writable, regular, executable) and every directory above the target
//! does too; the resolved target is what runs, so the file checked is the
//! file executed. A link whose target fails refuses the stage like any other
//! insecure hook; a dangling link is skipped.
//!
//! Each hook runs through [`Runner`] (own process group, `/dev/null` stdin,
//! cleared environment, a timeout killing the whole group, capped output),
//! with `/` as working directory and the variables `PATCHFLEET_STAGE`,
//! `PATCHFLEET_COMMAND_ID`, `PATCHFLEET_INVOCATION_ID`, `PATCHFLEET_OPERATION`
//! and `PATCHFLEET_REBOOT_OPTION`. The first hook that fails (non-zero exit,
//! signal, timeout, cannot start) stops the stage: like a failing
//! `aws:runDocument` step, the caller then goes straight to the on-exit stage.

use patchfleet_core::eval::RebootOption;
use patchfleet_pkg::runner::{Captured, CommandSpec, Exit, RunError, Runner};
use std::fmt;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Where hooks live on a node unless configured otherwise.
pub const DEFAULT_HOOKS_ROOT: &str = "/etc/patchfleet/hooks";
/// Time one hook may take before its process group is killed.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(600);
/// Bytes of a hook's stdout and of its stderr kept (each): enough for a
/// command's output, small enough to store and report.
pub const DEFAULT_OUTPUT_CAP: usize = 64 << 10;

/// A point of the patch flow where hooks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    PreInstall,
    PostInstall,
    PostReboot,
    OnExit,
}

impl Stage {
    /// Every stage, in the order of the flow.
    #[cfg(test)]
    pub const ALL: [Stage; 4] = [
        Stage::PreInstall,
        Stage::PostInstall,
        Stage::PostReboot,
        Stage::OnExit,
    ];

    /// The stage's directory under the hooks root.
    pub fn dir_name(self) -> &'static str {
        match self {
            Stage::PreInstall => "pre-install.d",
            Stage::PostInstall => "post-install.d",
            Stage::PostReboot => "post-reboot.d",
            Stage::OnExit => "on-exit.d",
        }
    }

    /// The value of `PATCHFLEET_STAGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::PreInstall => "PreInstall",
            Stage::PostInstall => "PostInstall",
            Stage::PostReboot => "PostReboot",
            Stage::OnExit => "OnExit",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the hooks are told about the run they belong to.
#[derive(Clone, Debug)]
pub struct HookContext {
    pub command_id: String,
    pub invocation_id: String,
    /// `Scan` or `Install` (the document's `Operation`).
    pub operation: String,
    pub reboot_option: RebootOption,
}

/// One hook that was started.
#[derive(Clone, Debug)]
pub struct HookRun {
    /// The entry in the stage directory (a link's own path, not its target).
    pub path: PathBuf,
    /// `None` when it was killed by a signal or at the timeout.
    pub exit_code: Option<i32>,
    pub duration: Duration,
    /// Captured output, capped (see [`HookRunner::output_cap`]); lossy UTF-8.
    pub stdout: String,
    /// For a hook killed at the timeout, only the tail of its stderr.
    pub stderr: String,
}

/// Why the stage stopped at a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    ExitCode(i32),
    Signal(i32),
    TimedOut(Duration),
    /// The hook could not be started (e.g. a script without `#!`).
    CannotStart(String),
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureReason::ExitCode(c) => write!(f, "exit status {c}"),
            FailureReason::Signal(s) => write!(f, "{}", Exit::Signal(*s)),
            FailureReason::TimedOut(t) => {
                write!(f, "timed out after {t:?}; process group killed")
            }
            FailureReason::CannotStart(e) => write!(f, "cannot start: {e}"),
        }
    }
}

/// The hook that stopped its stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookFailure {
    pub path: PathBuf,
    pub reason: FailureReason,
}

/// An entry of a stage directory that is not a hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedEntry {
    pub path: PathBuf,
    pub reason: String,
}

/// What one stage did. `failed` is `None` when every hook succeeded (or
/// there was none: a missing stage directory is an empty stage).
#[derive(Clone, Debug, Default)]
pub struct StageOutcome {
    /// In the order run; the failing hook, if it started, is the last.
    pub ran: Vec<HookRun>,
    pub skipped: Vec<SkippedEntry>,
    pub failed: Option<HookFailure>,
}

impl StageOutcome {
    /// No hook failed.
    pub fn is_success(&self) -> bool {
        self.failed.is_none()
    }
}

/// A stage that was refused (no hook of it ran) or could not be read.
#[derive(Debug)]
pub enum HookError {
    /// `path` could be changed by someone other than root.
    Insecure {
        stage: Stage,
        path: PathBuf,
        problem: String,
    },
    /// Reading the hooks root or a stage directory failed.
    Io {
        stage: Stage,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookError::Insecure {
                stage,
                path,
                problem,
            } => write!(
                f,
                "{stage} hooks refused, none run: {}: {problem}",
                path.display()
            ),
            HookError::Io {
                stage,
                path,
                source,
            } => write!(
                f,
                "{stage} hooks not run: reading {}: {source}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HookError::Insecure { .. } => None,
            HookError::Io { source, .. } => Some(source),
        }
    }
}

/// Runs the hooks of a stage (see the module documentation).
#[derive(Clone, Debug)]
pub struct HookRunner {
    /// Holds the stage directories; [`DEFAULT_HOOKS_ROOT`] on a node.
    pub hooks_root: PathBuf,
    /// Per hook.
    pub timeout: Duration,
    /// Bytes of stdout and of stderr kept per hook.
    pub output_cap: usize,
    /// Runs the hooks; its own timeout and cap are replaced by the ones above.
    pub runner: Runner,
}

impl Default for HookRunner {
    fn default() -> Self {
        HookRunner::new(DEFAULT_HOOKS_ROOT)
    }
}

/// A hook that passed every check, in run order.
struct Candidate {
    /// The entry in the stage directory.
    entry: PathBuf,
    /// What runs: the entry, or a link's resolved target.
    exec: PathBuf,
}

/// How an entry with a hook's name is treated.
enum Verdict {
    Run(PathBuf),
    Skip(String),
    Refuse { path: PathBuf, problem: String },
}

impl HookRunner {
    /// Hooks from `hooks_root`, with the default timeout and output cap.
    pub fn new(hooks_root: impl Into<PathBuf>) -> HookRunner {
        HookRunner {
            hooks_root: hooks_root.into(),
            timeout: DEFAULT_HOOK_TIMEOUT,
            output_cap: DEFAULT_OUTPUT_CAP,
            runner: Runner::default(),
        }
    }

    /// The directory of `stage`.
    pub fn stage_dir(&self, stage: Stage) -> PathBuf {
        self.hooks_root.join(stage.dir_name())
    }

    /// Runs the hooks of `stage`. `Err` means nothing ran: the stage was
    /// refused as insecure or its directory could not be read. A hook that
    /// fails is not an error but [`StageOutcome::failed`].
    pub fn run_stage(&self, stage: Stage, ctx: &HookContext) -> Result<StageOutcome, HookError> {
        let (candidates, skipped) = self.plan(stage)?;
        let runner = Runner {
            output_cap: self.output_cap,
            ..self.runner.clone()
        };
        let mut outcome = StageOutcome {
            skipped,
            ..StageOutcome::default()
        };
        for c in candidates {
            let spec = CommandSpec::new(&c.exec)
                .env("PATCHFLEET_STAGE", stage.as_str())
                .env("PATCHFLEET_COMMAND_ID", &ctx.command_id)
                .env("PATCHFLEET_INVOCATION_ID", &ctx.invocation_id)
                .env("PATCHFLEET_OPERATION", &ctx.operation)
                .env(
                    "PATCHFLEET_REBOOT_OPTION",
                    reboot_option_str(ctx.reboot_option),
                )
                .timeout(self.timeout)
                // Not the agent's working directory: hooks must not depend on it.
                .cwd("/");
            let failure = match runner.run(&spec) {
                Ok(o) => {
                    let (exit_code, reason) = match o.exit {
                        Exit::Code(0) => (Some(0), None),
                        Exit::Code(n) => (Some(n), Some(FailureReason::ExitCode(n))),
                        Exit::Signal(s) => (None, Some(FailureReason::Signal(s))),
                    };
                    outcome.ran.push(HookRun {
                        path: c.entry.clone(),
                        exit_code,
                        duration: o.elapsed,
                        stdout: captured_text(&o.stdout),
                        stderr: captured_text(&o.stderr),
                    });
                    reason
                }
                Err(RunError::TimedOut {
                    timeout,
                    stderr_tail,
                    ..
                }) => {
                    outcome.ran.push(HookRun {
                        path: c.entry.clone(),
                        exit_code: None,
                        duration: timeout,
                        stdout: String::new(),
                        stderr: stderr_tail,
                    });
                    Some(FailureReason::TimedOut(timeout))
                }
                Err(e) => Some(FailureReason::CannotStart(e.to_string())),
            };
            if let Some(reason) = failure {
                outcome.failed = Some(HookFailure {
                    path: c.entry,
                    reason,
                });
                break;
            }
        }
        Ok(outcome)
    }

    /// Every check of the stage, before anything runs: the hooks in order
    /// and the skipped entries, or why the stage is refused.
    fn plan(&self, stage: Stage) -> Result<(Vec<Candidate>, Vec<SkippedEntry>), HookError> {
        let insecure = |path: PathBuf, problem: String| HookError::Insecure {
            stage,
            path,
            problem,
        };
        let io = |path: &Path, source| HookError::Io {
            stage,
            path: path.to_path_buf(),
            source,
        };
        let dir = self.stage_dir(stage);
        match std::fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Vec::new(), Vec::new()));
            }
            Err(e) => return Err(io(&dir, e)),
            Ok(_) => {}
        }
        // The root's chain too: whoever can replace the stage directory (a
        // link into /usr/bin, say) chooses what runs.
        secure_chain(&self.hooks_root).map_err(|(p, m)| insecure(p, m))?;
        let real_dir = secure_chain(&dir).map_err(|(p, m)| insecure(p, m))?;
        let meta = std::fs::metadata(&real_dir).map_err(|e| io(&real_dir, e))?;
        if !meta.is_dir() {
            return Err(insecure(dir, "not a directory".into()));
        }

        let mut entries: Vec<(Vec<u8>, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(&real_dir).map_err(|e| io(&real_dir, e))? {
            let e = e.map_err(|e| io(&real_dir, e))?;
            let name = e.file_name();
            entries.push((name.as_bytes().to_vec(), dir.join(&name)));
        }
        // run-parts order: bytes of the names, whatever the locale.
        entries.sort();

        let mut candidates = Vec::new();
        let mut skipped = Vec::new();
        for (name, entry) in entries {
            if !valid_hook_name(&name) {
                skipped.push(SkippedEntry {
                    path: entry,
                    reason: "name does not match ^[A-Za-z0-9_-]+$ (run-parts rule)".into(),
                });
                continue;
            }
            // The real directory, so a swapped link cannot change what we look at.
            let real_entry = real_dir.join(std::ffi::OsStr::from_bytes(&name));
            match check_entry(&real_entry) {
                Verdict::Run(exec) => candidates.push(Candidate { entry, exec }),
                Verdict::Skip(reason) => skipped.push(SkippedEntry {
                    path: entry,
                    reason,
                }),
                Verdict::Refuse { path, problem } => {
                    let problem = if path == real_entry {
                        problem
                    } else {
                        format!("link target {}: {problem}", path.display())
                    };
                    return Err(insecure(entry, problem));
                }
            }
        }
        Ok((candidates, skipped))
    }
}

/// `PATCHFLEET_REBOOT_OPTION`: the document's spelling.
fn reboot_option_str(o: RebootOption) -> &'static str {
    match o {
        RebootOption::RebootIfNeeded => "RebootIfNeeded",
        RebootOption::NoReboot => "NoReboot",
    }
}

/// A stream's kept head, saying how much was not kept.
fn captured_text(c: &Captured) -> String {
    let mut s = c.text();
    if c.truncated() {
        let dropped = c.total - c.head.len() as u64;
        s.push_str(&format!("\n[{dropped} more bytes not kept]\n"));
    }
    s
}

/// run-parts' default name rule: `^[A-Za-z0-9_-]+$`.
fn valid_hook_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Why `meta` (of `path`) could be changed by someone other than root, if so.
fn ownership_problem(meta: &Metadata) -> Option<String> {
    let mode = meta.permissions().mode();
    if meta.uid() != 0 {
        Some(format!("owned by uid {}, not root", meta.uid()))
    } else if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group- and world-writable",
            (true, false) => "group-writable",
            _ => "world-writable",
        };
        Some(format!("{who} (mode {:04o})", mode & 0o7777))
    } else {
        None
    }
}

/// Checks `path` and every directory above it, both as written (so no
/// link on the way can be replaced by a non-root user) and as resolved (so
/// the real directories are root's); returns the resolved path. The error is
/// the offending path and the problem.
fn secure_chain(path: &Path) -> Result<PathBuf, (PathBuf, String)> {
    let abs = std::path::absolute(path).map_err(|e| (path.to_path_buf(), e.to_string()))?;
    check_prefixes(&abs)?;
    let real = std::fs::canonicalize(&abs).map_err(|e| (abs.clone(), e.to_string()))?;
    check_prefixes(&real)?;
    Ok(real)
}

/// Every prefix of the absolute `path` (`/`, `/etc`, …, `path`), not
/// following a final link: a link itself has no meaningful mode, but its
/// owner and the directory holding it (checked as the previous prefix) do.
///
/// A root-owned directory *above* `path` may be writable by others when it
/// is sticky (`/tmp`, mode 1777): there no one but root can rename, remove
/// or replace root's entries, and the next prefix is checked to be root's
/// in turn (the kernel's own rule for such directories). `path` itself
/// never is.
fn check_prefixes(path: &Path) -> Result<(), (PathBuf, String)> {
    let mut prefix = PathBuf::new();
    let last = path.components().count();
    for (n, c) in path.components().enumerate() {
        match c {
            Component::Prefix(_) => {}
            other => prefix.push(other.as_os_str()),
        }
        let meta =
            std::fs::symlink_metadata(&prefix).map_err(|e| (prefix.clone(), e.to_string()))?;
        let sticky_above = n + 1 < last
            && meta.is_dir()
            && meta.uid() == 0
            && meta.permissions().mode() & 0o1000 != 0;
        let problem = if meta.file_type().is_symlink() {
            (meta.uid() != 0).then(|| format!("symbolic link owned by uid {}", meta.uid()))
        } else if sticky_above {
            None
        } else {
            ownership_problem(&meta)
        };
        if let Some(p) = problem {
            return Err((prefix, p));
        }
    }
    Ok(())
}

/// The verdict on one entry with a hook's name.
fn check_entry(entry: &Path) -> Verdict {
    let meta = match std::fs::symlink_metadata(entry) {
        Ok(m) => m,
        // Gone since the listing: nothing to run.
        Err(e) => return Verdict::Skip(format!("cannot read: {e}")),
    };
    let refuse = |path: &Path, problem: String| Verdict::Refuse {
        path: path.to_path_buf(),
        problem,
    };
    if meta.file_type().is_symlink() {
        if meta.uid() != 0 {
            return refuse(entry, format!("symbolic link owned by uid {}", meta.uid()));
        }
        let target = match std::fs::canonicalize(entry) {
            Ok(t) => t,
            Err(e) => return Verdict::Skip(format!("dangling symbolic link: {e}")),
        };
        // The target's directories too: whoever can replace it chooses what runs.
        if let Err((p, m)) = check_prefixes(&target) {
            return refuse(&p, m);
        }
        return match std::fs::metadata(&target) {
            Ok(m) => judge_file(&target, &m),
            Err(e) => Verdict::Skip(format!("cannot read link target: {e}")),
        };
    }
    judge_file(entry, &meta)
}

/// A regular file (or a link's target): security first, so an insecure
/// hook refuses the stage even when it is not executable today (its owner
/// could make it so at any moment).
fn judge_file(path: &Path, meta: &Metadata) -> Verdict {
    if !meta.is_file() {
        return Verdict::Skip("not a regular file".into());
    }
    if let Some(problem) = ownership_problem(meta) {
        return Verdict::Refuse {
            path: path.to_path_buf(),
            problem,
        };
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Verdict::Skip("not executable".into());
    }
    Verdict::Run(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{chown, symlink};
    use std::time::Instant;

    /// A root-owned 0755 test directory whose ancestors are all root's and
    /// not writable by others (or sticky, as `/tmp`), in cargo's target
    /// directory next to the test binary: the hooks must not run from a
    /// directory anyone else could create first.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(tag: &str) -> TestDir {
            let exe = std::env::current_exe().unwrap();
            // target/<profile>/deps/<binary> → target/<profile>
            let base = exe.parent().unwrap().parent().unwrap();
            let d = base.join("patchfleet-hook-tests").join(format!(
                "{tag}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ));
            mkdir(&d);
            mkdir(d.parent().unwrap());
            if let Err((p, m)) = check_prefixes(&d) {
                panic!(
                    "the test directory's chain is not root's ({}: {m}); run the tests as root in a root-owned checkout",
                    p.display()
                );
            }
            TestDir(d)
        }

        fn root(&self) -> PathBuf {
            self.0.join("hooks")
        }

        fn stage(&self, stage: Stage) -> PathBuf {
            let d = self.root().join(stage.dir_name());
            mkdir(&self.root());
            mkdir(&d);
            d
        }
    }

    /// A 0755 directory, whatever the umask.
    fn mkdir(d: &Path) {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn script(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn ctx() -> HookContext {
        HookContext {
            command_id: "cmd-1".into(),
            invocation_id: "inv-1".into(),
            operation: "Install".into(),
            reboot_option: RebootOption::NoReboot,
        }
    }

    fn runner(t: &TestDir) -> HookRunner {
        HookRunner {
            runner: Runner {
                grace: Duration::from_millis(200),
                ..Runner::default()
            },
            ..HookRunner::new(t.root())
        }
    }

    fn names(o: &StageOutcome) -> Vec<String> {
        o.ran
            .iter()
            .map(|r| r.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn runs_in_byte_order_with_the_environment() {
        let t = TestDir::new("order");
        let d = t.stage(Stage::PreInstall);
        let log = t.0.join("log");
        let log_s = log.display().to_string();
        for name in ["b", "B", "a-1", "_x", "10", "9"] {
            script(&d, name, &format!("echo {name} >> {log_s}"), 0o755);
        }
        script(
            &d,
            "env",
            "env | grep ^PATCHFLEET_ | sort; pwd; echo err >&2",
            0o700,
        );
        let o = runner(&t).run_stage(Stage::PreInstall, &ctx()).unwrap();
        assert!(o.is_success(), "{o:?}");
        assert_eq!(names(&o), ["10", "9", "B", "_x", "a-1", "b", "env"]);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "10\n9\nB\n_x\na-1\nb\n"
        );
        let env = o.ran.last().unwrap();
        assert_eq!(
            env.stdout,
            "PATCHFLEET_COMMAND_ID=cmd-1\nPATCHFLEET_INVOCATION_ID=inv-1\n\
             PATCHFLEET_OPERATION=Install\nPATCHFLEET_REBOOT_OPTION=NoReboot\n\
             PATCHFLEET_STAGE=PreInstall\n/\n"
        );
        assert_eq!(env.stderr, "err\n");
        assert_eq!(env.exit_code, Some(0));
        assert!(o.skipped.is_empty());
    }

    #[test]
    fn output_is_capped() {
        let t = TestDir::new("cap");
        let d = t.stage(Stage::PostInstall);
        script(&d, "chatty", "head -c 5000 /dev/zero | tr '\\0' x", 0o755);
        let r = HookRunner {
            output_cap: 100,
            ..runner(&t)
        };
        let o = r.run_stage(Stage::PostInstall, &ctx()).unwrap();
        assert!(o.is_success());
        assert_eq!(
            o.ran[0].stdout,
            format!("{}\n[4900 more bytes not kept]\n", "x".repeat(100))
        );
    }

    #[test]
    fn a_missing_stage_directory_runs_nothing() {
        let t = TestDir::new("missing");
        let o = runner(&t).run_stage(Stage::OnExit, &ctx()).unwrap();
        assert!(o.is_success() && o.ran.is_empty() && o.skipped.is_empty());
        // Not even the root exists: the same.
        let r = HookRunner::new(t.0.join("nowhere"));
        assert!(
            r.run_stage(Stage::PostReboot, &ctx())
                .unwrap()
                .ran
                .is_empty()
        );
    }

    #[test]
    fn the_first_failure_stops_the_stage() {
        let t = TestDir::new("fail");
        let d = t.stage(Stage::PostInstall);
        script(&d, "1-ok", "echo one", 0o755);
        script(&d, "2-fails", "echo bad >&2; exit 7", 0o755);
        script(
            &d,
            "3-never",
            &format!("touch {}/ran", t.0.display()),
            0o755,
        );
        let o = runner(&t).run_stage(Stage::PostInstall, &ctx()).unwrap();
        assert_eq!(names(&o), ["1-ok", "2-fails"]);
        let f = o.failed.as_ref().unwrap();
        assert_eq!(f.path, d.join("2-fails"));
        assert_eq!(f.reason, FailureReason::ExitCode(7));
        assert_eq!(o.ran[1].exit_code, Some(7));
        assert_eq!(o.ran[1].stderr, "bad\n");
        assert!(!t.0.join("ran").exists());

        // A signal is a failure too.
        std::fs::remove_file(d.join("2-fails")).unwrap();
        script(&d, "2-killed", "kill -KILL $$", 0o755);
        let o = runner(&t).run_stage(Stage::PostInstall, &ctx()).unwrap();
        assert_eq!(o.failed.unwrap().reason, FailureReason::Signal(9));
        assert_eq!(o.ran[1].exit_code, None);
        assert!(!t.0.join("ran").exists());
    }

    #[test]
    fn a_hook_that_cannot_start_fails_the_stage() {
        let t = TestDir::new("nostart");
        let d = t.stage(Stage::PreInstall);
        // No #! line and not a binary: exec fails (ENOEXEC).
        let p = d.join("noshebang");
        std::fs::write(&p, b"\x01\x02garbage").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let o = runner(&t).run_stage(Stage::PreInstall, &ctx()).unwrap();
        let f = o.failed.unwrap();
        assert!(
            matches!(f.reason, FailureReason::CannotStart(_)),
            "{:?}",
            f.reason
        );
        assert!(o.ran.is_empty());
    }

    #[test]
    fn timeout_kills_the_hook() {
        let t = TestDir::new("timeout");
        let d = t.stage(Stage::PostReboot);
        script(&d, "slow", "sleep 30", 0o755);
        script(&d, "z-after", "echo never", 0o755);
        let r = HookRunner {
            timeout: Duration::from_millis(300),
            ..runner(&t)
        };
        let start = Instant::now();
        let o = r.run_stage(Stage::PostReboot, &ctx()).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        let f = o.failed.clone().unwrap();
        assert_eq!(f.path, d.join("slow"));
        assert_eq!(
            f.reason,
            FailureReason::TimedOut(Duration::from_millis(300))
        );
        assert_eq!(names(&o), ["slow"]);
        assert_eq!(o.ran[0].exit_code, None);
    }

    fn refused(t: &TestDir, stage: Stage) -> String {
        match runner(t).run_stage(stage, &ctx()) {
            Err(e @ HookError::Insecure { .. }) => e.to_string(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_writable_hook_refuses_the_whole_stage() {
        let t = TestDir::new("writable");
        let d = t.stage(Stage::PreInstall);
        script(
            &d,
            "a-first",
            &format!("touch {}/ran", t.0.display()),
            0o755,
        );
        let bad = script(&d, "b-bad", "true", 0o757);
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&bad.display().to_string()) && e.contains("world-writable"),
            "{e}"
        );
        assert!(e.starts_with("PreInstall hooks refused, none run: "), "{e}");
        assert!(!t.0.join("ran").exists(), "a hook ran before the refusal");

        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(refused(&t, Stage::PreInstall).contains("group-writable (mode 0775)"));
        // Not even executable: still refused (its owner could chmod +x it).
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(refused(&t, Stage::PreInstall).contains("group- and world-writable"));
    }

    #[test]
    fn a_hook_not_owned_by_root_is_refused() {
        let t = TestDir::new("owner");
        let d = t.stage(Stage::PreInstall);
        let bad = script(&d, "nobody", "true", 0o755);
        chown(&bad, Some(65534), None).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&bad.display().to_string()) && e.contains("owned by uid 65534, not root"),
            "{e}"
        );
        // Another stage is not affected.
        script(&t.stage(Stage::OnExit), "fine", "true", 0o755);
        assert!(
            runner(&t)
                .run_stage(Stage::OnExit, &ctx())
                .unwrap()
                .is_success()
        );
    }

    #[test]
    fn insecure_directories_refuse_the_stage() {
        let t = TestDir::new("dirs");
        let d = t.stage(Stage::PreInstall);
        script(&d, "hook", "true", 0o755);
        assert_eq!(
            runner(&t)
                .run_stage(Stage::PreInstall, &ctx())
                .unwrap()
                .ran
                .len(),
            1
        );

        // The stage directory itself.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o757)).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!("{}: world-writable", d.display())),
            "{e}"
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();

        // A parent of the hooks root.
        std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!("{}: group-writable", t.0.display())),
            "{e}"
        );
        std::fs::set_permissions(&t.0, std::fs::Permissions::from_mode(0o755)).unwrap();

        // The hooks root owned by someone else.
        chown(t.root(), Some(65534), None).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!("{}: owned by uid 65534", t.root().display())),
            "{e}"
        );
        chown(t.root(), Some(0), None).unwrap();
        assert!(runner(&t).run_stage(Stage::PreInstall, &ctx()).is_ok());
    }

    #[test]
    fn a_stage_directory_linked_from_an_insecure_place_is_refused() {
        let t = TestDir::new("dirlink");
        let open = t.0.join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let real = open.join("real");
        mkdir(&real);
        script(&real, "hook", "true", 0o755);
        mkdir(&t.root());
        symlink(&real, t.root().join(Stage::PreInstall.dir_name())).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!(
                "{}: group- and world-writable (mode 0777)",
                open.display()
            )),
            "{e}"
        );
        // Sticky (as /tmp is): only root can replace root's `real` there.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let ran = runner(&t).run_stage(Stage::PreInstall, &ctx()).unwrap();
        assert_eq!(names(&ran), ["hook"]);
        // The stage directory itself never may be writable by others.
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!(
                "{}: group- and world-writable (mode 1777)",
                real.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn names_outside_the_run_parts_rule_and_non_hooks_are_skipped() {
        let t = TestDir::new("skip");
        let d = t.stage(Stage::OnExit);
        script(&d, "ok", "true", 0o755);
        for name in [
            "with.dot",
            "hook.dpkg-old",
            ".hidden",
            "space name",
            "tilde~",
        ] {
            script(&d, name, "exit 1", 0o755);
        }
        script(&d, "not-exec", "exit 1", 0o644);
        std::fs::create_dir(d.join("subdir")).unwrap();
        symlink(t.0.join("nowhere"), d.join("dangling")).unwrap();
        let o = runner(&t).run_stage(Stage::OnExit, &ctx()).unwrap();
        assert!(o.is_success(), "{o:?}");
        assert_eq!(names(&o), ["ok"]);
        let skipped: Vec<(String, &str)> = o
            .skipped
            .iter()
            .map(|s| {
                (
                    s.path.file_name().unwrap().to_string_lossy().into_owned(),
                    s.reason.split(':').next().unwrap(),
                )
            })
            .collect();
        let rule = "name does not match ^[A-Za-z0-9_-]+$ (run-parts rule)";
        assert_eq!(
            skipped,
            [
                (".hidden".to_string(), rule),
                ("dangling".into(), "dangling symbolic link"),
                ("hook.dpkg-old".into(), rule),
                ("not-exec".into(), "not executable"),
                ("space name".into(), rule),
                ("subdir".into(), "not a regular file"),
                ("tilde~".into(), rule),
                ("with.dot".into(), rule),
            ]
        );
    }

    #[test]
    fn symlinks_are_followed_only_to_secure_targets() {
        let t = TestDir::new("links");
        let d = t.stage(Stage::PreInstall);
        let lib = t.0.join("lib");
        mkdir(&lib);
        let target = script(&lib, "drain.sh", "echo drained", 0o755);
        symlink(&target, d.join("10-drain")).unwrap();
        let o = runner(&t).run_stage(Stage::PreInstall, &ctx()).unwrap();
        assert!(o.is_success(), "{o:?}");
        assert_eq!(names(&o), ["10-drain"]);
        assert_eq!(o.ran[0].path, d.join("10-drain"));
        assert_eq!(o.ran[0].stdout, "drained\n");

        // The target writable by others: refused, naming link and target.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o757)).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!(
                "{}: link target {}: world-writable",
                d.join("10-drain").display(),
                target.display()
            )),
            "{e}"
        );
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();

        // The target not root's.
        chown(&target, Some(65534), None).unwrap();
        assert!(refused(&t, Stage::PreInstall).contains("owned by uid 65534"));
        chown(&target, Some(0), None).unwrap();

        // The target's directory writable by others: the file could be swapped.
        std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o757)).unwrap();
        let e = refused(&t, Stage::PreInstall);
        assert!(
            e.contains(&format!("link target {}: world-writable", lib.display())),
            "{e}"
        );
        std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o755)).unwrap();

        // A link to a directory is not a hook.
        std::fs::remove_file(d.join("10-drain")).unwrap();
        symlink(&lib, d.join("dir-link")).unwrap();
        let o = runner(&t).run_stage(Stage::PreInstall, &ctx()).unwrap();
        assert!(o.ran.is_empty());
        assert_eq!(o.skipped[0].reason, "not a regular file");
    }

    #[test]
    fn names_and_stages() {
        assert!(valid_hook_name(b"A-z_09"));
        for bad in [&b""[..], b"a.b", b"a b", b"\xff", b"a/b"] {
            assert!(!valid_hook_name(bad));
        }
        let dirs: Vec<&str> = Stage::ALL.iter().map(|s| s.dir_name()).collect();
        assert_eq!(
            dirs,
            [
                "pre-install.d",
                "post-install.d",
                "post-reboot.d",
                "on-exit.d"
            ]
        );
        assert_eq!(
            HookRunner::default().stage_dir(Stage::OnExit),
            Path::new("/etc/patchfleet/hooks/on-exit.d")
        );
    }
}
