//! The command line: argument definitions (clap) and one module per subcommand.
//! Errors reach the user here, mapped to exit codes; `anyhow`-style catch-alls stay out of
//! the library.

pub mod check;
pub mod parse;
pub mod replay;

use std::process::ExitCode;

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
    /// Print every input event as one flat JSON object per line (what rules will see).
    Parse(parse::ParseArgs),
    /// Load and compile rules without running; report every rule that fails.
    Check(check::CheckArgs),
    /// Run rules over log files in event time; one alert per line on stdout.
    Replay(replay::ReplayArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Parse(a) => parse::run(a),
        Command::Check(a) => check::run(a),
        Command::Replay(a) => replay::run(a),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kuzet: {e}");
            ExitCode::from(2)
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
