//! Arbitrary Sigma rules and events, drawn from bytes, and the invariants the compiled matcher
//! must keep against the reference interpreter. Shared by the cargo-fuzz targets
//! (`sigma_match`, `sigma_load`, `literal_set`), `tests/fuzz_regressions.rs` (replaying saved
//! crash inputs) and `tests/sigma_props.rs` (proptest feeds it random bytes), so there is one
//! generator and one statement of each invariant.
//!
//! The generator reads choices from a byte string ([`Gen`]); when the bytes run out every
//! choice is the first (simplest) option, so short inputs give small cases and shrinking bytes
//! towards zero shrinks the case. No dependency beyond `kuzet` itself.
//!
//! What a case covers:
//! - rules: 1–4 searches per rule, each a map of items, a list of maps, a keyword list or a
//!   keyword scalar (lists nest); items with modifier chains from every family (`contains`
//!   `startswith` `endswith` `all` `cased` `neq`, encodings `base64` `base64offset` `wide`
//!   `utf16*` `windash`, `re` with `i`/`m`/`s`, `cidr`, `lt`…`gte`, `exists`, `fieldref`,
//!   `expand`, unknown ones) in valid and invalid orders; values with `*`, `?` and escapes,
//!   numbers (ints, floats, YAML spellings like `0x10` and `.inf`), booleans, `null`; large
//!   value lists (string sets, the large-literal prefilter); conditions with
//!   `and`/`or`/`not`, parentheses, `1 of`/`any of`/`all of` over `them` or patterns, lists of
//!   conditions; logsources; Sigma filters, `action: global`, duplicate ids; occasionally a
//!   broken document, so errors are exercised too;
//! - events: JSON objects over the same field names (nested, evtx-shaped, arrays, repeated
//!   keys) whose values come from the literals the rules used — case variants, non-ASCII
//!   letters, base64 and UTF-16 encodings, windash dashes, numbers as numbers and as text — so
//!   rules match often; now and then a non-JSON line (keywords search it); a logsource class.
//!
//! Invariants ([`check_case`]): for every event, the rules `RuleSet::matches_into` reports are
//! exactly those `reference::matches` accepts (the reference decides; routing and the
//! prefilter must never drop a rule it matches, nor evaluation add one), also per rule
//! without routing/prefilter (`rule_matches`), and also when the event is parsed in
//! `FieldMode::Known`; a rule that does not compile fails the same way alone and in the set,
//! and is reported as an error with path and reason, never a panic.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use kuzet::event::{Event, EventBuf, FieldMode, FieldTable, Timestamp};
use kuzet::matcher::{CompileOptions, RuleId, RuleSet, Scratch, reference};
use kuzet::parser::{InputFormat, Parser, ParserConfig};
use kuzet::sigma::{self, Logsource, Rule, RuleError, Source};

// ---------------------------------------------------------------------------------------------
// Choices from bytes.

/// A source of choices: reads `data` front to back; past its end every choice is 0.
pub struct Gen<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Gen<'a> {
    pub fn new(data: &'a [u8]) -> Gen<'a> {
        Gen { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number in `0..n` (`n` ≥ 1).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        if n <= 256 {
            self.byte() as usize % n
        } else {
            (u16::from_le_bytes([self.byte(), self.byte()]) as usize) % n
        }
    }

    /// True with probability about `pct` percent (false once the bytes run out).
    pub fn pct(&mut self, pct: usize) -> bool {
        // 0 maps to "no", so exhausted input takes the plain branch.
        let b = self.byte() as usize;
        b != 0 && (b * 100) / 256 < pct
    }

    pub fn pick<'b, T>(&mut self, xs: &'b [T]) -> &'b T {
        &xs[self.below(xs.len())]
    }

    /// A length in `lo..=hi`.
    pub fn len(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// Picks from `xs[..valid]` unless `any`, then from all of `xs`.
    pub fn pick_valid<'b, T>(&mut self, xs: &'b [T], valid: usize, any: bool) -> &'b T {
        if any {
            self.pick(xs)
        } else {
            self.pick(&xs[..valid])
        }
    }

    /// Picks one of `xs` (a `&str` slice: spares callers a deref that inference needs).
    pub fn pick_str(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// A YAML tree and its rendering.

/// A YAML scalar as the generator means it.
#[derive(Clone, Debug)]
pub enum Scalar {
    /// A string, always rendered double-quoted (escaped).
    Str(String),
    Int(i64),
    /// A plain YAML token, written as is (`1.5`, `0x10`, `.inf`, `true`, `null`, `~`).
    Plain(String),
}

/// A YAML node.
#[derive(Clone, Debug)]
pub enum Yaml {
    Scalar(Scalar),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

/// Writes `s` as a YAML double-quoted scalar. Characters YAML does not allow raw (controls,
/// C1, BOM, line/paragraph separators, non-characters) are escaped.
pub fn yaml_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' if !matches!(c, '\u{2028}' | '\u{2029}') => out.push(c),
            '\u{e000}'..='\u{fffd}' if c != '\u{feff}' => out.push(c),
            c if (c as u32) >= 0x10000 => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        }
    }
    out.push('"');
}

fn render_key(k: &str, out: &mut String) {
    let plain = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'|' | b'.' | b'-'))
        && !k.starts_with(['-', '|', '.'])
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && !k.bytes().all(|b| b.is_ascii_digit());
    if plain {
        out.push_str(k);
    } else {
        yaml_quote(k, out);
    }
}

fn render_scalar(s: &Scalar, out: &mut String) {
    match s {
        Scalar::Str(s) => yaml_quote(s, out),
        Scalar::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Scalar::Plain(p) => out.push_str(p),
    }
}

/// Flow style: `{k: v, ...}`, `[a, b]`.
fn render_flow(y: &Yaml, out: &mut String) {
    match y {
        Yaml::Scalar(s) => render_scalar(s, out),
        Yaml::Seq(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_flow(x, out);
            }
            out.push(']');
        }
        Yaml::Map(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_key(k, out);
                out.push_str(": ");
                render_flow(v, out);
            }
            out.push('}');
        }
    }
}

/// Block style for maps and sequences of scalars; nested collections inside sequences in
/// flow style (always valid, and both styles get exercised).
fn render_block_map(m: &[(String, Yaml)], indent: usize, out: &mut String) {
    for (k, v) in m {
        out.extend(std::iter::repeat_n(' ', indent));
        render_key(k, out);
        out.push(':');
        render_block_value(v, indent, out);
    }
}

