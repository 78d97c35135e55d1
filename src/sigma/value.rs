//! Sigma values and the modifiers that transform them (load time only).
//!
//! A detection item's values are parsed from YAML into [`SValue`]s and then run through the
//! item's modifiers left to right, as pySigma does: `base64offset|contains` first encodes
//! (three variants), then wraps each variant in wildcards. What comes out is what the
//! matcher compiles; no modifier is looked at per event.
//!
//! Strings are byte strings with wildcard parts, because encodings (`utf16le`, `base64`)
//! produce bytes that need not be UTF-8.

use std::fmt;

use ipnet::IpNet;

use super::error::Problem;

/// One part of a Sigma string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SPart {
    Lit(Vec<u8>),
    /// `*`: any sequence, possibly empty.
    Any,
    /// `?`: exactly one character.
    One,
    /// `%name%` of an `expand` value, replaced when pipelines or config define it.
    Placeholder(String),
}

/// A string value with wildcards.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct SigmaString {
    pub parts: Vec<SPart>,
}

impl SigmaString {
    /// Parses Sigma's escaping: `\` escapes `*`, `?` and `\`; a backslash before anything
    /// else is a literal backslash; unescaped `*` and `?` are wildcards.
    pub fn parse(s: &str) -> SigmaString {
        let b = s.as_bytes();
        let mut out = SigmaString::default();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if matches!(b.get(i + 1), Some(b'*' | b'?' | b'\\')) => {
                    out.push_lit(&b[i + 1..i + 2]);
                    i += 2;
                }
                b'*' => {
                    out.parts.push(SPart::Any);
                    i += 1;
                }
                b'?' => {
                    out.parts.push(SPart::One);
                    i += 1;
                }
                _ => {
                    let next = b[i + 1..]
                        .iter()
                        .position(|c| matches!(c, b'\\' | b'*' | b'?'))
                        .map_or(b.len(), |n| i + 1 + n);
                    out.push_lit(&b[i..next]);
                    i = next;
                }
            }
        }
        out
    }

    /// A string with no wildcards.
    pub fn literal(b: &[u8]) -> SigmaString {
        let mut s = SigmaString::default();
        s.push_lit(b);
        s
    }

    pub fn push_lit(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if let Some(SPart::Lit(l)) = self.parts.last_mut() {
            l.extend_from_slice(b);
        } else {
            self.parts.push(SPart::Lit(b.to_vec()));
        }
    }

    pub fn has_wildcards(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, SPart::Any | SPart::One))
    }

    pub fn has_placeholders(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, SPart::Placeholder(_)))
    }

    pub fn starts_with_any(&self) -> bool {
        matches!(self.parts.first(), Some(SPart::Any))
    }

    pub fn ends_with_any(&self) -> bool {
        matches!(self.parts.last(), Some(SPart::Any))
    }

    /// The plain bytes, when the string is a single literal (or empty).
    pub fn as_literal(&self) -> Option<Vec<u8>> {
        match self.parts.as_slice() {
            [] => Some(Vec::new()),
            [SPart::Lit(l)] => Some(l.clone()),
            _ => None,
        }
    }

    /// `*` + self + `*` (contains), without doubling wildcards already there.
    pub fn contains(mut self) -> SigmaString {
        if !self.starts_with_any() {
            self.parts.insert(0, SPart::Any);
        }
        if !self.ends_with_any() {
            self.parts.push(SPart::Any);
        }
        self
    }

    pub fn startswith(mut self) -> SigmaString {
        if !self.ends_with_any() {
            self.parts.push(SPart::Any);
        }
        self
    }

    pub fn endswith(mut self) -> SigmaString {
        if !self.starts_with_any() {
            self.parts.insert(0, SPart::Any);
        }
        self
    }

    /// Maps every literal part through `f` (encodings), keeping wildcards.
    pub fn map_lits(&self, mut f: impl FnMut(&[u8]) -> Vec<u8>) -> SigmaString {
        SigmaString {
            parts: self
                .parts
                .iter()
                .map(|p| match p {
                    SPart::Lit(l) => SPart::Lit(f(l)),
                    other => other.clone(),
                })
                .collect(),
        }
    }

    /// Replaces `%name%` sequences in literal parts with placeholders (the `expand` modifier).
    pub fn with_placeholders(&self) -> SigmaString {
        let mut out = SigmaString::default();
        for p in &self.parts {
            let SPart::Lit(l) = p else {
                out.parts.push(p.clone());
                continue;
            };
            let mut rest = &l[..];
            while let Some(a) = rest.iter().position(|&c| c == b'%') {
                let Some(b) = rest[a + 1..].iter().position(|&c| c == b'%') else {
                    break;
                };
                let name = &rest[a + 1..a + 1 + b];
                if name.is_empty()
                    || !name
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
                {
                    out.push_lit(&rest[..a + 1]);
                    rest = &rest[a + 1..];
                    continue;
                }
                out.push_lit(&rest[..a]);
                out.parts.push(SPart::Placeholder(
                    String::from_utf8_lossy(name).into_owned(),
                ));
                rest = &rest[a + 2 + b..];
            }
            out.push_lit(rest);
        }
        out
    }
}

