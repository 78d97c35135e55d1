//! Processing pipelines in pySigma's YAML format: how rules written for the Sigma taxonomy
//! are adapted to the events at hand (field names, added conditions, placeholders), before
//! they are compiled. Load time only.
//!
//! Supported transformations: `field_name_mapping` (one-to-one and one-to-many, and the
//! keyword mapping from a `null` key), `field_name_prefix_mapping`, `field_name_prefix`,
//! `field_name_suffix`, `add_condition` (with `template` and `negated`), `change_logsource`,
//! `drop_detection_item`, `replace_string`, `value_placeholders` (from `vars`),
//! `set_custom_attribute`, `rule_failure`, `detection_item_failure`.
//! Supported conditions: rule conditions `logsource`, `contains_detection_item`,
//! `contains_field`, `processing_item_applied`, `is_sigma_rule`, `is_sigma_correlation_rule`,
//! `rule_attribute`, `tag`; field-name conditions `include_fields` / `exclude_fields` (plain
//! or `re`); detection-item conditions `match_string`, `is_null`, `contains_wildcard`,
//! `processing_item_applied`; linking with `*_cond_op: and|or` and `*_cond_not`.
//! Anything else is rejected when the pipeline loads, with its name, so a pipeline never
//! silently does less than it says.
//!
//! Semantics follow pySigma 2.0: pipelines run in ascending `priority`; items in order; a
//! one-to-many field mapping turns an item into an OR of items (one per name).

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;

use super::condition::Cond;
use super::error::Problem;
use super::rule::{Item, Logsource, Rule, Search, parse_item};
use super::value::{SPart, SValue, SigmaString};
use super::yaml::{Value, documents, scalar_text, string_list, to_json};

/// A loaded pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub name: String,
    pub priority: i64,
    pub path: Arc<str>,
    pub vars: BTreeMap<String, Vec<String>>,
    pub items: Vec<ProcItem>,
}

#[derive(Clone, Debug)]
pub struct ProcItem {
    pub id: Option<String>,
    rule_conds: Vec<RuleCond>,
    rule_or: bool,
    rule_not: bool,
    field_conds: Vec<FieldCond>,
    field_or: bool,
    field_not: bool,
    item_conds: Vec<ItemCond>,
    item_or: bool,
    item_not: bool,
    pub transform: Transform,
}

#[derive(Clone, Debug)]
enum RuleCond {
    Logsource(Logsource),
    ContainsItem {
        field: Option<String>,
        value: String,
    },
    ContainsField(String),
    ItemApplied(String),
    IsRule(bool),
    Attribute {
        attribute: String,
        value: String,
        op: String,
    },
    Tag(String),
}

#[derive(Clone, Debug)]
enum FieldCond {
    Include(FieldSet),
    Exclude(FieldSet),
}

#[derive(Clone, Debug)]
enum FieldSet {
    Plain(Vec<String>),
    Re(Vec<Regex>),
}

impl FieldSet {
    fn contains(&self, f: &str) -> bool {
        match self {
            FieldSet::Plain(v) => v.iter().any(|x| x == f),
            FieldSet::Re(v) => v.iter().any(|r| r.is_match(f)),
        }
    }
}

#[derive(Clone, Debug)]
enum ItemCond {
    MatchString { re: Regex, all: bool, negate: bool },
    IsNull,
    ContainsWildcard,
    Applied(String),
}

/// What a processing item does.
#[derive(Clone, Debug)]
pub enum Transform {
    FieldMapping(BTreeMap<Option<String>, Vec<String>>),
    FieldPrefixMapping(Vec<(String, Vec<String>)>),
    FieldPrefix(String),
    FieldSuffix(String),
    AddCondition {
        conditions: Vec<(String, Value)>,
        template: bool,
        negated: bool,
    },
    ChangeLogsource(Logsource),
    DropItem,
    ReplaceString {
        re: Regex,
        replacement: String,
    },
    ValuePlaceholders {
        include: Option<Vec<String>>,
        exclude: Vec<String>,
    },
    SetCustomAttribute {
        attribute: String,
        value: serde_json::Value,
    },
    RuleFailure(String),
    ItemFailure(String),
}

/// A pipeline file that could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipelineError {
    pub path: Arc<str>,
    pub line: Option<usize>,
    pub reason: String,
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": pipeline: {}", self.reason)
    }
}

impl std::error::Error for PipelineError {}

