//! End-to-end tests of the network readers over real loopback sockets: listeners are spawned
//! on port 0 and fed from std sockets (and a rustls client) in the test.
//!
//! | test                                   | proves                                               |
//! |----------------------------------------|------------------------------------------------------|
//! | `udp_datagrams_*`                      | one datagram = one frame, trailing LF dropped, oversize truncated/dropped and counted |
//! | `tcp_newline_*`, `tcp_octet_*`, `tcp_mixed_*` | per-frame framing over a real connection   |
//! | `tcp_many_connections_keep_order`      | 50 concurrent senders: nothing lost, per-connection order kept |
//! | `tcp_max_connections_enforced`         | connections beyond the limit are closed and counted  |
//! | `tcp_oversize_counted`                 | oversize TCP frames counted, neighbours intact       |
//! | `tcp_backpressure_loses_nothing`       | queue of 1, slow consumer, 200k frames: all arrive, in order |
//! | `tcp_stop_drains_*`                    | frames sent just before `stop()` are delivered       |
//! | `udp_stop_drains_socket`               | datagrams queued in the socket at `stop()` are delivered |
//! | `udp_queue_full_and_kernel_drops_are_counted` | queue of 1, nobody consuming: delivered + queue-full + kernel drops = sent |
//! | `tcp_frames_up_to_max_through_the_smallest_buffer` | 3000 frames up to `max_frame`, both framings, minimal connection buffer |
//! | `tls_*`                                | RFC 5425 with rcgen certificates; client auth none/optional/required |
//! | `binary_parse_listen_*`                | `kuzet parse --listen tcp://… --count N` prints the events |

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use kuzet::reader::tcp::TcpSettings;
use kuzet::reader::tls::{ClientAuth, TlsSettings, server_config};
use kuzet::reader::udp::UdpSettings;
use kuzet::reader::{Batch, FramingConfig, Listener, Oversize, Pool, spawn_tcp, spawn_udp};
use kuzet::telemetry::InputMetrics;

const LOOPBACK: &str = "127.0.0.1:0";
/// Longest any single wait in these tests may take.
const PATIENCE: Duration = Duration::from_secs(30);

struct Harness {
    listener: Option<Listener>,
    rx: Receiver<Batch>,
    pool: Pool,
    metrics: Arc<InputMetrics>,
}

impl Harness {
    fn addr(&self) -> SocketAddr {
        self.listener.as_ref().expect("running").local
    }

    /// Receives until `n` frames arrived (or `PATIENCE` passed): `(peer, frame)` in order.
    fn frames(&self, n: usize) -> Vec<(Option<SocketAddr>, Vec<u8>)> {
        collect(&self.rx, &self.pool, n, PATIENCE)
    }

    /// Receives whatever arrives within `quiet`; for checking that nothing (more) comes.
    fn frames_within(&self, quiet: Duration) -> Vec<(Option<SocketAddr>, Vec<u8>)> {
        collect(&self.rx, &self.pool, usize::MAX, quiet)
    }

    fn stop(&mut self) {
        if let Some(l) = self.listener.take() {
            l.stop().expect("listener thread ends cleanly");
        }
    }
}

fn collect(
    rx: &Receiver<Batch>,
    pool: &Pool,
    n: usize,
    patience: Duration,
) -> Vec<(Option<SocketAddr>, Vec<u8>)> {
    let deadline = Instant::now() + patience;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => {
                check_batch(&b);
                out.extend(b.iter().map(|f| (b.peer, f.to_vec())));
                pool.put(b);
            }
            Err(_) => break,
        }
    }
    out
}

/// The batch invariant every consumer relies on.
fn check_batch(b: &Batch) {
    for &(s, e) in &b.frames {
        assert!(s < e && e as usize <= b.data.len(), "bad frame range");
    }
}

