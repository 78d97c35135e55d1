//! Per-key window state of one correlation, and the decision whether it fires.
//!
//! Time is event time in milliseconds. Two ways of deciding, chosen per rule at load time:
//!
//! * **On the event** (conditions that adding events can make true: `gt`, `gte`, ranges with
//!   a lower bound, temporal conditions without `not`): the window is the trailing
//!   `(t − T, t]` ending at the event just added, and the rule fires on the event that makes
//!   the condition true.
//! * **At the window's end** (`lt`, `lte`, `eq`, `neq` alone, and expressions with `not`,
//!   i.e. absence): an *episode* opens at the first event of the key, covers `[t0, t0 + T)`,
//!   and is judged when event time passes `t0 + T` (a timer; or the first event past the
//!   end). The next event opens the next episode. An event arriving out of order before the
//!   open episode's start begins it instead, if the episode's points stay within T of it.
//!
//! State is the minimum each decision needs: for `event_count ≥ N`, the last N timestamps
//! (the largest bound + 1 for other comparisons; `neq`: up to `max_values`); for
//! `value_count ≥ N`, the N most recently seen distinct values (bound + 1 likewise); for
//! `temporal`, the last time of each referenced rule; for `temporal_ordered`,
//! the best chains per stage (see [`Window::Chains`]); for value aggregates, the (time, value)
//! pairs a window still to be judged can hold (back to the watermark − T, so that a point
//! arriving late within the allowed lateness is judged on its whole window), bounded by
//! `max_values` (oldest dropped first, counted by the caller).
//!
//! In time order every decision is exact. Out of order, the first three keep too little to
//! be: a late point is judged on what is kept (the last N times, the last time of each
//! value or rule), so a window it completes may be missed (`a@0, a@20, b@5` late, for
//! `temporal [a, b]`: `a@0` is forgotten). Keeping everything back to the watermark − T
//! would make them exact at a memory cost per key (`tests/oracle/SEMANTICS.md`, part 6).

use crate::sigma::correlation::{BoolExpr, CmpOp, CorrType};

/// Everything about a correlation that window state needs, decided at load time.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: CorrType,
    /// T, in milliseconds.
    pub timespan: i64,
    /// The comparisons (one, or two for a range). Empty when `expr` decides.
    pub cmps: Vec<(CmpOp, f64)>,
    /// Extended condition, over referenced-rule slots (`Rule(name)` holds the slot index).
    pub expr: Option<BoolExpr>,
    /// Decide on each event (else at the end of an episode).
    pub immediate: bool,
    /// Most items kept per key: timestamps for `event_count`, distinct values for
    /// `value_count`, (time, value) pairs for aggregates.
    pub cap: usize,
    /// For `value_percentile` (median: 50).
    pub percentile: f64,
    /// Number of referenced rules.
    pub slots: usize,
}

impl Spec {
    /// Builds the decision fields from the rule's condition: immediate when the condition
    /// has a lower bound and no `not`; the item cap from the bound.
    pub fn new(
        kind: CorrType,
        timespan: i64,
        cmps: Vec<(CmpOp, f64)>,
        expr: Option<BoolExpr>,
        percentile: Option<f64>,
        slots: usize,
        max_values: usize,
    ) -> Spec {
        let lower = cmps
            .iter()
            .any(|(op, _)| matches!(op, CmpOp::Gt | CmpOp::Gte));
        let immediate = match &expr {
            Some(e) => !e.has_not(),
            None => lower,
        };
        // Counting up to the largest bound + 1 decides every comparison; `gte: n` needs n.
        // Except that `neq` also fires on every larger count, and the alert reports the
        // count it fired with: count up to `max_values` then.
        let bound = if cmps.iter().any(|(op, _)| *op == CmpOp::Neq) {
            usize::MAX
        } else {
            cmps.iter()
                .map(|(op, n)| match op {
                    CmpOp::Gte => n.max(0.0).ceil() as usize,
                    _ => n.max(0.0).floor() as usize + 1,
                })
                .max()
                .unwrap_or(1)
        };
        let cap = match kind {
            CorrType::EventCount | CorrType::ValueCount => bound.min(max_values).max(1),
            _ => max_values.max(1),
        };
        let percentile = match kind {
            CorrType::ValueMedian => 50.0,
            _ => percentile.unwrap_or(50.0),
        };
        Spec {
            kind,
            timespan,
            cmps,
            expr,
            immediate,
            cap,
            percentile,
            slots,
        }
    }

