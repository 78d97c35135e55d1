//! RFC 5424 syslog: header, STRUCTURED-DATA and MSG.
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]
//! ```
//!
//! Every header field may be the NILVALUE `-` (then the field is absent). SD params become
//! fields named `<SD-ID>.<PARAM>` (`meta.sequenceId`); inside PARAM-VALUE only `\"`, `\\`
//! and `\]` are escapes (RFC 5424 §6.3.3), a backslash before anything else stays literal,
//! and a value is copied to scratch only when it has an escape. A UTF-8 BOM opening MSG is
//! dropped (§6.4). Tolerated beyond the RFC: a timestamp without a zone (read in the input's
//! zone), several spaces between header fields. An SD section that does not parse keeps the
//! header: the rest of the frame becomes MSG and the error is reported.

use super::{Ctx, ParseError, ParseErrorKind, rfc3164::parse_pri};
use crate::event::time::{ZoneResolver, parse_iso};
use crate::event::{EventBuf, FieldId, Repr, Span};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses an RFC 5424 frame from `start` (which holds `<`); returns where MSG starts.
pub(crate) fn parse(
    raw: &[u8],
    start: usize,
    ctx: &mut Ctx<'_>,
    zone: &mut ZoneResolver,
    out: &mut EventBuf,
) -> Result<Option<usize>, ParseError> {
    let hdr = |at, reason| ParseError::new(ParseErrorKind::Header, at, reason);
    let (pri, used) = parse_pri(&raw[start..], start)?;
    out.set(FieldId::FACILITY, Repr::Int((pri >> 3) as i64));
    out.set(FieldId::SEVERITY, Repr::Int((pri & 7) as i64));
    let mut i = start + used;
    if raw.get(i) != Some(&b'1') || raw.get(i + 1) != Some(&b' ') {
        return Err(ParseError::new(
            ParseErrorKind::Version,
            i,
            "VERSION must be 1",
        ));
    }
    i += 2;

    // TIMESTAMP
    let (tok, next) = field(raw, i).ok_or(hdr(i, "TIMESTAMP missing"))?;
    if tok != b"-" {
        let s = parse_iso(tok)
            .filter(|s| s.len == tok.len())
            .ok_or(ParseError::new(
                ParseErrorKind::Timestamp,
                i,
                "TIMESTAMP is not RFC 3339",
            ))?;
        let t = s.resolve(zone);
        out.set(FieldId::TIMESTAMP, Repr::Time(t));
        out.set_time(t);
    }
    i = next;
    for (id, what) in [
        (FieldId::HOSTNAME, "HOSTNAME missing"),
        (FieldId::APPNAME, "APP-NAME missing"),
        (FieldId::PROCID, "PROCID missing"),
        (FieldId::MSGID, "MSGID missing"),
    ] {
        let (tok, next) = field(raw, i).ok_or(hdr(i, what))?;
        if tok != b"-" {
            out.set(id, Repr::Str(Span::of_raw(raw, tok)));
        }
        i = next;
    }

    // STRUCTURED-DATA
    if i >= raw.len() {
        return Ok(None);
    }
    if raw[i] == b'-' {
        i += 1;
    } else if raw[i] == b'[' {
        ctx.since = out.slot_count();
        match parse_sd(raw, i, ctx, out) {
            Ok(end) => i = end,
            Err(e) => {
                // Keep the header; the unparsable rest is the message.
                out.set(FieldId::MESSAGE, Repr::Str(Span::raw(i, raw.len() - i)));
                return Err(e);
            }
        }
    } else {
        out.set(FieldId::MESSAGE, Repr::Str(Span::raw(i, raw.len() - i)));
        return Err(ParseError::new(
            ParseErrorKind::StructuredData,
            i,
            "STRUCTURED-DATA must be '-' or start with '['",
        ));
    }

    // MSG
    if i >= raw.len() {
        return Ok(None);
    }
    if raw[i] != b' ' {
        out.set(FieldId::MESSAGE, Repr::Str(Span::raw(i, raw.len() - i)));
        return Err(ParseError::new(
            ParseErrorKind::StructuredData,
            i,
            "no space after STRUCTURED-DATA",
        ));
    }
    i += 1;
    if raw[i..].starts_with(BOM) {
        i += BOM.len();
    }
    out.set(FieldId::MESSAGE, Repr::Str(Span::raw(i, raw.len() - i)));
    Ok(Some(i))
}

