//! `kuzet run`: the daemon. With no arguments it runs on the embedded defaults (syslog on
//! UDP and TCP 127.0.0.1:5514, the shipped rules, alerts to stdout, metrics on
//! 127.0.0.1:9514); `--config kuzet.toml` configures everything (`kuzet.example.toml`).
//!
//! The control loop here owns the pipeline: it serves the admin listener's questions,
//! reloads on SIGHUP (and `POST /-/reload`), checkpoints correlation state on a timer,
//! prints a stats line and rate-limited limit warnings, and on SIGTERM/SIGINT stops the
//! pipeline stage by stage so that nothing already read is lost.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use crossbeam_channel::RecvTimeoutError;

use super::CliError;
use crate::admin::{Admin, Command};
use crate::config::{Config, ListenerConfig};
use crate::pipeline::{self, Pipeline};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Configuration file (TOML; see kuzet.example.toml). Default: the embedded defaults.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen here instead of the configured listeners (repeatable): udp://, tcp:// or
    /// tls:// followed by host:port.
    #[arg(long)]
    pub listen: Vec<String>,
    /// Admin/metrics listener address; "" turns it off.
    #[arg(long)]
    pub admin: Option<String>,
    /// Rule files or pack directories instead of the configured ones (repeatable).
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// Directory for correlation checkpoints (state survives restarts).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Parse+match worker threads (0: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Correlator shard threads (0: one per four cores).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Alerts to this file (JSON lines) instead of the configured sinks.
    #[arg(long)]
    pub alerts_file: Option<PathBuf>,
}

/// The config a run uses: the file (or defaults) with the command-line overrides applied.
pub fn effective_config(a: &RunArgs) -> Result<Config, Vec<String>> {
    let mut cfg = match &a.config {
        Some(p) => {
            Config::load(p).map_err(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>())?
        }
        None => Config::default(),
    };
    if !a.listen.is_empty() {
        cfg.listeners = a.listen.iter().map(|l| ListenerConfig::new(l)).collect();
    }
    if let Some(admin) = &a.admin {
        cfg.admin.listen = admin.clone();
    }
    if !a.rules.is_empty() {
        cfg.rules.paths = a.rules.clone();
    }
    if let Some(d) = &a.state_dir {
        cfg.state.dir = Some(d.clone());
    }
    if let Some(w) = a.workers {
        cfg.engine.workers = w;
    }
    if let Some(s) = a.shards {
        cfg.engine.shards = s;
    }
    if let Some(f) = &a.alerts_file {
        let mut s = crate::config::SinkConfig::new("file");
        s.path = Some(f.clone());
        cfg.sinks = vec![s];
    }
    let errs = cfg.validate();
    if errs.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.iter().map(|e| e.to_string()).collect())
    }
}

/// Counters whose growth means a limit was hit; reported at most once per interval each.
struct LimitWatch {
    last: Vec<u64>,
    at: Instant,
}

fn limits(p: &Pipeline) -> Vec<(&'static str, u64)> {
    let m = &p.metrics;
    let sum =
        |f: fn(&crate::telemetry::InputMetrics) -> u64| m.inputs.iter().map(|i| f(i)).sum::<u64>();
    let t = m.shard_totals();
    vec![
        (
            "UDP datagrams dropped, queue full (raise engine.queue_batches or add workers)",
            sum(|i| i.udp_dropped_queue_full.get()),
        ),
        (
            "UDP datagrams dropped by the kernel (raise listener udp_recv_buffer and net.core.rmem_max)",
            sum(|i| i.udp_dropped_kernel.get()),
        ),
        (
            "connections refused at max_connections",
            sum(|i| i.connections_rejected.get()),
        ),
        (
            "frames longer than max_frame",
            sum(|i| i.oversize_truncated.get() + i.oversize_dropped.get()),
        ),
        ("correlation keys evicted at max_keys", t.stats.keys_evicted),
        (
            "correlation values dropped at max_values",
            t.stats.values_dropped,
        ),
        (
            "evidence overwritten before its alert (raise engine.evidence_bytes)",
            t.stats.evidence_lost,
        ),
        (
            "sink delivery errors",
            m.sinks.iter().map(|s| s.errors.get()).sum(),
        ),
        (
            "alerts given up by failing sinks",
            m.sinks.iter().map(|s| s.dropped.get()).sum(),
        ),
        (
            "alerts refused for good by webhook endpoints (HTTP 4xx)",
            m.sinks.iter().map(|s| s.rejected.get()).sum(),
        ),
    ]
}