    pub fn holds(&self, metric: f64) -> bool {
        !self.cmps.is_empty() && self.cmps.iter().all(|(op, n)| op.eval(metric, *n))
    }
}

/// What one hit contributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub time: i64,
    /// Which referenced rule matched (temporal types).
    pub slot: u8,
    /// `value_count`: hash of the folded value; aggregates: the number (`f64::to_bits`).
    /// `None` when the event has no (numeric) value: it still counts as an event.
    pub value: Option<u64>,
}

/// The window state of one key.
#[derive(Clone, Debug, PartialEq)]
pub enum Window {
    /// Ascending timestamps, at most `cap`.
    Times(Vec<i64>),
    /// (value hash, last time seen), at most `cap`.
    Distinct(Vec<(u64, i64)>),
    /// Last time each slot was seen (`i64::MIN`: never).
    Slots(Vec<i64>),
    /// `temporal_ordered`, `k` = slots, `2·k²` cells: `dp[c * k + s]` = (start, last) of the
    /// chain with the latest start that matched `c + 1` stages in rule order and ended at
    /// slot `s`; `dp[k² + c * k + s]` = the same among chains that ended strictly before
    /// that one's last stage. The second is what a point at the *same* time as the first
    /// one's last stage extends (stages must be strictly later; `a@0, a@5, b@5` is in order
    /// through `a@0`).
    Chains(Vec<(i64, i64)>),
    /// (time, value bits) ascending by time, at most `cap`.
    Values(Vec<(i64, u64)>),
    /// An open episode: its start, and the points seen in it (as above, by type).
    Episode {
        start: i64,
        inner: Box<Window>,
        /// Points in the episode (saturating). 32 bits so that `floor` fits: with it, a
        /// `Window` stays 32 bytes, inline in the store for every key of these rules.
        count: u32,
        /// End of the last episode judged (`i64::MIN`: none): an open episode may move its
        /// start back to a late point, but not into a judged one.
        floor: i64,
    },
}

const NONE: (i64, i64) = (i64::MIN, i64::MIN);

/// The outcome of adding a point or closing an episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub fire: bool,
    /// The metric at that moment (count, distinct count, rules seen, sum ...).
    pub metric: f64,
    /// Earliest event time that counted (for an episode: its start).
    pub first: i64,
    /// When the decision was made, in event time: the end of the trailing window judged
    /// (the point's own time, or a later point's for a late point), or an episode's end
    /// `start + T`. Alerts carry it, not the time of the event that happened to trigger
    /// the decision.
    pub at: i64,
    /// Events that counted: the window's events for `event_count` and the value types
    /// (with or without a numeric value); `value_count` and the temporal types keep no
    /// per-event state, so for them the metric (values, rules seen), at least 1.
    pub events: u64,
}

impl Window {
    /// Fresh state for a key of `spec`.
    pub fn new(spec: &Spec) -> Window {
        let inner = Window::fresh(spec);
        if spec.immediate {
            inner
        } else {
            Window::Episode {
                start: i64::MIN,
                inner: Box::new(inner),
                count: 0,
                floor: i64::MIN,
            }
        }
    }

    fn fresh(spec: &Spec) -> Window {
        match spec.kind {
            CorrType::EventCount => Window::Times(Vec::new()),
            CorrType::ValueCount => Window::Distinct(Vec::new()),
            CorrType::Temporal => Window::Slots(vec![i64::MIN; spec.slots]),
            CorrType::TemporalOrdered => Window::Chains(vec![NONE; 2 * spec.slots * spec.slots]),
            _ => Window::Values(Vec::new()),
        }
    }

