//! ArcSight CEF: `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|Extension`.
//!
//! Header fields become `cef.version` … `cef.severity` (with `\|` and `\\` unescaped).
//! The extension is `key=value` pairs separated by spaces, where values may themselves hold
//! spaces: a value runs until the next ` key=`. Escapes in values are `\=`, `\\`, `\n`, `\r`
//! (and `\|`, which some senders write); any other backslash stays. An unescaped `=` that
//! is not preceded by ` key` belongs to the value (URLs with query strings), as devices
//! rarely escape them. The same extension reader serves LEEF when its delimiter is a space.

use super::{Ctx, ParseError, ParseErrorKind, put_header_field, split_pipes};
use crate::event::{EventBuf, FieldId, Repr, Span};

const HEADER: [FieldId; 7] = [
    FieldId::CEF_VERSION,
    FieldId::CEF_VENDOR,
    FieldId::CEF_PRODUCT,
    FieldId::CEF_PRODUCT_VERSION,
    FieldId::CEF_SIGNATURE_ID,
    FieldId::CEF_NAME,
    FieldId::CEF_SEVERITY,
];

/// Parses the CEF record at `raw[at..]`, which should start with `CEF:` (an input forced
/// to `cef` may hand over anything).
pub(crate) fn parse(
    raw: &[u8],
    at: usize,
    ctx: &mut Ctx<'_>,
    out: &mut EventBuf,
) -> Result<(), ParseError> {
    // A frame forced to CEF (`--format cef`) need not start with the marker: checked here,
    // not assumed (found by fuzzing: a 2-byte frame panicked).
    if !raw[at..].starts_with(b"CEF:") {
        return Err(ParseError::new(
            ParseErrorKind::Cef,
            at,
            "CEF record must start with \"CEF:\"",
        ));
    }
    let mut start = at + 4;
    while raw.get(start) == Some(&b' ') {
        start += 1;
    }
    let mut fields = Vec::with_capacity(7);
    let ext = split_pipes(&raw[start..], 7, &mut fields).ok_or(ParseError::new(
        ParseErrorKind::Cef,
        at,
        "CEF header needs 7 '|'-separated fields",
    ))?;
    for (k, &(a, b)) in fields.iter().enumerate() {
        put_header_field(out, raw, start + a, start + b, HEADER[k]);
    }
    parse_ext(raw, start + ext, raw.len(), ctx, out);
    Ok(())
}

#[inline]
pub(crate) fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'[' | b']')
}

/// Reads space-separated `key=value` pairs in `raw[from..to]` where values may contain
/// spaces (CEF extension rules). Tokens without `=` before the first key are skipped.
pub(crate) fn parse_ext(raw: &[u8], from: usize, to: usize, ctx: &mut Ctx<'_>, out: &mut EventBuf) {
    let mut i = from;
    while i < to && raw[i] == b' ' {
        i += 1;
    }
    // Find the first key.
    let mut key_start = i;
    loop {
        if key_start >= to {
            return;
        }
        let mut k = key_start;
        while k < to && is_key_char(raw[k]) {
            k += 1;
        }
        if k > key_start && k < to && raw[k] == b'=' {
            break;
        }
        // Not a key: skip this token.
        match memchr::memchr(b' ', &raw[key_start..to]) {
            Some(n) => key_start += n + 1,
            None => return,
        }
    }
    while key_start < to {
        let eq = key_start
            + raw[key_start..to]
                .iter()
                .position(|&c| c == b'=')
                .expect("key ends at '='");
        let key = &raw[key_start..eq];
        let v_start = eq + 1;
        // Find where the value ends: before " nextkey=".
        let mut j = v_start;
        let (v_end, next) = loop {
            let Some(n) = memchr::memchr(b'=', &raw[j..to]) else {
                break (to, to);
            };
            let e = j + n;
            if e > v_start && raw[e - 1] == b'\\' && !escaped_backslash(raw, v_start, e - 1) {
                j = e + 1;
                continue;
            }
            let mut k = e;
            while k > v_start && is_key_char(raw[k - 1]) {
                k -= 1;
            }
            if k < e && k > v_start && raw[k - 1] == b' ' {
                let mut end = k - 1;
                while end > v_start && raw[end - 1] == b' ' {
                    end -= 1;
                }
                break (end, k);
            }
            if k < e && k == v_start {
                // "key= next=": an empty value followed directly by a key is impossible
                // without a space; the '=' belongs to the value.
            }
            j = e + 1;
        };
        let value = &raw[v_start..v_end];
        let repr = if memchr::memchr(b'\\', value).is_some() {
            Repr::Str(unescape(value, out))
        } else {
            Repr::Str(Span::raw(v_start, v_end - v_start))
        };
        ctx.put_raw_name(out, raw, key, repr);
        key_start = next;
    }
}

/// True when the backslash at `pos` is itself escaped by an odd run before it.
fn escaped_backslash(raw: &[u8], from: usize, pos: usize) -> bool {
    let mut n = 0;
    let mut p = pos;
    while p > from && raw[p - 1] == b'\\' {
        n += 1;
        p -= 1;
    }
    n % 2 == 1
}

fn unescape(v: &[u8], out: &mut EventBuf) -> Span {
    let start = out.scratch.len();
    let mut k = 0;
    while k < v.len() {
        if v[k] == b'\\' {
            let r = match v.get(k + 1) {
                Some(b'=') => Some(b'='),
                Some(b'\\') => Some(b'\\'),
                Some(b'|') => Some(b'|'),
                Some(b'n') => Some(b'\n'),
                Some(b'r') => Some(b'\r'),
                _ => None,
            };
            if let Some(c) = r {
                out.scratch.push(c);
                k += 2;
                continue;
            }
        }
        out.scratch.push(v[k]);
        k += 1;
    }
    out.scratch_span_from(start)
}