fn render_block_value(v: &Yaml, indent: usize, out: &mut String) {
    match v {
        Yaml::Scalar(s) => {
            out.push(' ');
            render_scalar(s, out);
            out.push('\n');
        }
        Yaml::Map(m) if !m.is_empty() => {
            out.push('\n');
            render_block_map(m, indent + 2, out);
        }
        Yaml::Seq(s) if !s.is_empty() => {
            out.push('\n');
            for x in s {
                out.extend(std::iter::repeat_n(' ', indent + 2));
                out.push('-');
                match x {
                    Yaml::Map(m) if !m.is_empty() => {
                        // `- k: v` with the other keys aligned under the first.
                        out.push(' ');
                        let mut first = String::new();
                        render_block_map(m, indent + 4, &mut first);
                        out.push_str(first.trim_start());
                    }
                    other => {
                        out.push(' ');
                        render_flow(other, out);
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push(' ');
            render_flow(other, out);
            out.push('\n');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pools the generator draws from. Rules and events share them so that matches happen.

/// Field names rules and events use. `x.y` is also written nested (`{"x": {"y": ..}}`).
pub const FIELDS: &[&str] = &[
    "a",
    "b",
    "EventID",
    "Channel",
    "message",
    "x.y",
    "CommandLine",
    "n",
];

/// Literal words. Case variants, non-ASCII letters whose case ASCII folding does not see
/// (and the Unicode case-fold oddities `ſ`, `K` (Kelvin), `İ`), numbers, addresses, dashes.
pub const WORDS: &[&str] = &[
    "foo",
    "bar",
    "Foo",
    "BAZ",
    "ab",
    "a",
    "x",
    "4624",
    "1",
    "0",
    "-1",
    "1.5",
    "true",
    "null",
    "10.0.0.1",
    "::1",
    "ö",
    "Ö",
    "é",
    "straße",
    "STRASSE",
    "ſ",
    "s",
    "K",
    "k",
    "\u{212a}",
    "İ",
    "i",
    "ǅ",
    "/c",
    "-enc",
    "\u{2013}enc",
    " ",
    "\\",
    "C:\\Windows\\",
    "cmd.exe",
    "%x%",
    "\t",
    "Zm9v",
    "whoami",
    "Security",
    "security",
    "\u{1F600}",
    "\n",
    "Z",
];

/// Pieces a rule string is built from besides words: wildcards and escapes.
const WILD: &[&str] = &["*", "?", "\\*", "\\?", "\\\\", "\\", "**", "*?"];

const REGEXES: &[&str] = &[
    "fo+",
    "^foo",
    "bar$",
    "a.b",
    "(?i)foo",
    "[a-c]+",
    "ö",
    "Ö",
    "\\d+",
    "foo|bar",
    "",
    "a{2,}",
    "\\bfoo\\b",
    ".",
    "(?s)a.b",
    "^$",
    "(?m)^bar$",
    "k",
    "s",
    "é",
    "x*",
    "(?-i)Foo",
    "[[:alpha:]]+",
    "\\p{Lu}",
    "straße",
    "^.{3}$",
    "\\\\",
    "(?i)ſ",
    "K",
    "İ",
    "\\x{212A}",
    "[^a]",
    "4624",
    "^-?\\d+(\\.\\d+)?$",
    // Invalid (the matcher's dialect has no look-around): only in broken cases.
    "(",
    "a(?=b)",
];
const REGEXES_VALID: usize = REGEXES.len() - 2;

const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "10.0.0.1",
    "192.168.1.0/24",
    "::1/128",
    "fe80::/10",
    "0.0.0.0/0",
    "::/0",
    "garbage",
    "10.0.0.1/33",
    "10.0.0.1/24",
];
const CIDRS_VALID: usize = CIDRS.len() - 3;

/// YAML plain tokens for numeric and other non-string values.
const PLAIN_NUMS: &[&str] = &[
    "0", "1", "-1", "4624", "4624.0", "1.5", "1.50", "-0", "-0.0", "0x10", "1e3", "+5", ".inf",
    "-.inf", ".nan", "010", "10", "5", "255", "1_000",
];
const PLAIN_OTHER: &[&str] = &[
    "true", "false", "yes", "no", "True", "FALSE", "null", "~", "Null",
];
const PLAIN_OTHER_NOT_NULL: usize = 6;

const NAMES: &[&str] = &[
    "sel",
    "sel1",
    "sel2",
    "selection",
    "filter",
    "filter_1",
    "_hidden",
    "kw",
    "sel-x",
    "s.b",
];

/// Patterns that may match no name (an error): only in broken cases.
const PATTERNS: &[&str] = &["*", "sel*", "filter*", "_*", "nomatch*", "s*", "*1"];

/// Logsource classes the rule set is built with; events name one by 1-based index.
pub fn classes() -> Vec<Logsource> {
    let ls = |p: Option<&str>, c: Option<&str>, s: Option<&str>| Logsource {
        product: p.map(String::from),
        category: c.map(String::from),
        service: s.map(String::from),
    };
    vec![
        ls(Some("windows"), None, None),
        ls(Some("windows"), None, Some("security")),
        ls(Some("linux"), Some("process_creation"), None),
    ]
}

// ---------------------------------------------------------------------------------------------
// Rules.

/// What the generator may produce.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Prefix of titles and ids, so that two cases can be loaded together.
    pub prefix: String,
    /// Allow filter documents and `action: global` (they change other rules).
    pub cross_rule: bool,
    /// Allow documents and rules that do not load or compile.
    pub broken: bool,
    /// Which pipelines the case is prepared with: bit 0 the shipped ones (Windows
    /// logsources as `Channel`/`EventID` conditions), bit 1 [`GEN_PIPELINE`]. [`gen_case`]
    /// draws it when `None`.
    pub pipelines: Option<u8>,
}

/// The generator's own pipeline: placeholders for `expand` (`%x%`), a one-to-many field
/// mapping, and a condition added from a logsource.
pub const GEN_PIPELINE: &str = r#"name: gen
priority: 20
vars:
  x: [foo, "b*r", "4624"]
transformations:
- type: value_placeholders
- type: field_name_mapping
  mapping:
    n: [a, b]
- type: add_condition
  conditions:
    Channel: Security
  rule_conditions:
  - type: logsource
    service: security
"#;

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            prefix: "r".into(),
            cross_rule: true,
            broken: true,
            pipelines: None,
        }
    }
}

/// A generated case: rule files and events.
#[derive(Clone, Debug, Default)]
pub struct Case {
    /// YAML files (each one or several documents).
    pub files: Vec<String>,
    /// Event frames (JSON lines, now and then plain text) and the class each carries.
    pub events: Vec<(String, u16)>,
    /// Literals the rules used (events draw from them).
    pub lits: Lits,
    /// The pipelines to prepare the rules with (see [`GenConfig::pipelines`]).
    pub pipelines: u8,
}

/// Literals the rules used, and the field each was used on (`message` for keywords).
#[derive(Clone, Debug, Default)]
pub struct Lits {
    pub all: Vec<String>,
    pub on_field: Vec<(String, String)>,
    /// Numbers a rule compares a field with.
    pub nums: Vec<(String, f64)>,
}

struct RuleGen<'c> {
    cfg: &'c GenConfig,
    lits: Lits,
    /// The field of the item being generated.
    field: String,
}

