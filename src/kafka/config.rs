//! The `[kafka]` section of the daemon's TOML (issue 9): where a scale-out node reads its
//! events, which topics carry hits and state, and the bounds of its Kafka clients. Always
//! compiled, so that a build without the `kafka` feature still reads such a config and
//! refuses it with a clear message instead of an "unknown key" error.
//!
//! What does not live here: the clients themselves (`node.rs`), the Kafka alert sink's keys
//! (`[[sink]] type = "kafka"` in `config.rs`, validated by [`validate_sink`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, SinkConfig, Span};
use crate::event::time::Tz;
use crate::parser::InputFormat;

/// How a node turns input partitions into correlation state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Stage 1 parses and matches the input topics and produces hits, keyed by (correlation
    /// family, group key), to `hits_topic`; stage 2 consumes `hits_topic` and keeps the
    /// correlation state per hits partition. Correct for any input partitioning.
    TwoStage,
    /// No hits topic: each input partition is parsed, matched and correlated by its owner.
    /// Correct only when every event of a group key is in one partition (docs/scale-out.md).
    Keyed,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "two-stage" => Some(Mode::TwoStage),
            "keyed" => Some(Mode::Keyed),
            _ => None,
        }
    }
}

/// `[kafka]`: present → `kuzet run` is a scale-out node (its `[[listener]]`s are not opened).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Consumer group of the input topics; stage 2 uses `<group>.hits`.
    pub group: String,
    /// Static membership (`group.instance.id`; stage 2 appends `.hits`): a node that
    /// restarts within `session_timeout` gets its partitions back without a rebalance. Give
    /// each node its own. None: dynamic membership.
    pub instance_id: Option<String>,
    /// Input topics (events in any format the parser reads, one event per record).
    pub topics: Vec<String>,
    /// `two-stage` (default) or `keyed`.
    pub mode: String,
    /// Parser format of the input records (as a listener's `format`).
    pub format: String,
    /// Zone of timestamps without one.
    pub tz: String,
    /// Declared Sigma logsource of the input (`product=linux,service=sshd`).
    pub logsource: Option<String>,
    /// Topic of stage-1 hits (two-stage mode). Its partition count is the unit of
    /// correlation scale-out and must never change while state exists.
    pub hits_topic: String,
    /// Compacted topic of per-partition state snapshots; needs at least as many partitions as
    /// the topic whose partitions carry state (hits topic, or the input topic in keyed mode).
    pub changelog_topic: String,
    /// How long the group waits for a silent member before giving its partitions to others
    /// (also the failover time after a crash with static membership).
    pub session_timeout: Span,
    /// Stage-2 state is snapshotted this often (and after every batch that raised alerts);
    /// offsets are committed only after their snapshot is durable.
    pub checkpoint_interval: Span,
    /// Stage 1 commits input offsets this often, after the hits and detections of the
    /// records before them are durable.
    pub commit_interval: Span,
    /// Records handled per poll round before offsets, snapshots and timers get a turn.
    pub max_batch: usize,
    /// Largest record accepted from or sent to the brokers, in bytes
    /// (`fetch.message.max.bytes`, `message.max.bytes`); snapshot chunks are smaller.
    pub max_message_bytes: usize,
    /// Bytes librdkafka may prefetch per consumer (`queued.max.messages.kbytes` × 1024).
    pub prefetch_bytes: usize,
    /// Bytes of recent events kept per owned partition for alert evidence (replaces
    /// `engine.evidence_bytes`, which sizes one shard of the single-node daemon). Every
    /// snapshot carries this ring whole: it sets the snapshot size.
    pub evidence_bytes: usize,
    /// Extra librdkafka properties (`"security.protocol" = "ssl"` ...); they win over
    /// kuzet's own settings, so use them with care.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group: "kuzet".into(),
            instance_id: None,
            topics: Vec::new(),
            mode: "two-stage".into(),
            format: "auto".into(),
            tz: "UTC".into(),
            logsource: None,
            hits_topic: "kuzet-hits".into(),
            changelog_topic: "kuzet-changelog".into(),
            session_timeout: Span::secs(10),
            checkpoint_interval: Span::secs(5),
            commit_interval: Span::secs(1),
            max_batch: 10_000,
            max_message_bytes: 1 << 20,
            prefetch_bytes: 64 << 20,
            evidence_bytes: 256 << 10,
            properties: BTreeMap::new(),
        }
    }
}

