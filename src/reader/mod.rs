//! Stage 1, bytes in: files and stdin, UDP, TCP and TLS listeners. Readers never parse; they
//! cut the input into frames and hand them on in [`Batch`]es.
//!
//! A batch is one read buffer plus the ranges of the frames in it, so a frame is never copied
//! on its way from the socket to the parser (only an incomplete tail moves to the next
//! buffer). Batches are recycled: whoever consumes one hands it back for the next read, which
//! keeps memory bounded by the number of batches in flight.
//!
//! - `framing.rs`: per-frame RFC 6587 framing, bounded frames.
//! - `file.rs`: files and stdin in large reads.
//! - `udp.rs`: one datagram = one frame (RFC 5426).
//! - `tcp.rs`: many connections on one mio loop, TLS (RFC 5425) included, with backpressure.

pub mod file;
pub mod framing;
pub mod tcp;
pub mod tls;
pub mod udp;

use std::net::SocketAddr;

use crate::event::Timestamp;

pub use framing::{FrameStats, Framer, Framing, FramingConfig, Oversize};

/// Frames read together: one buffer and the frames' byte ranges in it.
#[derive(Debug, Default)]
pub struct Batch {
    pub data: Vec<u8>,
    /// `(start, end)` into `data`; invariant: `start < end <= data.len()`.
    pub frames: Vec<(u32, u32)>,
    /// When the read happened.
    pub received: Timestamp,
    /// Index of the input (listener or file) in the caller's list.
    pub input: u16,
    /// The sender, for connection-oriented inputs.
    pub peer: Option<SocketAddr>,
    /// For files: the offset in the stream of `data[0]` (to resume after a checkpoint).
    pub offset: u64,
}

impl Batch {
    pub fn with_capacity(bytes: usize) -> Batch {
        Batch {
            data: Vec::with_capacity(bytes),
            frames: Vec::with_capacity(bytes / 128),
            ..Batch::default()
        }
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
        self.peer = None;
    }

    pub fn frame(&self, i: usize) -> &[u8] {
        let (s, e) = self.frames[i];
        &self.data[s as usize..e as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.frames
            .iter()
            .map(|&(s, e)| &self.data[s as usize..e as usize])
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Recycled batches: consumers hand batches back, readers take them before allocating.
/// Bounded, so at most `capacity` idle batches are kept.
#[derive(Clone, Debug)]
pub struct Pool {
    tx: crossbeam_channel::Sender<Batch>,
    rx: crossbeam_channel::Receiver<Batch>,
}

impl Pool {
    pub fn new(capacity: usize) -> Pool {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        Pool { tx, rx }
    }

    /// An empty batch with room for `bytes`.
    pub fn get(&self, bytes: usize) -> Batch {
        match self.rx.try_recv() {
            Ok(mut b) => {
                b.clear();
                if b.data.capacity() < bytes {
                    b.data.reserve(bytes - b.data.len());
                }
                b
            }
            Err(_) => Batch::with_capacity(bytes),
        }
    }

    /// Returns a batch for reuse (dropped when the pool is full).
    pub fn put(&self, mut b: Batch) {
        b.clear();
        let _ = self.tx.try_send(b);
    }
}

/// Transport of a network listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// A listener address as written on the command line: `udp://`, `tcp://` or `tls://`
/// followed by `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl Transport {
    /// Splits `udp://host:port` (or `tcp://`, `tls://`) into the transport and the rest.
    pub fn split(s: &str) -> Result<(Transport, &str), String> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| {
            format!("{s:?}: expected udp://, tcp:// or tls:// followed by host:port")
        })?;
        let transport = match scheme {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            other => {
                return Err(format!(
                    "{s:?}: unknown transport {other:?} (udp, tcp or tls)"
                ));
            }
        };
        Ok((transport, rest))
    }

    /// `udp`, `tcp` or `tls`: the scheme [`Transport::split`] reads.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl ListenSpec {
    pub fn parse(s: &str) -> Result<ListenSpec, String> {
        let (transport, rest) = Transport::split(s)?;
        use std::net::ToSocketAddrs;
        let addr = rest
            .to_socket_addrs()
            .map_err(|e| format!("{s:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{s:?}: address resolves to nothing"))?;
        Ok(ListenSpec { transport, addr })
    }
}

impl std::fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.transport.scheme(), self.addr)
    }
}

/// A running listener thread.
pub struct Listener {
    /// The bound address (useful with port 0).
    pub local: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    waker: std::sync::Arc<mio::Waker>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Listener {
    /// Asks the thread to stop (TCP drains its connections first) and waits for it.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.signal_stop();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("listener thread panicked")),
            None => Ok(()),
        }
    }

    /// Asks the thread to stop without waiting.
    pub fn signal_stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.waker.wake();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// Binds and starts a TCP or TLS listener thread.
pub fn spawn_tcp(
    settings: tcp::TcpSettings,
    input: u16,
    metrics: std::sync::Arc<crate::telemetry::InputMetrics>,
    out: crossbeam_channel::Sender<Batch>,
    pool: Pool,
) -> std::io::Result<Listener> {
    let l = tcp::bind(settings.addr)?;
    let local = l.local_addr()?;
    let poll = mio::Poll::new()?;
    let waker = udp::waker(&poll)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("kuzet-tcp-{local}"))
        .spawn(move || tcp::TcpReader::new(settings, input, metrics, out, pool).run(l, poll, st))?;
    Ok(Listener {
        local,
        stop,
        waker,
        thread: Some(thread),
    })
}

/// Binds and starts a UDP listener thread.
pub fn spawn_udp(
    settings: udp::UdpSettings,
    input: u16,
    metrics: std::sync::Arc<crate::telemetry::InputMetrics>,
    out: crossbeam_channel::Sender<Batch>,
    pool: Pool,
) -> std::io::Result<Listener> {
    let sock = udp::bind(&settings)?;
    let local = sock.local_addr()?;
    let kernel_base = udp::kernel_drops(local).unwrap_or(0);
    let poll = mio::Poll::new()?;
    let waker = udp::waker(&poll)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("kuzet-udp-{local}"))
        .spawn(move || {
            udp::run(
                sock,
                &settings,
                input,
                metrics,
                out,
                pool,
                st,
                poll,
                kernel_base,
            )
        })?;
    Ok(Listener {
        local,
        stop,
        waker,
        thread: Some(thread),
    })
}
