//! Splitting a byte stream into frames (RFC 6587), decided per frame.
//!
//! A frame that starts with a digit `1`–`9` followed by up to eight more digits and a space
//! is octet-counted (`LEN SP MSG`, §3.4.1); anything else runs to the next LF or NUL
//! (non-transparent framing, §3.4.2), with a CR before the LF dropped. Deciding per frame
//! matters because relays mix the two on one connection. Spaces, tabs, CR, LF and NUL
//! between frames are skipped.
//!
//! Frames are bounded by `max_frame`. An oversize frame is truncated to `max_frame` bytes
//! (the rest skipped) or dropped whole, per config, and counted; either way the framer knows
//! exactly where the next frame starts, so the connection never desynchronises.
//!
//! [`Framer::decode`] is a pure scanner over the caller's buffer: it reports frame ranges
//! and how many bytes it consumed; the caller keeps the unconsumed tail. Guarantee: the tail
//! is never longer than `max_frame + MAX_LEN_DIGITS + 1`, so a connection buffer of
//! [`Framer::min_buffer`] bytes always makes progress.

/// Framing of one listener.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Framing {
    /// Decide per frame (RFC 6587 §3.4): digit → octet counting, otherwise newline.
    #[default]
    Auto,
    /// Always octet counting; a frame that does not start with a length falls back to
    /// newline framing and is counted as a framing error.
    OctetCounted,
    /// Always newline (LF, CRLF or NUL) terminated.
    NewLine,
}

impl Framing {
    pub fn parse(s: &str) -> Option<Framing> {
        Some(match s {
            "auto" => Framing::Auto,
            "octet-counted" | "octet_counted" | "octet" => Framing::OctetCounted,
            "newline" | "lf" | "non-transparent" => Framing::NewLine,
            _ => return None,
        })
    }
}

/// What to do with a frame longer than `max_frame`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Oversize {
    /// Keep the first `max_frame` bytes as the frame.
    #[default]
    Truncate,
    /// Drop the whole frame.
    Drop,
}

impl Oversize {
    pub fn parse(s: &str) -> Option<Oversize> {
        match s {
            "truncate" => Some(Oversize::Truncate),
            "drop" => Some(Oversize::Drop),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FramingConfig {
    pub framing: Framing,
    /// Longest frame kept, in bytes.
    pub max_frame: usize,
    pub oversize: Oversize,
}

impl Default for FramingConfig {
    fn default() -> Self {
        // syslog-ng's default message size; rsyslog uses 8 KiB, Vector 100 KiB.
        FramingConfig {
            framing: Framing::Auto,
            max_frame: 64 * 1024,
            oversize: Oversize::Truncate,
        }
    }
}

/// Counters the framer bumps; the reader folds them into its metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    pub frames: u64,
    pub octet_counted: u64,
    pub oversize_truncated: u64,
    pub oversize_dropped: u64,
    /// Octet-counted listener got a frame without a length.
    pub framing_errors: u64,
    /// The stream ended inside an octet-counted frame; the partial frame was kept.
    pub truncated_at_eof: u64,
}

/// Most digits accepted in an octet count (frames are far below 1 GB).
pub const MAX_LEN_DIGITS: usize = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a frame boundary.
    Start,
    /// Inside the skipped rest of an oversize octet-counted frame: this many bytes remain.
    SkipBytes(usize),
    /// Inside the skipped rest of an oversize newline frame.
    SkipLine,
}

/// Per-connection framing state.
#[derive(Clone, Debug)]
pub struct Framer {
    cfg: FramingConfig,
    state: State,
}

/// A frame as a range of the buffer given to [`Framer::decode`].
pub type FrameRange = (usize, usize);

impl Framer {
    pub fn new(cfg: FramingConfig) -> Framer {
        Framer {
            cfg,
            state: State::Start,
        }
    }

    pub fn config(&self) -> &FramingConfig {
        &self.cfg
    }

    /// The smallest buffer with which [`Framer::decode`] always makes progress.
    pub fn min_buffer(&self) -> usize {
        self.cfg.max_frame + MAX_LEN_DIGITS + 2
    }

