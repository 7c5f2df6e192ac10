//! zypper (SUSE): the scan ([`run`]), the install ([`install`]) and the
//! parsers of zypper's `--xmlout` output ([`parse`]); [`Zypper`] is the
//! [`crate::backend::Backend`].
//!
//! The facts come from the rpm database and libzypp's raw metadata cache
//! (the same rpm-md readers as dnf's); zypper itself runs only to refresh,
//! to simulate and to install. It runs always with `--root <dir>`: without
//! it, even `zypper --help` of a subcommand takes the host's
//! `/run/zypp.pid`.

mod backend;
pub mod install;
pub mod parse;
pub mod run;

pub use backend::Zypper;
pub use install::{install, install_command, simulate, simulate_command};
pub use parse::{
    InstallOutput, SYSTEM_REPOSITORY, ZypperMessage, ZypperParseError, parse_install,
    parse_list_patches, parse_search,
};
pub use run::{
    ZypperRepo, ZypperRoot, ZypperScan, ZypperScanError, ZypperScanOptions, reboot_needed_flag,
    refresh, refresh_command, repositories, scan, scan_with,
};

/// Arguments (after `zypper --root R --non-interactive`) whose output
/// [`parse_list_patches`] reads.
pub const LIST_PATCHES_ARGS: &[&str] = &["--xmlout", "list-patches", "--all"];

/// Arguments whose output [`parse_search`] reads (every package of every
/// enabled repository, one line per version).
pub const SEARCH_ARGS: &[&str] = &["--xmlout", "search", "-s"];
