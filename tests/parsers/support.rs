//! The harness the parser tests share: parse one frame with a given configuration and see
//! it the way `kuzet parse` prints it (one flat JSON object, via
//! [`kuzet::cli::parse::write_event`]), plus what that output does not show (event time,
//! formats, the error).

use std::sync::Arc;

use kuzet::cli::parse::write_event;
use kuzet::event::time::{Tz, ZoneResolver, parse_time_value};
use kuzet::event::{Event, EventBuf, FieldMode, FieldTable, Format, Timestamp};
use kuzet::parser::{InputFormat, ParseError, Parser, ParserConfig};
use kuzet::reader::file::read_frames;
use kuzet::reader::{FrameStats, FramingConfig};
use serde_json::{Map, Value};

use super::ABSENT;

/// One behaviour case; see the table conventions in the crate doc of `parsers.rs`.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub name: &'static str,
    pub line: &'static str,
    /// An [`InputFormat`] name; a `-no-payload` suffix turns payload parsing off.
    pub format: &'static str,
    /// The input's zone for zone-less stamps.
    pub tz: &'static str,
    /// Receive time (RFC 3339): the reference of the year rule.
    pub reference: &'static str,
    /// (field or pseudo-field, expected value as JSON text, or [`ABSENT`]).
    pub fields: &'static [(&'static str, &'static str)],
    /// Expected [`kuzet::parser::ParseErrorKind`] name.
    pub error: Option<&'static str>,
    /// No fields beyond those listed.
    pub exact: bool,
    /// The event is `message` = the whole frame and nothing else.
    pub raw_only: bool,
}

impl Case {
    pub const fn format(self, format: &'static str) -> Case {
        Case { format, ..self }
    }
    pub const fn tz(self, tz: &'static str) -> Case {
        Case { tz, ..self }
    }
    pub const fn at(self, reference: &'static str) -> Case {
        Case { reference, ..self }
    }
    pub const fn err(self, kind: &'static str) -> Case {
        Case {
            error: Some(kind),
            ..self
        }
    }
    pub const fn exact(self) -> Case {
        Case {
            exact: true,
            ..self
        }
    }
    pub const fn raw_only(self) -> Case {
        Case {
            raw_only: true,
            ..self
        }
    }

    /// The parser configuration the case describes, in [`FieldMode::All`].
    pub fn config(&self) -> ParserConfig {
        config(self.format, self.tz)
    }
}

/// A parser configuration from a format name (with optional `-no-payload`) and a zone.
pub fn config(format: &str, tz: &str) -> ParserConfig {
    let (name, parse_payload) = match format.strip_suffix("-no-payload") {
        Some(n) => (n, false),
        None => (format, true),
    };
    ParserConfig {
        format: InputFormat::parse(name).unwrap_or_else(|| panic!("unknown format {name:?}")),
        tz: Tz::parse(tz).unwrap_or_else(|e| panic!("{e}")),
        mode: FieldMode::All,
        parse_payload,
        ..ParserConfig::default()
    }
}

/// An RFC 3339 instant.
pub fn ts(s: &str) -> Timestamp {
    parse_time_value(s.as_bytes(), &mut ZoneResolver::new(Tz::Utc))
        .unwrap_or_else(|| panic!("bad reference time {s:?}"))
}

/// What one parse produced.
#[derive(Debug)]
pub struct Parsed {
    /// The `kuzet parse` line, parsed back.
    pub fields: Map<String, Value>,
    /// The `kuzet parse` line as printed.
    pub rendered: String,
    pub error: Option<ParseError>,
    pub time: Option<Timestamp>,
    pub format: Format,
    pub payload: Option<Format>,
}

