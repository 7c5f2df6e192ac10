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
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::borrow::Cow;
use std::fmt;

/// zypper output could not be read: names the input, the line when there
/// is one, and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZypperParseError {
    pub input: String,
    /// 1-based; `None` for problems of the whole input.
    pub line: Option<usize>,
    pub problem: String,
}

impl fmt::Display for ZypperParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.input, self.problem),
            None => write!(f, "{}: {}", self.input, self.problem),
        }
    }
}

impl std::error::Error for ZypperParseError {}

/// At most 60 characters of a value, for error messages.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The 1-based line of byte offset `pos` in `text`.
fn line_at(text: &[u8], pos: u64) -> usize {
    let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    1 + text[..end].iter().filter(|&&b| b == b'\n').count()
}

// ---------------------------------------------------------------------------
// The streaming reader

enum Node<'a> {
    /// A start tag (empty elements are expanded); `pos` is the offset of `<`.
    Open {
        tag: BytesStart<'a>,
        pos: u64,
    },
    Close,
    Text(Cow<'a, str>),
}

struct Xml<'a> {
    input: &'a str,
    bytes: &'a [u8],
    reader: Reader<&'a [u8]>,
    depth: usize,
}

impl<'a> Xml<'a> {
    fn new(input: &'a str, xml: &'a [u8]) -> Result<Xml<'a>, ZypperParseError> {
        let xml = xml.strip_prefix(b"\xef\xbb\xbf").unwrap_or(xml);
        let text = std::str::from_utf8(xml).map_err(|e| ZypperParseError {
            input: input.to_string(),
            line: Some(line_at(xml, e.valid_up_to() as u64)),
            problem: "the text is not valid UTF-8".to_string(),
        })?;
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        Ok(Xml {
            input,
            bytes: xml,
            reader,
            depth: 0,
        })
    }

    fn fail(&self, pos: u64, problem: impl Into<String>) -> ZypperParseError {
        ZypperParseError {
            input: self.input.to_string(),
            line: Some(line_at(self.bytes, pos)),
            problem: problem.into(),
        }
    }

    /// The next node; `None` at the end of the document (only reached with
    /// every element closed).
    fn next(&mut self) -> Result<Option<Node<'a>>, ZypperParseError> {
        loop {
            let pos = self.reader.buffer_position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(e) => {
                    let at = self.reader.error_position();
                    return Err(self.fail(at, format!("malformed XML: {e}")));
                }
            };
            return Ok(Some(match event {
                Event::Start(tag) | Event::Empty(tag) => {
                    self.depth += 1;
                    Node::Open { tag, pos }
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    Node::Close
                }
                Event::Text(t) => Node::Text(t.xml10_content()),
                Event::CData(t) => Node::Text(t.xml10_content()),
                Event::GeneralRef(r) => {
                    if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(c)) => Node::Text(Cow::Owned(c.to_string())),
                            _ => {
                                return Err(self.fail(
                                    pos,
                                    format!("invalid character reference &{};", excerpt(&r)),
                                ));
                            }
                        }
                    } else {
                        let s = match &*r {
                            "lt" => "<",
                            "gt" => ">",
                            "amp" => "&",
                            "apos" => "'",
                            "quot" => "\"",
                            other => {
                                return Err(
                                    self.fail(pos, format!("unknown entity &{};", excerpt(other)))
                                );
                            }
                        };
                        Node::Text(Cow::Borrowed(s))
                    }
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => continue,
                Event::Eof => {
                    if self.depth > 0 {
                        let at = self.reader.buffer_position();
                        return Err(self.fail(
                            at,
                            format!(
                                "unexpected end of input: {} element(s) not closed",
                                self.depth
                            ),
                        ));
                    }
                    return Ok(None);
                }
            }));
        }
    }

    /// Like [`Self::next`], inside an element: the end of input is an error.
    fn child(&mut self) -> Result<Node<'a>, ZypperParseError> {
        match self.next()? {
            Some(node) => Ok(node),
            None => Err(self.fail(
                self.bytes.len() as u64,
                "unexpected end of input inside an element",
            )),
        }
    }

    /// Reads the root element, which must be `<stream>`.
    fn root(&mut self) -> Result<(), ZypperParseError> {
        loop {
            let start = self.reader.buffer_position();
            match self.next()? {
                None => return Err(self.fail(0, "no <stream> element: empty output")),
                Some(Node::Text(t)) if t.trim().is_empty() => {}
                Some(Node::Text(t)) => {
                    let blank = t.len() - t.trim_start().len();
                    let at = start.saturating_add(blank as u64);
                    return Err(
                        self.fail(at, "text before the <stream> element (was --xmlout given?)")
                    );
                }
                Some(Node::Close) => {
                    let at = self.reader.buffer_position();
                    return Err(self.fail(at, "end tag without a start tag"));
                }
                Some(Node::Open { tag, pos }) => {
                    if tag.local_name().as_ref() != "stream" {
                        return Err(self.fail(
                            pos,
                            format!(
                                "the root element is <{}>, expected <stream>",
                                element_name(&tag)
                            ),
                        ));
                    }
                    return Ok(());
                }
            }
        }
    }

    /// After the root element closed: only blanks may follow.
    fn finish(&mut self) -> Result<(), ZypperParseError> {
        loop {
            let pos = self.reader.buffer_position();
            match self.next()? {
                None => return Ok(()),
                Some(Node::Text(t)) if t.trim().is_empty() => {}
                Some(_) => return Err(self.fail(pos, "content after the </stream> element")),
            }
        }
    }

    /// Skips the rest of the element just opened.
    fn skip(&mut self) -> Result<(), ZypperParseError> {
        let target = self.depth.saturating_sub(1);
        while self.depth > target {
            self.child()?;
        }
        Ok(())
    }

    /// The text of the element just opened, trimmed; the text of nested
    /// elements is ignored.
    fn text(&mut self) -> Result<String, ZypperParseError> {
        let own = self.depth;
        let mut out = String::new();
        loop {
            match self.child()? {
                Node::Text(t) if self.depth == own => out.push_str(&t),
                Node::Text(_) | Node::Open { .. } => {}
                Node::Close if self.depth < own => break,
                Node::Close => {}
            }
        }
        Ok(out.trim().to_string())
    }

    /// The value of attribute `name`, trimmed; `None` when absent or blank.
    fn attr(
        &self,
        tag: &BytesStart<'_>,
        pos: u64,
        name: &str,
    ) -> Result<Option<String>, ZypperParseError> {
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| self.fail(pos, format!("malformed attribute: {e}")))?;
            if attr.key.local_name().as_ref() == name {
                let value = attr
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| self.fail(pos, format!("attribute {name}: {e}")))?;
                let value = value.trim();
                return Ok((!value.is_empty()).then(|| value.to_string()));
            }
        }
        Ok(None)
    }

    /// Like [`Self::attr`], but the attribute must be there.
    fn required(
        &self,
        tag: &BytesStart<'_>,
        pos: u64,
        name: &str,
    ) -> Result<String, ZypperParseError> {
        self.attr(tag, pos, name)?.ok_or_else(|| {
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
        let kind = self.attr(tag, pos, "type")?;
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
        self.root()?;
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

fn element_name(tag: &BytesStart<'_>) -> String {
    excerpt(tag.name().as_ref())
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
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
    if x.attr(tag, pos, "kind")?.as_deref().unwrap_or("patch") != "patch" {
        x.skip()?;
        return Ok(None);
    }
    let id = x.required(tag, pos, "name")?;
    let kind = x.required(tag, pos, "category")?;
    let mut notice = UpdateNotice {
        id,
        kind,
        severity: x.attr(tag, pos, "severity")?,
        title: None,
        issued: None,
        updated: None,
        cves: Vec::new(),
        bugzilla: Vec::new(),
        reboot_suggested: x
            .attr(tag, pos, "restart")?
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
            notice.repository = x.attr(&tag, at, "alias")?;
            x.skip()
        }
        "issue-date" => {
            notice.updated = issue_date(x, &tag, at)?;
            x.skip()
        }
        "issue-list" => x.children(|x, tag, at| {
            if tag.local_name().as_ref() == "issue" {
                let kind = x.attr(&tag, at, "type")?;
                let id = x.attr(&tag, at, "id")?;
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
    if let Some(text) = x.attr(tag, pos, "text")? {
        return Ok(Some(text));
    }
    let Some(secs) = x.attr(tag, pos, "time_t")? else {
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
    if x.attr(tag, pos, "kind")?.as_deref().unwrap_or("package") != "package" {
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
