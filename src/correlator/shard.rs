//! One correlator shard: the window state of the group keys routed to it, its event-time
//! clock, timers, alert suppression and recent evidence. Owned by one thread; nothing here
//! is shared or locked.
//!
//! - **Keys** live in one table per correlation rule, bounded by `max_keys`: beyond it the
//!   stalest of a small random sample is evicted (approximate LRU, as Redis does), counted.
//!   Keys whose newest state has left the window are dropped by an incremental sweep.
//! - **Time**: the shard's clock is its watermark, the newest event time seen minus the allowed
//!   lateness. Hits older than the watermark are *late*: counted, and still applied. Timers
//!   (episode ends, open alerts closing) fire when the watermark passes them; when traffic
//!   stops, the caller advances the watermark on the wall clock ([`Shard::advance_to`]), and at
//!   the end of a replay it flushes everything ([`Shard::flush`]).
//! - **Suppression** (default policy): a firing key opens an alert; while the key keeps firing
//!   within a timespan of its last hit, the open alert is updated (count, last seen, evidence)
//!   instead of a new one being raised. When the key has been quiet for a timespan the alert
//!   closes, and an update is emitted if anything changed since it was raised. One attack, one
//!   alert.
//! - **Evidence**: the raw events of recent hits, in a ring of `evidence_bytes`; each key
//!   remembers where its last hit is and each record where the key's previous one is, so an
//!   alert collects its last `evidence_cap` events without per-key buffers. Old records are
//!   overwritten; an alert then carries fewer events (counted).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use hashbrown::HashMap;

use super::index::KeyIndex;
use super::mem;
use super::window::{self, Decision, Point, Spec, Window};
use super::{CorrId, Correlations, GROUP_SEP, HitBatch, Policy, key_hash};
use crate::sigma::correlation::CorrType;
use crate::sink::alert::Fnv128;

/// An alert (or an update of one) produced by a correlation.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrAlert {
    pub corr: CorrId,
    /// Deterministic: rule, group values, first event time of the firing window.
    pub id: u128,
    /// 0 when raised; 1, 2 ... for updates of the same alert.
    pub revision: u32,
    /// Group values, folded, separated by 0x1F (names are the rule's `group_names`).
    pub group: Vec<u8>,
    /// Events attributed to the alert.
    pub count: u64,
    /// The correlation's metric when it fired (count, distinct values, sum, ...).
    pub metric: f64,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Event time of the decision.
    pub fired_at: i64,
    /// Receive time of the hit that fired it (0 for timer decisions), for latency.
    pub received: i64,
    /// Raw evidence events, oldest first.
    pub evidence: Vec<Vec<u8>>,
}

/// Counters of one shard; the owner folds them into metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub hits: u64,
    pub late: u64,
    pub alerts: u64,
    pub updates: u64,
    pub keys_created: u64,
    pub keys_evicted: u64,
    pub keys_expired: u64,
    /// Values dropped because a key's window held `max_values`.
    pub values_dropped: u64,
    /// Evidence records overwritten before their alert could carry them.
    pub evidence_lost: u64,
}

/// An alert raised and not yet closed.
#[derive(Clone, Debug, PartialEq)]
pub struct Open {
    pub id: u128,
    pub revision: u32,
    pub count: u64,
    pub metric: f64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub fired_at: i64,
    /// Closes when the watermark passes this (last firing + timespan).
    pub until: i64,
    /// Changed since last emitted.
    pub dirty: bool,
    /// The key's group values (for the update).
    pub group: Box<[u8]>,
}

/// The state of one group key, as checkpoints carry it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyState {
    pub key: u64,
    pub window: Window,
    pub last_seen: i64,
    /// Ring offset + 1 of the key's newest evidence record (0: none).
    pub evidence: u64,
    /// Group values, kept for keys that may fire without a hit in hand (timers).
    pub group: Option<Box<[u8]>>,
    pub open: Option<Box<Open>>,
}

/// What few keys need: an open alert, their group values (episode rules).
#[derive(Clone, Debug, Default, PartialEq)]
struct Extra {
    open: Option<Open>,
    group: Option<Box<[u8]>>,
}

/// The keys of one correlation rule. Each key is one fixed-size record in `words`, so a hit
/// touches the index and one record (two cache misses at 10 M keys, the limit at that size):
///
/// ```text
/// [key][evidence][meta: count of timestamps (16 bits) | has-extra (bit 16)][ts × cap]
/// ```
///
/// Immediate `event_count` rules (the common, high-volume case) keep their `cap` newest
/// timestamps inline; every other rule keeps a [`Window`] in `windows`, by slot. The rare
/// keys with an open alert or stored group values have an [`Extra`] in a side table. For
/// `event_count ≥ 6` a live key costs its index bucket (4 bytes + 1 control byte, ~8 bytes
/// at the table's load) plus a 72-byte record.
#[derive(Debug)]
pub struct Store {
    index: KeyIndex,
    words: Vec<i64>,
    /// Words per record: 3 + cap for `event_count`, 3 otherwise.
    stride: usize,
    /// Inline timestamps per record (0: the rule uses `windows`).
    cap: usize,
    windows: Vec<Window>,
    extras: HashMap<u32, Box<Extra>>,
    /// Sweep position.
    hand: usize,
}