impl fmt::Display for SigmaString {
    /// Sigma notation again (escaping literal `*`, `?` and `\` where needed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                SPart::Lit(l) => {
                    for ch in String::from_utf8_lossy(l).chars() {
                        if matches!(ch, '*' | '?') {
                            write!(f, "\\")?;
                        }
                        write!(f, "{ch}")?;
                    }
                }
                SPart::Any => write!(f, "*")?,
                SPart::One => write!(f, "?")?,
                SPart::Placeholder(n) => write!(f, "%{n}%")?,
            }
        }
        Ok(())
    }
}

/// Numeric comparison of the `lt`/`lte`/`gt`/`gte` modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub fn eval(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
        }
    }
}

/// How a `fieldref` compares the two fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefMode {
    Equals,
    StartsWith,
    EndsWith,
    Contains,
}

/// Regex flags of the `re` modifier's sub-modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ReFlags {
    pub ignore_case: bool,
    pub multi_line: bool,
    pub dot_all: bool,
}

/// A value after modifiers.
#[derive(Clone, Debug, PartialEq)]
pub enum SValue {
    /// A string with wildcards; `cased` from the `cased` modifier.
    Str {
        s: SigmaString,
        cased: bool,
    },
    /// A plain YAML number: equal numerically, or as text.
    Num(f64, String),
    Bool(bool),
    /// `null`: the field is absent or JSON null (an empty string is a value).
    Null,
    Regex {
        pattern: String,
        flags: ReFlags,
    },
    Cidr(IpNet),
    Cmp(CmpOp, f64),
    Exists(bool),
    FieldRef {
        field: String,
        mode: RefMode,
    },
    /// Variants of one value (windash, base64offset): any of them.
    Alt(Vec<SValue>),
}

/// A modifier as written after `|`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Re,
    ReI,
    ReM,
    ReS,
    Cased,
    Exists,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Wide,
    Windash,
    Cidr,
    Lt,
    Lte,
    Gt,
    Gte,
    Neq,
    FieldRef,
    Expand,
}

impl Modifier {
    pub fn parse(s: &str) -> Option<Modifier> {
        use Modifier::*;
        Some(match s {
            "contains" => Contains,
            "startswith" => StartsWith,
            "endswith" => EndsWith,
            "all" => All,
            "re" => Re,
            "i" | "ignorecase" => ReI,
            "m" | "multiline" => ReM,
            "s" | "dotall" => ReS,
            "cased" => Cased,
            "exists" => Exists,
            "base64" => Base64,
            "base64offset" => Base64Offset,
            "utf16le" => Utf16Le,
            "utf16be" => Utf16Be,
            "utf16" => Utf16,
            "wide" => Wide,
            "windash" => Windash,
            "cidr" => Cidr,
            "lt" => Lt,
            "lte" => Lte,
            "gt" => Gt,
            "gte" => Gte,
            "neq" => Neq,
            "fieldref" => FieldRef,
            "expand" => Expand,
            _ => return None,
        })
    }
}

/// Standard base64 (with padding) of `b`.
pub fn base64(b: &[u8]) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(b)
        .into_bytes()
}

/// The three base64 encodings of `b` at byte offsets 0, 1 and 2 inside a larger encoded
/// string, trimmed to the characters that do not depend on the surrounding bytes
/// (pySigma's `base64offset`).
pub fn base64_offsets(b: &[u8]) -> [Vec<u8>; 3] {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    std::array::from_fn(|i| {
        let mut v = vec![b' '; i];
        v.extend_from_slice(b);
        let enc = base64(&v);
        let end_cut = END[(b.len() + i) % 3];
        // For an empty value the cut ends before it starts (offset 1: `IA==`[2..1]); that
        // panicked the loader. Python's slice, which pySigma uses, gives "" there.
        enc.get(START[i]..enc.len() - end_cut)
            .unwrap_or_default()
            .to_vec()
    })
}

/// UTF-16 little-endian encoding of UTF-8 text (invalid UTF-8 bytes become U+FFFD).
pub fn utf16le(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b)
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

pub fn utf16be(b: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(b)
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect()
}

/// `utf16`: UTF-16 with a little-endian byte order mark.
pub fn utf16bom(b: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    v.extend(utf16le(b));
    v
}

/// The characters `windash` puts in place of a `-` or `/` option prefix: dash, slash, en
/// dash, em dash, horizontal bar (pySigma 2.0).
pub const WINDASH_CHARS: [&str; 5] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"];

