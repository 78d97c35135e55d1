//! The daemon's configuration (`kuzet run --config kuzet.toml`): TOML, every key optional,
//! every default safe (loopback listeners, bounded queues). `kuzet.example.toml` at the
//! repository root documents each key; a test keeps it loadable and equal to the defaults
//! where it says so.
//!
//! Loading is two steps: serde reads the file (unknown keys are errors, with their line), then
//! [`Config::validate`] checks meaning and reports *every* problem with its key path
//! (`listener[1].address: ...`), so an operator fixes a config in one go.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::correlator::Policy;
use crate::event::time::Tz;
use crate::parser::InputFormat;
use crate::reader::tls::ClientAuth;
use crate::reader::{Framing, ListenSpec, Oversize};

/// A span of time written `30s`, `10m`, `2h`, `500ms` or as a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl Span {
    pub fn secs(s: u64) -> Span {
        Span(Duration::from_secs(s))
    }

    pub fn parse(s: &str) -> Option<Span> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().ok()?;
        let ms = match unit.trim() {
            "ms" => n,
            "s" => n.checked_mul(1000)?,
            "m" => n.checked_mul(60_000)?,
            "h" => n.checked_mul(3_600_000)?,
            "d" => n.checked_mul(86_400_000)?,
            _ => return None,
        };
        Some(Span(Duration::from_millis(ms)))
    }

    pub fn as_millis(self) -> i64 {
        self.0.as_millis().min(i64::MAX as u128) as i64
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Span::secs(s)),
            Raw::Text(t) => Span::parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{t:?} is not a duration (a number of seconds, or 500ms, 30s, 10m, 2h, 1d)"
                ))
            }),
        }
    }
}

/// One listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// `udp://host:port`, `tcp://host:port` or `tls://host:port`.
    pub address: String,
    #[serde(default = "d_auto")]
    pub format: String,
    #[serde(default = "d_utc")]
    pub tz: String,
    /// Declared Sigma logsource of everything this listener receives (`product=linux,service=sshd`).
    #[serde(default)]
    pub logsource: Option<String>,
    /// TCP/TLS framing: `auto` (per frame), `octet-counted` or `newline`.
    #[serde(default = "d_auto")]
    pub framing: String,
    #[serde(default = "d_max_frame")]
    pub max_frame: usize,
    /// `truncate` or `drop` frames longer than `max_frame`.
    #[serde(default = "d_truncate")]
    pub oversize: String,
    #[serde(default = "d_recv_buffer")]
    pub udp_recv_buffer: usize,
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
    /// Read buffer per TCP connection.
    #[serde(default = "d_conn_buffer")]
    pub conn_buffer: usize,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
    /// `none`, `optional` or `required`.
    #[serde(default = "d_none")]
    pub tls_client_auth: String,
}

impl ListenerConfig {
    pub fn new(address: &str) -> ListenerConfig {
        ListenerConfig {
            address: address.to_string(),
            format: d_auto(),
            tz: d_utc(),
            logsource: None,
            framing: d_auto(),
            max_frame: d_max_frame(),
            oversize: d_truncate(),
            udp_recv_buffer: d_recv_buffer(),
            max_connections: d_max_connections(),
            conn_buffer: d_conn_buffer(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_client_auth: d_none(),
        }
    }
}

/// Where rules come from (reloaded on SIGHUP).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule files or pack directories; empty: the shipped pack.
    pub paths: Vec<PathBuf>,
    pub pipelines: Vec<PathBuf>,
    pub parsers: Vec<PathBuf>,
    pub no_default_pipelines: bool,
    pub no_default_parsers: bool,
    /// Values of `expand` placeholders: `NAME = ["v1", "v2"]`.
    pub placeholders: std::collections::BTreeMap<String, Vec<String>>,
}

