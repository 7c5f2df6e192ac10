//! Which filter keys and values a baseline may use, per operating system
//! (spec §1.5): the seed of our `DescribePatchProperties`.
//!
//! Kept as one static table so that adding a value is a data change, not a
//! code change. Values compare case-insensitively and `*` is always valid;
//! `None` from [`valid_values`] means free text (only the 1–64 character
//! limit applies).

use super::model::PatchFilterKey;
use crate::os::OperatingSystem;

use OperatingSystem as Os;
use PatchFilterKey as K;

/// The properties of one group of operating systems.
struct OsProperties {
    systems: &'static [OperatingSystem],
    keys: &'static [PatchFilterKey],
    /// Closed value sets; a key in `keys` but not here is free text.
    values: &'static [(PatchFilterKey, &'static [&'static str])],
}

const RPM_KEYS: &[PatchFilterKey] = &[K::Product, K::Classification, K::Severity];
const APT_KEYS: &[PatchFilterKey] = &[K::Product, K::Priority, K::Section];

const RPM_CLASSIFICATIONS: &[&str] = &[
    "Security",
    "Bugfix",
    "Enhancement",
    "Recommended",
    "Newpackage",
];

/// `Medium` and `Moderate` are synonyms wherever both appear (spec §1.5);
/// matching them is the evaluator's business, accepting both is ours.
static TABLE: &[OsProperties] = &[
    OsProperties {
        // Notices without a severity evaluate as `None`, so a filter on it
        // is meaningful even though the old model did not list it.
        systems: &[Os::AmazonLinux, Os::AmazonLinux2, Os::AmazonLinux2022],
        keys: RPM_KEYS,
        values: &[
            (K::Classification, RPM_CLASSIFICATIONS),
            (
                K::Severity,
                &["Critical", "Important", "Medium", "Low", "None"],
            ),
        ],
    },
    OsProperties {
        systems: &[Os::AmazonLinux2023],
        keys: RPM_KEYS,
        values: &[
            (K::Classification, RPM_CLASSIFICATIONS),
            (
                K::Severity,
                &["Critical", "Important", "Medium", "Moderate", "Low", "None"],
            ),
        ],
    },
    OsProperties {
        systems: &[
            Os::RedhatEnterpriseLinux,
            Os::RockyLinux,
            Os::AlmaLinux,
            Os::OracleLinux,
            Os::Centos,
        ],
        keys: RPM_KEYS,
        values: &[
            (K::Classification, RPM_CLASSIFICATIONS),
            (
                K::Severity,
                &["Critical", "Important", "Moderate", "Medium", "Low"],
            ),
        ],
    },
    OsProperties {
        systems: &[Os::Suse],
        keys: RPM_KEYS,
        values: &[
            (
                K::Classification,
                &[
                    "Security",
                    "Recommended",
                    "Optional",
                    "Feature",
                    "Document",
                    "Yast",
                ],
            ),
            (
                K::Severity,
                &["Critical", "Important", "Moderate", "Low", "None"],
            ),
        ],
    },
    OsProperties {
        systems: &[Os::Ubuntu, Os::Debian, Os::Raspbian],
        keys: APT_KEYS,
        values: &[(
            K::Priority,
            &["Required", "Important", "Standard", "Optional", "Extra"],
        )],
    },
    // Accepted by the model but not evaluated by Patchfleet: keys only.
    OsProperties {
        systems: &[Os::Macos],
        keys: &[K::Product, K::Classification],
        values: &[],
    },
    OsProperties {
        systems: &[Os::Windows],
        keys: &[
            K::Product,
            K::ProductFamily,
            K::Classification,
            K::MsrcSeverity,
            K::PatchSet,
            K::PatchId,
        ],
        values: &[],
    },
];

fn row(os: OperatingSystem) -> &'static OsProperties {
    TABLE
        .iter()
        .find(|r| r.systems.contains(&os))
        .expect("every operating system has a row in the properties table")
}

/// The filter keys a baseline for `os` may use, in `GlobalFilters` and in
/// approval rules. Every other key (including all the
/// `DescribeAvailablePatches`-only keys) is rejected by validation.
pub fn valid_keys(os: OperatingSystem) -> &'static [PatchFilterKey] {
    row(os).keys
}

/// The closed value set of `key` for `os`, or `None` when the values are
/// free text (`PRODUCT`, `SECTION`, and every key of an OS we do not
/// evaluate) or `key` is not valid for `os` at all.
pub fn valid_values(os: OperatingSystem, key: PatchFilterKey) -> Option<&'static [&'static str]> {
    row(os)
        .values
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, values)| *values)
}

/// Whether `value` may appear in a `key` filter of an `os` baseline:
/// `*`, any free-text value, or a listed value in any letter case.
pub fn is_valid_value(os: OperatingSystem, key: PatchFilterKey, value: &str) -> bool {
    value == "*"
        || match valid_values(os, key) {
            None => true,
            Some(values) => values.iter().any(|v| v.eq_ignore_ascii_case(value)),
        }
}

/// The listed spelling of `value` (`security` → `Security`), if it is one.
pub fn canonical_value(
    os: OperatingSystem,
    key: PatchFilterKey,
    value: &str,
) -> Option<&'static str> {
    valid_values(os, key)?
        .iter()
        .copied()
        .find(|v| v.eq_ignore_ascii_case(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_os_has_exactly_one_row() {
        for os in OperatingSystem::ALL {
            let rows = TABLE.iter().filter(|r| r.systems.contains(&os)).count();
            assert_eq!(rows, 1, "{os}");
        }
    }

    #[test]
    fn value_sets_belong_to_valid_keys() {
        for r in TABLE {
            for (key, values) in r.values {
                assert!(r.keys.contains(key), "{key} in {:?}", r.systems);
                assert!(!values.is_empty());
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(valid_keys(Os::Debian), APT_KEYS);
        assert!(!valid_keys(Os::AmazonLinux2).contains(&K::Arch));
        assert_eq!(valid_values(Os::Ubuntu, K::Section), None);
        assert_eq!(valid_values(Os::Ubuntu, K::Product), None);
        assert!(is_valid_value(
            Os::RedhatEnterpriseLinux,
            K::Severity,
            "moderate"
        ));
        assert!(is_valid_value(
            Os::RedhatEnterpriseLinux,
            K::Severity,
            "MEDIUM"
        ));
        assert!(!is_valid_value(Os::Suse, K::Classification, "Bugfix"));
        assert!(is_valid_value(Os::Suse, K::Classification, "*"));
        assert_eq!(
            canonical_value(Os::AmazonLinux2023, K::Classification, "security"),
            Some("Security")
        );
    }
}