fn s(v: Option<&Value>) -> Option<String> {
    v.and_then(scalar_text)
}

fn map_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        other => string_list(other),
    }
}

/// Parses a pipeline YAML file.
pub fn parse_pipeline(path: &Arc<str>, text: &str) -> Result<Pipeline, PipelineError> {
    let err = |line: Option<usize>, reason: String| PipelineError {
        path: path.clone(),
        line,
        reason,
    };
    let docs = documents(text);
    let doc = docs.first().ok_or_else(|| err(None, "empty file".into()))?;
    let v = doc.parse().map_err(|(m, l)| err(l, m))?;
    let Value::Mapping(m) = v else {
        return Err(err(Some(doc.first_line), "a pipeline must be a map".into()));
    };
    let mut vars = BTreeMap::new();
    if let Some(Value::Mapping(vm)) = m.get("vars") {
        for (k, v) in vm {
            if let Some(k) = scalar_text(k) {
                vars.insert(k, map_list(v));
            }
        }
    }
    let mut items = Vec::new();
    if let Some(t) = m.get("transformations") {
        let Value::Sequence(seq) = t else {
            return Err(err(
                doc.line_of("transformations"),
                "transformations must be a list".into(),
            ));
        };
        for (i, it) in seq.iter().enumerate() {
            let Value::Mapping(im) = it else {
                return Err(err(None, format!("transformation #{} is not a map", i + 1)));
            };
            let id = s(im.get("id"));
            let near = id.clone().or_else(|| s(im.get("type"))).unwrap_or_default();
            items.push(parse_item_def(im).map_err(|p| {
                let line = doc
                    .line_of(p.near.as_deref().unwrap_or(&near))
                    .or_else(|| doc.line_of(&near));
                err(
                    line,
                    format!(
                        "transformation {}: {}",
                        id.as_deref().unwrap_or(&(i + 1).to_string()),
                        p.reason
                    ),
                )
            })?);
        }
    }
    for key in ["postprocessing", "finalizers"] {
        if let Some(Value::Sequence(v)) = m.get(key)
            && !v.is_empty()
        {
            return Err(err(
                doc.line_of(key),
                format!("{key} (query post-processing) does not apply to a matching engine"),
            ));
        }
    }
    Ok(Pipeline {
        name: s(m.get("name")).unwrap_or_else(|| path.to_string()),
        priority: m.get("priority").and_then(|p| p.as_i64()).unwrap_or(0),
        path: path.clone(),
        vars,
        items,
    })
}

fn op_is_or(m: &yaml_serde::Mapping, key: &str) -> Result<bool, Problem> {
    match s(m.get(key)).as_deref() {
        None | Some("and") => Ok(false),
        Some("or") => Ok(true),
        Some(o) => Err(Problem::new(format!(
            "{key} must be 'and' or 'or', not {o:?}"
        ))),
    }
}

