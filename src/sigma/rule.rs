//! Sigma detection rules: the validated, modifier-applied form the matcher compiles.
//!
//! [`parse_rule`] turns one YAML document into a [`Rule`]: metadata, logsource, searches
//! (with every modifier already applied to the values, see `value.rs`) and the condition
//! (names already resolved to search indices, see `condition.rs`). Problems come back as
//! [`Problem`]s with a hint of where in the document they are.

use std::sync::Arc;

use super::condition::{self, Cond};
use super::error::Problem;
use super::value::{
    self, CmpOp, Modifier, ReFlags, RefMode, SValue, SigmaString, base64, base64_offsets, utf16be,
    utf16bom, utf16le,
};
use super::yaml::{Value, scalar_text, string_list, to_json};

/// `logsource` of a rule. Values are kept as written (compared case-insensitively).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Logsource {
    pub product: Option<String>,
    pub category: Option<String>,
    pub service: Option<String>,
}

impl Logsource {
    pub fn is_empty(&self) -> bool {
        self.product.is_none() && self.category.is_none() && self.service.is_none()
    }

    /// True when every facet this one names is named the same by `other`.
    pub fn is_satisfied_by(&self, other: &Logsource) -> bool {
        fn ok(a: &Option<String>, b: &Option<String>) -> bool {
            match (a, b) {
                (None, _) => true,
                // Exact, as pySigma compares log sources.
                (Some(a), Some(b)) => a == b,
                (Some(_), None) => false,
            }
        }
        ok(&self.product, &other.product)
            && ok(&self.category, &other.category)
            && ok(&self.service, &other.service)
    }
}

impl std::fmt::Display for Logsource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (k, v) in [
            ("product", &self.product),
            ("category", &self.category),
            ("service", &self.service),
        ] {
            if let Some(v) = v {
                if !first {
                    write!(f, ", ")?;
                }
                write!(f, "{k}: {v}")?;
                first = false;
            }
        }
        if first {
            write!(f, "(any)")?;
        }
        Ok(())
    }
}

/// One detection item: a field (or none, for keywords) and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// `None` for keywords (searched in the message text).
    pub field: Option<String>,
    pub values: Vec<SValue>,
    /// `all` modifier: every value must match (else any).
    pub all: bool,
    /// `neq` modifier: the item is negated (so a missing field matches).
    pub negated: bool,
    /// The key as written (`CommandLine|contains|all`), to locate errors.
    pub key: String,
}

/// A search (the value of one search identifier).
#[derive(Clone, Debug, PartialEq)]
pub enum Search {
    /// A map: all items.
    And(Vec<Search>),
    /// A list of maps: any of them.
    Or(Vec<Search>),
    Item(Item),
}

impl Search {
    /// Every item, depth first.
    pub fn items(&self) -> Vec<&Item> {
        let mut v = Vec::new();
        fn rec<'a>(s: &'a Search, v: &mut Vec<&'a Item>) {
            match s {
                Search::And(c) | Search::Or(c) => c.iter().for_each(|x| rec(x, v)),
                Search::Item(i) => v.push(i),
            }
        }
        rec(self, &mut v);
        v
    }

    /// Every item, mutably (pipelines rewrite fields and values).
    pub fn items_mut(&mut self) -> Vec<&mut Item> {
        let mut v = Vec::new();
        fn rec<'a>(s: &'a mut Search, v: &mut Vec<&'a mut Item>) {
            match s {
                Search::And(c) | Search::Or(c) => c.iter_mut().for_each(|x| rec(x, v)),
                Search::Item(i) => v.push(i),
            }
        }
        rec(self, &mut v);
        v
    }
}

/// The detection section: named searches and the condition over them.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub names: Vec<String>,
    pub searches: Vec<Search>,
    pub condition: Cond,
}

/// Severity of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// Rule metadata that travels with every alert.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub id: Option<String>,
    pub name: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub description: Option<String>,
    /// Required in alerts by the Detection Rule License of SigmaHQ rules.
    pub author: Option<String>,
    pub level: Option<Level>,
    pub tags: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    /// Attributes the Sigma spec does not define (`recommendation`, ...), as JSON.
    pub custom: serde_json::Map<String, serde_json::Value>,
}

