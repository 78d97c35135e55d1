//! The event model every later stage reads: a borrowed view over one frame's bytes.
//!
//! A parser fills a caller-owned [`EventBuf`] (reused from event to event, so the hot path
//! allocates nothing once buffers have grown); [`Event`] pairs that buffer with the frame it
//! describes and answers field lookups by [`FieldId`] in O(1).
//!
//! Values are *spans*, not copies: most point into the raw frame. The two exceptions live in
//! the buffer itself: JSON text, which simd-json needs in a mutable padded copy (strings are
//! unescaped in place there), and `scratch`, which holds values that had escapes to undo
//! (RFC 5424 SD, CEF) and names that had to be built (`sdid.param`, dotted JSON paths of
//! fields nobody interned).
//!
//! Lookups go through a dense index with one entry per interned field, stamped with a
//! generation number so that starting a new event is O(1) rather than a clear of the table.
//!
//! What does not live here: how bytes become fields (`parser/`), where frames come from
//! (`reader/`).

pub mod field;
pub mod time;

pub use field::{FieldId, FieldMode, FieldTable};
pub use time::Timestamp;

/// Which buffer a [`Span`] points into.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Src {
    /// The raw frame.
    Raw,
    /// The padded JSON work copy in [`EventBuf`].
    Json,
    /// [`EventBuf`]'s scratch bytes (unescaped values, built names).
    Scratch,
}

/// A byte range in one of the event's buffers.
///
/// Invariant: `start + len` ≤ the length of the buffer `src` names, for the event the span
/// belongs to. Frames are bounded far below 4 GiB, so `u32` offsets suffice.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Span {
    pub src: Src,
    pub start: u32,
    pub len: u32,
}

impl Span {
    #[inline]
    pub fn raw(start: usize, len: usize) -> Span {
        Span {
            src: Src::Raw,
            start: start as u32,
            len: len as u32,
        }
    }

    /// The span of `sub`, a subslice of `raw`, within `raw`.
    #[inline]
    pub fn of_raw(raw: &[u8], sub: &[u8]) -> Span {
        let start = sub.as_ptr() as usize - raw.as_ptr() as usize;
        debug_assert!(start + sub.len() <= raw.len());
        Span::raw(start, sub.len())
    }
}

/// A stored value: a span or an immediate scalar.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Repr {
    Str(Span),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Null,
    Time(Timestamp),
}

/// A field value as the rest of the engine sees it.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Value<'a> {
    /// Bytes as they arrived (after protocol unescaping); not necessarily UTF-8.
    Str(&'a [u8]),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Null,
    /// A parsed timestamp (the syslog header `timestamp`).
    Time(Timestamp),
}

impl<'a> Value<'a> {
    /// The value as text: strings as they are, scalars formatted into `tmp`.
    pub fn text<'b>(&self, tmp: &'b mut Vec<u8>) -> &'b [u8]
    where
        'a: 'b,
    {
        use std::io::Write;
        tmp.clear();
        match *self {
            Value::Str(s) => return s,
            Value::Int(i) => write_int(i < 0, i.unsigned_abs(), tmp),
            Value::UInt(u) => write_int(false, u, tmp),
            Value::Float(f) => {
                let _ = write!(tmp, "{f}");
            }
            Value::Bool(b) => tmp.extend_from_slice(if b { b"true" } else { b"false" }),
            Value::Null => {}
            Value::Time(t) => t.write_rfc3339(tmp),
        }
        tmp
    }

    pub fn as_str_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One field of an event.
#[derive(Clone, Copy, Debug)]
struct Slot {
    field: FieldId,
    /// The name, when `field` is [`FieldId::UNKNOWN`].
    name: Span,
    value: Repr,
    /// Next older value of the same field (arrays), or `NO_SLOT`.
    next: u32,
    /// Replaced by a later value of the same name from another source; skipped by iteration.
    shadowed: bool,
}

const NO_SLOT: u32 = u32::MAX;

/// How the frame was understood.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Format {
    #[default]
    Raw,
    Rfc3164,
    Rfc5424,
    Json,
    Cef,
    Leef,
    Kv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Rfc3164 => "rfc3164",
            Format::Rfc5424 => "rfc5424",
            Format::Json => "json",
            Format::Cef => "cef",
            Format::Leef => "leef",
            Format::Kv => "kv",
        }
    }
}

/// `a == b` for the short byte strings extraction and matching compare (keys, values,
/// literals), 8 bytes a step: a call to `memcmp` costs more than the comparison.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut x = a.chunks_exact(8);
    let mut y = b.chunks_exact(8);
    for (p, q) in (&mut x).zip(&mut y) {
        if u64::from_le_bytes(p.try_into().expect("8 bytes"))
            != u64::from_le_bytes(q.try_into().expect("8 bytes"))
        {
            return false;
        }
    }
    x.remainder() == y.remainder()
}

