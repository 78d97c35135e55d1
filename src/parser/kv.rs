//! Generic `key=value` messages (FortiGate, many firewalls and appliances, Linux netfilter).
//!
//! Pairs are separated by whitespace; a value is either quoted (`"..."` or `'...'`, with `\"`
//! / `\'` and `\\` escapes undone) or runs to the next whitespace. Empty values (`OUT= `) are
//! kept as empty strings. Tokens that are not `key=value` are skipped: the message itself
//! stays intact in `message`, so nothing is lost.

use super::{Ctx, ParseError, ParseErrorKind};
use crate::event::{EventBuf, Repr, Span};

#[inline]
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'@' | b':')
}

/// True when the first token of `b` is `key=` (the auto-detection rule for kv).
pub fn looks_like_kv(b: &[u8]) -> bool {
    let k = b
        .iter()
        .take(64)
        .take_while(|&&c| is_key_char(c) && c != b':')
        .count();
    k > 0 && b.get(k) == Some(&b'=') && b[0].is_ascii_alphabetic()
}

/// True when a syslog MSG is `key=value` pairs: its first token is `key=` once any
/// bracketed groups in front are passed over — the kernel's uptime (`[ 1234.567890]`) and
/// netfilter log prefixes such as UFW's `[UFW BLOCK]` stand before iptables' `IN=eth0 OUT=`.
/// (The pair parser skips those groups as tokens that are no pairs.)
pub fn looks_like_kv_msg(mut b: &[u8]) -> bool {
    // Bounded: a line of brackets is no reason to scan far.
    for _ in 0..4 {
        if b.first() != Some(&b'[') {
            break;
        }
        let Some(close) = memchr::memchr(b']', b) else {
            return false;
        };
        b = &b[close + 1..];
        let spaces = b.iter().take_while(|&&c| c == b' ').count();
        b = &b[spaces..];
    }
    looks_like_kv(b)
}

/// Parses `key=value` pairs in `raw[at..]`.
pub(crate) fn parse(
    raw: &[u8],
    at: usize,
    ctx: &mut Ctx<'_>,
    out: &mut EventBuf,
) -> Result<(), ParseError> {
    let to = raw.len();
    let mut i = at;
    let mut pairs = 0usize;
    while i < to {
        while i < to && matches!(raw[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        let ks = i;
        while i < to && is_key_char(raw[i]) {
            i += 1;
        }
        if i == ks || i >= to || raw[i] != b'=' {
            // Not a pair: skip the token.
            while i < to && !matches!(raw[i], b' ' | b'\t') {
                i += 1;
            }
            continue;
        }
        let key = &raw[ks..i];
        i += 1;
        let repr = match raw.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let vs = i + 1;
                let mut j = vs;
                let mut escaped = false;
                loop {
                    match memchr::memchr2(q, b'\\', &raw[j..to]) {
                        None => {
                            return Err(ParseError::new(
                                ParseErrorKind::Kv,
                                ks,
                                "unterminated quoted value",
                            ));
                        }
                        Some(n) if raw[j + n] == b'\\' => {
                            escaped = true;
                            j += n + 2;
                            if j > to {
                                return Err(ParseError::new(
                                    ParseErrorKind::Kv,
                                    ks,
                                    "unterminated quoted value",
                                ));
                            }
                        }
                        Some(n) => {
                            j += n;
                            break;
                        }
                    }
                }
                i = j + 1;
                if escaped {
                    Repr::Str(unescape(&raw[vs..j], q, out))
                } else {
                    Repr::Str(Span::raw(vs, j - vs))
                }
            }
            _ => {
                let vs = i;
                while i < to && !matches!(raw[i], b' ' | b'\t') {
                    i += 1;
                }
                Repr::Str(Span::raw(vs, i - vs))
            }
        };
        ctx.put_raw_name(out, raw, key, repr);
        pairs += 1;
    }
    if pairs == 0 {
        return Err(ParseError::new(ParseErrorKind::Kv, at, "no key=value pair"));
    }
    Ok(())
}

fn unescape(v: &[u8], q: u8, out: &mut EventBuf) -> Span {
    let start = out.scratch.len();
    let mut k = 0;
    while k < v.len() {
        if v[k] == b'\\' && (v.get(k + 1) == Some(&q) || v.get(k + 1) == Some(&b'\\')) {
            out.scratch.push(v[k + 1]);
            k += 2;
        } else {
            out.scratch.push(v[k]);
            k += 1;
        }
    }
    out.scratch_span_from(start)
}
