//! deb822 paragraphs and the dpkg/APT files built from them.

use patchfleet_core::facts::{AptOrigin, AvailablePackage, InstalledPackage};
use serde::Serialize;
use std::borrow::Cow;

/// A dpkg or APT file could not be read: names the input, the line and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: line {line}: {problem}")]
pub struct AptParseError {
    pub input: String,
    pub line: usize,
    pub problem: String,
}

fn error(input: &str, line: usize, problem: impl Into<String>) -> AptParseError {
    AptParseError {
        input: input.to_string(),
        line,
        problem: problem.into(),
    }
}

/// At most 60 characters of a line, for error messages.
fn excerpt(line: &str) -> String {
    let mut s: String = line.chars().take(60).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

// ---------------------------------------------------------------------------
// deb822

/// One field of a paragraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    /// The value with surrounding blanks removed; continuation lines are
    /// kept as written (each after a `\n`, with its leading blank).
    pub value: &'a str,
    /// Line of the field name (1-based).
    pub line: usize,
}

impl<'a> Field<'a> {
    pub fn is_multiline(&self) -> bool {
        self.value.contains('\n')
    }

    /// The lines of a multi-line value, each trimmed, the first included.
    pub fn lines(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.value.split('\n').map(str::trim)
    }
}

/// One deb822 stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paragraph<'a> {
    /// Line of the first field (1-based).
    pub line: usize,
    pub fields: Vec<Field<'a>>,
}

impl<'a> Paragraph<'a> {
    /// The field of that name; names are case-insensitive.
    pub fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// A one-line field that must be present and non-empty.
    pub fn required(&self, input: &str, name: &str) -> Result<&'a str, AptParseError> {
        match self.optional(input, name)? {
            Some(v) => Ok(v),
            None => Err(match self.get(name) {
                Some(f) => error(input, f.line, format!("field {name} is empty")),
                None => error(
                    input,
                    self.line,
                    format!("paragraph has no {name} field{}", self.describe()),
                ),
            }),
        }
    }

    /// A one-line field; absent or empty → `None`; several lines → error.
    pub fn optional(&self, input: &str, name: &str) -> Result<Option<&'a str>, AptParseError> {
        let Some(f) = self.get(name) else {
            return Ok(None);
        };
        if f.is_multiline() {
            return Err(error(
                input,
                f.line,
                format!("field {name} must be a single line"),
            ));
        }
        Ok(Some(f.value).filter(|v| !v.is_empty()))
    }

    /// ` (Package: foo)` when the paragraph names a package, for messages.
    fn describe(&self) -> String {
        match self.get("Package") {
            Some(f) if !f.is_multiline() => format!(" (Package: {})", excerpt(f.value)),
            _ => String::new(),
        }
    }
}

/// Reads deb822 paragraphs one by one (RFC 822-style stanzas separated by
/// blank lines; lines starting with a blank continue the previous field).
///
/// Field names are checked (non-empty, printable, no `:`/blank, not starting
/// with `-`), duplicates within a paragraph are errors, and so are `#`
/// comment lines (dpkg's status file and APT indexes have none; deb822
/// `.sources` files, which allow them, are not read here). After an error
/// the iterator ends.
#[derive(Clone, Debug)]
pub struct Paragraphs<'a> {
    input: &'a str,
    text: &'a str,
    pos: usize,
    line: usize,
    done: bool,
}

impl<'a> Paragraphs<'a> {
    /// `input` names the text in errors (usually its path).
    pub fn new(input: &'a str, text: &'a str) -> Self {
        Paragraphs {
            input,
            text,
            pos: 0,
            line: 1,
            done: false,
        }
    }

    /// Number lines from `line` (when `text` is part of a larger file).
    pub fn first_line(mut self, line: usize) -> Self {
        self.line = line;
        self
    }

    fn fail(
        &mut self,
        line: usize,
        problem: String,
    ) -> Option<Result<Paragraph<'a>, AptParseError>> {
        self.done = true;
        Some(Err(error(self.input, line, problem)))
    }
}