    /// Whether this state has the shape `spec` needs (kind, slot count, episode or not):
    /// state read from a checkpoint is checked before use, as the code indexes it freely.
    pub fn fits(&self, spec: &Spec) -> bool {
        let k = spec.slots;
        let inner: &Window = match self {
            Window::Episode { inner, .. } if !spec.immediate => inner,
            Window::Episode { .. } => return false,
            _ if !spec.immediate => return false,
            w => w,
        };
        match (inner, spec.kind) {
            (Window::Times(_), CorrType::EventCount)
            | (Window::Distinct(_), CorrType::ValueCount) => true,
            (Window::Slots(v), CorrType::Temporal) => v.len() == k,
            (Window::Chains(v), CorrType::TemporalOrdered) => v.len() == 2 * k * k,
            (
                Window::Values(_),
                CorrType::ValueSum
                | CorrType::ValueAvg
                | CorrType::ValuePercentile
                | CorrType::ValueMedian,
            ) => true,
            _ => false,
        }
    }

    /// Approximate heap bytes held (for the bytes-per-key figure).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Window::Times(v) => v.capacity() * 8,
            Window::Distinct(v) => v.capacity() * 16,
            Window::Slots(v) => v.capacity() * 8,
            Window::Chains(v) => v.capacity() * 16,
            Window::Values(v) => v.capacity() * 16,
            Window::Episode { inner, .. } => std::mem::size_of::<Window>() + inner.heap_bytes(),
        }
    }

    /// The latest time this state still needs to remember, for expiry: a key whose state
    /// has nothing newer than `watermark − T` is dead.
    pub fn newest(&self) -> i64 {
        match self {
            Window::Times(v) => v.last().copied().unwrap_or(i64::MIN),
            Window::Distinct(v) => v.iter().map(|x| x.1).max().unwrap_or(i64::MIN),
            Window::Slots(v) => v.iter().copied().max().unwrap_or(i64::MIN),
            Window::Chains(v) => v.iter().map(|x| x.1).max().unwrap_or(i64::MIN),
            Window::Values(v) => v.last().map(|x| x.0).unwrap_or(i64::MIN),
            Window::Episode { start, .. } => *start,
        }
    }

    /// When an open episode must be judged (`None` when not an episode or none open).
    pub fn due(&self, spec: &Spec) -> Option<i64> {
        match self {
            Window::Episode { start, count, .. } if *count > 0 => {
                Some(start.saturating_add(spec.timespan))
            }
            _ => None,
        }
    }

    /// Adds a point. For immediate rules, returns whether the condition now holds on the
    /// trailing window ending at this point. For episode rules, a point at or past the open
    /// episode's end first closes it: that decision is returned (and the point opens the
    /// next episode); otherwise `None`.
    /// `horizon`: no window still to be judged starts before it (the caller's watermark
    /// − T), so state at or before it may go. `dropped` counts items pushed out by `cap`.
    pub fn add(
        &mut self,
        spec: &Spec,
        p: Point,
        horizon: i64,
        dropped: &mut u64,
    ) -> Option<Decision> {
        if let Window::Episode {
            start,
            inner,
            count,
            floor,
        } = self
        {
            let mut closed = None;
            if *count > 0 && p.time >= start.saturating_add(spec.timespan) {
                closed = Some(judge(
                    spec,
                    inner,
                    *start,
                    start.saturating_add(spec.timespan),
                    u64::from(*count),
                ));
                **inner = Window::fresh(spec);
                *count = 0;
                *floor = start.saturating_add(spec.timespan);
            }
            if *count == 0 {
                *start = p.time;
            } else if p.time < *start
                && p.time >= *floor
                && inner.newest() < p.time.saturating_add(spec.timespan)
            {
                // A point arriving out of order, before the open episode's start: it is the
                // key's first event in time, so the episode begins at it (as it would have
                // in time order), as long as that keeps the episode's points within T and
                // out of the episode already judged. Otherwise it is left out.
                *start = p.time;
            }
            if p.time >= *start {
                *count = count.saturating_add(1);
                insert(spec, inner, p, horizon, dropped);
            }
            return closed;
        }
        insert(spec, self, p, horizon, dropped);
        if let Window::Times(v) = self {
            return Some(times_decide(spec, v, p.time));
        }
        // A point that arrives after later ones also completes the windows ending at those
        // later points (within T of it): judge them too, earliest first.
        let first = evaluate_at(spec, self, p.time);
        if first.fire {
            return Some(first);
        }
        for end in self.later_times(p.time, spec.timespan) {
            let d = evaluate_at(spec, self, end);
            if d.fire {
                return Some(d);
            }
        }
        Some(first)
    }

    /// Stored event times in `(t, t + T)`, ascending (the ends of windows a point at `t`
    /// falls into, besides its own).
    fn later_times(&self, t: i64, span: i64) -> Vec<i64> {
        let within = |x: &i64| *x > t && *x < t + span;
        let mut v: Vec<i64> = match self {
            Window::Times(v) | Window::Slots(v) => v.iter().copied().filter(within).collect(),
            Window::Distinct(v) => v.iter().map(|x| x.1).filter(within).collect(),
            Window::Values(v) => v.iter().map(|x| x.0).filter(within).collect(),
            // In-order chains are judged at the point only.
            Window::Chains(_) | Window::Episode { .. } => Vec::new(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Closes an open episode whose end `watermark` has passed; returns its decision.
    pub fn expire(&mut self, spec: &Spec, watermark: i64) -> Option<Decision> {
        if let Window::Episode {
            start,
            inner,
            count,
            floor,
        } = self
        {
            let end = start.saturating_add(spec.timespan);
            if *count > 0 && watermark >= end {
                let d = judge(spec, inner, *start, end, u64::from(*count));
                **inner = Window::fresh(spec);
                *count = 0;
                *floor = end;
                return Some(d);
            }
        }
        None
    }

    /// Forgets everything (the `reset` policy after firing).
    pub fn reset(&mut self, spec: &Spec) {
        *self = Window::new(spec);
    }
}

/// Inserts `t` into the ascending `ts[..len]`, keeping at most `ts.len()` timestamps (the
/// newest); returns the new length and whether a timestamp was dropped. Used by
/// [`Window::Times`] and by the shard's compact `event_count` store.
pub fn times_insert(ts: &mut [i64], len: usize, t: i64) -> (usize, bool) {
    let cap = ts.len();
    let pos = ts[..len].partition_point(|&x| x <= t);
    if len < cap {
        ts.copy_within(pos..len, pos + 1);
        ts[pos] = t;
        return (len + 1, false);
    }
    if pos == 0 {
        // Older than everything kept: it is the one that goes.
        return (len, true);
    }
    // Drop the oldest, shift the ones before `pos` down, place `t`.
    ts.copy_within(1..pos, 0);
    ts[pos - 1] = t;
    (len, true)
}

/// Number of `ts` (ascending) in `(lo, hi]` and the first of them.
fn times_count(ts: &[i64], lo: i64, hi: i64) -> (usize, i64) {
    let a = ts.partition_point(|&x| x <= lo);
    let b = ts.partition_point(|&x| x <= hi);
    (
        b - a,
        ts.get(a).copied().filter(|_| b > a).unwrap_or(i64::MAX),
    )
}

/// The decision of an immediate `event_count` after a point at `t` was inserted into the
/// ascending `ts`: the window ending at `t`, then (for a late point) those ending at the
/// later stored times within T of it.
pub fn times_decide(spec: &Spec, ts: &[i64], t: i64) -> Decision {
    let at = |end: i64| {
        let (n, first) = times_count(ts, end - spec.timespan, end);
        Decision {
            fire: spec.holds(n as f64),
            metric: n as f64,
            first: if first == i64::MAX { end } else { first },
            at: end,
            events: n as u64,
        }
    };
    let own = at(t);
    if own.fire {
        return own;
    }
    let from = ts.partition_point(|&x| x <= t);
    let to = ts.partition_point(|&x| x < t.saturating_add(spec.timespan));
    let mut prev = t;
    for &end in &ts[from..to] {
        if end != prev {
            let d = at(end);
            if d.fire {
                return d;
            }
            prev = end;
        }
    }
    own
}

/// Puts a point into non-episode state.
fn insert(spec: &Spec, w: &mut Window, p: Point, horizon: i64, dropped: &mut u64) {
    let t = p.time;
    match w {
        Window::Times(v) => {
            let len = v.len();
            if len < spec.cap {
                v.push(0);
            }
            let (n, d) = times_insert(v, len, t);
            v.truncate(n);
            *dropped += d as u64;
        }
        Window::Distinct(v) => {
            let Some(h) = p.value else { return };
            match v.iter_mut().find(|x| x.0 == h) {
                Some(x) => x.1 = x.1.max(t),
                None => {
                    v.push((h, t));
                    if v.len() > spec.cap {
                        // The least recently seen value leaves the window first.
                        let (i, _) = v
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, x)| x.1)
                            .expect("non-empty");
                        v.swap_remove(i);
                        *dropped += 1;
                    }
                }
            }
        }
        Window::Slots(v) => {
            if let Some(x) = v.get_mut(p.slot as usize) {
                *x = (*x).max(t);
            }
        }
        Window::Chains(dp) => {
            let k = spec.slots;
            let s = p.slot as usize;
            if s >= k {
                return;
            }
            let half = k * k;
            // Longest chains first, so this point extends chains that existed before it.
            for c in (0..k).rev() {
                let cand = if c == 0 {
                    Some((t, t))
                } else {
                    (0..s)
                        .flat_map(|j| [dp[(c - 1) * k + j], dp[half + (c - 1) * k + j]])
                        .filter(|&(st, last)| st != i64::MIN && last < t && st > t - spec.timespan)
                        .map(|(st, _)| (st, t))
                        .max_by_key(|x| x.0)
                };
                if let Some(cand) = cand {
                    let (best, prev) = dp.split_at_mut(half);
                    offer(&mut best[c * k + s], &mut prev[c * k + s], cand);
                }
            }
        }
        Window::Values(v) => {
            let bits = p.value.unwrap_or(f64::NAN.to_bits());
            let pos = v.partition_point(|x| x.0 <= t);
            v.insert(pos, (t, bits));
            // Values no window still to be judged can hold. Not "older than the newest
            // value's window": a point arriving late, within the allowed lateness, is
            // judged on its own window, which still needs them.
            let keep_from = v.partition_point(|x| x.0 <= horizon);
            if keep_from > 0 {
                v.drain(..keep_from);
            }
            if v.len() > spec.cap {
                v.remove(0);
                *dropped += 1;
            }
        }
        Window::Episode { .. } => unreachable!("episodes handled by the caller"),
    }
}

