//! `[[sink]] type = "kafka"`: alerts as records of a topic, produced by an idempotent
//! producer (`enable.idempotence`, `acks=all`), keyed by the alert id, so that all revisions
//! of one alert land in one partition, in order, and a consumer (or a compacted topic) can
//! deduplicate on the key.
//!
//! `write` only enqueues (librdkafka batches); `flush` waits until every enqueued alert is
//! acknowledged by the brokers and re-sends the ones whose delivery failed, so a `flush`
//! that returns `Ok` means "all of them are in Kafka". The pipeline flushes before it commits
//! an input offset or writes a snapshot (`node.rs`). Delivery is at least once: an alert
//! enqueued before a crash and sent again by the next owner has the same id.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::sink::Sink;
use crate::sink::alert::AlertRecord;

/// Collects the records whose delivery failed, to send them again.
#[derive(Default, Clone)]
pub struct Failed(Arc<Mutex<Vec<OwnedMessage>>>);

impl ClientContext for Failed {}

impl ProducerContext for Failed {
    type DeliveryOpaque = ();

    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Err((_, m)) = r
            && let Ok(mut v) = self.0.lock()
        {
            v.push(m.detach());
        }
    }
}

/// A producer for records that must not be lost or reordered.
pub fn durable_producer(
    brokers: &str,
    props: &std::collections::BTreeMap<String, String>,
    max_message_bytes: usize,
) -> Result<BaseProducer<Failed>, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.max.bytes", (max_message_bytes + 4096).to_string())
        // Bounded: librdkafka's own queue; `send` reports QueueFull beyond it.
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "65536");
    for (k, v) in props {
        c.set(k, v);
    }
    c.create_with_context(Failed::default())
}

/// Enqueues a record, waiting while librdkafka's bounded queue is full.
pub fn send_blocking(
    p: &BaseProducer<Failed>,
    topic: &str,
    partition: Option<i32>,
    key: &[u8],
    value: &[u8],
) -> Result<(), KafkaError> {
    loop {
        let mut rec = BaseRecord::to(topic).key(key).payload(value);
        if let Some(pt) = partition {
            rec = rec.partition(pt);
        }
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                p.poll(Duration::from_millis(10));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Waits until every enqueued record is acknowledged, re-sending failed ones, for at most
/// `timeout`. `Err` when something is still not delivered.
pub fn flush_all(p: &BaseProducer<Failed>, timeout: Duration) -> io::Result<()> {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let flushed = p.flush(left.max(Duration::from_millis(1)));
        let failed: Vec<OwnedMessage> = p
            .context()
            .0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        if failed.is_empty() && flushed.is_ok() {
            return Ok(());
        }
        for m in &failed {
            let pt = Some(m.partition()).filter(|&x| x >= 0);
            send_blocking(
                p,
                m.topic(),
                pt,
                m.key().unwrap_or_default(),
                m.payload().unwrap_or_default(),
            )
            .map_err(io::Error::other)?;
        }
        if Instant::now() >= until {
            return Err(io::Error::other(format!(
                "{} record(s) not acknowledged within {timeout:?} ({} failed and re-sent)",
                p.in_flight_count(),
                failed.len()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Kafka alert sink.
pub struct KafkaSink {
    producer: BaseProducer<Failed>,
    topic: String,
    timeout: Duration,
}

impl KafkaSink {
    pub fn new(
        brokers: &str,
        topic: &str,
        timeout: Duration,
        props: &std::collections::BTreeMap<String, String>,
    ) -> io::Result<KafkaSink> {
        let producer = durable_producer(brokers, props, 1 << 20)
            .map_err(|e| io::Error::other(format!("kafka sink ({brokers}): {e}")))?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_string(),
            timeout,
        })
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, line: &[u8], rec: &AlertRecord) -> io::Result<()> {
        let key = format!("{:032x}", rec.id);
        let value = line.strip_suffix(b"\n").unwrap_or(line);
        send_blocking(&self.producer, &self.topic, None, key.as_bytes(), value)
            .map_err(|e| io::Error::other(format!("kafka sink, topic {}: {e}", self.topic)))?;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        flush_all(&self.producer, self.timeout)
    }
}
