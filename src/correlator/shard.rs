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

use super::window::{Decision, Point, Window};
use super::{CorrId, Correlations, GROUP_SEP, HitBatch, Policy, key_hash};
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

/// The state of one group key.
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

/// The keys of one correlation rule.
#[derive(Debug, Default)]
pub struct Store {
    pub index: HashMap<u64, u32>,
    pub keys: Vec<KeyState>,
    /// Sweep position.
    hand: usize,
}

impl Store {
    fn remove(&mut self, slot: usize) -> KeyState {
        let st = self.keys.swap_remove(slot);
        self.index.remove(&st.key);
        if slot < self.keys.len() {
            let moved = self.keys[slot].key;
            self.index.insert(moved, slot as u32);
        }
        st
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

/// The shard.
pub struct Shard {
    corrs: Arc<Correlations>,
    pub stores: Vec<Store>,
    pub evidence: EvidenceRing,
    /// (due, correlation, key): lazily deleted; the key's state decides whether still due.
    timers: BinaryHeap<Reverse<(i64, u32, u64)>>,
    /// Newest event time seen.
    pub max_time: i64,
    /// Allowed lateness, ms.
    pub lateness: i64,
    pub stats: ShardStats,
    /// Key visits of the sweep per batch, besides two per hit.
    sweep_budget: usize,
    /// The rule whose table the next sweep starts with.
    sweep_next: usize,
}

impl Shard {
    pub fn new(corrs: Arc<Correlations>, lateness_ms: i64) -> Shard {
        let n = corrs.len();
        let ev = corrs.options.evidence_bytes;
        Shard {
            corrs,
            stores: (0..n).map(|_| Store::default()).collect(),
            evidence: EvidenceRing::new(ev),
            timers: BinaryHeap::new(),
            max_time: i64::MIN,
            lateness: lateness_ms,
            stats: ShardStats::default(),
            sweep_budget: 64,
            sweep_next: 0,
        }
    }

    pub fn correlations(&self) -> &Arc<Correlations> {
        &self.corrs
    }

    /// The event-time clock: newest event time minus the allowed lateness.
    pub fn watermark(&self) -> i64 {
        self.max_time.saturating_sub(self.lateness)
    }

    /// Live keys over all rules.
    pub fn live_keys(&self) -> usize {
        self.stores.iter().map(|s| s.keys.len()).sum()
    }

    /// Applies a batch of hits; alerts go to `out`.
    pub fn process(&mut self, batch: &HitBatch, out: &mut Vec<CorrAlert>) {
        for h in &batch.hits {
            self.stats.hits += 1;
            if h.time < self.watermark() {
                self.stats.late += 1;
            }
            let c = self.corrs.get(h.corr);
            if c.sources.is_empty() {
                continue;
            }
            let group = batch.bytes(h.group);
            let raw = batch.bytes(h.raw);
            self.apply(
                h.corr,
                h.key,
                group,
                Point {
                    time: h.time,
                    slot: h.slot,
                    value: h.value,
                },
                Some(raw),
                h.received,
                out,
            );
            if h.time > self.max_time {
                self.max_time = h.time;
            }
        }
        self.run_timers(self.watermark(), out);
        self.sweep(batch.hits.len());
    }

    /// Adds one point to a key of correlation `cid` and acts on the decision.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        cid: CorrId,
        key: u64,
        group: &[u8],
        p: Point,
        raw: Option<&[u8]>,
        received: i64,
        out: &mut Vec<CorrAlert>,
    ) {
        let corrs = self.corrs.clone();
        let c = corrs.get(cid);
        let spec = &c.spec;
        let store = &mut self.stores[cid.0 as usize];
        let slot = match store.index.get(&key) {
            Some(&s) => s as usize,
            None => {
                if store.keys.len() >= corrs.options.max_keys {
                    evict_stalest(store, p.time);
                    self.stats.keys_evicted += 1;
                }
                let store = &mut self.stores[cid.0 as usize];
                store.keys.push(KeyState {
                    key,
                    window: Window::new(spec),
                    last_seen: p.time,
                    evidence: 0,
                    group: (!spec.immediate).then(|| Box::from(group)),
                    open: None,
                });
                store.index.insert(key, (store.keys.len() - 1) as u32);
                self.stats.keys_created += 1;
                store.keys.len() - 1
            }
        };
        // A point after the open alert's quiet period: that alert is over; close it first.
        if self.stores[cid.0 as usize].keys[slot]
            .open
            .as_ref()
            .is_some_and(|o| p.time > o.until)
        {
            self.close(cid, slot, out);
        }
        let mut dropped = 0;
        let horizon = self.watermark().saturating_sub(spec.timespan);
        let st = &mut self.stores[cid.0 as usize].keys[slot];
        st.last_seen = st.last_seen.max(p.time);
        if let Some(raw) = raw {
            st.evidence = self.evidence.push(key, st.evidence, p.time, raw);
        }
        let due_before = st.window.due(spec);
        let decision = st.window.add(spec, p, horizon, &mut dropped);
        self.stats.values_dropped += dropped;
        // One timer per episode, pushed when it opens: pushing one per point grew the heap
        // by every hit of the last timespan (a busy key, a long timespan: without bound).
        if let Some(due) = st.window.due(spec).filter(|&d| Some(d) != due_before) {
            self.timers.push(Reverse((due, cid.0, key)));
        }
        // An open alert absorbs the key's events while it lasts.
        let mut absorbed = false;
        if let Some(open) = st.open.as_mut()
            && p.time <= open.until
        {
            open.count += 1;
            open.last_seen = open.last_seen.max(p.time);
            open.dirty = true;
            absorbed = true;
        }
        match decision {
            Some(d) if d.fire => {
                if absorbed {
                    // Still the same attack: keep the alert open a timespan longer.
                    // Its timer, when due, finds `until` later and moves itself there (one
                    // timer per open alert, not one per firing event).
                    let open = st.open.as_mut().expect("absorbed");
                    open.until = open.until.max(p.time.saturating_add(spec.timespan));
                    open.metric = open.metric.max(d.metric);
                } else {
                    self.fire(cid, slot, group, d, received, out);
                }
            }
            _ => {}
        }
    }

    /// Raises a new alert for key `slot` of `cid` at `d.at` (and feeds parents).
    fn fire(
        &mut self,
        cid: CorrId,
        slot: usize,
        group: &[u8],
        d: Decision,
        received: i64,
        out: &mut Vec<CorrAlert>,
    ) {
        let at = d.at;
        let corrs = self.corrs.clone();
        let c = corrs.get(cid);
        let st = &mut self.stores[cid.0 as usize].keys[slot];
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
            st.key,
            st.evidence,
            corrs.options.evidence_cap,
            d.first,
            last,
        );
        self.stats.evidence_lost += lost;
        let until = at.saturating_add(c.spec.timespan);
        let immediate = c.spec.immediate;
        if c.policy == Policy::Suppress && immediate {
            st.open = Some(Box::new(Open {
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
            }));
            self.timers.push(Reverse((close_due(until), cid.0, st.key)));
        } else if c.policy == Policy::Reset && immediate {
            // Episode rules start afresh after every judgement anyway; resetting here
            // would drop the event that closed the episode and opened the next one.
            st.window.reset(&c.spec);
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
            let pkey = key_hash(parent, &pgroup);
            let point = Point {
                time: at,
                slot: pslot,
                value: None,
            };
            self.apply(parent, pkey, &pgroup, point, None, received, out);
        }
    }