impl LimitWatch {
    fn check(&mut self, p: &Pipeline, every: Duration) {
        if self.at.elapsed() < every {
            return;
        }
        self.at = Instant::now();
        let now = limits(p);
        if self.last.len() != now.len() {
            self.last = vec![0; now.len()];
        }
        for (i, (what, v)) in now.iter().enumerate() {
            if *v > self.last[i] {
                eprintln!("kuzet: limit: {what}: +{} (total {v})", v - self.last[i]);
            }
            self.last[i] = *v;
        }
    }
}

fn stats_line(p: &Pipeline, prev_events: &mut u64, since: &mut Instant) -> String {
    let m = &p.metrics;
    let events = m.events_total();
    let secs = since.elapsed().as_secs_f64().max(1e-9);
    let rate = (events - *prev_events) as f64 / secs;
    *prev_events = events;
    *since = Instant::now();
    let (_, _, p99, _, _) = m.ingest_latency.summary();
    let t = m.shard_totals();
    let parse_errors: u64 = m.parse.iter().map(|p| p.errors_total()).sum();
    format!(
        "kuzet: {events} events ({rate:.0}/s), {parse_errors} parse errors, {} alerts, {} correlation keys, ingest p99 {:.1} ms, generation {}",
        m.alerts_total.get(),
        t.live_keys,
        p99 as f64 / 1000.0,
        p.generation()
    )
}

