//! Two server replicas on one PostgreSQL database (DESIGN decision 4): the
//! same CA and keys, nothing in memory the other needs. A node registers on
//! replica A, its agent polls replica B for work, an operator asks for a
//! Scan command on A: B delivers the invocation at once (A's NOTIFY wakes B's poll),
//! and exactly once. Both replicas see the same nodes, keys and audit log.

use patchfleet_protocol::{
    AgentInfo, PROTOCOL_VERSION, Platform, RegisterRequest, RegisterResponse, WorkResponse,
};
use patchfleet_server::config::Config;
use patchfleet_server::server::start;
use std::path::Path;
use std::time::{Duration, Instant};

#[path = "support/pg.rs"]
mod pg;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_database() {
    let (admin_url, name, url) = pg::create_pg_database("pf_replicas").await;
    let tmp = std::env::temp_dir().join(format!("patchfleet-replicas-{}", std::process::id()));
    let config = |dir: &Path| Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database: Some(url.clone()),
        heartbeat_seconds: 5,
        ..Config::default()
    };
    let a = start(config(&tmp.join("a"))).await.unwrap();
    // Replica B: the same CA and server key (the operator copies the data
    // directory), the same database.
    copy_dir(&tmp.join("a"), &tmp.join("b"));
    let b = start(config(&tmp.join("b"))).await.unwrap();
    assert!(b.bootstrap_key.is_none(), "B must see A's bootstrap key");
    assert_eq!(a.ca_fingerprint, b.ca_fingerprint);
    let admin = a.bootstrap_key.clone().unwrap();
    let bearer = format!("{}:{}", admin.access_key_id, admin.secret_access_key);
    let ca = reqwest::Certificate::from_pem(a.ca_pem.as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .build()
        .unwrap();

    // An activation made on B registers a node on A.
    let act: serde_json::Value = http
        .post(format!("{}/api/v1/activations", b.url()))
        .bearer_auth(&bearer)
        .json(&serde_json::json!({"registration_limit": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let register = |caps: Vec<String>, host: &'static str| {
        let http = http.clone();
        let url = a.url();
        let act = act.clone();
        async move {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let csr = rcgen::CertificateParams::default()
                .serialize_request(&key)
                .unwrap()
                .pem()
                .unwrap();
            let reg: RegisterResponse = http
                .post(format!("{url}/agent/v1/register"))
                .json(&RegisterRequest {
                    activation_id: act["activation_id"].as_str().unwrap().into(),
                    activation_code: act["activation_code"].as_str().unwrap().into(),
                    csr_pem: csr,
                    agent: AgentInfo {
                        protocol: PROTOCOL_VERSION,
                        agent_version: "test".into(),
                        capabilities: caps,
                        hostname: host.into(),
                        ip_address: None,
                        platform: Platform {
                            operating_system: "DEBIAN".into(),
                            product: "Debian12".into(),
                            name: "Debian GNU/Linux".into(),
                            version: "12".into(),
                        },
                    },
                })
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (key, reg)
        }
    };
    let (key, reg) = register(vec!["scan".into(), "run-patch-baseline".into()], "node-1").await;
    // An agent that announced no capability is never sent a command.
    let (_, mute) = register(Vec::new(), "node-2").await;
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", reg.certificate_pem, key.serialize_pem()).as_bytes(),
    )
    .unwrap();
    let agent = reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(identity)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // The agent long-polls B; the operator asks A for a scan.
    let poll_url = format!("{}/agent/v1/work?wait=20", b.url());
    let poll = tokio::spawn({
        let agent = agent.clone();
        async move {
            let w: WorkResponse = agent
                .get(poll_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (w, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    let queued: serde_json::Value = http
        .post(format!("{}/api/v1/compliance/scan", a.url()))
        .bearer_auth(&bearer)
        .json(&serde_json::json!({"node_ids": [reg.node_id, mute.node_id]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A Scan command: one invocation per node, the mute one undeliverable.
    assert_eq!(queued["target_count"], 2, "{queued}");
    let command_id = queued["command_id"].as_str().unwrap().to_string();
    let work_id = format!("{command_id}.{}", reg.node_id);
    let (work, received) = poll.await.unwrap();
    let took = received - asked;
    assert_eq!(work.items.len(), 1, "{work:?}");
    assert_eq!(work.items[0].id, work_id);
    assert_eq!(work.items[0].kind, "run-patch-baseline");
    assert_eq!(work.items[0].parameters["document"]["operation"], "Scan");
    // Woken by A's notification, not by B's slow re-read of the store.
    assert!(
        took < Duration::from_secs(2),
        "delivered {took:?} after the request"
    );
    // Delivered once: a poll on A finds nothing more.
    let again: WorkResponse = agent
        .get(format!("{}/agent/v1/work?wait=0", a.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(again.items.is_empty(), "{again:?}");
    let invocations: serde_json::Value = http
        .get(format!(
            "{}/api/v1/commands/{command_id}/invocations",
            b.url()
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mute_state = invocations["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["node_id"] == mute.node_id.as_str())
        .map(|i| i["status_details"].clone());
    assert_eq!(mute_state, Some("Undeliverable".into()), "{invocations}");

    // Deregistered on B: refused on A at once.
    let s = http
        .post(format!(
            "{}/api/v1/nodes/{}/deregister",
            b.url(),
            reg.node_id
        ))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, reqwest::StatusCode::NO_CONTENT);
    let s = agent
        .get(format!("{}/agent/v1/work?wait=0", a.url()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, reqwest::StatusCode::FORBIDDEN);

    a.shutdown().await;
    b.shutdown().await;
    pg::drop_pg_database(&admin_url, &name).await;
    let _ = std::fs::remove_dir_all(&tmp);
}
