//! Counters with names: one struct per stage, one field per thing that can happen, each a
//! relaxed atomic so any thread may bump it and any thread may read it.
//!
//! Every drop, truncation, parse failure and refused connection has a counter here; the
//! daemon's metrics endpoint and the CLI's summaries read them. Rendering is Prometheus text
//! format ([`Exposition`]).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::parser::ParseErrorKind;
use crate::reader::FrameStats;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    pub fn add(&self, n: u64) {
        if n != 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (open connections, queue depth).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What happened at one input (file, UDP, TCP or TLS listener).
#[derive(Debug, Default)]
pub struct InputMetrics {
    /// Label: the input's name (`udp://127.0.0.1:5514`, a file path).
    pub name: String,
    pub bytes: Counter,
    pub frames: Counter,
    pub octet_counted: Counter,
    pub oversize_truncated: Counter,
    pub oversize_dropped: Counter,
    pub framing_errors: Counter,
    pub truncated_at_eof: Counter,
    /// UDP datagrams dropped because the downstream queue was full.
    pub udp_dropped_queue_full: Counter,
    /// UDP datagrams the kernel dropped (receive buffer overflow), from /proc/net/udp.
    pub udp_dropped_kernel: Counter,
    pub connections_accepted: Counter,
    /// Refused because `max_connections` were open.
    pub connections_rejected: Counter,
    pub connections_open: Gauge,
    pub tls_handshake_failures: Counter,
    pub read_errors: Counter,
    /// Times reading stopped because the downstream queue was full (TCP backpressure).
    pub backpressure_pauses: Counter,
}

impl InputMetrics {
    pub fn new(name: impl Into<String>) -> InputMetrics {
        InputMetrics {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Folds a framer's local counts in (and resets them).
    pub fn absorb(&self, s: &mut FrameStats) {
        self.frames.add(s.frames);
        self.octet_counted.add(s.octet_counted);
        self.oversize_truncated.add(s.oversize_truncated);
        self.oversize_dropped.add(s.oversize_dropped);
        self.framing_errors.add(s.framing_errors);
        self.truncated_at_eof.add(s.truncated_at_eof);
        *s = FrameStats::default();
    }
}

/// Parse outcomes, by error kind.
#[derive(Debug, Default)]
pub struct ParseMetrics {
    pub events: Counter,
    pub errors: [Counter; 11],
}

impl ParseMetrics {
    #[inline]
    pub fn error(&self, kind: ParseErrorKind) {
        self.errors[kind.index()].inc();
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(Counter::get).sum()
    }
}

/// Builder of Prometheus text exposition.
#[derive(Default)]
pub struct Exposition {
    pub out: String,
    last_family: String,
}

impl Exposition {
    /// One sample; `help` and the type line are written before the first sample of a family.
    pub fn sample(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if self.last_family != name {
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
            self.last_family = name.to_string();
        }
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    pub fn inputs(&mut self, inputs: &[&InputMetrics]) {
        type Get = fn(&InputMetrics) -> u64;
        let families: &[(&str, &str, &str, Get)] = &[
            ("kuzet_input_bytes_total", "counter", "Bytes read.", |m| {
                m.bytes.get()
            }),
            (
                "kuzet_input_frames_total",
                "counter",
                "Frames cut from the input.",
                |m| m.frames.get(),
            ),
            (
                "kuzet_input_oversize_truncated_total",
                "counter",
                "Frames longer than max_frame, truncated.",
                |m| m.oversize_truncated.get(),
            ),
            (
                "kuzet_input_oversize_dropped_total",
                "counter",
                "Frames longer than max_frame, dropped.",
                |m| m.oversize_dropped.get(),
            ),
            (
                "kuzet_input_framing_errors_total",
                "counter",
                "Frames without the configured framing.",
                |m| m.framing_errors.get(),
            ),
            (
                "kuzet_input_udp_dropped_queue_full_total",
                "counter",
                "UDP datagrams dropped: queue full.",
                |m| m.udp_dropped_queue_full.get(),
            ),
            (
                "kuzet_input_udp_dropped_kernel_total",
                "counter",
                "UDP datagrams dropped by the kernel.",
                |m| m.udp_dropped_kernel.get(),
            ),
            (
                "kuzet_input_connections_accepted_total",
                "counter",
                "Connections accepted.",
                |m| m.connections_accepted.get(),
            ),
            (
                "kuzet_input_connections_rejected_total",
                "counter",
                "Connections refused at max_connections.",
                |m| m.connections_rejected.get(),
            ),
            (
                "kuzet_input_connections_open",
                "gauge",
                "Connections open now.",
                |m| m.connections_open.get(),
            ),
            (
                "kuzet_input_tls_handshake_failures_total",
                "counter",
                "Failed TLS handshakes.",
                |m| m.tls_handshake_failures.get(),
            ),
            (
                "kuzet_input_read_errors_total",
                "counter",
                "Read errors.",
                |m| m.read_errors.get(),
            ),
            (
                "kuzet_input_backpressure_pauses_total",
                "counter",
                "Reads paused because the queue was full.",
                |m| m.backpressure_pauses.get(),
            ),
        ];
        for (name, kind, help, get) in families {
            for m in inputs {
                self.sample(name, kind, help, &[("input", &m.name)], get(m) as f64);
            }
        }
    }

    pub fn parse(&mut self, p: &ParseMetrics) {
        self.sample(
            "kuzet_events_parsed_total",
            "counter",
            "Events parsed.",
            &[],
            p.events.get() as f64,
        );
        for k in ParseErrorKind::ALL {
            self.sample(
                "kuzet_parse_errors_total",
                "counter",
                "Frames that did not parse, by kind (kept as raw events).",
                &[("kind", k.name())],
                p.errors[k.index()].get() as f64,
            );
        }
    }
}
