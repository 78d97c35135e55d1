//! `kuzet replay`: run rules over log files (or stdin) in event time and print one alert per
//! line (the `kuzet.alert/1` contract) to stdout. A summary (events, parse errors, matches
//! per rule) goes to stderr, and a progress bar when stderr is a terminal.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::engine::{self, EngineConfig};
use crate::event::time::Tz;
use crate::event::{Event, EventBuf, FieldMode, Timestamp};
use crate::matcher::{CompileOptions, RuleId, Scratch};
use crate::parser::{InputFormat, ParseErrorKind, Parser, ParserConfig};
use crate::reader::file::{DEFAULT_CHUNK, FileSource, read_frames};
use crate::reader::{Batch, FrameStats, FramingConfig};
use crate::sigma::Logsource;
use crate::sink::alert;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Rule files or directories (recursively); default: the shipped rule pack.
    #[arg(long = "rules")]
    pub rules: Vec<PathBuf>,
    /// pySigma-format processing pipelines to apply (repeatable).
    #[arg(long = "pipeline")]
    pub pipelines: Vec<PathBuf>,
    /// Do not apply the shipped pipelines (rules/pipelines).
    #[arg(long)]
    pub no_default_pipelines: bool,
    /// Input format, or auto to detect it per line.
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(InputFormat::NAMES))]
    pub format: String,
    /// Zone for timestamps without one.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Declare the Sigma logsource of the input, e.g. product=linux,service=sshd.
    #[arg(long)]
    pub logsource: Option<String>,
    /// Value for an `expand` placeholder: NAME=V1,V2 (repeatable).
    #[arg(long = "placeholder")]
    pub placeholders: Vec<String>,
    /// Most events carried in one alert.
    #[arg(long, default_value_t = 10)]
    pub max_alert_events: usize,
    /// Files to read; `-` or nothing for stdin.
    pub files: Vec<String>,
}

/// Parses `product=x,category=y,service=z`.
pub fn parse_logsource(s: &str) -> Result<Logsource, CliError> {
    let mut ls = Logsource::default();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--logsource: {part:?} is not key=value")))?;
        let v = Some(v.trim().to_string());
        match k.trim() {
            "product" => ls.product = v,
            "category" => ls.category = v,
            "service" => ls.service = v,
            other => {
                return Err(CliError::Usage(format!(
                    "--logsource: unknown key {other:?} (product, category, service)"
                )));
            }
        }
    }
    Ok(ls)
}

/// Parses `NAME=V1,V2` placeholder definitions.
pub fn parse_placeholders(defs: &[String]) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let mut m = BTreeMap::new();
    for d in defs {
        let (k, v) = d
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--placeholder: {d:?} is not NAME=V1,V2")))?;
        m.insert(
            k.trim().to_string(),
            v.split(',').map(|x| x.to_string()).collect(),
        );
    }
    Ok(m)
}

