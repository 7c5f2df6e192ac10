//! The baseline as `GetPatchBaseline` returns it (spec §1.1–1.7), so that a
//! file written by `aws ssm get-patch-baseline` loads unchanged and our own
//! output can be fed back to the SSM API.
//!
//! Members that SSM always returns with a default (`OperatingSystem`,
//! `ApprovedPatchesComplianceLevel`, the lists, …) are plain values here and
//! are always written; members without a default are `Option`s and are left
//! out when absent. Nothing is ever written as `null`.

use super::timestamp;
use crate::compliance::{ComplianceLevel, ComplianceStatus};
use crate::os::OperatingSystem;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// Derived struct impls also accept a JSON array (fields by position), which
/// would let `"GlobalFilters": [[]]` load silently. Each object type of the
/// document therefore derives its impls under `#[serde(remote = "Self")]` and
/// is exposed through this wrapper, which only accepts a map.
macro_rules! map_only {
    ($ty:ident, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct MapVisitor;
                impl<'de> serde::de::Visitor<'de> for MapVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        $ty::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(MapVisitor)
            }
        }
    };
}

/// A patch baseline: the rules that decide which updates a node must have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct Baseline {
    /// Server-assigned; absent in a baseline that was never stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_id: Option<String>,
    /// Required by `CreatePatchBaseline`, but a `BaselineOverride` entry may
    /// omit it, so a missing name is a validation error, not a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "default_os", deserialize_with = "os_or_default")]
    pub operating_system: OperatingSystem,
    #[serde(default, deserialize_with = "null_as_default")]
    pub global_filters: PatchFilterGroup,
    #[serde(default, deserialize_with = "null_as_default")]
    pub approval_rules: PatchRuleGroup,
    #[serde(default, deserialize_with = "null_as_default")]
    pub approved_patches: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub approved_patches_compliance_level: ComplianceLevel,
    #[serde(default, deserialize_with = "null_as_default")]
    pub approved_patches_enable_non_security: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rejected_patches: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rejected_patches_action: PatchAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sources: Vec<PatchSource>,
    /// Windows only in SSM; stored and echoed, never used on Linux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_security_updates_compliance_status: Option<ComplianceStatus>,
    /// Read-only: maintained by patch-group registration (spec §7).
    #[serde(default, deserialize_with = "null_as_default")]
    pub patch_groups: Vec<String>,
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_date: Option<Timestamp>,
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub modified_date: Option<Timestamp>,
    /// Create-time only (`CreatePatchBaseline`); `GetPatchBaseline` has no tags.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<Tag>,
}
map_only!(Baseline, "a patch baseline object");

/// `PatchFilterGroup`: every filter must match (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchFilterGroup {
    pub patch_filters: Vec<PatchFilter>,
}
map_only!(PatchFilterGroup, "a PatchFilterGroup object");

/// `PatchFilter`: the patch's property must equal one of the values (OR),
/// or the values contain `*`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchFilter {
    pub key: PatchFilterKey,
    pub values: Vec<String>,
}
map_only!(PatchFilter, "a PatchFilter object");

/// `PatchRuleGroup`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchRuleGroup {
    pub patch_rules: Vec<PatchRule>,
}
map_only!(PatchRuleGroup, "a PatchRuleGroup object");

/// `PatchRule`: approves what its filter group matches, once the patch is
/// old enough (`ApproveAfterDays`) or old enough relative to a fixed day
/// (`ApproveUntilDate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchRule {
    pub patch_filter_group: PatchFilterGroup,
    #[serde(default, deserialize_with = "null_as_default")]
    pub compliance_level: ComplianceLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_after_days: Option<u32>,
    /// `YYYY-MM-DD`; kept as text so that a malformed date is reported by
    /// validation with its path instead of failing the whole parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_until_date: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub enable_non_security: bool,
}
map_only!(PatchRule, "a PatchRule object");

/// `PatchSource`: an alternative repository configuration (spec §1.7).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct PatchSource {
    pub name: String,
    pub products: Vec<String>,
    /// Sensitive: may hold repository credentials. `Debug` and validation
    /// messages never show it.
    pub configuration: String,
}
map_only!(PatchSource, "a PatchSource object");

impl fmt::Debug for PatchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatchSource")
            .field("name", &self.name)
            .field("products", &self.products)
            .field("configuration", &"<redacted>")
            .finish()
    }
}

/// A resource tag, as given to `CreatePatchBaseline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}
map_only!(Tag, "a Tag object with Key and Value");

/// `PatchAction`: what `RejectedPatches` means for dependencies (spec §1.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatchAction {
    #[default]
    AllowAsDependency,
    Block,
}

impl PatchAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowAsDependency => "ALLOW_AS_DEPENDENCY",
            Self::Block => "BLOCK",
        }
    }
}