/// Kafka topic names: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn topic_ok(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn brokers_ok(b: &str) -> Result<(), String> {
    if b.trim().is_empty() {
        return Err("no broker given (host:port[,host:port...])".into());
    }
    for part in b.split(',') {
        let part = part.trim();
        let Some((host, port)) = part.rsplit_once(':') else {
            return Err(format!("{part:?}: expected host:port"));
        };
        if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .is_empty()
        {
            return Err(format!("{part:?}: no host"));
        }
        if port.parse::<u16>().is_err() {
            return Err(format!("{part:?}: {port:?} is not a port"));
        }
    }
    Ok(())
}

/// Checks the `[kafka]` section; problems go to `errs` with their key path.
pub fn validate(k: &KafkaConfig, errs: &mut Vec<ConfigError>) {
    let mut err = |key: &str, reason: String| {
        errs.push(ConfigError {
            path: format!("kafka.{key}"),
            reason,
        })
    };
    if !cfg!(feature = "kafka") {
        err(
            "brokers",
            "this kuzet was built without Kafka support (rebuild with `--features kafka`)".into(),
        );
    }
    if let Err(e) = brokers_ok(&k.brokers) {
        err("brokers", e);
    }
    if k.group.trim().is_empty() {
        err("group", "must not be empty".into());
    }
    if let Some(id) = &k.instance_id
        && id.trim().is_empty()
    {
        err("instance_id", "must not be empty (or leave it out)".into());
    }
    if k.topics.is_empty() {
        err("topics", "at least one input topic is needed".into());
    }
    for (i, t) in k.topics.iter().enumerate() {
        if !topic_ok(t) {
            err(
                &format!("topics[{i}]"),
                format!("{t:?} is not a topic name"),
            );
        }
    }
    let mode = Mode::parse(&k.mode);
    match mode {
        None => err("mode", format!("{:?}: two-stage or keyed", k.mode)),
        Some(Mode::Keyed) if k.topics.len() > 1 => err(
            "topics",
            "keyed mode reads one input topic (its partitions carry the state)".into(),
        ),
        Some(_) => {}
    }
    for (key, t) in [
        ("hits_topic", &k.hits_topic),
        ("changelog_topic", &k.changelog_topic),
    ] {
        if !topic_ok(t) {
            err(key, format!("{t:?} is not a topic name"));
        } else if k.topics.contains(t) {
            err(key, format!("{t:?} is also an input topic"));
        }
    }
    if k.hits_topic == k.changelog_topic {
        err("changelog_topic", "must differ from hits_topic".to_string());
    }
    if InputFormat::parse(&k.format).is_none() {
        err(
            "format",
            format!(
                "{:?} is not one of {}",
                k.format,
                InputFormat::NAMES.join(", ")
            ),
        );
    }
    if let Err(e) = Tz::parse(&k.tz) {
        err("tz", e.to_string());
    }
    if let Some(ls) = &k.logsource
        && let Err(e) = crate::cli::replay::parse_logsource(ls)
    {
        err("logsource", e.to_string());
    }
    // librdkafka's own limits: session.timeout.ms 1 s – 1 h.
    if !(1_000..=3_600_000).contains(&k.session_timeout.as_millis()) {
        err("session_timeout", "must be between 1s and 1h".into());
    }
    for (key, s) in [
        ("checkpoint_interval", k.checkpoint_interval),
        ("commit_interval", k.commit_interval),
    ] {
        if s.0.is_zero() {
            err(key, "must be more than 0".into());
        }
    }
    if !(1..=1_000_000).contains(&k.max_batch) {
        err("max_batch", "must be between 1 and 1000000".into());
    }
    if !(4096..=(256 << 20)).contains(&k.max_message_bytes) {
        err(
            "max_message_bytes",
            "must be between 4096 bytes and 256 MiB".into(),
        );
    }
    if !((1 << 20)..=(2 << 30)).contains(&k.prefetch_bytes) {
        err("prefetch_bytes", "must be between 1 MiB and 2 GiB".into());
    }
    if !(4096..=(64 << 20)).contains(&k.evidence_bytes) {
        err(
            "evidence_bytes",
            "must be between 4096 bytes and 64 MiB".into(),
        );
    }
    for key in k.properties.keys() {
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        {
            err(
                &format!("properties.{key}"),
                "not a librdkafka property name".into(),
            );
        }
    }
}