/// Regex `src` parsed as extraction and matching compile their regexes (over bytes, not
/// only UTF-8; flags are inline in the text); `None` when it does not parse (the error is
/// reported where the regex is compiled). For load-time analysis: literals, prefixes, gates.
pub fn regex_hir(src: &str) -> Option<regex_syntax::hir::Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(src)
        .ok()
}

/// A dotted-quad IPv4 address exactly as `Ipv4Addr`'s parser accepts it (four decimal
/// octets up to 255, no leading zeros but `0`); `None` for anything else. One pass, without
/// the standard parser's UTF-8 check and generic machinery: extraction validates `ip`
/// captures with it and `cidr` tests read addresses with it.
pub fn dotted_quad(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut part = 0;
    let mut value: u32 = 0;
    let mut digits = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                if digits > 0 && value == 0 {
                    return None; // a leading zero
                }
                value = value * 10 + u32::from(c - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && part < 3 => {
                octets[part] = value as u8;
                part += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(std::net::Ipv4Addr::from(octets))
}

/// Writes an integer in decimal (`-12`, `4624`) after what `tmp` holds, without `fmt`:
/// routing and matching spell numeric values on every event.
#[inline]
fn write_int(neg: bool, mut u: u64, tmp: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        tmp.push(b'-');
    }
    tmp.extend_from_slice(&digits[i..]);
}

/// Caller-owned storage for one parsed event; reuse it across events.
#[derive(Debug, Default)]
pub struct EventBuf {
    slots: Vec<Slot>,
    /// `index[field] = (generation, newest slot)`; valid only when the generation matches.
    index: Vec<(u32, u32)>,
    generation: u32,
    /// Padded, mutable copy of the JSON text being parsed (simd-json works in place).
    pub(crate) json: Vec<u8>,
    /// Unescaped values and built names for this event.
    pub(crate) scratch: Vec<u8>,
    time: Option<Timestamp>,
    received: Timestamp,
    /// The syslog/outer format.
    pub format: Format,
    /// The format of the message payload, when it had structure of its own.
    pub payload: Option<Format>,
    /// Logsource class the input or an extractor assigned (0: none). The table of classes
    /// belongs to the compiled rule set; see `router/`.
    pub class: u16,
    /// Reusable capture positions for field extraction (`extract/`), so extraction does not
    /// allocate per event.
    pub(crate) captures: Vec<(Option<FieldId>, usize, usize)>,
    /// Reusable regex capture slots for the same (start and end of each group).
    pub(crate) regex_slots: Vec<Option<regex_automata::util::primitives::NonMaxUsize>>,
}

impl EventBuf {
    pub fn new() -> EventBuf {
        EventBuf::default()
    }

    /// Starts a new event: O(1) except when the field table grew.
    pub fn reset(&mut self, fields: usize, received: Timestamp) {
        self.slots.clear();
        self.scratch.clear();
        self.time = None;
        self.received = received;
        self.format = Format::Raw;
        self.payload = None;
        self.class = 0;
        if self.index.len() < fields {
            self.index.resize(fields, (0, NO_SLOT));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 events stale entries could look current: clear them once.
            self.index.iter_mut().for_each(|e| *e = (0, NO_SLOT));
            self.generation = 1;
        }
    }

    #[inline]
    fn head(&self, field: FieldId) -> u32 {
        match self.index.get(field.index()) {
            Some(&(g, s)) if g == self.generation => s,
            _ => NO_SLOT,
        }
    }

    /// Sets `field` to `value`; an earlier value of the field is shadowed (a later source of a
    /// name wins, e.g. a JSON payload's `message` over the syslog MSG that carried it).
    #[inline]
    pub fn set(&mut self, field: FieldId, value: Repr) {
        let old = self.head(field);
        if old != NO_SLOT {
            let mut s = old;
            while s != NO_SLOT {
                self.slots[s as usize].shadowed = true;
                s = self.slots[s as usize].next;
            }
        }
        self.insert(field, value, NO_SLOT);
    }

    /// Stores a value from a source that may repeat a name (SD params, payload fields):
    /// the first value of `field` from this source shadows what earlier sources said (a
    /// payload's `severity` over the syslog header's), and further values from the same
    /// source — array elements, repeated keys — are added, making the field multi-valued.
    /// `since` is [`EventBuf::slot_count`] when the source started; slots are only ever
    /// appended, so a newest value at or past it came from this source.
    #[inline]
    pub fn put(&mut self, field: FieldId, value: Repr, since: usize) {
        let head = self.head(field);
        if head != NO_SLOT && head as usize >= since {
            self.insert(field, value, head);
        } else {
            self.set(field, value);
        }
    }

    /// The newest stored value of `field`, as stored (span or scalar).
    #[inline]
    pub fn get_repr(&self, field: FieldId) -> Option<Repr> {
        let s = self.head(field);
        (s != NO_SLOT).then(|| self.slots[s as usize].value)
    }

    /// Adds one more value to `field` (an array element), keeping the earlier ones.
    #[inline]
    pub fn add(&mut self, field: FieldId, value: Repr) {
        let old = self.head(field);
        self.insert(field, value, old);
    }

    #[inline]
    fn insert(&mut self, field: FieldId, value: Repr, next: u32) {
        let slot = self.slots.len() as u32;
        self.slots.push(Slot {
            field,
            name: Span::raw(0, 0),
            value,
            next,
            shadowed: false,
        });
        if let Some(e) = self.index.get_mut(field.index()) {
            *e = (self.generation, slot);
        } else {
            debug_assert!(
                false,
                "field {field:?} beyond the table the buffer was reset for"
            );
        }
    }

    /// Adds a field whose name nobody interned (kept for display and evidence only).
    pub fn add_unknown(&mut self, name: Span, value: Repr) {
        self.slots.push(Slot {
            field: FieldId::UNKNOWN,
            name,
            value,
            next: NO_SLOT,
            shadowed: false,
        });
    }

    /// Copies `bytes` into scratch and returns their span.
    #[inline]
    pub fn push_scratch(&mut self, bytes: &[u8]) -> Span {
        let start = self.scratch.len();
        self.scratch.extend_from_slice(bytes);
        Span {
            src: Src::Scratch,
            start: start as u32,
            len: bytes.len() as u32,
        }
    }

    /// Mutable access to the scratch bytes, for writers that build values in place; use
    /// [`EventBuf::scratch_span_from`] to name what was written.
    pub fn scratch_mut(&mut self) -> &mut Vec<u8> {
        &mut self.scratch
    }

    /// The span of scratch bytes written since `start`.
    pub fn scratch_span_from(&self, start: usize) -> Span {
        Span {
            src: Src::Scratch,
            start: start as u32,
            len: (self.scratch.len() - start) as u32,
        }
    }

    pub fn set_time(&mut self, t: Timestamp) {
        self.time = Some(t);
    }

    pub fn time(&self) -> Option<Timestamp> {
        self.time
    }

    pub fn received(&self) -> Timestamp {
        self.received
    }

    /// Number of stored values (including shadowed ones).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }
}

/// A parsed event: the frame and the buffer that describes it.
#[derive(Clone, Copy)]
pub struct Event<'a> {
    raw: &'a [u8],
    buf: &'a EventBuf,
}

