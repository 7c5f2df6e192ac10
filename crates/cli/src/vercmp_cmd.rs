//! `patchfleet vercmp deb|rpm A B`, and `--batch` reading `A B` pairs from
//! standard input (one per line) for scripts that compare many versions.

use anyhow::{Context, Result, anyhow};
use clap::Args;
use patchfleet_core::version::{self, Scheme};
use std::cmp::Ordering;
use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

#[derive(Args)]
pub struct VercmpArgs {
    /// Version scheme: deb or rpm.
    scheme: Scheme,
    /// First version (omit with --batch).
    a: Option<String>,
    /// Second version (omit with --batch).
    b: Option<String>,
    /// Read "A B" pairs from standard input and print one result per line.
    #[arg(long, conflicts_with_all = ["a", "b"])]
    batch: bool,
}

fn symbol(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

pub fn run(args: &VercmpArgs) -> Result<ExitCode> {
    if !args.batch {
        let (Some(a), Some(b)) = (&args.a, &args.b) else {
            return Err(anyhow!("give two versions, or --batch"));
        };
        println!("{}", symbol(version::compare(args.scheme, a, b)?));
        return Ok(ExitCode::SUCCESS);
    }
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (n, line) in stdin.lines().enumerate() {
        let line = line.context("reading standard input")?;
        let mut parts = line.split_whitespace();
        let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(anyhow!(
                "line {}: expected two versions separated by white space, got '{line}'",
                n + 1
            ));
        };
        let o = version::compare(args.scheme, a, b).with_context(|| format!("line {}", n + 1))?;
        writeln!(out, "{}", symbol(o))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
