//! rpm-md repository metadata (`repomd.xml`, `primary.xml`,
//! `updateinfo.xml`) and the output of `rpm -qa`, turned into facts.
//!
//! The XML parsers stream with quick-xml's pull reader (a primary.xml of a
//! large repository is 100+ MB): no tree is built, and the subtrees that are
//! not needed (file lists, dependencies, descriptions) are skipped event by
//! event. Every error names the input and the line; no input makes them
//! panic (fuzzed: `fuzz/fuzz_targets/rpm_parse.rs`).

use jiff::Timestamp;
use patchfleet_core::facts::{AvailablePackage, InstalledPackage, NoticePackage, UpdateNotice};
use patchfleet_core::version::rpm as rpmver;
use quick_xml::events::BytesStart;
use serde::Serialize;
use std::io::Read;

use crate::install::{SimAction, SimStep};
pub use crate::xml::MetadataError as RpmParseError;
use crate::xml::{Node, Xml, element_name, error, excerpt, push_unique};

// ---------------------------------------------------------------------------
// Decompression

/// A sensible cap for one decompressed metadata file: the primary.xml of the
/// largest public repositories is a few hundred MB.
pub const DEFAULT_MAX_METADATA_SIZE: u64 = 1 << 30;

/// The compression of a metadata file, told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
    None,
}

impl Compression {
    /// Detects the format by magic bytes (never by file name: repositories
    /// lie about neither, but mirrors and caches sometimes rename).
    pub fn detect(bytes: &[u8]) -> Compression {
        if bytes.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if bytes.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// Memory the xz decoder may use: `xz -9` needs 65 MiB, metadata is made
/// with `-6` or less (9 MiB); a forged header asking for 1.5 GiB is refused.
const XZ_MEMORY_LIMIT: u64 = 256 << 20;

/// Decompresses a metadata file (gzip, xz, zstd, bzip2, or plain, told by
/// magic bytes; concatenated streams are read to the end). Refuses output
/// larger than `max_size` bytes without producing more than `max_size + 1`:
/// repository metadata is outside input, and a small bomb must not exhaust
/// memory.
pub fn decompress(input: &str, bytes: &[u8], max_size: u64) -> Result<Vec<u8>, RpmParseError> {
    let format = Compression::detect(bytes);
    let too_large = || {
        error(
            input,
            None,
            format!("decompressed size exceeds the limit of {max_size} bytes"),
        )
    };
    if format == Compression::None {
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_size {
            return Err(too_large());
        }
        return Ok(bytes.to_vec());
    }
    let reader: Box<dyn Read + '_> = match format {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        Compression::Xz => {
            // The header's dictionary size is allocated up front: bound it.
            let stream = liblzma::stream::Stream::new_stream_decoder(
                XZ_MEMORY_LIMIT,
                liblzma::stream::CONCATENATED,
            )
            .map_err(|e| error(input, None, format!("xz: {e}")))?;
            Box::new(liblzma::read::XzDecoder::new_stream(bytes, stream))
        }
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(bytes)
                .map_err(|e| error(input, None, format!("zstd: {e}")))?,
        ),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(bytes)),
        Compression::None => unreachable!("handled above"),
    };
    let mut out = Vec::new();
    reader
        .take(max_size.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| {
            let name = match format {
                Compression::Gzip => "gzip",
                Compression::Xz => "xz",
                Compression::Zstd => "zstd",
                Compression::Bzip2 => "bzip2",
                Compression::None => "plain",
            };
            error(input, None, format!("{name} data is corrupt: {e}"))
        })?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > max_size {
        return Err(too_large());
    }
    Ok(out)
}

/// `[epoch:]version-release` from the parts rpm-md writes; epoch `0` (or
/// none) is left out. Checked by the core's RPM version parser.
fn evr_string(
    xml: &Xml<'_>,
    pos: u64,
    what: &str,
    epoch: Option<&str>,
    ver: Option<&str>,
    rel: Option<&str>,
) -> Result<String, RpmParseError> {
    let ver = ver
        .filter(|v| !v.is_empty())
        .ok_or_else(|| xml.fail(pos, format!("{what}: no version")))?;
    let rel = rel
        .filter(|r| !r.is_empty())
        .ok_or_else(|| xml.fail(pos, format!("{what}: no release")))?;
    let epoch = epoch.map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = epoch
        && !e.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(xml.fail(
            pos,
            format!("{what}: epoch '{}' is not a number", excerpt(e)),
        ));
    }
    let s = match epoch.map(|e| e.trim_start_matches('0')) {
        Some(e) if !e.is_empty() => format!("{e}:{ver}-{rel}"),
        _ => format!("{ver}-{rel}"),
    };
    rpmver::validate(&s).map_err(|e| xml.fail(pos, format!("{what}: {e}")))?;
    // A '-' in the version or release would read back differently.
    if ver.contains(['-', ':']) || rel.contains(['-', ':']) {
        return Err(xml.fail(
            pos,
            format!(
                "{what}: version '{}' or release '{}' contains '-' or ':'",
                excerpt(ver),
                excerpt(rel)
            ),
        ));
    }
    Ok(s)
}

