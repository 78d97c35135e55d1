//! Leaf tests: one compiled check of one field value, chosen when rules load.
//!
//! Strings compare case-insensitively for ASCII letters unless `cased` (pySigma's SQLite
//! reference does the same: `LIKE` folds ASCII only). Case-insensitive patterns are stored
//! lowercased; haystacks are lowercased once per event and field by the caller
//! ([`super::Scratch`]). Wildcards are lowered to the cheapest check that is equivalent:
//! exact, prefix, suffix, contains (with a prebuilt `memmem` finder), or a general glob.
//! A `?` matches one UTF-8 character, as SQLite's `_` does.

use aho_corasick::{AhoCorasick, Anchored, Input, StartKind};
use ipnet::IpNet;
use memchr::memmem;

use crate::sigma::value::{CmpOp, RefMode, SPart};

/// How a string pattern is checked.
#[derive(Clone, Debug)]
pub enum StrKind {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    Contains(Box<memmem::Finder<'static>>),
    /// `*` alone: any value, including the empty string.
    Any,
    /// Anything else: literal segments, `*` and `?`.
    Glob(Box<[GlobPart]>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GlobPart {
    Lit(Box<[u8]>),
    Any,
    One,
}

/// A compiled string pattern.
#[derive(Clone, Debug)]
pub struct StrPat {
    pub kind: StrKind,
    /// Compare exactly (the `cased` modifier); else `kind` holds lowercase bytes.
    pub cased: bool,
}

impl StrPat {
    /// Compiles Sigma string parts (placeholders must be resolved already).
    pub fn new(parts: &[SPart], cased: bool) -> StrPat {
        let fold = |b: &[u8]| -> Box<[u8]> {
            if cased {
                b.into()
            } else {
                b.to_ascii_lowercase().into()
            }
        };
        let kind = match parts {
            [] => StrKind::Exact(Box::default()),
            [SPart::Lit(l)] => StrKind::Exact(fold(l)),
            [SPart::Any] => StrKind::Any,
            [SPart::Lit(l), SPart::Any] => StrKind::Prefix(fold(l)),
            [SPart::Any, SPart::Lit(l)] => StrKind::Suffix(fold(l)),
            [SPart::Any, SPart::Lit(l), SPart::Any] => {
                StrKind::Contains(Box::new(memmem::Finder::new(&fold(l)).into_owned()))
            }
            _ => {
                let mut g: Vec<GlobPart> = Vec::new();
                for p in parts {
                    let gp = match p {
                        SPart::Lit(l) => GlobPart::Lit(fold(l)),
                        SPart::Any => GlobPart::Any,
                        SPart::One => GlobPart::One,
                        SPart::Placeholder(_) => {
                            unreachable!("placeholders are resolved before compiling")
                        }
                    };
                    // `**` is `*`.
                    if gp == GlobPart::Any && g.last() == Some(&GlobPart::Any) {
                        continue;
                    }
                    g.push(gp);
                }
                StrKind::Glob(g.into())
            }
        };
        StrPat { kind, cased }
    }

    /// Tests `h`, which must already be lowercased when the pattern is not cased.
    #[inline]
    pub fn is_match(&self, h: &[u8]) -> bool {
        match &self.kind {
            StrKind::Exact(p) => h == &**p,
            StrKind::Prefix(p) => h.starts_with(p),
            StrKind::Suffix(p) => h.ends_with(p),
            StrKind::Contains(f) => f.find(h).is_some(),
            StrKind::Any => true,
            StrKind::Glob(g) => glob(g, h),
        }
    }

    /// The literal bytes every match must contain (the longest one), for the prefilter.
    pub fn required_literal(&self) -> Option<&[u8]> {
        match &self.kind {
            StrKind::Exact(p) | StrKind::Prefix(p) | StrKind::Suffix(p) => {
                (!p.is_empty()).then_some(&**p)
            }
            StrKind::Contains(f) => (!f.needle().is_empty()).then_some(f.needle()),
            StrKind::Any => None,
            StrKind::Glob(g) => g
                .iter()
                .filter_map(|p| match p {
                    GlobPart::Lit(l) => Some(&**l),
                    _ => None,
                })
                .max_by_key(|l| l.len()),
        }
    }
}

/// Many patterns of one item (`CommandLine|contains: [...]`, windash variants): any of them,
/// checked at once. Exact members by hash, prefixes and substrings each by one
/// Aho-Corasick search, suffixes by comparison, the rest as globs.
#[derive(Clone, Debug)]
pub struct StrSet {
    pub cased: bool,
    exact: hashbrown::HashSet<Box<[u8]>>,
    /// Anchored at the start.
    prefix: Option<AhoCorasick>,
    suffix: Vec<Box<[u8]>>,
    contains: Option<AhoCorasick>,
    /// A `*` member: every value matches.
    any: bool,
    globs: Vec<StrPat>,
    /// Each member's required literal, for the prefilter; `None` when a member has none.
    pub literals: Option<Vec<Box<[u8]>>>,
}

/// Members from this many on are compiled into one [`StrSet`].
pub const SET_MIN: usize = 4;

impl StrSet {
    /// Builds a set from patterns that share the `cased` flag.
    pub fn new(pats: Vec<StrPat>, cased: bool) -> StrSet {
        let literals: Option<Vec<Box<[u8]>>> = pats
            .iter()
            .map(|p| p.required_literal().map(Box::from))
            .collect();
        let mut set = StrSet {
            cased,
            exact: hashbrown::HashSet::new(),
            prefix: None,
            suffix: Vec::new(),
            contains: None,
            any: false,
            globs: Vec::new(),
            literals,
        };
        let (mut prefixes, mut needles) = (Vec::new(), Vec::new());
        for p in pats {
            match p.kind {
                StrKind::Exact(b) => {
                    set.exact.insert(b);
                }
                StrKind::Prefix(b) => prefixes.push(b),
                StrKind::Suffix(b) => set.suffix.push(b),
                StrKind::Contains(f) => needles.push(f.needle().to_vec()),
                StrKind::Any => set.any = true,
                StrKind::Glob(_) => set.globs.push(p),
            }
        }
        if !prefixes.is_empty() {
            set.prefix = Some(
                AhoCorasick::builder()
                    .start_kind(StartKind::Anchored)
                    .build(&prefixes)
                    .expect("literal patterns always build"),
            );
        }
        if !needles.is_empty() {
            set.contains = Some(AhoCorasick::new(&needles).expect("literal patterns always build"));
        }
        set
    }

    /// Tests `h` (lowercased unless the set is cased).
    #[inline]
    pub fn is_match(&self, h: &[u8]) -> bool {
        self.any
            || self.exact.contains(h)
            || self.suffix.iter().any(|s| h.ends_with(s))
            || self
                .prefix
                .as_ref()
                .is_some_and(|ac| ac.is_match(Input::new(h).anchored(Anchored::Yes)))
            || self.contains.as_ref().is_some_and(|ac| ac.is_match(h))
            || self.globs.iter().any(|g| g.is_match(h))
    }
}

/// Length of the UTF-8 character starting with byte `b` (1 for invalid bytes).
#[inline]
fn char_len(b: u8) -> usize {
    match b {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// Glob match: `*` is any byte sequence, `?` one UTF-8 character (one byte where none
/// starts). Backtracking to the last `*` is exact when every part matches the same number of
/// bytes wherever it is tried, or when there is at most one `*`; a `?` is 1 to 4 bytes
/// depending on where it lands, so with a `?` and several `*`s committing to an earlier `*`'s
/// first fit can miss a match (`*?*?` on `€`, whose second and third bytes are two
/// characters-or-bytes): those patterns take `glob_exact`.
pub fn glob(p: &[GlobPart], h: &[u8]) -> bool {
    let stars = p.iter().filter(|x| **x == GlobPart::Any).count();
    if stars >= 2
        && p.contains(&GlobPart::One)
        && !h.is_ascii()
        && let Some(r) = glob_exact(p, h)
    {
        return r;
    }
    fn rec(p: &[GlobPart], h: &[u8]) -> bool {
        let mut pi = 0;
        let mut hi = 0;
        // Position to resume from after the last `*`: (pattern index after it, haystack index).
        let mut star: Option<(usize, usize)> = None;
        loop {
            if pi < p.len() {
                match &p[pi] {
                    GlobPart::Any => {
                        star = Some((pi + 1, hi));
                        pi += 1;
                        continue;
                    }
                    GlobPart::One if hi < h.len() => {
                        hi += char_len(h[hi]).min(h.len() - hi);
                        pi += 1;
                        continue;
                    }
                    GlobPart::Lit(l) if h[hi..].starts_with(l) => {
                        hi += l.len();
                        pi += 1;
                        continue;
                    }
                    _ => {}
                }
            } else if hi == h.len() {
                return true;
            }
            // Mismatch: let the last `*` swallow one more byte. Not a whole character: a
            // literal made by `wide`/`utf16*` may start inside one (`Ҁ` is `D2 80`, its
            // UTF-16LE `80 04`), and `*` is any byte sequence, as for the `Contains`/`Suffix`
            // kinds and the reference; stepping by characters skipped such matches.
            match star {
                Some((sp, sh)) if sh < h.len() => {
                    let nh = sh + 1;
                    star = Some((sp, nh));
                    pi = sp;
                    hi = nh;
                }
                _ => return false,
            }
        }
    }
    rec(p, h)
}

/// Exact glob match by dynamic programming over haystack positions: for each position, the
/// set of pattern parts reachable there (a bitset), carried forward through a ring of
/// pending positions as long as the longest step (a literal, or the 4 bytes of a `?`).
/// O(len(h) · len(p)) and no allocation; `None` for patterns too big for the bitset or the
/// ring (64 parts, 255-byte literals), which keep the backtracking match.
fn glob_exact(p: &[GlobPart], h: &[u8]) -> Option<bool> {
    const RING: usize = 256;
    let m = p.len();
    if m >= 64
        || p.iter()
            .any(|x| matches!(x, GlobPart::Lit(l) if l.len() >= RING))
    {
        return None;
    }
    let n = h.len();
    let mut ring = [0u64; RING];
    ring[0] = 1;
    for i in 0..=n {
        let mut cur = std::mem::take(&mut ring[i % RING]);
        // A `*` may match nothing: what reaches it also reaches the part after it.
        for (j, x) in p.iter().enumerate() {
            if *x == GlobPart::Any && cur & (1 << j) != 0 {
                cur |= 1 << (j + 1);
            }
        }
        if i == n {
            return Some(cur & (1 << m) != 0);
        }
        let mut bits = cur & ((1u64 << m) - 1);
        while bits != 0 {
            let j = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            match &p[j] {
                GlobPart::Any => ring[(i + 1) % RING] |= 1 << j,
                GlobPart::Lit(l) => {
                    if h[i..].starts_with(l) {
                        ring[(i + l.len()) % RING] |= 1 << (j + 1);
                    }
                }
                GlobPart::One => {
                    let k = char_len(h[i]).min(n - i);
                    ring[(i + k) % RING] |= 1 << (j + 1);
                }
            }
        }
    }
    unreachable!("returns at i == n")
}

/// A compiled test of one field.
/// A `re` value: the regex, and the bytes one of which every match starts with, when they
/// are at most three. A text without any of them is decided by one `memchr` scan, without a
/// regex search: the web rules' SQL-injection regexes start with `'`, `%` or `u`, which
/// ordinary URLs rarely hold, and the regex engine's setup costs more than the scan.
#[derive(Clone, Debug)]
pub struct SigmaRegex {
    re: regex::bytes::Regex,
    first: Option<([u8; 3], usize)>,
}

impl SigmaRegex {
    pub fn new(re: regex::bytes::Regex) -> SigmaRegex {
        SigmaRegex {
            first: first_bytes(re.as_str()),
            re,
        }
    }

    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }

    #[inline]
    pub fn is_match(&self, t: &[u8]) -> bool {
        let maybe = match self.first {
            None => true,
            Some(([a, _, _], 1)) => memchr::memchr(a, t).is_some(),
            Some(([a, b, _], 2)) => memchr::memchr2(a, b, t).is_some(),
            Some(([a, b, c], _)) => memchr::memchr3(a, b, c, t).is_some(),
        };
        maybe && self.re.is_match(t)
    }
}

/// The distinct first bytes of the literals every match of `src` starts with, if the regex
/// has a finite set of such prefixes (none empty) with at most three first bytes.
fn first_bytes(src: &str) -> Option<([u8; 3], usize)> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = crate::event::regex_hir(src)?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut out = ([0u8; 3], 0);
    for lit in seq.literals()? {
        let &b = lit.as_bytes().first()?;
        if !out.0[..out.1].contains(&b) {
            if out.1 == 3 {
                return None;
            }
            out.0[out.1] = b;
            out.1 += 1;
        }
    }
    (out.1 > 0).then_some(out)
}

#[derive(Clone, Debug)]
pub enum Test {
    Str(StrPat),
    /// Any of many patterns.
    StrSet(Box<StrSet>),
    /// A plain YAML number: numeric equality, or the text equal (ASCII case-folded).
    Num(f64, Box<[u8]>),
    /// A plain YAML boolean: `true`/`false` as a boolean, text or 1/0.
    Bool(bool),
    Regex(Box<SigmaRegex>),
    Cidr(IpNet),
    Cmp(CmpOp, f64),
    /// The field has a value other than JSON null (`exists: true`), or has none
    /// (`exists: false`).
    Exists(bool),
    /// `null`: the field is absent or JSON null (not `""`).
    Null,
    /// Compare with another field of the same event.
    FieldRef(crate::event::FieldId, RefMode),
}

impl Test {
    /// Whether this test needs the lowercased haystack.
    pub fn wants_lower(&self) -> bool {
        matches!(self, Test::Str(p) if !p.cased)
            || matches!(self, Test::Num(..) | Test::FieldRef(..))
    }
}

/// Parses a decimal number from text (for `lt`/`gt` and numeric equality).
#[inline]
pub fn parse_num(b: &[u8]) -> Option<f64> {
    // No length cap: the reference reads any numeric text (`"0…05"` padded past 64 bytes
    // was no number here, so `lt: 10` missed it), and parsing is linear anyway.
    if b.is_empty() {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    s.trim().parse::<f64>().ok()
}

/// Parses an IP address from text, tolerating an IPv6 zone or brackets.
pub fn parse_ip(b: &[u8]) -> Option<std::net::IpAddr> {
    // The usual value, a bare dotted quad, read in one pass: `cidr` rules test every
    // address field of every firewall event, often against several networks.
    if let Some(v4) = crate::event::dotted_quad(b) {
        return Some(std::net::IpAddr::V4(v4));
    }
    let s = std::str::from_utf8(b).ok()?.trim();
    let s = s.trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or(s);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigma::value::SigmaString;

    /// Regexes of the shipped web rules, and edge cases for [`first_bytes`].
    const FIRST: &[(&str, Option<&[u8]>)] = &[
        (
            r"(?i)union(?:%20|\+|%09|\s|/\*.*?\*/)+(?:all(?:%20|\+|\s)+)?(?:%28)?select",
            Some(b"Uu"),
        ),
        (r"(?i)(?:'|%27|%22)\)?(?:%20|\+|\s)*(?:or|and)", Some(b"%'")),
        (r"(?i)(?:%20|\+|\s)(?:or|and)", None),
        (r"abc|abd", Some(b"a")),
        // The Kelvin sign folds to k: three first bytes.
        (r"(?i)k", Some(b"Kk\xe2")),
        (r"(?i)ks|s", None),
        (r"a*b", Some(b"ab")),
        (r"x?", None),
        (r"^foo", Some(b"f")),
    ];

    #[test]
    fn regex_first_bytes() {
        for (src, want) in FIRST {
            let got = first_bytes(src).map(|(b, n)| {
                let mut v = b[..n].to_vec();
                v.sort();
                v
            });
            assert_eq!(got.as_deref(), *want, "{src}");
        }
    }

    proptest::proptest! {
        /// The first-byte check never turns away a text the regex matches.
        #[test]
        fn sigma_regex_agrees_with_regex(
            which in 0..FIRST.len(),
                        t in crate::testkit::texts(
                &["union select", "%27 or", "' AND", "UNION%20ALL%20SELECT"],
                &["[ -~]{0,5}", "[abdfkK\u{212a} ]{0,3}"],
                5,
            ),
        ) {
            let re = regex::bytes::Regex::new(FIRST[which].0).unwrap();
            let s = SigmaRegex::new(re.clone());
            proptest::prop_assert_eq!(s.is_match(t.as_bytes()), re.is_match(t.as_bytes()), "{:?}", t);
        }
    }

    proptest::proptest! {
        /// The dotted-quad fast path agrees with the standard parser on address-like text.
        #[test]
        fn dotted_quad_agrees_with_std(s in "[0-9.]{0,18}|([0-9]{1,3}\\.){3}[0-9]{1,3}") {
            let std_v4: Option<std::net::Ipv4Addr> = s.parse().ok();
            proptest::prop_assert_eq!(crate::event::dotted_quad(s.as_bytes()), std_v4);
        }
    }

    fn m(pat: &str, h: &str) -> bool {
        let p = StrPat::new(&SigmaString::parse(pat).parts, false);
        p.is_match(h.to_ascii_lowercase().as_bytes())
    }

    #[test]
    fn lowering_and_globs() {
        assert!(m("abc", "ABC"));
        assert!(!m("abc", "abcd"));
        assert!(m("ab*", "ABcd"));
        assert!(m("*cd", "abCD"));
        assert!(m("*b*", "abc"));
        assert!(m("*", ""));
        assert!(m("a*c*e", "abcde"));
        assert!(!m("a*c*e", "abcd"));
        assert!(m("a?c", "abc"));
        assert!(m("a?c", "aжc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a?c*", "xxaXcyy"));
        assert!(m("**x", "abx"));
        assert!(m(r"C:\Windows\\*\x.exe", r"c:\windows\system32\x.exe"));
        // `\*` is an escaped star: a literal `*`.
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
    }
}

#[cfg(test)]
mod glob_props {
    use super::*;
    use crate::sigma::value::SigmaString;
    use proptest::prelude::*;

    /// The reference's wildcard semantics: `*` any bytes, `?` one UTF-8 character.
    fn wild(p: &[GlobPart], h: &[u8]) -> bool {
        match p.split_first() {
            None => h.is_empty(),
            Some((GlobPart::Lit(l), rest)) => h.starts_with(l) && wild(rest, &h[l.len()..]),
            Some((GlobPart::Any, rest)) => (0..=h.len()).any(|k| wild(rest, &h[k..])),
            Some((GlobPart::One, rest)) => {
                !h.is_empty() && wild(rest, &h[char_len(h[0]).min(h.len())..])
            }
        }
    }

    fn part() -> impl Strategy<Value = GlobPart> {
        let byte = proptest::sample::select(vec![b'a', b'b', 0x80, 0xC3, 0xE2, 0xF0]);
        prop_oneof![
            proptest::collection::vec(byte, 1..3).prop_map(|l| GlobPart::Lit(l.into())),
            Just(GlobPart::Any),
            Just(GlobPart::One),
        ]
    }

    #[test]
    fn several_stars_and_a_question_mark() {
        let p = |s: &str| {
            let StrKind::Glob(g) = StrPat::new(&SigmaString::parse(s).parts, true).kind else {
                panic!("{s} is no glob")
            };
            g
        };
        // `*` may end inside a character; `?` then takes one byte (the reference's reading).
        assert!(glob(&p("*?*?"), "€".as_bytes()));
        assert!(glob(&p("*??*?"), b"\xE2aa\xC3a"));
        assert!(!glob(&p("*?*?"), "é".as_bytes()[..1].as_ref()));
        assert!(glob(&p("a*?b*?c"), "aéb€c".as_bytes()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10000))]
        /// Bytes that make characters of every width, and continuation bytes alone.
        #[test]
        fn glob_agrees_with_plain_recursion(
            p in proptest::collection::vec(part(), 0..6),
            h in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', 0x80, 0xA9, 0xC3, 0xE2, 0xF0]),
                0..12,
            ),
        ) {
            prop_assert_eq!(glob(&p, &h), wild(&p, &h), "{:?} on {:?}", p, h);
        }

        #[test]
        fn glob_agrees_on_utf8(
            p in proptest::collection::vec(part(), 0..6),
            h in proptest::collection::vec(proptest::sample::select(vec!['a', 'b', 'é', '€', '😀', '\u{480}']), 0..8),
        ) {
            let h: String = h.into_iter().collect();
            prop_assert_eq!(glob(&p, h.as_bytes()), wild(&p, h.as_bytes()), "{:?} on {:?}", p, h);
        }
    }
}
