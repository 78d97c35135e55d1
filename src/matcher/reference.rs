//! The reference interpreter: evaluates a prepared [`Rule`] on an event directly from its
//! AST, with the most obvious code possible. It shares nothing with the compiled matcher
//! but the event model, so tests and the fuzzer can check the fast path against it.
//!
//! Semantics (the same as the compiled matcher's, stated once here):
//! - a search item over field F with values V matches when any value of F (every element
//!   of an array) matches any value in V (all, with `|all`); `neq` negates the item;
//! - strings: Sigma wildcards, ASCII case-insensitive unless `cased`; `*` is any byte
//!   sequence (it may end inside a character, which matters for `wide`/`utf16*` literals),
//!   `?` one UTF-8 character (one byte where none starts);
//! - YAML numbers and booleans equal the value's text (numbers also numerically when the
//!   event value is numeric); `lt`/`gt`... compare numbers; `cidr` parses an IP;
//! - `null`: absent or JSON null (`""` is a value); `exists`: a non-null value or not;
//!   `re`: unanchored search;
//! - keywords search the `message` field, or the whole frame when there is none;
//! - a rule whose logsource is not expressed as conditions applies only to events whose
//!   class declares that logsource.

use crate::event::{Event, FieldTable, Value};
use crate::sigma::Logsource;
use crate::sigma::condition::Cond;
use crate::sigma::rule::{Item, Rule, Search};
use crate::sigma::value::{CmpOp, ReFlags, RefMode, SPart, SValue};

/// Whether `rule` matches `ev`. `class` is the logsource the event's class declares.
pub fn matches(rule: &Rule, ev: &Event<'_>, table: &FieldTable, class: Option<&Logsource>) -> bool {
    let applies = rule.logsource_as_conditions
        || rule.logsource.is_empty()
        || class.is_some_and(|c| rule.logsource.is_satisfied_by(c));
    applies && cond(&rule.detection.condition, rule, ev, table)
}

fn cond(c: &Cond, r: &Rule, ev: &Event<'_>, t: &FieldTable) -> bool {
    match c {
        Cond::And(v) => v.iter().all(|x| cond(x, r, ev, t)),
        Cond::Or(v) => v.iter().any(|x| cond(x, r, ev, t)),
        Cond::Not(x) => !cond(x, r, ev, t),
        Cond::Search(i) => search(&r.detection.searches[*i], ev, t),
    }
}

fn search(s: &Search, ev: &Event<'_>, t: &FieldTable) -> bool {
    match s {
        Search::And(v) => v.iter().all(|x| search(x, ev, t)),
        Search::Or(v) => v.iter().any(|x| search(x, ev, t)),
        Search::Item(it) => item(it, ev, t),
    }
}

/// A field value copied out of the event.
enum Own {
    Str(Vec<u8>),
    /// Scalars (never `Value::Str`).
    Scalar(Value<'static>),
}

impl Own {
    fn of(v: Value<'_>) -> Own {
        match v {
            Value::Str(s) => Own::Str(s.to_vec()),
            Value::Int(i) => Own::Scalar(Value::Int(i)),
            Value::UInt(u) => Own::Scalar(Value::UInt(u)),
            Value::Float(f) => Own::Scalar(Value::Float(f)),
            Value::Bool(b) => Own::Scalar(Value::Bool(b)),
            Value::Null => Own::Scalar(Value::Null),
            Value::Time(x) => Own::Scalar(Value::Time(x)),
        }
    }

    fn value(&self) -> Value<'_> {
        match self {
            Own::Str(s) => Value::Str(s),
            Own::Scalar(v) => *v,
        }
    }
}

fn field_values(it: &Item, ev: &Event<'_>, t: &FieldTable) -> Vec<Own> {
    match &it.field {
        None => vec![Own::Str(ev.message().unwrap_or(ev.raw()).to_vec())],
        Some(f) => match t.get(f.as_bytes()) {
            Some(id) => ev.values(id).map(Own::of).collect(),
            None => Vec::new(),
        },
    }
}

fn item(it: &Item, ev: &Event<'_>, t: &FieldTable) -> bool {
    let owned = field_values(it, ev, t);
    let vals: Vec<Value<'_>> = owned.iter().map(Own::value).collect();
    let one = |sv: &SValue| value_matches(sv, &vals, it, ev, t);
    let r = if it.all {
        it.values.iter().all(one)
    } else {
        it.values.iter().any(one)
    };
    if it.negated { !r } else { r }
}

fn text_of(v: &Value<'_>) -> Vec<u8> {
    let mut tmp = Vec::new();
    v.text(&mut tmp).to_vec()
}

