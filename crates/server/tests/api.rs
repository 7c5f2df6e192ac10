//! The HTTP APIs of a real server (`server::start`) over real HTTPS on
//! loopback, with reqwest trusting the server's CA and nothing else: who
//! may call what, what bad input gets (a 4xx naming the problem, and
//! nothing written), activations and the agent channel's client
//! certificates, baseline versions and patch groups, the audit log.
//!
//! Every test runs on SQLite (a temporary data directory) and on PostgreSQL
//! (a database of its own on the server named by PATCHFLEET_TEST_POSTGRES_URL;
//! `./scripts/test` or `eval "$(scripts/pg start)"` provides one). A missing
//! PostgreSQL fails the PostgreSQL tests; they are never skipped.

mod support;

use jiff::{SignedDuration, Timestamp};
use patchfleet_server::tls::Pki;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::*;

// ---------------------------------------------------------------------------

/// Every route but `/health` (paths with placeholder ids).
const PROTECTED: &[(&str, &str)] = &[
    ("GET", "/api/v1/api-keys"),
    ("POST", "/api/v1/api-keys"),
    ("DELETE", "/api/v1/api-keys/PFAKNOSUCHKEY0000000"),
    ("GET", "/api/v1/activations"),
    ("POST", "/api/v1/activations"),
    (
        "DELETE",
        "/api/v1/activations/00000000-0000-0000-0000-000000000000",
    ),
    ("GET", "/api/v1/baselines"),
    ("POST", "/api/v1/baselines"),
    ("GET", "/api/v1/baselines/pb-00000000000000000"),
    ("PUT", "/api/v1/baselines/pb-00000000000000000"),
    ("DELETE", "/api/v1/baselines/pb-00000000000000000"),
    ("GET", "/api/v1/baselines/pb-00000000000000000/versions"),
    (
        "GET",
        "/api/v1/baselines/pb-00000000000000000/diff?from=1&to=2",
    ),
    ("POST", "/api/v1/baselines/pb-00000000000000000/revert"),
    ("POST", "/api/v1/baselines/pb-00000000000000000/default"),
    ("GET", "/api/v1/baselines/pb-00000000000000000/tags"),
    ("POST", "/api/v1/baselines/pb-00000000000000000/tags"),
    ("GET", "/api/v1/patch-groups"),
    ("POST", "/api/v1/patch-groups"),
    ("DELETE", "/api/v1/patch-groups/web/pb-00000000000000000"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/nodes"),
    ("GET", "/api/v1/nodes/mi-00000000000000000"),
    ("GET", "/api/v1/nodes/mi-00000000000000000/patches"),
    ("GET", "/api/v1/nodes/mi-00000000000000000/timeline"),
    ("POST", "/api/v1/nodes/mi-00000000000000000/tags"),
    ("POST", "/api/v1/nodes/mi-00000000000000000/deregister"),
    ("GET", "/api/v1/compliance/summary"),
    ("GET", "/api/v1/compliance/nodes"),
    ("POST", "/api/v1/compliance/scan"),
    ("POST", "/api/v1/commands"),
    ("GET", "/api/v1/commands"),
    (
        "GET",
        "/api/v1/commands/00000000-0000-0000-0000-000000000000",
    ),
    (
        "POST",
        "/api/v1/commands/00000000-0000-0000-0000-000000000000/cancel",
    ),
    (
        "GET",
        "/api/v1/commands/00000000-0000-0000-0000-000000000000/invocations",
    ),
    (
        "GET",
        "/api/v1/commands/00000000-0000-0000-0000-000000000000/invocations/mi-00000000000000000",
    ),
    (
        "GET",
        "/api/v1/commands/00000000-0000-0000-0000-000000000000/invocations/mi-00000000000000000/output",
    ),
    (
        "POST",
        "/agent/v1/invocations/00000000-0000-0000-0000-000000000000.mi-00000000000000000",
    ),
    ("POST", "/agent/v1/heartbeat"),
    ("POST", "/agent/v1/facts/offer"),
    ("GET", "/agent/v1/work"),
    (
        "PUT",
        "/agent/v1/facts/sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ),
];

async fn health_and_authentication(env: &Env) {
    let (status, v) = env.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"status": "ok"}));

    let before = env.snapshot().await;
    let wrong_secret = Key {
        id: env.admin.id.clone(),
        secret: "x".repeat(40),
    };
    let unknown = Key {
        id: "PFAKNOSUCHKEY0000000".into(),
        secret: env.admin.secret.clone(),
    };
    for (method, path) in PROTECTED {
        let method: Method = method.parse().unwrap();
        let body = (method == Method::POST || method == Method::PUT).then(|| json!({}));
        let anonymous = env.call(method.clone(), path, None, body.clone()).await;
        assert_error(&anonymous, StatusCode::UNAUTHORIZED, "Unauthorized");
        for key in [&wrong_secret, &unknown] {
            let got = env
                .call(method.clone(), path, Some(key), body.clone())
                .await;
            assert_error(&got, StatusCode::UNAUTHORIZED, "Unauthorized");
            if path.starts_with("/api/") {
                assert_eq!(
                    message(&got),
                    "unknown access key or wrong secret",
                    "{method} {path}"
                );
            } else {
                // An API key is no agent identity.
                assert!(message(&got).contains("client certificate"), "{:?}", got.1);
            }
        }
        let mut rb = env.request(method.clone(), path, None);
        rb = rb.header("authorization", "Basic dXNlcjpwYXNz");
        if let Some(b) = &body {
            rb = rb.json(b);
        }
        let got = send(rb).await.unwrap();
        assert_error(&got, StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    assert_eq!(
        env.snapshot().await,
        before,
        "refused requests wrote something"
    );
    // What is in the log: the bootstrap key, by the server itself.
    let audit = env.audit().await;
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0]["action"], "CreateApiKey");
    assert_eq!(audit[0]["actor"], "system");
}

