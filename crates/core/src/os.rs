//! Operating systems as Patch Manager names them, and the package-manager
//! family that decides how a node is evaluated (spec §0).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `OperatingSystem` of a baseline or a node, with SSM's exact spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperatingSystem {
    Windows,
    AmazonLinux,
    #[serde(rename = "AMAZON_LINUX_2")]
    AmazonLinux2,
    #[serde(rename = "AMAZON_LINUX_2022")]
    AmazonLinux2022,
    #[serde(rename = "AMAZON_LINUX_2023")]
    AmazonLinux2023,
    Ubuntu,
    RedhatEnterpriseLinux,
    Suse,
    Centos,
    OracleLinux,
    Debian,
    Macos,
    Raspbian,
    RockyLinux,
    AlmaLinux,
}

/// How packages are judged: the three Linux families of spec §0, plus the
/// platforms we accept in baselines but do not evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    Rpm,
    Apt,
    Zypp,
    Unsupported,
}

/// The package manager on the node. For the RPM family it decides the
/// version floor of spec §3.4 (yum keeps older approved versions, dnf not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageManager {
    Yum,
    Dnf,
    Apt,
    Zypper,
}

impl OperatingSystem {
    pub const ALL: [OperatingSystem; 15] = [
        Self::Windows,
        Self::AmazonLinux,
        Self::AmazonLinux2,
        Self::AmazonLinux2022,
        Self::AmazonLinux2023,
        Self::Ubuntu,
        Self::RedhatEnterpriseLinux,
        Self::Suse,
        Self::Centos,
        Self::OracleLinux,
        Self::Debian,
        Self::Macos,
        Self::Raspbian,
        Self::RockyLinux,
        Self::AlmaLinux,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Windows => "WINDOWS",
            Self::AmazonLinux => "AMAZON_LINUX",
            Self::AmazonLinux2 => "AMAZON_LINUX_2",
            Self::AmazonLinux2022 => "AMAZON_LINUX_2022",
            Self::AmazonLinux2023 => "AMAZON_LINUX_2023",
            Self::Ubuntu => "UBUNTU",
            Self::RedhatEnterpriseLinux => "REDHAT_ENTERPRISE_LINUX",
            Self::Suse => "SUSE",
            Self::Centos => "CENTOS",
            Self::OracleLinux => "ORACLE_LINUX",
            Self::Debian => "DEBIAN",
            Self::Macos => "MACOS",
            Self::Raspbian => "RASPBIAN",
            Self::RockyLinux => "ROCKY_LINUX",
            Self::AlmaLinux => "ALMA_LINUX",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Self::AmazonLinux
            | Self::AmazonLinux2
            | Self::AmazonLinux2022
            | Self::AmazonLinux2023
            | Self::RedhatEnterpriseLinux
            | Self::RockyLinux
            | Self::AlmaLinux
            | Self::Centos
            | Self::OracleLinux => Family::Rpm,
            Self::Ubuntu | Self::Debian | Self::Raspbian => Family::Apt,
            Self::Suse => Family::Zypp,
            Self::Windows | Self::Macos => Family::Unsupported,
        }
    }

    /// The package manager a node of this OS uses when its facts do not say.
    /// `product` is the node's product string (spec §3.1), e.g.
    /// `RedhatEnterpriseLinux7.9`: major version 7 and older use yum.
    pub fn default_package_manager(self, product: &str) -> Option<PackageManager> {
        match self.family() {
            Family::Apt => Some(PackageManager::Apt),
            Family::Zypp => Some(PackageManager::Zypper),
            Family::Unsupported => None,
            Family::Rpm => Some(match self {
                Self::AmazonLinux | Self::AmazonLinux2 => PackageManager::Yum,
                Self::AmazonLinux2022 | Self::AmazonLinux2023 => PackageManager::Dnf,
                Self::RockyLinux | Self::AlmaLinux => PackageManager::Dnf,
                _ => match product_major_version(product) {
                    Some(major) if major <= 7 => PackageManager::Yum,
                    _ => PackageManager::Dnf,
                },
            }),
        }
    }
}

/// The first run of digits in a product string: `CentOS7.9` → 7.
fn product_major_version(product: &str) -> Option<u32> {
    let start = product.find(|c: char| c.is_ascii_digit())?;
    let digits: String = product[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

impl fmt::Display for OperatingSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The input named no operating system that SSM knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operating system '{0}' (expected one of: {list})", list = OperatingSystem::ALL.map(|o| o.as_str()).join(", "))]
pub struct UnknownOperatingSystem(pub String);

impl FromStr for OperatingSystem {
    type Err = UnknownOperatingSystem;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|os| os.as_str() == s)
            .ok_or_else(|| UnknownOperatingSystem(s.to_string()))
    }
}

impl PackageManager {
    /// Whether approved versions *older* than the installed one still count
    /// as candidates (spec §3.4 step 4: yum yes, dnf/zypper/apt no).
    pub fn considers_older_approved_versions(self) -> bool {
        matches!(self, PackageManager::Yum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for os in OperatingSystem::ALL {
            assert_eq!(os.as_str().parse::<OperatingSystem>(), Ok(os));
            let json = serde_json::to_string(&os).unwrap();
            assert_eq!(json, format!("\"{}\"", os.as_str()));
        }
        let err = "UBUNTO".parse::<OperatingSystem>().unwrap_err();
        assert!(err.to_string().contains("'UBUNTO'"), "{err}");
    }

    #[test]
    fn yum_or_dnf_by_os_and_product() {
        use OperatingSystem::*;
        use PackageManager::*;
        let cases = [
            (AmazonLinux2, "AmazonLinux2", Yum),
            (AmazonLinux2023, "AmazonLinux2023", Dnf),
            (RedhatEnterpriseLinux, "RedhatEnterpriseLinux7.9", Yum),
            (RedhatEnterpriseLinux, "RedhatEnterpriseLinux8.8", Dnf),
            (Centos, "CentOS7.9", Yum),
            (Centos, "CentOSStream9", Dnf),
            (OracleLinux, "OracleLinux7.9", Yum),
            (OracleLinux, "OracleLinux8.7", Dnf),
            (RockyLinux, "RockyLinux9.3", Dnf),
            (Ubuntu, "Ubuntu22.04", Apt),
            (Suse, "Suse15.4", Zypper),
        ];
        for (os, product, pm) in cases {
            assert_eq!(
                os.default_package_manager(product),
                Some(pm),
                "{os} {product}"
            );
        }
        assert_eq!(Windows.default_package_manager("x"), None);
    }
}
