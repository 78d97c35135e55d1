//! Scale-out over Kafka (issue 9), against a broker on loopback: librdkafka's in-process
//! mock cluster (always), or a real `tansu` broker when `KUZET_TANSU` names its binary
//! (`scripts/kafka-e2e.sh`; docs/scale-out.md).
//!
//! | test | what it proves |
//! |---|---|
//! | `two_stage_correlates_across_input_partitions_and_commits_after_snapshot` | an attack spread over input partitions meets in one hits partition; alerts reach the Kafka sink keyed by id; every committed hits offset equals its durable snapshot's offset |
//! | `a_node_killed_mid_attack_hands_over_and_each_attack_alerts_once` | two nodes (processes) in one group, kill -9 of one between the 3rd and 4th failure of eight attacks: the survivor restores the state and each attack raises exactly one alert |
//! | `keyed_mode_correlates_on_the_input_partitions` | stage 2 straight on an input topic keyed by source address; librdkafka's murmur2 partitioner agrees with ours |
//! | `stage_two_applies_a_redelivered_hit_once` | hits produced twice (stage 1 redone after a crash) are applied once: one alert, count 6 |
//! | `kuzet_check_accepts_a_kafka_node_config` | `kuzet check --config` on the example node config |
//! | `bench_events_per_second_through_one_and_two_nodes` | (ignored) throughput |
//!
//! Every address is loopback; every wait is bounded. For brokers other than the mock:
//! `KUZET_E2E_SESSION` (the nodes' `session_timeout`, default 3s), `KUZET_E2E_DYNAMIC=1` (no
//! static membership), `KUZET_E2E_EXTRA` (more `[kafka]` lines, e.g. librdkafka properties).
#![cfg(feature = "kafka")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use kuzet::kafka::wire::Assembler;

