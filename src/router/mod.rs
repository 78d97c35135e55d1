//! Stage 3: which rules can apply to an event, decided with a few hash lookups.
//!
//! Built when rules load, from what every compiled rule *requires*:
//! - a mandatory equality on a routing field (`EventID: 1 AND Channel: ...`, as the shipped
//!   Windows pipelines add them from the rule's logsource), or a mandatory choice of a few
//!   values (`EventID: [19, 20, 21]`): the rule lives in the bucket of each such (field,
//!   value), so an event only meets rules whose required value it carries;
//! - else a logsource the event itself must declare (inputs and extractors assign event
//!   logsource classes): the rule lives in that class's bucket;
//! - else (no logsource and no required value) the global bucket.
//!
//! Among a rule's requirements the router takes the most selective one: the one whose values
//! the fewest rules share (`EventID: 4625` before `Channel: Security`).
//! Values are compared ASCII-case-folded, as the rules' strings are.

use hashbrown::{Equivalent, HashMap};

use crate::event::{Event, FieldId, Value};
use crate::sigma::Logsource;

/// Index of a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketId(pub u32);

/// A field that must equal one of these (folded) values for a rule to match.
pub type Requirement = (FieldId, Vec<Box<[u8]>>);

/// Most values a requirement may list and still route (more would mean many buckets).
pub const MAX_ROUTE_VALUES: usize = 8;

/// Where one rule is routed, as decided at load time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// In the bucket of each value.
    Values(FieldId, Vec<Box<[u8]>>),
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

/// The lengths of one routing field's keys: bit `n` for a key of `n` bytes (below 256),
/// `long` for any longer one.
#[derive(Clone, Debug, Default)]
struct Lengths {
    bits: [u64; 4],
    long: bool,
}

impl Lengths {
    fn add(&mut self, n: usize) {
        if n < 256 {
            self.bits[n / 64] |= 1 << (n % 64);
        } else {
            self.long = true;
        }
    }

    #[inline]
    fn may_have(&self, n: usize) -> bool {
        if n < 256 {
            self.bits[n / 64] & (1 << (n % 64)) != 0
        } else {
            self.long
        }
    }
}

/// `Router::pos_of` for fields that are not routed on.
const NO_POS: u16 = u16::MAX;

/// The routing index.
#[derive(Debug, Default)]
pub struct Router {
    /// Fields looked up per event, in order.
    fields: Vec<FieldId>,
    /// Per field of `fields`, the lengths of its keys: string values of other lengths are
    /// not looked up.
    lens: Vec<Lengths>,
    /// FieldId index → position in `fields` ([`NO_POS`]: not a routing field).
    pos_of: Vec<u16>,
    by_value: HashMap<Key, BucketId>,
    /// Event logsource class `c` (1-based) → the buckets of rules its facets satisfy.
    class_lists: Vec<Vec<BucketId>>,
    global: Option<BucketId>,
    buckets: usize,
    /// Describes each bucket, for diagnostics.
    pub names: Vec<String>,
}

/// Picks each rule's route from its requirements and logsource.
///
/// `required[i]` are rule i's requirements; `logsource[i]` is `Some` when the rule needs the
/// event to declare that logsource.
pub fn choose_routes(required: &[Vec<Requirement>], logsource: &[Option<Logsource>]) -> Vec<Route> {
    // How many rules require each (field, value): the size of its bucket if all chose it.
    let mut count: HashMap<(FieldId, &[u8]), usize> = HashMap::new();
    for r in required {
        for (f, vs) in r {
            for v in vs {
                *count.entry((*f, v)).or_default() += 1;
            }
        }
    }
    required
        .iter()
        .zip(logsource)
        .map(|(req, ls)| {
            // The most selective requirement: the fewest rules share its buckets.
            let best = req
                .iter()
                .filter(|(_, v)| !v.is_empty() && v.len() <= MAX_ROUTE_VALUES)
                .min_by_key(|(f, vs)| {
                    let shared: usize = vs.iter().map(|v| count[&(*f, &**v)]).sum();
                    (shared, vs.len(), *f)
                });
            match (best, ls) {
                (Some((f, v)), _) => Route::Values(*f, v.clone()),
                (None, Some(ls)) => Route::Class(ls.clone()),
                (None, None) => Route::Global,
            }
        })
        .collect()
}

