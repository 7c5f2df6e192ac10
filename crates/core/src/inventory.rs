//! The prepared inventory: node facts parsed, grouped and ordered once, so
//! that evaluating them against any number of baselines and days compares no
//! version and allocates almost nothing (DESIGN decision 2: each distinct
//! inventory is prepared once and evaluated many times).
//!
//! Invariants, relied upon by [`crate::eval`]:
//! - `groups` are sorted by (name, arch); each owns a contiguous run of
//!   `records`, sorted by version, newest first.
//! - every record carries its order relative to the group's installed
//!   version (`vs_installed`) and a dense version rank (`rank`, 0 = newest),
//!   so no version is compared during evaluation.
//! - attribute values (classification, severity, priority, section) are
//!   interned lower-case [`Sym`]s, with synonyms folded (`moderate` =
//!   `medium`, `extra` = `optional`).

use crate::eval::pattern::{Components, Identity, Trigrams};
use crate::facts::{AptOrigin, NodeFacts, UpdateNotice};
use crate::os::{Family, OperatingSystem, PackageManager};
use crate::release_date::parse_notice_date;
use crate::version::VersionError;
use crate::version::deb::DebVersion;
use crate::version::rpm::Evr;
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

/// A parsed package version of either family.
#[derive(Clone, Debug)]
pub enum Version {
    Deb(DebVersion),
    Rpm(Evr),
}

impl Version {
    pub fn parse(family: Family, text: &str) -> Result<Version, VersionError> {
        match family {
            Family::Apt => DebVersion::parse(text).map(Version::Deb),
            _ => Evr::parse(text).map(Version::Rpm),
        }
    }

    pub fn compare(&self, other: &Version) -> Ordering {
        match (self, other) {
            (Version::Deb(a), Version::Deb(b)) => a.cmp(b),
            (Version::Rpm(a), Version::Rpm(b)) => a.cmp(b),
            // Never mixed within one inventory: both sides come from `family`.
            (Version::Deb(_), Version::Rpm(_)) => Ordering::Less,
            (Version::Rpm(_), Version::Deb(_)) => Ordering::Greater,
        }
    }
}

/// The version as Patch Manager writes it in a title: RPM always with its
/// epoch (`1:1.0-2`, `0:1.0-2`), Debian as dpkg prints it.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Deb(v) => write!(f, "{v}"),
            Version::Rpm(v) => write!(f, "{}:{}-{}", v.epoch_or_zero(), v.version(), v.release()),
        }
    }
}

/// An interned, lower-cased attribute value; `Sym::NONE` is "absent".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(pub u16);

impl Sym {
    pub const NONE: Sym = Sym(0);
}

/// Which kind of attribute a symbol is; synonyms fold per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Classification,
    Severity,
    Priority,
    Section,
}

/// The canonical lower-case spelling of a filter or metadata value.
pub fn canonical_value(kind: AttrKind, family: Family, value: &str) -> String {
    let lc = value.trim().to_ascii_lowercase();
    match (kind, lc.as_str()) {
        (AttrKind::Severity, "moderate") => "medium".into(),
        (AttrKind::Priority, "extra") => "optional".into(),
        // zypper shows dnf's bugfix notices as recommended (testbeds §6).
        (AttrKind::Classification, "bugfix") if family == Family::Zypp => "recommended".into(),
        _ => lc,
    }
}

#[derive(Debug, Default)]
pub struct Symbols {
    names: Vec<String>,
    index: FxHashMap<String, Sym>,
}

impl Symbols {
    fn new() -> Symbols {
        Symbols {
            names: vec![String::new()],
            index: FxHashMap::default(),
        }
    }

    fn intern(&mut self, canonical: String) -> Sym {
        if let Some(&sym) = self.index.get(&canonical) {
            return sym;
        }
        let sym = Sym(u16::try_from(self.names.len()).unwrap_or(u16::MAX));
        if sym.0 == u16::MAX {
            // 65,535 distinct values do not occur in real metadata; fold the
            // excess into one symbol rather than fail.
            return sym;
        }
        self.names.push(canonical.clone());
        self.index.insert(canonical, sym);
        sym
    }

    pub fn get(&self, canonical: &str) -> Option<Sym> {
        self.index.get(canonical).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.len() <= 1
    }

