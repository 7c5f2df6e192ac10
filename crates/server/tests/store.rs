//! The store against real databases: every test runs on SQLite (a temporary
//! WAL file) and on PostgreSQL (a database of its own on the server named by
//! PATCHFLEET_TEST_POSTGRES_URL; `./scripts/test` or `scripts/pg start`
//! provides one). A missing PostgreSQL fails the PostgreSQL tests.

mod support;

use jiff::{SignedDuration, Timestamp};
use patchfleet_server::store::*;
use serde_json::json;
use sqlx::Connection;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Db {
    store: Store,
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

impl Db {
    async fn sqlite() -> Db {
        let dir = std::env::temp_dir().join(format!("patchfleet-store-{}", support::suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("store.db").display());
        let store = Store::open(&url).await.unwrap();
        Db {
            store,
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    async fn postgres() -> Db {
        let (admin_url, name, url) = support::create_pg_database("pf_store").await;
        let store = Store::open(&url).await.unwrap();
        Db {
            store,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        }
    }

    async fn finish(self) {
        self.store.close().await;
        match self.cleanup {
            Cleanup::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Cleanup::Database { admin_url, name } => {
                support::drop_pg_database(&admin_url, &name).await;
            }
        }
    }
}

/// Each test is an `async fn(&Db)`; this makes one `#[tokio::test]` per
/// backend for each.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::Db::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::Db::postgres().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

store_tests!(
    reopen_keeps_data_and_migrates_once,
    api_keys_and_their_audit,
    registration_limit_holds_under_concurrency,
    registration_refusals_change_nothing,
    node_lifecycle,
    node_list_filters_and_pages,
    audit_filters_and_pages,
    baseline_versions_and_optimistic_update,
    defaults_and_patch_groups,
    inventory_dedup_and_first_seen,
    inventory_with_65k_versions,
    evaluation_cache,
    compliance_timeline_only_on_change,
    summary_and_compliance_list,
    summary_of_100k_nodes,
    work_items_delivered_once,
    lease_exclusivity,
);

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn admin(action: &str) -> Audit {
    Audit::new("AKADMIN", action).at(t("2026-01-01T00:00:00Z"))
}

async fn audit_count(store: &Store, action: &str) -> usize {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..AuditFilter::default()
    };
    store
        .list_audit(&filter, None, 10_000)
        .await
        .unwrap()
        .items
        .len()
}

fn activation(id: &str, limit: i64, expires: &str) -> Activation {
    Activation {
        activation_id: id.into(),
        code_sha256: "code-hash".into(),
        description: "test".into(),
        default_instance_name: None,
        iam_role: "role".into(),
        registration_limit: limit,
        registrations_count: 0,
        expiration_date: t(expires),
        created_date: t("2026-01-01T00:00:00Z"),
        tags: json!({"Patch Group": "web", "env": "prod"}),
    }
}

fn new_node(id: &str) -> NewNode {
    NewNode {
        node_id: id.into(),
        name: format!("name-{id}"),
        computer_name: format!("host-{id}"),
        ip_address: "10.0.0.1".into(),
        agent_version: "0.1.0".into(),
        protocol: "1".into(),
        capabilities: vec!["scan".into(), "install".into()],
        platform_type: "Linux".into(),
        platform_name: "Debian GNU/Linux".into(),
        platform_version: "12".into(),
        operating_system: "DEBIAN".into(),
        product: "Debian12".into(),
        cert_fingerprint: format!("fp-{id}"),
    }
}

/// Registers `n` nodes through one activation; returns their ids, sorted.
async fn register_nodes(store: &Store, n: usize) -> Vec<String> {
    store
        .create_activation(
            &activation("act-many", 1_000_000, "2030-01-01T00:00:00Z"),
            &admin("CreateActivation"),
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = new_node_id();
        store
            .register_node(
                "act-many",
                "code-hash",
                &new_node(&id),
                t("2026-01-02T00:00:00Z"),
                &Audit::new("node", "RegisterNode"),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    ids.sort();
    ids
}

async fn reopen_keeps_data_and_migrates_once(db: &Db) {
    let key = api_key("AK1", "s1");
    db.store
        .create_api_key(&key, &admin("CreateApiKey"))
        .await
        .unwrap();
    // A second opener (another replica) while the first is open.
    let again = Store::open(&db.url).await.unwrap();
    assert_eq!(again.get_api_key("AK1").await.unwrap(), key);
    again.close().await;
}

fn api_key(id: &str, secret: &str) -> ApiKey {
    ApiKey {
        access_key_id: id.into(),
        name: format!("key {id}"),
        role: Role::Operator,
        secret_sha256: format!("sha-{secret}"),
        secret_sealed: vec![0, 1, 2, 255, 254],
        created_at: t("2026-01-01T00:00:00.123Z"),
        disabled: false,
    }
}

async fn api_keys_and_their_audit(db: &Db) {
    let s = &db.store;
    let key = api_key("AK1", "s1");
    s.create_api_key(&key, &admin("CreateApiKey"))
        .await
        .unwrap();
    assert_eq!(s.get_api_key("AK1").await.unwrap(), key);
    assert_eq!(s.get_api_key_by_secret_sha256("sha-s1").await.unwrap(), key);
    let dup = s.create_api_key(&key, &admin("CreateApiKey")).await;
    assert!(matches!(dup, Err(StoreError::AlreadyExists(_))), "{dup:?}");
    assert_eq!(
        audit_count(s, "CreateApiKey").await,
        1,
        "no audit row for the failed create"
    );

    s.set_api_key_disabled("AK1", true, &admin("DisableApiKey"))
        .await
        .unwrap();
    assert!(s.get_api_key("AK1").await.unwrap().disabled);
    let missing = s
        .set_api_key_disabled("AK9", true, &admin("DisableApiKey"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    assert_eq!(audit_count(s, "DisableApiKey").await, 1);

    assert_eq!(s.list_api_keys().await.unwrap().len(), 1);
    s.delete_api_key("AK1", &admin("DeleteApiKey"))
        .await
        .unwrap();
    assert!(matches!(
        s.get_api_key("AK1").await,
        Err(StoreError::NotFound(_))
    ));
    let by_object = s
        .list_audit(
            &AuditFilter {
                object: Some("AK1".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    let actions: Vec<_> = by_object.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.len(), 3);
    assert!(actions.contains(&"CreateApiKey") && actions.contains(&"DeleteApiKey"));
}

async fn registration_limit_holds_under_concurrency(db: &Db) {
    let s = &db.store;
    s.create_activation(
        &activation("act-1", 5, "2030-01-01T00:00:00Z"),
        &admin("CreateActivation"),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = new_node_id();
            s.register_node(
                "act-1",
                "code-hash",
                &new_node(&id),
                t("2026-06-01T00:00:00Z"),
                &Audit::new(format!("node:{id}"), "RegisterNode"),
            )
            .await
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(node) => {
                ok += 1;
                assert_eq!(node.patch_group.as_deref(), Some("web"));
                assert_eq!(node.tags.len(), 2);
            }
            Err(RegisterError::LimitReached) => limited += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, limited), (5, 15));
    assert_eq!(
        s.get_activation("act-1").await.unwrap().registrations_count,
        5
    );
    assert_eq!(audit_count(s, "RegisterNode").await, 5);
    let nodes = s
        .list_nodes(&NodeFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(nodes.items.len(), 5);
}

async fn registration_refusals_change_nothing(db: &Db) {
    let s = &db.store;
    s.create_activation(
        &activation("act-1", 5, "2026-03-01T00:00:00Z"),
        &admin("CreateActivation"),
    )
    .await
    .unwrap();
    let now = t("2026-02-01T00:00:00Z");
    let audit = Audit::new("node", "RegisterNode");
    let r = s
        .register_node(
            "nope",
            "code-hash",
            &new_node("mi-00000000000000001"),
            now,
            &audit,
        )
        .await;
    assert_eq!(r.unwrap_err(), RegisterError::NotFound);
    let r = s
        .register_node(
            "act-1",
            "wrong",
            &new_node("mi-00000000000000001"),
            now,
            &audit,
        )
        .await;
    assert_eq!(r.unwrap_err(), RegisterError::InvalidCode);
    let late = t("2026-03-01T00:00:00Z");
    let r = s
        .register_node(
            "act-1",
            "code-hash",
            &new_node("mi-00000000000000001"),
            late,
            &audit,
        )
        .await;
    assert_eq!(r.unwrap_err(), RegisterError::Expired);

    s.register_node(
        "act-1",
        "code-hash",
        &new_node("mi-00000000000000001"),
        now,
        &audit,
    )
    .await
    .unwrap();
    // The same node id again: the insert fails after the count went up; the
    // whole transaction (count, node, audit) must roll back.
    let r = s
        .register_node(
            "act-1",
            "code-hash",
            &new_node("mi-00000000000000001"),
            now,
            &audit,
        )
        .await;
    assert!(
        matches!(r, Err(RegisterError::Store(StoreError::AlreadyExists(_)))),
        "{r:?}"
    );
    assert_eq!(
        s.get_activation("act-1").await.unwrap().registrations_count,
        1
    );
    assert_eq!(audit_count(s, "RegisterNode").await, 1);
}

async fn node_lifecycle(db: &Db) {
    let s = &db.store;
    let ids = register_nodes(s, 1).await;
    let id = &ids[0];
    let hb = Heartbeat {
        agent_version: "0.2.0".into(),
        ip_address: "10.0.0.9".into(),
        computer_name: "renamed".into(),
        capabilities: vec!["scan".into()],
        platform_name: "Debian GNU/Linux".into(),
        platform_version: "12.5".into(),
    };
    let ping = t("2026-01-03T00:00:00Z");
    assert!(s.heartbeat(id, &hb, ping).await.unwrap());
    assert!(
        !s.heartbeat("mi-ffffffffffffffff0", &hb, ping)
            .await
            .unwrap()
    );
    let node = s.get_node(id).await.unwrap();
    assert_eq!(
        (node.last_ping, node.agent_version.as_str()),
        (ping, "0.2.0")
    );
    assert_eq!(node.capabilities, vec!["scan".to_string()]);
    assert!(s.is_node_active(id).await.unwrap());

    // Tags: the patch group follows `Patch Group`, else `PatchGroup`.
    s.set_node_tags(id, &[("PatchGroup".into(), "db".into())], &admin("AddTags"))
        .await
        .unwrap();
    assert_eq!(
        s.get_node(id).await.unwrap().patch_group.as_deref(),
        Some("web")
    );
    s.remove_node_tags(id, &["Patch Group".into()], &admin("RemoveTags"))
        .await
        .unwrap();
    assert_eq!(
        s.get_node(id).await.unwrap().patch_group.as_deref(),
        Some("db")
    );
    s.remove_node_tags(id, &["PatchGroup".into()], &admin("RemoveTags"))
        .await
        .unwrap();
    let node = s.get_node(id).await.unwrap();
    assert_eq!(node.patch_group, None);
    assert_eq!(node.tags, vec![("env".to_string(), "prod".to_string())]);

    // Inventory pointer: the previous hash comes back.
    let inv = inventory("sha256:a", &[("bash", "5.2-1")]);
    s.put_inventory(&inv, ping, &admin("PutInventory"))
        .await
        .unwrap();
    let unknown = s
        .set_node_inventory(
            id,
            "sha256:zzz",
            &json!({}),
            "",
            ping,
            &admin("SetInventory"),
        )
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))));
    let prev = s
        .set_node_inventory(
            id,
            "sha256:a",
            &json!({"boot_time": "x"}),
            "",
            ping,
            &admin("SetInventory"),
        )
        .await
        .unwrap();
    assert_eq!(prev, None);
    let inv_b = inventory("sha256:b", &[("bash", "5.2-2")]);
    s.put_inventory(&inv_b, ping, &admin("PutInventory"))
        .await
        .unwrap();
    let prev = s
        .set_node_inventory(
            id,
            "sha256:b",
            &json!({}),
            "k1",
            ping,
            &admin("SetInventory"),
        )
        .await
        .unwrap();
    assert_eq!(prev.as_deref(), Some("sha256:a"));
    let groups = s.evaluation_groups(&[]).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].inventory_hash, "sha256:b");
    assert_eq!(groups[0].state_key, "k1");
    assert_eq!(groups[0].nodes, 1);
    assert_eq!(groups[0].node_state, Some(json!({})));
    assert!(
        s.evaluation_groups(&["mi-00000000000000000".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.evaluation_groups(std::slice::from_ref(id))
            .await
            .unwrap()
            .len(),
        1
    );

    // Deregistration: no more heartbeats, listing, or tags.
    s.deregister_node(id, ping, &admin("DeregisterNode"))
        .await
        .unwrap();
    assert!(!s.is_node_active(id).await.unwrap());
    assert!(!s.heartbeat(id, &hb, ping).await.unwrap());
    assert_eq!(s.get_node(id).await.unwrap().deregistered_at, Some(ping));
    assert!(
        s.list_nodes(&NodeFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.evaluation_groups(&[]).await.unwrap().is_empty());
    let again = s.deregister_node(id, ping, &admin("DeregisterNode")).await;
    assert!(matches!(again, Err(StoreError::NotFound(_))));
    assert_eq!(audit_count(s, "DeregisterNode").await, 1);
    let tags = s
        .set_node_tags(id, &[("a".into(), "b".into())], &admin("AddTags"))
        .await;
    assert!(matches!(tags, Err(StoreError::NotFound(_))));
}

async fn node_list_filters_and_pages(db: &Db) {
    let s = &db.store;
    let ids = register_nodes(s, 25).await;
    // Node i: tag `n` = i % 3; odd ones in patch group `odd` via `PatchGroup`
    // after removing `Patch Group`; the first ten pinged late.
    for (i, id) in ids.iter().enumerate() {
        s.set_node_tags(id, &[("n".into(), (i % 3).to_string())], &admin("AddTags"))
            .await
            .unwrap();
        if i % 2 == 1 {
            s.remove_node_tags(id, &["Patch Group".into()], &admin("RemoveTags"))
                .await
                .unwrap();
            s.set_node_tags(
                id,
                &[("PatchGroup".into(), "odd".into())],
                &admin("AddTags"),
            )
            .await
            .unwrap();
        }
        if i < 10 {
            let hb = Heartbeat {
                agent_version: "0.1.0".into(),
                ip_address: "10.0.0.1".into(),
                computer_name: "h".into(),
                capabilities: vec![],
                platform_name: "Debian GNU/Linux".into(),
                platform_version: "12".into(),
            };
            assert!(
                s.heartbeat(id, &hb, t("2026-01-05T00:00:00Z"))
                    .await
                    .unwrap()
            );
        }
    }
    // Pages of 7: every node once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = s
            .list_nodes(&NodeFilter::default(), after.as_deref(), 7)
            .await
            .unwrap();
        assert!(p.items.len() <= 7);
        seen.extend(p.items.iter().map(|n| n.node_id.clone()));
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let count =
        |f: NodeFilter| async move { s.list_nodes(&f, None, 1000).await.unwrap().items.len() };
    let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        count(NodeFilter {
            tags: vec![tag("n", "0")],
            ..Default::default()
        })
        .await,
        9
    );
    assert_eq!(
        count(NodeFilter {
            tags: vec![tag("n", "0"), tag("env", "prod")],
            ..Default::default()
        })
        .await,
        9
    );
    assert_eq!(
        count(NodeFilter {
            tags: vec![tag("n", "0"), tag("env", "dev")],
            ..Default::default()
        })
        .await,
        0
    );
    assert_eq!(
        count(NodeFilter {
            patch_group: Some("odd".into()),
            ..Default::default()
        })
        .await,
        12
    );
    assert_eq!(
        count(NodeFilter {
            patch_group: Some("web".into()),
            ..Default::default()
        })
        .await,
        13
    );
    assert_eq!(
        count(NodeFilter {
            operating_system: Some("DEBIAN".into()),
            ..Default::default()
        })
        .await,
        25
    );
    assert_eq!(
        count(NodeFilter {
            operating_system: Some("UBUNTU".into()),
            ..Default::default()
        })
        .await,
        0
    );
    let cutoff = t("2026-01-04T00:00:00Z");
    assert_eq!(
        count(NodeFilter {
            ping_status: Some((PingStatus::Online, cutoff)),
            ..Default::default()
        })
        .await,
        10
    );
    assert_eq!(
        count(NodeFilter {
            ping_status: Some((PingStatus::ConnectionLost, cutoff)),
            ..Default::default()
        })
        .await,
        15
    );
    let some = vec![
        ids[3].clone(),
        ids[4].clone(),
        "mi-00000000000000000".into(),
    ];
    let p = s
        .list_nodes(
            &NodeFilter {
                node_ids: some,
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(p.items.len(), 2);
    assert!(p.items.iter().all(|n| n.tags.iter().any(|(k, _)| k == "n")));
}

async fn audit_filters_and_pages(db: &Db) {
    let s = &db.store;
    let base = t("2026-01-01T00:00:00Z");
    for i in 0..30 {
        let audit = Audit::new(if i % 2 == 0 { "alice" } else { "bob" }, "CreateApiKey")
            .at(base + SignedDuration::from_secs(i / 3)) // several per instant
            .detail(json!({"i": i}));
        s.create_api_key(&api_key(&format!("AK{i:02}"), &i.to_string()), &audit)
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = s
            .list_audit(&AuditFilter::default(), after.as_deref(), 7)
            .await
            .unwrap();
        seen.extend(
            p.items
                .iter()
                .map(|e| (e.id.clone(), e.at, e.detail["i"].as_i64().unwrap())),
        );
        // An entry added between pages must not make the next page repeat.
        if after.is_none() {
            s.create_api_key(
                &api_key("AKLATE", "late"),
                &Audit::new("carol", "CreateApiKey"),
            )
            .await
            .unwrap();
        }
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let unique: HashSet<_> = seen.iter().map(|e| e.0.clone()).collect();
    assert_eq!(unique.len(), seen.len(), "a page repeated an entry");
    let numbered: Vec<_> = seen.iter().filter(|e| e.2 >= 0).collect();
    assert!(numbered.len() >= 30);
    assert!(seen.windows(2).all(|w| w[0].1 >= w[1].1), "newest first");

    let by_actor = s
        .list_audit(
            &AuditFilter {
                actor: Some("bob".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(by_actor.items.len(), 15);
    let window = AuditFilter {
        since: Some(base + SignedDuration::from_secs(2)),
        until: Some(base + SignedDuration::from_secs(4)),
        ..Default::default()
    };
    assert_eq!(
        s.list_audit(&window, None, 100).await.unwrap().items.len(),
        6
    );
    let by_object = s
        .list_audit(
            &AuditFilter {
                object: Some("AK07".into()),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(by_object.items.len(), 1);
    assert_eq!(by_object.items[0].objects, vec!["AK07".to_string()]);
    assert_eq!(by_object.items[0].detail, json!({"i": 7}));
}

async fn baseline_versions_and_optimistic_update(db: &Db) {
    let s = &db.store;
    let now = t("2026-02-01T00:00:00Z");
    let doc1 = json!({"Name": "web", "ApprovalRules": {"PatchRules": []}});
    let b = s
        .create_baseline(
            "web",
            "DEBIAN",
            &doc1,
            &[("team".into(), "a".into())],
            now,
            &admin("CreatePatchBaseline"),
        )
        .await
        .unwrap();
    assert!(b.baseline_id.starts_with("pb-") && b.baseline_id.len() == 20);
    assert_eq!(s.get_baseline(&b.baseline_id).await.unwrap(), b);
    assert_eq!(s.baseline_tags(&b.baseline_id).await.unwrap().len(), 1);

    let doc2 = json!({"Name": "web2"});
    let later = now + SignedDuration::from_hours(1);
    let v = s
        .update_baseline(
            &b.baseline_id,
            1,
            "web2",
            &doc2,
            later,
            &admin("UpdatePatchBaseline"),
        )
        .await
        .unwrap();
    assert_eq!(v, 2);
    // A second writer that read version 1 loses.
    let stale = s
        .update_baseline(
            &b.baseline_id,
            1,
            "other",
            &json!({}),
            later,
            &admin("UpdatePatchBaseline"),
        )
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(audit_count(s, "UpdatePatchBaseline").await, 1);

    let current = s.get_baseline_version(&b.baseline_id, None).await.unwrap();
    assert_eq!((current.version, &current.document), (2, &doc2));
    assert_eq!(current.actor, "AKADMIN");
    let first = s
        .get_baseline_version(&b.baseline_id, Some(1))
        .await
        .unwrap();
    assert_eq!(first.document, doc1);
    assert_eq!(
        s.list_baseline_versions(&b.baseline_id)
            .await
            .unwrap()
            .len(),
        2
    );
    let rec = s.get_baseline(&b.baseline_id).await.unwrap();
    assert_eq!(
        (rec.name.as_str(), rec.current_version, rec.updated_at),
        ("web2", 2, later)
    );

    // Concurrent updates from version 2: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        let id = b.baseline_id.clone();
        tasks.push(tokio::spawn(async move {
            s.update_baseline(
                &id,
                2,
                &format!("n{i}"),
                &json!({"i": i}),
                later,
                &admin("UpdatePatchBaseline"),
            )
            .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(3) => wins += 1,
            Err(StoreError::Conflict(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1);

    assert_eq!(s.list_baselines(Some("DEBIAN")).await.unwrap().len(), 1);
    assert_eq!(s.list_baselines(Some("UBUNTU")).await.unwrap().len(), 0);
    s.delete_baseline(&b.baseline_id, later, &admin("DeletePatchBaseline"))
        .await
        .unwrap();
    assert!(s.list_baselines(None).await.unwrap().is_empty());
    assert!(s.get_baseline(&b.baseline_id).await.unwrap().deleted);
    let upd = s
        .update_baseline(
            &b.baseline_id,
            3,
            "x",
            &json!({}),
            later,
            &admin("UpdatePatchBaseline"),
        )
        .await;
    assert!(matches!(upd, Err(StoreError::NotFound(_))));
    let none = s.get_baseline_version("pb-00000000000000000", None).await;
    assert!(matches!(none, Err(StoreError::NotFound(_))));
}

async fn defaults_and_patch_groups(db: &Db) {
    let s = &db.store;
    s.set_default_baseline("DEBIAN", "pb-1", &admin("RegisterDefaultPatchBaseline"))
        .await
        .unwrap();
    s.set_default_baseline("DEBIAN", "pb-2", &admin("RegisterDefaultPatchBaseline"))
        .await
        .unwrap();
    assert_eq!(
        s.default_baselines().await.unwrap(),
        vec![("DEBIAN".to_string(), "pb-2".to_string())]
    );
    let pg = |b: &str, os: &str| PatchGroupRecord {
        patch_group: "web".into(),
        operating_system: os.into(),
        baseline_id: b.into(),
    };
    let audit = admin("RegisterPatchBaselineForPatchGroup");
    s.register_patch_group(&pg("pb-1", "DEBIAN"), &audit)
        .await
        .unwrap();
    s.register_patch_group(&pg("pb-3", "UBUNTU"), &audit)
        .await
        .unwrap();
    let again = s.register_patch_group(&pg("pb-2", "DEBIAN"), &audit).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists(_))),
        "{again:?}"
    );
    assert_eq!(
        audit_count(s, "RegisterPatchBaselineForPatchGroup").await,
        2
    );
    assert_eq!(s.list_patch_groups().await.unwrap().len(), 2);
    s.deregister_patch_group(
        "web",
        "DEBIAN",
        &admin("DeregisterPatchBaselineForPatchGroup"),
    )
    .await
    .unwrap();
    s.register_patch_group(&pg("pb-2", "DEBIAN"), &audit)
        .await
        .unwrap();
    let gone = s
        .deregister_patch_group(
            "db",
            "DEBIAN",
            &admin("DeregisterPatchBaselineForPatchGroup"),
        )
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound(_))));
}

fn inventory(hash: &str, versions: &[(&str, &str)]) -> NewInventory {
    let available: Vec<PackageVersion> = versions
        .iter()
        .map(|(n, v)| PackageVersion {
            name: n.to_string(),
            arch: "amd64".into(),
            version: v.to_string(),
        })
        .collect();
    let facts = json!({
        "available": available.iter().map(|p| json!({"name": p.name, "arch": p.arch, "version": p.version})).collect::<Vec<_>>(),
    });
    NewInventory {
        content_hash: hash.into(),
        operating_system: "DEBIAN".into(),
        product: "Debian12".into(),
        facts_json: serde_json::to_vec(&facts).unwrap(),
        available,
    }
}

async fn inventory_dedup_and_first_seen(db: &Db) {
    let s = &db.store;
    let t1 = t("2026-03-01T00:00:00Z");
    let t2 = t("2026-03-02T00:00:00Z");
    let a = inventory("sha256:a", &[("bash", "5.2-1"), ("curl", "7.88-1")]);
    assert!(
        s.put_inventory(&a, t1, &admin("PutInventory"))
            .await
            .unwrap()
    );
    assert!(s.has_inventory("sha256:a").await.unwrap());
    let mut a_again = a.clone();
    a_again.available.push(PackageVersion {
        name: "zsh".into(),
        arch: "amd64".into(),
        version: "1".into(),
    });
    assert!(
        !s.put_inventory(&a_again, t2, &admin("PutInventory"))
            .await
            .unwrap()
    );
    assert_eq!(
        audit_count(s, "PutInventory").await,
        1,
        "a known inventory is no change"
    );
    let b = inventory(
        "sha256:b",
        &[("curl", "7.88-1"), ("curl", "7.88-2"), ("curl", "7.88-2")],
    );
    assert!(
        s.put_inventory(&b, t2, &admin("PutInventory"))
            .await
            .unwrap()
    );

    let stored = s.get_inventory("sha256:a").await.unwrap();
    assert_eq!(stored.facts_json, a.facts_json);
    assert_eq!(
        (stored.created_at, stored.product.as_str()),
        (t1, "Debian12")
    );

    let seen = s.inventory_first_seen("sha256:b").await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[&b.available[0]], t1,
        "first seen by inventory a, never moved"
    );
    assert_eq!(seen[&b.available[1]], t2);
    let seen = s.first_seen(&a_again.available).await.unwrap();
    assert_eq!(seen.len(), 2, "zsh came only with an ignored inventory");
    assert!(matches!(
        s.get_inventory("sha256:c").await,
        Err(StoreError::NotFound(_))
    ));
}

fn big_inventory(hash: &str, n: usize, offset: usize) -> NewInventory {
    let available: Vec<PackageVersion> = (0..n)
        .map(|i| PackageVersion {
            name: format!("package-{:05}", (i + offset) / 3),
            arch: if (i + offset).is_multiple_of(2) {
                "amd64".into()
            } else {
                "all".into()
            },
            version: format!(
                "1:{}.{}-{}+deb12u1",
                (i + offset) % 3,
                i + offset,
                (i + offset) % 7
            ),
        })
        .collect();
    let facts = json!({"available": available.iter().map(|p| json!({"name": p.name, "arch": p.arch, "version": p.version, "repository": "deb.debian.org bookworm main"})).collect::<Vec<_>>()});
    NewInventory {
        content_hash: hash.into(),
        operating_system: "DEBIAN".into(),
        product: "Debian12".into(),
        facts_json: serde_json::to_vec(&facts).unwrap(),
        available,
    }
}

async fn inventory_with_65k_versions(db: &Db) {
    let s = &db.store;
    let backend = format!("{:?}", s.backend());
    let a = big_inventory("sha256:big-a", 65_000, 0);
    let started = Instant::now();
    assert!(
        s.put_inventory(&a, t("2026-03-01T00:00:00Z"), &admin("PutInventory"))
            .await
            .unwrap()
    );
    let first = started.elapsed();
    // A second image: mostly the same versions, 1,000 new.
    let b = big_inventory("sha256:big-b", 65_000, 1_000);
    let started = Instant::now();
    assert!(
        s.put_inventory(&b, t("2026-03-02T00:00:00Z"), &admin("PutInventory"))
            .await
            .unwrap()
    );
    let second = started.elapsed();
    let started = Instant::now();
    let seen = s.inventory_first_seen("sha256:big-b").await.unwrap();
    let lookup = started.elapsed();
    assert_eq!(seen.len(), 65_000);
    let new = seen
        .values()
        .filter(|t| **t == "2026-03-02T00:00:00Z".parse::<Timestamp>().unwrap())
        .count();
    assert_eq!(new, 1_000);
    eprintln!(
        "MEASURE {backend}: put_inventory 65,000 versions (all new) {first:?}; \
         65,000 (1,000 new) {second:?}; first-seen map of 65,000 {lookup:?}; \
         facts {} bytes",
        a.facts_json.len()
    );
}

async fn evaluation_cache(db: &Db) {
    let s = &db.store;
    let key = EvaluationKey {
        inventory_hash: "sha256:a".into(),
        baseline_id: "pb-1".into(),
        baseline_version: 3,
        eval_day: 20_500,
        state_key: "s".into(),
    };
    assert_eq!(s.get_evaluation(&key).await.unwrap(), None);
    let e = Evaluation {
        key: key.clone(),
        summary: json!({"missing": 3}),
        patches_json: br#"[{"Title":"bash"}]"#.to_vec(),
        created_at: t("2026-03-01T00:00:00Z"),
    };
    assert!(s.put_evaluation(&e).await.unwrap());
    let other = Evaluation {
        summary: json!({"missing": 4}),
        ..e.clone()
    };
    assert!(
        !s.put_evaluation(&other).await.unwrap(),
        "first writer wins"
    );
    assert_eq!(s.get_evaluation(&key).await.unwrap(), Some(e));
    let next_day = EvaluationKey {
        eval_day: 20_501,
        ..key
    };
    assert_eq!(s.get_evaluation(&next_day).await.unwrap(), None);
}

/// A group of nodes on `hash` (DEBIAN, as `new_node` registers them).
fn group(hash: &str, patch_group: Option<&str>) -> EvaluationGroup {
    EvaluationGroup {
        inventory_hash: hash.into(),
        operating_system: "DEBIAN".into(),
        patch_group: patch_group.map(str::to_owned),
        state_key: String::new(),
        node_state: None,
        nodes: 1,
    }
}

fn verdict(
    g: &EvaluationGroup,
    status: &str,
    severity: &str,
    missing: i64,
    version: i64,
    at: Timestamp,
) -> FanOut {
    FanOut {
        group: g.clone(),
        baseline_id: "pb-1".into(),
        baseline_version: version,
        eval_day: 1,
        evaluated_at: at,
        compliance_status: status.into(),
        overall_severity: severity.into(),
        counts: PatchCounts {
            installed: 10,
            missing,
            ..PatchCounts::default()
        },
    }
}

/// Points the nodes at a stored inventory `hash` at `at` (a group move each).
async fn point_at(s: &Store, ids: &[String], hash: &str, at: Timestamp) {
    if !s.has_inventory(hash).await.unwrap() {
        s.put_inventory(
            &inventory(hash, &[("bash", "5.2-1")]),
            t("2026-03-01T00:00:00Z"),
            &admin("PutInventory"),
        )
        .await
        .unwrap();
    }
    for id in ids {
        s.set_node_inventory(id, hash, &json!({}), "", at, &admin("Report").at(at))
            .await
            .unwrap();
    }
}

async fn point(s: &Store, ids: &[String], hash: &str) {
    point_at(s, ids, hash, t("2026-03-01T00:00:00Z")).await;
}

async fn compliance_timeline_only_on_change(db: &Db) {
    let s = &db.store;
    let ids = register_nodes(s, 1).await;
    let id = &ids[0];
    assert!(matches!(
        s.get_node_compliance(id).await,
        Err(StoreError::NotFound(_))
    ));
    let t0 = t("2026-03-01T00:00:00Z");
    point_at(s, &ids, "sha256:a", t0).await;
    // The activation tags its nodes `Patch Group: web`.
    let ga = group("sha256:a", Some("web"));
    let hour = SignedDuration::from_hours(1);
    let t1 = t0 + hour;
    let put = |f: FanOut| async move { s.put_group_compliances(&[f]).await.unwrap()[0] };
    assert!(put(verdict(&ga, "NON_COMPLIANT", "HIGH", 2, 1, t1)).await);
    // Same verdict under a new baseline version later: no timeline entry, row refreshed.
    assert!(!put(verdict(&ga, "NON_COMPLIANT", "HIGH", 2, 2, t1 + hour)).await);
    let c = s.get_node_compliance(id).await.unwrap();
    assert_eq!((c.baseline_version, c.key.baseline_version), (2, 2));
    assert_eq!(c.evaluated_at, t1 + hour);
    assert_eq!(c.counts.missing, 2);
    assert_eq!(c.key.inventory_hash, "sha256:a");
    assert_eq!(c.operation_start, Some(t0));
    assert!(
        put(verdict(
            &ga,
            "COMPLIANT",
            "UNSPECIFIED",
            0,
            3,
            t1 + hour * 2
        ))
        .await
    );
    assert!(put(verdict(&ga, "NON_COMPLIANT", "HIGH", 1, 3, t1 + hour * 3)).await);
    let timeline = s.compliance_timeline(id).await.unwrap();
    let at: Vec<_> = timeline.iter().map(|e| e.at).collect();
    assert_eq!(at, vec![t1, t1 + hour * 2, t1 + hour * 3]);
    assert_eq!(timeline[1].summary["compliance_status"], "COMPLIANT");
    assert_eq!(timeline[2].summary["counts"]["missing"], 1);

    // A move to group b, already evaluated: b's summary from the move on.
    let gb = group("sha256:b", Some("web"));
    assert!(put(verdict(&gb, "COMPLIANT", "UNSPECIFIED", 0, 3, t1)).await);
    point_at(s, &ids, "sha256:b", t1 + hour * 3 + hour / 2).await;
    let timeline = s.compliance_timeline(id).await.unwrap();
    assert_eq!(timeline.len(), 4);
    assert_eq!(timeline[3].at, t1 + hour * 3 + hour / 2);
    assert_eq!(timeline[3].summary["compliance_status"], "COMPLIANT");
    assert_eq!(
        s.get_node_compliance(id).await.unwrap().compliance_status,
        "COMPLIANT"
    );
    // Group a's later changes no longer concern the node.
    assert!(
        put(verdict(
            &ga,
            "NON_COMPLIANT",
            "CRITICAL",
            5,
            3,
            t1 + hour * 4
        ))
        .await
    );
    assert_eq!(s.compliance_timeline(id).await.unwrap().len(), 4);

    s.deregister_node(id, t1, &admin("DeregisterNode"))
        .await
        .unwrap();
    assert!(
        s.list_node_compliance(&ComplianceFilter::default(), None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn summary_and_compliance_list(db: &Db) {
    let s = &db.store;
    let ids = register_nodes(s, 10).await;
    let at = t("2026-03-01T00:00:00Z");
    // Three groups: web on a (compliant), web on c (critical), none on h (high).
    for (i, id) in ids.iter().enumerate().take(7) {
        let (hash, pg) = match i % 3 {
            0 => ("sha256:a", Some("web")),
            1 => ("sha256:c", Some("web")),
            _ => ("sha256:h", None),
        };
        // The activation tags its nodes `Patch Group: web`.
        if pg.is_none() {
            s.remove_node_tags(id, &["Patch Group".into()], &admin("RemoveTags"))
                .await
                .unwrap();
        }
        point(s, std::slice::from_ref(id), hash).await;
    }
    s.put_group_compliances(&[
        verdict(
            &group("sha256:a", Some("web")),
            "COMPLIANT",
            "UNSPECIFIED",
            0,
            1,
            at,
        ),
        verdict(
            &group("sha256:c", Some("web")),
            "NON_COMPLIANT",
            "CRITICAL",
            1,
            1,
            at,
        ),
        verdict(&group("sha256:h", None), "NON_COMPLIANT", "HIGH", 1, 1, at),
        // A group no node is in: counts for nobody.
        verdict(&group("sha256:z", None), "NON_COMPLIANT", "LOW", 1, 1, at),
    ])
    .await
    .unwrap();
    let row = |g: Option<&str>, st: Option<&str>, sev: Option<&str>, n| SummaryRow {
        group: g.map(str::to_owned),
        compliance_status: st.map(str::to_owned),
        overall_severity: sev.map(str::to_owned),
        nodes: n,
    };
    assert_eq!(
        s.compliance_summary(None).await.unwrap(),
        vec![
            row(None, None, None, 3),
            row(None, Some("COMPLIANT"), Some("UNSPECIFIED"), 3),
            row(None, Some("NON_COMPLIANT"), Some("CRITICAL"), 2),
            row(None, Some("NON_COMPLIANT"), Some("HIGH"), 2),
        ]
    );
    assert_eq!(
        s.compliance_summary(Some(SummaryGroupBy::PatchGroup))
            .await
            .unwrap(),
        vec![
            row(None, Some("NON_COMPLIANT"), Some("HIGH"), 2),
            row(Some("web"), None, None, 3),
            row(Some("web"), Some("COMPLIANT"), Some("UNSPECIFIED"), 3),
            row(Some("web"), Some("NON_COMPLIANT"), Some("CRITICAL"), 2),
        ]
    );
    let by_os = s
        .compliance_summary(Some(SummaryGroupBy::OperatingSystem))
        .await
        .unwrap();
    assert_eq!(by_os.iter().map(|r| r.nodes).sum::<i64>(), 10);
    assert!(by_os.iter().all(|r| r.group.as_deref() == Some("DEBIAN")));

    // Deregistered: out of the summary.
    s.deregister_node(&ids[9], at, &admin("DeregisterNode"))
        .await
        .unwrap();
    s.deregister_node(&ids[0], at, &admin("DeregisterNode"))
        .await
        .unwrap();
    let total: i64 = s
        .compliance_summary(None)
        .await
        .unwrap()
        .iter()
        .map(|r| r.nodes)
        .sum();
    assert_eq!(total, 8);

    let nc = ComplianceFilter {
        compliance_status: Some("NON_COMPLIANT".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let p = s
            .list_node_compliance(&nc, after.as_deref(), 2)
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|c| c.node_id.clone()));
        match p.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    let crit = ComplianceFilter {
        overall_severity: Some("CRITICAL".into()),
        patch_group: Some("web".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list_node_compliance(&crit, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

/// 100,000 registered nodes, 95,000 of them evaluated, inserted with SQL of
/// the test's own (not the subject here); then the summary is timed.
async fn summary_of_100k_nodes(db: &Db) {
    let s = &db.store;
    let started = Instant::now();
    let (series, pg) = match s.backend() {
        Backend::Sqlite => (
            "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < 99999)",
            false,
        ),
        Backend::Postgres => ("WITH seq(i) AS (SELECT generate_series(0, 99999))", true),
    };
    let hex = if pg {
        "lpad(to_hex(i), 17, '0')"
    } else {
        "printf('%017x', i)"
    };
    // 500 inventories; the nodes with i % 20 = 7 on one never evaluated.
    let hash = "CASE WHEN i % 20 = 7 THEN 'none' ELSE 'h' || (i % 500) END";
    let nodes = format!(
        "{series} INSERT INTO nodes (node_id, activation_id, name, computer_name, ip_address, \
         agent_version, protocol, capabilities, platform_type, platform_name, platform_version, \
         operating_system, product, registration_date, last_ping, cert_fingerprint, patch_group, \
         inventory_hash) \
         SELECT 'mi-' || {hex}, 'a', 'n', 'h', 'ip', '1', '1', '[]', 'Linux', 'p', 'v', \
         CASE WHEN i % 4 = 0 THEN 'UBUNTU' ELSE 'DEBIAN' END, 'x', 0, 0, 'fp', \
         'group-' || (i % 20), {hash} FROM seq"
    );
    // One row per group (inventory k decides OS and patch group too).
    let k = "CAST(substr(inventory_hash, 2) AS BIGINT)";
    let compliance = format!(
        "INSERT INTO group_compliance (inventory_hash, operating_system, patch_group, state_key, \
         baseline_id, baseline_version, eval_day, evaluated_at, compliance_status, \
         overall_severity, installed, installed_other, installed_pending_reboot, \
         installed_rejected, missing, failed, not_applicable, unreported_not_applicable, \
         critical_non_compliant, security_non_compliant, other_non_compliant) \
         SELECT inventory_hash, operating_system, patch_group, state_key, 'pb-1', 1, 1, 0, \
         CASE WHEN {k} % 3 = 0 THEN 'COMPLIANT' ELSE 'NON_COMPLIANT' END, \
         CASE {k} % 5 WHEN 0 THEN 'CRITICAL' WHEN 1 THEN 'HIGH' WHEN 2 THEN 'MEDIUM' \
         WHEN 3 THEN 'LOW' ELSE 'UNSPECIFIED' END, \
         10, 0, 0, 0, {k} % 7, 0, 0, 0, 0, 0, 0 FROM (SELECT DISTINCT inventory_hash, \
         operating_system, patch_group, state_key FROM nodes WHERE inventory_hash <> 'none') d"
    );
    execute_raw(db, &[nodes, compliance]).await;
    let loaded = started.elapsed();

    let mut report = Vec::new();
    for (label, group) in [
        ("ungrouped", None),
        ("by patch group", Some(SummaryGroupBy::PatchGroup)),
        ("by OS", Some(SummaryGroupBy::OperatingSystem)),
    ] {
        let mut times = Vec::new();
        let mut rows = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            rows = s.compliance_summary(group).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        let total: i64 = rows.iter().map(|r| r.nodes).sum();
        assert_eq!(total, 100_000);
        let pending: i64 = rows
            .iter()
            .filter(|r| r.compliance_status.is_none())
            .map(|r| r.nodes)
            .sum();
        assert_eq!(pending, 5_000);
        report.push(format!(
            "{label} {:?} (median of 5, {} rows)",
            times[2],
            rows.len()
        ));
    }
    let started = Instant::now();
    let filter = ComplianceFilter {
        compliance_status: Some("NON_COMPLIANT".into()),
        overall_severity: Some("CRITICAL".into()),
        patch_group: Some("group-5".into()),
    };
    let page = s.list_node_compliance(&filter, None, 100).await.unwrap();
    let list = started.elapsed();
    assert_eq!(page.items.len(), 100);
    eprintln!(
        "MEASURE {:?}: 100k nodes loaded in {loaded:?}; summary {}; filtered page of 100 {list:?}",
        s.backend(),
        report.join("; ")
    );
}

async fn execute_raw(db: &Db, statements: &[String]) {
    if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        for st in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut c)
                .await
                .unwrap();
        }
        c.close().await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for st in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::raw_sql("ANALYZE").execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }
}

async fn work_items_delivered_once(db: &Db) {
    let s = &db.store;
    let ids = register_nodes(s, 2).await;
    let now = t("2026-03-01T00:00:00Z");
    let mut queued = Vec::new();
    for i in 0..10 {
        queued.push(
            s.enqueue_work(
                &ids[0],
                "scan",
                &json!({"i": i}),
                now,
                &admin("SendCommand"),
            )
            .await
            .unwrap(),
        );
    }
    s.enqueue_work(&ids[1], "scan", &json!({}), now, &admin("SendCommand"))
        .await
        .unwrap();
    let nobody = s
        .enqueue_work(
            "mi-00000000000000000",
            "scan",
            &json!({}),
            now,
            &admin("SendCommand"),
        )
        .await;
    assert!(matches!(nobody, Err(StoreError::NotFound(_))));
    assert_eq!(audit_count(s, "SendCommand").await, 11);

    // Concurrent polls of one node: each item goes to exactly one.
    let s = Arc::new(s.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let node = ids[0].clone();
        tasks.push(tokio::spawn(async move {
            s.take_work(&node, now).await.unwrap()
        }));
    }
    let mut delivered = Vec::new();
    for task in tasks {
        delivered.extend(task.await.unwrap().into_iter().map(|w| w.id));
    }
    delivered.sort();
    queued.sort();
    assert_eq!(delivered, queued);
    assert!(s.take_work(&ids[0], now).await.unwrap().is_empty());
    let other = s.take_work(&ids[1], now).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].delivered_at, Some(now));

    s.complete_work(
        &queued[0],
        &json!({"status": "Success"}),
        now,
        &admin("CompleteWork"),
    )
    .await
    .unwrap();
    let w = s.get_work(&queued[0]).await.unwrap();
    assert_eq!(
        (w.completed_at, w.result),
        (Some(now), Some(json!({"status": "Success"})))
    );
    let twice = s
        .complete_work(&queued[0], &json!({}), now, &admin("CompleteWork"))
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))));
    assert_eq!(audit_count(s.as_ref(), "CompleteWork").await, 1);
}

async fn lease_exclusivity(db: &Db) {
    let s = &db.store;
    let now = t("2026-03-01T00:00:00Z");
    let ttl = Duration::from_secs(30);
    assert!(
        s.try_acquire_lease("scheduler", "a", ttl, now)
            .await
            .unwrap()
    );
    assert!(
        !s.try_acquire_lease("scheduler", "b", ttl, now)
            .await
            .unwrap()
    );
    let later = now + SignedDuration::from_secs(20);
    assert!(
        s.try_acquire_lease("scheduler", "a", ttl, later)
            .await
            .unwrap(),
        "renewal"
    );
    // Renewed until later + 30 s: still a's at now + 40 s.
    let t40 = now + SignedDuration::from_secs(40);
    assert!(
        !s.try_acquire_lease("scheduler", "b", ttl, t40)
            .await
            .unwrap()
    );
    let t50 = now + SignedDuration::from_secs(50);
    assert!(
        s.try_acquire_lease("scheduler", "b", ttl, t50)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !s.try_acquire_lease("scheduler", "a", ttl, t50)
            .await
            .unwrap()
    );
    s.release_lease("scheduler", "a").await.unwrap(); // not a's: no effect
    assert!(
        !s.try_acquire_lease("scheduler", "a", ttl, t50)
            .await
            .unwrap()
    );
    s.release_lease("scheduler", "b").await.unwrap();
    assert!(
        s.try_acquire_lease("scheduler", "a", ttl, t50)
            .await
            .unwrap()
    );

    // Many contenders at once for a new lease: one wins.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.try_acquire_lease("compliance", &format!("replica-{i}"), ttl, now)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}
