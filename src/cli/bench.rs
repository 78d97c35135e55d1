//! `kuzet bench`: the whole daemon pipeline measured end to end over TCP loopback, in one
//! process: generated syslog (`loadgen::syslog`, brute-force bursts injected so alerts flow)
//! is sent over several connections to a pipeline built exactly as `kuzet run` builds it
//! (shipped rules unless `--rules`), alerts counted and discarded.
//!
//! 1. **Saturation**: every connection writes its share as fast as the engine takes it
//!    (TCP backpressure paces the senders); achieved events/s = events / time until the last
//!    one is parsed and matched.
//! 2. **Latency at fixed rates** (by default 50% and 90% of the saturated rate): paced
//!    senders for `--latency-secs`; receive → matched and receive → alert percentiles from
//!    the pipeline's own histograms.
//!
//! The senders run in the same process and share the cores; CPU figures include them.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::config::{Config, ListenerConfig, SinkConfig};
use crate::loadgen::syslog::{Mix, generate};
use crate::pipeline::{self, Pipeline};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Events per run.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Sender connections.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Distinct source addresses in the background traffic.
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// One injected brute-force burst every this many events.
    #[arg(long, default_value_t = 10_000)]
    pub attack_every: u64,
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
    /// Length of each latency run.
    #[arg(long, default_value_t = 10)]
    pub latency_secs: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Default, serde::Serialize)]