const HAS_EXTRA: i64 = 1 << 16;
const LEN_MASK: i64 = 0xFFFF;

impl Store {
    fn new(spec: &Spec) -> Store {
        let counts =
            spec.immediate && spec.kind == CorrType::EventCount && spec.cap <= LEN_MASK as usize;
        let cap = if counts { spec.cap } else { 0 };
        Store {
            index: KeyIndex::new(),
            words: Vec::new(),
            stride: 3 + cap,
            cap,
            windows: Vec::new(),
            extras: HashMap::new(),
            hand: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.words.len() / self.stride
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    #[inline]
    fn rec(&self, slot: usize) -> &[i64] {
        &self.words[slot * self.stride..(slot + 1) * self.stride]
    }

    #[inline]
    fn rec_mut(&mut self, slot: usize) -> &mut [i64] {
        &mut self.words[slot * self.stride..(slot + 1) * self.stride]
    }

    #[inline]
    fn key(&self, slot: usize) -> u64 {
        self.words[slot * self.stride] as u64
    }

    #[inline]
    fn evidence(&self, slot: usize) -> u64 {
        self.words[slot * self.stride + 1] as u64
    }

    #[inline]
    fn set_evidence(&mut self, slot: usize, v: u64) {
        self.words[slot * self.stride + 1] = v as i64;
    }

    /// The slot of `key`.
    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        let (words, stride) = (&self.words, self.stride);
        self.index.find(key, |s| words[s * stride] as u64 == key)
    }

    /// Starts loading the index line `key` probes first (step one of `Shard::process`'s
    /// pipeline).
    #[inline]
    fn prefetch_index(&self, key: u64) {
        self.index.prefetch(key);
    }

    /// Starts loading the state of `key`'s record, if it has one (step two: the index line
    /// arrived meanwhile). A hint only: the record is confirmed when the hit is applied.
    #[inline]
    fn prefetch_record(&self, key: u64) {
        let Some(slot) = self.index.peek(key).filter(|&s| s < self.len()) else {
            return;
        };
        if self.cap == 0 {
            mem::prefetch(self.windows.as_ptr().wrapping_add(slot));
        }
        let first = self.words.as_ptr().wrapping_add(slot * self.stride);
        mem::prefetch(first);
        // A record longer than a line spans two (72 bytes for `event_count ≥ 6`); the
        // timestamps are what the hit reads, so load its last word's line as well.
        mem::prefetch(first.wrapping_add(self.stride - 1));
    }

    /// Points `key`'s entry at `slot` (inserting it if new).
    fn index_set(&mut self, key: u64, slot: usize) {
        let (words, stride) = (&self.words, self.stride);
        if !self
            .index
            .set(key, slot, |s| words[s * stride] as u64 == key)
        {
            self.index.insert(key, slot);
        }
    }

    fn index_remove(&mut self, key: u64) {
        let (words, stride) = (&self.words, self.stride);
        self.index.remove(key, |s| words[s * stride] as u64 == key);
    }

    /// Adds a record for `key`, which has none.
    fn push(&mut self, key: u64, spec: &Spec) -> usize {
        let slot = self.push_record(key, spec);
        self.index.insert(key, slot);
        slot
    }

    fn push_record(&mut self, key: u64, spec: &Spec) -> usize {
        let slot = self.len();
        self.words.extend_from_slice(&[key as i64, 0, 0]);
        self.words.resize(self.words.len() + self.cap, 0);
        if self.cap == 0 {
            self.windows.push(Window::new(spec));
        }
        slot
    }

    fn remove(&mut self, slot: usize) {
        let last = self.len() - 1;
        let key = self.key(slot);
        // The index entry first, while the record still names the key.
        self.index_remove(key);
        self.extras.remove(&(slot as u32));
        if slot != last {
            let (s, st) = (self.stride, slot * self.stride);
            self.words.copy_within(last * s..(last + 1) * s, st);
            if let Some(e) = self.extras.remove(&(last as u32)) {
                self.extras.insert(slot as u32, e);
            }
            let moved = self.key(slot);
            self.index_set(moved, slot);
        }
        self.words.truncate(last * self.stride);
        if self.cap == 0 {
            self.windows.swap_remove(slot);
        }
    }

    /// The newest event time a slot's state holds.
    fn newest(&self, slot: usize) -> i64 {
        if self.cap == 0 {
            return self.windows[slot].newest();
        }
        let r = self.rec(slot);
        let n = (r[2] & LEN_MASK) as usize;
        if n == 0 { i64::MIN } else { r[3 + n - 1] }
    }

    fn due(&self, slot: usize, spec: &Spec) -> Option<i64> {
        if self.cap == 0 {
            self.windows[slot].due(spec)
        } else {
            None
        }
    }

    #[inline]
    fn extra(&self, slot: usize) -> Option<&Extra> {
        if self.rec(slot)[2] & HAS_EXTRA == 0 {
            return None;
        }
        self.extras.get(&(slot as u32)).map(|b| &**b)
    }

    fn open(&self, slot: usize) -> Option<&Open> {
        self.extra(slot).and_then(|e| e.open.as_ref())
    }

    fn open_mut(&mut self, slot: usize) -> Option<&mut Open> {
        if self.rec(slot)[2] & HAS_EXTRA == 0 {
            return None;
        }
        self.extras
            .get_mut(&(slot as u32))
            .and_then(|e| e.open.as_mut())
    }

    fn take_open(&mut self, slot: usize) -> Option<Open> {
        if self.rec(slot)[2] & HAS_EXTRA == 0 {
            return None;
        }
        self.extras
            .get_mut(&(slot as u32))
            .and_then(|e| e.open.take())
    }

    fn group(&self, slot: usize) -> Option<&[u8]> {
        self.extra(slot).and_then(|e| e.group.as_deref())
    }

    fn extra_mut(&mut self, slot: usize) -> &mut Extra {
        self.rec_mut(slot)[2] |= HAS_EXTRA;
        self.extras.entry(slot as u32).or_default()
    }

    /// Adds a point to slot `slot`'s window; returns the decision. `horizon`: see
    /// [`Window::add`].
    #[inline]
    fn add(
        &mut self,
        slot: usize,
        spec: &Spec,
        p: Point,
        horizon: i64,
        dropped: &mut u64,
    ) -> Option<Decision> {
        if self.cap == 0 {
            return self.windows[slot].add(spec, p, horizon, dropped);
        }
        let r = self.rec_mut(slot);
        let len = (r[2] & LEN_MASK) as usize;
        let (n, d) = window::times_insert(&mut r[3..], len, p.time);
        r[2] = (r[2] & !LEN_MASK) | n as i64;
        *dropped += d as u64;
        Some(window::times_decide(spec, &r[3..3 + n], p.time))
    }

    fn reset(&mut self, slot: usize, spec: &Spec) {
        if self.cap == 0 {
            self.windows[slot].reset(spec);
        } else {
            self.rec_mut(slot)[2] &= !LEN_MASK;
        }
    }

    fn expire(&mut self, slot: usize, spec: &Spec, now: i64) -> Option<Decision> {
        if self.cap == 0 {
            self.windows[slot].expire(spec, now)
        } else {
            None
        }
    }

    /// A slot as a checkpoint record.
    pub fn export(&self, slot: usize) -> KeyState {
        let window = if self.cap == 0 {
            self.windows[slot].clone()
        } else {
            let r = self.rec(slot);
            Window::Times(r[3..3 + (r[2] & LEN_MASK) as usize].to_vec())
        };
        let extra = self.extra(slot);
        KeyState {
            key: self.key(slot),
            last_seen: window.newest(),
            window,
            evidence: self.evidence(slot),
            group: extra.and_then(|e| e.group.clone()),
            open: extra.and_then(|e| e.open.clone()).map(Box::new),
        }
    }

    /// Puts a checkpoint record back.
    fn import(&mut self, k: KeyState, spec: &Spec) {
        // A key twice in a checkpoint: the index names the later record.
        let slot = self.push_record(k.key, spec);
        self.index_set(k.key, slot);
        self.set_evidence(slot, k.evidence);
        if k.group.is_some() || k.open.is_some() {
            let e = self.extra_mut(slot);
            e.open = k.open.map(|o| *o);
            e.group = k.group;
        }
        match k.window {
            Window::Times(v) if self.cap > 0 => {
                let n = v.len().min(self.cap);
                let r = self.rec_mut(slot);
                r[3..3 + n].copy_from_slice(&v[v.len() - n..]);
                r[2] = (r[2] & !LEN_MASK) | n as i64;
            }
            w if self.cap == 0 => self.windows[slot] = w,
            // A rule whose shape changed has a new fingerprint; keep the key empty.
            _ => {}
        }
    }

    /// Heap bytes held per the containers' capacities (for the bytes-per-key figure).
    pub fn heap_bytes(&self) -> usize {
        let table = self.index.capacity() * std::mem::size_of::<u64>();
        let windows: usize = self
            .windows
            .iter()
            .map(|x| std::mem::size_of::<Window>() + x.heap_bytes())
            .sum();
        table + self.words.capacity() * 8 + windows + self.extras.len() * 64
    }
}

/// Recent raw events, for evidence. Records: `[len u32][prev u64][key u64][time i64][bytes]`, at
/// monotonically increasing offsets; a record is readable while `offset + size` has not
/// been overwritten (`offset >= written − capacity`).
#[derive(Debug)]
pub struct EvidenceRing {
    buf: Vec<u8>,
    written: u64,
}

const REC_HEADER: usize = 28;

/// How many records older than an alert's window `EvidenceRing::collect` walks past, in
/// case a late event of the window lies behind them.
const LATE_LOOKBACK: usize = 64;

impl EvidenceRing {
    pub fn new(bytes: usize) -> EvidenceRing {
        EvidenceRing {
            buf: vec![0; bytes.max(4096)],
            written: 0,
        }
    }

