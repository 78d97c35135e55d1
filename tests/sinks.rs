//! The syslog forward and webhook sinks against real receivers on loopback: std UDP and TCP
//! sockets, a rustls server with rcgen certificates, and tiny_http endpoints that go down and
//! come back. Frames are parsed back with kuzet's own RFC 5424 parser. Every wait is bounded
//! by `PATIENCE`.
//!
//! | test                                        | proves                                          |
//! |---------------------------------------------|-------------------------------------------------|
//! | `syslog_udp_one_datagram_per_alert`         | RFC 5426: one message per datagram; PRI from facility and level, header fields, JSON MSG |
//! | `syslog_tcp_octet_counted_sd`               | RFC 6587 framing; `sd` element with `"` `\` `]` escaped and read back intact |
//! | `syslog_tcp_receiver_restart_reconnects`    | a receiver that goes away and comes back gets every alert written after it returns, also when it restarted between two writes |
//! | `syslog_tls_verifies_and_reconnects`        | RFC 5425 with `tls_ca`; a server the roots do not vouch for is refused; reconnect after the server closes |
//! | `webhook_outage_loses_nothing_keeps_order`  | endpoint down, then up: every alert arrives once, in order, with the headers; metrics |
//! | `webhook_restart_delivers_spool_first`      | a new sink on a non-empty spool delivers it before newer alerts |
//! | `webhook_full_spool_is_backpressure`        | `write` fails at `spool_max_bytes`; a pipeline-style retry loses nothing |
//! | `webhook_permanent_4xx_counted_and_skipped` | 5xx/429 retried, 4xx refused: counted, not retried, the rest delivered |
//! | `daemon_webhook_alert_after_endpoint_returns` | `kuzet run` end to end: SSH burst over TCP → correlation → spooled while the endpoint is down → delivered when it comes up |
//! | `daemon_restart_delivers_the_spooled_alert` | `kuzet run` stopped with the alert spooled; the next `kuzet run` delivers it |

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use kuzet::config::{SinkConfig, Span, Target};
use kuzet::event::{EventBuf, FieldTable, Timestamp};
use kuzet::parser::{InputFormat, Parser, ParserConfig};
use kuzet::pipeline::metrics::SinkMetrics;
use kuzet::sigma::{Level, Meta};
use kuzet::sink::Sink;
use kuzet::sink::alert::AlertRecord;
use kuzet::sink::syslog::{SyslogSettings, SyslogSink, local_hostname};
use kuzet::sink::webhook::{WebhookSettings, WebhookSink};
use serde_json::Value;

/// Longest any single wait in these tests may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until `f` holds, for at most `PATIENCE`.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

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
    // The refused one and one session for all 20: TLS session tickets the server sends
    // after the handshake are not taken for a closed connection.
    assert_eq!(rcv.connections.load(Ordering::Relaxed), 2);
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

// ---- webhook --------------------------------------------------------------------------------

/// One request as the endpoint saw it.
#[derive(Clone, Debug)]
struct Seen {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn rule(&self) -> String {
        let v: Value = serde_json::from_slice(&self.body).unwrap();
        v["rule"]["id"].as_str().unwrap().to_string()
    }
}

/// The endpoint's answer to a request: (status, extra header).
type Answer = Box<dyn Fn(usize, &[u8]) -> (u16, Option<(&'static str, &'static str)>) + Send>;

/// A tiny_http endpoint on a fixed address; records the requests it answered 2xx to in
/// `delivered` and every request in `all`.
struct Endpoint {
    delivered: Arc<Mutex<Vec<Seen>>>,
    all: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A loopback port with nothing listening on it (yet).
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

impl Endpoint {
    fn start(addr: SocketAddr, answer: Answer) -> Endpoint {
        let server = tiny_http::Server::http(addr).unwrap();
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let all = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (delivered, all, stop) = (delivered.clone(), all.clone(), stop.clone());
            move || {
                let deadline = Instant::now() + PATIENCE * 2;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(20)) else {
                        continue;
                    };
                    let mut body = Vec::new();
                    req.as_reader().read_to_end(&mut body).unwrap();
                    let n = all.fetch_add(1, Ordering::Relaxed);
                    let (status, extra) = answer(n, &body);
                    if (200..300).contains(&status) {
                        delivered.lock().unwrap().push(Seen {
                            body,
                            headers: req
                                .headers()
                                .iter()
                                .map(|h| (h.field.to_string(), h.value.to_string()))
                                .collect(),
                        });
                    }
                    let mut resp = tiny_http::Response::from_string("ok").with_status_code(status);
                    if let Some((k, v)) = extra {
                        resp.add_header(tiny_http::Header::from_bytes(k, v).unwrap());
                    }
                    let _ = req.respond(resp);
                }
            }
        });
        Endpoint {
            delivered,
            all,
            stop,
            thread: Some(thread),
        }
    }

    fn ok(addr: SocketAddr) -> Endpoint {
        Endpoint::start(addr, Box::new(|_, _| (200, None)))
    }

    fn delivered(&self) -> Vec<Seen> {
        self.delivered.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn webhook_settings(addr: SocketAddr, spool: &Path) -> WebhookSettings {
    WebhookSettings {
        url: format!("http://{addr}/alerts"),
        headers: vec![("X-Kuzet-Token".into(), "s3cret".into())],
        spool_dir: spool.to_path_buf(),
        spool_max_bytes: 1 << 20,
        segment_bytes: 4096,
        timeout: Duration::from_secs(5),
        max_backoff: Duration::from_millis(200),
        roots: Vec::new(),
    }
}

fn metrics() -> Arc<SinkMetrics> {
    Arc::new(SinkMetrics::new("hook", "webhook"))
}

fn rules(seen: &[Seen]) -> Vec<String> {
    seen.iter().map(Seen::rule).collect()
}

fn want_rules(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("rule-{i}")).collect()
}

