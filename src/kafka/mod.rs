//! Scale-out over Kafka (issue 9; operator's view in `docs/scale-out.md`): several kuzet
//! nodes as one consumer group, correlation state per partition, handed over on rebalance.
//!
//! ```text
//!  input topics ──▶ stage 1 (group G): parse, extract, match ──hits, key = route hash──▶
//!    hits topic (murmur2 partitioner) ──▶ stage 2 (group G.hits): one correlator Shard per
//!    assigned partition ──alerts──▶ sinks (also a Kafka topic)
//!                       └──snapshots (state + next offset + source marks)──▶ changelog topic
//! ```
//!
//! | what                                                    | where          |
//! |---------------------------------------------------------|----------------|
//! | the `[kafka]` config section and its validation         | `config.rs`    |
//! | Java-compatible key → partition                         | `murmur2.rs`   |
//! | hit records, snapshots, chunking, duplicate marks       | `wire.rs`      |
//! | the clients, stage 1, stage 2, rebalance handling       | `node.rs` (feature `kafka`) |
//! | the Kafka alert sink (idempotent producer)              | `sink.rs` (feature `kafka`) |
//!
//! The invariant everything here serves: **an offset is committed only after everything it
//! stands for is durable** — stage 1 commits input offsets after the hits (and detection
//! alerts) of the records before them were acknowledged by the brokers (sinks); stage 2 commits
//! hits offsets after the snapshot holding their effect was acknowledged, and a new owner
//! resumes from the snapshot's own offset, so the state and the position can never disagree.

pub mod config;
pub mod murmur2;
pub mod wire;

#[cfg(feature = "kafka")]
pub mod node;
#[cfg(feature = "kafka")]
pub mod sink;

/// The engine and parser config a `[kafka]` node runs: the input is described by the
/// section's `format`, `tz` and `logsource` instead of a listener's.
pub fn build(
    cfg: &crate::config::Config,
) -> Result<(crate::engine::Engine, crate::parser::ParserConfig), Vec<String>> {
    let k = cfg
        .kafka
        .as_ref()
        .ok_or_else(|| vec!["no [kafka] section".to_string()])?;
    let mut c = cfg.clone();
    let mut l = crate::config::ListenerConfig::new("tcp://127.0.0.1:0");
    l.format = k.format.clone();
    l.tz = k.tz.clone();
    l.logsource = k.logsource.clone();
    c.listeners = vec![l];
    c.engine.evidence_bytes = k.evidence_bytes;
    let (engine, mut inputs) = crate::pipeline::build_engine(&c)?;
    Ok((engine, inputs.remove(0)))
}
