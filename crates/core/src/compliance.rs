//! Compliance levels, patch states and node compliance (spec §1.4, §4).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `PatchComplianceLevel`. Declared lowest first so that the derived order is
/// the rank of spec §1.4 (CRITICAL highest).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceLevel {
    #[default]
    Unspecified,
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl ComplianceLevel {
    pub const ALL: [ComplianceLevel; 6] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Informational,
        Self::Unspecified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "CRITICAL",
            Self::High => "HIGH",
            Self::Medium => "MEDIUM",
            Self::Low => "LOW",
            Self::Informational => "INFORMATIONAL",
            Self::Unspecified => "UNSPECIFIED",
        }
    }
}

impl fmt::Display for ComplianceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ComplianceLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| format!("unknown compliance level '{s}'"))
    }
}

/// The state of one patch (package) on one node. Serialised with the
/// CamelCase spellings the agent and `DescribeInstancePatches` use; parsing
/// also accepts the `PatchComplianceDataState` enum spellings (spec §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PatchState {
    Installed,
    InstalledOther,
    InstalledPendingReboot,
    InstalledRejected,
    Missing,
    NotApplicable,
    Failed,
}

impl PatchState {
    pub const ALL: [PatchState; 7] = [
        Self::Installed,
        Self::InstalledOther,
        Self::InstalledPendingReboot,
        Self::InstalledRejected,
        Self::Missing,
        Self::NotApplicable,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "Installed",
            Self::InstalledOther => "InstalledOther",
            Self::InstalledPendingReboot => "InstalledPendingReboot",
            Self::InstalledRejected => "InstalledRejected",
            Self::Missing => "Missing",
            Self::NotApplicable => "NotApplicable",
            Self::Failed => "Failed",
        }
    }

    /// The `PatchComplianceDataState` spelling (`INSTALLED_OTHER`, …).
    pub fn api_enum(self) -> &'static str {
        match self {
            Self::Installed => "INSTALLED",
            Self::InstalledOther => "INSTALLED_OTHER",
            Self::InstalledPendingReboot => "INSTALLED_PENDING_REBOOT",
            Self::InstalledRejected => "INSTALLED_REJECTED",
            Self::Missing => "MISSING",
            Self::NotApplicable => "NOT_APPLICABLE",
            Self::Failed => "FAILED",
        }
    }

    /// Spec §4.2: these four make a node NON_COMPLIANT.
    pub fn is_non_compliant(self) -> bool {
        matches!(
            self,
            Self::Missing | Self::Failed | Self::InstalledRejected | Self::InstalledPendingReboot
        )
    }
}

impl fmt::Display for PatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PatchState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s || st.api_enum() == s)
            .ok_or_else(|| format!("unknown patch state '{s}'"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComplianceStatus {
    Compliant,
    NonCompliant,
}

impl ComplianceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compliant => "COMPLIANT",
            Self::NonCompliant => "NON_COMPLIANT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_rank_as_spec() {
        use ComplianceLevel::*;
        let ranked = [Unspecified, Informational, Low, Medium, High, Critical];
        assert!(ranked.windows(2).all(|w| w[0] < w[1]));
        assert_eq!("HIGH".parse::<ComplianceLevel>(), Ok(High));
        assert!("high".parse::<ComplianceLevel>().is_err());
    }

    #[test]
    fn states_parse_both_spellings() {
        for st in PatchState::ALL {
            assert_eq!(st.as_str().parse::<PatchState>(), Ok(st));
            assert_eq!(st.api_enum().parse::<PatchState>(), Ok(st));
        }
        let non_compliant: Vec<_> = PatchState::ALL
            .into_iter()
            .filter(|s| s.is_non_compliant())
            .collect();
        assert_eq!(non_compliant.len(), 4);
    }
}