impl Meta {
    /// What errors and alerts call the rule: its id, else name, else title.
    pub fn label(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| self.title.clone())
    }
}

/// A detection rule, ready for pipelines and compilation.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// File it came from and the line its document starts on.
    pub path: Arc<str>,
    pub line: usize,
    /// The document's text, kept only to point errors found after parsing (pipelines,
    /// compilation) at the right line; see [`Rule::line_of`].
    pub text: Arc<str>,
    pub meta: Meta,
    pub logsource: Logsource,
    pub detection: Detection,
    /// A pipeline turned the logsource into field conditions (`add_condition` under a
    /// `logsource` rule condition), so the rule selects its events by their fields and needs
    /// no logsource on the event.
    pub logsource_as_conditions: bool,
}

/// Keys of a rule document that are not custom attributes.
const KNOWN_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "status",
    "description",
    "author",
    "level",
    "tags",
    "references",
    "falsepositives",
    "date",
    "modified",
    "logsource",
    "detection",
    "fields",
    "related",
    "license",
    "taxonomy",
    "scope",
];

fn get<'a>(m: &'a yaml_serde::Mapping, k: &str) -> Option<&'a Value> {
    m.get(k)
}

fn opt_str(m: &yaml_serde::Mapping, k: &str) -> Option<String> {
    get(m, k).and_then(scalar_text)
}

/// Reads the metadata common to detection, correlation and filter documents.
pub fn parse_meta(m: &yaml_serde::Mapping) -> Result<Meta, Problem> {
    let title = opt_str(m, "title").ok_or_else(|| Problem::new("rule has no title"))?;
    let level = match get(m, "level") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = scalar_text(v).unwrap_or_default();
            Some(Level::parse(&s).ok_or_else(|| {
                Problem::new(format!(
                    "level {s:?} is not informational, low, medium, high or critical"
                ))
                .near("level:")
            })?)
        }
    };
    let mut custom = serde_json::Map::new();
    for (k, v) in m {
        let Some(k) = scalar_text(k) else { continue };
        if !KNOWN_KEYS.contains(&k.as_str()) && k != "correlation" && k != "filter" {
            custom.insert(k, to_json(v));
        }
    }
    Ok(Meta {
        id: opt_str(m, "id"),
        name: opt_str(m, "name"),
        title,
        status: opt_str(m, "status"),
        description: opt_str(m, "description"),
        author: opt_str(m, "author"),
        level,
        tags: get(m, "tags").map(string_list).unwrap_or_default(),
        references: get(m, "references").map(string_list).unwrap_or_default(),
        falsepositives: get(m, "falsepositives")
            .map(string_list)
            .unwrap_or_default(),
        date: opt_str(m, "date"),
        modified: opt_str(m, "modified"),
        custom,
    })
}

pub fn parse_logsource(m: &yaml_serde::Mapping) -> Result<Logsource, Problem> {
    let Some(ls) = get(m, "logsource") else {
        return Ok(Logsource::default());
    };
    let Value::Mapping(ls) = ls else {
        return Err(Problem::new("logsource must be a map").near("logsource:"));
    };
    Ok(Logsource {
        product: opt_str(ls, "product"),
        category: opt_str(ls, "category"),
        service: opt_str(ls, "service"),
    })
}

/// Parses one detection-rule document.
pub fn parse_rule(
    m: &yaml_serde::Mapping,
    path: &Arc<str>,
    line: usize,
) -> Result<Rule, (Option<String>, Problem)> {
    let meta = parse_meta(m).map_err(|p| (opt_str(m, "id").or_else(|| opt_str(m, "title")), p))?;
    let label = Some(meta.label());
    let logsource = parse_logsource(m).map_err(|p| (label.clone(), p))?;
    let det = match get(m, "detection") {
        Some(Value::Mapping(d)) => d,
        Some(_) => {
            return Err((
                label,
                Problem::new("detection must be a map").near("detection:"),
            ));
        }
        None => return Err((label, Problem::new("rule has no detection"))),
    };
    let detection = parse_detection(det).map_err(|p| (label.clone(), p))?;
    Ok(Rule {
        path: path.clone(),
        line,
        meta,
        logsource,
        detection,
        logsource_as_conditions: false,
        text: Arc::from(""),
    })
}