fn num_of(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::UInt(u) => Some(*u as f64),
        Value::Float(f) => Some(*f),
        Value::Str(s) => std::str::from_utf8(s).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn value_matches(
    sv: &SValue,
    vals: &[Value<'_>],
    it: &Item,
    ev: &Event<'_>,
    t: &FieldTable,
) -> bool {
    if it.field.is_none() {
        // Keywords: substring search of the text; numbers and booleans by their spelling.
        let kw = |s: &[u8]| SValue::Str {
            s: crate::sigma::value::SigmaString::literal(s).contains(),
            cased: false,
        };
        let sub = match sv {
            SValue::Str { s, cased } => Some(SValue::Str {
                s: s.clone().contains(),
                cased: *cased,
            }),
            SValue::Num(_, txt) => Some(kw(txt.as_bytes())),
            SValue::Bool(b) => Some(kw(b.to_string().as_bytes())),
            _ => None,
        };
        if let Some(sub) = sub {
            return vals.iter().any(|v| one(&sub, v, ev, t));
        }
    }
    match sv {
        SValue::Alt(vs) => vs.iter().any(|x| value_matches(x, vals, it, ev, t)),
        // SQL `IS NULL` / `IS NOT NULL` (tests/oracle/SEMANTICS.md 2.11).
        SValue::Null => vals.iter().all(|v| matches!(v, Value::Null)),
        SValue::Exists(b) => vals.iter().any(|v| !matches!(v, Value::Null)) == *b,
        _ => vals
            .iter()
            .any(|v| !matches!(v, Value::Null) && one(sv, v, ev, t)),
    }
}

fn one(sv: &SValue, v: &Value<'_>, ev: &Event<'_>, t: &FieldTable) -> bool {
    let text = text_of(v);
    match sv {
        SValue::Str { s, cased } => {
            let (p, h): (Vec<SPart>, Vec<u8>) = if *cased {
                (s.parts.clone(), text)
            } else {
                let p = s
                    .parts
                    .iter()
                    .map(|x| match x {
                        SPart::Lit(l) => SPart::Lit(l.to_ascii_lowercase()),
                        o => o.clone(),
                    })
                    .collect();
                (p, text.to_ascii_lowercase())
            };
            wild(&p, &h)
        }
        SValue::Num(n, txt) => match v {
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => num_of(v) == Some(*n),
            _ => text.to_ascii_lowercase() == txt.to_ascii_lowercase().into_bytes(),
        },
        SValue::Bool(b) => match v {
            Value::Bool(x) => x == b,
            _ => {
                let l = text.to_ascii_lowercase();
                l == (if *b { "true" } else { "false" }).as_bytes()
                    || l == (if *b { "1" } else { "0" }).as_bytes()
            }
        },
        SValue::Regex { pattern, flags } => regex_match(pattern, *flags, &text),
        SValue::Cidr(net) => std::str::from_utf8(&text)
            .ok()
            .and_then(|s| {
                s.trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split('%')
                    .next()?
                    .parse::<std::net::IpAddr>()
                    .ok()
            })
            .is_some_and(|ip| net.contains(&ip)),
        SValue::Cmp(op, n) => num_of(v).is_some_and(|x| match op {
            CmpOp::Lt => x < *n,
            CmpOp::Lte => x <= *n,
            CmpOp::Gt => x > *n,
            CmpOp::Gte => x >= *n,
        }),
        SValue::FieldRef { field, mode } => {
            let Some(id) = t.get(field.as_bytes()) else {
                return false;
            };
            // A missing or null other field never matches (SEMANTICS.md 2.13).
            let Some(o) = ev.get(id).filter(|o| !matches!(o, Value::Null)) else {
                return false;
            };
            let o = text_of(&o);
            match mode {
                RefMode::Equals => text.eq_ignore_ascii_case(&o),
                RefMode::StartsWith => text
                    .to_ascii_lowercase()
                    .starts_with(&o.to_ascii_lowercase()),
                RefMode::EndsWith => text.to_ascii_lowercase().ends_with(&o.to_ascii_lowercase()),
                RefMode::Contains => {
                    let (h, n) = (text.to_ascii_lowercase(), o.to_ascii_lowercase());
                    n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
                }
            }
        }
        SValue::Alt(_) | SValue::Null | SValue::Exists(_) => {
            unreachable!("handled by value_matches")
        }
    }
}

/// `re`: an unanchored search. Compiled patterns are kept per thread, because compiling
/// is the slow part here (milliseconds per pattern in debug builds, once per value tested).
fn regex_match(pattern: &str, flags: ReFlags, text: &[u8]) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    type Cache = HashMap<(String, ReFlags), Option<regex::bytes::Regex>>;
    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::new(HashMap::new());
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 4096 {
            c.clear();
        }
        c.entry((pattern.to_string(), flags))
            .or_insert_with(|| {
                regex::bytes::RegexBuilder::new(pattern)
                    .case_insensitive(flags.ignore_case)
                    .multi_line(flags.multi_line)
                    .dot_matches_new_line(flags.dot_all)
                    .build()
                    .ok()
            })
            .as_ref()
            .is_some_and(|r| r.is_match(text))
    })
}

/// Plain recursive wildcard matching, one UTF-8 character per `?`.
fn wild(p: &[SPart], h: &[u8]) -> bool {
    match p.split_first() {
        None => h.is_empty(),
        Some((SPart::Lit(l), rest)) => h.starts_with(l) && wild(rest, &h[l.len()..]),
        Some((SPart::Any, rest)) => (0..=h.len()).any(|k| wild(rest, &h[k..])),
        Some((SPart::One, rest)) => {
            if h.is_empty() {
                return false;
            }
            let n = match h[0] {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => 1,
            }
            .min(h.len());
            wild(rest, &h[n..])
        }
        Some((SPart::Placeholder(_), _)) => false,
    }
}
