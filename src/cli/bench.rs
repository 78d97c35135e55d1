//! `kuzet bench`: the whole daemon pipeline measured end to end over TCP loopback: generated
//! traffic (`loadgen::scenario`, attacks injected, ground truth known) is sent over several
//! connections to a pipeline built exactly as `kuzet run` builds it (shipped rules unless
//! `--rules`), and its alerts (written by a `file` sink) are checked against the truth.
//!
//! 1. **Saturation**: every connection writes its share as fast as the engine takes it
//!    (TCP backpressure paces the senders); achieved events/s = events / time until the last
//!    one is parsed and matched.
//! 2. **Latency at fixed rates** (by default 50% and 90% of the saturated rate): paced
//!    senders for `--latency-secs`, event times following the wall clock; receive → alert
//!    from the pipeline's histogram, event time → alert from the alerts themselves.
//!
//! With `--target ADDR` no pipeline is started: the traffic goes to a running `kuzet run`,
//! and `--alerts FILE` (its `file` sink) is read for the check. `--stages` measures each
//! stage alone instead (`cli/stages.rs`). `--report FILE.html` draws the runs
//! (`cli/report.rs`). The senders run in the same process and share the cores; CPU figures
//! include them.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::config::{Config, ListenerConfig, SinkConfig};
use crate::loadgen::scenario::{Formats, Params, Scenario, Thresholds};
use crate::loadgen::truth::{self, Expected, Raised, Verdict};
use crate::pipeline::{self, Pipeline};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Events per saturation run.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Sender connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Distinct source addresses in the background traffic (split between connections).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Attacks of each kind per connection and run (default: one per 50,000 events).
    #[arg(long)]
    pub attacks: Option<u64>,
    /// Line formats (rfc3164, rfc5424, json, cef).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rfc3164,rfc5424,json,cef"
    )]
    pub formats: Vec<String>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Shard threads (0: one per four cores).
    #[arg(long, default_value_t = 0)]
    pub shards: usize,
    /// Rule files or pack directories (default: the shipped pack).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Offered rates for the latency runs, as fractions of the saturated rate.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.9")]
    pub at: Vec<f64>,
    /// Only the saturation run.
    #[arg(long)]
    pub saturation_only: bool,
    /// Length of each latency run, in seconds (attacks that do not fit are not injected).
    #[arg(long, default_value_t = 20)]
    pub latency_secs: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML page with charts.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Drive a running `kuzet run` at tcp://HOST:PORT (loopback) instead of an in-process
    /// pipeline; the offered rate is then `--rate`.
    #[arg(long)]
    pub target: Option<String>,
    /// With --target: offered events/s (0: as fast as it takes them).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// With --target: the file the daemon's `file` sink writes, to check its alerts.
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    /// Measure each pipeline stage alone (ns per event) and print a markdown section.
    #[arg(long)]
    pub stages: bool,
    /// With --stages: the input (default: generated traffic, --events lines).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With --stages: passes per stage (the fastest counts).
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
}

/// One run's results.
#[derive(Debug, Default, serde::Serialize)]
pub struct RunResult {
    pub mode: String,
    pub offered_eps: Option<f64>,
    pub achieved_eps: f64,
    pub events: u64,
    pub seconds: f64,
    pub dropped: u64,
    /// Cores busy (this process, senders included).
    pub cpu_cores: f64,
    /// Busy fraction of each core of the machine (all processes), 0..1.
    pub cpu_per_core: Vec<f64>,
    pub ingest_p50_ms: f64,
    pub ingest_p99_ms: f64,
    pub ingest_p999_ms: f64,
    /// Receive → alert, from the pipeline's histogram.
    pub alert_p50_ms: f64,
    pub alert_p99_ms: f64,
    pub alert_p999_ms: f64,
    /// Event time → alert (`detected_at − last_seen` of each alert's first version).
    pub event_to_alert_p50_ms: f64,
    pub event_to_alert_p99_ms: f64,
    pub event_to_alert_p999_ms: f64,
    pub alerts: u64,
    pub expected_alerts: usize,
    pub missed: usize,
    pub extra: usize,
    /// (seconds since start, events/s over the last interval), for the report.
    pub throughput: Vec<(f64, f64)>,
    /// (percentile, ms) of receive → alert, for the report.
    pub alert_latency: Vec<(f64, f64)>,
}

