//! RPM: parsers of rpm-md repository metadata (`repomd.xml`, `primary.xml`,
//! `updateinfo.xml`, compressed or not) and of `rpm -qa` output; [`run`]
//! scans a dnf/yum system (a real root or a test bed) into node facts.

mod backend;
pub mod install;
mod macros;
pub mod parse;
pub mod run;

pub use backend::Rpm;
pub use macros::PrivateMacros;
pub use parse::{
    Checksum, Compression, DEFAULT_MAX_METADATA_SIZE, RPM_QUERY_FORMAT, Repomd, RepomdData,
    RpmParseError, decompress, dnf_messages, dnf_no_match, parse_dnf_transaction, parse_primary,
    parse_repomd, parse_rpm_query, parse_updateinfo, source_name,
};
pub use run::{
    IniSection, RepoConfig, RepoInfo, RpmRoot, RpmScan, RpmScanOptions, ScanError, package_manager,
    parse_ini, pm_command, refresh, refresh_command, rpm_query_command, scan, scan_with,
};
