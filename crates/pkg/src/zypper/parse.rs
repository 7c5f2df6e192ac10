//! Pure parsers of `zypper --xmlout` output (zypper 1.14, libzypp 17):
//!
//! * [`parse_list_patches`]: `zypper --xmlout list-patches --all` →
//!   one [`UpdateNotice`] per `<update kind="patch">`.
//! * [`parse_search`]: `zypper --xmlout search -s` → one
//!   [`AvailablePackage`] per `<solvable kind="package">` that a repository
//!   offers.
//!
//! The output is a `<stream>` of `<message>`s and one result element.
//! Parsing streams with quick-xml's pull reader; every error names the
//! input and the line, and no input makes the parsers panic. A
//! `<message type="error">` is reported as an error: zypper failed, and an
//! empty list would read as "nothing to do".
//!
//! `list-patches` does not name the packages of a patch: the notices come
//! back with empty `packages`. They are in the repository's updateinfo (the
//! rpm parser's `parse_updateinfo` over the repo cache) or, per patch, in
//! the `Conflicts` of `zypper info -t patch ID` (`name[.arch] < evr`).

use jiff::Timestamp;
use patchfleet_core::facts::{AvailablePackage, UpdateNotice};
use patchfleet_core::version::rpm as rpmver;
use quick_xml::events::BytesStart;

pub use crate::xml::MetadataError as ZypperParseError;
use crate::xml::{Node, Xml, element_name, excerpt, push_unique};

impl<'a> Xml<'a> {
    /// zypper's `<stream>` root; text before it usually means the output
    /// was not asked for as XML.
    fn stream_root(&mut self) -> Result<(), ZypperParseError> {
        self.root("stream").map_err(|mut e| {
            if e.problem.starts_with("text before") {
                e.problem.push_str(" (was --xmlout given?)");
            }
            e
        })
    }

    /// The value of attribute `name`, trimmed; `None` when absent or blank.
    fn attr_trimmed(
        &self,
        tag: &BytesStart<'_>,
        pos: u64,
        name: &str,
    ) -> Result<Option<String>, ZypperParseError> {
        Ok(self
            .attr(tag, pos, name)?
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()))
    }

    /// Like [`Self::attr_trimmed`], but the attribute must be there.
    fn required(
        &self,
        tag: &BytesStart<'_>,
        pos: u64,
        name: &str,
    ) -> Result<String, ZypperParseError> {
        self.attr_trimmed(tag, pos, name)?.ok_or_else(|| {
            self.fail(
                pos,
                format!("<{}> has no {name} attribute", element_name(tag)),
            )
        })
    }

    /// Walks the children of the element just opened: `open` gets each
    /// child element (and must consume it); text is ignored.
    fn children(
        &mut self,
        mut open: impl FnMut(&mut Self, BytesStart<'a>, u64) -> Result<(), ZypperParseError>,
    ) -> Result<(), ZypperParseError> {
        loop {
            match self.child()? {
                Node::Close => return Ok(()),
                Node::Text(_) => {}
                Node::Open { tag, pos } => open(self, tag, pos)?,
            }
        }
    }

    /// A `<message>`: an error message fails the parse, others are skipped.
    fn message(&mut self, tag: &BytesStart<'_>, pos: u64) -> Result<(), ZypperParseError> {
        let kind = self.attr_trimmed(tag, pos, "type")?;
        let text = self.text()?;
        if kind.as_deref() == Some("error") {
            return Err(self.fail(pos, format!("zypper reported an error: {}", excerpt(&text))));
        }
        Ok(())
    }

    /// Reads `<stream>`: messages, and `result` handled by `read`; every
    /// other element is skipped. A missing `result` is an error when
    /// `required`.
    fn stream(
        &mut self,
        result: &str,
        required: bool,
        mut read: impl FnMut(&mut Self) -> Result<(), ZypperParseError>,
    ) -> Result<(), ZypperParseError> {
        self.stream_root()?;
        let mut found = false;
        self.children(|x, tag, pos| match tag.local_name().as_ref() {
            "message" => x.message(&tag, pos),
            name if name == result => {
                found = true;
                read(x)
            }
            _ => x.skip(),
        })?;
        if required && !found {
            let at = self.reader.buffer_position();
            return Err(self.fail(at, format!("no <{}> element in the output", result)));
        }
        self.finish()
    }
}

// ---------------------------------------------------------------------------
// list-patches

/// Reads `zypper --xmlout list-patches [--all]`: one notice per
/// `<update kind="patch">` of `<update-list>` and `<blocked-update-list>`.
///
/// * `id` is the patch name, `type` its category, `severity` as zypper
///   prints it (lower case; left out when blank), `title` the summary,
///   `repository` the repository alias.
/// * `updated` is `<issue-date>`: libzypp shows the updateinfo's *updated*
///   date there (its `issued` date is not in the output, so `issued` stays
///   unset). The `text` form (RFC 3339) is kept; without it, `time_t`.
/// * `restart="true"` sets `reboot_suggested`.
/// * `cves` and `bugzilla` come from `<issue-list>`.
/// * `packages` stays empty: the output does not list them (see the module
///   documentation).
pub fn parse_list_patches(input: &str, xml: &[u8]) -> Result<Vec<UpdateNotice>, ZypperParseError> {
    let mut x = Xml::new(input, xml)?;
    let mut out = Vec::new();
    x.stream("update-status", true, |x| {
        x.children(|x, tag, _| match tag.local_name().as_ref() {
            "update-list" | "blocked-update-list" => {
                x.children(|x, tag, pos| match tag.local_name().as_ref() {
                    "update" => {
                        if let Some(notice) = patch(x, &tag, pos)? {
                            out.push(notice);
                        }
                        Ok(())
                    }
                    _ => x.skip(),
                })
            }
            _ => x.skip(),
        })
    })?;
    Ok(out)
}

