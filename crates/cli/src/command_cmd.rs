//! `patchfleet command …` (Run Command) and `patchfleet compliance scan`:
//! send a patch document to targets under rate control, follow it live
//! with `--wait`, read its invocations and output, cancel it.

use crate::client::{Client, ClientArgs};
use crate::input::read_text;
use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use patchfleet_core::command::targets::parse_shorthand;
use serde_json::{Map, Value, json};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Who runs a command and how many at once (shared by `command send` and
/// `compliance scan`).
#[derive(Args, Clone, Debug, Default)]
pub struct Targeting {
    /// AWS CLI shorthand, repeatable (entries ANDed):
    /// `Key=tag:Environment,Values=Dev,Test`, `Key=tag:Patch Group,Values=web`,
    /// `Key=InstanceIds,Values=mi-…` (`*`: every node).
    #[arg(long = "targets", value_name = "Key=…,Values=…")]
    pub targets: Vec<String>,
    /// Node ids instead of targets.
    #[arg(long = "instance-ids", num_args = 1.., value_name = "NODE_ID")]
    pub instance_ids: Vec<String>,
    /// At most this many (or this percentage of) nodes at once; default 50.
    #[arg(long)]
    pub max_concurrency: Option<String>,
    /// Stop starting new nodes once more than this many (or this
    /// percentage) failed; default 0.
    #[arg(long)]
    pub max_errors: Option<String>,
    /// Follow the command until it ends: counts per status and a bar on
    /// standard error, the final command on standard output; the exit
    /// status is 0 only when it ended Success.
    #[arg(long)]
    pub wait: bool,
}

/// `command send`.
#[derive(Args)]
pub struct SendArgs {
    /// `RunPatchBaseline`, `AWS-RunPatchBaseline`,
    /// `AWS-RunPatchBaselineWithHooks`.
    #[arg(long)]
    document: String,
    /// `Operation=Install,RebootOption=NoReboot` (repeatable), or JSON
    /// (`{"Operation":["Scan"]}`).
    #[arg(long)]
    parameters: Vec<String>,
    #[command(flatten)]
    targeting: Targeting,
    /// Seconds to deliver the command before it gives up (30–2592000).
    #[arg(long)]
    timeout_seconds: Option<i64>,
    #[arg(long)]
    comment: Option<String>,
    /// An InstallOverrideList file (YAML): exactly these packages.
    #[arg(long)]
    install_override_list: Option<PathBuf>,
    /// A BaselineOverride file (JSON array of baselines, one per OS).
    #[arg(long)]
    baseline_override: Option<PathBuf>,
    #[arg(long)]
    output_s3_bucket_name: Option<String>,
    #[arg(long)]
    output_s3_key_prefix: Option<String>,
}

#[derive(Subcommand)]
pub enum CommandCommand {
    /// Send AWS-RunPatchBaseline or AWS-RunPatchBaselineWithHooks to targets.
    Send(Box<SendArgs>),
    /// Commands, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        /// Only commands that ran on this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// One command: status, counters, invocations per status.
    Show { command_id: String },
    /// A command's invocations (one per node).
    Invocations { command_id: String },
    /// An invocation's whole output (stdout, or stderr with --stream).
    Output {
        command_id: String,
        node_id: String,
        #[arg(long, default_value = "stdout")]
        stream: String,
    },
    /// Cancel a command, or only some nodes' invocations (--node).
    Cancel {
        command_id: String,
        #[arg(long = "node")]
        nodes: Vec<String>,
    },
}

pub fn command(cmd: &CommandCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    match cmd {
        CommandCommand::Send(a) => {
            let SendArgs {
                document,
                parameters,
                targeting,
                timeout_seconds,
                comment,
                install_override_list,
                baseline_override,
                output_s3_bucket_name,
                output_s3_key_prefix,
            } = a.as_ref();
            let mut body = targets_body(targeting)?;
            body.insert("document_name".into(), json!(document));
            body.insert(
                "parameters".into(),
                Value::Object(parse_parameters(parameters)?),
            );
            for (k, v) in [
                ("comment", comment.as_ref().map(|s| json!(s))),
                ("timeout_seconds", timeout_seconds.map(|t| json!(t))),
                (
                    "output_s3_bucket_name",
                    output_s3_bucket_name.as_ref().map(|s| json!(s)),
                ),
                (
                    "output_s3_key_prefix",
                    output_s3_key_prefix.as_ref().map(|s| json!(s)),
                ),
            ] {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            }
            for (k, file) in [
                ("install_override_list", install_override_list),
                ("baseline_override", baseline_override),
            ] {
                if let Some(f) = file {
                    body.insert(k.into(), json!(read_text(f)?));
                }
            }
            let sent = client.post("/api/v1/commands", &Value::Object(body))?;
            finish(&client, sent, targeting.wait)
        }
        CommandCommand::List { status, node } => {
            let mut q = vec![];
            if let Some(s) = status {
                q.push(format!("status={}", enc(s)));
            }
            if let Some(n) = node {
                q.push(format!("node_id={}", enc(n)));
            }
            let v = client.get(&format!("/api/v1/commands?{}", q.join("&")))?;
            if client.is_table() {
                let rows: Vec<Value> = items(&v)
                    .iter()
                    .map(|c| {
                        json!({"command_id": c["command_id"], "document": c["document_name"],
                               "operation": c["parameters"]["Operation"][0],
                               "status": c["status"], "details": c["status_details"],
                               "targets": c["target_count"], "completed": c["completed_count"],
                               "errors": c["error_count"], "requested": c["requested_date_time"]})
                    })
                    .collect();
                client.print(json!({ "items": rows }))?;
            } else {
                client.print(v)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        CommandCommand::Show { command_id } => {
            client.print(client.get(&format!("/api/v1/commands/{}", enc(command_id)))?)?;
            Ok(ExitCode::SUCCESS)
        }
        CommandCommand::Invocations { command_id } => {
            let v = client.get(&format!(
                "/api/v1/commands/{}/invocations?limit=1000",
                enc(command_id)
            ))?;
            if client.is_table() {
                let rows: Vec<Value> = items(&v)
                    .iter()
                    .map(|i| {
                        json!({"node_id": i["node_id"], "name": i["instance_name"],
                               "status": i["status"], "details": i["status_details"],
                               "code": i["response_code"], "started": i["execution_start_date_time"],
                               "ended": i["execution_end_date_time"]})
                    })
                    .collect();
                client.print(json!({ "items": rows }))?;
            } else {
                client.print(v)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        CommandCommand::Output {
            command_id,
            node_id,
            stream,
        } => {
            let text = client.get_text(&format!(
                "/api/v1/commands/{}/invocations/{}/output?stream={}",
                enc(command_id),
                enc(node_id),
                enc(stream)
            ))?;
            print!("{text}");
            if !text.ends_with('\n') && !text.is_empty() {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        CommandCommand::Cancel { command_id, nodes } => {
            let v = client.post(
                &format!("/api/v1/commands/{}/cancel", enc(command_id)),
                &json!({ "node_ids": nodes }),
            )?;
            client.print(v)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `patchfleet compliance scan`: a Scan command.
pub fn scan(targeting: &Targeting, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    let mut body = if targeting.targets.is_empty() && targeting.instance_ids.is_empty() {
        // Every registered node.
        let mut m = Map::new();
        for (k, v) in [
            ("max_concurrency", &targeting.max_concurrency),
            ("max_errors", &targeting.max_errors),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        m
    } else {
        targets_body(targeting)?
    };
    if let Some(ids) = body.remove("instance_ids") {
        body.insert("node_ids".into(), ids);
    }
    let sent = client.post("/api/v1/compliance/scan", &Value::Object(body))?;
    finish(&client, sent, targeting.wait)
}

fn targets_body(t: &Targeting) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    match (t.targets.is_empty(), t.instance_ids.is_empty()) {
        (false, false) => bail!("give --targets or --instance-ids, not both"),
        (true, true) => bail!("give --targets (Key=…,Values=…) or --instance-ids"),
        (false, true) => {
            let parsed = parse_shorthand(&t.targets).map_err(|e| anyhow!("--targets: {e}"))?;
            body.insert("targets".into(), serde_json::to_value(parsed)?);
        }
        (true, false) => {
            body.insert("instance_ids".into(), json!(t.instance_ids));
        }
    }
    for (k, v) in [
        ("max_concurrency", &t.max_concurrency),
        ("max_errors", &t.max_errors),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), json!(v));
        }
    }
    Ok(body)
}

/// `Operation=Install,RebootOption=NoReboot` (the AWS CLI's shorthand, one
/// value each), repeatable, or a JSON object of lists.
fn parse_parameters(args: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for a in args {
        if a.trim_start().starts_with('{') {
            let v: Map<String, Value> =
                serde_json::from_str(a).map_err(|e| anyhow!("--parameters {a}: {e}"))?;
            out.extend(v);
            continue;
        }
        for pair in a.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("--parameters '{pair}': expected Name=Value"))?;
            out.insert(k.trim().to_string(), json!([v.trim()]));
        }
    }
    Ok(out)
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn enc(s: &str) -> String {
    crate::verbs::enc(s)
}

/// Prints the command (after following it with `--wait`); exit status 1
/// when a followed command did not end in Success.
fn finish(client: &Client, sent: Value, wait: bool) -> Result<ExitCode> {
    if !wait {
        client.print(sent)?;
        return Ok(ExitCode::SUCCESS);
    }
    let id = sent["command_id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no command_id"))?
        .to_string();
    let tty = std::io::stderr().is_terminal();
    let mut last = String::new();
    let mut current = sent;
    loop {
        let line = progress_line(&current);
        if line != last {
            let mut err = std::io::stderr();
            if tty {
                let _ = write!(err, "\r\x1b[2K{line}");
            } else {
                let _ = writeln!(err, "{line}");
            }
            let _ = err.flush();
            last = line;
        }
        if current["finished_at"].is_string() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        current = client.get(&format!("/api/v1/commands/{}", enc(&id)))?;
    }
    if tty {
        eprintln!();
    }
    let status = current["status"].as_str().unwrap_or_default().to_string();
    let details = current["status_details"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    client.print(current)?;
    if status == "Success" {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("patchfleet: command {id} ended {status} ({details})");
        Ok(ExitCode::from(1))
    }
}

/// `[#######-------] 3/5 done · InProgress 2 · Success 3 — InProgress`
fn progress_line(c: &Value) -> String {
    const WIDTH: usize = 24;
    let total = c["target_count"].as_u64().unwrap_or(0);
    let done = c["completed_count"].as_u64().unwrap_or(0);
    let filled = if total == 0 {
        WIDTH
    } else {
        (done as usize * WIDTH) / total as usize
    };
    let counts: Vec<String> = c["invocation_counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} {}", v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "[{}{}] {done}/{total} done{}{} — {}",
        "#".repeat(filled.min(WIDTH)),
        "-".repeat(WIDTH - filled.min(WIDTH)),
        if counts.is_empty() { "" } else { " · " },
        counts.join(" · "),
        c["status_details"].as_str().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_in_shorthand_and_json() {
        let p = parse_parameters(&[
            "Operation=Install,RebootOption=NoReboot".into(),
            r#"{"SnapshotId":[""]}"#.into(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"Operation": ["Install"], "RebootOption": ["NoReboot"], "SnapshotId": [""]})
        );
        let e = parse_parameters(&["Operation".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected Name=Value"), "{e}");
    }

    #[test]
    fn progress_is_a_bar_and_counts() {
        let line = progress_line(&json!({
            "target_count": 4, "completed_count": 1, "status_details": "InProgress",
            "invocation_counts": {"InProgress": 2, "Pending": 1, "Success": 1}
        }));
        assert_eq!(
            line,
            "[######------------------] 1/4 done · InProgress 2 · Pending 1 · Success 1 — InProgress"
        );
    }
}
