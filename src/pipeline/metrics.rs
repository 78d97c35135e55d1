//! The daemon's metrics: per-input and per-stage counters (relaxed atomics, bumped by the
//! thread that knows), latency histograms merged from per-thread copies, and the Prometheus
//! text rendering served on the admin listener.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::HashMap;
use hdrhistogram::Histogram;

use crate::correlator::shard::ShardStats;
use crate::parser::ParseErrorKind;
use crate::runner::RunStats;
use crate::telemetry::{Counter, Exposition, Gauge, InputMetrics, ParseMetrics};

/// Latency in microseconds, 1 µs .. 1 day, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 86_400_000_000, 3).expect("valid bounds")
}

/// A histogram many threads record into: each keeps a local copy and merges it here.
#[derive(Debug)]
pub struct SharedHistogram(Mutex<Histogram<u64>>);

impl Default for SharedHistogram {
    fn default() -> Self {
        SharedHistogram(Mutex::new(latency_histogram()))
    }
}

impl SharedHistogram {
    /// Adds `local` in and empties it.
    pub fn merge(&self, local: &mut Histogram<u64>) {
        if local.is_empty() {
            return;
        }
        if let Ok(mut h) = self.0.lock() {
            let _ = h.add(&*local);
        }
        local.reset();
    }

    pub fn record(&self, micros: u64) {
        if let Ok(mut h) = self.0.lock() {
            let _ = h.record(micros.max(1));
        }
    }

    /// (percentile, milliseconds) at each of `ps` (0–100); empty when nothing was recorded.
    pub fn percentiles(&self, ps: &[f64]) -> Vec<(f64, f64)> {
        match self.0.lock() {
            Ok(h) if !h.is_empty() => ps
                .iter()
                .map(|&p| (p, h.value_at_quantile(p / 100.0) as f64 / 1000.0))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// (count, p50, p99, p99.9, max) in microseconds.
    pub fn summary(&self) -> (u64, u64, u64, u64, u64) {
        match self.0.lock() {
            Ok(h) if !h.is_empty() => (
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ),
            _ => (0, 0, 0, 0, 0),
        }
    }
}

/// What one correlator shard reports at each tick.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardSnapshot {
    pub stats: ShardStats,
    pub live_keys: u64,
    pub state_bytes: u64,
    /// Hits from an engine generation the shard no longer knows (reload in flight).
    pub dropped_stale: u64,
}

/// Per-sink counters.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    pub name: String,
    pub kind: String,
    pub sent: Counter,
    pub errors: Counter,
    /// Alerts given up at shutdown because the sink kept failing.
    pub dropped: Counter,
    /// Alerts the endpoint refused for good (webhook: a 4xx other than 408/429); not retried.
    pub rejected: Counter,
    /// Alerts waiting in the sink's on-disk spool (webhook).
    pub spooled: Gauge,
    pub spool_bytes: Gauge,
}

impl SinkMetrics {
    pub fn new(name: &str, kind: &str) -> SinkMetrics {
        SinkMetrics {
            name: name.into(),
            kind: kind.into(),
            ..SinkMetrics::default()
        }
    }
}

/// (rule label, title, level, type).
pub type AlertKey = (String, String, String, &'static str);

/// Everything the daemon counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub inputs: Vec<std::sync::Arc<InputMetrics>>,
    /// Parse outcomes per input (same order as `inputs`).
    pub parse: Vec<ParseMetrics>,
    pub matches: Counter,
    pub hits: Counter,
    pub missing_group_key: Counter,
    pub no_time: Counter,
    pub future: Counter,
    pub extracted: Counter,
    pub detections: Counter,
    pub shards: Vec<Mutex<ShardSnapshot>>,
    /// Alerts by (rule label, title, level, kind).
    pub alerts: Mutex<HashMap<AlertKey, u64>>,
    pub alerts_total: Counter,
    pub sinks: Vec<std::sync::Arc<SinkMetrics>>,
    /// Frame received → matched (per batch).
    pub ingest_latency: SharedHistogram,
    /// Triggering event received → alert handed to the sinks.
    pub alert_latency: SharedHistogram,
    /// Event time of the last event → alert handed to the sinks.
    pub alert_event_delay: SharedHistogram,
    pub reloads_ok: Counter,
    pub reloads_failed: Counter,
    pub generation: Gauge,
    pub rules_loaded: Gauge,
    pub rules_failed: Gauge,
    pub checkpoints: Counter,
    pub checkpoint_errors: Counter,
    /// The incidents thread's counters (and the inventory's size).
    pub incidents: std::sync::Arc<crate::incident::manager::IncidentMetrics>,
    /// Queue (name, depth, capacity) probes, filled by the pipeline.
    pub started_unix: AtomicU64,
}

