//! rpm macros for a root other than `/`.
//!
//! librpm (under rpm, dnf and libzypp alike) takes its database location
//! from this machine's macros, not the root's: Debian's rpm, for one,
//! defaults to `~/.rpmdb`, so dnf on a mounted RHEL image would look for
//! the image's packages in the wrong place and find none. dnf and zypper
//! have no `--dbpath`; the one lever they all honour is `~/.rpmmacros`. So
//! a scan or install of such a root runs with `HOME` set to a private
//! folder whose `.rpmmacros` names the root's database.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A private `HOME` holding `.rpmmacros`; removed when dropped.
#[derive(Debug)]
pub struct PrivateMacros {
    dir: PathBuf,
}

impl PrivateMacros {
    /// Writes `.rpmmacros` with `%_dbpath <dbpath>` (as the root sees it,
    /// e.g. `/var/lib/rpm`) into a fresh folder only this user can read.
    pub fn new(dbpath: &Path) -> std::io::Result<PrivateMacros> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "patchfleet-rpmmacros-{}-{nanos}",
            std::process::id()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let macros = PrivateMacros { dir };
        std::fs::write(
            macros.dir.join(".rpmmacros"),
            format!("%_dbpath {}\n", dbpath.display()),
        )?;
        Ok(macros)
    }

    /// The `HOME` entry for the commands' environment.
    pub fn env(&self) -> (OsString, OsString) {
        ("HOME".into(), self.dir.clone().into())
    }
}

impl Drop for PrivateMacros {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
