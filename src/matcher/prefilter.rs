//! The literal prefilter: an event is only evaluated against the rules whose required
//! literals it contains.
//!
//! **Contract: never a false negative.** For every rule, [`necessary`] computes groups of
//! (field, literal) atoms such that *any event the rule matches contains, for every group, at
//! least one atom of that group* as an ASCII-case-insensitive substring of that field's
//! value (the keyword text for keywords), or says the rule cannot be prefiltered (`None`).
//! The derivation, in conjunctive normal form:
//! - a string leaf needs its longest literal segment (every match contains it): one group;
//! - a regex leaf needs one of its prefix literals (regex-syntax's extractor: every match
//!   starts with one of them), or one of its inner literals (every match contains one, see
//!   [`inner_literals`]), whichever set is more selective, when it is finite and has no
//!   empty literal: one group;
//! - AND needs every group of every child that has groups (all children matched);
//! - OR needs one group: the union of one group taken from each child (whichever child
//!   matched, its group is satisfied), and only if every child has groups;
//! - NOT, numbers, booleans, `cidr`, comparisons, `exists`, `null` and `fieldref` give no
//!   groups: such leaves can match without any literal present.
//!
//! [`select`] then keeps a subset of each rule's groups (any subset is still necessary).
//! Scanning is case-insensitive even for `cased` patterns (a superset), and every value a
//! leaf can test is scanned (numbers as their text, every element of an array). A rule is
//! reported when all its kept groups are satisfied.
//!
//! Searching: per field, small literal sets use an Aho-Corasick DFA; large ones (the SigmaHQ
//! set puts ~9,000 literals on `CommandLine`) use an anchored [`LiteralSet`], because a DFA
//! that size no longer fits in cache. Each field is scanned once per event, and only if a
//! rule routed to the event needs it.

use aho_corasick::AhoCorasick;

use super::leaf::Test;
use super::literals::LiteralSet;
use super::{FieldSel, LeafDef, Node, RuleId};
use crate::event::{Event, FieldId, Value};
use crate::router::BucketId;

/// A literal a rule needs in a field.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom {
    pub field: FieldSel,
    /// ASCII-lowercased, non-empty.
    pub lit: Box<[u8]>,
}

/// Atoms of which one must be present.
pub type Group = Vec<Atom>;

/// Most groups tracked per rule (a bit each).
pub const MAX_GROUPS: usize = 64;

/// Groups kept per rule once all rules' groups are known (see [`select`]).
pub const KEEP_GROUPS: usize = 3;

/// Fewest rules a route bucket must hold before an atom all of them need counts as too
/// common (see [`select`]): in a bucket of two, both rules needing `\whoami.exe` says
/// nothing about the bucket's events.
pub const BUCKET_MIN: usize = 4;

/// Literals shorter than this occur in almost every value (`-`, `/c`) and would report at
/// every occurrence: groups holding one are not used. A literal of exactly this length is
/// used only when it has a byte that is rare in logs (see [`rare_in_text`]): `☠` or `~1\`
/// filter well, ` -a` and `cmd` do not.
pub const MIN_LITERAL: usize = 3;

/// Bytes seldom seen in log text: non-ASCII, control characters, unusual punctuation.
pub fn rare_in_text(b: u8) -> bool {
    !(0x20..0x80).contains(&b) || b"~^|%${}<>'`;@#!&*+=[]?\"".contains(&b)
}

/// A literal selective enough to prefilter on. Two bytes are enough when both are rare:
/// `^^` (cmd escapes) or a Cyrillic letter (two non-ASCII bytes in UTF-8, SigmaHQ's
/// homoglyph rules), which without this ran on every process event. One rare ASCII byte
/// is enough too: the backtick of PowerShell token obfuscation (`\w+`(?:\w+|-|.)`…`),
/// whose rule otherwise ran three regexes on every process creation.
fn usable(lit: &[u8]) -> bool {
    lit.len() > MIN_LITERAL
        || (lit.len() == MIN_LITERAL && lit.iter().any(|&b| rare_in_text(b)))
        || (lit.len() == 2 && lit.iter().all(|&b| rare_in_text(b)))
        || (lit.len() == 1 && lit[0].is_ascii() && rare_in_text(lit[0]))
}