impl RunResult {
    /// The offered rate, or `max` for saturation.
    pub fn offered_label(&self) -> String {
        self.offered_eps
            .map(|o| format!("{o:.0}"))
            .unwrap_or_else(|| "max".into())
    }
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14, 15 of /proc/self/stat).
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// (busy, total) jiffies of each core, from /proc/stat (`cpuN` lines).
fn per_core() -> Vec<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    s.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            // idle + iowait are not busy.
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

fn busy_since(before: &[(u64, u64)]) -> Vec<f64> {
    per_core()
        .iter()
        .zip(before)
        .map(|(a, b)| {
            let t = a.1.saturating_sub(b.1).max(1) as f64;
            a.0.saturating_sub(b.0) as f64 / t
        })
        .collect()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn config(a: &BenchArgs, alerts: &std::path::Path) -> Config {
    let mut cfg = Config::default();
    let mut l = ListenerConfig::new("tcp://127.0.0.1:0");
    l.conn_buffer = 1 << 20;
    cfg.listeners = vec![l];
    cfg.admin.listen = String::new();
    cfg.stats.interval = crate::config::Span::secs(0);
    let mut sink = SinkConfig::new("file");
    sink.path = Some(alerts.to_path_buf());
    sink.rotate_bytes = u64::MAX / 2;
    cfg.sinks = vec![sink];
    // Alerts are checked against the ground truth, not turned into incidents: the bench
    // measures the engine.
    cfg.incidents.enabled = false;
    cfg.rules.paths = a.rules.clone();
    cfg.engine.workers = a.workers;
    cfg.engine.shards = a.shards;
    cfg
}

/// Generated traffic: one buffer per connection (line ends alongside), and the truth.
pub struct Traffic {
    pub bufs: Vec<(Vec<u8>, Vec<usize>)>,
    pub truth: Vec<Expected>,
    /// Event time of the first line (ms): sending starts later (generation takes time), and
    /// event time → alert is corrected by the difference.
    pub start_ms: i64,
}

/// `events` lines over `connections` streams, event times at `rate` events/s in all, from
/// now (`past` false) or ending now (`past`: for saturation runs, whose real rate is not known
/// in advance; their events are then never dated in the future). Each stream has its own part of the key space (addresses, users, attackers), so the
/// background rations of one stream cannot add up with another's.
fn traffic(
    a: &BenchArgs,
    th: &Thresholds,
    events: u64,
    rate: f64,
    past: bool,
) -> Result<Traffic, CliError> {
    let c = a.connections.max(1) as u64;
    let formats = Formats::parse(&a.formats).map_err(CliError::Usage)?;
    let addrs = (a.keys / c).clamp(1, (1 << 24) / c);
    let mut start_ms = crate::event::Timestamp::now().0.div_euclid(1_000_000);
    if past {
        start_ms -= (events as f64 / rate * 1000.0) as i64;
    }
    let mut out = Traffic {
        bufs: Vec::new(),
        truth: Vec::new(),
        start_ms,
    };
    for i in 0..c {
        let n = events / c + u64::from(i < events % c);
        let p = Params {
            seed: 0x006b_757a_6574 + i,
            count: n,
            rate: rate / c as f64,
            start_ms,
            hosts: 200,
            addrs,
            users: 100_000,
            formats,
            attacks: a.attacks.unwrap_or((n / 50_000).max(1)),
            part: i,
        };
        let mut sc = Scenario::new(p, th.clone());
        let mut buf = Vec::with_capacity(n as usize * 160);
        while sc.next_line(&mut buf) {}
        let ends: Vec<usize> = memchr::memchr_iter(b'\n', &buf).map(|p| p + 1).collect();
        out.truth.extend(sc.truth());
        out.bufs.push((buf, ends));
    }
    Ok(out)
}

/// Sends each buffer over its own connection to `addr`, at `rate` events/s in all (`None`:
/// as fast as the receiver takes them).
fn send_all(
    addr: std::net::SocketAddr,
    bufs: &[(Vec<u8>, Vec<usize>)],
    rate: Option<f64>,
) -> Vec<Sender> {
    let per_conn = rate.map(|r| r / bufs.len() as f64);
    bufs.iter()
        .map(|(buf, ends)| {
            let buf = buf.clone();
            let ends = ends.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut s = TcpStream::connect(addr)?;
                s.set_nodelay(true)?;
                match per_conn {
                    None => s.write_all(&buf),
                    Some(r) => {
                        let start = Instant::now();
                        let mut sent = 0usize;
                        while sent < ends.len() {
                            let due =
                                ((start.elapsed().as_secs_f64() * r) as usize).min(ends.len());
                            if due > sent {
                                let from = if sent == 0 { 0 } else { ends[sent - 1] };
                                s.write_all(&buf[from..ends[due - 1]])?;
                                sent = due;
                            } else {
                                std::thread::sleep(Duration::from_micros(500));
                            }
                        }
                        Ok(())
                    }
                }
            })
        })
        .collect()
}

