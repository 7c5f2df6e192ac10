//! Approved / rejected list entries and install-override entries, matched
//! against package versions with the algorithm of spec §2.1: an entry
//! matches when it equals, or as an anchored glob matches, any of the
//! identity strings of the version (case-insensitive).
//!
//! Matching is on the hot path of every evaluation, so a [`PatternSet`]
//! first narrows the entries to those whose literal start can begin one of
//! the identity strings of a package name ([`PatternSet::candidates`]); most
//! packages have none, and then no identity string is ever built.

use crate::inventory::Version;
use crate::os::Family;

/// One list entry, lower-cased, with its glob when it has metacharacters.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub raw: String,
    lc: String,
    glob: Option<glob::Pattern>,
    /// The text before the first glob metacharacter.
    prefix_len: usize,
}

const GLOB_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl Pattern {
    pub fn new(raw: &str) -> Pattern {
        let lc = raw.trim().to_ascii_lowercase();
        let meta = lc.find(['*', '?', '[']);
        // An entry that is not a valid glob (an unclosed `[`) is compared
        // literally, as Python's fnmatch would treat it.
        let glob = meta.and_then(|_| glob::Pattern::new(&lc).ok());
        let prefix_len = if glob.is_some() {
            meta.unwrap_or(lc.len())
        } else {
            lc.len()
        };
        Pattern {
            raw: raw.to_string(),
            lc,
            glob,
            prefix_len,
        }
    }

    fn prefix(&self) -> &str {
        &self.lc[..self.prefix_len]
    }

    fn is_glob(&self) -> bool {
        self.glob.is_some()
    }

    /// Whether this entry could match an identity string that starts with
    /// the package name `name_lc` (all forms but the version-led ones).
    fn fits_name(&self, name_lc: &str) -> bool {
        let prefix = self.prefix().as_bytes();
        let name = name_lc.as_bytes();
        if self.is_glob() {
            let k = prefix.len().min(name.len());
            if prefix[..k] != name[..k] {
                return false;
            }
            // A literal start longer than the name must continue with a
            // separator that some identity form puts after the name.
            prefix.len() <= name.len() || matches!(prefix[name.len()], b'.' | b'-' | b':')
        } else {
            prefix.starts_with(name)
                && (prefix.len() == name.len() || matches!(prefix[name.len()], b'.' | b'-'))
        }
    }

    pub fn matches(&self, identity: &Identity) -> bool {
        match &self.glob {
            Some(glob) => identity
                .strings()
                .any(|s| glob.matches_with(s, GLOB_OPTIONS)),
            None => identity.strings().any(|s| s == self.lc),
        }
    }
}

/// The identity strings of one package version, lower-cased, built into one
/// reusable buffer.
#[derive(Debug, Default)]
pub struct Identity {
    buf: String,
    ends: Vec<usize>,
}

/// The components of a package version that identity strings are built from.
pub struct Components<'a> {
    pub name: &'a str,
    pub arch: &'a str,
    /// RPM: `Some((epoch, version, release))`; APT: `None` and `deb_version` set.
    pub evr: Option<(u32, &'a str, &'a str)>,
    pub deb_version: &'a str,
}

impl<'a> Components<'a> {
    /// The components of `version` (written `raw` in the facts) of `name.arch`.
    pub fn of(name: &'a str, arch: &'a str, version: &'a Version, raw: &'a str) -> Self {
        Components {
            name,
            arch,
            evr: match version {
                Version::Rpm(evr) => Some((evr.epoch_or_zero(), evr.version(), evr.release())),
                Version::Deb(_) => None,
            },
            deb_version: raw,
        }
    }
}

