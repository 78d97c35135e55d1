//! Field extraction: turning free-text log messages into the fields rules group and match on,
//! declared in YAML (`rules/parsers/*.yml`), compiled at load time, applied after parsing.
//!
//! An sshd line says `Failed password for invalid user admin from 203.0.113.7 port 51234
//! ssh2`; no correlation can group by the source address until something extracts it. An
//! extractor selects messages (by `appname`, an appname prefix, a message prefix, or field
//! values for structured events), gives them a Sigma logsource (so rules route to them), and
//! tries its patterns in order; the first that matches sets its fields. Unmatched messages pass
//! through unchanged. The format:
//!
//! ```yaml
//! name: openssh
//! select:
//!   appname: [sshd]               # any of; or appname_prefix / message_prefix /
//!                                 # message_regex / fields / has (all given must hold;
//!                                 # fields: {type: [USER_AUTH, ADD_USER]}: any listed value)
//! logsource:                      # one or several (an event can be sshd and auth at once)
//!   - {product: linux, service: sshd}
//!   - {product: linux, service: auth}
//! patterns:
//!   - match: "Failed {method:word} for invalid user {user:text} from {src_ip:ip} port {src_port:int} {protocol:word}"
//!     set: {action: login, outcome: failure, invalid_user: "true"}
//!   - regex: '^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<src_ip>\S+)'
//!     set: {action: login, outcome: success}
//! copy: {user: TargetUserName}    # field aliases (after the patterns: captures too)
//! map: {proto: {TCP: tcp, "6": tcp}}  # value translations, exact, after the copies
//! classify: {action: {from: rule, values: {deny: [drop], allow: [accept]}}}  # by words
//! time: [log_time, [date, time]]  # the event's own time: first field (or fields joined
//!                                 # by a space) that reads as a stamp (see `time`)
//! set: {vendor: openssh}          # constants for every selected event
//! ```
//!
//! Order for a selected event: logsource class and `set` constants, the first matching
//! pattern's captures and constants, `copy`, `map`, `classify`, `time`. Copies, maps and time apply
//! whether or not a pattern matched (a structured FortiGate event has no pattern at all).
//!
//! Captures are typed: `word` (up to a space), `int` (optional sign, digits), `ip` (IPv4 or
//! IPv6 characters, validated), `quoted` (a `"…"` string, quotes removed, or a word), `rest`
//! (everything left), `text` (any text up to what the pattern says next). `text` takes the
//! **last** place where the rest of the pattern still matches, so an attacker who writes
//! ` from 10.0.0.1 port 1` into a user name does not move the extracted address: the real one
//! comes last. A `match` pattern must cover the whole message; `{_:rest}` ignores a tail.
//! Literals are matched exactly; patterns are dispatched by their leading literal, so only the
//! few that can match a message are tried, and a regex is used only where a pattern says so.
//!
//! A `kv:` pattern (`kv: {SRC: src_ip}`, with `from`, `prefix`, `stop`, `require`) reads
//! space-separated `KEY=VALUE` tokens in one byte loop: kernel packet logs without a regex.
//!
//! A pattern with `field: NAME` matches that field's text instead of the message (structured
//! events: Windows' `IpAddress` is `-`, `203.0.113.7` or `::ffff:203.0.113.7`, and
//! `match: "::ffff:{src_ip:ip}"` keeps only the address).

pub mod time;

use std::sync::Arc;

use hashbrown::HashMap;

use crate::event::time::{Tz, ZoneResolver};
use crate::event::{EventBuf, FieldId, FieldTable, Repr, Span, Src, regex_hir};
use crate::sigma::Logsource;
use crate::sigma::error::{Problem, RuleError};
use crate::sigma::yaml::{Value, documents, scalar_text, string_list};

/// A capture's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    Word,
    Int,
    Ip,
    Quoted,
    Rest,
    Text,
}

impl Cap {
    fn parse(s: &str) -> Option<Cap> {
        Some(match s {
            "word" => Cap::Word,
            "int" => Cap::Int,
            "ip" => Cap::Ip,
            "quoted" => Cap::Quoted,
            "rest" => Cap::Rest,
            "text" | "" => Cap::Text,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(Box<[u8]>),
    /// A capture into a field (`None`: `_`, matched but not kept).
    Cap(Option<FieldId>, Cap),
}

/// A compiled pattern.
#[derive(Debug)]
enum Matcher {
    Tokens(Vec<Tok>),
    Regex(Box<RegexPattern>),
    Kv(Box<Kv>),
}

/// A `regex:` pattern. Searched with the meta engine's slot API into a slot buffer the
/// caller owns (no capture allocation per event), after a literal every match contains has
/// been found (one SIMD search turns most lines away before the regex engine starts).
#[derive(Debug)]
struct RegexPattern {
    re: regex_automata::meta::Regex,
    /// Capture groups kept (group index, field).
    groups: Vec<(usize, FieldId)>,
    /// A literal every match contains, when the regex has one the lead does not already cover.
    required: Option<memchr::memmem::Finder<'static>>,
}

/// A `kv:` pattern: space-separated `KEY=VALUE` tokens, read in one pass (no regex); the
/// first occurrence of a key wins. Kernel packet logs are this shape after a free-text prefix.
#[derive(Debug)]
struct Kv {
    /// Keys (exact) and the fields their values go to; at most 32.
    keys: Vec<(Box<[u8]>, FieldId)>,
    /// Pairs start at the first token beginning with this (the message start otherwise).
    from: Option<memchr::memmem::Finder<'static>>,
    /// The field given the text before `from` (trimmed; a leading printk stamp dropped).
    prefix: Option<FieldId>,
    /// A token starting with this byte ends the pairs (`[`: an ICMP error's quoted packet).
    stop: Option<u8>,
    /// Bits of `keys` that must all be found for the pattern to match.
    require: u32,
    /// Bits of `keys` starting with each byte: a token is compared only with those.
    by_first: Box<[u32; 256]>,
}

/// A `classify:` entry: sets `to` to the first class one of whose words appears in `from`
/// (ASCII case-insensitive).
#[derive(Debug)]
struct Classify {
    to: FieldId,
    from: FieldId,
    classes: Vec<(Box<[u8]>, aho_corasick::AhoCorasick)>,
}

/// The cheapest test an appname-less extractor needs, decided at build time so that most
/// events skip most such extractors without calling [`Extractors::selects`].
#[derive(Clone, Copy, Debug, PartialEq)]
enum Gate {
    /// The event must have the field with this bit in the per-event presence mask.
    Field(u8),
    /// The message must start with this byte.
    MessageByte(u8),
    /// The appname must start with this byte (the first byte of all its appname prefixes).
    AppnameByte(u8),
    /// [`Extractors::regex_gate`] must admit the message (an anchored `message_regex`).
    Regex,
    /// No test before [`Extractors::selects`].
    Open,
}

/// One candidate list (the extractors an event with some appname may get, in the order they
/// are tried) with its gates as bit masks: the candidates an event passes are found with a
/// few ORs, not a test per candidate, and only those reach [`Extractors::selects`].
#[derive(Debug, Default)]
struct Candidates {
    /// The extractors that name the appname, tried first, with no gate.
    own: Box<[u32]>,
    /// The others, 64 a block, tried next when their gates admit the event.
    blocks: Box<[Block]>,
    /// Whether some gate reads the presence mask.
    fields: bool,
}

/// Up to 64 gated candidates; each mask has the bits of the candidates one gate admits.
#[derive(Debug, Default)]
struct Block {
    ids: Vec<u32>,
    open: u64,
    regex: u64,
    /// (presence bit, candidates).
    fields: Vec<(u8, u64)>,
    /// (the message's first byte, candidates).
    message_bytes: Vec<(u8, u64)>,
    /// (the appname's first byte, candidates).
    appname_bytes: Vec<(u8, u64)>,
}

impl Candidates {
    fn new(own: Vec<u32>, list: &[(u32, Gate)]) -> Candidates {
        fn add(v: &mut Vec<(u8, u64)>, key: u8, bit: u64) {
            match v.iter_mut().find(|(k, _)| *k == key) {
                Some(m) => m.1 |= bit,
                None => v.push((key, bit)),
            }
        }
        let mut blocks = Vec::new();
        for chunk in list.chunks(64) {
            let mut b = Block::default();
            for (k, &(i, g)) in chunk.iter().enumerate() {
                let bit = 1u64 << k;
                b.ids.push(i);
                match g {
                    Gate::Open => b.open |= bit,
                    Gate::Regex => b.regex |= bit,
                    Gate::Field(f) => add(&mut b.fields, f, bit),
                    Gate::MessageByte(c) => add(&mut b.message_bytes, c, bit),
                    Gate::AppnameByte(c) => add(&mut b.appname_bytes, c, bit),
                }
            }
            blocks.push(b);
        }
        Candidates {
            own: own.into(),
            fields: list.iter().any(|(_, g)| matches!(g, Gate::Field(_))),
            blocks: blocks.into(),
        }
    }
}

#[derive(Debug)]
struct Pattern {
    matcher: Matcher,
    /// The text field matched (`field:`); `None`: the message.
    field: Option<FieldId>,
    /// The literal the message must start with (for dispatch); empty: none.
    lead: Box<[u8]>,
    /// A capture whose whole value is this is not set (`-`: "no value" in web logs).
    nil: Option<Box<[u8]>>,
    sets: Constants,
}

/// What selects events for an extractor.
#[derive(Debug, Default)]
struct Select {
    appnames: Vec<Box<[u8]>>,
    appname_prefixes: Vec<Box<[u8]>>,
    message_prefix: Option<Box<[u8]>>,
    /// A regex the message must match (for lines with no appname: files of web logs).
    message_regex: Option<regex::bytes::Regex>,
    /// A gate for `message_regex` (anchored at the start, or starting with one literal): most
    /// messages are decided in a few bytes, without a regex search.
    message_gate: Option<StartGate>,
    /// A literal every match of `message_regex` contains: one search turns most messages
    /// away before the regex runs.
    message_literal: Option<memchr::memmem::Finder<'static>>,
    /// Fields the event must have, whatever their values (`has:`).
    has: Vec<FieldId>,
    /// Field values the event must have (text, exact).
    fields: Vec<(FieldId, Vec<Box<[u8]>>)>,
}

/// Value translations for one field: (from, to), compared exactly.
type ValueMap = (FieldId, Vec<(Box<[u8]>, Box<[u8]>)>);

#[derive(Debug)]
struct Extractor {
    name: String,
    select: Select,
    /// Event logsource class given to selected events (0: none).
    class: u16,
    patterns: Vec<Pattern>,
    copies: Vec<(FieldId, FieldId)>,
    maps: Vec<ValueMap>,
    classify: Vec<Classify>,
    /// Where the event's own time is: alternatives tried in order, each the fields whose
    /// values, joined by a space, make one stamp (see [`time::parse_log_time`]).
    times: Vec<Vec<FieldId>>,
    sets: Constants,
}

/// Longest stamp [`Extractors::apply_in_zone`] assembles from `time:` fields.
const MAX_STAMP: usize = 96;

/// An extractor as written, before field interning.
#[derive(Clone, Debug)]
pub struct Def {
    pub path: Arc<str>,
    pub line: usize,
    pub name: String,
    pub logsources: Vec<Logsource>,
    doc: yaml_serde::Mapping,
}

/// Reads extractor definitions (one per YAML document).
pub fn parse_defs(path: &Arc<str>, text: &str) -> (Vec<Def>, Vec<RuleError>) {
    let mut defs = Vec::new();
    let mut errs = Vec::new();
    for doc in documents(text) {
        let v = match doc.parse() {
            Ok(Value::Mapping(m)) => m,
            Ok(_) => {
                errs.push(RuleError::new(
                    path,
                    None,
                    Some(doc.first_line),
                    "an extractor must be a map",
                ));
                continue;
            }
            Err((m, l)) => {
                errs.push(RuleError::new(path, None, l, format!("YAML: {m}")));
                continue;
            }
        };
        let name = v
            .get("name")
            .and_then(scalar_text)
            .unwrap_or_else(|| format!("{path}:{}", doc.first_line));
        let logsources = match v.get("logsource") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(s)) => s.iter().filter_map(logsource).collect(),
            Some(one) => logsource(one).into_iter().collect(),
        };
        defs.push(Def {
            path: path.clone(),
            line: doc.first_line,
            name,
            logsources,
            doc: v,
        });
    }
    (defs, errs)
}

fn logsource(v: &Value) -> Option<Logsource> {
    let Value::Mapping(m) = v else { return None };
    Some(Logsource {
        product: m.get("product").and_then(scalar_text),
        category: m.get("category").and_then(scalar_text),
        service: m.get("service").and_then(scalar_text),
    })
}

/// Compiled extractors.
#[derive(Debug, Default)]
pub struct Extractors {
    list: Vec<Extractor>,
    /// The candidates for each appname some extractor names, tried in order: those that
    /// name it, then the appname-less ones that can select it (an `appname_prefix` it
    /// does not start with is left out here, at build time).
    by_appname: HashMap<Box<[u8]>, Candidates>,
    /// The candidates for an appname no extractor names.
    unnamed_appname: Candidates,
    /// The candidates for an event without an appname.
    no_appname: Candidates,
    /// The anchored `message_regex`es of appname-less extractors as one [`StartGate`]: one
    /// walk over a message's first bytes turns it away from all of them.
    regex_gate: Option<StartGate>,
    /// The fields gates test, in presence-mask bit order.
    gate_fields: Vec<FieldId>,
}

fn compile_pattern(src: &str, table: &mut FieldTable) -> Result<Vec<Tok>, Problem> {
    let mut toks = Vec::new();
    let b = src.as_bytes();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' if b.get(i + 1) == Some(&b'{') => {
                lit.push(b'{');
                i += 2;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => {
                lit.push(b'}');
                i += 2;
            }
            b'{' => {
                let end = src[i..]
                    .find('}')
                    .ok_or_else(|| Problem::new(format!("unclosed '{{' in {src:?}")))?
                    + i;
                let inner = &src[i + 1..end];
                let (name, ty) = inner.split_once(':').unwrap_or((inner, ""));
                let cap = Cap::parse(ty.trim()).ok_or_else(|| {
                    Problem::new(format!(
                        "capture type {ty:?} is not word, int, ip, quoted, rest or text"
                    ))
                })?;
                if !lit.is_empty() {
                    toks.push(Tok::Lit(std::mem::take(&mut lit).into()));
                }
                if let Some(Tok::Cap(_, prev)) = toks.last()
                    && (matches!(prev, Cap::Text | Cap::Rest) || matches!(cap, Cap::Text))
                {
                    return Err(Problem::new(format!(
                        "in {src:?}: a text or rest capture must be followed by literal text"
                    )));
                }
                let name = name.trim();
                let field = (name != "_").then(|| table.intern(name));
                toks.push(Tok::Cap(field, cap));
                i = end + 1;
            }
            c => {
                lit.push(c);
                i += 1;
            }
        }
    }
    if !lit.is_empty() {
        toks.push(Tok::Lit(lit.into()));
    }
    for w in toks.windows(2) {
        if let [Tok::Cap(_, Cap::Rest), _] = w {
            return Err(Problem::new(format!(
                "in {src:?}: nothing can follow a rest capture"
            )));
        }
    }
    Ok(toks)
}

