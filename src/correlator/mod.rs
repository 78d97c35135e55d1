//! Stage 5: Sigma correlation rules over sliding windows, in event time, on shards.
//!
//! ```text
//! worker: event ──matcher──▶ rule ids ──Correlations::hits_into──▶ HitBatch per shard
//! shard (one thread, owns its state): HitBatch ──Shard::process──▶ CorrAlert
//! ```
//!
//! [`Correlations`] is compiled once from the correlation rules and the detection
//! [`RuleSet`] they reference: references resolved (by id or name), group-by fields resolved
//! per referenced rule (aliases), the window [`window::Spec`] of each rule decided. Only
//! *hits* cross threads: a compact record (which correlation, which referenced rule, the group
//! key's hash, event time, the value, the group values and raw event in the batch's arena),
//! routed to a shard by a stable hash, so all hits of one group key meet in one shard and no
//! shard state is shared. Correlations over correlations (chains) are routed by the root's
//! group key, so a child's alert feeds its parent in the same shard.
//!
//! What lives elsewhere: per-key window logic (`window.rs`), shard state, timers, suppression
//! and evidence (`shard.rs`), checkpoints (`checkpoint.rs`).

pub mod checkpoint;
mod index;
mod mem;
pub mod shard;
pub mod window;

use std::sync::Arc;

use hashbrown::HashMap;
use xxhash_rust::xxh3::Xxh3;

use crate::event::{Event, FieldId, FieldTable, Value};
use crate::matcher::{RuleId, RuleSet};
use crate::sigma::correlation::{BoolExpr, Condition, CorrType, CorrelationRule};
use crate::sigma::{Meta, RuleError};
use window::Spec;

/// Index of a compiled correlation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrId(pub u32);

/// What a referenced rule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Rule(RuleId),
    Corr(CorrId),
}

/// Where a group-by value comes from, per referenced rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSource {
    /// A field of the matched event.
    Field(FieldId),
    /// The n-th group value of a child correlation's alert.
    Child(usize),
}

/// What happens to a key's state after its rule fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// Keep counting; further firings of the key update the open alert instead of raising
    /// new ones, until the key has been quiet for a timespan.
    #[default]
    Suppress,
    /// Forget the key's window: the next alert needs a whole new set of events.
    Reset,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "suppress" => Some(Policy::Suppress),
            "reset" => Some(Policy::Reset),
            _ => None,
        }
    }
}

/// A compiled correlation rule.
#[derive(Debug)]
pub struct Correlation {
    pub meta: Arc<Meta>,
    pub path: Arc<str>,
    pub spec: Spec,
    pub timespan: String,
    pub sources: Vec<Source>,
    /// Output names of the group-by values (alias or field names).
    pub group_names: Vec<String>,
    /// `groups[slot][g]`: where group value `g` comes from for referenced rule `slot`.
    pub groups: Vec<Vec<GroupSource>>,
    /// Per slot, the field aggregated by the value types.
    pub value_field: Vec<Option<FieldId>>,
    /// Indices into `group_names` that route hits (the root's group-by, for chains; none
    /// when the family's roots group differently: the family goes whole to one shard).
    pub route_groups: Vec<usize>,
    /// The chain family: the smallest index in its connected set of chained correlations.
    pub family: u32,
    /// The smallest fingerprint in the family, mixed into the routing hash (stable across
    /// reloads, restarts and reordered rules, unlike `family`).
    pub family_seed: u64,
    pub policy: Policy,
    /// Its alerts are output (no parent references it with `generate: false`).
    pub emit: bool,
    /// Correlations that reference this one: (parent, slot in parent).
    pub parents: Vec<(CorrId, u8)>,
    /// Identity of the definition, for checkpoints: state survives restarts only for
    /// unchanged rules.
    pub fingerprint: u64,
}

/// Knobs of the correlator, from config.
#[derive(Clone, Debug)]
pub struct CorrOptions {
    /// Most values (timestamps, distinct values, (time, value) pairs) kept per key.
    pub max_values: usize,
    /// Most live keys per correlation rule; the stalest are evicted beyond it (counted).
    pub max_keys: usize,
    pub policy: Policy,
    /// Most evidence events carried by an alert.
    pub evidence_cap: usize,
    /// Bytes of recent hit events kept per shard for evidence.
    pub evidence_bytes: usize,
}