impl Identity {
    pub fn build(&mut self, family: Family, c: &Components<'_>) {
        use std::fmt::Write;
        self.buf.clear();
        self.ends.clear();
        let (n, a) = (c.name, c.arch);
        let push = |buf: &mut String, ends: &mut Vec<usize>, args: std::fmt::Arguments<'_>| {
            let _ = buf.write_fmt(args);
            ends.push(buf.len());
        };
        let (buf, ends) = (&mut self.buf, &mut self.ends);
        match (family, c.evr) {
            (Family::Apt, _) | (_, None) => {
                let v = c.deb_version;
                // The forms the Linux payload generates for a deb (spec §2.2).
                push(buf, ends, format_args!("{n}"));
                push(buf, ends, format_args!("{v}"));
                push(buf, ends, format_args!("{n}.{a}"));
                push(buf, ends, format_args!("{n}-{v}"));
                push(buf, ends, format_args!("{a}:{v}"));
                push(buf, ends, format_args!("{n}.{a}:{v}"));
            }
            (_, Some((e, v, r))) => {
                // The twelve constructions of spec §2.1.
                push(buf, ends, format_args!("{n}"));
                push(buf, ends, format_args!("{n}.{a}"));
                push(buf, ends, format_args!("{n}-{v}"));
                push(buf, ends, format_args!("{n}-{v}-{r}"));
                push(buf, ends, format_args!("{n}-{v}-{r}.{a}"));
                push(buf, ends, format_args!("{v}"));
                push(buf, ends, format_args!("{v}-{r}"));
                push(buf, ends, format_args!("{e}:{v}-{r}"));
                push(buf, ends, format_args!("{n}-{e}:{v}-{r}"));
                push(buf, ends, format_args!("{n}-{e}:{v}-{r}.{a}"));
                push(buf, ends, format_args!("{e}:{n}-{v}-{r}.{a}"));
                push(buf, ends, format_args!("{n}.{a}:{e}:{v}-{r}"));
            }
        }
        self.buf.make_ascii_lowercase();
    }

    pub fn strings(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.buf[start..end];
            start = end;
            s
        })
    }
}

/// A compiled approved or rejected list.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
    /// Entries whose literal start begins with this byte (name-led forms).
    by_first_byte: Vec<(u8, Vec<u16>)>,
    /// Entries that can match without the name leading: glob-first entries
    /// and entries starting with a digit (version- or epoch-led forms).
    always: Vec<u16>,
}

