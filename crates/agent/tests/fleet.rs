//! A fleet end to end: one real server (`server::start`, HTTPS on
//! loopback) and three real `patchfleet-agent` processes on test-bed roots
//! — two APT beds (`crates/pkg/tests/testbed/apt/build.sh`) and one dnf bed
//! (RHEL 9.3) — registered through one activation, scanning, and judged by
//! the server: compliance exactly as the spec predicts, baseline changes
//! (patch group, default, edit, revert) re-judging the nodes from their
//! stored facts without any re-scan, the exhausted activation refusing a
//! fourth node, and a deregistered node's agent refused (exit 3) and gone
//! from every list.
//!
//! Runs on SQLite and on PostgreSQL (a database of its own on the server
//! named by PATCHFLEET_TEST_POSTGRES_URL; `./scripts/test` or
//! `eval "$(scripts/pg start)"` provides one). A missing PostgreSQL fails
//! the PostgreSQL variant; it is never skipped. Missing test-bed tools fail
//! the test naming the package to install.

#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use common::{TempDir, build_apt_testbed, build_dnf_testbed};
use jiff::{SignedDuration, Timestamp};
use patchfleet_server::config::Config;
use patchfleet_server::server::{Running, start};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::fleet::{Agents, Api, expect, states};

/// `patchfleet-agent register` with the in-process server.
async fn register(
    running: &Running,
    activation: &Value,
    state: &std::path::Path,
    root: &std::path::Path,
) -> (Option<i32>, String, String) {
    support::fleet::register(
        &running.url(),
        &running.ca_fingerprint,
        activation,
        state,
        root,
    )
    .await
}

#[path = "../../server/tests/support/pg.rs"]
mod pg;
use pg::{create_pg_database, drop_pg_database};
const DEBIAN_DEFAULT: &str = "pb-75b114c507d400ec2";

