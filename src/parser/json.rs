//! JSON objects, as whole lines or as a syslog MSG, flattened to dotted paths.
//!
//! simd-json parses a padded, mutable copy of the text (kept in [`EventBuf`] and reused) into
//! a tape, also reused; strings are unescaped in place inside that copy, so string values are
//! spans into it. Nested objects become dotted names (`Event.System.EventID`); the elements
//! of an array are several values of one name (an array of objects contributes each object's
//! fields under `array.key`), and so are the values of a repeated key. A name the syslog
//! header also has (`message`, `hostname`) replaces the header's value
//! ([`EventBuf::put`]). In [`FieldMode::Known`] a subtree whose path is no prefix of an
//! interned name is skipped without visiting it: the engine extracts only what rules use.
//!
//! Windows events rendered by evtx_dump (`{"Event": {"System": {...}, "EventData": {...}}}`)
//! are flattened to the names Sigma rules use, unless disabled: `Event.System.X`,
//! `Event.EventData.X` and `Event.UserData.<Element>.X` become `X`; an XML element's text
//! (`"EventID": {"#text": 4624, "#attributes": {...}}`) becomes the element's own name, and
//! its attributes `<element>_<attribute>` (`Provider_Name`, `TimeCreated_SystemTime`,
//! `Execution_ProcessID`). So one set of rules and pipelines serves flat (Winlogbeat, NXLog)
//! and evtx-shaped events alike, and `null`/`neq` tests keep their meaning on both.
//!
//! Most documents never reach simd-json: a direct single pass ([`Direct`]) reads the text in
//! place, stores values as spans of the frame and, in [`FieldMode::Known`], neither copies
//! nor unescapes what no rule reads. It accepts only a subset of JSON whose meaning is
//! beyond doubt (integers of at most 17 digits, no floats, the escapes simd-json accepts,
//! nesting up to [`DIRECT_MAX_DEPTH`], no evtx/Winlogbeat root) and gives up on anything
//! else; then nothing it saw is kept and simd-json parses the document as before, so
//! errors, their offsets and every value are what simd-json says. The direct pass exists
//! because simd-json's second stage (a tape of every node, an indirect call per string,
//! then this walk over the tape) cost more than the whole document is worth at ~500 B
//! (issue 2: ≥ 1 M events/s).
//!
//! Winlogbeat (7.x and 8.x, ECS) nests the same data under `winlog`: `winlog.event_data.X`
//! (or `winlog.user_data.X`), `winlog.event_id`, `winlog.channel`, `winlog.computer_name`,
//! `winlog.provider_name`, `winlog.record_id`. Such documents keep their dotted names and
//! also get the Sigma names (`X`, `EventID`, `Channel`, `Computer`, `Provider_Name`,
//! `EventRecordID`), with the same values as given (Winlogbeat 8 writes `event_id` as a
//! string, which number-valued Sigma items match). The System names are stored first, so a
//! `Channel` inside `user_data` (event 104 names the cleared log) is a second value.

use simd_json::{Buffers, Node, StaticNode, Tape};

use super::{Ctx, ParseError, ParseErrorKind};
use crate::event::{EventBuf, FieldId, FieldMode, Repr, Span, Src};

/// Reusable simd-json state for one thread.
pub struct JsonParser {
    buffers: Buffers,
    /// The tape's allocation, kept empty between events.
    tape: Vec<Node<'static>>,
    /// Values the direct pass found, in document order; stored only once the whole
    /// document proved acceptable. Empty between events.
    pending: Vec<Pending>,
    /// Where the direct pass unescapes strings it only validates.
    junk: Vec<u8>,
}

/// One value the direct pass found, to be stored as [`Walker::leaf`] would.
#[derive(Clone, Copy)]
enum Pending {
    Known(FieldId, Repr),
    /// A name nobody interned ([`FieldMode::All`]), kept in scratch.
    Unknown(Span, Repr),
}

impl Default for JsonParser {
    fn default() -> Self {
        Self::new()
    }
}

impl JsonParser {
    pub fn new() -> JsonParser {
        JsonParser {
            buffers: Buffers::new(4096),
            tape: Vec::new(),
            pending: Vec::new(),
            junk: Vec::new(),
        }
    }