/// A broker for one test: the mock cluster, or a tansu process.
enum Broker {
    Mock(MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
    Tansu(Child, String),
}

impl Broker {
    fn start(topics: &[(&str, i32)]) -> Broker {
        match std::env::var("KUZET_TANSU") {
            Ok(bin) if !bin.is_empty() => {
                let port = free_port();
                let url = format!("tcp://127.0.0.1:{port}");
                let child = Command::new(&bin)
                    .args([
                        "broker",
                        "--listener-url",
                        &url,
                        "--advertised-listener-url",
                        &url,
                        "--storage-engine",
                        "memory://tansu/",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{bin}: {e}"));
                let addr = format!("127.0.0.1:{port}");
                wait_for("tansu to listen", Duration::from_secs(30), || {
                    std::net::TcpStream::connect(&addr).ok()
                });
                for (t, n) in topics {
                    let ok = Command::new(&bin)
                        .args([
                            "topic",
                            "create",
                            t,
                            "--broker",
                            &url,
                            "--partitions",
                            &n.to_string(),
                        ])
                        .status()
                        .unwrap();
                    assert!(ok.success(), "tansu topic create {t}");
                }
                Broker::Tansu(child, addr)
            }
            _ => {
                let m = MockCluster::new(1).unwrap();
                for (t, n) in topics {
                    m.create_topic(t, *n, 1).unwrap();
                }
                Broker::Mock(m)
            }
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Broker::Mock(m) => m.bootstrap_servers(),
            Broker::Tansu(_, a) => a.clone(),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Broker::Tansu(c, _) = self {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An RFC 3164 stamp for now (UTC).
fn stamp() -> String {
    let out = Command::new("date")
        .args(["-u", "+%b %e %H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

fn failure(ip: &str, i: usize) -> String {
    format!(
        "<38>{} web01 sshd[{}]: Failed password for root from {ip} port {} ssh2",
        stamp(),
        4000 + i,
        50000 + i
    )
}

/// Produces `lines` to `topic`, spread over partitions round-robin, or by `key` when given.
fn produce(bootstrap: &str, topic: &str, lines: &[(Option<String>, String)], parts: i32) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for (i, (key, line)) in lines.iter().enumerate() {
        let mut rec = BaseRecord::to(topic).payload(line.as_bytes());
        match key {
            Some(k) => rec = rec.key(k.as_bytes()),
            None => rec = rec.partition(i as i32 % parts),
        }
        let mut rec = rec;
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    p.poll(Duration::from_millis(10));
                    rec = back;
                }
                Err((e, _)) => panic!("{e}"),
            }
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

/// Every record of a topic (all partitions, from the start to the high watermark). Offsets
/// may have gaps (a real broker's control records), so the end is the watermark, not a count.
fn read_all(bootstrap: &str, topic: &str, parts: i32) -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kuzet-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    // Per partition: the high watermark and the next offset still to see.
    let mut todo = BTreeMap::new();
    for p in 0..parts {
        let (lo, hi) = c
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        if hi > lo {
            todo.insert(p, (hi, lo));
            tpl.add_partition_offset(topic, p, Offset::Offset(lo))
                .unwrap();
        }
    }
    let mut out = Vec::new();
    if todo.is_empty() {
        return out;
    }
    c.assign(&tpl).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while todo.values().any(|(hi, next)| next < hi) && Instant::now() < until {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let (hi, next) = todo.get_mut(&m.partition()).unwrap();
            if m.offset() < *hi {
                *next = m.offset() + 1;
                out.push((
                    m.partition(),
                    m.offset(),
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
    }
    out
}

/// The high watermark of each partition.
fn highs(bootstrap: &str, topic: &str, parts: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    (0..parts)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .collect()
}

/// The committed offsets of `group` on `topic`'s partitions.
fn committed(bootstrap: &str, group: &str, topic: &str, parts: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..parts)
        .map(|p| match got.find_partition(topic, p).unwrap().offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

fn brute_force(alerts: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    alerts
        .iter()
        .filter(|a| a["rule"]["title"] == "SSH Brute Force From One Source")
        .collect()
}

fn alerts_on_topic(bootstrap: &str) -> Vec<serde_json::Value> {
    read_all(bootstrap, "alerts", 1)
        .into_iter()
        .map(|(_, _, key, v)| {
            let a: serde_json::Value = serde_json::from_slice(&v).unwrap();
            assert_eq!(
                a["id"].as_str().unwrap().as_bytes(),
                &key[..],
                "keyed by id"
            );
            a
        })
        .collect()
}

const TOPICS: &[(&str, i32)] = &[
    ("logs", 2),
    ("kuzet-hits", 4),
    ("kuzet-changelog", 4),
    ("alerts", 1),
];

fn config(dir: &Path, bootstrap: &str, instance: &str, extra: &str) -> String {
    format!(
        r#"
[admin]
listen = ""
[stats]
interval = "1s"
[kafka]
brokers = "{bootstrap}"
group = "kuzet"
{static_id}
topics = ["logs"]
session_timeout = "{session}"
checkpoint_interval = "500ms"
commit_interval = "200ms"
{extra}
{env_extra}
[[sink]]
type = "kafka"
topic = "alerts"
[[sink]]
type = "file"
path = "{}"
"#,
        dir.join(format!("alerts-{instance}.jsonl")).display(),
        // Static membership, unless the broker under test does not expire static members
        // (tansu 0.6: docs/scale-out.md).
        static_id = if std::env::var("KUZET_E2E_DYNAMIC").is_ok() {
            String::new()
        } else {
            format!("instance_id = \"{instance}\"")
        },
        session = std::env::var("KUZET_E2E_SESSION").unwrap_or_else(|_| "3s".into()),
        env_extra = std::env::var("KUZET_E2E_EXTRA")
            .unwrap_or_default()
            .replace("\\n", "\n"),
    )
}

#[test]
fn two_stage_correlates_across_input_partitions_and_commits_after_snapshot() {
    let broker = Broker::start(TOPICS);
    let bs = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    // Three attacks of six failures, each spread over both input partitions, and one
    // source with three failures (no alert).
    let mut lines = Vec::new();
    for i in 0..6 {
        for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
            lines.push((None, failure(ip, i)));
        }
    }
    for i in 0..3 {
        lines.push((None, failure("198.51.100.4", i)));
    }
    produce(&bs, "logs", &lines, 2);
    let cfg: kuzet::config::Config =
        kuzet::config::Config::from_toml(&config(dir.path(), &bs, "solo", "")).unwrap();
    let (engine, pcfg) = kuzet::kafka::build(&cfg).unwrap();
    let node = kuzet::kafka::node::Node::start(&cfg, engine, pcfg).unwrap();
    let got = wait_for("three alerts on the topic", Duration::from_secs(60), || {
        let a = alerts_on_topic(&bs);
        (brute_force(&a).len() >= 3).then_some(a)
    });
    // Let stage 2 snapshot and commit what it applied.
    std::thread::sleep(Duration::from_millis(1500));
    let m = node.metrics.clone();
    node.stop().unwrap();
    let bf = brute_force(&got);
    let mut ips: Vec<&str> = bf
        .iter()
        .map(|a| a["group"]["src_ip"].as_str().unwrap())
        .collect();
    ips.sort();
    assert_eq!(ips, ["203.0.113.1", "203.0.113.2", "203.0.113.3"]);
    for a in &bf {
        assert_eq!(a["count"], 6);
    }
    assert_eq!(m.records.get(), 21);
    let text = m.render(&[]);
    assert!(text.contains("\nkuzet_kafka_records_total 21\n"), "{text}");
    assert!(text.contains("\nkuzet_kafka_alerts_total 3\n"), "{text}");
    assert_eq!(m.hits_duplicate.get(), 0);
    assert!(m.hits_in.get() >= 21, "{}", m.line());
    // Commit after checkpoint: every committed hits offset is the resume offset of a durable
    // snapshot of that partition (and, after a clean stop, the end of the partition).
    let log = read_all(&bs, "kuzet-changelog", 4);
    eprintln!("{} changelog records; {}", log.len(), m.line());
    let done = committed(&bs, "kuzet.hits", "kuzet-hits", 4);
    let hits = read_all(&bs, "kuzet-hits", 4);
    let high = highs(&bs, "kuzet-hits", 4);
    for p in 0..4 {
        let mut asm = Assembler::default();
        for (_, _, _, v) in log.iter().filter(|r| r.0 == p) {
            asm.push(v);
        }
        let snap = asm.finish(p).unwrap();
        let in_part = hits.iter().filter(|r| r.0 == p).count() as i64;
        match snap {
            Some(s) => {
                assert_eq!(done[p as usize], s.next_offset, "partition {p}");
                assert_eq!(s.next_offset, high[p as usize], "partition {p}");
            }
            None => assert!(
                in_part == 0 && done[p as usize] < 0,
                "partition {p}: {in_part} hits, committed {}",
                done[p as usize]
            ),
        }
        // The key routes the hit: Java's murmur2 of the key picks the partition.
        for (_, _, key, _) in hits.iter().filter(|r| r.0 == p) {
            assert_eq!(
                kuzet::kafka::murmur2::partition_for_key(key, 4) as i32,
                p,
                "key {}",
                String::from_utf8_lossy(key)
            );
        }
    }
    assert_eq!(committed(&bs, "kuzet", "logs", 2), highs(&bs, "logs", 2));
}

struct NodeProc {
    child: Child,
}

impl NodeProc {
    fn start(dir: &Path, cfg: &str, name: &str) -> NodeProc {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kuzet"))
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        NodeProc { child }
    }

    fn kill9(mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The node's log says stage 2 was given at least one partition.
fn owns(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("stage 2: assigned partitions [") && !l.ends_with("[]"))
}

/// A scratch directory kept (and named on stderr) when the test fails, for the node logs.
struct Dir(std::path::PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("kuzet-kafka-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("node logs kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn log_of(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

#[test]
fn a_node_killed_mid_attack_hands_over_and_each_attack_alerts_once() {
    let broker = Broker::start(TOPICS);
    let bs = broker.bootstrap();
    let dir = Dir::new("kill");
    let a = NodeProc::start(dir.path(), &config(dir.path(), &bs, "a", ""), "a");
    let b = NodeProc::start(dir.path(), &config(dir.path(), &bs, "b", ""), "b");
    // Both nodes own some hits partitions before the attack starts.
    wait_for(
        "both nodes to own partitions",
        Duration::from_secs(60),
        || (owns(&log_of(dir.path(), "a")) && owns(&log_of(dir.path(), "b"))).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(4));
    let ips: Vec<String> = (1..=8).map(|i| format!("192.0.2.{i}")).collect();
    let burst = |from: usize, to: usize| -> Vec<(Option<String>, String)> {
        let mut v = Vec::new();
        for i in from..to {
            for ip in &ips {
                v.push((None, failure(ip, i)));
            }
        }
        v
    };
    // First half of every attack, then one node dies without a word.
    produce(&bs, "logs", &burst(0, 3), 2);
    wait_for(
        "stage 1 to commit the first half",
        Duration::from_secs(60),
        || (committed(&bs, "kuzet", "logs", 2) == highs(&bs, "logs", 2)).then_some(()),
    );
    // ... and stage 2 to snapshot it, so that the survivor has state to restore (killing
    // before the snapshot is correct too: the survivor then replays the hits).
    wait_for(
        "stage 2 to snapshot the first half",
        Duration::from_secs(60),
        || {
            let highs: i64 = highs(&bs, "kuzet-hits", 4).iter().sum();
            let done: i64 = committed(&bs, "kuzet.hits", "kuzet-hits", 4)
                .iter()
                .map(|&o| o.max(0))
                .sum();
            (highs > 0 && done == highs).then_some(())
        },
    );
    let a_parts = log_of(dir.path(), "a");
    a.kill9();
    // Second half: the survivor must take over a's partitions, restore their state and finish
    // every attack.
    produce(&bs, "logs", &burst(3, 6), 2);
    let got = wait_for("eight alerts", Duration::from_secs(90), || {
        let a = alerts_on_topic(&bs);
        (brute_force(&a).len() >= 8).then_some(a)
    });
    // Anything late (a duplicate) would come within a few snapshot intervals.
    std::thread::sleep(Duration::from_secs(5));
    let got2 = alerts_on_topic(&bs);
    b.stop();
    let bf = brute_force(&got2);
    let mut seen: Vec<&str> = bf
        .iter()
        .filter(|a| a["revision"] == 0)
        .map(|a| a["group"]["src_ip"].as_str().unwrap())
        .collect();
    seen.sort();
    let want: Vec<&str> = ips.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        want,
        "exactly one alert per attack; node b said:\n{}",
        log_of(dir.path(), "b")
    );
    assert_eq!(brute_force(&got).len(), 8);
    // The survivor restored the dead node's half-counted windows from the changelog.
    let b_log = log_of(dir.path(), "b");
    assert!(
        b_log
            .lines()
            .any(|l| l.contains(": restored ") && !l.contains(": restored 0 keys")),
        "a said:\n{a_parts}\nb said:\n{b_log}"
    );
    for a in &bf {
        assert_eq!(a["count"], 6, "{a}");
    }
}

#[test]
fn keyed_mode_correlates_on_the_input_partitions() {
    let broker = Broker::start(&[("logs", 3), ("kuzet-changelog", 3), ("alerts", 1)]);
    let bs = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    // Keyed by source address: every event of one attack in one partition.
    let mut lines = Vec::new();
    for i in 0..6 {
        for ip in ["203.0.113.7", "203.0.113.8"] {
            lines.push((Some(ip.to_string()), failure(ip, i)));
        }
    }
    // And 50 other keys, so that the partitioner check below means something.
    for i in 0..50 {
        let ip = format!("198.51.100.{i}");
        let line = format!(
            "<38>{} web01 sshd[9]: Connection closed by {ip} port 22 [preauth]",
            stamp()
        );
        lines.push((Some(ip), line));
    }
    produce(&bs, "logs", &lines, 3);
    let text = config(dir.path(), &bs, "k", "mode = \"keyed\"");
    let cfg = kuzet::config::Config::from_toml(&text).unwrap();
    let (engine, pcfg) = kuzet::kafka::build(&cfg).unwrap();
    let node = kuzet::kafka::node::Node::start(&cfg, engine, pcfg).unwrap();
    let got = wait_for(
        "two alerts and every record",
        Duration::from_secs(60),
        || {
            let a = alerts_on_topic(&bs);
            (brute_force(&a).len() >= 2 && node.metrics.records.get() == 62).then_some(a)
        },
    );
    let m = node.metrics.clone();
    node.stop().unwrap();
    assert_eq!(brute_force(&got).len(), 2);
    // librdkafka's murmur2 partitioner (Java-compatible) put each record where ours says.
    for (p, _, key, _) in read_all(&bs, "logs", 3) {
        assert_eq!(
            kuzet::kafka::murmur2::partition_for_key(&key, 3) as i32,
            p,
            "{}",
            String::from_utf8_lossy(&key)
        );
    }
    assert_eq!(m.records.get(), 62);
    assert!(m.snapshots.get() >= 1, "{}", m.line());
}

#[test]
fn kuzet_check_accepts_a_kafka_node_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["check", "--config", "docs/kafka-node.example.toml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rules loaded"), "{text}");
}

/// Throughput of one and two nodes (`--ignored`; `scripts/kafka-e2e.sh bench` runs it against
/// tansu). Preloads `KUZET_BENCH_EVENTS` sshd lines (default 200,000; 1 in 10 a failed
/// login from one of 5,000 sources, the rest accepted logins) once the nodes share the
/// partitions, and measures until every input offset and every hits offset is committed.
#[test]
#[ignore]
fn bench_events_per_second_through_one_and_two_nodes() {
    let n: usize = std::env::var("KUZET_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    for nodes in [1usize, 2] {
        let broker = Broker::start(&[
            ("logs", 4),
            ("kuzet-hits", 4),
            ("kuzet-changelog", 4),
            ("alerts", 1),
        ]);
        let bs = broker.bootstrap();
        let dir = Dir::new(&format!("bench{nodes}"));
        let t = stamp();
        let lines: Vec<(Option<String>, String)> = (0..n)
            .map(|i| {
                let ip = format!("10.{}.{}.{}", (i % 5000) / 250, (i % 250) / 10, i % 10);
                let line = if i % 10 == 0 {
                    format!("<38>{t} web01 sshd[{i}]: Failed password for root from {ip} port 22 ssh2")
                } else {
                    format!("<38>{t} web01 sshd[{i}]: Accepted publickey for deploy from {ip} port 22 ssh2")
                };
                (None, line)
            })
            .collect();
        let procs: Vec<NodeProc> = (0..nodes)
            .map(|i| {
                let name = format!("n{i}");
                let cfg = config(dir.path(), &bs, &name, "")
                    .replace("[[sink]]\ntype = \"kafka\"\ntopic = \"alerts\"\n", "");
                NodeProc::start(dir.path(), &cfg, &name)
            })
            .collect();
        // Every node owns input and hits partitions before the load starts (no rebalance
        // in the measurement).
        wait_for(
            "the nodes to share the partitions",
            Duration::from_secs(60),
            || {
                (0..nodes)
                    .all(|i| {
                        let log = log_of(dir.path(), &format!("n{i}"));
                        owns(&log)
                            && log.lines().any(|l| {
                                l.contains("stage 1: assigned partitions [") && !l.ends_with("[]")
                            })
                    })
                    .then_some(())
            },
        );
        std::thread::sleep(Duration::from_secs(2));
        let started = Instant::now();
        produce(&bs, "logs", &lines, 4);
        let produced = started.elapsed();
        let mut first: Option<(Instant, i64)> = None;
        // Offsets, not records: a real broker may leave gaps.
        let total: i64 = highs(&bs, "logs", 4).iter().sum();
        let done = loop {
            let input: i64 = committed(&bs, "kuzet", "logs", 4)
                .iter()
                .map(|&o| o.max(0))
                .sum();
            if input > 0 && first.is_none() {
                first = Some((Instant::now(), input));
            }
            if input == total {
                let highs: i64 = highs(&bs, "kuzet-hits", 4).iter().sum();
                let applied: i64 = committed(&bs, "kuzet.hits", "kuzet-hits", 4)
                    .iter()
                    .map(|&o| o.max(0))
                    .sum();
                if applied == highs {
                    break Instant::now();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "bench did not finish"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let (t0, c0) = first.unwrap();
        let steady = (total - c0) as f64 / total as f64 * n as f64 / (done - t0).as_secs_f64();
        let whole = n as f64 / (done - started).as_secs_f64();
        eprintln!(
            "kafka bench: {nodes} node(s), {n} events (produced in {produced:.1?}): {whole:.0} events/s from the first record produced to the last hit applied and committed ({steady:.0} events/s from stage 1's first commit)"
        );
        for p in procs {
            p.stop();
        }
        for i in 0..nodes {
            let log = log_of(dir.path(), &format!("n{i}"));
            let last = log
                .lines()
                .rfind(|l| l.contains(" records, "))
                .unwrap_or("");
            eprintln!("  node {i}: {last}");
        }
    }
}

/// Stage 1 died after producing hits and before committing its input offsets: its successor
/// produces the same hits again. Stage 2 must apply each once (by source position).
#[test]
fn stage_two_applies_a_redelivered_hit_once() {
    let broker = Broker::start(TOPICS);
    let bs = broker.bootstrap();
    let dir = Dir::new("redeliver");
    let cfg = kuzet::config::Config::from_toml(&config(dir.path(), &bs, "r", "")).unwrap();
    let (engine, pcfg) = kuzet::kafka::build(&cfg).unwrap();
    let engine = std::sync::Arc::new(engine);
    // What stage 1 would produce for six failures from one source (input logs/0@0..6).
    let mut stage =
        kuzet::runner::Stage::new(engine.clone(), std::slice::from_ref(&pcfg), 1, 900_000);
    let mut records = Vec::new();
    for i in 0..6 {
        let line = failure("203.0.113.66", i);
        stage.event(
            0,
            line.as_bytes(),
            kuzet::event::Timestamp::now(),
            |_, _| {},
        );
        let b = &mut stage.batches[0];
        for (seq, h) in b.hits.iter().enumerate() {
            let src = kuzet::kafka::wire::SourcePos {
                topic: "logs",
                partition: 0,
                offset: i as i64,
                seq: seq as u32,
            };
            let wh = kuzet::kafka::wire::from_hit(&engine.correlations, b, h, src);
            let mut v = Vec::new();
            kuzet::kafka::wire::encode_hit(&wh, &mut v);
            records.push((kuzet::kafka::wire::hit_key(h.route), v));
        }
        b.clear();
    }
    assert!(records.len() >= 6);
    // The first owner produced all of them; the second redid offsets 2.. (from the last
    // commit) and produced those again.
    let redo: Vec<_> = records.iter().skip(records.len() / 3).cloned().collect();
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .unwrap();
    for (key, v) in records.iter().chain(redo.iter()) {
        let part = kuzet::kafka::murmur2::partition_for_key(key, 4) as i32;
        p.send(
            BaseRecord::to("kuzet-hits")
                .key(&key[..])
                .payload(v)
                .partition(part),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
    // The node's own engine: built from the same rules, so the same fingerprints.
    let (node_engine, _) = kuzet::kafka::build(&cfg).unwrap();
    let node = kuzet::kafka::node::Node::start(&cfg, node_engine, pcfg).unwrap();
    let total = (records.len() + redo.len()) as u64;
    wait_for("every hit record", Duration::from_secs(60), || {
        let m = &node.metrics;
        (m.hits_in.get() + m.hits_duplicate.get() == total).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let m = node.metrics.clone();
    node.stop().unwrap();
    assert_eq!(m.hits_duplicate.get(), redo.len() as u64, "{}", m.line());
    let got = alerts_on_topic(&bs);
    let bf = brute_force(&got);
    assert_eq!(bf.len(), 1, "{got:#?}");
    assert_eq!(bf[0]["count"], 6);
}
