//! What kuzet writes into Kafka records, and reads back: hits (stage 1 → stage 2) and
//! per-partition state snapshots (stage 2 → changelog topic → the next owner). Pure
//! encoders and decoders, no client: compiled and tested without the `kafka` feature.
//!
//! Both formats are little-endian, versioned by a leading magic, and decoded defensively: a
//! record that does not decode is an error carrying its topic, partition and offset (the
//! caller counts it), never a panic or an allocation larger than the record.
//!
//! * **Hit record** (`hits_topic`): key = the hit's routing hash as 16 hex digits (hash of the
//!   correlation family and the routing group values: all hits of one group key share it, so
//!   the Java-compatible murmur2 of the key sends them to one partition); value =
//!   [`encode_hit`]. The correlation is named by its definition fingerprint, not its index,
//!   so nodes whose rule files list rules in another order still agree.
//! * **Source position** (in every hit): input topic, partition, offset, and the hit's
//!   sequence number within its event. Stage 1 may produce a hit twice (it died after
//!   producing, before committing its input offset; the next owner redoes those records); stage
//!   2 keeps per source partition the last position it applied ([`Marks`], part of the
//!   snapshot) and drops anything at or before it. Hits of one source partition arrive in order
//!   (one owner at a time, idempotent producer), so this is exact.
//! * **Snapshot** (`changelog_topic`, partition = the state's partition): [`Snapshot`] split
//!   into chunks of at most `chunk` bytes (Kafka's record size limit), each keyed
//!   `<partition>/<index>` so compaction keeps the newest of each index. [`Assembler`] reads
//!   a changelog partition from the start and keeps the newest *complete* snapshot.

use std::fmt;

use hashbrown::HashMap;

use crate::correlator::HitBatch;

/// Magic of a hit record (version 1).
pub const HIT_MAGIC: u8 = 0xA1;
const SNAP_MAGIC: &[u8; 8] = b"KZKSNAP1";
const CHUNK_MAGIC: &[u8; 8] = b"KZKCHNK1";

/// Where a hit came from: for duplicate detection in stage 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePos<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Index of the hit among its event's hits.
    pub seq: u32,
}

/// A decoded hit record; `group` and `raw` borrow the record.
#[derive(Clone, Debug, PartialEq)]
pub struct WireHit<'a> {
    pub fingerprint: u64,
    pub slot: u8,
    pub key: u64,
    pub route: u64,
    pub time: i64,
    pub received: i64,
    pub value: Option<u64>,
    pub src: SourcePos<'a>,
    pub group: &'a [u8],
    pub raw: &'a [u8],
}

