//! The syslog forward sink against real receivers on loopback: std UDP and TCP sockets and a
//! rustls server with rcgen certificates. Frames are parsed back with kuzet's own RFC 5424 parser. Every wait is bounded
//! by `PATIENCE`.
//!
//! | test                                        | proves                                          |
//! |---------------------------------------------|-------------------------------------------------|
//! | `syslog_udp_one_datagram_per_alert`         | RFC 5426: one message per datagram; PRI from facility and level, header fields, JSON MSG |
//! | `syslog_tcp_octet_counted_sd`               | RFC 6587 framing; `sd` element with `"` `\` `]` escaped and read back intact |
//! | `syslog_tcp_receiver_restart_reconnects`    | a receiver that goes away and comes back gets every alert written after it returns, also when it restarted between two writes |
//! | `syslog_tls_verifies_and_reconnects`        | RFC 5425 with `tls_ca`; a server the roots do not vouch for is refused; reconnect after the server closes |

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use kuzet::config::{SinkConfig, Span, Target};
use kuzet::event::{EventBuf, FieldTable, Timestamp};
use kuzet::parser::{InputFormat, Parser, ParserConfig};
use kuzet::sigma::{Level, Meta};
use kuzet::sink::Sink;
use kuzet::sink::alert::AlertRecord;
use kuzet::sink::syslog::{SyslogSettings, SyslogSink, local_hostname};
use serde_json::Value;

