//! Stage 4, the hot path: compiled Sigma rules matched against events.
//!
//! [`RuleSet::build`] compiles prepared rules (see `sigma/`) once: every value becomes a
//! [`leaf::Test`] chosen for its shape, identical leaves are shared between rules, each rule
//! gets a route (`router/`) and a set of literals for the prefilter (`prefilter.rs`). The
//! result is immutable and shared behind an `Arc`, ready to be swapped whole on reload.
//!
//! Per event, [`RuleSet::matches_into`] does only this:
//! 1. the router names the buckets of rules that can apply (a few hash lookups);
//! 2. the prefilter scans the event's values with one Aho-Corasick automaton per field and
//!    marks the rules whose required literals occur;
//! 3. rules that are routed here and either marked or unfilterable are evaluated, with leaf
//!    results cached for the event (rules share many leaves).
//!
//! All per-event state lives in a caller-owned [`Scratch`]; nothing is allocated per event
//! once it has grown. `reference.rs` holds a slow, obviously correct interpreter that tests
//! and the fuzzer compare this against.

pub mod leaf;
pub mod literals;
pub mod prefilter;
pub mod reference;

use std::sync::Arc;

use hashbrown::HashMap;

use crate::event::{Event, FieldId, FieldTable, Value};
use crate::router::{BucketId, Route, Router, choose_routes};
use crate::sigma::condition::Cond;
use crate::sigma::rule::{Item, Search};
use crate::sigma::value::{SPart, SValue, SigmaString};
use crate::sigma::{Logsource, Meta, Rule, RuleError};
use leaf::{SET_MIN, SigmaRegex, StrKind, StrPat, StrSet, Test, parse_ip, parse_num};

/// Index of a compiled rule in its [`RuleSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub u32);

/// Which text a leaf looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldSel {
    Field(FieldId),
    /// Keywords: the `message` field, or the whole frame when there is none.
    Keyword,
}

/// A condition tree over leaves.
#[derive(Clone, Debug)]
pub enum Node {
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Leaf(u32),
    Const(bool),
}

#[derive(Debug)]
pub struct LeafDef {
    pub field: FieldSel,
    pub test: Test,
}

/// A rule ready to run.
#[derive(Debug)]
pub struct CompiledRule {
    pub meta: Arc<Meta>,
    pub logsource: Logsource,
    pub path: Arc<str>,
    pub root: Node,
    /// The route buckets the rule is in (several when it requires one of a few values).
    pub buckets: Box<[BucketId]>,
    /// Prefiltered: only evaluated when one of its literals occurs.
    pub filtered: bool,
}

/// Options for compiling.
#[derive(Clone, Debug, Default)]
pub struct CompileOptions {
    /// Values for `%name%` placeholders (the `expand` modifier) that no pipeline resolved.
    pub placeholders: std::collections::BTreeMap<String, Vec<String>>,
    /// Event logsource classes inputs and extractors may assign; class `i + 1` is
    /// `classes[i]`, one or several logsources.
    pub classes: Vec<Vec<Logsource>>,
}

/// An immutable, compiled rule set.
#[derive(Debug)]
pub struct RuleSet {
    table: Arc<FieldTable>,
    rules: Vec<CompiledRule>,
    leaves: Vec<LeafDef>,
    router: Router,
    prefilter: prefilter::Prefilter,
    /// Per bucket, the unfilterable rules (always evaluated when the bucket applies).
    always: Vec<Vec<RuleId>>,
    classes: Vec<Vec<Logsource>>,
    /// Fields interned when the set was built: every field a leaf reads has an id below
    /// this, and `fields` itself is the keyword text's slot in [`Scratch`]'s lowercase cache.
    /// Kept apart from `table` (attached later, or never), which used to size the cache:
    /// matching a set without [`RuleSet::with_table`] indexed past it and panicked.
    fields: usize,
}

