//! Package-manager backends of the Patchfleet agent.
//!
//! Each backend keeps pure parsers (text in, facts out; every error names
//! the input, the line and the problem; fuzzed) apart from the code that
//! reads a node's files and runs its tools. Every external command goes
//! through [`runner`]: a timeout that kills the whole process group, no
//! standard input, a fixed environment, capped output.
//!
//! * [`os_release`]: `/etc/os-release` → operating system and product.
//! * [`apt`]: dpkg status, Release and Packages parsers; [`apt::run`] scans an
//!   APT system (a real root or a test bed) into [`patchfleet_core::facts`].
//! * [`rpm`]: repomd, primary, updateinfo and `rpm -qa` parsers.

pub mod apt;
pub mod backend;
pub mod install;
pub mod lock;
pub mod os_release;
pub mod reboot;
pub mod rpm;
pub mod runner;
mod xml;
pub mod zypper;

pub use os_release::{OsRelease, OsReleaseError, UnsupportedOs};