    fn cap(&self) -> u64 {
        self.buf.len() as u64
    }

    fn put(&mut self, at: u64, data: &[u8]) {
        let cap = self.buf.len();
        let mut pos = (at % cap as u64) as usize;
        let mut rest = data;
        while !rest.is_empty() {
            let n = rest.len().min(cap - pos);
            self.buf[pos..pos + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            pos = (pos + n) % cap;
        }
    }

    fn get(&self, at: u64, out: &mut [u8]) {
        let cap = self.buf.len();
        let mut pos = (at % cap as u64) as usize;
        let mut done = 0;
        while done < out.len() {
            let n = (out.len() - done).min(cap - pos);
            out[done..done + n].copy_from_slice(&self.buf[pos..pos + n]);
            done += n;
            pos = (pos + n) % cap;
        }
    }

    /// Stores `raw` for `key` after `prev` (the key's previous record + 1, or 0); returns
    /// the new record's offset + 1. Events longer than a quarter of the ring are cut.
    pub fn push(&mut self, key: u64, prev: u64, time: i64, raw: &[u8]) -> u64 {
        let raw = &raw[..raw.len().min(self.buf.len() / 4)];
        let at = self.written;
        let mut h = [0u8; REC_HEADER];
        h[..4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        h[4..12].copy_from_slice(&prev.to_le_bytes());
        h[12..20].copy_from_slice(&key.to_le_bytes());
        h[20..28].copy_from_slice(&time.to_le_bytes());
        self.put(at, &h);
        self.put(at + REC_HEADER as u64, raw);
        self.written += (REC_HEADER + raw.len()) as u64;
        at + 1
    }

    /// The newest `max` records of `key` with time in `since..=until`, oldest first; and
    /// whether older ones were already overwritten (0 or 1). `until` keeps out events after
    /// the judged window: the event that closed an episode, a point later than a late one.
    pub fn collect(
        &self,
        key: u64,
        mut next: u64,
        max: usize,
        since: i64,
        until: i64,
    ) -> (Vec<Vec<u8>>, u64) {
        let mut out = Vec::new();
        let mut lost = 0;
        // Records before `since` walked past so far (see below).
        let mut older = 0;
        while next != 0 && out.len() < max {
            let at = next - 1;
            if at + self.cap() < self.written + REC_HEADER as u64 {
                // Lost only if the record could have been in the window.
                lost += u64::from(older == 0);
                break;
            }
            let mut h = [0u8; REC_HEADER];
            self.get(at, &mut h);
            let len = u32::from_le_bytes(h[..4].try_into().expect("4")) as u64;
            let prev = u64::from_le_bytes(h[4..12].try_into().expect("8"));
            let k = u64::from_le_bytes(h[12..20].try_into().expect("8"));
            let t = i64::from_le_bytes(h[20..28].try_into().expect("8"));
            if k != key
                || at + REC_HEADER as u64 + len + self.cap() < self.written + REC_HEADER as u64
            {
                lost += u64::from(older == 0);
                break;
            }
            next = prev;
            if t < since {
                // Records are newest first along the chain, but late events break that
                // order: look a little further, then stop. Walking on to the end of the
                // chain cost a walk through every record of the key still in the ring for
                // each alert (an `lt` rule on a busy key: 36 times slower).
                older += 1;
                if older > LATE_LOOKBACK {
                    break;
                }
                continue;
            }
            if t > until {
                continue;
            }
            let mut b = vec![0u8; len as usize];
            self.get(at + REC_HEADER as u64, &mut b);
            out.push(b);
        }
        out.reverse();
        (out, lost)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Restores a ring from a checkpoint.
    pub fn restore(buf: Vec<u8>, written: u64) -> EvidenceRing {
        EvidenceRing { buf, written }
    }
}

/// How many hits ahead `Shard::process` loads records (and twice as far, index lines):
/// enough misses in flight to cover memory latency, few enough that lines are not evicted
/// before use.
const AHEAD: usize = 8;

/// The shard: compiled rules (shared) and the state they drive (its own).
pub struct Shard {
    corrs: Arc<Correlations>,
    st: State,
}

/// Everything mutable of a shard, apart from the rules it runs.
struct State {
    stores: Vec<Store>,
    evidence: EvidenceRing,
    /// (due, correlation, key): lazily deleted; the key's state decides whether still due.
    timers: BinaryHeap<Reverse<(i64, u32, u64)>>,
    max_time: i64,
    lateness: i64,
    stats: ShardStats,
    /// Key visits of the sweep per batch, besides two per hit.
    sweep_budget: usize,
    /// The rule whose table the next sweep starts with.
    sweep_next: usize,
}

impl Shard {
    pub fn new(corrs: Arc<Correlations>, lateness_ms: i64) -> Shard {
        let ev = corrs.options.evidence_bytes;
        let stores = corrs.list.iter().map(|c| Store::new(&c.spec)).collect();
        Shard {
            st: State {
                stores,
                evidence: EvidenceRing::new(ev),
                timers: BinaryHeap::new(),
                max_time: i64::MIN,
                lateness: lateness_ms,
                stats: ShardStats::default(),
                sweep_budget: 64,
                sweep_next: 0,
            },
            corrs,
        }
    }

    pub fn correlations(&self) -> &Arc<Correlations> {
        &self.corrs
    }

    pub fn stats(&self) -> ShardStats {
        self.st.stats
    }

    pub fn stores(&self) -> &[Store] {
        &self.st.stores
    }

    pub fn evidence(&self) -> &EvidenceRing {
        &self.st.evidence
    }

    /// Newest event time seen.
    pub fn max_time(&self) -> i64 {
        self.st.max_time
    }

    /// The event-time clock: newest event time minus the allowed lateness.
    pub fn watermark(&self) -> i64 {
        self.st.watermark()
    }

    /// Live keys over all rules.
    pub fn live_keys(&self) -> usize {
        self.st.stores.iter().map(Store::len).sum()
    }

    /// Heap bytes of all key state (tables and windows; not the evidence ring).
    pub fn state_bytes(&self) -> usize {
        self.st.stores.iter().map(Store::heap_bytes).sum()
    }

    /// Applies a batch of hits; alerts go to `out`.
    pub fn process(&mut self, batch: &HitBatch, out: &mut Vec<CorrAlert>) {
        let c = &*self.corrs;
        let st = &mut self.st;
        let hits = &batch.hits;
        // At 1 M+ live keys every hit misses the cache twice, on its index entry and then on
        // its record, one after the other (issue 4). A software pipeline overlaps those
        // misses across the batch: the index line of hit `i + 2·AHEAD` and the record of hit
        // `i + AHEAD` (whose index line arrived meanwhile) start loading while hit `i` is
        // applied. Hints only: every hit is still looked up, in order, when applied.
        let prefetch_index = |st: &State, i: usize| {
            if let Some(h) = hits.get(i)
                && let Some(s) = st.stores.get(h.corr.0 as usize)
            {
                s.prefetch_index(h.key);
            }
        };
        let prefetch_record = |st: &State, i: usize| {
            if let Some(h) = hits.get(i)
                && let Some(s) = st.stores.get(h.corr.0 as usize)
            {
                s.prefetch_record(h.key);
            }
        };
        for i in 0..2 * AHEAD {
            prefetch_index(st, i);
        }
        for i in 0..AHEAD {
            prefetch_record(st, i);
        }
        for (i, h) in hits.iter().enumerate() {
            prefetch_index(st, i + 2 * AHEAD);
            prefetch_record(st, i + AHEAD);
            st.stats.hits += 1;
            if h.time < st.watermark() {
                st.stats.late += 1;
            }
            if c.get(h.corr).sources.is_empty() {
                continue;
            }
            let p = Point {
                time: h.time,
                slot: h.slot,
                value: h.value,
            };
            st.apply(
                c,
                h.corr,
                h.key,
                batch.bytes(h.group),
                p,
                Some(batch.bytes(h.raw)),
                h.received,
                out,
            );
            if h.time > st.max_time {
                st.max_time = h.time;
            }
        }
        let now = st.watermark();
        st.run_timers(c, now, out);
        st.sweep(c, batch.hits.len());
    }

    /// Puts a key read from a checkpoint into rule `ci`'s table, with its timers.
    pub fn restore_key(&mut self, ci: usize, k: KeyState) {
        let spec = &self.corrs.list[ci].spec;
        if let Some(due) = k.window.due(spec) {
            self.st.timers.push(Reverse((due, ci as u32, k.key)));
        }
        if let Some(o) = &k.open {
            self.st
                .timers
                .push(Reverse((close_due(o.until), ci as u32, k.key)));
        }
        self.st.stores[ci].import(k, spec);
    }

    /// Restores the evidence ring and the clock from a checkpoint.
    pub fn restore_rest(&mut self, ring: EvidenceRing, max_time: i64) {
        self.st.evidence = ring;
        self.st.max_time = self.st.max_time.max(max_time);
    }

    /// Moves the clock to `watermark` (wall-clock advance when traffic stops) and fires
    /// what is due.
    pub fn advance_to(&mut self, watermark: i64, out: &mut Vec<CorrAlert>) {
        let t = watermark.saturating_add(self.st.lateness);
        if t > self.st.max_time {
            self.st.max_time = t;
        }
        let now = self.st.watermark();
        self.st.run_timers(&self.corrs, now, out);
    }

    /// End of input: every timer fires, every open alert closes.
    pub fn flush(&mut self, out: &mut Vec<CorrAlert>) {
        self.st.run_timers(&self.corrs, i64::MAX, out);
    }
}

impl State {
    fn watermark(&self) -> i64 {
        self.max_time.saturating_sub(self.lateness)
    }

    /// Adds one point to a key of correlation `cid` and acts on the decision.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        corrs: &Correlations,
        cid: CorrId,
        key: u64,
        group: &[u8],
        p: Point,
        raw: Option<&[u8]>,
        received: i64,
        out: &mut Vec<CorrAlert>,
    ) {
        let c = corrs.get(cid);
        let spec = &c.spec;
        let ci = cid.0 as usize;
        let slot = match self.stores[ci].find(key) {
            Some(s) => s,
            None => {
                if self.stores[ci].len() >= corrs.options.max_keys {
                    evict_stalest(&mut self.stores[ci], p.time);
                    self.stats.keys_evicted += 1;
                }
                let store = &mut self.stores[ci];
                let slot = store.push(key, spec);
                if !spec.immediate {
                    store.extra_mut(slot).group = Some(Box::from(group));
                }
                self.stats.keys_created += 1;
                slot
            }
        };
        // A point after the open alert's quiet period: that alert is over; close it first.
        if self.stores[ci].open(slot).is_some_and(|o| p.time > o.until) {
            self.close(corrs, cid, slot, out);
        }
        let horizon = self.watermark().saturating_sub(spec.timespan);
        let store = &mut self.stores[ci];
        if let Some(raw) = raw {
            let prev = store.evidence(slot);
            store.set_evidence(slot, self.evidence.push(key, prev, p.time, raw));
        }
        let mut dropped = 0;
        let due_before = store.due(slot, spec);
        let decision = store.add(slot, spec, p, horizon, &mut dropped);
        self.stats.values_dropped += dropped;
        // One timer per episode, pushed when it opens (or moves its start back): pushing one
        // per point grew the heap by every hit of the last timespan (a busy key, a long
        // timespan: without bound).
        if let Some(due) = store.due(slot, spec).filter(|&d| Some(d) != due_before) {
            self.timers.push(Reverse((due, cid.0, key)));
        }
        // An open alert absorbs the key's events while it lasts.
        let mut absorbed = false;
        if let Some(open) = store.open_mut(slot)
            && p.time <= open.until
        {
            open.count += 1;
            open.last_seen = open.last_seen.max(p.time);
            open.dirty = true;
            absorbed = true;
        }
        if let Some(d) = decision.filter(|d| d.fire) {
            if absorbed {
                // Still the same attack: keep the alert open a timespan longer. Its timer,
                // when due, finds `until` later and moves itself there (one timer per open
                // alert, not one per firing event).
                let open = store.open_mut(slot).expect("absorbed");
                open.until = open.until.max(p.time.saturating_add(spec.timespan));
                open.metric = open.metric.max(d.metric);
            } else {
                self.fire(corrs, cid, slot, group, d, received, out);
            }
        }
    }

    /// Raises a new alert for key `slot` of `cid` at `d.at` (and feeds parents).
    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        corrs: &Correlations,
        cid: CorrId,
        slot: usize,
        group: &[u8],
        d: Decision,
        received: i64,
        out: &mut Vec<CorrAlert>,
    ) {
        let at = d.at;
        let c = corrs.get(cid);
        let ci = cid.0 as usize;
        let key = self.stores[ci].key(slot);
        let id = Fnv128::default()
            .write(c.meta.label().as_bytes())
            .write(group)
            .write(&d.first.to_le_bytes())
            .finish();
        // Not the metric: a value_sum of 12 bytes over 3 events is 3 events.
        let count = d.events.max(1);
        // Evidence from the judged window only: an episode ends before `at` (it was
        // judged because time reached `at`), a trailing window ends at `at`.
        let last = if c.spec.immediate { at } else { at - 1 };
        let (evidence, lost) = self.evidence.collect(
            key,
            self.stores[ci].evidence(slot),
            corrs.options.evidence_cap,
            d.first,
            last,
        );
        self.stats.evidence_lost += lost;
        let until = at.saturating_add(c.spec.timespan);
        if c.policy == Policy::Suppress && c.spec.immediate {
            self.stores[ci].extra_mut(slot).open = Some(Open {
                id,
                revision: 0,
                count,
                metric: d.metric,
                first_seen: d.first,
                last_seen: at,
                fired_at: at,
                until,
                dirty: false,
                group: Box::from(group),
            });
            self.timers.push(Reverse((close_due(until), cid.0, key)));
        } else if c.policy == Policy::Reset && c.spec.immediate {
            // Episode rules start afresh after every judgement anyway; resetting here
            // would drop the event that closed the episode and opened the next one.
            self.stores[ci].reset(slot, &c.spec);
        }
        self.stats.alerts += 1;
        if c.emit {
            out.push(CorrAlert {
                corr: cid,
                id,
                revision: 0,
                group: group.to_vec(),
                count,
                metric: d.metric,
                first_seen: d.first,
                last_seen: at,
                fired_at: at,
                received,
                evidence,
            });
        }
        // A parent sees the child's alert as one event at its time, with the child's group.
        for &(parent, pslot) in &c.parents {
            let pc = corrs.get(parent);
            let mut pgroup = Vec::with_capacity(group.len());
            let parts: Vec<&[u8]> = group.split(|&b| b == GROUP_SEP).collect();
            for (g, src) in pc.groups[pslot as usize].iter().enumerate() {
                if g > 0 {
                    pgroup.push(GROUP_SEP);
                }
                if let super::GroupSource::Child(i) = src {
                    pgroup.extend_from_slice(parts.get(*i).copied().unwrap_or_default());
                }
            }
            let pkey = key_hash(corrs.get(parent), &pgroup);
            let point = Point {
                time: at,
                slot: pslot,
                value: None,
            };
            self.apply(corrs, parent, pkey, &pgroup, point, None, received, out);
        }
    }

    /// Closes key `slot`'s open alert; emits a final update if it changed since raised.
    fn close(&mut self, corrs: &Correlations, cid: CorrId, slot: usize, out: &mut Vec<CorrAlert>) {
        let c = corrs.get(cid);
        let ci = cid.0 as usize;
        let Some(open) = self.stores[ci].take_open(slot) else {
            return;
        };
        if !open.dirty {
            return;
        }
        self.stats.updates += 1;
        if c.emit {
            let key = self.stores[ci].key(slot);
            let (evidence, lost) = self.evidence.collect(
                key,
                self.stores[ci].evidence(slot),
                corrs.options.evidence_cap,
                open.first_seen,
                open.last_seen,
            );
            self.stats.evidence_lost += lost;
            out.push(CorrAlert {
                corr: cid,
                id: open.id,
                revision: open.revision + 1,
                group: open.group.to_vec(),
                count: open.count,
                metric: open.metric,
                first_seen: open.first_seen,
                last_seen: open.last_seen,
                fired_at: open.fired_at,
                received: 0,
                evidence,
            });
        }
    }

    /// Fires the timers that the watermark `now` has passed.
    fn run_timers(&mut self, corrs: &Correlations, now: i64, out: &mut Vec<CorrAlert>) {
        while let Some(&Reverse((due, cid, key))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let cid = CorrId(cid);
            let c = corrs.get(cid);
            let ci = cid.0 as usize;
            let Some(slot) = self.stores[ci].find(key) else {
                continue;
            };
            // Close an open alert whose quiet period passed: once the watermark is past
            // `until`, no event that is not late can still be absorbed (an event at `until`
            // itself would be), so the outcome does not depend on when timers run.
            match self.stores[ci].open(slot) {
                Some(o) if o.until < now => self.close(corrs, cid, slot, out),
                // Extended since this timer was set: wait for the new end.
                Some(o) if close_due(o.until) > due => {
                    self.timers.push(Reverse((close_due(o.until), cid.0, key)));
                }
                _ => {}
            }
            // Judge an episode whose end passed.
            if let Some(d) = self.stores[ci].expire(slot, &c.spec, now)
                && d.fire
            {
                let group = self.stores[ci]
                    .group(slot)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                self.fire(corrs, cid, slot, &group, d, 0, out);
            }
        }
    }

    /// Drops a few keys whose state can no longer matter (incremental, bounded work).
    ///
    /// The work is proportional to the batch: `sweep_budget` plus two key visits per hit,
    /// so the sweep outpaces key creation (a hit makes at most one key). With a fixed
    /// budget per batch, a replay (1 MiB batches, thousands of hits each) expired almost no
    /// keys and held every group key ever seen until `max_keys`. Each rule's table gets at
    /// most one full turn per call, starting from a rotating rule, so one busy rule cannot
    /// take all the work.
    fn sweep(&mut self, corrs: &Correlations, hits: usize) {
        let wm = self.watermark();
        if wm == i64::MIN {
            return;
        }
        let mut budget = self.sweep_budget.saturating_add(hits.saturating_mul(2));
        let n = self.stores.len();
        for i in 0..n {
            let ci = (self.sweep_next + i) % n;
            let store = &mut self.stores[ci];
            let mut visits = budget.min(store.len());
            budget -= visits;
            let spec = &corrs.list[ci].spec;
            let horizon = wm.saturating_sub(spec.timespan);
            while visits > 0 && !store.is_empty() {
                visits -= 1;
                if store.hand >= store.len() {
                    store.hand = 0;
                }
                let h = store.hand;
                let dead = store.open(h).is_none()
                    && store.due(h, spec).is_none()
                    && store.newest(h) < horizon;
                if dead {
                    store.remove(h);
                    self.stats.keys_expired += 1;
                } else {
                    store.hand += 1;
                }
            }
            if budget == 0 {
                break;
            }
        }
        self.sweep_next = (self.sweep_next + 1) % n.max(1);
    }
}

/// When the timer closing an open alert with quiet period `until` is due: the first
/// watermark past `until` (see `run_timers`).
fn close_due(until: i64) -> i64 {
    until.saturating_add(1)
}

/// Evicts the stalest of a few sampled keys without an open alert (approximate LRU).
fn evict_stalest(store: &mut Store, now: i64) {
    let n = store.len();
    if n == 0 {
        return;
    }
    let mut x = (now as u64) ^ 0x9E37_79B9_7F4A_7C15 ^ n as u64;
    let mut best = None;
    let mut best_t = i64::MAX;
    for _ in 0..8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % n as u64) as usize;
        let t = store.newest(i);
        if t < best_t && store.open(i).is_none() {
            best_t = t;
            best = Some(i);
        }
    }
    store.remove(best.unwrap_or((x % n as u64) as usize));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::correlator::Hit;
    use crate::engine::{self, EngineConfig};
    use crate::parser::ParserConfig;

