//! Rule behaviour tests: timestamped input lines in, the alerts a rule pack must (and must
//! not) raise out. `kuzet test` runs them for the shipped pack and for operators' own rules.
//!
//! A test file (`tests/*.yml` in a rule pack) holds one case per YAML document:
//!
//! ```yaml
//! name: six failed SSH logins from one address raise one brute-force alert
//! rules: [kuzet_sshd_bruteforce_source]    # rules under test: each must fire exactly as expected
//! logsource: {product: linux, service: sshd}   # optional: declare the input's logsource
//! format: auto                    # optional: the input format (as --format)
//! tz: UTC                         # optional: zone for stamps without one
//! now: 2026-11-25T12:00:00Z       # optional: receive time (and the year of year-less stamps)
//! input: |
//!   <38>Nov 25 10:00:01 web01 sshd[4211]: Failed password for root from 203.0.113.7 port 51234 ssh2
//!   ...
//! expect:
//!   - rule: kuzet_sshd_bruteforce_source   # id, name or title
//!     group: {src_ip: 203.0.113.7}          # group-by values (a subset; case-insensitive)
//!     count: 6                              # events in the alert, after all updates
//! ```
//!
//! `expect: []` (or no `expect`) makes a negative case: the rules under test must stay quiet.
//! Alerts are compared in their final state: a correlation alert updated while an attack
//! lasts is one alert whose `count` is the last update's. Alerts of rules outside the case's
//! scope (its `rules` and the rules its expectations name) are ignored unless `strict: true`.
//!
//! Coverage: a rule has a *positive* case when some expectation names it and a *negative* case
//! when some case has it in scope without expecting it; [`coverage`] lists the alerting rules
//! that lack either.

use std::collections::BTreeMap;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::correlator::GROUP_SEP;
use crate::correlator::shard::CorrAlert;
use crate::engine::{self, Engine, EngineConfig};
use crate::event::Timestamp;
use crate::event::time::{Tz, ZoneResolver, parse_iso};
use crate::parser::{InputFormat, ParserConfig};
use crate::runner::Runner;
use crate::sigma::yaml::{Value, documents, scalar_text, string_list};
use crate::sigma::{Logsource, Meta, PipelineError, RuleError, Source};

/// Receive time of a case that does not say (`now`): fixed, so results never depend on the
/// day the tests run.
pub const DEFAULT_NOW: &str = "2030-01-01T00:00:00Z";

/// One expected alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub rule: String,
    pub group: Vec<(String, String)>,
    pub count: Option<u64>,
}

/// One test case.
#[derive(Clone, Debug)]
pub struct Case {
    pub path: Arc<str>,
    pub line: usize,
    pub name: String,
    pub rules: Vec<String>,
    pub logsource: Option<Logsource>,
    pub format: InputFormat,
    pub tz: String,
    pub now: Timestamp,
    pub input: Vec<String>,
    pub expect: Vec<Expect>,
    pub strict: bool,
}

impl Case {
    /// `path:line name`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }
}

fn parse_time(s: &str) -> Option<Timestamp> {
    let iso = parse_iso(s.as_bytes())?;
    Some(iso.resolve(&mut ZoneResolver::new(Tz::Utc)))
}

fn logsource(v: &Value) -> Result<Logsource, String> {
    match v {
        Value::Mapping(m) => {
            for k in m.keys() {
                let k = scalar_text(k).unwrap_or_default();
                if !matches!(k.as_str(), "product" | "category" | "service") {
                    return Err(format!(
                        "logsource: unknown key {k:?} (product, category, service)"
                    ));
                }
            }
            Ok(Logsource {
                product: m.get("product").and_then(scalar_text),
                category: m.get("category").and_then(scalar_text),
                service: m.get("service").and_then(scalar_text),
            })
        }
        Value::String(s) => crate::cli::replay::parse_logsource(s).map_err(|e| e.to_string()),
        _ => Err("logsource must be a map or product=..,service=..".into()),
    }
}