/// Per-thread working memory for matching; reuse it across events.
#[derive(Debug, Default)]
pub struct Scratch {
    generation: u32,
    /// Leaf results for this event: (generation, result).
    leaf_cache: Vec<(u32, bool)>,
    /// Lowercased first values: `lower_idx[field] = (generation, start, len)` into `lower`.
    lower: Vec<u8>,
    lower_idx: Vec<(u32, u32, u32)>,
    /// First values read as addresses: `ips[field] = (generation, address)`, so the `cidr`
    /// tests of many rules parse an address once per event.
    ips: Vec<(u32, Option<std::net::IpAddr>)>,
    tmp: Vec<u8>,
    tmp2: Vec<u8>,
    buckets: Vec<BucketId>,
    candidates: Vec<RuleId>,
    pub pf: prefilter::PfScratch,
    /// Rules evaluated in full since this scratch was made (for diagnostics and benches).
    pub evaluated: u64,
    /// When set, evaluations per rule (diagnostics: which rules cost the most).
    pub per_rule: Option<Vec<u32>>,
}

struct Compiler<'a> {
    table: &'a mut FieldTable,
    leaves: Vec<LeafDef>,
    leaf_index: HashMap<String, u32>,
    opts: &'a CompileOptions,
}

impl RuleSet {
    /// Compiles prepared rules. Interns every field they use into `table` (which the
    /// caller then freezes for its parsers). Rules that fail to compile are returned as
    /// errors; the rest compile.
    pub fn build(
        rules: &[Rule],
        table: &mut FieldTable,
        opts: &CompileOptions,
    ) -> (RuleSet, Vec<RuleError>) {
        let mut c = Compiler {
            table,
            leaves: Vec::new(),
            leaf_index: HashMap::new(),
            opts,
        };
        let mut errors = Vec::new();
        // (meta, logsource, path, condition, logsource expressed as conditions)
        type Compiled = (Arc<Meta>, Logsource, Arc<str>, Node, bool);
        let mut compiled: Vec<Compiled> = Vec::new();
        for r in rules {
            match c.rule(r) {
                Ok(node) => compiled.push((
                    Arc::new(r.meta.clone()),
                    r.logsource.clone(),
                    r.path.clone(),
                    node,
                    r.logsource_as_conditions,
                )),
                Err(p) => {
                    let line = Some(r.line_of(p.near.as_deref()));
                    errors.push(RuleError::new(
                        &r.path,
                        Some(r.meta.label()),
                        line,
                        p.reason,
                    ));
                }
            }
        }
        let Compiler { leaves, table, .. } = c;
        let fields = table.len();
        let required: Vec<Vec<crate::router::Requirement>> = compiled
            .iter()
            .map(|(_, _, _, n, _)| mandatory_equalities(n, &leaves))
            .collect();
        let needs_class: Vec<Option<Logsource>> = compiled
            .iter()
            .map(|(_, ls, _, _, as_cond)| (!as_cond && !ls.is_empty()).then(|| ls.clone()))
            .collect();
        let routes: Vec<Route> = choose_routes(&required, &needs_class)
            .into_iter()
            .zip(&needs_class)
            .map(|(route, need)| match (route, need) {
                // A rule that needs an event logsource must not be reachable without it.
                (Route::Values(..), Some(ls)) => Route::Class(ls.clone()),
                (r, _) => r,
            })
            .collect();
        let (router, buckets) = Router::build(&routes, &opts.classes);
        let mut atoms: Vec<Option<Vec<prefilter::Group>>> = compiled
            .iter()
            .map(|(_, _, _, n, _)| prefilter::necessary(n, &leaves))
            .collect();
        prefilter::select(&mut atoms, &buckets);
        let prefilter = prefilter::Prefilter::build(&atoms, &buckets, router.bucket_count());
        let mut always = vec![Vec::new(); router.bucket_count()];
        let mut out = Vec::with_capacity(compiled.len());
        for (i, ((meta, logsource, path, root, _), bs)) in
            compiled.into_iter().zip(buckets).enumerate()
        {
            let filtered = atoms[i].is_some();
            if !filtered {
                for b in &bs {
                    always[b.0 as usize].push(RuleId(i as u32));
                }
            }
            out.push(CompiledRule {
                meta,
                logsource,
                path,
                root,
                buckets: bs.into_boxed_slice(),
                filtered,
            });
        }
        let set = RuleSet {
            table: Arc::new(FieldTable::new()),
            rules: out,
            leaves,
            router,
            prefilter,
            always,
            classes: opts.classes.clone(),
            fields,
        };
        (set, errors)
    }