/// Offers a chain to one `temporal_ordered` cell: `best` keeps the latest start (ties: the
/// earlier last stage), `prev` the latest start among chains whose last stage is strictly
/// before `best`'s.
fn offer(best: &mut (i64, i64), prev: &mut (i64, i64), cand: (i64, i64)) {
    let later = |a: (i64, i64), b: (i64, i64)| b == NONE || a.0 > b.0 || (a.0 == b.0 && a.1 < b.1);
    if later(cand, *best) {
        let old = std::mem::replace(best, cand);
        if old != NONE && old.1 < cand.1 {
            // `old` had the latest start of all chains so far, and ends earlier.
            *prev = old;
        } else if *prev != NONE && prev.1 >= cand.1 {
            // Only after a late point: `prev` no longer ends before `best`.
            *prev = NONE;
        }
    } else if cand.1 < best.1 && later(cand, *prev) {
        *prev = cand;
    }
}

/// The decision for the trailing window `(end − T, end]`.
fn evaluate_at(spec: &Spec, w: &Window, end: i64) -> Decision {
    judge_window(spec, w, end - spec.timespan, end)
}

/// The decision for a closed episode `[start, end)` that took `count` points.
fn judge(spec: &Spec, w: &Window, start: i64, end: i64, count: u64) -> Decision {
    // Episode windows include their start: shift the exclusive lower bound by one ms.
    let mut d = judge_window(spec, w, start - 1, end - 1);
    if spec.kind == CorrType::EventCount {
        // Every point of the episode is in it: the exact count, whatever `cap` kept.
        d.metric = count as f64;
        d.events = count;
        d.fire = spec.holds(d.metric);
    }
    // The episode is what was judged: it began with the key's first event and ends at
    // `end` whatever the type's state remembers (for temporal types only each rule's
    // last time), so the alert's id, time and evidence follow the episode.
    Decision {
        first: start,
        at: end,
        ..d
    }
}