fn tcp(settings: TcpSettings, queue: usize) -> Harness {
    let (tx, rx) = crossbeam_channel::bounded(queue);
    let pool = Pool::new(16);
    let metrics = Arc::new(InputMetrics::new("tcp-test"));
    let listener =
        spawn_tcp(settings, 0, metrics.clone(), tx, pool.clone()).expect("bind loopback");
    Harness {
        listener: Some(listener),
        rx,
        pool,
        metrics,
    }
}

fn tcp_settings() -> TcpSettings {
    TcpSettings {
        addr: LOOPBACK.parse().unwrap(),
        ..TcpSettings::default()
    }
}

fn udp(settings: UdpSettings) -> Harness {
    let (tx, rx) = crossbeam_channel::bounded(64);
    let pool = Pool::new(16);
    let metrics = Arc::new(InputMetrics::new("udp-test"));
    let listener =
        spawn_udp(settings, 0, metrics.clone(), tx, pool.clone()).expect("bind loopback");
    Harness {
        listener: Some(listener),
        rx,
        pool,
        metrics,
    }
}

fn udp_settings(max_frame: usize, oversize: Oversize) -> UdpSettings {
    UdpSettings {
        addr: LOOPBACK.parse().unwrap(),
        recv_buffer: 1 << 20,
        max_frame,
        oversize,
        ..UdpSettings::default()
    }
}

/// Waits until `f` holds, for at most `PATIENCE`.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn texts(frames: &[(Option<SocketAddr>, Vec<u8>)]) -> Vec<String> {
    frames
        .iter()
        .map(|(_, f)| String::from_utf8_lossy(f).into_owned())
        .collect()
}

// ---- UDP -----------------------------------------------------------------------------------

#[test]
fn udp_datagrams_trailing_newline_and_oversize_truncate() {
    let mut h = udp(udp_settings(16, Oversize::Truncate));
    let s = UdpSocket::bind(LOOPBACK).unwrap();
    let long = "<13>".to_string() + &"x".repeat(40);
    for d in [
        "<13>one",
        "<13>two\n",
        "<13>three\r\n",
        "\n",
        &long,
        "<13>four\0",
    ] {
        s.send_to(d.as_bytes(), h.addr()).unwrap();
        // Keep order observable: each datagram read before the next is sent.
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = h.frames(5);
    assert_eq!(
        texts(&got),
        ["<13>one", "<13>two", "<13>three", &long[..16], "<13>four"]
    );
    assert_eq!(h.metrics.oversize_truncated.get(), 1);
    assert_eq!(h.metrics.frames.get(), 5);
    h.stop();
}

#[test]
fn udp_datagrams_oversize_dropped_and_counted() {
    let mut h = udp(udp_settings(16, Oversize::Drop));
    let s = UdpSocket::bind(LOOPBACK).unwrap();
    s.send_to(&[b'y'; 100], h.addr()).unwrap();
    s.send_to(b"<13>kept", h.addr()).unwrap();
    let got = h.frames(1);
    assert_eq!(texts(&got), ["<13>kept"]);
    eventually("oversize count", || h.metrics.oversize_dropped.get() == 1);
    h.stop();
}

#[test]
fn udp_stop_drains_socket() {
    let (tx, rx) = crossbeam_channel::bounded(64);
    let pool = Pool::new(4);
    let metrics = Arc::new(InputMetrics::new("udp"));
    let l = spawn_udp(
        udp_settings(1024, Oversize::Truncate),
        0,
        metrics.clone(),
        tx,
        pool,
    )
    .unwrap();
    let s = UdpSocket::bind(LOOPBACK).unwrap();
    for i in 0..200 {
        s.send_to(format!("<13>dgram {i}").as_bytes(), l.local)
            .unwrap();
    }
    l.stop().unwrap();
    let n: usize = rx.iter().map(|b| b.len()).sum();
    let lost = metrics.udp_dropped_kernel.get() + metrics.udp_dropped_queue_full.get();
    assert_eq!(n as u64 + lost, 200, "every datagram delivered or counted");
    assert_eq!(n, 200, "nothing should be lost on an idle loopback");
}

#[test]
fn udp_queue_full_and_kernel_drops_are_counted() {
    const SENT: usize = 500;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let metrics = Arc::new(InputMetrics::new("udp"));
    let settings = UdpSettings {
        // A tiny receive buffer (the kernel rounds it up) and one datagram per batch, with
        // nobody consuming: the queue fills, batches are dropped, the socket overflows.
        recv_buffer: 4096,
        batch_bytes: 1,
        ..udp_settings(1024, Oversize::Truncate)
    };
    let l = spawn_udp(settings, 0, metrics.clone(), tx, Pool::new(4)).unwrap();
    let s = UdpSocket::bind(LOOPBACK).unwrap();
    for i in 0..SENT {
        s.send_to(format!("<13>burst {i:04}").as_bytes(), l.local)
            .unwrap();
    }
    eventually("a queue-full drop", || {
        metrics.udp_dropped_queue_full.get() > 0
    });
    let consumer = consumer(rx);
    l.stop().unwrap();
    let delivered = consumer.join().unwrap();
    let (queue, kernel) = (
        metrics.udp_dropped_queue_full.get() as usize,
        metrics.udp_dropped_kernel.get() as usize,
    );
    assert!(
        kernel > 0,
        "the kernel dropped nothing: buffer not small enough?"
    );
    assert_eq!(
        delivered.len() + queue + kernel,
        SENT,
        "every datagram is delivered or counted (delivered {}, queue {queue}, kernel {kernel})",
        delivered.len()
    );
}

// ---- TCP framing ---------------------------------------------------------------------------

fn send_tcp(addr: SocketAddr, data: &[u8]) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(data).unwrap();
}