    /// Attaches the frozen field table the parsers use (after [`RuleSet::build`] interned).
    pub fn with_table(mut self, table: Arc<FieldTable>) -> RuleSet {
        self.table = table;
        self
    }

    pub fn table(&self) -> &Arc<FieldTable> {
        &self.table
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub fn rule(&self, id: RuleId) -> &CompiledRule {
        &self.rules[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn classes(&self) -> &[Vec<Logsource>] {
        &self.classes
    }

    /// Counts for diagnostics: (rules, unfilterable rules, buckets, leaves, prefilter patterns).
    pub fn stats(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.rules.len(),
            self.rules.iter().filter(|r| !r.filtered).count(),
            self.router.bucket_count(),
            self.leaves.len(),
            self.prefilter.pattern_count(),
        )
    }

    /// Appends the ids of the rules `ev` matches to `out`, in rule order.
    pub fn matches_into(&self, ev: &Event<'_>, s: &mut Scratch, out: &mut Vec<RuleId>) {
        s.begin(self.leaves.len(), self.fields + 1);
        s.buckets.clear();
        self.router
            .buckets_into(ev, ev.class(), &mut s.tmp, &mut s.buckets);
        if s.buckets.is_empty() {
            return;
        }
        s.candidates.clear();
        for b in &s.buckets {
            s.candidates.extend_from_slice(&self.always[b.0 as usize]);
        }
        let rules = &self.rules;
        let buckets = &s.buckets;
        let cands = &mut s.candidates;
        self.prefilter
            .scan(ev, buckets, rules.len(), &mut s.pf, &mut s.tmp, |r| {
                if rules[r.0 as usize]
                    .buckets
                    .iter()
                    .any(|b| buckets.contains(b))
                {
                    cands.push(r);
                }
            });
        s.candidates.sort_unstable();
        s.candidates.dedup();
        let cands = std::mem::take(&mut s.candidates);
        s.evaluated += cands.len() as u64;
        if let Some(per) = s.per_rule.as_mut() {
            per.resize(self.rules.len(), 0);
            cands.iter().for_each(|r| per[r.0 as usize] += 1);
        }
        for &r in &cands {
            if self.eval(&self.rules[r.0 as usize].root, ev, s) {
                out.push(r);
            }
        }
        s.candidates = cands;
    }

    /// Evaluates one rule on `ev`, without routing or prefilter (tests, diagnostics).
    pub fn rule_matches(&self, id: RuleId, ev: &Event<'_>, s: &mut Scratch) -> bool {
        s.begin(self.leaves.len(), self.fields + 1);
        self.eval(&self.rules[id.0 as usize].root, ev, s)
    }

    fn eval(&self, n: &Node, ev: &Event<'_>, s: &mut Scratch) -> bool {
        match n {
            Node::And(c) => c.iter().all(|x| self.eval(x, ev, s)),
            Node::Or(c) => c.iter().any(|x| self.eval(x, ev, s)),
            Node::Not(x) => !self.eval(x, ev, s),
            Node::Const(b) => *b,
            Node::Leaf(l) => {
                let i = *l as usize;
                let (g, v) = s.leaf_cache[i];
                if g == s.generation {
                    return v;
                }
                let v = self.eval_leaf(&self.leaves[i], ev, s);
                s.leaf_cache[i] = (s.generation, v);
                v
            }
        }
    }

    fn eval_leaf(&self, l: &LeafDef, ev: &Event<'_>, s: &mut Scratch) -> bool {
        let f = match l.field {
            FieldSel::Keyword => {
                let text = ev.message().unwrap_or(ev.raw());
                return test_text(&l.test, text, s, self.fields, ev);
            }
            FieldSel::Field(f) => f,
        };
        match &l.test {
            // `exists` and `null` test for a value: JSON null is none, `""` is one
            // (tests/oracle/SEMANTICS.md 2.11: `IS NOT NULL` / `IS NULL`).
            Test::Exists(want) => has_value(ev, f) == *want,
            Test::Null => !has_value(ev, f),
            test => {
                let mut first = true;
                for v in ev.values(f) {
                    let hit = if first {
                        first = false;
                        test_value(test, v, Some(f), s, ev)
                    } else {
                        test_value(test, v, None, s, ev)
                    };
                    if hit {
                        return true;
                    }
                }
                false
            }
        }
    }
}

/// Whether `f` has a value other than JSON null.
fn has_value(ev: &Event<'_>, f: FieldId) -> bool {
    ev.values(f).any(|v| !matches!(v, Value::Null))
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch::default()
    }

    fn begin(&mut self, leaves: usize, fields: usize) {
        if self.leaf_cache.len() < leaves {
            self.leaf_cache.resize(leaves, (0, false));
        }
        if self.lower_idx.len() < fields {
            self.lower_idx.resize(fields, (0, 0, 0));
            self.ips.resize(fields, (0, None));
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.leaf_cache.iter_mut().for_each(|e| e.0 = 0);
            self.lower_idx.iter_mut().for_each(|e| e.0 = 0);
            self.ips.iter_mut().for_each(|e| e.0 = 0);
            self.generation = 1;
        }
        self.lower.clear();
    }

    /// `text` read as an IP address, cached per field slot for this event.
    fn ip(&mut self, slot: Option<usize>, text: &[u8]) -> Option<std::net::IpAddr> {
        let Some(i) = slot else {
            return parse_ip(text);
        };
        let (g, ip) = self.ips[i];
        if g == self.generation {
            return ip;
        }
        let ip = parse_ip(text);
        self.ips[i] = (self.generation, ip);
        ip
    }

    /// The ASCII-lowercased bytes of `text`, cached per field slot for this event.
    fn lowered(&mut self, slot: Option<usize>, text: &[u8]) -> &[u8] {
        if let Some(i) = slot {
            let (g, st, len) = self.lower_idx[i];
            if g == self.generation {
                return &self.lower[st as usize..(st + len) as usize];
            }
            let st = self.lower.len();
            self.lower.extend_from_slice(text);
            self.lower[st..].make_ascii_lowercase();
            self.lower_idx[i] = (self.generation, st as u32, text.len() as u32);
            &self.lower[st..]
        } else {
            self.tmp2.clear();
            self.tmp2.extend_from_slice(text);
            self.tmp2.make_ascii_lowercase();
            &self.tmp2
        }
    }
}

/// Tests a value of a field. `slot` is the field's cache slot when `v` is its first value.
fn test_value(
    t: &Test,
    v: Value<'_>,
    slot: Option<FieldId>,
    s: &mut Scratch,
    ev: &Event<'_>,
) -> bool {
    match (t, v) {
        (Test::Num(n, _), Value::Int(i)) => *n == i as f64,
        (Test::Num(n, _), Value::UInt(u)) => *n == u as f64,
        (Test::Num(n, _), Value::Float(x)) => *n == x,
        (Test::Bool(b), Value::Bool(x)) => *b == x,
        (Test::Cmp(op, n), Value::Int(i)) => op.eval(i as f64, *n),
        (Test::Cmp(op, n), Value::UInt(u)) => op.eval(u as f64, *n),
        (Test::Cmp(op, n), Value::Float(x)) => op.eval(x, *n),
        (_, Value::Null) => false,
        (t, v) => {
            let mut buf = std::mem::take(&mut s.tmp);
            let text: &[u8] = match v {
                Value::Str(b) => b,
                other => {
                    let n = other.text(&mut buf).len();
                    &buf[..n]
                }
            };
            let slot = if matches!(v, Value::Str(_)) {
                slot.map(|f| f.index())
            } else {
                None
            };
            let r = test_text_slot(t, text, slot, s, ev);
            s.tmp = buf;
            r
        }
    }
}

fn test_text(t: &Test, text: &[u8], s: &mut Scratch, keyword_slot: usize, ev: &Event<'_>) -> bool {
    test_text_slot(t, text, Some(keyword_slot), s, ev)
}

/// Tests text (a string value, a number's text, or the keyword text).
fn test_text_slot(
    t: &Test,
    text: &[u8],
    slot: Option<usize>,
    s: &mut Scratch,
    ev: &Event<'_>,
) -> bool {
    match t {
        Test::Str(p) if p.cased => p.is_match(text),
        Test::StrSet(set) if set.cased => set.is_match(text),
        Test::StrSet(set) => {
            let h = s.lowered(slot, text);
            set.is_match(h)
        }
        Test::Str(p) => {
            if let StrKind::Any = p.kind {
                return true;
            }
            let h = s.lowered(slot, text);
            p.is_match(h)
        }
        // A string equals a YAML number when its text is the number's text; numeric
        // equality is for numeric values only (kept in step with routing, which compares text).
        Test::Num(_, t) => s.lowered(slot, text) == &**t,
        Test::Bool(b) => {
            let h = s.lowered(slot, text);
            h == if *b { &b"true"[..] } else { &b"false"[..] }
                || h == if *b { &b"1"[..] } else { &b"0"[..] }
        }
        Test::Regex(r) => r.is_match(text),
        Test::Cidr(net) => s.ip(slot, text).is_some_and(|ip| net.contains(&ip)),
        Test::Cmp(op, n) => parse_num(text).is_some_and(|x| op.eval(x, *n)),
        Test::FieldRef(other, mode) => {
            let mut tmp = Vec::new();
            // SQL compares with NULL as unknown: a missing or null other field never
            // matches (tests/oracle/SEMANTICS.md 2.13).
            let Some(o) = ev.get(*other).filter(|o| !matches!(o, Value::Null)) else {
                return false;
            };
            let ot: Vec<u8> = o.text(&mut tmp).to_vec();
            use crate::sigma::value::RefMode::*;
            match mode {
                // SQLite `a = b` on NOCASE columns: ASCII case-insensitive.
                Equals => text.eq_ignore_ascii_case(&ot),
                // SQLite LIKE: ASCII case-insensitive.
                StartsWith => text
                    .to_ascii_lowercase()
                    .starts_with(&ot.to_ascii_lowercase()),
                EndsWith => text
                    .to_ascii_lowercase()
                    .ends_with(&ot.to_ascii_lowercase()),
                Contains => {
                    memchr::memmem::find(&text.to_ascii_lowercase(), &ot.to_ascii_lowercase())
                        .is_some()
                }
            }
        }
        Test::Exists(_) | Test::Null => false,
    }
}

impl Compiler<'_> {
    fn rule(&mut self, r: &Rule) -> Result<Node, crate::sigma::error::Problem> {
        let searches: Vec<Node> = r
            .detection
            .searches
            .iter()
            .map(|s| self.search(s))
            .collect::<Result<_, _>>()?;
        Ok(simplify(cond_node(&r.detection.condition, &searches)))
    }

