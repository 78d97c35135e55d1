//! The webhook sink: each alert POSTed as its `kuzet.alert/1` JSON (`Content-Type:
//! application/json`, plus the configured headers) to an HTTP(S) endpoint, through a bounded
//! on-disk spool so that nothing is lost while the endpoint is down, nor across a restart.
//!
//! ```text
//!  sink thread ── write ──▶ spool (spool.rs: fsync'd segments) ──▶ delivery thread ── POST ──▶ endpoint
//!                 (returns once on disk;          oldest first          2xx: removed from the spool
//!                  spool full: error → the                              4xx: refused, counted, removed
//!                  pipeline retries = backpressure)                     else: retried, backoff
//! ```
//!
//! * `write` appends the alert to the spool and returns; the pipeline's `sent` is not bumped
//!   for it ([`Sink::deferred`]): this sink counts `sent` itself, on a 2xx.
//! * One delivery thread sends the spooled alerts in order, one request each, and removes an
//!   alert only after a 2xx. A transport error, a 5xx, a 3xx (redirects are not followed: a
//!   POST must not silently become a GET elsewhere), 408 or 429 is retried with exponential
//!   backoff from 100 ms up to `max_backoff` (a `Retry-After` in seconds is honoured, capped at
//!   `max_backoff`); each failed attempt counts in `errors`.
//! * Any other 4xx is a permanent rejection (the endpoint says the request itself is wrong:
//!   bad token, bad payload): retrying would block every later alert forever, so the alert is
//!   counted in `rejected`, logged, removed from the spool, and delivery goes on.
//! * Spool full (`spool_max_bytes` of undelivered alerts): `write` fails, the pipeline retries
//!   with backoff and its queues fill: backpressure up to the readers, never a silent drop.
//! * On restart, the spool is recovered and what it holds is delivered before anything new.
//! * At shutdown, delivery goes on for up to [`DRAIN`] while the endpoint accepts; what is left
//!   stays in the spool for the next start.
//! * HTTPS servers are verified against `tls_ca` or the system store (`tls.rs`); the
//!   `HTTP(S)_PROXY`/`ALL_PROXY`/`NO_PROXY` environment variables are honoured.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select};
use rustls_pki_types::CertificateDer;

use super::Sink;
use super::alert::AlertRecord;
use super::spool::{Pos, Spool};
use crate::pipeline::metrics::SinkMetrics;

/// How long delivery goes on after `close` while the endpoint keeps accepting.
pub const DRAIN: Duration = Duration::from_secs(5);
/// First retry delay; doubled per failure up to `max_backoff`.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Response bodies are read (so the connection can be reused) up to this many bytes.
const MAX_RESPONSE: u64 = 64 * 1024;

/// How a webhook sink is set up.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub url: String,
    /// Sent with every request, after `Content-Type` (which they may replace).
    pub headers: Vec<(String, String)>,
    pub spool_dir: PathBuf,
    /// Bound on undelivered bytes in the spool.
    pub spool_max_bytes: u64,
    /// Size at which the spool starts a new segment file.
    pub segment_bytes: u64,
    /// Whole request: connect, TLS, send, response.
    pub timeout: Duration,
    pub max_backoff: Duration,
    /// `https://`: the server must chain to these (`tls_ca`, or the system store).
    pub roots: Vec<CertificateDer<'static>>,
}

/// The segment size for a spool bound: an eighth of it, between 4 KiB and 16 MiB, so that
/// delivered alerts free disk soon and a full spool is a handful of files.
pub fn segment_bytes(spool_max_bytes: u64) -> u64 {
    (spool_max_bytes / 8).clamp(4 << 10, 16 << 20)
}

impl WebhookSettings {
    /// From a `[[sink]]` entry; `name` is the sink's name (the default spool is
    /// `<state.dir>/spool/<name>`).
    pub fn from_config(
        sc: &crate::config::SinkConfig,
        cfg: &crate::config::Config,
        name: &str,
    ) -> io::Result<WebhookSettings> {
        let url = sc
            .url
            .clone()
            .ok_or_else(|| io::Error::other("a webhook sink needs a url"))?;
        let spool_dir = match (&sc.spool_dir, &cfg.state.dir) {
            (Some(d), _) => d.clone(),
            (None, Some(state)) => state.join("spool").join(dir_name(name)),
            (None, None) => {
                return Err(io::Error::other(
                    "a webhook sink needs a spool_dir (or state.dir)",
                ));
            }
        };
        let roots = if url.starts_with("https://") {
            super::tls::roots(sc.tls_ca.as_deref().map(Path::new))?
        } else {
            Vec::new()
        };
        Ok(WebhookSettings {
            url,
            headers: sc
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            spool_dir,
            spool_max_bytes: sc.spool_max_bytes,
            segment_bytes: segment_bytes(sc.spool_max_bytes),
            timeout: sc.timeout.0,
            max_backoff: sc.max_backoff.0,
            roots,
        })
    }
}