impl RuleGen<'_> {
    /// Records a literal events should carry (on the current field, too).
    fn lit(&mut self, s: &str) {
        self.lits.all.push(s.to_string());
        let f = if self.field.is_empty() {
            "message"
        } else {
            &self.field
        };
        self.lits.on_field.push((f.to_string(), s.to_string()));
    }

    fn word(&mut self, g: &mut Gen) -> String {
        let w = g.pick(WORDS).to_string();
        self.lit(&w);
        w
    }

    /// A Sigma string: words, wildcards and escapes.
    fn sigma_string(&mut self, g: &mut Gen) -> String {
        let n = g.len(1, 3);
        let mut s = String::new();
        for _ in 0..n {
            if g.pct(25) {
                s.push_str(g.pick_str(WILD));
            } else {
                s.push_str(&self.word(g));
            }
        }
        if n > 1 {
            self.lit(&s);
        }
        s
    }

    /// A value for string matching: mostly strings, some numbers and booleans; `null` (which
    /// string modifiers refuse) only when `null_ok`.
    fn string_value(&mut self, g: &mut Gen, null_ok: bool) -> Scalar {
        match g.below(12) {
            0..=8 => Scalar::Str(self.sigma_string(g)),
            9 => Scalar::Plain(g.pick(PLAIN_NUMS).to_string()),
            10 => Scalar::Plain(
                g.pick_valid(
                    PLAIN_OTHER,
                    PLAIN_OTHER_NOT_NULL,
                    null_ok || self.cfg.broken,
                )
                .to_string(),
            ),
            _ => Scalar::Int(*g.pick(&[0, 1, 4624, -1, 10, i64::MAX, i64::MIN])),
        }
    }

    /// Values for one item of a modifier family.
    fn values(&mut self, g: &mut Gen, family: Family) -> Yaml {
        let broken = self.cfg.broken;
        let one = |this: &mut Self, g: &mut Gen| -> Scalar {
            match family {
                // Numeric fields get numbers in all spellings (routing compares text).
                Family::Plain if matches!(this.field.as_str(), "EventID" | "n") && g.pct(50) => {
                    let t = g.pick(PLAIN_NUMS).to_string();
                    if let Ok(n) = t.parse::<f64>() {
                        this.lits.nums.push((this.field.clone(), n));
                    }
                    Scalar::Plain(t)
                }
                Family::Plain => this.string_value(g, true),
                Family::Str | Family::Chaos => this.string_value(g, false),
                Family::Encoded => {
                    if g.pct(85) {
                        let w = this.word(g);
                        Scalar::Str(if g.pct(30) {
                            format!("{w}{}", this.word(g))
                        } else {
                            w
                        })
                    } else {
                        this.string_value(g, false)
                    }
                }
                Family::Windash => {
                    let w = this.word(g);
                    // More than three option dashes is an error.
                    let d =
                        *g.pick_valid(&["-", "/", " -", "x -", "-a -b", "/c -d -e -f"], 5, broken);
                    Scalar::Str(match g.below(3) {
                        0 => format!("{d}{w}"),
                        1 => format!("{w} {d}{w}"),
                        _ => d.to_string(),
                    })
                }
                Family::Re if g.pct(35) => {
                    // Literal text (words the events carry, in any case): the prefilter
                    // extracts it, so this is where case folding beyond ASCII shows.
                    let n = g.len(1, 3);
                    let words: String = (0..n).map(|_| this.word(g)).collect();
                    this.lit(&words);
                    let mut p = regex_syntax_escape(&words);
                    if g.pct(30) {
                        p = format!("{}{p}", g.pick_str(&["^", "(?i)", "\\b", "x|"]));
                    }
                    Scalar::Str(p)
                }
                Family::Re => {
                    let mut p = g.pick_valid(REGEXES, REGEXES_VALID, broken).to_string();
                    if g.pct(30) {
                        p.push_str(g.pick_valid::<&str>(REGEXES, REGEXES_VALID, broken));
                    }
                    if g.pct(20) {
                        // A literal the events also carry.
                        p.push_str(&regex_syntax_escape(&this.word(g)));
                    }
                    Scalar::Str(p)
                }
                Family::Cidr => Scalar::Str(g.pick_valid(CIDRS, CIDRS_VALID, broken).to_string()),
                Family::Cmp => match g.below(4) {
                    0 => Scalar::Plain(g.pick(PLAIN_NUMS).to_string()),
                    1 => Scalar::Str(
                        g.pick_valid(&["5", " 10 ", "1e3", "4624", "x", ""], 4, broken)
                            .to_string(),
                    ),
                    2 if broken => Scalar::Plain(g.pick(PLAIN_OTHER).to_string()),
                    _ => Scalar::Int(*g.pick(&[0, 5, 10, 4624, -1])),
                },
                Family::Exists => match g.below(6) {
                    0 | 1 => Scalar::Plain("true".into()),
                    2 => Scalar::Plain("false".into()),
                    3 => Scalar::Str("yes".into()),
                    4 => Scalar::Str("No".into()),
                    _ if broken => Scalar::Str("maybe".into()),
                    _ => Scalar::Plain("False".into()),
                },
                Family::FieldRef => match g.below(8) {
                    7 if broken => Scalar::Int(1),
                    _ => Scalar::Str(g.pick(FIELDS).to_string()),
                },
            }
        };
        match g.below(10) {
            0..=4 => Yaml::Scalar(one(self, g)),
            5..=8 => {
                let n = g.len(1, 4);
                Yaml::Seq((0..n).map(|_| Yaml::Scalar(one(self, g))).collect())
            }
            _ if matches!(family, Family::Plain | Family::Str) => {
                // Many values on one field: a string set, the large-literal prefilter.
                let n = g.len(4, 24);
                let base = self.word(g);
                let vs = (0..n)
                    .map(|i| {
                        let v = format!("{base}{i}q");
                        self.lit(&v);
                        Yaml::Scalar(Scalar::Str(if g.pct(20) { format!("{v}*") } else { v }))
                    })
                    .collect();
                Yaml::Seq(vs)
            }
            _ if self.cfg.broken && g.pct(50) => Yaml::Seq(Vec::new()),
            _ => Yaml::Scalar(one(self, g)),
        }
    }

    fn item(&mut self, g: &mut Gen) -> (String, Yaml) {
        let field = if self.cfg.broken && g.pct(3) {
            String::new()
        } else {
            g.pick(FIELDS).to_string()
        };
        let family = *g.pick(&[
            Family::Plain,
            Family::Plain,
            Family::Str,
            Family::Str,
            Family::Str,
            Family::Encoded,
            Family::Windash,
            Family::Re,
            Family::Re,
            Family::Cidr,
            Family::Cmp,
            Family::Exists,
            Family::FieldRef,
            Family::Chaos,
        ]);
        let family = if family == Family::Chaos && !self.cfg.broken {
            Family::Str
        } else {
            family
        };
        let mut mods: Vec<&str> = match family {
            Family::Plain => Vec::new(),
            Family::Str => {
                let mut m = Vec::new();
                if g.pct(80) {
                    m.push(*g.pick(&["contains", "startswith", "endswith"]));
                }
                // Placeholders need the generator's pipeline (else: an error).
                let placeholders = self.cfg.pipelines.is_some_and(|p| p & 2 != 0);
                if g.pct(15) && (placeholders || self.cfg.broken) {
                    m.insert(0, "expand");
                }
                m
            }
            Family::Encoded => {
                let mut m = Vec::new();
                if g.pct(50) {
                    m.push(*g.pick(&["wide", "utf16le", "utf16be", "utf16"]));
                }
                m.push(*g.pick(&["base64", "base64offset", "base64offset", "wide", "utf16le"]));
                if g.pct(70) {
                    m.push(*g.pick(&["contains", "startswith", "endswith"]));
                }
                m
            }
            Family::Windash => {
                let mut m = vec!["windash"];
                if g.pct(60) {
                    m.push(*g.pick(&["contains", "startswith", "endswith"]));
                }
                m
            }
            Family::Re => {
                let mut m = vec!["re"];
                for f in ["i", "m", "s"] {
                    if g.pct(30) {
                        m.push(f);
                    }
                }
                if g.pct(5) {
                    m.push(*g.pick(&["contains", "startswith", "ignorecase", "dotall"]));
                }
                m
            }
            Family::Cidr => vec!["cidr"],
            Family::Cmp => vec![*g.pick(&["lt", "lte", "gt", "gte"])],
            Family::Exists => vec!["exists"],
            Family::FieldRef => {
                let mut m = vec!["fieldref"];
                if g.pct(50) {
                    m.push(*g.pick(&["contains", "startswith", "endswith"]));
                }
                m
            }
            Family::Chaos => {
                let n = g.len(1, 3);
                (0..n).map(|_| *g.pick(ALL_MODIFIERS)).collect()
            }
        };
        if g.pct(20) {
            mods.push("all");
        }
        let string_family = matches!(
            family,
            Family::Plain | Family::Str | Family::Encoded | Family::Windash
        );
        if g.pct(10) && (string_family || self.cfg.broken) {
            mods.push("cased");
        }
        if g.pct(10) {
            mods.push("neq");
        }
        if g.pct(10) && mods.len() > 1 && (string_family || self.cfg.broken) {
            // Another order: for string modifiers the order matters.
            let a = g.below(mods.len());
            let b = g.below(mods.len());
            mods.swap(a, b);
        }
        let mut key = field;
        for m in &mods {
            key.push('|');
            key.push_str(m);
        }
        self.field = key.split('|').next().unwrap_or("").to_string();
        let values = self.values(g, family);
        (key, values)
    }

    fn map(&mut self, g: &mut Gen) -> Yaml {
        let n = g.len(1, 3);
        let mut m: Vec<(String, Yaml)> = Vec::with_capacity(n);
        for _ in 0..n {
            let (k, v) = self.item(g);
            // Duplicate keys are a YAML error; keep them rare.
            if m.iter().any(|(x, _)| *x == k) && !(self.cfg.broken && g.pct(5)) {
                continue;
            }
            m.push((k, v));
        }
        Yaml::Map(m)
    }

    fn search(&mut self, g: &mut Gen, depth: usize) -> Yaml {
        match g.below(20) {
            0..=12 => self.map(g),
            13..=15 => {
                let n = g.len(1, 3);
                Yaml::Seq(
                    (0..n)
                        .map(|_| {
                            if depth < 2 && g.pct(15) {
                                self.search(g, depth + 1)
                            } else {
                                self.map(g)
                            }
                        })
                        .collect(),
                )
            }
            16..=18 => {
                // Keywords: a list of values, or one value (with a map in between sometimes).
                let n = g.len(1, 3);
                if g.pct(30) {
                    Yaml::Scalar(self.string_value(g, false))
                } else {
                    Yaml::Seq(
                        (0..n)
                            .map(|_| {
                                if g.pct(10) {
                                    self.map(g)
                                } else {
                                    Yaml::Scalar(self.string_value(g, false))
                                }
                            })
                            .collect(),
                    )
                }
            }
            _ if self.cfg.broken => match g.below(4) {
                0 => Yaml::Scalar(Scalar::Plain("null".into())),
                1 => Yaml::Map(Vec::new()),
                2 => Yaml::Seq(Vec::new()),
                // A map as an item value: not a scalar.
                _ => Yaml::Map(vec![(
                    "a".into(),
                    Yaml::Map(vec![("b".into(), Yaml::Scalar(Scalar::Int(1)))]),
                )]),
            },
            _ => self.map(g),
        }
    }

    /// A condition over `names`.
    fn condition(&mut self, g: &mut Gen, names: &[String], depth: usize) -> String {
        let name = |g: &mut Gen| -> String {
            if names.is_empty() {
                "sel".into()
            } else {
                names[g.below(names.len())].clone()
            }
        };
        if depth >= 3 {
            return name(g);
        }
        match g.below(14) {
            0..=3 => name(g),
            4 => format!("not {}", self.condition(g, names, depth + 1)),
            5 => format!("({})", self.condition(g, names, depth + 1)),
            6 | 7 => format!(
                "{} {} {}",
                self.condition(g, names, depth + 1),
                g.pick(&["and", "AND", "And"]),
                self.condition(g, names, depth + 1)
            ),
            8 | 9 => format!(
                "{} {} {}",
                self.condition(g, names, depth + 1),
                g.pick(&["or", "OR"]),
                self.condition(g, names, depth + 1)
            ),
            10 => format!("{} of them", g.pick(&["1", "all", "any"])),
            11 | 12 => {
                let pat = if !(names.is_empty() || self.cfg.broken && g.pct(30)) {
                    let n = name(g);
                    let cut = g.below(n.len() + 1);
                    format!("{}*", &n[..cut])
                } else {
                    g.pick(PATTERNS).to_string()
                };
                format!("{} of {pat}", g.pick(&["1", "all", "any"]))
            }
            _ if self.cfg.broken && depth == 0 && g.pct(30) => g
                .pick(&[
                    "sel and",
                    "(sel",
                    "undefined",
                    "sel or or sel",
                    "1 of",
                    "not",
                    "sel )",
                    "a$b",
                    "",
                    "1 of sel?",
                ])
                .to_string(),
            _ => name(g),
        }
    }

    fn detection(&mut self, g: &mut Gen) -> Yaml {
        let n = g.len(1, 4);
        let mut names: Vec<String> = Vec::new();
        let mut det: Vec<(String, Yaml)> = Vec::new();
        for _ in 0..n {
            let name = g.pick(NAMES).to_string();
            if names.contains(&name) {
                continue;
            }
            let s = self.search(g, 0);
            names.push(name.clone());
            det.push((name, s));
        }
        let cond = if g.pct(10) {
            let k = g.len(1, 2);
            Yaml::Seq(
                (0..k)
                    .map(|_| Yaml::Scalar(Scalar::Str(self.condition(g, &names, 0))))
                    .collect(),
            )
        } else {
            Yaml::Scalar(Scalar::Str(self.condition(g, &names, 0)))
        };
        det.push(("condition".into(), cond));
        Yaml::Map(det)
    }

    fn logsource(&mut self, g: &mut Gen) -> Option<Yaml> {
        if !g.pct(25) {
            return None;
        }
        let mut m = Vec::new();
        if g.pct(80) {
            m.push((
                "product".into(),
                Yaml::Scalar(Scalar::Str(
                    g.pick(&["windows", "linux", "Windows"]).to_string(),
                )),
            ));
        }
        if g.pct(30) {
            m.push((
                "category".into(),
                Yaml::Scalar(Scalar::Str("process_creation".into())),
            ));
        }
        if g.pct(30) {
            m.push((
                "service".into(),
                Yaml::Scalar(Scalar::Str(g.pick(&["security", "sysmon"]).to_string())),
            ));
        }
        Some(Yaml::Map(m))
    }

    fn rule_doc(&mut self, g: &mut Gen, i: usize) -> Vec<(String, Yaml)> {
        let p = &self.cfg.prefix;
        let mut m = vec![(
            "title".to_string(),
            Yaml::Scalar(Scalar::Str(format!("{p}-title-{i}"))),
        )];
        if g.pct(90) {
            // Now and then an id another rule also has: the later one is refused.
            let id = if self.cfg.broken && g.pct(5) {
                format!("{p}-id-0")
            } else {
                format!("{p}-id-{i}")
            };
            m.push(("id".into(), Yaml::Scalar(Scalar::Str(id))));
        }
        if let Some(ls) = self.logsource(g) {
            m.push(("logsource".into(), ls));
        }
        if self.cfg.broken && g.pct(3) {
            m.push(("level".into(), Yaml::Scalar(Scalar::Str("severe".into()))));
        }
        m.push(("detection".into(), self.detection(g)));
        m
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Plain,
    Str,
    Encoded,
    Windash,
    Re,
    Cidr,
    Cmp,
    Exists,
    FieldRef,
    Chaos,
}

