//! A scale-out node (`kuzet run` with a `[kafka]` section): stage 1 and stage 2 as two
//! threads, each with its own consumer group, and one output thread that owns the sinks.
//!
//! ```text
//!  stage 1 thread: consumer(G, input topics) ─▶ Stage (parse, extract, match)
//!        ├─ hits ─▶ producer ─▶ hits topic, partition = murmur2(key) % P
//!        └─ detections ─▶ outputs
//!  stage 2 thread: consumer(G.hits, hits topic) ─▶ per assigned partition: Shard
//!        ├─ alerts ─▶ outputs
//!        └─ snapshots ─▶ producer ─▶ changelog topic, partition = the hits partition
//!  outputs thread: every [[sink]] (also type = "kafka"), flushed on request
//! ```
//!
//! **Ordering of durability** (the reason for every flush here):
//! * stage 1 commits an input offset after the producer acknowledged every hit of the
//!   records before it and the outputs flushed their detections. A crash before the commit
//!   makes the next owner redo those records: hits come twice and stage 2 drops the second
//!   copy by source position ([`crate::kafka::wire::Marks`]); detections come twice with the
//!   same id.
//! * stage 2, after a batch that raised alerts, flushes the outputs, then writes a snapshot
//!   (shard state, the next hits offset, the marks) and waits for the brokers' acknowledgement,
//!   and only then commits the hits offset. Without alerts it snapshots every
//!   `checkpoint_interval`. The snapshot carries its own resume offset, so the next owner
//!   never applies a hit twice or misses one, whatever the committed offset says.
//! * on revoke (a graceful rebalance) both stages do the same for the partitions they lose
//!   before giving them up; on assign stage 2 reads the partition's newest complete snapshot
//!   before it handles any record of it.
//!
//! Not here: the record formats (`wire.rs`), the correlator itself (`correlator/`).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use hashbrown::HashMap;
use rdkafka::ClientContext;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::BaseProducer;

use super::config::{KafkaConfig, Mode};
use super::murmur2::partition_for_key;
use super::sink::{Failed, durable_producer, flush_all, send_blocking};
use super::wire::{self, Assembler, Marks, Snapshot, SourcePos};
use crate::config::Config;
use crate::correlator::shard::{CorrAlert, Shard};
use crate::correlator::{CorrId, HitBatch, checkpoint};
use crate::engine::Engine;
use crate::event::Timestamp;
use crate::parser::ParserConfig;
use crate::pipeline::metrics::SinkMetrics;
use crate::runner::Stage;
use crate::sink::alert::{AlertRecord, EvidenceRenderer};
use crate::sink::{Route, Sink};
use crate::telemetry::Counter;

/// A node that cannot start or must stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("kafka: {what}: {source}")]
    Kafka {
        what: String,
        #[source]
        source: KafkaError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

fn kerr(what: impl Into<String>) -> impl FnOnce(KafkaError) -> NodeError {
    let what = what.into();
    move |source| NodeError::Kafka { what, source }
}

/// Everything a node counts (printed in its stats line and at exit).
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Input records read by stage 1 (or by stage 2 in keyed mode).
    pub records: Counter,
    /// Hits produced by stage 1.
    pub hits_out: Counter,
    /// Hits applied by stage 2.
    pub hits_in: Counter,
    /// Hits dropped as redelivered copies (source position at or before the mark).
    pub hits_duplicate: Counter,
    /// Records stage 2 skipped because the restored snapshot already holds them.
    pub records_before_snapshot: Counter,
    /// Hit records that did not decode.
    pub hits_bad: Counter,
    /// Hits of a correlation this node does not have (rules differ between nodes).
    pub hits_unknown_rule: Counter,
    pub detections: Counter,
    pub alerts: Counter,
    pub snapshots: Counter,
    pub snapshot_bytes: Counter,
    pub snapshot_errors: Counter,
    pub restores: Counter,
    pub commits: Counter,
    pub commit_errors: Counter,
    pub consume_errors: Counter,
    pub rebalances: Counter,
}

