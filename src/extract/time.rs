//! Event times written inside messages, for extractors that declare `time:` (see the module
//! documentation of `extract`): web server access and error logs read from files carry no
//! syslog header, so without their own stamp every line of a replayed file would share one
//! receive time and every correlation window would hold the whole file.
//!
//! The layouts are the ones daemons print, not a general date parser:
//!
//! | layout | who prints it |
//! |---|---|
//! | `2026-11-25T10:00:01Z`, `2026-11-25 10:00:01` (zone optional, also ` +0100` after a space) | RFC 3339 / ISO; FortiGate `date` + `time` (+ `tz`) joined |
//! | `1795600801`, `1795600801123456789` | epoch seconds … nanoseconds, by magnitude (FortiGate `eventtime`) |
//! | `25/Nov/2026:10:00:01 +0000` | Common Log Format `%t` (nginx `$time_local`, Apache `%t`) |
//! | `2026/11/25 10:00:01` | nginx error log |
//! | `Tue Nov 25 10:00:01.123456 2026`, `Tue Nov 25 10:00:01 2026` | Apache 2.4 error log (`%{u}t`, `%t`), C `ctime` |
//!
//! Stamps without a zone are read in the input's zone. Allocation-free.

use crate::event::Timestamp;
use crate::event::time::{
    Civil, NANOS_PER_SEC, ZoneResolver, parse_fraction, parse_iso, parse_offset, parse_time_value,
    two_digits,
};

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

fn month(b: &[u8]) -> Option<u32> {
    let m = [
        b.first()?.to_ascii_lowercase(),
        b.get(1)?.to_ascii_lowercase(),
        b.get(2)?.to_ascii_lowercase(),
    ];
    MONTHS.iter().position(|x| **x == m).map(|i| i as u32 + 1)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |v, &c| {
        v.checked_mul(10)?.checked_add((c - b'0') as u32)
    })
}

/// `HH:MM:SS` at the start of `b`.
fn hms(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((
        two_digits(&b[0..2])?,
        two_digits(&b[3..5])?,
        two_digits(&b[6..8])?,
    ))
}

fn resolve(c: Civil, offset: Option<i32>, zone: &mut ZoneResolver) -> Option<Timestamp> {
    if !c.is_valid() {
        return None;
    }
    Some(match offset {
        Some(o) => Timestamp((c.as_utc_secs() - o as i64) * NANOS_PER_SEC + c.nanos as i64),
        None => zone.to_utc(&c),
    })
}

/// Reads the whole of `b` as one of the layouts above.
pub fn parse_log_time(b: &[u8], zone: &mut ZoneResolver) -> Option<Timestamp> {
    let b = b.trim_ascii();
    if b.is_empty() {
        return None;
    }
    if let Some(t) = parse_time_value(b, zone) {
        return Some(t);
    }
    // ISO followed by a space and a zone: FortiGate's date, time and tz joined.
    if let Some(s) = parse_iso(b)
        && s.offset.is_none()
        && b.get(s.len) == Some(&b' ')
        && let Some((o, used)) = parse_offset(&b[s.len + 1..])
        && s.len + 1 + used == b.len()
    {
        return resolve(s.civil, Some(o), zone);
    }
    clf(b, zone)
        .or_else(|| slashed(b, zone))
        .or_else(|| ctime(b, zone))
}

/// `25/Nov/2026:10:00:01 +0000`
fn clf(b: &[u8], zone: &mut ZoneResolver) -> Option<Timestamp> {
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let day = two_digits(&b[0..2])?;
    let month = month(&b[3..6])?;
    let year = digits(&b[7..11])? as i64;
    let (hour, minute, second) = hms(&b[12..])?;
    let (nanos, flen) = parse_fraction(&b[20..]);
    let rest = &b[20 + flen..];
    let offset = match rest {
        [] => None,
        [b' ', z @ ..] => {
            let (o, used) = parse_offset(z)?;
            (used == z.len()).then_some(o)?;
            Some(o)
        }
        _ => return None,
    };
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    resolve(c, offset, zone)
}