/// Longest any single wait in these tests may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// An alert whose title carries every character RFC 5424 SD escapes.
fn alert(i: u32, level: Option<Level>) -> (Vec<u8>, AlertRecord) {
    let rec = AlertRecord {
        id: 0x1000 + u128::from(i),
        meta: Arc::new(Meta {
            id: Some(format!("rule-{i}")),
            title: format!(r#"alert {i}: "quoted" back\slash ]bracket é"#),
            author: Some("kuzet tests".into()),
            level,
            tags: vec!["attack.t1110".into()],
            ..Meta::default()
        }),
        kind: "event_count",
        group: vec![("src_ip".into(), "203.0.113.7".into())],
        count: 6 + u64::from(i),
        metric: Some(6.0),
        revision: 0,
        first_seen: Timestamp(1_700_000_000_000_000_000),
        last_seen: Timestamp(1_700_000_009_000_000_000),
        detected_at: Timestamp::now(),
        events: vec![format!(r#"{{"n":{i},"message":"Failed password"}}"#).into_bytes()],
        received: None,
    };
    let mut line = Vec::new();
    rec.write_json(&mut line);
    line.push(b'\n');
    (line, rec)
}

/// Writes like the pipeline's sink thread: retries a failing write, bounded by `PATIENCE`.
/// Returns how many attempts failed.
fn write_retrying(s: &mut dyn Sink, line: &[u8], rec: &AlertRecord) -> usize {
    let deadline = Instant::now() + PATIENCE;
    let mut failed = 0;
    while let Err(e) = s.write(line, rec) {
        failed += 1;
        assert!(Instant::now() < deadline, "write kept failing: {e}");
        std::thread::sleep(Duration::from_millis(20));
    }
    failed
}

// ---- syslog ---------------------------------------------------------------------------------

/// One RFC 5424 message parsed back by kuzet's parser: the `kuzet parse` fields.
fn parse_5424(msg: &[u8]) -> serde_json::Map<String, Value> {
    let cfg = ParserConfig {
        format: InputFormat::Rfc5424,
        parse_payload: false,
        ..ParserConfig::default()
    };
    let mut table = FieldTable::new();
    cfg.register(&mut table);
    let table = Arc::new(table);
    let mut parser = Parser::new(table.clone(), cfg);
    let mut buf = EventBuf::new();
    if let Err(e) = parser.parse(msg, Timestamp::now(), &mut buf) {
        panic!("{e}: {}", String::from_utf8_lossy(msg));
    }
    let mut out = Vec::new();
    kuzet::cli::parse::write_event(&table, &kuzet::event::Event::new(msg, &buf), &mut out);
    match serde_json::from_slice(&out) {
        Ok(Value::Object(m)) => m,
        other => panic!("{other:?}"),
    }
}

fn syslog_config(address: &str, format: &str) -> SinkConfig {
    let mut sc = SinkConfig::new("syslog");
    sc.address = Some(address.into());
    sc.format = format.into();
    sc.timeout = Span(Duration::from_secs(5));
    sc
}

/// Checks the header and the JSON MSG of a message carrying `rec`.
fn check_message(f: &serde_json::Map<String, Value>, line: &[u8], rec: &AlertRecord, pri: u8) {
    assert_eq!(f["facility"], u64::from(pri >> 3), "{f:?}");
    assert_eq!(f["severity"], u64::from(pri & 7), "{f:?}");
    assert_eq!(f["hostname"], local_hostname().as_str());
    assert_eq!(f["appname"], "kuzet");
    assert_eq!(f["procid"], std::process::id().to_string().as_str());
    assert_eq!(f["msgid"], rec.kind);
    // TIMESTAMP is detected_at cut to microseconds.
    let ts = f["timestamp"].as_str().unwrap();
    let mut want = Vec::new();
    Timestamp(rec.detected_at.0 / 1000 * 1000).write_rfc3339(&mut want);
    assert_eq!(ts.as_bytes(), want, "{ts}");
    let msg: Value = serde_json::from_str(f["message"].as_str().unwrap()).unwrap();
    let sent: Value = serde_json::from_slice(line).unwrap();
    assert_eq!(msg, sent);
    assert_eq!(msg["schema"], "kuzet.alert/1");
}

#[test]
fn syslog_udp_one_datagram_per_alert() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(PATIENCE)).unwrap();
    let addr = rx.local_addr().unwrap();
    let mut sc = syslog_config(&format!("udp://{addr}"), "json");
    sc.facility = "local0".into();
    let mut sink = SyslogSink::new(SyslogSettings::from_config(&sc).unwrap());
    // local0 = 16: PRI = 128 + severity.
    let cases = [
        (Some(Level::Critical), 130u8),
        (Some(Level::High), 131),
        (Some(Level::Medium), 132),
        (Some(Level::Low), 133),
        (Some(Level::Informational), 134),
        (None, 134),
    ];
    let mut sent = Vec::new();
    for (i, (level, _)) in cases.iter().enumerate() {
        let (line, rec) = alert(i as u32, *level);
        sink.write(&line, &rec).unwrap();
        sent.push((line, rec));
    }
    sink.close().unwrap();
    let mut buf = vec![0u8; 70_000];
    for (i, (line, rec)) in sent.iter().enumerate() {
        let n = rx.recv(&mut buf).expect("a datagram per alert");
        let d = &buf[..n];
        assert!(d.starts_with(format!("<{}>1 ", cases[i].1).as_bytes()));
        let f = parse_5424(d);
        check_message(&f, line, rec, cases[i].1);
        assert!(!d.ends_with(b"\n"), "the JSON line's newline is not sent");
    }
}

/// Reads RFC 6587 octet-counted frames.
fn read_octet_frame(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = 0usize;
    let mut digits = 0;
    loop {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        match b[0] {
            b'0'..=b'9' if digits < 8 => {
                len = len * 10 + (b[0] - b'0') as usize;
                digits += 1;
            }
            b' ' if digits > 0 => break,
            other => panic!("bad frame header byte {other:?}"),
        }
    }
    let mut msg = vec![0u8; len];
    r.read_exact(&mut msg)?;
    Ok(msg)
}

/// A TCP (or TLS) syslog receiver on a fixed address, one connection at a time, handing
/// every frame it reads to `frames`. `stop` makes it go away: listener and connection closed.
struct StreamReceiver {
    addr: SocketAddr,
    frames: Receiver<Vec<u8>>,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StreamReceiver {
    fn start(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> StreamReceiver {
        // The port of a receiver that just went away may linger briefly.
        let deadline = Instant::now() + PATIENCE;
        let listener = loop {
            match TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, frames) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            let connections = connections.clone();
            move || {
                let deadline = Instant::now() + PATIENCE * 2;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let sock = match listener.accept() {
                        Ok((s, _)) => s,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                    };
                    connections.fetch_add(1, Ordering::Relaxed);
                    sock.set_nonblocking(false).unwrap();
                    sock.set_read_timeout(Some(Duration::from_millis(20)))
                        .unwrap();
                    match &tls {
                        None => serve(StopOnTimeout::new(sock, &stop), &tx),
                        Some(cfg) => {
                            let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                            let mut s =
                                rustls::StreamOwned::new(conn, StopOnTimeout::new(sock, &stop));
                            serve(&mut s, &tx);
                            s.conn.send_close_notify();
                            let _ = s.conn.complete_io(&mut s.sock);
                        }
                    }
                }
            }
        });
        StreamReceiver {
            addr,
            frames,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    fn frames(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + PATIENCE;
        let mut out = Vec::new();
        while out.len() < n {
            match self
                .frames
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(f) => out.push(f),
                Err(_) => panic!("got {} of {n} frames", out.len()),
            }
        }
        out
    }

    fn go_away(mut self) -> SocketAddr {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.addr
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A socket whose read timeouts are retried until `stop`, which then reads as the end.
struct StopOnTimeout {
    sock: TcpStream,
    stop: Arc<AtomicBool>,
}

impl StopOnTimeout {
    fn new(sock: TcpStream, stop: &Arc<AtomicBool>) -> StopOnTimeout {
        StopOnTimeout {
            sock,
            stop: stop.clone(),
        }
    }
}

impl Read for StopOnTimeout {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.sock.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.stop.load(Ordering::Relaxed) {
                        return Ok(0);
                    }
                }
                r => return r,
            }
        }
    }
}