/// Fields with at least this many literals are searched with a [`LiteralSet`]; smaller sets
/// use an Aho-Corasick DFA (measured: below this size the DFA is as fast and simpler).
pub const LARGE_SET: usize = 16;

/// How selective a group is: its shortest literal (longer is rarer), then fewer atoms.
fn score(g: &Group) -> (usize, std::cmp::Reverse<usize>) {
    (
        g.iter().map(|a| a.lit.len()).min().unwrap_or(usize::MAX),
        std::cmp::Reverse(g.len()),
    )
}

/// The groups every match of `n` satisfies (see the module doc), or `None`.
pub fn necessary(n: &Node, leaves: &[LeafDef]) -> Option<Vec<Group>> {
    let mut g = groups(n, leaves)?;
    for x in g.iter_mut() {
        x.sort();
        x.dedup();
    }
    g.sort();
    g.dedup();
    if g.len() > MAX_GROUPS {
        g.sort_by_key(|x| std::cmp::Reverse(score(x)));
        g.truncate(MAX_GROUPS);
    }
    Some(g)
}

fn groups(n: &Node, leaves: &[LeafDef]) -> Option<Vec<Group>> {
    match n {
        Node::Const(true) => None,
        // Never matches: one group nothing can satisfy.
        Node::Const(false) => Some(vec![Vec::new()]),
        Node::Not(_) => None,
        Node::And(c) => {
            let all: Vec<Group> = c
                .iter()
                .filter_map(|x| groups(x, leaves))
                .flatten()
                .collect();
            (!all.is_empty()).then_some(all)
        }
        Node::Or(c) => {
            let mut union = Vec::new();
            for x in c.iter() {
                let best = groups(x, leaves)?.into_iter().max_by_key(score)?;
                union.extend(best);
            }
            Some(vec![union])
        }
        Node::Leaf(l) => {
            let d = &leaves[*l as usize];
            let lits: Vec<Box<[u8]>> = match &d.test {
                Test::Str(p) => vec![p.required_literal()?.to_ascii_lowercase().into()],
                Test::StrSet(set) => set
                    .literals
                    .as_ref()?
                    .iter()
                    .map(|l| l.to_ascii_lowercase().into())
                    .collect(),
                Test::Regex(r) => regex_literals(r.as_str())?,
                _ => return None,
            };
            Some(vec![
                lits.into_iter()
                    .map(|lit| Atom {
                        field: d.field,
                        lit,
                    })
                    .collect(),
            ])
        }
    }
}