#[test]
fn tcp_newline_framing() {
    let mut h = tcp(tcp_settings(), 8);
    send_tcp(h.addr(), b"<13>a\n<13>b\r\n<13>c\0<13>unterminated");
    let got = h.frames(4);
    assert_eq!(texts(&got), ["<13>a", "<13>b", "<13>c", "<13>unterminated"]);
    assert!(got.iter().all(|(p, _)| p.is_some()), "peer recorded");
    h.stop();
}

#[test]
fn tcp_octet_counting() {
    let mut h = tcp(tcp_settings(), 8);
    send_tcp(h.addr(), b"6 <13>a\n7 <13>b c12 <13>line\n x");
    let got = h.frames(3);
    assert_eq!(texts(&got), ["<13>a", "<13>b c", "<13>line\n x"]);
    eventually("octet count", || h.metrics.octet_counted.get() == 3);
    h.stop();
}

#[test]
fn tcp_mixed_framing_on_one_connection() {
    let mut h = tcp(tcp_settings(), 8);
    let mut c = TcpStream::connect(h.addr()).unwrap();
    // Written in pieces so frames straddle reads.
    for piece in [
        &b"11 <13>1 hel"[..],
        b"lo<14>plain\n \0",
        b"2024-01-01T00:00:00Z h a: x\r\n9 <15>oct\n",
        b"\n5 abcde",
    ] {
        c.write_all(piece).unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(c);
    let got = h.frames(5);
    assert_eq!(
        texts(&got),
        [
            "<13>1 hello",
            "<14>plain",
            "2024-01-01T00:00:00Z h a: x",
            "<15>oct",
            "abcde"
        ]
    );
    h.stop();
}

#[test]
fn tcp_oversize_counted() {
    let mut settings = tcp_settings();
    settings.framing = FramingConfig {
        max_frame: 32,
        oversize: Oversize::Drop,
        ..FramingConfig::default()
    };
    let mut h = tcp(settings, 8);
    let mut data = Vec::new();
    data.extend_from_slice(b"<13>before\n");
    data.extend_from_slice(&[b'z'; 5000]);
    data.extend_from_slice(b"\n100 ");
    data.extend_from_slice(&[b'q'; 100]);
    data.extend_from_slice(b"<13>after\n");
    send_tcp(h.addr(), &data);
    let got = h.frames(2);
    assert_eq!(texts(&got), ["<13>before", "<13>after"]);
    eventually("oversize count", || h.metrics.oversize_dropped.get() == 2);
    h.stop();
}

#[test]
fn tcp_frames_up_to_max_through_the_smallest_buffer() {
    const MAX: usize = 4096;
    let mut settings = tcp_settings();
    settings.framing.max_frame = MAX;
    settings.conn_buffer = 0; // the reader raises it to the smallest that works
    let mut h = tcp(settings, 4);
    let mut expected = Vec::new();
    let mut data = Vec::new();
    let mut x: u64 = 0x1234_5678;
    for i in 0..3000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let len = 20 + (x >> 33) as usize % (MAX - 19);
        let mut msg = format!("<13>frame {i:05} ").into_bytes();
        msg.resize(len, b'a' + (i % 26) as u8);
        if i % 3 == 0 {
            data.extend_from_slice(&msg);
            data.extend_from_slice(b"\r\n");
        } else {
            data.extend_from_slice(format!("{len} ").as_bytes());
            data.extend_from_slice(&msg);
        }
        expected.push(msg);
    }
    let addr = h.addr();
    let sender = std::thread::spawn(move || send_tcp(addr, &data));
    let got = h.frames(expected.len());
    sender.join().unwrap();
    assert_eq!(got.len(), expected.len());
    for (i, ((_, g), e)) in got.iter().zip(&expected).enumerate() {
        assert!(g == e, "frame {i} differs");
    }
    assert_eq!(h.metrics.oversize_truncated.get(), 0);
    h.stop();
}

