//! Checkpoints: a shard's state written to disk (periodically and at shutdown) and read back
//! at start, so a restart in the middle of a window neither loses the half-counted attack nor
//! raises a duplicate alert.
//!
//! Format (little-endian, versioned): `KUZETCK2`, the shard's newest event time, then per
//! correlation rule its definition fingerprint and its keys (window state, open alert, group
//! values, evidence pointer), then the evidence ring. State is restored only for rules whose
//! fingerprint is unchanged; the rest start empty (counted). Written to a temporary file,
//! synced, and renamed over the old one, so a crash leaves either the old or the new
//! checkpoint, never half of one.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use hashbrown::HashMap;

use super::shard::{EvidenceRing, KeyState, Open, Shard};
use super::window::Window;

/// Version 2: `temporal_ordered` state holds two chains per cell (see `Window::Chains`),
/// episodes their floor; a version-1 checkpoint would be read with the wrong layout, so it
/// is refused.
const MAGIC: &[u8; 8] = b"KUZETCK2";

/// A checkpoint that could not be read, and why.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a kuzet checkpoint, or from an incompatible version")]
    Format { path: String },
    #[error("{path}: truncated or corrupt at byte {at}")]
    Corrupt { path: String, at: usize },
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn window(&mut self, w: &Window) {
        match w {
            Window::Times(v) => {
                self.u8(1);
                self.u32(v.len() as u32);
                v.iter().for_each(|&x| self.i64(x));
            }
            Window::Distinct(v) => {
                self.u8(2);
                self.u32(v.len() as u32);
                v.iter().for_each(|&(h, t)| {
                    self.u64(h);
                    self.i64(t)
                });
            }
            Window::Slots(v) => {
                self.u8(3);
                self.u32(v.len() as u32);
                v.iter().for_each(|&x| self.i64(x));
            }
            Window::Chains(v) => {
                self.u8(4);
                self.u32(v.len() as u32);
                v.iter().for_each(|&(a, b)| {
                    self.i64(a);
                    self.i64(b)
                });
            }
            Window::Values(v) => {
                self.u8(5);
                self.u32(v.len() as u32);
                v.iter().for_each(|&(t, x)| {
                    self.i64(t);
                    self.u64(x)
                });
            }
            Window::Episode {
                start,
                inner,
                count,
                floor,
            } => {
                self.u8(6);
                self.i64(*start);
                self.u64(u64::from(*count));
                self.i64(*floor);
                self.window(inner);
            }
        }
    }
}

struct R<'a> {
    b: &'a [u8],
    at: usize,
}

impl R<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
    fn len(&mut self, item: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        // Never allocate more than the input could hold.
        (n.saturating_mul(item) <= self.b.len() - self.at).then_some(n)
    }
    fn window(&mut self) -> Option<Window> {
        Some(match self.u8()? {
            1 => {
                let n = self.len(8)?;
                Window::Times((0..n).map(|_| self.i64()).collect::<Option<_>>()?)
            }
            2 => {
                let n = self.len(16)?;
                Window::Distinct(
                    (0..n)
                        .map(|_| Some((self.u64()?, self.i64()?)))
                        .collect::<Option<_>>()?,
                )
            }
            3 => {
                let n = self.len(8)?;
                Window::Slots((0..n).map(|_| self.i64()).collect::<Option<_>>()?)
            }
            4 => {
                let n = self.len(16)?;
                Window::Chains(
                    (0..n)
                        .map(|_| Some((self.i64()?, self.i64()?)))
                        .collect::<Option<_>>()?,
                )
            }
            5 => {
                let n = self.len(16)?;
                Window::Values(
                    (0..n)
                        .map(|_| Some((self.i64()?, self.u64()?)))
                        .collect::<Option<_>>()?,
                )
            }
            6 => {
                let start = self.i64()?;
                let count = u32::try_from(self.u64()?).unwrap_or(u32::MAX);
                let floor = self.i64()?;
                Window::Episode {
                    start,
                    count,
                    floor,
                    inner: Box::new(self.window()?),
                }
            }
            _ => return None,
        })
    }
}