/// A record that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Not a kuzet hit (or a newer version): the leading byte.
    HitMagic {
        topic: String,
        partition: i32,
        offset: i64,
        byte: Option<u8>,
    },
    /// Ends before its fields do: how many bytes it had.
    HitTruncated {
        topic: String,
        partition: i32,
        offset: i64,
        len: usize,
    },
    /// A snapshot or chunk that does not decode.
    Snapshot {
        partition: i32,
        reason: &'static str,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::HitMagic {
                topic,
                partition,
                offset,
                byte,
            } => write!(
                f,
                "{topic}/{partition}@{offset}: not a kuzet hit record (first byte {byte:?})"
            ),
            WireError::HitTruncated {
                topic,
                partition,
                offset,
                len,
            } => write!(
                f,
                "{topic}/{partition}@{offset}: hit record truncated ({len} bytes)"
            ),
            WireError::Snapshot { partition, reason } => {
                write!(f, "changelog partition {partition}: {reason}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// The record key of a hit with routing hash `route`.
pub fn hit_key(route: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut k = [0u8; 16];
    for (i, b) in k.iter_mut().enumerate() {
        *b = HEX[((route >> (60 - 4 * i)) & 0xf) as usize];
    }
    k
}

/// Appends one hit record to `out`.
pub fn encode_hit(h: &WireHit<'_>, out: &mut Vec<u8>) {
    out.push(HIT_MAGIC);
    out.extend_from_slice(&h.fingerprint.to_le_bytes());
    out.push(h.slot);
    out.extend_from_slice(&h.key.to_le_bytes());
    out.extend_from_slice(&h.route.to_le_bytes());
    out.extend_from_slice(&h.time.to_le_bytes());
    out.extend_from_slice(&h.received.to_le_bytes());
    match h.value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&h.src.partition.to_le_bytes());
    out.extend_from_slice(&h.src.offset.to_le_bytes());
    out.extend_from_slice(&h.src.seq.to_le_bytes());
    put_bytes(out, h.src.topic.as_bytes());
    put_bytes(out, h.group);
    put_bytes(out, h.raw);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// A bounds-checked reader.
struct Rd<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(self.u64()? as i64)
    }
    fn i32(&mut self) -> Option<i32> {
        Some(self.u32()? as i32)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Decodes a hit record read at `topic`/`partition`@`offset` (those name it in errors).
pub fn decode_hit<'a>(
    b: &'a [u8],
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<WireHit<'a>, WireError> {
    if b.first() != Some(&HIT_MAGIC) {
        return Err(WireError::HitMagic {
            topic: topic.into(),
            partition,
            offset,
            byte: b.first().copied(),
        });
    }
    let mut r = Rd { b, at: 1 };
    (|| {
        let fingerprint = r.u64()?;
        let slot = r.u8()?;
        let key = r.u64()?;
        let route = r.u64()?;
        let time = r.i64()?;
        let received = r.i64()?;
        let value = match r.u8()? {
            0 => None,
            _ => Some(r.u64()?),
        };
        let sp = r.i32()?;
        let so = r.i64()?;
        let seq = r.u32()?;
        let st = std::str::from_utf8(r.bytes()?).ok()?;
        let group = r.bytes()?;
        let raw = r.bytes()?;
        Some(WireHit {
            fingerprint,
            slot,
            key,
            route,
            time,
            received,
            value,
            src: SourcePos {
                topic: st,
                partition: sp,
                offset: so,
                seq,
            },
            group,
            raw,
        })
    })()
    .ok_or_else(|| WireError::HitTruncated {
        topic: topic.into(),
        partition,
        offset,
        len: b.len(),
    })
}

/// The newest applied position per source partition: (offset, seq).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks(pub HashMap<(String, i32), (i64, u32)>);

impl Marks {
    /// `true` when `src` is newer than anything applied from its partition (and records it);
    /// `false` for a duplicate to drop.
    pub fn advance(&mut self, src: &SourcePos<'_>) -> bool {
        let now = (src.offset, src.seq);
        // Look up without allocating the key on the hot path.
        if let Some(m) = self
            .0
            .iter_mut()
            .find(|((t, p), _)| *p == src.partition && t == src.topic)
            .map(|(_, m)| m)
        {
            if now <= *m {
                return false;
            }
            *m = now;
            return true;
        }
        self.0.insert((src.topic.to_string(), src.partition), now);
        true
    }
}

/// One partition's state, as written to the changelog.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Increases with every snapshot of the partition, across owners.
    pub epoch: u64,
    /// The offset of the first record *not* reflected in `shard` (where the next owner
    /// resumes).
    pub next_offset: i64,
    pub marks: Marks,
    /// The shard's checkpoint (`correlator::checkpoint`, `KUZETCK2`).
    pub shard: Vec<u8>,
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(self.shard.len() + 64);
        o.extend_from_slice(SNAP_MAGIC);
        o.extend_from_slice(&self.epoch.to_le_bytes());
        o.extend_from_slice(&self.next_offset.to_le_bytes());
        o.extend_from_slice(&(self.marks.0.len() as u32).to_le_bytes());
        let mut marks: Vec<_> = self.marks.0.iter().collect();
        marks.sort();
        for ((t, p), (off, seq)) in marks {
            put_bytes(&mut o, t.as_bytes());
            o.extend_from_slice(&p.to_le_bytes());
            o.extend_from_slice(&off.to_le_bytes());
            o.extend_from_slice(&seq.to_le_bytes());
        }
        put_bytes(&mut o, &self.shard);
        o
    }

    pub fn decode(b: &[u8], partition: i32) -> Result<Snapshot, WireError> {
        let bad = |reason| WireError::Snapshot { partition, reason };
        if b.len() < 8 || &b[..8] != SNAP_MAGIC {
            return Err(bad("not a kuzet snapshot"));
        }
        let mut r = Rd { b, at: 8 };
        (|| {
            let epoch = r.u64()?;
            let next_offset = r.i64()?;
            let n = r.u32()? as usize;
            // Each mark takes at least 20 bytes: never allocate beyond the input.
            if n.saturating_mul(20) > b.len() {
                return None;
            }
            let mut marks = Marks::default();
            for _ in 0..n {
                let t = std::str::from_utf8(r.bytes()?).ok()?.to_string();
                let p = r.i32()?;
                let off = r.i64()?;
                let seq = r.u32()?;
                marks.0.insert((t, p), (off, seq));
            }
            let shard = r.bytes()?.to_vec();
            Some(Snapshot {
                epoch,
                next_offset,
                marks,
                shard,
            })
        })()
        .ok_or_else(|| bad("snapshot truncated"))
    }

    /// The snapshot as changelog records: (key, value) per chunk of at most `chunk` bytes of
    /// payload.
    pub fn chunks(&self, partition: i32, chunk: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let body = self.encode();
        let chunk = chunk.max(1);
        let n = body.len().div_ceil(chunk).max(1);
        (0..n)
            .map(|i| {
                let part = &body[(i * chunk).min(body.len())..((i + 1) * chunk).min(body.len())];
                let mut v = Vec::with_capacity(part.len() + 24);
                v.extend_from_slice(CHUNK_MAGIC);
                v.extend_from_slice(&self.epoch.to_le_bytes());
                v.extend_from_slice(&(i as u32).to_le_bytes());
                v.extend_from_slice(&(n as u32).to_le_bytes());
                v.extend_from_slice(part);
                (format!("{partition}/{i}").into_bytes(), v)
            })
            .collect()
    }
}

