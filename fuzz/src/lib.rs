//! Invariants the fuzz targets assert. Kept free of libFuzzer so the main crate's
//! `tests/fuzz_regressions.rs` includes this very file (`#[path]`) and replays every crash
//! input the fuzzers found through the same checks.
//!
//! Parser invariants (every format, forced through `InputFormat`):
//! - parsing never panics and always leaves an event with at least one field;
//! - every span is in bounds: all fields, all values of every interned field, the
//!   `kuzet parse` JSON rendering (which must be valid JSON) are produced without panicking;
//! - a fatal (header) error keeps the raw frame, whole, as the only field `message`;
//! - error offsets lie within the frame;
//! - reusing the `EventBuf` for another frame in between changes nothing (no stale state);
//! - `FieldMode::Known` extracts exactly the values `FieldMode::All` does for interned fields.
//!
//! Framer invariants: decoding in random chunks through the smallest legal buffer gives the
//! same frames and counters as one decode; frames are non-empty and at most `max_frame`; the
//! unconsumed tail never exceeds its documented bound.
//!
//! Sigma invariants (the compiled matcher against the reference interpreter, the rule loader,
//! the literal set) and the generator of rules and events live in `sigma.rs`; proptest runs
//! the same code in `tests/sigma_props.rs`.

pub mod sigma;

pub use sigma::{check_literal_set, check_sigma_load, check_sigma_match};

use std::sync::Arc;

use kuzet::event::{Event, EventBuf, FieldId, FieldMode, FieldTable, Format, Timestamp};
use kuzet::parser::{InputFormat, ParseError, ParseErrorKind, Parser, ParserConfig};
use kuzet::reader::framing::MAX_LEN_DIGITS;
use kuzet::reader::{FrameStats, Framer, Framing, FramingConfig, Oversize};

/// Field names a rule set might reference: SD params, JSON paths, CEF/LEEF/kv keys.
const INTERNED: &[&str] = &[
    "EventID",
    "Event.System.EventID",
    "Event.EventData.IpAddress",
    "a",
    "a.b",
    "a.b.c",
    "ex@1.a",
    "meta.sequenceId",
    "src",
    "dst",
    "suser",
    "cs1",
    "devname",
    "user",
    "msg",
    "tags",
];

