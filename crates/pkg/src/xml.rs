//! What the metadata parsers share: the error that names the input, the
//! line and the problem, and a streaming XML reader (quick-xml) that turns a
//! document into the few steps the parsers need, with line numbers for every
//! error. No document is ever built in memory.

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use std::borrow::Cow;
use std::fmt;

/// Metadata could not be read: names the input, the line when there is one,
/// and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError {
    pub input: String,
    /// 1-based; `None` for problems of the whole input (decompression).
    pub line: Option<usize>,
    pub problem: String,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.input, self.problem),
            None => write!(f, "{}: {}", self.input, self.problem),
        }
    }
}

impl std::error::Error for MetadataError {}

pub(crate) fn error(input: &str, line: Option<usize>, problem: impl Into<String>) -> MetadataError {
    MetadataError {
        input: input.to_string(),
        line,
        problem: problem.into(),
    }
}

/// At most 60 characters of a value, for error messages.
pub(crate) fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The 1-based line of byte offset `pos` in `text`.
pub(crate) fn line_at(text: &[u8], pos: u64) -> usize {
    let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    1 + text[..end].iter().filter(|&&b| b == b'\n').count()
}

/// One step of the document, as the parsers need it.
pub(crate) enum Node<'a> {
    /// A start tag (empty elements are expanded into a start and an end);
    /// `pos` is the byte offset of its `<`.
    Open {
        tag: BytesStart<'a>,
        pos: u64,
    },
    Close,
    /// Character data (text, CDATA or an entity/character reference).
    Text(Cow<'a, str>),
}

pub(crate) struct Xml<'a> {
    pub(crate) input: &'a str,
    pub(crate) bytes: &'a [u8],
    pub(crate) reader: Reader<&'a [u8]>,
    pub(crate) depth: usize,
    /// The root element's name, once read (for messages).
    root: String,
}

impl<'a> Xml<'a> {
    pub(crate) fn new(input: &'a str, xml: &'a [u8]) -> Result<Xml<'a>, MetadataError> {
        let xml = xml.strip_prefix(b"\xef\xbb\xbf").unwrap_or(xml);
        let text = std::str::from_utf8(xml).map_err(|e| {
            error(
                input,
                Some(line_at(xml, e.valid_up_to() as u64)),
                "the text is not valid UTF-8",
            )
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
            root: String::new(),
        })
    }

    pub(crate) fn fail(&self, pos: u64, problem: impl Into<String>) -> MetadataError {
        error(self.input, Some(line_at(self.bytes, pos)), problem)
    }

    /// The next node; `None` at the end of the document (only reached with
    /// every element closed).
    pub(crate) fn next(&mut self) -> Result<Option<Node<'a>>, MetadataError> {
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
                Event::Start(tag) => {
                    self.depth += 1;
                    Node::Open { tag, pos }
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    Node::Close
                }
                Event::Empty(tag) => {
                    // Not produced with expand_empty_elements; kept for safety.
                    self.depth += 1;
                    Node::Open { tag, pos }
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
    pub(crate) fn child(&mut self) -> Result<Node<'a>, MetadataError> {
        match self.next()? {
            Some(node) => Ok(node),
            // `next` reports an unclosed element itself; this is for safety.
            None => Err(self.fail(
                self.bytes.len() as u64,
                "unexpected end of input inside an element",
            )),
        }
    }

    /// Reads the root element, which must be named `name`.
    pub(crate) fn root(&mut self, name: &str) -> Result<(), MetadataError> {
        loop {
            let start = self.reader.buffer_position();
            match self.next()? {
                None => return Err(self.fail(0, format!("no <{name}> element: empty document"))),
                Some(Node::Text(t)) if t.trim().is_empty() => {}
                Some(Node::Text(t)) => {
                    // Point at where the stray text begins, not where it ends.
                    let blank = t.len() - t.trim_start().len();
                    let at = start.saturating_add(blank as u64);
                    return Err(self.fail(at, format!("text before the <{name}> element")));
                }
                Some(Node::Close) => {
                    let at = self.reader.buffer_position();
                    return Err(self.fail(at, "end tag without a start tag"));
                }
                Some(Node::Open { tag, pos }) => {
                    if tag.local_name().as_ref() != name {
                        return Err(self.fail(
                            pos,
                            format!(
                                "the root element is <{}>, expected <{name}>",
                                excerpt(tag.name().as_ref())
                            ),
                        ));
                    }
                    self.root = name.to_string();
                    return Ok(());
                }
            }
        }
    }

    /// After the root element closed: only blanks, comments and processing
    /// instructions may follow.
    pub(crate) fn finish(&mut self) -> Result<(), MetadataError> {
        loop {
            let pos = self.reader.buffer_position();
            match self.next()? {
                None => return Ok(()),
                Some(Node::Text(t)) if t.trim().is_empty() => {}
                Some(_) => {
                    return Err(
                        self.fail(pos, format!("content after the </{}> element", self.root))
                    );
                }
            }
        }
    }

    /// Skips the rest of the element just opened.
    pub(crate) fn skip(&mut self) -> Result<(), MetadataError> {
        let target = self.depth.saturating_sub(1);
        while self.depth > target {
            self.child()?;
        }
        Ok(())
    }

    /// The text of the element just opened, trimmed; the text of nested
    /// elements is ignored.
    pub(crate) fn text(&mut self) -> Result<String, MetadataError> {
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
        let trimmed = out.trim();
        if trimmed.len() != out.len() {
            out = trimmed.to_string();
        }
        Ok(out)
    }

    /// The value of attribute `name` (compared without namespace prefix).
    pub(crate) fn attr(
        &self,
        tag: &BytesStart<'_>,
        pos: u64,
        name: &str,
    ) -> Result<Option<String>, MetadataError> {
        for attr in tag.attributes() {
            let attr = attr.map_err(|e| self.fail(pos, format!("malformed attribute: {e}")))?;
            if attr.key.local_name().as_ref() == name {
                let value = attr
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| self.fail(pos, format!("attribute {name}: {e}")))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }
}

pub(crate) fn element_name(tag: &BytesStart<'_>) -> String {
    excerpt(tag.name().as_ref())
}

/// Appends a non-empty value once.
pub(crate) fn push_unique(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
    }
}