/// The header token at `i` and the index after the spaces that follow it.
fn field(raw: &[u8], i: usize) -> Option<(&[u8], usize)> {
    if i >= raw.len() {
        return None;
    }
    let end = memchr::memchr(b' ', &raw[i..]).map_or(raw.len(), |n| i + n);
    if end == i {
        return None;
    }
    let mut next = end;
    while raw.get(next) == Some(&b' ') {
        next += 1;
    }
    // A token ending the frame still counts; the caller sees there is nothing after.
    Some((&raw[i..end], next))
}

/// SD-NAME characters: printable US-ASCII except `=`, SP, `]`, `"`.
#[inline]
fn is_sd_name(c: u8) -> bool {
    (33..=126).contains(&c) && !matches!(c, b'=' | b']' | b'"')
}

/// Parses one or more SD-ELEMENTs starting at `raw[i] == '['`; returns the end offset.
fn parse_sd(
    raw: &[u8],
    mut i: usize,
    ctx: &mut Ctx<'_>,
    out: &mut EventBuf,
) -> Result<usize, ParseError> {
    let err = |at, reason| ParseError::new(ParseErrorKind::StructuredData, at, reason);
    while raw.get(i) == Some(&b'[') {
        i += 1;
        let id_start = i;
        while i < raw.len() && is_sd_name(raw[i]) {
            i += 1;
        }
        if i == id_start {
            return Err(err(i, "empty SD-ID"));
        }
        let id = &raw[id_start..i];
        loop {
            match raw.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b' ') => i += 1,
                _ => return Err(err(i, "expected ' ' or ']' in SD-ELEMENT")),
            }
            if raw.get(i) == Some(&b']') {
                // Trailing space before the closing bracket: tolerated.
                continue;
            }
            let name_start = i;
            while i < raw.len() && is_sd_name(raw[i]) {
                i += 1;
            }
            if i == name_start {
                return Err(err(i, "empty PARAM-NAME"));
            }
            let name = &raw[name_start..i];
            if raw.get(i) != Some(&b'=') || raw.get(i + 1) != Some(&b'"') {
                return Err(err(i, "expected =\" after PARAM-NAME"));
            }
            i += 2;
            let v_start = i;
            let mut escaped = false;
            loop {
                let n = memchr::memchr2(b'"', b'\\', &raw[i..])
                    .ok_or(err(v_start, "unterminated PARAM-VALUE"))?;
                i += n;
                if raw[i] == b'\\' {
                    escaped = true;
                    i += 2;
                    if i > raw.len() {
                        return Err(err(v_start, "unterminated PARAM-VALUE"));
                    }
                } else {
                    break;
                }
            }
            let value = if escaped {
                unescape(&raw[v_start..i], out)
            } else {
                Span::raw(v_start, i - v_start)
            };
            i += 1; // closing quote
            ctx.name_buf.clear();
            ctx.name_buf.extend_from_slice(id);
            ctx.name_buf.push(b'.');
            ctx.name_buf.extend_from_slice(name);
            ctx.put_built_name(out, Repr::Str(value));
        }
    }
    Ok(i)
}

/// Copies a PARAM-VALUE to scratch, undoing `\"`, `\\` and `\]` only.
fn unescape(v: &[u8], out: &mut EventBuf) -> Span {
    let start = out.scratch.len();
    let mut k = 0;
    while k < v.len() {
        if v[k] == b'\\' && matches!(v.get(k + 1), Some(b'"' | b'\\' | b']')) {
            out.scratch.push(v[k + 1]);
            k += 2;
        } else {
            out.scratch.push(v[k]);
            k += 1;
        }
    }
    out.scratch_span_from(start)
}