const ALL_MODIFIERS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "re",
    "i",
    "m",
    "s",
    "cased",
    "exists",
    "base64",
    "base64offset",
    "utf16le",
    "utf16be",
    "utf16",
    "wide",
    "windash",
    "cidr",
    "lt",
    "lte",
    "gt",
    "gte",
    "neq",
    "fieldref",
    "expand",
    "foo",
];

/// Escapes regex metacharacters (so a word is matched literally).
fn regex_syntax_escape(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Renders a document (top level in block style).
fn render_doc(m: &[(String, Yaml)], g: &mut Gen) -> String {
    let mut out = String::new();
    if g.pct(15) {
        // All in flow style, one line per top-level key.
        for (k, v) in m {
            render_key(k, &mut out);
            out.push_str(": ");
            render_flow(v, &mut out);
            out.push('\n');
        }
    } else {
        render_block_map(m, 0, &mut out);
    }
    out
}

/// Draws the rule files of a case.
pub fn gen_rules(g: &mut Gen, cfg: &GenConfig, lits: &mut Lits) -> Vec<String> {
    let mut rg = RuleGen {
        cfg,
        lits: Lits::default(),
        field: String::new(),
    };
    let n = g.len(1, 5);
    let nfiles = g.len(1, 2).min(n);
    let mut files = vec![String::new(); nfiles];
    for i in 0..n {
        let f = g.below(nfiles);
        let mut text = String::new();
        if cfg.cross_rule && g.pct(5) {
            // A global document: its keys merge into the following documents of the file.
            let mut gl = vec![(
                "action".to_string(),
                Yaml::Scalar(Scalar::Str("global".into())),
            )];
            if let Some(ls) = rg.logsource(g) {
                gl.push(("logsource".into(), ls));
            }
            if g.pct(50) {
                gl.push(("detection".into(), {
                    Yaml::Map(vec![("sel2".to_string(), rg.map(g))])
                }));
            }
            text.push_str(&render_doc(&gl, g));
            text.push_str("---\n");
        }
        if cfg.cross_rule && g.pct(5) {
            // A Sigma filter applying to every rule (or to one) with its logsource.
            let mut fm = vec![(
                "title".to_string(),
                Yaml::Scalar(Scalar::Str(format!("{}-filter-{i}", cfg.prefix))),
            )];
            if let Some(ls) = rg.logsource(g) {
                fm.push(("logsource".into(), ls));
            }
            let rules = if g.pct(50) {
                Yaml::Scalar(Scalar::Str("any".into()))
            } else {
                Yaml::Seq(vec![Yaml::Scalar(Scalar::Str(format!(
                    "{}-id-{}",
                    cfg.prefix,
                    g.below(n)
                )))])
            };
            let cond = format!("{} filt", g.pick(&["not", ""]));
            fm.push((
                "filter".into(),
                Yaml::Map(vec![
                    ("rules".into(), rules),
                    ("filt".into(), rg.map(g)),
                    ("condition".into(), Yaml::Scalar(Scalar::Str(cond))),
                ]),
            ));
            text.push_str(&render_doc(&fm, g));
            text.push_str("---\n");
        }
        let doc = rg.rule_doc(g, i);
        text.push_str(&render_doc(&doc, g));
        if cfg.broken && g.pct(3) {
            text.push_str(g.pick_str(&["  bad: [\n", "\t- x\n", "detection: 5\n", ": :\n"]));
        }
        if !files[f].is_empty() {
            files[f].push_str(if g.pct(50) { "---\n" } else { "\n---\n" });
        }
        files[f].push_str(&text);
    }
    files.retain(|f| !f.is_empty());
    lits.all.append(&mut rg.lits.all);
    lits.on_field.append(&mut rg.lits.on_field);
    lits.nums.append(&mut rg.lits.nums);
    files
}

// ---------------------------------------------------------------------------------------------
// Events.

/// A JSON value as the generator writes it (numbers keep their spelling).
#[derive(Clone, Debug)]
enum J {
    Str(String),
    /// A number or literal written as is.
    Raw(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

fn render_json(j: &J, out: &mut String) {
    match j {
        J::Str(s) => out.push_str(&serde_json::to_string(s).expect("string")),
        J::Raw(r) => out.push_str(r),
        J::Arr(v) => {
            out.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render_json(x, out);
            }
            out.push(']');
        }
        J::Obj(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("key"));
                out.push(':');
                render_json(v, out);
            }
            out.push('}');
        }
    }
}