impl PatternSet {
    pub fn new<S: AsRef<str>>(entries: &[S]) -> PatternSet {
        let patterns: Vec<Pattern> = entries.iter().map(|e| Pattern::new(e.as_ref())).collect();
        let mut by_first_byte: Vec<(u8, Vec<u16>)> = Vec::new();
        let mut always = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let i = i as u16;
            match p.prefix().as_bytes().first() {
                None => always.push(i),
                Some(&b) => {
                    if b.is_ascii_digit() {
                        always.push(i);
                    }
                    match by_first_byte.iter_mut().find(|(k, _)| *k == b) {
                        Some((_, list)) => list.push(i),
                        None => by_first_byte.push((b, vec![i])),
                    }
                }
            }
        }
        PatternSet {
            patterns,
            by_first_byte,
            always,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn get(&self, index: u16) -> &Pattern {
        &self.patterns[index as usize]
    }

    /// The entries that may match some version of the package `name_lc`,
    /// written into `out` (cleared first).
    pub fn candidates(&self, name_lc: &str, out: &mut Vec<u16>) {
        out.clear();
        if self.patterns.is_empty() {
            return;
        }
        out.extend_from_slice(&self.always);
        if let Some(&first) = name_lc.as_bytes().first()
            && let Some((_, list)) = self.by_first_byte.iter().find(|(k, _)| *k == first)
        {
            for &i in list {
                if self.patterns[i as usize].fits_name(name_lc) && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
    }

    /// Adds the entries that may match a version-led identity string of a
    /// version that does not start with a digit (RPM allows such versions;
    /// digit-led entries are always candidates already).
    pub fn add_version_candidates(&self, version_lc_first: u8, out: &mut Vec<u16>) {
        if version_lc_first.is_ascii_digit() {
            return;
        }
        if let Some((_, list)) = self
            .by_first_byte
            .iter()
            .find(|(k, _)| *k == version_lc_first)
        {
            for &i in list {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
    }

    /// The first of `candidates` that matches `identity`.
    pub fn first_match(&self, candidates: &[u16], identity: &Identity) -> Option<u16> {
        candidates
            .iter()
            .copied()
            .find(|&i| self.patterns[i as usize].matches(identity))
    }

    /// Convenience for one-off checks: does any entry match?
    pub fn find(&self, family: Family, c: &Components<'_>) -> Option<u16> {
        let mut candidates = Vec::new();
        self.candidates(&c.name.to_ascii_lowercase(), &mut candidates);
        let version = c.evr.map_or(c.deb_version, |(_, v, _)| v);
        if let Some(&first) = version.as_bytes().first() {
            self.add_version_candidates(first.to_ascii_lowercase(), &mut candidates);
        }
        if candidates.is_empty() {
            return None;
        }
        let mut identity = Identity::default();
        identity.build(family, c);
        self.first_match(&candidates, &identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dbus<'a>() -> Components<'a> {
        Components {
            name: "dbus",
            arch: "x86_64",
            evr: Some((1, "1.12.28", "1.amzn2023.0.1")),
            deb_version: "",
        }
    }

    /// Every construction of spec §2.1's table, with and without wildcards.
    #[test]
    fn rpm_constructions_of_the_spec_table() {
        let matching = [
            "dbus",
            "dbus.x86_64",
            "dbus-1.12.28",
            "dbus-1.12.28-1.amzn2023.0.1",
            "dbus-1.12.28-1.amzn2023.0.1.x86_64",
            "1.12.28",
            "1.12.28-1.amzn2023.0.1",
            "1:1.12.28-1.amzn2023.0.1",
            "dbus-1:1.12.28-1.amzn2023.0.1",
            "dbus-1:1.12.28-1.amzn2023.0.1.x86_64",
            "1:dbus-1.12.28-1.amzn2023.0.1.x86_64",
            "dbus.x86_64:1:1.12.28-1.amzn2023.0.1",
            "DBUS.X86_64",
            "dbus*",
            "dbus-1.12.2*",
            "dbus-*:1.12.28-1.amzn2023.0.1.x86_64",
            "*",
            "d?us",
            "[a-d]bus.x86_64",
        ];
        for entry in matching {
            let set = PatternSet::new(&[entry]);
            assert_eq!(set.find(Family::Rpm, &dbus()), Some(0), "{entry} should match");
        }
        let not_matching = [
            "dbu",
            "dbus-libs",
            "dbus.i686",
            "dbus-1.12.29",
            "0:1.12.28-1.amzn2023.0.1",
            "dbus-libs*",
            "dbus-2*",
            "1.12.2",
            "[e-z]bus",
        ];
        for entry in not_matching {
            let set = PatternSet::new(&[entry]);
            assert_eq!(set.find(Family::Rpm, &dbus()), None, "{entry} should not match");
        }
    }

    #[test]
    fn apt_forms() {
        let c = Components {
            name: "libssl3",
            arch: "amd64",
            evr: None,
            deb_version: "3.0.2-0ubuntu1.12",
        };
        for entry in [
            "libssl3",
            "libssl*",
            "libssl3.amd64",
            "libssl3-3.0.2-0ubuntu1.12",
            "amd64:3.0.2-0ubuntu1.12",
            "libssl3.amd64:3.0.2-0ubuntu1.12",
            "3.0.2-0ubuntu1.12",
        ] {
            assert_eq!(PatternSet::new(&[entry]).find(Family::Apt, &c), Some(0), "{entry}");
        }
        for entry in ["libssl", "libssl3.i386", "openssl*"] {
            assert_eq!(PatternSet::new(&[entry]).find(Family::Apt, &c), None, "{entry}");
        }
    }

    #[test]
    fn candidates_skip_unrelated_names() {
        let set = PatternSet::new(&["kernel*", "telnet", "openssl-1.0*", "*-devel", "1.2.3"]);
        let mut out = Vec::new();
        set.candidates("zlib", &mut out);
        out.sort();
        assert_eq!(out, vec![3, 4], "only the glob-first and digit-first entries");
        set.candidates("kernel-headers", &mut out);
        assert!(out.contains(&0));
        set.candidates("openssl", &mut out);
        assert!(out.contains(&2));
        set.candidates("openssh", &mut out);
        assert!(!out.contains(&2));
    }

    #[test]
    fn rpm_version_led_forms_of_letter_versions() {
        let c = Components {
            name: "foo",
            arch: "noarch",
            evr: Some((0, "beta2", "1")),
            deb_version: "",
        };
        assert_eq!(PatternSet::new(&["beta*"]).find(Family::Rpm, &c), Some(0));
        assert_eq!(PatternSet::new(&["beta2-1"]).find(Family::Rpm, &c), Some(0));
    }

    #[test]
    fn unclosed_bracket_is_literal() {
        let set = PatternSet::new(&["foo[bar"]);
        let c = Components {
            name: "foo[bar",
            arch: "noarch",
            evr: Some((0, "1", "1")),
            deb_version: "",
        };
        assert_eq!(set.find(Family::Rpm, &c), Some(0));
    }
}
