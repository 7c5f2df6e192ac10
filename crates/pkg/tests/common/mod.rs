//! What the test-bed tests share: temp folders, the tool check that fails
//! (never skips) naming the package to install, the APT and dnf test beds,
//! snapshots of folders. The agent's tests include this file too
//! (`#[path]`), hence paths that work from either crate.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use patchfleet_pkg::rpm::RpmRoot;
use patchfleet_pkg::runner::{CommandSpec, DEFAULT_PATH, Runner};
use std::collections::BTreeMap;
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

// ---------------------------------------------------------------------------
// The dnf test bed (testbeds.md B)

pub const RPM_TOOLS: [(&str, &str); 6] = [
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("xz", "xz-utils"),
    (
        "dnf",
        "dnf (apt-get install -y --no-install-recommends dnf; not dnf-plugins-core)",
    ),
];

/// A script of `crates/pkg/tests/testbed` (from crates/pkg and crates/agent).
fn testbed_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pkg/tests/testbed")
        .join(name)
}

fn run_script(what: &str, spec: CommandSpec) {
    Runner::default()
        .run_ok(&spec.timeout(Duration::from_secs(180)))
        .unwrap_or_else(|e| panic!("building {what} failed: {e}"));
}

/// The repository in `dir/bed/repo`, the installroot in `dir/dnf/root`
/// (`make-rpm-repo.sh`, `rpm/make-dnf-root.sh`). Returns the root (with the
/// test bed's `HOME` and `--releasever`) and the build time.
pub fn build_dnf_testbed(dir: &Path, flavour: &str) -> (RpmRoot, Duration) {
    require_tools(&RPM_TOOLS);
    let start = Instant::now();
    let bed = dir.join("bed");
    run_script(
        "the rpm repository",
        CommandSpec::new("sh")
            .arg(testbed_script("make-rpm-repo.sh"))
            .arg(&bed),
    );
    let out = dir.join("dnf");
    run_script(
        "the dnf installroot",
        CommandSpec::new("sh")
            .arg(testbed_script("rpm/make-dnf-root.sh"))
            .arg(bed.join("repo"))
            .arg(&out)
            .arg(flavour),
    );
    let mut root = RpmRoot::at(out.join("root"));
    root.env.push(("HOME".into(), out.join("home").into()));
    root.pm_args.push("--releasever=9".into());
    (root, start.elapsed())
}

/// Adds the repository `tbk` of `rpm/make-kernel-repo.sh` (built in
/// `dir/kernel`) to `root` and installs `kernel` 5.14.0-1 and `tb-kmod`
/// 1.0-1 from it with the real dnf; the flag the kernel's scriptlet writes
/// is removed again.
pub fn add_kernel_repo(dir: &Path, root: &RpmRoot) {
    let k = dir.join("kernel");
    run_script(
        "the kernel repository",
        CommandSpec::new("sh")
            .arg(testbed_script("rpm/make-kernel-repo.sh"))
            .arg(&k),
    );
    std::fs::write(
        root.dir.join("etc/yum.repos.d/tbk.repo"),
        format!(
            "[tbk]\nname=Kernels\nbaseurl=file://{}\ngpgcheck=0\nmetadata_expire=0\n",
            k.join("repo").display()
        ),
    )
    .unwrap();
    let spec = patchfleet_pkg::rpm::pm_command(
        root,
        patchfleet_core::os::PackageManager::Dnf,
        &["-y", "-q", "--noplugins"],
        &[],
    )
    .args(["install", "kernel-5.14.0-1.noarch", "tb-kmod-1.0-1.noarch"]);
    run_script("the kernel install", spec);
    for f in ["reboot-required", "reboot-required.pkgs"] {
        std::fs::remove_file(root.dir.join("var/run").join(f))
            .unwrap_or_else(|e| panic!("kernel's %post wrote no var/run/{f}: {e}"));
    }
}

/// What [`snapshot_tree`] returns.
pub type TreeSnapshot = BTreeMap<PathBuf, (bool, u64, SystemTime, Vec<u8>)>;

/// The host's dnf cache and rpm database, which no test may touch.
pub fn host_rpm_snapshot() -> Vec<TreeSnapshot> {
    ["/var/cache/dnf", "/var/lib/rpm"]
        .iter()
        .map(|d| snapshot_tree(Path::new(d)))
        .collect()
}

pub const ZYPPER_TOOLS: [(&str, &str); 6] = [
    ("zypper", "zypper"),
    ("rpm", "rpm"),
    ("rpmbuild", "rpm"),
    ("createrepo_c", "createrepo-c"),
    ("modifyrepo_c", "createrepo-c"),
    ("xz", "xz-utils"),
];

