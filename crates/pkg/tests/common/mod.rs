//! What the test-bed tests share: temp folders, the tool check that fails
//! (never skips) naming the package to install, and the APT test bed. The
//! agent's tests include this file too (`#[path]`), hence paths that work
//! from either crate.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use patchfleet_pkg::runner::{CommandSpec, DEFAULT_PATH, Runner};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A temp folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("patchfleet-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails the test, naming the Debian package, when a tool is missing.
pub fn require_tools(tools: &[(&str, &str)]) {
    for (tool, package) in tools {
        let found = DEFAULT_PATH
            .split(':')
            .any(|d| Path::new(d).join(tool).is_file());
        assert!(
            found,
            "{tool} is missing: install the Debian package {package} to run this test"
        );
    }
}

pub const APT_TOOLS: [(&str, &str); 5] = [
    ("dpkg-deb", "dpkg"),
    ("dpkg-scanpackages", "dpkg-dev"),
    (
        "apt-ftparchive",
        "apt-utils (pinned: apt-get install -y --no-install-recommends \
         apt-utils=\"$(dpkg-query -W -f='${Version}' apt)\")",
    ),
    ("apt-get", "apt"),
    ("gzip", "gzip"),
];

/// Builds the APT test bed (`tests/testbed/apt/build.sh`) under `dir`; its
/// root is `dir/root`. Returns how long the build took.
pub fn build_apt_testbed(dir: &Path) -> Duration {
    require_tools(&APT_TOOLS);
    // `crates/<this crate>/../pkg/…`: the same from crates/pkg and crates/agent.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pkg/tests/testbed/apt/build.sh");
    let start = Instant::now();
    Runner::default()
        .run_ok(
            &CommandSpec::new("sh")
                .arg(&script)
                .arg(dir)
                .timeout(Duration::from_secs(120)),
        )
        .unwrap_or_else(|e| panic!("building the APT test bed failed: {e}"));
    start.elapsed()
}

/// Compares `got` (pretty JSON) with the golden file `path` — or writes it
/// when `PATCHFLEET_BLESS` is set (review the diff before committing).
pub fn check_golden_json(path: &Path, got: &str) {
    if std::env::var_os("PATCHFLEET_BLESS").is_some() {
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with PATCHFLEET_BLESS=1)",
            path.display()
        )
    });
    assert!(
        got == want,
        "{} differs from the parser's output:\n{got}",
        path.display()
    );
}

/// Every file under `dir` with its bytes and mtime: two snapshots equal
/// means nothing under `dir` was written.
pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let m = e.metadata().unwrap().modified().unwrap();
                out.insert(e.path(), (std::fs::read(e.path()).unwrap(), m));
            }
        }
    }
    out
}