#[test]
fn tcp_many_connections_keep_order() {
    const CONNS: usize = 50;
    const PER: usize = 400;
    let mut h = tcp(tcp_settings(), 16);
    let addr = h.addr();
    let senders: Vec<_> = (0..CONNS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let mut data = Vec::new();
                for i in 0..PER {
                    // Alternate the framings on every connection.
                    let msg = format!("<13>conn {c} seq {i}");
                    if i % 2 == 0 {
                        data.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
                    } else {
                        data.extend_from_slice(msg.as_bytes());
                        data.push(b'\n');
                    }
                    if data.len() > 1000 {
                        s.write_all(&data).unwrap();
                        data.clear();
                    }
                }
                s.write_all(&data).unwrap();
            })
        })
        .collect();
    let got = h.frames(CONNS * PER);
    for s in senders {
        s.join().unwrap();
    }
    assert_eq!(got.len(), CONNS * PER);
    let mut next: HashMap<usize, usize> = HashMap::new();
    let mut peers: HashMap<usize, SocketAddr> = HashMap::new();
    for (peer, f) in &got {
        let t = String::from_utf8(f.clone()).unwrap();
        let mut w = t.split(' ');
        let (_, c, _, i) = (w.next(), w.next(), w.next(), w.next());
        let c: usize = c.unwrap().parse().unwrap();
        let i: usize = i.unwrap().parse().unwrap();
        let want = next.entry(c).or_insert(0);
        assert_eq!(i, *want, "connection {c} out of order");
        *want += 1;
        let p = peers.entry(c).or_insert(peer.unwrap());
        assert_eq!(Some(*p), *peer, "one connection, one peer");
    }
    assert_eq!(h.metrics.connections_accepted.get(), CONNS as u64);
    eventually("connections closed", || {
        h.metrics.connections_open.get() == 0
    });
    assert_eq!(h.metrics.frames.get(), (CONNS * PER) as u64);
    h.stop();
}