const JSON_NUMS: &[&str] = &[
    "0",
    "1",
    "-1",
    "4624",
    "4624.0",
    "-0",
    "-0.0",
    "1.5",
    "1.50",
    "10",
    "5",
    "255",
    "1e3",
    "1000",
    "9223372036854775807",
    "18446744073709551615",
    "-9223372036854775808",
    "1e300",
    "0.1",
    "16",
];

/// Variants of a literal an event may carry.
fn mutate(s: &str, g: &mut Gen) -> String {
    use kuzet::sigma::value::{base64, base64_offsets, utf16le};
    match g.below(16) {
        0..=4 => s.to_string(),
        5 => s.to_uppercase(),
        6 => s.to_lowercase(),
        7 => s.to_ascii_uppercase(),
        8 => {
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        }
        9 => String::from_utf8_lossy(&base64(s.as_bytes())).into_owned(),
        10 => {
            let v = base64_offsets(s.as_bytes());
            format!(
                "{}{}",
                *g.pick(&["", "x", "AB"]),
                String::from_utf8_lossy(&v[g.below(3)])
            )
        }
        11 => String::from_utf8_lossy(&utf16le(s.as_bytes())).into_owned(),
        12 => String::from_utf8_lossy(&base64(&utf16le(s.as_bytes()))).into_owned(),
        13 => s.replace(
            ['-', '/'],
            g.pick_str(&["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"]),
        ),
        14 => format!(" {s} "),
        _ => s.replace('s', "ſ").replace('k', "\u{212a}"),
    }
}

