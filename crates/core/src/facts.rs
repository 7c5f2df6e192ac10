//! Node facts: what an agent reports about one managed node.
//!
//! Facts are observations, never verdicts (DESIGN decision 1): what is
//! installed, what the enabled repositories offer with their metadata, the
//! update notices, and the node's boot and reboot state. The server and the
//! agent turn them into verdicts with [`crate::eval`]. The JSON schema is
//! `docs/facts.schema.json`; this module is its reference implementation.

use crate::os::{OperatingSystem, PackageManager};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The only facts format this build reads. A new incompatible format gets a
/// new tag, so an old server never misreads a newer agent's report.
pub const FACTS_FORMAT: &str = "patchfleet.facts/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFacts {
    pub format: String,
    pub os: OsFacts,
    /// Installed packages. RPM nodes may list several versions of one
    /// `name.arch` (install-only packages such as kernels).
    #[serde(default)]
    pub installed: Vec<InstalledPackage>,
    /// Every version every enabled repository offers, including the versions
    /// that are installed: an approved installed version is what makes a
    /// package `Installed` rather than `InstalledOther`.
    #[serde(default)]
    pub available: Vec<AvailablePackage>,
    /// Update notices (RPM `updateinfo.xml`, zypper patches). Empty on APT.
    #[serde(default)]
    pub notices: Vec<UpdateNotice>,
    /// When the node last booted; needed for pending-reboot states (§4.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<Timestamp>,
    /// The node's memory of earlier operations (the patch-states file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_state: Option<RebootState>,
    /// The running kernel's release (`uname -r`), to compare with the
    /// installed kernel packages (see [`crate::reboot_evidence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_kernel: Option<String>,
    /// Why the node needs a reboot, as the agent observed it; empty when
    /// nothing says so.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reboot_required: Vec<RebootEvidence>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsFacts {
    pub operating_system: OperatingSystem,
    /// Product string matched by `PRODUCT` filters, e.g. `AmazonLinux2023`,
    /// `Ubuntu22.04`, `RedhatEnterpriseLinux8.8` (spec §3.1).
    pub product: String,
    /// When absent, derived from the OS and product (yum for 7 and older).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_manager: Option<PackageManager>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledPackage {
    pub name: String,
    pub arch: String,
    /// Native version: `[epoch:]version-release` on RPM, the Debian version on APT.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_time: Option<Timestamp>,
    /// Source package (Debian source / RPM source rpm name), for vulnerability matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailablePackage {
    pub name: String,
    pub arch: String,
    pub version: String,
    /// Repository id (RPM) or a label for the index (APT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// APT: every origin (Release file) that offers this version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<AptOrigin>,
    /// APT control fields of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// RPM build time: the release date of a notice-less package (§3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_time: Option<Timestamp>,
    /// When the fleet first saw this version (recorded by the server). On
    /// APT it makes approval delays possible: a Patchfleet extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
}

/// The fields of an APT Release file that decide whether a version is a
/// security update (spec §3.2; classify by label, codename or archive, never
/// by the bare suite name `stable`/`oldstable`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptOrigin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `a=` in `apt-cache policy`: the Suite, e.g. `jammy-security`, `oldstable-security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// `n=`: e.g. `bookworm-security`, `jammy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Host the index comes from, e.g. `security.debian.org`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Signed by a trusted key, or marked trusted by the operator.
    #[serde(default)]
    pub trusted: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateNotice {
    /// Advisory id, e.g. `ALAS2-2025-001`, `RHSA-2024:1234`, `SUSE-SLE-…`.
    pub id: String,
    /// Notice type / patch category: `security`, `bugfix`, `enhancement`,
    /// `newpackage`, `recommended`, `optional`, `feature`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// As written in the metadata: RFC 3339, or updateinfo's
    /// `YYYY-MM-DD[ HH[:MM[:SS]]][ UTC]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bugzilla: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reboot_suggested: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    pub packages: Vec<NoticePackage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticePackage {
    pub name: String,
    pub arch: String,
    pub version: String,
}

/// What the node remembers between operations (spec §4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootState {
    /// End of the last Install that ran with `NoReboot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_no_reboot_install_operation_time: Option<Timestamp>,
    /// Titles (`name.arch:epoch:version-release`) that install left pending a reboot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_reboot: Vec<String>,
}

