//! Building a rule engine from files: rules + pipelines + the field table → an immutable
//! [`RuleSet`] and the frozen [`FieldTable`] parsers must use with it. Load time only; the
//! daemon rebuilds one of these on reload and swaps it in whole.
//!
//! Without rule paths, the rule pack shipped in `rules/` (embedded in the binary) is used.
//! The shipped pipelines (`rules/pipelines/`) apply unless disabled, before user pipelines
//! of the same priority.

use std::path::PathBuf;
use std::sync::Arc;

use crate::correlator::{CorrOptions, Correlations};
use crate::event::FieldTable;
use crate::matcher::{CompileOptions, RuleSet};
use crate::parser::ParserConfig;
use crate::sigma::{self, Pipeline, PipelineError, Rule, RuleError, Source};

include!(concat!(env!("OUT_DIR"), "/embedded_rules.rs"));

/// Where rules and pipelines come from.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// Rule files or directories; empty: the embedded pack.
    pub rule_paths: Vec<PathBuf>,
    /// Extra pipeline files, applied after (by priority) the shipped ones.
    pub pipeline_paths: Vec<PathBuf>,
    /// Skip the shipped pipelines.
    pub no_default_pipelines: bool,
    pub compile: CompileOptions,
    pub correlation: CorrOptions,
}

/// A compiled engine and the report of what did not load.
#[derive(Debug)]
pub struct Engine {
    pub rules: Arc<RuleSet>,
    pub correlations: Arc<Correlations>,
    pub table: Arc<FieldTable>,
    /// Rules that failed, each with path, id, line and reason.
    pub errors: Vec<RuleError>,
    /// Rule documents seen.
    pub documents: usize,
    /// The prepared rules (after filters and pipelines), in the order compiled.
    pub prepared: Vec<Rule>,
}

impl Engine {
    /// `N rules loaded, M failed` (detection and correlation rules).
    pub fn summary(&self) -> String {
        let corrs = self
            .correlations
            .list
            .iter()
            .filter(|c| !c.sources.is_empty())
            .count();
        format!(
            "{} rules loaded, {} failed",
            self.rules.len() + corrs,
            self.errors.len()
        )
    }
}

fn embedded(prefix: &str) -> Vec<Source> {
    EMBEDDED_RULES
        .iter()
        .filter(|(p, _)| p.starts_with(prefix))
        .map(|(p, t)| Source {
            path: format!("<embedded>/{p}").into(),
            text: t.to_string(),
        })
        .collect()
}

/// The shipped detection rules: every YAML file under `rules/` except pipelines,
/// field-extraction parsers and behaviour tests.
pub fn embedded_rules() -> Vec<Source> {
    embedded("rules/")
        .into_iter()
        .filter(|s| {
            let p = &*s.path;
            (p.ends_with(".yml") || p.ends_with(".yaml"))
                && !p.contains("/rules/pipelines/")
                && !p.contains("/rules/parsers/")
                && !p.contains("/rules/tests/")
        })
        .collect()
}

pub fn embedded_pipelines() -> Vec<Source> {
    embedded("rules/pipelines/")
}

/// Loads, prepares and compiles. A pipeline that does not load is fatal (it would change
/// what every rule means); rule problems are reported in [`Engine::errors`].
pub fn build(cfg: &EngineConfig, parsers: &[&ParserConfig]) -> Result<Engine, Vec<PipelineError>> {
    let (rule_sources, mut io_errors) = if cfg.rule_paths.is_empty() {
        (embedded_rules(), Vec::new())
    } else {
        sigma::read_sources(&cfg.rule_paths)
    };
    let mut pipe_sources = if cfg.no_default_pipelines {
        Vec::new()
    } else {
        embedded_pipelines()
    };
    let (user_pipes, pipe_io) = sigma::read_sources(&cfg.pipeline_paths);
    pipe_sources.extend(user_pipes);
    let mut perrs: Vec<PipelineError> = pipe_io
        .into_iter()
        .map(|e| PipelineError {
            path: e.path,
            line: e.line,
            reason: e.reason,
        })
        .collect();
    let (pipelines, pe): (Vec<Pipeline>, _) = sigma::load_pipelines(&pipe_sources);
    perrs.extend(pe);
    if !perrs.is_empty() {
        return Err(perrs);
    }
    let mut loaded = sigma::load(&rule_sources);
    sigma::prepare(&mut loaded, &pipelines);
    let mut table = FieldTable::new();
    for p in parsers {
        p.register(&mut table);
    }
    let (set, compile_errors) = RuleSet::build(&loaded.rules, &mut table, &cfg.compile);
    let (corrs, corr_errors) =
        Correlations::build(&loaded.correlations, &set, &mut table, &cfg.correlation);
    let table = Arc::new(table);
    let mut errors = std::mem::take(&mut loaded.errors);
    errors.append(&mut io_errors);
    let failed: hashbrown::HashSet<(Arc<str>, Option<String>)> = compile_errors
        .iter()
        .map(|e| (e.path.clone(), e.rule.clone()))
        .collect();
    errors.extend(compile_errors);
    errors.extend(corr_errors);
    let prepared = loaded
        .rules
        .into_iter()
        .filter(|r| !failed.contains(&(r.path.clone(), Some(r.meta.label()))))
        .collect();
    errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    Ok(Engine {
        rules: Arc::new(set.with_table(table.clone())),
        correlations: Arc::new(corrs),
        table,
        errors,
        documents: loaded.documents,
        prepared,
    })
}