#[test]
fn webhook_outage_loses_nothing_keeps_order() {
    let spool = tempfile::tempdir().unwrap();
    let addr = free_port();
    let m = metrics();
    let mut sink = WebhookSink::start(webhook_settings(addr, spool.path()), m.clone()).unwrap();
    let mut lines = Vec::new();
    for i in 0..30 {
        let (line, rec) = alert(i, Some(Level::High));
        sink.write(&line, &rec).unwrap();
        lines.push(line);
    }
    // Down: everything waits in the spool, attempts fail and are counted.
    eventually("failed attempts", || m.errors.get() >= 2);
    assert_eq!(m.sent.get(), 0);
    assert_eq!(m.spooled.get(), 30);
    let total: usize = lines.iter().map(Vec::len).sum();
    assert_eq!(m.spool_bytes.get(), total as u64);
    // Up: everything arrives, once, in order.
    let ep = Endpoint::ok(addr);
    eventually("30 deliveries", || ep.count() >= 30);
    eventually("the gauges to empty", || m.spooled.get() == 0);
    let seen = ep.delivered();
    assert_eq!(rules(&seen), want_rules(0..30));
    for (s, line) in seen.iter().zip(&lines) {
        assert_eq!(s.body, line[..line.len() - 1], "the body is the alert JSON");
        assert_eq!(s.header("Content-Type"), Some("application/json"));
        assert_eq!(s.header("X-Kuzet-Token"), Some("s3cret"));
    }
    assert_eq!(m.sent.get(), 30);
    assert_eq!(m.spool_bytes.get(), 0);
    assert_eq!(m.rejected.get(), 0);
    sink.close().unwrap();
    assert_eq!(ep.count(), 30, "nothing delivered twice");
}

