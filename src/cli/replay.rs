//! `kuzet replay`: run detection and correlation rules over log files (or stdin) in event time
//! and print one alert per line (the `kuzet.alert/1` contract) to stdout. A summary (events,
//! parse errors, alerts per rule) goes to stderr, and a progress bar when stderr is a terminal.
//!
//! Replay runs on event time alone: windows are judged by the events' own timestamps, and at
//! the end of the input every pending window is decided, so a file replayed gives the alerts
//! the live stream gave. With `--state-dir`, correlation state and the input position are
//! checkpointed (every `--checkpoint-every` events and at the end), and a restarted replay of
//! the same file resumes where the checkpoint left off; alerts emitted after the checkpoint
//! are journaled so a restart does not emit them twice.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, IsTerminal, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::correlator::shard::{CorrAlert, Shard};
use crate::correlator::{CorrOptions, Correlations, HitBatch, Policy, checkpoint};
use crate::engine::{self, EngineConfig};
use crate::event::time::Tz;
use crate::event::{FieldMode, Timestamp};
use crate::matcher::{CompileOptions, RuleId, RuleSet};
use crate::parser::{InputFormat, ParseErrorKind, ParserConfig};
use crate::reader::file::{DEFAULT_CHUNK, FileSource, read_frames_from};
use crate::reader::{Batch, FrameStats, FramingConfig};
use crate::runner::Runner;
use crate::sigma::{Logsource, Meta};
use crate::sink::alert::{self, AlertRecord, EvidenceRenderer};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub sources: super::RuleArgs,
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
    /// After a correlation fires: suppress (update one alert while the attack lasts) or reset.
    #[arg(long, default_value = "suppress", value_parser = ["suppress", "reset"])]
    pub policy: String,
    /// Allowed lateness of events, in seconds (events older than the newest minus this are
    /// counted as late; they still count).
    #[arg(long, default_value_t = 60)]
    pub lateness: u64,
    /// Events more than this many seconds after the receive time use the receive time.
    #[arg(long, default_value_t = 900)]
    pub max_future: u64,
    /// Directory for checkpoints: resume an interrupted replay of the same file.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Parse+match threads (0: one per core). Output is identical for any number; with
    /// --state-dir the replay runs on one thread.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Checkpoint every this many events (with --state-dir).
    #[arg(long, default_value_t = 100_000)]
    pub checkpoint_every: u64,
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

/// Writes alerts to stdout, skipping those a previous run already emitted (journal).
pub struct Emitter<'a> {
    rules: &'a RuleSet,
    corrs: &'a Correlations,
    evidence: EvidenceRenderer,
    line: Vec<u8>,
    out: BufWriter<io::StdoutLock<'static>>,
    max_events: usize,
    /// (id, revision) emitted since the last checkpoint by an interrupted run, with how
    /// many times: the same input can legitimately give one id twice (two identical events
    /// at the same time are one detection id), and the resumed run must skip as many.
    already: hashbrown::HashMap<(u128, u32), u32>,
    journal: Option<std::fs::File>,
    pub per_rule: BTreeMap<String, (u64, String)>,
    pub alerts: u64,
}

impl Emitter<'_> {
    /// Counts the alert; false when a previous run already emitted it.
    fn record(&mut self, id: u128, revision: u32, meta: &Meta) -> bool {
        if let Some(n) = self.already.get_mut(&(id, revision)) {
            *n -= 1;
            if *n == 0 {
                self.already.remove(&(id, revision));
            }
            return false;
        }
        let e = self
            .per_rule
            .entry(meta.label())
            .or_insert((0, meta.title.clone()));
        e.0 += 1;
        self.alerts += 1;
        true
    }

    fn write(&mut self, rec: &AlertRecord) -> io::Result<()> {
        self.line.clear();
        rec.write_json(&mut self.line);
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        if let Some(j) = self.journal.as_mut() {
            // The output first, then the journal: a crash in between repeats an alert rather
            // than losing one.
            self.out.flush()?;
            j.write_all(&rec.id.to_le_bytes())?;
            j.write_all(&rec.revision.to_le_bytes())?;
        }
        Ok(())
    }

    /// A single-event detection.
    fn detection(
        &mut self,
        r: RuleId,
        raw: &[u8],
        t: Timestamp,
        received: Timestamp,
    ) -> io::Result<()> {
        let meta = self.rules.rule(r).meta.clone();
        let id = alert::detection_id(&meta, t, raw);
        if !self.record(id, 0, &meta) {
            return Ok(());
        }
        let rec = self.evidence.detection(&meta, raw, t, received);
        self.write(&rec)
    }

    /// A correlation alert or update.
    fn correlation(&mut self, a: &CorrAlert) -> io::Result<()> {
        let meta = self.corrs.get(a.corr).meta.clone();
        if !self.record(a.id, a.revision, &meta) {
            return Ok(());
        }
        let rec = self.evidence.correlation(self.corrs, a, self.max_events);
        self.write(&rec)
    }
}

