//! Realistic, deterministic fixtures for the engine benchmarks: a node of
//! the size the benchmarks promise (1,500 installed packages, 300 available
//! updates, notices with CVEs) and a baseline with 10 rules and 50
//! approved/rejected entries with wildcards. `variant` makes distinct
//! inventories of the same shape for the batch benchmark.

use patchfleet_core::baseline::{Baseline, PatchAction, PatchFilter, PatchFilterKey, PatchRule};
use patchfleet_core::compliance::ComplianceLevel;
use patchfleet_core::facts::{
    AvailablePackage, FACTS_FORMAT, InstalledPackage, NodeFacts, NoticePackage, OsFacts,
    UpdateNotice,
};
use patchfleet_core::os::OperatingSystem;

pub const INSTALLED: usize = 1_500;
pub const UPDATES: usize = 300;
/// Packages the repositories offer that the node does not have.
pub const NOT_INSTALLED: usize = 500;

/// Real package name stems of an enterprise Linux node.
const STEMS: [&str; 96] = [
    "acl",
    "audit",
    "authselect",
    "bash",
    "bind",
    "binutils",
    "bzip2",
    "ca-certificates",
    "chrony",
    "cockpit",
    "coreutils",
    "cpio",
    "cracklib",
    "cronie",
    "crypto-policies",
    "cups",
    "curl",
    "cyrus-sasl",
    "dbus",
    "device-mapper",
    "dhcp",
    "diffutils",
    "dnf",
    "dracut",
    "e2fsprogs",
    "elfutils",
    "expat",
    "file",
    "findutils",
    "firewalld",
    "freetype",
    "gawk",
    "gcc",
    "gdbm",
    "gettext",
    "git",
    "glib2",
    "glibc",
    "gmp",
    "gnupg2",
    "gnutls",
    "grep",
    "grub2",
    "gzip",
    "httpd",
    "hwdata",
    "iproute",
    "iptables",
    "iputils",
    "java-17-openjdk",
    "json-c",
    "kbd",
    "kernel",
    "keyutils",
    "kmod",
    "krb5",
    "less",
    "libacl",
    "libattr",
    "libcap",
    "libcurl",
    "libdb",
    "libffi",
    "libgcrypt",
    "libselinux",
    "libsemanage",
    "libssh",
    "libstdc++",
    "libxml2",
    "libzstd",
    "lua",
    "lvm2",
    "lz4",
    "mariadb",
    "mdadm",
    "ncurses",
    "net-snmp",
    "nettle",
    "nginx",
    "nodejs",
    "nss",
    "openldap",
    "openssh",
    "openssl",
    "pam",
    "pcre2",
    "perl",
    "php",
    "podman",
    "policycoreutils",
    "postgresql",
    "procps-ng",
    "python3",
    "rpm",
    "rsyslog",
    "systemd",
];

const SUFFIXES: [&str; 16] = [
    "",
    "-libs",
    "-devel",
    "-common",
    "-tools",
    "-utils",
    "-doc",
    "-debuginfo",
    "-headless",
    "-server",
    "-client",
    "-data",
    "-static",
    "-langpack-en",
    "-selinux",
    "-plugins",
];

/// A small deterministic generator (no dependency on a random crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Distinct names: stem × suffix, then numbered module-style variants
/// (`python3.11-…`) once those run out.
fn name(i: usize) -> String {
    let stem = STEMS[i % STEMS.len()];
    let suffix = SUFFIXES[(i / STEMS.len()) % SUFFIXES.len()];
    match i / (STEMS.len() * SUFFIXES.len()) {
        0 => format!("{stem}{suffix}"),
        n => format!("{stem}{n}{suffix}"),
    }
}