impl Write for StopOnTimeout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sock.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.sock.flush()
    }
}

/// Reads frames until the end of the connection.
fn serve(mut r: impl Read, tx: &crossbeam_channel::Sender<Vec<u8>>) {
    while let Ok(f) = read_octet_frame(&mut r) {
        let _ = tx.send(f);
    }
}

#[test]
fn syslog_tcp_octet_counted_sd() {
    let rcv = StreamReceiver::start("127.0.0.1:0".parse().unwrap(), None);
    let sc = syslog_config(&format!("tcp://{}", rcv.addr), "sd");
    let mut sink = SyslogSink::new(SyslogSettings::from_config(&sc).unwrap());
    let mut sent = Vec::new();
    for i in 0..50 {
        let (line, rec) = alert(i, Some(Level::High));
        sink.write(&line, &rec).unwrap();
        sent.push((line, rec));
    }
    let frames = rcv.frames(50);
    for (f, (line, rec)) in frames.iter().zip(&sent) {
        let text = String::from_utf8_lossy(f);
        // local4 = 20, high = err 3.
        assert!(text.starts_with("<163>1 "), "{text}");
        assert!(
            text.contains(r#"title="alert "#)
                && text.contains(r#"\"quoted\" back\\slash \]bracket"#),
            "SD escapes: {text}"
        );
        let fields = parse_5424(f);
        check_message(&fields, line, rec, 163);
        let sd = |k: &str| fields[&format!("kuzet@32473.{k}")].clone();
        assert_eq!(
            sd("title"),
            rec.meta.title.as_str(),
            "unescaped back intact"
        );
        assert_eq!(sd("id"), format!("{:032x}", rec.id).as_str());
        assert_eq!(sd("rule"), rec.meta.label().as_str());
        assert_eq!(sd("level"), "high");
        assert_eq!(sd("count"), rec.count.to_string().as_str());
        assert_eq!(sd("revision"), "0");
    }
    assert_eq!(rcv.connections.load(Ordering::Relaxed), 1);
    sink.close().unwrap();
}

#[test]
fn syslog_tcp_receiver_restart_reconnects() {
    let rcv = StreamReceiver::start("127.0.0.1:0".parse().unwrap(), None);
    let sc = syslog_config(&format!("tcp://{}", rcv.addr), "json");
    let mut sink = SyslogSink::new(SyslogSettings::from_config(&sc).unwrap());
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    for i in 0..3 {
        let (line, rec) = alert(i, Some(Level::Medium));
        sink.write(&line, &rec).unwrap();
    }
    assert_eq!(rcv.frames(3).len(), 3);
    // The receiver goes away: writes fail (the pipeline retries them) ...
    let addr = rcv.go_away();
    let (line, rec) = alert(3, Some(Level::Medium));
    assert!(
        sink.write(&line, &rec).is_err(),
        "a write with nobody listening must fail, not vanish"
    );
    // ... until it is back.
    let rcv = StreamReceiver::start(addr, None);
    write_retrying(&mut sink, &line, &rec);
    for i in 4..6 {
        let (line, rec) = alert(i, Some(Level::Medium));
        sink.write(&line, &rec).unwrap();
    }
    let got = rcv.frames(3);
    for (k, f) in got.iter().enumerate() {
        assert!(
            text(f).contains(&format!(r#""rule":{{"id":"rule-{}""#, 3 + k)),
            "{}",
            text(f)
        );
    }
    // Restarted between two writes: the next write must not go down the dead connection.
    let addr = rcv.go_away();
    let rcv = StreamReceiver::start(addr, None);
    // Let the FIN of the old connection arrive, as it has long before a real next alert.
    std::thread::sleep(Duration::from_millis(50));
    let (line, rec) = alert(6, Some(Level::Medium));
    assert_eq!(
        write_retrying(&mut sink, &line, &rec),
        0,
        "the receiver was up"
    );
    let got = rcv.frames(1);
    assert!(text(&got[0]).contains(r#""rule":{"id":"rule-6""#));
    assert_eq!(rcv.connections.load(Ordering::Relaxed), 1);
    sink.close().unwrap();
}

/// A CA, a server certificate for localhost signed by it, and a second CA that signed
/// nothing here.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name.push(DnType::CommonName, cn);
            p.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            let key = KeyPair::generate().unwrap();
            let cert = p.self_signed(&key).unwrap();
            (cert, Issuer::new(p, key))
        };
        let (ca_cert, issuer) = ca("kuzet test CA");
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        let (other_ca, _) = ca("another CA");
        std::fs::write(dir.path().join("other-ca.pem"), other_ca.pem()).unwrap();
        let mut p = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "server");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self) -> Arc<rustls::ServerConfig> {
        kuzet::reader::tls::server_config(&kuzet::reader::tls::TlsSettings {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            ..Default::default()
        })
        .unwrap()
    }
}

#[test]
fn syslog_tls_verifies_and_reconnects() {
    let pki = Pki::new();
    let rcv = StreamReceiver::start("127.0.0.1:0".parse().unwrap(), Some(pki.server()));
    let port = rcv.addr.port();
    // A name, resolved when connecting, and checked against the certificate.
    let mut sc = syslog_config(&format!("tls://localhost:{port}"), "sd");
    assert_eq!(
        Target::parse(sc.address.as_deref().unwrap()).unwrap().host,
        "localhost"
    );

    // Roots that do not vouch for the server: refused at the handshake, nothing sent.
    sc.tls_ca = Some(pki.path("other-ca.pem"));
    let mut wrong = SyslogSink::new(SyslogSettings::from_config(&sc).unwrap());
    let (line, rec) = alert(0, Some(Level::Critical));
    let e = wrong.write(&line, &rec).unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");

    sc.tls_ca = Some(pki.path("ca.pem"));
    let mut sink = SyslogSink::new(SyslogSettings::from_config(&sc).unwrap());
    let mut sent = Vec::new();
    for i in 0..20 {
        let (line, rec) = alert(i, Some(Level::Critical));
        sink.write(&line, &rec).unwrap();
        sent.push((line, rec));
    }
    let frames = rcv.frames(20);
    for (f, (line, rec)) in frames.iter().zip(&sent) {
        // local4 = 20, critical = crit 2.
        let fields = parse_5424(f);
        check_message(&fields, line, rec, 162);
        assert_eq!(fields["kuzet@32473.title"], rec.meta.title.as_str());
    }
    // The server closes (close_notify) and comes back: the next alerts arrive on a new session.
    let addr = rcv.go_away();
    let rcv = StreamReceiver::start(addr, Some(pki.server()));
    std::thread::sleep(Duration::from_millis(50));
    for i in 20..25 {
        let (line, rec) = alert(i, Some(Level::Critical));
        write_retrying(&mut sink, &line, &rec);
    }
    let frames = rcv.frames(5);
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(
            parse_5424(f)["kuzet@32473.rule"],
            format!("rule-{}", 20 + k)
        );
    }
    sink.close().unwrap();
}