impl Metrics {
    /// Folds the difference between two stage snapshots in, for input `input`.
    pub fn add_stage(&self, input: usize, before: &RunStats, after: &RunStats) {
        let p = &self.parse[input];
        p.events.add(after.events - before.events);
        for k in ParseErrorKind::ALL {
            let i = k.index();
            p.errors[i].add(after.parse_errors[i] - before.parse_errors[i]);
        }
        self.matches.add(after.matches - before.matches);
        self.hits.add(after.hits.hits - before.hits.hits);
        self.missing_group_key
            .add(after.hits.missing_group_key - before.hits.missing_group_key);
        self.no_time.add(after.no_time - before.no_time);
        self.future.add(after.future - before.future);
        self.extracted.add(after.extracted - before.extracted);
    }

    pub fn shard_totals(&self) -> ShardSnapshot {
        let mut t = ShardSnapshot::default();
        for s in &self.shards {
            if let Ok(s) = s.lock() {
                t.stats.hits += s.stats.hits;
                t.stats.late += s.stats.late;
                t.stats.keys_expired += s.stats.keys_expired;
                t.stats.keys_evicted += s.stats.keys_evicted;
                t.stats.values_dropped += s.stats.values_dropped;
                t.stats.evidence_lost += s.stats.evidence_lost;
                t.live_keys += s.live_keys;
                t.state_bytes += s.state_bytes;
                t.dropped_stale += s.dropped_stale;
            }
        }
        t
    }

    pub fn events_total(&self) -> u64 {
        self.parse.iter().map(|p| p.events.get()).sum()
    }