/// Decides over the events with `lo < time <= hi`.
fn judge_window(spec: &Spec, w: &Window, lo: i64, hi: i64) -> Decision {
    let inw = |t: i64| t > lo && t <= hi;
    let mut first = i64::MAX;
    let mut events = None;
    let metric = match w {
        Window::Times(v) => {
            let (n, f) = times_count(v, lo, hi);
            first = f;
            events = Some(n as u64);
            n as f64
        }
        Window::Distinct(v) => {
            let mut n = 0;
            for &(_, t) in v {
                if inw(t) {
                    n += 1;
                    first = first.min(t);
                }
            }
            n as f64
        }
        Window::Slots(v) => {
            let seen = |i: usize| v.get(i).is_some_and(|&t| inw(t));
            for &t in v {
                if inw(t) {
                    first = first.min(t);
                }
            }
            let n = (0..v.len()).filter(|&i| seen(i)).count();
            if let Some(e) = &spec.expr {
                let ok = e.eval(&|name| name.parse::<usize>().is_ok_and(seen));
                return Decision {
                    fire: ok,
                    metric: n as f64,
                    first: if first == i64::MAX { hi } else { first },
                    at: hi,
                    events: n.max(1) as u64,
                };
            }
            n as f64
        }
        Window::Chains(dp) => {
            // Longest in-order chain whose start is inside the window.
            let k = spec.slots;
            let mut best = 0;
            for c in 0..k {
                for s in (0..k).flat_map(|s| [s, k * k + s]) {
                    let (st, last) = dp[c * k + s];
                    if st != i64::MIN && inw(st) && inw(last) && c + 1 > best {
                        best = c + 1;
                        first = st;
                    } else if st != i64::MIN && inw(st) && inw(last) && c + 1 == best {
                        first = first.min(st);
                    }
                }
            }
            best as f64
        }
        Window::Values(v) => {
            let mut xs: Vec<f64> = Vec::new();
            let mut n = 0;
            for &(t, bits) in v {
                if inw(t) {
                    n += 1;
                    first = first.min(t);
                    let x = f64::from_bits(bits);
                    if x.is_finite() {
                        xs.push(x);
                    }
                }
            }
            events = Some(n);
            match aggregate(spec, &mut xs) {
                Some(m) => m,
                // No numeric value in the window: no metric, never fires (as the reference).
                None => {
                    return Decision {
                        fire: false,
                        metric: f64::NAN,
                        first: if first == i64::MAX { hi } else { first },
                        at: hi,
                        events: n,
                    };
                }
            }
        }
        Window::Episode { .. } => unreachable!("judged through the episode"),
    };
    Decision {
        fire: spec.holds(metric),
        metric,
        first: if first == i64::MAX { hi } else { first },
        at: hi,
        events: events.unwrap_or(metric.max(1.0) as u64),
    }
}