#[test]
fn tcp_max_connections_enforced() {
    let mut settings = tcp_settings();
    settings.max_connections = 2;
    let mut h = tcp(settings, 8);
    let mut a = TcpStream::connect(h.addr()).unwrap();
    let mut b = TcpStream::connect(h.addr()).unwrap();
    a.write_all(b"<13>from a\n").unwrap();
    b.write_all(b"<13>from b\n").unwrap();
    assert_eq!(h.frames(2).len(), 2);
    let mut c = TcpStream::connect(h.addr()).unwrap();
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    // The third connection is closed by the server: reading sees EOF or a reset.
    let mut buf = [0u8; 16];
    let r = c.read(&mut buf);
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "third connection not closed: {r:?}"
    );
    let _ = c.write_all(b"<13>from c\n");
    eventually("rejection counted", || {
        h.metrics.connections_rejected.get() == 1
    });
    assert_eq!(h.metrics.connections_accepted.get(), 2);
    // The first two still work, and closing one frees a place.
    a.write_all(b"<13>again a\n").unwrap();
    assert_eq!(texts(&h.frames(1)), ["<13>again a"]);
    drop(a);
    eventually("a closed", || h.metrics.connections_open.get() == 1);
    let mut d = TcpStream::connect(h.addr()).unwrap();
    d.write_all(b"<13>from d\n").unwrap();
    assert_eq!(texts(&h.frames(1)), ["<13>from d"]);
    assert!(h.frames_within(Duration::from_millis(100)).is_empty());
    drop((b, d));
    h.stop();
}

#[test]
fn tcp_backpressure_loses_nothing() {
    const FRAMES: usize = 200_000;
    let mut settings = tcp_settings();
    // Small batches so that many are needed, and a queue of one.
    settings.framing.max_frame = 1024;
    settings.conn_buffer = 8 * 1024;
    let mut h = tcp(settings, 1);
    let addr = h.addr();
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut data = Vec::with_capacity(1 << 16);
        let started = Instant::now();
        for i in 0..FRAMES {
            // ~70 bytes a frame: 14 MB in all, more than loopback socket buffers hold.
            writeln!(
                data,
                "<13>Jan  1 00:00:00 host app[1]: backpressure frame {i:08} end"
            )
            .unwrap();
            if data.len() >= 1 << 15 {
                s.write_all(&data).unwrap();
                data.clear();
            }
        }
        s.write_all(&data).unwrap();
        started.elapsed()
    });
    let mut seen = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < FRAMES {
        let left = deadline.saturating_duration_since(Instant::now());
        let b = h.rx.recv_timeout(left).expect("frames keep coming");
        check_batch(&b);
        for f in b.iter() {
            let t = std::str::from_utf8(f).unwrap();
            let n: usize = t.rsplit(' ').nth(1).unwrap().parse().unwrap();
            assert_eq!(n, seen, "frame lost or reordered");
            seen += 1;
        }
        h.pool.put(b);
        // The slow consumer.
        if seen.is_multiple_of(8) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    sender.join().unwrap();
    assert_eq!(seen, FRAMES);
    assert!(
        h.metrics.backpressure_pauses.get() > 0,
        "the queue never filled: the test did not exercise backpressure"
    );
    h.stop();
}

/// Runs `consume` on a thread that takes batches until every sender is gone.
fn consumer(rx: Receiver<Batch>) -> std::thread::JoinHandle<Vec<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        for b in rx.iter() {
            check_batch(&b);
            out.extend(b.iter().map(<[u8]>::to_vec));
        }
        out
    })
}

fn spawn_with_consumer(
    settings: TcpSettings,
) -> (
    Listener,
    std::thread::JoinHandle<Vec<Vec<u8>>>,
    Arc<InputMetrics>,
) {
    let (tx, rx): (Sender<Batch>, _) = crossbeam_channel::bounded(2);
    let metrics = Arc::new(InputMetrics::new("drain"));
    let l = spawn_tcp(settings, 0, metrics.clone(), tx, Pool::new(4)).unwrap();
    (l, consumer(rx), metrics)
}