fn expectation(v: &Value) -> Result<Expect, String> {
    let Value::Mapping(m) = v else {
        return Err("each expect entry must be a map with rule (and group, count)".into());
    };
    for k in m.keys() {
        let k = scalar_text(k).unwrap_or_default();
        if !matches!(k.as_str(), "rule" | "group" | "count") {
            return Err(format!("expect: unknown key {k:?} (rule, group, count)"));
        }
    }
    let rule = m
        .get("rule")
        .and_then(scalar_text)
        .ok_or("an expect entry needs rule: (id, name or title)")?;
    let mut group = Vec::new();
    match m.get("group") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(g)) => {
            for (k, v) in g {
                let k = scalar_text(k).ok_or("group keys must be field names")?;
                let v = scalar_text(v).ok_or(format!("group {k}: the value must be a scalar"))?;
                group.push((k, v));
            }
        }
        Some(_) => return Err("group must map group-by fields to values".into()),
    }
    let count = match m.get("count") {
        None => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or("count must be a whole number")?),
        Some(_) => return Err("count must be a number".into()),
    };
    Ok(Expect { rule, group, count })
}

/// Reads the cases of one test file. A broken document is an error; the others still load.
pub fn parse_cases(src: &Source) -> (Vec<Case>, Vec<RuleError>) {
    let mut cases = Vec::new();
    let mut errs = Vec::new();
    for doc in documents(&src.text) {
        let m = match doc.parse() {
            Ok(Value::Mapping(m)) => m,
            Ok(_) => {
                errs.push(RuleError::new(
                    &src.path,
                    None,
                    Some(doc.first_line),
                    "a test case must be a map",
                ));
                continue;
            }
            Err((msg, line)) => {
                errs.push(RuleError::new(
                    &src.path,
                    None,
                    line,
                    format!("YAML: {msg}"),
                ));
                continue;
            }
        };
        let name = m
            .get("name")
            .and_then(scalar_text)
            .unwrap_or_else(|| format!("case at line {}", doc.first_line));
        let fail = |reason: String| {
            let line = Some(doc.first_line);
            RuleError::new(&src.path, Some(name.clone()), line, reason)
        };
        let res = (|| -> Result<Case, String> {
            for k in m.keys() {
                let k = scalar_text(k).unwrap_or_default();
                if !matches!(
                    k.as_str(),
                    "name"
                        | "rules"
                        | "logsource"
                        | "format"
                        | "tz"
                        | "now"
                        | "input"
                        | "expect"
                        | "strict"
                        | "description"
                ) {
                    return Err(format!(
                        "unknown key {k:?} (name, description, rules, logsource, format, tz, now, input, expect, strict)"
                    ));
                }
            }
            let input: Vec<String> = match m.get("input") {
                Some(Value::String(s)) => s.lines().map(str::to_string).collect(),
                Some(Value::Sequence(_)) => string_list(m.get("input").expect("present")),
                _ => return Err("input: the log lines, as a block (|) or a list".into()),
            };
            let expect = match m.get("expect") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Sequence(s)) => s.iter().map(expectation).collect::<Result<_, _>>()?,
                Some(_) => return Err("expect must be a list (or [] for a negative case)".into()),
            };
            let format = match m.get("format").and_then(scalar_text) {
                None => InputFormat::Auto,
                Some(f) => InputFormat::parse(&f).ok_or(format!(
                    "format {f:?} is not one of {}",
                    InputFormat::NAMES.join(", ")
                ))?,
            };
            let tz = m
                .get("tz")
                .and_then(scalar_text)
                .unwrap_or_else(|| "UTC".into());
            Tz::parse(&tz).map_err(|e| e.to_string())?;
            let now_text = m
                .get("now")
                .and_then(scalar_text)
                .unwrap_or_else(|| DEFAULT_NOW.into());
            let now = parse_time(&now_text).ok_or(format!("now: {now_text:?} is not RFC 3339"))?;
            let rules = m.get("rules").map(string_list).unwrap_or_default();
            if rules.is_empty() && expect.is_empty() {
                return Err(
                    "a case must name the rules it tests (rules:) or expect alerts (expect:)"
                        .into(),
                );
            }
            Ok(Case {
                path: src.path.clone(),
                line: doc.first_line,
                name: name.clone(),
                rules,
                logsource: m.get("logsource").map(logsource).transpose()?,
                format,
                tz,
                now,
                input,
                expect,
                strict: matches!(m.get("strict"), Some(Value::Bool(true))),
            })
        })();
        match res {
            Ok(c) => cases.push(c),
            Err(reason) => errs.push(fail(reason)),
        }
    }
    (cases, errs)
}

