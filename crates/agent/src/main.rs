//! `patchfleet-agent`: the node side of Patchfleet. `facts` prints what
//! the node has and what its repositories offer; `scan` judges those facts
//! against a baseline with the same engine as the server and `patchfleet
//! eval` (both only read the node; apt-get update runs only with
//! `--refresh`); `install` installs the approved updates. With a server,
//! `register` once, then `run`: heartbeats, scans, and the Run Command
//! invocations the server sends. See docs/agent.md.

mod baseline_arg;
mod channel;
mod collect;
mod document_step;
mod execute_cmd;
mod executor;
mod facts_file;
mod hooks;
mod install_cmd;
mod invocation_report;
mod invocations;
mod journal;
mod patch_install;
mod patch_states;
mod register_cmd;
mod run_cmd;
mod scan_cmd;
mod server_link;
mod session;
mod step_output;

use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "patchfleet-agent",
    version,
    about = "The Patchfleet agent: a node's package facts and patch compliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the node's facts (installed packages, available updates) as JSON.
    Facts(FactsArgs),
    /// Judge the node's facts against a baseline and print the verdicts.
    Scan(scan_cmd::ScanArgs),
    /// Install the baseline's approved updates, then scan and report.
    Install(install_cmd::InstallArgs),
    /// Register this node with a server (once): makes the node's key and
    /// gets its certificate; prints the node id.
    Register(register_cmd::RegisterArgs),
    /// Run as the server's agent: heartbeats, scans and patch commands on
    /// request (exit 3 when the server no longer accepts the node).
    Run(run_cmd::RunArgs),
    /// (Internal: the scan `run` starts in a child process.)
    #[command(hide = true)]
    CollectForServer(run_cmd::CollectForServerArgs),
    /// (Internal: the document step of an invocation, in a child process.)
    #[command(hide = true)]
    RunDocument(document_step::DocumentStepArgs),
    /// (Tests and diagnosis: one invocation from a file, without a server.)
    #[command(hide = true)]
    Execute(execute_cmd::ExecuteArgs),
}

/// Where and how facts are collected (shared by `facts` and `scan`).
#[derive(Args, Clone, Debug)]
pub struct CollectArgs {
    /// The system's root directory: `/` on a node, a mounted image or a
    /// test bed otherwise.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Refresh the repository metadata first (apt-get update); never by default.
    #[arg(long)]
    pub refresh: bool,
    /// The node's boot time (RFC 3339); default: /proc/stat when the root
    /// is `/`, unknown otherwise.
    #[arg(long)]
    pub boot_time: Option<Timestamp>,
    /// The running kernel's release (`uname -r`); default: the kernel's
    /// own when the root is `/`, unknown otherwise.
    #[arg(long)]
    pub kernel_release: Option<String>,
    /// The os-release file that names the system; default: the root's
    /// `etc/os-release`, else `usr/lib/os-release`.
    #[arg(long)]
    pub os_release: Option<PathBuf>,
}

#[derive(Args)]
struct FactsArgs {
    #[command(flatten)]
    collect: CollectArgs,
    /// Print only the inventory's content hash (`sha256:…`): equal for
    /// nodes with the same inventory, whatever their boot time.
    #[arg(long)]
    hash: bool,
}

fn main() -> ExitCode {
    // One crypto provider for every TLS user in the process (rustls
    // cannot choose on its own if a second one is ever linked).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Facts(args) => facts(&args),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Install(args) => install_cmd::run(&args),
        Command::Register(args) => register_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::CollectForServer(args) => run_cmd::collect_for_server(&args),
        Command::RunDocument(args) => document_step::run(&args),
        Command::Execute(args) => execute_cmd::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("patchfleet-agent: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn facts(args: &FactsArgs) -> anyhow::Result<ExitCode> {
    let facts = collect::collect(&args.collect)?;
    if args.hash {
        emit(&format!("{}\n", facts.content_hash()))?;
    } else {
        emit(&format!("{}\n", facts.to_json_pretty()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to standard output; a reader that went away (`| head`) is
/// not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing to standard output"))
        }
        _ => Ok(()),
    }
}