impl Rule {
    /// The file line of the first line of the rule's document containing `needle`, else the
    /// line the document starts on.
    pub fn line_of(&self, needle: Option<&str>) -> usize {
        needle
            .filter(|n| !n.is_empty())
            .and_then(|n| self.text.lines().position(|l| l.contains(n)))
            .map_or(self.line, |i| self.line + i)
    }
}

/// Parses a `detection` map (also used by filters).
pub fn parse_detection(det: &yaml_serde::Mapping) -> Result<Detection, Problem> {
    let mut names = Vec::new();
    let mut searches = Vec::new();
    let mut cond_text: Vec<String> = Vec::new();
    for (k, v) in det {
        let Some(k) = scalar_text(k) else {
            return Err(Problem::new("detection keys must be strings"));
        };
        match k.as_str() {
            "condition" => {
                cond_text = match v {
                    Value::Sequence(s) => s.iter().filter_map(scalar_text).collect(),
                    other => scalar_text(other).into_iter().collect(),
                };
            }
            // Deprecated in Sigma 2; correlation rules replace it. Ignored like pySigma.
            "timeframe" => {}
            _ => {
                let s = parse_search(v).map_err(|p| p.near(format!("{k}:")))?;
                names.push(k);
                searches.push(s);
            }
        }
    }
    if cond_text.is_empty() {
        return Err(Problem::new("detection has no condition").near("detection:"));
    }
    let mut conds = Vec::new();
    for c in &cond_text {
        conds.push(condition::parse(c, &names)?);
    }
    let condition = if conds.len() == 1 {
        conds.pop().expect("one")
    } else {
        Cond::Or(conds)
    };
    Ok(Detection {
        names,
        searches,
        condition,
    })
}

fn parse_search(v: &Value) -> Result<Search, Problem> {
    match v {
        Value::Mapping(m) => parse_map(m),
        Value::Sequence(s) if s.is_empty() => Err(Problem::new("search is an empty list")),
        // A list of plain values: one keyword item whose values are alternatives.
        Value::Sequence(s)
            if s.iter()
                .all(|x| !matches!(x, Value::Mapping(_) | Value::Sequence(_))) =>
        {
            Ok(Search::Item(parse_item("", &Value::Sequence(s.clone()))?))
        }
        // A list of maps (or of maps and values): any of them (pySigma nests each).
        Value::Sequence(s) => {
            let mut v = s.iter().map(parse_search).collect::<Result<Vec<_>, _>>()?;
            Ok(if v.len() == 1 {
                v.pop().expect("one")
            } else {
                Search::Or(v)
            })
        }
        Value::Null => Err(Problem::new("search is empty")),
        scalar => Ok(Search::Item(parse_item("", scalar)?)),
    }
}

fn parse_map(m: &yaml_serde::Mapping) -> Result<Search, Problem> {
    if m.is_empty() {
        return Err(Problem::new("search is an empty map"));
    }
    let mut items = Vec::with_capacity(m.len());
    for (k, v) in m {
        let k = scalar_text(k).ok_or_else(|| Problem::new("field names must be strings"))?;
        items.push(Search::Item(
            parse_item(&k, v).map_err(|p| p.near(k.clone()))?,
        ));
    }
    Ok(if items.len() == 1 {
        items.pop().expect("one")
    } else {
        Search::And(items)
    })
}

/// Plain values before any modifier.
enum Base {
    Str(String),
    Num(f64, String),
    Bool(bool),
    Null,
}

/// Parses `field|mod|mod: value(s)` and applies the modifiers.
pub fn parse_item(key: &str, v: &Value) -> Result<Item, Problem> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or("");
    let mut mods = Vec::new();
    for m in parts {
        mods.push(
            Modifier::parse(m)
                .ok_or_else(|| Problem::new(format!("unknown modifier '{m}'")).near(key))?,
        );
    }
    let raw: Vec<&Value> = match v {
        Value::Sequence(s) => s.iter().collect(),
        other => vec![other],
    };
    if raw.is_empty() {
        return Err(Problem::new(format!("'{key}' has an empty list of values")).near(key));
    }
    let mut base = Vec::with_capacity(raw.len());
    for r in raw {
        base.push(match r {
            Value::String(s) => Base::Str(s.clone()),
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // pySigma keeps a number that is integral as an integer (`SigmaNumber`): `2.0`
                // is `2`, also as text (tests/oracle/SEMANTICS.md 2.8).
                let text = if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", f as i64)
                } else {
                    n.to_string()
                };
                Base::Num(f, text)
            }
            Value::Bool(b) => Base::Bool(*b),
            Value::Null => Base::Null,
            _ => return Err(Problem::new(format!("'{key}': values must be scalars")).near(key)),
        });
    }
    let mut item = Item {
        field: (!field.is_empty()).then(|| field.to_string()),
        values: Vec::new(),
        all: false,
        negated: false,
        key: key.to_string(),
    };
    item.values = apply_modifiers(&mods, base, &mut item).map_err(|p| p.near(key))?;
    Ok(item)
}

