//! The syslog forward sink: each alert as one RFC 5424 message to a SIEM or relay, over UDP
//! (one datagram per message, RFC 5426), TCP (octet-counted framing, RFC 6587 §3.4.1) or TLS
//! (RFC 5425, the same framing inside a rustls session).
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME kuzet PROCID MSGID STRUCTURED-DATA SP MSG
//! <163>1 2026-11-25T10:00:09.123456Z web01 kuzet 4242 event_count [kuzet@32473 id="…" …] {"schema":"kuzet.alert/1",…}
//! ```
//!
//! * PRI: the configured facility (default `local4`) × 8 + a severity from the rule's level
//!   (critical → crit 2, high → err 3, medium → warning 4, low → notice 5, informational or
//!   none → info 6; RFC 5424 §6.2.1).
//! * TIMESTAMP is the alert's `detected_at`, cut to microseconds (§6.2.3 allows six digits).
//!   HOSTNAME is this machine's name, APP-NAME `kuzet`, PROCID the daemon's pid, MSGID the
//!   alert type (`detection`, `event_count`, …).
//! * `format = "json"`: STRUCTURED-DATA is `-` and MSG is the `kuzet.alert/1` JSON.
//!   `format = "sd"`: also a `[kuzet@32473 …]` element with `id`, `rule`, `title`, `level`,
//!   `count` and `revision`, values escaped as §6.3.3 says (`"`, `\` and `]` get a backslash),
//!   so a receiver can route on them without parsing JSON. 32473 is the private enterprise
//!   number RFC 5612 reserves for documentation; kuzet has none of its own.
//! * MSG carries no BOM: §6.4 asks for one before UTF-8 text, but the JSON parsers of the
//!   receivers (rsyslog's mmjsonparse, syslog-ng's json-parser, most SIEM pipelines) take it
//!   as garbage before the `{`.
//!
//! Connections are made lazily, on the first write after start or after a failure, and the
//! host name is resolved then (a SIEM that moves is found again). A failed send drops the
//! connection and returns the error: the pipeline retries the alert with backoff, and the next
//! attempt reconnects. TCP has no acknowledgement, so before each write the sink checks
//! whether the receiver has closed its side (a restarted receiver leaves a dead connection
//! whose first write would otherwise vanish) and reconnects if so; an alert written in the
//! instant a receiver dies can still be lost, as with every plain-syslog sender. UDP loses
//! whatever is sent while nobody listens; a datagram larger than 65,507 bytes is made to fit by
//! leaving out evidence events from the end.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

use super::Sink;
use super::alert::AlertRecord;
use crate::config::Target;
use crate::event::Timestamp;
use crate::reader::Transport;
use crate::sigma::Level;

/// The STRUCTURED-DATA id of the `sd` format (`name@PEN`, RFC 5424 §7.2.2).
pub const SD_ID: &str = "kuzet@32473";

/// The largest UDP payload over IPv4 (65,535 − 8 UDP − 20 IP header bytes).
pub const UDP_MAX: usize = 65_507;

/// Facility names (RFC 5424 §6.2.1, table 1), in code order.
pub const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// The code of a facility name (`local4` → 20).
pub fn facility_code(name: &str) -> Option<u8> {
    FACILITIES.iter().position(|f| *f == name).map(|i| i as u8)
}

/// The syslog severity of an alert of this level (RFC 5424 §6.2.1, table 2).
pub fn severity(level: Option<Level>) -> u8 {
    match level {
        Some(Level::Critical) => 2,
        Some(Level::High) => 3,
        Some(Level::Medium) => 4,
        Some(Level::Low) => 5,
        Some(Level::Informational) | None => 6,
    }
}

/// What the message carries besides the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogFormat {
    /// STRUCTURED-DATA `-`, MSG the alert JSON.
    Json,
    /// A `[kuzet@32473 …]` element, then the alert JSON.
    Sd,
}

impl SyslogFormat {
    pub fn parse(s: &str) -> Option<SyslogFormat> {
        match s {
            "json" => Some(SyslogFormat::Json),
            "sd" => Some(SyslogFormat::Sd),
            _ => None,
        }
    }
}

/// The fixed parts of every message this sink sends.
#[derive(Clone, Debug)]
pub struct Header {
    /// Facility code, 0..=23.
    pub facility: u8,
    /// PRINTUSASCII, at most 255 bytes, or `-`.
    pub hostname: String,
    /// PRINTUSASCII, at most 128 bytes, or `-`.
    pub procid: String,
    pub format: SyslogFormat,
}