    /// Scans `buf` and appends `(start, end)` of every complete frame. Returns the number of
    /// bytes consumed; the caller keeps `buf[consumed..]` and presents it again, followed by
    /// new data. With `eof`, an unterminated tail is a frame too and everything is consumed.
    pub fn decode(
        &mut self,
        buf: &[u8],
        eof: bool,
        out: &mut Vec<FrameRange>,
        stats: &mut FrameStats,
    ) -> usize {
        let max = self.cfg.max_frame;
        let mut i = 0;
        loop {
            match self.state {
                State::SkipBytes(n) => {
                    let k = n.min(buf.len() - i);
                    i += k;
                    if k < n {
                        self.state = State::SkipBytes(n - k);
                        return i;
                    }
                    self.state = State::Start;
                }
                State::SkipLine => match memchr::memchr2(b'\n', 0, &buf[i..]) {
                    Some(p) => {
                        i += p + 1;
                        self.state = State::Start;
                    }
                    None => {
                        if eof {
                            self.state = State::Start;
                        }
                        return buf.len();
                    }
                },
                State::Start => {
                    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | b'\r' | b'\n' | 0) {
                        i += 1;
                    }
                    if i == buf.len() {
                        return i;
                    }
                    let first = buf[i];
                    let try_octet = match self.cfg.framing {
                        Framing::Auto => (b'1'..=b'9').contains(&first),
                        Framing::OctetCounted => true,
                        Framing::NewLine => false,
                    };
                    // A framing error is counted when the fallback frame is complete, not
                    // when it is first seen: an unterminated line is scanned again after the
                    // next read, and must not be counted once per read.
                    let mut framing_error = 0;
                    if try_octet {
                        match self.octet(buf, i, eof, out, stats) {
                            Octet::Done(next) => {
                                i = next;
                                continue;
                            }
                            Octet::NeedMore => return i,
                            Octet::NoLength => {
                                if self.cfg.framing == Framing::OctetCounted {
                                    framing_error = 1;
                                }
                            }
                        }
                    }
                    // Newline framing.
                    match memchr::memchr2(b'\n', 0, &buf[i..]) {
                        Some(p) => {
                            let end = i + p;
                            stats.framing_errors += framing_error;
                            self.emit_line(buf, i, end, out, stats);
                            i = end + 1;
                        }
                        None => {
                            let rest = buf.len() - i;
                            // A line of exactly `max` bytes may still be waiting for its LF
                            // after a CR; anything longer is oversize already.
                            let oversize =
                                rest > max + 1 || (rest == max + 1 && buf[buf.len() - 1] != b'\r');
                            if oversize {
                                // Oversize and still unterminated: keep/drop the head, skip the rest.
                                stats.framing_errors += framing_error;
                                self.oversize(i, max, out, stats);
                                self.state = if eof { State::Start } else { State::SkipLine };
                                return buf.len();
                            }
                            if eof {
                                stats.framing_errors += framing_error;
                                self.emit_line(buf, i, buf.len(), out, stats);
                                return buf.len();
                            }
                            return i;
                        }
                    }
                }
            }
        }
    }

    /// A newline-framed frame `buf[start..end]` (terminator excluded).
    fn emit_line(
        &self,
        buf: &[u8],
        start: usize,
        mut end: usize,
        out: &mut Vec<FrameRange>,
        stats: &mut FrameStats,
    ) {
        if end > start && buf[end - 1] == b'\r' {
            end -= 1;
        }
        if end - start > self.cfg.max_frame {
            self.oversize(start, self.cfg.max_frame, out, stats);
            return;
        }
        push(start, end, out, stats);
    }

    fn oversize(
        &self,
        start: usize,
        max: usize,
        out: &mut Vec<FrameRange>,
        stats: &mut FrameStats,
    ) {
        match self.cfg.oversize {
            Oversize::Truncate => {
                stats.oversize_truncated += 1;
                out.push((start, start + max));
                stats.frames += 1;
            }
            Oversize::Drop => stats.oversize_dropped += 1,
        }
    }

    fn octet(
        &mut self,
        buf: &[u8],
        i: usize,
        eof: bool,
        out: &mut Vec<FrameRange>,
        stats: &mut FrameStats,
    ) -> Octet {
        let max = self.cfg.max_frame;
        let digits = buf[i..]
            .iter()
            .take(MAX_LEN_DIGITS + 1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > MAX_LEN_DIGITS || buf[i] == b'0' {
            return Octet::NoLength;
        }
        if i + digits == buf.len() {
            return if eof {
                Octet::NoLength
            } else {
                Octet::NeedMore
            };
        }
        if buf[i + digits] != b' ' {
            return Octet::NoLength;
        }
        let len: usize = buf[i..i + digits]
            .iter()
            .fold(0, |v, &c| v * 10 + (c - b'0') as usize);
        let start = i + digits + 1;
        let avail = buf.len() - start;
        stats.octet_counted += 1;
        if len > max {
            match self.cfg.oversize {
                Oversize::Truncate => {
                    if avail < max && !eof {
                        stats.octet_counted -= 1;
                        return Octet::NeedMore;
                    }
                    let keep = max.min(avail);
                    if keep == 0 {
                        // The stream ended right after the length: nothing to keep, and an
                        // empty frame is no frame (found by fuzzing).
                        stats.truncated_at_eof += 1;
                        self.state = State::SkipBytes(len);
                        return Octet::Done(start);
                    }
                    stats.oversize_truncated += 1;
                    stats.frames += 1;
                    out.push((start, start + keep));
                    self.state = State::SkipBytes(len - keep);
                    Octet::Done(start + keep)
                }
                Oversize::Drop => {
                    stats.oversize_dropped += 1;
                    self.state = State::SkipBytes(len);
                    Octet::Done(start)
                }
            }
        } else if avail >= len {
            let mut end = start + len;
            // syslog-ng counts a trailing LF inside the frame; some senders add CR or NUL.
            while end > start && matches!(buf[end - 1], b'\n' | b'\r' | 0) {
                end -= 1;
            }
            push(start, end, out, stats);
            Octet::Done(start + len)
        } else if eof {
            stats.truncated_at_eof += 1;
            push(start, buf.len(), out, stats);
            Octet::Done(buf.len())
        } else {
            stats.octet_counted -= 1;
            Octet::NeedMore
        }
    }
}

/// What an attempt at octet-counted framing found.
// `NotOctet` reads better at the call sites than clippy's preferred shortening.
#[allow(clippy::enum_variant_names)]
enum Octet {
    Done(usize),
    NeedMore,
    NoLength,
}

/// Records a frame; empty frames are not frames.
#[inline]
fn push(start: usize, end: usize, out: &mut Vec<FrameRange>, stats: &mut FrameStats) {
    if end > start {
        out.push((start, end));
        stats.frames += 1;
    }
}