/// Threads, queues and correlation limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Parse+match worker threads; 0: one per core.
    pub workers: usize,
    /// Correlator shard threads; 0: one per four cores (at least one).
    pub shards: usize,
    /// Batches queued between readers and workers.
    pub queue_batches: usize,
    /// Hit batches queued per shard.
    pub shard_queue: usize,
    /// Alerts queued before the sinks (and per sink).
    pub alert_queue: usize,
    /// Live keys per correlation rule per shard; the stalest are evicted beyond it.
    pub max_keys: usize,
    /// Values (timestamps, distinct values) kept per key.
    pub max_values: usize,
    /// Events carried as evidence in one alert.
    pub evidence_events: usize,
    /// Bytes of recent events kept per shard for evidence.
    pub evidence_bytes: usize,
    /// How late (event time) an event may arrive and still be placed in its window.
    pub lateness: Span,
    /// Events dated further than this after their receive time use the receive time.
    pub max_future: Span,
    /// `suppress` (one alert updated while an attack lasts) or `reset`.
    pub policy: String,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            workers: 0,
            shards: 0,
            queue_batches: 64,
            shard_queue: 64,
            alert_queue: 4096,
            max_keys: 10_000_000,
            max_values: 10_000,
            evidence_events: 10,
            evidence_bytes: 16 << 20,
            lateness: Span::secs(60),
            max_future: Span::secs(900),
            policy: "suppress".into(),
        }
    }
}

/// Correlation state on disk.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Directory for checkpoints, the webhook spools and `incidents.sqlite3`; none: state
    /// lives in memory only.
    pub dir: Option<PathBuf>,
    pub checkpoint_interval: Span,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: None,
            checkpoint_interval: Span::secs(60),
        }
    }
}

/// The admin/metrics HTTP listener.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// `host:port`; empty: no admin listener.
    pub listen: String,
    /// Bearer token for the endpoints that change things (reload); required when `listen`
    /// is not a loopback address.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:9514".into(),
            token: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// A one-line summary on stderr this often; 0: never.
    pub interval: Span,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            interval: Span::secs(60),
        }
    }
}

/// One sink. Which alerts it takes: `min_level` and, when given, any of `tags`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// `stdout`, `file`, `syslog`, `webhook`, `kafka` (feature `kafka`), or `discard` (count
    /// and drop: benchmarks).
    #[serde(rename = "type")]
    pub kind: String,
    /// Name in metrics and logs; default: the type and position.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "d_informational")]
    pub min_level: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// When not empty, only alerts about an asset of one of these object classes
    /// (`state_body`, `egov`, `critical_infrastructure`, custom): the target's class, else
    /// the source's (see `[incidents]`).
    #[serde(default)]
    pub object_classes: Vec<String>,
    /// file: the path; rotated at `rotate_bytes` into `path.1` … `path.<keep>`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default = "d_rotate")]
    pub rotate_bytes: u64,
    #[serde(default = "d_keep")]
    pub keep: usize,
    /// syslog: `udp://`, `tcp://` or `tls://host:port`.
    #[serde(default)]
    pub address: Option<String>,
    /// syslog: `json` (the alert as MSG) or `sd` (also as STRUCTURED-DATA).
    #[serde(default = "d_json")]
    pub format: String,
    /// syslog: the facility of every message (`local4`; RFC 5424 names: kern, user, ...,
    /// local0 ... local7); the severity comes from the rule's level.
    #[serde(default = "d_local4")]
    pub facility: String,
    /// syslog over TLS and https webhooks: CA file (PEM) to verify the server with
    /// (default: the system's CA store).
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// webhook: the URL alerts are POSTed to.
    #[serde(default)]
    pub url: Option<String>,
    /// webhook: extra headers (`Authorization = "Bearer ..."`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// webhook: where undelivered alerts wait (default: `<state.dir>/spool/<name>`).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// webhook: bound on undelivered bytes in the spool; beyond it `write` fails and the
    /// pipeline backs off (backpressure), nothing is dropped.
    #[serde(default = "d_spool")]
    pub spool_max_bytes: u64,
    /// syslog: connect and send timeout; webhook: the whole request.
    #[serde(default = "d_timeout")]
    pub timeout: Span,
    /// webhook: longest wait between retries (backoff doubles from 100 ms up to it).
    #[serde(default = "d_backoff")]
    pub max_backoff: Span,
    /// kafka: the topic alerts are produced to (key: the alert id); `address` holds the
    /// brokers (default: `[kafka] brokers`).
    #[serde(default)]
    pub topic: Option<String>,
}