/// `s` as an RFC 5424 header token: printable US-ASCII only (others become `_`), at most
/// `max` bytes, `-` (NILVALUE) when empty.
fn token(out: &mut Vec<u8>, s: &str, max: usize) {
    let start = out.len();
    out.extend(
        s.bytes()
            .take(max)
            .map(|b| if (33..=126).contains(&b) { b } else { b'_' }),
    );
    if out.len() == start {
        out.push(b'-');
    }
}

/// Appends a PARAM-VALUE with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
pub fn write_param_value(out: &mut Vec<u8>, v: &str) {
    for &b in v.as_bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Appends the RFC 5424 message for an alert (no framing). `json` is its `kuzet.alert/1`
/// line; a trailing newline is left out.
pub fn format_message(out: &mut Vec<u8>, h: &Header, json: &[u8], rec: &AlertRecord) {
    let pri = u32::from(h.facility) * 8 + u32::from(severity(rec.level()));
    out.push(b'<');
    out.extend_from_slice(pri.to_string().as_bytes());
    out.extend_from_slice(b">1 ");
    // TIME-SECFRAC is at most six digits.
    Timestamp(rec.detected_at.0 - rec.detected_at.0.rem_euclid(1000)).write_rfc3339(out);
    out.push(b' ');
    token(out, &h.hostname, 255);
    out.extend_from_slice(b" kuzet ");
    token(out, &h.procid, 128);
    out.push(b' ');
    token(out, rec.kind, 32);
    out.push(b' ');
    match h.format {
        SyslogFormat::Json => out.push(b'-'),
        SyslogFormat::Sd => {
            out.push(b'[');
            out.extend_from_slice(SD_ID.as_bytes());
            let id = format!("{:032x}", rec.id);
            let label = rec.meta.label();
            let count = rec.count.to_string();
            let revision = rec.revision.to_string();
            let mut params: Vec<(&str, &str)> =
                vec![("id", &id), ("rule", &label), ("title", &rec.meta.title)];
            if let Some(l) = rec.level() {
                params.push(("level", l.name()));
            }
            params.push(("count", &count));
            params.push(("revision", &revision));
            for (k, v) in params {
                out.push(b' ');
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b"=\"");
                write_param_value(out, v);
                out.push(b'"');
            }
            out.push(b']');
        }
    }
    out.push(b' ');
    out.extend_from_slice(json.strip_suffix(b"\n").unwrap_or(json));
}

/// This machine's name as an RFC 5424 HOSTNAME.
pub fn local_hostname() -> String {
    let h = gethostname::gethostname();
    let h = h.to_string_lossy();
    let mut out = Vec::new();
    token(&mut out, h.trim(), 255);
    String::from_utf8(out).unwrap_or_else(|_| "-".into())
}

/// How a syslog sink is set up.
#[derive(Clone, Debug)]
pub struct SyslogSettings {
    pub target: Target,
    pub header: Header,
    /// TLS: the server must chain to these (from `tls_ca`, or the system store).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Connect and send timeout.
    pub timeout: Duration,
}

impl SyslogSettings {
    /// From a `[[sink]]` entry (validated by `Config::validate`).
    pub fn from_config(sc: &crate::config::SinkConfig) -> io::Result<SyslogSettings> {
        let address = sc
            .address
            .as_deref()
            .ok_or_else(|| io::Error::other("a syslog sink needs an address"))?;
        let target = Target::parse(address).map_err(io::Error::other)?;
        let format = SyslogFormat::parse(&sc.format)
            .ok_or_else(|| io::Error::other(format!("format {:?}: json or sd", sc.format)))?;
        let facility = facility_code(&sc.facility)
            .ok_or_else(|| io::Error::other(format!("facility {:?}", sc.facility)))?;
        let tls = match target.transport {
            Transport::Tls => Some(super::tls::client_config(&super::tls::roots(
                sc.tls_ca.as_deref().map(Path::new),
            )?)?),
            _ => None,
        };
        Ok(SyslogSettings {
            target,
            header: Header {
                facility,
                hostname: local_hostname(),
                procid: std::process::id().to_string(),
                format,
            },
            tls,
            timeout: sc.timeout.0,
        })
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// RFC 5424 over UDP, TCP or TLS.
pub struct SyslogSink {
    s: SyslogSettings,
    /// `None` until the first write, and after a failure.
    conn: Option<Conn>,
    msg: Vec<u8>,
    frame: Vec<u8>,
    /// Alerts whose evidence was cut to fit a datagram (reported on powers of two).
    trimmed: u64,
}

impl SyslogSink {
    /// Makes the sink; nothing is resolved or connected until the first write.
    pub fn new(s: SyslogSettings) -> SyslogSink {
        SyslogSink {
            s,
            conn: None,
            msg: Vec::with_capacity(4096),
            frame: Vec::with_capacity(4096),
            trimmed: 0,
        }
    }

    fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        let t = &self.s.target;
        let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port).to_socket_addrs()?.collect();
        if addrs.is_empty() {
            return Err(io::Error::other(format!(
                "{} resolves to no address",
                t.host
            )));
        }
        Ok(addrs)
    }