/// One observation that the node needs a reboot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebootEvidence {
    pub source: RebootSource,
    /// The packages that asked for it, where the source names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// The evidence in words (which file, which versions, which exit status).
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RebootSource {
    /// Debian/Ubuntu's `/var/run/reboot-required` (and `.pkgs`).
    RebootRequiredFile,
    /// A core package (kernel, glibc, systemd, openssl, …) was installed
    /// after the last boot: `needs-restarting -r` semantics.
    CorePackageUpdated,
    /// A newer kernel is installed than the one running.
    NewerKernel,
    /// The package manager said so (zypper's exit status 102, a
    /// reboot-suggested patch).
    PackageManager,
}

/// Facts could not be read: says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node facts: {0}")]
pub struct FactsError(pub String);

impl NodeFacts {
    pub fn from_json(text: &str) -> Result<NodeFacts, FactsError> {
        let facts: NodeFacts = serde_json::from_str(text).map_err(|e| FactsError(e.to_string()))?;
        if facts.format != FACTS_FORMAT {
            return Err(FactsError(format!(
                "format '{}' is not supported (expected '{FACTS_FORMAT}')",
                facts.format
            )));
        }
        Ok(facts)
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("facts always serialize")
    }

    /// The inventory (format, OS, installed, available, notices) in one
    /// canonical form: every list sorted, compact JSON. Boot time, reboot
    /// state, running kernel and reboot evidence are the node's, not the inventory's, and are left out, so
    /// nodes built from one image share one inventory (DESIGN decision 2).
    pub fn canonical_inventory(&self) -> Vec<u8> {
        let mut inventory = self.clone();
        inventory.canonicalize();
        inventory.to_canonical_json()
    }

    /// Makes these facts their inventory in canonical order, in place: the
    /// node's own fields cleared, every list sorted (what
    /// [`Self::canonical_inventory`] serialises; a server that owns the
    /// facts saves the copy).
    pub fn canonicalize(&mut self) {
        self.boot_time = None;
        self.reboot_state = None;
        self.running_kernel = None;
        self.reboot_required = Vec::new();
        self.installed.sort_by(|a, b| {
            (&a.name, &a.arch, &a.version, a.installed_time, &a.source).cmp(&(
                &b.name,
                &b.arch,
                &b.version,
                b.installed_time,
                &b.source,
            ))
        });
        for a in &mut self.available {
            a.origins.sort_by(|x, y| {
                (
                    &x.origin,
                    &x.label,
                    &x.archive,
                    &x.codename,
                    &x.component,
                    &x.site,
                    x.trusted,
                )
                    .cmp(&(
                        &y.origin,
                        &y.label,
                        &y.archive,
                        &y.codename,
                        &y.component,
                        &y.site,
                        y.trusted,
                    ))
            });
        }
        self.available.sort_by(|a, b| {
            (&a.name, &a.arch, &a.version, &a.repository)
                .cmp(&(&b.name, &b.arch, &b.version, &b.repository))
                .then_with(|| {
                    serde_json::to_string(a)
                        .unwrap_or_default()
                        .cmp(&serde_json::to_string(b).unwrap_or_default())
                })
        });
        for n in &mut self.notices {
            n.cves.sort();
            n.bugzilla.sort();
            n.packages.sort_by(|x, y| {
                (&x.name, &x.arch, &x.version).cmp(&(&y.name, &y.arch, &y.version))
            });
        }
        self.notices.sort_by(|a, b| {
            a.id.cmp(&b.id).then_with(|| {
                serde_json::to_string(a)
                    .unwrap_or_default()
                    .cmp(&serde_json::to_string(b).unwrap_or_default())
            })
        });
    }

    /// The compact JSON of facts [`Self::canonicalize`]d: the canonical form.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("facts always serialize")
    }

    /// `sha256:` and the hex SHA-256 of [`Self::canonical_inventory`]: the
    /// same inventory gives the same hash on every machine, whatever order
    /// the agent listed things in.
    pub fn content_hash(&self) -> String {
        Self::hash_of_canonical(&self.canonical_inventory())
    }

    /// The content hash of a [`Self::canonical_inventory`] already built
    /// (a server storing the canonical form hashes it without building it
    /// twice).
    pub fn hash_of_canonical(canonical: &[u8]) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(canonical);
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for byte in digest {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}