    /// Parses the JSON object at `raw[at..]` into fields of `out`.
    pub(crate) fn parse(
        &mut self,
        raw: &[u8],
        at: usize,
        ctx: &mut Ctx<'_>,
        out: &mut EventBuf,
        flatten_evtx: bool,
    ) -> Result<(), ParseError> {
        if self.direct(raw, at, ctx, out, flatten_evtx) {
            return Ok(());
        }
        self.tape(raw, at, ctx, out, flatten_evtx)
    }

    /// Parses with simd-json and walks its tape: every document the direct pass leaves.
    fn tape(
        &mut self,
        raw: &[u8],
        at: usize,
        ctx: &mut Ctx<'_>,
        out: &mut EventBuf,
        flatten_evtx: bool,
    ) -> Result<(), ParseError> {
        let text = &raw[at..];
        // The copy leaves `out` while the tape borrows it, so values can be stored meanwhile.
        let mut work = std::mem::take(&mut out.json);
        work.clear();
        work.extend_from_slice(text);
        work.resize(text.len() + simd_json::INPUT_PADDING, 0);
        let base = work.as_ptr() as usize;
        let mut tape: Tape<'_> = Tape(std::mem::take(&mut self.tape)).reset();
        let res = simd_json::fill_tape_padded(&mut work, text.len(), &mut self.buffers, &mut tape);
        let res = match res {
            Err(e) => Err(ParseError::new(
                ParseErrorKind::Json,
                at + e.index().min(text.len()),
                "invalid JSON",
            )),
            Ok(()) => match tape.0.first() {
                Some(Node::Object { .. }) => {
                    ctx.name_buf.clear();
                    let mut w = Walker {
                        base,
                        ctx,
                        out,
                        evtx: false,
                    };
                    match evtx_root(&tape.0).filter(|_| flatten_evtx) {
                        Some(event) => w.evtx(&tape.0, event),
                        None => {
                            w.object(&tape.0, 0, 0, b'.');
                            if let Some(winlog) = winlog_root(&tape.0).filter(|_| flatten_evtx) {
                                w.winlog(&tape.0, winlog);
                            }
                        }
                    }
                    Ok(())
                }
                _ => Err(ParseError::new(
                    ParseErrorKind::Json,
                    at,
                    "top-level JSON value is not an object",
                )),
            },
        };
        self.tape = tape.reset().0;
        out.json = work;
        res
    }

    /// Tries the direct pass over `raw[at..]`. On success the fields are stored in `out`
    /// and true is returned; otherwise `out` is as it was and simd-json must parse.
    fn direct(
        &mut self,
        raw: &[u8],
        at: usize,
        ctx: &mut Ctx<'_>,
        out: &mut EventBuf,
        flatten_evtx: bool,
    ) -> bool {
        let text = &raw[at..];
        let scratch_len = out.scratch.len();
        ctx.name_buf.clear();
        let mut d = Direct {
            t: text,
            at,
            i: 0,
            ctx,
            scratch: &mut out.scratch,
            pending: &mut self.pending,
            junk: &mut self.junk,
            flatten_evtx,
        };
        let ok = d.document().is_some();
        let since = d.ctx.since;
        if ok {
            for p in self.pending.drain(..) {
                match p {
                    Pending::Known(id, value) => out.put(id, value, since),
                    Pending::Unknown(name, value) => out.add_unknown(name, value),
                }
            }
        } else {
            self.pending.clear();
            out.scratch.truncate(scratch_len);
        }
        ok
    }
}

/// Deepest nesting the direct pass follows; deeper documents go to simd-json.
const DIRECT_MAX_DEPTH: usize = 64;

/// The direct pass: a recursive descent over `t` that mirrors [`Walker`] (same names, same
/// order of values, same subtree skipping) and returns `None` to give up, on invalid JSON
/// and on anything it leaves to simd-json (see the module doc). It writes only to
/// `pending`, `scratch` (unescaped values, unknown names: truncated by the caller on
/// `None`), `junk` and the name buffer.
struct Direct<'a, 'w, 'p> {
    /// The JSON text, `raw[at..]`: the rest of the frame.
    t: &'a [u8],
    /// Offset of `t` in the frame, so that string spans point into the frame.
    at: usize,
    /// Next byte to read. Invariant: `i ≤ t.len()`.
    i: usize,
    ctx: &'w mut Ctx<'p>,
    scratch: &'w mut Vec<u8>,
    pending: &'w mut Vec<Pending>,
    junk: &'w mut Vec<u8>,
    flatten_evtx: bool,
}

/// Where the name of a value is: `name_buf[..path]`, or (a root key without escapes)
/// `t[start..end]`.
#[derive(Clone, Copy)]
enum NameAt {
    Buf(usize),
    Text(usize, usize),
}

