//! APT and dpkg: the text formats behind `dpkg -l` and `apt-cache policy`.
//!
//! * [`Paragraphs`]: the deb822 stanza reader all the others use.
//! * [`parse_dpkg_status`]: `/var/lib/dpkg/status` → installed packages (and
//!   the ones a dpkg run left half-done).
//! * [`Release::parse`]: `Release` / `InRelease` (clearsigned) files.
//! * [`parse_packages`] / [`available_packages`]: `Packages` indexes, joined
//!   with their Release into [`patchfleet_core::facts::AvailablePackage`].

mod backend;
pub mod install;
mod parse;
pub mod run;

pub use backend::Apt;
pub use install::{
    InstallError, InstallOptions, InstallReport, PackageOutcome, PackageResult, SimAction, SimStep,
    Simulation, install, simulate,
};
pub use parse::{
    AptParseError, DpkgEntry, DpkgStatus, Field, IndexSource, InterruptedPackage, PackagesEntry,
    Paragraph, Paragraphs, Release, available_packages, merge_available, parse_dpkg_status,
    parse_packages, split_source, strip_clearsign,
};
pub use run::{
    AptRoot, Scan, ScanError, ScanOptions, TrustPolicy, boot_time_from_proc_stat, scan, scan_with,
};