/// Keeps, for every rule, the [`KEEP_GROUPS`] groups least likely to be satisfied by chance,
/// and none with a literal too short to filter (see [`MIN_LITERAL`]).
///
/// Any subset of a rule's groups is still necessary, so dropping groups never causes a false
/// negative; it only trades some selectivity for less work per hit. A group is as common as
/// its most common atom, and an atom is as common as the number of rules that need it: a
/// literal that a pipeline added to a thousand rules (`Channel: …Sysmon/Operational`) is in
/// nearly every event they see, while `\whoami.exe` is rare. An atom that every rule of a
/// route bucket needs (of at least [`BUCKET_MIN`] rules) is as common, however few rules
/// need it overall: it describes the bucket's events (`action: request` in every rule on web
/// server logs, so in every web server event), not what sets one rule apart from the others
/// there. ("Most rules" rather than all cost ~2% on SigmaHQ: it also caught literals
/// shared by the rules of a small bucket that do set them apart from the bucket's events.) Such very common
/// groups are kept only when a rule has nothing else.
///
/// `buckets[i]` are rule `i`'s route buckets.
pub fn select(all: &mut [Option<Vec<Group>>], buckets: &[Vec<BucketId>]) {
    let mut popularity: hashbrown::HashMap<Atom, usize> = hashbrown::HashMap::new();
    let mut in_bucket: hashbrown::HashMap<(Atom, BucketId), usize> = hashbrown::HashMap::new();
    let mut bucket_rules: hashbrown::HashMap<BucketId, usize> = hashbrown::HashMap::new();
    for (gs, bs) in all.iter().zip(buckets) {
        for b in bs {
            *bucket_rules.entry(*b).or_default() += 1;
        }
        let Some(gs) = gs else { continue };
        for a in gs.iter().flatten() {
            *popularity.entry(a.clone()).or_default() += 1;
        }
        let mut atoms: Vec<&Atom> = gs.iter().flatten().collect();
        atoms.sort();
        atoms.dedup();
        for a in atoms {
            for b in bs {
                *in_bucket.entry((a.clone(), *b)).or_default() += 1;
            }
        }
    }
    let too_common = (all.len() / 16).max(64);
    // Atoms every rule of one of their buckets needs (see above).
    let bucket_common: hashbrown::HashSet<(Atom, BucketId)> = in_bucket
        .into_iter()
        .filter(|&((_, b), n)| {
            let rules = bucket_rules[&b];
            rules >= BUCKET_MIN && n == rules
        })
        .map(|(k, _)| k)
        .collect();
    for (slot, bs) in all.iter_mut().zip(buckets) {
        let Some(gs) = slot else { continue };
        let common = |g: &Group| {
            g.iter()
                .map(|a| {
                    // Only for the rules of that bucket: `IntegrityLevel: System` in every
                    // rule of a small bucket says nothing about process creations.
                    if bs.iter().any(|b| bucket_common.contains(&(a.clone(), *b))) {
                        too_common
                    } else {
                        popularity.get(a).copied().unwrap_or(0)
                    }
                })
                .max()
                .unwrap_or(0)
        };
        // Short literals (`arp`, `net`) report often, but far less often than a group every
        // routed event satisfies (`Channel: …Sysmon/Operational`): when a rule has nothing
        // better, its best group of searchable short literals is kept instead.
        let fallback = if gs
            .iter()
            .any(|g| g.iter().all(|a| usable(&a.lit)) && common(g) < too_common)
        {
            None
        } else {
            gs.iter()
                .filter(|g| {
                    !g.is_empty()
                        && common(g) < too_common
                        && g.iter().all(|a| a.lit.len() >= MIN_LITERAL)
                })
                .min_by_key(|g| (common(g), std::cmp::Reverse(score(g))))
                .cloned()
        };
        gs.retain(|g| g.iter().all(|a| usable(&a.lit)));
        gs.extend(fallback);
        gs.sort_by_key(|g| {
            let shortest = g.iter().map(|a| a.lit.len()).min().unwrap_or(0);
            (common(g), std::cmp::Reverse(shortest), g.len())
        });
        let mut keep = 0;
        while keep < gs.len() && keep < KEEP_GROUPS && (keep == 0 || common(&gs[keep]) < too_common)
        {
            keep += 1;
        }
        gs.truncate(keep);
        if gs.is_empty() {
            // Nothing selective left: the rule is evaluated whenever it is routed.
            *slot = None;
        }
    }
}

impl FieldSel {
    fn key(&self) -> u64 {
        match self {
            FieldSel::Keyword => u64::MAX,
            FieldSel::Field(f) => f.0 as u64,
        }
    }
}

/// Literals one of which every match of `pattern` contains, lowercased; `None` when unknown.
///
/// Two derivations, each sufficient on its own; the more selective wins (see [`score`]):
/// - regex-syntax's prefix extractor: every match starts with one of its literals;
/// - [`inner_literals`]: every match contains one of them somewhere. Prefixes are useless
///   for `(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe` (`.exe` is in every process
///   event) where the inner `werfault` is rare.
fn regex_literals(pattern: &str) -> Option<Vec<Box<[u8]>>> {
    use regex_syntax::hir::literal::Extractor;
    // The compiled regex carries its flags inline ((?i) etc.), so re-parsing its text is
    // faithful.
    let hir = crate::event::regex_hir(pattern)?;
    let seq = Extractor::new().extract(&hir);
    let prefixes = seq.literals().and_then(|lits| {
        if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
            return None;
        }
        let mut v: Vec<Box<[u8]>> = lits
            .iter()
            .map(|l| l.as_bytes().to_ascii_lowercase().into())
            .collect();
        v.sort();
        v.dedup();
        Some(v)
    });
    let inner = inner_literals(&hir);
    let rank = |v: &Vec<Box<[u8]>>| literal_set_score(v);
    match (prefixes, inner) {
        (Some(p), Some(i)) => Some(if rank(&i) > rank(&p) { i } else { p }),
        (p, i) => p.or(i),
    }
}

/// How selective a set of alternative literals is: its shortest literal, then fewer of them.
fn literal_set_score(v: &[Box<[u8]>]) -> (usize, std::cmp::Reverse<usize>) {
    (
        v.iter().map(|l| l.len()).min().unwrap_or(0),
        std::cmp::Reverse(v.len()),
    )
}