    pub fn name(&self, sym: Sym) -> &str {
        self.names.get(sym.0 as usize).map_or("", String::as_str)
    }
}

/// Where a record's release timestamp came from (recorded per item, spec §8 #2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    NoticeUpdated,
    NoticeIssued,
    BuildTime,
    FirstSeen,
    /// No usable date: 1970-01-01, so every delay has passed (AWS behaviour).
    Unknown,
    /// APT without a first-seen date: approval delays do not apply.
    NotApplicable,
}

#[derive(Debug)]
pub struct Installed {
    pub version: Version,
    pub raw_version: String,
    pub installed_time: Option<i64>,
    /// Byte triples of this version's identity strings, for list matching.
    pub trigrams: Trigrams,
    /// The first byte of the version (RPM: of the version part), lower-cased:
    /// a letter here lets letter-led list entries match version-led forms.
    pub lead: u8,
}

/// One version of one package offered by the enabled repositories.
#[derive(Debug)]
pub struct Available {
    pub version: Version,
    pub raw_version: String,
    pub priority: Sym,
    pub section: Sym,
    /// Original spellings, for reports.
    pub priority_text: Option<String>,
    pub build_time: Option<i64>,
    pub first_seen: Option<i64>,
    /// APT: offered by a trusted security origin.
    pub security_origin: bool,
    /// Byte triples of this version's identity strings, for list matching.
    pub trigrams: Trigrams,
    /// As [`Installed::lead`].
    pub lead: u8,
}

/// A candidate: one available version, with the attributes of one notice
/// that lists it (or of none). A version in two notices gives two records,
/// each judged on its own (spec §3.2).
#[derive(Debug)]
pub struct Record {
    pub group: u32,
    pub available: u32,
    pub notice: Option<u32>,
    pub classification: Sym,
    pub severity: Sym,
    pub priority: Sym,
    pub section: Sym,
    /// The family's "security" predicate of spec §3.2.
    pub secure: bool,
    /// Release timestamp `R` in epoch seconds; `None` when delays do not apply.
    pub release_time: Option<i64>,
    pub date_source: DateSource,
    pub vs_installed: Ordering,
    pub rank: u32,
    /// Index into `Inventory::attr_classes`: records with the same
    /// attributes get the same filter verdicts, computed once per class.
    pub class: u16,
}

#[derive(Debug)]
pub struct Notice {
    pub id: String,
    pub classification: Sym,
    /// Title-cased notice type as reported (`Security`, `Bugfix`, …).
    pub classification_text: String,
    pub severity: Sym,
    pub severity_text: Option<String>,
    pub cves: Vec<String>,
    pub bugzilla: Vec<String>,
    pub reboot_suggested: bool,
}

/// One `name.arch`: the unit Patch Manager reports.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub arch: String,
    /// Lower-cased name and arch, only when they differ from `name`/`arch`
    /// (they rarely do); read them with [`Group::name_lc`] / [`Group::arch_lc`].
    lower: Option<Box<(String, String)>>,
    /// The highest installed version of this `name.arch`.
    pub installed: Option<u32>,
    pub records: Range<u32>,
    /// Byte triples of `name.arch`, the forms without a version.
    pub trigrams: Trigrams,
    /// Byte triples of every identity string of every version in the group.
    pub trigrams_all: Trigrams,
    /// First bytes of the lower-cased name and arch.
    pub leads: [u8; 2],
}

impl Group {
    pub fn name_lc(&self) -> &str {
        self.lower.as_ref().map_or(&self.name, |l| &l.0)
    }

    pub fn arch_lc(&self) -> &str {
        self.lower.as_ref().map_or(&self.arch, |l| &l.1)
    }
}

#[derive(Debug)]
pub struct Inventory {
    pub os: OperatingSystem,
    pub family: Family,
    pub product: String,
    pub product_lc: String,
    pub package_manager: PackageManager,
    pub groups: Vec<Group>,
    pub records: Vec<Record>,
    pub available: Vec<Available>,
    pub installed: Vec<Installed>,
    pub notices: Vec<Notice>,
    pub symbols: Symbols,
    /// Distinct (classification, severity, priority, section) tuples.
    pub attr_classes: Vec<[Sym; 4]>,
    pub boot_time: Option<i64>,
    pub last_no_reboot_install: Option<i64>,
    pub pending_reboot_titles: HashSet<String>,
    /// Things worth telling the operator that did not stop preparation.
    pub diagnostics: Vec<String>,
}

