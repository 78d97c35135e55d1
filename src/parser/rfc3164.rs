//! RFC 3164 ("BSD syslog") headers and the variants real devices and daemons send.
//!
//! ```text
//! [<PRI>] [SEQ": "] ["*"|"."] TIMESTAMP [":"] [HOSTNAME] [TAG["["PID"]"]":"] MSG
//! ```
//!
//! Accepted beyond the RFC, because collectors meet them daily:
//! - no `<PRI>` (lines written to files by syslog daemons); no hostname (`su: ...`);
//! - `Mmm dd hh:mm:ss` with a space-padded or two-digit day, upper- or lower-case month,
//!   fractional seconds, a year after the day (`Jan 05 2024 12:00:00`, Cisco ASA) or after
//!   the time, and an ISO 8601 / RFC 3339 stamp instead (rsyslog's file format);
//! - a weekday in front, as C's `ctime()`/`asctime()` and `strftime("%a %b %e %H:%M:%S %Y")`
//!   write it (`Tue Nov 25 10:00:01 2026`): daemons that keep their own log file, vsftpd's
//!   `vsftpd.log` among them, stamp lines so, with no host or tag after the stamp;
//! - Cisco IOS: a sequence number (`000123: `), clock flags `*` (not synchronised) and `.`,
//!   a zone abbreviation and a colon after the time (`*Mar  1 18:46:11.123 UTC: %SYS-5-...`);
//! - tags with a parenthesised detail, `sshd(pam_unix)[123]:` → appname `sshd`, procid `123`;
//! - Cisco ASA's `hostname : %ASA-6-302013:` (a lone colon after the hostname);
//! - a payload right after the stamp or PRI, with no hostname or tag (FortiGate's
//!   `<189>date=2024-03-10 time=11:00:00 devname=...`).
//!
//! Year-less stamps get their year from [`infer_year`]; zone-less stamps are read in the
//! input's zone. What does not live here: the payload inside MSG (`parser/mod.rs` dispatches).

use super::{ParseError, ParseErrorKind};
use crate::event::time::{
    Civil, NANOS_PER_SEC, ZoneResolver, infer_year, parse_fraction, parse_iso, two_digits,
};
use crate::event::{EventBuf, FieldId, Repr, Span, Timestamp};

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Month number (1–12) of a case-insensitive three-letter English abbreviation.
#[inline]
pub fn month(b: &[u8]) -> Option<u32> {
    let m = [
        b.first()?.to_ascii_lowercase(),
        b.get(1)?.to_ascii_lowercase(),
        b.get(2)?.to_ascii_lowercase(),
    ];
    MONTHS.iter().position(|x| **x == m).map(|i| i as u32 + 1)
}

/// Length of an English weekday abbreviation and one space at the start of `b` when a month
/// abbreviation follows (`Tue Nov 25 10:00:01 2026`, a `ctime()` stamp), else 0.
fn weekday_prefix(b: &[u8]) -> usize {
    const DAYS: [&[u8; 3]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];
    let Some(w) = b.get(..3) else { return 0 };
    let w = [
        w[0].to_ascii_lowercase(),
        w[1].to_ascii_lowercase(),
        w[2].to_ascii_lowercase(),
    ];
    if DAYS.iter().any(|d| **d == w) && b.get(3) == Some(&b' ') && month(&b[4..]).is_some() {
        4
    } else {
        0
    }
}

/// True when `b` starts the way an RFC 3164 line without `<PRI>` does.
pub fn looks_like_header(b: &[u8]) -> bool {
    let b = match b.first() {
        Some(b'*' | b'.') => &b[1..],
        _ => b,
    };
    let b = &b[weekday_prefix(b)..];
    if month(b).is_some() && b.get(3) == Some(&b' ') {
        return true;
    }
    if parse_iso(b).is_some() {
        return true;
    }
    // Cisco sequence number followed by a stamp.
    let d = b.iter().take(10).take_while(|c| c.is_ascii_digit()).count();
    d > 0
        && b.get(d) == Some(&b':')
        && b.get(d + 1) == Some(&b' ')
        && looks_like_header(&b[d + 2..])
}

/// Parses a PRI at `b[0] == '<'`: returns (pri, bytes used).
pub fn parse_pri(b: &[u8], at: usize) -> Result<(u8, usize), ParseError> {
    let bad = |reason| ParseError::new(ParseErrorKind::Pri, at, reason);
    let digits = b[1..]
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || digits > 3 || b.get(1 + digits) != Some(&b'>') {
        return Err(bad("PRI must be <0> to <191>"));
    }
    if digits > 1 && b[1] == b'0' {
        return Err(bad("PRI has a leading zero"));
    }
    let mut v = 0u32;
    for &c in &b[1..1 + digits] {
        v = v * 10 + (c - b'0') as u32;
    }
    if v > 191 {
        return Err(bad("PRI above 191"));
    }
    Ok((v as u8, digits + 2))
}

