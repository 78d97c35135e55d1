//! `kuzet parse`: every input event as one flat JSON object per line.
//!
//! Reads files (`-` for stdin) or listens on the network (`--listen`, repeatable), parses
//! with the same parsers the engine uses, in [`FieldMode::All`] so every field shows. Parse
//! errors go to stderr with the file and line (or the listener and peer); the event is still
//! printed, with its raw frame as `message`. Exit code 0 when the input could be read.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::extract::Extractors;

use super::CliError;
use crate::event::time::Tz;
use crate::event::{Event, EventBuf, FieldMode, FieldTable};
use crate::parser::{InputFormat, ParseError, Parser, ParserConfig};
use crate::reader::file::{DEFAULT_CHUNK, FileSource, read_frames};
use crate::reader::tcp::TcpSettings;
use crate::reader::tls::{ClientAuth, TlsSettings, server_config};
use crate::reader::udp::UdpSettings;
use crate::reader::{
    Batch, FrameStats, Framing, FramingConfig, ListenSpec, Oversize, Pool, Transport,
};
use crate::telemetry::InputMetrics;

#[derive(Args, Debug)]
pub struct ParseArgs {
    /// Input format, or auto to detect it per line.
    #[arg(long, default_value = "auto", value_parser = clap::builder::PossibleValuesParser::new(InputFormat::NAMES))]
    pub format: String,
    /// Zone for timestamps without one: UTC, an offset (+05:00) or an IANA name (Asia/Almaty).
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// JSON field holding the event time (repeatable; replaces the default list).
    #[arg(long = "time-field")]
    pub time_fields: Vec<String>,
    /// Longest frame kept, in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_frame: usize,
    /// What to do with longer frames.
    #[arg(long, default_value = "truncate", value_parser = ["truncate", "drop"])]
    pub oversize: String,
    /// Listen instead of reading files: udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT.
    #[arg(long)]
    pub listen: Vec<String>,
    /// TCP framing: auto (per frame), octet-counted or newline.
    #[arg(long, default_value = "auto", value_parser = ["auto", "octet-counted", "newline"])]
    pub framing: String,
    /// Stop after printing this many events.
    #[arg(long)]
    pub count: Option<u64>,
    /// TLS server certificate chain (PEM), for tls:// listeners.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// TLS server private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// CA certificates for verifying client certificates (PEM).
    #[arg(long)]
    pub tls_client_ca: Option<PathBuf>,
    /// Client certificates: none, optional or required.
    #[arg(long, default_value = "none", value_parser = ["none", "optional", "required"])]
    pub tls_client_auth: String,
    /// Requested UDP receive buffer (SO_RCVBUF), in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    pub udp_recv_buffer: usize,
    /// Field-extraction definitions to apply besides the shipped ones (files or directories).
    #[arg(long = "parsers")]
    pub parsers: Vec<PathBuf>,
    /// Print only what the parser gives: no field extraction.
    #[arg(long)]
    pub no_extract: bool,
    /// Files to read; `-` or nothing for stdin.
    pub files: Vec<String>,
}

struct Printer {
    parser: Parser,
    extractors: Extractors,
    buf: EventBuf,
    line: Vec<u8>,
    out: BufWriter<io::StdoutLock<'static>>,
    printed: u64,
    limit: Option<u64>,
    errors: u64,
}

impl Printer {
    /// Parses and prints one frame; reports a parse error through `report`.
    fn frame(
        &mut self,
        frame: &[u8],
        received: crate::event::Timestamp,
        report: impl FnOnce(&ParseError),
    ) -> io::Result<()> {
        if let Err(e) = self.parser.parse(frame, received, &mut self.buf) {
            self.errors += 1;
            report(&e);
        }
        self.extractors
            .apply_in_zone(frame, &mut self.buf, self.parser.zone_mut());
        self.line.clear();
        write_event(
            self.parser.table(),
            &Event::new(frame, &self.buf),
            &mut self.line,
        );
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.printed += 1;
        Ok(())
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.printed >= l)
    }
}

