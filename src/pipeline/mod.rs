//! The daemon's pipeline: readers → parse/match workers → correlator shards → alert
//! dispatcher → sinks, each stage on its own threads, every queue bounded.
//!
//! ```text
//!  listeners ──Batch──▶ workers (N) ──HitBatch──▶ shards (M) ──┐
//!   (reader/)   queue    Stage: parse,    per shard   Shard:    │ AlertRecord
//!                        extract, match   queue       windows   ▼
//!                        └── detections ───────────────────▶ dispatcher ──▶ sink queues ──▶ sinks
//! ```
//!
//! * **Backpressure.** Every send is blocking on a bounded queue. A slow sink fills its queue,
//!   the dispatcher blocks, shards and workers block, the reader queue fills and TCP readers
//!   stop reading (the sender's window closes); UDP drops are counted. Memory is bounded by the
//!   queue sizes in config.
//! * **Work unit = batch**, not connection: one busy relay connection still spreads over every
//!   worker. Hits are routed to shards by a stable hash of (correlation family, group values),
//!   so each key lives on exactly one shard and only shards hold mutable correlation state.
//! * **Reload** builds a new engine off the hot path, tells every shard first (the shard
//!   carries its state over to the new rules: unchanged rules keep their windows), then swaps
//!   the engine workers read (`ArcSwap`). Hits already queued under the old rules are mapped
//!   to the new ones by rule fingerprint.
//! * **Shutdown** cascades by closing channels: listeners drain their sockets and stop, the
//!   workers finish the queue, shards apply every hit and checkpoint, the dispatcher and the
//!   sinks deliver and flush what is left.

pub mod metrics;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use hashbrown::HashMap;

use crate::config::{Config, ListenerConfig};
use crate::correlator::shard::{CorrAlert, Shard};
use crate::correlator::{CorrId, CorrOptions, Correlations, HitBatch, Policy, checkpoint};
use crate::engine::{self, Engine, EngineConfig};
use crate::event::Timestamp;
use crate::event::time::Tz;
use crate::matcher::CompileOptions;
use crate::parser::{InputFormat, ParserConfig};
use crate::reader::tcp::TcpSettings;
use crate::reader::tls::{ClientAuth, TlsSettings, server_config};
use crate::reader::udp::UdpSettings;
use crate::reader::{
    Batch, Framing, FramingConfig, ListenSpec, Listener, Oversize, Pool, Transport,
};
use crate::runner::Stage;
use crate::sink::alert::{AlertRecord, EvidenceRenderer};
use crate::sink::{Route, Sink};
use crate::telemetry::{InputMetrics, ParseMetrics};
use metrics::{Metrics, ShardSnapshot, SinkMetrics, latency_histogram, micros_since};

/// A compiled engine and the parser config of each input, swapped whole on reload.
pub struct Loaded {
    pub generation: u64,
    pub engine: Arc<Engine>,
    pub inputs: Vec<ParserConfig>,
}

/// The parser config of a listener (format, zone, declared logsource class).
fn parser_config(l: &ListenerConfig, class: u16) -> ParserConfig {
    ParserConfig {
        format: InputFormat::parse(&l.format).unwrap_or(InputFormat::Auto),
        tz: Tz::parse(&l.tz).unwrap_or(Tz::Utc),
        class,
        ..ParserConfig::default()
    }
}

