//! The literal prefilter: one Aho-Corasick automaton per field over the literals rules
//! require, so an event is only evaluated against rules whose literals it contains.
//!
//! **Contract: never a false negative.** For every rule, [`necessary`] computes a set of
//! (field, literal) atoms such that *any event the rule matches contains at least one of
//! them* as an ASCII-case-insensitive substring of that field's value (the keyword text for
//! keywords), or says the rule cannot be prefiltered (`None`). The derivation:
//! - a string leaf needs its longest literal segment (every match contains it);
//! - a regex leaf needs one of its prefix literals (regex-syntax's extractor: every match
//!   starts with one of them), when that set is finite and has no empty literal;
//! - OR needs the union of its children's sets (any child may be the one that matched);
//! - AND needs any one child's set (all children matched), the most selective is taken;
//! - NOT, numbers, booleans, `cidr`, comparisons, `exists`, `null` and `fieldref` give no
//!   set: such leaves can match without any literal present.
//! Scanning is case-insensitive even for `cased` patterns (a superset), and every value a
//! leaf can test is scanned (numbers as their text, every element of an array).

use aho_corasick::AhoCorasick;

use super::leaf::Test;
use super::{FieldSel, LeafDef, Node, RuleId};
use crate::event::{Event, FieldId, Value};

/// A literal a rule needs in a field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Atom {
    pub field: FieldSel,
    /// ASCII-lowercased, non-empty.
    pub lit: Box<[u8]>,
}

/// The atoms of which every match of `n` contains one, or `None` when there is no such set.
pub fn necessary(n: &Node, leaves: &[LeafDef]) -> Option<Vec<Atom>> {
    match n {
        Node::Const(true) => None,
        Node::Const(false) => Some(Vec::new()),
        Node::Not(_) => None,
        Node::Or(c) => {
            let mut all = Vec::new();
            for x in c.iter() {
                all.extend(necessary(x, leaves)?);
            }
            all.sort_by(|a, b| (a.field.key(), &a.lit).cmp(&(b.field.key(), &b.lit)));
            all.dedup();
            Some(all)
        }
        Node::And(c) => c
            .iter()
            .filter_map(|x| necessary(x, leaves))
            .max_by_key(|atoms| {
                (
                    atoms
                        .iter()
                        .map(|a| a.lit.len())
                        .min()
                        .unwrap_or(usize::MAX),
                    std::cmp::Reverse(atoms.len()),
                )
            }),
        Node::Leaf(l) => {
            let d = &leaves[*l as usize];
            let lits: Vec<Box<[u8]>> = match &d.test {
                Test::Str(p) => vec![p.required_literal()?.to_ascii_lowercase().into()],
                Test::Regex(r) => regex_literals(r.as_str())?,
                _ => return None,
            };
            Some(
                lits.into_iter()
                    .map(|lit| Atom {
                        field: d.field,
                        lit,
                    })
                    .collect(),
            )
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

/// Prefix literals every match of `pattern` starts with, lowercased; `None` when unknown.
fn regex_literals(pattern: &str) -> Option<Vec<Box<[u8]>>> {
    use regex_syntax::hir::literal::Extractor;
    // The compiled regex carries its flags inline ((?i) etc.), so re-parsing its text is
    // faithful. Unicode off: literals are byte strings, as the matcher sees them.
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().extract(&hir);
    let lits = seq.literals()?;
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
}

struct Auto {
    ac: AhoCorasick,
    /// Pattern id → rules needing it.
    rules: Vec<Box<[RuleId]>>,
}

/// The automata, by field.
#[derive(Default)]
pub struct Prefilter {
    /// FieldId → automaton index (`u32::MAX`: none).
    by_field: Vec<u32>,
    keyword: Option<u32>,
    autos: Vec<Auto>,
    patterns: usize,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Prefilter({} automata, {} patterns)",
            self.autos.len(),
            self.patterns
        )
    }
}

/// Per-thread state of the prefilter: which rules were already reported for this event.
#[derive(Debug, Default)]
pub struct PfScratch {
    seen: Vec<u64>,
    touched: Vec<u32>,
}

impl Prefilter {
    /// Builds automata from each rule's atoms (`None`: the rule is not prefiltered).
    pub fn build(atoms: &[Option<Vec<Atom>>]) -> Prefilter {
        use std::collections::BTreeMap;
        // field → literal → rules
        let mut by: BTreeMap<u64, (FieldSel, BTreeMap<Box<[u8]>, Vec<RuleId>>)> = BTreeMap::new();
        for (i, a) in atoms.iter().enumerate() {
            for atom in a.iter().flatten() {
                by.entry(atom.field.key())
                    .or_insert_with(|| (atom.field, BTreeMap::new()))
                    .1
                    .entry(atom.lit.clone())
                    .or_default()
                    .push(RuleId(i as u32));
            }
        }
        let mut pf = Prefilter::default();
        for (_, (field, lits)) in by {
            let pats: Vec<&[u8]> = lits.keys().map(|k| &**k).collect();
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&pats)
                .expect("literal patterns always build");
            pf.patterns += pats.len();
            let rules = lits
                .into_values()
                .map(|mut v| {
                    v.dedup();
                    v.into_boxed_slice()
                })
                .collect();
            let idx = pf.autos.len() as u32;
            pf.autos.push(Auto { ac, rules });
            match field {
                FieldSel::Keyword => pf.keyword = Some(idx),
                FieldSel::Field(f) => {
                    if pf.by_field.len() <= f.index() {
                        pf.by_field.resize(f.index() + 1, u32::MAX);
                    }
                    pf.by_field[f.index()] = idx;
                }
            }
        }
        pf
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    fn auto_for(&self, f: FieldId) -> Option<&Auto> {
        match self.by_field.get(f.index()) {
            Some(&i) if i != u32::MAX => Some(&self.autos[i as usize]),
            _ => None,
        }
    }

    /// Calls `hit` once for every rule with a literal present in `ev`.
    pub fn scan(
        &self,
        ev: &Event<'_>,
        s: &mut PfScratch,
        tmp: &mut Vec<u8>,
        mut hit: impl FnMut(RuleId),
    ) {
        for (f, v) in ev.known_fields() {
            let Some(auto) = self.auto_for(f) else {
                continue;
            };
            let text: &[u8] = match v {
                Value::Str(b) => b,
                Value::Null => continue,
                other => {
                    let n = other.text(tmp).len();
                    &tmp[..n]
                }
            };
            report(auto, text, s, &mut hit);
        }
        if let Some(k) = self.keyword {
            let text = ev.message().unwrap_or(ev.raw());
            report(&self.autos[k as usize], text, s, &mut hit);
        }
        for &w in &s.touched {
            s.seen[w as usize] = 0;
        }
        s.touched.clear();
    }
}

#[inline]
fn report(auto: &Auto, text: &[u8], s: &mut PfScratch, hit: &mut impl FnMut(RuleId)) {
    for m in auto.ac.find_overlapping_iter(text) {
        for &r in auto.rules[m.pattern().as_usize()].iter() {
            let (w, b) = (r.0 as usize / 64, r.0 % 64);
            if s.seen.len() <= w {
                s.seen.resize(w + 1, 0);
            }
            if s.seen[w] & (1 << b) == 0 {
                if s.seen[w] == 0 {
                    s.touched.push(w as u32);
                }
                s.seen[w] |= 1 << b;
                hit(r);
            }
        }
    }
}