/// Where a value goes, decided from its name before the value is read.
enum Target {
    Id(FieldId),
    /// Kept under its name ([`FieldMode::All`]).
    Named,
    /// Nobody reads it: validate only.
    Skip,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in every byte of `w` that is `"`, `\\` or below 0x20 (bits above the first
/// such byte may be spurious, so only its position is meaningful).
#[inline]
fn string_stops(w: u64) -> u64 {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * u64::from(b'"')))
        | zero(w ^ (ONES * u64::from(b'\\')))
        | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// Four hex digits, as simd-json reads them (either case).
#[inline]
fn hex4(h: &[u8]) -> Option<u32> {
    h.iter().try_fold(0u32, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

/// Appends the unescaped form of a string's content (between its quotes) to `out`; `None`
/// for any escape simd-json rejects (unknown escapes, bad hex, lone surrogates).
fn unescape(src: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'\\', &src[i..]) {
        out.extend_from_slice(&src[i..i + p]);
        i += p;
        let c = match *src.get(i + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = hex4(src.get(i + 2..i + 6)?)?;
                i += 6;
                if (0xD800..0xDC00).contains(&cp) {
                    if src.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let low = hex4(src.get(i + 2..i + 6)?)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10 | (low - 0xDC00));
                }
                // A lone low surrogate is no char: rejected here as by simd-json.
                let ch = char::from_u32(cp)?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(c);
        i += 2;
    }
    out.extend_from_slice(&src[i..]);
    Some(())
}

impl Direct<'_, '_, '_> {
    /// The whole text: one object, then only whitespace.
    fn document(&mut self) -> Option<()> {
        self.ws();
        if self.peek()? != b'{' {
            return None;
        }
        self.object(0, 0)?;
        self.ws();
        (self.i == self.t.len()).then_some(())
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.t.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Consumes `b`, or gives up.
    #[inline]
    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.i += 1)
    }