/// One `<update>`; `None` when it is not a patch (then it is skipped).
fn patch(
    x: &mut Xml<'_>,
    tag: &BytesStart<'_>,
    pos: u64,
) -> Result<Option<UpdateNotice>, ZypperParseError> {
    if x.attr_trimmed(tag, pos, "kind")?
        .as_deref()
        .unwrap_or("patch")
        != "patch"
    {
        x.skip()?;
        return Ok(None);
    }
    let id = x.required(tag, pos, "name")?;
    let kind = x.required(tag, pos, "category")?;
    let mut notice = UpdateNotice {
        id,
        kind,
        severity: x.attr_trimmed(tag, pos, "severity")?,
        title: None,
        issued: None,
        updated: None,
        cves: Vec::new(),
        bugzilla: Vec::new(),
        reboot_suggested: x
            .attr_trimmed(tag, pos, "restart")?
            .is_some_and(|r| r.eq_ignore_ascii_case("true") || r == "1"),
        repository: None,
        packages: Vec::new(),
    };
    x.children(|x, tag, at| match tag.local_name().as_ref() {
        "summary" => {
            notice.title = Some(x.text()?).filter(|t| !t.is_empty());
            Ok(())
        }
        "source" => {
            notice.repository = x.attr_trimmed(&tag, at, "alias")?;
            x.skip()
        }
        "issue-date" => {
            notice.updated = issue_date(x, &tag, at)?;
            x.skip()
        }
        "issue-list" => x.children(|x, tag, at| {
            if tag.local_name().as_ref() == "issue" {
                let kind = x.attr_trimmed(&tag, at, "type")?;
                let id = x.attr_trimmed(&tag, at, "id")?;
                match (kind.as_deref(), id) {
                    (Some("cve"), Some(id)) => push_unique(&mut notice.cves, id),
                    (Some("bugzilla"), Some(id)) => push_unique(&mut notice.bugzilla, id),
                    _ => {}
                }
            }
            x.skip()
        }),
        _ => x.skip(),
    })?;
    Ok(Some(notice))
}

/// `<issue-date time_t="…" text="…"/>`: the text, else the time_t as RFC 3339;
/// `None` when both are missing or the time_t is 0 (no date).
fn issue_date(
    x: &Xml<'_>,
    tag: &BytesStart<'_>,
    pos: u64,
) -> Result<Option<String>, ZypperParseError> {
    if let Some(text) = x.attr_trimmed(tag, pos, "text")? {
        return Ok(Some(text));
    }
    let Some(secs) = x.attr_trimmed(tag, pos, "time_t")? else {
        return Ok(None);
    };
    let secs: i64 = secs.parse().map_err(|_| {
        x.fail(
            pos,
            format!("issue-date time_t '{}' is not a number", excerpt(&secs)),
        )
    })?;
    if secs == 0 {
        return Ok(None);
    }
    let ts = Timestamp::from_second(secs)
        .map_err(|e| x.fail(pos, format!("issue-date time_t {secs}: {e}")))?;
    Ok(Some(ts.to_string()))
}

// ---------------------------------------------------------------------------
// search

/// The repository alias zypper gives installed packages that no enabled
/// repository offers.
pub const SYSTEM_REPOSITORY: &str = "@System";

/// Reads `zypper --xmlout search -s` (`--details`): every version a
/// repository offers, installed or not, as `name`, `arch`, `version` (the
/// edition, `[epoch:]version-release`) and `repository` (the alias).
/// Skipped: solvables that are not packages (patches, patterns, products,
/// source packages), source architectures, and installed packages no
/// repository offers (repository `@System`). A version listed twice by one
/// repository is kept once. When nothing matches, zypper writes only a
/// message ("No matching items found.", exit code 104): an empty list.
pub fn parse_search(input: &str, xml: &[u8]) -> Result<Vec<AvailablePackage>, ZypperParseError> {
    let mut x = Xml::new(input, xml)?;
    let mut out: Vec<AvailablePackage> = Vec::new();
    x.stream("search-result", false, |x| {
        x.children(|x, tag, _| match tag.local_name().as_ref() {
            "solvable-list" => x.children(|x, tag, pos| {
                if tag.local_name().as_ref() == "solvable"
                    && let Some(p) = solvable(x, &tag, pos)?
                    && !out.iter().any(|o| {
                        o.name == p.name
                            && o.arch == p.arch
                            && o.version == p.version
                            && o.repository == p.repository
                    })
                {
                    out.push(p);
                }
                x.skip()
            }),
            _ => x.skip(),
        })
    })?;
    Ok(out)
}

fn solvable(
    x: &Xml<'_>,
    tag: &BytesStart<'_>,
    pos: u64,
) -> Result<Option<AvailablePackage>, ZypperParseError> {
    if x.attr_trimmed(tag, pos, "kind")?
        .as_deref()
        .unwrap_or("package")
        != "package"
    {
        return Ok(None);
    }
    let name = x.required(tag, pos, "name")?;
    let arch = x.required(tag, pos, "arch")?;
    let version = x.required(tag, pos, "edition")?;
    let repository = x.required(tag, pos, "repository")?;
    if arch == "src" || arch == "nosrc" || repository == SYSTEM_REPOSITORY {
        return Ok(None);
    }
    rpmver::validate(&version)
        .map_err(|e| x.fail(pos, format!("{name}: edition '{}': {e}", excerpt(&version))))?;
    Ok(Some(AvailablePackage {
        name,
        arch,
        version,
        repository: Some(repository),
        origins: Vec::new(),
        priority: None,
        section: None,
        build_time: None,
        first_seen: None,
    }))
}
