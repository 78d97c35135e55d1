//! IBM QRadar LEEF 1.0 and 2.0.
//!
//! ```text
//! LEEF:1.0|Vendor|Product|Version|EventID|key=value<TAB>key=value
//! LEEF:2.0|Vendor|Product|Version|EventID|DelimiterChar|key=value^key=value
//! ```
//! Header fields become `leef.version`, `leef.vendor`, `leef.product`,
//! `leef.product_version`, `leef.event_id`. The 2.0 delimiter may be one character, a hex
//! code (`x5E`, `0x5E`) or `\t`; empty means tab. Attribute values are taken as they are (LEEF
//! defines no escapes). Senders that use spaces instead of the declared tab are common: when
//! the attributes contain no delimiter at all, they are read with the CEF extension rules.

use super::{Ctx, ParseError, ParseErrorKind, cef, put_header_field, split_pipes};
use crate::event::{EventBuf, FieldId, Repr, Span};

/// Parses the LEEF record at `raw[at..]`, which should start with `LEEF:` (an input forced
/// to `leef` may hand over anything).
pub(crate) fn parse(
    raw: &[u8],
    at: usize,
    ctx: &mut Ctx<'_>,
    out: &mut EventBuf,
) -> Result<(), ParseError> {
    let err = |reason| ParseError::new(ParseErrorKind::Leef, at, reason);
    // Checked, not assumed: a frame forced to LEEF need not start with the marker (found by
    // fuzzing: a 2-byte frame panicked).
    if !raw[at..].starts_with(b"LEEF:") {
        return Err(err("LEEF record must start with \"LEEF:\""));
    }
    let start = at + 5;
    let b = &raw[start..];
    let v2 = b.starts_with(b"2.");
    let n = if v2 { 6 } else { 5 };
    let mut fields = Vec::with_capacity(6);
    let ext = match split_pipes(b, n, &mut fields) {
        Some(e) => e,
        // LEEF 1.0 without a trailing '|' after the event id and no attributes.
        None if !v2 && fields.len() == 4 => {
            fields.push((fields[3].1 + 1, b.len()));
            b.len()
        }
        None => return Err(err("LEEF header needs its '|'-separated fields")),
    };
    let ids = [
        FieldId::LEEF_VERSION,
        FieldId::LEEF_VENDOR,
        FieldId::LEEF_PRODUCT,
        FieldId::LEEF_PRODUCT_VERSION,
        FieldId::LEEF_EVENT_ID,
    ];
    for (k, id) in ids.iter().enumerate() {
        let (a, e) = fields[k];
        put_header_field(out, raw, start + a, start + e, *id);
    }
    let delim = if v2 {
        let (a, e) = fields[5];
        delimiter(&b[a..e]).ok_or(err("LEEF 2.0 delimiter is not a character or hex code"))?
    } else {
        b'\t'
    };
    let from = start + ext;
    let to = raw.len();
    if memchr::memchr(delim, &raw[from..to]).is_none() && delim != b' ' {
        cef::parse_ext(raw, from, to, ctx, out);
        return Ok(());
    }
    let mut i = from;
    while i < to {
        let end = memchr::memchr(delim, &raw[i..to]).map_or(to, |n| i + n);
        let pair = &raw[i..end];
        if let Some(eq) = memchr::memchr(b'=', pair)
            && eq > 0
        {
            let vs = i + eq + 1;
            ctx.put_raw_name(
                out,
                raw,
                &raw[i..i + eq],
                Repr::Str(Span::raw(vs, end - vs)),
            );
        }
        i = end + 1;
    }
    Ok(())
}

/// The LEEF 2.0 delimiter field: `^`, `x5E`, `0x5E`, `\t`, or empty (tab).
fn delimiter(f: &[u8]) -> Option<u8> {
    match f {
        [] => Some(b'\t'),
        [c] => Some(*c),
        b"\\t" => Some(b'\t'),
        _ => {
            let hex = f
                .strip_prefix(b"0x")
                .or_else(|| f.strip_prefix(b"0X"))
                .or_else(|| f.strip_prefix(b"x"))
                .or_else(|| f.strip_prefix(b"X"))?;
            let s = std::str::from_utf8(hex).ok()?;
            u8::from_str_radix(s, 16).ok()
        }
    }
}
