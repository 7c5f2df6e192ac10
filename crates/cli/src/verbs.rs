//! The client verbs: each one request (or a few) to `/api/v1`, printed
//! through `client::output` (`--output table|json|yaml`, `--query`).

use crate::client::profile::{self, Profile};
use crate::client::{Client, ClientArgs};
use crate::input::read_text;
use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// `patchfleet configure`: writes a profile (like `aws configure`).
#[derive(Args)]
pub struct ConfigureArgs {
    #[arg(long, default_value = "default")]
    profile: String,
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    access_key_id: Option<String>,
    /// The secret; better from standard input with `--secret-stdin`.
    #[arg(long)]
    secret_access_key: Option<String>,
    #[arg(long)]
    secret_stdin: bool,
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

pub fn configure(a: &ConfigureArgs) -> Result<ExitCode> {
    let path = profile::config_path();
    let mut file = profile::read(&path)?;
    let p = file
        .profiles
        .entry(a.profile.clone())
        .or_insert_with(Profile::default);
    if let Some(s) = &a.server {
        p.server = Some(s.clone());
    }
    if let Some(s) = &a.access_key_id {
        p.access_key_id = Some(s.clone());
    }
    if a.secret_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        p.secret_access_key = Some(line.trim().to_string());
    } else if let Some(s) = &a.secret_access_key {
        p.secret_access_key = Some(s.clone());
    }
    if let Some(c) = &a.ca_file {
        p.ca_file = Some(std::fs::canonicalize(c).unwrap_or_else(|_| c.clone()));
    }
    profile::write(&path, &file)?;
    println!("profile '{}' written to {}", a.profile, path.display());
    Ok(ExitCode::SUCCESS)
}

fn ok(client: &Client, v: Value) -> Result<ExitCode> {
    client.print(v)?;
    Ok(ExitCode::SUCCESS)
}

fn done(client: &Client, what: &str) -> Result<ExitCode> {
    client.print(json!({ "result": what }))?;
    Ok(ExitCode::SUCCESS)
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn read_json_or_yaml(path: &std::path::Path) -> Result<Value> {
    let text = read_text(path)?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    } else {
        serde_yaml_ng::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }
}