/// The name of a field in iteration: interned, or bytes from the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldName<'a> {
    Id(FieldId),
    Bytes(&'a [u8]),
}

impl<'a> FieldName<'a> {
    /// The name as bytes, resolving ids through `table`.
    pub fn resolve<'t>(&self, table: &'t FieldTable) -> &'t [u8]
    where
        'a: 't,
    {
        match *self {
            FieldName::Id(id) => table.name(id).as_bytes(),
            FieldName::Bytes(b) => b,
        }
    }
}

impl<'a> Event<'a> {
    /// Pairs a frame with the buffer a parser filled for it.
    pub fn new(raw: &'a [u8], buf: &'a EventBuf) -> Event<'a> {
        Event { raw, buf }
    }

    #[inline]
    pub fn bytes(&self, span: Span) -> &'a [u8] {
        let b: &'a [u8] = match span.src {
            Src::Raw => self.raw,
            Src::Json => &self.buf.json,
            Src::Scratch => &self.buf.scratch,
        };
        &b[span.start as usize..(span.start + span.len) as usize]
    }

    #[inline]
    fn value(&self, r: Repr) -> Value<'a> {
        match r {
            Repr::Str(s) => Value::Str(self.bytes(s)),
            Repr::Int(i) => Value::Int(i),
            Repr::UInt(u) => Value::UInt(u),
            Repr::Float(f) => Value::Float(f),
            Repr::Bool(b) => Value::Bool(b),
            Repr::Null => Value::Null,
            Repr::Time(t) => Value::Time(t),
        }
    }

    /// The newest value of `field`.
    #[inline]
    pub fn get(&self, field: FieldId) -> Option<Value<'a>> {
        let s = self.buf.head(field);
        (s != NO_SLOT).then(|| self.value(self.buf.slots[s as usize].value))
    }

    /// True when the event has `field` at all.
    #[inline]
    pub fn has(&self, field: FieldId) -> bool {
        self.buf.head(field) != NO_SLOT
    }

    /// Every value of `field` (several for JSON arrays), newest first.
    pub fn values(&self, field: FieldId) -> Values<'a> {
        Values {
            ev: *self,
            slot: self.buf.head(field),
        }
    }

    /// The syslog MSG, or a payload's `message`.
    pub fn message(&self) -> Option<&'a [u8]> {
        self.get(FieldId::MESSAGE).and_then(|v| v.as_str_bytes())
    }

    /// The frame as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The event's own timestamp, if it had one that parsed.
    pub fn time(&self) -> Option<Timestamp> {
        self.buf.time
    }

    pub fn received(&self) -> Timestamp {
        self.buf.received
    }

    pub fn format(&self) -> Format {
        self.buf.format
    }

    pub fn payload_format(&self) -> Option<Format> {
        self.buf.payload
    }

    /// The logsource class assigned to the event (0: none).
    pub fn class(&self) -> u16 {
        self.buf.class
    }

    /// Every visible value of an interned field, with its id (unknown names skipped).
    pub fn known_fields(&self) -> impl Iterator<Item = (FieldId, Value<'a>)> + 'a {
        let ev = *self;
        self.buf
            .slots
            .iter()
            .filter(|s| !s.shadowed && s.field != FieldId::UNKNOWN)
            .map(move |s| (s.field, ev.value(s.value)))
    }

    /// Every visible field in the order parsed; array values appear once each.
    pub fn fields(&self) -> impl Iterator<Item = (FieldName<'a>, Value<'a>)> + 'a {
        let ev = *self;
        self.buf.slots.iter().filter(|s| !s.shadowed).map(move |s| {
            let name = if s.field == FieldId::UNKNOWN {
                FieldName::Bytes(ev.bytes(s.name))
            } else {
                FieldName::Id(s.field)
            };
            (name, ev.value(s.value))
        })
    }
}