/// Fields set to fixed values: the values laid end to end, so that an event takes them with
/// one copy into its scratch bytes.
#[derive(Debug, Default)]
struct Constants {
    blob: Box<[u8]>,
    /// (field, start in `blob`, length).
    fields: Box<[(FieldId, u32, u32)]>,
}

impl Constants {
    /// Sets the constants' fields in `buf`.
    #[inline]
    fn apply(&self, buf: &mut EventBuf) {
        if self.fields.is_empty() {
            return;
        }
        let base = buf.push_scratch(&self.blob);
        for &(f, start, len) in self.fields.iter() {
            let s = Span {
                start: base.start + start,
                len,
                ..base
            };
            buf.set(f, Repr::Str(s));
        }
    }
}

fn constants(v: Option<&Value>, table: &mut FieldTable) -> Result<Constants, Problem> {
    let Some(v) = v else {
        return Ok(Constants::default());
    };
    let Value::Mapping(m) = v else {
        return Err(Problem::new("set must map fields to values"));
    };
    let mut blob = Vec::new();
    let mut fields = Vec::new();
    for (k, v) in m {
        let k = scalar_text(k).ok_or_else(|| Problem::new("field names must be text"))?;
        let v = scalar_text(v)
            .ok_or_else(|| Problem::new(format!("set {k}: the value must be a scalar")))?;
        fields.push((table.intern(&k), blob.len() as u32, v.len() as u32));
        blob.extend_from_slice(v.as_bytes());
    }
    Ok(Constants {
        blob: blob.into(),
        fields: fields.into(),
    })
}

impl Extractors {
    /// Compiles definitions; `class_of(i)` is the event class registered for def `i`'s
    /// logsources (0 when it has none). Interns every produced field into `table`.
    pub fn build(
        defs: &[Def],
        class_of: impl Fn(usize) -> u16,
        table: &mut FieldTable,
    ) -> (Extractors, Vec<RuleError>) {
        let mut out = Extractors::default();
        let mut errs = Vec::new();
        let mut named: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
        let mut others = Vec::new();
        for (di, d) in defs.iter().enumerate() {
            match compile_def(d, class_of(di), table) {
                Ok(x) => {
                    let idx = out.list.len() as u32;
                    if x.select.appnames.is_empty() {
                        let gate = out.gate(&x.select);
                        others.push((idx, gate));
                    }
                    for a in &x.select.appnames {
                        named.entry(a.clone()).or_default().push(idx);
                    }
                    out.list.push(x);
                }
                Err(p) => errs.push(RuleError::new(
                    &d.path,
                    Some(d.name.clone()),
                    Some(d.line),
                    p.reason,
                )),
            }
        }
        let gated: Vec<&str> = others
            .iter()
            .filter(|(_, g)| *g == Gate::Regex)
            .filter_map(|&(i, _)| out.list[i as usize].select.message_regex.as_ref())
            .map(|re| re.as_str())
            .collect();
        out.regex_gate = StartGate::new(&gated);
        if out.regex_gate.is_none() {
            for (_, g) in others.iter_mut().filter(|(_, g)| *g == Gate::Regex) {
                *g = Gate::Open;
            }
        }
        let list = &out.list;
        let prefixed = |i: u32, name: &[u8]| {
            let ps = &list[i as usize].select.appname_prefixes;
            ps.is_empty() || ps.iter().any(|p| name.starts_with(p))
        };
        out.by_appname = named
            .into_iter()
            .map(|(name, own)| {
                let v: Vec<_> = others
                    .iter()
                    .filter(|&&(i, _)| prefixed(i, &name))
                    .copied()
                    .collect();
                (name, Candidates::new(own, &v))
            })
            .collect();
        let no_appname: Vec<_> = others
            .iter()
            .filter(|&&(i, _)| list[i as usize].select.appname_prefixes.is_empty())
            .copied()
            .collect();
        out.no_appname = Candidates::new(Vec::new(), &no_appname);
        out.unnamed_appname = Candidates::new(Vec::new(), &others);
        (out, errs)
    }

