//! Sigma meta filters: documents with a `filter:` section that add an exclusion to other
//! rules without editing them (Sigma v2 filters, pySigma semantics).
//!
//! A filter applies to a rule when the filter's logsource is satisfied by the rule's
//! (every facet the filter names, the rule names the same) and the rule is listed in
//! `filter.rules` by id or name (or `rules: any`). Applying it turns the rule's condition
//! into `(rule condition) and (filter condition)`, so exclusions are written
//! `condition: not selection`, as in pySigma.

use std::sync::Arc;

use super::condition::Cond;
use super::error::Problem;
use super::rule::{Detection, Logsource, Meta, Rule, parse_detection, parse_logsource, parse_meta};
use super::yaml::{Value, scalar_text};

/// Which rules a filter applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    Any,
    /// Rule ids or names.
    Rules(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    pub path: Arc<str>,
    pub line: usize,
    pub meta: Meta,
    pub logsource: Logsource,
    pub targets: Targets,
    pub detection: Detection,
}

/// Parses a filter document (one with a top-level `filter:` map).
pub fn parse_filter(
    m: &yaml_serde::Mapping,
    path: &Arc<str>,
    line: usize,
) -> Result<Filter, (Option<String>, Problem)> {
    let meta = parse_meta(m).map_err(|p| (None, p))?;
    let label = Some(meta.label());
    let logsource = parse_logsource(m).map_err(|p| (label.clone(), p))?;
    let Some(Value::Mapping(f)) = m.get("filter") else {
        return Err((label, Problem::new("filter must be a map").near("filter:")));
    };
    let targets = match f.get("rules") {
        None => {
            return Err((
                label,
                Problem::new("filter has no 'rules' (use 'any' for every rule with the logsource)")
                    .near("filter:"),
            ));
        }
        Some(Value::Sequence(s)) if s.is_empty() => Targets::Any,
        Some(Value::Sequence(s)) => Targets::Rules(s.iter().filter_map(scalar_text).collect()),
        Some(v) => match scalar_text(v) {
            Some(s) if s.eq_ignore_ascii_case("any") => Targets::Any,
            Some(s) => Targets::Rules(vec![s]),
            None => {
                return Err((
                    label,
                    Problem::new("filter rules must be 'any', an id/name or a list").near("rules:"),
                ));
            }
        },
    };
    let mut det = f.clone();
    det.remove("rules");
    if let Some(Value::Sequence(c)) = det.get("condition")
        && c.len() != 1
    {
        return Err((
            label,
            Problem::new("a filter must have exactly one condition").near("condition:"),
        ));
    }
    let detection = parse_detection(&det).map_err(|p| (label.clone(), p))?;
    Ok(Filter {
        path: path.clone(),
        line,
        meta,
        logsource,
        targets,
        detection,
    })
}

impl Filter {
    /// True when this filter applies to `rule`.
    pub fn applies_to(&self, rule: &Rule) -> bool {
        if !self.logsource.is_satisfied_by(&rule.logsource) {
            return false;
        }
        match &self.targets {
            Targets::Any => true,
            Targets::Rules(refs) => refs.iter().any(|r| {
                rule.meta.id.as_deref() == Some(r.as_str())
                    || rule.meta.name.as_deref() == Some(r.as_str())
            }),
        }
    }

    /// Adds the filter's searches to `rule` and ANDs its condition in.
    pub fn apply(&self, rule: &mut Rule) {
        let offset = rule.detection.searches.len();
        let tag = self
            .meta
            .id
            .clone()
            .unwrap_or_else(|| self.meta.title.clone());
        for (n, s) in self.detection.names.iter().zip(&self.detection.searches) {
            // Names under a prefix no rule can write, so `them` and patterns stay apart.
            rule.detection.names.push(format!("_filter[{tag}]_{n}"));
            rule.detection.searches.push(s.clone());
        }
        let fc = shift(&self.detection.condition, offset);
        let old = std::mem::replace(&mut rule.detection.condition, Cond::Search(0));
        rule.detection.condition = Cond::And(vec![old, fc]);
    }
}

/// The condition with every search index moved by `offset`.
pub fn shift(c: &Cond, offset: usize) -> Cond {
    match c {
        Cond::And(v) => Cond::And(v.iter().map(|x| shift(x, offset)).collect()),
        Cond::Or(v) => Cond::Or(v.iter().map(|x| shift(x, offset)).collect()),
        Cond::Not(x) => Cond::Not(Box::new(shift(x, offset))),
        Cond::Search(i) => Cond::Search(i + offset),
    }
}