    /// Correlations from rule YAML (documents joined by `---`).
    fn correlations(yaml: &str) -> Arc<Correlations> {
        let dir = std::env::temp_dir().join(format!(
            "kuzet-shard-test-{}-{:x}",
            std::process::id(),
            xxhash_rust::xxh3::xxh3_64(yaml.as_bytes())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("r.yml"), yaml).unwrap();
        let cfg = EngineConfig {
            rule_paths: vec![dir.clone()],
            no_default_pipelines: true,
            ..EngineConfig::default()
        };
        let e = engine::build(&cfg, &[&ParserConfig::default()]).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.errors.is_empty(), "{:?}", e.errors);
        e.correlations.clone()
    }

    /// One hit of correlation 0 for group `g` at `time`.
    fn hit(c: &Correlations, b: &mut HitBatch, g: &[u8], time: i64) {
        let cc = c.get(CorrId(0));
        let group = b.push_bytes(g);
        let raw = b.push_bytes(b"raw");
        b.hits.push(Hit {
            corr: CorrId(0),
            slot: 0,
            key: key_hash(cc, g),
            route: 0,
            time,
            received: time,
            value: None,
            group,
            raw,
        });
    }

    const FAIL: &str = "title: fail\nname: fail\nlogsource: {product: t}\ndetection: {sel: {action: fail}, condition: sel}\n---\n";