struct RunResult {
    mode: String,
    offered_eps: Option<f64>,
    achieved_eps: f64,
    events: u64,
    seconds: f64,
    alerts: u64,
    cpu_cores: f64,
    ingest_p50_ms: f64,
    ingest_p99_ms: f64,
    ingest_p999_ms: f64,
    alert_p50_ms: f64,
    alert_p99_ms: f64,
    alert_p999_ms: f64,
    dropped: u64,
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

fn stamp_now() -> String {
    let t = crate::event::Timestamp::now();
    let days = t.secs().div_euclid(86_400);
    let (_, m, d) = crate::event::time::civil_from_days(days);
    let sod = t.secs().rem_euclid(86_400);
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MON[(m - 1) as usize],
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

fn config(a: &BenchArgs) -> Config {
    let mut cfg = Config::default();
    let mut l = ListenerConfig::new("tcp://127.0.0.1:0");
    l.conn_buffer = 1 << 20;
    cfg.listeners = vec![l];
    cfg.admin.listen = String::new();
    cfg.stats.interval = crate::config::Span::secs(0);
    cfg.sinks = vec![SinkConfig::new("discard")];
    // Alerts are discarded, not turned into incidents: the bench measures the engine.
    cfg.incidents.enabled = false;
    cfg.rules.paths = a.rules.clone();
    cfg.engine.workers = a.workers;
    cfg.engine.shards = a.shards;
    cfg
}

/// One run: start a pipeline, send `bufs` (one per connection) at `rate` events/s in total
/// (`None`: as fast as possible), wait until every event is processed.
fn run_once(
    a: &BenchArgs,
    bufs: &[(Vec<u8>, Vec<usize>)],
    rate: Option<f64>,
) -> Result<RunResult, CliError> {
    let cfg = config(a);
    let (engine, inputs) =
        pipeline::build_engine(&cfg).map_err(|e| CliError::Usage(e.join("\n")))?;
    let pipe = Pipeline::start(cfg, engine, inputs).map_err(|e| CliError::Usage(e.to_string()))?;
    let addr = pipe.addresses[0].1;
    let total: u64 = bufs.iter().map(|(_, ends)| ends.len() as u64).sum();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let per_conn = rate.map(|r| r / bufs.len() as f64);
    let senders: Vec<_> = bufs
        .iter()
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
        .collect();
    for s in senders {
        s.join()
            .map_err(|_| CliError::Usage("sender panicked".into()))?
            .map_err(|e| CliError::Io {
                path: addr.to_string(),
                source: e,
            })?;
    }
    let m = pipe.metrics.clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    while m.events_total() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    // Let the last alerts reach the dispatcher before reading the histograms.
    std::thread::sleep(Duration::from_millis(300));
    let (_, i50, i99, i999, _) = m.ingest_latency.summary();
    let (_, a50, a99, a999, _) = m.alert_latency.summary();
    let dropped = m
        .inputs
        .iter()
        .map(|i| i.oversize_dropped.get() + i.udp_dropped_queue_full.get())
        .sum();
    let res = RunResult {
        mode: match rate {
            None => "saturation".into(),
            Some(_) => "fixed rate".into(),
        },
        offered_eps: rate,
        achieved_eps: m.events_total() as f64 / secs,
        events: m.events_total(),
        seconds: secs,
        alerts: m.alerts_total.get(),
        cpu_cores: cpu / secs,
        ingest_p50_ms: i50 as f64 / 1000.0,
        ingest_p99_ms: i99 as f64 / 1000.0,
        ingest_p999_ms: i999 as f64 / 1000.0,
        alert_p50_ms: a50 as f64 / 1000.0,
        alert_p99_ms: a99 as f64 / 1000.0,
        alert_p999_ms: a999 as f64 / 1000.0,
        dropped,
    };
    pipe.stop().map_err(|e| CliError::Io {
        path: "pipeline".into(),
        source: e,
    })?;
    Ok(res)
}

fn buffers(a: &BenchArgs, events: u64) -> Vec<(Vec<u8>, Vec<usize>)> {
    let stamp = stamp_now();
    let c = a.connections.max(1) as u64;
    (0..c)
        .map(|i| {
            let mix = Mix {
                keys: a.keys,
                attack_every: a.attack_every,
                attacker_base: 0x00C0_0000 + (i << 16),
                ..Mix::default()
            };
            let n = events / c + u64::from(i < events % c);
            let (text, _) = generate(0x6b757a6574 + i, &mix, &stamp, n);
            let buf = text.into_bytes();
            let ends: Vec<usize> = memchr::memchr_iter(b'\n', &buf).map(|p| p + 1).collect();
            (buf, ends)
        })
        .collect()
}

pub fn run(a: BenchArgs) -> Result<ExitCode, CliError> {
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "kuzet bench: generating {} events over {} connections",
        a.events, a.connections
    );
    let bufs = buffers(&a, a.events);
    let bytes: usize = bufs.iter().map(|b| b.0.len()).sum();
    let _ = writeln!(
        err,
        "kuzet bench: saturation run ({:.0} MB)",
        bytes as f64 / 1e6
    );
    let sat = run_once(&a, &bufs, None)?;
    let mut results = vec![sat];
    for f in a.at.clone() {
        let rate = results[0].achieved_eps * f;
        let n = (rate * a.latency_secs as f64) as u64;
        let _ = writeln!(
            err,
            "kuzet bench: {:.0}% of saturation ({rate:.0} events/s for {} s)",
            f * 100.0,
            a.latency_secs
        );
        let bufs = buffers(&a, n.max(1000));
        results.push(run_once(&a, &bufs, Some(rate))?);
    }
    let rss = peak_rss_mb();
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
    println!(
        "{:<12} {:>12} {:>12} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "run",
        "offered/s",
        "achieved/s",
        "alerts",
        "cpu",
        "in p50ms",
        "in p99ms",
        "in p999",
        "al p50ms",
        "al p99ms",
        "al p999"
    );
    for r in &results {
        println!(
            "{:<12} {:>12} {:>12.0} {:>8} {:>6.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            r.mode,
            r.offered_eps
                .map(|o| format!("{o:.0}"))
                .unwrap_or_else(|| "max".into()),
            r.achieved_eps,
            r.alerts,
            r.cpu_cores,
            r.ingest_p50_ms,
            r.ingest_p99_ms,
            r.ingest_p999_ms,
            r.alert_p50_ms,
            r.alert_p99_ms,
            r.alert_p999_ms
        );
    }
    println!(
        "peak RSS {rss:.0} MB (includes the generated input held in memory); cpu = cores busy, senders included"
    );
    Ok(ExitCode::SUCCESS)
}
