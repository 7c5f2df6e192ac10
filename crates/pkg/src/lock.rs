//! Package-manager locks: who holds them.

use std::path::Path;
use std::time::{Duration, Instant};

/// The holder of a POSIX lock on `path` per `/proc/locks`:
/// `process 1234 (apt-get)`. `None` when free (or unknowable).
pub fn lock_holder(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let (ino, dev) = (meta.ino(), meta.dev());
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    for line in locks.lines() {
        // 1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF   ("->" lines wait)
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[1] == "->" || f[1] == "FLOCK" {
            continue;
        }
        let mut id = f[5].split(':');
        let (Some(ma), Some(mi), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let same = i.parse::<u64>() == Ok(ino)
            && u64::from_str_radix(ma, 16) == Ok(major)
            && u64::from_str_radix(mi, 16) == Ok(minor);
        if same {
            let pid = f[4];
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
            return Some(format!("process {pid} ({comm})"));
        }
    }
    None
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