fn base_text(b: &Base) -> Option<String> {
    match b {
        Base::Str(s) => Some(s.clone()),
        Base::Num(_, t) => Some(t.clone()),
        Base::Bool(b) => Some(b.to_string()),
        Base::Null => None,
    }
}

fn apply_modifiers(
    mods: &[Modifier],
    base: Vec<Base>,
    item: &mut Item,
) -> Result<Vec<SValue>, Problem> {
    use Modifier::*;
    let has = |m: Modifier| mods.contains(&m);
    item.all = has(All);
    item.negated = has(Neq);
    // Modifiers that decide the value type outright.
    if has(Re) {
        let flags = ReFlags {
            ignore_case: has(ReI),
            multi_line: has(ReM),
            dot_all: has(ReS),
        };
        // `contains`/`startswith`/`endswith` on a regex only wrap it in `.*` (pySigma), which
        // changes nothing for an unanchored search: accepted and ignored.
        for m in mods {
            if !matches!(
                m,
                Re | ReI | ReM | ReS | All | Neq | Contains | StartsWith | EndsWith
            ) {
                return Err(Problem::new(format!(
                    "modifier {m:?} cannot be combined with 're'"
                )));
            }
        }
        return base
            .iter()
            .map(|b| {
                let pattern =
                    base_text(b).ok_or_else(|| Problem::new("re: null is not a pattern"))?;
                regex_syntax_check(&pattern, flags)?;
                Ok(SValue::Regex { pattern, flags })
            })
            .collect();
    }
    if mods.iter().any(|m| matches!(m, ReI | ReM | ReS)) {
        return Err(Problem::new("modifiers 'i', 'm', 's' need 're'"));
    }
    if has(Cidr) {
        return base
            .iter()
            .map(|b| {
                Ok(SValue::Cidr(value::parse_cidr(
                    &base_text(b).unwrap_or_default(),
                )?))
            })
            .collect();
    }
    let cmp = mods.iter().find_map(|m| match m {
        Lt => Some(CmpOp::Lt),
        Lte => Some(CmpOp::Lte),
        Gt => Some(CmpOp::Gt),
        Gte => Some(CmpOp::Gte),
        _ => None,
    });
    if let Some(op) = cmp {
        return base
            .iter()
            .map(|b| match b {
                Base::Num(n, _) => Ok(SValue::Cmp(op, *n)),
                Base::Str(s) => s
                    .trim()
                    .parse::<f64>()
                    .map(|n| SValue::Cmp(op, n))
                    .map_err(|_| Problem::new(format!("{op:?}: {s:?} is not a number"))),
                _ => Err(Problem::new(format!("{op:?} needs a number"))),
            })
            .collect();
    }
    if has(Exists) {
        return base
            .iter()
            .map(|b| match b {
                Base::Bool(v) => Ok(SValue::Exists(*v)),
                Base::Str(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") => {
                    Ok(SValue::Exists(true))
                }
                Base::Str(s) if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") => {
                    Ok(SValue::Exists(false))
                }
                _ => Err(Problem::new("exists needs true or false")),
            })
            .collect();
    }
    if has(FieldRef) {
        let mode = if has(Contains) {
            RefMode::Contains
        } else if has(StartsWith) {
            RefMode::StartsWith
        } else if has(EndsWith) {
            RefMode::EndsWith
        } else {
            RefMode::Equals
        };
        return base
            .iter()
            .map(|b| match b {
                Base::Str(s) => Ok(SValue::FieldRef {
                    field: s.clone(),
                    mode,
                }),
                _ => Err(Problem::new("fieldref needs a field name")),
            })
            .collect();
    }
    // String pipeline: modifiers apply in order, as written.
    let string_mod = mods.iter().any(|m| {
        matches!(
            m,
            Contains
                | StartsWith
                | EndsWith
                | Base64
                | Base64Offset
                | Utf16Le
                | Utf16Be
                | Utf16
                | Wide
                | Windash
                | Expand
                | Cased
        )
    });
    let mut vals: Vec<SValue> = Vec::with_capacity(base.len());
    for b in base {
        vals.push(match b {
            Base::Str(s) => SValue::Str {
                s: SigmaString::parse(&s),
                cased: false,
            },
            Base::Num(n, t) if !string_mod => SValue::Num(n, t),
            Base::Bool(v) if !string_mod => SValue::Bool(v),
            Base::Null if !string_mod => SValue::Null,
            Base::Null => return Err(Problem::new("null cannot take string modifiers")),
            other => SValue::Str {
                s: SigmaString::literal(base_text(&other).unwrap_or_default().as_bytes()),
                cased: false,
            },
        });
    }
    for m in mods {
        vals = vals
            .into_iter()
            .map(|v| map_str(v, *m))
            .collect::<Result<_, _>>()?;
    }
    Ok(vals)
}