    /// The gate for an extractor selected without an appname: a field it needs (`has`, else
    /// `fields`), else its message prefix's first byte. (An appname prefix is decided by the
    /// candidate list an event gets.)
    fn gate(&mut self, s: &Select) -> Gate {
        if let Some(f) = s.has.first().or(s.fields.first().map(|(f, _)| f)) {
            let bit = match self.gate_fields.iter().position(|g| g == f) {
                Some(b) => b,
                None => {
                    self.gate_fields.push(*f);
                    self.gate_fields.len() - 1
                }
            };
            if bit < 64 {
                return Gate::Field(bit as u8);
            }
        }
        if let Some(&b) = s.message_prefix.as_ref().and_then(|p| p.first()) {
            return Gate::MessageByte(b);
        }
        if s.message_gate.as_ref().is_some_and(|g| g.lead.is_none()) {
            return Gate::Regex;
        }
        let firsts = s.appname_prefixes.iter().map(|p| p.first());
        if let Some(Some(&b)) = firsts.clone().next()
            && firsts.into_iter().all(|f| f == Some(&b))
        {
            return Gate::AppnameByte(b);
        }
        Gate::Open
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The extractors' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|x| x.name.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// [`Extractors::apply_in_zone`] reading zone-less stamps as UTC.
    pub fn apply(&self, raw: &[u8], buf: &mut EventBuf) -> bool {
        self.apply_in_zone(raw, buf, &mut ZoneResolver::new(Tz::Utc))
    }

    /// Applies the first extractor that selects the event in `buf` (parsed from `raw`): its
    /// logsource class and constants, the fields of its first matching pattern, then its
    /// copies, value maps and event time (zone-less stamps read in `zone`, the input's).
    /// Returns whether a pattern matched.
    pub fn apply_in_zone(&self, raw: &[u8], buf: &mut EventBuf, zone: &mut ZoneResolver) -> bool {
        if self.list.is_empty() {
            return false;
        }
        let appname = match buf.get_repr(FieldId::APPNAME) {
            Some(Repr::Str(s)) => Some(s),
            _ => None,
        };
        let candidates = match appname {
            Some(a) => self
                .by_appname
                .get(bytes(raw, buf, a))
                .unwrap_or(&self.unnamed_appname),
            None => &self.no_appname,
        };
        let Some(i) = self.choose(candidates, raw, buf) else {
            return false;
        };
        let x = &self.list[i as usize];
        if x.class != 0 {
            buf.class = x.class;
        }
        x.sets.apply(buf);
        let matched = x.match_patterns(raw, buf);
        // After the patterns, so their captures can be aliased too.
        for &(to, from) in &x.copies {
            if let Some(v) = buf.get_repr(from) {
                buf.set(to, v);
            }
        }
        for (f, table) in &x.maps {
            let mut tmp = Vec::new();
            let ev = crate::event::Event::new(raw, buf);
            let Some(v) = ev.get(*f) else { continue };
            let v = v.text(&mut tmp);
            if let Some((_, to)) = table
                .iter()
                .find(|(from, _)| crate::event::same_bytes(from, v))
            {
                let s = buf.push_scratch(to);
                buf.set(*f, Repr::Str(s));
            }
        }
        for c in &x.classify {
            let ev = crate::event::Event::new(raw, buf);
            let mut tmp = Vec::new();
            let Some(v) = ev.get(c.from) else { continue };
            let v = v.text(&mut tmp);
            if let Some((class, _)) = c.classes.iter().find(|(_, ac)| ac.is_match(v)) {
                let s = buf.push_scratch(class);
                buf.set(c.to, Repr::Str(s));
            }
        }
        for alt in &x.times {
            if let Some(t) = stamp(raw, buf, alt, zone) {
                buf.set_time(t);
                break;
            }
        }
        matched
    }

    /// The first of `c` whose gate admits the event and which [`Self::selects`] it.
    fn choose(&self, c: &Candidates, raw: &[u8], buf: &EventBuf) -> Option<u32> {
        if let Some(&i) = c.own.iter().find(|&&i| self.selects(i as usize, raw, buf)) {
            return Some(i);
        }
        if c.blocks.is_empty() {
            return None;
        }
        let present = if c.fields { self.present(buf) } else { 0 };
        let text = |f| match buf.get_repr(f) {
            Some(Repr::Str(m)) => bytes(raw, buf, m),
            _ => &[],
        };
        let message = text(FieldId::MESSAGE);
        let m0 = message.first().copied();
        let a0 = text(FieldId::APPNAME).first().copied();
        // The regex gate, walked when a block first needs it.
        let mut regex = None;
        for b in c.blocks.iter() {
            let mut admitted = b.open;
            for &(f, bits) in &b.fields {
                if present & (1 << f) != 0 {
                    admitted |= bits;
                }
            }
            for &(c, bits) in &b.message_bytes {
                if m0 == Some(c) {
                    admitted |= bits;
                }
            }
            for &(c, bits) in &b.appname_bytes {
                if a0 == Some(c) {
                    admitted |= bits;
                }
            }
            if b.regex != 0
                && *regex.get_or_insert_with(|| {
                    self.regex_gate.as_ref().is_none_or(|g| g.admits(message))
                })
            {
                admitted |= b.regex;
            }
            while admitted != 0 {
                let i = b.ids[admitted.trailing_zeros() as usize];
                if self.selects(i as usize, raw, buf) {
                    return Some(i);
                }
                admitted &= admitted - 1;
            }
        }
        None
    }

    /// Which of [`Self::gate_fields`] `buf` has, as a bit mask.
    fn present(&self, buf: &EventBuf) -> u64 {
        let mut present = 0u64;
        for (bit, &f) in self.gate_fields.iter().enumerate().take(64) {
            if buf.get_repr(f).is_some() {
                present |= 1 << bit;
            }
        }
        present
    }

    fn selects(&self, i: usize, raw: &[u8], buf: &EventBuf) -> bool {
        let s = &self.list[i].select;
        if !s.appname_prefixes.is_empty() {
            let Some(Repr::Str(a)) = buf.get_repr(FieldId::APPNAME) else {
                return false;
            };
            let name = bytes(raw, buf, a);
            if !s.appname_prefixes.iter().any(|p| name.starts_with(p)) {
                return false;
            }
        }
        if let Some(p) = &s.message_prefix {
            let Some(Repr::Str(m)) = buf.get_repr(FieldId::MESSAGE) else {
                return false;
            };
            if !bytes(raw, buf, m).starts_with(p) {
                return false;
            }
        }
        if let Some(re) = &s.message_regex {
            let Some(Repr::Str(m)) = buf.get_repr(FieldId::MESSAGE) else {
                return false;
            };
            let m = bytes(raw, buf, m);
            let matched = s.message_gate.as_ref().and_then(|g| g.decide(m));
            if !matched.unwrap_or_else(|| {
                s.message_literal
                    .as_ref()
                    .is_none_or(|l| l.find(m).is_some())
                    && re.is_match(m)
            }) {
                return false;
            }
        }
        if s.has.iter().any(|&f| buf.get_repr(f).is_none()) {
            return false;
        }
        let mut tmp = Vec::new();
        for (f, want) in &s.fields {
            let Some(r) = buf.get_repr(*f) else {
                return false;
            };
            let ev = crate::event::Event::new(raw, buf);
            let v = match r {
                Repr::Str(sp) => ev.bytes(sp),
                other => {
                    let val = match other {
                        Repr::Int(i) => crate::event::Value::Int(i),
                        Repr::UInt(u) => crate::event::Value::UInt(u),
                        Repr::Float(x) => crate::event::Value::Float(x),
                        Repr::Bool(b) => crate::event::Value::Bool(b),
                        _ => return false,
                    };
                    let n = val.text(&mut tmp).len();
                    &tmp[..n]
                }
            };
            if !want.iter().any(|w| v == &**w) {
                return false;
            }
        }
        true
    }
}

impl Extractor {
    /// Tries the patterns on the message; the first that matches sets its fields.
    fn match_patterns(&self, raw: &[u8], buf: &mut EventBuf) -> bool {
        let mut caps = std::mem::take(&mut buf.captures);
        let mut slots = std::mem::take(&mut buf.regex_slots);
        let found = self.patterns.iter().find_map(|p| {
            let Some(Repr::Str(msg)) = buf.get_repr(p.field.unwrap_or(FieldId::MESSAGE)) else {
                return None;
            };
            let text = bytes(raw, buf, msg);
            if !has_lead(text, &p.lead) {
                return None;
            }
            caps.clear();
            let matched = match &p.matcher {
                Matcher::Tokens(t) => match_tokens(t, text, 0, &mut caps),
                Matcher::Kv(kv) => match_kv(kv, text, &mut caps),
                Matcher::Regex(r) => match_regex(r, text, &mut slots, &mut caps),
            };
            matched.then_some((p, msg))
        });
        buf.regex_slots = slots;
        let Some((p, msg)) = found else {
            buf.captures = caps;
            return false;
        };
        for &(f, a, e) in &caps {
            let Some(f) = f else { continue };
            let (a, e) = trim_quotes(bytes(raw, buf, msg), a, e);
            if p.nil.as_deref() == Some(&bytes(raw, buf, msg)[a..e]) {
                continue;
            }
            let span = Span {
                src: msg.src,
                start: msg.start + a as u32,
                len: (e - a) as u32,
            };
            buf.set(f, Repr::Str(span));
        }
        p.sets.apply(buf);
        buf.captures = caps;
        true
    }
}

/// The event time written in `fields` (their values joined by a space), if all are present
/// and the result is a stamp [`time::parse_log_time`] reads.
fn stamp(
    raw: &[u8],
    buf: &EventBuf,
    fields: &[FieldId],
    zone: &mut ZoneResolver,
) -> Option<crate::event::Timestamp> {
    let mut out = [0u8; MAX_STAMP];
    let mut n = 0;
    let mut tmp = Vec::new();
    let ev = crate::event::Event::new(raw, buf);
    for (k, f) in fields.iter().enumerate() {
        let v = ev.get(*f)?;
        let v = v.text(&mut tmp);
        let sep = usize::from(k > 0);
        if n + sep + v.len() > MAX_STAMP {
            return None;
        }
        if sep == 1 {
            out[n] = b' ';
        }
        out[n + sep..n + sep + v.len()].copy_from_slice(v);
        n += sep + v.len();
    }
    time::parse_log_time(&out[..n], zone)
}

/// The bytes of a span of the event being built.
fn bytes<'a>(raw: &'a [u8], buf: &'a EventBuf, s: Span) -> &'a [u8] {
    let b: &[u8] = match s.src {
        Src::Raw => raw,
        Src::Json => &buf.json,
        Src::Scratch => &buf.scratch,
    };
    &b[s.start as usize..(s.start + s.len) as usize]
}

/// `"…"` captured by `quoted` loses its quotes.
fn trim_quotes(t: &[u8], a: usize, e: usize) -> (usize, usize) {
    if e - a >= 2 && t[a] == b'"' && t[e - 1] == b'"' {
        (a + 1, e - 1)
    } else {
        (a, e)
    }
}

/// End of the capture `cap` starting at `i`, for captures that decide their own extent.
fn extent(cap: Cap, t: &[u8], i: usize) -> Option<usize> {
    let rest = &t[i..];
    let n = match cap {
        Cap::Word => rest.iter().position(|&c| c == b' ').unwrap_or(rest.len()),
        Cap::Int => {
            let sign = usize::from(matches!(rest.first(), Some(b'-' | b'+')));
            let d = rest[sign..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if d == 0 {
                return None;
            }
            sign + d
        }
        Cap::Ip => {
            let n = rest
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b':'))
                .count();
            if crate::event::dotted_quad(&rest[..n]).is_none() {
                // IPv6 (rare): the standard parser validates.
                let s = std::str::from_utf8(&rest[..n]).ok()?;
                s.parse::<std::net::Ipv6Addr>().ok()?;
            }
            n
        }
        Cap::Quoted => {
            if rest.first() == Some(&b'"') {
                1 + memchr::memchr(b'"', &rest[1..])? + 1
            } else {
                rest.iter().position(|&c| c == b' ').unwrap_or(rest.len())
            }
        }
        Cap::Rest => rest.len(),
        Cap::Text => return None,
    };
    (n > 0 || cap == Cap::Rest).then_some(i + n)
}