impl<'a> Iterator for Paragraphs<'a> {
    type Item = Result<Paragraph<'a>, AptParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let text = self.text;
        // (name, value start, value end, line) of the fields read so far.
        let mut fields: Vec<(&'a str, usize, usize, usize)> = Vec::new();
        while let Some(rest) = text.get(self.pos..).filter(|r| !r.is_empty()) {
            let (raw, advance) = match rest.find('\n') {
                Some(i) => (&rest[..i], i + 1),
                None => (rest, rest.len()),
            };
            let start = self.pos;
            let lineno = self.line;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            self.pos += advance;
            self.line += 1;
            if line.trim().is_empty() {
                if fields.is_empty() {
                    continue;
                }
                break;
            }
            if line.starts_with('#') {
                return self.fail(
                    lineno,
                    format!("comment lines are not allowed here: '{}'", excerpt(line)),
                );
            }
            if line.starts_with([' ', '\t']) {
                match fields.last_mut() {
                    Some(field) => field.2 = start + line.len(),
                    None => {
                        return self.fail(
                            lineno,
                            format!("continuation line without a field: '{}'", excerpt(line)),
                        );
                    }
                }
                continue;
            }
            let Some(colon) = line.find(':') else {
                return self.fail(
                    lineno,
                    format!("expected 'Field: value', found '{}'", excerpt(line)),
                );
            };
            let name = &line[..colon];
            if name.is_empty() {
                return self.fail(lineno, format!("empty field name: '{}'", excerpt(line)));
            }
            if let Some(bad) = name.chars().find(|c| !c.is_ascii_graphic() || *c == ':') {
                return self.fail(
                    lineno,
                    format!(
                        "invalid character {bad:?} in field name '{}'",
                        excerpt(name)
                    ),
                );
            }
            if name.starts_with('-') {
                return self.fail(
                    lineno,
                    format!("a field name cannot start with '-': '{}'", excerpt(line)),
                );
            }
            if let Some(first) = fields.iter().find(|f| f.0.eq_ignore_ascii_case(name)) {
                let first_line = first.3;
                return self.fail(
                    lineno,
                    format!("duplicate field {name} (first on line {first_line})"),
                );
            }
            fields.push((name, start + colon + 1, start + line.len(), lineno));
        }
        let first = fields.first()?.3;
        let fields = fields
            .into_iter()
            .map(|(name, from, to, line)| Field {
                name,
                value: text.get(from..to).unwrap_or("").trim(),
                line,
            })
            .collect();
        Some(Ok(Paragraph {
            line: first,
            fields,
        }))
    }
}

// ---------------------------------------------------------------------------
// dpkg status

/// What the dpkg status database says is installed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DpkgStatus {
    /// Packages whose files are installed and configured: state `installed`
    /// (or `triggers-pending`/`triggers-awaited`, which are configured and
    /// only wait for a trigger), flag `ok`, any selection (`install`, and
    /// also `hold`, `deinstall`, `purge`: a held or to-be-removed package is
    /// still installed). `installed_time` is `None`: the status file has none.
    pub installed: Vec<InstalledPackage>,
    /// Packages a dpkg run left half-done (`iU`, `iF`, `iH`, or a `reinstreq`
    /// flag): the agent reports them; `dpkg --configure -a` or a reinstall
    /// repairs them.
    pub interrupted: Vec<InterruptedPackage>,
    /// Paragraphs of removed packages (`not-installed`, `config-files`).
    pub not_installed: usize,
}

/// A package in a half-done state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterruptedPackage {
    pub name: String,
    pub arch: Option<String>,
    pub version: Option<String>,
    /// The `Status` field as written, e.g. `install ok half-configured`.
    pub status: String,
    /// dpkg's abbreviation (`${db:Status-Abbrev}`), e.g. `iF`, `iHR`.
    pub abbrev: String,
    /// Line of the paragraph in the status file.
    pub line: usize,
}

/// One paragraph of the status file, with its `Status` decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DpkgEntry {
    pub name: String,
    pub arch: Option<String>,
    pub version: Option<String>,
    pub source: Option<String>,
    /// The version in `Source: foo (1.2)`, when the source version differs.
    pub source_version: Option<String>,
    pub want: String,
    pub flag: String,
    pub state: String,
    pub line: usize,
}