fn fatal(kind: ParseErrorKind) -> bool {
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

/// Everything observable about one parsed event, owned.
#[derive(Debug, PartialEq)]
struct Dump {
    result: Result<(), ParseError>,
    fields: Vec<(Vec<u8>, String)>,
    /// For each interned id: its values, newest first.
    by_id: Vec<Vec<String>>,
    time: Option<Timestamp>,
    format: Format,
    payload: Option<Format>,
    json: Vec<u8>,
}

fn dump(p: &mut Parser, buf: &mut EventBuf, data: &[u8], received: Timestamp) -> Dump {
    let result = p.parse(data, received, buf);
    let table = p.table().clone();
    let ev = Event::new(data, buf);
    let fields = ev
        .fields()
        .map(|(n, v)| (n.resolve(&table).to_vec(), format!("{v:?}")))
        .collect();
    let by_id = table
        .iter()
        .map(|(id, _)| {
            let vals: Vec<String> = ev.values(id).map(|v| format!("{v:?}")).collect();
            assert_eq!(vals.first(), ev.get(id).map(|v| format!("{v:?}")).as_ref());
            assert_eq!(ev.has(id), !vals.is_empty());
            vals
        })
        .collect();
    let time = ev.time();
    let (format, payload) = (ev.format(), ev.payload_format());
    if let Some(t) = time {
        let mut s = Vec::new();
        t.write_rfc3339(&mut s);
    }
    let mut json = Vec::new();
    kuzet::cli::parse::write_event(&table, &ev, &mut json);
    Dump {
        result,
        fields,
        by_id,
        time,
        format,
        payload,
        json,
    }
}

fn parser(format: InputFormat, mode: FieldMode) -> Parser {
    let cfg = ParserConfig {
        format,
        mode,
        ..ParserConfig::default()
    };
    let mut table = FieldTable::new();
    cfg.register(&mut table);
    for n in INTERNED {
        table.intern(n);
    }
    Parser::new(Arc::new(table), cfg)
}

/// Parses `data` as `format` and asserts the parser invariants.
pub fn check_parse(format: InputFormat, data: &[u8]) {
    if data.len() > 1 << 20 {
        return;
    }
    let received = Timestamp::from_secs(1_700_000_000);
    let mut all = parser(format, FieldMode::All);
    let mut buf = EventBuf::new();
    let first = dump(&mut all, &mut buf, data, received);

    let raw_message = format!("{:?}", kuzet::event::Value::Str(data));
    if let Err(e) = first.result {
        assert!(
            !first.fields.is_empty(),
            "failed frame left an event without any field"
        );
        assert!(
            e.offset <= data.len(),
            "error offset {} beyond frame",
            e.offset
        );
        if fatal(e.kind) {
            assert_eq!(
                first.fields,
                vec![(b"message".to_vec(), raw_message.clone())],
                "a fatal error must keep the raw frame as message"
            );
        } else if first.payload.is_none() {
            // A bare JSON/CEF/LEEF/kv frame that failed: the frame survives as message.
            assert_eq!(
                first.by_id[FieldId::MESSAGE.index()].first(),
                Some(&raw_message),
                "a failed payload-only frame must keep the raw frame as message"
            );
        }
    } else if first.fields.is_empty() {
        // Only a structured record that holds nothing may have no field (`{}`).
        assert_ne!(first.format, Format::Raw, "raw frame without message");
    }
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&first.json) {
        panic!(
            "kuzet parse output is not JSON ({e}): {}",
            String::from_utf8_lossy(&first.json)
        );
    }

    // Reuse: another frame in between must leave no trace.
    let other = b"<13>1 2024-01-01T00:00:00Z h app 1 m [x@1 a=\"v\\\"\"][meta sequenceId=\"9\"] {\"a\":{\"b\":[1,2]},\"msg\":\"x\"}";
    dump(&mut all, &mut buf, other, received);
    let again = dump(&mut all, &mut buf, data, received);
    assert_eq!(first, again, "EventBuf reuse changed the result");

    // Known mode: same values for every interned field, same outcome.
    let mut known = parser(format, FieldMode::Known);
    let mut kbuf = EventBuf::new();
    let k = dump(&mut known, &mut kbuf, data, received);
    assert_eq!(
        k.result.map_err(|e| e.kind),
        first.result.map_err(|e| e.kind),
        "Known and All modes disagree on the outcome"
    );
    assert_eq!(
        k.by_id, first.by_id,
        "Known mode extracted different values"
    );
    assert_eq!(k.time, first.time);
}

