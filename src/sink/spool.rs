//! A bounded, durable FIFO of alert lines on disk: the webhook sink's spool, so that alerts
//! survive an endpoint outage and a restart of kuzet.
//!
//! ```text
//! spool_dir/
//!   lock                         held (flock) while a sink uses the directory
//!   cursor                       "SEQ OFFSET": where the oldest undelivered record starts
//!   00000000000000000007.seg     records, oldest first: one alert JSON line each, '\n'-ended
//!   00000000000000000008.seg     the segment appended to
//! ```
//!
//! * **Append** ([`Spool::append`]) writes one record to the last segment and `fdatasync`s it
//!   before returning: once the sink's `write` has returned, the alert is on disk. A new
//!   segment starts when the last one reaches `segment_bytes` (its directory entry is synced
//!   too). When the undelivered bytes would pass `max_bytes` the append fails
//!   ([`SpoolError::Full`]) and nothing is written: the caller must retry later
//!   (backpressure), never drop. A record larger than the whole bound is taken when the
//!   spool is empty, so one huge alert cannot stall the sink forever.
//! * **Read** ([`Spool::peek`] then [`Spool::ack`]): the oldest record is read; after it was
//!   delivered (or permanently refused) `ack` moves the cursor past it and deletes segments
//!   that are wholly behind the cursor. The cursor is rewritten in place on every ack but not
//!   synced: after a power loss (not a crash of the process: the page cache keeps it) some
//!   delivered alerts may be sent again. Delivery is at least once; alert ids are stable, so
//!   receivers deduplicate.
//! * **Recovery** ([`Spool::open`]): segments behind the cursor are deleted, a record torn by
//!   a crash in the middle of an append (no final `'\n'`) is cut off the last segment, and the
//!   undelivered records are counted.
//!
//! Records never contain `'\n'` (the alert JSON escapes it), which is what frames them.
//! Reading and appending share one mutex; the HTTP request happens outside it.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why an append failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "spool full: {pending} bytes of undelivered alerts in {dir}, limit {max} (spool_max_bytes)"
    )]
    Full {
        dir: PathBuf,
        pending: u64,
        max: u64,
    },
    #[error("spool {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl From<SpoolError> for io::Error {
    fn from(e: SpoolError) -> io::Error {
        match e {
            SpoolError::Io { ref source, .. } => io::Error::new(source.kind(), e.to_string()),
            full => io::Error::new(io::ErrorKind::StorageFull, full.to_string()),
        }
    }
}

/// Where a record ends: segment sequence number and the offset just past its `'\n'`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub seq: u64,
    pub end: u64,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes of whole records written and synced; readers never look past it.
    len: u64,
}

#[derive(Debug)]
struct State {
    /// Oldest first; never empty; the last one is appended to.
    segments: VecDeque<Segment>,
    /// Offset of the oldest undelivered record in `segments[0]`; `<= segments[0].len`.
    head: u64,
    /// Append handle of the last segment.
    writer: File,
    /// Read handle: (seq, file) of the segment last read.
    reader: Option<(u64, File)>,
    cursor: File,
    /// Undelivered records and their bytes.
    records: u64,
    bytes: u64,
}

/// Told (records, bytes) pending after every change, under the spool's lock, so that gauges
/// set from two threads never go stale.
pub type Observer = Box<dyn Fn(u64, u64) + Send + Sync>;

/// The on-disk spool of one sink.
pub struct Spool {
    dir: PathBuf,
    /// Bound on undelivered bytes.
    max_bytes: u64,
    /// A new segment starts once the last one holds this many bytes.
    segment_bytes: u64,
    state: Mutex<State>,
    observer: Option<Observer>,
    /// Held for the spool's lifetime: two sinks (or two kuzets) sharing a spool would
    /// deliver each other's alerts twice and delete them under each other.
    _lock: File,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("pending", &self.pending())
            .finish()
    }
}

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Parses the cursor file's "SEQ OFFSET".
fn parse_cursor(b: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(b).ok()?;
    let mut it = s.split_whitespace();
    let seq = it.next()?.parse().ok()?;
    let off = it.next()?.parse().ok()?;
    Some((seq, off))
}