/// A sink name as one path component.
fn dir_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// What one POST came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Delivered,
    /// A 4xx other than 408/429: never retried.
    Rejected(u16),
    /// Worth another try, after at least the `Retry-After` it gave.
    Retry(String, Option<Duration>),
}

fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 => Outcome::Retry(format!("HTTP {status}"), retry_after),
        400..=499 => Outcome::Rejected(status),
        _ => Outcome::Retry(format!("HTTP {status}"), retry_after),
    }
}

/// The HTTP side: an agent with its config, the URL and headers.
struct Client {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
}

impl Client {
    fn new(s: &WebhookSettings) -> io::Result<Client> {
        // Refuse at start what every request would fail on.
        s.url
            .parse::<ureq::http::Uri>()
            .map_err(|e| io::Error::other(format!("url {:?}: {e}", s.url)))?;
        for (k, v) in &s.headers {
            ureq::http::HeaderName::try_from(k.as_str())
                .map_err(|e| io::Error::other(format!("header {k:?}: {e}")))?;
            ureq::http::HeaderValue::try_from(v.as_str())
                .map_err(|e| io::Error::other(format!("header {k:?}: {e}")))?;
        }
        let roots: Vec<ureq::tls::Certificate<'static>> = s
            .roots
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(s.timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(format!("kuzet/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Client {
            agent,
            url: s.url.clone(),
            headers: s.headers.clone(),
        })
    }

    fn post(&self, body: &[u8]) -> Outcome {
        let mut req = self.agent.post(&self.url);
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("Content-Type", "application/json");
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send(body) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let _ = resp
                    .body_mut()
                    .with_config()
                    .limit(MAX_RESPONSE)
                    .read_to_vec();
                classify(status, retry_after)
            }
            Err(e) => Outcome::Retry(e.to_string(), None),
        }
    }
}

