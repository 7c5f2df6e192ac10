//! `patchfleet`: the server (`server`, `dev`), the client verbs that call
//! its API (`node`, `baseline`, `compliance`, …) and the offline tools
//! (`eval`, `vercmp`, `baseline validate`). Each subcommand lives in its own
//! module; this file only parses the command line and dispatches.

mod baseline_cmd;
mod client;
mod command_cmd;
mod dev;
mod eval_cmd;
mod input;
mod server_cmd;
mod verbs;
mod vercmp_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "patchfleet",
    version,
    about = "Patch and vulnerability management for Linux fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate a node's facts against a baseline, offline.
    Eval(eval_cmd::EvalArgs),
    /// Compare two package versions the way dpkg or rpm does.
    Vercmp(vercmp_cmd::VercmpArgs),
    /// Baselines: on the server (create, get, list, update, delete,
    /// versions, diff, revert, set-default) and offline (validate).
    Baseline {
        #[command(subcommand)]
        command: baseline_cmd::BaselineCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Run the server.
    Server(server_cmd::ServerArgs),
    /// A server with a temporary database, this machine registered and
    /// scanned by a local scan-only agent.
    Dev(server_cmd::DevArgs),
    /// Write a client profile (server, API key, CA), like `aws configure`.
    Configure(verbs::ConfigureArgs),
    /// Activations for registering nodes.
    Activation {
        #[command(subcommand)]
        command: verbs::ActivationCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Managed nodes.
    Node {
        #[command(subcommand)]
        command: verbs::NodeCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Patch groups: one baseline per operating system per group.
    PatchGroup {
        #[command(subcommand)]
        command: verbs::PatchGroupCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// Fleet compliance.
    Compliance {
        #[command(subcommand)]
        command: verbs::ComplianceCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// The audit log: who changed what, when.
    /// Run Command: send patch documents to targets, follow, cancel.
    #[command(name = "command")]
    Run {
        #[command(subcommand)]
        command: command_cmd::CommandCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    Audit {
        #[command(flatten)]
        args: verbs::AuditArgs,
        #[command(flatten)]
        client: client::ClientArgs,
    },
    /// API keys (admin only).
    ApiKey {
        #[command(subcommand)]
        command: verbs::ApiKeyCommand,
        #[command(flatten)]
        client: client::ClientArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Vercmp(args) => vercmp_cmd::run(&args),
        Command::Baseline { command, client } => baseline_cmd::run(&command, &client),
        Command::Server(args) => server_cmd::run_server(&args),
        Command::Dev(args) => server_cmd::run_dev(&args),
        Command::Configure(args) => verbs::configure(&args),
        Command::Activation { command, client } => verbs::activation(&command, &client),
        Command::Node { command, client } => verbs::node(&command, &client),
        Command::PatchGroup { command, client } => verbs::patch_group(&command, &client),
        Command::Compliance { command, client } => verbs::compliance(&command, &client),
        Command::Run { command, client } => command_cmd::command(&command, &client),
        Command::Audit { args, client } => verbs::audit(&args, &client),
        Command::ApiKey { command, client } => verbs::api_key(&command, &client),
    };
    match result {
        Ok(code) => code,
        // The server said no: its one-line reason, status 1.
        Err(err) if err.downcast_ref::<client::ServerError>().is_some() => {
            eprintln!("patchfleet: {err}");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("patchfleet: {err:#}");
            ExitCode::from(2)
        }
    }
}
