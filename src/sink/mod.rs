//! Stage 6: what leaves kuzet. The alert contract (`alert.rs`, versioned JSON, a public
//! interface) and the outputs that deliver it.
//!
//! Every sink runs on its own thread behind its own bounded queue (`pipeline/`): a sink that
//! is slow or down fills its queue, and the backpressure reaches the correlator and the
//! readers instead of alerts being dropped. A sink's `write` either delivers (or durably
//! spools) the alert or returns an error; the sink thread retries with backoff.
//!
//! - `stdout`: JSON lines.
//! - `file.rs`: JSON lines with size-based rotation.
//! - `syslog.rs`: RFC 5424 over UDP, TCP or TLS to a SIEM.
//! - `webhook.rs`: HTTP(S) POST through a bounded on-disk spool (`spool.rs`).
//! - `tls.rs`: the CA certificates the syslog and webhook sinks verify servers with.

pub mod alert;
pub mod file;
pub mod spool;
pub mod syslog;
pub mod tls;
pub mod webhook;

use std::io::{self, Write};

use crate::config::{LEVELS, SinkConfig};
use crate::sigma::Level;
use alert::AlertRecord;

/// An alert output.
pub trait Sink: Send {
    /// Delivers one alert; `line` is its `kuzet.alert/1` JSON with a trailing newline.
    fn write(&mut self, line: &[u8], rec: &AlertRecord) -> io::Result<()>;
    /// Pushes buffered output out (called when the queue runs empty).
    fn flush(&mut self) -> io::Result<()>;
    /// Shutdown: flush and release. Default: flush.
    fn close(&mut self) -> io::Result<()> {
        self.flush()
    }
    /// `true` when `write` only accepts the alert (durably: the webhook's spool) and the sink
    /// counts deliveries itself; the pipeline then does not count `sent` on `write`.
    fn deferred(&self) -> bool {
        false
    }
}

/// Which alerts a sink takes.
#[derive(Debug, Clone)]
pub struct Route {
    /// Lowest level taken (rules without a level count as informational).
    pub min_level: usize,
    /// When not empty, only alerts whose rule has one of these tags.
    pub tags: Vec<String>,
    /// When not empty, only alerts about an asset of one of these object classes.
    pub object_classes: Vec<String>,
}

impl Route {
    pub fn from_config(c: &SinkConfig) -> Route {
        Route {
            min_level: LEVELS.iter().position(|l| *l == c.min_level).unwrap_or(0),
            tags: c.tags.clone(),
            object_classes: c.object_classes.clone(),
        }
    }

    /// Whether the sink takes `rec`, whose asset is of `class` (see `incident::enrich`).
    pub fn accepts(&self, rec: &AlertRecord, class: Option<&str>) -> bool {
        let level = rec.level().map(level_rank).unwrap_or(0);
        level >= self.min_level
            && (self.object_classes.is_empty()
                || class.is_some_and(|c| self.object_classes.iter().any(|w| w == c)))
            && (self.tags.is_empty()
                || rec
                    .meta
                    .tags
                    .iter()
                    .any(|t| self.tags.iter().any(|w| w.eq_ignore_ascii_case(t))))
    }
}

pub fn level_rank(l: Level) -> usize {
    LEVELS.iter().position(|n| *n == l.name()).unwrap_or(0)
}

/// Counts alerts and drops them: for benchmarks that measure the engine, not an output.
pub struct Discard;

impl Sink for Discard {
    fn write(&mut self, _: &[u8], _: &AlertRecord) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// JSON lines on standard output.
pub struct Stdout {
    out: io::BufWriter<io::Stdout>,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            out: io::BufWriter::with_capacity(1 << 16, io::stdout()),
        }
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

impl Sink for Stdout {
    fn write(&mut self, line: &[u8], _: &AlertRecord) -> io::Result<()> {
        self.out.write_all(line)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