impl Router {
    /// Builds the index; returns it and each rule's buckets. `classes` are the event
    /// logsource classes inputs and extractors can assign (index = class id - 1; class 0 is
    /// "none"); a class is one or several logsources (an sshd line is `service: sshd` and
    /// `service: auth`).
    pub fn build(routes: &[Route], classes: &[Vec<Logsource>]) -> (Router, Vec<Vec<BucketId>>) {
        let mut r = Router::default();
        let mut class_buckets: HashMap<Logsource, BucketId> = HashMap::new();
        let mut out = Vec::with_capacity(routes.len());
        for route in routes {
            let b = match route {
                Route::Values(f, vs) => {
                    let pos = match r.fields.iter().position(|x| x == f) {
                        Some(p) => p,
                        None => {
                            r.fields.push(*f);
                            r.lens.push(Lengths::default());
                            if r.pos_of.len() <= f.index() {
                                r.pos_of.resize(f.index() + 1, NO_POS);
                            }
                            r.pos_of[f.index()] = (r.fields.len() - 1) as u16;
                            r.fields.len() - 1
                        }
                    } as u16;
                    let mut bs = Vec::with_capacity(vs.len());
                    for v in vs {
                        r.lens[pos as usize].add(v.len());
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
                        if !bs.contains(&b) {
                            bs.push(b);
                        }
                    }
                    bs
                }
                Route::Class(ls) => {
                    let next = BucketId(r.buckets as u32);
                    let b = *class_buckets.entry(ls.clone()).or_insert(next);
                    if b == next {
                        r.buckets += 1;
                        r.names.push(format!("logsource {ls}"));
                    }
                    vec![b]
                }
                Route::Global => vec![*r.global.get_or_insert_with(|| {
                    let b = BucketId(r.buckets as u32);
                    r.buckets += 1;
                    r.names.push("global".into());
                    b
                })],
            };
            out.push(b);
        }
        // An event class needs every class bucket whose logsource one of its logsources
        // satisfies.
        r.class_lists = classes
            .iter()
            .map(|class| {
                let mut v: Vec<BucketId> = class_buckets
                    .iter()
                    .filter(|(ls, _)| class.iter().any(|c| ls.is_satisfied_by(c)))
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
        if class > 0
            && let Some(list) = self.class_lists.get(class as usize - 1)
        {
            out.extend_from_slice(list);
        }
        // One pass over the event's values (a few dozen) rather than a lookup per routing
        // field (a large rule set routes on many fields, most absent from any one event).
        // The values visited are the same: every visible value of every field.
        for (f, v) in ev.known_fields() {
            let pos = match self.pos_of.get(f.index()) {
                Some(&p) if p != NO_POS => p as usize,
                _ => continue,
            };
            let lens = &self.lens[pos];
            let text: &[u8] = match v {
                Value::Str(s) => {
                    // Most values cannot be a key by their length alone (an `Image`
                    // path against the few exact `Image:` values rules require).
                    if !lens.may_have(s.len()) {
                        continue;
                    }
                    tmp.clear();
                    tmp.extend_from_slice(s);
                    tmp.make_ascii_lowercase();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_admit_exactly_the_key_lengths() {
        let mut l = Lengths::default();
        for n in [0, 3, 63, 64, 255] {
            l.add(n);
        }
        for n in 0..300 {
            assert_eq!(l.may_have(n), [0, 3, 63, 64, 255].contains(&n), "{n}");
        }
        l.add(1000);
        assert!(l.may_have(256) && l.may_have(5000));
    }
}