type Sender = std::thread::JoinHandle<std::io::Result<()>>;

fn join_senders(senders: Vec<Sender>, addr: std::net::SocketAddr) -> Result<(), CliError> {
    for s in senders {
        s.join()
            .map_err(|_| CliError::Usage("sender panicked".into()))?
            .map_err(|e| CliError::Io {
                path: addr.to_string(),
                source: e,
            })?;
    }
    Ok(())
}

/// Progress on stderr (one line, rewritten) while `done()` < `total`; returns the
/// throughput samples. Bounded by `deadline`.
fn watch(
    total: u64,
    deadline: Instant,
    mut done: impl FnMut() -> u64,
    mut finished: impl FnMut() -> bool,
) -> Vec<(f64, f64)> {
    let t0 = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut samples = Vec::new();
    let (mut last_t, mut last_n) = (0.0, 0u64);
    let mut last_print = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let n = done();
        let t = t0.elapsed().as_secs_f64();
        samples.push((t, (n - last_n.min(n)) as f64 / (t - last_t).max(1e-9)));
        (last_t, last_n) = (t, n);
        if last_print.elapsed() >= Duration::from_millis(if tty { 250 } else { 2000 }) {
            last_print = Instant::now();
            let line = format!(
                "  {t:6.1} s  {n:>11} / {total} events  {:>10.0} events/s",
                n as f64 / t.max(1e-9)
            );
            let mut err = std::io::stderr();
            let _ = if tty {
                write!(err, "\r{line}")
            } else {
                writeln!(err, "{line}")
            };
        }
        if n >= total || finished() || Instant::now() >= deadline {
            break;
        }
    }
    if tty {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    samples
}

/// Alerts of a `file` sink (new since byte `from`), the check, and event → alert times.
/// `lag_ms`: how much later than its event time each line was due to be sent.
fn check_alerts(
    path: &std::path::Path,
    from: u64,
    truth: &[Expected],
    lag_ms: i64,
    r: &mut RunResult,
) -> Verdict {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    let raised: Vec<Raised> = text.lines().filter_map(Raised::from_alert_json).collect();
    // The first version of each alert: when it was raised, after the event that fired it.
    let mut seen = hashbrown::HashSet::new();
    let mut lat: Vec<f64> = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let ms = |k: &str| {
            v[k].as_str()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond())
        };
        if let (Some(d), Some(e)) = (ms("detected_at"), ms("last_seen"))
            && seen.insert(id)
        {
            lat.push((d - e - lag_ms) as f64);
        }
    }
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize]
        }
    };
    r.event_to_alert_p50_ms = q(0.5);
    r.event_to_alert_p99_ms = q(0.99);
    r.event_to_alert_p999_ms = q(0.999);
    let v = truth::check(truth, &raised);
    r.alerts = (v.matched + v.extra.len()) as u64;
    r.expected_alerts = v.expected;
    r.missed = v.missed.len();
    r.extra = v.extra.len();
    v
}