    fn search(&mut self, s: &Search) -> Result<Node, crate::sigma::error::Problem> {
        Ok(match s {
            Search::And(v) => {
                Node::And(v.iter().map(|x| self.search(x)).collect::<Result<_, _>>()?)
            }
            Search::Or(v) => Node::Or(v.iter().map(|x| self.search(x)).collect::<Result<_, _>>()?),
            Search::Item(it) => self.item(it)?,
        })
    }

    fn item(&mut self, it: &Item) -> Result<Node, crate::sigma::error::Problem> {
        let sel = match &it.field {
            Some(f) => FieldSel::Field(self.table.intern(f)),
            None => FieldSel::Keyword,
        };
        if !it.all
            && let Some(n) = self.string_set(sel, it)?
        {
            return Ok(if it.negated {
                Node::Not(Box::new(n))
            } else {
                n
            });
        }
        let mut kids = Vec::with_capacity(it.values.len());
        for v in &it.values {
            kids.push(self.value(sel, v).map_err(|p| p.near(it.key.clone()))?);
        }
        let n = if kids.len() == 1 {
            kids.pop().expect("one")
        } else if it.all {
            Node::And(kids.into())
        } else {
            Node::Or(kids.into())
        };
        Ok(if it.negated {
            Node::Not(Box::new(n))
        } else {
            n
        })
    }