/// Facts that cannot be evaluated; names the entry and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("operating system {0} is not supported for evaluation (Linux only)")]
    UnsupportedOs(OperatingSystem),
    #[error("package manager {manager:?} does not fit operating system {os}")]
    ManagerMismatch {
        os: OperatingSystem,
        manager: PackageManager,
    },
    #[error("{place} ({name}.{arch}): {source}")]
    BadVersion {
        place: String,
        name: String,
        arch: String,
        source: VersionError,
    },
    #[error("{place}: {what}")]
    Invalid { place: String, what: String },
}

/// Hosts that serve only security updates (spec §3.2).
const SECURITY_SITES: [&str; 3] = [
    "security.debian.org",
    "security.ubuntu.com",
    "deb.debian.org/debian-security",
];

/// Spec §3.2 / testbeds §6: a trusted origin whose label is
/// `Debian-Security`, or whose codename or archive ends in `-security`, or
/// that is served by a security host.
pub fn is_security_origin(origin: &AptOrigin) -> bool {
    origin.trusted && looks_like_security(origin)
}

fn looks_like_security(origin: &AptOrigin) -> bool {
    let ends_security = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|s| s.to_ascii_lowercase().ends_with("-security"))
    };
    origin
        .label
        .as_deref()
        .is_some_and(|l| l.eq_ignore_ascii_case("Debian-Security"))
        || ends_security(&origin.codename)
        || ends_security(&origin.archive)
        || origin
            .site
            .as_deref()
            .is_some_and(|s| SECURITY_SITES.contains(&s.to_ascii_lowercase().as_str()))
}