    /// Closes key `slot`'s open alert; emits a final update if it changed since raised.
    fn close(&mut self, cid: CorrId, slot: usize, out: &mut Vec<CorrAlert>) {
        let corrs = self.corrs.clone();
        let c = corrs.get(cid);
        let st = &mut self.stores[cid.0 as usize].keys[slot];
        let Some(open) = st.open.take() else { return };
        if !open.dirty {
            return;
        }
        self.stats.updates += 1;
        if c.emit {
            let (evidence, lost) = self.evidence.collect(
                st.key,
                st.evidence,
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
    fn run_timers(&mut self, now: i64, out: &mut Vec<CorrAlert>) {
        while let Some(&Reverse((due, cid, key))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            let cid = CorrId(cid);
            let corrs = self.corrs.clone();
            let c = corrs.get(cid);
            let Some(&slot) = self.stores[cid.0 as usize].index.get(&key) else {
                continue;
            };
            let slot = slot as usize;
            // Close an open alert whose quiet period passed: once the watermark is past
            // `until`, no event that is not late can still be absorbed (an event at `until`
            // itself would be), so the outcome does not depend on when timers run.
            match self.stores[cid.0 as usize].keys[slot].open.as_ref() {
                Some(o) if o.until < now => self.close(cid, slot, out),
                // Extended since this timer was set: wait for the new end.
                Some(o) if close_due(o.until) > due => {
                    self.timers.push(Reverse((close_due(o.until), cid.0, key)));
                }
                _ => {}
            }
            // Judge an episode whose end passed.
            let st = &mut self.stores[cid.0 as usize].keys[slot];
            if let Some(d) = st.window.expire(&c.spec, now)
                && d.fire
            {
                let group = st.group.clone().unwrap_or_default();
                self.fire(cid, slot, &group, d, 0, out);
            }
        }
    }

    /// Puts a key read from a checkpoint into rule `ci`'s table, with its timers.
    pub fn restore_key(&mut self, ci: usize, k: KeyState) {
        let spec = &self.corrs.list[ci].spec;
        if let Some(due) = k.window.due(spec) {
            self.timers.push(Reverse((due, ci as u32, k.key)));
        }
        if let Some(o) = &k.open {
            self.timers
                .push(Reverse((close_due(o.until), ci as u32, k.key)));
        }
        let store = &mut self.stores[ci];
        store.index.insert(k.key, store.keys.len() as u32);
        store.keys.push(k);
    }

    /// Moves the clock to `watermark` (wall-clock advance when traffic stops) and fires
    /// what is due.
    pub fn advance_to(&mut self, watermark: i64, out: &mut Vec<CorrAlert>) {
        let t = watermark.saturating_add(self.lateness);
        if t > self.max_time {
            self.max_time = t;
        }
        self.run_timers(self.watermark(), out);
    }

    /// End of input: every timer fires, every open alert closes.
    pub fn flush(&mut self, out: &mut Vec<CorrAlert>) {
        self.run_timers(i64::MAX, out);
    }

    /// Drops a few keys whose state can no longer matter (incremental, bounded work).
    ///
    /// The work is proportional to the batch: `sweep_budget` plus two key visits per hit,
    /// so the sweep outpaces key creation (a hit makes at most one key). With a fixed
    /// budget per batch, a replay (1 MiB batches, thousands of hits each) expired almost no
    /// keys and held every group key ever seen until `max_keys`. Each rule's table gets at
    /// most one full turn per call, starting from a rotating rule, so one busy rule cannot
    /// take all the work.
    fn sweep(&mut self, hits: usize) {
        let wm = self.watermark();
        if wm == i64::MIN {
            return;
        }
        let mut budget = self.sweep_budget.saturating_add(hits.saturating_mul(2));
        let n = self.stores.len();
        for i in 0..n {
            let ci = (self.sweep_next + i) % n;
            let store = &mut self.stores[ci];
            let mut visits = budget.min(store.keys.len());
            budget -= visits;
            let span = self.corrs.list[ci].spec.timespan;
            while visits > 0 && !store.keys.is_empty() {
                visits -= 1;
                if store.hand >= store.keys.len() {
                    store.hand = 0;
                }
                let st = &store.keys[store.hand];
                let dead = st.open.is_none()
                    && st.window.due(&self.corrs.list[ci].spec).is_none()
                    && st.last_seen < wm.saturating_sub(span)
                    && st.window.newest() < wm.saturating_sub(span);
                if dead {
                    store.remove(store.hand);
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

/// Evicts the stalest of a few sampled keys (approximate LRU).
fn evict_stalest(store: &mut Store, now: i64) {
    let n = store.keys.len();
    if n == 0 {
        return;
    }
    let mut x = (now as u64) ^ 0x9E37_79B9_7F4A_7C15 ^ n as u64;
    let mut best = 0;
    let mut best_t = i64::MAX;
    for _ in 0..8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % n as u64) as usize;
        let t = store.keys[i].last_seen;
        if t < best_t && store.keys[i].open.is_none() {
            best_t = t;
            best = i;
        }
    }
    store.remove(best);
}

#[cfg(test)]
mod tests {
    use super::*;

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
