//! `kuzet gen`: writes a generated, seeded log stream ([`crate::loadgen::scenario`]) with
//! injected attacks to stdout, a file, TCP (newline or octet-counted framing, several
//! connections) or UDP, and its ground truth (the alerts a correct engine must raise) to
//! `--truth`. Network outputs are paced at `--rate` unless `--max`; files and stdout are
//! written as fast as possible (the rate then only spaces the event times).
//!
//! Only loopback addresses are accepted unless `--allow-remote`: a load generator pointed at
//! the wrong address by a typo is a flood.

use std::io::{BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::CliError;
use crate::engine;
use crate::loadgen::scenario::{Formats, Params, Scenario, Thresholds, parse_start};
use crate::loadgen::truth;
use crate::parser::ParserConfig;

#[derive(Args, Debug, Clone)]
pub struct GenArgs {
    #[command(flatten)]
    pub sources: super::RuleArgs,
    /// Seed: the same seed and parameters give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Lines to write (background and attacks together).
    #[arg(long, default_value_t = 100_000, conflicts_with = "duration")]
    pub count: u64,
    /// Or: seconds of event time to cover (count = duration × rate).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Events per second of event time, and the sending rate for network outputs.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Send as fast as the receiver takes it (network outputs; event times still follow --rate).
    #[arg(long)]
    pub max: bool,
    /// Event time of the first line: RFC 3339, or `now`.
    #[arg(long, default_value = "2026-11-24T00:00:00Z")]
    pub start: String,
    /// Distinct sending hosts.
    #[arg(long, default_value_t = 200)]
    pub hosts: u64,
    /// Distinct source addresses of the background traffic (1 to 16,777,216).
    #[arg(long, default_value_t = 10_000)]
    pub addrs: u64,
    /// Distinct user names of the background traffic.
    #[arg(long, default_value_t = 1_000)]
    pub users: u64,
    /// Line formats to mix (rfc3164, rfc5424, json, cef).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rfc3164,rfc5424,json,cef"
    )]
    pub formats: Vec<String>,
    /// Attacks of each kind (SSH brute force, password spraying, vertical and horizontal
    /// port scans, account created then made admin); default: one per 50,000 lines, at least 1.
    #[arg(long)]
    pub attacks: Option<u64>,
    /// Where to write: `-` (stdout), a file, `tcp://HOST:PORT` or `udp://HOST:PORT`.
    #[arg(short, long, default_value = "-")]
    pub output: String,
    /// TCP framing: newline, or octet-counted (RFC 6587 §3.4.1).
    #[arg(long, default_value = "newline", value_parser = ["newline", "octet-counted"])]
    pub framing: String,
    /// Network connections (lines are dealt to them in batches).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Write the ground truth (one expected alert per line) here.
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Accept addresses that are not loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// The thresholds of the rule pack the arguments name.
pub fn thresholds(sources: &super::RuleArgs) -> Result<Thresholds, CliError> {
    let pcfg = ParserConfig::default();
    let eng = engine::build(&sources.engine_config(), &[&pcfg]).map_err(|errs| {
        CliError::Usage(
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    Thresholds::from_engine(&eng).map_err(CliError::Usage)
}

/// The scenario the arguments describe.
pub fn scenario(a: &GenArgs) -> Result<Scenario, CliError> {
    let formats = Formats::parse(&a.formats).map_err(CliError::Usage)?;
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(CliError::Usage("--rate must be positive".into()));
    }
    if a.addrs == 0 || a.addrs > 1 << 24 || a.users == 0 || a.hosts == 0 {
        return Err(CliError::Usage(
            "--addrs must be 1..=16777216, --users and --hosts at least 1".into(),
        ));
    }
    let count = match a.duration {
        Some(d) => (d * a.rate) as u64,
        None => a.count,
    };
    let p = Params {
        seed: a.seed,
        count,
        rate: a.rate,
        start_ms: parse_start(&a.start).map_err(CliError::Usage)?,
        hosts: a.hosts,
        addrs: a.addrs,
        users: a.users,
        formats,
        attacks: a.attacks.unwrap_or((count / 50_000).max(1)),
        part: 0,
    };
    Ok(Scenario::new(p, thresholds(&a.sources)?))
}

enum Out {
    Writer(Box<dyn Write>),
    Tcp(Vec<TcpStream>, bool),
    Udp(UdpSocket, SocketAddr),
}

fn resolve(spec: &str, allow_remote: bool) -> Result<SocketAddr, CliError> {
    let addr = spec
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::Usage(format!("cannot resolve {spec:?}")))?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(CliError::Usage(format!(
            "{addr} is not a loopback address (add --allow-remote to send there)"
        )));
    }
    Ok(addr)
}

fn open(a: &GenArgs) -> Result<Out, CliError> {
    let io = |path: &str| {
        let path = path.to_string();
        move |e| CliError::Io { path, source: e }
    };
    if let Some(hp) = a.output.strip_prefix("tcp://") {
        let addr = resolve(hp, a.allow_remote)?;
        let conns = (0..a.connections.max(1))
            .map(|_| TcpStream::connect(addr))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io(hp))?;
        return Ok(Out::Tcp(conns, a.framing == "octet-counted"));
    }
    if let Some(hp) = a.output.strip_prefix("udp://") {
        let addr = resolve(hp, a.allow_remote)?;
        let bind = if addr.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let bind = if a.allow_remote && !addr.ip().is_loopback() {
            if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            }
        } else {
            bind
        };
        let s = UdpSocket::bind(bind).map_err(io(hp))?;
        return Ok(Out::Udp(s, addr));
    }
    if a.output == "-" {
        return Ok(Out::Writer(Box::new(BufWriter::with_capacity(
            1 << 16,
            std::io::stdout().lock(),
        ))));
    }
    let f = std::fs::File::create(&a.output).map_err(io(&a.output))?;
    Ok(Out::Writer(Box::new(BufWriter::with_capacity(1 << 20, f))))
}