/// Serialises a shard.
pub fn encode(shard: &Shard) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(1 << 16));
    w.0.extend_from_slice(MAGIC);
    w.i64(shard.max_time());
    let corrs = shard.correlations().clone();
    w.u32(shard.stores().len() as u32);
    for (ci, store) in shard.stores().iter().enumerate() {
        w.u64(corrs.list[ci].fingerprint);
        w.u32(store.len() as u32);
        for slot in 0..store.len() {
            let k = &store.export(slot);
            w.u64(k.key);
            w.i64(k.last_seen);
            w.u64(k.evidence);
            match &k.group {
                Some(g) => {
                    w.u8(1);
                    w.bytes(g);
                }
                None => w.u8(0),
            }
            match &k.open {
                Some(o) => {
                    w.u8(1);
                    w.0.extend_from_slice(&o.id.to_le_bytes());
                    w.u32(o.revision);
                    w.u64(o.count);
                    w.u64(o.metric.to_bits());
                    w.i64(o.first_seen);
                    w.i64(o.last_seen);
                    w.i64(o.fired_at);
                    w.i64(o.until);
                    w.u8(o.dirty as u8);
                    w.bytes(&o.group);
                }
                None => w.u8(0),
            }
            w.window(&k.window);
        }
    }
    w.u64(shard.evidence().written());
    w.bytes(shard.evidence().bytes());
    w.0
}

/// Restores state into a fresh shard built on the current rules. Returns how many rules'
/// state was dropped because their definition changed.
pub fn decode(shard: &mut Shard, b: &[u8], path: &str) -> Result<usize, CheckpointError> {
    let corrupt = |at| CheckpointError::Corrupt {
        path: path.into(),
        at,
    };
    if b.len() < 8 || &b[..8] != MAGIC {
        return Err(CheckpointError::Format { path: path.into() });
    }
    let mut r = R { b, at: 8 };
    let corrs = shard.correlations().clone();
    let by_fp: HashMap<u64, usize> = corrs
        .list
        .iter()
        .enumerate()
        .map(|(i, c)| (c.fingerprint, i))
        .collect();
    let max_time = r.i64().ok_or_else(|| corrupt(r.at))?;
    let n = r.u32().ok_or_else(|| corrupt(r.at))?;
    let mut dropped = 0;
    for _ in 0..n {
        let fp = r.u64().ok_or_else(|| corrupt(r.at))?;
        let nk = r.u32().ok_or_else(|| corrupt(r.at))?;
        let target = by_fp.get(&fp).copied().filter(|_| fp != 0);
        if target.is_none() {
            dropped += 1;
        }
        for _ in 0..nk {
            let at = r.at;
            let k = (|| {
                let key = r.u64()?;
                let last_seen = r.i64()?;
                let evidence = r.u64()?;
                let group = match r.u8()? {
                    1 => Some(r.bytes()?.into_boxed_slice()),
                    _ => None,
                };
                let open = match r.u8()? {
                    1 => Some(Box::new(Open {
                        id: u128::from_le_bytes(r.take(16)?.try_into().ok()?),
                        revision: r.u32()?,
                        count: r.u64()?,
                        metric: f64::from_bits(r.u64()?),
                        first_seen: r.i64()?,
                        last_seen: r.i64()?,
                        fired_at: r.i64()?,
                        until: r.i64()?,
                        dirty: r.u8()? != 0,
                        group: r.bytes()?.into_boxed_slice(),
                    })),
                    _ => None,
                };
                let window = r.window()?;
                Some(KeyState {
                    key,
                    window,
                    last_seen,
                    evidence,
                    group,
                    open,
                })
            })()
            .ok_or_else(|| corrupt(at))?;
            if let Some(ci) = target {
                if !k.window.fits(&corrs.list[ci].spec) {
                    return Err(corrupt(at));
                }
                shard.restore_key(ci, k);
            }
        }
    }
    let written = r.u64().ok_or_else(|| corrupt(r.at))?;
    let ring = r.bytes().ok_or_else(|| corrupt(r.at))?;
    shard.restore_rest(EvidenceRing::restore(ring, written), max_time);
    Ok(dropped)
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Saves a shard's checkpoint.
pub fn save(shard: &Shard, path: &Path) -> io::Result<()> {
    write_atomic(path, &encode(shard))
}

/// Loads a checkpoint into a fresh shard; a missing file is not an error (returns `None`).
pub fn load(shard: &mut Shard, path: &Path) -> Result<Option<usize>, CheckpointError> {
    let b = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CheckpointError::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
    };
    decode(shard, &b, &path.display().to_string()).map(Some)
}
