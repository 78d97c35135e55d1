//! Stage 2: frame → [`Event`](crate::event::Event). Zero-copy: fields are spans into the
//! frame wherever the wire format allows.
//!
//! [`Parser::parse`] detects the format of each frame (unless the input forces one), runs the
//! header parser (RFC 5424, RFC 3164 and its field variants) and then the payload parser for
//! the message (JSON, CEF, LEEF, `key=value`). It never fails to produce an event: a frame
//! whose header does not parse becomes an event with the raw frame as `message` and the
//! receive time, and the error is returned for counting. A payload that does not parse keeps
//! the header fields.
//!
//! What does not live here: framing (`reader/framing.rs`), deciding which fields exist
//! (`event/field.rs`), field extraction from free text (rules, later).

pub mod cef;
pub mod json;
pub mod kv;
pub mod leef;
pub mod rfc3164;
pub mod rfc5424;

use std::fmt;
use std::sync::Arc;

use crate::event::time::{Tz, ZoneResolver, parse_time_value};
use crate::event::{
    EventBuf, FieldId, FieldMode, FieldTable, Format, Repr, Span, Timestamp, Value,
};

/// The format an input declares, or `Auto` to detect it per frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum InputFormat {
    #[default]
    Auto,
    Rfc3164,
    Rfc5424,
    Json,
    Cef,
    Leef,
    Kv,
    /// No parsing: the whole frame is `message`.
    Raw,
}

impl InputFormat {
    pub const NAMES: &'static [&'static str] = &[
        "auto", "rfc3164", "rfc5424", "json", "cef", "leef", "kv", "raw",
    ];

    pub fn parse(s: &str) -> Option<InputFormat> {
        Some(match s {
            "auto" => InputFormat::Auto,
            "rfc3164" | "bsd" => InputFormat::Rfc3164,
            "rfc5424" | "syslog" => InputFormat::Rfc5424,
            "json" => InputFormat::Json,
            "cef" => InputFormat::Cef,
            "leef" => InputFormat::Leef,
            "kv" => InputFormat::Kv,
            "raw" => InputFormat::Raw,
            _ => return None,
        })
    }
}

/// The JSON fields tried, in order, for an event's own time.
pub const DEFAULT_TIME_FIELDS: &[&str] = &[
    "@timestamp",
    "timestamp",
    "TimeCreated",
    "EventTime",
    "Event.System.TimeCreated.#attributes.SystemTime",
    // The same, once evtx_dump output is flattened (see `json.rs`).
    "TimeCreated_SystemTime",
];

/// How one input's frames are parsed.
#[derive(Clone, Debug)]
pub struct ParserConfig {
    pub format: InputFormat,
    /// Zone for timestamps that carry none (RFC 3164 stamps, zone-less ISO stamps).
    pub tz: Tz,
    pub mode: FieldMode,
    /// JSON fields holding the event time, first present wins.
    pub time_fields: Vec<String>,
    /// Parse JSON/CEF/LEEF/kv found inside a syslog MSG.
    pub parse_payload: bool,
    /// Give Windows events in evtx_dump's and Winlogbeat's JSON shapes the flat names Sigma
    /// rules use (see `json.rs`).
    pub flatten_evtx: bool,
    /// Logsource class given to every event of this input (0: none); classes are
    /// registered with the rule set, which routes rules by them.
    pub class: u16,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            format: InputFormat::Auto,
            tz: Tz::Utc,
            mode: FieldMode::All,
            time_fields: DEFAULT_TIME_FIELDS.iter().map(|s| s.to_string()).collect(),
            parse_payload: true,
            flatten_evtx: true,
            class: 0,
        }
    }
}

impl ParserConfig {
    /// Interns the fields this configuration needs; call before freezing the table.
    pub fn register(&self, table: &mut FieldTable) {
        for f in &self.time_fields {
            table.intern(f);
        }
    }
}

