//! The alert contract, `kuzet.alert/1`: one JSON object per alert. A public interface:
//! fields are only ever added; a change of meaning gets a new schema version.
//!
//! ```json
//! {"schema":"kuzet.alert/1","id":"9f2c…","rule":{"id":"…","title":"…","level":"high",
//!  "tags":["attack.t1110"],"type":"detection","author":"…"},"group":{},"count":1,"revision":0,
//!  "first_seen":"2024-05-01T10:00:00Z","last_seen":"2024-05-01T10:00:00Z",
//!  "detected_at":"2024-05-01T10:00:01.5Z","events":[{…fields…}]}
//! ```
//! `id` is deterministic: a 128-bit FNV-1a hash of the rule, the group and the time span
//! (and, for single-event rules, the event's raw bytes), so replaying the same input gives
//! the same ids and downstream consumers can deduplicate. `author` is carried because the
//! Detection Rule License of the SigmaHQ rules requires it in every alert produced with them.

use std::sync::Arc;

use crate::correlator::shard::CorrAlert;
use crate::correlator::{Correlations, GROUP_SEP};
use crate::engine::Engine;
use crate::event::{Event, EventBuf, FieldMode, Timestamp};
use crate::extract::Extractors;
use crate::jsonw::write_str;
use crate::parser::{Parser, ParserConfig};
use crate::sigma::{Level, Meta};

pub const SCHEMA: &str = "kuzet.alert/1";

/// FNV-1a, 128-bit: stable across platforms and versions (unlike std's hashers).
#[derive(Clone, Copy, Debug)]
pub struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Fnv128(0x6c62272e07bb014262b821756295c58d)
    }
}

impl Fnv128 {
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    pub fn write(&mut self, b: &[u8]) -> &mut Self {
        for &x in b {
            self.0 ^= x as u128;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
        // A separator so that ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(Self::PRIME);
        self
    }

    pub fn finish(&self) -> u128 {
        self.0
    }
}

/// Everything an alert says.
#[derive(Debug)]
pub struct Alert<'a> {
    pub id: u128,
    pub meta: &'a Meta,
    /// `detection`, or the correlation type.
    pub kind: &'a str,
    /// Group-by field → value (empty for single-event rules).
    pub group: &'a [(String, String)],
    pub count: u64,
    /// The correlation's metric when it fired (count, distinct values, sum, ...).
    pub metric: Option<f64>,
    /// 0 when raised; 1, 2 ... for updates of the same alert (same `id`).
    pub revision: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub detected_at: Timestamp,
    /// Each event's fields as a rendered JSON object, at most the configured cap.
    pub events: &'a [Vec<u8>],
}

/// The deterministic id of a single-event detection.
pub fn detection_id(meta: &Meta, time: Timestamp, raw: &[u8]) -> u128 {
    Fnv128::default()
        .write(meta.label().as_bytes())
        .write(&time.0.to_le_bytes())
        .write(raw)
        .finish()
}

fn key(out: &mut Vec<u8>, k: &str) {
    write_str(out, k.as_bytes());
    out.push(b':');
}

fn time(out: &mut Vec<u8>, t: Timestamp) {
    out.push(b'"');
    t.write_rfc3339(out);
    out.push(b'"');
}

/// Appends the alert as one JSON object (no newline).
pub fn write(a: &Alert<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"schema\":\"");
    out.extend_from_slice(SCHEMA.as_bytes());
    out.extend_from_slice(b"\",\"id\":\"");
    out.extend_from_slice(format!("{:032x}", a.id).as_bytes());
    out.extend_from_slice(b"\",\"rule\":{");
    let m = a.meta;
    key(out, "id");
    write_str(out, m.label().as_bytes());
    out.push(b',');
    key(out, "title");
    write_str(out, m.title.as_bytes());
    out.push(b',');
    key(out, "level");
    match m.level {
        Some(l) => write_str(out, l.name().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    key(out, "tags");
    out.push(b'[');
    for (i, t) in m.tags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, t.as_bytes());
    }
    out.extend_from_slice(b"],");
    key(out, "type");
    write_str(out, a.kind.as_bytes());
    out.push(b',');
    key(out, "author");
    match &m.author {
        Some(x) => write_str(out, x.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(d) = &m.description {
        out.push(b',');
        key(out, "description");
        write_str(out, d.as_bytes());
    }
    if !m.falsepositives.is_empty() {
        out.push(b',');
        key(out, "falsepositives");
        out.extend_from_slice(
            serde_json::to_string(&m.falsepositives)
                .unwrap_or_default()
                .as_bytes(),
        );
    }
    if let Some(r) = m.custom.get("recommendation") {
        out.push(b',');
        key(out, "recommendation");
        out.extend_from_slice(r.to_string().as_bytes());
    }
    out.extend_from_slice(b"},");
    key(out, "group");
    out.push(b'{');
    for (i, (k, v)) in a.group.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        key(out, k);
        write_str(out, v.as_bytes());
    }
    out.extend_from_slice(b"},");
    key(out, "count");
    out.extend_from_slice(a.count.to_string().as_bytes());
    out.push(b',');
    if let Some(m) = a.metric {
        key(out, "metric");
        crate::jsonw::write_value(out, &crate::event::Value::Float(m));
        out.push(b',');
    }
    key(out, "revision");
    out.extend_from_slice(a.revision.to_string().as_bytes());
    out.push(b',');
    key(out, "first_seen");
    time(out, a.first_seen);
    out.push(b',');
    key(out, "last_seen");
    time(out, a.last_seen);
    out.push(b',');
    key(out, "detected_at");
    time(out, a.detected_at);
    out.push(b',');
    key(out, "events");
    out.push(b'[');
    for (i, e) in a.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(b"]}");
}