/// Reads `KEY=VALUE` tokens of `t` as `kv` says; records captures; whether every required
/// key was found.
fn match_kv(kv: &Kv, t: &[u8], caps: &mut Vec<(Option<FieldId>, usize, usize)>) -> bool {
    let start = match &kv.from {
        None => 0,
        Some(f) => match f.find_iter(t).find(|&p| p == 0 || t[p - 1] == b' ') {
            Some(p) => p,
            None => return false,
        },
    };
    let all = u32::MAX >> (32 - kv.keys.len());
    let mut found = 0u32;
    let mut i = start;
    // Token ends come from one SIMD scan for spaces; a token is compared only with the
    // keys that start with its first byte (a key holds no '=', so `KEY=` at the token's
    // start is the same test as "the text before the token's first '=' is KEY").
    let mut spaces = memchr::memchr_iter(b' ', &t[start..]);
    'tokens: while i < t.len() {
        if kv.stop == Some(t[i]) {
            break;
        }
        let end = spaces.next().map_or(t.len(), |p| start + p);
        let tok = &t[i..end];
        let mut cand = kv.by_first[usize::from(t[i])];
        while cand != 0 {
            let k = cand.trailing_zeros() as usize;
            cand &= cand - 1;
            let key = &kv.keys[k].0;
            if tok.len() > key.len() && tok[key.len()] == b'=' && starts(tok, key) {
                if found & (1 << k) == 0 {
                    found |= 1 << k;
                    caps.push((Some(kv.keys[k].1), i + key.len() + 1, end));
                    if found == all {
                        break 'tokens;
                    }
                }
                break;
            }
        }
        i = end + 1;
    }
    if found & kv.require != kv.require {
        return false;
    }
    if let Some(f) = kv.prefix {
        let (a, e) = kv_prefix(t, start);
        if e > a {
            caps.push((Some(f), a, e));
        }
    }
    true
}

/// The longest literal every match of regex `src` contains: the longest run of literals in
/// its top-level concatenation (`^\S+ \S+ \[\d` → ` [`). Case-insensitive parts are
/// classes, not literals, so they never count.
fn required_literal(src: &str) -> Option<Vec<u8>> {
    use regex_syntax::hir::HirKind;
    let hir = regex_hir(src)?;
    let items = match hir.kind() {
        HirKind::Concat(v) => v.iter().collect(),
        _ => vec![&hir],
    };
    let mut best: Vec<u8> = Vec::new();
    let mut run: Vec<u8> = Vec::new();
    for h in items {
        if let HirKind::Literal(l) = h.kind() {
            run.extend_from_slice(&l.0);
        } else {
            if run.len() > best.len() {
                best = std::mem::take(&mut run);
            }
            run.clear();
        }
    }
    if run.len() > best.len() {
        best = run;
    }
    (!best.is_empty()).then_some(best)
}

/// `t.starts_with(l)` compared inline: keys and pattern literals are a few bytes, where a
/// `memcmp` call costs more than the comparison.
#[inline]
fn starts(t: &[u8], l: &[u8]) -> bool {
    t.len() >= l.len() && t.iter().zip(l).all(|(a, b)| a == b)
}

/// A fast decision for regexes, before (or instead of) a regex search: a small dense DFA of
/// the regexes, anchored at their start, with every character class that reaches past ASCII
/// widened to "that class's ASCII part, or any multi-byte UTF-8 sequence", and Unicode word
/// boundaries dropped. It admits every text one of the regexes matches, and some more, so a
/// text it turns away needs no regex search; deciding usually takes a few bytes. While it has
/// read only ASCII, widening changes nothing, so a match found there is the regexes' own
/// (unless a word boundary was dropped). Widening keeps the DFA small: Unicode `\w` and `\S`
/// as they are would make it megabytes, and slow to build.
///
/// A regex that is not anchored at the start is gated when every match begins with one
/// literal (`IN=\S* OUT=`): the DFA then runs from each place the literal occurs.
#[derive(Debug)]
struct StartGate {
    dfa: regex_automata::dfa::dense::DFA<Vec<u32>>,
    /// The anchored start state, looked up once at build time.
    start: regex_automata::util::primitives::StateID,
    /// Whether a match read from ASCII text alone is a match of the regexes.
    exact_on_ascii: bool,
    /// The literal every match starts with, for a regex not anchored at the start.
    lead: Option<memchr::memmem::Finder<'static>>,
}

impl StartGate {
    /// Bound on the DFA's memory; regexes whose widened DFA is larger get no gate.
    const SIZE_LIMIT: usize = 1 << 20;

    /// The gate of `srcs` (with `regex::bytes` syntax), if all parse and are anchored at the
    /// start and the DFA fits in [`Self::SIZE_LIMIT`].
    fn new(srcs: &[&str]) -> Option<StartGate> {
        let mut hirs = Vec::new();
        for src in srcs {
            let hir = regex_hir(src)?;
            if !hir
                .properties()
                .look_set_prefix()
                .contains(regex_syntax::hir::Look::Start)
            {
                return None;
            }
            hirs.push(hir);
        }
        Self::build(&hirs, None)
    }

    /// The gate of one regex: anchored at the start, or starting with one literal.
    fn for_regex(src: &str) -> Option<StartGate> {
        use regex_syntax::hir::{Hir, Look, literal};
        let hir = regex_hir(src)?;
        if hir.properties().look_set_prefix().contains(Look::Start) {
            return Self::build(&[hir], None);
        }
        let seq = literal::Extractor::new()
            .kind(literal::ExtractKind::Prefix)
            .extract(&hir);
        let [lit] = seq.literals()? else {
            return None;
        };
        if lit.as_bytes().is_empty() {
            return None;
        }
        let lead = memchr::memmem::Finder::new(lit.as_bytes()).into_owned();
        Self::build(
            &[Hir::concat(vec![Hir::look(Look::Start), hir])],
            Some(lead),
        )
    }

    fn build(
        hirs: &[regex_syntax::hir::Hir],
        lead: Option<memchr::memmem::Finder<'static>>,
    ) -> Option<StartGate> {
        use regex_automata::dfa::{StartKind, dense};
        use regex_automata::nfa::thompson;
        if hirs.is_empty() {
            return None;
        }
        let exact_on_ascii = !hirs
            .iter()
            .any(|h| h.properties().look_set().contains_word_unicode());
        let widened: Vec<_> = hirs.iter().map(widen).collect();
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().utf8(false))
            .build_many_from_hir(&widened)
            .ok()?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .match_kind(regex_automata::MatchKind::All)
                    .dfa_size_limit(Some(Self::SIZE_LIMIT))
                    .determinize_size_limit(Some(Self::SIZE_LIMIT)),
            )
            .build_from_nfa(&nfa)
            .ok()?;
        let start = regex_automata::dfa::Automaton::start_state(
            &dfa,
            &regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::Yes),
        )
        .ok()?;
        Some(StartGate {
            dfa,
            start,
            exact_on_ascii,
            lead,
        })
    }

    /// Whether some regex of the gate may match `t` (always, when one does).
    #[inline]
    fn admits(&self, t: &[u8]) -> bool {
        self.decide(t) != Some(false)
    }

    /// Whether a regex of the gate matches `t`, when the gate can tell without a regex
    /// search: `Some(false)` is always right; `Some(true)` only comes from ASCII text.
    #[inline]
    fn decide(&self, t: &[u8]) -> Option<bool> {
        let Some(lead) = &self.lead else {
            return self.walk(t);
        };
        for at in lead.find_iter(t) {
            match self.walk(&t[at..]) {
                Some(false) => continue,
                other => return other,
            }
        }
        Some(false)
    }

    /// [`Self::decide`] for a match starting at the start of `t`.
    #[inline]
    fn walk(&self, t: &[u8]) -> Option<bool> {
        use regex_automata::dfa::Automaton;
        let d = &self.dfa;
        let mut s = self.start;
        let mut read = 0u8;
        let found = 'walk: {
            for &b in t {
                s = d.next_state(s, b);
                read |= b;
                if d.is_special_state(s) {
                    if d.is_dead_state(s) {
                        return Some(false);
                    }
                    // A match (or a quit, which none is configured to cause).
                    break 'walk d.is_match_state(s);
                }
            }
            if !d.is_match_state(d.next_eoi_state(s)) {
                return Some(false);
            }
            true
        };
        (found && self.exact_on_ascii && read < 0x80).then_some(true)
    }
}

/// `h` with every class that reaches past ASCII replaced by its ASCII part or any multi-byte
/// UTF-8 sequence, and Unicode word boundaries by the empty match: a regex that matches
/// every text `h` matches (see [`StartGate`]).
fn widen(h: &regex_syntax::hir::Hir) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{Class, ClassBytes, ClassBytesRange, Hir, HirKind, Look, Repetition};
    let bytes = |ranges: &[(u8, u8)]| {
        Hir::class(Class::Bytes(ClassBytes::new(
            ranges.iter().map(|&(a, b)| ClassBytesRange::new(a, b)),
        )))
    };
    match h.kind() {
        HirKind::Empty | HirKind::Literal(_) => h.clone(),
        HirKind::Class(Class::Bytes(_)) => h.clone(),
        HirKind::Class(Class::Unicode(c)) => {
            let ascii: Vec<(u8, u8)> = c
                .ranges()
                .iter()
                .filter(|r| r.start().is_ascii())
                .map(|r| (r.start() as u8, r.end().min('\x7f') as u8))
                .collect();
            if c.ranges().iter().all(|r| r.end().is_ascii()) {
                return bytes(&ascii);
            }
            // A lead byte, then one to three continuation bytes.
            let multi = Hir::concat(vec![
                bytes(&[(0xC0, 0xFF)]),
                Hir::repetition(Repetition {
                    min: 1,
                    max: Some(3),
                    greedy: true,
                    sub: Box::new(bytes(&[(0x80, 0xBF)])),
                }),
            ]);
            Hir::alternation(vec![bytes(&ascii), multi])
        }
        HirKind::Look(
            Look::WordUnicode
            | Look::WordUnicodeNegate
            | Look::WordStartUnicode
            | Look::WordEndUnicode
            | Look::WordStartHalfUnicode
            | Look::WordEndHalfUnicode,
        ) => Hir::empty(),
        HirKind::Look(_) => h.clone(),
        HirKind::Repetition(r) => Hir::repetition(Repetition {
            sub: Box::new(widen(&r.sub)),
            ..r.clone()
        }),
        HirKind::Capture(c) => widen(&c.sub),
        HirKind::Concat(v) => Hir::concat(v.iter().map(widen).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(widen).collect()),
    }
}