/// What went wrong with a frame, by kind (the label of the parse-error metric).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ParseErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// `<PRI>` malformed or out of range.
    Pri,
    /// The RFC 5424 VERSION is not `1`.
    Version,
    Timestamp,
    /// A header field missing or malformed.
    Header,
    StructuredData,
    Json,
    Cef,
    Leef,
    Kv,
    /// Auto-detection found no known format; the line is kept as `message`.
    Unrecognized,
}

impl ParseErrorKind {
    pub const ALL: &'static [ParseErrorKind] = &[
        ParseErrorKind::Empty,
        ParseErrorKind::Pri,
        ParseErrorKind::Version,
        ParseErrorKind::Timestamp,
        ParseErrorKind::Header,
        ParseErrorKind::StructuredData,
        ParseErrorKind::Json,
        ParseErrorKind::Cef,
        ParseErrorKind::Leef,
        ParseErrorKind::Kv,
        ParseErrorKind::Unrecognized,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ParseErrorKind::Empty => "empty",
            ParseErrorKind::Pri => "pri",
            ParseErrorKind::Version => "version",
            ParseErrorKind::Timestamp => "timestamp",
            ParseErrorKind::Header => "header",
            ParseErrorKind::StructuredData => "structured_data",
            ParseErrorKind::Json => "json",
            ParseErrorKind::Cef => "cef",
            ParseErrorKind::Leef => "leef",
            ParseErrorKind::Kv => "kv",
            ParseErrorKind::Unrecognized => "unrecognized",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A parse failure: its kind, where in the frame it was noticed, and a short reason.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// Byte offset in the frame.
    pub offset: usize,
    pub reason: &'static str,
}

impl ParseError {
    pub fn new(kind: ParseErrorKind, offset: usize, reason: &'static str) -> ParseError {
        ParseError {
            kind,
            offset,
            reason,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} error at byte {}: {}",
            self.kind.name(),
            self.offset,
            self.reason
        )
    }
}

impl std::error::Error for ParseError {}

/// One parser per thread: holds the reusable JSON buffers and the zone cache.
pub struct Parser {
    table: Arc<FieldTable>,
    cfg: ParserConfig,
    zone: ZoneResolver,
    json: json::JsonParser,
    time_fields: Vec<FieldId>,
    /// Reused for building `sdid.param` and dotted JSON names.
    name_buf: Vec<u8>,
}

/// The context parsers share while filling one event.
pub(crate) struct Ctx<'p> {
    pub table: &'p FieldTable,
    pub mode: FieldMode,
    pub name_buf: &'p mut Vec<u8>,
    /// [`EventBuf::slot_count`] when the current source of fields (SD, payload) began: see
    /// [`EventBuf::put`].
    pub since: usize,
}

impl Ctx<'_> {
    /// Stores `value` under a name that is a slice of the raw frame.
    #[inline]
    pub fn put_raw_name(&mut self, out: &mut EventBuf, raw: &[u8], name: &[u8], value: Repr) {
        if let Some(id) = self.table.get(name) {
            out.put(id, value, self.since);
        } else if self.mode == FieldMode::All {
            out.add_unknown(Span::of_raw(raw, name), value);
        }
    }

    /// Stores `value` under the name currently in `name_buf`.
    #[inline]
    pub fn put_built_name(&mut self, out: &mut EventBuf, value: Repr) {
        if let Some(id) = self.table.get(self.name_buf) {
            out.put(id, value, self.since);
        } else if self.mode == FieldMode::All {
            let name = out.push_scratch(self.name_buf);
            out.add_unknown(name, value);
        }
    }
}

impl Parser {
    /// A parser over a frozen field table. Time fields the table lacks are ignored.
    pub fn new(table: Arc<FieldTable>, cfg: ParserConfig) -> Parser {
        let time_fields = cfg
            .time_fields
            .iter()
            .filter_map(|f| table.get(f.as_bytes()))
            .collect();
        Parser {
            zone: ZoneResolver::new(cfg.tz.clone()),
            table,
            cfg,
            json: json::JsonParser::new(),
            time_fields,
            name_buf: Vec::with_capacity(128),
        }
    }

    pub fn table(&self) -> &Arc<FieldTable> {
        &self.table
    }