/// A stamp found in a BSD header.
struct Stamp {
    civil: Civil,
    has_year: bool,
    /// Offset in seconds when the stamp names its zone (ISO offset, `UTC`, `GMT`).
    offset: Option<i32>,
    len: usize,
}

/// `Mmm dd [yyyy ]hh:mm:ss[.frac][ yyyy][ ZONE:]` at the start of `b`.
fn parse_bsd_stamp(b: &[u8]) -> Option<Stamp> {
    let w = weekday_prefix(b);
    let mut s = parse_month_stamp(&b[w..])?;
    s.len += w;
    Some(s)
}

/// `Mmm dd [yyyy ]hh:mm:ss[.fff][ yyyy][ ZONE]`, from the month on.
fn parse_month_stamp(b: &[u8]) -> Option<Stamp> {
    let m = month(b)?;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    let mut i = 4;
    if b.get(i) == Some(&b' ') {
        i += 1; // space-padded day: "Oct  1"
    }
    let dlen = b[i..]
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if dlen == 0 {
        return None;
    }
    let day = if dlen == 1 {
        (b[i] - b'0') as u32
    } else {
        two_digits(&b[i..i + 2])?
    };
    i += dlen;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let mut year = 0i64;
    let mut has_year = false;
    // Year before the time: "Jan 05 2024 12:00:00".
    if b.len() >= i + 5 && b[i..i + 4].iter().all(u8::is_ascii_digit) && b[i + 4] == b' ' {
        year = std::str::from_utf8(&b[i..i + 4]).ok()?.parse().ok()?;
        has_year = true;
        i += 5;
    }
    let t = b.get(i..i + 8)?;
    if t[2] != b':' || t[5] != b':' {
        return None;
    }
    let hour = two_digits(&t[0..2])?;
    let minute = two_digits(&t[3..5])?;
    let second = two_digits(&t[6..8])?;
    i += 8;
    let (nanos, flen) = parse_fraction(&b[i..]);
    i += flen;
    // Year after the time: "Oct 11 22:14:15 2024 host".
    if !has_year
        && b.len() >= i + 5
        && b[i] == b' '
        && b[i + 1..i + 5].iter().all(u8::is_ascii_digit)
        && matches!(b.get(i + 5), None | Some(b' ' | b':'))
    {
        year = std::str::from_utf8(&b[i + 1..i + 5]).ok()?.parse().ok()?;
        has_year = true;
        i += 5;
    }
    // Cisco zone abbreviation, recognised only before a colon ("... 18:46:11.123 UTC:").
    let mut offset = None;
    if b.get(i) == Some(&b' ') {
        let z = b[i + 1..]
            .iter()
            .take(6)
            .take_while(|c| c.is_ascii_uppercase())
            .count();
        if (2..=5).contains(&z) && b.get(i + 1 + z) == Some(&b':') {
            let name = &b[i + 1..i + 1 + z];
            if name == b"UTC" || name == b"GMT" || name == b"UT" {
                offset = Some(0);
            }
            i += 1 + z;
        }
    }
    Some(Stamp {
        civil: Civil {
            year,
            month: m,
            day,
            hour,
            minute,
            second,
            nanos,
        },
        has_year,
        offset,
        len: i,
    })
}