    /// After a member or element: whitespace, then `,` (true) or `close` (false).
    #[inline]
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = self.peek()?;
        self.i += 1;
        if b == b',' {
            self.ws();
            Some(true)
        } else if b == close {
            Some(false)
        } else {
            None
        }
    }

    /// The string whose opening quote is at `i`: returns its content's range in `t` and
    /// whether it has escapes (which are checked only when unescaped: callers must unescape
    /// every string with escapes, if only into `junk`).
    ///
    /// simd-json rejects a document with invalid UTF-8 anywhere. Outside strings the direct
    /// pass accepts only ASCII, so checking here every string that has a byte ≥ 0x80 covers
    /// the whole text without a separate pass over it.
    #[inline(always)]
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        let t = self.t;
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        let mut high = 0;
        loop {
            while let Some(chunk) = t.get(i..i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                let m = string_stops(w);
                if m != 0 {
                    let before = m.trailing_zeros() / 8;
                    // The bytes before the stop (fewer than eight, so the shift is in range).
                    high |= w & HIGH & ((1u64 << (8 * before)) - 1);
                    i += before as usize;
                    break;
                }
                high |= w & HIGH;
                i += 8;
            }
            match *t.get(i)? {
                b'"' => {
                    if high != 0 && std::str::from_utf8(&t[start..i]).is_err() {
                        return None;
                    }
                    self.i = i + 1;
                    return Some((start, i, escaped));
                }
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                0..=0x1f => return None,
                b => {
                    high |= u64::from(b & 0x80);
                    i += 1;
                }
            }
        }
    }

    /// A string nobody reads: checked, not kept.
    #[inline]
    fn skip_string(&mut self) -> Option<()> {
        let (s, e, escaped) = self.string()?;
        if escaped {
            self.junk.clear();
            unescape(&self.t[s..e], self.junk)?;
        }
        Some(())
    }

    /// An integer of at most 17 digits (simd-json's exact fast path gives the same value);
    /// anything else, floats included, is left to simd-json.
    #[inline]
    fn number(&mut self) -> Option<Repr> {
        let t = self.t;
        let neg = t[self.i] == b'-';
        let mut i = self.i + usize::from(neg);
        let first = i;
        let mut n: u64 = 0;
        match *t.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while let Some(&d @ b'0'..=b'9') = t.get(i) {
                    n = n * 10 + u64::from(d - b'0');
                    i += 1;
                    if i - first > 17 {
                        return None;
                    }
                }
            }
            _ => return None,
        }
        if !matches!(
            t.get(i),
            Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
        ) {
            return None;
        }
        self.i = i;
        // As simd-json: negative numbers are I64 (`-0` too), others U64.
        Some(if neg {
            Repr::Int((n as i64).wrapping_neg())
        } else {
            Repr::UInt(n)
        })
    }

    #[inline]
    fn literal(&mut self) -> Option<Repr> {
        let rest = &self.t[self.i..];
        let (r, n) = if rest.starts_with(b"true") {
            (Repr::Bool(true), 4)
        } else if rest.starts_with(b"false") {
            (Repr::Bool(false), 5)
        } else if rest.starts_with(b"null") {
            (Repr::Null, 4)
        } else {
            return None;
        };
        self.i += n;
        Some(r)
    }

    /// Enters the object or array whose opening bracket is at `i`, at nesting `depth`:
    /// `Some(true)` when members follow, `Some(false)` when it closed at once (`close`
    /// consumed), `None` when it is nested too deep for this pass.
    #[inline]
    fn open(&mut self, close: u8, depth: usize) -> Option<bool> {
        if depth > DIRECT_MAX_DEPTH {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(false);
        }
        Some(true)
    }

    /// The object whose `{` is at `i`, under the path `name_buf[..path]`.
    fn object(&mut self, path: usize, depth: usize) -> Option<()> {
        if !self.open(b'}', depth)? {
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let (s, e, escaped) = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let first = self.peek()?;
            if path == 0 && !escaped && first != b'{' && first != b'[' {
                // A scalar member of the root, the common case: its name is the key as it
                // stands in the text, looked up there without building it.
                self.scalar(NameAt::Text(s, e))?;
                if !self.next_or_close(b'}')? {
                    return Some(());
                }
                continue;
            }
            let name = &mut *self.ctx.name_buf;
            name.truncate(path);
            if path > 0 {
                name.push(b'.');
            }
            if escaped {
                unescape(&self.t[s..e], name)?;
            } else {
                name.extend_from_slice(&self.t[s..e]);
            }
            let here = name.len();
            if depth == 0
                && self.flatten_evtx
                && matches!(&self.ctx.name_buf[..], b"Event" | b"winlog")
                && first == b'{'
            {
                // Possibly an evtx_dump or Winlogbeat document: the tape walk knows those.
                return None;
            }
            self.value(here, depth)?;
            if !self.next_or_close(b'}')? {
                return Some(());
            }
        }
    }

    /// The value at `i`, named `name_buf[..path]`, as [`Walker::value`] handles it.
    fn value(&mut self, path: usize, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => {
                if self.wants_subtree(path) {
                    self.object(path, depth + 1)
                } else {
                    self.skip(depth + 1)
                }
            }
            b'[' => {
                if !self.wants_subtree(path) && !self.wants_leaf(path) {
                    return self.skip(depth + 1);
                }
                if !self.open(b']', depth + 1)? {
                    return Some(());
                }
                loop {
                    self.ctx.name_buf.truncate(path);
                    self.value(path, depth + 1)?;
                    if !self.next_or_close(b']')? {
                        return Some(());
                    }
                }
            }
            _ => self.scalar(NameAt::Buf(path)),
        }
    }

    /// The string, number or literal at `i`, named as `at` says.
    #[inline]
    fn scalar(&mut self, at: NameAt) -> Option<()> {
        let target = self.target(at);
        let value = match self.peek()? {
            b'"' => {
                if let Target::Skip = target {
                    return self.skip_string();
                }
                let (s, e, escaped) = self.string()?;
                let span = if escaped {
                    let start = self.scratch.len();
                    unescape(&self.t[s..e], self.scratch)?;
                    Span {
                        src: Src::Scratch,
                        start: start as u32,
                        len: (self.scratch.len() - start) as u32,
                    }
                } else {
                    Span::raw(self.at + s, e - s)
                };
                Repr::Str(span)
            }
            b'-' | b'0'..=b'9' => self.number()?,
            _ => self.literal()?,
        };
        match target {
            Target::Id(id) => self.pending.push(Pending::Known(id, value)),
            Target::Named => {
                let name = match at {
                    NameAt::Buf(path) => &self.ctx.name_buf[..path],
                    NameAt::Text(s, e) => &self.t[s..e],
                };
                let start = self.scratch.len();
                self.scratch.extend_from_slice(name);
                let name = Span {
                    src: Src::Scratch,
                    start: start as u32,
                    len: name.len() as u32,
                };
                self.pending.push(Pending::Unknown(name, value));
            }
            Target::Skip => {}
        }
        Some(())
    }

    /// Checks the value at `i` without storing anything.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => {
                if !self.open(b'}', depth)? {
                    return Some(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return None;
                    }
                    self.skip_string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    self.skip(depth + 1)?;
                    if !self.next_or_close(b'}')? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                if !self.open(b']', depth)? {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.next_or_close(b']')? {
                        return Some(());
                    }
                }
            }
            b'"' => self.skip_string(),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => self.literal().map(drop),
        }
    }

    #[inline]
    fn wants_subtree(&self, path: usize) -> bool {
        self.ctx.mode == FieldMode::All || self.ctx.table.has_prefix(&self.ctx.name_buf[..path])
    }

    #[inline]
    fn wants_leaf(&self, path: usize) -> bool {
        self.ctx.mode == FieldMode::All || self.ctx.table.get(&self.ctx.name_buf[..path]).is_some()
    }

    #[inline]
    fn target(&self, at: NameAt) -> Target {
        let name = match at {
            NameAt::Buf(path) => &self.ctx.name_buf[..path],
            NameAt::Text(s, e) => &self.t[s..e],
        };
        match self.ctx.table.get(name) {
            Some(id) => Target::Id(id),
            None if self.ctx.mode == FieldMode::All => Target::Named,
            None => Target::Skip,
        }
    }
}