    pub fn config(&self) -> &ParserConfig {
        &self.cfg
    }

    /// The zone resolver for stamps without a zone (the input's `tz`), for stages after
    /// parsing that read stamps from the message (field extraction).
    pub fn zone_mut(&mut self) -> &mut ZoneResolver {
        &mut self.zone
    }

    /// Parses one frame into `out`. Always leaves a usable event in `out`; returns the
    /// error, if any, for counting. `received` is the receive time, and the reference for
    /// the year of year-less stamps.
    pub fn parse(
        &mut self,
        raw: &[u8],
        received: Timestamp,
        out: &mut EventBuf,
    ) -> Result<(), ParseError> {
        out.reset(self.table.len(), received);
        let res = self.parse_inner(raw, out);
        if let Err(e) = res {
            if is_fatal(e.kind) || out.format == Format::Raw {
                // The header did not parse: the frame is kept whole, as message.
                out.reset(self.table.len(), received);
                out.set(FieldId::MESSAGE, Repr::Str(Span::raw(0, raw.len())));
            } else if out.payload.is_none()
                && matches!(
                    out.format,
                    Format::Json | Format::Cef | Format::Leef | Format::Kv
                )
            {
                // A JSON, CEF, LEEF or kv record with no syslog header in front failed in its
                // own syntax: whatever parsed stays (for JSON, nothing), and the frame stands
                // in as the message, so the event is never empty.
                out.set(FieldId::MESSAGE, Repr::Str(Span::raw(0, raw.len())));
            }
            out.class = self.cfg.class;
            return Err(e);
        }
        out.class = self.cfg.class;
        Ok(())
    }

    fn parse_inner(&mut self, raw: &[u8], out: &mut EventBuf) -> Result<(), ParseError> {
        // A UTF-8 BOM opening the frame is no content: Windows tools start files with one, so
        // the first line of such a file would otherwise be unrecognised.
        let bom = if raw.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        let start = raw[bom..]
            .iter()
            .position(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0))
            .map(|p| bom + p)
            .ok_or(ParseError::new(ParseErrorKind::Empty, 0, "empty frame"))?;
        let body = &raw[start..];
        let format = match self.cfg.format {
            InputFormat::Auto => detect(body),
            InputFormat::Rfc3164 => Format::Rfc3164,
            InputFormat::Rfc5424 => Format::Rfc5424,
            InputFormat::Json => Format::Json,
            InputFormat::Cef => Format::Cef,
            InputFormat::Leef => Format::Leef,
            InputFormat::Kv => Format::Kv,
            InputFormat::Raw => Format::Raw,
        };
        // Set before the header parser runs: an error past the header (RFC 5424 SD) must not
        // look like a frame nobody understood, or `parse` would drop the header it kept.
        out.format = format;
        let msg = match format {
            Format::Rfc5424 => {
                let mut ctx = Ctx {
                    table: &self.table,
                    mode: self.cfg.mode,
                    name_buf: &mut self.name_buf,
                    since: 0,
                };
                rfc5424::parse(raw, start, &mut ctx, &mut self.zone, out)?
            }
            Format::Rfc3164 => rfc3164::parse(raw, start, out, &mut self.zone)?,
            Format::Raw => {
                out.set(FieldId::MESSAGE, Repr::Str(Span::raw(0, raw.len())));
                if self.cfg.format == InputFormat::Auto {
                    return Err(ParseError::new(
                        ParseErrorKind::Unrecognized,
                        start,
                        "no syslog header, JSON, CEF, LEEF or key=value found",
                    ));
                }
                return Ok(());
            }
            payload => {
                return self.parse_payload(raw, start, payload, out);
            }
        };
        if let Some(m) = msg
            && self.cfg.parse_payload
        {
            // Spaces before the payload are not part of it: rsyslog's
            // RSYSLOG_SyslogProtocol23Format writes a BSD MSG with its leading space after
            // the SD (rsyslog issue #160), and `tag:  {` occurs too.
            let m = m + raw[m..].iter().take_while(|b| **b == b' ').count();
            let body = &raw[m..];
            if let Some(p) = detect_payload(body) {
                let skip = if body.starts_with(b"@cee:") {
                    5 + body[5..].iter().take_while(|b| **b == b' ').count()
                } else {
                    0
                };
                out.payload = Some(p);
                return self.parse_payload(raw, m + skip, p, out);
            }
        }
        Ok(())
    }

    fn parse_payload(
        &mut self,
        raw: &[u8],
        at: usize,
        format: Format,
        out: &mut EventBuf,
    ) -> Result<(), ParseError> {
        let mut ctx = Ctx {
            table: &self.table,
            mode: self.cfg.mode,
            name_buf: &mut self.name_buf,
            since: out.slot_count(),
        };
        match format {
            Format::Json => {
                self.json
                    .parse(raw, at, &mut ctx, out, self.cfg.flatten_evtx)?;
                self.apply_time_fields(raw, out);
                Ok(())
            }
            Format::Cef => cef::parse(raw, at, &mut ctx, out),
            Format::Leef => leef::parse(raw, at, &mut ctx, out),
            Format::Kv => kv::parse(raw, at, &mut ctx, out),
            _ => Ok(()),
        }
    }

    /// Sets the event time from the first configured time field that holds a valid time.
    fn apply_time_fields(&mut self, raw: &[u8], out: &mut EventBuf) {
        for &f in &self.time_fields {
            let ev = crate::event::Event::new(raw, out);
            let t = match ev.get(f) {
                Some(Value::Str(s)) => parse_time_value(s, &mut self.zone),
                Some(Value::Int(i)) => crate::event::time::epoch_int(i),
                Some(Value::UInt(u)) => i64::try_from(u)
                    .ok()
                    .and_then(crate::event::time::epoch_int),
                Some(Value::Float(x)) => crate::event::time::epoch_number(x),
                Some(Value::Time(t)) => Some(t),
                _ => None,
            };
            if let Some(t) = t {
                out.set_time(t);
                return;
            }
        }
    }
}