fn is_source_arch(arch: &str) -> bool {
    arch == "src" || arch == "nosrc"
}

// ---------------------------------------------------------------------------
// repomd.xml

/// `repomd.xml`: the index of a repository's metadata files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Repomd {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub data: Vec<RepomdData>,
}

impl Repomd {
    /// The entry of that type (`primary`, `updateinfo`, `filelists`, …).
    pub fn get(&self, kind: &str) -> Option<&RepomdData> {
        self.data.iter().find(|d| d.kind == kind)
    }
}

/// One `<data type=…>` entry of `repomd.xml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepomdData {
    #[serde(rename = "type")]
    pub kind: String,
    /// `<location href>`: a relative path below the repository's base URL
    /// (absolute paths, `..` segments, URLs and backslashes are refused).
    pub location: String,
    /// Checksum of the file as stored (compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Checksum of the decompressed file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_checksum: Option<Checksum>,
    /// Seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Size once decompressed: a good cap for [`decompress`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checksum {
    /// `sha256`, `sha512`, `sha1`, … as written (lower-cased).
    #[serde(rename = "type")]
    pub kind: String,
    /// Hex digits, lower-cased.
    pub value: String,
}

/// Reads `repomd.xml`.
pub fn parse_repomd(input: &str, xml: &[u8]) -> Result<Repomd, RpmParseError> {
    let mut x = Xml::new(input, xml)?;
    x.root("repomd")?;
    let mut repomd = Repomd::default();
    loop {
        match x.child()? {
            Node::Close => break,
            Node::Text(_) => {}
            Node::Open { tag, pos } => match tag.local_name().as_ref() {
                "revision" => repomd.revision = Some(x.text()?).filter(|r| !r.is_empty()),
                "data" => {
                    let data = repomd_data(&mut x, &tag, pos)?;
                    if repomd.get(&data.kind).is_some() {
                        return Err(x.fail(pos, format!("second <data type=\"{}\">", data.kind)));
                    }
                    repomd.data.push(data);
                }
                _ => x.skip()?,
            },
        }
    }
    x.finish()?;
    Ok(repomd)
}

fn repomd_data(
    x: &mut Xml<'_>,
    tag: &BytesStart<'_>,
    pos: u64,
) -> Result<RepomdData, RpmParseError> {
    let kind = x
        .attr(tag, pos, "type")?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| x.fail(pos, "<data> has no type attribute"))?
        .trim()
        .to_string();
    let mut data = RepomdData {
        kind,
        location: String::new(),
        checksum: None,
        open_checksum: None,
        timestamp: None,
        size: None,
        open_size: None,
    };
    let mut location = None;
    loop {
        match x.child()? {
            Node::Close => break,
            Node::Text(_) => {}
            Node::Open { tag, pos } => match tag.local_name().as_ref() {
                "location" => {
                    let href = x
                        .attr(&tag, pos, "href")?
                        .ok_or_else(|| x.fail(pos, "<location> has no href attribute"))?;
                    check_href(x, pos, &href)?;
                    location = Some(href);
                    x.skip()?;
                }
                "checksum" => data.checksum = Some(checksum(x, &tag, pos)?),
                "open-checksum" => data.open_checksum = Some(checksum(x, &tag, pos)?),
                "timestamp" => {
                    let t = x.text()?;
                    // Old yum wrote fractional seconds.
                    let whole = t.split_once('.').map_or(t.as_str(), |(w, _)| w);
                    data.timestamp = Some(whole.parse().map_err(|_| {
                        x.fail(pos, format!("timestamp '{}' is not a number", excerpt(&t)))
                    })?);
                }
                "size" => data.size = Some(number(x, pos, "size")?),
                "open-size" => data.open_size = Some(number(x, pos, "open-size")?),
                _ => x.skip()?,
            },
        }
    }
    data.location = location.ok_or_else(|| {
        x.fail(
            pos,
            format!("<data type=\"{}\"> has no <location>", data.kind),
        )
    })?;
    Ok(data)
}

fn check_href(x: &Xml<'_>, pos: u64, href: &str) -> Result<(), RpmParseError> {
    let bad = href.is_empty()
        || href.starts_with('/')
        || href.contains('\\')
        || href.contains('\0')
        || href.contains("://")
        || href.split('/').any(|seg| seg == "..");
    if bad {
        return Err(x.fail(
            pos,
            format!(
                "location href '{}' is not a relative path inside the repository",
                excerpt(href)
            ),
        ));
    }
    Ok(())
}

