//! The rule language, at load time only: Sigma files → validated rules, with filters and
//! processing pipelines applied. Nothing here runs per event; `matcher/` compiles what this
//! module produces.
//!
//! ```text
//! files ──documents()──▶ YAML docs ──parse_rule / parse_filter──▶ Rule, Filter
//!        ──filters──▶ ──pipelines (by priority)──▶ rules ready to compile
//! ```
//!
//! Every problem becomes a [`RuleError`] with path, rule id and line; the other rules load.
//! Sigma v1 collection actions (`action: global`, `reset`, `repeat`) are honoured.

pub mod condition;
pub mod correlation;
pub mod error;
pub mod filter;
pub mod pipeline;
pub mod rule;
pub mod value;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::RuleError;
pub use filter::Filter;
pub use pipeline::{Pipeline, PipelineError};
pub use rule::{Level, Logsource, Meta, Rule};

use yaml::Value;

/// One file's text and the name errors should show for it.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: Arc<str>,
    pub text: String,
}

/// Reads every `.yml`/`.yaml` file under `paths` (files or directories, recursively, in a
/// stable order). Unreadable files become errors.
pub fn read_sources(paths: &[PathBuf]) -> (Vec<Source>, Vec<RuleError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        collect(p, &mut files, &mut errors, true);
    }
    let mut sources = Vec::with_capacity(files.len());
    for f in files {
        let path: Arc<str> = f.display().to_string().into();
        match std::fs::read(&f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => sources.push(Source { path, text }),
                Err(_) => errors.push(RuleError::new(&path, None, None, "file is not UTF-8")),
            },
            Err(e) => errors.push(RuleError::new(
                &path,
                None,
                None,
                format!("cannot read: {e}"),
            )),
        }
    }
    (sources, errors)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<RuleError>, explicit: bool) {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    errors.push(RuleError::new(
                        &p.display().to_string().into(),
                        None,
                        None,
                        format!("cannot list: {e}"),
                    ));
                    return;
                }
            };
            entries.sort();
            for e in entries {
                collect(&e, out, errors, false);
            }
        }
        Ok(_) => {
            let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml"));
            if yaml || explicit {
                out.push(p.to_path_buf());
            }
        }
        Err(e) => errors.push(RuleError::new(
            &p.display().to_string().into(),
            None,
            None,
            format!("cannot open: {e}"),
        )),
    }
}

/// Everything loaded from a set of sources, before compilation.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub correlations: Vec<correlation::CorrelationRule>,
    pub filters: Vec<Filter>,
    pub errors: Vec<RuleError>,
    /// Rule documents seen (loaded or not), for the `N rules loaded, M failed` summary.
    pub documents: usize,
}

/// Parses rule and filter documents from `sources`.
pub fn load(sources: &[Source]) -> Loaded {
    let mut out = Loaded::default();
    for src in sources {
        load_source(src, &mut out);
    }
    // Duplicate ids would make alerts and references ambiguous: the later one is refused.
    let mut seen = hashbrown::HashMap::new();
    let mut keep = Vec::with_capacity(out.rules.len());
    for r in std::mem::take(&mut out.rules) {
        if let Some(id) = &r.meta.id {
            if let Some(first) = seen.get(id) {
                out.errors.push(RuleError::new(
                    &r.path,
                    Some(id.clone()),
                    Some(r.line),
                    format!("duplicate rule id (first defined in {first})"),
                ));
                continue;
            }
            seen.insert(id.clone(), r.path.clone());
        }
        keep.push(r);
    }
    out.rules = keep;
    let mut keep = Vec::with_capacity(out.correlations.len());
    for c in std::mem::take(&mut out.correlations) {
        if let Some(id) = &c.meta.id {
            if let Some(first) = seen.get(id) {
                out.errors.push(RuleError::new(
                    &c.path,
                    Some(id.clone()),
                    Some(c.line),
                    format!("duplicate rule id (first defined in {first})"),
                ));
                continue;
            }
            seen.insert(id.clone(), c.path.clone());
        }
        keep.push(c);
    }
    out.correlations = keep;
    out
}