/// Header errors lose the header: the event falls back to the raw frame.
fn is_fatal(kind: ParseErrorKind) -> bool {
    matches!(
        kind,
        ParseErrorKind::Empty
            | ParseErrorKind::Pri
            | ParseErrorKind::Version
            | ParseErrorKind::Timestamp
            | ParseErrorKind::Header
            | ParseErrorKind::Unrecognized
    )
}

/// Decides the outer format of a frame from its first bytes.
///
/// `<digits>1 ` is RFC 5424, any other `<PRI>` RFC 3164 — except that another VERSION
/// followed by a 5424 TIMESTAMP or NILVALUE is RFC 5424 too, so that its parser reports the
/// version instead of the BSD parser taking `2` for a hostname. `{` is JSON; `CEF:`/`LEEF:`
/// those; a line starting with a BSD or ISO timestamp (files written by syslog daemons carry
/// no PRI) or a Cisco sequence number is RFC 3164; `key=value` is kv; anything else raw.
pub fn detect(b: &[u8]) -> Format {
    match b.first() {
        Some(b'<') => {
            let digits = b[1..]
                .iter()
                .take(4)
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits > 0 && b.get(1 + digits) == Some(&b'>') {
                let rest = &b[2 + digits..];
                if rest.len() >= 2 && rest[0] == b'1' && rest[1] == b' ' {
                    return Format::Rfc5424;
                }
                if looks_like_other_version(rest) {
                    return Format::Rfc5424;
                }
                return Format::Rfc3164;
            }
            Format::Raw
        }
        Some(b'{') => Format::Json,
        _ if b.starts_with(b"CEF:") => Format::Cef,
        _ if b.starts_with(b"LEEF:") => Format::Leef,
        _ if rfc3164::looks_like_header(b) => Format::Rfc3164,
        _ if kv::looks_like_kv(b) => Format::Kv,
        _ => Format::Raw,
    }
}

