//! JSON objects, as whole lines or as a syslog MSG, flattened to dotted paths.
//!
//! simd-json parses a padded, mutable copy of the text (kept in [`EventBuf`] and reused) into
//! a tape, also reused; strings are unescaped in place inside that copy, so string values are
//! spans into it. Nested objects become dotted names (`Event.System.EventID`); the elements
//! of an array are several values of one name (an array of objects contributes each object's
//! fields under `array.key`). In [`FieldMode::Known`] a subtree whose path is no prefix of
//! an interned name is skipped without visiting it: the engine extracts only what rules use.

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
                    let mut w = Walker { base, ctx, out };
                    w.object(&tape.0, 0, 0);
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

struct Walker<'w, 'p> {
    /// Address of the JSON work copy; string spans are offsets from it.
    base: usize,
    ctx: &'w mut Ctx<'p>,
    out: &'w mut EventBuf,
}

impl Walker<'_, '_> {
    /// Walks the object whose header is `nodes[idx]`, under the path `name_buf[..path]`.
    /// Returns the index after the object.
    fn object(&mut self, nodes: &[Node<'_>], idx: usize, path: usize) -> usize {
        let Node::Object { len, count } = nodes[idx] else {
            unreachable!("object() called on a non-object node")
        };
        let end = idx + count + 1;
        let mut i = idx + 1;
        for _ in 0..len {
            let Node::String(key) = nodes[i] else {
                return end;
            };
            if path == 0 {
                // A top-level key is its own full name: used straight from the tape, and
                // copied to `name_buf` only if its value is an object or array. Copying
                // every key and reading the fresh copy back for the lookup stalled on store
                // forwarding; that was a fifth of JSON parse time.
                i = self.value(nodes, i + 1, 0, false, Some(key.as_bytes()));
            } else {
                self.ctx.name_buf.truncate(path);
                self.ctx.name_buf.push(b'.');
                self.ctx.name_buf.extend_from_slice(key.as_bytes());
                let here = self.ctx.name_buf.len();
                i = self.value(nodes, i + 1, here, false, None);
            }
        }
        end
    }

    /// Handles the value at `nodes[idx]` named `name_buf[..path]`, or `direct` when that is
    /// given (a top-level key, a slice of the tape; `path` is then 0); returns the next index.
    fn value<'t>(
        &mut self,
        nodes: &[Node<'t>],
        idx: usize,
        path: usize,
        in_array: bool,
        direct: Option<&'t [u8]>,
    ) -> usize {
        match nodes[idx] {
            Node::Object { count, .. } => {
                let path = self.materialize(path, direct);
                if self.wants_subtree(path) {
                    self.object(nodes, idx, path)
                } else {
                    idx + count + 1
                }
            }
            Node::Array { len, count } => {
                let end = idx + count + 1;
                let path = self.materialize(path, direct);
                if !self.wants_subtree(path) && !self.wants_leaf(path) {
                    return end;
                }
                let mut i = idx + 1;
                for _ in 0..len {
                    self.ctx.name_buf.truncate(path);
                    i = self.value(nodes, i, path, true, direct);
                }
                end
            }
            Node::String(s) => {
                let span = Span {
                    src: Src::Json,
                    start: (s.as_ptr() as usize - self.base) as u32,
                    len: s.len() as u32,
                };
                self.leaf(path, direct, Repr::Str(span), in_array);
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
                self.leaf(path, direct, r, in_array);
                idx + 1
            }
        }
    }

    /// Writes a `direct` name into `name_buf` for the walk below it; returns the path length.
    #[inline]
    fn materialize(&mut self, path: usize, direct: Option<&[u8]>) -> usize {
        match direct {
            Some(k) => {
                self.ctx.name_buf.clear();
                self.ctx.name_buf.extend_from_slice(k);
                k.len()
            }
            None => path,
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

    fn leaf(&mut self, path: usize, direct: Option<&[u8]>, value: Repr, in_array: bool) {
        let name = direct.unwrap_or(&self.ctx.name_buf[..path]);
        if let Some(id) = self.ctx.table.get(name) {
            if in_array {
                self.out.add(id, value);
            } else {
                self.out.set(id, value);
            }
        } else if self.ctx.mode == FieldMode::All {
            // A top-level key already lives in the work copy: point at it, copy nothing.
            let span = match direct {
                Some(k) => Span {
                    src: Src::Json,
                    start: (k.as_ptr() as usize - self.base) as u32,
                    len: k.len() as u32,
                },
                None => self.out.push_scratch(name),
            };
            self.out.add_unknown(span, value);
        }
    }
}