/// Rebuilds the newest complete snapshot from a changelog partition read in offset order.
#[derive(Debug, Default)]
pub struct Assembler {
    /// The snapshot being collected: (epoch, chunks so far, chunk count).
    current: Option<(u64, Vec<u8>, u32, u32)>,
    /// The newest complete snapshot's bytes.
    done: Option<Vec<u8>>,
    /// The highest epoch seen in any chunk (complete or not): the next owner writes above it.
    pub max_epoch: u64,
    /// Chunks that did not fit (bad magic, out of order): skipped, counted.
    pub skipped: u64,
}

impl Assembler {
    /// Feeds one changelog record's value.
    pub fn push(&mut self, v: &[u8]) {
        if v.len() < 24 || &v[..8] != CHUNK_MAGIC {
            self.skipped += 1;
            return;
        }
        let epoch = u64::from_le_bytes(v[8..16].try_into().expect("8 bytes"));
        let idx = u32::from_le_bytes(v[16..20].try_into().expect("4 bytes"));
        let n = u32::from_le_bytes(v[20..24].try_into().expect("4 bytes"));
        let body = &v[24..];
        self.max_epoch = self.max_epoch.max(epoch);
        if idx == 0 {
            self.current = Some((epoch, Vec::new(), 0, n));
        }
        match &mut self.current {
            Some((e, buf, next, total)) if *e == epoch && *next == idx && *total == n => {
                buf.extend_from_slice(body);
                *next += 1;
                if *next == *total {
                    let (_, buf, _, _) = self.current.take().expect("just matched");
                    self.done = Some(buf);
                }
            }
            _ => self.skipped += 1,
        }
    }

    /// The newest complete snapshot, decoded.
    pub fn finish(self, partition: i32) -> Result<Option<Snapshot>, WireError> {
        self.done
            .map(|b| Snapshot::decode(&b, partition))
            .transpose()
    }
}

/// The record of hit `h` (of batch `b`, computed under `corrs`) read from `src`.
pub fn from_hit<'a>(
    corrs: &crate::correlator::Correlations,
    b: &'a HitBatch,
    h: &crate::correlator::Hit,
    src: SourcePos<'a>,
) -> WireHit<'a> {
    WireHit {
        fingerprint: corrs.get(h.corr).fingerprint,
        slot: h.slot,
        key: h.key,
        route: h.route,
        time: h.time,
        received: h.received,
        value: h.value,
        src,
        group: b.bytes(h.group),
        raw: b.bytes(h.raw),
    }
}