/// A custom Debian baseline: the predefined default's rule, optionally
/// approving non-security updates too.
fn debian_doc(name: &str, non_security: bool) -> Value {
    json!({
        "Name": name,
        "OperatingSystem": "DEBIAN",
        "ApprovalRules": {"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [{
                "Key": "PRIORITY",
                "Values": ["Required", "Important", "Standard", "Optional", "Extra"]
            }]},
            "ComplianceLevel": "UNSPECIFIED",
            "EnableNonSecurity": non_security
        }]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_on_sqlite() {
    fleet(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_on_postgres() {
    let (admin_url, name, url) = create_pg_database("pf_fleet").await;
    fleet(Some(url)).await;
    drop_pg_database(&admin_url, &name).await;
}

async fn fleet(database: Option<String>) {
    let started = Instant::now();
    let tmp = TempDir::new("fleet");
    let dir = tmp.0.clone();

    // The three test beds, built while the server starts.
    let beds = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::scope(|s| {
                let a = s.spawn(|| build_apt_testbed(&dir.join("apt-a")));
                let b = s.spawn(|| build_apt_testbed(&dir.join("apt-b")));
                let r = s.spawn(|| build_dnf_testbed(&dir.join("rhel"), "rhel").0.dir);
                a.join().unwrap();
                b.join().unwrap();
                r.join().unwrap()
            })
        })
    };
    let running = start(Config {
        data_dir: dir.join("server"),
        listen: "127.0.0.1:0".parse().unwrap(),
        database,
        // The agent's floor: a deregistered agent hears of it within seconds.
        heartbeat_seconds: 5,
        ..Config::default()
    })
    .await
    .unwrap();
    let key = running.bootstrap_key.clone().unwrap();
    let api = Api::new(
        running.url(),
        &running.ca_pem,
        &key.access_key_id,
        &key.secret_access_key,
    );
    let rhel_root = beds.await.unwrap();
    let roots: [(&str, PathBuf); 3] = [
        ("apt-a", dir.join("apt-a/root")),
        ("apt-b", dir.join("apt-b/root")),
        ("rhel", rhel_root),
    ];
    let beds_built = started.elapsed();
    // "Booted" after the test beds' installs: nothing pending a reboot.
    let boot = (Timestamp::now() + SignedDuration::from_secs(1)).to_string();

    // One activation for three nodes.
    let activation = api
        .post(
            "/api/v1/activations",
            json!({"description": "fleet test", "registration_limit": 3}),
        )
        .await;
    let mut agents = Agents::new(dir.join("logs"));
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    for (name, root) in &roots {
        let state = dir.join("state").join(name);
        let (code, stdout, stderr) = register(&running, &activation, &state, root).await;
        assert_eq!(code, Some(0), "register {name}: {stderr}");
        let id = stdout.trim().to_string();
        assert!(id.starts_with("mi-"), "{name}: {stdout}");
        agents.spawn(name, &state, root, &boot);
        ids.insert(name, id);
    }
    let (a, b, r) = (
        ids["apt-a"].clone(),
        ids["apt-b"].clone(),
        ids["rhel"].clone(),
    );

    // Scanned and judged: the APT beds by the Debian default, the dnf bed by
    // the RHEL default.
    let apt_default = expect(&[
        ("tb-hello", "Missing"),
        ("tb-kernel", "Missing"),
        ("tb-tool", "InstalledOther"),
    ]);
    let apt_all = expect(&[
        ("tb-hello", "Missing"),
        ("tb-kernel", "Missing"),
        ("tb-tool", "Missing"),
    ]);
    for (name, id) in [("apt-a", &a), ("apt-b", &b)] {
        let v = api.wait_for_patches(id, &mut agents, name).await;
        assert_eq!(states(&v), apt_default, "{name}");
        assert_eq!(v["baseline_id"], DEBIAN_DEFAULT);
        assert_eq!(v["compliance_status"], "NON_COMPLIANT");
        assert_eq!(v["counts"]["missing"], 2, "{name}: {}", v["counts"]);
        assert_eq!(v["counts"]["installed_other"], 1);
        assert_eq!(v["counts"]["installed_pending_reboot"], 0);
        assert_eq!(v["counts"]["security_non_compliant"], 2);
        let classes: BTreeMap<String, String> = v["report"]["Patches"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["State"] == "Missing")
            .map(|p| {
                (
                    p["Title"]
                        .as_str()
                        .unwrap()
                        .split('.')
                        .next()
                        .unwrap()
                        .into(),
                    p["Classification"].as_str().unwrap_or_default().into(),
                )
            })
            .collect();
        assert!(
            classes.values().all(|c| c.eq_ignore_ascii_case("security")),
            "{name}: {classes:?}"
        );
    }
    let v = api.wait_for_patches(&r, &mut agents, "rhel").await;
    assert_eq!(
        states(&v),
        expect(&[
            ("tb-hello", "InstalledOther"),
            ("tb-kernel", "Missing"),
            ("tb-tool", "Missing"),
        ])
    );
    assert_eq!(
        v["baseline_id"], "pb-d5ca5b8f1de4f2635",
        "{}",
        v["baseline_id"]
    );
    assert_eq!(v["compliance_status"], "NON_COMPLIANT");
    assert_eq!(v["counts"]["missing"], 2);
    assert_eq!(v["counts"]["installed_pending_reboot"], 0);

    let nodes = api.items("/api/v1/nodes").await;
    assert_eq!(nodes.len(), 3);
    let node = |id: &str| nodes.iter().find(|n| n["node_id"] == id).unwrap().clone();
    assert_eq!(node(&a)["operating_system"], "DEBIAN");
    assert_eq!(node(&r)["operating_system"], "REDHAT_ENTERPRISE_LINUX");
    assert!(nodes.iter().all(|n| n["ping_status"] == "Online"));
    // (The two APT beds are separate builds: their install times, hence
    // their inventories, differ.)
    assert!(nodes.iter().all(|n| {
        n["inventory_hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("sha256:"))
    }));
    let summary = api.items("/api/v1/compliance/summary").await;
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert_eq!(summary[0]["compliant"], 0);
    assert_eq!(summary[0]["non_compliant"], 3);
    assert_eq!(summary[0]["not_evaluated"], 0);
    let by_severity: i64 = summary[0]["by_severity"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(by_severity, 3, "{summary:?}");
    let scanned = |n: &Value| (n["scanned_at"].clone(), n["inventory_hash"].clone());
    let before: Vec<_> = [&a, &b, &r].iter().map(|id| scanned(&node(id))).collect();
    let reports = api
        .items("/api/v1/audit?action=ReportInventory&limit=1000")
        .await
        .len();
    assert_eq!(reports, 3);

    // Baseline changes re-judge the nodes from their stored facts.
    let custom = api
        .post("/api/v1/baselines", debian_doc("fleet-debian-all", true))
        .await;
    let c = custom["baseline_id"].as_str().unwrap().to_string();
    // (1) A patch group: the tag first (nothing registered for it yet), then
    // the baseline registered for it.
    let tagged = api
        .post(
            &format!("/api/v1/nodes/{a}/tags"),
            json!({"add": {"Patch Group": "web"}}),
        )
        .await;
    assert_eq!(tagged["patch_group"], "web");
    let view = |id: &str| {
        let api = &api;
        let id = id.to_string();
        async move { api.get(&format!("/api/v1/nodes/{id}/patches")).await }
    };
    let v = view(&a).await;
    assert_eq!(v["baseline_id"], DEBIAN_DEFAULT);
    assert_eq!(v["patch_group"], "web");
    api.post(
        "/api/v1/patch-groups",
        json!({"patch_group": "web", "baseline_id": c}),
    )
    .await;
    let v = view(&a).await;
    assert_eq!(states(&v), apt_all, "after the patch group registration");
    assert_eq!(
        (v["baseline_id"].as_str(), v["baseline_version"].as_i64()),
        (Some(c.as_str()), Some(1))
    );
    assert_eq!(v["counts"]["missing"], 3);
    assert_eq!(v["report"]["InstancePatchState"]["PatchGroup"], "web");
    assert_eq!(
        states(&view(&b).await),
        apt_default,
        "apt-b is in no patch group"
    );
    // (2) The default for Debian.
    api.post(&format!("/api/v1/baselines/{c}/default"), json!({}))
        .await;
    let v = view(&b).await;
    assert_eq!(states(&v), apt_all, "after the default changed");
    assert_eq!(v["baseline_id"], c.as_str());
    // (3) An edit: security only again.
    let edited = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/baselines/{c}"),
            debian_doc("fleet-debian-all", false),
        )
        .await;
    assert_eq!(edited["version"], 2);
    for id in [&a, &b] {
        let v = view(id).await;
        assert_eq!(states(&v), apt_default, "after the edit");
        assert_eq!(v["baseline_version"], 2);
        assert_eq!(v["counts"]["missing"], 2);
    }
    // (4) A revert to version 1.
    let reverted = api
        .post(
            &format!("/api/v1/baselines/{c}/revert"),
            json!({"to_version": 1}),
        )
        .await;
    assert_eq!(reverted["version"], 3);
    for id in [&a, &b] {
        let v = view(id).await;
        assert_eq!(states(&v), apt_all, "after the revert");
        assert_eq!(v["baseline_version"], 3);
    }
    // The RHEL node was judged by its own default throughout.
    let v = view(&r).await;
    assert_eq!(v["baseline_id"], "pb-d5ca5b8f1de4f2635");
    assert_eq!(v["counts"]["missing"], 2);
    // No re-scan: the same facts, scanned when they were, no new report.
    let nodes = api.items("/api/v1/nodes").await;
    let node = |id: &str| nodes.iter().find(|n| n["node_id"] == id).unwrap().clone();
    let after: Vec<_> = [&a, &b, &r].iter().map(|id| scanned(&node(id))).collect();
    assert_eq!(after, before, "a node re-scanned");
    assert_eq!(
        api.items("/api/v1/audit?action=ReportInventory&limit=1000")
            .await
            .len(),
        3
    );
    // The timeline: every change of the verdicts, in order.
    let timeline = api.items(&format!("/api/v1/nodes/{a}/timeline")).await;
    let missing: Vec<(i64, String, i64)> = timeline
        .iter()
        .map(|e| {
            let s = &e["summary"];
            (
                s["counts"]["missing"].as_i64().unwrap(),
                s["baseline_id"].as_str().unwrap().to_string(),
                s["baseline_version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        missing,
        [
            (2, DEBIAN_DEFAULT.to_string(), 0),
            (3, c.clone(), 1),
            (2, c.clone(), 2),
            (3, c.clone(), 3),
        ],
        "{timeline:#?}"
    );
    let summary = api
        .items("/api/v1/compliance/summary?group_by=patch_group")
        .await;
    let web = summary.iter().find(|s| s["group"] == "web").unwrap();
    assert_eq!(web["non_compliant"], 1, "{summary:?}");

    // The activation is used up: a fourth node is refused.
    let (code, _, stderr) = register(
        &running,
        &activation,
        &dir.join("state/fourth"),
        &roots[0].1,
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ActivationLimitReached"), "{stderr}");
    let acts = api.items("/api/v1/activations").await;
    assert_eq!(acts[0]["registrations_count"], 3);
    assert_eq!(api.items("/api/v1/nodes").await.len(), 3);

    // Deregistered: the agent is refused at its next call and stops (3);
    // the node leaves every list.
    let (status, v) = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/nodes/{b}/deregister"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = agents.child("apt-b").try_wait().unwrap() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the deregistered agent still runs after 30 s:\n{}",
            agents.stderr("apt-b")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, Some(3), "{}", agents.stderr("apt-b"));
    assert!(
        agents.stderr("apt-b").contains("no longer accepts node"),
        "{}",
        agents.stderr("apt-b")
    );
    agents.assert_running(&["apt-a", "rhel"]);
    let listed: Vec<String> = api
        .items("/api/v1/nodes")
        .await
        .iter()
        .map(|n| n["node_id"].as_str().unwrap().to_string())
        .collect();
    let mut want = vec![a.clone(), r.clone()];
    want.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, want);
    let (status, _) = api
        .call(reqwest::Method::GET, &format!("/api/v1/nodes/{b}"), None)
        .await;
    assert_eq!(status, 404);
    let compliance = api.items("/api/v1/compliance/nodes").await;
    assert_eq!(compliance.len(), 2);
    assert!(compliance.iter().all(|c| c["node_id"] != b.as_str()));
    let summary = api.items("/api/v1/compliance/summary").await;
    assert_eq!(summary[0]["non_compliant"], 2, "{summary:?}");
    assert_eq!(summary[0]["compliant"], 0);
    assert_eq!(summary[0]["not_evaluated"], 0);

    drop(agents);
    running.shutdown().await;
    eprintln!(
        "fleet: test beds {:.1}s, whole test {:.1}s",
        beds_built.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
