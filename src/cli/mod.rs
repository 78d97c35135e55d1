//! The command line: argument definitions (clap) and one module per subcommand.
//! Errors reach the user here, mapped to exit codes; `anyhow`-style catch-alls stay out of
//! the library.

pub mod bench;
pub mod bench_html;
pub mod check;
pub mod r#gen;
pub mod parse;
pub mod replay;
pub mod report;
pub mod run;
pub mod stages;
pub mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::EngineConfig;

use clap::{Parser, Subcommand};

/// kuzet: a log correlation engine for security operations centres.
#[derive(Parser, Debug)]
#[command(name = "kuzet", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: listen, detect, correlate, alert (embedded defaults, or --config).
    Run(run::RunArgs),
    /// Measure the daemon pipeline end to end over TCP loopback (saturation and latency).
    Bench(bench::BenchArgs),
    /// Generate seeded realistic traffic with injected attacks, and its ground truth.
    Gen(r#gen::GenArgs),
    /// Check alerts (kuzet.alert/1 lines) against a `kuzet gen` ground truth.
    Verify(r#gen::VerifyArgs),
    /// Print every input event as one flat JSON object per line (what rules will see).
    Parse(parse::ParseArgs),
    /// Load and compile rules without running; report every rule that fails.
    Check(check::CheckArgs),
    /// Run rules over log files in event time; one alert per line on stdout.
    Replay(replay::ReplayArgs),
    /// Run rule behaviour tests (rules/tests/*.yml) and print a pass/fail table.
    Test(test::TestArgs),
    /// Summarise the incidents of a period (counts, times to notify and resolve, missed
    /// deadlines) from the daemon's incident database.
    Report(report::ReportArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Gen(a) => r#gen::run(a),
        Command::Verify(a) => r#gen::verify(a),
        Command::Parse(a) => parse::run(a),
        Command::Check(a) => check::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Test(a) => test::run(a),
        Command::Report(a) => report::run(a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kuzet: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where rules, pipelines and field extractors come from (shared by the commands that load
/// rules).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RuleArgs {
    /// Rule files or pack directories (recursively; a pack's top-level `pipelines/`,
    /// `parsers/` and `tests/` hold those); default: the shipped rule pack.
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
    /// Do not apply the shipped field extractors (rules/parsers).
    #[arg(long)]
    pub no_default_parsers: bool,
}

impl RuleArgs {
    /// An engine configuration loading from these sources, other settings default.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            rule_paths: self.rules.clone(),
            pipeline_paths: self.pipelines.clone(),
            no_default_pipelines: self.no_default_pipelines,
            parser_paths: self.parsers.clone(),
            no_default_parsers: self.no_default_parsers,
            ..EngineConfig::default()
        }
    }
}

/// An error that ends a command, shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::reader::tls::TlsError),
}