pub fn run(a: RunArgs) -> Result<ExitCode, CliError> {
    let cfg = effective_config(&a).map_err(|e| CliError::Usage(e.join("\n")))?;
    let mut stderr = std::io::stderr();
    #[cfg(feature = "kafka")]
    if cfg.kafka.is_some() {
        return run_kafka(&cfg);
    }
    let (engine, inputs) =
        pipeline::build_engine(&cfg).map_err(|e| CliError::Usage(e.join("\n")))?;
    for e in &engine.errors {
        let _ = writeln!(stderr, "{e}");
    }
    let _ = writeln!(stderr, "kuzet: {}", engine.summary());
    let mut pipe =
        Pipeline::start(cfg.clone(), engine, inputs).map_err(|e| CliError::Usage(e.to_string()))?;
    for (t, addr) in &pipe.addresses {
        let _ = writeln!(stderr, "kuzet: listening on {}://{addr}", t.scheme());
    }
    let (cmd_tx, cmd_rx) = crossbeam_channel::bounded::<Command>(16);
    let admin = match start_admin(&cfg, cmd_tx.clone(), pipe.incidents_api()) {
        Ok(a) => a,
        Err(e) => {
            pipe.stop().ok();
            return Err(e);
        }
    };
    drop(cmd_tx);
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone()).map_err(|e| CliError::Io {
            path: "signal handler".into(),
            source: e,
        })?;
    }
    signal_hook::flag::register_usize(signal_hook::consts::SIGHUP, hup.clone(), 1).map_err(
        |e| CliError::Io {
            path: "signal handler".into(),
            source: e,
        },
    )?;
    let _ = writeln!(
        stderr,
        "kuzet: running (SIGHUP reloads rules, SIGTERM stops)"
    );
    let mut last_ckpt = Instant::now();
    let mut last_stats = Instant::now();
    let mut stats_since = Instant::now();
    let mut prev_events = 0u64;
    let mut watch = LimitWatch {
        last: Vec::new(),
        at: Instant::now(),
    };
    let reload = |pipe: &mut Pipeline| -> Result<String, Vec<String>> {
        let cfg = effective_config(&a)?;
        pipe.reload(&cfg)
    };
    while !term.load(Ordering::Relaxed) {
        match cmd_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Command::Metrics(reply)) => {
                let _ = reply.send(pipe.render_metrics());
            }
            Ok(Command::Health(reply)) => {
                let _ = reply.send(format!("ok generation={}\n", pipe.generation()));
            }
            Ok(Command::Reload(reply)) => {
                let r = reload(&mut pipe);
                report_reload(&r);
                let _ = reply.send(r);
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {}
        }
        if hup.swap(0, Ordering::Relaxed) > 0 {
            let r = reload(&mut pipe);
            report_reload(&r);
        }
        let c = pipe.config();
        if c.state.dir.is_some() && last_ckpt.elapsed() >= c.state.checkpoint_interval.0 {
            last_ckpt = Instant::now();
            if let Err(e) = pipe.checkpoint() {
                eprintln!("kuzet: checkpoint failed: {e}");
            }
        }
        let every = c.stats.interval.0;
        if !every.is_zero() && last_stats.elapsed() >= every {
            last_stats = Instant::now();
            eprintln!("{}", stats_line(&pipe, &mut prev_events, &mut stats_since));
        }
        watch.check(&pipe, Duration::from_secs(10));
    }
    let _ = writeln!(
        stderr,
        "kuzet: stopping: draining inputs, checkpointing, flushing sinks"
    );
    if let Some(adm) = admin {
        adm.stop();
    }
    let m = pipe.metrics.clone();
    let res = pipe.stop();
    let _ = writeln!(
        stderr,
        "kuzet: {} events, {} alerts, {} parse errors",
        m.events_total(),
        m.alerts_total.get(),
        m.parse.iter().map(|p| p.errors_total()).sum::<u64>()
    );
    res.map_err(|e| CliError::Io {
        path: "listener".into(),
        source: e,
    })?;
    let _ = writeln!(stderr, "kuzet: stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts the admin/metrics listener the config asks for (none when `admin.listen` is empty).
fn start_admin(
    cfg: &Config,
    commands: crossbeam_channel::Sender<Command>,
    incidents: Option<crossbeam_channel::Sender<crate::incident::manager::ApiRequest>>,
) -> Result<Option<Admin>, CliError> {
    if cfg.admin.listen.is_empty() {
        return Ok(None);
    }
    let addr = cfg
        .admin
        .listen
        .parse()
        .map_err(|e| CliError::Usage(format!("admin.listen: {e}")))?;
    let adm = Admin::start(addr, cfg.admin.token.clone(), commands, incidents)
        .map_err(|e| CliError::Usage(format!("admin listener {addr}: {e}")))?;
    eprintln!("kuzet: metrics on http://{}/metrics", adm.local);
    Ok(Some(adm))
}

fn report_reload(r: &Result<String, Vec<String>>) {
    match r {
        Ok(s) => eprintln!("kuzet: {s}"),
        Err(errs) => {
            eprintln!("kuzet: reload rejected, the running rules stay:");
            for e in errs {
                eprintln!("  {e}");
            }
        }
    }
}

/// `kuzet run` with a `[kafka]` section: a scale-out node (docs/scale-out.md) until
/// SIGTERM/SIGINT, printing its counters every `stats.interval`.
#[cfg(feature = "kafka")]
fn run_kafka(cfg: &Config) -> Result<ExitCode, CliError> {
    use crate::kafka::build;
    use crate::kafka::node::Node;
    let (engine, pcfg) = build(cfg).map_err(|e| CliError::Usage(e.join("\n")))?;
    for e in &engine.errors {
        eprintln!("{e}");
    }
    eprintln!("kuzet: {}", engine.summary());
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone()).map_err(|e| CliError::Io {
            path: "signal handler".into(),
            source: e,
        })?;
    }
    let node = Node::start(cfg, engine, pcfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let (cmd_tx, cmd_rx) = crossbeam_channel::bounded::<Command>(16);
    // A scale-out node keeps no incidents (yet): its alerts go to the sinks.
    let admin = start_admin(cfg, cmd_tx.clone(), None)?;
    drop(cmd_tx);
    eprintln!("kuzet: kafka node running (SIGTERM stops)");
    let every = cfg.stats.interval.0;
    let mut last = Instant::now();
    while !term.load(Ordering::Relaxed) && !node.failed() {
        match cmd_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Command::Metrics(reply)) => {
                let _ = reply.send(node.metrics.render(&node.sinks));
            }
            Ok(Command::Health(reply)) => {
                let _ = reply.send("ok kafka\n".into());
            }
            Ok(Command::Reload(reply)) => {
                // Every node must run the same rules (hits name rules by fingerprint):
                // a rolling restart changes them, one node at a time.
                let _ = reply.send(Err(vec![
                    "a kafka node does not reload rules; restart it (docs/scale-out.md)".into(),
                ]));
            }
            Err(_) => {}
        }
        if !every.is_zero() && last.elapsed() >= every {
            last = Instant::now();
            eprintln!("kuzet: {}", node.metrics.line());
        }
    }
    eprintln!("kuzet: stopping: snapshotting state, committing offsets, flushing sinks");
    if let Some(adm) = admin {
        adm.stop();
    }
    let m = node.metrics.clone();
    let res = node.stop();
    eprintln!("kuzet: {}", m.line());
    res.map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!("kuzet: stopped");
    Ok(ExitCode::SUCCESS)
}