/// Checks a `[[sink]] type = "kafka"` entry: `topic` needed, `address` (brokers) optional
/// when `[kafka]` names them.
pub fn validate_sink(
    i: usize,
    s: &SinkConfig,
    kafka: Option<&KafkaConfig>,
    errs: &mut Vec<ConfigError>,
) {
    let mut err = |key: &str, reason: String| {
        errs.push(ConfigError {
            path: format!("sink[{i}].{key}"),
            reason,
        })
    };
    if !cfg!(feature = "kafka") {
        err(
            "type",
            "this kuzet was built without Kafka support (rebuild with `--features kafka`)".into(),
        );
    }
    match &s.topic {
        None => err("topic", "a kafka sink needs a topic".into()),
        Some(t) if !topic_ok(t) => err("topic", format!("{t:?} is not a topic name")),
        Some(_) => {}
    }
    match (&s.address, kafka) {
        (Some(a), _) => {
            if let Err(e) = brokers_ok(a) {
                err("address", e);
            }
        }
        (None, Some(_)) => {}
        (None, None) => err(
            "address",
            "a kafka sink needs its brokers (address = \"host:port\") or a [kafka] section".into(),
        ),
    }
    if s.timeout.0.is_zero() {
        err("timeout", "must be more than 0".into());
    }
}

/// The brokers a Kafka sink sends to.
pub fn sink_brokers(s: &SinkConfig, kafka: Option<&KafkaConfig>) -> String {
    s.address
        .clone()
        .or_else(|| kafka.map(|k| k.brokers.clone()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn every_kafka_problem_is_reported_with_its_key_path() {
        let got = problems(
            r#"
[kafka]
brokers = "127.0.0.1"
group = ""
instance_id = " "
topics = ["logs", "bad topic"]
mode = "sharded"
hits_topic = "logs"
changelog_topic = "logs"
format = "xml"
tz = "Mars/Olympus"
session_timeout = "100ms"
checkpoint_interval = 0
max_batch = 0
max_message_bytes = 10
evidence_bytes = 1
properties = { "Bad Key" = "x" }
[[sink]]
type = "kafka"
address = "nohost"
"#,
        );
        for want in [
            "kafka.brokers: ",
            "kafka.group: ",
            "kafka.instance_id: ",
            "kafka.topics[1]: ",
            "kafka.mode: ",
            "kafka.hits_topic: ",
            "kafka.changelog_topic: ",
            "kafka.format: ",
            "kafka.tz: ",
            "kafka.session_timeout: ",
            "kafka.checkpoint_interval: ",
            "kafka.max_batch: ",
            "kafka.max_message_bytes: ",
            "kafka.evidence_bytes: ",
            "kafka.properties.Bad Key: ",
            "sink[0].topic: ",
            "sink[0].address: ",
        ] {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "{want} not in {got:#?}"
            );
        }
        let got = problems("[kafka]\nbrokrs = \"x\"\n");
        assert!(got[0].starts_with("kafka.brokrs: "), "{got:?}");
        let got = problems("[kafka]\ntopics = [\"a\", \"b\"]\nmode = \"keyed\"\n");
        assert!(
            got.iter().any(|g| g.starts_with("kafka.topics: ")),
            "{got:?}"
        );
    }

    #[cfg(feature = "kafka")]
    #[test]
    fn the_example_node_config_is_valid_and_builds() {
        let text = include_str!("../../docs/kafka-node.example.toml");
        let c = Config::from_toml(text).unwrap_or_else(|e| panic!("{e:?}"));
        let k = c.kafka.as_ref().unwrap();
        assert_eq!(
            k,
            &super::KafkaConfig {
                instance_id: Some("kuzet-node-1".into()),
                topics: vec!["logs".into()],
                ..super::KafkaConfig::default()
            }
        );
        let (engine, _) = crate::kafka::build(&c).unwrap();
        assert!(!engine.correlations.is_empty());
        // A Kafka sink can take its brokers from [kafka].
        assert_eq!(super::sink_brokers(&c.sinks[0], Some(k)), "127.0.0.1:9092");
    }

    #[cfg(not(feature = "kafka"))]
    #[test]
    fn without_the_feature_a_kafka_config_is_refused_clearly() {
        let got = problems(include_str!("../../docs/kafka-node.example.toml"));
        assert!(
            got.iter()
                .any(|g| g.starts_with("kafka.brokers: ")
                    && g.contains("built without Kafka support")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|g| g.starts_with("sink[0].type: ") && g.contains("--features kafka")),
            "{got:?}"
        );
    }
}