/// sum / avg / median / percentile (linear interpolation between closest ranks, as the
/// reference: position (n − 1)·p/100 over the ascending values).
fn aggregate(spec: &Spec, xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some(match spec.kind {
        CorrType::ValueSum => xs.iter().sum(),
        CorrType::ValueAvg => xs.iter().sum::<f64>() / xs.len() as f64,
        _ => {
            xs.sort_by(|a, b| a.total_cmp(b));
            let pos = (xs.len() - 1) as f64 * spec.percentile / 100.0;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: CorrType, t: i64, cmps: Vec<(CmpOp, f64)>, slots: usize) -> Spec {
        Spec::new(kind, t, cmps, None, None, slots, 10_000)
    }

    fn pt(time: i64) -> Point {
        Point {
            time,
            slot: 0,
            value: None,
        }
    }

    #[test]
    fn event_count_fires_on_the_event_that_makes_it_true() {
        let s = spec(CorrType::EventCount, 10_000, vec![(CmpOp::Gte, 3.0)], 1);
        assert_eq!(s.cap, 3);
        let mut w = Window::new(&s);
        let mut d = 0;
        assert!(!w.add(&s, pt(0), i64::MIN, &mut d).unwrap().fire);
        assert!(!w.add(&s, pt(5_000), i64::MIN, &mut d).unwrap().fire);
        // (t − T, t]: an event exactly T after the first does not see it.
        assert!(!w.add(&s, pt(10_000), i64::MIN, &mut d).unwrap().fire);
        let x = w.add(&s, pt(10_001), i64::MIN, &mut d).unwrap();
        assert!(x.fire);
        assert_eq!(x.metric, 3.0);
        assert_eq!(x.first, 5_000);
    }

    #[test]
    fn out_of_order_points_land_in_place() {
        let s = spec(CorrType::EventCount, 10_000, vec![(CmpOp::Gte, 3.0)], 1);
        let mut w = Window::new(&s);
        let mut d = 0;
        w.add(&s, pt(9_000), i64::MIN, &mut d);
        w.add(&s, pt(1_000), i64::MIN, &mut d);
        // The late point completes the window ending at 9 000: (−1 000, 9 000] holds 3.
        let x = w.add(&s, pt(5_000), i64::MIN, &mut d).unwrap();
        assert!(x.fire);
        assert_eq!(x.first, 1_000);
        assert_eq!(w, Window::Times(vec![1_000, 5_000, 9_000]));
    }

    #[test]
    fn lt_is_decided_at_the_episode_end() {
        let s = spec(CorrType::EventCount, 10_000, vec![(CmpOp::Lt, 3.0)], 1);
        assert!(!s.immediate);
        let mut w = Window::new(&s);
        let mut d = 0;
        assert!(w.add(&s, pt(0), i64::MIN, &mut d).is_none());
        assert!(w.add(&s, pt(4_000), i64::MIN, &mut d).is_none());
        assert_eq!(w.due(&s), Some(10_000));
        assert!(w.expire(&s, 9_999).is_none());
        let x = w.expire(&s, 10_000).unwrap();
        assert!(x.fire);
        assert_eq!(x.metric, 2.0);
        // An event past the end closes the episode and opens the next one.
        w.add(&s, pt(20_000), i64::MIN, &mut d);
        w.add(&s, pt(21_000), i64::MIN, &mut d);
        w.add(&s, pt(22_000), i64::MIN, &mut d);
        let x = w.add(&s, pt(30_000), i64::MIN, &mut d).unwrap();
        assert!(!x.fire);
        assert_eq!(x.metric, 3.0);
    }

    #[test]
    fn value_count_keeps_the_most_recent_distinct_values() {
        let s = spec(CorrType::ValueCount, 60_000, vec![(CmpOp::Gte, 3.0)], 1);
        let mut w = Window::new(&s);
        let mut d = 0;
        let v = |time, h| Point {
            time,
            slot: 0,
            value: Some(h),
        };
        assert!(!w.add(&s, v(0, 1), i64::MIN, &mut d).unwrap().fire);
        assert!(!w.add(&s, v(1_000, 1), i64::MIN, &mut d).unwrap().fire);
        assert!(!w.add(&s, v(2_000, 2), i64::MIN, &mut d).unwrap().fire);
        let x = w.add(&s, v(3_000, 3), i64::MIN, &mut d).unwrap();
        assert!(x.fire);
        assert_eq!(x.metric, 3.0);
    }

    #[test]
    fn temporal_ordered_needs_strictly_later_stages() {
        let s = spec(
            CorrType::TemporalOrdered,
            10_000,
            vec![(CmpOp::Gte, 2.0)],
            2,
        );
        let mut w = Window::new(&s);
        let mut d = 0;
        let at = |time, slot| Point {
            time,
            slot,
            value: None,
        };
        // b before a: no order.
        assert!(!w.add(&s, at(0, 1), i64::MIN, &mut d).unwrap().fire);
        assert!(!w.add(&s, at(1_000, 0), i64::MIN, &mut d).unwrap().fire);
        // a then b at the same time: no order either.
        assert!(!w.add(&s, at(1_000, 1), i64::MIN, &mut d).unwrap().fire);
        assert!(w.add(&s, at(2_000, 1), i64::MIN, &mut d).unwrap().fire);
        // Too late for the chain started at 1 000.
        let mut w = Window::new(&s);
        w.add(&s, at(0, 0), i64::MIN, &mut d);
        assert!(!w.add(&s, at(10_000, 1), i64::MIN, &mut d).unwrap().fire);
    }

    #[test]
    fn absence_fires_when_the_episode_closes_without_the_negated_rule() {
        // Rule names are slot indices once compiled.
        let expr = BoolExpr::And(vec![
            BoolExpr::Rule("0".into()),
            BoolExpr::Not(Box::new(BoolExpr::Rule("1".into()))),
        ]);
        let s = Spec::new(CorrType::Temporal, 5_000, vec![], Some(expr), None, 2, 100);
        assert!(!s.immediate);
        let mut w = Window::new(&s);
        let mut d = 0;
        let at = |time, slot| Point {
            time,
            slot,
            value: None,
        };
        w.add(&s, at(0, 0), i64::MIN, &mut d);
        w.add(&s, at(3_000, 1), i64::MIN, &mut d);
        assert!(!w.expire(&s, 5_000).unwrap().fire);
        w.add(&s, at(20_000, 0), i64::MIN, &mut d);
        assert!(w.expire(&s, 25_000).unwrap().fire);
    }

    /// Every key of a rule without the shard's inline record holds a `Window` inline:
    /// `Episode::floor` fits only because `count` is 32 bits.
    #[test]
    fn a_window_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Window>(), 32);
    }

    #[test]
    fn restored_state_must_fit_its_rule() {
        let ordered = spec(
            CorrType::TemporalOrdered,
            10_000,
            vec![(CmpOp::Gte, 2.0)],
            2,
        );
        assert!(Window::new(&ordered).fits(&ordered));
        // A version-1 layout (k² cells) or another type is refused, not indexed.
        assert!(!Window::Chains(vec![NONE; 4]).fits(&ordered));
        assert!(!Window::Times(Vec::new()).fits(&ordered));
        let lt = spec(CorrType::EventCount, 10_000, vec![(CmpOp::Lt, 3.0)], 1);
        assert!(Window::new(&lt).fits(&lt));
        assert!(!Window::Times(Vec::new()).fits(&lt));
    }

    #[test]
    fn percentiles_interpolate_like_the_reference() {
        let s = Spec::new(
            CorrType::ValuePercentile,
            60_000,
            vec![(CmpOp::Gte, 7.0)],
            None,
            Some(90.0),
            1,
            100,
        );
        let mut xs = vec![1.0, 2.0, 3.0, 10.0];
        assert!((aggregate(&s, &mut xs).unwrap() - 7.9).abs() < 1e-9);
        let m = Spec::new(
            CorrType::ValueMedian,
            60_000,
            vec![(CmpOp::Gte, 2.0)],
            None,
            None,
            1,
            100,
        );
        assert_eq!(aggregate(&m, &mut [1.0, 2.0, 3.0, 10.0]).unwrap(), 2.5);
    }
}

#[cfg(test)]
mod times_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The bounded insert keeps exactly the newest `cap` timestamps, ascending.
        #[test]
        fn keeps_the_newest(cap in 1usize..8, ts in proptest::collection::vec(0i64..50, 0..40)) {
            let mut buf = vec![0i64; cap];
            let mut len = 0;
            for (i, &t) in ts.iter().enumerate() {
                len = times_insert(&mut buf, len, t).0;
                let mut want: Vec<i64> = ts[..=i].to_vec();
                want.sort();
                let want = want[want.len().saturating_sub(cap)..].to_vec();
                prop_assert_eq!(&buf[..len], &want[..]);
            }
        }
    }
}