fn event_string(lits: &[String], g: &mut Gen) -> String {
    let n = g.len(1, 3);
    let mut s = String::new();
    for _ in 0..n {
        let base = if !lits.is_empty() && g.below(4) != 0 {
            lits[g.below(lits.len())].clone()
        } else {
            g.pick(WORDS).to_string()
        };
        // Rule literals keep their wildcards and escapes; strip some so they match literally.
        let base = if g.pct(50) {
            base.replace(['*', '?'], "").replace("\\\\", "\\")
        } else {
            base
        };
        s.push_str(&mutate(&base, g));
        if g.pct(20) {
            s.push_str(g.pick_str(&[" ", "x", "-", "\\", ".exe"]));
        }
    }
    s
}

fn event_value(lits: &[String], g: &mut Gen, depth: usize) -> J {
    match g.below(16) {
        0..=7 => J::Str(event_string(lits, g)),
        8 | 9 => J::Raw(g.pick(JSON_NUMS).to_string()),
        10 => J::Str(g.pick(JSON_NUMS).to_string()),
        11 => J::Raw(g.pick(&["true", "false", "null"]).to_string()),
        12 => J::Str(
            g.pick(&[
                "",
                "10.0.0.1",
                "::1",
                "[fe80::1%eth0]",
                "192.168.1.7",
                "010.0.0.1",
                // Longer than any number is usually written.
                "000000000000000000000000000000000000000000000000000000000000000000005",
                "                                                                   10",
            ])
            .to_string(),
        ),
        13 | 14 if depth < 2 => {
            let n = g.len(0, 3);
            J::Arr((0..n).map(|_| event_value(lits, g, depth + 1)).collect())
        }
        _ if depth < 2 => {
            let n = g.len(0, 2);
            J::Obj(
                (0..n)
                    .map(|_| (g.pick(FIELDS).to_string(), event_value(lits, g, depth + 1)))
                    .collect(),
            )
        }
        _ => J::Str(String::new()),
    }
}

/// One event frame.
pub fn gen_event(lits: &Lits, g: &mut Gen) -> String {
    if g.pct(8) {
        // Not JSON: the whole line is the message keywords search.
        return event_string(&lits.all, g);
    }
    let n = g.len(0, 6);
    let mut fields: Vec<(String, J)> = Vec::new();
    for i in 0..n {
        let (f, v) = if i == 0 && !lits.nums.is_empty() && g.pct(50) {
            // A number a rule names, spelled as JSON integer, float or string.
            let (f, n) = &lits.nums[g.below(lits.nums.len())];
            let t = match g.below(4) {
                0 => format!("{n}"),
                1 => format!("{n:.1}"),
                2 => format!("{n:e}"),
                _ => format!("\"{n}\""),
            };
            (f.clone(), J::Raw(t))
        } else if i < 2 && !lits.on_field.is_empty() && g.pct(50) {
            // A literal where a rule looks for it, in some variant.
            let (f, l) = &lits.on_field[g.below(lits.on_field.len())];
            let l = if g.pct(50) {
                l.replace(['*', '?'], "").replace("\\\\", "\\")
            } else {
                l.clone()
            };
            (f.clone(), J::Str(mutate(&l, g)))
        } else {
            (g.pick(FIELDS).to_string(), event_value(&lits.all, g, 0))
        };
        if f == "x.y" && g.pct(50) {
            fields.push(("x".into(), J::Obj(vec![("y".into(), v)])));
        } else {
            fields.push((f, v));
        }
    }
    let obj = if g.pct(10) {
        // evtx_dump shape: flattened to the bare names.
        let (sys, data): (Vec<_>, Vec<_>) = fields
            .into_iter()
            .partition(|(k, _)| k == "EventID" || k == "Channel");
        let eid = sys
            .into_iter()
            .map(|(k, v)| {
                if k == "EventID" && g.pct(50) {
                    (k, J::Obj(vec![("#text".into(), v)]))
                } else {
                    (k, v)
                }
            })
            .collect();
        J::Obj(vec![(
            "Event".into(),
            J::Obj(vec![
                ("System".into(), J::Obj(eid)),
                ("EventData".into(), J::Obj(data)),
            ]),
        )])
    } else {
        J::Obj(fields)
    };
    let mut out = String::new();
    render_json(&obj, &mut out);
    out
}

