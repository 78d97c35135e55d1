//! UDP syslog (RFC 5426): one datagram is one message.
//!
//! The socket's receive buffer (`SO_RCVBUF`) is set from config, because bursts overflow the
//! kernel default silently. Datagrams are read in a burst until the socket is empty and sent
//! on as one batch. Nothing blocks the socket for long: when the downstream queue stays full
//! the batch is dropped and its datagrams counted (`udp_dropped_queue_full`); datagrams the
//! kernel dropped are read from `/proc/net/udp{,6}` once a second (`udp_dropped_kernel`).
//! On stop, the datagrams already in the socket buffer are read and delivered.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};

use super::{Batch, Oversize, Pool};
use crate::event::Timestamp;
use crate::telemetry::InputMetrics;

/// Settings of a UDP listener.
#[derive(Clone, Debug)]
pub struct UdpSettings {
    pub addr: SocketAddr,
    /// Requested `SO_RCVBUF` in bytes (the kernel may cap it at `net.core.rmem_max`).
    pub recv_buffer: usize,
    /// Longest message kept; longer datagrams are truncated or dropped per `oversize`.
    pub max_frame: usize,
    pub oversize: Oversize,
    /// Bytes of datagrams gathered into one batch before it is sent on.
    pub batch_bytes: usize,
}

impl Default for UdpSettings {
    fn default() -> Self {
        UdpSettings {
            addr: "127.0.0.1:5514".parse().expect("valid"),
            recv_buffer: 8 << 20,
            max_frame: 64 * 1024,
            oversize: Oversize::Truncate,
            batch_bytes: 256 * 1024,
        }
    }
}

/// Binds the socket with the configured receive buffer.
pub fn bind(s: &UdpSettings) -> io::Result<StdUdp> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(s.addr),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Failure to enlarge the buffer is not fatal: the kernel caps it, drops get counted.
    let _ = sock.set_recv_buffer_size(s.recv_buffer);
    sock.set_reuse_address(true)?;
    sock.bind(&s.addr.into())?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

const WAKE: Token = Token(0);
const SOCK: Token = Token(1);

/// Most datagrams read in one burst before the batch is handed on and `stop` looked at, so
/// a sender that never lets the socket run empty cannot starve shutdown.
const MAX_BURST: usize = 4096;