impl NodeMetrics {
    /// Prometheus text of the node's counters and its sinks' (the admin listener's
    /// `/metrics` in Kafka mode).
    pub fn render(&self, sinks: &[Arc<SinkMetrics>]) -> String {
        type Get = fn(&NodeMetrics) -> u64;
        let families: &[(&str, &str, Get)] = &[
            ("kuzet_kafka_records_total", "Input records read.", |m| {
                m.records.get()
            }),
            (
                "kuzet_kafka_hits_produced_total",
                "Hits produced by stage 1.",
                |m| m.hits_out.get(),
            ),
            (
                "kuzet_kafka_hits_applied_total",
                "Hits applied by stage 2.",
                |m| m.hits_in.get(),
            ),
            (
                "kuzet_kafka_hits_duplicate_total",
                "Redelivered hits dropped by source position.",
                |m| m.hits_duplicate.get(),
            ),
            (
                "kuzet_kafka_records_before_snapshot_total",
                "Records skipped because the restored snapshot holds them.",
                |m| m.records_before_snapshot.get(),
            ),
            (
                "kuzet_kafka_hits_bad_total",
                "Hit records that did not decode.",
                |m| m.hits_bad.get(),
            ),
            (
                "kuzet_kafka_hits_unknown_rule_total",
                "Hits of a correlation this node does not have.",
                |m| m.hits_unknown_rule.get(),
            ),
            (
                "kuzet_kafka_detections_total",
                "Detection alerts raised.",
                |m| m.detections.get(),
            ),
            (
                "kuzet_kafka_alerts_total",
                "Correlation alerts raised.",
                |m| m.alerts.get(),
            ),
            (
                "kuzet_kafka_snapshots_total",
                "Snapshots made durable.",
                |m| m.snapshots.get(),
            ),
            (
                "kuzet_kafka_snapshot_bytes_total",
                "Snapshot bytes produced.",
                |m| m.snapshot_bytes.get(),
            ),
            (
                "kuzet_kafka_snapshot_errors_total",
                "Snapshots not acknowledged (offsets not committed).",
                |m| m.snapshot_errors.get(),
            ),
            (
                "kuzet_kafka_restores_total",
                "Partitions whose state was restored.",
                |m| m.restores.get(),
            ),
            ("kuzet_kafka_commits_total", "Offset commits.", |m| {
                m.commits.get()
            }),
            (
                "kuzet_kafka_commit_errors_total",
                "Failed offset commits.",
                |m| m.commit_errors.get(),
            ),
            (
                "kuzet_kafka_consume_errors_total",
                "Consumer errors.",
                |m| m.consume_errors.get(),
            ),
            (
                "kuzet_kafka_rebalances_total",
                "Rebalance callbacks.",
                |m| m.rebalances.get(),
            ),
        ];
        let mut e = crate::telemetry::Exposition::default();
        for (name, help, get) in families {
            e.sample(name, "counter", help, &[], get(self) as f64);
        }
        type SinkGet = fn(&SinkMetrics) -> u64;
        let sink_families: &[(&str, &str, SinkGet)] = &[
            ("kuzet_sink_sent_total", "Alerts delivered.", |m| {
                m.sent.get()
            }),
            (
                "kuzet_sink_errors_total",
                "Failed attempts (retried).",
                |m| m.errors.get(),
            ),
            (
                "kuzet_sink_dropped_total",
                "Alerts given up at shutdown.",
                |m| m.dropped.get(),
            ),
        ];
        for (name, help, get) in sink_families {
            for m in sinks {
                let labels = [("sink", m.name.as_str()), ("type", m.kind.as_str())];
                e.sample(name, "counter", help, &labels, get(m) as f64);
            }
        }
        e.out
    }