/// Iterator over the values of one field; see [`Event::values`].
pub struct Values<'a> {
    ev: Event<'a>,
    slot: u32,
}

impl<'a> Iterator for Values<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.slot == NO_SLOT {
            return None;
        }
        let s = self.ev.buf.slots[self.slot as usize];
        self.slot = s.next;
        Some(self.ev.value(s.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_spelled_as_std_formats_them() {
        let mut tmp = Vec::new();
        for i in [0i64, 1, -1, 9, 10, 4624, -4624, i64::MAX, i64::MIN] {
            assert_eq!(
                Value::Int(i).text(&mut tmp),
                i.to_string().as_bytes(),
                "{i}"
            );
        }
        for u in [0u64, 7, 100, u64::MAX] {
            assert_eq!(
                Value::UInt(u).text(&mut tmp),
                u.to_string().as_bytes(),
                "{u}"
            );
        }
    }

    #[test]
    fn set_shadows_add_chains_and_reset_forgets() {
        let raw = b"hello world";
        let mut t = FieldTable::new();
        let tags = t.intern("tags");
        let mut buf = EventBuf::new();
        buf.reset(t.len(), Timestamp(1));
        buf.set(FieldId::MESSAGE, Repr::Str(Span::raw(0, 5)));
        buf.set(FieldId::MESSAGE, Repr::Str(Span::raw(6, 5)));
        buf.add(tags, Repr::Int(1));
        buf.add(tags, Repr::Int(2));
        let ev = Event::new(raw, &buf);
        assert_eq!(ev.message(), Some(&b"world"[..]));
        assert_eq!(
            ev.values(tags).collect::<Vec<_>>(),
            vec![Value::Int(2), Value::Int(1)]
        );
        assert_eq!(ev.fields().count(), 3);
        buf.reset(t.len(), Timestamp(2));
        let ev = Event::new(raw, &buf);
        assert!(!ev.has(FieldId::MESSAGE));
        assert_eq!(ev.values(tags).count(), 0);
    }

    #[test]
    fn put_shadows_earlier_sources_and_chains_its_own() {
        let raw = b"header payload";
        let t = FieldTable::new();
        let mut buf = EventBuf::new();
        buf.reset(t.len(), Timestamp(1));
        buf.set(FieldId::MESSAGE, Repr::Str(Span::raw(0, 6)));
        let since = buf.slot_count();
        buf.put(FieldId::MESSAGE, Repr::Int(1), since);
        buf.put(FieldId::MESSAGE, Repr::Int(2), since);
        let ev = Event::new(raw, &buf);
        assert_eq!(
            ev.values(FieldId::MESSAGE).collect::<Vec<_>>(),
            vec![Value::Int(2), Value::Int(1)]
        );
        assert_eq!(ev.fields().count(), 2, "the header's value is shadowed");
    }
}
