//! Timestamps: the instant type, calendar arithmetic, RFC 3339 parsing and printing, time
//! zones for zone-less stamps, and the year rule for year-less RFC 3164 stamps.
//!
//! Everything here is allocation-free and table-free so parsers can call it per event. Time
//! zone lookups (named IANA zones, via `jiff`) are cached per quarter hour of local time,
//! because a zone's offset only changes on such boundaries.

use std::fmt;

/// Nanoseconds since the Unix epoch, UTC. Covers the years 1678–2261.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub i64);

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_nanos() as i64)
    }

    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(NANOS_PER_SEC))
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// Appends RFC 3339 in UTC (`2024-10-11T22:14:15.003Z`); the fraction is printed only
    /// when non-zero, with 3, 6 or 9 digits.
    pub fn write_rfc3339(self, out: &mut Vec<u8>) {
        let secs = self.secs();
        let nanos = self.subsec_nanos();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        push_num(out, y as u64, 4);
        out.push(b'-');
        push_num(out, m as u64, 2);
        out.push(b'-');
        push_num(out, d as u64, 2);
        out.push(b'T');
        push_num(out, (sod / 3600) as u64, 2);
        out.push(b':');
        push_num(out, (sod / 60 % 60) as u64, 2);
        out.push(b':');
        push_num(out, (sod % 60) as u64, 2);
        if nanos != 0 {
            out.push(b'.');
            if nanos.is_multiple_of(1_000_000) {
                push_num(out, (nanos / 1_000_000) as u64, 3);
            } else if nanos.is_multiple_of(1_000) {
                push_num(out, (nanos / 1_000) as u64, 6);
            } else {
                push_num(out, nanos as u64, 9);
            }
        }
        out.push(b'Z');
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::with_capacity(32);
        self.write_rfc3339(&mut v);
        f.write_str(std::str::from_utf8(&v).expect("ascii"))
    }
}

fn push_num(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    while v > 0 {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let digits = tmp.len() - i;
    for _ in digits..width {
        out.push(b'0');
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A calendar date and time of day as written in a log line, before any zone is applied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
}

impl Civil {
    /// Checks field ranges (a leap second `:60` is accepted and folded into the next second).
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second <= 60
            && self.nanos < 1_000_000_000
            && (1678..=2261).contains(&self.year)
    }

    /// Seconds since the epoch reading these fields as UTC.
    pub fn as_utc_secs(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + self.hour as i64 * 3600
            + self.minute as i64 * 60
            + self.second as i64
    }
}

/// The zone applied to timestamps that carry no offset (per listener or per input).
#[derive(Clone, Debug, Default)]
pub enum Tz {
    #[default]
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    /// An IANA zone such as `Asia/Almaty`.
    Named(jiff::tz::TimeZone),
}

/// Error for a time zone name that is neither `UTC`, `±HH:MM` nor a known IANA zone.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown time zone {name:?}: use UTC, an offset like +05:00, or an IANA name like Asia/Almaty"
)]
pub struct TzError {
    pub name: String,
}

impl Tz {
    /// Parses `UTC`, `Z`, `local`, `+05:00`, `-0330` or an IANA name.
    pub fn parse(name: &str) -> Result<Tz, TzError> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("utc") || n == "Z" || n.eq_ignore_ascii_case("gmt") {
            return Ok(Tz::Utc);
        }
        if n.eq_ignore_ascii_case("local") {
            return Ok(Tz::Named(jiff::tz::TimeZone::system()));
        }
        if let Some((off, used)) = parse_offset(n.as_bytes())
            && used == n.len()
        {
            return Ok(Tz::Fixed(off));
        }
        jiff::tz::TimeZone::get(n)
            .map(Tz::Named)
            .map_err(|_| TzError { name: name.into() })
    }
}

/// Converts zone-less civil times to UTC for one [`Tz`], caching named-zone offsets.
#[derive(Clone, Debug)]
pub struct ZoneResolver {
    tz: Tz,
    /// Quarter-hour bucket of local seconds → offset seconds, last one looked up.
    cache: Option<(i64, i32)>,
    /// The last year [`infer_year`] chose: ([month, day, hour, minute, second], reference second)
    /// → year. Consecutive lines mostly carry the same stamp and arrive in the same second
    /// (a file's reference time does not change at all), and the choice depends on nothing
    /// else, so most lines skip the candidate-year arithmetic.
    last_year: Option<([u32; 5], i64, i64)>,
}