#[derive(Subcommand)]
pub enum ActivationCommand {
    /// Create an activation: an id and a code (shown once) for registering nodes.
    Create {
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        default_instance_name: Option<String>,
        #[arg(long)]
        registration_limit: Option<i64>,
        /// RFC 3339; default 24 hours from now.
        #[arg(long)]
        expiration_date: Option<String>,
        /// `Key=Value`, repeatable: tags every node it registers gets.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    List,
    Delete {
        activation_id: String,
    },
}

fn tags_map(tags: &[String]) -> Result<serde_json::Map<String, Value>> {
    tags.iter()
        .map(|t| {
            t.split_once('=')
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .ok_or_else(|| anyhow!("--tag '{t}': expected Key=Value"))
        })
        .collect()
}

pub fn activation(cmd: &ActivationCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    match cmd {
        ActivationCommand::Create {
            description,
            default_instance_name,
            registration_limit,
            expiration_date,
            tags,
        } => {
            let mut body = json!({"description": description, "tags": tags_map(tags)?});
            if let Some(n) = default_instance_name {
                body["default_instance_name"] = json!(n);
            }
            if let Some(l) = registration_limit {
                body["registration_limit"] = json!(l);
            }
            if let Some(e) = expiration_date {
                body["expiration_date"] = json!(e);
            }
            ok(&client, client.post("/api/v1/activations", &body)?)
        }
        ActivationCommand::List => ok(&client, client.get("/api/v1/activations")?),
        ActivationCommand::Delete { activation_id } => {
            client.delete(&format!("/api/v1/activations/{}", enc(activation_id)))?;
            done(&client, "deleted")
        }
    }
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Managed nodes, with ping status and platform.
    List {
        /// `Key=Value` tag filter, repeatable (all must match).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        patch_group: Option<String>,
        #[arg(long)]
        ping_status: Option<String>,
    },
    Show {
        node_id: String,
    },
    /// Each patch's state and reason, and the summary.
    Patches {
        node_id: String,
    },
    /// When the node's compliance summary changed.
    Timeline {
        node_id: String,
    },
    /// Add (`Key=Value`) or remove (`--remove Key`) tags.
    Tag {
        node_id: String,
        tags: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Deregister: the node's certificate is refused from now on.
    Deregister {
        node_id: String,
    },
}

pub fn node(cmd: &NodeCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    match cmd {
        NodeCommand::List {
            tags,
            patch_group,
            ping_status,
        } => {
            let mut q = vec![];
            if !tags.is_empty() {
                q.push(format!("tags={}", enc(&tags.join(","))));
            }
            if let Some(g) = patch_group {
                q.push(format!("patch_group={}", enc(g)));
            }
            if let Some(p) = ping_status {
                q.push(format!("ping_status={}", enc(p)));
            }
            let v = client.get(&format!("/api/v1/nodes?{}", q.join("&")))?;
            let rows: Vec<Value> = v["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|n| {
                            json!({"node_id": n["node_id"], "name": n["name"],
                                   "ping_status": n["ping_status"], "product": n["product"],
                                   "patch_group": n["patch_group"], "ip_address": n["ip_address"],
                                   "agent_version": n["agent_version"]})
                        })
                        .collect()
                })
                .unwrap_or_default();
            if client.query.is_some() || client.format != crate::client::output::Format::Table {
                ok(&client, v)
            } else {
                ok(&client, json!({ "items": rows }))
            }
        }
        NodeCommand::Show { node_id } => ok(
            &client,
            client.get(&format!("/api/v1/nodes/{}", enc(node_id)))?,
        ),
        NodeCommand::Patches { node_id } => {
            let v = client.get(&format!("/api/v1/nodes/{}/patches", enc(node_id)))?;
            if client.query.is_some() || client.format != crate::client::output::Format::Table {
                return ok(&client, v);
            }
            let patches: Vec<Value> = v["report"]["Patches"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            json!({"Title": p["Title"], "State": p["State"],
                                   "Classification": p["Classification"], "Severity": p["Severity"],
                                   "Reason": p["Reason"]})
                        })
                        .collect()
                })
                .unwrap_or_default();
            println!(
                "{} {} ({}), baseline {} v{}",
                v["node_id"].as_str().unwrap_or_default(),
                v["compliance_status"].as_str().unwrap_or_default(),
                v["overall_severity"].as_str().unwrap_or_default(),
                v["baseline_id"].as_str().unwrap_or_default(),
                v["baseline_version"]
            );
            ok(&client, json!({ "items": patches }))
        }
        NodeCommand::Timeline { node_id } => ok(
            &client,
            client.get(&format!("/api/v1/nodes/{}/timeline", enc(node_id)))?,
        ),
        NodeCommand::Tag {
            node_id,
            tags,
            remove,
        } => ok(
            &client,
            client.post(
                &format!("/api/v1/nodes/{}/tags", enc(node_id)),
                &json!({"add": tags_map(tags)?, "remove": remove}),
            )?,
        ),
        NodeCommand::Deregister { node_id } => {
            client.post(
                &format!("/api/v1/nodes/{}/deregister", enc(node_id)),
                &json!({}),
            )?;
            done(&client, "deregistered")
        }
    }
}

/// The server-side baseline verbs (`baseline validate` is offline).
#[derive(Subcommand)]
pub enum BaselineClientCommand {
    /// Create a baseline from a file (SSM member names, JSON or YAML).
    Create {
        file: PathBuf,
    },
    Get {
        baseline_id: String,
        #[arg(long)]
        version: Option<i64>,
    },
    List {
        #[arg(long)]
        operating_system: Option<String>,
    },
    /// Save a new version from a file.
    Update {
        baseline_id: String,
        file: PathBuf,
        /// Refuse when the baseline moved past this version meanwhile.
        #[arg(long)]
        expected_version: Option<i64>,
    },
    Delete {
        baseline_id: String,
    },
    Versions {
        baseline_id: String,
    },
    /// What changed between two versions.
    Diff {
        baseline_id: String,
        from: i64,
        to: i64,
    },
    /// A new version equal to an old one.
    Revert {
        baseline_id: String,
        #[arg(long)]
        to_version: i64,
    },
    /// Make it the default baseline of its operating system.
    SetDefault {
        baseline_id: String,
    },
    /// Show (no arguments), add (`Key=Value`) or remove (`--remove Key`) a
    /// custom baseline's tags.
    Tag {
        baseline_id: String,
        tags: Vec<String>,
        #[arg(long)]
        remove: Vec<String>,
    },
    /// What-if: which nodes and patches would change if FILE were saved
    /// (over --baseline-id, or its BaselineId; else as its OS's default).
    Preview {
        file: PathBuf,
        #[arg(long)]
        baseline_id: Option<String>,
    },
}