/// The text before `start`, trimmed, without a leading printk stamp (`[  123.456789]`).
fn kv_prefix(t: &[u8], start: usize) -> (usize, usize) {
    let mut a = 0;
    if t.first() == Some(&b'[')
        && let Some(close) = memchr::memchr(b']', &t[..start])
        && t[1..close]
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b' '))
    {
        a = close + 1;
    }
    let mut e = start;
    while a < e && t[a] == b' ' {
        a += 1;
    }
    while e > a && t[e - 1] == b' ' {
        e -= 1;
    }
    (a, e)
}

/// Whether `t` starts with `lead`: the first byte compared inline, so the usual mismatch
/// costs no `memcmp` call (an extractor tries its patterns in order, most fail here).
#[inline]
fn has_lead(t: &[u8], lead: &[u8]) -> bool {
    match lead.first() {
        None => true,
        Some(b) => t.first() == Some(b) && t.starts_with(lead),
    }
}

/// Runs a `regex:` pattern on `t`; on a match records the kept groups in `caps`.
fn match_regex(
    r: &RegexPattern,
    t: &[u8],
    slots: &mut Vec<Option<regex_automata::util::primitives::NonMaxUsize>>,
    caps: &mut Vec<(Option<FieldId>, usize, usize)>,
) -> bool {
    if r.required.as_ref().is_some_and(|f| f.find(t).is_none()) {
        return false;
    }
    slots.clear();
    slots.resize(r.re.group_info().slot_len(), None);
    if r.re
        .search_slots(&regex_automata::Input::new(t), slots)
        .is_none()
    {
        return false;
    }
    for &(g, f) in &r.groups {
        if let (Some(a), Some(e)) = (slots[2 * g], slots[2 * g + 1]) {
            caps.push((Some(f), a.get(), e.get()));
        }
    }
    true
}

/// Compiles a `regex:` pattern as `regex::bytes::Regex` would (Unicode classes, matching
/// arbitrary bytes), returning it with its lead: the literal it starts with when it is
/// anchored at the start (`^pam_unix\(` → `pam_unix(`), for dispatch.
fn compile_regex(src: &str, table: &mut FieldTable) -> Result<(RegexPattern, Box<[u8]>), Problem> {
    use regex_automata::meta;
    let re = meta::Regex::builder()
        .syntax(regex_automata::util::syntax::Config::new().utf8(false))
        .configure(meta::Config::new().utf8_empty(false))
        .build(src)
        .map_err(|e| Problem::new(format!("regex {src:?}: {e}")).near(src.to_string()))?;
    let groups = re
        .group_info()
        .pattern_names(regex_automata::PatternID::ZERO)
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (i, table.intern(n))))
        .collect();
    let lead: Box<[u8]> = anchored_prefix(src).unwrap_or_default().into();
    let required = required_literal(src)
        .filter(|l| !lead.windows(l.len().max(1)).any(|w| w == &l[..]))
        .map(|l| memchr::memmem::Finder::new(&l).into_owned());
    Ok((
        RegexPattern {
            re,
            groups,
            required,
        },
        lead,
    ))
}