/// Most characters a class may hold and still count as alternatives of a literal (`(?i)s`
/// is `S`, `s` and the long s `ſ`; `(?i)k` also holds the Kelvin sign).
const CLASS_ALTS: usize = 4;

/// Most alternatives a run of literals may grow to (each `(?i)s` doubles them) before it
/// ends and a new run starts.
const RUN_ALTS: usize = 16;

/// The strings a class matches when it holds at most [`CLASS_ALTS`] characters (or bytes),
/// each ASCII-lowercased and deduplicated: the prefilter compares ASCII-case-insensitively,
/// so `[Aa]` is the one literal `a` and `(?i)s` the two `s` and `ſ`.
fn class_alternatives(c: &regex_syntax::hir::Class) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::Class;
    let mut out: Vec<Vec<u8>> = Vec::new();
    match c {
        Class::Bytes(b) => {
            let n: usize = b
                .ranges()
                .iter()
                .map(|r| (r.end() - r.start()) as usize + 1)
                .sum();
            if n > CLASS_ALTS {
                return None;
            }
            for r in b.ranges() {
                out.extend((r.start()..=r.end()).map(|x| vec![x.to_ascii_lowercase()]));
            }
        }
        Class::Unicode(u) => {
            let n: usize = u
                .ranges()
                .iter()
                .map(|r| (r.end() as usize) - (r.start() as usize) + 1)
                .sum();
            if n > CLASS_ALTS {
                return None;
            }
            for r in u.ranges() {
                for ch in r.start()..=r.end() {
                    let mut buf = [0u8; 4];
                    out.push(ch.encode_utf8(&mut buf).as_bytes().to_ascii_lowercase());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    (!out.is_empty()).then_some(out)
}

/// Literals one of which every match of `h` contains, lowercased (ASCII); `None` when
/// there is no such finite set of non-empty literals.
///
/// - a literal is itself, and a class of a few characters each of them
///   ([`class_alternatives`]: `(?i)s` is `s` or `ſ`);
/// - a concatenation's matches contain, contiguously, every child's match: each run of
///   adjacent literal children gives the literals one of which every match contains (their
///   cross product, up to [`RUN_ALTS`]: `(?i)system` is `system`, `ſystem`, `syſtem`,
///   `ſyſtem`), and so does each child's own set; the most selective of these is taken;
/// - an alternation's matches are some branch's: the union of the branches' sets;
/// - a repetition at least once, or a capture, contains its child's match;
/// - anything else (optional parts, look-arounds, empty) gives nothing.
pub fn inner_literals(h: &regex_syntax::hir::Hir) -> Option<Vec<Box<[u8]>>> {
    use regex_syntax::hir::HirKind;
    // The strings one element matches, when it is a literal or a small class.
    let single = |h: &regex_syntax::hir::Hir| -> Option<Vec<Vec<u8>>> {
        match h.kind() {
            HirKind::Literal(l) if !l.0.is_empty() => Some(vec![l.0.to_ascii_lowercase()]),
            HirKind::Class(c) => class_alternatives(c),
            _ => None,
        }
    };
    let finish = |run: Vec<Vec<u8>>| -> Vec<Box<[u8]>> {
        let mut v: Vec<Box<[u8]>> = run.into_iter().map(Vec::into_boxed_slice).collect();
        v.sort();
        v.dedup();
        v
    };
    match h.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => single(h).map(finish),
        HirKind::Capture(c) => inner_literals(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => inner_literals(&r.sub),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for x in subs {
                all.extend(inner_literals(x)?);
            }
            all.sort();
            all.dedup();
            Some(all)
        }
        HirKind::Concat(subs) => {
            let mut best: Option<Vec<Box<[u8]>>> = None;
            let mut consider = |cand: Vec<Box<[u8]>>| {
                if cand.is_empty() || cand.iter().any(|l| l.is_empty()) {
                    return;
                }
                if best
                    .as_ref()
                    .is_none_or(|b| literal_set_score(&cand) > literal_set_score(b))
                {
                    best = Some(cand);
                }
            };
            // A run of adjacent literal elements: every match contains one of the
            // concatenations (the cross product of the elements' strings).
            let mut run: Vec<Vec<u8>> = Vec::new();
            for x in subs {
                match single(x) {
                    Some(alts) => {
                        if !run.is_empty() && run.len() * alts.len() > RUN_ALTS {
                            consider(finish(std::mem::take(&mut run)));
                        }
                        run = if run.is_empty() {
                            alts
                        } else {
                            run.iter()
                                .flat_map(|r| {
                                    alts.iter().map(move |a| {
                                        let mut x = r.clone();
                                        x.extend_from_slice(a);
                                        x
                                    })
                                })
                                .collect()
                        };
                    }
                    None => {
                        if !run.is_empty() {
                            consider(finish(std::mem::take(&mut run)));
                        }
                        if let Some(v) = inner_literals(x) {
                            consider(v);
                        }
                    }
                }
            }
            if !run.is_empty() {
                consider(finish(run));
            }
            best
        }
        _ => None,
    }
}

/// One rule group a pattern satisfies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit {
    rule: RuleId,
    /// Bit of the group in the rule's mask.
    group: u8,
    /// The rule's mask when all its groups are satisfied.
    full: u64,
}

/// The searchers of one field, reporting field-local pattern ids.
struct FieldSearch {
    /// Aho-Corasick (ASCII case-insensitive) over small sets.
    ac: Option<AhoCorasick>,
    /// Anchored search over the lowercased value, for large sets.
    large: Option<LiteralSet>,
    /// Global index of this field's pattern 0 (for the per-event seen set).
    base: u32,
    /// Pattern id → the rule groups needing it.
    hits: Vec<Box<[Hit]>>,
}

/// The prefilter of a rule set.
#[derive(Default)]
pub struct Prefilter {
    /// FieldId → searcher index (`u32::MAX`: none).
    by_field: Vec<u32>,
    keyword: Option<u32>,
    fields: Vec<FieldSearch>,
    /// Per bucket, the fields (searcher indices, as a bitset) its rules need scanned.
    bucket_fields: Vec<Vec<u64>>,
    patterns: usize,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Prefilter({} fields, {} patterns)",
            self.fields.len(),
            self.patterns
        )
    }
}

