//! zypper (SUSE): pure parsers of `zypper --xmlout` output, see [`parse`].
//!
//! Run zypper always with `--root <dir>` on a test bed: without it, even
//! `zypper --help` of a subcommand takes the host's `/run/zypp.pid`.

pub mod parse;

pub use parse::{SYSTEM_REPOSITORY, ZypperParseError, parse_list_patches, parse_search};

/// Arguments (after `zypper --root R --non-interactive`) whose output
/// [`parse_list_patches`] reads.
pub const LIST_PATCHES_ARGS: &[&str] = &["--xmlout", "list-patches", "--all"];

/// Arguments whose output [`parse_search`] reads (every package of every
/// enabled repository, one line per version).
pub const SEARCH_ARGS: &[&str] = &["--xmlout", "search", "-s"];