impl ZoneResolver {
    pub fn new(tz: Tz) -> ZoneResolver {
        ZoneResolver {
            tz,
            cache: None,
            last_year: None,
        }
    }

    pub fn tz(&self) -> &Tz {
        &self.tz
    }

    /// The UTC instant of a civil time read in this zone.
    pub fn to_utc(&mut self, c: &Civil) -> Timestamp {
        let local = c.as_utc_secs();
        let off = self.offset_at_local(local, c);
        Timestamp((local - off as i64) * NANOS_PER_SEC + c.nanos as i64)
    }

    fn offset_at_local(&mut self, local: i64, c: &Civil) -> i32 {
        match &self.tz {
            Tz::Utc => 0,
            Tz::Fixed(o) => *o,
            Tz::Named(tz) => {
                let bucket = local.div_euclid(900);
                if let Some((b, o)) = self.cache
                    && b == bucket
                {
                    return o;
                }
                let o = named_offset(tz, c).unwrap_or(0);
                self.cache = Some((bucket, o));
                o
            }
        }
    }

    /// Offset (seconds east of UTC) of this zone at a UTC instant; used to find the local
    /// year of the receive time.
    pub fn offset_at_utc(&self, t: Timestamp) -> i32 {
        match &self.tz {
            Tz::Utc => 0,
            Tz::Fixed(o) => *o,
            Tz::Named(tz) => jiff::Timestamp::from_second(t.secs())
                .map(|ts| tz.to_offset(ts).seconds())
                .unwrap_or(0),
        }
    }
}

fn named_offset(tz: &jiff::tz::TimeZone, c: &Civil) -> Option<i32> {
    let dt = jiff::civil::DateTime::new(
        i16::try_from(c.year).ok()?,
        c.month as i8,
        c.day as i8,
        c.hour as i8,
        c.minute as i8,
        c.second.min(59) as i8,
        0,
    )
    .ok()?;
    // A local time in a DST gap or overlap resolves the way most tools do ("compatible").
    let ts = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
    Some(tz.to_offset(ts).seconds())
}

/// How far in the future (relative to the reference time) a year-less stamp may land.
pub const YEARLESS_FUTURE_TOLERANCE_SECS: i64 = 86_400;

/// Picks the year of a year-less RFC 3164 stamp.
///
/// Rule: the stamp goes into the latest year that puts it no more than one day
/// ([`YEARLESS_FUTURE_TOLERANCE_SECS`]) after `reference` (the receive time, or for files
/// the file's modification time). So `Dec 31 23:59:59` received on 1 January is last year's
/// (rsyslog's well-known mis-dating is avoided), `Jan 1 00:00:01` from a sender whose clock
/// runs a little ahead on 31 December is next year's, and a July line read in January is last
/// July's. `Feb 29` only lands in leap years.
pub fn infer_year(c: &Civil, reference: Timestamp, zone: &mut ZoneResolver) -> Option<i64> {
    let ref_secs = reference.secs();
    let key = [c.month, c.day, c.hour, c.minute, c.second];
    if let Some((k, r, y)) = zone.last_year
        && k == key
        && r == ref_secs
    {
        return Some(y);
    }
    let y = infer_year_uncached(c, ref_secs, reference, zone)?;
    zone.last_year = Some((key, ref_secs, y));
    Some(y)
}

fn infer_year_uncached(
    c: &Civil,
    ref_secs: i64,
    reference: Timestamp,
    zone: &mut ZoneResolver,
) -> Option<i64> {
    let local_ref = ref_secs + zone.offset_at_utc(reference) as i64;
    let (ref_year, _, _) = civil_from_days(local_ref.div_euclid(86_400));
    for y in [
        ref_year + 1,
        ref_year,
        ref_year - 1,
        ref_year - 2,
        ref_year - 3,
        ref_year - 4,
    ] {
        let cand = Civil { year: y, ..*c };
        if !cand.is_valid() {
            continue;
        }
        let t = zone.to_utc(&cand).secs();
        if t <= ref_secs + YEARLESS_FUTURE_TOLERANCE_SECS {
            return Some(y);
        }
    }
    None
}