impl SinkConfig {
    pub fn new(kind: &str) -> SinkConfig {
        SinkConfig {
            kind: kind.into(),
            name: None,
            min_level: d_informational(),
            tags: Vec::new(),
            object_classes: Vec::new(),
            path: None,
            rotate_bytes: d_rotate(),
            keep: d_keep(),
            address: None,
            format: d_json(),
            facility: d_local4(),
            tls_ca: None,
            url: None,
            headers: Default::default(),
            spool_dir: None,
            spool_max_bytes: d_spool(),
            timeout: d_timeout(),
            max_backoff: d_backoff(),
            topic: None,
        }
    }
}

fn d_auto() -> String {
    "auto".into()
}
fn d_utc() -> String {
    "UTC".into()
}
fn d_none() -> String {
    "none".into()
}
fn d_truncate() -> String {
    "truncate".into()
}
fn d_json() -> String {
    "json".into()
}
fn d_local4() -> String {
    "local4".into()
}
fn d_informational() -> String {
    "informational".into()
}
fn d_max_frame() -> usize {
    64 * 1024
}
fn d_recv_buffer() -> usize {
    8 << 20
}
fn d_max_connections() -> usize {
    1024
}
fn d_conn_buffer() -> usize {
    256 * 1024
}
fn d_rotate() -> u64 {
    100 << 20
}
fn d_keep() -> usize {
    5
}
fn d_spool() -> u64 {
    256 << 20
}
fn d_timeout() -> Span {
    Span::secs(10)
}
fn d_backoff() -> Span {
    Span::secs(60)
}

/// The whole file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    pub rules: RulesConfig,
    pub engine: EngineSection,
    pub state: StateConfig,
    pub admin: AdminConfig,
    pub stats: StatsConfig,
    #[serde(rename = "sink")]
    pub sinks: Vec<SinkConfig>,
    pub incidents: crate::incident::config::IncidentsConfig,
    /// Scale-out over Kafka (issue 9, docs/scale-out.md); needs the `kafka` feature.
    pub kafka: Option<crate::kafka::config::KafkaConfig>,
}

impl Default for Config {
    /// The embedded defaults: syslog on UDP and TCP 127.0.0.1:5514, the shipped rules,
    /// alerts to stdout, metrics on 127.0.0.1:9514.
    fn default() -> Self {
        Config {
            listeners: vec![
                ListenerConfig::new("udp://127.0.0.1:5514"),
                ListenerConfig::new("tcp://127.0.0.1:5514"),
            ],
            rules: RulesConfig::default(),
            engine: EngineSection::default(),
            state: StateConfig::default(),
            admin: AdminConfig::default(),
            stats: StatsConfig::default(),
            sinks: vec![SinkConfig::new("stdout")],
            incidents: Default::default(),
            kafka: None,
        }
    }
}

/// Where a sink sends to: a transport and a `host:port` resolved when connecting (a name
/// need not resolve when the config is checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub transport: crate::reader::Transport,
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target, String> {
        let (transport, rest) = crate::reader::Transport::split(s)?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{s:?}: {port:?} is not a port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        Ok(Target {
            transport,
            host: host.to_string(),
            port,
        })
    }
}

/// A problem with a config, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

pub const LEVELS: &[&str] = &["informational", "low", "medium", "high", "critical"];