pub fn baseline(cmd: &BaselineClientCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    let path = |id: &str| format!("/api/v1/baselines/{}", enc(id));
    match cmd {
        BaselineClientCommand::Create { file } => ok(
            &client,
            client.post("/api/v1/baselines", &read_json_or_yaml(file)?)?,
        ),
        BaselineClientCommand::Get {
            baseline_id,
            version,
        } => {
            let mut p = path(baseline_id);
            if let Some(v) = version {
                p.push_str(&format!("?version={v}"));
            }
            ok(&client, client.get(&p)?)
        }
        BaselineClientCommand::List { operating_system } => {
            let mut p = "/api/v1/baselines".to_string();
            if let Some(os) = operating_system {
                p.push_str(&format!("?operating_system={}", enc(os)));
            }
            let v = client.get(&p)?;
            if client.query.is_some() || client.format != crate::client::output::Format::Table {
                return ok(&client, v);
            }
            let rows: Vec<Value> = v["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|b| {
                            json!({"baseline_id": b["baseline_id"], "name": b["name"],
                                   "operating_system": b["operating_system"],
                                   "version": b["current_version"], "default": b["default_for_os"],
                                   "patch_groups": b["patch_groups"]})
                        })
                        .collect()
                })
                .unwrap_or_default();
            ok(&client, json!({ "items": rows }))
        }
        BaselineClientCommand::Update {
            baseline_id,
            file,
            expected_version,
        } => {
            let mut p = path(baseline_id);
            if let Some(v) = expected_version {
                p.push_str(&format!("?expected_version={v}"));
            }
            ok(&client, client.put(&p, &read_json_or_yaml(file)?)?)
        }
        BaselineClientCommand::Delete { baseline_id } => {
            client.delete(&path(baseline_id))?;
            done(&client, "deleted")
        }
        BaselineClientCommand::Versions { baseline_id } => ok(
            &client,
            client.get(&format!("{}/versions", path(baseline_id)))?,
        ),
        BaselineClientCommand::Diff {
            baseline_id,
            from,
            to,
        } => ok(
            &client,
            client.get(&format!("{}/diff?from={from}&to={to}", path(baseline_id)))?,
        ),
        BaselineClientCommand::Revert {
            baseline_id,
            to_version,
        } => ok(
            &client,
            client.post(
                &format!("{}/revert", path(baseline_id)),
                &json!({ "to_version": to_version }),
            )?,
        ),
        BaselineClientCommand::Preview { file, baseline_id } => {
            let v = client.post(
                "/api/v1/baselines/preview",
                &json!({"document": read_json_or_yaml(file)?, "baseline_id": baseline_id}),
            )?;
            if client.query.is_some() || client.format != crate::client::output::Format::Table {
                return ok(&client, v);
            }
            println!(
                "{} of {} nodes judged would change",
                v["nodes_changed"], v["nodes_judged"]
            );
            let rows: Vec<Value> = v["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|n| {
                    n["patches"].as_array().into_iter().flatten().map(move |p| {
                        json!({"node_id": n["node_id"], "patch": p["title"],
                               "before": p["before"], "after": p["after"]})
                    })
                })
                .collect();
            ok(&client, json!({ "items": rows }))
        }
        BaselineClientCommand::SetDefault { baseline_id } => ok(
            &client,
            client.post(&format!("{}/default", path(baseline_id)), &json!({}))?,
        ),
        BaselineClientCommand::Tag {
            baseline_id,
            tags,
            remove,
        } => {
            let p = format!("{}/tags", path(baseline_id));
            if tags.is_empty() && remove.is_empty() {
                return ok(&client, client.get(&p)?);
            }
            ok(
                &client,
                client.post(&p, &json!({"add": tags_map(tags)?, "remove": remove}))?,
            )
        }
    }
}

