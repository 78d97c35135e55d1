//! Generic `key=value` messages (FortiGate, many firewalls and appliances, Linux netfilter).
//!
//! Pairs are separated by whitespace; a value is either quoted (`"..."` or `'...'`, with `\"`
//! / `\'` and `\\` escapes undone) or runs to the next whitespace. Empty values (`OUT= `) are
//! kept as empty strings. Tokens that are not `key=value` are skipped: the message itself
//! stays intact in `message`, so nothing is lost.
//!
//! Linux audit records (`/var/log/audit/audit.log`, or relayed by audisp-syslog) are kv with
//! three habits of their own, handled here because nothing after parsing could undo them:
//! - `msg=audit(1700000000.123:456):` carries the event time (epoch seconds, milliseconds,
//!   serial). It becomes the event time: a raw audit.log line has no other, and a relayed one
//!   is stamped when relayed.
//! - User-space records (`USER_AUTH`, `ADD_USER`, `USER_CMD`, ...) put their own pairs in a
//!   single-quoted `msg='op=PAM:authentication acct="bob" ... res=failed'`. Those pairs are
//!   fields too (the quoted text stays a value of `msg`), except where the event already has
//!   the field: a relayed record keeps its syslog `hostname`, the reporting host, and the
//!   audit `hostname=` (the client's) only stands in when there is no header.
//! - The `ENRICHED` log format appends interpreted fields after a GS (0x1D) character
//!   (`key="x"\x1dARCH=x86_64 SYSCALL=execve AUID="bob"`): GS separates pairs like a space.

use super::{Ctx, ParseError, ParseErrorKind};
use crate::event::{EventBuf, Repr, Span, Timestamp};

/// Separates pairs (GS: the audit `ENRICHED` format's separator).
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | 0x1d)
}

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
    if parse_pairs(raw, at, raw.len(), false, ctx, out)? == 0 {
        return Err(ParseError::new(ParseErrorKind::Kv, at, "no key=value pair"));
    }
    Ok(())
}

/// Parses the pairs in `raw[from..to]` (`nested`: inside an audit `msg='...'`); returns how
/// many.
fn parse_pairs(
    raw: &[u8],
    from: usize,
    to: usize,
    nested: bool,
    ctx: &mut Ctx<'_>,
    out: &mut EventBuf,
) -> Result<usize, ParseError> {
    let mut i = from;
    let mut pairs = 0usize;
    while i < to {
        while i < to && (is_space(raw[i]) || raw[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < to && is_key_char(raw[i]) {
            i += 1;
        }
        if i == ks || i >= to || raw[i] != b'=' {
            // Not a pair: skip the token.
            while i < to && !is_space(raw[i]) {
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
                    if q == b'\'' && key == b"msg" && !nested && looks_like_kv(&raw[vs..j]) {
                        // An audit user-space record's own pairs. Best effort: a broken
                        // inner pair loses only what follows it.
                        let _ = parse_pairs(raw, vs, j, true, ctx, out);
                    }
                    Repr::Str(Span::raw(vs, j - vs))
                }
            }
            _ => {
                let vs = i;
                while i < to && !is_space(raw[i]) {
                    i += 1;
                }
                if key == b"msg"
                    && let Some(t) = audit_time(&raw[vs..i])
                {
                    out.set_time(t);
                }
                Repr::Str(Span::raw(vs, i - vs))
            }
        };
        // A nested pair never shadows what the event already says: a relayed record's
        // `hostname=` (the audit client's) must not replace the syslog header's host.
        let taken = nested
            && ctx
                .table
                .get(key)
                .is_some_and(|f| out.get_repr(f).is_some());
        if !taken {
            ctx.put_raw_name(out, raw, key, repr);
        }
        pairs += 1;
    }
    Ok(pairs)
}

/// The time of an audit record's `audit(SECONDS.MILLIS:SERIAL):` stamp.
fn audit_time(v: &[u8]) -> Option<Timestamp> {
    let v = v.strip_prefix(b"audit(")?;
    let dot = v.iter().position(|&c| c == b'.')?;
    let (secs, rest) = (&v[..dot], &v[dot + 1..]);
    let colon = rest.iter().position(|&c| c == b':')?;
    let frac = &rest[..colon];
    if secs.is_empty()
        || secs.len() > 12
        || frac.is_empty()
        || frac.len() > 9
        || !secs.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return None;
    }
    let secs: i64 = std::str::from_utf8(secs).ok()?.parse().ok()?;
    let mut nanos: i64 = std::str::from_utf8(frac).ok()?.parse().ok()?;
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    Some(Timestamp(
        secs.checked_mul(crate::event::time::NANOS_PER_SEC)? + nanos,
    ))
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