/// Writes `{"field":value,...}`, field names resolved through `table`. A field with several
/// values (a JSON array) is written once, as an array, where its first value appeared.
pub fn write_event(table: &FieldTable, ev: &Event<'_>, out: &mut Vec<u8>) {
    let mut groups: Vec<(&[u8], Vec<crate::event::Value<'_>>)> = Vec::new();
    for (name, value) in ev.fields() {
        let name = name.resolve(table);
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(value),
            None => groups.push((name, vec![value])),
        }
    }
    out.push(b'{');
    for (i, (name, values)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        crate::jsonw::write_str(out, name);
        out.push(b':');
        if let [v] = values.as_slice() {
            crate::jsonw::write_value(out, v);
        } else {
            out.push(b'[');
            for (j, v) in values.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                crate::jsonw::write_value(out, v);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

pub fn run(a: ParseArgs) -> Result<ExitCode, CliError> {
    let tz = Tz::parse(&a.tz).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut cfg = ParserConfig {
        format: InputFormat::parse(&a.format).expect("clap checked"),
        tz,
        mode: FieldMode::All,
        ..ParserConfig::default()
    };
    if !a.time_fields.is_empty() {
        cfg.time_fields = a.time_fields.clone();
    }
    let mut table = FieldTable::new();
    cfg.register(&mut table);
    let extractors = if a.no_extract {
        Extractors::default()
    } else {
        let (sources, mut errs) = crate::engine::extractor_sources(&a.parsers, false);
        let (defs, derrs) = crate::engine::extractor_defs(&sources);
        errs.extend(derrs);
        let (x, xerrs) = Extractors::build(&defs, |_| 0, &mut table);
        let mut stderr = io::stderr();
        for e in errs.iter().chain(&xerrs) {
            let _ = writeln!(stderr, "{e}");
        }
        x
    };
    let framing = FramingConfig {
        framing: Framing::parse(&a.framing).expect("clap checked"),
        max_frame: a.max_frame,
        oversize: Oversize::parse(&a.oversize).expect("clap checked"),
    };
    let mut p = Printer {
        parser: Parser::new(Arc::new(table), cfg),
        extractors,
        buf: EventBuf::new(),
        line: Vec::with_capacity(4096),
        out: BufWriter::with_capacity(1 << 16, io::stdout().lock()),
        printed: 0,
        limit: a.count,
        errors: 0,
    };
    if a.listen.is_empty() {
        read_files(&a, framing, &mut p)?;
    } else {
        listen(&a, framing, &mut p)?;
    }
    p.out.flush().map_err(|e| CliError::Io {
        path: "stdout".into(),
        source: e,
    })?;
    Ok(ExitCode::SUCCESS)
}

fn read_files(a: &ParseArgs, framing: FramingConfig, p: &mut Printer) -> Result<(), CliError> {
    let files = if a.files.is_empty() {
        vec!["-".to_string()]
    } else {
        a.files.clone()
    };
    let mut stderr = io::stderr().lock();
    for f in files {
        let src = FileSource::from_arg(&f);
        let io_err = |e| CliError::Io {
            path: src.name(),
            source: e,
        };
        let reader = src.open().map_err(io_err)?;
        let reference = src.reference_time();
        let mut stats = FrameStats::default();
        // Line numbers: newlines counted up to each frame's start, across reads.
        let mut line_no = 1u64;
        let mut io_res = Ok(());
        let name = src.name();
        read_frames(
            reader,
            framing,
            DEFAULT_CHUNK,
            &mut stats,
            || reference,
            |batch: Batch| {
                let mut pos = 0usize;
                for &(s, e) in &batch.frames {
                    let (s, e) = (s as usize, e as usize);
                    line_no += memchr::memchr_iter(b'\n', &batch.data[pos..s]).count() as u64;
                    pos = s;
                    let res = p.frame(&batch.data[s..e], batch.received, |err| {
                        let _ = writeln!(stderr, "{name}:{line_no}: {err}");
                    });
                    if let Err(err) = res {
                        io_res = Err(err);
                        return None;
                    }
                    if p.done() {
                        return None;
                    }
                }
                line_no += memchr::memchr_iter(b'\n', &batch.data[pos..]).count() as u64;
                Some(batch)
            },
        )
        .map_err(io_err)?;
        io_res.map_err(|e| CliError::Io {
            path: "stdout".into(),
            source: e,
        })?;
        let dropped = stats.oversize_dropped;
        if stats.oversize_truncated + dropped > 0 {
            let _ = writeln!(
                stderr,
                "{name}: {} lines longer than {} bytes truncated, {dropped} dropped",
                stats.oversize_truncated, framing.max_frame
            );
        }
        if p.done() {
            break;
        }
    }
    Ok(())
}

fn listen(a: &ParseArgs, framing: FramingConfig, p: &mut Printer) -> Result<(), CliError> {
    let specs: Vec<ListenSpec> = a
        .listen
        .iter()
        .map(|s| ListenSpec::parse(s))
        .collect::<Result<_, _>>()
        .map_err(CliError::Usage)?;
    let tls = if specs.iter().any(|s| s.transport == Transport::Tls) {
        let (Some(cert), Some(key)) = (a.tls_cert.clone(), a.tls_key.clone()) else {
            return Err(CliError::Usage(
                "tls:// listeners need --tls-cert and --tls-key".into(),
            ));
        };
        Some(server_config(&TlsSettings {
            cert,
            key,
            client_ca: a.tls_client_ca.clone(),
            client_auth: ClientAuth::parse(&a.tls_client_auth).expect("clap checked"),
        })?)
    } else {
        None
    };
    let (tx, rx) = crossbeam_channel::bounded::<Batch>(64);
    let pool = Pool::new(64);
    let mut listeners = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let metrics = Arc::new(InputMetrics::new(spec.to_string()));
        let l = match spec.transport {
            Transport::Udp => crate::reader::spawn_udp(
                UdpSettings {
                    addr: spec.addr,
                    recv_buffer: a.udp_recv_buffer,
                    max_frame: framing.max_frame,
                    oversize: framing.oversize,
                    ..UdpSettings::default()
                },
                i as u16,
                metrics,
                tx.clone(),
                pool.clone(),
            ),
            Transport::Tcp | Transport::Tls => crate::reader::spawn_tcp(
                TcpSettings {
                    addr: spec.addr,
                    framing,
                    tls: if spec.transport == Transport::Tls {
                        tls.clone()
                    } else {
                        None
                    },
                    ..TcpSettings::default()
                },
                i as u16,
                metrics,
                tx.clone(),
                pool.clone(),
            ),
        }
        .map_err(|e| CliError::Io {
            path: spec.to_string(),
            source: e,
        })?;
        eprintln!(
            "kuzet: listening on {}",
            ListenSpec {
                transport: spec.transport,
                addr: l.local
            }
        );
        listeners.push(l);
    }
    drop(tx);
    let mut stderr = io::stderr();
    'outer: while let Ok(batch) = rx.recv() {
        let spec = &specs[batch.input as usize];
        for f in batch.iter() {
            let peer = batch.peer.map(|p| p.to_string()).unwrap_or_default();
            p.frame(f, batch.received, |err| {
                let _ = writeln!(stderr, "{spec} {peer}: {err}");
            })
            .map_err(|e| CliError::Io {
                path: "stdout".into(),
                source: e,
            })?;
            if p.done() {
                break 'outer;
            }
        }
        let _ = p.out.flush();
        pool.put(batch);
    }
    for l in &listeners {
        l.signal_stop();
    }
    Ok(())
}
