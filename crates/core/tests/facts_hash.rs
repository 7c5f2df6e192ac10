//! The content hash of an inventory: the same inventory gives the same hash
//! on every machine and in every listing order; node state does not count.

use patchfleet_core::facts::NodeFacts;

fn example() -> NodeFacts {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/facts/al2023-web-01.json"
    ))
    .unwrap();
    NodeFacts::from_json(&text).unwrap()
}

/// Pinned: a change of the canonical form changes every stored hash, so it
/// must be deliberate (and comes with a new facts format).
#[test]
fn the_hash_is_stable() {
    let hash = example().content_hash();
    assert_eq!(
        hash,
        "sha256:2a41f7c8f9640da94609bde6c11ffe73eadf3773f92958055fe91e820a60a4c5"
    );
}

#[test]
fn listing_order_and_node_state_do_not_count() {
    let facts = example();
    let mut other = facts.clone();
    other.installed.reverse();
    other.available.reverse();
    other.notices.reverse();
    for n in &mut other.notices {
        n.packages.reverse();
        n.cves.reverse();
    }
    other.boot_time = None;
    other.reboot_state = Some(Default::default());
    assert_eq!(facts.content_hash(), other.content_hash());

    let mut changed = facts.clone();
    changed.installed[0].version = "1:3.0.8-1.amzn2023.0.15".into();
    assert_ne!(facts.content_hash(), changed.content_hash());
    let mut changed = facts.clone();
    changed.notices[0].severity = Some("critical".into());
    assert_ne!(facts.content_hash(), changed.content_hash());
}