/// Spools alerts and delivers them from a thread of its own.
pub struct WebhookSink {
    /// `None` once closed: the spool directory's lock is released with it.
    spool: Option<Arc<Spool>>,
    /// Wakes the delivery thread when something was spooled.
    kick: Sender<()>,
    /// Dropped by `close`: the delivery thread drains for up to `DRAIN` and stops.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookSink {
    /// Opens the spool (recovering what a previous run left) and starts delivering.
    pub fn start(s: WebhookSettings, metrics: Arc<SinkMetrics>) -> io::Result<WebhookSink> {
        let client = Client::new(&s)?;
        let mut spool = Spool::open(&s.spool_dir, s.spool_max_bytes, s.segment_bytes)?;
        let gauges = metrics.clone();
        spool.observe(Box::new(move |records, bytes| {
            gauges.spooled.set(records);
            gauges.spool_bytes.set(bytes);
        }));
        let spool = Arc::new(spool);
        let (records, _) = spool.pending();
        if records > 0 {
            eprintln!(
                "kuzet: sink {}: {records} undelivered alerts in {}; delivering them first",
                metrics.name,
                s.spool_dir.display()
            );
        }
        let (kick, kick_rx) = bounded(1);
        let (stop, stop_rx) = bounded(0);
        let ctx = Delivery {
            client,
            spool: spool.clone(),
            metrics,
            kick: kick_rx,
            stop: stop_rx,
            max_backoff: s.max_backoff.max(FIRST_BACKOFF),
        };
        let thread = std::thread::Builder::new()
            .name(format!("kuzet-webhook-{}", ctx.metrics.name))
            .spawn(move || ctx.run())?;
        Ok(WebhookSink {
            spool: Some(spool),
            kick,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Sink for WebhookSink {
    fn write(&mut self, line: &[u8], _: &AlertRecord) -> io::Result<()> {
        let spool = self
            .spool
            .as_ref()
            .ok_or_else(|| io::Error::other("webhook sink closed"))?;
        spool.append(line)?;
        let _ = self.kick.try_send(());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every append is synced before `write` returns.
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.spool = None;
        Ok(())
    }

    fn deferred(&self) -> bool {
        true
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

struct Delivery {
    client: Client,
    spool: Arc<Spool>,
    metrics: Arc<SinkMetrics>,
    kick: Receiver<()>,
    stop: Receiver<()>,
    max_backoff: Duration,
}

impl Delivery {
    /// Whether `close` was called.
    fn stopping(&self) -> bool {
        matches!(
            self.stop.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        )
    }

    /// Sleeps `d`, or less if `close` is called meanwhile.
    fn pause(&self, d: Duration) {
        let _ = self.stop.recv_timeout(d);
    }

    fn run(self) {
        let m = &self.metrics;
        let mut body = Vec::new();
        let mut backoff = FIRST_BACKOFF;
        let mut failing: u64 = 0;
        let mut stop_at: Option<Instant> = None;
        loop {
            if stop_at.is_none() && self.stopping() {
                stop_at = Some(Instant::now() + DRAIN);
            }
            if stop_at.is_some_and(|t| Instant::now() >= t) {
                break;
            }
            let pos: Pos = match self.spool.peek(&mut body) {
                Ok(Some(pos)) => pos,
                Ok(None) => {
                    if stop_at.is_some() {
                        break;
                    }
                    // Idle: wait for an append, a close, or a second (belt and braces).
                    select! {
                        recv(self.kick) -> _ => {},
                        recv(self.stop) -> _ => {},
                        default(Duration::from_secs(1)) => {},
                    }
                    continue;
                }
                Err(e) => {
                    m.errors.inc();
                    eprintln!("kuzet: sink {}: reading the spool: {e}", m.name);
                    if stop_at.is_some() {
                        break;
                    }
                    self.pause(backoff);
                    backoff = (backoff * 2).min(self.max_backoff);
                    continue;
                }
            };
            match self.client.post(&body) {
                Outcome::Delivered => {
                    m.sent.inc();
                    if failing > 0 {
                        eprintln!(
                            "kuzet: sink {}: delivering again after {failing} failed attempts",
                            m.name
                        );
                    }
                    failing = 0;
                    backoff = FIRST_BACKOFF;
                    self.ack(pos);
                }
                Outcome::Rejected(status) => {
                    m.rejected.inc();
                    if m.rejected.get().is_power_of_two() {
                        eprintln!(
                            "kuzet: sink {}: the endpoint refused an alert with HTTP {status}; not retried ({} refused so far)",
                            m.name,
                            m.rejected.get()
                        );
                    }
                    self.ack(pos);
                }
                Outcome::Retry(why, retry_after) => {
                    m.errors.inc();
                    failing += 1;
                    if failing.is_power_of_two() {
                        eprintln!(
                            "kuzet: sink {}: {why} (retrying; {failing} failed attempts, {} alerts spooled)",
                            m.name,
                            m.spooled.get()
                        );
                    }
                    if stop_at.is_some() {
                        // At shutdown a failing endpoint is not waited for: the spool keeps it.
                        break;
                    }
                    let wait = retry_after.unwrap_or(backoff).min(self.max_backoff);
                    self.pause(wait);
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }

    fn ack(&self, pos: Pos) {
        if let Err(e) = self.spool.ack(pos) {
            // The alert went out; a failed cursor write means it may go out again.
            eprintln!("kuzet: sink {}: updating the spool: {e}", self.metrics.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(classify(200, None), Outcome::Delivered);
        assert_eq!(classify(204, None), Outcome::Delivered);
        assert_eq!(classify(400, None), Outcome::Rejected(400));
        assert_eq!(classify(401, None), Outcome::Rejected(401));
        assert_eq!(classify(413, None), Outcome::Rejected(413));
        assert!(matches!(classify(408, None), Outcome::Retry(..)));
        assert!(matches!(
            classify(429, Some(Duration::from_secs(3))),
            Outcome::Retry(_, Some(_))
        ));
        assert!(matches!(classify(500, None), Outcome::Retry(..)));
        assert!(matches!(classify(503, None), Outcome::Retry(..)));
        assert!(matches!(classify(301, None), Outcome::Retry(..)));
    }

    #[test]
    fn spool_dirs_are_one_path_component() {
        assert_eq!(dir_name("webhook-1"), "webhook-1");
        assert_eq!(dir_name("../soc/x"), "_soc_x");
        assert_eq!(segment_bytes(256 << 20), 16 << 20);
        assert_eq!(segment_bytes(1 << 20), 128 << 10);
        assert_eq!(segment_bytes(1000), 4 << 10);
    }
}