impl Default for CorrOptions {
    fn default() -> Self {
        CorrOptions {
            max_values: 10_000,
            max_keys: 10_000_000,
            policy: Policy::Suppress,
            evidence_cap: 10,
            evidence_bytes: 16 << 20,
        }
    }
}

/// All compiled correlations, and the map from detection rules to them.
#[derive(Debug, Default)]
pub struct Correlations {
    pub list: Vec<Correlation>,
    /// Per detection rule: the correlations it feeds and its slot in each.
    by_rule: Vec<Vec<(CorrId, u8)>>,
    /// Per detection rule: whether its own matches are alerts (not only correlation input).
    rule_emits: Vec<bool>,
    pub options: CorrOptions,
}

/// One event's contribution to one correlation. Group values and the raw event are spans of
/// the batch's arena.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub corr: CorrId,
    pub slot: u8,
    /// Hash of (correlation, group values): the key of the window state.
    pub key: u64,
    /// Hash of (family, routing group values): which shard.
    pub route: u64,
    /// Event time, ms.
    pub time: i64,
    /// Receive time, ms (for latency).
    pub received: i64,
    /// See [`window::Point::value`].
    pub value: Option<u64>,
    /// Group values joined by 0x1F, in the arena.
    pub group: (u32, u32),
    /// The raw event, in the arena.
    pub raw: (u32, u32),
}

/// Hits for one shard, with the bytes they refer to.
#[derive(Debug, Default)]
pub struct HitBatch {
    pub hits: Vec<Hit>,
    pub arena: Vec<u8>,
}

impl HitBatch {
    pub fn clear(&mut self) {
        self.hits.clear();
        self.arena.clear();
    }

    pub fn bytes(&self, span: (u32, u32)) -> &[u8] {
        &self.arena[span.0 as usize..(span.0 + span.1) as usize]
    }

    fn push_bytes(&mut self, b: &[u8]) -> (u32, u32) {
        let s = self.arena.len() as u32;
        self.arena.extend_from_slice(b);
        (s, b.len() as u32)
    }
}

/// Scratch space of [`Correlations::hits_into`], reused from event to event.
#[derive(Debug, Default)]
pub struct HitScratch {
    key: Vec<u8>,
    tmp: Vec<u8>,
    /// (correlation, key) pairs the current event already fed.
    seen: Vec<(CorrId, u64)>,
}

/// Why an event produced no hit for a correlation it matched.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HitStats {
    pub hits: u64,
    /// A group-by field was absent: excluded from the correlation, as the reference does.
    pub missing_group_key: u64,
}

/// The separator between group values in keys and arenas.
pub const GROUP_SEP: u8 = 0x1F;

/// Group-by values compare ASCII-case-insensitively (the reference lower-cases text).
fn fold_into(v: &Value<'_>, tmp: &mut Vec<u8>, out: &mut Vec<u8>) {
    match v {
        Value::Str(s) => out.extend(s.iter().map(u8::to_ascii_lowercase)),
        other => {
            let t = other.text(tmp);
            out.extend(t.iter().map(u8::to_ascii_lowercase));
        }
    }
}