/// An alert as the daemon's queues carry it: owned, with what routing and metrics need.
#[derive(Debug, Clone)]
pub struct AlertRecord {
    pub id: u128,
    pub meta: Arc<Meta>,
    /// `detection`, or the correlation type.
    pub kind: &'static str,
    pub group: Vec<(String, String)>,
    pub count: u64,
    pub metric: Option<f64>,
    pub revision: u32,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub detected_at: Timestamp,
    /// Rendered events (JSON objects).
    pub events: Vec<Vec<u8>>,
    /// Receive time of the event that raised it; `None` when a timer decided it.
    pub received: Option<Timestamp>,
}

impl AlertRecord {
    pub fn as_alert(&self) -> Alert<'_> {
        Alert {
            id: self.id,
            meta: &self.meta,
            kind: self.kind,
            group: &self.group,
            count: self.count,
            metric: self.metric,
            revision: self.revision,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            detected_at: self.detected_at,
            events: &self.events,
        }
    }

    /// The `kuzet.alert/1` line (no newline).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write(&self.as_alert(), out);
    }

    /// The rule's level (`None` when the rule gives none).
    pub fn level(&self) -> Option<Level> {
        self.meta.level
    }
}

/// Renders raw events as alert evidence: parsed with every field kept (the engine's own
/// parse keeps only what rules read) and with field extraction applied.
pub struct EvidenceRenderer {
    parser: Parser,
    buf: EventBuf,
    extractors: Arc<Extractors>,
}

impl EvidenceRenderer {
    pub fn new(engine: &Engine, pcfg: &ParserConfig) -> EvidenceRenderer {
        EvidenceRenderer {
            parser: Parser::new(
                engine.table.clone(),
                ParserConfig {
                    mode: FieldMode::All,
                    ..pcfg.clone()
                },
            ),
            buf: EventBuf::new(),
            extractors: engine.extractors.clone(),
        }
    }

    /// One event's fields as a JSON object.
    pub fn render(&mut self, raw: &[u8], received: Timestamp) -> Vec<u8> {
        let _ = self.parser.parse(raw, received, &mut self.buf);
        self.extractors
            .apply_in_zone(raw, &mut self.buf, self.parser.zone_mut());
        let mut j = Vec::with_capacity(raw.len() + 64);
        crate::cli::parse::write_event(self.parser.table(), &Event::new(raw, &self.buf), &mut j);
        j
    }

    /// A correlation alert's record: group names resolved, evidence rendered.
    pub fn correlation(
        &mut self,
        corrs: &Correlations,
        a: &CorrAlert,
        max_events: usize,
    ) -> AlertRecord {
        let c = corrs.get(a.corr);
        let group = c
            .group_names
            .iter()
            .zip(a.group.split(|&b| b == GROUP_SEP))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let fired = Timestamp(a.fired_at.saturating_mul(1_000_000));
        let events = a
            .evidence
            .iter()
            .take(max_events)
            .map(|raw| self.render(raw, fired))
            .collect();
        AlertRecord {
            id: a.id,
            meta: c.meta.clone(),
            kind: c.spec.kind.name(),
            group,
            count: a.count,
            metric: Some(a.metric),
            revision: a.revision,
            first_seen: Timestamp(a.first_seen.saturating_mul(1_000_000)),
            last_seen: Timestamp(a.last_seen.saturating_mul(1_000_000)),
            detected_at: Timestamp::now(),
            events,
            received: (a.received > 0).then(|| Timestamp(a.received.saturating_mul(1_000_000))),
        }
    }

    /// A single-event detection's record.
    pub fn detection(
        &mut self,
        meta: &Arc<Meta>,
        raw: &[u8],
        time: Timestamp,
        received: Timestamp,
    ) -> AlertRecord {
        AlertRecord {
            id: detection_id(meta, time, raw),
            meta: meta.clone(),
            kind: "detection",
            group: Vec::new(),
            count: 1,
            metric: None,
            revision: 0,
            first_seen: time,
            last_seen: time,
            detected_at: Timestamp::now(),
            events: vec![self.render(raw, received)],
            received: Some(received),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_is_valid_json_with_the_contract_fields() {
        let meta = Meta {
            id: Some("r1".into()),
            title: "T \"q\"".into(),
            author: Some("A".into()),
            tags: vec!["attack.t1110".into()],
            ..Meta::default()
        };
        let ev = vec![br#"{"a":1}"#.to_vec()];
        let a = Alert {
            id: detection_id(&meta, Timestamp(5), b"raw"),
            meta: &meta,
            kind: "detection",
            group: &[],
            count: 1,
            metric: None,
            revision: 0,
            first_seen: Timestamp(5),
            last_seen: Timestamp(5),
            detected_at: Timestamp(6),
            events: &ev,
        };
        let mut out = Vec::new();
        write(&a, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["rule"]["author"], "A");
        assert_eq!(v["rule"]["type"], "detection");
        assert_eq!(v["events"][0]["a"], 1);
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
        assert_eq!(detection_id(&meta, Timestamp(5), b"raw"), a.id);
        assert_ne!(detection_id(&meta, Timestamp(5), b"raX"), a.id);
    }
}
