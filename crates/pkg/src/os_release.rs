//! `/etc/os-release` (os-release(5)): shell-style `KEY=value` lines, and the
//! mapping of `ID` + `VERSION_ID` to an [`OperatingSystem`] and the product
//! string of spec §3.1 (`Ubuntu22.04`, `RedhatEnterpriseLinux8.8`, …).
//!
//! Values follow the shell subset os-release(5) allows: unquoted words with
//! backslash escapes, `"…"` (where `\"`, `\\`, `\$`, `` \` `` and a
//! backslash-newline are escapes), `'…'` (literal), and concatenations of
//! these (`A="x"'y'`). Blank lines and `#` comments are ignored. A line that
//! is not an assignment, a bad variable name or an unterminated quote is an
//! error naming the input and the line.

use patchfleet_core::os::OperatingSystem;
use serde::Serialize;
use std::collections::BTreeMap;

/// The fields of os-release that Patchfleet uses, plus all of them in `fields`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    /// `ID`, lower case; `linux` when absent (os-release(5)).
    pub id: String,
    /// `ID_LIKE`, split on spaces.
    pub id_like: Vec<String>,
    pub version_id: Option<String>,
    pub version_codename: Option<String>,
    pub name: Option<String>,
    pub pretty_name: Option<String>,
    pub variant_id: Option<String>,
    /// Every assignment, the last one winning (as a shell would).
    pub fields: BTreeMap<String, String>,
}

/// os-release text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: line {line}: {problem}")]
pub struct OsReleaseError {
    pub input: String,
    pub line: usize,
    pub problem: String,
}

/// os-release names a system Patchfleet cannot manage (or lacks the
/// version that its product string needs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported operating system: ID={id:?} VERSION_ID={version:?}{like}: {reason}",
    version = version_id.as_deref().unwrap_or("(none)"),
    like = if id_like.is_empty() { String::new() } else { format!(" ID_LIKE={:?}", id_like.join(" ")) }
)]
pub struct UnsupportedOs {
    pub id: String,
    pub version_id: Option<String>,
    pub id_like: Vec<String>,
    pub reason: String,
}

