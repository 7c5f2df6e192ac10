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

/// One element of a compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Atom {
    Byte(u8),
    /// `?`: any one byte.
    Any,
    /// `*`: any run of bytes, also empty.
    Star,
    /// `[...]` / `[!...]`: one byte in (or not in) the ranges.
    Class {
        negate: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// Compiles fnmatch-style globs (`*`, `?`, `[…]`, `[!…]`); `None` when the
/// text has no metacharacter. An unclosed `[` is a literal `[`, as in
/// Python's fnmatch, which the Linux payload used.
fn compile_glob(text: &[u8]) -> Option<Vec<Atom>> {
    let mut atoms = Vec::with_capacity(text.len());
    let mut meta = false;
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'*' => {
                meta = true;
                if atoms.last() != Some(&Atom::Star) {
                    atoms.push(Atom::Star);
                }
            }
            b'?' => {
                meta = true;
                atoms.push(Atom::Any);
            }
            b'[' => match parse_class(&text[i + 1..]) {
                Some((atom, used)) => {
                    meta = true;
                    atoms.push(atom);
                    i += used;
                }
                None => atoms.push(Atom::Byte(b'[')),
            },
            b => atoms.push(Atom::Byte(b)),
        }
        i += 1;
    }
    meta.then_some(atoms)
}