/// Where a replay stands, saved with the correlation state.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Position {
    version: u32,
    /// Index in the file list and the file's name.
    file_index: usize,
    file: String,
    /// Bytes of that file fully processed.
    offset: u64,
    events: u64,
}

fn save_state(dir: &Path, pos: &Position, shard: &Shard) -> io::Result<()> {
    let meta = serde_json::to_vec(pos).map_err(io::Error::other)?;
    let mut b = Vec::with_capacity(meta.len() + 4);
    b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    b.extend_from_slice(&meta);
    b.extend_from_slice(&checkpoint::encode(shard));
    checkpoint::write_atomic(&dir.join("replay.ckpt"), &b)?;
    // Everything emitted so far is now covered by the checkpoint.
    std::fs::File::create(dir.join("replay.journal"))?;
    Ok(())
}

fn load_state(dir: &Path, shard: &mut Shard) -> Result<Option<Position>, CliError> {
    let path = dir.join("replay.ckpt");
    let b = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
    };
    let bad = || CliError::Usage(format!("{}: not a replay checkpoint", path.display()));
    let n = u32::from_le_bytes(b.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let pos: Position =
        serde_json::from_slice(b.get(4..4 + n).ok_or_else(bad)?).map_err(|_| bad())?;
    checkpoint::decode(shard, &b[4 + n..], &path.display().to_string())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(Some(pos))
}