/// Writes one batch of whole lines (each ending in `\n`) to connection `k`.
fn send(out: &mut Out, k: usize, batch: &[u8], framed: &mut Vec<u8>) -> std::io::Result<()> {
    match out {
        Out::Writer(w) => w.write_all(batch),
        Out::Tcp(conns, octet) => {
            let n = conns.len();
            let c = &mut conns[k % n];
            if !*octet {
                return c.write_all(batch);
            }
            framed.clear();
            for line in batch.split_inclusive(|&b| b == b'\n') {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                framed.extend_from_slice(body.len().to_string().as_bytes());
                framed.push(b' ');
                framed.extend_from_slice(body);
            }
            c.write_all(framed)
        }
        Out::Udp(s, addr) => {
            for line in batch.split_inclusive(|&b| b == b'\n') {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                s.send_to(body, *addr)?;
            }
            Ok(())
        }
    }
}

pub fn run(a: GenArgs) -> Result<ExitCode, CliError> {
    let mut sc = scenario(&a)?;
    let mut out = open(&a)?;
    let network = !matches!(out, Out::Writer(_));
    let paced = network && !a.max;
    let rate = a.rate;
    // Lines per batch: small enough to pace smoothly (≤ 10 ms of traffic), at most 1,000.
    let per_batch = if paced {
        ((rate / 100.0) as u64).clamp(1, 1000)
    } else {
        1000
    };
    let t0 = Instant::now();
    let mut batch = Vec::with_capacity(256 * per_batch as usize);
    let mut framed = Vec::new();
    let mut k = 0usize;
    let mut written = 0u64;
    let target = a.output.clone();
    let io = |e| CliError::Io {
        path: target.clone(),
        source: e,
    };
    loop {
        batch.clear();
        let mut n = 0u64;
        while n < per_batch && sc.next_line(&mut batch) {
            n += 1;
        }
        if n == 0 {
            break;
        }
        if paced {
            // Line `written` is due at written / rate seconds after the start.
            let due = Duration::from_secs_f64(written as f64 / rate);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        match send(&mut out, k, &batch, &mut framed) {
            Ok(()) => {}
            // A closed stdout (`kuzet gen | head`) is the reader's choice, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(io(e)),
        }
        written += n;
        k += 1;
    }
    if let Out::Writer(w) = &mut out
        && let Err(e) = w.flush()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(io(e));
    }
    drop(out);
    let expected = sc.truth();
    if let Some(p) = &a.truth {
        let f = std::fs::File::create(p).map_err(|e| CliError::Io {
            path: p.display().to_string(),
            source: e,
        })?;
        let mut w = BufWriter::new(f);
        truth::write(&expected, &mut w)
            .and_then(|()| w.flush())
            .map_err(|e| CliError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
    }
    let c = sc.counts();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "kuzet gen: {} lines ({:.1} MB; {} rfc3164, {} rfc5424, {} json, {} cef; {} attack lines, {} rationed) in {secs:.2}s ({:.0} lines/s); {} alerts expected",
        c.lines,
        c.bytes as f64 / 1e6,
        c.rfc3164,
        c.rfc5424,
        c.json,
        c.cef,
        c.attack_lines,
        c.rationed,
        c.lines as f64 / secs.max(1e-9),
        expected.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The ground truth `kuzet gen --truth` wrote.
    #[arg(long)]
    pub truth: PathBuf,
    /// Check only this rule (its id or name): other expected and raised alerts are ignored.
    #[arg(long)]
    pub rule: Option<String>,
    /// Print the verdict as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// `kuzet.alert/1` lines (a file, or `-` for stdin); other lines are ignored.
    #[arg(default_value = "-")]
    pub alerts: String,
}

/// `kuzet verify`: an engine's alerts against a ground truth; exit 0 only when exact.
pub fn verify(a: VerifyArgs) -> Result<ExitCode, CliError> {
    let read = |p: &str| -> Result<String, CliError> {
        let r = if p == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
        } else {
            std::fs::read_to_string(p)
        };
        r.map_err(|e| CliError::Io {
            path: p.to_string(),
            source: e,
        })
    };
    let mut expected = truth::read(&read(&a.truth.display().to_string())?)
        .map_err(|e| CliError::Usage(format!("{}: {e}", a.truth.display())))?;
    let text = read(&a.alerts)?;
    let mut raised: Vec<truth::Raised> = text
        .lines()
        .filter_map(truth::Raised::from_alert_json)
        .collect();
    if let Some(rule) = &a.rule {
        expected.retain(|e| &e.rule_id == rule || &e.rule == rule);
        let ids: Vec<String> = expected.iter().map(|e| e.rule_id.clone()).collect();
        raised.retain(|r| &r.rule_id == rule || ids.contains(&r.rule_id));
    }
    let v = truth::check(&expected, &raised);
    if a.json {
        println!("{}", serde_json::to_string(&v).unwrap_or_default());
    } else {
        println!("{}", v.summary());
        for m in &v.missed {
            println!("missed {} {:?}", m.rule, m.group);
        }
        for x in &v.extra {
            println!("extra {} {:?}", x.rule_id, x.group);
        }
    }
    Ok(if v.exact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