    pub fn line(&self) -> String {
        format!(
            "{} records, {} hits out, {} hits in ({} duplicates dropped, {} bad, {} unknown rule), {} detections, {} alerts, {} snapshots ({} bytes, {} errors), {} restores, {} commits ({} errors), {} rebalances",
            self.records.get(),
            self.hits_out.get(),
            self.hits_in.get(),
            self.hits_duplicate.get(),
            self.hits_bad.get(),
            self.hits_unknown_rule.get(),
            self.detections.get(),
            self.alerts.get(),
            self.snapshots.get(),
            self.snapshot_bytes.get(),
            self.snapshot_errors.get(),
            self.restores.get(),
            self.commits.get(),
            self.commit_errors.get(),
            self.rebalances.get(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Outputs: one thread owns every sink.

enum Out {
    Alert(AlertRecord),
    /// Flush every sink; the first error goes back.
    Flush(Sender<io::Result<()>>),
}

#[derive(Clone)]
struct Outputs {
    tx: Sender<Out>,
}

impl Outputs {
    fn alert(&self, a: AlertRecord) -> io::Result<()> {
        self.tx
            .send(Out::Alert(a))
            .map_err(|_| io::Error::other("outputs stopped"))
    }

    /// Returns when every alert sent before is delivered (or durably spooled) by every sink.
    fn flush(&self) -> io::Result<()> {
        let (tx, rx) = bounded(1);
        self.tx
            .send(Out::Flush(tx))
            .map_err(|_| io::Error::other("outputs stopped"))?;
        rx.recv().map_err(|_| io::Error::other("outputs stopped"))?
    }
}

struct SinkSlot {
    sink: Box<dyn Sink>,
    route: Route,
    m: Arc<SinkMetrics>,
}

/// The outputs' handle, thread and per-sink metrics.
type StartedOutputs = (Outputs, JoinHandle<()>, Vec<Arc<SinkMetrics>>);

fn start_outputs(
    cfg: &Config,
    queue: usize,
    stop: Arc<AtomicBool>,
) -> Result<StartedOutputs, NodeError> {
    let mut slots = Vec::new();
    let mut metrics = Vec::new();
    for (i, sc) in cfg.sinks.iter().enumerate() {
        let name = sc
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-{i}", sc.kind));
        let m = Arc::new(SinkMetrics::new(&name, &sc.kind));
        let sink = crate::pipeline::open_sink(sc, cfg, &m).map_err(|source| NodeError::Io {
            what: format!("sink[{i}] ({name})"),
            source,
        })?;
        metrics.push(m.clone());
        slots.push(SinkSlot {
            sink,
            route: Route::from_config(sc),
            m,
        });
    }
    let (tx, rx) = bounded::<Out>(queue);
    let h = std::thread::Builder::new()
        .name("kuzet-outputs".into())
        .spawn(move || run_outputs(slots, rx, stop))
        .map_err(|source| NodeError::Io {
            what: "spawn".into(),
            source,
        })?;
    Ok((Outputs { tx }, h, metrics))
}

/// How long a failing sink is retried once the node is stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn run_outputs(mut slots: Vec<SinkSlot>, rx: Receiver<Out>, stop: Arc<AtomicBool>) {
    let mut line = Vec::with_capacity(4096);
    loop {
        let msg = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                for s in &mut slots {
                    let _ = s.sink.flush();
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Out::Alert(rec) => {
                line.clear();
                rec.write_json(&mut line);
                line.push(b'\n');
                for s in &mut slots {
                    // No asset inventory on a scale-out node (yet): no object class to route by.
                    if !s.route.accepts(&rec, None) {
                        continue;
                    }
                    let mut backoff = Duration::from_millis(50);
                    let mut closing: Option<Instant> = None;
                    loop {
                        match s.sink.write(&line, &rec) {
                            Ok(()) => {
                                if !s.sink.deferred() {
                                    s.m.sent.inc();
                                }
                                break;
                            }
                            Err(e) => {
                                s.m.errors.inc();
                                if s.m.errors.get().is_power_of_two() {
                                    eprintln!("kuzet: sink {}: {e} (retrying)", s.m.name);
                                }
                                if closing.is_none() && stop.load(Ordering::Relaxed) {
                                    closing = Some(Instant::now());
                                }
                                if closing.is_some_and(|t| t.elapsed() > SHUTDOWN_GRACE) {
                                    s.m.dropped.inc();
                                    break;
                                }
                                std::thread::sleep(backoff);
                                backoff = (backoff * 2).min(Duration::from_secs(5));
                            }
                        }
                    }
                }
            }
            Out::Flush(reply) => {
                let mut r = Ok(());
                for s in &mut slots {
                    if let Err(e) = s.sink.flush() {
                        s.m.errors.inc();
                        if r.is_ok() {
                            r = Err(io::Error::other(format!("sink {}: {e}", s.m.name)));
                        }
                    }
                }
                let _ = reply.send(r);
            }
        }
    }
    for s in &mut slots {
        if let Err(e) = s.sink.close() {
            eprintln!("kuzet: sink {}: {e}", s.m.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Client configuration.

fn consumer_config(k: &KafkaConfig, group: &str, instance: Option<String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            k.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (k.session_timeout.as_millis() / 3).max(100).to_string(),
        )
        .set("fetch.message.max.bytes", k.max_message_bytes.to_string())
        .set(
            "queued.max.messages.kbytes",
            (k.prefetch_bytes / 1024).to_string(),
        );
    if let Some(id) = instance {
        c.set("group.instance.id", id);
    }
    for (key, v) in &k.properties {
        c.set(key, v);
    }
    c
}

fn partitions_of<C: ConsumerContext>(c: &BaseConsumer<C>, topic: &str) -> Result<usize, NodeError> {
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kerr(format!("metadata of topic {topic}")))?;
    let n = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    if n == 0 {
        return Err(NodeError::Setup(format!(
            "topic {topic:?} does not exist (create it first: docs/scale-out.md)"
        )));
    }
    Ok(n)
}

/// One round of polling: up to `max` records (waiting up to 100 ms for the first), each
/// handed to `f`. Consumer errors are counted (and logged at powers of two) and end the round.
fn poll_round<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    max: usize,
    metrics: &NodeMetrics,
    stage: &str,
    mut f: impl FnMut(&BorrowedMessage<'_>) -> Result<(), NodeError>,
) -> Result<(), NodeError> {
    for n in 0..max {
        let timeout = if n == 0 {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        match consumer.poll(timeout) {
            None => break,
            Some(Err(e)) => {
                metrics.consume_errors.inc();
                if metrics.consume_errors.get().is_power_of_two() {
                    eprintln!("kuzet: {stage}: {e}");
                }
                break;
            }
            Some(Ok(m)) => f(&m)?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Stage 1: input → hits.

/// Positions to commit: (topic, partition) → next offset.
type Positions = Arc<Mutex<HashMap<(String, i32), i64>>>;

/// A borrowed `(topic, partition)` key of [`Positions`]: hashes like the owned one.
#[derive(Hash)]
struct PosRef<'a>(&'a str, i32);

impl hashbrown::Equivalent<(String, i32)> for PosRef<'_> {
    fn equivalent(&self, k: &(String, i32)) -> bool {
        self.1 == k.1 && self.0 == k.0
    }
}

struct S1Ctx {
    producer: Arc<BaseProducer<Failed>>,
    outputs: Outputs,
    positions: Positions,
    metrics: Arc<NodeMetrics>,
}

impl ClientContext for S1Ctx {}

impl ConsumerContext for S1Ctx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            let got: Vec<String> = tpl
                .elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect();
            eprintln!("kuzet: stage 1: assigned partitions {got:?}");
        }
    }

    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        self.metrics.rebalances.inc();
        if let Rebalance::Revoke(tpl) = r {
            // Hand the partitions over with everything done so far committed.
            if let Err(e) = s1_commit(self, c, Some(tpl)) {
                eprintln!("kuzet: stage 1: commit at revoke failed: {e}");
            }
        }
    }
}

/// Flushes hits and detections, then commits input positions (only those in `only`).
fn s1_commit(
    ctx: &S1Ctx,
    c: &BaseConsumer<S1Ctx>,
    only: Option<&TopicPartitionList>,
) -> Result<(), NodeError> {
    flush_all(&ctx.producer, Duration::from_secs(60)).map_err(|source| NodeError::Io {
        what: "stage 1: producing hits".into(),
        source,
    })?;
    ctx.outputs.flush().map_err(|source| NodeError::Io {
        what: "stage 1: delivering detections".into(),
        source,
    })?;
    let mut pos = ctx.positions.lock().expect("positions lock");
    let mut tpl = TopicPartitionList::new();
    for ((t, p), off) in pos.iter() {
        if only.is_none_or(|o| o.find_partition(t, *p).is_some()) {
            tpl.add_partition_offset(t, *p, Offset::Offset(*off))
                .map_err(kerr("offset list"))?;
        }
    }
    if tpl.count() == 0 {
        return Ok(());
    }
    match c.commit(&tpl, CommitMode::Sync) {
        Ok(()) => ctx.metrics.commits.inc(),
        Err(e) => {
            ctx.metrics.commit_errors.inc();
            return Err(kerr("stage 1: commit")(e));
        }
    }
    if let Some(o) = only {
        pos.retain(|(t, p), _| o.find_partition(t, *p).is_none());
    }
    Ok(())
}

struct Shared {
    k: KafkaConfig,
    engine: Arc<Engine>,
    pcfg: ParserConfig,
    outputs: Outputs,
    metrics: Arc<NodeMetrics>,
    stop: Arc<AtomicBool>,
    lateness: i64,
    max_future: i64,
    evidence_events: usize,
}

fn run_stage1(sh: Arc<Shared>) -> Result<(), NodeError> {
    let k = &sh.k;
    let producer = Arc::new(
        durable_producer(&k.brokers, &k.properties, k.max_message_bytes)
            .map_err(kerr("stage 1 producer"))?,
    );
    let positions: Positions = Default::default();
    let ctx = S1Ctx {
        producer: producer.clone(),
        outputs: sh.outputs.clone(),
        positions: positions.clone(),
        metrics: sh.metrics.clone(),
    };
    let consumer: BaseConsumer<S1Ctx> = consumer_config(k, &k.group, k.instance_id.clone())
        .create_with_context(ctx)
        .map_err(kerr("stage 1 consumer"))?;
    let hits_parts = partitions_of(&consumer, &k.hits_topic)? as u32;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(kerr("subscribe"))?;
    let mut stage = Stage::new(
        sh.engine.clone(),
        std::slice::from_ref(&sh.pcfg),
        1,
        sh.max_future,
    );
    let mut renderer = EvidenceRenderer::new(&sh.engine, &sh.pcfg);
    let mut dets: Vec<AlertRecord> = Vec::new();
    let mut val = Vec::with_capacity(4096);
    let mut last_commit = Instant::now();
    let rules = &sh.engine.rules;
    let corrs = &sh.engine.correlations;
    while !sh.stop.load(Ordering::Relaxed) {
        poll_round(&consumer, k.max_batch, &sh.metrics, "stage 1", |m| {
            sh.metrics.records.inc();
            let payload = m.payload().unwrap_or_default();
            let received = Timestamp::now();
            stage.event(0, payload, received, |r, t| {
                let meta = rules.rule(r).meta.clone();
                dets.push(renderer.detection(&meta, payload, t, received));
            });
            let b = &mut stage.batches[0];
            for (seq, h) in b.hits.iter().enumerate() {
                let src = SourcePos {
                    topic: m.topic(),
                    partition: m.partition(),
                    offset: m.offset(),
                    seq: seq as u32,
                };
                let wh = wire::from_hit(corrs, b, h, src);
                val.clear();
                wire::encode_hit(&wh, &mut val);
                let key = wire::hit_key(h.route);
                let part = partition_for_key(&key, hits_parts) as i32;
                send_blocking(&producer, &k.hits_topic, Some(part), &key, &val)
                    .map_err(kerr("producing a hit"))?;
                sh.metrics.hits_out.inc();
            }
            b.clear();
            for d in dets.drain(..) {
                sh.metrics.detections.inc();
                sh.outputs.alert(d).map_err(|source| NodeError::Io {
                    what: "outputs".into(),
                    source,
                })?;
            }
            // Only the first record of a partition in a round allocates its key.
            let mut pos = positions.lock().expect("positions lock");
            match pos.get_mut(&PosRef(m.topic(), m.partition())) {
                Some(o) => *o = m.offset() + 1,
                None => {
                    pos.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
                }
            }
            Ok(())
        })?;
        producer.poll(Duration::ZERO);
        if last_commit.elapsed() >= k.commit_interval.0 {
            last_commit = Instant::now();
            if let Err(e) = s1_commit(consumer.context(), &consumer, None) {
                eprintln!("kuzet: stage 1: {e}");
            }
        }
    }
    s1_commit(consumer.context(), &consumer, None)
}

// ---------------------------------------------------------------------------------------
// Stage 2: hits (or keyed input) → per-partition shards.

/// One owned partition's state.
struct Part {
    shard: Shard,
    marks: Marks,
    /// First offset not reflected in `shard`; -1 before the first record when no snapshot
    /// existed.
    next_offset: i64,
    /// Epoch of the newest snapshot seen or written.
    epoch: u64,
    /// Hits waiting for `Shard::process`.
    batch: HitBatch,
    /// Records applied since the last snapshot.
    dirty: bool,
    /// Alerts raised since the last snapshot (force one now).
    alerted: bool,
}

struct S2 {
    sh: Arc<Shared>,
    /// The topic whose partitions carry state: the hits topic, or the input in keyed mode.
    state_topic: String,
    keyed: Option<(Stage, Vec<AlertRecord>)>,
    by_fp: HashMap<u64, CorrId>,
    parts: HashMap<i32, Part>,
    producer: BaseProducer<Failed>,
    restorer: BaseConsumer,
    renderer: EvidenceRenderer,
    out: Vec<CorrAlert>,
}

struct S2Ctx {
    s2: Arc<Mutex<S2>>,
    metrics: Arc<NodeMetrics>,
}

impl ClientContext for S2Ctx {}

impl ConsumerContext for S2Ctx {
    fn pre_rebalance(&self, c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        self.metrics.rebalances.inc();
        if let Rebalance::Revoke(tpl) = r {
            let mut s = self.s2.lock().expect("stage 2 lock");
            let gone: Vec<i32> = tpl
                .elements_for_topic(&s.state_topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            if c.assignment_lost() {
                // Another node may own these already (our session expired): a snapshot of
                // ours written now could land after its newer ones. Drop the state; the owner
                // has (or restores) its own.
                eprintln!("kuzet: stage 2: partitions {gone:?} lost (session expired)");
            } else {
                s.process();
                if let Err(e) = s.checkpoint(c, &gone) {
                    eprintln!("kuzet: stage 2: snapshot at revoke failed: {e}");
                }
            }
            for p in gone {
                s.parts.remove(&p);
            }
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = r {
            let mut s = self.s2.lock().expect("stage 2 lock");
            let new: Vec<i32> = tpl
                .elements_for_topic(&s.state_topic)
                .iter()
                .map(|e| e.partition())
                .collect();
            eprintln!(
                "kuzet: {}: assigned partitions {new:?}",
                if s.keyed.is_some() {
                    "keyed stage"
                } else {
                    "stage 2"
                }
            );
            for p in new {
                // Restore before any record of the partition is handled.
                s.ensure(p);
            }
        }
    }
}

impl S2 {
    /// Makes sure partition `p`'s state is loaded, retrying while the changelog cannot be
    /// read (processing on empty state would lose the half-counted attacks).
    fn ensure(&mut self, p: i32) {
        if self.parts.contains_key(&p) {
            return;
        }
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.restore(p) {
                Ok(part) => {
                    self.sh.metrics.restores.inc();
                    self.parts.insert(p, part);
                    return;
                }
                Err(e) => {
                    eprintln!("kuzet: stage 2: restoring partition {p}: {e} (retrying)");
                    if self.sh.stop.load(Ordering::Relaxed) {
                        // Stopping: keep an empty placeholder that is never snapshotted.
                        let mut part = self.fresh(u64::MAX);
                        part.next_offset = i64::MAX;
                        self.parts.insert(p, part);
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn fresh(&self, epoch: u64) -> Part {
        Part {
            shard: Shard::new(self.sh.engine.correlations.clone(), self.sh.lateness),
            marks: Marks::default(),
            next_offset: -1,
            epoch,
            batch: HitBatch::default(),
            dirty: false,
            alerted: false,
        }
    }

    /// Reads changelog partition `p` to its end and rebuilds the newest complete snapshot.
    fn restore(&mut self, p: i32) -> Result<Part, NodeError> {
        let topic = self.sh.k.changelog_topic.clone();
        let (lo, hi) = self
            .restorer
            .fetch_watermarks(&topic, p, Duration::from_secs(10))
            .map_err(kerr(format!("watermarks of {topic}/{p}")))?;
        let mut asm = Assembler::default();
        if hi > lo {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, p, Offset::Offset(lo))
                .map_err(kerr("offset list"))?;
            self.restorer
                .assign(&tpl)
                .map_err(kerr("assign changelog"))?;
            let until = Instant::now() + Duration::from_secs(60);
            let mut last = lo - 1;
            while last < hi - 1 {
                if Instant::now() > until {
                    let _ = self.restorer.unassign();
                    return Err(NodeError::Setup(format!(
                        "{topic}/{p}: read up to offset {last} of {hi} within 60 s"
                    )));
                }
                match self.restorer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) => {
                        last = m.offset();
                        asm.push(m.payload().unwrap_or_default());
                    }
                    Some(Err(e)) => {
                        let _ = self.restorer.unassign();
                        return Err(kerr(format!("reading {topic}/{p}"))(e));
                    }
                    None => {}
                }
            }
            let _ = self.restorer.unassign();
        }
        let epoch = asm.max_epoch;
        let snap = asm.finish(p).map_err(|e| NodeError::Setup(e.to_string()))?;
        let mut part = self.fresh(epoch);
        if let Some(s) = snap {
            let at = format!("{topic}/{p}");
            checkpoint::decode(&mut part.shard, &s.shard, &at)
                .map_err(|e| NodeError::Setup(e.to_string()))?;
            part.next_offset = s.next_offset;
            part.marks = s.marks;
            eprintln!(
                "kuzet: stage 2: partition {p}: restored {} keys, resuming at offset {}",
                part.shard.live_keys(),
                s.next_offset
            );
        }
        Ok(part)
    }

    /// Takes one record of the state topic.
    fn record(&mut self, m: &BorrowedMessage<'_>) {
        let p = m.partition();
        self.ensure(p);
        let S2 {
            sh,
            keyed,
            by_fp,
            parts,
            renderer,
            ..
        } = self;
        let part = parts.get_mut(&p).expect("ensured");
        if m.offset() < part.next_offset {
            sh.metrics.records_before_snapshot.inc();
            return;
        }
        part.next_offset = m.offset() + 1;
        part.dirty = true;
        let payload = m.payload().unwrap_or_default();
        match keyed {
            Some((stage, dets)) => {
                // Keyed input: this partition's own Stage output is its hits.
                sh.metrics.records.inc();
                std::mem::swap(&mut stage.batches[0], &mut part.batch);
                let rules = &sh.engine.rules;
                let received = Timestamp::now();
                stage.event(0, payload, received, |r, t| {
                    let meta = rules.rule(r).meta.clone();
                    dets.push(renderer.detection(&meta, payload, t, received));
                });
                std::mem::swap(&mut stage.batches[0], &mut part.batch);
                if !dets.is_empty() {
                    part.alerted = true;
                }
                for d in dets.drain(..) {
                    sh.metrics.detections.inc();
                    let _ = sh.outputs.alert(d);
                }
            }
            None => {
                let h = match wire::decode_hit(payload, m.topic(), p, m.offset()) {
                    Ok(h) => h,
                    Err(e) => {
                        sh.metrics.hits_bad.inc();
                        if sh.metrics.hits_bad.get().is_power_of_two() {
                            eprintln!("kuzet: stage 2: {e}");
                        }
                        return;
                    }
                };
                if !part.marks.advance(&h.src) {
                    sh.metrics.hits_duplicate.inc();
                    return;
                }
                let Some(&corr) = by_fp.get(&h.fingerprint) else {
                    sh.metrics.hits_unknown_rule.inc();
                    return;
                };
                wire::push_hit(&mut part.batch, &h, corr);
            }
        }
    }

    /// Applies the queued hits of every partition; alerts go to the outputs.
    fn process(&mut self) {
        self.each_part(|part, out, m| {
            if !part.batch.hits.is_empty() {
                m.hits_in.add(part.batch.hits.len() as u64);
                part.shard.process(&part.batch, out);
                part.batch.clear();
            }
        });
    }

    /// Moves every partition's clock with the wall clock (windows close when traffic stops).
    fn tick(&mut self) {
        let until = Timestamp::now().0 / 1_000_000 - self.sh.lateness;
        self.each_part(|part, out, _| part.shard.advance_to(until, out));
    }

    /// Runs `step` on every partition and sends the alerts it raised to the outputs (the
    /// partition then needs a snapshot before its offset may be committed).
    fn each_part(&mut self, mut step: impl FnMut(&mut Part, &mut Vec<CorrAlert>, &NodeMetrics)) {
        let corrs = self.sh.engine.correlations.clone();
        for part in self.parts.values_mut() {
            step(part, &mut self.out, &self.sh.metrics);
            if !self.out.is_empty() {
                part.alerted = true;
                part.dirty = true;
            }
            for a in self.out.drain(..) {
                let rec = self
                    .renderer
                    .correlation(&corrs, &a, self.sh.evidence_events);
                self.sh.metrics.alerts.inc();
                // Fails only once the outputs stopped (shutdown): the snapshot that would
                // record this alert as raised is then not written either.
                let _ = self.sh.outputs.alert(rec);
            }
        }
    }

    fn wants_snapshot(&self, periodic: bool) -> Vec<i32> {
        self.parts
            .iter()
            .filter(|(_, pt)| pt.epoch != u64::MAX && (pt.alerted || (periodic && pt.dirty)))
            .map(|(p, _)| *p)
            .collect()
    }

    /// Snapshots partitions `ps` durably, then commits their offsets.
    fn checkpoint<C: ConsumerContext>(
        &mut self,
        c: &BaseConsumer<C>,
        ps: &[i32],
    ) -> Result<(), NodeError> {
        let ps: Vec<i32> = ps
            .iter()
            .copied()
            .filter(|p| {
                self.parts
                    .get(p)
                    .is_some_and(|pt| pt.epoch != u64::MAX && pt.next_offset >= 0)
            })
            .collect();
        if ps.is_empty() {
            return Ok(());
        }
        // The alerts a snapshot records as raised must be out before it.
        self.sh.outputs.flush().map_err(|source| NodeError::Io {
            what: "stage 2: delivering alerts".into(),
            source,
        })?;
        let k = &self.sh.k;
        let chunk = k.max_message_bytes.saturating_sub(1024).max(1024);
        let mut epochs = Vec::new();
        for &p in &ps {
            let pt = &self.parts[&p];
            let snap = Snapshot {
                epoch: pt.epoch + 1,
                next_offset: pt.next_offset,
                marks: pt.marks.clone(),
                shard: checkpoint::encode(&pt.shard),
            };
            for (key, v) in snap.chunks(p, chunk) {
                self.sh.metrics.snapshot_bytes.add(v.len() as u64);
                send_blocking(&self.producer, &k.changelog_topic, Some(p), &key, &v)
                    .map_err(kerr("producing a snapshot"))?;
            }
            epochs.push((p, snap.epoch, snap.next_offset));
        }
        if let Err(source) = flush_all(&self.producer, Duration::from_secs(60)) {
            self.sh.metrics.snapshot_errors.inc();
            return Err(NodeError::Io {
                what: "stage 2: snapshot not acknowledged; offsets not committed".into(),
                source,
            });
        }
        let mut tpl = TopicPartitionList::new();
        for (p, epoch, next) in epochs {
            self.sh.metrics.snapshots.inc();
            if let Some(pt) = self.parts.get_mut(&p) {
                pt.epoch = epoch;
                pt.dirty = false;
                pt.alerted = false;
            }
            tpl.add_partition_offset(&self.state_topic, p, Offset::Offset(next))
                .map_err(kerr("offset list"))?;
        }
        // Only now, with the state durable: the commit may say "done up to here".
        match c.commit(&tpl, CommitMode::Sync) {
            Ok(()) => self.sh.metrics.commits.inc(),
            Err(e) => {
                // Harmless: the snapshot carries its own offset; the next owner skips ahead.
                self.sh.metrics.commit_errors.inc();
                eprintln!("kuzet: stage 2: commit: {e}");
            }
        }
        Ok(())
    }
}

fn run_stage2(sh: Arc<Shared>, keyed: bool) -> Result<(), NodeError> {
    let k = &sh.k;
    let state_topic = if keyed {
        k.topics[0].clone()
    } else {
        k.hits_topic.clone()
    };
    let producer = durable_producer(&k.brokers, &k.properties, k.max_message_bytes)
        .map_err(kerr("stage 2 producer"))?;
    let restorer: BaseConsumer = consumer_config(k, &format!("{}.restore", k.group), None)
        .create()
        .map_err(kerr("changelog reader"))?;
    let state_parts = partitions_of(&restorer, &state_topic)?;
    let log_parts = partitions_of(&restorer, &k.changelog_topic)?;
    if log_parts < state_parts {
        return Err(NodeError::Setup(format!(
            "topic {:?} has {log_parts} partitions, fewer than the {state_parts} of {state_topic:?}: each state partition needs its own changelog partition",
            k.changelog_topic
        )));
    }
    let by_fp = sh
        .engine
        .correlations
        .list
        .iter()
        .enumerate()
        .map(|(i, c)| (c.fingerprint, CorrId(i as u32)))
        .collect();
    let s2 = Arc::new(Mutex::new(S2 {
        sh: sh.clone(),
        state_topic: state_topic.clone(),
        keyed: keyed.then(|| {
            (
                Stage::new(
                    sh.engine.clone(),
                    std::slice::from_ref(&sh.pcfg),
                    1,
                    sh.max_future,
                ),
                Vec::new(),
            )
        }),
        by_fp,
        parts: HashMap::new(),
        producer,
        restorer,
        renderer: EvidenceRenderer::new(&sh.engine, &sh.pcfg),
        out: Vec::new(),
    }));
    let (group, instance) = if keyed {
        (k.group.clone(), k.instance_id.clone())
    } else {
        (
            format!("{}.hits", k.group),
            k.instance_id.as_ref().map(|i| format!("{i}.hits")),
        )
    };
    let consumer: BaseConsumer<S2Ctx> = consumer_config(k, &group, instance)
        .create_with_context(S2Ctx {
            s2: s2.clone(),
            metrics: sh.metrics.clone(),
        })
        .map_err(kerr("stage 2 consumer"))?;
    consumer
        .subscribe(&[state_topic.as_str()])
        .map_err(kerr("subscribe"))?;
    let mut last_snap = Instant::now();
    let mut last_tick = Instant::now();
    while !sh.stop.load(Ordering::Relaxed) {
        // Never hold the lock across poll: rebalance callbacks run inside it.
        poll_round(&consumer, k.max_batch, &sh.metrics, "stage 2", |m| {
            s2.lock().expect("stage 2 lock").record(m);
            Ok(())
        })?;
        let mut s = s2.lock().expect("stage 2 lock");
        s.process();
        if last_tick.elapsed() >= Duration::from_millis(200) {
            last_tick = Instant::now();
            s.tick();
        }
        let periodic = last_snap.elapsed() >= k.checkpoint_interval.0;
        let due = s.wants_snapshot(periodic);
        if periodic {
            last_snap = Instant::now();
        }
        if !due.is_empty()
            && let Err(e) = s.checkpoint(&consumer, &due)
        {
            eprintln!("kuzet: stage 2: {e}");
        }
    }
    let mut s = s2.lock().expect("stage 2 lock");
    s.process();
    let all: Vec<i32> = s.parts.keys().copied().collect();
    s.checkpoint(&consumer, &all)
}

/// A running node.
pub struct Node {
    pub metrics: Arc<NodeMetrics>,
    pub sinks: Vec<Arc<SinkMetrics>>,
    stop: Arc<AtomicBool>,
    stages: Vec<(&'static str, JoinHandle<Result<(), NodeError>>)>,
    outputs: Option<(Outputs, JoinHandle<()>)>,
}

impl Node {
    /// Starts stage 1 and stage 2 (or the keyed stage) and the outputs.
    pub fn start(cfg: &Config, engine: Engine, pcfg: ParserConfig) -> Result<Node, NodeError> {
        let k = cfg
            .kafka
            .clone()
            .ok_or_else(|| NodeError::Setup("no [kafka] section".into()))?;
        let mode = Mode::parse(&k.mode).unwrap_or(Mode::TwoStage);
        let stop = Arc::new(AtomicBool::new(false));
        let (outputs, oh, sinks) = start_outputs(cfg, cfg.engine.alert_queue, stop.clone())?;
        let metrics = Arc::new(NodeMetrics::default());
        let sh = Arc::new(Shared {
            k,
            engine: Arc::new(engine),
            pcfg,
            outputs: outputs.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
            lateness: cfg.engine.lateness.as_millis(),
            max_future: cfg.engine.max_future.as_millis(),
            evidence_events: cfg.engine.evidence_events,
        });
        let spawn = |name: &'static str,
                     f: Box<dyn FnOnce() -> Result<(), NodeError> + Send>|
         -> Result<_, NodeError> {
            std::thread::Builder::new()
                .name(format!("kuzet-{name}"))
                .spawn(f)
                .map(|h| (name, h))
                .map_err(|source| NodeError::Io {
                    what: "spawn".into(),
                    source,
                })
        };
        let mut stages = Vec::new();
        match mode {
            Mode::TwoStage => {
                let a = sh.clone();
                stages.push(spawn("stage1", Box::new(move || run_stage1(a)))?);
                let b = sh.clone();
                stages.push(spawn("stage2", Box::new(move || run_stage2(b, false)))?);
            }
            Mode::Keyed => {
                let b = sh.clone();
                stages.push(spawn("keyed", Box::new(move || run_stage2(b, true)))?);
            }
        }
        Ok(Node {
            metrics,
            sinks,
            stop,
            stages,
            outputs: Some((outputs, oh)),
        })
    }

    /// `Some` once a stage ended on its own (an error): the node should stop.
    pub fn failed(&self) -> bool {
        self.stages.iter().any(|(_, h)| h.is_finished())
    }

    /// Stops both stages (each snapshots and commits what it did) and flushes the sinks.
    pub fn stop(mut self) -> Result<(), NodeError> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = None;
        for (name, h) in self.stages.drain(..) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    eprintln!("kuzet: {name}: {e}");
                    first.get_or_insert(e);
                }
                Err(_) => {
                    first.get_or_insert(NodeError::Setup(format!("{name} panicked")));
                }
            }
        }
        if let Some((o, h)) = self.outputs.take() {
            let _ = o.flush();
            drop(o);
            let _ = h.join();
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
