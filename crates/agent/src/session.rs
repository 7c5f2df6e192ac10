//! Stopping a document step with everything it started.
//!
//! The step's child process calls `setsid` first, so it leads a session of
//! its own. The commands it runs go through `patchfleet-pkg`'s runner, which
//! gives each one a process group of its own — so no single process group
//! holds the step's tree, but the session does: a process leaves it only by
//! calling `setsid` itself, as a daemon does (and a service a package
//! started must survive the step anyway). Killing "the step" is therefore
//! killing every process of its session, found in `/proc`, repeated until
//! none is left (a process may fork between a listing and its signal).

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// Pause between two listings while waiting for processes to go.
const POLL: Duration = Duration::from_millis(20);
/// After SIGKILL a process is gone at once unless it sits in an
/// uninterruptible sleep (a hung NFS read); give up listing after this.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The live processes of session `sid` (zombies are gone already: they
/// only wait to be reaped).
pub fn members(sid: i32) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| session_of(&stat))
                .is_some_and(|(state, session)| session == sid && state != 'Z')
        })
        .map(Pid::from_raw)
        .collect()
}

/// State and session of a `/proc/PID/stat` line: `pid (comm) S ppid pgrp
/// session …`; `comm` may hold spaces and parentheses, so the fields are
/// counted from its last `)`.
fn session_of(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let session = fields.nth(2)?.parse().ok()?;
    Some((state, session))
}

fn signal_all(sid: i32, signal: Signal) -> usize {
    let pids = members(sid);
    for pid in &pids {
        let _ = kill(*pid, signal);
    }
    pids.len()
}

/// SIGTERM to every process of session `sid`, SIGKILL to those left after
/// `grace`; returns when none is left (or after [`KILL_WAIT`] more).
pub async fn terminate(sid: i32, grace: Duration) {
    if signal_all(sid, Signal::SIGTERM) == 0 {
        return;
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        if members(sid).is_empty() {
            return;
        }
    }
    let deadline = Instant::now() + KILL_WAIT;
    while signal_all(sid, Signal::SIGKILL) > 0 && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
}

/// SIGKILL to every process of session `sid`, without waiting for more
/// than the listings (for `Drop`, where nothing can be awaited).
pub fn kill_now(sid: i32) {
    let deadline = Instant::now() + KILL_WAIT;
    while signal_all(sid, Signal::SIGKILL) > 0 && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_from_the_last_parenthesis() {
        assert_eq!(
            session_of("42 (bash) S 1 42 42 34816 42 4194560 …"),
            Some(('S', 42))
        );
        assert_eq!(
            session_of("7 (a) b (c)) Z 1 7 99 0 -1"),
            Some(('Z', 99)),
            "a command name with spaces and parentheses"
        );
        for bad in ["", "12 (x", "12 (x) R 1 2", "12 (x) R 1 2 notanumber"] {
            assert_eq!(session_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn this_process_is_found_in_its_session() {
        let me = Pid::this();
        let sid = nix::unistd::getsid(None).unwrap();
        assert!(members(sid.as_raw()).contains(&me));
        assert!(members(-5).is_empty());
    }
}