impl OsRelease {
    /// Parses os-release text; `input` names it in errors (e.g. `/etc/os-release`).
    pub fn parse(input: &str, text: &str) -> Result<OsRelease, OsReleaseError> {
        let fields = parse_assignments(input, text)?;
        let get = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
        Ok(OsRelease {
            id: get("ID")
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_else(|| "linux".to_string()),
            id_like: fields
                .get("ID_LIKE")
                .map(|s| s.split_ascii_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            version_id: get("VERSION_ID"),
            version_codename: get("VERSION_CODENAME"),
            name: get("NAME"),
            pretty_name: get("PRETTY_NAME"),
            variant_id: get("VARIANT_ID"),
            fields,
        })
    }

    /// The operating system and product string (spec §3.1) of this node.
    pub fn detect(&self) -> Result<(OperatingSystem, String), UnsupportedOs> {
        detect(self)
    }
}

/// Maps os-release to SSM's operating system and product string:
///
/// | ID | VERSION_ID | result |
/// |---|---|---|
/// | `amzn` | `2` / `2022` / `2023` / `2018.03` | `AMAZON_LINUX_2` `AmazonLinux2`, …`_2022`, …`_2023`, `AMAZON_LINUX` `AmazonLinux2018.03` |
/// | `rhel` | `8.8` | `REDHAT_ENTERPRISE_LINUX` `RedhatEnterpriseLinux8.8` |
/// | `centos` | `7` | `CENTOS` `CentOS7`; CentOS Stream (by `NAME`): `CentOSStream9` |
/// | `rocky`, `almalinux`, `ol` | `9.3` | `RockyLinux9.3`, `AlmaLinux9.3`, `OracleLinux9.3` |
/// | `ubuntu`, `debian`, `raspbian` | `22.04`, `12` | `Ubuntu22.04`, `Debian12`, `Raspbian12` |
/// | `sles`, `sles_sap`, `sled`, `opensuse-leap` | `15.5` | `SUSE` `Suse15.5` (`15` → `Suse15.0`) |
///
/// Anything else, or a known ID without a usable `VERSION_ID` (Debian
/// testing/sid have none), is [`UnsupportedOs`].
pub fn detect(os: &OsRelease) -> Result<(OperatingSystem, String), UnsupportedOs> {
    use OperatingSystem as O;
    let fail = |reason: &str| UnsupportedOs {
        id: os.id.clone(),
        version_id: os.version_id.clone(),
        id_like: os.id_like.clone(),
        reason: reason.to_string(),
    };
    let (os_kind, prefix) = match os.id.as_str() {
        "amzn" => {
            let version = version(os).ok_or_else(|| fail("Amazon Linux without VERSION_ID"))?;
            let kind = match version {
                "2" => O::AmazonLinux2,
                "2022" => O::AmazonLinux2022,
                "2023" => O::AmazonLinux2023,
                v if v.starts_with("201") => O::AmazonLinux,
                _ => return Err(fail("unknown Amazon Linux version")),
            };
            return Ok((kind, format!("AmazonLinux{version}")));
        }
        "rhel" => (O::RedhatEnterpriseLinux, "RedhatEnterpriseLinux"),
        "centos" => {
            let stream = [&os.name, &os.pretty_name]
                .into_iter()
                .flatten()
                .any(|n| n.contains("Stream"));
            (O::Centos, if stream { "CentOSStream" } else { "CentOS" })
        }
        "rocky" => (O::RockyLinux, "RockyLinux"),
        "almalinux" => (O::AlmaLinux, "AlmaLinux"),
        "ol" => (O::OracleLinux, "OracleLinux"),
        "ubuntu" => (O::Ubuntu, "Ubuntu"),
        "debian" => (O::Debian, "Debian"),
        "raspbian" => (O::Raspbian, "Raspbian"),
        "sles" | "sles_sap" | "sled" | "opensuse-leap" => {
            let version = version(os).ok_or_else(|| fail("SUSE without VERSION_ID"))?;
            // SSM's SUSE products always carry the service pack: Suse15.0.
            let sep = if version.contains('.') { "" } else { ".0" };
            return Ok((O::Suse, format!("Suse{version}{sep}")));
        }
        _ => return Err(fail("this distribution is not supported")),
    };
    let version = version(os).ok_or_else(|| {
        fail("VERSION_ID is missing or not a release number (a testing or rolling release?)")
    })?;
    Ok((os_kind, format!("{prefix}{version}")))
}

/// `VERSION_ID` when it is a plain release number (`22.04`, `9.3`, `2023`).
fn version(os: &OsRelease) -> Option<&str> {
    let v = os.version_id.as_deref()?;
    let ok = v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then_some(v)
}

/// Parses shell-style assignments into a map (the last assignment wins).
fn parse_assignments(input: &str, text: &str) -> Result<BTreeMap<String, String>, OsReleaseError> {
    let err = |line: usize, problem: String| OsReleaseError {
        input: input.to_string(),
        line,
        problem,
    };
    let mut fields = BTreeMap::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    loop {
        // Start of a line: skip blanks.
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == '\t' || c == '\r' {
                chars.next();
            } else {
                break;
            }
        }
        let Some(&c) = chars.peek() else { break };
        if c == '\n' {
            chars.next();
            line += 1;
            continue;
        }
        if c == '#' {
            for c in chars.by_ref() {
                if c == '\n' {
                    line += 1;
                    break;
                }
            }
            continue;
        }
        let start_line = line;
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                key.push(c);
                chars.next();
            } else {
                break;
            }
        }
        match chars.peek() {
            Some('=') if !key.is_empty() => {
                chars.next();
            }
            Some(&c) if key.is_empty() => {
                return Err(err(
                    start_line,
                    format!("expected VARIABLE=value, found {c:?}"),
                ));
            }
            found => {
                let found = found.map_or("end of input".to_string(), |c| format!("{c:?}"));
                return Err(err(
                    start_line,
                    format!("not an assignment VARIABLE=value (found {found} after '{key}')"),
                ));
            }
        }
        if key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err(start_line, format!("invalid variable name '{key}'")));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => break,
                Some('\n') => {
                    line += 1;
                    break;
                }
                Some('\r') if chars.peek().is_none_or(|&c| c == '\n') => {}
                Some('\\') => match chars.next() {
                    None => {}
                    Some('\n') => line += 1,
                    Some(c) => value.push(c),
                },
                Some('\'') => loop {
                    match chars.next() {
                        None => {
                            return Err(err(
                                start_line,
                                format!("unterminated ' in value of {key}"),
                            ));
                        }
                        Some('\'') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            value.push(c);
                        }
                    }
                },
                Some('"') => loop {
                    match chars.next() {
                        None => {
                            return Err(err(
                                start_line,
                                format!("unterminated \" in value of {key}"),
                            ));
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => value.push(c),
                            Some('\n') => line += 1,
                            Some(c) => {
                                value.push('\\');
                                value.push(c);
                            }
                            None => {
                                return Err(err(
                                    start_line,
                                    format!("unterminated \" in value of {key}"),
                                ));
                            }
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            value.push(c);
                        }
                    }
                },
                Some(c @ (' ' | '\t')) => {
                    // Unquoted blank: only trailing blanks or a comment may follow.
                    let mut rest_blank = true;
                    while let Some(&n) = chars.peek() {
                        if n == ' ' || n == '\t' || n == '\r' {
                            chars.next();
                        } else {
                            rest_blank = n == '\n' || n == '#';
                            break;
                        }
                    }
                    if !rest_blank {
                        return Err(err(
                            start_line,
                            format!("unquoted {c:?} in value of {key} (quote the value)"),
                        ));
                    }
                    if chars.peek() == Some(&'#') {
                        for c in chars.by_ref() {
                            if c == '\n' {
                                line += 1;
                                break;
                            }
                        }
                        break;
                    }
                }
                Some(c) => value.push(c),
            }
        }
        fields.insert(key, value);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> OsRelease {
        OsRelease::parse("test", text).unwrap()
    }

    #[test]
    fn quoting_and_escapes() {
        let os = parse(concat!(
            "# comment\n",
            "\n",
            "ID=ubuntu\n",
            "NAME=\"Ubuntu \\\"LTS\\\" \\$x \\\\ \\n\"\n",
            "A='single \\ \"quoted\"'\n",
            "B=unquoted\\ word\n",
            "C=\"con\"'cat'enated\n",
            "D=\"multi\nline\"\n",
            "E=trailing   # comment\n",
            "F=\"cr\"\r\n",
            "  G=indented\n",
            "H=\"back\\\nslash\"\n",
            "I=\n",
            "ID=debian",
        ));
        assert_eq!(os.id, "debian");
        let f = |k: &str| os.fields[k].as_str();
        assert_eq!(f("NAME"), "Ubuntu \"LTS\" $x \\ \\n");
        assert_eq!(f("A"), "single \\ \"quoted\"");
        assert_eq!(f("B"), "unquoted word");
        assert_eq!(f("C"), "concatenated");
        assert_eq!(f("D"), "multi\nline");
        assert_eq!(f("E"), "trailing");
        assert_eq!(f("F"), "cr");
        assert_eq!(f("G"), "indented");
        assert_eq!(f("H"), "backslash");
        assert_eq!(f("I"), "");
    }

    #[test]
    fn defaults() {
        let os = parse("");
        assert_eq!(os.id, "linux");
        assert_eq!(os.version_id, None);
        let os = parse("ID=Fedora\nID_LIKE=\"rhel  centos fedora\"\nVERSION_ID=\"\"");
        assert_eq!(os.id, "fedora");
        assert_eq!(os.id_like, ["rhel", "centos", "fedora"]);
        assert_eq!(os.version_id, None);
    }

    #[test]
    fn errors_name_input_and_line() {
        let cases = [
            ("ID=x\nnot an assignment\n", 2, "not an assignment"),
            ("ID=x\n\nNAME=\"open\nVERSION=1\n", 3, "unterminated \""),
            ("A='x", 1, "unterminated '"),
            ("A=two words\n", 1, "unquoted ' '"),
            ("1A=x\n", 1, "invalid variable name"),
            ("A-B=x\n", 1, "found '-' after 'A'"),
            ("=x\n", 1, "expected VARIABLE=value"),
            ("A=\"x\\", 1, "unterminated \""),
        ];
        for (text, line, problem) in cases {
            let e = OsRelease::parse("/etc/os-release", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.problem.contains(problem), "{text:?}: {e}");
            assert!(e.to_string().starts_with("/etc/os-release: line "), "{e}");
        }
    }

    #[test]
    fn detection_table() {
        use OperatingSystem as O;
        let cases = [
            ("amzn", "2", "", O::AmazonLinux2, "AmazonLinux2"),
            ("amzn", "2023", "", O::AmazonLinux2023, "AmazonLinux2023"),
            ("amzn", "2022", "", O::AmazonLinux2022, "AmazonLinux2022"),
            ("amzn", "2018.03", "", O::AmazonLinux, "AmazonLinux2018.03"),
            (
                "rhel",
                "8.8",
                "",
                O::RedhatEnterpriseLinux,
                "RedhatEnterpriseLinux8.8",
            ),
            ("centos", "7", "CentOS Linux", O::Centos, "CentOS7"),
            ("centos", "9", "CentOS Stream", O::Centos, "CentOSStream9"),
            ("rocky", "9.3", "", O::RockyLinux, "RockyLinux9.3"),
            ("almalinux", "9.3", "", O::AlmaLinux, "AlmaLinux9.3"),
            ("ol", "8.7", "", O::OracleLinux, "OracleLinux8.7"),
            ("ubuntu", "22.04", "", O::Ubuntu, "Ubuntu22.04"),
            ("debian", "12", "", O::Debian, "Debian12"),
            ("raspbian", "11", "", O::Raspbian, "Raspbian11"),
            ("sles", "15.5", "", O::Suse, "Suse15.5"),
            ("sles", "15", "", O::Suse, "Suse15.0"),
            ("opensuse-leap", "15.5", "", O::Suse, "Suse15.5"),
        ];
        for (id, version, name, os, product) in cases {
            let text = format!("ID={id}\nVERSION_ID=\"{version}\"\nNAME=\"{name}\"\n");
            let got = parse(&text).detect();
            assert_eq!(got, Ok((os, product.to_string())), "{text}");
        }
    }

    #[test]
    fn unsupported_names_id_and_version() {
        let e = parse("ID=fedora\nVERSION_ID=39\nID_LIKE=rhel")
            .detect()
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ID=\"fedora\""), "{msg}");
        assert!(msg.contains("VERSION_ID=\"39\""), "{msg}");
        assert!(msg.contains("ID_LIKE=\"rhel\""), "{msg}");
        let e = parse("ID=debian\nVERSION_CODENAME=trixie")
            .detect()
            .unwrap_err();
        assert!(e.to_string().contains("VERSION_ID=\"(none)\""), "{e}");
        let e = parse("ID=amzn\nVERSION_ID=2099").detect().unwrap_err();
        assert!(e.reason.contains("Amazon Linux"), "{e}");
        let e = parse("ID=ubuntu\nVERSION_ID=\"22.04 LTS\"")
            .detect()
            .unwrap_err();
        assert_eq!(e.id, "ubuntu");
    }
}