/// Per-thread state: the groups each rule has satisfied in this event, the patterns already
/// seen (a pattern's rules are visited once per event, however often it occurs), the
/// fields to scan, and a lowercase copy of the value being scanned.
#[derive(Debug, Default)]
pub struct PfScratch {
    masks: Vec<u64>,
    touched: Vec<u32>,
    seen: Vec<u64>,
    seen_touched: Vec<u32>,
    wanted: Vec<u64>,
    lower: Vec<u8>,
}

impl Prefilter {
    /// Builds the searchers from each rule's groups (`None`: not prefiltered) and bucket.
    pub fn build(
        groups: &[Option<Vec<Group>>],
        buckets: &[Vec<BucketId>],
        bucket_count: usize,
    ) -> Prefilter {
        use std::collections::BTreeMap;
        // field → literal → hits
        type ByLiteral = BTreeMap<Box<[u8]>, Vec<Hit>>;
        let mut by: BTreeMap<u64, (FieldSel, ByLiteral)> = BTreeMap::new();
        let mut field_buckets: BTreeMap<u64, Vec<BucketId>> = BTreeMap::new();
        for (i, gs) in groups.iter().enumerate() {
            let Some(gs) = gs else { continue };
            let full = if gs.len() >= 64 {
                u64::MAX
            } else {
                (1u64 << gs.len()) - 1
            };
            for (gi, g) in gs.iter().enumerate() {
                for atom in g {
                    field_buckets
                        .entry(atom.field.key())
                        .or_default()
                        .extend_from_slice(&buckets[i]);
                    by.entry(atom.field.key())
                        .or_insert_with(|| (atom.field, BTreeMap::new()))
                        .1
                        .entry(atom.lit.clone())
                        .or_default()
                        .push(Hit {
                            rule: RuleId(i as u32),
                            group: gi as u8,
                            full,
                        });
                }
            }
        }
        let mut pf = Prefilter::default();
        let words = by.len().div_ceil(64).max(1);
        pf.bucket_fields = vec![vec![0u64; words]; bucket_count];
        for (key, (field, lits)) in by {
            let idx = pf.fields.len();
            for b in &field_buckets[&key] {
                pf.bucket_fields[b.0 as usize][idx / 64] |= 1 << (idx % 64);
            }
            let pats: Vec<&[u8]> = lits.keys().map(|k| &**k).collect();
            let (ac, large) = if pats.len() >= LARGE_SET {
                (None, Some(LiteralSet::build(&pats)))
            } else {
                let ac = AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                    .build(&pats)
                    .expect("literal patterns always build");
                (Some(ac), None)
            };
            let base = pf.patterns as u32;
            pf.patterns += pats.len();
            let hits = lits
                .into_values()
                .map(|mut v| {
                    v.dedup();
                    v.into_boxed_slice()
                })
                .collect();
            pf.fields.push(FieldSearch {
                ac,
                large,
                base,
                hits,
            });
            match field {
                FieldSel::Keyword => pf.keyword = Some(idx as u32),
                FieldSel::Field(f) => {
                    if pf.by_field.len() <= f.index() {
                        pf.by_field.resize(f.index() + 1, u32::MAX);
                    }
                    pf.by_field[f.index()] = idx as u32;
                }
            }
        }
        pf
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// Calls `hit` once for every rule all of whose kept groups are satisfied in `ev`,
    /// scanning only the fields that rules of `buckets` need.
    pub fn scan(
        &self,
        ev: &Event<'_>,
        buckets: &[BucketId],
        rules: usize,
        s: &mut PfScratch,
        tmp: &mut Vec<u8>,
        mut hit: impl FnMut(RuleId),
    ) {
        if self.fields.is_empty() {
            return;
        }
        s.prepare(rules, self.patterns, self.bucket_fields[0].len());
        for b in buckets {
            for (w, x) in s.wanted.iter_mut().zip(&self.bucket_fields[b.0 as usize]) {
                *w |= x;
            }
        }
        let wanted = |s: &PfScratch, i: usize| s.wanted[i / 64] & (1 << (i % 64)) != 0;
        for (f, v) in ev.known_fields() {
            let Some(i) = self.field_index(f) else {
                continue;
            };
            if !wanted(s, i) {
                continue;
            }
            let text: &[u8] = match v {
                Value::Str(b) => b,
                Value::Null => continue,
                other => {
                    let n = other.text(tmp).len();
                    &tmp[..n]
                }
            };
            report(&self.fields[i], text, s, &mut hit);
        }
        if let Some(k) = self.keyword
            && wanted(s, k as usize)
        {
            let text = ev.message().unwrap_or(ev.raw());
            report(&self.fields[k as usize], text, s, &mut hit);
        }
        s.reset();
    }

    #[inline]
    fn field_index(&self, f: FieldId) -> Option<usize> {
        match self.by_field.get(f.index()) {
            Some(&i) if i != u32::MAX => Some(i as usize),
            _ => None,
        }
    }
}

impl PfScratch {
    fn prepare(&mut self, rules: usize, patterns: usize, field_words: usize) {
        if self.masks.len() < rules {
            self.masks.resize(rules, 0);
        }
        let words = patterns.div_ceil(64);
        if self.seen.len() < words {
            self.seen.resize(words, 0);
        }
        self.wanted.clear();
        self.wanted.resize(field_words, 0);
    }