#[test]
fn tcp_stop_drains_established_connections() {
    let (l, cons, _m) = spawn_with_consumer(tcp_settings());
    let mut conns: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(l.local).unwrap())
        .collect();
    // Let the listener accept them, then send and stop at once.
    std::thread::sleep(Duration::from_millis(100));
    for (c, s) in conns.iter_mut().enumerate() {
        for i in 0..100 {
            writeln!(s, "<13>conn {c} frame {i}").unwrap();
        }
        write!(s, "<13>conn {c} unterminated tail").unwrap();
    }
    l.stop().unwrap();
    let got = cons.join().unwrap();
    assert_eq!(got.len(), 5 * 101);
}

#[test]
fn tcp_stop_drains_connections_not_yet_accepted() {
    let (l, cons, m) = spawn_with_consumer(tcp_settings());
    // Connect, send and stop without giving the listener a chance to accept: the kernel
    // completed the handshake and acknowledged the data, so it must not be lost.
    let mut conns = Vec::new();
    for c in 0..5 {
        let mut s = TcpStream::connect(l.local).unwrap();
        for i in 0..20 {
            writeln!(s, "<13>conn {c} frame {i}").unwrap();
        }
        conns.push(s);
    }
    l.stop().unwrap();
    let got = cons.join().unwrap();
    assert_eq!(got.len(), 5 * 20);
    assert_eq!(m.connections_open.get(), 0);
}

// ---- TLS -----------------------------------------------------------------------------------