/// Parses the inside of a class after `[`; returns the atom and the bytes used.
fn parse_class(rest: &[u8]) -> Option<(Atom, usize)> {
    let mut i = 0;
    let negate = matches!(rest.first(), Some(b'!'));
    if negate {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    while i < rest.len() {
        let c = rest[i];
        if c == b']' && !first {
            return Some((Atom::Class { negate, ranges }, i + 1));
        }
        first = false;
        if i + 2 < rest.len() && rest[i + 1] == b'-' && rest[i + 2] != b']' {
            ranges.push((c, rest[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
    None
}

fn atom_matches(atom: &Atom, b: u8) -> bool {
    match atom {
        Atom::Byte(x) => *x == b,
        Atom::Any => true,
        Atom::Star => false,
        Atom::Class { negate, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi) != *negate
        }
    }
}

/// Anchored glob match: linear in the usual case, backtracking only to the
/// last `*` (the classic wildcard algorithm).
fn glob_matches(atoms: &[Atom], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < atoms.len() && atoms[p] == Atom::Star {
            star = Some((p, i));
            p += 1;
        } else if p < atoms.len() && atom_matches(&atoms[p], s[i]) {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    atoms[p..].iter().all(|a| *a == Atom::Star)
}

/// A 512-bit set of the byte triples occurring in some strings: an entry
/// whose literal triples are not all in a version's set cannot match it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trigrams([u64; 8]);

impl Trigrams {
    fn add_str(&mut self, s: &[u8]) {
        let [a, b, rest @ ..] = s else {
            return;
        };
        // Rolling: `h` holds the last three bytes; one multiply hashes them.
        let mut h = u32::from(*a) << 8 | u32::from(*b);
        for &c in rest {
            h = (h << 8 | u32::from(c)) & 0x00FF_FFFF;
            let bit = (h.wrapping_mul(0x9E37_79B1) >> 23) as usize;
            self.0[bit / 64] |= 1 << (bit % 64);
        }
    }

    pub fn union(&self, other: &Trigrams) -> Trigrams {
        let mut out = *self;
        for (o, x) in out.0.iter_mut().zip(&other.0) {
            *o |= x;
        }
        out
    }

    /// Whether every triple in `required` may be present.
    #[inline]
    pub fn may_contain(&self, required: &Trigrams) -> bool {
        self.0
            .iter()
            .zip(&required.0)
            .all(|(have, need)| need & !have == 0)
    }
}

/// One list entry, lower-cased, with its glob when it has metacharacters.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub raw: String,
    lc: String,
    glob: Option<Vec<Atom>>,
    /// The text before the first glob metacharacter.
    prefix: String,
    /// Byte triples every matching identity string contains.
    required: Trigrams,
    /// Literal runs of the glob, each of which a matching string contains.
    literals: Vec<String>,
    /// The glob is `*LITERAL*`: a substring test decides it.
    substring_only: bool,
}

impl Pattern {
    pub fn new(raw: &str) -> Pattern {
        let lc = raw.trim().to_ascii_lowercase();
        let glob = compile_glob(lc.as_bytes());
        let mut required = Trigrams::default();
        let mut literals = Vec::new();
        let prefix_len = match &glob {
            Some(atoms) => {
                for run in atoms.split(|a| !matches!(a, Atom::Byte(_))) {
                    let bytes: Vec<u8> = run
                        .iter()
                        .filter_map(|a| match a {
                            Atom::Byte(b) => Some(*b),
                            _ => None,
                        })
                        .collect();
                    // Runs end at ASCII metacharacters, so they stay UTF-8.
                    required.add_str(&bytes);
                    if let Ok(text) = String::from_utf8(bytes)
                        && !text.is_empty()
                    {
                        literals.push(text);
                    }
                }
                atoms
                    .iter()
                    .take_while(|a| matches!(a, Atom::Byte(_)))
                    .count()
            }
            None => {
                required.add_str(lc.as_bytes());
                lc.len()
            }
        };
        let substring_only = matches!(glob.as_deref(), Some([Atom::Star, middle @ .., Atom::Star])
            if !middle.is_empty() && middle.iter().all(|a| matches!(a, Atom::Byte(_))));
        let prefix =
            String::from_utf8_lossy(&lc.as_bytes()[..prefix_len.min(lc.len())]).into_owned();
        Pattern {
            raw: raw.to_string(),
            lc,
            glob,
            prefix,
            required,
            literals,
            substring_only,
        }
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn is_glob(&self) -> bool {
        self.glob.is_some()
    }

    /// Whether this entry could match an identity string that starts with
    /// `lead` (the package name, or on APT the architecture), followed by one
    /// of the separators the identity forms put after it.
    fn fits_name(&self, name_lc: &str) -> bool {
        let prefix = self.prefix().as_bytes();
        let name = name_lc.as_bytes();
        let k = prefix.len().min(name.len());
        // A byte loop: these strings are short, and a `memcmp` call costs
        // more than comparing them here.
        if !prefix[..k].iter().zip(&name[..k]).all(|(a, b)| a == b) {
            return false;
        }
        if self.is_glob() {
            // A literal start longer than the name must continue with a
            // separator that some identity form puts after the name.
            prefix.len() <= name.len() || matches!(prefix[name.len()], b'.' | b'-' | b':')
        } else {
            prefix.len() >= name.len()
                && (prefix.len() == name.len() || matches!(prefix[name.len()], b'.' | b'-' | b':'))
        }
    }

    /// Whether every literal of this entry occurs in `maximal` (built with
    /// [`Identity::build_maximal`]); `false` rules the entry out.
    pub fn literals_occur(&self, maximal: &Identity) -> bool {
        match &self.glob {
            Some(_) => self
                .literals
                .iter()
                .all(|l| maximal.buf.contains(l.as_str())),
            None => maximal.buf.contains(self.lc.as_str()),
        }
    }

    /// Cheap test: `false` means this entry cannot match a version whose
    /// identity strings have these byte triples.
    #[inline]
    pub fn may_match(&self, trigrams: &Trigrams) -> bool {
        trigrams.may_contain(&self.required)
    }

    pub fn matches(&self, identity: &Identity) -> bool {
        match &self.glob {
            Some(atoms) => {
                // Every literal run must occur somewhere; one search over
                // all strings at once (they are joined by '\n', which no
                // literal contains) rules most entries out.
                if !self
                    .literals
                    .iter()
                    .all(|l| identity.buf.contains(l.as_str()))
                {
                    return false;
                }
                self.substring_only
                    || identity
                        .strings()
                        .any(|s| glob_matches(atoms, s.as_bytes()))
            }
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
        self.buf.clear();
        self.ends.clear();
        let (n, a) = (c.name, c.arch);
        match (family, c.evr) {
            (Family::Apt, _) | (_, None) => {
                let v = c.deb_version;
                // The forms the Linux payload generates for a deb (spec §2.2).
                self.push(&[n]);
                self.push(&[v]);
                self.push(&[n, ".", a]);
                self.push(&[n, "-", v]);
                self.push(&[a, ":", v]);
                self.push(&[n, ".", a, ":", v]);
            }
            (_, Some((e, v, r))) => {
                let mut digits = [0u8; 10];
                let e = u32_text(e, &mut digits);
                // The twelve constructions of spec §2.1.
                self.push(&[n]);
                self.push(&[n, ".", a]);
                self.push(&[n, "-", v]);
                self.push(&[n, "-", v, "-", r]);
                self.push(&[n, "-", v, "-", r, ".", a]);
                self.push(&[v]);
                self.push(&[v, "-", r]);
                self.push(&[e, ":", v, "-", r]);
                self.push(&[n, "-", e, ":", v, "-", r]);
                self.push(&[n, "-", e, ":", v, "-", r, ".", a]);
                self.push(&[e, ":", n, "-", v, "-", r, ".", a]);
                self.push(&[n, ".", a, ":", e, ":", v, "-", r]);
            }
        }
        self.buf.make_ascii_lowercase();
    }

    /// Only the forms without a version (`name`, `name.arch`): an entry
    /// matching one of them matches every version of the package.
    pub fn build_versionless(&mut self, name: &str, arch: &str) {
        self.buf.clear();
        self.ends.clear();
        self.push(&[name]);
        self.push(&[name, ".", arch]);
        self.buf.make_ascii_lowercase();
    }

    /// Only the longest forms, of which every other form is a substring
    /// (RPM: forms 10, 11, 12; APT: `n-v` and `n.a:v`). Enough to rule an
    /// entry out by its literals, at a third of the cost of all forms.
    pub fn build_maximal(&mut self, family: Family, c: &Components<'_>) {
        self.buf.clear();
        self.ends.clear();
        let (n, a) = (c.name, c.arch);
        match (family, c.evr) {
            (Family::Apt, _) | (_, None) => {
                let v = c.deb_version;
                self.push(&[n, "-", v]);
                self.push(&[n, ".", a, ":", v]);
            }
            (_, Some((e, v, r))) => {
                let mut digits = [0u8; 10];
                let e = u32_text(e, &mut digits);
                // `n-v-r.a` is a suffix of `e:n-v-r.a`, so it is not needed.
                self.push(&[n, "-", e, ":", v, "-", r, ".", a]);
                self.push(&[e, ":", n, "-", v, "-", r, ".", a]);
                self.push(&[n, ".", a, ":", e, ":", v, "-", r]);
            }
        }
        self.buf.make_ascii_lowercase();
    }

    fn push(&mut self, parts: &[&str]) {
        if !self.ends.is_empty() {
            self.buf.push('\n');
        }
        for p in parts {
            self.buf.push_str(p);
        }
        self.ends.push(self.buf.len());
    }

    /// The byte triples of the identity strings (not across two of them).
    /// Built from the maximal forms it covers every form.
    pub fn trigrams(&self) -> Trigrams {
        let mut set = Trigrams::default();
        for s in self.strings() {
            set.add_str(s.as_bytes());
        }
        set
    }

    pub fn strings(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let s = &self.buf[start..end];
            start = end + 1;
            s
        })
    }
}

/// An epoch as text, without `fmt` or allocation.
fn u32_text(mut n: u32, digits: &mut [u8; 10]) -> &str {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&digits[i..]).unwrap_or("0")
}

/// A compiled approved or rejected list.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
    /// Entries by the first byte of their literal start (name-led forms):
    /// `bucket_of[b]` indexes `buckets`, 0 meaning none.
    bucket_of: Vec<u16>,
    buckets: Vec<Vec<u16>>,
    /// Entries that can match without the name leading: glob-first entries
    /// and entries starting with a digit (version- or epoch-led forms).
    always: Vec<u16>,
}

impl PatternSet {
    pub fn new<S: AsRef<str>>(entries: &[S]) -> PatternSet {
        let patterns: Vec<Pattern> = entries.iter().map(|e| Pattern::new(e.as_ref())).collect();
        let mut bucket_of = vec![0u16; 256];
        let mut buckets: Vec<Vec<u16>> = vec![Vec::new()];
        let mut always = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let i = i as u16;
            match p.prefix().as_bytes().first() {
                None => always.push(i),
                Some(&b) => {
                    if b.is_ascii_digit() {
                        always.push(i);
                    }
                    if bucket_of[b as usize] == 0 {
                        bucket_of[b as usize] = buckets.len() as u16;
                        buckets.push(Vec::new());
                    }
                    buckets[bucket_of[b as usize] as usize].push(i);
                }
            }
        }
        PatternSet {
            patterns,
            bucket_of,
            buckets,
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

    /// The entries that may match some version of the package `name_lc`
    /// of architecture `arch_lc` (APT has an arch-led form, `arch:version`)
    /// whose identity strings together have the byte triples `trigrams`,
    /// written into `out` (cleared first).
    pub fn candidates(
        &self,
        name_lc: &str,
        arch_lc: &str,
        trigrams: &Trigrams,
        out: &mut Vec<u16>,
    ) {
        out.clear();
        if self.patterns.is_empty() {
            return;
        }
        for &i in &self.always {
            if self.patterns[i as usize].may_match(trigrams) {
                out.push(i);
            }
        }
        for lead in [name_lc, arch_lc] {
            let Some(&first) = lead.as_bytes().first() else {
                continue;
            };
            for &i in self.bucket(first) {
                let p = &self.patterns[i as usize];
                if p.fits_name(lead) && p.may_match(trigrams) && !out.contains(&i) {
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
        for &i in self.bucket(version_lc_first) {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }

    /// Whether some entry's literal start begins with one of these bytes.
    pub fn leads(&self, bytes: [u8; 2]) -> bool {
        bytes.iter().any(|&b| self.bucket_of[b as usize] != 0)
    }

    /// The entries whose literal start begins with byte `b`.
    pub fn bucket(&self, b: u8) -> &[u16] {
        match self.bucket_of.get(b as usize) {
            Some(&k) if k != 0 => &self.buckets[k as usize],
            _ => &[],
        }
    }

    /// Drops the candidates whose literals do not occur in `maximal`.
    pub fn retain_literal(&self, candidates: &mut Vec<u16>, maximal: &Identity) {
        candidates.retain(|&i| self.patterns[i as usize].literals_occur(maximal));
    }

    /// Drops the candidates that cannot match a version with these byte triples.
    pub fn retain_possible(&self, candidates: &mut Vec<u16>, trigrams: &Trigrams) {
        candidates.retain(|&i| self.patterns[i as usize].may_match(trigrams));
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
        let mut identity = Identity::default();
        identity.build_maximal(family, c);
        let all = identity.trigrams();
        self.candidates(
            &c.name.to_ascii_lowercase(),
            &c.arch.to_ascii_lowercase(),
            &all,
            &mut candidates,
        );
        let version = c.evr.map_or(c.deb_version, |(_, v, _)| v);
        if let Some(&first) = version.as_bytes().first() {
            self.add_version_candidates(first.to_ascii_lowercase(), &mut candidates);
        }
        if candidates.is_empty() {
            return None;
        }
        self.retain_literal(&mut candidates, &identity);
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
        let cases = matching
            .iter()
            .map(|e| (e, true))
            .chain(not_matching.iter().map(|e| (e, false)));
        for (entry, want) in cases {
            let got = PatternSet::new(&[entry]).find(Family::Rpm, &dbus());
            assert_eq!(got.is_some(), want, "{entry}: expected match = {want}");
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
            assert_eq!(
                PatternSet::new(&[entry]).find(Family::Apt, &c),
                Some(0),
                "{entry}"
            );
        }
        for entry in ["libssl", "libssl3.i386", "openssl*"] {
            assert_eq!(
                PatternSet::new(&[entry]).find(Family::Apt, &c),
                None,
                "{entry}"
            );
        }
    }

    #[test]
    fn candidates_skip_unrelated_names() {
        let set = PatternSet::new(&["kernel*", "telnet", "openssl-1.0*", "*-devel", "1.2.3"]);
        let mut out = Vec::new();
        let everything = Trigrams([u64::MAX; 8]);
        set.candidates("zlib", "x86_64", &everything, &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![3, 4],
            "only the glob-first and digit-first entries"
        );
        set.candidates("kernel-headers", "x86_64", &everything, &mut out);
        assert!(out.contains(&0));
        set.candidates("openssl", "x86_64", &everything, &mut out);
        assert!(out.contains(&2));
        set.candidates("openssh", "x86_64", &everything, &mut out);
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
    fn globs_as_fnmatch() {
        let cases: [(&str, &str, bool); 16] = [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abc", true),
            ("a*c", "abcc", true),
            ("a*c", "abcd", false),
            ("*-devel", "foo-devel", true),
            ("*-devel", "foo-devel-x", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[abc]x", "bx", true),
            ("[!abc]x", "bx", false),
            ("[!abc]x", "dx", true),
            ("[a-c]*", "cat", true),
            ("[]]x", "]x", true),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
        ];
        for (glob, text, want) in cases {
            let atoms = compile_glob(glob.as_bytes()).expect(glob);
            assert_eq!(
                glob_matches(&atoms, text.as_bytes()),
                want,
                "{glob} ~ {text}"
            );
        }
        assert!(compile_glob(b"plain").is_none());
    }

    #[test]
    fn trigram_filter_never_rejects_a_match() {
        let entries = [
            "dbus-1.12*",
            "*amzn2023*",
            "*:1.12.28-1*",
            "dbus.x86_64:1:*",
            "dbus",
        ];
        let mut identity = Identity::default();
        identity.build_maximal(Family::Rpm, &dbus());
        let trigrams = identity.trigrams();
        identity.build(Family::Rpm, &dbus());
        for e in entries {
            let p = Pattern::new(e);
            assert!(p.matches(&identity), "{e}");
            assert!(p.may_match(&trigrams), "{e}");
        }
        assert!(!Pattern::new("*-debuginfo").may_match(&trigrams));
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

#[cfg(test)]
mod prefilter_props {
    use super::*;
    use proptest::prelude::*;

    fn part() -> impl Strategy<Value = String> {
        "[a-c0-2._-]{0,4}".prop_map(|s| s)
    }

    fn entry() -> impl Strategy<Value = String> {
        "[a-c0-2.:*?_-]{1,8}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The name buckets and the byte-pair filter only ever skip entries
        /// that the full match would reject.
        #[test]
        fn prefilters_are_sound(
            name in "[a-c0-2][a-c0-2._-]{0,5}",
            arch in "[a-c0-2_]{1,4}",
            epoch in 0u32..3,
            version in "[0-2a-c][a-c0-2.]{0,4}",
            release in part(),
            entries in proptest::collection::vec(entry(), 1..6),
            apt in any::<bool>(),
        ) {
            let family = if apt { Family::Apt } else { Family::Rpm };
            let deb = format!("{version}-{release}");
            let c = Components {
                name: &name,
                arch: &arch,
                evr: (!apt).then_some((epoch, version.as_str(), release.as_str())),
                deb_version: &deb,
            };
            let set = PatternSet::new(&entries);
            let mut identity = Identity::default();
            identity.build(family, &c);
            let brute = entries.iter().position(|e| Pattern::new(e).matches(&identity));
            let fast = set.find(family, &c);
            prop_assert_eq!(fast.is_some(), brute.is_some(), "entries {:?} on {:?}", entries, identity.strings().collect::<Vec<_>>());
        }
    }
}