#[test]
fn webhook_restart_delivers_spool_first() {
    let spool = tempfile::tempdir().unwrap();
    let addr = free_port();
    let m = metrics();
    {
        let mut sink = WebhookSink::start(webhook_settings(addr, spool.path()), m.clone()).unwrap();
        for i in 0..12 {
            let (line, rec) = alert(i, Some(Level::Low));
            sink.write(&line, &rec).unwrap();
        }
        // Stopping with the endpoint down: the alerts stay on disk.
        sink.close().unwrap();
    }
    assert_eq!(m.sent.get(), 0);
    let segs = std::fs::read_dir(spool.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
        .count();
    assert!(segs >= 2, "alerts spread over {segs} segment files");

    let ep = Endpoint::ok(addr);
    let m2 = metrics();
    let mut sink = WebhookSink::start(webhook_settings(addr, spool.path()), m2.clone()).unwrap();
    for i in 12..15 {
        let (line, rec) = alert(i, Some(Level::Low));
        sink.write(&line, &rec).unwrap();
    }
    eventually("15 deliveries", || ep.count() >= 15);
    assert_eq!(rules(&ep.delivered()), want_rules(0..15));
    eventually("an empty spool", || m2.spooled.get() == 0);
    assert_eq!(m2.sent.get(), 15);
    sink.close().unwrap();

    // And once delivered, a third start has nothing to send again.
    let m3 = metrics();
    let mut sink = WebhookSink::start(webhook_settings(addr, spool.path()), m3.clone()).unwrap();
    assert_eq!(m3.spooled.get(), 0);
    std::thread::sleep(Duration::from_millis(100));
    sink.close().unwrap();
    assert_eq!(ep.count(), 15);
}

#[test]
fn webhook_full_spool_is_backpressure() {
    let spool = tempfile::tempdir().unwrap();
    let addr = free_port();
    let m = metrics();
    let mut s = webhook_settings(addr, spool.path());
    s.spool_max_bytes = 4096;
    let mut sink = WebhookSink::start(s, m.clone()).unwrap();
    let alerts: Vec<_> = (0..40).map(|i| alert(i, Some(Level::High))).collect();
    let per = alerts[0].0.len();
    assert!(per * 40 > 4096 * 2, "the alerts overflow the spool");
    // Endpoint down: writes succeed until the bound, then fail without writing.
    let mut accepted = 0;
    let refused = loop {
        let (line, rec) = &alerts[accepted];
        match sink.write(line, rec) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert!(refused.to_string().contains("spool full"), "{refused}");
    assert_eq!(refused.kind(), std::io::ErrorKind::StorageFull);
    assert!(m.spool_bytes.get() <= 4096);
    assert_eq!(m.spooled.get(), accepted as u64);
    assert!(accepted > 0 && accepted < 40);
    // The pipeline keeps retrying (that is the backpressure); once the endpoint is back the
    // spool drains and every alert goes through, in order.
    let ep = Endpoint::ok(addr);
    for (line, rec) in &alerts[accepted..] {
        write_retrying(&mut sink, line, rec);
    }
    eventually("40 deliveries", || ep.count() >= 40);
    assert_eq!(rules(&ep.delivered()), want_rules(0..40));
    assert_eq!(m.dropped.get(), 0);
    sink.close().unwrap();
}

#[test]
fn webhook_permanent_4xx_counted_and_skipped() {
    let spool = tempfile::tempdir().unwrap();
    let addr = free_port();
    // 503, then 429 with Retry-After, then normal service; alert 2 is refused for good.
    let ep = Endpoint::start(
        addr,
        Box::new(|n, body| {
            if n == 0 {
                (503, None)
            } else if n == 1 {
                (429, Some(("Retry-After", "0")))
            } else if String::from_utf8_lossy(body).contains(r#""id":"rule-2""#) {
                (422, None)
            } else {
                (204, None)
            }
        }),
    );
    let m = metrics();
    let mut sink = WebhookSink::start(webhook_settings(addr, spool.path()), m.clone()).unwrap();
    for i in 0..6 {
        let (line, rec) = alert(i, Some(Level::High));
        sink.write(&line, &rec).unwrap();
    }
    eventually("5 deliveries", || ep.count() >= 5);
    eventually("an empty spool", || m.spooled.get() == 0);
    assert_eq!(
        rules(&ep.delivered()),
        ["rule-0", "rule-1", "rule-3", "rule-4", "rule-5"]
    );
    assert_eq!(m.rejected.get(), 1);
    assert_eq!(m.errors.get(), 2, "the 503 and the 429");
    assert_eq!(m.sent.get(), 5);
    // Requests: 503, 429, then one per alert (the refused one once, not retried).
    assert_eq!(ep.all.load(Ordering::Relaxed), 8);
    sink.close().unwrap();
}

// ---- the binary -----------------------------------------------------------------------------

/// The SSH brute-force burst of rules/tests/sshd_bruteforce.yml, stamped now (the daemon's
/// correlation clock follows the wall clock).
fn ssh_burst() -> String {
    let now = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let stamp = now.strftime("%b %e %H:%M:%S").to_string();
    [
        "sshd[4100]: Connection from 203.0.113.7 port 51230 on 192.0.2.10 port 22 rdomain \"\"",
        "sshd[4100]: Invalid user admin from 203.0.113.7 port 51230",
        "sshd[4100]: Failed password for invalid user admin from 203.0.113.7 port 51230 ssh2",
        "sshd[4102]: Failed password for root from 203.0.113.7 port 51232 ssh2",
        "sshd[4102]: Failed password for root from 203.0.113.7 port 51232 ssh2",
        "sshd[4102]: Failed password for root from 203.0.113.7 port 51232 ssh2",
        "sshd[4105]: Failed password for invalid user oracle from 203.0.113.7 port 51240 ssh2",
        "sshd[4105]: Failed password for invalid user oracle from 203.0.113.7 port 51240 ssh2",
        "sshd[4105]: Failed password for invalid user oracle from 203.0.113.7 port 51240 ssh2",
    ]
    .iter()
    .map(|l| format!("<38>{stamp} web01 {l}\n"))
    .collect()
}

/// A `kuzet run` child with the addresses it printed; killed if the test fails.
struct Daemon {
    child: std::process::Child,
    listen: SocketAddr,
    admin: SocketAddr,
    /// Its stderr, read on a thread so it never blocks on a full pipe.
    stderr: Receiver<String>,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        use std::process::{Command, Stdio};
        let mut child = Command::new(env!("CARGO_BIN_EXE_kuzet"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stderr) = crossbeam_channel::unbounded();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut listen, mut admin) = (None, None);
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while listen.is_none() || admin.is_none() {
            let Ok(line) = stderr.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no addresses on stderr: {seen:#?}");
            };
            if let Some(a) = line.strip_prefix("kuzet: listening on tcp://") {
                listen = a.parse().ok();
            }
            if let Some(a) = line
                .strip_prefix("kuzet: metrics on http://")
                .and_then(|a| a.strip_suffix("/metrics"))
            {
                admin = a.parse().ok();
            }
            seen.push(line);
        }
        Daemon {
            child,
            listen: listen.unwrap(),
            admin: admin.unwrap(),
            stderr,
        }
    }

    fn metrics(&self) -> String {
        ureq::get(format!("http://{}/metrics", self.admin))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default()
    }

    /// SIGTERM, and the exit status (bounded wait).
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "the daemon did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What it printed so far.
    fn said(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon config: one TCP listener and the admin listener on free ports, one webhook sink
/// named `soc` for alerts of level high and above.
fn daemon_config(dir: &Path, hook: SocketAddr) -> PathBuf {
    let cfg = dir.join("kuzet.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[listener]]
address = "tcp://127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[stats]
interval = 0

[[sink]]
type = "webhook"
name = "soc"
url = "http://{hook}/alerts"
spool_dir = "{spool}"
max_backoff = "200ms"
min_level = "high"
"#,
            spool = dir.join("spool").display()
        ),
    )
    .unwrap();
    cfg
}

const SOC: &str = r#"sink="soc",type="webhook""#;

/// Sends the SSH burst and waits until its alert is spooled and a delivery attempt failed.
fn burst_until_spooled(d: &Daemon) {
    let mut s = TcpStream::connect(d.listen).unwrap();
    s.write_all(ssh_burst().as_bytes()).unwrap();
    s.flush().unwrap();
    eventually("the alert spooled and a failed attempt", || {
        let t = d.metrics();
        t.contains(&format!("kuzet_sink_spooled{{{SOC}}} 1\n"))
            && !t.contains(&format!("kuzet_sink_errors_total{{{SOC}}} 0\n"))
    });
}

/// The correlation alert of the burst.
fn check_bruteforce_alert(body: &[u8]) {
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["schema"], "kuzet.alert/1");
    assert_eq!(v["rule"]["id"], "a1248562-c65a-4920-9a41-0063f748b041");
    assert_eq!(v["rule"]["type"], "event_count");
    assert_eq!(v["rule"]["level"], "high");
    assert_eq!(v["group"]["src_ip"], "203.0.113.7");
    assert!(v["count"].as_u64().unwrap() >= 6, "{v}");
}

#[test]
fn daemon_webhook_alert_after_endpoint_returns() {
    let dir = tempfile::tempdir().unwrap();
    let hook = free_port();
    let d = Daemon::start(&daemon_config(dir.path(), hook));
    // The endpoint is down: the alert waits in the spool while delivery fails.
    burst_until_spooled(&d);
    let ep = Endpoint::ok(hook);
    eventually("the alert delivered", || ep.count() >= 1);
    check_bruteforce_alert(&ep.delivered()[0].body);
    eventually("the gauges to follow", || {
        let t = d.metrics();
        t.contains(&format!("kuzet_sink_spooled{{{SOC}}} 0\n"))
            && t.contains(&format!("kuzet_sink_sent_total{{{SOC}}} 1\n"))
    });
    let said = d.said();
    assert!(d.stop().success(), "{said:#?}");
    assert_eq!(ep.count(), 1, "one attack, one alert");
}

#[test]
fn daemon_restart_delivers_the_spooled_alert() {
    let dir = tempfile::tempdir().unwrap();
    let hook = free_port();
    let cfg = daemon_config(dir.path(), hook);
    let d = Daemon::start(&cfg);
    burst_until_spooled(&d);
    // Stopped while the endpoint is still down: the alert stays on disk.
    let said = d.said();
    assert!(d.stop().success(), "{said:#?}");
    let ep = Endpoint::ok(hook);
    let d = Daemon::start(&cfg);
    eventually("the spooled alert delivered by the new daemon", || {
        ep.count() >= 1
    });
    check_bruteforce_alert(&ep.delivered()[0].body);
    eventually("the new daemon counts it", || {
        d.metrics()
            .contains(&format!("kuzet_sink_sent_total{{{SOC}}} 1\n"))
    });
    assert!(d.stop().success());
    assert_eq!(ep.count(), 1);
}