impl DpkgEntry {
    /// Reads one status paragraph.
    pub fn from_paragraph(input: &str, p: &Paragraph<'_>) -> Result<DpkgEntry, AptParseError> {
        let name = p.required(input, "Package")?;
        let status = p.required(input, "Status")?;
        let status_line = p.get("Status").map_or(p.line, |f| f.line);
        let words: Vec<&str> = status.split_ascii_whitespace().collect();
        let [want, flag, state] = words[..] else {
            return Err(error(
                input,
                status_line,
                format!(
                    "Status '{}' of {name} is not 'want flag state'",
                    excerpt(status)
                ),
            ));
        };
        let check = |word: &str, allowed: &[&str], what: &str| {
            if allowed.contains(&word) {
                Ok(())
            } else {
                Err(error(
                    input,
                    status_line,
                    format!(
                        "unknown {what} '{}' in Status of {name} (expected one of: {})",
                        excerpt(word),
                        allowed.join(", ")
                    ),
                ))
            }
        };
        check(
            want,
            &["unknown", "install", "hold", "deinstall", "purge"],
            "selection",
        )?;
        check(flag, &["ok", "reinstreq", "hold", "hold-reinstreq"], "flag")?;
        check(
            state,
            &[
                "not-installed",
                "config-files",
                "half-installed",
                "unpacked",
                "half-configured",
                "triggers-awaited",
                "triggers-pending",
                "installed",
            ],
            "state",
        )?;
        let (source, source_version) = match p.optional(input, "Source")? {
            Some(s) => {
                let (name, version) = split_source(s);
                (Some(name.to_string()), version.map(str::to_string))
            }
            None => (None, None),
        };
        Ok(DpkgEntry {
            name: name.to_string(),
            arch: p.optional(input, "Architecture")?.map(str::to_string),
            version: p.optional(input, "Version")?.map(str::to_string),
            source,
            source_version,
            want: want.to_string(),
            flag: flag.to_string(),
            state: state.to_string(),
            line: p.line,
        })
    }

    /// `${db:Status-Abbrev}` without its trailing blank: `ii`, `iF`, `rc`, `iHR`.
    pub fn abbrev(&self) -> String {
        let want = match self.want.as_str() {
            "install" => 'i',
            "hold" => 'h',
            "deinstall" => 'r',
            "purge" => 'p',
            _ => 'u',
        };
        let state = match self.state.as_str() {
            "not-installed" => 'n',
            "config-files" => 'c',
            "half-installed" => 'H',
            "unpacked" => 'U',
            "half-configured" => 'F',
            "triggers-awaited" => 'W',
            "triggers-pending" => 't',
            _ => 'i',
        };
        let mut s = String::from_iter([want, state]);
        if self.reinstall_required() {
            s.push('R');
        }
        s
    }

    pub fn reinstall_required(&self) -> bool {
        self.flag.ends_with("reinstreq")
    }

    /// Files present and configured (see [`DpkgStatus::installed`]).
    pub fn is_installed(&self) -> bool {
        !self.reinstall_required()
            && matches!(
                self.state.as_str(),
                "installed" | "triggers-pending" | "triggers-awaited"
            )
    }

    pub fn is_interrupted(&self) -> bool {
        self.reinstall_required()
            || matches!(
                self.state.as_str(),
                "half-installed" | "unpacked" | "half-configured"
            )
    }
}

/// `Source: foo (1.2-1)` → (`foo`, `Some("1.2-1")`); `foo` → (`foo`, `None`).
pub fn split_source(field: &str) -> (&str, Option<&str>) {
    let field = field.trim();
    match field.split_once('(') {
        Some((name, rest)) => {
            let version = rest.split(')').next().unwrap_or("").trim();
            (name.trim(), Some(version).filter(|v| !v.is_empty()))
        }
        None => (field, None),
    }
}