/// Parses `Z`, `+05:00`, `+0500`, `+05` at the start of `b`; returns (seconds east, bytes used).
pub fn parse_offset(b: &[u8]) -> Option<(i32, usize)> {
    match b.first()? {
        b'Z' | b'z' => Some((0, 1)),
        s @ (b'+' | b'-') => {
            let sign = if *s == b'-' { -1 } else { 1 };
            let h = two_digits(b.get(1..3)?)?;
            let (m, used) = if b.get(3) == Some(&b':') {
                (two_digits(b.get(4..6)?)?, 6)
            } else if let Some(m) = b.get(3..5).and_then(two_digits) {
                (m, 5)
            } else {
                (0, 3)
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some((sign * (h as i32 * 3600 + m as i32 * 60), used))
        }
        _ => None,
    }
}

#[inline]
pub fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(((a - b'0') * 10 + (c - b'0')) as u32),
        _ => None,
    }
}

#[inline]
fn digits_n(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses a fraction `.ddd…` at the start of `b` (the dot included); returns (nanos, used).
pub fn parse_fraction(b: &[u8]) -> (u32, usize) {
    if b.first() != Some(&b'.') && b.first() != Some(&b',') {
        return (0, 0);
    }
    let mut nanos = 0u32;
    let mut scale = 100_000_000u32;
    let mut i = 1;
    while let Some(&c) = b.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        nanos += (c - b'0') as u32 * scale;
        scale /= 10;
        i += 1;
    }
    if i == 1 {
        return (0, 0);
    }
    (nanos, i)
}

/// An ISO 8601 / RFC 3339 timestamp as found in logs: `YYYY-MM-DD[T ]HH:MM:SS[.frac][zone]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsoStamp {
    pub civil: Civil,
    /// Seconds east of UTC, when the stamp names a zone.
    pub offset: Option<i32>,
    /// Bytes of input the stamp occupies.
    pub len: usize,
}

impl IsoStamp {
    pub fn resolve(&self, zone: &mut ZoneResolver) -> Timestamp {
        match self.offset {
            Some(o) => Timestamp(
                (self.civil.as_utc_secs() - o as i64) * NANOS_PER_SEC + self.civil.nanos as i64,
            ),
            None => zone.to_utc(&self.civil),
        }
    }
}

/// Parses an ISO timestamp at the start of `b`. The date/time separator may be `T`, `t` or a
/// single space; the zone is optional (`Z`, `±HH:MM`, `±HHMM`, `±HH`); a space before the
/// zone is not accepted, so a following word is never mistaken for it.
pub fn parse_iso(b: &[u8]) -> Option<IsoStamp> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits_n(&b[0..4])? as i64;
    let month = two_digits(&b[5..7])?;
    let day = two_digits(&b[8..10])?;
    let hour = two_digits(&b[11..13])?;
    let minute = two_digits(&b[14..16])?;
    let second = two_digits(&b[17..19])?;
    let (nanos, flen) = parse_fraction(&b[19..]);
    let mut len = 19 + flen;
    let offset = match parse_offset(&b[len..]) {
        Some((o, used)) => {
            len += used;
            Some(o)
        }
        None => None,
    };
    let civil = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    civil.is_valid().then_some(IsoStamp { civil, offset, len })
}