/// `2026/11/25 10:00:01`
fn slashed(b: &[u8], zone: &mut ZoneResolver) -> Option<Timestamp> {
    if b.len() != 19 || b[4] != b'/' || b[7] != b'/' || b[10] != b' ' {
        return None;
    }
    let (hour, minute, second) = hms(&b[11..])?;
    let c = Civil {
        year: digits(&b[0..4])? as i64,
        month: two_digits(&b[5..7])?,
        day: two_digits(&b[8..10])?,
        hour,
        minute,
        second,
        nanos: 0,
    };
    resolve(c, None, zone)
}

/// `Tue Nov 25 10:00:01.123456 2026` (day zero- or space-padded, fraction optional).
fn ctime(b: &[u8], zone: &mut ZoneResolver) -> Option<Timestamp> {
    if b.len() < 24 || b[3] != b' ' || b[7] != b' ' || b[10] != b' ' {
        return None;
    }
    let month = month(&b[4..7])?;
    let day = match &b[8..10] {
        [b' ', d] => digits(std::slice::from_ref(d))?,
        d => two_digits(d)?,
    };
    let (hour, minute, second) = hms(&b[11..])?;
    let (nanos, flen) = parse_fraction(&b[19..]);
    let rest = &b[19 + flen..];
    let year = match rest {
        [b' ', y @ ..] if y.len() == 4 => digits(y)? as i64,
        _ => return None,
    };
    let c = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    resolve(c, None, zone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::time::Tz;

    fn utc(s: &str) -> Option<String> {
        let t = parse_log_time(s.as_bytes(), &mut ZoneResolver::new(Tz::Utc))?;
        let mut out = Vec::new();
        t.write_rfc3339(&mut out);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn layouts_daemons_print() {
        let want = Some("2026-11-25T10:00:01Z".to_string());
        assert_eq!(utc("25/Nov/2026:10:00:01 +0000"), want);
        assert_eq!(utc("25/Nov/2026:11:00:01 +0100"), want);
        assert_eq!(utc("25/nov/2026:04:30:01 -0530"), want);
        assert_eq!(utc("2026/11/25 10:00:01"), want);
        assert_eq!(utc("Tue Nov 25 10:00:01 2026"), want);
        assert_eq!(utc("2026-11-25 10:00:01"), want);
        assert_eq!(utc("2026-11-25 11:00:01 +0100"), want);
        assert_eq!(utc("2026-11-25T10:00:01Z"), want);
        assert_eq!(utc("1795600801"), want);
        assert_eq!(
            utc("Tue Nov 25 10:00:01.123456 2026").as_deref(),
            Some("2026-11-25T10:00:01.123456Z")
        );
        assert_eq!(
            utc("1795600801412345678").as_deref(),
            Some("2026-11-25T10:00:01.412345678Z")
        );
        assert_eq!(
            utc("Wed Nov  5 10:00:01 2026").as_deref(),
            Some("2026-11-05T10:00:01Z")
        );
    }

    #[test]
    fn zone_less_stamps_take_the_input_zone() {
        let mut z = ZoneResolver::new(Tz::parse("+05:00").unwrap());
        let t = parse_log_time(b"2026/11/25 15:00:01", &mut z).unwrap();
        let mut out = Vec::new();
        t.write_rfc3339(&mut out);
        assert_eq!(out, b"2026-11-25T10:00:01Z");
        // A stamp that names its zone ignores the input's.
        let t = parse_log_time(b"25/Nov/2026:10:00:01 +0000", &mut z).unwrap();
        let mut out = Vec::new();
        t.write_rfc3339(&mut out);
        assert_eq!(out, b"2026-11-25T10:00:01Z");
    }

    #[test]
    fn near_misses_are_not_times() {
        for s in [
            "",
            "-",
            "25/Xyz/2026:10:00:01 +0000",
            "31/Feb/2026:10:00:01 +0000",
            "25/Nov/2026:10:00:01 junk",
            "2026/11/25 10:00",
            "2026/11/25 25:00:01",
            "Tue Nov 25 10:00:01 26",
            "Tue Nov 25 10:00:01.5 2026 extra",
            "hello world",
        ] {
            assert_eq!(utc(s), None, "{s:?}");
        }
    }
}