/// Runs the listener until `stop` is set and the waker is woken; then reads the socket dry
/// (those datagrams were already received) and hands them on, waiting for queue space.
/// `kernel_base` is the socket's kernel drop count read right after binding: reading it here
/// instead would miss the drops of datagrams sent before this thread got to run.
#[allow(clippy::too_many_arguments)]
pub fn run(
    sock: StdUdp,
    s: &UdpSettings,
    input: u16,
    metrics: Arc<InputMetrics>,
    out: Sender<Batch>,
    pool: Pool,
    stop: Arc<AtomicBool>,
    mut poll: Poll,
    kernel_base: u64,
) -> io::Result<()> {
    let local = sock.local_addr()?;
    let mut sock = UdpSocket::from_std(sock);
    poll.registry()
        .register(&mut sock, SOCK, Interest::READABLE)?;
    let mut events = Events::with_capacity(16);
    let mut dgram = vec![0u8; 65_536];
    let mut batch = pool.get(s.batch_bytes);
    let mut kernel_seen = kernel_base;
    let mut last_proc = Instant::now();
    // mio is edge-triggered: after a burst cut short by `MAX_BURST` the socket still holds
    // data but no new event will say so, so the next poll must not wait.
    let mut more = true;
    while !stop.load(Ordering::Relaxed) {
        let timeout = if more {
            Duration::ZERO
        } else {
            Duration::from_millis(250)
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        more = burst(&sock, &mut dgram, s, &metrics, &mut batch, |b| {
            send(b, input, &out, &pool, &metrics, s.batch_bytes, false)
        })?;
        if !batch.frames.is_empty() {
            batch = send(batch, input, &out, &pool, &metrics, s.batch_bytes, false)?;
        }
        if last_proc.elapsed() >= Duration::from_secs(1) {
            last_proc = Instant::now();
            count_kernel_drops(local, &mut kernel_seen, &metrics);
        }
    }
    // Shutdown: what is in the socket buffer was received; deliver it (bounded, since
    // senders may keep sending while we drain).
    for _ in 0..64 {
        let more = burst(&sock, &mut dgram, s, &metrics, &mut batch, |b| {
            send(b, input, &out, &pool, &metrics, s.batch_bytes, true)
        })?;
        if !batch.frames.is_empty() {
            batch = send(batch, input, &out, &pool, &metrics, s.batch_bytes, true)?;
        }
        if !more {
            break;
        }
    }
    count_kernel_drops(local, &mut kernel_seen, &metrics);
    Ok(())
}

/// Adds the kernel drops since `seen` to the metrics.
fn count_kernel_drops(local: SocketAddr, seen: &mut u64, metrics: &InputMetrics) {
    if let Some(k) = kernel_drops(local)
        && k > *seen
    {
        metrics.udp_dropped_kernel.add(k - *seen);
        *seen = k;
    }
}

/// Reads up to [`MAX_BURST`] datagrams into `batch`, handing it to `flush` whenever it holds
/// `batch_bytes`. Returns true when the burst limit, not an empty socket, ended it.
fn burst(
    sock: &UdpSocket,
    dgram: &mut [u8],
    s: &UdpSettings,
    metrics: &InputMetrics,
    batch: &mut Batch,
    mut flush: impl FnMut(Batch) -> io::Result<Batch>,
) -> io::Result<bool> {
    for _ in 0..MAX_BURST {
        match sock.recv_from(dgram) {
            Ok((n, _peer)) => {
                metrics.bytes.add(n as u64);
                let mut d = &dgram[..n];
                while let [rest @ .., b'\n' | b'\r' | 0] = d {
                    d = rest;
                }
                if d.is_empty() {
                    continue;
                }
                if d.len() > s.max_frame {
                    match s.oversize {
                        Oversize::Truncate => {
                            metrics.oversize_truncated.inc();
                            d = &d[..s.max_frame];
                        }
                        Oversize::Drop => {
                            metrics.oversize_dropped.inc();
                            continue;
                        }
                    }
                }
                if batch.frames.is_empty() {
                    batch.received = Timestamp::now();
                }
                let start = batch.data.len() as u32;
                batch.data.extend_from_slice(d);
                batch.frames.push((start, batch.data.len() as u32));
                metrics.frames.inc();
                if batch.data.len() >= s.batch_bytes {
                    *batch = flush(std::mem::take(batch))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                metrics.read_errors.inc();
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Sends a batch on, waiting briefly when the queue is full, dropping (and counting) it when
/// the queue stays full; with `wait` (shutdown) waiting as long as it takes. Returns the
/// next batch to fill.
fn send(
    mut batch: Batch,
    input: u16,
    out: &Sender<Batch>,
    pool: &Pool,
    metrics: &InputMetrics,
    cap: usize,
    wait: bool,
) -> io::Result<Batch> {
    batch.input = input;
    if wait {
        return match out.send(batch) {
            Ok(()) => Ok(pool.get(cap)),
            Err(_) => Err(io::Error::other("pipeline closed")),
        };
    }
    let batch = match out.try_send(batch) {
        Ok(()) => return Ok(pool.get(cap)),
        Err(TrySendError::Full(b)) => b,
        Err(TrySendError::Disconnected(_)) => return Err(io::Error::other("pipeline closed")),
    };
    match out.send_timeout(batch, Duration::from_millis(100)) {
        Ok(()) => Ok(pool.get(cap)),
        Err(SendTimeoutError::Timeout(mut b)) => {
            metrics.udp_dropped_queue_full.add(b.frames.len() as u64);
            b.clear();
            Ok(b)
        }
        Err(SendTimeoutError::Disconnected(_)) => Err(io::Error::other("pipeline closed")),
    }
}

/// The kernel's drop count for the UDP socket bound to `local` (Linux `/proc/net/udp`).
pub fn kernel_drops(local: SocketAddr) -> Option<u64> {
    let (file, hex) = match local {
        SocketAddr::V4(a) => (
            "/proc/net/udp",
            format!(
                "{:08X}:{:04X}",
                u32::from_le_bytes(a.ip().octets()),
                a.port()
            ),
        ),
        SocketAddr::V6(a) => {
            let o = a.ip().octets();
            let mut h = String::new();
            for w in o.chunks(4) {
                h.push_str(&format!(
                    "{:08X}",
                    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
                ));
            }
            ("/proc/net/udp6", format!("{h}:{:04X}", a.port()))
        }
    };
    let text = std::fs::read_to_string(file).ok()?;
    let mut total = None;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(1) == Some(&hex.as_str()) {
            let d: u64 = cols.last()?.parse().ok()?;
            *total.get_or_insert(0) += d;
        }
    }
    total
}

/// A waker for a reader's poll, so `stop` is noticed at once.
pub fn waker(poll: &Poll) -> io::Result<Arc<Waker>> {
    Ok(Arc::new(Waker::new(poll.registry(), WAKE)?))
}