    fn connect(&self) -> io::Result<Conn> {
        let addrs = self.addresses()?;
        // Every address's failure is reported: "[::1]:6514: refused" alone would hide the
        // certificate problem at 127.0.0.1.
        let mut errs: Vec<String> = Vec::new();
        let mut kind = io::ErrorKind::Other;
        for addr in addrs {
            let r = match self.s.target.transport {
                Transport::Udp => {
                    let local: SocketAddr = if addr.is_ipv4() {
                        "0.0.0.0:0".parse().expect("literal")
                    } else {
                        "[::]:0".parse().expect("literal")
                    };
                    UdpSocket::bind(local)
                        .and_then(|s| s.connect(addr).map(|()| s))
                        .map(Conn::Udp)
                }
                Transport::Tcp => self.tcp(addr).map(Conn::Tcp),
                Transport::Tls => self.tcp(addr).and_then(|t| self.tls(t)),
            };
            match r {
                Ok(c) => return Ok(c),
                Err(e) => {
                    kind = e.kind();
                    errs.push(format!("{addr}: {e}"));
                }
            }
        }
        Err(io::Error::new(kind, errs.join("; ")))
    }

    fn tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let t = TcpStream::connect_timeout(&addr, self.s.timeout)?;
        // One write per alert, sent at once: no waiting for the previous segment's ACK.
        t.set_nodelay(true)?;
        // A receiver that stops reading blocks us (backpressure), but not forever: after the
        // timeout the connection is dropped and the alert retried on a new one.
        t.set_write_timeout(Some(self.s.timeout))?;
        t.set_read_timeout(Some(self.s.timeout))?;
        Ok(t)
    }

    fn tls(&self, mut t: TcpStream) -> io::Result<Conn> {
        let cfg = self
            .s
            .tls
            .clone()
            .ok_or_else(|| io::Error::other("TLS without a client configuration"))?;
        let name = ServerName::try_from(self.s.target.host.clone())
            .map_err(|e| io::Error::other(format!("{}: {e}", self.s.target.host)))?;
        let mut c = ClientConnection::new(cfg, name).map_err(io::Error::other)?;
        // Handshake now, so a certificate problem shows as a connect error.
        while c.is_handshaking() {
            c.complete_io(&mut t)?;
        }
        Ok(Conn::Tls(Box::new(StreamOwned::new(c, t))))
    }

    /// Renders the message (and its frame) for `rec` into `self.frame`.
    fn render(&mut self, line: &[u8], rec: &AlertRecord) {
        self.msg.clear();
        format_message(&mut self.msg, &self.s.header, line, rec);
        if self.s.target.transport == Transport::Udp && self.msg.len() > UDP_MAX {
            self.fit_datagram(rec);
        }
        self.frame.clear();
        if self.s.target.transport != Transport::Udp {
            // RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG.
            self.frame
                .extend_from_slice(self.msg.len().to_string().as_bytes());
            self.frame.push(b' ');
        }
        self.frame.extend_from_slice(&self.msg);
    }

    /// Leaves out evidence events from the end until the message fits one datagram; as a
    /// last resort cuts it (an alert with a 64 KiB title).
    fn fit_datagram(&mut self, rec: &AlertRecord) {
        let mut r = rec.clone();
        let mut json = Vec::new();
        while self.msg.len() > UDP_MAX && r.events.pop().is_some() {
            json.clear();
            r.write_json(&mut json);
            self.msg.clear();
            format_message(&mut self.msg, &self.s.header, &json, &r);
        }
        self.msg.truncate(UDP_MAX);
        self.trimmed += 1;
        if self.trimmed.is_power_of_two() {
            eprintln!(
                "kuzet: syslog sink: alert {:032x} larger than one UDP datagram: evidence left out ({} alerts so far; use tcp:// or tls:// for whole alerts)",
                rec.id, self.trimmed
            );
        }
    }
}