/// Length of `f` once a torn last record (no final `'\n'`) is cut off.
fn whole_records_len(f: &File, len: u64) -> io::Result<u64> {
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let buf = &mut chunk[..(end - start) as usize];
        f.read_exact_at(buf, start)?;
        if let Some(i) = memchr::memrchr(b'\n', buf) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Counts `'\n'` in `f[from..to]`.
fn count_records(f: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut n = 0;
    let mut at = from;
    let mut chunk = vec![0u8; 256 * 1024];
    while at < to {
        let k = ((to - at) as usize).min(chunk.len());
        f.read_exact_at(&mut chunk[..k], at)?;
        n += memchr::memchr_iter(b'\n', &chunk[..k]).count() as u64;
        at += k as u64;
    }
    Ok(n)
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and recovers what a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Result<Spool, SpoolError> {
        let err = |source| SpoolError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "in use by another sink or another kuzet (give each webhook sink its own spool_dir)",
                )));
            }
            Err(fs::TryLockError::Error(e)) => return Err(err(e)),
        }
        let mut seqs: Vec<u64> = Vec::new();
        for e in fs::read_dir(dir).map_err(err)? {
            let name = e.map_err(err)?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse().ok()) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let cursor = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(dir.join("cursor"))
            .map_err(err)?;
        let mut cbuf = [0u8; 64];
        let n = cursor.read_at(&mut cbuf, 0).map_err(err)?;
        let (cseq, coff) = parse_cursor(&cbuf[..n]).unwrap_or((0, 0));
        // Segments wholly behind the cursor were delivered: a crash came between the cursor
        // write and their deletion.
        while seqs.len() > 1 && seqs[0] < cseq {
            fs::remove_file(seg_path(dir, seqs[0])).map_err(err)?;
            seqs.remove(0);
        }
        if seqs.is_empty() {
            let seq = cseq.max(1);
            File::create(seg_path(dir, seq)).map_err(err)?;
            sync_dir(dir).map_err(err)?;
            seqs.push(seq);
        }
        let mut segments = VecDeque::new();
        let last = *seqs.last().expect("not empty");
        let mut records = 0;
        let mut bytes = 0;
        let mut head = 0;
        for (i, &seq) in seqs.iter().enumerate() {
            let path = seg_path(dir, seq);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(err)?;
            let on_disk = f.metadata().map_err(err)?.len();
            let len = whole_records_len(&f, on_disk).map_err(err)?;
            if len < on_disk {
                if seq == last {
                    f.set_len(len).map_err(err)?;
                    f.sync_all().map_err(err)?;
                } else {
                    // Only the last segment is ever appended to; a torn record elsewhere is
                    // from a crash during a rotation and is skipped over.
                }
            }
            let from = if i == 0 && seq == cseq {
                coff.min(len)
            } else {
                0
            };
            if i == 0 {
                head = from;
            }
            records += count_records(&f, from, len).map_err(err)?;
            bytes += len - from;
            segments.push_back(Segment { seq, len });
        }
        let writer = OpenOptions::new()
            .append(true)
            .open(seg_path(dir, last))
            .map_err(err)?;
        let spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes.max(1),
            state: Mutex::new(State {
                segments,
                head,
                writer,
                reader: None,
                cursor,
                records,
                bytes,
            }),
            observer: None,
            _lock: lock,
        };
        {
            let mut st = spool.lock();
            spool.save_cursor(&mut st).map_err(err)?;
        }
        Ok(spool)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Calls `f(records, bytes)` now and after every change.
    pub fn observe(&mut self, f: Observer) {
        let (r, b) = self.pending();
        f(r, b);
        self.observer = Some(f);
    }

    fn changed(&self, st: &State) {
        if let Some(f) = &self.observer {
            f(st.records, st.bytes);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere with the lock held leaves consistent state: every field is
        // updated only after its IO succeeded.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (records, bytes) not yet delivered.
    pub fn pending(&self) -> (u64, u64) {
        let st = self.lock();
        (st.records, st.bytes)
    }

    /// Appends one record durably. `rec` must hold no `'\n'` but a final one (added when
    /// missing).
    pub fn append(&self, rec: &[u8]) -> Result<(), SpoolError> {
        let body = rec.strip_suffix(b"\n").unwrap_or(rec);
        debug_assert!(!body.contains(&b'\n'), "a spool record holds no newline");
        let len = body.len() as u64 + 1;
        let err = |source| SpoolError::Io {
            dir: self.dir.clone(),
            source,
        };
        let mut st = self.lock();
        if st.bytes > 0 && st.bytes + len > self.max_bytes {
            return Err(SpoolError::Full {
                dir: self.dir.clone(),
                pending: st.bytes,
                max: self.max_bytes,
            });
        }
        let last = st.segments.back().expect("never empty");
        if last.len >= self.segment_bytes {
            let seq = last.seq + 1;
            let path = seg_path(&self.dir, seq);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(err)?;
            sync_dir(&self.dir).map_err(err)?;
            st.writer = f;
            st.segments.push_back(Segment { seq, len: 0 });
        }
        let committed = st.segments.back().expect("never empty").len;
        let mut buf = Vec::with_capacity(body.len() + 1);
        buf.extend_from_slice(body);
        buf.push(b'\n');
        let r = st
            .writer
            .write_all(&buf)
            .and_then(|()| st.writer.sync_data());
        if let Err(e) = r {
            // Leave no partial record behind: the retry appends it whole.
            let _ = st.writer.set_len(committed);
            return Err(err(e));
        }
        st.segments.back_mut().expect("never empty").len += len;
        st.records += 1;
        st.bytes += len;
        self.changed(&st);
        Ok(())
    }

    /// Reads the oldest undelivered record (without its `'\n'`) into `out`; `None` when
    /// everything was delivered.
    pub fn peek(&self, out: &mut Vec<u8>) -> io::Result<Option<Pos>> {
        out.clear();
        let mut st = self.lock();
        loop {
            self.drop_consumed(&mut st)?;
            let (seq, len) = {
                let s = &st.segments[0];
                (s.seq, s.len)
            };
            let head = st.head;
            if head >= len {
                return Ok(None);
            }
            if st.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
                let f = File::open(seg_path(&self.dir, seq))?;
                st.reader = Some((seq, f));
            }
            let (_, f) = st.reader.as_ref().expect("just set");
            let mut at = head;
            let mut chunk = [0u8; 16 * 1024];
            while at < len {
                let k = ((len - at) as usize).min(chunk.len());
                f.read_exact_at(&mut chunk[..k], at)?;
                if let Some(i) = memchr::memchr(b'\n', &chunk[..k]) {
                    out.extend_from_slice(&chunk[..i]);
                    return Ok(Some(Pos {
                        seq,
                        end: at + i as u64 + 1,
                    }));
                }
                out.extend_from_slice(&chunk[..k]);
                at += k as u64;
            }
            // A torn record at the end of an older segment (see `open`): skip it.
            out.clear();
            let torn = len - head;
            st.bytes = st.bytes.saturating_sub(torn);
            st.head = len;
            self.changed(&st);
            if st.segments.len() == 1 {
                return Ok(None);
            }
        }
    }

    /// Marks the record ending at `pos` (the one `peek` returned) as delivered.
    pub fn ack(&self, pos: Pos) -> io::Result<()> {
        let mut st = self.lock();
        if st.segments[0].seq != pos.seq || pos.end <= st.head {
            return Ok(());
        }
        let n = pos.end - st.head;
        st.head = pos.end;
        st.records = st.records.saturating_sub(1);
        st.bytes = st.bytes.saturating_sub(n);
        self.changed(&st);
        self.drop_consumed(&mut st)?;
        self.save_cursor(&mut st)
    }

    /// Deletes segments wholly delivered, except the last (it is appended to).
    fn drop_consumed(&self, st: &mut State) -> io::Result<()> {
        while st.segments.len() > 1 && st.head >= st.segments[0].len {
            let seq = st.segments[0].seq;
            st.segments.pop_front();
            st.head = 0;
            // Cursor first: a crash between the two leaves a segment the next open deletes.
            self.save_cursor(st)?;
            if st.reader.as_ref().is_some_and(|(s, _)| *s == seq) {
                st.reader = None;
            }
            match fs::remove_file(seg_path(&self.dir, seq)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn save_cursor(&self, st: &mut State) -> io::Result<()> {
        // Fixed width, so an in-place rewrite never leaves a longer old tail behind.
        let line = format!("{:020} {:020}\n", st.segments[0].seq, st.head);
        st.cursor.write_all_at(line.as_bytes(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &Spool) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for _ in 0..10_000 {
            match s.peek(&mut buf).unwrap() {
                Some(pos) => {
                    out.push(String::from_utf8(buf.clone()).unwrap());
                    s.ack(pos).unwrap();
                }
                None => break,
            }
        }
        out
    }

    fn segs(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count()
    }

    #[test]
    fn fifo_across_segments_and_reopen() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), 1 << 20, 50).unwrap();
        for i in 0..20 {
            s.append(format!("record {i:02}\n").as_bytes()).unwrap();
        }
        // 10-byte records, 50-byte segments: a new segment after every 5.
        assert_eq!(segs(d.path()), 4);
        assert_eq!(s.pending(), (20, 200));
        let mut buf = Vec::new();
        for i in 0..7 {
            let p = s.peek(&mut buf).unwrap().unwrap();
            assert_eq!(buf, format!("record {i:02}").as_bytes());
            // Peeking again without ack gives the same record.
            assert_eq!(s.peek(&mut buf).unwrap(), Some(p));
            s.ack(p).unwrap();
        }
        assert_eq!(segs(d.path()), 3, "the delivered segment is deleted");
        drop(s);
        let s = Spool::open(d.path(), 1 << 20, 50).unwrap();
        assert_eq!(s.pending(), (13, 130));
        s.append(b"record 20").unwrap();
        let got = drain(&s);
        let want: Vec<String> = (7..21).map(|i| format!("record {i:02}")).collect();
        assert_eq!(got, want);
        assert_eq!(s.pending(), (0, 0));
        assert_eq!(segs(d.path()), 1);
    }

    #[test]
    fn full_is_an_error_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(d.path(), 35, 1000).unwrap();
        for i in 0..3 {
            s.append(format!("record {i:02}").as_bytes()).unwrap();
        }
        let e = s.append(b"record 03").unwrap_err();
        assert!(matches!(e, SpoolError::Full { pending: 30, .. }), "{e}");
        assert_eq!(s.pending(), (3, 30));
        let mut buf = Vec::new();
        let p = s.peek(&mut buf).unwrap().unwrap();
        s.ack(p).unwrap();
        s.append(b"record 03").unwrap();
        assert_eq!(
            drain(&s),
            ["record 01", "record 02", "record 03"].map(String::from)
        );
        // One record larger than the bound is taken when nothing else waits.
        s.append(&[b'x'; 100]).unwrap();
        assert!(s.append(b"y").is_err());
        assert_eq!(drain(&s).len(), 1);
    }

    #[test]
    fn torn_tail_is_cut_and_the_cursor_survives() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = Spool::open(d.path(), 1 << 20, 1 << 20).unwrap();
            s.append(b"one").unwrap();
            s.append(b"two").unwrap();
            let mut buf = Vec::new();
            let p = s.peek(&mut buf).unwrap().unwrap();
            s.ack(p).unwrap();
        }
        // A crash in the middle of an append.
        let seg = seg_path(d.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"thr").unwrap();
        drop(f);
        let s = Spool::open(d.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(s.pending(), (1, 4));
        s.append(b"three").unwrap();
        assert_eq!(drain(&s), ["two", "three"].map(String::from));
    }

    #[test]
    fn one_spool_per_directory() {
        let d = tempfile::tempdir().unwrap();
        let _s = Spool::open(d.path(), 1 << 20, 1 << 20).unwrap();
        let e = Spool::open(d.path(), 1 << 20, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("in use"), "{e}");
    }
}