async fn roles(env: &Env) {
    let auditor = env.new_key("auditor", "auditor").await;
    let operator = env.new_key("operator", "operator").await;
    let bad_role = env
        .post(
            "/api/v1/api-keys",
            &env.admin,
            json!({"name": "x", "role": "root"}),
        )
        .await;
    assert_error(&bad_role, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(bad_role.1["field"], "role", "{}", bad_role.1);

    // The auditor reads everything, changes nothing.
    for path in [
        "/api/v1/baselines",
        "/api/v1/nodes",
        "/api/v1/activations",
        "/api/v1/patch-groups",
        "/api/v1/compliance/summary",
        "/api/v1/audit",
    ] {
        env.get(path, &auditor).await;
    }
    let got = env
        .post(
            "/api/v1/baselines",
            &auditor,
            debian_doc("by-auditor", false),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    assert_eq!(message(&got), "the auditor role may not manage baselines");
    let got = env.post("/api/v1/activations", &auditor, json!({})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    let got = env
        .call(Method::GET, "/api/v1/api-keys", Some(&auditor), None)
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");

    // The operator manages the fleet, not the keys.
    let got = env
        .call(Method::GET, "/api/v1/api-keys", Some(&operator), None)
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    assert_eq!(message(&got), "the operator role may not manage API keys");
    let got = env
        .post(
            "/api/v1/api-keys",
            &operator,
            json!({"name": "mine", "role": "admin"}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    let got = env
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", auditor.id),
            Some(&operator),
            None,
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    let (status, b) = env
        .post(
            "/api/v1/baselines",
            &operator,
            debian_doc("by-operator", false),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let (status, a) = env.post("/api/v1/activations", &operator, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");

    // The log: who did what, the refusals absent.
    let audit = env.audit().await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("system", "CreateApiKey"),
            (env.admin.id.as_str(), "CreateApiKey"),
            (env.admin.id.as_str(), "CreateApiKey"),
            (operator.id.as_str(), "CreatePatchBaseline"),
            (operator.id.as_str(), "CreateActivation"),
        ]
    );
    let keys = env.items("/api/v1/api-keys").await;
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| k.get("secret_access_key").is_none()),
        "a secret listed: {keys:?}"
    );
}

async fn bad_input_changes_nothing(env: &Env) {
    let before = env.snapshot().await;
    let admin = &env.admin;
    let raw = |path: &str, method: Method, body: Vec<u8>| {
        env.request(method, path, Some(admin))
            .header("content-type", "application/json")
            .body(body)
    };

    // Malformed JSON.
    for path in [
        "/api/v1/baselines",
        "/api/v1/activations",
        "/api/v1/api-keys",
    ] {
        for body in [&b"{ not json"[..], b"", b"{"] {
            let got = send(raw(path, Method::POST, body.to_vec())).await.unwrap();
            assert_error(&got, StatusCode::BAD_REQUEST, "InvalidRequest");
            assert!(got.1["field"].is_null(), "{path}: {}", got.1);
        }
        let got = send(raw(path, Method::POST, b"{ not json".to_vec()))
            .await
            .unwrap();
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{path}: {}", got.1);
        assert!(
            message(&got).starts_with("invalid JSON body: "),
            "{path}: {}",
            got.1
        );
    }

    // Unknown members: the field names the member.
    for (path, body, member) in [
        (
            "/api/v1/activations",
            json!({"registration_limit": 1, "bogus": true}),
            "bogus",
        ),
        (
            "/api/v1/api-keys",
            json!({"name": "k", "role": "auditor", "colour": "red"}),
            "colour",
        ),
        (
            "/api/v1/patch-groups",
            json!({"patch_group": "web", "baseline_id": "AWS-DebianDefaultPatchBaseline", "extra": 1}),
            "extra",
        ),
    ] {
        let got = env.post(path, admin, body).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
        assert_eq!(got.1["field"], member, "{path}: {}", got.1);
        assert!(message(&got).contains(member), "{path}: {}", got.1);
    }
    let mut doc = debian_doc("unknown-member", false);
    doc["Bogus"] = json!(1);
    let got = env.post("/api/v1/baselines", admin, doc).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(message(&got).contains("Bogus"), "{}", got.1);
    // A member of the wrong type.
    let got = env
        .post(
            "/api/v1/activations",
            admin,
            json!({"registration_limit": "three"}),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(got.1["field"], "registration_limit", "{}", got.1);

    // Too large: 413 before anything is parsed.
    let mut big = debian_doc("big", false);
    big["Description"] = json!("x".repeat(MAX_BODY + 1));
    let got = send(raw(
        "/api/v1/baselines",
        Method::POST,
        serde_json::to_vec(&big).unwrap(),
    ))
    .await
    .unwrap();
    assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge");

    // An invalid baseline: the message names the member.
    let invalid = json!({
        "Name": "bad-delay",
        "OperatingSystem": "REDHAT_ENTERPRISE_LINUX",
        "ApprovalRules": {"PatchRules": [{
            "PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
            "ApproveAfterDays": 500
        }]}
    });
    let got = env.post("/api/v1/baselines", admin, invalid).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(
        message(&got).contains("approveAfterDays") && message(&got).contains("500"),
        "{}",
        got.1
    );
    let got = env
        .post("/api/v1/baselines", admin, debian_doc("AWS-Mine", false))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(got.1["field"], "Name");

    // Predefined baselines are read-only, by name and by id.
    for id in ["AWS-DebianDefaultPatchBaseline", "pb-75b114c507d400ec2"] {
        let got = env
            .put(
                &format!("/api/v1/baselines/{id}"),
                admin,
                debian_doc("AWS-DebianDefaultPatchBaseline", true),
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "ReadOnly");
        let got = env
            .call(
                Method::DELETE,
                &format!("/api/v1/baselines/{id}"),
                Some(admin),
                None,
            )
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, "ReadOnly");
    }

    // Activations out of bounds.
    let got = env
        .post(
            "/api/v1/activations",
            admin,
            json!({"registration_limit": 0}),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(got.1["field"], "registration_limit");
    let past = Timestamp::now() - SignedDuration::from_secs(60);
    let got = env
        .post(
            "/api/v1/activations",
            admin,
            json!({"expiration_date": past}),
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(got.1["field"], "expiration_date");

    // Filters and ids that do not exist.
    let got = env
        .call(
            Method::GET,
            "/api/v1/compliance/nodes?status=MAYBE",
            Some(admin),
            None,
        )
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    let got = env
        .call(
            Method::GET,
            "/api/v1/baselines/pb-00000000000000000",
            Some(admin),
            None,
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NotFound");
    let got = env
        .post(
            "/api/v1/nodes/mi-00000000000000000/deregister",
            admin,
            json!({}),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NotFound");

    assert_eq!(
        env.snapshot().await,
        before,
        "a refused request wrote something"
    );
}

async fn activations_and_the_agent_channel(env: &Env) {
    let admin = &env.admin;
    let expires = Timestamp::now() + SignedDuration::from_millis(1500);
    let (status, short) = env
        .post(
            "/api/v1/activations",
            admin,
            json!({"description": "short-lived", "expiration_date": expires}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let (status, good) = env
        .post(
            "/api/v1/activations",
            admin,
            json!({"description": "one node", "registration_limit": 1, "tags": {"env": "test"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{good}");
    let good_id = good["activation_id"].as_str().unwrap();
    let good_code = good["activation_code"].as_str().unwrap();
    let (key_pem, csr) = agent_csr();
    let register = |id: &str, code: &str| {
        env.call(
            Method::POST,
            "/agent/v1/register",
            None,
            Some(register_body(id, code, &csr)),
        )
    };

    let before = env.snapshot().await;
    let got = register(good_id, "not-the-code").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidActivation");
    assert_eq!(got.1["field"], "activation_code");
    let got = register("00000000-0000-0000-0000-000000000000", good_code).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "InvalidActivation");
    assert_eq!(got.1["field"], "activation_id");
    // Wait for the short-lived activation to expire.
    let wait = expires.duration_since(Timestamp::now()) + SignedDuration::from_millis(300);
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs()).await;
    }
    let got = register(
        short["activation_id"].as_str().unwrap(),
        short["activation_code"].as_str().unwrap(),
    )
    .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ExpiredActivation");
    // A CSR that is none.
    let mut body = register_body(good_id, good_code, "not a CSR");
    let got = env
        .call(Method::POST, "/agent/v1/register", None, Some(body.clone()))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(got.1["field"], "csr_pem");
    body["agent"]["protocol"] = json!(99);
    body["csr_pem"] = json!(csr);
    let got = env
        .call(Method::POST, "/agent/v1/register", None, Some(body))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "UnsupportedProtocol");
    let mut after = env.snapshot().await;
    // The short-lived activation now shows as expired; nothing else changed.
    for a in after["activations"].as_array_mut().unwrap() {
        if a["activation_id"] == short["activation_id"] {
            assert_eq!(a["expired"], true);
            a["expired"] = json!(false);
        }
    }
    assert_eq!(after, before, "a refused registration wrote something");

    // A registration that succeeds, then the channel with its certificate.
    let (status, reg) = register(good_id, good_code).await;
    assert_eq!(status, StatusCode::OK, "{reg}");
    let node_id = reg["node_id"].as_str().unwrap().to_string();
    assert!(
        node_id.starts_with("mi-") && node_id.len() == 20,
        "{node_id}"
    );
    assert_eq!(reg["ca_pem"], env.ca_pem.as_str());
    assert_eq!(reg["heartbeat_seconds"], 5);
    let got = register(good_id, good_code).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ActivationLimitReached");
    let acts = env.items("/api/v1/activations").await;
    let a = acts.iter().find(|a| a["activation_id"] == good_id).unwrap();
    assert_eq!(a["registrations_count"], 1);

    let agent = agent_client(env, reg["certificate_pem"].as_str().unwrap(), &key_pem);
    let heartbeat = json!({"agent": agent_info()});
    let hb_url = format!("{}/agent/v1/heartbeat", env.url);
    let (status, ack) = send(agent.post(&hb_url).json(&heartbeat)).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{ack}");
    assert_eq!(ack["heartbeat_seconds"], 5);
    let (status, work) = send(agent.get(format!("{}/agent/v1/work", env.url)))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{work}");
    assert_eq!(work, json!({"items": []}));
    let nodes = env.items("/api/v1/nodes").await;
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["node_id"], node_id.as_str());
    assert_eq!(nodes[0]["ping_status"], "Online");
    assert_eq!(nodes[0]["activation_id"], good_id);

    // No client certificate: 401.
    let got = send(env.http.post(&hb_url).json(&heartbeat)).await.unwrap();
    assert_error(&got, StatusCode::UNAUTHORIZED, "Unauthorized");
    // A certificate for the same node id from another CA: refused at the
    // handshake (or, at the latest, by the channel).
    let other_dir = env.dir.join("other-ca");
    let other = Pki::load_or_create(&other_dir, &[]).unwrap();
    let (forged_key, forged_csr) = agent_csr();
    let forged = other
        .sign_agent_csr(&forged_csr, &node_id, Timestamp::now())
        .unwrap();
    let impostor = agent_client(env, &forged, &forged_key);
    match send(impostor.post(&hb_url).json(&heartbeat)).await {
        Err(e) => {
            let chain = format!("{e:?}");
            assert!(e.is_connect() || e.is_request(), "{chain}");
        }
        Ok((status, v)) => assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "a certificate from another CA was accepted: {status} {v}"
        ),
    }

    // Deregistered: the certificate no longer opens the channel.
    let (status, v) = env
        .post(
            &format!("/api/v1/nodes/{node_id}/deregister"),
            admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let got = send(agent.post(&hb_url).json(&heartbeat)).await.unwrap();
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    assert!(env.items("/api/v1/nodes").await.is_empty());
    let got = env
        .call(
            Method::GET,
            &format!("/api/v1/nodes/{node_id}"),
            Some(admin),
            None,
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NotFound");

    let actions: Vec<String> = env
        .audit()
        .await
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions[1..],
        [
            format!("{} CreateActivation", admin.id),
            format!("{} CreateActivation", admin.id),
            format!("node:{node_id} RegisterNode"),
            format!("{} DeregisterManagedInstance", admin.id),
        ]
    );
}

async fn baselines_versions_and_patch_groups(env: &Env) {
    let admin = &env.admin;
    let (status, v1) = env
        .post("/api/v1/baselines", admin, debian_doc("web-debian", false))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let id = v1["baseline_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("pb-"), "{id}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["predefined"], false);
    assert_eq!(v1["default_for_os"], false);
    let path = format!("/api/v1/baselines/{id}");

    let (status, v2) = env.put(&path, admin, debian_doc("web-debian", true)).await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["current_version"], 2);
    // A stale writer is refused.
    let got = env
        .put(
            &format!("{path}?expected_version=1"),
            admin,
            debian_doc("web-debian-stale", false),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "Conflict");
    // The OS cannot change.
    let mut rhel = debian_doc("web-debian", true);
    rhel["OperatingSystem"] = json!("REDHAT_ENTERPRISE_LINUX");
    rhel["ApprovalRules"]["PatchRules"][0] = json!({
        "PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
        "ApproveAfterDays": 7
    });
    let got = env.put(&path, admin, rhel).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert_eq!(got.1["field"], "OperatingSystem");

    let versions = env.items(&format!("{path}/versions")).await;
    let vs: Vec<(i64, &str)> = versions
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(vs, [(1, admin.id.as_str()), (2, admin.id.as_str())]);
    let diff = env.items(&format!("{path}/diff?from=1&to=2")).await;
    assert_eq!(
        diff,
        [json!({
            "path": "ApprovalRules.PatchRules[0].EnableNonSecurity",
            "before": false,
            "after": true
        })]
    );

    // Revert: a new version equal to the old one.
    let (status, v3) = env
        .post(&format!("{path}/revert"), admin, json!({"to_version": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v3}");
    assert_eq!(v3["version"], 3);
    assert!(
        env.items(&format!("{path}/diff?from=1&to=3"))
            .await
            .is_empty()
    );
    assert_eq!(
        env.items(&format!("{path}/diff?from=2&to=3")).await.len(),
        1
    );
    let old = env.get(&format!("{path}?version=1"), admin).await;
    let cur = env.get(&path, admin).await;
    let rules = |v: &Value| v["document"]["ApprovalRules"].clone();
    assert_eq!(rules(&old), rules(&cur));
    assert_eq!(cur["version"], 3);
    assert_eq!(env.items(&format!("{path}/versions")).await.len(), 3);
    let got = env
        .post(&format!("{path}/revert"), admin, json!({"to_version": 9}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NotFound");

    // Patch groups: one baseline per OS per group.
    let (status, other) = env
        .post("/api/v1/baselines", admin, debian_doc("other-debian", true))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let other_id = other["baseline_id"].as_str().unwrap();
    let (status, pg) = env
        .post(
            "/api/v1/patch-groups",
            admin,
            json!({"patch_group": "web", "baseline_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pg}");
    assert_eq!(
        pg,
        json!({"patch_group": "web", "operating_system": "DEBIAN", "baseline_id": id})
    );
    for baseline in [other_id, id.as_str()] {
        let got = env
            .post(
                "/api/v1/patch-groups",
                admin,
                json!({"patch_group": "web", "baseline_id": baseline}),
            )
            .await;
        assert_error(&got, StatusCode::CONFLICT, "AlreadyExists");
        assert_eq!(got.1["field"], "patch_group");
    }
    // Another OS in the same group is fine.
    let (status, v) = env
        .post(
            "/api/v1/patch-groups",
            admin,
            json!({"patch_group": "web", "baseline_id": "AWS-RedHatDefaultPatchBaseline"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let groups = env.items("/api/v1/patch-groups").await;
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(env.get(&path, admin).await["patch_groups"], json!(["web"]));
    // In use: not deleted.
    let got = env.call(Method::DELETE, &path, Some(admin), None).await;
    assert_error(&got, StatusCode::CONFLICT, "ResourceInUse");

    // The default for DEBIAN.
    let (status, d) = env
        .post(
            &format!("/api/v1/baselines/{other_id}/default"),
            admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(d["default_for_os"], true);
    let debian: Vec<Value> = env
        .items("/api/v1/baselines?operating_system=DEBIAN")
        .await
        .into_iter()
        .filter(|b| b["default_for_os"] == true)
        .collect();
    assert_eq!(debian.len(), 1);
    assert_eq!(debian[0]["baseline_id"], other_id);

    let group_path = format!("/api/v1/patch-groups/web/{id}");
    let (status, _) = env
        .call(Method::DELETE, &group_path, Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = env
        .call(Method::DELETE, &group_path, Some(admin), None)
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "NotFound");
    let (status, _) = env.call(Method::DELETE, &path, Some(admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let got = env.call(Method::GET, &path, Some(admin), None).await;
    assert_error(&got, StatusCode::NOT_FOUND, "NotFound");

    // The log: every change once, by the admin key; the refusals absent.
    let audit = env.audit().await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &audit[1..] {
        assert_eq!(e["actor"], admin.id.as_str(), "{e}");
        *counts
            .entry(e["action"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let want: BTreeMap<String, usize> = [
        ("CreatePatchBaseline", 2),
        ("UpdatePatchBaseline", 2),
        ("RegisterPatchBaselineForPatchGroup", 2),
        ("RegisterDefaultPatchBaseline", 1),
        ("DeregisterPatchBaselineForPatchGroup", 1),
        ("DeletePatchBaseline", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
    let by_object = env.get(&format!("/api/v1/audit?object={id}"), admin).await;
    assert!(
        by_object["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["objects"].as_array().unwrap().contains(&json!(id))),
        "{by_object}"
    );
}

async fn baseline_tags(env: &Env) {
    let admin = &env.admin;
    let (status, b) = env
        .post("/api/v1/baselines", admin, debian_doc("tagged", false))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let tags = format!(
        "/api/v1/baselines/{}/tags",
        b["baseline_id"].as_str().unwrap()
    );
    let (status, v) = env
        .post(
            &tags,
            admin,
            json!({"add": {"Team": "web", "Tier": "prod"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["tags"], json!({"Team": "web", "Tier": "prod"}));
    let (status, v) = env
        .post(
            &tags,
            admin,
            json!({"add": {"Team": "db"}, "remove": ["Tier"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(env.get(&tags, admin).await["tags"], json!({"Team": "db"}));
    // Predefined baselines are read-only; a bad key is refused naming it.
    let got = env
        .post(
            "/api/v1/baselines/AWS-DebianDefaultPatchBaseline/tags",
            admin,
            json!({"add": {"Team": "x"}}),
        )
        .await;
    assert!(got.0.is_client_error(), "{}", got.1);
    let got = env
        .post(&tags, admin, json!({"add": {"aws:reserved": "x"}}))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "ValidationError");
    assert!(message(&got).contains("aws:"), "{}", got.1);
    // An auditor reads them, and may not change them.
    let auditor = env.new_key("tag-reader", "auditor").await;
    assert_eq!(
        env.get(&tags, &auditor).await["tags"],
        json!({"Team": "db"})
    );
    let got = env.post(&tags, &auditor, json!({"remove": ["Team"]})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "Forbidden");
    let changes = env
        .audit()
        .await
        .into_iter()
        .filter(|e| e["action"] == "AddTagsToResource")
        .count();
    assert_eq!(changes, 2);
}

api_tests!(
    baseline_tags,
    health_and_authentication,
    roles,
    bad_input_changes_nothing,
    activations_and_the_agent_channel,
    baselines_versions_and_patch_groups,
);