impl fmt::Display for PatchAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PatchFilterKey`: one enum shared by every SSM API; only a few keys are
/// valid in a baseline, and which ones depends on the OS (`properties`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PatchFilterKey {
    Arch,
    AdvisoryId,
    BugzillaId,
    PatchSet,
    Product,
    ProductFamily,
    Classification,
    CveId,
    Epoch,
    MsrcSeverity,
    Name,
    PatchId,
    Section,
    Priority,
    Repository,
    Release,
    Severity,
    Security,
    Version,
}

impl PatchFilterKey {
    pub const ALL: [PatchFilterKey; 19] = [
        Self::Arch,
        Self::AdvisoryId,
        Self::BugzillaId,
        Self::PatchSet,
        Self::Product,
        Self::ProductFamily,
        Self::Classification,
        Self::CveId,
        Self::Epoch,
        Self::MsrcSeverity,
        Self::Name,
        Self::PatchId,
        Self::Section,
        Self::Priority,
        Self::Repository,
        Self::Release,
        Self::Severity,
        Self::Security,
        Self::Version,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arch => "ARCH",
            Self::AdvisoryId => "ADVISORY_ID",
            Self::BugzillaId => "BUGZILLA_ID",
            Self::PatchSet => "PATCH_SET",
            Self::Product => "PRODUCT",
            Self::ProductFamily => "PRODUCT_FAMILY",
            Self::Classification => "CLASSIFICATION",
            Self::CveId => "CVE_ID",
            Self::Epoch => "EPOCH",
            Self::MsrcSeverity => "MSRC_SEVERITY",
            Self::Name => "NAME",
            Self::PatchId => "PATCH_ID",
            Self::Section => "SECTION",
            Self::Priority => "PRIORITY",
            Self::Repository => "REPOSITORY",
            Self::Release => "RELEASE",
            Self::Severity => "SEVERITY",
            Self::Security => "SECURITY",
            Self::Version => "VERSION",
        }
    }
}

impl fmt::Display for PatchFilterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PatchFilterKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown patch filter key '{s}'"))
    }
}

impl Baseline {
    /// An empty baseline with SSM's defaults; add rules or approved patches
    /// before it validates.
    pub fn new(name: impl Into<String>, operating_system: OperatingSystem) -> Self {
        Self {
            name: Some(name.into()),
            operating_system,
            ..Self::default()
        }
    }

    /// The name, or `""` for an unnamed `BaselineOverride` entry.
    pub fn name_or_empty(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    pub fn rules(&self) -> &[PatchRule] {
        &self.approval_rules.patch_rules
    }
}

impl Default for Baseline {
    /// SSM's defaults: `WINDOWS`, empty filters, lists and rules.
    fn default() -> Self {
        Self {
            baseline_id: None,
            name: None,
            operating_system: default_os(),
            global_filters: PatchFilterGroup::default(),
            approval_rules: PatchRuleGroup::default(),
            approved_patches: Vec::new(),
            approved_patches_compliance_level: ComplianceLevel::default(),
            approved_patches_enable_non_security: false,
            rejected_patches: Vec::new(),
            rejected_patches_action: PatchAction::default(),
            description: None,
            sources: Vec::new(),
            available_security_updates_compliance_status: None,
            patch_groups: Vec::new(),
            created_date: None,
            modified_date: None,
            tags: Vec::new(),
        }
    }
}

impl PatchFilterGroup {
    pub fn new(patch_filters: Vec<PatchFilter>) -> Self {
        Self { patch_filters }
    }

    /// The filter for `key`, if the group has one (validation rejects
    /// groups with duplicate keys, so there is at most one).
    pub fn filter(&self, key: PatchFilterKey) -> Option<&PatchFilter> {
        self.patch_filters.iter().find(|f| f.key == key)
    }
}

impl PatchFilter {
    pub fn new<I, S>(key: PatchFilterKey, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            key,
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// A bare `*` value matches every patch, even one that lacks the property.
    pub fn is_wildcard(&self) -> bool {
        self.values.iter().any(|v| v == "*")
    }
}

impl PatchRule {
    /// A rule with SSM's defaults; set an approval delay before it validates
    /// on a non-APT OS.
    pub fn new(patch_filters: Vec<PatchFilter>) -> Self {
        Self {
            patch_filter_group: PatchFilterGroup::new(patch_filters),
            compliance_level: ComplianceLevel::default(),
            approve_after_days: None,
            approve_until_date: None,
            enable_non_security: false,
        }
    }

    pub fn approve_after_days(mut self, days: u32) -> Self {
        self.approve_after_days = Some(days);
        self
    }

    pub fn approve_until_date(mut self, date: impl Into<String>) -> Self {
        self.approve_until_date = Some(date.into());
        self
    }

    pub fn compliance_level(mut self, level: ComplianceLevel) -> Self {
        self.compliance_level = level;
        self
    }

    pub fn enable_non_security(mut self, enable: bool) -> Self {
        self.enable_non_security = enable;
        self
    }
}

fn default_os() -> OperatingSystem {
    OperatingSystem::Windows
}

/// YAML users write `ApprovedPatches:` with nothing after it; that is an
/// empty list, not an error.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn os_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<OperatingSystem, D::Error> {
    Ok(Option::<OperatingSystem>::deserialize(d)?.unwrap_or_else(default_os))
}
