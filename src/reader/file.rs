//! Files and stdin: large reads, newline framing, the tail carried into the next buffer.
//!
//! Reads go straight into a [`Batch`]'s buffer (1 MiB by default), so a frame is never
//! copied unless it straddles two reads. Files are newline-framed (LF, CRLF or NUL); a line
//! longer than `max_frame` is truncated or dropped and counted, like on the network.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{Batch, FrameStats, Framer, Framing, FramingConfig};
use crate::event::Timestamp;

/// Default read size for files.
pub const DEFAULT_CHUNK: usize = 1 << 20;

/// Where a file input reads from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileSource {
    Stdin,
    Path(std::path::PathBuf),
}

impl FileSource {
    /// `-` is stdin.
    pub fn from_arg(s: &str) -> FileSource {
        if s == "-" {
            FileSource::Stdin
        } else {
            FileSource::Path(s.into())
        }
    }

    pub fn name(&self) -> String {
        match self {
            FileSource::Stdin => "-".into(),
            FileSource::Path(p) => p.display().to_string(),
        }
    }

    /// The reference time for year-less timestamps: the file's modification time (the log
    /// was written up to then), or now for stdin.
    pub fn reference_time(&self) -> Timestamp {
        if let FileSource::Path(p) = self
            && let Ok(m) = std::fs::metadata(p).and_then(|m| m.modified())
            && let Ok(d) = m.duration_since(std::time::UNIX_EPOCH)
        {
            return Timestamp(d.as_nanos() as i64);
        }
        Timestamp::now()
    }

    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            FileSource::Stdin => Box::new(io::stdin()),
            FileSource::Path(p) => Box::new(File::open(Path::new(p))?),
        })
    }
}

/// Reads `r` to the end in chunks of `chunk` bytes, framing by newline, and calls `emit`
/// with each filled batch. `emit` returns an empty batch to fill next (its own, recycled) or
/// `None` to stop early. `received` stamps each batch. Batches carry the stream offset of
/// their first byte, counted from `start` (where the reader already is).
pub fn read_frames<R: Read>(
    r: R,
    cfg: FramingConfig,
    chunk: usize,
    stats: &mut FrameStats,
    received: impl FnMut() -> Timestamp,
    emit: impl FnMut(Batch) -> Option<Batch>,
) -> io::Result<()> {
    read_frames_from(r, 0, cfg, chunk, stats, received, emit)
}

/// [`read_frames`], for a reader already at stream offset `start`.
pub fn read_frames_from<R: Read>(
    mut r: R,
    start: u64,
    cfg: FramingConfig,
    chunk: usize,
    stats: &mut FrameStats,
    mut received: impl FnMut() -> Timestamp,
    mut emit: impl FnMut(Batch) -> Option<Batch>,
) -> io::Result<()> {
    let mut framer = Framer::new(FramingConfig {
        framing: Framing::NewLine,
        ..cfg
    });
    let cap = chunk.max(framer.min_buffer() + 4096);
    let mut batch = Batch::with_capacity(cap);
    batch.offset = start;
    let mut ranges = Vec::with_capacity(cap / 64);
    let mut eof = false;
    while !eof {
        // Fill the buffer up to `cap`.
        let filled = batch.data.len();
        batch.data.resize(cap, 0);
        let n = loop {
            match r.read(&mut batch.data[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        batch.data.truncate(filled + n);
        eof = n == 0;
        ranges.clear();
        let consumed = framer.decode(&batch.data, eof, &mut ranges, stats);
        batch.frames.clear();
        batch
            .frames
            .extend(ranges.iter().map(|&(s, e)| (s as u32, e as u32)));
        batch.received = received();
        let tail_start = consumed;
        let mut next = Batch::with_capacity(0);
        std::mem::swap(&mut next, &mut batch);
        // `next` is the full batch; get a fresh one and move the tail over.
        let tail: Vec<u8> = next.data[tail_start..].to_vec();
        next.data.truncate(tail_start);
        let input = next.input;
        let next_offset = next.offset + tail_start as u64;
        match emit(next) {
            Some(mut b) => {
                b.clear();
                b.input = input;
                b.offset = next_offset;
                batch = b;
            }
            None => return Ok(()),
        }
        if batch.data.capacity() < cap {
            batch.data.reserve(cap - batch.data.len());
        }
        batch.data.extend_from_slice(&tail);
    }
    Ok(())
}
