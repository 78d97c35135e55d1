//! Sigma correlation rules (Sigma v2.1, pySigma 2.0 semantics), load time only.
//!
//! A correlation document has a `correlation:` map: `type` (`event_count`, `value_count`,
//! `temporal`, `temporal_ordered`, `value_sum`, `value_avg`, `value_percentile`,
//! `value_median`), `rules` (ids or names of detection or correlation rules), optional
//! `group-by`, `timespan` (`<n>s|m|h|d|w|M|y`), `condition`, `aliases`, `generate`.
//!
//! As in pySigma: `timespan` is required; `temporal`/`temporal_ordered` default to "all
//! referenced rules" and accept an extended boolean condition (`a and not b`), whose rule
//! names may replace the `rules` list; the value types need `condition.field`;
//! `value_percentile` needs `percentile`. kuzet extension: a condition may give a range with
//! two operators (`{gte: 5, lt: 20}`), where pySigma accepts exactly one.

use std::sync::Arc;

use super::error::Problem;
use super::rule::{Meta, parse_meta};
use super::yaml::{Value, scalar_text, string_list};

/// The kind of aggregation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CorrType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
    ValuePercentile,
    ValueMedian,
}

impl CorrType {
    pub fn parse(s: &str) -> Option<CorrType> {
        Some(match s {
            "event_count" => CorrType::EventCount,
            "value_count" => CorrType::ValueCount,
            "temporal" => CorrType::Temporal,
            "temporal_ordered" => CorrType::TemporalOrdered,
            "value_sum" => CorrType::ValueSum,
            "value_avg" => CorrType::ValueAvg,
            "value_percentile" => CorrType::ValuePercentile,
            "value_median" => CorrType::ValueMedian,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            CorrType::EventCount => "event_count",
            CorrType::ValueCount => "value_count",
            CorrType::Temporal => "temporal",
            CorrType::TemporalOrdered => "temporal_ordered",
            CorrType::ValueSum => "value_sum",
            CorrType::ValueAvg => "value_avg",
            CorrType::ValuePercentile => "value_percentile",
            CorrType::ValueMedian => "value_median",
        }
    }

    pub fn is_temporal(self) -> bool {
        matches!(self, CorrType::Temporal | CorrType::TemporalOrdered)
    }

    /// Types aggregating the values of `condition.field`.
    pub fn needs_field(self) -> bool {
        matches!(
            self,
            CorrType::ValueCount
                | CorrType::ValueSum
                | CorrType::ValueAvg
                | CorrType::ValuePercentile
                | CorrType::ValueMedian
        )
    }
}

/// A comparison of the correlation's metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl CmpOp {
    pub fn eval(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
            CmpOp::Eq => a == b,
            CmpOp::Neq => a != b,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Gt => "gt",
            CmpOp::Gte => "gte",
            CmpOp::Lt => "lt",
            CmpOp::Lte => "lte",
            CmpOp::Eq => "eq",
            CmpOp::Neq => "neq",
        }
    }
}

/// A boolean expression over referenced rule names (extended temporal conditions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoolExpr {
    Rule(String),
    Not(Box<BoolExpr>),
    And(Vec<BoolExpr>),
    Or(Vec<BoolExpr>),
}

impl BoolExpr {
    /// Rule names in order of first appearance.
    pub fn rules(&self) -> Vec<String> {
        let mut v = Vec::new();
        fn rec(e: &BoolExpr, v: &mut Vec<String>) {
            match e {
                BoolExpr::Rule(r) => {
                    if !v.contains(r) {
                        v.push(r.clone());
                    }
                }
                BoolExpr::Not(x) => rec(x, v),
                BoolExpr::And(c) | BoolExpr::Or(c) => c.iter().for_each(|x| rec(x, v)),
            }
        }
        rec(self, &mut v);
        v
    }

    /// Evaluates with `seen(name)` telling whether a rule occurred in the window.
    pub fn eval(&self, seen: &dyn Fn(&str) -> bool) -> bool {
        match self {
            BoolExpr::Rule(r) => seen(r),
            BoolExpr::Not(x) => !x.eval(seen),
            BoolExpr::And(c) => c.iter().all(|x| x.eval(seen)),
            BoolExpr::Or(c) => c.iter().any(|x| x.eval(seen)),
        }
    }