    /// An item whose values are all strings (variants included), at least [`SET_MIN`] of them
    /// and of one case mode, becomes a single [`StrSet`] leaf.
    fn string_set(
        &mut self,
        sel: FieldSel,
        it: &Item,
    ) -> Result<Option<Node>, crate::sigma::error::Problem> {
        fn flat(v: &SValue, out: &mut Vec<(SigmaString, bool)>) -> bool {
            match v {
                SValue::Str { s, cased } => {
                    out.push((s.clone(), *cased));
                    true
                }
                SValue::Alt(vs) => vs.iter().all(|x| flat(x, out)),
                _ => false,
            }
        }
        if sel == FieldSel::Keyword {
            return Ok(None);
        }
        let mut strs = Vec::new();
        if !it.values.iter().all(|v| flat(v, &mut strs)) || strs.is_empty() {
            return Ok(None);
        }
        let cased = strs[0].1;
        if strs.iter().any(|(_, c)| *c != cased) {
            return Ok(None);
        }
        let mut resolved = Vec::with_capacity(strs.len());
        for (s, _) in &strs {
            if s.has_placeholders() {
                resolved.extend(
                    resolve_placeholders(s, &self.opts.placeholders)
                        .map_err(|p| p.near(it.key.clone()))?,
                );
            } else {
                resolved.push(s.clone());
            }
        }
        if resolved.len() < SET_MIN {
            return Ok(None);
        }
        let key = format!("set|{cased}|{resolved:?}");
        self.leaf(sel, key, |_| {
            let pats = resolved
                .iter()
                .map(|s| StrPat::new(&s.parts, cased))
                .collect();
            Ok(Test::StrSet(Box::new(StrSet::new(pats, cased))))
        })
        .map(Some)
    }