/// Draws a whole case.
pub fn gen_case(g: &mut Gen, cfg: &GenConfig) -> Case {
    let mut lits = Lits::default();
    // A third of the cases may hold rules that do not load or compile; the others aim at
    // rules that load, so that matching gets most of the effort.
    let pipelines = cfg.pipelines.unwrap_or_else(|| g.below(4) as u8);
    let cfg = &GenConfig {
        broken: cfg.broken && g.pct(33),
        pipelines: Some(pipelines),
        ..cfg.clone()
    };
    let files = gen_rules(g, cfg, &mut lits);
    let n = g.len(1, 6);
    let nclasses = classes().len();
    let events = (0..n)
        .map(|_| {
            let class = if g.pct(40) {
                g.below(nclasses + 2) as u16
            } else {
                0
            };
            (gen_event(&lits, g), class)
        })
        .collect();
    Case {
        files,
        events,
        lits,
        pipelines,
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and matching, and the invariants.

/// Rules loaded from files, compiled, with everything needed to match events.
pub struct Built {
    pub set: RuleSet,
    pub table: Arc<FieldTable>,
    /// The prepared rules that compiled, in the order the set holds them.
    pub rules: Vec<Rule>,
    /// Load and compile errors.
    pub errors: Vec<RuleError>,
    pub sources: Vec<Source>,
}

/// File names of generated sources.
pub fn sources(files: &[String]) -> Vec<Source> {
    files
        .iter()
        .enumerate()
        .map(|(i, t)| Source {
            path: format!("gen/{i}.yml").into(),
            text: t.clone(),
        })
        .collect()
}

/// The pipelines of a [`GenConfig::pipelines`] mask, loaded once per process.
fn load_pipelines(mask: u8) -> &'static [kuzet::sigma::Pipeline] {
    static LOADED: [OnceLock<Vec<kuzet::sigma::Pipeline>>; 4] = [const { OnceLock::new() }; 4];
    LOADED[(mask & 3) as usize].get_or_init(|| {
        let mut srcs = Vec::new();
        if mask & 1 != 0 {
            srcs.extend(kuzet::engine::embedded_pipelines());
        }
        if mask & 2 != 0 {
            srcs.push(Source {
                path: "gen/pipeline.yml".into(),
                text: GEN_PIPELINE.into(),
            });
        }
        let (pipes, errs) = sigma::load_pipelines(&srcs);
        assert!(errs.is_empty(), "pipelines do not load: {errs:?}");
        pipes
    })
}

/// Loads, prepares (with the pipelines of the `pipelines` mask) and compiles `sources`, asserting what must hold of
/// errors: each names its file and says why; a rule fails to compile in the set exactly when
/// it fails alone.
pub fn build(sources: Vec<Source>, pipelines: u8) -> Built {
    let opts = CompileOptions {
        classes: classes().into_iter().map(|c| vec![c]).collect(),
        ..CompileOptions::default()
    };
    let mut loaded = sigma::load(&sources);
    sigma::prepare(&mut loaded, load_pipelines(pipelines));
    let mut table = FieldTable::new();
    ParserConfig::default().register(&mut table);
    let (set, compile_errors) = RuleSet::build(&loaded.rules, &mut table, &opts);
    let mut ok = Vec::new();
    for r in &loaded.rules {
        let (_, e) = RuleSet::build(std::slice::from_ref(r), &mut FieldTable::new(), &opts);
        if e.is_empty() {
            ok.push(r.clone());
        }
    }
    let mut errors = std::mem::take(&mut loaded.errors);
    errors.extend(compile_errors);
    let paths: BTreeSet<&str> = sources.iter().map(|s| &*s.path).collect();
    for e in &errors {
        assert!(paths.contains(&*e.path), "error names no loaded file: {e}");
        assert!(!e.reason.trim().is_empty(), "error without a reason: {e:?}");
        if let Some(l) = e.line {
            let src = sources.iter().find(|s| *s.path == *e.path).expect("path");
            assert!(
                l >= 1 && l <= src.text.lines().count().max(1) + 1,
                "error line {l} outside the file: {e}"
            );
        }
    }
    assert_eq!(
        set.len(),
        ok.len(),
        "a rule fails to compile in the set but not alone (or the reverse); errors: {errors:#?}"
    );
    for (c, r) in set.rules().iter().zip(&ok) {
        assert_eq!(
            *c.meta, r.meta,
            "compiled rules out of step with the loaded ones"
        );
    }
    Built {
        set,
        table: Arc::new(table),
        rules: ok,
        errors,
        sources,
    }
}

/// Parses one frame with the built table.
pub fn parse_event(b: &Built, mode: FieldMode, frame: &[u8], class: u16, buf: &mut EventBuf) {
    let cfg = ParserConfig {
        format: InputFormat::Auto,
        mode,
        ..ParserConfig::default()
    };
    let mut p = Parser::new(b.table.clone(), cfg);
    let _ = p.parse(frame, Timestamp::from_secs(1_700_000_000), buf);
    buf.class = class;
}

/// Indices (into `b.rules`) of the rules the compiled set reports for `ev`.
pub fn fast_matches(b: &Built, ev: &Event<'_>, s: &mut Scratch) -> BTreeSet<usize> {
    let mut out: Vec<RuleId> = Vec::new();
    b.set.matches_into(ev, s, &mut out);
    let set: BTreeSet<usize> = out.iter().map(|r| r.0 as usize).collect();
    assert_eq!(set.len(), out.len(), "a rule reported twice: {out:?}");
    assert!(
        out.windows(2).all(|w| w[0] < w[1]),
        "matches not in rule order: {out:?}"
    );
    set
}

/// Whether a rule applies to the event's logsource class (as the reference decides it).
fn applies(r: &Rule, ev: &Event<'_>) -> bool {
    let classes = classes();
    let class = match ev.class() {
        0 => None,
        c => classes.get(c as usize - 1),
    };
    r.logsource_as_conditions
        || r.logsource.is_empty()
        || class.is_some_and(|c| r.logsource.is_satisfied_by(c))
}

/// Indices of the rules the reference interpreter says `ev` matches.
pub fn reference_matches(b: &Built, ev: &Event<'_>) -> BTreeSet<usize> {
    let classes = classes();
    let class = match ev.class() {
        0 => None,
        c => classes.get(c as usize - 1),
    };
    b.rules
        .iter()
        .enumerate()
        .filter(|(_, r)| reference::matches(r, ev, &b.table, class))
        .map(|(i, _)| i)
        .collect()
}

fn describe(b: &Built, frame: &str, class: u16, which: &BTreeSet<usize>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "event (class {class}): {frame}");
    for i in which {
        let _ = writeln!(s, "rule {i}: {:#?}", b.rules[*i].detection);
    }
    let _ = writeln!(s, "rule files:");
    for src in &b.sources {
        let _ = writeln!(s, "--- {} ---\n{}", src.path, src.text);
    }
    s
}