/// `VERSION SP` (RFC 5424 §6.2.2: a non-zero digit and up to two more) followed by a
/// NILVALUE or the `YYYY-` of a FULL-DATE.
fn looks_like_other_version(rest: &[u8]) -> bool {
    let v = rest
        .iter()
        .take(3)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if v == 0 || rest[0] == b'0' || rest.get(v) != Some(&b' ') {
        return false;
    }
    let after = &rest[v + 1..];
    after.starts_with(b"- ")
        || (after.len() >= 5 && after[..4].iter().all(u8::is_ascii_digit) && after[4] == b'-')
}

/// Decides whether a syslog MSG carries a structured payload.
pub fn detect_payload(msg: &[u8]) -> Option<Format> {
    match msg.first()? {
        b'{' => Some(Format::Json),
        b'@' if msg.starts_with(b"@cee:") => Some(Format::Json),
        b'C' if msg.starts_with(b"CEF:") => Some(Format::Cef),
        b'L' if msg.starts_with(b"LEEF:") => Some(Format::Leef),
        _ if kv::looks_like_kv_msg(msg) => Some(Format::Kv),
        _ => None,
    }
}

/// Splits `b` at unescaped `|` into at most `n` fields, for CEF and LEEF headers.
/// Returns the field ranges (relative to `b`) and the offset after the last `|` consumed.
pub(crate) fn split_pipes(b: &[u8], n: usize, fields: &mut Vec<(usize, usize)>) -> Option<usize> {
    fields.clear();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() && fields.len() < n {
        match b[i] {
            b'\\' => i += 2,
            b'|' => {
                fields.push((start, i));
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    (fields.len() == n).then_some(start)
}

/// Stores a CEF/LEEF header field, unescaping `\|` and `\\` into scratch when present.
pub(crate) fn put_header_field(
    out: &mut EventBuf,
    raw: &[u8],
    from: usize,
    to: usize,
    id: FieldId,
) {
    let s = &raw[from..to];
    if memchr::memchr(b'\\', s).is_none() {
        out.set(id, Repr::Str(Span::raw(from, to - from)));
        return;
    }
    let start = out.scratch.len();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && matches!(s.get(i + 1), Some(b'|' | b'\\')) {
            out.scratch.push(s[i + 1]);
            i += 2;
        } else {
            out.scratch.push(s[i]);
            i += 1;
        }
    }
    let span = out.scratch_span_from(start);
    out.set(id, Repr::Str(span));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(
            detect(b"<34>1 2003-10-11T22:14:15.003Z host app - - - msg"),
            Format::Rfc5424
        );
        assert_eq!(detect(b"<34>Oct 11 22:14:15 host su: x"), Format::Rfc3164);
        assert_eq!(detect(b"Oct 11 22:14:15 host su: x"), Format::Rfc3164);
        assert_eq!(
            detect(b"2024-10-11T22:14:15+00:00 host su: x"),
            Format::Rfc3164
        );
        assert_eq!(detect(b"{\"a\":1}"), Format::Json);
        assert_eq!(detect(b"CEF:0|a|b|c|d|e|1|"), Format::Cef);
        assert_eq!(detect(b"LEEF:1.0|a|b|c|d|"), Format::Leef);
        assert_eq!(detect(b"date=2024-01-01 devname=fg"), Format::Kv);
        assert_eq!(detect(b"hello world"), Format::Raw);
        assert_eq!(detect(b"<abc>hello"), Format::Raw);
        // Other versions go to the 5424 parser, which rejects them.
        assert_eq!(
            detect(b"<34>2 2024-03-10T12:00:00Z h a - - - m"),
            Format::Rfc5424
        );
        assert_eq!(detect(b"<34>10 - h a - - - m"), Format::Rfc5424);
        assert_eq!(detect(b"<34>0 - h a - - - m"), Format::Rfc3164);
        assert_eq!(detect(b"<34>2 apples"), Format::Rfc3164);
        assert_eq!(
            detect_payload(b"[ 12.5] [UFW BLOCK] IN=eth0 OUT="),
            Some(Format::Kv)
        );
        assert_eq!(detect_payload(b"[info] starting"), None);
    }
}