    /// True when the expression contains a negation (absence: decided at the window's end).
    pub fn has_not(&self) -> bool {
        match self {
            BoolExpr::Rule(_) => false,
            BoolExpr::Not(_) => true,
            BoolExpr::And(c) | BoolExpr::Or(c) => c.iter().any(BoolExpr::has_not),
        }
    }
}

/// The `condition` of a correlation.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// One or two comparisons of the metric (two: a range, both must hold).
    Threshold {
        cmps: Vec<(CmpOp, f64)>,
        /// `field`: the value the value types aggregate.
        field: Option<String>,
        percentile: Option<f64>,
    },
    /// Extended condition over rule names (temporal types only).
    Expr(BoolExpr),
}

/// A group-by alias: for each referenced rule, the field that holds the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    /// (rule reference, field name in that rule's events).
    pub mapping: Vec<(String, String)>,
}

/// A validated correlation rule, references not yet resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrelationRule {
    pub path: Arc<str>,
    pub line: usize,
    pub text: Arc<str>,
    pub meta: Meta,
    pub kind: CorrType,
    /// Referenced rule ids or names, in order (for `temporal_ordered`, the order).
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// Window length in milliseconds.
    pub timespan_ms: i64,
    /// The timespan as written (`10m`).
    pub timespan: String,
    pub condition: Condition,
    pub aliases: Vec<Alias>,
    /// Referenced rules also alert on their own.
    pub generate: bool,
}

/// Parses `<n><unit>` with pySigma's units: s, m, h, d, w, M (2,629,746 s), y (31,556,952 s).
pub fn parse_timespan(s: &str) -> Result<i64, Problem> {
    let bad = || {
        Problem::new(format!(
            "timespan {s:?} is not <number><s|m|h|d|w|M|y>, e.g. 10m"
        ))
        .near("timespan")
    };
    let unit = s.chars().last().ok_or_else(bad)?;
    // The number before the unit (which may be several bytes: slicing off one byte
    // panicked on `5é`).
    let digits = &s[..s.len() - unit.len_utf8()];
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if n <= 0 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::new(format!(
            "timespan {s:?} must be a positive whole number with a unit"
        ))
        .near("timespan"));
    }
    let secs: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        'M' => 2_629_746,
        'y' => 31_556_952,
        _ => return Err(bad()),
    };
    n.checked_mul(secs)
        .and_then(|x| x.checked_mul(1000))
        .ok_or_else(|| Problem::new(format!("timespan {s:?} is too long")).near("timespan"))
}