/// Node facts of the benchmark size. Different `variant`s differ in which
/// packages have updates and in their versions, as nodes built from
/// different images do.
pub fn rpm_node(variant: u64) -> NodeFacts {
    let mut rng = Lcg(0x5eed ^ variant.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut installed = Vec::with_capacity(INSTALLED);
    let mut available = Vec::with_capacity(INSTALLED + UPDATES + NOT_INSTALLED);
    let mut updated: Vec<(String, String)> = Vec::with_capacity(UPDATES);
    let stride = INSTALLED / UPDATES;
    let offset = (variant as usize) % stride;
    for i in 0..INSTALLED {
        let major = 1 + rng.below(9);
        let minor = rng.below(40);
        let release = 1 + rng.below(30);
        let epoch = if i % 17 == 0 { "1:" } else { "" };
        let version = format!("{epoch}{major}.{minor}.{}-{release}.el9", rng.below(12));
        let n = name(i);
        installed.push(InstalledPackage {
            name: n.clone(),
            arch: if i % 11 == 0 { "noarch" } else { "x86_64" }.into(),
            version: version.clone(),
            installed_time: None,
            source: None,
        });
        available.push(AvailablePackage {
            name: n.clone(),
            arch: installed[i].arch.clone(),
            version,
            repository: Some("baseos".into()),
            origins: Vec::new(),
            priority: None,
            section: None,
            build_time: Some(jiff::Timestamp::from_second(1_700_000_000).unwrap()),
            first_seen: None,
        });
        if i % stride == offset && updated.len() < UPDATES {
            let newer = format!(
                "{epoch}{major}.{minor}.{}-{}.el9_{}",
                rng.below(12),
                release + 1 + rng.below(3),
                1 + variant % 7
            );
            available.push(AvailablePackage {
                name: n.clone(),
                arch: installed[i].arch.clone(),
                version: newer.clone(),
                repository: Some("appstream".into()),
                origins: Vec::new(),
                priority: None,
                section: None,
                build_time: Some(jiff::Timestamp::from_second(1_730_000_000).unwrap()),
                first_seen: None,
            });
            updated.push((n, newer));
        }
    }
    for i in 0..NOT_INSTALLED {
        available.push(AvailablePackage {
            name: name(INSTALLED + i),
            arch: "x86_64".into(),
            version: format!("{}.{}-1.el9", 1 + i % 5, i % 13),
            repository: Some("appstream".into()),
            origins: Vec::new(),
            priority: None,
            section: None,
            build_time: Some(jiff::Timestamp::from_second(1_720_000_000).unwrap()),
            first_seen: None,
        });
    }
    // 100 notices of 3 updated packages each; every tenth not-installed
    // package is in a notice too.
    let kinds = ["security", "security", "bugfix", "enhancement"];
    let severities = ["Critical", "Important", "Moderate", "Low"];
    let mut notices = Vec::new();
    for (k, chunk) in updated.chunks(3).enumerate() {
        let arch_of = |n: &str| {
            installed
                .iter()
                .find(|p| p.name == n)
                .map(|p| p.arch.clone())
                .unwrap_or_default()
        };
        let mut packages: Vec<NoticePackage> = chunk
            .iter()
            .map(|(n, v)| NoticePackage {
                name: n.clone(),
                arch: arch_of(n),
                version: v.clone(),
            })
            .collect();
        if k < NOT_INSTALLED / 10 {
            let i = k * 10;
            packages.push(NoticePackage {
                name: name(INSTALLED + i),
                arch: "x86_64".into(),
                version: format!("{}.{}-1.el9", 1 + i % 5, i % 13),
            });
        }
        notices.push(UpdateNotice {
            id: format!("RHSA-2025:{:04}", 1000 + k),
            kind: kinds[k % kinds.len()].into(),
            severity: Some(severities[k % severities.len()].into()),
            title: None,
            issued: Some(format!("2025-{:02}-{:02}", 1 + k % 12, 1 + k % 28)),
            updated: None,
            cves: (0..1 + k % 4)
                .map(|c| format!("CVE-2025-{:05}", k * 4 + c))
                .collect(),
            bugzilla: vec![format!("{}", 2_000_000 + k)],
            reboot_suggested: k % 9 == 0,
            repository: Some("appstream".into()),
            packages,
        });
    }
    NodeFacts {
        format: FACTS_FORMAT.into(),
        os: OsFacts {
            operating_system: OperatingSystem::RedhatEnterpriseLinux,
            product: "RedhatEnterpriseLinux9.4".into(),
            package_manager: None,
        },
        installed,
        available,
        notices,
        boot_time: Some(jiff::Timestamp::from_second(1_735_000_000).unwrap()),
        reboot_state: None,
        running_kernel: None,
        reboot_required: Vec::new(),
    }
}

/// 10 approval rules and 50 approved/rejected entries, many with wildcards.
pub fn busy_baseline() -> Baseline {
    let mut b = Baseline::new("bench-baseline", OperatingSystem::RedhatEnterpriseLinux);
    let classes = [
        vec!["Security"],
        vec!["Bugfix"],
        vec!["Enhancement"],
        vec!["Security", "Bugfix"],
        vec!["Recommended"],
    ];
    let severities = [
        vec!["Critical"],
        vec!["Important"],
        vec!["Moderate", "Low"],
        vec!["Critical", "Important"],
        vec!["*"],
    ];
    let levels = [
        ComplianceLevel::Critical,
        ComplianceLevel::High,
        ComplianceLevel::Medium,
        ComplianceLevel::Low,
        ComplianceLevel::Informational,
    ];
    for i in 0..10 {
        let mut filters = vec![PatchFilter::new(
            PatchFilterKey::Classification,
            classes[i % 5].clone(),
        )];
        if i % 2 == 0 {
            filters.push(PatchFilter::new(
                PatchFilterKey::Severity,
                severities[i % 5].clone(),
            ));
        }
        if i % 3 == 0 {
            filters.push(PatchFilter::new(
                PatchFilterKey::Product,
                ["RedhatEnterpriseLinux9.4", "RedhatEnterpriseLinux8.8"],
            ));
        }
        let rule = PatchRule::new(filters).compliance_level(levels[i % 5]);
        b.approval_rules.patch_rules.push(if i % 4 == 3 {
            rule.approve_until_date("2025-06-30")
        } else {
            rule.approve_after_days(7 * (i as u32 % 3))
        });
    }
    // Entries as operators write them: package globs, exact names and
    // versions, advisory, CVE and Bugzilla ids.
    let approved = [
        "kernel*",
        "openssl*",
        "glibc*",
        "systemd*",
        "openssh*",
        "sudo",
        "curl",
        "libcurl",
        "nss*",
        "krb5-libs",
        "python3*",
        "bash",
        "polkit*",
        "httpd*",
        "nginx*",
        "*-selinux",
        "RHSA-2025:1003",
        "RHSA-2025:1017",
        "RHSA-2025:1042",
        "CVE-2025-00017",
        "CVE-2025-00101",
        "2000012",
        "2000055",
        "dbus-1:1.12.20-8.el9.x86_64",
        "java-17-openjdk*",
    ];
    let rejected = [
        "*-debuginfo",
        "*-debugsource",
        "telnet*",
        "rsh*",
        "*-static",
        "kernel-rt*",
        "python2*",
        "*.i686",
        "php-5*",
        "mariadb-10.3*",
        "postgresql-9*",
        "java-1.8.0*",
        "*-tests",
        "ypbind",
        "tftp-server",
        "vsftpd",
        "xinetd",
        "*-32bit",
        "nodejs-14*",
        "nodejs-16*",
        "openssl-1.0*",
        "dhcp-server",
        "samba-client*",
        "*firmware*-beta*",
        "gcc-8*",
    ];
    b.approved_patches = approved.iter().map(|s| s.to_string()).collect();
    b.rejected_patches = rejected.iter().map(|s| s.to_string()).collect();
    b.rejected_patches_action = PatchAction::Block;
    b
}