/// Parses `/var/lib/dpkg/status` (or `dpkg-query --status` output).
///
/// An installed package must have an `Architecture` and a `Version`; the
/// error names the line of its paragraph.
pub fn parse_dpkg_status(input: &str, text: &str) -> Result<DpkgStatus, AptParseError> {
    let mut out = DpkgStatus::default();
    for p in Paragraphs::new(input, text) {
        let p = p?;
        let entry = DpkgEntry::from_paragraph(input, &p)?;
        if entry.is_installed() {
            let arch = p.required(input, "Architecture")?;
            let version = p.required(input, "Version")?;
            out.installed.push(InstalledPackage {
                name: entry.name,
                arch: arch.to_string(),
                version: version.to_string(),
                installed_time: None,
                source: entry.source,
            });
        } else if entry.is_interrupted() {
            out.interrupted.push(InterruptedPackage {
                abbrev: entry.abbrev(),
                status: format!("{} {} {}", entry.want, entry.flag, entry.state),
                name: entry.name,
                arch: entry.arch,
                version: entry.version,
                line: entry.line,
            });
        } else {
            out.not_installed += 1;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Release / InRelease

const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// Removes an OpenPGP clearsign wrapper (RFC 4880 §7): the armor headers,
/// the dash-escaping of the body and the signature block. Returns the body
/// and the line of the file its first line is on; text that is not
/// clearsigned is returned as is (line 1). Checking the signature is the
/// caller's business (apt did it when it fetched the file).
pub fn strip_clearsign<'a>(
    input: &str,
    text: &'a str,
) -> Result<(Cow<'a, str>, usize), AptParseError> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut lineno = 0usize;
    // Leading blank lines before the armor are tolerated (as by gpgv).
    let mut first = None;
    for line in lines.by_ref() {
        lineno += 1;
        if !line.trim().is_empty() {
            first = Some(line);
            break;
        }
    }
    if first.map(str::trim_end) != Some(BEGIN_SIGNED) {
        return Ok((Cow::Borrowed(text), 1));
    }
    let begin_line = lineno;
    // Armor headers ("Hash: SHA512") up to a blank line.
    loop {
        lineno += 1;
        match lines.next() {
            None => {
                return Err(error(
                    input,
                    begin_line,
                    "clearsigned message ends inside its armor headers",
                ));
            }
            Some(l) if l.trim().is_empty() => break,
            Some(l) if !l.contains(": ") => {
                return Err(error(
                    input,
                    lineno,
                    format!("invalid armor header '{}'", excerpt(l)),
                ));
            }
            Some(_) => {}
        }
    }
    let body_line = lineno + 1;
    let mut body = String::with_capacity(text.len());
    let mut signature_line = None;
    for line in lines.by_ref() {
        lineno += 1;
        if line.trim_end() == BEGIN_SIGNATURE {
            signature_line = Some(lineno);
            break;
        }
        if let Some(escaped) = line.strip_prefix("- ") {
            body.push_str(escaped);
        } else if line.starts_with('-') {
            return Err(error(
                input,
                lineno,
                format!(
                    "line starting with '-' inside the signed text is not dash-escaped: '{}'",
                    excerpt(line)
                ),
            ));
        } else {
            body.push_str(line);
        }
        body.push('\n');
    }
    let Some(signature_line) = signature_line else {
        return Err(error(
            input,
            begin_line,
            format!("clearsigned message has no '{BEGIN_SIGNATURE}' line"),
        ));
    };
    if !lines.any(|l| l.trim_end() == END_SIGNATURE) {
        return Err(error(
            input,
            signature_line,
            format!("signature block is not closed by '{END_SIGNATURE}'"),
        ));
    }
    Ok((Cow::Owned(body), body_line))
}

/// The fields of a `Release`/`InRelease` file that describe the archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    /// `Suite` (`a=` in apt-cache policy), e.g. `oldstable-security`.
    pub suite: Option<String>,
    /// `n=`, e.g. `bookworm-security`.
    pub codename: Option<String>,
    pub version: Option<String>,
    /// As written (RFC 2822 style, `Sat, 21 Nov 2026 00:53:02 UTC`).
    pub date: Option<String>,
    pub valid_until: Option<String>,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// The text was clearsigned (`InRelease`).
    pub clearsigned: bool,
}

impl Release {
    /// Parses a `Release` or `InRelease` file (the clearsign wrapper is removed).
    pub fn parse(input: &str, text: &str) -> Result<Release, AptParseError> {
        let (body, first_line) = strip_clearsign(input, text)?;
        let clearsigned = matches!(body, Cow::Owned(_));
        let mut paragraphs = Paragraphs::new(input, &body).first_line(first_line);
        let Some(p) = paragraphs.next().transpose()? else {
            return Err(error(input, first_line, "Release file has no fields"));
        };
        if let Some(extra) = paragraphs.next().transpose()? {
            return Err(error(
                input,
                extra.line,
                "Release file has more than one paragraph",
            ));
        }
        let text = |name: &str| -> Result<Option<String>, AptParseError> {
            Ok(p.optional(input, name)?.map(str::to_string))
        };
        let words = |name: &str| -> Result<Vec<String>, AptParseError> {
            Ok(p.optional(input, name)?
                .map(|v| v.split_ascii_whitespace().map(str::to_string).collect())
                .unwrap_or_default())
        };
        Ok(Release {
            origin: text("Origin")?,
            label: text("Label")?,
            suite: text("Suite")?,
            codename: text("Codename")?,
            version: text("Version")?,
            date: text("Date")?,
            valid_until: text("Valid-Until")?,
            components: words("Components")?,
            architectures: words("Architectures")?,
            clearsigned,
        })
    }

    /// This archive as an origin of the versions of one of its indexes.
    pub fn origin(&self, source: &IndexSource<'_>) -> AptOrigin {
        AptOrigin {
            origin: self.origin.clone(),
            label: self.label.clone(),
            archive: self.suite.clone(),
            codename: self.codename.clone(),
            component: source.component.map(str::to_string),
            site: source.site.map(str::to_string),
            trusted: source.trusted,
        }
    }
}

// ---------------------------------------------------------------------------
// Packages

/// Where a `Packages` index comes from: what its path and apt's
/// configuration say, which the file itself does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSource<'a> {
    /// From the index path, e.g. `main`, `updates/main`.
    pub component: Option<&'a str>,
    /// Host, e.g. `security.debian.org`.
    pub site: Option<&'a str>,
    /// A label for the index, stored as `AvailablePackage::repository`.
    pub repository: Option<&'a str>,
    /// Release signed by a trusted key, or `[trusted=yes]`.
    pub trusted: bool,
}