/// Builds the engine a config asks for. `Err`: nothing usable (a pipeline or config
/// problem); rule problems are in `Engine::errors`.
pub fn build_engine(cfg: &Config) -> Result<(Engine, Vec<ParserConfig>), Vec<String>> {
    let mut compile = CompileOptions {
        placeholders: cfg.rules.placeholders.clone(),
        ..CompileOptions::default()
    };
    let mut inputs = Vec::new();
    let mut errs = Vec::new();
    for (i, l) in cfg.listeners.iter().enumerate() {
        let mut class = 0;
        if let Some(ls) = &l.logsource {
            match crate::cli::replay::parse_logsource(ls) {
                Ok(ls) => {
                    compile.classes.push(vec![ls]);
                    class = compile.classes.len() as u16;
                }
                Err(e) => errs.push(format!("listener[{i}].logsource: {e}")),
            }
        }
        inputs.push(parser_config(l, class));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let e = &cfg.engine;
    let ecfg = EngineConfig {
        rule_paths: cfg.rules.paths.clone(),
        pipeline_paths: cfg.rules.pipelines.clone(),
        no_default_pipelines: cfg.rules.no_default_pipelines,
        parser_paths: cfg.rules.parsers.clone(),
        no_default_parsers: cfg.rules.no_default_parsers,
        compile,
        correlation: CorrOptions {
            max_values: e.max_values,
            max_keys: e.max_keys,
            policy: Policy::parse(&e.policy).unwrap_or(Policy::Suppress),
            evidence_cap: e.evidence_events,
            evidence_bytes: e.evidence_bytes,
        },
    };
    let refs: Vec<&ParserConfig> = inputs.iter().collect();
    let engine = engine::build(&ecfg, &refs)
        .map_err(|pe| pe.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    Ok((engine, inputs))
}

/// What a shard thread is asked to do.
pub enum ShardMsg {
    /// Hits computed under engine `generation`.
    Hits { generation: u64, batch: HitBatch },
    /// New rules: carry state over, then expect hits of `generation`.
    Reload {
        generation: u64,
        engine: Arc<Engine>,
    },
    /// Write a checkpoint now; the result goes back on the channel.
    Checkpoint(Sender<io::Result<()>>),
}

/// An alert on its way to one sink.
pub struct SinkMsg {
    pub line: Arc<[u8]>,
    pub rec: Arc<AlertRecord>,
}

#[derive(Clone)]
struct SinkHandle {
    name: String,
    route: Route,
    tx: Sender<SinkMsg>,
}

/// A running pipeline.
pub struct Pipeline {
    pub metrics: Arc<Metrics>,
    current: Arc<ArcSwap<Loaded>>,
    listeners: Vec<Listener>,
    /// Bound addresses, in config order.
    pub addresses: Vec<(Transport, std::net::SocketAddr)>,
    workers: Vec<JoinHandle<()>>,
    shard_txs: Vec<Sender<ShardMsg>>,
    shards: Vec<JoinHandle<()>>,
    dispatcher: Option<JoinHandle<()>>,
    /// The incidents thread (issue 7), when `incidents.enabled`.
    incidents: Option<JoinHandle<()>>,
    incidents_api: Option<Sender<crate::incident::manager::ApiRequest>>,
    /// The inventory and enrichment fields, swapped on reload.
    enricher: Arc<ArcSwap<crate::incident::enrich::Enricher>>,
    sinks: Vec<JoinHandle<()>>,
    /// Queue probes for metrics: (name, len, capacity).
    probes: Vec<(String, Probe)>,
    /// Set when stopping: failing sinks give up after a grace period instead of retrying.
    stopping: Arc<AtomicBool>,
    cfg: Config,
}

/// Reads a queue's depth.
enum Probe {
    Batches(Receiver<Batch>),
    Shard(Sender<ShardMsg>),
    Alerts(Sender<AlertRecord>),
    Sink(Sender<SinkMsg>),
    Incidents(Sender<crate::incident::manager::IncidentMsg>),
}

impl Probe {
    fn read(&self) -> (usize, usize) {
        match self {
            Probe::Batches(r) => (r.len(), r.capacity().unwrap_or(0)),
            Probe::Shard(s) => (s.len(), s.capacity().unwrap_or(0)),
            Probe::Alerts(s) => (s.len(), s.capacity().unwrap_or(0)),
            Probe::Sink(s) => (s.len(), s.capacity().unwrap_or(0)),
            Probe::Incidents(s) => (s.len(), s.capacity().unwrap_or(0)),
        }
    }
}

/// A sink factory, so tests and the syslog/webhook modules can add their own.
pub type SinkOpen = Box<
    dyn Fn(&crate::config::SinkConfig, &Config, &Arc<SinkMetrics>) -> io::Result<Box<dyn Sink>>,
>;

/// Opens the sink a config entry describes. `m` is its metrics (and carries its name, which
/// names the webhook's default spool directory).
pub fn open_sink(
    sc: &crate::config::SinkConfig,
    cfg: &Config,
    m: &Arc<SinkMetrics>,
) -> io::Result<Box<dyn Sink>> {
    match sc.kind.as_str() {
        "stdout" => Ok(Box::new(crate::sink::Stdout::new())),
        "discard" => Ok(Box::new(crate::sink::Discard)),
        "file" => {
            let path = sc
                .path
                .as_ref()
                .ok_or_else(|| io::Error::other("a file sink needs a path"))?;
            Ok(Box::new(crate::sink::file::FileSink::open(
                path,
                sc.rotate_bytes,
                sc.keep,
            )?))
        }
        "syslog" => {
            let s = crate::sink::syslog::SyslogSettings::from_config(sc)?;
            Ok(Box::new(crate::sink::syslog::SyslogSink::new(s)))
        }
        "webhook" => {
            let s = crate::sink::webhook::WebhookSettings::from_config(sc, cfg, &m.name)?;
            Ok(Box::new(crate::sink::webhook::WebhookSink::start(
                s,
                m.clone(),
            )?))
        }
        #[cfg(feature = "kafka")]
        "kafka" => Ok(Box::new(crate::kafka::sink::KafkaSink::new(
            &crate::kafka::config::sink_brokers(sc, cfg.kafka.as_ref()),
            sc.topic.as_deref().unwrap_or_default(),
            sc.timeout.0,
            &cfg.kafka
                .as_ref()
                .map(|k| k.properties.clone())
                .unwrap_or_default(),
        )?)),
        other => Err(io::Error::other(format!(
            "sink type {other:?} is not available in this build"
        ))),
    }
}

fn checkpoint_path(dir: &Path, shard: usize, shards: usize) -> PathBuf {
    dir.join(format!("shard-{shard}-of-{shards}.ckpt"))
}

/// A startup problem.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Config(String),
}

impl Pipeline {
    /// Starts every thread. `engine` was built from `cfg` by [`build_engine`].
    pub fn start(
        cfg: Config,
        engine: Engine,
        inputs: Vec<ParserConfig>,
    ) -> Result<Pipeline, StartError> {
        let io_err = |what: String| move |source| StartError::Io { what, source };
        let n_workers = cfg.workers();
        let n_shards = cfg.shards();
        let e = &cfg.engine;
        let engine = Arc::new(engine);
        let mut metrics = Metrics::default();
        for l in &cfg.listeners {
            metrics
                .inputs
                .push(Arc::new(InputMetrics::new(l.address.clone())));
            metrics.parse.push(ParseMetrics::default());
        }
        metrics.shards = (0..n_shards).map(|_| Default::default()).collect();
        let sink_metrics: Vec<Arc<SinkMetrics>> = cfg
            .sinks
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s.name.clone().unwrap_or_else(|| format!("{}-{i}", s.kind));
                Arc::new(SinkMetrics::new(&name, &s.kind))
            })
            .collect();
        metrics.sinks = sink_metrics.clone();
        metrics.generation.set(1);
        metrics.rules_loaded.set(engine_rules(&engine) as u64);
        metrics.rules_failed.set(engine.errors.len() as u64);
        metrics.mark_started();
        let metrics = Arc::new(metrics);
        let current = Arc::new(ArcSwap::from_pointee(Loaded {
            generation: 1,
            engine: engine.clone(),
            inputs: inputs.clone(),
        }));
        let mut probes = Vec::new();

        let stopping = Arc::new(AtomicBool::new(false));
        // Sinks, last stage first.
        let mut sinks = Vec::new();
        let mut sink_handles = Vec::new();
        for (i, sc) in cfg.sinks.iter().enumerate() {
            let sink = open_sink(sc, &cfg, &sink_metrics[i])
                .map_err(io_err(format!("sink[{i}] ({})", sink_metrics[i].name)))?;
            let (tx, rx) = bounded::<SinkMsg>(e.alert_queue);
            let m = sink_metrics[i].clone();
            probes.push((format!("sink:{}", m.name), Probe::Sink(tx.clone())));
            sink_handles.push(SinkHandle {
                name: m.name.clone(),
                route: Route::from_config(sc),
                tx,
            });
            sinks.push(
                std::thread::Builder::new()
                    .name(format!("kuzet-sink-{i}"))
                    .spawn({
                        let stopping = stopping.clone();
                        move || run_sink(sink, rx, m, stopping)
                    })
                    .map_err(io_err("spawn".into()))?,
            );
        }
        let enricher = Arc::new(ArcSwap::from_pointee(load_enricher(
            &cfg,
            &engine,
            &metrics.incidents,
        )?));
        let (incidents, incidents_tx, incidents_api) = if cfg.incidents.enabled {
            let (thread, tx, api) =
                start_incidents(&cfg, &enricher, &metrics.incidents, sink_handles.clone())?;
            probes.push(("incidents".into(), Probe::Incidents(tx.clone())));
            (Some(thread), Some(tx), Some(api))
        } else {
            (None, None, None)
        };
        let (alert_tx, alert_rx) = bounded::<AlertRecord>(e.alert_queue);
        probes.push(("alerts".into(), Probe::Alerts(alert_tx.clone())));
        let dm = metrics.clone();
        let out = DispatchOut {
            sinks: sink_handles,
            enricher: enricher.clone(),
            incidents: incidents_tx,
        };
        let dispatcher = std::thread::Builder::new()
            .name("kuzet-dispatch".into())
            .spawn(move || dispatch(alert_rx, out, dm))
            .map_err(io_err("spawn".into()))?;

        // Shards.
        let lateness = e.lateness.as_millis();
        let mut shard_txs = Vec::new();
        let mut shards = Vec::new();
        let (hit_pool_tx, hit_pool_rx) = bounded::<HitBatch>(n_shards * e.shard_queue * 2);
        for s in 0..n_shards {
            let (tx, rx) = bounded::<ShardMsg>(e.shard_queue);
            probes.push((format!("shard-{s}"), Probe::Shard(tx.clone())));
            let mut shard = Shard::new(engine.correlations.clone(), lateness);
            if let Some(dir) = &cfg.state.dir {
                std::fs::create_dir_all(dir).map_err(io_err(dir.display().to_string()))?;
                let path = checkpoint_path(dir, s, n_shards);
                match checkpoint::load(&mut shard, &path) {
                    Ok(Some(dropped)) => eprintln!(
                        "kuzet: shard {s}: restored {} keys from {} ({dropped} changed rules started afresh)",
                        shard.live_keys(),
                        path.display()
                    ),
                    Ok(None) => {}
                    Err(e) => eprintln!("kuzet: shard {s}: {e}; starting with empty state"),
                }
            }
            let ctx = ShardCtx {
                index: s,
                rx,
                pool: hit_pool_tx.clone(),
                alerts: alert_tx.clone(),
                metrics: metrics.clone(),
                state: cfg
                    .state
                    .dir
                    .as_ref()
                    .map(|d| checkpoint_path(d, s, n_shards)),
                lateness,
                evidence_events: e.evidence_events,
            };
            let eng = engine.clone();
            shards.push(
                std::thread::Builder::new()
                    .name(format!("kuzet-shard-{s}"))
                    .spawn(move || run_shard(ctx, shard, eng))
                    .map_err(io_err("spawn".into()))?,
            );
            shard_txs.push(tx);
        }
        if let Some(dir) = &cfg.state.dir {
            warn_foreign_checkpoints(dir, n_shards);
        }

        // Workers.
        let (batch_tx, batch_rx) = bounded::<Batch>(e.queue_batches);
        probes.insert(0, ("ingest".into(), Probe::Batches(batch_rx.clone())));
        let pool = Pool::new(e.queue_batches * 2 + 16);
        let max_future = e.max_future.as_millis();
        let mut workers = Vec::new();
        for w in 0..n_workers {
            let ctx = WorkerCtx {
                rx: batch_rx.clone(),
                pool: pool.clone(),
                current: current.clone(),
                shards: shard_txs.clone(),
                hit_pool: hit_pool_rx.clone(),
                alerts: alert_tx.clone(),
                metrics: metrics.clone(),
                max_future,
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("kuzet-worker-{w}"))
                    .spawn(move || run_worker(ctx))
                    .map_err(io_err("spawn".into()))?,
            );
        }
        drop(alert_tx);

        // Listeners last: nothing is read before there is somewhere to put it.
        let mut listeners = Vec::new();
        let mut addresses = Vec::new();
        for (i, l) in cfg.listeners.iter().enumerate() {
            let spec = ListenSpec::parse(&l.address).map_err(StartError::Config)?;
            let m = metrics.inputs[i].clone();
            let what = format!("listener[{i}] {}", l.address);
            let listener = match spec.transport {
                Transport::Udp => crate::reader::spawn_udp(
                    UdpSettings {
                        addr: spec.addr,
                        recv_buffer: l.udp_recv_buffer,
                        max_frame: l.max_frame,
                        oversize: Oversize::parse(&l.oversize).unwrap_or(Oversize::Truncate),
                        ..UdpSettings::default()
                    },
                    i as u16,
                    m,
                    batch_tx.clone(),
                    pool.clone(),
                ),
                Transport::Tcp | Transport::Tls => {
                    let tls = if spec.transport == Transport::Tls {
                        let (Some(cert), Some(key)) = (l.tls_cert.clone(), l.tls_key.clone())
                        else {
                            return Err(StartError::Config(format!(
                                "{what}: needs tls_cert and tls_key"
                            )));
                        };
                        Some(
                            server_config(&TlsSettings {
                                cert,
                                key,
                                client_ca: l.tls_client_ca.clone(),
                                client_auth: ClientAuth::parse(&l.tls_client_auth)
                                    .unwrap_or(ClientAuth::None),
                            })
                            .map_err(|e| StartError::Config(format!("{what}: {e}")))?,
                        )
                    } else {
                        None
                    };
                    crate::reader::spawn_tcp(
                        TcpSettings {
                            addr: spec.addr,
                            framing: FramingConfig {
                                framing: Framing::parse(&l.framing).unwrap_or(Framing::Auto),
                                max_frame: l.max_frame,
                                oversize: Oversize::parse(&l.oversize)
                                    .unwrap_or(Oversize::Truncate),
                            },
                            max_connections: l.max_connections,
                            conn_buffer: l.conn_buffer,
                            tls,
                        },
                        i as u16,
                        m,
                        batch_tx.clone(),
                        pool.clone(),
                    )
                }
            }
            .map_err(io_err(what))?;
            addresses.push((spec.transport, listener.local));
            listeners.push(listener);
        }
        drop(batch_tx);
        Ok(Pipeline {
            metrics,
            current,
            listeners,
            addresses,
            workers,
            shard_txs,
            shards,
            dispatcher: Some(dispatcher),
            incidents,
            incidents_api,
            enricher,
            sinks,
            probes,
            stopping,
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Where the admin API sends incident requests (`None`: incidents are off).
    pub fn incidents_api(&self) -> Option<Sender<crate::incident::manager::ApiRequest>> {
        self.incidents_api.clone()
    }

    /// The running engine.
    pub fn engine(&self) -> Arc<Engine> {
        self.current.load().engine.clone()
    }

    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// Prometheus text of every metric, queue depths included.
    pub fn render_metrics(&self) -> String {
        let queues: Vec<(String, usize, usize)> = self
            .probes
            .iter()
            .map(|(n, p)| {
                let (d, c) = p.read();
                (n.clone(), d, c)
            })
            .collect();
        self.metrics.render(&queues)
    }

    /// Swaps in a new engine built from `cfg` (rules and correlation options; listeners,
    /// sinks and thread counts need a restart). Rejected, with the reasons, when it does not
    /// build or when rules that load now would fail to load; the running engine then stays.
    pub fn reload(&mut self, cfg: &Config) -> Result<String, Vec<String>> {
        let res = self.try_reload(cfg);
        match &res {
            Ok(_) => self.metrics.reloads_ok.inc(),
            Err(_) => self.metrics.reloads_failed.inc(),
        }
        res
    }

    fn try_reload(&mut self, cfg: &Config) -> Result<String, Vec<String>> {
        let errs = cfg.validate();
        if !errs.is_empty() {
            return Err(errs.iter().map(|e| e.to_string()).collect());
        }
        let (engine, inputs) = build_engine(cfg)?;
        let (enricher, asset_errors) = crate::incident::load_enricher(cfg, Some(&engine))
            .map_err(|errs| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
        let old = self.current.load_full();
        // Rules that broke since the running set loaded: keep the running set.
        let old_failed: hashbrown::HashSet<(Arc<str>, Option<String>)> = old
            .engine
            .errors
            .iter()
            .map(|e| (e.path.clone(), e.rule.clone()))
            .collect();
        let new_failures: Vec<String> = engine
            .errors
            .iter()
            .filter(|e| !old_failed.contains(&(e.path.clone(), e.rule.clone())))
            .map(|e| e.to_string())
            .collect();
        if !new_failures.is_empty() {
            return Err(new_failures);
        }
        let mut notes = Vec::new();
        if cfg.listeners != self.cfg.listeners
            || cfg.sinks != self.cfg.sinks
            || cfg.engine.workers != self.cfg.engine.workers
            || cfg.engine.shards != self.cfg.engine.shards
            || cfg.state != self.cfg.state
            || cfg.admin != self.cfg.admin
        {
            notes.push(
                "listener, sink, thread, state and admin changes take effect at the next restart",
            );
        }
        if cfg.incidents.enabled != self.cfg.incidents.enabled
            || cfg.incidents.queue != self.cfg.incidents.queue
            || cfg.incidents.watch_interval != self.cfg.incidents.watch_interval
        {
            notes.push(
                "incidents.enabled, queue and watch_interval take effect at the next restart",
            );
        }
        report_asset_errors(&asset_errors, &self.metrics.incidents, &enricher);
        self.enricher.store(Arc::new(enricher));
        let generation = old.generation + 1;
        let engine = Arc::new(engine);
        // Shards first, so no hit of the new generation reaches a shard before it knows it.
        for tx in &self.shard_txs {
            let _ = tx.send(ShardMsg::Reload {
                generation,
                engine: engine.clone(),
            });
        }
        self.metrics.rules_loaded.set(engine_rules(&engine) as u64);
        self.metrics.rules_failed.set(engine.errors.len() as u64);
        self.metrics.generation.set(generation);
        let summary = engine.summary();
        self.current.store(Arc::new(Loaded {
            generation,
            engine,
            inputs,
        }));
        self.cfg.rules = cfg.rules.clone();
        self.cfg.engine.policy = cfg.engine.policy.clone();
        self.cfg.incidents.assets = cfg.incidents.assets.clone();
        let mut msg = format!("reloaded: {summary} (generation {generation})");
        for n in notes {
            msg.push_str("; ");
            msg.push_str(n);
        }
        Ok(msg)
    }

    /// Asks every shard to checkpoint and waits (no-op without a state directory).
    pub fn checkpoint(&self) -> io::Result<()> {
        if self.cfg.state.dir.is_none() {
            return Ok(());
        }
        let mut waits = Vec::new();
        for tx in &self.shard_txs {
            let (rtx, rrx) = bounded(1);
            tx.send(ShardMsg::Checkpoint(rtx))
                .map_err(|_| io::Error::other("shard stopped"))?;
            waits.push(rrx);
        }
        for w in waits {
            w.recv().map_err(|_| io::Error::other("shard stopped"))??;
        }
        Ok(())
    }

    /// Stops accepting, drains every stage, checkpoints, flushes the sinks.
    pub fn stop(mut self) -> io::Result<()> {
        self.stopping.store(true, Ordering::Relaxed);
        let mut first_err = None;
        for l in self.listeners.drain(..) {
            if let Err(e) = l.stop() {
                first_err.get_or_insert(e);
            }
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.shard_txs.clear();
        self.probes.clear();
        for s in self.shards.drain(..) {
            let _ = s.join();
        }
        if let Some(d) = self.dispatcher.take() {
            let _ = d.join();
        }
        self.incidents_api = None;
        if let Some(t) = self.incidents.take() {
            let _ = t.join();
        }
        for s in self.sinks.drain(..) {
            let _ = s.join();
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn engine_rules(e: &Engine) -> usize {
    e.rules.len()
        + e.correlations
            .list
            .iter()
            .filter(|c| !c.sources.is_empty())
            .count()
}

fn warn_foreign_checkpoints(dir: &Path, shards: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let suffix = format!("-of-{shards}.ckpt");
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("shard-") && name.ends_with(".ckpt") && !name.ends_with(&suffix) {
            eprintln!(
                "kuzet: {} was written with another shard count; its windows are not restored (keep engine.shards fixed to keep state across restarts)",
                e.path().display()
            );
        }
    }
}

struct WorkerCtx {
    rx: Receiver<Batch>,
    pool: Pool,
    current: Arc<ArcSwap<Loaded>>,
    shards: Vec<Sender<ShardMsg>>,
    hit_pool: Receiver<HitBatch>,
    alerts: Sender<AlertRecord>,
    metrics: Arc<Metrics>,
    max_future: i64,
}

fn run_worker(ctx: WorkerCtx) {
    let mut generation = 0;
    let mut stage: Option<Stage> = None;
    let mut renderers: Vec<EvidenceRenderer> = Vec::new();
    let mut hist = latency_histogram();
    let mut last_merge = Instant::now();
    let mut alerts_out: Vec<AlertRecord> = Vec::new();
    while let Ok(batch) = ctx.rx.recv() {
        let loaded = ctx.current.load();
        if loaded.generation != generation || stage.is_none() {
            generation = loaded.generation;
            stage = Some(Stage::new(
                loaded.engine.clone(),
                &loaded.inputs,
                ctx.shards.len(),
                ctx.max_future,
            ));
            renderers = loaded
                .inputs
                .iter()
                .map(|p| EvidenceRenderer::new(&loaded.engine, p))
                .collect();
        }
        let st = stage.as_mut().expect("built above");
        let input = (batch.input as usize).min(renderers.len().saturating_sub(1));
        let before = st.stats;
        let rules = &loaded.engine.rules;
        for frame in batch.iter() {
            st.event(input, frame, batch.received, |r, t| {
                let meta = rules.rule(r).meta.clone();
                alerts_out.push(renderers[input].detection(&meta, frame, t, batch.received));
            });
        }
        ctx.metrics.add_stage(input, &before, &st.stats);
        ctx.metrics.detections.add(alerts_out.len() as u64);
        let _ = hist.record(micros_since(batch.received.0).max(1));
        // Hand on: hits to their shards, detections to the dispatcher (blocking: backpressure).
        for (s, b) in st.batches.iter_mut().enumerate() {
            if b.hits.is_empty() {
                continue;
            }
            let fresh = ctx.hit_pool.try_recv().unwrap_or_default();
            let full = std::mem::replace(b, fresh);
            if ctx.shards[s]
                .send(ShardMsg::Hits {
                    generation,
                    batch: full,
                })
                .is_err()
            {
                return;
            }
        }
        for a in alerts_out.drain(..) {
            if ctx.alerts.send(a).is_err() {
                return;
            }
        }
        ctx.pool.put(batch);
        if last_merge.elapsed() >= Duration::from_millis(200) {
            ctx.metrics.ingest_latency.merge(&mut hist);
            last_merge = Instant::now();
        }
    }
    ctx.metrics.ingest_latency.merge(&mut hist);
}

struct ShardCtx {
    index: usize,
    rx: Receiver<ShardMsg>,
    pool: Sender<HitBatch>,
    alerts: Sender<AlertRecord>,
    metrics: Arc<Metrics>,
    state: Option<PathBuf>,
    lateness: i64,
    evidence_events: usize,
}

/// Old correlation ids → new ones, by fingerprint (`None`: the rule changed or went away).
fn remap(old: &Correlations, new: &Correlations) -> Vec<Option<CorrId>> {
    let by_fp: HashMap<u64, u32> = new
        .list
        .iter()
        .enumerate()
        .map(|(i, c)| (c.fingerprint, i as u32))
        .collect();
    old.list
        .iter()
        .map(|c| by_fp.get(&c.fingerprint).map(|&i| CorrId(i)))
        .collect()
}

fn run_shard(ctx: ShardCtx, mut shard: Shard, mut engine: Arc<Engine>) {
    let mut generation = 1u64;
    // Hits of the previous generation still queued are mapped with this.
    let mut previous: Option<(u64, Vec<Option<CorrId>>)> = None;
    let mut renderer = EvidenceRenderer::new(&engine, &ParserConfig::default());
    let mut out: Vec<CorrAlert> = Vec::new();
    let mut snap = ShardSnapshot::default();
    let mut last_tick = Instant::now();
    let tick = Duration::from_millis(200);
    let save = |shard: &Shard| -> io::Result<()> {
        match &ctx.state {
            Some(p) => checkpoint::save(shard, p),
            None => Ok(()),
        }
    };
    loop {
        match ctx.rx.recv_timeout(tick) {
            Ok(ShardMsg::Hits {
                generation: g,
                mut batch,
            }) => {
                if g != generation {
                    match &previous {
                        Some((pg, map)) if *pg == g => {
                            batch.hits.retain_mut(|h| {
                                match map.get(h.corr.0 as usize).copied().flatten() {
                                    Some(n) => {
                                        h.corr = n;
                                        true
                                    }
                                    None => {
                                        snap.dropped_stale += 1;
                                        false
                                    }
                                }
                            });
                        }
                        _ => {
                            snap.dropped_stale += batch.hits.len() as u64;
                            batch.hits.clear();
                        }
                    }
                }
                shard.process(&batch, &mut out);
                batch.clear();
                let _ = ctx.pool.try_send(batch);
            }
            Ok(ShardMsg::Reload {
                generation: g,
                engine: new,
            }) => {
                let map = remap(&engine.correlations, &new.correlations);
                let bytes = checkpoint::encode(&shard);
                let mut fresh = Shard::new(new.correlations.clone(), ctx.lateness);
                if let Err(e) = checkpoint::decode(&mut fresh, &bytes, "reload") {
                    eprintln!(
                        "kuzet: shard {}: state not carried over the reload: {e}",
                        ctx.index
                    );
                }
                shard = fresh;
                previous = Some((generation, map));
                generation = g;
                renderer = EvidenceRenderer::new(&new, &ParserConfig::default());
                engine = new;
            }
            Ok(ShardMsg::Checkpoint(reply)) => {
                let r = save(&shard);
                match &r {
                    Ok(()) => ctx.metrics.checkpoints.inc(),
                    Err(_) => ctx.metrics.checkpoint_errors.inc(),
                }
                let _ = reply.send(r);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= tick {
            last_tick = Instant::now();
            // The event-time clock also follows the wall clock, so windows close when
            // traffic stops.
            let wall = Timestamp::now().0 / 1_000_000;
            shard.advance_to(wall - ctx.lateness, &mut out);
            snap.stats = shard.stats();
            snap.live_keys = shard.live_keys() as u64;
            snap.state_bytes = shard.state_bytes() as u64;
            if let Ok(mut m) = ctx.metrics.shards[ctx.index].lock() {
                *m = snap;
            }
        }
        for a in out.drain(..) {
            let rec = renderer.correlation(&engine.correlations, &a, ctx.evidence_events);
            if ctx.alerts.send(rec).is_err() {
                return;
            }
        }
    }
    snap.stats = shard.stats();
    snap.live_keys = shard.live_keys() as u64;
    if let Ok(mut m) = ctx.metrics.shards[ctx.index].lock() {
        *m = snap;
    }
    match save(&shard) {
        Ok(()) => {
            if ctx.state.is_some() {
                ctx.metrics.checkpoints.inc();
            }
        }
        Err(e) => {
            ctx.metrics.checkpoint_errors.inc();
            eprintln!(
                "kuzet: shard {}: checkpoint at shutdown failed: {e}",
                ctx.index
            );
        }
    }
}

/// Where the dispatcher sends alerts.
struct DispatchOut {
    sinks: Vec<SinkHandle>,
    enricher: Arc<ArcSwap<crate::incident::enrich::Enricher>>,
    incidents: Option<Sender<crate::incident::manager::IncidentMsg>>,
}

/// Hands one alert line to every sink whose route takes it (blocking: backpressure).
fn fan_out(sinks: &[SinkHandle], line: &Arc<[u8]>, rec: &Arc<AlertRecord>, class: Option<&str>) {
    for s in sinks {
        if s.route.accepts(rec, class)
            && s.tx
                .send(SinkMsg {
                    line: line.clone(),
                    rec: rec.clone(),
                })
                .is_err()
        {
            eprintln!("kuzet: sink {} stopped; its alerts are lost", s.name);
        }
    }
}

fn dispatch(rx: Receiver<AlertRecord>, out: DispatchOut, m: Arc<Metrics>) {
    let mut line = Vec::with_capacity(4096);
    while let Ok(rec) = rx.recv() {
        if let Some(r) = rec.received {
            m.alert_latency.record(micros_since(r.0));
        }
        m.alert_event_delay.record(micros_since(rec.last_seen.0));
        m.alerts_total.inc();
        if let Ok(mut a) = m.alerts.lock() {
            let level = rec.level().map(|l| l.name()).unwrap_or("none");
            *a.entry((
                rec.meta.label(),
                rec.meta.title.clone(),
                level.to_string(),
                rec.kind,
            ))
            .or_insert(0) += 1;
        }
        let enricher = out.enricher.load();
        let enrichment = enricher.enrich(&rec);
        line.clear();
        rec.write_json(&mut line);
        enrichment.splice_into(&mut line);
        line.push(b'\n');
        let line: Arc<[u8]> = Arc::from(&line[..]);
        let rec = Arc::new(rec);
        fan_out(&out.sinks, &line, &rec, enrichment.object_class());
        if let Some(tx) = &out.incidents
            && crate::incident::manager::Manager::takes(&enricher.cfg, &rec)
        {
            let msg = crate::incident::manager::IncidentMsg {
                rec,
                enrichment: Arc::new(enrichment),
            };
            if tx.send(msg).is_err() {
                eprintln!("kuzet: the incidents thread stopped; alerts no longer open incidents");
            }
        }
    }
}

/// Loads the inventories at startup (a file that cannot be read stops the start).
fn load_enricher(
    cfg: &Config,
    engine: &Engine,
    m: &crate::incident::manager::IncidentMetrics,
) -> Result<crate::incident::enrich::Enricher, StartError> {
    let (enricher, errs) = crate::incident::load_enricher(cfg, Some(engine)).map_err(|errs| {
        StartError::Config(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    report_asset_errors(&errs, m, &enricher);
    Ok(enricher)
}

/// Logs the inventory rows that did not load and sets the inventory gauges.
fn report_asset_errors(
    errs: &[crate::incident::assets::AssetError],
    m: &crate::incident::manager::IncidentMetrics,
    enricher: &crate::incident::enrich::Enricher,
) {
    for e in errs {
        eprintln!("kuzet: assets: {e}");
    }
    m.assets_loaded.set(enricher.inventory.len() as u64);
    m.asset_rows_rejected.set(errs.len() as u64);
    if !enricher.cfg.assets.is_empty() {
        eprintln!(
            "kuzet: assets: {} loaded, {} rows rejected",
            enricher.inventory.len(),
            errs.len()
        );
    }
}

type IncidentsStarted = (
    JoinHandle<()>,
    Sender<crate::incident::manager::IncidentMsg>,
    Sender<crate::incident::manager::ApiRequest>,
);

/// Opens the incident database and starts the incidents thread; escalations go straight to
/// the sinks, routed like alerts.
fn start_incidents(
    cfg: &Config,
    enricher: &Arc<ArcSwap<crate::incident::enrich::Enricher>>,
    m: &Arc<crate::incident::manager::IncidentMetrics>,
    sinks: Vec<SinkHandle>,
) -> Result<IncidentsStarted, StartError> {
    use crate::incident::manager::{self, Manager, SystemClock};
    let store = crate::incident::store::Store::open(cfg.state.dir.as_deref())
        .map_err(|e| StartError::Config(format!("incidents: {e}")))?;
    let mgr = Manager::new(store, enricher.clone(), Arc::new(SystemClock), m.clone());
    let (tx, rx) = bounded(cfg.incidents.queue);
    let (api_tx, api_rx) = bounded(64);
    let interval = cfg.incidents.watch_interval.0;
    let thread = std::thread::Builder::new()
        .name("kuzet-incidents".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(4096);
            manager::run(mgr, rx, api_rx, interval, |rec, class| {
                buf.clear();
                rec.write_json(&mut buf);
                buf.push(b'\n');
                let line: Arc<[u8]> = Arc::from(&buf[..]);
                let class = (!class.is_empty()).then_some(class);
                fan_out(&sinks, &line, &Arc::new(rec), class);
            })
        })
        .map_err(|e| StartError::Io {
            what: "spawn".into(),
            source: e,
        })?;
    Ok((thread, tx, api_tx))
}

/// How long a failing sink is retried at shutdown before its remaining alerts are given up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn run_sink(
    mut sink: Box<dyn Sink>,
    rx: Receiver<SinkMsg>,
    m: Arc<SinkMetrics>,
    stopping: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(50);
    let mut closing_since: Option<Instant> = None;
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => {
                let _ = sink.flush();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        loop {
            match sink.write(&msg.line, &msg.rec) {
                Ok(()) => {
                    // A deferring sink (webhook) counts `sent` when it really delivers.
                    if !sink.deferred() {
                        m.sent.inc();
                    }
                    backoff = Duration::from_millis(50);
                    break;
                }
                Err(e) => {
                    m.errors.inc();
                    if m.errors.get().is_power_of_two() {
                        eprintln!(
                            "kuzet: sink {}: {e} (retrying; {} errors so far)",
                            m.name,
                            m.errors.get()
                        );
                    }
                    if closing_since.is_none() && stopping.load(Ordering::Relaxed) {
                        closing_since = Some(Instant::now());
                    }
                    if closing_since.is_some_and(|t| t.elapsed() > SHUTDOWN_GRACE) {
                        m.dropped.inc();
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if rx.is_empty() {
            let _ = sink.flush();
        }
    }
    if let Err(e) = sink.close() {
        eprintln!("kuzet: sink {}: {e}", m.name);
    }
}