/// An alert a case raised, in its final state.
#[derive(Clone, Debug)]
pub struct Got {
    /// Index into [`Rules::all`].
    pub rule: usize,
    pub group: Vec<(String, String)>,
    pub count: u64,
    /// How many times it was raised or updated.
    pub revisions: u32,
}

/// The outcome of one case.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub problems: Vec<String>,
    pub got: Vec<Got>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The alerting rules of an engine, for naming and coverage: detections that alert on their
/// own, then correlations that alert.
#[derive(Debug, Default)]
pub struct Rules {
    pub all: Vec<Arc<Meta>>,
    detection: HashMap<u32, usize>,
    correlation: HashMap<u32, usize>,
}

impl Rules {
    pub fn of(e: &Engine) -> Rules {
        let mut r = Rules::default();
        for (i, c) in e.rules.rules().iter().enumerate() {
            if e.correlations.rule_emits(crate::matcher::RuleId(i as u32)) {
                r.detection.insert(i as u32, r.all.len());
                r.all.push(c.meta.clone());
            }
        }
        for i in 0..e.correlations.len() {
            let c = e.correlations.get(crate::correlator::CorrId(i as u32));
            if c.emit {
                r.correlation.insert(i as u32, r.all.len());
                r.all.push(c.meta.clone());
            }
        }
        r
    }

    /// Does `reference` (id, name or title) name rule `i`?
    pub fn names(&self, i: usize, reference: &str) -> bool {
        let m = &self.all[i];
        m.id.as_deref() == Some(reference)
            || m.name.as_deref() == Some(reference)
            || m.title == reference
    }

    fn find(&self, reference: &str) -> Vec<usize> {
        (0..self.all.len())
            .filter(|&i| self.names(i, reference))
            .collect()
    }
}

/// An engine, its alerting rules, and the event class of the declared logsource (0: none).
type Built = (Arc<Engine>, Arc<Rules>, u16);

/// Engines are built once per distinct logsource declaration.
pub struct Engines {
    base: EngineConfig,
    built: HashMap<Option<Logsource>, Result<Built, String>>,
}

impl Engines {
    pub fn new(base: EngineConfig) -> Engines {
        Engines {
            base,
            built: HashMap::new(),
        }
    }