/// A numeric value as the reference reads it: numbers, and text that is a JSON number.
fn numeric(v: &Value<'_>) -> Option<f64> {
    match *v {
        Value::Int(i) => Some(i as f64),
        Value::UInt(u) => Some(u as f64),
        Value::Float(f) if f.is_finite() => Some(f),
        Value::Str(s) => {
            // The reference: `json_valid(trim(v))` with a JSON number inside, so around it
            // only JSON whitespace (a no-break space is no whitespace there).
            let t = std::str::from_utf8(s)
                .ok()?
                .trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
            // JSON number grammar: no leading '+', no leading zeros, digits after a '.'.
            let body = t.strip_prefix('-').unwrap_or(t);
            let int_end = body.find(['.', 'e', 'E']).unwrap_or(body.len());
            let int = &body[..int_end];
            let frac = &body[int_end..];
            if int.is_empty()
                || !int.bytes().all(|b| b.is_ascii_digit())
                || (int.len() > 1 && int.starts_with('0'))
            {
                return None;
            }
            if frac.starts_with('.') && !frac.as_bytes().get(1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            t.parse::<f64>().ok().filter(|f| f.is_finite())
        }
        _ => None,
    }
}

fn hash_parts(seed: u64, parts: &[u8]) -> u64 {
    let mut h = Xxh3::with_seed(seed);
    h.update(parts);
    h.digest()
}

impl Correlations {
    /// Compiles correlation rules against the detection rules they reference. Interns the
    /// fields they read into `table` (call before freezing it). Rules that fail are returned
    /// as errors, with every rule that references them.
    pub fn build(
        rules: &[CorrelationRule],
        set: &RuleSet,
        table: &mut FieldTable,
        opts: &CorrOptions,
    ) -> (Correlations, Vec<RuleError>) {
        let mut errors = Vec::new();
        // Names: detection rules, then correlations (by id and by name).
        let mut det: HashMap<&str, RuleId> = HashMap::new();
        for (i, r) in set.rules().iter().enumerate() {
            if let Some(id) = &r.meta.id {
                det.insert(id.as_str(), RuleId(i as u32));
            }
            if let Some(n) = &r.meta.name {
                det.insert(n.as_str(), RuleId(i as u32));
            }
        }
        let mut cor: HashMap<&str, usize> = HashMap::new();
        for (i, c) in rules.iter().enumerate() {
            if let Some(id) = &c.meta.id {
                cor.insert(id.as_str(), i);
            }
            if let Some(n) = &c.meta.name {
                cor.insert(n.as_str(), i);
            }
        }
        // Resolve references; a failed rule fails its referrers (fixpoint).
        // Per correlation: its references, each a source or (Err) a correlation's index;
        // None once it failed.
        type Refs = Vec<(String, Result<Source, usize>)>;
        let mut sources: Vec<Option<Refs>> = Vec::with_capacity(rules.len());
        let err_of = |c: &CorrelationRule, msg: String| {
            RuleError::new(&c.path, Some(c.meta.label()), Some(c.line), msg)
        };
        for c in rules {
            let mut v = Vec::new();
            let mut bad = None;
            for r in &c.rules {
                if let Some(&id) = det.get(r.as_str()) {
                    v.push((r.clone(), Ok(Source::Rule(id))));
                } else if let Some(&ci) = cor.get(r.as_str()) {
                    v.push((r.clone(), Err(ci)));
                } else {
                    bad = Some(format!(
                        "references {r:?}, which is no loaded rule (by id or name)"
                    ));
                    break;
                }
            }
            match bad {
                Some(m) => {
                    errors.push(err_of(c, m));
                    sources.push(None);
                }
                None => sources.push(Some(v)),
            }
        }
        loop {
            let mut changed = false;
            for i in 0..rules.len() {
                let Some(v) = &sources[i] else { continue };
                let broken = v.iter().find_map(|(name, s)| match s {
                    Err(ci) if sources[*ci].is_none() => Some(name.clone()),
                    Err(ci) if *ci == i => Some(name.clone()),
                    _ => None,
                });
                if let Some(name) = broken {
                    errors.push(err_of(
                        &rules[i],
                        format!("references {name:?}, which did not load"),
                    ));
                    sources[i] = None;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Cycles: a correlation reaching itself through others.
        for i in 0..rules.len() {
            let mut stack: Vec<usize> = Vec::new();
            let mut seen = vec![false; rules.len()];
            if let Some(v) = &sources[i] {
                stack.extend(v.iter().filter_map(|(_, s)| s.err()));
            }
            let mut cyclic = false;
            while let Some(j) = stack.pop() {
                if j == i {
                    cyclic = true;
                    break;
                }
                if std::mem::replace(&mut seen[j], true) {
                    continue;
                }
                if let Some(v) = &sources[j] {
                    stack.extend(v.iter().filter_map(|(_, s)| s.err()));
                }
            }
            if cyclic && sources[i].is_some() {
                errors.push(err_of(
                    &rules[i],
                    "references itself through other correlations".into(),
                ));
                sources[i] = None;
            }
        }
        // Compile the rules that are left, in an order where children come first.
        let keep: Vec<usize> = (0..rules.len()).filter(|&i| sources[i].is_some()).collect();
        let id_of: HashMap<usize, CorrId> = keep
            .iter()
            .enumerate()
            .map(|(n, &i)| (i, CorrId(n as u32)))
            .collect();
        let mut list: Vec<Correlation> = Vec::with_capacity(keep.len());
        let mut failed: Vec<usize> = Vec::new();
        for &i in &keep {
            let c = &rules[i];
            let srcs: Vec<(String, Source)> = sources[i]
                .as_ref()
                .expect("kept")
                .iter()
                .map(|(n, s)| {
                    (
                        n.clone(),
                        match s {
                            Ok(s) => *s,
                            Err(ci) => Source::Corr(id_of[ci]),
                        },
                    )
                })
                .collect();
            match compile_one(c, &srcs, rules, &id_of, table, opts) {
                Ok(x) => list.push(x),
                Err(m) => {
                    errors.push(err_of(c, m));
                    failed.push(i);
                    // Keep indices aligned: a placeholder that never receives hits.
                    list.push(placeholder(c, opts));
                }
            }
        }
        // Parents, emission and families.
        let mut by_rule = vec![Vec::new(); set.len()];
        let mut referenced_no_generate = vec![false; set.len()];
        let mut referenced_generate = vec![false; set.len()];
        let mut corr_no_generate = vec![false; list.len()];
        let mut corr_generate = vec![false; list.len()];
        for (ci, c) in list.iter().enumerate() {
            let generate = rules[keep[ci]].generate;
            for (slot, s) in c.sources.iter().enumerate() {
                match s {
                    Source::Rule(r) => {
                        by_rule[r.0 as usize].push((CorrId(ci as u32), slot as u8));
                        if generate {
                            referenced_generate[r.0 as usize] = true;
                        } else {
                            referenced_no_generate[r.0 as usize] = true;
                        }
                    }
                    Source::Corr(p) => {
                        if generate {
                            corr_generate[p.0 as usize] = true;
                        } else {
                            corr_no_generate[p.0 as usize] = true;
                        }
                    }
                }
            }
        }
        let links: Vec<(usize, CorrId, u8)> = list
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| {
                c.sources
                    .iter()
                    .enumerate()
                    .filter_map(move |(slot, s)| match s {
                        Source::Corr(child) => {
                            Some((child.0 as usize, CorrId(ci as u32), slot as u8))
                        }
                        _ => None,
                    })
            })
            .collect();
        for (child, parent, slot) in links {
            list[child].parents.push((parent, slot));
        }
        for (ci, c) in list.iter_mut().enumerate() {
            // pySigma: a rule referenced without `generate: true` only feeds the correlation.
            c.emit = !corr_no_generate[ci] || corr_generate[ci];
        }
        let rule_emits = (0..set.len())
            .map(|r| !referenced_no_generate[r] || referenced_generate[r])
            .collect();
        if let Err(m) = assign_families(&mut list) {
            for (ci, msg) in m {
                errors.push(err_of(&rules[keep[ci]], msg));
                failed.push(keep[ci]);
            }
        }
        for f in failed {
            let ci = id_of[&f].0 as usize;
            list[ci].sources.clear();
        }
        let mut c = Correlations {
            list,
            by_rule,
            rule_emits,
            options: opts.clone(),
        };
        // Rules that failed must not receive hits.
        for v in c.by_rule.iter_mut() {
            v.retain(|(ci, _)| !c.list[ci.0 as usize].sources.is_empty());
        }
        (c, errors)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, id: CorrId) -> &Correlation {
        &self.list[id.0 as usize]
    }

    /// Whether a detection rule's own matches are alerts.
    pub fn rule_emits(&self, r: RuleId) -> bool {
        self.rule_emits.get(r.0 as usize).copied().unwrap_or(true)
    }

    /// Whether a detection rule feeds any correlation.
    pub fn feeds(&self, r: RuleId) -> bool {
        self.by_rule
            .get(r.0 as usize)
            .is_some_and(|v| !v.is_empty())
    }

    /// Appends the hits of one event, which matched `rules`, to the batch of the shard each
    /// goes to. `batches.len()` is the number of shards.
    ///
    /// An event matching several rules referenced by one correlation is one event of each
    /// group it falls in, as in the reference (which counts distinct events): it gives one
    /// hit per (correlation, group key), except for the temporal types, where each rule it
    /// matched is a stage seen.
    #[allow(clippy::too_many_arguments)]
    pub fn hits_into(
        &self,
        rules: &[RuleId],
        ev: &Event<'_>,
        time: i64,
        received: i64,
        batches: &mut [HitBatch],
        scratch: &mut HitScratch,
        stats: &mut HitStats,
    ) {
        scratch.seen.clear();
        for &rule in rules {
            self.rule_hits_into(rule, ev, time, received, batches, scratch, stats);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rule_hits_into(
        &self,
        rule: RuleId,
        ev: &Event<'_>,
        time: i64,
        received: i64,
        batches: &mut [HitBatch],
        scratch: &mut HitScratch,
        stats: &mut HitStats,
    ) {
        let Some(targets) = self.by_rule.get(rule.0 as usize) else {
            return;
        };
        let HitScratch {
            key: key_buf,
            tmp,
            seen,
        } = scratch;
        'next: for &(cid, slot) in targets {
            let c = &self.list[cid.0 as usize];
            // The group values, folded, separated by GROUP_SEP.
            key_buf.clear();
            let mut ends = [0usize; 16];
            for (g, src) in c.groups[slot as usize].iter().enumerate() {
                let GroupSource::Field(f) = *src else {
                    continue 'next;
                };
                if g > 0 {
                    key_buf.push(GROUP_SEP);
                }
                match ev.get(f) {
                    Some(Value::Null) | None => {
                        stats.missing_group_key += 1;
                        continue 'next;
                    }
                    Some(v) => fold_into(&v, tmp, key_buf),
                }
                if g < ends.len() {
                    ends[g] = key_buf.len();
                }
            }
            // Seeded by the definition, not the position: keys (and their checkpointed state) stay
            // valid when rules are added or reordered.
            let key = hash_parts(c.fingerprint, key_buf);
            if !c.spec.kind.is_temporal() {
                if seen.contains(&(cid, key)) {
                    continue;
                }
                seen.push((cid, key));
            }
            let route = route_hash(c, key_buf);
            let value = match (c.spec.kind, c.value_field[slot as usize]) {
                (CorrType::ValueCount, Some(f)) => {
                    ev.get(f).filter(|v| !matches!(v, Value::Null)).map(|v| {
                        let mut b = Vec::new();
                        fold_into(&v, tmp, &mut b);
                        hash_parts(0, &b)
                    })
                }
                (_, Some(f)) => ev.get(f).and_then(|v| numeric(&v)).map(f64::to_bits),
                _ => None,
            };
            let shard = (route % batches.len() as u64) as usize;
            let b = &mut batches[shard];
            let group = b.push_bytes(key_buf);
            let raw = b.push_bytes(ev.raw());
            b.hits.push(Hit {
                corr: cid,
                slot,
                key,
                route,
                time,
                received,
                value,
                group,
                raw,
            });
            stats.hits += 1;
        }
    }
}

/// The routing hash of a hit: family and the routing group values. `key` holds all group
/// values of the hit's correlation, separated by [`GROUP_SEP`].
pub fn route_hash(c: &Correlation, key: &[u8]) -> u64 {
    if c.route_groups.len() == c.group_names.len() {
        return hash_parts(c.family_seed, key);
    }
    let parts: Vec<&[u8]> = key.split(|&b| b == GROUP_SEP).collect();
    let mut sel = Vec::with_capacity(key.len());
    for (n, &g) in c.route_groups.iter().enumerate() {
        if n > 0 {
            sel.push(GROUP_SEP);
        }
        sel.extend_from_slice(parts.get(g).copied().unwrap_or_default());
    }
    hash_parts(c.family_seed, &sel)
}

/// Hash of (correlation, group values): the key of a child's alert in its parent.
pub fn key_hash(c: &Correlation, group: &[u8]) -> u64 {
    hash_parts(c.fingerprint, group)
}

fn placeholder(c: &CorrelationRule, opts: &CorrOptions) -> Correlation {
    Correlation {
        meta: Arc::new(c.meta.clone()),
        path: c.path.clone(),
        spec: Spec::new(
            c.kind,
            c.timespan_ms,
            Vec::new(),
            None,
            None,
            1,
            opts.max_values,
        ),
        timespan: c.timespan.clone(),
        sources: Vec::new(),
        group_names: Vec::new(),
        groups: Vec::new(),
        value_field: Vec::new(),
        route_groups: Vec::new(),
        family: 0,
        family_seed: 0,
        policy: opts.policy,
        emit: false,
        parents: Vec::new(),
        fingerprint: 0,
    }
}

fn compile_one(
    c: &CorrelationRule,
    srcs: &[(String, Source)],
    all: &[CorrelationRule],
    id_of: &HashMap<usize, CorrId>,
    table: &mut FieldTable,
    opts: &CorrOptions,
) -> Result<Correlation, String> {
    if srcs.len() > 64 {
        return Err("more than 64 referenced rules".into());
    }
    if c.group_by.len() > 16 {
        return Err("more than 16 group-by fields".into());
    }
    let child_groups = |s: &Source| -> Option<Vec<String>> {
        let Source::Corr(cid) = s else { return None };
        let idx = id_of.iter().find(|(_, v)| **v == *cid).map(|(k, _)| *k)?;
        Some(all[idx].group_by.clone())
    };
    let mut groups = Vec::with_capacity(srcs.len());
    let mut value_field = Vec::with_capacity(srcs.len());
    let (cmps, field, percentile, expr) = match &c.condition {
        Condition::Threshold {
            cmps,
            field,
            percentile,
        } => (cmps.clone(), field.clone(), *percentile, None),
        Condition::Expr(e) => {
            // Rule names become slot indices.
            fn map(e: &BoolExpr, names: &[String]) -> BoolExpr {
                match e {
                    BoolExpr::Rule(r) => BoolExpr::Rule(
                        names
                            .iter()
                            .position(|n| n == r)
                            .unwrap_or(usize::MAX)
                            .to_string(),
                    ),
                    BoolExpr::Not(x) => BoolExpr::Not(Box::new(map(x, names))),
                    BoolExpr::And(v) => BoolExpr::And(v.iter().map(|x| map(x, names)).collect()),
                    BoolExpr::Or(v) => BoolExpr::Or(v.iter().map(|x| map(x, names)).collect()),
                }
            }
            let names: Vec<String> = srcs.iter().map(|(n, _)| n.clone()).collect();
            (Vec::new(), None, None, Some(map(e, &names)))
        }
    };
    if c.kind == CorrType::TemporalOrdered
        && expr.is_none()
        && cmps.iter().any(|(op, _)| {
            !matches!(
                op,
                crate::sigma::correlation::CmpOp::Gte | crate::sigma::correlation::CmpOp::Gt
            )
        })
    {
        return Err("temporal_ordered supports gte/gt conditions (and expressions)".into());
    }
    if c.kind == CorrType::TemporalOrdered && expr.is_some() {
        return Err(
            "temporal_ordered with an expression condition is not supported; use temporal".into(),
        );
    }
    for (name, s) in srcs {
        let alias_for = |g: &str| -> String {
            c.aliases
                .iter()
                .find(|a| a.name == g)
                .and_then(|a| a.mapping.iter().find(|(r, _)| r == name))
                .map(|(_, f)| f.clone())
                .unwrap_or_else(|| g.to_string())
        };
        let mut gs = Vec::with_capacity(c.group_by.len());
        for g in &c.group_by {
            let f = alias_for(g);
            match child_groups(s) {
                Some(child) => {
                    let pos = child.iter().position(|x| *x == f).ok_or_else(|| {
                        format!("group-by {g:?}: the referenced correlation {name:?} does not group by {f:?} (kuzet takes a parent's group values from its children's)")
                    })?;
                    gs.push(GroupSource::Child(pos));
                }
                None => gs.push(GroupSource::Field(table.intern(&f))),
            }
        }
        groups.push(gs);
        value_field.push(match (&field, s) {
            (Some(f), Source::Rule(_)) => Some(table.intern(&alias_for(f))),
            (Some(_), Source::Corr(_)) => {
                return Err(
                    "value aggregation over a referenced correlation is not supported".into(),
                );
            }
            (None, _) => None,
        });
    }
    let spec = Spec::new(
        c.kind,
        c.timespan_ms,
        cmps,
        expr,
        percentile,
        srcs.len(),
        opts.max_values,
    );
    let mut fp = Xxh3::new();
    fp.update(c.meta.label().as_bytes());
    fp.update(
        format!(
            "{:?}|{}|{:?}|{:?}|{:?}|{:?}",
            c.kind, c.timespan_ms, c.condition, c.group_by, c.rules, c.aliases
        )
        .as_bytes(),
    );
    Ok(Correlation {
        meta: Arc::new(c.meta.clone()),
        path: c.path.clone(),
        spec,
        timespan: c.timespan.clone(),
        sources: srcs.iter().map(|(_, s)| *s).collect(),
        group_names: c.group_by.clone(),
        groups,
        value_field,
        route_groups: (0..c.group_by.len()).collect(),
        family: 0,
        family_seed: 0,
        policy: opts.policy,
        emit: true,
        parents: Vec::new(),
        fingerprint: fp.digest(),
    })
}

/// Gives every chain one routing: the root's group-by, mapped down to each member (or,
/// when two roots disagree, the family's seed alone).
fn assign_families(list: &mut [Correlation]) -> Result<(), Vec<(usize, String)>> {
    let n = list.len();
    let mut errs = Vec::new();
    // A family is a connected set of chained correlations, not one root's tree: a child
    // referenced by two parents (`spray` and `brute_then_success` over `brute_user`) must
    // meet both parents' keys in its shard, so all three hash with one family id.
    let mut family: Vec<usize> = (0..n).collect();
    fn find(f: &mut [usize], mut i: usize) -> usize {
        while f[i] != i {
            f[i] = f[f[i]];
            i = f[i];
        }
        i
    }
    for (i, c) in list.iter().enumerate() {
        for s in &c.sources {
            if let Source::Corr(child) = s {
                let (a, b) = (find(&mut family, i), find(&mut family, child.0 as usize));
                family[a.max(b)] = a.min(b);
            }
        }
    }
    for (i, c) in list.iter_mut().enumerate() {
        c.family = find(&mut family, i) as u32;
    }
    // Walk each root down its children; a child reached from two roots must be routed by
    // the same group values for both. When they differ (`wave` counts all `brute` alerts,
    // `brute_then_success` groups them by `src`), the family is routed by its seed alone:
    // all its keys in one shard, less parallel but correct, where refusing the rules lost
    // a chain the reference runs.
    let roots: Vec<usize> = (0..n).filter(|&i| list[i].parents.is_empty()).collect();
    let mut assigned: Vec<Option<(u32, Vec<usize>)>> = vec![None; n];
    let mut whole: Vec<u32> = Vec::new();
    for r in roots {
        let fam = list[r].family;
        let route: Vec<usize> = (0..list[r].group_names.len()).collect();
        let mut stack = vec![(r, route)];
        while let Some((ci, route)) = stack.pop() {
            match &assigned[ci] {
                Some((_, rg)) if *rg != route => {
                    whole.push(fam);
                    continue;
                }
                Some(_) => continue,
                None => assigned[ci] = Some((fam, route.clone())),
            }
            for (slot, s) in list[ci].sources.clone().into_iter().enumerate() {
                let Source::Corr(child) = s else { continue };
                // The parent's routing groups, seen as the child's group indices.
                let mut child_route = Vec::with_capacity(route.len());
                for &g in &route {
                    match list[ci].groups.get(slot).and_then(|v| v.get(g)) {
                        Some(GroupSource::Child(pos)) => child_route.push(*pos),
                        _ => {
                            errs.push((
                                ci,
                                "chain routing: a group-by value is not among the child's".into(),
                            ));
                        }
                    }
                }
                stack.push((child.0 as usize, child_route));
            }
        }
    }
    for (i, a) in assigned.into_iter().enumerate() {
        if let Some((fam, route)) = a {
            list[i].family = fam;
            list[i].route_groups = if whole.contains(&fam) {
                Vec::new()
            } else {
                route
            };
        }
    }
    // The routing seed is the smallest fingerprint in the family: it depends on the
    // family's definitions, not on the rules' order (as `family` does), so routes (and the
    // state a shard carries by fingerprint) survive reordered rules and rules added to other
    // families.
    let mut seed = vec![u64::MAX; n];
    for c in list.iter() {
        let f = c.family as usize;
        seed[f] = seed[f].min(c.fingerprint);
    }
    for c in list.iter_mut() {
        c.family_seed = seed[c.family as usize];
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_json_grammar() {
        assert_eq!(numeric(&Value::Str(b" 3 ")), Some(3.0));
        assert_eq!(numeric(&Value::Str(b"1e3")), Some(1000.0));
        assert_eq!(numeric(&Value::Str(b"-0")), Some(-0.0));
        assert_eq!(numeric(&Value::Str(b"\t3\n")), Some(3.0));
        for bad in [
            &b"03"[..],
            b"+3",
            b"3.",
            b"0x10",
            b"abc",
            b"",
            b"1.E3",
            b"1.e3",
            "\u{a0}3".as_bytes(),
        ] {
            assert_eq!(
                numeric(&Value::Str(bad)),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(numeric(&Value::Int(7)), Some(7.0));
    }
}

#[cfg(test)]
mod family_tests {
    use crate::engine::{self, EngineConfig};
    use crate::parser::ParserConfig;

    use super::*;

    const DOCS: [&str; 5] = [
        "title: fail\nname: fail\nlogsource: {product: t}\ndetection: {sel: {action: fail}, condition: sel}",
        "title: success\nname: success\nlogsource: {product: t}\ndetection: {sel: {action: success}, condition: sel}",
        "title: brute\nname: brute\ncorrelation: {type: event_count, rules: [fail], group-by: [src], timespan: 10m, condition: {gte: 3}}",
        "title: wave\nname: wave\ncorrelation: {type: event_count, rules: [brute], timespan: 10m, condition: {gte: 2}}",
        "title: then\nname: then\ncorrelation: {type: temporal_ordered, rules: [brute, success], group-by: [src], timespan: 30m}",
    ];

    fn build(order: &[usize], tag: &str) -> Arc<Correlations> {
        let dir = std::env::temp_dir().join(format!("kuzet-families-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml: Vec<&str> = order.iter().map(|&i| DOCS[i]).collect();
        std::fs::write(dir.join("r.yml"), yaml.join("\n---\n")).unwrap();
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

    /// `wave` (no group-by) and `then` (by `src`) both reference `brute`: one family, routed
    /// whole to one shard, seeded by its smallest fingerprint whatever the rules' order.
    #[test]
    fn a_family_routes_by_its_definitions_not_the_rules_order() {
        let a = build(&[0, 1, 2, 3, 4], "a");
        let b = build(&[0, 1, 4, 3, 2], "b");
        assert_eq!(a.list.len(), 3);
        let min = a.list.iter().map(|c| c.fingerprint).min().unwrap();
        for c in &a.list {
            let d = b
                .list
                .iter()
                .find(|d| d.meta.label() == c.meta.label())
                .unwrap();
            assert_eq!(c.fingerprint, d.fingerprint);
            assert_eq!(c.family_seed, min);
            assert_eq!(d.family_seed, min);
            assert!(c.route_groups.is_empty() && d.route_groups.is_empty());
            assert_eq!(key_hash(c, b"10.0.0.1"), key_hash(d, b"10.0.0.1"));
            // Any group values: one shard for the family (`wave` has none).
            let (x, y): (&[u8], &[u8]) = match c.group_names.len() {
                0 => (b"", b""),
                _ => (b"10.0.0.1", b"10.0.0.2"),
            };
            assert_eq!(route_hash(c, x), route_hash(d, y));
            assert_eq!(route_hash(c, x), route_hash(&a.list[0], b""));
        }
    }
}