/// Decodes `data[4..]` with a configuration and chunking drawn from `data[..4]` and asserts
/// the framer invariants.
pub fn check_framer(data: &[u8]) {
    let [a, b, c, d, stream @ ..] = data else {
        return;
    };
    let cfg = FramingConfig {
        framing: match a % 3 {
            0 => Framing::Auto,
            1 => Framing::OctetCounted,
            _ => Framing::NewLine,
        },
        oversize: if a & 4 == 0 {
            Oversize::Truncate
        } else {
            Oversize::Drop
        },
        max_frame: 1 + (*b as usize % 64),
    };
    let max = cfg.max_frame;

    let mut single = Vec::new();
    let mut stats = FrameStats::default();
    let used = Framer::new(cfg).decode(stream, true, &mut single, &mut stats);
    assert_eq!(used, stream.len(), "eof decode must consume everything");
    let single: Vec<&[u8]> = single.iter().map(|&(s, e)| &stream[s..e]).collect();
    for f in &single {
        assert!(
            !f.is_empty() && f.len() <= max,
            "frame of {} bytes",
            f.len()
        );
    }
    assert_eq!(stats.frames as usize, single.len());

    // Chunked through the smallest buffer, chunk sizes from a small LCG.
    let mut f = Framer::new(cfg);
    let cap = f.min_buffer();
    let mut seed = u16::from_le_bytes([*c, *d]) as u32 | 1;
    let mut buf: Vec<u8> = Vec::with_capacity(cap);
    let mut out = Vec::new();
    let mut chunked: Vec<Vec<u8>> = Vec::new();
    let mut cstats = FrameStats::default();
    let mut pos = 0;
    while pos < stream.len() {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let want = 1 + (seed >> 16) as usize % (2 * max + 12);
        let room = cap - buf.len();
        assert!(room > 0, "no progress possible");
        let n = want.min(room).min(stream.len() - pos);
        buf.extend_from_slice(&stream[pos..pos + n]);
        pos += n;
        out.clear();
        let used = f.decode(&buf, false, &mut out, &mut cstats);
        assert!(used <= buf.len());
        for &(s, e) in &out {
            assert!(s < e && e <= used, "frame outside the consumed bytes");
            chunked.push(buf[s..e].to_vec());
        }
        buf.drain(..used);
        assert!(buf.len() <= max + MAX_LEN_DIGITS + 1, "tail too long");
    }
    out.clear();
    let used = f.decode(&buf, true, &mut out, &mut cstats);
    assert_eq!(used, buf.len());
    chunked.extend(out.iter().map(|&(s, e)| buf[s..e].to_vec()));
    assert_eq!(chunked, single, "chunked decode differs from single-shot");
    assert_eq!(cstats, stats, "chunked counters differ from single-shot");
}

/// Parser plus the shipped extractors (`rules/parsers/`), built once.
type Extracting = (Arc<FieldTable>, ParserConfig, kuzet::extract::Extractors);

fn extracting_parser() -> &'static Extracting {
    static P: std::sync::OnceLock<Extracting> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        let (sources, errs) = kuzet::engine::extractor_sources(&[], false);
        assert!(errs.is_empty(), "{errs:?}");
        let (defs, errs) = kuzet::engine::extractor_defs(&sources);
        assert!(errs.is_empty(), "{errs:?}");
        let cfg = ParserConfig::default();
        let mut table = FieldTable::new();
        cfg.register(&mut table);
        let (x, errs) = kuzet::extract::Extractors::build(&defs, |_| 1, &mut table);
        assert!(errs.is_empty(), "{errs:?}");
        (Arc::new(table), cfg, x)
    })
}

/// Field extraction invariants, on any frame: parsing and then applying the shipped
/// extractors never panics; every produced field's value is in bounds (the `kuzet parse`
/// JSON renders and is valid JSON); the result does not depend on what the `EventBuf` held
/// before (no stale captures or scratch).
pub fn check_extract(data: &[u8]) {
    if data.len() > 1 << 16 {
        return;
    }
    let (table, cfg, x) = extracting_parser();
    let mut p = Parser::new(table.clone(), cfg.clone());
    let received = Timestamp::from_secs(1_700_000_000);
    let run = |p: &mut Parser, buf: &mut EventBuf| {
        let _ = p.parse(data, received, buf);
        x.apply_in_zone(data, buf, p.zone_mut());
        let ev = Event::new(data, buf);
        let mut json = Vec::new();
        kuzet::cli::parse::write_event(p.table(), &ev, &mut json);
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&json) {
            panic!(
                "extracted event is not JSON ({e}): {}",
                String::from_utf8_lossy(&json)
            );
        }
        json
    };
    let mut fresh = EventBuf::new();
    let first = run(&mut p, &mut fresh);
    // The same buffer after another, extracted event (an sshd failure sets many fields).
    let mut used = EventBuf::new();
    {
        let other = b"<38>Nov 25 10:00:01 h sshd[1]: Failed password for invalid user a from 10.0.0.1 port 1 ssh2";
        let _ = p.parse(other, received, &mut used);
        x.apply_in_zone(other, &mut used, p.zone_mut());
    }
    let again = run(&mut p, &mut used);
    assert_eq!(
        first, again,
        "extraction depends on the buffer's earlier contents"
    );
}