fn load_source(src: &Source, out: &mut Loaded) {
    let mut global: Option<yaml_serde::Mapping> = None;
    let mut previous: Option<yaml_serde::Mapping> = None;
    for doc in yaml::documents(&src.text) {
        let v = match doc.parse() {
            Ok(v) => v,
            Err((msg, line)) => {
                out.documents += 1;
                out.errors.push(RuleError::new(
                    &src.path,
                    None,
                    line.or(Some(doc.first_line)),
                    format!("YAML: {msg}"),
                ));
                continue;
            }
        };
        let Value::Mapping(mut m) = v else {
            out.documents += 1;
            out.errors.push(RuleError::new(
                &src.path,
                None,
                Some(doc.first_line),
                "document is not a map",
            ));
            continue;
        };
        match m.get("action").and_then(yaml::scalar_text).as_deref() {
            Some("global") => {
                m.remove("action");
                global = Some(m);
                continue;
            }
            Some("reset") => {
                global = None;
                continue;
            }
            Some("repeat") => {
                m.remove("action");
                if let Some(prev) = &previous {
                    m = merge(prev.clone(), m);
                }
            }
            _ => {}
        }
        if let Some(g) = &global {
            m = merge(g.clone(), m);
        }
        previous = Some(m.clone());
        out.documents += 1;
        let locate = |p: &error::Problem| {
            p.near
                .as_deref()
                .and_then(|n| doc.line_of(n))
                .or(Some(doc.first_line))
        };
        if m.contains_key("correlation") {
            match correlation::parse_correlation(&m, &src.path, doc.first_line) {
                Ok(mut c) => {
                    c.text = Arc::from(doc.text);
                    out.correlations.push(c)
                }
                Err((id, p)) => {
                    out.errors
                        .push(RuleError::new(&src.path, id, locate(&p), p.reason))
                }
            }
        } else if m.contains_key("filter") {
            match filter::parse_filter(&m, &src.path, doc.first_line) {
                Ok(f) => out.filters.push(f),
                Err((id, p)) => {
                    out.errors
                        .push(RuleError::new(&src.path, id, locate(&p), p.reason))
                }
            }
        } else {
            match rule::parse_rule(&m, &src.path, doc.first_line) {
                Ok(mut r) => {
                    r.text = Arc::from(doc.text);
                    out.rules.push(r)
                }
                Err((id, p)) => {
                    out.errors
                        .push(RuleError::new(&src.path, id, locate(&p), p.reason))
                }
            }
        }
    }
}

/// Deep merge for collection actions: maps merge key by key, other values are replaced.
fn merge(mut base: yaml_serde::Mapping, over: yaml_serde::Mapping) -> yaml_serde::Mapping {
    for (k, v) in over {
        let merged = match (base.remove(&k), v) {
            (Some(Value::Mapping(a)), Value::Mapping(b)) => Value::Mapping(merge(a, b)),
            (_, v) => v,
        };
        base.insert(k, merged);
    }
    base
}

/// Loads pipeline files.
pub fn load_pipelines(sources: &[Source]) -> (Vec<Pipeline>, Vec<PipelineError>) {
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    for s in sources {
        match pipeline::parse_pipeline(&s.path, &s.text) {
            Ok(p) => ok.push(p),
            Err(e) => errs.push(e),
        }
    }
    pipeline::order(&mut ok);
    (ok, errs)
}

/// Applies filters, then pipelines, to every rule. Rules a pipeline rejects move to errors.
pub fn prepare(loaded: &mut Loaded, pipelines: &[Pipeline]) {
    let rules = std::mem::take(&mut loaded.rules);
    for mut r in rules {
        for f in &loaded.filters {
            if f.applies_to(&r) {
                f.apply(&mut r);
            }
        }
        match pipeline::apply_all(pipelines, &mut r) {
            Ok(()) => loaded.rules.push(r),
            Err(p) => {
                let line = Some(r.line);
                loaded.errors.push(RuleError::new(
                    &r.path,
                    Some(r.meta.label()),
                    line,
                    p.reason,
                ));
            }
        }
    }
}
