//! `kuzet check`: load rules (and pipelines) without running anything; one line per rule
//! that failed (`path:line: id: reason`) and the summary `N rules loaded, M failed`.
//! Exit code 0 only when everything loaded.

use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::engine;
use crate::parser::ParserConfig;

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub sources: super::RuleArgs,
    /// Print rule-set statistics (buckets, prefilter) as well.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(a: CheckArgs) -> Result<ExitCode, CliError> {
    let cfg = a.sources.engine_config();
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