    /// The engine for cases declaring `ls` (`None`: no declaration).
    pub fn get(&mut self, ls: &Option<Logsource>) -> Result<Built, String> {
        let base = &self.base;
        self.built
            .entry(ls.clone())
            .or_insert_with(|| {
                let mut cfg = base.clone();
                let mut class = 0;
                if let Some(l) = ls {
                    cfg.compile.classes.push(vec![l.clone()]);
                    class = cfg.compile.classes.len() as u16;
                }
                let pcfg = ParserConfig::default();
                engine::build(&cfg, &[&pcfg])
                    .map(|e| {
                        let rules = Arc::new(Rules::of(&e));
                        (Arc::new(e), rules, class)
                    })
                    .map_err(|errs: Vec<PipelineError>| {
                        errs.iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
            })
            .clone()
    }
}

fn group_matches(want: &[(String, String)], got: &[(String, String)]) -> bool {
    want.iter().all(|(k, v)| {
        got.iter()
            .any(|(gk, gv)| gk == k && gv.eq_ignore_ascii_case(v))
    })
}

/// Runs one case.
pub fn run_case(case: &Case, engines: &mut Engines) -> Outcome {
    let mut problems = Vec::new();
    let (eng, rules, class) = match engines.get(&case.logsource) {
        Ok(x) => x,
        Err(e) => {
            return Outcome {
                problems: vec![format!("the rules do not load: {e}")],
                got: Vec::new(),
            };
        }
    };
    // Rules in scope, checked to exist.
    let mut scope: Vec<usize> = Vec::new();
    for r in case.rules.iter().chain(case.expect.iter().map(|e| &e.rule)) {
        let found = rules.find(r);
        if found.is_empty() {
            problems.push(format!("no alerting rule has the id, name or title {r:?}"));
        }
        scope.extend(found);
    }
    let pcfg = ParserConfig {
        format: case.format,
        tz: Tz::parse(&case.tz).expect("checked when parsed"),
        class,
        ..ParserConfig::default()
    };
    let mut runner = Runner::new(eng.clone(), &pcfg, 60_000, 900_000);
    // Alerts by (rule, id), in first-raised order.
    let mut got: Vec<Got> = Vec::new();
    let mut by_id: HashMap<(usize, u128), usize> = HashMap::new();
    let mut corr_out: Vec<CorrAlert> = Vec::new();
    let mut fold = |corr_out: &mut Vec<CorrAlert>, got: &mut Vec<Got>| {
        for a in corr_out.drain(..) {
            let Some(&ri) = rules.correlation.get(&a.corr.0) else {
                continue;
            };
            let c = eng.correlations.get(a.corr);
            let group: Vec<(String, String)> = c
                .group_names
                .iter()
                .zip(a.group.split(|&b| b == GROUP_SEP))
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect();
            match by_id.get(&(ri, a.id)) {
                Some(&gi) => {
                    got[gi].count = a.count;
                    got[gi].revisions += 1;
                }
                None => {
                    by_id.insert((ri, a.id), got.len());
                    got.push(Got {
                        rule: ri,
                        group,
                        count: a.count,
                        revisions: 1,
                    });
                }
            }
        }
    };
    for line in &case.input {
        if line.trim().is_empty() {
            continue;
        }
        let mut detections = Vec::new();
        runner.event(line.as_bytes(), case.now, |r, _t| detections.push(r));
        for r in detections {
            if let Some(&ri) = rules.detection.get(&r.0) {
                got.push(Got {
                    rule: ri,
                    group: Vec::new(),
                    count: 1,
                    revisions: 1,
                });
            }
        }
        runner.drain(&mut corr_out);
        fold(&mut corr_out, &mut got);
    }
    runner.finish(&mut corr_out);
    fold(&mut corr_out, &mut got);
    // Each expectation takes the first unused alert that fits it.
    let mut used = vec![false; got.len()];
    for e in &case.expect {
        let fits = |g: &Got| {
            rules.names(g.rule, &e.rule)
                && group_matches(&e.group, &g.group)
                && e.count.is_none_or(|c| c == g.count)
        };
        match (0..got.len()).find(|&i| !used[i] && fits(&got[i])) {
            Some(i) => used[i] = true,
            None => {
                let same_rule: Vec<String> = got
                    .iter()
                    .filter(|g| rules.names(g.rule, &e.rule))
                    .map(|g| describe(&rules, g))
                    .collect();
                problems.push(format!(
                    "expected {} — got {}",
                    describe_expect(e),
                    if same_rule.is_empty() {
                        "no alert of that rule".to_string()
                    } else {
                        same_rule.join("; ")
                    }
                ));
            }
        }
    }
    for (i, g) in got.iter().enumerate() {
        if !used[i] && (case.strict || scope.contains(&g.rule)) {
            problems.push(format!("unexpected {}", describe(&rules, g)));
        }
    }
    Outcome { problems, got }
}

fn describe_expect(e: &Expect) -> String {
    let mut s = e.rule.clone();
    if !e.group.is_empty() {
        let g: Vec<String> = e.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" group {{{}}}", g.join(", ")));
    }
    if let Some(c) = e.count {
        s.push_str(&format!(" count {c}"));
    }
    s
}

/// `label "title" group {..} count N`.
pub fn describe(rules: &Rules, g: &Got) -> String {
    let m = &rules.all[g.rule];
    let mut s = format!("{} ({:?})", m.label(), m.title);
    if !g.group.is_empty() {
        let gs: Vec<String> = g.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        s.push_str(&format!(" group {{{}}}", gs.join(", ")));
    }
    s.push_str(&format!(" count {}", g.count));
    s
}

/// Per alerting rule: (positive cases, negative cases).
pub fn coverage(rules: &Rules, cases: &[Case]) -> BTreeMap<String, (Arc<Meta>, usize, usize)> {
    let mut out: BTreeMap<String, (Arc<Meta>, usize, usize)> = rules
        .all
        .iter()
        .map(|m| (m.label(), (m.clone(), 0, 0)))
        .collect();
    for c in cases {
        for (i, m) in rules.all.iter().enumerate() {
            let expected = c.expect.iter().any(|e| rules.names(i, &e.rule));
            let in_scope = c.rules.iter().any(|r| rules.names(i, r));
            let entry = out.get_mut(&m.label()).expect("all rules listed");
            if expected {
                entry.1 += 1;
            } else if in_scope {
                entry.2 += 1;
            }
        }
    }
    out
}