/// One version offered by a `Packages` index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackagesEntry {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub priority: Option<String>,
    pub section: Option<String>,
    pub source: Option<String>,
    pub source_version: Option<String>,
    pub line: usize,
}

/// Parses a `Packages` index (uncompressed). Every paragraph must have
/// `Package`, `Version` and `Architecture`.
pub fn parse_packages(input: &str, text: &str) -> Result<Vec<PackagesEntry>, AptParseError> {
    let mut out = Vec::new();
    for p in Paragraphs::new(input, text) {
        let p = p?;
        let owned = |v: Option<&str>| v.map(str::to_string);
        let (source, source_version) = match p.optional(input, "Source")? {
            Some(s) => {
                let (n, v) = split_source(s);
                (Some(n.to_string()), v.map(str::to_string))
            }
            None => (None, None),
        };
        out.push(PackagesEntry {
            name: p.required(input, "Package")?.to_string(),
            arch: p.required(input, "Architecture")?.to_string(),
            version: p.required(input, "Version")?.to_string(),
            priority: owned(p.optional(input, "Priority")?),
            section: owned(p.optional(input, "Section")?),
            source,
            source_version,
            line: p.line,
        });
    }
    Ok(out)
}

/// The versions of a `Packages` index as facts, each with the one origin
/// made of the index's `Release` and `source`.
pub fn available_packages(
    input: &str,
    text: &str,
    release: &Release,
    source: &IndexSource<'_>,
) -> Result<Vec<AvailablePackage>, AptParseError> {
    let origin = release.origin(source);
    Ok(parse_packages(input, text)?
        .into_iter()
        .map(|e| AvailablePackage {
            name: e.name,
            arch: e.arch,
            version: e.version,
            repository: source.repository.map(str::to_string),
            origins: vec![origin.clone()],
            priority: e.priority,
            section: e.section,
            build_time: None,
            first_seen: None,
        })
        .collect())
}

