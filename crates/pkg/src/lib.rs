//! Package-manager backends of the Patchfleet agent.
//!
//! This first part is pure: parsers of the text a node's package manager
//! keeps on disk (`/etc/os-release`, the dpkg status database, APT `Release`
//! and `Packages` indexes), turned into [`patchfleet_core::facts`] values.
//! Nothing here reads files or runs processes: callers pass the text and a
//! label naming it (usually its path), and every error names that label, the
//! line and the problem. No parser panics on any input (fuzzed:
//! `fuzz/fuzz_targets/apt_parse.rs`).

pub mod apt;
pub mod os_release;

pub use os_release::{OsRelease, OsReleaseError, UnsupportedOs};