/// Parses an RFC 3164 frame from `start`; fills header fields and returns where MSG starts.
pub fn parse(
    raw: &[u8],
    start: usize,
    out: &mut EventBuf,
    zone: &mut ZoneResolver,
) -> Result<Option<usize>, ParseError> {
    let mut i = start;
    let mut have_pri = false;
    if raw.get(i) == Some(&b'<') {
        let (pri, used) = parse_pri(&raw[i..], i)?;
        out.set(FieldId::FACILITY, Repr::Int((pri >> 3) as i64));
        out.set(FieldId::SEVERITY, Repr::Int((pri & 7) as i64));
        i += used;
        have_pri = true;
        while raw.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    // Cisco sequence number: "000123: ".
    let d = raw[i..]
        .iter()
        .take(10)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if d > 0 && raw.get(i + d) == Some(&b':') && raw.get(i + d + 1) == Some(&b' ') {
        let after = &raw[i + d + 2..];
        let after = after
            .strip_prefix(b"*")
            .or_else(|| after.strip_prefix(b"."))
            .unwrap_or(after);
        if month(after).is_some() || parse_iso(after).is_some() {
            i += d + 2;
        }
    }
    if matches!(raw.get(i), Some(b'*' | b'.')) {
        i += 1;
    }
    let b = &raw[i..];
    let stamp = if let Some(s) = parse_bsd_stamp(b) {
        Some(s)
    } else {
        parse_iso(b).map(|s| Stamp {
            civil: s.civil,
            has_year: true,
            offset: s.offset,
            len: s.len,
        })
    };
    match stamp {
        Some(mut s) => {
            if !s.has_year {
                s.civil.year =
                    infer_year(&s.civil, out.received(), zone).ok_or(ParseError::new(
                        ParseErrorKind::Timestamp,
                        i,
                        "no year makes this date valid",
                    ))?;
            }
            if !s.civil.is_valid() {
                return Err(ParseError::new(
                    ParseErrorKind::Timestamp,
                    i,
                    "date or time out of range",
                ));
            }
            let t = match s.offset {
                Some(o) => Timestamp(
                    (s.civil.as_utc_secs() - o as i64) * NANOS_PER_SEC + s.civil.nanos as i64,
                ),
                None => zone.to_utc(&s.civil),
            };
            out.set(FieldId::TIMESTAMP, Repr::Time(t));
            out.set_time(t);
            i += s.len;
            if raw.get(i) == Some(&b':') {
                i += 1;
            }
        }
        None if have_pri => {
            // Some devices send "<13>app: msg" with no stamp; the receive time stands in.
        }
        None => {
            return Err(ParseError::new(
                ParseErrorKind::Timestamp,
                i,
                "no RFC 3164 or ISO timestamp",
            ));
        }
    }
    while raw.get(i) == Some(&b' ') {
        i += 1;
    }
    if i >= raw.len() {
        return Ok(None);
    }
    // HOSTNAME, unless the first token is already the tag or the payload.
    let tok = token(&raw[i..]);
    if !starts_payload(&raw[i..])
        && !is_tag(tok)
        && (i + tok.len() >= raw.len() || raw[i + tok.len()] == b' ')
    {
        out.set(FieldId::HOSTNAME, Repr::Str(Span::raw(i, tok.len())));
        i += tok.len();
        while raw.get(i) == Some(&b' ') {
            i += 1;
        }
        // Cisco ASA with `logging device-id` writes "fw01 : %ASA-6-302013: ...": the
        // lone colon belongs to neither the hostname nor the tag.
        if raw.get(i) == Some(&b':') && matches!(raw.get(i + 1), None | Some(b' ')) {
            i += 1;
            while raw.get(i) == Some(&b' ') {
                i += 1;
            }
        }
    }
    if i >= raw.len() {
        return Ok(None);
    }
    if !starts_payload(&raw[i..])
        && let Some(used) = parse_tag(raw, i, out)
    {
        i += used;
        if raw.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    out.set(FieldId::MESSAGE, Repr::Str(Span::raw(i, raw.len() - i)));
    Ok(Some(i))
}

/// The bytes up to the next space.
fn token(b: &[u8]) -> &[u8] {
    let n = memchr::memchr(b' ', b).unwrap_or(b.len());
    &b[..n]
}

/// A structured payload starts right here (no hostname or tag in front of it). A `key=`
/// token counts: FortiGate sends `<189>date=2024-03-10 time=11:00:00 devname=...` with no
/// stamp, host or tag, and a hostname never holds `=`.
fn starts_payload(b: &[u8]) -> bool {
    b.first() == Some(&b'{')
        || b.starts_with(b"CEF:")
        || b.starts_with(b"LEEF:")
        || b.starts_with(b"@cee:")
        || super::kv::looks_like_kv(b)
}

/// A token that can only be a tag: `name:`, `name[pid]`, `%FAC-SEV-MNEMONIC:`.
fn is_tag(tok: &[u8]) -> bool {
    tok.last() == Some(&b':') || memchr::memchr(b'[', tok).is_some() || tok.first() == Some(&b'%')
}

/// Parses `name[(detail)][[pid]]:` at `raw[i..]`; stores appname/procid and returns the bytes
/// used (through the colon), or `None` when the token is not a tag.
fn parse_tag(raw: &[u8], i: usize, out: &mut EventBuf) -> Option<usize> {
    let b = &raw[i..];
    let tok = token(b);
    let name_end = tok
        .iter()
        .position(|&c| matches!(c, b'[' | b':' | b'('))
        .unwrap_or(tok.len());
    if name_end == 0 {
        return None;
    }
    let mut j = name_end;
    // "(pam_unix)" detail: skipped.
    if tok.get(j) == Some(&b'(') {
        let close = memchr::memchr(b')', &tok[j..])?;
        j += close + 1;
    }
    let mut pid = None;
    if tok.get(j) == Some(&b'[') {
        let close = memchr::memchr(b']', &tok[j..])?;
        pid = Some((j + 1, close - 1));
        j += close + 1;
    }
    let colon = tok.get(j) == Some(&b':');
    if !colon && pid.is_none() {
        return None;
    }
    if colon {
        j += 1;
    } else if j != tok.len() {
        return None;
    }
    out.set(FieldId::APPNAME, Repr::Str(Span::raw(i, name_end)));
    if let Some((s, l)) = pid {
        out.set(FieldId::PROCID, Repr::Str(Span::raw(i + s, l)));
    }
    Some(j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::time::Tz;
    use crate::event::{Event, Value};

    fn p(line: &str) -> (EventBuf, Result<Option<usize>, ParseError>) {
        let mut buf = EventBuf::new();
        buf.reset(
            64,
            crate::event::time::parse_time_value(
                b"2024-03-10T12:00:00Z",
                &mut ZoneResolver::new(Tz::Utc),
            )
            .unwrap(),
        );
        let r = parse(
            line.as_bytes(),
            0,
            &mut buf,
            &mut ZoneResolver::new(Tz::Utc),
        );
        (buf, r)
    }

    fn s<'a>(ev: &Event<'a>, f: FieldId) -> Option<String> {
        ev.get(f).map(|v| match v {
            Value::Str(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Time(t) => t.to_string(),
            Value::Int(i) => i.to_string(),
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn rfc_example() {
        let line = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8";
        let (buf, r) = p(line);
        r.unwrap();
        let ev = Event::new(line.as_bytes(), &buf);
        assert_eq!(s(&ev, FieldId::FACILITY).as_deref(), Some("4"));
        assert_eq!(s(&ev, FieldId::SEVERITY).as_deref(), Some("2"));
        assert_eq!(
            s(&ev, FieldId::TIMESTAMP).as_deref(),
            Some("2023-10-11T22:14:15Z")
        );
        assert_eq!(s(&ev, FieldId::HOSTNAME).as_deref(), Some("mymachine"));
        assert_eq!(s(&ev, FieldId::APPNAME).as_deref(), Some("su"));
        assert_eq!(
            s(&ev, FieldId::MESSAGE).as_deref(),
            Some("'su root' failed for lonvick on /dev/pts/8")
        );
    }

    #[test]
    fn pam_tag_and_pid() {
        let line =
            "Mar  1 09:00:00 web1 sshd(pam_unix)[1234]: authentication failure; rhost=1.2.3.4";
        let (buf, r) = p(line);
        r.unwrap();
        let ev = Event::new(line.as_bytes(), &buf);
        assert_eq!(s(&ev, FieldId::APPNAME).as_deref(), Some("sshd"));
        assert_eq!(s(&ev, FieldId::PROCID).as_deref(), Some("1234"));
        assert_eq!(
            s(&ev, FieldId::TIMESTAMP).as_deref(),
            Some("2024-03-01T09:00:00Z")
        );
    }

    #[test]
    fn ctime_stamp_with_weekday_and_no_host() {
        // vsftpd.log (vsftpd_log_file): strftime "%a %b %e %H:%M:%S %Y", then "[pid N]".
        for (line, stamp) in [
            (
                "Tue Nov 25 10:00:01 2026 [pid 1234] [bob] FAIL LOGIN: Client \"203.0.113.7\"",
                "2026-11-25T10:00:01Z",
            ),
            (
                "Wed Mar  4 09:05:00 2026 [pid 77] CONNECT: Client \"::ffff:203.0.113.7\"",
                "2026-03-04T09:05:00Z",
            ),
        ] {
            assert!(looks_like_header(line.as_bytes()), "{line}");
            let (buf, r) = p(line);
            r.unwrap();
            let ev = Event::new(line.as_bytes(), &buf);
            assert_eq!(s(&ev, FieldId::TIMESTAMP).as_deref(), Some(stamp));
            assert_eq!(s(&ev, FieldId::HOSTNAME), None);
            assert_eq!(s(&ev, FieldId::APPNAME), None);
            assert!(s(&ev, FieldId::MESSAGE).unwrap().starts_with("[pid "));
        }
        // A weekday alone, or before something that is no month, is no stamp.
        assert!(!looks_like_header(b"Tue 25 Nov 10:00:01 2026 x"));
        assert!(!looks_like_header(b"Tuesday Nov 25 10:00:01 2026 x"));
    }
}
