//! `patchfleet dev` end to end: the `patchfleet` binary starts a server on
//! a data directory of its own, registers the real agent on an APT test bed
//! (`--root`), prints the node's compliance and the CLI settings, and
//! serves; an Install sent to that node is refused by its scan-only agent
//! (the bed's dpkg database unchanged), and SIGTERM stops it cleanly.

#[path = "../../pkg/tests/common/mod.rs"]
mod common;
mod support;

use common::{TempDir, build_apt_testbed};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fleet::Api;

const AGENT: &str = env!("CARGO_BIN_EXE_patchfleet-agent");

/// The value after `marker` on the first line holding it.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let line = text.lines().find(|l| l.contains(marker))?;
    Some(line.split_once(marker)?.1.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serves_a_scan_only_node() {
    let tmp = TempDir::new("dev");
    let bed = tmp.0.join("bed");
    build_apt_testbed(&bed);
    let root = bed.join("root");
    let dpkg_before = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin = Path::new(AGENT).with_file_name("patchfleet");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p patchfleet-cli`",
        bin.display()
    );
    let data = tmp.0.join("data");
    let out = tmp.0.join("dev.out");
    let mut dev = Command::new(&bin)
        .arg("dev")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--agent", AGENT])
        .arg("--root")
        .arg(&root)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap())
        .spawn()
        .unwrap();

    // The summary comes after the first scan.
    let deadline = Instant::now() + Duration::from_secs(120);
    let printed = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("patchfleet node patches") {
            break text;
        }
        if let Ok(Some(status)) = dev.try_wait() {
            panic!(
                "patchfleet dev exited ({status}): {text}{}",
                std::fs::read_to_string(out.with_extension("err")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no summary in 2 minutes: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let url = format!("https://127.0.0.1:{port}");
    assert_eq!(
        after(&printed, "Patchfleet server listening on "),
        Some(url.as_str())
    );
    let node = after(&printed, "This machine is ")
        .and_then(|s| s.split(',').next())
        .unwrap()
        .to_string();
    assert!(node.starts_with("mi-") && node.len() == 20, "{printed}");
    let key_id = after(&printed, "PATCHFLEET_ACCESS_KEY_ID=").unwrap();
    let secret = after(&printed, "PATCHFLEET_SECRET_ACCESS_KEY=").unwrap();
    let ca_pem = std::fs::read_to_string(data.join("ca.pem")).unwrap();
    let api = Api::new(url, &ca_pem, key_id, secret);

    // What it printed is what the server holds: the bed's upgrades missing.
    let view = api.get(&format!("/api/v1/nodes/{node}/patches")).await;
    let missing = view["counts"]["missing"].as_u64().unwrap();
    assert!(missing > 0, "{view}");
    assert!(
        printed.contains(&format!(
            "NON_COMPLIANT ({}): {missing} missing",
            view["overall_severity"].as_str().unwrap()
        )),
        "{printed}\n{view}"
    );

    // An Install reaches the node and is refused there.
    let c = api
        .post(
            "/api/v1/commands",
            json!({"document_name": "AWS-RunPatchBaseline", "instance_ids": [node],
                   "parameters": {"Operation": ["Install"], "RebootOption": ["NoReboot"]}}),
        )
        .await;
    let id = c["command_id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let command = loop {
        let c = api.get(&format!("/api/v1/commands/{id}")).await;
        if c["finished_at"].is_string() {
            break c;
        }
        assert!(Instant::now() < deadline, "never ended: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(command["status"], "Failed", "{command}");
    let inv = api
        .get(&format!("/api/v1/commands/{id}/invocations/{node}"))
        .await;
    assert_eq!(inv["status_details"], "Failed", "{inv}");
    assert!(
        inv["standard_error_content"]
            .as_str()
            .unwrap()
            .contains("Install refused, nothing was changed"),
        "{inv}"
    );
    let dpkg_after = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(dpkg_after == dpkg_before, "the scan-only node changed");

    // SIGTERM: the server stops and so does its agent.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dev.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = dev.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "patchfleet dev ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&tmp.0);
}