/// Appends a decoded hit to a batch, as the correlator wants it (`corr` already mapped
/// from the fingerprint by the caller).
pub fn push_hit(batch: &mut HitBatch, h: &WireHit<'_>, corr: crate::correlator::CorrId) {
    let g0 = batch.arena.len() as u32;
    batch.arena.extend_from_slice(h.group);
    let r0 = batch.arena.len() as u32;
    batch.arena.extend_from_slice(h.raw);
    batch.hits.push(crate::correlator::Hit {
        corr,
        slot: h.slot,
        key: h.key,
        route: h.route,
        time: h.time,
        received: h.received,
        value: h.value,
        group: (g0, h.group.len() as u32),
        raw: (r0, h.raw.len() as u32),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit<'a>(topic: &'a str, off: i64, seq: u32) -> WireHit<'a> {
        WireHit {
            fingerprint: 0x1234_5678_9abc_def0,
            slot: 2,
            key: 7,
            route: 0xdead_beef,
            time: 1_700_000_000_000,
            received: 1_700_000_000_500,
            value: Some(42),
            src: SourcePos {
                topic,
                partition: 3,
                offset: off,
                seq,
            },
            group: b"10.0.0.1\x1froot",
            raw: b"Failed password for root from 10.0.0.1",
        }
    }

    #[test]
    fn a_hit_round_trips_and_every_truncation_is_an_error() {
        let h = hit("logs", 99, 1);
        let mut b = Vec::new();
        encode_hit(&h, &mut b);
        assert_eq!(decode_hit(&b, "kuzet-hits", 0, 5).unwrap(), h);
        for n in 0..b.len() {
            assert!(decode_hit(&b[..n], "kuzet-hits", 0, 5).is_err(), "{n}");
        }
        let e = decode_hit(b"{\"x\":1}", "kuzet-hits", 4, 17).unwrap_err();
        assert!(e.to_string().starts_with("kuzet-hits/4@17: "), "{e}");
        assert_eq!(&hit_key(0x0123_4567_89ab_cdef), b"0123456789abcdef");
    }

    #[test]
    fn marks_drop_replayed_hits_and_keep_new_ones() {
        let mut m = Marks::default();
        assert!(m.advance(&hit("logs", 10, 0).src));
        assert!(m.advance(&hit("logs", 10, 1).src));
        // Stage 1 died and its successor redid offsets 10..: duplicates.
        assert!(!m.advance(&hit("logs", 10, 0).src));
        assert!(!m.advance(&hit("logs", 10, 1).src));
        assert!(m.advance(&hit("logs", 11, 0).src));
        // Another source partition has its own mark.
        assert!(m.advance(&hit("other", 1, 0).src));
    }

    #[test]
    fn snapshots_survive_chunking_compaction_leftovers_and_torn_writes() {
        let mut marks = Marks::default();
        marks.advance(&hit("logs", 5, 0).src);
        let s1 = Snapshot {
            epoch: 1,
            next_offset: 10,
            marks: marks.clone(),
            shard: vec![7; 1000],
        };
        let s2 = Snapshot {
            epoch: 2,
            next_offset: 20,
            marks,
            shard: vec![9; 100],
        };
        let s3_torn = Snapshot {
            epoch: 3,
            next_offset: 30,
            marks: Marks::default(),
            shard: vec![1; 1000],
        };
        let mut a = Assembler::default();
        for (_, v) in s1.chunks(0, 256) {
            a.push(&v);
        }
        for (_, v) in s2.chunks(0, 256) {
            a.push(&v);
        }
        // The owner died after writing two chunks of snapshot 3.
        for (_, v) in s3_torn.chunks(0, 256).into_iter().take(2) {
            a.push(&v);
        }
        a.push(b"garbage");
        assert_eq!(a.max_epoch, 3);
        assert_eq!(a.finish(0).unwrap(), Some(s2.clone()));
        // After compaction only the newest record per key is left: a later chunk of s1 may
        // come before s2's chunks; it is skipped.
        let mut a = Assembler::default();
        a.push(&s1.chunks(0, 256)[3].1);
        for (_, v) in s2.chunks(0, 256) {
            a.push(&v);
        }
        assert_eq!(a.finish(0).unwrap(), Some(s2));
        assert_eq!(Assembler::default().finish(0).unwrap(), None);
        assert!(Snapshot::decode(b"KZKSNAP1\x01", 0).is_err());
    }
}