fn title_case(text: &str) -> String {
    let lc = text.trim().to_ascii_lowercase();
    let mut chars = lc.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

impl Inventory {
    /// Parses, groups and orders the facts. Fails on the first entry that
    /// cannot be evaluated, naming it.
    pub fn prepare(facts: &NodeFacts) -> Result<Inventory, InventoryError> {
        Self::prepare_with(facts, facts.boot_time, facts.reboot_state.as_ref())
    }

    /// [`Self::prepare`] of `facts` as they would be with this boot time and
    /// reboot state instead of their own (a server judges one stored
    /// inventory with each node's state, without copying the inventory).
    pub fn prepare_with(
        facts: &NodeFacts,
        boot_time: Option<jiff::Timestamp>,
        reboot_state: Option<&crate::facts::RebootState>,
    ) -> Result<Inventory, InventoryError> {
        let os = facts.os.operating_system;
        let family = os.family();
        if family == Family::Unsupported {
            return Err(InventoryError::UnsupportedOs(os));
        }
        let package_manager = match facts.os.package_manager {
            Some(pm) => pm,
            None => os
                .default_package_manager(&facts.os.product)
                .ok_or(InventoryError::UnsupportedOs(os))?,
        };
        let fits = match family {
            Family::Rpm => matches!(package_manager, PackageManager::Yum | PackageManager::Dnf),
            Family::Apt => package_manager == PackageManager::Apt,
            Family::Zypp => package_manager == PackageManager::Zypper,
            Family::Unsupported => false,
        };
        if !fits {
            return Err(InventoryError::ManagerMismatch {
                os,
                manager: package_manager,
            });
        }
        let mut builder = Builder {
            family,
            identity: Identity::default(),
            symbols: Symbols::new(),
            diagnostics: Vec::new(),
        };

        let mut installed = builder.installed(facts)?;
        let (available, avail_keys) = builder.available(facts)?;
        let notices = builder.notices(&facts.notices);

        // name.arch → group members.
        let mut by_group: FxHashMap<(&str, &str), GroupMembers> = FxHashMap::default();
        for (i, (pkg, facts_pkg)) in installed.iter().zip(&facts.installed).enumerate() {
            let entry = by_group
                .entry((facts_pkg.name.as_str(), facts_pkg.arch.as_str()))
                .or_default();
            let better = match entry.0 {
                None => true,
                Some(j) => pkg.version.compare(&installed[j as usize].version) == Ordering::Greater,
            };
            if better {
                entry.0 = Some(i as u32);
            }
        }
        for (i, &(name, arch)) in avail_keys.iter().enumerate() {
            by_group.entry((name, arch)).or_default().1.push(i as u32);
        }

        // available index → notices listing it.
        let mut notices_of: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (n, notice) in facts.notices.iter().enumerate() {
            for pkg in &notice.packages {
                let Ok(version) = Version::parse(family, &pkg.version) else {
                    builder.diagnostics.push(format!(
                        "notice {}: package {}.{} has an unreadable version '{}'; entry ignored",
                        notice.id, pkg.name, pkg.arch, pkg.version
                    ));
                    continue;
                };
                let Some((_, members)) = by_group.get(&(pkg.name.as_str(), pkg.arch.as_str()))
                else {
                    continue;
                };
                // Every spelling of that version is listed by the notice.
                for &a in members.iter().filter(|&&a| {
                    available[a as usize].version.compare(&version) == Ordering::Equal
                }) {
                    let list = notices_of.entry(a).or_default();
                    if !list.contains(&(n as u32)) {
                        list.push(n as u32);
                    }
                }
            }
        }

        // Facts may list notices in any order; the verdict must not depend on it.
        for list in notices_of.values_mut() {
            list.sort_by(|&x, &y| {
                facts.notices[x as usize]
                    .id
                    .cmp(&facts.notices[y as usize].id)
                    .then(x.cmp(&y))
            });
        }

        let mut keys: Vec<(&str, &str)> = by_group.keys().copied().collect();
        keys.sort_unstable();
        let mut groups = Vec::with_capacity(keys.len());
        let mut records = Vec::with_capacity(available.len() + facts.notices.len());
        for key in keys {
            let (inst, mut members) = by_group.remove(&key).unwrap_or_default();
            // Newest first; equal versions written differently in a fixed
            // order, so that the order of the facts never matters.
            members.sort_by(|&a, &b| {
                let (a, b) = (&available[a as usize], &available[b as usize]);
                b.version
                    .compare(&a.version)
                    .then_with(|| a.raw_version.cmp(&b.raw_version))
            });
            let group_index = groups.len() as u32;
            let start = records.len() as u32;
            let mut rank = 0u32;
            let mut same_as_installed = None;
            for (pos, &a) in members.iter().enumerate() {
                let avail = &available[a as usize];
                if pos > 0
                    && avail
                        .version
                        .compare(&available[members[pos - 1] as usize].version)
                        != Ordering::Equal
                {
                    rank += 1;
                }
                let vs_installed = match inst {
                    Some(i) => avail.version.compare(&installed[i as usize].version),
                    None => Ordering::Greater,
                };
                if let Some(i) = inst
                    && vs_installed == Ordering::Equal
                    && same_spelling(avail, &installed[i as usize])
                {
                    same_as_installed = Some(a);
                }
                let listing = notices_of.get(&a).map(Vec::as_slice).unwrap_or(&[]);
                debug_assert!(listing.is_sorted_by_key(|&n| &facts.notices[n as usize].id));
                if listing.is_empty() {
                    records.push(builder.record_without_notice(
                        group_index,
                        a,
                        avail,
                        vs_installed,
                        rank,
                    ));
                }
                for &n in listing {
                    records.push(builder.record_with_notice(
                        group_index,
                        a,
                        avail,
                        (n, &notices[n as usize], &facts.notices[n as usize]),
                        package_manager,
                        vs_installed,
                        rank,
                    ));
                }
            }
            let (name, arch) = key;
            // The installed version's byte triples: those of the same version
            // in the repositories when it is there (usually), else its own.
            if let Some(i) = inst {
                let i = i as usize;
                installed[i].trigrams = match same_as_installed {
                    Some(a) => available[a as usize].trigrams,
                    None => {
                        builder.identity.build_maximal(
                            family,
                            &Components::of(
                                name,
                                arch,
                                &installed[i].version,
                                &installed[i].raw_version,
                            ),
                        );
                        builder.identity.trigrams()
                    }
                };
            }
            builder.identity.build_versionless(name, arch);
            let versionless = builder.identity.trigrams();
            let mut all = members.iter().fold(versionless, |t, &a| {
                t.union(&available[a as usize].trigrams)
            });
            if let Some(i) = inst {
                all = all.union(&installed[i as usize].trigrams);
            }
            let first = |s: &str| s.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
            groups.push(Group {
                leads: [first(name), first(arch)],
                trigrams: versionless,
                trigrams_all: all,
                name: name.to_string(),
                arch: arch.to_string(),
                lower: (name.bytes().any(|b| b.is_ascii_uppercase())
                    || arch.bytes().any(|b| b.is_ascii_uppercase()))
                .then(|| Box::new((name.to_ascii_lowercase(), arch.to_ascii_lowercase()))),
                installed: inst,
                records: start..records.len() as u32,
            });
        }

        let mut class_index: FxHashMap<[Sym; 4], u16> = FxHashMap::default();
        let mut attr_classes = Vec::new();
        for r in &mut records {
            let attrs = [r.classification, r.severity, r.priority, r.section];
            r.class = *class_index.entry(attrs).or_insert_with(|| {
                attr_classes.push(attrs);
                (attr_classes.len() - 1) as u16
            });
        }

        let boot_time = boot_time.map(|t| t.as_second());
        let (last_no_reboot_install, pending_reboot_titles) = match reboot_state {
            Some(state) => (
                state
                    .last_no_reboot_install_operation_time
                    .map(|t| t.as_second()),
                state.pending_reboot.iter().cloned().collect(),
            ),
            None => (None, HashSet::new()),
        };

        Ok(Inventory {
            os,
            family,
            product: facts.os.product.clone(),
            product_lc: facts.os.product.to_ascii_lowercase(),
            package_manager,
            groups,
            records,
            available,
            installed,
            notices,
            symbols: builder.symbols,
            attr_classes,
            boot_time,
            last_no_reboot_install,
            pending_reboot_titles,
            diagnostics: builder.diagnostics,
        })
    }

    /// A `NoReboot` install left patches pending and the node has not booted
    /// since (an unknown boot time cannot prove that it has).
    pub fn no_reboot_install_pending(&self) -> bool {
        !self.pending_reboot_titles.is_empty()
            && match (self.last_no_reboot_install, self.boot_time) {
                (Some(install), Some(boot)) => install > boot,
                (Some(_), None) => true,
                (None, _) => false,
            }
    }

    pub fn group_records(&self, group: &Group) -> &[Record] {
        &self.records[group.records.start as usize..group.records.end as usize]
    }

    pub fn record_version(&self, record: &Record) -> &Version {
        &self.available[record.available as usize].version
    }

    /// `name.arch:version` (APT) or `name.arch:epoch:version-release` (RPM).
    pub fn title(&self, group: &Group, version: &Version) -> String {
        format!("{}.{}:{}", group.name, group.arch, version)
    }
}

/// The highest installed version and the available versions of one `name.arch`.
type GroupMembers = (Option<u32>, Vec<u32>);

struct Builder {
    family: Family,
    identity: Identity,
    symbols: Symbols,
    diagnostics: Vec<String>,
}

impl Builder {
    fn sym(&mut self, kind: AttrKind, value: Option<&str>) -> Sym {
        match value {
            Some(v) if !v.trim().is_empty() => {
                self.symbols.intern(canonical_value(kind, self.family, v))
            }
            _ => Sym::NONE,
        }
    }

    fn installed(&mut self, facts: &NodeFacts) -> Result<Vec<Installed>, InventoryError> {
        facts
            .installed
            .iter()
            .enumerate()
            .map(|(i, pkg)| {
                check_name(|| format!("installed[{i}]"), &pkg.name, &pkg.arch)?;
                let version = Version::parse(self.family, &pkg.version).map_err(|source| {
                    InventoryError::BadVersion {
                        place: format!("installed[{i}]"),
                        name: pkg.name.clone(),
                        arch: pkg.arch.clone(),
                        source,
                    }
                })?;
                let lead = version_lead(&version);
                Ok(Installed {
                    // Filled in once the package's versions are grouped.
                    trigrams: Trigrams::default(),
                    lead,
                    version,
                    raw_version: pkg.version.clone(),
                    installed_time: pkg.installed_time.map(|t| t.as_second()),
                })
            })
            .collect()
    }

    /// Merges the same version offered by several repositories into one
    /// entry. Returns the entries and their (name, arch).
    #[allow(clippy::type_complexity)]
    fn available<'f>(
        &mut self,
        facts: &'f NodeFacts,
    ) -> Result<(Vec<Available>, Vec<(&'f str, &'f str)>), InventoryError> {
        let mut out: Vec<Available> = Vec::with_capacity(facts.available.len());
        let mut keys: Vec<(&str, &str)> = Vec::with_capacity(facts.available.len());
        let mut seen: FxHashMap<(&str, &str), Vec<usize>> = FxHashMap::default();
        for (i, pkg) in facts.available.iter().enumerate() {
            check_name(|| format!("available[{i}]"), &pkg.name, &pkg.arch)?;
            let version = Version::parse(self.family, &pkg.version).map_err(|source| {
                InventoryError::BadVersion {
                    place: format!("available[{i}]"),
                    name: pkg.name.clone(),
                    arch: pkg.arch.clone(),
                    source,
                }
            })?;
            let security_origin = pkg.origins.iter().any(is_security_origin);
            for origin in &pkg.origins {
                if !origin.trusted && looks_like_security(origin) {
                    self.diagnostics.push(format!(
                        "available[{i}] ({}.{} {}): origin {} looks like a security archive but is not trusted; not counted as security",
                        pkg.name,
                        pkg.arch,
                        pkg.version,
                        origin
                            .archive
                            .as_deref()
                            .or(origin.codename.as_deref())
                            .unwrap_or("?")
                    ));
                }
            }
            let same_package = seen.entry((&pkg.name, &pkg.arch)).or_default();
            // The same version written the same way (equal versions written
            // differently stay apart: list entries match the spelling).
            if let Some(&j) = same_package.iter().find(|&&j| {
                spelled_alike(&out[j].version, &out[j].raw_version, &version, &pkg.version)
            }) {
                let merged = &mut out[j];
                merged.security_origin |= security_origin;
                merged.first_seen =
                    min_opt(merged.first_seen, pkg.first_seen.map(|t| t.as_second()));
                merged.build_time =
                    max_opt(merged.build_time, pkg.build_time.map(|t| t.as_second()));
                // Keep the smallest spelling so that the order of the facts does not matter.
                if let Some(p) = &pkg.priority
                    && merged.priority_text.as_ref().is_none_or(|m| p < m)
                {
                    merged.priority = self.sym(AttrKind::Priority, Some(p));
                    merged.priority_text = Some(p.clone());
                }
                if pkg.section.is_some() && merged.section == Sym::NONE {
                    merged.section = self.sym(AttrKind::Section, pkg.section.as_deref());
                }
                continue;
            }
            same_package.push(out.len());
            self.identity.build_maximal(
                self.family,
                &Components::of(&pkg.name, &pkg.arch, &version, &pkg.version),
            );
            let trigrams = self.identity.trigrams();
            let lead = version_lead(&version);
            let priority = self.sym(AttrKind::Priority, pkg.priority.as_deref());
            let section = self.sym(AttrKind::Section, pkg.section.as_deref());
            out.push(Available {
                version,
                raw_version: pkg.version.clone(),
                priority,
                section,
                priority_text: pkg.priority.clone(),
                build_time: pkg.build_time.map(|t| t.as_second()),
                first_seen: pkg.first_seen.map(|t| t.as_second()),
                security_origin,
                trigrams,
                lead,
            });
            keys.push((pkg.name.as_str(), pkg.arch.as_str()));
        }
        Ok((out, keys))
    }

    fn notices(&mut self, notices: &[UpdateNotice]) -> Vec<Notice> {
        notices
            .iter()
            .map(|n| {
                // Spec §1.5: a notice without severity evaluates as `None`.
                let severity = self.sym(
                    AttrKind::Severity,
                    Some(
                        n.severity
                            .as_deref()
                            .filter(|s| !s.trim().is_empty())
                            .unwrap_or("None"),
                    ),
                );
                Notice {
                    id: n.id.clone(),
                    classification: self.sym(AttrKind::Classification, Some(&n.kind)),
                    classification_text: title_case(&canonical_value(
                        AttrKind::Classification,
                        self.family,
                        &n.kind,
                    )),
                    severity,
                    // RPM metadata writes `important`; Patch Manager reports `Important`.
                    severity_text: n.severity.as_deref().map(title_case),
                    cves: n.cves.clone(),
                    bugzilla: n.bugzilla.clone(),
                    reboot_suggested: n.reboot_suggested,
                }
            })
            .collect()
    }

    fn record_without_notice(
        &mut self,
        group: u32,
        a: u32,
        avail: &Available,
        vs_installed: Ordering,
        rank: u32,
    ) -> Record {
        let (release_time, date_source) = match self.family {
            Family::Apt => match avail.first_seen {
                Some(t) => (Some(t), DateSource::FirstSeen),
                None => (None, DateSource::NotApplicable),
            },
            _ => match avail.build_time {
                Some(t) => (Some(t), DateSource::BuildTime),
                None => (Some(0), DateSource::Unknown),
            },
        };
        Record {
            group,
            available: a,
            notice: None,
            classification: Sym::NONE,
            severity: Sym::NONE,
            priority: avail.priority,
            section: avail.section,
            secure: self.family == Family::Apt && avail.security_origin,
            release_time,
            date_source,
            vs_installed,
            rank,
            class: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record_with_notice(
        &mut self,
        group: u32,
        a: u32,
        avail: &Available,
        (n, notice, raw): (u32, &Notice, &UpdateNotice),
        pm: PackageManager,
        vs_installed: Ordering,
        rank: u32,
    ) -> Record {
        let dated = raw
            .updated
            .as_deref()
            .and_then(|d| parse_notice_date(d).map(|t| (t, DateSource::NoticeUpdated)))
            .or_else(|| {
                raw.issued
                    .as_deref()
                    .and_then(|d| parse_notice_date(d).map(|t| (t, DateSource::NoticeIssued)))
            });
        if dated.is_none() && (raw.updated.is_some() || raw.issued.is_some()) {
            self.diagnostics.push(format!(
                "notice {}: unreadable date; treated as 1970-01-01 (approval delays pass at once)",
                raw.id
            ));
        }
        let (mut release_time, mut date_source) = dated.unwrap_or((0, DateSource::Unknown));
        // yum takes the later of the notice date and the build time (§3.2).
        if pm == PackageManager::Yum
            && let Some(built) = avail.build_time
            && built > release_time
        {
            release_time = built;
            date_source = DateSource::BuildTime;
        }
        Record {
            group,
            available: a,
            notice: Some(n),
            classification: notice.classification,
            severity: notice.severity,
            priority: avail.priority,
            section: avail.section,
            secure: true,
            release_time: Some(release_time),
            date_source,
            vs_installed,
            rank,
            class: 0,
        }
    }
}

/// Equal versions can be written differently (`1.0` and `1.00`); identity
/// strings, and so byte triples, are shared only when the spelling is.
fn same_spelling(available: &Available, installed: &Installed) -> bool {
    spelled_alike(
        &available.version,
        &available.raw_version,
        &installed.version,
        &installed.raw_version,
    )
}

/// Two versions whose identity strings are the same (RPM: the same epoch,
/// version and release text; Debian: the same text).
fn spelled_alike(a: &Version, a_raw: &str, b: &Version, b_raw: &str) -> bool {
    match (a, b) {
        (Version::Rpm(a), Version::Rpm(b)) => {
            a.epoch_or_zero() == b.epoch_or_zero()
                && a.version() == b.version()
                && a.release() == b.release()
        }
        _ => a_raw == b_raw,
    }
}

fn version_lead(version: &Version) -> u8 {
    let text = match version {
        Version::Rpm(evr) => evr.version(),
        Version::Deb(v) => v.upstream(),
    };
    text.as_bytes().first().map_or(b'0', u8::to_ascii_lowercase)
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn check_name(place: impl Fn() -> String, name: &str, arch: &str) -> Result<(), InventoryError> {
    let bad = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control());
    if bad(name) {
        return Err(InventoryError::Invalid {
            place: place(),
            what: format!("package name '{name}' is empty or contains white space"),
        });
    }
    if bad(arch) {
        return Err(InventoryError::Invalid {
            place: place(),
            what: format!("architecture '{arch}' of {name} is empty or contains white space"),
        });
    }
    Ok(())
}
