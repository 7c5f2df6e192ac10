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
