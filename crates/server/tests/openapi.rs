//! The OpenAPI document lists exactly operations the router serves: every
//! row of `api::openapi::ROUTES` is called on a live server (HTTPS on
//! loopback) and must reach a handler — an answer of the API's own shape,
//! never the router's bare 404 or a 405.

use patchfleet_server::api::openapi::ROUTES;
use patchfleet_server::config::Config;
use patchfleet_server::server::start;
use reqwest::{Method, StatusCode};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_reaches_a_handler() {
    let dir = std::env::temp_dir().join(format!("patchfleet-openapi-{}", std::process::id()));
    let running = start(Config {
        data_dir: dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    })
    .await
    .unwrap();
    let key = running.bootstrap_key.clone().unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(running.ca_pem.as_bytes()).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for (method, path, _, _) in ROUTES {
        let concrete = path
            .replace("{id}", "pb-00000000000000000")
            .replace("{group}", "nogroup")
            .replace("{baseline}", "pb-00000000000000000")
            .replace("{node}", "mi-00000000000000000");
        let m: Method = method.to_uppercase().parse().unwrap();
        let mut rb = http
            .request(m.clone(), format!("{}/api/v1{concrete}", running.url()))
            .bearer_auth(format!("{}:{}", key.access_key_id, key.secret_access_key));
        if matches!(m, Method::POST | Method::PUT) {
            rb = rb.json(&serde_json::json!({}));
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let v: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{method} {path}: the router's 404, no handler"));
            // The API's error shape: a handler answered, naming what is missing.
            assert!(
                v["code"].is_string() && v["message"].is_string(),
                "{method} {path}: {v}"
            );
        }
    }
    let doc: serde_json::Value = http
        .get(format!("{}/api/v1/openapi.json", running.url()))
        .bearer_auth(format!("{}:{}", key.access_key_id, key.secret_access_key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/baselines/{id}/diff"]["get"].is_object());
    running.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