fn load_journal(dir: &Path) -> hashbrown::HashMap<(u128, u32), u32> {
    let mut seen = hashbrown::HashMap::new();
    if let Ok(b) = std::fs::read(dir.join("replay.journal")) {
        for rec in b.chunks_exact(20) {
            let id = u128::from_le_bytes(rec[..16].try_into().expect("16"));
            let rev = u32::from_le_bytes(rec[16..20].try_into().expect("4"));
            *seen.entry((id, rev)).or_insert(0) += 1;
        }
    }
    seen
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
        compile.classes.push(vec![parse_logsource(ls)?]);
        pcfg.class = 1;
    }
    let cfg = EngineConfig {
        compile,
        correlation: CorrOptions {
            policy: Policy::parse(&a.policy).expect("clap checked"),
            evidence_cap: a.max_alert_events,
            ..CorrOptions::default()
        },
        ..a.sources.engine_config()
    };
    let eng = Arc::new(engine::build(&cfg, &[&pcfg]).map_err(|errs| {
        CliError::Usage(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?);
    let mut stderr = io::stderr();
    for e in &eng.errors {
        let _ = writeln!(stderr, "{e}");
    }
    let _ = writeln!(stderr, "kuzet: {}", eng.summary());
    let rules = eng.rules.clone();
    let corrs = eng.correlations.clone();
    let files = if a.files.is_empty() {
        vec!["-".to_string()]
    } else {
        a.files.clone()
    };
    if a.state_dir.is_some() && files.iter().any(|f| f == "-") {
        return Err(CliError::Usage(
            "--state-dir needs files (stdin cannot be resumed)".into(),
        ));
    }
    let mut runner = Runner::new(
        eng.clone(),
        &pcfg,
        (a.lateness * 1000) as i64,
        (a.max_future * 1000) as i64,
    );
    let mut resume: Option<Position> = None;
    let mut already = hashbrown::HashMap::new();
    let mut journal = None;
    if let Some(dir) = &a.state_dir {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        resume = load_state(dir, &mut runner.shard)?;
        already = load_journal(dir);
        if let Some(p) = &resume {
            if files.get(p.file_index) != Some(&p.file) {
                return Err(CliError::Usage(format!(
                    "{}: the checkpoint is for {:?}, not these files; remove it to start over",
                    dir.display(),
                    p.file
                )));
            }
            let _ = writeln!(
                stderr,
                "kuzet: resuming {} at byte {} ({} events done)",
                p.file, p.offset, p.events
            );
        }
        journal = Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("replay.journal"))
                .map_err(|e| CliError::Io {
                    path: dir.display().to_string(),
                    source: e,
                })?,
        );
    }
    let mut emitter = Emitter {
        rules: &rules,
        corrs: &corrs,
        evidence: EvidenceRenderer::new(&eng, &pcfg),
        line: Vec::with_capacity(4096),
        out: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        max_events: a.max_alert_events,
        already,
        journal,
        per_rule: BTreeMap::new(),
        alerts: 0,
    };
    let mut corr_out: Vec<CorrAlert> = Vec::new();
    let mut bytes = 0u64;
    let mut events = 0u64;
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
    let mut since_ckpt = 0u64;
    if let Some(p) = &resume {
        events = p.events;
    }
    let threads = match a.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut par_stats = None;
    if a.state_dir.is_none() && threads > 1 {
        let (t, err) = run_parallel(
            threads,
            &eng,
            &pcfg,
            (a.max_future * 1000) as i64,
            &files,
            &mut runner.shard,
            &mut emitter,
            &mut progress,
        )?;
        (bytes, events, write_err) = (t.bytes, t.events, err);
        par_stats = Some(t.stats);
    }
    for (fi, f) in files.iter().enumerate() {
        if par_stats.is_some() {
            break;
        }
        let mut start = 0u64;
        if let Some(p) = &resume {
            if fi < p.file_index {
                continue;
            }
            if fi == p.file_index {
                start = p.offset;
            }
        }
        let src = FileSource::from_arg(f);
        let io_err = |e| CliError::Io {
            path: src.name(),
            source: e,
        };
        let mut reader = src.open().map_err(io_err)?;
        if start > 0 {
            let mut file = std::fs::File::open(f).map_err(io_err)?;
            file.seek(io::SeekFrom::Start(start)).map_err(io_err)?;
            reader = Box::new(file) as Box<dyn Read + Send>;
        }
        let reference = src.reference_time();
        let mut stats = FrameStats::default();
        read_frames_from(
            reader,
            start,
            FramingConfig::default(),
            DEFAULT_CHUNK,
            &mut stats,
            || reference,
            |batch: Batch| {
                bytes += batch.data.len() as u64;
                for (i, frame) in batch.iter().enumerate() {
                    events += 1;
                    since_ckpt += 1;
                    runner.event(frame, batch.received, |r, t| {
                        if write_err.is_none()
                            && let Err(e) = emitter.detection(r, frame, t, batch.received)
                        {
                            write_err = Some(e);
                        }
                    });
                    if write_err.is_some() {
                        return None;
                    }
                    // Checkpoint on a frame boundary, after the frame's hits are applied.
                    let at_ckpt = a.state_dir.is_some() && since_ckpt >= a.checkpoint_every;
                    if runner.pending() > 0 && (at_ckpt || i + 1 == batch.len()) {
                        runner.drain(&mut corr_out);
                        for ca in corr_out.drain(..) {
                            if let Err(e) = emitter.correlation(&ca) {
                                write_err = Some(e);
                                return None;
                            }
                        }
                    }
                    if at_ckpt {
                        since_ckpt = 0;
                        let e = batch.frames[i].1;
                        let pos = Position {
                            version: 1,
                            file_index: fi,
                            file: f.clone(),
                            offset: batch.offset + e as u64,
                            events,
                        };
                        let dir = a.state_dir.as_ref().expect("checked");
                        if let Err(e) = emitter
                            .out
                            .flush()
                            .and_then(|()| save_state(dir, &pos, &runner.shard))
                        {
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
    // End of input: every pending window is decided.
    if write_err.is_none() {
        runner.finish(&mut corr_out);
        for ca in corr_out.drain(..) {
            if let Err(e) = emitter.correlation(&ca) {
                write_err = Some(e);
                break;
            }
        }
    }
    progress.finish();
    if let Some(e) = write_err.or_else(|| emitter.out.flush().err()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(CliError::Io {
            path: "stdout".into(),
            source: e,
        });
    }
    if let Some(dir) = &a.state_dir {
        let last = files.len() - 1;
        let end = std::fs::metadata(&files[last])
            .map(|m| m.len())
            .unwrap_or(0);
        let pos = Position {
            version: 1,
            file_index: last,
            file: files[last].clone(),
            offset: end,
            events,
        };
        save_state(dir, &pos, &runner.shard).map_err(|e| CliError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
    }
    let secs = started.elapsed().as_secs_f64();
    let rs = par_stats.unwrap_or_else(|| runner.stats());
    let perr: u64 = rs.parse_errors.iter().sum();
    let _ = writeln!(
        stderr,
        "kuzet: {events} events ({:.1} MB) in {secs:.2}s ({:.0} events/s), {perr} parse errors, {} alerts",
        bytes as f64 / 1e6,
        events as f64 / secs.max(1e-9),
        emitter.alerts
    );
    for k in ParseErrorKind::ALL {
        let n = rs.parse_errors[k.index()];
        if n > 0 {
            let _ = writeln!(stderr, "  parse errors {}: {n}", k.name());
        }
    }
    let s = runner.shard.stats();
    if !corrs.is_empty() {
        let _ = writeln!(
            stderr,
            "  correlation: {} hits, {} without a group-by value, {} late, {} keys live, {} expired, {} evicted; {} events without time, {} too far in the future (receive time used)",
            s.hits,
            rs.hits.missing_group_key,
            s.late,
            runner.shard.live_keys(),
            s.keys_expired,
            s.keys_evicted,
            rs.no_time,
            rs.future
        );
    }
    let mut top: Vec<(u64, &String, &String)> = emitter
        .per_rule
        .iter()
        .map(|(l, (n, t))| (*n, l, t))
        .collect();
    top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    for (n, l, t) in top.iter().take(20) {
        let _ = writeln!(stderr, "  {n:>8}  {l}  {t}");
    }
    if top.len() > 20 {
        let _ = writeln!(stderr, "  ... and {} more rules", top.len() - 20);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a worker made of one read batch, in input order by `seq`.
struct Worked {
    seq: u64,
    bytes: u64,
    events: u64,
    /// Detections, rendered, in frame order.
    detections: Vec<(RuleId, AlertRecord)>,
    /// The batch's correlation hits, in frame order.
    hits: crate::correlator::HitBatch,
}

/// Per-run totals the summary prints.
#[derive(Default)]
struct Totals {
    bytes: u64,
    events: u64,
    stats: crate::runner::RunStats,
}

/// Replays `files` with `threads` parse+match workers and the correlator on this thread.
///
/// A reader thread frames the files into batches numbered in input order; workers parse,
/// extract, match and render each batch's detections; this thread applies batches strictly
/// in their order (detections first, then the batch's hits to the one shard), so the output
/// is byte-identical to the sequential replay: parallelism changes only who parses.
#[allow(clippy::too_many_arguments)]
fn run_parallel(
    threads: usize,
    eng: &Arc<crate::engine::Engine>,
    pcfg: &ParserConfig,
    max_future_ms: i64,
    files: &[String],
    shard: &mut Shard,
    emitter: &mut Emitter<'_>,
    progress: &mut Progress,
) -> Result<(Totals, Option<io::Error>), CliError> {
    use crossbeam_channel::bounded;
    let (work_tx, work_rx) = bounded::<(u64, Batch)>(threads * 2);
    let (done_tx, done_rx) = bounded::<Worked>(threads * 2);
    let (pool_tx, pool_rx) = bounded::<Batch>(threads * 4);
    // Applied hit batches go back to the workers, so their buffers keep their capacity
    // instead of growing again from nothing for every read buffer.
    let (hits_pool_tx, hits_pool_rx) = bounded::<HitBatch>(threads * 4);
    let mut totals = Totals::default();
    let mut write_err: Option<io::Error> = None;
    let mut corr_out: Vec<CorrAlert> = Vec::new();
    let read_result = std::thread::scope(|s| {
        let reader = s.spawn(move || -> Result<(), CliError> {
            let mut seq = 0u64;
            for f in files {
                let src = FileSource::from_arg(f);
                let io_err = |e| CliError::Io {
                    path: src.name(),
                    source: e,
                };
                let reference = src.reference_time();
                let mut stats = FrameStats::default();
                let mut stopped = false;
                read_frames_from(
                    src.open().map_err(io_err)?,
                    0,
                    FramingConfig::default(),
                    DEFAULT_CHUNK,
                    &mut stats,
                    || reference,
                    |batch: Batch| {
                        if work_tx.send((seq, batch)).is_err() {
                            stopped = true;
                            return None;
                        }
                        seq += 1;
                        Some(pool_rx.try_recv().unwrap_or_default())
                    },
                )
                .map_err(io_err)?;
                if stopped {
                    break;
                }
            }
            Ok(())
        });
        let mut workers = Vec::new();
        for _ in 0..threads {
            let (work_rx, done_tx, pool_tx) = (work_rx.clone(), done_tx.clone(), pool_tx.clone());
            let hits_pool_rx = hits_pool_rx.clone();
            let eng = eng.clone();
            workers.push(s.spawn(move || {
                let mut stage = crate::runner::Stage::new(
                    eng.clone(),
                    std::slice::from_ref(pcfg),
                    1,
                    max_future_ms,
                );
                let mut render = EvidenceRenderer::new(&eng, pcfg);
                while let Ok((seq, batch)) = work_rx.recv() {
                    let mut detections = Vec::new();
                    for frame in batch.iter() {
                        stage.event(0, frame, batch.received, |r, t| {
                            let meta = eng.rules.rule(r).meta.clone();
                            detections.push((r, render.detection(&meta, frame, t, batch.received)));
                        });
                    }
                    let w = Worked {
                        seq,
                        bytes: batch.data.len() as u64,
                        events: batch.len() as u64,
                        detections,
                        hits: std::mem::replace(
                            &mut stage.batches[0],
                            hits_pool_rx.try_recv().unwrap_or_default(),
                        ),
                    };
                    let _ = pool_tx.try_send(batch);
                    if done_tx.send(w).is_err() {
                        break;
                    }
                }
                stage.stats
            }));
        }
        drop((work_rx, done_tx, pool_tx));
        // Apply in input order.
        let mut next = 0u64;
        let mut waiting: BTreeMap<u64, Worked> = BTreeMap::new();
        'recv: while let Ok(w) = done_rx.recv() {
            waiting.insert(w.seq, w);
            while let Some(w) = waiting.remove(&next) {
                next += 1;
                totals.bytes += w.bytes;
                totals.events += w.events;
                for (r, rec) in &w.detections {
                    let meta = emitter.rules.rule(*r).meta.clone();
                    if emitter.record(rec.id, 0, &meta)
                        && let Err(e) = emitter.write(rec)
                    {
                        write_err = Some(e);
                        break 'recv;
                    }
                }
                let mut hits = w.hits;
                if !hits.hits.is_empty() {
                    shard.process(&hits, &mut corr_out);
                }
                hits.clear();
                let _ = hits_pool_tx.try_send(hits);
                for ca in corr_out.drain(..) {
                    if let Err(e) = emitter.correlation(&ca) {
                        write_err = Some(e);
                        break 'recv;
                    }
                }
                progress.tick(totals.bytes, totals.events);
            }
        }
        // On a write error, stop everyone: closing the channel ends the reader and workers.
        drop(done_rx);
        for w in workers {
            let st = w.join().expect("replay worker panicked");
            let t = &mut totals.stats;
            for (a, b) in t.parse_errors.iter_mut().zip(st.parse_errors) {
                *a += b;
            }
            t.no_time += st.no_time;
            t.future += st.future;
            t.hits.missing_group_key += st.hits.missing_group_key;
            t.hits.hits += st.hits.hits;
        }
        reader.join().expect("replay reader panicked")
    });
    if write_err.is_none() {
        read_result?;
    }
    Ok((totals, write_err))
}