    fn leaf(
        &mut self,
        field: FieldSel,
        key: String,
        test: impl FnOnce(&mut Self) -> Result<Test, crate::sigma::error::Problem>,
    ) -> Result<Node, crate::sigma::error::Problem> {
        let key = format!("{field:?}|{key}");
        if let Some(&i) = self.leaf_index.get(&key) {
            return Ok(Node::Leaf(i));
        }
        let test = test(self)?;
        let i = self.leaves.len() as u32;
        self.leaves.push(LeafDef { field, test });
        self.leaf_index.insert(key, i);
        Ok(Node::Leaf(i))
    }

    fn value(&mut self, sel: FieldSel, v: &SValue) -> Result<Node, crate::sigma::error::Problem> {
        use crate::sigma::error::Problem;
        // Keywords are substring searches of the text (numbers and booleans by spelling).
        if sel == FieldSel::Keyword {
            let as_contains = |s: SigmaString, cased| SValue::Str {
                s: s.contains(),
                cased,
            };
            match v {
                SValue::Str { s, cased } if !(s.starts_with_any() && s.ends_with_any()) => {
                    return self.value(sel, &as_contains(s.clone(), *cased));
                }
                SValue::Num(_, t) => {
                    return self
                        .value(sel, &as_contains(SigmaString::literal(t.as_bytes()), false));
                }
                SValue::Bool(b) => {
                    return self.value(
                        sel,
                        &as_contains(SigmaString::literal(b.to_string().as_bytes()), false),
                    );
                }
                _ => {}
            }
        }
        match v {
            SValue::Alt(vs) => Ok(Node::Or(
                vs.iter()
                    .map(|x| self.value(sel, x))
                    .collect::<Result<_, _>>()?,
            )),
            SValue::Str { s, cased } if s.has_placeholders() => {
                let vs = resolve_placeholders(s, &self.opts.placeholders)?;
                let alts: Vec<SValue> = vs
                    .into_iter()
                    .map(|s| SValue::Str { s, cased: *cased })
                    .collect();
                self.value(sel, &SValue::Alt(alts))
            }
            SValue::Str { s, cased } => {
                let parts = s.parts.clone();
                let cased = *cased;
                self.leaf(sel, format!("{v:?}"), |_| {
                    Ok(Test::Str(StrPat::new(&parts, cased)))
                })
            }
            SValue::Num(n, t) => {
                let (n, t) = (*n, t.to_ascii_lowercase());
                self.leaf(sel, format!("{v:?}"), |_| {
                    Ok(Test::Num(n, t.into_bytes().into()))
                })
            }
            SValue::Bool(b) => {
                let b = *b;
                self.leaf(sel, format!("{v:?}"), |_| Ok(Test::Bool(b)))
            }
            SValue::Null | SValue::Exists(_) if sel == FieldSel::Keyword => {
                Err(Problem::new("null and exists need a field"))
            }
            SValue::Null => self.leaf(sel, "null".into(), |_| Ok(Test::Null)),
            SValue::Exists(b) => {
                let b = *b;
                self.leaf(sel, format!("{v:?}"), |_| Ok(Test::Exists(b)))
            }
            SValue::Regex { pattern, flags } => {
                // Flags go inline, as pySigma writes them (`(?ims)…`, tests/oracle/SEMANTICS.md
                // 2.7), so the compiled regex's text carries them: the prefilter re-parses that
                // text for its literals, and without `(?i)` it would demand `ärg` where `ÄRG`
                // matches (ASCII-insensitive scanning does not fold `ä`).
                let mut p = String::new();
                if flags.ignore_case || flags.multi_line || flags.dot_all {
                    p.push_str("(?");
                    for (on, c) in [
                        (flags.ignore_case, 'i'),
                        (flags.multi_line, 'm'),
                        (flags.dot_all, 's'),
                    ] {
                        if on {
                            p.push(c);
                        }
                    }
                    p.push(')');
                }
                p.push_str(pattern);
                self.leaf(sel, format!("{v:?}"), |_| {
                    regex::bytes::RegexBuilder::new(&p)
                        .size_limit(1 << 22)
                        .dfa_size_limit(REGEX_DFA_CACHE)
                        .build()
                        .map(|re| Test::Regex(Box::new(SigmaRegex::new(re))))
                        .map_err(|e| Problem::new(format!("re: {e}")))
                })
            }
            SValue::Cidr(net) => {
                let net = *net;
                self.leaf(sel, format!("{v:?}"), |_| Ok(Test::Cidr(net)))
            }
            SValue::Cmp(op, n) => {
                let (op, n) = (*op, *n);
                self.leaf(sel, format!("{v:?}"), |_| Ok(Test::Cmp(op, n)))
            }
            SValue::FieldRef { field, mode } => {
                let other = self.table.intern(field);
                let mode = *mode;
                self.leaf(sel, format!("{v:?}"), |_| Ok(Test::FieldRef(other, mode)))
            }
        }
    }
}