/// Parses the extended condition grammar: names, `and`, `or`, `not`, parentheses
/// (precedence not > and > or), names `[A-Za-z_][A-Za-z0-9_]*`.
pub fn parse_expr(s: &str) -> Result<BoolExpr, Problem> {
    #[derive(Clone, Debug, PartialEq)]
    enum T {
        L,
        R,
        And,
        Or,
        Not,
        Id(String),
    }
    let mut toks = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' {
            toks.push(T::L);
            i += 1;
        } else if c == b')' {
            toks.push(T::R);
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let st = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
                i += 1;
            }
            let w = &s[st..i];
            toks.push(match w {
                "and" => T::And,
                "or" => T::Or,
                "not" => T::Not,
                _ => T::Id(w.to_string()),
            });
        } else {
            return Err(Problem::new(format!(
                "correlation condition {s:?}: unexpected {:?}",
                c as char
            ))
            .near("condition"));
        }
    }
    struct P {
        t: Vec<T>,
        i: usize,
    }
    impl P {
        fn or(&mut self) -> Option<BoolExpr> {
            let mut v = vec![self.and()?];
            while self.t.get(self.i) == Some(&T::Or) {
                self.i += 1;
                v.push(self.and()?);
            }
            Some(if v.len() == 1 {
                v.pop()?
            } else {
                BoolExpr::Or(v)
            })
        }
        fn and(&mut self) -> Option<BoolExpr> {
            let mut v = vec![self.not()?];
            while self.t.get(self.i) == Some(&T::And) {
                self.i += 1;
                v.push(self.not()?);
            }
            Some(if v.len() == 1 {
                v.pop()?
            } else {
                BoolExpr::And(v)
            })
        }
        fn not(&mut self) -> Option<BoolExpr> {
            if self.t.get(self.i) == Some(&T::Not) {
                self.i += 1;
                return Some(BoolExpr::Not(Box::new(self.not()?)));
            }
            match self.t.get(self.i).cloned()? {
                T::L => {
                    self.i += 1;
                    let e = self.or()?;
                    (self.t.get(self.i) == Some(&T::R)).then_some(())?;
                    self.i += 1;
                    Some(e)
                }
                T::Id(x) => {
                    self.i += 1;
                    Some(BoolExpr::Rule(x))
                }
                _ => None,
            }
        }
    }
    let mut p = P { t: toks, i: 0 };
    match p.or() {
        Some(e) if p.i == p.t.len() => Ok(e),
        _ => Err(Problem::new(format!(
            "correlation condition {s:?} is not a valid expression"
        ))
        .near("condition")),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a correlation document.
pub fn parse_correlation(
    m: &yaml_serde::Mapping,
    path: &Arc<str>,
    line: usize,
) -> Result<CorrelationRule, (Option<String>, Problem)> {
    let meta = parse_meta(m).map_err(|p| (None, p))?;
    let label = Some(meta.label());
    let err = |p: Problem| (label.clone(), p);
    let Some(Value::Mapping(c)) = m.get("correlation") else {
        return Err(err(
            Problem::new("correlation must be a map").near("correlation:")
        ));
    };
    let kind_s = c
        .get("type")
        .and_then(scalar_text)
        .ok_or_else(|| err(Problem::new("correlation has no type").near("correlation:")))?;
    let kind = CorrType::parse(&kind_s).ok_or_else(|| {
        err(Problem::new(format!(
            "{kind_s:?} is not a correlation type (event_count, value_count, temporal, temporal_ordered, value_sum, value_avg, value_percentile, value_median)"
        ))
        .near("type:"))
    })?;
    let mut rules = match c.get("rules") {
        None | Some(Value::Null) => Vec::new(),
        Some(v @ (Value::String(_) | Value::Sequence(_))) => string_list(v),
        Some(_) => {
            return Err(err(Problem::new(
                "correlation rules must be a name or a list",
            )
            .near("rules:")));
        }
    };
    let generate = match c.get("generate") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(err(
                Problem::new("generate must be true or false").near("generate:")
            ));
        }
    };
    let group_by = match c.get("group-by") {
        None | Some(Value::Null) => Vec::new(),
        Some(v @ (Value::String(_) | Value::Sequence(_))) => string_list(v),
        Some(_) => {
            return Err(err(
                Problem::new("group-by must be a field or a list").near("group-by:")
            ));
        }
    };
    let timespan = c
        .get("timespan")
        .and_then(scalar_text)
        .ok_or_else(|| err(Problem::new("correlation has no timespan").near("correlation:")))?;
    let timespan_ms = parse_timespan(&timespan).map_err(err)?;
    let mut aliases = Vec::new();
    match c.get("aliases") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(am)) => {
            for (k, v) in am {
                let name = scalar_text(k).unwrap_or_default();
                let Value::Mapping(mm) = v else {
                    return Err(err(Problem::new(format!(
                        "alias {name:?} must map rules to fields"
                    ))
                    .near(name)));
                };
                aliases.push(Alias {
                    name,
                    mapping: mm
                        .iter()
                        .filter_map(|(r, f)| Some((scalar_text(r)?, scalar_text(f)?)))
                        .collect(),
                });
            }
        }
        Some(_) => return Err(err(Problem::new("aliases must be a map").near("aliases:"))),
    }
    let condition = match c.get("condition") {
        Some(Value::Mapping(cm)) => {
            let mut cmps = Vec::new();
            let mut field = None;
            let mut percentile = None;
            for (k, v) in cm {
                let k = scalar_text(k).unwrap_or_default();
                let op = match k.as_str() {
                    "gt" => CmpOp::Gt,
                    "gte" => CmpOp::Gte,
                    "lt" => CmpOp::Lt,
                    "lte" => CmpOp::Lte,
                    "eq" => CmpOp::Eq,
                    "neq" => CmpOp::Neq,
                    "field" => {
                        field = match v {
                            Value::Sequence(s) if s.len() == 1 => scalar_text(&s[0]),
                            Value::Sequence(_) => {
                                return Err(err(Problem::new("condition field must be one field")
                                    .near("field:")));
                            }
                            other => scalar_text(other),
                        };
                        continue;
                    }
                    "percentile" => {
                        let p = number(v).filter(|p| (0.0..=100.0).contains(p));
                        percentile = Some(p.ok_or_else(|| {
                            err(Problem::new("percentile must be between 0 and 100")
                                .near("percentile"))
                        })?);
                        continue;
                    }
                    other => {
                        return Err(err(Problem::new(format!(
                            "unknown condition key {other:?}"
                        ))
                        .near(other)));
                    }
                };
                let n = number(v).filter(|n| n.is_finite()).ok_or_else(|| {
                    err(
                        Problem::new(format!("condition {k}: {v:?} is not a number"))
                            .near(k.clone()),
                    )
                })?;
                cmps.push((op, n));
            }
            if cmps.is_empty() || cmps.len() > 2 {
                return Err(err(Problem::new(
                    "condition needs one operator (gt, gte, lt, lte, eq, neq), or two for a range",
                )
                .near("condition:")));
            }
            Condition::Threshold {
                cmps,
                field,
                percentile,
            }
        }
        Some(Value::String(s)) => {
            if !kind.is_temporal() {
                return Err(err(Problem::new(
                    "an expression condition is only for temporal and temporal_ordered",
                )
                .near("condition:")));
            }
            let e = parse_expr(s).map_err(err)?;
            let named = e.rules();
            if rules.is_empty() {
                rules = named.clone();
            } else {
                for r in &rules {
                    if !named.contains(r) {
                        return Err(err(Problem::new(format!(
                            "rule {r:?} is listed but not used in the condition"
                        ))
                        .near("condition:")));
                    }
                }
                for r in &named {
                    if !rules.contains(r) {
                        return Err(err(Problem::new(format!(
                            "condition names {r:?}, which is not in rules"
                        ))
                        .near("condition:")));
                    }
                }
            }
            Condition::Expr(e)
        }
        None | Some(Value::Null) if kind.is_temporal() => Condition::Threshold {
            cmps: vec![(CmpOp::Gte, rules.len() as f64)],
            field: None,
            percentile: None,
        },
        None | Some(Value::Null) => {
            return Err(err(
                Problem::new("correlation has no condition").near("correlation:")
            ));
        }
        Some(_) => {
            return Err(err(Problem::new(
                "condition must be a map or, for temporal types, an expression",
            )
            .near("condition:")));
        }
    };
    if rules.is_empty() {
        return Err(err(
            Problem::new("correlation references no rules").near("rules")
        ));
    }
    if let Condition::Threshold {
        field, percentile, ..
    } = &condition
    {
        if kind.needs_field() && field.is_none() {
            return Err(err(Problem::new(format!(
                "{} needs condition.field",
                kind.name()
            ))
            .near("condition:")));
        }
        if kind == CorrType::ValuePercentile && percentile.is_none() {
            return Err(err(Problem::new(
                "value_percentile needs condition.percentile",
            )
            .near("condition:")));
        }
    }
    Ok(CorrelationRule {
        path: path.clone(),
        line,
        text: Arc::from(""),
        meta,
        kind,
        rules,
        group_by,
        timespan_ms,
        timespan,
        condition,
        aliases,
        generate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans_follow_pysigma() {
        assert_eq!(parse_timespan("10s").unwrap(), 10_000);
        assert_eq!(parse_timespan("10m").unwrap(), 600_000);
        assert_eq!(parse_timespan("1M").unwrap(), 2_629_746_000);
        assert_eq!(parse_timespan("1y").unwrap(), 31_556_952_000);
        for bad in [
            "0s", "1.5h", "10", "1H", "1ms", " 5m", "-1m", "+5m", "5é", "é", "",
        ] {
            assert!(parse_timespan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expressions() {
        let e = parse_expr("a and not (b or c)").unwrap();
        assert_eq!(e.rules(), vec!["a", "b", "c"]);
        assert!(e.has_not());
        assert!(e.eval(&|r| r == "a"));
        assert!(!e.eval(&|r| r == "a" || r == "c"));
        assert!(parse_expr("a and").is_err());
        assert!(parse_expr("(a").is_err());
    }
}
