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
    /// Validate this daemon config (and load the rules it names) instead.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Print rule-set statistics (buckets, prefilter) as well.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(a: CheckArgs) -> Result<ExitCode, CliError> {
    let mut inventory_failed = false;
    let built = match &a.config {
        Some(path) => {
            let mut c = match crate::config::Config::load(path) {
                Ok(c) => c,
                Err(errs) => {
                    for e in &errs {
                        println!("{e}");
                    }
                    println!(
                        "{}: {} problem(s); nothing started",
                        path.display(),
                        errs.len()
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            if !a.sources.rules.is_empty() {
                c.rules.paths = a.sources.rules.clone();
            }
            // The asset inventories: every bad row with file:line, then the count.
            if !c.incidents.assets.is_empty() {
                let (inv, errs) = crate::incident::assets::Inventory::load(&c.incidents.assets);
                for e in &errs {
                    println!("{e}");
                }
                println!("{} assets loaded, {} rows rejected", inv.len(), errs.len());
                if !errs.is_empty() {
                    inventory_failed = true;
                }
            }
            if c.kafka.is_some() {
                // A scale-out node: its input is described by [kafka], not by listeners.
                crate::kafka::build(&c).map(|(e, _)| e)
            } else {
                crate::pipeline::build_engine(&c).map(|(e, _)| e)
            }
        }
        None => engine::build(&a.sources.engine_config(), &[&ParserConfig::default()])
            .map_err(|errs| errs.iter().map(|e| e.to_string()).collect()),
    };
    let e = match built {
        Ok(e) => e,
        Err(errs) => {
            for e in &errs {
                println!("{e}");
            }
            println!(
                "0 rules loaded: {} problem(s) with pipelines or the config",
                errs.len()
            );
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
    Ok(if e.errors.is_empty() && !inventory_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
