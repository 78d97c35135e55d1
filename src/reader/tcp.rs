//! TCP and TLS syslog listeners: many connections on one mio event loop.
//!
//! Each connection owns a [`Framer`] and a read buffer of `conn_buffer` bytes, which is the
//! [`Batch`] that will carry its frames on: reads land in it, the framer marks the frames,
//! the batch goes downstream and only the incomplete tail is copied into the next buffer.
//!
//! Backpressure: a batch that the downstream queue will not take stays with its connection
//! and the connection is not read again until the batch is accepted. The kernel's receive
//! buffer then fills, the TCP window closes and the sender slows down: nothing is dropped
//! on TCP. Other connections keep flowing.
//!
//! Bounds: `max_connections` (further connections are accepted and closed at once, counted),
//! `conn_buffer` per connection, `max_frame` per frame (see `framing.rs`).
//!
//! Shutdown: when `stop` is set, the connections waiting in the listen backlog are accepted
//! (the kernel acknowledged their data), then every connection's socket is read until empty,
//! the tails are framed as final frames and everything is handed on, waiting for queue
//! space, before the thread exits.
//!
//! TLS (RFC 5425) connections run rustls over the same socket; their plaintext is framed the
//! same way (RFC 5425 mandates octet counting; the per-frame detection accepts both).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::{Batch, FrameStats, Framer, FramingConfig, Pool};
use crate::event::Timestamp;
use crate::telemetry::InputMetrics;

/// Settings of a TCP or TLS listener.
#[derive(Clone, Debug)]
pub struct TcpSettings {
    pub addr: SocketAddr,
    pub framing: FramingConfig,
    /// Connections open at once; more are refused.
    pub max_connections: usize,
    /// Read buffer per connection, in bytes (at least `max_frame` + 16).
    pub conn_buffer: usize,
    /// When set, connections speak TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            addr: "127.0.0.1:5514".parse().expect("valid"),
            framing: FramingConfig::default(),
            max_connections: 1024,
            conn_buffer: 256 * 1024,
            tls: None,
        }
    }
}

const WAKE: Token = Token(0);
const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    framer: Framer,
    stats: FrameStats,
    /// The buffer being filled: unconsumed tail plus new reads.
    buf: Batch,
    /// A full batch the queue did not take yet; nothing is read while it waits.
    pending: Option<Batch>,
    /// The socket may hold unread data (mio is edge-triggered).
    readable: bool,
    /// The peer closed (or the connection failed): finish and close.
    eof: bool,
    tls: Option<rustls::ServerConnection>,
}

enum Pump {
    /// Waiting for more data.
    Idle,
    /// Waiting for queue space.
    Blocked,
    /// Done: remove the connection.
    Close,
}

/// The TCP reader: a listener and its connections.
pub struct TcpReader {
    s: TcpSettings,
    input: u16,
    metrics: Arc<InputMetrics>,
    out: Sender<Batch>,
    pool: Pool,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    cap: usize,
    ranges: Vec<(usize, usize)>,
}

/// Binds a listener socket (so the caller learns bind errors and the port before the loop).
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

impl TcpReader {
    pub fn new(
        s: TcpSettings,
        input: u16,
        metrics: Arc<InputMetrics>,
        out: Sender<Batch>,
        pool: Pool,
    ) -> TcpReader {
        let min = Framer::new(s.framing).min_buffer() + 1024;
        let cap = s.conn_buffer.max(min);
        TcpReader {
            s,
            input,
            metrics,
            out,
            pool,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            cap,
            ranges: Vec::new(),
        }
    }