struct Progress {
    enabled: bool,
    total: Option<u64>,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn tick(&mut self, bytes: u64, events: u64) {
        if !self.enabled || self.last.elapsed() < Duration::from_millis(250) {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = events as f64 / secs;
        let line = match self.total {
            Some(t) if t > 0 => {
                let frac = (bytes as f64 / t as f64).min(1.0);
                let filled = (frac * 30.0) as usize;
                let eta = if frac > 0.0 { secs / frac - secs } else { 0.0 };
                format!(
                    "\r[{}{}] {:5.1}% {:.0} MB  {:.2} M events/s  ETA {:.0}s ",
                    "#".repeat(filled),
                    " ".repeat(30 - filled),
                    frac * 100.0,
                    bytes as f64 / 1e6,
                    rate / 1e6,
                    eta
                )
            }
            _ => format!(
                "\r{:.0} MB  {} events  {:.2} M events/s ",
                bytes as f64 / 1e6,
                events,
                rate / 1e6
            ),
        };
        let _ = io::stderr().write_all(line.as_bytes());
    }

    fn finish(&self) {
        if self.enabled {
            let _ = io::stderr().write_all(b"\r\x1b[2K");
        }
    }
}

pub fn run(a: ReplayArgs) -> Result<ExitCode, CliError> {
    let tz = Tz::parse(&a.tz).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut compile = CompileOptions {
        placeholders: parse_placeholders(&a.placeholders)?,
        ..CompileOptions::default()
    };
    let mut pcfg = ParserConfig {
        format: InputFormat::parse(&a.format).expect("clap checked"),
        tz,
        mode: FieldMode::Known,
        ..ParserConfig::default()
    };
    if let Some(ls) = &a.logsource {
        compile.classes.push(parse_logsource(ls)?);
        pcfg.class = 1;
    }
    let cfg = EngineConfig {
        rule_paths: a.rules.clone(),
        pipeline_paths: a.pipelines.clone(),
        no_default_pipelines: a.no_default_pipelines,
        compile,
    };
    let eng = engine::build(&cfg, &[&pcfg]).map_err(|errs| {
        CliError::Usage(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let mut stderr = io::stderr();
    for e in &eng.errors {
        let _ = writeln!(stderr, "{e}");
    }
    let _ = writeln!(stderr, "kuzet: {}", eng.summary());
    let rules = eng.rules.clone();
    let mut parser = Parser::new(eng.table.clone(), pcfg.clone());
    let mut evidence = Parser::new(
        eng.table.clone(),
        ParserConfig {
            mode: FieldMode::All,
            ..pcfg
        },
    );
    let mut buf = EventBuf::new();
    let mut ebuf = EventBuf::new();
    let mut scratch = Scratch::new();
    let mut hits: Vec<RuleId> = Vec::new();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    let mut ev_json = Vec::new();
    let mut per_rule: BTreeMap<u32, u64> = BTreeMap::new();
    let mut errors_by_kind = [0u64; ParseErrorKind::ALL.len()];
    let (mut events, mut bytes, mut alerts) = (0u64, 0u64, 0u64);
    let files = if a.files.is_empty() {
        vec!["-".to_string()]
    } else {
        a.files.clone()
    };
    let total: Option<u64> = files
        .iter()
        .map(|f| {
            if f == "-" {
                None
            } else {
                std::fs::metadata(f).ok().map(|m| m.len())
            }
        })
        .sum();
    let mut progress = Progress {
        enabled: io::stderr().is_terminal(),
        total,
        started: Instant::now(),
        last: Instant::now(),
    };
    let started = Instant::now();
    let mut write_err: Option<io::Error> = None;
    for f in &files {
        let src = FileSource::from_arg(f);
        let io_err = |e| CliError::Io {
            path: src.name(),
            source: e,
        };
        let reader = src.open().map_err(io_err)?;
        let reference = src.reference_time();
        let mut stats = FrameStats::default();
        read_frames(
            reader,
            FramingConfig::default(),
            DEFAULT_CHUNK,
            &mut stats,
            || reference,
            |batch: Batch| {
                bytes += batch.data.len() as u64;
                for frame in batch.iter() {
                    events += 1;
                    if let Err(e) = parser.parse(frame, batch.received, &mut buf) {
                        errors_by_kind[e.kind.index()] += 1;
                    }
                    let ev = Event::new(frame, &buf);
                    hits.clear();
                    rules.matches_into(&ev, &mut scratch, &mut hits);
                    if hits.is_empty() {
                        continue;
                    }
                    let t = ev.time().unwrap_or(ev.received());
                    // Evidence: the whole event, re-parsed with every field kept.
                    let _ = evidence.parse(frame, batch.received, &mut ebuf);
                    ev_json.clear();
                    super::parse::write_event(&eng.table, &Event::new(frame, &ebuf), &mut ev_json);
                    for &h in &hits {
                        let r = rules.rule(h);
                        *per_rule.entry(h.0).or_default() += 1;
                        alerts += 1;
                        line.clear();
                        let evs = std::slice::from_ref(&ev_json);
                        alert::write(
                            &alert::Alert {
                                id: alert::detection_id(&r.meta, t, frame),
                                meta: &r.meta,
                                kind: "detection",
                                group: &[],
                                count: 1,
                                first_seen: t,
                                last_seen: t,
                                detected_at: Timestamp::now(),
                                events: &evs[..evs.len().min(a.max_alert_events)],
                            },
                            &mut line,
                        );
                        line.push(b'\n');
                        if let Err(e) = out.write_all(&line) {
                            write_err = Some(e);
                            return None;
                        }
                    }
                }
                progress.tick(bytes, events);
                Some(batch)
            },
        )
        .map_err(io_err)?;
        if write_err.is_some() {
            break;
        }
    }
    progress.finish();
    if let Some(e) = write_err.or_else(|| out.flush().err()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(CliError::Io {
            path: "stdout".into(),
            source: e,
        });
    }
    let secs = started.elapsed().as_secs_f64();
    let perr: u64 = errors_by_kind.iter().sum();
    let _ = writeln!(
        stderr,
        "kuzet: {events} events ({:.1} MB) in {secs:.2}s ({:.0} events/s), {perr} parse errors, {alerts} alerts",
        bytes as f64 / 1e6,
        events as f64 / secs.max(1e-9)
    );
    for k in ParseErrorKind::ALL {
        let n = errors_by_kind[k.index()];
        if n > 0 {
            let _ = writeln!(stderr, "  parse errors {}: {n}", k.name());
        }
    }
    let mut top: Vec<(u64, u32)> = per_rule.iter().map(|(r, n)| (*n, *r)).collect();
    top.sort_by(|a, b| b.cmp(a));
    for (n, r) in top.iter().take(20) {
        let m = &rules.rule(RuleId(*r)).meta;
        let _ = writeln!(stderr, "  {n:>8}  {}  {}", m.label(), m.title);
    }
    if top.len() > 20 {
        let _ = writeln!(stderr, "  ... and {} more rules", top.len() - 20);
    }
    Ok(ExitCode::SUCCESS)
}
