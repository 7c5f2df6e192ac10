//! Pure parsers of `zypper --xmlout` output (zypper 1.14, libzypp 17):
//!
//! * [`parse_list_patches`]: `zypper --xmlout list-patches --all` →
//!   one [`UpdateNotice`] per `<update kind="patch">`.
//! * [`parse_search`]: `zypper --xmlout search -s` → one
//!   [`AvailablePackage`] per `<solvable kind="package">` that a repository
//!   offers.
//!
//! * [`parse_install`]: `zypper --xmlout install [--dry-run]` → the
//!   transaction zypper resolved (one [`SimStep`] per package it would
//!   install, upgrade, downgrade or remove) and every message it wrote,
//!   errors included (they say why a version cannot be installed).
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

use crate::install::{SimAction, SimStep};
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

    /// A `<message>`: an error message fails the parse unless `sink`
    /// collects messages (then every one goes there with its type).
    fn message(
        &mut self,
        tag: &BytesStart<'_>,
        pos: u64,
        sink: Option<&mut Vec<ZypperMessage>>,
    ) -> Result<(), ZypperParseError> {
        let kind = self.attr_trimmed(tag, pos, "type")?;
        let text = self.text()?;
        match sink {
            Some(sink) => sink.push(ZypperMessage {
                kind: kind.unwrap_or_default(),
                text: text.trim().to_string(),
            }),
            None if kind.as_deref() == Some("error") => {
                return Err(self.fail(pos, format!("zypper reported an error: {}", excerpt(&text))));
            }
            None => {}
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
        mut messages: Option<&mut Vec<ZypperMessage>>,
        mut read: impl FnMut(&mut Self) -> Result<(), ZypperParseError>,
    ) -> Result<(), ZypperParseError> {
        self.stream_root()?;
        let mut found = false;
        self.children(|x, tag, pos| match tag.local_name().as_ref() {
            "message" => x.message(&tag, pos, messages.as_deref_mut()),
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
    x.stream("update-status", true, None, |x| {
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
    x.stream("search-result", false, None, |x| {
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

// ---------------------------------------------------------------------------
// install

/// One `<message>` of zypper's output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ZypperMessage {
    /// `info`, `warning`, `error` (as zypper writes it).
    pub kind: String,
    pub text: String,
}

/// What `zypper --xmlout install [--dry-run]` said.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InstallOutput {
    /// The resolved transaction, in zypper's order; empty when zypper
    /// stopped before resolving (see `messages`).
    pub steps: Vec<SimStep>,
    /// Whether an `<install-summary>` was written (a resolved transaction,
    /// possibly "Nothing to do").
    pub summary: bool,
    pub messages: Vec<ZypperMessage>,
}

impl InstallOutput {
    /// The texts of the error messages.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.messages
            .iter()
            .filter(|m| m.kind == "error")
            .map(|m| m.text.as_str())
    }
}

/// Reads `zypper --xmlout install [--dry-run] …`: the `<install-summary>`
/// lists of `<solvable>`s, by what happens to them (`to-install`,
/// `to-upgrade`, `to-downgrade`, `to-reinstall`, `to-change-arch`,
/// `to-change-vendor`: [`SimAction::Install`]; `to-remove`:
/// [`SimAction::Remove`]; other lists, such as the updates zypper will not
/// install, change nothing and are skipped), and every message, in order.
/// Messages of type `error` are data here, not a parse error: they are
/// zypper's reason (`No provider of 'x=1' found.`, a held lock).
///
/// A step's `new` is the `edition`, `old` the `edition-old` (an upgrade or
/// downgrade) or, for a removal, the `edition`; `origin` the `repository`
/// when zypper names it.
pub fn parse_install(input: &str, xml: &[u8]) -> Result<InstallOutput, ZypperParseError> {
    let mut x = Xml::new(input, xml)?;
    let mut out = InstallOutput::default();
    let mut messages = Vec::new();
    let mut steps = Vec::new();
    let mut summary = false;
    x.stream("install-summary", false, Some(&mut messages), |x| {
        summary = true;
        x.children(|x, tag, _| {
            let action = match tag.local_name().as_ref() {
                "to-remove" => SimAction::Remove,
                "to-install" | "to-upgrade" | "to-downgrade" | "to-reinstall"
                | "to-change-arch" | "to-change-vendor" => SimAction::Install,
                _ => return x.skip(),
            };
            x.children(|x, tag, pos| {
                if tag.local_name().as_ref() == "solvable"
                    && let Some(step) = install_step(x, &tag, pos, action)?
                {
                    steps.push(step);
                }
                x.skip()
            })
        })
    })?;
    out.steps = steps;
    out.summary = summary;
    out.messages = messages;
    Ok(out)
}

/// One `<solvable>` of an install-summary list; `None` when it is not a
/// package (a patch, a pattern, a product).
fn install_step(
    x: &Xml<'_>,
    tag: &BytesStart<'_>,
    pos: u64,
    action: SimAction,
) -> Result<Option<SimStep>, ZypperParseError> {
    let kind = x.attr_trimmed(tag, pos, "type")?;
    if kind.as_deref().unwrap_or("package") != "package" {
        return Ok(None);
    }
    let name = x.required(tag, pos, "name")?;
    let edition = x.required(tag, pos, "edition")?;
    rpmver::validate(&edition)
        .map_err(|e| x.fail(pos, format!("{name}: edition '{}': {e}", excerpt(&edition))))?;
    let old = match x.attr_trimmed(tag, pos, "edition-old")? {
        Some(old) => {
            rpmver::validate(&old).map_err(|e| {
                x.fail(pos, format!("{name}: edition-old '{}': {e}", excerpt(&old)))
            })?;
            Some(old)
        }
        None => None,
    };
    let (old, new) = match action {
        SimAction::Remove => (Some(edition), None),
        _ => (old, Some(edition)),
    };
    Ok(Some(SimStep {
        action,
        name,
        arch: x.attr_trimmed(tag, pos, "arch")?,
        old,
        new,
        origin: x.attr_trimmed(tag, pos, "repository")?,
    }))
}