/// One in-process run: start a pipeline, send, wait until every event is processed.
fn run_once(a: &BenchArgs, t: &Traffic, rate: Option<f64>) -> Result<RunResult, CliError> {
    let dir = tempfile_dir()?;
    let alerts_path = dir.join("alerts.json");
    let cfg = config(a, &alerts_path);
    let (engine, inputs) =
        pipeline::build_engine(&cfg).map_err(|e| CliError::Usage(e.join("\n")))?;
    let pipe = Pipeline::start(cfg, engine, inputs).map_err(|e| CliError::Usage(e.to_string()))?;
    let addr = pipe.addresses[0].1;
    let total: u64 = t.bufs.iter().map(|(_, ends)| ends.len() as u64).sum();
    let cpu0 = cpu_seconds();
    let cores0 = per_core();
    let t0 = Instant::now();
    let lag_ms = crate::event::Timestamp::now().0.div_euclid(1_000_000) - t.start_ms;
    let senders = send_all(addr, &t.bufs, rate);
    let m = pipe.metrics.clone();
    let throughput = watch(
        total,
        Instant::now() + Duration::from_secs(600),
        || m.events_total(),
        || false,
    );
    join_senders(senders, addr)?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let cpu_per_core = busy_since(&cores0);
    // Let the last alerts reach the sink before reading the histograms.
    std::thread::sleep(Duration::from_millis(300));
    let (_, i50, i99, i999, _) = m.ingest_latency.summary();
    let (_, a50, a99, a999, _) = m.alert_latency.summary();
    let dropped = m
        .inputs
        .iter()
        .map(|i| i.oversize_dropped.get() + i.udp_dropped_queue_full.get())
        .sum();
    let mut res = RunResult {
        mode: match rate {
            None => "saturation".into(),
            Some(_) => "fixed rate".into(),
        },
        offered_eps: rate,
        achieved_eps: m.events_total() as f64 / secs,
        events: m.events_total(),
        seconds: secs,
        cpu_cores: cpu / secs,
        cpu_per_core,
        ingest_p50_ms: i50 as f64 / 1000.0,
        ingest_p99_ms: i99 as f64 / 1000.0,
        ingest_p999_ms: i999 as f64 / 1000.0,
        alert_p50_ms: a50 as f64 / 1000.0,
        alert_p99_ms: a99 as f64 / 1000.0,
        alert_p999_ms: a999 as f64 / 1000.0,
        dropped,
        throughput,
        alert_latency: m.alert_latency.percentiles(&super::bench_html::PERCENTILES),
        ..RunResult::default()
    };
    pipe.stop().map_err(|e| CliError::Io {
        path: "pipeline".into(),
        source: e,
    })?;
    check_alerts(&alerts_path, 0, &t.truth, lag_ms, &mut res);
    if rate.is_none() {
        // Nothing was due at a given time: event time → alert has no meaning here.
        res.event_to_alert_p50_ms = f64::NAN;
        res.event_to_alert_p99_ms = f64::NAN;
        res.event_to_alert_p999_ms = f64::NAN;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(res)
}

/// A fresh private directory under the system's temporary directory.
fn tempfile_dir() -> Result<PathBuf, CliError> {
    let base = std::env::temp_dir().join(format!(
        "kuzet-bench-{}-{}",
        std::process::id(),
        crate::event::Timestamp::now().0
    ));
    std::fs::create_dir_all(&base).map_err(|e| CliError::Io {
        path: base.display().to_string(),
        source: e,
    })?;
    Ok(base)
}

/// A run against a running daemon at `target`.
fn run_target(a: &BenchArgs, target: &str, t: &Traffic) -> Result<RunResult, CliError> {
    let hp = target.strip_prefix("tcp://").unwrap_or(target);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hp)
        .ok()
        .and_then(|mut x| x.next())
        .ok_or_else(|| CliError::Usage(format!("cannot resolve {hp:?}")))?;
    if !addr.ip().is_loopback() {
        return Err(CliError::Usage(format!(
            "--target {addr} is not a loopback address"
        )));
    }
    let from = a
        .alerts
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .unwrap_or(0);
    let total: u64 = t.bufs.iter().map(|(_, e)| e.len() as u64).sum();
    let rate = (a.rate > 0.0).then_some(a.rate);
    let cpu0 = cpu_seconds();
    let cores0 = per_core();
    let t0 = Instant::now();
    let lag_ms = crate::event::Timestamp::now().0.div_euclid(1_000_000) - t.start_ms;
    let senders = send_all(addr, &t.bufs, rate);
    // The daemon's count is not visible from here: progress is what the senders were due to
    // have sent (paced), or nothing until they are done (as fast as possible).
    let due = |t: Instant| rate.map_or(0, |r| ((t.elapsed().as_secs_f64() * r) as u64).min(total));
    let throughput = watch(
        total,
        Instant::now() + Duration::from_secs(600),
        || due(t0),
        || senders.iter().all(|s| s.is_finished()),
    );
    join_senders(senders, addr)?;
    let secs = t0.elapsed().as_secs_f64();
    let mut res = RunResult {
        mode: "target".into(),
        offered_eps: rate,
        achieved_eps: total as f64 / secs,
        events: total,
        seconds: secs,
        cpu_cores: (cpu_seconds() - cpu0) / secs,
        cpu_per_core: busy_since(&cores0),
        throughput: throughput
            .into_iter()
            .map(|(t, _)| (t, total as f64 / secs))
            .collect(),
        ..RunResult::default()
    };
    if let Some(p) = &a.alerts {
        // Give the daemon's correlator and sink a moment to write the last alerts.
        std::thread::sleep(Duration::from_secs(2));
        check_alerts(p, from, &t.truth, lag_ms, &mut res);
    }
    Ok(res)
}

