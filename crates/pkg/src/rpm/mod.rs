//! RPM: parsers of rpm-md repository metadata (`repomd.xml`, `primary.xml`,
//! `updateinfo.xml`, compressed or not) and of `rpm -qa` output.

pub mod parse;

pub use parse::{
    Checksum, Compression, DEFAULT_MAX_METADATA_SIZE, RPM_QUERY_FORMAT, Repomd, RepomdData,
    RpmParseError, decompress, parse_primary, parse_repomd, parse_rpm_query, parse_updateinfo,
    source_name,
};
