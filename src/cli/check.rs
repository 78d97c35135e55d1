//! `kuzet check`: load rules (and pipelines) without running anything; one line per rule
//! that failed (`path:line: id: reason`) and the summary `N rules loaded, M failed`.
//! Exit code 0 only when everything loaded.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::engine::{self, EngineConfig};
use crate::parser::ParserConfig;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Rule files or directories (recursively); default: the shipped rule pack.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// pySigma-format processing pipelines to apply (repeatable).
    #[arg(long = "pipeline")]
    pub pipelines: Vec<PathBuf>,
    /// Do not apply the shipped pipelines (rules/pipelines).
    #[arg(long)]
    pub no_default_pipelines: bool,
    /// Field-extraction definitions (files or directories; repeatable).
    #[arg(long = "parsers")]
    pub parsers: Vec<PathBuf>,
    /// Do not load the shipped field extractors (rules/parsers).
    #[arg(long)]
    pub no_default_parsers: bool,
    /// Print rule-set statistics (buckets, prefilter) as well.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(a: CheckArgs) -> Result<ExitCode, CliError> {
    let cfg = EngineConfig {
        rule_paths: a.rules,
        pipeline_paths: a.pipelines,
        no_default_pipelines: a.no_default_pipelines,
        parser_paths: a.parsers,
        no_default_parsers: a.no_default_parsers,
        ..EngineConfig::default()
    };
    let e = match engine::build(&cfg, &[&ParserConfig::default()]) {
        Ok(e) => e,
        Err(errs) => {
            for e in &errs {
                println!("{e}");
            }
            println!("0 rules loaded: {} pipeline(s) failed", errs.len());
            return Ok(ExitCode::from(1));
        }
    };
    for err in &e.errors {
        println!("{err}");
    }
    if a.stats {
        let (rules, unfiltered, buckets, leaves, patterns) = e.rules.stats();
        eprintln!(
            "{rules} rules: {unfiltered} not prefiltered, {buckets} route buckets, {leaves} distinct leaves, {patterns} prefilter literals"
        );
        for r in e.rules.rules().iter().filter(|r| !r.filtered) {
            eprintln!("  not prefiltered: {} {}", r.meta.label(), r.meta.title);
        }
    }
    println!("{}", e.summary());
    Ok(if e.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