impl Config {
    /// Reads and validates a file. `Err` holds every problem found.
    pub fn load(path: &std::path::Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                path: String::new(),
                reason: format!("{}: {e}", path.display()),
            }]
        })?;
        Config::from_toml(&text).map_err(|mut errs| {
            for e in &mut errs {
                e.reason = format!("{} ({})", e.reason, path.display());
            }
            errs
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, Vec<ConfigError>> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let path = e
                .span()
                .map(|s| key_path_at(text, s.start))
                .unwrap_or_default();
            vec![ConfigError {
                path,
                reason: e.message().trim().to_string()
                    + &e.span()
                        .map(|s| format!(" (line {})", line_of(text, s.start)))
                        .unwrap_or_default(),
            }]
        })?;
        let errs = cfg.validate();
        if errs.is_empty() { Ok(cfg) } else { Err(errs) }
    }

    /// Every problem of meaning, with its key path.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        let mut kafka_errs = Vec::new();
        if let Some(k) = &self.kafka {
            crate::kafka::config::validate(k, &mut kafka_errs);
        }
        let mut err = |path: String, reason: String| errs.push(ConfigError { path, reason });
        let mut seen = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let p = |k: &str| format!("listener[{i}].{k}");
            match ListenSpec::parse(&l.address) {
                Ok(spec) => {
                    if seen.contains(&(spec.transport, spec.addr)) {
                        err(p("address"), format!("{} is listed twice", l.address));
                    }
                    seen.push((spec.transport, spec.addr));
                    if spec.transport == crate::reader::Transport::Tls
                        && (l.tls_cert.is_none() || l.tls_key.is_none())
                    {
                        err(
                            p("tls_cert"),
                            "tls:// listeners need tls_cert and tls_key".into(),
                        );
                    }
                }
                Err(e) => err(p("address"), e),
            }
            if InputFormat::parse(&l.format).is_none() {
                err(
                    p("format"),
                    format!(
                        "{:?} is not one of {}",
                        l.format,
                        InputFormat::NAMES.join(", ")
                    ),
                );
            }
            if let Err(e) = Tz::parse(&l.tz) {
                err(p("tz"), e.to_string());
            }
            if let Some(ls) = &l.logsource
                && let Err(e) = crate::cli::replay::parse_logsource(ls)
            {
                err(p("logsource"), e.to_string());
            }
            if Framing::parse(&l.framing).is_none() {
                err(
                    p("framing"),
                    format!("{:?}: auto, octet-counted or newline", l.framing),
                );
            }
            if Oversize::parse(&l.oversize).is_none() {
                err(p("oversize"), format!("{:?}: truncate or drop", l.oversize));
            }
            if ClientAuth::parse(&l.tls_client_auth).is_none() {
                err(
                    p("tls_client_auth"),
                    format!("{:?}: none, optional or required", l.tls_client_auth),
                );
            }
            if !(64..=16 << 20).contains(&l.max_frame) {
                err(p("max_frame"), "must be between 64 bytes and 16 MiB".into());
            }
            if l.max_connections == 0 {
                err(p("max_connections"), "must be at least 1".into());
            }
        }
        if self.listeners.is_empty() && self.kafka.is_none() {
            err("listener".into(), "at least one listener is needed".into());
        }
        let e = &self.engine;
        for (k, v) in [
            ("queue_batches", e.queue_batches),
            ("shard_queue", e.shard_queue),
            ("alert_queue", e.alert_queue),
            ("max_keys", e.max_keys),
            ("max_values", e.max_values),
        ] {
            if v == 0 {
                err(format!("engine.{k}"), "must be at least 1".into());
            }
        }
        if e.workers > 1024 || e.shards > 1024 {
            err(
                "engine.workers".into(),
                "at most 1024 workers and shards".into(),
            );
        }
        if Policy::parse(&e.policy).is_none() {
            err(
                "engine.policy".into(),
                format!("{:?}: suppress or reset", e.policy),
            );
        }
        if !self.admin.listen.is_empty() {
            match self.admin.listen.parse::<SocketAddr>() {
                Ok(a) if !a.ip().is_loopback() && self.admin.token.is_none() => err(
                    "admin.token".into(),
                    format!("the admin listener {a} is not loopback: set a token"),
                ),
                Ok(_) => {}
                Err(e2) => err(
                    "admin.listen".into(),
                    format!("{:?}: {e2}", self.admin.listen),
                ),
            }
        }
        for (i, s) in self.sinks.iter().enumerate() {
            let p = |k: &str| format!("sink[{i}].{k}");
            if !LEVELS.contains(&s.min_level.as_str()) {
                err(
                    p("min_level"),
                    format!("{:?} is not one of {}", s.min_level, LEVELS.join(", ")),
                );
            }
            match s.kind.as_str() {
                "stdout" | "discard" => {}
                "file" => {
                    if s.path.is_none() {
                        err(p("path"), "a file sink needs a path".into());
                    }
                }
                "syslog" => {
                    match &s.address {
                        None => err(p("address"), "a syslog sink needs an address".into()),
                        Some(a) => {
                            if let Err(e) = Target::parse(a) {
                                err(p("address"), e);
                            }
                        }
                    }
                    if !matches!(s.format.as_str(), "json" | "sd") {
                        err(p("format"), format!("{:?}: json or sd", s.format));
                    }
                    if crate::sink::syslog::facility_code(&s.facility).is_none() {
                        err(
                            p("facility"),
                            format!(
                                "{:?} is not one of {}",
                                s.facility,
                                crate::sink::syslog::FACILITIES.join(", ")
                            ),
                        );
                    }
                    if s.timeout.0.is_zero() {
                        err(p("timeout"), "must be more than 0".into());
                    }
                }
                "webhook" => {
                    match &s.url {
                        None => err(p("url"), "a webhook sink needs a url".into()),
                        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                            err(p("url"), format!("{u:?} is not an http(s) URL"))
                        }
                        _ => {}
                    }
                    if s.spool_dir.is_none() && self.state.dir.is_none() {
                        err(
                            p("spool_dir"),
                            "a webhook sink needs a spool_dir (or state.dir) so alerts survive an outage".into(),
                        );
                    }
                    for (k, v) in &s.headers {
                        if k.is_empty() || !k.bytes().all(is_token_char) {
                            err(p(&format!("headers.{k}")), "not an HTTP header name".into());
                        }
                        if v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                            err(
                                p(&format!("headers.{k}")),
                                "a header value holds no control characters".into(),
                            );
                        }
                    }
                    if s.spool_max_bytes < 4096 {
                        err(p("spool_max_bytes"), "must be at least 4096".into());
                    }
                    if s.timeout.0.is_zero() {
                        err(p("timeout"), "must be more than 0".into());
                    }
                    if s.max_backoff.0.is_zero() {
                        err(p("max_backoff"), "must be more than 0".into());
                    }
                }
                "kafka" => {
                    crate::kafka::config::validate_sink(i, s, self.kafka.as_ref(), &mut kafka_errs)
                }
                other => err(
                    p("type"),
                    format!(
                        "{other:?} is not one of stdout, file, syslog, webhook, kafka, discard"
                    ),
                ),
            }
        }
        if self.sinks.is_empty() {
            err("sink".into(), "at least one sink is needed".into());
        }
        self.incidents.validate(&mut errs);
        errs.append(&mut kafka_errs);
        errs
    }

    pub fn workers(&self) -> usize {
        match self.engine.workers {
            0 => cores(),
            n => n,
        }
    }

    pub fn shards(&self) -> usize {
        match self.engine.shards {
            0 => (cores() / 4).max(1),
            n => n,
        }
    }
}