/// Whether the receiver has closed the connection (or sent something that says so). A
/// syslog receiver never talks, so anything readable is the end of the connection, a TLS
/// close_notify, or TLS housekeeping (session tickets) that is read and dropped.
fn peer_closed(conn: &mut Conn) -> bool {
    let sock = match conn {
        Conn::Udp(_) => return false,
        Conn::Tcp(t) => t,
        Conn::Tls(s) => &mut s.sock,
    };
    if sock.set_nonblocking(true).is_err() {
        return true;
    }
    let mut closed = false;
    // Bounded: a receiver that keeps talking is not waited for.
    for _ in 0..16 {
        let r = match conn {
            Conn::Udp(_) => break,
            Conn::Tcp(t) => {
                let mut scratch = [0u8; 512];
                t.read(&mut scratch)
            }
            Conn::Tls(s) => match s.conn.read_tls(&mut s.sock) {
                Ok(0) => Ok(0),
                Ok(n) => match s.conn.process_new_packets() {
                    Ok(st) if st.peer_has_closed() => Ok(0),
                    Ok(st) => {
                        let mut scratch = vec![0u8; st.plaintext_bytes_to_read()];
                        let _ = s.conn.reader().read(&mut scratch);
                        Ok(n)
                    }
                    Err(e) => Err(io::Error::other(e)),
                },
                Err(e) => Err(e),
            },
        };
        match r {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let sock = match conn {
        Conn::Udp(_) => return closed,
        Conn::Tcp(t) => t,
        Conn::Tls(s) => &mut s.sock,
    };
    closed || sock.set_nonblocking(false).is_err()
}

impl Sink for SyslogSink {
    fn write(&mut self, line: &[u8], rec: &AlertRecord) -> io::Result<()> {
        self.render(line, rec);
        if self.conn.as_mut().is_some_and(peer_closed) {
            self.conn = None;
        }
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        let r = match &mut conn {
            Conn::Udp(u) => u.send(&self.frame).and_then(|n| {
                if n == self.frame.len() {
                    Ok(())
                } else {
                    Err(io::Error::other("datagram cut short"))
                }
            }),
            Conn::Tcp(t) => t.write_all(&self.frame),
            // flush pushes the records out and reports a failed socket write.
            Conn::Tls(s) => s.write_all(&self.frame).and_then(|()| s.flush()),
        };
        // On failure the connection is dropped; the retry makes a new one.
        if r.is_ok() {
            self.conn = Some(conn);
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write goes straight to the socket.
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        match self.conn.take() {
            Some(Conn::Tls(mut s)) => {
                s.conn.send_close_notify();
                s.flush()
            }
            Some(Conn::Tcp(t)) => t.shutdown(std::net::Shutdown::Write),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigma::Meta;

    fn rec(level: Option<Level>, title: &str) -> AlertRecord {
        AlertRecord {
            id: 0xabc,
            meta: Arc::new(Meta {
                id: Some("r-1".into()),
                title: title.into(),
                level,
                ..Meta::default()
            }),
            kind: "event_count",
            group: Vec::new(),
            count: 7,
            metric: None,
            revision: 2,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            // 1 ns past a microsecond: cut, not rounded.
            detected_at: Timestamp(1_764_064_809_123_456_789),
            events: Vec::new(),
            received: None,
        }
    }

    fn header(format: SyslogFormat) -> Header {
        Header {
            facility: 20,
            hostname: "web01".into(),
            procid: "42".into(),
            format,
        }
    }

    #[test]
    fn json_format_header_fields() {
        let mut out = Vec::new();
        let r = rec(Some(Level::High), "T");
        format_message(&mut out, &header(SyslogFormat::Json), b"{\"a\":1}\n", &r);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<163>1 2025-11-25T10:00:09.123456Z web01 kuzet 42 event_count - {\"a\":1}"
        );
    }

    #[test]
    fn sd_format_escapes_quote_backslash_and_bracket() {
        let mut out = Vec::new();
        let r = rec(None, r#"a "b" \c ]d"#);
        format_message(&mut out, &header(SyslogFormat::Sd), b"{}", &r);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("<166>1 "), "{s}");
        assert!(
            s.ends_with(&format!(
                r#" event_count [kuzet@32473 id="{:032x}" rule="r-1" title="a \"b\" \\c \]d" count="7" revision="2"] {{}}"#,
                0xabc
            )),
            "{s}"
        );
    }

    #[test]
    fn severities_follow_levels() {
        assert_eq!(severity(Some(Level::Critical)), 2);
        assert_eq!(severity(Some(Level::High)), 3);
        assert_eq!(severity(Some(Level::Medium)), 4);
        assert_eq!(severity(Some(Level::Low)), 5);
        assert_eq!(severity(Some(Level::Informational)), 6);
        assert_eq!(severity(None), 6);
        assert_eq!(facility_code("local4"), Some(20));
        assert_eq!(facility_code("kern"), Some(0));
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("local8"), None);
    }

    #[test]
    fn header_tokens_are_printable_ascii_or_nil() {
        let mut out = Vec::new();
        token(&mut out, "my host\u{e9}", 255);
        assert_eq!(out, b"my_host__");
        out.clear();
        token(&mut out, "", 255);
        assert_eq!(out, b"-");
        out.clear();
        token(&mut out, &"x".repeat(300), 255);
        assert_eq!(out.len(), 255);
        assert!(!local_hostname().is_empty());
    }
}