/// Parses `line` with `cfg` over `table` (the configuration's time fields are interned
/// into it first), received at `reference`.
pub fn parse_with(
    line: &[u8],
    cfg: ParserConfig,
    mut table: FieldTable,
    reference: Timestamp,
) -> Parsed {
    cfg.register(&mut table);
    let table = Arc::new(table);
    let mut parser = Parser::new(table.clone(), cfg);
    let mut buf = EventBuf::new();
    let error = parser.parse(line, reference, &mut buf).err();
    let ev = Event::new(line, &buf);
    let mut out = Vec::new();
    write_event(&table, &ev, &mut out);
    let rendered = String::from_utf8(out).expect("kuzet parse output is UTF-8");
    let fields = match serde_json::from_str(&rendered) {
        Ok(Value::Object(m)) => m,
        other => panic!("kuzet parse output is no JSON object: {other:?}\n{rendered}"),
    };
    Parsed {
        fields,
        rendered,
        error,
        time: ev.time(),
        format: ev.format(),
        payload: ev.payload_format(),
    }
}

/// Parses `line` in [`FieldMode::All`] over the default table.
pub fn parse_line(line: &[u8], format: &str, tz: &str, reference: Timestamp) -> Parsed {
    parse_with(line, config(format, tz), FieldTable::new(), reference)
}

/// Checks one case; returns what is wrong with it.
pub fn check(c: &Case) -> Result<(), Vec<String>> {
    let p = parse_with(
        c.line.as_bytes(),
        c.config(),
        FieldTable::new(),
        ts(c.reference),
    );
    let mut problems = Vec::new();
    let kind = p.error.map(|e| e.kind.name());
    if kind != c.error {
        problems.push(format!(
            "error: want {:?}, got {:?}",
            c.error,
            p.error.map(|e| e.to_string())
        ));
    }
    problems.extend(compare(&p, c.fields));
    if c.exact {
        for k in p.fields.keys() {
            if !c.fields.iter().any(|(n, _)| n == k) {
                problems.push(format!("unexpected field {k}"));
            }
        }
    }
    if c.raw_only {
        let mut want = Map::new();
        want.insert("message".into(), Value::String(c.line.into()));
        if p.fields != want {
            problems.push("want only message = the raw frame".into());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.push(format!("output: {}", p.rendered));
        Err(problems)
    }
}

/// Compares a parse with expected (field or pseudo-field, JSON text or [`ABSENT`]) pairs.
pub fn compare(p: &Parsed, fields: &[(&str, &str)]) -> Vec<String> {
    let mut problems = Vec::new();
    for &(name, want) in fields {
        let got = match name {
            "$time" => Some(p.time.map_or(Value::Null, |t| Value::String(t.to_string()))),
            "$format" => Some(Value::String(p.format.name().into())),
            "$payload" => Some(p.payload.map_or(Value::Null, |f| f.name().into())),
            _ => p.fields.get(name).cloned(),
        };
        if want == ABSENT {
            if let Some(g) = got {
                problems.push(format!("{name}: want no field, got {g}"));
            }
            continue;
        }
        let want_v: Value = serde_json::from_str(want)
            .unwrap_or_else(|e| panic!("expected value of {name} is no JSON: {want}: {e}"));
        match got {
            Some(g) if g == want_v => {}
            Some(g) => problems.push(format!("{name}: want {want}, got {g}")),
            None => problems.push(format!("{name}: want {want}, field missing")),
        }
    }
    problems
}

/// Checks every case of a table and fails with all failures listed.
pub fn check_table(table: &str, cases: &[Case]) {
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for c in cases {
        assert!(
            names.insert(c.name),
            "{table}: duplicate case name {}",
            c.name
        );
        if let Err(problems) = check(c) {
            failures.push(format!(
                "{table}/{} ({:?}):\n    {}",
                c.name,
                c.line,
                problems.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {table} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Splits file contents into frames the way `kuzet parse FILE` does.
pub fn frames(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stats = FrameStats::default();
    read_frames(
        data,
        FramingConfig::default(),
        1 << 16,
        &mut stats,
        Timestamp::default,
        |batch| {
            out.extend(batch.iter().map(<[u8]>::to_vec));
            Some(batch)
        },
    )
    .expect("reading from memory");
    out
}