    /// Prometheus text exposition. `queues` are (name, depth, capacity).
    pub fn render(&self, queues: &[(String, usize, usize)]) -> String {
        let mut x = Exposition::default();
        let inputs: Vec<&InputMetrics> = self.inputs.iter().map(|a| &**a).collect();
        x.inputs(&inputs);
        for (m, p) in self.inputs.iter().zip(&self.parse) {
            x.sample(
                "kuzet_events_total",
                "counter",
                "Events parsed, by input.",
                &[("input", &m.name)],
                p.events.get() as f64,
            );
        }
        for (m, p) in self.inputs.iter().zip(&self.parse) {
            for k in ParseErrorKind::ALL {
                x.sample(
                    "kuzet_parse_errors_total",
                    "counter",
                    "Frames that did not parse, by input and kind (kept as raw events).",
                    &[("input", &m.name), ("kind", k.name())],
                    p.errors[k.index()].get() as f64,
                );
            }
        }
        let plain: &[(&str, &str, &Counter)] = &[
            (
                "kuzet_extracted_total",
                "Events given fields by an extractor.",
                &self.extracted,
            ),
            (
                "kuzet_rule_matches_total",
                "Rule matches (an event matching 3 rules counts 3).",
                &self.matches,
            ),
            (
                "kuzet_detections_total",
                "Single-event detection alerts raised.",
                &self.detections,
            ),
            (
                "kuzet_correlation_hits_total",
                "Events handed to correlations.",
                &self.hits,
            ),
            (
                "kuzet_correlation_missing_group_total",
                "Matches left out of a correlation: a group-by field was absent.",
                &self.missing_group_key,
            ),
            (
                "kuzet_events_no_time_total",
                "Matched events without a time of their own (receive time used).",
                &self.no_time,
            ),
            (
                "kuzet_events_future_total",
                "Matched events dated beyond max_future after their receive time (receive time used).",
                &self.future,
            ),
            (
                "kuzet_alerts_total",
                "Alerts handed to the sinks.",
                &self.alerts_total,
            ),
            (
                "kuzet_checkpoints_total",
                "Correlation checkpoints written.",
                &self.checkpoints,
            ),
            (
                "kuzet_checkpoint_errors_total",
                "Correlation checkpoints that failed.",
                &self.checkpoint_errors,
            ),
        ];
        for (name, help, c) in plain {
            x.sample(name, "counter", help, &[], c.get() as f64);
        }
        x.sample(
            "kuzet_reloads_total",
            "counter",
            "Rule reloads, by result.",
            &[("result", "ok")],
            self.reloads_ok.get() as f64,
        );
        x.sample(
            "kuzet_reloads_total",
            "counter",
            "Rule reloads, by result.",
            &[("result", "rejected")],
            self.reloads_failed.get() as f64,
        );
        x.sample(
            "kuzet_engine_generation",
            "gauge",
            "Rule set generation (1 at start, +1 per reload).",
            &[],
            self.generation.get() as f64,
        );
        x.sample(
            "kuzet_rules_loaded",
            "gauge",
            "Rules in the running set.",
            &[],
            self.rules_loaded.get() as f64,
        );
        x.sample(
            "kuzet_rules_failed",
            "gauge",
            "Rules that failed to load.",
            &[],
            self.rules_failed.get() as f64,
        );
        for (i, s) in self.shards.iter().enumerate() {
            let s = s.lock().map(|s| *s).unwrap_or_default();
            let shard = i.to_string();
            let l = [("shard", shard.as_str())];
            x.sample(
                "kuzet_correlation_keys",
                "gauge",
                "Live correlation keys.",
                &l,
                s.live_keys as f64,
            );
            x.sample(
                "kuzet_correlation_state_bytes",
                "gauge",
                "Heap bytes of correlation state.",
                &l,
                s.state_bytes as f64,
            );
        }
        let t = self.shard_totals();
        x.sample(
            "kuzet_correlation_late_total",
            "counter",
            "Hits older than the watermark (still counted).",
            &[],
            t.stats.late as f64,
        );
        x.sample(
            "kuzet_correlation_expired_total",
            "counter",
            "Keys expired (window passed).",
            &[],
            t.stats.keys_expired as f64,
        );
        x.sample(
            "kuzet_correlation_evicted_total",
            "counter",
            "Keys evicted at max_keys (limit hit: state lost).",
            &[],
            t.stats.keys_evicted as f64,
        );
        x.sample(
            "kuzet_correlation_values_dropped_total",
            "counter",
            "Values not kept because a key held max_values (limit hit).",
            &[],
            t.stats.values_dropped as f64,
        );
        x.sample(
            "kuzet_correlation_evidence_lost_total",
            "counter",
            "Evidence events overwritten in the ring before their alert carried them.",
            &[],
            t.stats.evidence_lost as f64,
        );
        x.sample(
            "kuzet_correlation_dropped_stale_total",
            "counter",
            "Hits dropped: their rule set was replaced twice while they were queued.",
            &[],
            t.dropped_stale as f64,
        );
        if let Ok(a) = self.alerts.lock() {
            let mut rows: Vec<_> = a.iter().collect();
            rows.sort();
            for ((rule, title, level, kind), n) in rows {
                x.sample(
                    "kuzet_alerts_by_rule_total",
                    "counter",
                    "Alerts by rule, level and type.",
                    &[
                        ("rule", rule),
                        ("title", title),
                        ("level", level),
                        ("type", kind),
                    ],
                    *n as f64,
                );
            }
        }
        for s in &self.sinks {
            let l = [("sink", s.name.as_str()), ("type", s.kind.as_str())];
            x.sample(
                "kuzet_sink_sent_total",
                "counter",
                "Alerts delivered.",
                &l,
                s.sent.get() as f64,
            );
            x.sample(
                "kuzet_sink_errors_total",
                "counter",
                "Delivery attempts that failed (retried): sink writes, webhook requests, spool full.",
                &l,
                s.errors.get() as f64,
            );
            x.sample(
                "kuzet_sink_dropped_total",
                "counter",
                "Alerts given up: the sink was still failing when shutdown's grace ran out.",
                &l,
                s.dropped.get() as f64,
            );
            x.sample(
                "kuzet_sink_rejected_total",
                "counter",
                "Alerts the endpoint refused for good (webhook: HTTP 4xx other than 408 and 429); not retried.",
                &l,
                s.rejected.get() as f64,
            );
            x.sample(
                "kuzet_sink_spooled",
                "gauge",
                "Alerts waiting in the on-disk spool.",
                &l,
                s.spooled.get() as f64,
            );
            x.sample(
                "kuzet_sink_spool_bytes",
                "gauge",
                "Bytes in the on-disk spool.",
                &l,
                s.spool_bytes.get() as f64,
            );
        }
        for (name, depth, cap) in queues {
            let l = [("queue", name.as_str())];
            x.sample(
                "kuzet_queue_depth",
                "gauge",
                "Items waiting in a bounded queue.",
                &l,
                *depth as f64,
            );
            x.sample(
                "kuzet_queue_capacity",
                "gauge",
                "Bound of a queue (config).",
                &l,
                *cap as f64,
            );
        }
        self.incidents.render(&mut x);
        for (name, help, h) in [
            (
                "kuzet_ingest_latency_seconds",
                "Frame received to matched (per batch).",
                &self.ingest_latency,
            ),
            (
                "kuzet_alert_latency_seconds",
                "Triggering event received to alert handed to the sinks.",
                &self.alert_latency,
            ),
            (
                "kuzet_alert_event_delay_seconds",
                "Last event's own time to alert handed to the sinks.",
                &self.alert_event_delay,
            ),
        ] {
            let (n, p50, p99, p999, _) = h.summary();
            for (q, v) in [("0.5", p50), ("0.99", p99), ("0.999", p999)] {
                x.sample(name, "summary", help, &[("quantile", q)], v as f64 / 1e6);
            }
            x.out.push_str(&format!("{name}_count {n}\n"));
        }
        x.out
    }
}

/// Receive-time helper: microseconds from `t` (ns) to now, 0 when `t` is later.
pub fn micros_since(t_ns: i64) -> u64 {
    let now = crate::event::Timestamp::now().0;
    ((now - t_ns).max(0) / 1000) as u64
}

/// Seconds since the epoch, for `started_unix`.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Metrics {
    pub fn mark_started(&self) {
        self.started_unix.store(unix_now(), Ordering::Relaxed);
    }
}
