//! The predefined Linux baselines (spec §6.1), shipped as data in
//! `crates/core/data/predefined/` and compiled in.
//!
//! Ids are fixed in the data so that they are the same in every
//! installation and survive upgrades: `pb-` followed by the first 17 hex
//! digits of the SHA-256 of the baseline name (reproduce with
//! `printf %s AWS-UbuntuDefaultPatchBaseline | sha256sum | cut -c1-17`).
//! Predefined baselines are read-only; copy one to customise it.

use super::model::Baseline;
use crate::os::OperatingSystem;
use std::sync::OnceLock;

/// (file name, contents), in the order `all()` returns them.
const FILES: &[(&str, &str)] = &[
    (
        "amazon-linux.json",
        include_str!("../../data/predefined/amazon-linux.json"),
    ),
    (
        "amazon-linux-2.json",
        include_str!("../../data/predefined/amazon-linux-2.json"),
    ),
    (
        "amazon-linux-2022.json",
        include_str!("../../data/predefined/amazon-linux-2022.json"),
    ),
    (
        "amazon-linux-2023.json",
        include_str!("../../data/predefined/amazon-linux-2023.json"),
    ),
    (
        "redhat.json",
        include_str!("../../data/predefined/redhat.json"),
    ),
    (
        "rocky-linux.json",
        include_str!("../../data/predefined/rocky-linux.json"),
    ),
    (
        "alma-linux.json",
        include_str!("../../data/predefined/alma-linux.json"),
    ),
    (
        "oracle-linux.json",
        include_str!("../../data/predefined/oracle-linux.json"),
    ),
    (
        "centos.json",
        include_str!("../../data/predefined/centos.json"),
    ),
    ("suse.json", include_str!("../../data/predefined/suse.json")),
    (
        "ubuntu.json",
        include_str!("../../data/predefined/ubuntu.json"),
    ),
    (
        "debian.json",
        include_str!("../../data/predefined/debian.json"),
    ),
    (
        "raspbian.json",
        include_str!("../../data/predefined/raspbian.json"),
    ),
];

/// Every predefined baseline, parsed on first use.
pub fn all() -> &'static [Baseline] {
    static ALL: OnceLock<Vec<Baseline>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(file, text)| {
                Baseline::from_json(text).unwrap_or_else(|e| {
                    // The data is compiled in and checked by the tests, so
                    // this is a build defect, not an input error.
                    panic!("predefined baseline {file} does not parse: {e}")
                })
            })
            .collect()
    })
}

pub fn by_name(name: &str) -> Option<&'static Baseline> {
    all().iter().find(|b| b.name.as_deref() == Some(name))
}

pub fn by_id(id: &str) -> Option<&'static Baseline> {
    let id = strip_arn(id);
    all().iter().find(|b| b.baseline_id.as_deref() == Some(id))
}

/// Looks a baseline up the ways SSM lets operators name a predefined one:
/// its id, its name, or its ARN
/// (`arn:<partition>:ssm:<region>:<account>:patchbaseline/<id>`).
pub fn by_id_or_name(id_or_name: &str) -> Option<&'static Baseline> {
    by_id(id_or_name).or_else(|| by_name(id_or_name))
}

/// The predefined baseline that is the default for `os` until another one
/// is registered; `None` for the operating systems Patchfleet does not
/// evaluate.
pub fn default_for(os: OperatingSystem) -> Option<&'static Baseline> {
    all().iter().find(|b| b.operating_system == os)
}

/// Whether `id` (plain or ARN) names a predefined, hence read-only, baseline.
pub fn is_predefined(id: &str) -> bool {
    by_id(id).is_some()
}

/// Names starting with `AWS-` belong to predefined baselines; refusing them
/// for custom baselines keeps `by_id_or_name` unambiguous.
pub fn is_reserved_name(name: &str) -> bool {
    name.starts_with("AWS-")
}

/// `arn:…:patchbaseline/pb-…` → `pb-…`; anything else unchanged.
pub fn strip_arn(id: &str) -> &str {
    if id.starts_with("arn:")
        && let Some((_, tail)) = id.rsplit_once(":patchbaseline/")
    {
        return tail;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_are_written_exactly_as_we_serialise() {
        // So that a diff of a data file is a diff of the baseline, and a
        // regenerated file never shows spurious changes.
        for ((file, text), b) in FILES.iter().zip(all()) {
            assert_eq!(*text, format!("{}\n", b.to_json_pretty()), "{file}");
            assert!(is_reserved_name(b.name_or_empty()), "{file}");
        }
        assert!(!is_reserved_name("aws-mine"));
    }
}