    /// A busy key keeps one timer: its open alert's (which moves itself as the alert is
    /// extended), not one per absorbed firing event; likewise one per episode, not per point.
    #[test]
    fn a_busy_key_holds_one_timer() {
        for cond in ["{gte: 2}", "{lt: 100000}"] {
            let c = correlations(&format!(
                "{FAIL}title: brute\nname: brute\ncorrelation: {{type: event_count, rules: [fail], group-by: [src], timespan: 10m, condition: {cond}}}"
            ));
            let mut shard = Shard::new(c.clone(), 0);
            let mut out = Vec::new();
            for i in 0..1000 {
                let mut b = HitBatch::default();
                hit(&c, &mut b, b"10.0.0.1", i * 1000);
                shard.process(&b, &mut out);
                assert!(
                    shard.st.timers.len() <= 2,
                    "{cond}: {}",
                    shard.st.timers.len()
                );
            }
            shard.flush(&mut out);
            // gte: one alert and its closing update; lt: the 1 000 s in 10 m episodes.
            assert!(!out.is_empty(), "{cond}");
        }
    }

    #[test]
    fn evidence_ring_chains_and_forgets() {
        let mut r = EvidenceRing::new(4096);
        let mut a = 0;
        let mut b = 0;
        for i in 0..5u8 {
            a = r.push(1, a, i as i64, &[b'a', i]);
            b = r.push(2, b, i as i64, &[b'b', i]);
        }
        let (ev, lost) = r.collect(1, a, 3, 0, i64::MAX);
        assert_eq!(ev, vec![vec![b'a', 2], vec![b'a', 3], vec![b'a', 4]]);
        // Only records up to `until`.
        let (ev, _) = r.collect(1, a, 3, 0, 3);
        assert_eq!(ev, vec![vec![b'a', 1], vec![b'a', 2], vec![b'a', 3]]);
        assert_eq!(lost, 0);
        // Overwrite everything: the old chain is detected as lost, never misread.
        let mut c = 0;
        for i in 0..1000 {
            c = r.push(3, c, i, &[b'c'; 40]);
        }
        let (ev, lost) = r.collect(1, a, 3, 0, i64::MAX);
        assert!(ev.is_empty());
        assert_eq!(lost, 1);
        assert_eq!(r.collect(3, c, 2, 0, i64::MAX).0.len(), 2);
        // Only records at or after `since`.
        assert_eq!(r.collect(3, c, 100, 995, i64::MAX).0.len(), 5);
    }
}