/// The index of the `Event` object when the document is evtx_dump-shaped: a root key
/// `Event` whose object has a `System` key.
fn evtx_root(nodes: &[Node<'_>]) -> Option<usize> {
    let mut found = None;
    for_each_key(nodes, 0, |k, v| {
        if k == "Event" && matches!(nodes[v], Node::Object { .. }) {
            let mut system = false;
            for_each_key(nodes, v, |k2, _| system |= k2 == "System");
            if system {
                found = Some(v);
            }
        }
    });
    found
}

/// The index of the `winlog` object when the document is Winlogbeat-shaped: a root key
/// `winlog` whose object has an `event_id` key.
fn winlog_root(nodes: &[Node<'_>]) -> Option<usize> {
    let mut found = None;
    for_each_key(nodes, 0, |k, v| {
        if k == "winlog" && matches!(nodes[v], Node::Object { .. }) {
            let mut event_id = false;
            for_each_key(nodes, v, |k2, _| event_id |= k2 == "event_id");
            if event_id {
                found = Some(v);
            }
        }
    });
    found
}

/// Winlogbeat's `winlog` members that carry Windows' System values, with their Sigma names.
const WINLOG_SYSTEM: &[(&str, &str)] = &[
    ("event_id", "EventID"),
    ("channel", "Channel"),
    ("computer_name", "Computer"),
    ("provider_name", "Provider_Name"),
    ("record_id", "EventRecordID"),
];

/// Calls `f(key, value index)` for every member of the object at `nodes[idx]`.
fn for_each_key(nodes: &[Node<'_>], idx: usize, mut f: impl FnMut(&str, usize)) {
    let Node::Object { len, .. } = nodes[idx] else {
        return;
    };
    let mut i = idx + 1;
    for _ in 0..len {
        let Node::String(key) = nodes[i] else { return };
        f(key, i + 1);
        i += 1 + subtree_len(&nodes[i + 1]);
    }
}

fn subtree_len(n: &Node<'_>) -> usize {
    match n {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

struct Walker<'w, 'p> {
    /// Address of the JSON work copy; string spans are offsets from it.
    base: usize,
    ctx: &'w mut Ctx<'p>,
    out: &'w mut EventBuf,
    /// Inside an evtx_dump `Event`: `#text` and `#attributes` are XML, not names.
    evtx: bool,
}

impl Walker<'_, '_> {
    /// Walks an evtx_dump document whose `Event` object is at `event` (see the module doc).
    fn evtx(&mut self, nodes: &[Node<'_>], event: usize) {
        // Root members other than `Event` keep their names.
        let mut others = Vec::new();
        for_each_key(nodes, 0, |k, v| {
            if v != event {
                others.push((k.as_bytes().to_vec(), v));
            }
        });
        for (k, v) in others {
            self.ctx.name_buf.clear();
            self.ctx.name_buf.extend_from_slice(&k);
            let here = self.ctx.name_buf.len();
            self.value(nodes, v, here);
        }
        self.evtx = true;
        let mut sections = Vec::new();
        for_each_key(nodes, event, |k, v| {
            sections.push((k == "UserData", k.starts_with('#'), v))
        });
        for (user_data, xml, v) in sections {
            if xml || !matches!(nodes[v], Node::Object { .. }) {
                continue;
            }
            if user_data {
                // UserData holds one element named after the event type: its children count.
                let mut inner = Vec::new();
                for_each_key(nodes, v, |_, c| inner.push(c));
                for c in inner {
                    if matches!(nodes[c], Node::Object { .. }) {
                        self.ctx.name_buf.clear();
                        self.object(nodes, c, 0, b'.');
                    }
                }
            } else {
                self.ctx.name_buf.clear();
                self.object(nodes, v, 0, b'.');
            }
        }
        self.evtx = false;
    }

    /// Adds the Sigma names of a Winlogbeat document whose `winlog` object is at `winlog`
    /// (see the module doc); the dotted names were already stored by the normal walk.
    fn winlog(&mut self, nodes: &[Node<'_>], winlog: usize) {
        let mut system = Vec::new();
        let mut data = Vec::new();
        for_each_key(nodes, winlog, |k, v| {
            if let Some(&(_, sigma)) = WINLOG_SYSTEM.iter().find(|(w, _)| *w == k) {
                system.push((sigma, v));
            } else if (k == "event_data" || k == "user_data")
                && matches!(nodes[v], Node::Object { .. })
            {
                data.push(v);
            }
        });
        for (name, v) in system {
            self.ctx.name_buf.clear();
            self.ctx.name_buf.extend_from_slice(name.as_bytes());
            let here = self.ctx.name_buf.len();
            self.value(nodes, v, here);
        }
        for v in data {
            self.ctx.name_buf.clear();
            self.object(nodes, v, 0, b'.');
        }
    }

    /// Walks the object whose header is `nodes[idx]`, under the path `name_buf[..path]`,
    /// joining member names with `sep`. Returns the index after the object.
    fn object(&mut self, nodes: &[Node<'_>], idx: usize, path: usize, sep: u8) -> usize {
        let Node::Object { len, count } = nodes[idx] else {
            unreachable!("object() called on a non-object node")
        };
        let end = idx + count + 1;
        let mut i = idx + 1;
        for _ in 0..len {
            let Node::String(key) = nodes[i] else {
                return end;
            };
            self.ctx.name_buf.truncate(path);
            if self.evtx && key == "#text" && path > 0 {
                // The element's text is the element's value.
                i = self.value(nodes, i + 1, path);
                continue;
            }
            if self.evtx && key == "#attributes" {
                if path > 0 && matches!(nodes[i + 1], Node::Object { .. }) {
                    i = self.object(nodes, i + 1, path, b'_');
                } else {
                    i += 1 + subtree_len(&nodes[i + 1]);
                }
                continue;
            }
            if path > 0 {
                self.ctx.name_buf.push(sep);
            }
            self.ctx.name_buf.extend_from_slice(key.as_bytes());
            let here = self.ctx.name_buf.len();
            i = self.value(nodes, i + 1, here);
        }
        end
    }

    /// Handles the value at `nodes[idx]` named `name_buf[..path]`; returns the next index.
    fn value(&mut self, nodes: &[Node<'_>], idx: usize, path: usize) -> usize {
        match nodes[idx] {
            Node::Object { count, .. } => {
                if self.wants_subtree(path) || self.evtx {
                    self.object(nodes, idx, path, b'.')
                } else {
                    idx + count + 1
                }
            }
            Node::Array { len, count } => {
                let end = idx + count + 1;
                if !self.wants_subtree(path) && !self.wants_leaf(path) {
                    return end;
                }
                let mut i = idx + 1;
                for _ in 0..len {
                    self.ctx.name_buf.truncate(path);
                    i = self.value(nodes, i, path);
                }
                end
            }
            Node::String(s) => {
                let span = Span {
                    src: Src::Json,
                    start: (s.as_ptr() as usize - self.base) as u32,
                    len: s.len() as u32,
                };
                self.leaf(path, Repr::Str(span));
                idx + 1
            }
            Node::Static(st) => {
                let r = match st {
                    StaticNode::I64(i) => Repr::Int(i),
                    StaticNode::U64(u) => Repr::UInt(u),
                    StaticNode::F64(f) => Repr::Float(f),
                    StaticNode::Bool(b) => Repr::Bool(b),
                    StaticNode::Null => Repr::Null,
                };
                self.leaf(path, r);
                idx + 1
            }
        }
    }

    #[inline]
    fn wants_subtree(&self, path: usize) -> bool {
        self.ctx.mode == FieldMode::All || self.ctx.table.has_prefix(&self.ctx.name_buf[..path])
    }

    #[inline]
    fn wants_leaf(&self, path: usize) -> bool {
        self.ctx.mode == FieldMode::All || self.ctx.table.get(&self.ctx.name_buf[..path]).is_some()
    }

    /// Stores one value. Interned and uninterned names must come out alike: whether the
    /// value is an array element, a field of an object inside an array, or a repeated key,
    /// a second value from this document adds to the first (uninterned names can only add),
    /// while the first replaces a header field of that name.
    fn leaf(&mut self, path: usize, value: Repr) {
        let name = &self.ctx.name_buf[..path];
        if let Some(id) = self.ctx.table.get(name) {
            self.out.put(id, value, self.ctx.since);
        } else if self.ctx.mode == FieldMode::All {
            let span = self.out.push_scratch(name);
            self.out.add_unknown(span, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, FieldTable, Timestamp, Value};

    /// What an event holds, comparable across the two paths: names resolved, values owned.
    fn fields_of(table: &FieldTable, raw: &[u8], buf: &EventBuf) -> Vec<(Vec<u8>, String)> {
        Event::new(raw, buf)
            .fields()
            .map(|(n, v)| {
                let v = match v {
                    Value::Str(s) => format!("s:{}", String::from_utf8_lossy(s)),
                    other => format!("{other:?}"),
                };
                (n.resolve(table).to_vec(), v)
            })
            .collect()
    }

    /// Parses `doc` both ways; returns whether the direct pass took it, and panics if the
    /// direct pass accepted what simd-json does not, or stored anything differently.
    fn check(table: &FieldTable, mode: FieldMode, doc: &[u8]) -> bool {
        // A header value first, so that shadowing by the payload is compared too.
        let mut raw = b"header ".to_vec();
        raw.extend_from_slice(doc);
        let at = 7;
        let mut p = JsonParser::new();
        let mut name_buf = Vec::new();
        let mut run = |direct: bool, buf: &mut EventBuf| {
            buf.reset(table.len(), Timestamp(1));
            buf.set(FieldId::MESSAGE, Repr::Str(Span::raw(0, 6)));
            let mut ctx = Ctx {
                table,
                mode,
                name_buf: &mut name_buf,
                since: buf.slot_count(),
            };
            if direct {
                p.direct(&raw, at, &mut ctx, buf, true).then_some(Ok(()))
            } else {
                Some(p.tape(&raw, at, &mut ctx, buf, true))
            }
        };
        let (mut a, mut b) = (EventBuf::new(), EventBuf::new());
        let direct = run(true, &mut a);
        let tape = run(false, &mut b).expect("the tape path always answers");
        let doc_text = String::from_utf8_lossy(doc);
        match direct {
            Some(_) => {
                assert!(
                    tape.is_ok(),
                    "direct accepted what simd-json rejects: {doc_text}"
                );
                assert_eq!(
                    fields_of(table, &raw, &a),
                    fields_of(table, &raw, &b),
                    "{mode:?} {doc_text}"
                );
                true
            }
            None => {
                assert_eq!(a.slot_count(), 1, "a failed direct pass left values behind");
                assert!(
                    a.scratch.is_empty(),
                    "a failed direct pass left scratch behind"
                );
                false
            }
        }
    }

    fn table() -> FieldTable {
        let mut t = FieldTable::new();
        for n in [
            "EventID",
            "a",
            "a.b",
            "arr",
            "arr.x",
            "deep.er.est",
            "u",
            "n",
            "",
            "x",
            "Event",
        ] {
            t.intern(n);
        }
        t
    }

    #[test]
    fn direct_pass_agrees_with_simd_json() {
        let t = table();
        // (document, the direct pass takes it)
        let cases: &[(&str, bool)] = &[
            (r#"{"EventID":4625,"message":"m","other":"o"}"#, true),
            (
                r#" { "a" : { "b" : -12 , "c" : [1, 2] } , "n" : null } "#,
                true,
            ),
            (r#"{"a":{"b":{"c":1}},"a.b":"flat","a":"again"}"#, true),
            (
                r#"{"arr":[{"x":1},{"x":"two"},[{"x":true}],3],"arr":false}"#,
                true,
            ),
            (
                r#"{"u":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/ \b\f\n\r\t","x":"\u0000"}"#,
                true,
            ),
            (
                r#"{"k\u0065y":1,"a\u002eb":"escaped name","skip":"\n\u1234"}"#,
                true,
            ),
            (
                r#"{"":{"a":1,"x":2},"deep":{"er":{"est":[-0,0,17]}}}"#,
                true,
            ),
            (
                r#"{"x":"é ü 日本","y":{"z":[[],{}]},"n":-99999999999999999}"#,
                true,
            ),
            (r#"{"severity":"payload wins","message":"ok"}"#, true),
            ("{}", true),
            // Left to simd-json: floats, long integers, evtx/Winlogbeat roots.
            (r#"{"a":1.5}"#, false),
            (r#"{"skip":[1e3]}"#, false),
            (r#"{"a":123456789012345678}"#, false),
            (r#"{"Event":{"System":{"EventID":1}}}"#, false),
            (r#"{"winlog":{"event_id":1}}"#, false),
            // Invalid: the direct pass must give up, simd-json reports.
            (r#"{"a":01}"#, false),
            (r#"{"a":1,}"#, false),
            (r#"{"a" 1}"#, false),
            (r#"{"a":tru}"#, false),
            (r#"{"a":"\x"}"#, false),
            (r#"{"a":"\ud800"}"#, false),
            (r#"{"a":"\udc00"}"#, false),
            (r#"{"a":"\u12g4"}"#, false),
            ("{\"a\":\"tab\there\"}", false),
            (r#"{"a":1} x"#, false),
            (r#"{"a":[1,2}"#, false),
            (r#"{"skip":{"deep":[1,]}}"#, false),
            (r#"[1,2]"#, false),
            (r#"{"a":"unterminated}"#, false),
            ("{\"a\":\"\u{ff}\"}", true),
        ];
        for mode in [FieldMode::Known, FieldMode::All] {
            for &(doc, direct) in cases {
                assert_eq!(check(&t, mode, doc.as_bytes()), direct, "{mode:?} {doc}");
            }
            // Not UTF-8: simd-json rejects it, so the direct pass must not take it.
            assert!(!check(&t, mode, b"{\"a\":\"\xff\"}"));
            // ... wherever the bad byte is: in a long value, a key, a skipped value, after
            // the object, in a later chunk than a good non-ASCII byte.
            for bad in [
                &b"{\"a\":\"abcdefghij\xffklmnopq\"}"[..],
                b"{\"abcdefghijkl\xe9\":1}",
                b"{\"zzz\":\"abcdefgh\xc3\xa9ijklmn\xe9\"}",
                b"{\"a\":1} \xff",
                b"{\"a\":\"\\\xc3\xa9\"}",
            ] {
                assert!(!check(&t, mode, bad), "{}", String::from_utf8_lossy(bad));
            }
            assert!(check(
                &t,
                mode,
                "{\"a\":\"abcdefgh é ijklmnop 日本 qrst\"}".as_bytes()
            ));
            let deep = format!("{}1{}", r#"{"a":"#.repeat(80), "}".repeat(80));
            assert!(!check(&t, mode, deep.as_bytes()));
        }
    }

    /// Random documents from fragments that matter to JSON: whenever the direct pass takes
    /// one, simd-json must accept it and store the same.
    #[test]
    fn direct_pass_agrees_on_random_documents() {
        const FRAGMENTS: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            " ",
            "\"",
            "\"a\"",
            "\"a\":",
            "\"arr\":",
            "\"x\":",
            "\"u\":",
            "\"\":",
            "\"EventID\":",
            "\"deep\":",
            "\"er\":",
            "\"est\":",
            "0",
            "-",
            "1",
            "42",
            "-7",
            "1.5",
            "e3",
            "true",
            "false",
            "null",
            "\"v\"",
            "\\",
            "\\n",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\ud83d",
            "é",
            "\t",
            "\n",
            "01",
        ];
        let t = table();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut taken = 0;
        for _ in 0..20_000 {
            let mut doc = String::from("{");
            for _ in 0..next() % 24 {
                doc.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
            }
            if next() % 2 == 0 {
                doc.push('}');
            }
            for mode in [FieldMode::Known, FieldMode::All] {
                taken += usize::from(check(&t, mode, doc.as_bytes()));
            }
        }
        assert!(taken > 100, "too few random documents were valid: {taken}");
    }
}