fn checksum(x: &mut Xml<'_>, tag: &BytesStart<'_>, pos: u64) -> Result<Checksum, RpmParseError> {
    let kind = x
        .attr(tag, pos, "type")?
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            x.fail(
                pos,
                format!("<{}> has no type attribute", element_name(tag)),
            )
        })?;
    let value = x.text()?.to_ascii_lowercase();
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(x.fail(
            pos,
            format!("checksum '{}' is not hexadecimal", excerpt(&value)),
        ));
    }
    Ok(Checksum { kind, value })
}

fn number(x: &mut Xml<'_>, pos: u64, what: &str) -> Result<u64, RpmParseError> {
    let t = x.text()?;
    t.parse()
        .map_err(|_| x.fail(pos, format!("{what} '{}' is not a number", excerpt(&t))))
}

// ---------------------------------------------------------------------------
// primary.xml

/// Reads `primary.xml`: every binary package the repository offers (source
/// packages are skipped). `repository` is the repository id recorded in
/// each package.
pub fn parse_primary(
    input: &str,
    xml: &[u8],
    repository: &str,
) -> Result<Vec<AvailablePackage>, RpmParseError> {
    let mut x = Xml::new(input, xml)?;
    x.root("metadata")?;
    let mut out = Vec::new();
    loop {
        match x.child()? {
            Node::Close => break,
            Node::Text(_) => {}
            Node::Open { tag, pos } => {
                if tag.local_name().as_ref() == "package" {
                    if let Some(p) = primary_package(&mut x, pos, repository)? {
                        out.push(p);
                    }
                } else {
                    x.skip()?;
                }
            }
        }
    }
    x.finish()?;
    Ok(out)
}

fn primary_package(
    x: &mut Xml<'_>,
    pos: u64,
    repository: &str,
) -> Result<Option<AvailablePackage>, RpmParseError> {
    let mut name = None;
    let mut arch = None;
    let mut version = None;
    let mut build_time = None;
    loop {
        match x.child()? {
            Node::Close => break,
            Node::Text(_) => {}
            Node::Open { tag, pos: at } => match tag.local_name().as_ref() {
                "name" => name = Some(x.text()?),
                "arch" => arch = Some(x.text()?),
                "version" => {
                    let epoch = x.attr(&tag, at, "epoch")?;
                    let ver = x.attr(&tag, at, "ver")?;
                    let rel = x.attr(&tag, at, "rel")?;
                    version = Some((epoch, ver, rel, at));
                    x.skip()?;
                }
                "time" => {
                    if let Some(b) = x.attr(&tag, at, "build")? {
                        build_time = timestamp(x, at, "build time", &b)?;
                    }
                    x.skip()?;
                }
                _ => x.skip()?,
            },
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| x.fail(pos, "<package> has no <name>"))?;
    let arch = arch
        .filter(|a| !a.is_empty())
        .ok_or_else(|| x.fail(pos, format!("package {}: no <arch>", excerpt(&name))))?;
    if is_source_arch(&arch) {
        return Ok(None);
    }
    let what = format!("package {}", excerpt(&name));
    let (epoch, ver, rel, at) =
        version.ok_or_else(|| x.fail(pos, format!("{what}: no <version>")))?;
    let version = evr_string(
        x,
        at,
        &what,
        epoch.as_deref(),
        ver.as_deref(),
        rel.as_deref(),
    )?;
    Ok(Some(AvailablePackage {
        name,
        arch,
        version,
        repository: Some(repository.to_string()),
        origins: Vec::new(),
        priority: None,
        section: None,
        build_time,
        first_seen: None,
    }))
}

/// Epoch seconds; `None` for 0 (rpm's "unknown").
fn timestamp(
    x: &Xml<'_>,
    pos: u64,
    what: &str,
    s: &str,
) -> Result<Option<Timestamp>, RpmParseError> {
    let s = s.trim();
    let secs: i64 = s
        .parse()
        .map_err(|_| x.fail(pos, format!("{what} '{}' is not a number", excerpt(s))))?;
    if secs == 0 {
        return Ok(None);
    }
    Timestamp::from_second(secs)
        .map(Some)
        .map_err(|_| x.fail(pos, format!("{what} {secs} is out of range")))
}

// ---------------------------------------------------------------------------
// updateinfo.xml

/// Reads `updateinfo.xml`: one notice per `<update>`. Dates are kept as
/// written (the core reads every form); `repository` is left unset for the
/// caller. Source packages in the package lists are skipped, and a package
/// listed twice in one notice is kept once.
pub fn parse_updateinfo(input: &str, xml: &[u8]) -> Result<Vec<UpdateNotice>, RpmParseError> {
    let mut x = Xml::new(input, xml)?;
    x.root("updates")?;
    let mut out = Vec::new();
    loop {
        match x.child()? {
            Node::Close => break,
            Node::Text(_) => {}
            Node::Open { tag, pos } => {
                if tag.local_name().as_ref() == "update" {
                    out.push(update(&mut x, &tag, pos)?);
                } else {
                    x.skip()?;
                }
            }
        }
    }
    x.finish()?;
    Ok(out)
}

fn truthy(s: &str) -> bool {
    let s = s.trim();
    s.eq_ignore_ascii_case("true") || s == "1"
}

fn update(x: &mut Xml<'_>, tag: &BytesStart<'_>, pos: u64) -> Result<UpdateNotice, RpmParseError> {
    let kind = x
        .attr(tag, pos, "type")?
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| x.fail(pos, "<update> has no type attribute"))?;
    let mut notice = UpdateNotice {
        id: String::new(),
        kind,
        severity: None,
        title: None,
        issued: None,
        updated: None,
        cves: Vec::new(),
        bugzilla: Vec::new(),
        reboot_suggested: false,
        repository: None,
        packages: Vec::new(),
    };
    loop {
        match x.child()? {
            Node::Close => break,
            Node::Text(_) => {}
            Node::Open { tag, pos: at } => match tag.local_name().as_ref() {
                "id" => notice.id = x.text()?,
                "title" => notice.title = Some(x.text()?).filter(|t| !t.is_empty()),
                "severity" => notice.severity = Some(x.text()?).filter(|t| !t.is_empty()),
                "issued" | "updated" => {
                    let date = x
                        .attr(&tag, at, "date")?
                        .map(|d| d.trim().to_string())
                        .filter(|d| !d.is_empty());
                    if tag.local_name().as_ref() == "issued" {
                        notice.issued = date;
                    } else {
                        notice.updated = date;
                    }
                    x.skip()?;
                }
                "reboot_suggested" => notice.reboot_suggested |= truthy(&x.text()?),
                "references" => references(x, &mut notice)?,
                "pkglist" => pkglist(x, &mut notice)?,
                _ => x.skip()?,
            },
        }
    }
    if notice.id.is_empty() {
        return Err(x.fail(pos, "<update> has no <id>"));
    }
    Ok(notice)
}

