//! Stage 3: which rules can apply to an event, decided with a few hash lookups.
//!
//! Built when rules load, from what every compiled rule *requires*:
//! - a mandatory equality on a routing field (`EventID: 1 AND Channel: ...`, as the shipped
//!   Windows pipelines add them from the rule's logsource): the rule lives in the bucket of
//!   that (field, value), so an event only meets rules whose required value it carries;
//! - else a logsource the event itself must declare (inputs and extractors assign event
//!   logsource classes): the rule lives in that class's bucket;
//! - else (no logsource and no required value) the global bucket.
//!
//! Each rule sits in exactly one bucket. The routing field of a rule is, among the fields it
//! requires equal to a constant, the one most rules require (so events need few lookups).
//! Values are compared ASCII-case-folded, as the rules' strings are.

use hashbrown::{Equivalent, HashMap};

use crate::event::{Event, FieldId, Value};
use crate::sigma::Logsource;

/// Index of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketId(pub u32);

/// Where one rule is routed, as decided at load time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    Value(FieldId, Box<[u8]>),
    Class(Logsource),
    Global,
}

/// (position in `Router::fields`, folded value): the key of a value bucket.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Key {
    pos: u16,
    value: Box<[u8]>,
}

/// Borrowed form of [`Key`], so lookups allocate nothing. Hashes exactly like `Key`.
#[derive(Hash)]
struct KeyRef<'a> {
    pos: u16,
    value: &'a [u8],
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        self.pos == k.pos && *self.value == *k.value
    }
}

/// The routing index.
#[derive(Debug, Default)]
pub struct Router {
    /// Fields looked up per event, in order.
    fields: Vec<FieldId>,
    by_value: HashMap<Key, BucketId>,
    /// Event logsource class `c` (1-based) → the buckets of rules its facets satisfy.
    class_lists: Vec<Vec<BucketId>>,
    global: Option<BucketId>,
    buckets: usize,
    /// Describes each bucket, for diagnostics.
    pub names: Vec<String>,
}

/// Picks each rule's route from its mandatory equalities and logsource.
///
/// `required[i]` are rule i's (field, folded value) equalities; `logsource[i]` is `Some` when
/// the rule needs the event to declare that logsource.
pub fn choose_routes(
    required: &[Vec<(FieldId, Box<[u8]>)>],
    logsource: &[Option<Logsource>],
) -> Vec<Route> {
    let mut popularity: HashMap<FieldId, usize> = HashMap::new();
    for r in required {
        let mut seen: Vec<FieldId> = r.iter().map(|(f, _)| *f).collect();
        seen.sort();
        seen.dedup();
        for f in seen {
            *popularity.entry(f).or_default() += 1;
        }
    }
    required
        .iter()
        .zip(logsource)
        .map(|(req, ls)| {
            let best = req.iter().max_by_key(|(f, v)| {
                (
                    popularity.get(f).copied().unwrap_or(0),
                    std::cmp::Reverse(*f),
                    v.len(),
                )
            });
            match (best, ls) {
                (Some((f, v)), _) => Route::Value(*f, v.clone()),
                (None, Some(ls)) => Route::Class(ls.clone()),
                (None, None) => Route::Global,
            }
        })
        .collect()
}

impl Router {
    /// Builds the index; returns it and each rule's bucket. `classes` are the event
    /// logsource classes inputs can assign (index = class id - 1; class 0 is "none").
    pub fn build(routes: &[Route], classes: &[Logsource]) -> (Router, Vec<BucketId>) {
        let mut r = Router::default();
        let mut class_buckets: HashMap<Logsource, BucketId> = HashMap::new();
        let mut out = Vec::with_capacity(routes.len());
        for route in routes {
            let b = match route {
                Route::Value(f, v) => {
                    let pos = match r.fields.iter().position(|x| x == f) {
                        Some(p) => p,
                        None => {
                            r.fields.push(*f);
                            r.fields.len() - 1
                        }
                    } as u16;
                    let next = BucketId(r.buckets as u32);
                    let b = *r
                        .by_value
                        .entry(Key {
                            pos,
                            value: v.clone(),
                        })
                        .or_insert(next);
                    if b == next {
                        r.buckets += 1;
                        r.names
                            .push(format!("field#{}={}", f.0, String::from_utf8_lossy(v)));
                    }
                    b
                }
                Route::Class(ls) => {
                    let next = BucketId(r.buckets as u32);
                    let b = *class_buckets.entry(ls.clone()).or_insert(next);
                    if b == next {
                        r.buckets += 1;
                        r.names.push(format!("logsource {ls}"));
                    }
                    b
                }
                Route::Global => *r.global.get_or_insert_with(|| {
                    let b = BucketId(r.buckets as u32);
                    r.buckets += 1;
                    r.names.push("global".into());
                    b
                }),
            };
            out.push(b);
        }
        // An event class needs every class bucket whose logsource its facets satisfy.
        r.class_lists = classes
            .iter()
            .map(|class| {
                let mut v: Vec<BucketId> = class_buckets
                    .iter()
                    .filter(|(ls, _)| ls.is_satisfied_by(class))
                    .map(|(_, b)| *b)
                    .collect();
                v.sort();
                v
            })
            .collect();
        (r, out)
    }

    pub fn bucket_count(&self) -> usize {
        self.buckets
    }

    /// Appends the buckets that apply to `ev` (of logsource class `class`, 0 = none) to `out`.
    /// `tmp` is scratch for number formatting and case folding.
    pub fn buckets_into(
        &self,
        ev: &Event<'_>,
        class: u16,
        tmp: &mut Vec<u8>,
        out: &mut Vec<BucketId>,
    ) {
        if let Some(g) = self.global {
            out.push(g);
        }
        if class > 0 {
            if let Some(list) = self.class_lists.get(class as usize - 1) {
                out.extend_from_slice(list);
            }
        }
        for (pos, f) in self.fields.iter().enumerate() {
            for v in ev.values(*f) {
                let text: &[u8] = match v {
                    Value::Str(s) => {
                        tmp.clear();
                        tmp.extend(s.iter().map(u8::to_ascii_lowercase));
                        tmp
                    }
                    other => {
                        let t = other.text(tmp);
                        let n = t.len();
                        tmp.truncate(n);
                        tmp.make_ascii_lowercase();
                        tmp
                    }
                };
                if let Some(b) = self.by_value.get(&KeyRef {
                    pos: pos as u16,
                    value: text,
                }) {
                    out.push(*b);
                }
            }
        }
    }
}