    /// Runs until `stop` is set (and the poll's waker is woken), then drains and returns.
    pub fn run(
        mut self,
        listener: std::net::TcpListener,
        mut poll: Poll,
        stop: Arc<AtomicBool>,
    ) -> io::Result<()> {
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        let mut blocked: Vec<usize> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let timeout = if blocked.is_empty() {
                Duration::from_millis(250)
            } else {
                Duration::from_millis(2)
            };
            match poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKE => {}
                    LISTENER => self.accept(&listener, &poll)?,
                    Token(t) => {
                        let idx = t - FIRST_CONN;
                        if let Some(Some(c)) = self.conns.get_mut(idx) {
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                c.readable = true;
                            }
                            if ev.is_writable() {
                                flush_tls(c);
                            }
                        }
                        if !blocked.contains(&idx) {
                            self.service(idx, &poll, &mut blocked);
                        }
                    }
                }
            }
            // Retry connections waiting for queue space.
            let waiting = std::mem::take(&mut blocked);
            for idx in waiting {
                self.service(idx, &poll, &mut blocked);
            }
        }
        self.drain(&listener, &poll)
    }

    fn accept(&mut self, listener: &TcpListener, poll: &Poll) -> io::Result<()> {
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.open >= self.s.max_connections {
                        self.metrics.connections_rejected.inc();
                        drop(stream);
                        continue;
                    }
                    let idx = self.free.pop().unwrap_or_else(|| {
                        self.conns.push(None);
                        self.conns.len() - 1
                    });
                    let tls = match &self.s.tls {
                        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
                            Ok(t) => Some(t),
                            Err(_) => {
                                self.metrics.tls_handshake_failures.inc();
                                self.free.push(idx);
                                continue;
                            }
                        },
                        None => None,
                    };
                    let interest = if tls.is_some() {
                        Interest::READABLE | Interest::WRITABLE
                    } else {
                        Interest::READABLE
                    };
                    if poll
                        .registry()
                        .register(&mut stream, Token(FIRST_CONN + idx), interest)
                        .is_err()
                    {
                        // Out of epoll resources: lose this connection, not the listener.
                        self.metrics.read_errors.inc();
                        self.free.push(idx);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    self.conns[idx] = Some(Conn {
                        stream,
                        peer,
                        framer: Framer::new(self.s.framing),
                        stats: FrameStats::default(),
                        buf: self.pool.get(self.cap),
                        pending: None,
                        readable: true,
                        eof: false,
                        tls,
                    });
                    self.open += 1;
                    self.metrics.connections_accepted.inc();
                    self.metrics.connections_open.inc();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Per-connection accept failures (EMFILE, ECONNABORTED) must not stop the loop.
                Err(_) => {
                    self.metrics.read_errors.inc();
                    return Ok(());
                }
            }
        }
    }

    /// Runs a connection until it waits, blocks or closes; bookkeeping for the latter two.
    fn service(&mut self, idx: usize, poll: &Poll, blocked: &mut Vec<usize>) {
        let Some(Some(mut c)) = self.conns.get_mut(idx).map(Option::take) else {
            return;
        };
        match self.pump(&mut c, false) {
            Pump::Idle => self.conns[idx] = Some(c),
            Pump::Blocked => {
                self.conns[idx] = Some(c);
                blocked.push(idx);
            }
            Pump::Close => {
                self.close(c, poll);
                self.free.push(idx);
            }
        }
    }

    /// Ends a connection: a TLS peer is told with `close_notify` (RFC 8446 §6.1: each side
    /// sends one before closing its write side; clients treat its absence as truncation).
    fn close(&mut self, mut c: Conn, poll: &Poll) {
        if let Some(tls) = c.tls.as_mut() {
            tls.send_close_notify();
            // Best effort: the socket is non-blocking and the peer may be gone.
            while tls.wants_write() {
                if tls.write_tls(&mut c.stream).is_err() {
                    break;
                }
            }
        }
        let _ = poll.registry().deregister(&mut c.stream);
        self.metrics.absorb(&mut c.stats);
        self.pool.put(c.buf);
        self.open -= 1;
        self.metrics.connections_open.dec();
    }

    /// Reads, frames and forwards until the socket is empty, the queue is full, or EOF.
    /// With `wait`, a full queue is waited on instead (shutdown drain).
    fn pump(&mut self, c: &mut Conn, wait: bool) -> Pump {
        loop {
            if let Some(b) = c.pending.take() {
                if wait {
                    if self.out.send(b).is_err() {
                        return Pump::Close;
                    }
                } else {
                    match self.out.try_send(b) {
                        Ok(()) => {}
                        Err(TrySendError::Full(b)) => {
                            c.pending = Some(b);
                            return Pump::Blocked;
                        }
                        Err(TrySendError::Disconnected(_)) => return Pump::Close,
                    }
                }
            }
            if c.eof {
                return Pump::Close;
            }
            if !c.readable {
                return Pump::Idle;
            }
            let filled = c.buf.data.len();
            c.buf.data.resize(self.cap, 0);
            match read_some(c, filled) {
                Ok(0) => {
                    c.buf.data.truncate(filled);
                    c.eof = true;
                }
                Ok(n) => {
                    c.buf.data.truncate(filled + n);
                    self.metrics.bytes.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.buf.data.truncate(filled);
                    c.readable = false;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    c.buf.data.truncate(filled);
                    continue;
                }
                Err(e) => {
                    c.buf.data.truncate(filled);
                    if e.kind() == io::ErrorKind::InvalidData {
                        self.metrics.tls_handshake_failures.inc();
                    } else if e.kind() != io::ErrorKind::UnexpectedEof
                        && e.kind() != io::ErrorKind::ConnectionReset
                    {
                        self.metrics.read_errors.inc();
                    }
                    c.eof = true;
                }
            }
            self.frame(c);
        }
    }

    /// Frames the buffer; moves complete frames into a batch that becomes `pending`.
    fn frame(&mut self, c: &mut Conn) {
        self.ranges.clear();
        let consumed = c
            .framer
            .decode(&c.buf.data, c.eof, &mut self.ranges, &mut c.stats);
        if self.ranges.is_empty() {
            c.buf.data.drain(..consumed);
            return;
        }
        let mut next = self.pool.get(self.cap);
        next.data.extend_from_slice(&c.buf.data[consumed..]);
        let mut full = std::mem::replace(&mut c.buf, next);
        full.data.truncate(consumed);
        full.frames.clear();
        full.frames
            .extend(self.ranges.iter().map(|&(s, e)| (s as u32, e as u32)));
        full.received = Timestamp::now();
        full.input = self.input;
        full.peer = Some(c.peer);
        self.metrics.absorb(&mut c.stats);
        match self.out.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => {
                self.metrics.backpressure_pauses.inc();
                c.pending = Some(b);
            }
        }
    }

    /// Shutdown: read every connection dry, frame the tails, hand everything on.
    ///
    /// Connections still in the listen backlog are taken too: the kernel completed their
    /// handshake and acknowledged their data, so the sender believes it delivered.
    fn drain(mut self, listener: &TcpListener, poll: &Poll) -> io::Result<()> {
        self.accept(listener, poll)?;
        for idx in 0..self.conns.len() {
            let Some(mut c) = self.conns[idx].take() else {
                continue;
            };
            c.readable = true;
            loop {
                match self.pump(&mut c, true) {
                    Pump::Close => break,
                    Pump::Blocked => continue,
                    Pump::Idle => {
                        // Socket empty: treat what is buffered as the end of the stream.
                        c.eof = true;
                        self.frame(&mut c);
                    }
                }
            }
            self.close(c, poll);
        }
        Ok(())
    }
}

/// Reads into `c.buf.data[filled..]` from the socket or, for TLS, from rustls.
/// `Ok(0)` is end of stream; `WouldBlock` means nothing more for now.
fn read_some(c: &mut Conn, filled: usize) -> io::Result<usize> {
    let dst = &mut c.buf.data[filled..];
    let Some(tls) = c.tls.as_mut() else {
        return c.stream.read(dst);
    };
    loop {
        match tls.reader().read(dst) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match tls.read_tls(&mut c.stream) {
            Ok(0) => return Ok(0),
            Ok(_) => {
                if let Err(e) = tls.process_new_packets() {
                    // Tell the peer why (alert), then give up on the connection.
                    let _ = tls.write_tls(&mut c.stream);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                while tls.wants_write() {
                    match tls.write_tls(&mut c.stream) {
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes pending TLS records (handshake messages) when the socket accepts them.
fn flush_tls(c: &mut Conn) {
    if let Some(tls) = c.tls.as_mut() {
        while tls.wants_write() {
            match tls.write_tls(&mut c.stream) {
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = c.stream.flush();
    }
}
