//! Package-manager locks: who holds them.

use std::path::Path;
use std::time::{Duration, Instant};

/// The holder of a POSIX lock on `path`: `process 1234 (apt-get)`. `None`
/// when free (or unknowable).
///
/// Asked of the kernel with `F_GETLK` on the file itself, the very check
/// apt and rpm make: matching `/proc/locks` by device number alone misses
/// holders wherever `stat` and the lock table disagree on the device
/// (overlay and other stacked filesystems). `/proc/locks` only names the
/// holder of an open-file-description lock, whose `F_GETLK` pid is -1.
pub fn lock_holder(path: &Path) -> Option<String> {
    use nix::fcntl::{FcntlArg, fcntl};
    use nix::libc;
    let file = std::fs::File::open(path).ok()?;
    // The whole file, for writing: conflicts with any lock on it.
    let mut probe = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&file, FcntlArg::F_GETLK(&mut probe)).ok()?;
    if probe.l_type == libc::F_UNLCK as libc::c_short {
        return None;
    }
    let pid = if probe.l_pid > 0 {
        probe.l_pid.to_string()
    } else {
        use std::os::unix::fs::MetadataExt;
        proc_locks_pid(file.metadata().ok()?.ino()).unwrap_or_else(|| "?".to_string())
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "?".to_string());
    Some(format!("process {pid} ({comm})"))
}

/// The pid `/proc/locks` gives for a held lock on inode `ino`.
fn proc_locks_pid(ino: u64) -> Option<String> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        // 1: OFDLCK ADVISORY WRITE -1 08:01:5678 0 EOF   ("->" lines wait)
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[1] == "->" || f[1] == "FLOCK" {
            return None;
        }
        let same = f[5].rsplit(':').next()?.parse::<u64>() == Ok(ino);
        (same && f[4] != "-1").then(|| f[4].to_string())
    })
}

/// Waits up to `wait` while [`lock_holder`] names a holder of one of
/// `paths`; `Err((path, holder))` when still held at the end.
pub fn wait_while_held(paths: &[&Path], wait: Duration) -> Result<(), (String, String)> {
    let until = Instant::now() + wait;
    loop {
        let held = paths
            .iter()
            .find_map(|p| lock_holder(p).map(|h| (p.display().to_string(), h)));
        let Some(held) = held else {
            return Ok(());
        };
        if Instant::now() >= until {
            return Err(held);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The live process a PID file names (libzypp's `run/zypp.pid`): `process
/// 1234 (zypper)`, with the command from `/proc/PID/comm`. `None` when the
/// file is missing or empty, holds no PID, names this process, or names a
/// process that is gone (libzypp leaves its PID behind on exit).
pub fn pid_file_holder(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: u32 = text.split_whitespace().next()?.parse().ok()?;
    if pid == 0 || pid == std::process::id() {
        return None;
    }
    let proc_dir = Path::new("/proc").join(pid.to_string());
    if !proc_dir.exists() {
        return None;
    }
    let comm = std::fs::read_to_string(proc_dir.join("comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "?".to_string());
    Some(format!("process {pid} ({comm})"))
}

/// Waits up to `wait` while [`pid_file_holder`] names a holder of `path`;
/// `Err(holder)` when still held at the end.
pub fn wait_while_pid_file_held(path: &Path, wait: Duration) -> Result<(), String> {
    let until = Instant::now() + wait;
    loop {
        let Some(holder) = pid_file_holder(path) else {
            return Ok(());
        };
        if Instant::now() >= until {
            return Err(holder);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