#[derive(Subcommand)]
pub enum PatchGroupCommand {
    List,
    /// Register a baseline for a patch group (one per OS per group).
    Register {
        patch_group: String,
        #[arg(long)]
        baseline_id: String,
    },
    Deregister {
        patch_group: String,
        #[arg(long)]
        baseline_id: String,
    },
}

pub fn patch_group(cmd: &PatchGroupCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    match cmd {
        PatchGroupCommand::List => ok(&client, client.get("/api/v1/patch-groups")?),
        PatchGroupCommand::Register {
            patch_group,
            baseline_id,
        } => ok(
            &client,
            client.post(
                "/api/v1/patch-groups",
                &json!({"patch_group": patch_group, "baseline_id": baseline_id}),
            )?,
        ),
        PatchGroupCommand::Deregister {
            patch_group,
            baseline_id,
        } => {
            client.delete(&format!(
                "/api/v1/patch-groups/{}/{}",
                enc(patch_group),
                enc(baseline_id)
            ))?;
            done(&client, "deregistered")
        }
    }
}

#[derive(Subcommand)]
pub enum ComplianceCommand {
    /// Nodes compliant, non-compliant (by severity) and not evaluated.
    Summary {
        /// patch_group or operating_system
        #[arg(long)]
        group_by: Option<String>,
    },
    /// Nodes by compliance status, severity, patch group.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        patch_group: Option<String>,
    },
    /// Send a Scan command (every registered node without --targets or
    /// --instance-ids).
    Scan {
        #[command(flatten)]
        targeting: crate::command_cmd::Targeting,
    },
}

pub fn compliance(cmd: &ComplianceCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    match cmd {
        ComplianceCommand::Summary { group_by } => {
            let mut p = "/api/v1/compliance/summary".to_string();
            if let Some(g) = group_by {
                p.push_str(&format!("?group_by={}", enc(g)));
            }
            ok(&client, client.get(&p)?)
        }
        ComplianceCommand::List {
            status,
            severity,
            patch_group,
        } => {
            let mut q = vec![];
            for (k, v) in [
                ("status", status),
                ("severity", severity),
                ("patch_group", patch_group),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", enc(v)));
                }
            }
            let v = client.get(&format!("/api/v1/compliance/nodes?{}", q.join("&")))?;
            ok(&client, v)
        }
        ComplianceCommand::Scan { targeting } => crate::command_cmd::scan(targeting, c),
    }
}

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    action: Option<String>,
    /// An object id (node, baseline, activation, key).
    #[arg(long)]
    object: Option<String>,
    /// RFC 3339.
    #[arg(long)]
    since: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

pub fn audit(a: &AuditArgs, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    let mut q = vec![format!("limit={}", a.limit)];
    for (k, v) in [
        ("actor", &a.actor),
        ("action", &a.action),
        ("object", &a.object),
        ("since", &a.since),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", enc(v)));
        }
    }
    ok(
        &client,
        client.get(&format!("/api/v1/audit?{}", q.join("&")))?,
    )
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key (the secret is shown once).
    Create {
        #[arg(long)]
        name: String,
        /// admin, operator or auditor
        #[arg(long)]
        role: String,
    },
    List,
    Delete {
        access_key_id: String,
    },
}

pub fn api_key(cmd: &ApiKeyCommand, c: &ClientArgs) -> Result<ExitCode> {
    let client = Client::new(c)?;
    match cmd {
        ApiKeyCommand::Create { name, role } => ok(
            &client,
            client.post("/api/v1/api-keys", &json!({"name": name, "role": role}))?,
        ),
        ApiKeyCommand::List => ok(&client, client.get("/api/v1/api-keys")?),
        ApiKeyCommand::Delete { access_key_id } => {
            client.delete(&format!("/api/v1/api-keys/{}", enc(access_key_id)))?;
            done(&client, "deleted")
        }
    }
}