/// The literal a regex anchored at the start (`^`) begins with: every match starts with it.
fn anchored_prefix(src: &str) -> Option<Vec<u8>> {
    use regex_syntax::hir::{HirKind, Look};
    let hir = regex_hir(src)?;
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let mut it = items.iter();
    if !matches!(it.next()?.kind(), HirKind::Look(Look::Start)) {
        return None;
    }
    let mut out = Vec::new();
    for h in it {
        match h.kind() {
            HirKind::Literal(l) => out.extend_from_slice(&l.0),
            _ => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Matches `toks` against `t[i..]` to the end; records captures.
fn match_tokens(
    toks: &[Tok],
    t: &[u8],
    i: usize,
    caps: &mut Vec<(Option<FieldId>, usize, usize)>,
) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return i == t.len();
    };
    match first {
        Tok::Lit(l) => t[i..].starts_with(l) && match_tokens(rest, t, i + l.len(), caps),
        Tok::Cap(f, Cap::Text) => {
            // The last place where the following literal, and the rest, match.
            let Some(Tok::Lit(next)) = rest.first() else {
                caps.push((*f, i, t.len()));
                return true;
            };
            // Candidates from the last start down, found by the literal's first byte (a
            // reverse SIMD scan over the few bytes after a user name, no searcher to build).
            let Some(mut hi) = t.len().checked_sub(next.len()) else {
                return false;
            };
            while hi >= i {
                let Some(p) = memchr::memrchr(next[0], &t[i..=hi]) else {
                    return false;
                };
                let at = i + p;
                if starts(&t[at..], next) {
                    let mark = caps.len();
                    caps.push((*f, i, at));
                    if match_tokens(rest, t, at, caps) {
                        return true;
                    }
                    caps.truncate(mark);
                }
                if at == i {
                    return false;
                }
                hi = at - 1;
            }
            false
        }
        Tok::Cap(f, cap) => {
            let Some(e) = extent(*cap, t, i) else {
                return false;
            };
            let mark = caps.len();
            caps.push((*f, i, e));
            if match_tokens(rest, t, e, caps) {
                return true;
            }
            caps.truncate(mark);
            false
        }
    }
}

fn compile_kv(kv: &Value, pm: &yaml_serde::Mapping, table: &mut FieldTable) -> Result<Kv, Problem> {
    let Value::Mapping(km) = kv else {
        return Err(Problem::new(
            "kv must map keys to fields, {SRC: src_ip, ...}",
        ));
    };
    let mut keys: Vec<(Box<[u8]>, FieldId)> = Vec::new();
    for (k, f) in km {
        let (Some(k), Some(f)) = (scalar_text(k), scalar_text(f)) else {
            return Err(Problem::new("kv: keys and fields must be text"));
        };
        if k.is_empty() || k.contains([' ', '=']) {
            return Err(Problem::new(format!(
                "kv: key {k:?} can never be the text before a token's '='"
            ))
            .near(k));
        }
        keys.push((k.into_bytes().into(), table.intern(&f)));
    }
    if keys.is_empty() || keys.len() > 32 {
        return Err(Problem::new("kv: give 1 to 32 keys"));
    }
    let mut require = 0u32;
    for r in pm.get("require").map(string_list).unwrap_or_default() {
        let Some(k) = keys.iter().position(|(n, _)| **n == *r.as_bytes()) else {
            return Err(
                Problem::new(format!("kv: require names {r:?}, not one of the keys")).near(r),
            );
        };
        require |= 1 << k;
    }
    let text = |key: &str| pm.get(key).and_then(scalar_text);
    let stop = match text("stop") {
        None => None,
        Some(s) if s.len() == 1 => Some(s.as_bytes()[0]),
        Some(s) => {
            return Err(Problem::new(format!(
                "kv: stop is one character, not {s:?}"
            )));
        }
    };
    let mut by_first = Box::new([0u32; 256]);
    for (b, (k, _)) in keys.iter().enumerate() {
        by_first[usize::from(k[0])] |= 1 << b;
    }
    Ok(Kv {
        by_first,
        keys,
        from: text("from")
            .filter(|f| !f.is_empty())
            .map(|f| memchr::memmem::Finder::new(f.as_bytes()).into_owned()),
        prefix: text("prefix").map(|f| table.intern(&f)),
        stop,
        require,
    })
}

fn compile_classify(to: &Value, spec: &Value, table: &mut FieldTable) -> Result<Classify, Problem> {
    let to = scalar_text(to).ok_or_else(|| Problem::new("classify: field names must be text"))?;
    let bad = || {
        Problem::new(format!(
            "classify {to}: give {{from: FIELD, values: {{VALUE: [words]}}}}"
        ))
        .near(to.clone())
    };
    let Value::Mapping(sm) = spec else {
        return Err(bad());
    };
    let from = sm.get("from").and_then(scalar_text).ok_or_else(bad)?;
    let Some(Value::Mapping(vm)) = sm.get("values") else {
        return Err(bad());
    };
    let mut classes = Vec::new();
    for (value, words) in vm {
        let value = scalar_text(value).ok_or_else(bad)?;
        let words = string_list(words);
        if words.is_empty() {
            return Err(bad());
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&words)
            .map_err(|e| Problem::new(format!("classify {to}: {e}")))?;
        classes.push((value.into_bytes().into(), ac));
    }
    Ok(Classify {
        to: table.intern(&to),
        from: table.intern(&from),
        classes,
    })
}

fn compile_def(d: &Def, class: u16, table: &mut FieldTable) -> Result<Extractor, Problem> {
    let m = &d.doc;
    let mut select = Select::default();
    match m.get("select") {
        Some(Value::Mapping(s)) => {
            for (k, v) in s {
                let k = scalar_text(k).unwrap_or_default();
                match k.as_str() {
                    "appname" => {
                        select.appnames = string_list(v)
                            .into_iter()
                            .map(|x| x.into_bytes().into())
                            .collect()
                    }
                    "appname_prefix" => {
                        select.appname_prefixes = string_list(v)
                            .into_iter()
                            .map(|x| x.into_bytes().into())
                            .collect()
                    }
                    "message_prefix" => {
                        select.message_prefix = scalar_text(v).map(|x| x.into_bytes().into())
                    }
                    "message_regex" => {
                        let src = scalar_text(v).ok_or_else(|| {
                            Problem::new("select.message_regex must be a string").near(k.clone())
                        })?;
                        let re = regex::bytes::Regex::new(&src).map_err(|e| {
                            Problem::new(format!("message_regex {src:?}: {e}")).near(src.clone())
                        })?;
                        select.message_regex = Some(re);
                        select.message_gate = StartGate::for_regex(&src);
                        select.message_literal = required_literal(&src)
                            .map(|l| memchr::memmem::Finder::new(&l).into_owned());
                    }
                    "has" => {
                        select.has = string_list(v).iter().map(|f| table.intern(f)).collect();
                    }
                    "fields" => {
                        let Value::Mapping(fm) = v else {
                            return Err(Problem::new("select.fields must map fields to values")
                                .near("fields"));
                        };
                        for (fk, fv) in fm {
                            let fk = scalar_text(fk).unwrap_or_default();
                            // One value, or a list of values any of which selects.
                            let values: Vec<Box<[u8]>> = match fv {
                                Value::Sequence(vs) => vs
                                    .iter()
                                    .map(|x| scalar_text(x).map(|t| t.into_bytes().into()))
                                    .collect::<Option<_>>(),
                                one => scalar_text(one).map(|t| vec![t.into_bytes().into()]),
                            }
                            .filter(|vs: &Vec<Box<[u8]>>| !vs.is_empty())
                            .ok_or_else(|| {
                                Problem::new(
                                    "select.fields values must be scalars or lists of scalars",
                                )
                            })?;
                            select.fields.push((table.intern(&fk), values));
                        }
                    }
                    other => {
                        return Err(Problem::new(format!(
                            "select: unknown key {other:?} (appname, appname_prefix, message_prefix, message_regex, fields, has)"
                        ))
                        .near(other));
                    }
                }
            }
        }
        _ => return Err(Problem::new("an extractor needs select:").near("select")),
    }
    if select.appnames.is_empty()
        && select.appname_prefixes.is_empty()
        && select.message_prefix.is_none()
        && select.message_regex.is_none()
        && select.fields.is_empty()
        && select.has.is_empty()
    {
        return Err(Problem::new("select names nothing to select by"));
    }
    let mut patterns = Vec::new();
    if let Some(Value::Sequence(ps)) = m.get("patterns") {
        for p in ps {
            let Value::Mapping(pm) = p else {
                return Err(Problem::new(
                    "each pattern must be a map with match or regex",
                ));
            };
            let sets = constants(pm.get("set"), table)?;
            let (matcher, lead) = if let Some(src) = pm.get("match").and_then(scalar_text) {
                let toks = compile_pattern(&src, table).map_err(|e| e.near(src.clone()))?;
                let lead = match toks.first() {
                    Some(Tok::Lit(l)) => l.clone(),
                    _ => Box::default(),
                };
                (Matcher::Tokens(toks), lead)
            } else if let Some(src) = pm.get("regex").and_then(scalar_text) {
                let (r, lead) = compile_regex(&src, table)?;
                (Matcher::Regex(Box::new(r)), lead)
            } else if let Some(kv) = pm.get("kv") {
                (
                    Matcher::Kv(Box::new(compile_kv(kv, pm, table)?)),
                    Box::default(),
                )
            } else {
                return Err(Problem::new("a pattern needs match:, regex: or kv:"));
            };
            let field = pm
                .get("field")
                .and_then(scalar_text)
                .map(|f| table.intern(&f));
            let nil = pm
                .get("nil")
                .and_then(scalar_text)
                .map(|n| n.into_bytes().into());
            patterns.push(Pattern {
                matcher,
                field,
                lead,
                nil,
                sets,
            });
        }
    }
    let mut copies = Vec::new();
    if let Some(Value::Mapping(cm)) = m.get("copy") {
        for (to, from) in cm {
            let (Some(to), Some(from)) = (scalar_text(to), scalar_text(from)) else {
                return Err(Problem::new("copy must map new fields to existing ones"));
            };
            copies.push((table.intern(&to), table.intern(&from)));
        }
    }
    let mut maps = Vec::new();
    match m.get("map") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(mm)) => {
            for (f, t) in mm {
                let f =
                    scalar_text(f).ok_or_else(|| Problem::new("map: field names must be text"))?;
                let Value::Mapping(tm) = t else {
                    return Err(Problem::new(format!(
                        "map {f}: give the values to translate, {{from: to, ...}}"
                    ))
                    .near(f));
                };
                let mut pairs = Vec::new();
                for (from, to) in tm {
                    let (Some(from), Some(to)) = (scalar_text(from), scalar_text(to)) else {
                        return Err(
                            Problem::new(format!("map {f}: values must be scalars")).near(f)
                        );
                    };
                    pairs.push((from.into_bytes().into(), to.into_bytes().into()));
                }
                maps.push((table.intern(&f), pairs));
            }
        }
        Some(_) => return Err(Problem::new("map must map fields to {from: to} tables")),
    }
    let mut times = Vec::new();
    match m.get("time") {
        None | Some(Value::Null) => {}
        Some(Value::Sequence(alts)) => {
            for a in alts {
                let names = match a {
                    Value::Sequence(_) => string_list(a),
                    other => scalar_text(other).into_iter().collect(),
                };
                if names.is_empty() {
                    return Err(Problem::new(
                        "time: each entry is a field or a list of fields (joined by a space)",
                    ));
                }
                times.push(names.iter().map(|n| table.intern(n)).collect());
            }
        }
        Some(one) => match scalar_text(one) {
            Some(n) => times.push(vec![table.intern(&n)]),
            None => return Err(Problem::new("time: a field or a list of alternatives")),
        },
    }
    let classify = match m.get("classify") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Mapping(cm)) => cm
            .iter()
            .map(|(to, spec)| compile_classify(to, spec, table))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Problem::new("classify must map fields to {from, values}")),
    };
    Ok(Extractor {
        name: d.name.clone(),
        select,
        class,
        patterns,
        copies,
        maps,
        classify,
        times,
        sets: constants(m.get("set"), table)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal a regex's every match contains, or none when there is no such literal.
    #[test]
    fn required_literals_of_regexes() {
        let lit = |s: &str| required_literal(s).map(|l| String::from_utf8(l).unwrap());
        assert_eq!(
            lit(r"^(?:[^\s:]+:\d+ )?[0-9A-Fa-f.:]+ \S+ \S+ \[\d\d/\w{3}/\d{4}:").as_deref(),
            Some(" [")
        );
        assert_eq!(lit(r"IN=\S* OUT=\S* ").as_deref(), Some(" OUT="));
        assert_eq!(
            lit(r"^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}\] \[").as_deref(),
            Some("] [")
        );
        assert_eq!(
            lit(r"(?i)failed"),
            None,
            "case-insensitive text is no literal"
        );
        assert_eq!(lit(r"a|b"), None);
        assert_eq!(lit(r"\d+"), None);
        assert_eq!(
            lit(r"["),
            None,
            "a bad regex has none (its error is reported elsewhere)"
        );
    }

    /// The anchored regexes of select, and corner cases of the gate: a match found only at
    /// the end of input, Unicode classes and literals, a Unicode word boundary.
    const GATED: &[&str] = &[
        r"^(?:[^\s:]+:\d+ )?[0-9A-Fa-f.:]+ \S+ \S+ \[\d\d/\w{3}/\d{4}:",
        r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[[a-z]+\] \d+#\d+: ",
        r"^\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}\] \[",
        r"^ab$",
        r"^a\w+é",
        r"^\w+\b ",
        r"^(?i)straße\p{Greek}",
        r"^(?-u:\xFF)x",
    ];

    /// Regexes not anchored at the start whose every match starts with one literal.
    const LEAD: &[&str] = &[r"IN=\S* OUT=\S* ", r"user=\w+\b", r"é\s+x$"];

    #[test]
    fn start_gates_only_for_anchored_regexes() {
        for r in GATED {
            assert!(StartGate::new(&[r]).is_some(), "{r}");
        }
        assert!(StartGate::new(GATED).is_some(), "one gate for all");
        for r in [r"IN=\S* OUT=\S* ", r"a|^b", "["] {
            assert!(StartGate::new(&[r]).is_none(), "{r}");
        }
        for r in LEAD {
            assert!(StartGate::for_regex(r).is_some(), "{r}");
        }
        for r in [r"a|b", r"\d+x", r"(?i)in=", "["] {
            assert!(StartGate::for_regex(r).is_none(), "{r}");
        }
        let nf = StartGate::for_regex(LEAD[0]).unwrap();
        assert_eq!(nf.decide(b"X: IN=eth0 OUT= MAC=1"), Some(true));
        assert_eq!(nf.decide(b"X: IN=eth0 MAC=1 IN=a OUT= "), Some(true));
        assert_eq!(nf.decide(b"X: IN=eth0 MAC=1"), Some(false));
        assert_eq!(
            nf.decide("IN=é OUT= ".as_bytes()),
            None,
            "non-ASCII: the regex decides"
        );
        let wb = StartGate::for_regex(LEAD[1]).unwrap();
        assert_eq!(
            wb.decide(b"user=ab c"),
            None,
            "a dropped word boundary: the regex decides"
        );
        let web = StartGate::new(&[GATED[0]]).unwrap();
        assert!(!web.admits(b"Started Session 1 of User u2."));
        assert!(web.admits(b"203.0.113.7 - - [25/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\""));
        assert!(web.admits("ж:1 ::1 é é [01/Ноя/2026:".as_bytes()));
    }

    proptest::proptest! {
                /// A gate never turns away a text one of its regexes matches, and what it decides
        /// alone, it decides as the regex does.
        #[test]
        fn start_gate_admits_every_match(
            which in 0..GATED.len() + LEAD.len(),
                        text in crate::testkit::texts(
                &[
                    "1.2.3.4",
                    " - - [25/Nov/2026:",
                    "2026/11/25 10:00:00 [error] 12#0: ",
                    "[Wed Nov 25 10:00:00.123 2026] [",
                    "vhost:443 ",
                    "STRASSE",
                    "IN=eth0 OUT= ",
                    "user=",
                ],
                &["[ -~]{0,6}", "[aé1 :/\\[\\]ßΩж]{0,4}"],
                6,
            ),
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..3),
        ) {
            let src = GATED.iter().chain(LEAD).nth(which).unwrap();
            let mut t = text.into_bytes();
            t.extend(raw);
            let re = regex::bytes::Regex::new(src).unwrap();
            let alone = StartGate::for_regex(src).unwrap();
            let m = re.is_match(&t);
            if let Some(d) = alone.decide(&t) {
                proptest::prop_assert_eq!(d, m, "{} on {:?}", src, t);
            }
            if m {
                proptest::prop_assert!(alone.admits(&t), "{} on {:?}", src, t);
                if which < GATED.len() {
                    let all = StartGate::new(GATED).unwrap();
                    proptest::prop_assert!(all.admits(&t), "all, {} on {:?}", src, t);
                }
            }
        }
    }

    #[test]
    fn regex_patterns_dispatch_on_their_anchored_prefix() {
        let pre = |s: &str| anchored_prefix(s).map(|l| String::from_utf8(l).unwrap());
        assert_eq!(
            pre(r"^pam_unix\((?P<service>[^:()\s]+):session\): ").as_deref(),
            Some("pam_unix(")
        );
        assert_eq!(pre(r"pam_unix\(").as_deref(), None, "not anchored");
        assert_eq!(
            pre(r"(?m)^pam").as_deref(),
            None,
            "a line start is no message start"
        );
        assert_eq!(pre(r"^(?i)pam").as_deref(), None);
        assert_eq!(pre(r"^\s*(?P<user>\S+) : ").as_deref(), None);
        // The prefix and the required literal turn lines away; what passes them still
        // matches exactly as the regex says, captures included.
        let yaml = r#"
name: t
select: {appname: [sudo]}
patterns:
  - regex: '^\s*(?P<user>\S+) : (?P<attempts>\d+) incorrect password attempts? ; COMMAND=(?P<command>.*)$'
    set: {outcome: failure}
  - regex: '^pam_unix\((?P<service>[^:()\s]+):session\): session opened for user (?P<target_user>\S+)'
    set: {action: session_open}
  - regex: '^\s*(?P<user>\S+) : COMMAND=(?P<command>.*)$'
    set: {outcome: success}
"#;
        let (f, _, matched) = run(
            yaml,
            "<85>Nov 25 10:00:00 h sudo:   bob : COMMAND=/bin/ls -l",
        );
        assert!(matched);
        assert_eq!(field(&f, "user"), Some("bob"));
        assert_eq!(field(&f, "command"), Some("/bin/ls -l"));
        assert_eq!(field(&f, "outcome"), Some("success"));
        let (f, _, _) = run(
            yaml,
            "<85>Nov 25 10:00:00 h sudo:   bob : 3 incorrect password attempts ; COMMAND=/bin/ls",
        );
        assert_eq!(field(&f, "attempts"), Some("3"));
        assert_eq!(field(&f, "outcome"), Some("failure"));
        let (f, _, _) = run(
            yaml,
            "<85>Nov 25 10:00:00 h sudo: pam_unix(sudo:session): session opened for user root by bob(uid=0)",
        );
        assert_eq!(field(&f, "service"), Some("sudo"));
        assert_eq!(field(&f, "target_user"), Some("root"));
        let (_, _, matched) = run(yaml, "<85>Nov 25 10:00:00 h sudo: pam_unix(sudo:auth): x");
        assert!(!matched);
    }

    proptest::proptest! {
        /// The fast IPv4 check accepts exactly what the standard parser accepts.
        #[test]
        fn ipv4_check_agrees_with_std(s in "[0-9.]{0,18}|([0-9]{1,3}\\.){3}[0-9]{1,3}") {
            proptest::prop_assert_eq!(crate::event::dotted_quad(s.as_bytes()).is_some(), s.parse::<std::net::Ipv4Addr>().is_ok(), "{}", s);
        }
    }

    /// A `kv:` pattern reads the first occurrence of each key up to `stop`, gives the prefix
    /// without the printk stamp, and fails when a required key is missing; `classify` names
    /// the verdict from the prefix.
    #[test]
    fn kv_patterns_and_classify() {
        let yaml = r#"
name: nf
select: {appname: [kernel]}
patterns:
  - kv: {IN: in, SRC: src_ip, DST: dst_ip, SPT: src_port, PROTO: proto}
    from: "IN="
    prefix: rule
    stop: "["
    require: [SRC, DST]
classify:
  action: {from: rule, values: {deny: [drop, reject], allow: [accept]}}
"#;
        let line = "<4>Nov 25 10:00:01 fw kernel: [  12.5] FW-Drop: IN=eth0 OUT= MACSRC=aa SRC=10.0.0.1 DST=10.0.0.2 PROTO=ICMP TYPE=3 [SRC=10.0.0.2 DST=10.0.0.1 PROTO=UDP SPT=53 DPT=9]";
        let (f, _, matched) = run(yaml, line);
        assert!(matched);
        let get = |k: &str| field(&f, k);
        assert_eq!(get("rule"), Some("FW-Drop:"));
        assert_eq!(get("src_ip"), Some("10.0.0.1"));
        assert_eq!(get("dst_ip"), Some("10.0.0.2"));
        assert_eq!(get("proto"), Some("ICMP"));
        assert_eq!(
            get("src_port"),
            None,
            "the quoted packet's port is not this one's"
        );
        assert_eq!(get("action"), Some("deny"));
        let (f, _, matched) = run(
            yaml,
            "<4>Nov 25 10:00:01 fw kernel: ACCEPT IN=eth0 SRC=10.0.0.1 PROTO=TCP",
        );
        assert!(!matched, "DST is required: {f:?}");
        let (f, _, _) = run(
            yaml,
            "<4>Nov 25 10:00:01 fw kernel: IN=eth0 SRC=1.1.1.1 DST=2.2.2.2 SPT=7",
        );
        assert_eq!(field(&f, "src_port"), Some("7"));
        assert!(f.iter().all(|(n, _)| n != "rule" && n != "action"), "{f:?}");
    }

    /// `nil: "-"` leaves captures that say "no value" unset; other captures are kept.
    #[test]
    fn nil_captures_are_not_set() {
        let yaml = "name: w\nselect: {appname: [web]}\npatterns:\n  - regex: '^(?P<user>\\S+) (?P<bytes>\\S+)'\n    nil: \"-\"\n";
        let (f, _, matched) = run(yaml, "<14>Nov 25 10:00:01 h web: - 512");
        assert!(matched);
        assert_eq!(field(&f, "user"), None);
        assert_eq!(field(&f, "bytes"), Some("512"));
        let (f, _, _) = run(yaml, "<14>Nov 25 10:00:01 h web: alice -");
        assert_eq!(field(&f, "user"), Some("alice"));
        assert_eq!(field(&f, "bytes"), None);
    }

    /// Bad `kv:` and `classify:` definitions are load errors that say what is wrong.
    #[test]
    fn kv_and_classify_errors() {
        for (yaml, want) in [
            (
                "name: a\nselect: {appname: [k]}\npatterns:\n  - kv: {SRC: s}\n    require: [DST]\n",
                "not one of the keys",
            ),
            (
                "name: a\nselect: {appname: [k]}\npatterns:\n  - kv: {SRC: s}\n    stop: '[['\n",
                "one character",
            ),
            (
                "name: a\nselect: {appname: [k]}\nclassify: {action: {from: rule}}\n",
                "classify action",
            ),
        ] {
            let path: Arc<str> = Arc::from("t.yml");
            let (defs, errs) = parse_defs(&path, yaml);
            assert!(errs.is_empty(), "{errs:?}");
            let mut table = FieldTable::new();
            let (_, errs) = Extractors::build(&defs, |_| 0, &mut table);
            assert!(
                errs.iter().any(|e| e.to_string().contains(want)),
                "{yaml}: {errs:?}"
            );
        }
    }

    fn toks(p: &str) -> (Vec<Tok>, FieldTable) {
        let mut t = FieldTable::new();
        (compile_pattern(p, &mut t).unwrap(), t)
    }

    fn caps(p: &str, s: &str) -> Option<Vec<(String, String)>> {
        let (tk, t) = toks(p);
        let mut c = Vec::new();
        match_tokens(&tk, s.as_bytes(), 0, &mut c).then(|| {
            c.iter()
                .filter_map(|(f, a, e)| f.map(|f| (t.name(f).to_string(), s[*a..*e].to_string())))
                .collect()
        })
    }

    #[test]
    fn typed_captures() {
        let p = "Failed {method:word} for {user:text} from {src_ip:ip} port {src_port:int} {proto:word}";
        let c = caps(
            p,
            "Failed password for root from 203.0.113.7 port 51234 ssh2",
        )
        .unwrap();
        assert_eq!(c[1], ("user".into(), "root".into()));
        assert_eq!(c[2], ("src_ip".into(), "203.0.113.7".into()));
        assert_eq!(c[3], ("src_port".into(), "51234".into()));
        assert!(caps(p, "Failed password for root from nohost port 51234 ssh2").is_none());
        assert!(caps(p, "Failed password for root from 1.2.3.4 port x ssh2").is_none());
    }

    #[test]
    fn text_takes_the_last_match_so_user_names_cannot_spoof_addresses() {
        let p = "Failed password for invalid user {user:text} from {src_ip:ip} port {src_port:int} ssh2";
        let c = caps(
            p,
            "Failed password for invalid user x from 10.0.0.1 port 1 ssh2 from 203.0.113.9 port 4242 ssh2",
        )
        .unwrap();
        assert_eq!(c[0].1, "x from 10.0.0.1 port 1 ssh2");
        assert_eq!(c[1].1, "203.0.113.9");
        let c = caps(
            p,
            "Failed password for invalid user some body from ::1 port 22 ssh2",
        )
        .unwrap();
        assert_eq!(c[0].1, "some body");
        assert_eq!(c[1].1, "::1");
    }

    #[test]
    fn whole_message_unless_rest() {
        assert!(
            caps(
                "Accepted {m:word} for {u:word}",
                "Accepted password for bob from x"
            )
            .is_none()
        );
        let c = caps(
            "Accepted {m:word} for {u:word}{_:rest}",
            "Accepted password for bob from x",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        let c = caps("cmd={c:quoted} ok", r#"cmd="ls -la" ok"#).unwrap();
        assert_eq!(c[0].1, "\"ls -la\"");
    }

    /// Builds extractors from YAML, parses `line` (UTC, or `tz`), applies them; returns the
    /// event's fields as text, its time (RFC 3339) and whether a pattern matched.
    fn run_in(yaml: &str, line: &str, tz: &str) -> (Vec<(String, String)>, Option<String>, bool) {
        use crate::event::{Event, Timestamp};
        use crate::parser::{Parser, ParserConfig};
        let (defs, errs) = parse_defs(&Arc::from("t.yml"), yaml);
        assert!(errs.is_empty(), "{errs:?}");
        let mut table = FieldTable::new();
        let cfg = ParserConfig {
            tz: Tz::parse(tz).unwrap(),
            ..ParserConfig::default()
        };
        cfg.register(&mut table);
        let (x, errs) = Extractors::build(&defs, |_| 1, &mut table);
        assert!(errs.is_empty(), "{errs:?}");
        let table = Arc::new(table);
        let mut p = Parser::new(table.clone(), cfg);
        let mut buf = EventBuf::new();
        // Received 2026-11-25T12:00:00Z: the year of year-less header stamps.
        let _ = p.parse(
            line.as_bytes(),
            Timestamp(1_795_608_000 * 1_000_000_000),
            &mut buf,
        );
        let matched = x.apply_in_zone(line.as_bytes(), &mut buf, p.zone_mut());
        let ev = Event::new(line.as_bytes(), &buf);
        let mut tmp = Vec::new();
        let fields = ev
            .fields()
            .map(|(n, v)| {
                let n = String::from_utf8_lossy(n.resolve(&table)).into_owned();
                (n, String::from_utf8_lossy(v.text(&mut tmp)).into_owned())
            })
            .collect();
        let time = buf.time().map(|t| {
            let mut o = Vec::new();
            t.write_rfc3339(&mut o);
            String::from_utf8(o).unwrap()
        });
        (fields, time, matched)
    }

    fn run(yaml: &str, line: &str) -> (Vec<(String, String)>, Option<String>, bool) {
        run_in(yaml, line, "UTC")
    }

    fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
        // The newest value: `fields()` lists shadowed values too, oldest first.
        fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    const WEB: &str = r#"
name: web
select:
  message_regex: '^\S+ \S+ \S+ \[\d\d/\w{3}/\d{4}:'
set: {action: request}
patterns:
  - regex: '^(?P<src_ip>\S+) \S+ \S+ \[(?P<log_time>[^\]]+)\] "(?P<http_method>\S+) (?P<url>\S+)'
copy: {c-ip: src_ip, cs-method: http_method}
time: [log_time]
"#;

    #[test]
    fn message_regex_selects_lines_without_an_appname() {
        let line =
            r#"203.0.113.7 - - [25/Nov/2026:10:00:01 +0100] "GET /x HTTP/1.1" 404 1 "-" "-""#;
        let (f, t, matched) = run(WEB, line);
        assert!(matched);
        assert_eq!(field(&f, "action"), Some("request"));
        assert_eq!(field(&f, "src_ip"), Some("203.0.113.7"));
        assert_eq!(t.as_deref(), Some("2026-11-25T09:00:01Z"));
        // Another line is not selected: no constants, no fields.
        let (f, t, matched) = run(WEB, "hello world");
        assert!(!matched);
        assert_eq!(field(&f, "action"), None);
        assert_eq!(t, None);
    }

    #[test]
    fn copies_alias_pattern_captures() {
        let line =
            r#"203.0.113.7 - - [25/Nov/2026:10:00:01 +0000] "POST /login HTTP/1.1" 200 1 "-" "-""#;
        let (f, _, _) = run(WEB, line);
        assert_eq!(field(&f, "c-ip"), Some("203.0.113.7"));
        assert_eq!(field(&f, "cs-method"), Some("POST"));
    }

    #[test]
    fn maps_translate_known_values_and_keep_others() {
        let yaml = r#"
name: fw
select: {message_prefix: "date="}
copy: {src_ip: srcip}
map:
  proto: {"6": tcp, "17": udp}
  action: {accept: allow, close: allow}
time: [eventtime, [date, time, tz], [date, time]]
"#;
        let (f, t, _) = run(
            yaml,
            r#"<189>date=2026-11-25 time=11:00:01 tz="+0100" srcip=203.0.113.7 proto=6 action="close""#,
        );
        assert_eq!(field(&f, "src_ip"), Some("203.0.113.7"));
        assert_eq!(field(&f, "proto"), Some("tcp"));
        assert_eq!(field(&f, "action"), Some("allow"));
        assert_eq!(t.as_deref(), Some("2026-11-25T10:00:01Z"));
        let (f, t, _) = run(
            yaml,
            r#"<189>date=2026-11-25 time=10:00:01 eventtime=1795600801412345678 proto=47 action="deny""#,
        );
        assert_eq!(field(&f, "proto"), Some("47"));
        assert_eq!(field(&f, "action"), Some("deny"));
        assert_eq!(t.as_deref(), Some("2026-11-25T10:00:01.412345678Z"));
        // The last alternative, in the input's zone.
        let (_, t, _) = run_in(yaml, "<189>date=2026-11-25 time=15:00:01 proto=6", "+05:00");
        assert_eq!(t.as_deref(), Some("2026-11-25T10:00:01Z"));
    }

    #[test]
    fn a_stamp_that_does_not_parse_leaves_the_header_time() {
        let yaml = r#"
name: n
select: {appname: [nginx]}
patterns:
  - regex: '^(?P<log_time>\S+ \S+) \['
time: log_time
"#;
        let (_, t, matched) = run(
            yaml,
            "<190>Nov 25 10:00:01 web01 nginx: 2026/13/45 99:00:01 [error] x",
        );
        assert!(matched);
        assert_eq!(t.as_deref(), Some("2026-11-25T10:00:01Z"));
        let (_, t, _) = run(
            yaml,
            "<190>Nov 25 10:00:01 web01 nginx: 2026/11/25 10:00:02 [error] x",
        );
        assert_eq!(t.as_deref(), Some("2026-11-25T10:00:02Z"));
    }

    #[test]
    fn bad_new_keys_are_errors() {
        for yaml in [
            "name: a\nselect: {message_regex: '('}\n",
            "name: a\nselect: {appname: [x]}\nmap: {proto: tcp}\n",
            "name: a\nselect: {appname: [x]}\nmap: [proto]\n",
            "name: a\nselect: {appname: [x]}\ntime: [[]]\n",
        ] {
            let (defs, errs) = parse_defs(&Arc::from("t.yml"), yaml);
            assert!(errs.is_empty());
            let mut table = FieldTable::new();
            let (_, errs) = Extractors::build(&defs, |_| 0, &mut table);
            assert_eq!(errs.len(), 1, "{yaml}");
        }
    }

    #[test]
    fn bad_patterns_are_errors() {
        let mut t = FieldTable::new();
        assert!(compile_pattern("{a:text}{b:word}", &mut t).is_err());
        assert!(compile_pattern("{a:rest} x", &mut t).is_err());
        assert!(compile_pattern("{a:float}", &mut t).is_err());
        assert!(compile_pattern("{a", &mut t).is_err());
    }

    /// A pattern with `field:` matches that field's text, not the message; the first
    /// pattern that matches wins, and an absent or non-text field matches nothing.
    #[test]
    fn field_patterns_match_another_field() {
        use crate::event::{Event, Timestamp, Value};
        let yaml = r#"
name: t
select: {fields: {Channel: Security}}
copy: {user: TargetUserName}
patterns:
  - field: IpAddress
    match: "::ffff:{src_ip:ip}"
  - field: IpAddress
    match: "{src_ip:ip}"
  - match: "An account failed to log on.{_:rest}"
    set: {rendered: "yes"}
"#;
        let path: Arc<str> = Arc::from("t.yml");
        let (defs, errs) = parse_defs(&path, yaml);
        assert!(errs.is_empty());
        let mut t = FieldTable::new();
        let (x, errs) = Extractors::build(&defs, |_| 0, &mut t);
        assert!(errs.is_empty(), "{errs:?}");
        let id = |n: &str| t.get(n.as_bytes()).unwrap();
        let (channel, ip, user, src_ip) = (
            id("Channel"),
            id("IpAddress"),
            id("TargetUserName"),
            id("src_ip"),
        );
        let run = |ip_value: Option<&str>, message: Option<&str>| {
            let mut buf = EventBuf::new();
            buf.reset(t.len(), Timestamp(1));
            let v = buf.push_scratch(b"Security");
            buf.set(channel, Repr::Str(v));
            let v = buf.push_scratch(b"alice");
            buf.set(user, Repr::Str(v));
            if let Some(a) = ip_value {
                let v = buf.push_scratch(a.as_bytes());
                buf.set(ip, Repr::Str(v));
            }
            if let Some(m) = message {
                let v = buf.push_scratch(m.as_bytes());
                buf.set(FieldId::MESSAGE, Repr::Str(v));
            }
            let matched = x.apply(b"", &mut buf);
            let ev = Event::new(b"", &buf);
            let text = |f| match ev.get(f) {
                Some(Value::Str(s)) => Some(String::from_utf8_lossy(s).into_owned()),
                _ => None,
            };
            (
                matched,
                text(src_ip),
                text(id("user")),
                text(id("rendered")),
            )
        };
        let alice = Some("alice".to_string());
        assert_eq!(
            run(Some("::ffff:203.0.113.7"), None),
            (true, Some("203.0.113.7".into()), alice.clone(), None)
        );
        assert_eq!(
            run(Some("198.51.100.4"), None),
            (true, Some("198.51.100.4".into()), alice.clone(), None)
        );
        // `-` is no address: the field patterns fail, the message pattern is tried.
        assert_eq!(run(Some("-"), None), (false, None, alice.clone(), None));
        assert_eq!(
            run(Some("-"), Some("An account failed to log on.\n")),
            (true, None, alice.clone(), Some("yes".into()))
        );
        assert_eq!(run(None, None), (false, None, alice, None));
    }

    #[test]
    fn select_fields_takes_any_listed_value() {
        // Raw audit.log lines have no appname and no message: only their fields select them.
        let yaml =
            "name: audit\nselect:\n  fields: {type: [USER_AUTH, ADD_USER]}\nset: {picked: x}\n";
        let path: Arc<str> = "t.yml".into();
        let (defs, errs) = parse_defs(&path, yaml);
        assert!(errs.is_empty());
        let mut table = FieldTable::new();
        let cfg = crate::parser::ParserConfig::default();
        cfg.register(&mut table);
        let (x, errs) = Extractors::build(&defs, |_| 0, &mut table);
        assert!(errs.is_empty(), "{errs:?}");
        let picked = table.get(b"picked").unwrap();
        let mut parser = crate::parser::Parser::new(Arc::new(table), cfg);
        let mut buf = EventBuf::new();
        for (line, selected) in [
            ("type=USER_AUTH msg=audit(1.0:1): pid=1 res=failed", true),
            ("type=ADD_USER msg=audit(1.0:2): pid=1", true),
            ("type=SYSCALL msg=audit(1.0:3): pid=1", false),
            ("kind=USER_AUTH pid=1", false),
        ] {
            parser
                .parse(line.as_bytes(), crate::event::Timestamp(0), &mut buf)
                .unwrap();
            x.apply(line.as_bytes(), &mut buf);
            assert_eq!(buf.get_repr(picked).is_some(), selected, "{line}");
        }
        let bad = "name: b\nselect:\n  fields: {type: []}\n";
        let (defs, _) = parse_defs(&path, bad);
        let (_, errs) = Extractors::build(&defs, |_| 0, &mut FieldTable::new());
        assert_eq!(errs.len(), 1);
    }
}