/// Lazy-DFA cache bound per regex and matching thread, in bytes (the regex crate's default is
/// 2 MiB). A Unicode class under a counted repetition (`-k\s\w{1,64}…`, SigmaHQ's svchost
/// rule) has DFA states of thousands of NFA states each; in 2 MiB the cache was cleared so
/// often that the regex gave up on the lazy DFA and ran its bounded backtracker instead,
/// clearing a ~256 KiB visited set per value (17% of matching time on Windows events). The
/// cache grows only as a regex needs it, so the other regexes keep their small caches.
const REGEX_DFA_CACHE: usize = 8 << 20;

/// Expands `%name%` from the configured placeholder values.
fn resolve_placeholders(
    s: &SigmaString,
    values: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Vec<SigmaString>, crate::sigma::error::Problem> {
    let mut out = vec![SigmaString::default()];
    for p in &s.parts {
        match p {
            SPart::Placeholder(name) => {
                let vals = values.get(name).ok_or_else(|| {
                    crate::sigma::error::Problem::new(format!(
                        "placeholder %{name}% has no value (define it under [placeholders] in the config or in a pipeline's vars)"
                    ))
                })?;
                out = out
                    .iter()
                    .flat_map(|pre| {
                        vals.iter().map(move |v| {
                            let mut n = pre.clone();
                            for part in SigmaString::parse(v).parts {
                                match part {
                                    SPart::Lit(l) => n.push_lit(&l),
                                    other => n.parts.push(other),
                                }
                            }
                            n
                        })
                    })
                    .collect();
            }
            SPart::Lit(l) => out.iter_mut().for_each(|x| x.push_lit(l)),
            other => out.iter_mut().for_each(|x| x.parts.push(other.clone())),
        }
    }
    Ok(out)
}

fn cond_node(c: &Cond, searches: &[Node]) -> Node {
    match c {
        Cond::And(v) => Node::And(v.iter().map(|x| cond_node(x, searches)).collect()),
        Cond::Or(v) => Node::Or(v.iter().map(|x| cond_node(x, searches)).collect()),
        Cond::Not(x) => Node::Not(Box::new(cond_node(x, searches))),
        Cond::Search(i) => searches[*i].clone(),
    }
}

/// Flattens nested AND/OR, folds constants and single children.
fn simplify(n: Node) -> Node {
    match n {
        Node::And(c) => {
            let mut out = Vec::with_capacity(c.len());
            for x in c.into_vec() {
                match simplify(x) {
                    Node::Const(true) => {}
                    Node::Const(false) => return Node::Const(false),
                    Node::And(inner) => out.extend(inner.into_vec()),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Node::Const(true),
                1 => out.pop().expect("one"),
                _ => Node::And(out.into()),
            }
        }
        Node::Or(c) => {
            let mut out = Vec::with_capacity(c.len());
            for x in c.into_vec() {
                match simplify(x) {
                    Node::Const(false) => {}
                    Node::Const(true) => return Node::Const(true),
                    Node::Or(inner) => out.extend(inner.into_vec()),
                    other => out.push(other),
                }
            }
            match out.len() {
                0 => Node::Const(false),
                1 => out.pop().expect("one"),
                _ => Node::Or(out.into()),
            }
        }
        Node::Not(x) => match simplify(*x) {
            Node::Const(b) => Node::Const(!b),
            Node::Not(y) => *y,
            other => Node::Not(Box::new(other)),
        },
        other => other,
    }
}

/// What every match of `n` requires of single fields: exact strings and numbers reachable
/// through ANDs only, and ORs of such equalities on one field (`EventID: [19, 20, 21]`),
/// values folded.
fn mandatory_equalities(n: &Node, leaves: &[LeafDef]) -> Vec<crate::router::Requirement> {
    fn eq(n: &Node, leaves: &[LeafDef]) -> Option<(FieldId, Vec<Box<[u8]>>)> {
        let Node::Leaf(l) = n else { return None };
        let d = &leaves[*l as usize];
        match (d.field, &d.test) {
            (
                FieldSel::Field(f),
                Test::Str(StrPat {
                    kind: StrKind::Exact(p),
                    ..
                }),
            ) if !p.is_empty() => Some((f, vec![p.to_ascii_lowercase().into()])),
            (FieldSel::Field(f), Test::Num(n, t)) => Some((f, number_texts(*n, t)?)),
            _ => None,
        }
    }
    match n {
        Node::And(c) => c
            .iter()
            .flat_map(|x| mandatory_equalities(x, leaves))
            .collect(),
        Node::Or(c) => {
            let mut field = None;
            let mut values = Vec::new();
            for x in c.iter() {
                let Some((f, v)) = eq(x, leaves) else {
                    return Vec::new();
                };
                if field.is_some_and(|g| g != f) {
                    return Vec::new();
                }
                field = Some(f);
                values.extend(v);
            }
            values.sort();
            values.dedup();
            field.map(|f| vec![(f, values)]).unwrap_or_default()
        }
        leaf => eq(leaf, leaves)
            .map(|(f, v)| vec![(f, v)])
            .unwrap_or_default(),
    }
}

/// The folded texts an event value equal to the YAML number `n`, written `t`, can have, for
/// routing (which compares text), or `None` when they are too many to list.
///
/// A string value equals it when its text is `t`; a numeric value when it is numerically
/// `n`, whatever its spelling: `EventID: 4624.0` or `1e3` must also reach events holding
/// the JSON numbers `4624` and `1000`, which routing on `t` alone missed. Numeric values
/// print as `n` does (an integer equal to an integral `n` below 2^53 is that integer; a float
/// equal to `n` is `n`), except that `-0.0` equals `0`. Beyond 2^53 several integers equal
/// one `n`: not routed.
fn number_texts(n: f64, t: &[u8]) -> Option<Vec<Box<[u8]>>> {
    if n.is_finite() && n.abs() >= 9_007_199_254_740_992.0 {
        return None;
    }
    let mut v: Vec<Box<[u8]>> = vec![
        t.into(),
        format!("{n}").to_ascii_lowercase().into_bytes().into(),
    ];
    if n == 0.0 {
        v.push(b"0".as_slice().into());
        v.push(b"-0".as_slice().into());
    }
    v.sort();
    v.dedup();
    Some(v)
}