fn references(x: &mut Xml<'_>, notice: &mut UpdateNotice) -> Result<(), RpmParseError> {
    loop {
        match x.child()? {
            Node::Close => return Ok(()),
            Node::Text(_) => {}
            Node::Open { tag, pos } => {
                if tag.local_name().as_ref() == "reference" {
                    let kind = x.attr(&tag, pos, "type")?.unwrap_or_default();
                    let id = x.attr(&tag, pos, "id")?.unwrap_or_default();
                    let id = id.trim().to_string();
                    match kind.trim().to_ascii_lowercase().as_str() {
                        "cve" => push_unique(&mut notice.cves, id),
                        "bugzilla" => push_unique(&mut notice.bugzilla, id),
                        _ => {}
                    }
                }
                x.skip()?;
            }
        }
    }
}

fn pkglist(x: &mut Xml<'_>, notice: &mut UpdateNotice) -> Result<(), RpmParseError> {
    loop {
        match x.child()? {
            Node::Close => return Ok(()),
            Node::Text(_) => {}
            Node::Open { tag, .. } => {
                if tag.local_name().as_ref() == "collection" {
                    collection(x, notice)?;
                } else {
                    x.skip()?;
                }
            }
        }
    }
}

fn collection(x: &mut Xml<'_>, notice: &mut UpdateNotice) -> Result<(), RpmParseError> {
    loop {
        match x.child()? {
            Node::Close => return Ok(()),
            Node::Text(_) => {}
            Node::Open { tag, pos } => {
                if tag.local_name().as_ref() != "package" {
                    x.skip()?;
                    continue;
                }
                let name = x.attr(&tag, pos, "name")?.map(|n| n.trim().to_string());
                let arch = x.attr(&tag, pos, "arch")?.map(|a| a.trim().to_string());
                let epoch = x.attr(&tag, pos, "epoch")?;
                let ver = x.attr(&tag, pos, "version")?;
                let rel = x.attr(&tag, pos, "release")?;
                // Children: filename, sum, reboot_suggested, restart_suggested, …
                loop {
                    match x.child()? {
                        Node::Close => break,
                        Node::Text(_) => {}
                        Node::Open { tag, .. } => {
                            if tag.local_name().as_ref() == "reboot_suggested" {
                                notice.reboot_suggested |= truthy(&x.text()?);
                            } else {
                                x.skip()?;
                            }
                        }
                    }
                }
                let id = excerpt(&notice.id);
                let name = name.filter(|n| !n.is_empty()).ok_or_else(|| {
                    x.fail(pos, format!("update {id}: <package> has no name attribute"))
                })?;
                let arch = arch.filter(|a| !a.is_empty()).ok_or_else(|| {
                    x.fail(
                        pos,
                        format!("update {id}: package {}: no arch attribute", excerpt(&name)),
                    )
                })?;
                if is_source_arch(&arch) {
                    continue;
                }
                let what = format!("update {id}: package {}", excerpt(&name));
                let version = evr_string(
                    x,
                    pos,
                    &what,
                    epoch.as_deref(),
                    ver.as_deref(),
                    rel.as_deref(),
                )?;
                let p = NoticePackage {
                    name,
                    arch,
                    version,
                };
                if !notice.packages.contains(&p) {
                    notice.packages.push(p);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// rpm -qa

/// The `--queryformat` whose output [`parse_rpm_query`] reads: one line per
/// installed package, seven tab-separated fields.
pub const RPM_QUERY_FORMAT: &str =
    "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{INSTALLTIME}\\t%{SOURCERPM}\\n";

/// Reads the output of `rpm -qa --queryformat RPM_QUERY_FORMAT`.
///
/// `gpg-pubkey` entries (imported signing keys) are skipped. Blank lines are
/// ignored. `installed_time` is the install time (epoch seconds); `source`
/// is the source rpm's name (`bash-5.1.8-6.el9.src.rpm` → `bash`).
pub fn parse_rpm_query(input: &str, text: &str) -> Result<Vec<InstalledPackage>, RpmParseError> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let fail = |problem: String| error(input, Some(n), problem);
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, epoch, ver, rel, arch, installtime, sourcerpm] = fields[..] else {
            return Err(fail(format!(
                "expected 7 tab-separated fields (the RPM_QUERY_FORMAT), found {}: '{}'",
                fields.len(),
                excerpt(line)
            )));
        };
        if name == "gpg-pubkey" {
            continue;
        }
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(fail(format!("invalid package name '{}'", excerpt(name))));
        }
        if arch.is_empty() || arch == "(none)" || arch.contains(char::is_whitespace) {
            return Err(fail(format!(
                "package {}: invalid arch '{}'",
                excerpt(name),
                excerpt(arch)
            )));
        }
        if epoch.is_empty() || !epoch.bytes().all(|c| c.is_ascii_digit()) {
            return Err(fail(format!(
                "package {}: epoch '{}' is not a number",
                excerpt(name),
                excerpt(epoch)
            )));
        }
        if ver.is_empty() || rel.is_empty() || ver.contains(['-', ':']) || rel.contains(['-', ':'])
        {
            return Err(fail(format!(
                "package {}: invalid version '{}' or release '{}'",
                excerpt(name),
                excerpt(ver),
                excerpt(rel)
            )));
        }
        let version = match epoch.trim_start_matches('0') {
            "" => format!("{ver}-{rel}"),
            e => format!("{e}:{ver}-{rel}"),
        };
        rpmver::validate(&version).map_err(|e| fail(format!("package {}: {e}", excerpt(name))))?;
        let installed_time = match installtime {
            "" | "(none)" | "0" => None,
            t => {
                let secs: i64 = t.parse().map_err(|_| {
                    fail(format!(
                        "package {}: install time '{}' is not a number",
                        excerpt(name),
                        excerpt(t)
                    ))
                })?;
                Some(Timestamp::from_second(secs).map_err(|_| {
                    fail(format!(
                        "package {}: install time {secs} is out of range",
                        excerpt(name)
                    ))
                })?)
            }
        };
        let source = match sourcerpm {
            "" | "(none)" => None,
            s => Some(source_name(s).ok_or_else(|| {
                fail(format!(
                    "package {}: source rpm '{}' is not name-version-release.src.rpm",
                    excerpt(name),
                    excerpt(s)
                ))
            })?),
        };
        out.push(InstalledPackage {
            name: name.to_string(),
            arch: arch.to_string(),
            version,
            installed_time,
            source,
        });
    }
    Ok(out)
}

/// `bash-5.1.8-6.el9.src.rpm` → `bash`.
pub fn source_name(sourcerpm: &str) -> Option<String> {
    let base = sourcerpm
        .strip_suffix(".src.rpm")
        .or_else(|| sourcerpm.strip_suffix(".nosrc.rpm"))?;
    let (rest, _release) = base.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    (!name.is_empty()).then(|| name.to_string())
}

// ---------------------------------------------------------------------------
// dnf/yum transaction output

/// The section a transaction-table header opens (`Upgrading:`,
/// `Installing dependencies:`, yum's `Updating for dependencies:`, …):
/// `Some(action)` for a table of packages, `None` for anything else.
fn transaction_section(line: &str) -> Option<SimAction> {
    let head = line.strip_suffix(':')?;
    match head.split(' ').next()?.to_ascii_lowercase().as_str() {
        "upgrading" | "updating" | "installing" | "reinstalling" | "downgrading" => {
            Some(SimAction::Install)
        }
        "removing" | "erasing" | "obsoleting" => Some(SimAction::Remove),
        _ => None,
    }
}

/// The members of the transaction table dnf (and yum) print before acting
/// (`upgrade --assumeno`): one [`SimStep`] per package row, with the
/// action of its section, arch, version (`new`; for removals the installed
/// one) and repository (`origin`). A name too long for its column stands on
/// a line of its own, the rest of the row on the next. An obsoleted
/// package (`replacing  name.arch version` under an upgrade) is a removal:
/// it leaves the system. Anything that is not a table row is ignored.
pub fn parse_dnf_transaction(text: &str) -> Vec<SimStep> {
    let mut out = Vec::new();
    let mut section: Option<SimAction> = None;
    let mut pending: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            section = None;
            pending = None;
            continue;
        }
        if !line.starts_with(' ') {
            section = transaction_section(line.trim_end());
            pending = None;
            continue;
        }
        let Some(action) = section else {
            continue;
        };
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() == Some(&"replacing") {
            if let [_, na, version, ..] = tokens[..] {
                let (name, arch) = match na.rsplit_once('.') {
                    Some((n, a)) if !n.is_empty() && !a.is_empty() => (n, Some(a.to_string())),
                    _ => (na, None),
                };
                out.push(SimStep {
                    action: SimAction::Remove,
                    name: name.to_string(),
                    arch,
                    old: Some(version.to_string()),
                    new: None,
                    origin: None,
                });
            }
            continue;
        }
        let (name, rest) = match (pending.take(), &tokens[..]) {
            (None, [name]) => {
                pending = Some(name);
                continue;
            }
            (None, [name, rest @ ..]) => (*name, rest),
            (Some(name), rest) => (name, rest),
            (None, []) => continue,
        };
        let [arch, version, rest @ ..] = rest else {
            continue;
        };
        // A removal's version column is the installed version.
        let (old, new) = match action {
            SimAction::Remove => (Some(version.to_string()), None),
            _ => (None, Some(version.to_string())),
        };
        out.push(SimStep {
            action,
            name: name.to_string(),
            arch: Some(arch.to_string()),
            old,
            new,
            origin: rest.first().map(|r| r.to_string()),
        });
    }
    out
}