    /// Forgets the event: only the words touched are cleared.
    fn reset(&mut self) {
        for &r in &self.touched {
            self.masks[r as usize] = 0;
        }
        self.touched.clear();
        for &w in &self.seen_touched {
            self.seen[w as usize] = 0;
        }
        self.seen_touched.clear();
    }
}

/// Scans `text` with one field's searcher.
#[inline]
fn report(fs: &FieldSearch, text: &[u8], s: &mut PfScratch, hit: &mut impl FnMut(RuleId)) {
    if let Some(ac) = &fs.ac {
        for m in ac.find_overlapping_iter(text) {
            pattern(fs, m.pattern().as_u32(), s, hit);
        }
    }
    if let Some(set) = &fs.large {
        let mut lower = std::mem::take(&mut s.lower);
        lower.clear();
        lower.extend_from_slice(text);
        lower.make_ascii_lowercase();
        set.scan(&lower, |l| pattern(fs, l, s, hit));
        s.lower = lower;
    }
}

/// Pattern `p` of the field occurred: satisfy its rule groups (once per event).
#[inline]
fn pattern(fs: &FieldSearch, p: u32, s: &mut PfScratch, hit: &mut impl FnMut(RuleId)) {
    let gp = fs.base as usize + p as usize;
    let (w, b) = (gp / 64, gp % 64);
    if s.seen[w] & (1 << b) != 0 {
        return;
    }
    if s.seen[w] == 0 {
        s.seen_touched.push(w as u32);
    }
    s.seen[w] |= 1 << b;
    for h in fs.hits[p as usize].iter() {
        let i = h.rule.0 as usize;
        let old = s.masks[i];
        let new = old | (1u64 << h.group);
        if new == old {
            continue;
        }
        if old == 0 {
            s.touched.push(h.rule.0);
        }
        s.masks[i] = new;
        if new == h.full {
            hit(h.rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lits(pattern: &str) -> Option<Vec<String>> {
        regex_literals(pattern).map(|v| {
            v.iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect()
        })
    }

    #[test]
    fn regex_literals_table() {
        let cases: &[(&str, Option<&[&str]>)] = &[
            // Prefixes: `.exe` is everywhere; the inner literal is rarer.
            (
                r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#,
                // (?i)s also folds to U+017F: both spellings.
                Some(&["werfaultsecure.exe", "werfaultſecure.exe"]),
            ),
            // Each (?i)s doubles a run's literals (a run of `tem` alone is in `items`).
            (
                r"(?i)[0-9]+system",
                Some(&["system", "syſtem", "ſystem", "ſyſtem"]),
            ),
            // Past RUN_ALTS alternatives a run ends and the next starts.
            (r"[0-9]+[ab][cd][ef][gh][ij]xyz", Some(&["ixyz", "jxyz"])),
            (r"ipconfig\s+/all", Some(&["ipconfig"])),
            (r"net\s+config", Some(&["config"])),
            (r"(?i)ABC(d|ef)", Some(&["abcd", "abcef"])),
            // Prefixes, when they are the more selective set.
            (r"x(foo|barbaz)+y", Some(&["xbarbaz", "xfoo"])),
            // The prefix extractor spells out the Kelvin sign that `(?i)k` also matches.
            (r"(?i)k", Some(&["k", "\u{212a}"])),
            (r"a?b*", None),
            (r"\d+", None),
            (r"^ab\bcd$", Some(&["abcd"])),
            // A look-around ends a run of literals.
            (r"\d+ab\bcde", Some(&["cde"])),
        ];
        for (p, want) in cases {
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(lits(p), want, "{p}");
        }
    }

    const PATTERNS: &[&str] = &[
        r#"(?i)\.exe["']?\s+[^"]{0,64}werfaultsecure\.exe["']?\s+\d{2,10}"#,
        r"(?i)a(bc|d+e)f",
        r"x(ab|cd)*y(ef|g)",
        r"(?i)(k|s)[a-c]é+z",
        r"\w+`(?:\w+|-|.)`[\w+|\s]",
        r"q(?:ab){2,3}r",
        r"(?i)[0-9]+system",
        r"[0-9]+[ab][cd][ef][gh][ij]xyz",
    ];

    proptest! {
        /// The contract: whenever a regex matches, the lowercased text contains one of the
        /// literals derived for it.
        #[test]
        fn every_match_contains_a_literal(
            p in 0..PATTERNS.len(),
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("a"), Just("B"), Just("c"), Just("D"), Just("e"), Just("F"),
                    Just("x"), Just("y"), Just("q"), Just("r"), Just("k"), Just("K"),
                    Just("S"), Just("ſ"), Just("é"), Just("É"), Just("z"), Just("`"),
                    Just("-"), Just(" "), Just(".exe "), Just("WerFaultSecure.EXE 12"),
                    Just("werfaultſecure.exe 12"), Just("\""), Just("SyſTEM"), Just("7"),
                    Just("acegi"), Just("bdfhj"), Just("xyz"),
                ],
                0..16,
            ),
        ) {
            let hay: String = parts.concat();
            let re = regex::bytes::Regex::new(PATTERNS[p]).unwrap();
            if re.is_match(hay.as_bytes())
                && let Some(ls) = regex_literals(PATTERNS[p])
            {
                let low = hay.as_bytes().to_ascii_lowercase();
                prop_assert!(
                    ls.iter().any(|l| memchr::memmem::find(&low, l).is_some()),
                    "{} on {:?}: {:?}", PATTERNS[p], hay, ls
                );
            }
        }
    }
}
