//! Choosing a node's baseline: override, patch group, default (spec §6.2,
//! §7), and the registry operations behind it.

use patchfleet_core::baseline::{
    Baseline, PatchGroupNameError, PatchRegistry, RegistryError, Resolution, ResolutionError,
    ResolutionSource, patch_group_from_tags, predefined,
};
use patchfleet_core::os::OperatingSystem;
use std::collections::BTreeMap;

use OperatingSystem as Os;

fn stored(id: &str, os: Os) -> Baseline {
    let mut b = Baseline::new(format!("custom-{id}"), os);
    b.baseline_id = Some(id.to_string());
    b
}

const NO_TAGS: [(&str, &str); 0] = [];

fn default_id(os: Os) -> String {
    predefined::default_for(os)
        .unwrap()
        .baseline_id
        .clone()
        .unwrap()
}

#[test]
fn defaults_start_as_the_predefined_baselines() {
    let r = PatchRegistry::new();
    for b in predefined::all() {
        assert_eq!(
            r.default_baseline(b.operating_system),
            b.baseline_id.as_deref()
        );
    }
    assert_eq!(r.default_baseline(Os::Windows), None);
    assert_eq!(PatchRegistry::default(), r);
    assert_eq!(PatchRegistry::empty().default_baseline(Os::Ubuntu), None);
}

#[test]
fn e18_group_without_a_baseline_for_the_node_os_falls_back_to_the_default() {
    let mut r = PatchRegistry::new();
    let al2 = stored("pb-0a0a0a0a0a0a0a0a0", Os::AmazonLinux2);
    r.register_patch_group("DEV", &al2).unwrap();

    let ubuntu_node = r
        .resolve(Os::Ubuntu, [("PatchGroup", "DEV")], None)
        .unwrap();
    assert_eq!(
        ubuntu_node,
        Resolution {
            baseline_id: default_id(Os::Ubuntu),
            patch_group: "DEV".into(),
            source: ResolutionSource::Default,
        }
    );

    let al2_node = r
        .resolve(Os::AmazonLinux2, [("PatchGroup", "DEV")], None)
        .unwrap();
    assert_eq!(al2_node.baseline_id, "pb-0a0a0a0a0a0a0a0a0");
    assert_eq!(al2_node.source, ResolutionSource::PatchGroup);

    // A second AL2 baseline for DEV: AlreadyExistsException.
    let other = stored("pb-0b0b0b0b0b0b0b0b0", Os::AmazonLinux2);
    assert_eq!(
        r.register_patch_group("DEV", &other),
        Err(RegistryError::AlreadyExists {
            group: "DEV".into(),
            os: Os::AmazonLinux2,
            existing: "pb-0a0a0a0a0a0a0a0a0".into(),
        })
    );
    // Another OS in the same group is fine.
    r.register_patch_group("DEV", &stored("pb-0c0c0c0c0c0c0c0c0", Os::Ubuntu))
        .unwrap();
    let ubuntu_node = r
        .resolve(Os::Ubuntu, [("PatchGroup", "DEV")], None)
        .unwrap();
    assert_eq!(ubuntu_node.baseline_id, "pb-0c0c0c0c0c0c0c0c0");
}

#[test]
fn both_tag_spellings_name_the_same_group() {
    let mut r = PatchRegistry::new();
    r.register_patch_group("web", &stored("pb-0a0a0a0a0a0a0a0a0", Os::Debian))
        .unwrap();
    for tags in [
        vec![("Patch Group", "web")],
        vec![("PatchGroup", "web")],
        vec![("Patch Group", "web"), ("PatchGroup", "web")],
    ] {
        let res = r.resolve(Os::Debian, tags, None).unwrap();
        assert_eq!(res.source, ResolutionSource::PatchGroup);
        assert_eq!(res.patch_group, "web");
    }
    // Keys are case-sensitive: `patchgroup` is just another tag.
    let res = r
        .resolve(Os::Debian, [("patchgroup", "web")], None)
        .unwrap();
    assert_eq!(res.source, ResolutionSource::Default);
    assert_eq!(res.patch_group, "");
    // Values are case-sensitive too.
    let res = r
        .resolve(Os::Debian, [("PatchGroup", "WEB")], None)
        .unwrap();
    assert_eq!(res.source, ResolutionSource::Default);
    assert_eq!(res.patch_group, "WEB");
}