/// Applies one string modifier to a value (and to each variant of an `Alt`).
fn map_str(v: SValue, m: Modifier) -> Result<SValue, Problem> {
    use Modifier::*;
    let (s, cased) = match v {
        SValue::Alt(vs) => {
            return Ok(SValue::Alt(
                vs.into_iter()
                    .map(|x| map_str(x, m))
                    .collect::<Result<_, _>>()?,
            ));
        }
        SValue::Str { s, cased } => (s, cased),
        other => return Ok(other),
    };
    let plain = |s: &SigmaString, what: &str| -> Result<Vec<u8>, Problem> {
        s.as_literal().ok_or_else(|| {
            Problem::new(format!(
                "{what} cannot encode a value with wildcards or placeholders"
            ))
        })
    };
    Ok(match m {
        Contains => SValue::Str {
            s: s.contains(),
            cased,
        },
        StartsWith => SValue::Str {
            s: s.startswith(),
            cased,
        },
        EndsWith => SValue::Str {
            s: s.endswith(),
            cased,
        },
        Cased => SValue::Str { s, cased: true },
        Expand => SValue::Str {
            s: s.with_placeholders(),
            cased,
        },
        Base64 => SValue::Str {
            s: SigmaString::literal(&base64(&plain(&s, "base64")?)),
            cased,
        },
        Base64Offset => {
            let lit = plain(&s, "base64offset")?;
            SValue::Alt(
                base64_offsets(&lit)
                    .into_iter()
                    .map(|b| SValue::Str {
                        s: SigmaString::literal(&b),
                        cased,
                    })
                    .collect(),
            )
        }
        Utf16Le | Wide => SValue::Str {
            s: s.map_lits(utf16le),
            cased,
        },
        Utf16Be => SValue::Str {
            s: s.map_lits(utf16be),
            cased,
        },
        Utf16 => SValue::Str {
            s: s.map_lits(utf16bom),
            cased,
        },
        Windash => {
            let vs = value::windash(&s)?;
            if vs.len() == 1 {
                SValue::Str { s, cased }
            } else {
                SValue::Alt(vs.into_iter().map(|s| SValue::Str { s, cased }).collect())
            }
        }
        All | Neq => SValue::Str { s, cased },
        other => {
            return Err(Problem::new(format!(
                "modifier {other:?} is not a string modifier"
            )));
        }
    })
}

/// Checks that a pattern compiles under the matcher's regex dialect (RE2-like, as
/// pySigma's safe policy), so bad patterns are reported at load time with their rule.
fn regex_syntax_check(pattern: &str, f: ReFlags) -> Result<(), Problem> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(f.ignore_case)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
        .size_limit(1 << 22)
        .build()
        .map(|_| ())
        .map_err(|e| {
            Problem::new(format!(
                "re: {}",
                e.to_string().lines().last().unwrap_or("invalid pattern")
            ))
            .near(pattern)
        })
}