fn bool_of(m: &yaml_serde::Mapping, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn conds_list(v: Option<&Value>) -> Vec<&yaml_serde::Mapping> {
    match v {
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(|x| match x {
                Value::Mapping(m) => Some(m),
                _ => None,
            })
            .collect(),
        Some(Value::Mapping(m)) => m
            .values()
            .filter_map(|x| match x {
                Value::Mapping(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn regex(p: &str) -> Result<Regex, Problem> {
    Regex::new(p).map_err(|e| Problem::new(format!("invalid regex {p:?}: {e}")))
}

fn parse_item_def(m: &yaml_serde::Mapping) -> Result<ProcItem, Problem> {
    for k in [
        "rule_cond_expr",
        "detection_item_cond_expr",
        "field_name_cond_expr",
    ] {
        if m.contains_key(k) {
            return Err(Problem::new(format!(
                "{k} (condition expressions) is not supported; use *_cond_op"
            ))
            .near(k));
        }
    }
    let mut rule_conds = Vec::new();
    for c in conds_list(m.get("rule_conditions")) {
        let t = s(c.get("type")).unwrap_or_default();
        rule_conds.push(match t.as_str() {
            "logsource" => RuleCond::Logsource(Logsource {
                product: s(c.get("product")),
                category: s(c.get("category")),
                service: s(c.get("service")),
            }),
            "contains_detection_item" => RuleCond::ContainsItem {
                field: s(c.get("field")),
                value: s(c.get("value")).unwrap_or_default(),
            },
            "contains_field" => RuleCond::ContainsField(s(c.get("field")).unwrap_or_default()),
            "processing_item_applied" => {
                RuleCond::ItemApplied(s(c.get("processing_item_id")).unwrap_or_default())
            }
            "is_sigma_rule" => RuleCond::IsRule(true),
            "is_sigma_correlation_rule" => RuleCond::IsRule(false),
            "rule_attribute" => RuleCond::Attribute {
                attribute: s(c.get("attribute")).unwrap_or_default(),
                value: s(c.get("value")).unwrap_or_default(),
                op: s(c.get("op")).unwrap_or_else(|| "eq".into()),
            },
            "tag" => RuleCond::Tag(s(c.get("tag")).unwrap_or_default()),
            other => {
                return Err(Problem::new(format!(
                    "rule condition type {other:?} is not supported"
                ))
                .near(other));
            }
        });
    }
    let mut field_conds = Vec::new();
    for c in conds_list(m.get("field_name_conditions")) {
        let t = s(c.get("type")).unwrap_or_default();
        let fields = c.get("fields").map(map_list).unwrap_or_default();
        let set = if s(c.get("mode")).as_deref() == Some("re")
            || s(c.get("type_")).as_deref() == Some("re")
        {
            FieldSet::Re(fields.iter().map(|f| regex(f)).collect::<Result<_, _>>()?)
        } else {
            FieldSet::Plain(fields)
        };
        field_conds.push(match t.as_str() {
            "include_fields" => FieldCond::Include(set),
            "exclude_fields" => FieldCond::Exclude(set),
            other => {
                return Err(Problem::new(format!(
                    "field name condition type {other:?} is not supported"
                ))
                .near(other));
            }
        });
    }
    let mut item_conds = Vec::new();
    for c in conds_list(m.get("detection_item_conditions")) {
        let t = s(c.get("type")).unwrap_or_default();
        item_conds.push(match t.as_str() {
            "match_string" => ItemCond::MatchString {
                re: regex(&s(c.get("pattern")).unwrap_or_default())?,
                all: s(c.get("cond")).as_deref() == Some("all"),
                negate: bool_of(c, "negate"),
            },
            "is_null" => ItemCond::IsNull,
            "contains_wildcard" => ItemCond::ContainsWildcard,
            "processing_item_applied" => {
                ItemCond::Applied(s(c.get("processing_item_id")).unwrap_or_default())
            }
            other => {
                return Err(Problem::new(format!(
                    "detection item condition type {other:?} is not supported"
                ))
                .near(other));
            }
        });
    }
    let t = s(m.get("type")).ok_or_else(|| Problem::new("transformation has no type"))?;
    let transform = match t.as_str() {
        "field_name_mapping" | "field_name_prefix_mapping" => {
            let Some(Value::Mapping(mm)) = m.get("mapping") else {
                return Err(Problem::new(format!("{t} needs a mapping")));
            };
            let pairs: Vec<(Option<String>, Vec<String>)> = mm
                .iter()
                .map(|(k, v)| (scalar_text(k), map_list(v)))
                .collect();
            if t == "field_name_mapping" {
                Transform::FieldMapping(pairs.into_iter().collect())
            } else {
                Transform::FieldPrefixMapping(
                    pairs
                        .into_iter()
                        .map(|(k, v)| {
                            k.map(|k| (k, v))
                                .ok_or_else(|| Problem::new("a prefix cannot be null"))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
        }
        "field_name_prefix" => Transform::FieldPrefix(s(m.get("prefix")).unwrap_or_default()),
        "field_name_suffix" => Transform::FieldSuffix(s(m.get("suffix")).unwrap_or_default()),
        "add_condition" => {
            let Some(Value::Mapping(c)) = m.get("conditions") else {
                return Err(Problem::new("add_condition needs conditions"));
            };
            Transform::AddCondition {
                conditions: c
                    .iter()
                    .filter_map(|(k, v)| Some((scalar_text(k)?, v.clone())))
                    .collect(),
                template: bool_of(m, "template"),
                negated: bool_of(m, "negated"),
            }
        }
        "change_logsource" => Transform::ChangeLogsource(Logsource {
            product: s(m.get("product")),
            category: s(m.get("category")),
            service: s(m.get("service")),
        }),
        "drop_detection_item" => Transform::DropItem,
        "replace_string" => Transform::ReplaceString {
            re: regex(&s(m.get("regex")).unwrap_or_default())?,
            replacement: python_replacement(&s(m.get("replacement")).unwrap_or_default()),
        },
        "value_placeholders" => Transform::ValuePlaceholders {
            include: m.get("include").map(map_list),
            exclude: m.get("exclude").map(map_list).unwrap_or_default(),
        },
        "set_custom_attribute" => Transform::SetCustomAttribute {
            attribute: s(m.get("attribute")).unwrap_or_default(),
            value: m
                .get("value")
                .map(to_json)
                .unwrap_or(serde_json::Value::Null),
        },
        "rule_failure" => Transform::RuleFailure(
            s(m.get("message")).unwrap_or_else(|| "rule rejected by pipeline".into()),
        ),
        "detection_item_failure" => Transform::ItemFailure(
            s(m.get("message")).unwrap_or_else(|| "detection item rejected by pipeline".into()),
        ),
        other => {
            return Err(Problem::new(format!(
                "transformation type {other:?} is not supported by kuzet (see the pipeline section of the README)"
            ))
            .near(other));
        }
    };
    Ok(ProcItem {
        id: s(m.get("id")),
        rule_conds,
        rule_or: op_is_or(m, "rule_cond_op")?,
        rule_not: bool_of(m, "rule_cond_not"),
        field_conds,
        field_or: op_is_or(m, "field_name_cond_op")?,
        field_not: bool_of(m, "field_name_cond_not"),
        item_conds,
        item_or: op_is_or(m, "detection_item_cond_op")?,
        item_not: bool_of(m, "detection_item_cond_not"),
        transform,
    })
}

/// Python's `\1` group references become `${1}` for the regex crate.
fn python_replacement(r: &str) -> String {
    let mut out = String::new();
    let b: Vec<char> = r.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\\' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            out.push_str(&format!("${{{}}}", b[i + 1]));
            i += 2;
        } else if b[i] == '$' {
            out.push_str("$$");
            i += 1;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn combine(results: impl Iterator<Item = bool>, or: bool, not: bool, empty: bool) -> bool {
    let mut any = false;
    let mut all = true;
    let mut n = 0;
    for r in results {
        any |= r;
        all &= r;
        n += 1;
    }
    let v = if n == 0 {
        empty
    } else if or {
        any
    } else {
        all
    };
    v != not
}

/// Per-rule record of which processing items applied (for `processing_item_applied`).
#[derive(Default, Debug, Clone)]
pub struct Applied {
    pub rule: Vec<String>,
    /// Item keys (`Item::key` + field) to item ids applied to them.
    pub items: Vec<(String, String)>,
}

impl ProcItem {
    fn rule_matches(&self, rule: &Rule, applied: &Applied) -> bool {
        combine(
            self.rule_conds.iter().map(|c| match c {
                RuleCond::Logsource(ls) => ls.is_satisfied_by(&rule.logsource),
                RuleCond::ContainsItem { field, value } => all_items(rule).any(|it| {
                    it.field == *field
                        && it.values.iter().any(|v| matches!(v, SValue::Str { s, .. } if s.as_literal().as_deref() == Some(value.as_bytes()))
                            || matches!(v, SValue::Num(_, t) if t == value))
                }),
                RuleCond::ContainsField(f) => all_items(rule).any(|it| it.field.as_deref() == Some(f.as_str())),
                RuleCond::ItemApplied(id) => applied.rule.iter().any(|x| x == id),
                RuleCond::IsRule(r) => *r,
                RuleCond::Attribute { attribute, value, op } => {
                    let actual = match attribute.as_str() {
                        "level" => rule.meta.level.map(|l| l.name().to_string()),
                        "status" => rule.meta.status.clone(),
                        "id" => rule.meta.id.clone(),
                        "title" => Some(rule.meta.title.clone()),
                        "author" => rule.meta.author.clone(),
                        other => rule.meta.custom.get(other).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
                    };
                    match (actual, op.as_str()) {
                        (Some(a), "eq") => a == *value,
                        (Some(a), "ne") => a != *value,
                        (None, "ne") => true,
                        (Some(a), o @ ("lt" | "lte" | "gt" | "gte")) => {
                            let (x, y) = (a.parse::<f64>().unwrap_or(f64::NAN), value.parse::<f64>().unwrap_or(f64::NAN));
                            match o {
                                "lt" => x < y,
                                "lte" => x <= y,
                                "gt" => x > y,
                                _ => x >= y,
                            }
                        }
                        _ => false,
                    }
                }
                RuleCond::Tag(t) => rule.meta.tags.iter().any(|x| x.eq_ignore_ascii_case(t)),
            }),
            self.rule_or,
            self.rule_not,
            true,
        )
    }

    fn field_matches(&self, field: Option<&str>) -> bool {
        let Some(f) = field else {
            // Keywords have no field; field conditions only restrict named fields.
            return self.field_conds.is_empty() || self.field_not;
        };
        combine(
            self.field_conds.iter().map(|c| match c {
                FieldCond::Include(set) => set.contains(f),
                FieldCond::Exclude(set) => !set.contains(f),
            }),
            self.field_or,
            self.field_not,
            true,
        )
    }

    fn item_matches(&self, it: &Item, applied: &Applied) -> bool {
        combine(
            self.item_conds.iter().map(|c| match c {
                ItemCond::MatchString { re, all, negate } => {
                    let strs: Vec<String> = it
                        .values
                        .iter()
                        .filter_map(|v| match v {
                            SValue::Str { s, .. } => Some(s.to_string()),
                            _ => None,
                        })
                        .collect();
                    let r = if *all {
                        !strs.is_empty() && strs.iter().all(|x| re.is_match(x))
                    } else {
                        strs.iter().any(|x| re.is_match(x))
                    };
                    r != *negate
                }
                ItemCond::IsNull => it.values.iter().all(|v| matches!(v, SValue::Null)),
                ItemCond::ContainsWildcard => it
                    .values
                    .iter()
                    .any(|v| matches!(v, SValue::Str { s, .. } if s.has_wildcards())),
                ItemCond::Applied(id) => applied.items.iter().any(|(k, x)| *k == it.key && x == id),
            }),
            self.item_or,
            self.item_not,
            true,
        )
    }
}

fn all_items(rule: &Rule) -> impl Iterator<Item = &Item> {
    rule.detection.searches.iter().flat_map(|s| s.items())
}

/// Sorts pipelines by priority (stable: equal priorities keep their order), as pySigma's
/// resolver does.
pub fn order(pipelines: &mut [Pipeline]) {
    pipelines.sort_by_key(|p| p.priority);
}

/// Applies `pipelines` (already ordered) to `rule`. Errors are `rule_failure` or
/// `detection_item_failure` hits, and values the pipeline cannot handle.
pub fn apply_all(pipelines: &[Pipeline], rule: &mut Rule) -> Result<(), Problem> {
    let mut applied = Applied::default();
    for p in pipelines {
        for item in &p.items {
            if !item.rule_matches(rule, &applied) {
                continue;
            }
            if apply_item(p, item, rule, &mut applied)?
                && let Some(id) = &item.id
            {
                applied.rule.push(id.clone());
            }
        }
    }
    Ok(())
}

/// Applies one processing item; returns whether it changed anything.
fn apply_item(
    p: &Pipeline,
    item: &ProcItem,
    rule: &mut Rule,
    applied: &mut Applied,
) -> Result<bool, Problem> {
    match &item.transform {
        Transform::AddCondition {
            conditions,
            template,
            negated,
        } => {
            let mut searches = Vec::new();
            for (k, v) in conditions {
                let v = if *template {
                    template_value(v, &rule.logsource)
                } else {
                    v.clone()
                };
                searches
                    .push(Search::Item(parse_item(k, &v).map_err(|e| {
                        Problem::new(format!("add_condition: {}", e.reason))
                    })?));
            }
            let search = if searches.len() == 1 {
                searches.pop().expect("one")
            } else {
                Search::And(searches)
            };
            let idx = rule.detection.searches.len();
            rule.detection.names.push(format!(
                "_cond_{}_{idx}",
                item.id.as_deref().unwrap_or("pipeline")
            ));
            rule.detection.searches.push(search);
            let added = if *negated {
                Cond::Not(Box::new(Cond::Search(idx)))
            } else {
                Cond::Search(idx)
            };
            let old = std::mem::replace(&mut rule.detection.condition, Cond::Search(idx));
            rule.detection.condition = Cond::And(vec![added, old]);
            if item
                .rule_conds
                .iter()
                .any(|c| matches!(c, RuleCond::Logsource(_)))
                && !*negated
            {
                rule.logsource_as_conditions = true;
            }
            Ok(true)
        }
        Transform::ChangeLogsource(ls) => {
            rule.logsource = ls.clone();
            Ok(true)
        }
        Transform::RuleFailure(msg) => Err(Problem::new(format!(
            "rejected by pipeline {}: {msg}",
            p.name
        ))),
        Transform::SetCustomAttribute { attribute, value } => {
            rule.meta.custom.insert(attribute.clone(), value.clone());
            Ok(true)
        }
        _ => {
            let mut changed = false;
            let mut searches = std::mem::take(&mut rule.detection.searches);
            let mut res = Ok(());
            for s in searches.iter_mut() {
                if let Err(e) = apply_to_search(p, item, s, applied, &mut changed) {
                    res = Err(e);
                    break;
                }
            }
            rule.detection.searches = searches;
            res.map(|()| changed)
        }
    }
}

fn template_value(v: &Value, ls: &Logsource) -> Value {
    let sub = |t: &str| {
        t.replace("$category", ls.category.as_deref().unwrap_or(""))
            .replace("$product", ls.product.as_deref().unwrap_or(""))
            .replace("$service", ls.service.as_deref().unwrap_or(""))
    };
    match v {
        Value::String(t) => Value::String(sub(t)),
        Value::Sequence(s) => Value::Sequence(s.iter().map(|x| template_value(x, ls)).collect()),
        other => other.clone(),
    }
}

/// Applies a detection-item transformation throughout a search, replacing items in place
/// (a one-to-many mapping turns an item into an OR; a drop removes it).
fn apply_to_search(
    p: &Pipeline,
    item: &ProcItem,
    s: &mut Search,
    applied: &mut Applied,
    changed: &mut bool,
) -> Result<(), Problem> {
    match s {
        Search::And(v) | Search::Or(v) => {
            for x in v.iter_mut() {
                apply_to_search(p, item, x, applied, changed)?;
            }
            // Dropped items leave empty ANDs/ORs behind: remove them.
            v.retain(|x| !matches!(x, Search::And(c) | Search::Or(c) if c.is_empty()));
            Ok(())
        }
        Search::Item(it) => {
            if !item.item_matches(it, applied) {
                return Ok(());
            }
            let field_ok = item.field_matches(it.field.as_deref());
            let replacement = match &item.transform {
                Transform::FieldMapping(map) => {
                    remap_fieldrefs(
                        it,
                        |f| map.get(&Some(f.to_string())).cloned(),
                        item,
                        changed,
                    );
                    match (field_ok, map.get(&it.field)) {
                        (true, Some(names)) => Some(rename(it, names.clone(), changed)),
                        _ => None,
                    }
                }
                Transform::FieldPrefixMapping(pairs) => {
                    let f = |name: &str| {
                        pairs
                            .iter()
                            .find(|(pfx, _)| name.starts_with(pfx.as_str()))
                            .map(|(pfx, dests)| {
                                dests
                                    .iter()
                                    .map(|d| format!("{d}{}", &name[pfx.len()..]))
                                    .collect()
                            })
                    };
                    remap_fieldrefs(it, f, item, changed);
                    match (field_ok, it.field.as_deref().and_then(f)) {
                        (true, Some(names)) => Some(rename(it, names, changed)),
                        _ => None,
                    }
                }
                Transform::FieldPrefix(pfx) => match (&it.field, field_ok) {
                    (Some(f), true) => Some(rename(it, vec![format!("{pfx}{f}")], changed)),
                    _ => None,
                },
                Transform::FieldSuffix(sfx) => match (&it.field, field_ok) {
                    (Some(f), true) => Some(rename(it, vec![format!("{f}{sfx}")], changed)),
                    _ => None,
                },
                Transform::DropItem if field_ok => {
                    *changed = true;
                    Some(Search::And(Vec::new()))
                }
                Transform::ReplaceString { re, replacement } if field_ok => {
                    for v in it.values.iter_mut() {
                        replace_in_value(v, re, replacement, changed);
                    }
                    None
                }
                Transform::ValuePlaceholders { include, exclude } if field_ok => {
                    for v in it.values.iter_mut() {
                        *v = expand_placeholders(v, &p.vars, include.as_deref(), exclude, changed)?;
                    }
                    None
                }
                Transform::ItemFailure(msg) if field_ok => {
                    return Err(
                        Problem::new(format!("rejected by pipeline {}: {msg}", p.name))
                            .near(it.key.clone()),
                    );
                }
                _ => None,
            };
            if let Some(id) = &item.id {
                applied.items.push((it.key.clone(), id.clone()));
            }
            if let Some(r) = replacement {
                *s = r;
            }
            Ok(())
        }
    }
}

fn rename(it: &Item, names: Vec<String>, changed: &mut bool) -> Search {
    *changed = true;
    // A keyword mapped to a field keeps keyword semantics: substring match.
    let values: Vec<SValue> = if it.field.is_none() {
        it.values
            .iter()
            .map(|v| match v {
                SValue::Str { s, cased } => SValue::Str {
                    s: s.clone().contains(),
                    cased: *cased,
                },
                other => other.clone(),
            })
            .collect()
    } else {
        it.values.clone()
    };
    let mut items: Vec<Search> = names
        .into_iter()
        .map(|n| {
            Search::Item(Item {
                field: Some(n),
                values: values.clone(),
                ..it.clone()
            })
        })
        .collect();
    if items.len() == 1 {
        items.pop().expect("one")
    } else {
        Search::Or(items)
    }
}

fn remap_fieldrefs(
    it: &mut Item,
    f: impl Fn(&str) -> Option<Vec<String>>,
    item: &ProcItem,
    changed: &mut bool,
) {
    let mut out = Vec::with_capacity(it.values.len());
    let mut any = false;
    for v in it.values.drain(..) {
        match v {
            SValue::FieldRef { field, mode } if item.field_matches(Some(&field)) => match f(&field)
            {
                Some(names) => {
                    any = true;
                    out.extend(
                        names
                            .into_iter()
                            .map(|n| SValue::FieldRef { field: n, mode }),
                    );
                }
                None => out.push(SValue::FieldRef { field, mode }),
            },
            other => out.push(other),
        }
    }
    it.values = out;
    *changed |= any;
}

fn replace_in_value(v: &mut SValue, re: &Regex, replacement: &str, changed: &mut bool) {
    match v {
        SValue::Alt(vs) => vs
            .iter_mut()
            .for_each(|x| replace_in_value(x, re, replacement, changed)),
        SValue::Str { s, .. } => {
            let text = s.to_string();
            let new = re.replace_all(&text, replacement);
            if new != text {
                *s = SigmaString::parse(&new);
                *changed = true;
            }
        }
        _ => {}
    }
}

fn expand_placeholders(
    v: &SValue,
    vars: &BTreeMap<String, Vec<String>>,
    include: Option<&[String]>,
    exclude: &[String],
    changed: &mut bool,
) -> Result<SValue, Problem> {
    match v {
        SValue::Alt(vs) => Ok(SValue::Alt(
            vs.iter()
                .map(|x| expand_placeholders(x, vars, include, exclude, changed))
                .collect::<Result<_, _>>()?,
        )),
        SValue::Str { s, cased } if s.has_placeholders() => {
            let mut variants = vec![SigmaString::default()];
            for part in &s.parts {
                match part {
                    SPart::Placeholder(name)
                        if include.is_none_or(|inc| inc.contains(name))
                            && !exclude.contains(name) =>
                    {
                        let vals = vars.get(name).ok_or_else(|| {
                            Problem::new(format!(
                                "placeholder %{name}% has no value in the pipeline's vars"
                            ))
                        })?;
                        variants = variants
                            .iter()
                            .flat_map(|pre| {
                                vals.iter().map(move |val| {
                                    let mut n = pre.clone();
                                    n.parts.extend(SigmaString::parse(val).parts);
                                    n
                                })
                            })
                            .collect();
                    }
                    other => variants
                        .iter_mut()
                        .for_each(|x| x.parts.push(other.clone())),
                }
            }
            *changed = true;
            let mut vs: Vec<SValue> = variants
                .into_iter()
                .map(|mut s| {
                    normalize(&mut s);
                    SValue::Str { s, cased: *cased }
                })
                .collect();
            Ok(if vs.len() == 1 {
                vs.pop().expect("one")
            } else {
                SValue::Alt(vs)
            })
        }
        other => Ok(other.clone()),
    }
}

/// Merges adjacent literal parts.
fn normalize(s: &mut SigmaString) {
    let parts = std::mem::take(&mut s.parts);
    for p in parts {
        match p {
            SPart::Lit(l) => s.push_lit(&l),
            other => s.parts.push(other),
        }
    }
}