/// dnf's (and yum's) error and warning lines: `Error:` with the lines that
/// follow it up to a blank line (` Problem: …`, `  - …`), `Warning:`,
/// `No match for argument: …`, and `Package … not installed` /
/// `… cannot update it`.
pub fn dnf_messages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_error = false;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            in_error = false;
            continue;
        }
        let t = line.trim_start();
        if t.starts_with("Error:") || t.starts_with("Error Summary") {
            in_error = true;
            out.push(t.to_string());
        } else if in_error
            || t.starts_with("Warning:")
            || t.get(..21)
                .is_some_and(|h| h.eq_ignore_ascii_case("No match for argument"))
            || (t.starts_with("Package ")
                && (t.contains("not installed") || t.contains("cannot update")))
        {
            out.push(t.to_string());
        }
    }
    out
}

/// The arguments of dnf's `No match for argument: X` lines.
pub fn dnf_no_match(text: &str) -> Vec<&str> {
    text.lines()
        // yum 3 writes `No Match for argument`.
        .filter_map(|l| {
            let l = l.trim();
            let head = l.get(..22)?;
            head.eq_ignore_ascii_case("No match for argument:")
                .then(|| &l[22..])
        })
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of<T: std::fmt::Debug>(r: Result<T, RpmParseError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn decompress_by_magic_and_cap() {
        use std::io::Write;
        let text = b"<repomd/>".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&text).unwrap();
        let xz = xz.finish().unwrap();
        let zst = zstd::stream::encode_all(&text[..], 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&text).unwrap();
        let bz = bz.finish().unwrap();
        for (data, c) in [
            (&gz, Compression::Gzip),
            (&xz, Compression::Xz),
            (&zst, Compression::Zstd),
            (&bz, Compression::Bzip2),
            (&text, Compression::None),
        ] {
            assert_eq!(Compression::detect(data), c);
            assert_eq!(decompress("f", data, 900).unwrap(), text, "{c:?}");
            assert_eq!(
                err_of(decompress("f", data, 899)),
                "f: decompressed size exceeds the limit of 899 bytes",
                "{c:?}"
            );
        }
        let mut bad = gz.clone();
        bad.truncate(12);
        assert!(err_of(decompress("x.gz", &bad, 1000)).starts_with("x.gz: gzip data is corrupt"));
        assert!(decompress("x", b"\xfd7zXZ\x00garbage", 1000).is_err());
        assert!(decompress("x", b"\x28\xb5\x2f\xfdgarbage", 1000).is_err());
        assert!(decompress("x", b"BZhgarbage", 1000).is_err());
    }

    #[test]
    fn primary_minimal() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="3">
<package type="rpm">
  <name>bash</name>
  <arch>x86_64</arch>
  <version epoch="0" ver="5.1.8" rel="6.el9"/>
  <time file="1700000001" build="1700000000"/>
  <format><rpm:provides><rpm:entry name="bash" flags="EQ" epoch="0" ver="9" rel="9"/></rpm:provides></format>
</package>
<package type="rpm"><name>perl-X</name><arch>noarch</arch><version epoch="4" ver="1.0" rel="1"/></package>
<package type="rpm"><name>bash</name><arch>src</arch><version epoch="0" ver="5.1.8" rel="6.el9"/></package>
</metadata>
"#;
        let p = parse_primary("primary.xml", xml, "baseos").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].arch.as_str(),
                p[0].version.as_str()
            ),
            ("bash", "x86_64", "5.1.8-6.el9")
        );
        assert_eq!(
            p[0].build_time,
            Some(Timestamp::from_second(1700000000).unwrap())
        );
        assert_eq!(p[0].repository.as_deref(), Some("baseos"));
        assert_eq!(p[1].version, "4:1.0-1");
        assert_eq!(p[1].build_time, None);
    }

    #[test]
    fn errors_name_input_and_line() {
        let e = err_of(parse_primary(
            "p.xml",
            b"<metadata>\n<package>\n<name>a</name>\n</metadata>",
            "r",
        ));
        assert!(e.starts_with("p.xml: line 4: malformed XML"), "{e}");
        let e = err_of(parse_primary(
            "p.xml",
            b"<metadata>\n<package>\n<name>a</name><arch>x</arch>\n</package></metadata>",
            "r",
        ));
        assert_eq!(e, "p.xml: line 2: package a: no <version>");
        let e = err_of(parse_primary("p.xml", b"<metadata>\n<package>", "r"));
        assert!(
            e.starts_with("p.xml: line 2: unexpected end of input"),
            "{e}"
        );
        let e = err_of(parse_primary("p.xml", b"\n\n<updates/>", "r"));
        assert_eq!(
            e,
            "p.xml: line 3: the root element is <updates>, expected <metadata>"
        );
        let e = err_of(parse_primary("p.xml", b"", "r"));
        assert_eq!(e, "p.xml: line 1: no <metadata> element: empty document");
        let e = err_of(parse_primary("p.xml", b"<metadata>\n\xff</metadata>", "r"));
        assert_eq!(e, "p.xml: line 2: the text is not valid UTF-8");
        let e = err_of(parse_updateinfo(
            "u.xml",
            b"<updates>\n<update type='security'>\n<title>t &bogus;</title></update></updates>",
        ));
        assert_eq!(e, "u.xml: line 3: unknown entity &bogus;");
        let e = err_of(parse_updateinfo(
            "u.xml",
            b"<updates>\n<update type='security'>\n<id>X</id><pkglist><collection>\n<package name='a' arch='x86_64' version='1'/></collection></pkglist></update></updates>",
        ));
        assert_eq!(e, "u.xml: line 4: update X: package a: no release");
    }

    #[test]
    fn updateinfo_entities_and_reboot() {
        let xml = br#"<updates><update type="security"><id>A-1</id><title>a &amp; b &#x41;<![CDATA[<c>]]></title>
<severity></severity><reboot_suggested>1</reboot_suggested>
<references><reference type="cve" id="CVE-1"/><reference type="CVE" id="CVE-1"/><reference type="self" id="x"/></references>
<pkglist><collection><package name="k" arch="x86_64" epoch="0" version="1" release="2"><reboot_suggested>False</reboot_suggested></package>
<package name="k" arch="src" version="1" release="2"/></collection>
<collection><package name="k" arch="x86_64" epoch="0" version="1" release="2"/></collection></pkglist></update></updates>"#;
        let n = parse_updateinfo("u", xml).unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].title.as_deref(), Some("a & b A<c>"));
        assert_eq!(n[0].severity, None);
        assert!(n[0].reboot_suggested);
        assert_eq!(n[0].cves, ["CVE-1"]);
        assert_eq!(n[0].packages.len(), 1);
        assert_eq!(n[0].packages[0].version, "1-2");
    }

    #[test]
    fn rpm_query() {
        let text = "bash\t0\t5.1.8\t6.el9\tx86_64\t1700000000\tbash-5.1.8-6.el9.src.rpm\n\
                    gpg-pubkey\t0\tfd431d51\t4ae0493b\t(none)\t1700000000\t(none)\n\
                    \n\
                    perl-X\t4\t1.0\t1\tnoarch\t1700000001\tperl-X-1.0-1.src.rpm\n";
        let p = parse_rpm_query("rpm -qa", text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].version, "5.1.8-6.el9");
        assert_eq!(p[0].source.as_deref(), Some("bash"));
        assert_eq!(p[1].version, "4:1.0-1");
        assert_eq!(p[1].source.as_deref(), Some("perl-X"));
        let e = err_of(parse_rpm_query("q", "a\t0\t1\t1\tx86_64\t1\n"));
        assert!(
            e.starts_with("q: line 1: expected 7 tab-separated fields"),
            "{e}"
        );
        let e = err_of(parse_rpm_query("q", "\na\tx\t1\t1\tx86_64\t1\t(none)\n"));
        assert_eq!(e, "q: line 2: package a: epoch 'x' is not a number");
        assert_eq!(
            source_name("glibc-2.34-100.el9.nosrc.rpm").as_deref(),
            Some("glibc")
        );
        assert_eq!(source_name("x.src.rpm"), None);
    }

    #[test]
    fn repomd_hrefs_are_checked() {
        let xml =
            br#"<repomd><data type="primary"><location href="../../etc/passwd"/></data></repomd>"#;
        let e = err_of(parse_repomd("repomd.xml", xml));
        assert!(e.contains("not a relative path"), "{e}");
    }

    #[test]
    fn dnf_transaction_tables() {
        let text = [
            "Last metadata expiration check: 0:00:12 ago on Mon Nov 23 09:13:06 2026.",
            "Dependencies resolved.",
            "================================================================================",
            " Package             Architecture      Version              Repository     Size",
            "================================================================================",
            "Upgrading:",
            " tb-hello            noarch            1.1-1                tb            5.9 k",
            " tb-tool             noarch            1:2.1-1              tb            6.0 k",
            " a-package-name-longer-than-its-column",
            "                     x86_64            2.0-1.el9            appstream      10 M",
            "     replacing  old-thing.x86_64 1.0-1.el9",
            "Installing:",
            " kernel              noarch            5.14.0-2             tbk           6.1 k",
            "Removing dependent packages:",
            " tb-plugin           noarch            1.0-1                @tb             0  ",
            "",
            "Transaction Summary",
            "================================================================================",
            "Upgrade  3 Packages",
            "  Upgrading        : tb-hello-1.1-1.noarch                                  1/2 ",
            "Upgraded:",
            "  tb-hello-1.1-1.noarch",
        ]
        .join("\n");
        let s = parse_dnf_transaction(&text);
        let got: Vec<(SimAction, &str, &str, &str, &str)> = s
            .iter()
            .map(|s| {
                (
                    s.action,
                    s.name.as_str(),
                    s.arch.as_deref().unwrap_or(""),
                    s.new.as_deref().or(s.old.as_deref()).unwrap_or(""),
                    s.origin.as_deref().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (SimAction::Install, "tb-hello", "noarch", "1.1-1", "tb"),
                (SimAction::Install, "tb-tool", "noarch", "1:2.1-1", "tb"),
                (
                    SimAction::Install,
                    "a-package-name-longer-than-its-column",
                    "x86_64",
                    "2.0-1.el9",
                    "appstream"
                ),
                (SimAction::Remove, "old-thing", "x86_64", "1.0-1.el9", ""),
                (SimAction::Install, "kernel", "noarch", "5.14.0-2", "tbk"),
                (SimAction::Remove, "tb-plugin", "noarch", "1.0-1", "@tb"),
            ]
        );
        // yum 3's words; odd rows are skipped, never a panic.
        let yum = "Updating:\n tb-hello  noarch  1.1-1  tb  5.9 k\nErasing:\n x\n \nRemoving for dependencies:\n y noarch\n";
        let s = parse_dnf_transaction(yum);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].name, "tb-hello");
        assert!(parse_dnf_transaction("Nothing to do.\nComplete!\n").is_empty());
    }

    #[test]
    fn dnf_error_lines() {
        let text = "No match for argument: tb-hello-9.9-1.noarch\n\
Package tb-new available, but not installed.\n\
No match for argument: tb-new-1.0-1.noarch\n\
Dependencies resolved.\n\
Error: \n Problem: cannot install both a and b\n  - conflicting requests\n\n\
Complete!\n";
        assert_eq!(
            dnf_no_match(text),
            ["tb-hello-9.9-1.noarch", "tb-new-1.0-1.noarch"]
        );
        assert_eq!(
            dnf_messages(text),
            [
                "No match for argument: tb-hello-9.9-1.noarch",
                "Package tb-new available, but not installed.",
                "No match for argument: tb-new-1.0-1.noarch",
                "Error:",
                "Problem: cannot install both a and b",
                "- conflicting requests",
            ]
        );
    }
}
