//! Property tests of the parsers: no input makes them panic or lose the frame, and what a
//! well-formed RFC 5424, key=value or CEF writer puts in comes back out unchanged.
//!
//! Failures are not persisted to files: a case proptest finds belongs in the behaviour
//! tables of `parsers.rs`, as a named regression case.

use kuzet::event::time::{Tz, ZoneResolver, civil_from_days, days_from_civil, parse_time_value};
use kuzet::event::{FieldTable, Timestamp, field::WELL_KNOWN};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

use super::support::{config, parse_with};

/// `cases` per property, unless `PROPTEST_CASES` asks for more (a longer hunt).
fn cfg(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Error kinds after which the event is the raw frame alone.
const FATAL: &[&str] = &[
    "empty",
    "pri",
    "version",
    "timestamp",
    "header",
    "unrecognized",
];

/// Starts that lead the parsers deep into each format, so random tails test more than the
/// format detection.
const PREFIXES: &[&str] = &[
    "",
    "<13>",
    "<34>1 ",
    "<34>1 2024-03-10T12:00:00Z h a - - ",
    "<34>1 2024-03-10T12:00:00Z h a - - [x@1 a=\"",
    "<34>1 - - - - - [",
    "Mar 10 12:00:00 ",
    "<13>Mar 10 12:00:00 host app: ",
    "<13>Mar 10 12:00:00 host app: @cee:",
    "000123: *Mar  1 18:46:11.123 UTC: ",
    "2024-03-10T12:00:00",
    "{",
    "{\"a\":",
    "CEF:0|",
    "CEF:0|a|b|c|d|e|f|",
    "LEEF:1.0|a|b|c|d|",
    "LEEF:2.0|a|b|c|d|",
    "a=",
];

/// Fragments that mean something to some parser.
const TOKENS: &[&str] = &[
    " ", "  ", "\t", "=", "\"", "'", "\\", "|", "[", "]", "{", "}", ":", ",", "<", ">", "-", "*",
    ".", "^", "0", "1", "9", "13", "191", "2024", "-03-10", "T", "12:00:00", ".123", "Z", "+05:00",
    "Mar", " 10 ", "\u{feff}", "\r", "\n", "\0", "\u{e9}", "\u{ff}", "a", "key", "CEF:", "LEEF:",
    "@cee:", "x5E", "\\t", "\\u00e9", "null", "true", "1e999", "[1,",
];

fn frame() -> impl Strategy<Value = Vec<u8>> {
    let tail = prop_oneof![
        vec(any::<u8>(), 0..160),
        vec(select(TOKENS), 0..40).prop_map(|t| t.concat().into_bytes()),
    ];
    (select(PREFIXES), tail).prop_map(|(p, t)| [p.as_bytes(), &t].concat())
}

proptest! {
    #![proptest_config(cfg(384))]

    /// Any bytes, any input format: no panic, output is valid JSON (checked when rendered),
    /// an error always leaves the frame as `message`, and a fatal one leaves nothing else.
    #[test]
    fn never_panics_and_never_loses_the_frame(
        raw in frame(),
        format in select(&["auto", "rfc3164", "rfc5424", "json", "cef", "leef", "kv", "raw"][..]),
        tz in select(&["UTC", "+05:00", "Asia/Almaty"][..]),
        reference in 0i64..4_000_000_000,
    ) {
        let p = parse_with(&raw, config(format, tz), FieldTable::new(), Timestamp::from_secs(reference));
        let lossy = Value::String(String::from_utf8_lossy(&raw).into_owned());
        if let Some(e) = p.error {
            if FATAL.contains(&e.kind.name()) {
                let mut only = Map::new();
                only.insert("message".into(), lossy);
                prop_assert_eq!(&p.fields, &only, "{} {}", e, p.rendered);
                prop_assert!(p.time.is_none());
            } else {
                prop_assert!(p.fields.contains_key("message"), "{} {}", e, p.rendered);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// RFC 5424 round trip
// ---------------------------------------------------------------------------------------

/// PRINTUSASCII: a header token, never the NILVALUE alone.
fn token(max: usize) -> impl Strategy<Value = Option<String>> {
    let chars: Vec<char> = (33u8..=126).map(char::from).collect();
    proptest::option::of(
        vec(select(chars), 1..=max)
            .prop_map(|v| v.into_iter().collect::<String>())
            .prop_filter("NILVALUE", |s| s != "-"),
    )
}

/// SD-NAME: PRINTUSASCII except `=`, `]`, `"` (RFC 5424 §6.3.2).
fn sd_name() -> impl Strategy<Value = String> {
    let chars: Vec<char> = (33u8..=126)
        .filter(|c| !matches!(c, b'=' | b']' | b'"'))
        .map(char::from)
        .collect();
    vec(select(chars), 1..=32).prop_map(|v| v.into_iter().collect())
}

/// A timestamp as (instant in ns, text): 1..9 fraction digits or none, any offset or `Z`.
fn stamp() -> impl Strategy<Value = (i64, String)> {
    (
        -2_000_000_000i64..7_000_000_000,
        0u32..=9,
        any::<u32>(),
        prop_oneof![Just(None), (-1439i32..=1439).prop_map(Some)],
    )
        .prop_map(|(secs, digits, frac, offset)| {
            let scale = 10u32.pow(digits);
            let frac = if digits == 0 { 0 } else { frac % scale };
            let nanos = i64::from(frac) * 10i64.pow(9 - digits);
            let off = offset.unwrap_or(0) as i64 * 60;
            let local = secs + off;
            let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
            let sod = local.rem_euclid(86_400);
            let mut s = format!(
                "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
                sod / 3600,
                sod / 60 % 60,
                sod % 60
            );
            if digits > 0 {
                s += &format!(".{frac:0width$}", width = digits as usize);
            }
            match offset {
                None => s.push('Z'),
                Some(o) => {
                    let sign = if o < 0 { '-' } else { '+' };
                    s += &format!("{sign}{:02}:{:02}", o.abs() / 60, o.abs() % 60);
                }
            }
            (secs * 1_000_000_000 + nanos, s)
        })
}

#[derive(Debug, Clone)]
struct Syslog5424 {
    pri: u8,
    stamp: Option<(i64, String)>,
    hostname: Option<String>,
    appname: Option<String>,
    procid: Option<String>,
    msgid: Option<String>,
    sd: Vec<(String, Vec<(String, String)>)>,
    bom: bool,
    msg: Option<String>,
}

fn syslog5424() -> impl Strategy<Value = Syslog5424> {
    (
        0u8..=191,
        proptest::option::of(stamp()),
        (token(255), token(48), token(128), token(32)),
        vec((sd_name(), vec((sd_name(), any::<String>()), 0..4)), 0..4),
        any::<bool>(),
        proptest::option::of(any::<String>()),
    )
        .prop_map(
            |(pri, stamp, (hostname, appname, procid, msgid), sd, bom, msg)| Syslog5424 {
                pri,
                stamp,
                hostname,
                appname,
                procid,
                msgid,
                sd,
                bom,
                // Without a BOM of its own, a MSG starting with U+FEFF would lose it.
                msg: msg.map(|m| {
                    if !bom && m.starts_with('\u{feff}') {
                        format!("x{m}")
                    } else {
                        m
                    }
                }),
            },
        )
}

impl Syslog5424 {
    fn render(&self) -> String {
        let nil = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
        let mut s = format!(
            "<{}>1 {} {} {} {} {} ",
            self.pri,
            self.stamp.as_ref().map_or("-".into(), |(_, t)| t.clone()),
            nil(&self.hostname),
            nil(&self.appname),
            nil(&self.procid),
            nil(&self.msgid),
        );
        if self.sd.is_empty() {
            s.push('-');
        }
        for (id, params) in &self.sd {
            s += &format!("[{id}");
            for (name, value) in params {
                // §6.3.3: `"`, `\` and `]` are escaped.
                let v = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace(']', "\\]");
                s += &format!(" {name}=\"{v}\"");
            }
            s.push(']');
        }
        if let Some(m) = &self.msg {
            s.push(' ');
            if self.bom {
                s.push('\u{feff}');
            }
            s += m;
        }
        s
    }
}

/// Expected multi-valued fields as `kuzet parse` prints them: one value bare, several as
/// an array, in input order.
fn grouped(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut m: Map<String, Value> = Map::new();
    let mut order: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in pairs {
        match order.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vs)) => vs.push(Value::String(v)),
            None => order.push((k, vec![Value::String(v)])),
        }
    }
    for (k, mut vs) in order {
        let v = if vs.len() == 1 {
            vs.pop().unwrap()
        } else {
            Value::Array(vs)
        };
        m.insert(k, v);
    }
    m
}

proptest! {
    #![proptest_config(cfg(256))]

    /// Header fields and SD params (with characters that need escapes) come back as written.
    #[test]
    fn rfc5424_round_trip(m in syslog5424()) {
        let line = m.render();
        let p = parse_with(line.as_bytes(), config("auto-no-payload", "UTC"), FieldTable::new(), Timestamp::from_secs(1_700_000_000));
        prop_assert!(p.error.is_none(), "{:?} {}", p.error, p.rendered);
        let mut want = Map::new();
        want.insert("facility".into(), Value::from(m.pri >> 3));
        want.insert("severity".into(), Value::from(m.pri & 7));
        if let Some((t, _)) = &m.stamp {
            want.insert("timestamp".into(), Value::String(Timestamp(*t).to_string()));
        }
        for (name, v) in [("hostname", &m.hostname), ("appname", &m.appname), ("procid", &m.procid), ("msgid", &m.msgid)] {
            if let Some(v) = v {
                want.insert(name.into(), Value::String(v.clone()));
            }
        }
        want.extend(grouped(m.sd.iter().flat_map(|(id, params)| {
            params.iter().map(move |(n, v)| (format!("{id}.{n}"), v.clone()))
        })));
        if let Some(msg) = &m.msg {
            want.insert("message".into(), Value::String(msg.clone()));
        }
        prop_assert_eq!(&p.fields, &want, "line {:?}", line);
        prop_assert_eq!(p.time, m.stamp.as_ref().map(|(t, _)| Timestamp(*t)));
    }
}

// ---------------------------------------------------------------------------------------
// key=value and CEF round trips
// ---------------------------------------------------------------------------------------

fn key(rest: &'static str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z]{rest}"))
        .unwrap()
        .prop_filter("well-known names have a meaning of their own", |k| {
            !WELL_KNOWN.contains(&k.as_str())
        })
}

proptest! {
    #![proptest_config(cfg(256))]

    /// Pairs written the way devices write them (bare when possible, else double-quoted
    /// with `\"` and `\\`) come back as written, repeated keys as several values.
    #[test]
    fn kv_round_trip(
        pairs in vec((key("[A-Za-z0-9_.-]{0,15}"), any::<String>(), any::<bool>()), 1..8),
        sep in select(&[" ", "\t", "   "][..]),
    ) {
        let rendered: Vec<String> = pairs
            .iter()
            .map(|(k, v, prefer_bare)| {
                let bare_ok = !v.contains([' ', '\t']) && !v.starts_with(['"', '\'']);
                if bare_ok && (*prefer_bare || v.is_empty()) {
                    format!("{k}={v}")
                } else {
                    format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
                }
            })
            .collect();
        let line = rendered.join(sep);
        let p = parse_with(line.as_bytes(), config("kv", "UTC"), FieldTable::new(), Timestamp::from_secs(1_700_000_000));
        prop_assert!(p.error.is_none(), "{:?} {}", p.error, p.rendered);
        let want = grouped(pairs.iter().map(|(k, v, _)| (k.clone(), v.clone())));
        prop_assert_eq!(&p.fields, &want, "line {:?}", line);
    }

    /// A CEF record with escapes in the header (`\|`, `\\`) and in the extension (`\=`,
    /// `\\`, `\n`, `\r`), values with spaces and pipes, comes back as written. (Spaces at the
    /// end of a value are the separator's, by the CEF rules: the generator has none.)
    #[test]
    fn cef_round_trip(
        header in vec(any::<String>(), 6),
        ext in vec((key("[A-Za-z0-9]{0,12}"), any::<String>()), 0..8),
    ) {
        let esc_header = |s: &str| s.replace('\\', "\\\\").replace('|', "\\|");
        let ext: Vec<(String, String)> = ext
            .into_iter()
            .map(|(k, v)| (k, v.trim_end_matches(' ').to_string()))
            .collect();
        let esc_ext = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('=', "\\=")
                .replace('\n', "\\n")
                .replace('\r', "\\r")
        };
        let line = format!(
            "CEF:0|{}|{}",
            header.iter().map(|h| esc_header(h)).collect::<Vec<_>>().join("|"),
            ext.iter().map(|(k, v)| format!("{k}={}", esc_ext(v))).collect::<Vec<_>>().join(" "),
        );
        let p = parse_with(line.as_bytes(), config("cef", "UTC"), FieldTable::new(), Timestamp::from_secs(1_700_000_000));
        prop_assert!(p.error.is_none(), "{:?} {}", p.error, p.rendered);
        let names = ["cef.vendor", "cef.product", "cef.product_version", "cef.signature_id", "cef.name", "cef.severity"];
        let mut want = Map::new();
        want.insert("cef.version".into(), Value::String("0".into()));
        for (n, h) in names.iter().zip(&header) {
            want.insert(n.to_string(), Value::String(h.clone()));
        }
        want.extend(grouped(ext));
        prop_assert_eq!(&p.fields, &want, "line {:?}", line);
    }
}

// ---------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(1024))]

    /// Every instant of the supported range (1678–2261) printed as RFC 3339 reads back as
    /// itself.
    #[test]
    fn timestamp_rfc3339_round_trip(
        nanos in (days_from_civil(1678, 1, 1) * 86_400 * 1_000_000_000)
            ..(days_from_civil(2262, 1, 1) * 86_400 * 1_000_000_000),
    ) {
        let t = Timestamp(nanos);
        let text = t.to_string();
        prop_assert_eq!(
            parse_time_value(text.as_bytes(), &mut ZoneResolver::new(Tz::Utc)),
            Some(t),
            "{}",
            text
        );
    }
}

#[test]
fn timestamp_round_trip_at_the_range_ends() {
    for t in [
        Timestamp(days_from_civil(1678, 1, 1) * 86_400 * 1_000_000_000),
        Timestamp(days_from_civil(2262, 1, 1) * 86_400 * 1_000_000_000 - 1),
        Timestamp(0),
        Timestamp(-1),
        Timestamp(1),
    ] {
        let text = t.to_string();
        assert_eq!(
            parse_time_value(text.as_bytes(), &mut ZoneResolver::new(Tz::Utc)),
            Some(t),
            "{text}"
        );
    }
}
