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
//! Winlogbeat (7.x and 8.x, ECS) nests the same data under `winlog`: `winlog.event_data.X`
//! (or `winlog.user_data.X`), `winlog.event_id`, `winlog.channel`, `winlog.computer_name`,
//! `winlog.provider_name`, `winlog.record_id`. Such documents keep their dotted names and
//! also get the Sigma names (`X`, `EventID`, `Channel`, `Computer`, `Provider_Name`,
//! `EventRecordID`), with the same values as given (Winlogbeat 8 writes `event_id` as a
//! string, which number-valued Sigma items match). The System names are stored first, so a
//! `Channel` inside `user_data` (event 104 names the cleared log) is a second value.

use simd_json::{Buffers, Node, StaticNode, Tape};

use super::{Ctx, ParseError, ParseErrorKind};
use crate::event::{EventBuf, FieldMode, Repr, Span, Src};

/// Reusable simd-json state for one thread.
pub struct JsonParser {
    buffers: Buffers,
    /// The tape's allocation, kept empty between events.
    tape: Vec<Node<'static>>,
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