struct Pki {
    dir: PathBuf,
    ca: rustls_pki_types::CertificateDer<'static>,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A client certificate from a CA the server does not trust.
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pki(name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let dir = std::env::temp_dir().join(format!("kuzet-tls-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    let leaf = |issuer: &Issuer<'_, KeyPair>, names: Vec<String>, eku, stem: &str| {
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, stem);
        p.extended_key_usages = vec![eku];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let (ca_cert, issuer) = ca("kuzet test CA");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    leaf(
        &issuer,
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        "server",
    );
    let (client_cert, client_key) = leaf(
        &issuer,
        vec!["client.test".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        "client",
    );
    let (_, rogue_issuer) = ca("rogue CA");
    let (rogue_cert, rogue_key) = leaf(
        &rogue_issuer,
        vec!["rogue.test".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
        "rogue",
    );
    Pki {
        ca: ca_cert.der().clone(),
        dir,
        client_cert,
        client_key,
        rogue_cert,
        rogue_key,
    }
}

fn tls_harness(p: &Pki, auth: ClientAuth) -> Harness {
    let cfg = server_config(&TlsSettings {
        cert: p.dir.join("server.pem"),
        key: p.dir.join("server.key"),
        client_ca: (auth != ClientAuth::None).then(|| p.dir.join("ca.pem")),
        client_auth: auth,
    })
    .expect("server config");
    let mut s = tcp_settings();
    s.tls = Some(cfg);
    tcp(s, 8)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_client(p: &Pki, addr: SocketAddr, cert: Option<(&PathBuf, &PathBuf)>) -> TlsStream {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca.clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match cert {
        None => b.with_no_client_auth(),
        Some((c, k)) => {
            let chain = CertificateDer::pem_file_iter(c)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(k).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
    };
    let conn =
        rustls::ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Sends `n` octet-counted frames and closes cleanly; returns the first error, if any.
fn tls_send(mut s: TlsStream, tag: &str, n: usize) -> std::io::Result<()> {
    let mut data = Vec::new();
    for i in 0..n {
        let msg = format!("<13>1 2024-01-01T00:00:00Z h {tag} - - - tls frame {i}");
        data.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
    }
    s.write_all(&data)?;
    s.flush()?;
    s.conn.send_close_notify();
    s.flush()?;
    // Wait for the server to close, so that a rejection after the handshake shows here.
    let mut sink = Vec::new();
    s.read_to_end(&mut sink).map(|_| ())
}

#[test]
fn tls_octet_frames_no_client_auth() {
    let p = pki("none");
    let mut h = tls_harness(&p, ClientAuth::None);
    let c = tls_client(&p, h.addr(), None);
    let t = std::thread::spawn(move || tls_send(c, "anon", 500));
    let got = h.frames(500);
    // The server answers close_notify with its own: the client sees a clean end.
    t.join().unwrap().expect("clean TLS close");
    assert_eq!(got.len(), 500);
    for (i, (_, f)) in got.iter().enumerate() {
        assert!(f.ends_with(format!("tls frame {i}").as_bytes()));
    }
    assert_eq!(h.metrics.tls_handshake_failures.get(), 0);
    h.stop();
}

#[test]
fn tls_client_auth_required() {
    let p = pki("required");
    let mut h = tls_harness(&p, ClientAuth::Required);
    // No certificate: refused, counted, nothing delivered.
    let anon = tls_client(&p, h.addr(), None);
    assert!(
        tls_send(anon, "anon", 3).is_err(),
        "anonymous client accepted"
    );
    eventually("anonymous rejection counted", || {
        h.metrics.tls_handshake_failures.get() == 1
    });
    // A certificate from another CA: refused too.
    let rogue = tls_client(&p, h.addr(), Some((&p.rogue_cert, &p.rogue_key)));
    assert!(
        tls_send(rogue, "rogue", 3).is_err(),
        "untrusted client accepted"
    );
    eventually("rogue rejection counted", || {
        h.metrics.tls_handshake_failures.get() == 2
    });
    // A certificate signed by the CA: accepted.
    let good = tls_client(&p, h.addr(), Some((&p.client_cert, &p.client_key)));
    tls_send(good, "good", 10).expect("client with certificate accepted");
    let got = h.frames(10);
    assert_eq!(got.len(), 10);
    assert!(
        got.iter()
            .all(|(_, f)| f.windows(6).any(|w| w == b" good "))
    );
    assert!(h.frames_within(Duration::from_millis(100)).is_empty());
    h.stop();
}

#[test]
fn tls_client_auth_optional() {
    let p = pki("optional");
    let mut h = tls_harness(&p, ClientAuth::Optional);
    let anon = tls_client(&p, h.addr(), None);
    tls_send(anon, "anon", 5).expect("anonymous client accepted");
    let good = tls_client(&p, h.addr(), Some((&p.client_cert, &p.client_key)));
    tls_send(good, "good", 5).expect("client with certificate accepted");
    let got = h.frames(10);
    assert_eq!(got.len(), 10);
    assert_eq!(h.metrics.tls_handshake_failures.get(), 0);
    h.stop();
}

// ---- the binary ----------------------------------------------------------------------------

#[test]
fn binary_parse_listen_tcp_prints_events() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kuzet"))
        .args(["parse", "--listen", "tcp://127.0.0.1:0", "--count", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("kuzet: listening on tcp://")
        .unwrap_or_else(|| panic!("unexpected first stderr line {line:?}"))
        .parse()
        .unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"<34>Oct 11 22:14:15 mymachine su[77]: 'su root' failed\n\
          76 <165>1 2003-10-11T22:14:15.003Z host.example evntslog - ID47 [ex@1 a=\"b\"] hi\
          {\"EventID\":4625,\"IpAddress\":\"10.0.0.1\"}\n",
    )
    .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{out}");
    assert_eq!(events[0]["hostname"], "mymachine");
    assert_eq!(events[0]["appname"], "su");
    assert_eq!(events[0]["procid"], "77");
    assert_eq!(events[0]["message"], "'su root' failed");
    assert_eq!(events[1]["hostname"], "host.example");
    assert_eq!(events[1]["msgid"], "ID47");
    assert_eq!(events[1]["ex@1.a"], "b");
    assert_eq!(events[1]["message"], "hi");
    assert_eq!(events[2]["EventID"], 4625);
    assert_eq!(events[2]["IpAddress"], "10.0.0.1");
}