/// An RFC 9110 `tchar` (header names are tokens).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The dotted key path of the table (and key) around byte `at`: `[[sink]]` tables are
/// numbered as in `sink[1].url`.
fn key_path_at(text: &str, at: usize) -> String {
    let mut table = String::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut key = String::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let l = line.trim();
        if start > at {
            break;
        }
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let n = counts.entry(name.trim().to_string()).or_insert(0);
            table = format!("{}[{}]", name.trim(), *n);
            *n += 1;
            key.clear();
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
            table = name.trim().to_string();
            key.clear();
        } else if let Some((k, _)) = l.split_once('=')
            && !l.starts_with('#')
        {
            key = k.trim().to_string();
        }
    }
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback() {
        let c = Config::default();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        for l in &c.listeners {
            assert!(
                ListenSpec::parse(&l.address)
                    .unwrap()
                    .addr
                    .ip()
                    .is_loopback()
            );
        }
        assert_eq!(Config::from_toml("").unwrap(), c);
    }

    #[test]
    fn the_example_file_loads_and_its_active_values_are_the_defaults() {
        let c = Config::from_toml(include_str!("../kuzet.example.toml")).unwrap();
        assert_eq!(c, Config::default());
        // Every commented-out section also loads once uncommented.
        let all: String = include_str!("../kuzet.example.toml")
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| {
                        r.starts_with("[[")
                            || r.split_once(" = ").is_some_and(|(k, _)| {
                                k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                            })
                    })
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml(&all).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.listeners.len(), 3);
        assert_eq!(c.sinks.len(), 4);
        assert_eq!(c.sinks[2].facility, "local4");
        assert!(c.sinks[2].tls_ca.is_some() && c.sinks[3].tls_ca.is_some());
        assert_eq!(c.sinks[3].name.as_deref(), Some("soc"));
        assert_eq!(
            c.sinks[3].spool_max_bytes,
            SinkConfig::new("webhook").spool_max_bytes
        );
        assert_eq!(c.admin.token.as_deref(), Some("change-me"));
    }

    #[test]
    fn every_problem_is_reported_with_its_key_path() {
        let errs = Config::from_toml(
            r#"
[[listener]]
address = "tcp://127.0.0.1:5514"
[[listener]]
address = "smtp://127.0.0.1:25"
format = "xml"
tz = "Mars/Olympus"
[engine]
policy = "forget"
queue_batches = 0
[admin]
listen = "0.0.0.0:9514"
[[sink]]
type = "webhook"
url = "ftp://x"
[[sink]]
type = "file"
min_level = "severe"
[[sink]]
type = "syslog"
address = "tcp://siem"
format = "cef"
facility = "local9"
[[sink]]
type = "webhook"
url = "https://soc.example/alerts"
spool_dir = "/tmp/x"
spool_max_bytes = 10
headers = { "Bad Name" = "x", Authorization = "Bearer a\nb" }
"#,
        )
        .unwrap_err();
        let got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        for want in [
            "listener[1].address: ",
            "listener[1].format: ",
            "listener[1].tz: ",
            "engine.policy: ",
            "engine.queue_batches: ",
            "admin.token: ",
            "sink[0].url: ",
            "sink[0].spool_dir: ",
            "sink[1].path: ",
            "sink[1].min_level: ",
            "sink[2].address: ",
            "sink[2].format: ",
            "sink[2].facility: ",
            "sink[3].headers.Bad Name: ",
            "sink[3].headers.Authorization: ",
            "sink[3].spool_max_bytes: ",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{want} not in {got:#?}"
            );
        }
    }

    #[test]
    fn unknown_keys_name_their_table_and_line() {
        let errs = Config::from_toml("[engine]\nworkers = 2\nwokers = 3\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        let e = errs[0].to_string();
        assert!(e.starts_with("engine.wokers: "), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let errs =
            Config::from_toml("[[sink]]\ntype = \"stdout\"\n[[sink]]\ntype = \"file\"\nsize = 3\n")
                .unwrap_err();
        assert!(
            errs[0].to_string().starts_with("sink[1].size: "),
            "{errs:?}"
        );
    }

    #[test]
    fn spans_read_units_and_plain_seconds() {
        assert_eq!(Span::parse("500ms"), Some(Span(Duration::from_millis(500))));
        assert_eq!(Span::parse("10m"), Some(Span::secs(600)));
        assert_eq!(Span::parse("2h"), Some(Span::secs(7200)));
        assert_eq!(Span::parse("10 parsecs"), None);
        let c = Config::from_toml("[engine]\nlateness = 5\nmax_future = \"1h\"\n").unwrap();
        assert_eq!(c.engine.lateness, Span::secs(5));
        assert_eq!(c.engine.max_future, Span::secs(3600));
        assert!(Config::from_toml("[engine]\nlateness = \"soon\"\n").is_err());
    }
}