fn thresholds(a: &BenchArgs) -> Result<Thresholds, CliError> {
    let sources = super::RuleArgs {
        rules: a.rules.clone(),
        ..super::RuleArgs::default()
    };
    super::r#gen::thresholds(&sources)
}

pub fn run(a: BenchArgs) -> Result<ExitCode, CliError> {
    let mut err = std::io::stderr();
    if a.stages {
        let data = match &a.input {
            Some(p) => std::fs::read(p).map_err(|e| CliError::Io {
                path: p.display().to_string(),
                source: e,
            })?,
            None => {
                let a1 = BenchArgs {
                    connections: 1,
                    ..a
                };
                let t = traffic(&a1, &thresholds(&a1)?, a1.events, 10_000.0, true)?;
                return stages(&a1, &t.bufs[0].0);
            }
        };
        return stages(&a, &data);
    }
    let th = thresholds(&a)?;
    let _ = writeln!(
        err,
        "kuzet bench: generating {} events over {} connections",
        a.events, a.connections
    );
    let mut results = Vec::new();
    if let Some(target) = &a.target {
        let rate = if a.rate > 0.0 { a.rate } else { 100_000.0 };
        let t = traffic(&a, &th, a.events, rate, false)?;
        results.push(run_target(&a, target, &t)?);
    } else {
        // Saturation: event times at a nominal 10k events/s, ending now (the achieved rate is
        // not known yet; slow enough that the attacks fit); event time → alert is only
        // meaningful in the fixed-rate runs.
        let t = traffic(&a, &th, a.events, 10_000.0, true)?;
        let bytes: usize = t.bufs.iter().map(|b| b.0.len()).sum();
        let _ = writeln!(
            err,
            "kuzet bench: saturation run ({:.0} MB)",
            bytes as f64 / 1e6
        );
        results.push(run_once(&a, &t, None)?);
        let fractions = if a.saturation_only {
            Vec::new()
        } else {
            a.at.clone()
        };
        for f in fractions {
            let rate = results[0].achieved_eps * f;
            let n = ((rate * a.latency_secs as f64) as u64).max(1000);
            let _ = writeln!(
                err,
                "kuzet bench: {:.0}% of saturation ({rate:.0} events/s for {} s)",
                f * 100.0,
                a.latency_secs
            );
            let t = traffic(&a, &th, n, rate, false)?;
            results.push(run_once(&a, &t, Some(rate))?);
        }
    }
    let rss = peak_rss_mb();
    if let Some(p) = &a.report {
        let html = super::bench_html::page(&a_summary(&a), &results, rss);
        std::fs::write(p, html).map_err(|e| CliError::Io {
            path: p.display().to_string(),
            source: e,
        })?;
        let _ = writeln!(err, "kuzet bench: wrote {}", p.display());
    }
    if a.json {
        let v = serde_json::json!({
            "events": a.events,
            "connections": a.connections,
            "keys": a.keys,
            "peak_rss_mb": rss,
            "runs": results,
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", table(&results));
    println!(
        "peak RSS {rss:.0} MB (includes the generated input held in memory); cpu = cores busy, senders included"
    );
    Ok(ExitCode::SUCCESS)
}

fn a_summary(a: &BenchArgs) -> String {
    format!(
        "{} events, {} connections, {} background addresses, formats {}{}",
        a.events,
        a.connections,
        a.keys,
        a.formats.join(","),
        a.target
            .as_ref()
            .map(|t| format!(", target {t}"))
            .unwrap_or_default()
    )
}

/// The text table of the runs.
fn table(results: &[RunResult]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<11} {:>10} {:>10} {:>6} {:>5} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5}",
        "run",
        "offered/s",
        "achieved/s",
        "drops",
        "cpu",
        "per core",
        "rx→al50",
        "rx→al99",
        "rx→al999",
        "ev→al50",
        "ev→al99",
        "ev→al999",
        "alerts",
        "missed",
        "extra"
    );
    for r in results {
        let per_core: Vec<String> = r
            .cpu_per_core
            .iter()
            .map(|c| format!("{:.0}", c * 100.0))
            .collect();
        let _ = writeln!(
            o,
            "{:<11} {:>10} {:>10.0} {:>6} {:>5.2} {:>11} {:>8.2} {:>8.2} {:>8.2} {:>8.0} {:>8.0} {:>8.0} {:>8} {:>6} {:>5}",
            r.mode,
            r.offered_label(),
            r.achieved_eps,
            r.dropped,
            r.cpu_cores,
            format!("{}%", per_core.join("/")),
            r.alert_p50_ms,
            r.alert_p99_ms,
            r.alert_p999_ms,
            r.event_to_alert_p50_ms,
            r.event_to_alert_p99_ms,
            r.event_to_alert_p999_ms,
            format!("{}/{}", r.alerts, r.expected_alerts),
            r.missed,
            r.extra
        );
    }
    let _ = writeln!(
        o,
        "latencies in ms: rx→al receive → alert (pipeline histogram), ev→al event time → alert (from the alerts)"
    );
    o
}

fn stages(a: &BenchArgs, data: &[u8]) -> Result<ExitCode, CliError> {
    let cfg = super::RuleArgs {
        rules: a.rules.clone(),
        ..super::RuleArgs::default()
    }
    .engine_config();
    super::stages::run(data, a.reps, cfg).map_err(CliError::Usage)?;
    Ok(ExitCode::SUCCESS)
}