#[test]
fn conflicting_tags_are_a_configuration_error() {
    let r = PatchRegistry::new();
    let err = r
        .resolve(
            Os::Ubuntu,
            [("Patch Group", "prod"), ("PatchGroup", "dev")],
            None,
        )
        .unwrap_err();
    assert_eq!(
        err,
        ResolutionError::ConflictingPatchGroupTags {
            patch_group_with_space: "prod".into(),
            patch_group: "dev".into(),
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("'prod'") && msg.contains("'dev'"), "{msg}");
}

#[test]
fn tags_from_maps_and_vectors() {
    let map: BTreeMap<String, String> = [
        ("Name".to_string(), "web-1".to_string()),
        ("PatchGroup".to_string(), "g".to_string()),
    ]
    .into();
    assert_eq!(patch_group_from_tags(&map).unwrap().as_deref(), Some("g"));
    let vec: Vec<(String, String)> = vec![("Patch Group".into(), "h".into())];
    assert_eq!(patch_group_from_tags(vec).unwrap().as_deref(), Some("h"));
    assert_eq!(patch_group_from_tags(NO_TAGS).unwrap(), None);
    let r = PatchRegistry::new();
    assert_eq!(r.resolve(Os::Suse, &map, None).unwrap().patch_group, "g");
}

#[test]
fn override_wins_over_everything() {
    let mut r = PatchRegistry::new();
    r.register_patch_group("DEV", &stored("pb-0a0a0a0a0a0a0a0a0", Os::Ubuntu))
        .unwrap();
    let mut o = Baseline::new("override", Os::Ubuntu);
    let res = r
        .resolve(Os::Ubuntu, [("PatchGroup", "DEV")], Some(&o))
        .unwrap();
    assert_eq!(
        res,
        Resolution {
            baseline_id: String::new(),
            patch_group: "DEV".into(),
            source: ResolutionSource::Override,
        }
    );
    o.baseline_id = Some("pb-0d0d0d0d0d0d0d0d0".into());
    assert_eq!(
        r.resolve(Os::Ubuntu, NO_TAGS, Some(&o))
            .unwrap()
            .baseline_id,
        "pb-0d0d0d0d0d0d0d0d0"
    );
    assert_eq!(
        r.resolve(Os::Debian, NO_TAGS, Some(&o)),
        Err(ResolutionError::OverrideForOtherOs {
            override_os: Os::Ubuntu,
            node_os: Os::Debian,
        })
    );
}

#[test]
fn custom_default() {
    let mut r = PatchRegistry::new();
    let custom = stored("pb-0e0e0e0e0e0e0e0e0", Os::RockyLinux);
    let previous = r.register_default(&custom).unwrap();
    assert_eq!(previous, Some(default_id(Os::RockyLinux)));
    let res = r.resolve(Os::RockyLinux, NO_TAGS, None).unwrap();
    assert_eq!(res.baseline_id, "pb-0e0e0e0e0e0e0e0e0");
    assert_eq!(res.source, ResolutionSource::Default);
    assert!(r.is_in_use("pb-0e0e0e0e0e0e0e0e0"));

    // Back to the predefined one, by ARN as SSM requires.
    let mut predefined_by_arn = predefined::default_for(Os::RockyLinux).unwrap().clone();
    predefined_by_arn.baseline_id = Some(format!(
        "arn:aws:ssm:us-east-1:123456789012:patchbaseline/{}",
        default_id(Os::RockyLinux)
    ));
    r.register_default(&predefined_by_arn).unwrap();
    assert_eq!(
        r.default_baseline(Os::RockyLinux),
        Some(default_id(Os::RockyLinux).as_str())
    );
    assert!(!r.is_in_use("pb-0e0e0e0e0e0e0e0e0"));

    assert_eq!(
        PatchRegistry::empty().resolve(Os::Ubuntu, NO_TAGS, None),
        Err(ResolutionError::NoDefaultBaseline(Os::Ubuntu))
    );
    assert_eq!(
        r.register_default(&Baseline::new("no-id", Os::Ubuntu)),
        Err(RegistryError::MissingBaselineId)
    );
}

#[test]
fn deregistration_and_listing() {
    let mut r = PatchRegistry::new();
    let a = stored("pb-0a0a0a0a0a0a0a0a0", Os::AmazonLinux2);
    r.register_patch_group("DEV", &a).unwrap();
    r.register_patch_group("QA", &a).unwrap();
    assert_eq!(r.patch_groups_of("pb-0a0a0a0a0a0a0a0a0"), ["DEV", "QA"]);
    assert_eq!(
        r.baseline_for_patch_group("QA", Os::AmazonLinux2),
        Some("pb-0a0a0a0a0a0a0a0a0")
    );
    assert_eq!(r.baseline_for_patch_group("QA", Os::Ubuntu), None);
    assert_eq!(r.patch_groups().count(), 2);

    assert_eq!(
        r.deregister_patch_group("DEV", "pb-0a0a0a0a0a0a0a0a0"),
        Ok(Os::AmazonLinux2)
    );
    assert_eq!(
        r.deregister_patch_group("DEV", "pb-0a0a0a0a0a0a0a0a0"),
        Err(RegistryError::NotRegistered {
            group: "DEV".into(),
            baseline_id: "pb-0a0a0a0a0a0a0a0a0".into(),
        })
    );
    assert_eq!(r.patch_groups_of("pb-0a0a0a0a0a0a0a0a0"), ["QA"]);
    // After deregistration the group is free again for that OS.
    r.register_patch_group("DEV", &stored("pb-0b0b0b0b0b0b0b0b0", Os::AmazonLinux2))
        .unwrap();
}

#[test]
fn patch_group_names_are_checked_on_registration() {
    let mut r = PatchRegistry::new();
    let a = stored("pb-0a0a0a0a0a0a0a0a0", Os::AmazonLinux2);
    assert_eq!(
        r.register_patch_group("", &a),
        Err(RegistryError::InvalidPatchGroup(PatchGroupNameError::Empty))
    );
    assert!(matches!(
        r.register_patch_group("no*stars", &a),
        Err(RegistryError::InvalidPatchGroup(
            PatchGroupNameError::InvalidChar { .. }
        ))
    ));
    assert!(matches!(
        r.register_patch_group(&"g".repeat(257), &a),
        Err(RegistryError::InvalidPatchGroup(
            PatchGroupNameError::TooLong { chars: 257, .. }
        ))
    ));
    r.register_patch_group(&"g".repeat(256), &a).unwrap();
    r.register_patch_group("web servers: eu/west=1+2-3@x_y.z", &a)
        .unwrap();
    assert_eq!(
        r.register_patch_group("DEV", &Baseline::new("no-id", Os::AmazonLinux2)),
        Err(RegistryError::MissingBaselineId)
    );
}