/// Most option prefixes one value may expand (pySigma refuses more: 5^3 variants).
pub const WINDASH_MAX: usize = 3;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// All variants of `s` with each `-` or `/` that starts an option replaced by each of
/// [`WINDASH_CHARS`]. "Starts an option" is pySigma's `\B[-/]\b` within one literal part: the
/// character before is not a word character (or there is none) and the one after is.
pub fn windash(s: &SigmaString) -> Result<Vec<SigmaString>, Problem> {
    // Split literal parts into text pieces and dash slots.
    enum Piece {
        Part(SPart),
        Dash,
    }
    let mut pieces = Vec::new();
    let mut slots = 0;
    for p in &s.parts {
        let SPart::Lit(l) = p else {
            pieces.push(Piece::Part(p.clone()));
            continue;
        };
        let text = String::from_utf8_lossy(l);
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut from = 0;
        for (k, &(at, c)) in chars.iter().enumerate() {
            let prev_ok = k == 0 || !is_word(chars[k - 1].1);
            let next_ok = chars.get(k + 1).is_some_and(|&(_, n)| is_word(n));
            if (c == '-' || c == '/') && prev_ok && next_ok {
                if at > from {
                    pieces.push(Piece::Part(SPart::Lit(text[from..at].as_bytes().to_vec())));
                }
                pieces.push(Piece::Dash);
                slots += 1;
                from = at + 1;
            }
        }
        if from < text.len() {
            pieces.push(Piece::Part(SPart::Lit(text[from..].as_bytes().to_vec())));
        }
    }
    if slots == 0 {
        return Ok(vec![s.clone()]);
    }
    if slots > WINDASH_MAX {
        return Err(Problem::new(format!(
            "windash expands at most {WINDASH_MAX} dashes in one value; split the value"
        )));
    }
    let mut out = vec![SigmaString::default()];
    for piece in &pieces {
        match piece {
            Piece::Part(SPart::Lit(l)) => out.iter_mut().for_each(|v| v.push_lit(l)),
            Piece::Part(p) => out.iter_mut().for_each(|v| v.parts.push(p.clone())),
            Piece::Dash => {
                out = out
                    .iter()
                    .flat_map(|v| {
                        WINDASH_CHARS.iter().map(move |ch| {
                            let mut n = v.clone();
                            n.push_lit(ch.as_bytes());
                            n
                        })
                    })
                    .collect();
            }
        }
    }
    Ok(out)
}

/// Parses a `cidr` value.
pub fn parse_cidr(s: &str) -> Result<IpNet, Problem> {
    s.trim()
        .parse::<IpNet>()
        .or_else(|_| s.trim().parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            Problem::new(format!(
                "cidr: {s:?} is not a network like 10.0.0.0/8 or fe80::/10"
            ))
            .near(s)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        let s = SigmaString::parse(r"\\\*.au3");
        assert_eq!(s.parts, vec![SPart::Lit(br"\*.au3".to_vec())]);
        let s = SigmaString::parse(r"\cmd.exe*");
        assert_eq!(s.parts, vec![SPart::Lit(br"\cmd.exe".to_vec()), SPart::Any]);
        let s = SigmaString::parse(r"a?b\?c");
        assert_eq!(
            s.parts,
            vec![
                SPart::Lit(b"a".to_vec()),
                SPart::One,
                SPart::Lit(b"b?c".to_vec())
            ]
        );
    }

    #[test]
    fn base64_offsets_match_pysigma() {
        // pySigma docs example: base64offset of "/bin/bash".
        let v = base64_offsets(b"/bin/bash");
        assert_eq!(v[0], b"L2Jpbi9iYXNo".to_vec());
        assert_eq!(v[1], b"9iaW4vYmFza".to_vec());
        assert_eq!(v[2], b"vYmluL2Jhc2".to_vec());
        // Empty: every variant empty, as Python's slicing gives (used to panic).
        assert!(base64_offsets(b"").iter().all(|v| v.is_empty()));
    }

    #[test]
    fn windash_variants() {
        let v = windash(&SigmaString::parse("-enc x -f")).unwrap();
        assert_eq!(v.len(), 25);
        assert!(v.contains(&SigmaString::parse("/enc x /f")));
        assert!(v.contains(&SigmaString::parse("\u{2015}enc x -f")));
        // A dash inside a word, or before a non-word character, stays.
        assert_eq!(windash(&SigmaString::parse("a-b")).unwrap().len(), 1);
        assert_eq!(windash(&SigmaString::parse(" - ")).unwrap().len(), 1);
        assert!(windash(&SigmaString::parse("-a -b -c -d")).is_err());
    }

    #[test]
    fn placeholders() {
        let s = SigmaString::parse("%Admins%x%").with_placeholders();
        assert_eq!(
            s.parts,
            vec![
                SPart::Placeholder("Admins".into()),
                SPart::Lit(b"x%".to_vec())
            ]
        );
    }
}
