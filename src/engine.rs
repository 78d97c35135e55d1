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
use crate::extract::{self, Extractors};
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
    /// Field-extraction definitions (files or directories); empty: the shipped ones.
    pub parser_paths: Vec<PathBuf>,
    /// Skip the shipped field extractors.
    pub no_default_parsers: bool,
    pub compile: CompileOptions,
    pub correlation: CorrOptions,
}

/// A compiled engine and the report of what did not load.
#[derive(Debug)]
pub struct Engine {
    pub rules: Arc<RuleSet>,
    /// Field extraction, applied after parsing and before matching.
    pub extractors: Arc<Extractors>,
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

/// A rule pack split by role. A pack directory holds Sigma rules anywhere, except in its
/// top-level `pipelines/` (processing pipelines), `parsers/` (field extractors) and `tests/`
/// (rule behaviour tests) directories. The shipped pack (`rules/`) has this shape, and so may
/// any directory given with `--rules`.
#[derive(Debug, Default)]
pub struct Pack {
    pub rules: Vec<Source>,
    pub pipelines: Vec<Source>,
    pub parsers: Vec<Source>,
    pub tests: Vec<Source>,
    /// Files that could not be read.
    pub errors: Vec<RuleError>,
}

impl Pack {
    fn add(&mut self, rel: &str, src: Source) {
        let is_yaml = rel.ends_with(".yml") || rel.ends_with(".yaml");
        if !is_yaml {
            return;
        }
        match rel.split('/').next() {
            Some("pipelines") if rel.contains('/') => self.pipelines.push(src),
            Some("parsers") if rel.contains('/') => self.parsers.push(src),
            Some("tests") if rel.contains('/') => self.tests.push(src),
            _ => self.rules.push(src),
        }
    }

    /// The pack embedded in the binary.
    pub fn embedded() -> Pack {
        let mut pack = Pack::default();
        for (p, t) in EMBEDDED_RULES {
            let rel = p.strip_prefix("rules/").unwrap_or(p);
            let src = Source {
                path: format!("<embedded>/{p}").into(),
                text: t.to_string(),
            };
            pack.add(rel, src);
        }
        pack
    }

    /// Reads files and pack directories (recursively).
    pub fn read(paths: &[PathBuf]) -> Pack {
        let mut pack = Pack::default();
        for root in paths {
            let (sources, errors) = sigma::read_sources(std::slice::from_ref(root));
            pack.errors.extend(errors);
            for src in sources {
                let full = std::path::Path::new(&*src.path);
                let rel = full
                    .strip_prefix(root)
                    .ok()
                    .filter(|r| !r.as_os_str().is_empty())
                    .map(|r| r.to_string_lossy().replace('\\', "/"));
                match rel {
                    Some(rel) => pack.add(&rel, src),
                    // A file named directly is a rule file.
                    None => pack.rules.push(src),
                }
            }
        }
        pack
    }
}

/// The shipped detection rules.
pub fn embedded_rules() -> Vec<Source> {
    Pack::embedded().rules
}

/// The shipped pipelines (`rules/pipelines/`).
pub fn embedded_pipelines() -> Vec<Source> {
    Pack::embedded().pipelines
}

/// The shipped field extractors (`rules/parsers/`).
pub fn embedded_parsers() -> Vec<Source> {
    Pack::embedded().parsers
}

/// The shipped rule behaviour tests (`rules/tests/`).
pub fn embedded_tests() -> Vec<Source> {
    Pack::embedded().tests
}

/// Reads field-extractor definitions from sources.
pub fn extractor_defs(sources: &[Source]) -> (Vec<extract::Def>, Vec<RuleError>) {
    let mut defs = Vec::new();
    let mut errors = Vec::new();
    for src in sources {
        let (d, e) = extract::parse_defs(&src.path, &src.text);
        defs.extend(d);
        errors.extend(e);
    }
    (defs, errors)
}

/// Field extractors: the shipped ones (unless `no_default`), then those under `paths`.
pub fn extractor_sources(paths: &[PathBuf], no_default: bool) -> (Vec<Source>, Vec<RuleError>) {
    let mut sources = if no_default {
        Vec::new()
    } else {
        embedded_parsers()
    };
    let (user, errors) = sigma::read_sources(paths);
    sources.extend(user);
    (sources, errors)
}

/// The shipped extractors alone, with a parser configuration reading fields in `mode`; both
/// intern their fields in the returned table. The fixture of the extraction bench and of
/// `examples/extractprof`.
pub fn shipped_extractors(
    mode: crate::event::FieldMode,
) -> Result<(Extractors, FieldTable, ParserConfig), Vec<RuleError>> {
    let (sources, mut errs) = extractor_sources(&[], false);
    let (defs, e) = extractor_defs(&sources);
    errs.extend(e);
    let mut table = FieldTable::new();
    let cfg = ParserConfig {
        mode,
        ..ParserConfig::default()
    };
    cfg.register(&mut table);
    let (x, e) = Extractors::build(&defs, |_| 1, &mut table);
    errs.extend(e);
    if errs.is_empty() {
        Ok((x, table, cfg))
    } else {
        Err(errs)
    }
}

/// Loads, prepares and compiles. A pipeline that does not load is fatal (it would change
/// what every rule means); rule problems are reported in [`Engine::errors`].
pub fn build(cfg: &EngineConfig, parsers: &[&ParserConfig]) -> Result<Engine, Vec<PipelineError>> {
    let user_pack = Pack::read(&cfg.rule_paths);
    let rule_sources = if cfg.rule_paths.is_empty() {
        embedded_rules()
    } else {
        user_pack.rules
    };
    let mut io_errors = user_pack.errors;
    let mut pipe_sources = if cfg.no_default_pipelines {
        Vec::new()
    } else {
        embedded_pipelines()
    };
    pipe_sources.extend(user_pack.pipelines);
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
    // Field extractors first: their logsources are event classes the rules route by.
    let (mut parser_sources, parser_io) =
        extractor_sources(&cfg.parser_paths, cfg.no_default_parsers);
    parser_sources.extend(user_pack.parsers);
    io_errors.extend(parser_io);
    let (defs, def_errors) = extractor_defs(&parser_sources);
    io_errors.extend(def_errors);
    let mut compile = cfg.compile.clone();
    let mut class_of = Vec::with_capacity(defs.len());
    for d in &defs {
        if d.logsources.is_empty() {
            class_of.push(0u16);
        } else {
            compile.classes.push(d.logsources.clone());
            class_of.push(compile.classes.len() as u16);
        }
    }
    let mut loaded = sigma::load(&rule_sources);
    sigma::prepare(&mut loaded, &pipelines);
    let mut table = FieldTable::new();
    for p in parsers {
        p.register(&mut table);
    }
    let (set, compile_errors) = RuleSet::build(&loaded.rules, &mut table, &compile);
    let (extractors, extract_errors) = Extractors::build(&defs, |i| class_of[i], &mut table);
    io_errors.extend(extract_errors);
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
        extractors: Arc::new(extractors),
        correlations: Arc::new(corrs),
        table,
        errors,
        documents: loaded.documents,
        prepared,
    })
}
