//! The `patchfleet` binary, run as a user runs it: exit statuses, output
//! shapes and error messages of `eval`, `vercmp` and `baseline validate`.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn patchfleet(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_patchfleet"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("patchfleet runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

const AT: &str = "2025-11-12T00:00:00Z";

#[test]
fn eval_json_is_ssm_shaped_and_exact() {
    let facts = repo("examples/facts/al2023-web-01.json");
    let baseline = repo("examples/baselines/critical-fast.yaml");
    let out = patchfleet(
        &[
            "eval",
            "--baseline",
            baseline.to_str().unwrap(),
            "--facts",
            facts.to_str().unwrap(),
            "--at",
            AT,
            "--output",
            "json",
            "--instance-id",
            "mi-0123456789abcdef0",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let state = &report["InstancePatchState"];
    assert_eq!(state["InstanceId"], "mi-0123456789abcdef0");
    assert_eq!(state["MissingCount"], 3);
    assert_eq!(state["InstalledRejectedCount"], 1);
    assert_eq!(state["InstalledOtherCount"], 5);
    assert_eq!(state["NotApplicableCount"], 1);
    assert_eq!(state["CriticalNonCompliantCount"], 1);
    assert_eq!(state["Operation"], "Scan");
    assert_eq!(report["Compliance"]["Status"], "NON_COMPLIANT");
    assert_eq!(report["Compliance"]["OverallSeverity"], "CRITICAL");
    let kernel = report["Patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["KBId"] == "kernel.x86_64")
        .unwrap();
    assert_eq!(kernel["State"], "Missing");
    assert_eq!(kernel["Title"], "kernel.x86_64:0:6.1.155-176.282.amzn2023");
    assert_eq!(kernel["CVEIds"], "CVE-2025-38352,CVE-2025-39682");
    // SSM's members are all there.
    for member in ["Title", "KBId", "Classification", "Severity", "State"] {
        assert!(kernel.get(member).is_some(), "{member}");
    }
}

#[test]
fn eval_install_prints_the_plan_and_table_output_explains() {
    let facts = repo("examples/facts/al2023-web-01.json");
    let out = patchfleet(
        &[
            "eval",
            "--predefined",
            "AWS-AmazonLinux2023DefaultPatchBaseline",
            "--facts",
            facts.to_str().unwrap(),
            "--at",
            AT,
            "--operation",
            "install",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Compliance: NON_COMPLIANT"), "{stdout}");
    assert!(
        stdout.contains("Install plan (Baseline): 3 package(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("openssl-libs.x86_64:1:3.0.8-1.amzn2023.0.16"),
        "{stdout}"
    );
    assert!(
        stdout.contains("InstalledOther packages not shown"),
        "{stdout}"
    );
}

#[test]
fn eval_with_a_baseline_override_picks_the_entry_for_the_node_os() {
    let dir = tempdir();
    let facts = repo("examples/facts/al2023-web-01.json");
    let doc = dir.join("override.json");
    std::fs::write(
        &doc,
        r#"[{"OperatingSystem": "AMAZON_LINUX_2023",
             "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]}, "ApproveAfterDays": 0}]}},
            {"OperatingSystem": "UBUNTU",
             "ApprovalRules": {"PatchRules": [{"PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["*"]}]}}]}}]"#,
    )
    .unwrap();
    let out = patchfleet(
        &[
            "eval",
            "--baseline-override",
            doc.to_str().unwrap(),
            "--facts",
            facts.to_str().unwrap(),
            "--at",
            AT,
            "--output",
            "json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Security only, no delay: kernel, openssl-libs and curl (x2); nginx's bugfix is not approved.
    assert_eq!(report["InstancePatchState"]["MissingCount"], 4);

    std::fs::write(
        &doc,
        r#"[{"OperatingSystem": "UBUNTU", "ApprovedPatches": ["x"]}]"#,
    )
    .unwrap();
    let out = patchfleet(
        &[
            "eval",
            "--baseline-override",
            doc.to_str().unwrap(),
            "--facts",
            facts.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("AMAZON_LINUX_2023"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn eval_errors_name_the_file_and_the_problem() {
    let dir = tempdir();
    let facts = dir.join("facts.json");
    std::fs::write(&facts, r#"{"format": "patchfleet.facts/1", "os": {"operating_system": "DEBIAN", "product": "Debian12"}, "installed": [{"name": "a", "arch": "amd64", "version": "1:"}]}"#).unwrap();
    let out = patchfleet(
        &[
            "eval",
            "--predefined",
            "AWS-DebianDefaultPatchBaseline",
            "--facts",
            facts.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("facts.json") && err.contains("installed[0]") && err.contains("'1:'"),
        "{err}"
    );

    let out = patchfleet(
        &[
            "eval",
            "--predefined",
            "AWS-NoSuchBaseline",
            "--facts",
            facts.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("AWS-NoSuchBaseline"));
}

#[test]
fn vercmp_single_batch_and_errors() {
    let out = patchfleet(&["vercmp", "rpm", "1.0~rc1-1", "1.0-1"], None);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "<\n");
    let out = patchfleet(&["vercmp", "deb", "1:1.0", "2.0"], None);
    assert_eq!(text(&out.stdout), ">\n");

    let out = patchfleet(
        &["vercmp", "deb", "--batch"],
        Some("1.0 1.0.0\n1.0 1.00\n2.0a 2.0+\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "<\n=\n<\n");

    let out = patchfleet(&["vercmp", "deb", "--batch"], Some("1.0 2.0\n1: 2.0\n"));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("line 2") && err.contains("'1:'"), "{err}");

    let out = patchfleet(&["vercmp", "rpm", "1.0-1-2", "1.0"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("1.0-1-2"));
}

#[test]
fn baseline_validate_exit_statuses() {
    let good = repo("examples/baselines/critical-fast.yaml");
    let out = patchfleet(&["baseline", "validate", good.to_str().unwrap()], None);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("valid: prod-al2023-critical-fast"));

    let out = patchfleet(
        &["baseline", "validate", "-"],
        Some(
            "Name: x\nOperatingSystem: AMAZON_LINUX_2\nApprovalRules:\n  PatchRules:\n    - PatchFilterGroup: {PatchFilters: [{Key: PRIORITY, Values: [Required]}]}\n      ApproveAfterDays: 400\n",
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("invalid") && stdout.contains("approveAfterDays") && stdout.contains("'x'"),
        "{stdout}"
    );

    let out = patchfleet(
        &["baseline", "validate", "-"],
        Some("{\"Name\": \"abc\", \"Bogus\": 1}"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("Bogus"), "{}", text(&out.stdout));
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patchfleet-cli-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