/// The differential invariant on one built set and the case's events.
pub fn check_events(b: &Built, events: &[(String, u16)]) {
    let mut buf = EventBuf::new();
    let mut kbuf = EventBuf::new();
    // One scratch for all events: per-event state must not leak into the next.
    let mut s = Scratch::new();
    for (frame, class) in events {
        parse_event(b, FieldMode::All, frame.as_bytes(), *class, &mut buf);
        let ev = Event::new(frame.as_bytes(), &buf);
        let fast = fast_matches(b, &ev, &mut s);
        let slow = reference_matches(b, &ev);
        if fast != slow {
            let missed: BTreeSet<usize> = slow.difference(&fast).copied().collect();
            let extra: BTreeSet<usize> = fast.difference(&slow).copied().collect();
            // Which layer: evaluation alone, or routing/prefilter?
            let eval: BTreeSet<usize> = (0..b.rules.len())
                .filter(|&i| b.set.rule_matches(RuleId(i as u32), &ev, &mut s))
                .filter(|&i| applies(&b.rules[i], &ev))
                .collect();
            let layer = if eval == slow {
                "routing or prefilter (evaluation alone agrees)"
            } else {
                "evaluation"
            };
            let both: BTreeSet<usize> = missed.union(&extra).copied().collect();
            panic!(
                "matcher and reference disagree ({layer}): missed {missed:?}, extra {extra:?}\n{}",
                describe(b, frame, *class, &both)
            );
        }
        for (i, r) in b.rules.iter().enumerate() {
            // Without routing: the detection alone, whatever the event's logsource.
            let one = b.set.rule_matches(RuleId(i as u32), &ev, &mut s);
            let want = reference::matches(r, &ev, &b.table, Some(&r.logsource));
            if one != want {
                panic!(
                    "rule_matches({i}) = {one}, reference = {want}\n{}",
                    describe(b, frame, *class, &BTreeSet::from([i]))
                );
            }
        }
        // Known mode extracts only interned fields: every field a rule reads must be one.
        parse_event(b, FieldMode::Known, frame.as_bytes(), *class, &mut kbuf);
        let kev = Event::new(frame.as_bytes(), &kbuf);
        let known = fast_matches(b, &kev, &mut s);
        if known != fast {
            panic!(
                "FieldMode::Known changes the matches: {known:?} vs {fast:?}\n{}",
                describe(
                    b,
                    frame,
                    *class,
                    &known.symmetric_difference(&fast).copied().collect()
                )
            );
        }
    }
}

/// The whole `sigma_match` invariant for one input.
pub fn check_sigma_match(data: &[u8]) {
    let mut g = Gen::new(data);
    let case = gen_case(&mut g, &GenConfig::default());
    let b = build(sources(&case.files), case.pipelines);
    check_events(&b, &case.events);
}

/// Fixed events the loader target matches whatever loads (fields of the generator's pool).
const LOAD_EVENTS: &[&str] = &[
    r#"{"EventID":4624,"Channel":"Security","a":"foo","b":["bar","Foo"],"message":"x -enc Zm9v","x":{"y":1.5}}"#,
    r#"{"EventID":"4624","CommandLine":"C:\\Windows\\cmd.exe /c whoami","n":null,"a":"","Image":"C:\\x\\cmd.exe"}"#,
    r##"{"Event":{"System":{"EventID":{"#text":1}},"EventData":{"User":"ADMIN","IpAddress":"10.0.0.1"}}}"##,
    "plain text line with foo and 10.0.0.1",
];

/// The `sigma_load` invariant: arbitrary bytes as a rule file (and, when they split at a
/// NUL, as two files) load without panicking, every error names its file and a reason, and
/// whatever loads matches a few fixed events as the reference says.
pub fn check_sigma_load(data: &[u8]) {
    if data.len() > 64 << 10 {
        return;
    }
    let parts: Vec<&[u8]> = data.splitn(2, |&b| b == 0).collect();
    let files: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let pipelines = data.first().map_or(0, |b| b % 4);
    let b = build(sources(&files), pipelines);
    let events: Vec<(String, u16)> = LOAD_EVENTS
        .iter()
        .enumerate()
        .map(|(i, e)| (e.to_string(), (i % 3) as u16))
        .collect();
    check_events(&b, &events);
}

/// The `literal_set` invariant: `LiteralSet` reports exactly the literals a naive search
/// finds. Input: literals separated by `\n` (3+ bytes each kept), then `\0`, then the text.
pub fn check_literal_set(data: &[u8]) {
    use kuzet::matcher::literals::{LiteralSet, MIN_LEN};
    let (lits, hay) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut lits: Vec<Vec<u8>> = lits
        .split(|&b| b == b'\n')
        .filter(|l| l.len() >= MIN_LEN)
        .map(|l| l.to_ascii_lowercase())
        .take(256)
        .collect();
    lits.sort();
    lits.dedup();
    if lits.is_empty() {
        return;
    }
    let hay = hay.to_ascii_lowercase();
    let refs: Vec<&[u8]> = lits.iter().map(|l| l.as_slice()).collect();
    let set = LiteralSet::build(&refs);
    let mut got = Vec::new();
    set.scan(&hay, |id| got.push(id));
    got.sort_unstable();
    got.dedup();
    let want: Vec<u32> = lits
        .iter()
        .enumerate()
        .filter(|(_, l)| hay.windows(l.len()).any(|w| w == l.as_slice()))
        .map(|(i, _)| i as u32)
        .collect();
    assert_eq!(got, want, "LiteralSet disagrees with a naive search");
}