/// Interprets a whole field value as a time: an ISO/RFC 3339 stamp, or a number of seconds,
/// milliseconds, microseconds or nanoseconds since the epoch (decided by magnitude).
pub fn parse_time_value(b: &[u8], zone: &mut ZoneResolver) -> Option<Timestamp> {
    if let Some(s) = parse_iso(b) {
        if s.len == b.len() {
            return Some(s.resolve(zone));
        }
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    if let Ok(i) = s.parse::<i64>() {
        return epoch_int(i);
    }
    let f: f64 = s.parse().ok()?;
    epoch_number(f)
}

/// Reads an integer epoch whose unit (s, ms, µs, ns) is decided by its magnitude, exactly.
/// `None` when negative, or past what [`Timestamp`] holds (2262): the product is checked,
/// because each unit's upper bound (e.g. 10^11 s) lies beyond `i64` nanoseconds and input
/// such as `"timestamp": 99999999999` must not overflow.
pub fn epoch_int(i: i64) -> Option<Timestamp> {
    if i < 0 {
        return None;
    }
    let nanos = if i < 100_000_000_000 {
        i.checked_mul(1_000_000_000)
    } else if i < 100_000_000_000_000 {
        i.checked_mul(1_000_000)
    } else if i < 100_000_000_000_000_000 {
        i.checked_mul(1_000)
    } else {
        Some(i)
    };
    nanos.map(Timestamp)
}

/// Reads an epoch number whose unit is decided by its magnitude.
pub fn epoch_number(f: f64) -> Option<Timestamp> {
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    let nanos = if f < 1e11 {
        f * 1e9
    } else if f < 1e14 {
        f * 1e6
    } else if f < 1e17 {
        f * 1e3
    } else {
        f
    };
    (nanos < 9.2e18).then_some(Timestamp(nanos as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        parse_time_value(s.as_bytes(), &mut ZoneResolver::new(Tz::Utc)).unwrap()
    }

    #[test]
    fn civil_round_trips() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 11_016, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_parse_and_print() {
        let t = ts("2024-10-11T22:14:15.003+05:00");
        assert_eq!(t.to_string(), "2024-10-11T17:14:15.003Z");
        assert_eq!(
            ts("2003-08-24T05:14:15.000003-07:00").to_string(),
            "2003-08-24T12:14:15.000003Z"
        );
        assert_eq!(
            ts("2024-01-01 00:00:00").to_string(),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(ts("1700000000").to_string(), "2023-11-14T22:13:20Z");
        assert_eq!(ts("1700000000123").to_string(), "2023-11-14T22:13:20.123Z");
        // Each unit's range reaches past 2262: out of range is no time, not an overflow.
        for past_2262 in [99_999_999_999, 9_300_000_000_000, 9_300_000_000_000_000] {
            assert_eq!(epoch_int(past_2262), None);
        }
        assert!(
            parse_time_value(b"2024-02-30T00:00:00Z", &mut ZoneResolver::new(Tz::Utc)).is_none()
        );
    }

    #[test]
    fn zones() {
        let mut z = ZoneResolver::new(Tz::parse("+05:00").unwrap());
        let c = parse_iso(b"2024-06-01T12:00:00").unwrap().civil;
        assert_eq!(z.to_utc(&c).to_string(), "2024-06-01T07:00:00Z");
        let mut berlin = ZoneResolver::new(Tz::parse("Europe/Berlin").unwrap());
        assert_eq!(berlin.to_utc(&c).to_string(), "2024-06-01T10:00:00Z");
        let w = parse_iso(b"2024-01-15T12:00:00").unwrap().civil;
        assert_eq!(berlin.to_utc(&w).to_string(), "2024-01-15T11:00:00Z");
        assert!(Tz::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn year_rule() {
        let mut z = ZoneResolver::new(Tz::Utc);
        let c = |m, d, h| Civil {
            year: 0,
            month: m,
            day: d,
            hour: h,
            minute: 59,
            second: 59,
            nanos: 0,
        };
        let jan1 = ts("2025-01-01T00:00:05Z");
        assert_eq!(infer_year(&c(12, 31, 23), jan1, &mut z), Some(2024));
        assert_eq!(infer_year(&c(1, 1, 0), jan1, &mut z), Some(2025));
        let dec31 = ts("2024-12-31T23:59:59Z");
        assert_eq!(infer_year(&c(1, 1, 0), dec31, &mut z), Some(2025));
        assert_eq!(infer_year(&c(7, 1, 0), jan1, &mut z), Some(2024));
        assert_eq!(infer_year(&c(2, 29, 0), jan1, &mut z), Some(2024));
        assert_eq!(
            infer_year(&c(2, 29, 0), ts("2027-06-01T00:00:00Z"), &mut z),
            Some(2024)
        );
    }

    proptest::proptest! {
        /// The remembered year is the year the rule chooses: a resolver reused across a
        /// sequence of stamps and reference times agrees with a fresh one for each.
        #[test]
        fn remembered_year_is_the_rule_s_year(
            steps in proptest::collection::vec(
                (1u32..=12, 1u32..=31, 0u32..24, 0u32..60, 0u32..=60, 0i64..3, 0i64..400),
                1..40,
            ),
            zone in proptest::sample::select(vec!["UTC", "Asia/Almaty", "America/New_York"]),
        ) {
            let tz = Tz::parse(zone).unwrap();
            let mut reused = ZoneResolver::new(tz.clone());
            for (month, day, hour, minute, second, ref_sec, ref_day) in steps {
                let c = Civil { year: 0, month, day, hour, minute, second, nanos: 0 };
                // References around new year, where the choice is hardest.
                let reference = Timestamp::from_secs(1_767_225_600 - 200 * 86_400 + ref_day * 86_400 + ref_sec);
                let fresh = infer_year(&c, reference, &mut ZoneResolver::new(tz.clone()));
                proptest::prop_assert_eq!(infer_year(&c, reference, &mut reused), fresh);
                // And again, now from the memo.
                proptest::prop_assert_eq!(infer_year(&c, reference, &mut reused), fresh);
            }
        }
    }
}