/// Builds the zypper test bed under `dir`: the rpm repository
/// (`tests/testbed/make-rpm-repo.sh`) in `dir/bed/repo`, and a zypper root
/// over it (`tests/testbed/zypper/make-zypper-root.sh`) in `dir/zypper/root`,
/// with v1 of the three packages installed by zypper. Returns the root, its
/// `HOME` (the `.rpmmacros` naming `/var/lib/rpm`) set, and the build time.
pub fn build_zypper_testbed(dir: &Path) -> (patchfleet_pkg::zypper::ZypperRoot, Duration) {
    require_tools(&ZYPPER_TOOLS);
    let start = Instant::now();
    let (bed, out) = (dir.join("bed"), dir.join("zypper"));
    run_script(
        "the rpm repository",
        CommandSpec::new("sh")
            .arg(testbed_script("make-rpm-repo.sh"))
            .arg(&bed),
    );
    run_script(
        "the zypper root",
        CommandSpec::new("sh")
            .arg(testbed_script("zypper/make-zypper-root.sh"))
            .arg(bed.join("repo"))
            .arg(&out),
    );
    let mut root = patchfleet_pkg::zypper::ZypperRoot::at(out.join("root"));
    root.env.push(("HOME".into(), out.join("home").into()));
    (root, start.elapsed())
}

/// Every entry under `path` (itself if a file; nothing if missing) with its
/// kind, size, mtime and, for files, bytes: for "this test wrote nothing
/// there" checks of folders that may not exist on every machine.
pub fn snapshot_tree(path: &Path) -> TreeSnapshot {
    let mut out = TreeSnapshot::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = p.symlink_metadata() else {
            continue;
        };
        if m.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
        let bytes = if m.is_file() {
            std::fs::read(&p).unwrap_or_default()
        } else {
            Vec::new()
        };
        out.insert(
            p,
            (
                m.is_dir(),
                m.len(),
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                bytes,
            ),
        );
    }
    out
}

/// The paths that differ between two [`snapshot_tree`]s, except sqlite's
/// shared-memory index (`*.sqlite-shm`): every reader of a WAL database
/// (any `rpm -q`) writes its read marks there.
pub fn tree_changes(before: &TreeSnapshot, after: &TreeSnapshot) -> Vec<PathBuf> {
    after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p)
        .chain(before.keys().filter(|p| !after.contains_key(*p)))
        .filter(|p| !p.to_string_lossy().ends_with(".sqlite-shm"))
        .cloned()
        .collect()
}

/// What a zypper test must leave as it was on this machine: libzypp's lock
/// and reboot flag in `/run` (only those: the rest of `/run` belongs to
/// whatever else runs here), zypper's log, the rpm database, libzypp's
/// cache and repositories.
pub fn zypper_host_state() -> Vec<TreeSnapshot> {
    [
        "/run/zypp.pid",
        "/var/run/zypp.pid",
        "/run/reboot-needed",
        "/var/log/zypper.log",
        "/var/lib/rpm",
        "/var/cache/zypp",
        "/etc/zypp/repos.d",
    ]
    .iter()
    .map(|p| snapshot_tree(Path::new(p)))
    .collect()
}

/// A fake `tool` in `dir/bin` that runs the real `/usr/bin/<tool>` when its
/// arguments contain `real_when` (the simulation), and otherwise hangs with
/// a `sleep 600` child, writing "group-leader child" PIDs to `dir/pids`.
/// Returns a runner that finds the fake first, with a short grace period.
pub fn hanging_tool(dir: &Path, tool: &str, real_when: &str) -> Runner {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = format!(
        "#!/bin/sh\ncase \"$*\" in *\"{real_when}\"*) exec /usr/bin/{tool} \"$@\" ;; esac\n\
         sleep 600 &\necho \"$$ $!\" > {}\nwait\n",
        dir.join("pids").display()
    );
    std::fs::write(bin.join(tool), fake).unwrap();
    std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    Runner {
        path: format!("{}:{DEFAULT_PATH}", bin.display()),
        grace: Duration::from_secs(1),
        ..Runner::default()
    }
}

/// After a [`hanging_tool`] timed out: its process group and its child are gone.
pub fn assert_hanging_tool_killed(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("pids")).expect("the fake tool ran");
    let mut ids = text.split_whitespace().map(|p| p.parse::<i32>().unwrap());
    let (leader, child) = (ids.next().unwrap(), ids.next().unwrap());
    assert!(
        !patchfleet_pkg::runner::group_alive(nix::unistd::Pid::from_raw(leader)),
        "the process group {leader} is still alive"
    );
    assert!(
        !Path::new(&format!("/proc/{child}")).exists()
            || std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the fake tool's child {child} is still alive"
    );
}