/// Joins the versions of several indexes: one entry per (name, arch,
/// version) with the union of their origins (as `apt-cache policy` lists a
/// version once with every archive offering it). The first entry's other
/// fields win; the result is sorted by name, arch, version text.
pub fn merge_available(mut all: Vec<AvailablePackage>) -> Vec<AvailablePackage> {
    all.sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
    let mut out: Vec<AvailablePackage> = Vec::with_capacity(all.len());
    for p in all {
        match out.last_mut() {
            Some(last)
                if (&last.name, &last.arch, &last.version) == (&p.name, &p.arch, &p.version) =>
            {
                for o in p.origins {
                    if !last.origins.contains(&o) {
                        last.origins.push(o);
                    }
                }
            }
            _ => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paragraphs(text: &str) -> Result<Vec<Paragraph<'_>>, AptParseError> {
        Paragraphs::new("t", text).collect()
    }

    #[test]
    fn deb822_basics() {
        let text = "\n\nA: 1\nB:two  \nDescription: short\n long line\n .\n\tmore\n\nC: 3\r\nD:\r\n\r\n \n";
        let ps = paragraphs(text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 3);
        assert_eq!(ps[0].get("a").unwrap().value, "1");
        assert_eq!(ps[0].get("B").unwrap().value, "two");
        let d = ps[0].get("description").unwrap();
        assert_eq!(d.line, 5);
        assert!(d.is_multiline());
        assert_eq!(
            d.lines().collect::<Vec<_>>(),
            ["short", "long line", ".", "more"]
        );
        assert_eq!(ps[1].line, 10);
        assert_eq!(ps[1].get("C").unwrap().value, "3");
        assert_eq!(ps[1].get("D").unwrap().value, "");
        assert_eq!(ps[1].optional("t", "D"), Ok(None));
        assert!(paragraphs("").unwrap().is_empty());
        assert!(paragraphs("\n \n\t\n").unwrap().is_empty());
    }

    #[test]
    fn deb822_errors() {
        let cases = [
            (" lead: x\n", 1, "continuation line without a field"),
            (
                "A: 1\n\n continued\n",
                3,
                "continuation line without a field",
            ),
            ("A: 1\nno colon here\n", 2, "expected 'Field: value'"),
            ("A: 1\nB c: 2\n", 2, "invalid character ' '"),
            ("A: 1\n: 2\n", 2, "empty field name"),
            ("A: 1\n# comment\n", 2, "comment lines are not allowed"),
            ("A: 1\n-B: 2\n", 2, "cannot start with '-'"),
            (
                "A: 1\nB: 2\na: 3\n",
                3,
                "duplicate field a (first on line 1)",
            ),
            ("A: 1\nÄ: 2\n", 2, "invalid character 'Ä'"),
        ];
        for (text, line, problem) in cases {
            let e = paragraphs(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(problem), "{text:?}: {e}");
            assert!(e.to_string().starts_with("t: line "), "{e}");
        }
    }

    #[test]
    fn source_field() {
        assert_eq!(
            split_source("glibc (2.36-9+deb12u4)"),
            ("glibc", Some("2.36-9+deb12u4"))
        );
        assert_eq!(split_source(" openssl "), ("openssl", None));
        assert_eq!(split_source("x (1.0"), ("x", Some("1.0")));
        assert_eq!(split_source("x ()"), ("x", None));
    }

    #[test]
    fn status_states() {
        let text = "\
Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n\n\
Package: b\nStatus: hold ok installed\nArchitecture: all\nVersion: 2\nSource: bsrc (1.5)\n\n\
Package: c\nStatus: install ok half-configured\nArchitecture: amd64\nVersion: 3\n\n\
Package: d\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 4\n\n\
Package: e\nStatus: install reinstreq half-installed\nArchitecture: amd64\n\n\
Package: f\nStatus: purge ok not-installed\n\n\
Package: g\nStatus: install ok triggers-pending\nArchitecture: amd64\nVersion: 7\n\n\
Package: h\nStatus: install ok unpacked\nArchitecture: amd64\nVersion: 8\n";
        let s = parse_dpkg_status("status", text).unwrap();
        let names: Vec<_> = s.installed.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "g"]);
        assert_eq!(s.installed[1].source.as_deref(), Some("bsrc"));
        let interrupted: Vec<_> = s
            .interrupted
            .iter()
            .map(|p| (p.name.as_str(), p.abbrev.as_str(), p.line))
            .collect();
        assert_eq!(
            interrupted,
            [("c", "iF", 12), ("e", "iHR", 22), ("h", "iU", 34)]
        );
        assert_eq!(s.not_installed, 2);
    }

    #[test]
    fn status_errors() {
        let cases = [
            (
                "Package: a\nStatus: install ok\n",
                2,
                "not 'want flag state'",
            ),
            (
                "Package: a\nStatus: install ok done\n",
                2,
                "unknown state 'done'",
            ),
            (
                "Package: a\nStatus: want ok installed\n",
                2,
                "unknown selection",
            ),
            (
                "Package: a\nStatus: install bad installed\n",
                2,
                "unknown flag",
            ),
            (
                "Package: a\nVersion: 1\n",
                1,
                "no Status field (Package: a)",
            ),
            ("Status: install ok installed\n", 1, "no Package field"),
            (
                "Package: a\nStatus: install ok installed\nVersion: 1\n",
                1,
                "no Architecture",
            ),
            (
                "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion:\n",
                4,
                "Version is empty",
            ),
            (
                "Package: a\n b\nStatus: install ok installed\n",
                1,
                "single line",
            ),
        ];
        for (text, line, problem) in cases {
            let e = parse_dpkg_status("/var/lib/dpkg/status", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(problem), "{text:?}: {e}");
        }
    }

    #[test]
    fn clearsign() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: X\n- -dashed: no\nSuite: s\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let (body, line) = strip_clearsign("t", text).unwrap();
        assert_eq!(body, "Origin: X\n-dashed: no\nSuite: s\n");
        assert_eq!(line, 4);
        // The dash-escaped line becomes a field name starting with '-': line 5.
        let e = Release::parse("InRelease", text).unwrap_err();
        assert_eq!((e.line, e.input.as_str()), (5, "InRelease"), "{e}");
        let cases = [
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512",
                1,
                "armor headers",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nbogus\n\nA: b\n",
                2,
                "invalid armor header",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\nA: b\n",
                1,
                "no '-----BEGIN PGP SIGNATURE-----'",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\nA: b\n-----BEGIN PGP SIGNATURE-----\nx\n",
                4,
                "not closed",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\nA: b\n-x\n",
                4,
                "not dash-escaped",
            ),
        ];
        for (text, line, problem) in cases {
            let e = strip_clearsign("t", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(problem), "{text:?}: {e}");
        }
        let plain = "Origin: X\n";
        assert!(matches!(
            strip_clearsign("t", plain),
            Ok((Cow::Borrowed(_), 1))
        ));
    }

    #[test]
    fn release_errors() {
        let e = Release::parse("R", "").unwrap_err();
        assert!(e.problem.contains("no fields"), "{e}");
        let e = Release::parse("R", "Origin: a\n\nOrigin: b\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = Release::parse("R", "Origin: a\nSuite: x\n y\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn packages_and_merge() {
        let text = "Package: a\nVersion: 1\nArchitecture: amd64\nPriority: optional\nSection: libs\nSource: asrc (0.9)\n\nPackage: b\nVersion: 2\nArchitecture: all\n";
        let release = Release {
            origin: Some("Debian".into()),
            suite: Some("stable".into()),
            ..Release::default()
        };
        let source = IndexSource {
            component: Some("main"),
            site: Some("deb.debian.org"),
            repository: Some("deb.debian.org_debian_dists_bookworm_main_binary-amd64"),
            trusted: true,
        };
        let first = available_packages("P", text, &release, &source).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].priority.as_deref(), Some("optional"));
        assert_eq!(first[0].origins[0].component.as_deref(), Some("main"));
        assert!(first[0].origins[0].trusted);
        let security = Release {
            label: Some("Debian-Security".into()),
            ..release.clone()
        };
        let second =
            available_packages("Q", &text[..text.find("\n\n").unwrap()], &security, &source)
                .unwrap();
        let merged = merge_available([second, first].concat());
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].origins.len(), 2);
        assert_eq!(merged[1].origins.len(), 1);
        let e = parse_packages("P", "Package: a\nVersion: 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "P: line 1: paragraph has no Architecture field (Package: a)"
        );
    }
}
